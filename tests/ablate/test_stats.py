"""Statistics: exact sign-flip p, Holm, intervals, decisions, and validity by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from mmdata.ablate.stats import compare, decide, holm, min_p, paired, sign_flip_p


def test_sign_flip_exact_values() -> None:
    assert sign_flip_p([1.0] * 5) == pytest.approx(2 / 32)
    assert sign_flip_p([1.0] * 10) == pytest.approx(2 / 1024)
    assert sign_flip_p([1.0, -1.0]) == 1.0
    assert min_p(5, 1) >= 0.05 and min_p(10, 8) < 0.05  # 5 seeds can never be significant


def test_holm_and_all_zero_differences() -> None:
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    e = paired([0.0] * 10)
    assert e["p_value"] == 1.0 and e["ci95_t"] == [0.0, 0.0]
    assert decide(e, 1.0) == "equivalent"


def test_intervals_and_decisions() -> None:
    rng = np.random.default_rng(0)
    e = paired(list(rng.normal(2.0, 0.5, 10)))
    assert e["ci95_t"][0] > 0 and e["ci95_boot"][0] > 0 and e["d_z"] > 2
    res = compare({s: 0.8 for s in range(10)}, {"up": {s: 0.82 + 0.001 * s for s in range(10)},
                                                 "down": {s: 0.77 for s in range(10)}}, scale=100)
    assert res["up"]["decision"] == "helps" and res["down"]["decision"] == "hurts"
    assert res["up"]["p_holm"] == pytest.approx(min(1, 2 * 2 / 1024))


def _simulate(effect_sd: float, reps: int, seeds: int = 10, seed: int = 0) -> list[str]:
    """Paired A/B on synthetic metrics: a shared per-seed effect + independent run noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        shared = rng.normal(0.8, 0.03, seeds)
        base = shared + rng.normal(0, 0.01 / np.sqrt(2), seeds)
        arm = shared + rng.normal(0, 0.01 / np.sqrt(2), seeds) + effect_sd * 0.01  # sd of the paired diff is 0.01
        res = compare(dict(enumerate(base)), {"arm": dict(enumerate(arm))}, scale=100, seed=int(rng.integers(1e9)))
        out.append(res["arm"]["decision"])
    return out


def test_aa_false_positive_rate_at_most_5_percent() -> None:
    decisions = _simulate(0.0, reps=400)
    rate = np.mean([d in ("helps", "hurts") for d in decisions])
    # the exact sign-flip test has level <= 5%; allow 2 binomial sd (sqrt(.05*.95/400) = 1.1%) of sampling error
    assert rate <= 0.05 + 2 * 0.011, rate


def test_power_for_1_5_sd_effect_with_10_seeds() -> None:
    decisions = _simulate(1.5, reps=200, seed=1)
    assert np.mean([d == "helps" for d in decisions]) >= 0.8
