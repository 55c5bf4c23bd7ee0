"""Cheap media facts from file bytes, for the index (no full decode on the write path).

PNG, JPEG, FLAC and WAV headers are parsed directly (microseconds); other formats fall back to
Pillow / soundfile. A file whose header cannot be parsed is reported as corrupt.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from mmdata.codecs import AUDIO_EXTS, IMAGE_EXTS, TEXT_EXTS


class CorruptMedia(ValueError):
    """The bytes are not a valid file of the type their extension promises."""


def image_size(data: bytes) -> tuple[int, int]:
    """(height, width) of an image."""
    try:
        return _image_size(data)
    except (struct.error, IndexError) as exc:  # a header cut short
        raise CorruptMedia(f"truncated image header ({exc})") from exc


def _image_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return h, w
    if data[:2] == b"\xff\xd8":
        i = 2
        n = len(data)
        while i + 9 < n:
            if data[i] != 0xFF:
                raise CorruptMedia("JPEG marker expected")
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return h, w
            i += 2 + seg
        raise CorruptMedia("JPEG without a frame header")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.height, im.width
    except Exception as exc:  # noqa: BLE001
        raise CorruptMedia(f"not a readable image ({exc})") from exc


def audio_info(data: bytes) -> tuple[float, int]:
    """(seconds, sample rate) of an audio file."""
    try:
        return _audio_info(data)
    except (struct.error, IndexError) as exc:  # a header cut short
        raise CorruptMedia(f"truncated audio header ({exc})") from exc


def _audio_info(data: bytes) -> tuple[float, int]:
    if data[:4] == b"fLaC" and len(data) >= 42:
        # STREAMINFO: 20 bits rate, 3 channels, 5 bps, 36 total samples
        info = data[18:26]
        v = int.from_bytes(info, "big")
        rate = v >> 44
        total = v & ((1 << 36) - 1)
        if rate == 0:
            raise CorruptMedia("FLAC with sample rate 0")
        return total / rate, rate
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        i = 12
        rate = block = 0
        while i + 8 <= len(data):
            cid, size = data[i : i + 4], struct.unpack("<I", data[i + 4 : i + 8])[0]
            if cid == b"fmt ":
                rate = struct.unpack("<I", data[i + 12 : i + 16])[0]
                block = struct.unpack("<H", data[i + 20 : i + 22])[0]
            elif cid == b"data" and rate and block:
                size = min(size, len(data) - i - 8)
                return size / block / rate, rate
            i += 8 + size + (size & 1)
        raise CorruptMedia("WAV without fmt/data chunks")
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        return info.frames / info.samplerate, int(info.samplerate)
    except Exception as exc:  # noqa: BLE001
        raise CorruptMedia(f"not readable audio ({exc})") from exc


def member_stats(ext: str, data: bytes) -> dict[str, Any]:
    """Index columns for one member; raises CorruptMedia when the bytes do not match the type."""
    e = ext.lower()
    if e in IMAGE_EXTS:
        h, w = image_size(data)
        return {"image_height": h, "image_width": w}
    if e in AUDIO_EXTS:
        seconds, rate = audio_info(data)
        return {"audio_seconds": round(seconds, 6), "audio_sample_rate": rate}
    if e in TEXT_EXTS:
        try:
            return {"text_chars": len(data.decode("utf-8"))}
        except UnicodeDecodeError as exc:
            raise CorruptMedia(f"text is not UTF-8 ({exc})") from exc
    return {}
