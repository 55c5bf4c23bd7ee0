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

Registration and the contract: defining a subclass with a ``section`` and a ``name`` registers it (the same
class defined again, by ``importlib.reload`` or a notebook cell run twice, replaces itself; another class
under a taken name is refused, naming both). The class is checked when it is defined (section, PARAMS, an
``__init__`` that ``to_dict`` would not round-trip). mmdata's own ops (:data:`BUILTIN_MODULES`) are
registered first and trusted; an op defined elsewhere runs under :mod:`mmdata.augment.contract`'s cheap
checks (JSON params when drawn, a private copy of what it may write, the type / dtype / rank of what it
returns). docs/extending.md is the guide.

Validation: every op argument is declared once as a :class:`Param` (kind, default, range or choices,
doc). The same table validates recipes (errors name the recipe key: ``image[1].scale: 2.0 is out of
range; allowed [0.0, 1.0]``), generates the op reference (``docs/ops.md``) and drives the tests —
which is why recipes are not validated with pydantic (a second source of truth whose errors would have
to be translated back to recipe keys).
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mmdata.augment import contract
from mmdata.checks import did_you_mean
from mmdata.errors import MMDataError, RecipeError

SECTIONS = ("image", "audio", "text", "sample", "batch")
_REGISTRY: dict[tuple[str, str], type[Op]] = {}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: protocol methods subclasses must not override (they implement the hooks instead)
FINAL = ("draw", "apply", "apply_batch")
#: the modules of mmdata's own ops: registered before any other op can be (a plugin's op named like a
#: built-in is the one refused, never the built-in module's import), and trusted (no copy, no return checks)
BUILTIN_MODULES = ("mmdata.augment.image", "mmdata.augment.audio", "mmdata.augment.text", "mmdata.augment.cross",
                   "mmdata.augment.compose", "mmdata.augment.mix", "mmdata.augment.audio_env")
