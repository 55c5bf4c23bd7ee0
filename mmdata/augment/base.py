"""The op protocol, parameter validation and the op registry.

Every op separates drawing its parameters from applying them (torchvision v2 / kornia style):

    params = op.sample_params(rng, sample)     # CPU, from mmdata.rng.param_rng(seed, epoch, key, op_index)
    out = op.apply(sample, params)             # per-sample CPU kernel: pure, never mutates its input
    batch = op.apply_batch(batch, [params...]) # batched torch kernel on any device, per-sample params

Params are small JSON-serialisable dicts (they go to the replay log and to Parquet) that always hold
``applied`` (the per-sample ``p`` draw). The per-sample kernel is the oracle; each batched kernel is
tested against it with the same params (exactly for flips, masks, gains, token ops; within a stated
tolerance for interpolating ops).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mmdata.errors import RecipeError

SECTIONS = ("image", "audio", "text", "sample", "batch")
_REGISTRY: dict[tuple[str, str], type[Op]] = {}


@dataclass(frozen=True)
class Param:
    """Declaration of one op argument: type, default, allowed range or choices.

    ``kind``: "float", "int", "bool", "str", "range" (a [lo, hi] pair of floats with lo <= hi), "irange" (ints),
    "size" (int or [h, w]), "list" (of strings).
    """

    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    def check(self, value: Any, where: str) -> Any:
        def bounds(v: float) -> None:
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                raise RecipeError(f"{where}: {v!r} is out of range; allowed [{self.lo}, {self.hi}]")

        try:
            if self.kind == "float":
                v = float(value)
                bounds(v)
                return v
            if self.kind == "int":
                if isinstance(value, bool) or int(value) != float(value):
                    raise ValueError
                v = int(value)
                bounds(v)
                return v
            if self.kind == "bool":
                if not isinstance(value, bool):
                    raise ValueError
                return value
            if self.kind == "str":
                if self.choices is not None and value not in self.choices:
                    raise RecipeError(f"{where}: {value!r} is not allowed; choose one of {list(self.choices)}")
                return str(value)
            if self.kind in ("range", "irange"):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = [value, value]
                conv = float if self.kind == "range" else int
                if self.kind == "irange" and any(float(v) != int(float(v)) for v in value):
                    raise ValueError
                lo, hi = (conv(v) for v in value)
                if lo > hi:
                    raise RecipeError(f"{where}: range [{lo}, {hi}] has min > max")
                bounds(lo)
                bounds(hi)
                return [lo, hi]
            if self.kind == "size":
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = [int(value), int(value)]
                h, w = (int(v) for v in value)
                bounds(h)
                bounds(w)
                return [h, w]
            if self.kind == "list":
                vals = [str(v) for v in value]
                if self.choices is not None:
                    bad = [v for v in vals if v not in self.choices]
                    if bad:
                        raise RecipeError(f"{where}: {bad} not allowed; choose from {list(self.choices)}")
                return vals
        except RecipeError:
            raise
        except (TypeError, ValueError):
            pass
        expect = {"range": "[min, max]", "irange": "[min, max] integers", "size": "int or [height, width]", "list": "a list"}.get(self.kind, self.kind)
        raise RecipeError(f"{where}: expected {expect}, got {value!r}")


class Shape:
    """What an op's ``draw`` sees of a tensor field when the tensor itself is elsewhere (a batch row, an
    HWC working array): only its ``shape``."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


class Op:
    """Base class of every augmentation op. Subclasses set ``section``, ``name``, ``PARAMS`` and implement
    ``sample_params``, ``apply`` and (for a vectorised kernel) ``apply_batch``.
    """

    section: ClassVar[str] = ""
    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    #: "exact" or a short statement of the agreement between the two kernels
    tolerance: ClassVar[str] = "exact"
    #: the op changes the sample even when its ``p`` draw says "not applied" (e.g. a resize to ``size``)
    always_transforms: ClassVar[bool] = False

    def __init__(self, p: float = 1.0, where: str | None = None, **kwargs: Any) -> None:
        where = where or f"{self.section}.{self.name}"
        self.p = Param("float", 1.0, 0.0, 1.0).check(p, f"{where}.p")
        unknown = sorted(set(kwargs) - set(self.PARAMS))
        if unknown:
            raise RecipeError(f"{where}: unknown key(s) {unknown}; {self.name!r} accepts p, {', '.join(self.PARAMS) or '(nothing else)'}")
        self.args: dict[str, Any] = {}
        for k, spec in self.PARAMS.items():
            self.args[k] = spec.check(kwargs[k], f"{where}.{k}") if k in kwargs else spec.default
        self.validate(where)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
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
        """Recipe form: ``{"op": name, "p": p, **args}`` (all args explicit: the canonical form)."""
        return {"op": self.name, "p": self.p, **self.args}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items() if k != 'op')})"

    # -- protocol --------------------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        """The ``p`` draw, then the op's own params when applied."""
        applied = bool(rng.random() < self.p)
        params = self.sample_params(rng, sample) if applied else {}
        return {"applied": applied, **params}

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {}

    def apply(self, sample: Any, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def apply_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """Default batched kernel: per-sample fallback (uncollate, apply, collate) for ops whose result
        changes shapes per sample (e.g. ``typo``); vectorised ops override it."""
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


def op_names(section: str) -> list[str]:
    return sorted(n for s, n in registry() if s == section)


def build_op(section: str, spec: dict[str, Any], where: str) -> Op:
    """Build an op from its recipe dict ``{op: NAME, p: ..., **params}``."""
    if not isinstance(spec, dict) or "op" not in spec:
        raise RecipeError(f"{where}: expected a mapping with an 'op' key, got {spec!r}")
    reg = registry()
    name = spec["op"]
    cls = reg.get((section, name))
    if cls is None:
        raise RecipeError(f"{where}: unknown {section} op {name!r}; allowed: {', '.join(op_names(section))}")
    kwargs = {k: v for k, v in spec.items() if k != "op"}
    return cls(where=where, **kwargs)


def mask_of(params: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([bool(p.get("applied")) for p in params], dtype=bool)


Kernel = Callable[..., Any]
