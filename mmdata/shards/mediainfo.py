"""Media facts and integrity checks from file bytes, for the index and for ``mmdata shard``'s checks.

The four formats sharded most (PNG, JPEG, FLAC, WAV) are parsed here from their bytes, without
decoding pixels or samples, and checked for the damage a copy or a download leaves behind:

* PNG: the chunk walk reaches ``IEND`` and every chunk's CRC-32 matches (a cut file, a flipped bit);
* JPEG: markers up to the scan, then an end-of-image marker after it (a cut file);
* FLAC: metadata blocks, then the last audio frame: its header CRC-8 and frame CRC-16 match and it
  ends at the sample count STREAMINFO declares (a cut file, a cut last frame);
* WAV: the ``data`` chunk holds the bytes its header declares (a cut file), unless its size is a streaming
  writer's placeholder (:func:`wav_size_unknown`): then the audio runs to the end of the file;
* AIFF / AIFC (uncompressed, A-law, mu-law): the ``SSND`` chunk holds the frames ``COMM`` declares;
* Sun ``.au``, NIST SPHERE, Wave64, RF64: the file holds the audio bytes the header declares (a cut file),
  then soundfile reads the facts from the header.

Other formats go to Pillow / soundfile (header only). ``check="decode"`` (``mmdata shard --check
decode``) also decodes every image and audio file in full (:func:`decode_check`).

The optional C module (``mmdata.shards._pack``) runs the same four parsers; where it accepts a file
it returns exactly what the Python code below returns (``tests/shards/test_pack.py`` fuzzes both),
and where it does not (anything unusual or damaged) the Python code gives the verdict and message.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import re
import struct
import zlib
from itertools import repeat
from collections.abc import Iterator
from typing import Any, NamedTuple

from mmdata.codecs import (AUDIO_EXTS, IMAGE_EXTS, TEXT_EXTS, flac_streaminfo, jpeg_marker, jpeg_orientation,
                           text_length, tiff_orientation)


class CorruptMedia(ValueError):
    """The bytes are not a valid, complete file of the type their extension promises."""


#: PNG (bit depth, colour type) -> Pillow mode (Pillow's PngImagePlugin._MODES)
_PNG_MODES = {(1, 0): "1", (2, 0): "L", (4, 0): "L", (8, 0): "L", (16, 0): "I;16", (8, 2): "RGB", (16, 2): "RGB",
              (1, 3): "P", (2, 3): "P", (4, 3): "P", (8, 3): "P", (8, 4): "LA", (16, 4): "RGBA", (8, 6): "RGBA",
              (16, 6): "RGBA"}
#: bands of each mode the parsers report (``len(PIL.Image.getmodebands(mode))``)
MODE_CHANNELS = {"1": 1, "L": 1, "P": 1, "I;16": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
#: Pillow refuses to open images above this many pixels (2 x ``PIL.Image.MAX_IMAGE_PIXELS``)
MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)
#: WAV format tags whose frames are ``data bytes // block align`` (PCM, IEEE float, A-law, mu-law)
_WAV_LINEAR = frozenset((1, 3, 6, 7))
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_OBJ_REPR = re.compile(r" ?<[^<>]* at 0x[0-9a-fA-F]+>")


#: the reason for a 0-byte image or audio file
EMPTY_FILE = "empty file (0 bytes)"


def _describe(exc: BaseException) -> str:
    """An exception as text without object reprs (``<_io.BytesIO object at 0x...>`` changes every run)."""
    text = _OBJ_REPR.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _crc_table(poly: int, width: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for n in range(256):
        c = n << (width - 8)
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & top else (c << 1)
        table.append(c & mask)
    return tuple(table)


_CRC8 = _crc_table(0x07, 8)
_CRC16 = _crc_table(0x8005, 16)


def _crc8(data: bytes) -> int:
    c = 0
    for b in data:
        c = _CRC8[c ^ b]
    return c


_CRC16_WORDS: list[int] = []


def _crc16(data: bytes | memoryview) -> int:
    """FLAC's CRC-16 (x^16 + x^15 + x^2 + 1), two bytes per step through a 65,536-entry table."""
    from array import array
    import sys

    table = _CRC16_WORDS
    if not table:  # built on first use (~30 ms): the C module does this work when it is built
        t = _CRC16
        table += [((t[v >> 8] << 8) & 0xFFFF) ^ t[(t[v >> 8] >> 8) ^ (v & 0xFF)] for v in range(65536)]
    n = len(data)
    words = array("H", bytes(data[: n - n % 2]))
    if sys.byteorder == "little":
        words.byteswap()
    c = 0
    for w in words:
        c = table[c ^ w]
    if n % 2:
        c = ((c << 8) & 0xFFFF) ^ _CRC16[(c >> 8) ^ data[n - 1]]
    return c


# ---- images -------------------------------------------------------------------------------------


def _check_pixels(fmt: str, w: int, h: int) -> None:
    if w == 0 or h == 0:
        raise CorruptMedia(f"{fmt} of {w}x{h} pixels")
    if w * h > MAX_PIXELS:
        raise CorruptMedia(f"{fmt} of {w}x{h} pixels, over Pillow's decompression-bomb limit ({MAX_PIXELS} pixels)")


