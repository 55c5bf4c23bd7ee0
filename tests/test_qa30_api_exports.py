"""QA30 (fix-api, apidocs D10 / D11): the errors public functions document in "Raises:" import from public
paths (``mmdata.TooManySkipped``, ``mmdata.BusyError``, ``mmdata.augment.InputError``) without making ``import
mmdata`` heavy, and ``dir()`` of mmdata / mmdata.testing lists their API, not what they import for themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
import mmdata.augment
import mmdata.testing


def test_documented_exceptions_are_exported() -> None:
    from mmdata.augment.contract import InputError
    from mmdata.errors import BusyError
    from mmdata.shards.writer import TooManySkipped

    assert {"BusyError", "TooManySkipped"} <= set(mmdata.__all__)
    assert mmdata.BusyError is BusyError and mmdata.TooManySkipped is TooManySkipped
    assert "InputError" in mmdata.augment.__all__ and mmdata.augment.InputError is InputError


def test_shard_raises_the_exported_class(tmp_path: Path) -> None:
    raw = mmdata.testing.make_sample_folder(tmp_path / "raw", n=4)
    spoiled = next(raw.rglob("*.png"))
    spoiled.write_bytes(b"not a png")
    with pytest.raises(mmdata.TooManySkipped):
        mmdata.shard(raw, tmp_path / "ds", max_skipped=0, on_error="skip", progress=False)


def test_the_exports_stay_lazy() -> None:
    code = ("import sys, mmdata; from mmdata import BusyError; assert 'torch' not in sys.modules; "
            "assert 'mmdata.shards.writer' not in sys.modules; from mmdata import *; "
            "assert TooManySkipped.__module__ == 'mmdata.shards.writer'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("module", [mmdata, mmdata.testing], ids=["mmdata", "mmdata.testing"])
def test_dir_lists_the_public_api_only(module: object) -> None:
    listed = {n for n in dir(module) if not n.startswith("__")}
    assert not listed & {"Any", "annotations", "importlib", "_LAZY", "_OPS", "_SUBPACKAGES"}
    assert set(module.__all__) <= listed  # type: ignore[attr-defined]
    for name in listed:  # everything listed resolves (a tab completion that works)
        assert getattr(module, name) is not None
    assert "__version__" in dir(mmdata)


def test_dir_offers_the_submodules_already_imported() -> None:
    """Review of QA30: the public-only dir() dropped `mmdata.lightning` / `mmdata.codecs` / `mmdata.testing.media`
    from tab completion once they were imported (Python binds them on the package)."""
    import mmdata.codecs  # noqa: F401
    import mmdata.lightning  # noqa: F401
    import mmdata.testing.media  # noqa: F401

    assert {"lightning", "codecs"} <= set(dir(mmdata)) and "media" in dir(mmdata.testing)
