"""QA28 ops #1: a SIGKILL of `mmdata train -j 2`'s main process alone (what the OOM killer and a scheduler's
`kill -9 PID` do) left its DataLoader workers running for 10+ minutes, holding the output folder's lock they
inherited: every rerun stopped with exit 75, "being written by another job", naming the dead pid. The workers
now end with the job (mmdata.procs.die_with_parent, as shard's writers and ablate's workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ablate.test_process import _alive, _children, _wait_for_workers

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_sigkilled_train_and_the_rerun_runs(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=6, progress=False)
    cmd = [sys.executable, "-m", "mmdata", "train", str(data), "--out", str(tmp_path / "run"), "-j", "2",
           "--threads", "1", "--no-robustness"]
    proc = subprocess.Popen([*cmd, "--epochs", "200"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    kids: list[int] = []
    try:
        kids = _wait_for_workers(proc, n=2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)  # the main process only, not its group
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.05)
        left = [k for k in kids if _alive(k)]
        assert not left, f"DataLoader workers {left} outlived their SIGKILLed job by 10 s"
    finally:  # the workers recorded (a failure leaves them reparented, no longer children of proc)
        for k in {*kids, *_children(proc.pid)}:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        if proc.stderr:
            proc.stderr.close()
    rerun = subprocess.run([*cmd, "--epochs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
