"""QA35 lowmem #1: under a tight address-space limit (``ulimit -v``) the first thing to fail is a new thread's
stack; ``shard`` died with a 30-line traceback "RuntimeError: can't start new thread" from the progress thread.
A progress display never fails a job (it goes on without its thread), and the CLI ends a job whose thread cannot
start with the same one-line "out of memory ... (ulimit -v)" error as a MemoryError, exit 2.

Thread starts fail for real and every time: each new thread asks for a 1 GiB stack (``threading.stack_size``)
in a process that may map only 256 MiB more (RLIMIT_AS), while the ordinary allocations of a small job fit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")

NO_THREADS = '''
import resource, sys, threading
import numpy, torch  # noqa: F401  (loaded before the limit, as in a job that has run a while)
threading.stack_size(1 << 30)  # every thread started from here needs 1 GiB of address space
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), resource.RLIM_INFINITY))
try:
    threading.Thread(target=print).start()
except RuntimeError as exc:
    assert "can't start new thread" in str(exc), exc
else:
    raise SystemExit("a thread started: the test's premise does not hold")
'''

ENV = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1")


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_THREADS + code, *args], capture_output=True, text=True,
                          env={**ENV, **env}, timeout=300)


def test_plain_progress_goes_on_without_its_thread() -> None:
    p = _run('''
from mmdata.progress import PlainProgress
prog = PlainProgress(interval=0.01)
prog.start()
task = prog.add_task("sharding samples", total=3)
for _ in range(3):
    prog.advance(task)
prog.stop()
print("done")
''')
    assert p.returncode == 0 and p.stdout.strip() == "done", p.stderr[-3000:]
    assert "sharding samples: 3/3 (100%)" in p.stderr and "Traceback" not in p.stderr, p.stderr[-3000:]


def test_a_terminal_bar_goes_on_without_its_refresh_thread() -> None:
    p = _run('''
import io
from rich.console import Console
from mmdata.progress import FitProgress
out = io.StringIO()
prog = FitProgress("{task.description}", "{task.completed}/{task.total}", console=Console(file=out, force_terminal=True, width=80))
prog.start()
task = prog.add_task("sharding samples", total=3)
for _ in range(3):
    prog.advance(task)
prog.stop()
print(repr(out.getvalue()))
''')
    assert p.returncode == 0 and "sharding samples" in p.stdout and "3/3" in p.stdout, p.stderr[-3000:]


def test_shard_whose_threads_cannot_start_ends_in_the_out_of_memory_line(tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder

    make_sample_folder(tmp_path / "raw", n=40, missing=False)
    p = _run('''
import mmdata.cli.main as m
sys.argv = ["mmdata", *sys.argv[1:]]
m.main()
''', "shard", str(tmp_path / "raw"), str(tmp_path / "ds"), "--maxcount", "10",
             MMDATA_PROGRESS="plain", MMDATA_PROGRESS_INTERVAL="0.01")
    # the progress thread and the signal watch go without; a thread the job needs ends it with the line
    assert p.returncode in (0, 2), p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "RuntimeError" not in p.stderr, p.stderr[-3000:]
    if p.returncode == 2:
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("error: out of memory: can't start new thread"), p.stderr[-3000:]
        assert "MiB (ulimit -v): a limit of this machine, not a fault of the data" in last
