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
    assert any("join several names ('Drama, Comedy': 'Drama' and 'Comedy' are also labels alone)" in w
               for w in warnings), warnings


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
                                          r"a target is one column.*\(trainer.target: findA\)"):
        resolve(str(meta_ds), "findA,findB", {"train": "train"}, option="trainer.target")


# --- second pass (review of the round's fixes: F1-F4 and nits) ---

@pytest.fixture(scope="module")
def paired_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 image + caption samples (16 train, 4 val, 4 test) with a numeric ``score``: pre-training has pairs."""
    from mmdata.testing import image_bytes

    root = tmp_path_factory.mktemp("qa31_paired")
    rows = []
    for i in range(24):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"p{i:02d}", "image": f"{i}.png", "text": f"caption {i} {'high' if i % 2 else 'low'}",
                     "split": "train" if i < 16 else ("val" if i < 20 else "test"), "score": float(i % 7)})
    pd.DataFrame(rows).to_json(root / "m.jsonl", orient="records", lines=True)
    mmdata.shard(root / "m.jsonl", root / "ds", meta=["score"], progress=False)
    return root / "ds"


def _keeps_none(ds: Path, fraction: float) -> int:
    """A seed under which ``fraction`` keeps no training sample of ``ds``."""
    from mmdata.train.contrastive import kept_keys, labelled_balance

    return next(s for s in range(200) if not kept_keys(ds, labelled_balance(None, fraction), s, "train"))


# F1: pre-training alone (--epochs 0) reads no label: a --label-fraction that keeps none of the target's
# labels failed after pre-training ("none of the ... is among those whose labels the run keeps"), no contrastive.pt.
def test_pretraining_alone_with_a_target_and_a_label_fraction_that_keeps_none(paired_ds: Path, tmp_path: Path) -> None:
    seed = _keeps_none(paired_ds, 0.01)
    train(paired_ds, target="score", label_fraction=0.01, seed=seed, out=tmp_path / "pre", pretrain="contrastive",
          pretrain_epochs=1, **{**ONE, "epochs": 0})
    assert (tmp_path / "pre" / "contrastive.pt").is_file()


def test_a_label_fraction_keeping_no_target_label_is_refused_before_pretraining(
        paired_ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdata.train.contrastive as contrastive

    def prepare(*args: object, **kwargs: object) -> None:
        raise AssertionError("pre-training ran before the refusal")

    monkeypatch.setattr(contrastive, "prepare", prepare)
    seed = _keeps_none(paired_ds, 0.01)
    with pytest.raises(MMDataError, match=r"none of the 16 training samples that hold the target 'score' is among "
                                          r"those whose labels the run keeps \(--label-fraction\)"):
        train(paired_ds, target="score", label_fraction=0.01, seed=seed, pretrain="contrastive", pretrain_epochs=1,
              **ONE)


# F2: an integer literal too large for a float (a 400-digit JSON number) crashed with OverflowError in _number.
@pytest.mark.parametrize("role", ["train", "val", "test"])
def test_an_overflowing_integer_is_refused_naming_the_sample(role: str) -> None:
    values = {"train": [("a", 1.0), ("b", 2.0)], "val": [("v", 3)], "test": [("t", 4.0)]}
    values[role] = [*values[role], ("big", 10**400), ("neg", -(10**400))]
    who = "training" if role == "train" else role
    with pytest.raises(MMDataError) as err:
        settle("ds", "score", Values(values, set()))
    text = str(err.value)
    assert f"the target 'score' of {who} sample 'big' is 1000" in text and "expected a finite number" in text
    assert "(401 digits)" in text and "0" * 100 not in text  # the value shortened, not 400 digits in the message
    assert "'neg'" in text  # every bad sample named, not only the first
    assert "blank the cell or write NA" in text


# F3: the comma rule said which names it warned of but not why (a false positive could not be told apart), and
# missed data where every cell is a combination (IMDb's "Crime, Drama" / "Action, Crime, Drama": no name alone).
def _comma_warnings(cells: list[str]) -> list[str]:
    _, _, warnings = settle("ds", "g", Values({"train": [(f"s{i}", v) for i, v in enumerate(cells)]}, set()))
    return [w for w in warnings if "several names" in w]


def test_the_comma_warning_names_the_part_that_set_it_off() -> None:
    (w,) = _comma_warnings(["Washington, D.C.", "Washington", "Oregon"])
    assert "label of the target 'g' join several names ('Washington, D.C.': 'Washington' is also a label alone)" in w
    assert "(where it is one name, ignore this)" in w


def test_comma_joined_combinations_with_no_name_alone_are_warned_of() -> None:
    (w,) = _comma_warnings(["Crime, Drama", "Action, Crime, Drama", "Comedy, Romance", "Drama, Romance"])
    assert "'Action, Crime, Drama': 'Crime' and 'Drama' recur in other labels; " in w
    assert "'Crime, Drama': 'Crime' and 'Drama' recur in other labels" in w
    assert "Comedy, Romance" not in w  # only 'Romance' recurs


@pytest.mark.parametrize("cells", [["Crosby, Stills & Nash", "Crosby, Stills, Nash & Young", "Neil Young"],
                                   ["Crosby, Stills & Nash", "Neil Young"], ["Washington, D.C.", "Paris"]])
def test_names_holding_commas_whose_parts_do_not_recur_are_not_warned_of(cells: list[str]) -> None:
    assert _comma_warnings(cells) == []


# F4: 'findA,findC' (one part a column) was still "did you mean 'findA'?"; 'finda,findb' advised re-sharding it.
def test_several_columns_with_an_unknown_part_name_it() -> None:
    from mmdata.train.targets import several_columns

    text = str(several_columns("ds", "findA,findC", ["findA", "findB"]))
    assert "'findA,findC' joins 2 names with commas (findA, findC); a target is one column" in text
    assert "'findC' (did you mean 'findB'?) is not a metadata column of ds (its columns: findA, findB)" in text
    text = str(several_columns("ds", "finda, findb", ["findA", "findB"]))
    assert "'finda' (did you mean 'findA'?) and 'findb' (did you mean 'findB'?) are not metadata columns of ds" in text
    assert "(--target findA)" in text
    assert several_columns("ds", "year,month", ["findA", "findB"]) is None  # nothing like a column: not this message
    assert several_columns("ds", "findA,", ["findA", "findB"]) is None  # one name: a misspelling's message


@pytest.mark.parametrize("key", ["findA,findC", "finda,findb"])
def test_training_on_several_columns_with_an_unknown_part(meta_ds: Path, key: str) -> None:
    with pytest.raises(MMDataError) as err:
        train(meta_ds, target=key, **ONE)
    text = str(err.value)
    assert text.startswith(f"{meta_ds}: --target {key}: {key!r} joins 2 names with commas"), text
    assert "--meta" not in text.split("For one")[0]  # not "re-shard the column"


# nit: under --label-fraction, the constant-label warning spoke of every training sample, not the labels kept.
def test_the_constant_label_warning_under_a_label_fraction_names_the_labels_kept() -> None:
    from mmdata.train.loop import constant_labels
    from mmdata.train.targets import Target

    t = Target("multilabel", "tags", ["x", "y"])
    (w,) = constant_labels(t, Values({"train": [("a", ["x"]), ("b", ["x", "y"])]}, set()), kept=True)
    assert "is on in every training label kept (--label-fraction) (2)" in w


def test_an_ablation_target_of_several_names_with_an_unknown_part(meta_ds: Path) -> None:
    """resolve() (an ablation's trainer.target) and config's misspelling check leave the several-names message."""
    from mmdata.shards.index import load_card
    from mmdata.train.config import misspelt_target
    from mmdata.train.targets import resolve

    with pytest.raises(MMDataError, match=r"trainer.target: 'findA,findC' joins 2 names with commas \(findA, findC\); a "
                                          r"target is one column, and 'findC' \(did you mean 'findB'\?\) is not"):
        resolve(str(meta_ds), "findA,findC", {"train": "train"}, option="trainer.target")
    assert misspelt_target(meta_ds, "findA,findC", load_card(meta_ds), "trainer.target") is None
