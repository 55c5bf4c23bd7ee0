"""Multi-label and regression targets (``train(..., target=KEY)``, ``mmdata train --target KEY``): a
manifest's metadata column trains the reference model without re-sharding.

Before (2026-12-04) the trainer predicted the card's class label only: MM-IMDb-style genres (a label
set per sample) or CMU-MOSI-style sentiment (a number) could not be trained or ablated at all."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, mean_absolute_error

import mmdata
from mmdata import Sample, collate
from mmdata.errors import MMDataError
from mmdata.testing import shard_target_dataset
from mmdata.train import FusionModel, train
from mmdata.train.evaluate import evaluate
from mmdata.train.loop import train_step
from mmdata.train.targets import Target, resolve

FAST = {"epochs": 12, "batch_size": 8, "threads": 1, "eval_robustness": False}


@pytest.fixture(scope="module")
def targets_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder's CSV manifest with a numeric ``score`` and a label-set ``genres`` column (JSON
    lists in the cells) that follow the class, sharded into train / val / test with both as metadata."""
    return shard_target_dataset(tmp_path_factory.mktemp("targets"), n=80, meta=("score", "genres", "speaker"))


def _truth(ds: Path, split: str, key: str) -> dict[str, object]:
    """The metadata value of ``key`` in every sample of ``split``, by sample key (read as a user would)."""
    return {s.key: (s.fields.get("json") or {}).get(key) for s in mmdata.ShardDataset(ds, split=split)}


def test_regression_target_learns_and_scores_in_its_own_units(targets_ds, tmp_path: Path) -> None:
    ds = targets_ds
    m = train(ds, target="score", out=tmp_path / "run", **FAST)
    train_values = [v for v in _truth(ds, "train", "score").values() if v is not None]
    assert m["target"] == {"kind": "regression", "key": "score", "train_mean": pytest.approx(np.mean(train_values)),
                           "train_sd": pytest.approx(np.std(train_values))}
    assert "classes" not in m and m["correct_on_test"] is None
    assert m["test"]["r"] > 0.8 and m["test"]["mae"] < 0.6  # the score follows the class: learnable
    assert [h.get("val_mae") is not None for h in m["history"]] == [True] * FAST["epochs"]
    best = min(range(len(m["history"])), key=lambda e: m["history"][e]["val_mae"])
    assert m["best_epoch"] == best and m["val"]["mae"] == m["history"][best]["val_mae"]
    truth = _truth(ds, "test", "score")
    unlabelled = sum(v is None for v in truth.values())
    assert m["samples"]["test"] == {"samples": len(truth), "labelled": len(truth) - unlabelled, "unlabelled": unlabelled}
    pred = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert list(pred.columns) == ["key", "split", "target", "pred", "source_key"]
    assert {k: (None if t is None or math.isnan(t) else t) for k, t in zip(pred["key"], pred["target"])} == truth
    have = pred.dropna(subset=["target"])
    assert m["test"]["mae"] == pytest.approx(mean_absolute_error(have["target"], have["pred"]), rel=1e-6)


def test_multilabel_target_learns_and_writes_label_sets(targets_ds, tmp_path: Path) -> None:
    ds = targets_ds
    m = train(ds, target="genres", out=tmp_path / "run", **FAST)
    assert m["target"] == {"kind": "multilabel", "key": "genres", "labels": ["circle", "even", "square", "triangle"]}
    assert m["test"]["micro_f1"] > 0.6
    assert set(m["per_class"]["test"]) == {"circle", "even", "square", "triangle"}
    pred = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert list(pred.columns) == ["key", "split", "labels", "pred_labels", "probs", "source_key"]
    truth = _truth(ds, "test", "genres")
    assert {k: (None if v is None else list(v)) for k, v in zip(pred["key"], pred["labels"])} == {
        k: None if v is None else json.loads(v) for k, v in truth.items()}  # JSON lists in the CSV cells
    have = pred[pred["labels"].notna()]
    names = m["target"]["labels"]
    hot = lambda sets: np.array([[n in s for n in names] for s in sets], dtype=int)  # noqa: E731
    assert m["test"]["micro_f1"] == pytest.approx(f1_score(hot(have["labels"]), hot(have["pred_labels"]), average="micro"))


def test_a_target_run_is_deterministic_and_leaves_classification_alone(targets_ds) -> None:
    ds = targets_ds
    a, b = (train(ds, target="genres", seed=3, **{**FAST, "epochs": 2}) for _ in range(2))
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    plain = train(ds, seed=3, **{**FAST, "epochs": 2})
    assert "target" not in plain and plain["classes"]["names"] == ["circle", "square", "triangle"]
    assert "accuracy" in plain["test"] and "target" not in plain["config"]


