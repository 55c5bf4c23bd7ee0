"""The ablation report on data other than avdigits (QA round 25, persona D): it names the target and the trivial
reference a model must beat (the best constant predictor's accuracy / macro-F1, the MAE of predicting the training
mean), warns of runs at that reference, of a test split too small or missing a trained class, of a baseline at the
metric's bound and of δ / MDE beyond its headroom; it counts wins / ties / losses, prints rounding as 0, tells a
control that lost runs from one that missed, and draws tied seeds and the metric's direction in its figures."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import mmdata
from mmdata.ablate.report import _controls, _secondary, clean_mean
from mmdata.ablate.report_reference import constant_runs, reference_warnings
from mmdata.testing import shard_target_dataset


@pytest.fixture(scope="module")
def tiny_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sharded dataset whose test split is 6 examples of two classes: the third class is trained on, never
    tested (the reporter's manifest_tiny)."""
    import mmdata.testing.messy as ms

    root = tmp_path_factory.mktemp("tiny_test")
    m = ms.make_messy_folder(root / "raw", n=60, seed=3, sizes=((24, 24), (20, 28)), seconds=(0.4, 0.6))
    ms.write_manifest(m, "manifest.csv", targets=True)
    man = pd.read_csv(root / "raw" / "manifest.csv", dtype=str, keep_default_na=False)
    man = man[man["label"] != ""].reset_index(drop=True)
    man["split"] = "train"
    names = sorted(set(man["label"]))
    lab = man["label"]
    test = list(man[lab == names[0]].index[:4]) + list(man[lab == names[1]].index[:2])
    val = [i for n in names for i in man[lab == n].index[4:6]]
    man.loc[test, "split"] = "test"
    man.loc[val, "split"] = "val"
    man.to_csv(root / "raw" / "manifest_tiny.csv", index=False)
    mmdata.shard(root / "raw" / "manifest_tiny.csv", root / "ds", meta=["score"])
    return root / "ds"


def _recipe(data: Path, **trainer: object) -> dict:
    return {"dataset": {"path": str(data)}, "seeds": 3,
            "trainer": {"epochs": 1, "batch_size": 16, **trainer},
            "design": {"mode": "explicit", "baseline": None,
                       "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout", "p": 0.5}]}}},
            "controls": {"identity": False, "label_noise": 0.3}}


@pytest.mark.slow  # trains 9 tiny runs (about a minute on 2 cores)
def test_a_classification_report_names_its_reference_and_warns_of_its_tiny_test_split(tiny_test: Path, tmp_path: Path,
                                                                                       figures: dict) -> None:
    out = tmp_path / "o"
    s = mmdata.ablate.run(_recipe(tiny_test), out, workers=1, progress=False)
    idx = pd.read_parquet(tiny_test / "index.parquet")
    card = json.loads((tiny_test / "dataset.json").read_text())
    names = card["label_names"]
    test = Counter(names[int(v)] for v in idx[(idx.split == "test") & idx.label.notna()].label)
    train = Counter(names[int(v)] for v in idx[(idx.split == "train") & idx.label.notna()].label)
    majority, k = test.most_common(1)[0]
    n = sum(test.values())
    ref = s["target"]
    assert ref["kind"] == "classes" and ref["key"] is None and ref["n_test"] == n
    assert ref["best_constant"] == majority and ref["constant"][majority]["accuracy"] == pytest.approx(k / n)
    # always predicting the majority: its F1 is 2p / (1 + p), the other present class's 0, averaged over the 2 present
    assert ref["constant"][majority]["macro_f1"] == pytest.approx(2 * (k / n) / (1 + k / n) / 2)
    gone = [c for c in names if train[c] and not test[c]]
    assert gone and ref["absent_from_test"] == gone
    # runs at the constant predictor, counted here from runs.parquet: the report's count is the same
    rows = pd.read_parquet(out / "runs.parquet")
    at = sum(any(abs(r.test_accuracy - c["accuracy"]) < 1e-6 and abs(r.test_macro_f1 - c["macro_f1"]) < 1e-6
                 for c in ref["constant"].values()) for r in rows.itertuples())
    assert ref["runs_at_trivial_reference"]["runs"] == at and ref["runs_at_trivial_reference"]["of"] == len(rows)
    report = (out / "report.md").read_text()
    design = report.split("## Design")[1].split("## Confirmatory")[0]
    assert "the dataset's class label" in design and f"{100 * k / n:.2f} points (always `{majority}`" in design
    assert "another class than their own" in design and "label-noise flips" not in report
    warned = " ".join(s["warnings"])
    assert f"has {n} labelled examples: one example moves accuracy by {100 / n:.2f} points" in warned
    assert f"`{gone[0]}` ({train[gone[0]]} training examples) is trained on but absent from the test split" in warned
    assert ("runs scored exactly a constant predictor" in warned) == (at > 0)
    for w in s["warnings"]:
        assert w[:40] in report  # every warning is at the top of report.md too
    # wins / ties / losses: the paired seeds of paired.csv, counted here
    with open(out / "paired.csv") as f:
        seeds = list(csv.DictReader(f))
    for a in s["arms"]:
        d = [float(r["difference"]) for r in seeds if r["arm"] == a["name"]]
        wtl = [sum(v > 0 for v in d), sum(v == 0 for v in d), sum(v < 0 for v in d)]
        assert a["primary"]["wins_ties_losses"] == wtl
        assert f"| {'/'.join(map(str, wtl))} |" in report.split(f"| {a['name']} |")[1].split("\n")[0]
    assert "| wins / ties / losses | P(beats) + ½·P(tie) on a new seed" in report
    # the forest plot says which side is better; the paired plot marks k seeds drawn on one line ×k
    forest = " ".join(t.get_text() for t in figures["forest.png"].axes[0].texts)
    assert "← baseline better" in forest and "arm better →" in forest
    assert "higher is better: right of 0, the arm is better" in " ".join(figures["forest.png"].axes[0].get_xlabel().split())
    drawn = {ax.get_title().split("\n")[0]: sorted(t.get_text() for t in ax.texts if t.get_text().startswith("×"))
             for ax in figures["paired.png"].axes if ax.get_title()}
    for a in s["arms"]:
        same = Counter((r["baseline"], r["arm_value"]) for r in seeds if r["arm"] == a["name"])
        assert drawn[a["name"]] == sorted(f"×{k}" for k in same.values() if k > 1)


