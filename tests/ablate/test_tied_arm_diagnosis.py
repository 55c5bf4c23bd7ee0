"""QA35 repro #2: an arm whose primary metric (accuracy over 8 test examples) tied the baseline on every seed was
said to have "trained like the baseline — the trainer may ignore what the arm changes", although its runs differed
from the baseline's on every seed (test_nll). That diagnosis is kept for runs identical on every recorded result
(every metric, ``correct_on_test``, ``best_epoch``); an arm that only tied is called "tied on every seed", with the
metrics that show it trained differently, and nobody blamed.

Trainers are tiny deterministic functions of (seed, recipe): no training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate import run
from mmdata.ablate.report import decision_label


def _coarse(seed: int) -> float:
    return [0.625, 0.875, 0.625, 0.75][seed % 4]  # k of 8 test examples right: the recipe changes none of them


def coarse_train(data: Any, *, recipe: Any, seed: int, **kw: Any) -> dict[str, Any]:
    """Accuracy ignores the recipe (a coarse split); the NLL does not: the arm trained differently."""
    nll = 1.0 + 0.0001 * (len(json.dumps(recipe, sort_keys=True)) % 97) + 0.01 * seed
    return {"test": {"accuracy": _coarse(seed), "nll": nll}, "correct_on_test": f"abc:8:{seed:02x}", "best_epoch": 2}


def blind_train(data: Any, *, recipe: Any, seed: int, **kw: Any) -> dict[str, Any]:
    """Ignores the recipe altogether: every result the same as the baseline's."""
    return {"test": {"accuracy": _coarse(seed), "nll": 1.0 + 0.01 * seed}, "correct_on_test": f"abc:8:{seed:02x}",
            "best_epoch": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("tied") / "av", limit=4, progress=False)


def _run(data: Path, out: Path, fn: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "seeds": 4,
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]},
                      "arms": {"vflip": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}, {"op": "vflip", "p": 0.5}]}}},
           "controls": {"identity": False}}
    return run(cfg, out, train_fn=fn, workers=1, progress=False, plots=False, on_warning=lambda m: None)


def _arm(s: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in s["arms"] if a["name"] == "vflip")


def test_an_arm_that_only_tied_on_the_primary_metric_is_not_said_to_have_trained_like_the_baseline(
        data: Path, tmp_path: Path) -> None:
    s = _run(data, tmp_path / "a", coarse_train)
    arm = _arm(s)
    assert arm["primary"]["wins_ties_losses"] == [0, 4, 0]
    assert "trained like the baseline" not in arm["decision_label"], arm["decision_label"]
    assert arm["decision_label"].endswith("tied on every seed (Δ = 0 each time)"), arm["decision_label"]
    md = (tmp_path / "a" / "report.md").read_text()
    assert "trained like the baseline" not in md and "may ignore" not in md
    said = [w for w in s["warnings"] if "vflip" in w and "every one of its 4 paired seeds" in w]
    assert len(said) == 1 and "test_nll" in said[0] and "may ignore" not in said[0], s["warnings"]
    assert said[0] in md or said[0].split(":")[0] in md


def test_an_arm_identical_on_every_recorded_result_still_trained_like_the_baseline(data: Path, tmp_path: Path) -> None:
    s = _run(data, tmp_path / "b", blind_train)
    arm = _arm(s)
    assert "trained like the baseline" in arm["decision_label"], arm["decision_label"]
    assert any("vflip" in w and "may ignore what the arm changes" in w for w in s["warnings"]), s["warnings"]


def test_decision_label_for_a_tie_names_no_cause() -> None:
    assert decision_label("inconclusive", delta_estimated=True, ties=4) == "inconclusive — tied on every seed (Δ = 0 each time)"
    assert decision_label("equivalent", delta_estimated=True, ties=4) == (
        "equivalent (δ estimated from these runs; exploratory) — tied on every seed (Δ = 0 each time)")


def timed_blind_train(data: Any, *, recipe: Any, seed: int, **kw: Any) -> dict[str, Any]:
    """Ignores the recipe, but returns wall-clock numbers, which differ from run to run (QA35 review #2)."""
    import time

    t0 = time.perf_counter()
    acc = 0.5 + 0.05 * (seed % 3)
    spent = time.perf_counter() - t0 + 1e-9 * (len(json.dumps(recipe)) + seed)  # never equal across arms
    return {"test": {"accuracy": acc, "eval_seconds": spent, "latency_ms": 1000 * spent, "wall_time": spent,
                     "samples_per_s": 1 / spent}, "best_epoch": 2}


def test_a_recipe_ignoring_trainer_that_reports_timings_still_trained_like_the_baseline(
        data: Path, tmp_path: Path) -> None:
    """Timings differ on every run whatever the recipe: they are no evidence that the arm trained differently."""
    s = _run(data, tmp_path / "t", timed_blind_train)
    arm = _arm(s)
    assert arm["primary"]["wins_ties_losses"] == [0, 4, 0]
    assert "trained like the baseline" in arm["decision_label"], arm["decision_label"]
    assert any("vflip" in w and "may ignore what the arm changes" in w for w in s["warnings"]), s["warnings"]
    assert not any("trained differently" in w for w in s["warnings"]), s["warnings"]
    md = (tmp_path / "t" / "report.md").read_text()
    assert "may ignore what the arm changes" in md and "trained differently" not in md


def test_differing_results_skips_timing_like_keys_only() -> None:
    from mmdata.ablate.report import differing_results, timing_like

    b = {"arm": "b", "seed": 0, "test_accuracy": 0.5, "test_eval_seconds": 1.0, "test_latency_ms": 3.0,
         "test_time": 2.0, "test_wall": 1.0, "test_throughput": 9.0, "test_samples_per_s": 4.0, "test_nll": 0.7,
         "test_runtime": 1.0, "test_elapsed_s": 2.0}
    a = {k: (v + 1 if isinstance(v, float) and k != "test_accuracy" else v) for k, v in b.items()} | {"arm": "x"}
    assert differing_results([b, a], "b", "x", [0]) == ["test_nll"]
    for k in ("test_nll", "test_accuracy", "test_loss", "test_macro_f1", "test_ece", "best_epoch", "correct_on_test",
              "test_mae", "test_sensitivity", "missing_audio_accuracy", "test_mse"):
        assert not timing_like(k), k
