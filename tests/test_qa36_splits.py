"""QA36 splits: --split-from carries the earlier version's --group-by (medical #1); a placeholder file named by
many rows does not join their --group-by groups (medical #2) nor counts as copies across splits (medical #5); the
group-share warning is quiet when the shares are the best the group sizes allow (mir #6); a repeated
``mmdata.shard`` call from one line shows its warnings again (notebook #2)."""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.writer import ShardWarning

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _patients(raw: Path, patients: int = 15, studies: int = 3, group_col: bool = True) -> list[dict[str, str]]:
    raw.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(patients):
        for s in range(studies):
            k = f"P{p:03d}_S{s}"
            if not (raw / f"{k}.png").exists():
                Image.new("L", (4, 4), (p * 7 + s * 3) % 256).save(raw / f"{k}.png")
            row = {"patient_id": f"P{p:03d}", "study_id": k, "image": f"{k}.png", "label": "ab" if p < 3 else "no"}
            if not group_col:
                del row["patient_id"]
            rows.append(row)
    return rows


def _crossing(out: Path) -> int:
    t = idx.load_index(out, columns=["key", "split"])
    per: dict[str, set[str]] = {}
    for k, s in zip(t["key"].to_pylist(), t["split"].to_pylist()):
        per.setdefault(k[:4], set()).add(s)
    return sum(1 for s in per.values() if len(s) > 1)


