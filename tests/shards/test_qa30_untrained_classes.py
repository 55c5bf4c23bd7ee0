"""QA round 30 (extremes #2): a stratified ``--split`` of classes of one or two samples leaves some only in
val or test — never trained on, scored as errors — and ``mmdata shard`` said nothing (only ``mmdata train``
did, after the dataset was published). Now shard warns, naming a few and the count, in its output and the
card's ``warnings``; the samples' splits are those they always were."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import mmdata
from mmdata.shards.sources import Record
from mmdata.shards.writer import assign_splits


def _index(ds: Path) -> list:
    return list(pd.read_parquet(ds / "index.parquet").itertuples())


def _records() -> list[Record]:  # 300 classes: even ones 1 sample, odd ones 2 (the report's set)
    return [Record(f"c{c:03d}/s{i}", f"c{c:03d}/s{i}", {"txt": b"x"}, label=c)
            for c in range(300) for i in range(1 + c % 2)]


def test_classes_left_out_of_train_are_counted_and_named() -> None:
    recs = _records()
    warnings = assign_splits(recs, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0,
                             label_names=[f"c{c:03d}" for c in range(300)])
    assert sorted(Counter(r.split for r in recs).items()) == [("test", 45), ("train", 360), ("val", 45)]
    per: dict[int, set[str]] = {}
    for r in recs:
        per.setdefault(r.label, set()).add(r.split)  # type: ignore[arg-type]
    untrained = sorted(c for c, s in per.items() if "train" not in s)
    assert untrained  # the assignment is unchanged: these classes have no training sample
    warning = next(w for w in warnings if "no training sample" in w)
    assert warning.startswith(f"{len(untrained)} classes have no training sample: "
                              + ", ".join(repr(f"c{c:03d}") for c in untrained[:5]) + f" and {len(untrained) - 5} more")
    only = Counter(min(per[c]) for c in untrained)
    assert f"{only['test']} only in test" in warning and f"{only['val']} only in val" in warning
    assert "cannot be learned" in warning


def test_the_three_sample_split_warns_at_shard_time_and_in_the_card(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for j, (c, n) in enumerate((("a", 2), ("b", 1))):
        (raw / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4), (i * 90, j * 90, 0)).save(raw / c / f"s{c}{i}.png")
    with pytest.warns(UserWarning, match=r"1 class has no training sample: 'b'") as got:
        mmdata.shard(raw, tmp_path / "ds", split={"train": 0.34, "val": 0.33, "test": 0.33}, progress=False)
    assert len(got) == 1  # nothing else to say about this set
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    b_split = next(s.split for s in _index(tmp_path / "ds") if s.source_key.startswith("b/"))
    warning = next(w for w in card["warnings"] if "no training sample" in w)
    assert warning.startswith(f"1 class has no training sample: 'b' (only 1 sample, in {b_split}); it cannot be learned")
    assert "cannot be learned" in warning


def test_quiet_when_every_class_is_trained_on_or_there_is_no_train_split() -> None:
    recs = [Record(f"k{i}", f"k{i}", {"txt": b"x"}, label=i % 4) for i in range(40)]
    assert not any("training sample" in w for w in assign_splits(recs, {"train": 0.8, "val": 0.2}, seed=0))
    folds = _records()  # k-fold splits: no split is "train", so none is the training split
    assert not any("training sample" in w for w in assign_splits(folds, {"1": 0.5, "2": 0.5}, seed=0))


def test_a_class_the_groups_keep_out_of_train_is_warned_of_once() -> None:
    """Review of QA30: with --group-by a class kept out of train got the group warning (group by a finer column)
    and this one (blaming its sample count), two card entries with other advice."""
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import assign_splits

    pairs = [(0, "g0"), (0, "g0"), (0, "g1"), (0, "g1"), (1, "g2"), (1, "g2"), (1, "g2")] + [(0, f"h{j}") for j in range(6)]
    recs = [Record(f"k{i}", f"k{i}", {"txt": b"x"}, label=label, group=g) for i, (label, g) in enumerate(pairs)]
    said = assign_splits(recs, {"train": 0.34, "val": 0.33, "test": 0.33}, seed=0, label_names=["a", "b"])[1:]
    assert [w for w in said if "'b'" in w] == [w for w in said if w.startswith("the groups")], said
    assert not [w for w in said if "no training sample" in w]
