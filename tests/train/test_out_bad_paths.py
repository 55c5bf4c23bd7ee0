"""``train(out=...)`` naming a path the system cannot look up (hostile-host QA): a symbolic link loop gave
``RuntimeError: Symlink loop`` and a name over 255 bytes ``OSError: [Errno 36]`` — tracebacks, from the
output checks. Now each is one MMDataError naming ``--out`` and why, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder
from mmdata.train.loop import train


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("trainpaths")
    mmdata.shard(make_sample_folder(t / "raw", n=6), t / "ds", progress=False)
    return t / "ds"


@pytest.mark.parametrize("kind", ["loop", "long-name"])
def test_an_out_that_cannot_be_looked_up_is_one_error_before_training(ds: Path, tmp_path: Path, kind: str) -> None:
    if kind == "loop":
        (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
        (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
        out, why = tmp_path / "loop1", r"symbolic link loop"
    else:
        out, why = tmp_path / ("o" * 300), r"too long \(a name of 300 bytes"
    with pytest.raises(MMDataError, match=rf"out \(--out\) .*{why}"):
        train(ds, out=out, epochs=1)
