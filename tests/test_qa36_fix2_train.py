"""QA36 review of the ``train`` fixes: AUROC / AUPRC only in the reported evaluations (review #1), ranked over the
run's own classes when scoring data with unknown classes (#2), known to the ablation runner (#3), computed for
submission files with probabilities (#4), and the inert-arm notes naming what the arm changes (#5)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmdata
from mmdata.errors import RecipeError
from mmdata.train import evaluate as ev
from mmdata.train.evaluate import Scores, ranking_scores


def _dataset(root: Path) -> Path:
    from mmdata.testing.media import make_class_folders

    raw = make_class_folders(root / "raw", per_class=8, classes=("normal", "abnormal"))
    mmdata.shard(raw, root / "ds", split="train=0.5,val=0.25,test=0.25", progress=False)
    return root / "ds"


# -- #1: no ranking in the per-epoch val passes ---------------------------------------------------------------------


def test_per_epoch_val_keeps_no_probabilities_and_reported_val_is_ranked(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import train

    ds = _dataset(tmp_path)
    made: list[bool] = []
    real = Scores.__init__

    def spy(self: Scores, *a: Any, **kw: Any) -> None:
        real(self, *a, **kw)
        made.append(self.ranking)

    monkeypatch.setattr(Scores, "__init__", spy)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train(ds, epochs=3, seed=0, out=None, batch_size=8, threads=1, eval_robustness=False, modalities=["image"])
    # 3 per-epoch val passes unranked; one ranked val pass (the best epoch's) and the ranked test pass
    assert made.count(True) == 2, made
    assert made.count(False) == 3, made
    for split in ("val", "test"):
        assert {"auroc", "auprc"} <= set(m[split]), m[split]


def test_evaluate_ranking_false_gives_no_auroc() -> None:
    from mmdata import Sample, collate
    from mmdata.train import FusionModel

    model = FusionModel(["text"], "concat", classes=2)
    b = collate([Sample("a", {"text": "odd", "label": 1}), Sample("b", {"text": "even", "label": 0})])
    assert "auroc" not in ev.evaluate(model, [b], 2, ranking=False)["scores"]
    assert "auroc" in ev.evaluate(model, [b], 2)["scores"]
    s = Scores(2)
    s.update(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    assert s.kept == [] and "auroc" not in s.result()


# -- #2: unknown classes widen the logits, not the ranking ---------------------------------------------------------


def test_widened_binary_run_keeps_the_positive_class_rule() -> None:
    z = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    zw = torch.cat([z, z.new_full((6, 1), torch.finfo(z.dtype).min)], 1)
    s = Scores(3, ranking=True, ranked=2)
    s.update(zw, y)
    r = s.ranking_scores()
    # class 1 ranked against classes 0 and 2 (negatives): 2 positives above the 2 class-0 rows, tied with one
    # class-2 row (prob 0.88) and above the other
    p1 = torch.softmax(z.double(), 1)[:, 1].numpy()
    from sklearn.metrics import average_precision_score, roc_auc_score

    assert r["auroc"] == pytest.approx(roc_auc_score(y.numpy() == 1, p1))
    assert r["auprc"] == pytest.approx(average_precision_score(y.numpy() == 1, p1))
    # the run's own samples only, a perfect model: 1.0 / 1.0 (before: 0.75 / 0.556 with the widened column)
    s = Scores(3, ranking=True, ranked=2)
    s.update(zw[:4], y[:4])
    assert (s.ranking_scores()["auroc"], s.ranking_scores()["auprc"]) == (1.0, 1.0)


def test_widened_multiclass_ranks_only_the_runs_classes() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=40)
    y = rng.integers(0, 4, size=40)  # class 3: unknown to the run
    pw = np.concatenate([p, np.zeros((40, 1))], 1)
    r = ranking_scores(pw, y, 3)
    from sklearn.metrics import roc_auc_score

    want = np.mean([roc_auc_score(y == c, p[:, c]) for c in range(3)])
    assert r["auroc"] == pytest.approx(want) and r["auroc_skipped"] == []


def test_evaluate_run_with_unknown_classes_ranks_the_runs_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import score_run

    seen: dict[str, Any] = {}
    real = ev.evaluate

    def spy(*a: Any, **kw: Any) -> Any:
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(ev, "evaluate", spy)
    from mmdata.testing.media import make_class_folders
    from mmdata.train import train

    ds = _dataset(tmp_path)
    raw3 = make_class_folders(tmp_path / "raw3", per_class=4, classes=("normal", "abnormal", "other"))
    mmdata.shard(raw3, tmp_path / "ds3", split="train=0.5,test=0.5", progress=False)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(ds, epochs=1, seed=0, out=tmp_path / "run", batch_size=8, threads=1, eval_robustness=False,
              modalities=["image"])
        r = score_run.evaluate_run(tmp_path / "run", tmp_path / "ds3", split="test", out=tmp_path / "ev")
    assert seen.get("ranked") == 2
    assert r["scores"]["auroc"] is None or 0.0 <= r["scores"]["auroc"] <= 1.0
    assert "auroc_skipped" not in r  # the unknown class is no ranked class


# -- #3: the ablation runner knows test.auroc / test.auprc --------------------------------------------------------


def test_ablation_takes_test_auroc_as_its_metric_and_labels_it() -> None:
    from mmdata.ablate.design import load_ablation
    from mmdata.ablate.report import _secondary, diff_limits

    ab = load_ablation({"dataset": {"name": "avdigits"}, "seeds": 2, "metric": {"name": "test.auroc"},
                        "design": {"mode": "explicit", "arms": {"a": None}}})
    assert (ab.metric.column, ab.metric.scale, ab.metric.higher_is_better) == ("test_auroc", 100.0, True)
    with pytest.raises(RecipeError, match="a higher AUPRC is better"):
        load_ablation({"dataset": {"name": "avdigits"}, "seeds": 2,
                       "metric": {"name": "test.auprc", "higher_is_better": False},
                       "design": {"mode": "explicit", "arms": {"a": None}}})
    rows = [{"arm": "a", "seed": 0, "test_accuracy": 0.5, "test_auroc": 0.7, "test_auprc": 0.6}]
    sec = _secondary(rows, "test_accuracy")
    assert sec["test_auroc"] == ("AUROC (points)", 100.0, True)
    assert sec["test_auprc"] == ("AUPRC (points)", 100.0, True)
    assert diff_limits("test_auroc", 100.0) == (-100.0, 100.0)


def test_partly_missing_auroc_is_analysed_on_the_seeds_that_have_it(tmp_path: Path) -> None:
    from mmdata.ablate import run

    ds = _dataset(tmp_path)

    def fake(data: Any, *, recipe: Any, seed: int, label_noise: float, device: str, threads: int, **kw: Any) -> dict:
        arm_bump = 0.1 if recipe else 0.0
        return {"test": {"accuracy": 0.5 + 0.01 * seed + arm_bump,
                         "auroc": None if seed == 0 else 0.6 + 0.01 * seed + arm_bump}}

    cfg = {"dataset": {"path": str(ds)}, "seeds": 3, "controls": {"identity": False, "label_noise": False},
           "design": {"mode": "explicit", "arms": {"flip": {"image": [{"op": "hflip", "p": 1.0}]}}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(cfg, out=tmp_path / "abl", train_fn=fake, workers=1)
    import json

    import pyarrow.parquet as pq

    runs = pq.read_table(tmp_path / "abl" / "runs.parquet").to_pylist()
    summary = json.loads((tmp_path / "abl" / "summary.json").read_text())
    text = json.dumps(summary)
    assert {r["status"] for r in runs} == {"ok"}, runs
    assert sum(r["test_auroc"] is None for r in runs) == 2  # seed 0 of both arms: null, not failed
    (arm,) = summary["arms"]
    got = arm["exploratory"]["test_auroc"]
    # analysed on the 2 seeds that have it, in points (x100), higher better, bounded like accuracy
    assert got["n_seeds"] == 2 and got["mean_diff"] == pytest.approx(10.0) and got["higher_is_better"] is True
    assert got["possible_range"] == [-100.0, 100.0]
    assert "test_auprc" not in arm["exploratory"]  # never returned: no column analysed


# -- #4: submission scoring --------------------------------------------------------------------------------------


def _submission(ds: Path, path: Path, probs: bool) -> Path:
    import pyarrow.parquet as pq

    import json

    idx = pq.read_table(ds / "index.parquet").to_pylist()
    names = json.loads((ds / "dataset.json").read_text())["label_names"]  # the data's class 1 is the positive
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "pred", *([f"prob_{names[0]}", f"prob_{names[1]}"] if probs else [])])
        for r in idx:
            if r["split"] != "test":
                continue
            p1 = 0.9 if r["label"] == 1 else 0.2
            w.writerow([r["key"], names[int(p1 > 0.5)], *([1 - p1, p1] if probs else [])])
    return path


def test_submission_with_probabilities_has_auroc_auprc(tmp_path: Path) -> None:
    from mmdata.train.submissions import score_predictions

    ds = _dataset(tmp_path)
    r = score_predictions(_submission(ds, tmp_path / "p.csv", True), ds, "test")
    assert (r["scores"]["auroc"], r["scores"]["auprc"]) == (1.0, 1.0)
    r = score_predictions(_submission(ds, tmp_path / "q.csv", False), ds, "test")
    assert "auroc" not in r["scores"] and "auprc" not in r["scores"]


def test_submission_table_drops_the_columns_without_probabilities(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    ds = _dataset(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["evaluate", str(_submission(ds, tmp_path / "q.csv", False)), str(ds)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "AUROC" not in out.output and "ECE" in out.output
    out = runner.invoke(app, ["evaluate", str(_submission(ds, tmp_path / "p.csv", True)), str(ds)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "AUROC" in out.output


# -- #5: inert arms ------------------------------------------------------------------------------------------------


def _arrays(tmp: Path) -> Path:
    rng = np.random.default_rng(5)
    raw = tmp / "raw_arr"
    for ci, c in enumerate(("walk", "run")):
        (raw / c).mkdir(parents=True)
        for i in range(8):
            np.save(raw / c / f"{c}{i:02d}.npy", (rng.normal(size=(20, 3)) * (1 + ci)).astype(np.float32))
    mmdata.shard(raw, tmp / "dsa", split={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    return tmp / "dsa"


NOISE = {"op": "noise", "p": 1.0}
GAIN = {"op": "gain", "p": 1.0}


def test_inert_arm_note_names_what_the_arm_drops(tmp_path: Path) -> None:
    from mmdata.ablate.design import inert_arms, load_ablation

    ds = _arrays(tmp_path)
    ab = load_ablation({"dataset": {"path": str(ds)}, "seeds": 2, "controls": {"label_noise": 0.3},
                        "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
                        "design": {"mode": "leave_one_out", "recipe": {"audio": [NOISE, GAIN]}}}, import_entry=False)
    notes = inert_arms(ab)["-audio.noise"]
    assert len(notes) == 1, notes
    assert notes[0].startswith("section 'audio' (noise) has no effect: "), notes
    assert "(noise, gain)" not in notes[0]
    assert "it stores array" in notes[0], notes


def test_inert_design_refusal_one_note_per_section(tmp_path: Path) -> None:
    from mmdata.ablate.design import inert_design, load_ablation

    ds = _arrays(tmp_path)
    ab = load_ablation({"dataset": {"path": str(ds)}, "seeds": 2,
                        "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
                        "design": {"mode": "leave_one_out", "recipe": {"audio": [NOISE, GAIN]}}}, import_entry=False)
    why = inert_design(ab)
    assert why is not None and why.count("section 'audio'") == 1, why
    assert "section 'audio' (noise, gain) has no effect" in why and "it stores array" in why, why


def test_the_train_table_fits_80_columns_and_auroc_is_said_under_it() -> None:
    """The two threshold-free scores did not fit the classes table at 80 columns (it fell apart): a line under it."""
    from mmdata.cli import train as cli_train

    assert "auroc" not in cli_train.SCORE_COLUMNS["classes"]
    line = cli_train.ranking_line({"val": {"auroc": 0.75, "auprc": 0.5}, "test": {"auroc": None, "auprc": None}})
    assert line == "threshold-free: val AUROC 0.750, AUPRC 0.500; test AUROC n/a, AUPRC n/a"
