"""QA27 on folder and manifest discovery (``mmdata/shards/sources.py``): Windows system folders, secrets and
personal data in manifest cells, spreadsheet exports (CR-only lines, Excel's quoting, ``sep=`` lines, empty rows),
files unpacked from a Windows zip, AppleDouble files a manifest names, paths differing from the disk in case or
spaces, broken links' targets, look-alike and unusable class names, and text cells that mention a URL. Each test
builds the files a user had and checks what they get."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.sources import APPLEDOUBLE, WINDOWS_FOLDER, Discovered, discover, read_manifest
from mmdata.testing import image_bytes


def _png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed))


def _skips(found: Discovered, what: str | None = None) -> dict[str, str]:
    return {s["source"]: s["reason"] for s in found.skipped if what is None or s["what"] == what}


def _images(root: Path, n: int = 3) -> None:
    for i in range(n):
        _png(root / "img" / f"{i}.png", i)


# -- A1: Windows system folders ------------------------------------------------------------------------------------


def test_windows_system_folders_are_not_walked_and_not_classes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for c in ("cat", "dog"):
        _png(src / c / "0.png")
    _png(src / "$RECYCLE.BIN" / "S-1-5-21-1" / "$R0AB12C.png")
    (src / "System Volume Information").mkdir()
    (src / "System Volume Information" / "IndexerVolumeGuid").write_text("{x}")
    _png(src / "cat" / "found.000" / "FILE0000.png")  # any depth
    _png(src / "dog" / "recycler" / "x.png")  # any case
    found = discover(src)
    assert found.label_names == ["cat", "dog"]
    assert sorted(r.source_key for r in found.records) == ["cat/0", "dog/0"]
    assert _skips(found, "folder") == {"$RECYCLE.BIN": WINDOWS_FOLDER, "System Volume Information": WINDOWS_FOLDER,
                                       "cat/found.000": WINDOWS_FOLDER, "dog/recycler": WINDOWS_FOLDER}


# -- B1 / B17: what a manifest's cells may carry -------------------------------------------------------------------


def test_url_secrets_and_unkept_cells_never_reach_the_card(tmp_path: Path) -> None:
    _images(tmp_path)
    url = "https://user:hunter2@example.com/a.jpg?token=SECRETTOKEN"
    (tmp_path / "m.csv").write_text("image,text,label,url,contact\n" + "".join(
        f"img/{i}.png,a cat,cat,{url},jane{i}@example.com\n" for i in range(3)))
    # a kept path column holding a URL: skipped, its secret masked
    (tmp_path / "k.csv").write_text(f"image,label\nimg/0.png,cat\n{url},dog\n")
    for m in ("m", "k"):
        rep = mmdata.shard(tmp_path / f"{m}.csv", tmp_path / f"ds_{m}", progress=False)
        card = (tmp_path / f"ds_{m}" / "dataset.json").read_text()
        assert "hunter2" not in card and "SECRETTOKEN" not in card and "jane0" not in card, card
        assert "hunter2" not in json.dumps(rep) and "jane0" not in json.dumps(rep)
    card = json.loads((tmp_path / "ds_m" / "dataset.json").read_text())
    assert card["counts"]["samples"] == 3 and not card["skipped"]  # an unkept column: no skip per row
    said = [w for w in card["warnings"] if "column 'url'" in w]
    assert len(said) == 1 and "3 values are URLs" in said[0] and "--meta url" in said[0]
    assert any("column 'contact'" in w and "--meta contact" in w for w in card["warnings"])
    k = json.loads((tmp_path / "ds_k" / "dataset.json").read_text())
    assert [s["source"] for s in k["skipped"] if s["what"] == "member"] == [
        "https://***@example.com/a.jpg?token=***"]


def test_a_text_that_mentions_a_url_is_not_a_url(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "m.csv").write_text("image,attribution\n" + "".join(
        f'img/{i}.png,"a Photo by Jane Doe {i}, https://example.org/p/{i}"\n' for i in range(3)))
    found = discover(tmp_path / "m.csv")
    assert len(found.records) == 3 and not found.skipped
    assert not any("URL:" in w or "://" in w for w in found.warnings), found.warnings
    assert any("column 'attribution'" in w and "not read" in w for w in found.warnings)


# -- A5 / A2 / A7 / A8: spreadsheet exports ------------------------------------------------------------------------


def test_cr_only_line_ends_are_read(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "m.csv").write_bytes(b"image,text,label\rimg/0.png,zero,cat\rimg/1.png,one,dog\rimg/2.png,two,cat\r")
    (tmp_path / "m.jsonl").write_bytes(b'{"image": "img/0.png", "label": "cat"}\r{"image": "img/1.png", "label": "dog"}\r')
    found = discover(tmp_path / "m.csv")
    assert [(r.source_key, r.members["txt"]) for r in found.records] == [
        ("img/0", b"zero"), ("img/1", b"one"), ("img/2", b"two")]
    assert [r.label for r in discover(tmp_path / "m.jsonl").records] == [0, 1]


def test_excel_unicode_text_is_read_with_excel_quoting(tmp_path: Path) -> None:
    _images(tmp_path)
    body = 'image\ttext\tlabel\r\nimg/0.png\t"a 12"" record"\tcat\r\nimg/1.png\t"line one\nline two"\tdog\r\nimg/2.png\tplain\tcat\r\n'
    (tmp_path / "excel.txt").write_bytes(body.encode("utf-16"))  # Excel's "Unicode text": UTF-16 with a BOM
    (tmp_path / "excel.tsv").write_bytes(body.encode("utf-8"))  # the same quoting in a UTF-8 export
    for m in ("excel.txt", "excel.tsv"):
        found = discover(tmp_path / m)
        assert [(r.source_key, r.members["txt"]) for r in found.records] == [
            ("img/0", b'a 12" record'), ("img/1", b"line one\nline two"), ("img/2", b"plain")], m
        assert not found.skipped
    # a TSV whose '"' are characters of their cells (no Excel quoting) keeps them
    (tmp_path / "plain.tsv").write_text('image\ttext\nimg/0.png\t"Hello" she said\nimg/1.png\t5" screen\n')
    assert [r["text"] for r in read_manifest(tmp_path / "plain.tsv")] == ['"Hello" she said', '5" screen']


def test_excel_sep_line_is_honoured(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "c.csv").write_bytes(b"sep=,\r\nimage,text,label\r\nimg/0.png,zero,cat\r\nimg/1.png,one,dog\r\n")
    (tmp_path / "s.csv").write_bytes(b"sep=;\r\nimage;text;label\r\nimg/0.png;zero;cat\r\nimg/1.png;one,two;dog\r\n")
    for m in ("c.csv", "s.csv"):
        found = discover(tmp_path / m)
        assert [r.source_key for r in found.records] == ["img/0", "img/1"] and found.label_names == ["cat", "dog"]
    assert discover(tmp_path / "s.csv").records[1].members["txt"] == b"one,two"
    (tmp_path / "x.csv").write_bytes(b"sep=#\r\nimage#label\r\n")
    with pytest.raises(mmdata.errors.SourceError, match=r"x.csv: its first line 'sep=#'"):
        discover(tmp_path / "x.csv")


def test_rows_with_every_cell_empty_are_no_samples(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "m.csv").write_bytes(b"image,text,label\r\nimg/0.png,zero,cat\r\n,,\r\nimg/1.png,one,dog\r\n,,\r\n,,\r\n")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False, max_skipped=0)
    assert rep["samples"] == 2
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert not card["skipped"]
    said = [w for w in card["warnings"] if "every cell empty" in w]
    assert len(said) == 1 and "3 rows" in said[0] and "rows 2, 4, 5" in said[0]


# -- A3 / A11 / A6 / B13: names on disk ----------------------------------------------------------------------------


@pytest.mark.skipif(os.sep != "/", reason="a backslash is a separator on Windows")
def test_names_with_backslashes_are_warned(tmp_path: Path) -> None:
    for c in ("cat", "dog"):
        for i in range(2):
            _png(tmp_path / "src" / f"{c}\\{i}.png", i)
    found = discover(tmp_path / "src")
    said = [w for w in found.warnings if "backslash" in w]
    assert len(said) == 1 and said[0].startswith("4 samples") and "unzip" in said[0] and "'cat\\0'" in said[0]


def test_an_appledouble_file_a_manifest_names_is_not_data(tmp_path: Path) -> None:
    _images(tmp_path, 1)
    (tmp_path / "img" / "._0.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 40)
    (tmp_path / "m.csv").write_text("image,label\nimg/0.png,cat\nimg/._0.png,cat\n")
    found = discover(tmp_path / "m.csv")
    assert [r.source_key for r in found.records] == ["img/0"]
    assert _skips(found, "member") == {"img/._0.png": f"m.csv row 2, column 'image': {APPLEDOUBLE}"}


@pytest.mark.skipif(os.path.exists(os.path.join(os.path.dirname(__file__), "TEST_SOURCES_QA27.PY")),
                    reason="a file system that ignores case")
def test_paths_differing_in_case_or_spaces_get_a_hint(tmp_path: Path) -> None:
    _images(tmp_path)
    (tmp_path / "m.csv").write_bytes(b"image,label\r\nIMG\\0.PNG,cat\r\nImg/1.png,dog\r\nimg/2.png ,cat\r\n")
    found = discover(tmp_path / "m.csv")
    assert not found.records
    reasons = _skips(found, "member")
    assert "differs only in case" in reasons["IMG\\0.PNG"] and "differs only in case" in reasons["Img/1.png"]
    assert "spaces at its start or end" in reasons["img/2.png "]
    case = [w for w in found.warnings if "only in case" in w]
    assert len(case) == 1 and "2 paths" in case[0] and "'img/0.png'" in case[0] and "Linux does not" in case[0]
    assert any("1 path" in w and "'img/2.png '" in w and "delete the spaces" in w for w in found.warnings)
    assert not any("--root" in w for w in found.warnings), found.warnings  # the files are here


def test_a_broken_link_is_named_by_its_target_s_last_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / "a.png")
    (src / "b.wav").symlink_to("/home/alice/recordings/s1.wav")
    found = discover(src)
    assert _skips(found, "file") == {"b.wav": "broken symbolic link (to 's1.wav')"}


# -- B16: class names ----------------------------------------------------------------------------------------------


def test_class_folders_differing_in_end_spaces_are_warned(tmp_path: Path) -> None:
    for c in ("cat", "cat ", "dog"):
        _png(tmp_path / "src" / c / "0.png")
    found = discover(tmp_path / "src")
    assert found.label_names == ["cat", "cat ", "dog"]
    said = [w for w in found.warnings if "'cat'" in w and "'cat '" in w]
    assert len(said) == 1 and "only in spaces at the start or end" in said[0], found.warnings


def test_unusable_class_names_are_refused_naming_the_row(tmp_path: Path) -> None:
    _images(tmp_path)
    long = "x" * 1000
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"image": "img/0.png", "label": "cat"}, {"image": "img/1.png", "label": long},
        {"image": "img/2.png", "label": "dog\nbird"})) + "\n")
    found = discover(tmp_path / "m.jsonl")
    assert found.label_names == ["cat"]
    assert [r.label for r in found.records] == [0, None, None]
    reasons = [s["reason"] for s in found.skipped if s["what"] == "member"]
    assert len(reasons) == 2 and reasons[0].startswith("m.jsonl row 2, column 'label': a class name over 256")
    assert reasons[1].startswith("m.jsonl row 3, column 'label': a class name holding a line break")
    assert all(len(s["source"]) < 300 for s in found.skipped)


# -- A9: keys whose tar members cannot be extracted everywhere -------------------------------------------------------


def test_keys_too_long_or_reserved_on_windows_are_warned(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / ("d" * 200) / ("e" * 200 + ".png"))
    _png(src / "CON.png", 1)
    _png(src / "nul.png", 2)
    _png(src / "ok.png", 3)
    found = discover(src)
    assert len(found.records) == 4  # kept, keys unchanged
    assert {r.key for r in found.records} >= {"CON", "nul", "ok"}
    long = [w for w in found.warnings if "over 200 characters" in w]
    assert len(long) == 1 and long[0].startswith("1 sample has a key") and "tar on Linux" in long[0]
    reserved = [w for w in found.warnings if "Windows reserves" in w]
    assert len(reserved) == 1 and reserved[0].startswith("2 samples") and "'CON', 'nul'" in reserved[0]
