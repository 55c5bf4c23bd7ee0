"""Member codecs: how a shard member's extension maps to a field name and how its bytes decode.

A WebDataset sample is the run of tar members sharing a key: ``<key>.<ext>``. The extension after
the key names the field: ``jpg``/``png`` -> ``image``, ``flac``/``wav``/``ogg`` -> ``audio``,
``txt`` -> ``text``, ``cls`` -> ``label``, ``<name>.npy`` -> ``<name>``, ``json`` -> ``json``.

Shards are untrusted input: pickle-based members (``.pyd``, ``.pickle``, ``.pkl``, ``.pth``,
``.pt``) are refused unless the caller passes ``allow_pickle=True``, and ``.npy`` is loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

import numpy as np

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "ppm", "pgm")
AUDIO_EXTS = ("flac", "wav", "ogg", "mp3")
TEXT_EXTS = ("txt", "text")
LABEL_EXTS = ("cls", "label", "index")
PICKLE_EXTS = ("pyd", "pickle", "pkl", "pth", "pt")


from mmdata.errors import ShardError


class DecodeError(ShardError):
    """A member could not be decoded; the message names the member and what was expected."""


class UnsafeMemberError(DecodeError):
    """A member needs pickle to decode and ``allow_pickle`` is off."""


@lru_cache(maxsize=4096)  # called per member when sharding and reading; extensions repeat
def field_of(ext: str) -> str:
    """The field name for a member extension (everything after the sample key's first dot).

    Example:
        >>> field_of("jpg"), field_of("FLAC"), field_of("depth.npy"), field_of("cls")
        ('image', 'audio', 'depth', 'label')
    """
    e = ext.lower()
    last = e.rsplit(".", 1)[-1]
    if e in IMAGE_EXTS:
        return "image"
    if e in AUDIO_EXTS:
        return "audio"
    if e in TEXT_EXTS:
        return "text"
    if e in LABEL_EXTS:
        return "label"
    if last == "npy" and "." in e:
        return e.rsplit(".", 1)[0]
    if last == "npy":
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


def _jpeg_fast(data: bytes, max_size: tuple[int, int] | None) -> np.ndarray | None:
    """HWC uint8 via simplejpeg for RGB/greyscale baseline or progressive JPEGs, else None (use PIL)."""
    if _simplejpeg is None or data[:3] != b"\xff\xd8\xff":
        return None
    try:
        h, w, space, _ = _simplejpeg.decode_jpeg_header(data)
        if space not in ("Gray", "YCbCr", "RGB"):
            return None  # CMYK / YCCK: PIL converts those
        kw: dict[str, Any] = {"colorspace": "GRAY" if space == "Gray" else "RGB"}
        if max_size is not None:
            kw.update(min_height=min(int(max_size[0]), h), min_width=min(int(max_size[1]), w))
        return _simplejpeg.decode_jpeg(data, **kw)
    except (ValueError, RuntimeError):
        return None  # let PIL decide (and name the error) for anything unusual


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
      gets exactly 256 input values.
    * ``I`` (32-bit int: Pillow's mode for 16-bit PGM, int32 TIFF, and 16-bit PNG in older Pillow):
      taken as 16-bit data: clipped to 0-65535, then ``v >> 8``.
    * ``F`` (32-bit float): when its finite values all lie in [0, 1] it is taken as unit range
      (``v * 255``), otherwise as 0-255; rounded half up, clipped to 0-255, NaN -> 0.
    * anything else (``RGBA``, ``LA``, ``P``, ``1``, ``CMYK``, ...): PIL's ``convert("RGB")``
      (alpha dropped, palette applied).

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
    if mode.startswith("I;16") or mode == "I":
        # PIL's convert("L"/"RGB") clips these at 255 instead of scaling: a 16-bit scan came out white
        v = np.asarray(im).astype(np.int64)
        return (np.clip(v, 0, 65535) >> 8).astype(np.uint8)
    if mode == "F":
        v = np.asarray(im).astype(np.float64)
        finite = v[np.isfinite(v)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            v = v * 255.0
        return np.nan_to_num(np.clip(np.floor(v + 0.5), 0, 255), nan=0.0).astype(np.uint8)
    return np.array(im.convert("RGB"))


def decode_image(data: bytes, max_size: tuple[int, int] | None = None, keep_alpha: bool = False) -> Any:
    """Decode image bytes to a uint8 CHW torch tensor (greyscale -> 1 channel, RGBA/P -> RGB unless
    ``keep_alpha``: then 4 / 2 channels; 16-bit and float greyscale scaled to 8 bits as
    :func:`image_array` says).

    ``max_size=(h, w)``: a JPEG is decoded DCT-scaled (by m/8) to the smallest size that is
    still at least ``h x w``: several times less work when a resize follows anyway. JPEGs decode with
    simplejpeg (libjpeg-turbo, same pixels as PIL); other formats with PIL.

    Example:
        >>> from mmdata.testing import image_bytes
        >>> tuple(decode_image(image_bytes(0, size=(64, 64), fmt="jpg"), max_size=(16, 16)).shape)
        (3, 16, 16)
    """
    import torch

    arr = _jpeg_fast(data, max_size)
    if arr is None:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            if max_size is not None and im.format == "JPEG":
                im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (int(max_size[1]), int(max_size[0])))
            im.load()
            arr = image_array(im, keep_alpha)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
        if arr.shape[0] == 1:
            arr = arr[:1]
    return torch.from_numpy(np.ascontiguousarray(arr))


def decode_audio(data: bytes) -> tuple[Any, int]:
    """Decode FLAC/WAV/OGG/MP3 bytes to a float32 (channels, time) tensor and its sample rate.

    FLAC decodes with miniaudio (dr_flac) when installed, everything else with soundfile (libsndfile).
    """
    import torch

    if _miniaudio is not None and data[:4] == b"fLaC":
        try:
            d = _miniaudio.flac_read_f32(data)
            arr = np.frombuffer(d.samples, dtype=np.float32).reshape(-1, d.nchannels)
            return torch.from_numpy(np.ascontiguousarray(arr.T)), int(d.sample_rate)
        except _miniaudio.DecodeError:
            pass  # libsndfile below names the problem
    import soundfile as sf

    arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(arr.T)), int(sr)


def decode_text(data: bytes) -> str:
    """UTF-8 bytes to str, without a leading byte order mark (Windows editors write one).

    The shard keeps the bytes as they were; only the decoded string loses the BOM.

    Example:
        >>> decode_text("\\ufeffcaption".encode())
        'caption'
    """
    return data.decode("utf-8-sig")


def decode_label(data: bytes) -> int:
    return int(decode_text(data).strip())


def decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def decode_member(ext: str, data: bytes, *, allow_pickle: bool = False,
                  image_max_size: tuple[int, int] | None = None, image_alpha: bool = False) -> tuple[str, Any, int | None]:
    """Decode one member: returns ``(field, value, sample_rate_or_None)``.

    ``image_max_size``: decode hint for images; ``image_alpha``: keep images' alpha channels (see
    :func:`decode_image`).

    Raises:
        UnsafeMemberError: a pickle member while ``allow_pickle`` is False.
        DecodeError: the bytes are not what the extension promises.
    """
    e = ext.lower()
    last = e.rsplit(".", 1)[-1]
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
            audio, sr = decode_audio(data)
            return name, audio, sr
        if e in TEXT_EXTS:
            return name, decode_text(data), None
        if e in LABEL_EXTS:
            return name, decode_label(data), None
        if last == "npy":
            return name, decode_npy(data), None
        if last == "json":
            return name, json.loads(decode_text(data)), None
    except Exception as exc:  # noqa: BLE001 - re-raised with the member named
        kind = {"image": "an image", "audio": "audio", "text": "UTF-8 text", "label": "an integer label"}.get(name, f".{ext} data")
        raise DecodeError(f"cannot decode .{ext} member as {kind}: {type(exc).__name__}: {exc}") from exc
    return name, bytes(data), None
