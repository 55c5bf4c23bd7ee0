"""QA (2026-12-05): what the verdicts and the report's text say in four corners.

* δ = 0 (a baseline that scored the same on every seed): the warning said `equivalent` was unreachable, yet an arm
  whose every paired difference was 0 read `equivalent` (its interval [0, 0] lies in [-0, 0]); `ablate-folds` gave
  the same and no warning at all.
* An interrupted fold: `ablate-folds` said "seeds used 5 of 5" with 1 paired seed, called it "failed runs", and
  showed the left-out fold's mean Δ in the per-fold table like the pooled ones.
* A failed arm: "Family-wise error rate 0.05 across 3 arms" while Holm counted 2, and the failed arm showed an
  interval at the others' level.
* The exploratory table's caption named NLL and ECE whatever its columns (a regression primary: RMSE, r, R²).

Trainers here are tiny deterministic functions: no wall clock, no training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate import run
from mmdata.ablate.folds import gather
from mmdata.ablate.stats import analyze, decide
from mmdata.ablate.testing import synthetic_train

HFLIP = {"op": "hflip", "p": 0.5}
EXPLICIT = {"mode": "explicit", "baseline": {"seed": 0, "image": [HFLIP]},
            "arms": {"cut": {"seed": 0, "image": [HFLIP, {"op": "cutout", "p": 0.5}]}}}


def const_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """The QA repro: every seed scores 50% (20% with label noise), whatever the recipe."""
    return {"test": {"accuracy": 0.5 - (0.3 if label_noise else 0.0)}}


def fold_train(data: Any, *, seed: int, test_split: str = "0", **kw: Any) -> dict[str, Any]:
    """The synthetic trainer, other runs on each test fold."""
    return synthetic_train(data, seed=seed + 1000 * int(test_split), **kw)


def failing_train(data: Any, *, recipe: Any, seed: int, test_split: str = "0", **kw: Any) -> dict[str, Any]:
    """The synthetic trainer; every run of a recipe with `random_crop` fails (as 500x500 crops of small images do)."""
    if "random_crop" in json.dumps(recipe):
        raise ValueError("random_crop: size [500, 500] is larger than the image (32 x 32)")
    return synthetic_train(data, recipe=recipe, seed=seed + 1000 * int(test_split), **kw)


def regression_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    """A regression trainer's metrics (mmdata.train with a numeric trainer.target): MAE primary."""
    base = synthetic_train(data, recipe=recipe, seed=seed, label_noise=label_noise)["test"]["accuracy"]
    return {"test": {"mae": 2.0 - base, "rmse": 2.5 - base, "r": base, "r2": base - 0.1}}


def multilabel_train(data: Any, *, recipe: Any, seed: int, label_noise: float, **kw: Any) -> dict[str, Any]:
    base = synthetic_train(data, recipe=recipe, seed=seed, label_noise=label_noise)["test"]["accuracy"]
    return {"test": {"micro_f1": base, "macro_f1": base - 0.05, "map": base, "subset_accuracy": base - 0.2,
                     "hamming": 1.0 - base, "nll": 0.5}}


def _quiet(msg: str) -> None:
    """Design warnings (few seeds): beside the point here."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("verdict_text") / "av", limit=4, progress=False)


def _run(cfg: dict[str, Any], out: Path, fn: Any, **kw: Any) -> dict[str, Any]:
    return run(cfg, out, train_fn=fn, workers=1, progress=False, plots=False, on_warning=_quiet, **kw)


def _printed(fn: Any, s: dict[str, Any], out: Path) -> str:
    """What the CLI's table printer ``fn`` prints for summary ``s`` (on a wide pipe)."""
    import io
    from unittest import mock

    from rich.console import Console

    console = Console(file=io.StringIO(), width=250)
    with mock.patch("mmdata.cli.ablate.console", console):
        fn(s, out)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _arm(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in s["arms"] if a["name"] == name)


