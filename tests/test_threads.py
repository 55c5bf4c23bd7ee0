"""One dataset or loader iterated from several threads of one process (QA: a long-running, multi-threaded host).

A plain DataLoader with workers over one dataset, iterated from two threads at once, used to repeat and
lose samples silently: the workers of the two overlapping passes joined each other's generation of the
dataset's epoch clock, so one pass read parts of two epochs' orders. Each pass now reads one epoch's order
whole. ``mmdata.loader`` keeps per-pass state (positions, loss counts, the epoch it sets), so two passes of
one loader open in two threads at once are refused with an error naming the fix (one loader per thread).
A pass dropped with ``break`` (or left open) and a new pass in the same thread keep working.
"""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.shards.reader import EpochClock
from mmdata.testing.media import make_sample_folder


@pytest.fixture(scope="module")
def ds_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("threads")
    make_sample_folder(root / "raw", n=40)
    mmdata.shard(root / "raw", root / "ds", maxcount=10, split={"train": .8, "val": .2}, progress=False)
    return str(root / "ds")


def _in_threads(fn: Any, n: int = 2) -> dict[int, Any]:
    out: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            out[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out[i] = exc

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_two_threads_over_one_dataloader_with_workers_each_read_one_whole_epoch(ds_path: str) -> None:
    ds = mmdata.open_dataset(ds_path, split="train", shuffle=True, seed=0)
    every = sorted(s.key for s in ds)  # epoch 0 in this process
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ds.collate_fn)
    for _ in range(3):
        out = _in_threads(lambda: [k for b in dl for k in b.keys])
        for keys in out.values():
            assert not isinstance(keys, BaseException), keys
            assert sorted(keys) == every  # no repeat, no loss


def test_a_pass_dropped_with_break_then_a_new_pass_in_the_same_thread(ds_path: str) -> None:
    ds = mmdata.open_dataset(ds_path, split="train", shuffle=True, seed=0)
    every = sorted(s.key for s in ds)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ds.collate_fn)
    for b in dl:
        break
    left = iter(dl)  # a pass left open (a notebook cell), then a whole one
    next(left)
    assert sorted(k for b in dl for k in b.keys) == every
    del left


def test_the_clock_gives_overlapping_passes_their_own_generation() -> None:
    """Two passes' first workers, then their late workers: each late worker joins its own pass."""
    import mmdata.shards.reader as reader

    clock = EpochClock(5)
    seen = []

    class Info:
        def __init__(self, seed: int, wid: int) -> None:
            self.seed, self.id, self.num_workers = seed + wid, wid, 2

    real = reader.get_worker_info
    try:
        for seed, wid in ((100, 0), (200, 0), (100, 1), (200, 1)):
            reader.get_worker_info = lambda s=seed, w=wid: Info(s, w)  # type: ignore[assignment]
            seen.append(copy.copy(clock).begin())  # each worker its own copy, sharing the memory
    finally:
        reader.get_worker_info = real
    assert seen == [(5, 0), (6, 1), (5, 0), (6, 1)]


def test_one_mmdata_loader_in_two_threads_at_once_is_refused(ds_path: str) -> None:
    ld = mmdata.loader(ds_path, batch_size=4, num_workers=2, seed=0)
    started = threading.Barrier(2)

    def one_pass() -> list[str]:
        try:
            it = iter(ld)
            keys = list(next(it).keys)
            started.wait(timeout=60)  # both passes open at once
            keys += [k for b in it for k in b.keys]
            return keys
        except BaseException:
            started.abort()
            raise

    out = _in_threads(one_pass)
    errors = [v for v in out.values() if isinstance(v, BaseException)]
    assert errors, "two overlapping passes of one loader ran silently"
    assert any("one loader per thread" in str(e) for e in errors), errors
    # the loader keeps working in one thread afterwards
    keys = [k for b in ld for k in b.keys]
    assert len(keys) == len(set(keys)) == 32


def test_mmdata_loader_pass_dropped_then_new_pass_in_the_same_thread(ds_path: str) -> None:
    ld = mmdata.loader(ds_path, batch_size=4, num_workers=2, seed=0)
    for b in ld:
        break
    left = iter(ld)
    next(left)
    keys = [k for b in ld for k in b.keys]
    assert len(keys) == len(set(keys)) == 32
    del left


def test_mmdata_loader_passes_in_threads_one_after_another(ds_path: str) -> None:
    ld = mmdata.loader(ds_path, batch_size=4, num_workers=2, seed=0)
    for _ in range(2):
        out = _in_threads(lambda: [k for b in ld for k in b.keys], n=1)
        keys = out[0]
        assert not isinstance(keys, BaseException), keys
        assert len(keys) == len(set(keys)) == 32


def test_the_clock_lock_is_private_to_its_process_family(ds_path: str, tmp_path: Path) -> None:
    """QA pass on the fix: the lock was one file per user in the temporary folder — any process holding it
    stalled every reader of that user (here: a reader waited forever), and a link planted at its predictable
    name was followed. Now a file in a private mkdtemp folder of the clock's owner, handed to its workers."""
    import fcntl
    import subprocess
    import sys

    from mmdata.shards.reader import EpochClock

    old = Path(tempfile.gettempdir()) / f"mmdata-epochclock-{os.getuid()}.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(old)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # another process's lock on the old per-user file does not stop this reader (it hung there)
        res = subprocess.run([sys.executable, "-c", (
            "import mmdata, sys\n"
            f"print(len(list(mmdata.open_dataset({ds_path!r}, split='train', shuffle=True, seed=0))))\n")],
            capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and res.stdout.strip() == "32", res.stderr
    finally:
        holder.kill()
        holder.wait()
    clock = EpochClock()
    path = Path(clock._lock_path)
    folder = path.parent
    assert folder.name.startswith("mmdata-clock-") and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert pickle.loads(pickle.dumps(clock))._lock_path == clock._lock_path  # spawned workers share it
    with open(path, "a") as fd:  # the record lock works on it (the file exists after a begin)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_processes_of_a_pool_leave_no_clock_folder(ds_path: str, tmp_path: Path) -> None:
    """A multiprocessing child (a pool's worker: `ablate -j`, `shard -j`) ends in os._exit, past atexit: each
    left its private clock folder in the temporary folder (3 here, ~8 a test-suite run)."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import multiprocessing as mp, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "import mmdata\n"
        "def child(ds):\n"
        "    return len(list(mmdata.open_dataset(ds, split='train')))\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('fork').Process(target=child, args=(sys.argv[1],)); p.start(); p.join()\n"
        "    with ProcessPoolExecutor(2, mp_context=mp.get_context('fork')) as ex:\n"
        "        print(list(ex.map(child, [sys.argv[1]] * 2)))\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    res = subprocess.run([sys.executable, str(script), ds_path], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TMPDIR": str(tmp)})
    assert res.returncode == 0 and res.stdout.strip() == "[32, 32]", res.stderr
    assert sorted(p.name for p in tmp.iterdir()) == [], list(tmp.iterdir())
