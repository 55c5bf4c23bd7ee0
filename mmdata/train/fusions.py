"""Encoders and fusion modules of the reference trainer. See docs/fusions.md for what each name means.

Every fusion takes per-modality features ``feats[m]`` (B, d) — already zeroed where the modality is
absent — the presence masks ``present[m]`` (B,) bool, and the low-level inputs ``low[m]`` (for
``early``), and returns logits (B, C). Absent modalities never contribute: pooling, attention, gates
and logit averages run over the modalities present; a row with nothing present yields the head's bias
(never NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

FUSIONS: dict[str, type[Fusion]] = {}


def register(name: str):  # noqa: ANN201
    def deco(cls: type[Fusion]) -> type[Fusion]:
        if name in FUSIONS:
            raise RuntimeError(f"fusion {name!r} registered twice")
        FUSIONS[name] = cls
        cls.fusion_name = name
        return cls

    return deco


def _stack_mask(present: dict[str, torch.Tensor], mods: Sequence[str]) -> torch.Tensor:
    return torch.stack([present[m] for m in mods], dim=1)  # (B, M) bool


def _head(d_in: int, classes: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, classes))


class Fusion(nn.Module):
    fusion_name = ""

    def __init__(self, mods: Sequence[str], d: int, classes: int, low_dims: dict[str, int]) -> None:
        super().__init__()
        self.mods = list(mods)
        self.d = d
        self.classes = classes

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
                low: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


@register("early")
class EarlyFusion(Fusion):
    """Concatenate low-level inputs (pixels, mel statistics, hashed bag of tokens) into one MLP."""

    uses_encoders = False

    def __init__(self, mods: Sequence[str], d: int, classes: int, low_dims: dict[str, int]) -> None:
        super().__init__(mods, d, classes, low_dims)
        self.net = nn.Sequential(nn.Linear(sum(low_dims[m] for m in self.mods), 128), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(128, classes))

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return self.net(torch.cat([low[m] * present[m][:, None] for m in self.mods], dim=1))


@register("concat")
class ConcatFusion(Fusion):
    """Concatenate encoder features (zeros for absent modalities), then an MLP (MultiBench's "late fusion")."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.head = _head(d * len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return self.head(torch.cat([feats[m] for m in self.mods], dim=1))


@register("late")
class LateFusion(Fusion):
    """One classifier per modality; average the logits of the modalities present (MMF's LateFusion)."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.heads = nn.ModuleDict({m: _head(d, classes) for m in self.mods})
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods).float()  # (B, M)
        logits = torch.stack([self.heads[m](feats[m]) for m in self.mods], dim=1)  # (B, M, C)
        return (logits * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1) + self.bias


class _Projected(Fusion):
    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, d) for m in self.mods})
        self.head = _head(d, classes)

    def tokens(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([torch.relu(self.proj[m](feats[m])) for m in self.mods], dim=1)  # (B, M, d)


@register("mean")
class MeanFusion(_Projected):
    """Project each modality to d, average over the modalities present."""

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods).float()[..., None]
        return self.head((self.tokens(feats) * mask).sum(1) / mask.sum(1).clamp(min=1))


@register("max")
class MaxFusion(_Projected):
    """Project each modality to d, element-wise max over the modalities present (0 when none)."""

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods)[..., None]
        t = self.tokens(feats).masked_fill(~mask, float("-inf")).max(1).values
        return self.head(torch.where(torch.isfinite(t), t, torch.zeros_like(t)))


@register("gated")
class GatedFusion(Fusion):
    """Gated multimodal unit (Arevalo et al.): h = sum_m z_m * tanh(W_m x_m), gates z = softmax over the
    modalities present of W_z [x_1; ...; x_M]."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.h = nn.ModuleDict({m: nn.Linear(d, d) for m in self.mods})
        self.gate = nn.Linear(d * len(self.mods), len(self.mods))
        self.head = _head(d, classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods)
        z = self.gate(torch.cat([feats[m] for m in self.mods], 1)).masked_fill(~mask, float("-inf"))
        z = torch.nan_to_num(torch.softmax(z, dim=1), nan=0.0)
        h = torch.stack([torch.tanh(self.h[m](feats[m])) for m in self.mods], 1)
        return self.head((z[..., None] * h).sum(1))


@register("attention")
class AttentionFusion(_Projected):
    """Learned modality weights: score_m = v . tanh(W h_m), softmax over the modalities present."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.score = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods)
        t = self.tokens(feats)
        w = self.score(t).squeeze(-1).masked_fill(~mask, float("-inf"))
        w = torch.nan_to_num(torch.softmax(w, 1), nan=0.0)
        return self.head((w[..., None] * t).sum(1))


@register("cross_attention")
class CrossAttentionFusion(_Projected):
    """A transformer layer over modality tokens (+ modality embeddings); absent modalities are masked
    out of attention (key padding); the present tokens are mean-pooled."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.embed = nn.Parameter(torch.randn(len(self.mods), d) * 0.02)
        self.layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=2 * d, dropout=0.1, batch_first=True)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        mask = _stack_mask(present, self.mods)
        none = ~mask.any(1)
        pad = ~mask & ~none[:, None]  # rows with nothing present attend over zeros (output ignored below)
        t = self.layer(self.tokens(feats) + self.embed, src_key_padding_mask=pad)
        m = mask.float()[..., None]
        return self.head((t * m).sum(1) / m.sum(1).clamp(min=1))


