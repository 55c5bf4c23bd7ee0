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

Intervals: a percentile bootstrap over the scored samples (``n_boot`` resamples, drawn as counts per confusion cell
from ``mmdata.rng.derive(seed, 0, "bootstrap", split)``: the same seed gives the same interval, on any machine) for
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
#: a row's probabilities must sum to 1 within this (taken as they are)
PROB_TOLERANCE = 1e-3
#: a row summing to 1 within this (probabilities rounded for printing: 4 classes at 2 decimals, or some dozens at 3)
#: is divided by its sum, counted and warned of (as scikit-learn's ``log_loss`` normalises); further off: refused
RENORM_TOLERANCE = 2e-2
#: how the prefix of a CSV / Parquet probability column reads
PROB_PREFIX = "prob_"
#: resamples held in memory at once (times the confusion cells): bounds the bootstrap's memory
_CHUNK_CELLS = 4_000_000
#: the fixed keys of a report (``mmdata evaluate RUN``'s and a submission's): a split of one of these names is
#: reported under ``scores`` only, never under its own name (it would overwrite or be overwritten by the field)
RESULT_KEYS = frozenset({"run", "data", "split", "scores", "per_class", "samples", "classes", "target", "class_map",
                         "unknown_classes", "unknown_classes_scored", "absent_classes", "ids_match", "reordered",
                         "robustness", "skipped", "warnings", "in_sample", "data_fingerprint", "run_data_fingerprint",
                         "versions", "predictions", "predictions_sha256", "unknown_predictions", "extra_keys",
                         "missing", "ci"})


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
    "names": [k names of probs' columns], "split": [...] or None, "path", "renormalised": rows}``.

    Parquet: ``key``; ``pred_name``, or ``pred`` (class names, or class ids named by the schema's ``mmdata``
    metadata ``names`` as ``mmdata evaluate --out`` writes them); ``probs`` (a list per row, positions named by the
    metadata ``names``) or ``prob_<name>`` columns. CSV (UTF-8, read as text: no number guessing): ``key``,
    ``pred`` / ``pred_name`` and / or ``prob_<name>`` columns. A row whose probabilities sum to 1 within
    :data:`RENORM_TOLERANCE` but not :data:`PROB_TOLERANCE` (rounded for printing) is divided by its sum and
    counted in ``renormalised``.

    Raises:
        MMDataError: naming the file and the row or column: no ``key`` column, a null / empty key, no prediction
            column, a numeric ``pred`` (class ids, or numbers) without class names, a probability that is not a
            number in [0, 1], a row whose probabilities do not sum to 1, a multi-label or regression predictions file.

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
        probs = _list_probs(p, keys, cols["probs"], len(names))
    else:
        pcols = [c for c in cols if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]
        if pcols:
            names = [c[len(PROB_PREFIX):] for c in pcols]
            probs = np.full((len(keys), len(names)), np.nan)
            for j, c in enumerate(pcols):
                probs[:, j] = _prob_column(p, keys, c, cols[c])
    renormalised = _check_probs(p, keys, probs, names) if probs is not None else 0
    pred: list[str | None]
    if "pred_name" in cols:
        pred = [None if v is None or str(v) == "" else str(v) for v in cols["pred_name"]]
    elif "pred" in cols:
        raw = cols["pred"]
        if isinstance(raw, np.ndarray) or any(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                              for v in raw):
            pred = _pred_ids(p, np.asarray(raw, dtype=float) if not isinstance(raw, np.ndarray) else raw, meta_names)
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
    return {"keys": keys, "pred": pred, "probs": probs, "names": names, "split": split, "path": str(p),
            "renormalised": renormalised}


def _pred_ids(p: Path, raw: np.ndarray, meta_names: Sequence[str] | None) -> list[str | None]:
    """A numeric ``pred`` column (NaN: no prediction) as class names through the file's metadata ``names``."""
    # a float column of whole numbers is class ids after a NaN upcast (pandas): never class names "1.0"
    known = ~np.isnan(raw)
    whole = bool((raw[known] == np.round(raw[known])).all())
    if not meta_names or not whole:
        raise MMDataError(f"{p}: 'pred' holds numbers ({_show(raw[known][:5].tolist())}), not class names: give "
                          "class names in 'pred' or a 'pred_name' column (class ids only with the class names in the "
                          "schema's 'mmdata' metadata 'names', as mmdata evaluate --out writes them; class names "
                          "that are digits: write the column as text)")
    n = len(meta_names)
    return [meta_names[int(v)] if k and 0 <= v < n else None for v, k in zip(raw.tolist(), known.tolist())]


def _prob_column(p: Path, keys: Sequence[str], name: str, values: Any) -> np.ndarray:
    """One ``prob_<name>`` column as floats (empty / null: NaN); a cell that is no number is refused by key."""
    if isinstance(values, np.ndarray):
        return values.astype(float)
    cells = np.asarray(["nan" if v is None or v == "" else v for v in values], dtype=object)
    try:
        return cells.astype(float)  # one C loop; a bad cell: found below for the message
    except (TypeError, ValueError):
        for i, v in enumerate(cells):
            try:
                float(v)
            except (TypeError, ValueError):
                raise MMDataError(f"{p}: key {keys[i]!r}, column {name!r}: {v!r} is not a probability") from None
        raise


def _list_probs(p: Path, keys: Sequence[str], rows: Any, k: int) -> np.ndarray:
    """A ``probs`` list column ((n, k) array already, or lists / None per row) as an (n, k) float array."""
    if isinstance(rows, np.ndarray):
        return rows
    probs = np.full((len(keys), k), np.nan)
    for i, r in enumerate(rows):
        if r is not None:
            if len(r) != k:
                raise MMDataError(f"{p}: key {keys[i]!r}: {len(r)} probabilities for the {k} class names of the "
                                  "file's metadata")
            probs[i] = np.asarray(r, dtype=float)
    return probs


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
            rows = list(reader)
            width = len(header)
            for line, row in enumerate(rows, start=2):
                if len(row) != width and row:
                    raise MMDataError(f"{p}: line {line} has {len(row)} fields, the header {width}")
            # column-wise in one C loop (zip), not cell by cell: a CSV of many probability columns
            columns = zip(*(r for r in rows if r)) if rows else iter(())
            cols: dict[str, list[Any]] = {h: list(c) for h, c in zip(header, columns)}
            cols.update({h: [] for h in header if h not in cols})
    except UnicodeDecodeError as e:
        raise MMDataError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start}): save the CSV as UTF-8") from None
    return cols


