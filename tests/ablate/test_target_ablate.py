"""Ablating augmentations for a multi-label or regression target (``trainer.target``): the runs train on
the metadata key, the primary metric is the target's (``test.mae``, ``test.micro_f1``), the label-noise
control still plants harm, and a recipe that names a target without a metric is refused before any run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.errors import RecipeError
from mmdata.testing import shard_target_dataset


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard_target_dataset(tmp_path_factory.mktemp("target_ab"), n=60, manifest="manifest.jsonl", meta=("score", "genres"))


def _recipe(data: Path, target: str, metric: str | None) -> dict:
    return {"dataset": {"path": str(data)}, "seeds": 2,
            "trainer": {"target": target, "epochs": 2, "batch_size": 8, "eval_robustness": True},
            **({"metric": metric} if metric else {}),
            "design": {"mode": "explicit", "baseline": None,
                       "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout", "p": 0.5}]}}},
            "controls": {"identity": False, "label_noise": 0.5}}


@pytest.mark.parametrize(("target", "metric", "label"), [("score", "test.mae", "MAE"),
                                                          ("genres", "test.micro_f1", "micro-F1 (points)")])
def test_a_target_ablation_runs_scores_and_reports_its_metric(scored: Path, tmp_path: Path, target: str, metric: str,
                                                              label: str) -> None:
    out = tmp_path / "o"
    mmdata.ablate.run(_recipe(scored, target, metric), out, workers=1, progress=False)
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert {r["status"] for r in rows} == {"ok"} and {r["arm"] for r in rows} == {"baseline", "cutout", "label_noise"}
    col = "test_" + metric.split(".")[1]
    assert all(isinstance(r[col], float) for r in rows) and not any("test_accuracy" in r for r in rows)
    score = "mae" if target == "score" else "micro_f1"
    assert all(f"missing_image_{score}" in r and f"robust_audio_{score}_auc" in r for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["primary_metric"]["label"] == label and summary["primary_metric"]["column"] == col
    assert summary["primary_metric"]["higher_is_better"] is (target == "genres")
    report = (out / "report.md").read_text()
    assert label in report and "label_noise" in report


def test_a_target_without_a_metric_is_refused_before_any_run(scored: Path, tmp_path: Path) -> None:
    """A label-set target ('genres'); a number column defaults to test.mae instead (QA33 onemodality #8:
    tests/train/test_trainer_qa33.py)."""
    p = tmp_path / "ab.yaml"
    p.write_text(yaml.safe_dump(_recipe(scored, "genres", None)))
    with pytest.raises(RecipeError, match=r"trainer.target: 'genres' .* metric: test.micro_f1 .* metric: test.mae"):
        mmdata.ablate.run(p, tmp_path / "o", workers=1, progress=False)
    assert not (tmp_path / "o" / "runs.parquet").exists()


def test_a_target_the_data_lacks_is_refused_naming_the_recipe_key(scored: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"dataset.path: .*no training sample has the metadata key 'nope'"):
        mmdata.ablate.run(_recipe(scored, "nope", "test.mae"), tmp_path / "o", workers=1, progress=False)


def test_the_metric_must_be_one_the_trainer_returns_for_the_target(scored: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"'test.accuracy' is not a metric the bundled trainer returns for a "
                                          r"trainer.target; choose one of \['test.micro_f1'"):
        mmdata.ablate.run(_recipe(scored, "score", "test.accuracy"), tmp_path / "o", workers=1, progress=False)
    plain = _recipe(scored, "score", "test.mae")
    del plain["trainer"]["target"]
    with pytest.raises(RecipeError, match=r"'test.mae' is not a metric .* \(with trainer.target: test.micro_f1"):
        mmdata.ablate.run(plain, tmp_path / "o", workers=1, progress=False)


def test_the_metric_must_fit_the_targets_kind(scored: Path, tmp_path: Path) -> None:
    """Known before any run (every run trained, then failed on a missing test_mae)."""
    with pytest.raises(RecipeError, match=r"metric.name: 'test.mae' is not scored for trainer.target 'genres', a "
                                          r"multilabel target; choose one of \['test.micro_f1'"):
        mmdata.ablate.run(_recipe(scored, "genres", "test.mae"), tmp_path / "o", workers=1, progress=False)
    assert not (tmp_path / "o" / "runs.parquet").exists()


@pytest.mark.parametrize(("target", "metric"), [("score", "test.mae"), ("genres", "test.micro_f1")])
def test_arms_with_batch_ops_run_on_a_target(scored: Path, tmp_path: Path, target: str, metric: str) -> None:
    """An arm whose recipe mixes (mixup, mixgen) trains on mixed targets (it was refused before any run)."""
    recipe = _recipe(scored, target, metric)
    recipe["design"]["arms"] = {"mixup": {"seed": 1, "batch": [{"op": "mixup", "p": 0.5}]},
                                "mixgen": {"seed": 1, "batch": [{"op": "mixgen", "p": 0.5}]}}
    recipe["controls"] = {"identity": False, "label_noise": False}
    recipe["trainer"]["eval_robustness"] = False
    out = tmp_path / "o"
    mmdata.ablate.run(recipe, out, workers=1, progress=False)
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert {r["status"] for r in rows} == {"ok"} and {r["arm"] for r in rows} == {"baseline", "mixup", "mixgen"}
    cols = ["test_mae", "test_rmse"] if target == "score" else ["test_micro_f1", "test_map", "test_nll"]
    by = {(r["arm"], r["seed"]): tuple(r[c] for c in cols) for r in rows}
    assert all(isinstance(v, float) for vs in by.values() for v in vs)
    assert any(by[(arm, s)] != by[("baseline", s)] for arm in ("mixup", "mixgen") for s in {r["seed"] for r in rows})
