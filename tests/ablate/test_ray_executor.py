"""`--executor ray` for ablations on a real local 2-node Ray cluster (tests/conftest.py: ray_cluster):
the runs and rows equal the local executor's, a failed run is recorded while the rest finishes, a
driver stopped mid-ablation and restarted (``--address`` of the running head) leaves every (arm,
seed) exactly once, and without Ray the flag names the extra to install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.ablate.testing import synthetic_recipe as _recipe
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import wait_or_kill

ROOT = Path(__file__).parents[2]
SYN = "mmdata.ablate.testing:synthetic_train"
METRICS = ("test_accuracy", "test_macro_f1", "missing_image_accuracy", "robust_image_auc")


def _saved_rows(runs: Path) -> int:
    """Rows of runs.parquet while the runner rewrites it: read through one open file (``pq.read_table`` of
    a path can open it more than once: a save renamed in between read as a damaged page header, once)."""
    return pq.read_table(pa.BufferReader(runs.read_bytes())).num_rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def _rows(out: Path) -> list[dict]:
    return sorted(pq.read_table(out / "runs.parquet").to_pylist(), key=lambda r: (r["arm"], r["seed"]))


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from mmdata.cli.main import main; main()", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=sigint_as_from_a_terminal)


@pytest.mark.ray
def test_ray_runs_equal_local_runs_and_a_failure_is_recorded(tmp_path: Path, tiny: Path, ray_cluster: object) -> None:
    recipe = _recipe(tmp_path, tiny, fail={"seeds": [2], "arm_has": "image.cutout"})
    s = run(recipe, tmp_path / "ray", executor="ray", progress=False, plots=False)
    local = run(recipe, tmp_path / "local", workers=1, progress=False, plots=False)
    ray_rows, local_rows = _rows(tmp_path / "ray"), _rows(tmp_path / "local")
    assert [(r["arm"], r["seed"], r["status"], r["config_hash"]) for r in ray_rows] == \
           [(r["arm"], r["seed"], r["status"], r["config_hash"]) for r in local_rows]
    for a, b in zip(ray_rows, local_rows):
        assert all(a.get(m) == b.get(m) for m in METRICS), (a, b)
    failed = [r for r in ray_rows if r["status"] == "failed"]
    assert [(r["arm"], r["seed"]) for r in failed] == [("cutout", 2)]
    assert "synthetic failure on seed 2" in failed[0]["error"] and "synthetic_train" in failed[0]["traceback"]
    assert s["runs"]["ok"] == 11 and s["runs"]["failed"] == 1 and s["failures"][0]["seed"] == 2
    assert s["arms"] == local["arms"]  # the same statistics and decisions


@pytest.mark.sigint
@pytest.mark.ray
def test_driver_restart_at_address_runs_every_arm_seed_exactly_once(tmp_path: Path, tiny: Path, ray_cluster) -> None:
    recipe = _recipe(tmp_path, tiny, seeds=6, sleep=0.4)
    out = tmp_path / "out"
    args = ("ablate", str(recipe), "--out", str(out), "--executor", "ray", "--address", ray_cluster.address, "--json")
    proc = _cli(*args)
    runs = out / "runs.parquet"
    deadline = time.time() + 90
    while time.time() < deadline and not (runs.exists() and _saved_rows(runs) >= 3):
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)  # Ctrl-C on the driver: outstanding tasks cancelled, finished runs kept
    rc = wait_or_kill(proc, 60)
    assert rc == 130, proc.stderr.read().decode()
    assert time.time() - t0 < 20
    before = _rows(out)
    assert 3 <= len(before) < 18
    # the restarted driver: this process (connected to the same cluster), like a rerun of the command
    s = run(recipe, out, executor="ray", progress=False, plots=False)
    after = _rows(out)
    pairs = [(r["arm"], r["seed"]) for r in after]
    assert sorted(pairs) == sorted({(a, s) for a in ("baseline", "cutout", "noise") for s in range(6)})
    assert all(r["status"] == "ok" for r in after) and s["runs"]["ok"] == 18
    kept = {(r["arm"], r["seed"]): r["wall_s"] for r in after}
    assert all(kept[(r["arm"], r["seed"])] == r["wall_s"] for r in before)  # finished runs were not repeated


@pytest.mark.ray
def test_a_closure_trainer_is_shipped_to_the_workers(tmp_path: Path, tiny: Path, ray_cluster) -> None:
    from mmdata.ablate.testing import synthetic_train

    bonus = 0.25  # captured: the function cannot be imported by name, Ray pickles it with its closure

    def train(data: str, **kw: object) -> dict:
        m = synthetic_train(data, **kw)
        m["test"]["accuracy"] = min(1.0, m["test"]["accuracy"] + bonus)
        m["test"]["pid"] = os.getpid()
        return m

    recipe = _recipe(tmp_path, tiny, seeds=2)
    s = run(recipe, tmp_path / "ray", train_fn=train, executor="ray", progress=False, plots=False)
    run(recipe, tmp_path / "inline", train_fn=train, progress=False, plots=False)  # a closure runs inline locally
    rows, inline = _rows(tmp_path / "ray"), _rows(tmp_path / "inline")
    assert s["runs"]["ok"] == 6 and [r["test_accuracy"] for r in rows] == [r["test_accuracy"] for r in inline]
    assert {r["test_pid"] for r in inline} == {os.getpid()} and os.getpid() not in {r["test_pid"] for r in rows}


@pytest.mark.ray
def test_a_run_past_its_time_limit_fails_on_ray_and_the_rest_finish(tmp_path: Path, tiny: Path, ray_cluster) -> None:
    """--run-timeout on Ray: the task runs in its worker's main thread, where the limit's SIGALRM
    stops the trainer; the row is a failed run and the worker serves the next tasks."""
    from mmdata.ablate.testing import synthetic_train

    def train(data: str, seed: int = 0, **kw: object) -> dict:
        if seed == 1:
            time.sleep(120)
        return synthetic_train(data, seed=seed, **kw)

    s = run(_recipe(tmp_path, tiny, seeds=2), tmp_path / "ray", train_fn=train, executor="ray", progress=False,
            plots=False, run_timeout=3)
    assert s["runs"]["ok"] == 3 and {(f["seed"], f["error"].split(":")[0]) for f in s["failures"]} == {(1, "RunTimeout")}


@pytest.mark.ray
def test_ray_runs_read_a_dataset_at_an_http_url_on_the_nodes(tmp_path: Path, tiny: Path, ray_cluster,
                                                             serve_folder) -> None:
    import mmdata
    from mmdata.ablate.testing import synthetic_train

    def train(data: str, **kw: object) -> dict:  # reads the data it is given, where the task runs
        m = synthetic_train(data, **kw)
        m["test"]["samples_read"] = sum(1 for _ in mmdata.open_dataset(data, split="test", decode=False))
        m["test"]["pid"] = os.getpid()
        return m

    url = serve_folder(tiny.parent) + "/" + tiny.name
    s = run(_recipe(tmp_path, url, seeds=2), tmp_path / "ray", train_fn=train, executor="ray", progress=False,
            plots=False)
    rows = _rows(tmp_path / "ray")
    test_samples = mmdata.open_dataset(tiny, split="test").num_samples
    assert s["runs"]["ok"] == 6 and {r["test_samples_read"] for r in rows} == {test_samples} and test_samples > 0
    assert os.getpid() not in {r["test_pid"] for r in rows}  # read on the Ray workers, from their node's cache


@pytest.mark.sigint
@pytest.mark.ray
def test_close_cancels_outstanding_tasks_on_a_callers_connection(tiny: Path, ray_cluster) -> None:
    import ray

    from mmdata.ablate.ray_executor import RayExecutor

    def task(seed: int, sleep: float) -> dict:
        return {"arm": "a", "seed": seed, "hash": "h", "fingerprint": "f", "data": str(tiny), "recipe": None,
                "label_noise": 0.0, "entry": SYN, "trainer": {"sleep": sleep}, "threads": 1}

    signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever this pytest worker was handed
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    ex = RayExecutor()  # the test process's own ray.init connection: not shut down by close()
    rows: list[dict] = []

    def ctrl_c_once_both_run() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and ray.available_resources().get("CPU", 0) > 0:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_both_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        try:
            ex.run([task(s, 60.0) for s in range(3)], rows.append)
        finally:
            ex.close()
    t0 = time.time()
    assert rows == [] and ray.is_initialized()
    while time.time() - t0 < 20 and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2, "the 60 s runs kept their CPUs after close()"


def test_executor_ray_without_ray_names_the_extra(tmp_path: Path, tiny: Path, cli_without_ray) -> None:
    p = cli_without_ray("ablate", _recipe(tmp_path, tiny), "--out", tmp_path / "out", "--executor", "ray")
    assert p.returncode == 2, p.stderr
    assert "pip install -e '.[ray]' in a clone of mmdata" in p.stderr and "--executor ray" in p.stderr
    assert not (tmp_path / "out" / "runs.parquet").exists()


def test_unknown_executor_and_stray_address_are_clear_errors(tmp_path: Path, tiny: Path) -> None:
    from mmdata.errors import MMDataError

    with pytest.raises(MMDataError, match="expected 'local' or 'ray'"):
        run(_recipe(tmp_path, tiny), tmp_path / "out", executor="dask", progress=False)
    with pytest.raises(MMDataError, match="is for executor='ray'"):
        run(_recipe(tmp_path, tiny), tmp_path / "out", address="auto", progress=False)
