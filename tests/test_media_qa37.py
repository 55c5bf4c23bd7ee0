"""QA37 geo / licence: what the reader drops or reads under a flipped rule, and metadata the card missed.

Geo #1: a 4-band RGBN TIFF (Photometric RGB, ExtraSamples 0 "unspecified") opens as RGB, its NIR band dropped
with no word; #2: one cloud pixel above 1 flipped a reflectance tile from unit range to 0-255 (black); #3: NaN
nodata decoded as 0 with no word; #4: a 13-band / 2-band / 4-band MINISBLACK TIFF was "not an image Pillow can
open" (read as a corrupt file). Licence #5: IPTC-IIM in a JPEG's APP13, AIFF NAME / AUTH / (c) chunks and GIF
comments were not counted. Every file here is real bytes: TIFFs written by a minimal baseline writer (Pillow
writes no 4-band RGB-with-unspecified-extra TIFF), the rest by Pillow / soundfile.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.codecs import FLOAT_UNIT_MAX, decode_image, image_array
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import CorruptMedia, identifying_metadata, image_depth, probe_image_py


def tiff(arr: np.ndarray, photometric: int | None = None) -> bytes:
    """A baseline TIFF (little-endian, uncompressed, chunky) of an HxW or HxWxC array, as GDAL writes band sets:
    Photometric RGB with ExtraSamples 0 for 4+ bands unless ``photometric`` says otherwise (1: MINISBLACK)."""
    a = np.ascontiguousarray(arr)
    a = a[:, :, None] if a.ndim == 2 else a
    h, w, c = a.shape
    data = a.astype(a.dtype.newbyteorder("<")).tobytes()
    photometric = (2 if c >= 3 else 1) if photometric is None else photometric
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [a.dtype.itemsize * 8] * c), (259, 3, [1]),
               (262, 3, [photometric]), (273, 4, [0]), (277, 3, [c]), (278, 4, [h]), (279, 4, [len(data)]),
               (284, 3, [1]), (339, 3, [{"u": 1, "i": 2, "f": 3}[a.dtype.kind]] * c)]
    if c > 3 and photometric == 2:
        entries.append((338, 3, [0] * (c - 3)))
    entries.sort()
    extra_off = 8 + 2 + 12 * len(entries) + 4
    extra, out = b"", []
    for tag, typ, vals in entries:
        raw = struct.pack("<" + {3: "H", 4: "I"}[typ] * len(vals), *vals)
        if len(raw) <= 4:
            out.append([tag, typ, len(vals), raw.ljust(4, b"\0")])
        else:
            out.append([tag, typ, len(vals), struct.pack("<I", extra_off + len(extra))])
            extra += raw + b"\0" * (len(raw) % 2)
    for e in out:
        if e[0] == 273:
            e[3] = struct.pack("<I", extra_off + len(extra))
    body = b"".join(struct.pack("<HHI", t, y, n) + v for t, y, n, v in out)
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(out)) + body + struct.pack("<I", 0) + extra + data


def float_tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.float32), "F").save(buf, "TIFF")
    return buf.getvalue()


def shard(tmp_path: Path, files: dict[str, bytes]) -> dict:
    for name, data in files.items():
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    return json.loads((tmp_path / "ds" / "dataset.json").read_text())


def _one(card: dict, mark: str) -> str:
    got = [w for w in card["warnings"] if mark in w]
    assert len(got) == 1, card["warnings"]
    assert mediainfo.is_deep_warning(got[0])
    return got[0]


# ---- geo #1: bands past R, G, B --------------------------------------------------------------------------


def test_rgbn_tiff_is_warned_with_the_npy_route(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgbn = [rng.integers(0, 60000, (16, 16, 4)).astype(np.uint16) for _ in range(3)]
    rgbn8 = rng.integers(0, 255, (16, 16, 4)).astype(np.uint8)
    rgb = rng.integers(0, 60000, (16, 16, 3)).astype(np.uint16)
    assert image_depth(tiff(rgbn[0])).bands == 4 and image_depth(tiff(rgbn8)).bands == 4
    assert image_depth(tiff(rgb)).bands == 0
    buf = io.BytesIO()  # an RGBA TIFF: its fourth band is alpha, read (and documented as dropped by to-RGB)
    Image.fromarray(rng.integers(0, 255, (8, 8, 4)).astype(np.uint8), "RGBA").save(buf, "TIFF")
    facts = image_depth(buf.getvalue())
    assert facts is None or facts.bands == 0
    files = {f"forest/t{i}.tif": tiff(a) for i, a in enumerate(rgbn)}
    files["water/u8.tif"], files["water/rgb.tif"] = tiff(rgbn8), tiff(rgb)
    w = _one(shard(tmp_path, files), "more bands than the reader reads")
    assert w.startswith("4 images (of 5) hold more bands than the reader reads (up to 4 samples per pixel) (e.g. ")
    assert "--column ms=" in w and "(C, H, W) .npy" in w


# ---- geo #4: layouts Pillow does not open ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("shape, dtype, photometric", [((8, 8, 13), np.uint16, None), ((8, 8, 2), np.float32, 1),
                                                       ((8, 8, 4), np.uint16, 1), ((8, 8, 13), np.float32, 1)])
def test_multiband_tiff_is_named_as_such_not_as_corrupt(shape: tuple, dtype: type, photometric: int | None) -> None:
    d = tiff(np.ones(shape, dtype), photometric)
    with pytest.raises(CorruptMedia) as got:
        probe_image_py(d)
    msg = str(got.value)
    assert msg.startswith(f"a multi-band TIFF ({shape[2]} samples per pixel, {np.dtype(dtype).name}, photometric ")
    assert "not an image Pillow can open" not in msg and "--column ms=" in msg
    with pytest.raises(CorruptMedia, match="not an image Pillow can open"):  # a damaged file still reads as one
        probe_image_py(b"II*\x00" + b"\xff" * 12)


def test_multiband_tiffs_are_left_out_with_that_reason(tmp_path: Path) -> None:
    files = {f"{'ab'[i % 2]}/t{i}.tif": tiff(np.full((8, 8, 13), i, np.uint16)) for i in range(2)}
    files.update({f"{'ab'[i % 2]}/t{i}.txt": b"a river delta" for i in range(2)})
    card = shard(tmp_path, files)
    assert any("multi-band TIFF (13 samples per pixel, uint16" in w for w in card["warnings"]), card["warnings"]


# ---- geo #2: the float rule ------------------------------------------------------------------------------------


def test_a_cloud_pixel_above_one_keeps_the_tile_unit_range() -> None:
    r = np.random.default_rng(1).random((16, 16)).astype(np.float32) * 0.6
    cloudy = r.copy()
    cloudy[0, 0] = 1.08
    clear_px = image_array(Image.fromarray(r, "F"))
    cloudy_px = image_array(Image.fromarray(cloudy, "F"))
    assert cloudy_px[0, 0] == 255  # clipped
    assert np.array_equal(cloudy_px[1:], clear_px[1:]) and clear_px.max() > 140  # the same rule: not near-black
    assert image_array(Image.fromarray(np.array([[0, 200.0]], np.float32), "F")).tolist() == [[0, 200]]  # 0-255
    # one value of two above 1 is no outlier: the 0-255 rule, as before FLOAT_UNIT_MAX (QA37 review)
    assert image_array(Image.fromarray(np.array([[0, FLOAT_UNIT_MAX]], np.float32), "F")).tolist() == [[0, 2]]
    edge = np.full((10, 20), 0.5, np.float32)
    edge[0, 0] = FLOAT_UNIT_MAX
    assert image_array(Image.fromarray(edge, "F"))[0, :2].tolist() == [255, 128]


def test_float_rule_is_reported_on_the_card(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    files = {}
    for i in range(6):
        r = rng.random((16, 16)).astype(np.float32) * 0.6
        if i in (1, 3):
            r[0, 0] = 1.08  # a cloud: unit range, clipped
        if i == 5:
            r[0, 0] = 6.5535  # a saturated pixel (L2A 65535 / 10000): 0-255 rule, the tile decodes black
        files[f"{'ab'[i % 2]}/t{i}.tif"] = float_tiff(r)
    card = shard(tmp_path, files)
    over = _one(card, "read as unit range")
    assert over.startswith("2 float images (of 6) hold values above 1 (at most 5% of each) read as unit range (2 of 512 pixels over "
                           "them, up to 1.08)")
    dim = _one(card, "under the 0-255 rule")
    assert dim.startswith("1 float image (of 6) holds values at or under 0.") and "up to 6.5535 (e.g. b_t5_" in dim
    assert "nearly black" in dim
    hot = np.full((16, 16), 0.5, np.float32)
    hot[:2] = 6.0  # 32 values above 2: data, not outliers; no such warning
    assert image_depth(float_tiff(hot)).top is None
    # what the warnings say is what the reader does: the saturated tile black, the cloudy ones bright
    tops = {name: int(decode_image(data).max()) for name, data in files.items()}
    assert int(decode_image(files["b/t5.tif"])[0].flatten()[1:].max()) <= 1  # all but the saturated pixel
    assert tops["b/t1.tif"] == tops["b/t3.tif"] == 255
    assert min(tops[k] for k in ("a/t0.tif", "a/t2.tif", "a/t4.tif")) > 140


# ---- geo #3: NaN nodata ---------------------------------------------------------------------------------------


def test_nan_nodata_is_counted_and_warned(tmp_path: Path) -> None:
    files = {}
    for i in range(4):
        r = np.random.default_rng(i).random((16, 16)).astype(np.float32) * 0.5 + 0.3
        if i < 3:
            r[:8] = np.nan
        files[f"{'ab'[i % 2]}/t{i}.tif"] = float_tiff(r)
    files["a/all_nan.tif"] = float_tiff(np.full((16, 16), np.nan))
    facts = image_depth(files["a/t0.tif"])
    assert (facts.nonfinite, facts.samples) == (128, 256)
    w = _one(shard(tmp_path, files), "NaN / infinite values")
    assert w.startswith("4 float images (of 5) hold NaN / infinite values (640 of 1024 pixels over them) (e.g. ")
    assert "decodes NaN as 0" in w


def test_new_entries_combine_across_shards_and_older_accumulators() -> None:
    a = mediainfo.merge_sixteen_bit(None, mediainfo.DepthFacts("float", 0.1, 1.5, 1, None, 3, 10, over=2), "k1")
    b = mediainfo.merge_sixteen_bit(None, mediainfo.DepthFacts("16", 0, 60000, 1, 60000, bands=4), "k2")
    old = {"low": [0, 0, []], "clip": [0, None, None, []], "frames": [0, 0, []]}  # an older job's: no new entries
    both = mediainfo.combine_sixteen_bit([a, old, b, a])
    assert both["over"] == [2, 1.5, 4, 20, ["k1", "k1"]] and both["nan"] == [2, 6, 20, ["k1", "k1"]]
    assert both["bands"] == [1, 4, ["k2"]]
    assert len(mediainfo.deep_warnings(both, 4)) == 3 and mediainfo.deep_warnings(old, 4) == []


# ---- licence #5: IPTC, AIFF text chunks, GIF comments ------------------------------------------------------------


def _iptc_jpeg(*records: tuple[int, bytes]) -> bytes:
    """A JPEG with an APP13 Photoshop segment holding an IPTC-IIM record (8BIM resource 0x0404), as exiftool
    writes it."""
    iim = b"\x1c\x02\x00\x00\x02\x00\x04" + b"".join(b"\x1c\x02" + bytes([ds]) + struct.pack(">H", len(v)) + v
                                                     for ds, v in records)
    res = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iim)) + iim + b"\0" * (len(iim) % 2)
    body = b"Photoshop 3.0\x00" + res
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    j = buf.getvalue()
    return j[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + j[2:]


def _aiff(*chunks: tuple[bytes, bytes]) -> bytes:
    b = io.BytesIO()
    sf.write(b, np.zeros(800, np.float32), 16000, format="AIFF", subtype="PCM_16")
    d = bytearray(b.getvalue())
    for cid, v in chunks:
        d += cid + struct.pack(">I", len(v)) + v + b"\0" * (len(v) % 2)
    struct.pack_into(">I", d, 4, len(d) - 8)
    return bytes(d)


def _gif(comment: bytes | None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)).convert("P")
    im.save(buf, "GIF", **({"comment": comment} if comment is not None else {}))
    return buf.getvalue()


def test_iptc_aiff_and_gif_metadata_are_found() -> None:
    assert identifying_metadata(_iptc_jpeg((80, b"Karl Person"), (118, b"karl@example.com"))) == {"artist", "iptc"}
    assert identifying_metadata(_iptc_jpeg((90, b"Leeds"))) == {"iptc"}
    assert identifying_metadata(_iptc_jpeg((120, b"Karl at the harbour"))) == {"iptc"}  # not EXIF free text
    assert identifying_metadata(_iptc_jpeg()) == set()  # the record version alone names nobody
    assert identifying_metadata(_aiff((b"AUTH", b"Bea Author"))) == {"audio_tags"}
    assert identifying_metadata(_aiff((b"(c) ", b"Bea Author"))) == {"audio_tags"}
    assert identifying_metadata(_aiff()) == set()  # libsndfile's own chunks: COMM, SSND
    assert identifying_metadata(_gif(b"by gina@example.com")) == {"comments"}
    assert identifying_metadata(_gif(None)) == set()
    for cut in (_iptc_jpeg((80, b"Karl Person"))[:40], _aiff((b"NAME", b"x"))[:20], _gif(b"hi")[:30]):
        assert identifying_metadata(cut) <= set(mediainfo.IDENTIFYING_KINDS)  # damaged: nothing raised


def test_the_card_counts_iptc_aiff_and_gif(tmp_path: Path) -> None:
    card = shard(tmp_path, {"a/iptc.jpg": _iptc_jpeg((80, b"Karl Person"), (90, b"Leeds")),
                            "a/c.gif": _gif(b"by gina@example.com"),
                            "a/s.aiff": _aiff((b"NAME", b"call 555-0100"), (b"AUTH", b"Bea Author"))})
    meta = card["metadata"]
    assert {k: meta.get(k) for k in ("artist", "iptc", "comments", "audio_tags")} == \
        {"artist": 1, "iptc": 1, "comments": 1, "audio_tags": 1}
    assert meta["examples"]["iptc"][0].endswith(".jpg") and meta["examples"]["audio_tags"][0].endswith(".aiff")
    (w,) = [w for w in card["warnings"] if w.startswith("identifying metadata")]
    assert "IPTC-IIM record" in w and "AIFF NAME / AUTH" in w and "GIF comments" in w
