"""QA23 notebook D5: ``mmdata.train.train(...)`` kept its warnings ("the reported model ... normalises with
BatchNorm statistics from only 1 training batch ... unreliable") in the returned dict alone — a notebook
cell that did not print ``m["warnings"]`` showed nothing. Each is now also a :class:`TrainWarning` from
the caller's line, once per call; ``mmdata train`` prints each once (its own ``warning:`` line), and an
ablation's runs stay quiet (the report counts them from each run's ``warnings``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.ablate import run as ablate
from mmdata.ablate.design import AblationWarning
from mmdata.testing import make_sample_folder
from mmdata.train import train
from mmdata.train.loop import TrainWarning

FAST = {"epochs": 1, "threads": 1, "eval_robustness": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 samples, 6 in train: one training batch, so every run warns of its BatchNorm statistics."""
    root = tmp_path_factory.mktemp("train_warn")
    make_sample_folder(root / "raw", n=12)
    mmdata.shard(root / "raw", root / "ds", split="train=0.5,val=0.25,test=0.25", seed=0, progress=False)
    return root / "ds"


def test_a_python_call_raises_each_result_warning_once_from_the_callers_line(tiny: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = train(tiny, **FAST)
    said = [w for w in caught if issubclass(w.category, TrainWarning)]
    assert m["warnings"] and any("BatchNorm" in w for w in m["warnings"])
    assert [str(w.message) for w in said] == list(dict.fromkeys(m["warnings"]))  # each once, the texts as they are
    assert issubclass(TrainWarning, UserWarning)
    assert all(w.filename == __file__ for w in said), [w.filename for w in said]  # the caller's line, not mmdata's


def test_each_call_says_them_again_under_the_default_filter(tiny: Path) -> None:
    """A notebook reruns a cell: the default filter's registry must not hide the second call's warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            train(tiny, **FAST)
    said = [str(w.message) for w in caught if issubclass(w.category, TrainWarning)]
    assert len(said) == 2 * len(set(said)) and any("BatchNorm" in s for s in said), said


def test_ignored_train_warnings_leave_the_result_as_it_was(tiny: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", TrainWarning)
        m = train(tiny, **FAST)
    assert not [w for w in caught if issubclass(w.category, TrainWarning)]
    assert any("BatchNorm" in w for w in m["warnings"])


def test_the_cli_prints_each_warning_once(tiny: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    res = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "train", str(tiny), "--epochs", "1", "--threads", "1",
                          "--no-robustness", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                         cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if "BatchNorm" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: "), res.stderr
    assert "TrainWarning" not in res.stderr and "warnings.warn" not in res.stderr, res.stderr
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["warnings"]
    assert any("BatchNorm" in w for w in saved)


def test_an_ablations_runs_raise_none_and_the_report_counts_them(tiny: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"epochs": 1, "eval_robustness": False}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"cutout": {"seed": 0, "image": [{"op": "cutout"}]}}},
           "controls": {"identity": False}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ablate(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    assert not [w for w in caught if issubclass(w.category, TrainWarning)], [str(w.message) for w in caught]
    counted = [str(w.message) for w in caught if issubclass(w.category, AblationWarning) and "BatchNorm" in str(w.message)]
    assert len(counted) == 1 and counted[0].startswith("the trainer warned in 4 of 4 runs"), counted
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert all(any("BatchNorm" in w for w in json.loads(r["warnings"])) for r in rows)
