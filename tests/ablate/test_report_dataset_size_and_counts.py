"""QA35 grader #6: report.md did not say how big the dataset was — ``avdigits`` with ``limit: 6`` (60 samples)
and ``limit: 8`` (80) read the same. QA35 grader #4: paired.png drew the tie count "×4" and the loss count "×2"
on top of each other where both groups of lines end at the same arm value.

Trainers are tiny deterministic functions of (seed, recipe): no training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate import run
from mmdata.ablate.design import load_ablation
from mmdata.ablate.report import write_report
from mmdata.ablate.schedule import next_runs

HFLIP = {"op": "hflip", "p": 0.5}
ARMS = {"vflip": {"seed": 0, "image": [HFLIP, {"op": "vflip", "p": 0.5}]}}


def seed_train(data: Any, *, recipe: Any, seed: int, **kw: Any) -> dict[str, Any]:
    return {"test": {"accuracy": 0.5 + 0.1 * (seed % 3) + (0.1 if len(recipe["image"]) > 1 else 0.0)}}


def _design(out: Path) -> str:
    md = (out / "report.md").read_text()
    return md.split("## Design", 1)[1].split("\n\n", 2)[1]


@pytest.mark.parametrize("limit", [4, 5])
def test_the_design_paragraph_names_the_limit_and_the_split_sizes(tmp_path: Path, limit: int) -> None:
    cfg = {"dataset": {"name": "avdigits", "seed": 0, "limit": limit}, "seeds": 3,
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]}, "arms": ARMS},
           "controls": {"identity": False}}
    s = run(cfg, tmp_path / "out", train_fn=seed_train, workers=1, progress=False, plots=False,
            on_warning=lambda m: None)
    size = s["dataset"]
    assert size["samples"] == 10 * limit and size["limit"] == limit, size
    assert list(size["splits"]) == ["train", "val", "test"] and sum(size["splits"].values()) == 10 * limit
    design = _design(tmp_path / "out")
    counts = " / ".join(str(n) for n in size["splits"].values())
    assert f"`limit: {limit}` per class" in design, design
    assert f"{10 * limit} samples (train / val / test: {counts})" in design, design


def test_a_dataset_given_by_path_says_its_size(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "seeds": 3,
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]}, "arms": ARMS},
           "controls": {"identity": False}}
    s = run(cfg, tmp_path / "out", train_fn=seed_train, workers=1, progress=False, plots=False,
            on_warning=lambda m: None)
    assert s["dataset"]["samples"] == 40 and s["dataset"]["limit"] is None
    assert "40 samples (train / val / test: " in _design(tmp_path / "out")


def test_counts_of_lines_ending_at_one_point_do_not_overprint(tmp_path: Path, figures: dict[str, Any]) -> None:
    """fay's label_noise panel: seeds 0, 1, 3, 5 tie at (10 → 10), seeds 2, 4 lose (20 → 10)."""
    ab = load_ablation({"dataset": {"name": "avdigits", "seed": 0},
                        "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}, "seeds": 6,
                        "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]}, "arms": ARMS},
                        "controls": {"identity": False}})
    base = [0.1, 0.1, 0.2, 0.1, 0.2, 0.1]
    rows = [{"arm": a, "seed": s, "status": "ok", "test_accuracy": base[s] if a == "baseline" else 0.1}
            for a in ("baseline", "vflip") for s in range(6)]
    values: dict[str, dict[int, float]] = {}
    for r in rows:
        values.setdefault(r["arm"], {})[r["seed"]] = r["test_accuracy"]
    state, _ = next_runs(ab.design(), "baseline", ["vflip"], values, {k: set(v) for k, v in values.items()})
    write_report(ab, tmp_path / "out", rows, "0" * 64, state)
    fig = figures["paired.png"]
    renderer = fig.canvas.get_renderer()
    ax = next(a for a in fig.axes if a.get_title().startswith("vflip"))
    marks = [t for t in ax.texts if t.get_text().startswith("×")]
    assert sorted(t.get_text() for t in marks) == ["×2", "×4"]
    a, b = (t.get_window_extent(renderer) for t in marks)
    assert not a.overlaps(b), (a, b)
    # the losses' count (lines from the higher baseline value) above the ties'
    y = {t.get_text(): t.get_window_extent(renderer).y0 for t in marks}
    assert y["×2"] > y["×4"]