def _read_parquet(p: Path) -> tuple[dict[str, Any], list[str] | None]:
    """The wanted columns of a Parquet predictions file: lists, except numeric ``prob_*`` / ``pred`` columns and a
    fixed-length numeric ``probs`` (NumPy arrays, nulls NaN: read column-wise, not cell by cell)."""
    import pyarrow as pa
    import pyarrow.compute as pc
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
    out: dict[str, Any] = {}
    for c in table.column_names:
        if not (c in ("key", "pred", "pred_name", "probs", "split") or c.startswith(PROB_PREFIX)):
            continue
        col = table.column(c)
        t = col.type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
        if numeric and (c == "pred" or c.startswith(PROB_PREFIX)):
            out[c] = np.array(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False))  # writable
        elif c == "probs" and (pa.types.is_list(t) or pa.types.is_large_list(t)) and meta_names and (
                pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            lengths = pc.fill_null(pc.list_value_length(arr), len(meta_names)).to_numpy(zero_copy_only=False)
            if col.null_count or (lengths != len(meta_names)).any():
                out[c] = col.to_pylist()  # rows without / with other lengths: named one by one
            else:
                flat = pc.cast(pc.list_flatten(arr), pa.float64()).to_numpy(zero_copy_only=False)
                out[c] = np.array(flat.reshape(len(table), len(meta_names)))  # writable: renormalised in place
        else:
            out[c] = col.to_pylist()
    return out, meta_names


def _check_probs(p: Path, keys: Sequence[str], probs: np.ndarray, names: Sequence[str]) -> int:
    """Refuse rows that are not probabilities; divide rows off 1 by rounding only by their sum (in place): how many."""
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
    off = rows & (np.abs(sums - 1) > RENORM_TOLERANCE)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise MMDataError(f"{p}: key {keys[i]!r}: its probabilities sum to {sums[i]:.6g}, not 1 (within "
                          f"{RENORM_TOLERANCE}: rounding); {int(off.sum())} rows are so")
    fix = rows & (np.abs(sums - 1) > PROB_TOLERANCE)
    probs[fix] /= sums[fix, None]
    return int(fix.sum())


def parse_class_map(pairs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["frogs=frog", ...]`` (a submission's class name = DATA's) as a dict; a mapping is returned as a dict.

    An item is several comma-separated pairs (``frogs=frog,Cat=cat``, as ``--class-map`` of a run takes them) when
    every comma-separated part holds ``=``; otherwise one pair whose names may hold commas (``a,b=x``, ``x=a,b``).

    Example:
        >>> parse_class_map(["frogs=frog", " Cat = cat"])
        {'frogs': 'frog', 'Cat': 'cat'}
        >>> parse_class_map(["frogs=frog,Cat=cat", "a,b=x"])
        {'frogs': 'frog', 'Cat': 'cat', 'a,b': 'x'}
    """
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return {str(k): str(v) for k, v in pairs.items()}
    out: dict[str, str] = {}
    for given in pairs:
        parts = given.split(",")
        for item in parts if all("=" in part for part in parts) else [given]:
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


def _cells(columns: Sequence[np.ndarray], classes: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct cells of the joint confusion table of ``columns`` (class ids, -1 -> the "no class" bucket
    ``classes``): per column the cells' class ids, and each cell's number of samples."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    for c in columns:
        code = code * (classes + 1) + np.where(c < 0, classes, c)
    uniq, counts = np.unique(code, return_counts=True)
    ids = []
    for _ in columns:
        ids.append(uniq % (classes + 1))
        uniq = uniq // (classes + 1)
    return ids[::-1], counts


def _resampled_cells(counts: np.ndarray, classes: int, n_boot: int, seed: int, split: str) -> Iterator[np.ndarray]:
    """Bootstrap resamples of the samples as counts per confusion cell, in chunks of rows (one seeded stream:
    chunking does not change them). A resample of n samples with replacement puts a multinomial(n, cell share)
    number in each cell: the same distribution as drawing n indices, at a cost of the cells, not the samples."""
    from mmdata.rng import derive

    rng = derive(seed, 0, "bootstrap", split)
    n = int(counts.sum())
    share = counts / n
    rows = max(1, _CHUNK_CELLS // max(len(counts), classes + 1))
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        yield rng.multinomial(n, share, size=k)
        done += k


def _cell_scores(draws: np.ndarray, cy: np.ndarray, cp: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """:data:`CI_METRICS` of each resample (row of ``draws``: samples per cell of true ``cy`` / predicted ``cp``)."""
    k = draws.shape[0]
    size = k * (classes + 1)
    base = (np.arange(k) * (classes + 1))[:, None]
    w = draws.astype(float)
    at_y = (base + cy).ravel()

    def per_class(index: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=weights.ravel(), minlength=size).reshape(k, classes + 1)[:, :classes]

    return _from_counts(per_class(at_y, w), per_class((base + cp).ravel(), w), per_class(at_y, w * (cy == cp)))


def _paired_diffs(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, classes: int, n_boot: int, seed: int,
                  split: str) -> dict[str, np.ndarray]:
    """Each metric's A - B on the same bootstrap resamples (of the cells of the joint (y, A, B) table)."""
    (cy, ca, cb), counts = _cells([y, pa, pb], classes)
    out: dict[str, list[np.ndarray]] = {m: [] for m in CI_METRICS}
    for draws in _resampled_cells(counts, classes, n_boot, seed, split):
        va, vb = _cell_scores(draws, cy, ca, classes), _cell_scores(draws, cy, cb, classes)
        for m in CI_METRICS:
            out[m].append(va[m] - vb[m])
    return {m: np.concatenate(v) for m, v in out.items()}


def _check_ci_args(level: float, n_boot: int) -> None:
    if not (0 < level < 1):
        raise MMDataError(f"ci (--ci): a confidence level in (0, 1), e.g. 0.95; got {level!r}")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 100:
        raise MMDataError(f"bootstrap (--bootstrap): at least 100 resamples, got {n_boot!r}")


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, classes: int, *, level: float = 0.95, n_boot: int = 1000,
                 seed: int = 0, split: str = "test") -> dict[str, Any]:
    """Percentile bootstrap intervals of :data:`CI_METRICS` over the samples (``y``, ``pred``: class ids, ``pred``
    -1 for no class), plus Wilson's interval of accuracy (``accuracy_wilson``). Deterministic in ``seed``.

    A resample is drawn as counts per cell of the confusion table (multinomial: the distribution of resampling the
    samples), so its cost grows with the table's occupied cells, not with the samples, and the intervals depend on
    the confusion table only (not on the samples' order).

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
    (cy, cp), counts = _cells([y, pred], classes)
    for cells in _resampled_cells(counts, classes, n_boot, seed, split):
        vals = _cell_scores(cells, cy, cp, classes)
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
        ``{"scores": {accuracy, macro_f1, balanced_accuracy, nll, ece}, split: the same (unless the split's name
        is one of :data:`RESULT_KEYS`), "per_class": {split: {name: {...}}},
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
        >>> r["scores"]["accuracy"], r["ci"]["test"]["accuracy"]  # doctest: +SKIP
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
    # a key with stray spaces (a spreadsheet export) that is a sample of DATA once stripped: that sample, counted
    read_keys = list(sub["keys"])
    spaced = 0
    for i, k in enumerate(sub["keys"]):
        if k not in split_of and k.strip() in split_of:
            sub["keys"][i] = k.strip()
            spaced += 1
    if spaced:
        dup = {k: n for k, n in Counter(sub["keys"]).items() if n > 1}
        if dup:
            raise MMDataError(f"{sub['path']}: {_show(list(dup))} predicted more than once (once with spaces around "
                              "the key): one row per sample")
    at = {k: i for i, k in enumerate(sub["keys"])}
    label_of = dict(zip(keys, labels))
    extra = Counter(split_of.get(k, "not in DATA") for k in sub["keys"] if k not in label_of)
    lacking = [k for k in labelled if k not in at]
    if lacking and missing == "error":
        alien = [k for k in sub["keys"] if k not in split_of]
        why = (f"; {len(alien)} of the file's {len(sub['keys'])} keys are not samples of {named} ({_show(alien)}): "
               "keys are the index.parquet keys of the dataset" if alien else "")
        raise MMDataError(f"{sub['path']}: no prediction for {len(lacking)} of the {len(labelled)} labelled "
                          f"{split_name} samples of {named} ({_show(lacking)}): every sample must be predicted "
                          f"(--missing wrong scores them as wrong predictions){why}")

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
    named_by_sub = set(sub_names) | {class_key(n) for n in sub_names}
    unused = [a for a in mapping if a not in named_by_sub]
    if unused:
        warnings.append(f"class map (--class-map): {_show(unused)} name no class of {sub['path']} (none of its "
                        "predictions or probability columns): not used")

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
        warnings.append("nll, ece, auroc and auprc are null: some scored samples have no probabilities (missing keys or "
                        "empty rows)")

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
    if spaced:
        warnings.append(f"{spaced} keys have spaces around them (e.g. {next(k for k in read_keys if k != k.strip())!r}"
                        "): matched to the sample keys without them")
    if sub["renormalised"]:
        warnings.append(f"{sub['renormalised']} rows' probabilities sum to 1 within {RENORM_TOLERANCE} only (rounded "
                        f"for printing?): renormalised (divided by their sum)")
    disagree = _pred_vs_probs(sub, rows)
    if disagree:
        warnings.append(f"{disagree} rows' pred is not the argmax of their probabilities: accuracy, F1 and balanced "
                        "accuracy score pred, ECE the probabilities (their argmax)")
    if extra:
        warnings.append(f"{sum(extra.values())} predicted keys are not {split_name} samples of {named} ("
                        + ", ".join(f"{s}: {n}" for s, n in sorted(extra.items())) + "): left out")
    unl = len(keys) - len(labelled)
    samples = {"samples": len(keys), "labelled": len(labelled), "unlabelled": unl, "scored": len(labelled),
               "missing": len(lacking), "no_prediction": no_pred, "unknown_prediction": int(sum(unknown.values())),
               "extra": int(sum(extra.values()))}
    report: dict[str, Any] = {
        "predictions": sub["path"], "predictions_sha256": _digest(Path(sub["path"])), "data": named,
        "split": split_name,
        "scores": scores,  # under a fixed key: a split may be called anything (as mmdata evaluate RUN's)
        **({split_name: scores} if split_name not in RESULT_KEYS else {}),
        "per_class": {split_name: per}, "samples": {split_name: samples},
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
    """nll and ece from the file's probabilities (NaN unless every scored sample has them), and auroc / auprc
    (:func:`mmdata.train.evaluate.ranking_scores` over DATA's classes, as ``mmdata evaluate RUN`` ranks them; None
    unless every scored sample has probabilities; not given when the file has none: no such columns)."""
    nan: dict[str, Any] = {"nll": float("nan"), "ece": float("nan")}
    probs = sub["probs"]
    if probs is None:
        return nan
    nan.update(auroc=None, auprc=None)
    if (rows < 0).any() or not len(rows):
        return nan
    p = probs[rows]
    if np.isnan(p).any():
        return nan
    # the submission's columns onto DATA's classes (two names mapped to one class add up), each unknown name a
    # column of its own past DATA's (its mass on no class of DATA: never a hit)
    unknown = [n for n in sub["names"] if to_data.get(n, -1) < 0]
    onto = np.zeros((len(sub["names"]), classes + len(unknown)))
    for j, n in enumerate(sub["names"]):
        onto[j, to_data[n] if to_data.get(n, -1) >= 0 else classes + unknown.index(n)] = 1.0
    q = p @ onto
    nll = float(-np.log(np.clip(q[np.arange(len(y)), y], 1e-12, None)).mean())
    # ECE of the probabilities NLL scores (merged by the class map): their max and whether their argmax is y
    conf = q.max(1)
    correct = (q.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, ECE_BINS + 1)
    b = np.searchsorted(edges, conf, side="left")  # bin b holds edges[b-1] < conf <= edges[b]
    ece = 0.0
    for k in range(1, ECE_BINS + 1):
        m = b == k
        if m.any():
            ece += abs(correct[m].sum() - conf[m].sum()) / len(y)
    from mmdata.train.evaluate import ranking_scores

    # DATA's classes ranked (two: the second positive); a probability on a name DATA lacks (a column past them) is
    # ranked nowhere (QA36 review train #4: the table's AUROC / AUPRC columns were always n/a)
    ranked = ranking_scores(q, y, classes)
    return {"nll": nll, "ece": float(ece), "auroc": ranked["auroc"], "auprc": ranked["auprc"]}


def _pred_vs_probs(sub: dict[str, Any], rows: np.ndarray) -> int:
    """Scored rows with both a ``pred`` and probabilities whose ``pred`` is not (one of) their argmax."""
    probs = sub["probs"]
    if probs is None:
        return 0
    col = {n: j for j, n in enumerate(sub["names"])}
    n = 0
    for r in rows[rows >= 0]:
        name = sub["pred"][r]
        if name is None or np.isnan(probs[r]).any():
            continue
        j = col.get(name)
        n += j is None or probs[r, j] < probs[r].max()
    return int(n)


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

    Both are scored on DATA's labelled samples of the split (the keys come from DATA, not from the files), so the
    pairs always match. The bootstrap resamples the cells of the joint (label, A, B) table (see
    :func:`bootstrap_ci`). ``p`` is a percentile-bootstrap p-value — twice the smaller share of resampled
    differences ``<= 0`` or ``>= 0`` (at most 1) — not a test against a simulated null distribution; it is
    conservative (under the null it rejects less often than its level); McNemar's exact test is the test.

    Returns:
        ``{"a": report, "b": report, "split", "difference": {metric: {"a", "b", "diff", "ci": [lo, hi], "p"}},
        "mcnemar": {...}, "level", "bootstrap", "seed", "samples", "warnings"}`` (``report``:
        :func:`score_predictions` without its per-class table; its scores under ``scores``).

    Raises:
        MMDataError: as :func:`score_predictions`.

    Example:
        >>> r = compare_predictions("ev/A", "ev/B", "bench_full")  # doctest: +SKIP
        >>> r["difference"]["accuracy"]["diff"], r["mcnemar"]["p"]  # doctest: +SKIP
        (0.05, 0.42)
    """
    _check_ci_args(ci, n_boot)
    ra, xa = _score(a, data, split, missing=missing, class_map=class_map, ci=ci, n_boot=n_boot, seed=seed)
    rb, xb = _score(b, data, split, missing=missing, class_map=class_map, ci=ci, n_boot=n_boot, seed=seed)
    sp = ra["split"]
    y, pa_, pb_, c = xa["y"], xa["pred"], xb["pred"], xa["classes"]
    diffs = _paired_diffs(y, pa_, pb_, c, n_boot, seed, sp)
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    difference: dict[str, Any] = {}
    for m in CI_METRICS:
        d = diffs[m][~np.isnan(diffs[m])]
        # a Monte-Carlo p is never 0: (b + 1) / (N + 1) per side, as the ablation's sign-flip p-values are
        p = float(min(1.0, 2 * min(((d <= 0).sum() + 1) / (len(d) + 1), ((d >= 0).sum() + 1) / (len(d) + 1)))) \
            if len(d) else float("nan")
        sa, sb = ra["scores"][m], rb["scores"][m]
        difference[m] = {"a": sa, "b": sb, "diff": sa - sb,
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
