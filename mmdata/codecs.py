"""Member codecs: how a shard member's extension maps to a field name and how its bytes decode.

A WebDataset sample is the run of tar members sharing a key: ``<key>.<ext>``. The extension after
the key names the field: ``jpg``/``png`` -> ``image``, ``flac``/``wav``/``ogg``/``aiff``/...
(:data:`AUDIO_EXTS`) -> ``audio``, ``txt`` -> ``text``, ``cls`` -> ``label``, ``json`` -> ``json``,
``<name>.npy`` -> ``<name>`` (a named image's values, ``frame1.jpg.npy``, as the tensor its image member
gives: :func:`image_values_tensor`); any other extension is a field of that name, as WebDataset keys it:
``depth.png`` (an image type: its stored values, :func:`decode_image_values`), ``seg.json`` (parsed),
``caption_de.txt`` (a string), anything else (``mp4``, ``voice.flac``) its bytes.

Shards are untrusted input: pickle-based members (``.pyd``, ``.pickle``, ``.pkl``, ``.pth``,
``.pt``) are refused unless the caller passes ``allow_pickle=True``, and ``.npy`` is loaded with
``allow_pickle=False``. What a member may decode to is bounded from its header, before anything is
allocated: an image by its pixel count (``mediainfo.MAX_PIXELS``, the limit ``mmdata shard`` applies),
audio by its samples (:data:`MAX_AUDIO_SAMPLES`); a label is a class id as ``mmdata shard`` reads it
(ASCII digits, at most :data:`MAX_LABEL`); the standard fields (``image``, ``audio``, ``text``,
``label``) come only from their own codecs, never from a ``<key>.image.npy`` or ``<key>.label.npy``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from collections.abc import Callable, Collection, Iterator
from functools import lru_cache
from typing import Any, Union

import numpy as np

#: an animated GIF / WebP / APNG or a multi-page TIFF is read as its first frame (Pillow's default);
#: ``jfif`` (Windows' default for images saved from the web), ``jpe`` and ``jif`` are JPEG files too
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "ppm", "pgm", "jfif", "jpe", "jif")
#: stored as they are, decoded by libsndfile (FLAC by dr_flac when miniaudio is installed); AIFF / AIFC
#: (``.aiff``, ``.aif``, ``.aifc``) as soundfile reads them, and the other containers libsndfile reads that
#: speech and audio corpora ship: Ogg Opus / Vorbis (``.opus``, ``.oga``), NIST SPHERE (``.sph``: TIMIT,
#: Switchboard; PCM, A-law, mu-law — not shorten-compressed), Sun / NeXT (``.au``, ``.snd``), Sony Wave64
#: (``.w64``), Apple CAF (``.caf``: PCM, ALAC) and RF64 (``.rf64``)
AUDIO_EXTS = ("flac", "wav", "ogg", "mp3", "aiff", "aif", "aifc", "opus", "oga", "sph", "au", "snd", "w64", "caf",
              "rf64")
TEXT_EXTS = ("txt", "text")
#: the class id of a sample. WebDataset's ``.index`` (a sample's position, like ``.id`` / ``.count``) is no class:
#: it is its own field, ``index``, decoded as an integer (:data:`INT_EXTS`), never the label
LABEL_EXTS = ("cls", "label")
#: integer members that are no class id, decoded as WebDataset decodes them (``int(data)``): field = the extension
INT_EXTS = ("index",)
PICKLE_EXTS = ("pyd", "pickle", "pkl", "pth", "pt")
#: common media types we do not decode, with what to do instead (:func:`unsupported_reason`): Apple's
#: HEIC / HEIF photos and M4A / AAC recordings (iPhone, Mac) — Pillow and libsndfile read neither
UNSUPPORTED_EXTS: dict[str, str] = {
    **dict.fromkeys(("heic", "heif"), "image"),
    **dict.fromkeys(("m4a", "aac"), "audio"),
}
#: the fields collate and the ops treat specially, and the only member types that may supply each
STANDARD_FIELD_EXTS: dict[str, tuple[str, ...]] = {"image": IMAGE_EXTS, "audio": AUDIO_EXTS, "text": TEXT_EXTS,
                                                   "label": LABEL_EXTS}
#: the most samples (frames x channels) one audio member may decode to: 2^29 float32 samples, 2 GiB
#: (the order of the image limit, ``mediainfo.MAX_PIXELS`` RGB pixels: 0.5 GiB of uint8). That is
#: 93 minutes of 48 kHz stereo, 9.3 hours of 16 kHz mono. Checked from the header (FLAC STREAMINFO,
#: the WAV data chunk, libsndfile's frame count) before decoding; a stream that declares no length is
#: decoded a block at a time and refused once it passes the limit.
MAX_AUDIO_SAMPLES = 1 << 29
#: a decode hint for audio (``decode_audio(max_frames=)``, ``open_dataset(audio_max_frames=)``): the frames
#: from the start of a clip that its reader uses, as a function of the clip's sample rate (an int: the same
#: at every rate); the rest of the clip is not decoded
AudioFrames = Union[int, Callable[[int], int]]
#: the largest class id a label member may hold: collate stores labels in an int64 tensor
MAX_LABEL = (1 << 63) - 1
#: a label member longer than this is refused unread (a class id is a few digits)
MAX_LABEL_BYTES = 4096


from mmdata.errors import ShardError


class DecodeError(ShardError):
    """A member could not be decoded; the message names the member and what was expected."""


class UnsafeMemberError(DecodeError):
    """A member needs pickle to decode and ``allow_pickle`` is off."""


class OversizeMediaError(DecodeError):
    """A member's header declares more pixels or samples than the decode limits allow; not decoded."""


class StandardFieldError(DecodeError):
    """A member names a standard field its type cannot supply (``<key>.label.npy``)."""


