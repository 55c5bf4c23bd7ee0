"""QA27 G2 review findings in the writer: case twins and the split of the other samples (G2-1), the case-twin
warnings when the source gives the splits (G2-3)."""
from __future__ import annotations

from mmdata.shards.sources import Record
from mmdata.shards.writer import assign_splits

FRACTIONS = {"train": 0.8, "test": 0.2}


def _records(extra: list[str]) -> list[Record]:
    recs = [Record(f"k{i}", f"k{i}", {"txt": f"caption {i}".encode()}, label=i % 4) for i in range(100)]
    return recs + [Record(k, k, {"txt": k.encode()}, label=0) for k in extra]


def test_one_case_twin_pair_leaves_every_other_split_as_without_it() -> None:
    """One ``X`` / ``x`` pair sent the whole dataset through the grouped split: every other sample moved."""
    twins, plain = _records(["X", "x"]), _records(["X", "y"])  # same labels, same places: only the case twin differs
    warnings = assign_splits(twins, FRACTIONS, seed=0)
    assert assign_splits(plain, FRACTIONS, seed=0) == []
    assert [r.split for r in twins[:100]] == [r.split for r in plain[:100]]
    assert twins[100].split == twins[101].split == plain[100].split  # the twin follows its first record
    assert len(warnings) == 1 and "differ only in case" in warnings[0] and "one split together" in warnings[0]


def test_case_twins_with_real_groups_still_go_to_one_split() -> None:
    recs = _records(["X", "x"])
    for r in recs[:10]:
        r.group = "spk0"
    assign_splits(recs, FRACTIONS, seed=1)
    assert len({r.split for r in recs[:10]}) == 1
    assert recs[100].split == recs[101].split


def test_case_twin_warning_when_the_source_gives_them_other_splits() -> None:
    """``A`` in train and ``a`` in test stay there: the warnings say so, in the singular for one of each."""
    recs = [Record("A_1", "A", {"png": b"\x89PNG"}, split="train"), Record("a_2", "a", {"txt": b"a cat"}, split="test")]
    warnings = assign_splits(recs, None, seed=0)
    assert [r.split for r in recs] == ["train", "test"]
    twin = next(w for w in warnings if "differ only in case" in w)
    assert "went to one split together" not in twin
    assert "'A' (train) and 'a' (test)" in twin and "stay in them, so one item is in two splits" in twin
    assert "1 image (or audio file) and 1 caption among them was not paired" in twin
    pinned = next(w for w in warnings if "several splits" in w)
    assert "naming one file" not in pinned and "the samples whose names differ only in case ('A', 'a')" in pinned


def test_case_twin_warning_counts_sets_together_and_apart() -> None:
    recs = [Record("A", "A", {"txt": b"1"}, split="train"), Record("a", "a", {"txt": b"2"}, split="test"),
            Record("B", "B", {"txt": b"3"}), Record("b", "b", {"txt": b"4"})]
    warnings = assign_splits(recs, None, seed=0)
    twin = next(w for w in warnings if "differ only in case" in w)
    assert "4 samples in 2 sets" in twin and "1 set went to one split together" in twin
    assert "the other 1 (e.g. the ones shown)" in twin
    assert recs[2].split == recs[3].split == "train"
