"""The op protocol, parameter validation and the op registry.

The protocol is enforced once, here, instead of in every op (torchvision v2's non-overridable
``forward`` / kornia's ``apply_func``):

    params = op.draw(rng, sample)     # final: "field present?", then the ``p`` gate, then op.sample_params
    out = op.apply(sample, params)    # final: not applied -> the sample itself; else op.transform (pure)
    batch = op.apply_batch(batch, [params, ...])
                                      # final: hands op.transform_batch only the applied rows, merges back
                                      # (or, for a ``masked`` op, the whole batch)

An op declares the ``field`` it reads (``image``, ``audio``, ``text``, ``spec``; None for sample-level
ops) and draws only its own params in ``sample_params`` (returning None when there is nothing to do
for this sample, e.g. a clip already shorter than the crop). Params are small JSON-serialisable dicts
(they go to the replay log and to Parquet) that always hold ``applied``. The per-sample kernel
(``transform``) is the oracle; each batched kernel (``transform_batch``) is tested against it with the
same params (exactly for flips, masks, gains, token ops; within a stated ``tolerance`` for
interpolating ops).

Applied rows: when every row is applied the kernel gets the batch itself; when some are, ``apply_batch``
gathers the applied rows of only the fields the op touches (:meth:`Op.batch_fields`) with
:meth:`Batch.select`, runs the kernel on them and scatters them back once (:meth:`Batch.scatter`). Ops whose
kernel is naturally masked (flips, cutout, time / frequency masks, gains, additive noise, modality dropout)
set ``masked = True`` and get the whole batch with ``{"applied": False}`` for the other rows, which they
leave as they are: writing the applied rows into one output is cheaper than a gather and a scatter.

Validation: every op argument is declared once as a :class:`Param` (kind, default, range or choices,
doc). The same table validates recipes (errors name the recipe key: ``image[1].scale: 2.0 is out of
range; allowed [0.0, 1.0]``), generates the op reference (``docs/ops.md``) and drives the tests —
which is why recipes are not validated with pydantic (a second source of truth whose errors would have
to be translated back to recipe keys).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mmdata.checks import did_you_mean
from mmdata.errors import RecipeError

SECTIONS = ("image", "audio", "text", "sample", "batch")
_REGISTRY: dict[tuple[str, str], type[Op]] = {}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: protocol methods subclasses must not override (they implement the hooks instead)
FINAL = ("draw", "apply", "apply_batch")


def finite(value: Any, where: str) -> float:
    """``value`` as a finite float: a number (or a numeric string), never a bool, NaN or an infinity.

    Example:
        >>> finite("0.5", "image[0].p")
        0.5
    """
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        v = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise RecipeError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(v):  # NaN would pass every bounds check: its comparisons are all False
        raise RecipeError(f"{where}: {v!r} is not a finite number")
    return v


@dataclass(frozen=True)
class Param:
    """Declaration of one op argument: type, default, allowed range or choices.

    ``kind``: "float", "int", "bool", "str", "range" (a [lo, hi] pair of floats with lo <= hi), "irange" (ints),
    "size" (int or [h, w], stored as [h, w]), "extent" (int or [h, w], stored as given), "list" (a bare string
    is a one-element list; items must be in ``choices`` when given, else the op's ``validate`` checks them).
    Numbers are finite and never bools; a string is never read as a list of characters.
    """

    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    def check(self, value: Any, where: str) -> Any:
        def bounds(v: Any) -> Any:
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                raise RecipeError(f"{where}: {v!r} is out of range; allowed [{self.lo}, {self.hi}]")
            return v

        def num(v: Any) -> float:  # a finite float; ValueError for what is no number (a bool, a list, 'abc')
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError
            return finite(float(v), where)

        def integer(v: Any) -> int:
            f = num(v)
            if f != int(f):
                raise ValueError
            return v if isinstance(v, int) else int(f)

        def pair(v: Any) -> list[Any]:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return [v, v]
            if not isinstance(v, (list, tuple)) or len(v) != 2:
                raise ValueError
            return list(v)

        try:
            if self.kind == "float":
                return bounds(num(value))
            if self.kind == "int":
                return bounds(integer(value))
            if self.kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError
                return value
            if self.kind == "str":
                if self.choices is not None and value not in self.choices:
                    raise RecipeError(f"{where}: {value!r} is not allowed; choose one of {list(self.choices)}")
                return str(value)
            if self.kind in ("range", "irange"):
                conv = num if self.kind == "range" else integer
                lo, hi = (conv(v) for v in pair(value))
                if lo > hi:
                    raise RecipeError(f"{where}: range [{lo}, {hi}] has min > max")
                return [bounds(lo), bounds(hi)]
            if self.kind == "extent" and not isinstance(value, (list, tuple)):
                return bounds(integer(value))
            if self.kind in ("size", "extent"):
                return [bounds(integer(v)) for v in pair(value)]
            if self.kind == "list":
                vals = [value] if isinstance(value, str) else value
                if not isinstance(vals, (list, tuple)):
                    raise ValueError
                if self.choices is not None:
                    bad = [v for v in vals if not isinstance(v, str) or v not in self.choices]
                    if bad:
                        raise RecipeError(f"{where}: {bad} not allowed; choose from {list(self.choices)}")
                    twice = sorted({v for v in vals if vals.count(v) > 1})
                    if twice:  # [image, image]: counted twice, e.g. by modality_dropout's keep_at_least
                        raise RecipeError(f"{where}: {twice} given more than once; list each name once")
                return list(vals)
        except RecipeError:
            raise
        except (TypeError, ValueError, OverflowError):
            pass
        expect = KIND_DOC.get(self.kind, self.kind)
        raise RecipeError(f"{where}: expected {expect}, got {value!r}")


#: how each Param kind is written in a recipe (error messages, docs/ops.md)
KIND_DOC = {"float": "number", "int": "integer", "bool": "true / false", "str": "string", "range": "[min, max]",
            "irange": "[min, max] integers", "size": "int or [height, width]", "extent": "int or [height, width]",
            "list": "a list"}


class Shape:
    """What an op's ``draw`` sees of a tensor field when the tensor itself is elsewhere (a batch row, an
    HWC working array): only its ``shape``."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


