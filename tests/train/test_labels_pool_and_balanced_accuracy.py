"""QA42 (active learning, long tail): unlabelled training samples, unknown classes, one labelled class, balanced
accuracy, classes absent from a scored split.

Before: an unlabelled pool in the train split was decoded, forwarded (BatchNorm statistics) and its batches stepped
the optimiser, so the same labelled samples beside a pool trained another model; evaluate's predictions.parquet
wrote label -1 for unlabelled samples and for labelled ones of a class the run does not know, and the trainer's had
no label_name / pred_name; one labelled class of three declared trained and scored 1.000; no balanced accuracy; a
class without test samples was not warned of, and evaluate's absent_classes ignored the scored split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing.media import image_bytes

FAST = {"epochs": 2, "batch_size": 4, "threads": 1, "eval_robustness": False, "seed": 0}
NAMES = ["cat", "dog", "bird"]


def shard_rows(root: Path, rows: list[tuple[Any, str]], labels: list[str] | None = None) -> Path:
    """Shard one 8x8 image per ``(label or None, split)`` row (keys ``s0``, ``s1``, ... in row order); ``labels``:
    the card's class names (``--labels``). Returns ``root/ds``."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (label, split) in enumerate(rows):
        (root / f"{i}.png").write_bytes(image_bytes(i, (8, 8)))
        records.append({"key": f"s{i}", "image": f"{i}.png", "label": label, "split": split})
    pd.DataFrame(records).to_json(root / "m.jsonl", orient="records", lines=True)
    if labels is not None:
        (root / "names.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    mmdata.shard(root / "m.jsonl", root / "ds", progress=False,
                 **({"label_names": str(root / "names.txt")} if labels is not None else {}))
    return root / "ds"