# 1. δ = 0 -----------------------------------------------------------------------------------------


def test_delta_zero_never_gives_equivalent() -> None:
    assert decide(False, (0.0, 0.0), 0.0, delta=0.0, n=8) == "inconclusive"
    assert decide(False, (-0.0, 0.0), 0.0, delta=-0.0, n=8) == "inconclusive"
    assert decide(True, (0.5, 0.5), 0.5, delta=0.0, n=8) == "helps"  # negligible unreachable too
    assert decide(False, (-1.0, 1.0), 0.0, delta=1.0, n=8) == "equivalent"  # at δ > 0 the bound is inclusive, as before
    r = analyze({"cut": {s: 0.0 for s in range(8)}}, delta=0.0)["cut"]
    assert r["ci"] == [0.0, 0.0] and r["decision"] == "inconclusive"


def test_delta_zero_ablation_reads_inconclusive_and_says_why(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 8, "design": EXPLICIT,
           "controls": {"label_noise": 0.3, "identity": False}}
    s = _run(cfg, tmp_path / "d0", const_train)
    cut = _arm(s, "cut")
    assert s["delta"]["value"] == 0.0 and "unreachable" in s["delta"]["warning"]
    assert cut["primary"]["ci"] == [0.0, 0.0] and cut["decision"] == "inconclusive"
    assert _arm(s, "label_noise")["decision"] == "hurts"
    text = (tmp_path / "d0" / "report.md").read_text()
    assert "never `equivalent`" in text and "`cut` [+0.00, +0.00]" in text, text


def test_delta_zero_across_folds_reads_inconclusive_and_warns(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 5, "design": EXPLICIT,
           "controls": {"label_noise": 0.3, "identity": False}}
    outs = [tmp_path / f"f{k}" for k in (1, 2, 3)]
    for k, o in enumerate(outs, start=1):
        _run(cfg, o, const_train, test_split=str(k))
    s = gather(outs, tmp_path / "pooled", plots=False)
    assert s["delta"]["value"] == 0.0 and _arm(s, "cut")["decision"] == "inconclusive"
    assert any(w.startswith("δ = 0") and "unreachable" in w for w in s["warnings"]) and "warning" in s["delta"]
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "> **Warning:** δ = 0" in text and "never `equivalent`" in text


# 6. an unfinished fold ----------------------------------------------------------------------------