def _shard(*args, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        rep = mmdata.shard(*args, progress=False, **kw)
    return rep, " | ".join(str(w.message) for w in got if issubclass(w.category, ShardWarning))


@pytest.mark.parametrize("split_by", ["label", "key"])
def test_split_from_a_grouped_version_keeps_the_grouping(tmp_path: Path, split_by: str) -> None:
    raw = tmp_path / "raw"
    _write_csv(raw / "v1.csv", _patients(raw, studies=2))
    _write_csv(raw / "v2.csv", _patients(raw, studies=3))  # a new study for every patient
    _shard(raw / "v1.csv", tmp_path / "v1", columns={"key": "study_id"}, group_by="patient_id", split=SPLIT,
           split_by=split_by)
    assert _crossing(tmp_path / "v1") == 0
    _, said = _shard(raw / "v2.csv", tmp_path / "v2", columns={"key": "study_id"}, split=SPLIT, split_by=split_by,
                     split_from=tmp_path / "v1")
    assert _crossing(tmp_path / "v2") == 0
    card = idx.load_card(tmp_path / "v2")
    assert card["split_group_by"] == "patient_id" and card["split_groups_crossing"] == 0
    assert "--group-by patient_id" in said and "earlier version" in said
    assert "has no effect without --split" not in said


def test_split_from_a_grouped_version_without_the_column_warns(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write_csv(raw / "v1.csv", _patients(raw, studies=2))
    _write_csv(raw / "v2.csv", _patients(raw, studies=3, group_col=False))
    _shard(raw / "v1.csv", tmp_path / "v1", columns={"key": "study_id"}, group_by="patient_id", split=SPLIT)
    _, said = _shard(raw / "v2.csv", tmp_path / "v2", columns={"key": "study_id"}, split=SPLIT,
                     split_from=tmp_path / "v1")
    assert "--group-by patient_id" in said and "no column 'patient_id'" in said
    assert idx.load_card(tmp_path / "v2").get("split_group_by") is None


def test_split_from_with_another_group_by_warns(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    rows1, rows2 = _patients(raw, studies=2), _patients(raw, studies=3)
    for r in rows1 + rows2:
        r["site"] = f"site{int(r['patient_id'][1:]) % 4}"
    _write_csv(raw / "v1.csv", rows1)
    _write_csv(raw / "v2.csv", rows2)
    _shard(raw / "v1.csv", tmp_path / "v1", columns={"key": "study_id"}, group_by="patient_id", split=SPLIT)
    _, said = _shard(raw / "v2.csv", tmp_path / "v2", columns={"key": "study_id"}, split=SPLIT, group_by="site",
                     split_from=tmp_path / "v1")
    assert "grouped by --group-by patient_id" in said and "--group-by site" in said
    assert idx.load_card(tmp_path / "v2")["split_group_by"] == "site"


def _silent(tmp: Path, copies: bool) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    sf.write(tmp / "silence.wav", np.zeros(800, "float32"), 16000)
    rows = []
    for i in range(12):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype("uint8")).save(tmp / f"img{i}.png")
        audio = "silence.wav"
        if copies:
            audio = f"sil_{i}.wav"
            shutil.copy(tmp / "silence.wav", tmp / audio)
        rows.append({"key": f"s{i}", "patient_id": f"P{i}", "image": f"img{i}.png", "audio": audio,
                     "label": "abnormal" if i < 4 else "normal"})
    return _write_csv(tmp / "m.csv", rows)


@pytest.mark.parametrize("split_by", ["label", "key"])
def test_a_shared_placeholder_file_does_not_join_groups(tmp_path: Path, split_by: str) -> None:
    rep, said = _shard(_silent(tmp_path / "raw", copies=False), tmp_path / "out", group_by="patient_id",
                       split={"train": 0.5, "test": 0.5}, split_by=split_by, seed=1)
    assert rep["splits"].get("test", 0) > 0, said
    assert "'silence.wav'" in said and "placeholder" in said
    assert "is empty" not in said
    assert idx.load_card(tmp_path / "out")["split_groups_crossing"] == 0


def test_a_file_shared_by_few_groups_still_joins_them_and_the_warning_names_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    Image.new("L", (4, 4), 9).save(raw / "shared.png")
    rows = []
    for i in range(6):
        Image.new("L", (4, 4), i).save(raw / f"i{i}.png")
        rows.append({"key": f"s{i}", "g": f"G{i}", "image": "shared.png" if i < 3 else f"i{i}.png", "label": "a"})
    rep, said = _shard(_write_csv(raw / "m.csv", rows), tmp_path / "out", group_by="g",
                       split={"train": 0.5, "test": 0.5})
    t = idx.load_index(tmp_path / "out", columns=["key", "split"])
    got = dict(zip(t["key"].to_pylist(), t["split"].to_pylist()))
    assert got["s0"] == got["s1"] == got["s2"]  # 3 samples: no placeholder, one split (no file in two)


def test_placeholder_copies_are_noted_not_warned_as_contamination(tmp_path: Path) -> None:
    rep, said = _shard(_silent(tmp_path / "raw", copies=True), tmp_path / "out", group_by="patient_id",
                       split={"train": 0.5, "test": 0.5}, seed=0)
    dup = idx.load_card(tmp_path / "out")["duplicates"]
    assert dup["across_splits"] == 0 and "across_splits_label_example" not in dup
    assert dup["across_splits_placeholders"] == 1 and dup["across_splits_placeholder_samples"] == 12
    assert "trained on" not in said and "labels differ" not in said
    assert "placeholder" in said


def test_label_example_comes_from_different_splits() -> None:
    import pyarrow as pa

    from mmdata.shards.writer import duplicates_across_splits

    rows = pa.table({"key": ["a", "b", "c"], "split": ["train", "train", "test"], "shard": ["t", "t", "u"],
                     "members": [["a.jpg"], ["b.jpg"], ["c.jpg"]], "sizes": [[5], [5], [5]],
                     "member_crc32": [[7], [7], [7]], "label": [0, 1, 0]})
    ex = duplicates_across_splits(rows, label_names=["x", "y"])["across_splits_label_example"]
    assert len({split for _, split, _ in ex}) == 2, ex
    assert {name for _, _, name in ex} == {"x", "y"}


def test_equal_groups_at_the_best_shares_are_no_warning(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = []
    for a in range(6):
        for t in range(4):
            Image.new("L", (4, 4), a * 10 + t).save(raw / f"a{a}t{t}.png")
            rows.append({"key": f"a{a}t{t}", "artist": f"A{a}", "image": f"a{a}t{t}.png", "label": "xy"[t % 2]})
    rep, said = _shard(_write_csv(raw / "m.csv", rows), tmp_path / "out", group_by="artist", split=SPLIT)
    assert rep["splits"] == {"train": 16, "val": 4, "test": 4} or sorted(rep["splits"].values()) == [4, 4, 16]
    assert "the largest" not in said and "groups split the samples" not in said


def test_a_group_larger_than_a_split_is_still_said_and_called_the_closest() -> None:
    from mmdata.shards.writer import Record, _group_share_warning

    units = [[Record(f"g{g}_{i}", "k", {}, group=f"G{g}") for i in range(n)] for g, n in enumerate([20, 2, 2, 2])]
    # 20 / 2 / 4 of 26 for 60/20/20 is the best these sizes allow, but one group is most of the data: said
    (said,) = _group_share_warning({"train": 20, "val": 2, "test": 4}, SPLIT, units)
    assert "the closest shares these group sizes allow" in said and "group 'G0'" in said
    (said,) = _group_share_warning({"train": 22, "val": 4, "test": 0}, SPLIT, units)  # not the best: plain
    assert "closest" not in said


def test_repeated_shard_call_from_one_line_says_its_warnings_again(tmp_path: Path) -> None:
    from mmdata.testing.messy import make_messy_folder

    raw = make_messy_folder(tmp_path / "messy", n=40, sizes=((32, 32),), seconds=(0.3, 0.6)).root
    counts = []
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("default")  # the registry a notebook's default filter keeps
        for i in range(2):  # one line, as a sweep loop or a rerun cell calls it
            before = len(got)
            mmdata.shard(raw, tmp_path / f"o{i}", progress=False)
            counts.append(sum(1 for w in got[before:] if issubclass(w.category, ShardWarning)))
    assert counts[0] > 0 and counts[0] == counts[1], counts
    assert all(w.filename == __file__ for w in got if issubclass(w.category, ShardWarning))
