"""``--pretrain-arg exclude_same_class=true`` with ``--target KEY``: same-class negatives of a single-label
metadata target.

Before (2026-12-04) the combination was refused for every target ("it removes the card's class label's
same-class negatives ..."). Now a target holding one label per sample (a name, a one-label list, or true /
false) gives the classes: the candidates removed from the InfoNCE denominators are those with the row's
value of the target column, among the labelled training samples (the ones --label-fraction keeps); a
multi-label or numeric target is refused, naming why.

The runs pre-train with one batch per epoch (``batch_size`` above the training split), so the candidates
removed in an epoch can be counted from the data: per modality pair, ``n_c (n_c - 1)`` over the classes
``c`` of the training samples holding both modalities."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import combinations
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import shard_target_dataset
from mmdata.train import train
from mmdata.train.contrastive import kept_keys, labelled_balance
from mmdata.train.targets import Target, Values, class_ids

#: one pre-training batch per epoch (the training split has 36 samples): the removed candidates are countable
ONE_BATCH = {"exclude_same_class": True, "batch_size": 64}
FAST = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False, "pretrain": "contrastive",
        "pretrain_epochs": 1}


@pytest.fixture(scope="module")
def speakers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder's CSV manifest (3 classes, imbalanced) with ``speaker`` (one name per sample, four
    names that do not follow the class, some blank), ``genres`` (label lists) and ``score`` (numbers)."""
    return shard_target_dataset(tmp_path_factory.mktemp("same_class"), n=60, meta=("speaker", "genres", "score"))


def _training_samples(ds: Path, mods: list[str]) -> list[tuple[str, set[str], object, object]]:
    """(key, modalities held, card label, speaker) of every training sample, read as a user would."""
    out = []
    for s in mmdata.ShardDataset(ds, split="train"):
        meta = s.fields.get("json") or {}
        out.append((s.key, {m for m in mods if m in s.fields}, s.fields.get("label"), meta.get("speaker")))
    return out


def _removed(samples: list[tuple[str, set[str], object, object]], mods: list[str], cls: Callable[[tuple], object],
             known: set[str] | None = None) -> int:
    """Candidates a one-batch epoch removes: per modality pair, n_c (n_c - 1) over the known classes c."""
    total = 0
    for a, b in combinations(mods, 2):
        counts = Counter(cls(s) for s in samples if {a, b} <= s[1] and cls(s) is not None
                         and (known is None or s[0] in known))
        total += sum(n * (n - 1) for n in counts.values())
    return total


def _by_speaker(s: tuple) -> object:
    return s[3] or None  # a blank cell is unlabelled


def _by_card(s: tuple) -> object:
    return None if s[2] is None else int(s[2])


def test_the_removed_candidates_are_the_targets_class_not_the_cards(speakers: Path, tmp_path: Path) -> None:
    m = train(speakers, target="speaker", pretrain_args=ONE_BATCH, out=tmp_path / "run", seed=0, **FAST)
    mods = m["config"]["modalities"]
    samples = _training_samples(speakers, mods)
    by_target, by_card = _removed(samples, mods, _by_speaker), _removed(samples, mods, _by_card)
    assert by_target != by_card and by_target > 0  # the data tells the two apart
    assert m["pretrain"]["history"][0]["excluded_negatives"] == by_target
    assert m["target"]["kind"] == "multilabel" and m["config"]["pretrain_args"] == ONE_BATCH
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["pretrain"]["history"][0]["excluded_negatives"] == by_target
    assert (tmp_path / "run" / "contrastive.pt").is_file()


def test_the_card_class_path_counts_the_cards_classes(speakers: Path) -> None:
    m = train(speakers, pretrain_args=ONE_BATCH, seed=0, **FAST)
    mods = m["config"]["modalities"]
    assert m["pretrain"]["history"][0]["excluded_negatives"] == _removed(_training_samples(speakers, mods), mods, _by_card)


