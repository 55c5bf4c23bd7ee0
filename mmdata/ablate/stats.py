"""Paired statistics for augmentation ablations: exact sign-flip tests, group-sequential boundaries,
Holm across arms, and confidence intervals that agree with the decisions.

For each arm, the data are the per-seed paired differences ``d_s = arm_s - baseline_s`` (same seed:
same initialisation, data order and augmentation draws of every op the two share).

**Test.** Under "the arm has no effect" each ``d_s`` is symmetric about 0, so flipping its sign
gives an equally likely data set. The two-sided statistic is ``|sum(d)|``; its reference set is all
``2^n`` sign patterns when ``n <= EXACT_MAX`` seeds, otherwise the observed pattern plus
``N_RANDOM`` random ones (Monte-Carlo p-values are then ``(b + 1) / (N + 1)``, never 0).

**Looks.** A design has planned looks at cumulative seed counts ``n_1 < ... < n_K`` (a fixed design
has one look). At look ``j`` the boundary is calibrated on the same reference set, by counting
patterns: of the ``R`` reference patterns, at most ``floor(alpha(t_j) * R)`` may have crossed by
look ``j``, where ``alpha(t)`` is an O'Brien–Fleming-type spending function (Hwang–Shih–DeCani with
gamma = -4 by default, or Lan–DeMets' O'Brien–Fleming) and ``t_j = n_j / n_K``. The observed pattern is one member of the set, so under the null the chance that
it crosses at any look is at most ``alpha`` (Hemerik & Goeman 2018 for the random-pattern case); the
boundary at look ``j`` depends only on the first ``n_j`` seeds, so it is the same whenever it is
recomputed (resume mid-sequence gives the same decisions).

**Arms.** Holm's step-down across the ``m`` arms: the tests at levels ``alpha/m, ..., alpha/1`` are
nested by construction (a crossing at a smaller level is a crossing at every larger one), so the
shortcut equals the closed test. An arm rejected at level ``alpha/|I|`` leaves the remaining arms the
larger level ``alpha/(|I|-1)`` at every look so far (Holm recycling across a group-sequential design,
Maurer & Bretz 2013).

**Intervals.** Each arm's interval inverts the same sequential test at the arm's Holm level (the level
at which it was rejected, or ``alpha/|I|`` for the arms left), so the interval excludes 0 exactly when
the arm is declared to help or hurt. ``equivalent`` needs that interval inside ``±delta`` (``delta > 0``: at
``delta = 0`` it is unreachable, and an arm that is not declared reads ``inconclusive``).

**Cost.** The test at level ``alpha/s`` carries the boundaries of every larger level (nesting), so done
level by level an arm cost O(arms) and a family O(arms²) — a minute at 400 arms. Levels whose budgets
agree at every look cross alike, and ``floor(alpha/s * R)`` takes only about ``2 sqrt(alpha R)`` values,
so each run of such levels is worked out once (:func:`_level_groups`, :func:`_chain`), and the interval's
bisection tests each shift against those distinct boundaries only (:class:`_ShiftTest`): the same
answers to the last bit (tests/ablate/test_stats_scale.py), in under 2 s at 400 arms x 50 seeds (93 s).

Example:
    >>> round(sign_flip_p([1.0] * 5), 4)
    0.0625
    >>> r = analyze({"a": {s: 2.0 + 0.1 * s for s in range(10)}}, delta=1.0)
    >>> r["a"]["decision"], r["a"]["ci"][0] > 0
    ('helps', True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.05
EXACT_MAX = 14  # all 2^n sign patterns up to 14 seeds (16,384 rows)
N_RANDOM = 2**14 - 1  # random sign patterns beyond that, plus the observed one
MIN_SEEDS = 2  # fewer paired seeds than this: no verdict ("pending")
DECISIONS = ("helps", "hurts", "helps (negligible)", "hurts (negligible)", "equivalent", "inconclusive", "pending",
             "failed", "not applicable")
#: what :func:`mde` computes, for the report and summary.json (QA34: read as the exact test's power, it was optimistic)
MDE_METHOD = ("paired-t approximation at the arm's level, 80% power; optimistic for the exact sign-flip test with "
              "few seeds (at the reported MDE its power is about 60-75% with 6-12 seeds, near 80% from about 20)")


def obf_spending(alpha: float, t: float) -> float:
    """Lan–DeMets O'Brien–Fleming-type spending function (two-sided): alpha spent by information ``t``.

    Example:
        >>> obf_spending(0.05, 1.0)
        0.05
        >>> round(obf_spending(0.05, 0.5), 5)
        0.00557
    """
    from scipy.special import ndtr, ndtri

    if t >= 1.0:
        return float(alpha)
    if t <= 0.0:
        return 0.0
    return float(min(alpha, 2.0 * ndtr(ndtri(alpha / 2.0) / math.sqrt(t))))


def hsd_spending(alpha: float, t: float, gamma: float = -4.0) -> float:
    """Hwang–Shih–DeCani spending function; ``gamma = -4`` is the O'Brien–Fleming-type member (gsDesign's
    ``sfHSD`` default for an O'Brien–Fleming-like bound), spending a little more early than Lan–DeMets.

    Example:
        >>> round(hsd_spending(0.05, 0.5), 5)
        0.00596
    """
    if t >= 1.0:
        return float(alpha)
    if t <= 0.0:
        return 0.0
    return float(alpha * (1.0 - math.exp(-gamma * t)) / (1.0 - math.exp(-gamma)))


def hsd2_spending(alpha: float, t: float) -> float:
    """Hwang–Shih–DeCani with ``gamma = -2``: spends more early than the default ``-4`` (between
    O'Brien–Fleming and Pocock); one of the designs ``benchmarks/adaptive_sim.py --sweep`` compares.

    Example:
        >>> round(hsd2_spending(0.05, 0.5), 5)
        0.01345
    """
    return hsd_spending(alpha, t, gamma=-2.0)


def linear_spending(alpha: float, t: float) -> float:
    """``alpha * t`` (Hwang–Shih–DeCani's ``gamma -> 0`` limit, Pocock-like): the most early spending of
    the family; saves runs on large effects and costs power on small ones (see docs/ablation.md).

    Example:
        >>> linear_spending(0.05, 0.5)
        0.025
    """
    return float(alpha * min(max(t, 0.0), 1.0))


SPENDING = {"obf": obf_spending, "hsd": hsd_spending, "hsd-2": hsd2_spending, "linear": linear_spending}


@functools.lru_cache(maxsize=256)
def _budgets(fractions: tuple[float, ...], levels: tuple[float, ...], rows: int, spending: str) -> np.ndarray:
    """``[look, level]``: how many of ``rows`` reference patterns may have crossed by each look."""
    f = SPENDING[spending]
    return np.array([[math.floor(f(a, t) * rows + 1e-9) for a in levels] for t in fractions], dtype=np.int64)


@functools.lru_cache(maxsize=8)
def sign_patterns(n: int) -> np.ndarray:
    """The reference sign patterns for ``n`` seeds, row 0 the observed (all +1) pattern.

    All ``2^n`` patterns when ``n <= EXACT_MAX``, else the observed one and ``N_RANDOM`` random ones
    drawn from a fixed seed (so every analysis of the same data gives the same answer). Column ``s``
    belongs to seed index ``s``: the first ``n_j`` columns are the reference set of look ``j``.
    """
    if n <= EXACT_MAX:
        bits = (np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)) & 1
        out = 1.0 - 2.0 * bits.astype(np.float64)
    else:
        from mmdata.rng import derive

        out = derive(0, 0, "mmdata.ablate.sign_flip", n).choice([-1.0, 1.0], size=(N_RANDOM + 1, n))
        out[0] = 1.0
    out.setflags(write=False)
    return out


def sign_flip_p(d: Sequence[float]) -> float:
    """Two-sided sign-flip p-value of ``mean(d) == 0``: exact up to ``EXACT_MAX`` values, else
    Monte-Carlo ``(b + 1) / (N + 1)`` with the observed pattern counted once.

    Example:
        >>> sign_flip_p([1.0] * 10) == 2 / 1024
        True
        >>> sign_flip_p([0.0, 0.0, 0.0])
        1.0
    """
    x = np.asarray(d, dtype=float)
    if np.isnan(x).any():
        raise ValueError("sign_flip_p: the differences contain NaN (a failed run must be left out, not tested)")
    if len(x) == 0:
        return 1.0
    stats = np.abs(sign_patterns(len(x)) @ x)
    obs = abs(float(x.sum()))
    return float(np.count_nonzero(stats >= obs - 1e-9 * max(1.0, obs))) / len(stats)


# ---------------------------------------------------------------------------------------------
# group-sequential sign-flip test


@dataclass(frozen=True)
class Looks:
    """Planned looks: cumulative numbers of paired seeds, e.g. ``(10, 12, 14, 16, 18, 20)``, and the
    alpha-spending function (``obf``: Lan–DeMets O'Brien–Fleming; ``hsd``: Hwang–Shih–DeCani
    gamma = -4). One look is a fixed design (all alpha at that look).

    Example:
        >>> Looks((10, 15, 20)).fractions
        (0.5, 0.75, 1.0)
    """

    sizes: tuple[int, ...]
    spending: str = "hsd"

    def __post_init__(self) -> None:
        s = tuple(int(v) for v in self.sizes)
        if not s or any(b <= a for a, b in zip(s, s[1:])) or s[0] < 1:
            raise ValueError(f"looks must be increasing positive seed counts, got {list(self.sizes)}")
        if self.spending not in SPENDING:
            raise ValueError(f"spending {self.spending!r}: choose one of {sorted(SPENDING)}")
        object.__setattr__(self, "sizes", s)

    @property
    def max(self) -> int:
        return self.sizes[-1]

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(n / self.max for n in self.sizes)

    def reached(self, n_done: int) -> int:
        """How many looks ``n_done`` seeds (indices ``0..n_done-1``) complete."""
        return sum(1 for n in self.sizes if n <= n_done)


def _tol(x: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)


def crossings(d: Mapping[int, float], looks: Looks, levels: Sequence[float], n_looks: int | None = None) -> np.ndarray:
    """Whether the observed differences cross the sequential boundary, per level and look.

    Args:
        d: paired difference per seed index (seeds missing from the mapping are left out of every look).
        looks: the planned looks; boundaries spend ``looks.spending`` at ``n_j / looks.max``.
        levels: significance levels in decreasing order (``alpha/1, alpha/2, ...``); the crossing
            regions are nested: crossing at ``levels[l]`` implies crossing at ``levels[l - 1]``.
        n_looks: evaluate only the first ``n_looks`` looks (default: all looks the seeds reach).

    Returns:
        bool array ``[len(levels), n_looks]``; row ``l`` column ``j``: crossed at look ``j`` (first time
        or again) at level ``levels[l]``.
    """
    return crossings_many([d], looks, levels, [n_looks])[0]


def crossings_many(ds: Sequence[Mapping[int, float]], looks: Looks, levels: Sequence[float],
                   n_looks: Sequence[int | None] | None = None) -> list[np.ndarray]:
    """:func:`crossings` for several arms at once (one matrix product for all)."""
    lv = [float(v) for v in levels]
    if any(b > a for a, b in zip(lv, lv[1:])):
        raise ValueError("levels must be in decreasing order")
    E = sign_patterns(looks.max)
    R = E.shape[0]
    ks: list[int] = []
    cols = []
    for i, d in enumerate(ds):
        seeds = sorted(s for s in d if s < looks.max)
        x = np.zeros(looks.max)
        for s in seeds:
            x[s] = float(d[s])
        k = (n_looks or [None] * len(ds))[i]
        k = looks.reached(max(seeds) + 1 if seeds else 0) if k is None else int(k)
        ks.append(k)
        for n in looks.sizes[:k]:
            c = np.zeros(looks.max)
            c[:n] = x[:n]
            cols.append(c)
    outs = [np.zeros((len(lv), k), dtype=bool) for k in ks]
    if not cols:
        return outs
    # |partial sums| of every reference pattern at every look of every arm (absent seeds are 0)
    cums = np.ascontiguousarray(np.abs(np.stack(cols) @ E.T))  # [column, pattern]: rows are contiguous
    budgets = _budgets(looks.fractions[: max(ks)], tuple(lv), R, looks.spending)
    # a screen that changes no answer: if the observed pattern (row 0) crosses at look j, every alive
    # pattern at least as large crosses with it, so at most budget_j + crossed_{j-1} <= 2 * budget_j
    # patterns are >= it; an arm with more at every look crosses nowhere (most null arms)
    look_of = np.array([j for k in ks for j in range(k)])
    possible = np.count_nonzero(cums >= cums[:, :1], axis=1) <= 2 * budgets[look_of, 0]
    starts = np.cumsum([0, *ks])
    # levels whose budgets agree at every look cross alike (Holm's alpha/s for large s mostly do):
    # each run of them is worked out once, so an arm costs O(distinct boundaries), not O(arms)
    first, group = _level_groups(budgets)
    for i, k in enumerate(ks):
        c0 = int(starts[i])
        if k and possible[c0 : c0 + k].any():
            block = cums[c0 : c0 + k]
            outs[i] = _chain(block, budgets[:k, first], _tol(block))[group]
    return outs


def _level_groups(budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, group)``: the first level of each run of consecutive levels whose budgets agree at every
    look, and each level's run. Two such levels cross at exactly the same looks (same budgets, and the
    nesting carries the larger level's threshold over), so one of them stands for the run."""
    new = np.ones(budgets.shape[1], dtype=bool)
    new[1:] = (budgets[:, 1:] != budgets[:, :-1]).any(axis=0)
    return np.flatnonzero(new), np.cumsum(new) - 1


def _chain(cums: np.ndarray, budgets: np.ndarray, tol: float, stop: int | None = None) -> np.ndarray:
    """The sequential boundary of one arm at every level at once: bool ``[levels, looks]``, crossed at
    look ``j`` at level ``l`` (what :func:`crossings` returns).

    ``cums[j]``: |partial sum| of every reference pattern at look ``j`` (pattern 0 observed);
    ``budgets[j, l]``: how many patterns may have crossed by look ``j`` at level ``l`` (levels in
    decreasing order). At each look and level the threshold is the value of the ``kk``-th largest
    pattern not yet crossed (``kk`` = budget left), raised to the larger level's threshold (nesting);
    patterns above it plus ``tol`` cross and stay crossed. Every quantity is a value of ``cums``, never a
    pattern's rank among ties, so any sort gives the same answer. ``stop``: return once level ``stop``
    crosses (the later looks left False)."""
    k, n_levels = budgets.shape
    R = cums.shape[1]
    out = np.zeros((n_levels, k), dtype=bool)
    levels = np.arange(n_levels)
    # thresholds rise with the level index, so a pattern that crossed at a level crossed at every
    # larger level too: the state of all levels is one number per pattern, how many levels (from the
    # first) it has crossed at
    gone = np.zeros(R, dtype=np.int64)
    crossed = np.zeros(n_levels, dtype=np.int64)
    for j in range(k):
        col = cums[j]
        # the kk-th pattern still alive lies among the largest budget + 1 (at most `crossed` of them
        # are dead and kk + crossed = budget), and whatever lies above a threshold lies among them too
        w = min(R, int(budgets[j].max()) + 1)
        if w < R:
            top = np.argpartition(-col, w - 1)[:w]
            top = top[np.argsort(-col[top], kind="stable")]
        else:
            top = np.argsort(-col, kind="stable")
        vals = col[top]
        kk = budgets[j] - crossed
        # the kk-th alive pattern sits at kk + the dead ones before it: the i-th dead one (at position
        # q) comes before it when the q - i alive ones ahead of it are at most kk
        dpos = np.flatnonzero(gone[top])
        if len(dpos):
            dead = gone[top[dpos]][None, :] > levels[:, None]
            rank = np.cumsum(dead, axis=1) - dead
            kk_pos = kk + np.count_nonzero(dead & (dpos[None, :] - rank <= kk[:, None]), axis=1)
        else:
            kk_pos = kk
        own = np.where(kk <= 0, np.inf, np.where(kk >= R - crossed, -np.inf, vals[np.clip(kk_pos, 0, w - 1)]))
        thr = np.maximum.accumulate(own) + tol  # nesting: never cross where a larger level does not
        at = np.arange(R) if thr[0] == -np.inf else top  # a budget of every pattern: all alive ones cross
        was = gone[at]
        now = np.maximum(was, np.searchsorted(thr, col[at], side="left"))  # levels whose threshold it passes
        up = now > was
        if up.any():
            crossed += np.cumsum(np.bincount(was[up], minlength=n_levels + 1)
                                 - np.bincount(now[up], minlength=n_levels + 1))[:n_levels]
            at0 = np.flatnonzero(at == 0)
            if len(at0):  # the observed pattern, newly crossed at levels [was, now)
                out[:, j] = (levels >= was[at0[0]]) & (levels < now[at0[0]])
            gone[at] = now
        if stop is not None and out[stop, j]:
            break
    return out


def holm_levels(crossed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down on nested tests.

    Args:
        crossed: bool ``[arms, m]``; ``crossed[i, s - 1]``: arm ``i`` crossed (at any look so far) at
            level ``alpha / s``.

    Returns:
        ``(rejected, divisor)``: per arm, whether it is rejected and the ``s`` of its Holm level
        ``alpha / s`` (the level it was rejected at, or ``|I|`` for the arms left).
    """
    m = crossed.shape[0]
    rejected = np.zeros(m, dtype=bool)
    divisor = np.zeros(m, dtype=np.int64)
    left = list(range(m))
    while left:
        s = len(left)
        hit = [i for i in left if crossed[i, s - 1]]
        if not hit:
            break
        for i in hit:
            rejected[i] = True
            divisor[i] = s
        left = [i for i in left if i not in hit]
    for i in left:
        divisor[i] = len(left)
    return rejected, divisor


#: an interval's bisection stops within this share of :func:`_ci_span` (at least 1) of the end
CI_TOL = 1e-4


def _ci_span(vals: np.ndarray) -> float:
    """The scale of :func:`sequential_ci`'s bisection for the differences ``vals``."""
    return float(vals.max() - vals.min()) + abs(float(vals.mean())) + 1.0


def sequential_ci(d: Mapping[int, float], looks: Looks, levels: Sequence[float], level_index: int,
                  n_looks: int | None = None, anchors: Sequence[float] = (0.0,)) -> tuple[float, float]:
    """The interval of shifts ``mu`` the sequential test of ``mean(d) == mu`` does not reject at
    ``levels[level_index]`` by look ``n_looks`` (bisection; ``±inf`` when no shift is rejected).

    The set is closed (ties count against rejecting) and its ends are means of subsets of ``d``, so a
    bisection stops just short of an end. ``anchors`` — the shifts decisions are taken at: 0 (helps /
    hurts), ``±delta`` (equivalent) — are tested exactly where one lies in the last bracket: with ties
    at 0 (common with accuracies) an interval of an arm not rejected ended at -0.0008, excluding 0.

    Each shift is tested as ``crossings(shifted d, looks, levels[: level_index + 1], n_looks)[-1].any()``
    would, in time that does not grow with the number of levels (:class:`_ShiftTest`).

    Example:
        >>> lo, hi = sequential_ci(dict(enumerate([1.0, 2.0, 1.5, 2.5, 1.0, 2.0, 3.0, 1.5])), Looks((8,)), [0.05], 0)
        >>> 0 < lo < 1.9 < hi
        True
    """
    vals = np.array([float(v) for v in d.values()])
    if len(vals) == 0:
        return (-math.inf, math.inf)
    mean = float(vals.mean())
    span = _ci_span(vals)
    rejects = _ShiftTest(d, looks, list(levels)[: level_index + 1], n_looks).rejects

    def bound(direction: float) -> float:
        got = outward_bracket(rejects, mean, span, direction, steps=40, tol=CI_TOL)
        if got is None:
            return direction * math.inf
        near, far = got
        for c in sorted(anchors, key=lambda c: -direction * c):  # the farthest anchor in the bracket first
            if (c - near) * direction > 0 and (far - c) * direction >= 0 and not rejects(c):
                return float(c)
        return near

    return (bound(-1.0), bound(1.0))


def outward_bracket(rejects: Any, centre: float, span: float, direction: float, *, steps: int,
                    tol: float) -> tuple[float, float] | None:
    """The edge of the shifts a test does not reject, bisected outwards from ``centre`` (not rejected) in
    ``direction``: ``(near, far)`` with ``near`` not rejected and ``far`` rejected, ``steps`` halvings at most,
    stopping at a width of ``tol * max(1, span)``; None when even ``centre + 100 span`` is not rejected
    (the interval is unbounded that way).

    Example:
        >>> near, far = outward_bracket(lambda mu: abs(mu) > 2.0, 0.0, 1.0, 1.0, steps=60, tol=1e-9)
        >>> round(near, 6), near <= 2.0 < far
        (2.0, True)
    """
    far = centre + direction * span
    if not rejects(far):
        far = centre + direction * span * 100
        if not rejects(far):
            return None
    near = centre
    for _ in range(steps):
        mid = 0.5 * (near + far)
        if rejects(mid):
            far = mid
        else:
            near = mid
        if abs(far - near) <= tol * max(1.0, span):
            break
    return near, far


class _ShiftTest:
    """Whether the sequential test of ``mean(d) == mu`` rejects at the last of ``levels``, for the many
    ``mu`` of an interval's bisection: ``crossings({s: v - mu}, looks, levels, n_looks)[-1].any()``, the
    same floating-point sums included (same matrix product, same tolerance), so the same answer.

    What does not depend on ``mu`` is worked out once: the seeds' layout, the budgets, and the runs of
    levels that share a boundary (:func:`_level_groups`). Then per shift: a count that rules out most
    shifts on the accepting side, a closed form for one look (no pattern has crossed before it, so the
    nested threshold is the largest of the levels' own, the one of the smallest budget), and otherwise
    :func:`_chain` over the distinct boundaries only (tens at 400 arms, not 400)."""

    def __init__(self, d: Mapping[int, float], looks: Looks, levels: Sequence[float], n_looks: int | None) -> None:
        lv = [float(v) for v in levels]
        if any(b > a for a, b in zip(lv, lv[1:])):
            raise ValueError("levels must be in decreasing order")
        self.n = looks.max
        self.E = sign_patterns(self.n)
        seeds = sorted(s for s in d if s < self.n)
        self.seeds = np.array(seeds, dtype=np.int64)
        self.x = np.array([float(d[s]) for s in seeds])
        k = looks.reached(max(seeds) + 1 if seeds else 0) if n_looks is None else int(n_looks)
        self.sizes = looks.sizes[:k]
        if k:
            budgets = _budgets(looks.fractions[:k], tuple(lv), self.E.shape[0], looks.spending)
            self.budgets = budgets[:, _level_groups(budgets)[0]]  # the tested level's run is the last
            self.first_level = budgets[:, 0]

    def rejects(self, mu: float) -> bool:
        if not self.sizes:
            return False
        x = np.zeros(self.n)
        x[self.seeds] = self.x - mu  # float(v) - mu, as crossings() is given it
        cols = np.zeros((len(self.sizes), self.n))
        for j, n in enumerate(self.sizes):
            cols[j, :n] = x[:n]
        cums = np.ascontiguousarray(np.abs(cols @ self.E.T))
        at_least = np.count_nonzero(cums >= cums[:, :1], axis=1)
        if not (at_least <= 2 * self.first_level).any():  # crossings_many's screen (it changes no answer)
            return False
        # crossing at look j means every pattern >= the observed one crossed by then (the alive ones
        # above the threshold number at most the budget left, the dead ones what was spent before)
        last = np.flatnonzero(at_least <= self.budgets[:, -1])
        if not len(last):
            return False
        tol = _tol(cums)
        if len(self.sizes) == 1:
            b = int(self.budgets[0].min())
            col = cums[0]
            if b <= 0:
                return False
            if b >= len(col):
                return True
            tau = np.partition(col, len(col) - 1 - b)[len(col) - 1 - b]  # the b-th largest (0-based)
            return bool(col[0] > tau + tol)
        end = int(last[-1]) + 1
        target = self.budgets.shape[1] - 1
        return bool(_chain(cums[:end], self.budgets[:end], tol, stop=target)[target].any())


# ---------------------------------------------------------------------------------------------
# descriptive pieces


def wilson(k: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n``.

    Example:
        >>> [round(v, 3) for v in wilson(7, 10)]
        [0.397, 0.892]
    """
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, c - h), min(1.0, c + h))


def look_level(looks: Looks, level: float, k: int) -> float:
    """The α a sequential design has spent by its ``k``-th look (1-based; the first look for ``k < 1``)
    out of ``level``: the whole ``level`` for a single look (a fixed design), a share of it otherwise —
    about the level an arm that stopped at that look was tested at (what its MDE is computed at; the
    boundary counts the reference patterns crossed by that look, so the spend is cumulative).

    Example:
        >>> look_level(Looks((10,)), 0.05, 1)
        0.05
        >>> look_level(Looks((8, 16), "obf"), 0.05, 1) < 0.01
        True
    """
    f = SPENDING[looks.spending]
    fr = looks.fractions
    j = min(max(k, 1), len(fr)) - 1
    return float(f(level, fr[j]))


def mde(sd: float, n: int, level: float, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided level-``level`` test on ``n`` paired seeds detects
    with probability ``power`` (paired t approximation).

    The decision's test is the exact sign-flip test, which is discrete: with few seeds and a strict Holm level
    it rejects only when (almost) every seed has one sign, so its power at this MDE is below ``power`` — about
    0.60-0.75 at 6-12 seeds and levels 0.05/8 to 0.05, close to 0.8 from about 20 seeds (QA34 simulation).
    The report labels it so (:data:`MDE_METHOD`); treat it as a lower bound of what the seeds can detect.

    ``inf`` where no effect is detectable: below 2 seeds, or where the exact sign-flip test cannot
    reach ``level`` at all (its smallest two-sided p is ``2 / 2**n``: 0.0625 at 5 seeds). ``nan``
    (unknown) when every difference is equal: a zero sd says nothing about the noise, and an MDE of
    0 would claim any effect is detectable."""
    from scipy.special import stdtrit

    if n < 2 or not np.isfinite(sd) or 2.0 ** (1 - n) > level:
        return math.inf
    if sd == 0:
        return math.nan
    return float((stdtrit(n - 1, 1 - level / 2) + stdtrit(n - 1, power)) * sd / math.sqrt(n))


#: differences whose sd is below this share of their magnitude are equal up to float rounding
SD_NOISE_FLOOR = 1e-12


def paired_sd(x: np.ndarray, values: bool = False) -> float:
    """The sd of paired differences (ddof 1; NaN below 2), 0 when they are equal up to float rounding:
    below :data:`SD_NOISE_FLOOR` times their magnitude (at least 1: differences of two arms' values in
    reporting units carry those values' rounding, whatever their own size). A deterministic trainer's arm
    that adds the same amount on every seed gave sd 3.7e-15 and d_z 2.7e15 — rounding, not a measurement —
    where exactly equal differences give sd 0 and no d_z.

    ``values=True``: ``x`` are one arm's values themselves (a pilot's, for δ), so the floor is relative to
    their own magnitude only: a metric of size 3e-12 with a real spread of 5e-13 keeps its sd (QA: the
    floor of 1e-12 zeroed it), while 10/11 on every seed (sd 1.7e-14) is 0.

    Example:
        >>> paired_sd(np.array([9.9, 9.9 + 4e-15, 9.9 - 3e-15])), paired_sd(np.array([1.0, 2.0]))
        (0.0, 0.7071067811865476)
        >>> paired_sd(np.array([3e-12, 3.5e-12, 4e-12]), values=True) > 0
        True
    """
    if len(x) < 2:
        return math.nan
    sd = float(x.std(ddof=1))
    scale = float(np.abs(x).max())
    return 0.0 if sd < SD_NOISE_FLOOR * (scale if values else max(1.0, scale)) else sd


def t_interval(groups: Sequence[Sequence[float]]) -> list[float] | None:
    """The unadjusted 95% t interval of the mean of the groups' mean paired differences (one group per fold)
    on the stratified standard error, df = sum of n_k - 1: one group is the paired t interval. ``[-inf, inf]``
    when a group has fewer than 2 differences; None when no group has spread (each one's differences equal up
    to rounding): a t interval is then undefined (scipy gives NaN), not zero-width — ``[+0.00, +0.00]`` read
    as a very precise null for a metric that never varied (QA29 stats #4; ``mmdata ablate-folds`` too, review r2).

    Example:
        >>> [round(v, 3) for v in t_interval([[1.0, 2.0, 3.0]])], t_interval([[0.5, 0.5], [0.7, 0.7]])
        ([-0.484, 4.484], None)
        >>> t_interval([[1.0]])
        [-inf, inf]
    """
    from scipy.special import stdtrit

    if not groups or min(len(g) for g in groups) < 2:
        return [-math.inf, math.inf]
    x = [np.asarray(g, dtype=float) for g in groups]
    var = sum(paired_sd(g) ** 2 / len(g) for g in x)
    if var == 0:
        return None
    est = float(np.mean([g.mean() for g in x]))
    h = float(stdtrit(sum(len(g) - 1 for g in x), 0.975)) * math.sqrt(var) / len(x)
    return [est - h, est + h]


def min_seeds_for_verdict(alpha: float, arms: int) -> int:
    """Fewest paired seeds with which any of ``arms`` arms can be decided at family-wise ``alpha``: the
    exact two-sided sign-flip test's smallest p is ``2 / 2**n`` (every seed the same sign), and Holm's
    first step tests at ``alpha / arms``; below this count no arm can help, hurt or be equivalent.

    Example:
        >>> min_seeds_for_verdict(0.05, 1), min_seeds_for_verdict(0.05, 6)
        (6, 8)
    """
    level = alpha / max(int(arms), 1)
    n = MIN_SEEDS
    while 2.0 ** (1 - n) > level:
        n += 1
    return n


def first_deciding_look(looks: Looks, level: float) -> int | None:
    """The first look (1-based) at which the sequential test at ``level`` can reject at all, None when
    no look can: the best case is every seed's difference of one sign, and then the patterns at least as
    extreme as the observed one are those whose first ``n_j`` signs all agree (2·2^(n_K − n_j) of the
    exact reference set); it crosses only where the look's budget covers them all. Below that look an
    arm can be stopped (futility) but not decided. With one look (a fixed design) this is
    :func:`min_seeds_for_verdict`'s condition, ``2 / 2**n <= level``; with several, each look has only
    the α spent by then, so it can come later than that count (3 arms at 0.05, looks 5, 6, ..., 10: the
    fixed design's 7 seeds would do, the sequential one decides from its fifth look, 9 seeds). The same
    answer as :func:`crossings` on differences all of one sign (tests/ablate/test_adaptive_looks_qa25.py).

    Example:
        >>> first_deciding_look(Looks((5, 6, 7, 8, 9, 10)), 0.05 / 3)  # 9 seeds: 4 patterns, budget 11 of 1024
        5
        >>> first_deciding_look(Looks((7,)), 0.05 / 3), first_deciding_look(Looks((6,)), 0.05 / 3)
        (1, None)
    """
    E = sign_patterns(looks.max)
    budgets = _budgets(looks.fractions, (float(level),), E.shape[0], looks.spending)[:, 0]
    for j, n in enumerate(looks.sizes):
        if n < MIN_SEEDS:
            continue
        agree = int(np.count_nonzero((E[:, :n] == E[:, :1]).all(axis=1)))
        if agree <= budgets[j]:
            return j + 1
    return None


def conditional_power(d: Sequence[float], n_final: int, level: float) -> float:
    """Chance of crossing a level-``level`` two-sided test at ``n_final`` seeds if the effect stays at
    its current estimate (normal approximation; drives the non-binding futility rule)."""
    from scipy.special import ndtr, ndtri

    x = np.asarray(d, dtype=float)
    n = len(x)
    if n >= n_final:
        return 0.0
    if n < MIN_SEEDS:
        return 1.0  # nothing to judge by yet (a failed baseline, say): keep sampling
    sd = paired_sd(x)
    if sd == 0:
        return 1.0 if float(x.mean()) != 0 else 0.0
    theta = abs(float(x.mean())) / sd
    z_now = theta * math.sqrt(n)
    c = -ndtri(level / 2)
    rest = n_final - n
    return float(1.0 - ndtr((c * math.sqrt(n_final) - z_now * math.sqrt(n) - theta * rest) / math.sqrt(rest)))


# ---------------------------------------------------------------------------------------------
# the decision for every arm


def decide(rejected: bool, ci: tuple[float, float], mean: float, delta: float, n: int, *, higher_is_better: bool = True,
           pending: bool = False) -> str:
    """The verdict for one arm (see the module docstring).

    Example:
        >>> decide(True, (0.3, 0.9), 0.6, delta=1.0, n=10)
        'helps (negligible)'
        >>> decide(False, (-0.4, 0.5), 0.05, delta=1.0, n=10)
        'equivalent'
        >>> decide(False, (0.0, 0.0), 0.0, delta=0.0, n=8)  # δ = 0: nothing lies inside ±0
        'inconclusive'
    """
    if n < MIN_SEEDS:
        return "pending"
    lo, hi = ci
    if rejected:
        better = (mean > 0) == higher_is_better
        word = "helps" if better else "hurts"
        inside = -delta < lo and hi < delta
        return f"{word} (negligible)" if inside else word
    if pending:
        return "pending"
    # δ = 0 (a baseline that scored the same on every seed): `equivalent` is unreachable, as the report says;
    # an interval of [0, 0] (every difference 0) lies in [-0, 0] but shows no effect of interest was ruled out
    if delta > 0 and -delta <= lo and hi <= delta:
        return "equivalent"
    return "inconclusive"


def analyze(diffs: Mapping[str, Mapping[int, float]], *, looks: Looks | None = None, alpha: float = ALPHA,
            delta: float = 1.0, higher_is_better: bool = True, n_looks: Mapping[str, int] | None = None,
            open_arms: Sequence[str] = (), intervals: bool = True, failed_arms: Sequence[str] = (),
            inapplicable_arms: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Decide every arm from its paired differences (confirmatory analysis of one metric).

    Args:
        diffs: arm -> {seed index: arm - baseline} in reporting units (NaN-free: failed runs left out).
        looks: planned looks (default: one look at the largest seed count present, a fixed design).
        alpha: family-wise error rate across the arms.
        delta: smallest effect of interest, in the same units (``equivalent`` / ``negligible``).
        higher_is_better: direction of the metric.
        n_looks: per arm, the number of looks its data reach (default: all its seeds reach).
        open_arms: arms still sampling (an adaptive design in progress): not rejected -> ``pending``.
        failed_arms: arms whose runs failed (fewer than 2 paired seeds when the design stopped them):
            left out of the Holm family, decision ``failed``.
        inapplicable_arms: arms known before any run to test nothing (an ``identity`` control whose baseline draws
            nothing trains exactly like the baseline): left out of the Holm family, so they cost the other arms no
            α, decision ``not applicable`` (their mean, interval and p are still given).
        intervals: compute the intervals (bisection; skipped in large simulations).

    Returns:
        arm -> ``{n_seeds, mean_diff, sd_diff, d_z, p_value, rejected, holm_divisor, level, ci,
        ci_level, mde, p_superior, p_superior_ci, decision}``; ``p_superior``: the share of seeds on which the
        arm beat the baseline in the metric's direction (ties half).
    """
    names = list(diffs)
    m = len(names)
    if looks is None:
        n_max = max((max(v) + 1 for v in diffs.values() if v), default=1)
        looks = Looks((n_max,))
    levels = [alpha / s for s in range(1, m + 1)]
    per: dict[str, dict[str, Any]] = {}
    crossed = np.zeros((m, m), dtype=bool)
    for i, name in enumerate(names):
        d = {int(s): float(v) for s, v in diffs[name].items()}
        if any(math.isnan(v) for v in d.values()):
            raise ValueError(f"arm {name!r}: NaN difference (a failed run must be left out)")
        vals = np.array(list(d.values()))
        n = len(vals)
        k = (n_looks or {}).get(name)
        if n >= MIN_SEEDS:
            c = crossings(d, looks, levels, k)
            crossed[i] = c.any(axis=1)
        sd = paired_sd(vals)  # equal up to rounding: 0, as exactly equal differences (d_z, MDE: unknown)
        mean = float(vals.mean()) if n else math.nan
        if n and abs(mean) <= 1e-12 * float(np.abs(vals).max()):
            mean = 0.0  # +3.89 and -3.89 average to 3.6e-15 in floating point, not to a tiny effect
        # a win is a seed where the arm is better in the metric's direction (lower NLL, higher accuracy)
        wins = float(np.count_nonzero(vals > 0 if higher_is_better else vals < 0) + 0.5 * np.count_nonzero(vals == 0))
        per[name] = {"n_seeds": n, "mean_diff": mean, "sd_diff": sd,
                     "d_z": mean / sd if n > 1 and sd > 0 else math.nan,
                     "p_value": sign_flip_p(vals) if n else math.nan,  # no paired seed: no p (shown as —)
                     "p_superior": wins / n if n else math.nan, "p_superior_ci": list(wilson(wins, n)), "_d": d, "_k": k}
    outside = set(failed_arms) | set(inapplicable_arms)
    keep = [i for i, name in enumerate(names) if name not in outside]
    rejected, divisor = np.zeros(m, dtype=bool), np.zeros(m, dtype=np.int64)
    if keep:
        rejected[keep], divisor[keep] = holm_levels(crossed[np.ix_(keep, range(len(keep)))])
    for i, name in enumerate(names):
        e = per[name]
        d, k = e.pop("_d"), e.pop("_k")
        s = int(divisor[i]) or max(len(keep), 1)
        level = alpha / s
        e["rejected"] = bool(rejected[i])
        e["holm_divisor"] = s
        e["level"] = level
        e["ci_level"] = 1 - level
        if intervals and e["n_seeds"] >= MIN_SEEDS:
            e["ci"] = list(sequential_ci(d, looks, levels, s - 1, k,
                                         anchors=(0.0, -delta, delta) if math.isfinite(delta) else (0.0,)))
        else:
            e["ci"] = [-math.inf, math.inf]
        e["mde"] = mde(e["sd_diff"], e["n_seeds"], look_level(looks, level, k if k is not None else looks.reached(e["n_seeds"])))
        unknown = e["n_seeds"] < MIN_SEEDS or name in open_arms  # pending before it is "not applicable"
        e["decision"] = "failed" if name in failed_arms else "not applicable" if name in inapplicable_arms and not unknown else decide(
            e["rejected"], tuple(e["ci"]), e["mean_diff"], delta, e["n_seeds"], higher_is_better=higher_is_better,
            pending=name in open_arms)
    return per


def end_ties(d: Sequence[float], ci: Sequence[float]) -> list[int]:
    """How many seeds' differences sit on each end of an interval ``[lo, hi]``. The sign-flip test of ``d - mu``
    counts a zero difference as no evidence and an infinitesimally non-zero one as evidence of one sign, so on a
    coarse metric (ties) its p-value jumps at the seeds' own values and an inverted interval's end lands there:
    ``[+0.00, +10.78]`` with 4 of 10 seeds at 0 says "the tied seeds", not "not worse" (QA29).

    An end :func:`sequential_ci` snapped to an anchor (0, ±δ) is the seeds' value exactly; any other end is a
    bisection's, up to one step (:data:`CI_TOL`) inside the value where the p-value jumps: 3 seeds at -8.82 gave
    an end at -8.8192 (review r2 of QA29). There, seeds that share one value (2 or more: a tie) within that step
    outside the end are counted — one seed's own value, where a continuous metric's end may lie, is no tie.

    Example:
        >>> end_ties([2.94, 0.0, 0.0, 5.88, 14.71, 2.94, 0.0, 2.94, 0.0, 11.76], [0.0, 10.78])
        [4, 0]
        >>> end_ties([-8.82, -8.82, -8.82, -5.88, 0.0, 0.0, 5.88, 5.88, 8.82, 8.82], [-8.8192, 7.8394])
        [3, 0]
    """
    x = np.asarray(d, dtype=float)
    if not x.size:
        return [0 for _ in ci]
    tol, step = _tol(x), CI_TOL * max(1.0, _ci_span(x))
    out = []
    for v, direction in zip(ci, (-1.0, 1.0)):
        if not math.isfinite(v):
            out.append(0)
        elif (on := int(np.count_nonzero(np.abs(x - v) <= tol))):
            out.append(on)
        else:
            beyond = x[((x - v) * direction > 0) & ((x - v) * direction <= step + tol)]
            shared = max((int(np.count_nonzero(np.abs(beyond - u) <= tol)) for u in beyond), default=0)
            out.append(shared if shared > 1 else 0)
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given), for single-look p-values.

    Raises:
        ValueError: a p-value that is NaN or outside [0, 1], named by its position (a NaN took its neighbour's
            adjusted value, below alpha; a failed run must be left out, not tested).

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))  # NaN fails both comparisons
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"holm: p-value {i} is {float(p[i])!r}; expected a probability in [0, 1]"
                         + (" (a failed test must be left out, not adjusted)" if np.isnan(p[i]) else "")
                         + (f" ({len(bad) - 1} more such)" if len(bad) > 1 else ""))
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return [round(float(v), 12) for v in adj]


def eval_split_noise(codes: Mapping[str, Mapping[int, str]], baseline: str, arms: Sequence[str],
                     caps: Mapping[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """How much of each arm's paired noise is the finite test split (Bouthillier et al. 2021: data
    sampling is one of the variance sources of a benchmark).

    ``codes[arm][seed]`` is a run's ``correct_on_test`` (:class:`mmdata.train.evaluate.Correctness`).
    Per seed, D_i = correct_arm(i) − correct_baseline(i) over the n test examples: d = 100·mean(D) is
    the accuracy difference in points, and 100²·var(D)/n the variance a finite split of n examples
    adds to it around the two models' difference on the data it is drawn from. Per arm (seeds below
    ``caps[arm]`` where both runs kept the same examples, at least 3): ``sd_d`` = the sd of d over
    seeds, ``sd_test`` = sqrt of that
    variance's mean, ``share`` = its part of the variance of d over seeds (above 1 by chance when the
    training noise is small), ``n_test`` and ``disagreement`` (mean share of examples where the two
    runs differ). A k-times larger split would leave var(d) − (1 − 1/k)·sd_test² of the variance.

    Example:
        >>> import numpy as np
        >>> def code(bits):
        ...     return f"k:{len(bits)}:{np.packbits(np.array(bits, bool)).tobytes().hex()}"
        >>> b = {s: code([1, 1, 0, 0, 1, 0, 1, 1]) for s in range(3)}
        >>> a = {0: code([1, 0, 0, 0, 1, 0, 1, 1]), 1: code([1, 1, 1, 0, 1, 0, 1, 1]), 2: code([1, 1, 0, 1, 1, 0, 1, 0])}
        >>> r = eval_split_noise({"base": b, "arm": a}, "base", ["arm"])["arm"]
        >>> r["n_seeds"], r["n_test"], round(r["disagreement"], 3)
        (3, 8, 0.167)
    """
    from mmdata.train.evaluate import decode_correct

    out: dict[str, dict[str, Any]] = {}
    base = {s: decode_correct(c) for s, c in codes.get(baseline, {}).items()}
    for arm in arms:
        d, v, dis, n = [], [], [], 0
        for s, c in codes.get(arm, {}).items():
            if (caps is not None and s >= caps.get(arm, s + 1)) or s not in base:
                continue
            (ka, xa), (kb, xb) = decode_correct(c), base[s]
            if ka != kb or len(xa) != len(xb) or len(xa) < 2:  # other examples (another split or data): not paired
                continue
            D = xa.astype(float) - xb.astype(float)
            n = len(D)
            d.append(100 * D.mean())
            v.append(100**2 * D.var(ddof=1) / n)
            dis.append(float((D != 0).mean()))
        if len(d) < 3:
            continue
        # d equal on every seed up to float rounding (a deterministic trainer): var 0, not 1e-28 (a share of 1e25)
        total = float(np.var(d, ddof=1)) if paired_sd(np.asarray(d)) > 0 else 0.0
        out[arm] = {"n_seeds": len(d), "n_test": n, "sd_d": math.sqrt(total), "sd_test": math.sqrt(float(np.mean(v))),
                    "share": float(np.mean(v)) / total if total > 0 else math.nan, "disagreement": float(np.mean(dis))}
    return out
