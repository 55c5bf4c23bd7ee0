"""The two public data types: one aligned multimodal :class:`Sample`, and a collated :class:`Batch`.

A sample is a key plus optional fields by modality. Missing modalities are data, not errors: a
sample simply lacks the field, and a batch carries a boolean ``present`` mask per modality that
travels all the way to the model.

Field conventions (decoded):

* ``image``: ``torch.uint8`` tensor, shape ``(C, H, W)``.
* ``audio``: ``torch.float32`` tensor, shape ``(channels, time)``; the rate is ``sample.sample_rate``.
* ``text``: ``str``.
* ``label``: ``int`` (names in the dataset card).
* any other name: an ``np.ndarray`` / tensor from an ``.npy`` member (``<key>.<name>.npy``).
"""

from __future__ import annotations

import copyreg
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

#: Modalities with special collate rules; every other field is an "extra" array.
MODALITIES: tuple[str, ...] = ("image", "audio", "text", "label")


def _shape(v: Any) -> str:
    """A field's value in a repr: ``uint8[3,64,64]`` for an array (its device when not the CPU), a
    text shortened, a list by its length, a number as it is."""
    if isinstance(v, torch.Tensor):
        dev = "" if v.device.type == "cpu" else f" {v.device}"
        return f"{str(v.dtype).removeprefix('torch.')}[{','.join(map(str, v.shape))}]{dev}"
    if isinstance(v, np.ndarray):
        return f"np.{v.dtype}[{','.join(map(str, v.shape))}]"
    if isinstance(v, str):
        return repr(v) if len(v) <= 24 else f"{v[:20]!r}… ({len(v)} chars)"
    if isinstance(v, (bytes, bytearray)):
        return f"bytes[{len(v)}]"
    if isinstance(v, (list, tuple)):
        return f"{type(v).__name__}[{len(v)}]"
    if isinstance(v, dict):
        return f"dict[{len(v)}]"
    return repr(v) if isinstance(v, (int, float, bool, type(None))) else type(v).__name__


def _meta_keys(meta: Mapping[str, Any]) -> str:
    return f"meta: {', '.join(map(str, meta))}" if meta else ""


