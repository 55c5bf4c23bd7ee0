"""QA42 clinical #14: ``mmdata add-modality`` ran neither the identifying-metadata scan nor the 16-bit check, so
a card whose images came after the fact kept claiming "0". It now counts the members it writes, replaces the
counts and warnings of a series it replaces, and leaves those of the other series alone."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.shards import mediainfo
from mmdata.testing import make_sample_folder

KEYS = [f"{i:06d}" for i in range(6)]


def _columns_ds(tmp_path: Path) -> Path:
    raw = make_sample_folder(tmp_path / "raw", n=len(KEYS))
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=4, progress=False)
    return tmp_path / "ds"


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def _images(folder: Path, make: str) -> Path:
    folder.mkdir(parents=True)
    for k in KEYS:
        if make == "12bit":
            Image.fromarray(np.random.default_rng(0).integers(0, 4096, (8, 8)).astype(np.uint16)).save(folder / f"{k}.png")
        elif make == "artist":
            ex = Image.Exif()
            ex[0x013B] = "Dr. House"
            Image.new("RGB", (8, 8)).save(folder / f"{k}.jpg", exif=ex)
        else:
            Image.new("RGB", (8, 8)).save(folder / f"{k}.png")
    return folder


def test_added_images_are_scanned_and_a_replaced_series_takes_its_counts_along(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    assert _card(ds)["metadata"]["artist"] == 0
    mmdata.add_modality(ds, "image", _images(tmp_path / "i12", "12bit"), replace=True)
    card = _card(ds)
    (deep,) = [w for w in card["warnings"] if mediainfo.is_deep_warning(w)]
    assert deep.startswith(f"{len(KEYS)} 16-bit images (of {len(KEYS)}) use at most 12 significant bits")
    assert "(e.g. 000000, 000001, 000002)" in deep

    mmdata.add_modality(ds, "image", _images(tmp_path / "art", "artist"), replace=True)
    card = _card(ds)
    assert [w for w in card["warnings"] if mediainfo.is_deep_warning(w)] == []  # the 12-bit series is gone
    assert card["metadata"]["artist"] == len(KEYS) and card["metadata"]["examples"]["artist"][0] == "000000.jpg"
    assert [w for w in card["warnings"] if w.startswith("identifying metadata is published")]
    assert mmdata.verify(ds)["ok"]  # the card's digests were refreshed

    mmdata.add_modality(ds, "image", _images(tmp_path / "plain", "plain"), replace=True)
    card = _card(ds)
    assert card["metadata"]["artist"] == 0 and "artist" not in card["metadata"]["examples"]
    assert not [w for w in card["warnings"] if w.startswith("identifying metadata is published")]
    assert mmdata.verify(ds)["ok"]


def test_an_extra_field_keeps_the_image_series_warnings(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "image", _images(tmp_path / "i12", "12bit"), replace=True)
    before = [w for w in _card(ds)["warnings"] if mediainfo.is_deep_warning(w)]
    dep = tmp_path / "depth"
    dep.mkdir()
    for k in KEYS:
        np.save(dep / f"{k}.depth.npy", np.zeros((2, 2), np.float32))
    mmdata.add_modality(ds, "depth", dep)
    assert [w for w in _card(ds)["warnings"] if mediainfo.is_deep_warning(w)] == before != []
