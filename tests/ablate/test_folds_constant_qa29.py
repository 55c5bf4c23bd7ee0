"""Review r2 of QA29 #4: `mmdata ablate-folds` shows no zero-width t interval for a metric with no spread either
(the single report's interval and note, shared)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmdata.ablate import run
from mmdata.ablate.folds import exploratory, gather
from mmdata.ablate.stats import t_interval
from mmdata.ablate.testing import synthetic_train

CUT = {"image": [{"op": "cutout", "p": 0.5}]}


def _train(data: Any, *, seed: int, test_split: str = "0", recipe: Any = None, **kw: Any) -> dict[str, Any]:
    """Accuracy of the synthetic trainer; `const` never varies; cutout shifts `loss` by 0.06 on every seed of
    fold 1 and by 0.08 on every seed of fold 2 (`shift`: 0.06 on both)."""
    out = synthetic_train(data, seed=seed + 1000 * int(test_split), recipe=recipe, **kw)
    cut = any(s.get("op") == "cutout" for s in (recipe or {}).get("image", []))
    loss = 0.3 + 0.01 * seed
    return {**out, "test": {**out["test"], "const": 0.5, "shift": loss + 0.06 * cut,
                            "loss": loss + (0.06 if test_split == "1" else 0.08) * cut}}


def test_the_pooled_interval_of_equal_differences_is_none() -> None:
    e = exploratory({"1": {0: 0.0, 1: 0.0, 2: 0.0}, "2": {0: 0.0, 1: 0.0, 2: 0.0}})
    assert e is not None and e["ci95_t_unadjusted"] is None  # was [0.0, 0.0]: "+0.00 [+0.00, +0.00]"
    moved = exploratory({"1": {0: 1.0, 1: 2.0, 2: 3.0}})
    assert moved is not None and moved["ci95_t_unadjusted"] == t_interval([[1.0, 2.0, 3.0]])  # one fold: the paired t


def test_ablate_folds_reads_a_constant_metric_as_constant(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "seeds": 3, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}}}
    outs = [tmp_path / f"fold{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        run(cfg, o, train_fn=_train, workers=1, progress=False, plots=False, test_split=str(k), on_warning=lambda m: None)
    s = gather(outs, tmp_path / "pooled", plots=False)
    ex = next(a for a in s["arms"] if a["name"] == "cutout")["exploratory"]
    notes = {m.removeprefix("test_"): (e["ci95_t_unadjusted"], e.get("ci95_t_note")) for m, e in ex.items()}
    assert notes["const"] == (None, "constant on every run: no spread, no interval")
    assert notes["shift"] == (None, "the same Δ on every seed: no spread, no interval")
    assert notes["loss"] == (None, "the same Δ on every seed of a fold, another Δ in each fold: no spread, no interval")
    on_disk = json.loads((tmp_path / "pooled" / "summary.json").read_text())
    assert next(a for a in on_disk["arms"] if a["name"] == "cutout")["exploratory"] == ex
    table = (tmp_path / "pooled" / "report.md").read_text().split("## Exploratory")[1].split("\n## ")[0]
    assert "[+0.00, +0.00]" not in table and "constant on every run: no spread, no interval" in table, table
    assert "+0.06 (the same Δ on every seed: no spread" in table and "+0.07 (the same Δ on every seed of a fold" in table, table