def _png(d: bytes) -> tuple[int, int, str, int]:
    n = len(d)
    if n < 33 or d[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise CorruptMedia("PNG without a valid IHDR header")
    w, h, depth, ctype = struct.unpack_from(">IIBB", d, 16)
    mode = _PNG_MODES.get((depth, ctype))
    if mode is None:
        raise CorruptMedia(f"PNG with bit depth {depth} and colour type {ctype} (not a valid combination)")
    _check_pixels("PNG", w, h)
    view = memoryview(d)
    pos = 8
    idat = False
    orientation: int | None = None  # of the last eXIf chunk before the image data (Pillow's info["exif"])
    ask_pil = text = False
    while True:
        if n - pos < 12:
            raise CorruptMedia("truncated PNG: the file ends before its IEND chunk")
        length = int.from_bytes(d[pos:pos + 4], "big")
        if length > n - pos - 12:
            raise CorruptMedia(f"truncated PNG: chunk {_chunk_name(d[pos + 4:pos + 8])} runs past the end of the file")
        ctype_b = d[pos + 4:pos + 8]
        if zlib.crc32(view[pos + 4:pos + 8 + length]) != int.from_bytes(d[pos + 8 + length:pos + 12 + length], "big"):
            raise CorruptMedia(f"corrupt PNG: CRC mismatch in chunk {_chunk_name(ctype_b)} at byte {pos}")
        if ctype_b == b"eXIf":
            if idat:
                ask_pil = True  # read by Pillow after the pixels (not at all after an APNG's first frame)
            else:
                orientation = tiff_orientation(d[pos + 8:pos + 8 + length])
        elif ctype_b in _PNG_TEXT and d[pos + 8:pos + 8 + length].startswith(_PNG_EXIF_TEXT):
            text = True  # EXIF / XMP in a (compressed) text chunk: Pillow's getexif() reads those too
        pos += 12 + length
        if ctype_b == b"IDAT":
            idat = True
        elif ctype_b == b"IEND":
            break
    if not idat:
        raise CorruptMedia("PNG without image data (no IDAT chunk)")
    if ask_pil or (text and orientation is None):  # (an eXIf Orientation entry outranks the text chunks)
        orientation = _pil_orientation(d)
    if orientation is not None and 5 <= orientation <= 8:  # shown turned a quarter: as decode_image gives it
        h, w = w, h
    return h, w, mode, MODE_CHANNELS[mode]


def _png_chunks(d: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(position, declared size, type) of a PNG's chunks in order, for the lenient walks (frames, identifying
    metadata; :func:`_png` checks a member strictly): bounded in steps (:data:`_IMAGE_CHUNKS`), stopping where
    the bytes end; the caller stops at the chunk it wants."""
    p, n = 8, len(d)
    for _ in range(_IMAGE_CHUNKS):
        if p + 8 > n:
            return
        size = int.from_bytes(d[p:p + 4], "big")
        yield p, size, d[p + 4:p + 8]
        p += 12 + size


_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_PNG_EXIF_TEXT = (b"Raw profile type exif\x00", b"XML:com.adobe.xmp\x00")


def _pil_orientation(d: bytes) -> int:
    """The EXIF orientation Pillow's ``getexif()`` gives for the image (decoded, so chunks after the
    pixels count), as :func:`mmdata.codecs.decode_image` applies it; 1 when it cannot tell."""
    from PIL import Image

    from mmdata.codecs import _pil_orientation as orientation_of

    from mmdata.codecs import _pillow_bomb_quiet

    try:  # Pillow's bomb warning is mmdata's to say, once per dataset (QA39 security #3)
        with _pillow_bomb_quiet(), Image.open(io.BytesIO(d)) as im:
            im.load()
            return orientation_of(im)
    except Exception:  # noqa: BLE001 - the checks above passed; a failing decode is check="decode"'s to report
        return 1


def _chunk_name(b: bytes) -> str:
    return repr(b.decode("latin-1"))


def _jpeg(d: bytes) -> tuple[int, int, str, int]:
    n = len(d)
    i = 2
    sof: tuple[int, int, int, int] | None = None
    while True:
        i = jpeg_marker(d, i)  # junk between segments and fill bytes: Pillow and libjpeg skip them too
        if n - i < 4:
            raise CorruptMedia("truncated JPEG: the file ends before its image data")
        m = d[i + 1]
        if m == 0x00 or m == 0xD8 or m == 0x01 or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if m == 0xD9:
            raise CorruptMedia("JPEG ends before its image data")
        seg = (d[i + 2] << 8) | d[i + 3]
        if seg < 2 or seg > n - i - 2:
            raise CorruptMedia(f"truncated JPEG: segment at byte {i} runs past the end of the file")
        if m in _SOF:
            if seg < 8:
                raise CorruptMedia(f"corrupt JPEG: frame header of {seg} bytes")
            sof = (d[i + 4], (d[i + 5] << 8) | d[i + 6], (d[i + 7] << 8) | d[i + 8], d[i + 9])
        elif m == 0xDA:
            if sof is None:
                raise CorruptMedia("corrupt JPEG: image data before its frame header")
            start = i + 2 + seg
            break
        i += 2 + seg
    if d.rfind(b"\xff\xd9", start) < 0:
        raise CorruptMedia("truncated JPEG: no end-of-image marker after the image data")
    bits, h, w, comps = sof
    if bits != 8:
        raise CorruptMedia(f"JPEG with {bits}-bit samples (Pillow reads 8-bit JPEG only)")
    mode = _JPEG_MODES.get(comps)
    if mode is None:
        raise CorruptMedia(f"JPEG with {comps} colour components (Pillow reads 1, 3 or 4)")
    _check_pixels("JPEG", w, h)
    if jpeg_orientation(d) >= 5:  # shown turned a quarter: the index gives the size decode_image gives
        h, w = w, h
    return h, w, mode, MODE_CHANNELS[mode]


#: TIFF PhotometricInterpretation values, for messages
_PHOTOMETRIC = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE", 4: "MASK", 5: "SEPARATED", 6: "YCBCR",
                8: "CIELAB", 32844: "LOGL", 32845: "LOGLUV"}
#: TIFF SampleFormat values (1 unsigned, 2 signed, 3 float), as numpy kinds
_SAMPLE_KIND = {1: "uint", 2: "int", 3: "float"}
#: how to keep every band of a multi-band image: what mmdata reads whole (QA37 geo #1, #4)
BANDS_ROUTE = ("store the bands as (C, H, W) .npy arrays and shard them as a named field (`--column ms=<manifest "
               "column or folder of .npy files>`: masks and crops move with the image), which keeps every band")


class TiffLayout(NamedTuple):
    """A TIFF's first directory as far as the band count goes: ``samples`` per pixel, ``photometric``
    (PhotometricInterpretation), ``extra`` (ExtraSamples: 0 unspecified, 1 / 2 alpha), ``dtype`` (``uint16``...)."""

    samples: int
    photometric: int
    extra: tuple[int, ...]
    dtype: str


def tiff_layout(d: bytes) -> TiffLayout | None:
    """:class:`TiffLayout` of a TIFF's first directory (header bytes only, bounded); None for anything else.

    Example:
        >>> tiff_layout(b"a caption") is None
        True
    """
    if len(d) < 8 or d[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    e = "little" if d[0] == 0x49 else "big"
    try:
        ifd = _ifd(d, int.from_bytes(d[4:8], e), e)

        def shorts(tag: int, default: int) -> tuple[int, ...]:
            if tag not in ifd:
                return (default,)
            raw = _tiff_bytes(d, ifd[tag], e, 2 * 64)
            return tuple(int.from_bytes(raw[i:i + 2], e) for i in range(0, len(raw) - 1, 2)) or (default,)

        samples = shorts(277, 1)[0]
        bits, fmt = shorts(258, 1)[0], shorts(339, 1)[0]
        return TiffLayout(samples, shorts(262, 1)[0], shorts(338, 0) if 338 in ifd else (),
                          f"{_SAMPLE_KIND.get(fmt, 'uint')}{bits}")
    except (IndexError, ValueError):
        return None


def _multiband(d: bytes, why: str = "") -> str | None:
    """The refusal of a TIFF whose band layout Pillow does not read (13 Sentinel-2 bands, 2 SAR bands, 4 grey
    bands): said as a multi-band image, not as a corrupt file (QA37 geo #4); a TIFF of no more samples than its
    colour and alpha bands (a 3-band float32 / int16 / 12-bit RGB) that Pillow does not open is said by its sample
    type, with Pillow's reason ``why`` (QA37 review); None when the header is not a TIFF of several samples."""
    lay = tiff_layout(d)
    if lay is None or lay.samples < 2:
        return None
    if not _bands_past(d):
        return (f"a TIFF of {lay.samples} {lay.dtype} samples per pixel (photometric "
                f"{_PHOTOMETRIC.get(lay.photometric, lay.photometric)}) that Pillow does not open ({why}): mmdata "
                f"reads 8-bit RGB / RGBA / CMYK TIFFs (and 16-bit / float greyscale ones); convert it to 8-bit RGB, "
                f"or {BANDS_ROUTE}")
    return (f"a multi-band TIFF ({lay.samples} samples per pixel, {lay.dtype}, photometric "
            f"{_PHOTOMETRIC.get(lay.photometric, lay.photometric)}) that mmdata does not read as an image (it reads "
            f"grey, RGB, RGBA and CMYK images; Pillow does not open this layout); {BANDS_ROUTE}")


def _pil_image(d: bytes) -> tuple[int, int, str, int]:
    from PIL import Image

    from mmdata.codecs import _pil_orientation as orientation_of

    from mmdata.codecs import _pillow_bomb_quiet

    try:
        with _pillow_bomb_quiet(), Image.open(io.BytesIO(d)) as im:
            h, w, mode, bands = im.height, im.width, im.mode, len(im.getbands())
            orientation = orientation_of(im)  # what decode_image applies (to the first frame)
            tags = getattr(im, "tag_v2", None)
            if tags is not None and orientation >= 5 and (w, h) == (tags.get(257), tags.get(256)) != (w, h)[::-1]:
                orientation = 1  # a TIFF Pillow (>= 11.1) turns itself: its size is the displayed one already
    except Exception as exc:  # noqa: BLE001 - any failure to open is a corrupt file here
        why = _describe(exc)
        raise CorruptMedia(_multiband(d, why) or f"not an image Pillow can open ({why})") from None
    if orientation >= 5:
        h, w = w, h
    return h, w, mode, bands


def probe_image_py(data: bytes) -> tuple[int, int, str, int]:
    """(height, width, Pillow mode, channels) of an image, checked; raises :class:`CorruptMedia`.

    Height and width are as the image is shown: swapped when its EXIF orientation (5-8) turns it a
    quarter, so they match the tensor :func:`mmdata.codecs.decode_image` gives.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> probe_image_py(image_bytes(0, size=(24, 32)))
        (24, 32, 'RGB', 3)
    """
    if not data:  # not "a format Pillow cannot identify"
        raise CorruptMedia(EMPTY_FILE)
    if data[:8] == _PNG_SIG:
        return _png(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    return _pil_image(data)


# ---- audio --------------------------------------------------------------------------------------


def _flac_frame_header(d: bytes, p: int, end: int, fixed_block: int) -> tuple[int, int] | None:
    """(first sample, block size) of a FLAC frame header at ``p`` whose CRC-8 matches, else None."""
    if end - p < 6:
        return None
    b2, b3 = d[p + 2], d[p + 3]
    bs_code, sr_code = b2 >> 4, b2 & 15
    if bs_code == 0 or sr_code == 15 or (b3 >> 4) > 10 or (b3 & 1) or ((b3 >> 1) & 7) == 3:
        return None
    q = p + 4
    first = d[q]
    if first < 0x80:
        extra, value = 0, first
    elif first >= 0xC0 and first < 0xFE:
        extra = 1 if first < 0xE0 else 2 if first < 0xF0 else 3 if first < 0xF8 else 4 if first < 0xFC else 5
        value = first & (0x3F >> extra)
    elif first == 0xFE:
        extra, value = 6, 0
    else:
        return None
    variable = d[p + 1] & 1
    if extra > (6 if variable else 5) or end - q < 1 + extra:
        return None
    for k in range(1, extra + 1):
        c = d[q + k]
        if c & 0xC0 != 0x80:
            return None
        value = (value << 6) | (c & 0x3F)
    q += 1 + extra
    if bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code == 6:
        if end - q < 1:
            return None
        block = d[q] + 1
        q += 1
    elif bs_code == 7:
        if end - q < 2:
            return None
        block = ((d[q] << 8) | d[q + 1]) + 1
        q += 2
    else:
        block = 256 << (bs_code - 8)
    q += 1 if sr_code == 12 else 2 if sr_code in (13, 14) else 0
    if end - q < 1 or _crc8(d[p:q]) != d[q]:
        return None
    return (value if variable else value * fixed_block), block


#: how many FLAC sync codes the search for the last frame tries (``_pack.c`` ``flac()`` keeps the last 64)
_FLAC_CANDIDATES = 64


def _flac(d: bytes) -> tuple[int, int, int]:
    n = len(d)
    info = flac_streaminfo(d)
    if n < 42 or info is None or d[5:8] != b"\x00\x00\x22":
        raise CorruptMedia("FLAC without a STREAMINFO block")
    max_block = (d[10] << 8) | d[11]
    max_frame = int.from_bytes(d[15:18], "big")
    rate, channels, total = info
    if rate == 0:
        raise CorruptMedia("FLAC with sample rate 0")
    pos = 4
    while True:
        if n - pos < 4:
            raise CorruptMedia("truncated FLAC: the file ends inside its metadata")
        last = d[pos] & 0x80
        length = int.from_bytes(d[pos + 1:pos + 4], "big")
        if length > n - pos - 4:
            raise CorruptMedia("truncated FLAC: a metadata block runs past the end of the file")
        pos += 4 + length
        if last:
            break
    end = n
    if end - pos >= 128 and d[end - 128:end - 125] == b"TAG":  # an ID3v1 tag after the audio
        end -= 128
    if end == pos:  # libsndfile cannot open a FLAC without frames either
        raise CorruptMedia(f"FLAC without audio frames (STREAMINFO declares {total} samples)")
    # the last frame starts within max_frame bytes of the end; try a few headers (a header-like byte
    # run inside the last frame's data passes its CRC-8 about once in 256)
    # At most _FLAC_CANDIDATES sync codes (FF F8 / FF F9) from the end back, parsed or not, as the C probe:
    # a crafted run of sync codes that are no frame headers must not make the search quadratic (QA28). Each
    # of the two sync codes is searched from its own last hit, so every byte is scanned at most twice.
    lo = max(pos, end - max_frame - 16) if max_frame else pos
    found = None
    view = memoryview(d)
    tries = 16
    at = {0xF8: d.rfind(b"\xff\xf8", lo, end), 0xF9: d.rfind(b"\xff\xf9", lo, end)}
    for _ in range(_FLAC_CANDIDATES):
        p = max(at.values())
        if p < 0 or not tries:
            break
        code = d[p + 1]
        at[code] = d.rfind(bytes((0xFF, code)), lo, p + 1)
        head = _flac_frame_header(d, p, end, max_block)
        if head is not None:
            if _crc16(view[p:end]) == 0:
                found = head
                break
            tries -= 1
    if found is None:
        raise CorruptMedia("truncated or corrupt FLAC: the last audio frame is incomplete (no frame ends the file "
                           "with a matching CRC-16)")
    stop = found[0] + found[1]
    if total and stop != total:
        raise CorruptMedia(f"truncated FLAC: the audio ends at sample {stop}, STREAMINFO declares {total}")
    return stop, rate, channels


#: the data chunk sizes a WAV writer puts in a header it cannot go back to fix (it writes to a pipe or a
#: stream): 0xFFFFFFFF (ffmpeg, most streaming writers), 0x7FFFFFFF (arecord), 0x7FFFF000 (sox's MS_UNSPEC,
#: which it rounds down to whole frames: see :func:`wav_size_unknown`), and 0 (a header written first and
#: never finalised). libsndfile reads the first three to the end of the file; a 0 it reads as no audio.
WAV_PLACEHOLDERS = (0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000, 0)


def _chunk_header(b: bytes, avail: int) -> bool:
    """Whether 8 bytes are a RIFF chunk header: a printable four-character id, a size that fits in ``avail``."""
    return len(b) == 8 and all(0x20 <= c <= 0x7E for c in b[:4]) and int.from_bytes(b[4:], "little") <= avail - 8


def wav_size_unknown(size: int, avail: int, block: int, after: bytes) -> bool:
    """Whether a WAV ``data`` chunk's declared ``size`` is a placeholder for "to the end of the file".

    The rule (the same in ``_pack.c``): the chunk is the last one and the size is one a streaming writer
    leaves (:data:`WAV_PLACEHOLDERS`) — one of them larger than the ``avail`` bytes after the chunk
    header (sox's 0x7FFFF000 may be rounded down to a multiple of the ``block`` align), or 0 with at least
    a frame after the header that is no chunk header (``after``: the 8 bytes there). The audio is then
    ``avail`` bytes, read in whole frames. Any other size past the end is a cut file (refused); a 0 followed
    by a chunk is an empty data chunk.

    Example:
        >>> wav_size_unknown(0x7FFFFFFF, 16000, 2, b""), wav_size_unknown(0x7FFFEFFF, 16000, 3, b"")
        (True, True)
        >>> wav_size_unknown(0x7FFFFFFE, 16000, 2, b""), wav_size_unknown(0, 16000, 2, b"LIST\\x04\\x00\\x00\\x00")
        (False, False)
    """
    if size > avail:
        return size in (0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000, 0x7FFFF000 - 0x7FFFF000 % block)
    return size == 0 and avail >= block and not _chunk_header(after, avail)


def _wav_data(d: bytes) -> tuple[tuple[int, int, int, int], int, int, bool] | None:
    """The fmt chunk's (tag, channels, rate, block align), the data chunk's offset, its size in bytes
    (the bytes to the end of the file for a placeholder) and whether that size was a placeholder
    (:func:`wav_size_unknown`), of a PCM / float / A-law / mu-law WAV; None for other encodings."""
    n = len(d)
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while n - pos >= 8:
        cid = d[pos:pos + 4]
        size = int.from_bytes(d[pos + 4:pos + 8], "little")
        avail = n - pos - 8
        if cid == b"fmt ":
            if size < 16 or size > avail:
                raise CorruptMedia("WAV with a truncated fmt chunk")
            tag, channels, rate, _, block = struct.unpack_from("<HHIIH", d, pos + 8)
            if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
                tag = int.from_bytes(d[pos + 32:pos + 34], "little") if size >= 40 else 0
            if channels == 0 or rate == 0 or block == 0:
                raise CorruptMedia(f"WAV fmt chunk with {channels} channels, rate {rate}, block size {block}")
            fmt = (tag, channels, rate, block)
        elif cid == b"data":
            if fmt is None:
                raise CorruptMedia("WAV data chunk before its fmt chunk")
            if fmt[0] not in _WAV_LINEAR:
                return None
            unknown = wav_size_unknown(size, avail, fmt[3], d[pos + 8:pos + 16])
            if unknown:
                size = avail  # a header never finalised (WAV_PLACEHOLDERS): the audio runs to the end of the file
            elif size > avail:
                raise CorruptMedia(f"truncated WAV: the data chunk declares {size} bytes, the file holds {avail}")
            if size < fmt[3]:  # as FLAC: audio of no frame is no audio (and resampling it fails later)
                raise CorruptMedia(f"WAV without audio frames (its data chunk holds {size} bytes)")
            return fmt, pos, size, unknown
        if size > avail:
            raise CorruptMedia(f"truncated WAV: chunk {_chunk_name(cid)} runs past the end of the file")
        pos += 8 + size + (size & 1)
    raise CorruptMedia("WAV without a data chunk" if fmt else "WAV without fmt and data chunks")


def _wav(d: bytes) -> tuple[int, int, int] | None:
    """(frames, rate, channels) of a PCM / float / A-law / mu-law WAV; None for other encodings."""
    got = _wav_data(d)
    if got is None:
        return None
    (_, channels, rate, block), _, size, _ = got
    return size // block, rate, channels


def wav_finalised(data: bytes) -> bytes:
    """A WAV whose data chunk size is a streaming writer's placeholder (:func:`wav_size_unknown`) with the
    size it stands for written in (the whole frames to the end of the file), so that libsndfile reads
    the frames :func:`probe_audio` counts (it reads a 0 as no audio); any other bytes unchanged (not
    copied). Raises :class:`CorruptMedia` for a damaged WAV, as :func:`probe_audio_py` does.

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> wav = audio_bytes(0, seconds=0.25, sample_rate=8000, fmt="wav")
        >>> i = wav.find(b"data") + 4
        >>> fixed = wav_finalised(wav[:i] + bytes(4) + wav[i + 4:])
        >>> fixed == wav, wav_finalised(wav) is wav
        (True, True)
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    got = _wav_data(data)
    if got is None or not got[3]:
        return data
    (_, _, _, block), pos, size, _ = got
    size -= size % block
    return data[:pos + 4] + size.to_bytes(4, "little") + data[pos + 8:]


_WAV_SUBTYPES = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32", (3, 32): "FLOAT",
                 (3, 64): "DOUBLE", (6, 8): "ALAW", (7, 8): "ULAW"}


def audio_subtype(data: bytes) -> str | None:
    """The sample format of a WAV or FLAC member, named as soundfile names it (``PCM_16``, ``PCM_24``, ``FLOAT``,
    ...), from its header alone (the fmt chunk's tag and bits per sample; FLAC's STREAMINFO bits); None for
    other formats or a header that does not say. Cheap: what the shard's card counts per dataset (QA38
    bioacoustics #7: 16-bit, 24-bit and float recorders mixed was invisible).

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> audio_subtype(audio_bytes(0, fmt="wav")), audio_subtype(audio_bytes(0, fmt="flac")), audio_subtype(b"x")
        ('PCM_16', 'PCM_16', None)
    """
    if data[:4] == b"fLaC":
        if len(data) < 26 or data[4] & 0x7F != 0:
            return None
        bits = ((int.from_bytes(data[18:26], 'big') >> 36) & 0x1F) + 1
        return "PCM_S8" if bits == 8 else f"PCM_{bits}"  # soundfile's name of 8-bit FLAC (QA38 review b #2)
    # RF64 / BW64 (a WAV past 4 GB: a ds64 chunk first, then the same fmt chunk) counted too, and a fmt chunk after
    # large junk / bext chunks (only chunk headers are read, 64 of them at most) (QA39 security #6)
    if data[:4] not in (b"RIFF", b"RF64", b"BW64") or data[8:12] != b"WAVE":
        return None
    p, n = 12, len(data)
    for _ in range(64):
        if p + 8 > n:
            break
        cid, size = data[p:p + 4], int.from_bytes(data[p + 4:p + 8], "little")
        if cid == b"fmt ":
            if size < 16 or p + 24 > len(data):
                return None
            tag, bits = int.from_bytes(data[p + 8:p + 10], "little"), int.from_bytes(data[p + 22:p + 24], "little")
            if tag == 0xFFFE and size >= 40 and p + 34 <= len(data):  # WAVE_FORMAT_EXTENSIBLE: the GUID's tag
                tag = int.from_bytes(data[p + 32:p + 34], "little")
            return _WAV_SUBTYPES.get((tag, bits))
        p += 8 + size + (size & 1)
    return None


def wav_unfinished(data: bytes) -> bool:
    """Whether ``data`` is a WAV whose data chunk declares 0 bytes with the audio after it (a header written first
    and never finalised: the recorder's battery died, the program was killed): mmdata reads its frames
    (:func:`wav_size_unknown`), but libsndfile — soundfile, torchaudio, HF ``datasets`` — reads it as no audio, so
    the member published as read is empty to every other reader (QA38 bioacoustics #1). The other placeholders
    (``0xFFFFFFFF`` ...) libsndfile reads to the end of the file: False for them. Only the header is parsed.

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> wav = audio_bytes(0, seconds=0.25, sample_rate=8000, fmt="wav")
        >>> i = wav.find(b"data") + 4
        >>> wav_unfinished(wav[:i] + bytes(4) + wav[i + 4:]), wav_unfinished(wav)
        (True, False)
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    try:
        got = _wav_data(data)
    except CorruptMedia:
        return False
    if got is None or not got[3]:
        return False
    return data[got[1] + 4:got[1] + 8] == bytes(4)


def wav_unfinished_warning(count: int, of: int, examples: list[str]) -> str | None:
    """The shard's warning on ``count`` (of ``of``) WAV members whose header was never finalised
    (:func:`wav_unfinished`), naming up to three ``examples``; None for none.

    Example:
        >>> print(wav_unfinished_warning(1, 5, ["MYOLUC_a.wav"]))  # doctest: +ELLIPSIS
        1 WAV member (of 5 audio members) has a header never finalised (the data chunk declares 0 bytes, the audio after it: e.g. MYOLUC_a.wav): mmdata reads its frames, but soundfile / torchaudio / HF datasets read none ...
    """
    if not count:
        return None
    one = count == 1
    return (f"{count} WAV member{'s' * (not one)} (of {of} audio members) ha{'s' if one else 've'} a header never "
            f"finalised (the data chunk declares 0 bytes, the audio after it: e.g. {', '.join(examples[:3])}): mmdata "
            f"reads {'its' if one else 'their'} frames, but soundfile / torchaudio / HF datasets read none from the "
            f"shard member; write the size into the source files (only those 4 bytes change) and shard again: "
            f"`python -c \"import sys; from mmdata.shards.mediainfo import wav_finalised as f; "
            f"[open(p, 'r+b').write(f(open(p, 'rb').read())) for p in sys.argv[1:]]\" FILE.wav ...`")


#: AIFC compression types whose frames are ``sound bytes // (channels x bytes per sample)``: the bytes per
#: sample (None: from the COMM chunk's sample size); other types (IMA ADPCM, ...) go to libsndfile
_AIFC_LINEAR = {b"NONE": None, b"twos": None, b"sowt": None, b"raw ": None, b"in24": 3, b"in32": 4, b"42ni": 4,
                b"fl32": 4, b"FL32": 4, b"fl64": 8, b"FL64": 8, b"ulaw": 1, b"ULAW": 1, b"alaw": 1, b"ALAW": 1}


def _extended(b: bytes) -> float:
    """An IEEE 754 80-bit extended float (AIFF's sample rate): sign and 15-bit exponent, 64-bit mantissa."""
    exp = int.from_bytes(b[:2], "big")
    mant = int.from_bytes(b[2:10], "big")
    if exp & 0x7FFF == 0x7FFF:
        return float("nan")
    value = mant * 2.0 ** ((exp & 0x7FFF) - 16383 - 63) if mant else 0.0
    return -value if exp & 0x8000 else value


def _aiff(d: bytes) -> tuple[int, int, int] | None:
    """(frames, rate, channels) of an uncompressed (or A-law / mu-law) AIFF / AIFC whose ``SSND`` chunk
    holds the frames its ``COMM`` chunk declares (libsndfile reads a cut one short, without an error);
    None for other encodings (libsndfile's header then decides)."""
    n = len(d)
    pos = 12
    comm: tuple[int, int, int, float] | None = None
    sound: int | None = None
    while n - pos >= 8:
        cid = d[pos:pos + 4]
        size = int.from_bytes(d[pos + 4:pos + 8], "big")
        avail = n - pos - 8
        if cid == b"COMM":
            if size < 18 or size > avail or (d[8:12] == b"AIFC" and size < 22):
                raise CorruptMedia("AIFF with a truncated COMM chunk")
            channels, frames, bits = struct.unpack_from(">hIh", d, pos + 8)
            rate = _extended(d[pos + 16:pos + 26])
            kind = d[pos + 26:pos + 30] if d[8:12] == b"AIFC" else b"NONE"
            if kind not in _AIFC_LINEAR:
                return None
            width = _AIFC_LINEAR[kind] or (bits + 7) // 8
            if channels <= 0 or width <= 0 or not rate >= 1:  # also NaN
                raise CorruptMedia(f"AIFF COMM chunk with {channels} channels, rate {rate:g}, {bits}-bit samples")
            comm = (channels, frames, width, rate)
        elif cid == b"SSND":
            if size > avail:
                raise CorruptMedia(f"truncated AIFF: the SSND chunk declares {size} bytes, the file holds {avail}")
            offset = int.from_bytes(d[pos + 8:pos + 12], "big") if size >= 8 else 0
            sound = max(size - 8 - offset, 0)
        elif size > avail:
            raise CorruptMedia(f"truncated AIFF: chunk {_chunk_name(cid)} runs past the end of the file")
        pos += 8 + size + (size & 1)
    if comm is None:
        raise CorruptMedia("AIFF without a COMM chunk")
    channels, frames, width, rate = comm
    if frames == 0:  # as WAV: audio of no frame is no audio
        raise CorruptMedia("AIFF without audio frames (its COMM chunk declares 0 sample frames)")
    need = frames * channels * width
    if sound is None:
        raise CorruptMedia(f"truncated AIFF: no SSND chunk holds the {frames} frames its COMM chunk declares")
    if sound < need:
        raise CorruptMedia(f"truncated AIFF: the COMM chunk declares {frames} frames ({need} bytes), the SSND chunk "
                           f"holds {sound} bytes")
    return frames, int(rate), channels


_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_NIST_FIELD = re.compile(rb"^(\w+) -i (\d{1,18})$", re.M)  # a longer number is no length (int() refuses 4300+ digits)


def declared_audio_header(d: bytes) -> bool:
    """Whether :func:`probe_audio` checks the length these bytes' header declares before libsndfile reads
    them (libsndfile reads a cut one short, without an error): WAV, AIFF, and Sun ``.au``, NIST SPHERE,
    Wave64 and RF64 (:func:`_declared_length`)."""
    return (d[:4] in (b".snd", b"RF64") or d[:8] == b"NIST_1A\n" or d[:4] == b"riff"
            or (d[:4] == b"RIFF" and d[8:12] == b"WAVE") or (d[:4] == b"FORM" and d[8:12] in (b"AIFF", b"AIFC")))


def _declared_length(d: bytes) -> None:
    """Raise :class:`CorruptMedia` when a Sun / NeXT (``.au``), NIST SPHERE, Wave64 or RF64 header declares
    more audio bytes than the file holds (a cut file: libsndfile reads it short, without an error). A length
    the header leaves open (AU's 0xFFFFFFFF, an RF64 ds64 size of 0) is not checked."""
    n = len(d)
    if d[:4] == b".snd" and n >= 24:
        offset, size = struct.unpack_from(">II", d, 4)
        if size != 0xFFFFFFFF and offset + size > n:
            raise CorruptMedia(f"truncated AU: the header declares {size} bytes of audio, the file holds "
                               f"{max(n - offset, 0)}")
    elif d[:8] == b"NIST_1A\n" and n >= 16:
        head = int(d[8:16].strip() or b"0") if d[8:16].strip().isdigit() else 0
        fields = {k.decode(): int(v) for k, v in _NIST_FIELD.findall(d[16:head])}
        coding = re.search(rb"^sample_coding -s\d+ (\S+)$", d[16:head], re.M)
        if coding is not None and coding.group(1) not in (b"pcm", b"ulaw", b"mu-law", b"alaw"):
            return  # shorten-compressed or another coding: libsndfile's header decides
        need = fields.get("sample_count", 0) * fields.get("channel_count", 1) * fields.get("sample_n_bytes", 0)
        if head and need and head + need > n:
            raise CorruptMedia(f"truncated NIST SPHERE: the header declares {fields['sample_count']} samples "
                               f"({need} bytes), the file holds {max(n - head, 0)} bytes")
    elif d[:4] == b"riff" and n >= 40:
        pos = 40
        while n - pos >= 24:
            size = int.from_bytes(d[pos + 16:pos + 24], "little")
            if d[pos:pos + 16] == _W64_DATA:
                if size > n - pos:
                    raise CorruptMedia(f"truncated W64: the data chunk declares {size - 24} bytes, the file holds "
                                       f"{n - pos - 24}")
                return
            if size < 24:
                return  # malformed: libsndfile names it
            pos += (size + 7) & ~7
    elif d[:4] == b"RF64" and n >= 48 and d[12:16] == b"ds64":
        data_size = int.from_bytes(d[28:36], "little")
        pos = 12
        while n - pos >= 8:
            size = int.from_bytes(d[pos + 4:pos + 8], "little")
            if d[pos:pos + 4] == b"data":
                if size == 0xFFFFFFFF:
                    size = data_size
                if size and size > n - pos - 8:
                    raise CorruptMedia(f"truncated RF64: the data chunk declares {size} bytes, the file holds "
                                       f"{n - pos - 8}")
                return
            pos += 8 + size + (size & 1)


def _sf_audio(d: bytes) -> tuple[int, int, int]:
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(d))
    except Exception as exc:  # noqa: BLE001 - any failure to open is a corrupt file here
        raise CorruptMedia(f"not audio soundfile can open ({_describe(exc)})") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise CorruptMedia(f"audio with sample rate {info.samplerate} and {info.channels} channels")
    if info.frames <= 0:
        raise CorruptMedia(f"{info.format or 'audio'} without audio frames ({info.frames} frames)")
    return int(info.frames), int(info.samplerate), int(info.channels)


def probe_audio_py(data: bytes) -> tuple[int, int, int]:
    """(frames, sample rate, channels) of an audio file, checked; raises :class:`CorruptMedia`.

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> probe_audio_py(audio_bytes(0, seconds=0.25, sample_rate=8000))
        (2000, 8000, 1)
    """
    if not data:  # not libsndfile's "Format not recognised"
        raise CorruptMedia(EMPTY_FILE)
    if data[:4] == b"fLaC":
        return _flac(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        got = _wav(data)
        if got is not None:
            return got
    elif data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        got = _aiff(data)
        if got is not None:
            return got
    else:
        _declared_length(data)
    return _sf_audio(data)


# ---- the C fast path, and the checks the writer runs ----------------------------------------------


def _fast(name: str) -> Any:
    from mmdata.shards.tarwrite import _pack

    return getattr(_pack, name, None) if _pack is not None else None


_C_IMAGE = _fast("probe_image")
_C_AUDIO = _fast("probe_audio")


def probe_image(data: bytes) -> tuple[int, int, str, int]:
    """:func:`probe_image_py`, in C when the module is built and the file is a well-formed PNG / JPEG."""
    if _C_IMAGE is not None:
        got = _C_IMAGE(data)
        if got is not None:
            return got
    return probe_image_py(data)


def probe_audio(data: bytes) -> tuple[int, int, int]:
    """:func:`probe_audio_py`, in C when the module is built and the file is a well-formed FLAC / WAV."""
    if _C_AUDIO is not None:
        got = _C_AUDIO(data)
        if got is not None:
            return got
    return probe_audio_py(data)


def check_json(data: bytes) -> None:
    """Raise :class:`CorruptMedia` unless ``data`` is UTF-8 JSON. A document nested deeper than Python's JSON
    parser recurses (``[`` x 5000) is refused like any bad JSON, not a RecursionError that stopped the whole
    shard job (QA39 security #1)."""
    import json

    try:
        json.loads(data.decode("utf-8-sig"))  # read back without a leading BOM (codecs.decode_text)
    except UnicodeDecodeError as exc:
        raise CorruptMedia(f"JSON is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise CorruptMedia(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise CorruptMedia("not valid JSON (nested too deep: arrays / objects inside each other thousands of levels "
                           "down; refused)") from None


#: numpy's ``max_header_size`` default (``np.lib.format.read_array_header_*``): a longer ``.npy`` header is refused
_NPY_HEADER_MAX = 10_000


class NpyFacts(NamedTuple):
    """What :func:`check_npy` finds in one ``.npy`` member: ``dtype`` (its header's dtype, as ``str(dtype)``:
    ``"float32"``, ``">f8"`` for a big-endian one) and, when decoded (``--check decode``), ``non_finite``: (how many
    values are NaN or infinite, how many values it holds, the index of the first) or None."""

    dtype: str
    non_finite: tuple[int, int, tuple[int, ...]] | None = None


def check_npy(data: bytes, decode: bool = False) -> NpyFacts:
    """Raise :class:`CorruptMedia` unless ``data`` is a ``.npy`` array readable without pickle, whole; its
    :class:`NpyFacts` (the dtype, read from the header; with ``decode`` (``--check decode``) the array is also
    decoded in full and its NaN / infinite values counted — counted, not refused: a depth map marks missing pixels
    with NaN on purpose, so the shard keeps such an array and warns of it per field, QA35 review media #3).

    Example:
        >>> import numpy as np; buf = io.BytesIO(); np.save(buf, np.array([[0.0, np.nan]], np.float32))
        >>> check_npy(buf.getvalue()).dtype, check_npy(buf.getvalue(), decode=True).non_finite
        ('float32', (1, 2, (0, 1)))
    """
    import numpy as np

    fmt = np.lib.format
    f = io.BytesIO(data)
    if data[:6] == b"\x93NUMPY" and len(data) >= 12:
        # numpy's own refusal of a long header advises "allow_pickle=True": not for an untrusted file (QA39 security #7)
        size = int.from_bytes(data[8:10] if data[6] == 1 else data[8:12], "little")
        if size > _NPY_HEADER_MAX:
            raise CorruptMedia(f"a .npy header of {size:,} bytes (over numpy's {_NPY_HEADER_MAX:,}-byte limit: a "
                               "crafted or damaged file); refused")
    try:
        version = fmt.read_magic(f)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError / SyntaxError / OSError here
        raise CorruptMedia(f"not a .npy array ({_describe(exc)})") from None
    if dtype.hasobject:
        raise CorruptMedia("a .npy of Python objects (needs pickle to load: object arrays are refused); save a numeric "
                           "array instead, e.g. np.save(f, np.asarray(values, dtype=np.float32))")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - f.tell() != need:
        raise CorruptMedia(f"truncated .npy: shape {shape} of {dtype} needs {need} bytes, the file holds "
                           f"{len(data) - f.tell()}")
    found = npy_non_finite(data) if decode else None
    # the dtype as read (the reader gives native byte order): a big-endian '>f4' is float32, no dtype of its own in a
    # dtype mix (QA37 sign #6: "2 dtypes (10 float32, 2 >f4)" and a false collate warning)
    return NpyFacts(str(dtype.newbyteorder("=")) if dtype.byteorder in "<>" else str(dtype), found)


def npy_non_finite(data: bytes) -> tuple[int, int, tuple[int, ...]] | None:
    """Decode a ``.npy`` member in full: (how many values are NaN or infinite, how many it holds, the index of the
    first) for a float array holding any, else None; raise :class:`CorruptMedia` when it does not decode."""
    from mmdata.codecs import DecodeError, decode_npy, non_finite_array

    try:
        arr = decode_npy(data)
    except (DecodeError, ValueError, OSError) as exc:
        raise CorruptMedia(f"not a .npy array ({_describe(exc)})") from None
    found = non_finite_array(arr)
    return None if found is None else (found[0], int(arr.size), found[1])


def non_finite_npy_warning(field: str, arrays: int, of: int, member: str, first: tuple[int, int, tuple[int, ...]],
                           where: str = "the shard keeps") -> str:
    """The warning for the float ``.npy`` arrays of ``field`` holding NaN or infinite values: ``arrays`` of ``of``,
    the first ``member`` (``first``: :func:`npy_non_finite`'s). Such arrays are kept (a depth map marks missing
    pixels with NaN; an IMU window from a driver glitch holds one too): said once per field, not refused.

    Example:
        >>> non_finite_npy_warning("depth", 4, 4, "s0.depth.npy", (1, 64, (0, 0)))[:95]
        "field 'depth': 4 of 4 arrays hold NaN or infinite values (e.g. 's0.depth.npy': 1 of 64 values, "
    """
    from mmdata.checks import plural

    return (f"field {field!r}: {arrays} of {plural(of, 'array')} hold{'s' if arrays == 1 else ''} NaN or infinite "
            f"values (e.g. {member!r}: {first[0]} of {first[1]} values, the first at index {list(first[2])}); "
            f"{where} them as they are (a depth map may mark missing pixels with NaN on purpose): mask them "
            f"(torch.isfinite / torch.nan_to_num) before a loss, or fix the files if they are a sensor glitch")


# ---- 16-bit images holding few significant bits, float / signed images, several frames ----------------------

#: first bytes of formats that may hold 16-bit (or 32-bit integer / float) samples besides PNG: TIFF, PGM / PPM
_DEEP_MAGIC = (b"II*\x00", b"MM\x00*", b"P5", b"P6", b"P2", b"P3")
#: first bytes of formats that may hold several frames besides TIFF and PNG (APNG): GIF, WebP (animated)
_FRAMES_MAGIC = (b"GIF87a", b"GIF89a", b"RIFF")
#: how far into a PNG its ``acTL`` chunk (APNG: before the image data) is looked for
_ACTL_WITHIN = 1 << 16
#: how many example sample keys each of the card's image-value warnings keeps
DEEP_EXAMPLES = 3


class DepthFacts(NamedTuple):
    """What :func:`image_depth` finds in one image: ``kind`` ``"16"`` (16-bit or non-negative integer
    samples: ``low`` / ``high`` their range), ``"signed"`` (integer samples outside 0-65535, which the reader
    clips), ``"float"`` (float samples; ``low`` / ``high`` over the finite ones) or ``"8"`` (8-bit samples,
    not read); ``frames``: the frames / pages its header declares (the reader reads the first); ``top``: for
    ``"16"``, the :data:`mmdata.codecs.DARK_PERCENTILE` of its values (nearest rank: the value that all but the
    brightest 0.1% lie at or under), which the dark-image warning judges by; for ``"float"``, that of its finite
    values only when the image is read as 0-255 because of a few outliers (one value, or at most 0.1%, above
    :data:`mmdata.codecs.FLOAT_UNIT_MAX`) while its other values are read as unit range or ``faint``: the largest
    of its other values; None: not measured (``high``).
    ``nonfinite``: a float image's NaN / infinite samples (of ``samples``); ``bands``: the samples per pixel of a
    TIFF holding more bands than the reader reads (0: none past them); ``over``: a float image read as unit range,
    its values above 1 (clipped to 255 when read, of ``samples``); ``faint``: a float image read as 0-255 whose
    values (a few outliers above it aside: ``top``) all lie at or under :data:`mmdata.codecs.FLOAT_UNIT_MAX`, more
    than :data:`mmdata.codecs.FLOAT_OVER_SHARE` of them above 1, not all whole numbers (an offset index, 1 +
    reflectance, or a small cloudy tile: it decodes to 0-2 of 255; a class map of whole numbers is not ``faint``)."""

    kind: str
    low: float
    high: float
    frames: int
    top: float | None = None
    nonfinite: int = 0
    samples: int = 0
    bands: int = 0
    over: int = 0
    faint: bool = False


def _maybe_frames(d: bytes) -> bool:
    """Whether ``d`` may hold several frames: a TIFF, a GIF, an APNG, an animated WebP (VP8X flag)."""
    if d[:8] == _PNG_SIG:
        return d.find(b"acTL", 33, _ACTL_WITHIN) > 0
    if d[:4] == b"RIFF":
        return d[8:16] == b"WEBPVP8X" and len(d) > 20 and bool(d[20] & 0x02)
    return d.startswith(_FRAMES_MAGIC) or d[:4] in (b"II*\x00", b"MM\x00*")


def sixteen_bit_candidates(datas: list[bytes]) -> list[int]:
    """Positions of the members that may be 16-bit, float or several-frame images, from their first bytes: a
    PNG whose IHDR gives bit depth 16 (greyscale and colour: Pillow opens 16-bit RGB / RGBA / LA PNGs as 8-bit
    modes, so the index's mode cannot tell) or that has an ``acTL`` chunk (APNG), a TIFF, a PGM / PPM, a GIF,
    an animated WebP. Cheap: the writer calls it on every chunk.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> sixteen_bit_candidates([image_bytes(0, size=(8, 8))])
        []
    """
    try:  # C loops first (~0.1 us a member): almost every chunk has none
        if not (any(map(bytes.count, datas, repeat(b"\x10"), repeat(24), repeat(25)))
                or any(map(bytes.startswith, datas, repeat(_DEEP_MAGIC + _FRAMES_MAGIC)))
                or any(map(bytes.count, datas, repeat(b"acTL"), repeat(33), repeat(_ACTL_WITHIN)))):
            return []
    except TypeError:  # a member that is not bytes: the loop below
        pass
    out = []
    for i, d in enumerate(datas):
        d = bytes(d[:_ACTL_WITHIN]) if d.__class__ is not bytes else d
        if (d[24:25] == b"\x10" and d[:8] == _PNG_SIG) or d[:4].startswith(_DEEP_MAGIC) or _maybe_frames(d):
            out.append(i)
    return out


def _tiff_pages(d: bytes) -> int:
    """The directories (pages) of a TIFF's IFD chain, bounded (a loop or a crafted chain stops the count)."""
    e = "little" if d[:2] == b"II" else "big"
    n, p, seen = len(d), int.from_bytes(d[4:8], e), set()
    while 8 <= p <= n - 2 and p not in seen and len(seen) < 1 << 16:
        seen.add(p)
        q = p + 2 + 12 * int.from_bytes(d[p:p + 2], e)
        if q > n - 4:
            break
        p = int.from_bytes(d[q:q + 4], e)
    return max(len(seen), 1)


def _gif_frames(d: bytes) -> int:
    """The image descriptors of a GIF, from its block structure, bounded in steps; 1 when damaged."""
    n = len(d)
    if n < 13:
        return 1
    p = 13 + ((3 << ((d[10] & 7) + 1)) if d[10] & 0x80 else 0)
    frames = 0
    for _ in range(1 << 20):
        if p >= n or d[p] == 0x3B:
            break
        if d[p] == 0x21:
            p += 2
        elif d[p] == 0x2C:
            if p + 10 > n:
                break
            frames += 1
            flags = d[p + 9]
            p += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1  # + the LZW minimum code size
        else:
            break
        while p < n and d[p]:  # data sub-blocks, each at most 255 bytes
            p += 1 + d[p]
        p += 1
    return max(frames, 1)


def _apng_frames(d: bytes) -> int:
    """The frames of an APNG: its ``acTL`` count (before the image data), at most the ``fcTL`` chunks that follow
    (one per frame): a header's count alone (a hostile 0xFFFFFFFF) is not what the card reports. A chunk walk
    bounded in steps (:data:`_IMAGE_CHUNKS`); 1 when damaged or without frame control chunks."""
    declared = controls = 0
    for p, _, kind in _png_chunks(d):
        if kind == b"acTL" and not controls and p + 12 <= len(d):
            declared = int.from_bytes(d[p + 8:p + 12], "big")
        elif kind == b"fcTL":
            controls += 1
            if controls >= declared:
                break
        elif kind == b"IEND" or (kind == b"IDAT" and not declared):  # acTL comes before the image data
            break
    return max(min(declared, controls), 1)


def image_frames(data: bytes) -> int:
    """The frames / pages an image's header declares (1 for a still image or damaged bytes): a TIFF's
    directory chain, an APNG's ``acTL`` frame count (as far as its ``fcTL`` chunks hold them), a GIF's images, an animated WebP's ``ANMF`` chunks. The
    reader (:func:`mmdata.codecs.decode_image`) reads the first only. Headers only, bounded.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> image_frames(image_bytes(0, size=(8, 8)))
        1
    """
    d = bytes(data) if data.__class__ is not bytes else data
    try:
        if d[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_pages(d)
        if d[:8] == _PNG_SIG:
            return _apng_frames(d) if d.find(b"acTL", 33, _ACTL_WITHIN) > 0 else 1
        if d.startswith(_FRAMES_MAGIC[:2]):
            return _gif_frames(d)
        if d[:4] == b"RIFF" and d[8:12] == b"WEBP":
            p, n, frames = 12, len(d), 0
            for _ in range(_IMAGE_CHUNKS):
                if p + 8 > n:
                    break
                size = int.from_bytes(d[p + 4:p + 8], "little")
                frames += d[p:p + 4] == b"ANMF"
                p += 8 + size + (size & 1)
            return max(frames, 1)
    except (IndexError, ValueError):  # hostile bytes: a still image as far as this count goes
        return 1
    return 1


def _decoded(data: bytes) -> Any:
    """The samples of a 16-bit, integer or float image as stored (numpy), or None (8-bit, does not decode)."""
    import numpy as np

    try:
        import cv2

        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception:  # noqa: BLE001 - Pillow below
        arr = None
    if arr is None or arr.dtype.kind not in "iuf" or arr.dtype == np.uint8:
        from PIL import Image

        from mmdata.codecs import _pillow_bomb_quiet

        try:
            with _pillow_bomb_quiet(), Image.open(io.BytesIO(data)) as im:
                if not (im.mode.startswith("I;16") or im.mode in ("I", "F")):
                    return None
                arr = np.asarray(im)
        except Exception:  # noqa: BLE001 - not an image Pillow decodes: the checks report it
            return None
    if arr.dtype.kind not in "iuf" or arr.dtype.itemsize < 2 or not arr.size:
        return None
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # alpha (often opaque, 65535) says nothing of the colour's bits
        arr = arr[..., :-1]
    return arr


def sixteen_bit_range(data: bytes) -> tuple[int, int] | None:
    """(min, max) over the sample values of a 16-bit image (PNG of bit depth 16, 16-bit TIFF / PGM / PPM, a
    32-bit integer TIFF as the reader takes it: mode ``I``), decoded as stored; None for any other image or
    one that does not decode (its checks report that).

    Example:
        >>> from mmdata.testing import image_bytes
        >>> sixteen_bit_range(image_bytes(0, size=(8, 8))) is None
        True
    """
    if bytes(data[:2]) in (b"P2", b"P3", b"P5", b"P6"):  # PGM / PPM: Pillow scales by the file's maxval, so a
        return None  # 12-bit one (maxval 4095) reads back full range (QA: it was warned, with a harmful rescale)
    arr = _decoded(data)
    if arr is None or arr.dtype.kind == "f":
        return None
    return int(arr.min()), int(arr.max())


def image_depth(data: bytes) -> DepthFacts | None:
    """What the card's image-value warnings need from one image (:class:`DepthFacts`): its sample range
    when it is 16-bit, integer or float, and its frames. None for a still 8-bit image, a PGM / PPM (Pillow
    scales those by their maxval) and bytes that do not decode (their checks report them).

    A TIFF whose samples per pixel exceed the bands the reader gives (an RGBN tile: Photometric RGB and a
    fourth, non-alpha band, which Pillow drops) has ``bands`` set, whatever its depth (QA37 geo #1).

    Example:
        >>> import io, numpy as np
        >>> from PIL import Image
        >>> b = io.BytesIO(); Image.fromarray(np.array([[-1000, 3000]], np.float32), "F").save(b, "TIFF")
        >>> image_depth(b.getvalue())[:5]
        ('float', -1000.0, 3000.0, 1, None)
    """
    import numpy as np

    d = bytes(data) if data.__class__ is not bytes else data
    frames = image_frames(d)
    bands = _bands_past(d)
    deep = (d[:8] == _PNG_SIG and d[24:25] == b"\x10") or d[:4] in (b"II*\x00", b"MM\x00*")
    arr = _decoded(d) if deep else None
    if arr is None:
        return DepthFacts("8", 0, 0, frames, bands=bands) if frames > 1 or bands else None
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr)
        finite = arr[ok]
        bad = int(arr.size - finite.size)
        total = int(arr.size) if bad else 0
        if not finite.size:
            return DepthFacts("float", 0.0, 0.0, frames, None, bad, total, bands)
        low, high = float(finite.min()), float(finite.max())
        from mmdata.codecs import FLOAT_UNIT_MAX, float_unit_range

        unit = float_unit_range(finite)
        over = int(np.count_nonzero(finite > 1.0)) if unit and high > 1.0 else 0
        top = _float_percentile(finite, high)
        peak = high if top is None else top  # a few saturated pixels above 2 aside
        # the rest read bright without those pixels: said by the ``dim`` warning, not as faint
        bright = top is not None and float_unit_range(finite[finite <= FLOAT_UNIT_MAX])
        faint = not unit and not bright and 1.0 < peak <= FLOAT_UNIT_MAX and bool(np.any(finite != np.floor(finite)))
        total = int(arr.size) if bad or over else 0
        return DepthFacts("float", low, high, frames, top, bad, total, bands, over, faint)
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high > 65535:
        return DepthFacts("signed", low, high, frames, bands=bands)
    return DepthFacts("16", low, high, frames, _percentile(arr, high), bands=bands)


def _bands_past(d: bytes) -> int:
    """A TIFF's samples per pixel when they exceed what the reader gives (Pillow's bands, an alpha band counted
    as read), else 0: a 4-band RGBN tile (Photometric RGB, ExtraSamples 0 "unspecified") opens as RGB, its NIR
    band dropped."""
    lay = tiff_layout(d)
    if lay is None or lay.samples < 2:
        return 0
    colour = {2: 3, 6: 3, 5: 4, 8: 3}.get(lay.photometric, 1)
    alpha = 1 if lay.extra[:1] in ((1,), (2,)) else 0
    return lay.samples if lay.samples > colour + alpha else 0


def _float_percentile(finite: Any, high: float) -> float | None:
    """When a float image is read as 0-255 (``high`` above :data:`mmdata.codecs.FLOAT_UNIT_MAX`) because of a few
    outliers (:func:`mmdata.codecs.float_outliers_few`: one value, or at most 0.1% of them, above it: a saturated
    pixel in a reflectance tile) and its other values are not whole numbers only (they would be read as unit range,
    or are ``faint``: not a class map, which is 0-255 anyway), the largest of its other values; None otherwise."""
    import numpy as np

    from mmdata.codecs import FLOAT_UNIT_MAX, float_outliers_few, float_unit_range

    if high <= FLOAT_UNIT_MAX:
        return None
    rest = finite[finite <= FLOAT_UNIT_MAX]
    # one outlier is allowed in a small tile, but not in one of under 100 values (two pixels: half of it)
    if not rest.size or rest.max() <= 0 or not float_outliers_few(int(finite.size - rest.size), int(finite.size)):
        return None
    if not float_unit_range(rest) and not np.any(rest != np.floor(rest)):
        return None  # a class map with a saturated pixel: the clip warning names its range
    return float(rest.max())


def _percentile(arr: Any, high: int) -> int:
    """The :data:`mmdata.codecs.DARK_PERCENTILE` of an integer image's values by nearest rank (``high``, its
    maximum, when it is under :data:`mmdata.codecs.DARK_MAX`: the image is dark whatever the rank says)."""
    import numpy as np

    from mmdata.codecs import DARK_MAX, DARK_PERCENTILE

    flat = arr.reshape(-1)
    k = -(-flat.size * int(DARK_PERCENTILE * 10) // 1000) - 1  # the 0-based nearest rank
    if high < DARK_MAX or k >= flat.size - 1:
        return high
    return int(np.partition(flat, k)[k])


def _clipped(facts: DepthFacts) -> bool:
    """Whether the reader's rule (:func:`mmdata.codecs.image_array`) clips some of the image's values."""
    if facts.kind == "signed":
        return True
    if facts.kind == "float":
        from mmdata.codecs import FLOAT_UNIT_MAX

        if facts.high <= FLOAT_UNIT_MAX:  # unit range (x 255): values above 1 are counted apart (``over``)
            return facts.low < 0
        if facts.top is not None and facts.low >= 0:  # a few outliers: said once, by the ``dim`` warning
            return False
        return not (0 <= facts.low and facts.high <= 255)
    return False


#: the accumulator's entries besides ``low`` / ``clip`` / ``frames`` (QA37 geo), each a list ending in example keys,
#: with how two shards' values at each other position combine: ``over`` [float images read as unit range holding
#: values above 1, their largest value, those values (pixels clipped to 255), all their values], ``faint`` [float
#: images read as 0-255 whose values all lie at or under 2, more than 5% above 1, their largest value], ``dim``
#: [float images read as 0-255 whose values lie almost all at or under 2, the largest such percentile, their largest value], ``nan`` [float images holding NaN / infinite
#: values, those samples, all their samples], ``bands`` [TIFFs with bands past what the reader reads, most bands]
_EXTRA_ACC = {"over": (sum, max, sum, sum), "faint": (sum, max), "dim": (sum, max, max), "nan": (sum, sum, sum), "bands": (sum, max)}


def _extra(acc: dict[str, Any], name: str) -> list[Any]:
    """An accumulator's ``name`` entry (an older job's has none: zeros, no examples; or fewer values: zeros added
    before its examples)."""
    got = acc.get(name)
    if not got:
        return [0] * len(_EXTRA_ACC[name]) + [[]]
    return list(got[:-1]) + [0] * (len(_EXTRA_ACC[name]) + 1 - len(got)) + [got[-1]]


def _add_extra(acc: dict[str, Any], name: str, values: tuple[Any, ...], keys: list[str]) -> None:
    """``acc[name]`` with one image's (or one shard's) ``values`` and example ``keys`` added."""
    old = _extra(acc, name)
    acc[name] = [op((a, b)) for op, a, b in zip(_EXTRA_ACC[name], old, values)] + [(old[-1] + keys)[:DEEP_EXAMPLES]]


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def _new_acc() -> dict[str, Any]:
    return {"low": [0, 0, [], 0, 0], "clip": [0, None, None, []], "frames": [0, 0, []]}


def _as_acc(part: Any) -> dict[str, Any] | None:
    """An accumulator of :func:`merge_sixteen_bit`; a [count, min, max] of an older job's results (one range
    over its 16-bit images) reads as those images, without examples."""
    if not part:
        return None
    if isinstance(part, dict):
        return part
    n, low, top = part
    acc = _new_acc()
    if low < 0 or top > 65535:
        acc["clip"] = [n, low, top, []]
    elif 0 < top < _dark_max():
        acc["low"] = [n, top, [], 0, top]
    return acc


def _dark_max() -> int:
    from mmdata.codecs import DARK_MAX

    return DARK_MAX


def _low(low: list[Any]) -> list[Any]:
    """An accumulator's ``low`` entry with all five parts (an older job's has three: no bright pixels counted)."""
    return [*low, 0, low[1]] if len(low) == 3 else list(low)


def merge_sixteen_bit(acc: dict[str, Any] | None, found: DepthFacts | tuple[int, int] | None,
                      key: str | None = None) -> dict[str, Any] | None:
    """``acc`` with one image added, counted per image: ``low`` ([images, largest percentile, example keys, images
    with brighter pixels above it, their largest value]: 16-bit images whose own
    :data:`mmdata.codecs.DARK_PERCENTILE` is under :data:`mmdata.codecs.DARK_MAX`, 14 significant bits, so they
    decode to 63 of 255 or less, even when a marker pixel is at 65535), ``clip`` ([images, min, max,
    example keys]: float / signed images whose values the reader clips), ``frames`` ([images, most frames,
    example keys]: images of several frames / pages). ``found``: :func:`image_depth`'s facts, or
    :func:`sixteen_bit_range`'s (min, max); ``key``: the sample's key, for the examples.

    Example:
        >>> acc = merge_sixteen_bit(None, (0, 4095), "a")
        >>> merge_sixteen_bit(acc, (0, 65535), "b")["low"]
        [1, 4095, ['a'], 0, 4095]
    """
    if found is None:
        return acc
    facts = found if isinstance(found, DepthFacts) else DepthFacts(
        "signed" if found[0] < 0 or found[1] > 65535 else "16", found[0], found[1], 1)
    acc = _as_acc(acc) or _new_acc()
    ex = [key] if key is not None else []
    top = int(facts.high if facts.top is None else facts.top)
    if facts.kind == "16" and 0 < top < _dark_max():  # all zero: nothing is lost
        low = _low(acc["low"])
        hot = int(facts.high) > top  # a few pixels above the rest (a burned-in marker, a saturated one)
        acc["low"] = [low[0] + 1, max(low[1], top), (low[2] + ex)[:DEEP_EXAMPLES], low[3] + hot,
                      max(low[4], int(facts.high))]
    elif _clipped(facts):
        c = acc["clip"]
        acc["clip"] = [c[0] + 1, facts.low if c[1] is None else min(c[1], facts.low),
                       facts.high if c[2] is None else max(c[2], facts.high), (c[3] + ex)[:DEEP_EXAMPLES]]
    if facts.frames > 1:
        f = acc["frames"]
        acc["frames"] = [f[0] + 1, max(f[1], facts.frames), (f[2] + ex)[:DEEP_EXAMPLES]]
    if facts.kind == "float":
        from mmdata.codecs import FLOAT_UNIT_MAX

        if facts.over:
            _add_extra(acc, "over", (1, facts.high, facts.over, facts.samples), ex)
        elif facts.faint:
            _add_extra(acc, "faint", (1, facts.high if facts.top is None else facts.top), ex)
        elif facts.high > FLOAT_UNIT_MAX and facts.top is not None and facts.top <= FLOAT_UNIT_MAX:
            _add_extra(acc, "dim", (1, facts.top, facts.high), ex)
        if facts.nonfinite:
            _add_extra(acc, "nan", (1, facts.nonfinite, facts.samples), ex)
    if facts.bands:
        _add_extra(acc, "bands", (1, facts.bands), ex)
    return acc


def combine_sixteen_bit(parts: Any) -> dict[str, Any] | None:
    """One accumulator (:func:`merge_sixteen_bit`) from the shards' (None: a shard without such images)."""
    out = None
    for part in parts:
        part = _as_acc(part)
        if part is None:
            continue
        if out is None:
            out = _new_acc()
        low, c, f = _low(out["low"]), out["clip"], out["frames"]
        pl, pc, pf = _low(part["low"]), part["clip"], part["frames"]
        out["low"] = [low[0] + pl[0], max(low[1], pl[1]), (low[2] + pl[2])[:DEEP_EXAMPLES], low[3] + pl[3],
                      max(low[4], pl[4])]
        lows, highs = [v for v in (c[1], pc[1]) if v is not None], [v for v in (c[2], pc[2]) if v is not None]
        out["clip"] = [c[0] + pc[0], min(lows) if lows else None, max(highs) if highs else None,
                       (c[3] + pc[3])[:DEEP_EXAMPLES]]
        out["frames"] = [f[0] + pf[0], max(f[1], pf[1]), (f[2] + pf[2])[:DEEP_EXAMPLES]]
        for name in _EXTRA_ACC:
            if part.get(name):
                got = _extra(part, name)
                _add_extra(out, name, tuple(got[:-1]), got[-1])
    return out


def _examples(keys: list[str]) -> str:
    return f" (e.g. {', '.join(keys)})" if keys else ""


def sixteen_bit_warning(acc: dict[str, Any] | list[int] | None, images: int) -> str | None:
    """The card's warning on the 16-bit images that decode dark: those whose own
    :data:`mmdata.codecs.DARK_PERCENTILE` is under :data:`mmdata.codecs.DARK_MAX` (14 significant bits or fewer).
    Read by the ``v >> 8`` rule (:func:`mmdata.codecs.image_array`) 14-bit values decode to 0-63 of 255, 12-bit
    ones nearly black, under 256 all black. Judged by a high percentile, not the maximum, so a 12-bit scan with a
    burned-in marker at 65535 is named too, with its bright pixels (QA36 medical #3). Counted per image (QA42: a
    dataset-wide maximum let one full-range image hide every 12-bit one); None when there are none. Negative
    values (mode ``I``: not 16-bit data at all) and all-zero images (nothing lost) do not count. ``acc``:
    :func:`merge_sixteen_bit`'s (or an older [count, min, max]).

    Example:
        >>> sixteen_bit_warning([3, 0, 4095], 10)
        '3 16-bit images (of 10) use at most 12 significant bits (max 4095 over them): under the v >> 8 rule they decode nearly black (0-15 of 255); rescale (v << 4) before sharding'
        >>> sixteen_bit_warning([3, 0, 16383], 10)[56:]
        '(max 16383 over them): under the v >> 8 rule they decode dark (0-63 of 255: a quarter of the grey levels); rescale (v << 2) before sharding'
        >>> sixteen_bit_warning([3, 0, 60000], 10) is None
        True
    """
    acc = _as_acc(acc)
    if acc is None or not acc["low"][0]:
        return None
    from mmdata.codecs import DARK_PERCENTILE, LOW_BITS_MAX

    n, top, keys, hot, peak = _low(acc["low"])
    bits = top.bit_length()
    one = n == 1
    them = "it" if one else "them"
    if top < 256:
        what = "all black (0)"
    elif top < LOW_BITS_MAX:
        what = f"nearly black (0-{top >> 8} of 255)"
    else:
        what = f"dark (0-{top >> 8} of 255: {'a quarter' if bits == 14 else 'an eighth' if bits == 13 else 'a part'} " \
               "of the grey levels)"
    if hot:
        rng = (f"{_number(DARK_PERCENTILE)}% of the values of each at most {top}; {'it has' if one else f'{hot} of them have'}"
               f" a few brighter pixels, up to {peak}: a burned-in marker or saturated pixels?")
        # QA36 review F3: a dark night photo with a few street lamps at 65535 lands here too; the advice is for
        # scans whose range is known, and says what it does to the bright pixels
        fix = (f"for scans whose value range is known ({bits}-bit data), rescale (min(v << {16 - bits}, 65535): "
               f"the brighter pixels stay at 65535; or window the values) before sharding; a photo that is simply "
               f"dark (a night scene with a few lights) can ignore this")
    else:
        rng = f"max {top} over {them}"
        fix = f"rescale (v << {16 - bits}) before sharding"
    return (f"{n} 16-bit image{'s' * (not one)} (of {images}) use{'s' * one} at most {bits} significant bits "
            f"({rng}){_examples(keys)}: under the v >> 8 rule {'it' if one else 'they'} decode{'s' * one} {what}; {fix}")


def deep_warnings(acc: dict[str, Any] | list[int] | None, images: int) -> list[str]:
    """The card's warnings on the values and frames of a dataset's images (``acc``: :func:`merge_sixteen_bit`'s,
    over all shards): 16-bit images using 14 bits or fewer (:func:`sixteen_bit_warning`), float / signed images
    whose values the reader clips, images of several frames / pages of which the reader reads the first.

    Example:
        >>> deep_warnings(merge_sixteen_bit(None, DepthFacts("float", -1000.0, 3000.0, 5), "ct0"), 4)[0]
        '1 float / signed image (of 4) holds values outside what the reader maps (-1000..3000 over it) (e.g. ct0): float samples are taken as unit range (v x 255) when they all lie at or under 1 (or up to 2 for at most 5%, not whole numbers), else as 0-255, and signed ones as 0-65535, the rest clipped when read; rescale (window) to 0-255 or 0-65535 before sharding'

    Also (QA37 geo): float images read as unit range holding values above 1 (clipped to 255), float images read
    as 0-255 because a few pixels exceed 2 though their values lie almost all under it (they decode nearly
    black), float images holding NaN / infinite values (NaN decodes as 0), TIFFs holding bands past those the
    reader reads (an RGBN tile's NIR).
    """
    acc = _as_acc(acc)
    if acc is None:
        return []
    out = [w] if (w := sixteen_bit_warning(acc, images)) is not None else []
    n, low, high, keys = acc["clip"]
    if n:
        one = n == 1
        out.append(f"{n} float / signed image{'s' * (not one)} (of {images}) hold{'s' * one} values outside what the "
                   f"reader maps ({_number(low)}..{_number(high)} over {'it' if one else 'them'}){_examples(keys)}: "
                   f"float samples are taken as unit range (v x 255) when they all lie at or under 1 (or up to "
                   f"{_number(_float_unit_max())} for at most {_over_share()}%, not whole numbers), else as 0-255, "
                   f"and signed ones as 0-65535, the rest clipped when read; "
                   f"rescale (window) to 0-255 or 0-65535 before sharding")
    n, most, keys = acc["frames"]
    if n:
        one = n == 1
        out.append(f"{n} image{'s' * (not one)} (of {images}) hold{'s' * one} several frames / pages (up to {most})"
                   f"{_examples(keys)}: the reader reads the first only; split the pages into files (or samples) "
                   f"before sharding to keep them")
    return out + _float_warnings(acc, images)


def _float_unit_max() -> float:
    from mmdata.codecs import FLOAT_UNIT_MAX

    return FLOAT_UNIT_MAX


def _over_share() -> str:
    """:data:`mmdata.codecs.FLOAT_OVER_SHARE` in percent, as the warnings say it."""
    from mmdata.codecs import FLOAT_OVER_SHARE

    return _number(FLOAT_OVER_SHARE * 100)


#: the reader's rule for float images, as the card's warnings say it
_FLOAT_RULE = ("the reader takes a float image as unit range (v x 255) when its finite values all lie at or under 1, "
               "or are not all whole numbers, all at or under {unit} and at most {share}% of them above 1; as 0-255 "
               "otherwise")


def _float_warnings(acc: dict[str, Any], images: int) -> list[str]:
    """:func:`deep_warnings`' warnings on float images' values and on bands the reader does not read (QA37 geo)."""
    from mmdata.codecs import DARK_PERCENTILE

    out: list[str] = []
    share = _over_share()
    rule = _FLOAT_RULE.format(unit=_number(_float_unit_max()), share=share)
    n, high, clipped, total, keys = _extra(acc, "over")
    if n:
        one = n == 1
        # an older job's accumulator counted no pixels: no count then, rather than "0 of 0"
        count = f"{clipped} of {total} pixels over {'it' if one else 'them'}, " if total else ""
        out.append(f"{n} float image{'s' * (not one)} (of {images}) hold{'s' * one} values above 1 (at most {share}% "
                   f"of each) read as unit range ({count}up to {_number(high)}){_examples(keys)}: those pixels clip to "
                   f"255 (a cloud, a specular highlight); {rule}")
    n, high, keys = _extra(acc, "faint")
    if n:
        one = n == 1
        out.append(f"{n} float image{'s' * (not one)} (of {images}) hold{'s' * one} values at or under "
                   f"{_number(high)}, more than {share}% of them above 1, read as 0-255{_examples(keys)}: "
                   f"{'it decodes' if one else 'they decode'} nearly black (0-{int(high + 0.5)} of 255); {rule} "
                   f"(0-1 tiles with fewer such pixels are read bright: one dataset on two scales); before "
                   f"sharding, clip the values above 1 (0-1 data with clouds / highlights), subtract the "
                   f"offset (an offset index, 1 + reflectance) or rescale to 0-255")
    n, top, peak, keys = _extra(acc, "dim")
    if n:
        one = n == 1
        shade = (f"nearly black (0-{int(top + 0.5)} of 255)" if int(top + 0.5) else
                 "black (0 of 255, those pixels excepted)")
        out.append(f"{n} float image{'s' * (not one)} (of {images}) hold{'s' * one} values at or under "
                   f"{_number(top)} but for a few pixels (one, or at most {_number(100 - DARK_PERCENTILE)}%) up to "
                   f"{_number(peak)}{_examples(keys)}: those pixels put {'it' if one else 'them'} under the 0-255 rule, "
                   f"where {'it decodes' if one else 'they decode'} {shade} while "
                   f"images like {'it' if one else 'them'} without such pixels are read bright; {rule}; clip the "
                   f"outliers (or rescale to 0-1) before sharding")
    n, bad, total, keys = _extra(acc, "nan")
    if n:
        one = n == 1
        out.append(f"{n} float image{'s' * (not one)} (of {images}) hold{'s' * one} NaN / infinite values "
                   f"({bad} of {total} pixels over {'it' if one else 'them'}){_examples(keys)}: the reader decodes NaN "
                   f"as 0, the same as a dark pixel (+inf as 255), so a model cannot tell nodata from data; fill the "
                   f"nodata and ship a mask as a named field, or store the image as a (C, H, W) float .npy array in a "
                   f"named field (`--column ms=...`: NaN kept, counted per field)")
    n, most, keys = _extra(acc, "bands")
    if n:
        one = n == 1
        out.append(f"{n} image{'s' * (not one)} (of {images}) hold{'s' * one} more bands than the reader reads "
                   f"(up to {most} samples per pixel){_examples(keys)}: bands past the colour ones (an RGBN tile's "
                   f"NIR band past R, G, B) are dropped when read; {BANDS_ROUTE}")
    return out


#: how the warnings of :func:`deep_warnings` begin (add-modality replaces those of a replaced image series)
_DEEP_WARNING = re.compile(r"\d+ (16-bit image|float / signed image|float image|image)s? \(of \d+\) (use|hold)s? ")
#: what tells each of :func:`deep_warnings`' warnings from another warning of the same start
_DEEP_MARKS = ("significant bits", "reader maps", "frames / pages", "read as unit range", "under the 0-255 rule",
               "of them above 1, read as 0-255",
               "NaN / infinite values", "more bands than the reader reads")


def is_deep_warning(text: str) -> bool:
    """Whether a card warning is one of :func:`deep_warnings`'.

    Example:
        >>> is_deep_warning(sixteen_bit_warning([3, 0, 4095], 10)), is_deep_warning("label 3 has no samples")
        (True, False)
    """
    return bool(_DEEP_WARNING.match(text)) and any(mark in text for mark in _DEEP_MARKS)


#: a sample at or past this magnitude (float32 as the reader decodes: PCM_16's 32767 / 32768) is at full scale
FULL_SCALE = 32767 / 32768
#: full scale of the sample formats whose largest positive value decodes below :data:`FULL_SCALE` (8-bit: 127 / 128;
#: review 2 #5: an 8-bit WAV's positive clipping was never counted)
FULL_SCALE_OF = {"PCM_U8": 127 / 128, "PCM_S8": 127 / 128}
#: the share of an audio member's samples at full scale past which it counts as clipped: a unclipped full-scale
#: sine spends 0.5% of its samples there, a clipped recording far more
CLIPPED_SHARE = 0.01
#: the |mean| (of full scale) past which an audio member counts as carrying a DC offset
DC_OFFSET = 0.2


class AudioLevels(NamedTuple):
    """What a full decode of an audio member saw (:func:`decode_check`): its ``samples``, whether any is not
    zero (``nonzero``: all zero is digital silence), how many lie at full scale (``full_scale``: clipping) and
    their ``mean`` (a DC offset)."""

    samples: int
    nonzero: bool
    full_scale: int
    mean: float


def audio_levels(samples: Any, full_scale: float = FULL_SCALE) -> AudioLevels:
    """The :class:`AudioLevels` of decoded audio (a float numpy array or torch tensor in [-1, 1], any shape: the
    reader's ``(C, T)``), as :func:`decode_check` counts them while it decodes — for ``verify --deep``, which
    decodes through the reader. ``full_scale``: the file's sample format's (:data:`FULL_SCALE_OF`, 8-bit).

    Example:
        >>> import numpy as np
        >>> audio_levels(np.zeros((1, 8), np.float32))
        AudioLevels(samples=8, nonzero=False, full_scale=0, mean=0.0)
    """
    import numpy as np

    a = np.asarray(samples.numpy() if hasattr(samples, "numpy") else samples, dtype=np.float32)
    n = int(a.size)
    return AudioLevels(n, bool(a.any()), int(np.count_nonzero(np.abs(a) >= full_scale)),
                       float(a.sum(dtype=np.float64)) / n if n else 0.0)


def audio_level_kinds(levels: AudioLevels | None) -> list[str]:
    """What is wrong with an audio member's levels: ``silent`` (every sample 0: a recorder that wrote zeros),
    ``clipped`` (over :data:`CLIPPED_SHARE` of its samples at full scale), ``dc_offset`` (|mean| over
    :data:`DC_OFFSET`); empty for a usable clip or None.

    Example:
        >>> audio_level_kinds(AudioLevels(100, False, 0, 0.0)), audio_level_kinds(AudioLevels(100, True, 5, 0.3))
        (['silent'], ['clipped', 'dc_offset'])
    """
    if levels is None or not levels.samples:
        return []
    if not levels.nonzero:
        return ["silent"]
    return [k for k, bad in (("clipped", levels.full_scale > CLIPPED_SHARE * levels.samples),
                             ("dc_offset", abs(levels.mean) > DC_OFFSET)) if bad]


def note_audio_levels(acc: dict[str, list[Any]] | None, levels: AudioLevels | None, key: str,
                      k: int = 3) -> dict[str, list[Any]] | None:
    """``acc`` (``{kind: [count, up to k sample keys]}``, a shard's; None: nothing yet) with the sample ``key``'s audio
    ``levels`` counted (:func:`audio_level_kinds`); shards' accumulators add up with :func:`combine_audio_levels`."""
    for kind in audio_level_kinds(levels):
        acc = acc if acc is not None else {}
        got = acc.setdefault(kind, [0, []])
        got[0] += 1
        if len(got[1]) < k:
            got[1].append(key)
    return acc


def combine_audio_levels(parts: Any, k: int = 3) -> dict[str, list[Any]] | None:
    """The shards' :func:`note_audio_levels` accumulators (None for none found) as one, in plan order.

    Example:
        >>> combine_audio_levels([{"silent": [1, ["a"]]}, None, {"silent": [2, ["b", "c"]]}])
        {'silent': [3, ['a', 'b', 'c']]}
    """
    out: dict[str, list[Any]] = {}
    for part in parts:
        for kind, (n, keys) in (part or {}).items():
            got = out.setdefault(kind, [0, []])
            got[0] += n
            got[1] += keys[:k - len(got[1])]
    return out or None


def audio_level_warnings(acc: dict[str, list[Any]] | None, of: int) -> list[str]:
    """The shard's / ``verify --deep``'s warnings on audio members (of ``of`` decoded) that are digital silence,
    clipped or offset (:func:`note_audio_levels`), naming example sample keys; they are kept (a labelled clip
    with no call teaches the model nothing, a clipped one the recorder's distortion).

    Example:
        >>> print(audio_level_warnings({"silent": [1, ["MYOLUC_a"]]}, 88)[0])  # doctest: +ELLIPSIS
        1 audio member (of 88) is digital silence (every sample 0: e.g. 'MYOLUC_a'): ...
    """
    what = {"silent": (("is", "are"), "digital silence (every sample 0", "a recorder that wrote zeros, a muted input: "
                       "the label has nothing to be learnt from; drop or relabel them"),
            "clipped": (("is", "are"), f"clipped (over {CLIPPED_SHARE:.0%} of the samples at full scale",
                        "the input gain was too high: the waveform's peaks are cut off; re-record or check per-class "
                        "results without them"),
            "dc_offset": (("has", "have"), f"a DC offset (a mean over {DC_OFFSET:g} of full scale",
                          "remove it (subtract the mean, or a high-pass filter) before sharding")}
    out = []
    for kind, (verbs, is_what, fix) in what.items():
        n, keys = (acc or {}).get(kind, (0, []))
        if n:  # (review 2 #6: "1 audio member ... is offset ...; they are kept")
            out.append(f"{n} audio member{'s' * (n != 1)} (of {of}) {verbs[n != 1]} {is_what}: e.g. "
                       f"{', '.join(map(repr, keys[:3]))}): {fix}; {'it is' if n == 1 else 'they are'} kept")
    return out


#: the samples (frames x channels) of an MP3 that ``--check decode`` reads in one call (as the reader decodes it):
#: 2^25, about 6 minutes of 44.1 kHz stereo, 128 MiB of float32; a longer MP3 is checked in blocks (bounded memory)
CHECK_MP3_SAMPLES = 1 << 25


def decode_check(kind: str, data: bytes) -> AudioLevels | None:
    """Decode an image or audio file, or a ``.npy`` array (``kind`` ``"npy"``), in full (``check="decode"``);
    raise :class:`CorruptMedia` on failure (audio also when it holds NaN or infinite samples, which the reader
    refuses too); an audio file's :class:`AudioLevels` are returned (digital silence, clipping, a DC offset:
    :func:`note_audio_levels`), None for other kinds. A float array holding NaN or infinite values decodes: it is kept, and the shard counts such
    arrays per field and warns (:func:`check_npy`, :func:`non_finite_npy_warning`) — a depth map marks missing
    pixels with NaN on purpose (QA35 robotics #3, review media #3: leaving them out dropped every such depth map).

    Example:
        >>> buf = io.BytesIO(); __import__("numpy").save(buf, __import__("numpy").array([0.0, float("nan")]))
        >>> decode_check("npy", buf.getvalue()) is None
        True
    """
    if kind == "npy":
        npy_non_finite(data)  # NaN / inf are counted by check_npy's caller, not refused (QA35 review media #3)
        return
    if kind == "image":
        from PIL import Image

        from mmdata.codecs import _pillow_bomb_quiet

        try:  # Pillow's own DecompressionBombWarning stays quiet: the shard's card says it (QA39 security #3)
            with _pillow_bomb_quiet(), Image.open(io.BytesIO(data)) as im:
                im.load()
        except Exception as exc:  # noqa: BLE001
            raise CorruptMedia(f"image does not decode ({_describe(exc)})") from None
    elif kind == "audio":
        import numpy as np
        import soundfile as sf

        from mmdata.codecs import non_finite_audio, non_finite_reason, sf_read_frames

        bad, first, samples, nonzero, full, total = 0, -1, 0, False, 0, 0.0
        try:
            with sf.SoundFile(io.BytesIO(data)) as f:
                expected = f.frames
                got = 0
                top = FULL_SCALE_OF.get(f.subtype, FULL_SCALE)  # an 8-bit file peaks at 127 / 128
                # float32 as the reader decodes (int16 turned NaN into 0), a block at a time: bounded memory
                # (read(), not blocks(): libsndfile calls GSM 6.10 / G.721 / IMA streams unseekable, and
                # blocks() refused those files, which the reader decodes). An MP3 in one read, as the reader
                # decodes it: libsndfile's mpg123 decoder went wrong after each block boundary, so the levels
                # were measured on other samples and libmpg123 printed errors (QA39 review codecs #2). Up to
                # CHECK_MP3_SAMPLES: a shard worker checking an hour-long MP3 would hold GBs (QA39 review 2 a #1);
                # a longer MP3 is checked in blocks (its levels past the first block boundary may be off)
                step = sf_read_frames(f, CHECK_MP3_SAMPLES)
                while len(block := f.read(step, dtype="float32", always_2d=True)):
                    found = non_finite_audio(block)
                    if found is not None:
                        first = first if bad else got + found[1]
                        bad += found[0]
                    got += len(block)
                    samples += block.size
                    if found is None:  # levels (QA38 bioacoustics #4): vectorised per block, one pass
                        nonzero = nonzero or bool(block.any())
                        full += int(np.count_nonzero(np.abs(block) >= top))
                        total += float(block.sum(dtype=np.float64))
        except Exception as exc:  # noqa: BLE001
            raise CorruptMedia(f"audio does not decode ({_describe(exc)})") from None
        if got != expected:
            raise CorruptMedia(f"audio decodes to {got} of its {expected} frames")
        if bad:
            raise CorruptMedia(non_finite_reason(bad, samples, first))
        return AudioLevels(samples, nonzero, full, total / samples if samples else 0.0)
    return None


def member_stats(ext: str, data: bytes) -> dict[str, Any]:
    """Index columns for one member; raises :class:`CorruptMedia` when the bytes do not match the type.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> member_stats("png", image_bytes(0))["image_mode"]
        'RGB'
    """
    e = ext.lower()
    if e in IMAGE_EXTS:
        h, w, mode, channels = probe_image(data)
        return {"image_height": h, "image_width": w, "image_mode": mode, "image_channels": channels}
    if e in AUDIO_EXTS:
        frames, rate, channels = probe_audio(data)
        return {"audio_seconds": round(frames / rate, 6), "audio_sample_rate": rate, "audio_channels": channels}
    if e in TEXT_EXTS:
        from mmdata.shards.sources import not_utf8_reason, text_refusal

        try:
            chars = text_length(data)  # as read back: no BOM, no final line end
        except UnicodeDecodeError as exc:
            raise CorruptMedia(not_utf8_reason(data, exc)) from None
        why = text_refusal(data)  # UTF-16 without a byte order mark, a NUL / ESC (QA28 i18n #1), as shard refuses
        if why is not None:
            raise CorruptMedia(why)
        return {"text_chars": chars}
    if e == "json":
        check_json(data)
    elif e.endswith("npy"):
        check_npy(data)
    return {}


# ---- metadata that identifies people or places (the card's ``metadata``) ---------------------------------
# Members are stored as read (no re-encoding), so what a camera or a tagger wrote is published with them.

#: the kinds the card's ``metadata`` always lists (0 when none was found), in the card's order
METADATA_KINDS = ("gps", "camera_serial", "artist", "audio_tags")
#: every kind :func:`identifying_metadata` reports, in the card's order (QA42: the last five; the card lists them
#: when found)
IDENTIFYING_KINDS = (*METADATA_KINDS, "description", "text_chunks", "comments", "xmp", "iptc", "bwf")
#: what each kind is, for the card's warning; ``audio_tags`` and ``bwf`` are found in audio members, the rest in images
METADATA_WHAT = {
    "gps": "a GPS position (EXIF, XMP or a WAV's GUANO Loc Position)",
    "camera_serial": "a camera or recorder serial number (EXIF, XMP or a WAV's GUANO Serial)",
    "artist": "an artist, author, owner, contact or copyright name (EXIF, XMP or IPTC)",
    "audio_tags": "tags (Vorbis comments, ID3, WAV INFO, AIFF NAME / AUTH / (c) / ANNO)",
    "description": "free text (EXIF ImageDescription / UserComment / XP comments)",
    "text_chunks": "PNG text chunks (tEXt / zTXt / iTXt)",  # the keys seen: text_chunks_what
    "comments": "JPEG / GIF comments (COM, comment extension)",
    "xmp": "an XMP packet naming a person, place or description",
    "iptc": "an IPTC-IIM record naming a person, place or description (JPEG APP13 / TIFF)",
    "bwf": "broadcast-wave metadata (bext description / originator, iXML notes / location)"}
METADATA_AUDIO_KINDS = frozenset(("audio_tags", "bwf"))
_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769


def metadata_members(kind: str, examples: list[str]) -> str:
    """What members carry the metadata ``kind``, said from its example member names: ``audio`` (an audio kind, or
    only audio examples: a WAV's GUANO GPS position), ``image``, or ``image / audio`` for a mix.

    Example:
        >>> metadata_members("gps", ["a.jpg"]), metadata_members("gps", ["a.wav"]), metadata_members("bwf", [])
        ('image', 'audio', 'audio')
    """
    if kind in METADATA_AUDIO_KINDS:
        return "audio"
    exts = {name.rpartition(".")[2].lower() for name in examples}
    audio = {e for e in exts if e in AUDIO_EXTS}
    return "audio" if audio and audio == exts else "image / audio" if audio else "image"
_SERIAL_TAGS = frozenset((0xA431, 0xC62F))  # BodySerialNumber (EXIF), CameraSerialNumber (DNG)
_ARTIST_TAGS = frozenset((0x013B, 0xA430, 0x8298))  # Artist, CameraOwnerName, Copyright
_XP_AUTHOR = 0x9C9D  # Windows' XPAuthor (UTF-16): a name, as Artist
#: free-text tags: ImageDescription, UserComment (EXIF directory), Windows' XPTitle / XPComment / XPKeywords / XPSubject
_TEXT_TAGS = frozenset((0x010E, 0x9286, 0x9C9B, 0x9C9C, 0x9C9E, 0x9C9F))
_XMP_TAG = 0x02BC  # a TIFF's own XMP packet
#: what cameras and imaging software write into ImageDescription by themselves (upper case), and how the
#: descriptions of ImageJ / tifffile (array shapes, not people) begin
_TOOL_DESCRIPTIONS = frozenset((b"OLYMPUS DIGITAL CAMERA", b"SONY DSC", b"DIGITAL CAMERA", b"KODAK CSC", b"SAMSUNG",
                                b"DCIM", b"DEFAULT", b"SONY DSC CAMERA", b"<KENOX S630  / SAMSUNG S630>"))
_TOOL_DESCRIPTION_STARTS = (b"ImageJ=", b'{"shape":', b"shape=(")
_GPS_PLACE = frozenset((2, 4))  # GPSLatitude, GPSLongitude: a GPS directory without them places nothing
#: bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, ...)
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
#: how many bytes of one free-text tag / one text chunk / one XMP packet are read (the rest is not needed to tell)
_TEXT_BYTES, _XMP_BYTES = 1 << 12, 1 << 20
#: tags a tool writes about itself, not about the recording (libsndfile, ffmpeg, LAME)
_TOOL_TAGS = frozenset((b"ENCODER", b"ENCODED_BY", b"ENCODER_OPTIONS", b"SOFTWARE"))
_TOOL_FRAMES = frozenset((b"TSSE", b"TENC", b"TSS", b"TEN"))
_TOOL_INFO = frozenset((b"ISFT",))
_META_MAGIC = (b"\xff\xd8", _PNG_SIG[:2], b"RI", b"fL", b"ID", b"Og", b"II", b"MM", b"FO", b"GI",  # FORM: AIFF
               b"\xff\xfb", b"\xff\xfa", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3")  # the last: MPEG audio frames
#: IPTC-IIM application record (2) datasets that name a person (the kind they also count as: ``artist``), a place
#: or hold free text (``description``); any of them holding text counts as ``iptc`` (QA37 licence #5)
_IPTC_DATASETS = {80: "artist", 85: "artist", 110: "artist", 116: "artist", 118: "artist", 122: "artist",
                  90: "place", 92: "place", 95: "place", 100: "place", 101: "place", 26: "place", 27: "place",
                  5: "description", 25: "description", 40: "description", 105: "description", 120: "description"}
_IPTC_TAG = 0x83BB  # a TIFF's IPTC-NAA record
_PHOTOSHOP = b"Photoshop 3.0\x00"


def _ifd(t: bytes, p: int, e: str) -> dict[int, tuple[int, int, int]]:
    """A TIFF directory at ``p`` as {tag: (type, count, value or offset)}; empty when it is past the data."""
    n = len(t)
    if p < 8 or p > n - 2:
        return {}
    out = {}
    count = int.from_bytes(t[p:p + 2], e)
    p += 2
    for _ in range(min(count, 512)):
        if p > n - 12:
            break
        out[int.from_bytes(t[p:p + 2], e)] = (int.from_bytes(t[p + 2:p + 4], e), int.from_bytes(t[p + 4:p + 8], e),
                                              int.from_bytes(t[p + 8:p + 12], e))
        p += 12
    return out


def _tiff_bytes(t: bytes, entry: tuple[int, int, int], e: str, limit: int = _TEXT_BYTES) -> bytes:
    """The value of a directory entry (at most ``limit`` bytes): inline when it fits 4 bytes, else at its offset."""
    kind, count, value = entry
    size = _TIFF_SIZES.get(kind, 1) * count
    if size <= 4:
        return value.to_bytes(4, e)[:size]
    return t[value:value + min(size, limit)] if 8 <= value < len(t) else b""


def _free_text(tag: int, raw: bytes) -> bool:
    """Whether a free-text tag's value says something (not blank, not a camera's or a tool's own words)."""
    if tag == 0x9286:  # UserComment: an 8-byte character code ("ASCII\0\0\0", "UNICODE\0", zeros), then the text
        raw = raw[8:]
    text = raw.replace(b"\x00", b"").strip()
    if not text:
        return False
    return tag == _XP_AUTHOR or not _generic_text(text)  # XPAuthor: a name, whatever it says


def tiff_identifying(t: bytes) -> set[str]:
    """The identifying entries of TIFF-structured EXIF (``Exif\\0\\0`` prefix allowed): ``gps`` (a GPS
    directory with a latitude or longitude), ``camera_serial``, ``artist`` (artist, owner, copyright, Windows'
    XPAuthor), ``description`` (ImageDescription, UserComment, Windows' XP title / comment / keywords / subject
    holding text of their own: a camera's "OLYMPUS DIGITAL CAMERA", a screenshot's "Screenshot" or ImageJ's array
    shape does not count: :data:`_DEFAULT_TEXTS`), and :func:`xmp_identifying`'s kinds for an XMP packet in the
    directory (a TIFF's own, tag 700).

    Example:
        >>> ifd0 = bytes([0, 1, 0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26])  # GPS directory at 26
        >>> gps = bytes([0, 1, 0, 2, 0, 5, 0, 0, 0, 3, 0, 0, 0, 0])  # GPSLatitude
        >>> sorted(tiff_identifying(b"MM\\0*" + bytes([0, 0, 0, 8]) + ifd0 + bytes(4) + gps))
        ['gps']
    """
    if t[:6] == b"Exif\x00\x00":
        t = t[6:]
    if len(t) < 8 or t[:4] not in (b"MM\x00*", b"II*\x00"):
        return set()
    e = "little" if t[0] == 0x49 else "big"
    ifd0 = _ifd(t, int.from_bytes(t[4:8], e), e)
    found = set()
    if _GPS_IFD in ifd0 and _GPS_PLACE & set(_ifd(t, ifd0[_GPS_IFD][2], e)):
        found.add("gps")
    exif = _ifd(t, ifd0[_EXIF_IFD][2], e) if _EXIF_IFD in ifd0 else {}
    tags = set(ifd0) | set(exif)
    if tags & _SERIAL_TAGS:
        found.add("camera_serial")
    if tags & _ARTIST_TAGS or (_XP_AUTHOR in ifd0 and _free_text(_XP_AUTHOR, _tiff_bytes(t, ifd0[_XP_AUTHOR], e))):
        found.add("artist")
    for tag in tags & _TEXT_TAGS:
        if _free_text(tag, _tiff_bytes(t, ifd0[tag] if tag in ifd0 else exif[tag], e)):
            found.add("description")
            break
    if _XMP_TAG in ifd0:
        found |= xmp_identifying(_tiff_bytes(t, ifd0[_XMP_TAG], e, _XMP_BYTES))
    if _IPTC_TAG in ifd0:
        found |= iptc_identifying(_tiff_bytes(t, ifd0[_IPTC_TAG], e, _XMP_BYTES))
    return found


def iptc_identifying(b: bytes) -> set[str]:
    """The kinds an IPTC-IIM record stream carries (``0x1C``, record, dataset, length, value; bounded): a
    by-line, by-line title, credit, copyright notice, contact or writer (``artist``, ``iptc``), a city, sublocation,
    province, country or location (``iptc``), an object name, keywords, instructions, headline or caption holding
    text of its own (``iptc`` only: a stock photo's keywords are not counted twice, nor as EXIF free text).

    Example:
        >>> sorted(iptc_identifying(b"\\x1c\\x02\\x50\\x00\\x0bKarl Person"))
        ['artist', 'iptc']
    """
    found: set[str] = set()
    p, n = 0, len(b)
    for _ in range(_TAG_ITEMS):
        if p + 5 > n or b[p] != 0x1C:
            break
        record, dataset, size = b[p + 1], b[p + 2], int.from_bytes(b[p + 3:p + 5], "big")
        p += 5
        if size & 0x8000:  # an extended dataset: the next (size & 0x7FFF) bytes give its length
            k = size & 0x7FFF
            size = int.from_bytes(b[p:p + k], "big") if 0 < k <= 4 else n
            p += k
        kind = _IPTC_DATASETS.get(dataset) if record == 2 else None
        text = b[p:p + min(size, _TEXT_BYTES)].replace(b"\x00", b"").strip()
        if kind is not None and text and not (kind == "description" and _generic_text(text)):
            found.add("iptc")
            if kind == "artist":  # keywords / captions stay under ``iptc``: "description" names EXIF's fields
                found.add(kind)
        p += size
    return found


def _photoshop_identifying(body: bytes) -> set[str]:
    """The kinds a JPEG APP13 segment's Photoshop image resources carry: the IPTC-IIM record (``8BIM`` 0x0404)."""
    p, n = len(_PHOTOSHOP), len(body)
    for _ in range(_TAG_ITEMS):
        if p + 12 > n or body[p:p + 4] != b"8BIM":
            break
        rid, name = int.from_bytes(body[p + 4:p + 6], "big"), body[p + 6]
        p += 6 + ((name + 2) & ~1)  # a Pascal name, padded to an even length
        size = int.from_bytes(body[p:p + 4], "big")
        p += 4
        if rid == 0x0404:
            return iptc_identifying(body[p:p + min(size, _XMP_BYTES)])
        p += size + (size & 1)
    return set()


#: XMP properties that name a person, a place, a device or hold free text, by namespace URI and local name (None:
#: every property of the namespace), with the kind they also count as ("xmp" alone: none); matched by URI, so the
#: prefix a tool binds does not matter (a prefix no packet declares stands for its usual namespace, below)
_XMP_PROPERTIES: dict[bytes, dict[bytes | None, str]] = {
    b"http://ns.adobe.com/exif/1.0/": {b"GPSLatitude": "gps", b"GPSLongitude": "gps", b"UserComment": "text"},
    b"http://ns.adobe.com/exif/1.0/aux/": {b"SerialNumber": "camera_serial"},
    b"http://cipa.jp/exif/1.0/": {b"BodySerialNumber": "camera_serial", b"CameraOwnerName": "artist"},
    b"http://purl.org/dc/elements/1.1/": {b"creator": "artist", b"rights": "artist", b"description": "text",
                                         b"title": "text", b"subject": "text"},
    b"http://ns.adobe.com/tiff/1.0/": {b"Artist": "artist", b"ImageDescription": "text"},
    b"http://ns.adobe.com/xap/1.0/rights/": {b"Owner": "artist"},
    b"http://ns.adobe.com/photoshop/1.0/": {b"AuthorsPosition": "xmp", b"Credit": "xmp", b"City": "xmp",
                                           b"Country": "xmp", b"State": "xmp"},
    b"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": {None: "xmp"},
    b"http://iptc.org/std/Iptc4xmpExt/2008-02-29/": {None: "xmp"}}
#: the prefixes XMP writers bind to the namespaces above, for packets (or fragments) that do not declare them
_XMP_USUAL_PREFIX = {b"exif": b"http://ns.adobe.com/exif/1.0/", b"aux": b"http://ns.adobe.com/exif/1.0/aux/",
                     b"exifEX": b"http://cipa.jp/exif/1.0/", b"dc": b"http://purl.org/dc/elements/1.1/",
                     b"tiff": b"http://ns.adobe.com/tiff/1.0/", b"xmpRights": b"http://ns.adobe.com/xap/1.0/rights/",
                     b"photoshop": b"http://ns.adobe.com/photoshop/1.0/",
                     b"Iptc4xmpCore": b"http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
                     b"Iptc4xmpExt": b"http://iptc.org/std/Iptc4xmpExt/2008-02-29/"}
#: properties of those namespaces that tools write about the file itself (IPTC's digital source type: a generator's
#: "trainedAlgorithmicMedia"): not counted
_XMP_TOOL_PROPERTIES = frozenset(((b"http://iptc.org/std/Iptc4xmpExt/2008-02-29/", b"DigitalSourceType"),))
#: a namespace declaration binding a prefix (none: the default namespace) to one of :data:`_XMP_PROPERTIES`'
_XMLNS = re.compile(rb"""xmlns(?::([\w.-]+))?\s*=\s*["'](""" + b"|".join(map(re.escape, _XMP_PROPERTIES))
                    + rb""")["']""")
#: a declaration of one of the usual prefixes (to any namespace: then it is not the usual one)
_XMLNS_USUAL = re.compile(rb"xmlns:(" + b"|".join(_XMP_USUAL_PREFIX) + rb")\s*=")
#: how many prefixes bound to those namespaces one packet's scan follows, and how many of its properties it reads
#: (a real packet has a few dozen; a crafted one of many empty properties counts as ``xmp``, not as nothing)
_XMP_PREFIXES, _XMP_ITEMS = 16, 256
#: the text between tags of an element's content (a CDATA section's text included), tags and comments aside
_XML_PIECES = re.compile(rb"<!\[CDATA\[([^<>]*?)\]\]>|<[^<>]*>?|([^<>]+)")
_RDF_VALUE = re.compile(rb"""\srdf:(?:resource|value)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ATTR_VALUE = re.compile(rb"""\s*=\s*(?:"([^"]*)"|'([^']*)')""")
#: descriptions and titles that tools write by themselves (a screenshot's "Screenshot", an editor's "Untitled",
#: what a camera writes into ImageDescription): compared case-insensitively, blanks collapsed
_DEFAULT_TEXTS = frozenset((*(" ".join(t.decode().split()).casefold() for t in _TOOL_DESCRIPTIONS), "screenshot",
                            "screen shot", "screen capture", "untitled", "no title", "no description", "image",
                            "picture", "photo", "default"))


def _generic_text(raw: bytes) -> bool:
    """Whether free text is a tool's default (:data:`_DEFAULT_TEXTS`, ImageJ's / tifffile's array shapes), not
    something a person wrote about the recording."""
    text = raw.strip()
    if text.startswith(_TOOL_DESCRIPTION_STARTS):
        return True
    return " ".join(text.decode("utf-8", "replace").split()).casefold() in _DEFAULT_TEXTS


@functools.lru_cache(maxsize=64)
def _xmp_pattern(bound: tuple[tuple[bytes, bytes], ...]) -> re.Pattern[bytes]:
    """The properties of :data:`_XMP_PROPERTIES` under the prefixes a packet binds (``bound``: (prefix, URI);
    prefix b"": the default namespace), as start tags (``<`` before) or attributes (a blank before)."""
    alts = []
    for prefix, uri in bound:
        names = _XMP_PROPERTIES[uri]
        local = rb"[\w.-]+" if None in names else rb"(?:" + b"|".join(n for n in names if n) + rb")"
        alts.append(re.escape(prefix) + b":" + local if prefix else rb"(?<=<)" + local)
    return re.compile(rb"(<|\s)(" + b"|".join(alts) + rb")(?=[\s>=/])")


def _xmp_kind(uris: dict[bytes, bytes], qname: bytes) -> str | None:
    prefix, _, local = qname.rpartition(b":")
    uri = uris.get(prefix)
    if uri is None or (uri, local) in _XMP_TOOL_PROPERTIES:
        return None
    props = _XMP_PROPERTIES[uri]
    return props.get(local, props.get(None))


def xmp_identifying(x: bytes) -> set[str]:
    """The kinds an XMP packet carries (its first :data:`_XMP_BYTES` bytes; properties by namespace URI and name,
    as elements or attributes, holding text): ``xmp`` for any property naming a person, a place, a device or
    holding a description (creator, rights, GPS position, serial number, IPTC contact, location and persons,
    title, description, user comment), plus ``gps`` / ``camera_serial`` / ``artist`` for those kinds. Empty
    properties, a tool's default text (a screenshot's "Screenshot", "Untitled": :data:`_DEFAULT_TEXTS`) and a
    packet of tool and format facts only (``xmp:CreatorTool``, ``dc:format``, document ids) carry none. A prefix
    the packet does not declare stands for its usual namespace (``dc``: Dublin Core).

    Example:
        >>> sorted(xmp_identifying(b'<rdf:Description><dc:creator>Jane Doe</dc:creator></rdf:Description>'))
        ['artist', 'xmp']
        >>> xmp_identifying(b'<rdf:Description><dc:creator/><dc:title>Untitled</dc:title></rdf:Description>')
        set()
    """
    x = bytes(x[:_XMP_BYTES])
    uris = {p: u for p, u in _XMP_USUAL_PREFIX.items() if u in _XMP_PROPERTIES}
    for m in _XMLNS_USUAL.finditer(x):  # declared: to what the declaration says (below), maybe to nothing of ours
        uris.pop(m.group(1), None)
    for m in _XMLNS.finditer(x):
        if len(uris) < _XMP_PREFIXES:
            uris[m.group(1) or b""] = m.group(2)
    found: set[str] = set()
    matches = list(itertools.islice(_xmp_pattern(tuple(sorted(uris.items()))).finditer(x), _XMP_ITEMS + 1))
    if len(matches) > _XMP_ITEMS:
        found.add("xmp")
    for i, m in enumerate(matches[:_XMP_ITEMS]):
        qname = m.group(2)
        kind = _xmp_kind(uris, qname)
        if kind is None:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(x)
        if m.group(1) != b"<":  # an attribute: its value
            v = _ATTR_VALUE.match(x, m.end(), min(end, m.end() + _TEXT_BYTES))
            values = [v.group(1) if v.group(1) is not None else v.group(2)] if v else []
        else:  # an element: its start tag's rdf:resource / rdf:value, then the text of its content
            gt = x.find(b">", m.end(), min(end, m.end() + _TEXT_BYTES))
            if gt < 0:
                continue
            tag = x[m.end():gt]
            values = [a or b for a, b in _RDF_VALUE.findall(tag)]
            if not tag.endswith(b"/"):
                body = x[gt + 1:min(end, gt + 1 + _TEXT_BYTES)]
                close = body.find(b"</" + qname)
                values += [a or b for a, b in _XML_PIECES.findall(body if close < 0 else body[:close])]
        for value in values:
            text = html.unescape(value[:_TEXT_BYTES].decode("utf-8", "replace")).strip().encode()
            if text and not (kind == "text" and _generic_text(text)):
                found.add("xmp")
                if kind not in ("text", "xmp"):
                    found.add(kind)
                break
    return found


def _vorbis_comments(b: bytes) -> bool:
    """Whether a Vorbis comment block (vendor string, then comments; little-endian lengths) holds a comment
    other than the encoder's own."""
    if len(b) < 8:
        return False
    p = 4 + int.from_bytes(b[:4], "little")
    if p + 4 > len(b):
        return False
    count = int.from_bytes(b[p:p + 4], "little")
    p += 4
    for _ in range(min(count, 4096)):
        if p + 4 > len(b):
            return count > 0  # cut (an Ogg page boundary): comments were there
        size = int.from_bytes(b[p:p + 4], "little")
        name = b[p + 4:p + 4 + min(size, 64)].partition(b"=")[0].upper()
        if name not in _TOOL_TAGS:
            return True
        p += 4 + size
    return False


#: the frames of an ID3v2 tag / the entries of a WAV's LIST/INFO chunk a tag check reads: a crafted tag of empty
#: frames costs at most this many steps (the chunk walks around them are bounded too)
_TAG_ITEMS = 4096


def _id3v2(b: bytes) -> bool:
    """Whether an ID3v2 tag at the start of ``b`` holds a frame other than the encoder's."""
    if len(b) < 10 or b[:3] != b"ID3":
        return False
    major, size = b[3], (b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9]
    head, idlen = (6, 3) if major == 2 else (10, 4)
    p, end = 10, min(10 + size, len(b))
    for _ in range(_TAG_ITEMS):
        if p + head > end:
            break
        fid = b[p:p + idlen]
        if not fid.strip(b"\x00"):
            break  # padding
        if fid not in _TOOL_FRAMES:
            return True
        if major == 2:
            n = int.from_bytes(b[p + 3:p + 6], "big")
        elif major == 4:
            n = (b[p + 4] << 21) | (b[p + 5] << 14) | (b[p + 6] << 7) | b[p + 7]
        else:
            n = int.from_bytes(b[p + 4:p + 8], "big")
        p += head + n
    return False


#: WAV chunks of broadcast-wave metadata: ``bext`` (description 256, originator 32, originator reference 32 bytes
#: first) and ``iXML`` (a recorder's XML: its notes, project and scene names, location)
_IXML_TEXT = re.compile(rb"<(LOCATION_[A-Z_]+|NOTE|USER|PROJECT|SCENE|TAPE|NAME|CIRCLED_TAKE_NOTE)>\s*[^<\s]")


#: GUANO fields (``Key:value`` lines of a WAV's ``guan`` chunk, https://guano-md.org) that identify a place or a
#: recorder: the kind each counts as
_GUANO_KINDS = {b"loc position": "gps", b"loc elevation": "gps", b"serial": "camera_serial", b"note": "audio_tags",
                b"original filename": "audio_tags"}


def guano_kinds(body: bytes) -> set[str]:
    """The kinds a GUANO chunk's body names with a value: ``gps`` (``Loc Position``, ``Loc Elevation``),
    ``camera_serial`` (the recorder's ``Serial``), ``audio_tags`` (``Note``, ``Original Filename``).

    Example:
        >>> sorted(guano_kinds(b"GUANO|Version:1.0\\nSerial:SM4-A01\\nLoc Position:42.36 -71.05\\nMake:Wildlife Acoustics\\n"))
        ['camera_serial', 'gps']
        >>> guano_kinds(b"GUANO|Version:1.0\\nLoc Position:\\n")
        set()
    """
    found: set[str] = set()
    for line in body.split(b"\n")[:_TAG_ITEMS]:
        field, sep, value = line.partition(b":")
        kind = _GUANO_KINDS.get(field.strip().lower()) if sep else None
        if kind is not None and value.strip(b"\x00 \r\t"):
            found.add(kind)
    return found


def _wav_kinds(d: bytes) -> set[str]:
    """The kinds a WAV's chunks carry: ``audio_tags`` (a ``LIST``/``INFO`` or ``id3`` chunk, the encoder's
    own name excepted), ``bwf`` (a ``bext`` chunk naming a description, originator or reference; an ``iXML``
    chunk with notes, names or a location), and from a GUANO ``guan`` chunk ``gps`` / ``camera_serial`` /
    ``audio_tags`` (:func:`guano_kinds`)."""
    found: set[str] = set()
    p, n = 12, len(d)
    for _ in range(256):
        if p + 8 > n:
            break
        cid, size = d[p:p + 4], int.from_bytes(d[p + 4:p + 8], "little")
        body = d[p + 8:p + 8 + min(size, _XMP_BYTES)]
        if cid in (b"id3 ", b"ID3 "):
            if _id3v2(body):
                found.add("audio_tags")
        elif cid == b"LIST" and body[:4] == b"INFO":
            q, end = p + 12, min(p + 8 + size, n)
            for _ in range(_TAG_ITEMS):
                if q + 8 > end:
                    break
                sub, k = d[q:q + 4], int.from_bytes(d[q + 4:q + 8], "little")
                if sub not in _TOOL_INFO and d[q + 8:q + 8 + k].strip(b"\x00 "):
                    found.add("audio_tags")
                    break
                q += 8 + k + (k & 1)
        elif cid == b"bext":
            if body[:320].replace(b"\x00", b"").strip():
                found.add("bwf")
        elif cid == b"iXML":
            if _IXML_TEXT.search(body):
                found.add("bwf")
        elif cid == b"guan":  # GUANO, the bat recorders' metadata (Song Meter, AudioMoth, Pettersson): QA38 B #3
            found |= guano_kinds(body)
        p += 8 + size + (size & 1)
    return found


def _audio_tags(d: bytes) -> bool:
    """Whether audio bytes carry tags: FLAC Vorbis comments, Ogg Vorbis / Opus comments, ID3 (v2 at the
    start, v1 at the end), a WAV ``LIST``/``INFO`` or ``id3`` chunk (the encoder's own name excepted)."""
    if d[:3] == b"ID3":
        return _id3v2(d)
    if d[:4] == b"fLaC":
        p, n = 4, len(d)
        for _ in range(128):
            if p + 4 > n:
                break
            kind, size = d[p] & 0x7F, int.from_bytes(d[p + 1:p + 4], "big")
            if kind == 4 and _vorbis_comments(d[p + 4:p + 4 + size]):
                return True
            if d[p] & 0x80:
                break
            p += 4 + size
        return False
    if d[:4] == b"OggS":
        head = d[:65536]
        for magic in (b"\x03vorbis", b"OpusTags"):
            at = head.find(magic)
            if at >= 0:
                return _vorbis_comments(head[at + len(magic):])
        return False
    if d[:4] == b"RIFF" and d[8:12] == b"WAVE":
        return "audio_tags" in _wav_kinds(d)
    return len(d) >= 128 and d[-128:-125] == b"TAG"  # ID3v1 (an MP3 without an ID3v2 tag)


#: the chunks a PNG / WebP header walk reads looking for EXIF (as the WAV and FLAC walks stop at 256 / 128): a
#: crafted file of empty chunks costs at most this many steps, not one per 8 bytes; an animated WebP keeps its EXIF
#: after one ANMF chunk per frame, so the bound leaves room for 16k frames
_IMAGE_CHUNKS = 1 << 14
#: PNG text keys that software writes about itself or the file, not about a person: not counted
_PNG_TOOL_KEYS = frozenset((b"Software", b"Creation Time", b"date:create", b"date:modify", b"date:timestamp",
                            b"Raw profile type icc", b"Raw profile type icm", b"Raw profile type exif",
                            b"Raw profile type APP1", b"Raw profile type xmp", b"XML:com.adobe.xmp"))
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
#: how JPEG comments that encoders write about themselves begin: not counted
#: (GIF comment extensions too: online makers and converters stamp theirs)
_TOOL_COMMENTS = (b"CREATOR: gd-jpeg", b"Created with GIMP", b"Lavc", b"Lavf", b"Intel(R) JPEG Library",
                  b"LEAD Technologies", b"Optimized by JPEGmini", b"Handmade Software", b"AppleMark",
                  b"Created with ezgif.com", b"Made with ezgif.com", b"Created with Gifsicle", b"Optimized with Gifsicle",
                  b"GIF optimized with", b"Created with ImageMagick", b"Created by ImageMagick",
                  b"Made with GIPHY", b"Created with Photoshop", b"Created with Paint.NET",
                  b"Created with Pixelmator", b"Created with Aseprite", b"Created with LICEcap", b"ScreenToGif",
                  b"Created with ScreenToGif", b"Made with Kapwing", b"Created with Canva", b"Created with GNU")
#: a tool's bare name as a whole comment, or followed by a URL only (``GIPHY https://giphy.com/...``); not a prefix:
#: "GIPHY user jane_doe" or "ImageMagick portrait of ..." are a person's words (QA37 third review)
_TOOL_NAMES = re.compile(rb"(?:GIPHY|ImageMagick)(?:\s+https?://\S+)?")


def _tool_comment(text: bytes) -> bool:
    """Whether a JPEG / GIF comment (stripped, NULs removed) is an encoder's or maker's own words."""
    return text.startswith(_TOOL_COMMENTS) or _TOOL_NAMES.fullmatch(text) is not None


def _inflate(b: bytes) -> bytes:
    """zlib data inflated to at most :data:`_XMP_BYTES` bytes (a bomb costs no more); b"" when damaged."""
    try:
        return zlib.decompressobj().decompress(b, _XMP_BYTES)
    except zlib.error:
        return b""


def _raw_profile(text: bytes) -> bytes:
    """The bytes of ImageMagick's ``Raw profile type ...`` text ("\\nexif\\n   SIZE\\n" then hex lines)."""
    parts = text[:2 * _XMP_BYTES + 64].split(b"\n", 3)
    try:
        return bytes.fromhex(parts[3].decode("ascii")) if len(parts) == 4 else b""
    except ValueError:
        return b""


def _png_text(kind: bytes, body: bytes, keys: set[str] | None = None) -> set[str]:
    """The kinds one PNG text chunk carries: EXIF / XMP profiles by their contents, any other key holding text as
    ``text_chunks`` (except :data:`_PNG_TOOL_KEYS`); that chunk's keyword (never its text) goes into ``keys``."""
    key, _, rest = body.partition(b"\x00")
    if kind == b"zTXt":  # a compression method byte, then zlib data
        text = _inflate(rest[1:]) if key.startswith(b"Raw profile type") else rest[1:]
    elif kind == b"iTXt":  # compression flag, method, language tag \0, translated keyword \0, text
        flag, rest = rest[:1], rest[2:]
        rest = rest.split(b"\x00", 2)[-1]
        text = _inflate(rest) if flag == b"\x01" else rest
    else:
        text = rest
    if key == b"XML:com.adobe.xmp" or key == b"Raw profile type xmp":
        return xmp_identifying(text if key.startswith(b"XML") else _raw_profile(text))
    if key in (b"Raw profile type exif", b"Raw profile type APP1"):
        return tiff_identifying(_raw_profile(text))
    if key in _PNG_TOOL_KEYS or key.startswith(b"date:") or not text.strip(b"\x00 \t\r\n"):
        return set()
    if keys is not None and len(keys) < _TEXT_KEYS_SEEN:
        shown = png_keyword(key)
        if shown is None:  # counted, and whether it names a patient (PatientName in it), never its text
            n = 1 + sum(_OTHER_KEYWORD_RE.fullmatch(k) is not None for k in keys)
            phi = _PATIENT_KEYS.search(key.decode("latin-1").lower()) is not None
            shown = _OTHER_KEYWORD.format(f"{n}: patient" if phi else n)
        keys.add(shown)
    return {"text_chunks"}


#: how many distinct PNG text keywords one member reports (a crafted file of thousands of chunks: a bounded list)
_TEXT_KEYS_SEEN = 16
#: keywords that name a patient or their record, DICOM style (PatientName, PatientID, PatientBirthDate,
#: AccessionNumber, ReferringPhysicianName, MRN), matched in lower case
_PATIENT_KEYS = re.compile(r"patient|birth|accession|physician|mrn|\bssn\b|medicalrecord")


#: a PNG keyword the card shows as it is: this many characters at most, this many words at most, no run of
#: 4 digits (QA36 review F5: a tool writing the value into the keyword, ``Patient John Smith 1970-01-01``)
_KEYWORD_CHARS, _KEYWORD_WORDS = 40, 3
_DIGIT_RUN = re.compile(r"[0-9]{4}")
#: how a keyword that is not shown (it reads as a value) is kept among the keywords seen: numbered, so that a
#: file's several such keywords count, never their text
_OTHER_KEYWORD = "(other keyword {})"
_OTHER_KEYWORD_RE = re.compile(r"\(other keyword [0-9]+(: patient)?\)")


def _keyword_like(word: str) -> bool:
    """Whether a keyword reads as a keyword (``Comment``, ``Creation Time``, ``PatientName``), not as a value
    written into it (a name and a date: more than :data:`_KEYWORD_WORDS` words, a run of 4 digits, long)."""
    return (len(word) <= _KEYWORD_CHARS and len(word.split()) <= _KEYWORD_WORDS
            and _DIGIT_RUN.search(word) is None)


def png_keyword(key: bytes) -> str | None:
    """A PNG text chunk's keyword as the card may show it: Latin-1 (the PNG rule), anything unprintable as
    ``?``; None when it does not read as a keyword (:func:`_keyword_like`: a tool that wrote a value, such as
    a patient's name and birth date, into the keyword), which the card counts as an "other keyword" without
    its text. The keyword only: a chunk's text may be a name, and is never shown.

    Example:
        >>> png_keyword(b"PatientName"), png_keyword(b"bad\\nkey"), png_keyword(b"Patient John Smith 1970-01-01")
        ('PatientName', 'bad?key', None)
    """
    word = "".join(c if c.isprintable() else "?" for c in key[:79].decode("latin-1")) or "?"
    return word if _keyword_like(word) else None


def text_chunks_what(keys: list[str] | None) -> str:
    """What the card's identifying-metadata warning says of PNG text chunks: :data:`METADATA_WHAT`'s words with
    the keywords seen (``keys``: :func:`identifying_metadata`'s, gathered over the dataset), and a note when
    they name a patient (QA36 medical #6: a fixed "e.g. Author, Comment, Source" hid PatientName / PatientID).
    Keywords only, never the chunks' text.

    Example:
        >>> text_chunks_what(["PatientName", "PatientID"])
        'PNG text chunks (tEXt / zTXt / iTXt; keys: PatientName, PatientID; patient data (DICOM-style keys): likely protected health information)'
        >>> text_chunks_what(None)
        'PNG text chunks (tEXt / zTXt / iTXt)'
    """
    what = METADATA_WHAT["text_chunks"]
    if not keys:
        return what
    from mmdata.checks import plural

    # an older card's keywords are judged again: one holding a value is counted, never shown
    named = [k for k in keys if _OTHER_KEYWORD_RE.fullmatch(k) is None and _keyword_like(k)]
    other = len(keys) - len(named)
    shown = ", ".join(named[:_TEXT_KEYS_SEEN]) + (", ..." if len(named) > _TEXT_KEYS_SEEN else "")
    if other:
        shown += (", " if shown else "") + plural(other, "other keyword")
    phi = any(k.endswith(": patient)") if _OTHER_KEYWORD_RE.fullmatch(k) else _PATIENT_KEYS.search(k.lower())
              for k in keys)
    note = "; patient data (DICOM-style keys): likely protected health information" if phi else ""
    return f"{what[:-1]}; keys: {shown}{note})"


def _png_identifying(data: bytes, keys: set[str] | None = None) -> set[str]:
    """The kinds a PNG's ``eXIf`` and text chunks carry (a chunk walk, bounded: text chunks may follow the
    image data, and a walk costs a step per chunk where a search for their names reads every byte)."""
    found: set[str] = set()
    for p, size, kind in _png_chunks(data):
        if kind == b"eXIf":
            found |= tiff_identifying(data[p + 8:p + 8 + min(size, _XMP_BYTES)])
        elif kind in _PNG_TEXT:
            found |= _png_text(kind, data[p + 8:p + 8 + min(size, 2 * _XMP_BYTES)], keys)
        elif kind == b"IEND":
            break
    return found


def _jpeg_identifying(data: bytes) -> set[str]:
    """The kinds a JPEG's segments before the scan carry: EXIF and XMP (APP1), comments (COM)."""
    # all three sit in segments before the scan (SOS, FF DA; within ~1 KB of the start in most files): most JPEGs
    # (re-encoded ones) have none and cost three bounded searches, no segment walk, no scan of the pixels
    sos = data.find(b"\xff\xda", 2, 1 << 20)
    end = sos if sos > 0 else 65600
    if data.find(b"Exif\x00\x00", 2, end) < 0 and data.find(_JPEG_XMP, 2, end) < 0 \
            and data.find(b"\xff\xfe", 2, end) < 0 and data.find(_PHOTOSHOP, 2, end) < 0:
        return set()
    from mmdata.codecs import jpeg_segments

    found: set[str] = set()
    for m, i, seg in jpeg_segments(data):
        body = data[i + 4:i + 2 + seg]
        if m == 0xE1 and body[:6] == b"Exif\x00\x00":
            found |= tiff_identifying(body)
        elif m == 0xE1 and body.startswith(_JPEG_XMP):
            found |= xmp_identifying(body[len(_JPEG_XMP):])
        elif m == 0xED and body.startswith(_PHOTOSHOP):  # IPTC-IIM (By-line, Contact, City, ...: QA37 licence #5)
            found |= _photoshop_identifying(body)
        elif m == 0xFE:
            text = body.replace(b"\x00", b"").strip()
            if text and not _tool_comment(text):
                found.add("comments")
    return found


def _gif_identifying(d: bytes) -> set[str]:
    """The kinds a GIF's extension blocks carry: a comment extension (``comments``, an encoder's own words
    excepted) and an XMP application extension (:func:`xmp_identifying`). A block walk, bounded like
    :func:`_gif_frames`; the image data's sub-blocks are skipped, not read."""
    if d.find(b"\x21\xfe", 13) < 0 and d.find(b"XMP DataXMP", 13) < 0:  # most GIFs: no walk
        return set()
    found: set[str] = set()
    n = len(d)
    p = 13 + ((3 << ((d[10] & 7) + 1)) if d[10] & 0x80 else 0)
    for _ in range(_IMAGE_CHUNKS):
        if p >= n or d[p] == 0x3B:
            break
        if d[p] == 0x21:
            label = d[p + 1] if p + 1 < n else 0
            p += 2
            if label == 0xFF and d[p:p + 12] == b"\x0bXMP DataXMP":  # raw XMP, not sub-blocked: read to its end
                found |= xmp_identifying(d[p + 12:p + 12 + _XMP_BYTES])
            elif label == 0xFE:
                text, q = b"", p
                while q < n and d[q] and len(text) < _TEXT_BYTES:
                    text += d[q + 1:q + 1 + d[q]]
                    q += 1 + d[q]
                text = text.replace(b"\x00", b"").strip()
                if text and not _tool_comment(text):
                    found.add("comments")
        elif d[p] == 0x2C:
            if p + 10 > n:
                break
            flags = d[p + 9]
            p += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
        else:
            break
        for _ in range(1 << 20):  # data sub-blocks, each at most 255 bytes
            if p >= n or not d[p]:
                break
            p += 1 + d[p]
        p += 1
    return found


#: AIFF / AIFC text chunks that name a person or hold a note: name, author, copyright, annotation
_AIFF_TEXT = frozenset((b"NAME", b"AUTH", b"(c) ", b"ANNO"))


def _aiff_tags(d: bytes) -> bool:
    """Whether an AIFF / AIFC carries a text chunk holding text (:data:`_AIFF_TEXT`) or an ID3 chunk with a
    frame other than the encoder's (QA37 licence #5); a chunk walk bounded like the WAV one."""
    p, n = 12, len(d)
    for _ in range(256):
        if p + 8 > n:
            break
        cid, size = d[p:p + 4], int.from_bytes(d[p + 4:p + 8], "big")
        body = d[p + 8:p + 8 + min(size, _TEXT_BYTES)]
        if cid in _AIFF_TEXT and body.replace(b"\x00", b"").strip():
            return True
        if cid in (b"ID3 ", b"id3 ") and _id3v2(d[p + 8:p + 8 + min(size, _XMP_BYTES)]):
            return True
        p += 8 + size + (size & 1)
    return False


def _webp_identifying(data: bytes) -> set[str]:
    """The kinds a WebP's ``EXIF`` and ``XMP `` chunks carry."""
    if data.find(b"EXIF", 12) < 0 and data.find(b"XMP ", 12) < 0:  # most WebPs: no chunk walk
        return set()
    found: set[str] = set()
    p, n = 12, len(data)
    for _ in range(_IMAGE_CHUNKS):
        if p + 8 > n:
            break
        kind, size = data[p:p + 4], int.from_bytes(data[p + 4:p + 8], "little")
        if kind == b"EXIF":
            found |= tiff_identifying(data[p + 8:p + 8 + min(size, _XMP_BYTES)])
        elif kind == b"XMP ":
            found |= xmp_identifying(data[p + 8:p + 8 + min(size, _XMP_BYTES)])
        p += 8 + size + (size & 1)
    return found


def identifying_metadata(data: bytes, keys: set[str] | None = None) -> set[str]:
    """The kinds of :data:`IDENTIFYING_KINDS` a member's bytes carry, from headers only: EXIF in a JPEG's APP1
    segments, a PNG's ``eXIf`` chunk (or ImageMagick's EXIF text profile), a WebP's ``EXIF`` chunk or a TIFF's
    own directories (``gps``, ``camera_serial``, ``artist``, ``description``); XMP packets (JPEG APP1, PNG
    ``XML:com.adobe.xmp``, WebP ``XMP ``, TIFF tag 700: ``xmp``, and the kinds above they name); PNG text chunks
    (``text_chunks``; the keys software writes about itself, :data:`_PNG_TOOL_KEYS`, excepted); JPEG comments
    (``comments``); tags in FLAC, Ogg, MP3 and WAV files (``audio_tags``); a WAV's ``bext`` / ``iXML`` chunks
    (``bwf``). ``keys``, when given, gets the keywords of the PNG text chunks counted (:func:`png_keyword`; never
    their text), for the card's warning (:func:`text_chunks_what`).
    Empty for anything else (text, labels) and for damaged headers: hostile bytes raise nothing, and
    every walk is bounded (chunks, segments, bytes read and inflated). Cheap: the writer calls it on every image
    and audio member.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> identifying_metadata(image_bytes(0, fmt="jpg")), identifying_metadata(b"a caption")
        (set(), set())
    """
    if not data.startswith(_META_MAGIC):
        return set()
    try:
        if data[:2] == b"\xff\xd8":
            return _jpeg_identifying(data)
        if data[:8] == _PNG_SIG:
            return _png_identifying(data, keys)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_identifying(data)
        if data[:4] in (b"MM\x00*", b"II*\x00"):
            return tiff_identifying(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            kinds = _wav_kinds(data)
            return kinds
        if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
            return {"audio_tags"} if _aiff_tags(data) else set()
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif_identifying(data)
        return {"audio_tags"} if _audio_tags(data) else set()
    except (IndexError, ValueError, OverflowError, MemoryError):  # hostile bytes: nothing found, nothing raised
        return set()
