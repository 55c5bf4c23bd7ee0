"""QA34 (statistician): what the report *claims* on top of the tests.

1. `equivalent` / `(negligible)` under the default δ (the baseline's seed sd from these very runs) is
   exploratory, not a confirmatory equivalence claim: labelled so in summary.json, report.md and the forest plot.
2. The MDE is a paired-t approximation, optimistic for the exact sign-flip test at few seeds: labelled so.
3. An A/A control that tied the baseline on every seed (a trainer that ignores the recipe's seed) checked
   nothing: not applicable, never "Controls passed"; any arm that tied on every seed is warned about.
4. The intervals are per-arm at each arm's Holm level, not simultaneous: said.
5. An identity control known before the runs to be not applicable holds no place in the Holm family.
6. A share metric (accuracy) returned in percent is warned about, naming the value.

Trainers are tiny deterministic functions of (seed, recipe): no training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmdata.ablate import run
from mmdata.ablate.schedule import Design, walk
from mmdata.ablate.stats import analyze

HFLIP = {"op": "hflip", "p": 0.5}


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16))


def _arm(op: str) -> dict[str, Any]:
    return {"seed": 0, "image": [HFLIP, {"op": op, "p": 0.5}]}


def noisy_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """A seed effect (sd 1 point), small per-recipe noise, +3 points for cutout, -30 points per unit label noise."""
    rj = json.dumps(recipe, sort_keys=True)
    acc = (0.8 + _rng(seed, "s").normal(0, 0.01) + _rng(seed, rj + str(label_noise)).normal(0, 0.001)
           + (0.03 if "cutout" in rj else 0.0) - 0.3 * label_noise)
    return {"test": {"accuracy": float(acc)}}


def seedless_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """Ignores the recipe's own seed (its augmentation draws): identity and vflip score as the baseline."""
    rj = json.dumps(recipe, sort_keys=True)
    return {"test": {"accuracy": 0.8 + _rng(seed, "s").normal(0, 0.01) + (0.01 if "cutout" in rj else 0.0)
                     - 0.3 * label_noise}}


def percent_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """Accuracy in percent (80.0), not a share (0.80)."""
    out = noisy_train(data, recipe=recipe, seed=seed, label_noise=label_noise)
    return {"test": {"accuracy": 100 * out["test"]["accuracy"]}}


