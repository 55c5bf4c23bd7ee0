"""QA: `mmdata ablate` printed the trainer's PaddingWarning once per run (with `-j 2` in Python's raw
format: file, line, ~900 characters and the source line), while the BatchNorm warning of the same runs
was counted into one "the trainer warned in N of M runs" line and runs.parquet's `warnings` column.
The padding warning now takes that same way, with `-j 1`, `-j 2` (and Ray: all call run_task)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.ablate import run
from mmdata.ablate.design import AblationWarning
from mmdata.ablate.executor import run_task
from mmdata.augment.loader import PaddingWarning
from mmdata.testing import make_messy_folder

PADDING = "mmdata.train: zero padding in the batches of the train split (each split's loader found it): 0.{s}0 s"

TRAINER = '''
import warnings
from mmdata.ablate.testing import synthetic_train
from mmdata.augment.loader import PaddingWarning


def train(data, *, seed=0, **kw):
    """The synthetic trainer, saying a padding warning once per run as mmdata.train does."""
    warnings.warn(f"mmdata.train: zero padding in the batches of the train split: 0.{seed}0 s", PaddingWarning)
    return synthetic_train(data, seed=seed, **kw)
'''


def _task(**kw: Any) -> dict[str, Any]:
    return {"arm": "baseline", "seed": 1, "hash": "h", "fingerprint": "f", "data": "d", "recipe": None,
            "label_noise": 0.0, **kw}


def test_run_task_keeps_the_padding_warning_in_its_row_and_shows_nothing() -> None:
    def train(data: str, *, seed: int = 0, **kw: Any) -> dict[str, Any]:
        for _ in range(2):  # said twice: kept once
            warnings.warn(PADDING.format(s=seed), PaddingWarning)
        warnings.warn("something else", UserWarning)
        return {"test": {"accuracy": 0.5}, "warnings": ["BatchNorm statistics from only 1 training batch"]}

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        row = run_task(_task(), train)
    assert row["status"] == "ok"
    assert json.loads(row["warnings"]) == ["BatchNorm statistics from only 1 training batch", PADDING.format(s=1)]
    assert [str(w.message) for w in shown] == ["something else"]


def test_a_failed_runs_padding_warning_is_in_its_row() -> None:
    def train(data: str, **kw: Any) -> dict[str, Any]:
        warnings.warn(PADDING.format(s=0), PaddingWarning)
        raise ValueError("boom")

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        row = run_task(_task(), train)
    assert row["status"] == "failed" and json.loads(row["warnings"]) == [PADDING.format(s=0)] and not shown


def test_ignored_or_error_filters_are_left_to_decide() -> None:
    def train(data: str, **kw: Any) -> dict[str, Any]:
        warnings.warn(PADDING.format(s=0), PaddingWarning)
        return {"test": {"accuracy": 0.5}}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PaddingWarning)
        assert "warnings" not in run_task(_task(), train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PaddingWarning)
        assert run_task(_task(), train)["error"].startswith("PaddingWarning: ")


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pad_ab")
    make_messy_folder(root / "raw", n=24, sizes=((32, 32),), seconds=(0.6, 4.0), unlabelled=0.0)
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


def test_bundled_trainer_padding_warning_is_counted_over_runs_not_said_per_run(tmp_path: Path, messy: Path) -> None:
    cfg = {"dataset": {"path": str(messy)}, "trainer": {"epochs": 1}, "seeds": 2,
           "design": {"mode": "leave_one_out", "recipe": {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]}},
           "controls": {"identity": False}}
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    assert not [w for w in shown if issubclass(w.category, PaddingWarning)]
    said = [str(w.message) for w in shown if issubclass(w.category, AblationWarning) and "zero padding" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("the trainer warned in 4 of 4 runs"), said
    assert "mmdata.train: zero padding in the batches of the train" in said[0]
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert all(any("zero padding" in w for w in json.loads(r["warnings"])) for r in rows)
    assert said[0] in s["warnings"]


def test_worker_processes_print_no_raw_padding_warning(tmp_path: Path, messy: Path) -> None:
    (tmp_path / "padtrainer.py").write_text(textwrap.dedent(TRAINER))
    cfg = {"dataset": {"path": str(messy)}, "trainer": {"entry": "padtrainer:train"}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"cutout": {"seed": 0, "image": [{"op": "cutout"}]}}},
           "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "ablate", "ab.yaml", "--out",
                          "o", "-j", "2", "--trust-code"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "PaddingWarning" not in res.stderr and "warnings.warn" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "zero padding" in ln]
    assert len(lines) == 1 and "the trainer warned in 4 of 4 runs" in lines[0], res.stderr
