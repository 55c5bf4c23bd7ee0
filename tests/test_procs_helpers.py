"""tests/procs_helpers.py: a child that outlives its timeout is killed with what it started, and the
test fails with a message that names it; so are the ranks of :func:`spawn_ranks`, whose rendezvous
needs no port."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.procs_helpers import communicate_or_kill, rendezvous, spawn_ranks, wait_or_kill

# starts a grandchild sleeper, prints its pid, then sleeps itself
_PARENT = """import subprocess, sys, time
g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(g.pid, flush=True)
print("parent is up", file=sys.stderr, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start(**kw) -> tuple[subprocess.Popen, int]:  # noqa: ANN003
    proc = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)
    grandchild = int(proc.stdout.readline())
    return proc, grandchild


@pytest.mark.parametrize("new_session", [True, False], ids=["own-session", "our-group"])
def test_wait_or_kill_kills_child_and_grandchild(new_session: bool) -> None:
    proc, grandchild = _start(start_new_session=new_session)
    try:
        with pytest.raises(AssertionError) as failed:
            wait_or_kill(proc, 1)
        assert proc.returncode is not None  # reaped
        assert not _alive(proc.pid)
        if new_session or _has_psutil():
            assert _gone(grandchild), f"grandchild {grandchild} still running"
        message = str(failed.value)
        assert "time.sleep(60)" in message and "within 1 s" in message and "parent is up" in message, message
    finally:
        for pid in (proc.pid, grandchild):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        proc.wait()


def test_communicate_or_kill() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); print('e', file=sys.stderr)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert communicate_or_kill(proc, 60, input="hi") == ("HI\n", "e\n")
    assert wait_or_kill(proc, 5) == 0

    proc, grandchild = _start(start_new_session=True)
    with pytest.raises(AssertionError, match=r"(?s)within 1 s.*parent is up"):
        communicate_or_kill(proc, 1)
    assert proc.returncode is not None
    assert _gone(grandchild), f"grandchild {grandchild} still running"


def test_wait_or_kill_after_the_test_closed_stdin() -> None:
    """As tests/train/test_leftovers.py waits for a writer: stdin closed first, stdout read in part."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; print('up', flush=True); sys.stdin.read(); "
                             "print('stdin closed', file=sys.stderr, flush=True); time.sleep(60)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"
    proc.stdin.close()
    with pytest.raises(AssertionError, match="(?s)within 1 s.*stdin closed"):
        wait_or_kill(proc, 1)
    assert proc.returncode == -9


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def _hung_rank(rank: int, out: str) -> None:
    """Rank 1 starts a child (as a DataLoader worker), records both pids and hangs; rank 0 returns."""
    if rank == 1:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(out, "pids.tmp"), "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        os.replace(os.path.join(out, "pids.tmp"), os.path.join(out, "pids"))
        time.sleep(600)


def test_spawn_ranks_kills_a_hung_rank_and_its_children(tmp_path) -> None:  # noqa: ANN001
    # rank 0 returns at once, unless a loaded machine took the 10 s to start it (seen under CI-like load)
    with pytest.raises(AssertionError, match=r"_hung_rank on 2 ranks did not finish within 10 s; killed \(ranks still running: \[(0, )?1\]"):
        spawn_ranks(_hung_rank, args=(str(tmp_path),), timeout=10)
    pids = tmp_path / "pids"
    if pids.exists():  # else the rank was killed before it started its child (a very slow start)
        for pid in map(int, pids.read_text().split()):
            assert _gone(pid), f"{pid} still running"


def _ranks_all_reduce(rank: int, init_method: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        t = torch.tensor([rank + 1])
        dist.all_reduce(t)
        if rank == 1:
            raise RuntimeError(f"rank 1 saw {int(t)}")
    finally:
        dist.destroy_process_group()


def test_spawn_ranks_meet_through_the_rendezvous_file_and_raise_what_a_rank_raised(tmp_path) -> None:  # noqa: ANN001
    from torch.multiprocessing import ProcessRaisedException

    with pytest.raises(ProcessRaisedException, match="rank 1 saw 3"):
        spawn_ranks(_ranks_all_reduce, args=(rendezvous(tmp_path), str(tmp_path)))
    # the FileStore removes its file when its last rank ends cleanly; rank 0, stopped once rank 1 had raised,
    # may leave it (seen once in a fresh-clone run) — as a killed group does: new ranks would hang on it
    (tmp_path / "rendezvous").write_bytes(b"stale")
    with pytest.raises(AssertionError, match="one rendezvous per folder"):
        rendezvous(tmp_path)