def _quiet(msg: str) -> None:
    """Design warnings: beside the point here."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("claims") / "av", limit=4, progress=False)


def _cfg(data: Path, seeds: int, **kw: Any) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "seeds": seeds,
            "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]},
                       "arms": {"cut": _arm("cutout"), "vflip": _arm("vflip")}},
            "controls": {"label_noise": 0.3, "identity": True}, **kw}


def _run(cfg: dict[str, Any], out: Path, fn: Any, **kw: Any) -> dict[str, Any]:
    return run(cfg, out, train_fn=fn, workers=1, progress=False, on_warning=_quiet, **{"plots": False, **kw})


def _by(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in s["arms"] if a["name"] == name)


# 1. equivalence under an estimated δ -----------------------------------------------------------------


def test_equivalent_under_the_default_delta_is_labelled_exploratory(data: Path, tmp_path: Path,
                                                                   figures: dict[str, Any]) -> None:
    s = _run(_cfg(data, 10), tmp_path / "a", noisy_train, plots=True)
    vf = _by(s, "vflip")
    assert vf["decision"] == "equivalent"  # the machine-readable verdict stays the rule's
    assert vf["decision_label"] == "equivalent (δ estimated from these runs; exploratory)"
    assert vf["equivalence_confirmatory"] is False
    assert s["delta"]["confirmatory"] is False and "set `delta:`" in s["delta"]["note"]
    assert _by(s, "cut")["decision_label"] == "helps"  # a verdict against 0 needs no δ
    md = (tmp_path / "a" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| vflip |"))
    assert "equivalent (δ estimated from these runs; exploratory)" in row
    assert "not error-controlled" in md and "before the runs" in md
    texts = [t.get_text() for ax in figures["forest.png"].axes for t in ax.texts]
    assert any("exploratory" in t for t in texts if t.startswith("equivalent"))
    titles = [ax.get_title() for ax in figures["paired.png"].axes]
    assert any("equivalent (exploratory)" in t for t in titles), titles  # the paired panels say it too
    # δ fixed in the recipe before the runs: the same verdict is a confirmatory one
    s = _run(_cfg(data, 10, delta=1.0), tmp_path / "b", noisy_train)
    vf = _by(s, "vflip")
    assert vf["decision"] == vf["decision_label"] == "equivalent" and vf["equivalence_confirmatory"] is True
    assert s["delta"]["confirmatory"] is True


# 2. / 4. what the MDE and the intervals are --------------------------------------------------------


def test_mde_and_intervals_are_labelled_for_what_they_are(data: Path, tmp_path: Path) -> None:
    s = _run(_cfg(data, 10), tmp_path / "a", noisy_train)
    assert "paired-t approximation" in _by(s, "cut")["primary"]["mde_method"]
    md = (tmp_path / "a" / "report.md").read_text()
    assert "MDE (80%, paired-t approx.)" in md and "optimistic" in md
    assert "not simultaneous" in md and "joint coverage" in md


# 3. an A/A control that tied the baseline on every seed ----------------------------------------------


def test_an_identity_that_tied_on_every_seed_is_not_a_passed_control(data: Path, tmp_path: Path) -> None:
    s = _run(_cfg(data, 10), tmp_path / "a", seedless_train)
    c = s["controls"]
    assert c["identity"]["applicable"] is False and "every" in c["identity"]["note"]
    assert c["verdict"] == "passed" and "not applicable" in c["headline"]  # the planted arm still checked
    assert "`identity` (A/A) is" not in c["headline"]
    assert _by(s, "identity")["decision_label"].startswith("not applicable")
    # an ordinary arm that tied on every seed: said, with what it means
    assert any("vflip" in w and "every one of its 10 paired seeds" in w for w in s["warnings"])
    assert _by(s, "vflip")["decision_label"].startswith("equivalent")
    assert "trained like the baseline" in _by(s, "vflip")["decision_label"]


# 5. a control known to be vacuous takes no Holm slot ------------------------------------------------


def test_a_known_inapplicable_identity_holds_no_place_in_the_holm_family(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 7,
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"cut": {"image": [{"op": "cutout", "p": 0.5}]}, "vflip": {"image": [{"op": "vflip", "p": 0.5}]}}},
           "controls": {"identity": True, "label_noise": 0.3}}
    s = _run(cfg, tmp_path / "a", noisy_train)
    assert _by(s, "identity")["decision"] == "not applicable"
    assert s["design"]["holm_arms"] == 3 and _by(s, "cut")["decision"] == "helps"
    assert _by(s, "label_noise")["decision"] == "hurts"
    assert "not applicable" in s["controls"]["headline"] and s["controls"]["verdict"] == "passed"
    md = (tmp_path / "a" / "report.md").read_text()
    assert "**not applicable**" in next(line for line in md.splitlines() if line.startswith("| identity |"))


def test_analyze_and_walk_leave_inapplicable_arms_out_of_the_family() -> None:
    rng = np.random.default_rng(0)
    diffs = {"a": dict(enumerate(rng.normal(3, 1, 7))), "b": dict(enumerate(rng.normal(3, 1, 7))),
             "identity": dict.fromkeys(range(7), 0.0)}
    r = analyze(diffs, delta=1.0, inapplicable_arms=["identity"])
    assert r["identity"]["decision"] == "not applicable"
    assert max(r["a"]["holm_divisor"], r["b"]["holm_divisor"]) == 2 and r["a"]["rejected"] and r["b"]["rejected"]
    with_it = analyze(diffs, delta=1.0)
    assert max(with_it["a"]["holm_divisor"], with_it["b"]["holm_divisor"]) == 3
    st = walk(diffs, Design.fixed(7, outside=("identity",)), 1)
    assert st.arms["identity"].divisor == 0 and max(st.arms["a"].divisor, st.arms["b"].divisor) == 2


# 6. accuracy in percent ----------------------------------------------------------------------------


def test_accuracy_returned_in_percent_is_warned_about(data: Path, tmp_path: Path) -> None:
    s = _run(_cfg(data, 8), tmp_path / "a", percent_train)
    w = [m for m in s["warnings"] if "percent" in m]
    assert len(w) == 1 and "test.accuracy" in w[0] and "[0, 1]" in w[0] and "baseline, seed 0" in w[0]
    s = _run(_cfg(data, 8), tmp_path / "b", noisy_train)
    assert not any("percent" in m for m in s["warnings"])
