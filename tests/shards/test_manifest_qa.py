"""QA of ``mmdata shard`` on manifests and small splits (the 8 defects of the manifest QA pass), each
reproduced with real files: the stratified split that left val / test empty, long cells and inline
bytes, ``file://`` cells, paths outside the manifest's folder, derived keys, label columns mixing ids
and names, the ``split`` column, and parse errors without a line number."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.writer import split_counts
from mmdata.testing import audio_bytes, image_bytes, make_class_folders


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(ds: Path) -> dict[str, dict]:
    return {r["source_key"]: r for r in idx.load_index(ds).to_pylist()}


def _media(root: Path, names: list[str]) -> None:
    """Tiny real images at ``names`` under ``root`` (``.jpg`` / ``.jpeg`` as JPEG, else PNG)."""
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "jpg" if name.endswith((".jpg", ".jpeg")) else "png"
        path.write_bytes(image_bytes(i, fmt=fmt))


# -- 1. the stratified split leaves no requested split empty --------------------------------------


@pytest.mark.parametrize(("classes", "per_class", "spec", "want"), [
    (20, 5, "train=0.7,val=0.15,test=0.15", {"train": 70, "val": 15, "test": 15}),  # was train 80 / test 20 / val 0
    (20, 2, "train=0.8,val=0.1,test=0.1", {"train": 32, "val": 4, "test": 4}),  # was train 40 / val 0 / test 0
])
def test_split_of_small_classes_fills_every_split(tmp_path: Path, classes: int, per_class: int, spec: str,
                                                  want: dict[str, int]) -> None:
    names = tuple(f"class{c:02d}" for c in range(classes))
    raw = make_class_folders(tmp_path / "raw", per_class=per_class, classes=names)
    rep = mmdata.shard(raw, tmp_path / "a" / "ds", split=spec, seed=3, progress=False)
    assert rep["splits"] == want
    assert not [w for w in rep["warnings"] if "empty" in w]
    fractions = mmdata.shards.writer.parse_split(spec)
    per = Counter((r["label"], r["split"]) for r in _rows(tmp_path / "a" / "ds").values())
    for c in range(classes):  # every class keeps its share of every split, within one sample
        assert sum(per[c, s] for s in fractions) == per_class
        assert all(abs(per[c, s] - per_class * f) < 1 for s, f in fractions.items()), (c, per)
    mmdata.shard(raw, tmp_path / "b" / "ds", split=spec, seed=3, progress=False)
    assert _tree(tmp_path / "a" / "ds") == _tree(tmp_path / "b" / "ds")  # same input and seed: same bytes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30),
       st.lists(st.integers(0, 20), min_size=1, max_size=5).filter(lambda w: sum(w) > 0))
def test_split_counts_round_within_one_per_class_and_per_split(sizes: list[int], weights: list[int]) -> None:
    fractions = [w / sum(weights) for w in weights]
    exact = [Fraction(repr(f)) for f in fractions]
    exact = [f / sum(exact) for f in exact]
    counts = split_counts(sizes, fractions)
    assert counts == split_counts(sizes, fractions)  # deterministic
    for n, row in zip(sizes, counts):
        assert sum(row) == n and all(k >= 0 and abs(k - n * f) < 1 for k, f in zip(row, exact))
    for s, f in enumerate(exact):
        assert abs(sum(row[s] for row in counts) - sum(sizes) * f) < 1


def test_a_split_too_small_to_get_a_sample_is_a_warning(tmp_path: Path) -> None:
    raw = make_class_folders(tmp_path / "raw", per_class=1, classes=("a", "b", "c"))
    rep = mmdata.shard(raw, tmp_path / "ds", split="train=0.8,val=0.1,test=0.1", progress=False)
    assert rep["splits"] == {"train": 3}
    empty = [w for w in rep["warnings"] if "is empty" in w]
    assert len(empty) == 2 and "'val'" in empty[0] + empty[1] and "'test'" in empty[0] + empty[1]
    assert all("of 3 samples" in w and "train 3, val 0, test 0" in w for w in empty)
    assert empty[0] in idx.load_card(tmp_path / "ds")["warnings"]
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "cli"), "--split", "train=0.8,val=0.1,test=0.1"])
    assert res.exit_code == 0 and "is empty" in " ".join(res.output.split())


# -- 2. long cells, bytes cells and Hugging Face structs ------------------------------------------


def test_a_long_or_cjk_cell_is_a_listed_skip_not_a_crash(tmp_path: Path) -> None:
    _media(tmp_path, ["im0.png", "im1.png"])
    caption = "一张红色背景上的圆形的照片" * 10  # 130 characters, 390 bytes: too long for a file name
    pd.DataFrame([{"key": "a", "image": "im0.png", "caption": caption},
                  {"key": "b", "image": "x" * 300 + ".jpg"},
                  {"key": "c", "image": "im1.png"},
                  {"key": "d", "image": caption}]).to_csv(tmp_path / "m.csv", index=False)
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert rep["samples"] == 2 and rep["skipped_counts"] == {"samples": 2, "members": 2, "files": 0, "folders": 0}
    why = {s["sample"] + s["what"]: s for s in rep["skipped"]}
    assert "row 4, column 'image'" in why["dmember"]["reason"] and "too long" in why["dmember"]["reason"]
    assert "row 2, column 'image'" in why["bmember"]["reason"]
    assert why["bmember"]["source"].endswith("(304 characters)") and len(why["bmember"]["source"]) < 220
    # a column of captions names no file and looks like no file name: not read, one warning (audio-event QA)
    said = [w for w in rep["warnings"] if "column 'caption'" in w]
    assert len(said) == 1 and "--meta caption" in said[0] and "amember" not in why
    with pytest.raises(SourceError, match=r"m.csv row 2, column 'image': .*too long"):
        mmdata.shard(tmp_path / "m.csv", tmp_path / "raise", on_error="raise", progress=False)


def test_parquet_bytes_and_hf_structs_are_the_members_data(tmp_path: Path) -> None:
    jpg, png, flac = image_bytes(1, fmt="jpg"), image_bytes(2), audio_bytes(3)
    rows = [{"key": "a", "image": {"bytes": jpg, "path": "a.jpg"}, "audio": flac, "label": 0},
            {"key": "b", "image": {"bytes": png, "path": None}, "audio": None, "label": 1},
            {"key": "c", "image": {"bytes": None, "path": None}, "audio": b"not media", "label": 1}]
    pd.DataFrame(rows).to_parquet(tmp_path / "m.parquet")
    rep = mmdata.shard(tmp_path / "m.parquet", tmp_path / "ds", progress=False)
    got = _rows(tmp_path / "ds")
    assert got["a"]["members"] == ["a.cls", "a.flac", "a.jpg"] and got["b"]["members"] == ["b.cls", "b.png"]
    assert got["a"]["image_width"] == 32 and got["a"]["audio_sample_rate"] == 8000 and got["b"]["image_mode"] == "RGB"
    # row c: an empty struct and bytes of no known type are listed; with only its label left, c is too
    assert Counter((s["sample"], s["what"]) for s in rep["skipped"]) == {("c", "member"): 2, ("c", "sample"): 1}
    reasons = " | ".join(s["reason"] for s in rep["skipped"])
    assert "row 3, column 'audio': inline bytes of an unknown type" in reasons
    assert "row 3, column 'image': a struct with neither 'bytes' nor 'path'" in reasons
    assert sorted(s["image"].shape for s in mmdata.open_dataset(tmp_path / "ds", on_error="raise")) == [(3, 24, 32)] * 2
    mmdata.shard(tmp_path / "m.parquet", tmp_path / "again", progress=False)
    assert _tree(tmp_path / "ds")["train-000000.tar"] == _tree(tmp_path / "again")["train-000000.tar"]


# -- 3. file:// URLs in cells ---------------------------------------------------------------------


def test_file_urls_in_cells_are_local_files(tmp_path: Path) -> None:
    _media(tmp_path, ["media dir/img 0 猫.jpg", "media dir/img 1.png", "media dir/img 2.png"])
    base = (tmp_path / "media dir").resolve()
    pd.DataFrame([{"key": "u1", "image": f"file://{base}/img 0 猫.jpg"},
                  {"key": "u2", "image": "file://" + quote(f"{base}/img 1.png")},  # percent-encoded
                  {"key": "u3", "image": f"file:{base}/img 2.png"},  # file:/path (RFC 8089)
                  {"key": "u4", "image": "file://otherhost/x.png"}]).to_csv(tmp_path / "m.csv", index=False)
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert set(_rows(tmp_path / "ds")) == {"u1", "u2", "u3"}
    assert [s["sample"] for s in rep["skipped"] if s["what"] == "member"] == ["u4"]
    assert "another host" in rep["skipped"][0]["reason"]


# -- 4. one policy for paths outside the manifest's folder ----------------------------------------


def test_relative_and_absolute_paths_outside_the_folder_are_refused_alike(tmp_path: Path) -> None:
    _media(tmp_path, ["outside/o.jpg", "man/in/i.png", "man/in/j.png"])
    man = tmp_path / "man"
    pd.DataFrame([{"key": "rel", "image": "../outside/o.jpg", "text": "t"},
                  {"key": "abs", "image": str(tmp_path / "outside" / "o.jpg"), "text": "t"},
                  {"key": "url", "image": f"file://{tmp_path}/outside/o.jpg", "text": "t"},
                  {"key": "in_abs", "image": str(man / "in" / "i.png")},  # absolute, inside: read
                  {"key": "in_rel", "image": "in/../in/j.png"}]).to_csv(man / "m.csv", index=False)
    rep = mmdata.shard(man / "m.csv", tmp_path / "ds", progress=False)
    got = _rows(tmp_path / "ds")
    assert got["in_abs"]["modalities"] == ["image"] and got["in_rel"]["modalities"] == ["image"]
    assert all(got[k]["modalities"] == ["text"] for k in ("rel", "abs", "url"))
    escapes = [s for s in rep["skipped"] if "escapes the manifest's folder" in s["reason"]]
    assert sorted(s["sample"] for s in escapes) == ["abs", "rel", "url"]
    assert sum("3 paths outside the manifest's folder" in w for w in rep["warnings"]) == 1
    pd.DataFrame([{"image": str(tmp_path / "outside" / "o.jpg")}]).to_csv(man / "abs.csv", index=False)
    with pytest.raises(SourceError, match="abs.csv row 1, column 'image': .*o.jpg: the path escapes"):
        mmdata.shard(man / "abs.csv", tmp_path / "raise", on_error="raise", progress=False)


# -- 5. keys derived as a folder source derives them ----------------------------------------------


def test_keys_without_a_key_column_keep_dots_and_folders(tmp_path: Path) -> None:
    _media(tmp_path, ["scan.1.v2.jpg", "scan.2.v2.jpeg", "a/x.jpg", "b/x.jpg"])
    pd.DataFrame([{"score": 0.5, "image": "scan.1.v2.jpg"}, {"score": 0.7, "image": "scan.2.v2.jpeg"},
                  {"score": 0.1, "image": "a/x.jpg"}, {"score": 0.2, "image": "./b/../b/x.jpg"},
                  {"score": 0.3, "image": None}]).to_csv(tmp_path / "m.csv", index=False)
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    # the score column (not a file) does not name the sample; a row without any path keeps its number
    assert set(_rows(tmp_path / "ds")) == {"scan.1.v2", "scan.2.v2", "a/x", "b/x"}
    folder = tmp_path / "folder"
    _media(folder, ["scan.1.v2.jpg", "a/x.jpg"])
    mmdata.shard(folder, tmp_path / "fds", progress=False)
    assert set(_rows(tmp_path / "fds")) == {"scan.1.v2", "a/x"}  # the same names as a folder source


# -- 6. a label column mixing ids and names --------------------------------------------------------


def test_a_label_column_mixing_ids_and_names_maps_nothing_silently(tmp_path: Path) -> None:
    _media(tmp_path, [f"im{i}.png" for i in range(4)])
    rows = [{"key": k, "image": f"im{i}.png", "label": lab}
            for i, (k, lab) in enumerate(zip("abcd", ["dog", "cat", "1", "5"]))]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    got = _rows(tmp_path / "ds")
    assert {k: r["label"] for k, r in got.items()} == {"a": 1, "b": 0, "c": None, "d": None}  # 1 is not 'dog'
    assert sorted(s["sample"] for s in rep["skipped"]) == ["c", "d"]
    mixed = [w for w in rep["warnings"] if "mixes class ids" in w]
    assert len(mixed) == 1 and "--labels" in mixed[0] and "rows 3, 4" in mixed[0]
    with pytest.raises(SourceError, match=r"row 3, column 'label'.*class id in a column of class names"):
        mmdata.shard(tmp_path / "m.csv", tmp_path / "raise", on_error="raise", progress=False)
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\nfish\nant\nbee\n")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "named", label_names=tmp_path / "names.txt", progress=False)
    assert {k: r["label"] for k, r in _rows(tmp_path / "named").items()} == {"a": 1, "b": 0, "c": 1, "d": 5}
    assert rep["skipped"] == [] and not [w for w in rep["warnings"] if "mixes" in w]


def test_a_fraction_among_ids_is_a_bad_label_not_a_class(tmp_path: Path) -> None:
    _media(tmp_path, [f"im{i}.png" for i in range(3)])
    pd.DataFrame([{"key": k, "image": f"im{i}.png", "label": lab}
                  for i, (k, lab) in enumerate(zip("abc", ["0", "1", "1.5"]))]).to_csv(tmp_path / "m.csv", index=False)
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert {k: r["label"] for k, r in _rows(tmp_path / "ds").items()} == {"a": 0, "b": 1, "c": None}
    assert idx.load_card(tmp_path / "ds")["label_names"] is None
    assert [s["source"] for s in rep["skipped"]] == ["label '1.5'"]


# -- 7. the manifest's split column ----------------------------------------------------------------


def _split_manifest(root: Path, splits: list[str | None]) -> Path:
    _media(root, [f"im{i}.png" for i in range(len(splits))])
    pd.DataFrame([{"key": f"s{i:02d}", "image": f"im{i}.png", "split": s}
                  for i, s in enumerate(splits)]).to_csv(root / "m.csv", index=False)
    return root / "m.csv"


def test_split_values_differing_only_in_case_are_an_error(tmp_path: Path) -> None:
    """As --split: Train-000000.tar and train-000000.tar are one file on macOS / Windows copies."""
    m = _split_manifest(tmp_path, ["Train", "train", "val"])
    with pytest.raises(SourceError, match=r"'Train' \(row 1\) and 'train' \(row 2\) differ only in case"):
        mmdata.shard(m, tmp_path / "ds", progress=False)
    assert not (tmp_path / "ds").exists()


def test_split_column_spellings_and_empty_cells_are_warned_about(tmp_path: Path) -> None:
    m = _split_manifest(tmp_path, ["Train", "dev", "validation", None, "val", "val", "test", None])
    rep = mmdata.shard(m, tmp_path / "ds", progress=False)
    text = "\n".join(rep["warnings"])
    assert "'Train' (row 1) differs from 'train' only in case" in text
    assert "'dev' (row 2) is not one of train, val, test" in text and "means 'val'" in text
    assert "'validation' (row 3)" in text
    assert "2 samples of 8 have no split of their own" in text and "went to 'train'" in text
    assert rep["splits"]["train"] == 2  # the two empty cells

    rep = mmdata.shard(m, tmp_path / "ds2", split="train=0.5,val=0.5", progress=False)
    assert any("applied to the 2 samples without a split of their own" in w for w in rep["warnings"])
    assert idx.load_card(tmp_path / "ds2")["options"]["split"] == {"train": 0.5, "val": 0.5}


def test_split_fractions_that_no_sample_used_are_not_recorded(tmp_path: Path) -> None:
    m = _split_manifest(tmp_path, ["train", "train", "val", "test"])
    rep = mmdata.shard(m, tmp_path / "ds", split="train=0.8,val=0.1,test=0.1", progress=False)
    assert rep["splits"] == {"train": 2, "val": 1, "test": 1}
    assert any("--split train=0.8,val=0.1,test=0.1 was not used" in w for w in rep["warnings"])
    assert idx.load_card(tmp_path / "ds")["options"]["split"] is None


@pytest.mark.parametrize("bad", ["../evil", "a/b", ".hidden"])
def test_a_split_that_cannot_name_shard_files_is_an_error(tmp_path: Path, bad: str) -> None:
    m = _split_manifest(tmp_path / "raw", ["train", bad])
    with pytest.raises(SourceError, match=r"m.csv row 2, column 'split'.*cannot name shard files"):
        mmdata.shard(m, tmp_path / "out" / "ds", progress=False)
    assert not list(tmp_path.rglob("*.tar"))  # nothing written, inside OUT or beside it
    with pytest.raises(SourceError, match="--split \\(split=\\): split '../x' cannot name shard files"):
        mmdata.shard(m, tmp_path / "out" / "ds", split="train=0.5,../x=0.5", progress=False)


# -- 8. parse errors name the line -----------------------------------------------------------------


def test_manifest_parse_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"key": "a", "image": "x.png"}\n\n{"key": "c", image: 1}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad.jsonl: line 3 is not JSON \(Expecting property name"):
        mmdata.shard(tmp_path / "bad.jsonl", tmp_path / "ds", progress=False)
    (tmp_path / "twice.jsonl").write_text('{"key": "a", "text": "x"}\n{"key": "b", "text": "y", "text": "z"}\n',
                                          encoding="utf-8")  # JSON keeps "z" without a word (QA 2026-12-03)
    with pytest.raises(SourceError, match=r"twice.jsonl: line 2: key\(s\) \['text'\] given more than once"):
        mmdata.shard(tmp_path / "twice.jsonl", tmp_path / "ds", progress=False)
    (tmp_path / "twice.csv").write_text("key,text,text\nk1,a,b\n", encoding="utf-8")  # pandas: "text.1"
    with pytest.raises(SourceError, match=r"twice.csv: column\(s\) \['text'\] appear more than once in its header"):
        mmdata.shard(tmp_path / "twice.csv", tmp_path / "ds", progress=False)
    (tmp_path / "list.jsonl").write_text('{"key": "a"}\n["b"]\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"list.jsonl: line 2: expected a JSON object"):
        mmdata.shard(tmp_path / "list.jsonl", tmp_path / "ds", progress=False)
    (tmp_path / "latin1.csv").write_bytes("key,image,text\nk1,im.png,café\n".encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin1.csv: line 2 is not UTF-8 \(byte 0xe9 .*save the manifest as UTF-8"):
        mmdata.shard(tmp_path / "latin1.csv", tmp_path / "ds", progress=False)
    for sep, word in ((";", "semicolon"), ("\t", "tab")):
        # a ragged line: a clean ;- or tab-separated .csv is read with a warning since QA33 (multisite #8)
        (tmp_path / "semi.csv").write_text(f"key{sep}image{sep}label\nk1{sep}im.png{sep}0{sep}x\n", encoding="utf-8")
        with pytest.raises(SourceError, match=rf"semi.csv: its header is one column .* looks {word}-separated"):
            mmdata.shard(tmp_path / "semi.csv", tmp_path / "ds", progress=False)


def test_a_bom_and_crlf_csv_and_a_jsonl_with_blank_lines_still_read(tmp_path: Path) -> None:
    _media(tmp_path, ["im0.png", "im1.png"])
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbfkey,image,label\r\nk0,im0.png,cat\r\nk1,im1.png,dog\r\n")
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps({"key": f"k{i}", "image": f"im{i}.png", "label": lab})
                                                for i, lab in enumerate(["cat", "dog"])) + "\n\n", encoding="utf-8")
    for name in ("m.csv", "m.jsonl"):
        rep = mmdata.shard(tmp_path / name, tmp_path / name.replace(".", "_"), progress=False)
        assert rep["samples"] == 2 and rep["skipped"] == [] and rep["warnings"] == []
        assert {k: r["label"] for k, r in _rows(tmp_path / name.replace(".", "_")).items()} == {"k0": 0, "k1": 1}
