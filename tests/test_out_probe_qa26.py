"""An output folder no file can be made in is refused before any work, also for root (QA26): the check asked
``os.access``, which says yes to root for ``/proc`` (and a read-only bind mount on a writable file system); the
job then met the folder at its first write, after the source was read or the model trained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError, SourceError
from mmdata.io import can_write_in
from mmdata.testing import make_sample_folder
from mmdata.train.outputs import check_out

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def test_a_probe_file_decides_and_is_removed(tmp_path: Path) -> None:
    assert can_write_in(tmp_path) and not list(tmp_path.iterdir())
    assert not can_write_in("/proc")


def test_train_and_shard_refuse_an_output_under_proc_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"/proc/mmdata-out would be made in /proc, which is not writable"):
        check_out("/proc/mmdata-out", "--out")
    raw = make_sample_folder(tmp_path / "raw", n=4)
    with pytest.raises(SourceError, match=r"/proc/mmdata-ds would be made in /proc, which is not writable"):
        mmdata.shard(raw, "/proc/mmdata-ds", progress=False)
