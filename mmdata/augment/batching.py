"""Helpers shared by batched kernels: per-sample masks on the batch's device, the per-sample
fallback for ops without a vectorised kernel, text re-tokenisation after string edits (with the tokenizer
the batch was collated with), and :func:`tidy`,
which leaves a batch an op changed shaped as :func:`~mmdata.types.collate` would shape its rows."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from mmdata.types import TOKENIZER, Batch, collate, field_lengths, uncollate

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
    out = []
    for s, p in zip(samples, params):
        try:
            out.append(op.apply(s, p))
        except Exception as exc:  # name the row: the recipe's note could only name the batch
            from mmdata.augment.contract import note

            note(exc, op, s.key)
            raise
    # the batch's fields stay, also one no row has (a dataset field: the loader's collate keeps its mask,
    # -1 labels, empty texts), which uncollate cannot carry over in a sample
    new = collate(out, tokenizer=batch.meta.get(TOKENIZER), fields=tuple(batch.present))
    new.meta = {**batch.meta, **{k: v for k, v in new.meta.items() if k == "samples"}}
    return new.to(device)


def tokenizer_of(batch: Batch) -> Any:
    """The tokenizer ``batch`` was collated with (``collate(samples, tokenizer=...)`` keeps it in
    ``batch.meta["tokenizer"]``), else the default one: what edited texts are encoded with, so a batched op
    gives the ids ``collate(tokenizer=...)`` gives the per-sample op's output.

    Example:
        >>> from mmdata.text import Tokenizer
        >>> from mmdata.types import Sample, collate
        >>> tokenizer_of(collate([Sample("a", {"text": "hi"})], tokenizer=Tokenizer(100, 8))).vocab_size
        100
    """
    from mmdata.text import default_tokenizer

    tok = batch.meta.get(TOKENIZER)
    return default_tokenizer() if tok is None else tok


def retokenize(batch: Batch, texts: list[str]) -> Batch:
    """Replace ``text`` and recompute ``tokens`` / lengths on the batch's device, with the tokenizer the batch
    was collated with (:func:`tokenizer_of`)."""
    ids, lens = tokenizer_of(batch).encode_batch(texts)
    out = batch.replace(text=texts, tokens=on(ids, batch["tokens"].device if "tokens" in batch else batch.device))
    out.lengths["tokens"] = lens  # host metadata
    return out


def _audio_widths(batch: Batch, shapes: torch.Tensor) -> torch.Tensor:
    """Each audio row's (channels, width) as collate stacked it: its real frames (``lengths["audio"]``), except
    a clip ``pad_trim`` padded (``audio_valid`` in the row's ``meta["samples"]``), whose per-sample tensor is
    its whole padded width: the width collate recorded for the row (:data:`mmdata.types.AUDIO_WIDTH`; the
    batch's width for a batch collated without it). Collate pads the rows to the widest tensor, not to the longest
    real clip, so a batch holding a padded clip keeps the padded width after a drop, as the per-sample kernel's
    rows give it (QA round 35 repro #1: ``pad_trim(pad: true)`` + ``modality_dropout`` on
    ``augment_on="device"``) — and with ``pad_trim(trim: false)``, where a longer clip made the batch wider, the
    padded row's own width, not that clip's (review media #1)."""
    from mmdata.augment.audio import _batch_valid
    from mmdata.types import AUDIO_WIDTH

    valid = _batch_valid(batch)
    if all(v is None for v in valid):
        return shapes
    full = int(batch["audio"].shape[-1])
    metas = batch.meta.get("samples") or []
    out = shapes.clone()
    for i, v in enumerate(valid):
        if v is None:
            continue
        rec = metas[i].get(AUDIO_WIDTH) if i < len(metas) and isinstance(metas[i], dict) else None
        ok = (isinstance(rec, (list, tuple)) and len(rec) == 2 and all(type(x) is int for x in rec)
              and rec[1] == full and v <= rec[0] <= full)  # stale once a batched op re-padded the audio
        out[i, -1] = rec[0] if ok else full
    return out


def tidy(batch: Batch, names: Iterable[str], derived: Collection[str] = ()) -> Batch:
    """``batch`` with fields ``names`` shaped as :func:`~mmdata.types.collate` shapes the rows it now holds, after a
    batched op changed their presence or valid shapes (dropped a modality, shortened texts): padding trimmed to
    the largest row still present (``tokens``: to the longest text, at least one column; ``audio``: a clip
    ``pad_trim`` padded counts its padded width, as collate stacks it, :func:`_audio_widths`), lengths of every
    field (each row's shape, zeros where absent), and a field no row has any more left without its
    tensor and lengths. Its presence mask stays (all False) when collate was told to keep the field
    (``batch.meta["fields"]``, the dataset's fields in :func:`mmdata.loader`), as collate keeps the mask
    of such a field none of the samples has, and goes otherwise — as do the masks of ``derived`` fields (computed by an op from another, e.g. ``spec``,
    never a dataset field), which go entirely; with the audio gone, so does ``sample_rate``. ``text`` and
    ``label`` are never removed (collate gives empty texts and -1 labels). Reads host metadata only (presence,
    lengths): no device sync; a trimmed tensor is a new contiguous copy on its device.

    Example:
        >>> import torch
        >>> from mmdata.types import Sample, collate
        >>> rows = [Sample("a", {"audio": torch.ones(1, 3)}, 8000), Sample("b", {"audio": torch.ones(1, 5)}, 8000)]
        >>> b = collate(rows, fields=("audio",))
        >>> b.present["audio"] = torch.tensor([True, False])
        >>> t = tidy(b, ["audio"])
        >>> tuple(t["audio"].shape), t.lengths["audio"].tolist()
        ((2, 1, 3), [3, 0])
        >>> b.present["audio"] = torch.tensor([False, False])
        >>> t = tidy(b, ["audio"])
        >>> "audio" in t, t.present["audio"].tolist(), t.sample_rate
        (False, [False, False], None)
        >>> b = collate(rows)  # not told to keep audio: no mask once no row has it, as collate gives
        >>> b.present["audio"] = torch.tensor([False, False])
        >>> "audio" in tidy(b, ["audio"]).present
        False
    """
    out = batch.replace()
    n = len(batch)
    for name in dict.fromkeys("tokens" if m == "text" else m for m in names):
        x = batch.data.get(name)
        if not isinstance(x, torch.Tensor) or name == "label" or x.dim() < 2:
            continue  # labels and fixed-shape (B,) fields have no padding
        pres = batch.present.get("text" if name == "tokens" else name, torch.ones(n, dtype=torch.bool))
        if name == "tokens":
            width = max(1, int(batch.lengths["tokens"].max()) if n else 1)
            if width < x.shape[1]:
                out.data["tokens"] = x[:, :width].contiguous()
            continue
        if not bool(pres.any()):
            del out.data[name]
            out.lengths.pop(name, None)
            if name in derived or ("fields" in batch.meta and name not in batch.meta["fields"]):
                out.present.pop(name, None)  # as collate leaves it: no mask for a field it was not told to keep
            if name == "audio":
                out.sample_rate = None
            continue
        shapes = batch.valid_shapes(name)  # zeros where a row is absent, as collate records it
        widths = shapes
        if name == "audio":
            widths = _audio_widths(batch, shapes)
        top = [int(v) for v in widths[pres].amax(dim=0).tolist()]
        if name in ("image", "audio"):
            top[0] = x.shape[1]  # channels are never padded
        if any(t < s for t, s in zip(top, x.shape[1:])):
            out.data[name] = x[(slice(None), *(slice(0, t) for t in top))].contiguous()
        if name == "image":
            out.lengths["image"] = shapes[:, 1:].clone()
        elif name == "audio":
            out.lengths["audio"] = shapes[:, -1].clone()
        else:  # in every batch, as collate gives them (QA38 E #1, rv1 #1); a named image's (h, w)
            out.lengths[name] = field_lengths(name, shapes, out.data[name])
    return out
