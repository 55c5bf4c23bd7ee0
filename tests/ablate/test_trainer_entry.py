"""Ablate your own model: the contract, `--trainer package.module:function`, `trainer.entry`, and the
example in examples/ (a plain PyTorch loop over mmdata.loader) run by real worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmdata.ablate import run
from mmdata.ablate.executor import flatten_metrics, resolve_entry
from mmdata.errors import MMDataError

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def test_entry_resolution_and_contract_errors() -> None:
    import mmdata.train

    assert resolve_entry(None) is mmdata.train.train
    with pytest.raises(MMDataError, match="expected 'package.module:function'"):
        resolve_entry("nocolon")
    with pytest.raises(MMDataError, match="cannot import module 'no_such_pkg.mod'"):
        resolve_entry("no_such_pkg.mod:fn")
    with pytest.raises(MMDataError, match="has no attribute 'nope'"):
        resolve_entry("mmdata.ablate.testing:nope")
    with pytest.raises(MMDataError, match="must return a dict with a 'test' mapping"):
        flatten_metrics({"accuracy": 0.9})


def test_metric_types_numpy_tensors_and_a_string(tiny: Path) -> None:
    """NumPy scalars and one-element tensors are numbers (np.float32 was dropped as 'missing'); a
    string is named as what it is, not 'missing' (QA 2026-12-02)."""
    import numpy as np
    import torch

    from mmdata.ablate.executor import run_task

    row = flatten_metrics({"test": {"accuracy": np.float32(0.5), "nll": torch.tensor(1.25), "f1": np.int64(1),
                                    "flag": True, "name": "x", "per_class": torch.ones(3)}})
    assert row == {"test_accuracy": 0.5, "test_nll": 1.25, "test_f1": 1.0}

    def says_a_string(data, **kw):  # noqa: ANN001, ANN003, ANN202
        return {"test": {"accuracy": "0.5"}}

    task = {"arm": "a", "seed": 0, "hash": "h", "fingerprint": "f", "data": str(tiny), "recipe": {}, "label_noise": 0.0,
            "entry": None, "trainer": {}, "primary": "test_accuracy"}
    out = run_task(task, says_a_string)
    assert out["status"] == "failed"
    assert "primary metric 'test_accuracy' is not a number: test.accuracy = '0.5' (str)" in out["error"]


def test_example_trainer_is_deterministic(tiny: Path) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from custom_trainer import train
    finally:
        sys.path.remove(str(ROOT / "examples"))
    rec = {"image": [{"op": "cutout", "p": 0.5}]}
    a = train(tiny, recipe=rec, seed=3, label_noise=0.3, epochs=1)
    assert a == train(tiny, recipe=rec, seed=3, label_noise=0.3, epochs=1)
    assert 0.0 <= a["test"]["accuracy"] <= 1.0 and a["test"]["loss"] > 0


def test_cli_trainer_option_runs_the_example_in_worker_processes(tmp_path: Path, tiny: Path) -> None:
    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"epochs": 1}, "seeds": 2,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False, "label_noise": 0.3}}
    recipe = tmp_path / "ab.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "examples")}
    res = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import app; app()", "ablate", str(recipe), "--out",
                          str(tmp_path / "o"), "--trainer", "custom_trainer:train", "-j", "2", "--json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert [a["n_seeds"] for a in s["arms"]] == [2, 2] and not s["failures"]
    assert "test_loss" in s["arms"][0]["exploratory"]  # the example's extra metric, exploratory
    # whose direction mmdata does not know: not claimed (it said higher_is_better: true for a loss)
    assert s["arms"][0]["exploratory"]["test_loss"]["higher_is_better"] is None
    resolved = yaml.safe_load((tmp_path / "o" / "config.resolved.yaml").read_text())
    assert resolved["trainer"]["entry"] == "custom_trainer:train"


def test_recipe_entry_and_in_process_callable(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.testing import synthetic_train

    cfg = {"dataset": {"path": str(tiny)}, "seeds": 3, "design": {"mode": "explicit", "arms": {"a": None}},
           "controls": {"identity": False}}
    s = run(cfg, tmp_path / "fn", train_fn=synthetic_train, workers=2, progress=False, plots=False)  # importable: workers
    assert s["runs"]["ok"] == 6
    s = run(cfg, tmp_path / "lam", train_fn=lambda data, **kw: synthetic_train(data, **kw), progress=False, plots=False)
    assert s["runs"]["ok"] == 6  # a lambda cannot be imported by a worker: it runs in this process
