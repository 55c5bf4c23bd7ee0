"""Batch-level mixing (recipe section ``batch:``): run after collate, on any device.

Both write the mixed target as ``batch["label_b"]`` and ``batch["mix_lam"]`` (B,) float: the training
target is ``lam * onehot(label) + (1 - lam) * onehot(label_b)``. Every mixed batch — with class labels or
not — also carries ``mix_lam`` and, in ``batch.meta["mix_partner"]`` (host (B,) int64), the row whose
target is mixed into each row's (its own where the row's label is not mixed): a metadata target (``mmdata
train --target``: label sets, numbers) mixes as ``lam * y + (1 - lam) * y[mix_partner]``
(:meth:`mmdata.train.targets.Target.mixed`). Params (partner permutation, lambda,
which rows mix) are drawn per batch on the CPU from ``derive(seed, epoch, "batch:" + hash of the batch's
keys, op index)``; the partners form a derangement (:func:`derangement`: no row is its own partner).

* ``mixup`` (Zhang et al. 2018): images and audio (the waveform and its ``spec``) mixed with
  ``lam ~ Beta(alpha, alpha)``.
* ``mixgen`` (Hao et al. 2022): images mixed with a fixed ``lam``, texts concatenated
  ("text_i text_j"), labels mixed with ``lam``.

Missing modalities: a modality is mixed in row i only when the row is drawn (``rows``) and both row i
and its partner have it; elsewhere the row keeps it as it was (an absent row stays empty and absent, a
present row next to an absent partner is not faded into zeros). Audio lengths become the longer of the
pair (the shorter clip is silent past its end); an image or ``spec`` keeps its own size and is mixed
over the part both rows cover (top-left aligned: normalize sizes for the textbook mixup).

Labels: a row's *primary* modality is the first of the op's modalities it has (mixup: image, else
audio; mixgen: image, else text). The label is mixed — ``mix_lam = lam``, ``label_b`` the partner's —
when the primary was mixed (what timm's Mixup, which mixes every image, and MixGen, which mixes image and
text together, assume); otherwise ``mix_lam = 1`` and ``label_b`` is the row's own label, so the loss
of that row is its plain cross-entropy (an unlabelled partner does not remove it either). A mixed row
whose partner is unlabelled is left out of the loss (half of its target is unknown); an unlabelled row
is left out as ever.

A batch is mixed once: ``label_b`` / ``mix_lam`` describe one pairing, so a second mixing op on a mixed
batch raises :class:`~mmdata.errors.RecipeError` naming both ops (:func:`check_batch_section` is the
same check on a recipe's ``batch:`` section, for load time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from mmdata.augment import contract
from mmdata.augment.base import Op, Param
from mmdata.augment.batching import on, retokenize
from mmdata.errors import RecipeError
from mmdata.text import Tokenizer
from mmdata.types import Batch

#: ``batch.meta`` key naming the op that mixed the batch ("batch[0] (mixup)")
MIXED_BY = "mixed_by"
#: ``batch.meta`` key of the host (B,) int64 rows whose targets are mixed into each row's (own row: not mixed)
MIX_PARTNER = "mix_partner"


def derangement(rng: np.random.Generator, n: int) -> list[int]:
    """A permutation of ``range(n)`` without fixed points, uniform over all of them (rejection: about
    e permutations drawn on average); ``n < 2`` has none, so the identity (nothing is mixed).

    Example:
        >>> p = derangement(np.random.default_rng(0), 5)
        >>> sorted(p) == [0, 1, 2, 3, 4] and all(p[i] != i for i in range(5))
        True
    """
    if n < 2:
        return list(range(n))
    idx = np.arange(n)
    while True:
        perm = rng.permutation(n)
        if not (perm == idx).any():
            return [int(i) for i in perm]


def check_batch_section(ops: Sequence[Op]) -> None:
    """Refuse a ``batch:`` section with more than one mixing op (a batch is mixed once).

    Raises:
        RecipeError: naming the second mixing op's recipe key and the first one.

    Example:
        >>> from mmdata.augment.base import build_op
        >>> check_batch_section([build_op("batch", {"op": "mixup"}, "batch[0]")])
    """
    mixing = [op for op in ops if isinstance(op, BatchOp)]
    if len(mixing) > 1:
        first, second = mixing[:2]
        raise RecipeError(f"{second.where}: a second mixing op ({second.name}) after {first.where} ({first.name}); a batch "
                          "is mixed once (label_b / mix_lam hold one pairing): keep one of them")


class BatchOp(Op):
    """A batch-section op: ``draw_batch`` makes one params dict for the whole batch, ``mix`` applies it
    (once per batch: a mixed batch is refused) through the ``combine`` hook."""

    section = "batch"
    #: the modalities mixed, in label precedence: the first one a row has is its primary modality
    modalities: ClassVar[tuple[str, ...]] = ()

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        n = len(batch)
        rows = (rng.random(n) < self.p).tolist()
        return {"perm": derangement(rng, n), "rows": [bool(r) for r in rows]}

    def transform(self, sample: Any, params: dict[str, Any]) -> Any:  # pragma: no cover - batch-only
        raise TypeError(f"{self.name} mixes samples and runs only on batches (recipe section 'batch')")

    def mix(self, batch: Batch, params: dict[str, Any]) -> Batch:
        """``batch`` mixed with ``params`` (from :meth:`draw_batch`); pure, on the batch's device.

        Raises:
            RecipeError: the batch was already mixed (by an earlier op of the section).
        """
        prev = batch.meta.get(MIXED_BY) or ("an earlier mixing op (it has mix_lam)" if "mix_lam" in batch else None)
        if prev is not None:
            raise RecipeError(f"{self.where} ({self.name}): this batch was already mixed by {prev}; label_b / mix_lam hold "
                              "one pairing, so a batch is mixed once: keep one mixing op in the batch section")
        if self._builtin:
            out = self.combine(batch, params)
        else:
            watched = contract._versions(batch.data)  # a combine that writes into the batch in place
            out = self.combine(batch, params)
            contract.check_batch(self, batch, out, written=[k for k, t, ver in watched if t._version != ver])
        out.meta[MIXED_BY] = f"{self.where} ({self.name})"
        return out

    def combine(self, batch: Batch, params: dict[str, Any]) -> Batch:
        """The op's kernel (``mix`` without the once-only check); returns a new batch."""
        raise NotImplementedError


