"""``mmdata.loader``: batches of aligned, augmented samples for a training loop.

```
shards ─open_dataset─▶ [balance] ─▶ workers: recipe normalize stage [+ random sections] ─collate─▶ Batch
   ─▶ main process: pin + .to(device, non_blocking) [+ next batch prefetched on a CUDA side stream]
   ─▶ (device: recipe.apply_batched) ─▶ recipe.apply_batch_section ─▶ yield
```

* The recipe's ``normalize`` stage (to_rgb, resize, resample, to_mono, pad_trim, max_tokens, ...)
  always runs per sample before collate, in the DataLoader workers, so samples of mixed sizes, image
  modes, sample rates and channel counts collate in both modes.
* ``augment_on="workers"``: the random sections' per-sample CPU kernels run inside the workers too.
* ``augment_on="device"``: workers decode, normalize and collate; the random sections' batched torch
  kernels run on ``device`` after the copy. On an accelerator (``plan_in_workers``) the workers also
  draw each sample's params (:meth:`Recipe.plan_batched`: shape-only kernels on a 'meta' copy), so the
  main process only launches kernels: the per-sample draws were the host's main cost there (measured
  on an H200: benchmarks/RESULTS.md); without workers, on the CPU, or for a recipe that cannot be
  planned ahead (targets, mixed image sizes, a user op that reads its data), the main process draws. Both modes
  draw the same params per sample (``param_rng(seed', epoch, key, op id)``), so exact ops give the same
  batches either way.
* ``stage="eval"``: the normalize stage only — no random ops, no balance, no batch mixing, and no
  shuffle unless asked (``shuffle=True``): what validation and test data get.
* The augmentation seed is ``params_seed(recipe.seed, seed)``: one loader seed fixes the order, the
  balance draws and the augmentation draws; the recipe's own seed still distinguishes recipes.
* ``cache=True`` decodes (and normalizes: the stage is deterministic) the split once into memory, in
  the main process, and serves later epochs from there — for small datasets such as the embedded
  avdigits (a few MB decoded). The process keeps the last few decoded splits of a dataset folder
  (:func:`decoded_split`), so the next loader of the same split — the next run of an ablation
  worker — does not decode again; :func:`clear_decoded` frees them.
* Long clips: when the normalize stage trims audio keeping the start (``pad_trim`` after ``to_mono`` /
  ``resample``: the trainer's ``max_seconds``), the reader decodes only the frames that stage reads
  (``open_dataset(audio_max_frames=)``, :func:`mmdata.augment.audio.decode_frames`: the resampler's
  reach included), with the same normalized tensors, bit for bit: an hour-long clip costs its first
  seconds. ``audio_max_frames=None`` decodes whole clips.
* Padding: a batch of images of several sizes, or of clips much shorter than the batch's length
  (the normalize stage's ``pad_trim``, else the longest clip), is warned about once per loader.
* Epochs: ``set_epoch(e)`` picks the next pass's epoch; without it every new pass over the loader is
  the next epoch (new order, balance and augmentation draws), like the datasets it wraps.
* Resume: ``state_dict()`` after k batches, ``load_state_dict()`` on a fresh loader → exactly the
  remaining batches of that epoch, also with DataLoader workers (the readers are rotated so the
  in-order round robin continues with the right worker). With ``balance`` a sample can come in several
  copies (``<key>#r<i>``), spread over a shuffled block of positions that a batch boundary may split: the
  state then points at the block and says how many of its rows were handed out (``copies``), and the
  resumed pass yields the rest.
* Variable-length audio: ``max_duration=SECONDS`` batches by duration (:mod:`mmdata.augment.bucketing`):
  in each worker, samples of one duration bucket per batch, the padded cost (longest clip x samples)
  within the budget; ``batch_size`` then caps the samples (None: no cap); ``len()`` is unknown.
* Skips (``on_error="skip"``): ``skipped`` is the epoch's count (reason -> samples), the same for any
  ``num_workers`` — workers post theirs to shared memory (:class:`~mmdata.shards.reader.SkipBoard`) —
  and ``errors`` the first details (shard, key, message); a state carries both up to each reader's
  last sample handed out, so a resumed pass reports the uninterrupted epoch's.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import multiprocessing
import os
import pickle
import sys
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing import context as mp_context
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from mmdata.augment.audio import decode_frames
from mmdata.augment.balance import Balanced, BalancePlan, index_groups
from mmdata.augment.base import Op
from mmdata.augment.bucketing import BATCH_INDEX, OVER_BUDGET, Bucketed, bucket_edges, check_bucketing
from mmdata.augment.image import blends_alpha
from mmdata.augment.recipe import BALANCE_KEYS, Recipe, load_recipe, params_seed, refusal, validate_balance
from mmdata.checks import expect_int, expect_names, expect_state, unknown_keywords, usable_device
from mmdata.errors import MMDataError, RecipeError, ShardError
from mmdata.rng import check_epoch, derive, derive_int
from mmdata.shards import index as idx
from mmdata.shards.blend import BlendDataset, mixed_formats
from mmdata.shards.reader import (AUDIO_SECONDS, EpochClock, ShardDataset, SkipBoard, absolute_sources, check_positions,
                                   check_unsized_state, dist_rank_world, expect_keys, merge_errors, open_dataset,
                                   other_ranks_state, reader_id, summed_counts)
from mmdata.types import MASKED_MODALITIES, TOKENIZER, Batch, Sample, as_tokenizer, collate, with_lengths, with_masks
from mmdata.urls import is_remote

AUGMENT_ON = ("workers", "device")
#: batch.meta key of the params a worker drew ahead for ``augment_on="device"`` (:func:`_collate_planned`)
PLAN = "plan"


def _warm_meta(recipe: Recipe) -> None:
    """Plan made-up batches once in this process: torch imports and sets up its 'meta' kernels on their
    first call (1-2 s), which DataLoader workers forked afterwards then inherit instead of paying it at
    every epoch's start (measured: an avdigits epoch with 2 workers took 2.2 s instead of 0.4 s). 64
    rows, so that every op of the recipe is drawn as applied on some; grey and colour images."""
    g = torch.Generator().manual_seed(0)
    for channels in (1, 3):
        samples = [Sample(f"warm{i}", {"image": torch.randint(0, 256, (channels, 24, 24), dtype=torch.uint8, generator=g),
                                       "audio": torch.randn(1, 4000, generator=g) * 0.1, "text": "a warm up text of some words",
                                       "label": i % 2}, sample_rate=16000) for i in range(64)]
        try:
            recipe.plan_batched(collate(samples), 0)
        except Exception:  # noqa: BLE001 - a warm-up only: a recipe for other fields plans its own batches
            pass


def _collate_with(samples: list[Sample], fields: Sequence[str], tokenizer: Any, dtypes: Any = None) -> Batch:
    """The loader's collate: the dataset's ``fields`` kept, texts encoded with ``tokenizer`` (the loader's
    ``tokenizer=``), which the batch does not carry out of the worker (a Hugging Face tokenizer would be
    pickled with every batch): the main process puts it back in ``batch.meta["tokenizer"]``; ``dtypes``: the
    one dtype of each ``.npy`` field whose files mix dtypes (:func:`mmdata.types.field_dtypes` of the card)."""
    batch = collate(samples, tokenizer=tokenizer, fields=fields, dtypes=dtypes)
    batch.meta.pop(TOKENIZER, None)
    return batch


def _collate_planned(samples: list[Sample], collate_fn: Any, recipe: Recipe, epoch: int) -> Batch:
    """A worker's collate for ``augment_on="device"``: the batch, with its random steps' params drawn
    here (:meth:`Recipe.plan_batched`) under ``meta["plan"]`` when the recipe can be planned ahead."""
    batch = collate_fn(samples)
    plan = recipe.plan_batched(batch, epoch)
    if plan is not None:
        batch.meta[PLAN] = {"epoch": epoch, "steps": plan}
    return batch


#: a batch whose shortest clip is under this share of the batch's length (the normalize length) is
#: warned about: more than half of that clip is zero padding
AUDIO_PADDING_WARN = 0.5
STAGES = ("train", "eval")
#: open_dataset's options a loader passes on (``**reader_kw``); the others it sets from its own arguments
READER_OPTIONS = tuple(p for p in inspect.signature(open_dataset).parameters
                       if p not in ("path", "split", "modalities", "shuffle", "seed", "epoch", "on_error"))


class PaddingWarning(UserWarning):
    """A loader's batches are mostly zero padding (images of several sizes, clips much shorter than the
    batch): said once per loader (a training run collects its loaders' and says it once, mmdata.train.padding)."""


class EpochWarning(UserWarning):
    """``loader.sampler.set_epoch(e)`` came while a pass of another epoch was handing out batches and
    that pass went on: its batches keep their own epoch's order and draws. Lightning does this to a loader
    without ``len()`` in a fit resumed from a checkpoint written at an epoch's end (see :class:`_EpochHook`)."""


class MemoryDataset(IterableDataset):  # type: ignore[type-arg]
    """Decoded samples held in memory, served like a ShardDataset (shuffle, reader split, resume,
    epochs that advance per iteration unless ``set_epoch`` is called)."""

    def __init__(self, samples: list[Sample], *, shuffle: bool, seed: int, epoch: int = 0,
                 skipped: dict[str, int] | None = None) -> None:
        self.samples = samples
        self.skipped = dict(skipped or {})  # samples the decoding pass dropped (on_error="skip" / "warn")
        self.shuffle = shuffle
        self.seed = seed
        self.rotation = 0
        self._skip: dict[int, int] = {}
        self._clock = EpochClock(epoch)
        self._dist: tuple[int, int] | None = None  # recorded when sent to a worker

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_dist"] = dist_rank_world() or self._dist  # the rank when iteration starts, not at construction
        return state

    @property
    def epoch(self) -> int:
        return self._clock.current()

    def set_epoch(self, epoch: int) -> None:
        self._clock.set(epoch)
        self._skip = {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._clock.set(int(state["epoch"]))
        self._skip = {int(k): int(v) for k, v in state.get("positions", {}).items()}

    def samples_per_reader(self, readers: int, epoch: int | None = None) -> list[int]:
        """Samples each of ``readers`` readers yields per epoch, any epoch (see ShardDataset.samples_per_reader)."""
        return [len(range(r, len(self.samples), readers)) for r in range(readers)]

    def __iter__(self) -> Iterator[Sample]:
        epoch, gen = self._clock.begin()
        rid, n = reader_id(dist_rank_world() or self._dist, self.rotation)
        order = range(len(self.samples))
        if self.shuffle:
            order = derive(self.seed, epoch, "memory-order", 0).permutation(len(self.samples)).tolist()
        skip = self._skip.get(rid, 0) if gen == 0 else 0
        for pos, i in enumerate(list(order)[rid::n]):
            if pos < skip:
                continue
            s = self.samples[i]
            yield Sample(s.key, s.fields, s.sample_rate, {**s.meta, "reader": rid, "position": pos, "epoch": epoch})
        self._skip.pop(rid, None)


_PASS_LOCK = threading.Lock()  # Loader._claim_pass: two threads starting passes of one loader at once


# Decoded splits kept for the next loader of the same split in this process: an ablation worker trains
# run after run on one dataset, and decoding it (PNG, FLAC) was a tenth of each run's CPU. Keyed by the
# dataset folder's files (path, inode, size, mtime of dataset.json and index.parquet: a rewritten
# folder is decoded again), the split, the fields, the reader's options and the normalize stage.
# Samples are never modified in place (ops return new tensors; an op defined outside mmdata works on a
# private copy, augment.contract.checked_transform), so sharing them is safe.
DECODED_KEEP = 3  # splits (train, val and test of one dataset)
_decoded: OrderedDict[str, tuple[list[Sample], dict[str, int]]] = OrderedDict()


def _folder_identity(path: Any) -> list[Any] | None:
    if not isinstance(path, (str, Path)) or is_remote(str(path)):
        return None
    folder = Path(path)
    try:
        stats = [(folder / name).stat() for name in ("dataset.json", "index.parquet")]
    except OSError:
        return None  # not a dataset folder (tars, patterns): not memoised
    return [str(folder.resolve()), *[(st.st_ino, st.st_size, st.st_mtime_ns) for st in stats]]


#: the skip reason of a sample the recipe refused (a target of another size than its image, a random_crop
#: larger than the image) while the reader skips bad samples (on_error="skip" / "warn")
RECIPE_REFUSED = "refused by the recipe"


def _count_refused(reader: ShardDataset, sample: Sample, exc: Exception) -> None:
    """Count ``sample``, which the recipe refused, among ``reader``'s skipped samples (:data:`RECIPE_REFUSED`)."""
    meta = sample.meta
    if isinstance(reader, BlendDataset):  # its place in the blend's plan, its position in its dataset's share
        at, place = meta.get("source_position"), meta.get("position")
        reader._count(RECIPE_REFUSED, str(meta.get("shard", "?")), sample.key, refusal(exc),
                      at=int(at) if at is not None else None, place=int(place) if place is not None else None)
        return
    at = meta.get("position")  # its place in errors (the order of the reader's stream)
    # after: in the records (meta["skipped"]) of the samples after it, which a resumed loader starts from
    reader._count(RECIPE_REFUSED, str(meta.get("shard", "?")), sample.key, refusal(exc),  # the step that refused it
                  at=int(at) if at is not None else None, after=True)


def _audio_lengths(recipe: Recipe) -> bool:
    """Whether samples should carry their clip's length in ``meta["audio_seconds"]`` before ``recipe``'s
    normalize stage: when that stage has audio ops, which may pad or trim every clip to one length (the
    batch's lengths then no longer tell a short clip; :meth:`Loader._note_audio_padding` reads it)."""
    return bool(recipe.normalize_sections.get("audio"))


def _with_length(sample: Sample) -> Sample:
    """``sample`` with its clip's length in seconds in ``meta["audio_seconds"]`` (the reader's, when it
    decoded only the start of the clip); as it was without audio."""
    x = sample.fields.get("audio")
    if x is None or AUDIO_SECONDS in sample.meta or not sample.sample_rate or not hasattr(x, "shape"):
        return sample
    return sample.with_meta(**{AUDIO_SECONDS: round(int(x.shape[-1]) / int(sample.sample_rate), 6)})


def decoded_split(path: Any, split: str, modalities: Sequence[str] | None, on_error: str, reader_kw: dict[str, Any],
                  recipe: Recipe) -> tuple[list[Sample], dict[str, int]]:
    """A whole split decoded and normalized (the normalize stage is deterministic), and the samples the
    pass skipped — from this process's memo when the same dataset folder's split was decoded before."""
    ident = _folder_identity(path)
    key = None
    if ident is not None:
        spec = recipe.to_dict()  # its normalize stage and the targets that move with it
        norm = [spec.get("normalize"), spec.get("targets")]
        key = json.dumps([ident, split, list(modalities) if modalities is not None else None, on_error, norm,
                          sorted(reader_kw.items())], default=repr)
        if key in _decoded:
            _decoded.move_to_end(key)
            return _decoded[key]
    ds = open_dataset(path, split=split, modalities=modalities, shuffle=False, on_error=on_error, partition=False,
                      **reader_kw)  # the whole split; MemoryDataset partitions
    # normalize is deterministic: cache its output (smaller, and done once instead of every epoch)
    decoded = []
    lengths = _audio_lengths(recipe)
    for s in ds:
        try:
            meta = {"shard": s.meta.get("shard")}
            if lengths and AUDIO_SECONDS in s.meta:
                meta[AUDIO_SECONDS] = s.meta[AUDIO_SECONDS]
            kept = Sample(s.key, s.fields, s.sample_rate, meta)
            decoded.append(recipe.normalize(_with_length(kept) if lengths else kept))
        except ShardError as exc:  # refused by the recipe (a target of another size): skipped like a bad member
            if on_error == "raise" or not isinstance(ds, ShardDataset):
                raise
            _count_refused(ds, s, exc)
    out = (decoded, dict(getattr(ds, "skipped", {})))
    if key is not None:
        _decoded[key] = out
        while len(_decoded) > DECODED_KEEP:
            _decoded.popitem(last=False)
    return out


def clear_decoded() -> None:
    """Forget the decoded splits this process keeps (see :func:`decoded_split`)."""
    _decoded.clear()


class _Augmented(IterableDataset):  # type: ignore[type-arg]
    """Per-sample recipe stages in the DataLoader workers: ``"train"`` (normalize + random sections) or
    ``"eval"`` (normalize only), then the loader's ``transform`` (None: none). ``reader``: the ShardDataset
    that skips bad samples — a sample the recipe or the transform refuses (ShardError) is then skipped and
    counted there, like one that does not decode."""

    def __init__(self, source: Any, recipe: Recipe | None, stage: str, reader: ShardDataset | None = None,
                 transform: Callable[[Sample], Sample] | None = None) -> None:
        self.source = source
        self.recipe = recipe
        self.stage = stage
        self.reader = reader
        self.transform = transform
        self.lengths = _audio_lengths(recipe) if recipe is not None else False

    def __iter__(self) -> Iterator[Sample]:
        default = int(getattr(self.source, "epoch", 0))
        for s in self.source:  # a source that fixes the epoch when its iteration starts says so in meta["epoch"]
            if self.lengths:
                s = _with_length(s)
            try:
                out = s if self.recipe is None else self.recipe.apply_sample(s, int(s.meta.get("epoch", default)),
                                                                             self.stage)
                if self.transform is not None:
                    out = _transformed(self.transform, out)
            except ShardError as exc:
                if self.reader is None:
                    raise
                _count_refused(self.reader, s, exc)
                continue
            yield out


def _transformed(transform: Callable[[Sample], Sample], s: Sample) -> Sample:
    """``transform(s)``, checked: a :class:`~mmdata.Sample` with the same key (what collate, the state's
    positions and the skip counts rely on); anything else is an error naming the sample and the function."""
    name = getattr(transform, "__qualname__", None) or repr(transform)
    try:
        out = transform(s)
    except TypeError as exc:
        if "does not support item assignment" not in str(exc) and "does not support item deletion" not in str(exc):
            raise
        # webdataset's .map functions change their dict in place; a Sample is immutable (QA25 R1-3)
        raise MMDataError(f"loader(transform={name}): sample {s.key!r}: {exc}: a Sample is not changed in place; "
                          f"return s.with_fields(name=value) (or s.without('audio')) instead") from exc
    if not isinstance(out, Sample):
        raise MMDataError(f"loader(transform={name}): sample {s.key!r}: returned {type(out).__name__}, expected the "
                          f"mmdata.Sample it was given, changed or with fields added (s.with_fields(name=value), "
                          f"s.without('audio')); to skip a sample raise mmdata.errors.ShardError under "
                          f"on_error='skip'")
    if out.key != s.key:
        raise MMDataError(f"loader(transform={name}): sample {s.key!r} came back with key {out.key!r}; keep the key "
                          f"(positions, resume and skip counts are by key)")
    return out


class Loader:
    """Iterable of :class:`~mmdata.Batch` (see :func:`loader`)."""

    #: as a DataLoader over an iterable dataset has: Lightning reads it beside :attr:`sampler` for every
    #: val / test / predict loader (distributed QA: ``AttributeError`` in ``trainer.predict``)
    batch_sampler = None

    def __init__(self, path: str | Path | Sequence[Any] | Mapping[str, str | Path], batch_size: int | None = None, *, recipe: Any = None,
                 split: Any = "train", seed: int = 0,
                 epoch: int = 0, num_workers: int = 0, device: str | torch.device = "cpu", augment_on: str = "workers",
                 balance: Any = None, shuffle: bool | None = None, drop_last: bool = False, pin_memory: bool | None = None,
                 prefetch: int | None = None, cache: bool = False, modalities: Sequence[str] | None = None,
                 on_error: str = "raise", stage: str = "train", weights: Mapping[str, float] | None = None,
                 label_map: Mapping[str, Mapping[str, str]] | None = None, check_copies: bool = True,
                 plan_in_workers: bool | None = None, multiprocessing_context: Any = None,
                 worker_init_fn: Callable[[int], None] | None = None, timeout: float = 0,
                 transform: Callable[[Sample], Sample] | None = None, max_duration: float | None = None,
                 buckets: int | None = None, bucket_buffer: int | None = None, tokenizer: Any = None,
                 **reader_kw: Any) -> None:
        # every argument checked here, before a worker starts: a wrong one names itself and what it
        # takes, not a torch assertion or a "'<' not supported" from inside the first batch
        unknown_keywords("loader", reader_kw, loader_keywords(), NOT_DATALOADER_OPTIONS)
        check_worker_options(multiprocessing_context, worker_init_fn, timeout, num_workers)
        if transform is not None and not callable(transform):
            raise MMDataError(f"transform: a function of one mmdata.Sample returning a Sample, run in the workers "
                              f"after the recipe's per-sample stages, got {transform!r}")
        self.transform = transform
        self.tokenizer = _check_tokenizer(tokenizer)
        # the DataLoader options the loader passes on as they are (its workers' start method, their set-up, how
        # long to wait for a batch): torch checks them when the workers start
        self.worker_options = {"multiprocessing_context": multiprocessing_context, "worker_init_fn": worker_init_fn,
                               "timeout": timeout}
        if augment_on not in AUGMENT_ON:
            raise MMDataError(f"augment_on must be one of {AUGMENT_ON}, got {augment_on!r}")
        if stage not in STAGES:
            raise MMDataError(f"stage must be one of {STAGES}, got {stage!r}")
        if plan_in_workers not in (None, True, False):
            raise MMDataError(f"plan_in_workers must be True, False or None (when device is not the CPU), got {plan_in_workers!r}")
        if plan_in_workers and augment_on != "device":
            raise MMDataError("plan_in_workers=True: the workers draw params ahead for the batched kernels of "
                              f"augment_on='device'; with augment_on={augment_on!r} they run the per-sample kernels "
                              "themselves (drop plan_in_workers, or use augment_on='device')")
        shuffle = stage == "train" if shuffle is None else shuffle
        self._bucketing: dict[str, Any] | None = None
        if max_duration is not None:  # duration-bucketed batches (mmdata.augment.bucketing); batch_size: a cap or None
            budget, nb, held = check_bucketing(max_duration, 10 if buckets is None else buckets, bucket_buffer, batch_size)
            self._bucketing = {"max_duration": budget, "buckets": nb, "bucket_buffer": held, "batch_size": batch_size}
        elif buckets is not None or bucket_buffer is not None:
            raise MMDataError(f"buckets={buckets!r} / bucket_buffer={bucket_buffer!r}: they shape batches by duration, "
                              "which needs max_duration= (seconds of audio per batch)")
        elif batch_size is None:
            raise MMDataError("batch_size: samples per batch (an int >= 1), or max_duration=SECONDS to batch audio by "
                              "duration; got neither")
        else:
            batch_size = expect_int(batch_size, "batch_size", minimum=1)  # type: ignore[assignment]
        seed = expect_int(seed, "seed")  # type: ignore[assignment]
        with contextlib.suppress(TypeError):  # a 0-d integer tensor / array is its int (as param_rng takes it)
            epoch = check_epoch(epoch)
        epoch = expect_int(epoch, "epoch", minimum=0)  # type: ignore[assignment]
        num_workers = expect_int(num_workers, "num_workers", minimum=0)  # type: ignore[assignment]
        if prefetch is not None:
            prefetch = expect_int(prefetch, "prefetch", minimum=1,  # type: ignore[assignment]
                                  unit="batches each worker loads ahead")
            if num_workers == 0:  # torch's DataLoader refuses prefetch_factor without workers; a warning here
                warnings.warn(f"mmdata.loader: prefetch={prefetch} has no effect with num_workers=0: it is the batches "
                              "each DataLoader worker loads ahead, and without workers each batch is loaded when "
                              "asked; set num_workers >= 1 for prefetching", UserWarning, stacklevel=3)
        modalities = expect_names(modalities, "modalities")  # "image": one name, not its letters
        if modalities is not None and "label" not in modalities:
            # the label is the target, not an input to choose: modalities=["iq"] kept batches without it (QA38 C #8)
            modalities = (*modalities, "label")
        if "required" in reader_kw:
            reader_kw["required"] = expect_names(reader_kw["required"], "required")
        if balance is not None:
            _check_balance(balance)
        # local names made absolute once: the index, balance groups and shards a later pass reads are the ones
        # opened here, also after a chdir (a notebook's %cd)
        path = ({name: absolute_sources(p) for name, p in path.items()} if isinstance(path, Mapping)
                else absolute_sources(path))
        self.path = path
        self.batch_size = batch_size
        self.split = split
        self.seed = seed
        self._epoch = epoch  # the epoch of the pass under way or last run (see the epoch property)
        self.num_workers = num_workers
        self.device = usable_device(device, "device=")  # an MMDataError naming it, not torch's bare RuntimeError
        # augment_on="device" with workers: the workers draw each batch's params (Recipe.plan_batched) so the
        # process feeding an accelerator only launches kernels; on the CPU the shape-only pass would cost the
        # workers more than the draws save the main process (they share the same cores)
        self.plan_in_workers = self.device.type != "cpu" if plan_in_workers is None else plan_in_workers
        self.augment_on = augment_on
        self.stage = stage
        self.drop_last = drop_last
        self.prefetch = 2 if prefetch is None else prefetch  # torch's default prefetch_factor
        self.pin_memory = self.device.type == "cuda" if pin_memory is None else bool(pin_memory)
        if self.pin_memory and not _can_pin():
            # as torch's DataLoader: pinned memory needs an accelerator; without one, warn and do not pin
            warnings.warn("mmdata.loader: pin_memory=True but no accelerator is available; batches are not "
                          "pinned", UserWarning, stacklevel=3)
            self.pin_memory = False
        base = load_recipe(recipe)
        self.recipe = base.with_seed(params_seed(base.seed, seed))
        if "image_max_size" not in reader_kw:  # image_max_size=None turns the hint off
            reader_kw["image_max_size"] = self.recipe.image_decode_hint()
        elif reader_kw["image_max_size"] is not None and self.recipe.targets:
            raise MMDataError(f"image_max_size={reader_kw['image_max_size']!r} decodes JPEG images scaled down, but not the "
                              f"recipe's targets ({', '.join(self.recipe.targets)}), which must keep the image's size: leave "
                              "image_max_size out (a recipe with targets decodes images at full size)")
        if "image_alpha" not in reader_kw:
            reader_kw["image_alpha"] = blends_alpha(self.recipe)
        if "photo_fields" not in reader_kw:  # a view declared `image` decodes as a photo (QA39 ecommerce #1)
            reader_kw["photo_fields"] = self.recipe.photo_fields()  # one list with preview / augment (QA39 codecs review #1)
        if "audio_max_frames" not in reader_kw:  # audio_max_frames=None turns the hint off
            # the frames of each clip the normalize stage reads (it trims them): the rest is not decoded
            reader_kw["audio_max_frames"] = decode_frames(self.recipe)
        blended = isinstance(path, Mapping)
        if weights is not None and not blended:
            raise MMDataError(f"weights={weights!r}: weights blend several datasets; pass them as a mapping of names to "
                              f"dataset folders, e.g. loader({{'mine': 'data/mine', 'public': 'data/public'}}, ..., "
                              f"weights={{'public': 0.5}})")
        if label_map is not None and not blended:
            raise MMDataError(f"label_map={label_map!r}: it renames the classes of a blend's datasets before they are "
                              f"merged by name; pass the datasets as a mapping of names to folders, e.g. loader({{'A': "
                              f"'data/a', 'C': 'data/c'}}, ..., label_map={{'C': {{'Cat': 'cat'}}}})")
        if check_copies is not True and not blended:
            raise MMDataError(f"check_copies={check_copies!r}: it switches off a blend's check for copies "
                              f"across its datasets; one dataset folder has none to check (mmdata shard checks its "
                              f"splits)")
        if blended and cache:
            raise MMDataError("cache=True with a blend of datasets: the cache holds one dataset folder's split; read the "
                              "blend without cache")
        if self._bucketing is not None and blended:
            raise MMDataError("max_duration with a blend of datasets is not supported yet: bucket one dataset folder, "
                              "or blend with a fixed batch_size")
        if self._bucketing is not None and (balance if balance is not None else base.balance) is not None \
                and stage == "train":
            raise MMDataError("max_duration with balance is not supported yet: balance repeats samples that a duration "
                              "batch may split; use balance with a fixed batch_size, or no balance")
        if blended and (balance if balance is not None else base.balance) is not None and stage == "train":
            raise MMDataError("balance with a blend of datasets is not supported: the blend's weights set how often each "
                              "dataset comes; balance one dataset folder")
        self.source: ShardDataset | MemoryDataset | BlendDataset
        if blended:
            self.source = BlendDataset(path, weights=weights, split=split, modalities=modalities, shuffle=shuffle,
                                       seed=seed, epoch=epoch, on_error=on_error, label_map=label_map,
                                       check_copies=check_copies, **reader_kw)
            ran = [op.name for ops in self.recipe.normalize_sections.values() for op in ops]
            mixed = mixed_formats(self.source, ran)
            if mixed is not None:  # said now, not as collate's refusal of the first batch that mixes the datasets
                warnings.warn(mixed, UserWarning, stacklevel=3)
        else:
            self.source = open_dataset(path, split=split, modalities=modalities, shuffle=shuffle, seed=seed, epoch=epoch,
                                       on_error=on_error, **reader_kw)
        # every batch carries the dataset's fields (presence masks; -1 labels, empty texts), also one
        # none of whose samples has a label or some modality
        fields = idx.dataset_fields(self.source.card, modalities)
        # and image / audio / text masks where the dataset lacks them (of those modalities= keeps): see _finish
        self._masks = tuple(m for m in MASKED_MODALITIES if modalities is None or m in modalities)
        from mmdata.types import field_dtypes

        self._collate = functools.partial(_collate_with, fields=fields, tokenizer=self.tokenizer,
                                          dtypes=field_dtypes(self.source.card, modalities) or None)
        if self._bucketing is not None:
            if "audio" not in fields:
                raise MMDataError(f"max_duration={max_duration!r}: {path} (split {split!r}) has no audio to measure "
                                  f"(fields: {', '.join(fields) or 'none'}"
                                  f"{'' if modalities is None else f', modalities={list(modalities)}'}); batch it with "
                                  "batch_size= and no max_duration")
            self._bucketing["edges"], self._bucketing["shortest"] = self._index_edges(
                path, split, reader_kw.get("storage_options"))
        self._bucket_batches: dict[int, int] = {}  # reader -> its bucketed batches handed out this epoch
        self._bucket_resume: dict[int, int] = {}  # ... of a loaded state: replayed and dropped by the next pass
        self.over_budget = 0  # samples longer than max_duration, each sent alone this epoch
        self._over_warned = False
        # what runs per sample (in workers): the normalize stage unless cached already, the random sections
        # too with augment_on="workers" in training
        self._sample_recipe = self.recipe
        if cache:
            decoded, skipped = decoded_split(path, split, modalities, on_error, reader_kw, self.recipe)
            self.source = MemoryDataset(decoded, shuffle=shuffle, seed=seed, epoch=epoch, skipped=skipped)
            self._sample_recipe = self.recipe.without_normalize()
        bal = balance if balance is not None else base.balance
        self.plan = None
        if bal is not None and stage == "train":
            groups = index_groups(path, split, (bal or {}).get("by", "label"), reader_kw.get("storage_options"),
                                  expect_keys(reader_kw.get("keys")))
            self.plan = BalancePlan(groups, bal, seed, getattr(self.source, "label_names", None) or self._label_names())
        self._positions: dict[int, int] = {}
        # reader -> copies (balance repeats) already handed out of the sample at _positions[reader]; absent
        # when that sample has not been started
        self._copies: dict[int, int] = {}
        self._batches = 0
        # the worker whose batch comes next (the DataLoader takes the workers' batches in turn, passing over
        # those that ran out); None: not seen yet (then batches % workers, right while none has run out)
        self._next_worker: int | None = None
        self._skipped: dict[int, dict[str, int]] = {}  # reader -> its counts, as its last sample carried them
        self._resumed_skips: dict[int, dict[str, int]] = {}  # reader -> the counts of a loaded state (load_state_dict)
        # workers post their counts here too: a sample lost after a worker's last yielded sample has no
        # later sample to carry its count; read when the epoch's iteration has ended
        self._board = (SkipBoard(num_workers) if num_workers > 0 and isinstance(self.source, (ShardDataset, BlendDataset))
                       else None)
        self._final: dict[str, int] | None = None
        self._ended = False  # the pass's workers are done: their posted errors are final
        self._loaded_errors: dict[int, list[list[Any]]] | None = None  # a loaded state's, until the pass starts
        self._pinned = True  # the next iteration's epoch was chosen (constructor, set_epoch, load_state_dict)
        self._padding_warned = False
        self._audio_warned = False
        self._active = False  # a pass is under way
        self._passes = 0  # passes started: the latest one's number
        self._pass_thread: int | None = None  # the thread whose pass is under way (see _claim_pass)
        # (epoch, pass): what sampler.set_epoch asked for while that pass was under way; taken up by the
        # next pass when that one hands out no further batch, else warned about (EpochWarning)
        self._requested: tuple[int, int] | None = None
        self._pass_ended = False  # the last pass ran to its end: the state is the next epoch's start
        self._meta_warm = False  # plan_in_workers: the 'meta' kernels were run once here, before workers fork
        self._planning = False  # this pass's workers draw the params (plan_in_workers)
        self._unplanned_warned = False
        check_spawn_workers(_start_method(multiprocessing_context, num_workers),
                            [(f"transform={_named(transform)}", transform), ("recipe", self.recipe),
                             (f"tokenizer={_named(tokenizer)}", self.tokenizer),
                             (f"worker_init_fn={_named(worker_init_fn)}", worker_init_fn)])

    @property
    def label_names(self) -> list[str] | None:
        """The class names: the dataset card's ``label_names``; for a blend, the names merged over its
        datasets (every label is mapped into them); None when the card names no classes.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_messy_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = make_messy_folder(t + "/raw", n=12)
            >>> _ = mmdata.shard(t + "/raw", t + "/ds", progress=False)
            >>> loader(t + "/ds", 4).label_names
            ['circle', 'square', 'triangle']
        """
        names = getattr(self.source, "label_names", None)  # a memory cache has none: the card's then
        names = names if names is not None else self._label_names()
        return list(names) if names is not None else None

    def __repr__(self) -> str:
        """One line: the data, split, batch size, stage, workers, the recipe's sections and the batches
        per epoch when the index fixes them.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
            >>> repr(loader(t + "/ds", 4)).split(", ", 1)[1]
            "split='train', batch_size=4, stage='train', num_workers=0, epoch=0, recipe=none, batches=2)"
        """
        path = (dict(self.path) if isinstance(self.path, Mapping) else str(self.path))
        rec = self.recipe.to_dict()
        sections = [k for k in ("normalize", "image", "audio", "text", "batch", "balance") if rec.get(k)]
        try:
            batches = str(len(self))
        except Exception:  # no exact length (balance, on_error="skip"), or the index cannot be read now
            batches = "unknown"
        extra = f", device='{self.device}'" if self.device.type != "cpu" else ""
        if self._bucketing is not None:
            extra += f", max_duration={self._bucketing['max_duration']:g}, buckets={self._bucketing['buckets']}"
        return (f"Loader({path!r}, split={self.split!r}, batch_size={self.batch_size}, stage={self.stage!r}, "
                f"num_workers={self.num_workers}, epoch={self.epoch}{extra}, "
                f"recipe={'+'.join(sections) or 'none'}, batches={batches})")

    def _index_edges(self, path: Any, split: Any,
                     storage_options: dict[str, Any] | None) -> tuple[list[float] | None, float | None]:
        """The bucket edges and the shortest clip (what a sample without audio costs) from the index's
        ``audio_seconds`` of the split (no decode needed); None, None — the workers learn them from their first
        ``bucket_buffer`` samples — when the index has none, or the normalize stage trims or pads clips
        (``pad_trim``: the collated lengths are not the index's)."""
        assert self._bucketing is not None
        if any(op.name == "pad_trim" for op in self.recipe.normalize_sections.get("audio", [])):
            return None, None
        try:
            t = idx.load_index(path, columns=["split", AUDIO_SECONDS], storage_options=storage_options).to_pydict()
        except (MMDataError, OSError, KeyError, ValueError):
            return None, None
        splits = {split} if isinstance(split, str) else set(split) if isinstance(split, (list, tuple)) else None
        secs = [d for sp, d in zip(t["split"], t[AUDIO_SECONDS]) if d is not None and (splits is None or sp in splits)]
        if not secs:
            return None, None
        positive = [d for d in secs if d > 0]
        return bucket_edges(secs, self._bucketing["buckets"]), (min(positive) if positive else None)

    def _bucket_signature(self) -> dict[str, Any]:
        assert self._bucketing is not None
        return {k: self._bucketing[k] for k in ("max_duration", "buckets", "bucket_buffer", "batch_size")} | \
            {"drop_last": bool(self.drop_last)}

    def _label_names(self) -> list[str] | None:
        try:
            from mmdata.shards.index import load_card

            return load_card(self.path).get("label_names")
        except MMDataError:
            return None

    # -- epochs / state ------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The epoch the pass under way reads; once a pass ran to its end, the epoch the next pass reads (what
        :meth:`state_dict` holds then) — in a loop, ``L.epoch`` before ``for batch in L`` is the epoch that
        loop reads. A pass dropped early (``break``) still says its own epoch, which ``state_dict`` resumes (a
        fresh pass without ``load_state_dict`` reads the next). Setting it is :meth:`set_epoch`.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
            >>> L = loader(t + "/ds", 2)
            >>> L.epoch, len(list(L)), L.epoch, L.state_dict()["epoch"]  # epoch 0 read to its end
            (0, 2, 1, 1)
        """
        return self._epoch + (1 if self._pass_ended else 0)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.set_epoch(value)

    def _next_pass_epoch(self) -> int:
        """The epoch a new ``iter(self)`` reads: the one asked for by ``sampler.set_epoch`` during an open pass,
        else the pinned one (constructor, set_epoch, load_state_dict), else the one after the last pass (run
        to its end or dropped early: :attr:`epoch` says the dropped pass's own epoch then)."""
        if self._requested is not None:
            return int(self._requested[0])
        return self._epoch if self._pinned else self._epoch + 1

    def set_epoch(self, epoch: int) -> None:
        """Next iteration reads epoch ``epoch`` (new order, balance and augmentation draws)."""
        self._epoch = epoch
        self.source.set_epoch(epoch)
        self._bucket_batches = {}
        self._bucket_resume = {}
        self.over_budget = 0
        self._positions = {}
        self._copies = {}
        self._batches = 0
        self._next_worker = None
        self._resumed_skips = {}
        self._loaded_errors = None
        self._pinned = True
        self._pass_ended = False
        self._requested = None

    @property
    def sampler(self) -> _EpochHook:
        """What Lightning tells the epoch: it calls ``loader.sampler.set_epoch(e)`` at the start of every
        training epoch (as for a ``DistributedSampler``), resumed runs included."""
        return _EpochHook(self)

    def state_dict(self) -> dict[str, Any]:
        """Where the current epoch stands: epoch, seed, batches yielded, per reader the next position to
        read, (``copies``, with ``balance``) how many copies of the sample there were already yielded,
        (``next_worker``, with 2 or more workers) the worker whose batch comes next and which version of the
        data the positions count along (``dataset``: the folder's fingerprint, samples and ``order``, a digest of
        the split's keys in reading order; a blend's ``datasets`` and ``label_map``): a mid-epoch state is refused
        once those samples or their order changed (re-sharded; a modality added is no change).

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=10), t + "/ds", progress=False)
            >>> it = iter(L := loader(t + "/ds", 4, seed=0))
            >>> _ = next(it)
            >>> state = L.state_dict()
            >>> {k: v for k, v in state.items() if k != "dataset"}
            {'epoch': 0, 'seed': 0, 'batches': 1, 'positions': {0: 4}, 'copies': {}, 'readers': 1, 'split': 'train'}
            >>> sorted(state["dataset"]), state["dataset"]["samples"]  # the version the positions count along
            (['fingerprint', 'order', 'samples'], 10)

        Once a pass has ended (its consumer asked past the last batch), the state is the next epoch's
        start (``batches`` 0, no positions): a loop that saves after its epoch resumes with the next one.

        With ``max_duration`` the state holds, per reader, the duration batches handed out
        (``bucket_batches``) and the bucketing settings (``bucketing``) instead of positions: a resumed
        pass replays each reader's batches from the epoch's start and drops those.
        """
        if self._pass_ended:
            ended: dict[str, Any] = {"epoch": self.epoch, "seed": self.seed, "batches": 0, "positions": {},
                                     "copies": {}, "readers": self._readers()}
            if isinstance(self.source, BlendDataset):
                ended["blend"] = self.source.signature
            if self._bucketing is not None:
                ended["bucketing"] = self._bucket_signature()
                ended["bucket_batches"] = {}
            if isinstance(self.source, BlendDataset):
                ended.update(self.source.identity_state(False))  # its label_map (another is warned of)
            return ended
        if self._bucketing is not None:
            bucket = self._bucket_state()
            return {**bucket, **self._identity_state(any(int(v) > 0 for v in bucket["bucket_batches"].values()))}
        state = {"epoch": self.epoch, "seed": self.seed, "batches": self._batches, "positions": dict(self._positions),
                 "copies": dict(self._copies), "readers": self._readers()}
        if self._split_signature() is not None:  # what the positions count along (checked on resume)
            state["split"] = self._split_signature()
        world = (dist_rank_world() or (0, 1))[1]
        if world > 1:  # whose positions these are: a rank's own readers' (other_ranks_state)
            state["world"] = world
        if isinstance(self.source, BlendDataset):  # what the positions mean: the blend's names, splits, weights
            state["blend"] = self.source.signature
        if self.num_workers > 1:
            state["next_worker"] = self._worker_next()
        if self._skipped:  # on_error="skip": what each reader had lost up to its last sample handed out
            state["skipped"] = {r: dict(c) for r, c in self._skipped.items()}
        errors = self._state_errors()
        if errors:  # ... and the details of those losses (the first 100 per reader), in their places
            state["errors"] = errors
        state.update(self._identity_state(any(int(v) > 0 for v in self._positions.values()) or bool(self._copies)))
        return state

    def _identity_state(self, started: bool) -> dict[str, Any]:
        """Which version of the data the positions count along: ``dataset`` (a dataset folder's fingerprint,
        samples and order, :attr:`ShardDataset.identity`) or, for a blend, ``datasets`` (each one's) and ``label_map``. A
        mid-epoch state is refused by another version (QA36 sites #1: a site re-sharded while the job was
        stopped, and the resumed epoch read some samples twice and others never)."""
        if isinstance(self.source, BlendDataset):
            return self.source.identity_state(started)
        ident = self.source.identity if isinstance(self.source, ShardDataset) and started else None
        return {"dataset": ident} if ident is not None else {}

    def _bucket_state(self) -> dict[str, Any]:
        """A bucketing loader's state: per reader, the batches handed out (``bucket_batches``) — a duration
        batch takes samples out of the reader's order, so positions cannot say what is left; the resumed
        pass forms the reader's batches again from the epoch's start and drops those."""
        # positions: none (expect_state's check that a started state has them); bucket_batches say where it stands
        state: dict[str, Any] = {"epoch": self.epoch, "seed": self.seed, "batches": self._batches, "positions": {},
                                 "bucket_batches": dict(self._bucket_batches), "readers": self._readers(),
                                 "bucketing": self._bucket_signature()}
        if self._split_signature() is not None:
            state["split"] = self._split_signature()
        world = (dist_rank_world() or (0, 1))[1]
        if world > 1:
            state["world"] = world
        if self.num_workers > 1:
            state["next_worker"] = self._worker_next()
        return state

    def _load_bucket_state(self, state: dict[str, Any]) -> None:
        """:meth:`load_state_dict` for a bucketing loader (see :meth:`_bucket_state`)."""
        saved = state.get("bucketing")
        raw = state.get("bucket_batches") or {}
        if not isinstance(raw, Mapping):
            raise MMDataError(f"loader state['bucket_batches']: expected a dict of reader -> batches handed out, got {raw!r:.80}")
        done = {}
        for k, v in raw.items():
            r = expect_int(int(k) if isinstance(k, str) and k.isdigit() else k, "loader state['bucket_batches'] reader",
                           minimum=0, maximum=4096)
            done[r] = expect_int(v, f"loader state['bucket_batches'][{r}]", minimum=0, maximum=2**62)
        started = any(v > 0 for v in done.values()) or any(int(v) > 0 for v in (state.get("positions") or {}).values())
        if started and saved is None:
            raise MMDataError("loader state was saved mid-epoch by a loader without max_duration: its positions do not "
                              "say which duration batches are left; resume it with the same batching, or start that "
                              f"epoch over: load_state_dict({{'epoch': {state['epoch']}, 'seed': {self.seed}}})")
        mine = self._bucket_signature()
        if started and saved != mine:
            raise MMDataError(f"loader state was saved mid-epoch with bucketing {saved}, this loader has {mine}: other "
                              "batches would form, repeating and losing samples; resume with the same max_duration, "
                              "buckets, bucket_buffer, batch_size and drop_last")
        now = self._readers()
        world = (dist_rank_world() or (0, 1))[1]
        if started and (int(state.get("readers") or now) != now or int(state.get("world") or 1) != world):
            raise MMDataError(f"loader state was saved mid-epoch {state['epoch']} with {state.get('readers')} reader(s) "
                              f"(world size x DataLoader workers) and this loader has {now}: each reader forms its own "
                              "duration batches; resume with the same num_workers and world size")
        self.set_epoch(int(state["epoch"]))  # the readers start the epoch over: the pass replays their batches
        self._bucket_batches = dict(done)
        self._bucket_resume = dict(done)
        self._batches = int(state.get("batches", 0))
        nxt = state.get("next_worker")
        self._next_worker = int(nxt) % max(1, self.num_workers) if nxt is not None else None

    def _posted_errors(self) -> list[tuple[int, list[tuple[int | None, tuple[str, ...]]]]]:
        """Per reader: its errors ``(place, entry)`` — from the workers' board, else from the reader here."""
        if not isinstance(self.source, (ShardDataset, BlendDataset)):
            return []
        if self._board is None:
            rid = next(iter(self.source._positions), None)
            return [] if rid is None else [(rid, self.source._error_items())]
        return [p for p in self._board.read_errors() if p is not None]

    def _state_errors(self) -> dict[int, list[list[Any]]]:
        """Per reader, the errors (``[place, *entry]``) in the record of its last sample handed out."""
        if self._loaded_errors is not None:  # loaded, not yet resumed
            return {r: [list(e) for e in c] for r, c in self._loaded_errors.items()}
        out: dict[int, list[list[Any]]] = {}
        for r, items in self._posted_errors():
            kept = [[p, *e] for p, e in items if p is not None and p <= self._positions.get(r, 0)]
            if kept:
                out[r] = kept
        return out

    @property
    def errors(self) -> list[tuple[str, ...]]:
        """The first details of the losses counted in ``skipped`` — ``(shard, key, message)``, in the
        order of the readers' streams (``ShardDataset.errors``). With DataLoader workers, the workers'
        lists merged by position in the stream, then reader (up to 100; for a blend, up to 100 per
        dataset, dataset after dataset, as ``BlendDataset.errors``); during an epoch, those the
        batches so far carried. A resumed pass lists the uninterrupted epoch's.
        """
        if self.num_workers == 0 or self._board is None:
            return list(getattr(self.source, "errors", []))
        names = list(self.source.datasets) if isinstance(self.source, BlendDataset) else None
        # during the epoch, what the batches handed out carried (the workers read ahead)
        return merge_errors(self._posted_errors(), names, None if self._ended else self._positions)

    def _split_signature(self) -> str | list[str] | None:
        """The split(s) a one-dataset loader reads, as a state records them (a blend's state has its own
        signature); None where the split is not a name or a list of names."""
        if isinstance(self.source, BlendDataset):
            return None
        return _split_names(self.split)

    def _check_split(self, state: Mapping[str, Any]) -> None:
        """Refuse a mid-epoch state saved by a loader of other splits: its positions count along another order
        of other samples (review of QA30: a DataModule resumed into a reordered ``train_split`` list without a
        word). A state without ``split`` (saved before it was recorded) is taken as before."""
        saved, now = _split_names(state.get("split")), self._split_signature()
        if saved is None or now is None or saved == now:
            return
        started = any(int(v) > 0 for part in ("positions", "bucket_batches") for v in (state.get(part) or {}).values())
        if not (started or state.get("copies")):  # at an epoch's start: nothing to skip, any split resumes
            return
        raise MMDataError(f"loader state was saved mid-epoch {state['epoch']} by a loader of split {saved!r}; this "
                          f"loader reads {now!r}: its positions mean other samples here (the splits' samples, in "
                          f"their order). Resume with split={saved!r}, or start that epoch over: "
                          f"load_state_dict({{'epoch': {state['epoch']}, 'seed': {self.seed}}})")

    def _readers(self) -> int:
        """Readers splitting the epoch: world size x DataLoader workers (at least 1 each)."""
        _, world = dist_rank_world() or (0, 1)
        return world * max(1, self.num_workers)

    def _finished(self, positions: dict[int, int], readers: int, epoch: int, held: bool = False) -> bool:
        """Whether ``positions`` of ``readers`` readers have read all of ``epoch`` (False when unknown);
        ``held``: only the readers ``positions`` holds, each to the end of its share (another rank's state
        at the end of its share; the caller also checks this rank's epoch is no longer)."""
        if self.plan is not None or (held and not positions):  # balance draws the epoch: no fixed shares
            return False
        try:
            ends = self.source.samples_per_reader(readers, epoch)
        except (TypeError, ValueError):
            return False
        if ends is None:
            return False
        if held:
            return all(r < len(ends) and p >= ends[r] for r, p in positions.items())
        return all(positions.get(r, 0) >= n for r, n in enumerate(ends))

    def _worker_next(self) -> int:
        workers = max(1, self.num_workers)
        return self._next_worker if self._next_worker is not None else self._batches % workers

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration yields exactly the batches the saved loader had not yet yielded.

        A state without ``copies`` (saved before mmdata recorded them) resumes after the last sample
        whose first copy was yielded: exact, unless that sample still had balance repeats to come. One
        without ``next_worker`` takes the workers in turn from ``batches``: exact until a worker runs out.
        A state saved mid-epoch by a loader with another number of readers (world size x workers) is
        refused (MMDataError): its positions would repeat some samples and skip others. One saved at the
        end of an epoch resumes with any number. One saved mid-epoch by an older mmdata, which did not record
        the number, is refused when it has positions of more readers than this loader, else resumed with a
        warning (exact only with the number it was saved with). Under DDP a state holds its rank's readers'
        positions and its world size: one of another rank (a plain loader's Lightning checkpoint holds rank 0's) or of a
        world of another size is refused mid-epoch (:func:`~mmdata.shards.reader.other_ranks_state`). A
        damaged state is refused naming the key (:func:`mmdata.checks.expect_state`), a position past the
        samples the index lists too. A mid-epoch state saved from another version of the data (its
        ``dataset`` / a blend's ``datasets``: the folder re-sharded, the split's samples added, removed, replaced
        or reordered; a modality added or another split changed still resumes) or with another
        blend ``label_map`` is refused naming the folder and what changed; one without them (saved before
        mmdata recorded them) is taken as before.
        """
        state = expect_state(state, "loader state")
        if state.get("seed", self.seed) != self.seed:
            raise MMDataError(f"loader state has seed {state.get('seed')}, this loader has seed {self.seed}")
        self._check_split(state)
        # mid-epoch: a damaged part is refused below, naming its key (here it is only not counted)
        begun = any(isinstance(v, int) and v > 0 for part in ("positions", "bucket_batches")
                    if isinstance(state.get(part), Mapping) for v in state[part].values()) or bool(state.get("copies"))
        if isinstance(self.source, ShardDataset):  # another version of the folder (re-sharded): refused mid-epoch
            self.source.check_identity(state, begun, MMDataError, seed=self.seed)
        elif isinstance(self.source, BlendDataset) and self._bucketing is not None:
            self.source.check_state({**state, "blend": state.get("blend", self.source.signature)}, begun)
        if self._bucketing is not None:
            self._load_bucket_state(state)
            return
        if state.get("bucketing") is not None and any(int(v) > 0 for v in (state.get("bucket_batches") or {}).values()):
            raise MMDataError("loader state was saved mid-epoch by a loader with max_duration (duration batches); "
                              "resume it with the same max_duration, buckets and bucket_buffer")
        saved, now = state.get("readers"), self._readers()
        positions = dict(state.get("positions") or {})
        started = any(v > 0 for v in positions.values()) or bool(state.get("copies"))
        if isinstance(self.source, BlendDataset):
            self.source.check_state(state, started)
        elif started and state.get("blend") is not None:
            raise MMDataError(f"a state of the blend {state['blend']} cannot resume a loader of one dataset ({self.path}): "
                              f"its positions mean other samples here")
        if saved is None and started:  # saved before states said how many readers read them
            check_unsized_state(positions, now, int(state["epoch"]), MMDataError)
            state = {**state, "readers": now}  # checked and warned here: the reader need not say it again
        rank, world = dist_rank_world() or (0, 1)
        over = False  # another rank's state at the end of its share, which ends this rank's no-longer epoch too
        if started and (saved is None or int(saved) == now):
            other = other_ranks_state(positions, int(state.get("world") or 1), rank, world, max(1, self.num_workers),
                                      int(state["epoch"]))
            if other is not None:
                # ... only when this rank's epoch is no longer than the batches the saving rank had yielded
                # (QA: a longer rank's last batches were dropped silently)
                mine = self._batches_per_epoch()
                over = mine is not None and mine <= int(state.get("batches") or 0) and \
                    self._finished(positions, now, int(state["epoch"]), held=True)
                if not over:
                    raise MMDataError(f"loader {other}")
        if started and (over or saved is not None and int(saved) != now):
            if not over and not self._finished(positions, int(saved), int(state["epoch"])):
                # positions count samples along each reader's share; another split shares the epoch out
                # differently, so they would skip samples never yielded and repeat others
                raise MMDataError(
                    f"loader state was saved mid-epoch {state['epoch']} with {saved} reader(s) (world size x DataLoader "
                    f"workers) and this loader has {now}: its positions mean other samples here, so the rest of the "
                    f"epoch would repeat some samples and skip others. Resume with the same num_workers and world size, "
                    f"or start that epoch over: load_state_dict({{'epoch': {state['epoch']}, 'seed': {self.seed}}})")
            # the saved epoch was over: the same here is every reader at the end of its share (its losses on one)
            ends = self.source.samples_per_reader(now, int(state["epoch"]))
            merged = sorted(((int(e[0]), int(r)), list(e)) for r, c in (state.get("errors") or {}).items() for e in c)
            state = {**state, "positions": dict(enumerate(ends)), "readers": now, "next_worker": 0,
                     "skipped": {0: summed_counts(*(state.get("skipped") or {}).values())},
                     "errors": {0: [e for _, e in merged]} if merged else {}}
        elif started and isinstance(self.source, ShardDataset) and self.plan is None:
            # the samples the index lists per reader, whatever on_error: what a position can reach
            check_positions(positions, self.source.listed_per_reader(now, int(state["epoch"])), int(state["epoch"]),
                            str(self.path), MMDataError)
        self._epoch = int(state["epoch"])
        # per reader, the losses the saved run had counted: its resumed reader passes over them uncounted
        skipped = {int(r): {str(k): int(v) for k, v in c.items()} for r, c in (state.get("skipped") or {}).items() if c}
        # ... and the details of them, which it lists ahead of what it meets (absent from older states)
        errors = {int(r): [list(e) for e in c] for r, c in (state.get("errors") or {}).items() if c}
        self.source.load_state_dict({"seed": self.seed, "epoch": self._epoch, "positions": state.get("positions", {}),
                                     "readers": now, "world": world,  # checked above: the reader need not check again
                                     "skipped": skipped, "errors": errors,
                                     **({"blend": state.get("blend") or self.source.signature}
                                        if isinstance(self.source, BlendDataset) else {})})
        self._positions = {int(k): int(v) for k, v in state.get("positions", {}).items()}
        self._copies = {int(k): int(v) for k, v in (state.get("copies") or {}).items() if int(v) > 0}
        self._batches = int(state.get("batches", 0))
        self._resumed_skips = skipped
        self._loaded_errors = errors if isinstance(self.source, (ShardDataset, BlendDataset)) else None
        workers = max(1, self.num_workers)
        nxt = state.get("next_worker")
        self._next_worker = int(nxt) % workers if nxt is not None else None
        self._pinned = True
        self._pass_ended = False
        self._requested = None

    def __len__(self) -> int:
        """Batches this process gets in one epoch (every epoch the same), when the index fixes it.

        Known for a dataset folder read with ``on_error="raise"`` and no ``balance`` (which drops or
        repeats samples by draw), unless a shuffled shard order over shards of different sizes
        changes this process's batches between epochs (see ``ShardDataset.samples_per_reader``; shards
        of one size and a short last one, dealt to DataLoader workers, usually give the same count
        whichever worker reads the short one: :func:`mmdata.shards.deals.invariant_target`).
        Otherwise ``len()`` raises TypeError, as for any unsized iterable: Lightning then counts the
        epoch as it goes. With a length, Lightning does not fetch a batch ahead, so the ``state_dict``
        it saves in a checkpoint matches the batches it trained on.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=10), t + "/ds", progress=False)
            >>> len(loader(t + "/ds", 4)), len([b for b in loader(t + "/ds", 4)])
            (3, 3)
        """
        batches = self._batches_per_epoch()
        if batches is None:
            raise TypeError("this mmdata loader has no exact length (needs a dataset folder, on_error='raise', no "
                            "balance, and batches per process that do not change between epochs)")
        return batches

    def __bool__(self) -> bool:
        return True  # truth must not depend on __len__, which may raise

    def _batches_per_epoch(self) -> int | None:
        if self.plan is not None or self._bucketing is not None:  # balance draws, durations decide the batches
            return None
        rank, world = dist_rank_world() or (0, 1)
        workers = max(1, self.num_workers)
        counts = self.source.samples_per_reader(world * workers)
        if counts is None:
            # a shuffled order deals shards of different sizes anew each epoch: still one length when every
            # deal gives this process the same batches (shards of one size and a short last one)
            dealt = getattr(self.source, "dealt_shard_sizes", lambda n: None)(world * workers)
            if dealt is None:
                return None
            from mmdata.shards.deals import invariant_target

            return invariant_target(dealt[0], dealt[1], workers, self.batch_size, self.drop_last, rank=rank)
        # each DataLoader worker batches its own samples: a short last batch per worker
        mine = counts[rank * workers : (rank + 1) * workers]
        return sum(c // self.batch_size if self.drop_last else -(-c // self.batch_size) for c in mine)

    @property
    def skipped(self) -> dict[str, int]:
        """Samples skipped (reason -> count) in the epoch in progress or, between epochs, the last one
        — summed over DataLoader workers, the same for any ``num_workers``; in this process only (each
        DDP rank counts its own share). With ``cache=True``: what the decoding pass skipped.

        Exact once an epoch's iteration has ended; during it, the counts the batches so far carried.
        """
        if self.num_workers == 0 or isinstance(self.source, MemoryDataset):  # read here (or by the cache's pass)
            return dict(getattr(self.source, "skipped", {}))
        if self._final is not None:
            return dict(self._final)
        return summed_counts(*self._skipped.values())

    # -- iteration -------------------------------------------------------------------------------
    def _dataset(self, resume: dict[int, tuple[int, int]]) -> IterableDataset:  # type: ignore[type-arg]
        # the state's next worker comes first: worker w of the new DataLoader plays reader (w + rotation) % workers
        self.source.rotation = self._worker_next()
        if isinstance(self.source, (ShardDataset, BlendDataset)):
            self.source.board = self._board
        ds: Any = self.source
        if self.plan is not None:
            ds = Balanced(ds, self.plan, resume)
        rec = self._sample_recipe
        skips = (self.source if isinstance(self.source, (ShardDataset, BlendDataset)) and self.source.on_error != "raise"
                 else None)
        if self.stage == "train" and self.augment_on == "workers" and (rec.has_normalize or rec.has_random):
            ds = _Augmented(ds, rec, "train", skips, self.transform)
        elif rec.has_normalize:
            ds = _Augmented(ds, rec, "eval", skips, self.transform)
        elif self.transform is not None:
            ds = _Augmented(ds, None, self.stage, skips, self.transform)
        if self._bucketing is not None:  # after the per-sample stages: the lengths collate will pad to
            b = self._bucketing
            ds = Bucketed(ds, b["edges"], b["max_duration"], max_samples=b["batch_size"], buffer=b["bucket_buffer"],
                          buckets=b["buckets"], drop_last=self.drop_last, resume=self._bucket_resume,
                          shortest=b["shortest"])
        return ds

    def _track(self, batch: Batch) -> None:
        for m in batch.meta.get("samples", []):
            if "reader" in m:
                # a reader's samples come in order; a balanced block's rows (a block of positions holding a
                # repeat, shuffled: "repeat" counts its rows handed out, "copies" its size) share one position.
                # Its last row moves the reader past the block; an earlier one leaves the reader on it, rows counted
                r, pos, done = int(m["reader"]), int(m["position"]), int(m.get("repeat", 0)) + 1
                at = (pos + 1, 0) if done >= int(m.get("copies", 1)) else (pos, done)
                if at > (self._positions.get(r, 0), self._copies.get(r, 0)):
                    self._positions[r] = at[0]
                    if at[1]:
                        self._copies[r] = at[1]
                    else:
                        self._copies.pop(r, None)
            if m.get("skipped"):
                self._skipped[int(m.get("reader", 0))] = dict(m["skipped"])
            if BATCH_INDEX in m:
                r = int(m.get("reader", 0))
                self._bucket_batches[r] = max(self._bucket_batches.get(r, 0), int(m[BATCH_INDEX]) + 1)
            if m.get(OVER_BUDGET):
                self._note_over_budget(batch, m)
        self._batches += 1
        readers = [m["reader"] for m in batch.meta.get("samples", []) if "reader" in m]
        if readers and self.num_workers > 1:  # one worker's batch: the DataLoader asks the next one after it
            self._next_worker = (int(readers[-1]) % self.num_workers + 1) % self.num_workers

    def _note_over_budget(self, batch: Batch, meta: dict[str, Any]) -> None:
        """Count a clip longer than ``max_duration``, sent as a batch of one (never dropped); warn once."""
        self.over_budget += 1
        if self._over_warned:
            return
        self._over_warned = True
        assert self._bucketing is not None
        secs = float(batch["audio"].shape[-1]) / float(batch.sample_rate) if batch.sample_rate else float("nan")
        warnings.warn(f"mmdata.loader: split {self.split!r}: sample {batch.keys[0]!r} ({meta.get('shard', '?')}) is "
                      f"{secs:.2f} s of audio, longer than max_duration={self._bucketing['max_duration']:g}: it comes "
                      "alone, as a batch of one (loader.over_budget counts them this epoch); raise max_duration or trim "
                      "long clips (pad_trim in the recipe's normalize.audio); said once per loader",
                      UserWarning, stacklevel=5)  # _track, _pass, __iter__, then the caller's line

    def _note_padding(self, batch: Batch) -> None:
        """Warn once per loader when a batch holds images of several sizes: collate zero-pads them to the
        largest (``batch.lengths["image"]`` keeps each one's size), which a model reads as black borders
        (QA: 3000x4000 and 4000x3000 photos were padded to 4000x4000 without a word)."""
        if self._padding_warned or "image" not in batch.lengths:
            return
        hw = batch.lengths["image"]
        present = batch.present.get("image")
        if present is not None:
            hw = hw[present.to(torch.bool)]
        sizes = sorted({(int(h), int(w)) for h, w in hw.tolist()})
        if len(sizes) < 2:
            return
        self._padding_warned = True
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:6]) + (f" and {len(sizes) - 6} more" if len(sizes) > 6 else "")
        big = tuple(batch["image"].shape[-2:])
        warnings.warn(f"mmdata.loader: a batch holds images of {len(sizes)} sizes ({shown}, height x width), zero-padded "
                      f"to {big[0]}x{big[1]} (batch.lengths['image'] gives each image's size); for one size add "
                      "resize + center_crop to normalize.image in the recipe (mmdata.augment.recipe.normalize_spec(image_size=...)); "
                      "said once per loader", PaddingWarning, stacklevel=4)  # _pass, __iter__, the caller's line

    def _note_audio_padding(self, batch: Batch) -> None:
        """Warn once per loader when a batch's clips are much shorter than its length — the normalize
        stage's ``pad_trim`` (or collate, to the longest clip) zero-pads them, which the model hears as
        silence: when the shortest is under :data:`AUDIO_PADDING_WARN` of that length. A clip's length is
        the one it had before a ``pad_trim`` (``pad``) of the normalize stage (``meta["audio_seconds"]``: that
        stage makes every clip one length), else its length in the batch (``batch.lengths["audio"]``: after the random
        sections, which may shorten it — a ``speed`` op — but trim nothing); only a ``pad_trim`` trims."""
        if self._audio_warned or "audio" not in batch.data or not batch.sample_rate:
            return
        rate = float(batch.sample_rate)
        full = int(batch["audio"].shape[-1])
        rows = len(batch.keys)
        present = batch.present["audio"].tolist() if "audio" in batch.present else [True] * rows
        metas = batch.meta.get("samples") or [{}] * rows
        fixed = [op for op in self.recipe.normalize_sections.get("audio", []) if op.name in ("pad", "pad_trim")]
        trims = [float(op.seconds) for op in fixed if op.name == "pad_trim" and getattr(op, "trim", True)]
        if "audio" in batch.lengths and not fixed:
            secs = [n / rate for p, n in zip(present, batch.lengths["audio"].tolist()) if p]
        else:
            lengths = batch.lengths["audio"].tolist() if "audio" in batch.lengths else [full] * rows
            secs = [float(m[AUDIO_SECONDS]) if AUDIO_SECONDS in m else n / rate
                    for p, m, n in zip(present, metas, lengths) if p]
        target = full / rate
        if not secs or target <= 0 or min(secs) >= AUDIO_PADDING_WARN * target:
            return
        self._audio_warned = True
        shares = sorted(max(0.0, 1.0 - s / target) for s in secs)
        median = shares[len(shares) // 2] if len(shares) % 2 else (shares[len(shares) // 2 - 1] + shares[len(shares) // 2]) / 2
        trimmed = (" (longer ones are trimmed, keeping the start)" if trims and max(secs) > min(trims) + 0.5 / rate
                   else "")
        warnings.warn(
            f"mmdata.loader: split {self.split!r}: a batch holds clips of {min(secs):.2f} to {max(secs):.2f} s, "
            f"zero-padded to {target:.2f} s{trimmed}: the shortest clip is {100 * shares[-1]:.0f}% padding, which the "
            f"model hears as silence (the median clip is {100 * median:.0f}% padding); for less padding set max_seconds "
            f"nearer the typical clip (mmdata.train.train(max_seconds=...), --max-seconds) or a pad_trim of that length "
            f"in the recipe's normalize.audio (mmdata.augment.recipe.normalize_spec(seconds=...)); said once per loader",
            PaddingWarning, stacklevel=4)  # _pass, __iter__, then the caller's line

    def _finish(self, batch: Batch) -> Batch:
        if self.stage != "train":
            return with_lengths(with_masks(batch, self._masks))
        if self.augment_on == "device" and self.recipe.has_random:
            ahead = batch.meta.pop(PLAN, None)  # drawn by the worker for this batch (and epoch)
            plan = ahead["steps"] if ahead is not None and ahead["epoch"] == self._epoch else None
            if plan is None and self._planning and not self._unplanned_warned:
                self._unplanned_warned = True
                warnings.warn(
                    "mmdata.loader: the DataLoader workers could not draw a batch's augmentation params ahead "
                    "(Recipe.plan_batched returned None: images of several sizes reaching an op that needs one, "
                    "recipe targets, or an op whose kernel reads its data), so the main process draws them: the same "
                    "batches, but slower on a GPU — and a batch of mixed sizes also runs per-sample kernels there; for "
                    "one image size add resize + center_crop to normalize.image in the recipe; said once per loader",
                    UserWarning, stacklevel=4)  # _pass, __iter__, then the caller's line
            batch = self.recipe.apply_batched(batch, self._epoch, plan=plan, mix=False)  # the batch section: below
        if self.recipe.has_batch_ops:
            batch = self.recipe.apply_batch_section(batch, self._epoch)
        # after the recipe, which reads a mask as "the dataset has this field": every standard modality's mask,
        # all False where the dataset has none (as a dataset's collate_fn gives them); and the lengths of every
        # array field, which a batched op leaves out when its rows came out of one shape (QA38 E #1)
        return with_lengths(with_masks(batch, self._masks))

    def _claim_pass(self) -> int:
        """Number a new pass, refusing one that would overlap another thread's open pass: both would share
        this loader's epoch, positions and loss counts (repeated and lost samples, a wrong state). A pass
        left open in the same thread (dropped with ``break``, an iterator left in a notebook) is not
        read again, so a new one there goes on, as does one after the other thread ended."""
        me = threading.get_ident()
        with _PASS_LOCK:
            other = self._pass_thread
            if (self._active and other is not None and other != me
                    and any(t.ident == other for t in threading.enumerate())):
                raise MMDataError(
                    f"mmdata.loader: a pass over this loader is already under way in another thread (thread id "
                    f"{other}); two passes at once would share its epoch, positions and loss counts, repeating and "
                    f"losing samples. Use one loader per thread (call mmdata.loader(...) in each thread, with "
                    f"its own seed or epoch for different orders), or finish or close the other pass first.")
            self._passes += 1
            self._pass_thread = me
            self._active = True
            return self._passes

    def __iter__(self) -> Iterator[Batch]:
        mine = self._claim_pass()
        if self._requested is not None:  # asked for during an earlier pass, still open (not yet collected)
            self.set_epoch(self._requested[0])
        batches = self._pass()
        try:
            for batch in batches:
                if self._requested is not None and self._requested[1] == mine:
                    self._late_epoch(self._requested[0])
                yield batch
        finally:
            batches.close()  # a pass dropped early ends its workers now, as `yield from` would close it
            if self._passes == mine:  # not a pass dropped after a newer one started
                self._active = False
                if self._requested is not None and self._requested[1] == mine:
                    # set during this pass, which handed out no batch after it (it ran out, or its consumer
                    # dropped it for a new iteration, as Lightning's epoch loop does): the next pass is that epoch
                    self.set_epoch(self._requested[0])

    def _late_epoch(self, epoch: int) -> None:
        """This pass goes on after ``sampler.set_epoch(epoch)`` asked for another epoch: say so, once."""
        self._requested = None
        warnings.warn(
            f"mmdata.loader: set_epoch({epoch}) came after this pass of epoch {self._epoch} had handed out a batch, "
            f"and the pass goes on: epoch {epoch} gets epoch {self._epoch}'s order and augmentation draws. Lightning "
            "does this to a loader without len() (it fetches a batch before it sets the epoch) in a fit resumed "
            "from a checkpoint written at an epoch's end (it restores no loader state from those). Resume exactly "
            "from any checkpoint with mmdata.lightning.DataModule, or with a loader that has len() (on_error='raise' "
            "and no balance), or start the loader at the trainer's epoch: "
            "mmdata.loader(..., epoch=mmdata.lightning.train_epoch(self.trainer)) in train_dataloader().",
            EpochWarning, stacklevel=3)

    def _pass(self) -> Iterator[Batch]:
        if not self._pinned:  # a new pass without set_epoch: the next epoch (new order and draws)
            self.set_epoch(self._epoch + 1)
        self._pinned = False
        self._pass_ended = False
        # a pass starts where the state points (set_epoch above cleared it, else load_state_dict set it): the
        # copies of a split sample already handed out are not yielded again
        resume = {r: (self._positions.get(r, 0), c) for r, c in self._copies.items()}
        self._skipped, self._final = self._resumed_skips, None  # a resumed pass starts from the saved counts
        self._resumed_skips = {}
        self._ended, self._loaded_errors = False, None
        if self._board is not None:
            self._board.clear()
        collate_fn = self._collate
        self._planning = (self.stage == "train" and self.augment_on == "device" and self.recipe.has_random
                          and self.num_workers > 0 and bool(self.plan_in_workers))
        if self._planning:
            if not self._meta_warm:  # else every forked worker pays torch's first-call cost (~1 s) each epoch
                self._meta_warm = True
                _warm_meta(self.recipe)
            collate_fn = functools.partial(_collate_planned, collate_fn=self._collate, recipe=self.recipe, epoch=self._epoch)
        bucketed = self._bucketing is not None  # the dataset yields each batch's samples: collated one by one
        # the DataLoader draws its workers' base seed from this generator, not from torch's global one: a pass
        # (a notebook's peek at a batch) leaves the caller's stream as it was, and the workers' torch seeds
        # follow (seed, epoch). Nothing of mmdata's draws from them (param_rng keys order and params)
        base = torch.Generator().manual_seed(derive_int(self.seed, self._epoch, "dataloader base seed") % 2**63)
        dl = DataLoader(self._dataset(resume), batch_size=None if bucketed else self.batch_size,
                        num_workers=self.num_workers, collate_fn=collate_fn,
                        drop_last=False if bucketed else self.drop_last, pin_memory=False,
                        prefetch_factor=self.prefetch if self.num_workers > 0 else None, generator=base,
                        **(self.worker_options if self.num_workers > 0 else {}))
        cuda = self.device.type == "cuda"
        stream = torch.cuda.Stream(device=self.device) if cuda else None

        def to_device(b: Batch) -> Batch:
            if self.pin_memory:
                b = b.pin_memory()
            if stream is None:
                return b.to(self.device, non_blocking=self.pin_memory)
            with torch.cuda.stream(stream):
                return b.to(self.device, non_blocking=True)

        it = iter(dl)
        pending: Batch | None = None
        try:
            for cpu_batch in it:
                self._note_padding(cpu_batch)
                self._note_audio_padding(cpu_batch)
                nxt = to_device(cpu_batch)  # copy of batch k+1 overlaps compute on batch k (side stream on CUDA)
                if self.tokenizer is not None:  # what the batch ops re-encode edited texts with (_collate_with)
                    nxt.meta[TOKENIZER] = self.tokenizer
                if pending is not None:
                    self._track(pending)  # count a batch as consumed only when it is handed out
                    yield self._finish(pending)
                if stream is not None:
                    torch.cuda.current_stream(self.device).wait_stream(stream)
                    for t in nxt.data.values():  # present / lengths stay on the host
                        if isinstance(t, torch.Tensor) and t.is_cuda:
                            t.record_stream(torch.cuda.current_stream(self.device))
                pending = nxt
        except Exception:
            # a worker's error (or one here): end the workers now. torch leaves them to the iterator's
            # __del__, which a reference cycle through the re-raised exception delays until a gc pass —
            # workers and their pymp-* folders stayed behind, and "Exception ignored in __del__" followed
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            raise
        if pending is not None:
            self._track(pending)
            yield self._finish(pending)
        if self._board is not None:  # every worker is done: its last count is on the board
            posted = self._board.read()
            if all(c is not None for c in posted):
                self._final = self._board.total()
            self._ended = True
        self._next_worker = None
        self.source.rotation = 0
        self._pass_ended = True


#: DataLoader options the loader sets itself, with what to use instead (QA: persistent_workers= was "did you mean
#: 'num_workers'?")
NOT_DATALOADER_OPTIONS = {
    "persistent_workers": "the loader starts its workers for each pass (no persistent workers: a known limit; under "
                          "a spawn start method each epoch pays their start-up); a DataLoader(persistent_workers=True) "
                          "over mmdata.open_dataset(...) keeps its workers, without the loader's recipe and balance",
    "prefetch_factor": "it is prefetch= here (batches each worker loads ahead)",
    "collate_fn": "the loader collates (mmdata.collate, padding and presence masks); for a collate of your own use "
                  "mmdata.open_dataset(...) in a DataLoader",
    "generator": "the order, the augmentation draws and the workers' torch seeds come from seed= and the epoch "
                 "(set_epoch); a pass draws nothing from torch's global RNG",
    "sampler": "the loader reads an iterable dataset, which takes no sampler: shuffle= and seed= order it, and it "
               "splits itself across workers and ranks",
    "batch_sampler": "the loader reads an iterable dataset, which takes no sampler: batch_size= and drop_last= batch it",
    "pin_memory_device": "pin_memory= and device= decide the pinning and the device batches go to",
}


#: the longest DataLoader timeout taken (a year, in seconds)
MAX_TIMEOUT = 365 * 24 * 3600


def check_worker_options(multiprocessing_context: Any, worker_init_fn: Any, timeout: Any, num_workers: Any) -> None:
    """The DataLoader worker options :func:`loader` passes on, checked before a worker starts (QA: a bad one
    failed at the first batch, as a worker's traceback, or inside ``trainer.fit``; with no workers it was
    ignored). MMDataError naming the option, what it takes and what it got.

    Example:
        >>> check_worker_options("spawn", None, 30, 2)
        >>> check_worker_options("bogus", None, 0, 2)
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: multiprocessing_context: one of the start methods ['fork', 'forkserver', 'spawn'] or a multiprocessing context, got 'bogus'
    """
    import multiprocessing
    import numbers

    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 <= timeout <= MAX_TIMEOUT:
        # past a year the platform's timers overflow in the first batch (QA: inf, 1e12)
        raise MMDataError(f"timeout: seconds from 0 to {MAX_TIMEOUT:.0f} to wait for a batch (0: as long as it takes), "
                          f"got {timeout!r}")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise MMDataError(f"worker_init_fn: a function of the worker id, called in each worker, got {worker_init_fn!r}")
    if multiprocessing_context is None:
        return
    methods = sorted(multiprocessing.get_all_start_methods())
    if isinstance(multiprocessing_context, str) and multiprocessing_context not in methods or not isinstance(
            multiprocessing_context, (str, multiprocessing.context.BaseContext)):
        raise MMDataError(f"multiprocessing_context: one of the start methods {methods} or a multiprocessing context, "
                          f"got {multiprocessing_context!r}")
    if not num_workers:  # as torch's DataLoader: a start method for no worker is a mistake, not a no-op
        raise MMDataError(f"multiprocessing_context={multiprocessing_context!r} needs workers (num_workers >= 1), got "
                          f"num_workers={num_workers!r}")


def _start_method(multiprocessing_context: Any, num_workers: int) -> str | None:
    """The start method of the loader's DataLoader workers (None: no workers). None given: the process's
    (``multiprocessing.set_start_method``), else the platform's default — spawn on macOS and Windows — read
    without fixing it as ``get_start_method()`` would."""
    if not num_workers:
        return None
    if isinstance(multiprocessing_context, str):
        return multiprocessing_context
    if multiprocessing_context is not None:
        return str(multiprocessing_context.get_start_method())
    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]


class _NamedGlobals(ForkingPickler):
    """Pickles into nothing as a worker's start does (multiprocessing's pickler, its reducers and protocol, while
    a worker is being spawned), noting every class and function the pickle names by reference (what a worker
    process imports to unpickle it: the op classes of a recipe, a transform, the classes of its arguments).
    Tensors and storages are not pickled: torch's reducers would move them to shared memory (CUDA: export them),
    and the names they need are torch's."""

    def __init__(self) -> None:
        super().__init__(_Discard(), pickle.DEFAULT_PROTOCOL)  # ForkingPickler.dumps' protocol (protocol=None)
        self.named: dict[int, Any] = {}
        for kind, reduce in list(self.dispatch_table.items()):
            if (getattr(kind, "__module__", None) or "").split(".")[0] == "torch" and reduce is not None:
                self.dispatch_table[kind] = _not_pickled

    def persistent_id(self, obj: Any) -> None:
        if isinstance(obj, (type, types.FunctionType)):
            self.named.setdefault(id(obj), obj)
        return None

    def dump_spawning(self, obj: Any) -> None:
        """:meth:`dump` as :class:`multiprocessing.Process` ``.start()`` runs it: objects that may only be pickled
        then (a ``multiprocessing.Value``, ``Lock`` or ``Queue``) pickle as they do for a worker."""
        before = mp_context.get_spawning_popen()
        mp_context.set_spawning_popen(_CheckPopen())
        try:
            self.dump(obj)
        finally:
            mp_context.set_spawning_popen(before)


