"""Composition inside a section: ``one_of`` (pick one child by weight) and ``some_of`` (pick n children,
applied in listed order). Sequential composition is the section list itself.

Recipe form: ``{op: one_of, p: 1.0, weights: [..], ops: [{op: hflip}, {op: vflip}]}``. Composites nest at
most :data:`MAX_DEPTH` (32) deep.

A composite draws only its own choice (``chosen``: child positions). The recipe then runs each chosen
child in turn — draw, apply — so every child draws from the sample *as the previous child left it*
(a ``word_swap`` after a ``word_crop`` sees the cropped text). Each child's draws are keyed by the
composite's identity plus its own (``text.some_of#0/word_swap#0``), so they do not depend on the
other children. The log keeps the children's params (``{"applied": true, "children": {"2": {...}}}``);
:meth:`transform` replays them in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmdata.augment.base import Op, Param, build_op, finite
from mmdata.errors import RecipeError

#: how deep one_of / some_of may nest (a child step is written ``where.ops[i]``, so a step's path counts its depth)
MAX_DEPTH = 32


class Composite(Op):
    """Base of ``one_of`` / ``some_of``: children built from ``ops``; ``sample_params`` returns
    ``{"chosen": [child positions, ascending]}``."""

    section = ""
    tolerance = "as each child's"

    def __init__(self, p: float = 1.0, where: str | None = None, ops: Sequence[dict[str, Any]] | None = None, **kw: Any) -> None:
        where = where or f"{self.section}.{self.name}"
        if not ops or not isinstance(ops, list):
            raise RecipeError(f"{where}.ops: give a non-empty list of {self.section} ops")
        if where.count(".ops[") >= MAX_DEPTH:
            raise RecipeError(f"{where}: one_of / some_of nested more than {MAX_DEPTH} deep")
        self.children = [build_op(self.section, spec, f"{where}.ops[{i}]") for i, spec in enumerate(ops)]
        super().__init__(p=p, where=where, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ops": [c.to_dict() for c in self.children]}

    def transform(self, sample: Any, params: dict[str, Any]) -> Any:
        """Replay: apply the logged children params in child order."""
        for j, child in enumerate(self.children):
            sub = params["children"].get(str(j))
            if sub is not None:
                sample = child.apply(sample, sub)
        return sample

    def transform_batch(self, batch: Any, params: Sequence[dict[str, Any]]) -> Any:
        """Replay on a batch: each child's batched kernel on the rows that logged it."""
        for j, child in enumerate(self.children):
            batch = child.apply_batch(batch, [p["children"].get(str(j), {"applied": False}) for p in params])
        return batch


def _make(section: str) -> None:
    class OneOf(Composite):
        """Apply one child, chosen with probability proportional to ``weights`` (default equal)."""

        PARAMS = {"weights": Param("list", [], doc="relative weight of each child (default: equal)")}

        def validate(self, where: str) -> None:
            w = self.args["weights"]
            if w and len(w) != len(self.children):
                raise RecipeError(f"{where}.weights: {len(w)} weights for {len(self.children)} ops")
            vals = [finite(v, f"{where}.weights[{j}]") for j, v in enumerate(w)]
            if any(v < 0 for v in vals) or (vals and not 0 < sum(vals) < math.inf):
                raise RecipeError(f"{where}.weights: must be >= 0 with a positive, finite sum")
            self.args["weights"] = vals  # canonical form: numbers

        def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
            w = np.array(self.args["weights"] or [1.0] * len(self.children))
            return {"chosen": [int(rng.choice(len(self.children), p=w / w.sum()))]}

    class SomeOf(Composite):
        """Apply ``n`` (a [min, max] range) distinct children, in the order listed."""

        PARAMS = {"n": Param("irange", [1, 1], 0, 64, doc="how many children [min, max]")}

        def validate(self, where: str) -> None:
            if int(self.n[1]) > len(self.children):  # it was clamped without a word
                raise RecipeError(f"{where}.n: up to {int(self.n[1])} distinct children asked for, but ops has "
                                  f"{len(self.children)}; give n at most [{min(int(self.n[0]), len(self.children))}, "
                                  f"{len(self.children)}] or add ops")

        def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
            lo, hi = int(self.n[0]), min(int(self.n[1]), len(self.children))
            k = int(rng.integers(min(lo, hi), hi + 1))
            return {"chosen": sorted(int(i) for i in rng.choice(len(self.children), size=k, replace=False))}

    for cls, name in ((OneOf, "one_of"), (SomeOf, "some_of")):
        made = type(f"{cls.__name__}_{section}", (cls,), {"section": section, "name": name, "__doc__": cls.__doc__})
        made.__qualname__ = made.__name__
        globals()[made.__name__] = made  # importable by name: recipes pickle into spawned DataLoader workers


for _s in ("image", "audio", "text", "sample"):
    _make(_s)