#: names a PARAMS key may not take: recipe keys of every step and instance attributes set by ``Op.__init__``
#: (any class attribute — ``name``, ``section``, ``field``, a method — is refused too: ``op.<key>`` would read
#: it instead of the argument)
RESERVED_PARAMS = ("op", "p", "id", "where", "args", "children")


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
        >>> from mmdata.augment.recipe import build_op  # the registry the built-in ops filled (pytest re-imports this file)
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
    #: moves or resamples the image's pixels (a flip, crop, resize, rotation, a mix of two images): a
    #: per-pixel map in another field (``k.depth.png``, ``k.mask.npy``) no longer lines up with the image
    moves_pixels: ClassVar[bool] = False
    #: changes values only: every field keeps its shape, each row its length / size and presence, and text and
    #: tokens are untouched (a flip, a mask, a gain, noise). :meth:`Recipe.plan_batched` then skips its kernel
    #: when it draws a batch's params ahead (in a DataLoader worker), since no later draw can see its effect
    keeps_layout: ClassVar[bool] = False
    #: reads ``sample.sample_rate`` (a duration in seconds, a rate change, a spectrogram): a recipe that runs it
    #: refuses audio without a positive int rate at its entry (:func:`mmdata.augment.contract.check_input`)
    needs_rate: ClassVar[bool] = False
    #: replay logs of format 1 recorded this op's fallback (e.g. random_crop's centre crop) as "not applied"
    legacy_always_applies: ClassVar[bool] = False
    #: ``transform_batch`` takes every row and leaves rows whose params say not applied as they are (see the
    #: module docstring); False: it sees only applied rows
    masked: ClassVar[bool] = False
    #: hand ``transform`` a private copy of the tensors it may write (its ``field``; all, for a sample-level op).
    #: None: yes for ops defined outside mmdata, which cannot be trusted never to write into their input (an
    #: in-place write would corrupt the loader's cached samples); set False once ``mmdata.testing.check_op``
    #: passes, to save the copy and the NaN check of the audio it returns, a pass each (a torch in-place write
    #: is still caught, by the tensor's version counter; check_op still makes the NaN check)
    copy_input: ClassVar[bool | None] = None
    #: set per class at creation: one of mmdata's own ops (no copy, no return checks)
    _builtin: ClassVar[bool] = True
    _copies: ClassVar[bool] = False

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
        builtin = cls.__module__ in BUILTIN_MODULES
        cls._builtin = builtin
        _check_class(cls)
        # ops from elsewhere run under the contract's checks (contract.checked_transform), on a private copy
        # of what they may write unless they say they never write into their input
        cls._copies = (not builtin) if cls.copy_input is None else bool(cls.copy_input)
        if not builtin:
            registry()  # the built-ins first: a clash is then this class's error, not a built-in module's
        if cls.name and cls.section:
            _register(cls)

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
        if params is None:
            return {"applied": False}
        if not self._builtin:  # here, not when the replay log is saved an epoch later
            contract.check_params(self, params, sample)
        return {"applied": True, **params}

    def apply(self, sample: Any, params: dict[str, Any]) -> Any:
        """The per-sample kernel when ``params`` says applied (and the field is there); else ``sample``.

        An op defined outside mmdata runs under :func:`~mmdata.augment.contract.checked_transform`: on a
        private copy of what it may write, and what it returns is checked (type, dtype, rank, key)."""
        if not params.get("applied") or (self.field is not None and self.field not in sample):
            return sample
        if self._builtin:
            return self.transform(sample, params)
        return contract.checked_transform(self, sample, params)

    def apply_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """The batched kernel on the applied rows only (kornia's ``apply_func``): none applied -> the batch
        itself; all -> the kernel on the batch; some -> the kernel on those rows of the fields it touches,
        merged back (a ``masked`` op: the kernel on the batch, skipping the other rows itself)."""
        rows = [i for i, p in enumerate(params) if p.get("applied")]
        if not rows:
            return batch
        if len(rows) == len(params) or self.masked:
            if self._builtin:
                return self.transform_batch(batch, params)
            watched = contract._versions(batch.data)  # a kernel that writes into the batch in place (x.div_())
            out = self.transform_batch(batch, params)
            contract.check_batch(self, batch, out, written=[k for k, t, ver in watched if t._version != ver])
            return out
        sub_in = batch.select(rows, self.batch_fields())
        watched = [] if self._builtin else contract._versions(sub_in.data)
        sub = self.transform_batch(sub_in, [params[i] for i in rows])
        if not self._builtin:
            contract.check_batch(self, sub_in, sub, written=[k for k, t, ver in watched if t._version != ver])
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

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        """For ops that move the image's pixels (``moves_pixels``): the same geometric change on a per-pixel
        target (a recipe's ``targets``: a depth map, a segmentation mask) given as an (H, W, K) array of any
        dtype — nearest-neighbour sampling at the image's pixel centres (:func:`mmdata.augment.targets.nearest`),
        ``fill`` where pixels come in from outside (the target's, not the image's ``fill``). Returns an
        (H', W', K) array of the same dtype with the image's new height and width, in memory of its own or a
        view (never written to later). Only called with applied params."""
        raise NotImplementedError

    def transform_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """Batched kernel on rows that are all applied (a ``masked`` op: on every row, leaving those not applied
        as they are). Default: the per-sample kernel per row, re-collated (for ops whose result changes shapes
        per sample, e.g. ``typo``); vectorised ops override it."""
        from mmdata.augment.batching import per_sample_fallback

        return per_sample_fallback(self, batch, params)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(cls: type[Op]) -> None:
    """Put ``cls`` in the registry under (section, name). The same class defined again — same module, same
    qualified name: ``importlib.reload``, a notebook cell run twice — replaces the old one; any other class
    under a taken name is refused, naming both."""
    key = (cls.section, cls.name)
    old = _REGISTRY.get(key)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        label = f"{cls.section}.{cls.name}"
        if "name" not in cls.__dict__:
            raise RuntimeError(
                f"augmentation op {label} registered twice: {_qualified(cls)} inherits name = {cls.name!r} from "
                f"{_qualified(old)} (module {old.__module__}), which is registered under it; give the subclass its own "
                f'name = "..." (or name = "" for a base class that is no op itself)')
        raise RuntimeError(
            f"augmentation op {label} registered twice: {_qualified(cls)} (module {cls.__module__}) and "
            f"{_qualified(old)} (module {old.__module__}); set another name = \"...\" on {cls.__qualname__} (names are "
            f"unique per section: recipes refer to ops by name)")
    _REGISTRY[key] = cls


