"""Paired differences equal up to float rounding are zero variance (QA: a deterministic trainer gave
``sd_diff 3.7e-15`` and ``d_z 2.68e15`` in summary.json): they are analysed as exactly equal differences
are — sd 0, no d_z, no MDE — and nothing else of the analysis moves."""

from __future__ import annotations

import math

import numpy as np

from mmdata.ablate.stats import analyze, conditional_power, paired_sd

SEEDS = 10


def _noisy(value: float, ulps: float = 2e-15) -> dict[int, float]:
    """``value`` on every seed, off by float rounding (what (arm - baseline) * 100 gives a deterministic trainer)."""
    return {s: value + ((s % 3) - 1) * ulps for s in range(SEEDS)}


def test_differences_equal_up_to_rounding_are_analysed_as_equal_ones() -> None:
    noisy, exact = _noisy(9.9), {s: 9.9 for s in range(SEEDS)}
    assert float(np.std(list(noisy.values()), ddof=1)) > 0  # what the analysis saw before: a tiny, fake sd
    res = analyze({"noisy": noisy, "exact": {s: 0.5 for s in range(SEEDS)}, "same": exact}, delta=1.0)
    for name in ("noisy", "exact", "same"):
        e = res[name]
        assert e["sd_diff"] == 0.0, (name, e)
        assert math.isnan(e["d_z"]) and math.isnan(e["mde"]), (name, e)  # was d_z ~1e15, MDE ~1e-15
    assert res["noisy"]["decision"] == res["same"]["decision"] == "helps"
    assert res["noisy"]["p_value"] == res["same"]["p_value"]


def test_the_floor_is_relative_to_the_values_and_leaves_real_spread_alone() -> None:
    assert paired_sd(np.array([1e6 + 1e-7, 1e6, 1e6 - 1e-7])) == 0.0  # rounding at 1e6 is ~1e-10
    tiny = np.array([1e-9, 2e-9, 3e-9])
    assert paired_sd(tiny) == float(tiny.std(ddof=1)) > 0  # tiny values with a real spread: kept
    assert paired_sd(np.array([0.1, 0.2])) == float(np.std([0.1, 0.2], ddof=1))
    assert math.isnan(paired_sd(np.array([1.0])))
    rng = np.random.default_rng(0)
    diffs = {f"a{i}": dict(enumerate(rng.normal(i * 0.5, 1.0, SEEDS))) for i in range(4)}
    for e, name in zip(analyze(diffs, delta=1.0).values(), diffs):
        v = np.array(list(diffs[name].values()))
        assert e["sd_diff"] == float(v.std(ddof=1)) and e["d_z"] == e["mean_diff"] / e["sd_diff"]


def test_futility_keeps_a_constant_effect_open() -> None:
    # the same rule in the futility look: a constant non-zero effect up to rounding keeps its arm open
    assert conditional_power(list(_noisy(0.3).values()), 20, 0.05) == 1.0
    assert conditional_power([0.0] * SEEDS, 20, 0.05) == 0.0
