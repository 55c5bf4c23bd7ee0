"""QA34 review B2 of the submission scorer (:mod:`mmdata.train.submissions`, ``mmdata evaluate PREDICTIONS DATA``):
the scores live under a fixed ``scores`` key whatever the split is called (as ``mmdata evaluate RUN``'s), the
bootstrap resamples the confusion cells (its intervals depend on the confusion matrix only), one ``--class-map``
syntax, probabilities rounded for printing, numeric ``pred`` columns, keys with stray spaces, ``pred`` that
disagrees with its probabilities."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CLASSES = ["bird", "cat", "dog", "frog"]


def _bench(root: Path, test_split: str) -> tuple[Path, dict[str, str]]:
    """A labelled 40-sample text dataset whose scored split is called ``test_split`` (24 samples)."""
    import mmdata

    root.mkdir(parents=True, exist_ok=True)
    rows = [{"key": f"s{i:03d}", "text": f"a {CLASSES[i % 4]} sample {i}", "label": CLASSES[i % 4],
             "split": test_split if i >= 16 else "train"} for i in range(40)]
    with open(root / "full.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    mmdata.shard(root / "full.csv", root / "bench", progress=False)
    return root / "bench", {r["key"]: r["label"] for r in rows if r["split"] == test_split}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return _bench(tmp_path_factory.mktemp("b2test"), "test")


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _guess(truth: dict[str, str], every: int = 3) -> list[dict[str, str]]:
    return [{"key": k, "pred": CLASSES[(CLASSES.index(v) + 1) % 4] if i % every == 0 else v}
            for i, (k, v) in enumerate(sorted(truth.items()))]


def _json(text: str) -> dict[str, Any]:
    return json.loads(text[text.index("{"): text.rindex("}") + 1])


@pytest.mark.parametrize("name", ["samples", "split", "missing", "warnings"])
def test_a_split_named_like_a_result_key_keeps_its_scores(name: str, tmp_path: Path, mmdata_cli: Any) -> None:
    # B2-1 / B2-2: the scores under "scores" (as evaluate RUN's), never overwritten by / overwriting a fixed key
    from mmdata.train.submissions import compare_predictions, score_predictions

    data, truth = _bench(tmp_path / "d", name)
    a = _csv(tmp_path / "a.csv", _guess(truth, 3))
    b = _csv(tmp_path / "b.csv", _guess(truth, 2))
    r = score_predictions(a, data, split=name)
    assert r["split"] == name and r["scores"]["accuracy"] == pytest.approx(16 / 24)
    assert r["samples"][name]["scored"] == 24 and r["ci"][name]["accuracy"][0] <= 16 / 24
    code, text = mmdata_cli(["evaluate", str(a), str(data), "--split", name, "--json"])
    assert code == 0 and _json(text)["scores"]["accuracy"] == pytest.approx(16 / 24), text
    code, text = mmdata_cli(["evaluate", str(a), str(data), "--split", name])
    assert code == 0 and "0.667" in text and "24 of 24" in text, text
    c = compare_predictions(a, b, data, split=name, n_boot=200)
    assert c["difference"]["accuracy"]["diff"] == pytest.approx(16 / 24 - 12 / 24)
    assert c["a"]["scores"]["accuracy"] == pytest.approx(16 / 24)
    code, text = mmdata_cli(["evaluate", str(a), str(data), "--split", name, "--compare", str(b)])
    assert code == 0 and "McNemar exact" in text, text


def test_submission_json_has_the_run_fields(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-2: "scores" as in evaluate RUN's JSON, and the split's own key kept when it is no reserved name
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    r = score_predictions(_csv(tmp_path / "a.csv", _guess(truth)), data)
    assert r["scores"] == r["test"] and r["scores"]["accuracy"] == pytest.approx(16 / 24)


def test_bootstrap_depends_on_the_confusion_matrix_only() -> None:
    # B2-3: resampling the confusion cells (multinomial) is the same distribution as resampling samples, and
    # cost does not grow with n: the interval of a permuted sample order (or the same cells) is identical
    from mmdata.train.submissions import _paired_diffs, bootstrap_ci

    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 400)
    p = np.where(rng.random(400) < 0.7, y, rng.integers(-1, 5, 400))
    perm = rng.permutation(400)
    a = bootstrap_ci(y, p, 5, seed=2)
    assert a == bootstrap_ci(y[perm], p[perm], 5, seed=2)
    # the same distribution as index resampling (Monte-Carlo agreement)
    idx = np.random.default_rng(3).integers(0, 400, (4000, 400))
    acc = (y[idx] == p[idx]).mean(1)
    ref = np.quantile(acc, [0.025, 0.975])
    big = bootstrap_ci(y, p, 5, seed=2, n_boot=4000)
    assert np.allclose(big["accuracy"], ref, atol=0.01)
    # paired: the same cells of (y, a, b) give the same differences
    q = np.where(rng.random(400) < 0.6, y, rng.integers(0, 5, 400))
    d1 = _paired_diffs(y, p, q, 5, 300, 0, "test")
    d2 = _paired_diffs(y[perm], p[perm], q[perm], 5, 300, 0, "test")
    assert all(np.array_equal(d1[m], d2[m]) for m in d1)
    assert abs(d1["accuracy"].mean() - ((y == p).mean() - (y == q).mean())) < 0.01


def test_class_map_commas_like_the_run_path(bench: tuple[Path, dict[str, str]], tmp_path: Path,
                                            mmdata_cli: Any) -> None:
    # B2-6: "a=b,c=d" is two pairs (as for a run); a name with a comma is kept when a part has no "="
    from mmdata.train.submissions import parse_class_map, score_predictions

    assert parse_class_map(["frogs=frog,Cat=cat"]) == {"frogs": "frog", "Cat": "cat"}
    assert parse_class_map(["a,b=x"]) == {"a,b": "x"} and parse_class_map(["x=a,b"]) == {"x": "a,b"}
    data, truth = bench
    rows = [{"key": k, "pred": {"frog": "frogs", "cat": "Cat"}.get(v, v)} for k, v in sorted(truth.items())]
    path = _csv(tmp_path / "t.csv", rows)
    code, text = mmdata_cli(["evaluate", str(path), str(data), "--class-map", "frogs=frog,Cat=cat", "--json"])
    assert code == 0 and _json(text)["scores"]["accuracy"] == 1.0, text
    # an entry naming no class of the submission is said, not silently kept
    r = score_predictions(path, data, class_map=["frogs=frog", "Cat=cat", "toads=frog"])
    assert any("'toads'" in w and "no class of" in w for w in r["warnings"]), r["warnings"]


def test_probabilities_rounded_to_three_decimals(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-5: rows summing to 1 +- rounding are renormalised and counted; a row far from 1 is still refused
    from mmdata.errors import MMDataError
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    keys = sorted(truth)
    p = np.random.default_rng(0).dirichlet(np.ones(4), len(keys)).round(3)
    p[0], p[1] = [0.334, 0.334, 0.334, 0.0], [0.333, 0.333, 0.333, 0.0]  # thirds at 3 decimals: 1.002, 0.999
    rows = [{"key": k, **{f"prob_{c}": f"{v:.3f}" for c, v in zip(CLASSES, p[i])}} for i, k in enumerate(keys)]
    r = score_predictions(_csv(tmp_path / "r.csv", rows), data)
    y = np.array([CLASSES.index(truth[k]) for k in keys])
    q = p / p.sum(1, keepdims=True)
    assert r["scores"]["nll"] == pytest.approx(-np.log(q[np.arange(len(y)), y]).mean(), rel=1e-3)
    assert any("renormalised" in w for w in r["warnings"]), r["warnings"]
    rows[0] = {"key": keys[0], "prob_bird": "0.5", "prob_cat": "0.3", "prob_dog": "0.3", "prob_frog": "0.0"}
    with pytest.raises(MMDataError, match=f"{keys[0]}.*sum to 1.1"):
        score_predictions(_csv(tmp_path / "bad.csv", rows), data)


def test_numeric_pred_columns(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-7: a float pred of class ids (a NaN upcast) is refused like an int one, never scored as names "1.0"
    import pandas as pd

    from mmdata.errors import MMDataError
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    keys = sorted(truth)
    ids = [CLASSES.index(truth[k]) for k in keys]
    pd.DataFrame({"key": keys, "pred": np.array(ids, dtype=float)}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(MMDataError, match="'pred' holds numbers"):
        score_predictions(tmp_path / "f.parquet", data)
    pd.DataFrame({"key": keys, "pred": ids}).to_parquet(tmp_path / "i.parquet")
    with pytest.raises(MMDataError, match="'pred' holds numbers.*as text"):
        score_predictions(tmp_path / "i.parquet", data)


def test_keys_with_stray_spaces(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-8: "s016 " (a spreadsheet export) matches the key s016, counted and warned of
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    rows = [{"key": f"{r['key']} ", "pred": r["pred"]} for r in _guess(truth)]
    r = score_predictions(_csv(tmp_path / "k.csv", rows), data)
    assert r["scores"]["accuracy"] == pytest.approx(16 / 24)
    assert any("spaces" in w and "24" in w for w in r["warnings"]), r["warnings"]


def test_missing_error_says_when_keys_are_not_in_data(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-8: a file of keys that are no sample of DATA: the refusal says so, not only "no prediction"
    from mmdata.errors import MMDataError
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    rows = [{"key": f"x{r['key']}", "pred": r["pred"]} for r in _guess(truth)]
    with pytest.raises(MMDataError, match="24 of the file's 24 keys are not samples of .*'xs016'"):
        score_predictions(_csv(tmp_path / "x.csv", rows), data)


def test_pred_disagreeing_with_probabilities_is_warned(bench: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # B2-9: pred (scored) and the probabilities' argmax (ECE) differ on some rows: counted
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    keys = sorted(truth)
    p = np.random.default_rng(0).dirichlet(np.ones(4), len(keys))
    rows = [{"key": k, "pred": truth[k], **{f"prob_{c}": repr(float(v)) for c, v in zip(CLASSES, p[i])}}
            for i, k in enumerate(keys)]
    r = score_predictions(_csv(tmp_path / "pp.csv", rows), data)
    off = sum(CLASSES[int(p[i].argmax())] != truth[k] for i, k in enumerate(keys))
    assert r["scores"]["accuracy"] == 1.0
    assert any(f"{off} rows" in w and "argmax" in w for w in r["warnings"]), r["warnings"]


def test_ece_of_merged_columns_uses_the_merged_probabilities(bench: tuple[Path, dict[str, str]],
                                                              tmp_path: Path) -> None:
    # B2-9: two columns mapped onto one class: ECE's confidence and hit are those of the merged probabilities
    from mmdata.train.submissions import score_predictions

    data, truth = bench
    rows = [{"key": k, "prob_frog": "0.3", "prob_frogs": "0.3", "prob_bird": "0.4", "prob_cat": "0", "prob_dog": "0"}
            for k in sorted(truth)]
    r = score_predictions(_csv(tmp_path / "m.csv", rows), data, class_map={"frogs": "frog"}, missing="wrong")
    y_frog = np.array([truth[k] == "frog" for k in sorted(truth)], dtype=float)
    assert r["scores"]["ece"] == pytest.approx(abs(y_frog.mean() - 0.6))
