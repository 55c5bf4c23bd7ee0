"""Batch-level mixing (recipe section ``batch:``): run after collate, on any device.

Both write the mixed target as ``batch["label_b"]`` (the partner's label) and ``batch["mix_lam"]``
(B,) float: the training target is ``lam * onehot(label) + (1 - lam) * onehot(label_b)``. Params
(partner permutation, lambda, which rows mix) are drawn per batch on the CPU from
``derive(seed, epoch, "batch:" + hash of the batch's keys, op index)``.

* ``mixup`` (Zhang et al. 2018): images and audio mixed with ``lam ~ Beta(alpha, alpha)``.
* ``mixgen`` (Hao et al. 2022): images mixed with a fixed ``lam``, texts concatenated
  ("text_i text_j"), labels mixed with ``lam``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmdata.augment.base import Op, Param
from mmdata.augment.batching import on, retokenize
from mmdata.types import Batch


class BatchOp(Op):
    """A batch-section op: ``draw_batch`` makes one params dict for the whole batch, ``mix`` applies it."""

    section = ""

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        n = len(batch)
        rows = (rng.random(n) < self.p).tolist()
        return {"perm": [int(i) for i in rng.permutation(n)], "rows": [bool(r) for r in rows]}

    def transform(self, sample: Any, params: dict[str, Any]) -> Any:  # pragma: no cover - batch-only
        raise TypeError(f"{self.name} mixes samples and runs only on batches (recipe section 'batch')")

    def mix(self, batch: Batch, params: dict[str, Any]) -> Batch:
        raise NotImplementedError


def _mix(x: torch.Tensor, perm: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (x.dim() - 1)
    y = x.float() * lam.reshape(shape) + x[perm].float() * (1 - lam.reshape(shape))
    return y.round_().clamp_(0, 255).to(x.dtype) if x.dtype == torch.uint8 else y.to(x.dtype)


def _labels(batch: Batch, out: Batch, perm: torch.Tensor, lam: torch.Tensor) -> None:
    if "label" in batch:
        lab = batch["label"]
        prev_lam = batch["mix_lam"] if "mix_lam" in batch else None
        if prev_lam is not None:  # a second mixing op: keep the first pairing, fold lambdas conservatively
            lam = lam * prev_lam
        out.data["label_b"] = lab[perm.to(lab.device)]
        out.data["mix_lam"] = lam.to(lab.device)


class MixUp(BatchOp):
    """Mix images and audio of row i with row perm[i] using lam ~ Beta(alpha, alpha) (per row)."""

    section, name = "batch", "mixup"
    PARAMS = {"alpha": Param("float", 0.2, 1e-3, 100.0, doc="Beta(alpha, alpha) concentration of the mixing weight")}

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        d = super().draw_batch(rng, batch)
        lam = rng.beta(self.alpha, self.alpha, size=len(batch))
        d["lam"] = [float(max(v, 1 - v)) if r else 1.0 for v, r in zip(lam, d["rows"])]
        return d

    def mix(self, batch: Batch, params: dict[str, Any]) -> Batch:
        dev = batch.device
        perm = on(torch.tensor(params["perm"], dtype=torch.int64), dev)
        lam = on(torch.tensor(params["lam"], dtype=torch.float32), dev)
        out = batch.replace()
        for m in ("image", "audio"):
            if m in batch:
                out.data[m] = _mix(batch[m], perm, lam)
        _labels(batch, out, perm, lam)
        return out


class MixGen(BatchOp):
    """MixGen: image_i = lam*image_i + (1-lam)*image_perm[i]; text_i = text_i + " " + text_perm[i]."""

    section, name = "batch", "mixgen"
    PARAMS = {"lam": Param("float", 0.5, 0.0, 1.0, doc="weight of the sample's own image and label")}

    def draw_batch(self, rng: np.random.Generator, batch: Batch) -> dict[str, Any]:
        d = super().draw_batch(rng, batch)
        d["lam"] = [self.lam if r else 1.0 for r in d["rows"]]
        return d

    def mix(self, batch: Batch, params: dict[str, Any]) -> Batch:
        dev = batch.device
        perm = on(torch.tensor(params["perm"], dtype=torch.int64), dev)
        lam = on(torch.tensor(params["lam"], dtype=torch.float32), dev)
        out = batch.replace()
        if "image" in batch:
            out.data["image"] = _mix(batch["image"], perm, lam)
        if "text" in batch:
            texts = batch["text"]
            new = [f"{t} {texts[j]}".strip() if r else t for t, j, r in zip(texts, params["perm"], params["rows"])]
            out = retokenize(out, new)
        _labels(batch, out, perm, lam)
        return out
