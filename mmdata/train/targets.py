"""What the reference trainer predicts: one class per sample (the card's label, the default), a set of
labels, or a number — the last two read from a key of the samples' metadata (a manifest's ``--meta``
column, each sample's ``.json`` member), so MM-IMDb-style genres and CMU-MOSI-style sentiment train
without re-sharding.

* ``Target.classes(n)``: cross-entropy over the card's classes (every score of
  :class:`mmdata.train.evaluate.Scores`); model selection on val accuracy.
* ``--target KEY`` whose values are lists (``["drama", "comedy"]``, or a JSON list in a CSV cell) or
  strings (one label each): **multi-label** — one sigmoid per label seen in any split (sorted names),
  binary cross-entropy summed over labels; scores micro / macro F1 at 0.5, mAP, subset accuracy,
  Hamming loss; model selection on val micro-F1.
* ``--target KEY`` whose values are numbers: **regression** — one output, trained with the squared
  error of the target standardised by the training split's mean and sd (reported in ``target``; under
  ``--label-fraction`` those of the labels kept; a recipe's ``balance.fraction`` subsamples the training
  data, not its labels: every training label's),
  predictions scored in the target's own units: MAE, RMSE, Pearson r, R²; model selection on val MAE.
  The kind follows the values' type, not a guess at their meaning: a column of 0 / 1, or CheXpert's 1 / 0 /
  -1 (uncertain), as ints or ``1.0`` floats, is numbers and trains as a regression. The run's header line
  at the start says so; the warning that comes with the result names the column and its values and, if it
  is a yes/no finding, how to train it as a binary target instead (true / false text, -1 blank for
  CheXpert's U-ignore, true for U-ones, false for U-zeros), and several such columns as one multi-label
  target (a list column). A true numeric column (a -1 / 0 / 1 sentiment, a small count) trains right as it
  is. A binary target is a column of true / false.

A sample without the key, or with ``null`` / NaN / a blank or NA cell, is unlabelled: left out of the
loss and the scores and counted, as an unlabelled sample is for classes (an empty label list is
labelled: the empty set). Label names are compared stripped and in Unicode NFC (``Drama`` and ``drama``
stay two labels, warned of); numbers written as
text (a CSV column holding an NA cell) are numbers. A column whose labelled values are at least half
numbers (as values or as text) and not all is refused, naming the samples whose cells are not numbers
(a ``?`` missing marker, a stray word): a numeric column with bad cells, not a label set of one label
per distinct number; label names that are digits train as labels when written as lists (``["1"]``),
or when most of the column's values are not numbers.

Label noise (the ablation's planted harmful control) keeps its meaning — a fixed share of training
targets replaced, the same every epoch: a run's :class:`LabelNoise` replaces exactly ``floor(F * n + 0.5)`` (half
rounds up) of its ``n`` labelled training samples (a seeded choice, :func:`plan_label_noise`; every copy a
recipe's ``balance`` repeats of a flipped sample trains with its replaced target, :func:`noise_keys`); a flipped class becomes another
class that has training samples, a flipped multi-label target a random label set (each label on with
probability one half), a flipped number a draw from the training distribution's normal (in standardised
units, a standard normal).

Mixing (a recipe's ``batch:`` mixup / mixgen, :mod:`mmdata.augment.mix`): a row whose primary modality
was mixed trains on ``lam * y_i + (1 - lam) * y_partner`` — for a multi-label target the label vectors
(binary cross-entropy on the soft target, as timm's Mixup does for multi-label), for a regression the
standardised values (squared error against the mixed value); any other row keeps its own target
(``mix_lam`` 1). The rules are the class path's: an unlabelled row stays out of the loss, and so does a
mixed row whose partner is unlabelled (half of its target is unknown), while a row that was not mixed
stays in whatever its partner. Label noise comes first: a flipped sample brings its noisy target
wherever it appears, as the row or as a partner. (The class path mixes the partner's clean label —
``label_b`` is written by the mixing op before the loss draws the noise — and keeps doing so: its runs
are unchanged.)
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmdata.errors import MMDataError
from mmdata.rng import derive
from mmdata.types import Batch

#: the metadata field a target key is read from (a manifest's --meta columns)
META_FIELD = "json"
KINDS = ("classes", "multilabel", "regression")
#: the val score that picks the best epoch, and whether higher is better
SELECTION = {"classes": ("accuracy", True), "multilabel": ("micro_f1", True), "regression": ("mae", False)}


def labels_of(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(class labels on ``device``, -1 where unlabelled; host mask of labelled rows) of a batch."""
    if "label" not in batch:
        return torch.full((len(batch),), -1, dtype=torch.int64, device=device), torch.zeros(len(batch), dtype=torch.bool)
    return batch["label"].to(device, non_blocking=True), batch.present["label"]


#: cell text that stands for "no value" (a CSV's NA, a spreadsheet's blank), compared stripped and case-folded
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none"})
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: the longest cell parsed as a list (a JSON or Python list written into a CSV cell)
MAX_LIST_CELL = 100_000


def _name(value: Any) -> str:
    """A label name as compared and stored: NFC (a macOS / Windows spelling of 'Café' is one label), stripped."""
    return unicodedata.normalize("NFC", str(value)).strip()


def _labels_of(value: Any) -> list[str] | None:
    """A multi-label value as a list of label names (None: not a label set). A string is one label, or
    a list written into a CSV cell — JSON (``["Drama", "Comedy"]``) or Python's repr, as pandas writes a
    list column (``['Drama', 'Comedy']``); empty and null entries are dropped."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("[") and s.endswith("]") and len(s) <= MAX_LIST_CELL:
            try:
                parsed = json.loads(s)
            except ValueError:
                try:
                    parsed = ast.literal_eval(s)  # literals only: nothing is executed
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    parsed = None
            if isinstance(parsed, list):
                return _labels_of(parsed)
        return [_name(s)]
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (str, int)) and not isinstance(v, bool)
                                                for v in value):
        return [n for n in (_name(v) for v in value if v is not None) if n.casefold() not in MISSING_TEXT]
    return None


def _is_list(value: Any) -> bool:
    """Whether ``value`` is a label list (a list, or one written into a cell: :func:`_labels_of`)."""
    if isinstance(value, (list, tuple)):
        return True
    s = value.strip() if isinstance(value, str) else ""
    return s.startswith("[") and s.endswith("]") and _labels_of(s) != [_name(s)]


def _flag(value: Any) -> bool | None:
    """A boolean value — JSON ``true`` / ``false``, or that text in any case (a CSV column) — else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return value.strip().casefold() == "true"
    return None


