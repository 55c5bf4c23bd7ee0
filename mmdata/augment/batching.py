"""Helpers shared by batched kernels: per-sample masks on the batch's device, the per-sample
fallback for ops without a vectorised kernel, and text re-tokenisation after string edits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmdata.types import Batch, collate, uncollate

#: On a CPU batch, resized crop, cutout, flips and time masks loop per row (cv2 / slice kernels): one
#: core resizes uint8 with cv2 ~3x faster than any float torch kernel, and a few slice fills beat
#: building a (B, H, W) mask. The vectorised torch kernels run on every other device; tests set this
#: to True to check them on CPU against the per-sample kernels.
VECTORISED_ON_CPU = False


def cpu_loop(x: torch.Tensor) -> bool:
    """Whether an op should loop its per-row kernel over this batch tensor instead of the vectorised one."""
    return x.device.type == "cpu" and not VECTORISED_ON_CPU


def on(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Copy host metadata (masks, lengths, indices built from params) to ``device`` without a sync."""
    return t.to(device, non_blocking=True)


def column(params: Sequence[dict[str, Any]], key: str, dtype: torch.dtype = torch.float32,
           device: torch.device | None = None, default: float | None = None) -> torch.Tensor:
    """One parameter of every row as a (B,) tensor, on ``device`` without a sync; ``default`` (the identity
    value, for a ``masked`` kernel) where a row is not applied."""
    vals = [p[key] for p in params] if default is None else [p[key] if p.get("applied") else default for p in params]
    t = torch.tensor(vals, dtype=dtype)
    return on(t, device) if device is not None else t


def applied_rows(params: Sequence[dict[str, Any]]) -> list[int]:
    """Positions of the applied rows (what a ``masked`` kernel loops over)."""
    return [i for i, p in enumerate(params) if p.get("applied")]


def per_sample_fallback(op: Any, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
    """Run the per-sample kernel on each row (rows not applied pass through) and re-collate (same result by
    construction)."""
    device = batch.device
    samples = uncollate(batch.to("cpu"))
    out = [op.apply(s, p) for s, p in zip(samples, params)]
    new = collate(out)
    new.meta = {**batch.meta, **{k: v for k, v in new.meta.items() if k == "samples"}}
    return new.to(device)


def retokenize(batch: Batch, texts: list[str], rows: Sequence[int] | None = None) -> Batch:
    """Replace ``text`` (all rows or some) and recompute ``tokens`` / lengths on the batch's device."""
    from mmdata.text import default_tokenizer

    ids, lens = default_tokenizer().encode_batch(texts)
    out = batch.replace(text=texts, tokens=on(ids, batch["tokens"].device if "tokens" in batch else batch.device))
    out.lengths["tokens"] = lens  # host metadata
    return out
