"""Paired statistics for augmentation ablations (scipy for distributions).

For each arm vs the baseline, on the per-seed paired differences d_s = arm_s - baseline_s:

* mean difference, sd, standardised effect d_z = mean / sd;
* 95% CI by Student t and by a seeded percentile bootstrap (10,000 resamples of seeds);
* 90% t CI (for equivalence: TOST at 5% ⇔ the 90% CI lies inside ±delta);
* P(difference > 0): the fraction of seeds that improved, and the bootstrap probability that the mean
  improvement is positive;
* an exact two-sided sign-flip permutation p-value (all 2^S sign patterns for S <= 16, else 20,000
  random ones), Holm-adjusted across arms.

Decision (primary metric): ``helps`` / ``hurts`` when the 95% t CI excludes 0 on that side and the
Holm-adjusted p < 0.05; ``equivalent`` when the 90% CI lies within ±delta (0.5 accuracy points);
``inconclusive`` otherwise. With S seeds the smallest exact p is 2 / 2^S (0.0625 at S = 5), and Holm
multiplies the smallest p by the number of arms, so few seeds can never reach significance: the
report flags that as underpowered.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

DELTA = 0.5  # equivalence margin, in the metric's reporting units (accuracy points)


def sign_flip_p(d: Sequence[float], max_exact: int = 16, n_random: int = 20000, seed: int = 0) -> float:
    """Two-sided exact (or Monte-Carlo) sign-flip permutation p-value of mean(d) == 0.

    Example:
        >>> round(sign_flip_p([1.0] * 5), 4)
        0.0625
        >>> sign_flip_p([0.0, 0.0, 0.0])
        1.0
    """
    x = np.asarray(d, dtype=float)
    s = len(x)
    obs = abs(x.mean())
    if s == 0 or obs == 0:
        return 1.0
    if s <= max_exact:
        signs = np.array(list(itertools.product([1.0, -1.0], repeat=s)))
    else:
        signs = np.random.default_rng(seed).choice([1.0, -1.0], size=(n_random, s))
    stats = np.abs((signs * x).mean(axis=1))
    return float(np.mean(stats >= obs - 1e-12))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given).

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return [round(float(v), 12) for v in adj]


def paired(diffs: Sequence[float], seed: int = 0, n_boot: int = 10000) -> dict[str, Any]:
    """Effect sizes and intervals of paired differences (see the module docstring)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    s = len(d)
    mean = float(d.mean()) if s else 0.0
    sd = float(d.std(ddof=1)) if s > 1 else 0.0
    if s > 1 and sd > 0:
        se = sd / np.sqrt(s)
        t95, t90 = stats.t.ppf(0.975, s - 1), stats.t.ppf(0.95, s - 1)
        ci95 = [mean - t95 * se, mean + t95 * se]
        ci90 = [mean - t90 * se, mean + t90 * se]
    else:
        ci95 = ci90 = [mean, mean]
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, s, size=(n_boot, s))].mean(axis=1) if s else np.zeros(1)
    return {
        "n_seeds": s,
        "mean_diff": mean,
        "sd_diff": sd,
        "d_z": mean / sd if sd > 0 else 0.0,
        "ci95_t": [float(v) for v in ci95],
        "ci90_t": [float(v) for v in ci90],
        "ci95_boot": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
        "p_improve_seeds": float(np.mean(d > 0)) if s else 0.0,
        "p_improve_boot": float(np.mean(boots > 0)),
        "p_value": sign_flip_p(d, seed=seed),
    }


def decide(effect: dict[str, Any], p_holm: float, delta: float = DELTA, higher_is_better: bool = True) -> str:
    """helps / hurts / equivalent / inconclusive (see the module docstring)."""
    lo, hi = effect["ci95_t"]
    if not higher_is_better:
        lo, hi = -hi, -lo
    if p_holm < 0.05 and lo > 0:
        return "helps"
    if p_holm < 0.05 and hi < 0:
        return "hurts"
    lo90, hi90 = effect["ci90_t"]
    if -delta < lo90 and hi90 < delta:
        return "equivalent"
    return "inconclusive"


def min_p(seeds: int, arms: int) -> float:
    """Smallest Holm-adjusted exact sign-flip p achievable with ``seeds`` seeds and ``arms`` arms."""
    return min(1.0, arms * 2.0 / 2**seeds)


def compare(baseline: dict[int, float], arms: dict[str, dict[int, float]], *, scale: float = 1.0,
            higher_is_better: bool = True, delta: float = DELTA, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per-arm effects vs baseline on one metric (values per seed; paired on common seeds), Holm across arms.

    ``scale`` converts units (100 for accuracy fractions -> points); ``delta`` is in scaled units.
    """
    effects: dict[str, dict[str, Any]] = {}
    for name, vals in arms.items():
        common = sorted(set(vals) & set(baseline))
        diffs = [(vals[s] - baseline[s]) * scale for s in common]
        effects[name] = paired(diffs, seed=seed)
    adj = holm([e["p_value"] for e in effects.values()]) if effects else []
    for (name, e), p in zip(effects.items(), adj):
        e["p_holm"] = p
        e["decision"] = decide(e, p, delta, higher_is_better)
    return effects
