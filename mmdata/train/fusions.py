"""Encoders and fusion modules of the reference trainer. See docs/fusions.md for what each name means.

Every fusion takes per-modality features ``feats[m]`` (B, d) — already zeroed where the modality is
absent — the presence masks ``present[m]`` (B,) bool, and the low-level inputs ``low[m]`` (for a fusion
with ``uses_low = True``, such as ``early``), and returns logits (B, C). Absent modalities never
contribute: pooling, attention, gates and logit averages run over the modalities present; a row with
nothing present yields the head's bias (never NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn

FUSIONS: dict[str, type[Fusion]] = {}
_F = TypeVar("_F", bound="type[Fusion]")


def _qualified(obj: object) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def register(name: str) -> Callable[[_F], _F]:
    """Class decorator: make a :class:`Fusion` subclass available as ``--fusion name`` / ``fusion=name``
    (docs/extending.md, "Your own fusion"). The same class defined again — same module, same qualified
    name: ``importlib.reload``, a notebook cell run twice — replaces the old one, as ops do; another class
    under a taken name is refused, naming both.

    Example:
        >>> from mmdata.train.fusions import Fusion
        >>> @register("concat")
        ... class MyConcat(Fusion):
        ...     pass
        Traceback (most recent call last):
        ...
        RuntimeError: fusion 'concat' registered twice: ...MyConcat (module ...) and mmdata.train.fusions.ConcatFusion ...
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"@register({name!r}): a fusion's name is a non-empty string, the one --fusion / fusion= "
                        "and trainer.fusion refer to it by")

    def deco(cls: _F) -> _F:
        if not (isinstance(cls, type) and issubclass(cls, Fusion)):
            raise TypeError(f"@register({name!r}): {_qualified(cls)} is not a subclass of mmdata.train.fusions.Fusion; "
                            "subclass Fusion (an nn.Module: __init__(mods, d, classes, low_dims), forward(feats, "
                            "present, low) -> logits (B, classes); docs/extending.md)")
        old = FUSIONS.get(name)
        if old is not None and old is not cls and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise RuntimeError(
                f"fusion {name!r} registered twice: {_qualified(cls)} (module {cls.__module__}) and {_qualified(old)} "
                f"(module {old.__module__}); pass another name to @register(...) on {cls.__qualname__} (names are "
                "unique: --fusion and trainer.fusion refer to fusions by name)")
        FUSIONS[name] = cls
        cls.fusion_name = name
        return cls

    return deco


def fusion_class(name: str) -> type[Fusion] | None:
    """The fusion class registered as ``name``, or None. A name not registered yet loads the installed
    plugins' entry points first (:func:`mmdata.plugins.entry_points_on_miss`, once per process), so a
    library caller gets a fusion an installed package provides without importing it.

    Example:
        >>> fusion_class("concat").__name__
        'ConcatFusion'
    """
    if name not in FUSIONS:
        from mmdata.plugins import entry_points_on_miss

        entry_points_on_miss()
    return FUSIONS.get(name)


def _stack_mask(present: dict[str, torch.Tensor], mods: Sequence[str]) -> torch.Tensor:
    return torch.stack([present[m] for m in mods], dim=1)  # (B, M) bool


def _head(d_in: int, classes: int, hidden: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, classes))


class Fusion(nn.Module):
    """Base class of a fusion: ``__init__(mods, d, classes, low_dims, **options)``, ``forward(feats, present,
    low)`` -> logits (B, classes). Register a subclass with :func:`register`; the contract is in
    docs/extending.md ("Your own fusion")."""

    fusion_name = ""
    #: keyword arguments the fusion accepts through ``FusionModel(fusion_args=...)`` / ``--fusion-arg``
    options: tuple[str, ...] = ()
    #: False: the model builds no encoders and ``feats`` is empty (the fusion reads ``low``)
    uses_encoders = True
    #: True: the model fills ``low[m]`` with the low-level inputs (flattened pixels, log-mel mean / std, a
    #: hashed bag of tokens), float32 (B, low_dims[m]); False: ``low`` is empty (nothing computed)
    uses_low = False

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
    uses_low = True

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


