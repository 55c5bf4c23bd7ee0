"""Statistics at hundreds of arms: the sequential boundaries and intervals are computed per distinct boundary
(levels alpha/s that share one are worked out once) instead of per Holm level. The answers must not move:
every test here compares against the algorithm as it was before (``reference_*``, kept verbatim below) or
against its stored outputs (``test_stats_scale_golden.json``, written by it at commit 305c3d3).
benchmarks/ablate_analyze_scale.py times the two."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmdata.ablate import stats
from mmdata.ablate.stats import SPENDING, Looks, analyze, crossings_many, sequential_ci

GOLDEN = Path(__file__).with_name("test_stats_scale_golden.json")


# ---------------------------------------------------------------------------------------------------------
# the algorithm before (mmdata/ablate/stats.py at 305c3d3), verbatim but for names and comments: the oracle


def reference_crossings_many(ds: Any, looks: Looks, levels: Any, n_looks: Any = None) -> list[np.ndarray]:
    """crossings_many as it was: every level in turn, O(levels) per arm."""
    from mmdata.ablate.stats import _budgets, _tol, sign_patterns

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
    cums = np.ascontiguousarray(np.abs(np.stack(cols) @ E.T))
    budgets = _budgets(looks.fractions[: max(ks)], tuple(lv), R, looks.spending)
    top = int(budgets.max()) + 1
    look_of = np.array([j for k in ks for j in range(k)])
    possible = np.count_nonzero(cums >= cums[:, :1], axis=1) <= 2 * budgets[look_of, 0]
    starts = np.cumsum([0, *ks])
    need = [i for i, k in enumerate(ks) if k and possible[starts[i] : starts[i] + k].any()]
    cols_needed = np.concatenate([np.arange(starts[i], starts[i] + ks[i]) for i in need]) if need else np.zeros(0, int)
    orders = np.zeros((len(cums), min(top + 1, R)), dtype=np.int64)
    if len(cols_needed) and top >= R:
        orders[cols_needed] = np.argsort(-cums[cols_needed], axis=1, kind="stable")
    elif len(cols_needed):
        sub = -cums[cols_needed]
        part = np.argpartition(sub, top, axis=1)[:, : top + 1]
        orders[cols_needed] = np.take_along_axis(part, np.argsort(np.take_along_axis(sub, part, axis=1), axis=1,
                                                                  kind="stable"), axis=1)
    for i in need:
        out, k, c0 = outs[i], ks[i], int(starts[i])
        tol = _tol(cums[c0 : c0 + k])
        dead = np.zeros((len(lv), R), dtype=bool)
        crossed = np.zeros(len(lv), dtype=np.int64)
        for j in range(k):
            col, order = cums[c0 + j], orders[c0 + j]
            prev_tau = -np.inf
            for li in range(len(lv)):
                kk = int(budgets[j, li] - crossed[li])
                if kk <= 0:
                    tau = np.inf
                else:
                    alive = order[~dead[li, order]]
                    tau = col[alive[kk]] if kk < len(alive) else -np.inf
                tau = max(tau, prev_tau)
                prev_tau = tau
                if tau == np.inf:
                    continue
                cand = order if tau > -np.inf else np.arange(R)
                cand = cand[(col[cand] > tau + tol) & ~dead[li, cand]]
                crossed[li] += len(cand)
                dead[li, cand] = True
                out[li, j] = bool((cand == 0).any())
    return outs


def reference_crossings(d: Any, looks: Looks, levels: Any, n_looks: int | None = None) -> np.ndarray:
    return reference_crossings_many([d], looks, levels, [n_looks])[0]


def reference_sequential_ci(d: Any, looks: Looks, levels: Any, level_index: int, n_looks: int | None = None,
                            anchors: Any = (0.0,)) -> tuple[float, float]:
    """sequential_ci as it was: each shift tested with crossings over every level down to the arm's."""
    vals = np.array([float(v) for v in d.values()])
    if len(vals) == 0:
        return (-math.inf, math.inf)
    mean = float(vals.mean())
    span = float(vals.max() - vals.min()) + abs(mean) + 1.0
    lv = list(levels)[: level_index + 1]

    def rejects(mu: float) -> bool:
        shifted = {s: float(v) - mu for s, v in d.items()}
        return bool(reference_crossings(shifted, looks, lv, n_looks)[-1].any())

    def bound(direction: float) -> float:
        far = mean + direction * span
        if not rejects(far):
            far2 = mean + direction * span * 100
            if not rejects(far2):
                return direction * math.inf
            far = far2
        near = mean
        for _ in range(40):
            mid = 0.5 * (near + far)
            if rejects(mid):
                far = mid
            else:
                near = mid
            if abs(far - near) <= 1e-4 * max(1.0, span):
                break
        for c in sorted(anchors, key=lambda c: -direction * c):
            if (c - near) * direction > 0 and (far - c) * direction >= 0 and not rejects(c):
                return float(c)
        return near

    return (bound(-1.0), bound(1.0))


