"""Which (arm, seed) runs come next: the fixed and the adaptive (group-sequential) designs.

The scheduler is pure bookkeeping over results — it never runs anything. The runner asks it for the
next tasks, hands them to an executor (processes here; Ray later), feeds the results back, and asks
again, so the same decisions come out whether the runs finish in one session or are resumed.

Adaptive design (``adaptive=True``): planned looks ``n_1 < ... < n_K`` seeds (default ``(10, 13, 16,
20)`` scaled to the maximum). Every arm and the baseline first run ``n_1`` seeds. At each look, with
:func:`mmdata.ablate.stats.crossings` (O'Brien–Fleming-type spending calibrated on the exact
sign-flip reference set) and Holm's step-down across arms, an arm that crosses is decided
(``helps``/``hurts``) and stops; an arm whose conditional power at the last look (under its current
estimate, at its current Holm level) is below ``futility`` stops too — the rule is non-binding: the
boundaries ignore it, so stopping early can only lower the error rate. The controls (``Design.keep``) are
spared the rule until the first look that can decide (:func:`~mmdata.ablate.stats.first_deciding_look`):
a control stopped before any verdict was possible would check nothing. Only arms still open get the
seeds of the next look; the baseline runs as far as the furthest open arm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmdata.ablate.stats import (ALPHA, MIN_SEEDS, Looks, conditional_power, crossings_many, first_deciding_look,
                                 holm_levels)

DEFAULT_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SPENDING_NAMES = {"obf": "Lan-DeMets O'Brien-Fleming", "hsd": "Hwang-Shih-DeCani (gamma -4, O'Brien-Fleming-type)",
                  "hsd-2": "Hwang-Shih-DeCani (gamma -2)", "linear": "linear (alpha * t, Pocock-like)"}
FUTILITY = 0.1


def default_looks(max_seeds: int) -> Looks:
    """Planned looks for an adaptive design with ``max_seeds`` seeds per arm.

    Example:
        >>> default_looks(20).sizes
        (10, 12, 14, 16, 18, 20)
    """
    sizes: list[int] = []
    for f in DEFAULT_FRACTIONS:
        n = max(MIN_SEEDS, int(round(f * max_seeds)))
        if not sizes or n > sizes[-1]:
            sizes.append(n)
    return Looks(tuple(sizes))


@dataclass
class Design:
    """How many seeds each arm gets: one look (fixed) or planned looks with early stopping (adaptive)."""

    looks: Looks
    adaptive: bool = False
    alpha: float = ALPHA
    futility: float = FUTILITY
    #: arms the futility rule spares until the first look that can decide (the controls: an ``identity``
    #: control stopped before any verdict was possible checks nothing — the demo's stopped at 8 of 11 seeds)
    keep: tuple[str, ...] = ()
    #: arms known before any run to test nothing (an ``identity`` control whose baseline draws nothing): outside the
    #: Holm family, as a failed arm, so they cost the other arms no α (QA34: one such slot turned 7-seed verdicts
    #: into "inconclusive by design")
    outside: tuple[str, ...] = ()

    @classmethod
    def fixed(cls, seeds: int, alpha: float = ALPHA, outside: tuple[str, ...] = ()) -> Design:
        return cls(Looks((seeds,)), adaptive=False, alpha=alpha, futility=0.0, outside=tuple(outside))

    @classmethod
    def sequential(cls, max_seeds: int, looks: tuple[int, ...] | None = None, alpha: float = ALPHA,
                   futility: float = FUTILITY, spending: str = "hsd", keep: tuple[str, ...] = (),
                   outside: tuple[str, ...] = ()) -> Design:
        lk = Looks(tuple(looks) if looks else default_looks(max_seeds).sizes, spending)
        if lk.max != max_seeds:
            raise ValueError(f"the last look ({lk.max}) must equal the maximum seeds per arm ({max_seeds})")
        return cls(lk, adaptive=True, alpha=alpha, futility=futility, keep=tuple(keep), outside=tuple(outside))

    def to_dict(self) -> dict[str, Any]:
        return {"adaptive": self.adaptive, "looks": list(self.looks.sizes), "alpha": self.alpha,
                "futility": self.futility if self.adaptive else None,
                "spending": SPENDING_NAMES[self.looks.spending] if self.adaptive else None,
                **({"futility_spares": list(self.keep)} if self.adaptive and self.keep else {}),
                **({"outside_holm": list(self.outside)} if self.outside else {})}


@dataclass
class ArmState:
    """Where one arm stands: ``open`` (more seeds to come), ``rejected`` (decided), ``futile`` or
    ``complete`` (stopped without rejection), ``failed`` (fewer than 2 paired seeds once a look's runs
    were all tried: out of the Holm family, no more seeds); ``looks``: looks its data reach."""

    status: str = "open"
    looks: int = 0
    stopped_at: int | None = None  # seed count at which it stopped
    divisor: int = 0
    cp: float | None = None


@dataclass
class State:
    """The design's state after the looks completed so far."""

    arms: dict[str, ArmState] = field(default_factory=dict)
    looks_done: int = 0

    @property
    def open_arms(self) -> list[str]:
        return [a for a, s in self.arms.items() if s.status == "open"]


