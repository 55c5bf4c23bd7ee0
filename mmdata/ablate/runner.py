"""Run an ablation: the scheduler picks the (arm, seed) runs, an executor runs them, the results are
saved as they arrive, and the statistics and the report are written at the end.

Every finished run — ``status: ok`` with its metrics, or ``status: failed`` with the error and the
tail of its traceback — is a row of ``DIR/runs.parquet``, rewritten atomically as runs finish (at
most every half second — longer for a long table: :func:`save_interval` — and always on a stop), so an
interrupted ablation loses no finished run (a SIGKILL can lose the runs of its last save interval, which
the rerun then repeats). A rerun skips every (arm, seed) already ``ok`` under the
same config hash, retries the failed ones, and continues the design where it stopped (mid-sequence
for adaptive designs: the decisions so far are a pure function of the finished runs).

``DIR`` must be new, empty, or the folder of an earlier ablation: a folder holding anything else is
refused before anything is written. Runs of another configuration in ``DIR/runs.parquet`` stay there,
are not analysed, and are counted in a warning (a finished run kept under an arm name the configuration no
longer has is reused under the new name when its ``config_hash`` matches: a renamed arm); switching between the
fixed and the adaptive design
(or changing the planned looks, a fixed design's seeds, the primary ``metric``, ``delta`` or ``alpha``) once
the design has looked at its results is refused — that would void the error control, or pick the equivalence
margin after seeing the data — so a new design needs a new ``DIR``. The plan fixed in advance is what the folder's
summary.json reported, whatever an edited config.resolved.yaml says; a row of the bundled trainer whose
``test_accuracy`` contradicts its own ``correct_on_test`` is refused as edited.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import platform
import re
import signal
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from mmdata.ablate.design import KIND_COLUMNS, Ablation, AblationWarning, design_warnings, inert_design, load_ablation
from mmdata.ablate.executor import (DEFAULT_ENTRY, Executor, InlineExecutor, ProcessExecutor, check_signature, cuda_ids,
                                    resolve_entry)
from mmdata.ablate.schedule import FUTILITY, Design, next_runs
from mmdata.checks import keyword_hints, plural
from mmdata.errors import MMDataError, RecipeError
from mmdata.io import TEMP_NAME, atomic_write_bytes, remove_stale_temps
from mmdata.plugins import describe, worker_plugins
from mmdata.procs import watch_for_a_dropped_exception
from mmdata.shards.journal import LOCK, JobLock
from mmdata.urls import is_remote, local_path, stage_dataset


SAVE_EVERY_S = 0.5
#: runs.parquet is rewritten whole: at most one save per this many times the last save's cost, so saving
#: stays under ~1/(1+SAVE_SHARE) of the runner's time however long the table grows (scale QA: at 12,600
#: rows of a fast trainer a save took ~0.5 s, as long as the fixed interval, and bookkeeping took half)
SAVE_SHARE = 4.0


def save_interval(last_cost_s: float) -> float:
    """Seconds from one save of runs.parquet to the next: :data:`SAVE_EVERY_S`, or :data:`SAVE_SHARE` times
    what the last save took when that is longer.

    Example:
        >>> save_interval(0.01), save_interval(0.5)
        (0.5, 2.0)
    """
    return max(SAVE_EVERY_S, SAVE_SHARE * last_cost_s)
#: files that make a folder an ablation's output folder (written before the first run)
MARKERS = ("config.resolved.yaml", "runs.parquet")
#: runs.parquet's columns that only some runs fill (a failure's message and traceback tail, a trainer's warnings as
#: a JSON list): written for every row, null where a run has none
ALWAYS_COLUMNS = ("error", "traceback", "warnings")
#: what trained each run: :func:`mmdata.shards.writer.code_identity` (mmdata's sources and library versions, a
#: 64-hex digest, part of the run's identity) and the version strings a reader recognises
CODE_COLUMNS = ("code", "mmdata_version", "torch")
#: runs.parquet's text and integer columns, typed so whatever the runs hold: a folder whose runs all succeeded
#: had ``error: null`` (Arrow's null type), one with a failure ``error: string``, and pandas, pyarrow and duckdb
#: could not read the two together (QA round 23). Every other numeric column (the metrics, wall_s) is double.
#: which of the dataset's splits the run trained on (``"1,2,3"`` for several), selected its epoch on and was
#: tested on: the recipe's ``trainer.*_split`` or the options, resolved for the bundled trainer; null where a custom
#: trainer was given none (its own choice). k-fold folders read together are told apart by them (QA34). Not named
#: ``test_split``: a ``test_`` column is a metric
SPLIT_COLUMNS = ("split_train", "split_val", "split_test")
TEXT_COLUMNS = ("arm", "config_hash", "data_fingerprint", "status", *ALWAYS_COLUMNS, *CODE_COLUMNS, "correct_on_test",
                "finished_at", *SPLIT_COLUMNS)
INT_COLUMNS = ("seed", "best_epoch")
#: ``analysed``: whether the row is a run of the folder's configuration (config.resolved.yaml), the runs summary.json
#: and report.md analyse (a failed one among the failures); false for a row kept from another configuration (QA34:
#: after a rerun with a changed recipe two rows of one (arm, seed) were in the table and nothing said which counts)
BOOL_COLUMNS = ("analysed",)
#: what every run records beside the metrics (null for a failed run)
TIME_COLUMNS = ("wall_s", "cpu_s")
#: the bundled trainer's columns beside the metrics (null for a failed run)
BUNDLED_COLUMNS = ("best_epoch", "correct_on_test")
#: the files a job writes in OUT besides the report's (and ``configs/``'s kept configurations)
RUN_FILES = ("runs.parquet", "config.resolved.yaml", "env.json")
#: the analysis of the runs, rewritten at the end; stale once the runner starts new runs
REPORT_FILES = ("summary.json", "report.md", "paired.csv", "forest.png", "paired.png", "robustness.png")
#: where a rerun keeps the report it replaces: ``previous/<12 hex of its summary.json>/`` (with the
#: config.resolved.yaml it was written with)
PREVIOUS = "previous"


def run_columns(ab: Ablation) -> tuple[str, ...]:
    """The columns of runs.parquet whatever its runs hold (besides the keys and :data:`ALWAYS_COLUMNS`): the
    metrics the trainer returns — the bundled trainer's for the card's classes, or for its ``trainer.target``'s
    kind (the kind whose metrics hold the primary one) —, the primary metric of a custom trainer, the times, the
    bundled trainer's ``best_epoch`` / ``correct_on_test``, the split roles and ``analysed``. Null where a run
    has none (a failed run): a folder whose runs all failed has them too, so folders read together keep every
    metric (QA34: ``pyarrow.dataset`` took the first file's schema and dropped the others' metrics).

    Example:
        >>> from mmdata.ablate.design import Ablation, Arm
        >>> run_columns(Ablation(dataset={}, trainer={}, seeds=2, arms=[Arm("a", None)]))[:2]
        ('test_accuracy', 'test_macro_f1')
    """
    from mmdata.ablate.design import CLASS_COLUMNS, TARGET_COLUMNS

    col = ab.metric.column
    if not ab.bundled:
        metrics: tuple[str, ...] = (col,)
    elif ab.trainer.get("target") is None:
        metrics = CLASS_COLUMNS
    else:
        metrics = next((c for c in KIND_COLUMNS.values() if col in c), TARGET_COLUMNS)
    return (*metrics, *TIME_COLUMNS, *(BUNDLED_COLUMNS if ab.bundled else ()), *SPLIT_COLUMNS, *BOOL_COLUMNS)


def split_columns(ab: Ablation, data: str, storage_options: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Each run's :data:`SPLIT_COLUMNS`: the splits that play train, val and test. The bundled trainer's are
    resolved against the dataset's card (train: every split not in another role, ``"1,2,3"``; none given: the
    splits named train, val and test); a custom trainer's are what it was given (None: none, its own choice)."""
    options = ("train_split", "val_split", "test_split")
    given = {c: ab.trainer.get(k) for c, k in zip(SPLIT_COLUMNS, options)}

    def text(v: Any) -> str | None:
        return None if v is None else ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    if ab.bundled:
        given = {c: given[c] if given[c] is not None else c.split("_")[1] for c in SPLIT_COLUMNS}
        if ab.trainer.get("train_split") is None and any(ab.trainer.get(k) is not None for k in ("val_split", "test_split")):
            from mmdata.shards.index import load_card
            from mmdata.train.config import split_roles

            given["split_train"] = None  # every split in no other role: known from the card (not read: unknown)
            try:
                if data:
                    roles = split_roles(data, load_card(data, storage_options), val_split=ab.trainer.get("val_split"),
                                        test_split=ab.trainer.get("test_split"))
                    given["split_train"] = roles["train"] if roles else None
            except (MMDataError, OSError):  # checked before the runs already
                pass
    return {k: text(v) for k, v in given.items()}


class Interrupted(KeyboardInterrupt):
    """The ablation was stopped by SIGINT (Ctrl-C) or SIGTERM; finished runs are saved."""

    def __init__(self, signum: int = signal.SIGINT, kept: int = 0, failed: int = 0) -> None:
        # runs.parquet holds the failed runs too: "13 kept" beside 16 rows read as 3 runs lost (QA29 stats #6)
        also = f" and {failed} failed run{'s' * (failed != 1)} recorded (retried on resume)" if failed else ""
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {kept} finished runs kept{also} — rerun to resume")
        self.signum = signum
        self.kept = kept
        self.failed = failed


def _counts(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """``(ok, failed)`` runs among ``rows``, for :class:`Interrupted`."""
    ok = sum(r["status"] == "ok" for r in rows)
    return ok, sum(r["status"] == "failed" for r in rows)


def prepare_data(ab: Ablation, out: Path, storage_options: dict[str, Any] | None = None) -> tuple[str, str]:
    """The dataset path (building avdigits into DIR/data when named) and its fingerprint."""
    from mmdata.shards.index import is_dataset, load_card

    raw = ab.dataset.get("path")
    if raw is not None and is_remote(raw):
        # an fsspec URL: every run reads it where it runs (staged into that node's cache by run_task)
        data, card = str(raw), load_card(str(raw), storage_options)
    else:
        path = local_path(raw, "dataset.path") if raw is not None else out / "data"
        if raw is None and not is_dataset(path):
            from mmdata.datasets.avdigits import build

            build(path, seed=int(ab.dataset.get("seed", 0)), progress=False, limit=ab.dataset.get("limit"))
        data, card = str(path), load_card(path)
    return data, (card.get("avdigits") or {}).get("content_sha256") or card.get("fingerprint", "")


def check_out(out: Path, ab: Ablation, shown: str | None = None) -> dict[str, Any] | None:
    """Refuse an output folder this ablation must not write into: a file, or a non-empty folder that is
    not an ablation's (anything but a dataset in ``data/``, which ``mmdata demo`` and a recipe naming
    avdigits build there). Returns the previous ``config.resolved.yaml`` of an ablation folder
    (``{}`` when unreadable), None for a new or empty one."""
    shown = shown or str(out)
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                where = "exists and is not a folder" if p == out else f"{p} exists and is not a folder"
                raise MMDataError(f"--out (out=) {shown}: {where}; give a new folder or the folder of an earlier ablation")
            break
    from mmdata.train.config import inside_dataset

    inside = inside_dataset(out, "--out (out=)", "the ablation would write its runs and report among the dataset's "
                                                 "files", shown)
    if inside is not None:
        raise inside
    if not out.is_dir():
        return None
    if any((out / m).is_file() for m in MARKERS):
        return _previous_config(out)
    from mmdata.shards.index import is_dataset

    def ours(p: Path) -> bool:
        return p.name == "data" and p.is_dir() and (is_dataset(p) or "path" not in ab.dataset)

    other = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if not ours(p) and p.name != LOCK)
    if other:
        listed = ", ".join(other[:8]) + (f", … ({len(other)} entries)" if len(other) > 8 else "")
        raise MMDataError(f"--out (out=) {shown}: not empty and not an mmdata ablation folder (it has {listed}); give a new or "
                          "empty folder, or the folder of an earlier `mmdata ablate` to resume it")
    return None


