"""QA28 i18n #3 / #5 / #7: class ids that do not depend on the Unicode form, labels in other digits, and class
names that differ only by width or an invisible character."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.sources import discover
from mmdata.testing import image_bytes


def _class_folders(root: Path, classes: list[str], form: str | None = None) -> Path:
    for c in classes:
        d = root / (unicodedata.normalize(form, c) if form else c)
        d.mkdir(parents=True)
        for i in range(2):
            (d / f"{i}.png").write_bytes(image_bytes(i))
    return root


def _card(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text("utf-8"))


def test_nfd_and_nfc_class_folders_give_the_same_names_and_ids(tmp_path: Path) -> None:
    cards = {}
    for form in ("NFC", "NFD"):
        src = _class_folders(tmp_path / form.lower(), ["école", "fleur", "Ökologie"], form)
        if form == "NFD" and not any(unicodedata.is_normalized("NFD", n) and not n.isascii() for n in os.listdir(src)):
            pytest.skip("the file system normalizes names")
        mmdata.shard(src, tmp_path / f"ds_{form}", progress=False)
        cards[form] = _card(tmp_path / f"ds_{form}")
    assert cards["NFC"]["label_names"] == cards["NFD"]["label_names"] == ["fleur", "Ökologie", "école"]
    ids = {}
    for form in ("NFC", "NFD"):
        ds = mmdata.open_dataset(tmp_path / f"ds_{form}", split="train")
        ids[form] = sorted((s.key, s.get("label")) for s in ds)
    assert ids["NFC"] == ids["NFD"]


def test_a_manifest_in_nfd_sorts_as_nfc(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    nfd = unicodedata.normalize("NFD", "école")
    (tmp_path / "m.csv").write_text(f"path,label\n0.png,{nfd}\n1.png,fleur\n2.png,{nfd}\n3.png,fleur\n", "utf-8")
    d = discover(tmp_path / "m.csv")
    assert [unicodedata.normalize("NFC", n) for n in d.label_names] == ["fleur", "école"]
    assert sorted(r.label for r in d.records) == [0, 0, 1, 1]


def test_labels_in_arabic_indic_and_full_width_digits_are_class_ids(tmp_path: Path) -> None:
    cells = ["١", "٢", "１", "2", "١", "٢", "１", "2"]
    for i in range(len(cells)):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"{i}.png,{c}\n" for i, c in enumerate(cells)), "utf-8")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert not rep["skipped"], rep["skipped"]
    got = sorted((int(s.key), s.get("label")) for s in mmdata.open_dataset(tmp_path / "ds", split="train"))
    assert got == [(0, 1), (1, 2), (2, 1), (3, 2), (4, 1), (5, 2), (6, 1), (7, 2)]


def test_a_label_file_in_arabic_indic_digits(tmp_path: Path) -> None:
    for i, raw in enumerate(["٣", "１２", "-٣", "3"]):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
        (tmp_path / f"{i}.cls").write_text(raw, "utf-8")
    d = discover(tmp_path)
    assert sorted((r.key, r.label) for r in d.records) == [("0", 3), ("1", 12), ("2", None), ("3", 3)]
    assert any("negative" in e["reason"] for e in d.skipped), d.skipped


NEAR = [("ネコ", "ﾈｺ", "width"), ("كلب", "كلب\u200f", "invisible characters"),
        ("میخواهم", "می\u200cخواهم", "invisible characters"), ("12", "１２", "width"), ("Cat", "cat", "case")]


@pytest.mark.parametrize(("a", "b", "how"), NEAR)
def test_class_folders_equal_but_for_width_or_invisible_characters_are_warned_of(tmp_path: Path, a: str, b: str,
                                                                                 how: str) -> None:
    src = _class_folders(tmp_path / "raw", [a, b, "dog"])
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    near = [w for w in rep["warnings"] if "differ only in" in w and "class folders" in w]
    assert len(near) == 1 and how in near[0], rep["warnings"]


@pytest.mark.parametrize(("a", "b", "how"), NEAR)
def test_manifest_class_names_equal_but_for_width_or_invisible_characters(tmp_path: Path, a: str, b: str,
                                                                          how: str) -> None:
    for i in range(4):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    (tmp_path / "m.csv").write_text(f"path,label\n0.png,{a}\n1.png,{b}\n2.png,{a}\n3.png,dog\n", "utf-8")
    d = discover(tmp_path / "m.csv")
    near = [w for w in d.warnings if "differ only in" in w]
    if how == "width" and a.isascii():  # '12' is a class id and '１２' the id 12: not names
        assert not near
        return
    assert len(near) == 1 and how in near[0], d.warnings
