"""QA round 39 fixes in mmdata/shards/writer.py (fixer "writer")."""

from __future__ import annotations

from collections import Counter

from mmdata.shards.writer import Record, assign_splits

SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


def _recs(sizes: list[int], groups: bool = False) -> list[Record]:
    out = []
    for c, n in enumerate(sizes):
        for j in range(n):
            r = Record(f"c{c}_{j}", f"c{c}_{j}", {"txt": b"x"}, label=c)
            if groups:
                r.group = f"g{c}_{j // 3}"
            out.append(r)
    return out


def test_small_classes_go_to_train_every_seed() -> None:
    """(QA39 ecommerce #4) a class of 1-2 samples never lands only in val / test; the note names it."""
    for seed in range(8):
        recs = _recs([40, 30, 1, 1, 2, 1, 2])
        notes = assign_splits(recs, SPLIT, seed=seed, label_names=list("abcdefg"))
        for c in (2, 3, 4, 5, 6):
            assert {r.split for r in recs if r.label == c} == {"train"}, (seed, c)
        assert not any("no training sample" in n for n in notes), notes
        note = next(n for n in notes if "fewer samples than the 3 splits" in n)
        assert "5 classes" in note and "'c' (1)" in note and "'train'" in note
        got = Counter(r.split for r in recs if r.label in (0, 1))
        assert got["val"] and got["test"]


def test_small_classes_go_to_train_with_groups() -> None:
    """(QA39 ecommerce #4) with --group-by (singleton groups of one-sample classes) too."""
    for seed in range(8):
        recs = _recs([30, 30, 1, 1, 1, 2, 1, 1, 1], groups=True)
        notes = assign_splits(recs, SPLIT, seed=seed)
        for c in range(2, 9):
            assert {r.split for r in recs if r.label == c} == {"train"}, (seed, c)
        assert any("fewer samples than the 3 splits" in n for n in notes)
