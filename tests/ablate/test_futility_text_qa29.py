"""QA29 stats #3: the adaptive report said futility-stopped arms "read `inconclusive`, not `equivalent`" right under a
futility-stopped `identity` that read `equivalent`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmdata.ablate.report import futility_text


def test_the_paragraph_names_futile_arms_that_are_equivalent() -> None:
    eq = futility_text([{"name": "identity", "status": "futile", "decision": "equivalent"},
                        {"name": "same", "status": "futile", "decision": "inconclusive"}])
    assert "usually read `inconclusive`" in eq and "`identity` did reach `equivalent` where it stopped" in eq
    assert "`same`" not in eq and "so they read `inconclusive`, not" not in eq
    none = futility_text([{"name": "same", "status": "futile", "decision": "inconclusive"}])
    assert "did reach" not in none


def _train(data: object, *, recipe: object = None, seed: int = 0, label_noise: float = 0.0, **kw: object) -> dict:
    ops = json.dumps(recipe, sort_keys=True) if recipe else ""
    base = 0.7 + 0.05 * np.random.default_rng(seed).standard_normal()
    eff = (0.03 if '"p": 0.75' in ops else 0.0) - 0.2 * label_noise
    return {"test": {"accuracy": float(base + eff + 0.01 * np.random.default_rng([seed, len(ops)]).standard_normal())}}


def test_adaptive_report_text_agrees_with_its_table(tmp_path: Path) -> None:
    from mmdata.ablate import run
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 12, "metric": "test.accuracy",
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]},
                      "arms": {"stronger": {"seed": 0, "image": [{"op": "hflip", "p": 0.75}]},
                               "same": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}, {"op": "vflip", "p": 0.0}]}}},
           "controls": {"identity": True, "label_noise": 0.3}}
    s = run(cfg, tmp_path / "out", adaptive=True, train_fn=_train, workers=1, progress=False, plots=False)
    futile_eq = [a["name"] for a in s["arms"] if a["status"] == "futile" and a["decision"] == "equivalent"]
    assert futile_eq == ["identity"]  # the QA case: the A/A control stops for futility inside ±δ
    report = (tmp_path / "out" / "report.md").read_text()
    assert "`identity` did reach `equivalent` where it stopped" in report
    assert "so they read `inconclusive`, not `equivalent`" not in report
