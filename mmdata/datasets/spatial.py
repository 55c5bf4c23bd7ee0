"""``avdigits-spatial``: avdigits with captions that say *where* the marked digit is, built offline.

Made to audit augmentations for cross-modal alignment (:mod:`mmdata.train.alignment`): a left-right
flip of the image contradicts a caption that says "left" unless the caption is flipped too.

Each avdigits sample (same key, split, label, audio) becomes:

* image: a 32x32 greyscale canvas with two avdigits digits (16x16 cells) side by side (left/right
  layout, vertically centred) or stacked (top/bottom layout, horizontally centred). The sample's own
  digit is **marked** with a bright frame; the other one is a distractor of another class from the
  same split. Each digit is mirrored left-right with probability 0.5, so a left-right flip of an
  image gives another image of the same distribution — as for natural photos, where a mirrored dog
  is still a dog. Only the captions break the symmetry.
* text: where the marked digit is, plus the avdigits clue when the sample has one:
  "the framed digit, an odd number, is on the left-hand side"; "the framed digit is at the top".
* audio: the avdigits clip (the marked digit's word); label: the marked digit.

So ``consistent_hflip`` (flip the image, swap left/right words) maps the data distribution onto
itself, and ``hflip`` alone contradicts the captions of the left/right half of the samples.
The index gets ``position`` (left/right/top/bottom) and ``layout`` columns; the card records the seed,
``limit``, counts and a content sha256.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.datasets.avdigits import WORDS, generate
from mmdata.rng import derive

NAME = "avdigits-spatial"
SIZE = 32
CELL = 16
PHRASES = {
    "left": ("is on the left", "is on the left-hand side", "is in the leftmost cell"),
    "right": ("is on the right", "is on the right-hand side", "is in the rightmost cell"),
    "top": ("is at the top", "is in the top cell", "is above the other digit"),
    "bottom": ("is at the bottom", "is in the bottom cell", "is below the other digit"),
}
#: top-left corner of the marked and the other cell per position
CELLS = {"left": ((8, 0), (8, 16)), "right": ((8, 16), (8, 0)), "top": ((0, 8), (16, 8)), "bottom": ((16, 8), (0, 8))}


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def compose(marked: np.ndarray, other: np.ndarray, position: str) -> np.ndarray:
    """The 32x32 canvas: ``marked`` (framed) and ``other`` in the cells of ``position``.

    Example:
        >>> img = compose(np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8), "left")
        >>> int(img[8, 0]), int(img[8, 16]), img.shape
        (255, 0, (32, 32))
    """
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    (r0, c0), (r1, c1) = CELLS[position]
    canvas[r1 : r1 + CELL, c1 : c1 + CELL] = other
    cell = marked.copy()
    cell[0, :] = cell[-1, :] = cell[:, 0] = cell[:, -1] = 255  # the frame: symmetric under any flip
    canvas[r0 : r0 + CELL, c0 : c0 + CELL] = cell
    return canvas


def frame_position(image: np.ndarray) -> str | None:
    """Where the framed cell is in a (possibly augmented) 32x32 canvas — the ground truth a caption should
    match; None when no cell has an intact frame (e.g. after a crop).

    Example:
        >>> blank = np.zeros((16, 16), np.uint8)
        >>> frame_position(compose(blank, blank, "bottom"))
        'bottom'
    """
    img = np.asarray(image).reshape(SIZE, SIZE) if np.asarray(image).size == SIZE * SIZE else None
    if img is None:
        return None
    for pos, ((r, c), _) in CELLS.items():
        cell = img[r : r + CELL, c : c + CELL]
        if all((edge == 255).all() for edge in (cell[0], cell[-1], cell[:, 0], cell[:, -1])):
            return pos
    return None


def caption_position(text: str) -> str | None:
    """Which position a caption states (None when it states none, e.g. after its words were masked).

    Example:
        >>> caption_position("the framed digit, an odd number, is in the rightmost cell")
        'right'
    """
    for pos, phrases in PHRASES.items():
        if any(text.endswith(p) for p in phrases):
            return pos
    return None


def caption(position: str, clue: str | None, rng: np.random.Generator) -> str:
    """The caption of a sample: "the framed digit[, <clue>,] <where>".

    Example:
        >>> caption("left", "an odd number", np.random.default_rng(0))
        'the framed digit, an odd number, is in the leftmost cell'
    """
    where = PHRASES[position][int(rng.integers(len(PHRASES[position])))]
    return f"the framed digit, {clue}, {where}" if clue else f"the framed digit {where}"


def generate_spatial(seed: int = 0, limit: int | None = None) -> dict[str, Any]:
    """Generate avdigits-spatial in memory (records + metadata). ``limit``: samples per class, as in avdigits."""
    from mmdata.datasets.avdigits import _png

    base = generate(seed, limit=limit)
    by_split: dict[str, list[dict[str, Any]]] = {}
    for r in base["records"]:
        by_split.setdefault(r["split"], []).append(r)
    images = {r["key"]: _decode_png(r["png"]) for r in base["records"]}
    out = []
    h = hashlib.sha256()
    counts: dict[str, int] = {p: 0 for p in PHRASES}
    for r in base["records"]:
        rng = derive(seed, 0, r["key"], "avdigits-spatial")
        layout = "left/right" if rng.random() < 0.5 else "top/bottom"
        position = ("left", "right")[int(rng.integers(2))] if layout == "left/right" else ("top", "bottom")[int(rng.integers(2))]
        pool = [o for o in by_split[r["split"]] if o["label"] != r["label"]]
        other = images[pool[int(rng.integers(len(pool)))]["key"]]
        marked = images[r["key"]]
        marked = marked[:, ::-1] if rng.random() < 0.5 else marked
        other = other[:, ::-1] if rng.random() < 0.5 else other
        img = compose(marked, other, position)
        text = caption(position, r["txt"].decode("utf-8") if "txt" in r else None, rng)
        rec = {"key": r["key"], "split": r["split"], "label": r["label"], "speaker": r["speaker"], "position": position,
               "layout": layout, "png": _png(img), "flac": r["flac"], "txt": text.encode("utf-8")}
        counts[position] += 1
        for name in ("key", "split", "label", "position", "png", "flac", "txt"):
            v = rec[name]
            h.update(v if isinstance(v, bytes) else str(v).encode())
        out.append(rec)
    return {"records": out, "counts": counts, "content_sha256": h.hexdigest(), "seed": seed,
            "avdigits_content_sha256": base["content_sha256"], "speakers": base["speakers"]}


def build(out: str | Path, seed: int = 0, workers: int = 1, progress: bool = True, limit: int | None = None,
          force: bool = False, storage_options: dict[str, Any] | None = None) -> str | Path:
    """Generate avdigits-spatial and shard it to ``out`` (shards + index + card), offline. An ``out`` holding
    files and no mmdata dataset is refused, as ``mmdata shard`` refuses it, and so is one holding a dataset
    another command wrote (:func:`~mmdata.shards.replacing.check_replacing`) (``force``: no check). ``out`` may be
    an object store's URL (``storage_options`` for it): returned as given (a str); a local ``out`` as a Path.

    Example:
        >>> import tempfile, mmdata
        >>> p = build(tempfile.mkdtemp() + "/sp", limit=5, progress=False)
        >>> s = next(iter(mmdata.open_dataset(p, split="test")))
        >>> tuple(s["image"].shape), s["text"].startswith("the framed digit")
        ((1, 32, 32), True)
    """
    from mmdata.datasets.avdigits import ATTRIBUTION, card_provenance
    from mmdata.shards.replacing import check_replacing
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import check_foreign_output, write_records
    from mmdata.urls import is_remote

    check_foreign_output(out, force, storage_options)  # before anything is generated (QA round 22: it wrote among a user's files)
    check_replacing(out, "datasets build", force=force, storage_options=storage_options)  # QA35: another command's dataset

    g = generate_spatial(seed, limit)
    recs = [Record(r["key"], r["key"], {e: r[e] for e in ("png", "flac", "txt")}, r["label"], r["split"],
                   extra={"speaker": str(r["speaker"]), "position": r["position"], "layout": r["layout"]})
            for r in g["records"]]
    extra = {"avdigits_spatial": {"seed": seed, "limit": limit, "positions": g["counts"], "content_sha256": g["content_sha256"],
                                  "avdigits_content_sha256": g["avdigits_content_sha256"], "speakers": g["speakers"],
                                  "sources": "avdigits (sklearn load_digits images, espeak-ng speech bank), composed",
                                  "attribution": [dict(a) for a in ATTRIBUTION]},
             **card_provenance(NAME, seed, limit)}  # QA27: licence, citation, version and command, as avdigits'
    extra["description"] = ("avdigits-spatial: " + extra["description"].split(": ", 1)[1]
                            + "; each image a framed digit beside a distractor, captions saying where")
    write_records(recs, out, maxcount=400, workers=workers, label_names=list(WORDS), progress=progress,
                  name=NAME, card_extra=extra, storage_options=storage_options)
    # an object store's URL as given: Path('s3://b/x') is 's3:/b/x', a local folder of that name
    return str(out) if is_remote(out) else Path(out)
