"""``avdigits``: the embedded 10-class image + audio + text dataset, built offline.

* image: scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten digits, shipped with sklearn),
  degraded (Gaussian noise + a random occluding block), upscaled to 16x16 greyscale PNG;
* audio: a clip of the *same digit word* from the embedded espeak-ng speech bank, by a speaker of the
  sample's split (train / val / test speakers are disjoint), padded/cropped to 0.8 s, mixed with
  white noise at ``snr_db``, 8 kHz FLAC;
* text: a short partial clue true for the digit that never names it ("an odd number", "greater than
  five", "the number of legs of a dog"), missing for ``text_missing`` of the samples;
* label: the digit (names "zero".."nine"). Pairing is by label, seeded; split 60/20/20 stratified.

The knobs are calibrated so each modality alone is imperfect and fusion helps (docs/avdigits.md);
they, the speakers per split, the bank's sha256 and a content fingerprint go into ``dataset.json``, with
the licence, the attribution of each source (:data:`ATTRIBUTION`), the mmdata version and the command
that builds it (:func:`card_provenance`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.datasets.speech import load_bank
from mmdata.rng import derive

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PRIMES = {2, 3, 5, 7}
CLUES: tuple[tuple[str, Any], ...] = (
    ("an even number", lambda d: d % 2 == 0),
    ("an odd number", lambda d: d % 2 == 1),
    ("a prime number", lambda d: d in PRIMES),
    ("not a prime number", lambda d: d not in PRIMES),
    ("greater than five", lambda d: d > 5),
    ("less than five", lambda d: d < 5),
    ("greater than three", lambda d: d > 3),
    ("less than four", lambda d: d < 4),
    ("a perfect square", lambda d: d in (0, 1, 4, 9)),
    ("strictly between one and four", lambda d: 1 < d < 4),
    ("nothing at all", lambda d: d == 0),
    ("the loneliest number", lambda d: d == 1),
    ("the number of wheels on a bicycle", lambda d: d == 2),
    ("the number of sides of a triangle", lambda d: d == 3),
    ("the number of legs of a dog", lambda d: d == 4),
    ("the number of fingers on a hand", lambda d: d == 5),
    ("the number of sides of a hexagon", lambda d: d == 6),
    ("the number of days in a week", lambda d: d == 7),
    ("the number of legs of a spider", lambda d: d == 8),
    ("the number of lives of a cat", lambda d: d == 9),
)
GENERIC_CLUES = 10  # the first ten clues narrow the class; the rest identify it

#: the licence of the built dataset: that of its images' source (CC BY 4.0 asks for attribution, below);
#: the speech and the clues add no terms (see :data:`ATTRIBUTION`)
LICENSE = "CC-BY-4.0"
#: where each modality comes from, its licence and what was done to it (the card's ``avdigits.attribution``)
ATTRIBUTION: tuple[dict[str, str], ...] = (
    {"modality": "image",
     "source": "Optical Recognition of Handwritten Digits (the 1,797-sample test set, as scikit-learn's "
               "sklearn.datasets.load_digits ships it)",
     "creators": "E. Alpaydin, C. Kaynak (1998)", "publisher": "UCI Machine Learning Repository",
     "url": "https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
     "doi": "10.24432/C50P49", "license": "CC-BY-4.0",
     "changes": "Gaussian noise, a random zeroed block, nearest-neighbour upscaled to 16x16 PNG"},
    {"modality": "audio",
     "source": "the ten digit words synthesized by espeak-ng (72 speakers: 8 English voices x 9 voice variants, "
               "each with its own speed and pitch; scripts/make_speech_bank.py, mmdata/datasets/assets/speech_bank.*)",
     "tool": "espeak-ng", "tool_url": "https://github.com/espeak-ng/espeak-ng", "tool_license": "GPL-3.0-or-later",
     "license": "no third-party terms: speech espeak-ng outputs is not covered by the GPL of the program",
     "changes": "trimmed, resampled to 8 kHz, padded / cropped to the clip length, white noise added"},
    {"modality": "text",
     "source": "clues written for mmdata (mmdata/datasets/avdigits.py: CLUES)", "license": "MIT (mmdata's licence)"},
)
CITATION = ("@misc{optdigits, author = {Alpaydin, E. and Kaynak, C.}, title = {{Optical Recognition of Handwritten "
            "Digits}}, year = {1998}, howpublished = {UCI Machine Learning Repository}, doi = {10.24432/C50P49}}")


def card_provenance(name: str = "avdigits", seed: int = 0, limit: int | None = None,
                    knobs: Knobs | None = None) -> dict[str, Any]:
    """The card's ``license``, ``description``, ``citation``, ``mmdata_version`` and ``command`` for a build
    of ``name`` (``avdigits`` or a variant built from its samples) with these options: the command line
    that builds it (a Python call when ``knobs`` differ from the calibrated ones: the CLI does not set them).

    Example:
        >>> p = card_provenance(seed=3, limit=5)
        >>> p["license"], p["command"]
        ('CC-BY-4.0', 'mmdata datasets build avdigits OUT --seed 3 --limit 5')
    """
    from mmdata import __version__

    if knobs is not None and knobs != Knobs():
        command = f"mmdata.datasets.avdigits.build(OUT, seed={seed}, limit={limit}, knobs={knobs!r})"
    else:
        command = " ".join(["mmdata datasets build", name, "OUT", *([f"--seed {seed}"] if seed else []),
                            *([f"--limit {limit}"] if limit else [])])
    return {"license": LICENSE, "citation": CITATION, "mmdata_version": __version__, "command": command,
            "description": "avdigits: 10 digit classes of paired image (UCI handwritten digits, degraded), speech "
                           "(espeak-ng, speaker-disjoint splits) and partial text clues, built offline by mmdata; "
                           "images CC BY 4.0 by E. Alpaydin and C. Kaynak (UCI ML Repository, doi:10.24432/C50P49)"}


@dataclass(frozen=True)
class Knobs:
    """Difficulty settings (recorded in the card). Defaults are the calibrated ones."""

    image_size: int = 16
    image_noise: float = 0.45       # Gaussian noise std, in units of the 0..16 digit scale / 16 (fraction of full scale)
    occlusion: int = 3              # side (in 8x8 pixels) of a random zeroed block; 0 = none
    snr_db: float = -6.0            # audio SNR of the added white noise
    seconds: float = 0.8            # audio clip length
    text_missing: float = 0.15      # fraction of samples without text
    identifying_clue_p: float = 0.65  # chance a present clue identifies the digit (else a generic one narrows it)
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    speaker_split: tuple[int, int, int] = (44, 14, 14)


def clue_for(digit: int, rng: np.random.Generator, knobs: Knobs) -> str:
    """A clue true for ``digit``: an identifying one with probability ``identifying_clue_p``, else one of
    the generic clues true for it, uniformly."""
    identifying = rng.random() < knobs.identifying_clue_p
    cands = [text for i, (text, pred) in enumerate(CLUES) if pred(digit) and (i >= GENERIC_CLUES) == identifying]
    return cands[int(rng.integers(len(cands)))]


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _flac(x: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _split_sizes(n: int, split: Sequence[float]) -> tuple[int, int, int]:
    """Train / val / test samples of a class of ``n`` (the rounding :func:`generate` uses)."""
    n1 = round(split[0] * n)
    n2 = n1 + round(split[1] * n)
    return n1, n2 - n1, n - n2


def _check_limit(limit: int, split: Sequence[float]) -> None:
    """Warn when ``limit`` is too small to give every split a sample per class, naming the smallest that
    does: training needs train, val and test (``--limit 2`` gave no val split, and ``mmdata train`` then
    failed asking to re-shard). A tiny build stays allowed: tests and the synthetic trainer need no val."""
    sizes = _split_sizes(limit, split)
    if min(sizes) < 1:
        least = next(n for n in range(1, 1000) if min(_split_sizes(n, split)) >= 1)
        empty = [name for name, n in zip(("train", "val", "test"), sizes) if n < 1]
        warnings.warn(f"limit {limit} per class gives train / val / test {sizes[0]} / {sizes[1]} / {sizes[2]} per class "
                      f"(split {tuple(split)}): no {' or '.join(empty)} split, so `mmdata train` cannot use it; "
                      f"a limit of at least {least} gives every split samples", UserWarning, stacklevel=3)


def generate(seed: int = 0, knobs: Knobs | None = None, limit: int | None = None) -> dict[str, Any]:
    """Generate avdigits in memory: per-sample records + metadata (no files).

    Args:
        seed: fixes the split, speaker assignment, pairing, noise, occlusion and clues.
        knobs: difficulty settings (default: the calibrated :class:`Knobs`).
        limit: keep only the first ``limit`` samples per class (fast tests).
    """
    from sklearn.datasets import load_digits

    k = knobs or Knobs()
    digits = load_digits()
    images, labels = digits.images.astype(np.float32) / 16.0, digits.target.astype(int)
    bank = load_bank()
    # split: stratified per class
    split_of = np.empty(len(labels), dtype=object)
    keep = np.zeros(len(labels), dtype=bool)
    if limit:
        _check_limit(limit, k.split)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[derive(seed, 0, f"avdigits-split:{c}", 0).permutation(len(idx))]
        if limit:
            idx = idx[:limit]
        keep[idx] = True
        n1, n_val, _ = _split_sizes(len(idx), k.split)
        n2 = n1 + n_val
        split_of[idx[:n1]], split_of[idx[n1:n2]], split_of[idx[n2:]] = "train", "val", "test"
    # speakers: disjoint pools per split
    spk = derive(seed, 0, "avdigits-speakers", 0).permutation(len(bank.speakers))
    a, b = k.speaker_split[0], k.speaker_split[0] + k.speaker_split[1]
    pools = {"train": sorted(int(s) for s in spk[:a]), "val": sorted(int(s) for s in spk[a:b]),
             "test": sorted(int(s) for s in spk[b : b + k.speaker_split[2]])}
    n_audio = int(round(k.seconds * bank.rate))
    records = []
    for i in np.flatnonzero(keep):
        key = f"d{i:04d}"
        y = int(labels[i])
        rng = derive(seed, 0, key, "avdigits")
        # image: noise + occlusion on the 8x8 digit, then nearest-neighbour upscale
        img = images[i] + rng.normal(0.0, k.image_noise, size=(8, 8))
        if k.occlusion:
            r0, c0 = (int(v) for v in rng.integers(0, 8 - k.occlusion + 1, size=2))
            img[r0 : r0 + k.occlusion, c0 : c0 + k.occlusion] = 0.0
        rep = k.image_size // 8
        img8 = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        img_up = np.kron(img8, np.ones((rep, rep), dtype=np.uint8))
        # audio: same digit from a speaker of this split
        pool = pools[str(split_of[i])]
        speaker = pool[int(rng.integers(len(pool)))]
        clip = bank.clips[bank.clip_index(speaker, y)]
        x = np.zeros(n_audio, dtype=np.float32)
        if len(clip) >= n_audio:
            s0 = (len(clip) - n_audio) // 2
            x[:] = clip[s0 : s0 + n_audio]
        else:
            s0 = int(rng.integers(0, n_audio - len(clip) + 1))
            x[s0 : s0 + len(clip)] = clip
        rms = float(np.sqrt(np.mean(clip**2)))
        x = x + rng.normal(0.0, rms / 10 ** (k.snr_db / 20), size=n_audio).astype(np.float32)
        x = 0.9 * x / max(float(np.abs(x).max()), 1e-6)
        rec = {"key": key, "split": str(split_of[i]), "label": y, "speaker": speaker,
               "png": _png(img_up), "flac": _flac(x, bank.rate)}
        if rng.random() >= k.text_missing:
            rec["txt"] = clue_for(y, rng, k).encode("utf-8")
        records.append(rec)
    h = hashlib.sha256()
    for r in records:
        for name in ("key", "split", "label", "png", "flac", "txt"):
            v = r.get(name, b"")
            h.update(v if isinstance(v, bytes) else str(v).encode())
    return {"records": records, "speakers": pools, "knobs": asdict(k), "bank_sha256": bank.sha256,
            "content_sha256": h.hexdigest(), "seed": seed}


def build(out: str | Path, seed: int = 0, workers: int = 1, progress: bool = True, knobs: Knobs | None = None,
          limit: int | None = None, force: bool = False, storage_options: dict[str, Any] | None = None) -> str | Path:
    """Generate avdigits and write it through the sharding API to ``out`` (shards + index + card). An ``out``
    holding files and no mmdata dataset is refused, naming them, as ``mmdata shard`` refuses it, and so is one
    holding a dataset another command wrote (``mmdata shard`` / ``augment``; an earlier build there is replaced:
    :func:`~mmdata.shards.replacing.check_replacing`) (``force``: no check). ``out`` may be an object store's
    URL (``s3://bucket/av``, ``storage_options`` for it): the URL is returned as given (a str); a local ``out``
    comes back as a Path.

    Example:
        >>> import tempfile, mmdata
        >>> p = build(tempfile.mkdtemp() + "/av", limit=5, progress=False)
        >>> mmdata.inspect(p)["per_split"]
        {'test': 10, 'train': 30, 'val': 10}
    """
    from mmdata.shards.sources import Record
    from mmdata.shards.replacing import check_replacing
    from mmdata.shards.writer import check_foreign_output, write_records
    from mmdata.urls import is_remote

    check_foreign_output(out, force, storage_options)  # before anything is generated (QA round 22: it wrote among a user's files)
    check_replacing(out, "datasets build", force=force, storage_options=storage_options)  # QA35: another command's dataset

    g = generate(seed, knobs, limit)
    recs = [Record(r["key"], r["key"], {e: r[e] for e in ("png", "flac", "txt") if e in r}, r["label"], r["split"],
                   extra={"speaker": str(r["speaker"])}) for r in g["records"]]
    extra = {"avdigits": {"seed": seed, "knobs": g["knobs"], "speakers": g["speakers"], "bank_sha256": g["bank_sha256"],
                          "content_sha256": g["content_sha256"], "limit": limit,
                          "sources": "sklearn load_digits images; espeak-ng speech bank (mmdata/datasets/assets)",
                          "attribution": [dict(a) for a in ATTRIBUTION]},
             # QA27: the card named its sources without licence or attribution, version or command
             **card_provenance("avdigits", seed, limit, knobs)}
    write_records(recs, out, maxcount=400, workers=workers, label_names=list(WORDS), progress=progress,
                  name="avdigits", card_extra=extra, storage_options=storage_options)
    # an object store's URL as given: Path('s3://b/x') is 's3:/b/x', a local folder of that name
    return str(out) if is_remote(out) else Path(out)