def walk(diffs: Mapping[str, Mapping[int, float]], design: Design, looks_done: int,
         cross: Mapping[str, np.ndarray] | None = None) -> State:
    """Replay the design's decisions over the first ``looks_done`` looks.

    Args:
        diffs: arm -> {seed: arm - baseline} (the runs done; seeds an arm did not need are absent).
        design: the design.
        looks_done: looks whose seeds every arm still open at that look has finished (tried: a failed
            run counts as tried and leaves its seed out).
        cross: per arm, :func:`crossings` over at least ``looks_done`` looks (computed when absent;
            a boundary at look j depends on the seeds before look j only, so a longer one can be reused).

    Returns:
        The state: per arm its status and the looks its data reach.
    """
    lk = design.looks
    m = len(diffs)
    names = list(diffs)
    levels = [design.alpha / s for s in range(1, m + 1)]
    outside = set(design.outside)
    cross = dict(cross or {})
    todo = [n for n in names if n not in cross or cross[n].shape[1] < looks_done]
    cross.update(zip(todo, _crossings([diffs[n] for n in todo], lk, levels, [looks_done] * len(todo))))
    state = State({n: ArmState() for n in names}, looks_done)
    # the look from which futility may stop a kept arm (a control): the first at which it could be decided
    in_family = max(m - len(outside & set(names)), 1)
    spared = (first_deciding_look(lk, design.alpha / in_family) or 1) if design.keep and design.adaptive else 1
    for j in range(looks_done):
        for name in names:  # every run of the look tried and fewer than 2 paired seeds: the arm's runs fail
            st = state.arms[name]
            if st.status == "open" and sum(1 for s in diffs[name] if s < lk.sizes[j]) < MIN_SEEDS:
                st.status, st.stopped_at, st.looks = "failed", lk.sizes[j], j + 1
        # a failed arm leaves the Holm family: it holds no slot the others' levels pay for (its runs
        # failing says nothing of its effect); a rerun retries its runs, and the replay takes it back
        # an arm known not to test anything (design.outside) holds none either: it runs, but is never declared
        keep = [i for i, name in enumerate(names) if state.arms[name].status != "failed" and name not in outside]
        by = np.zeros((len(keep), len(keep)), dtype=bool)
        for row, i in enumerate(keep):
            st = state.arms[names[i]]
            last = j if st.status == "open" else st.looks - 1
            by[row] = cross[names[i]][: len(keep), : last + 1].any(axis=1)
        rejected, divisor = np.zeros(m, dtype=bool), np.zeros(m, dtype=np.int64)
        if keep:
            rejected[keep], divisor[keep] = holm_levels(by)
        for i, name in enumerate(names):
            st = state.arms[name]
            st.divisor = int(divisor[i])
            if st.status == "open":
                st.looks = j + 1
            if rejected[i] and st.status != "rejected":
                if st.status == "open":
                    st.stopped_at = lk.sizes[j]
                st.status = "rejected"
        if j + 1 == len(lk.sizes):
            for st in state.arms.values():
                if st.status == "open":
                    st.status, st.stopped_at = "complete", lk.sizes[j]
            break
        if design.adaptive and design.futility > 0:
            left = int(np.count_nonzero(~rejected[keep])) if keep else 0
            for name in names:
                st = state.arms[name]
                if st.status != "open":
                    continue
                d = [v for s, v in sorted(diffs[name].items()) if s < lk.sizes[j]]
                st.cp = conditional_power(d, lk.max, design.alpha / max(left, 1))
                if st.cp < design.futility and not (name in design.keep and j + 1 < spared):
                    st.status, st.stopped_at = "futile", lk.sizes[j]
    return state


def _crossings(ds: list[Mapping[int, float]], lk: Looks, levels: list[float], n_looks: list[int]) -> list[np.ndarray]:
    """Crossings of several arms; an arm with fewer than 2 seeds in its looks crosses nothing."""
    cut = [{s: v for s, v in d.items() if s < lk.sizes[k - 1]} if k else {} for d, k in zip(ds, n_looks)]
    ok = [i for i, d in enumerate(cut) if len(d) >= MIN_SEEDS]
    out = [np.zeros((len(levels), k), dtype=bool) for k in n_looks]
    for i, c in zip(ok, crossings_many([cut[i] for i in ok], lk, levels, [n_looks[i] for i in ok])):
        out[i] = c
    return out


def paired_diffs(values: Mapping[str, Mapping[int, float]], baseline: str, arms: list[str]) -> dict[str, dict[int, float]]:
    """arm -> {seed: arm - baseline} on the seeds both finished."""
    base = values.get(baseline, {})
    return {a: {s: float(v) - float(base[s]) for s, v in sorted(values.get(a, {}).items()) if s in base} for a in arms}


def next_runs(design: Design, baseline: str, arms: list[str], values: Mapping[str, Mapping[int, float]],
              tried: Mapping[str, set[int]]) -> tuple[State, dict[str, list[int]]]:
    """The state after every complete look, and the seeds each configuration must run next.

    Args:
        design: the design.
        baseline: the baseline's name; ``arms``: the other configurations, in order.
        values: configuration -> {seed: primary metric} of the finished runs.
        tried: configuration -> seeds run or failed in this session (a failed seed is not retried
            until the next session, and its look completes without it).

    Returns:
        ``(state, need)``: ``need`` maps a configuration to the seeds it still needs for the next
        look (empty when the design is complete).
    """
    diffs = paired_diffs(values, baseline, arms)
    k_max = len(design.looks.sizes)
    levels = [design.alpha / s for s in range(1, len(arms) + 1)]
    # crossings over every look the seeds present could reach, computed once and sliced per look
    reach = {a: design.looks.reached(max(d) + 1 if d else 0) for a, d in diffs.items()}
    cross = dict(zip(diffs, _crossings(list(diffs.values()), design.looks, levels, [reach[a] for a in diffs])))
    looks_done = 0
    while True:
        state = walk(diffs, design, looks_done, cross)
        if looks_done == k_max or (looks_done and not state.open_arms):
            return state, {}
        n = design.looks.sizes[looks_done]
        need: dict[str, list[int]] = {}
        for a in [baseline, *state.open_arms]:
            missing = [s for s in range(n) if s not in tried.get(a, set())]
            if missing:
                need[a] = missing
        if need:
            return state, need
        looks_done += 1
