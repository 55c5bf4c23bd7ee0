"""Score a predictions file (a leaderboard submission: sample key -> class, optionally probabilities) against the
labels of a dataset split (:func:`score_predictions`, ``mmdata evaluate PREDICTIONS DATA``), with confidence
intervals over the test samples (:func:`bootstrap_ci`, :func:`wilson`), and compare two submissions on the same
samples (:func:`compare_predictions`: McNemar's exact test and a paired bootstrap of each metric's difference).

A predictions file is what ``mmdata evaluate RUN DATA --out DIR`` or ``mmdata train --out DIR`` writes
(``predictions.parquet``: ``key``, ``pred`` / ``pred_name``, ``probs`` with the class names in the schema's
metadata), or any Parquet / CSV file with a ``key`` column and either a ``pred`` (or ``pred_name``) column holding
class names, or probability columns ``prob_<class name>`` (the prediction is then their argmax), or both.

Joined on ``key`` with the rows of the scored split of DATA (its ``index.parquet``: labels only, no media read):

* every labelled sample of the split is scored — the denominator never shrinks: a sample without a prediction
  (``missing``) is refused by default (``missing="error"``) or scored as wrong (``missing="wrong"``); a predicted
  class name that is not a class of DATA (``unknown_predictions``) is scored as wrong, counted by name and warned
  of (with the names that differ only in case or Unicode form: map them with ``class_map``);
* a key predicted twice is refused (naming the keys); keys that are not samples of the split (``extra``) are
  counted by the split of DATA they belong to (or ``not in DATA``) and left out, with a warning;
* the row order of the file does not matter; unlabelled samples of the split are counted and left out.

Class names are matched as ``mmdata evaluate`` matches them (:func:`mmdata.train.score_run.class_key`: stripped,
NFC; case kept). A prediction that names no class (an empty ``pred``, a missing key scored wrong) counts against
its sample's class (a false negative) and is no class of its own: macro-F1 averages over DATA's classes that occur
as labels or predictions (scikit-learn's ``f1_score(average="macro")`` over those labels).

Intervals: a percentile bootstrap over the scored samples (``n_boot`` resamples drawn from
``mmdata.rng.derive(seed, 0, "bootstrap", split)``: the same seed gives the same interval, on any machine) for
accuracy, macro-F1 and balanced accuracy, and Wilson's score interval for accuracy. They measure the noise of the
finite test split only, not that of training (seeds: ``mmdata ablate``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.errors import MMDataError

#: the metrics given an interval (those of a hard prediction; NLL / ECE need probabilities of every sample)
CI_METRICS = ("accuracy", "macro_f1", "balanced_accuracy")
#: the confidence bins of ECE (as :data:`mmdata.train.evaluate.ECE_BINS`)
ECE_BINS = 15
#: a row's probabilities must sum to 1 within this
PROB_TOLERANCE = 1e-3
#: how the prefix of a CSV / Parquet probability column reads
PROB_PREFIX = "prob_"
#: resamples held in memory at once (times the samples): bounds the bootstrap's memory
_CHUNK_CELLS = 4_000_000


def _show(items: Sequence[Any], at_most: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(items)[:at_most])
    return f"[{shown}{', ...' if len(items) > at_most else ''}]"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def predictions_file(path: str | Path) -> Path:
    """The predictions file of ``path``: the file itself, or a folder's ``predictions.parquet`` (an output folder of
    ``mmdata evaluate --out`` / ``mmdata train --out``).

    Raises:
        MMDataError: no such file, or a folder without ``predictions.parquet``.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "predictions.parquet").is_file():
            raise MMDataError(f"{p}: a folder without predictions.parquet: give a predictions file (.parquet or .csv "
                              "with a key column) or an output folder of `mmdata evaluate --out` / `mmdata train "
                              "--out`")
        return p / "predictions.parquet"
    if not p.is_file():
        raise MMDataError(f"{p}: no such predictions file")
    return p


