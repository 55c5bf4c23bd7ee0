"""QA36 media defects: dark 16-bit scans judged by a high percentile (14-bit data, a 12-bit scan with a marker
pixel), PNG text-chunk keywords named (never their text), the large-image warning once per dataset (not once a
process) with Pillow's warning silenced only while mmdata decodes, and ``<field>.<image ext>.npy`` members read
back as the tensor their image member gave."""

from __future__ import annotations

import io
import json
import re
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

import mmdata
from mmdata import codecs
from mmdata.shards import mediainfo


def _png16(values: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(np.asarray(values).astype(np.uint16)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _shard(tmp_path: Path, images: dict[str, list[bytes]]) -> tuple[Path, dict]:
    raw = tmp_path / "raw"
    for c, datas in images.items():
        (raw / c).mkdir(parents=True)
        for i, d in enumerate(datas):
            (raw / c / f"{c}{i}.png").write_bytes(d)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    return out, json.loads((out / "dataset.json").read_text())


def _deep(card: dict) -> list[str]:
    return [w for w in card["warnings"] if "16-bit" in w]


rng = np.random.default_rng(0)
FOURTEEN = np.linspace(0, 16383, 4096).reshape(64, 64).astype(np.uint16)  # a 14-bit detector: decodes to 0-63 of 255
MARKED = (rng.random((64, 64)) * 4095).astype(np.uint16)
MARKED[0, 0] = 65535  # a 12-bit scan with one burned-in marker pixel: p99 decodes to 15 of 255


# ---- medical #3: dark 16-bit images judged by a high percentile -----------------------------------------------


def test_fourteen_bit_images_are_warned_as_dark(tmp_path: Path) -> None:
    ds, card = _shard(tmp_path, {"a": [_png16(FOURTEEN)] * 2, "b": [_png16(np.linspace(0, 65535, 4096).reshape(64, 64))]})
    (w,) = _deep(card)
    assert re.sub(r" \(e\.g\. [^)]*\)", "", w) == (
        "2 16-bit images (of 3) use at most 14 significant bits (max 16383 over them): under the v >> 8 rule they "
        "decode dark (0-63 of 255: a quarter of the grey levels); rescale (v << 2) before sharding")
    assert [m["message"] for m in mmdata.inspect(ds)["warnings"] if "16-bit" in m["message"]] == [w]


def test_a_marker_pixel_does_not_hide_a_twelve_bit_scan(tmp_path: Path) -> None:
    facts = mediainfo.image_depth(_png16(MARKED))
    assert facts.high == 65535 and facts.top is not None and facts.top < 4096
    _, card = _shard(tmp_path, {"a": [_png16(MARKED)] * 3})
    (w,) = _deep(card)
    assert w.startswith("3 16-bit images (of 3) use at most 12 significant bits (99.9% of the values of each at most ")
    assert "3 of them have a few brighter pixels, up to 65535" in w and "nearly black (0-15 of 255)" in w
    assert "rescale (min(v << 4, 65535)" in w  # a plain v << 4 would wrap the marker around
    assert re.search(r"\(e\.g\. a_?\w*, a_?\w*, a_?\w*\)", w)  # example keys


def test_twelve_bit_wording_and_full_range_images_are_unchanged() -> None:
    acc = None
    for key, top in (("full", 65535), ("ct12", 4095), ("dark", 3000)):
        acc = mediainfo.merge_sixteen_bit(acc, mediainfo.image_depth(_png16(np.linspace(0, top, 64).reshape(8, 8))), key)
    assert mediainfo.sixteen_bit_warning(acc, 5) == (
        "2 16-bit images (of 5) use at most 12 significant bits (max 4095 over them) (e.g. ct12, dark): under the "
        "v >> 8 rule they decode nearly black (0-15 of 255); rescale (v << 4) before sharding")
    # a full-range image with a few bright pixels is no dark image; a small image is judged by its maximum
    bright = np.linspace(0, 65535, 4096).reshape(64, 64)
    assert mediainfo.sixteen_bit_warning(mediainfo.merge_sixteen_bit(None, mediainfo.image_depth(_png16(bright))), 1) is None
    small = np.full((8, 8), 100)
    small[0, 0] = 65535  # 64 values: the nearest-rank 99.9th percentile is the maximum
    assert mediainfo.sixteen_bit_warning(mediainfo.merge_sixteen_bit(None, mediainfo.image_depth(_png16(small))), 1) is None


def test_older_accumulators_still_combine() -> None:
    new = mediainfo.merge_sixteen_bit(None, mediainfo.image_depth(_png16(MARKED)), "m")
    both = mediainfo.combine_sixteen_bit([{"low": [2, 4000, ["x"]], "clip": [0, None, None, []],
                                           "frames": [0, 0, []]}, new, [1, 0, 200]])
    assert both["low"][0] == 4 and both["low"][3:] == [1, 65535]
    assert mediainfo.sixteen_bit_warning(both, 9).startswith("4 16-bit images (of 9) use at most 12 significant bits")


# ---- medical #6: PNG text-chunk keywords, never their text -----------------------------------------------------


def test_png_text_keywords_are_collected_never_their_text() -> None:
    data = _png16(FOURTEEN, {"PatientName": "Doe^John", "PatientID": "MRN-12345", "Software": "scanner 1.0"})
    keys: set[str] = set()
    assert mediainfo.identifying_metadata(data, keys) == {"text_chunks"}
    assert keys == {"PatientName", "PatientID"}  # Software is a tool's key: not counted
    assert mediainfo.identifying_metadata(data) == {"text_chunks"}  # the old call is unchanged
    said = mediainfo.text_chunks_what(sorted(keys))
    assert "PatientID, PatientName" in said and "patient data" in said
    assert "Doe" not in said and "MRN-12345" not in said
    assert "Author, Comment, Source" not in mediainfo.METADATA_WHAT["text_chunks"]
    assert "patient" not in mediainfo.text_chunks_what(["Comment"])


def test_a_crafted_keyword_is_bounded_and_printable() -> None:
    assert mediainfo.png_keyword(b"\x1b[31mred key") == "?[31mred key"
    # QA36 review F5: a keyword longer than a keyword (79 characters of text) is counted, never shown
    assert mediainfo.png_keyword(b"\x1b[31mred" + b"k" * 200) is None


# ---- notebook #3: the large-image warning once per dataset; Pillow's filter only while mmdata decodes ----------


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # a 24x32 image (768 px) makes Pillow warn
    monkeypatch.setattr(codecs, "LARGE_IMAGE_PIXELS", 500)


def _large_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_the_large_image_warning_is_said_again_after_a_reset(small_limits: None) -> None:
    for _ in range(2):  # two datasets of one notebook
        codecs.reset_large_image_warning()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for _ in range(3):
                codecs.decode_image(_large_png())
        assert [str(w.message)[:30] for w in seen] == ["PNG of 32x24 pixels (0.0 MP) i"]


def test_pillows_warning_is_quiet_only_while_mmdata_decodes(small_limits: None) -> None:
    before = list(warnings.filters)
    codecs.decode_image(_large_png())  # outside any catch_warnings block: no process-wide filter is left behind
    codecs.decode_image_values(_large_png())
    assert warnings.filters == before
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        with Image.open(io.BytesIO(_large_png())):  # the caller's own open still gets Pillow's warning
            pass
    assert [w.category for w in seen] == [Image.DecompressionBombWarning]


def test_the_large_images_warning_for_a_job() -> None:
    w = codecs.large_images_warning(2, 5, (9500, 9600), ["a", "b"])
    assert w.startswith("2 images (of 5) are over Pillow's decompression-bomb warning size (89.5 MP; e.g. a, b): "
                        "the largest, 9600x9500 (91.2 MP)")


# ---- video #7: <field>.<image ext>.npy reads back as the image member's tensor ---------------------------------


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def test_a_named_image_npy_member_decodes_to_a_tensor(tmp_path: Path) -> None:
    chw = np.random.default_rng(1).integers(0, 255, (3, 8, 8)).astype(np.uint8)
    jpg = io.BytesIO()
    Image.fromarray(chw.transpose(1, 2, 0)).save(jpg, "JPEG")
    with tarfile.open(tmp_path / "s.tar", "w") as tf:
        for name, data in (("a.jpg", jpg.getvalue()), ("a.frame1.jpg.npy", _npy(chw)), ("a.feat.npy", _npy(chw))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (s,) = list(mmdata.open_dataset(str(tmp_path / "s.tar")))
    assert isinstance(s["frame1.jpg"], torch.Tensor) and s["frame1.jpg"].dtype == torch.uint8
    assert torch.equal(s["frame1.jpg"], torch.from_numpy(chw))
    assert isinstance(s["feat"], np.ndarray)  # a plain array field stays an array
    # as decode_image_values gives them: 16-bit values as int32, float as float32, big-endian made native
    assert codecs.decode_member("depth.png.npy", _npy(np.ones((1, 2, 2), ">u2")))[1].dtype == torch.int32
    f = codecs.decode_member("depth.tif.npy", _npy(np.array([[[np.nan, 1.0]]], np.float32)))[1]
    assert f.dtype == torch.float32 and codecs.non_finite_array(f) == (1, (0, 0, 0))
