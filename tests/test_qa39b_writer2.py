"""QA round 39 review fixes in mmdata/shards/writer.py (second fixer "writer2")."""

from __future__ import annotations

from collections import Counter

from mmdata.shards.writer import Record, assign_splits, av_length_warnings, split_format_fields

SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}
FOLDS = {"1": 0.25, "2": 0.25, "3": 0.25, "4": 0.25}


def _rec(key: str, label: int, split: str | None = None, group: str | None = None) -> Record:
    r = Record(key, key, {"txt": b"x"}, label=label, split=split)
    r.group = group
    return r


def test_small_class_spread_over_equal_folds() -> None:
    """(QA39 review writer #1) folds 1..4 have no train split: a 3-sample class is spread, not all in fold 1."""
    for seed in range(4):
        recs = [_rec(f"a{i}", 0) for i in range(40)] + [_rec(f"b{i}", 1) for i in range(3)]
        notes = assign_splits(recs, FOLDS, seed=seed)
        assert not any("fewer samples than" in n for n in notes), notes
        assert len({r.split for r in recs if r.label == 1}) == 3, seed
    # a clearly largest split still takes them
    recs = [_rec(f"a{i}", 0) for i in range(40)] + [_rec("b0", 1)]
    notes = assign_splits(recs, {"fit": 0.8, "dev": 0.1, "eval": 0.1}, seed=0)
    assert {r.split for r in recs if r.label == 1} == {"fit"}
    assert any("went whole to 'fit'" in n for n in notes), notes


def test_small_class_counted_with_kept_splits() -> None:
    """(QA39 review writer #2) a class of 40 kept samples and 1 new one is no small class; a truly small class
    with a kept sample elsewhere is named with where its samples are, not 'no other split scores it'."""
    recs = [_rec(f"a{i}", 0, split=["train", "val", "test"][i % 3]) for i in range(40)] + [_rec("anew", 0)]
    recs += [_rec(f"b{i}", 1) for i in range(60)]
    notes = assign_splits(recs, SPLIT, seed=0)
    assert not any("fewer samples than" in n for n in notes), notes
    recs = [_rec(f"b{i}", 1) for i in range(60)] + [_rec("c0", 2, split="val"), _rec("c1", 2)]
    notes = assign_splits(recs, SPLIT, seed=0)
    note = next(n for n in notes if "fewer samples than" in n)
    assert "2 (2)" in note and "train 1, val 1" in note and "no other split scores" not in note, note
    assert next(r for r in recs if r.key == "c1").split == "train"


def test_small_class_in_other_groups_worded_truly() -> None:
    """(QA39 review writer #3) a small class inside groups of other classes follows them: said, not 'whole'."""
    recs = [_rec(f"g{g}_{j}", 2 if (g < 2 and j == 0) else 1, group=f"G{g}") for g in range(30) for j in range(4)]
    notes = assign_splits(recs, SPLIT, seed=3)
    got = Counter(r.split for r in recs if r.label == 2)
    note = next(n for n in notes if "fewer samples than" in n)
    if set(got) != {"train"}:
        where = ", ".join(f"{s} {got[s]}" for s in sorted(got, key=lambda s: (s != "train", s)))
        assert f"({where})" in note and "went whole" not in note and "follows its group" in note, note


def test_av_check_skips_constant_first_axis() -> None:
    """(QA39 review writer #5) a (64, H, W) feature map beside audio of any length is no frame stack."""
    assert av_length_warnings([{"feat": [[f"k{i}", 64, 1 + i * 0.25] for i in range(40)]}]) == []
    # first axis varying but unrelated to the audio's length
    rows = [[f"k{i}", 8 + (i * 7) % 40, 1 + i * 0.25] for i in range(40)]
    assert av_length_warnings([{"feat": rows}]) == []
    rows = [[f"k{i}", 50 + i, 2.0 + i / 25] for i in range(9)] + [["bad", 72, 4.48]]
    assert "'bad'" in av_length_warnings([{"video": rows}])[0]


def test_split_format_advice_keeps_gif_frames() -> None:
    """(QA39 review writer #6) 'convert to .png' says what it does to an animated GIF; a mixed column no .png."""
    got = split_format_fields({"image2.gif": {"count": 2}, "image2.png": {"count": 1}})[0]
    assert "animated .gif keeps one frame" in got, got
    got = split_format_fields({"x.png": {"count": 2}, "x.txt": {"count": 1}})[0]
    assert ".png" not in got.split("convert")[1] and "one kind per column" in got, got


def test_html_examples_name_source_files_distinct(tmp_path) -> None:
    """(QA39 review writer #6) the HTML warning names the source file of a folder and distinct captions."""
    import mmdata

    for c in ("c0", "c1"):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(4):
            text = "Chef knife &amp; sheath" if i < 3 else "Mug <br> white"
            (tmp_path / "raw" / c / f"s{i:05d}.txt").write_text(text if c == "c0" else "plain")
    rep = mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    html = next(w for w in rep["warnings"] if "HTML entities or tags" in w)
    assert html.startswith("4 texts (of 8)"), html
    assert "c0/s00000.txt" in html and html.count("Chef knife") == 1 and "Mug <br>" in html, html
