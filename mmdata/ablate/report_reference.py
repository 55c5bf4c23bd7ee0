"""What an ablation report measures against: the target the trainer predicts (the card's class label or a
``trainer.target``: its kind, labels, units) and the trivial reference on the test split — the best
constant predictor's accuracy / macro-F1, the MAE of predicting the training mean — with the warnings a
reviewer's first questions need: is anything learned at all (runs at the constant predictor), can the test
split tell arms apart (its size, classes trained on but absent from it), and is the baseline at the
metric's bound (an arm can then only tie or lose).

Everything here is computed from what the ablation's folder and its dataset hold (the dataset's
``index.parquet`` and card, the samples' ``.json`` metadata for a ``trainer.target``), never from the
trainer: a custom trainer (``trainer.entry``) may predict something else, so it gets none of it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

#: a test split with fewer labelled examples than this is warned about: each example moves accuracy by
#: more than 3 points, and the seeds vary the training, not which examples are tested
SMALL_TEST = 30
#: two scores this close (in [0, 1] units) are the same score: the trainer's float32 metrics
SAME_SCORE = 1e-6

#: where a δ set after the advice goes: a folder that has reported keeps its δ (runner.check_design_switch)
NEW_OUT = "(for a new `--out` once this folder has reported: its δ is fixed then)"


def _roles(ab: Any, card: dict[str, Any]) -> tuple[list[str], str]:
    from mmdata.train.config import split_roles

    t = ab.trainer
    roles = split_roles(ab.dataset["path"], card, t.get("train_split"), t.get("val_split"), t.get("test_split"))
    return (roles["train"], roles["test"][0]) if roles else (["train"], "test")


def data_reference(ab: Any) -> dict[str, Any] | None:
    """The target and its trivial reference on the test split (see the module docstring), or None where it
    cannot be known: a custom trainer, a dataset built by name or not at a local path, a card that cannot be
    read. Keys: ``key`` (the ``trainer.target``, None for the card's label), ``kind`` (``classes`` /
    ``multilabel`` / ``regression``), ``test_split``, ``n_test`` (labelled test examples), and per kind:
    ``names``, ``train_counts`` / ``test_counts`` per class or label, ``absent_from_test`` (trained on, never
    tested), ``constant`` (``{name: {"accuracy", "macro_f1"}}`` in [0, 1]: always predicting that class; 0 and 0
    for a class the test split lacks),
    ``best_constant`` (the class whose constant predictor scores best on test); for regression
    ``train_mean``, ``test_mean``, ``test_sd``, ``mean_mae`` (the MAE of predicting the training mean)."""
    from pathlib import Path

    from mmdata.errors import MMDataError

    path = ab.dataset.get("path") if isinstance(ab.dataset, dict) else None
    if ab.entry is not None or not path or "://" in str(path) or not Path(path).is_dir():
        return None
    try:
        from mmdata.shards.index import load_card

        card = load_card(path)
        train, test = _roles(ab, card)
        key = ab.trainer.get("target")
        if key:
            return _target_reference(str(path), str(key), train, test)
        return _label_reference(Path(path), card, train, test)
    except (MMDataError, OSError, ValueError, KeyError, TypeError, ImportError):
        return None  # the report goes on without it: the runs already trained on this data


def _label_reference(path: Any, card: dict[str, Any], train: list[str], test: str) -> dict[str, Any] | None:
    import pandas as pd

    idx = pd.read_parquet(path / "index.parquet", columns=["split", "label"])
    idx = idx[idx["label"].notna()]
    names = [str(n) for n in card.get("label_names") or []]

    def name(v: Any) -> str:
        i = int(v)
        return names[i] if 0 <= i < len(names) else str(i)

    tr = Counter(name(v) for v in idx[idx["split"].astype(str).isin(train)]["label"])
    te = Counter(name(v) for v in idx[idx["split"].astype(str) == test]["label"])
    if not te:
        return None
    return _class_reference(None, "classes", tr, te, names or sorted(set(tr) | set(te)), test)


def _class_reference(key: str | None, kind: str, tr: Counter, te: Counter, names: list[str], test: str) -> dict[str, Any]:
    n = sum(te.values())
    present = [c for c in names if te.get(c)]
    constant = {}
    for c in present:  # always predicting c: accuracy = its share; F1 of c = 2p / (1 + p), the others' F1 = 0
        p = te[c] / n
        constant[c] = {"accuracy": p, "macro_f1": 2 * p / (1 + p) / len(present)}
    for c in names:  # a class the test split lacks: every prediction wrong, every F1 0 (QA: those runs went uncounted)
        constant.setdefault(c, {"accuracy": 0.0, "macro_f1": 0.0})
    best = max(present, key=lambda c: (te[c], -names.index(c) if c in names else 0))
    return {"key": key, "kind": kind, "test_split": test, "n_test": n, "names": names,
            "train_counts": {c: tr.get(c, 0) for c in names}, "test_counts": {c: te.get(c, 0) for c in names},
            "absent_from_test": [c for c in names if tr.get(c) and not te.get(c)], "constant": constant,
            "best_constant": best}


def _target_reference(path: str, key: str, train: list[str], test: str) -> dict[str, Any] | None:
    import statistics

    from mmdata.train.targets import _labels_of, _missing, _number, read_values, settle

    read = read_values(path, key, {"train": train, "test": [test]}, option="trainer.target")
    target, _, _ = settle(path, key, read, option="trainer.target")
    tr = [v for _, v in read.by_role.get("train", []) if not _missing(v)]
    te = [v for _, v in read.by_role.get("test", []) if not _missing(v)]
    if not te:
        return None
    if target.kind == "regression":
        ytr = [float(_number(v)) for v in tr]
        yte = [float(_number(v)) for v in te]
        mean = statistics.fmean(ytr)
        return {"key": key, "kind": "regression", "test_split": test, "n_test": len(yte), "train_mean": mean,
                "test_mean": statistics.fmean(yte), "test_sd": statistics.stdev(yte) if len(yte) > 1 else None,
                "mean_mae": statistics.fmean(abs(y - mean) for y in yte)}
    if target.kind == "multilabel":
        def labels(v: Any) -> list[str]:
            return list(dict.fromkeys(_labels_of(v) or ([key] if target.boolean and v else [])))

        ctr = Counter(c for v in tr for c in labels(v))
        cte = Counter(c for v in te for c in labels(v))
        names = list(target.names)
        return {"key": key, "kind": "multilabel", "test_split": test, "n_test": len(te), "names": names,
                "train_counts": {c: ctr.get(c, 0) for c in names}, "test_counts": {c: cte.get(c, 0) for c in names},
                "absent_from_test": [c for c in names if ctr.get(c) and not cte.get(c)]}
    ctr = Counter(str((_labels_of(v) or [v])[0]) for v in tr)
    cte = Counter(str((_labels_of(v) or [v])[0]) for v in te)
    return _class_reference(key, "classes", ctr, cte, list(target.names) or sorted(set(ctr) | set(cte)), test)


def _pts(v: float) -> str:
    return f"{100 * v:.2f}"


def target_text(ref: dict[str, Any] | None, metric_name: str) -> str:
    """The Design section's sentence on what was predicted and the trivial reference ('' when not known).

    Example:
        >>> ref = {"key": "score", "kind": "regression", "test_split": "test", "n_test": 48, "train_mean": 0.1,
        ...        "test_mean": 0.2, "test_sd": 1.2, "mean_mae": 1.06}
        >>> print(target_text(ref, "test.mae"))  # doctest: +NORMALIZE_WHITESPACE
        Target: `trainer.target: score`, a regression; MAE and RMSE are in units of `score`. Test split `test`: 48
        examples, mean 0.2, sd 1.2; predicting the training mean (0.1) for every example scores MAE 1.06 — the
        trivial reference a model must beat.
    """
    if not ref:
        return ""
    from mmdata.ablate.report import md_code, md_text

    what = f"`trainer.target: {md_text(ref['key'])}`" if ref.get("key") else "the dataset's class label"
    test = f"Test split {md_code(ref['test_split'])}: {ref['n_test']} examples"
    if ref["kind"] == "regression":
        sd = f", sd {ref['test_sd']:.4g}" if ref.get("test_sd") is not None else ""
        return (f"Target: {what}, a regression; MAE and RMSE are in units of {md_code(ref['key'])}. {test}, mean "
                f"{ref['test_mean']:.4g}{sd}; predicting the training mean ({ref['train_mean']:.4g}) for every example "
                f"scores MAE {ref['mean_mae']:.4g} — the trivial reference a model must beat.")
    names = ref["names"]
    shown = ", ".join(md_code(n) for n in names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    counts = ", ".join(f"{md_text(c)} {ref['test_counts'][c]}" for c in names[:12] if c in ref["test_counts"])
    if ref["kind"] == "multilabel":
        return (f"Target: {what}, multi-label: {len(names)} label{'s' * (len(names) != 1)} ({shown}), one sigmoid each, "
                f"a label predicted where it reaches 0.5; macro-F1 and mAP average only the labels present in the test "
                f"split. {test}; examples holding each label: {counts}.")
    best = ref["best_constant"]
    c = ref["constant"][best]
    return (f"Target: {what}, {len(names)} class{'es' * (len(names) != 1)} ({shown}). {test} ({counts}). A constant "
            f"predictor — the same class for every example, what a model that learned nothing outputs — scores at best "
            f"accuracy {_pts(c['accuracy'])} points (always {md_code(best)}, the test split's majority class) and "
            f"macro-F1 {_pts(c['macro_f1'])} (balanced accuracy {_pts(1 / max(1, sum(1 for v in ref['test_counts'].values() if v)))}, "
            f"whichever class): the trivial reference a model must beat.")


def noise_text(kind: str | None, entry: bool) -> str:
    """What the ``label_noise`` control does to the training targets of this ``kind`` of target (bundled trainer).

    Example:
        >>> noise_text("regression", False)[:60]
        'the `label_noise` control replaces that share of training ta'
    """
    if entry:
        return "the `label_noise` control passes its share to your trainer, which decides what it does"
    if kind == "regression":
        return ("the `label_noise` control replaces that share of training targets (the same ones every epoch) with a "
                "standard-normal draw in standardised units — a draw from the training distribution's normal, not a "
                "perturbation of the true value")
    if kind == "multilabel":
        return ("the `label_noise` control replaces that share of training label sets (the same ones every epoch) with "
                "a random label set, each label on with probability one half")
    return ("the `label_noise` control gives that share of training examples (the same ones every epoch) another "
            "class than their own")


def constant_runs(ref: dict[str, Any] | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished runs that scored exactly a constant predictor on the test split (accuracy and macro-F1
    both those of always predicting one class: ``{"runs", "of", "arms": {arm: k}}``), or whose MAE is no
    better than predicting the training mean; None when the reference or the columns are missing."""
    if not ref:
        return None
    ok = [r for r in rows if r.get("status", "ok") == "ok"]

    def fin(v: Any) -> bool:
        return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))

    hit: list[str] = []
    seen = 0
    if ref["kind"] == "classes":
        for r in ok:
            acc, f1 = r.get("test_accuracy"), r.get("test_macro_f1")
            if not (fin(acc) and fin(f1)):
                continue
            seen += 1
            if any(abs(float(acc) - c["accuracy"]) < SAME_SCORE and abs(float(f1) - c["macro_f1"]) < SAME_SCORE
                   for c in ref["constant"].values()):
                hit.append(str(r["arm"]))
    elif ref["kind"] == "regression":
        for r in ok:
            mae = r.get("test_mae")
            if fin(mae):
                seen += 1
                if float(mae) >= ref["mean_mae"] - SAME_SCORE:
                    hit.append(str(r["arm"]))
    if not seen:
        return None
    return {"runs": len(hit), "of": seen, "arms": dict(Counter(hit))}


