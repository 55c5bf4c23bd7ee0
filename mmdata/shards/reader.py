"""``mmdata.open_dataset``: aligned multimodal samples from shards, exactly once per epoch.

Splitting. Readers are numbered ``rank * num_workers + worker_id`` over ``world_size * num_workers``
(torch.distributed rank/world size when a process group is initialised, DataLoader worker info).
With at least as many shards as readers, reader *r* reads shards ``order[r::n]``. With fewer shards
than readers, every reader scans every shard and keeps the samples whose running index in the
epoch's shard order satisfies ``index % n == r`` — still exactly once, at the cost of reading bytes
that are discarded (decoding is skipped for them). Readers may get unequal sample counts; a DDP
training loop that needs equal step counts should pad or drop (see mmdata.train).

Order. Shard order and the bounded shuffle buffer are drawn from ``mmdata.rng.derive(seed, epoch, ...)``:
the stream is a pure function of (seed, epoch) for a fixed reader count.

Resume. Every yielded sample carries ``meta["reader"]`` and ``meta["position"]`` (its index in that
reader's stream this epoch). ``state_dict()`` holds ``positions`` (next position per reader);
``load_state_dict()`` makes the next iteration skip, per reader, what was already yielded — without
decoding it — and continue exactly.

Bad input. With ``on_error="raise"`` a corrupt member, truncated shard, non-UTF-8 text, pickle member
or missing required modality raises :class:`~mmdata.errors.ShardError` naming the shard and key; with
``"skip"`` / ``"warn"`` the sample is dropped and counted in ``dataset.skipped`` (reason -> count) and
``dataset.errors`` (first 100 (shard, key, message)). Inside DataLoader workers those counts live in the
worker, so each yielded sample also carries the reader's cumulative counts in ``meta["skipped"]``
(when non-empty); :func:`mmdata.loader` aggregates them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from mmdata.codecs import DecodeError, UnsafeMemberError, decode_member, field_of
from mmdata.errors import ShardError
from mmdata.rng import derive
from mmdata.shards import index as idx
from mmdata.shards.tario import expand_sources, iter_samples
from mmdata.types import Sample

log = logging.getLogger("mmdata.reader")
ON_ERROR = ("raise", "skip", "warn")
_MAX_ERRORS = 100


def dist_rank_world() -> tuple[int, int] | None:
    """(rank, world size) from an initialised process group, else torchrun's RANK / WORLD_SIZE env."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


def reader_id(dist: tuple[int, int] | None = None, rotation: int = 0) -> tuple[int, int]:
    """(reader id, number of readers) of the calling process/worker.

    DataLoader workers do not see the parent's process group, so the rank captured when the dataset
    was created (``dist``) is used there. ``rotation`` shifts which worker plays which reader: a
    resumed loader uses it so DataLoader's in-order round robin continues with the right reader.
    """
    rank, world = dist_rank_world() or dist or (0, 1)
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + (wid + rotation) % nw, world * nw