def test_robustness_is_measured_on_the_targets_selection_score(targets_ds) -> None:
    ds = targets_ds
    m = train(ds, target="score", **{**FAST, "epochs": 2, "eval_robustness": True})
    rob = m["robustness"]
    assert rob["metric"] == "mae" and set(rob["missing"]) == {"image", "audio", "text"}
    curve = rob["corruption"]["image"]
    assert "mae" in curve and "accuracy" not in curve and curve["mae"][0] == pytest.approx(m["test"]["mae"])


def test_class_target_steps_exactly_as_the_class_count() -> None:
    """train_step(..., Target.classes(n)) is train_step(..., n): the default path did not move."""
    batch = collate([Sample(str(i), {"text": f"word {i}", "label": i % 3}) for i in range(6)])
    losses = []
    for classes in (3, Target.classes(3)):
        torch.manual_seed(0)
        model = FusionModel(["text"], "concat", classes=3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        losses.append([float(train_step(model, opt, batch, classes, label_noise=0.5, seed=1)[0]) for _ in range(3)])
    assert losses[0] == losses[1]


def test_label_noise_replaces_a_fixed_share_of_targets() -> None:
    keys = [f"k{i}" for i in range(2000)]
    reg = Target("regression", "s", [], 10.0, 2.0)
    y = torch.zeros(len(keys))
    y[::10] = math.nan  # unlabelled rows stay unlabelled
    noisy = reg.noisy(y, keys, 0.3, seed=4)
    changed = (noisy != 0) & ~torch.isnan(y)
    assert abs(float(changed.float().mean()) / 0.9 - 0.3) < 0.04
    assert torch.isnan(noisy[::10]).all() and torch.equal(noisy.nan_to_num(), reg.noisy(y, keys, 0.3, seed=4).nan_to_num())
    assert abs(float(noisy[changed].std()) - 1.0) < 0.1  # a standard normal in standardised units
    ml = Target("multilabel", "g", ["a", "b", "c"])
    y = torch.zeros(len(keys), 3)
    y[::10] = -1.0
    noisy = ml.noisy(y, keys, 0.3, seed=4)
    assert torch.equal(noisy[::10], y[::10]) and set(noisy.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_values_read_label_sets_numbers_and_csv_json_lists() -> None:
    ml = Target("multilabel", "g", ["a", "b"])
    batch = collate([Sample("1", {"json": {"g": '["b", "a"]'}}), Sample("2", {"json": {"g": "a"}}),
                     Sample("3", {"json": {"g": []}}), Sample("4", {"json": {"g": None}}), Sample("5", {})])
    y, labelled = ml.values(batch, torch.device("cpu"))
    assert y.tolist() == [[1, 1], [1, 0], [0, 0], [-1, -1], [-1, -1]] and labelled.tolist() == [True, True, True, False, False]
    reg = Target("regression", "s", [], 1.0, 2.0)
    batch = collate([Sample("1", {"json": {"s": 5}}), Sample("2", {"json": {"s": float("nan")}}), Sample("3", {"json": {}})])
    y, labelled = reg.values(batch, torch.device("cpu"))
    assert y[0].item() == 2.0 and torch.isnan(y[1:]).all() and labelled.tolist() == [True, False, False]


def test_evaluate_scores_a_target_like_scikit_learn() -> None:
    reg = Target("regression", "s", [], 3.0, 2.0)
    model = FusionModel(["text"], "concat", classes=1)
    samples = [Sample(str(i), {"text": f"w{i}", "json": {"s": float(i)}}) for i in range(9)] + [Sample("x", {"text": "u"})]
    batch = collate(samples)
    out = evaluate(model, [batch], reg)
    with torch.no_grad():
        pred = model.eval()(batch).squeeze(1).double() * 2.0 + 3.0
    assert out["labelled"] == 9 and out["unlabelled"] == 1 and out["per_class"] == {}
    assert out["scores"]["mae"] == pytest.approx(mean_absolute_error(np.arange(9.0), pred[:9].numpy()))


def test_a_key_no_sample_has_is_refused_naming_it(targets_ds) -> None:
    ds = targets_ds
    with pytest.raises(MMDataError, match=r"no training sample has the metadata key 'nope' \(--target nope\).*--meta nope"):
        train(ds, target="nope", **{**FAST, "epochs": 1})


def test_a_string_column_is_one_label_per_sample(targets_ds) -> None:
    """A speaker column (names with accents, CJK, commas; some blank): one label each, blanks unlabelled."""
    ds = targets_ds
    target, counts, _ = resolve(str(ds), "speaker", {"train": "train", "val": "val", "test": "test"})
    speakers = {v for split in ("train", "val", "test") for v in _truth(ds, split, "speaker").values() if v}
    assert target.kind == "multilabel" and target.names == sorted(speakers)
    assert counts["train"]["unlabelled"] == sum(not v for v in _truth(ds, "train", "speaker").values())


def test_mixed_numbers_and_labels_are_refused(tmp_path: Path) -> None:
    from mmdata.testing import image_bytes

    rows = []
    for i in range(12):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"s{i}", "image": f"{i}.png", "label": "a" if i % 2 else "b",
                     "split": ["train", "val", "test"][i % 3], "y": i if i < 6 else ["x"]})
    pd.DataFrame(rows).to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", meta=["y"], progress=False)
    with pytest.raises(MMDataError, match=r"the target 'y' mixes kinds.*expected numbers \(regression\) or label lists"):
        train(tmp_path / "ds", target="y", **{**FAST, "epochs": 1})