def _batch_op() -> type | None:
    """:class:`mmdata.augment.mix.BatchOp` (None while mix.py is defining it)."""
    mod = sys.modules.get("mmdata.augment.mix")
    if mod is None:
        import mmdata.augment.mix as mod
    return getattr(mod, "BatchOp", None)


def _check_class(cls: type[Op]) -> None:
    """Refuse, when an op class is defined, what would otherwise go wrong later and far away: an unknown
    section, a name without a section, PARAMS that cannot be (a kind typo, a default outside its own range or
    not in canonical form, a reserved key) and an ``__init__`` whose extra arguments ``to_dict`` would drop."""
    qual = _qualified(cls)
    if cls.section not in ("", *SECTIONS):
        raise TypeError(f"{qual}: section {cls.section!r} is not one of {list(SECTIONS)}")
    if cls.name and not cls.section:
        raise TypeError(f"{qual}: name {cls.name!r} without a section; set section = \"image\" (or one of "
                        f"{list(SECTIONS)}), or subclass ImageOp / AudioOp / TextOp / BatchOp, which set it")
    if cls.name and not (isinstance(cls.name, str) and _ID.match(cls.name)):
        raise TypeError(f"{qual}: name {cls.name!r} is no op name; use 1-64 letters, digits, '_' or '-'")
    bo = _batch_op()
    if bo is not None:
        if cls.section == "batch" and not issubclass(cls, bo):
            raise TypeError(f"{qual}: section 'batch' takes batch ops only (subclass mmdata.augment.mix.BatchOp: "
                            "draw_batch / combine run once per batch); a per-sample op goes in image, audio, text or sample")
        if issubclass(cls, bo) and cls.section not in ("", "batch"):
            raise TypeError(f"{qual}: a BatchOp mixes batches and runs only in section 'batch', not {cls.section!r}")
    params = cls.PARAMS
    if not isinstance(params, dict):
        raise TypeError(f"{qual}.PARAMS: expected a dict of name -> Param, got {type(params).__name__}")
    for k, spec in params.items():
        where = f"{qual}.PARAMS[{k!r}]"
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("_"):
            raise TypeError(f"{where}: a parameter name must be a Python identifier not starting with '_' "
                            "(it is a keyword argument and an attribute)")
        if k in RESERVED_PARAMS or hasattr(cls, k):
            raise TypeError(f"{where}: {k!r} is reserved (every step has op, p and id; Op uses {k!r} itself, so "
                            f"op.{k} would not read the argument); rename the parameter")
        if not isinstance(spec, Param):
            raise TypeError(f"{where}: expected a Param(kind, default, lo, hi, choices, doc), got {type(spec).__name__}")
        if type(spec).check is Param.check and spec.kind not in KIND_DOC:
            raise TypeError(f"{where}: unknown kind {spec.kind!r}{did_you_mean(str(spec.kind), list(KIND_DOC)) or ';'} "
                            f"kinds: {', '.join(KIND_DOC)}")
        if spec.lo is not None and spec.hi is not None and spec.lo > spec.hi:
            raise TypeError(f"{where}: lo {spec.lo} > hi {spec.hi}")
        try:
            canon = spec.check(spec.default, f"{where}.default")
        except RecipeError as exc:
            raise TypeError(f"{exc} (the default must be a valid value itself)") from None
        if canon != spec.default:  # to_dict writes the default as given: a round trip would change it
            raise TypeError(f"{where}.default: write it in canonical form, {canon!r} (not {spec.default!r}), so "
                            "to_dict / build round-trip it")
    init = cls.__init__
    if init is not Op.__init__ and cls.to_dict is Op.to_dict:
        extra = [n for n, prm in list(inspect.signature(init).parameters.items())[1:]
                 if prm.kind in (prm.POSITIONAL_OR_KEYWORD, prm.KEYWORD_ONLY) and n not in ("p", "where", "id", *params)]
        if extra:
            raise TypeError(
                f"{qual}.__init__ takes {extra}, which are not in PARAMS: to_dict() (the recipe form) would drop them, "
                f"so build(op.to_dict()) would silently be another op; declare them in PARAMS "
                f"({extra[0]!r}: Param(\"float\", 1.0, 0.0, 10.0, doc=...)) and read self.{extra[0]} instead of "
                "overriding __init__ (cross-argument checks go in validate)")


