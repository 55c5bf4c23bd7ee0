"""docs/ops.md is generated from the op registry and must be current; every parameter is documented."""

from __future__ import annotations

from pathlib import Path

from mmdata.augment.base import registry
from mmdata.augment.reference import op_reference

DOC = Path(__file__).parents[2] / "docs" / "ops.md"


def test_ops_md_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == op_reference(), (
        "docs/ops.md is stale: run `python -m mmdata.augment.reference > docs/ops.md`")


def test_every_op_and_param_is_documented() -> None:
    text = op_reference()
    for (section, name), cls in registry().items():
        assert f"### {section}: {name}" in text
        assert cls.__doc__ and cls.__doc__.strip(), f"{section}.{name} has no docstring"
        for key, param in cls.PARAMS.items():
            assert param.doc, f"{section}.{name}.{key} has no doc"