def _not_pickled(obj: Any) -> tuple[Any, tuple[()]]:
    return (tuple, ())


class _CheckPopen:
    """The process being started, to the reducers that ask for it: file descriptors and handles are named, not
    duplicated (nothing is started)."""

    def duplicate_for_child(self, fd: Any) -> Any:
        return fd

    def DupFd(self, fd: Any) -> _CheckFd:  # noqa: N802 — multiprocessing's name
        return _CheckFd(fd)


class _CheckFd:
    def __init__(self, fd: Any) -> None:
        self.fd = fd


class _Discard:
    def write(self, data: Any) -> int:
        return memoryview(data).nbytes  # a pickle.PickleBuffer (protocol 5's out-of-band array) has no len()


def _named(obj: Any) -> str:
    """A function or object as an error names it: ``add_flag``, ``MyTokenizer(...)``."""
    name = getattr(obj, "__qualname__", None)
    return name if isinstance(name, str) else f"{type(obj).__qualname__}(...)"


def _main_run_again() -> str | None:
    """What of ``__main__`` a spawned (forkserver) worker runs again, finding what it defines at its top level
    (None: nothing). multiprocessing's own rule (multiprocessing.spawn): a script is re-run by path (not
    IPython's), a ``python -m`` module by name (not a package's ``__main__``); a notebook, a REPL or
    ``python -c`` has nothing to re-run."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return None if name == "__main__" or name.endswith(".__main__") else name
    path = getattr(main, "__file__", None)
    return None if path is None or os.path.splitext(os.path.basename(path))[0] == "ipython" else path


def _main_words() -> str:
    """``__main__`` as a refusal describes it."""
    name = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    if isinstance(name, str) and name.endswith(".__main__"):
        return (f"__main__ ({name.replace('.', '/')}.py, run with `python -m {name[:-len('.__main__')]}`), which a "
                "spawned worker does not run again (multiprocessing re-imports no package's __main__)")
    return "__main__ (a notebook, the REPL or python -c), which a spawned worker cannot run again"


def check_spawn_workers(method: str | None, given: Sequence[tuple[str, Any]]) -> None:
    """DataLoader workers started with spawn or forkserver (the default on macOS and Windows) unpickle what
    they run, importing the module of every class and function it names; one they cannot import (defined in
    a notebook's or ``python -c``'s ``__main__``, a module loaded by path) killed each worker with torch's bare
    "DataLoader worker exited unexpectedly". Checked here, before a worker starts, as an ablation checks its
    plugins (:func:`mmdata.plugins.worker_plugins`): MMDataError naming the argument, what it uses that a
    worker cannot get and the ways out. ``given``: (label, object) pairs, e.g. ``("transform=", fn)``.

    Only what would surely fail is refused: the object is pickled as a worker's start pickles it, and a failure
    that is not the object's own (``PicklingError``, ``TypeError`` or ``AttributeError``: a lambda, a local
    function, an open file) is left to the start."""
    if method not in ("spawn", "forkserver"):
        return  # fork: the workers are copies of this process and have everything it has
    from mmdata.plugins import _builtin, _by_name

    fork = ", or multiprocessing_context='fork'" if sys.platform.startswith("linux") else ""
    ways = ("define it in a module (a .py file on PYTHONPATH or in the working directory) and import it from "
            f"there, or use num_workers=0{fork}")
    started = f"DataLoader workers started with {method!r} get it by pickle, importing what it names"
    for label, obj in given:
        if obj is None:
            continue
        names = _NamedGlobals()
        try:
            names.dump_spawning(obj)
        except (pickle.PicklingError, AttributeError) as exc:  # a by-reference lookup: a lambda, a local function
            raise MMDataError(f"{label}: {started}, and it does not pickle ({type(exc).__name__}: {exc}); "
                              f"{ways}") from None
        except TypeError as exc:  # "cannot pickle '_thread.lock' object": something it holds
            raise MMDataError(f"{label}: {started}, and it does not pickle ({type(exc).__name__}: {exc}); make what "
                              "it holds picklable (open a file, a lock or a client in the worker, e.g. on first use), or "
                              f"use num_workers=0{fork}") from None
        except Exception:  # noqa: BLE001 — not one the check can read as the object's: the workers' start says
            continue
        main_rerun = _main_run_again() is not None
        for ref in names.named.values():
            mod = getattr(ref, "__module__", None) or ""
            if _builtin(mod) or mod in sys.stdlib_module_names or (mod == "__main__" and main_rerun):
                continue
            why = f"is defined in {_main_words()}" if mod == "__main__" else _by_name(ref)
            if why is not None:
                op = isinstance(ref, type) and issubclass(ref, Op)
                what = ("it" if ref is obj else
                        f"its op {ref.name!r} ({ref.section}), class {ref.__qualname__}," if op else
                        f"it uses {ref.__qualname__}, which")
                raise MMDataError(f"{label}: {started}; {what} {why}; {ways}")


def loader_keywords() -> set[str]:
    """Every keyword :func:`loader` takes (its own options and the reader options it passes on)."""
    own = [p for p in inspect.signature(Loader.__init__).parameters if p not in ("self", "path", "reader_kw")]
    return {*own, *READER_OPTIONS}


def _check_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer=`` as collate encodes with it (:func:`mmdata.types.as_tokenizer`), tried on one text here, so
    a tokenizer that cannot encode is refused before a worker starts (MMDataError naming what it gave)."""
    if tokenizer is None:
        return None
    try:
        tok = as_tokenizer(tokenizer)
    except TypeError as exc:
        raise MMDataError(str(exc)) from None
    ids, lengths = tok.encode_batch(["a photo of a cat"])
    if not (isinstance(ids, torch.Tensor) and isinstance(lengths, torch.Tensor) and ids.dim() == 2 and ids.shape[0] == 1
            and lengths.shape == (1,)):
        raise MMDataError(f"tokenizer={tokenizer!r}: encode_batch(texts) must return (ids (B, L), lengths (B,)) tensors "
                          f"as mmdata.text.Tokenizer's do; got {type(ids).__name__}, {type(lengths).__name__}")
    return tok


