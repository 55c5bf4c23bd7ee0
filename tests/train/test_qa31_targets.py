"""Metadata targets, QA round 31 (persona ``targets``): an overflowing number in a val / test split, a
comma-joined label cell, ``--label-fraction``'s standardisation, the ablation report's small-test warning
for a target, and ``--target a,b`` (several columns)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mmdata
from mmdata.ablate.design import Metric
from mmdata.ablate.report_reference import reference_warnings
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.targets import Values, settle

ONE = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False}


@pytest.fixture(scope="module")
def meta_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 one-image samples (24 train, 8 val, 8 test) with a numeric ``score``, a label list ``tags`` and two
    true / false finding columns ``findA`` / ``findB`` (a clinical layout)."""
    from mmdata.testing import image_bytes

    root = tmp_path_factory.mktemp("qa31_targets")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        split = "train" if i < 24 else ("val" if i < 32 else "test")
        rows.append({"key": f"s{i:02d}", "image": f"{i}.png", "label": "a", "split": split,
                     "score": round(float(rng.uniform(0, 10)), 3),
                     "tags": ["x"] + (["y"] if i % 2 else []) + (["z"] if i % 3 == 0 and i < 6 else []),
                     "findA": i % 2 == 0, "findB": i % 3 == 0})
    pd.DataFrame(rows).to_json(root / "m.jsonl", orient="records", lines=True)
    mmdata.shard(root / "m.jsonl", root / "ds", meta=["score", "tags", "findA", "findB"], progress=False)
    return root / "ds"


# D1: '1e999' (a decimal that overflows to inf) in val / test was counted as labelled and silently left out of
# every score (RegressionScores drops non-finite targets); in the training split it was refused.
@pytest.mark.parametrize("role", ["train", "val", "test"])
def test_an_overflowing_number_is_refused_in_every_split(role: str) -> None:
    values = {"train": [("a", "1.5"), ("b", "2.5")], "val": [("v", "3")], "test": [("t", "4"), ("u", "0.5")]}
    values[role] = [*values[role], ("bad", "1e999")]
    who = "training" if role == "train" else role
    with pytest.raises(MMDataError, match=rf"the target 'score' of {who} sample 'bad' is '1e999': expected a finite number"):
        settle("ds", "score", Values(values, set()))


# D2: "Drama, Comedy" (IMDb's own format) became one label, unwarned, while "Drama|Comedy" was warned of.
def test_a_comma_joined_label_cell_is_warned_of_when_its_names_are_labels_alone() -> None:
    cells = ["Drama, Comedy", "Drama", "Comedy", "Drama"]
    target, _, warnings = settle("ds", "genres", Values({"train": [(f"s{i}", v) for i, v in enumerate(cells)]}, set()))
    assert target.names == ["Comedy", "Drama", "Drama, Comedy"]
    assert any("join several names ('Drama, Comedy')" in w for w in warnings), warnings


def test_a_comma_in_a_label_name_alone_is_not_warned_of() -> None:
    """A name holding a comma ('Washington, D.C.') whose parts are no labels of their own is one label as written."""
    cells = ["Washington, D.C.", "Paris", "Paris"]
    _, _, warnings = settle("ds", "city", Values({"train": [(f"s{i}", v) for i, v in enumerate(cells)]}, set()))
    assert not any("join several names" in w for w in warnings), warnings


# D3: under --label-fraction a regression target was standardised by the mean / sd of every training label, the
# hidden ones too (a label leak); the multi-label "never in the training split" warning read them too.
def test_settle_reads_the_training_labels_a_run_trains_on() -> None:
    read = Values({"train": [("a", 1.0), ("b", 3.0), ("c", 100.0), ("d", None)], "test": [("t", 2.0)]}, set())
    target, counts, _ = settle("ds", "score", read, trained_on={"a", "b", "d"})
    assert (target.mean, target.sd) == (2.0, 1.0)
    assert counts["train"] == {"samples": 4, "labelled": 3, "unlabelled": 1}  # the split's counts stay the split's
    full, _, _ = settle("ds", "score", read)
    assert full.mean == pytest.approx(np.mean([1.0, 3.0, 100.0]))
    tags = Values({"train": [("a", ["x"]), ("b", ["x", "y"])], "test": [("t", ["y"])]}, set())
    target, _, warnings = settle("ds", "tags", tags, trained_on={"a"})
    assert target.names == ["x", "y"]  # the outputs are every split's labels, as before
    assert any("never in the training labels kept (--label-fraction): 'y'" in w for w in warnings), warnings
    assert not any("never in" in w for w in settle("ds", "tags", tags)[2])


def test_label_fraction_standardises_by_the_kept_labels(meta_ds: Path, tmp_path: Path) -> None:
    from mmdata.train.contrastive import kept_keys, labelled_balance

    m = train(meta_ds, target="score", label_fraction=0.3, seed=0, out=tmp_path / "lf", **ONE)
    kept = kept_keys(meta_ds, labelled_balance(None, 0.3), 0, "train")
    values = {s.key: s.fields["json"]["score"] for s in mmdata.ShardDataset(meta_ds, split="train")}
    trained = [v for k, v in values.items() if k in kept]
    assert 0 < len(trained) < len(values) and m["labelled_train"] == len(trained)
    assert m["target"]["train_mean"] == pytest.approx(np.mean(trained))
    assert m["target"]["train_sd"] == pytest.approx(np.std(trained))
    assert m["target"]["train_mean"] != pytest.approx(np.mean(list(values.values())))
    full = train(meta_ds, target="score", seed=0, **ONE)  # without a fraction: every training label, as before
    assert full["target"]["train_mean"] == pytest.approx(np.mean(list(values.values())))


# D4: the ablation report's small-test-split warning was missing for a regression target and spoke of accuracy
# for a multi-label one (no accuracy is scored for a target).
@pytest.mark.parametrize("kind,column,higher", [("regression", "test_mae", False), ("multilabel", "test_map", True)])
def test_a_small_test_split_is_warned_of_for_a_target_naming_its_metric(kind: str, column: str, higher: bool) -> None:
    ref = {"key": "y", "kind": kind, "test_split": "test", "n_test": 24}
    if kind == "multilabel":
        ref.update(names=["a"], train_counts={"a": 3}, absent_from_test=[])
    met = Metric(column=column, label=column, scale=1.0, higher_is_better=higher)
    text = "\n".join(reference_warnings(ref, None, baseline="baseline", base_values={}, metric=met, delta=math.inf,
                                        mdes={}, dec=2))
    assert "the test split `test` has 24 labelled examples: one example is 4.17% of them" in text
    assert f"`{met.name}`" in text and "accuracy" not in text


# D5: --target a,b (a finding per column) was refused as a misspelling of one of them ("did you mean 'findB'?").
def test_several_target_columns_are_refused_saying_how_to_combine_them(meta_ds: Path) -> None:
    with pytest.raises(MMDataError) as err:
        train(meta_ds, target="findA,findB", **ONE)
    text = str(err.value)
    assert "did you mean" not in text
    assert "'findA,findB' names 2 metadata columns" in text and "one column" in text and "list" in text


def test_several_columns_are_named_where_the_metadata_is_read(meta_ds: Path) -> None:
    """resolve() (an ablation's check and report read the target through it) says the same, naming the option."""
    from mmdata.train.targets import resolve

    with pytest.raises(MMDataError, match=r"trainer.target: 'findA,findB' names 2 metadata columns \(findA, findB\); "
                                          r"a target is one column.*\(trainer.target: findA\)$"):
        resolve(str(meta_ds), "findA,findB", {"train": "train"}, option="trainer.target")
