"""``mmdata.blend``: several dataset folders read as one dataset, each a set number of times per epoch.

What Energon calls an epochized blend and webdataset / Lhotse users build with ``RandomMix`` / ``mux``,
with this reader's guarantees kept:

* **Weights are passes per epoch** (not shares of the mix). ``weights={"mine": 2, "public": 0.5}``:
  every epoch reads all of ``mine`` twice (the dataset's epochs ``2e`` and ``2e + 1``, each its own
  shuffle; the second pass's keys get ``#r1``, so its augmentation draws are its own) and half of
  ``public``: blend epoch ``e`` reads ``[e * w, (e + 1) * w)`` of the dataset's stream of epochs, so
  epoch 0 reads the first half of its epoch 0 and epoch 1 the second half — every sample once every two
  epochs, whatever the number of readers (each reader's share is cut at the same fractions, rounded
  half up, so consecutive epochs meet without a gap or an overlap). Samples come exactly as often as
  the weights say — no sampling with replacement, no dataset ending early and the rest running on
  alone. A state saved from one blend is refused by another (other names, splits, weights or
  ``label_map``), and a mid-epoch one by the same blend once one of its folders was re-sharded (each
  dataset's fingerprint and samples are in the state).
* **The mix is a seeded shuffle of the epoch's plan**: each reader (DataLoader worker x rank) lists
  its share of every dataset's passes, and interleaves them in a random order fixed by
  ``(seed, epoch, reader)``, so the datasets stay mixed from the first batch to the last. Without
  ``shuffle`` (evaluation) the datasets come one after the other, in the order given.
* **Every dataset is split over readers exactly as** :func:`open_dataset` **splits it**, and resume is
  exact: samples carry ``meta["reader"]`` / ``meta["position"]`` (their place in the reader's plan),
  so ``mmdata.loader``'s ``state_dict`` works unchanged.
* **Keys and labels stay apart**: a sample's key is ``"<name>/<key>"`` (two datasets' ``000001`` are
  two samples, with their own augmentation draws) and ``meta["source"]`` names its dataset. Class
  names are merged by name: the blend's classes are the first dataset's, then each further dataset's
  new names, and every label is mapped into them (``label_names``); ``label_map=`` renames a dataset's classes
  first (``{"C": {"Cat": "cat"}}``). Fields are the union of the
  datasets' fields; a dataset without a field gives all-False presence for it, as a missing modality.
* Losses (``on_error="skip"`` / ``"warn"``) are counted per dataset and summed (``skipped``); a dataset
  whose share ends early leaves the rest of its places in the plan empty. A sample's ``meta["skipped"]``
  is the losses before it; a resume starts from the saved counts, so its counts and records are those
  of the uninterrupted epoch.
* **The card says what went in**: ``card["blend"][name]`` has each dataset's path, split, weight, card
  ``name``, ``license``, ``fingerprint`` and ``samples`` (an epoch of its split), ``card["licenses"]`` the
  licences given; datasets whose cards give different licences (or some none) are warned of, naming each.
* **Copies across datasets are warned of**: a sample read whose image or audio bytes (candidates by size and
  CRC-32 from the indexes, confirmed by sha256: the index's ``member_digest``, else the members read) are in
  another of the datasets — in a split not read (a test sample trained on), or read
  too (one item twice per epoch) — is counted in the card's ``duplicates`` and warned of, with examples.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from mmdata.checks import expect_bool, expect_int, expect_state, plural
from mmdata.errors import ShardError
from mmdata.rng import derive
from mmdata.shards import index as idx
from mmdata.shards.writer import say_to_caller
from mmdata.shards.reader import (_MAX_ERRORS, WORKER_SLOTS, EpochClock, ResumableEpochs, ShardDataset, SkipBoard,
                                   dist_rank_world, expect_keys, identity_consequence, merge_errors, open_dataset,
                                   reader_id, summed_counts)
from mmdata.types import Sample, new_sample
from mmdata.urls import redact

_NAME = re.compile(r"^[\w.-]+$")


#: the entry of a blend's counts holding what a resumed pass's saved run had counted (no dataset's name)
_RESUMED = "\0resumed"


class _SharedBoard:
    """One dataset's view of the loader's skip board: its counts are kept and the blend's sum posted."""

    def __init__(self, blend: BlendDataset, name: str) -> None:
        self.blend = blend
        self.name = name

    def post(self, slot: int, counts: dict[str, int]) -> None:
        self.blend._counts[self.name] = dict(counts)
        if self.blend._post_to is not None:
            self.blend._post_to.post(slot, summed_counts(*self.blend._counts.values()))

    def post_errors(self, slot: int, reader: int, errors: Any) -> None:
        self.blend._post_errors(slot)  # the blend's places, every dataset's errors


#: the most passes over one dataset per epoch (a plan holds a place per sample read)
MAX_WEIGHT = 1000


def _weight(name: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0
            or value > MAX_WEIGHT):
        raise ShardError(f"blend weights: {name!r} must be a number from 0 to {MAX_WEIGHT} — passes over the dataset per "
                         f"epoch (1 reads it once, 2 twice, 0.5 half of it), not a share of the mix: for shares p_i "
                         f"of an epoch of T samples use p_i * T / len(dataset_i) — got {value!r}")
    return float(value)