def reference_warnings(ref: dict[str, Any] | None, const: dict[str, Any] | None, *, baseline: str,
                       base_values: dict[int, float], metric: Any, delta: float, mdes: dict[str, float],
                       dec: int) -> list[str]:
    """The report's warnings from the reference (see the module docstring): runs at the trivial reference,
    a small test split (one example moving accuracy by more than δ), classes trained on but never tested,
    the baseline at the metric's bound, and δ or an arm's MDE beyond the metric's headroom."""
    from mmdata.ablate.report import diff_limits, num

    out = []
    if const and const["runs"]:
        arms = sorted(const["arms"].items(), key=lambda kv: (kv[0] != baseline, kv[0]))
        which = ", ".join(f"{a} {k}" for a, k in arms[:6]) + (f" and {len(arms) - 6} more arms" if len(arms) > 6 else "")
        if ref["kind"] == "classes":
            c = ref["constant"][ref["best_constant"]]
            out.append(f"{const['runs']} of {const['of']} runs scored exactly a constant predictor on the test split "
                       f"(accuracy and macro-F1 those of predicting one class for every example; the best such scores "
                       f"{_pts(c['accuracy'])} accuracy points, always `{ref['best_constant']}`): those models learned "
                       f"nothing the test split can see, and an arm and the baseline that both did so differ by exactly 0 "
                       f"on that seed, whatever the op (runs per arm: {which}). Train longer (`trainer.epochs`) or on more data before reading the verdicts.")
        else:
            out.append(f"{const['runs']} of {const['of']} runs scored an MAE no better than predicting the training mean "
                       f"({ref['mean_mae']:.4g} in units of `{ref['key']}`) for every test example: those models learned "
                       f"nothing the test split can see (runs per arm: {which}). Train longer (`trainer.epochs`) or on "
                       "more data before reading the verdicts.")
    if ref:
        n = ref["n_test"]
        step = 100.0 / n
        balanced = ref["kind"] == "classes" and metric.column == "test_balanced_accuracy"
        if balanced:  # one example of class c moves its recall by 1/n_c, the mean by 1/(K n_c): the rarest class's
            held = [v for v in ref["test_counts"].values() if v]
            step = 100.0 / (len(held) * min(held)) if held else step
        pts = ref["kind"] == "classes" and metric.column in ("test_accuracy", "test_macro_f1",
                                                             "test_balanced_accuracy") and metric.scale == 100.0
        if n < SMALL_TEST or (pts and math.isfinite(delta) and 0 < delta < step):
            # a target scores no accuracy (QA31 D4: a regression was not warned, a multi-label one read "accuracy")
            moves = (f"of the rarest class moves balanced accuracy by up to {step:.2f} points" if balanced else
                     f"moves accuracy by {step:.2f} points" if ref["kind"] == "classes" else
                     f"is {step:.2f}% of them, and the primary metric `{metric.name}` rests on these few")
            out.append(f"the test split `{ref['test_split']}` has {n} labelled examples: one example {moves}"
                       + (f", more than δ = {num(delta, dec, sign=False)}" if pts and
                          math.isfinite(delta) and 0 < delta < step else "")
                       + "; the seeds vary the training, not which examples are tested, so every verdict holds for "
                       "these few examples. A larger test split (re-shard with a larger test share) measures more.")
    if ref and ref["kind"] != "regression":
        if ref.get("absent_from_test"):
            gone = ref["absent_from_test"]
            noun = ("class" if ref["kind"] == "classes" else "label") if len(gone) == 1 else (
                "classes" if ref["kind"] == "classes" else "labels")
            out.append(f"{noun} "
                       + ", ".join(f"`{c}` ({ref['train_counts'][c]} training examples)" for c in gone[:10])
                       + (f" and {len(gone) - 10} more" if len(gone) > 10 else "")
                       + f" {'is' if len(gone) == 1 else 'are'} trained on but absent from the test split "
                       f"`{ref['test_split']}`: the test metrics say nothing about "
                       + ("it" if len(gone) == 1 else "them") + ".")
    lim = diff_limits(metric.column, metric.scale)
    vals = list(base_values.values())
    if lim and vals:
        top = lim[1]
        best, worst = (top, 0.0) if metric.higher_is_better else (0.0, top)
        at_best = sum(abs(v - best) < SAME_SCORE * top for v in vals)
        at_worst = sum(abs(v - worst) < SAME_SCORE * top for v in vals)
        if at_best:
            out.append(f"the baseline `{baseline}` scored the metric's best possible value ({num(best, dec, sign=False)}) on "
                       f"{at_best} of {len(vals)} seeds: there an arm can only tie or do worse, so a `hurts` or a low "
                       "P(arm beats baseline) is partly a ceiling artefact.")
        if at_worst:
            out.append(f"the baseline `{baseline}` scored the metric's worst possible value ({num(worst, dec, sign=False)}) "
                       f"on {at_worst} of {len(vals)} seeds: there an arm can only tie or do better.")
        mean = sum(vals) / len(vals)
        room = (top - mean) if metric.higher_is_better else mean  # how far the metric can still improve
        if math.isfinite(delta) and delta > room > 0:
            out.append(f"δ = {num(delta, dec, sign=False)} is larger than the room the baseline leaves to improve "
                       f"({num(room, dec, sign=False)} to the metric's bound): `equivalent` then also covers every "
                       "improvement the metric can show; set `delta:` in the recipe to the smallest effect that matters "
                       f"{NEW_OUT}.")
        over = sorted(a for a, m in mdes.items() if math.isfinite(m) and m > room >= 0)
        if over:
            out.append(f"the MDE (80%) of {', '.join(f'`{a}`' for a in over[:6])}{' and more' if len(over) > 6 else ''} "
                       f"exceeds the room the baseline leaves to improve ({num(room, dec, sign=False)}): an improvement "
                       "that large is impossible, so the stated power holds only for effects in the harmful direction.")
    return out
