"""What a killed ``mmdata train`` leaves in ``--out``, and what a rerun into the same folder removes: the
temp files of mmdata's atomic writes whose writer is dead — never a live writer's, never anyone else's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from tests.procs_helpers import wait_or_kill

ROOT = Path(__file__).parents[2]


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from mmdata.cli.main import main; main()", "train", str(data), "--epochs", "1",
            "--out", str(out), "--json", *extra]


def test_a_rerun_of_train_removes_the_temp_files_of_a_sigkilled_run(avdigits40: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(_train(avdigits40, out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    left: list[Path] = []
    deadline = time.time() + 120
    while time.time() < deadline and not left:  # the predictions are streamed to a temp file during the test pass
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        left = list(out.glob(".predictions.parquet.*.tmp"))
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # no finally block runs: the temp file stays
    proc.wait()
    assert left and all(p.exists() for p in left)
    # files mmdata did not write, and a temp file of a writer that is still alive
    theirs = [out / ".notes.tmp", out / ".metrics.json.tmp", out / ".model.pt.abcd1234.tmp"]
    for p in theirs:
        p.write_text("not mmdata's")
    live = subprocess.Popen([sys.executable, "-c", "import sys; from mmdata.train.outputs import PredictionWriter; "
                             "w = PredictionWriter(sys.argv[1], 'test'); print(w.tmp, flush=True); sys.stdin.read()",
                             str(out / "predictions.parquet")], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        live_tmp = Path(live.stdout.readline().strip())
        assert live_tmp.exists()
        rerun = subprocess.run(_train(avdigits40, out, "--no-robustness"), cwd=ROOT, capture_output=True, text=True,
                               timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert not [p for p in left if p.exists()], "the killed run's temp file is still there"
        assert live_tmp.exists(), "a live writer's temp file was removed"
        assert all(p.read_text() == "not mmdata's" for p in theirs)
        assert (out / "predictions.parquet").exists() and (out / "metrics.json").exists()
    finally:
        live.stdin.close()
        wait_or_kill(live, 30)