def test_what_targets_do_not_support_is_refused_before_training(targets_ds, tmp_path: Path) -> None:
    """--probe, --label-fraction and the recipe's mixing ops work with a target now
    (tests/train/test_target_mixing.py); same-class negatives of pre-training need a target with classes."""
    ds = targets_ds
    with pytest.raises(MMDataError, match=r"--pretrain-arg exclude_same_class=true with --target score: 'score' is a "
                                          r"numeric target \(regression\).* drop one"):
        train(ds, target="score", pretrain="contrastive", pretrain_args={"exclude_same_class": "true"},
              **{**FAST, "epochs": 1})
    assert not (tmp_path / "contrastive.pt").exists()


def test_cli_trains_a_target_and_prints_its_scores(targets_ds, mmdata_cli, capsys: pytest.CaptureFixture[str]) -> None:
    ds = targets_ds
    code, out = mmdata_cli(["train", str(ds), "--target", "genres", "--epochs", "2", "--batch-size", "8", "--no-robustness"])
    assert code == 0, out
    assert "predicting 'genres' (multilabel)" in out and "micro F1" in out and "test, per label" in out
    assert "highest val micro-F1" in out
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", str(ds), "--target", "score", "--epochs", "2", "--batch-size", "8", "--no-robustness", "--json"])
    assert not exit_.value.code
    m = json.loads(capsys.readouterr().out)
    assert m["target"]["kind"] == "regression" and set(m["test"]) == {"mae", "rmse", "r", "r2"}


def test_ddp_trains_a_target_and_prints_its_scores(targets_ds, tmp_path: Path) -> None:
    """torchrun -m mmdata.train --target: two ranks (gloo) train the regression; rank 0 prints its scores
    (it printed test accuracy, a KeyError after a finished run)."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m",
           "mmdata.train", str(targets_ds), "--target", "score", "--epochs", "2", "--batch-size", "8",
           "--no-robustness", "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=Path(__file__).parents[2],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "test 'score' mae " in res.stdout and "world size 2" in res.stdout
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert m["config"]["world_size"] == 2 and m["target"]["kind"] == "regression" and math.isfinite(m["test"]["mae"])
    # every rank settles the target over the whole splits (each read its half: other means, label lists, counts)
    whole, counts, _ = resolve(str(targets_ds), "score", {"train": "train", "val": "val", "test": "test"})
    # QA42: the training loader reads only the samples holding the target; those without are counted as left out
    left_out = m["samples"]["train"].pop("left_out", 0)
    assert m["target"]["train_mean"] == pytest.approx(whole.mean) and m["samples"] == counts
    assert left_out == counts["train"]["unlabelled"]


def test_a_target_run_is_refused_by_match_naming_the_target(targets_ds, tmp_path: Path) -> None:
    """mmdata match / alignment audits read class predictions: a --target run's model says so instead of
    failing to load its state dict into a classifier of the card's classes."""
    from mmdata.train.matching import load_run

    train(targets_ds, target="genres", out=tmp_path / "run", **{**FAST, "epochs": 1})
    with pytest.raises(MMDataError, match=r"predicts the metadata key 'genres' \(multilabel, `mmdata train --target`\)"):
        load_run(tmp_path / "run", data=targets_ds)


def _resolve_rows(tmp_path: Path, values: list[object], name: str = "m.jsonl") -> tuple[Target, dict, list[str]]:
    """``y`` resolved over train, of 12 samples whose metadata ``y`` holds ``values`` (cycled; JSONL keeps types,
    CSV makes text: :func:`mmdata.testing.shard_meta_column`)."""
    from mmdata.testing import shard_meta_column

    return resolve(str(shard_meta_column(tmp_path, values, name)), "y", {"train": "train"})


