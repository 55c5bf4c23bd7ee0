"""QA round 33: class-folder moves under ``--split-from`` and in ``mmdata diff``.

labelnoise #2: an annotator moved a sample's image and audio to another class folder and left its caption: the
moved files were split anew, one item in two splits, silently. labelnoise #3: ``diff`` did not pair a relabel in a
split-folder tree (``train/cat/x`` -> ``train/dog/x``), nor did ``--split-from`` match a move out of one.
docsread #12: a root pool file labelled was worded "moved to another class folder". multilingual #14: a skipped
entry whose name changed Unicode form only was "1 added, 1 removed" with two identical-looking names."""

from __future__ import annotations

import io
import json
import shutil
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards import index as idx
from mmdata.shards.diff import diff


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, 3)).save(buf, "PNG")
    return buf.getvalue()


def _wav(i: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(400) * (0.01 + 0.003 * i)).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


def _tree(root: Path, classes: str = "ab", n: int = 6, prefix: str = "", stem: str = "s") -> Path:
    for c in classes:
        for i in range(n):
            j = 100 * "abcd".index(c) + i + 50 * (stem != "s")
            d = root / prefix / c
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{stem}{i}.png").write_bytes(_png(j))
            (d / f"{stem}{i}.wav").write_bytes(_wav(j))
            (d / f"{stem}{i}.txt").write_text(f"{c} number {stem}{i}")
    return root


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def _splits(ds: Path) -> dict[str, str]:
    rows = idx.load_index(ds).select(["source_key", "split"]).to_pylist()
    return {r["source_key"]: r["split"] for r in rows}


FRACTIONS = {"train": 0.5, "val": 0.25, "test": 0.25}


