"""QA round on ``mmdata shard``'s source discovery (2026-12-04): class folders falsely called a paired
layout when one file had another type; UTF-16 manifests and captions named "not UTF-8 (Latin-1?)"; class
names that differ only in case kept without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover, not_utf8_reason, parse_label
from mmdata.testing import audio_bytes, image_bytes
from tests.shards.test_paired_layout import _pairs


def _classes(root: Path, names: tuple[str, ...] = ("cat", "dog", "bird"), n: int = 10) -> Path:
    """Class folders numbering their files alike, each sample an image and its sound."""
    for c in names:
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i:04d}.jpg").write_bytes(image_bytes(i, fmt="jpeg"))
            (root / c / f"{i:04d}.wav").write_bytes(audio_bytes(i, fmt="wav"))
    return root


def _paired(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "were read as classes" in w or "holds a paired layout" in w]


# -- 1. class folders with an odd file type are no paired layout ------------------------------------------


def test_one_odd_file_type_in_a_class_folder_is_no_paired_layout(tmp_path: Path) -> None:
    root = _classes(tmp_path / "pets")
    (root / "dog" / "0003.jpg").unlink()
    (root / "dog" / "0003.png").write_bytes(image_bytes(3))
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    assert not _paired(rep["warnings"]), rep["warnings"]  # was: "--column image=bird --column cat=cat ..."
    assert rep["samples"] == 30 and mmdata.inspect(tmp_path / "ds")["num_classes"] == 3


def test_an_extra_type_in_one_class_folder_is_no_paired_layout(tmp_path: Path) -> None:
    """Every dog has a caption, no cat has: the folders' types differ, the names' types overlap."""
    root = _classes(tmp_path / "pets", ("cat", "dog"), n=4)
    for i in range(4):
        (root / "dog" / f"{i:04d}.txt").write_text(f"dog {i}", encoding="utf-8")
    assert not _paired(discover(root).warnings)


def test_sub_folders_of_a_class_with_odd_names_are_no_paired_layout(tmp_path: Path) -> None:
    root = tmp_path / "nest"
    for sub in ("a", "b b"):
        (root / "Cat" / sub).mkdir(parents=True)
        (root / "Cat" / sub / "ünï 0.png").write_bytes(image_bytes(0))
        (root / "Cat" / sub / "ünï 0.txt").write_text("a cat", encoding="utf-8")
    (root / "Cat" / "a" / "ünï 0.wav").write_bytes(audio_bytes(0, fmt="wav"))
    (root / "Dog").mkdir()
    (root / "Dog" / "x.png").write_bytes(image_bytes(1))
    found = discover(root)
    assert not _paired(found.warnings), found.warnings  # was: "--column image=Cat/a --column b_b='Cat/b b'"
    (root / "Cat" / "b b" / "ünï 0.png").unlink()
    (root / "Cat" / "b b" / "ünï 0.txt").unlink()
    (root / "Cat" / "b b" / "ünï 0.jpg").write_bytes(image_bytes(2, fmt="jpeg"))  # no type in common, but one name
    assert not _paired(discover(root).warnings)


def test_names_whose_types_differ_across_folders_still_warn(tmp_path: Path) -> None:
    """The layout the warning is for, under names it does not know: every shared name a .jpg in one
    folder and a .png in the other (a few images without their mask, and one odd mask, allowed)."""
    root = tmp_path / "scans"
    _pairs(root, "photos", "maps", n=12)
    (root / "photos" / "0011.jpg").unlink()
    (root / "photos" / "0011.png").write_bytes(image_bytes(11))  # one of twelve pairs of one type
    (warning,) = _paired(discover(root).warnings)
    assert "24 of 24 samples share their name" in warning and "--column image=photos --column maps=maps" in warning
    nested = tmp_path / "outer"
    _pairs(nested / "set", "photos", "maps")
    (warning,) = _paired(discover(nested).warnings)
    assert "folder set/ holds a paired layout" in warning
    assert "--column image=set/photos --column maps=set/maps" in warning


def test_classes_of_one_mixed_type_do_not_warn_and_named_folders_do(tmp_path: Path) -> None:
    assert not _paired(discover(_classes(tmp_path / "pets", n=3)).warnings)
    _pairs(tmp_path / "rgbd", "rgb", "depth", mask_ext="jpg")  # one type, but the names of such a layout
    assert _paired(discover(tmp_path / "rgbd").warnings)


# -- 2. UTF-16 named as UTF-16 ----------------------------------------------------------------------------


def _manifest_folder(root: Path) -> Path:
    root.mkdir()
    for i in range(3):
        (root / f"{i}.png").write_bytes(image_bytes(i))
    return root


ROWS = "image,text,label\n0.png,café ✓,cat\n1.png,a dog,dog\n2.png,,cat\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be-bom"])
def test_a_utf16_manifest_with_a_byte_order_mark_is_read_and_says_so(tmp_path: Path, encoding: str) -> None:
    """Excel's / Notepad's "Unicode" save: the mark says how to read it, so it is read; the shards are the
    UTF-8 manifest's, byte for byte, and the card says what was read."""
    root = _manifest_folder(tmp_path / "raw")
    (root / "utf8.csv").write_text(ROWS, encoding="utf-8")
    data = b"\xfe\xff" + ROWS.encode("utf-16-be") if encoding.endswith("bom") else ROWS.encode(encoding)
    (root / "utf16.csv").write_bytes(data)
    a = mmdata.shard(root / "utf8.csv", tmp_path / "a", split="train=1.0", progress=False)
    b = mmdata.shard(root / "utf16.csv", tmp_path / "b", split="train=1.0", progress=False)
    kind = "UTF-16 BE" if encoding.endswith("bom") else "UTF-16 LE"
    mark = "FE FF" if encoding.endswith("bom") else "FF FE"
    (note,) = [w for w in b["warnings"] if w not in a["warnings"]]
    assert note.startswith(f"manifest utf16.csv is {kind} (byte order mark {mark}), not UTF-8: it was read as {kind}")
    assert "stored as UTF-8" in note
    tars = sorted(p.name for p in (tmp_path / "a").glob("*.tar"))
    assert tars and all((tmp_path / "a" / t).read_bytes() == (tmp_path / "b" / t).read_bytes() for t in tars)
    json_b = (tmp_path / "b" / "dataset.json").read_text(encoding="utf-8")
    assert "UTF-16" in json_b  # the card keeps the warning