class _Skip(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _reason(exc: Exception, ext: str) -> str:
    if isinstance(exc, UnsafeMemberError):
        return "pickle member refused"
    name = field_of(ext)
    return {"image": "corrupt image", "audio": "corrupt audio", "text": "non-UTF-8 text",
            "label": "bad label"}.get(name, f"corrupt .{ext}")


class ShardDataset(IterableDataset):  # type: ignore[type-arg]
    """An IterableDataset of :class:`~mmdata.Sample` over shards (see the module docstring).

    Use :func:`open_dataset` to create one.
    """

    def __init__(self, path: str | Path | Sequence[Any], *, split: str = "train", modalities: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, on_error: str = "raise",
                 allow_pickle: bool = False, required: Sequence[str] | None = None, decode: bool = True,
                 buffer_size: int = 512, partition: bool = True) -> None:
        if on_error not in ON_ERROR:
            raise ShardError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.split = split
        self.modalities = None if modalities is None else tuple(modalities)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.on_error = on_error
        self.allow_pickle = allow_pickle
        self.required = tuple(required or ())
        self.decode = decode
        self.buffer_size = buffer_size
        self.partition = partition
        self.card: dict[str, Any] | None = None
        self.root: Path | None = None
        self.layout = "samples"
        self.series: list[str] = []
        self._keys_by_shard: dict[str, list[str]] | None = None
        if not isinstance(path, (list, tuple)) and idx.is_dataset(path):
            self.root = Path(path)
            self.card = idx.load_card(self.root)
            self.layout = self.card.get("layout", "samples")
            splits = self.card.get("splits", {})
            if split not in splits:
                raise ShardError(f"{path}: no split {split!r}; it has {sorted(splits)}")
            self.shards = list(splits[split]["shards"])
            if self.layout == "columns":
                fields = self.card.get("fields") or []
                self.series = [f for f in fields if self.modalities is None or f in self.modalities]
                if not self.series:
                    raise ShardError(f"{path}: none of the requested modalities {self.modalities} is stored; it has {fields}")
        else:
            self.shards = expand_sources(path)
        self.skipped: dict[str, int] = {}
        self.errors: list[tuple[str, str, str]] = []
        self._skip: dict[int, int] = {}
        self._positions: dict[int, int] = {}
        self._dist = dist_rank_world()
        self.rotation = 0

    # ---- public metadata -------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str] | None:
        """Class names from the dataset card (None for foreign shards)."""
        return self.card.get("label_names") if self.card else None

    @property
    def num_samples(self) -> int | None:
        """Samples in this split per the card (None for foreign shards)."""
        return self.card["splits"][self.split]["samples"] if self.card else None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (new shard order / shuffle); clears a pending resume."""
        self.epoch = epoch
        self._skip = {}
        self._positions = {}

    # ---- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Position of the stream: ``{"seed", "epoch", "positions": {reader: next_position}}``."""
        return {"seed": self.seed, "epoch": self.epoch, "positions": dict(self._positions)}

    @staticmethod
    def state_from_positions(seed: int, epoch: int, positions: dict[int, int]) -> dict[str, Any]:
        """Build a state from positions tracked outside (e.g. by a DataLoader-level loader from
        ``batch.meta["samples"][i]["reader"/"position"]``: next position = max position + 1)."""
        return {"seed": seed, "epoch": epoch, "positions": {int(k): int(v) for k, v in positions.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration skips what each reader already yielded."""
        if state.get("seed", self.seed) != self.seed:
            raise ShardError(f"state was saved with seed {state.get('seed')}, this dataset has seed {self.seed}")
        self.epoch = int(state["epoch"])
        self._skip = {int(k): int(v) for k, v in state.get("positions", {}).items()}
        self._positions = dict(self._skip)

    # ---- iteration -------------------------------------------------------------------------------
    def _shard_url(self, name: str, series: str | None = None) -> str:
        if self.root is None:
            return name
        return str(self.root / series / name) if series else str(self.root / name)

    def _count(self, reason: str, shard: str, key: str, message: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append((shard, key, message))
        if self.on_error == "warn":
            log.warning("skipping sample %r in %s: %s", key, shard, message)

    def _raw_samples(self, shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
        if self.layout != "columns":
            yield from iter_samples(self._shard_url(shard))
            return
        yield from self._zip_series(shard)

    def _expected_keys(self, shard: str) -> list[str]:
        if self._keys_by_shard is None:
            table = idx.load_index(self.root).select(["key", "split", "shard"]).to_pydict()
            by: dict[str, list[str]] = {}
            for k, sp, sh in zip(table["key"], table["split"], table["shard"]):
                if sp == self.split:
                    by.setdefault(sh, []).append(k)
            self._keys_by_shard = by
        return self._keys_by_shard.get(shard, [])

    def _zip_series(self, shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
        expected = self._expected_keys(shard)
        allowed = set(expected)
        its = {s: iter_samples(self._shard_url(shard, s)) for s in self.series}
        heads: dict[str, tuple[str, dict[str, bytes]] | None] = {s: next(it, None) for s, it in its.items()}
        done: set[str] = set()
        for key in expected:
            group: dict[str, bytes] = {}
            for s in self.series:
                head = heads[s]
                if head is None:
                    continue
                hk = head[0]
                if hk != key and (hk not in allowed or hk in done):
                    raise ShardError(f"column series {s!r} shard {self._shard_url(shard, s)}: found key {hk!r} where "
                                     f"{key!r} was expected (series out of order or from another dataset)")
                if hk == key:
                    group.update(head[1])
                    heads[s] = next(its[s], None)
            done.add(key)
            yield key, group
        for s, head in heads.items():
            if head is not None:
                raise ShardError(f"column series {s!r} shard {self._shard_url(shard, s)}: key {head[0]!r} is not in "
                                 "the index for this shard (series disagree)")

    def _wanted(self, ext: str) -> bool:
        return self.modalities is None or field_of(ext) in self.modalities

    def _build(self, shard: str, key: str, raw: dict[str, bytes]) -> Sample:
        fields: dict[str, Any] = {}
        rate = None
        for ext, data in raw.items():
            if not self._wanted(ext):
                continue
            if not self.decode:
                if ext.rsplit(".", 1)[-1] in ("pyd", "pickle", "pkl", "pth", "pt") and not self.allow_pickle:
                    raise _Skip("pickle member refused", f".{ext} member is a pickle; refusing it (allow_pickle=False)")
                fields[ext] = data
                continue
            try:
                name, value, sr = decode_member(ext, data, allow_pickle=self.allow_pickle)
            except DecodeError as exc:
                raise _Skip(_reason(exc, ext), f"{key}.{ext}: {exc}") from exc
            fields[name] = value
            if sr is not None:
                rate = sr
        for req in self.required:
            if req not in fields and not (not self.decode and any(field_of(e) == req for e in fields)):
                raise _Skip("missing required modality", f"required modality {req!r} is missing (has {sorted(fields)})")
        return Sample(key, fields, sample_rate=rate, meta={"shard": shard})

    def _stream(self, rid: int, n: int) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        order = list(range(len(self.shards)))
        if self.shuffle:
            order = [int(i) for i in derive(self.seed, self.epoch, "shard-order", 0).permutation(len(self.shards))]
        stride = len(self.shards) < n
        mine = order if stride else order[rid::n]
        counter = 0
        for si in mine:
            shard = self.shards[si]
            it = self._raw_samples(shard)
            last_key = "<start>"
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    break
                except ShardError as exc:
                    if self.on_error == "raise":
                        raise
                    self._count("truncated or corrupt shard", shard, last_key, str(exc))
                    break
                last_key = item[0]
                if stride:
                    counter += 1
                    if (counter - 1) % n != rid:
                        continue
                yield shard, item[0], item[1]

    def __iter__(self) -> Iterator[Sample]:
        rid, n = reader_id(self._dist or dist_rank_world(), self.rotation) if self.partition else (0, 1)
        skip = self._skip.get(rid, 0)
        position = 0
        stream = self._stream(rid, n)
        if self.shuffle:
            stream = self._buffered(stream, rid)
        for shard, key, raw in stream:
            if position < skip:  # resume: already yielded before the checkpoint; not decoded
                position += 1
                continue
            try:
                sample = self._build(shard, key, raw)
            except _Skip as exc:
                if self.on_error == "raise":
                    raise ShardError(f"shard {self._shard_url(shard)}: sample {key!r}: {exc}") from exc
                self._count(exc.reason, shard, key, str(exc))
                continue
            meta = {"shard": shard, "reader": rid, "position": position}
            if self.skipped:
                meta["skipped"] = dict(self.skipped)
            position += 1
            self._positions[rid] = position
            yield Sample(sample.key, sample.fields, sample.sample_rate, meta)
        self._skip.pop(rid, None)

    def _buffered(self, stream: Iterator[Any], rid: int) -> Iterator[Any]:
        rng = derive(self.seed, self.epoch, f"buffer:{rid}", 0)
        buf: list[Any] = []
        for item in stream:
            if len(buf) < self.buffer_size:
                buf.append(item)
                continue
            j = int(rng.integers(len(buf)))
            buf[j], item = item, buf[j]
            yield item
        while buf:
            j = int(rng.integers(len(buf)))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()


def open_dataset(path: str | Path | Sequence[Any], split: str = "train", modalities: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, on_error: str = "raise",
                 allow_pickle: bool = False, required: Sequence[str] | None = None, decode: bool = True,
                 buffer_size: int = 512, partition: bool = True) -> ShardDataset:
    """Open shards as a torch IterableDataset of aligned :class:`~mmdata.Sample`.

    Args:
        path: a dataset folder (``dataset.json`` + index), a tar / tar.gz, a brace pattern
            (``train-{000000..000009}.tar``), a glob, a list of those, or an fsspec URL.
        split: split to read from a dataset folder (ignored for bare shards).
        modalities: fields to keep (others are not decoded; in the column layout not even read).
        shuffle: shuffle shard order and samples (bounded buffer), seeded by (seed, epoch).
        seed: shuffle seed. epoch: epoch number (changes the order; see ``set_epoch``).
        on_error: ``"raise"`` (ShardError naming shard and key), ``"skip"`` or ``"warn"`` (counted in
            ``.skipped`` / ``.errors``).
        allow_pickle: decode pickle members (``.pyd/.pickle/.pth``) — only for shards you trust.
        required: modalities a sample must have (else error / skip).
        decode: False yields raw member bytes keyed by extension.
        buffer_size: shuffle buffer size in samples.
        partition: split the data over DataLoader workers and distributed ranks (exactly once per
            epoch); False gives every process the whole split (e.g. to build an in-memory cache).

    Example:
        >>> import tempfile
        >>> import mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> tmp = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(tmp + "/raw", n=3), tmp + "/ds", progress=False)
        >>> [s.key for s in open_dataset(tmp + "/ds")]
        ['000000', '000001', '000002']
    """
    return ShardDataset(path, split=split, modalities=modalities, shuffle=shuffle, seed=seed, epoch=epoch,
                        on_error=on_error, allow_pickle=allow_pickle, required=required, decode=decode,
                        buffer_size=buffer_size, partition=partition)
