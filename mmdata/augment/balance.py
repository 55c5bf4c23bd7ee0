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
Repeat *i* >= 1 of a sample gets key ``<key>#r<i>`` (so its augmentation params differ),
``meta["copy"] = i`` and ``meta["sample_copies"]``, the sample's number of copies this epoch.

Rates come from the samples ``fraction`` keeps (its draw is the same every epoch, so the kept counts
are known up front): ``over`` brings every kept class to the largest kept class, ``under`` to the
smallest, ``repeat_factor`` reads the kept frequencies. A class that ``fraction`` empties, an
``under`` whose smallest class keeps a small share of the split, and an ``over`` that repeats a class
more than :data:`REPEAT_NOTE` times are warned about once, when the plan is made (naming the class).

Spread: a sample's copies are not handed out in a row (whole batches of one sample). :class:`Balanced`
reads the stream in blocks of :data:`SPREAD` positions of a reader and, when a block holds a repeat,
hands out its rows in an order drawn from ``derive(seed, epoch, <first key of the block>,
"balance-spread")``: the same for any ``num_workers``, resume point or rank split (each reader's
blocks are its own); the epoch's rows (the multiset) do not change. Memory: a block of decoded samples
(a plan that cannot repeat — `under`, `fraction` alone — reads sample by sample, in the reader's order). Copies
spread within a block only: at an imbalance of a few hundred to one a batch still holds many copies of one sample.

Resume: the rows of a shuffled block carry the loader's cursor: ``meta["position"]`` is the block's
first position (its last one on the block's last row), ``meta["repeat"]`` how many of the block's
rows came before this one and ``meta["copies"]`` the block's rows — so the loader's state
(``Loader.state_dict()["copies"]``) says how many rows of the block at the reader's position were
already handed out, and the resumed pass (:class:`Balanced` ``resume``) re-reads that block and yields
only the rest of them. A block without repeats keeps each sample's own position (``copies`` 1).
"""

from __future__ import annotations

import math
import warnings
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

#: positions of a reader's stream per block whose rows :class:`Balanced` shuffles (a balanced sample's
#: copies spread over its block); the block's decoded samples are held meanwhile
SPREAD = 256
#: ``under`` keeping less than this share of the split's samples per epoch is warned about
UNDER_NOTE = 0.25
#: ``over`` repeating a class more than this many times per epoch is noted
REPEAT_NOTE = 50


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
        self.counts = dict(Counter(self.groups.values()))
        by_label = cfg.get("by", "label") == "label"
        # fraction first: its draw is the same every epoch, so the rates come from what it keeps (QA42
        # longtail F1: from the counts before it, a per-class fraction inverted the imbalance)
        kept = Counter(g for k, g in self.groups.items() if self._kept(k, g))
        self.kept_counts = dict(kept)
        # unlabelled samples carry no loss: not a class to balance, nor a size to balance the classes to
        classes = {g: c for g, c in kept.items() if not (by_label and g == NONE)}
        n = sum(classes.values()) or 1
        mode = cfg.get("mode", "none")
        self.rate: dict[str, float] = dict.fromkeys(self.counts, 1.0)
        for g, c in classes.items():
            if mode == "under":
                self.rate[g] = min(classes.values()) / c
            elif mode == "over":
                self.rate[g] = max(classes.values()) / c
            elif mode == "repeat_factor":
                self.rate[g] = max(1.0, math.sqrt(cfg["threshold"] / (c / n)))
        self._warn(classes, mode, by_label)

    def name(self, group: str) -> str:
        """A group as users know it: the class name (``'cls11'``) where the card names it, else the group."""
        if self.label_names and group.isdigit() and int(group) < len(self.label_names):
            return self.label_names[int(group)]
        return group

    def _kept(self, key: str, group: str) -> bool:
        """Whether ``fraction`` keeps ``key`` (drawn with epoch 0: the same subset every epoch)."""
        return self.cfg.get("fraction") is None or derive(self.seed, 0, key, "fraction").random() < self._fraction(group)

    def expected_rows(self) -> float:
        """Rows one epoch hands out, expected (the kept samples times their group's rate)."""
        return sum(c * self.rate.get(g, 1.0) for g, c in self.kept_counts.items())

    def _warn(self, classes: Mapping[str, int], mode: str, by_label: bool) -> None:
        """Say once, when the plan is made, what the user would not see in the stream (QA42 longtail F1, F3)."""
        what = "class" if by_label else "pattern"
        emptied = sorted((g for g, c in self.counts.items() if g not in self.kept_counts and not (by_label and g == NONE)),
                         key=lambda g: (len(g), g))
        if emptied and self.cfg.get("fraction") is not None:
            shown = ", ".join(repr(self.name(g)) for g in emptied[:8]) + (f" and {len(emptied) - 8} more" if len(emptied) > 8 else "")
            warnings.warn(f"balance fraction: the {what}{'es' if what == 'class' and len(emptied) > 1 else ''} "
                          f"{shown} keep{'s' if len(emptied) == 1 else ''} no training sample "
                          f"({', '.join(str(self.counts[g]) for g in emptied[:8])} before the fraction): "
                          f"{'it is' if len(emptied) == 1 else 'they are'} not trained on; raise fraction for "
                          f"{'it' if len(emptied) == 1 else 'them'}", UserWarning, stacklevel=4)
        if not classes:
            return
        total = sum(self.kept_counts.values())
        if mode == "under":
            smallest = min(classes, key=lambda g: (classes[g], g))
            rows = self.expected_rows()
            if total and rows < UNDER_NOTE * total:
                c = classes[smallest]
                warnings.warn(f"balance under: the smallest {what} {self.name(smallest)!r} has {c} training "
                              f"sample{'s' if c != 1 else ''}, so each epoch keeps ~{rows:.0f} of {total} samples "
                              f"({100 * rows / total:.0f}%); use mode over or repeat_factor, or leave that {what} out",
                              UserWarning, stacklevel=4)
        elif mode in ("over", "repeat_factor"):
            most = max(classes, key=lambda g: (self.rate[g], g))
            if self.rate[most] > REPEAT_NOTE:
                c = classes[most]
                warnings.warn(f"balance {mode}: the {what} {self.name(most)!r} has {c} training sample"
                              f"{'s' if c != 1 else ''}, each repeated ~{self.rate[most]:.0f}x per epoch (the same "
                              "images and clips, augmented anew): a model can learn them by heart, and as copies "
                              f"are spread only within blocks of {SPREAD} positions a batch can hold many copies "
                              "of one sample; cap it (repeat_factor's threshold) or add data to that "
                              f"{what}", UserWarning, stacklevel=4)

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
        if not self._kept(key, group):
            return 0
        r = self.rate[group]
        base = int(math.floor(r))
        return base + int(derive(self.seed, epoch, key, "balance").random() < r - base)


class Balanced(IterableDataset):  # type: ignore[type-arg]
    """Wrap a sample stream: drop or repeat samples per :class:`BalancePlan`, a block's rows shuffled
    where it holds repeats (so a sample's copies do not fill batches of their own).

    ``resume``: reader -> (position, rows already yielded) of the block at that position whose rows a
    ``state_dict()`` cut; the first pass yields only that block's remaining rows. ``spread``: positions
    per block (default :data:`SPREAD`).

    Example:
        >>> from mmdata.types import Sample
        >>> plan = BalancePlan({"a": "0", "b": "0", "c": "1"}, {"by": "label", "mode": "over"}, 0)
        >>> src = [Sample(k, {}, None, {"reader": 0, "position": i}) for i, k in enumerate("abc")]
        >>> rows = [s.key for s in Balanced(src, plan)]
        >>> sorted(rows)
        ['a', 'b', 'c', 'c#r1']
        >>> [s.key for s in Balanced(src, plan, resume={0: (0, 3)})] == rows[3:]   # 3 rows handed out already
        True
    """

    def __init__(self, source: Any, plan: BalancePlan, resume: Mapping[int, tuple[int, int]] | None = None,
                 spread: int | None = None) -> None:
        self.source = source
        self.plan = plan
        self.resume = {int(r): (int(p), int(c)) for r, (p, c) in (resume or {}).items()}
        self.spread = max(1, int(SPREAD if spread is None else spread))
        if max(plan.rate.values(), default=1.0) <= 1.0:  # nothing can repeat (under, fraction alone): no block to
            self.spread = 1  # hold in memory, each sample its own position and the reader's order (QA42 review)

    @property
    def epoch(self) -> int:
        return int(getattr(self.source, "epoch", 0))

    def __iter__(self) -> Iterator[Sample]:
        epoch = self.epoch
        pending = dict(self.resume)  # once per reader: a later epoch's block at that position is whole again
        block: list[Sample] = []
        where: tuple[Any, int] | None = None  # (reader, block number) of the block being read
        last = -1
        for i, s in enumerate(self.source):
            pos = int(s.meta.get("position", i))
            here = (s.meta.get("reader"), pos // self.spread)
            if block and (here != where or pos <= last):  # another block, reader or pass (positions restart)
                yield from self._rows(block, epoch, pending)
                block = []
            where, last = here, pos
            block.append(s)
        if block:
            yield from self._rows(block, epoch, pending)

    def _rows(self, block: list[Sample], epoch: int, pending: dict[int, tuple[int, int]]) -> Iterator[Sample]:
        """The block's rows: each sample's copies, shuffled together when there is a repeat."""
        rows = [(s, i, k) for s in block for k in [self.plan.repeats(s.key, epoch)] for i in range(k)]
        first_pos = int(block[0].meta.get("position", 0))
        rid = block[0].meta.get("reader")
        skip = 0
        if rid in pending and pending[rid][0] == first_pos:
            skip = pending.pop(rid)[1]
        if all(k <= 1 for _, _, k in rows):  # nothing repeated: the reader's order, each sample its own cursor
            for s, _, _ in rows[skip:]:
                yield replace(s, meta={**s.meta, "copies": 1, "sample_copies": 1})
            return
        order = derive(self.plan.seed, epoch, block[0].key, "balance-spread").permutation(len(rows)).tolist()
        n = len(rows)
        first = block[0].meta
        final = block[-1].meta
        for j in range(skip, n):
            s, i, k = rows[order[j]]
            end = j == n - 1
            # the cursor: the block's start (its end on the last row), and how many of its rows came before;
            # the losses counted before that place (on_error="skip"), as a resumed reader counts them
            meta = {**s.meta, "position": int(final.get("position", 0)) if end else first_pos, "repeat": j,
                    "copies": n, "copy": i, "sample_copies": k}
            meta.pop("skipped", None)
            record = (final if end else first).get("skipped")
            if record:
                meta["skipped"] = record
            yield replace(s, key=f"{s.key}#r{i}" if i else s.key, meta=meta)
