"""A FIFO planted at ``OUT/.mmdata-journal`` is refused, as one at the lock file is (QA28 security #8: the
job's read of the journal opened it ``O_RDONLY``, which waits for a writer forever, before its regular-file
check could run). The job runs in a child process, so a regression fails on a timeout instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.testing import make_class_folders
from tests.procs_helpers import communicate_or_kill

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")

ROOT = Path(__file__).resolve().parents[2]


def test_a_fifo_at_the_journal_is_refused_not_waited_on(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "raw", classes=("cat", "dog"), per_class=1)
    out = tmp_path / "o11"
    out.mkdir()
    os.mkfifo(out / ".mmdata-journal")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmdata", "shard", str(tmp_path / "raw"), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    _, err = communicate_or_kill(proc, timeout=120)
    assert proc.returncode == 2, err
    assert f"{out / '.mmdata-journal'}: not a regular file" in err and "Traceback" not in err
    assert os.path.exists(out / ".mmdata-journal") and not os.path.exists(out / "dataset.json")


def test_open_own_of_a_fifo_does_not_block(tmp_path: Path) -> None:
    code = ("import os, sys; from pathlib import Path; from mmdata.shards.journal import open_own\n"
            "from mmdata.errors import SourceError\n"
            "try:\n    open_own(Path(sys.argv[1]), os.O_RDONLY, 'resume journal')\n"
            "except SourceError as exc:\n    print(exc)\n")
    os.mkfifo(tmp_path / "f")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "f")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = communicate_or_kill(proc, timeout=60)
    assert proc.returncode == 0 and "not a regular file (the resume journal" in out, err


def test_open_own_leaves_a_regular_file_blocking(tmp_path: Path) -> None:
    import fcntl

    from mmdata.shards.journal import open_own

    (tmp_path / "j").write_bytes(b"x")
    fd = open_own(tmp_path / "j", os.O_RDONLY, "resume journal")
    try:
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        assert os.read(fd, 4) == b"x"
    finally:
        os.close(fd)


@pytest.mark.parametrize("plant", ["fifo", "huge"])
def test_a_planted_lock_file_is_not_waited_on_nor_read_whole(tmp_path: Path, plant: str) -> None:
    """Reading a folder without a card looks at its lock's note (a job running? one left unfinished?): a FIFO
    there made ``inspect`` hang, a 3 GB sparse one took 6 GB of memory (found beside QA28 security #8)."""
    folder = tmp_path / "lk"
    folder.mkdir()
    if plant == "fifo":
        os.mkfifo(folder / ".mmdata-lock")
    else:
        (folder / ".mmdata-lock").write_bytes(b"")
        os.truncate(folder / ".mmdata-lock", 3 << 30)  # sparse
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "from mmdata.errors import ShardError\nfrom mmdata.shards import index as idx\n"
            "try:\n    idx.load_card(sys.argv[1])\nexcept ShardError as exc:\n    print(exc)\n"
            "print(idx.running_job(sys.argv[1]), idx.unfinished_command(sys.argv[1]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = communicate_or_kill(proc, timeout=60)
    assert proc.returncode == 0, err
    assert f"{folder}: no dataset.json" in out and "None `mmdata shard` (or `mmdata augment`)" in out
