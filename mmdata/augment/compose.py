"""Composition inside a section: ``one_of`` (pick one child by weight) and ``some_of`` (pick n children,
applied in listed order). Sequential composition is the section list itself.

Recipe form: ``{op: one_of, p: 1.0, weights: [..], ops: [{op: hflip}, {op: vflip}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmdata.augment.base import Op, Param, build_op
from mmdata.augment.batching import per_sample_fallback
from mmdata.errors import RecipeError


def _child_rng(rng: np.random.Generator) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(int(rng.integers(0, 2**63))))


class _Composite(Op):
    section = ""

    def __init__(self, p: float = 1.0, where: str | None = None, ops: Sequence[dict[str, Any]] | None = None, **kw: Any) -> None:
        where = where or f"{self.section}.{self.name}"
        if not ops:
            raise RecipeError(f"{where}.ops: give a non-empty list of {self.section} ops")
        self.children = [build_op(self.section, spec, f"{where}.ops[{i}]") for i, spec in enumerate(ops)]
        super().__init__(p=p, where=where, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ops": [c.to_dict() for c in self.children]}

    def apply_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        if any(c.always_transforms for c in self.children):
            return per_sample_fallback(self, batch, params)
        for j, child in enumerate(self.children):
            sub = [p["children"].get(str(j), {"applied": False}) if p.get("applied") else {"applied": False} for p in params]
            if any(s.get("applied") for s in sub):
                batch = child.apply_batch(batch, sub)
        return batch

    def apply(self, sample: Any, params: dict[str, Any]) -> Any:
        if not params.get("applied"):
            return sample
        for j, child in enumerate(self.children):
            sub = params["children"].get(str(j))
            if sub is not None:
                sample = child.apply(sample, sub)
        return sample


def _make(section: str) -> None:
    class OneOf(_Composite):
        """Apply one child, chosen with probability proportional to ``weights`` (default equal)."""

        PARAMS = {"weights": Param("list", [])}

        def validate(self, where: str) -> None:
            w = self.args["weights"]
            if w and len(w) != len(self.children):
                raise RecipeError(f"{where}.weights: {len(w)} weights for {len(self.children)} ops")
            try:
                vals = [float(v) for v in w]
            except ValueError:
                raise RecipeError(f"{where}.weights: expected numbers, got {w}") from None
            if any(v < 0 for v in vals) or (vals and sum(vals) <= 0):
                raise RecipeError(f"{where}.weights: must be >= 0 with a positive sum")

        def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
            w = np.array([float(v) for v in self.args["weights"]] or [1.0] * len(self.children))
            j = int(rng.choice(len(self.children), p=w / w.sum()))
            return {"children": {str(j): self.children[j].draw(_child_rng(rng), sample)}}

    class SomeOf(_Composite):
        """Apply ``n`` (a [min, max] range) distinct children, in the order listed."""

        PARAMS = {"n": Param("irange", [1, 1], 0, 64)}

        def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
            lo, hi = int(self.n[0]), min(int(self.n[1]), len(self.children))
            k = int(rng.integers(min(lo, hi), hi + 1))
            chosen = sorted(int(i) for i in rng.choice(len(self.children), size=k, replace=False))
            return {"children": {str(j): self.children[j].draw(_child_rng(rng), sample) for j in chosen}}

    for cls, name in ((OneOf, "one_of"), (SomeOf, "some_of")):
        type(f"{cls.__name__}_{section}", (cls,), {"section": section, "name": name, "__doc__": cls.__doc__})


for _s in ("image", "audio", "text", "sample"):
    _make(_s)