def test_the_label_fraction_keeps_the_same_samples_labelled(speakers: Path) -> None:
    """--label-fraction: only the kept subset's targets are known to pre-training, as the card's labels are."""
    m = train(speakers, target="speaker", pretrain_args=ONE_BATCH, seed=3, label_fraction=0.5, **FAST)
    mods = m["config"]["modalities"]
    kept = set(kept_keys(speakers, labelled_balance(None, 0.5), 3) or {})
    samples = _training_samples(speakers, mods)
    assert 0 < len(kept) < len(samples)
    expected = _removed(samples, mods, _by_speaker, known=kept)
    assert m["pretrain"]["history"][0]["excluded_negatives"] == expected != _removed(samples, mods, _by_speaker)
    assert m["labelled_train"] == sum(1 for s in samples if s[0] in kept and _by_speaker(s) is not None)


def test_the_cli_trains_with_a_single_label_target(speakers: Path, tmp_path: Path, mmdata_cli) -> None:
    code, out = mmdata_cli(["train", str(speakers), "--target", "speaker", "--pretrain", "contrastive",
                            "--pretrain-epochs", "1", "--pretrain-arg", "exclude_same_class=true",
                            "--pretrain-arg", "batch_size=64", "--epochs", "1", "--batch-size", "8", "--threads", "1",
                            "--no-robustness", "--out", str(tmp_path / "cli")])
    assert code == 0, out
    m = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    mods = m["config"]["modalities"]
    assert m["pretrain"]["history"][0]["excluded_negatives"] == _removed(_training_samples(speakers, mods), mods,
                                                                        _by_speaker)


@pytest.mark.parametrize(("key", "why"), [
    ("genres", r"'genres' is a multi-label target: training sample '[^']+' holds 2 labels \('\w+', 'even'\)"),
    ("score", r"'score' is a numeric target \(regression\): numbers have no classes"),
])
def test_multi_label_and_numeric_targets_are_refused_naming_why(speakers: Path, tmp_path: Path, mmdata_cli,
                                                                key: str, why: str) -> None:
    start = rf"--pretrain-arg exclude_same_class=true with --target {key}: "
    with pytest.raises(MMDataError, match=start + why + r".*one label per sample.*drop one of them"):
        train(speakers, target=key, pretrain_args={"exclude_same_class": True}, out=tmp_path / "api", **FAST)
    assert not (tmp_path / "api").exists() or not any((tmp_path / "api").iterdir())
    code, out = mmdata_cli(["train", str(speakers), "--target", key, "--pretrain", "contrastive", "--pretrain-arg",
                            "exclude_same_class=true", "--epochs", "1", "--no-robustness"])
    assert code == 2 and "exclude_same_class=true with --target " + key in out, out


def _values(train_values: Mapping[str, object], val_values: Mapping[str, object] | None = None) -> Values:
    return Values({"train": list(train_values.items()), "val": list((val_values or {}).items())}, set())


def test_class_ids_of_names_one_label_lists_and_flags() -> None:
    t = Target("multilabel", "who", ["ann", "bob"])
    assert class_ids(t, _values({"a": "ann", "b": ["bob"], "c": None, "d": " ann ", "e": '["bob"]'})) == \
        {"a": 0, "b": 1, "d": 0, "e": 1}
    flag = Target("multilabel", "ok", ["ok"], boolean=True)
    assert class_ids(flag, _values({"a": True, "b": "false", "c": "", "d": "TRUE"})) == {"a": 1, "b": 0, "d": 1}


@pytest.mark.parametrize(("target", "values", "why"), [
    (Target("multilabel", "who", ["ann", "bob"]), ({"a": "ann"}, {"v": ["ann", "bob"]}),
     r"val sample 'v' holds 2 labels \('ann', 'bob'\)"),
    (Target("multilabel", "who", ["ann"]), ({"a": "ann", "b": []}, None), r"training sample 'b' holds no label"),
    (Target("regression", "s", [], 1.0, 2.0), ({"a": 1.0}, None), r"numbers have no classes"),
])
def test_class_ids_refuse_what_has_no_single_class(target: Target, values: tuple, why: str) -> None:
    with pytest.raises(MMDataError, match=why):
        class_ids(target, _values(*values))