# -- hierarchical and two-tower fusions (configurable through FusionModel(fusion_args=...)) ------------

def parse_groups(spec: str, mods: Sequence[str], where: str) -> tuple:
    """Parse a fusion order such as ``"(image+audio)+text"`` into nested tuples of modality names.

    ``+`` joins the modalities (or parenthesised groups) fused at one level; every modality of the
    model appears exactly once.

    Example:
        >>> parse_groups("(image+audio)+text", ["image", "audio", "text"], "order")
        (('image', 'audio'), 'text')
    """
    from mmdata.errors import MMDataError

    toks = [t for t in "".join(f" {c} " if c in "()+" else c for c in spec).split()]
    pos = 0

    # an order that parses: every modality once, the first two grouped when there are more
    example = "+".join(mods) if len(mods) <= 2 else f"({mods[0]}+{mods[1]})+" + "+".join(mods[2:])

    def fail(msg: str) -> MMDataError:
        return MMDataError(f"{where} {spec!r}: {msg}; expected modality names joined by '+' with parentheses, "
                           f"e.g. '{example}'")

    def expr() -> object:
        nonlocal pos
        items = [term()]
        while pos < len(toks) and toks[pos] == "+":
            pos += 1
            items.append(term())
        return items[0] if len(items) == 1 else tuple(items)

    def term() -> object:
        nonlocal pos
        if pos >= len(toks):
            raise fail("ends early")
        t = toks[pos]
        pos += 1
        if t == "(":
            inner = expr()
            if pos >= len(toks) or toks[pos] != ")":
                raise fail("unbalanced parentheses")
            pos += 1
            return inner
        if t in "+)":
            raise fail(f"unexpected {t!r}")
        if t not in mods:
            raise fail(f"{t!r} is not one of the model's modalities {list(mods)}")
        return t

    tree = expr()
    if pos != len(toks):
        raise fail(f"unexpected {toks[pos]!r}")
    names: list[str] = []

    def leaves(node: object) -> None:
        if isinstance(node, tuple):
            for c in node:
                leaves(c)
        else:
            names.append(str(node))

    leaves(tree)
    dup = sorted({m for m in names if names.count(m) > 1})
    missing = [m for m in mods if m not in names]
    if dup or missing:
        raise fail(f"every modality exactly once (repeated: {dup}, missing: {missing})")
    return tree if isinstance(tree, tuple) else (tree,)


def _mask_mean(x: list[torch.Tensor], p: list[torch.Tensor]) -> torch.Tensor:
    m = torch.stack(p, 1).float()[..., None]  # (B, k, 1)
    return (torch.stack(x, 1) * m).sum(1) / m.sum(1).clamp(min=1)


