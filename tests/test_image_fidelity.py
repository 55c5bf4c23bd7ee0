"""Images decode as viewers show them (image QA): EXIF orientation is applied (the pixels of
``PIL.ImageOps.exif_transpose``, as HF ``datasets.Image`` and OpenCV's ``imread`` give them) and the
index's height / width at shard time are those of the decoded tensor (the C and Python probes agree);
the JPEG decode hint never costs detail or aspect ratio (very short images); GIFs shard (first frame)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import simplejpeg
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

import mmdata
from mmdata import codecs
from mmdata.shards.mediainfo import CorruptMedia, probe_image, probe_image_py
from mmdata.shards.tarwrite import _pack

needs_c = pytest.mark.skipif(_pack is None, reason="C inner loops off (mmdata.shards._pack not built, or "
                                                   "MMDATA_PURE_PYTHON=1)")


def _pixels(h: int = 40, w: int = 60) -> np.ndarray:
    """A picture whose every flip and turn differs: a red block in the top-left corner on a ramp."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 1] = (np.arange(w) * 255 // max(w - 1, 1))[None, :]
    a[..., 2] = (np.arange(h) * 255 // max(h - 1, 1))[:, None]
    a[: h // 4, : w // 3] = [255, 0, 0]
    return a


def _exif(orientation: int, order: str = "MM") -> bytes:
    """EXIF APP1 payload (TIFF, IFD0 with one SHORT Orientation entry) in either byte order."""
    e = "big" if order == "MM" else "little"
    head = (b"MM\x00*" if order == "MM" else b"II*\x00") + (8).to_bytes(4, e)
    entry = (0x0112).to_bytes(2, e) + (3).to_bytes(2, e) + (1).to_bytes(4, e) + orientation.to_bytes(2, e) + b"\0\0"
    return b"Exif\x00\x00" + head + (1).to_bytes(2, e) + entry + (0).to_bytes(4, e)


def _save(arr: np.ndarray, fmt: str, orientation: int | None = None, **kw: object) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if orientation is not None:
        ex = Image.new("RGB", (1, 1)).getexif()
        ex[0x0112] = orientation
        kw["exif"] = ex
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """``jpeg`` with one more APP1 segment right after SOI."""
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def _viewer(data: bytes) -> np.ndarray:
    """CHW pixels as an image viewer (and HF datasets) shows them."""
    with Image.open(io.BytesIO(data)) as im:
        arr = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    return arr.transpose(2, 0, 1)


def _probes(data: bytes) -> list[tuple[int, int, str, int]]:
    got = [probe_image_py(data), probe_image(data)]
    if _pack is not None and _pack.probe_image(data) is not None:
        got.append(_pack.probe_image(data))
    return got


# ---- 1. EXIF orientation --------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_is_applied_as_exif_transpose(fmt: str, orientation: int) -> None:
    kw = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    data = _save(_pixels(), fmt, orientation, **kw)
    want = _viewer(data)
    assert want.shape == ((3, 60, 40) if orientation >= 5 else (3, 40, 60))
    got = codecs.decode_image(data)
    assert got.shape == want.shape and torch.equal(got, torch.from_numpy(want)), (fmt, orientation)
    # the index's size is the decoded tensor's, from every probe (C where it accepts the file)
    assert {p[:2] for p in _probes(data)} == {tuple(want.shape[1:])}


@pytest.mark.parametrize("orientation", [2, 5, 6, 7, 8])
@pytest.mark.parametrize("how", ["II", "MM", "xmp", "exif_over_xmp"])
def test_jpeg_orientation_read_from_the_bytes_as_pillow_reads_it(orientation: int, how: str) -> None:
    plain = _save(_pixels(), "JPEG", quality=95)
    if how in ("II", "MM"):
        data = _with_app1(plain, _exif(orientation, how))
    else:
        xmp = (b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description tiff:Orientation=\""
               + str(orientation).encode() + b"\"/></x:xmpmeta>")
        data = _with_app1(plain, xmp)
        if how == "exif_over_xmp":  # an EXIF entry outranks XMP (Pillow's getexif)
            data = _with_app1(data, _exif(3))
    want = _viewer(data)
    assert codecs.jpeg_orientation(data) == Image.open(io.BytesIO(data)).getexif().get(0x0112)
    assert torch.equal(codecs.decode_image(data), torch.from_numpy(want))
    assert {p[:2] for p in _probes(data)} == {tuple(want.shape[1:])}


def test_decode_hint_is_in_displayed_orientation() -> None:
    """A phone photo stored 400 wide x 200 high, shown 200 x 400: a hint of (256, 128) (displayed h, w)
    must not let the stored 200-row side drop below 128 or the 400 side below 256."""
    data = _save(_pixels(200, 400), "JPEG", 6, quality=95)
    out = codecs.decode_image(data, max_size=(256, 128))
    assert out.shape[0] == 3 and out.shape[1] >= 256 and out.shape[2] >= 128 and out.shape[1] < 400
    assert abs(out.shape[1] / out.shape[2] - 2.0) < 0.02


def test_exif_rotated_jpeg_through_shard_and_open_dataset(tmp_path: Path) -> None:
    """The QA repro: orientation 6 (phone held upright) decodes as shown; the index says 60 x 40."""
    raw = tmp_path / "rx"
    raw.mkdir()
    a = np.zeros((40, 60, 3), np.uint8)
    a[:10, :20] = [255, 0, 0]
    ex = Image.new("RGB", (1, 1)).getexif()
    ex[0x0112] = 6
    Image.fromarray(a).save(raw / "p.jpg", exif=ex)
    mmdata.shard(raw, tmp_path / "rx_out", progress=False)
    image = next(iter(mmdata.open_dataset(tmp_path / "rx_out")))["image"]
    assert tuple(image.shape) == (3, 60, 40)
    assert torch.equal(image, torch.from_numpy(_viewer((raw / "p.jpg").read_bytes())))
    rows = pq.read_table(tmp_path / "rx_out" / "index.parquet").to_pylist()
    assert (rows[0]["image_height"], rows[0]["image_width"]) == (60, 40)


# C and Python probes agree on EXIF-bearing files, damaged or not (as tests/shards/test_pack.py for others)

def _png_with_exif_after_idat(orientation: int) -> bytes:
    import zlib

    d = _save(_pixels(), "PNG", orientation)
    chunks, pos = [], 8
    while pos < len(d):
        n = int.from_bytes(d[pos:pos + 4], "big")
        chunks.append((d[pos + 4:pos + 8], d[pos + 8:pos + 8 + n]))
        pos += 12 + n
    exif = [c for c in chunks if c[0] == b"eXIf"]
    rest = [c for c in chunks if c[0] != b"eXIf"]
    chunks = rest[:-1] + exif + rest[-1:]
    return b"\x89PNG\r\n\x1a\n" + b"".join(len(p).to_bytes(4, "big") + t + p + zlib.crc32(t + p).to_bytes(4, "big")
                                           for t, p in chunks)


def _seeds() -> list[bytes]:
    plain = _save(_pixels(), "JPEG", quality=80)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<a tiff:Orientation>8</a>"
    return [_save(_pixels(), "JPEG", 6, quality=80), _with_app1(plain, _exif(5, "II")), _with_app1(plain, xmp),
            _save(_pixels(), "PNG", 8), _save(_pixels(), "PNG", 3), _png_with_exif_after_idat(6),
            _save(_pixels(), "JPEG", 7, quality=80, progressive=True)]


_SEEDS: list[bytes] = []


@needs_c
def test_c_and_python_probes_agree_on_exif_seeds() -> None:
    _SEEDS.extend(_seeds()) if not _SEEDS else None
    for i, data in enumerate(_SEEDS):
        c = _pack.probe_image(data)
        assert c == probe_image_py(data) or (c is None and i == 5), i  # eXIf after IDAT: Python asks Pillow
        assert probe_image_py(data)[:2] == tuple(_viewer(data).shape[1:]), i


@needs_c
@settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 100), ops=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1 << 12),
                                                         st.integers(0, 1 << 16)), min_size=1, max_size=3))