def test_utf16_without_a_mark_is_named_not_called_latin1(tmp_path: Path) -> None:
    root = _manifest_folder(tmp_path / "raw")
    (root / "m.csv").write_bytes(ROWS.encode("utf-16-le"))
    with pytest.raises(SourceError, match=r"m\.csv: the file is UTF-16 \(UTF-16 LE, without a byte order mark\), "
                                          r"not UTF-8: save the manifest as UTF-8") as err:
        discover(root / "m.csv")
    assert "Latin-1" not in str(err.value)
    (root / "m.jsonl").write_bytes('{"image": "0.png"}\n'.encode("utf-16-be"))
    with pytest.raises(SourceError, match=r"UTF-16 BE, without a byte order mark"):
        discover(root / "m.jsonl")
    (root / "m.csv").write_bytes(b"image,text\n0.png,caf\xe9\n")  # Latin-1 keeps its hint
    with pytest.raises(SourceError, match=r"line 2 is not UTF-8 \(byte 0xe9 at byte 10 of the line; Latin-1"):
        discover(root / "m.csv")


def test_a_utf16_class_names_file_and_label_file_are_named(tmp_path: Path) -> None:

    root = _manifest_folder(tmp_path / "raw")
    (root / "labels.txt").write_text("cat\ndog\n", encoding="utf-16")
    with pytest.raises(SourceError, match=r"labels\.txt: the file is UTF-16 \(UTF-16 LE, byte order mark FF FE\)"):
        discover(root)
    with pytest.raises(ValueError, match=r"^label file is UTF-16 \(UTF-16 LE, byte order mark FF FE\), not UTF-8"):
        parse_label("dog".encode("utf-16"), ["cat", "dog"])
    with pytest.raises(ValueError, match=r"^label file is not UTF-8 \(invalid continuation byte at byte 0\)$"):
        parse_label(b"\xe9t\xe9", ["cat", "dog"])


