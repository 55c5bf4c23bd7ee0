"""QA round 31 (persona "sweep"): sweep designs that target a step, fold means snapped to 0, metric
directions, arms that train alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate.folds import pool


def test_a_fold_mean_of_exactly_cancelling_seeds_is_zero_not_a_sign() -> None:
    # one win, one loss, two ties: the float mean is 1.8e-15, which counted as a positive fold (⚠ folds disagree)
    ghost = [0.0, 100 * (9 / 20) - 100 * (10 / 20), 100 * (11 / 20) - 100 * (10 / 20), 0.0]
    assert sum(ghost) / 4 != 0
    diffs = {"a": {"1": dict(enumerate([-5.0, -5.0, 0.0, -5.0])), "3": dict(enumerate(ghost)),
                   "4": dict(enumerate([-5.0, 0.0, -5.0, -5.0]))}}
    e = pool(diffs, delta=2.5)["a"]
    assert [f["mean_diff"] for f in e["per_fold"]][1] == 0.0
    assert e["sign_disagreement"] is False