@register("hierarchical")
class HierarchicalFusion(Fusion):
    """Fuse in a configurable order (``fusion_args={"order": "(image+audio)+text"}``; default: the first
    two modalities, then the rest). Each group is ``ReLU(W [x_1 p_1; ...; x_k p_k; p_1..p_k])``, its
    children's features (zero when absent) with their presence bits, and is present when any child
    is; the root goes to the MLP head."""

    options = ("order",)

    def __init__(self, mods, d, classes, low_dims, order: str | None = None):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        if order is None:
            order = "+".join(self.mods) if len(self.mods) < 3 else f"({self.mods[0]}+{self.mods[1]})+" + "+".join(self.mods[2:])
        self.order = order
        self.tree = parse_groups(order, self.mods, "fusion_args.order")
        # post-order plan: each step fuses modalities (names) and earlier steps (ints); the last is the root
        self.plan: list[tuple[str | int, ...]] = []

        def build(node: tuple) -> int:
            self.plan.append(tuple(build(c) if isinstance(c, tuple) else c for c in node))
            return len(self.plan) - 1

        build(self.tree)
        self.groups = nn.ModuleList([nn.Linear(len(step) * (d + 1), d) for step in self.plan])
        self.head = _head(d, classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        done: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer, step in zip(self.groups, self.plan):
            parts = [done[c] if isinstance(c, int) else (feats[c], present[c]) for c in step]
            pres = torch.stack([p for _, p in parts], 1)
            h = torch.relu(layer(torch.cat([*(x * p[:, None] for x, p in parts), pres.float()], 1)))
            any_ = pres.any(1)
            done.append((h * any_[:, None], any_))
        return self.head(done[-1][0])


INTERACTIONS = ("mlp", "dot", "bilinear")


@register("two_tower")
class TwoTowerFusion(Fusion):
    """Two towers and an interaction head (``fusion_args={"towers": "image|audio+text", "interaction":
    "mlp"}``; default towers: the first modality | the rest). A tower averages the projected features of
    its modalities present and runs an MLP -> u (or v); absent towers give zeros. Interactions:
    ``mlp`` — an MLP over [u, v, u*v, |u-v|] (InferSent / SBERT); ``dot`` — per-class dot products
    <U_c u, V_c v> in a 16-d space; ``bilinear`` — u^T W_c v. ``dot`` and ``bilinear`` add linear terms
    of u and v, so a sample with one tower missing still gets that tower's evidence."""

    options = ("towers", "interaction")
    k = 16

    def __init__(self, mods, d, classes, low_dims, towers: str | None = None, interaction: str = "mlp"):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        from mmdata.errors import MMDataError

        if len(self.mods) < 2:
            lacking = [m for m in ("image", "audio", "text") if m not in self.mods]
            others = sorted(n for n in FUSIONS if n != "two_tower")
            raise MMDataError(f"two_tower needs at least two modalities (one per tower), got {self.mods}: the run has no "
                              f"{' or '.join(lacking) or 'second modality'} (not in the training split, or left out by "
                              f"--modalities); on one modality every other fusion runs and reduces to encoder + head "
                              f"({', '.join(others)}; concat is the plain unimodal baseline)")
        if interaction not in INTERACTIONS:
            raise MMDataError(f"fusion_args.interaction {interaction!r}: choose one of {list(INTERACTIONS)}")
        towers = towers or f"{self.mods[0]}|" + "+".join(self.mods[1:])
        parts = towers.split("|")
        if len(parts) != 2:
            raise MMDataError(f"fusion_args.towers {towers!r}: expected two towers separated by '|', "
                              f"e.g. '{self.mods[0]}|{'+'.join(self.mods[1:])}'")
        self.towers = [[m.strip() for m in p.split("+")] for p in parts]
        names = [m for t in self.towers for m in t]
        if sorted(names) != sorted(self.mods):
            raise MMDataError(f"fusion_args.towers {towers!r}: every modality of {self.mods} exactly once")
        self.interaction = interaction
        self.proj = nn.ModuleDict({m: nn.Linear(d, d) for m in self.mods})
        self.tower = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d)) for _ in range(2)])
        if interaction == "mlp":
            self.head = _head(4 * d, classes)
        else:
            self.linear = nn.ModuleList([nn.Linear(d, classes), nn.Linear(d, classes, bias=False)])
            if interaction == "dot":
                self.u = nn.Linear(d, classes * self.k, bias=False)
                self.v = nn.Linear(d, classes * self.k, bias=False)
            else:
                self.bilinear = nn.Bilinear(d, d, classes, bias=False)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        out = []
        for net, mods in zip(self.tower, self.towers):
            x = _mask_mean([torch.relu(self.proj[m](feats[m])) for m in mods], [present[m] for m in mods])
            any_ = torch.stack([present[m] for m in mods], 1).any(1)
            out.append(net(x) * any_[:, None])
        u, v = out
        if self.interaction == "mlp":
            return self.head(torch.cat([u, v, u * v, (u - v).abs()], 1))
        lin = self.linear[0](u) + self.linear[1](v)
        if self.interaction == "dot":
            b = u.shape[0]
            return lin + (self.u(u).view(b, self.classes, self.k) * self.v(v).view(b, self.classes, self.k)).sum(-1)
        return lin + self.bilinear(u, v)