def registry() -> dict[tuple[str, str], type[Op]]:
    """The op registry: (section, name) -> class."""
    import mmdata.augment.audio  # noqa: F401 - fill the registry
    import mmdata.augment.audio_env  # noqa: F401
    import mmdata.augment.compose  # noqa: F401
    import mmdata.augment.cross  # noqa: F401
    import mmdata.augment.image  # noqa: F401
    import mmdata.augment.mix  # noqa: F401
    import mmdata.augment.text  # noqa: F401

    return _REGISTRY


def section_problem(section: Any) -> str | None:
    """Why ``section`` names no recipe section ops are registered in (None: it names one).

    Example:
        >>> section_problem("Image")
        "unknown section 'Image'; did you mean 'image'? sections: image, audio, text, sample, batch"
    """
    if isinstance(section, str) and section in SECTIONS:
        return None
    hint = did_you_mean(section, SECTIONS).lstrip(";").strip()
    return f"unknown section {section!r}; {hint + ' ' if hint else ''}sections: {', '.join(SECTIONS)}"


def op_names(section: str, deterministic: bool = False) -> list[str]:
    """Registered op names of a section (only the deterministic ones, allowed in ``normalize``, if asked).

    Raises:
        RecipeError: ``section`` is none of :data:`SECTIONS` (a misspelt one was an empty list).

    Example:
        >>> from mmdata.augment import op_names  # the registry the built-in ops filled (pytest re-imports this file)
        >>> op_names("image", deterministic=True)[:3]
        ['center_crop', 'pad_to_size', 'resize']
    """
    problem = section_problem(section)
    if problem is not None:
        raise RecipeError(f"op_names: {problem}")
    return sorted(n for (s, n), cls in registry().items() if s == section and (cls.deterministic or not deterministic))