def test_c_and_python_probes_agree_on_damaged_exif(seed: int, ops: list[tuple[int, int, int]]) -> None:
    if not _SEEDS:
        _SEEDS.extend(_seeds())
    b = bytearray(_SEEDS[seed % len(_SEEDS)])
    for kind, pos, value in ops:  # edits biased to the headers, where the EXIF lives
        i = pos % min(len(b), 400)
        if kind == 0:
            b[i] ^= 1 << (value % 8)
        elif kind == 1:
            b[i] = value % 256
        elif kind == 2:
            b[i:i] = bytes([value % 256]) * (1 + value % 5)
        elif kind == 3:
            del b[i:i + 1 + value % 16]
        else:
            del b[1 + pos % len(b):]
    bad = bytes(b)
    c = _pack.probe_image(bad)
    try:
        py = probe_image_py(bad)
    except CorruptMedia:
        py = None
    if c is not None:
        assert c == py
    if bad[:2] == b"\xff\xd8":  # where the fast path decodes, its byte parser and Pillow read the same orientation
        try:
            simplejpeg.decode_jpeg_header(bad)  # else the decode falls back to Pillow, and its orientation
        except Exception:  # noqa: BLE001 - not a JPEG simplejpeg reads
            return
        try:
            with Image.open(io.BytesIO(bad)) as im:
                want = codecs._pil_orientation(im)
        except Exception:  # noqa: BLE001 - Pillow cannot open it: nothing to compare
            return
        assert codecs.jpeg_orientation(bad) == want


# ---- 2. the JPEG decode hint keeps detail and aspect ratio -----------------------------------------