@dataclass(frozen=True)
class Sample:
    """One aligned multimodal sample (read-only mapping access to its fields).

    It is deliberately *not* a ``collections.abc.Mapping`` subclass: torch's ``default_convert`` would
    otherwise rebuild it as ``Sample({...})`` inside DataLoader workers. ``DataLoader(batch_size=N)``
    with the default collate gives a :class:`Batch` (registered below).

    Args:
        key: the sample key, a non-empty ``str`` (unique within a dataset; shard members are ``<key>.<ext>``;
            random draws and replay logs are keyed by it): another type raises ``TypeError``, give ``str(key)``.
        fields: decoded fields by name (``image``, ``audio``, ``text``, ``label``, extras).
        sample_rate: audio sample rate in Hz when ``audio`` is present.
        meta: provenance and bookkeeping (``shard``, ``source_key``, applied augmentation params).

    Example:
        >>> s = Sample("0001", {"text": "an odd number", "label": 3})
        >>> s["label"], "audio" in s, s.modalities
        (3, False, ('text', 'label'))
    """

    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    sample_rate: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the key names the sample everywhere (shard members <key>.<ext>, draws, logs, errors): one non-empty
        # str, as webdataset's __key__; an int key crashed later in a replay log, None gave every keyless
        # sample the same draws
        if not isinstance(self.key, str) or not self.key:
            raise TypeError(f"a sample key must be a non-empty str, got {self.key!r} ({type(self.key).__name__}); "
                            "give Sample(str(key), ...) with a key unique within the dataset")

    def __reduce__(self) -> tuple[Any, ...]:
        # Small CPU tensors travel by value (as numpy arrays) when a sample is pickled — e.g. out of a
        # DataLoader worker that yields samples uncollated. torch would otherwise move each tensor to
        # shared memory and pass a file descriptor: ~0.3 ms per tensor here, more than decoding a
        # 64x64 JPEG (benchmarks/RESULTS.md, issue 14). Large tensors keep torch's zero-copy sharing.
        fields = self.fields
        for v in fields.values():  # a plain loop on types: isinstance(torch.Tensor) costs ~1 us a field
            if type(v) not in _NOT_TENSORS:
                break
        else:
            # the raw case (bytes, str, numbers): pickle rebuilds the object from its __dict__ in C
            # (NEWOBJ + BUILD), no Python call per sample when it is unpickled
            return copyreg.__newobj__, (Sample,), self.__dict__
        small = [k for k, v in fields.items() if isinstance(v, torch.Tensor) and _by_value(v)]
        if not small:
            return copyreg.__newobj__, (Sample,), self.__dict__
        fields = {k: (_to_numpy(v) if k in small else v) for k, v in fields.items()}
        return _rebuild_sample, (self.key, fields, self.sample_rate, self.meta, tuple(small))

    def __repr__(self) -> str:
        """One line: the key, each field's dtype and shape (a text shortened), the rate, meta's keys only
        (an augmentation log can be kilobytes).

        Example:
            >>> Sample("a", {"audio": torch.zeros(1, 800), "label": 3}, 8000, {"shard": "x.tar"})
            Sample('a', audio float32[1,800] @8000 Hz, label 3; meta: shard)
        """
        parts = [f"{k} {_shape(v)}" + (f" @{self.sample_rate} Hz" if k == "audio" and self.sample_rate else "")
                 for k, v in self.fields.items()]
        meta = _meta_keys(self.meta)
        return f"Sample({self.key!r}" + "".join(f", {p}" for p in parts) + (f"; {meta}" if meta else "") + ")"

    def __getitem__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise KeyError(f"sample {self.key!r} has no field {name!r}; it has {sorted(self.fields)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def keys(self) -> Any:
        return self.fields.keys()

    def items(self) -> Any:
        return self.fields.items()

    def values(self) -> Any:
        return self.fields.values()

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the fields present, in insertion order."""
        return tuple(self.fields)

    def with_fields(self, **updates: Any) -> Sample:
        """Return a new sample with fields replaced or added (inputs are never mutated)."""
        return new_sample(self.key, {**self.fields, **updates}, self.sample_rate, self.meta)  # its key was checked

    def without(self, *names: str) -> Sample:
        """Return a new sample without the named fields."""
        return new_sample(self.key, {k: v for k, v in self.fields.items() if k not in names}, self.sample_rate, self.meta)

    def with_meta(self, **updates: Any) -> Sample:
        """Return a new sample with ``meta`` entries replaced or added."""
        return new_sample(self.key, self.fields, self.sample_rate, {**self.meta, **updates})

    def pin_memory(self) -> Sample:
        """A new sample with its CPU tensor fields pinned (torch's ``DataLoader(pin_memory=True)`` calls it for
        uncollated samples, ``batch_size=None``: without it they stayed pageable, as torch leaves an object it
        does not know); other fields as they are."""
        return self._map(lambda t: t.pin_memory() if t.device.type == "cpu" else t)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Sample:
        """A new sample with its tensor fields on ``device`` (as :meth:`Batch.to`); other fields as they are.

        Example:
            >>> Sample("a", {"audio": torch.zeros(1, 4), "text": "hi"}).to("cpu")["text"]
            'hi'
        """
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Sample:
        return new_sample(self.key, {k: _map_tensors(v, fn) for k, v in self.fields.items()}, self.sample_rate, self.meta)


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with ``fn`` applied to every tensor in it, also inside dicts, lists and tuples (as torch's own
    ``pin_memory`` walks them: QA, a field ``{"a": tensor}`` stayed on the CPU)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):  # a namedtuple stays as it is
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


_NOT_TENSORS = frozenset({bytes, str, int, float, bool, type(None), np.ndarray, list, dict, tuple})

#: tensors up to this size are pickled by value (see ``Sample.__reduce__``); measured crossover of
#: value vs shared-memory transfer between DataLoader processes on a 2-core Xeon: 256 KB-1 MB
BY_VALUE_BYTES = 512 << 10


def _by_value(t: torch.Tensor) -> bool:
    return (t.device.type == "cpu" and not t.requires_grad and t.layout == torch.strided
            and t.nelement() * t.element_size() <= BY_VALUE_BYTES and not (t.is_shared() or t.is_conj() or t.is_neg()))


def _numpy_dtypes() -> frozenset[torch.dtype]:
    """The torch dtypes whose tensors ``.numpy()`` takes (this torch's: uint16 / 32 / 64 since 2.3)."""
    names = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64",
             "complex128", "uint16", "uint32", "uint64")
    out = set()
    for name in names:
        dtype = getattr(torch, name, None)
        try:
            torch.zeros(1, dtype=dtype).numpy()
        except (TypeError, RuntimeError):
            continue
        out.add(dtype)
    return frozenset(out)


_NUMPY_DTYPES = _numpy_dtypes()


def _to_numpy(t: torch.Tensor) -> Any:
    """A small CPU tensor as pickle carries it: a numpy array, or for a dtype numpy lacks (bfloat16, float8,
    complex32...) its bytes with the dtype's name and the shape — torch's own pickling of those fails to
    load (``UntypedStorage has no attribute 'dtype'``, torch 2.13) outside DataLoader's shared memory."""
    if t.dtype in _NUMPY_DTYPES:
        return t.numpy()
    return t.contiguous().reshape(-1).view(torch.uint8).numpy(), str(t.dtype).removeprefix("torch."), tuple(t.shape)


def _from_numpy(v: Any) -> torch.Tensor:
    raw, dtype, shape = v if isinstance(v, tuple) else (v, None, None)
    # an unpickled array can be read-only (out-of-band buffers, e.g. Ray's): torch needs writable memory
    t = torch.from_numpy(raw if raw.flags.writeable else raw.copy())
    return t if dtype is None else t.view(getattr(torch, dtype)).reshape(shape)


def _rebuild_sample(key: str, fields: dict[str, Any], sample_rate: int | None, meta: Mapping[str, Any],
                    small: tuple[str, ...]) -> Sample:
    if small:
        fields = {k: (_from_numpy(v) if k in small else v) for k, v in fields.items()}
    return new_sample(key, fields, sample_rate, meta)


def new_sample(key: str, fields: Mapping[str, Any], sample_rate: int | None, meta: Mapping[str, Any]) -> Sample:
    """``Sample(key, fields, sample_rate, meta)`` without the frozen dataclass ``__init__`` (four
    ``object.__setattr__`` calls, ~1/3 of a raw read's per-sample cost): the same object."""
    s = object.__new__(Sample)
    d = s.__dict__
    d["key"] = key
    d["fields"] = fields
    d["sample_rate"] = sample_rate
    d["meta"] = meta
    return s


@dataclass
class Batch:
    """A collated batch of samples.

    ``batch[name]`` is a padded tensor for ``image`` (B, C, H, W), ``audio`` (B, C, T), ``tokens``
    (B, L) int64, ``label`` (B,) int64 (``-1`` where absent) and extras of one shape; ``text`` is the
    list of original strings (``""`` where absent). ``present[m]`` is a bool (B,) tensor per modality;
    ``lengths`` holds valid lengths (``audio``: samples, ``tokens``: tokens, ``image`` and a named image field such as
    ``frame1.png``: (B, 2) h, w; every other field of arrays — a ``.npy`` field, ``spec`` — its rows' (B, ndim) whole
    shapes, in every batch, also when they are all one shape, zeros where a row is absent: collate pads every
    axis, warning when two or more vary; a field of scalars has none).

    ``present`` and ``lengths`` are host metadata: they stay on the CPU when ``.to(device)`` moves the
    data, so augmentation draws and shape bookkeeping never read a GPU tensor back (no host-device
    sync per batch). Move a mask yourself where a kernel needs it: ``batch.present["audio"].to(dev)``.

    Mixing ops (mixup / mixgen) add ``label_b`` (B,) and ``mix_lam`` (B,) float: the target is
    ``lam * onehot(label) + (1 - lam) * onehot(label_b)``.

    A Batch is indexed by field name but is not a mapping: ``keys`` is the list of the sample keys, not a
    method, so ``dict(batch)`` / ``{**batch}`` fail ("'list' object is not callable"); the fields are
    ``dict(batch.data)``. Iterating it is refused (rows: :meth:`select`). ``keys`` stays a plain list, which
    every serialiser takes (``torch.load(weights_only=True)``, ``yaml.safe_dump``: review of QA30).

    Args:
        keys: the sample keys, one per row, in order (a list: draws, replay logs and errors name rows by them).
        data: the fields by name (padded tensors, or lists such as ``text``).
        present: per field, a bool (B,) host tensor: which rows have it.
        lengths: per padded field, the valid lengths on the host (see above).
        sample_rate: the audio's sample rate in Hz (one per batch: collate refuses mixed rates), or None.
        meta: bookkeeping: ``samples`` (each sample's meta), ``aug`` (each row's replay log),
            ``aug_batch`` (the batch section's params), ``fields``.

    Example:
        >>> b = collate([Sample("a", {"label": 1}), Sample("b", {})])
        >>> b["label"].tolist(), b.present["label"].tolist(), len(b), b.keys
        ([1, -1], [True, False], 2, ['a', 'b'])
    """

    keys: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    present: dict[str, torch.Tensor] = field(default_factory=dict)
    lengths: dict[str, torch.Tensor] = field(default_factory=dict)
    sample_rate: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        """A summary (a batch of 32 printed its tensors and every sample's augmentation log: 70 KB): the
        number of samples and the first and last keys, each field's dtype and shape, the audio rate, how
        many samples have each modality, meta's keys.

        Example:
            >>> collate([Sample("a", {"label": 1}), Sample("b", {})])
            Batch(2 samples 'a'..'b'; label int64[2] present 1/2; meta: fields)
        """
        n = len(self.keys)
        keys = "" if not n else f" {self.keys[0]!r}" if n == 1 else f" {self.keys[0]!r}..{self.keys[-1]!r}"
        parts = []
        for k, v in self.data.items():
            part = f"{k} {_shape(v)}"
            if k == "audio" and self.sample_rate:
                part += f" @{self.sample_rate} Hz"
            mask = self.present.get(k)
            if isinstance(mask, torch.Tensor) and mask.numel() == n:
                part += f" present {int(mask.sum())}/{n}"
            parts.append(part)
        meta = _meta_keys(self.meta)
        return (f"Batch({n} sample{'s' * (n != 1)}{keys}" + "".join(f"; {p}" for p in parts)
                + (f"; {meta}" if meta else "") + ")")

    def __getitem__(self, name: str) -> Any:
        if not isinstance(name, str):  # batch[0], or list(batch) / for x in batch (which index 0, 1, ...)
            # no __iter__ of field names: len(batch) counts samples, and Lightning takes any Iterable batch for a
            # sequence of samples; the message names the loops to write instead (QA39 interop #6)
            raise TypeError(f"a Batch is indexed by field name ({sorted(self.data)}), not by {type(name).__name__}; "
                            "it is not a sequence of samples: their keys are batch.keys, the fields batch.data "
                            "(for name in batch.data: ..., {f: batch[f].shape for f in batch.data}); rows: "
                            "batch.select(...)")
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(f"batch has no field {name!r}; it has {sorted(self.data)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def size(self) -> int:
        """Number of samples in the batch."""
        return len(self.keys)

    @property
    def device(self) -> torch.device:
        """Device of the first tensor field (CPU when there is none)."""
        for v in self.data.values():
            if isinstance(v, torch.Tensor):
                return v.device
        return torch.device("cpu")

    def replace(self, **data: Any) -> Batch:
        """Return a shallow copy with the given data fields replaced or added."""
        return replace(self, data={**self.data, **data}, present=dict(self.present),
                       lengths=dict(self.lengths), meta=dict(self.meta))

    def _map(self, fn: Any) -> Batch:
        conv = lambda v: fn(v) if isinstance(v, torch.Tensor) else v  # noqa: E731
        cpu = lambda v: v.cpu() if isinstance(v, torch.Tensor) else v  # noqa: E731 - a no-op for host metadata
        return replace(
            self,
            data={k: conv(v) for k, v in self.data.items()},
            present={k: cpu(v) for k, v in self.present.items()},
            lengths={k: cpu(v) for k, v in self.lengths.items()},
            meta=dict(self.meta),
        )

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Batch:
        """Move the data tensors to ``device``; ``present`` and ``lengths`` stay on the host."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Pin the CPU data tensors (used by DataLoader(pin_memory=True) and the device loader)."""
        return self._map(lambda t: t.pin_memory() if t.device.type == "cpu" else t)

    # -- rows ------------------------------------------------------------------------------------
    def valid_shapes(self, name: str) -> torch.Tensor:
        """(B, ndim) host tensor: the unpadded shape of each row of tensor field ``name`` (zeros where the
        row is absent). ``image`` rows are (C, h, w), ``audio`` (C, n), ``tokens`` (n,).

        Example:
            >>> b = collate([Sample("a", {"audio": torch.ones(2, 3)}), Sample("b", {})])
            >>> b.valid_shapes("audio").tolist()
            [[2, 3], [0, 0]]
        """
        v = self.data[name]
        n = len(self.keys)
        pres = self.present.get("text" if name == "tokens" else name, torch.ones(n, dtype=torch.bool))
        if name == "image":
            out = torch.cat([torch.full((n, 1), v.shape[1], dtype=torch.int64), self.lengths["image"]], dim=1)
        elif name == "audio":
            out = torch.stack([torch.full((n,), v.shape[1], dtype=torch.int64), self.lengths["audio"]], dim=1)
        elif name == "tokens":
            out = self.lengths["tokens"][:, None].clone()
        elif name in self.lengths and self.lengths[name].shape[-1] == 2 and v.dim() == 4 and is_image_field(name):
            # a named image field's (h, w) lengths, as the image's: its channels first (QA36 video #4)
            out = torch.cat([torch.full((n, 1), v.shape[1], dtype=torch.int64), self.lengths[name]], dim=1)
        elif name in self.lengths:
            out = self.lengths[name].clone()
        else:
            out = torch.tensor(list(v.shape[1:]), dtype=torch.int64).expand(n, v.dim() - 1).clone()
        return out.masked_fill(~pres[:, None], 0)

    def select(self, rows: Sequence[int], fields: Sequence[str] | None = None) -> Batch:
        """A batch of the given rows (data, presence, lengths, per-sample meta), with padding trimmed to
        the selected rows; tensors stay on their device (the row index is copied there, no sync).

        ``fields``: only these data fields (with their presence and lengths; ``tokens`` goes with ``text``'s
        presence) — what an op that touches one modality needs, without copying the others.

        Example:
            >>> b = collate([Sample("a", {"label": 1}), Sample("b", {"label": 2, "text": "hi"})]).select([1], ["label"])
            >>> b.keys, b["label"].tolist(), sorted(b.data)
            (['b'], [2], ['label'])
        """
        idx = torch.tensor(list(rows), dtype=torch.int64)
        pick = [int(i) for i in rows]
        data: dict[str, Any] = {}
        keep = set(self.data if fields is None else fields)
        for name, v in self.data.items():
            if name not in keep:
                continue
            if isinstance(v, torch.Tensor):
                if v.dim() > 1 and pick and name in ("image", "audio", "tokens", *self.lengths):
                    # trim padding to the selected rows: geometric kernels then see a rectangular batch
                    top = [int(t) for t in self.valid_shapes(name)[idx].amax(dim=0).tolist()]
                    if name in ("image", "audio"):
                        top[0] = v.shape[1]  # channels are never padded
                    if name == "tokens":
                        top[0] = max(1, top[0])  # like collate: at least one (PAD) column
                    v = v[(slice(None), *(slice(0, t) for t in top))]
                data[name] = v.index_select(0, idx.to(v.device, non_blocking=True))
            elif isinstance(v, list):
                data[name] = [v[i] for i in pick]
            else:
                data[name] = v
        meta = dict(self.meta)
        for k in ("samples", "aug"):
            if isinstance(meta.get(k), list) and len(meta[k]) == len(self.keys):
                meta[k] = [meta[k][i] for i in pick]
        return Batch(keys=[self.keys[i] for i in pick], data=data,
                     present={k: p[idx] for k, p in self.present.items() if k in keep or (k == "text" and "tokens" in keep)},
                     lengths={k: ln[idx] for k, ln in self.lengths.items() if k in keep}, sample_rate=self.sample_rate, meta=meta)

    def scatter(self, rows: Sequence[int], sub: Batch) -> Batch:
        """This batch with ``rows`` replaced by the rows of ``sub`` (as made by :meth:`select` and then
        transformed): fields are re-padded to the largest row, presence and lengths merged, on the data's
        device. The inverse of ``select``: ``b.scatter(rows, b.select(rows))`` equals ``b`` up to padding.

        Raises:
            ValueError: the new rows cannot share a tensor with the others (channel counts or sample
                rates differ) — the message names sample keys.

        Example:
            >>> b = collate([Sample("a", {"label": 1}), Sample("b", {"label": 2})])
            >>> sub = b.select([1])
            >>> b.scatter([1], sub.replace(label=sub["label"] * 10))["label"].tolist()
            [1, 20]
        """
        n = len(self.keys)
        idx = torch.tensor(list(rows), dtype=torch.int64)
        sel = torch.zeros(n, dtype=torch.bool)
        sel[idx] = True
        out = Batch(keys=list(self.keys), data=dict(self.data), present=dict(self.present), lengths=dict(self.lengths),
                    sample_rate=self.sample_rate, meta=dict(self.meta))
        for name, pres in sub.present.items():
            merged = self.present[name].clone() if name in self.present else torch.zeros(n, dtype=torch.bool)
            merged[idx] = pres
            out.present[name] = merged
        others = [k for k, s, p in zip(self.keys, sel.tolist(), self.present.get("audio", torch.zeros(n, dtype=torch.bool)).tolist())
                  if p and not s]
        if "audio" in sub.data and bool(sub.present["audio"].any()):
            if others and sub.sample_rate != self.sample_rate:
                raise ValueError(f"cannot merge audio at {sub.sample_rate} Hz (e.g. sample {sub.keys[0]!r}) into a batch at "
                                 f"{self.sample_rate} Hz (e.g. sample {others[0]!r})")
            out.sample_rate = sub.sample_rate
        for name, sv in sub.data.items():
            bv = self.data.get(name)
            if isinstance(sv, list):
                merged_list = list(bv) if isinstance(bv, list) else ["" if name == "text" else None] * n
                for j, i in enumerate(idx.tolist()):
                    merged_list[i] = sv[j]
                out.data[name] = merged_list
                continue
            if not isinstance(sv, torch.Tensor):
                out.data[name] = sv
                continue
            shapes = torch.zeros((n, sv.dim() - 1), dtype=torch.int64)
            if isinstance(bv, torch.Tensor):
                keep = self.valid_shapes(name).masked_fill(sel[:, None], 0)
                if name in ("image", "audio") and bool((keep[:, 0] > 0).any()) and bv.shape[1] != sv.shape[1]:
                    other = self.keys[int(torch.nonzero(keep[:, 0] > 0)[0])]
                    raise ValueError(f"cannot merge {name!r} rows with {sv.shape[1]} channels (e.g. sample {sub.keys[0]!r}) into a "
                                     f"batch with {bv.shape[1]} (e.g. sample {other!r}); apply the op to every sample (p = 1)")
                shapes = keep
            shapes[idx] = sub.valid_shapes(name)
            target = [int(v) for v in shapes.amax(dim=0).tolist()] if n else []
            if name in ("image", "audio"):
                target[0] = sv.shape[1]  # channels are uniform, not padded
            elif name == "tokens":
                target[0] = max(1, target[0])  # at least one column, as collate gives every text (empty ones too)
            elif name not in self.lengths and name not in sub.lengths and name != "tokens":
                target = list(sv.shape[1:])  # fixed-shape field (labels, extras of one shape)
            dev = idx.to(sv.device, non_blocking=True)
            if isinstance(bv, torch.Tensor) and list(bv.shape[1:]) == target == list(sv.shape[1:]) and bv.dtype == sv.dtype:
                merged_t = bv.clone()
                merged_t.index_copy_(0, dev, sv)
            else:
                merged_t = torch.zeros((n, *target), dtype=sv.dtype, device=sv.device)
                if isinstance(bv, torch.Tensor):
                    common = tuple(slice(0, min(a, b)) for a, b in zip(bv.shape[1:], target))
                    merged_t[(slice(None), *common)] = bv[(slice(None), *common)].to(sv.dtype)
                if list(sv.shape[1:]) != target:  # the new rows' padding may be wider or narrower than needed
                    padded = torch.zeros((len(idx), *target), dtype=sv.dtype, device=sv.device)
                    common = tuple(slice(0, min(a, b)) for a, b in zip(sv.shape[1:], target))
                    padded[(slice(None), *common)] = sv[(slice(None), *common)]
                    sv = padded
                merged_t.index_copy_(0, dev, sv)
            out.data[name] = merged_t
            if name == "image":
                out.lengths["image"] = shapes[:, 1:].clone()
            elif name in ("audio", "tokens"):
                out.lengths[name] = shapes[:, -1].clone()
            elif merged_t.dim() > 1:  # every array field's, as collate gives them (QA38 C #1)
                out.lengths[name] = field_lengths(name, shapes, merged_t)
        return out


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    x = np.require(x, requirements="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    if not x.dtype.isnative:  # a big-endian .npy member: torch takes native byte order only
        x = x.astype(x.dtype.newbyteorder("="))
    return torch.from_numpy(x)


def _common_dtype(tensors: list[torch.Tensor | None], keys: Sequence[str] = (), name: str = "",
                  dtype: torch.dtype | None = None) -> list[torch.Tensor | None]:
    """A field's tensors in the one dtype that holds all their values (bool < uint8 < int32), as numpy / torch
    promote; the same tensors when they agree. ``dtype`` (the field's dtype over the whole dataset,
    :func:`field_dtypes`): every tensor in it, whatever the batch holds.

    Without ``dtype``, a mix involving floats (float32 and float64 ``.npy`` files, int16 and float32 ones, a 16-bit
    and a float TIFF) is refused naming the samples per dtype (``keys``, the field ``name``) and the fix for the
    field's kind (an image file's mode / units, a ``.npy``'s ``np.save``): promoting it made the batch's dtype depend
    on which samples share the batch — float32 for a while, then float64, and a float32 model crashed mid-epoch
    (QA35 robotics #6, review media #5). A field whose files are all float64 stays float64 (timestamps keep their
    precision).

    Example:
        >>> _common_dtype([torch.zeros(1, dtype=torch.uint8), torch.zeros(1, dtype=torch.int32)])[0].dtype
        torch.int32
        >>> _common_dtype([torch.zeros(1)], dtype=torch.float64)[0].dtype
        torch.float64
        >>> _common_dtype([torch.zeros(1), torch.zeros(1, dtype=torch.float64)], ["a", "b"], "imu")
        Traceback (most recent call last):
        ...
        ValueError: cannot collate 'imu': its arrays' dtypes differ (float32: 'a'; float64: 'b'); ...
    """
    if dtype is not None:
        return [t.to(dtype) if t is not None and t.dtype != dtype else t for t in tensors]
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) < 2:
        return tensors
    common = next(iter(dtypes))
    for d in dtypes:
        common = torch.promote_types(common, d)
    if any(d.is_floating_point or d.is_complex for d in dtypes):
        raise ValueError(_dtype_mix_message(tensors, keys, name, common))
    return [t.to(common) if t is not None else None for t in tensors]


def _dtype_mix_message(tensors: list[torch.Tensor | None], keys: Sequence[str], name: str, common: torch.dtype) -> str:
    """Why collate refuses field ``name``'s mix of dtypes: the samples per dtype, and the fix for the field's kind."""
    from mmdata.codecs import IMAGE_EXTS

    groups: dict[str, list[str]] = {}
    for t, k in zip(tensors, keys):
        if t is not None:
            groups.setdefault(str(t.dtype).removeprefix("torch."), []).append(k)
    shown = "; ".join(f"{d}: {', '.join(map(repr, ks[:3]))}{' ...' * (len(ks) > 3)}" for d, ks in sorted(groups.items()))
    names = sorted(groups)
    to = str(common).removeprefix("torch.")
    head = (f"cannot collate {name!r}: its arrays' dtypes differ ({shown}); a batch's dtype would depend on which "
            f"samples share it ({' in one batch, '.join(names)} in another): ")
    keep = (f"; or pass the dataset's dtype of the field (collate(..., dtypes=mmdata.types.field_dtypes(ds.card)), "
            f"{to} here), or leave the field out (mmdata.loader(..., modalities=[...]))")
    if name.rsplit(".", 1)[-1].lower() in IMAGE_EXTS:  # an image file's values: a torch tensor of its mode
        return (head + f"the {name!r} files are images of different modes (an 8- / 16-bit integer image decodes to "
                f"uint8 / int32, a float one to float32): convert them to one mode and the same units (16-bit "
                f"millimetres, or float metres) and shard again, or cast the field per sample before collate "
                f"(s.with_fields(**{{{name!r}: s[{name!r}].to(torch.{to})}})){keep}")
    # a field added with `mmdata add-modality` is not in the sources a re-shard reads: it is added again (QA37 sign #8)
    return (head + f"save every {name!r} file in one dtype (np.save(path, x.astype(np.{to}))) and shard again (a "
            f"field added with `mmdata add-modality`: add it again, `mmdata add-modality DATASET {name} SRC "
            f"--replace`), or cast "
            f"it per sample before collate (s.with_fields(**{{{name!r}: np.asarray(s[{name!r}]).astype('{to}')}})){keep}")


def field_dtypes(card: Mapping[str, Any] | None, modalities: Sequence[str] | None = None) -> dict[str, torch.dtype]:
    """The dtype each ``.npy`` field whose files mix dtypes is batched in: the one that holds all of them (numpy's
    promotion over the card's ``modalities[field]["dtypes"]``, which shard records per field), for
    :func:`collate`'s ``dtypes``. Every batch of the field then has that dtype, whichever samples it holds — a
    batch holding only the float64 file of a float32 field is float64 like the others (QA35 robotics #6, review
    media #2); without it collate refuses a batch mixing them. Fields of one dtype (and cards written before
    2026-12-07, which record none) are left out: their batches have that dtype anyway.

    Example:
        >>> field_dtypes({"modalities": {"imu": {"dtypes": {"float32": 11, "float64": 1}}, "depth": {"dtypes": {"<f4": 3}}}})
        {'imu': torch.float64}
    """
    out: dict[str, torch.dtype] = {}
    for f, entry in ((card or {}).get("modalities") or {}).items():
        got = entry.get("dtypes") if isinstance(entry, Mapping) else None
        if modalities is not None and f not in modalities or not isinstance(got, Mapping) or len(got) < 2:
            continue
        try:
            common = np.result_type(*(np.dtype(d) for d in got))
            out[f] = torch.from_numpy(np.zeros(0, common.newbyteorder("="))).dtype
        except (TypeError, ValueError):  # a dtype torch cannot hold (strings, dates): nothing to batch
            continue
    return out


def _tensorable(x: Any) -> bool:
    """A tensor, or a numpy array torch can hold (numbers and booleans; not strings, dates or records)."""
    return isinstance(x, torch.Tensor) or (isinstance(x, np.ndarray) and x.dtype.kind in "biufc")


def pad_stack(items: Sequence[torch.Tensor | None], keys: Sequence[str], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors padding every dim at its end to the max, on their device; absent items become zeros
    (used by :func:`collate` and by batched ops whose rows change length).

    Returns the stacked tensor and a (B, ndim) int64 tensor of original shapes.
    """
    ref = next((t for t in items if t is not None), None)
    if ref is None:  # (a bare StopIteration here would end a DataLoader's epoch without a word)
        raise ValueError(f"cannot collate {name!r}: no sample of the batch has a value for it")
    ndim = ref.dim()
    for t, k in zip(items, keys):
        if t is not None and (t.dim() != ndim or t.dtype != ref.dtype):
            raise ValueError(
                f"cannot collate {name!r}: sample {k!r} has shape {tuple(t.shape)} {t.dtype}, "
                f"expected {ndim} dims of {ref.dtype} like the first sample"
            )
    if name in ("image", "audio") or (ndim == 3 and is_image_field(name)):
        # channel counts must agree: padding channels would invent data (a grey frame2.png among RGB ones
        # came out pure red: QA36 video #2)
        groups: dict[int, list[str]] = {}
        for t, k in zip(items, keys):
            if t is not None:
                groups.setdefault(int(t.shape[0]), []).append(k)
        if len(groups) > 1:
            fix = CHANNEL_FIX.get(name) or (
                f"convert every {name!r} file to one mode (Image.open(p).convert('RGB') or 'L') and shard again, or "
                f"per sample with a loader transform (mmdata.loader(..., transform=fn), fn returning "
                f"s.with_fields(**{{{name!r}: s[{name!r}][:1]}}) or .expand(3, -1, -1))")
            raise ValueError(f"cannot collate {name!r}: channel counts differ ({_by_group(groups, 'channel')}); {fix}")
    dims = [list(t.shape) if t is not None else [0] * ndim for t in items]
    shapes = torch.tensor(dims, dtype=torch.int64)
    # in Python, not shapes.max(dim=0): on a (B, ndim) tensor that reduction opens an OpenMP region costing
    # ~16 ms with 2 intra-op threads on a busy CPU, twice per batch (QA25 A-1: half the main process's throughput)
    full = [max(col) for col in zip(*dims)]
    if all(t is not None and list(t.shape) == full for t in items):
        return torch.stack(list(items)), shapes  # type: ignore[arg-type] - no padding: skip zero-filling the output
    out = torch.zeros((len(items), *full), dtype=ref.dtype, device=ref.device)
    for i, t in enumerate(items):
        if t is not None:
            out[(i, *(slice(0, s) for s in t.shape))] = t
    return out, shapes


def is_image_field(name: str) -> bool:
    """Whether field ``name`` holds decoded images: ``image``, or a named image member (``frame1.png``,
    ``depth.png``: its last part an image type), a (C, H, W) tensor collated as the image is.

    Example:
        >>> is_image_field("frame1.png"), is_image_field("imu"), is_image_field("seg.json")
        (True, False, False)
    """
    from mmdata.codecs import IMAGE_EXTS

    return name == "image" or ("." in name and name.rsplit(".", 1)[-1].lower() in IMAGE_EXTS)


def field_lengths(name: str, shapes: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """What ``batch.lengths[name]`` holds for a field padded to ``data`` whose rows had ``shapes`` ((B, ndim), as
    :func:`pad_stack` returns them): a named image field's (``frame1.png``, ``depth.png``: (B, C, H, W)) (B, 2)
    height and width, as ``image``'s (QA36 video #4: it was (B, 3) [C, H, W], a mask built as for the image read the
    wrong columns); every other field's whole row shapes (``.npy`` arrays: (B, ndim)).

    Example:
        >>> field_lengths("frame1.png", torch.tensor([[3, 4, 5]]), torch.zeros(1, 3, 4, 5)).tolist()
        [[4, 5]]
        >>> field_lengths("imu", torch.tensor([[7, 3]]), torch.zeros(1, 7, 3)).tolist()
        [[7, 3]]
    """
    if data.dim() == 4 and is_image_field(name):
        return shapes[:, -2:].clone()
    return shapes


def _check_array_shapes(vals: Sequence[Any], keys: Sequence[str], name: str, samples: Sequence[Sample]) -> None:
    """Check a batch of array values (a ``.npy`` field ``name``, numpy arrays or tensors alike) before collate
    pads them along every axis to the batch's largest (``batch.lengths[name]`` each row's shape).

    Arrays of different ranks are refused, naming the samples. Arrays of one rank that differ in more than one
    axis — a (500, 3) beside a (3, 400), a 1-lead (450, 1) beside a 12-lead (300, 12): padded to (500, 400) / 12
    channels, values invented (QA36 timeseries #1, #2) — pad with a :class:`~mmdata.augment.loader.PaddingWarning`
    naming the samples per shape and the fix, said once per field of a dataset opened; unless those axes are the last
    two or the first two of a per-pixel map whose sizes follow its sample's image (a ``mask.npy`` (H, W), a
    ``flow.npy`` (H, W, 2), a half-resolution depth: every row having an image — ``image`` or a named one such as
    ``frame1.png`` — holds one of its size or of its aspect ratio, and at least one row has one). Arrays that
    differ in one axis only (a recording's length: (T, 3), an (n_mels, frames) spectrogram, a (C, T) IMU window)
    pad without a word.

    Example:
        >>> _check_array_shapes([np.zeros((5, 3)), np.zeros((8, 3)), None], ["a", "b", "c"], "imu", [])
        >>> _check_array_shapes([np.zeros((40, 5)), torch.zeros((40, 9))], ["a", "b"], "spec", [])
        >>> _check_array_shapes([np.zeros(5), np.zeros((5, 2))], ["a", "b"], "imu", [])
        Traceback (most recent call last):
        ...
        ValueError: cannot collate 'imu': its arrays' ranks differ (1 dim: 'a'; 2 dims: 'b'); ...
    """
    rows = [(v, k, s) for v, k, s in zip(vals, keys, samples or [None] * len(vals)) if v is not None]
    ranks: dict[int, list[str]] = {}
    for v, k, _ in rows:
        ranks.setdefault(v.ndim, []).append(k)
    fix = (f"give every sample one layout with a loader transform (mmdata.loader(..., transform=fn), fn returning "
           f"s.with_fields(**{{{name!r}: x}})")
    if len(ranks) > 1:
        shown = "; ".join(f"{r} dim{'s' * (r != 1)}: {', '.join(map(repr, ks[:3]))}{' ...' * (len(ks) > 3)}"
                          for r, ks in sorted(ranks.items()))
        # the hint fitted to the shapes seen, as the shard-side warning gives it (QA39 lipreading #8:
        # reshape(len(x), -1) flattened every frame of a (T, 88, 88, 1) video)
        from mmdata.shards.writer import npy_pattern, rank_fix

        hint = rank_fix(name, sorted({npy_pattern(tuple(int(n) for n in v.shape[1:])) if v.ndim else "()"
                                      for v, _, _ in rows}))  # sorted: the same hint in every process
        raise ValueError(f"cannot collate {name!r}: its arrays' ranks differ ({shown}); collate pads arrays of one "
                         f"rank only: {fix} with {hint}), or save every file in one layout and shard again")
    shapes = [tuple(int(n) for n in v.shape) for v, _, _ in rows]
    if len(set(shapes)) < 2:
        return
    ndim = len(shapes[0])
    axes = [a for a in range(ndim) if len({sh[a] for sh in shapes}) > 1]
    if len(axes) < 2 or name in _SHAPES_WARNED or _follow_images(rows, axes, ndim):
        return
    _SHAPES_WARNED.add(name)
    big = tuple(max(sh[a] for sh in shapes) for a in range(ndim))
    from mmdata.augment.loader import PaddingWarning  # (the loader imports this module)

    warnings.warn(f"collate: field {name!r}: a batch's arrays differ in {len(axes)} axes, "
                  f"{', '.join(map(str, axes[:-1]))} and {axes[-1]} "
                  f"({_odd_shapes(shapes, [k for _, k, _ in rows])}), "
                  f"zero-padded to {big} on every axis (batch.lengths[{name!r}] gives each row's shape): a file of "
                  f"another layout ((C, T) among (T, C)) or with other channels (1 lead among 12) gets invented "
                  f"values; {fix} with {_shape_fix(shapes, name)}), or save every file in one layout and shard "
                  f"again (a field added with `mmdata add-modality`: add it again with --replace); said once per field of a dataset "
                  f"opened", PaddingWarning, stacklevel=3)


def _length_axis(shapes: Sequence[tuple[int, ...]]) -> int:
    """The axis of a batch's arrays (one rank) that holds their length: the one of most distinct sizes (the first
    of a tie), as a recording's T varies from file to file while its channels / joints do not."""
    return max(range(len(shapes[0])), key=lambda a: (len({sh[a] for sh in shapes}), -a))


def _majority(shapes: Sequence[tuple[int, ...]]) -> dict[int, int]:
    """Per axis but the length (:func:`_length_axis`), the size most arrays have (the first seen of a tie)."""
    length = _length_axis(shapes)
    out: dict[int, int] = {}
    for a in range(len(shapes[0])):
        if a != length:
            sizes = [sh[a] for sh in shapes]
            out[a] = max(dict.fromkeys(sizes), key=sizes.count)
    return out


def _pattern(shape: tuple[int, ...], length: int) -> str:
    """``shape`` with its length axis written ``T``: ``(T, 75, 2)``."""
    inner = ", ".join("T" if a == length else str(n) for a, n in enumerate(shape))
    return f"({inner}{',' * (len(shape) == 1)})"


def _odd_shapes(shapes: Sequence[tuple[int, ...]], keys: Sequence[str]) -> str:
    """Which arrays of a batch differ from the others in more than their length (QA37 sign #3: the warning named
    ordinary samples of another T, grouped by full shape, and never the few (T, 75, 2) among (T, 75, 3)): the
    length axis (:func:`_length_axis`) is expected to vary; the samples off the majority size on another axis are
    named first with their shapes, then a few of the rest.

    Example:
        >>> msg = _odd_shapes([(5, 75, 3), (9, 75, 3), (7, 75, 2)], ["a", "b", "c"])
        >>> msg[:67], msg[-52:]
        ("(7, 75, 2): 'c'; the other 2 are (T, 75, 3), e.g. (5, 75, 3): 'a', ", '(5..9): 1 of 3 arrays differ from the rest on axis 2')
    """
    length, most = _length_axis(shapes), _majority(shapes)
    odd: list[tuple[tuple[int, ...], str]] = []
    rest: list[tuple[tuple[int, ...], str]] = []
    off: set[int] = set()
    for sh, k in zip(shapes, keys):
        diff = [a for a, n in most.items() if sh[a] != n]
        off.update(diff)
        (odd if diff else rest).append((sh, k))
    odd.sort(key=lambda sk: _pattern(sk[0], length))  # one odd layout together
    # the length's range over the usual arrays: a transposed one's channels are no length (QA37 review srcarr #4)
    lengths = [sh[length] for sh, _ in rest] or [sh[length] for sh in shapes]
    span = f"{min(lengths)}..{max(lengths)}" if min(lengths) < max(lengths) else f"{lengths[0]}"
    usual = _pattern(tuple(most.get(a, 0) for a in range(len(shapes[0]))), length)
    shown = "; ".join(f"{sh}: {k!r}" for sh, k in odd[:_ODD_SHOWN]) + (f"; ... ({len(odd)} in all)" if len(odd) >
                                                                       _ODD_SHOWN else "")
    others = ", ".join(f"{sh}: {k!r}" for sh, k in rest[:2]) + (" ..." if len(rest) > 2 else "")
    axes = ", ".join(map(str, sorted(off)))
    return (f"{shown}; the other {len(rest)} are {usual}, e.g. {others}; axis {length} is the length "
            f"({span}): {len(odd)} of {len(shapes)} arrays differ from the rest on "
            f"axis{'es' * (len(off) > 1)} {axes}{_recurring_lengths(lengths, length)}")


#: a length axis of this many sizes or fewer, some held by two arrays or more, may be channels (montages of 19,
#: 21, 32 leads in fixed windows), not a recording's length: :func:`_recurring_lengths` says so
_FEW_LENGTHS = 8


def _recurring_lengths(lengths: Sequence[int], axis: int) -> str:
    """A caveat when the sizes taken as the length (:func:`_length_axis`: the axis whose sizes vary most) are few
    and recur, as channel counts do (fixed EEG windows of 19 / 21 / 23 / 32 channels: QA37 review srcarr #4), so
    the padding of fewer channels up to the most is said, not hidden as a length; "" otherwise.

    Example:
        >>> _recurring_lengths([19, 21, 19, 32], 1)[:62]
        '; but axis 1 holds only 3 sizes, 19 (2), 21, 32: if it is the '
        >>> _recurring_lengths([900, 1000, 1100], 0)
        ''
    """
    counts = Counter(lengths)
    if not 1 < len(counts) <= _FEW_LENGTHS or max(counts.values()) < 2:
        return ""
    sizes = ", ".join(f"{n} ({c})" if c > 1 else f"{n}" for n, c in sorted(counts.items()))
    top = max(counts)
    return (f"; but axis {axis} holds only {len(counts)} sizes, {sizes}: if it is the channels (a montage, leads), "
            f"not time, the arrays of fewer are zero-padded to {top} with invented channels: keep one channel "
            f"count per field (a field or dataset per montage, or the channels every sample has)")


#: how many samples of another shape (beyond their length) the multi-axis PaddingWarning names
_ODD_SHOWN = 6


def _shape_fix(shapes: Sequence[tuple[int, ...]], name: str) -> str:
    """The loader transform's ``x = ...`` that gives a batch's arrays one shape but their length: each odd array
    reoriented when it is the usual one's axes in another order (a (C, T) among (T, C)), the condition naming the
    shape it makes so that an array of other channels is not turned (QA37 review srcarr #4: a (1300, 31) among
    (T, 32) was transposed too); then, or else, the axes that still differ sliced to the size every array has
    (``s['pose'][:, :, :2]``: the channels axis, not the joints)."""
    length, most = _length_axis(shapes), _majority(shapes)
    ndim = len(shapes[0])
    usual = _pattern(tuple(most.get(a, 0) for a in range(ndim)), length)

    def turned(sh: tuple[int, ...], a: int) -> tuple[int, ...]:
        moved = [n for b, n in enumerate(sh) if b != a]
        moved.insert(length, sh[a])
        return tuple(moved)

    def fits(sh: tuple[int, ...]) -> bool:
        return all(sh[b] == n for b, n in most.items())

    axis = next((a for sh in shapes if not fits(sh) for a in range(ndim)
                 if a != length and fits(turned(sh, a))), None)
    after = [turned(sh, axis) if axis is not None and not fits(sh) and fits(turned(sh, axis)) else sh
             for sh in shapes]
    cut = {a: min(sh[a] for sh in after) for a in range(ndim) if a != length and len({sh[a] for sh in after}) > 1}
    said = []
    if axis is not None:
        turn = f"s[{name!r}].T" if ndim == 2 else f"np.moveaxis(s[{name!r}], {axis}, {length})"
        said.append(f"x = {turn} where s[{name!r}].shape[{axis}] is not {most.get(axis)} and {turn}.shape is "
                    f"{usual} to reorient an array whose length is on axis {axis}")
    if cut:
        index = ", ".join(f":{cut[a]}" if a in cut else ":" for a in range(max(cut) + 1))
        said.append(f"{'then x = x' if said else f'x = s[{name!r}]'}[{index}] to keep the "
                    f"{' x '.join(str(cut[a]) for a in sorted(cut))} entries of axis{'es' * (len(cut) > 1)} "
                    f"{', '.join(map(str, sorted(cut)))} every sample has (or drop the odd samples)")
    return "; ".join(said)


#: the fields whose arrays :func:`_check_array_shapes` warned of since :func:`reset_shape_warnings` (a dataset
#: opened: it says it once per field of a dataset read, not once a process — a second dataset in a notebook is told)
_SHAPES_WARNED: set[str] = set()


def reset_shape_warnings() -> None:
    """Let :func:`collate` warn again of a field whose arrays differ in more than one axis (called when a dataset
    is opened, as :func:`mmdata.codecs.reset_large_image_warning`)."""
    _SHAPES_WARNED.clear()


def _follow_images(rows: Sequence[tuple[Any, str, Any]], axes: Sequence[int], ndim: int) -> bool:
    """Whether arrays whose ``axes`` vary are per-pixel maps of their samples' images: the axes are the last two
    or the first two, and every row whose sample holds an image (``image``, else a named image field) has them
    of its image's height and width, or of its aspect ratio (a half-resolution map); at least one row has one."""
    if set(axes) <= {ndim - 2, ndim - 1}:
        pick = slice(ndim - 2, ndim)
    elif set(axes) <= {0, 1}:
        pick = slice(0, 2)
    else:
        return False
    seen = False
    for v, _, s in rows:
        ref = _image_size(s)
        if ref is None:
            continue
        (a, b), (h, w) = tuple(v.shape[pick]), ref
        if abs(a * w - b * h) > max(h, w):  # (rounding of a scaled map: |a w - b h| <= (h + w) / 2)
            return False
        seen = True
    return seen


def _image_size(s: Any) -> tuple[int, int] | None:
    """The (height, width) of sample ``s``'s image, else of its first named image field; None without one."""
    fields = getattr(s, "fields", None) or {}
    for f in ("image", *(f for f in fields if f != "image" and is_image_field(f))):
        v = fields.get(f)
        if v is not None and hasattr(v, "shape") and len(v.shape) >= 2:
            return int(v.shape[-2]), int(v.shape[-1])
    return None


#: how a recipe step reaches collate, said after each recipe fix in collate errors: ``ds.collate_fn`` and
#: ``mmdata.collate`` run no recipe (the torchdata / plain DataLoader path) (QA39 interop #4)
RECIPE_PATHS = ("mmdata.loader(..., recipe=...) runs it per sample, before collate; open_dataset(...).collate_fn and "
                "mmdata.collate run no recipe: there run its normalize stage per sample first (r = "
                "mmdata.augment.load_recipe('recipe.yaml'); collate_fn=lambda ss: ds.collate_fn("
                "[r.apply_sample(s, stage='eval') for s in ss]))")

#: the recipe step that makes a field's channel counts agree (named in collate errors)
CHANNEL_FIX = {"image": "add {op: to_rgb} (or {op: to_gray}) to normalize.image in the recipe (" + RECIPE_PATHS + ")",
               "audio": "add {op: to_mono} to normalize.audio in the recipe (" + RECIPE_PATHS + ")"}


def _by_group(groups: Mapping[Any, list[str]], unit: str) -> str:
    """``1 channel: samples ['a', 'b']; 3 channels: samples ['c']`` (at most 3 keys per group)."""
    def label(v: Any) -> str:
        return f"{v} Hz" if unit == "Hz" else f"{v} {unit}{'' if v == 1 else 's'}"

    return "; ".join(f"{label(v)}: sample{'s' if len(ks) > 1 else ''} {ks[:3]}{' ...' if len(ks) > 3 else ''}"
                     for v, ks in sorted(groups.items(), key=lambda kv: kv[0] or 0))


_INT64 = (-(1 << 63), (1 << 63) - 1)


def _labels(vals: Sequence[Any], keys: Sequence[str]) -> torch.Tensor:
    """The (B,) int64 label tensor, -1 where absent; a label that is not one integer in int64's range
    (an array from a stray ``.label.npy``, ``10**30``, ``2.5``: never truncated to 2) is named with its
    sample key, not left to torch's ``Overflow when unpacking long long``. A float, numpy scalar or
    one-element tensor holding a whole number (``2.0``) is that class id; a bool is refused (no class id,
    as the shard writer reads labels)."""
    out = []
    for v, k in zip(vals, keys):
        if v is None:
            out.append(-1)
            continue
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, torch.Tensor) and v.dtype == torch.bool):
            raise ValueError(f"cannot collate 'label': sample {k!r} has label {v!r}, a bool, not a class id (as the "
                             "shard writer reads labels); give int(flag) where the flag is the class id meant")
        try:
            i = int(v)
            # int() truncates 2.5 (and a float tensor's 2.7) to 2: a whole number only (a str is parsed, exact)
            whole = type(v) is int or isinstance(v, (str, np.integer)) or bool(v == i)
        except (TypeError, ValueError, OverflowError, RuntimeError):
            whole = False
            if not isinstance(v, (float, np.floating, np.ndarray, torch.Tensor)):
                raise ValueError(f"cannot collate 'label': sample {k!r} has a label of type {type(v).__name__} "
                                 "(expected an integer class id)") from None
        if not whole:
            if isinstance(v, (np.ndarray, torch.Tensor)) and int(np.prod(v.shape)) != 1:
                raise ValueError(f"cannot collate 'label': sample {k!r} has a label {_shape(v)}, an array "
                                 "(expected one integer class id)")
            raise ValueError(f"cannot collate 'label': sample {k!r} has label {v!r}, which is not an integer class id "
                             "(expected 0, 1, ...; a label is never truncated: round it yourself where that is "
                             "meant, int(round(x)))")
        if not _INT64[0] <= i <= _INT64[1]:
            raise ValueError(f"cannot collate 'label': sample {k!r} has label {i}, outside int64 "
                             "(expected a class id 0, 1, ...)")
        if i < -1:  # -1 is "no label" (collate's own mark, Hugging Face's ClassLabel's): absent, below
            raise ValueError(f"cannot collate 'label': sample {k!r} has label {i}, not a class id (expected 0, 1, ...; "
                             "-1 or None for a sample without a label)")
        out.append(i)
    return torch.tensor(out, dtype=torch.int64)


