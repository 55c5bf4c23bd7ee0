"""QA42 (an active-learning loop): labelling a pool file of a class-folder dataset moves it from the root into a
class folder (``--labels-from-folders``); ``--split-from`` split it anew (test samples went to train) and
``mmdata diff`` called it removed + added. A manifest's own ``split`` column overrode ``--split-from`` without a
word. ``mmdata diff``'s summary printed Python's ``None`` for "no class"."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.diff import diff

ROOT = Path(__file__).parents[2]
SPLIT = "train=0.5,val=0.25,test=0.25"


def _pool(root: Path, labelled: int = 4, pool: int = 16) -> Path:
    """Class folders cat/ and dog/ with ``labelled`` files each, ``pool`` unlabelled files at the root."""
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(labelled):
            (root / c / f"{c}{i:03d}.txt").write_text(f"a {c} {i}\n")
    for i in range(pool):
        (root / f"s{i:03d}.txt").write_text(f"pool sample {i}\n")
    return root


def _by_source(ds: Path) -> dict[str, str]:
    t = pq.read_table(ds / idx.INDEX, columns=["source_key", "split"]).to_pydict()
    return dict(zip(t["source_key"], t["split"]))


def test_a_pool_file_moved_into_a_class_folder_keeps_its_split_and_is_reported_labelled(tmp_path: Path) -> None:
    raw = _pool(tmp_path / "raw1")
    mmdata.shard(raw, tmp_path / "v1", labels_from_folders=True, split=SPLIT, seed=0, progress=False)
    v1 = _by_source(tmp_path / "v1")
    raw2 = Path(shutil.copytree(raw, tmp_path / "raw2"))
    chosen = [f"s{i:03d}" for i in range(8)]
    assert {v1[k] for k in chosen} - {"train"}, v1  # some of them were not in train
    for i, k in enumerate(chosen):
        (raw2 / f"{k}.txt").rename(raw2 / ("cat" if i % 2 else "dog") / f"{k}.txt")
    rep = mmdata.shard(raw2, tmp_path / "v2", labels_from_folders=True, split=SPLIT, seed=0,
                       split_from=tmp_path / "v1", progress=False)
    v2 = _by_source(tmp_path / "v2")
    for i, k in enumerate(chosen):
        assert v2[f"{'cat' if i % 2 else 'dog'}/{k}"] == v1[k], k  # before: split anew
    card = idx.load_card(tmp_path / "v2")["split_from"]
    assert card["labelled"] == 8 and card["new"] == 0 and "moved_class" not in card, card
    said = [w for w in rep["warnings"] if "labelled since the earlier version" in w]
    assert len(said) == 1 and "8 samples labelled since the earlier version" in said[0], said
    assert "'s000' -> 'dog/s000'" in said[0] and "(none) -> cat: 4, (none) -> dog: 4" in said[0], said
    d = diff(tmp_path / "v1", tmp_path / "v2")
    assert d["counts"]["added"] == 0 and d["counts"]["removed"] == 0, d["counts"]
    assert d["counts"]["relabelled"] == 8 and d["counts"]["moved"] == 0, d["counts"]
    assert d["relabelled_pairs"] == {"(none) -> cat": 4, "(none) -> dog": 4}
    assert all(i["matched"] == "class folder" for i in d["relabelled"]["items"])


def test_a_labelled_pool_file_with_other_bytes_is_a_new_sample(tmp_path: Path) -> None:
    raw = _pool(tmp_path / "raw1", pool=4)
    mmdata.shard(raw, tmp_path / "v1", labels_from_folders=True, split=SPLIT, seed=0, progress=False)
    (raw / "s000.txt").unlink()
    (raw / "cat" / "s000.txt").write_text("another text\n")
    mmdata.shard(raw, tmp_path / "v2", labels_from_folders=True, split=SPLIT, seed=0, split_from=tmp_path / "v1",
                 progress=False)
    card = idx.load_card(tmp_path / "v2")["split_from"]
    assert "labelled" not in card and card["new"] == 1, card
    d = diff(tmp_path / "v1", tmp_path / "v2")
    assert d["counts"]["added"] == 1 and d["counts"]["removed"] == 1 and d["counts"]["relabelled"] == 0


def test_diff_summary_says_none_for_no_class(tmp_path: Path) -> None:
    raw = _pool(tmp_path / "raw1", pool=4)
    mmdata.shard(raw, tmp_path / "v1", labels_from_folders=True, split=SPLIT, seed=0, progress=False)
    (raw / "s001.txt").rename(raw / "cat" / "s001.txt")
    mmdata.shard(raw, tmp_path / "v2", labels_from_folders=True, split=SPLIT, seed=0, split_from=tmp_path / "v1",
                 progress=False)
    got = subprocess.run([sys.executable, "-m", "mmdata", "diff", tmp_path / "v1", tmp_path / "v2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "relabelled: (none) -> cat: 1" in got.stdout, got.stdout + got.stderr
    assert "None" not in got.stdout


def _manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _rows(t: Path, n: int = 12) -> list[dict[str, str]]:
    return [{"key": f"s{i:03d}", "text": f"caption {i}", "label": "ab"[i % 2],
             "split": ["train", "train", "val", "test"][i % 4]} for i in range(n)]


def test_a_split_column_that_differs_from_split_from_is_warned_and_recorded(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    mmdata.shard(_manifest(tmp_path / "m1.csv", rows), tmp_path / "v1", progress=False)
    for r in rows:
        if r["key"] in ("s003", "s007", "s011"):
            r["split"] = "train"
    rep = mmdata.shard(_manifest(tmp_path / "m2.csv", rows), tmp_path / "v2", split_from=tmp_path / "v1",
                       progress=False)
    said = [w for w in rep["warnings"] if "split column differs from --split-from" in w]
    assert len(said) == 1, rep["warnings"]
    assert "3 samples' split column differs from --split-from v1's (test -> train: 's003', 's007', 's011')" in said[0]
    assert "the column wins" in said[0]
    assert any("--split-from changed nothing" in w for w in rep["warnings"]), rep["warnings"]
    card = idx.load_card(tmp_path / "v2")["split_from"]
    assert card["conflicts"] == {"total": 3, "pairs": {"test -> train": 3}, "examples": ["s003", "s007", "s011"]}
    assert card["kept"] == 0 and card["new"] == 0


def test_a_split_column_that_agrees_with_split_from_is_not_warned(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    mmdata.shard(_manifest(tmp_path / "m1.csv", rows), tmp_path / "v1", progress=False)
    rows[0]["split"] = ""  # one sample without a split of its own: --split-from gives it v1's
    rep = mmdata.shard(_manifest(tmp_path / "m2.csv", rows), tmp_path / "v2", split_from=tmp_path / "v1",
                       progress=False)
    assert not [w for w in rep["warnings"] if "split column differs" in w or "changed nothing" in w], rep["warnings"]
    assert "conflicts" not in idx.load_card(tmp_path / "v2")["split_from"]
    assert _by_source(tmp_path / "v2")["s000"] == "train"


def test_a_split_column_that_agrees_everywhere_is_counted_and_not_warned(tmp_path: Path) -> None:
    """Review of 483ce55: every row's split the same as --split-from's warned "--split-from changed nothing" and the
    card said kept 0, new 0 (the agreeing samples counted nowhere)."""
    rows = _rows(tmp_path)
    mmdata.shard(_manifest(tmp_path / "m1.csv", rows), tmp_path / "v1", progress=False)
    rep = mmdata.shard(_manifest(tmp_path / "m2.csv", rows), tmp_path / "v2", split_from=tmp_path / "v1",
                       progress=False)
    assert not [w for w in rep["warnings"] if "--split-from" in w], rep["warnings"]
    card = idx.load_card(tmp_path / "v2")["split_from"]
    assert card["agreed"] == 12 and card["kept"] == 0 and card["new"] == 0 and "conflicts" not in card
    assert _by_source(tmp_path / "v2") == _by_source(tmp_path / "v1")