def _stripes(height: int) -> bytes:
    x = ((np.arange(800) // 4) % 2 * 255).astype(np.uint8)
    return _save(np.repeat(np.repeat(x[None, :, None], 3, 2), height, 0), "JPEG", quality=95)


def test_very_short_jpegs_through_the_loader_keep_stripes_and_aspect(tmp_path: Path) -> None:
    """The QA repro: 1-px and 3-px high, 800-px wide JPEGs resized shorter side 16: before, 1/8 DCT
    decoding averaged the 4-px stripes to flat grey (16 x 1600) and the 3-row image came out 200:1."""
    raw = tmp_path / "short"
    raw.mkdir()
    for h in (1, 3):
        (raw / f"h{h}.jpg").write_bytes(_stripes(h))
        (raw / f"h{h}.cls").write_text("0")
    out = tmp_path / "out"
    mmdata.shard(raw, out, progress=False)
    recipe = {"normalize": {"image": [{"op": "resize", "size": 16, "side": "shorter"}]}}
    got = {}
    for hint in (True, False):
        kw = {} if hint else {"image_max_size": None}
        for batch in mmdata.loader(out, 1, recipe=recipe, stage="eval", **kw):
            got[(hint, batch["image"].shape[-1])] = batch["image"][0]
    shapes = sorted(tuple(v.shape) for (hint, _), v in got.items() if hint)
    assert shapes == [(3, 16, 4267), (3, 16, 12800)]
    for (hint, w), v in got.items():
        assert v.float().std() > 50, (hint, w)  # striped, not grey
        assert torch.equal(v, got[(not hint, w)])  # the hint costs nothing here: full-size decodes


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(h=st.integers(1, 3000), w=st.integers(1, 3000), rh=st.integers(1, 600), rw=st.integers(1, 600))
def test_dct_scale_keeps_requested_size_and_aspect(h: int, w: int, rh: int, rw: int) -> None:
    m = codecs.dct_scale(h, w, (rh, rw))
    if m < 8:
        assert h * m / 8 >= min(rh, h) and w * m / 8 >= min(rw, w)
        sh, sw = -(-h * m // 8), -(-w * m // 8)
        assert abs(sw - sh * w / h) <= 1 and abs(sh - sw * h / w) <= 1


@pytest.mark.parametrize("size,hint", [((3, 800), (16, 16)), ((481, 640), (60, 60)), ((224, 224), (64, 64)),
                                       ((9, 800), (1, 1))])
def test_decode_hint_on_the_simplejpeg_and_pillow_paths(size: tuple[int, int], hint: tuple[int, int]) -> None:
    """Both JPEG decoders (simplejpeg, Pillow's draft for what simplejpeg declines) keep the aspect."""
    h, w = size
    rgb = _pixels(h, w)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "JPEG", quality=95)
    for data in (_save(rgb, "JPEG", quality=95), cmyk.getvalue()):
        out = codecs.decode_image(data, max_size=hint)
        oh, ow = out.shape[1:]
        assert oh >= min(hint[0], h) and ow >= min(hint[1], w)
        assert abs(ow - oh * w / h) <= 1 and abs(oh - ow * h / w) <= 1, (size, out.shape)


# ---- 3. GIF --------------------------------------------------------------------------------------


def test_animated_gif_shards_as_its_first_frame(tmp_path: Path) -> None:
    raw = tmp_path / "g"
    raw.mkdir()
    frames = [Image.fromarray(_pixels()).convert("P"), Image.fromarray(255 - _pixels()).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (raw / "anim.gif").write_bytes(buf.getvalue())
    (raw / "anim.cls").write_text("1")
    card = mmdata.shard(raw, tmp_path / "out", progress=False)
    assert not card.get("skipped_counts", {}).get("files")
    sample = next(iter(mmdata.open_dataset(tmp_path / "out")))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        first = np.array(im.convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(sample["image"], torch.from_numpy(first)) and sample["label"] == 1
    rows = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert (rows[0]["image_height"], rows[0]["image_width"], rows[0]["image_mode"]) == (40, 60, "P")


@pytest.mark.parametrize("head", [b"MM\x00*", b"MM*\x00", b"MM\x00+", b"II*\x00", b"II\x00*", b"II+\x00", b"XX\x00*"])
def test_tiff_orientation_takes_the_prefixes_pillow_takes(head: bytes) -> None:
    """A flipped bit in the TIFF magic ('MM\\0*' -> 'MM\\0+') still reads as EXIF in Pillow (the suite's
    fuzzing found it): the byte parsers (Python and C) read it too; a BigTIFF third byte (43) and an
    unknown byte order read nothing, as in Pillow."""
    big = head[:2] == b"MM"
    entry = (bytes([1, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]) if big else bytes([0x12, 1, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]))
    ifd = (bytes([0, 0, 0, 8, 0, 1]) if big else bytes([8, 0, 0, 0, 1, 0])) + entry
    data = b"Exif\x00\x00" + head + ifd
    want = None if head[:2] not in (b"MM", b"II") or head[2] == 43 else 6
    assert codecs.tiff_orientation(data) == want
    exif = Image.Exif()
    try:
        exif.load(data)
        pillow = exif.get(0x0112)
    except Exception:  # noqa: BLE001 - Pillow fails on these headers (struct.error, SyntaxError): nothing read
        pillow = None
    assert pillow == want
