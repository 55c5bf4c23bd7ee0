"""Worker processes: they die with a SIGKILLed parent, Ctrl-C / SIGTERM stop the pool promptly and
keep finished runs, a rerun resumes, and each worker gets its thread count and its GPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.ablate.executor import ProcessExecutor
from mmdata.ablate.testing import synthetic_recipe as _recipe
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import wait_or_kill

ROOT = Path(__file__).parents[2]
SYN = "mmdata.ablate.testing:synthetic_train"


def _saved_rows(runs: Path) -> int:
    """Rows of runs.parquet while the runner rewrites it: read through one open file (``pq.read_table`` of
    a path can open it more than once: a save renamed in between read as a damaged page header, once)."""
    return pq.read_table(pa.BufferReader(runs.read_bytes())).num_rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def _start(tmp_path: Path, recipe: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from mmdata.cli.main import app; app()", "ablate", str(recipe), "--out",
           str(tmp_path / "out"), "-j", "2", "--json", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=sigint_as_from_a_terminal)


def _wait_for_workers(proc: subprocess.Popen, n: int = 2, timeout: float = 120) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = [k for k in _children(proc.pid) if _alive(k)]
        if len(kids) >= n:
            return kids
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    raise AssertionError("no workers started")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_ablation_leaves_no_workers(tmp_path: Path, tiny: Path) -> None:
    proc = _start(tmp_path, _recipe(tmp_path, tiny, sleep=60))
    kids = _wait_for_workers(proc)
    time.sleep(0.5)  # the workers are inside a run now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    assert not [k for k in kids if _alive(k)], "workers outlived their SIGKILLed parent by 5 s"


@pytest.mark.sigint
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_the_pool_promptly_and_leaves_nothing(tmp_path: Path, tiny: Path) -> None:
    proc = _start(tmp_path, _recipe(tmp_path, tiny, sleep=60))
    kids = _wait_for_workers(proc)
    time.sleep(0.5)
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    rc = wait_or_kill(proc, 30)
    assert time.time() - t0 < 8, "the pool waited for the running 60 s runs"
    assert rc == 130, proc.stderr.read().decode()
    assert not [k for k in kids if _alive(k)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_keeps_finished_runs_and_rerun_resumes(tmp_path: Path, tiny: Path, signum: int) -> None:
    """SIGHUP (hostile-host QA: a closed terminal hangs up the whole process group) stops the pool as SIGTERM
    does, exit 128 + its number; no run is recorded failed by workers the hangup killed."""
    recipe = _recipe(tmp_path, tiny, sleep=0.3)
    proc = _start(tmp_path, recipe)
    kids = _wait_for_workers(proc)
    runs = tmp_path / "out" / "runs.parquet"
    deadline = time.time() + 120
    while time.time() < deadline and not (runs.exists() and _saved_rows(runs) >= 3):
        time.sleep(0.05)
    if signum == signal.SIGHUP:
        os.killpg(proc.pid, signum)  # the whole group, as a terminal's hangup (its own session: start_new_session)
    else:
        proc.send_signal(signum)
    rc = wait_or_kill(proc, 30)
    assert rc == 128 + signum, proc.stderr.read().decode()
    assert not (tmp_path / "out" / "runs.parquet").exists() or all(
        r["status"] == "ok" for r in pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist())
    assert not [k for k in kids if _alive(k)]
    before = pq.read_table(runs).to_pylist()
    assert 3 <= len(before) < 12
    s = run(recipe, tmp_path / "out", workers=1, progress=False, plots=False)
    after = pq.read_table(runs).to_pylist()
    pairs = [(r["arm"], r["seed"]) for r in after]
    assert len(pairs) == len(set(pairs)) == 3 * 4 and s["runs"]["ok"] == 12
    kept = {(r["arm"], r["seed"]): r["wall_s"] for r in after}
    assert all(kept[(r["arm"], r["seed"])] == r["wall_s"] for r in before)  # finished runs were not repeated


def test_workers_get_their_threads_and_gpu(tmp_path: Path, tiny: Path) -> None:
    ex = ProcessExecutor(2, threads=2)
    ex.gpu_ids = ["3", "5"]  # what device="cuda" with two visible GPUs sets up; the env is all a worker sees
    tasks = [{"arm": "a", "seed": s, "hash": "h", "fingerprint": "f", "data": str(tiny), "recipe": None, "label_noise": 0.0,
              "entry": SYN, "trainer": {"probe": True, "sleep": 0.2}} for s in range(4)]
    rows: list[dict] = []
    try:
        ex.run(tasks, rows.append)
    finally:
        ex.close()
    assert all(r["status"] == "ok" for r in rows), rows
    by_pid: dict[float, set[float]] = {}
    for r in rows:
        by_pid.setdefault(r["test_pid"], set()).add(r["test_visible_gpu"])
        assert r["test_torch_threads"] == 2 and r["test_threads_arg"] == 2
    # two workers, each pinned to its own GPU for all its runs
    assert sorted(tuple(v) for v in by_pid.values()) == [(3.0,), (5.0,)], by_pid


def test_gpu_selection_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.ablate.executor import select_gpus
    from mmdata.errors import MMDataError

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5,7")
    assert select_gpus() == ["3", "5", "7"] and select_gpus(2) == ["3", "5"]
    with pytest.raises(MMDataError, match=r"--gpus \(gpus=\) 4: 3 GPU\(s\) visible \(3,5,7\)"):
        select_gpus(4)
    ex = ProcessExecutor(5, threads=3)
    ex.gpu_ids = select_gpus(2)
    envs = [ex._env(w) for w in range(5)]  # round-robin: worker w sees GPU w % 2, and only that one
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["3", "5", "3", "5", "3"] and envs[0]["OMP_NUM_THREADS"] == "3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(MMDataError, match="no GPU is visible"):
        select_gpus()


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    from mmdata.errors import MMDataError

    with pytest.raises(MMDataError, match="sees no CUDA device"):
        ProcessExecutor(device="cuda")


def test_cli_device_cuda_without_a_gpu_stops_before_any_run(tmp_path: Path, tiny: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.errors import MMDataError

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    res = CliRunner().invoke(app, ["ablate", str(_recipe(tmp_path, tiny, sleep=0.0)), "--out", str(tmp_path / "o"),
                                   "--device", "cuda", "--gpus", "2"])
    assert isinstance(res.exception, MMDataError) and "sees no CUDA device" in str(res.exception)
    assert "--device cpu" in str(res.exception) and not (tmp_path / "o" / "runs.parquet").exists()


def test_gpu_check_without_cuda_says_so_and_fails(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: run scripts/gpu_check.sh itself")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})
    assert res.returncode == 2 and "no CUDA device is visible" in res.stderr and "nothing was run" in res.stderr


def test_gpu_check_without_an_environment_says_so(tmp_path: Path) -> None:
    """On a fresh clone (no .venv) it fell back to a python without torch and printed a traceback."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")  # a python without torch
    fake.chmod(0o755)
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHON": str(fake)})
    assert res.returncode == 2 and "cannot import torch and mmdata" in res.stderr and "scripts/setup_env.sh" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_gpus_without_device_cuda_stops_before_any_run(tmp_path: Path, tiny: Path) -> None:
    """QA: `mmdata ablate ... --gpus 2` without `--device cuda` ran every run on the CPU, without a word."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.errors import MMDataError

    res = CliRunner().invoke(app, ["ablate", str(_recipe(tmp_path, tiny, sleep=0.0)), "--out", str(tmp_path / "o"),
                                   "--gpus", "2"])
    assert isinstance(res.exception, MMDataError), res.output
    assert "--gpus (gpus=) 2: GPUs are used with --device cuda" in str(res.exception) and "'cpu'" in str(res.exception)
    assert not (tmp_path / "o" / "runs.parquet").exists()