@pytest.mark.slow  # trains 9 tiny runs
def test_a_regression_report_names_the_target_its_units_and_the_mean_predictor(tmp_path: Path) -> None:
    data = shard_target_dataset(tmp_path / "t", n=60, manifest="manifest.jsonl", meta=("score",))
    out = tmp_path / "o"
    s = mmdata.ablate.run({**_recipe(data, target="score", eval_robustness=True), "metric": "test.mae"}, out,
                          workers=1, progress=False)
    ref = s["target"]
    assert ref["kind"] == "regression" and ref["key"] == "score"
    mae = pd.read_parquet(out / "runs.parquet").test_mae
    assert ref["runs_at_trivial_reference"]["runs"] == int((mae >= ref["mean_mae"] - 1e-6).sum())
    report = (out / "report.md").read_text()
    assert "`trainer.target: score`, a regression; MAE and RMSE are in units of `score`" in report
    assert f"scores MAE {ref['mean_mae']:.4g}" in report and "standard-normal draw in standardised units" in report
    # labels without internal commas, and a word where the robustness figure is not drawn
    assert "corruption AUC of MAE (image)" in report and "corruption AUC of MAE, image" not in report
    assert "No robustness figure" in report and not (out / "robustness.png").exists()


def test_runs_at_a_constant_predictor_and_a_baseline_at_the_ceiling_are_warned_of() -> None:
    ref = {"kind": "classes", "key": None, "test_split": "test", "n_test": 8, "names": ["a", "b", "c"],
           "train_counts": {"a": 10, "b": 5, "c": 4}, "test_counts": {"a": 5, "b": 3, "c": 0}, "absent_from_test": ["c"],
           "constant": {"a": {"accuracy": 5 / 8, "macro_f1": (2 * 5 / 8 / (1 + 5 / 8)) / 2},
                        "b": {"accuracy": 3 / 8, "macro_f1": (2 * 3 / 8 / (1 + 3 / 8)) / 2}}, "best_constant": "a"}
    rows = [{"arm": "baseline", "seed": 0, "status": "ok", "test_accuracy": 0.625, "test_macro_f1": 0.3846153846},
            {"arm": "x", "seed": 0, "status": "ok", "test_accuracy": 0.625, "test_macro_f1": 0.5},  # not one class
            {"arm": "x", "seed": 1, "status": "ok", "test_accuracy": 0.375, "test_macro_f1": 0.2727272727},
            {"arm": "x", "seed": 2, "status": "failed"}]
    const = constant_runs(ref, rows)
    assert const == {"runs": 2, "of": 3, "arms": {"baseline": 1, "x": 1}}

    class Metric:
        column, scale, higher_is_better = "test_accuracy", 100.0, True

    w = reference_warnings(ref, const, baseline="baseline", base_values={0: 100.0, 1: 100.0, 2: 87.5, 3: 100.0},
                           metric=Metric, delta=15.19, mdes={"x": 18.84, "y": 2.0}, dec=2)
    text = "\n".join(w)
    assert "2 of 3 runs scored exactly a constant predictor" in text and "always `a`" in text
    assert "has 8 labelled examples: one example moves accuracy by 12.50 points" in text
    assert "class `c` (4 training examples) is trained on but absent" in text
    assert "best possible value (100.00) on 3 of 4 seeds" in text
    assert "δ = 15.19 is larger than the room the baseline leaves to improve (3.12" in text
    assert "the MDE (80%) of `x` exceeds" in text and "`y`" not in text