#: ``batch.meta`` key of the tokenizer a batch was collated with (only one given to :func:`collate`)
TOKENIZER = "tokenizer"


class UserTokenizer:
    """A tokenizer of the user's, as :func:`collate` and the batched text ops encode with it
    (``encode_batch(texts) -> (ids, lengths)``): a Hugging Face ``transformers`` tokenizer (called as
    ``tokenizer(texts, truncation=True)["input_ids"]``; truncation only where it has a ``model_max_length``),
    a ``tokenizers.Tokenizer`` (``encode_batch(texts)``, each encoding's ``ids`` where its attention mask
    is 1), or any function of one text returning its token ids (``str -> list[int]``). The ids are padded
    with 0 (:data:`mmdata.text.PAD_ID`) past each row's ``lengths``, whatever the tokenizer's own pad id:
    build the attention mask from ``batch.lengths["tokens"]``. It pickles when the tokenizer does (a
    Hugging Face fast tokenizer does; a function must be module-level for spawned workers).

    Example:
        >>> def chars(text: str) -> list[int]:
        ...     return [ord(c) for c in text]
        >>> ids, lens = UserTokenizer(chars).encode_batch(["ab", "c"])
        >>> ids.tolist(), lens.tolist()
        ([[97, 98], [99, 0]], [2, 1])
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        if type(tokenizer).__module__.split(".")[0] == "tokenizers" and hasattr(tokenizer, "encode_batch"):
            self.kind = "tokenizers"
        elif callable(tokenizer) and hasattr(tokenizer, "model_input_names"):
            self.kind = "transformers"
        elif callable(tokenizer):
            self.kind = "function"
        else:
            raise TypeError(f"tokenizer: expected a Hugging Face tokenizer (transformers or tokenizers), a function "
                            f"of one text returning its token ids (str -> list[int]), or an object with "
                            f"encode_batch(texts) -> (ids, lengths) like mmdata.text.Tokenizer; got {tokenizer!r}")

    def __repr__(self) -> str:
        return f"UserTokenizer({self.tokenizer!r})"

    def _name(self) -> str:
        t = self.tokenizer
        return getattr(t, "__qualname__", None) or getattr(t, "name_or_path", None) or type(t).__name__

    def encode_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode texts into padded ids (B, L) int64 (0 past each row's length) and lengths (B,) int64 (L >= 1)."""
        import numbers

        from mmdata.errors import MMDataError

        tok, texts = self.tokenizer, list(texts)
        if self.kind == "transformers":
            most = getattr(tok, "model_max_length", None)
            cut = isinstance(most, int) and 0 < most < 10**9  # a tokenizer without a limit warns at truncation=True
            seqs = list(tok(texts, truncation=True)["input_ids"] if cut else tok(texts)["input_ids"]) if texts else []
        elif self.kind == "tokenizers":
            seqs = [[i for i, m in zip(e.ids, e.attention_mask) if m] for e in tok.encode_batch(texts)]
        else:
            seqs = [tok(t) for t in texts]
        if len(seqs) != len(texts):
            raise MMDataError(f"tokenizer {self._name()}: {len(texts)} texts gave {len(seqs)} id sequences")
        rows: list[list[int]] = []
        for t, seq in zip(texts, seqs):
            seq = seq.tolist() if hasattr(seq, "tolist") else seq
            if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence) or not all(
                    isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in seq):
                raise MMDataError(f"tokenizer {self._name()}: the text {t[:60]!r} gave {str(seq)[:80]}; expected a list "
                                  "of token ids (ints >= 0)")
            rows.append([int(v) for v in seq])
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64)
        ids = torch.zeros((len(rows), max(1, int(lengths.max()) if rows else 1)), dtype=torch.int64)
        for i, r in enumerate(rows):
            if r:
                ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return ids, lengths


