"""Member codecs: the fast decoders (simplejpeg, miniaudio) give exactly what PIL / libsndfile give,
the JPEG decode hint scales down but never below the requested size, and bad bytes name the member."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from mmdata import codecs
from mmdata.testing import image_bytes


def _pil(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as im:
        arr = np.array(im if im.mode in ("L", "RGB") else im.convert("L" if im.mode in ("1", "LA") else "RGB"))
    return torch.from_numpy((arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)).copy())


def _jpeg(arr: np.ndarray, mode: str | None = None, **save: object) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    (im.convert(mode) if mode else im).save(buf, "JPEG", **save)
    return buf.getvalue()


@pytest.mark.parametrize("size", [(24, 32), (64, 64), (224, 224), (33, 47)])
def test_jpeg_fast_path_matches_pil(size: tuple[int, int]) -> None:
    for i in range(3):
        data = image_bytes(i, size=size, fmt="jpg")
        assert torch.equal(codecs.decode_image(data), _pil(data))


def test_grey_progressive_and_cmyk_jpegs() -> None:
    grey = _jpeg(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64))
    assert codecs.decode_image(grey).shape == (1, 48, 64) and torch.equal(codecs.decode_image(grey), _pil(grey))
    rgb = np.asarray(Image.open(io.BytesIO(image_bytes(5, size=(40, 40), fmt="jpg"))))
    prog = _jpeg(rgb, progressive=True)
    assert torch.equal(codecs.decode_image(prog), _pil(prog))
    cmyk = _jpeg(rgb, mode="CMYK")  # simplejpeg declines: PIL converts
    assert codecs.decode_image(cmyk).shape == (3, 40, 40)


def test_image_max_size_hint_scales_down_never_below() -> None:
    data = image_bytes(0, size=(224, 224), fmt="jpg")
    out = codecs.decode_image(data, max_size=(64, 64))
    assert out.shape[0] == 3 and 64 <= out.shape[1] < 224 and 64 <= out.shape[2] < 224
    assert codecs.decode_image(data, max_size=(500, 500)).shape == (3, 224, 224)
    png = image_bytes(0, size=(30, 30), fmt="png")
    assert codecs.decode_image(png, max_size=(8, 8)).shape == (3, 30, 30)  # only JPEG scales


@pytest.mark.parametrize("channels,subtype", [(1, "PCM_16"), (2, "PCM_16"), (1, "PCM_24")])
def test_flac_fast_path_matches_libsndfile(channels: int, subtype: str) -> None:
    x = (np.random.default_rng(0).standard_normal((3000, channels)) * 0.2).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="FLAC", subtype=subtype)
    data = buf.getvalue()
    audio, rate = codecs.decode_audio(data)
    ref, ref_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert rate == ref_rate == 16000 and audio.dtype == torch.float32
    assert torch.equal(audio, torch.from_numpy(np.ascontiguousarray(ref.T)))


def test_bad_bytes_name_the_member() -> None:
    for ext, data in (("jpg", b"\xff\xd8\xff\xe0 broken"), ("flac", b"fLaC broken")):
        with pytest.raises(codecs.DecodeError, match=f"cannot decode .{ext} member"):
            codecs.decode_member(ext, data)


# -- high bit depth images and BOMs (QA run: 16-bit PNGs decoded to white, captions kept their BOM) --


def _save(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _reopened_mode(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        return im.mode


RAMP16 = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)  # every 8-bit level, 4 times each


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_ramp_decodes_to_the_matching_8bit_ramp(fmt: str) -> None:
    data = _save(Image.fromarray(RAMP16), fmt)
    assert _reopened_mode(data) == "I;16"
    out = codecs.decode_image(data)
    assert out.dtype == torch.uint8 and out.shape == (1, 32, 32)  # greyscale stays 1 channel, like L
    assert torch.equal(out[0], torch.from_numpy((RAMP16 >> 8).astype(np.uint8)))
    assert torch.equal(torch.bincount(out.flatten(), minlength=256), torch.full((256,), 4))


def test_16bit_big_endian_tiff_and_16bit_pgm_decode_like_little_endian() -> None:
    big = _save(Image.frombytes("I;16B", (32, 32), RAMP16.astype(">u2").tobytes()), "TIFF")
    pgm = b"P5\n32 32\n65535\n" + RAMP16.astype(">u2").tobytes()  # Pillow opens a 16-bit PGM as mode I
    assert (_reopened_mode(big), _reopened_mode(pgm)) == ("I;16B", "I")
    want = torch.from_numpy((RAMP16 >> 8).astype(np.uint8))[None]
    assert torch.equal(codecs.decode_image(big), want) and torch.equal(codecs.decode_image(pgm), want)


def test_32bit_int_image_is_clipped_to_the_16bit_range() -> None:
    arr = np.array([[-70000, -1, 0, 255, 256, 65535, 65536, 2**31 - 1]], dtype=np.int32)
    data = _save(Image.fromarray(arr), "TIFF")
    assert _reopened_mode(data) == "I"
    assert codecs.decode_image(data)[0, 0].tolist() == [0, 0, 0, 0, 1, 255, 255, 255]


def test_float_image_unit_range_scales_else_clips_to_0_255() -> None:
    unit = np.array([[0.0, 0.001, 0.5, 0.999, 1.0, np.nan]], dtype=np.float32)
    data = _save(Image.fromarray(unit), "TIFF")
    assert _reopened_mode(data) == "F"
    assert codecs.decode_image(data)[0, 0].tolist() == [0, 0, 128, 255, 255, 0]
    wide = np.array([[-3.0, 0.4, 1.5, 127.5, 254.6, 300.0, np.inf, np.nan]], dtype=np.float32)
    assert codecs.decode_image(_save(Image.fromarray(wide), "TIFF"))[0, 0].tolist() == [0, 0, 2, 128, 255, 255, 255, 0]


def test_8bit_modes_decode_exactly_as_before() -> None:
    """RGB / L keep their bytes; RGBA, P and CMYK go through PIL's convert("RGB") unchanged; LA and 1 through
    convert("L") (grey: 1 channel, QA38 documents #6)."""
    rgb = np.asarray(Image.open(io.BytesIO(image_bytes(3, size=(20, 24), fmt="png"))).convert("RGB"))
    base = Image.fromarray(rgb)
    ims = {m: base.convert(m) for m in ("RGB", "L", "RGBA", "LA", "1", "CMYK")}
    ims["P"] = base.quantize(16)
    for mode, im in ims.items():
        data = _save(im, "TIFF" if mode == "CMYK" else "PNG")
        assert _reopened_mode(data) == mode
        out = codecs.decode_image(data)
        assert out.dtype == torch.uint8 and out.shape[0] == (1 if mode in ("L", "LA", "1") else 3), mode
        assert torch.equal(out, _pil(data)), mode


def test_leading_bom_is_dropped_from_text_labels_and_json() -> None:
    bom = "\ufeff".encode()
    assert codecs.decode_member("txt", bom + "caption with BOM".encode())[1] == "caption with BOM"
    assert codecs.decode_member("txt", "mid\ufeffdle".encode())[1] == "mid\ufeffdle"  # only a leading one
    assert codecs.decode_member("txt", bom + bom + b"x")[1] == "\ufeffx"
    assert codecs.decode_member("cls", bom + b"2\n")[1] == 2
    assert codecs.decode_member("json", bom + b'{"a": 1}')[1] == {"a": 1}


def test_16bit_png_and_bom_caption_through_shard_and_open_dataset(tmp_path) -> None:
    import tarfile

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    grey = np.linspace(33, 65529, 48 * 40).round().astype(np.uint16).reshape(48, 40)  # the QA file's range
    png = _save(Image.fromarray(grey), "PNG")
    (raw / "scan.png").write_bytes(png)
    caption = "\ufeffcaption with BOM".encode()
    (raw / "scan.txt").write_bytes(caption)
    rep = mmdata.shard(raw, tmp_path / "data", progress=False)
    assert rep["samples"] == 1
    (sample,) = list(mmdata.open_dataset(tmp_path / "data", on_error="raise"))
    img = sample["image"]
    assert img.dtype == torch.uint8 and img.shape == (1, 48, 40)
    assert torch.equal(img[0], torch.from_numpy((grey >> 8).astype(np.uint8)))
    assert (img == 255).float().mean() < 0.01  # was 99.55 % white
    assert sample["text"] == "caption with BOM"
    (tar,) = sorted((tmp_path / "data").glob("*.tar"))
    with tarfile.open(tar) as tf:  # shards stay byte-exact copies of the source files
        members = {m.name.rsplit(".", 1)[1]: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    assert members["png"] == png and members["txt"] == caption
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "data" / "index.parquet").column("text_chars").to_pylist() == [len("caption with BOM")]


def test_bom_in_label_and_class_names_files_at_shard_time(tmp_path) -> None:
    """A .cls / labels.txt saved by a Windows editor starts with a BOM: it is not part of the id or
    of the first class name (it was a bad label, and a class named '\ufeffcat')."""
    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "labels.txt").write_bytes("\ufeffcat\ndog\n".encode())
    for i, lab in enumerate(("\ufeff1\n", "\ufeffcat")):
        (raw / f"s{i}.txt").write_text("a caption")
        (raw / f"s{i}.cls").write_bytes(lab.encode())
    rep = mmdata.shard(raw, tmp_path / "data", progress=False, on_error="raise")
    assert rep["samples"] == 2
    ds = mmdata.open_dataset(tmp_path / "data", on_error="raise")
    assert ds.label_names == ["cat", "dog"] and sorted(s["label"] for s in ds) == [0, 1]