#: (section, another library's op name) -> (the op here, whose name and how it differs): the unknown-op error
#: names the op a user of albumentations / torchvision / kornia / audiomentations / torchaudio means, in the
#: section the name was written in. A name with no entry in that section is sent to another section's entry
#: only when the section has no close op of its own (a name that differs from ours only in case needs no entry:
#: did_you_mean finds it). ``""`` as the op: the name means something no op of that section does (the note says).
FOREIGN_OPS: dict[tuple[str, str], tuple[str, str]] = {
    ("image", "HorizontalFlip"): ("hflip", "albumentations"),
    ("image", "RandomHorizontalFlip"): ("hflip", "torchvision / kornia"),
    ("image", "VerticalFlip"): ("vflip", "albumentations"),
    ("image", "RandomVerticalFlip"): ("vflip", "torchvision / kornia"),
    ("image", "RandomRotation"): ("rotate", "torchvision / kornia"),
    ("image", "CoarseDropout"): ("cutout", "albumentations"),
    ("image", "RandomErasing"): ("cutout", "torchvision / kornia"),
    ("image", "GaussNoise"): ("gaussian_noise", "albumentations"),
    ("image", "RandomGaussianNoise"): ("gaussian_noise", "kornia"),
    ("image", "AddGaussianNoise"): ("gaussian_noise", "audiomentations' name; for images"),
    ("image", "RandomBrightnessContrast"): ("brightness_contrast", "albumentations"),
    ("image", "RandomResizedCrop"): ("random_resized_crop", "albumentations / torchvision / kornia"),
    ("image", "RandomCrop"): ("random_crop", "albumentations / torchvision / kornia"),
    ("image", "CenterCrop"): ("center_crop", "albumentations / torchvision / kornia"),
    ("image", "PadIfNeeded"): ("pad_to_size", "albumentations"),
    ("image", "SmallestMaxSize"): ("resize", "albumentations, side: shorter"),
    ("image", "LongestMaxSize"): ("resize", "albumentations, side: longer"),
    ("image", "ToGray"): ("to_gray", "albumentations; it keeps 3 channels: add channels: 3"),
    ("image", "Grayscale"): ("to_gray", "torchvision"),
    ("image", "ToRGB"): ("to_rgb", "albumentations"),
    ("image", "Shift"): ("", "a translation in image libraries; no image op here translates"),
    ("audio", "RandomCrop"): ("random_crop", "torch-audiomentations"),
    ("audio", "GaussNoise"): ("noise", "albumentations' image op; for audio, at an SNR"),
    ("audio", "AddGaussianSNR"): ("noise", "audiomentations"),
    ("audio", "AddGaussianNoise"): ("noise", "audiomentations, here at an SNR"),
    ("audio", "AddBackgroundNoise"): ("background_noise", "audiomentations"),
    ("audio", "ApplyImpulseResponse"): ("reverb", "audiomentations"),
    ("audio", "Vol"): ("gain", "torchaudio: a fixed amplitude factor; gain draws a gain in dB from [min_db, max_db]"),
    ("audio", "PolarityInversion"): ("polarity", "audiomentations"),
    ("audio", "Shift"): ("time_shift", "audiomentations"),
    ("audio", "PitchShift"): ("pitch_shift", "audiomentations / torchaudio"),
    ("audio", "BandPassFilter"): ("band_limit", "audiomentations"),
    ("audio", "TimeMask"): ("time_mask", "audiomentations"),
    ("audio", "TimeMasking"): ("time_mask", "torchaudio, on a spectrogram: add target: spec"),
    ("audio", "FrequencyMasking"): ("freq_mask", "torchaudio"),
}
_FOREIGN_LOWER = {(sec, name.lower()): (sec, name) for sec, name in FOREIGN_OPS}
#: entries that hold in their own section only (a library's name read as the other modality's op): never the
#: target of a hint written in another section
_HERE_ONLY = {("image", "AddGaussianNoise"), ("image", "Shift"), ("audio", "GaussNoise")}


def foreign_hint(section: str, name: str) -> str:
    """What an unknown op ``name`` is here when another library calls it so (:data:`FOREIGN_OPS`), or ``""``.

    The section's own entry comes first; another section's only when this one has no close op.

    Example:
        >>> foreign_hint("image", "HorizontalFlip")
        "; HorizontalFlip (albumentations) is 'hflip' here;"
        >>> foreign_hint("image", "AddGaussianSNR")
        "; AddGaussianSNR (audiomentations) is 'noise' here, an audio op (put it in the audio: section);"
        >>> foreign_hint("audio", "RandomCrop")
        "; RandomCrop (torch-audiomentations) is 'random_crop' here;"
    """
    if not isinstance(name, str):
        return ""
    key = _FOREIGN_LOWER.get((section, name.lower()))
    if key is None:
        if did_you_mean(name, op_names(section)):
            return ""
        key = next((k for (_, low), k in _FOREIGN_LOWER.items() if low == name.lower() and k not in _HERE_ONLY), None)
        if key is None:
            return ""
    sec, known = key
    op, note = FOREIGN_OPS[key]
    if not op:
        return f"; {known}: {note};"
    there = "" if sec == section else f", an {sec} op (put it in the {sec}: section)"
    return f"; {known} ({note}) is {op!r} here{there};"


#: the sections of the normalize stage (:data:`mmdata.augment.recipe.NORMALIZE_SECTIONS`, which imports this module)
_NORMALIZE_SECTIONS = ("image", "audio", "text")