def as_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` as :func:`collate` encodes with it: None (the default tokenizer) and an object with
    ``encode_batch(texts) -> (ids, lengths)`` (:class:`mmdata.text.Tokenizer`, a :class:`UserTokenizer`) as
    they are; a Hugging Face tokenizer or a function ``str -> list[int]`` wrapped in a :class:`UserTokenizer`.

    Raises:
        TypeError: it is none of these.

    Example:
        >>> as_tokenizer(None) is None, type(as_tokenizer(lambda t: [1])).__name__
        (True, 'UserTokenizer')
    """
    if tokenizer is None or isinstance(tokenizer, UserTokenizer):
        return tokenizer
    if (callable(getattr(tokenizer, "encode_batch", None)) and type(tokenizer).__module__.split(".")[0] != "tokenizers"
            and not hasattr(tokenizer, "model_input_names")):
        return tokenizer
    return UserTokenizer(tokenizer)


def collate(samples: Sequence[Sample], tokenizer: Any = None, fields: Sequence[str] = (),
            dtypes: Mapping[str, torch.dtype] | None = None) -> Batch:
    """Collate samples into a :class:`Batch` with padding, lengths and presence masks.

    Args:
        samples: the samples; modalities may be missing in any of them.
        tokenizer: turns text into ids (default :class:`mmdata.text.Tokenizer`): an object with
            ``encode_batch(texts) -> (ids, lengths)``, a Hugging Face tokenizer or a function ``str -> list[int]``
            (both wrapped in a :class:`UserTokenizer`, :func:`as_tokenizer`); one given is kept in
            ``batch.meta["tokenizer"]``, which the batched augmentation ops encode edited texts with.
        fields: fields every batch carries even when none of its samples has them (:func:`mmdata.loader`
            passes the dataset's): their presence mask is all False, ``label`` is all -1 and ``text``
            all empty (with its tokens); other absent fields have no tensor (there is no shape to pad to).
        dtypes: field -> the dtype every batch of it has (:func:`field_dtypes` of the dataset's card: a ``.npy``
            field whose files mix float32 and float64 is float64 in every batch, whichever samples it holds).

    Raises:
        ValueError: audio sample rates or image / audio channel counts differ within the batch, or shapes
            cannot be padded; the message names sample keys per group and the normalize op that fixes it.
            An image that is no uint8 (C, H, W) tensor with 1-4 channels, audio that is no float32
            (channels, time) tensor (:class:`mmdata.augment.contract.InputError`, naming the sample).
            A label that is not one integer within int64 (the message names its sample): ``2.5`` or a float
            tensor ``2.7`` is refused, never truncated; ``2.0``, a numpy integer and a 0-d integer tensor are
            class ids; a bool is refused (a flag, not a class id: ``int(flag)`` where it is meant as one).
            A field whose arrays' dtypes differ within the batch where one is a float (float32 and float64, int16
            and float32 ``.npy`` files, a 16-bit and a float TIFF) unless ``dtypes`` gives the field's dtype: the
            message names the samples per dtype and the fix for the field's kind. Integer mixes are promoted (an
            8- and a 16-bit PNG: int32).
        TypeError: an item is not a :class:`Sample` (the message names its position and type).

    Example:
        >>> import torch
        >>> b = collate([Sample("a", {"audio": torch.ones(1, 3)}, sample_rate=8000),
        ...              Sample("b", {"audio": torch.ones(1, 5)}, sample_rate=8000)])
        >>> tuple(b["audio"].shape), b.lengths["audio"].tolist()
        ((2, 1, 5), [3, 5])
    """
    from mmdata.augment.contract import check_input
    from mmdata.text import default_tokenizer

    if isinstance(samples, Sample):
        raise TypeError("collate() expects a list of mmdata.Sample, got one Sample (collate([sample]) batches one)")
    if not samples:
        raise ValueError("collate() got no samples")
    padded_widths: dict[int, int] = {}  # row -> the width of a clip pad_trim padded, as stacked
    for i, s in enumerate(samples):  # here, not as "'int' object has no attribute 'key'" further down
        if not isinstance(s, Sample):
            raise TypeError(f"collate() expects a list of mmdata.Sample; item {i} has type {type(s).__name__}: "
                            f"{repr(s)[:80]}")
        check_input(s)  # here, where images and audio enter a batch: as the recipe's per-sample entry takes them
    tokenizer = as_tokenizer(tokenizer)
    tok = tokenizer or default_tokenizer()
    keys = [s.key for s in samples]
    names: list[str] = []
    for s in samples:
        names.extend(n for n in s.fields if n not in names)
    batch = Batch(keys=keys)
    n = len(samples)
    for name in fields:
        if name not in names:
            batch.present[name] = torch.zeros(n, dtype=torch.bool)
            if name in ("label", "text"):
                names.append(name)  # -1 labels / empty texts below
    for name in names:
        vals = [s.fields.get(name) for s in samples]
        present = torch.tensor([v is not None for v in vals], dtype=torch.bool)
        batch.present[name] = present
        if name in ("image", "audio") and not present.any():
            continue  # every value None (absent): its mask, no tensor — as a field in `fields` no sample has
        if name == "text":
            texts = [v if v is not None else "" for v in vals]
            batch.data["text"] = texts
            ids, lens = tok.encode_batch(texts)
            batch.data["tokens"] = ids
            batch.lengths["tokens"] = lens
        elif name == "label":
            batch.data["label"] = _labels(vals, keys)
            batch.present["label"] = present & (batch.data["label"] >= 0)  # a -1 label is no label
        elif name == "audio":
            by_rate: dict[int, list[str]] = {}
            for s in samples:
                if s.fields.get("audio") is not None:  # a None clip is absent: its rate is no clip's
                    by_rate.setdefault(s.sample_rate, []).append(s.key)
            if len(by_rate) > 1 and None in by_rate:  # no resample op can give a clip the rate it lacks
                bare = by_rate[None]
                raise ValueError(f"cannot collate 'audio': sample{'s' * (len(bare) > 1)} {bare[:3]}{' ...' * (len(bare) > 3)} "
                                 f"hold{'s' * (len(bare) == 1)} audio but no sample_rate (the others are at "
                                 f"{', '.join(f'{r} Hz' for r in sorted(r for r in by_rate if r is not None))}); give "
                                 "Sample(..., sample_rate=HZ) (mmdata.codecs.decode_audio returns the wave and its rate)")
            if len(by_rate) > 1:
                common = max(by_rate, key=lambda r: (len(by_rate[r]), r or 0))
                # the rate named is this batch's most common: another batch may hold another, so the message
                # says to pick one for the whole dataset (QA39 interop #4). collate sees the batch's samples only,
                # not their dataset: the dataset's rates (index.parquet's audio_sample_rate) are counted by
                # mmdata inspect, which the message names (QA39 review interop #6)
                raise ValueError(f"cannot collate 'audio': sample rates differ ({_by_group(by_rate, 'Hz')}); add "
                                 f"{{op: resample, rate: {common}}} to normalize.audio in the recipe, with the one rate "
                                 f"your model takes for the whole dataset ({common} Hz is only this batch's most common "
                                 f"rate; another batch may have another: `mmdata inspect DATASET` counts the dataset's "
                                 f"rates) ({RECIPE_PATHS})")
            batch.sample_rate = next(iter(by_rate))
            tensors = [_as_tensor(v).float() if v is not None else None for v in vals]
            tensors = [t.unsqueeze(0) if t is not None and t.dim() == 1 else t for t in tensors]
            data, shapes = pad_stack(tensors, keys, name)
            batch.data["audio"] = data
            batch.lengths["audio"] = shapes[:, -1].clone()
            for i, s in enumerate(samples):  # a clip pad_trim padded: its real frames (mmdata.augment.audio.AUDIO_VALID)
                v = s.meta.get("audio_valid") if vals[i] is not None else None
                if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < int(batch.lengths["audio"][i]):
                    # and its padded width, which the batched ops' tidy keeps after a drop (AUDIO_WIDTH)
                    padded_widths[i] = int(batch.lengths["audio"][i])
                    batch.lengths["audio"][i] = v
        elif name == "image":
            tensors = [_as_tensor(v) if v is not None else None for v in vals]
            data, shapes = pad_stack(tensors, keys, name)
            batch.data["image"] = data
            batch.lengths["image"] = shapes[:, -2:].clone()
        else:
            # a list where there is nothing to stack: every value None (JSON null members) or one torch
            # cannot hold (a .npy of strings or dates)
            if any(v is not None for v in vals) and all(v is None or _tensorable(v) for v in vals):
                if not is_image_field(name):  # numpy arrays and tensors alike (QA36 fix2 arrays F2)
                    _check_array_shapes(vals, keys, name, samples)
                tensors = [_as_tensor(v) if v is not None else None for v in vals]
                # an 8-bit and a 16-bit depth.png, a bool and an L mask; the dataset's dtype of a mixed .npy field
                tensors = _common_dtype(tensors, keys, name, (dtypes or {}).get(name))
                data, shapes = pad_stack(tensors, keys, name)
                batch.data[name] = data
                if data.dim() > 1:  # in every batch, not only one whose rows differ: model code masks with it
                    batch.lengths[name] = field_lengths(name, shapes, data)  # (QA38 C #1, E #1)
            else:
                batch.data[name] = list(vals)
    # the fields it was told to keep: a batched op that empties a field keeps its mask only for these, as
    # collate itself does (augment.batching.tidy)
    batch.meta["fields"] = tuple(fields)
    if tokenizer is not None:  # the batched text ops re-encode edited texts with it (mmdata.augment.batching)
        batch.meta[TOKENIZER] = tokenizer
    # per-sample provenance (e.g. applied augmentation params) stays a list aligned with keys
    if any(s.meta for s in samples):
        batch.meta["samples"] = [dict(s.meta) for s in samples]
        full = int(batch.data["audio"].shape[-1]) if padded_widths else 0
        for i, w in padded_widths.items():  # each padded clip's own width (review media #1: pad_trim trim: false)
            batch.meta["samples"][i][AUDIO_WIDTH] = [w, full]
    assert all(len(p) == n for p in batch.present.values())
    return batch


#: the per-row meta key (``batch.meta["samples"][i]``) in which collate records the width of a clip ``pad_trim``
#: padded (``audio_valid`` set): ``[its own tensor's width, the batch's width then]`` (read only while the batch's
#: audio keeps that width: a batched op that re-pads it makes the record stale), not the batch's — with ``pad_trim(trim: false)`` a longer
#: clip makes the batch wider, and after ``modality_dropout`` drops that clip's audio the batched ops' ``tidy``
#: trims the audio to the widest padded row still present, as collate of the same rows does (QA35 review media #1)
AUDIO_WIDTH = "audio_width"

#: the modalities every batch of :func:`mmdata.loader` (and of a dataset's ``collate_fn``) has a presence mask for,
#: all False where the dataset lacks one: model code indexes ``batch.present["audio"]`` on any dataset (QA33
#: onemodality #4: a text-only dataset's batches had no ``present["audio"]``, a KeyError in user code)
MASKED_MODALITIES = ("image", "audio", "text")


def with_masks(batch: Batch, names: Sequence[str] = MASKED_MODALITIES) -> Batch:
    """``batch`` with an all-False presence mask for each of ``names`` it has none for: a mask only, no data
    (``batch["audio"]`` stays absent, ``"audio" in batch`` False). A new Batch when one is added, else ``batch``.

    Example:
        >>> b = with_masks(collate([Sample("a", {"text": "hi"})]))
        >>> b.present["audio"].tolist(), "audio" in b
        ([False], False)
    """
    missing = [m for m in names if m not in batch.present]
    if not missing:
        return batch
    n = len(batch.keys)
    return replace(batch, present={**batch.present, **{m: torch.zeros(n, dtype=torch.bool) for m in missing}})


#: batch fields :func:`with_lengths` leaves alone: no padded arrays (labels, a mix's weights), or ones whose lengths
#: collate and every batched op always set (image, audio, tokens)
_NO_LENGTHS = ("label", "label_b", "mix_lam", "tokens", "image", "audio")


def with_lengths(batch: Batch) -> Batch:
    """``batch`` with ``lengths[name]`` for each array field (a ``.npy`` field, ``spec``, a named image) it lacks:
    the rows' whole shapes (a named image's (h, w)), zeros where a row is absent — as :func:`collate` gives them
    in every batch, for a batch a batched op returned with the lengths of a field whose rows came out of one shape
    left out. A new Batch when one is added, else ``batch``. (QA38 E #1: ``lengths["spec"]`` was there only in
    batches whose specs differed in frames, a KeyError in model code depending on batch size.)

    Example:
        >>> b = collate([Sample("a", {"imu": torch.ones(2, 3)})])
        >>> with_lengths(replace(b, lengths={})).lengths["imu"].tolist()
        [[2, 3]]
    """
    missing = [n for n, v in batch.data.items() if n not in batch.lengths and n not in _NO_LENGTHS
               and isinstance(v, torch.Tensor) and v.dim() > 1]
    if not missing:
        return batch
    return replace(batch, lengths={**batch.lengths, **{n: field_lengths(n, batch.valid_shapes(n), batch.data[n])
                                                       for n in missing}})


def uncollate(batch: Batch) -> list[Sample]:
    """Split a batch back into samples, trimming padding and dropping absent fields.

    ``collate(uncollate(b))`` reproduces ``b`` (up to the token ids being recomputed from text).
    """
    out: list[Sample] = []
    metas = batch.meta.get("samples") or [{} for _ in batch.keys]
    valid: dict[str, list[list[int]]] = {}
    for i, key in enumerate(batch.keys):
        fields: dict[str, Any] = {}
        for name, val in batch.data.items():
            if name in ("tokens", "label_b", "mix_lam"):
                continue
            if name in batch.present and not bool(batch.present[name][i]):
                continue
            if name == "text":
                fields["text"] = val[i]
            elif name == "label":
                fields["label"] = int(val[i])
            elif name == "audio":
                fields["audio"] = val[i, :, : int(batch.lengths["audio"][i])].clone()
            elif name == "image":
                h, w = (int(x) for x in batch.lengths["image"][i])
                fields["image"] = val[i, :, :h, :w].clone()
            elif isinstance(val, torch.Tensor):
                if name in batch.lengths:
                    if name not in valid:  # rows' shapes, also of a named image's (h, w) lengths
                        valid[name] = batch.valid_shapes(name).tolist()
                    shape = valid[name][i]
                    fields[name] = val[(i, *(slice(0, s) for s in shape))].clone()
                else:
                    fields[name] = val[i].clone()
            else:
                fields[name] = val[i]
        out.append(Sample(key, fields, sample_rate=batch.sample_rate if "audio" in fields else None, meta=metas[i]))
    return out


def _register_default_collate() -> None:
    # DataLoader(batch_size=N) with the default collate_fn turns Samples into a Batch
    from torch.utils.data._utils.collate import default_collate_fn_map

    default_collate_fn_map.setdefault(Sample, lambda batch, *, collate_fn_map=None: collate(batch))


_register_default_collate()
