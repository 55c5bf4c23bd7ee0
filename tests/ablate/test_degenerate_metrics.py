"""QA (2026-12-05, extreme datasets): what an ablation says when its metrics are degenerate.

* A baseline that scores 10/11 on every seed: its seed sd came out 1.5e-14 (float rounding of
  ``np.std([90.909...] * 6, ddof=1)``), not 0, so δ was 1.5e-14, an arm with the same score read
  `equivalent` with interval [-1.5e-14, +1.5e-14] and the δ = 0 warning never showed (an exactly
  representable 0.5 gave δ = 0 and the warning).
* The exploratory table dropped the seeds whose secondary metric was NaN or inf without saying so, and
  runs.parquet stored inf as a missing value.
* Fewer than 5 pilot seeds and δ = 0 warned twice, and the two warnings disagreed ("δ ... over only 3 seeds
  (0.00 ...)" beside "δ = 0 ...").

Trainers here are tiny deterministic functions: no wall clock, no training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmdata.ablate import run
from mmdata.ablate.folds import gather

HFLIP = {"op": "hflip", "p": 0.5}
EXPLICIT = {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]},
            "arms": {"cut": {"seed": 0, "image": [HFLIP, {"op": "cutout", "p": 0.5}]}}}
TEN_ELEVENTHS = 10 / 11  # 90.909... points: not exactly representable, so its seed sd is rounding noise


def eleventh_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """The QA repro: every seed scores 10/11 (1/11 less with label noise), whatever the recipe."""
    return {"test": {"accuracy": TEN_ELEVENTHS - (1 / 11 if label_noise else 0.0)}}


def half_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """Every seed scores exactly 50% (20% with label noise): δ was exactly 0 before too."""
    return {"test": {"accuracy": 0.5 - (0.3 if label_noise else 0.0)}}


def varied_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """Scores that differ from seed to seed (a real pilot), with a secondary metric that is NaN or inf on
    some seeds of the arm."""
    acc = 0.6 + 0.01 * ((seed * 7) % 5) - (0.2 if label_noise else 0.0)
    cut = "cutout" in json.dumps(recipe)
    nll = (math.inf if seed % 4 == 0 else math.nan if seed % 4 == 1 else 0.5) if cut else 0.5 + 0.01 * (seed % 3)
    return {"test": {"accuracy": acc, "nll": nll}}


def _quiet(msg: str) -> None:
    """Design warnings (few seeds): beside the point here."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("degenerate") / "av", limit=4, progress=False)


def _run(cfg: dict[str, Any], out: Path, fn: Any, **kw: Any) -> dict[str, Any]:
    return run(cfg, out, train_fn=fn, workers=1, progress=False, plots=False, on_warning=_quiet, **kw)


def _arm(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in s["arms"] if a["name"] == name)


def _cfg(data: Path, seeds: int) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "seeds": seeds, "design": EXPLICIT,
            "controls": {"label_noise": 0.3, "identity": False}}


# 1. a constant baseline that is not exactly representable ------------------------------------------


def test_a_constant_baseline_gives_delta_zero_whatever_its_rounding(data: Path, tmp_path: Path) -> None:
    pilot = [TEN_ELEVENTHS * 100] * 7
    assert float(np.std(pilot, ddof=1)) > 0  # what the analysis saw before: rounding read as a seed sd
    s = _run(_cfg(data, 7), tmp_path / "r", eleventh_train)
    assert s["delta"]["value"] == 0.0, s["delta"]
    assert "unreachable" in s["delta"]["warning"] and any(w.startswith("δ = 0") for w in s["warnings"])
    cut = _arm(s, "cut")
    # was `equivalent` in [-1.5e-14, +1.5e-14]
    assert cut["decision"] == "inconclusive" and cut["primary"]["ci"] == [0.0, 0.0], cut["primary"]
    noise = _arm(s, "label_noise")  # a constant, non-zero Δ (up to rounding) still reads as the effect it is
    assert noise["decision"] == "hurts" and noise["primary"]["sd_diff"] == 0.0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "> **Warning:** δ = 0" in text and "e-14" not in text and "e-15" not in text


