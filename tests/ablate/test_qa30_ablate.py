"""QA round 30 on the ablation: a killed job's temp files are removed by the next job into the folder
(resume #1), ``holm`` refuses a NaN or out-of-range p-value (apidocs D1), the count of runs at a constant
predictor includes those always predicting a class the test split lacks (extremes #3), and the public
names ``run`` documents are importable from ``mmdata.ablate`` (apidocs D5, D10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mmdata
import mmdata.ablate as A
from mmdata.io import _host_tag


def _dead_pid() -> int:
    """The pid of a process of this machine that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _plant(folder: Path, name: str, pid: int) -> Path:
    p = folder / f".{name}.mmdata-{_host_tag()}-{pid}-abcd1234.tmp"
    p.write_bytes(b"partial")
    return p


def _train(data: object, *, recipe: object = None, seed: int = 0, label_noise: float = 0.0, **kw: object) -> dict:
    return {"test": {"accuracy": 0.6 + 0.01 * seed - 0.1 * label_noise, "macro_f1": 0.5}}


def _recipe(data: Path, seeds: int = 2) -> dict:
    return {"dataset": {"path": str(data)}, "trainer": {}, "seeds": seeds, "metric": "test.accuracy",
            "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout", "p": 0.5}]}}},
            "controls": {"identity": False, "label_noise": 0.3}}


@pytest.fixture(scope="module")
def absent_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sharded dataset of two classes whose test split holds one example of `a`: `b` is trained on, never tested."""
    from mmdata.testing import make_class_folders

    root = tmp_path_factory.mktemp("absent")
    raw = make_class_folders(root / "raw", per_class=3, classes=("a", "b"))
    rows = [{"image": str(p), "label": p.parent.name,
             "split": "test" if (p.parent.name, p.stem) == ("a", "000") else ("val" if p.stem == "001" else "train")}
            for p in sorted(raw.rglob("*.png"))]
    pd.DataFrame(rows).to_csv(raw / "manifest.csv", index=False)
    mmdata.shard(raw / "manifest.csv", root / "ds", progress=False)
    return root / "ds"


def test_a_rerun_removes_the_temp_files_a_killed_ablation_left(absent_class: Path, tmp_path: Path) -> None:
    """resume #1: `.runs.parquet.mmdata-<host>-<pid>-*.tmp` of a SIGKILLed job stayed in the finished folder."""
    out = tmp_path / "out"
    A.run(_recipe(absent_class), out, train_fn=_train, workers=1, progress=False, plots=False, max_runs=2)
    dead = _dead_pid()
    stale = [_plant(out, n, dead) for n in ("runs.parquet", "summary.json", "report.md", "paired.csv",
                                            "config.resolved.yaml", "env.json")]
    (out / "configs").mkdir()
    stale.append(_plant(out / "configs", "0123456789ab.yaml", dead))
    live = _plant(out, "runs.parquet", os.getpid())  # a live writer's is kept
    other = _plant(out, "notes.txt", dead)  # not a file the ablation writes
    A.run(_recipe(absent_class), out, train_fn=_train, workers=1, progress=False, plots=False)
    assert len(pd.read_parquet(out / "runs.parquet")) == 6
    assert [p.name for p in stale if p.exists()] == []
    assert live.exists() and other.exists()


def test_ablate_folds_removes_a_killed_gather_temp_files(absent_class: Path, tmp_path: Path) -> None:
    folds = []
    for k in range(2):
        folds.append(tmp_path / f"f{k}")
        cfg = _recipe(absent_class)
        cfg["trainer"] = {"val_split": "val", "test_split": "test"} if k == 0 else {"val_split": "test", "test_split": "val"}
        A.run(cfg, folds[-1], train_fn=_train, workers=1, progress=False, plots=False)
    out = tmp_path / "pooled"
    out.mkdir()
    dead = _dead_pid()
    stale = [_plant(out, n, dead) for n in ("summary.json", "report.md", "forest.png")]
    A.gather(folds, out, plots=False)
    assert [p.name for p in stale if p.exists()] == []
    assert json.loads((out / "summary.json").read_text())["arms"]


def test_holm_refuses_nan_and_values_that_are_not_probabilities() -> None:
    """apidocs D1: holm([nan, 0.01]) was [0.02, 0.02] — the NaN test 'significant at 5%'; -0.1 and 1.5 were clipped."""
    with pytest.raises(ValueError, match=r"holm: p-value 0 is nan"):
        A.holm([float("nan"), 0.01])
    with pytest.raises(ValueError, match=r"holm: p-value 0 is -0\.1.*\[0, 1\]"):
        A.holm([-0.1, 0.2])
    with pytest.raises(ValueError, match=r"holm: p-value 1 is 1\.5"):
        A.holm([0.3, 1.5])
    with pytest.raises(ValueError, match=r"holm: p-value 0 is inf"):
        A.holm([float("inf")])
    assert A.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06] and A.holm([0.0, 1.0]) == [0.0, 1.0] and A.holm([]) == []


def test_runs_always_predicting_a_class_absent_from_test_are_counted(absent_class: Path) -> None:
    """extremes #3: 13 of 15 runs predicted the class the test split lacks (accuracy 0, macro-F1 0) and were not
    counted as at a constant predictor; the baseline's runs were missing from the per-arm counts."""
    from mmdata.ablate.design import load_ablation
    from mmdata.ablate.report_reference import constant_runs, data_reference

    ref = data_reference(load_ablation(_recipe(absent_class)))
    assert ref is not None and ref["absent_from_test"] == ["b"] and ref["best_constant"] == "a"
    assert ref["constant"]["b"] == {"accuracy": 0.0, "macro_f1": 0.0}
    assert ref["constant"]["a"] == {"accuracy": 1.0, "macro_f1": 1.0}
    rows = ([{"arm": "baseline (full recipe)", "seed": s, "status": "ok", "test_accuracy": 0.0, "test_macro_f1": 0.0}
             for s in range(3)]
            + [{"arm": "cutout", "seed": s, "status": "ok", "test_accuracy": 0.0, "test_macro_f1": 0.0} for s in range(3)]
            + [{"arm": "label_noise", "seed": 0, "status": "ok", "test_accuracy": 1.0, "test_macro_f1": 1.0},
               {"arm": "label_noise", "seed": 1, "status": "ok", "test_accuracy": 0.5, "test_macro_f1": 0.4}])
    assert constant_runs(ref, rows) == {"runs": 7, "of": 8, "arms": {"baseline (full recipe)": 3, "cutout": 3,
                                                                     "label_noise": 1}}


def test_the_documented_exceptions_are_importable_from_mmdata_ablate() -> None:
    """apidocs D10 / D5: Interrupted (run's Raises:) and AblationWarning (docs/ablation.md's filterable warning)."""
    from mmdata.ablate.design import AblationWarning
    from mmdata.ablate.executor import RunTimeout
    from mmdata.ablate.runner import Interrupted

    assert {"Interrupted", "AblationWarning"} <= set(A.__all__)
    assert A.Interrupted is Interrupted and A.AblationWarning is AblationWarning
    assert not issubclass(RunTimeout, Exception) and "except Exception" in (RunTimeout.__doc__ or "")
    doc = A.run.__doc__ or ""
    assert "\n        gpus:" in doc and "\n        progress:" in doc
