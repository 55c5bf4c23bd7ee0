"""Class- and modality-pattern-balanced sampling in the streaming reader, plus stratified subsampling.

Group sizes come from ``index.parquet`` (no pass over the data). Per sample, with ``n_g`` the size
of its group, ``N`` the split size:

* ``under``: keep with probability ``n_min / n_g`` (every group ~ the smallest).
* ``over``: repeat ``n_max / n_g`` times (integer part + a Bernoulli remainder).
* ``repeat_factor`` (LVIS): repeat ``max(1, sqrt(threshold / (n_g / N)))`` times, stochastic rounding.
* ``fraction`` (applied first): keep with probability ``fraction`` (global, or per class name / id) —
  drawn with epoch 0 so the subset is the *same* every epoch (a small-data experiment).

``by: label`` groups by class; ``by: modalities`` by the presence pattern (``audio+image+text``).
Unlabelled samples are not a class: with ``by: label`` they keep rate 1 (each appears once per epoch,
as without balancing) and are left out of the counts, so they never set the target of ``under`` /
``over`` nor the frequencies of ``repeat_factor`` (``N`` counts labelled samples only). ``fraction``
still applies to them when it is a single number.
Decisions come from ``derive(seed, epoch, key, "balance")``: deterministic, independent of workers.
Repeat *i* >= 1 of a sample gets key ``<key>#r<i>`` (so its augmentation params differ) and
``meta["repeat"] = i``; every copy carries ``meta["copies"]``, the sample's number of copies this epoch.

Resume: the loader's state says, per reader, how many copies of the sample at its saved position were
already handed out (``Loader.state_dict()["copies"]``); the resumed pass yields only the rest of them
(:class:`Balanced` ``resume``), then goes on with the next sample.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from mmdata.augment.recipe import validate_balance
from mmdata.errors import ShardError
from mmdata.rng import derive
from mmdata.shards.index import UNLABELLED_GROUP
from mmdata.types import Sample


#: the group of the samples without a label (``by: label``) or without any modality (``by: modalities``)
NONE = UNLABELLED_GROUP


def group_of(label: int | None, modalities: list[str], by: str) -> str:
    if by == "label":
        return NONE if label is None else str(label)
    return "+".join(sorted(m for m in modalities if m != "label")) or NONE


def index_groups(path: str | Path, split: str | Sequence[str], by: str, storage_options: dict[str, Any] | None = None,
                 keys: Collection[str] | None = None) -> dict[str, str]:
    """key -> group for one split (or the union of a list of splits), from index.parquet
    (``storage_options``: of a URL ``path``); only the samples ``keys`` selects when given."""
    from mmdata.shards import index as idx

    splits = {split} if isinstance(split, str) else set(split)
    t = idx.load_index(path, storage_options=storage_options).select(["key", "split", "label", "modalities"]).to_pydict()
    return {k: group_of(lab, mods, by) for k, sp, lab, mods in zip(t["key"], t["split"], t["label"], t["modalities"])
            if sp in splits and (keys is None or k in keys)}


class BalancePlan:
    """Expected repeats per group and the per-sample decision rule.

    With ``by: label`` the unlabelled samples (group ``"(none)"``) keep rate 1 and do not count
    towards the class sizes that set the targets.

    Example:
        >>> groups = {"a": "0", "b": "0", "c": "0", "d": "1", "e": "(none)"}  # e: unlabelled
        >>> plan = BalancePlan(groups, {"by": "label", "mode": "over"}, 0)
        >>> plan.rate["1"], plan.rate["0"], plan.rate["(none)"]
        (3.0, 1.0, 1.0)
    """

    def __init__(self, groups: Mapping[str, str], config: Mapping[str, Any], seed: int,
                 label_names: list[str] | None = None) -> None:
        cfg = validate_balance(dict(config)) or {}
        self.cfg = cfg
        self.seed = int(cfg.get("seed", seed))
        self.groups = dict(groups)
        self.label_names = label_names
        counts = Counter(self.groups.values())
        self.counts = dict(counts)
        # unlabelled samples carry no loss: not a class to balance, nor a size to balance the classes to
        classes = {g: c for g, c in counts.items() if not (cfg.get("by", "label") == "label" and g == NONE)}
        n = sum(classes.values()) or 1
        mode = cfg.get("mode", "none")
        self.rate: dict[str, float] = dict.fromkeys(counts, 1.0)
        for g, c in classes.items():
            if mode == "under":
                self.rate[g] = min(classes.values()) / c
            elif mode == "over":
                self.rate[g] = max(classes.values()) / c
            elif mode == "repeat_factor":
                self.rate[g] = max(1.0, math.sqrt(cfg["threshold"] / (c / n)))

    def _fraction(self, group: str) -> float:
        frac = self.cfg.get("fraction")
        if frac is None:
            return 1.0
        if isinstance(frac, float):
            return frac
        if group in frac:
            return frac[group]
        if self.label_names and group.isdigit() and int(group) < len(self.label_names):
            return frac.get(self.label_names[int(group)], 1.0)
        return 1.0

    def repeats(self, key: str, epoch: int) -> int:
        """How many times sample ``key`` appears this epoch (0 = dropped)."""
        group = self.groups.get(key)
        if group is None:
            raise ShardError(f"balance: sample {key!r} is not in index.parquet for this split")
        if self.cfg.get("fraction") is not None and derive(self.seed, 0, key, "fraction").random() >= self._fraction(group):
            return 0
        r = self.rate[group]
        base = int(math.floor(r))
        return base + int(derive(self.seed, epoch, key, "balance").random() < r - base)


class Balanced(IterableDataset):  # type: ignore[type-arg]
    """Wrap a sample stream: drop or repeat samples per :class:`BalancePlan`.

    ``resume``: reader -> (position, copies already yielded) of a sample whose copies were cut by a
    ``state_dict()`` mid-sample; the first pass yields only that sample's remaining copies.

    Example:
        >>> from mmdata.types import Sample
        >>> plan = BalancePlan({"a": "0", "b": "0", "c": "1"}, {"by": "label", "mode": "over"}, 0)
        >>> src = [Sample(k, {}, None, {"reader": 0, "position": i}) for i, k in enumerate("abc")]
        >>> [s.key for s in Balanced(src, plan)]
        ['a', 'b', 'c', 'c#r1']
        >>> [s.key for s in Balanced(src[2:], plan, resume={0: (2, 1)})]   # 'c' was handed out already
        ['c#r1']
    """

    def __init__(self, source: Any, plan: BalancePlan, resume: Mapping[int, tuple[int, int]] | None = None) -> None:
        self.source = source
        self.plan = plan
        self.resume = {int(r): (int(p), int(c)) for r, (p, c) in (resume or {}).items()}

    @property
    def epoch(self) -> int:
        return int(getattr(self.source, "epoch", 0))

    def __iter__(self) -> Iterator[Sample]:
        epoch = self.epoch
        pending = dict(self.resume)  # once per reader: a later epoch's sample at that position is whole again
        for s in self.source:
            k = self.plan.repeats(s.key, epoch)
            first = 0
            rid = s.meta.get("reader")
            if rid in pending and pending[rid][0] == s.meta.get("position"):
                first = pending.pop(rid)[1]
            for i in range(first, k):
                if i == 0:
                    yield replace(s, meta={**s.meta, "copies": k})
                else:
                    yield replace(s, key=f"{s.key}#r{i}", meta={**s.meta, "repeat": i, "copies": k})