def _as_label_set(value: Any, key: str | None) -> Any:
    """A boolean target's value as the one-label set it means: ``[key]`` when true, ``[]`` when false
    (one output named after the key); a missing or other value as it is."""
    flag = _flag(value)
    return value if flag is None else ([key] if flag else [])


def _number(value: Any) -> float | None:
    """A regression value: a number, or a number written as text (a CSV column with one NA cell is text).
    An integer too large for a float is infinite, as the same digits written as text read (refused by
    :func:`settle` naming the sample, not an OverflowError)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # a JSON integer literal of 400 digits
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value.strip())
    return None


def _missing(value: Any) -> bool:
    return (value is None or (isinstance(value, float) and math.isnan(value))
            or (isinstance(value, str) and value.strip().casefold() in MISSING_TEXT))


def label_noise_plan(keys: Sequence[str], fraction: float, seed: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Host-side label noise for a batch: (flip mask (B,) bool, offsets (B,) int64). A flipped label
    becomes ``(label + 1 + offset) % classes`` — a different class. Both are fixed per sample key (the
    same every epoch) and independent of the label, so they are drawn without reading labels back from
    the device."""
    flip = torch.zeros(len(keys), dtype=torch.bool)
    off = torch.zeros(len(keys), dtype=torch.int64)
    if fraction > 0:
        for i, k in enumerate(keys):
            rng = derive(seed, 0, k, "label_noise")
            flip[i] = bool(rng.random() < fraction)
            off[i] = int(rng.integers(classes - 1))
    return flip, off


@dataclass(frozen=True)
class LabelNoise:
    """A run's label noise: the training samples whose target is replaced, and by what — a class id, a
    standardised number, or a 0/1 row of a multi-label target (:func:`plan_label_noise`). Built once from
    the split's labels before training, so the flipped share is exact and does not depend on the batches,
    the workers or the ranks.

    Example:
        >>> noise = LabelNoise(0.5, 2, {"a": 1})
        >>> noise.record()
        {'fraction': 0.5, 'flipped': 1, 'of': 2, 'keys': ['a']}
    """

    fraction: float
    of: int  # the labelled training samples the share is of
    replaced: Mapping[str, Any]

    def record(self) -> dict[str, Any]:
        """metrics.json's ``label_noise``: the fraction asked, the samples flipped, of how many, and their keys
        (sorted); beyond :data:`NOISE_KEYS_SHOWN` keys the first of them and ``keys_sha256``, the SHA-256 of all
        of them joined by newlines (review of QA33: 300k keys at 1M samples; the whole list is
        :func:`plan_label_noise` of the same seed and labels)."""
        keys = sorted(self.replaced)
        out: dict[str, Any] = {"fraction": self.fraction, "flipped": len(keys), "of": self.of,
                               "keys": keys[:NOISE_KEYS_SHOWN]}
        if len(keys) > NOISE_KEYS_SHOWN:
            out["keys_sha256"] = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()
        return out


#: the flipped keys metrics.json lists at most (the rest: a digest, :meth:`LabelNoise.record`)
NOISE_KEYS_SHOWN = 1000


def noise_keys(batch: Batch) -> list[str]:
    """The keys a run's :class:`LabelNoise` knows a batch's rows by: a copy that a recipe's ``balance`` repeats
    (key ``<key>#r<i>``, ``meta["copy"] = i``: :mod:`mmdata.augment.balance`) is its sample, so every copy of a
    flipped sample trains with the flipped target (review of QA33: the copies kept the true label). Only a
    row whose meta says it is copy ``i`` loses the suffix: a sample named ``x#r1`` is not a copy of ``x``.

    Example:
        >>> from mmdata import Sample, collate
        >>> noise_keys(collate([Sample("a#r2", {"text": "hi"}, meta={"copy": 2}), Sample("b#r1", {"text": "hi"})]))
        ['a', 'b#r1']
    """
    metas = batch.meta.get("samples") if isinstance(batch.meta, Mapping) else None
    if not isinstance(metas, list) or len(metas) != len(batch.keys):
        return list(batch.keys)
    out = []
    for key, meta in zip(batch.keys, metas):
        copy = meta.get("copy") if isinstance(meta, Mapping) else None
        tail = f"#r{copy}" if isinstance(copy, int) and copy > 0 else None
        out.append(key[:-len(tail)] if tail and key.endswith(tail) else key)
    return out


def plan_label_noise(labels: Mapping[str, Any], fraction: float, seed: int, kind: str = "classes",
                     outputs: int = 0) -> LabelNoise:
    """Exactly ``floor(fraction * n + 0.5)`` (half rounds up, not Python's ``round``: 0.5 x 5 flips 3) of the ``n``
    labelled training samples in ``labels`` (sample key -> class id for ``kind="classes"``; any value
    otherwise), a seeded choice over the sorted keys (so the same for every worker count and rank): the first
    of one seeded permutation, so a smaller fraction's samples are among a larger one's, with the same new
    targets (a dose-response ablation compares nested flip sets; a new training sample redraws the
    permutation). A flipped class goes to one of the other classes that have training
    samples here (a class with none would be a label the model is never shown otherwise); with one class
    alone there is nothing to flip to, and none is. Multi-label rows (``outputs`` labels) and numbers
    (standardised) are drawn per key, as :meth:`Target.noisy` with a fraction draws them.

    Example:
        >>> noise = plan_label_noise({"a": 0, "b": 1, "c": 1, "d": 0}, 0.5, seed=0)
        >>> len(noise.replaced), all(noise.replaced[k] != {"a": 0, "b": 1, "c": 1, "d": 0}[k] for k in noise.replaced)
        (2, True)
    """
    keys = sorted(labels)
    # half up; the 1e-9 takes 0.35 x 10 (3.4999999999999996 in floats) as the 3.5 it is written as
    count = min(len(keys), int(math.floor(fraction * len(keys) + 0.5 + 1e-9))) if fraction > 0 else 0
    chosen = sorted(derive(seed, 0, "", "label_noise_choice").permutation(len(keys))[:count].tolist())
    present = sorted({int(labels[k]) for k in keys}) if kind == "classes" else []
    out: dict[str, Any] = {}
    for i in chosen:
        k = keys[i]
        rng = derive(seed, 0, k, "label_noise")
        if kind == "classes":
            others = [c for c in present if c != int(labels[k])]
            if others:
                out[k] = others[int(rng.integers(len(others)))]
        elif kind == "multilabel":
            out[k] = rng.integers(0, 2, outputs).astype(np.float32)
        else:
            out[k] = float(rng.standard_normal())
    return LabelNoise(float(fraction), len(keys), out)


