"""QA29 stats #4: an exploratory metric with no spread shows no (zero-width) t interval."""

from __future__ import annotations

import json
from pathlib import Path

from mmdata.ablate.report import no_spread_text
from mmdata.ablate.stats import t_interval


def test_no_spread_has_no_interval() -> None:
    assert t_interval([[0.0, 0.0, 0.0]]) is None and t_interval([[0.06, 0.06 + 1e-16, 0.06]]) is None
    assert t_interval([[1.0, 2.0]])[0] < 1.5 < t_interval([[1.0, 2.0]])[1]
    assert no_spread_text({"b": {0: 0.5, 1: 0.5}, "a": {0: 0.5, 1: 0.5}}, "b", "a", [0, 1]).startswith("constant")


def _train(data: object, *, recipe: object = None, seed: int = 0, label_noise: float = 0.0, **kw: object) -> dict:
    acc = 0.7 + 0.01 * ((seed * 7919) % 5) - 0.2 * label_noise
    # `const` never varies; `loss` moves with the seed, but label_noise shifts it by the same 0.06 on every seed
    return {"test": {"accuracy": acc, "const": 0.5, "loss": 0.3 + 0.01 * seed + 0.06 * (label_noise > 0)}}


def test_constant_exploratory_metric_reads_constant(tmp_path: Path) -> None:
    """`test.const` read `+0.00 [+0.00, +0.00]` on every arm, label_noise's `test.loss` `+0.060 [+0.060, +0.060]`."""
    from mmdata.ablate import run
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 3, "metric": "test.accuracy",
           "design": {"mode": "explicit", "baseline": None, "arms": {"same": None}},
           "controls": {"identity": False, "label_noise": 0.3}}
    run(cfg, tmp_path / "out", train_fn=_train, workers=1, progress=False, plots=False)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    ex = {a["name"]: a["exploratory"] for a in s["arms"]}
    for arm in ("same", "label_noise"):
        const = next(e for m, e in ex[arm].items() if "const" in m)
        assert const["ci95_t_unadjusted"] is None and const["ci95_t_note"].startswith("constant on every run")
    loss = next(e for m, e in ex["label_noise"].items() if "loss" in m)
    assert loss["ci95_t_unadjusted"] is None and loss["ci95_t_note"].startswith("the same Δ on every seed")
    table = (tmp_path / "out" / "report.md").read_text().split("## Exploratory")[1].split("\n## ")[0]
    assert "[+0.00, +0.00]" not in table and "[+0.060, +0.060]" not in table
    assert "constant on every run: no spread" in table and "the same Δ on every seed: no spread" in table