def _damaged_flac(channels: int = 1) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    sf.write(buf, (np.sin(np.arange(16000 * channels).reshape(-1, channels) / 10) * 0.5).astype(np.float32), 16000,
             format="FLAC")
    good = buf.getvalue()
    bad = bytearray(good)
    mid = len(bad) // 2
    for i in range(mid, mid + 64):
        bad[i] ^= 0x5A
    return good, bytes(bad)


@pytest.mark.parametrize("channels", [1, 2])
def test_a_damaged_flac_is_corrupt_not_a_shorter_clip(channels: int) -> None:
    """dr_flac skips frames it cannot decode: 64 damaged bytes gave 7808 of 16000 frames and no error
    (libsndfile: "flac decoder lost sync")."""
    good, bad = _damaged_flac(channels)
    assert codecs.flac_frames(good) == 16000 and codecs.flac_frames(b"RIFF" + bytes(40)) is None
    assert codecs.decode_audio(good)[0].shape == (channels, 16000)
    with pytest.raises(codecs.DecodeError, match=r"cannot decode \.flac member as audio"):
        codecs.decode_member("flac", bad)


def test_a_damaged_flac_in_a_shard_is_a_counted_skip(tmp_path: Path) -> None:
    import mmdata

    good, bad = _damaged_flac()
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, data in enumerate((good, bad, good)):
        (raw / f"{i:02d}.flac").write_bytes(data)
        (raw / f"{i:02d}.txt").write_text(f"clip {i}", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)  # the header check passes: the damage is in a frame
    ds = mmdata.open_dataset(tmp_path / "ds", on_error="skip")
    assert [s.key for s in ds] == ["00", "02"] and ds.skipped == {"corrupt audio": 1}
    with pytest.raises(mmdata.ShardError, match=r"train-000000\.tar.*'01'.*flac"):
        list(mmdata.open_dataset(tmp_path / "ds"))