def unsupported_reason(name: str) -> str | None:
    """Why a file of a known but unsupported media type (:data:`UNSUPPORTED_EXTS`) is left out, with the
    conversion that makes it usable; None for any other name. For the "unknown file type" message of a
    source's file (``IMG_0001.HEIC`` from an iPhone is no unknown type to its owner).

    Example:
        >>> unsupported_reason("IMG_0001.HEIC")[:60]
        'a HEIC image: not supported (Pillow cannot decode it): conve'
        >>> unsupported_reason("memo.m4a")[-50:], unsupported_reason("notes.zip")
        ('to WAV or FLAC (e.g. ffmpeg -i memo.m4a memo.flac)', None)
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    kind = UNSUPPORTED_EXTS.get(ext.lower()) if dot and stem else None
    if kind is None:
        return None
    import shlex  # the example command must run as shown, spaces and quotes in the name included

    src, jpg, flac = shlex.quote(base), shlex.quote(f"{stem}.jpg"), shlex.quote(f"{stem}.flac")
    if kind == "image":
        return (f"a {ext.upper()} image: not supported (Pillow cannot decode it): convert it to JPEG or PNG (e.g. "
                f"heif-convert {src} {jpg}, or macOS: sips -s format jpeg {src} --out {jpg})")
    return (f"{ext.upper()} audio: not supported (libsndfile cannot decode it): convert it to WAV or FLAC "
            f"(e.g. ffmpeg -i {src} {flac})")


@lru_cache(maxsize=4096)  # called per member when sharding and reading; extensions repeat
def member_type(ext: str) -> str:
    """A member's file type: the last part of its extension, lower-cased (``depth.PNG`` -> ``png``), which
    picks its codec and its checks.

    Example:
        >>> member_type("depth.PNG"), member_type("jpg"), member_type("seg.json")
        ('png', 'jpg', 'json')
    """
    return ext.lower().rsplit(".", 1)[-1]


def field_of(ext: str) -> str:
    """The field name for a member extension (everything after the sample key's first dot).

    The standard types name the standard fields, ``<name>.npy`` the field ``<name>``; any other
    extension is a field of its own name, as WebDataset keys it (``depth.png``, ``seg.json``, ``mp4``),
    decoded by its last part's codec (:func:`decode_member`).

    Example:
        >>> field_of("jpg"), field_of("FLAC"), field_of("depth.npy"), field_of("cls")
        ('image', 'audio', 'depth', 'label')
        >>> field_of("depth.png"), field_of("seg.json"), field_of("mp4")
        ('depth.png', 'seg.json', 'mp4')
    """
    e = ext.lower()
    last = member_type(e)
    if e in IMAGE_EXTS:
        return "image"
    if e in AUDIO_EXTS:
        return "audio"
    if e in TEXT_EXTS:
        return "text"
    if e in LABEL_EXTS:
        return "label"
    if last == "npy" and "." in e and e.rsplit(".", 1)[0]:
        return e.rsplit(".", 1)[0]
    if e == "npy":
        return "array"
    return e


try:  # libjpeg-turbo with DCT-scaled decoding; 3-8x faster than going through PIL (benchmarks/read.py)
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - optional speed-up; PIL decodes the same pixels
    _simplejpeg = None
try:  # dr_flac; ~3x faster than libsndfile on short clips, identical samples (tests/test_codecs.py)
    import miniaudio as _miniaudio
except ImportError:  # pragma: no cover - optional speed-up; soundfile decodes the same samples
    _miniaudio = None


_ORIENTATION = 0x0112  # the EXIF / TIFF Orientation tag
_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(="|>)([0-9])')  # the pattern Pillow's getexif() reads


#: EXIF entry type -> bytes per value, for the types Pillow loads (others it skips: the entry is absent)
_TIFF_UNIT = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}


_TIFF_PREFIXES = (b"MM\x00*", b"II*\x00", b"MM*\x00", b"II\x00*", b"MM\x00+", b"II+\x00")


def tiff_orientation(t: bytes) -> int | None:
    """The Orientation entry of IFD0 of TIFF-structured EXIF data (``Exif\\0\\0`` prefix allowed), as
    Pillow reads it: the first value of a SHORT / LONG entry (signed ones alike), 0 for an entry of
    another type (Pillow then applies nothing), None when absent (no entry, no values, a type Pillow
    skips, values past the end of the data: XMP may then give it).

    Example:
        >>> entry = bytes([1, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0])  # Orientation, SHORT, 1 value: 6
        >>> tiff_orientation(b"Exif\\0\\0MM\\0*" + bytes([0, 0, 0, 8, 0, 1]) + entry)
        6
    """
    for _ in range(2):  # Pillow strips the prefix up to twice
        if t[:6] == b"Exif\x00\x00":
            t = t[6:]
    n = len(t)
    # Pillow's TIFF prefixes (either byte order with either magic order, and BigTIFF's 43, which in
    # EXIF it reads as a classic header unless the third byte is 43: then it fails and finds nothing)
    if n < 8 or t[:4] not in _TIFF_PREFIXES or t[2] == 43:
        return None
    e = "little" if t[0] == 0x49 else "big"
    p = int.from_bytes(t[4:8], e)
    if p > n - 2:
        return None
    count = int.from_bytes(t[p:p + 2], e)
    p += 2
    found = None
    for _ in range(count):  # a duplicated entry: the last one wins, as in Pillow's tag dict
        if p > n - 12:
            break  # Pillow keeps the entries read before a cut directory too
        if int.from_bytes(t[p:p + 2], e) == _ORIENTATION:
            kind, num = int.from_bytes(t[p + 2:p + 4], e), int.from_bytes(t[p + 4:p + 8], e)
            unit = _TIFF_UNIT.get(kind)
            if unit is not None and num:
                at = p + 8 if unit * num <= 4 else int.from_bytes(t[p + 8:p + 12], e)
                if at + unit * num <= n:  # else Pillow warns and skips the entry
                    found = int.from_bytes(t[at:at + unit], e) if kind in (3, 4, 8, 9) else 0
        p += 12
    return found


_JPEG_MARKER = re.compile(rb"\xff[^\xff]")


def jpeg_marker(d: bytes, i: int) -> int:
    """The offset of the next JPEG marker's 0xFF at or after ``i`` (an FF not followed by FF: junk and fill
    bytes before it skipped, as libjpeg skips them), ``len(d)`` when there is none. The skip runs in C: junk
    between segments costs no Python step per byte (QA28: 100 MB of it took 10 s per walk).

    Example:
        >>> jpeg_marker(b"\\xff\\xd8junk\\xff\\xff\\xff\\xe1", 2), jpeg_marker(b"\\xff\\xd8junk", 2)
        (8, 6)
    """
    found = _JPEG_MARKER.search(d, i)
    return len(d) if found is None else found.start()


def jpeg_segments(d: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of its 0xFF, segment length) of each marker segment of JPEG bytes before the scan —
    the segment walk of ``mediainfo._jpeg``: junk and fill bytes skipped as libjpeg does, a length that
    runs past the data ends the walk. Headers only: no pixel decode.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> 0xC0 in [m for m, _, _ in jpeg_segments(image_bytes(0, fmt="jpg"))]  # the frame header (SOF0)
        True
    """
    n = len(d)
    i = 2
    while True:
        i = jpeg_marker(d, i)
        if n - i < 4:
            return
        m = d[i + 1]
        if m == 0x00 or m == 0xD8 or m == 0x01 or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if m == 0xD9 or m == 0xDA:
            return
        seg = (d[i + 2] << 8) | d[i + 3]
        if seg < 2 or seg > n - i - 2:
            return
        yield m, i, seg
        i += 2 + seg


def jpeg_orientation(d: bytes) -> int:
    """The EXIF orientation (1-8; 1 when none) of JPEG bytes, read as Pillow's ``getexif()`` reads it:
    the APP1 ``Exif`` segments before the scan (joined), else ``tiff:Orientation`` in the last APP1 XMP
    packet. Parses segment headers only: no pixel decode, no PIL object.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> jpeg_orientation(image_bytes(0, fmt="jpg"))
        1
    """
    exif = xmp = None
    for m, i, seg in jpeg_segments(d):
        if m == 0xE1:
            if d[i + 4:i + 10] == b"Exif\x00\x00" and seg >= 8:
                s = d[i + 4:i + 2 + seg]
                exif = s if exif is None else exif + s[6:]
            elif d[i + 4:i + 33] == _XMP_APP1 and seg >= 31:
                xmp = d[i + 33:i + 2 + seg]
    o = tiff_orientation(exif) if exif is not None else None
    if o is None and xmp is not None:
        match = _XMP_ORIENTATION.search(xmp)
        o = int(match[2]) if match else None
    return o if o is not None and 1 <= o <= 8 else 1


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """An HW / HWC array as an image viewer shows it: EXIF ``orientation`` 2-8 undone by flips and
    transposes (a view; ``PIL.ImageOps.exif_transpose``'s pixels), 1 and anything else as it is.

    Example:
        >>> orient(np.array([[1, 2, 3], [4, 5, 6]]), 6).tolist()  # stored turned 90 degrees left
        [[4, 1], [5, 2], [6, 3]]
    """
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation in (5, 6, 7, 8):
        t = arr.swapaxes(0, 1)
        # 5 transpose, 6 turn right, 7 transverse, 8 turn left (PIL's Transpose names)
        return t if orientation == 5 else t[:, ::-1] if orientation == 6 else t[::-1, ::-1] if orientation == 7 \
            else t[::-1]
    return arr


