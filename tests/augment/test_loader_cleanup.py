"""A pass of ``mmdata.loader`` that fails in a DataLoader worker ends its workers at once (QA 2026-12-03:
torch leaves them to the iterator's ``__del__``, which a reference cycle through the re-raised exception
delays until a gc pass; workers and ``pymp-*`` folders piled up, and "Exception ignored in __del__"
messages followed)."""

from __future__ import annotations

import gc
import multiprocessing
import tarfile
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


def _corrupt_one_png(ds: Path) -> None:
    """Zero bytes inside one PNG member of the first shard (size unchanged: the tar stays readable)."""
    shard = ds / "train-000000.tar"
    with tarfile.open(shard) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(".png"))
        at = member.offset_data + member.size // 2
    data = bytearray(shard.read_bytes())
    data[at:at + 8] = bytes(8)
    shard.write_bytes(bytes(data))


def test_a_worker_error_ends_the_workers_at_once(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12, missing=False), tmp_path / "ds", maxcount=4, progress=False)
    _corrupt_one_png(tmp_path / "ds")
    gc.disable()  # what a busy process looks like between gc passes: only the explicit shutdown ends them
    try:
        for _ in range(3):
            with pytest.raises(mmdata.ShardError, match="corrupt|decode"):
                for _ in mmdata.loader(tmp_path / "ds", 4, num_workers=2):
                    pass
            assert multiprocessing.active_children() == []
    finally:
        gc.enable()
