"""QA round 34: ``--split-from`` an index written before member CRC-32s (upgrade #1), what the card stores of the
earlier version (gdpr #2 #5, leaderboard #5: earlier keys, an erased class's name, a hidden test label), what it
records of the changes (gdpr #10, leaderboard #6) and what an in-place reshard says it changed (gdpr #3 #4)."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards import index as idx


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, (13 * i) % 256)).save(buf, "PNG")
    return buf.getvalue()


def _wav(i: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(400) * (0.01 + 0.003 * i)).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


def _tree(root: Path, classes: tuple[str, ...] = ("cat", "dog"), n: int = 10) -> Path:
    for c, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (d / f"{name[0]}{i:03d}.png").write_bytes(_png(100 * c + i))
            (d / f"{name[0]}{i:03d}.wav").write_bytes(_wav(100 * c + i))
    return root


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def _splits(ds: Path) -> dict[str, str]:
    return {r["source_key"]: r["split"] for r in idx.load_index(ds).select(["source_key", "split"]).to_pylist()}


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def _old_index(ds: Path) -> None:
    """Make ``ds``'s index look like one written before 2026-12-04: no ``member_crc32`` column."""
    t = pq.read_table(ds / "index.parquet")
    pq.write_table(t.drop(["member_crc32"]), ds / "index.parquet")


SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def _move(src: Path, stem: str, to: str) -> None:
    for f in list(src.glob(f"*/{stem}.*")):
        (src / to).mkdir(exist_ok=True)
        shutil.move(str(f), src / to / f.name)


@pytest.mark.parametrize("layout", ["samples", "columns"])
def test_split_from_an_old_index_matches_moved_files_by_the_bytes_in_its_shards(tmp_path: Path, layout: str) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT, layout=layout)
    _old_index(tmp_path / "v1")
    before = _splits(tmp_path / "v1")
    moved, renamed = sorted(k for k, s in before.items() if s == "test" and k.startswith("cat/"))[:2]
    stem = moved.split("/")[1]
    _move(src, stem, "dog")
    for f in src.glob(f"{renamed}.*"):  # a renamed file: matched by its bytes
        f.rename(f.with_name("renamed" + f.suffix))
    rep = _shard(src, tmp_path / "v2", split=SPLIT, split_from=tmp_path / "v1", layout=layout)
    after = _splits(tmp_path / "v2")
    assert after[f"dog/{stem}"] == "test" and after["cat/renamed"] == "test"  # no leak into train
    assert _card(tmp_path / "v2")["split_from"]["moved_class"] == 1
    assert _card(tmp_path / "v2")["split_from"]["same_content"] == 1
    assert not any("no member CRC-32s" in w for w in rep["warnings"])


def test_split_from_an_old_index_without_its_shards_says_why_moves_are_split_anew(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT)
    _old_index(tmp_path / "v1")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "v1" / "index.parquet", alone / "index.parquet")
    before = _splits(tmp_path / "v1")
    stem = sorted(k for k, s in before.items() if s == "test" and k.startswith("cat/"))[0].split("/")[1]
    _move(src, stem, "dog")
    rep = _shard(src, tmp_path / "v2", split=SPLIT, split_from=alone / "index.parquet")
    shown = [w for w in rep["warnings"] if "no member CRC-32s" in w]
    assert len(shown) == 1 and "written before 2026-12-04" in shown[0] and "whole folder" in shown[0]


def test_the_card_names_no_earlier_key_of_a_moved_or_renamed_sample(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT)
    _move(src, "c001", "dog")
    for ext in ("png", "wav"):  # a renamed file (a name scrubbed): matched by its bytes
        (src / "dog" / f"d002.{ext}").rename(src / "dog" / f"renamed.{ext}")
    rep = _shard(src, tmp_path / "v2", split=SPLIT, split_from=tmp_path / "v1")
    terminal = "\n".join(rep["warnings"])
    assert "'cat/c001' -> 'dog/c001'" in terminal and "'dog/d002' -> 'dog/renamed'" in terminal
    card = (tmp_path / "v2" / "dataset.json").read_text()
    assert "cat/c001" not in card and "dog/d002" not in card
    assert "now 'dog/c001'" in card and "now 'dog/renamed'" in card
    split_from = _card(tmp_path / "v2")["split_from"]
    assert split_from["moved_class"] == 1 and split_from["same_content"] == 1
    assert mmdata.verify(tmp_path / "v2")["ok"]