def apply_label_noise(labels: torch.Tensor, flip: torch.Tensor, offsets: torch.Tensor, classes: int) -> torch.Tensor:
    """Labels with the planned flips applied (unlabelled rows, -1, stay -1), on the labels' device."""
    flip = flip.to(labels.device, non_blocking=True) & (labels >= 0)
    return torch.where(flip, (labels + 1 + offsets.to(labels.device, non_blocking=True)) % classes, labels)


def noisy_labels(keys: Sequence[str], labels: torch.Tensor, fraction: float, seed: int, classes: int) -> torch.Tensor:
    """Flip each label with probability ``fraction`` to a different random class, fixed per sample key (same
    every epoch): a batch alone, whose split is unknown; a run flips an exact share (:func:`plan_label_noise`).

    Example:
        >>> y = torch.tensor([0, 1, -1])
        >>> noisy_labels(["a", "b", "c"], y, 1.0, seed=0, classes=3)[2].item()
        -1
    """
    if fraction <= 0:
        return labels
    return apply_label_noise(labels, *label_noise_plan(keys, fraction, seed, classes), classes)


def masked_loss(logits: torch.Tensor, batch: Batch, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy averaged over the rows that have a label (both labels for mixed rows), and the
    number of such rows — as device tensors (a batch without labels gives a zero loss that still
    back-propagates, so DDP ranks stay in step)."""
    ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    keep = y >= 0
    if "mix_lam" in batch and "label_b" in batch:  # mixing ops: lam * CE(label) + (1 - lam) * CE(label_b)
        lam = batch["mix_lam"].to(logits.device, non_blocking=True)
        yb = batch["label_b"].to(logits.device, non_blocking=True)
        ce = lam * ce + (1 - lam) * F.cross_entropy(logits, yb.clamp(min=0), reduction="none")
        keep = keep & (yb >= 0)
    w = keep.to(ce.dtype)
    n = w.sum()
    return (ce * w).sum() / n.clamp(min=1), n


@dataclass
class Target:
    """The trainer's target: ``kind`` (``classes`` / ``multilabel`` / ``regression``), the metadata key
    it is read from (None for the card's label), label ``names`` (classes or labels), and a regression
    target's training ``mean`` / ``sd`` (the divisor it is standardised by; ``train_sd``, the training split's
    own sd, when that is 0 and ``sd`` is 1: a constant target).

    Example:
        >>> from mmdata import Sample, collate
        >>> t = Target("multilabel", "genres", ["comedy", "drama"])
        >>> b = collate([Sample("a", {"json": {"genres": ["drama"]}}), Sample("b", {"json": {}})])
        >>> y, labelled = t.values(b, torch.device("cpu"))
        >>> y.tolist(), labelled.tolist()
        ([[0.0, 1.0], [-1.0, -1.0]], [True, False])
    """

    kind: str
    key: str | None = None
    names: list[str] = field(default_factory=list)
    mean: float = 0.0
    sd: float = 1.0
    #: a multi-label target read from a boolean column: one label, ``key``, on when true
    boolean: bool = False
    #: the training split's sd where it is not ``sd`` (0 for a constant target, standardised by 1 instead)
    train_sd: float | None = None
    #: a regression target of 0 / 1 (/ -1) alone: its values as the header says them (:func:`_finding_warning`)
    finding: str = field(default="", compare=False)

    @property
    def split_sd(self) -> float:
        """The training split's own sd (``sd`` unless a constant target is standardised by 1 instead)."""
        return self.sd if self.train_sd is None else self.train_sd

    @classmethod
    def classes(cls, n: int, names: Sequence[str] | None = None) -> Target:
        return cls("classes", None, list(names) if names else [str(c) for c in range(n)])

    @property
    def outputs(self) -> int:
        """The model's output width."""
        return 1 if self.kind == "regression" else max(len(self.names), 1)

    @property
    def selection(self) -> tuple[str, bool]:
        """(val score that picks the best epoch, higher is better)."""
        return SELECTION[self.kind]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "key": self.key}
        if self.kind == "multilabel":
            d["labels"] = self.names
            if self.boolean:
                d["boolean"] = True
        if self.kind == "regression":  # the split's own sd, and the divisor apart when they differ (QA: a
            # constant target recorded train_sd 1 while the run printed sd 0)
            d["train_mean"], d["train_sd"] = self.mean, self.split_sd
            if self.train_sd is not None and self.train_sd != self.sd:
                d["scale"] = self.sd
        return d

    def describe(self) -> str:
        if self.kind == "multilabel":
            return f"target {self.key!r}: multi-label, {len(self.names)} label{'s' * (len(self.names) != 1)} ({_show(self.names)})"
        if self.kind == "regression":
            said = (f"; it holds only the whole values {self.finding}: trained as a number (if it is a yes/no finding, "
                    "the warning says how to train it as binary)" if self.finding else "")
            return (f"target {self.key!r}: regression (training mean {self.mean:.4g}, sd {self.split_sd:.4g}; trained "
                    f"standardised){said}")
        shown = ", ".join(self.names[:20]) + (f", ... and {len(self.names) - 20} more" if len(self.names) > 20 else "")
        return f"{len(self.names)} classes ({shown})"  # 5,000 names made one 40 KB line

    def _value(self, meta: Any) -> Any:
        value = meta.get(self.key) if isinstance(meta, Mapping) else None
        return _as_label_set(value, self.key) if self.boolean else value

    def values(self, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets on ``device``, host mask of labelled rows): class ids (B,) with -1 unlabelled; a
        multi-hot (B, K) float with -1 rows unlabelled; standardised numbers (B,) with NaN unlabelled."""
        if self.kind == "classes":
            return labels_of(batch, device)
        raw = self._raw(batch)
        labelled = self._labelled(raw)
        if self.kind == "multilabel":
            index = {n: i for i, n in enumerate(self.names)}
            y = torch.full((len(batch), self.outputs), -1.0, dtype=torch.float32)  # not the caller's default dtype
            for r, v in enumerate(raw):
                if not _missing(v):
                    y[r] = 0.0
                    for name in _labels_of(v) or ():
                        if name in index:
                            y[r, index[name]] = 1.0
            return y.to(device, non_blocking=True), labelled
        nums = [_number(v) for v in raw]
        y = torch.tensor([math.nan if n is None else (n - self.mean) / self.sd for n in nums], dtype=torch.float32)
        return y.to(device, non_blocking=True), labelled

    def _raw(self, batch: Batch) -> list[Any]:
        """The batch's values of the key, as the metadata holds them (None where a sample has none)."""
        metas = batch[META_FIELD] if META_FIELD in batch else [None] * len(batch)
        return [self._value(m) for m in metas]

    def _labelled(self, raw: Sequence[Any]) -> torch.Tensor:
        """Which raw values are targets: not missing, and numbers for a regression."""
        return torch.tensor([not _missing(v) and (self.kind != "regression" or _number(v) is not None) for v in raw],
                            dtype=torch.bool)

    def labelled(self, batch: Batch) -> torch.Tensor:
        """The host mask of the rows that have this target (read from host metadata: no device read)."""
        if self.kind == "classes":
            has = batch.present.get("label")
            return has if has is not None else torch.zeros(len(batch), dtype=torch.bool)
        return self._labelled(self._raw(batch))  # the mask alone: no targets built

    def loss(self, logits: torch.Tensor, batch: Batch, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss averaged over labelled rows and their count, as device tensors (a batch without
        labels gives a zero loss that still back-propagates)."""
        if self.kind == "classes":
            return masked_loss(logits, batch, y)
        soft, keep = self.mixed(batch, y)
        if self.kind == "multilabel":  # a soft target on a mixed row: BCE with logits takes it as it is
            per_row = F.binary_cross_entropy_with_logits(logits, soft, reduction="none").sum(1)
        else:
            per_row = (logits.squeeze(1) - soft) ** 2
        w = keep.to(per_row.dtype)
        n = w.sum()
        return (per_row * w).sum() / n.clamp(min=1), n

    def mixed(self, batch: Batch, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(training targets, rows in the loss) of a multi-label or regression batch, on ``y``'s device:
        ``y`` with unlabelled entries zeroed, or on a batch a mixing op mixed, ``lam * y + (1 - lam) *
        y[partner]`` (``batch["mix_lam"]``, ``batch.meta["mix_partner"]``); a row is in the loss when it
        and its partner are labelled (an unmixed row is its own partner, lam 1: its target exactly).

        Raises:
            MMDataError: a mixed batch without ``mix_partner`` (a user's mixing op that writes only
                ``label_b`` / ``mix_lam``, which mix class labels).

        Example:
            >>> from mmdata import Sample, collate
            >>> t = Target("regression", "s", [], 0.0, 1.0)
            >>> b = collate([Sample("a", {"json": {"s": 1.0}}), Sample("b", {"json": {"s": 3.0}})])
            >>> b = b.replace(mix_lam=torch.tensor([0.75, 1.0]))
            >>> b.meta["mix_partner"] = torch.tensor([1, 1])
            >>> soft, keep = t.mixed(b, t.values(b, torch.device("cpu"))[0])
            >>> soft.tolist(), keep.tolist()
            ([1.5, 3.0], [True, True])
        """
        from mmdata.augment.mix import MIX_PARTNER, MIXED_BY

        if self.kind == "multilabel":
            labelled = (y >= 0).all(1)
            clean = y.clamp(min=0)
        else:
            labelled = ~torch.isnan(y)
            clean = torch.nan_to_num(y)  # an unlabelled row's NaN would reach the gradient through its zero weight
        if "mix_lam" not in batch:
            return clean, labelled
        partner = batch.meta.get(MIX_PARTNER)
        if partner is None:
            by = batch.meta.get(MIXED_BY) or "a mixing op"
            raise MMDataError(f"{by} mixed this batch for class labels only (label_b / mix_lam, without "
                              f"batch.meta[{MIX_PARTNER!r}], the partner rows): a {self.kind} target ({self.key!r}) "
                              f"cannot be mixed by it; write {MIX_PARTNER} as mmdata's mixup / mixgen do, or drop the op")
        lam = batch["mix_lam"].to(y.device, non_blocking=True)
        idx = partner.to(y.device, non_blocking=True)
        if self.kind == "multilabel":
            lam = lam[:, None]
        return lam * clean + (1 - lam) * clean[idx], labelled & labelled[idx]

    def noisy(self, y: torch.Tensor, keys: Sequence[str], fraction: float | LabelNoise, seed: int) -> torch.Tensor:
        """Targets with label noise (the same every epoch; see the module docstring): a run's
        :class:`LabelNoise` replaces the rows of the keys it planned; a bare ``fraction`` (one batch, no
        split to count) replaces each row with that probability."""
        if isinstance(fraction, LabelNoise):
            return self._planned(y, keys, fraction)
        if fraction <= 0:
            return y
        if self.kind == "classes":
            return apply_label_noise(y, *label_noise_plan(keys, fraction, seed, self.outputs), self.outputs)
        rows = []
        for k in keys:
            rng = derive(seed, 0, k, "label_noise")
            flip = rng.random() < fraction
            rows.append((flip, rng.integers(0, 2, self.outputs) if self.kind == "multilabel" else rng.standard_normal()))
        flip = torch.tensor([f for f, _ in rows], dtype=torch.bool, device=y.device)
        if self.kind == "multilabel":
            new = torch.tensor(np.array([r for _, r in rows], dtype=np.float32), device=y.device)
            return torch.where(flip[:, None] & (y >= 0).all(1, keepdim=True), new, y)
        new = torch.tensor([float(r) for _, r in rows], dtype=y.dtype, device=y.device)
        return torch.where(flip & ~torch.isnan(y), new, y)

    def _planned(self, y: torch.Tensor, keys: Sequence[str], noise: LabelNoise) -> torch.Tensor:
        """``y`` with ``noise``'s replacements of the batch's keys (host values: no device read-back)."""
        new = [noise.replaced.get(k) for k in keys]
        if all(v is None for v in new):
            return y
        flip = torch.tensor([v is not None for v in new], dtype=torch.bool, device=y.device)
        if self.kind == "classes":
            ids = torch.tensor([-1 if v is None else int(v) for v in new], dtype=y.dtype, device=y.device)
            return torch.where(flip & (y >= 0), ids, y)
        if self.kind == "multilabel":
            rows = np.zeros((len(keys), self.outputs), dtype=np.float32)
            for i, v in enumerate(new):
                if v is not None:
                    rows[i] = v
            return torch.where(flip[:, None] & (y >= 0).all(1, keepdim=True), torch.tensor(rows, device=y.device), y)
        vals = torch.tensor([0.0 if v is None else float(v) for v in new], dtype=y.dtype, device=y.device)
        return torch.where(flip & ~torch.isnan(y), vals, y)

    def scores(self, device: torch.device | str, ranking: bool = False, ranked: int | None = None) -> Any:
        """A streaming accumulator of this target's scores (``update(logits, y, labelled)``, ``result()``);
        ``ranking``: classes also give ``auroc`` / ``auprc`` (keeping every row's probabilities) over the first
        ``ranked`` classes (default all: :meth:`mmdata.train.evaluate.Scores.ranking_scores`)."""
        from mmdata.train.evaluate import Scores

        if self.kind == "classes":
            return Scores(self.outputs, device, ranking=ranking, ranked=ranked)
        return _TargetScores(self, device)

    def predictions(self, batch: Batch, logits: torch.Tensor) -> dict[str, list[Any]]:
        """predictions.parquet's target columns of a batch (host lists): multi-label ``labels`` /
        ``pred_labels`` (names) and ``probs``; regression ``target`` / ``pred`` in the target's units
        (the targets as the metadata holds them; null when unlabelled)."""
        raw = self._raw(batch)
        if self.kind == "multilabel":
            probs = torch.sigmoid(logits.double()).cpu()
            return {"labels": [None if _missing(v) else _labels_of(v) for v in raw],
                    "pred_labels": [[n for n, p in zip(self.names, row) if p >= 0.5] for row in probs.tolist()],
                    "probs": probs.tolist()}
        pred = (logits.double().squeeze(1) * self.sd + self.mean).cpu().tolist()
        return {"target": [None if _missing(v) else _number(v) for v in raw], "pred": pred}


class _TargetScores:
    """A multi-label or regression accumulator fed the trainer's standardised targets and raw logits."""

    def __init__(self, target: Target, device: torch.device | str) -> None:
        from mmdata.train.target_scores import MultiLabelScores, RegressionScores

        self.target = target
        self.inner: Any = (MultiLabelScores(target.outputs, device) if target.kind == "multilabel"
                           else RegressionScores(device, fill=target.mean))

    def update(self, logits: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor | None = None) -> None:
        t = self.target
        if t.kind == "multilabel":
            self.inner.update(logits, y, labelled)
        else:  # scored in the target's units
            self.inner.update(logits.squeeze(1).double() * t.sd + t.mean, y.double() * t.sd + t.mean, labelled)

    def merge(self, other: _TargetScores) -> None:
        self.inner.merge(other.inner)

    def result(self) -> dict[str, float]:
        return self.inner.result()

    def per_class(self, names: Sequence[str], absent: float | None = 0.0) -> dict[str, dict[str, float | None]]:
        return self.inner.per_class(names, absent=absent)

    @property
    def labelled(self) -> int:
        return self.inner.labelled

    @property
    def unlabelled(self) -> int:
        return self.inner.unlabelled

    @property
    def nonfinite(self) -> int:
        return self.inner.nonfinite


def _brief(value: Any, at_most: int = 40) -> str:
    """``repr(value)``, shortened past ``at_most`` characters (a 400-digit number), saying how long it is."""
    text = repr(value)
    if len(text) <= at_most:
        return text
    digits = sum(c.isdigit() for c in text)
    return f"{text[:at_most - 10]}… ({f'{digits} digits' if digits > at_most // 2 else f'{len(text)} characters'})"


def _and(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _joined(names: Sequence[str], single: Collection[str]) -> list[tuple[str, str]]:
    """The label names from string cells (``single``) that look like several names joined: by ``|`` / ``;``
    (why ``""``), or by commas (IMDb's "Drama, Comedy"; QA31 D2) with why it looks so — a part that is also
    a label alone, or two or more parts that recur (alone, or as a part of another comma-joined name: every
    film of an IMDb export with two or three genres). A name whose one part recurs ('Crosby, Stills & Nash'
    beside 'Crosby, Stills, Nash & Young') or none ('Washington, D.C.') is one name as written.

    Example:
        >>> _joined(["Crime, Drama", "Drama, Romance", "Washington, D.C.", "Washington"], {"Crime, Drama",
        ...         "Drama, Romance", "Washington, D.C.", "Washington"})
        [('Washington, D.C.', "'Washington' is also a label alone")]
        >>> _joined(["Crime, Drama", "Action, Crime, Drama"], {"Crime, Drama", "Action, Crime, Drama"})[0]
        ('Crime, Drama', "'Crime' and 'Drama' recur in other labels")
    """
    alone = set(names)
    parts = {n: [p for p in (q.strip() for q in n.split(",")) if p] for n in names if n in single and "," in n}
    elsewhere: dict[str, set[str]] = {}  # a part -> the comma-joined names it is a part of
    for n, ps in parts.items():
        for p in ps:
            elsewhere.setdefault(p, set()).add(n)
    out = []
    for n in names:
        if n not in single:
            continue
        if "|" in n or ";" in n:
            out.append((n, ""))
            continue
        ps = parts.get(n, [])
        labels = [repr(p) for p in dict.fromkeys(ps) if p in alone]
        if labels:
            out.append((n, f"{_and(labels)} {'is also a label' if len(labels) == 1 else 'are also labels'} alone"))
            continue
        recur = [repr(p) for p in dict.fromkeys(ps) if elsewhere.get(p, set()) - {n}]
        if len(recur) >= 2:
            out.append((n, f"{_and(recur)} recur in other labels"))
    return out


def _as_list(name: str) -> str:
    """A joined name written as the JSON list that trains one output per part (``rock;pop`` -> ``["rock", "pop"]``):
    the warning's example in the user's own names (QA39 music #5)."""
    import json
    import re

    return json.dumps([p.strip() for p in re.split(r"[;|]" if re.search(r"[;|]", name) else ",", name) if p.strip()],
                      ensure_ascii=False)


def _show(values: Sequence[Any], at_most: int = 20) -> str:
    return ", ".join(repr(v) for v in values[:at_most]) + (f", ... ({len(values)} in all)" if len(values) > at_most else "")


def resolve(data: str, key: str, splits: Mapping[str, str | list[str]], *, on_error: str = "raise",
            progress: bool = False, option: str | None = None) -> tuple[Target, dict[str, dict[str, int]], list[str]]:
    """Read ``key`` from every sample's metadata in the run's splits (``{role: split name(s)}``) and
    settle the target: (Target, ``{role: {samples, labelled, unlabelled}}``, warnings). Every process
    reads the whole splits (under DDP each rank settles the same labels, mean and sd).

    Raises naming the key when no training sample has it (listing the keys the metadata has), and
    naming a sample when values are neither numbers nor label sets, or mix the two (a column of mostly
    numbers: naming the samples whose cells are not numbers). ``option``: how the key was given, for those
    messages (``--target KEY`` unless said, e.g. an ablation's ``trainer.target``)."""
    return settle(data, key, read_values(data, key, splits, on_error=on_error, option=option), option=option)


@dataclass
class Values:
    """What :func:`read_values` read: ``{role: [(sample key, value or None)]}`` in stream order, and
    (up to 1000 of) the metadata keys seen, for an error about a key no sample has."""

    by_role: dict[str, list[tuple[str, Any]]]
    seen_keys: set[str]

    def labelled(self, role: str) -> list[str]:
        """The sample keys of ``role`` that hold a value (missing ones, as :func:`resolve` reads them, not)."""
        return [k for k, v in self.by_role.get(role, []) if not _missing(v)]


def class_ids(target: Target, read: Values, role: str = "train") -> dict[str, int]:
    """The class of each labelled ``role`` sample under a target holding one label per sample: a label
    name (or a one-label list) is its place in ``target.names``, a boolean target's value 0 (false) or
    1 (true). Every role's values are checked: one sample with several labels makes the target multi-label.

    Raises:
        MMDataError: a numeric (regression) target, or a sample holding no label or several, named with
            its role (``'...' is a multi-label target: val sample 'k' holds 2 labels ('a', 'b')``).

    Example:
        >>> t = Target("multilabel", "speaker", ["ann", "bob"])
        >>> class_ids(t, Values({"train": [("a", "bob"), ("b", ["ann"]), ("c", None)]}, set()))
        {'a': 1, 'b': 0}
    """
    if target.kind == "regression":
        raise MMDataError(f"{target.key!r} is a numeric target (regression): numbers have no classes")
    index = {n: i for i, n in enumerate(target.names)}
    out: dict[str, int] = {}
    for r, vals in read.by_role.items():
        for key, value in vals:
            if _missing(value):
                continue
            if target.boolean:
                cls = int(bool(_flag(value)))
            else:
                names = list(dict.fromkeys(_labels_of(value) or ()))
                if len(names) != 1:
                    who = f"{'training' if r == 'train' else r} sample {key!r}"
                    held = f"{len(names)} labels ({_show(names, 5)})" if names else "no label"
                    raise MMDataError(f"{target.key!r} is a multi-label target: {who} holds {held}")
                cls = index.setdefault(names[0], len(index))  # settle() lists every name; a hand-built Target may not
            if r == role:
                out[key] = cls
    return out


def _given(key: str, option: str | None) -> str:
    """How a message names where the target key came from: ``--target genre`` unless ``option`` says."""
    return option or f"--target {key}"


#: a manifest's columns that are fields of their own: ``mmdata shard --meta`` refuses them as metadata
SHARD_FIELDS = ("label", "image", "audio", "text", "key", "split")


def _no_such_key(data: str, key: str, option: str | None, has: str) -> MMDataError:
    """The error for a target key no training sample holds, with the way to shard it as metadata: a
    reserved column name (``--meta label`` is refused by ``mmdata shard``, QA33) is renamed first.

    Example:
        >>> print(_no_such_key("ds", "label", None, "the dataset has no metadata"))  # doctest: +ELLIPSIS
        ds: no training sample has the metadata key 'label' ... rename the manifest's column 'label' (e.g. to 'score'), shard with --meta score, then train with --target score)
    """
    if key in SHARD_FIELDS:
        how = (f"'{key}' is a field of its own, which mmdata shard does not take as metadata (--meta {key} is refused): "
               f"rename the manifest's column '{key}' (e.g. to 'score'), shard with --meta score, then train with "
               "--target score")
    else:
        how = f"mmdata shard ... --meta {key}; mmdata.shard(..., meta=[{key!r}])"
    return MMDataError(f"{data}: no training sample has the metadata key {key!r} ({_given(key, option)}); {has}. The "
                       f"samples' metadata is their .json member — a manifest's --meta columns ({how})")


def several_columns(data: str, key: str, columns: Collection[str], option: str | None = None) -> MMDataError | None:
    """The error for a target key that joins several names with commas (``--target findA,findB``, a clinical
    finding per column) and is no column itself, where at least one part is a metadata column of
    ``columns`` or close to one (a case or spelling slip: ``finda``); None otherwise. A target is one column:
    the message says how to combine several into one multi-label column and names the parts that are no
    column, each with its closest column (QA31 D5: the key was taken as a misspelling, "did you mean
    'findB'?"; its review: 'findA,findC' still was, and 'finda,findb' was told to re-shard that column).

    Example:
        >>> print(several_columns("ds", "findA,findB", ["findA", "findB"]))  # doctest: +ELLIPSIS
        ds: --target findA,findB: 'findA,findB' names 2 metadata columns (findA, findB); a target is one column...
        >>> print(several_columns("ds", "findA,findC", ["findA", "findB"]))  # doctest: +ELLIPSIS
        ds: --target findA,findC: 'findA,findC' joins 2 names with commas (findA, findC); a target is one column, and...
        >>> several_columns("ds", "findA", ["findA", "findB"]) is None
        True
    """
    import difflib

    parts = [p.strip() for p in key.split(",")]
    if len(parts) < 2 or key in columns or not all(parts):
        return None
    cols = list(columns)
    folded = {c.casefold(): c for c in cols}

    def closest(part: str) -> str | None:
        return folded.get(part.casefold()) or next(iter(difflib.get_close_matches(part, cols, n=1)), None)

    near = {p: closest(p) for p in parts if p not in columns}
    if not any(p in columns or near[p] for p in parts):  # nothing like a column: the caller's "no such key" says what is
        return None
    first = next((p if p in columns else near[p] for p in parts if p in columns or near[p]), parts[0])
    alone = f"--target {first}" if option is None or option.startswith("--") else f"{option}: {first}"
    if near:
        shown = ", ".join(cols[:8]) + (f", ... ({len(cols)} in all)" if len(cols) > 8 else "")
        unknown = _and([f"{p!r}" + (f" (did you mean {near[p]!r}?)" if near[p] else "") for p in near])
        what = (f"joins {len(parts)} names with commas ({', '.join(parts)}); a target is one column, and {unknown} "
                f"{'is not a metadata column' if len(near) == 1 else 'are not metadata columns'} of {data} "
                f"(its columns: {shown}).")
    else:
        what = f"names {len(parts)} metadata columns ({', '.join(parts)}); a target is one column."
    return MMDataError(
        f"{data}: {_given(key, option)}: {key!r} {what} For one multi-label target of several 0/1 or true/false columns "
        "(one output each), write a column that lists, per sample, the names of the columns that are on (a JSON list in "
        f'a CSV cell: [\"{first}\"], or [] when none is) and shard it with --meta. A column alone trains as a one-label '
        "(binary) target when it holds true / false, and as a number (regression) when it holds numbers, even only "
        f"0 / 1 or CheXpert's 1 / 0 / -1. To train such a column alone as a binary target ({alone}), write 1 as true "
        "and 0 as false, and -1 as a blank cell (the sample is unlabelled for it) or as true or false, as you decide; "
        "then shard again with --meta.")


def _finding_values(numbers: Sequence[float | None]) -> str:
    """``"-1, 0, 1"`` or ``"0 and 1"`` when those are a numeric column's only values (0 and 1 both among them),
    else ``""``."""
    seen = {n for n in numbers if n is not None}
    if not {0.0, 1.0} <= seen or not seen <= {-1.0, 0.0, 1.0}:
        return ""
    return "-1, 0, 1" if -1.0 in seen else "0 and 1"


def _finding_warning(key: str, values: str) -> str | None:
    """The warning for a numeric target whose values (``values``, as :func:`_finding_values` says them) are only
    0 and 1, or -1, 0 and 1, as ints or floats (``1.0``): it trains as a regression, as every numeric column
    does (a run's kind follows the values' type, not a guess at their meaning). Such a column may be a yes/no
    finding (CheXpert's 1 / 0 / -1: positive / negative / uncertain) or a true number (a sentiment polarity, a
    small count), so the message names the values and, for the first case only, how to train it as a binary
    target instead — true / false text, with -1 made blank (U-ignore), true (U-ones) or false (U-zeros) — and
    several such columns as one multi-label target (QA40 medical #1). None for any other column.

    Example:
        >>> print(_finding_warning("Edema", "-1, 0, 1"))  # doctest: +ELLIPSIS
        the target 'Edema' holds only the whole values -1, 0, 1: it trains as a number (regression...; -1 is a value below 0)...
        >>> _finding_warning("age", "") is None
        True
    """
    if not values:
        return None
    uncertain = values.startswith("-1")
    what = ("as CheXpert's 1 / 0 / -1: positive / negative / uncertain" if uncertain else "1 yes, 0 no")
    how_minus = (" and -1 blank (CheXpert's U-ignore: the sample is unlabelled for it), true (U-ones) or false "
                 "(U-zeros)" if uncertain else "")
    taken = "; -1 is a value below 0" if uncertain else ""
    return (f"the target {key!r} holds only the whole values {values}: it trains as a number (regression: "
            f"squared error, scored by MAE / RMSE / R²{taken}); blank or NA cells are unlabelled. If it is a "
            f"number (a score, a count), nothing to do. If it is a yes/no finding ({what}), train it as a binary "
            f"target (one sigmoid output named {key!r}, scored by F1 / mAP): write the column as true / false "
            f"— 1 true, 0 false{how_minus} — and shard again with --meta {key}; several such findings as one "
            "multi-label target: a column listing, per sample, the findings that are true (a JSON list in a CSV "
            'cell, [] when none is)' + (", where an uncertain finding is on (U-ones) or off (U-zeros)" if uncertain
                                        else ""))


def _check_has_metadata(data: str, key: str, option: str | None) -> None:
    """Raise naming the key when the card lists the dataset's fields and no ``.json`` one: reading the
    metadata would otherwise fail in the reader as an unknown modality ``json`` the user never asked for
    (QA23). A card that lists no fields, or one that cannot be read, is left to the reader."""
    from mmdata.shards.index import dataset_fields, load_card

    try:
        fields = dataset_fields(load_card(data))
    except (MMDataError, OSError):
        return
    if fields and META_FIELD not in fields:
        raise _no_such_key(data, key, option, f"the dataset has no metadata (no .{META_FIELD} member)")


def read_values(data: str, key: str, splits: Mapping[str, str | list[str]], *, on_error: str = "raise",
                option: str | None = None) -> Values:
    """Read ``key`` from every sample's metadata in the run's splits (one pass, the ``.json`` members only);
    :func:`settle` makes the target of them. A dataset with no metadata at all is refused naming ``key``
    and how it was given (``option``, see :func:`resolve`)."""
    import mmdata

    _check_has_metadata(data, key, option)
    values: dict[str, list[tuple[str, Any]]] = {}
    seen_keys: set[str] = set()
    for role, split in splits.items():
        ds = mmdata.open_dataset(data, split=split, modalities=[META_FIELD], on_error=on_error, partition=False)
        vals = []
        for smp in ds:
            meta = smp.fields.get(META_FIELD)
            if isinstance(meta, Mapping) and len(seen_keys) < 1000:
                seen_keys.update(str(k) for k in meta)
            vals.append((smp.key, meta.get(key) if isinstance(meta, Mapping) else None))
        values[role] = vals
    return Values(values, seen_keys)


def settle(data: str, key: str, read: Values, *, option: str | None = None, trained_on: Collection[str] | None = None
           ) -> tuple[Target, dict[str, dict[str, int]], list[str]]:
    """The target, counts and warnings of :func:`resolve` from values already read (:func:`read_values`);
    ``option``: how the key was given (see :func:`resolve`). ``trained_on``: the training samples whose
    labels the run trains on (``--label-fraction``'s subset; None: every one): a regression target's mean /
    sd and the warnings about training labels come from them alone (QA31 D3: the hidden labels' mean and sd
    standardised the target), the kind, the label names and the counts from every sample read."""
    values, seen_keys = read.by_role, read.seen_keys
    counts: dict[str, dict[str, int]] = {}
    for role, vals in values.items():
        lab = sum(not _missing(v) for _, v in vals)
        counts[role] = {"samples": len(vals), "labelled": lab, "unlabelled": len(vals) - lab}
    train = [(k, v) for k, v in values.get("train", []) if not _missing(v)]
    if not train:
        if key == "label":
            raise MMDataError(f"{data}: --target label: 'label' is the class label the trainer predicts without "
                              "--target; drop the option (a metadata column named label: shard it under another name)")
        has = f"the metadata has {_show(sorted(seen_keys))}" if seen_keys else "no sample has metadata"
        raise several_columns(data, key, seen_keys, option) or _no_such_key(data, key, option, has)
    fit = train if trained_on is None else [(k, v) for k, v in train if k in trained_on]
    if not fit:
        raise MMDataError(f"{data}: none of the {len(train)} training samples that hold the target {key!r} is among "
                          "those whose labels the run keeps (--label-fraction): give a larger fraction (or another --seed)")
    split = "the training split" if trained_on is None else "the training labels kept (--label-fraction)"
    every = [(k, v) for vals in values.values() for k, v in vals if not _missing(v)]
    flags = [_flag(v) for _, v in every]
    if all(f is not None for f in flags):  # every value true / false: a binary target, one label named key
        if not any(flags):
            raise MMDataError(f"{data}: the target {key!r} is false in every sample: nothing to learn")
        never = [] if any(_flag(v) for _, v in fit) else [
            f"the target {key!r} is never true in {split}: the model cannot learn it"]
        return Target("multilabel", key, [key], boolean=True), counts, never
    nums = [_number(v) for _, v in every]
    if all(n is not None for n in nums):
        # every split (QA31 D1): '1e999' in a val / test cell, read as inf, was counted labelled and left out of the scores
        bad = [(role, k, v) for role, vals in values.items() for k, v in vals
               if not _missing(v) and not math.isfinite(_number(v) or 0.0)]
        if bad:
            said = [f"{'training' if role == 'train' else role} sample {k!r} is {_brief(v)}" for role, k, v in bad[:5]]
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise MMDataError(f"{data}: the target {key!r} of {'; '.join(said)}{more}: expected a finite number "
                              f"(blank the cell or write NA to make the sample unlabelled)")
        tr = np.array([_number(v) for _, v in fit], dtype=np.float64)
        sd = float(tr.std())
        warnings = []
        measured = None
        if len(tr) < 2 or sd == 0:
            warnings.append(f"the target {key!r} has one value over {split} ({float(tr[0]):g}): nothing to learn")
            measured, sd = sd, 1.0  # standardised by 1; metrics.json keeps the split's 0 as train_sd, 1 as scale
        if any(isinstance(v, str) for _, v in every):
            warnings.append(f"the target {key!r} holds numbers written as text (a CSV column with a blank or NA cell): "
                            f"read as numbers (regression); {', '.join(sorted(MISSING_TEXT - {''}))} and blanks are "
                            "unlabelled")
        shown = _finding_values(nums)
        finding = _finding_warning(key, shown)
        if finding:
            warnings.append(finding)
        return (Target("regression", key, [], float(tr.mean()), sd, train_sd=measured, finding=shown), counts,
                warnings)
    # cells that are neither numbers nor label lists (QA: a column of digit labels, some cells JSON lists, was
    # refused naming its lists): mostly numbers beside them is a numeric column with bad cells (a '?' marker)
    odd = [(k, v) for (k, v), n in zip(every, nums) if n is None and not _is_list(v)]
    numbers = sum(n is not None for n in nums)
    if odd and 2 * numbers >= len(every):
        shown = ", ".join(f"sample {k!r} {v!r}" for k, v in odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise MMDataError(f"{data}: the target {key!r} mixes kinds: {numbers} of {len(every)} labelled "
                          f"samples hold numbers, but {shown} {'do' if len(odd) > 1 else 'does'} not: expected numbers "
                          "(regression) or label lists / names (multi-label) in every sample. A cell that marks a missing "
                          "value: leave it blank or write NA (also null / none / nan) in the manifest and shard again "
                          "(the sample is then unlabelled); label names that are digits: write each cell as a JSON "
                          'list (["1"])')
    numeric = [(k, v) for (k, v), n in zip(every, nums) if n is not None and not isinstance(v, str)]
    if numeric:  # numbers beside values that are not: which is the odd one out is the user's to say
        other = next((k, v) for (k, v), n in zip(every, nums) if n is None)
        raise MMDataError(f"{data}: the target {key!r} mixes kinds: sample {numeric[0][0]!r} holds the number "
                          f"{numeric[0][1]!r}, sample {other[0]!r} {other[1]!r}: expected numbers (regression) or label "
                          "lists / names (multi-label) in every sample")
    sets = [_labels_of(v) for _, v in every]
    bad = next(((k, v) for (k, v), st in zip(every, sets) if st is None), None)
    if bad is not None:
        raise MMDataError(f"{data}: the target {key!r} of sample {bad[0]!r} is {bad[1]!r} ({type(bad[1]).__name__}): "
                          "expected a number (regression) or a label list / one label name (multi-label)")
    names = sorted({n for st in sets for n in st or ()})
    if not names:
        raise MMDataError(f"{data}: the target {key!r} holds only empty label lists")
    in_train = {n for _, v in fit for n in _labels_of(v) or ()}
    warnings = []
    unseen = [n for n in names if n not in in_train]
    if unseen:
        warnings.append(f"label{'s' * (len(unseen) > 1)} of the target {key!r} never in {split}: "
                        + _show(unseen, 10) + (" (the model cannot learn them; their scores count as misses)"
                                               if len(unseen) > 1 else " (the model cannot learn it; its scores count as misses)"))
    # only names from a string cell: an item of a list is one label as written (a CVAT label 'wheel|tyre')
    single = {n for (_, v), st in zip(every, sets) if isinstance(v, str) and not _is_list(v) for n in st or ()}
    joined = _joined(names, single)
    if joined:  # a comma-joined name says why it was taken for several: a name of its own that has a comma can be told
        shown = ("; " if any(why for _, why in joined) else ", ").join(f"{n!r}: {why}" if why else repr(n)
                                                                         for n, why in joined[:3])
        warnings.append(f"label{'s' * (len(joined) > 1)} of the target {key!r} join several names ({shown}"
                        f"{f'; ... ({len(joined)} in all)' if len(joined) > 3 else ''}): each combination is one label "
                        "(where it is one name, ignore this); write each sample's labels as a list (JSON "
                        f"{_as_list(joined[0][0])} in a CSV cell, or a list in JSONL / Parquet) to train one output "
                        "per name")
    spellings: dict[str, list[str]] = {}
    for n in names:
        spellings.setdefault(n.casefold(), []).append(n)
    cased = [" / ".join(map(repr, v)) for v in spellings.values() if len(v) > 1]
    if cased:  # kept apart (merging would be a guess at which spelling is meant), but said
        warnings.append(f"label names of the target {key!r} that differ only in case are different labels: "
                        f"{'; '.join(cased[:5])}{f' and {len(cased) - 5} more' if len(cased) > 5 else ''} (one output "
                        "each); write each name one way in the metadata to train one output for it")
    return Target("multilabel", key, names), counts, warnings