def test_an_unfinished_fold_counts_its_paired_seeds_and_is_not_called_failed(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 5, "controls": {"label_noise": 0.3, "identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}}}
    outs = [tmp_path / f"f{k}" for k in (1, 2, 3)]
    _run(cfg, outs[0], fold_train, test_split="1")
    _run(cfg, outs[1], fold_train, test_split="2")
    # fold 3 interrupted: a run budget stops it after its first 4 runs (seed 0 of every arm, seed 1 of the baseline)
    _run(cfg, outs[2], fold_train, test_split="3", max_runs=4)
    s = gather(outs, tmp_path / "pooled", plots=False)
    f3 = s["folds"][2]
    assert not f3["complete"] and f3["runs_ok"] == 4 and f3["seeds_used"] == 1 and f3["seeds_planned"] == 5
    assert [f["seeds_used"] for f in s["folds"][:2]] == [5, 5]
    for name in ("cutout", "label_noise"):
        e = _arm(s, name)["primary"]
        assert e["folds_left_out"] == ["3"] and e["per_fold"][2]["left_out_because"] == "unfinished"
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "| 3 | " in text and "| 1 of 5 |" in text and "5 of 5" not in text.split("| 3 | ")[1].split("\n")[0]
    assert "failed runs" not in text and "`cutout`: 3 (unfinished)" in text
    row = next(line for line in text.splitlines() if line.startswith("| label_noise |") and "left out" in line)
    assert "left out (1 seed; unfinished)" in row
    from mmdata.cli.ablate import _print_folds  # the terminal's table says so too (it showed fold 3's mean Δ)

    shown = _printed(_print_folds, s, tmp_path / "pooled")
    assert "(left out: unfinished)" in shown and "left out: failed" not in shown, shown
    # a fold whose runs failed is said to have failed runs
    fail_cfg = {**cfg, "trainer": {"fail": {"seeds": [3000, 3001, 3002, 3003, 3004], "arm_has": "image.cutout"}}}
    outs_f = [tmp_path / f"g{k}" for k in (1, 2, 3)]
    for k, o in enumerate(outs_f, start=1):
        _run(fail_cfg, o, fold_train, test_split=str(k))
    s = gather(outs_f, tmp_path / "pooled_f", plots=False)
    assert _arm(s, "cutout")["primary"]["per_fold"][2]["left_out_because"] == "failed runs"
    assert s["folds"][2]["seeds_used"] == 5  # label_noise has all five there
    assert "`cutout`: 3 (failed runs)" in (tmp_path / "pooled_f" / "report.md").read_text()


# 7. a failed arm and the Holm family --------------------------------------------------------------


def test_a_failed_arm_is_not_counted_in_the_holm_family_and_shows_no_interval(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 6, "controls": {"label_noise": 0.3, "identity": False},
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]},
                               "big_crop": {"image": [{"op": "random_crop", "size": [500, 500]}]}}}}
    s = _run(cfg, tmp_path / "one", failing_train)
    assert _arm(s, "big_crop")["decision"] == "failed" and s["design"]["holm_arms"] == 2
    assert {_arm(s, a)["primary"]["holm_divisor"] for a in ("cutout", "label_noise")} <= {1, 2}
    text = (tmp_path / "one" / "report.md").read_text()
    assert "Family-wise error rate 0.05 across 2 arms (Holm; the failed arm `big_crop` holds no place in the family)" in text
    row = next(line for line in text.splitlines() if line.startswith("| big_crop |"))
    assert "— (failed)" in row and "∞" not in row and "%" not in row
    assert "Holm step-down across 2 arms" in s["test"]
    from mmdata.cli.ablate import _print_folds, _print_summary  # and the terminal's tables

    row = next(line for line in _printed(_print_summary, s, tmp_path / "one").splitlines() if "big_crop" in line)
    assert "— (failed)" in row and "∞" not in row, row
    outs = [tmp_path / f"f{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _run(cfg, o, failing_train, test_split=str(k))
    g = gather(outs, tmp_path / "pooled", plots=False)
    assert _arm(g, "big_crop")["decision"] == "failed"
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "across 2 arms (Holm; the failed arm `big_crop` holds no place in the family)" in text
    row = next(line for line in text.splitlines() if line.startswith("| big_crop |") and "failed" in line)
    assert "— (failed)" in row and "∞" not in row
    row = next(line for line in _printed(_print_folds, g, tmp_path / "pooled").splitlines() if "big_crop" in line)
    assert "— (failed)" in row and "∞" not in row, row


# 8. the exploratory caption -----------------------------------------------------------------------


def test_the_exploratory_caption_names_the_directions_of_its_own_columns(data: Path, tmp_path: Path) -> None:
    cfg = {"dataset": {"path": str(data)}, "seeds": 3, "metric": "test.mae", "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}}}
    _run(cfg, tmp_path / "reg", regression_train)
    text = (tmp_path / "reg" / "report.md").read_text()
    caption = text.split("## Exploratory: other metrics")[1].split("\n\n")[1]
    assert "lower is better for RMSE; higher for the others" in caption and "NLL" not in caption, caption
    _run({**cfg, "metric": "test.micro_f1"}, tmp_path / "ml", multilabel_train)
    text = (tmp_path / "ml" / "report.md").read_text()
    caption = text.split("## Exploratory: other metrics")[1].split("\n\n")[1]
    assert "lower is better for NLL, Hamming loss (points); higher for the others" in caption and "ECE" not in caption