def test_numbers_written_as_text_are_a_regression_and_na_is_unlabelled(tmp_path: Path) -> None:
    """CMU-MOSI-style sentiment in a CSV with one NA cell (the column stays text): a regression, not a
    multi-label model of 135 labels named '-0.03', '-0.1', ..."""
    target, counts, warnings = _resolve_rows(tmp_path, ["1.5", "-0.25", "NA", "2e-1", " null ", "3"], "m.csv")
    assert target.kind == "regression" and counts["train"] == {"samples": 12, "labelled": 8, "unlabelled": 4}
    assert target.mean == pytest.approx(np.mean([1.5, -0.25, 0.2, 3.0]))
    assert any("numbers written as text" in w for w in warnings)


def test_label_spellings_are_one_label_and_blank_ones_none(tmp_path: Path) -> None:
    cafe_nfd = "Cafe\u0301"
    target, counts, warnings = _resolve_rows(tmp_path, [["Drama", " Café "], [cafe_nfd, "", None], "['Drama', 'Comedy']",
                                                        "", "NaN", "Drama|Comedy"])
    assert target.names == ["Café", "Comedy", "Drama", "Drama|Comedy"]
    assert counts["train"]["unlabelled"] == 4  # "" and "NaN"
    assert any("join several names ('Drama|Comedy')" in w for w in warnings)


@pytest.mark.parametrize("values,name", [([True, False, None], "m.jsonl"), (["true", "FALSE", "", " True "], "m.csv")],
                         ids=["json-bools", "csv-text"])
def test_a_boolean_column_is_one_label(tmp_path: Path, values: list[object], name: str) -> None:
    """Known limit: JSON booleans were refused ("expected a number or a label list") while a CSV's
    true / false text made two labels named 'true' and 'false'. Both are now one label named after the
    key (on when true), the binary target a user means."""
    from mmdata import Sample, collate

    target, counts, warnings = _resolve_rows(tmp_path, values, name)
    assert target.kind == "multilabel" and target.names == ["y"] and not warnings
    n_missing = sum(v is None or v == "" for v in values) * 12 // len(values)
    assert counts["train"]["labelled"] == 12 - n_missing
    b = collate([Sample("a", {"json": {"y": values[0]}}), Sample("b", {"json": {"y": values[1]}}), Sample("c", {"json": {}})])
    y, labelled = target.values(b, torch.device("cpu"))
    assert y.tolist() == [[1.0], [0.0], [-1.0]] and labelled.tolist() == [True, True, False]
    pred = target.predictions(b, torch.tensor([[3.0], [-3.0], [0.0]]))
    assert pred["labels"] == [["y"], [], None] and pred["pred_labels"] == [["y"], [], ["y"]]
    assert target.to_dict()["boolean"] is True


def test_true_false_beside_other_names_are_names(tmp_path: Path) -> None:
    """QA: a CSV column of true / false / maybe was half read as a boolean (labels 'y' and 'maybe'): a column
    is a boolean target only when every value is one; otherwise each value is a label name."""
    target, _, _ = _resolve_rows(tmp_path, ["true", "false", "maybe"], "m.csv")
    assert target.kind == "multilabel" and target.names == ["false", "maybe", "true"] and not target.boolean


def test_bad_values_name_the_sample(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"the target 'y' of sample 's1' is \{'a': 1\} \(dict\)"):
        _resolve_rows(tmp_path, [["x"], {"a": 1}])


def test_an_unknown_key_lists_the_metadata_keys(targets_ds) -> None:
    with pytest.raises(MMDataError, match=r"no training sample has the metadata key 'GENRES'.*the metadata has 'genres', 'score', 'speaker'"):
        resolve(str(targets_ds), "GENRES", {"train": "train"})
    with pytest.raises(MMDataError, match=r"--target label: 'label' is the class label"):
        resolve(str(targets_ds), "label", {"train": "train"})


def test_a_test_split_without_the_key_is_warned_about(tmp_path: Path) -> None:
    from mmdata.testing import image_bytes

    rows = []
    for i in range(18):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
        split = ["train", "val", "test"][i % 3]
        rows.append({"key": f"s{i}", "image": f"{i}.png", "label": "a", "split": split, "y": None if split == "test" else float(i)})
    pd.DataFrame(rows).to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", meta=["y"], progress=False)
    m = train(tmp_path / "ds", target="y", **{**FAST, "epochs": 1})
    assert m["test"]["mae"] is None or math.isnan(m["test"]["mae"])
    assert any(w.startswith("no test sample has the metadata key 'y' (6 samples)") for w in m["warnings"])