def dct_scale(h: int, w: int, max_size: tuple[int, int], scales: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)) -> int:
    """m of the smallest m/8 DCT-scaled JPEG decode (libjpeg: ``ceil(side * m / 8)`` pixels) that
    ``max_size=(h, w)`` allows; 8 (full size) when none does.

    A scale is used only when both sides, at the exact scale ``side * m / 8``, stay at least the
    requested size (or the image's own side, when that is smaller: an image a resize will enlarge is
    never shrunk first), and the rounded-up decode keeps the aspect ratio to within a pixel. A very
    short image (1-3 rows) decoded at 1/8 is one row that averages 8, and a wide image's rounded-up
    height would change its aspect ratio by a third: both decode at full size.

    Example:
        >>> dct_scale(224, 224, (64, 64)), dct_scale(1, 800, (16, 16)), dct_scale(3, 800, (16, 16))
        (3, 8, 8)
    """
    need_h, need_w = max(1, min(int(max_size[0]), h)), max(1, min(int(max_size[1]), w))
    for m in scales:
        if h * m < 8 * need_h or w * m < 8 * need_w:
            continue
        sh, sw = -(-h * m // 8), -(-w * m // 8)
        if abs(sw * h - sh * w) <= min(h, w):  # |sw - sh*w/h| <= 1 and |sh - sw*h/w| <= 1
            return m
    return 8


def _pil_orientation(im: Any) -> int:
    """The EXIF orientation Pillow reads for an opened image (what ``ImageOps.exif_transpose`` applies); 1 when none."""
    try:
        o = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: exif_transpose would fail too; the pixels still decode
        return 1
    return o if isinstance(o, int) and 2 <= o <= 8 else 1


def jpeg_size(d: bytes) -> tuple[int, int] | None:
    """(height, width) a JPEG's frame header declares, from its segment headers only (no decode); the
    largest when there are several frame headers before the scan, None when there is none.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> jpeg_size(image_bytes(0, size=(24, 32), fmt="jpg"))
        (24, 32)
    """
    size = None
    for m, i, seg in jpeg_segments(d):
        if m in _JPEG_SOF and seg >= 7:
            h, w = (d[i + 5] << 8) | d[i + 6], (d[i + 7] << 8) | d[i + 8]
            if size is None or h * w > size[0] * size[1]:
                size = (h, w)
    return size


_JPEG_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


#: Pillow's ``DecompressionBombWarning`` size (its default ``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 MP): mmdata
#: decodes images up to ``mediainfo.MAX_PIXELS`` (twice this) and says so once per dataset read (:func:`check_pixels`,
#: :func:`reset_large_image_warning`) instead of Pillow's raw warning for every such image (QA: 12000x9000 photos printed one
#: per read)
LARGE_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3
_large_lock = threading.Lock()
#: whether the large-image warning was given since the last :func:`reset_large_image_warning` (a dataset opened,
#: a job started): once a process before QA36 (notebook #3: the second dataset of a notebook was told nothing)
_large_seen = False
#: the ignore filters for Pillow's DecompressionBombWarning this module put in ``warnings.filters`` while images
#: are open (:func:`_pillow_bomb_quiet`), and how many opens are in flight: the last one out takes them out again
_bomb_filters: list[tuple[Any, ...]] = []
_bomb_users = 0


def reset_large_image_warning() -> None:
    """Let :func:`check_pixels` warn again about the next image over :data:`LARGE_IMAGE_PIXELS`: called when a
    dataset is opened for reading and when a job starts, so each dataset of a notebook is told once (QA36
    notebook #3: the warning was once a process).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     for _ in range(2):
        ...         reset_large_image_warning()
        ...         check_pixels("PNG", 9500, 9500); check_pixels("PNG", 9500, 9500)
        >>> len(seen)
        2
    """
    global _large_seen
    with _large_lock:
        _large_seen = False


@contextlib.contextmanager
def _pillow_bomb_quiet() -> Iterator[None]:
    """Ignore Pillow's ``DecompressionBombWarning`` while mmdata opens an image with Pillow, and only then:
    :func:`check_pixels` refuses images over ``mediainfo.MAX_PIXELS`` itself and warns once for those over
    :data:`LARGE_IMAGE_PIXELS`. The filter goes first (again, when another was put before it since), and the
    last open to finish takes every filter it put in out again, so a caller's own ``Image.open`` of a large image
    after mmdata's call still gets Pillow's warning (QA36 notebook #3: the filter outlived the call). Counted
    under a lock, not ``warnings.catch_warnings`` (decode threads would restore each other's lists)."""
    global _bomb_users
    import warnings

    from PIL import Image

    with _large_lock:
        _bomb_users += 1
        if not warnings.filters or all(warnings.filters[0] is not f for f in _bomb_filters):
            # inserted as a new tuple, not by filterwarnings (which first removes an equal filter: a caller's own
            # "ignore DecompressionBombWarning" would be taken out with ours at the end)
            item = ("ignore", None, Image.DecompressionBombWarning, None, 0)
            warnings.filters.insert(0, item)
            warnings._filters_mutated()
            _bomb_filters.append(item)
    try:
        yield
    finally:
        with _large_lock:
            _bomb_users -= 1
            if not _bomb_users and _bomb_filters:
                ours = {id(f) for f in _bomb_filters}
                warnings.filters[:] = [f for f in warnings.filters if id(f) not in ours]
                _bomb_filters.clear()
                warnings._filters_mutated()  # an "ignore" cached in a module's registry must not outlast the filter


def check_pixels(fmt: str, h: int, w: int) -> None:
    """Raise :class:`DecodeError` when an image of ``h x w`` pixels is over ``mediainfo.MAX_PIXELS``,
    the decompression-bomb limit ``mmdata shard`` applies (Pillow's ``MAX_IMAGE_PIXELS`` x 2): called
    with the header's size before any decoder allocates the pixels. The first image over
    :data:`LARGE_IMAGE_PIXELS` (Pillow's warning size) since :func:`reset_large_image_warning` (a dataset
    opened, a job started) gets one UserWarning saying what it costs.

    Example:
        >>> check_pixels("JPEG", 30000, 30000)
        Traceback (most recent call last):
        ...
        mmdata.codecs.OversizeMediaError: JPEG of 30000x30000 pixels (900000000 pixels) is over the limit of 178956970 pixels (a decompression bomb?); not decoded (mmdata.shards.mediainfo.MAX_PIXELS, Pillow's bomb limit; resize such images before sharding)
    """
    from mmdata.shards.mediainfo import MAX_PIXELS

    if h * w > MAX_PIXELS:
        raise OversizeMediaError(f"{fmt} of {w}x{h} pixels ({w * h} pixels) is over the limit of {MAX_PIXELS} pixels "
                                 "(a decompression bomb?); not decoded (mmdata.shards.mediainfo.MAX_PIXELS, Pillow's "
                                 "bomb limit; resize such images before sharding)")
    global _large_seen

    if h * w > LARGE_IMAGE_PIXELS:
        with _large_lock:
            if _large_seen:
                return
            _large_seen = True
        import warnings

        warnings.warn(large_image_warning(fmt, h, w), UserWarning, stacklevel=2)


def large_image_warning(fmt: str, h: int, w: int) -> str:
    """The warning for an image of ``h x w`` pixels over :data:`LARGE_IMAGE_PIXELS` (:func:`check_pixels`; a job
    may list it in its result's warnings).

    Example:
        >>> large_image_warning("PNG", 9500, 9500)[:60]
        "PNG of 9500x9500 pixels (90.2 MP) is over Pillow's decompres"
    """
    from mmdata.shards.mediainfo import MAX_PIXELS

    return (f"{fmt} of {w}x{h} pixels ({h * w / 1e6:.1f} MP) is over Pillow's decompression-bomb warning size "
            f"({LARGE_IMAGE_PIXELS / 1e6:.1f} MP): it decodes to {h * w * 3 / 2**20:,.0f} MiB (RGB); mmdata "
            f"reads images up to {MAX_PIXELS / 1e6:.1f} MP and refuses larger ones; said once per dataset read "
            "(Pillow's own warning is silenced while mmdata decodes); resize large images before sharding, or "
            "normalize with resize")


def large_images_warning(n: int, images: int, largest: tuple[int, int], keys: list[str]) -> str:
    """A job's warning on ``n`` of its ``images`` images over :data:`LARGE_IMAGE_PIXELS` (``largest``: the
    (height, width) of the largest; ``keys``: example sample keys), for its result's and card's warnings: the
    reader says it once per dataset read (:func:`check_pixels`), a job's result lists it (QA36 notebook #3).

    Example:
        >>> large_images_warning(1, 4, (9500, 9500), ["big"])[:84]
        "1 image (of 4) is over Pillow's decompression-bomb warning size (89.5 MP; e.g. big):"
    """
    from mmdata.shards.mediainfo import MAX_PIXELS

    h, w = largest
    one = n == 1
    return (f"{n} image{'s' * (not one)} (of {images}) {'is' if one else 'are'} over Pillow's decompression-bomb "
            f"warning size ({LARGE_IMAGE_PIXELS / 1e6:.1f} MP; e.g. {', '.join(keys)}): the largest, {w}x{h} "
            f"({h * w / 1e6:.1f} MP), decodes to {h * w * 3 / 2**20:,.0f} MiB (RGB) per read; mmdata reads images up "
            f"to {MAX_PIXELS / 1e6:.1f} MP; resize large images before sharding, or normalize with resize")


def _jpeg_fast(data: bytes, max_size: tuple[int, int] | None) -> np.ndarray | None:
    """HWC uint8 via simplejpeg for RGB/greyscale baseline or progressive JPEGs, else None (use PIL).
    Stored orientation; ``max_size`` is in stored orientation too (see :func:`dct_scale`)."""
    if _simplejpeg is None or data[:3] != b"\xff\xd8\xff":
        return None
    try:
        h, w, space, _ = _simplejpeg.decode_jpeg_header(data)
    except (ValueError, RuntimeError):
        return None  # let PIL decide (and name the error) for anything unusual
    check_pixels("JPEG", h, w)  # libjpeg's own reading of the header: what decode_jpeg would allocate
    try:
        if space not in ("Gray", "YCbCr", "RGB"):
            return None  # CMYK / YCCK: PIL converts those
        kw: dict[str, Any] = {"colorspace": "GRAY" if space == "Gray" else "RGB"}
        m = 8 if max_size is None else dct_scale(h, w, max_size)
        if m < 8:  # simplejpeg picks the smallest m/8 whose ceil sizes reach these: this m
            kw.update(min_height=-(-h * m // 8), min_width=-(-w * m // 8))
        return _simplejpeg.decode_jpeg(data, **kw)
    except (ValueError, RuntimeError):
        return None  # let PIL decide (and name the error) for anything unusual


#: a 16-bit image whose values lie below this (12 significant bits or fewer: 12-bit camera or medical data in a
#: 16-bit file) decodes by ``v >> 8`` to at most 15 of 255: nearly black. ``mmdata shard`` reads the values of a
#: dataset's 16-bit images and its card warns about each image whose :data:`DARK_PERCENTILE` is under
#: :data:`DARK_MAX` (:func:`mmdata.shards.mediainfo.sixteen_bit_warning`), in these words when it is under this;
#: decoding says nothing (it runs in every DataLoader worker, every epoch: a warning there repeated, and one image
#: cannot tell the dataset's range)
LOW_BITS_MAX = 4096
#: a 16-bit image whose values lie below this (14 significant bits or fewer) decodes by ``v >> 8`` to at most 63 of
#: 255: a quarter of the grey levels or less (a 14-bit detector). The card warns about it (QA36 medical #3: only
#: 12-bit images were warned of)
DARK_MAX = 1 << 14
#: the percentile of an image's values that the card's dark-image warning judges by, not its maximum: a 12-bit scan
#: with a burned-in marker or one saturated pixel at 65535 still decodes nearly black (QA36 medical #3); by nearest
#: rank, so an image of up to 999 values is judged by its maximum
DARK_PERCENTILE = 99.9
#: a float (``F``) image whose finite values lie at or under 1 is read as unit range (``v * 255``); so is one whose
#: values are not all whole numbers, all lie at or under this, and at most :data:`FLOAT_OVER_SHARE` of them above 1
#: (:func:`float_unit_range`), those clipped to 255; any other as 0-255. Reflectance tiles (Sentinel-2 L2A, Landsat
#: surface reflectance) hold cloud / specular pixels just above 1, and one of them flipped the whole tile to the
#: 0-255 rule, where it decoded black (QA37 geo #2); a limit of 0.1% still did so at 0.5% cloud (QA37 third review).
#: An image with most values above 1 (an offset index, 1 + reflectance) or of whole numbers only (a class map 0 / 1
#: / 2 stored as float: classes 1 and 2 must not merge at 255) is read as 0-255, as before. The card counts the
#: pixels clipped, and warns of float images read as 0-255 whose values lie at or under this
#: (:func:`mmdata.shards.mediainfo.deep_warnings`)
FLOAT_UNIT_MAX = 2.0
#: the largest share of a float image's finite values that may lie above 1 (up to :data:`FLOAT_UNIT_MAX`) while it is
#: read as unit range: a tile's cloud / highlight pixels, not an offset of all of it
FLOAT_OVER_SHARE = 0.05


def float_outliers_few(outliers: int, values: int) -> bool:
    """Whether ``outliers`` of an image's ``values`` are "a few" for the card's warning of float images read as
    0-255 because of pixels above :data:`FLOAT_UNIT_MAX` (a saturated pixel): one, or at most 0.1%
    (100 - :data:`DARK_PERCENTILE`), and never more than 1% (two pixels of a 10-pixel tile are not a few).

    Example:
        >>> float_outliers_few(1, 256), float_outliers_few(1, 64), float_outliers_few(2, 1000)
        (True, False, False)
    """
    return 0 < outliers and outliers * 100 <= values and outliers <= max(1, int(values * (100 - DARK_PERCENTILE) / 100))


def float_unit_range(finite: np.ndarray) -> bool:
    """Whether the reader takes a float image of these finite values as unit range (``v * 255``): none negative
    (as before 2026-12-07: an image with negative values is read as 0-255), and all at or under 1; or not all whole
    numbers, all at or under :data:`FLOAT_UNIT_MAX` and at most
    :data:`FLOAT_OVER_SHARE` of them above 1 (reflectance with cloud pixels, clipped to 255).

    Example:
        >>> float_unit_range(np.array([0.2, 1.0])), float_unit_range(np.array([1.5, 1.9, 1.2]))
        (True, False)
        >>> float_unit_range(np.array([0.2] * 19 + [1.08])), float_unit_range(np.array([0.0] * 19 + [2.0]))
        (True, False)
    """
    if not finite.size or float(finite.min()) < 0.0:  # negatives (NDVI in -1..1, a signed map): 0-255 as ever
        return False
    high = float(finite.max())
    if high <= 1.0:
        return True
    if high > FLOAT_UNIT_MAX or np.count_nonzero(finite > 1.0) > FLOAT_OVER_SHARE * finite.size:
        return False
    return bool(np.any(finite != np.floor(finite)))  # whole numbers: a class map, read as 0-255


def follows_image(image_hw: tuple[int, ...], hw: tuple[int, ...]) -> bool:
    """Whether ``hw`` is the image's height and width: as stored (:func:`same_image_size`) or at 1/2, 1/4 or 1/8 of
    it (a reduced-resolution map), within rounding. Not any aspect-ratio match: a (5, 4) box list is no map. The
    one rule of what a per-pixel map is: augment moves such fields with the image, shard does not warn of them
    (here: no torch import on the shard path).

    Example:
        >>> follows_image((64, 48), (32, 24)), follows_image((64, 48), (5, 4))
        (True, False)
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    return same_image_size((h, w), (int(hw[0]), int(hw[1]))) or any(
        abs(hw[0] - h / k) < 1 and abs(hw[1] - w / k) < 1 for k in (2, 4, 8))


def same_image_size(image_hw: tuple[int, int], hw: tuple[int, int]) -> bool:
    """Whether a field of ``hw`` is the image's size as stored: equal, or the image is a JPEG the loader
    decoded DCT-scaled by k/8 for a recipe that resizes (:func:`dct_scale`: ceil of each side x k/8)."""
    return any(-(-hw[0] * k // 8) == image_hw[0] and -(-hw[1] * k // 8) == image_hw[1] for k in range(1, 9))


def image_array(im: Any, keep_alpha: bool = False) -> np.ndarray:
    """The uint8 pixels of a loaded PIL image: HW for greyscale, HWC (RGB) otherwise.

    ``keep_alpha``: an image with an alpha channel or a transparent colour (``RGBA``, ``LA``, ``PA``,
    a palette or greyscale image with ``transparency``) keeps it: HWC with 4 (RGBA) or 2 (LA, for
    greyscale sources) channels, so a recipe's ``to_rgb`` / ``to_gray`` with ``alpha: blend`` can
    composite it onto its background. Other images are as below.

    The one place mmdata maps Pillow modes to 8-bit pixels:

    * ``L``, ``RGB``: the stored bytes.
    * 16-bit greyscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): ``v >> 8``, the full 0-65535 range
      onto 0-255. It is what Pillow itself does to 16-bit RGB / RGBA / LA PNGs (keeps the high byte),
      and what ``torchvision.transforms.v2.ToDtype(torch.uint8, scale=True)`` and skimage's
      ``img_as_ubyte`` do, so 16-bit grey and 16-bit colour files darken alike; every 8-bit level
      gets exactly 256 input values. 12-bit data (under :data:`LOW_BITS_MAX`) decodes nearly black,
      14-bit data (under :data:`DARK_MAX`) dark: ``mmdata shard`` says so on the dataset's card (judged by
      each image's :data:`DARK_PERCENTILE`, so a few bright marker pixels do not hide it); rescale it before
      sharding.
    * ``I`` (32-bit int: Pillow's mode for 16-bit PGM, int32 TIFF, and 16-bit PNG in older Pillow):
      taken as 16-bit data: clipped to 0-65535, then ``v >> 8``.
    * ``F`` (32-bit float): when its finite values are none negative and all lie at or under 1, or are not all
      whole numbers, all lie
      at or under :data:`FLOAT_UNIT_MAX` (2) and at most :data:`FLOAT_OVER_SHARE` (5%) of them above 1
      (:func:`float_unit_range`), it is taken as unit range (``v * 255``: reflectance with cloud pixels above 1
      stays unit range, those pixels clip to 255, and the card counts them), otherwise as 0-255 (a class map of
      whole numbers 0 / 1 / 2 decodes to 0 / 1 / 2); rounded half up, clipped to 0-255, NaN -> 0 (nodata reads as
      a dark pixel: ``mmdata shard`` counts such images on the card, as it does float images read as 0-255 whose
      values lie almost all under 2, which decode nearly black).
    * ``1`` (bilevel: a G4 fax / OCR scan) and ``LA`` (grey + alpha): greyscale, 1 channel as ``L`` (``1`` as
      0 / 255; ``LA``'s alpha dropped as ``RGBA``'s is) — a grey scan set batches without a ``to_gray`` and a
      bilevel page costs a third of the memory RGB would (QA38 documents #6).
    * anything else (``RGBA``, ``P``, ``CMYK``, ...): PIL's ``convert("RGB")`` (alpha dropped, palette applied).

    Example:
        >>> from PIL import Image
        >>> image_array(Image.fromarray(np.array([[0, 255, 256, 65535]], np.uint16))).tolist()
        [[0, 0, 1, 255]]
    """
    mode = im.mode
    if keep_alpha and (mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info):
        return np.array(im.convert("LA" if mode in ("LA", "La", "L") else "RGBA"))
    if mode in ("L", "RGB"):
        return np.array(im)  # a writable copy (np.asarray of a PIL image is read-only)
    if mode in ("1", "LA"):
        return np.array(im.convert("L"))
    if mode.startswith("I;16") or mode == "I":
        # PIL's convert("L"/"RGB") clips these at 255 instead of scaling: a 16-bit scan came out white
        v = np.asarray(im).astype(np.int64)
        return (np.clip(v, 0, 65535) >> 8).astype(np.uint8)
    if mode == "F":
        v = np.asarray(im).astype(np.float64)
        finite = v[np.isfinite(v)]
        if float_unit_range(finite):
            v = v * 255.0
        return np.nan_to_num(np.clip(np.floor(v + 0.5), 0, 255), nan=0.0).astype(np.uint8)
    return np.array(im.convert("RGB"))


def decode_image(data: bytes, max_size: tuple[int, int] | None = None, keep_alpha: bool = False) -> Any:
    """Decode image bytes to a uint8 CHW torch tensor (greyscale, bilevel and LA -> 1 channel, RGBA/P -> RGB unless
    ``keep_alpha``: then 4 / 2 channels; 16-bit and float greyscale scaled to 8 bits as
    :func:`image_array` says).

    EXIF orientation is applied (tags 2-8: the pixels and shape ``PIL.ImageOps.exif_transpose`` gives,
    as image viewers, HF ``datasets.Image`` and OpenCV's ``imread`` show them), for JPEG from the
    APP1 segment's bytes (:func:`jpeg_orientation`), for other formats from Pillow's ``getexif()``.
    An animated GIF / WebP / PNG or a multi-page TIFF gives its first frame.

    An image whose header declares more than ``mediainfo.MAX_PIXELS`` pixels is refused before it is
    decoded (:func:`check_pixels`), whatever the format and decoder.

    ``max_size=(h, w)`` (in displayed orientation): a JPEG is decoded DCT-scaled (by m/8) to the
    smallest size that is still at least ``h x w`` and keeps the aspect ratio to within a pixel
    (:func:`dct_scale`; otherwise at full size): several times less work when a resize follows
    anyway. JPEGs decode with simplejpeg (libjpeg-turbo, same pixels as PIL); other formats with PIL.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> tuple(decode_image(image_bytes(0, size=(64, 64), fmt="jpg"), max_size=(16, 16)).shape)
        (3, 16, 16)
    """
    import torch

    jpeg = data[:2] == b"\xff\xd8"
    if jpeg:  # the pixel count before any decoder allocates (simplejpeg has no bomb check of its own)
        size = jpeg_size(data)
        if size is not None:
            check_pixels("JPEG", *size)
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        check_pixels("PNG", int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"))
    orientation = jpeg_orientation(data) if jpeg else 1
    if max_size is not None and orientation >= 5:  # turned a quarter: the stored image's sides swap
        max_size = (max_size[1], max_size[0])
    arr = _jpeg_fast(data, max_size)
    if arr is None:
        from PIL import Image

        with _pillow_bomb_quiet(), Image.open(io.BytesIO(data)) as im:
            check_pixels(im.format or "image", im.height, im.width)  # also when Image.MAX_IMAGE_PIXELS is off
            if max_size is not None and im.format == "JPEG":
                w, h = im.size
                s = 8 // dct_scale(h, w, max_size, (1, 2, 4))  # Pillow's draft scales by 1/2, 1/4, 1/8
                if s > 1:  # a size Pillow's draft turns into exactly this scale
                    im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (w // s, h // s))
            im.load()
            arr = image_array(im, keep_alpha)
            if not jpeg:
                orientation = _pil_orientation(im)
    arr = orient(arr, orientation)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
        if arr.shape[0] == 1:
            arr = arr[:1]
    return torch.from_numpy(np.ascontiguousarray(arr))


def decode_image_values(data: bytes) -> Any:
    """Decode a named image member (``k.depth.png``, ``k.seg.png``) to the values it stores, CHW: a
    paletted mask's indices (not its colours), 16-bit depth as int32 (every uint16 value; torch has
    little uint16 support), a 16-bit colour PNG (KITTI optical flow, normal maps) as int32 too (read by
    cv2: Pillow keeps only the high 8 bits), a float TIFF as float32, alpha kept — ``np.array`` of the
    Pillow image (mode ``1`` as bool). EXIF orientation is applied as for the image (a map stays aligned with it);
    the pixel limit is checked before decoding; an animation gives its first frame. Nothing is
    resized: a recipe's ``image_max_size`` hint is the image's.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> v = decode_image_values(image_bytes(0, size=(4, 6)))
        >>> tuple(v.shape), str(v.dtype)
        ((3, 4, 6), 'torch.uint8')
    """
    import torch
    from PIL import Image

    if data[:2] == b"\xff\xd8" and (size := jpeg_size(data)) is not None:  # as decode_image: from the header
        check_pixels("JPEG", *size)
    elif data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        check_pixels("PNG", int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"))
    with _pillow_bomb_quiet(), Image.open(io.BytesIO(data)) as im:
        check_pixels(im.format or "image", im.height, im.width)
        im.load()
        arr = np.array(im)  # a writable copy (np.asarray of an image is read-only)
        orientation = jpeg_orientation(data) if data[:2] == b"\xff\xd8" else _pil_orientation(im)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[24] == 16 and data[25] in (2, 6):
        arr = _png16_colour(data, arr)
    arr = orient(arr, orientation)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    arr = np.ascontiguousarray(arr)
    if not arr.dtype.isnative:  # Pillow's big-endian 16-bit modes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.uint16:  # torch has no uint16 arithmetic to speak of: int32 holds every value
        arr = arr.astype(np.int32)
    return torch.from_numpy(arr)


def image_values_tensor(arr: np.ndarray) -> Any:
    """A named image field's values (CHW, as :func:`decode_image_values` gives them) as that function's tensor:
    native byte order, uint16 as int32 (torch has little uint16 support). For ``<name>.<image ext>.npy``, what
    ``mmdata augment`` writes for a named image a PNG cannot hold exactly (a JPEG's or a float TIFF's values):
    it reads back as the same type as the image member it came from (QA36 video #7: a ``frame1.jpg`` field came
    back as a numpy array after augment, a tensor before). An array torch cannot hold stays an array.

    Example:
        >>> t = image_values_tensor(np.zeros((3, 2, 2), np.uint8))
        >>> type(t).__name__, str(t.dtype), tuple(t.shape)
        ('Tensor', 'torch.uint8', (3, 2, 2))
    """
    import torch

    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.uint16:
        arr = arr.astype(np.int32)
    try:
        return torch.from_numpy(np.ascontiguousarray(arr))
    except TypeError:  # a dtype torch has no type for (strings): the array as stored
        return arr


def _png16_colour(data: bytes, pil: np.ndarray) -> np.ndarray:
    """A 16-bit RGB / RGBA PNG's values (H, W, C) uint16 by cv2 (Pillow's array ``pil``, 8 bits per channel,
    gave the size and is the answer if cv2 cannot read it)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape != pil.shape:
        return pil
    return np.ascontiguousarray(arr[..., [2, 1, 0, 3][: arr.shape[2]]])  # cv2's BGR(A) -> RGB(A)


#: why audio with NaN / inf samples is refused (decode_audio, and mediainfo.decode_check at shard time)
NON_FINITE_AUDIO = "audio holds NaN or infinite samples"


def non_finite_audio(arr: np.ndarray) -> tuple[int, int] | None:
    """(how many samples are NaN or infinite, the frame of the first) in (frames, channels) samples, or
    None when all are finite.

    Float WAV / AIFF / CAF can hold them; one spreads through every later op (a resample or an STFT
    turns it into a frame of NaNs), so such audio is refused. Finite values outside [-1, 1] are valid
    float audio and are kept.

    Example:
        >>> non_finite_audio(np.array([[0.0], [np.nan], [2.0], [-np.inf]], np.float32))
        (2, 1)
    """
    finite = np.isfinite(arr)
    if finite.all():
        return None
    bad = ~finite
    return int(bad.sum()), int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))


def non_finite_reason(count: int, total: int, first: int) -> str:
    """The message for audio of ``total`` samples of which ``count`` are NaN / inf, from frame ``first``."""
    return f"{NON_FINITE_AUDIO} ({count} of {total} samples, the first at frame {first})"


#: how a float ``.npy`` array holding NaN / inf is described (QA35 robotics #3: an IMU window with one NaN from a
#: driver glitch poisons a loss). ``--check decode`` and ``verify --deep`` keep such arrays and warn per field
#: (``mediainfo.non_finite_npy_warning``): a depth map marks missing pixels with NaN on purpose (review media #3)
NON_FINITE_ARRAY = "array holds NaN or infinite values"


def non_finite_array(arr: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(how many values are NaN or infinite, the index of the first in C order) in a float or complex array (or
    CPU tensor), or None when all are finite or the array holds no floats (integers, booleans, strings cannot).

    Example:
        >>> non_finite_array(np.array([[0.0, 1.0], [np.inf, np.nan]], np.float32))
        (2, (1, 0))
        >>> non_finite_array(np.arange(3)) is None
        True
    """
    if not isinstance(arr, np.ndarray):  # a named image's values (depth.tif.npy) decode to a tensor
        arr = np.asarray(arr)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return None
    finite = np.isfinite(arr)
    if finite.all():
        return None
    bad = ~finite
    first = np.unravel_index(int(np.argmax(bad.reshape(-1))), arr.shape)
    return int(bad.sum()), tuple(int(i) for i in first)


def non_finite_array_reason(count: int, total: int, first: tuple[int, ...]) -> str:
    """The message for an array of ``total`` values of which ``count`` are NaN / inf, the first at index ``first``.

    Example:
        >>> non_finite_array_reason(1, 1200, (3, 3))
        'array holds NaN or infinite values (1 of 1200 values, the first at index [3, 3])'
    """
    return f"{NON_FINITE_ARRAY} ({count} of {total} values, the first at index [{', '.join(map(str, first))}])"


def flac_streaminfo(data: bytes) -> tuple[int, int, int] | None:
    """(sample rate, channels, declared frames — 0: not declared) from a FLAC stream's STREAMINFO block,
    or None when ``data`` does not start with one (the shard-time probe and the decoder both read it).

    Example:
        >>> flac_streaminfo(b"fLaC" + bytes([0, 0, 0, 34]) + bytes(10) + (16000 << 44 | 1 << 36 | 16000).to_bytes(8, "big"))
        (16000, 1, 16000)
    """
    if len(data) < 26 or data[:4] != b"fLaC" or data[4] & 0x7F != 0:
        return None
    v = int.from_bytes(data[18:26], "big")
    return v >> 44, ((v >> 41) & 7) + 1, v & ((1 << 36) - 1)


def flac_frames(data: bytes) -> int | None:
    """The frame count a FLAC stream's STREAMINFO declares (None: not FLAC, or 0 = not declared).

    Example:
        >>> flac_frames(b"fLaC" + bytes([0, 0, 0, 34]) + bytes(10) + (16000 << 44 | 1 << 36 | 16000).to_bytes(8, "big"))
        16000
    """
    info = flac_streaminfo(data)
    return None if info is None or info[2] == 0 else info[2]


def audio_size_error(frames: int, channels: int, what: str = "its header declares",
                     max_samples: int = MAX_AUDIO_SAMPLES) -> str | None:
    """Why audio of ``frames`` x ``channels`` is refused unread (over ``max_samples``), or None.

    Example:
        >>> audio_size_error(98_302_500, 8)
        'audio of 98302500 frames x 8 channels (786420000 samples, its header declares) is over the limit of 536870912 samples (2 GiB of float32, MAX_AUDIO_SAMPLES); not decoded'
    """
    if frames * channels <= max_samples:
        return None
    size = f"{max_samples * 4 >> 30} GiB" if max_samples >= 1 << 28 else f"{max_samples * 4 >> 20} MiB"
    limit = ", MAX_AUDIO_SAMPLES" if max_samples == MAX_AUDIO_SAMPLES else ""
    return (f"audio of {frames} frames x {channels} channels ({frames * channels} samples, {what}) is over the "
            f"limit of {max_samples} samples ({size} of float32{limit}); not decoded")


#: frames libsndfile reports for a stream that does not declare its length (a FLAC whose STREAMINFO
#: total is 0): far above any real count
_SF_UNKNOWN_FRAMES = 1 << 62
#: frames per libsndfile read: the interleaved buffer is this x channels; the result is planar
_BLOCK_FRAMES = 1 << 16
#: miniaudio's decode is interleaved and held whole: multichannel audio over this many samples goes
#: through libsndfile a block at a time instead, so the planar result is the only full copy
_MINIAUDIO_MAX_SAMPLES = 1 << 24


def _unknown_length(got: int, channels: int, max_samples: int) -> DecodeError:
    return OversizeMediaError(audio_size_error(got, channels, "decoded so far; its header does not declare its length",
                                        max_samples) or "")


def frames_wanted(max_frames: AudioFrames | None, rate: int) -> int | None:
    """The frames a clip at ``rate`` Hz is decoded to under the hint ``max_frames`` (at least 1), or None
    (no hint: the whole clip).

    Example:
        >>> frames_wanted(None, 16000), frames_wanted(800, 16000), frames_wanted(lambda r: r // 2, 16000)
        (None, 800, 8000)
    """
    if max_frames is None:
        return None
    n = max_frames if isinstance(max_frames, int) else max_frames(int(rate))
    return max(1, int(n))


def _flac_stream(data: bytes, channels: int, rate: int, max_samples: int, limit: int | None = None) -> np.ndarray:
    """dr_flac's decode of a FLAC, a block at a time: one that declares no length (refused once it passes
    ``max_samples``; libsndfile cannot read such a stream in blocks: it seeks after each read), or the
    first ``limit`` frames of any (the same samples as ``flac_read_f32``'s, tests/test_codecs_long_audio.py)."""
    cap = max_samples // channels
    parts: list[np.ndarray] = []
    got = 0
    stream = _miniaudio.stream_memory(data, _miniaudio.SampleFormat.FLOAT32, channels, rate,
                                      _BLOCK_FRAMES if limit is None else max(1, min(_BLOCK_FRAMES, limit)))
    try:
        for block in stream:
            a = np.frombuffer(block, dtype=np.float32).reshape(-1, channels)
            if limit is not None and got + len(a) >= limit:
                parts.append(a[:limit - got].T.copy())
                got = limit
                break
            got += len(a)
            if got > cap:
                raise _unknown_length(got, channels, max_samples)
            parts.append(a.T.copy())
    finally:
        stream.close()  # the decoder is freed now, not when the generator is collected
    return np.concatenate(parts, axis=1) if parts else np.empty((channels, 0), np.float32)


def sf_read_frames(f: Any, max_samples: int = MAX_AUDIO_SAMPLES) -> int:
    """The frames to read from the open ``soundfile.SoundFile`` ``f`` per call: an MP3's whole length in
    one call (libsndfile 1.2's mpg123 decoder loses its bit reservoir at the end of each read, so the frames
    after every block boundary came out wrong — off by 0.36 on a 0.3 tone — and libmpg123 printed
    "part2_3_length ... too large": QA39 music #1, review codecs #2), else :data:`_BLOCK_FRAMES`. An MP3 over
    ``max_samples`` (the reader refuses it) or of unknown length is read in blocks: its memory stays bounded.
    Shared by the reader's decode and ``mmdata shard --check decode`` (``mediainfo.decode_check``), so the
    levels the check reports are the samples the reader gives."""
    frames = f.frames
    if (f.format in ("MP3", "MPEG") and 0 < frames < _SF_UNKNOWN_FRAMES
            and frames * max(1, f.channels) <= max_samples):
        return int(frames)
    return _BLOCK_FRAMES


def _sf_planar(data: bytes, declared: int | None, max_samples: int,
               max_frames: AudioFrames | None = None) -> tuple[np.ndarray, int]:
    """libsndfile's decode as a (channels, time) float32 array, read a block at a time into the planar
    result (one full copy, not an interleaved one and its transpose; an MP3 in one read: see below); bounded by ``max_samples``
    before reading (or, for a stream of unknown length, while reading). With ``max_frames``, the
    reads stop at the frames it asks for (:func:`frames_wanted`)."""
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as f:
        channels, rate = f.channels, int(f.samplerate)
        frames = declared if declared is not None else f.frames
        known = frames < _SF_UNKNOWN_FRAMES
        if known:
            why = audio_size_error(frames, channels, max_samples=max_samples)
            if why is not None:
                raise OversizeMediaError(why)
        limit = frames_wanted(max_frames, rate)
        expect = declared
        if limit is not None:
            # the reads stop here: a header that lies about the length is caught within these frames only
            expect = None if declared is None else min(declared, limit)
            if known:
                frames = min(frames, limit)
            elif limit * channels <= max_samples:  # an unknown length read up to the hint (else: to the cap)
                frames, known = limit, True
        cap = max_samples // channels
        out = np.empty((channels, frames if known else 0), np.float32)
        parts: list[np.ndarray] = []
        # an MP3 is read in one call (sf_read_frames; QA39 music #1). Mono audio of known length is read straight
        # into the result (its (1, n) row is the (n, 1) layout libsndfile writes): no second copy (QA39 review
        # codecs #4). Multichannel audio goes through an interleaved buffer — libsndfile writes frames
        # interleaved, soundfile's ``out=`` must be C-contiguous (frames, channels) — a block long, but for an
        # MP3 as long as the result: its decode holds about twice the result's memory.
        step = max(1, min(frames, sf_read_frames(f, max_samples))) if known else _BLOCK_FRAMES
        direct = known and channels == 1
        buf = None if direct else np.empty((step, channels), np.float32)
        got = bad = 0
        first = -1
        while not known or got < frames:
            want = step if not known else min(step, frames - got)
            into = out[0, got:got + want].reshape(want, 1) if direct else buf[:want]  # type: ignore[index]
            block = f.read(want, dtype="float32", always_2d=True, out=into)
            n = len(block)
            if n == 0:
                break
            found = non_finite_audio(block)
            if found is not None:
                first = first if bad else got + found[1]
                bad += found[0]
            if direct:
                pass  # read in place
            elif known:
                out[:, got:got + n] = block.T
            else:
                if got + n > cap:
                    raise _unknown_length(got + n, channels, max_samples)
                parts.append(block.T.copy())
            got += n
            if n < want:
                break
    if not known:
        out = np.concatenate(parts, axis=1) if parts else out
    elif got < frames:
        out = out[:, :got]  # libsndfile found fewer frames than it counted (a FLAC: checked below)
    if expect is not None and got != expect:
        raise DecodeError(f"damaged FLAC: decoded {got} of the {declared} frames its header declares" if expect == declared
                          else f"damaged FLAC: the stream ends after {got} frames; its header declares {declared}")
    if bad:
        raise DecodeError(non_finite_reason(bad, got * channels, first))
    return out, rate


def _declared_audio_header(data: bytes) -> bool:
    from mmdata.shards.mediainfo import declared_audio_header

    return declared_audio_header(data)


def decode_audio(data: bytes, max_samples: int = MAX_AUDIO_SAMPLES,
                 max_frames: AudioFrames | None = None) -> tuple[Any, int]:
    """Decode audio bytes (FLAC, WAV, OGG, MP3, AIFF, ...: :data:`AUDIO_EXTS`) to a float32 (channels, time) tensor
    and its sample rate.

    FLAC decodes with miniaudio (dr_flac) when installed, everything else with soundfile (libsndfile),
    a block at a time into the (channels, time) result. Before decoding, the length the header
    declares (FLAC STREAMINFO, the WAV ``data`` chunk, AIFF's ``COMM``, libsndfile's frame count) x
    channels must be at most ``max_samples`` (default :data:`MAX_AUDIO_SAMPLES`); a FLAC that declares
    no length is decoded a block at a time and refused once past it. A WAV's ``data`` chunk and an
    AIFF's ``SSND`` chunk must be whole (as ``mmdata shard`` checks them: ``mediainfo.probe_audio``); a WAV
    whose data chunk size is a streaming writer's placeholder (0, 0x7FFFFFFF, 0x7FFFF000, 0xFFFFFFFF:
    ``mediainfo.wav_size_unknown``) is read to the end of the file, in whole frames.

    ``max_frames`` (an int, or a function of the sample rate: :data:`AudioFrames`) decodes only the first
    frames of a longer clip — the same samples as the whole decode's first frames (each decoder is
    the one the whole clip would take, read a block at a time): what a reader whose normalize stage
    trims the clip needs (``mmdata.augment.audio.decode_frames``). The header checks are the same; a
    damaged stream, NaN or infinity past those frames are not met.

    Raises:
        DecodeError: the declared or decoded length is over ``max_samples``; the samples
            hold NaN or infinity (:func:`non_finite_audio`); a FLAC stream gives fewer or more frames
            than its header declares (damaged frames: dr_flac skips them and returns a shorter clip);
            libsndfile's own error for bytes it cannot decode (:func:`decode_member` names the member
            either way).
        mmdata.shards.mediainfo.CorruptMedia: a truncated or malformed WAV or AIFF (``truncated WAV:
            the data chunk declares 16000 bytes, the file holds 7978``).

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> audio, rate = decode_audio(audio_bytes(0, seconds=0.25, sample_rate=8000, fmt="wav"))
        >>> tuple(audio.shape), rate
        ((1, 2000), 8000)
        >>> tuple(decode_audio(audio_bytes(0, seconds=0.25, sample_rate=8000), max_frames=800)[0].shape)
        (1, 800)
    """
    import torch

    info = flac_streaminfo(data)
    declared = None if info is None or info[2] == 0 else info[2]
    if declared is not None:
        why = audio_size_error(declared, info[1], max_samples=max_samples)  # type: ignore[index]
        if why is not None:
            raise OversizeMediaError(why)
    elif _declared_audio_header(data):
        from mmdata.shards.mediainfo import probe_audio, wav_finalised

        # the WAV data / AIFF SSND chunk (AU, SPHERE, W64, RF64 audio) is whole: libsndfile would read a cut
        # one short, without an error
        frames, _, channels = probe_audio(data)
        why = audio_size_error(frames, channels, max_samples=max_samples)
        if why is not None:
            raise OversizeMediaError(why)
        # a streaming writer's placeholder size (0 libsndfile reads as no audio): the frames probe_audio counted
        data = wav_finalised(data)
    elif info is not None and info[0] > 0 and _miniaudio is not None:
        try:
            limit = frames_wanted(max_frames, info[0])
            return torch.from_numpy(_flac_stream(data, info[1], info[0], max_samples, limit)), info[0]
        except _miniaudio.MiniaudioError:
            pass  # libsndfile below names the problem
    # dr_flac needs the declared length (without it, it grows its buffer without bound) and is held
    # interleaved: multichannel audio it would hold twice goes through libsndfile's block reads
    # (chosen by the declared length with a hint too: the first frames come from the same decoder)
    if (_miniaudio is not None and declared is not None
            and (info[1] == 1 or declared * info[1] <= _MINIAUDIO_MAX_SAMPLES)):  # type: ignore[index]
        limit = frames_wanted(max_frames, info[0])  # type: ignore[index]
        try:
            if limit is not None and limit < declared:  # dr_flac's stream: flac_read_f32's samples, a block at a time
                arr = _flac_stream(data, info[1], info[0], max_samples, limit)  # type: ignore[index]
                if arr.shape[1] == limit:
                    return torch.from_numpy(arr), info[0]  # type: ignore[index]
            else:
                d = _miniaudio.flac_read_f32(data)
                arr = np.frombuffer(d.samples, dtype=np.float32).reshape(-1, d.nchannels)
                if len(arr) == declared:
                    return torch.from_numpy(np.ascontiguousarray(arr.T)), int(d.sample_rate)
        except _miniaudio.MiniaudioError:
            pass  # libsndfile below names the problem
    arr, sr = _sf_planar(data, declared, max_samples, max_frames)
    return torch.from_numpy(arr), sr


def audio_frames(data: bytes) -> int | None:
    """The frames a clip holds, from its header (FLAC STREAMINFO, the WAV / AIFF chunks, libsndfile's
    count), without decoding it; None when it does not say (a FLAC stream that declares no length) or
    cannot be read. What a reader that decoded only the start of a clip (``max_frames``) reports as
    its length.

    Example:
        >>> from mmdata.testing import audio_bytes
        >>> audio_frames(audio_bytes(0, seconds=0.25, sample_rate=8000)), audio_frames(b"not audio")
        (2000, None)
    """
    info = flac_streaminfo(data)
    if info is not None:
        return info[2] or None
    try:
        if _declared_audio_header(data):
            from mmdata.shards.mediainfo import probe_audio

            return int(probe_audio(data)[0])
        import soundfile as sf

        frames = int(sf.info(io.BytesIO(data)).frames)
    except Exception:  # noqa: BLE001 - a length is a report, not a check: the decode named any damage
        return None
    return frames if 0 <= frames < _SF_UNKNOWN_FRAMES else None


def decode_text(data: bytes) -> str:
    """UTF-8 bytes to str, without a leading byte order mark (Windows editors write one) and without one final
    line end (``\\n``, ``\\r\\n`` or ``\\r``: ``echo``, every editor and LibriSpeech / LRS exports end a
    transcript file with one; as HF ``datasets``' text builder and ``str.splitlines`` drop it). Inner line
    ends and a second final one are text.

    The shard keeps the bytes as they were; only the decoded string loses the BOM and the line end. A string
    stored as the text itself is written with :func:`encode_text`, so it reads back as given.

    Example:
        >>> decode_text("\\ufeffcaption".encode()), decode_text(b"hello world\\n"), decode_text(b"two\\r\\n\\r\\n")
        ('caption', 'hello world', 'two\\r\\n')
    """
    return drop_final_line_end(data.decode("utf-8-sig"))


def drop_final_line_end(text: str) -> str:
    """``text`` without one final ``\\n``, ``\\r\\n`` or ``\\r``: what :func:`decode_text` does to a text
    file's string (for a file read in text mode, which keeps it).

    Example:
        >>> drop_final_line_end("hello\\r\\n"), drop_final_line_end("two\\n\\n"), drop_final_line_end("x")
        ('hello', 'two\\n', 'x')
    """
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


def encode_text(text: str) -> bytes:
    """The text member holding the string ``text`` itself (an HF column, a manifest ``text`` cell, an augmented
    caption): the inverse of :func:`decode_text`, so it reads back as given. A string ending in a line end gets
    one more (``\\n`` after ``\\n``; ``\\r\\n`` after ``\\r``, as ``x\\r\\n`` would read as ``x``), and one
    starting with a byte order mark a second one. A text read from a file keeps its bytes instead.

    Example:
        >>> encode_text("plain"), encode_text("code\\n"), encode_text("x\\r")
        (b'plain', b'code\\n\\n', b'x\\r\\r\\n')
        >>> all(decode_text(encode_text(t)) == t for t in ("a\\n\\n", "b\\r\\n", "\\ufeffc", "", "\\n"))
        True
    """
    data = text.encode("utf-8")
    if text.startswith("\ufeff"):
        data = b"\xef\xbb\xbf" + data
    if text.endswith("\n"):
        return data + b"\n"
    return data + b"\r\n" if text.endswith("\r") else data


def text_length(data: bytes) -> int:
    """``len(decode_text(data))``, the characters a text member reads back as (no BOM, no final line end), for
    the index's ``text_chars``; ASCII is counted without decoding.

    Raises:
        UnicodeDecodeError: ``data`` is not UTF-8.

    Example:
        >>> text_length(b"hello\\n"), text_length(b"\\n"), text_length("\\ufeffcaf\\u00e9\\r\\n".encode())
        (5, 0, 4)
    """
    if data.isascii():
        return len(data) - (2 if data.endswith(b"\r\n") else 1 if data.endswith((b"\n", b"\r")) else 0)
    return len(decode_text(data))


def decode_label(data: bytes) -> int:
    """A label member's class id, by the rules ``mmdata shard`` reads label files with
    (``sources.parse_label``): ASCII digits (surrounding whitespace and a leading BOM allowed), not
    negative (``-1`` is collate's mark for "no label"), at most :data:`MAX_LABEL` (int64).

    Raises:
        ValueError: anything else: ``-5``, ``1_0``, ``+2``, ``\\u0663`` (an Arabic-Indic digit), ``10**30``,
            a member over :data:`MAX_LABEL_BYTES` bytes; the message says what was expected.

    Example:
        >>> decode_label(b"7\\n"), decode_label("\\ufeff12".encode())
        (7, 12)
    """
    from mmdata.shards.sources import parse_label

    if len(data) > MAX_LABEL_BYTES:
        raise ValueError(f"label member of {len(data)} bytes (expected a class id: a few ASCII digits)")
    return parse_label(data, None)  # MAX_LABEL checked there, for mmdata shard too


_INT = re.compile(rb"-?[0-9]{1,19}")


def decode_int(data: bytes) -> int:
    """An integer member that is no class id (WebDataset's ``.index``: a sample position): ASCII digits,
    an optional ``-``, surrounding whitespace allowed, within int64.

    Raises:
        ValueError: anything else (the message says what was expected).

    Example:
        >>> decode_int(b"1000\\n"), decode_int(b"-3")
        (1000, -3)
    """
    text = data.strip() if len(data) <= 64 else b""
    if not _INT.fullmatch(text) or not -MAX_LABEL - 1 <= int(text) <= MAX_LABEL:
        shown = data[:40].decode("utf-8", "replace")
        raise ValueError(f"expected an integer within int64 (ASCII digits, as WebDataset writes an int), got {shown!r}")
    return int(text)


def decode_npy(data: bytes) -> np.ndarray:
    """A ``.npy`` member's array, loaded without pickle (an object array is refused).

    Example:
        >>> buf = io.BytesIO(); np.save(buf, np.arange(3)); decode_npy(buf.getvalue()).tolist()
        [0, 1, 2]
    """
    return np.load(io.BytesIO(data), allow_pickle=False)


def standard_field_error(ext: str) -> str | None:
    """Why a member of extension ``ext`` may not supply its field, or None: the standard fields
    (:data:`STANDARD_FIELD_EXTS`) come only from their own codecs, so ``label`` is always an int and
    ``image`` a decoded image — a ``<key>.label.npy`` or ``<key>.image`` member would put a raw
    array or bytes where collate, the ops and the exporters expect those.

    Example:
        >>> standard_field_error("label.npy")
        "a .label.npy member cannot supply the standard field 'label' (expected a .cls or .label member; an array field needs another name, e.g. .label_array.npy)"
        >>> standard_field_error("depth.npy") is None, standard_field_error("PNG") is None
        (True, True)
    """
    e = ext.lower()
    name = field_of(e)
    allowed = STANDARD_FIELD_EXTS.get(name)
    if allowed is None or e in allowed:
        return None
    kinds = ", ".join(f".{x}" for x in allowed[:-1]) + f" or .{allowed[-1]}"
    hint = f"; an array field needs another name, e.g. .{name}_array.npy" if e.endswith("npy") else ""
    return f"a .{ext} member cannot supply the standard field {name!r} (expected a {kinds} member{hint})"


def decode_member(ext: str, data: bytes, *, allow_pickle: bool = False,
                  image_max_size: tuple[int, int] | None = None, image_alpha: bool = False,
                  audio_max_frames: AudioFrames | None = None,
                  photo_fields: Collection[str] = ()) -> tuple[str, Any, int | None]:
    """Decode one member: returns ``(field, value, sample_rate_or_None)``.

    ``image_max_size``: decode hint for images; ``image_alpha``: keep images' alpha channels (see
    :func:`decode_image`); ``audio_max_frames``: decode hint for the ``audio`` field (the first frames
    only: ``max_frames`` of :func:`decode_audio`; other audio members, ``voice.flac``, stay bytes).
    ``photo_fields``: named image fields (``image2.gif``, ``frame1.png``) that are photos, not maps — a recipe's
    ``targets: {image2.gif: image}`` — decoded as the ``image`` is (:func:`decode_image`: a palette to its colours,
    16-bit to 8 bits, alpha as ``image_alpha`` says), not as stored values (:func:`decode_image_values`: a palette
    GIF product photo came back as its indices, a 16-bit PNG as int32, and failed as a view; QA39 ecommerce #1).

    Raises:
        UnsafeMemberError: a pickle member while ``allow_pickle`` is False.
        DecodeError: the bytes are not what the extension promises. Its subclasses:
            :class:`OversizeMediaError` when the header declares more pixels or samples than the limits
            (``mediainfo.MAX_PIXELS``, :data:`MAX_AUDIO_SAMPLES`); :class:`StandardFieldError` when the
            member names a standard field (``image``, ``audio``, ``text``, ``label``) its type cannot
            supply (``<key>.label.npy``: :func:`standard_field_error`).

    Example:
        >>> decode_member("cls", b"3")
        ('label', 3, None)
    """
    e = ext.lower()
    last = member_type(e)
    wrong = standard_field_error(e)
    if wrong is not None:
        raise StandardFieldError(wrong)
    if last in PICKLE_EXTS:
        if not allow_pickle:
            raise UnsafeMemberError(
                f"member type .{ext} is a pickle and could execute code; refusing it "
                "(pass allow_pickle=True only for shards you trust)"
            )
        import pickle  # noqa: S403 - explicit opt-in by the caller

        return field_of(e), pickle.loads(data), None  # noqa: S301 - reached only with allow_pickle=True (checked above)
    name = field_of(e)
    try:
        if e in IMAGE_EXTS:
            return name, decode_image(data, image_max_size, image_alpha), None
        if e in AUDIO_EXTS:
            audio, sr = decode_audio(data, max_frames=audio_max_frames)
            return name, audio, sr
        if e in TEXT_EXTS:
            return name, decode_text(data), None
        if e in LABEL_EXTS:
            return name, decode_label(data), None
        if e in INT_EXTS:
            return name, decode_int(data), None
        if last in IMAGE_EXTS:  # a named image (depth.png, seg.png): its stored values, not the image's RGB
            if name in photo_fields:  # a second view / photo: decoded as the image (QA39 ecommerce #1)
                return name, decode_image(data, None, image_alpha), None
            return name, decode_image_values(data), None
        if last in TEXT_EXTS:  # caption_de.txt
            return name, decode_text(data), None
        if last == "npy":
            arr = decode_npy(data)
            if member_type(name) in IMAGE_EXTS:  # depth.jpg.npy: a named image's values, as its image member gave
                return name, image_values_tensor(arr), None
            return name, arr, None
        if last == "json":
            return name, json.loads(decode_text(data)), None
    except Exception as exc:  # noqa: BLE001 - re-raised with the member named
        from mmdata.io import out_of_memory

        if out_of_memory(exc) is not None:  # the machine's memory (a decoder's library could not be mapped under
            raise  # ulimit -v), not the member: the job's one out-of-memory line, not "cannot decode"
        kind = {"image": "an image", "audio": "audio", "text": "UTF-8 text", "label": "an integer label"}.get(
            name, {**dict.fromkeys(IMAGE_EXTS, "an image"), **dict.fromkeys(TEXT_EXTS, "UTF-8 text")}.get(last, f".{ext} data"))
        # an oversize member keeps its type: a reader may count it apart from damaged ones
        # (Pillow's DecompressionBombError: its own limit, for the formats whose size only Pillow reads)
        err = OversizeMediaError if isinstance(exc, OversizeMediaError) or type(exc).__name__ == "DecompressionBombError" \
            else DecodeError
        said = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc))  # PIL names its file object
        raise err(f"cannot decode .{ext} member as {kind}: {type(exc).__name__}: {said}") from exc
    return name, bytes(data), None
