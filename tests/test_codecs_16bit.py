"""16-bit images holding 12-bit (or fewer) data: QA found a class of values 0-199 decoded (``v >> 8``) to all
zeros and one of 3000-3199 to 11-12 with no word anywhere. The decode rule stays (documented; changing it
changes bytes). A second QA pass found the first fix (a warning at decode time, once a process; a note in
``inspect`` on every 16-bit dataset) late, repeated and wrong: 16-bit colour PNGs (Pillow opens them as 8-bit
RGB) never warned, ``shard --check decode`` said nothing, every DataLoader worker warned again every epoch,
a negative mode-``I`` image got "1 significant bit ... v << 15", a dark first image of full-range data got
advice that overflows the rest, and full-range datasets got the note too. Now ``mmdata shard`` reads each
16-bit image's values (they are rare) and the card says which of them hold values all under 4096;
``inspect`` shows that card warning; decoding says nothing. QA42: counted per image (one full-range image hid
every 12-bit one)."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.codecs import decode_image
from mmdata.shards import mediainfo


def _png16(values: np.ndarray) -> bytes:
    """A 16-bit PNG: greyscale (HW) through Pillow, colour (HWC, RGB order) through OpenCV."""
    values = np.asarray(values).astype(np.uint16)
    if values.ndim == 3:
        ok, enc = cv2.imencode(".png", values[..., ::-1].copy())
        assert ok
        return enc.tobytes()
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    return buf.getvalue()


def _tiff32(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(values).astype(np.int32), mode="I").save(buf, "TIFF")
    return buf.getvalue()


def _shard(tmp_path: Path, images: dict[str, list[bytes]], ext: str = "png", **kw: object) -> tuple[Path, dict]:
    raw = tmp_path / "raw"
    for c, datas in images.items():
        (raw / c).mkdir(parents=True)
        for i, d in enumerate(datas):
            (raw / c / f"{i}.{ext}").write_bytes(d)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False, **kw)
    return out, json.loads((out / "dataset.json").read_text())


def _deep(card: dict) -> list[str]:
    return [w for w in card["warnings"] if "16-bit" in w]


def _plain(said: list[str]) -> list[str]:
    """The warnings without their example keys (counted per image since QA42, with up to 3 keys)."""
    return [re.sub(r" \(e\.g\. [^)]*\)", "", w) for w in said]


def _decode(data: bytes) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        img = decode_image(data).numpy()
    return img, [str(w.message) for w in got if "16-bit" in str(w.message)]


rng = np.random.default_rng(0)


@pytest.mark.parametrize("check", ["header", "decode"])
def test_twelve_bit_colour_pngs_are_named_on_the_card(tmp_path: Path, check: str) -> None:
    colour = [_png16(rng.integers(0, 4096, (16, 16, 3))) for _ in range(3)]
    ds, card = _shard(tmp_path, {"a": colour, "b": [_png16(np.full((16, 16, 3), 4095))]}, check=check)
    said = _deep(card)
    assert re.search(r"\(e\.g\. a_\w+, a_\w+, a_\w+\)", said[0])  # example keys
    assert _plain(said) == ["4 16-bit images (of 4) use at most 12 significant bits (max 4095 over them): under the "
                    "v >> 8 rule they decode nearly black (0-15 of 255); rescale (v << 4) before sharding"]
    shown = [w["message"] for w in mmdata.inspect(ds)["warnings"] if "16-bit" in w["message"]]
    assert shown == said  # the card's warning, once


def test_values_under_256_are_all_black(tmp_path: Path) -> None:
    _, card = _shard(tmp_path, {"a": [_png16(np.arange(200).reshape(10, 20))], "b": [_png16(np.ones((4, 4)))]})
    assert _plain(_deep(card)) == ["2 16-bit images (of 2) use at most 8 significant bits (max 199 over them): under the "
                           "v >> 8 rule they decode all black (0); rescale (v << 8) before sharding"]


def test_only_the_16_bit_images_are_counted(tmp_path: Path) -> None:
    eight = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(eight, "PNG")
    _, card = _shard(tmp_path, {"a": [eight.getvalue()] * 3, "b": [_png16(3000 + np.arange(200).reshape(10, 20))]})
    assert _plain(_deep(card)) == ["1 16-bit image (of 4) uses at most 12 significant bits (max 3199 over it): under the "
                           "v >> 8 rule it decodes nearly black (0-12 of 255); rescale (v << 4) before sharding"]


def test_dark_images_beside_full_range_ones_are_counted_per_image(tmp_path: Path) -> None:
    # QA42 clinical #1: the dataset-wide maximum let one full-range image hide every 12-bit one; each image counts
    dark = _png16(np.linspace(0, 2000, 64).reshape(8, 8))  # the first image QA decoded
    bright = _png16(np.linspace(0, 65535, 64).reshape(8, 8))
    ds, card = _shard(tmp_path, {"a": [dark, dark], "b": [bright]})
    (w,) = _deep(card)
    assert w.startswith("2 16-bit images (of 3) use at most 11 significant bits (max 2000 over them)")
    assert "rescale (v << 5)" in w  # safe for these two: the full-range image is not among them
    assert [m["message"] for m in mmdata.inspect(ds)["warnings"] if "16-bit" in m["message"]] == [w]


def test_a_full_range_dataset_is_not_warned(tmp_path: Path) -> None:
    bright = _png16(np.linspace(0, 65535, 64).reshape(8, 8))
    zero = _png16(np.zeros((8, 8)))  # all zero: nothing is lost
    _, card = _shard(tmp_path, {"a": [bright, zero], "b": [bright]})
    assert _deep(card) == []


def test_negative_values_are_not_called_few_bits(tmp_path: Path) -> None:
    _, card = _shard(tmp_path, {"a": [_tiff32(np.full((4, 4), -300)), _tiff32(np.arange(16).reshape(4, 4))]},
                     ext="tif")
    # the negative image is not "1 significant bit" (it is clipped: mediainfo.deep_warnings says so); the
    # 0-15 one decodes all black on its own
    (w,) = _deep(card)
    assert w.startswith("1 16-bit image (of 2) uses at most 4 significant bits (max 15 over it)")


def test_decoding_says_nothing_so_workers_cannot_repeat_it() -> None:
    for data in (_png16(3000 + np.arange(200).reshape(10, 20)), _png16(np.arange(200).reshape(10, 20))):
        img, said = _decode(data)
        assert said == [] and img.max() <= 12  # the rule holds: v >> 8


def test_the_range_of_a_16_bit_image() -> None:
    low, high = mediainfo.sixteen_bit_range(_png16(rng.integers(0, 4096, (8, 8, 3))))
    assert 0 <= low <= high < 4096
    assert mediainfo.sixteen_bit_range(_png16(np.full((8, 8, 3), 4095)))[1] == 4095
    assert mediainfo.sixteen_bit_range(_png16(np.full((8, 8), 77))) == (77, 77)
    eight = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(eight, "PNG")
    assert mediainfo.sixteen_bit_range(eight.getvalue()) is None


def test_twelve_bit_pgm_is_not_warned_it_reads_back_full_range(tmp_path: Path) -> None:
    """QA pass 2: a 12-bit PGM (maxval 4095) was warned "nearly black ... rescale (v << 4)" though Pillow
    scales it by its maxval and the reader decodes it full range (the advice would have corrupted it)."""
    pgm = [b"P5\n20 16\n4095\n" + rng.integers(0, 4096, (16, 20)).astype(">u2").tobytes() for _ in range(4)]
    assert mediainfo.sixteen_bit_range(pgm[0]) is None
    assert decode_image(pgm[0]).numpy().max() > 200
    _, card = _shard(tmp_path, {"a": pgm[:2], "b": pgm[2:]}, ext="pgm")
    assert _deep(card) == []


def test_opaque_alpha_does_not_hide_twelve_bit_colour() -> None:
    """QA pass 2: a 16-bit RGBA PNG of 12-bit colour and alpha 65535 was not warned (the max took the alpha)."""
    rgba = np.concatenate([rng.integers(0, 4096, (8, 8, 3)), np.full((8, 8, 1), 65535)], axis=2)
    ok, enc = cv2.imencode(".png", rgba[..., [2, 1, 0, 3]].astype(np.uint16).copy())
    assert ok and mediainfo.sixteen_bit_range(enc.tobytes())[1] < 4096


def test_eight_bit_datasets_shard_as_before(tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=6)
    res = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert not [w for w in res["warnings"] if "16-bit" in w]


def test_augment_output_carries_the_source_warning(tmp_path: Path) -> None:
    """The copies decode as the source did (nearly black): the output's card says so, naming the source (QA: an
    augmented 12-bit dataset's card and inspect had no warning)."""
    ds, card = _shard(tmp_path, {"a": [_png16(rng.integers(0, 4096, (16, 16, 3))) for _ in range(2)]})
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: rotate, p: 0.5, limit: 10.0}\n")
    rep = augment_dataset(ds, tmp_path / "aug", recipe, progress=False)
    out = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    said = [f"source dataset ds: {w}" for w in _deep(card)]
    assert said and _deep(out) == said and [w for w in rep["warnings"] if "16-bit" in w] == said
    assert [w["message"] for w in mmdata.inspect(tmp_path / "aug")["warnings"] if "16-bit" in w["message"]] == said