class _Pairing:
    """Host-side bookkeeping of one mix: partner indices, which rows mix, and the device copies."""

    def __init__(self, batch: Batch, params: dict[str, Any]) -> None:
        n = len(batch)
        self.n = n
        self.perm_h = torch.tensor(params["perm"], dtype=torch.int64)
        # a row that is its own partner (a batch of one, an old log) has nothing to mix with
        self.rows_h = torch.tensor(params["rows"], dtype=torch.bool) & (self.perm_h != torch.arange(n))
        dev = batch.device
        self.perm = on(self.perm_h, dev)
        self.lam = on(torch.tensor(params["lam"], dtype=torch.float32), dev)

    def both(self, batch: Batch, name: str) -> torch.Tensor:
        """Host (B,) bool: rows drawn whose row and partner both have field ``name``."""
        pres = batch.present.get(name, torch.ones(self.n, dtype=torch.bool))
        return self.rows_h & pres & pres[self.perm_h]


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.reshape((-1,) + (1,) * (x.dim() - 1))


def _blend(x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    lam = _bcast(lam, x)
    y = x.float() * lam + partner.float() * (1 - lam)
    return y.round_().clamp_(0, 255).to(x.dtype) if x.dtype == torch.uint8 else y.to(x.dtype)


def _mix_sized(batch: Batch, out: Batch, name: str, pair: _Pairing, mixed: torch.Tensor) -> None:
    """Mix a field whose rows keep their own size (image, spec) over the extent both rows cover."""
    x = batch[name]
    mask = on(mixed, x.device)
    keep = _bcast(mask, x)
    ln = batch.lengths.get(name)
    if ln is not None:
        ln = ln.reshape(pair.n, -1)
        cover = torch.minimum(ln, ln[pair.perm_h])[mixed]
        full = torch.tensor(x.shape[x.dim() - ln.shape[1]:])
        if bool((cover < full).any()):  # host sizes: the region mask is built only when sizes differ
            lim = torch.minimum(ln, ln[pair.perm_h])
            for d in range(ln.shape[1]):
                axis = x.dim() - ln.shape[1] + d
                inside = torch.arange(x.shape[axis], device=x.device)[None, :] < on(lim[:, d], x.device)[:, None]
                shape = [x.shape[0]] + [1] * (x.dim() - 1)
                shape[axis] = x.shape[axis]
                keep = keep & inside.reshape(shape)
    out.data[name] = torch.where(keep, _blend(x, x[pair.perm], pair.lam), x)


def _mix_audio(batch: Batch, out: Batch, pair: _Pairing, mixed: torch.Tensor) -> None:
    """Mix waveforms over the longer clip of each pair (each clip silent past its end), lengths to match."""
    x = batch["audio"]
    ln = batch.lengths.get("audio", torch.full((pair.n,), x.shape[-1], dtype=torch.int64))
    valid = torch.arange(x.shape[-1], device=x.device)[None, :] < on(ln, x.device)[:, None]
    clean = x * valid[:, None, :].to(x.dtype)  # padding past a clip's end reads as silence
    out.data["audio"] = torch.where(_bcast(on(mixed, x.device), x), _blend(clean, clean[pair.perm], pair.lam), x)
    out.lengths["audio"] = torch.where(mixed, torch.maximum(ln, ln[pair.perm_h]), ln)


#: the log-mel value of a silent frame (``logmel``'s floor: log(0 + 1e-6))
SILENT_FRAME = math.log(1e-6)


def _mix_spec(batch: Batch, out: Batch, pair: _Pairing, mixed: torch.Tensor) -> None:
    """Mix log-mel ``spec`` rows as their waveforms are mixed: over the longer of each pair, each row
    reading as silent frames past its own end, frame counts to match (padding stays 0, as collate pads)."""
    ln = batch.lengths.get("spec")
    if ln is None:  # every row has the same frames: the plain blend
        _mix_sized(batch, out, "spec", pair, mixed)
        return
    x = batch["spec"]
    frames = ln.reshape(pair.n, -1)[:, -1]
    t = torch.arange(x.shape[-1], device=x.device)[None, None, :]
    clean = torch.where(t < on(frames, x.device)[:, None, None], x, torch.full_like(x, SILENT_FRAME))
    new = torch.where(mixed, torch.maximum(frames, frames[pair.perm_h]), frames)
    blended = torch.where(t < on(new, x.device)[:, None, None], _blend(clean, clean[pair.perm], pair.lam).to(x.dtype),
                          torch.zeros((), dtype=x.dtype, device=x.device))
    out.data["spec"] = torch.where(_bcast(on(mixed, x.device), x), blended, x)
    lengths = ln.clone().reshape(pair.n, -1)
    lengths[:, -1] = new
    out.lengths["spec"] = lengths.reshape(ln.shape)


def _labels(batch: Batch, out: Batch, pair: _Pairing, mixed: dict[str, torch.Tensor], modalities: Sequence[str],
            has: dict[str, torch.Tensor] | None = None) -> None:
    """mix_lam, the mix_partner rows and (with class labels) label_b: mixed where the row's primary
    modality (first of ``modalities`` it has) was. ``has``: a modality's rows that have it, where that is not
    its presence mask (mixgen: captions with words)."""
    label_mixed = torch.zeros(pair.n, dtype=torch.bool)
    decided = torch.zeros(pair.n, dtype=torch.bool)
    for m in modalities:
        if m not in batch:
            continue
        rows = (has or {}).get(m)
        if rows is None:
            rows = batch.present.get(m, torch.ones(pair.n, dtype=torch.bool))
        label_mixed |= rows & ~decided & mixed.get(m, torch.zeros(pair.n, dtype=torch.bool))
        decided |= rows
    # host: a metadata target is built on the host and indexed by it (mmdata.train.targets.Target.mixed)
    out.meta[MIX_PARTNER] = torch.where(label_mixed, pair.perm_h, torch.arange(pair.n))
    lab = batch["label"] if "label" in batch else None
    dev = pair.lam.device if lab is None else lab.device
    m_dev = on(label_mixed, dev)
    if lab is not None:
        out.data["label_b"] = torch.where(m_dev, lab[pair.perm.to(lab.device)], lab)
    lam = pair.lam.to(dev)
    out.data["mix_lam"] = torch.where(m_dev, lam, torch.ones_like(lam))


class MixUp(BatchOp):
    """Mix images and audio (waveform and ``spec``) of row i with row perm[i] using lam ~ Beta(alpha,
    alpha) per row (the larger of lam, 1 - lam: the row's own sample dominates). A modality is mixed only
    where both rows have it (audio lengths, and ``spec`` frames, become the pair's longer, each clip silent
    past its end, so the waveform and its log-mel are mixed alike; images keep their size); the label
    is mixed (``mix_lam`` = lam, ``label_b`` = partner's label) when the row's primary modality — its
    image, else its audio — was mixed, else ``mix_lam`` = 1 and ``label_b`` = its own label. A batch is
    mixed once (a second mixing op raises); no row is its own partner."""

    section, name = "batch", "mixup"
    moves_pixels = True
    PARAMS = {"alpha": Param("float", 0.2, 1e-3, 100.0, doc="Beta(alpha, alpha) concentration of the mixing weight")}
    modalities = ("image", "audio")

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        d = super().draw_batch(rng, batch)
        lam = rng.beta(self.alpha, self.alpha, size=len(batch))
        d["lam"] = [float(max(v, 1 - v)) if r else 1.0 for v, r in zip(lam, d["rows"])]
        return d

    def combine(self, batch: Batch, params: dict[str, Any]) -> Batch:
        pair = _Pairing(batch, params)
        out = batch.replace()
        mixed: dict[str, torch.Tensor] = {}
        for m in ("image", "audio", "spec"):
            if m not in batch:
                continue
            mixed[m] = pair.both(batch, m)
            if not bool(mixed[m].any()):
                continue
            if m == "audio":
                _mix_audio(batch, out, pair, mixed[m])
            elif m == "spec":
                _mix_spec(batch, out, pair, mixed[m])
            else:
                _mix_sized(batch, out, m, pair, mixed[m])
        _labels(batch, out, pair, mixed, self.modalities)
        return out


class MixGen(BatchOp):
    """MixGen: image_i = lam*image_i + (1-lam)*image_perm[i]; text_i = text_i + " " + text_perm[i] — each
    only where both rows have that modality (images keep their size; an empty or whitespace-only caption is
    absent, as for the text ops: it is neither mixed nor mixed in). The label is mixed with ``lam``
    when the row's primary modality — its image, else its text — was mixed, else ``mix_lam`` = 1 and
    ``label_b`` = its own label. A batch is mixed once (a second mixing op raises); no row is its own
    partner (a caption is never doubled)."""

    section, name = "batch", "mixgen"
    moves_pixels = True
    PARAMS = {"lam": Param("float", 0.5, 0.0, 1.0, doc="weight of the sample's own image and label")}
    modalities = ("image", "text")

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        d = super().draw_batch(rng, batch)
        d["lam"] = [self.lam if r else 1.0 for r in d["rows"]]
        return d

    def combine(self, batch: Batch, params: dict[str, Any]) -> Batch:
        pair = _Pairing(batch, params)
        out = batch.replace()
        mixed: dict[str, torch.Tensor] = {}
        if "image" in batch:
            mixed["image"] = pair.both(batch, "image")
            if bool(mixed["image"].any()):
                _mix_sized(batch, out, "image", pair, mixed["image"])
        has: dict[str, torch.Tensor] = {}
        if "text" in batch:
            # an empty or whitespace-only caption is absent, as for the text ops: nothing to mix in or onto
            has["text"] = batch.present.get("text", torch.ones(pair.n, dtype=torch.bool)) & torch.tensor(
                [Tokenizer.has_words(t) for t in batch["text"]], dtype=torch.bool)
            mixed["text"] = pair.rows_h & has["text"] & has["text"][pair.perm_h]
            if bool(mixed["text"].any()):
                texts = batch["text"]
                perm = pair.perm_h.tolist()
                new = [f"{t} {texts[j]}" if r else t for t, j, r in zip(texts, perm, mixed["text"].tolist())]
                out = retokenize(out, new)
        _labels(batch, out, pair, mixed, self.modalities, has)
        return out
