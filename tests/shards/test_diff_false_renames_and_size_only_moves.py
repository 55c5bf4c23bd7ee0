"""QA round 34, review E2 #1 / #2 / #9: ``mmdata diff`` paired a removed sample with a *different* added sample
that had the same bytes (a shared placeholder image, across classes) as a rename, and hid the removal (QA37 vendor #2
pairs content unique in A and B across classes again, listed as renamed and relabelled); against an
index without CRC-32s it paired a class-folder "move" by sizes alone and called it relabelled. A rename now needs
the same class and content that no other row of A or B holds, and stays counted as removed + added (a gate on
added / removed fails as before renames were paired); a sizes-only pair is listed as possibly relabelled and
stays removed + added. Real PNG / WAV files, real shards and indexes."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards import index as idx
from mmdata.shards.diff import diff


def _png(path: Path, seed: int | None) -> None:
    a = np.zeros((8, 8, 3), "uint8") if seed is None else np.random.default_rng(seed).integers(0, 255, (8, 8, 3))
    Image.fromarray(a.astype("uint8")).save(path)


def _manifest(root: Path, rows: list[tuple[str, int | None, str]]) -> Path:
    """rows: (key, image seed or None for the shared blank placeholder, label)."""
    (root / "img").mkdir(parents=True)
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "label"])
        for key, seed, label in rows:
            _png(root / "img" / f"{key}.png", seed)
            w.writerow([key, f"img/{key}.png", label])
    return root / "m.csv"


def _shard(src: Path, out: Path, **kw: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, out, progress=False, **kw)
    return out


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


BASE = [(f"u{i:02d}", i, "cat" if i % 2 else "dog") for i in range(8)]


def test_content_kept_under_another_key_and_class_is_a_relabelled_rename(tmp_path: Path) -> None:
    # QA34 never paired a rename across classes; QA37 vendor #2: an erased item re-delivered under a new key AND a
    # new label then read as removed (erased) while its bytes were still in the data. The content is unique in A and
    # in B, so it pairs (as shard --split-from pairs it): listed as renamed and relabelled, and still counted as
    # removed + added, so a gate on added / removed fails as before
    v1 = _shard(_manifest(tmp_path / "r1", [*BASE, ("jane_00", None, "dog")]), tmp_path / "v1", split="train=1.0")
    v2 = _shard(_manifest(tmp_path / "r2", [*BASE, ("carol_00", None, "cat")]), tmp_path / "v2", split="train=1.0")
    d = diff(v1, v2)
    assert d["counts"]["removed"] == 1 and d["counts"]["added"] == 1 and d["counts"]["relabelled"] == 1
    (item,) = d["renamed"]["items"]
    assert (item["a_key"], item["key"], item["a_label"], item["label"]) == ("jane_00", "carol_00", "dog", "cat")
    (rel,) = d["relabelled"]["items"]
    assert (rel["a"], rel["b"], rel["matched"]) == ("dog", "cat", "content, renamed")
    code, out = _cli(["diff", str(v1), str(v2), "--fail-on", "added,removed"])
    assert code == 1, out


def test_a_placeholder_other_samples_hold_is_no_rename_even_in_one_class(tmp_path: Path) -> None:
    # the blank image is held by u00 in both versions too: not unique in A or B, so no pair
    rows = [*BASE, ("blank_keep", None, "dog")]
    v1 = _shard(_manifest(tmp_path / "r1", [*rows, ("jane_00", None, "dog")]), tmp_path / "v1", split="train=1.0")
    v2 = _shard(_manifest(tmp_path / "r2", [*rows, ("carol_00", None, "dog")]), tmp_path / "v2", split="train=1.0")
    d = diff(v1, v2)
    assert d["renamed"]["total"] == 0 and d["counts"]["removed"] == 1 and d["counts"]["added"] == 1


def test_a_real_rename_is_listed_and_still_counted_as_removed_and_added(tmp_path: Path) -> None:
    v1 = _shard(_manifest(tmp_path / "r1", [*BASE, ("jane_00", 99, "dog"), ("gone", 98, "cat")]), tmp_path / "v1",
                split="train=1.0")
    v2 = _shard(_manifest(tmp_path / "r2", [*BASE, ("s_00", 99, "dog")]), tmp_path / "v2", split="train=1.0")
    d = diff(v1, v2)
    assert d["counts"]["removed"] == 2 and d["counts"]["added"] == 1 and d["renamed"]["total"] == 1
    (item,) = d["renamed"]["items"]
    assert (item["a_key"], item["key"]) == ("jane_00", "s_00")
    removed = {i["key"]: i for i in d["removed"]["items"]}
    assert removed["jane_00"]["renamed_to"] == "s_00" and "renamed_to" not in removed["gone"]
    assert d["added"]["items"][0]["renamed_from"] == "jane_00"
    assert all(set(r) == set(next(iter(d["per_split"].values()))) for r in d["per_split"].values())
    assert d["per_split"]["train"]["renamed"] == 1
    code, out = _cli(["diff", str(v1), str(v2), "--fail-on", "added"])  # an old gate fails as it did
    assert code == 1 and "renamed: was jane_00" in out
    code, _ = _cli(["diff", str(v1), str(v2), "--fail-on", "renamed"])
    assert code == 1


def _wav(path: Path, seed: int) -> None:
    sf.write(path, (np.random.default_rng(seed).standard_normal(800) * 0.1).astype("float32"), 8000,
             subtype="PCM_16")


def test_a_sizes_only_class_folder_pair_is_possibly_relabelled_not_relabelled(tmp_path: Path) -> None:
    for root in ("cf", "cf2"):
        for c in ("cat", "dog"):
            (tmp_path / root / c).mkdir(parents=True)
            for i in range(4):
                _wav(tmp_path / root / c / f"x{i:03d}.wav", 10 * len(c) + i + (c == "dog") * 100)
    _wav(tmp_path / "cf" / "cat" / "x010.wav", 500)   # only in v1 (erased)
    _wav(tmp_path / "cf2" / "dog" / "x010.wav", 501)  # only in v2, other bytes, same size
    c1 = _shard(tmp_path / "cf", tmp_path / "c1", labels_from_folders=True, split="train=1.0")
    c2 = _shard(tmp_path / "cf2", tmp_path / "c2", labels_from_folders=True, split="train=1.0")
    table = pq.read_table(c1 / idx.INDEX)
    pq.write_table(table.drop_columns(["member_crc32"]), c1 / idx.INDEX)
    d = diff(c1, c2)
    assert d["counts"]["relabelled"] == 0 and d["counts"]["removed"] == 1 and d["counts"]["added"] == 1
    (p,) = d["possibly_relabelled"]["items"]
    assert (p["a"], p["b"], p["matched"]) == ("cat", "dog", "class folder, sizes only")
    code, out = _cli(["diff", str(c1), str(c2), "--fail-on", "added,removed"])
    assert code == 1 and "sizes only" in out


def test_add_modality_says_when_it_sealed_an_older_card(tmp_path: Path) -> None:
    # review E2 #3 (the honest part): sealing an older card as it is is reported, not silent
    import json

    from mmdata.testing import make_sample_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(make_sample_folder(tmp_path / "raw", n=3), tmp_path / "ds", layout="columns", progress=False)
    ds = tmp_path / "ds"
    keys = [r["key"] for r in pq.read_table(ds / idx.INDEX, columns=["key"]).to_pylist()]
    (tmp_path / "dep").mkdir()
    for k in keys:
        np.save(tmp_path / "dep" / f"{k}.depth.npy", np.zeros((2, 2), np.float32))
    card = json.loads((ds / idx.CARD).read_text())
    card.pop(idx.CARD_DIGESTS)
    (ds / idx.CARD).write_text(json.dumps(card))
    rep = mmdata.add_modality(ds, "depth", tmp_path / "dep")
    assert rep.get("protected_card") is True
    rep = mmdata.add_modality(ds, "depth", tmp_path / "dep", replace=True)
    assert "protected_card" not in rep