def _arm(name: str, decision: str, n: int, mean: float) -> dict:
    return {"name": name, "kind": "control", "decision": decision, "n_seeds": n, "status": "complete",
            "primary": {"mean_diff": mean, "n_seeds": n}}


def test_a_control_that_lost_runs_below_a_verdict_is_not_checked_and_one_that_favours_is_said() -> None:
    arms = [_arm("identity", "inconclusive", 7, 0.5), _arm("label_noise", "inconclusive", 6, -3.0)]
    c = _controls(arms, runs_ok=20, runs_failed=1, baseline_ok=7, need=7, failed_runs={"label_noise": 1})
    assert c["verdict"] == "not_checked" and "could not be checked: 1 run of `label_noise`" in c["headline"]
    assert "leaving 6 paired seeds, below the 7" in c["headline"] and "lacks sensitivity" not in c["headline"]
    # with every run: checked and missed, as before
    arms[1] = _arm("label_noise", "inconclusive", 7, -3.0)
    c = _controls(arms, runs_ok=21, need=7, failed_runs={"label_noise": 0})
    assert c["verdict"] == "insensitive" and "favoured" not in c["label_noise"]
    # a harmful control better than the baseline: said, in the metric's direction
    arms[1] = _arm("label_noise", "inconclusive", 7, 1.37)
    c = _controls(arms, runs_ok=21, need=7)
    assert c["label_noise"]["favoured"] and "even scored better than the baseline on average (Δ +1.37)" in c["headline"]
    c = _controls(arms, runs_ok=21, need=7, higher_is_better=False)  # MAE: +1.37 is worse, nothing to say
    assert "favoured" not in c["label_noise"] and "even scored better" not in c["headline"]


def test_float_noise_is_no_effect_and_labels_hold_no_commas() -> None:
    assert clean_mean([0.0, -2.127659574468085, 0.0, 0.0, 2.127659574468078, 0.0]) == 0.0
    assert clean_mean([0.0, -2.1, 0.0, 0.0, 2.2, 0.0]) == pytest.approx(0.1 / 6)
    labels = _secondary([{"robust_image_mae_auc": 1.0, "missing_audio_mae": 1.0, "test_mae": 1.0}], "test_mae")
    assert all("," not in lab for lab, _, _ in labels.values())
    assert labels["robust_image_mae_auc"][0] == "corruption AUC of MAE (image)"


def test_a_balanced_accuracy_report_gives_its_constant_reference_and_the_rarest_class_step() -> None:
    # QA42 review: a report ranked on test.balanced_accuracy gave the constant predictor's accuracy and macro-F1
    # only, and the small-test-split warning the step of accuracy (one example of a class of n_c moves the mean
    # recall over K classes by 1/(K n_c))
    from mmdata.ablate.design import Metric
    from mmdata.ablate.report_reference import target_text

    ref = {"kind": "classes", "key": None, "test_split": "test", "n_test": 8, "names": ["a", "b", "c"],
           "train_counts": {"a": 10, "b": 5, "c": 4}, "test_counts": {"a": 6, "b": 2, "c": 0}, "absent_from_test": ["c"],
           "constant": {"a": {"accuracy": 6 / 8, "macro_f1": 0.5}, "b": {"accuracy": 2 / 8, "macro_f1": 0.2}},
           "best_constant": "a"}
    assert "(balanced accuracy 50.00, whichever class)" in target_text(ref, "test.balanced_accuracy")
    metric = Metric(column="test_balanced_accuracy", label="balanced accuracy (points)")
    w = "\n".join(reference_warnings(ref, None, baseline="baseline", base_values={0: 60.0}, metric=metric, delta=5.0,
                                     mdes={}, dec=2))
    assert "one example of the rarest class moves balanced accuracy by up to 25.00 points, more than δ = 5.00" in w
