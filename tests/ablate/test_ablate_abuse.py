"""The ablation runner under abuse (a QA pass, 2026-12-03): a SIGKILL while a long run is going, two
jobs into one folder, a trainer that calls sys.exit in this process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]
TRAINER = '''
import os, sys, time
def train(data, *, recipe=None, seed=0, hang_seed=-1, exit_seed=-1, marker="", sleep=0.0, **kw):
    ops = [s["op"] for s in (recipe or {}).get("image", [])]
    time.sleep(sleep)
    if "cutout" in ops and seed == hang_seed:
        open(marker, "w").close()
        time.sleep(600)
    if "cutout" in ops and seed == exit_seed:
        sys.exit(3)
    return {"test": {"accuracy": 0.7 + 0.001 * (seed % 7) + (0.03 if "cutout" in ops else 0)}}
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("abuse") / "av", limit=4, progress=False)


def _setup(tmp_path: Path, data: Path, seeds: int = 8, **trainer: object) -> tuple[Path, dict[str, str]]:
    (tmp_path / "qat.py").write_text(TRAINER)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "qat:train", **trainer}, "seeds": seeds,
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]},
                      "arms": {"cutout": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}, {"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "ab.yaml", {**os.environ, "PYTHONPATH": str(tmp_path)}


def _wait(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} did not appear in {timeout} s"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_sigkill_during_a_long_run_keeps_every_run_finished_before_it(tmp_path: Path, tiny: Path, workers: str) -> None:
    """Saves were throttled to one per 0.5 s and made only when a run finished: the runs of the last
    burst waited in memory for the next one, which may take hours; a SIGKILL lost 22 of 23."""
    marker = tmp_path / "hanging"
    recipe, env = _setup(tmp_path, tiny, hang_seed=7, marker=str(marker))
    p = subprocess.Popen([*CLI, "ablate", "--trust-code", str(recipe), "--out", str(tmp_path / "o"), "-j", workers, "--json"],
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(marker)
        time.sleep(1.5)  # > SAVE_EVERY_S: the timer has saved what finished before the long run
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    done = {(r["arm"], r["seed"]) for r in rows}
    # seed-major: every run of seeds 0-6 and the baseline of seed 7 finished before cutout/7 began
    assert {(a, s) for s in range(7) for a in ("baseline", "cutout")} <= done, sorted(done)


def test_a_second_job_into_the_same_folder_is_refused(tmp_path: Path, tiny: Path) -> None:
    """Two jobs into one folder each rewrote runs.parquet from their own memory: the second's 18 runs
    were erased, the config was one job's and the report the other's, and both exited 0."""
    marker = tmp_path / "hanging"
    recipe, env = _setup(tmp_path, tiny, hang_seed=1, marker=str(marker))
    out = tmp_path / "o"
    p = subprocess.Popen([*CLI, "ablate", "--trust-code", str(recipe), "--out", str(out), "-j", "1", "--json"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(marker)
        time.sleep(1.5)  # the first job's own save of the runs before the long one
        before = (out / "runs.parquet").read_bytes() if (out / "runs.parquet").exists() else None
        second = subprocess.run([*CLI, "ablate", "--trust-code", str(recipe), "--out", str(out), "-j", "1", "--seeds", "4"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 75, second.stderr  # busy: retry later (QA26 F12), not bad input
        assert "is being written by another job" in second.stderr and "mmdata ablate" in second.stderr
        assert ((out / "runs.parquet").read_bytes() if (out / "runs.parquet").exists() else None) == before
        assert yaml.safe_load((out / "config.resolved.yaml").read_text())["seeds"] == 8  # not the second's 4
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # the kernel released the dead job's lock: a rerun resumes (the long run now ends: no marker wait)
    recipe, env = _setup(tmp_path, tiny)
    r = subprocess.run([*CLI, "ablate", "--trust-code", str(recipe), "--out", str(out), "-j", "1", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["runs"]["ok"] == 16 and not (out / ".mmdata-lock").exists()


def test_a_trainer_calling_sys_exit_in_this_process_is_a_failed_run(tmp_path: Path, tiny: Path) -> None:
    """With -j 1 the trainer runs in the CLI's own process: its sys.exit(3) ended the ablation with exit
    code 3, no message, no failed row and no report, at the same run on every rerun."""
    recipe, env = _setup(tmp_path, tiny, seeds=4, exit_seed=2)
    r = subprocess.run([*CLI, "ablate", "--trust-code", str(recipe), "--out", str(tmp_path / "o"), "-j", "1", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    (failure,) = summary["failures"]
    assert failure["arm"] == "cutout" and failure["seed"] == 2 and "SystemExit: 3" in failure["error"]
    assert (tmp_path / "o" / "report.md").is_file() and summary["runs"]["ok"] == 7


_EXPLICIT = {"mode": "explicit", "arms": {"cutout": {"image": [{"op": "cutout"}]}}}


@pytest.mark.parametrize("recipe,says", [
    ({"delta": float("inf"), "design": _EXPLICIT}, "delta: expected a positive number"),  # was: a +3 effect 'negligible'
    ({"delta": True, "design": _EXPLICIT}, "delta: expected a positive number"),  # was: delta 1.0
    ({"alpha": True, "design": _EXPLICIT}, "alpha: expected"),
    ({"dataset": {"name": "avdigits", "limitt": 3}, "design": _EXPLICIT}, "dataset: unknown key(s) ['limitt']"),
    ({"dataset": {"name": "avdigits", "seed": "abc"}, "design": _EXPLICIT}, "dataset.seed: expected an integer"),
    ({"dataset": {"path": "x", "name": "avdigits"}, "design": _EXPLICIT}, "dataset: expected"),
    ({"trainer": "fast", "design": _EXPLICIT}, "trainer: expected a mapping"),
    ({"trainer": [1, 2], "design": _EXPLICIT}, "trainer: expected a mapping"),
    ({"design": "leave_one_out"}, "design: expected a mapping"),
    ({"design": {**_EXPLICIT, "baselin": {"image": [{"op": "hflip"}]}}}, "design: unknown key(s) ['baselin']"),
    ({"design": {"mode": "sweep", "section": "image", "op": "cutout", "param": "p", "values": 3}}, "design.values: expected a list"),
    ({"seeds": 100_000, "design": _EXPLICIT}, "seeds: need an integer of 2 to 1000"),
])
def test_recipe_mistakes_are_one_line_naming_the_key(recipe: dict, says: str) -> None:
    """Each was a traceback (AttributeError, ValueError, TypeError), a silent default, a wrong verdict or,
    for 100,000 seeds, 12 GiB and the kernel's OOM killer (a QA pass, 2026-12-03)."""
    from mmdata.ablate.design import load_ablation
    from mmdata.errors import RecipeError

    with pytest.raises(RecipeError) as exc:
        load_ablation({"dataset": {"path": "unused"}, **recipe}, own_trainer=True)
    assert says in str(exc.value), str(exc.value)
