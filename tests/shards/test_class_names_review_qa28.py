"""Review of QA28 (reviewB #2, #5): a declared class name in another script's digits stays that class; only
canonical composition (NFD / NFC) unifies class folder names, compatibility characters keep theirs."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from mmdata.shards.sources import discover, parse_label, source_label
from mmdata.testing import image_bytes

DIGIT_NAMES = ["١", "٢", "٣"]


def test_a_label_file_naming_a_declared_class_in_arabic_indic_digits_is_that_class(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("\n".join(DIGIT_NAMES) + "\n", "utf-8")
    for i, raw in enumerate(DIGIT_NAMES * 2):
        (tmp_path / f"s{i}.png").write_bytes(image_bytes(i))
        (tmp_path / f"s{i}.cls").write_text(raw, "utf-8")
    d = discover(tmp_path)
    assert d.label_names == DIGIT_NAMES
    assert sorted((r.key, r.label) for r in d.records) == [(f"s{i}", i % 3) for i in range(6)]
    assert not d.skipped, d.skipped


def test_a_manifest_naming_declared_classes_in_arabic_indic_digits(tmp_path: Path) -> None:
    rows = "".join(f"s{i}.png,{DIGIT_NAMES[i % 3]}\n" for i in range(6))
    for i in range(6):
        (tmp_path / f"s{i}.png").write_bytes(image_bytes(i))
    (tmp_path / "m.csv").write_text("path,label\n" + rows, "utf-8")
    d = discover(tmp_path / "m.csv", label_names=list(DIGIT_NAMES), label_names_from="names.txt")
    assert sorted((r.key, r.label) for r in d.records) == [(f"s{i}", i % 3) for i in range(6)]


def test_source_label_keeps_a_declared_name() -> None:
    assert source_label("٢".encode(), DIGIT_NAMES) == "٢".encode()
    assert source_label("٢".encode(), ["cat", "dog", "bird"]) == b"2"
    assert source_label("٢".encode()) == b"2"
    assert parse_label(source_label("٢".encode(), DIGIT_NAMES), DIGIT_NAMES) == 1


COMPAT = ["가족", "\uf900樂", "\u212bngström", "Zebra"]


def test_compatibility_characters_keep_their_folder_names_and_order(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    for c in COMPAT:
        (root / c).mkdir(parents=True)
        for i in range(2):
            (root / c / f"{i}.png").write_bytes(image_bytes(i))
    if set(os.listdir(root)) != set(COMPAT):
        pytest.skip("the file system normalizes names")
    d = discover(root)
    assert d.label_names == sorted(COMPAT) == ["Zebra", "\u212bngström", "가족", "\uf900樂"]
    ids = {r.source_key.split("/")[0]: r.label for r in d.records}
    assert [ids[c] for c in COMPAT] == [2, 3, 1, 0]


def test_an_nfd_folder_without_a_twin_is_named_in_nfc_and_compat_names_kept(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    names = [unicodedata.normalize("NFD", "école"), "\u212bngström", "fleur"]
    for c in names:
        (root / c).mkdir(parents=True)
        (root / c / "0.png").write_bytes(image_bytes(0))
        (root / c / "1.png").write_bytes(image_bytes(1))
    if set(os.listdir(root)) != set(names):
        pytest.skip("the file system normalizes names")
    d = discover(root)
    assert d.label_names == ["fleur", "école", "\u212bngström"]