def test_the_card_does_not_name_a_removed_class(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw", classes=("alice", "bob", "jane_doe", "zoe"), n=5)
    _shard(src, tmp_path / "v1", split=SPLIT)
    shutil.rmtree(src / "jane_doe")
    (tmp_path / "labels.txt").write_text("alice\nbob\nerased_2\nzoe\n")
    for out, kw in (("v2", {}), ("v3", {"label_names": tmp_path / "labels.txt"})):
        rep = _shard(src, tmp_path / out, split=SPLIT, split_from=tmp_path / "v1", **kw)
        assert any("jane_doe" in w for w in rep["warnings"])  # the terminal names it
        assert "jane_doe" not in (tmp_path / out / "dataset.json").read_text()
        assert "1 class removed" in "\n".join(_card(tmp_path / out)["warnings"])
        assert mmdata.verify(tmp_path / out)["ok"]
    # the advice for a name that must go: a placeholder
    assert "placeholder name" in "\n".join(rep["warnings"])


def test_split_from_records_removed_and_relabelled_counts_and_keeps_the_license(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT, license="CC-BY-4.0", description="two classes")
    splits = _splits(tmp_path / "v1")
    gone = sorted(k for k, s in splits.items() if s == "test")[:2]
    for k in gone:
        for f in src.glob(f"{k}.*"):
            f.unlink()
    rep = _shard(src, tmp_path / "v2", split=SPLIT, split_from=tmp_path / "v1")
    card = _card(tmp_path / "v2")
    assert card["split_from"]["earlier_samples"] == 20 and card["split_from"]["removed"] == 2
    assert card["split_from"]["changes"]["test"]["removed"] == 2
    assert card["split_from"]["relabelled"] == 0
    assert card["license"] == "CC-BY-4.0" and card["description"] == "two classes"
    assert any("carried over" in w and "CC-BY-4.0" in w for w in rep["warnings"])
    assert mmdata.verify(tmp_path / "v2")["ok"]
    # a license given wins, without a notice
    rep = _shard(src, tmp_path / "v3", split=SPLIT, split_from=tmp_path / "v1", license="MIT", description="x")
    assert _card(tmp_path / "v3")["license"] == "MIT" and not any("carried over" in w for w in rep["warnings"])


def test_relabelled_by_key_is_counted(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["key,image,label"]
    for i in range(12):
        (raw / f"s{i}.png").write_bytes(_png(i))
        rows.append(f"s{i},s{i}.png,{'ab'[i % 2]}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n")
    _shard(raw / "m.csv", tmp_path / "v1", split=SPLIT)
    rows[1] = "s0,s0.png,b"  # s0 relabelled a -> b
    (raw / "m.csv").write_text("\n".join(rows) + "\n")
    _shard(raw / "m.csv", tmp_path / "v2", split=SPLIT, split_from=tmp_path / "v1")
    split_from = _card(tmp_path / "v2")["split_from"]
    s0 = _splits(tmp_path / "v1")["s0"]
    assert split_from["relabelled"] == 1 and split_from["changes"][s0]["relabelled"] == 1
    assert split_from["removed"] == 0


def test_reshard_in_place_without_split_from_says_how_many_samples_changed_split(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw", n=15)
    ds = tmp_path / "ds"
    _shard(src, ds, split=SPLIT)
    before = _splits(ds)
    for k in sorted(before)[::4]:  # erase a quarter
        for f in src.glob(f"{k}.*"):
            f.unlink()
    rep = _shard(src, ds, split=SPLIT)
    after = _splits(ds)
    moved = sum(1 for k, s in after.items() if before.get(k) not in (None, s))
    assert moved > 0  # (this data: the recomputed stratified split moves some)
    shown = [w for w in rep["warnings"] if "held an earlier version" in w]
    assert len(shown) == 1 and f"{moved} of the {len(after)} samples" in shown[0] and "--split-from ds" in shown[0]
    # with --split-from the folder itself: no move, no warning
    ds2 = tmp_path / "ds2"
    _shard(_tree(tmp_path / "raw2", n=15), ds2, split=SPLIT)
    before = _splits(ds2)
    for k in sorted(before)[::4]:
        for f in (tmp_path / "raw2").glob(f"{k}.*"):
            f.unlink()
    rep = _shard(tmp_path / "raw2", ds2, split=SPLIT, split_from=ds2)
    assert all(before[k] == s for k, s in _splits(ds2).items())
    assert not any("held an earlier version" in w for w in rep["warnings"])
    assert _card(ds2)["split_from"]["removed"] == len(before) - len(_splits(ds2))


def test_reshard_in_place_of_a_columns_dataset_names_the_added_series_it_drops(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw", n=4)
    ds = tmp_path / "ds"
    _shard(src, ds, layout="columns")
    dep = tmp_path / "depth"
    for k in _splits(ds):
        (dep / k).parent.mkdir(parents=True, exist_ok=True)
        np.save(dep / f"{k}.depth.npy", np.full((2, 2), 3, np.float32))
    assert mmdata.add_modality(ds, "depth", dep)["added"] == 8
    rep = _shard(src, ds, layout="columns", rewrite=True)
    shown = [w for w in rep["warnings"] if "drops the series" in w]
    assert len(shown) == 1 and "'depth' (8 samples)" in shown[0] and "mmdata add-modality ds depth SRC" in shown[0]
    assert not (ds / "depth").exists()
