"""QA round 39, fixer "inspect": blend dtype advice, inspect --by, diff --by, label-name warnings, alpha notes."""
from __future__ import annotations

import pytest


def _card(d: str):
    class D:
        card = {"modalities": {"feat": {"dtypes": {d: 3}}}}
    return D()


def test_a_blend_of_float_and_int16_features_never_advises_an_int16_save() -> None:
    """QA39 interop #2: the re-save and cast were in the cast dataset's dtype (int16), truncating the float one."""
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("float64"), "b": _card("int16")}, None)
    assert said is not None and "float64 in 'a', int16 in 'b'" in said, said
    assert "astype(np.int16)" not in said and "to(torch.int16)" not in said, said
    assert "astype(np.float64)" in said and "build it for float64" in said, said


def test_a_blend_of_uint16_and_int16_advises_a_dtype_that_holds_both() -> None:
    """QA39 interop #2 (the known limit of non-nesting pairs): int32 holds uint16 and int16."""
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("uint16"), "b": _card("int16")}, None)
    assert said is not None and "astype(np.int32)" in said, said
    assert "astype(np.int16)" not in said and "astype(np.uint16)" not in said and ".to(torch." not in said, said


def test_a_blend_of_float32_and_float64_still_offers_the_float32_cast() -> None:
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("float32"), "b": _card("float64")}, None)
    assert said is not None and "batch['feat'].to(torch.float32)" in said and "astype(np.float64)" in said, said