def _check_balance(balance: Any) -> None:
    """``balance`` as :func:`~mmdata.augment.recipe.validate_balance` takes it; a bare mode (``"over"``)
    is refused with the mapping it stands for."""
    if isinstance(balance, str):
        modes = list(BALANCE_KEYS["mode"])
        example = {"by": "label", "mode": balance if balance in modes else "over"}
        raise RecipeError(f"balance: expected a mapping with keys by, mode, threshold, fraction, seed (e.g. {example}; "
                          f"mode one of {modes}), got {balance!r}")
    validate_balance(balance, "balance")


def _can_pin() -> bool:
    """Whether pinned host memory can be had (torch's DataLoader asks the same before pinning)."""
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return torch.cuda.is_available()


class _EpochHook:
    """``Loader.sampler``: Lightning's ``set_epoch`` call at each training epoch's start. A fresh loader
    resumed from a checkpoint written at an epoch's end (Lightning restores no loader state then)
    starts at epoch 0 of its own; this tells it the trainer's epoch. The epoch the loader already has
    (a mid-epoch resume just loaded, or the epoch it counted itself) is left as it is, position included.

    While a pass is under way the epoch is not changed under it; the next pass is the epoch asked for
    when the running one hands out no further batch (Lightning drops it for a new iteration: a sized
    loader at each epoch's start, any loader with ``reload_dataloaders_every_n_epochs``). When the running
    pass goes on, its batches keep their epoch, and an :class:`EpochWarning` says so: Lightning fetches
    one batch of a loader without ``len()`` in ``FitLoop.setup_data`` (``iter(self._data_fetcher)``,
    ``_PrefetchDataFetcher.__iter__``) before ``on_advance_start`` calls ``set_epoch``, and in a fit
    resumed from a checkpoint written at an epoch's end it neither restores the loader's state (the
    loop is not "restarting") nor starts a new iteration for that epoch (``is_resuming``), so that
    epoch trains on the pass the early fetch began, the loader's own epoch 0."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        loader, epoch = self.loader, int(epoch)
        if loader._active:
            loader._requested = None if epoch == loader._epoch else (epoch, loader._passes)
        elif epoch != loader._epoch:  # the epoch it counted itself (a finished pass: the one it read)
            loader.set_epoch(epoch)


def _split_names(split: Any) -> str | list[str] | None:
    """A split as a loader state records it: a name, a list of two or more names (one name listed alone reads
    what the name reads: review of QA30), or None when it is neither.

    Example:
        >>> _split_names(["train"]), _split_names(("1", "2")), _split_names(None)
        ('train', ['1', '2'], None)
    """
    if isinstance(split, str):
        return split
    if isinstance(split, (list, tuple)) and split and all(isinstance(x, str) for x in split):
        return split[0] if len(split) == 1 else list(split)
    return None


def loader(path: str | Path | Sequence[Any] | Mapping[str, str | Path], batch_size: int | None = None, recipe: Any = None, split: Any = "train", seed: int = 0, epoch: int = 0,
           num_workers: int = 0, device: str | torch.device = "cpu", augment_on: str = "workers", balance: Any = None,
           stage: str = "train", **kw: Any) -> Loader:
    """Batches of normalized (and, in training, augmented) multimodal samples.

    Every batch has a presence mask (``batch.present[m]``, bool (B,)) for each modality the dataset has, and
    for image, audio and text also where it has none (all False, no data: model code indexes
    ``present["audio"]`` on a text-only dataset too), as ``DataLoader(ds, collate_fn=ds.collate_fn)`` gives
    them; with ``modalities=``, for the modalities kept.

    Args:
        path: dataset folder (or shards: a tar, a list of them, a glob; see :func:`mmdata.open_dataset`), or
            ``{name: dataset folder}``: several datasets read as one blend (:func:`mmdata.blend`; ``weights``
            in ``**kw``: passes over each per epoch, ``split`` a name or ``{name: split}``).
        batch_size: samples per batch; with ``max_duration``, the most samples per batch (None, the
            default: no cap). One of the two is needed.
        recipe: a recipe path, YAML string, dict or :class:`~mmdata.augment.Recipe` (None: no augmentation).
        split: split to read. seed: order, balance and augmentation seed. epoch: epoch to start at.
        num_workers: DataLoader worker processes. The epoch's samples and their draws do not depend on
            it (a blend with a fractional weight aside: each reader's share of that dataset is cut at the
            weight's fraction, so which samples an epoch reads does), but each worker batches its own samples: batch composition (so batch ops, training steps
            and metrics), the order, and with ``drop_last`` the samples dropped do. A mid-epoch
            ``state_dict`` resumes with the same count (and world size).
        device: where batches end up (and where batched kernels run with ``augment_on="device"``): a name
            (``"cpu"``, ``"cuda:1"``) or a :class:`torch.device`; one this torch cannot use (``"tpu"``, CUDA
            without a visible GPU) raises :class:`~mmdata.errors.MMDataError` naming ``device=``.
        augment_on: ``"workers"`` (per-sample CPU kernels in workers) or ``"device"`` (batched kernels);
            the recipe's normalize stage runs per sample in the workers either way.
        balance: a balance config (overrides the recipe's ``balance`` section; training only).
        stage: ``"train"`` (normalize + random sections + batch section, shuffled, balanced) or ``"eval"``
            (the normalize stage only, in order: validation / test data).
        **kw: ``shuffle`` (default: True in training, False in eval), ``drop_last``, ``pin_memory``,
            ``prefetch`` (batches each DataLoader worker loads ahead, default 2; warned of without workers),
            ``cache``, ``modalities`` (the input fields to read, others not decoded: ``["image", "iq"]``; the
            label, the target, is kept either way; metadata ``json`` only when named), ``on_error``, ``weights``, ``label_map`` and ``check_copies`` (a blend's:
            :func:`mmdata.blend`),
            ``plan_in_workers`` (``augment_on="device"`` with workers: the workers draw each batch's params,
            :meth:`~mmdata.augment.Recipe.plan_batched`, and the main process only runs the kernels; default:
            when ``device`` is not the CPU), the DataLoader's ``multiprocessing_context`` (``"spawn"``,
            ``"forkserver"``), ``worker_init_fn`` and ``timeout`` (passed on to the workers as they are),
            ``transform`` (a function of one :class:`~mmdata.Sample` returning it, changed or with fields
            added — webdataset's ``.map(fn)``: run in the workers on each decoded sample after the recipe's
            per-sample stages, before collate; a module-level function under spawn workers; it must keep
            the key, and a :class:`~mmdata.errors.ShardError` it raises skips the sample under
            ``on_error="skip"``, counted. It runs before the recipe's ``batch`` section: a field it derives
            from ``text`` (token ids of your own) goes stale when a batch op edits the text — mixgen,
            consistent_hflip or a text op with ``augment_on="device"`` — so give the tokenizer as
            ``tokenizer=`` instead), ``tokenizer`` (what ``batch["tokens"]`` is encoded with, default
            :class:`mmdata.text.Tokenizer`: a Hugging Face tokenizer — ``transformers``, called on the batch's
            texts with ``truncation=True`` at its ``model_max_length``, or a ``tokenizers.Tokenizer`` — or a
            function of one text returning its ids, ``str -> list[int]``; the batch ops re-encode the texts they
            edit with it, and it travels to the workers pickled, so a function must be module-level under
            spawn workers; ids are padded with 0 past ``batch.lengths["tokens"]``, see
            :class:`mmdata.types.UserTokenizer`), ``max_duration`` / ``buckets`` / ``bucket_buffer`` (batches by
            duration for variable-length audio, below) and reader options. DataLoader options the loader sets itself (``persistent_workers``,
            ``collate_fn``, ``sampler``, ``generator``, ...) are refused, naming what to use instead.

    Batching by duration (``max_duration=SECONDS``, :mod:`mmdata.augment.bucketing`): each worker sorts its
    samples into ``buckets`` duration buckets (default 10; edges: quantiles of the index's
    ``audio_seconds`` for the split, else of the first ``bucket_buffer`` clips the worker sees) and
    sends a batch of one bucket once it is full: its padded cost — the longest clip x the samples, what
    collate pads to — stays within ``max_duration`` (and ``batch_size``, when given, caps the samples). At
    most ``bucket_buffer`` samples (default buckets x 32) wait in the buckets; past that the fullest goes
    out as it is. A clip longer than ``max_duration`` comes alone, warned once and counted in
    ``loader.over_budget``. A sample without audio costs the split's shortest clip (collate pads its
    missing audio to the batch's longest): a batch of them holds at most ``max_duration`` / shortest.
    Each bucket's last partial batch comes at the epoch's end unless
    ``drop_last``. Deterministic for (seed, epoch), every sample once per epoch; ``len()`` raises
    TypeError (the batch count depends on the durations); ``state_dict()`` resumes exactly by replaying
    each reader's stream from the epoch's start (re-reading and re-augmenting the part already handed
    out, which is dropped). Not with ``balance`` or a blend of datasets, and a dataset without audio is refused.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> rec = {"image": [{"op": "hflip", "p": 0.5}], "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.3}]}
        >>> [len(b) for b in loader(t + "/ds", 4, recipe=rec, seed=1)]
        [4, 2]
    """
    return Loader(path, batch_size, recipe=recipe, split=split, seed=seed, epoch=epoch, num_workers=num_workers,
                  device=device, augment_on=augment_on, balance=balance, stage=stage, **kw)