def _and(words: Sequence[str], last: str) -> str:
    """``image, audio and text``: ``words`` joined as a list is said (``last`` before the last one)."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def other_section_hint(section: str, name: str, *, normalize: bool = False) -> str:
    """Where an unknown op ``name`` of ``section`` lives when another section has an op of that name (a built-in
    or a registered plugin's: ``gain`` written under ``image:``), or ``""``. A name that differs from such an op
    only in case is sent there too when ``section`` has no close op of its own. Under ``normalize`` (a step of
    the normalize stage) a deterministic op is sent to normalize's own list of its section, and a random one
    out of the stage.

    Example:
        >>> from mmdata.augment.base import other_section_hint  # the registry the built-in ops filled (pytest re-imports this file)
        >>> other_section_hint("image", "gain")
        "; 'gain' is an audio op (put it in the audio: section);"
        >>> other_section_hint("image", "pad_trim", normalize=True)
        "; 'pad_trim' is an audio op (put it in normalize's audio: section);"
    """
    if not isinstance(name, str):
        return ""
    known = registry()
    found = [s for s in SECTIONS if s != section and (s, name) in known]
    op = name
    if not found and not did_you_mean(name, op_names(section)):
        low = {(s, n.lower()): n for (s, n) in known if s != section}
        found = [s for s in SECTIONS if (s, name.lower()) in low]
        names = {low[(s, name.lower())] for s in found}
        if len(names) != 1:  # none, or names of several spellings: no one op to point at
            return ""
        op = names.pop()
    if not found:
        return ""
    where, note = "the ", ""
    if normalize:  # the normalize stage takes deterministic ops of its own sections only
        fits = [s for s in found if s in _NORMALIZE_SECTIONS and known[(s, op)].deterministic]
        if fits:
            found, where = fits, "normalize's "
        else:
            note = ", outside normalize: normalize takes deterministic ops only"
    kinds = _and(found, "and")
    article = "an" if kinds[0] in "aeiou" else "a"
    places = _and([f"{s}:" for s in found], "or")
    what = f"{name!r} is {article} {kinds} op" if op == name else f"{name!r} is spelt {op!r}, {article} {kinds} op"
    if note:
        what += " that draws random params"
    return f"; {what} (put it in {where}{places} section{note});"


def _plugin_op(section: str, name: str, where: str) -> type[Op] | None:
    """The op ``name`` of ``section`` once the installed entry points are loaded — library callers never call
    :func:`mmdata.plugins.load_plugins`, as the CLI does — or None (not found, or they were loaded before)."""
    from mmdata.plugins import entry_points_on_miss

    try:
        if not entry_points_on_miss():
            return None
    except MMDataError as exc:
        raise RecipeError(f"{where}: unknown {section} op {name!r}; loading the installed plugins to look for it "
                          f"failed: {exc}") from None
    return registry().get((section, name))


def build_op(section: str, spec: dict[str, Any], where: str, *, normalize: bool = False) -> Op:
    """Build an op from its recipe dict ``{op: NAME, [id: ID,] p: ..., **params}``.

    ``normalize=True`` builds a step of the ``normalize`` stage: only deterministic ops, with ``p`` 1.
    A name not registered yet loads the installed plugins' entry points first (once per process:
    :func:`mmdata.plugins.entry_points_on_miss`), so an installed package's op needs no import.

    Example:
        >>> from mmdata.augment.recipe import build_op  # the registry the built-in ops filled (pytest re-imports this file)
        >>> build_op("image", {"op": "resize", "size": 32}, "normalize.image[0]", normalize=True).to_dict()["side"]
        'shorter'
    """
    if not isinstance(spec, dict) or "op" not in spec:
        raise RecipeError(f"{where}: expected a mapping with an 'op' key, got {spec!r}")
    name = spec["op"]
    if not isinstance(name, str):
        raise RecipeError(f"{where}.op: expected an op name (a string), got {name!r}")
    problem = section_problem(section)
    if problem is not None:  # here, not as "unknown video op 'hflip'; allowed: " with nothing allowed
        raise RecipeError(f"{where}: {problem}")
    cls = registry().get((section, name)) or _plugin_op(section, name, where)
    if cls is None or (normalize and not cls.deterministic):
        allowed = ", ".join(op_names(section, deterministic=normalize))
        if cls is None:
            hint = (foreign_hint(section, name) or other_section_hint(section, name, normalize=normalize)
                    or did_you_mean(name, op_names(section)) or ";")
            raise RecipeError(f"{where}: unknown {section} op {name!r}{hint} "
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
