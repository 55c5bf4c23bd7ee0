"""``mmdata preview``: a picture of what a recipe does — rows are samples, columns are the original
and augmented variants (epochs 0..V-1). Each cell shows what the sample has: the image, the audio
waveform over its log spectrogram, and the text with the changed words marked
(``⟨new⟩`` for replaced or inserted words, ``[-old-]`` for deleted ones), plus the label.
"""

from __future__ import annotations

import difflib
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.augment.recipe import load_recipe, params_seed
from mmdata.types import Sample


def mark_changes(before: str, after: str) -> str:
    """Word diff of two texts.

    Example:
        >>> mark_changes("a red box on the left", "a [MASK] box on the right")
        'a [-red-] ⟨[MASK]⟩ box on the [-left-] ⟨right⟩'
    """
    a, b = before.split(), after.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
        if op in ("replace", "delete"):
            out += [f"[-{w}-]" for w in a[i1:i2]]
        if op in ("replace", "insert"):
            out += [f"⟨{w}⟩" for w in b[j1:j2]]
    return " ".join(out)


def _cell(fig: Any, spec: Any, s: Sample, original: Sample, names: list[str] | None, title: str) -> None:
    rows = [k for k in ("image", "audio") if k in s]
    inner = spec.subgridspec(max(1, len(rows) + (1 if "audio" in s else 0)) + 1, 1, hspace=0.15,
                             height_ratios=[*([3] if "image" in s else []), *([1, 1.5] if "audio" in s else []), 1.2])
    r = 0
    if "image" in s:
        ax = fig.add_subplot(inner[r])
        img = s["image"].numpy()
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray" if img.shape[0] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title, fontsize=8)
        r += 1
    if "audio" in s:
        wav = s["audio"].numpy().mean(axis=0)
        ax = fig.add_subplot(inner[r])
        ax.plot(np.arange(len(wav)) / s.sample_rate, wav, lw=0.4, color="tab:blue")
        ax.set_xlim(0, max(len(wav), 1) / s.sample_rate)
        ax.set_ylim(-1, 1)
        ax.set_xticks([]), ax.set_yticks([])
        if "image" not in s:
            ax.set_title(title, fontsize=8)
        ax = fig.add_subplot(inner[r + 1])
        if len(wav) > 64:
            with np.errstate(divide="ignore"):  # silent (masked) spans have zero power
                ax.specgram(wav + 1e-9, NFFT=128, Fs=s.sample_rate, noverlap=96, cmap="magma")
        ax.set_xticks([]), ax.set_yticks([])
        r += 2
    ax = fig.add_subplot(inner[r])
    ax.axis("off")
    text = s.get("text")
    lines = []
    if text is not None:
        marked = mark_changes(original.get("text", ""), text) if original.get("text") is not None else text
        lines.append(textwrap.fill(marked, 34))
    else:
        lines.append("(no text)")
    missing = [m for m in ("image", "audio", "text") if m in original and m not in s]
    if missing:
        lines.append("dropped: " + ", ".join(missing))
    if "label" in s:
        lab = s["label"]
        lines.append(f"label: {names[lab] if names and 0 <= lab < len(names) else lab}")
    changed = (text != original.get("text")) or bool(missing)
    ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=6.5, color="firebrick" if changed else "black",
            transform=ax.transAxes, family="DejaVu Sans")


def preview(shards: str | Path, recipe: Any, out: str | Path, *, n: int = 8, variants: int = 3, split: str = "train",
            seed: int = 0) -> Path:
    """Render ``n`` samples x (original + ``variants`` augmented versions) to a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import mmdata

    rec = load_recipe(recipe)
    rec = rec.with_seed(params_seed(rec.seed, seed))
    ds = mmdata.open_dataset(shards, split=split)
    samples = []
    for s in ds:
        samples.append(Sample(s.key, s.fields, s.sample_rate))
        if len(samples) >= n:
            break
    names = ds.label_names
    cols = 1 + variants
    fig = plt.figure(figsize=(2.1 * cols, 2.6 * len(samples) + 0.4))
    grid = fig.add_gridspec(len(samples), cols, wspace=0.08, hspace=0.25)
    for i, s in enumerate(samples):
        _cell(fig, grid[i, 0], s, s, names, f"{s.key} (original)")
        for v in range(variants):
            _cell(fig, grid[i, 1 + v], rec.apply_sample(s, epoch=v), s, names, f"epoch {v}")
    fig.suptitle(f"recipe preview: {len(samples)} samples x {variants} variants (changed text in red)", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