class Op:
    """Base class of every augmentation op.

    Subclasses set ``section``, ``name``, ``PARAMS``, ``field`` and implement the hooks
    ``sample_params`` (their own random params), ``transform`` (per-sample kernel) and, for a vectorised
    kernel, ``transform_batch``. ``draw``, ``apply`` and ``apply_batch`` are final: the ``p`` gate, the
    presence check and the applied-rows bookkeeping live here only.

    Example:
        >>> op = build_op("image", {"op": "hflip", "p": 1.0}, "image[0]")
        >>> op.draw(np.random.default_rng(0), {"text": "no image"})
        {'applied': False}
    """

    section: ClassVar[str] = ""
    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    #: the sample field the op reads and writes; None for sample-level ops (they see the whole sample)
    field: ClassVar[str | None] = None
    #: "exact" or a short statement of the agreement between the two kernels
    tolerance: ClassVar[str] = "exact"
    #: draws no random params (a pure function of the sample): allowed in ``normalize`` (with p = 1)
    deterministic: ClassVar[bool] = False
    #: replay logs of format 1 recorded this op's fallback (e.g. random_crop's centre crop) as "not applied"
    legacy_always_applies: ClassVar[bool] = False
    #: ``transform_batch`` takes every row and leaves rows whose params say not applied as they are (see the
    #: module docstring); False: it sees only applied rows
    masked: ClassVar[bool] = False

    def __init__(self, p: float = 1.0, where: str | None = None, id: str | None = None, **kwargs: Any) -> None:  # noqa: A002
        where = where or f"{self.section}.{self.name}"
        self.where = where
        self.p = Param("float", 1.0, 0.0, 1.0).check(p, f"{where}.p")
        if id is not None and (not isinstance(id, str) or not _ID.match(id)):
            raise RecipeError(f"{where}.id: {id!r} is not a valid op id; use 1-64 letters, digits, '_' or '-'")
        self.id = id
        unknown = sorted(set(kwargs) - set(self.PARAMS), key=str)
        if unknown:
            raise RecipeError(f"{where}: unknown key(s) {unknown}{did_you_mean(unknown[0], [*self.PARAMS, 'p', 'id']) or ';'} "
                              f"{self.name!r} accepts p, id, {', '.join(self.PARAMS) or '(nothing else)'}")
        self.args: dict[str, Any] = {}
        for k, spec in self.PARAMS.items():
            self.args[k] = spec.check(kwargs[k], f"{where}.{k}") if k in kwargs else spec.default
        self.validate(where)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        for meth in FINAL:
            if meth in cls.__dict__:
                raise TypeError(f"{cls.__name__} overrides Op.{meth}; implement sample_params / fallback_params / "
                                "transform / transform_batch instead (the protocol lives in Op)")
        if cls.name and cls.section:
            key = (cls.section, cls.name)
            if key in _REGISTRY:
                raise RuntimeError(f"augmentation op {cls.section}.{cls.name} registered twice")
            _REGISTRY[key] = cls

    def validate(self, where: str) -> None:
        """Cross-argument checks (override)."""

    def __getattr__(self, item: str) -> Any:
        args = self.__dict__.get("args")
        if args is not None and item in args:
            return args[item]
        raise AttributeError(item)

    def to_dict(self) -> dict[str, Any]:
        """Recipe form: ``{"op": name, ["id": id,] "p": p, **args}`` (all args explicit: the canonical form)."""
        head: dict[str, Any] = {"op": self.name}
        if self.id is not None:
            head["id"] = self.id
        return {**head, "p": self.p, **self.args}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items() if k != 'op')})"

    @property
    def uses_rng(self) -> bool:
        """Whether :meth:`draw` reads its generator (deterministic ops at p = 1 never do)."""
        return not (self.deterministic and self.p >= 1.0)

    # -- protocol (final) -----------------------------------------------------------------------
    def draw(self, rng: np.random.Generator | None, sample: Any) -> dict[str, Any]:
        """Params for one sample: not applied when the op's field is absent; else the ``p`` draw, then
        :meth:`sample_params` (or :meth:`fallback_params` when the draw fails).

        ``rng`` may be None when :attr:`uses_rng` is False.
        """
        if self.field is not None and self.field not in sample:
            return {"applied": False}
        hit = True if rng is None else bool(rng.random() < self.p)
        params = self.sample_params(rng, sample) if hit else self.fallback_params(sample)
        return {"applied": False} if params is None else {"applied": True, **params}

    def apply(self, sample: Any, params: dict[str, Any]) -> Any:
        """The per-sample kernel when ``params`` says applied (and the field is there); else ``sample``."""
        if not params.get("applied") or (self.field is not None and self.field not in sample):
            return sample
        return self.transform(sample, params)

    def apply_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """The batched kernel on the applied rows only (kornia's ``apply_func``): none applied -> the batch
        itself; all -> the kernel on the batch; some -> the kernel on those rows of the fields it touches,
        merged back (a ``masked`` op: the kernel on the batch, skipping the other rows itself)."""
        rows = [i for i, p in enumerate(params) if p.get("applied")]
        if not rows:
            return batch
        if len(rows) == len(params) or self.masked:
            return self.transform_batch(batch, params)
        sub = self.transform_batch(batch.select(rows, self.batch_fields()), [params[i] for i in rows])
        return batch.scatter(rows, sub)

    # -- hooks ------------------------------------------------------------------------------------
    def batch_fields(self) -> tuple[str, ...] | None:
        """The batch fields ``transform_batch`` reads or writes: ``field`` and what travels with it (a text
        op's ``tokens``); None (sample-level ops): all of them. Only these are gathered for the applied rows."""
        if self.field is None:
            return None
        return (self.field, "tokens") if self.field == "text" else (self.field,)

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any] | None:
        """The op's own random params for ``sample`` (its field is present); None: nothing to do."""
        return {}

    def fallback_params(self, sample: Any) -> dict[str, Any] | None:
        """Params when the ``p`` draw fails: None (the op does nothing) or a deterministic transform
        (random_crop's centre crop, random_resized_crop's full-image resize)."""
        return None

    def transform(self, sample: Any, params: dict[str, Any]) -> Any:
        """Per-sample CPU kernel (pure; never mutates ``sample``)."""
        raise NotImplementedError

    def transform_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """Batched kernel on rows that are all applied (a ``masked`` op: on every row, leaving those not applied
        as they are). Default: the per-sample kernel per row, re-collated (for ops whose result changes shapes
        per sample, e.g. ``typo``); vectorised ops override it."""
        from mmdata.augment.batching import per_sample_fallback

        return per_sample_fallback(self, batch, params)


