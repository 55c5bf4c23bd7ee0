"""Evaluation: accuracy, macro-F1, NLL, ECE; accuracy with each modality removed; corruption sweeps
per modality with the normalised area under the accuracy-corruption curve.

Corruptions (seeded, deterministic; each level corrupts *every* test sample — unlike MultiBench's
``add_audio_noise``, which leaves unselected samples all-zero):

* image: Gaussian pixel noise, std = level * 0.5 * 255;
* audio: white noise with std = level * 2 * the clip's RMS (SNR falls as the level rises);
* text: each token dropped (set to padding) with probability = level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmdata.types import Batch

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def scores(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> dict[str, float]:
    """accuracy, macro_f1, nll, ece (15 equal-width confidence bins)."""
    from sklearn.metrics import f1_score

    probs = torch.softmax(logits.double(), 1)
    pred = probs.argmax(1)
    acc = float((pred == labels).double().mean())
    nll = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), labels))
    conf = probs.max(1).values
    ece = 0.0
    edges = torch.linspace(0, 1, 16, dtype=torch.float64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += float(m.double().mean() * ((pred[m] == labels[m]).double().mean() - conf[m].mean()).abs())
    f1 = float(f1_score(labels.numpy(), pred.numpy(), average="macro", labels=list(range(classes)), zero_division=0))
    return {"accuracy": acc, "macro_f1": f1, "nll": nll, "ece": ece}


@torch.no_grad()
def predict(model: torch.nn.Module, batch: Batch, chunk: int = 512, drop: Sequence[str] = ()) -> torch.Tensor:
    model.eval()
    from mmdata.train.loop import take

    outs = [model(take(batch, range(i, min(i + chunk, len(batch)))), drop=drop).cpu() for i in range(0, len(batch), chunk)]
    return torch.cat(outs)


def corrupt(batch: Batch, modality: str, level: float, seed: int) -> Batch:
    """A copy of ``batch`` with ``modality`` corrupted at ``level`` (see module docstring)."""
    if level == 0 or modality not in batch.present:
        return batch
    g = torch.Generator().manual_seed(seed)
    if modality == "image":
        x = batch["image"].float()
        x = x + torch.randn(x.shape, generator=g) * (level * 0.5 * 255)
        return batch.replace(image=x.round().clamp(0, 255).to(torch.uint8))
    if modality == "audio":
        x = batch["audio"]
        rms = x.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
        return batch.replace(audio=x + torch.randn(x.shape, generator=g) * rms * (2 * level))
    if modality == "text":
        tok = batch["tokens"]
        keep = torch.rand(tok.shape, generator=g) >= level
        return batch.replace(tokens=tok * keep)
    return batch


def auc(levels: Sequence[float], accs: Sequence[float]) -> float:
    """Trapezoid area under accuracy vs level, normalised by the level range (so in [0, 1])."""
    x = np.asarray(levels, dtype=float)
    y = np.asarray(accs, dtype=float)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


def robustness(model: torch.nn.Module, batch: Batch, modalities: Sequence[str], classes: int, seed: int = 0) -> dict[str, Any]:
    labels = batch["label"]
    out: dict[str, Any] = {"missing": {}, "corruption": {}}
    if len(modalities) > 1:
        for m in modalities:
            out["missing"][m] = scores(predict(model, batch, drop=[m]), labels, classes)["accuracy"]
    for m in modalities:
        accs = [scores(predict(model, corrupt(batch, m, lv, seed + i)), labels, classes)["accuracy"] for i, lv in enumerate(LEVELS)]
        out["corruption"][m] = {"levels": list(LEVELS), "accuracy": accs, "auc": auc(LEVELS, accs)}
    return out