def test_a_constant_baseline_across_folds_gives_delta_zero(data: Path, tmp_path: Path) -> None:
    outs = [tmp_path / f"f{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _run(_cfg(data, 7), o, eleventh_train, test_split=str(k))
    s = gather(outs, tmp_path / "pooled", plots=False)
    assert s["delta"]["value"] == 0.0 and "warning" in s["delta"], s["delta"]
    assert _arm(s, "cut")["decision"] == "inconclusive"


def test_a_varied_pilot_keeps_its_delta(data: Path, tmp_path: Path) -> None:
    # the demo's δ comes from a real pilot: the rounding floor must not move it by a bit
    s = _run(_cfg(data, 6), tmp_path / "v", varied_train)
    vals = [100 * (0.6 + 0.01 * ((seed * 7) % 5)) for seed in range(6)]
    assert s["delta"]["value"] == float(np.std(vals, ddof=1)) > 0 and "warning" not in s["delta"]
    outs = [tmp_path / f"v{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _run(_cfg(data, 6), o, varied_train, test_split=str(k))
    pooled = gather(outs, tmp_path / "vp", plots=False)
    assert pooled["delta"]["value"] == math.sqrt(float(np.mean([np.var(vals, ddof=1)] * 2)))


def tiny_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """A metric of size 3e-12 with a real spread of 5e-13 (~40%), in its own units (scale 1)."""
    return {"test": {"m": 3e-12 + 5e-13 * ((seed * 7) % 5) - (1e-12 if label_noise else 0.0)}}


def test_a_small_metric_keeps_its_real_spread(data: Path, tmp_path: Path) -> None:
    """QA pass 2: the rounding floor was 1e-12 x max(1, |values|) — absolute below 1 — so a metric of size
    3e-12 with 40% spread got δ = 0 ("the same on each of its first 6 seeds") and a baseline sd of 0."""
    cfg = {**_cfg(data, 6), "metric": {"name": "test.m", "scale": 1, "higher_is_better": True}}
    s = _run(cfg, tmp_path / "t", tiny_train)
    vals = [3e-12 + 5e-13 * ((seed * 7) % 5) for seed in range(6)]
    assert s["delta"]["value"] == float(np.std(vals, ddof=1)) > 0 and "warning" not in s["delta"], s["delta"]


# 2. exploratory metrics with NaN / inf seeds --------------------------------------------------------


def test_the_exploratory_table_says_how_many_seeds_a_metric_used(data: Path, tmp_path: Path) -> None:
    s = _run(_cfg(data, 8), tmp_path / "x", varied_train)
    cut = _arm(s, "cut")
    assert cut["n_seeds"] == 8 and cut["exploratory"]["test_nll"]["n_seeds"] == 4
    text = (tmp_path / "x" / "report.md").read_text()
    table = text[text.index("## Exploratory: other metrics"):]
    row = next(line for line in table.splitlines() if line.startswith("| cut |"))
    assert "4 of 8 seeds" in row, row
    noise_row = next(line for line in table.splitlines() if line.startswith("| label_noise |"))
    assert "seeds" not in noise_row, noise_row  # all of its seeds: nothing to say
    import pyarrow.parquet as pq

    runs = pq.read_table(tmp_path / "x" / "runs.parquet").to_pylist()
    nll = {r["seed"]: r["test_nll"] for r in runs if r["arm"] == "cut"}
    assert nll[0] == math.inf and nll[4] == math.inf  # kept as inf, not a missing value
    assert nll[1] is None or math.isnan(nll[1])
    summary = (tmp_path / "x" / "summary.json").read_text()
    assert "Infinity" not in summary and "NaN" not in summary
    json.loads(summary)


def test_the_folds_exploratory_table_says_how_many_runs_a_metric_used(data: Path, tmp_path: Path) -> None:
    """QA pass 2: ablate-folds' exploratory cell read `+0.00 [+0.00, +0.00]` with no count while the arm's
    NLL had half its (fold, seed) runs NaN / inf."""
    outs = [tmp_path / f"x{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _run(_cfg(data, 8), o, varied_train, test_split=str(k))
    gather(outs, tmp_path / "pooled", plots=False)
    text = (tmp_path / "pooled" / "report.md").read_text()
    table = text[text.index("## Exploratory: other metrics"):]
    row = next(line for line in table.splitlines() if line.startswith("| cut |"))
    assert "(8 of 16 runs)" in row, row
    noise_row = next(line for line in table.splitlines() if line.startswith("| label_noise |"))
    assert "runs)" not in noise_row, noise_row
    assert "*k of n runs*" in table


def test_inf_secondary_metric_draws_the_figures(data: Path, tmp_path: Path, figures: dict[str, Any]) -> None:
    run(_cfg(data, 6), tmp_path / "p", train_fn=varied_train, workers=1, progress=False, plots=True,
        on_warning=_quiet)
    assert "forest.png" in figures


# 3. one δ warning when δ = 0 ------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [eleventh_train, half_train], ids=["ten_elevenths", "half"])
def test_delta_zero_from_few_seeds_warns_once(data: Path, tmp_path: Path, fn: Any) -> None:
    s = _run(_cfg(data, 3), tmp_path / "w", fn)
    about_delta = [w for w in s["warnings"] if w.startswith("δ")]
    assert len(about_delta) == 1 and about_delta[0].startswith("δ = 0"), about_delta


def test_a_small_varied_pilot_still_warns_that_delta_is_rough(data: Path, tmp_path: Path) -> None:
    s = _run(_cfg(data, 3), tmp_path / "w", varied_train)
    assert any("over only 3 seeds" in w for w in s["warnings"]) and "warning" not in s["delta"]


# elsewhere: the test split's share of a paired noise that is all rounding -------------------------


def test_eval_split_noise_of_equal_differences_is_not_a_huge_share() -> None:
    from mmdata.ablate.stats import eval_split_noise

    def code(bits: list[int]) -> str:
        return f"k:{len(bits)}:{np.packbits(np.array(bits, bool)).tobytes().hex()}"

    bits = [1] * 8 + [0] * 3
    base = {s: code(bits) for s in range(7)}
    arm = {s: code([1] * 11) for s in range(7)}  # three more examples right on every seed: d = 300/11 each time
    d = [100 * np.mean(np.array([1] * 11, float) - np.array(bits, float))] * 7
    assert float(np.var(d, ddof=1)) > 0  # rounding (1.5e-29) that gave a share of ~1e29
    r = eval_split_noise({"base": base, "arm": arm}, "base", ["arm"])["arm"]
    assert r["sd_d"] == 0.0 and math.isnan(r["share"]), r
    other = [[1] * 11 if s % 2 else [1] * 9 + [0, 1] for s in range(7)]
    r = eval_split_noise({"base": base, "arm": {s: code(b) for s, b in enumerate(other)}}, "base", ["arm"])["arm"]
    dv = [100 * np.mean(np.array(b, float) - np.array(bits, float)) for b in other]
    assert r["sd_d"] == math.sqrt(float(np.var(dv, ddof=1))) > 0  # a real spread: as before