def test_a_half_moved_sample_keeps_its_split_and_is_warned(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw", n=8)
    _shard(raw, tmp_path / "v1", split=FRACTIONS)
    before = _splits(tmp_path / "v1")
    raw2 = tmp_path / "raw2"
    shutil.copytree(raw, raw2)
    (raw2 / "c").mkdir()
    moved = [i for i in range(8) if before[f"a/s{i}"] != "train"]
    for i in moved:
        for ext in ("png", "wav"):
            (raw2 / "a" / f"s{i}.{ext}").rename(raw2 / "c" / f"s{i}.{ext}")
    rep = _shard(raw2, tmp_path / "v2", split=FRACTIONS, split_from=tmp_path / "v1")
    after = _splits(tmp_path / "v2")
    for i in moved:  # caption and moved files: one item, one split (the earlier one)
        assert after[f"a/s{i}"] == after[f"c/s{i}"] == before[f"a/s{i}"]
    said = [w for w in rep["warnings"] if "moved to another class folder only in part" in w]
    assert said and f"a/s{moved[0]}'s png, wav moved to c/s{moved[0]} but its txt stayed" in said[0]
    assert "move every file of the sample" in said[0]
    assert idx.load_card(tmp_path / "v2")["split_from"]["half_moved"] == len(moved)


def test_a_moved_file_with_other_bytes_is_no_half_move(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw", n=4)
    _shard(raw, tmp_path / "v1", split=FRACTIONS)
    raw2 = tmp_path / "raw2"
    shutil.copytree(raw, raw2)
    (raw2 / "c").mkdir()
    (raw2 / "a" / "s1.png").unlink()
    (raw2 / "a" / "s1.wav").rename(raw2 / "c" / "s1.wav")
    (raw2 / "c" / "s1.png").write_bytes(_png(999))  # another image: a new sample, not the moved half
    rep = _shard(raw2, tmp_path / "v2", split=FRACTIONS, split_from=tmp_path / "v1")
    assert not [w for w in rep["warnings"] if "only in part" in w]
    assert "half_moved" not in idx.load_card(tmp_path / "v2")["split_from"]


def test_diff_pairs_a_relabel_in_a_split_folder_tree(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "rs1", n=3, prefix="train")
    _tree(raw, n=2, prefix="test")
    _shard(raw, tmp_path / "v1")
    raw2 = tmp_path / "rs2"
    shutil.copytree(raw, raw2)
    (raw2 / "test" / "c").mkdir()
    for ext in ("png", "wav", "txt"):
        (raw2 / "test" / "a" / f"s1.{ext}").rename(raw2 / "test" / "c" / f"s1.{ext}")
    _shard(raw2, tmp_path / "v2")
    d = diff(tmp_path / "v1", tmp_path / "v2")
    assert d["counts"]["added"] == d["counts"]["removed"] == 0, d["counts"]
    [rel] = d["relabelled"]["items"]
    assert rel["matched"] == "class folder" and rel["source_key"] == "test/c/s1" and (rel["a"], rel["b"]) == ("a", "c")


def test_split_from_a_split_folder_tree_matches_a_move_in_a_flat_one(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "rs1", n=4, prefix="train")
    _tree(raw, classes="a", n=3, prefix="test", stem="t")  # names unique across the tree: t1 is test/a/t1 only
    _shard(raw, tmp_path / "v1")
    flat = tmp_path / "flat"  # the split folders dropped (every key changes); test/a/t1 relabelled c
    for f in sorted(raw.rglob("*.*")):
        split, cls = f.relative_to(raw).parts[:2]
        dest = flat / ("c" if (split, cls, f.stem) == ("test", "a", "t1") else cls)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / f.name)
    rep = _shard(flat, tmp_path / "v2", split=FRACTIONS, split_from=tmp_path / "v1")
    said = [w for w in rep["warnings"] if "moved to another class folder since the earlier version" in w]
    assert said and "'test/a/t1' -> 'c/t1'" in said[0], rep["warnings"]
    assert _splits(tmp_path / "v2")["c/t1"] == "test"


def test_diff_words_a_labelled_pool_file_as_moved_from_outside(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw", n=3)
    (raw / "pool.png").write_bytes(_png(77))
    _shard(raw, tmp_path / "v1", labels_from_folders=True)
    raw2 = tmp_path / "raw2"
    shutil.copytree(raw, raw2)
    (raw2 / "pool.png").rename(raw2 / "a" / "pool.png")
    _shard(raw2, tmp_path / "v2", labels_from_folders=True)
    res = CliRunner().invoke(app, ["diff", str(tmp_path / "v1"), str(tmp_path / "v2")])
    out = " ".join(res.output.split())
    assert "moved from outside the class folders into one; was" in out, res.output
    assert "moved to another class folder" not in out


def test_diff_compares_skipped_entries_in_nfc_and_shows_the_form_change(tmp_path: Path) -> None:
    nfd, nfc = unicodedata.normalize("NFD", "café"), "café"
    raw = _tree(tmp_path / "raw", n=2)
    (raw / nfd).mkdir()
    (raw / nfd / "s0.png").write_bytes(_png(5))
    (raw / nfd / "s1.png").write_bytes(b"not a png")  # left out by the job
    _shard(raw, tmp_path / "v1")
    (raw / nfd).rename(raw / nfc)
    _shard(raw, tmp_path / "v2")
    sk = diff(tmp_path / "v1", tmp_path / "v2")["card"]["skipped"]
    assert sk["added"] == [] and sk["removed"] == [], sk
    n = sk["renormalised"]["count"]
    assert n == sk["a"] == sk["b"] > 0  # every left-out entry names the folder
    a, b = sk["renormalised"]["example"]
    assert "cafe\\u0301/s1" in a and "caf\\xe9/s1" in b, (a, b)
    res = CliRunner().invoke(app, ["diff", str(tmp_path / "v1"), str(tmp_path / "v2")])
    assert f"another Unicode normalisation form: {n} entr" in " ".join(res.output.split()), res.output
    assert json.dumps(sk)  # JSON-able
