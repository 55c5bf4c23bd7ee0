"""QA round 39 fixes in codecs.py / shards/mediainfo.py: MP3 decoded in one read (libsndfile's mpg123 decoder
loses its bit reservoir across block reads), deep JSON sidecars refused cleanly, Pillow's bomb warning kept
quiet on the ``--check decode`` path, RF64 sample formats counted, the ``.npy`` refusal without numpy's pickle
advice."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from mmdata import codecs
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import CorruptMedia


def _mp3(rate: int, channels: int, seconds: float = 8.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x] * channels, 1), rate, format="MP3")
    return buf.getvalue()


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (44100, 2)])
def test_mp3_over_one_block_decodes_as_one_read(rate: int, channels: int) -> None:
    """(QA39 music #1) frames past 65,536 were wrong by up to 0.36 (a 0.3 tone)."""
    data = _mp3(rate, channels)
    whole = sf.read(io.BytesIO(data), always_2d=True, dtype="float32")[0].T
    assert whole.shape[1] > codecs._BLOCK_FRAMES
    got = codecs.decode_audio(data)[0].numpy()
    assert got.shape == whole.shape
    # equal to float32 rounding (mpg123's output differs in the last bit with the buffer's alignment)
    np.testing.assert_allclose(got, whole, rtol=0, atol=1e-6)
    # the first frames under a hint are the whole decode's first frames
    part = codecs.decode_audio(data, max_frames=100_000)[0].numpy()
    np.testing.assert_allclose(part, whole[:, :100_000], rtol=0, atol=1e-6)


def test_deep_json_refused_not_recursion_error() -> None:
    """(QA39 security #1) a `[`*5000 sidecar crashed shard with a RecursionError traceback."""
    with pytest.raises(CorruptMedia, match="nested too deep"):
        mediainfo.check_json(b"[" * 100_000 + b"]" * 100_000)


def test_check_decode_quiet_on_pillow_bomb_warning() -> None:
    """(QA39 security #3) mediainfo's own Image.open calls printed Pillow's DecompressionBombWarning."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 10  # 64 pixels are "over" it: Pillow warns (under 2x it does not raise)
    try:
        Image.MAX_IMAGE_PIXELS = 40
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            mediainfo.decode_check("image", buf.getvalue())
            mediainfo._pil_orientation(buf.getvalue())
            mediainfo._pil_image(buf.getvalue())
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]


def _rf64(wav: bytes) -> bytes:
    """A RIFF WAV rewritten as RF64 (ds64 chunk first, 0xFFFFFFFF sizes), as ffmpeg -rf64 writes it."""
    body = wav[12:]
    ds64 = b"ds64" + struct.pack("<I", 28) + struct.pack("<QQQI", len(wav) - 8 + 36, 0, 0, 0)
    return b"RF64" + b"\xff\xff\xff\xff" + b"WAVE" + ds64 + body


def test_rf64_subtype_counted() -> None:
    """(QA39 security #6) RF64 WAVs were missing from the card's `subtypes` counts."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(100, np.float32), 8000, format="WAV", subtype="PCM_16")
    rf = _rf64(buf.getvalue())
    assert sf.info(io.BytesIO(rf)).subtype == "PCM_16"
    assert mediainfo.audio_subtype(rf) == "PCM_16"


def test_fmt_after_big_junk_counted() -> None:
    """(QA39 security #6) a fmt chunk after 64 KB of junk was not found."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(100, np.float32), 8000, format="WAV", subtype="PCM_24")
    wav = buf.getvalue()
    junk = b"JUNK" + struct.pack("<I", 100_000) + bytes(100_000)
    data = wav[:12] + junk + wav[12:]
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    assert mediainfo.audio_subtype(data) == "PCM_24"


def test_npy_huge_header_refusal_has_no_pickle_advice() -> None:
    """(QA39 security #7) numpy's "allow_pickle=True" advice was relayed in the refusal."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), " + " " * 200_000 + "}"
    header += " " * ((64 - (12 + len(header) + 1) % 64) % 64) + "\n"
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode() + bytes(8)
    with pytest.raises(CorruptMedia) as info:
        mediainfo.check_npy(data)
    text = str(info.value)
    assert "pickle" not in text and "\n" not in text
    assert "header of" in text and "refused" in text


def test_npy_object_refusal_says_how_to_save_numeric() -> None:
    """(QA39 security #7) an object array's refusal says how to save a numeric array."""
    buf = io.BytesIO()
    np.save(buf, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(CorruptMedia, match="refused.*np.save"):
        mediainfo.check_npy(buf.getvalue())


def _palette_gif() -> bytes:
    from PIL import Image

    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 30, 10)
    rgb[:, 4:] = (10, 120, 240)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(buf, "GIF")
    return buf.getvalue()


def test_named_photo_field_decodes_as_photo() -> None:
    """(QA39 ecommerce #1) a palette GIF in a named field declared a photo (``targets: {image2.gif: image}``)
    decodes to its colours, as the ``image`` does; undeclared, it stays the stored values (a mask's indices)."""
    gif = _palette_gif()
    name, photo, _ = codecs.decode_member("image2.gif", gif, photo_fields={"image2.gif"})
    assert name == "image2.gif"
    assert str(photo.dtype) == "torch.uint8" and tuple(photo.shape) == (3, 6, 8)
    assert tuple(photo[:, 0, 0].tolist()) == (200, 30, 10)
    assert photo.equal(codecs.decode_member("gif", gif)[1])
    values = codecs.decode_member("image2.gif", gif)[1]
    assert tuple(values.shape) == (1, 6, 8) and int(values.max()) < 4


def test_named_photo_field_16bit_is_8bit() -> None:
    """(QA39 ecommerce #1) a 16-bit PNG photo in a declared field decodes to uint8 as the image does."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(buf, "PNG")
    t = codecs.decode_member("image2.png", buf.getvalue(), photo_fields=("image2.png",))[1]
    assert str(t.dtype) == "torch.uint8" and int(t.max()) == 255
    assert str(codecs.decode_member("image2.png", buf.getvalue())[1].dtype) == "torch.int32"
