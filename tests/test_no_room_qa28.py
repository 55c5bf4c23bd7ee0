"""QA28 ops #4, #5: a per-file size limit (EFBIG: `ulimit -f`, FAT32 / exFAT's 4 GiB) was reported as a full disk,
"free space ... and rerun" — a rerun failed the same way forever; a full disk never said how much room to make (an
ops user freed space, reran and failed twice). Now EFBIG says no freeing helps and how to write smaller files, and
a full disk says how much is free and what the write needed."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.io import no_room_advice
from mmdata.testing import make_sample_folder

REPO = Path(__file__).parents[1]
CLI = [sys.executable, "-m", "mmdata"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE")
def test_a_file_size_limit_says_write_smaller_shards_not_free_space(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=20)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    res = subprocess.run([*CLI, "shard", str(raw), str(tmp_path / "ds"), "--maxcount", "4"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    line = next(ln for ln in res.stderr.splitlines() if ln.startswith("error:"))
    assert "File too large" in line and "freeing space would not help" in line and "free space (" not in line
    assert "--maxsize BYTES or --maxcount N" in line and "files of 20 kB (ulimit -f)" in line


def test_a_full_disk_says_what_is_free_and_what_was_needed(tmp_path: Path) -> None:
    said = no_room_advice(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "not" / "made", need=3_600_000)
    assert said.startswith("No space left on device: free space (this write needs about 3.6 MB; ")
    assert " free there now) (or write to another folder) and rerun the same command to resume" in said
    quota = no_room_advice(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    assert quota.startswith("Disk quota exceeded: free space (") and "needs" not in quota
    ro = no_room_advice(OSError(errno.EROFS, "Read-only file system"), tmp_path)
    assert ro == "Read-only file system: write to another folder, then rerun the same command to resume"