def reference_analyze(**kw: Any) -> dict[str, dict[str, Any]]:
    """analyze() with the kernels as they were (its own code did not change: it looks them up at call time)."""
    saved = stats.crossings, stats.sequential_ci
    stats.crossings, stats.sequential_ci = reference_crossings, reference_sequential_ci
    try:
        return analyze(**kw)
    finally:
        stats.crossings, stats.sequential_ci = saved


# ---------------------------------------------------------------------------------------------------------
# random families


def random_family(rng: np.random.Generator, max_arms: int = 12) -> dict[str, Any]:
    """analyze() keywords for one random family: fixed or adaptive looks, exact or Monte-Carlo reference
    sets, accuracy-like ties (values on a grid, exact zeros, constant arms), seeds left out (failed runs),
    arms with 0-1 seeds, arms stopped at earlier looks, open and failed arms, either metric direction,
    deltas of 0, NaN (not yet known) and inf."""
    m = int(rng.integers(1, max_arms + 1))
    adaptive = bool(rng.random() < 0.5)
    if adaptive:
        n_max = int(rng.choice([8, 12, 14, 16, 20, 24]))
        sizes = sorted({int(v) for v in rng.choice(np.arange(3, n_max), size=int(rng.integers(1, 5)), replace=False)}
                       | {n_max})
        looks: Looks | None = Looks(tuple(sizes), str(rng.choice(sorted(SPENDING))))
    else:
        n_max = int(rng.choice([3, 5, 6, 8, 10, 12, 14, 16, 20, 30]))
        looks = Looks((n_max,)) if rng.random() < 0.7 else None
    style = str(rng.choice(["normal", "grid", "coarse", "zeros"]))
    scale = float(rng.choice([1.0, 0.01, 30.0]))
    diffs: dict[str, dict[int, float]] = {}
    n_looks: dict[str, int] = {}
    for i in range(m):
        eff = float(rng.choice([0.0, 0.0, 0.0, 0.5, 1.5, 3.0, -1.5, -3.0, 8.0]))
        v = rng.normal(eff, 1.0, n_max)
        if style == "grid":
            v = np.round(v / 0.2777) * 0.2777
        elif style == "coarse":
            v = np.round(v * 0.7) / 0.7
        elif style == "zeros":
            v = np.where(rng.random(n_max) < 0.4, 0.0, np.round(v, 1))
        if rng.random() < 0.1:
            v = np.full(n_max, float(np.round(v[0], 1)))  # a constant arm
        d = {s: float(x) * scale for s, x in enumerate(v)}
        if rng.random() < 0.25:  # failed runs left out
            for s in rng.choice(n_max, size=int(rng.integers(1, max(2, n_max // 3))), replace=False):
                d.pop(int(s), None)
        if rng.random() < 0.05:
            d = dict(list(d.items())[: int(rng.integers(0, 2))])  # 0 or 1 seed
        if looks is not None and adaptive and rng.random() < 0.6:  # an arm stopped at an earlier look
            k = int(rng.integers(1, len(looks.sizes) + 1))
            n_looks[f"a{i}"] = k
            d = {s: x for s, x in d.items() if s < looks.sizes[k - 1]}
        diffs[f"a{i}"] = d
    names = list(diffs)
    failed = [a for a in names if len(diffs[a]) < 2 and rng.random() < 0.5]
    open_arms = [a for a in names if rng.random() < 0.15]
    delta = float(rng.choice([1.0, 0.5, 2.0, 0.0, math.nan, math.inf])) * scale
    return {"diffs": diffs, "looks": looks, "alpha": float(rng.choice([0.05, 0.05, 0.1, 0.01])), "delta": delta,
            "higher_is_better": bool(rng.random() < 0.7), "n_looks": n_looks or None, "open_arms": open_arms,
            "failed_arms": failed}


def _same(a: Any, b: Any, rel: float = 0.0) -> bool:
    """Equal, NaN equal to NaN; floats within ``rel`` (0: bit for bit)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or (rel > 0 and math.isfinite(a) and abs(a - b) <= rel * max(1.0, abs(a)))
    return bool(a == b)


# ---------------------------------------------------------------------------------------------------------
# the tests


def test_analyze_matches_the_outputs_stored_before_the_change() -> None:
    """64 families (fixed and adaptive, exact and Monte-Carlo, ties, left-out seeds, 0-1 seed arms, partial
    looks, open and failed arms, lower-is-better, 1-150 arms) analysed by the code before the change.
    Decisions, Holm levels and p-values equal; the other floats to 1e-12, for a machine whose BLAS rounds
    the sign-flip sums otherwise than the one that wrote the file (there they are equal to the last bit)."""
    golden = json.loads(GOLDEN.read_text())["cases"]
    assert len(golden) == 64
    for i, case in enumerate(golden):
        kw = dict(case["input"])
        lk = kw.pop("looks")
        kw["looks"] = None if lk is None else Looks(tuple(lk["sizes"]), lk["spending"])
        kw["diffs"] = {a: {int(s): v for s, v in d.items()} for a, d in kw["diffs"].items()}
        got = analyze(**kw)
        assert list(got) == list(case["output"]), i
        for name, want in case["output"].items():
            e = got[name]
            assert (e["decision"], e["rejected"], e["holm_divisor"]) == (want["decision"], want["rejected"],
                                                                         want["holm_divisor"]), (i, name)
            assert _same(e["p_value"], want["p_value"]), (i, name)
            assert _same(e, want, rel=1e-12), (i, name, e, want)


@pytest.mark.parametrize("seed", range(4))
def test_analyze_is_bit_for_bit_the_reference(seed: int) -> None:
    """New random families, analysed by the code before (verbatim above) and now: equal to the last bit."""
    rng = np.random.default_rng(1000 + seed)
    for _ in range(12):
        kw = random_family(rng, 16)
        assert _same(analyze(**kw), reference_analyze(**kw)), kw


def test_crossings_many_equals_the_reference_at_every_level() -> None:
    """Every level and look, batches of arms, many Holm levels (most sharing a boundary), both reference sets,
    every spending function, ties and budgets at the edge: the distinct-boundary kernel crosses where the
    per-level loop did."""
    rng = np.random.default_rng(5)
    for t in range(60):
        n = int(rng.choice([6, 10, 14, 16, 20]))
        sizes = sorted({int(v) for v in rng.choice(np.arange(2, n), size=int(rng.integers(0, 4)), replace=False)} | {n})
        looks = Looks(tuple(sizes), str(rng.choice(sorted(SPENDING))))
        m = int(rng.choice([1, 3, 40, 200]))
        alpha = float(rng.choice([0.05, 0.2, 0.9, 1.0]))  # 0.9: budgets near every pattern; 1: all of them
        levels = [alpha / s for s in range(1, m + 1)]
        ds = []
        for _ in range(int(rng.integers(1, 6))):
            v = rng.normal(rng.choice([0.0, 1.0, 2.5]), 1.0, n)
            v = np.round(v * 2) / 2 if t % 2 else v
            ds.append({s: float(x) for s, x in enumerate(v) if rng.random() > 0.1})
        ks = [None if rng.random() < 0.5 else int(rng.integers(0, looks.reached(max(d) + 1 if d else 0) + 1)) for d in ds]
        for a, b in zip(crossings_many(ds, looks, levels, ks), reference_crossings_many(ds, looks, levels, ks)):
            assert a.shape == b.shape and (a == b).all(), (t, looks, m)


def test_sequential_ci_equals_the_reference_at_large_holm_divisors() -> None:
    """The interval at a late Holm level (alpha/400, alpha/150...), fixed and adaptive, exact and Monte-Carlo,
    anchors 0 and ±delta: the same floats as the bisection over every level."""
    rng = np.random.default_rng(8)
    for t in range(40):
        n = int(rng.choice([10, 14, 20, 50]))
        looks = Looks((n,)) if t % 2 else Looks((n // 2, 3 * n // 4, n), str(rng.choice(["hsd", "obf", "linear"])))
        m = int(rng.choice([20, 150, 400]))
        levels = [0.05 / s for s in range(1, m + 1)]
        d = {s: float(x) for s, x in enumerate(np.round(rng.normal(rng.choice([0.0, 1.0, 2.0]), 1.0, n) / 0.2777) * 0.2777)}
        li = int(rng.integers(0, m))
        k = None if rng.random() < 0.7 else int(rng.integers(1, len(looks.sizes) + 1))
        anchors = (0.0, -1.0, 1.0)
        assert sequential_ci(d, looks, levels, li, k, anchors) == reference_sequential_ci(d, looks, levels, li, k, anchors), t
