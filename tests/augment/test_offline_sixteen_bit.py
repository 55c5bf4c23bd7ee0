"""QA42 clinical #2: `mmdata augment` wrote 16-bit source images as 8-bit PNGs — also the splits written
"as read" and the originals kept by --keep-original — without a word. Rows written as read now keep
the source's image bytes (the loader reads the values it read before); the augmented copies, whose ops
work on 8 bits, are counted and named in a warning and in the card."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset

FLIP = {"image": [{"op": "hflip", "p": 1.0}]}


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 16-bit grey PNG scans (full 0-65535 range) and two 8-bit RGB photos, two classes."""
    root = tmp_path_factory.mktemp("sixteen")
    raw = root / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        if i < 6:
            im = Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16))
            assert im.mode == "I;16"
        else:
            im = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
        im.save(raw / f"s{i}.png")
        (raw / f"s{i}.cls").write_text(str(i % 2))
    mmdata.shard(raw, root / "ds", split={"train": 0.5, "val": 0.5}, progress=False)
    return root / "ds"


def _modes(ds: Path) -> dict[str, str]:
    t = pq.read_table(ds / "index.parquet", columns=["key", "image_mode"]).to_pydict()
    return dict(zip(t["key"], t["image_mode"]))


def _images(ds: Path, split: str) -> dict[str, torch.Tensor]:
    return {s.key: s["image"] for s in mmdata.open_dataset(ds, split=split)}


def test_rows_written_as_read_keep_the_16_bit_source(scans: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = augment_dataset(scans, tmp_path / "aug", FLIP, keep_original=True, progress=False)
    src, out = _modes(scans), _modes(tmp_path / "aug")
    sixteen = sorted(k for k, m in src.items() if m.startswith("I;16"))
    assert len(sixteen) == 6
    # val (not augmented) and the kept originals: the source's bytes, 16 bits and all
    for k in sixteen:
        assert out[k] == src[k], (k, out[k])
    for split in ("train", "val"):
        before, after = _images(scans, split), _images(tmp_path / "aug", split)
        assert all(torch.equal(before[k], after[k]) for k in before)  # the loader reads the values it read
    val = [k for k in sixteen if k in _images(scans, "val")]
    raw = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug", split="val", decode=False)}
    for k in val:
        with Image.open(io.BytesIO(raw[k]["png"])) as im:
            assert im.mode.startswith("I;16")
    # the augmented copies of 16-bit scans are 8-bit: said, counted and named, in the card too
    copies = sorted(k for k in out if "_aug" in k and k.split("_aug")[0] in sixteen)
    assert copies and all(out[k] == "L" for k in copies)
    said = [str(w.message) for w in caught if "16-bit source image" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(f"{len(copies)} 16-bit source image"), said
    assert copies[0] in said[0]
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert any(w == said[0] for w in card["warnings"]), card["warnings"]
    assert rep["samples"] == 8 + 4


def test_a_normalize_stage_that_changes_images_writes_8_bit_and_says_so(scans: Path, tmp_path: Path) -> None:
    recipe = {"normalize": {"image": [{"op": "to_rgb"}]}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        augment_dataset(scans, tmp_path / "aug", recipe, copies=0, keep_original=True, progress=False)
    said = [str(w.message) for w in caught if "16-bit source image" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("6 16-bit source images written as 8-bit"), said
    assert all(not m.startswith("I;16") for m in _modes(tmp_path / "aug").values())


def test_8_bit_sources_are_written_as_before(scans: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        augment_dataset(scans, tmp_path / "aug", FLIP, splits=["train", "val"], progress=False)
    eight = [k for k, m in _modes(scans).items() if m == "RGB"]
    assert all(_modes(tmp_path / "aug")[k] == "RGB" for k in eight if k in _modes(tmp_path / "aug"))
