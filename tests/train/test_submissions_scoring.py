"""QA34 leaderboard #2 / #3: a predictions file (a benchmark submission) scored against the hidden labels of a split
(``mmdata evaluate PREDICTIONS DATA``, :mod:`mmdata.train.submissions`): joined on key, every labelled sample
scored (missing / duplicated keys refused, extra keys and unknown class names counted, never a smaller
denominator), seeded bootstrap intervals, and the paired comparison of two submissions."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

CLASSES = ["cat", "dog", "bird", "frog"]
CI = ("accuracy", "macro_f1", "balanced_accuracy")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A labelled dataset (``full``) and its public release (``public``: the test labels blanked), 48 text samples,
    train / val / test = 24 / 8 / 16 from a split column; a run trained on the public release and its test
    predictions written by ``mmdata evaluate --out`` (``sub``)."""
    import mmdata
    from mmdata.train import evaluate_run, train

    root = tmp_path_factory.mktemp("bench")
    (root / "raw").mkdir()
    rows = []
    for i in range(48):
        c = i % 4
        rows.append({"key": f"s{i:03d}", "text": f"a {CLASSES[c]} {CLASSES[c]} sample {i}", "label": CLASSES[c],
                     "split": "test" if i >= 32 else "val" if i >= 24 else "train"})
    for name, blank in (("full", False), ("public", True)):
        with open(root / "raw" / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({**r, "label": "" if blank and r["split"] == "test" else r["label"]})
        mmdata.shard(root / "raw" / f"{name}.csv", root / name, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a public test split without labels: what a benchmark release is
        train(root / "public", epochs=1, seed=0, out=root / "run", batch_size=16, threads=1, eval_robustness=False)
        evaluate_run(root / "run", root / "public", out=root / "sub")
    truth = {r["key"]: r["label"] for r in rows if r["split"] == "test"}
    return {"root": root, "full": root / "full", "public": root / "public", "sub": root / "sub", "truth": truth}


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _guess(truth: dict[str, str], wrong_every: int = 3, shift: int = 1) -> dict[str, str]:
    """A deterministic submission: right except every ``wrong_every``-th key (then the next class)."""
    return {k: (CLASSES[(CLASSES.index(v) + shift) % 4] if i % wrong_every == 0 else v)
            for i, (k, v) in enumerate(sorted(truth.items()))}


def test_evaluate_out_predictions_score_against_hidden_labels(bench: dict[str, Any], mmdata_cli: Any) -> None:
    # the participant's own `mmdata evaluate RUN PUBLIC --out sub` (labels -1) scored on the labelled twin
    import pyarrow.parquet as pq

    code, text = mmdata_cli(["evaluate", str(bench["sub"]), str(bench["full"]), "--json"])
    assert code == 0, text
    r = json.loads(text[: text.rindex("}") + 1])
    p = pq.read_table(bench["sub"] / "predictions.parquet").to_pandas()
    y = [bench["truth"][k] for k in p.key]
    assert r["test"]["accuracy"] == pytest.approx(accuracy_score(y, p.pred_name))
    assert r["test"]["macro_f1"] == pytest.approx(f1_score(y, p.pred_name, average="macro"))
    assert r["test"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p.pred_name))
    # probs (positions named by the file's metadata) give NLL as scikit-learn's log_loss
    names = json.loads(pq.read_schema(bench["sub"] / "predictions.parquet").metadata[b"mmdata"])["names"]
    probs = np.stack(p.probs.to_numpy())
    assert r["test"]["nll"] == pytest.approx(log_loss(y, probs, labels=names))
    assert r["samples"]["test"] == {"samples": 16, "labelled": 16, "unlabelled": 0, "scored": 16, "missing": 0,
                                    "no_prediction": 0, "unknown_prediction": 0, "extra": 0}
    lo, hi = r["ci"]["test"]["accuracy"]
    assert lo <= r["test"]["accuracy"] <= hi
    # the file itself, the CI in the terminal table
    code, text = mmdata_cli(["evaluate", str(bench["sub"] / "predictions.parquet"), str(bench["full"])])
    assert code == 0 and "0.95 intervals" in text and "16 of 16" in text, text


def test_csv_rows_in_any_order_score_as_sklearn(bench: dict[str, Any], tmp_path: Path) -> None:
    from mmdata.train.submissions import score_predictions

    guess = _guess(bench["truth"])
    rows = [{"key": k, "pred": v} for k, v in sorted(guess.items(), reverse=True)]  # reordered
    r = score_predictions(_write_csv(tmp_path / "a.csv", rows), bench["full"])
    keys = sorted(guess)
    y, p = [bench["truth"][k] for k in keys], [guess[k] for k in keys]
    assert r["test"]["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert r["test"]["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert r["test"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    shuffled = score_predictions(_write_csv(tmp_path / "b.csv", rows[::-1]), bench["full"])
    assert {m: shuffled["test"][m] for m in CI} == {m: r["test"][m] for m in CI} and shuffled["ci"] == r["ci"]


def test_missing_duplicated_and_extra_keys(bench: dict[str, Any], tmp_path: Path, mmdata_cli: Any) -> None:
    from mmdata.train.submissions import score_predictions

    truth = dict(sorted(bench["truth"].items()))
    rows = [{"key": k, "pred": v} for k, v in truth.items()]
    lacking = _write_csv(tmp_path / "lacking.csv", rows[1:])
    code, text = mmdata_cli(["evaluate", str(lacking), str(bench["full"])])
    assert code == 2 and "no prediction for 1 of the 16 labelled test samples" in text and "'s032'" in text, text
    code, text = mmdata_cli(["evaluate", str(lacking), str(bench["full"]), "--missing", "wrong", "--json"])
    r = json.loads(text[: text.rindex("}") + 1])
    assert code == 0 and r["samples"]["test"]["scored"] == 16 and r["samples"]["test"]["missing"] == 1
    assert r["test"]["accuracy"] == pytest.approx(15 / 16)  # counted wrong: the denominator stays 16

    dup = _write_csv(tmp_path / "dup.csv", rows + [{"key": "s040", "pred": "cat"}])
    code, text = mmdata_cli(["evaluate", str(dup), str(bench["full"])])
    assert code == 2 and "predicted more than once" in text and "'s040' (2 rows)" in text, text

    extra = _write_csv(tmp_path / "extra.csv", rows + [{"key": "s000", "pred": "cat"}, {"key": "zzz", "pred": "dog"}])
    r = score_predictions(extra, bench["full"])
    assert r["extra_keys"] == {"not in DATA": 1, "train": 1} and r["samples"]["test"]["extra"] == 2
    assert r["test"]["accuracy"] == 1.0 and any("not test samples" in w for w in r["warnings"])


def test_a_class_spelt_otherwise_is_wrong_not_dropped(bench: dict[str, Any], tmp_path: Path, mmdata_cli: Any) -> None:
    truth = dict(sorted(bench["truth"].items()))
    rows = [{"key": k, "pred": {"frog": "frogs", "cat": "Cat"}.get(v, v)} for k, v in truth.items()]
    path = _write_csv(tmp_path / "typo.csv", rows)
    code, text = mmdata_cli(["evaluate", str(path), str(bench["full"]), "--json"])
    r = json.loads(text[: text.rindex("}") + 1])
    assert code == 0 and r["samples"]["test"]["scored"] == 16
    assert r["test"]["accuracy"] == pytest.approx(0.5)  # 8 of 16: never 8 of 8
    assert r["unknown_predictions"] == {"frogs": 4, "Cat": 4} and r["per_class"]["test"]["frog"]["recall"] == 0.0
    assert "'Cat' differs from" in text and "--class-map" in text
    code, text = mmdata_cli(["evaluate", str(path), str(bench["full"]), "--class-map", "frogs=frog",
                             "--class-map", "Cat=cat", "--json"])
    r = json.loads(text[: text.rindex("}") + 1])
    assert code == 0 and r["test"]["accuracy"] == 1.0 and r["class_map"]["frogs"] == "frog"
    code, text = mmdata_cli(["evaluate", str(path), str(bench["full"]), "--class-map", "frogs=toad"])
    assert code == 2 and "'frogs' -> 'toad'" in text, text


def test_intervals_are_seeded_and_cover_the_estimate(bench: dict[str, Any], tmp_path: Path) -> None:
    from mmdata.train.submissions import score_predictions, wilson

    path = _write_csv(tmp_path / "g.csv", [{"key": k, "pred": v} for k, v in _guess(bench["truth"]).items()])
    a = score_predictions(path, bench["full"], seed=3)
    assert a["ci"] == score_predictions(path, bench["full"], seed=3)["ci"]
    assert a["ci"] != score_predictions(path, bench["full"], seed=4)["ci"]
    for m in ("accuracy", "macro_f1", "balanced_accuracy"):
        lo, hi = a["ci"]["test"][m]
        assert lo <= a["test"][m] <= hi and hi - lo > 0
    hits = round(a["test"]["accuracy"] * 16)
    assert a["ci"]["test"]["accuracy_wilson"] == list(wilson(hits, 16, 0.95))
    narrow = score_predictions(path, bench["full"], ci=0.5, seed=3)["ci"]["test"]["accuracy"]
    assert narrow[1] - narrow[0] < a["ci"]["test"]["accuracy"][1] - a["ci"]["test"]["accuracy"][0]


def test_paired_comparison_of_two_submissions(bench: dict[str, Any], tmp_path: Path, mmdata_cli: Any) -> None:
    from scipy.stats import binomtest

    truth = dict(sorted(bench["truth"].items()))
    good = _write_csv(tmp_path / "good.csv", [{"key": k, "pred": v} for k, v in truth.items()])
    bad = _write_csv(tmp_path / "bad.csv", [{"key": k, "pred": v} for k, v in _guess(truth, 2).items()])
    code, text = mmdata_cli(["evaluate", str(good), str(bench["full"]), "--compare", str(bad), "--json"])
    assert code == 0, text
    r = json.loads(text[: text.rindex("}") + 1])
    wrong_b = sum(1 for i in range(16) if i % 2 == 0)
    assert r["mcnemar"]["a_only"] == wrong_b and r["mcnemar"]["b_only"] == 0
    assert r["mcnemar"]["p"] == pytest.approx(binomtest(wrong_b, wrong_b, 0.5).pvalue)
    d = r["difference"]["accuracy"]
    assert d["diff"] == pytest.approx(wrong_b / 16) and d["ci"][0] > 0 and d["p"] < 0.05
    assert d["p"] >= 2 / (1000 + 1)  # a Monte-Carlo p is never 0: (b + 1) / (N + 1) per side, two-sided
    code, text = mmdata_cli(["evaluate", str(good), str(bench["full"]), "--compare", str(bad)])
    assert code == 0 and "McNemar exact" in text and "A - B" in text, text


def test_refusals_name_what_is_wrong(bench: dict[str, Any], tmp_path: Path, mmdata_cli: Any) -> None:
    rows = [{"key": k, "pred": v} for k, v in bench["truth"].items()]
    path = _write_csv(tmp_path / "ok.csv", rows)
    code, text = mmdata_cli(["evaluate", str(path), str(bench["public"])])  # the public release has no test labels
    assert code == 2 and "none of its 16 samples is labelled" in text, text
    code, text = mmdata_cli(["evaluate", str(bench["root"] / "run"), str(bench["full"]), "--ci", "0.9"])
    assert code == 2 and "--out DIR" in text, text
    code, text = mmdata_cli(["evaluate", str(path), str(bench["full"]), "--out", str(tmp_path / "ev")])
    assert code == 2 and "--json > scores.json" in text and not (tmp_path / "ev").exists(), text
    for run_only in (["--train-data", str(bench["full"])], ["--unknown-classes", "leave-out"]):  # said, not ignored
        code, text = mmdata_cli(["evaluate", str(path), str(bench["full"]), *run_only])
        assert code == 2 and "a submission" in text, text
    nokey = _write_csv(tmp_path / "nokey.csv", [{"id": "s032", "pred": "cat"}])
    code, text = mmdata_cli(["evaluate", str(nokey), str(bench["full"])])
    assert code == 2 and "no 'key' column" in text, text
    probs = _write_csv(tmp_path / "p.csv", [{"key": "s032", "prob_cat": "0.7", "prob_dog": "0.7"}])
    code, text = mmdata_cli(["evaluate", str(probs), str(bench["full"])])
    assert code == 2 and "'s032'" in text and "sum to 1.4" in text, text


def test_probability_columns_of_a_csv(bench: dict[str, Any], tmp_path: Path) -> None:
    from mmdata.train.submissions import score_predictions

    keys = sorted(bench["truth"])
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=len(keys))
    rows = [{"key": k, **{f"prob_{c}": repr(float(v)) for c, v in zip(CLASSES, p[i])}} for i, k in enumerate(keys)]
    r = score_predictions(_write_csv(tmp_path / "probs.csv", rows), bench["full"])
    y = [bench["truth"][k] for k in keys]
    pred = [CLASSES[i] for i in p.argmax(1)]
    assert r["test"]["accuracy"] == pytest.approx(accuracy_score(y, pred))
    order = [CLASSES.index(c) for c in sorted(CLASSES)]  # log_loss's columns: the labels sorted
    assert r["test"]["nll"] == pytest.approx(log_loss(y, p[:, order], labels=sorted(CLASSES)))


def test_scores_equal_evaluate_run_on_the_labelled_twin(bench: dict[str, Any]) -> None:
    # the same model on the same samples: the submission's scores are the run folder's, NLL and ECE included
    from mmdata.train import evaluate_run
    from mmdata.train.submissions import score_predictions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ran = evaluate_run(bench["root"] / "run", bench["full"])
    sub = score_predictions(bench["sub"], bench["full"])
    assert sub["test"] == pytest.approx(ran["test"], abs=1e-9)
    assert sub["per_class"]["test"] == ran["per_class"]["test"]
