"""QA35 pipeline #1: a SIGTERM in the 0.3 - 0.6 s between a command's printed result (``--json`` "exit_code": 0)
and the process's end (interpreter and torch teardown) exited 143: a scheduler's grace period or a ``timeout``
turned a finished job into a failed one, and the status disagreed with the document. Once the result is written
the status is decided: a late SIGTERM (or SIGHUP) leaves the command's own code.

Real processes, the real CLI, real signals. The teardown is made long (an atexit handler that sleeps 2 s), so
the signal lands in it every time; before, it ended the process with 143 there. And the command as run, with the
signal sent as soon as the document is on disk (the report's loop): the teardown in C++ after Python's own
finalisation, where a Python handler no longer runs, keeps the status too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmdata

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

SLOW_TEARDOWN = '''
import atexit, sys, time
atexit.register(time.sleep, 2)  # a long teardown: the window the signal must land in
import mmdata.cli.main as m
sys.argv = ["mmdata", *sys.argv[1:]]
m.main()
'''


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_sample_folder

    root = tmp_path_factory.mktemp("late")
    make_sample_folder(root / "raw", n=12, missing=False)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _late_signal(tmp_path: Path, signum: int, *args: str, wait: float = 0.3,
                 cmd: tuple[str, ...] = ("-c", SLOW_TEARDOWN)) -> tuple[int, dict]:
    out = tmp_path / "out.json"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1", MMDATA_PROGRESS="off")
    with open(out, "w") as stdout:
        p = subprocess.Popen([sys.executable, *cmd, *args, "--json"], stdout=stdout,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    doc = None
    while doc is None and time.monotonic() < deadline and p.poll() is None:
        try:
            doc = json.loads(out.read_text())  # complete: the result is written
        except ValueError:
            time.sleep(0.02)
    assert doc is not None, p.communicate()[1][-3000:]
    time.sleep(wait)  # in the teardown now
    p.send_signal(signum)
    p.communicate(timeout=60)
    return p.returncode, doc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_after_the_result_keeps_the_commands_status(ds: Path, tmp_path: Path, signum: int) -> None:
    rc, doc = _late_signal(tmp_path, signum, "verify", str(ds))
    assert doc["ok"] is True and doc["exit_code"] == 0
    assert rc == 0, rc


def test_the_command_as_run_keeps_its_status_under_a_late_sigterm(ds: Path, tmp_path: Path) -> None:
    for i in range(3):
        rc, doc = _late_signal(tmp_path, signal.SIGTERM, "shard", str(ds.parent / "raw"), str(tmp_path / f"o{i}"),
                               "--maxcount", "4", wait=0, cmd=("-m", "mmdata.cli.main"))
        assert doc["exit_code"] == 0 and rc == 0, (i, rc)


def test_a_late_signal_after_an_error_keeps_its_code(tmp_path: Path) -> None:
    rc, doc = _late_signal(tmp_path, signal.SIGTERM, "verify", str(tmp_path / "nonexistent"))
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert rc == 2, rc
