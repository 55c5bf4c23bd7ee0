"""Contrastive two-tower pre-training of the trainer's encoders (CLIP / ImageBind style).

Each modality's encoder gets a projection head (``Linear -> ReLU -> Linear`` to ``dim``, SimCLR's
MLP head) and its outputs are L2-normalised into one shared space. For every pair of modalities the
loss is the symmetric InfoNCE of CLIP: with ``s = exp(logit_scale)`` (learnable, initialised to
``1 / 0.07`` and clamped to at most 100 after every step, as in CLIP / open_clip),

    L_ab = ( CE(s * Z_a Z_b^T, diag) + CE(s * Z_b Z_a^T, diag) ) / 2

over the rows of the batch where *both* modalities are present (presence masks); a pair with fewer
than two such rows is skipped. The loss is the mean over the pairs present. Data without paired
samples (every sample holds one modality), or batches that never hold two of them, are an error,
not a loss of 0. With
``exclude_same_class=True`` the off-diagonal candidates whose (known) label equals the row's label are
removed from the denominator — on label-paired data such as avdigits they are not negatives at all.
The label is the card's class, or with a single-label metadata target (``mmdata train --target KEY``:
one label name per sample, or true / false) the sample's value of that key. Labels are never used
otherwise; under ``label_fraction`` only the labels of the labelled subset are known to this option.

Pre-training trains the fusion model's encoders *in place*; fine-tuning (any fusion) or a linear
probe (:func:`make_probe`) follows in :func:`mmdata.train.train`. Retrieval on the test split
(:func:`retrieval`: R@1, R@5, median rank per direction and pair, instance- and class-level) goes to
``metrics.json["retrieval"]``; the encoders and heads as they were at the end of pre-training go to
``contrastive.pt`` (``mmdata match`` and ``mmdata audit-alignment`` load it with :func:`load`).

Example:
    >>> import tempfile
    >>> from mmdata.datasets.avdigits import build
    >>> from mmdata.train.model import FusionModel
    >>> data = build(tempfile.mkdtemp() + "/av", limit=4, progress=False)
    >>> model = FusionModel(["image", "audio", "text"], "concat", classes=10)
    >>> pre = pretrain_encoders(model, data, epochs=1, seed=0)
    >>> sorted(pre.retrieval)
    ['audio-text', 'image-audio', 'image-text']
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdata.errors import MMDataError
from mmdata.shards.index import UNLABELLED_GROUP
from mmdata.train.config import ON_ERROR
from mmdata.train.fusions import Fusion
from mmdata.train.loop import keeps_caller_rng
from mmdata.train.model import FusionModel, encode_present, float32_default, host_present
from mmdata.types import Batch

FORMAT = "mmdata.contrastive/1"
CHECKPOINT = "contrastive.pt"
MAX_SCALE = 100.0  # CLIP's clamp on the logit scale (temperature >= 0.01)
TIES = 1e-6  # scores within this of the match's score count as ties, resolved in the query's favour


def pair_names(mods: Sequence[str]) -> list[tuple[str, str]]:
    """The modality pairs in model order: ``[("image", "audio"), ("image", "text"), ("audio", "text")]``."""
    return list(itertools.combinations(mods, 2))


def pair_key(a: str, b: str) -> str:
    return f"{a}-{b}"


class ContrastiveModel(nn.Module):
    """Projection heads + a learnable temperature on top of a :class:`FusionModel`'s encoders.

    The encoders are *shared* with ``backbone`` (training this model trains them); inputs are prepared
    by ``backbone.inputs`` so the pixels, log-mels and tokens are exactly what the fusion model sees.

    Args:
        backbone: the fusion model whose encoders are pre-trained (needs >= 2 modalities with encoders).
        dim: size of the shared embedding space.
        temperature: initial temperature (logit scale ``1 / temperature``).

    Example:
        >>> m = ContrastiveModel(FusionModel(["image", "text"], "concat", classes=3))
        >>> sorted(m.heads), round(m.logit_scale.exp().item(), 2)
        (['image', 'text'], 14.29)
    """

    def __init__(self, backbone: FusionModel, dim: int = 32, temperature: float = 0.07) -> None:
        super().__init__()
        mods = [m for m in backbone.mods if m in backbone.encoders]
        if len(mods) < 2:
            raise MMDataError(f"contrastive pre-training needs encoders for at least two modalities; fusion "
                              f"{backbone.fusion_name!r} on {backbone.mods} has {mods or 'none'}")
        if not 0 < temperature <= 1:
            raise MMDataError(f"temperature must be in (0, 1], got {temperature}")
        d = backbone.fusion.d
        self.mods = mods
        self.dim = dim
        self.encoders = backbone.encoders
        with float32_default():  # as FusionModel: a notebook's set_default_dtype(float64) made float64 heads
            self.heads = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, dim)) for m in mods})
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self._inputs = backbone.inputs  # a bound method, not a submodule: the fusion head is not part of this model

    def embed(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Unit-norm embeddings ``(B, dim)`` per modality and presence masks ``(B,)`` on the model's device."""
        x, pres = self._inputs(batch)
        d = self.heads[self.mods[0]][0].in_features
        host = host_present(batch, self.mods)
        # each encoder sees only the rows holding its modality (encode_present): an absent row's zeros
        # would enter BatchNorm's batch statistics and move the present rows' embeddings
        z = {m: F.normalize(self.heads[m](encode_present(self.encoders[m], x[m], host[m], d)), dim=-1) for m in self.mods}
        return z, pres

    def forward(self, batch: Batch, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The pre-training loss of a batch (see :meth:`loss`); a forward() so DDP can wrap the model."""
        z, pres = self.embed(batch)
        return self.loss(z, pres, labels)

    def clamp_(self) -> None:
        """Keep the logit scale in [0, ln 100] (call after each optimiser step, as CLIP does)."""
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, math.log(MAX_SCALE))

    def loss(self, z: dict[str, torch.Tensor], present: dict[str, torch.Tensor],
             labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean symmetric InfoNCE over modality pairs (rows with both present); ``labels`` (-1 = unknown)
        removes same-class candidates from the denominators. Returns (loss, per-pair losses)."""
        scale = self.logit_scale.exp()
        losses: list[torch.Tensor] = []
        per: dict[str, float] = {}
        for a, b in pair_names(self.mods):
            rows = present[a] & present[b]
            n = int(rows.sum())
            if n < 2:
                continue
            logits = scale * z[a][rows] @ z[b][rows].T
            if labels is not None:
                logits = logits.masked_fill(same_class(labels[rows]), float("-inf"))
            target = torch.arange(n, device=logits.device)
            pair = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            losses.append(pair)
            per[pair_key(a, b)] = float(pair.detach())
        if not losses:
            return self.logit_scale * 0.0, per  # keeps the graph (and DDP) happy on a batch without pairs
        return torch.stack(losses).mean(), per


def same_class(labels: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` bool: the candidates ``j != i`` of row ``i``'s class, where that class is known (``labels
    >= 0``) — what ``exclude_same_class`` removes from the InfoNCE denominators.

    Example:
        >>> same_class(torch.tensor([0, 0, 1, -1, -1])).sum().item()
        2
    """
    same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    return same.fill_diagonal_(False)


class LinearProbe(Fusion):
    """Linear evaluation: one linear layer over the concatenated (frozen) encoder features."""

    def __init__(self, mods: Sequence[str], d: int, classes: int) -> None:
        super().__init__(mods, d, classes, {})
        self.linear = nn.Linear(d * len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return self.linear(torch.cat([feats[m] for m in self.mods], dim=1))


def _eval_mode(module: nn.Module, args: Any) -> None:
    module.eval()  # a frozen encoder keeps its BatchNorm statistics even when the loop calls .train()


def make_probe(model: FusionModel) -> FusionModel:
    """Turn ``model`` into a linear probe in place: encoders frozen (weights and BatchNorm statistics),
    the fusion replaced by one linear layer over the concatenated features (SimCLR / CLIP linear
    evaluation). Returns the model.

    Example:
        >>> m = make_probe(FusionModel(["image", "text"], "concat", classes=3))
        >>> [n for n, p in m.named_parameters() if p.requires_grad]
        ['fusion.linear.weight', 'fusion.linear.bias']
    """
    if not len(model.encoders):
        raise MMDataError(f"--probe (probe=) needs encoders; fusion {model.fusion_name!r} has none")
    for enc in model.encoders.values():
        enc.requires_grad_(False)
        enc.register_forward_pre_hook(_eval_mode)
    model.fusion = LinearProbe(model.mods, model.fusion.d, model.fusion.classes).to(next(model.parameters()).device)
    model.fusion_name = "linear_probe"
    return model


def labelled_balance(recipe: Any, label_fraction: float) -> dict[str, Any] | None:
    """The loader ``balance`` config that keeps labels for ``label_fraction`` of the training samples.

    The subset is the loader's ``fraction``: each sample kept with probability F, drawn per sample key
    from the run seed (the same every epoch) — a draw per sample, not stratified by class, so at a small
    F a small class can keep no labels (the trainer warns, :func:`classes_without_labels`). Merged with
    the recipe's own balance section. Returns None for F = 1 (the recipe's balance applies unchanged).

    Example:
        >>> labelled_balance(None, 0.1)
        {'by': 'label', 'mode': 'none', 'fraction': 0.1}
    """
    import mmdata

    if not 0 < label_fraction <= 1:
        raise MMDataError(f"--label-fraction (label_fraction=) must be in (0, 1], got {label_fraction}")
    if label_fraction >= 1:
        return None
    base = dict(mmdata.load_recipe(recipe).balance or {"by": "label", "mode": "none"})
    if base.get("fraction") is not None:
        raise MMDataError(f"--label-fraction (label_fraction=) {label_fraction} conflicts with the recipe's balance.fraction "
                          f"{base['fraction']}; give one of them")
    if base.get("by") != "label":
        raise MMDataError("--label-fraction (label_fraction=) subsamples by class; the recipe's balance section groups by "
                          f"{base.get('by')!r}")
    return {**base, "fraction": float(label_fraction)}


def kept_keys(data: str | Path, balance: dict[str, Any] | None, seed: int,
              split: str | Sequence[str] = "train") -> dict[str, str] | None:
    """Training keys the loader keeps under ``balance``'s fraction (the per-key draw that drops the others
    from every epoch), each with its label group (``"(none)"``: no class label); None: all of them.
    ``split``: what the training loader reads (a list: folds read as one)."""
    if balance is None or balance.get("fraction") is None:
        return None
    from mmdata.augment.balance import BalancePlan, index_groups

    plan = BalancePlan(index_groups(data, split, "label"), {**balance, "mode": "none"}, seed)
    return {k: g for k, g in plan.groups.items() if plan.repeats(k, 0) > 0}


def classes_without_labels(data: str | Path, balance: dict[str, Any] | None, seed: int,
                           split: str | Sequence[str] = "train") -> list[int]:
    """Class ids that have training samples but none whose label ``balance``'s fraction keeps (the
    per-sample draw of ``--label-fraction`` is not stratified): sorted; empty without a fraction."""
    kept = kept_keys(data, balance, seed, split)
    if kept is None:
        return []
    from mmdata.augment.balance import index_groups

    present = set(index_groups(data, split, "label").values()) - {UNLABELLED_GROUP}
    return sorted(int(g) for g in present - set(kept.values()))


def labelled_keys(data: str | Path, balance: dict[str, Any] | None, seed: int,
                  split: str | Sequence[str] = "train") -> set[str] | None:
    """Training keys whose label the run may use under ``balance`` (None: all of them)."""
    kept = kept_keys(data, balance, seed, split)
    return None if kept is None else {k for k, g in kept.items() if g != UNLABELLED_GROUP}


def split_batch(data: str | Path, split: str | Sequence[str], modalities: Sequence[str],
                normalize: dict[str, list[dict[str, Any]]] | None = None, on_error: str = "raise") -> Batch:
    """A whole split as one collated batch (with labels when the dataset has them), each sample put
    through ``normalize`` (a recipe's ``normalize:`` section: the trainer's input format) first.
    ``on_error``: as :func:`read_split` (whose skipped counts this drops)."""
    return read_split(data, split, modalities, normalize, on_error)[0]


def read_split(data: str | Path, split: str | Sequence[str], modalities: Sequence[str],
               normalize: dict[str, list[dict[str, Any]]] | None = None,
               on_error: str = "raise") -> tuple[Batch, dict[str, int]]:
    """:func:`split_batch` and what the reader left out: ``(batch, skipped)``, ``skipped`` being reason ->
    samples. ``on_error``: ``"raise"`` (a sample that does not decode — a float WAV holding NaN — stops
    the read, naming its shard and key) or ``"skip"`` (it is left out and counted).

    Example:
        >>> batch, skipped = read_split("data/avdigits", "test", ["image", "audio"], on_error="skip")  # doctest: +SKIP
        >>> skipped  # doctest: +SKIP
        {'corrupt audio': 1}
    """
    import mmdata

    if on_error not in ON_ERROR:
        raise MMDataError(f"--on-error (on_error=) must be one of {list(ON_ERROR)}, got {on_error!r}")
    norm = mmdata.load_recipe({"normalize": normalize}) if normalize else None
    ds = mmdata.open_dataset(data, split=split, modalities=[*modalities, "label"], partition=False, on_error=on_error)
    samples = [norm.normalize(s) if norm else s for s in ds]
    skipped = dict(sorted(ds.skipped.items())) if on_error != "raise" else {}
    if not samples:
        left = f" ({sum(skipped.values())} skipped: {', '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else ""
        raise MMDataError(f"{data}: split {split!r} is empty{left}")
    return mmdata.collate(samples), skipped


def model_format(normalize: Mapping[str, list[dict[str, Any]]] | None, modalities: Sequence[str],
                 image_channels: int | None) -> dict[str, list[dict[str, Any]]]:
    """``normalize`` (the stage a model was trained with) completed with the channel steps its encoders
    imply: ``to_rgb`` (3) or ``to_gray`` (1) first in ``image`` and ``to_mono`` first in ``audio``, unless
    the stage has one. The trainer records only the steps its training data needed — all-RGB training
    images record no ``to_rgb`` — so data measured with the model (``mmdata match``, ``audit-alignment``)
    holding a greyscale image would not collate, or would not fit the encoder.

    Example:
        >>> model_format({"text": [{"op": "max_tokens", "n": 12}]}, ["image", "text"], 3)["image"]
        [{'op': 'to_rgb'}]
    """
    out = {m: list(steps) for m, steps in (normalize or {}).items()}
    wanted = {"image": {3: "to_rgb", 1: "to_gray"}.get(int(image_channels or 0)), "audio": "to_mono"}
    kin = {"image": ("to_rgb", "to_gray"), "audio": ("to_mono",)}
    for m, op in wanted.items():
        if m in modalities and op and not any(step.get("op") in kin[m] for step in out.get(m, [])):
            out[m] = [{"op": op}, *out.get(m, [])]
    return out


def skip_warning(split: str, counts: Mapping[str, int], data: str | Path, what: str) -> str | None:
    """The warning for the samples of ``split`` a read with ``on_error="skip"`` left out of ``what``
    (None when none was): one wording for the supervised trainer's splits (:func:`mmdata.train.loop.finish`),
    pre-training and its retrieval evaluation.

    Example:
        >>> skip_warning("test", {"corrupt audio": 1}, "d", "the retrieval evaluation")[:48]
        '1 sample(s) of the test split were skipped (corr'
    """
    if not counts or not sum(counts.values()):
        return None
    return (f"{sum(counts.values())} sample(s) of the {split} split were skipped ("
            + ", ".join(f"{why}: {n}" for why, n in counts.items()) + f"), left out of {what} (on_error='skip'); "
            f"`mmdata verify {data} --deep` names them")


@torch.no_grad()
def embed_all(model: ContrastiveModel, batch: Batch, chunk: int = 512) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Embeddings and presence of every row of ``batch`` (eval mode, chunked), on the CPU."""
    was = model.training
    model.eval()
    zs: dict[str, list[torch.Tensor]] = {m: [] for m in model.mods}
    ps: dict[str, list[torch.Tensor]] = {m: [] for m in model.mods}
    for lo in range(0, len(batch), chunk):
        z, p = model.embed(batch.select(range(lo, min(lo + chunk, len(batch)))))
        for m in model.mods:
            zs[m].append(z[m].cpu())
            ps[m].append(p[m].cpu())
    model.train(was)
    return {m: torch.cat(v) for m, v in zs.items()}, {m: torch.cat(v) for m, v in ps.items()}


def _rank_parts(sim: torch.Tensor, match: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per query: candidates scored strictly above the best match (g), candidates tied with it (e,
    itself included) and matches among the tied (s)."""
    if match is None:
        match = torch.eye(sim.shape[0], sim.shape[1], dtype=torch.bool)
    target = sim.masked_fill(~match, float("-inf")).max(1).values[:, None]
    above = sim > target + TIES
    tied = ~above & (sim >= target - TIES)
    return above.sum(1).double(), tied.sum(1).double(), (tied & match).sum(1).double()


def ranks(sim: torch.Tensor, match: torch.Tensor | None = None) -> torch.Tensor:
    """Expected rank (1 = best) of each query's first match among the candidates.

    ``sim[i, j]``: score of candidate j for query i. ``match[i, j]``: whether candidate j is a right
    answer for query i (default: the diagonal, j == i; :func:`class_match` for class level). Ties
    are broken at random and the rank is its expectation (``g + (e + 1) / (s + 1)`` for ``g``
    candidates above, ``e`` tied of which ``s`` match), so a collapsed embedding scores chance, not
    perfect.

    Example:
        >>> ranks(torch.tensor([[0.9, 0.1], [0.8, 0.2]])).tolist()
        [1.0, 2.0]
        >>> ranks(torch.tensor([[0.5, 0.5], [0.5, 0.5]])).tolist()
        [1.5, 1.5]
    """
    g, e, s = _rank_parts(sim, match)
    return g + (e + 1) / (s + 1)


def recall_at(sim: torch.Tensor, k: int, match: torch.Tensor | None = None) -> torch.Tensor:
    """Per query, the probability that a match is among the top ``k`` (random tie-breaking)."""
    g, e, s = _rank_parts(sim, match)
    j = torch.minimum((k - g).clamp(min=0), e)
    # P(no match in the first j of the e tied) = C(e - s, j) / C(e, j), hypergeometric
    miss = torch.where(j > e - s, torch.zeros_like(j),
                       torch.exp(_lchoose(e - s, j.clamp(max=(e - s).clamp(min=0))) - _lchoose(e, j)))
    return 1 - miss


def class_match(labels: torch.Tensor) -> torch.Tensor:
    """``match`` for class-level retrieval: candidates of the query's class are right answers."""
    return labels[:, None] == labels[None, :]


def identical(batch: Batch, mods: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per modality, an (N, N) bool matrix of rows with identical content (pixels, samples, token ids).

    Retrieval counts an identical copy of the partner as the partner: avdigits repeats its clue
    captions, and no embedding can tell two copies of one caption apart.
    """
    import hashlib

    field = {"image": "image", "audio": "audio", "text": "tokens"}
    out: dict[str, torch.Tensor] = {}
    for m in mods:
        if field[m] not in batch:
            out[m] = torch.eye(len(batch), dtype=torch.bool)
            continue
        x = batch[field[m]].detach().cpu()
        shapes = batch.valid_shapes(field[m]).tolist()  # padding is not content
        digests = [hashlib.blake2b(repr(sh).encode() + x[(i, *(slice(0, n) for n in sh))].contiguous().numpy().tobytes(),
                                   digest_size=16).digest() for i, sh in enumerate(shapes)]
        ids = {d: i for i, d in enumerate(dict.fromkeys(digests))}
        code = torch.tensor([ids[d] for d in digests])
        out[m] = code[:, None] == code[None, :]
    return out


def _lchoose(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)


def recall_stats(sim: torch.Tensor, match: torch.Tensor | None = None) -> dict[str, float]:
    """R@1, R@5 (fractions of queries) and the median rank of a query-by-candidate score matrix."""
    return {"R@1": float(recall_at(sim, 1, match).mean()), "R@5": float(recall_at(sim, 5, match).mean()),
            "median_rank": float(ranks(sim, match).quantile(0.5))}


def unique_rows(same: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group rows of identical content: ``(item of each row (n,), representative row of each item (U,))``,
    items numbered in the order of their first row. ``same``: an (n, n) bool matrix from :func:`identical`
    (None: every row its own item).

    Example:
        >>> same = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.bool)
        >>> [t.tolist() for t in unique_rows(same, 3)]
        [[0, 1, 0], [0, 1]]
    """
    if same is None:
        return torch.arange(n), torch.arange(n)
    first = same.to(torch.uint8).argmax(1)  # each row's first identical row (itself when it comes first)
    reps, item = torch.unique(first, sorted=True, return_inverse=True)
    return item, reps


def retrieval(z: dict[str, torch.Tensor], present: dict[str, torch.Tensor], labels: torch.Tensor | None = None,
              mods: Sequence[str] | None = None, same: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Cross-modal retrieval per pair and direction over the rows where both modalities are present.

    Instance level counts **unique items**, the COCO / Flickr30k protocol: rows of identical content
    (``same`` from :func:`identical`: an image under 5 caption rows, a caption repeated under several
    images) are one item, so each unique item is one query and appears once in the gallery, and a query
    is a hit when any item it is paired with in some row is among the top k (image->text: any of the
    image's captions; text->image: any image the caption describes). Counting rows instead lets one
    image's 5 copies fill ranks 1-5 of a text query. ``unique`` gives the items per modality (without
    ``same`` every row is its own item). With ``labels``, class level (any candidate of the query's
    class counts: on label-paired data such as avdigits the partner is only one of many equally good
    same-class candidates) ranks rows, as before. ``chance`` gives what random scores achieve
    (``chance["instance"]``: the first direction; ``chance["instance_by_direction"]``: both).

    Class level uses the rows whose label is known (``labels >= 0``; ``n_class`` of them): one
    unlabelled sample does not remove it for the whole pair.

    Returns:
        ``{"image-audio": {"n": N, "unique": {"image": Ui, "audio": Ua}, "instance": {"image->audio": {"R@1",
        "R@5", "median_rank"}, "audio->image": {...}}, "n_class": K, "class": {...}, "chance": {"instance":
        {...}, "instance_by_direction": {...}, "class": {"R@1"}}}, ...}``

    Example:
        >>> img = torch.eye(2).repeat_interleave(2, 0)  # 2 images, each under 2 caption rows
        >>> same = {"image": (torch.arange(4) // 2)[:, None] == (torch.arange(4) // 2)[None, :], "text": torch.eye(4, dtype=torch.bool)}
        >>> txt = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> r = retrieval({"image": img, "text": txt}, {m: torch.ones(4, dtype=torch.bool) for m in same}, mods=["image", "text"], same=same)
        >>> r["image-text"]["unique"], r["image-text"]["instance"]["text->image"]["R@1"]
        ({'image': 2, 'text': 4}, 0.75)
    """
    out: dict[str, Any] = {}
    for a, b in pair_names(mods or list(z)):
        rows = present[a] & present[b]
        n = int(rows.sum())
        if n < 2:
            continue
        ia, ra = unique_rows(None if same is None else same[a][rows][:, rows], n)
        ib, rb = unique_rows(None if same is None else same[b][rows][:, rows], n)
        sim = z[a][rows][ra] @ z[b][rows][rb].T  # unique a items x unique b items (identical content, one embedding)
        match = torch.zeros(len(ra), len(rb), dtype=torch.bool)
        match[ia, ib] = True  # a is paired with b in some row
        ab, ba = f"{a}->{b}", f"{b}->{a}"
        entry: dict[str, Any] = {"n": n, "unique": {a: len(ra), b: len(rb)},
                                 "instance": {ab: recall_stats(sim, match), ba: recall_stats(sim.T, match.T)}}
        by_dir = {ab: recall_stats(torch.zeros(len(ra), len(rb)), match),  # every candidate tied: chance
                  ba: recall_stats(torch.zeros(len(rb), len(ra)), match.T)}
        entry["chance"] = {"instance": by_dir[ab], "instance_by_direction": by_dir}
        sim = z[a][rows] @ z[b][rows].T  # class level ranks rows
        if labels is not None:
            # class level over the rows whose label is known (an unlabelled row is neither a query
            # nor a candidate there); n_class says how many
            y = labels[rows]
            known = y >= 0
            k = int(known.sum())
            if k >= 2:
                cm = class_match(y[known])
                ks = sim[known][:, known]
                entry["n_class"] = k
                entry["class"] = {f"{a}->{b}": recall_stats(ks, cm), f"{b}->{a}": recall_stats(ks.T, cm)}
                entry["chance"]["class"] = recall_stats(torch.zeros(k, k), cm)
        out[pair_key(a, b)] = entry
    return out


@dataclass
class Pretrained:
    """What :func:`pretrain` returns: the model (encoders shared with the fusion model), a snapshot of
    its weights at the end of pre-training, the loss history and the test retrieval."""

    model: ContrastiveModel
    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    retrieval: dict[str, Any] = field(default_factory=dict)
    #: with ``on_error="skip"``: split -> reason -> samples left out (train: its last epoch; test: the retrieval's read)
    skipped: dict[str, dict[str, int]] | None = None
    #: why ``retrieval`` is empty (no test split, or no test sample holding two of the modalities), else None
    retrieval_reason: str | None = None
    #: what pre-training did not do as asked (a batch_size over the split, exclude_same_class without labels)
    notes: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """The ``pretrain`` entry of metrics.json."""
        return {**self.config, "history": self.history,
                "temperature": float(1.0 / self.state["logit_scale"].exp()),
                **({"skipped": self.skipped} if self.skipped is not None else {})}

    def warnings(self, data: str | Path) -> list[str]:
        """One warning per split of which samples were skipped (``on_error="skip"``), as the supervised
        trainer words its own."""
        what = {"train": "pre-training"}
        found = [skip_warning(s, c, data, what.get(s, "the retrieval evaluation")) for s, c in (self.skipped or {}).items()]
        return [w for w in found if w] + list(self.notes) + ([f"no retrieval in metrics.json: {self.retrieval_reason}"]
                                                             if self.retrieval_reason else [])

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint (``{"format", "config", "state"}``; load with :func:`load`). The same
        training gives the same bytes: the time it took (``wall_s``) stays out of the file."""
        from mmdata.io import atomic_write_bytes

        atomic_write_bytes(Path(path), self.to_bytes())
        return Path(path)

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` writes."""
        buf = io.BytesIO()
        config = {k: v for k, v in self.config.items() if k != "wall_s"}
        torch.save({"format": FORMAT, "config": config, "state": self.state}, buf)
        return buf.getvalue()


@keeps_caller_rng  # it seeds torch's global RNG: a direct caller gets its own state back
def pretrain_encoders(model: FusionModel, data: str | Path, *, epochs: int = 10, seed: int = 0, batch_size: int = 64,
             lr: float = 2e-3, weight_decay: float = 1e-4, recipe: Any = None, device: str | torch.device = "cpu",
             dim: int = 32, temperature: float = 0.07, exclude_same_class: bool = False,
             label_fraction: float = 1.0, eval_split: str | Sequence[str] | None = "test", progress: bool = False,
             loader_kw: dict[str, Any] | None = None, train_split: str | Sequence[str] = "train",
             class_of: Mapping[str, int] | None = None, on_error: str = "raise") -> Pretrained:
    """Pre-train ``model``'s encoders contrastively on the training split (labels unused) in place.

    Args:
        model: the fusion model to initialise (its encoders are trained; its fusion is untouched).
        data: dataset folder with a ``train`` split.
        epochs, batch_size, lr, weight_decay: optimisation (AdamW; no weight decay on the temperature).
        seed: fixes the projection heads' init, the data order and the augmentation draws.
        recipe: the recipe of the run (its ``normalize:`` stage gives the input format; its random ops
            augment the pre-training batches as they augment fine-tuning).
        device: where to train.
        dim: size of the shared embedding space. temperature: initial temperature.
        exclude_same_class: remove same-class candidates from the InfoNCE denominators (uses only
            the labels of the labelled subset under ``label_fraction``); each epoch's
            ``excluded_negatives`` in the history counts the candidates removed.
        class_of: with ``exclude_same_class``, each training sample key's class in place of the card's
            label (a single-label metadata target's, :func:`mmdata.train.targets.class_ids`); a key
            not in it has no known class.
        label_fraction: which training labels the run may use (see :func:`labelled_balance`).
        eval_split: split on which retrieval is measured at the end (None: skip; a list: read as one).
        train_split: the split(s) pre-training reads (a list: folds read as one, ``--train-split``).
        loader_kw: more :func:`mmdata.loader` options (``cache``, ``num_workers``; cache defaults to True).
        on_error: ``"raise"`` (a sample that does not decode stops pre-training, naming it) or ``"skip"``
            (it is left out of pre-training and of the retrieval evaluation, counted in ``.skipped``).

    Returns:
        A :class:`Pretrained` (``.retrieval`` holds the test retrieval; ``.save(path)`` the checkpoint).

    Raises:
        MMDataError: an option out of range (``dim`` >= 1, ``temperature`` in (0, 1], ``batch_size`` >= 2,
            ``lr`` > 0), no training sample holding two of the modalities (:func:`check_pairs`), or no
            batch of the first epoch holding two such samples (nothing to contrast: the loss would be 0).
    """
    import mmdata
    from mmdata.rng import derive_int

    t0 = time.perf_counter()
    if epochs < 1:
        raise MMDataError(f"--pretrain-epochs (pretrain_epochs=) must be >= 1, got {epochs}")
    if on_error not in ON_ERROR:
        raise MMDataError(f"--on-error (on_error=) must be one of {list(ON_ERROR)}, got {on_error!r}")
    for key, value in (("dim", dim), ("temperature", temperature), ("batch_size", batch_size), ("lr", lr)):
        check_pretrain_value(key, value)
    dev = torch.device(device)
    torch.manual_seed(derive_int(seed, "contrastive-heads") % 2**63)
    net = ContrastiveModel(model, dim=dim, temperature=temperature).to(dev)
    check_pairs(data, net.mods, train_split)
    decay = [p for n, p in net.named_parameters() if n != "logit_scale"]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": [net.logit_scale], "weight_decay": 0.0}], lr=lr)
    known = None  # the keys whose class pre-training may know (None: every one's)
    if exclude_same_class:
        balance = labelled_balance(recipe, label_fraction)
        if class_of is None:  # the card's labels of the kept subset
            known = labelled_keys(data, balance, seed, train_split)
        else:  # the kept subset, whatever its card label: class_of says which of them hold the target
            kept = kept_keys(data, balance, seed, train_split)
            known = None if kept is None else set(kept)
    kw = {"cache": True, **(loader_kw or {})}
    if kw.get("num_workers") and "worker_init_fn" not in kw:
        from mmdata.train.loop import quiet_stop_signals

        kw["worker_init_fn"] = quiet_stop_signals  # a group SIGTERM is the job's 143, not a worker's traceback
    loader = mmdata.loader(data, batch_size, recipe=recipe, split=train_split, seed=seed, device=dev, augment_on="device",
                           modalities=[*net.mods, "label"], on_error=on_error, **kw)
    normalize = mmdata.load_recipe(recipe).to_dict().get("normalize") or {}
    # under torchrun each rank reads its part of every epoch (in-batch negatives per rank) and DDP
    # averages the gradients, as in the supervised loop
    ddp = torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
    run: nn.Module = torch.nn.parallel.DistributedDataParallel(net) if ddp else net
    history = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        net.train()
        total, count, pairs = 0.0, 0, {}
        seen, paired = 0, 0  # samples, and samples holding two of the modalities (after augmentation)
        excluded = torch.zeros((), dtype=torch.int64)  # candidates removed from the denominators (exclude_same_class)
        batches, largest, nce_rows, negatives, known_rows = 0, 0, 0, 0, 0
        with run.join() if ddp else contextlib.nullcontext():
            torch.empty((), dtype=torch.int64).random_()  # as train_epoch: the DataLoader's former draw
            for batch in loader:
                seen += len(batch)
                paired += _paired_rows(batch, net.mods)
                batches, largest = batches + 1, max(largest, len(batch))
                for n in _pair_sizes(batch, net.mods):  # host metadata: each InfoNCE row's in-batch negatives
                    nce_rows, negatives = nce_rows + n, negatives + n * (n - 1)
                labels = None
                if exclude_same_class:
                    labels = _known_classes(batch, known, class_of)
                    known_rows += int((labels >= 0).sum())
                    excluded = excluded.to(labels.device) + _excluded(batch, labels, net.mods)
                    labels = labels.to(dev)
                loss, per = run(batch, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                net.clamp_()
                if per:  # a batch without a pair has no InfoNCE: it is not a loss of 0
                    total += float(loss.detach()) * len(batch)
                    count += len(batch)
                for k, v in per.items():
                    pairs.setdefault(k, []).append(v)
        if epoch == 0:
            _check_epoch(count, seen, paired, batch_size, net.mods, dev if ddp else None)
        history.append({"epoch": epoch, "loss": total / count if count else None,  # None: no batch held a pair
                        "pair_loss": {k: sum(v) / len(v) for k, v in pairs.items()},
                        "temperature": float(1.0 / net.logit_scale.detach().exp()),
                        # the batches as they were: batch_size is a cap, a split smaller than it gives one batch
                        "batches": batches, "largest_batch": largest,
                        "negatives_per_row": round(negatives / nce_rows, 2) if nce_rows else 0.0,
                        **({"excluded_negatives": int(excluded), "rows_with_known_class": known_rows}
                           if exclude_same_class else {})})
        if progress:
            loss_s = "—, no batch held a pair" if count == 0 else f"{history[-1]['loss']:.3f}"
            # stderr, as the training epochs' lines: stdout is a --json run's one document (QA26)
            print(f"pretrain epoch {epoch}: InfoNCE {loss_s}  temperature {history[-1]['temperature']:.3f}",
                  file=sys.stderr, flush=True)
    img = model.image_hw
    config = {"method": "contrastive", "modalities": list(net.mods), "epochs": epochs, "seed": seed,
              "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "dim": dim,
              "init_temperature": temperature, "exclude_same_class": exclude_same_class,
              "label_fraction": label_fraction, "d": model.fusion.d,
              "image_channels": int(model.image_channels), "image_hw": [int(img[0]), int(img[1])],
              "classes": model.fusion.classes, "normalize": normalize,
              "largest_batch": max((h["largest_batch"] for h in history), default=0)}  # batch_size is a cap
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    pre = Pretrained(net, state, config, history)
    pre.notes = _pretrain_notes(history, batch_size, exclude_same_class)
    if on_error != "raise":
        pre.skipped = {"train": dict(sorted(loader.skipped.items()))}
    if eval_split is not None:
        ev, skipped = read_split(data, eval_split, net.mods, normalize, on_error)
        if pre.skipped is not None:
            pre.skipped["test"] = skipped
        z, p = embed_all(net, ev)
        pre.retrieval = retrieval(z, p, ev["label"] if "label" in ev else None, net.mods, identical(ev, net.mods))
        if not pre.retrieval:  # every pair has fewer than two test rows holding both: say so, not only {}
            counts = ", ".join(f"{pair_key(a, b)}: {int((p[a] & p[b]).sum())}" for a, b in pair_names(net.mods))
            pre.retrieval_reason = (f"no pair of [{', '.join(net.mods)}] is held together by two or more samples of the "
                                    f"test split {eval_split!r} ({counts}; {len(ev)} samples): retrieval needs a query "
                                    "and another candidate holding both")
    else:
        pre.retrieval_reason = "no test split to measure it on (eval_split=None)"
    pre.config["wall_s"] = time.perf_counter() - t0
    return pre


def _known_classes(batch: Batch, known: set[str] | None, class_of: Mapping[str, int] | None) -> torch.Tensor:
    """The class labels ``exclude_same_class`` uses for a batch (-1: unknown): the card's labels (where
    the batch holds them), or ``class_of``'s classes by sample key on the host (a balance copy ``key#r1``
    is its source's sample); only those of ``known`` keys when a label fraction keeps a subset."""
    if class_of is None:
        labels = batch["label"].clone() if "label" in batch else torch.full((len(batch),), -1)
        if known is not None:
            labels[[k not in known for k in batch.keys]] = -1
        return labels
    keys = [_source_key(k) for k in batch.keys]
    return torch.tensor([class_of.get(k, -1) if known is None or k in known else -1 for k in keys], dtype=torch.int64)


def _source_key(key: str) -> str:
    """A sample's key without the ``#r<i>`` a balance section gives its repeated copies."""
    head, sep, tail = key.rpartition("#r")
    return head if sep and tail.isdigit() else key


def _excluded(batch: Batch, labels: torch.Tensor, mods: Sequence[str]) -> torch.Tensor:
    """Candidates :meth:`ContrastiveModel.loss` removes from a batch's denominators: :func:`same_class`
    over each pair's rows holding both modalities, as a tensor on the labels' device (read once an epoch)."""
    pres = host_present(batch, mods)
    total = torch.zeros((), dtype=torch.int64, device=labels.device)
    for a, b in pair_names(mods):
        rows = pres[a] & pres[b]  # host metadata
        if int(rows.sum()) >= 2:  # a pair with fewer rows is skipped by the loss
            total += same_class(labels[rows.to(labels.device)]).sum()
    return total


def _pair_sizes(batch: Batch, mods: Sequence[str]) -> list[int]:
    """Per modality pair, the rows of ``batch`` holding both, where InfoNCE has a term (>= 2 rows)."""
    pres = host_present(batch, mods)
    sizes = [int((pres[a] & pres[b]).sum()) for a, b in pair_names(mods)]
    return [k for k in sizes if k >= 2]


BATCH_NOTE = "pre-training batch_size="


def _pretrain_notes(history: list[dict[str, Any]], batch_size: int, exclude_same_class: bool) -> list[str]:
    """Warnings on options that did less than asked: ``batch_size`` above the rows a batch got (the
    split, or this rank's part of it, is smaller), ``exclude_same_class`` where no training row had a
    known class (unlabelled data: nothing to exclude)."""
    notes = []
    largest = max((h["largest_batch"] for h in history), default=0)
    if 0 < largest < batch_size:
        notes.append(f"{BATCH_NOTE}{batch_size}, but the largest batch held {largest} rows (the training "
                     f"split{' on this rank' if _world() > 1 else ''} is smaller): each InfoNCE row had "
                     f"{history[-1]['negatives_per_row']:g} in-batch negatives on average (metrics.json pretrain.history: "
                     "largest_batch, negatives_per_row)")
    if exclude_same_class and not any(h.get("rows_with_known_class") for h in history):
        notes.append("exclude_same_class=true removed nothing (excluded_negatives: 0): no training sample had a known "
                     "class (the data has no labels, or --label-fraction kept none); every other row stayed a negative")
    return notes


def _world() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _names(mods: Sequence[str]) -> str:
    return "[" + ", ".join(mods) + "]"


def _paired_rows(batch: Batch, mods: Sequence[str]) -> int:
    """Rows of ``batch`` holding at least two of ``mods`` (presence masks are host tensors: no sync)."""
    n = len(batch)
    pres = [batch.present[m] if m in batch.present else torch.zeros(n, dtype=torch.bool) for m in mods]
    return int((torch.stack(pres).sum(0) >= 2).sum()) if pres else 0


def check_pairs(data: str | Path, mods: Sequence[str], split: str | Sequence[str] = "train") -> dict[str, int] | None:
    """Training samples per modality pair holding both (from ``index.parquet``); raise when no pair has
    any — every sample with only an image *or* only audio leaves InfoNCE nothing to contrast. None
    when the dataset has no local index to read (a URL): the first epoch checks the batches instead.
    ``split``: a split, or several read as one (folds).

    Example:
        >>> check_pairs("data/avdigits", ["image", "audio"])  # doctest: +SKIP
        {'image-audio': 1078}
    """
    from mmdata.shards.index import INDEX

    if not (Path(str(data)) / INDEX).is_file():
        return None
    from mmdata.train.config import IndexStats

    st = IndexStats(data)
    rows = st.rows(split) if isinstance(split, str) else st.rows_in(split)
    name = split if isinstance(split, str) else "+".join(split)
    has = {m: st.has[m][rows] if m in st.has else np.zeros(len(rows), bool) for m in mods}
    counts = {pair_key(a, b): int((has[a] & has[b]).sum()) for a, b in pair_names(mods)}
    if not any(counts.values()):
        each = ", ".join(f"{int(has[m].sum())} with {m}" for m in mods)
        raise MMDataError(f"{data}: no {'training' if split == 'train' else name} sample has two of {_names(mods)} "
                          f"together ({name} split: {len(rows)} samples, {each}, none with two); contrastive "
                          "pre-training needs paired samples — samples that hold at least two of the modalities")
    return counts


def _check_epoch(losses: int, seen: int, paired: int, batch_size: int, mods: Sequence[str],
                 ddp_device: torch.device | None) -> None:
    """After the first epoch: raise when no batch gave an InfoNCE term (summed over ranks under DDP)."""
    if ddp_device is not None:
        t = torch.tensor([losses, seen, paired], dtype=torch.float64, device=ddp_device)
        torch.distributed.all_reduce(t)
        losses, seen, paired = (int(v) for v in t.tolist())
    if losses:
        return
    raise MMDataError(f"no training batch of batch_size={batch_size} held two samples with two of {_names(mods)} "
                      f"together in the first epoch ({paired} of {seen} training samples held two of them after the "
                      "recipe's augmentations); contrastive pre-training needs paired samples: check that the recipe "
                      "does not drop a modality from every sample, or raise --pretrain-arg batch_size")


METHODS = ("contrastive",)
#: ``--pretrain-arg KEY=VALUE`` options and their types
PRETRAIN_ARGS = {"dim": int, "temperature": float, "exclude_same_class": bool, "batch_size": int, "lr": float}
#: what each numeric option accepts: (test, the expectation an error states)
PRETRAIN_RANGES: dict[str, tuple[Any, str]] = {
    "dim": (lambda v: v >= 1, "an integer >= 1 (the size of the shared embedding space)"),
    "temperature": (lambda v: 0 < v <= 1, "a number in (0, 1] (the initial temperature)"),
    "batch_size": (lambda v: v >= 2, "an integer >= 2 (InfoNCE contrasts a batch's rows: a batch of one has no "
                   "negatives; it defaults to the run's --batch-size)"),
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0 (the learning rate; it defaults to the run's --lr)"),
}


def check_pretrain_value(key: str, value: Any, given: Any = None) -> None:
    """Raise naming ``--pretrain-arg KEY=VALUE`` when ``value`` is outside the option's range
    (``given``: the value as the user wrote it, for the message)."""
    test, what = PRETRAIN_RANGES[key]
    if not test(value):
        raise MMDataError(f"--pretrain-arg (pretrain_args=) {key}={value if given is None else given!r}: expected {what}")


def pretrain_options(args: dict[str, Any] | None) -> dict[str, Any]:
    """Validate and type ``--pretrain-arg`` options (strings from the CLI, or values from the API / YAML).

    Example:
        >>> pretrain_options({"dim": "64", "exclude_same_class": "true"})
        {'dim': 64, 'exclude_same_class': True}
    """
    out: dict[str, Any] = {}
    for k, v in (args or {}).items():
        kind = PRETRAIN_ARGS.get(k)
        if kind is None:
            raise MMDataError(f"--pretrain-arg (pretrain_args=) {k!r}: unknown; allowed: {list(PRETRAIN_ARGS)}")
        try:
            if kind is bool:
                if isinstance(v, str) and v.lower() in ("true", "1", "yes", "false", "0", "no"):
                    v = v.lower() in ("true", "1", "yes")
                elif not isinstance(v, bool):
                    raise ValueError
                out[k] = v
            else:
                if isinstance(v, bool):
                    raise ValueError
                out[k] = kind(v)
        except (TypeError, ValueError):
            raise MMDataError(f"--pretrain-arg (pretrain_args=) {k}={v!r}: expected {kind.__name__}") from None
        if k in PRETRAIN_RANGES:
            check_pretrain_value(k, out[k], v)
    return out


@dataclass
class Prepared:
    """What :func:`prepare` did before supervised training: the pre-training (if any), the loader
    ``balance`` that keeps the labelled subset, and what goes into metrics.json."""

    pretrained: Pretrained | None
    balance: dict[str, Any] | None
    config: dict[str, Any]
    labelled: int | None = None

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pretrained is not None:
            out["pretrain"] = self.pretrained.metrics()
            out["retrieval"] = self.pretrained.retrieval
            if self.pretrained.retrieval_reason:
                out["retrieval_reason"] = self.pretrained.retrieval_reason
        if self.labelled is not None:
            out["labelled_train"] = self.labelled
        return out

    def save(self, out: str | Path) -> None:
        if self.pretrained is not None:
            self.pretrained.save(Path(out) / CHECKPOINT)

    def files(self) -> dict[str, bytes]:
        """What :meth:`save` writes into the run's folder, name -> bytes (the trainer writes them with
        its other outputs, all or none)."""
        return {CHECKPOINT: self.pretrained.to_bytes()} if self.pretrained is not None else {}


def prepare(model: FusionModel, data: str | Path, *, pretrain: str | None = None, pretrain_epochs: int = 10,
            pretrain_args: dict[str, Any] | None = None, probe: bool = False, label_fraction: float = 1.0, seed: int = 0,
            batch_size: int = 64, lr: float = 2e-3,
            weight_decay: float = 1e-4, recipe: Any = None, device: str | torch.device = "cpu",
            cache: bool = True, num_workers: int = 0, progress: bool = False,
            eval_split: str | Sequence[str] | None = "test", train_split: str | Sequence[str] = "train",
            class_of: Mapping[str, int] | None = None, on_error: str = "raise",
            eval_normalize: Mapping[str, list[dict[str, Any]]] | None = None) -> Prepared:
    """The trainer's hook (``mmdata train --pretrain contrastive --pretrain-epochs N [--pretrain-arg K=V]
    --probe --label-fraction F``): pre-train the encoders, freeze them under a linear probe, and pick
    the labelled subset. ``pretrain_args``: ``dim``, ``temperature``, ``exclude_same_class``,
    ``batch_size``, ``lr`` (default: the run's batch size and learning rate). ``train_split`` /
    ``eval_split``: what the run's training / test role reads (lists: folds read as one). ``class_of``:
    the classes ``exclude_same_class`` uses in place of the card's (a target's, by sample key). ``on_error``:
    the run's (``"skip"`` leaves a sample that does not decode out of pre-training and its retrieval).
    ``eval_normalize``: the model's complete evaluation transform (:func:`mmdata.train.config.eval_section`),
    recorded in ``contrastive.pt``'s config beside ``normalize`` (what a measurement brings other data with).

    A no-op (``Prepared(None, None, ...)``) when nothing is asked for.
    """
    if pretrain is not None and pretrain not in METHODS:
        raise MMDataError(f"--pretrain (pretrain=) {pretrain!r}: choose one of {list(METHODS)}")
    opts = {"batch_size": batch_size, "lr": lr, **pretrain_options(pretrain_args)}
    if pretrain_args and pretrain is None:
        raise MMDataError("--pretrain-arg (pretrain_args=) needs --pretrain contrastive")
    if probe and model.fusion_name != "concat":
        raise MMDataError(f"--probe (probe=) trains one linear layer on the frozen encoders' concatenated features; "
                          f"it replaces the fusion, so drop --fusion {model.fusion_name}")
    balance = labelled_balance(recipe, label_fraction)
    pre = None
    if pretrain is not None:
        pre = pretrain_encoders(model, data, epochs=pretrain_epochs, seed=seed, weight_decay=weight_decay, recipe=recipe,
                                device=device, label_fraction=label_fraction, progress=progress, eval_split=eval_split,
                                loader_kw={"cache": cache, "num_workers": num_workers}, train_split=train_split,
                                class_of=class_of, on_error=on_error, **opts)
        if eval_normalize is not None:
            pre.config["eval_normalize"] = {m: list(v) for m, v in eval_normalize.items()}
        if "batch_size" not in (pretrain_args or {}):  # the run's --batch-size by default: a small split is no news
            pre.notes = [n for n in pre.notes if not n.startswith(BATCH_NOTE)]
    if probe:
        make_probe(model)
    keys = labelled_keys(data, balance, seed, train_split)
    config = {"pretrain": pretrain, "pretrain_epochs": pretrain_epochs if pretrain else None,
              "pretrain_args": pretrain_options(pretrain_args), "probe": probe, "label_fraction": label_fraction}
    return Prepared(pre, balance, config, None if keys is None else len(keys))


def load(path: str | Path, device: str | torch.device = "cpu") -> ContrastiveModel:
    """Load a ``contrastive.pt`` (or the folder holding one) written by pre-training.

    Example:
        >>> model = load("runs/pre")  # doctest: +SKIP
        >>> z, present = model.embed(batch)  # doctest: +SKIP
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise MMDataError(f"{p} not found: train with `mmdata train DATA --pretrain contrastive --out DIR` to get "
                          f"a contrastive model (DIR/{CHECKPOINT})")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise MMDataError(f"{p}: not a contrastive checkpoint (expected format {FORMAT!r})")
    cfg = ckpt["config"]
    backbone = FusionModel(cfg["modalities"], "concat", int(cfg["classes"]), d=int(cfg["d"]),
                           image_channels=int(cfg["image_channels"]), image_hw=tuple(cfg["image_hw"]))
    model = ContrastiveModel(backbone, dim=int(cfg["dim"]), temperature=float(cfg["init_temperature"]))
    model.load_state_dict(ckpt["state"])
    model.config = dict(cfg)
    return model.to(device).eval()
