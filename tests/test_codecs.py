"""Member codecs: the fast decoders (simplejpeg, miniaudio) give exactly what PIL / libsndfile give,
the JPEG decode hint scales down but never below the requested size, and bad bytes name the member."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from mmdata import codecs
from mmdata.testing import image_bytes


def _pil(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as im:
        arr = np.array(im if im.mode in ("L", "RGB") else im.convert("RGB"))
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
