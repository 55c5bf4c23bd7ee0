"""Tiny real media for tests, demos and bug reports (shipped in the library, like lhotse's dummies).

Everything is generated: real PNG/JPEG (Pillow), real FLAC/WAV (soundfile), UTF-8 text and ``.cls``
labels. Content is a pure function of the arguments, so tests are deterministic.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

CLASS_NAMES = ("cat", "dog", "bird")
_WORDS = ("a small", "a bright", "the left", "a right", "one odd", "an even", "the quiet", "a loud")


def image_bytes(index: int, size: tuple[int, int] = (24, 32), fmt: str = "png") -> bytes:
    """A deterministic RGB image (gradient + index-dependent square) encoded as PNG or JPEG."""
    from PIL import Image

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), np.full((h, w), (index * 37) % 256)], -1)
    arr = arr.astype(np.uint8)
    s = index % max(min(h, w) // 2, 1)
    arr[s : s + h // 3, s : s + w // 3] = 255 - arr[s : s + h // 3, s : s + w // 3]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG" if fmt in ("jpg", "jpeg") else fmt.upper(), quality=90)
    return buf.getvalue()


def audio_bytes(index: int, seconds: float = 0.25, sample_rate: int = 8000, fmt: str = "flac") -> bytes:
    """A deterministic tone (frequency depends on ``index``) encoded as FLAC/WAV/OGG, 16-bit mono."""
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * (220 + 40 * (index % 10)) * t)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sample_rate, format=fmt.upper(), subtype=None if fmt == "ogg" else "PCM_16")
    return buf.getvalue()


def long_audio_bytes(index: int, seconds: float, sample_rate: int = 48000, channels: int = 1, fmt: str = "flac",
                     noise: float = 0.02) -> bytes:
    """A deterministic clip of any length: a tone per channel (pitch from ``index`` and the channel) plus
    seeded noise at ``noise`` amplitude, 16-bit, encoded as FLAC / WAV a block at a time (a 10-minute
    48 kHz stereo clip never holds more than a second of samples in memory). The noise makes every
    sample count (a resampler that read too few inputs shows); ``noise=0`` compresses best.

    Example:
        >>> import io, soundfile as sf
        >>> sf.info(io.BytesIO(long_audio_bytes(1, 2.5, 8000, channels=2))).frames
        20000
    """
    import soundfile as sf

    n = int(round(seconds * sample_rate))
    rng = np.random.default_rng([index, sample_rate, channels, 20261204])
    freqs = (110.0 + 30 * (index % 13) + 55.0 * np.arange(channels))[None]
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=sample_rate, channels=channels, format=fmt.upper(), subtype="PCM_16") as f:
        for start in range(0, n, sample_rate):
            t = (np.arange(start, min(n, start + sample_rate), dtype=np.float64) / sample_rate)[:, None]
            x = 0.3 * np.sin(2 * np.pi * freqs * t)
            if noise:
                x = x + noise * rng.uniform(-1.0, 1.0, x.shape)
            f.write(x.astype(np.float32))
    return buf.getvalue()


def text_for(index: int) -> str:
    """A short deterministic caption."""
    return f"{_WORDS[index % len(_WORDS)]} thing number {index}"


def make_sample_folder(
    root: str | Path,
    n: int = 12,
    *,
    image_fmt: str = "png",
    audio_fmt: str = "flac",
    missing: bool = True,
    labels: bool = True,
    nested: bool = False,
    odd_stems: bool = False,
    audio_seconds: float = 0.25,
    sample_rate: int = 8000,
    image_size: tuple[int, int] = (24, 32),
) -> Path:
    """Write ``n`` samples as files sharing a stem: ``<stem>.png <stem>.flac <stem>.txt <stem>.cls``.

    Args:
        root: folder to create.
        n: number of samples.
        image_fmt: the images' format and extension (``"png"``, ``"jpg"``, ...; :func:`image_bytes`).
        audio_fmt: the clips' format and extension (``"flac"``, ``"wav"``, ...; :func:`audio_bytes`).
        missing: drop audio from every 4th sample and text from every 5th (missing modalities).
        labels: write ``.cls`` files with ``index % 3``.
        nested: spread samples over two sub-folders.
        odd_stems: stems with dots, spaces and non-ASCII characters (``"café 0.5 #3"``).
        audio_seconds, sample_rate, image_size: media sizes (benchmarks use realistic ones).

    Returns:
        The folder.

    Example:
        >>> import tempfile
        >>> d = make_sample_folder(tempfile.mkdtemp(), n=2)
        >>> sorted(p.name for p in d.iterdir())[:4]
        ['000000.cls', '000000.flac', '000000.png', '000000.txt']
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"café {i}.v2 #{i}" if odd_stems else f"{i:06d}"
        folder = root / (f"part{i % 2}" if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.{image_fmt}").write_bytes(image_bytes(i, image_size, fmt=image_fmt))
        if not (missing and i % 4 == 3):
            (folder / f"{stem}.{audio_fmt}").write_bytes(audio_bytes(i, audio_seconds, sample_rate, audio_fmt))
        if not (missing and i % 5 == 4):
            (folder / f"{stem}.txt").write_text(text_for(i), encoding="utf-8")
        if labels:
            (folder / f"{stem}.cls").write_text(str(i % 3), encoding="utf-8")
    return root


def make_class_folders(root: str | Path, per_class: int = 4, classes: tuple[str, ...] = CLASS_NAMES) -> Path:
    """Write the folder-per-class layout: ``<class>/<i>.png`` (+ ``.txt``); label from the folder."""
    root = Path(root)
    for c, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            idx = c * per_class + i
            (d / f"{i:03d}.png").write_bytes(image_bytes(idx))
            (d / f"{i:03d}.txt").write_text(text_for(idx), encoding="utf-8")
    return root


def shard_odd_names(root: str | Path, n: int = 12) -> Path:
    """Shard a :func:`make_sample_folder` of odd file names in two sub-folders (``part0/café 0.5 #3``:
    the keys are made safe, so they differ from the ``source_key``) into train / val / test (50 / 25 /
    25). Returns the dataset folder ``root/ds``: for tests of what names the user's files.

    Example:
        >>> import tempfile
        >>> shard_odd_names(tempfile.mkdtemp(), n=4).name
        'ds'
    """
    import mmdata

    root = Path(root)
    raw = make_sample_folder(root / "raw", n=n, nested=True, odd_stems=True)
    mmdata.shard(raw, root / "ds", split={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    return root / "ds"


def shard_lossy(root: str | Path, name: str, n: int, cut: int | None = None, spoiled: tuple[str, ...] = ()) -> str:
    """Shard a :func:`make_sample_folder` of ``n`` samples into ``root/name`` (shards of 4, all train) with
    losses for ``on_error="skip"`` tests: every 4th sample lacks audio (lost with ``required=["audio"]``),
    the PNGs of the keys ``spoiled`` do not decode (their first 32 bytes zeroed), and shard ``cut`` (an
    index into the sorted shards) is cut to half its length (its tail lost). Returns the folder as a str.

    Example:
        >>> import tempfile, mmdata
        >>> d = shard_lossy(tempfile.mkdtemp(), "a", 8, spoiled=("000001",))
        >>> ds = mmdata.open_dataset(d, on_error="skip", required=["audio"])
        >>> len(list(ds)), sorted(ds.skipped.items())
        (5, [('corrupt image', 1), ('missing required modality', 2)])
    """
    import tarfile

    import mmdata

    root = Path(root)
    mmdata.shard(make_sample_folder(root / f"raw_{name}", n=n), root / name, maxcount=4, progress=False)
    shards = sorted((root / name).glob("train-*.tar"))
    for shard in shards:
        data = bytearray(shard.read_bytes())
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.split(".")[0] in spoiled and m.name.endswith(".png"):
                    data[m.offset_data : m.offset_data + 32] = bytes(32)
        shard.write_bytes(bytes(data))
    if cut is not None:
        data = shards[cut].read_bytes()
        shards[cut].write_bytes(data[: len(data) // 2 + 100])
    return str(root / name)