LABELLED = ([("cat", "train"), ("dog", "train"), ("bird", "train")] * 4 + [("cat", "val"), ("dog", "val"), ("bird", "val")]
            + [("cat", "test"), ("dog", "test"), ("bird", "test")] * 2)


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same labelled samples (same keys) alone, and beside 10 unlabelled training samples (the pool)."""
    root = tmp_path_factory.mktemp("pools")
    alone = shard_rows(root / "alone", LABELLED)
    pooled = shard_rows(root / "pooled", LABELLED + [(None, "train")] * 10)
    return alone, pooled


# 1. an unlabelled pool in the training split (active #5)


def test_an_unlabelled_pool_does_not_change_the_model(pools: tuple[Path, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import train

    alone, pooled = pools
    seen = {}
    for name, data in (("alone", alone), ("pooled", pooled)):
        (tmp_path / name).mkdir()
        monkeypatch.setenv("MMDATA_RECORD_SEEN", str(tmp_path / name))
        seen[name] = train(data, **FAST)
    a, p = seen["alone"], seen["pooled"]
    trained = [json.loads(line)["keys"] for line in (tmp_path / "pooled" / "seen-rank0.jsonl").read_text().splitlines()]
    assert all(len(keys) == 12 and all(int(k[1:]) < 12 for k in keys) for keys in trained)  # no pool sample read
    assert [h["train_rows"] for h in p["history"]] == [12, 12]
    assert p["samples"]["train"] == {"samples": 22, "labelled": 12, "unlabelled": 10, "left_out": 10}
    assert "left_out" not in a["samples"]["train"]  # every training sample labelled: read as before
    assert p["test"] == a["test"] and p["val"] == a["val"]  # the same labels, the same model


def test_only_a_split_with_unlabelled_samples_is_filtered(pools: tuple[Path, Path]) -> None:
    """A fully labelled training split is read as before (no keys=): its batches, and the demo's numbers, are
    unchanged; a split with a pool is read as its labelled keys."""
    from mmdata.train.loop import _labelled_train_keys

    counts = {"samples": 22, "labelled": 12, "unlabelled": 10}
    assert _labelled_train_keys(pools[1], None, counts, None) == sorted(f"s{i}" for i in range(12))
    assert _labelled_train_keys(pools[0], None, {"samples": 12, "labelled": 12, "unlabelled": 0}, None) is None


# 2. predictions.parquet: one schema, and unknown classes apart from unlabelled samples (active #4)


def test_unknown_class_rows_are_minus_two_and_the_trainer_writes_names(tmp_path: Path) -> None:
    from mmdata.train import evaluate_run, train
    from mmdata.train.score_run import UNKNOWN_CLASS

    rows = [(n, s) for n, s in LABELLED if n != "bird"] + [(None, "train")] * 2
    two = shard_rows(tmp_path / "two", rows)
    train(two, out=tmp_path / "run", **FAST)
    own = pq.read_table(tmp_path / "run" / "predictions.parquet")
    names = ["cat", "dog"]
    assert own.column_names[-3:] == ["source_key", "label_name", "pred_name"]
    for r in own.to_pylist():
        assert r["label_name"] == names[r["label"]] and r["pred_name"] == names[r["pred"]]
    # a round later the birds are labelled: a class the run does not know
    three = shard_rows(tmp_path / "three", LABELLED + [(None, "train")] * 2)
    with pytest.warns(UserWarning, match="the run does not know"):
        evaluate_run(tmp_path / "run", three, split="train", out=tmp_path / "eval")
    ev = pq.read_table(tmp_path / "eval" / "predictions.parquet")
    # the trainer's columns, in order; then the data's own class ids (QA34 analyst D5)
    assert ev.schema.names == [*own.schema.names, "data_label", "data_pred"]
    got = {(r["label"], r["label_name"]) for r in ev.to_pylist()}
    assert got == {(0, "cat"), (1, "dog"), (UNKNOWN_CLASS, "bird"), (-1, None)}
    pool = [r["key"] for r in ev.to_pylist() if r["label"] == -1]
    assert pool == ["s21", "s22"]  # `label == -1` selects the unlabelled pool alone, not the birds


# 3. one labelled class of several declared (active #6)


def test_one_labelled_class_is_refused(tmp_path: Path) -> None:
    from mmdata.train import train

    rows = [(n if n == "cat" else None, s) for n, s in LABELLED]
    data = shard_rows(tmp_path / "one", rows, labels=NAMES)
    with pytest.raises(MMDataError, match=r"has 1 of its 3 classes with labelled training samples \('cat': 4; none of "
                                          r"'dog', 'bird'\): a classifier needs at least 2"):
        train(data, **FAST)


# 4. balanced accuracy (longtail F4)


def test_balanced_accuracy_is_sklearns() -> None:
    from sklearn.metrics import balanced_accuracy_score

    from mmdata.train.evaluate import Scores

    rng = np.random.default_rng(0)
    for trial in range(8):
        classes = int(rng.integers(2, 8))
        n = int(rng.integers(5, 60))
        y = rng.integers(-1, classes, n)  # -1: unlabelled, skipped
        y[0] = 0
        logits = torch.from_numpy(rng.normal(size=(n, classes)))
        s = Scores(classes)
        for i in range(0, n, 7):  # streamed in batches
            s.update(logits[i:i + 7], torch.from_numpy(y[i:i + 7]))
        keep = y >= 0
        pred = logits.argmax(1).numpy()
        expected = balanced_accuracy_score(y[keep], pred[keep])
        assert s.result()["balanced_accuracy"] == pytest.approx(expected, abs=1e-12), trial


def test_balanced_accuracy_in_metrics_json_and_evaluate(pools: tuple[Path, Path], tmp_path: Path) -> None:
    from sklearn.metrics import balanced_accuracy_score

    from mmdata.train import evaluate_run, train

    m = train(pools[0], out=tmp_path / "run", **FAST)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    p = pq.read_table(tmp_path / "run" / "predictions.parquet").to_pandas()
    expected = balanced_accuracy_score(p["label"], p["pred"])
    assert saved["test"]["balanced_accuracy"] == pytest.approx(expected, abs=1e-12) == m["test"]["balanced_accuracy"]
    r = evaluate_run(tmp_path / "run", pools[0], split="test")
    assert r["test"]["balanced_accuracy"] == pytest.approx(expected, abs=1e-12)


# 5. classes absent from the scored split (longtail F5)


def test_classes_absent_from_test_and_the_scored_split(tmp_path: Path) -> None:
    from mmdata.train import evaluate_run, train

    rows = ([("cat", "train"), ("dog", "train"), ("bird", "train")] * 4 + [("cat", "val")] * 2
            + [("cat", "test"), ("dog", "test")] * 2)
    data = shard_rows(tmp_path / "lt", rows)
    with pytest.warns(UserWarning):
        m = train(data, out=tmp_path / "run", **FAST)
    assert any("'bird' (id 0) has no test samples (train 4, val 0)" in w for w in m["warnings"]), m["warnings"]
    assert any("no val samples" in w for w in m["warnings"])
    with pytest.warns(UserWarning, match="no labelled val sample"):
        r = evaluate_run(tmp_path / "run", data, split="val")
    assert r["absent_classes"] == ["bird", "dog"]  # the run's order; the dataset has both, its val split neither
    with pytest.warns(UserWarning, match="in-sample"):  # the run's training split (QA33 labelnoise #1)
        r = evaluate_run(tmp_path / "run", data, split="train")
    assert r["absent_classes"] == [] and [w for w in r["warnings"] if "in-sample" not in w] == []