class BlendDataset(ResumableEpochs, IterableDataset):  # type: ignore[type-arg]
    """Several dataset folders as one IterableDataset of :class:`~mmdata.Sample` (see the module
    docstring). Use :func:`blend` (or :func:`mmdata.loader` with a mapping) to create one."""

    def __init__(self, datasets: Mapping[str, str | Path], *, weights: Mapping[str, float] | None = None,
                 split: str | Mapping[str, str] = "train", modalities: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, on_error: str = "raise",
                 label_map: Mapping[str, Mapping[str, str]] | None = None, check_copies: bool = True,
                 **reader_kw: Any) -> None:
        if not isinstance(datasets, Mapping) or not datasets:
            raise ShardError(f"blend: expected a mapping of names to dataset folders, e.g. {{'mine': 'data/mine', "
                             f"'public': 'data/public'}}, got {datasets!r}")
        for name in datasets:
            if not isinstance(name, str) or not _NAME.match(name) or set(name) == {"."}:
                raise ShardError(f"blend: dataset name {name!r} must be letters, digits, '_', '-' or '.' (it prefixes "
                                 f"the keys: '<name>/<key>')")
        weights = dict(weights or {})
        unknown = [w for w in weights if w not in datasets]
        if unknown:
            raise ShardError(f"blend weights: {unknown} name no dataset of the blend; it has {list(datasets)}")
        self.weights = {n: _weight(n, weights.get(n, 1.0)) for n in datasets}
        # exact arithmetic for the slices (epoch * weight): consecutive epochs meet at one position
        self._exact = {n: Fraction(w).limit_denominator(1 << 20) for n, w in self.weights.items()}
        if not any(self.weights.values()):
            raise ShardError(f"blend weights: every weight is 0 ({self.weights}): nothing to read")
        if isinstance(split, Mapping):
            missing = [n for n in datasets if n not in split]
            extra = [n for n in split if n not in datasets]
            if missing or extra:
                raise ShardError(f"blend split: a mapping needs a split for each dataset {list(datasets)}"
                                 f"{f'; missing {missing}' if missing else ''}{f'; no such dataset {extra}' if extra else ''}")
            splits = {n: split[n] for n in datasets}
        else:
            splits = dict.fromkeys(datasets, split)
        if reader_kw.get("decode") is False:
            raise ShardError("blend: decode=False is not supported (labels are mapped between the datasets' classes "
                             "by name, which needs them decoded)")
        if reader_kw.get("partition") is False:
            raise ShardError("blend: partition=False is not supported (each reader reads its own share of the plan)")
        chosen = self._selection(reader_kw.pop("keys", None), list(datasets))
        renames = _check_label_map(label_map, list(datasets))
        self.split = splits
        self.shuffle = expect_bool(shuffle, "shuffle", error=ShardError)
        self.seed = expect_int(seed, "seed", error=ShardError)
        self.on_error = on_error
        self.datasets: dict[str, ShardDataset] = {}
        for name, path in datasets.items():
            # each dataset shuffled by its own seed: one folder blended under two names is two orders
            own = int(derive(self.seed, 0, f"blend-source:{name}", 0).integers(1 << 31))
            ds = open_dataset(path, split=splits[name], modalities=modalities, shuffle=shuffle, seed=own,
                              on_error=on_error, keys=None if chosen is None else chosen.get(name, frozenset()),
                              **reader_kw)
            if ds.card is None:
                raise ShardError(f"blend: {name!r} ({path}) is not a dataset folder (dataset.json + index.parquet): a "
                                 f"blend plans each epoch from the indexes; shard bare tars into one first (mmdata shard "
                                 f"SHARDS OUT) or read them with open_dataset")
            ds._blend_name = name  # its "folder changed" refusal names the blend as what to open again
            self.datasets[name] = ds
        self._renames = renames  # recorded in states: another label_map maps the same samples to other ids
        self.modalities = next(iter(self.datasets.values())).modalities
        owns: dict[str, list[str]] = {}  # each dataset's class names, renames applied
        for name, ds in self.datasets.items():
            classes = int((ds.card or {}).get("num_classes") or 0)
            named = (ds.card or {}).get("label_names")
            if classes and not named and len(datasets) > 1:
                say_to_caller([f"blend: {name!r} has {classes} classes without names: its ids are merged with the "
                               f"other datasets' class names '0'..'{classes - 1}' (give it names: mmdata shard --labels)"],
                              UserWarning, stacklevel=4)
            owns[name] = _renamed(name, datasets[name], [str(x) for x in (named or range(classes))], renames)
        # classes merged by name, in order of first appearance (as blend_label_names merges them from the cards)
        names = {x: i for i, x in enumerate(_merge_names(owns.values()))}
        first: dict[str, str] = {}  # class name -> the dataset that brought it into the blend
        for name, own in owns.items():
            for x in own:
                first.setdefault(x, name)
        self._label_map: dict[str, np.ndarray | None] = {
            name: np.array([names[x] for x in own], dtype=np.int64) if own else None for name, own in owns.items()}
        near = _near_names(first)
        if near:
            say_to_caller([near], UserWarning, stacklevel=4)
        self._formats, dups = _index_facts(self.datasets, splits, self.weights,
                                           expect_bool(check_copies, "check_copies", error=ShardError))
        if dups is not None and dups["samples"]:
            say_to_caller([_duplicates_warning(dups)], UserWarning, stacklevel=4)
        unchecked = _unchecked_warning(dups, datasets)
        if unchecked is not None:
            say_to_caller([unchecked], UserWarning, stacklevel=4)
        self.label_names: list[str] | None = list(names) or None
        licences = {n: (ds.card or {}).get("license") for n, ds in self.datasets.items()}
        mixed = _licences_warning(licences)
        if mixed is not None:
            say_to_caller([mixed], UserWarning, stacklevel=4)
        retyped = _dtypes_warning(self.datasets, self.modalities)
        if retyped is not None:  # said at open, not found by a model fed another dtype (QA38 rv1 #2)
            say_to_caller([retyped], UserWarning, stacklevel=4)
        source_cards = {n: ds.card for n, ds in self.datasets.items()}
        found = _metadata_counts(source_cards)
        # each dataset's own warnings (identifying metadata, copies across its splits, ...), then the blend's
        said = [f"{n}: {w}" for n, c in source_cards.items() for w in ((c or {}).get("warnings") or [])
                if isinstance(w, str)]
        said += [w for w in (mixed, _duplicates_warning(dups) if dups is not None and dups["samples"] else None,
                             unchecked, retyped) if w is not None]
        self.card: dict[str, Any] = {
            # per dataset, which one (name, licence) and which version of it (fingerprint, samples an epoch reads
            # of its split): QA36 sites #3, a run's record said nothing of the licences it mixed
            "blend": {n: {"path": str(p), "split": splits[n], "weight": self.weights[n],
                          "name": (self.datasets[n].card or {}).get("name"), "license": licences[n],
                          "fingerprint": (self.datasets[n].card or {}).get("fingerprint"),
                          "samples": self.datasets[n].num_samples,
                          **({"metadata": _metadata_counts({n: source_cards[n]})}
                             if _metadata_counts({n: source_cards[n]}) else {}),
                          **({"label_map": dict(renames[n])} if n in renames else {})} for n, p in datasets.items()},
            **({"licenses": _licences_given(licences)}
               if any(_licence_id(v) is not None for v in licences.values()) else {}),
            **({"metadata": found} if found else {}),
            **({"warnings": said} if said else {}),
            "num_classes": len(names), "label_names": list(names),
            "modalities": _blend_modalities(self.datasets),
            **({"copies_across_datasets": dups} if dups is not None else {}),
        }
        self.board: Any = None  # set by mmdata.loader: worker counts reach the main process
        # a plain DataLoader's workers post here (see ResumableEpochs._posting); its datasets post through it
        self._worker_board: SkipBoard | None = SkipBoard(WORKER_SLOTS, shared=False)
        for ds in self.datasets.values():
            ds._worker_board = None
        self._post_to: Any = None
        self._counts: dict[str, dict[str, int]] = {}
        self._records: dict[str, dict[str, int]] = {}  # per dataset, meta["skipped"] of its last sample yielded
        # per entry of a dataset's errors (by id; the entry kept, so that its id is not reused), the first place
        # of this reader's plan whose record holds it
        self._place: dict[int, tuple[int, Any]] = {}
        self._scanned: dict[str, tuple[int, bool]] = {}  # per dataset, its errors when last placed (see _place_errors)
        self._rid = 0
        self._clock = EpochClock(int(epoch))
        self._skip: dict[int, int] = {}
        self._skip_counts: dict[int, dict[str, int]] = {}
        self._skip_errors: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
        self._skip_readers: int | None = None
        self._skip_world: int | None = None  # the world size of a loaded state
        self._positions: dict[int, int] = {}
        self._readers: int | None = None
        self._dist: tuple[int, int] | None = None
        self.rotation = 0

    @staticmethod
    def _selection(keys: Any, names: list[str]) -> dict[str, frozenset[str]] | None:
        """``keys=`` of a blend, per dataset: ``{name: keys}``, or the blend's own keys (``"<name>/<key>"``,
        as it yields them; a filter of the samples it gave) split by their prefix. A dataset no key
        names gives nothing."""
        if keys is None:
            return None
        if isinstance(keys, Mapping):
            unknown = [n for n in keys if n not in names]
            if unknown:
                raise ShardError(f"blend keys: {unknown} name no dataset of the blend; it has {names}")
            return {n: expect_keys(v) or frozenset() for n, v in keys.items()}
        out: dict[str, set[str]] = {}
        for k in expect_keys(keys) or ():
            name, sep, own = k.partition("/")
            if not sep or name not in names:
                raise ShardError(f"blend keys: {k!r} is not '<name>/<key>' with a dataset name of the blend {names} "
                                 f"(or pass {{name: keys}})")
            out.setdefault(name, set()).add(own.split("#r")[0])  # a repeat (#r1) selects its sample
        return {n: frozenset(v) for n, v in out.items()}

    # ---- metadata --------------------------------------------------------------------------------
    @property
    def num_samples(self) -> int | None:
        """Samples one epoch plans (weights applied; per reader rounding aside), when every count is known."""
        per = self.samples_per_reader(1)
        return per[0] if per is not None else None

    @property
    def skipped(self) -> dict[str, int]:
        """Samples skipped in the iteration in progress or the last one (reason -> count), every dataset's summed
        (in the main process of a plain ``DataLoader`` with workers, theirs: see ``ShardDataset.skipped``)."""
        posted = self._from_workers()
        return posted[0] if posted is not None else summed_counts(*self._counts.values())

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """The datasets' first errors of the iteration (shard, key, message), dataset after dataset, each in the
        order of its stream (in the main process of a plain ``DataLoader`` with workers, theirs)."""
        posted = self._from_workers()
        if posted is not None:
            return merge_errors(posted[1], list(self.datasets))  # type: ignore[return-value]
        return [e for ds in self.datasets.values() for e in ds._errors]

    def _count(self, reason: str, shard: str, key: str, message: str, at: int | None = None,
               place: int | None = None) -> None:
        """Count a sample lost after reading (the recipe refused it) with the dataset it came from; ``at``:
        its position in that dataset's share (``meta["source_position"]``), ``place``: its place in the
        blend's plan (``meta["position"]``)."""
        name, _, own = key.partition("/")
        ds = self.datasets[name]
        if not ds._quiet:  # in the records of the samples after it, whichever dataset they come from
            self._records[name] = summed_counts(self._records.get(name, {}), {reason: 1})
        entry = ds._count(reason, shard, own, message, at=at, after=True)
        if entry is not None and place is not None:
            self._place[id(entry)] = (place + 1, entry)  # in the records after the refused sample's place
            self._post_errors()

    def _error_items(self) -> list[tuple[int | None, tuple[str, ...]]]:
        """Every dataset's errors (dataset after dataset, as ``errors``), each ``(place, (name, *entry))``."""
        return [(self._place.get(id(e), (None,))[0], (name, *e)) for name, ds in self.datasets.items() for e in ds._errors]

    def _place_errors(self, name: str, mark: tuple[int, int] | None, place: int) -> None:
        """The errors of dataset ``name`` met before ``mark`` (its share and the position after its sample
        just yielded; None: all, its share ended) enter the records from ``place`` on."""
        ds = self.datasets[name]
        if self._scanned.get(name) == (ds._noted, False):
            return  # nothing new, and nothing met ahead of the samples left to place
        pending = placed = False
        for t, e in zip(ds._error_tags, ds._errors):
            if id(e) in self._place:
                continue
            if mark is None or t < mark:
                self._place[id(e)] = (place, e)
                placed = True
            else:
                pending = True  # met ahead (the decode window): placed with a later sample
        self._scanned[name] = (ds._noted, pending)
        if placed:
            self._post_errors()

    def _post_errors(self, slot: int | None = None) -> None:
        post = getattr(self._post_to, "post_errors", None)
        if post is None:
            return
        if slot is None:
            info = get_worker_info()
            slot = info.id if info is not None else 0
        post(slot, self._rid, self._error_items())

    # ---- epochs and the plan ---------------------------------------------------------------------
    def _slices(self, name: str, epoch: int) -> list[tuple[int, Fraction, Fraction]]:
        """What blend epoch ``epoch`` reads of dataset ``name``: (its epoch, from, to) — fractions of that
        epoch's share. The epochs tile the dataset's stream of epochs: epoch ``e`` reads
        ``[e * w, (e + 1) * w)`` of it, so weight 0.5 reads the first half of the dataset's epoch 0, then
        its second half, then the first half of its epoch 1 (every sample once every two epochs), and
        1.5 reads one epoch and a half."""
        w = self._exact[name]
        start, end = epoch * w, (epoch + 1) * w
        out = []
        j = math.floor(start)
        while j < end:
            a, b = max(start, Fraction(j)) - j, min(end, Fraction(j + 1)) - j
            if b > a:
                out.append((j, a, b))
            j += 1
        return out

    def _plan(self, readers: int, epoch: int | None, exact: bool) -> dict[str, list[list[tuple[int, int, int]]]] | None:
        """Per dataset, per reader: (dataset epoch, first position, end position) of each slice of its
        share read in ``epoch``; None when a count is unknown. ``exact``: only when nothing can be lost
        (``on_error="raise"``). ``epoch`` None: the counts of every epoch, when they are the same (whole
        weights over shares that do not change between epochs), else None."""
        plan: dict[str, list[list[tuple[int, int, int]]]] = {}
        for name, ds in self.datasets.items():
            if exact and ds.on_error != "raise":
                return None
            if epoch is None and self._exact[name].denominator != 1:
                return None  # a fraction's part of the share moves (and its size with it) from epoch to epoch
            per: list[list[tuple[int, int, int]]] = [[] for _ in range(readers)]
            for e, a, b in self._slices(name, epoch if epoch is not None else 0):
                listed = ds.listed_per_reader(readers, e if epoch is not None else None)
                if listed is None:
                    return None
                for r, c in enumerate(listed):
                    lo, hi = _at(a, c), _at(b, c)
                    if hi > lo:
                        per[r].append((e, lo, hi))
            plan[name] = per
        return plan

    def samples_per_reader(self, readers: int, epoch: int | None = None) -> list[int] | None:
        """Samples each of ``readers`` readers yields per epoch (see ``ShardDataset.samples_per_reader``):
        the sum of its planned passes; None when not known exactly."""
        plan = self._plan(readers, epoch, exact=True)
        if plan is None:
            return None
        return [sum(hi - lo for per in plan.values() for _, lo, hi in per[r]) for r in range(readers)]

    def _order(self, counts: list[int], rid: int, epoch: int) -> np.ndarray:
        """The reader's plan: a dataset index per place (shuffled by (seed, epoch, reader))."""
        order = np.repeat(np.arange(len(counts)), counts)
        if self.shuffle:
            order = derive(self.seed, epoch, f"blend:{rid}", 0).permutation(order)
        return order

    def __repr__(self) -> str:
        """One line: each dataset's folder, split, weight and samples, then shuffle, seed and epoch, e.g.
        ``BlendDataset(mine='data/mine' (split 'train', weight 1, 56 samples), public=..., shuffle=True,
        seed=0, epoch=0)``."""
        def split(n: str) -> str:
            return repr(self.split[n]) if isinstance(self.split[n], str) else repr(list(self.split[n]))

        parts = [f"{n}={str(ds.root if ds.root is not None else '?')!r} (split {split(n)}, weight {self.weights[n]:g}, "
                 f"{ds.num_samples} samples)" for n, ds in self.datasets.items()]
        return f"{type(self).__name__}({', '.join(parts)}, shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch})"

    # ---- resume ----------------------------------------------------------------------------------
    @property
    def signature(self) -> list[list[Any]]:
        """``[[name, split, weight], ...]``: what a saved state's places mean (another blend's differ)."""
        return [[n, self.split[n] if isinstance(self.split[n], str) else list(self.split[n]), self.weights[n]]
                for n in self.datasets]

    def identity_state(self, started: bool = True) -> dict[str, Any]:
        """What a state records beside the positions so that another version of the blend refuses it:
        ``datasets`` (mid-epoch, ``started``: each dataset's :attr:`ShardDataset.identity`, fingerprint, samples
        and order) and ``label_map`` (the renames, ``{}`` when none: another one gives the same samples other class
        ids; recorded empty too, so that a state saved without one is told from an older state that says nothing of
        it, and a blend given one warns of it at an epoch's start: QA36 state #3)."""
        out: dict[str, Any] = {"datasets": {n: ds.identity for n, ds in self.datasets.items()}} if started else {}
        out["label_map"] = {n: dict(m) for n, m in self._renames.items()}
        return out

    def check_state(self, state: Mapping[str, Any], started: bool) -> None:
        """Refuse a state saved mid-epoch by another blend (or by a single dataset): its places would
        mean other samples here. So is one saved before one of the datasets changed (re-sharded: its
        ``datasets`` entry's samples or order differ; a modality added is no change) or with another ``label_map``
        (its ``label_map``; at an epoch's start that is only warned of). A state without ``datasets`` / ``label_map``
        (saved before mmdata recorded them) is taken as before. The error's ``resume_refusal`` says which (``"data"``,
        ``"label_map"`` with ``saved_label_map``): the Lightning DataModule's remedy keys on it."""
        saved = state.get("blend")
        epoch = state.get("epoch", 0)
        over = f"start the epoch over: load_state_dict({{'epoch': {epoch}, 'seed': {self.seed}}})"
        if started and saved != self.signature:
            what = "a single dataset's state" if saved is None else f"a state of the blend {saved}"
            raise ShardError(f"{what} cannot resume the blend {self.signature} (names, splits, weights): its "
                             f"positions mean other samples here; {over}")
        idents = state.get("datasets")
        if started and isinstance(idents, Mapping):
            whose = "the blend's"
            for name, ds in self.datasets.items():
                diff = ds._identity_diff(idents.get(name))
                if diff is not None:
                    exc = ShardError(
                        f"{redact(str(ds.root))} (dataset {name!r} of the blend): the dataset folder changed since "
                        f"this state was saved ({identity_consequence(diff, epoch, whose)}. Resume with the "
                        f"version the state was saved from, or {over}")
                    exc.resume_refusal = "data"  # type: ignore[attr-defined]
                    raise exc
        if "label_map" in state or ("datasets" in state and self._renames):  # an older state says nothing of it
            was = {n: dict(m) for n, m in (state.get("label_map") or {}).items()}
            now = {n: dict(m) for n, m in self._renames.items()}
            differ = [n for n in self.datasets if was.get(n, {}) != now.get(n, {})]
            if differ:
                shown = "; ".join(f"{n!r}: saved {was.get(n, {})}, now {now.get(n, {})}" for n in differ)
                text = (f"label_map of blended dataset{'s' if len(differ) > 1 else ''} "
                        f"{', '.join(map(repr, differ))} differs from the state's ({shown}): the same samples get "
                        f"other class ids (label_names now {self.label_names})")
                if started:
                    exc = ShardError(f"{text}, so the rest of epoch {epoch} would train on other targets; resume "
                                     f"with label_map={was or None}, or {over}")
                    exc.resume_refusal = "label_map"  # type: ignore[attr-defined]
                    exc.saved_label_map = was or None  # type: ignore[attr-defined]
                    raise exc
                warnings.warn(f"{text}; a model trained so far has other class ids", UserWarning, stacklevel=3)

    def state_dict(self) -> dict[str, Any]:
        """``{"seed", "epoch", "positions": {reader: next place in its plan}, "readers", "blend"}``, mid-epoch
        ``datasets`` and, when given, ``label_map`` (see :meth:`identity_state`)."""
        state = super().state_dict()
        return {**state, "blend": self.signature, **self.identity_state(bool(state.get("positions")))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume (see ``ShardDataset.load_state_dict``); a state of another blend (or of one dataset)
        saved mid-epoch is refused (:meth:`check_state`)."""
        state = expect_state(state, "state", error=ShardError)
        positions = state.get("positions") or {}
        if "blend" in state or any(int(v) > 0 for v in positions.values()) or "label_map" in state:
            self.check_state(state, any(int(v) > 0 for v in positions.values()))
        super().load_state_dict(state)

    # ---- iteration -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Sample]:
        self._catch_up()  # a persistent worker: the owning process's load_state_dict / set_epoch since its last pass
        epoch, gen = self._clock.begin()
        self._pass_ended = False
        self._counts = {}
        self._place, self._scanned = {}, {}
        for name, ds in self.datasets.items():
            ds._skipped, ds._errors, ds._error_tags, ds._quiet = {}, [], [], False
            ds.board = ds._post_to = _SharedBoard(self, name)
        rid, n = reader_id(dist_rank_world() or self._dist, self.rotation)
        self._rid = rid
        skip = self._resume_skip(rid, n, epoch) if gen == 0 else 0
        for place, (name, *entry) in self._resumed_errors(rid, skip):  # met by the saved run, in their places
            ds = self.datasets.get(name)
            if ds is not None and len(entry) == 3 and len(ds._errors) < _MAX_ERRORS:
                ds._errors.append(tuple(entry))  # type: ignore[arg-type]
                ds._error_tags.append((-1, len(ds._error_tags)))
                self._place[id(ds._errors[-1])] = (place, ds._errors[-1])
        resumed = self._resumed_counts(rid, skip)
        self._records = {_RESUMED: resumed}
        if resumed:  # the saved run counted what the resume passes over (its datasets' counts start at 0)
            self._counts[_RESUMED] = resumed
        self._post_to = self._posting(gen)
        if self._post_to is not None:  # this iteration's counts in this worker's slot (none of an earlier epoch's)
            info = get_worker_info()
            self._post_to.post(info.id if info is not None else 0, summed_counts(*self._counts.values()))
            self._post_errors(info.id if info is not None else 0)
        self._readers = n
        self._positions = {rid: skip} if skip else {}
        plan = self._plan(n, epoch, exact=False)
        if plan is None:  # a dataset folder always lists its shards' samples
            raise ShardError("blend: a dataset's samples per reader are not known from its index")
        names = list(self.datasets)
        mine = {name: plan[name][rid] for name in names}
        order = self._order([sum(hi - lo for _, lo, hi in mine[name]) for name in names], rid, epoch)
        before = np.bincount(order[:skip], minlength=len(names)) if skip else np.zeros(len(names), dtype=np.int64)
        streams = {name: self._source(name, mine[name], rid, n, int(before[i])) for i, name in enumerate(names)}
        for pos in range(skip, len(order)):
            name = names[order[pos]]
            s = next(streams[name], None)
            if s is None:  # its share ended early (samples lost): its later places stay empty
                # and its losses are all before this place (the last ones follow its last sample yielded)
                self._records[name] = dict(self.datasets[name]._skipped)
                self._place_errors(name, None, pos + 1)
                continue
            self._place_errors(name, (self.datasets[name]._share, int(s.meta["position"]) + 1), pos + 1)
            self._positions[rid] = pos + 1
            yield self._relabel(name, s, rid, pos, epoch)
        self._skip.pop(rid, None)
        self._pass_ended = get_worker_info() is None  # see ResumableEpochs.state_dict

    def _source(self, name: str, slices: list[tuple[int, int, int]], rid: int, n: int, skip: int) -> Iterator[Sample]:
        """Dataset ``name``'s samples for this reader, slice after slice, after the first ``skip``; a
        sample read again in this epoch (weight > 1: another of the dataset's epochs) gets the key
        suffix ``#r<i>`` (its own augmentation draws, as balance's repeats)."""
        ds = self.datasets[name]
        first = slices[0][0] if slices else 0
        for e, lo, hi in slices:
            count = hi - lo
            repeat = e - first
            if ds.on_error == "raise":  # nothing is lost: the first ``skip`` consumed are the first yielded
                if skip >= count:
                    skip -= count
                    continue
                stream: Iterator[Sample] = islice(ds.iter_share(rid, n, e, lo + skip), count - skip)
            else:  # losses shift positions: pass over ``skip`` yielded samples, decoded, their losses uncounted
                # (the saved run's records counted them); without the decode window's read-ahead, which would
                # meet later losses while passing over. A slice yields fewer samples than it plans (``count``),
                # and the next slice's samples followed its last one in the saved run: what is left to pass
                # over goes on into the next slice, not ``count`` less of it
                stream = _until(ds.iter_share(rid, n, e, lo, read_ahead=not skip), hi)
                if skip:
                    passed = _pass_over(ds, stream, skip)
                    skip -= passed
                    if skip:
                        continue  # this slice ended (its losses too) before the saved run's last sample
            for s in stream:
                yield s if not repeat else new_sample(f"{s.key}#r{repeat}", s.fields, s.sample_rate, s.meta)
            skip = 0

    def _relabel(self, name: str, s: Sample, rid: int, pos: int, epoch: int) -> Sample:
        fields = s.fields
        label = fields.get("label")
        if label is not None and self._label_map[name] is not None:
            fields = {**fields, "label": int(self._label_map[name][int(label)])}
        meta = {**s.meta, "reader": rid, "position": pos, "epoch": epoch, "source": name,
                "source_epoch": s.meta.get("epoch"), "source_position": s.meta.get("position")}
        # the losses before this sample: each dataset's before its last sample yielded (a dataset's decode
        # window reads ahead of it), and what a resume started from
        self._records[name] = meta.pop("skipped", None) or {}
        total = summed_counts(*self._records.values())
        if total:
            meta["skipped"] = total
        return new_sample(f"{name}/{s.key}", fields, s.sample_rate, meta)

    def _state_counts(self) -> dict[str, int]:
        return summed_counts(*self._records.values())


def blend_label_names(datasets: Mapping[str, str | Path], label_map: Mapping[str, Mapping[str, str]] | None = None,
                      storage_options: dict[str, Any] | None = None) -> list[str] | None:
    """The class names a blend of ``datasets`` with ``label_map`` has (its ``label_names``), from the cards alone:
    the first dataset's classes, then each further dataset's new names (after its renames). None when no card
    names or counts classes. What :class:`mmdata.lightning.DataModule` reports without opening the blend.

    Example:
        >>> blend_label_names({"A": "data/A", "B": "data/B"}, {"B": {"Cat": "cat"}})  # doctest: +SKIP
        ['cat', 'dog', 'fish']
    """
    renames = _check_label_map(label_map, list(datasets))
    owns = {}
    for name, path in datasets.items():
        card = idx.load_card(path, storage_options)
        own = [str(x) for x in (card.get("label_names") or range(int(card.get("num_classes") or 0)))]
        owns[name] = _renamed(name, path, own, renames)  # what the blend refuses, refused here too (QA36 state #4)
    names = _merge_names(owns.values())
    return names or None


def _renamed(name: str, path: Any, own: list[str], renames: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Dataset ``name``'s class names ``own`` after its ``label_map`` renames (before the merge by name: 'Cat' ->
    'cat' is A's cat); a name the map gives that is no class of the dataset is refused, naming its classes."""
    if name not in renames:
        return own
    unknown = [x for x in renames[name] if x not in own]
    if unknown:
        raise ShardError(f"blend label_map[{name!r}]: {', '.join(map(repr, unknown))} "
                         f"{'is' if len(unknown) == 1 else 'are'} no class of {name!r} ({path}); its classes are {own}")
    return [renames[name].get(x, x) for x in own]


def _merge_names(owns: Any) -> list[str]:
    """Class names merged by name, in order of first appearance (each dataset's list, renames applied)."""
    names: dict[str, int] = {}
    for own in owns:
        for x in own:
            names.setdefault(x, len(names))
    return list(names)


#: ``card["licenses"]``' entry for a dataset whose card gives no licence
NO_LICENCE = "(none given)"


def _licence_id(value: Any) -> str | None:
    """A licence's identity for comparing: the Hub id it names (:func:`mmdata.interop.hf.hub_license`: ``CC-BY-4.0``
    and ``CC BY 4.0`` are both ``cc-by-4.0``), else its text with case and blanks folded; None for none."""
    if value is None or not str(value).strip():
        return None
    from mmdata.interop.hf import hub_license

    got = hub_license(str(value)).get("license")
    return got if got and got != "other" else " ".join(str(value).lower().split())


def _licences_given(licences: Mapping[str, Any]) -> list[str]:
    """``card["licenses"]``: each licence given once (by :func:`_licence_id`: its first spelling, sorted), then
    :data:`NO_LICENCE` when a dataset gives none (QA37 licence #5: it was left out, so the list read as if every
    dataset had one of those)."""
    first: dict[str, str] = {}
    for v in licences.values():
        i = _licence_id(v)
        if i is not None:
            first.setdefault(i, str(v))
    return sorted(first.values()) + ([NO_LICENCE] if any(_licence_id(v) is None for v in licences.values()) else [])


def _licences_warning(licences: Mapping[str, Any]) -> str | None:
    """A warning when the blended datasets' cards give different licences (or some give none), naming each;
    None when they all give the same one (or none gives any). One licence spelt two ways (``CC-BY-4.0`` /
    ``CC BY 4.0``) is one (:func:`_licence_id`). QA36 sites #3: CC-BY-4.0, CC-BY-NC-4.0 and a
    proprietary set were mixed without a word."""
    ids = [_licence_id(v) for v in licences.values()]
    given = {i for i in ids if i is not None}
    if len(given) <= 1 and (not given or all(i is not None for i in ids)):
        return None
    shown = ", ".join(f"{n!r} {str(v) if _licence_id(v) is not None else NO_LICENCE}" for n, v in licences.items())
    return (f"blend: the datasets' licences differ: {shown}; the blend and what is trained on it are bound by each "
            f"(e.g. a NonCommercial one); the blend's card lists them (card['blend'][name]['license'], "
            f"card['licenses'])")


def _metadata_counts(cards: Mapping[str, Mapping[str, Any] | None]) -> dict[str, int]:
    """The identifying metadata the datasets' cards counted when sharding (``metadata``: GPS positions, camera
    serials, artists, audio tags), summed over the datasets; {} when none counted any. QA37 licence #5: a blend's
    card said nothing of the GPS positions its sources published."""
    out: dict[str, int] = {}
    for card in cards.values():
        found = (card or {}).get("metadata")
        if not isinstance(found, Mapping):
            continue
        for k, v in found.items():
            if k != "examples" and isinstance(v, int) and not isinstance(v, bool) and v > 0:
                out[str(k)] = out.get(str(k), 0) + v
    return dict(sorted(out.items()))


def _near_names(first: Mapping[str, str]) -> str | None:
    """A warning for class names of different datasets that differ only in case, surrounding spaces or Unicode
    form (``'eight'`` and ``'EIGHT'``): the blend merges classes by exact name, so each stays two classes.
    ``first`` maps each of the blend's class names to the dataset that brought it in (in order); None when no
    such pair exists. Names of one dataset are left out (``mmdata shard`` warns of those)."""
    from mmdata.shards.sources import _near_name

    groups: dict[str, list[str]] = {}
    for x in first:
        groups.setdefault(_near_name(x), []).append(x)
    pairs = [f"{a!r} ({first[a]}) vs {b!r} ({first[b]})"
             for same in groups.values() for a in same[:1] for b in same[1:] if first[b] != first[a]]
    if not pairs:
        return None
    shown = ", ".join(pairs[:6]) + (f", ... ({len(pairs)} pairs)" if len(pairs) > 6 else "")
    # the remedy spelt out: each later dataset's name mapped to the name that came first. Not re-sharding with
    # --labels: shard matches those exactly, so 'Cat' would lose its label instead of joining 'cat' (QA33 multisite #4)
    renames: dict[str, dict[str, str]] = {}
    for same in groups.values():
        for b in same[1:]:
            if first[b] != first[same[0]]:
                renames.setdefault(first[b], {})[b] = same[0]
    return (f"blend: class names differ only in case, spaces at the start or end or Unicode form: {shown}; classes "
            f"are merged by exact name, so each of these is two classes (label_names has {len(first)}); to merge "
            f"them, map the names in the blend: label_map={renames!r} (mmdata.blend / mmdata.loader / the Lightning "
            f"DataModule take it)")


def _check_label_map(label_map: Any, names: list[str]) -> dict[str, dict[str, str]]:
    """``label_map=`` of a blend: ``{dataset name: {its class name: the blend's name}}``, checked (a dataset it
    names must be in the blend, every name a non-empty string); the class names are checked against each
    dataset's when it is opened."""
    if label_map is None:
        return {}
    example = "e.g. {'C': {'Cat': 'cat', 'cats': 'cat'}}"
    if not isinstance(label_map, Mapping):
        raise ShardError(f"blend label_map: expected {{dataset name: {{class name: name in the blend}}}}, {example}; "
                         f"got {label_map!r}")
    unknown = [n for n in label_map if n not in names]
    if unknown:
        raise ShardError(f"blend label_map: {unknown} name no dataset of the blend; it has {names}")
    out: dict[str, dict[str, str]] = {}
    for name, renames in label_map.items():
        if not isinstance(renames, Mapping):
            raise ShardError(f"blend label_map[{name!r}]: expected {{class name: name in the blend}}, {example}; "
                             f"got {renames!r}")
        bad = [(k, v) for k, v in renames.items() if not (isinstance(k, str) and isinstance(v, str) and k and v.strip())]
        if bad:
            raise ShardError(f"blend label_map[{name!r}]: class names map to class names (non-empty strings), got "
                             f"{', '.join(f'{k!r}: {v!r}' for k, v in bad[:3])}")
        out[name] = dict(renames)
    return out


#: what one batch cannot mix (collate refuses it): the index column, what it is called, its unit, the normalize
#: ops that bring every sample to one value
_MIXES = (("image_channels", "image channels", "", ("to_rgb", "to_gray")),
          ("audio_sample_rate", "audio sample rates", " Hz", ("resample",)),
          ("audio_channels", "audio channels", "", ("to_mono",)))


def _index_facts(datasets: Mapping[str, ShardDataset], splits: Mapping[str, Any], weights: Mapping[str, float],
                 check_copies: bool) -> tuple[dict[str, dict[str, list[int]]], dict[str, Any] | None]:
    """What a blend checks at open, from ONE read of each dataset's index (the columns needed only): the
    formats of :func:`mixed_formats` and, with ``check_copies``, the copies of :func:`_copies`. Reading
    the index columns once, and finding copies with numpy over int64 keys (not Python objects per member),
    keeps opening a blend of 1M-row indexes to about the cost of opening its datasets (QA33 read review #1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fmt: dict[str, dict[str, list[int]]] = {c: {} for c, *_ in _MIXES}
    media: dict[str, Any] = {}
    unchecked: list[str] = []
    why: dict[str, str] = {}  # per unchecked dataset, why (said in the blend's warning, QA38 D #4)
    for name, ds in datasets.items():
        # key, split, members and sizes: the table the reader loaded at open (all rows, in index order); read
        # here: the format columns and member_crc32 only (flat, numeric)
        index = ds._shard_index()
        table = index.table if index is not None else None
        base = [*fmt, *(["split"] if table is None else [])]
        # image_mode: the channels a batch gets are the reader's decode of the mode (P / RGBA -> 3, LA / 1 -> 1), not the
        # bands stored (image_channels); indexes without the column fall back to the bands
        tries = [[*base, "image_mode"], base]
        if check_copies and table is not None:
            tries = [[*c, *extra] for extra in (["member_crc32", "member_digest"], ["member_crc32"]) for c in tries] + tries
        rows = None
        for columns in tries:
            try:
                rows = idx.load_index(ds.root, columns=columns, storage_options=ds.storage_options, card=ds.card)
                break
            except ShardError:  # the reader read this index already: a column is missing (an older index)
                continue
        if rows is not None and table is not None and rows.num_rows != table.num_rows:
            rows = None  # the reader's table is not the whole index: rows not aligned by position, nothing checked
        if check_copies and (rows is None or "member_crc32" not in rows.column_names):
            unchecked.append(name)
            why[name] = ("its index has no member CRC-32s (written by mmdata before 2026-12-04)" if rows is not None
                         else "its index could not be read whole")
        if rows is None:
            continue
        wanted = pa.array([splits[name]] if isinstance(splits[name], str) else list(splits[name]), pa.string())
        split = (table if table is not None else rows)["split"].combine_chunks()
        in_split = np.asarray(pc.is_in(split.cast(pa.string()), value_set=wanted).to_numpy(zero_copy_only=False),
                              dtype=bool)
        mask = pa.array(in_split)
        for column in fmt:
            if column == "image_channels":
                got = _decoded_channels(rows, mask)
            else:
                got = sorted(v for v in pc.unique(rows[column].combine_chunks().filter(mask)).to_pylist() if v is not None)
            if got:
                fmt[column][name] = got
        if table is not None and "member_crc32" in rows.column_names:
            read = in_split & bool(weights[name])
            if ds.keys is not None:  # keys=: only the samples selected are read
                read &= np.asarray(pc.is_in(table["key"], value_set=pa.array(sorted(ds.keys), pa.string()))
                                   .to_numpy(zero_copy_only=False), dtype=bool)
            digests = rows["member_digest"] if "member_digest" in rows.column_names else None
            media[name] = (table, rows["member_crc32"], read, digests)
    dups = _copies(datasets, media, unchecked) if check_copies else None
    if dups is not None and unchecked:
        dups["unchecked_why"] = {n: why[n] for n in unchecked}
    return fmt, dups


def _blend_modalities(datasets: Mapping[str, ShardDataset]) -> dict[str, dict[str, Any]]:
    """The blend card's ``modalities``: each field of its datasets, with ``dtypes`` (a ``.npy`` field's files per
    dtype) summed over the datasets that record them, so that :func:`mmdata.types.field_dtypes` gives the one dtype
    a batch of the blend holds the field in, as for one dataset (QA38 C #2: the entries were empty, and the first
    batch mixing complex64 and complex128 files was refused) — also when each dataset holds one dtype of its own.

    Example:
        >>> class D: card = {"modalities": {"iq": {"dtypes": {"complex64": 3}}, "label": {}}}
        >>> class E: card = {"modalities": {"iq": {"dtypes": {"<c16": 1}}}}
        >>> _blend_modalities({"a": D(), "b": E()})
        {'iq': {'dtypes': {'complex128': 1, 'complex64': 3}}, 'label': {}}
    """
    out: dict[str, dict[str, Any]] = {}
    for ds in datasets.values():
        entries = (ds.card or {}).get("modalities") or {}
        for f in idx.dataset_fields(ds.card):
            entry = out.setdefault(f, {})
            got = entries.get(f, {}).get("dtypes") if isinstance(entries.get(f), Mapping) else None
            if not isinstance(got, Mapping):
                continue
            counts = entry.setdefault("dtypes", {})
            for d, n in got.items():
                try:  # one spelling per dtype ("<f4" and "float32"), as numpy names it
                    d = np.dtype(d).name
                except TypeError:
                    pass
                counts[str(d)] = counts.get(str(d), 0) + (int(n) if isinstance(n, int) else 0)
    for entry in out.values():
        if "dtypes" in entry:
            entry["dtypes"] = dict(sorted(entry["dtypes"].items()))
    return out


def _dtypes_warning(datasets: Mapping[str, ShardDataset], modalities: Sequence[str] | None) -> str | None:
    """The warning for each ``.npy`` field that a batch of the blend holds in another dtype than a dataset of it
    alone gives (a float32 dataset blended with a float64 one: every batch float64, the float32 rows cast up; a
    real one with a complex one: complex, zero imaginary part), or None. The blend batches one dtype per field
    (:func:`_blend_modalities`, :func:`mmdata.types.field_dtypes`), so that it does not depend on which datasets
    share a batch; said here, as shard says it of one dataset's files, since a model built for one dataset's
    dtype would otherwise meet the other's unsaid (QA38 rv1 #2). A dataset mixing dtypes itself already batches
    its common dtype: it is named only if the blend's differs from that.

    Example:
        >>> class D: card = {"modalities": {"imu": {"dtypes": {"float32": 3}}}}
        >>> class E: card = {"modalities": {"imu": {"dtypes": {"float64": 2}}}}
        >>> print(_dtypes_warning({"a": D(), "b": E()}, None))  # doctest: +ELLIPSIS
        blend: field 'imu' is float32 in 'a', float64 in 'b': every batch of the blend holds it in float64 ...
    """
    from mmdata.types import field_dtypes

    common = field_dtypes({"modalities": _blend_modalities(datasets)}, modalities)
    out = []
    for f, dtype in common.items():
        own: dict[str, str] = {}
        for name, ds in datasets.items():
            entry = ((ds.card or {}).get("modalities") or {}).get(f)
            got = entry.get("dtypes") if isinstance(entry, Mapping) else None
            if isinstance(got, Mapping) and got:
                try:
                    own[name] = np.result_type(*(np.dtype(d) for d in got)).name
                except (TypeError, ValueError):
                    continue
        to = str(dtype).removeprefix("torch.")
        if len(set(own.values())) < 2 or all(d == to for d in own.values()):
            continue
        cast = [n for n, d in own.items() if d != to]
        first = next(d for n, d in own.items() if n == cast[0])
        imag = np.dtype(to).kind == "c" and any(np.dtype(own[n]).kind != "c" for n in cast)
        # a cast back to a real dtype would drop the complex datasets' imaginary parts (QA38 C #3): the real view.
        # A cast to `first` is advised only when it keeps every dataset's values near enough (floats to a float:
        # precision only); float64 features cast to int16 became 0 / ±1, and uint16 + int16 wrap either way
        # (QA39 interop #2): then the model takes the common dtype, which holds them all
        lossless = all(np.dtype(d).kind == np.dtype(first).kind == "f" for d in own.values())
        use = (f"x = torch.view_as_real(batch[{f!r}]), real and imaginary parts on a last axis of 2" if imag
               else f"x = batch[{f!r}].to(torch.{first})" if lossless
               else f"build it for {to}: a cast to {first} would not keep the other datasets' values")
        out.append(f"blend: field {f!r} is {', '.join(f'{d} in {n!r}' for n, d in own.items())}: every batch of the "
                   f"blend holds it in {to} (one dtype whichever datasets share a batch), so "
                   f"{', '.join(map(repr, cast))} {'is' if len(cast) == 1 else 'are'} batched in {to}"
                   f"{' (the real rows with a zero imaginary part)' if imag else ''}, not as "
                   f"read alone; a model built for {first} gets {to}: "
                   f"{'cast it where the batch meets the model ' if imag or lossless else ''}"
                   f"{f'({use})' if imag or lossless else use}, save the datasets' {f!r} files in {to}, the dtype that holds them all "
                   f"(np.save(path, x.astype(np.{to}))) and shard again, "
                   f"or leave the field out (modalities=[...])")
    return "; ".join(out) or None


def _unchecked_warning(dups: Mapping[str, Any] | None, paths: Mapping[str, Any]) -> str | None:
    """The warning for the datasets the copy check could not look at (``copies_across_datasets["unchecked"]``: an
    index without member CRC-32s, written by mmdata before 2026-12-04): without it the card's ``samples: 0`` read as
    "checked, no copies" (QA38 D #4). None when every dataset was checked (or the check is off)."""
    names = list((dups or {}).get("unchecked") or [])
    if not names:
        return None
    reasons = (dups or {}).get("unchecked_why") or {}
    which = "; ".join(f"{n!r} ({paths[n]}): {reasons.get(n, 'its index has no member CRC-32s')}" for n in names)
    one = len(names) == 1
    return (f"blend: copies across datasets not checked for {which}; so a sample of "
            f"{'it' if one else 'them'} that another dataset of the blend holds too is not found (read twice an epoch, "
            f"or a test sample of one trained on via the other); re-shard {'it' if one else 'them'} with this mmdata "
            f"(mmdata shard SOURCE NEW_FOLDER --split-from OLD_FOLDER keeps {'its' if one else 'their'} splits) and blend again; "
            f"the blend's card lists {'it' if one else 'them'} (copies_across_datasets['unchecked'])")


def _decoded_channels(rows: Any, mask: Any) -> list[int]:
    """The image channels the reader gives the rows of ``mask`` (sorted, distinct): by ``image_mode`` where the
    index has it (:func:`mmdata.shards.inspect.reader_channels`: ``P`` / ``RGBA`` decode to 3,
    ``L``, ``LA``, ``1`` and 16-bit to 1), else by the bands stored (3 or 4 bands decode to 3; 2 bands, grey + alpha,
    to 1; 1 band is kept as 1: grey, or a palette image of an older index, which the reader makes RGB). QA37 fed #1: a blend of RGB, palette and RGBA
    sites was warned of as not collating, though every image decodes to 3 channels."""
    import pyarrow.compute as pc

    from mmdata.shards.inspect import _READER_CHANNELS_OF_BANDS as BY_BANDS, reader_channels

    bands = rows["image_channels"].combine_chunks().filter(mask)
    got: set[int] = set()
    if "image_mode" in rows.column_names:
        modes = rows["image_mode"].combine_chunks().filter(mask)
        for mode in pc.unique(modes).to_pylist():
            c = reader_channels(str(mode)) if mode is not None else None
            if c is not None:
                got.add(c)
            else:  # a mode Pillow cannot make: its rows go by their bands, as rows without a mode do
                bands_of = bands.filter(pc.is_null(modes) if mode is None else pc.equal(modes, mode))
                got.update(BY_BANDS.get(b, int(b)) for b in pc.unique(bands_of).to_pylist() if b is not None)
    else:
        got.update(BY_BANDS.get(b, int(b)) for b in pc.unique(bands).to_pylist() if b is not None)
    return sorted(got)


def mixed_formats(blend: BlendDataset, normalized: Sequence[str] = ()) -> str | None:
    """A warning when the blend's datasets differ in what one batch cannot mix — image channels (RGB / gray),
    audio sample rates or channels — and none of ``normalized`` (the names of the recipe's normalize ops)
    brings them to one: collate would refuse the first batch that mixes them, long after the blend was made
    (QA33 multisite #11). None when they agree or are normalised."""
    said, spec = [], {}
    for column, what, unit, fixes in _MIXES:
        if blend.modalities is not None and column.split("_")[0] not in blend.modalities:
            continue  # not read (modalities=)
        per = blend._formats.get(column, {})
        if len({v for vs in per.values() for v in vs}) < 2 or len({tuple(vs) for vs in per.values()}) < 2:
            continue
        if any(op in normalized for op in fixes):
            continue
        said.append(f"{what} ({'; '.join(f'{n}: ' + ', '.join(f'{v}{unit}' for v in vs) for n, vs in per.items())})")
        values = [v for vs in per.values() for v in vs]
        if column == "image_channels":
            spec["channels"] = 3 if 3 in values else 1
        elif column == "audio_sample_rate":
            spec["sample_rate"] = max(set(values), key=values.count)
        else:
            spec["mono"] = True
    if not said:
        return None
    args = ", ".join(f"{k}={v!r}" for k, v in spec.items())
    return (f"blend: its datasets differ in {' and '.join(said)}: a batch mixing them does not collate (collate refuses "
            f"it, at the first such batch); read the blend with a recipe whose normalize stage brings every sample to "
            f"one format, e.g. mmdata.loader({{...}}, batch_size, recipe={{'normalize': "
            f"mmdata.augment.recipe.normalize_spec({args})}})")


def _media_keys(rows: Any, crcs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image and audio members of an index table (members, sizes; ``crcs`` its member_crc32) as
    (int64 key, row, position among the table's members flattened): key = size << 32 | CRC-32 (a member of
    4 GiB or more wraps its size: at worst a false candidate, of the same CRC)."""
    import pyarrow.compute as pc

    from mmdata.shards.writer import _MEDIA_MEMBER

    members = rows["members"].combine_chunks()
    row = np.asarray(pc.list_parent_indices(members).to_numpy(), dtype=np.int64)
    names = pc.list_flatten(members)
    size = pc.list_flatten(rows["sizes"].combine_chunks())
    crc = pc.list_flatten(crcs.combine_chunks())
    keep = pc.and_(pc.and_(pc.is_valid(crc), pc.greater(size, 0)),
                   pc.match_substring_regex(names, _MEDIA_MEMBER, ignore_case=True))
    keep = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
    size = np.asarray(size.to_numpy(zero_copy_only=False))[keep].astype(np.uint64)
    crc = np.asarray(crc.to_numpy(zero_copy_only=False))[keep].astype(np.int64).astype(np.uint64) & np.uint64(0xFFFFFFFF)
    return ((size << np.uint64(32)) | crc).view(np.int64), row[keep], np.flatnonzero(keep).astype(np.int64)


def _strong_digests(datasets: Mapping[str, ShardDataset], media: Mapping[str, tuple[Any, ...]], names: list[str],
                    D: np.ndarray, R: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, int]:
    """Per candidate entry (dataset ``D``, row ``R``, flat member position ``P``), the first 8 bytes of its
    member's sha256 as int64: the index's ``member_digest`` where it has one, else read from the shard (only
    these samples: ``keys=``). Returns them and which entries could not be had (a shard unreadable, a member
    gone): those keep 0 (:func:`_unread_match_all` makes them candidates of every entry of their size and CRC-32).
    QA37 blend #6: a PNG's whole-file
    CRC-32 has ~16 bits of variety (its chunks end in their own CRC-32), so size + CRC-32 called different
    images copies."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from mmdata.errors import MMDataError

    out = np.zeros(D.size, np.int64)
    have = np.zeros(D.size, bool)
    for d in np.unique(D).tolist():
        table, _, _, digests = media[names[d]]
        at = np.flatnonzero(D == d)
        if digests is not None:
            # a digest list that does not match the row's members (null, or stale: a series added without
            # digests) gives nothing for that row; the others are found by the member's place in its row
            dl, ml = digests.combine_chunks(), table["members"].combine_chunks()
            d_len = np.asarray(pc.fill_null(pc.list_value_length(dl), -1).to_numpy(zero_copy_only=False), np.int64)
            m_len = np.asarray(pc.fill_null(pc.list_value_length(ml), 0).to_numpy(zero_copy_only=False), np.int64)
            m_start = np.concatenate([[0], np.cumsum(m_len)[:-1]])
            d_start = np.concatenate([[0], np.cumsum(np.maximum(d_len, 0))[:-1]])
            rows_at = R[at]
            aligned = d_len[rows_at] == m_len[rows_at]
            where = np.where(aligned, d_start[rows_at] + (P[at] - m_start[rows_at]), 0)
            flat = pc.list_flatten(dl)
            if not len(flat):
                flat = pa.array([None], pa.int64())  # no digest at all: every member is read below
            taken = flat.take(np.minimum(where, len(flat) - 1))
            ok = aligned & np.asarray(pc.is_valid(taken).to_numpy(zero_copy_only=False), bool)
            # nulls filled first: an int64 column with nulls comes out of to_numpy as float64 (53 bits kept)
            got = np.asarray(pc.fill_null(taken, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            out[at[ok]] = got[ok]
            have[at[ok]] = True
        want = at[~have[at]]
        if not want.size:
            continue
        flat_names = pc.list_flatten(table["members"].combine_chunks())
        per_split: dict[str, dict[str, list[tuple[int, str]]]] = {}
        for e in want.tolist():
            key = table["key"][int(R[e])].as_py()
            member = flat_names[int(P[e])].as_py()
            split = str(table["split"][int(R[e])].as_py())
            per_split.setdefault(split, {}).setdefault(key, []).append((e, member))
        ds = datasets[names[d]]
        for split, wanted in per_split.items():
            try:
                reader = open_dataset(ds.root, split=split, decode=False, partition=False, shuffle=False,
                                      keys=set(wanted), storage_options=ds.storage_options)
                for sample in reader:
                    for e, member in wanted.get(sample.key, []):
                        data = sample.fields.get(member[len(sample.key) + 1:]) if member.startswith(
                            sample.key + ".") else None
                        if isinstance(data, (bytes, bytearray, memoryview)):
                            out[e] = idx.member_digest(data)
                            have[e] = True
            except (MMDataError, OSError):
                continue  # unconfirmed: counted below, said in the card
    return out, ~have


def _unread_match_all(K: np.ndarray, strong: np.ndarray, unread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entries, digests): each entry once with its digest, except an unread one (``unread``), which stands once
    for each distinct digest read among the entries of its size and CRC-32 (``K``), so that it pairs with every one
    of them: an unread member is a copy of any of them for all anyone knows (QA37 evalblend review #2: with
    digest 0 it paired only with other unread entries, and the test copies of a dataset whose shard was gone
    vanished). Unread entries of a K without any read entry keep digest 0: they pair with each other.

    Example:
        >>> e, d = _unread_match_all(np.array([5, 5, 5, 6]), np.array([1, 2, 0, 0]), np.array([0, 0, 1, 1], bool))
        >>> e.tolist(), d.tolist()
        ([0, 1, 2, 2, 3], [1, 2, 1, 2, 0])
    """
    read = np.flatnonzero(~unread)
    pairs = np.unique(np.stack([K[read], strong[read]], axis=1), axis=0) if read.size else np.zeros((0, 2), np.int64)
    uk, ud = pairs[:, 0], pairs[:, 1]  # sorted by K, then digest
    u = np.flatnonzero(unread)
    lo, hi = np.searchsorted(uk, K[u], "left"), np.searchsorted(uk, K[u], "right")
    n = hi - lo
    alone = u[n == 0]
    many = np.repeat(u, n)
    at = np.repeat(lo, n) + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    entries = np.concatenate([read, alone, many]).astype(np.int64)
    digests = np.concatenate([strong[read], strong[alone], ud[at]]).astype(np.int64)
    order = np.argsort(entries, kind="stable")
    return entries[order], digests[order]


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a compare: several times faster than np.unique's hash table on
    these int64 keys)."""
    a = np.sort(a)
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if a.size else a


def _copies(datasets: Mapping[str, ShardDataset], media: Mapping[str, tuple[Any, Any, np.ndarray]], unchecked: list[str],
            k: int = 3) -> dict[str, Any] | None:
    """Samples the blend reads whose image or audio bytes are in another of its datasets too (QA33 multisite #3:
    sites sharded apart, one photo in A's test split and in C's train split, and the blend trained on it
    silently; ``mmdata shard`` finds these only within one dataset). Candidates share a member's size and CRC-32
    (both in every index); they are copies when their sha256 agrees too (the index's ``member_digest``, else only
    the candidates' members are read); text is left out, as shard leaves it out (one short
    caption is many samples'), and so are two names of one folder. ``media``: per dataset with CRC-32s, its
    reader's index table (key, split, members, sizes), its member_crc32 column and which rows the blend reads. Returns None with fewer than two folders, else the card's
    ``copies_across_datasets`` (not ``duplicates``: a dataset card's ``duplicates`` has another layout, that
    of :func:`mmdata.shards.writer.duplicates_across_splits`):

    * ``samples``: samples read with a copy in another dataset;
    * ``other_splits``: those whose copy the blend does not read (another split, or a sample ``keys=`` leaves
      out): a test sample trained on;
    * ``read_twice``: those whose copy the blend reads too, in an earlier dataset (one item twice per epoch;
      each pair counted once);
    * ``examples``: up to k pairs ``[[blend key, split], [blend key, split]]``, copies not read first;
    * ``compared``: ``"sha256"`` (size and CRC-32 find candidates, which :func:`_strong_digests` confirms; PNG
      CRC-32s collide often), or says which stand on size and CRC-32 alone (``unconfirmed``: members that could not
      be read); ``unchecked``: datasets whose index has no CRC-32s (written before 2026-12-04), and
      ``unchecked_why`` (added by :func:`_index_facts`) says why per dataset; both warned of at open.

    Cost: one sort of each folder's media keys to find the keys of two folders (none, mostly: then done);
    only the members holding those are looked at further, and keys are read for the k examples only.
    """
    names = list(datasets)
    folder_of = {n: str(ds.root) for n, ds in datasets.items()}
    if len(set(folder_of.values())) < 2:
        return None
    out: dict[str, Any] = {"samples": 0, "other_splits": 0, "read_twice": 0, "examples": [],
                           "compared": "sha256"}
    if unchecked:
        out["unchecked"] = unchecked
    folders = sorted({folder_of[n] for n in media})
    keyed = {n: _media_keys(rows, crcs) for n, (rows, crcs, *_) in media.items()}
    # candidates: keys in two folders or more (one folder under two names shares all its keys: no copy)
    per_folder = [_unique(keyed[next(n for n in media if folder_of[n] == f)][0]) for f in folders]
    if len(per_folder) < 2:
        return out
    every = np.sort(np.concatenate(per_folder))
    cand = _unique(every[1:][every[1:] == every[:-1]])  # distinct per folder: a repeat is in two folders
    if not cand.size:
        return out
    K, D, F, R, RD, P = [], [], [], [], [], []
    for n, (key, row, pos) in keyed.items():
        m = cand[np.minimum(np.searchsorted(cand, key), cand.size - 1)] == key  # np.isin hashes: slower
        d = names.index(n)
        K.append(key[m]), R.append(row[m]), D.append(np.full(int(m.sum()), d, np.int64)), P.append(pos[m])
        F.append(np.full(int(m.sum()), folders.index(folder_of[n]), np.int64)), RD.append(media[n][2][row[m]])
    K, D, F, R, RD, P = (np.concatenate(a) for a in (K, D, F, R, RD, P))
    # size + CRC-32 only finds candidates: the same bytes are those whose sha256 agrees too
    strong, unread = _strong_digests(datasets, media, names, D, R, P)
    unconfirmed = int(unread.sum())
    at, strong = _unread_match_all(K, strong, unread)
    K, D, F, R, RD = K[at], D[at], F[at], R[at], RD[at]
    out["compared"] = "sha256" if not unconfirmed else "sha256, and size and CRC-32 where the bytes could not be read"
    if unconfirmed:
        out["unconfirmed"] = unconfirmed
    pairs_kd = np.stack([K, strong], axis=1)
    _, K = np.unique(pairs_kd, axis=0, return_inverse=True)
    K = K.reshape(-1).astype(np.int64)
    order = np.lexsort((R, D, K))  # by size, CRC, then dataset and row (as the examples are ordered)
    K, D, F, R, RD = K[order], D[order], F[order], R[order], RD[order]

    def first_of(sel: np.ndarray) -> np.ndarray:
        """Per entry, the first entry (index) of its key among ``sel`` (sorted indices); -1 where none."""
        got = np.full(K.size, -1, np.int64)
        if sel.size:
            ks = K[sel]  # sorted: a key's first entry starts its run
            at = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
            uk = ks[at]
            pos = np.minimum(np.searchsorted(uk, K), uk.size - 1)
            got = np.where(uk[pos] == K, sel[at][pos], -1)
        return got

    def partner(status: bool) -> np.ndarray:
        """Per entry, the first entry of its key with read == ``status`` in another folder; -1 where none."""
        sel = np.flatnonzero(RD == status)
        a = first_of(sel)
        b = first_of(sel[F[sel] != F[np.maximum(a[sel], 0)]])  # the first in a folder other than a's
        return np.where((a >= 0) & (F[np.maximum(a, 0)] != F), a, b)

    gone, seen = partner(False), partner(True)
    leaked = RD & (gone >= 0)
    twice = RD & (seen >= 0) & (D[np.maximum(seen, 0)] < D)  # a pair read twice: counted at its later dataset
    if not leaked.any() and not twice.any():
        return out
    sample = (D << 40) | R
    pairs = []
    for mask, other in ((leaked, gone), (twice, seen)):
        ids, at = np.unique(sample[mask], return_index=True)  # per sample, its first member's copy (by size, CRC)
        pairs.append((ids, np.flatnonzero(mask)[at], other))
    shown_pairs = [(int(e), int(o[e])) for _, at, o in pairs for e in at[:k]][:k]
    def shown(d: int, r: int) -> list[str]:
        table = media[names[d]][0]
        return [f"{names[d]}/{table['key'][r].as_py()}", str(table["split"][r].as_py())]

    out.update({"samples": int(np.union1d(pairs[0][0], pairs[1][0]).size), "other_splits": int(pairs[0][0].size),
                "read_twice": int(pairs[1][0].size),
                "examples": [[shown(int(D[a]), int(R[a])), shown(int(D[b]), int(R[b]))] for a, b in shown_pairs]})
    return out


def _duplicates_warning(dups: Mapping[str, Any]) -> str:
    """The warning for :func:`_copies`' entry (some sample found)."""
    ex = dups["examples"][0]
    said = []
    n = dups["other_splits"]
    if n:
        said.append(f"{plural(n, 'sample')} of the blended split{'' if n == 1 else 's'} {'holds' if n == 1 else 'hold'} "
                    f"the same image or audio bytes as a sample of another of its datasets in a split the blend does "
                    f"not read (one item in two splits: a test sample that is also trained on)")
    n = dups["read_twice"]
    if n:
        said.append(f"{plural(n, 'sample')} {'is a copy of a sample' if n == 1 else 'are copies of samples'} of an "
                    f"earlier dataset of the blend, both read (one item read twice per epoch under two names)")
    how = ("confirmed by sha256" if dups.get("compared") == "sha256"
           else f"confirmed by sha256 where the bytes could be read; {dups.get('unconfirmed', 'some')} members could "
                f"not be read: each counted as a copy of every member of its size and CRC-32, not proof")
    return (f"blend: {'; '.join(said)} ({how}; e.g. {ex[0][0]!r} "
            f"({ex[0][1]}) and {ex[1][0]!r} ({ex[1][1]})); the blend's card lists them (copies_across_datasets; check_copies=False skips this check); remove the copies "
            f"from one dataset, or re-shard so that each item is in one split")


def _at(frac: Fraction, count: int) -> int:
    """The position ``frac`` of the way through a share of ``count`` samples (half up: slices that meet
    at one fraction meet at one position)."""
    return math.floor(frac * count + Fraction(1, 2))


def _pass_over(ds: ShardDataset, samples: Iterator[Sample], skip: int) -> int:
    """Resume: read the first ``skip`` of ``samples`` (what the saved run yielded) with ``ds``'s losses
    uncounted — that run counted them; returns how many there were (fewer: the samples ended first)."""
    quiet, ds._quiet = ds._quiet, True
    try:
        return sum(1 for _ in islice(samples, skip))
    finally:
        ds._quiet = quiet


def _until(samples: Iterator[Sample], end: int) -> Iterator[Sample]:
    """The samples whose position (consumed, losses included) is below ``end``."""
    for s in samples:
        if int(s.meta.get("position", 0)) >= end:
            return
        yield s


def blend(datasets: Mapping[str, str | Path], weights: Mapping[str, float] | None = None,
          split: str | Mapping[str, str] = "train", modalities: Sequence[str] | None = None, shuffle: bool = False,
          seed: int = 0, epoch: int = 0, on_error: str = "raise",
          label_map: Mapping[str, Mapping[str, str]] | None = None, check_copies: bool = True,
          **reader_kw: Any) -> BlendDataset:
    """Read several dataset folders as one dataset, each ``weights[name]`` times per epoch.

    Args:
        datasets: ``{name: dataset folder}`` (local or URL, as :func:`open_dataset` takes); the names
            prefix the keys (``"<name>/<key>"``) and are ``meta["source"]``.
        weights: passes over each dataset per epoch (default 1): 2 reads it twice (two shuffles), 0.5
            half of it (another half each epoch when shuffled), 0 not at all.
        split: the split to read, or ``{name: split}`` when the datasets name them differently.
        label_map: class names renamed before the merge by name, per dataset: ``{"C": {"Cat": "cat", "cats":
            "cat"}}`` puts C's 'Cat' and 'cats' samples in the class 'cat' (a name the dataset does not have
            raises ShardError naming its classes). The blend warns of names of two datasets that differ only
            in case or spaces, with the ``label_map`` that merges them.
        check_copies: look for image / audio members whose bytes (size and CRC-32, confirmed by sha256) are in
            another of the datasets too (a test sample of A trained on via C; a sample read twice) and warn; the card's
            ``copies_across_datasets`` lists them. It reads three list columns of each index and sorts
            their keys: ~0.1-0.2 s per 100k samples (see docs/bad-input-read.md); False skips it (the
            format check stays: it reads four small columns).
        modalities, shuffle, seed, epoch, on_error, **reader_kw: as :func:`open_dataset` (``decode``
            and ``partition`` must stay True).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> for n, name in ((4, "a"), (2, "b")):
        ...     _ = mmdata.shard(make_sample_folder(f"{t}/{name}", n=n, labels=False), f"{t}/ds_{name}", progress=False)
        >>> ds = blend({"a": f"{t}/ds_a", "b": f"{t}/ds_b"}, weights={"b": 2})
        >>> [s.key for s in ds]  # b read twice: its second read's keys end in #r1
        ['a/000000', 'a/000001', 'a/000002', 'a/000003', 'b/000000', 'b/000001', 'b/000000#r1', 'b/000001#r1']
    """
    out = BlendDataset(datasets, weights=weights, split=split, modalities=modalities, shuffle=shuffle, seed=seed,
                       epoch=epoch, on_error=on_error, label_map=label_map, check_copies=check_copies, **reader_kw)
    mixed = mixed_formats(out)  # no recipe here: collate_fn, or a DataLoader's, would refuse mixed batches
    if mixed is not None:
        say_to_caller([mixed], UserWarning, stacklevel=3)
    return out