# -- 3. class names that differ only in case --------------------------------------------------------------


def test_manifest_labels_differing_only_in_case_warn_once_and_stay_apart(tmp_path: Path) -> None:
    root = _manifest_folder(tmp_path / "raw")
    labels = ["cat"] * 40 + ["Cat"] * 3 + ["dog "] * 5 + ["DOG"]
    rows = ["key,image,label"] + [f"k{i:03d},{i % 3}.png,{lab}" for i, lab in enumerate(labels)]
    (root / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rep = mmdata.shard(root / "m.csv", tmp_path / "ds", split="train=1.0", progress=False)
    case = [w for w in rep["warnings"] if "differ only in case" in w]
    assert case == ["manifest m.csv, column 'label': classes 'Cat' (3) and 'cat' (40); 'DOG' (1) and 'dog' (5) differ "
                    "only in case — a typo? They are kept as written: 4 classes of their own; if they are one, write "
                    "the label one way in the manifest"]
    card = (tmp_path / "ds" / "dataset.json").read_text(encoding="utf-8")
    assert "differ only in case" in card
    assert mmdata.inspect(tmp_path / "ds")["per_class"]["train"] == {"Cat": 3, "DOG": 1, "cat": 40, "dog": 5}


def test_manifest_labels_without_case_variants_and_declared_names_do_not_warn(tmp_path: Path) -> None:
    root = _manifest_folder(tmp_path / "raw")
    rows = ["key,image,label"] + [f"k{i},{i % 3}.png,{lab}" for i, lab in enumerate(["cat", "dog", "bird", "cat"])]
    (root / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert not [w for w in discover(root / "m.csv").warnings if "only in case" in w]
    (root / "m.csv").write_text("key,image,label\nk0,0.png,Cat\nk1,1.png,cat\n", encoding="utf-8")
    found = discover(root / "m.csv", label_names=["Cat", "cat"])  # declared: the user named both
    assert not [w for w in found.warnings if "only in case" in w]


def test_class_folders_differing_only_in_case_warn_in_the_result(tmp_path: Path) -> None:
    root = tmp_path / "cf"
    for n, name in enumerate(("cat", "Cat", "dog")):
        (root / name).mkdir(parents=True)
        (root / name / f"{n}.png").write_bytes(image_bytes(n))
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    assert [w for w in rep["warnings"] if "differ only in case" in w] == [
        "class folders 'Cat' (class 0) and 'cat' (class 1) differ only in case: they are 2 classes; if they are one, "
        "merge the folders"]


def test_a_utf16_caption_reason() -> None:
    """The reason a text member's check can give (``not_utf8_reason``, from the decode error's bytes)."""
    for data, want in (("a cat".encode("utf-16"), "text is UTF-16 (UTF-16 LE, byte order mark FF FE), not UTF-8"),
                       ("a cat".encode("utf-16-be"), "text is UTF-16 (UTF-16 BE, without a byte order mark), not UTF-8"),
                       (b"caf\xe9", "text is not UTF-8 (invalid start byte at byte 3)")):
        exc = UnicodeDecodeError("utf-8", data, 3 if data == b"caf\xe9" else 0, 4, "invalid start byte")
        assert not_utf8_reason(data, exc).startswith(want)


def test_a_utf16_caption_in_a_folder_is_named_as_utf16(tmp_path: Path) -> None:
    root = _manifest_folder(tmp_path / "raw")
    (root / "0.txt").write_text("a cat", encoding="utf-16")
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    (entry,) = rep["skipped"]
    assert entry["source"] == "0.txt" and entry["what"] == "member"
    assert entry["reason"].startswith("text is UTF-16 (UTF-16 LE, byte order mark FF FE), not UTF-8: save it as UTF-8")


def test_a_utf16_caption_without_a_mark_is_not_stored_with_nul_bytes(tmp_path: Path) -> None:
    root = _manifest_folder(tmp_path / "raw")
    (root / "0.txt").write_bytes("a cat".encode("utf-16-le"))
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    assert [e["reason"][:60] for e in rep["skipped"]] == ["text is UTF-16 (UTF-16 LE, without a byte order mark), not U"]
