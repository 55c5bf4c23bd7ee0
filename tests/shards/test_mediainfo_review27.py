"""Review of QA27 on ``identifying_metadata`` (``mmdata/shards/mediainfo.py``): its WebP and PNG chunk walks are
bounded, as its WAV and FLAC walks are: a crafted file of empty chunks costs a bounded number of steps, while
EXIF where real files keep it is still found."""

from __future__ import annotations

import io
import struct

from PIL import Image

from mmdata.shards.mediainfo import _IMAGE_CHUNKS, identifying_metadata


def _gps_webp() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="WEBP", exif=exif.tobytes())
    return buf.getvalue()


def _riff_webp(chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def test_webp_exif_is_found_after_other_chunks() -> None:
    real = _gps_webp()
    assert identifying_metadata(real) == {"gps"}
    at = real.index(b"EXIF")
    size = int.from_bytes(real[at + 4:at + 8], "little")
    exif_chunk = real[at:at + 8 + size + (size & 1)]
    # EXIF after a few hundred chunks (an animation's ANMF frames come before it)
    assert identifying_metadata(_riff_webp(b"JUNK\x00\x00\x00\x00" * 300 + exif_chunk)) == {"gps"}


def test_a_webp_of_empty_chunks_is_walked_a_bounded_number_of_steps() -> None:
    """A crafted file: more empty chunks than the bound, then EXIF. The walk stops at the bound (it stepped
    through every 8 bytes of the file before), so the EXIF past it is not read."""
    real = _gps_webp()
    at = real.index(b"EXIF")
    size = int.from_bytes(real[at + 4:at + 8], "little")
    exif_chunk = real[at:at + 8 + size + (size & 1)]
    crafted = _riff_webp(b"JUNK\x00\x00\x00\x00" * (_IMAGE_CHUNKS + 1) + exif_chunk)
    assert identifying_metadata(crafted) == set()
    assert identifying_metadata(_riff_webp(b"JUNK\x00\x00\x00\x00" * (_IMAGE_CHUNKS - 1) + exif_chunk)) == {"gps"}


def test_a_png_of_empty_chunks_is_walked_a_bounded_number_of_steps() -> None:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    Image.new("RGB", (4, 4)).save(buf, format="PNG", exif=exif.tobytes())
    real = buf.getvalue()
    assert identifying_metadata(real) == {"gps"}
    at = real.index(b"eXIf") - 4
    empty = b"\x00\x00\x00\x00teXt\x00\x00\x00\x00"  # a chunk of no data (its CRC not checked here)
    for n, found in ((_IMAGE_CHUNKS + 1, set()), (100, {"gps"})):
        crafted = real[:at] + empty * n + real[at:]
        assert identifying_metadata(crafted) == found, n


def _wav_with_info(entries: bytes) -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(80, dtype="int16"), 8000, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    body = b"INFO" + entries
    chunks = wav[12:] + b"LIST" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_a_wav_info_list_of_empty_entries_is_walked_a_bounded_number_of_steps() -> None:
    from mmdata.shards.mediainfo import _TAG_ITEMS

    artist = b"IART" + struct.pack("<I", 8) + b"Jane Doe"
    empty = b"ISFT\x00\x00\x00\x00"  # the encoder's own name, empty: no tag
    assert identifying_metadata(_wav_with_info(empty * 100 + artist)) == {"audio_tags"}
    assert identifying_metadata(_wav_with_info(empty * (_TAG_ITEMS + 1) + artist)) == set()