def _previous_config(out: Path) -> dict[str, Any]:
    """The folder's previous ``config.resolved.yaml`` read by the safe reader (the folder may be anyone's:
    an alias bomb or a FIFO there is refused); ``{}`` when missing or unreadable."""
    from mmdata import safe_yaml

    p = out / "config.resolved.yaml"
    try:
        prev = safe_yaml.parse(safe_yaml.decode(safe_yaml.read_bytes(p, "config"), str(p)), str(p), quote=False)
    except MMDataError:
        return {}
    return prev if isinstance(prev, dict) else {}


class _ClosedOnError:
    """Closes an executor this call opened early (the Ray connection, made before anything is written, so
    that a cluster that is not there leaves no files) when setting up the runs fails; once the run loop
    has taken it over (:meth:`hand_over`) the loop closes it, exactly once."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def hand_over(self) -> None:
        self.executor = None

    def __enter__(self) -> _ClosedOnError:
        return self

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.executor is not None:
            self.executor.close()


def _plan(d: Design) -> str:
    if not d.adaptive:
        return f"fixed design ({d.looks.max} seeds)"
    return f"adaptive design (looks {list(d.looks.sizes)}, {d.looks.spending} spending)"


def _previous_design(prev: dict[str, Any], alpha: float) -> Design | None:
    try:
        seeds, ad = int(prev["seeds"]), prev.get("adaptive") or False
        a = float(prev.get("alpha", alpha))
        if not ad:
            return Design.fixed(seeds, a)
        fut = ad.get("futility")
        return Design.sequential(seeds, tuple(ad["looks"]), a, futility=FUTILITY if fut is None else float(fut),
                                 spending=ad.get("spending", "hsd"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _reported_delta(out: Path) -> tuple[float, str] | None:
    """The δ the folder's last summary.json reported (its value, also when it was the default) and report.md's
    text of it (``4.59``: the metric's decimals), None if unknown."""
    from mmdata.ablate.report import metric_decimals, num

    try:
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        value = s["delta"]["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        return float(value), num(float(value), metric_decimals(s), sign=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _fixed_delta(prev: dict[str, Any], reported: tuple[float, str] | None) -> float | None:
    """The δ the folder fixed: the recipe's, else the default it reported."""
    was = prev.get("delta")
    return float(was) if was is not None else reported[0] if reported else None


def _as_shown(fixed: float, pinned: float, report_text: str | None) -> bool:
    """Whether ``pinned`` is ``fixed`` in full or at a precision it is shown with: report.md's (``report_text``),
    or a refusal's (4 or 6 significant digits) — nothing looser.

    Example:
        >>> [_as_shown(4.592620263377021, v, "4.59") for v in (4.592620263377021, 4.593, 4.59, 4.5926, 4.6)]
        [True, True, True, False, False]
    """
    return math.isclose(fixed, pinned, rel_tol=1e-9) or any(
        float(t) == pinned for t in (f"{fixed:.4g}", f"{fixed:g}", report_text) if t)


def _margin_changed(prev: dict[str, Any], ab: Ablation, reported: tuple[float, str] | None) -> list[tuple[str, str, str]]:
    """``(key, was, now)`` for ``delta`` and ``alpha`` where the recipe changed them since the folder's last run.
    A δ set to the very value the folder fixed (its own, or the default it reported) in full or as shown is no
    change (:func:`_as_shown`).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> _margin_changed({"delta": None, "alpha": 0.05}, NS(delta=11.0, alpha=0.05), (9.3518, "9.35"))
        [('delta', "the default (the baseline's seed sd, 9.352 as reported)", '11')]
        >>> _margin_changed({"delta": None, "alpha": 0.05}, NS(delta=9.35, alpha=0.05), (9.3518, "9.35"))  # as shown
        []
    """
    out = []
    if "delta" in prev:
        was, fixed = prev.get("delta"), _fixed_delta(prev, reported)
        same = (was is None and ab.delta is None) or (
            ab.delta is not None and fixed is not None and _as_shown(fixed, ab.delta, reported[1] if reported else None))
        if not same:
            shown = "the default (the baseline's seed sd" + (f", {reported[0]:.4g} as reported)" if reported is not None
                                                             and was is None else ")")
            out.append(("delta", shown if was is None else f"{float(was):g}",
                        "the default (the baseline's seed sd)" if ab.delta is None else f"{ab.delta:g}"))
    if "alpha" in prev and not math.isclose(float(prev["alpha"]), ab.alpha, rel_tol=1e-12):
        out.append(("alpha", f"{float(prev['alpha']):g}", f"{ab.alpha:g}"))
    return out


def check_design_switch(prev: dict[str, Any] | None, ab: Ablation, rows: list[dict[str, Any]], shown: str,
                        reported_delta: tuple[float, str] | None = None) -> str | None:
    """Refuse a change between the fixed and the adaptive design, of the planned looks or spending, of a
    fixed design's seeds, of the primary metric, of ``delta`` or of ``alpha``, once the earlier design has
    looked at its results (a look completed on these runs): its decisions were made under the old plan, and
    choosing the plan after seeing them voids the error control (a fixed design of 10 seeds extended to 20
    tests every arm twice at full α: 9% family-wise false positives in simulation where 5% was planned; trying
    k primary metrics and reporting the one with a verdict inflates it the same way, and an adaptive design's
    stops were decided on the old metric). δ alone decides `equivalent` / `negligible`: a margin widened after
    the verdicts turns inconclusive arms into "no effect" (QA29 stats #2). ``rows``: this configuration's runs,
    also those of seeds beyond the new count; ``reported_delta``: the δ the folder's summary.json reported and
    report.md's text of it. A δ pinned at the fixed one as shown (4.593 for 4.592620263377021) is set to the fixed
    one in full — the folder keeps its δ — and the returned line says so; None otherwise."""
    old = _previous_design(prev or {}, ab.alpha)
    new = ab.design()
    was_metric = str(((prev or {}).get("metric") or {}).get("name", ab.metric.name))
    same_design = old is not None and old.adaptive == new.adaptive and \
        (old.looks.sizes, old.looks.spending) == (new.looks.sizes, new.looks.spending)
    margins = _margin_changed(prev or {}, ab, reported_delta)
    fixed = _fixed_delta(prev or {}, reported_delta)
    as_shown = not margins and ab.delta is not None and fixed is not None and not math.isclose(fixed, ab.delta, rel_tol=1e-9)
    if old is None or (same_design and was_metric == ab.metric.name and not margins and not as_shown):
        return None
    col = "test_" + was_metric[len("test."):]
    values: dict[str, dict[int, float]] = {}
    for r in rows:
        if r["status"] == "ok" and r.get(col) is not None:
            values.setdefault(r["arm"], {})[int(r["seed"])] = float(r[col])
    tried: dict[str, set[int]] = {}
    for r in rows:  # a failed run's look completed without it, as in the session that reported (QA29 stats #2)
        tried.setdefault(r["arm"], set()).add(int(r["seed"]))
    state, _ = next_runs(old, ab.baseline.name, [a.name for a in ab.arms[1:]], values, tried)
    if not state.looks_done:
        return None
    if same_design and was_metric == ab.metric.name and not margins:  # δ pinned as shown
        pinned, ab.delta = ab.delta, fixed  # what the verdicts were reported under, not a δ moved in the 4th digit
        what = "the default as reported" if (prev or {}).get("delta") is None else "this folder's δ as shown"
        return f"delta: {pinned:g} ({what}) is {fixed!r} in full; the analysis keeps that value, the one fixed in advance"
    done = ("its verdicts were reported" if reported_delta is not None else  # a Ctrl-C between the last run and the report
            "every run of its plan has a result, so its verdicts are fixed, though no report was written yet") \
        if not old.adaptive else \
        f"{state.looks_done} look{'s' * (state.looks_done > 1)} done"
    if not same_design:
        raise MMDataError(f"--out (out=) {shown}: this ablation already looked at its results under the {_plan(old)} ({done}); "
                          f"switching to the {_plan(new)} now would void its error control (the decisions so far assumed "
                          "the plan fixed in advance; more seeds test the same arms a second time at full α). Rerun with "
                          "the same design to re-analyse, or use a new --out for the new design (the runs here stay; "
                          "--adaptive from the start when seeds may be added as results come).")
    stops = " and its arms were stopped on it" if old.adaptive else ""
    if was_metric == ab.metric.name:
        key, was, now = margins[0]
        why = ("`equivalent` and `negligible` rest on δ alone: a margin chosen after seeing the verdicts turns "
               "inconclusive arms into 'no effect' claims" if key == "delta" else
               "a family-wise error rate chosen after seeing the verdicts is not one")
        keep = "Leave delta out of the recipe (the default)" if was.startswith("the default") else f"Keep {key}: {was}"
        raise MMDataError(f"{key}: this ablation in --out (out=) {shown} already looked at its results with {key} = {was} "
                          f"fixed in advance ({_plan(old)}, {done}){stops}; changing it to {now} now would not be "
                          f"confirmatory ({why}). {keep} to re-analyse this folder, or use a new --out for a new "
                          f"analysis with {key} = {now} chosen before its runs (the runs here stay).")
    raise MMDataError(f"metric: this ablation in --out (out=) {shown} already looked at its results with the primary metric "
                      f"{was_metric!r} fixed in advance ({_plan(old)}, {done}){stops}; making {ab.metric.name!r} the "
                      "primary metric now would pick the confirmatory test after seeing the results (trying several "
                      "primary metrics and reporting the one with a verdict voids the family-wise error control). "
                      f"Keep metric: {was_metric} to re-analyse this folder (report.md's Exploratory section and "
                      f"runs.parquet already give {ab.metric.name} for every arm, without a verdict), or use a new --out "
                      f"for a new confirmatory analysis with {ab.metric.name} chosen before its runs.")


def _reported_plan(out: Path) -> dict[str, Any] | None:
    """What the folder's summary.json reported its verdicts under, in config.resolved.yaml's terms: ``metric``
    (the primary metric's name), ``delta`` (the recipe's value; None for the default), ``alpha``, ``seeds`` and
    ``adaptive`` (False or its looks, futility and spending) — each only where summary.json says it. None
    without a readable summary.json. A config.resolved.yaml edited after the report cannot move these (QA35
    grader #3: editing it switched the primary metric and widened δ after the verdicts, silently).

    Example:
        >>> _reported_plan(Path("/nonexistent")) is None
        True
    """
    from mmdata.ablate.schedule import SPENDING_NAMES

    try:
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(s, dict):
        return None
    plan: dict[str, Any] = {}

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    pm = s.get("primary_metric")
    if isinstance(pm, dict) and isinstance(pm.get("name"), str):
        plan["metric"] = pm["name"]
    d = s.get("delta")
    if isinstance(d, dict) and isinstance(d.get("source"), str):
        given = d["source"].startswith("set in the recipe") and number(d.get("value"))
        plan["delta"] = float(d["value"]) if given else None
    if number(s.get("alpha")):
        plan["alpha"] = float(s["alpha"])
    des = s.get("design")
    if isinstance(des, dict) and isinstance(des.get("max_seeds"), int) and not isinstance(des.get("max_seeds"), bool):
        plan["seeds"] = des["max_seeds"]
        if des.get("adaptive"):
            keys = {v: k for k, v in SPENDING_NAMES.items()}
            plan["adaptive"] = {"looks": list(des.get("looks") or []), "futility": des.get("futility"),
                                "spending": keys.get(des.get("spending"), des.get("spending"))}
        else:
            plan["adaptive"] = False
    return plan


def _as_reported(prev: dict[str, Any] | None, plan: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """``prev`` (the folder's config.resolved.yaml) with the plan its summary.json reported
    (:func:`_reported_plan`) where the two disagree — the report's is the one fixed in advance — and the
    disagreements in words (``metric test.macro_f1 (summary.json reported test.accuracy)``).

    Example:
        >>> prev = {"metric": {"name": "test.macro_f1"}, "delta": 20.0, "alpha": 0.05, "seeds": 6, "adaptive": False}
        >>> plan = {"metric": "test.accuracy", "delta": None, "alpha": 0.05, "seeds": 6, "adaptive": False}
        >>> merged, said = _as_reported(prev, plan)
        >>> merged["metric"]["name"], merged["delta"], said
        ('test.accuracy', None, ['metric: test.macro_f1 (summary.json reported test.accuracy)', 'delta: 20 (summary.json reported the default)'])
    """
    if not prev or not plan:
        return prev, []
    merged, said = dict(prev), []

    def shown(v: Any) -> str:
        return "the default" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    was_metric = (prev.get("metric") or {}).get("name") if isinstance(prev.get("metric"), dict) else None
    if "metric" in plan and was_metric is not None and was_metric != plan["metric"]:
        merged["metric"] = {**prev["metric"], "name": plan["metric"]}
        said.append(f"metric: {was_metric} (summary.json reported {plan['metric']})")
    for key in ("delta", "alpha"):
        if key not in plan or key not in prev:
            continue
        was, now = prev.get(key), plan[key]
        try:
            same = (was is None and now is None) or (was is not None and now is not None
                                                     and math.isclose(float(was), float(now), rel_tol=1e-9))
        except (TypeError, ValueError):
            same = False
        if not same:
            merged[key] = now
            said.append(f"{key}: {shown(was if not isinstance(was, int) else float(was))} (summary.json reported {shown(now)})")

    def plan_of(cfg: dict[str, Any]) -> Any:
        ad = cfg.get("adaptive") or False
        if not isinstance(ad, dict):
            return (cfg.get("seeds"), False)
        fut = ad.get("futility")
        return (cfg.get("seeds"), (list(ad.get("looks") or []), ad.get("spending", "hsd"),
                                   FUTILITY if fut is None else float(fut)))

    if "seeds" in plan:
        try:
            differ = plan_of(prev) != plan_of(plan)
        except (TypeError, ValueError):
            differ = True
        if differ:
            merged.update(seeds=plan["seeds"], adaptive=plan["adaptive"])
            old, new = _previous_design(prev, 0.05), _previous_design(plan, 0.05)
            said.append(f"design: {_plan(old) if old else repr(prev.get('seeds'))} (summary.json reported the "
                        f"{_plan(new) if new else plan['seeds']})")
    return merged, said


def check_recorded_accuracy(rows: list[dict[str, Any]], where: str) -> None:
    """Refuse to analyse rows whose ``test_accuracy`` contradicts their own ``correct_on_test`` (the bundled
    trainer writes both from one evaluation: the share of set bits is the accuracy): such a row was edited
    after its run (QA35 grader #1: a hand-raised accuracy was analysed, and the report mixed it with the
    untouched bits' noise estimate). ``where``: runs.parquet as the user named it.

    Raises:
        MMDataError: naming each such row (``arm/seed``), its accuracy and the one its bits give.

    Example:
        >>> ok = {"arm": "crop", "seed": 0, "status": "ok", "test_accuracy": 0.1, "correct_on_test": "ab:10:8000"}
        >>> check_recorded_accuracy([ok], "out/runs.parquet")
        >>> check_recorded_accuracy([{**ok, "test_accuracy": 0.3}], "out/runs.parquet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: out/runs.parquet row crop/0: test_accuracy 0.3 but correct_on_test says 0.1 (1 of 10 test examples right) — edited? ...
    """
    from mmdata.train.evaluate import decode_correct

    bad = []
    for r in rows:
        code, acc = r.get("correct_on_test"), r.get("test_accuracy")
        if r.get("status") != "ok" or not isinstance(code, str) or not code or acc is None:
            continue
        name = f"row {r['arm']}/{r['seed']}"
        try:
            n = int(code.split(":")[1])
            bits = decode_correct(code)[1]
            if len(bits) != n:
                raise ValueError(code)
        except (ValueError, IndexError, TypeError):
            bad.append(f"{name}: correct_on_test {code[:40]!r} is not what the trainer writes (digest:n:hex bits)")
            continue
        if n == 0:
            continue
        k = int(bits.sum())
        try:
            value = float(acc)
        except (TypeError, ValueError):
            value = float("nan")
        if not math.isclose(value, k / n, rel_tol=0.0, abs_tol=min(1e-6, 0.25 / n)):
            bad.append(f"{name}: test_accuracy {value:.6g} but correct_on_test says {k / n:.6g} ({k} of {n} test "
                       "examples right) — edited?")
    if not bad:
        return
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    listed = "; ".join(bad[:3]) + more
    raise MMDataError(f"{where} {listed}{' ' if listed.endswith('?') else '. '}The bundled trainer writes a run's test_accuracy and "
                      f"correct_on_test from the same evaluation, so {'this row was' if len(bad) == 1 else 'these rows were'} "
                      "changed after the run: nothing was analysed or written. Restore runs.parquet from a copy, or "
                      "delete the row(s) to train those runs again on the rerun.")


def _reuse_renamed(every: list[dict[str, Any]], hashes: dict[tuple[str, int], str]
                   ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    """``every`` with each finished run kept under another arm name moved to the arm of this configuration whose
    run has the same identity (``config_hash``: recipe, trainer, data, seed, code — not the name) and no row of
    its own; and ``{(old name, new name): runs}``. An arm renamed in config.resolved.yaml trained its runs again
    and called the old rows "another configuration" (QA35 grader #2).

    Example:
        >>> rows = [{"arm": "crop", "seed": 0, "config_hash": "h0", "status": "ok"}]
        >>> moved, renamed = _reuse_renamed(rows, {("rotate", 0): "h0"})
        >>> [r["arm"] for r in moved], renamed
        (['rotate'], {('crop', 'rotate'): 1})
    """
    have = {(r["arm"], int(r["seed"])) for r in every if hashes.get((r["arm"], int(r["seed"]))) == r["config_hash"]}
    spare: dict[str, int] = {}
    for i, r in enumerate(every):
        if r["status"] == "ok" and hashes.get((r["arm"], int(r["seed"]))) != r["config_hash"]:
            spare.setdefault(r["config_hash"], i)
    moved: dict[int, list[dict[str, Any]]] = {}
    renamed: Counter[tuple[str, str]] = Counter()
    for (arm, seed), h in hashes.items():
        i = spare.get(h)
        if (arm, seed) in have or i is None or int(every[i]["seed"]) != seed:
            continue
        moved.setdefault(i, []).append({**every[i], "arm": arm})
        renamed[(every[i]["arm"], arm)] += 1
        have.add((arm, seed))
    if not moved:
        return every, {}
    out: list[dict[str, Any]] = []
    for i, r in enumerate(every):
        out.extend(moved.get(i, [r]))
    return out, dict(renamed)


def _folder_threads(out: Path) -> int:
    """The torch threads per run the folder's runs were trained with (env.json ``threads_per_run``), 1 when it
    does not say: a rerun of ``DIR/config.resolved.yaml`` without ``--threads`` re-analyses the same runs
    (QA35 grader #5: a folder of ``--threads 2`` was retrained in full at 1)."""
    env = _read_env(out) or {}
    t = env.get("threads_per_run")
    return t if isinstance(t, int) and not isinstance(t, bool) and t >= 1 else 1


def _changed(prev: dict[str, Any] | None, ab: Ablation, stale: list[dict[str, Any]], fingerprint: str,
             prev_env: dict[str, Any] | None, device: str, threads: int, env: dict[str, Any] | None = None) -> str:
    """What changed since the folder's previous run, for the stale-runs warning: recipe parts, the
    dataset's content (a stale run's data fingerprint), mmdata's code or its libraries (a stale run's
    ``code``; ``env``: this call's :func:`environment`), --device, --threads; when none did, the runs
    come from a configuration before the last one."""
    new = ab.resolved() if prev else {}

    def arms(cfg: dict[str, Any]) -> Any:
        return {a.get("name"): (a.get("recipe"), a.get("label_noise")) for a in cfg.get("arms") or [] if isinstance(a, dict)}

    def part(cfg: Any, k: str) -> Any:
        v = cfg.get(k) if isinstance(cfg, dict) else None
        # the data fingerprint the runs used is compared through the rows (below), not as a recipe key
        return {n: x for n, x in v.items() if n != "fingerprint"} if k == "dataset" and isinstance(v, dict) else v

    keys = [k for k in ("dataset", "trainer") if prev and part(prev, k) != part(new, k)]
    if "trainer" in keys and isinstance(prev and prev.get("trainer"), dict):
        was, now = prev["trainer"], new.get("trainer") or {}
        differ = [k for k in dict.fromkeys([*was, *now]) if was.get(k) != now.get(k)]
        if differ and all(k in ("train_split", "val_split", "test_split") for k in differ):  # k-fold: another fold, one folder
            keys[keys.index("trainer")] = ", ".join(f"trainer.{k}" for k in differ)
    keys += ["arms"] if prev and arms(prev) != arms(new) else []
    keys += ["seeds"] if any(int(r["seed"]) >= ab.seeds for r in stale) else []
    if "dataset" not in keys and any(r.get("data_fingerprint") != fingerprint for r in stale):
        keys.append("the dataset's content")
    if env is not None:
        code = _code_change(stale, env, prev_env)
        keys += [code] if code else []
    old = prev_env or {}
    options = [(k, was, now) for k, was, now in (("device", old.get("device"), device),
                                                 ("threads", old.get("threads_per_run"), threads))
               if was is not None and str(was) != str(now)]
    keys += [f"--{k}" for k, _, _ in options]
    # the values, so the rerun that re-analyses them can be typed (QA35 grader #5: "changed: --threads" only)
    values = "; ".join(f"--{k} {was} -> {now}: rerun with --{k} {was} to re-analyse them" for k, was, now in options)
    if not keys:
        return " (from a configuration before the folder's last run)"
    return f" (changed: {', '.join(keys)})" + (f"; {values}" if values else "")  # no dash pair before the caller's ";"


def _environments(env: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The environments an ``env.json`` records: its ``environments`` list, or (an env.json of an mmdata
    before that list) the one environment at its top level."""
    if not isinstance(env, dict):
        return []
    listed = env.get("environments")
    if isinstance(listed, list):
        return [e for e in listed if isinstance(e, dict)]
    return [{**env, "runs": None}] if env else []


def _software(version: Any, rev: Any, dirty: Any, torch: Any, code: Any) -> str:
    """One version of mmdata as words: ``mmdata 0.1.0 at b1adf78 (uncommitted changes), torch 2.4.1, code 3f2a9c1e``."""
    at = f" at {str(rev)[:7]}" if rev else ""
    return (f"mmdata {version or '?'}{at}{' (uncommitted changes)' if dirty else ''}, torch {torch or '?'}, "
            f"code {str(code)[:8]}")


def _code_change(stale: list[dict[str, Any]], env: dict[str, Any], prev_env: dict[str, Any] | None) -> str | None:
    """The stale-runs reason when some come from other code: which code changed — mmdata's or its libraries'
    (the versions the runs ran under, from their rows and the folder's env.json, and this call's), the
    plugins' (the packages edited; or runs that did not record theirs yet) — where env.json's ``mmdata_code``
    and ``plugin_code`` tell them apart, else all three named as one."""
    other = [r for r in stale if r.get("code") != env["code"]]
    if not other:
        return None
    known = {e.get("code"): e for e in _environments(prev_env) if e.get("code")}
    was = []
    for code in dict.fromkeys(r.get("code") for r in other):
        if not code:
            was.append("not recorded: rows from before runs.parquet had a code column")
            continue
        r, e = next(r for r in other if r.get("code") == code), known.get(code, {})
        was.append(_software(r.get("mmdata_version") or e.get("mmdata"), e.get("git_revision"), e.get("git_dirty"),
                             r.get("torch") or e.get("torch"), code))
    now = _software(env.get("mmdata"), env.get("git_revision"), env.get("git_dirty"), env.get("torch"), env["code"])
    versions = f"{'; '.join(was)} -> {now}"
    if not (env.get("plugin_code") or any(e.get("plugin_code") for e in known.values())):
        return f"mmdata's code or its libraries ({versions})"
    said = _plugin_change([known.get(c) for c in dict.fromkeys(r.get("code") for r in other)], env)
    mine, plugins = said or (False, "")
    if not plugins:
        if mine:
            return f"mmdata's code or its libraries ({versions})"
        # an environment env.json does not record apart (or an mmdata of before it did): any of the three
        return f"mmdata's code, its libraries or the plugins' code ({versions})"
    if mine:
        return f"mmdata's code or its libraries ({versions}) and {plugins}"
    return (plugins[:-1] + "; " if plugins.endswith(")") else plugins + " (") + "mmdata's code and libraries are as before)"


def _plugin_change(was: list[dict[str, Any] | None], env: dict[str, Any]) -> tuple[bool, str] | None:
    """Whether mmdata's code changed between the environments ``was`` (env.json's, one per stale code) and
    ``env``, and how the plugins' did, in words ("" if not); None when one of them is not recorded apart."""
    mine_now = env.get("mmdata_code") or (None if env.get("plugin_code") else env.get("code"))
    mine, unrecorded, dropped, edited = False, False, False, set[str]()
    for e in was:
        if not e:
            return None
        mine_was = e.get("mmdata_code") or (None if e.get("plugin_code") else e.get("code"))
        if not mine_was or not mine_now:
            return None
        mine |= mine_was != mine_now
        theirs_was, theirs_now = e.get("plugin_code"), env.get("plugin_code")
        if theirs_was == theirs_now:
            continue
        if theirs_was is None:
            unrecorded = True
        elif theirs_now is None:
            dropped = True
        else:
            a, b = e.get("plugin_modules") or {}, env.get("plugin_modules") or {}
            edited |= {n for n in {*a, *b} if a.get(n) != b.get(n)} if a else {""}
    words = []
    if unrecorded:
        words.append("the plugins' code, which these runs did not record (a run's identity covers the code from outside "
                     "mmdata it uses — its trainer entry's, plugin ops' and fusion's packages, imports: — from this "
                     "version on)")
    if edited:
        names = ", ".join(sorted(n for n in edited if n))
        words.append(f"the plugins' code ({names} edited)" if names else "the plugins' code")
    if dropped:
        words.append("the plugins' code (the runs used code from outside mmdata this configuration does not)")
    return mine, " and ".join(words)


def _env_record(prev_env: dict[str, Any] | None, env: dict[str, Any], trained: int) -> dict[str, Any]:
    """``env.json``: this call's environment at the top level (the keys readers of env.json know) and
    ``environments``, every environment that trained runs into the folder with how many (``runs``; null for
    the one an older mmdata's env.json named without counting)."""
    same = json.loads(json.dumps(env, default=str))
    listed = _environments(prev_env)
    for e in listed:
        if {k: v for k, v in e.items() if k != "runs"} == same:
            e["runs"] = (e.get("runs") or 0) + trained
            break
    else:
        listed.append({**same, "runs": trained})
    return {**same, "environments": listed}


def provenance(rows: list[dict[str, Any]], env: dict[str, Any] | None) -> dict[str, Any]:
    """What produced the analysed ``rows`` (summary.json's ``provenance``, report.md's Provenance line): the
    environment of env.json (``env``) that trained them — mmdata version, git revision and dirty flag, code
    digest, torch / numpy, device, CPU, cores, threads per run —, the runs per code digest, how many
    environments trained them and when they finished (UTC ISO; a row without ``finished_at``, from an older
    mmdata, counts in ``runs_without_time``). Read from the rows and env.json only: a re-render elsewhere
    says the same.

    Example:
        >>> p = provenance([{"code": "ab", "finished_at": "2026-12-05T10:00:00+00:00"}, {"code": "ab"}],
        ...                {"mmdata": "0.1.0", "code": "ab", "cpu": "x"})
        >>> p["codes"], p["runs_without_time"], p["cpu"]
        ({'ab': 2}, 1, 'x')
    """
    codes = dict(Counter(str(r.get("code") or "unknown") for r in rows))
    listed = _environments(env)
    mine = [e for e in listed if e.get("code") in codes] or ([env] if isinstance(env, dict) and env else [])
    top = env if isinstance(env, dict) and env.get("code") in codes else (mine[-1] if mine else {})
    if not top and rows:  # no env.json: what the rows themselves record
        top = {"mmdata": rows[-1].get("mmdata_version"), "torch": rows[-1].get("torch"), "code": rows[-1].get("code")}
    times = sorted(str(r["finished_at"]) for r in rows if r.get("finished_at"))
    keys = ("mmdata", "git_revision", "git_dirty", "code", "torch", "numpy", "python", "device", "cpu", "cores",
            "threads_per_run")
    return {**{k: top.get(k) for k in keys}, "codes": codes, "environments": max(len(mine), 1 if top else 0),
            "first_finished_at": times[0] if times else None, "last_finished_at": times[-1] if times else None,
            "runs_without_time": len(rows) - len(times)}


def _keep_replaced_config(out: Path, config: bytes, folder: str) -> str | None:
    """Keep the folder's config.resolved.yaml, about to be replaced by ``config`` while runs.parquet keeps
    rows of it, as ``configs/<first 12 hex of its sha256>.yaml`` (atomically, once: an existing copy is
    the same bytes), so the kept rows stay described; returns that path relative to the folder (None when
    there is no previous config or it is ``config`` itself)."""
    import hashlib

    try:
        old = (out / "config.resolved.yaml").read_bytes()
    except OSError:
        return None
    if old == config:
        return None
    name = f"configs/{hashlib.sha256(old).hexdigest()[:12]}.yaml"
    if not (out / name).is_file():
        with _writing(f"{folder}/{name}"):
            (out / "configs").mkdir(exist_ok=True)
            atomic_write_bytes(out / name, old)
    return name


def _read_config_bytes(out: Path) -> bytes | None:
    """The folder's config.resolved.yaml as it is before this call replaces it (None: none)."""
    try:
        return (out / "config.resolved.yaml").read_bytes()
    except OSError:
        return None


def _set_report_aside(out: Path, config: bytes | None, folder: str, mirror: Any) -> str | None:
    """Move the folder's report files (:data:`REPORT_FILES`) into ``previous/<first 12 hex of the sha256 of its
    summary.json, else report.md>/`` with ``config`` (the config.resolved.yaml they were written with), each by
    an atomic rename, so a rerun that trains or changes the configuration never leaves the folder without its
    last verdicts (QA34). Returns that folder relative to ``out`` (None: no report there). ``mirror``: an
    object-store folder the kept files are uploaded to."""
    import hashlib

    have = [n for n in REPORT_FILES if (out / n).is_file()]
    if not have:
        return None
    first = next((n for n in ("summary.json", "report.md") if n in have), have[0])
    with _writing(f"{folder}/{first}", "keep the previous report from"):
        name = f"{PREVIOUS}/{hashlib.sha256((out / first).read_bytes()).hexdigest()[:12]}"
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        if config is not None:
            atomic_write_bytes(dest / "config.resolved.yaml", config)
        for n in have:
            os.replace(out / n, dest / n)
    if mirror is not None:
        mirror.push([f"{name}/{n}" for n in (*have, *(("config.resolved.yaml",) if config is not None else ()))])
    return name


def _prune_superseded(out: Path, config: bytes, env: dict[str, Any], device: str, threads: int, mirror: Any,
                      keep: str | None = None) -> None:
    """Remove the reports kept in ``previous/`` that the report just written supersedes: written with this very
    config.resolved.yaml, by runs of this code on this device and thread count (summary.json ``provenance``) —
    the same configuration's earlier state (a resume). Reports of another configuration, code or machine stay;
    one whose summary cannot say stays too, and ``keep`` (the one this call found its runs no longer analysed)."""
    import shutil

    try:
        kept = sorted(p for p in (out / PREVIOUS).iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for p in kept:
        if keep is not None and p.name == keep.rpartition("/")[2]:
            continue
        try:
            if (p / "config.resolved.yaml").read_bytes() != config:
                continue
            prov = json.loads((p / "summary.json").read_text(encoding="utf-8")).get("provenance") or {}
        except (OSError, ValueError, AttributeError):
            continue
        codes = prov.get("codes")
        if not isinstance(codes, dict) or set(codes) != {env["code"]} or str(prov.get("device")) != str(device) \
                or prov.get("threads_per_run") != threads:
            continue
        shutil.rmtree(p, ignore_errors=True)
        if mirror is not None:
            mirror.remove([f"{p.relative_to(out).as_posix()}/{n}" for n in (*REPORT_FILES, "config.resolved.yaml")])
    try:
        (out / PREVIOUS).rmdir()  # only when empty
    except OSError:
        pass


def _remove_leftovers(out: Path) -> list[Path]:
    """Remove the temp files a killed job left in ``out`` (SIGKILL or out of memory mid-write: nothing else ever
    removes them; QA: one stayed in a finished folder) — of the files this module and the report write, and of
    ``configs/``'s kept configurations; a live writer's, and any other file, are kept
    (:func:`mmdata.io.remove_stale_temps`). Called under the folder's lock, so no other ablation writes there."""
    removed = remove_stale_temps(out, (*RUN_FILES, *REPORT_FILES))
    try:  # configs/<12 hex>.yaml: names not known in advance, so the ones its temp files were for
        kept = {m["name"] for e in os.scandir(out / "configs")
                if (m := TEMP_NAME.fullmatch(e.name)) and re.fullmatch(r"[0-9a-f]{12}\.yaml", m["name"])}
    except OSError:
        kept = set()
    return removed + (remove_stale_temps(out / "configs", kept) if kept else [])


def _read_env(out: Path) -> dict[str, Any] | None:
    """The folder's previous ``env.json`` (None when missing or unreadable: it only explains a warning)."""
    try:
        env = json.loads((out / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return env if isinstance(env, dict) else None


def _check_dataset(ab: Ablation, storage_options: dict[str, Any] | None) -> None:
    """The bundled trainer's dataset checks (splits, classes, labels, modalities), before any run: a
    dataset every run would fail on is one error naming the recipe key (or the option that overrode it)."""
    raw = ab.dataset.get("path")
    if not ab.bundled:
        return
    from mmdata.train.config import RUN_SPLITS, check_dataset, classes_of, split_roles

    splits = {k: ab.trainer[k] for k in ("train_split", "val_split", "test_split") if k in ab.trainer}
    if raw is None:  # a named dataset is built by the runner with train / val / test: only the split options can miss
        split_roles(str(ab.dataset.get("name")), {"splits": dict.fromkeys(RUN_SPLITS)}, **splits, name=ab.key_name)
        return
    if is_remote(raw):
        from mmdata.shards.index import load_card

        try:
            card = load_card(str(raw), storage_options)
            classes_of(raw, card, roles=split_roles(raw, card, **splits, name=ab.key_name),
                       target=ab.trainer.get("target") is not None)  # a target's values are read by each run
        except MMDataError as exc:
            raise type(exc)(f"dataset.path: {exc}") from None
        return
    target = check_dataset(local_path(raw, "dataset.path"), ab.modalities, where="dataset.path",
                           modalities_key="trainer.modalities", splits=splits, name=ab.key_name,
                           target=ab.trainer.get("target"), metric=ab.metric.name,
                           recipes={arm.name: arm.recipe for arm in ab.arms})  # a list that cannot batch: before any run
    if target is not None and ab.metric.column not in KIND_COLUMNS[target.kind]:  # known now, not after every run
        raise RecipeError(f"metric.name: {ab.metric.name!r} is not scored for trainer.target {target.key!r}, a "
                          f"{target.kind} target; choose one of {[c.replace('_', '.', 1) for c in KIND_COLUMNS[target.kind]]}")


def _absent_dataset(ab: Ablation) -> str | None:
    """``dataset.path`` when it names a local folder that is not there (a folder copied from a colleague):
    a re-analysis of runs already in runs.parquet does not need it; None otherwise."""
    raw = ab.dataset.get("path")
    if raw is None or is_remote(raw):
        return None
    try:
        return None if local_path(raw, "dataset.path").exists() else str(raw)
    except MMDataError:
        return None  # the dataset checks name what is wrong with it


def _dataset_error(ab: Ablation, out: Path, storage_options: dict[str, Any] | None) -> None:
    """Raise the error the dataset checks give for a dataset a run needs and cannot read."""
    _check_dataset(ab, storage_options)
    prepare_data(ab, out, storage_options)
    raise MMDataError(f"dataset.path: {ab.dataset.get('path')}: does not exist")  # pragma: no cover — raised above


def _recipe_folder(recipe: Any) -> Path | None:
    """The local folder of an ablation recipe file (None for a mapping or a URL)."""
    if isinstance(recipe, (str, Path)) and not is_remote(str(recipe)) and Path(recipe).is_file():
        return Path(recipe).resolve().parent
    return None


def _beside_recipe(ab: Ablation, recipe: Any) -> Path | None:
    """A relative ``dataset.path`` that is not in the working directory but is a folder beside the ablation
    recipe (its recipe files are read from there: QA38 reproducibility #4); None otherwise."""
    raw, folder = ab.dataset.get("path"), _recipe_folder(recipe)
    if raw is None or folder is None or is_remote(str(raw)) or Path(raw).is_absolute() or Path(raw).exists():
        return None
    return folder / raw if (folder / raw).is_dir() else None


def _with_recipe_hint(exc: MMDataError, ab: Ablation, recipe: Any) -> MMDataError:
    """``exc`` (the dataset is not there) naming a same-named folder beside the recipe, when there is one."""
    beside = _beside_recipe(ab, recipe)
    if beside is None:
        return exc
    msg = str(exc) if str(exc).startswith("dataset.path") else f"dataset.path: {exc}"
    return type(exc)(f"{msg}. A relative dataset.path is read from the working directory ({Path.cwd()}), not from the "
                     f"recipe's folder; a folder of that name is beside the ablation recipe, {beside}: run from "
                     f"{beside.parent} or set dataset.path to {beside}")


def _elsewhere(raw: str, fingerprint: str, recipe: Any) -> str:
    """Words on a dataset folder of ``raw``'s name in the working directory or beside the recipe (a folder
    copied with its dataset, its recorded absolute path gone), and whether it holds the runs' data."""
    from mmdata.shards.index import is_dataset, load_card

    looked = local_path(raw, "dataset.path")
    folder = _recipe_folder(recipe)
    places = [Path.cwd() / looked.name, *([folder / looked.name] if folder is not None else [])]
    found = [p for p in dict.fromkeys(places) if p.resolve() != looked.resolve() and is_dataset(p)]
    for p in found:
        try:
            card = load_card(p)
        except (MMDataError, OSError, ValueError):
            continue
        theirs = (card.get("avdigits") or {}).get("content_sha256") or card.get("fingerprint", "")
        same = "holds the same data" if theirs == fingerprint else f"holds other data (fingerprint {theirs})"
        return f"; a dataset folder at {p} {same}: set dataset.path to it to check the data or train more runs"
    return ""


def _recorded_data(out: Path, fingerprint: str) -> dict[str, Any] | None:
    """What the folder's summary.json recorded of its dataset (``dataset``, ``target``), when it reported on the
    data of ``fingerprint``: a re-render without the dataset keeps it (QA38 reproducibility #2). None otherwise."""
    try:
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(s, dict) or not fingerprint or s.get("data_fingerprint") != fingerprint:
        return None
    kept = {k: s.get(k) for k in ("dataset", "target")}
    # both null (what a re-render before QA38 wrote) or of another shape (hand-edited, older schema): nothing to keep,
    # "could not be re-checked" (QA38 review 4 #3 #4: a KeyError, or a false "kept as summary.json recorded them")
    if kept["dataset"] is None and kept["target"] is None:
        return None
    return kept if _recorded_dataset_ok(kept["dataset"]) and _recorded_target_ok(kept["target"]) else None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _recorded_dataset_ok(d: Any) -> bool:
    """Whether a recorded ``dataset`` block has the shape :func:`dataset_size` writes (or is null).

    Example:
        >>> _recorded_dataset_ok({"samples": 3, "splits": {"train": 2, "test": 1}, "limit": None}), _recorded_dataset_ok("x")
        (True, False)
    """
    if d is None:
        return True
    return (isinstance(d, dict) and _is_count(d.get("samples")) and isinstance(d.get("splits"), dict)
            and all(_is_count(n) for n in d["splits"].values()) and (d.get("used") is None or isinstance(d["used"], dict)))


def _recorded_target_ok(t: Any) -> bool:
    """Whether a recorded ``target`` block has every key the report reads, of its type (or is null).

    Example:
        >>> _recorded_target_ok({"kind": "classes", "n_test": 15}), _recorded_target_ok(None)
        (False, True)
    """
    if t is None:
        return True
    if not (isinstance(t, dict) and _is_count(t.get("n_test")) and t["n_test"] > 0 and isinstance(t.get("test_split"), str)):
        return False
    kind = t.get("kind")
    if kind == "regression":
        return (all(_is_number(t.get(k)) for k in ("train_mean", "test_mean", "mean_mae"))
                and (t.get("test_sd") is None or _is_number(t["test_sd"])))
    if kind not in ("classes", "multilabel"):
        return False
    names, train, test, gone = t.get("names"), t.get("train_counts"), t.get("test_counts"), t.get("absent_from_test") or []
    if not (isinstance(names, list) and all(isinstance(c, str) for c in names) and isinstance(train, dict)
            and isinstance(test, dict) and all(_is_count(n) for n in [*train.values(), *test.values()])
            and isinstance(gone, list) and all(isinstance(c, str) and c in train for c in gone)):
        return False
    if kind == "multilabel":
        return True
    const, best = t.get("constant"), t.get("best_constant")
    return (isinstance(const, dict) and isinstance(best, str) and best in const
            and all(isinstance(c, dict) and _is_number(c.get("accuracy")) and _is_number(c.get("macro_f1")) for c in const.values()))


def _recorded_fingerprint(ab: Ablation, rows: list[dict[str, Any]], code: str) -> str:
    """The data fingerprint the folder's runs used, without the dataset: config.resolved.yaml's
    ``dataset.fingerprint``, else (a folder of an older mmdata) the one most of this code's rows name."""
    pinned = ab.dataset.get("fingerprint")
    if pinned:
        return str(pinned)
    seen = Counter(r.get("data_fingerprint") for r in rows if r.get("code") == code and r.get("data_fingerprint"))
    return str(seen.most_common(1)[0][0]) if seen else ""


@contextmanager
def _writing(shown: str, doing: str = "write") -> Iterator[None]:
    """An OSError writing the output folder (full disk, read-only folder) as one error naming the file:
    it is the user's to fix, and exit 1 means "a run failed". Only around our own writes: an OSError
    inside a run is that run's failure (:func:`mmdata.ablate.executor.run_task`)."""
    try:
        yield
    except OSError as exc:
        if doing == "create":  # no run yet: nothing to resume
            raise MMDataError(f"cannot create {shown} ({exc.strerror or exc}); free disk space, make the folder "
                              "writable or give another --out") from None
        raise MMDataError(f"cannot {doing} {shown} ({exc.strerror or exc}); free disk space or make the folder writable, "
                          "then rerun the same command to resume (the runs already in runs.parquet are kept)") from None


def load_runs(out: Path, shown: str | None = None) -> list[dict[str, Any]]:
    """The rows of ``out/runs.parquet`` (rows of older versions, without a status, count as ok).

    Raises:
        MMDataError: the file is unreadable or not a Parquet table (``shown``: the folder as the user named it).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = out / "runs.parquet"
    try:
        rows = pq.read_table(p).to_pylist() if p.exists() else []
    except (pa.ArrowException, OSError) as exc:  # ArrowInvalid: truncated or not Parquet; OSError: unreadable
        where = f"{(shown or str(out)).rstrip('/')}/runs.parquet"
        raise MMDataError(f"{where}: not a readable runs table ({exc}); move it away to start this ablation "
                          "over in this folder (its runs are then not reused), or restore it from a copy") from None
    where = f"{(shown or str(out)).rstrip('/')}/runs.parquet"
    missing = [c for c in ("arm", "seed", "config_hash") if rows and c not in rows[0]]
    if missing:  # fuzz QA: a dropped column crashed the resume with KeyError: 'arm' (exit 1, a traceback)
        raise MMDataError(f"{where}: no column {', '.join(map(repr, missing))} (it has {sorted(rows[0])}): not a runs table "
                          "mmdata wrote; move it away to start this ablation over in this folder, or restore it from a copy")
    for i, r in enumerate(rows):
        if not isinstance(r["arm"], str) or not isinstance(r["config_hash"], str) or isinstance(r["seed"], bool) \
                or not isinstance(r["seed"], int) or r["seed"] < 0:
            raise MMDataError(f"{where}: row {i} has arm {r['arm']!r}, seed {r['seed']!r}, config_hash "
                              f"{r['config_hash']!r:.20}: expected a name, an integer >= 0 and a hash; move the file away "
                              "to start this ablation over in this folder, or restore it from a copy")
        r.setdefault("status", "ok")
        if r["status"] is None:
            r["status"] = "ok"
    return rows


def one_row_per_run(rows: list[dict[str, Any]], where: str) -> tuple[list[dict[str, Any]], str | None]:
    """``rows`` with one row per (arm, seed) — the last, the one a resumed run would replace — and a warning
    when the table held more (fuzz QA: a duplicated row counted twice in the report's finished runs and the
    design's share of the fixed runs, silently)."""
    last = {(r["arm"], int(r["seed"])): i for i, r in enumerate(rows)}
    if len(last) == len(rows):
        return rows, None
    kept = sorted(last.values())
    first = next(r for i, r in enumerate(rows) if i not in set(kept))
    extra = len(rows) - len(kept)
    return [rows[i] for i in kept], (f"{where} holds {plural(extra, 'duplicate row')} of a run (first: arm "
                                     f"{first['arm']!r}, seed {first['seed']}): the last row of each run is analysed")


def save_runs(out: Path, rows: list[dict[str, Any]], shown: str | None = None, columns: Sequence[str] = ()) -> None:
    """Write ``out/runs.parquet`` atomically; a failed write is an MMDataError naming it. ``columns``: written
    whatever the rows hold (null where a row has none; :func:`run_columns`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: (r["arm"], r["seed"]))
    # the columns a reader looks up are there when every run succeeded too (null then: QA, df.error raised), and
    # the metrics when every run failed (QA34)
    cols = sorted({k for r in rows for k in r} | set(ALWAYS_COLUMNS) | set(columns))
    table = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        table[c] = pa.array(values, type=_column_type(c, values))
    buf = io.BytesIO()
    pq.write_table(pa.table(table), buf)
    with _writing(f"{(shown or str(out)).rstrip('/')}/runs.parquet"):
        atomic_write_bytes(out / "runs.parquet", buf.getvalue())


def _column_type(name: str, values: list[Any]) -> Any:
    """The Arrow type of a runs.parquet column (see :data:`TEXT_COLUMNS`); None: Arrow infers it (a trainer's
    own column of another kind)."""
    import pyarrow as pa

    if name in TEXT_COLUMNS or name.endswith("_curve"):
        return pa.string()
    if name in INT_COLUMNS:
        return pa.int64()
    if name in BOOL_COLUMNS:
        return pa.bool_()
    given = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given):  # also a column of only nulls
        return pa.float64()
    if all(isinstance(v, str) for v in given):
        return pa.string()
    return None


def _git_dirty() -> bool | None:
    """:func:`mmdata.recipes_path.git_dirty` (env.json's ``git_dirty``)."""
    from mmdata.recipes_path import git_dirty

    return git_dirty()


#: files of one plugin package read for its digest at most (a package folder of a whole project: the first ones)
MAX_PLUGIN_FILES = 2000


def _plugin_root(module: str) -> tuple[str, Path | None]:
    """The code a plugin module belongs to, named and located: its top-level package's folder (``myproj`` for
    ``myproj.ops``: the helpers, model and losses the op or trainer imports from its package too), or the
    module's file alone when the top level is a plain module (never the folder it sits in: site-packages).
    Below a namespace package (no ``__init__.py``), its first regular package. None: no file (built in)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            f = Path(file).resolve()
            return name, f.parent if f.name == "__init__.py" else f
    return module, None


def _root_digest(root: Path | None) -> str:
    """A digest of a plugin's code (:func:`_plugin_root`): the sorted paths, relative to the folder holding it,
    and contents of its ``.py`` files (the first :data:`MAX_PLUGIN_FILES`) — no times or absolute paths, so
    the same code has the same digest in any checkout. mmdata's own folder is never read (it is ``code``)."""
    import hashlib

    import mmdata

    h = hashlib.sha256()
    own = Path(mmdata.__file__).resolve().parent
    if root is None or root == own or root in own.parents:
        h.update(b"(no file)\n" if root is None else b"(mmdata's folder)\n")
        return h.hexdigest()
    if root.is_dir():
        files = sorted((f.relative_to(root.parent).as_posix(), f) for f in root.rglob("*.py"))[:MAX_PLUGIN_FILES]
    else:
        files = [(root.name, root)]
    for rel, one in files:
        try:
            h.update(f"{rel}\n".encode() + one.read_bytes())
        except OSError:
            h.update(f"{rel}: unreadable\n".encode())
    return h.hexdigest()


def plugin_digests(ab: Ablation, named: Sequence[str] = ()) -> dict[str, str]:
    """A digest per package of the code from outside mmdata the runs use (env.json ``plugin_modules``): the
    top-level packages (:func:`_plugin_root`) of the modules of the arms' plugin ops and the bundled trainer's
    plugin fusion (:meth:`Ablation.used_code`), of the trainer entry, and of the plugin modules the recipe or
    the caller names (``named``: ``imports:``, ``--plugin``). Installed entry points whose ops no arm uses
    are not part of it."""
    mods = [s.partition(":")[0] for s in named]
    mods += [cls.__module__ or "" for cls in ab.used_code().values()]
    if ab.entry:
        mods.append(ab.entry.partition(":")[0])
    roots = dict(_plugin_root(m) for m in sorted({m for m in mods if m and m != "mmdata" and not m.startswith("mmdata.")}))
    return {name: _root_digest(root) for name, root in sorted(roots.items())}


def plugin_code(ab: Ablation, named: Sequence[str] = ()) -> str | None:
    """A digest of the code from outside mmdata the runs use (QA31: a resume after a plugin op was edited
    mixed both versions in one paired design, silently): of every package :func:`plugin_digests` names —
    each one's ``.py`` files, so an edit of a helper module an op's kernel or the trainer imports counts too.
    None when there are none: an ablation of mmdata's code alone keeps its run hashes (:func:`run_code`)."""
    return _combined(plugin_digests(ab, named))


def _combined(digests: dict[str, str]) -> str | None:
    """:func:`plugin_code` of the packages' digests (:func:`plugin_digests`)."""
    import hashlib

    if not digests:
        return None
    return hashlib.sha256("".join(f"package {n} {d}\n" for n, d in digests.items()).encode()).hexdigest()


def provided_by(ab: Ablation) -> tuple[dict[str, Any], ...]:
    """Where the arms' plugin ops and the bundled trainer's plugin fusion come from (config.resolved.yaml
    ``plugins:``, :attr:`Ablation.provided`): ``{op: section.name | fusion: name, module, distribution,
    version}`` each (distribution and version None for a module no installed package provides)."""
    out = []
    for label, cls in ab.used_code().items():
        d = describe([cls.__module__])[0]
        what = {"op": f"{cls.section}.{cls.name}"} if label.startswith("op ") else {"fusion": label.split("'")[1]}
        out.append({**what, "module": cls.__module__, "distribution": d["distribution"], "version": d["version"]})
    return tuple(out)


def run_code(code: str, plugins: str | None) -> str:
    """A run's ``code`` (its identity, :meth:`Ablation.run_hash`, and runs.parquet's ``code``): mmdata's
    (:func:`mmdata.shards.writer.code_identity`) alone, or with the plugins' (:func:`plugin_code`) folded in.

    Example:
        >>> run_code("ab" * 32, None) == "ab" * 32
        True
    """
    if plugins is None:
        return code
    import hashlib

    return hashlib.sha256(f"{code}\nplugins {plugins}".encode()).hexdigest()


def environment(threads: int = 1, device: str = "cpu", plugins: Sequence[str] = (),
                code: str | None = None) -> dict[str, Any]:
    """The machine and software the runs used (``env.json``); ``plugins``: the plugin specs every run
    loaded, with the file and installed version of each (:func:`mmdata.plugins.describe`); ``code``: the
    digest of mmdata's code and libraries (None: :func:`mmdata.shards.writer.code_identity`). ``git_dirty``
    says whether the package's tracked files differ from ``git_revision`` (None: not a git checkout)."""
    import numpy
    import torch

    from mmdata.recipes_path import git_revision
    from mmdata.versions import software

    rev = git_revision()  # mmdata's own checkout only: never the commit of a repository mmdata is installed in
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:  # closed at once (a generator over open() kept it open)
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import mmdata
    from mmdata.shards import writer

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "mmdata": mmdata.__version__, "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "threads_per_run": threads, "device": device, "git_revision": rev, "git_dirty": _git_dirty() if rev else None,
            "code": code or writer.code_identity(), "libraries": software(),
            "deterministic": "CPU runs are bitwise deterministic per seed and thread count",
            **({"plugins": describe(plugins)} if plugins else {})}


@contextmanager
def _stop_on_signals(received: list[int]) -> Iterator[None]:
    """SIGTERM raises :class:`Interrupted` in the main thread like Ctrl-C does (then the pool stops), and
    is appended to ``received``: Ray's blocking calls (``ray.wait``, ``ray.get``) run the handler
    themselves and replace what it raised by a plain KeyboardInterrupt, so the exception alone cannot
    say which signal stopped the ablation (see :func:`_stopped_by`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        watch_for_a_dropped_exception(frame, lambda: Interrupted(signum))  # C code may drop it
        raise Interrupted(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _stopped_by(exc: KeyboardInterrupt, received: list[int]) -> int:
    """The signal that stopped the ablation: the one :func:`_stop_on_signals` saw first, else the one
    ``exc`` names, else SIGINT (Python's own Ctrl-C handler raises a plain KeyboardInterrupt).

    Example:
        >>> int(_stopped_by(KeyboardInterrupt(), [signal.SIGTERM])), int(_stopped_by(KeyboardInterrupt(), []))
        (15, 2)
    """
    if received:
        return received[0]
    return exc.signum if isinstance(exc, Interrupted) else signal.SIGINT


def _check_config_size(config: bytes) -> None:
    """The resolved config must load back (``mmdata ablate DIR/config.resolved.yaml`` re-runs it; a resume
    reads it): within the recipe reader's byte cap, checked before anything is written."""
    from mmdata import safe_yaml
    from mmdata.errors import RecipeError

    if len(config) > safe_yaml.MAX_BYTES:
        raise RecipeError(f"design: config.resolved.yaml, which spells every arm's recipe out, would have {len(config)} "
                          f"bytes, over the {safe_yaml.MAX_BYTES // 2**20} MiB a recipe file may have to load back; "
                          "fewer arms or shorter recipes")


def _check_runs_can_start(entry: str | None, device: str, gpus: int | None, executor: Any, own_trainer: bool) -> None:
    """What would fail every run, one by one, checked before anything is written: the trainer entry
    imports, the bundled trainer knows the device, and a GPU is there for ``cuda`` on this machine.
    (On Ray the cluster's nodes, not this machine, import the trainer and hold the GPUs.)"""
    local = executor is None or executor == "local"
    if gpus is not None and not device.startswith("cuda"):  # QA: --gpus 2 alone ran everything on the CPU, silently
        raise MMDataError(f"--gpus (gpus=) {gpus}: GPUs are used with --device cuda (trainer.device: cuda), and the "
                          f"runs' device is {device!r}; add --device cuda, or leave --gpus out")
    if local and not own_trainer:
        resolve_entry(entry)
    if entry in (None, DEFAULT_ENTRY) and not own_trainer:
        import torch

        try:
            torch.device(device)
        except RuntimeError:
            raise MMDataError(f"--device (device=) {device!r} (trainer.device): expected cpu, cuda or cuda:N") from None
    if local and not own_trainer and device.startswith("cuda"):  # worker processes (an own trainer runs here)
        cuda_ids(device, gpus)


def _runs_here(executor: Any, workers: int | None, device: str, inline: bool) -> bool:
    """Whether the runs happen in this process (the executor the run loop picks: :class:`InlineExecutor`)."""
    local = executor in (None, "local")  # Ray ships even a closure to its workers
    return isinstance(executor, InlineExecutor) or (local and (inline or (workers == 1 and device == "cpu")))


def _check_code(ab: Ablation, here: bool, executor: Any, inline_fn: Callable[..., Any] | None,
                trainer_kw: dict[str, Any]) -> None:
    """Before any run: the plugins every run loads (``ab.imports`` gains the importable modules that
    registered ops or fusions in this process: ``import myops`` in a script works with any number of
    workers), refusing an op or fusion the arms use that a worker process could not import; then the
    trainer's signature against what every run passes."""
    # runs in this process see every op and fusion registered here (one in __main__ too): nothing to refuse
    specs = worker_plugins({} if here else ab.used_code(), ab.plugins)
    ab.imports = tuple(s for s in specs if s not in ab.entry_points)
    fn: Callable[..., Any] | None = inline_fn
    if fn is None:
        try:
            fn = resolve_entry(ab.entry)
        except MMDataError:
            if executor != "ray":
                raise
            fn = None  # only the cluster can import it: its runs say what is wrong
    if fn is not None:
        check_signature(fn, ab.entry or (DEFAULT_ENTRY if inline_fn is None else _name_of(inline_fn)), trainer_kw)


def _name_of(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _entry_of(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` when ``fn`` can be imported by that name (so worker processes can run it)."""
    mod, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not mod or "<" in name or mod == "__main__":
        return None
    try:
        obj: Any = importlib.import_module(mod)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{mod}:{name}" if obj is fn else None


@keyword_hints("mmdata.ablate.run", aliases={"jobs": "workers", "j": "workers", "num_workers": "workers"})
def run(recipe: str | Path | dict[str, Any], out: str | Path, *, seeds: int | None = None, workers: int | None = None,
        adaptive: bool | None = None, trainer: str | None = None, train_fn: Callable[..., dict[str, Any]] | None = None,
        device: str | None = None, gpus: int | None = None, threads: int | None = None, progress: bool = True,
        max_runs: int | None = None, executor: Executor | str | None = None, address: str | None = None,
        plots: bool = True, alignment: bool | str | None = None, robustness: bool | None = None,
        storage_options: dict[str, Any] | None = None, on_warning: Callable[[str], None] | None = None,
        run_timeout: float | None = None, plugins: Sequence[str] = (), train_split: str | Sequence[str] | None = None,
        val_split: str | None = None, test_split: str | None = None, trust_code: bool | None = None) -> dict[str, Any]:
    """Run (or resume) an ablation and write runs.parquet, summary.json, report.md and plots to ``out``.

    Args:
        recipe: ablation recipe (path, fsspec URL or dict; see :mod:`mmdata.ablate.design`).
        out: output folder (rerun with the same folder to resume): a path, or an object-store URL
            (``s3://bucket/abl``: worked on in a local copy, ``runs.parquet`` uploaded on every save,
            the report at the end; :mod:`mmdata.ablate.remote_out`).
        seeds: override the recipe's seeds (the maximum per arm when adaptive).
        workers: parallel runs (default: one per GPU with ``device="cuda"``, else the CPU count).
        adaptive: group-sequential design with early stopping (``seeds`` is then the maximum per arm).
        trainer: the training function as ``"package.module:function"`` (overrides ``trainer.entry``).
        train_fn: a training callable instead (module-level functions run in worker processes; others
            run in this process, one at a time).
        device: ``cpu`` or ``cuda`` (each run on one GPU; ``gpus`` of the visible ones, round-robin).
        gpus: with ``device="cuda"``: how many of the visible GPUs the runs use (the CLI's ``--gpus``;
            None: all of them). Refused with another device.
        threads: torch threads per run (part of each run's identity). None: on a rerun into the folder of an
            earlier ablation, the threads its runs were trained with (env.json ``threads_per_run``), so
            ``mmdata ablate DIR/config.resolved.yaml --out DIR`` re-analyses them; else 1.
        progress: show a progress bar of the runs on stderr (plain lines off a terminal; none with
            ``MMDATA_PROGRESS=off``).
        max_runs: stop after this many new runs (the rest stays to resume; for budgets and tests).
        executor: where the runs happen: ``"local"`` (default: worker processes on this machine),
            ``"ray"`` (one Ray task per run on a cluster; needs ``mmdata[ray]``; see docs/scale.md),
            or an :class:`~mmdata.ablate.executor.Executor` instance.
        address: with ``executor="ray"``: the cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://..."``);
            None: ``RAY_ADDRESS`` or a local Ray instance.
        plots: draw the report's PNGs (off: tables only; for simulations and quick checks).
        alignment: measure alignment Δ per arm (overrides the recipe's ``alignment:``): ``True`` or
            ``"auto"`` pre-trains a reference contrastive model into ``out/alignment``; a folder names
            one (``contrastive.pt``). See :mod:`mmdata.ablate.align`.
        robustness: the bundled trainer's robustness evaluation (overrides ``trainer.eval_robustness``;
            ``False`` is ``--no-robustness``).
        storage_options: with a ``dataset.path`` or ``out`` URL: its fsspec filesystem's options
            (``{"endpoint_url": ...}`` for s3fs), handed to every run to stage the dataset on its node;
            never written to ``out`` and not part of a run's identity. None: the protocol's defaults
            (environment variables, config files, instance roles — the CLI's only source).
        on_warning: called with each warning — before the runs, what the design cannot do
            (:func:`mmdata.ablate.design.design_warnings`) and runs of another configuration in ``out``;
            after them, what the analysis found (a smallest effect of interest of 0). None:
            ``warnings.warn(msg, AblationWarning)``. All are also in ``summary["warnings"]`` and the report.
        run_timeout: a time limit per run in seconds: a run past it is a failed run (``RunTimeout``),
            retried by a rerun like any failure (see :mod:`mmdata.ablate.executor`). None: no limit.
        plugins: modules that register your own ops or fusions (``["mypkg.myops"]``; the CLI's
            ``--plugin``), added to the recipe's ``imports:`` (:mod:`mmdata.plugins`). Every process
            running the arms imports them — and installed ``mmdata.plugins`` entry points, and the modules
            of ops and fusions already registered here (``import myops`` before ``run``) — before its
            first run; all are recorded in config.resolved.yaml (``imports:``) and env.json. An op or
            fusion the arms use that a worker cannot import (defined in ``__main__``: a script or a
            notebook) is refused before any run unless the runs happen in this process.
        train_split, val_split, test_split: which of the dataset's splits play train, val and test
            (override the recipe's ``trainer.train_split`` / ``val_split`` / ``test_split``; None: the
            recipe's), as :func:`mmdata.train.train` takes them — k-fold cross-validation over folds
            sharded as splits runs one recipe once per fold: ``val_split="4", test_split="5"`` trains on
            the other folds. Checked against the dataset before any run, with ``mmdata train``'s messages
            (``test_split (--test-split): DATA has no split '9'; ...``); recorded in config.resolved.yaml's
            trainer section and each run's identity, so a rerun into ``out`` with other splits treats the
            folder's runs as another configuration (kept, not analysed, a warning naming the keys).
        trust_code: consent to the code the recipe names (its ``imports:`` and ``trainer.entry``, imported
            and called here and in the workers; the CLI's ``--trust-code``): without it such a recipe is
            refused before anything is imported. None: the :func:`mmdata.plugins.trust_code` block around
            the call decides. Code you name yourself (``plugins=``, ``trainer=``, ``train_fn=``) needs none.

    Returns:
        The summary (also ``out/summary.json``); ``summary["failures"]`` lists failed runs.

    Raises:
        Interrupted: on Ctrl-C or SIGTERM, after stopping the workers (finished runs are saved).
        MMDataError: a bad recipe, trainer option or dataset, or an ``out`` this ablation must not write
            into (see the module docstring) — before any run.

    Example:
        >>> s = run("recipes/ablations/avdigits_loo.yaml", "runs/loo", adaptive=True, seeds=20)  # doctest: +SKIP
    """
    from mmdata.ablate.report import write_report

    if executor not in (None, "local", "ray") and isinstance(executor, str):
        raise MMDataError(f"executor {executor!r}: expected 'local' or 'ray'")
    if address is not None and executor != "ray":
        raise MMDataError(f"address {address!r} is for executor='ray' (got executor={executor!r})")
    if run_timeout is not None and (isinstance(run_timeout, bool) or not isinstance(run_timeout, (int, float))
                                    or not math.isfinite(run_timeout) or run_timeout <= 0):
        raise MMDataError(f"--run-timeout (run_timeout=) {run_timeout!r}: expected a number of seconds > 0")
    warn = on_warning or (lambda msg: warnings.warn(msg, AblationWarning, stacklevel=4))  # past keyword_hints' wrapper
    shown = str(out)
    mirror = None
    if is_remote(out):  # an object store: work in a local copy, the URL is the folder of record
        from mmdata.ablate.remote_out import RemoteRunDir

        mirror = RemoteRunDir(str(out), storage_options)
        out = mirror.pull()
    out = local_path(out, "--out")
    inline_fn = None
    if train_fn is not None:
        trainer = trainer or _entry_of(train_fn)
        if trainer is None:
            inline_fn = train_fn  # a closure or partial: only this process can call it
    # plugins (the recipe's imports:, plugins=, entry points) and the trainer entry are imported first:
    # the arms and trainer.fusion may name what they register (on Ray the cluster imports the entry)
    ab = load_ablation(recipe, seeds=seeds, adaptive=adaptive, entry=trainer, alignment=alignment,
                       storage_options=storage_options, own_trainer=inline_fn is not None, plugins=plugins,
                       import_entry=None if executor == "ray" else True, train_split=train_split,
                       val_split=val_split, test_split=test_split, trust_code=trust_code)
    if robustness is not None:
        if ab.entry is not None:
            raise MMDataError(f"--no-robustness / robustness=: the robustness evaluation belongs to the bundled trainer, "
                              f"not {ab.entry!r}; pass your trainer's own switch under trainer: in the recipe")
        ab.trainer["eval_robustness"] = bool(robustness)
    if ab.alignment:
        from mmdata.ablate.align import check_model

        check_model(ab)
    device = device or str(ab.trainer.get("device") or "cpu")
    trainer_kw = {k: v for k, v in ab.trainer.items() if k != "device"}
    _check_runs_can_start(ab.entry, device, gpus, executor, inline_fn is not None)
    named = ab.imports  # the recipe's imports: and plugins= (_check_code adds the modules found registered here)
    _check_code(ab, _runs_here(executor, workers, device, inline_fn is not None), executor, inline_fn, trainer_kw)
    ab.provided = provided_by(ab)  # recorded in config.resolved.yaml: a rerun without the plugin names it
    absent = _absent_dataset(ab)
    if absent is None:
        try:
            _check_dataset(ab, storage_options)
        except MMDataError as exc:
            raise _with_recipe_hint(exc, ab, recipe) from None
        nothing = inert_design(ab)  # every arm would train like the baseline: said before a run, not after them all
        if nothing:
            raise RecipeError(nothing)
    prev = check_out(out, ab, shown)
    if threads is None:
        threads = _folder_threads(out) if prev is not None else 1
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise MMDataError(f"--threads (threads=) {threads!r}: expected an integer >= 1")
    if absent is not None and prev is None:  # no earlier runs to analyse: the dataset is needed
        try:
            _dataset_error(ab, out, storage_options)
        except MMDataError as exc:
            raise _with_recipe_hint(exc, ab, recipe) from None
    if prev is None and mirror is None:
        # a first run into a folder that cannot be made is said before the design's warnings, as every command
        # says it (it was found by the first write, with advice to resume runs that did not exist)
        from mmdata.train.outputs import check_out as check_writable

        check_writable(out, "--out")
    said = design_warnings(ab)
    for w in said:
        warn(w)
    config = yaml.safe_dump(ab.resolved(), sort_keys=False).encode()
    _check_config_size(config)
    folder = shown.rstrip("/")
    opened = _ClosedOnError(None)
    if executor == "ray":  # connected before anything is written: a cluster that is not there leaves no folder
        from mmdata.ablate.ray_executor import RayExecutor

        executor = opened.executor = RayExecutor(address, num_cpus=threads, num_gpus=1 if device.startswith("cuda") else 0,
                                                 max_concurrent=workers, train_fn=inline_fn)
    with _writing(f"--out {shown}", "create"), opened:
        out.mkdir(parents=True, exist_ok=True)  # after the recipe, dataset and folder are checked: an error leaves no folder
    # one job at a time per folder: two into one folder rewrote runs.parquet from their own memory
    # and erased each other's runs; the kernel releases the lock when this process dies
    with opened, JobLock(out, "mmdata ablate"):  # a lock that cannot be taken closes the executor too
        from mmdata.shards import writer

        _remove_leftovers(out)

        # what trains the runs, part of their identity: a resume after a `git pull` or a torch upgrade trains
        # again rather than analysing two versions' runs as one paired design. Read from the files once per job,
        # not the process's cached digest: worker processes import the code on disk now (a notebook's cache
        # would name the code of its first ablation)
        fresh = getattr(writer.code_identity, "__wrapped__", writer.code_identity)
        mine = fresh()
        packages = plugin_digests(ab, named)
        theirs = _combined(packages)  # a plugin op, fusion or trainer edited since: its runs train again
        env = environment(threads, device, ab.plugins, run_code(mine, theirs))
        if theirs is not None:  # what went into `code`, apart: the stale-runs warning says which one changed
            env.update(plugin_code=theirs, plugin_modules=packages, mmdata_code=mine)
        stamp = {"code": env["code"], "mmdata_version": env["mmdata"], "torch": env["torch"]}
        every = load_runs(out, shown)
        recorded = None  # what summary.json recorded of the data, kept by a re-render without it
        if absent is None:
            data, fingerprint = prepare_data(ab, out, storage_options)
            pinned = ab.dataset.get("fingerprint")
            if pinned is not None and pinned != fingerprint:
                said.append(f"{'dataset.path' if 'path' in ab.dataset else 'dataset'}: its content (fingerprint "
                            f"{fingerprint}) differs from the {pinned} this configuration ran on (dataset.fingerprint): "
                            "the runs are on other data")
                warn(said[-1])
        else:  # re-analysis from the folder alone: the runs' data fingerprint, checked below that none must train
            data, fingerprint = "", _recorded_fingerprint(ab, every, env["code"])
        ab.dataset = {**ab.dataset, "fingerprint": fingerprint}  # config.resolved.yaml pins the data the runs used
        splits = split_columns(ab, data, storage_options)
        columns = run_columns(ab)
        config = yaml.safe_dump(ab.resolved(), sort_keys=False).encode()
        remote = {"storage_options": storage_options} if is_remote(data) and storage_options else {}
        design = ab.design()
        hashes = {(a.name, s): ab.run_hash(a, s, fingerprint, device, threads, env["code"]) for a in ab.arms
                  for s in range(ab.seeds)}
        by_name = {a.name: a for a in ab.arms}
        every, renamed = _reuse_renamed(every, hashes)
        rows, twice = one_row_per_run([r for r in every if hashes.get((r["arm"], int(r["seed"]))) == r["config_hash"]],
                                      f"{folder}/runs.parquet")
        if twice:
            said.append(twice)
            warn(twice)
        stale = [r for r in every if hashes.get((r["arm"], int(r["seed"]))) != r["config_hash"]]  # kept, not analysed
        beyond = [r for r in stale if int(r["seed"]) >= ab.seeds and r["arm"] in by_name
                  and r["config_hash"] == ab.run_hash(by_name[r["arm"]], int(r["seed"]), fingerprint, device, threads,
                                                      env["code"])]
        if ab.bundled:  # its correct_on_test is the test accuracy bit by bit; before anything is analysed or written
            check_recorded_accuracy(rows, f"{folder}/runs.parquet")
        # the plan the folder reported is the one fixed in advance, whatever config.resolved.yaml says now
        fixed_plan, edited = _as_reported(prev, _reported_plan(out))
        try:
            pinned = check_design_switch(fixed_plan, ab, rows + beyond, shown, _reported_delta(out))  # before the config is overwritten
        except MMDataError as exc:
            if not edited:
                raise
            raise MMDataError(f"{exc} (The folder's config.resolved.yaml was edited after the report: it gives "
                              f"{'; '.join(edited)}; the reported values are the ones fixed in advance.)") from None
        if pinned:  # the recipe's δ as shown became the fixed one in full: config.resolved.yaml records that one
            config = yaml.safe_dump(ab.resolved(), sort_keys=False).encode()
            said.append(pinned)
            warn(pinned)
        col = ab.metric.column
        failed_now: dict[str, set[int]] = {}

        def state_of() -> tuple[Any, dict[str, list[int]]]:
            values: dict[str, dict[int, float]] = {}
            tried: dict[str, set[int]] = {a.name: set(failed_now.get(a.name, set())) for a in ab.arms}
            for r in rows:
                if r["status"] == "ok" and r.get(col) is not None:  # a row without the primary metric is run again
                    values.setdefault(r["arm"], {})[int(r["seed"])] = float(r[col])
                    tried[r["arm"]].add(int(r["seed"]))
            return next_runs(design, ab.baseline.name, [a.name for a in ab.arms[1:]], values, tried)

        if absent is not None:
            from mmdata.ablate.align import ALIGN_COLUMN

            if state_of()[1] or (ab.alignment and any(r["status"] == "ok" and r.get(ALIGN_COLUMN) is None for r in rows)):
                try:
                    _dataset_error(ab, out, storage_options)  # a run must train (or be measured): the dataset's error stands
                except MMDataError as exc:
                    raise _with_recipe_hint(exc, ab, recipe) from None
            recorded = _recorded_data(out, fingerprint)
            looked = local_path(absent, "dataset.path")
            where = str(looked) if looked.is_absolute() else f"{absent} (relative to the working directory {Path.cwd()})"
            said.append(f"dataset.path: {where} is not there; every run this configuration needs is in "
                        f"{folder}/runs.parquet (data fingerprint {fingerprint}), so it is analysed from those rows "
                        "(the dataset was not read; "
                        + ("its size and target are kept as the folder's summary.json recorded them" if recorded else
                           f"its size and target could not be re-checked ({folder}/summary.json holds no dataset / "
                           "target block of this data in the shape the report reads): the report leaves them out, and "
                           "the warnings computed from them")
                        + f"){_elsewhere(absent, fingerprint, recipe)}")
            warn(said[-1])
        prev_env = _read_env(out)
        old_config = _read_config_bytes(out)
        aside = None
        if renamed:
            said.append("; ".join(f"arm renamed {was} -> {now}: its {plural(n, 'run')} in {folder}/runs.parquet "
                                  "have this configuration's identity (same config_hash: recipe, trainer, data, seed, code) "
                                  "and are analysed under the new name, not trained again"
                                  for (was, now), n in sorted(renamed.items())))
            warn(said[-1])
        if renamed or any(r.get("analysed") is not False for r in stale):
            # rows the folder's last report may have analysed are no longer analysed (another recipe, data, code,
            # device): its verdicts are kept aside before anything replaces them (QA34: an upgrade's rerun lost them)
            aside = _set_report_aside(out, old_config, folder, mirror)
            if aside:
                said.append(f"the previous report (summary.json, report.md and its figures) analysed runs this "
                            f"configuration does not: kept in {folder}/{aside}/ with the config.resolved.yaml it was "
                            "written with (its runs stay in runs.parquet, analysed: false)")
                warn(said[-1])
        if stale:
            kept = _keep_replaced_config(out, config, folder)
            said.append(f"{len(stale)} run{'s' * (len(stale) > 1)} in {folder}/runs.parquet come from another "
                        f"configuration{_changed(prev, ab, stale, fingerprint, prev_env, device, threads, env)}; "
                        "they are kept there but not analysed (a new --out keeps ablations apart)"
                        + (f"; the configuration this run replaces is kept as {folder}/{kept}" if kept else "") + ".")
            warn(said[-1])
        with _writing(f"{folder}/config.resolved.yaml"):
            atomic_write_bytes(out / "config.resolved.yaml", config)
        trained = {"runs": 0, "recorded": False}

        def record_env() -> None:
            # env.json describes the runs: written once this call trains (a re-render keeps the colleague's),
            # each environment kept with the number of runs it trained here
            with _writing(f"{folder}/env.json"):
                atomic_write_bytes(out / "env.json", (json.dumps(_env_record(prev_env, env, trained["runs"]), indent=2)
                                                      + "\n").encode())
            trained["recorded"] = True

        def task(name: str, s: int) -> dict[str, Any]:
            a = by_name[name]
            return {"arm": name, "seed": s, "hash": hashes[(name, s)], "fingerprint": fingerprint, "data": data,
                    "recipe": a.recipe, "label_noise": a.label_noise, "entry": ab.entry, "trainer": trainer_kw,
                    "device": device, "threads": threads, "primary": col, "timeout_s": run_timeout, **remote,
                    **({"plugins": ab.plugins} if ab.plugins else {})}

        prog = None
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn

            from mmdata.progress import make_progress

            # on stderr: stdout is the result (`mmdata ablate ... > summary.txt` kept the bar in the file); plain
            # lines off a terminal (a CI log saw nothing for 40 minutes), none with MMDATA_PROGRESS=off
            prog = make_progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn())
        if prog is not None:
            prog.start()
            prog.add_task(f"ablation runs ({sum(r['status'] == 'ok' for r in rows)} already done)", total=None)

        saved: dict[str, Any] = {"at": 0.0, "dirty": bool(twice or renamed), "timer": None, "cost": 0.0}  # extra or renamed rows: saved without
        lock = threading.RLock()

        def save(force: bool = False) -> None:
            # every finished run is on disk within save_interval(): sub-second runs (synthetic trainers,
            # simulations) do not rewrite the file each time, and a timer saves the last of a burst even
            # when the next run takes hours (a SIGKILL then lost every run finished since the last save)
            with lock:
                if not saved["dirty"]:
                    return
                wait = save_interval(saved["cost"]) - (time.monotonic() - saved["at"])
                if not force and wait > 0:
                    if saved["timer"] is None:
                        saved["timer"] = threading.Timer(wait, save_later)
                        saved["timer"].daemon = True
                        saved["timer"].start()
                    return
                if saved["timer"] is not None:
                    saved["timer"].cancel()
                    saved["timer"] = None
                began = time.monotonic()
                marked = [{**r, "analysed": False} for r in stale]
                marked += [{**r, **{k: v for k, v in splits.items() if r.get(k) is None}, "analysed": True} for r in rows]
                save_runs(out, marked, shown, columns)
                if mirror is not None:
                    mirror.push(["runs.parquet"])
                saved.update(at=time.monotonic(), dirty=False, cost=time.monotonic() - began)

        def touched(_row: dict[str, Any]) -> None:
            # a row given its alignment columns: marked under the lock, or a timer's save under way could
            # clear the mark after it and the final save would skip the last rows' columns (seen once)
            with lock:
                saved["dirty"] = True
            save()

        def save_later() -> None:
            try:
                save(force=True)
            except MMDataError:
                pass  # still dirty: the main thread's next save raises it (here it would be a thread's traceback)

        unclaim = {"done": False}

        def unclaim_report() -> None:
            # New runs make summary.json and report.md stale (an interrupted resume with more seeds left
            # them saying "complete" with the old verdicts next to the new config and runs). They are
            # moved out of the folder when new work starts, rather than rewritten on a stop: that holds for
            # SIGKILL and crashes too, and a Ctrl-C stays prompt (no statistics or plots drawn while stopping).
            # Moved into previous/, not deleted: the verdicts stay readable until this configuration's own
            # report replaces them (then removed: _prune_superseded), or for good when it never does (QA34).
            if not unclaim["done"]:
                _set_report_aside(out, old_config, folder, mirror)
                if mirror is not None:
                    mirror.remove(list(REPORT_FILES))
                unclaim["done"] = True

        # where each (arm, seed) row is: a finished run replaces its row in place (rebuilding the list per
        # run was O(runs) each, 33 s of bookkeeping at 20,000 runs of a fast trainer)
        slot = {(r["arm"], int(r["seed"])): i for i, r in enumerate(rows)}

        def finished(row: dict[str, Any]) -> None:
            row = {**row, **stamp, **splits, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            with lock:
                trained["runs"] += 1
                at = slot.setdefault((row["arm"], int(row["seed"])), len(rows))
                if at == len(rows):
                    rows.append(row)
                else:
                    rows[at] = row
                saved["dirty"] = True
            if row["status"] != "ok":
                failed_now.setdefault(row["arm"], set()).add(int(row["seed"]))
            save()
            if prog is not None:
                prog.update(prog.task_ids[0], advance=1)

        if executor is None or executor == "local":
            if inline_fn is not None or (workers == 1 and device == "cpu"):
                executor = InlineExecutor(inline_fn)
            else:
                executor = ProcessExecutor(workers, device=device, gpus=gpus, threads=threads)
        budget = max_runs
        opened.hand_over()  # closed by the loop's finally from here
        received: list[int] = []
        closing: list[KeyboardInterrupt] = []
        # the signal handler also covers closing the workers: a SIGTERM then is an Interrupted too
        with _stop_on_signals(received):
            try:
                while budget is None or budget > 0:
                    st, need = state_of()
                    # seed-major order: an interruption leaves every configuration with about as many seeds
                    tasks = [task(a, s) for s in sorted({s for v in need.values() for s in v}) for a in need if s in need[a]]
                    if not tasks:
                        break
                    if budget is not None:
                        tasks = tasks[:budget]
                        budget -= len(tasks)
                    if prog is not None:
                        look = f"look {st.looks_done + 1}/{len(design.looks.sizes)}, " if design.adaptive else ""
                        prog.update(prog.task_ids[0], total=(prog.tasks[0].completed + len(tasks)),
                                    description=f"ablation runs ({look}{len(st.open_arms)} arms open)")
                    unclaim_report()
                    if not trained["recorded"]:
                        record_env()
                    executor.run(tasks, finished)
                    save(force=True)
                if ab.alignment and (budget is None or budget > 0):
                    from mmdata.ablate.align import ALIGN_COLUMN, add_alignment

                    if prog is not None:
                        prog.update(prog.task_ids[0], description="alignment Δ of finished runs")
                    if any(r["status"] == "ok" and r.get(ALIGN_COLUMN) is None for r in rows):
                        unclaim_report()  # alignment Δ to add: new columns, a new analysis
                    local = str(stage_dataset(data, storage_options=storage_options)) if is_remote(data) else data
                    add_alignment(ab, local, out, rows, device=device, on_row=touched)
            except KeyboardInterrupt as exc:
                raise Interrupted(_stopped_by(exc, received), *_counts(rows)) from None
            finally:
                stopping = sys.exc_info()[1]
                try:
                    executor.close()
                except KeyboardInterrupt as exc:  # a second Ctrl-C while the workers shut down (notebook QA)
                    closing.append(exc)
                finally:
                    if prog is not None:
                        prog.stop()
                    try:
                        save(force=True)  # also stops a pending timer
                        if trained["recorded"]:
                            record_env()  # the runs this environment trained, counted
                    except MMDataError:
                        # a failed save raised while stopping is the same write failing again: the first error
                        # stays (an Interrupted is replaced: its "finished runs kept" would not be true)
                        if not isinstance(stopping, MMDataError):
                            raise
                if closing and stopping is None:  # the runs ended, the stop came while closing: still a stop
                    raise Interrupted(_stopped_by(closing[0], received), *_counts(rows)) from None
        state, need = state_of()
        with _writing(f"the report (summary.json, report.md, plots) into {shown}"):
            summary = write_report(ab, out, rows, fingerprint, state, stale_rows=len(stale), complete=not need, plots=plots,
                                   warnings=said, provenance=provenance(rows, _read_env(out) or prev_env),
                                   recorded=recorded)
        _prune_superseded(out, config, env, device, threads, mirror, keep=aside)
        for w in summary["warnings"][len(said):]:  # what the analysis found
            warn(w)
        if mirror is not None:
            mirror.push()  # the report, summary, plots, config and environment (runs.parquet is there)
        return summary


if __name__ == "__main__":  # pragma: no cover
    run(sys.argv[1], sys.argv[2])