@register("tensor")
class TensorFusion(Fusion):
    """Tensor fusion (Zadeh et al.): outer product of [1; z_m] over modalities, then an MLP. z_m is a
    small projection (8-d) so the product stays tractable (9^M features)."""

    k = 8

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, self.k) for m in self.mods})
        self.head = _head((self.k + 1) ** len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        out = None
        for m in self.mods:
            z = torch.relu(self.proj[m](feats[m])) * present[m][:, None]
            z1 = torch.cat([torch.ones_like(z[:, :1]), z], 1)
            out = z1 if out is None else (out[:, :, None] * z1[:, None, :]).flatten(1)
        return self.head(out)


@register("low_rank")
class LowRankFusion(Fusion):
    """Low-rank multimodal fusion (Liu et al. 2018): prod_m ([1; x_m] W_m) with rank-r factors, every
    factor a registered parameter (MultiBench keeps them in a plain list, so they never train)."""

    rank = 4

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        h = 64
        self.factors = nn.ParameterList([nn.Parameter(torch.randn(self.rank, d + 1, h) * (1.0 / (d + 1) ** 0.5))
                                         for _ in self.mods])
        self.rank_weights = nn.Parameter(torch.full((1, self.rank), 1.0 / self.rank))
        self.bias = nn.Parameter(torch.zeros(h))
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(h, classes))

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        fused = None
        for m, w in zip(self.mods, self.factors):
            x1 = torch.cat([torch.ones_like(feats[m][:, :1]), feats[m]], 1)  # (B, d+1)
            f = torch.einsum("bd,rdh->brh", x1, w)
            fused = f if fused is None else fused * f
        z = torch.einsum("or,brh->bh", self.rank_weights, fused) + self.bias
        return self.out(z)


class ImageEncoder(nn.Module):
    """Small CNN for greyscale/RGB images -> d that scales with the input: two conv blocks for 16x16,
    one more (conv + 2x2 max-pool) per doubling of the shorter side (at most three more), then adaptive
    average pooling to 4x4, so any size reaches the same head and larger inputs get a receptive field to
    match.

    Example:
        >>> enc = ImageEncoder(8, channels=3, size=(64, 64))
        >>> tuple(enc(torch.zeros(2, 3, 64, 64)).shape), tuple(enc(torch.zeros(2, 3, 40, 50)).shape)
        ((2, 8), (2, 8))
    """

    def __init__(self, d: int, channels: int = 1, size: tuple[int, int] = (16, 16)) -> None:
        super().__init__()
        extra = min(3, max(0, round(math.log2(max(1, min(size)) / 16))))
        blocks: list[nn.Module] = [nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)]
        for _ in range(extra):
            blocks += [nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)]
        blocks += [nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                   nn.Flatten(), nn.Linear(32 * 16, d), nn.ReLU()]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AudioEncoder(nn.Module):
    """Log-mel (computed in the model) -> small strided 2-D CNN -> d."""

    def __init__(self, d: int, n_mels: int = 24) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.norm = nn.BatchNorm2d(1)
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 4)),
            nn.Flatten(), nn.Linear(32 * 8, d), nn.ReLU())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(mel[:, None]))


class TextEncoder(nn.Module):
    """Token embedding, masked mean over tokens -> d."""

    def __init__(self, d: int, vocab: int = 4096, e: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, e, padding_idx=0)
        self.proj = nn.Sequential(nn.Linear(e, d), nn.ReLU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        m = (tokens != 0).float()[..., None]
        return self.proj((self.emb(tokens) * m).sum(1) / m.sum(1).clamp(min=1))