def read_predictions(path: str | Path) -> dict[str, Any]:
    """The rows of a predictions file: ``{"keys": [...], "pred": [name or None], "probs": (n, k) array or None,
    "names": [k names of probs' columns], "split": [...] or None}``.

    Parquet: ``key``; ``pred_name``, or ``pred`` (class names, or class ids named by the schema's ``mmdata``
    metadata ``names`` as ``mmdata evaluate --out`` writes them); ``probs`` (a list per row, positions named by the
    metadata ``names``) or ``prob_<name>`` columns. CSV (UTF-8, read as text: no number guessing): ``key``,
    ``pred`` / ``pred_name`` and / or ``prob_<name>`` columns.

    Raises:
        MMDataError: naming the file and the row or column: no ``key`` column, a null / empty key, no prediction
            column, integer ids without class names, a probability that is not a number in [0, 1], a row whose
            probabilities do not sum to 1, a multi-label or regression predictions file.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "sub.csv"
        >>> _ = p.write_text("key,pred\\nb,dog\\na,cat\\n", encoding="utf-8")
        >>> r = read_predictions(p)
        >>> r["keys"], r["pred"], r["probs"]
        (['b', 'a'], ['dog', 'cat'], None)
    """
    p = predictions_file(path)
    if p.suffix.lower() == ".csv":
        cols = _read_csv(p)
        meta_names: list[str] | None = None
    else:
        cols, meta_names = _read_parquet(p)
    if "key" not in cols:
        raise MMDataError(f"{p}: no 'key' column (it has {_show(list(cols), 10)}): a predictions file joins on the "
                          "sample keys of the dataset (index.parquet key)")
    keys = cols["key"]
    for i, k in enumerate(keys):
        if k is None or str(k) == "":
            raise MMDataError(f"{p}: row {i + 1} has no key: every row must name the sample it predicts")
    keys = [str(k) for k in keys]
    names: list[str] = []
    probs = None
    if "probs" in cols:
        if not meta_names:
            raise MMDataError(f"{p}: a 'probs' column without the class names its positions stand for (the schema's "
                              "'mmdata' metadata 'names', as mmdata evaluate --out writes it): give prob_<name> "
                              "columns")
        names = list(meta_names)
        rows = cols["probs"]
        probs = np.full((len(keys), len(names)), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                if len(r) != len(names):
                    raise MMDataError(f"{p}: key {keys[i]!r}: {len(r)} probabilities for the {len(names)} class names "
                                      "of the file's metadata")
                probs[i] = np.asarray(r, dtype=float)
    else:
        pcols = [c for c in cols if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
        if pcols:
            names = [c[len(PROB_PREFIX):] for c in pcols]
            probs = np.full((len(keys), len(names)), np.nan)
            for j, c in enumerate(pcols):
                for i, v in enumerate(cols[c]):
                    if v is None or v == "":
                        continue
                    try:
                        probs[i, j] = float(v)
                    except (TypeError, ValueError):
                        raise MMDataError(f"{p}: key {keys[i]!r}, column {c!r}: {v!r} is not a probability") from None
    if probs is not None:
        _check_probs(p, keys, probs, names)
    pred: list[str | None]
    if "pred_name" in cols:
        pred = [None if v is None or str(v) == "" else str(v) for v in cols["pred_name"]]
    elif "pred" in cols:
        raw = cols["pred"]
        if any(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
            if not meta_names:
                raise MMDataError(f"{p}: 'pred' holds class ids but the file names no classes (schema metadata "
                                  "'mmdata' names): give class names in 'pred' or a 'pred_name' column")
            pred = [meta_names[int(v)] if v is not None and 0 <= int(v) < len(meta_names) else None for v in raw]
        else:
            pred = [None if v is None or str(v) == "" else str(v) for v in raw]
    elif probs is not None:
        # the argmax of the probabilities (ties: the first column); a row without them predicts nothing
        have = ~np.isnan(probs).any(1)
        arg = np.nan_to_num(probs, nan=-1.0).argmax(1) if names else np.zeros(len(keys), dtype=int)
        pred = [names[int(a)] if h else None for a, h in zip(arg, have)]
    else:
        raise MMDataError(f"{p}: no prediction column: give 'pred' (class names), 'pred_name' or probability columns "
                          f"'{PROB_PREFIX}<class name>' (it has {_show(list(cols), 10)})")
    split = [None if s is None else str(s) for s in cols["split"]] if "split" in cols else None
    return {"keys": keys, "pred": pred, "probs": probs, "names": names, "split": split, "path": str(p)}


def _read_csv(p: Path) -> dict[str, list[Any]]:
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise MMDataError(f"{p}: an empty CSV file: expected a header row with a 'key' column")
            header = [h.strip() for h in header]
            dup = [h for h, n in Counter(header).items() if n > 1]
            if dup:
                raise MMDataError(f"{p}: column {dup[0]!r} appears {Counter(header)[dup[0]]} times in the header")
            cols: dict[str, list[Any]] = {h: [] for h in header}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise MMDataError(f"{p}: line {line} has {len(row)} fields, the header {len(header)}")
                for h, v in zip(header, row):
                    cols[h].append(v)
    except UnicodeDecodeError as e:
        raise MMDataError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start}): save the CSV as UTF-8") from None
    return cols


def _read_parquet(p: Path) -> tuple[dict[str, list[Any]], list[str] | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(p)
        table = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise MMDataError(f"{p}: not a readable Parquet file ({e}); a predictions file is .parquet or .csv") from None
    meta_names = None
    raw = (schema.metadata or {}).get(b"mmdata")
    if raw:
        try:
            meta = json.loads(raw)
        except ValueError:
            meta = {}
        kind = (meta.get("target") or {}).get("kind", "classes")
        if kind != "classes":
            raise MMDataError(f"{p}: predictions of a {kind} target ({(meta.get('target') or {}).get('key')!r}): only "
                              "class predictions are scored here (score a --target run with mmdata evaluate RUN DATA)")
        if isinstance(meta.get("names"), list):
            meta_names = [str(n) for n in meta["names"]]
    wanted = [c for c in table.column_names if c in ("key", "pred", "pred_name", "probs", "split")
              or c.startswith(PROB_PREFIX)]
    return {c: table.column(c).to_pylist() for c in wanted}, meta_names


def _check_probs(p: Path, keys: Sequence[str], probs: np.ndarray, names: Sequence[str]) -> None:
    rows = ~np.isnan(probs).all(1)
    partial = np.isnan(probs).any(1) & rows
    if partial.any():
        i = int(np.flatnonzero(partial)[0])
        raise MMDataError(f"{p}: key {keys[i]!r} has probabilities for some classes only: give every class's "
                          f"({len(names)}) or none")
    bad = rows & ((np.nan_to_num(probs) < 0).any(1) | (np.nan_to_num(probs) > 1 + PROB_TOLERANCE).any(1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MMDataError(f"{p}: key {keys[i]!r}: a probability outside [0, 1] (logits? give softmax probabilities)")
    sums = np.nansum(probs, 1)
    off = rows & (np.abs(sums - 1) > PROB_TOLERANCE)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise MMDataError(f"{p}: key {keys[i]!r}: its probabilities sum to {sums[i]:.6g}, not 1 (within "
                          f"{PROB_TOLERANCE}); {int(off.sum())} rows are so")


def parse_class_map(pairs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["frogs=frog", ...]`` (a submission's class name = DATA's) as a dict; a mapping is returned as a dict.

    Example:
        >>> parse_class_map(["frogs=frog", " Cat = cat"])
        {'frogs': 'frog', 'Cat': 'cat'}
    """
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return {str(k): str(v) for k, v in pairs.items()}
    out: dict[str, str] = {}
    for item in pairs:
        if "=" not in item:
            raise MMDataError(f"class map (--class-map): expected SUBMISSION_NAME=DATA_NAME, got {item!r}")
        a, b = (s.strip() for s in item.split("=", 1))
        if not a or not b:
            raise MMDataError(f"class map (--class-map): an empty name in {item!r}")
        if a in out and out[a] != b:
            raise MMDataError(f"class map (--class-map): {a!r} is mapped twice ({out[a]!r} and {b!r})")
        out[a] = b
    return out


def class_scores(y: np.ndarray, pred: np.ndarray, classes: int) -> dict[str, float]:
    """accuracy, macro_f1 and balanced_accuracy of true class ids ``y`` and predicted ids ``pred`` (``-1``: no class
    — wrong, and no class of its own), as :meth:`mmdata.train.evaluate.Scores.result` computes them.

    Example:
        >>> class_scores(np.array([0, 0, 1, 1]), np.array([0, -1, 1, 0]), 2)["accuracy"]
        0.5
    """
    true, predc, tp = _counts(y[None, :], pred[None, :], classes)
    return {k: float(v[0]) for k, v in _from_counts(true, predc, tp).items()}


def _counts(y: np.ndarray, pred: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row (resample) true / predicted / hit counts per class of ``y``, ``pred`` (k, n) arrays."""
    k = y.shape[0]
    base = (np.arange(k) * (classes + 1))[:, None]
    size = k * (classes + 1)
    p = np.where(pred < 0, classes, pred)  # the "no class" bucket, past the classes
    true = np.bincount((base + y).ravel(), minlength=size).reshape(k, classes + 1)[:, :classes]
    predc = np.bincount((base + p).ravel(), minlength=size).reshape(k, classes + 1)[:, :classes]
    tp = np.bincount((base + y).ravel(), weights=(y == pred).ravel().astype(float),
                     minlength=size).reshape(k, classes + 1)[:, :classes]
    return true.astype(float), predc.astype(float), tp


def _from_counts(true: np.ndarray, predc: np.ndarray, tp: np.ndarray) -> dict[str, np.ndarray]:
    n = true.sum(1)
    denom = true + predc
    seen = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(seen, 2 * tp / np.where(seen, denom, 1), 0.0).sum(1) / seen.sum(1)
        present = true > 0
        recall = np.where(present, tp / np.where(present, true, 1), 0.0).sum(1) / present.sum(1)
        acc = tp.sum(1) / n
    return {"accuracy": acc, "macro_f1": f1, "balanced_accuracy": recall}


def wilson(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``hits / n`` (accuracy) at ``level`` (scipy's ``binomtest``).

    Example:
        >>> [round(v, 3) for v in wilson(39, 60)]
        [0.524, 0.758]
    """
    from scipy.stats import binomtest

    if n == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(hits, n).proportion_ci(level, method="wilson")
    return (float(ci.low), float(ci.high))


def _resamples(n: int, n_boot: int, seed: int, split: str) -> Iterator[np.ndarray]:
    """The bootstrap index matrices, in chunks of rows (one seeded stream: chunking does not change them)."""
    from mmdata.rng import derive

    rng = derive(seed, 0, "bootstrap", split)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        yield rng.integers(0, n, size=(k, n))
        done += k


def _check_ci_args(level: float, n_boot: int) -> None:
    if not (0 < level < 1):
        raise MMDataError(f"ci (--ci): a confidence level in (0, 1), e.g. 0.95; got {level!r}")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 100:
        raise MMDataError(f"bootstrap (--bootstrap): at least 100 resamples, got {n_boot!r}")


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, classes: int, *, level: float = 0.95, n_boot: int = 1000,
                 seed: int = 0, split: str = "test") -> dict[str, Any]:
    """Percentile bootstrap intervals of :data:`CI_METRICS` over the samples (``y``, ``pred``: class ids, ``pred``
    -1 for no class), plus Wilson's interval of accuracy (``accuracy_wilson``). Deterministic in ``seed``.

    Example:
        >>> y = np.arange(60) % 4; p = np.where(np.arange(60) % 3 == 0, (y + 1) % 4, y)
        >>> ci = bootstrap_ci(y, p, 4, seed=0)
        >>> ci == bootstrap_ci(y, p, 4, seed=0), ci["accuracy"][0] < 40 / 60 < ci["accuracy"][1]
        (True, True)
    """
    _check_ci_args(level, n_boot)
    n = len(y)
    out: dict[str, Any] = {"level": level, "method": "percentile bootstrap over samples", "bootstrap": n_boot,
                           "seed": seed, "samples": n}
    if n == 0:
        return {**out, **{m: [None, None] for m in CI_METRICS}, "accuracy_wilson": [None, None]}
    draws: dict[str, list[np.ndarray]] = {m: [] for m in CI_METRICS}
    for idx in _resamples(n, n_boot, seed, split):
        vals = _from_counts(*_counts(y[idx], pred[idx], classes))
        for m in CI_METRICS:
            draws[m].append(vals[m])
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    for m in CI_METRICS:
        d = np.concatenate(draws[m])
        d = d[~np.isnan(d)]
        out[m] = [float(np.quantile(d, lo)), float(np.quantile(d, hi))] if len(d) else [None, None]
    out["accuracy_wilson"] = list(wilson(int((y == pred).sum()), n, level))
    return out


def _split_labels(data: Path, names: Sequence[str]) -> tuple[list[str], list[int], dict[str, str]]:
    """keys and labels (-1 unlabelled) of the scored splits, and every sample key of DATA -> its split."""
    from mmdata.shards.index import load_index

    t = load_index(data, columns=["key", "split", "label"]).to_pydict()
    wanted = set(names)
    keys, labels = [], []
    for k, s, lab in zip(t["key"], t["split"], t["label"]):
        if s in wanted:
            keys.append(k)
            labels.append(-1 if lab is None or lab < 0 else int(lab))
    return keys, labels, dict(zip(t["key"], t["split"]))


def score_predictions(predictions: str | Path, data: str | Path, split: str | Sequence[str] | None = None, *,
                      missing: str = "error", class_map: Sequence[str] | Mapping[str, str] | None = None,
                      ci: float | None = 0.95, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Score a predictions file against the labels of ``split`` of the dataset ``data`` (see the module docstring).

    Args:
        predictions: a predictions file (.parquet / .csv) or an output folder holding ``predictions.parquet``.
        data: the labelled dataset folder (``mmdata shard``; its ``index.parquet`` labels are read, no media).
        split: as :func:`mmdata.train.score_run.scored_splits` takes it (None: ``test``).
        missing: ``"error"`` (refuse a submission lacking a labelled sample of the split) or ``"wrong"`` (score
            it as a wrong prediction; counted in ``samples[split]["missing"]``).
        class_map: submission class name -> DATA's class name (``["frogs=frog"]`` or a mapping), applied before
            matching.
        ci: the confidence level of the intervals (None: none). n_boot, seed: the bootstrap's resamples and seed.

    Returns:
        ``{split: {accuracy, macro_f1, balanced_accuracy, nll, ece}, "per_class": {split: {name: {...}}},
        "samples": {split: {"samples", "labelled", "unlabelled", "scored", "missing", "no_prediction",
        "unknown_prediction", "extra"}}, "ci": {split: {...}}, "classes": {"num_classes", "names"}, "class_map":
        {submission name: DATA name or None}, "unknown_predictions": {name: n}, "extra_keys": {split or "not in
        DATA": n}, "predictions", "predictions_sha256", "data", "data_fingerprint", "split", "warnings",
        "versions"}``. ``nll`` / ``ece``: from the file's probabilities when every scored sample has them, else
        null. A metric without a value is NaN (null in JSON).

    Raises:
        MMDataError: a duplicated key, a missing labelled sample (``missing="error"``), a split without labels, and
            the file errors of :func:`read_predictions`.

    Example:
        >>> r = score_predictions("sub.csv", "bench_full", split="test")  # doctest: +SKIP
        >>> r["test"]["accuracy"], r["ci"]["test"]["accuracy"]  # doctest: +SKIP
        (0.65, [0.533, 0.767])
    """
    return _score(predictions, data, split, missing=missing, class_map=class_map, ci=ci, n_boot=n_boot, seed=seed)[0]


def _score(predictions: str | Path, data: str | Path, split: str | Sequence[str] | None, *, missing: str,
           class_map: Sequence[str] | Mapping[str, str] | None, ci: float | None, n_boot: int,
           seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`score_predictions`'s report, and the scored samples' keys, labels and predicted ids (a comparison
    pairs them)."""
    from mmdata.shards.index import load_card
    from mmdata.train.loop import local_data
    from mmdata.train.score_run import class_key, scored_splits
    from mmdata.urls import unless_file_url
    from mmdata.versions import software

    if missing not in ("error", "wrong"):
        raise MMDataError(f"missing (--missing): expected 'error' or 'wrong', got {missing!r}")
    if ci is not None:
        _check_ci_args(ci, n_boot)
    mapping = parse_class_map(class_map)
    sub = read_predictions(unless_file_url(predictions))
    named = str(data)
    folder = local_data(unless_file_url(data))
    card = load_card(folder)
    names_read, note = scored_splits(split, sorted(card.get("splits") or {}), named)
    split_name = ",".join(names_read)
    warnings: list[str] = [note] if note else []
    data_names = [str(n) for n in card.get("label_names") or []]
    keys, labels, split_of = _split_labels(folder, names_read)
    labelled = [k for k, lab in zip(keys, labels) if lab >= 0]
    if not labelled:
        raise MMDataError(f"{named} ({split_name}): none of its {len(keys)} samples is labelled: score a submission "
                          "against the labelled version of the dataset (the hidden labels), not the public release")

    dup = {k: n for k, n in Counter(sub["keys"]).items() if n > 1}
    if dup:
        shown = ", ".join(f"{k!r} ({n} rows)" for k, n in list(dup.items())[:5])
        raise MMDataError(f"{sub['path']}: {len(dup)} key{'s' * (len(dup) != 1)} predicted more than once ({shown}"
                          f"{', ...' if len(dup) > 5 else ''}): one row per sample")
    at = {k: i for i, k in enumerate(sub["keys"])}
    label_of = dict(zip(keys, labels))
    extra = Counter(split_of.get(k, "not in DATA") for k in sub["keys"] if k not in label_of)
    lacking = [k for k in labelled if k not in at]
    if lacking and missing == "error":
        raise MMDataError(f"{sub['path']}: no prediction for {len(lacking)} of the {len(labelled)} labelled "
                          f"{split_name} samples of {named} ({_show(lacking)}): every sample must be predicted "
                          "(--missing wrong scores them as wrong predictions)")

    # the submission's class names onto DATA's, by name (after its class map)
    index = {class_key(n): i for i, n in reversed(list(enumerate(data_names)))}
    folded = {class_key(n).casefold(): n for n in data_names}
    sub_names = sorted({n for n in sub["pred"] if n is not None} | set(sub["names"]))
    to_data: dict[str, int] = {}
    for n in sub_names:
        to_data[n] = index.get(class_key(mapping.get(n, mapping.get(class_key(n), n))), -1)
    bad_map = [f"{a!r} -> {b!r}" for a, b in mapping.items() if class_key(b) not in index]
    if bad_map:
        raise MMDataError(f"class map (--class-map): {', '.join(bad_map)}: not a class of {named} "
                          f"{_show(data_names, 10)}")

    y = np.array([label_of[k] for k in labelled], dtype=np.int64)
    rows = np.array([at.get(k, -1) for k in labelled], dtype=np.int64)
    pred = np.array([to_data.get(sub["pred"][r], -1) if r >= 0 and sub["pred"][r] is not None else -1
                     for r in rows], dtype=np.int64)
    unknown = Counter(sub["pred"][r] for r in rows if r >= 0 and sub["pred"][r] is not None
                      and to_data.get(sub["pred"][r], -1) < 0)
    no_pred = int(sum(1 for r in rows if r >= 0 and sub["pred"][r] is None))
    classes = len(data_names)
    scores = class_scores(y, pred, classes)
    scores.update(_prob_scores(sub, rows, y, to_data, classes))
    if np.isnan(scores["nll"]) and sub["probs"] is not None:
        warnings.append("nll and ece are null: some scored samples have no probabilities (missing keys or empty rows)")

    true, predc, tp = (a[0] for a in _counts(y[None, :], pred[None, :], classes))
    per: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(data_names):
        if not true[c] and not predc[c]:
            per[name] = {"precision": None, "recall": None, "f1": None, "support": 0}
            continue
        p_ = tp[c] / predc[c] if predc[c] else 0.0
        r_ = tp[c] / true[c] if true[c] else 0.0
        f1 = float(2 * p_ * r_ / (p_ + r_)) if p_ + r_ else 0.0
        per[name] = {"precision": float(p_), "recall": float(r_), "f1": f1, "support": int(true[c])}

    if lacking:
        warnings.append(f"{len(lacking)} labelled {split_name} samples have no prediction ({_show(lacking)}): scored "
                        "as wrong (--missing wrong)")
    if unknown:
        case = {n: folded[class_key(n).casefold()] for n in unknown if class_key(n).casefold() in folded}
        hint = "".join(f"; {a!r} differs from {named}'s {b!r} only in case" for a, b in case.items())
        warnings.append(f"{sum(unknown.values())} predictions name {len(unknown)} class{'es' * (len(unknown) != 1)} "
                        f"that {named} does not have ({', '.join(f'{n!r}: {c}' for n, c in unknown.most_common(6))}): "
                        f"scored as wrong{hint}; map a spelling with --class-map SUBMISSION_NAME=DATA_NAME")
    if no_pred:
        warnings.append(f"{no_pred} rows predict no class (an empty pred): scored as wrong")
    if extra:
        warnings.append(f"{sum(extra.values())} predicted keys are not {split_name} samples of {named} ("
                        + ", ".join(f"{s}: {n}" for s, n in sorted(extra.items())) + "): left out")
    unl = len(keys) - len(labelled)
    samples = {"samples": len(keys), "labelled": len(labelled), "unlabelled": unl, "scored": len(labelled),
               "missing": len(lacking), "no_prediction": no_pred, "unknown_prediction": int(sum(unknown.values())),
               "extra": int(sum(extra.values()))}
    report: dict[str, Any] = {
        "predictions": sub["path"], "predictions_sha256": _digest(Path(sub["path"])), "data": named,
        "split": split_name, split_name: scores, "per_class": {split_name: per}, "samples": {split_name: samples},
        "classes": {"num_classes": classes, "names": data_names},
        "class_map": {n: (data_names[i] if i >= 0 else None) for n, i in to_data.items()},
        "unknown_predictions": dict(unknown), "extra_keys": dict(sorted(extra.items())),
        "missing": missing,
    }
    if ci is not None:
        report["ci"] = {split_name: bootstrap_ci(y, pred, classes, level=ci, n_boot=n_boot, seed=seed,
                                                 split=split_name)}
    report["warnings"] = warnings
    report["data_fingerprint"] = card.get("fingerprint")
    report["versions"] = software()
    return report, {"keys": labelled, "y": y, "pred": pred, "classes": classes}


def _prob_scores(sub: dict[str, Any], rows: np.ndarray, y: np.ndarray, to_data: Mapping[str, int],
                 classes: int) -> dict[str, float]:
    """nll and ece from the file's probabilities (NaN unless every scored sample has them)."""
    nan = {"nll": float("nan"), "ece": float("nan")}
    probs = sub["probs"]
    if probs is None or (rows < 0).any() or not len(rows):
        return nan
    p = probs[rows]
    if np.isnan(p).any():
        return nan
    # the submission's columns onto DATA's classes (two names mapped to one class add up; an unknown name's mass
    # is on no class of DATA)
    onto = np.zeros((len(sub["names"]), classes))
    for j, n in enumerate(sub["names"]):
        if to_data.get(n, -1) >= 0:
            onto[j, to_data[n]] = 1.0
    q = p @ onto
    nll = float(-np.log(np.clip(q[np.arange(len(y)), y], 1e-12, None)).mean())
    conf = p.max(1)
    correct = (np.array([to_data.get(sub["names"][j], -1) for j in p.argmax(1)]) == y).astype(float)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    b = np.searchsorted(edges, conf, side="left")  # bin b holds edges[b-1] < conf <= edges[b]
    ece = 0.0
    for k in range(1, ECE_BINS + 1):
        m = b == k
        if m.any():
            ece += abs(correct[m].sum() - conf[m].sum()) / len(y)
    return {"nll": nll, "ece": float(ece)}


def mcnemar(a_right: np.ndarray, b_right: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test of two classifiers on the same samples: ``a_only`` / ``b_only`` (samples only A / only B
    gets right) and the two-sided exact binomial ``p`` of the discordant pairs (1.0 when there are none).

    Example:
        >>> mcnemar(np.array([True] * 10), np.array([False] * 10))["p"] < 0.01
        True
    """
    from scipy.stats import binomtest

    a_only = int((a_right & ~b_right).sum())
    b_only = int((b_right & ~a_right).sum())
    n = a_only + b_only
    p = float(binomtest(a_only, n, 0.5).pvalue) if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "both": int((a_right & b_right).sum()),
            "neither": int((~a_right & ~b_right).sum()), "p": p, "test": "McNemar exact (binomial)"}


def compare_predictions(a: str | Path, b: str | Path, data: str | Path, split: str | Sequence[str] | None = None, *,
                        missing: str = "error", class_map: Sequence[str] | Mapping[str, str] | None = None,
                        ci: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Two submissions scored on the same labelled samples of ``split`` of ``data``, compared pairwise: each
    metric's difference (A - B) with a paired percentile bootstrap interval (the same resamples for both) and a
    two-sided bootstrap p-value, and McNemar's exact test of accuracy.

    Returns:
        ``{"a": report, "b": report, "split", "difference": {metric: {"a", "b", "diff", "ci": [lo, hi], "p"}},
        "mcnemar": {...}, "level", "bootstrap", "seed", "samples", "warnings"}`` (``report``:
        :func:`score_predictions` without its per-class table).

    Raises:
        MMDataError: as :func:`score_predictions`, and when the two do not score the same samples.

    Example:
        >>> r = compare_predictions("ev/A", "ev/B", "bench_full")  # doctest: +SKIP
        >>> r["difference"]["accuracy"]["diff"], r["mcnemar"]["p"]  # doctest: +SKIP
        (0.05, 0.42)
    """
    _check_ci_args(ci, n_boot)
    ra, xa = _score(a, data, split, missing=missing, class_map=class_map, ci=ci, n_boot=n_boot, seed=seed)
    rb, xb = _score(b, data, split, missing=missing, class_map=class_map, ci=ci, n_boot=n_boot, seed=seed)
    if xa["keys"] != xb["keys"]:
        raise MMDataError(f"{ra['predictions']} and {rb['predictions']} do not score the same samples: a paired "
                          "comparison needs both on the same keys")
    sp = ra["split"]
    y, pa_, pb_, c = xa["y"], xa["pred"], xb["pred"], xa["classes"]
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in CI_METRICS}
    for idx in _resamples(len(y), n_boot, seed, sp):
        va = _from_counts(*_counts(y[idx], pa_[idx], c))
        vb = _from_counts(*_counts(y[idx], pb_[idx], c))
        for m in CI_METRICS:
            diffs[m].append(va[m] - vb[m])
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    difference: dict[str, Any] = {}
    for m in CI_METRICS:
        d = np.concatenate(diffs[m])
        d = d[~np.isnan(d)]
        p = float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))) if len(d) else float("nan")
        difference[m] = {"a": ra[sp][m], "b": rb[sp][m], "diff": ra[sp][m] - rb[sp][m],
                         "ci": [float(np.quantile(d, lo)), float(np.quantile(d, hi))] if len(d) else [None, None],
                         "p": p}
    for r in (ra, rb):
        r.pop("per_class", None)
    warnings = [f"A: {w}" for w in ra["warnings"]] + [f"B: {w}" for w in rb["warnings"]]
    return {"a": ra, "b": rb, "data": str(data), "split": sp, "difference": difference,
            "mcnemar": mcnemar(pa_ == y, pb_ == y), "level": ci, "bootstrap": n_boot, "seed": seed,
            "method": "paired percentile bootstrap over samples", "samples": len(y), "warnings": warnings,
            "data_fingerprint": ra["data_fingerprint"]}


def is_predictions(path: str | Path) -> bool:
    """Whether ``path`` is a predictions file or an output folder holding ``predictions.parquet`` but no model
    (``model.pt``): what ``mmdata evaluate`` scores as a submission rather than running a model.

    Example:
        >>> is_predictions("sub.csv"), is_predictions("no-such-folder")
        (True, False)
    """
    p = Path(os.fspath(path))
    if p.suffix.lower() in (".csv", ".parquet") and not p.is_dir():
        return True
    return p.is_dir() and (p / "predictions.parquet").is_file() and not (p / "model.pt").exists()
