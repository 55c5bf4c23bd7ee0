"""A Hugging Face dataset as a source follows the rules of folder and manifest sources (QA round 33, multilingual
#13): ClassLabel names in NFD are stored in NFC (warned), names with an invisible character at an end are warned of,
and an empty / spaces-only / zero-width-only caption is no text. Real PNG bytes, real shards."""

from __future__ import annotations

import io
import json
import tarfile
import unicodedata as ud
from pathlib import Path

import pytest

import mmdata

datasets = pytest.importorskip("datasets")
from PIL import Image  # noqa: E402


def _png(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(b, "PNG")
    return b.getvalue()


def _members(out: Path) -> dict[str, bytes]:
    got = {}
    for tar in sorted(out.glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                got[m.name] = t.extractfile(m).read()
    return got


def test_classlabel_names_nfc_warned_and_blank_captions_no_text(tmp_path: Path) -> None:
    names = [ud.normalize("NFD", "café"), "猫", "كلب\u200f"]
    texts = [ud.normalize("NFD", "Café à gauche"), "\u200b", "猫が左に", " \u2060 ", "", "x"]
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(i), "path": None} for i in range(6)], "text": texts, "label": [0, 1, 2, 0, 1, 2]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=names)}))
    rep = mmdata.shard(ds, tmp_path / "d", progress=False)
    card = json.loads((tmp_path / "d" / "dataset.json").read_text(encoding="utf-8"))
    assert card["label_names"] == ["caf\xe9", "猫", "كلب\u200f"]
    said = " ".join(rep["warnings"])
    assert "NFD" in said and repr(names[0]) in said  # the NFD name, named
    assert "invisible character" in said  # the RLM name, kept and named
    assert "3 rows of column 'text'" in said and "no text" in said
    got = _members(tmp_path / "d")
    txt = {k: v for k, v in got.items() if k.endswith(".txt")}
    assert len(txt) == 3 and b"x" in txt.values()  # the three blank captions left no member
    # the caption itself is stored as given (text is not normalised: the model's tokenizer decides)
    assert ud.normalize("NFD", "Café à gauche").encode() in txt.values()
    # to_hf gives the names back as the card holds them
    from mmdata.interop.hf import to_hf

    back = to_hf(tmp_path / "d", "train")
    assert back.features["label"].names == ["caf\xe9", "猫", "كلب\u200f"]


def test_string_label_column_in_nfd_is_one_class_with_its_nfc_spelling(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"image": [{"bytes": _png(i), "path": None} for i in range(4)],
                                     "label": [ud.normalize("NFD", "école"), "école", "fleur", "fleur"]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.Value("string")}))
    rep = mmdata.shard(ds, tmp_path / "d", progress=False)
    card = json.loads((tmp_path / "d" / "dataset.json").read_text(encoding="utf-8"))
    assert card["label_names"] == ["fleur", "\xe9cole"]  # one class, sorted as before
    assert rep["samples"] == 4 and not rep.get("skipped")


def test_nfc_names_and_plain_captions_give_no_warning(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"image": [{"bytes": _png(i), "path": None} for i in range(2)],
                                     "text": ["a", "b"], "label": [0, 1]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "text": datasets.Value("string"),
                                                                "label": datasets.ClassLabel(names=["café", "猫"])}))
    rep = mmdata.shard(ds, tmp_path / "d", progress=False)
    assert not [w for w in rep["warnings"] if "class names" in w or "no text" in w]