def registry() -> dict[tuple[str, str], type[Op]]:
    """The op registry: (section, name) -> class."""
    import mmdata.augment.audio  # noqa: F401 - fill the registry
    import mmdata.augment.compose  # noqa: F401
    import mmdata.augment.cross  # noqa: F401
    import mmdata.augment.image  # noqa: F401
    import mmdata.augment.mix  # noqa: F401
    import mmdata.augment.text  # noqa: F401

    return _REGISTRY


def op_names(section: str, deterministic: bool = False) -> list[str]:
    """Registered op names of a section (only the deterministic ones, allowed in ``normalize``, if asked)."""
    return sorted(n for (s, n), cls in registry().items() if s == section and (cls.deterministic or not deterministic))


def build_op(section: str, spec: dict[str, Any], where: str, *, normalize: bool = False) -> Op:
    """Build an op from its recipe dict ``{op: NAME, [id: ID,] p: ..., **params}``.

    ``normalize=True`` builds a step of the ``normalize`` stage: only deterministic ops, with ``p`` 1.

    Example:
        >>> build_op("image", {"op": "resize", "size": 32}, "normalize.image[0]", normalize=True).to_dict()["side"]
        'shorter'
    """
    if not isinstance(spec, dict) or "op" not in spec:
        raise RecipeError(f"{where}: expected a mapping with an 'op' key, got {spec!r}")
    name = spec["op"]
    if not isinstance(name, str):
        raise RecipeError(f"{where}.op: expected an op name (a string), got {name!r}")
    cls = registry().get((section, name))
    if cls is None or (normalize and not cls.deterministic):
        allowed = ", ".join(op_names(section, deterministic=normalize))
        if cls is None:
            raise RecipeError(f"{where}: unknown {section} op {name!r}{did_you_mean(name, op_names(section)) or ';'} "
                              f"allowed: {allowed}")
        raise RecipeError(f"{where}: {name!r} draws random params; the normalize stage takes deterministic ops only: {allowed} "
                          f"(put {name!r} in the {section!r} section)")
    kwargs = {k: v for k, v in spec.items() if k != "op"}
    odd = sorted((k for k in kwargs if not isinstance(k, str) or k == "where"), key=str)  # not keyword arguments
    if odd:
        raise RecipeError(f"{where}: unknown key(s) {odd}; {name!r} accepts p, id, {', '.join(cls.PARAMS) or '(nothing else)'}")
    op = cls(where=where, **kwargs)
    if normalize and op.p != 1.0:
        raise RecipeError(f"{where}.p: normalize ops apply to every sample; p must be 1.0, got {op.p}")
    return op
