"""`mmdata ablate-folds` names an interval end that sits on tied units' value, as a single ablation's report does
(QA29 named such ends in `mmdata ablate` only: `[+0.00, +3.67]` across folds read "not worse")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmdata.ablate import run
from mmdata.ablate.folds import gather, pool
from mmdata.ablate.report import tie_text
from mmdata.ablate.testing import synthetic_train


def test_pool_counts_the_units_on_each_interval_end() -> None:
    tied = {"a": {"1": {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 2.94, 5: 5.88}, "2": {0: 0.0, 1: 2.94, 2: 0.0, 3: 0.0, 4: 8.82, 5: 0.0}}}
    e = pool(tied, delta=1.0)["a"]
    assert e["ci"][0] == 0.0 and e["ci_end_ties"] == [8, 0] and e["decision"] == "inconclusive"
    text = tie_text([{"name": "a", "decision": e["decision"], "primary": e}])
    assert text[1].startswith("`a` [+0.00, +3.67]: its lower end is the Δ that 8 of its 12 units share"), text
    spread = {"a": {"1": {0: -2.94, 1: -2.94, 2: -2.94, 3: 0.0, 4: 2.94, 5: -5.88}, "2": {0: -2.94, 1: 0.0, 2: -2.94, 3: -2.94, 4: -8.82, 5: -2.94}}}
    assert pool(spread, delta=1.0)["a"]["ci_end_ties"] == [0, 0]  # ends between the units' values: nothing to say
    assert pool({"b": {"1": {0: 1.0}}})["b"]["ci_end_ties"] == [0, 0]  # pending: no interval


def _train(data: Any, *, seed: int, test_split: str = "0", recipe: Any = None, **kw: Any) -> dict[str, Any]:
    """A coarse metric: cutout gains one test sample's worth (1/34) on every third seed, ties the baseline elsewhere."""
    out = synthetic_train(data, seed=seed + 1000 * int(test_split), recipe=recipe, **kw)
    cut = any(s.get("op") == "cutout" for s in (recipe or {}).get("image", []))
    return {**out, "test": {**out["test"], "accuracy": 0.5 + (cut and seed % 3 == 0) / 34}}


def test_the_report_across_folds_names_an_end_on_tied_units(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "seeds": 6, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}}}
    outs = [tmp_path / f"fold{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        run(cfg, o, train_fn=_train, workers=1, progress=False, plots=False, test_split=str(k), on_warning=lambda m: None)
    s = gather(outs, tmp_path / "pooled", plots=False)
    e = next(a for a in s["arms"] if a["name"] == "cutout")["primary"]
    assert e["ci"][0] == 0.0 and e["ci_end_ties"] == [8, 0], e
    on_disk = json.loads((tmp_path / "pooled" / "summary.json").read_text())
    assert next(a for a in on_disk["arms"] if a["name"] == "cutout")["primary"]["ci_end_ties"] == [8, 0]
    report = (tmp_path / "pooled" / "report.md").read_text()
    assert "its lower end is the Δ that 8 of its 12 units share" in report and "not 'not worse'" in report, report


def test_folds_trained_by_other_code_are_warned_of(tmp_path: Path, monkeypatch: Any) -> None:
    """QA30 upgrade #4: `ablate-folds` pooled folds whose runs different mmdata code trained without a word, though
    the code is part of a run's identity (docs/ablation.md)."""
    from mmdata.datasets.avdigits import build
    from mmdata.shards import writer

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "seeds": 3, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}}}
    outs = [tmp_path / f"fold{k}" for k in (1, 2)]
    run(cfg, outs[0], train_fn=_train, workers=1, progress=False, plots=False, test_split="1", on_warning=lambda m: None)
    monkeypatch.setattr(writer, "code_identity", lambda: "f" * 64)  # the second fold: another checkout's code
    run(cfg, outs[1], train_fn=_train, workers=1, progress=False, plots=False, test_split="2", on_warning=lambda m: None)
    s = gather(outs, tmp_path / "pooled", plots=False)
    said = [w for w in s["warnings"] if "different versions of mmdata's code" in w]
    import pandas as pd

    # the second fold's code as its runs recorded it (with a trainer from outside mmdata, as here, its digest joins
    # code_identity's: QA31, so the column is not the patched "fff..." itself)
    second = pd.read_parquet(outs[1] / "runs.parquet")["code"].astype(str).str[:12].unique().tolist()
    assert len(second) == 1 and len(said) == 1 and second[0] in said[0], (second, s["warnings"])
