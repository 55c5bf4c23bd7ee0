"""One report across the folds of a k-fold cross-validated ablation: ``mmdata ablate-folds DIR... --out DIR``.

A researcher runs one ablation per fold (``mmdata ablate ab.yaml --out runs/fold$k --test-split $k``);
each folder has its own verdicts, on its own test fold. :func:`gather` reads the folders (their
``config.resolved.yaml`` and ``runs.parquet``, through the runner's safe readers: they are untrusted
input), checks that they are the same ablation on different test folds, and pools them.

**Units.** A unit is a (fold, seed): the paired difference ``d = arm - baseline`` of one seed in one
fold (paired within that fold only). A fold contributes to an arm when it has at least 2 paired seeds.

**Estimate.** The mean over the K contributing folds of the per-fold mean differences,
``theta = (1/K) sum_k mean_k``: every fold weighs the same, whatever its seed count, so a fold with
more seeds (or fewer failures) does not dominate, and the estimand is the effect averaged over the
folds, as a cross-validated score is. Its standard error is stratified:
``se = sqrt(sum_k s_k^2 / n_k) / K``.

**Test.** Under "no effect" each unit's difference is symmetric about 0, independently, so flipping
the sign of any subset of units gives an equally likely data set. The statistic is
``|sum_k (1/n_k) sum_s d_ks|`` (= ``K |theta|``), the reference set all ``2^N`` sign patterns of the
``N`` units up to 14, else the observed pattern plus 16,383 random ones (``p = (b + 1) / (N + 1)``):
:func:`mmdata.ablate.stats.sign_flip_p` on the weighted units. Holm's step-down across the arms at the
folders' ``alpha`` (:func:`mmdata.ablate.stats.holm_levels`); each arm's interval is the set of shifts
``mu`` the same test does not reject at the arm's Holm level, so it excludes 0 exactly when the arm is
declared to help or hurt; the verdict rule is the per-folder one (:func:`mmdata.ablate.stats.decide`).

**Heterogeneity (exploratory).** Whether an arm's effect differs across folds: Cochran's Q of the per-fold mean
differences with standard errors from the pooled within-fold variance, I², and a p-value by permuting the units'
fold labels (:func:`heterogeneity`) — exact when every fold has the same seed-to-seed spread, approximate otherwise;
no verdict and outside the Holm family. With 5 folds of 3 / 5 / 10 seeds, the textbook Q (per-fold standard errors,
chi-square p) flags 34% / 19% / 9% of arms whose folds agree at p < 0.05; the permutation p flags 4-5% (simulated
with the synthetic trainer's noise: tests/ablate/test_folds.py).

**Figures.** forest.png draws at most :data:`mmdata.ablate.report.FIGURE_ARMS` arms, chosen as the single
folder's report chooses them, and says how many it leaves out; it is drawn under matplotlib's defaults, so its
bytes depend on the folders only, not on the caller's matplotlib settings.

**delta.** The recipe's ``delta:``; by default the baseline's seed-to-seed sd pooled over the folds
(the root mean of each fold's variance over its first look's seeds).

**Adaptive folders.** A group-sequential fold stops arms at data-dependent seed counts, and the units
beyond its first look exist *because* of the results: pooling them would break the sign-flip symmetry.
Every arm of an adaptive design runs the first look's seeds whatever the data, so an adaptive fold is
analysed on those seeds only (``n_1``, 10 of 20 by default); the later ones are left out, said in a
warning. That keeps the pooled test exact, at the cost of the later seeds (a fixed design uses all).

Example:
    >>> d = {"a": {"1": {0: 1.0, 1: 2.0, 2: 1.5}, "2": {0: 0.5, 1: 1.0}}}
    >>> r = pool(d, delta=1.0)["a"]
    >>> r["mean_diff"], r["units"], r["folds_used"]
    (1.125, 5, ['1', '2'])
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.ablate.stats import (ALPHA, MIN_SEEDS, N_RANDOM, decide, end_ties, holm, holm_levels, outward_bracket,
                                 paired_sd, sign_patterns, t_interval)
from mmdata.errors import MMDataError

SCHEMA = "mmdata.ablate.folds/1"
#: up to this many units an arm's reference set is :func:`mmdata.ablate.stats.sign_patterns`' (one ablation's
#: seed maximum); beyond, the same number of random patterns is drawn in blocks
MAX_CACHED_UNITS = 1000
SPLIT_KEYS = ("train_split", "val_split", "test_split")
#: what --out may hold: the files a previous gather wrote
OUT_FILES = ("report.md", "summary.json", "forest.png")
#: the resolved config's keys that must be equal across the folds (seeds and adaptive may differ: the estimate
#: weighs folds equally, and an adaptive fold is read on its first look)
SAME_KEYS = ("dataset", "trainer", "metric", "alpha", "delta", "alignment", "imports", "arms")


# ---------------------------------------------------------------------------------------------
# the pooled statistics (pure: the benchmark's simulation calls these)


class _Units:
    """One arm's units across folds: the weighted sign-flip test of ``mean over folds == mu`` for any ``mu``.

    ``|E (w * (d - mu))| = |E (w d) - mu E w|``: the two products are taken once, each shift costs one pass."""

    def __init__(self, folds: Mapping[str, Sequence[float]]) -> None:
        self.d = np.concatenate([np.asarray(v, float) for v in folds.values()])
        self.w = np.concatenate([np.full(len(v), 1.0 / len(v)) for v in folds.values()])
        n = len(self.d)
        if n <= MAX_CACHED_UNITS:  # the reference set of sign_flip_p (cached per size)
            E = sign_patterns(n)
            self.ewd, self.ew = E @ (self.w * self.d), E @ self.w
            return
        # more units than one ablation's seeds can be (10 folds x 200 seeds): the same number of random patterns
        # drawn block by block from a fixed seed, never held at once (16,384 x 5,000 signs would be 655 MB)
        from mmdata.rng import derive

        rng = derive(0, 0, "mmdata.ablate.folds.sign_flip", n)
        parts_wd, parts_w = [], []
        for start in range(0, N_RANDOM + 1, 1024):
            block = rng.choice([-1.0, 1.0], size=(min(1024, N_RANDOM + 1 - start), n))
            if start == 0:
                block[0] = 1.0  # row 0: the observed pattern
            parts_wd.append(block @ (self.w * self.d))
            parts_w.append(block @ self.w)
        self.ewd, self.ew = np.concatenate(parts_wd), np.concatenate(parts_w)

    def p(self, mu: float = 0.0) -> float:
        """Two-sided sign-flip p-value of ``mean over folds == mu`` (as :func:`sign_flip_p` on ``w (d - mu)``)."""
        stats = np.abs(self.ewd - mu * self.ew)
        obs = float(stats[0])  # row 0 is the observed pattern
        return float(np.count_nonzero(stats >= obs - 1e-9 * max(1.0, obs))) / len(stats)

    def interval(self, level: float, centre: float, anchors: Sequence[float]) -> tuple[float, float]:
        """Shifts not rejected at ``level`` (bisection outwards from ``centre``; ``±inf`` when none is); an
        anchor (0, ±delta) not rejected lies inside, so the interval agrees with the decisions taken there."""
        span = float(self.d.max() - self.d.min()) + abs(centre) + 1.0

        def rejects(mu: float) -> bool:
            return self.p(mu) <= level

        def bound(direction: float) -> float:
            got = outward_bracket(rejects, centre, span, direction, steps=60, tol=1e-6)
            return direction * math.inf if got is None else got[0]

        lo, hi = bound(-1.0), bound(1.0)
        for c in anchors:
            if math.isfinite(c) and not rejects(c):
                lo, hi = min(lo, c), max(hi, c)
        return lo, hi


#: the heterogeneity p below which report.md and forest.png say "folds differ" (exploratory: no verdict, no Holm)
HETEROGENEITY_FLAG = 0.05
#: at most this many units get their fold-label permutations cached (16,384 x 200 int16: 6.5 MB)
MAX_CACHED_PERMUTED = 200
#: how the heterogeneity test works and what it assumes (report.md, summary.json's ``heterogeneity_method``)
HETEROGENEITY_METHOD = (
    "Cochran's Q of the per-fold mean differences with standard errors from the pooled "
    "within-fold variance, Q = sum_k n_k (mean_k - mean)^2 / s_pooled^2 (mean: the seed-weighted mean, df = K - 1), "
    "and I^2 = max(0, (Q - df) / Q); its p-value by permuting the units' fold labels (16,383 random permutations "
    "and the observed labels, p = (b + 1) / (R + 1)), not from a chi-square, which is far too liberal with 2-10 "
    "seeds per fold. The permutation is exact when, under 'the same effect in every fold', the units are "
    "exchangeable across folds: the same mean and the same spread in every fold. With unequal spreads it is "
    "approximate (a fold with a larger seed-to-seed sd and few seeds can read as a different effect)")


@functools.lru_cache(maxsize=4)
def _fold_permutations(n: int) -> np.ndarray:
    """Row 0 the identity, then :data:`N_RANDOM` random permutations of ``n`` unit positions, from a fixed seed."""
    from mmdata.rng import derive

    rng = derive(0, 0, "mmdata.ablate.folds.heterogeneity", n)
    out = rng.permuted(np.tile(np.arange(n, dtype=np.int16 if n < 2**15 else np.int64), (N_RANDOM + 1, 1)), axis=1)
    out[0] = np.arange(n)
    out.setflags(write=False)
    return out


def heterogeneity(folds: Mapping[str, Sequence[float]], *, permutations: int | None = None) -> dict[str, Any] | None:
    """Whether an arm's effect differs across folds (exploratory): Cochran's Q with pooled-variance standard
    errors, I², and a fold-label permutation p-value (:data:`HETEROGENEITY_METHOD` says what it assumes).

    Args:
        folds: fold -> the arm's paired differences on that fold's seeds (2 or more each).
        permutations: random permutations (default :data:`mmdata.ablate.stats.N_RANDOM`, fixed; fewer only
            for simulations), drawn from a fixed seed so the same data give the same p.

    Returns:
        ``{statistic, df, p_value, i2, method}``, or None with fewer than 2 folds. ``statistic`` is inf (None in
        summary.json) when every fold's seeds agree exactly and the fold means do not.

    Example:
        >>> h = heterogeneity({"1": [1.0, 1.2, 0.8], "2": [1.1, 0.9, 1.0], "3": [3.0, 3.2, 2.8]})
        >>> round(h["statistic"], 1), h["df"], h["p_value"] < 0.05, round(h["i2"], 2)
        (266.7, 2, True, 0.99)
        >>> heterogeneity({"1": [1.0, 2.0], "2": [2.0, 1.0]})["p_value"]
        1.0
    """
    groups = [np.asarray(v, float) for v in folds.values()]
    if len(groups) < 2 or any(len(g) < MIN_SEEDS for g in groups):
        return None
    d = np.concatenate(groups)
    n = np.array([len(g) for g in groups], float)
    k, total = len(groups), len(d)
    sst = float(((d - d.mean()) ** 2).sum())

    def between(sums: np.ndarray) -> np.ndarray:  # SSB from group sums; SST is fixed under relabelling
        return (sums**2 / n).sum(axis=-1) - d.sum() ** 2 / total

    member = np.repeat(np.arange(k), n.astype(int))
    obs = float(between(np.bincount(member, weights=d, minlength=k)))
    ssw = max(sst - obs, 0.0)
    if sst <= 1e-12 * max(1.0, float(np.abs(d).max())) ** 2:  # every unit the same: nothing differs
        q, p, obs = 0.0, 1.0, 0.0
    else:
        q = obs / (ssw / (total - k)) if ssw > 1e-12 * sst else math.inf
        starts = np.concatenate([[0], np.cumsum(n[:-1])]).astype(np.intp)  # the folds' units lie in contiguous runs
        tol = 1e-9 * sst
        if permutations is None and total <= MAX_CACHED_PERMUTED:
            perms: Any = [_fold_permutations(total)[1:]]
        else:  # more units, or fewer permutations (a simulation): drawn block by block from the same fixed seed
            from mmdata.rng import derive

            rng = derive(0, 0, "mmdata.ablate.folds.heterogeneity", total)
            r = N_RANDOM if permutations is None else int(permutations)
            base = np.arange(total)
            perms = (rng.permuted(np.tile(base, (min(1024, r - s), 1)), axis=1) for s in range(0, r, 1024))
        b = r_all = 0
        for block in perms:
            b += int(np.count_nonzero(between(np.add.reduceat(d[block], starts, axis=1)) >= obs - tol))
            r_all += len(block)
        p = (b + 1) / (r_all + 1)
    df = k - 1
    i2 = 0.0 if q <= df else (1.0 if math.isinf(q) else (q - df) / q)
    return {"statistic": q, "df": df, "p_value": p, "i2": i2, "method": "Cochran's Q (pooled within-fold variance), "
            "fold-label permutation p"}


def _fold_mean(x: np.ndarray) -> float:
    """The mean of one fold's paired differences, 0 where they cancel exactly: a win and a loss of one test
    sample's worth averaged to +3.6e-15, which counted as a positive fold (QA31: "folds disagree in sign")."""
    m = float(np.mean(x))
    return 0.0 if abs(m) <= 1e-12 * float(np.max(np.abs(x))) else m


def pool(diffs: Mapping[str, Mapping[str, Mapping[int, float]]], *, alpha: float = ALPHA, delta: float = 1.0,
         higher_is_better: bool = True, pending_arms: Sequence[str] = (), failed_arms: Sequence[str] = (),
         intervals: bool = True) -> dict[str, dict[str, Any]]:
    """Decide every arm from its paired differences in every fold (confirmatory analysis of one metric).

    Args:
        diffs: arm -> fold -> {seed: arm - baseline} in reporting units (failed runs left out). A fold with
            fewer than 2 seeds for an arm is left out of that arm (listed in ``folds_left_out``).
        alpha: family-wise error rate across the arms (Holm).
        delta: smallest effect of interest (``equivalent`` / ``negligible``).
        higher_is_better: the metric's direction.
        pending_arms: arms a fold has not finished (an interrupted ablation): ``pending``, whatever their
            test says (they stay in the Holm family).
        failed_arms: arms out of the Holm family (every fold failed them): decision ``failed``.
        intervals: compute the intervals (off in large simulations: the decision does not need them).

    Returns:
        arm -> ``{units, folds_used, folds_left_out, mean_diff, se, per_fold, p_value, p_holm, rejected,
        holm_divisor, level, ci, ci_level, decision, sign_disagreement, heterogeneity}``; ``heterogeneity`` is
        :func:`heterogeneity` of the folds used (None with fewer than 2), exploratory: no part of the decision.
    """
    names = list(diffs)
    per: dict[str, dict[str, Any]] = {}
    units: dict[str, _Units] = {}
    for a in names:
        used = {f: [float(v) for _, v in sorted(d.items())] for f, d in diffs[a].items() if len(d) >= MIN_SEEDS}
        if any(math.isnan(v) for vs in used.values() for v in vs):
            raise ValueError(f"arm {a!r}: NaN difference (a failed run must be left out)")
        folds = []
        for f, vs in diffs[a].items():
            x = np.array([float(v) for _, v in sorted(vs.items())])
            folds.append({"fold": f, "n_seeds": len(x), "mean_diff": _fold_mean(x) if len(x) else math.nan,
                          "sd_diff": paired_sd(x), "used": f in used})
        means = [_fold_mean(np.array(v)) for v in used.values()]
        e: dict[str, Any] = {"units": sum(len(v) for v in used.values()), "folds_used": list(used),
                             "folds_left_out": [f for f in diffs[a] if f not in used], "per_fold": folds}
        if used:
            k = len(used)
            est = float(np.mean(means))
            if abs(est) <= 1e-12 * max(abs(m) for m in means):
                est = 0.0  # folds that cancel average to 0, not to 1e-16
            var = sum(paired_sd(np.array(v)) ** 2 / len(v) for v in used.values())
            units[a] = _Units(used)
            e.update(mean_diff=est, se=math.sqrt(var) / k if math.isfinite(var) else math.nan, p_value=units[a].p(0.0))
            nonzero = [m for m in means if m != 0]
            # folds pointing different ways by more than noise: some fold's mean past ±delta (QA: an arm whose
            # fold means all lay within ±delta, `equivalent`, was warned about as pointing different ways)
            e["sign_disagreement"] = (bool(nonzero) and min(nonzero) < 0 < max(nonzero)
                                      and max(abs(m) for m in nonzero) > delta)
            e["heterogeneity"] = heterogeneity(used)
        else:
            e.update(mean_diff=math.nan, se=math.nan, p_value=math.nan, sign_disagreement=False, heterogeneity=None)
        per[a] = e
    family = [a for a in names if a not in failed_arms and a in units]
    m = len(family)
    crossed = np.zeros((m, m), dtype=bool)
    for i, a in enumerate(family):
        crossed[i] = [per[a]["p_value"] <= alpha / s for s in range(1, m + 1)]
    rejected, divisor = holm_levels(crossed) if m else (np.zeros(0, bool), np.zeros(0, np.int64))
    adjusted = dict(zip(family, holm([per[a]["p_value"] for a in family]))) if m else {}
    for a in names:
        e = per[a]
        i = family.index(a) if a in family else None
        s = int(divisor[i]) if i is not None else max(m, 1)
        e["rejected"] = bool(rejected[i]) if i is not None else False
        e["holm_divisor"] = s
        e["level"] = alpha / s
        e["ci_level"] = 1 - alpha / s
        e["p_holm"] = adjusted.get(a, math.nan)
        if intervals and a in units:
            anchors = (0.0, -delta, delta) if math.isfinite(delta) else (0.0,)
            e["ci"] = list(units[a].interval(alpha / s, e["mean_diff"], anchors))
        else:
            e["ci"] = [-math.inf, math.inf]
        # an end on tied units' value is the metric's grid, as in a single ablation's report (docs/ablation.md, Ties)
        e["ci_end_ties"] = end_ties(units[a].d, e["ci"]) if a in units else [0, 0]
        if a in failed_arms:
            e["decision"] = "failed"
        elif a not in units or a in pending_arms:  # a fold still has runs to do for it: no verdict yet
            e["decision"] = "pending"
        else:
            e["decision"] = decide(e["rejected"], tuple(e["ci"]) if intervals else (-math.inf, math.inf), e["mean_diff"],
                                   delta, e["units"], higher_is_better=higher_is_better, pending=a in pending_arms)
    return per


def exploratory(diffs: Mapping[str, Mapping[int, float]]) -> dict[str, Any] | None:
    """A secondary metric's pooled Δ for one arm (fold -> {seed: Δ}): the same estimate, an unadjusted 95%
    t interval on the stratified standard error (:func:`~mmdata.ablate.stats.t_interval`: None when no fold's
    Δ varies) and the unadjusted sign-flip p.

    Example:
        >>> e = exploratory({"1": {0: 0.0, 1: 0.0}, "2": {0: 0.0, 1: 0.0}})
        >>> e["mean_diff"], e["ci95_t_unadjusted"]
        (0.0, None)
    """
    used = {f: [float(v) for _, v in sorted(d.items())] for f, d in diffs.items() if len(d) >= MIN_SEEDS}
    if not used:
        return None
    k = len(used)
    means = [_fold_mean(np.array(v)) for v in used.values()]
    est = float(np.mean(means))
    if abs(est) <= 1e-12 * max(max(abs(m) for m in means), 1.0):
        est = 0.0
    se = math.sqrt(sum(paired_sd(np.array(v)) ** 2 / len(v) for v in used.values())) / k
    return {"units": sum(len(v) for v in used.values()), "folds_used": list(used), "mean_diff": est, "se": se,
            "ci95_t_unadjusted": t_interval(list(used.values())), "p_value_unadjusted": _Units(used).p(0.0)}


# ---------------------------------------------------------------------------------------------
# reading the folders


@dataclass
class Fold:
    """One ablation folder, read and checked: its resolved config, runs of its current configuration,
    and per configuration the primary metric on the seeds the pooled analysis may use."""

    folder: str
    config: dict[str, Any]
    label: str
    rows: list[dict[str, Any]]
    fingerprint: str
    adaptive: bool
    seeds: int
    cap: int
    complete: bool
    stale: int
    arm_status: dict[str, str] = field(default_factory=dict)


def _problem(folder: str, what: str) -> MMDataError:
    return MMDataError(f"{folder}: {what}")


def _config(path: Path, folder: str) -> dict[str, Any]:
    from mmdata import safe_yaml

    p = path / "config.resolved.yaml"
    try:
        cfg = safe_yaml.parse(safe_yaml.decode(safe_yaml.read_bytes(p, "config"), str(p)), str(p), quote=False)
    except MMDataError as exc:
        raise _problem(folder, f"config.resolved.yaml is not readable ({exc})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("arms"), list) or not cfg["arms"]:
        raise _problem(folder, "config.resolved.yaml has no arms: list; not the resolved config of an `mmdata ablate`")
    for i, a in enumerate(cfg["arms"]):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
            raise _problem(folder, f"config.resolved.yaml: arms[{i}] has no name")
        if not isinstance(a.get("recipe"), (dict, type(None))) or not isinstance(a.get("label_noise", 0.0), (int, float)):
            raise _problem(folder, f"config.resolved.yaml: arms[{i}] ({a['name']}): recipe or label_noise is not valid")
    if not isinstance(cfg.get("trainer") or {}, dict) or not isinstance(cfg.get("dataset") or {}, dict):
        raise _problem(folder, "config.resolved.yaml: trainer: and dataset: must be mappings")
    return cfg


def _env(path: Path) -> dict[str, Any]:
    p = path / "env.json"
    try:
        if p.is_file() and p.stat().st_size < 1_000_000:
            env = json.loads(p.read_text(encoding="utf-8"))
            return env if isinstance(env, dict) else {}
    except (OSError, ValueError):
        pass
    return {}


def _metric(cfg: dict[str, Any], folder: str) -> tuple[str, float, str, bool]:
    """(column, scale, label, higher is better) of the folder's primary metric."""
    m = cfg.get("metric") or {}
    name, scale, hib = m.get("name"), m.get("scale", 1.0), m.get("higher_is_better")
    if (not isinstance(name, str) or not name.startswith("test.") or isinstance(scale, bool)
            or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0 or not isinstance(hib, bool)):
        raise _problem(folder, "config.resolved.yaml: metric: expected {name: test.<metric>, higher_is_better, scale > 0}")
    return "test_" + name[len("test."):], float(scale), str(m.get("label") or name), hib


def read_fold(folder: str | Path) -> Fold:
    """Read one ``mmdata ablate`` folder for :func:`gather`; a folder that is not one is an error naming it.

    Example:
        >>> read_fold("/nonexistent")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: /nonexistent: not found
    """
    from mmdata.ablate.design import Ablation, Arm
    from mmdata.ablate.report import _values
    from mmdata.ablate.runner import (_as_reported, _previous_design, _reported_plan, check_recorded_accuracy,
                                      load_runs, one_row_per_run)
    from mmdata.ablate.schedule import next_runs

    shown = str(folder).rstrip("/") or str(folder)
    path = Path(folder)
    if not path.exists():
        raise _problem(shown, "not found")
    if not path.is_dir():
        raise _problem(shown, "not a folder (give the --out folders of `mmdata ablate`, one per fold)")
    missing = [m for m in ("config.resolved.yaml", "runs.parquet") if not (path / m).is_file()]
    if missing:
        raise _problem(shown, f"not an mmdata ablation folder (no {' or '.join(missing)}); give the --out folders of "
                              "`mmdata ablate`, one per fold")
    cfg = _config(path, shown)
    # the metric / δ / α the fold reported its verdicts under are the ones fixed in advance: a config.resolved.yaml
    # edited after the report cannot switch them here either (QA35 review #3; `mmdata ablate` refuses it too)
    _, said = _as_reported(cfg, _reported_plan(path))
    said = [d for d in said if d.startswith(("metric:", "delta:", "alpha:"))]
    if said:
        raise _problem(shown, "config.resolved.yaml was edited after the fold reported: it gives " + "; ".join(said)
                       + " — restore it (or rerun `mmdata ablate` into that folder, which says what may change)")
    column, scale, _, _ = _metric(cfg, shown)
    alpha = cfg.get("alpha", ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
        raise _problem(shown, f"config.resolved.yaml: alpha {alpha!r} is not in (0, 0.5)")
    design = _previous_design(cfg, float(alpha))
    if design is None:
        raise _problem(shown, "config.resolved.yaml: seeds / adaptive do not describe a design")
    trainer = dict(cfg.get("trainer") or {})
    entry = trainer.pop("entry", None)
    arms = [Arm(a["name"], a.get("recipe"), float(a.get("label_noise") or 0.0), str(a.get("kind", "arm"))) for a in cfg["arms"]]
    ab = Ablation(dataset=dict(cfg.get("dataset") or {}), trainer=trainer, seeds=int(cfg["seeds"]), arms=arms, entry=entry)
    env = _env(path)
    device, threads = str(env.get("device") or "cpu"), env.get("threads_per_run") or 1
    every = load_runs(path, shown)
    by = {a.name: a for a in arms}
    rows, fps, stale = [], set(), 0
    for r in every:
        a = by.get(r.get("arm"))
        try:
            # the row's own code (None in a folder from before runs recorded it: the hash of that time)
            ok = a is not None and r.get("config_hash") == ab.run_hash(a, int(r["seed"]), r.get("data_fingerprint"),
                                                                        device, int(threads), r.get("code"))
        except (TypeError, ValueError, KeyError):
            ok = False
        if ok and 0 <= int(r["seed"]) < ab.seeds:
            rows.append(r)
            fps.add(r.get("data_fingerprint"))
        else:
            stale += 1
    analysed, _ = one_row_per_run(rows, f"{shown}/runs.parquet")  # a run's extra rows are not analysed either
    rows, stale = analysed, stale + len(rows) - len(analysed)
    if entry is None:  # the bundled trainer's correct_on_test is its test accuracy bit by bit (QA35 grader #1)
        check_recorded_accuracy(rows, f"{shown}/runs.parquet")
    if not rows:
        raise _problem(shown, f"runs.parquet has no run of the configuration in config.resolved.yaml ({len(every)} rows "
                              "of other configurations); rerun `mmdata ablate` into it first")
    if len(fps) > 1:
        raise _problem(shown, "runs.parquet holds runs on two versions of the dataset's content (data_fingerprint); "
                              "rerun that fold into a new --out")
    names = [a.name for a in arms]
    values = _values(rows, column, scale)
    tried: dict[str, set[int]] = {n: set() for n in names}
    for r in rows:
        tried[r["arm"]].add(int(r["seed"]))
    state, need = next_runs(design, names[0], names[1:], values, tried)
    cap = design.looks.sizes[0] if design.adaptive else design.looks.max
    status = {}
    for n in names[1:]:
        st = state.arms[n].status
        if design.adaptive:  # the first look's seeds: every arm ran them, whatever the data
            st = "open" if state.looks_done == 0 else ("failed" if st == "failed" else "complete")
        status[n] = st
    label = trainer.get("test_split", "test")
    return Fold(folder=shown, config=cfg, label=str(label), rows=rows, fingerprint=str(next(iter(fps))),
                adaptive=design.adaptive, seeds=ab.seeds, cap=cap, complete=not need, stale=stale, arm_status=status)


def _differs(a: Any, b: Any, key: str) -> str | None:
    """The first key (dotted) where ``a`` and ``b`` differ, or None."""
    if key == "arms":
        na = [x.get("name") for x in a]
        nb = [x.get("name") for x in b]
        if na != nb:
            return "arms (names: " + ", ".join(na) + " vs " + ", ".join(nb) + ")"
        for x, y in zip(a, b):
            for k in ("recipe", "label_noise", "kind"):
                if x.get(k) != y.get(k):
                    return f"arms[{x['name']}].{k}"
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if key == "trainer" and k in SPLIT_KEYS:
                continue
            if a.get(k) != b.get(k):
                return f"{key}.{k}"
        return None
    return None if a == b else key


def check_folds(folds: Sequence[Fold]) -> None:
    """Refuse folders that are not one ablation on different test folds: fewer than 2, a key of the resolved
    config that differs apart from the split keys (naming the folder and the key), another dataset content,
    a folder given twice, or the same test split twice."""
    if len(folds) < 2:
        raise MMDataError(f"ablate-folds: give at least 2 fold folders (got {len(folds)}); one fold is `mmdata ablate`'s own report")
    first = folds[0]
    seen: dict[str, str] = {}
    for f in folds:
        real = str(Path(f.folder).resolve())
        if real in seen:
            raise MMDataError(f"{f.folder}: given twice (also as {seen[real]})")
        seen[real] = f.folder
    for f in folds[1:]:
        for key in SAME_KEYS:
            where = _differs(first.config.get(key), f.config.get(key), key)
            if where:
                raise MMDataError(f"{f.folder}: {where} differs from {first.folder}'s; the folds of one ablation differ only "
                                  f"in {', '.join('trainer.' + k for k in SPLIT_KEYS)}")
        if f.fingerprint != first.fingerprint:
            raise MMDataError(f"{f.folder}: the dataset fingerprint {f.fingerprint[:16]} differs from {first.folder}'s "
                              f"({first.fingerprint[:16]}); the folds must be splits of one dataset")
    tests: dict[str, str] = {}
    for f in folds:
        if f.label in tests:
            raise MMDataError(f"{f.folder}: trainer.test_split {f.label!r} is also {tests[f.label]}'s; each fold folder "
                              "must test on another split (--test-split)")
        tests[f.label] = f.folder


# ---------------------------------------------------------------------------------------------
# the analysis and the files


def _identity_note(cfg: dict[str, Any]) -> str | None:
    """Why an ``identity`` control checks nothing here (the baseline draws nothing, so it trains exactly like
    the baseline), as the runner says it; None when it is a real A/A control or there is none."""
    from mmdata.ablate.design import _identity_note as note
    from mmdata.ablate.design import draws

    arms = {a["name"]: a for a in cfg["arms"]}
    if "identity" not in arms or arms["identity"].get("kind") != "control":
        return None
    mods = (cfg.get("trainer") or {}).get("modalities")
    used = tuple(str(m) for m in mods) if isinstance(mods, list) and "entry" not in cfg["trainer"] else None
    try:
        drawn = draws(cfg["arms"][0].get("recipe"), used)
    except (TypeError, ValueError, KeyError, AttributeError):  # an unreadable recipe: say nothing rather than fail the report
        return None
    return None if drawn else note(used, kept=True)


def _check_out(out: Path, folds: Sequence[Fold]) -> None:
    real = out.resolve()
    for f in folds:
        if real == Path(f.folder).resolve():
            raise MMDataError(f"--out {out}: is the fold folder {f.folder}; give a new folder for the report across folds")
    from mmdata.train.config import dataset_around

    around = dataset_around(out)
    if around is not None:  # QA: the report across folds was written among a dataset's files
        raise MMDataError(f"--out {out}: inside the dataset folder {around}; give a folder outside it, e.g. "
                          f"{around.parent / 'runs' / (around.name + '-folds')}")
    if out.exists():
        if not out.is_dir():
            raise MMDataError(f"--out {out}: exists and is not a folder")
        from mmdata.io import remove_stale_temps

        # a gather killed mid-write left a temp file no job would remove, and it read as a stranger's file here
        remove_stale_temps(out, OUT_FILES)
        other = sorted(p.name for p in out.iterdir() if p.name not in OUT_FILES)
        if other:
            raise MMDataError(f"--out {out}: not empty and not an `mmdata ablate-folds` folder (it has "
                              f"{', '.join(other[:8])}); give a new or empty folder")


def _left_out_because(f: Fold, arm: str, base: str) -> str:
    """Why ``f`` has fewer than 2 paired seeds of ``arm``: its runs (or the baseline's) failed, the fold is unfinished
    (interrupted, or stopped by a run budget), or both — the report said "failed runs" of an interrupted fold."""
    failed = any(r.get("status") != "ok" and r.get("arm") in (arm, base) and int(r["seed"]) < f.cap for r in f.rows)
    unfinished = f.arm_status.get(arm) == "open" or not f.complete
    why = [w for w, yes in (("failed runs", failed), ("unfinished", unfinished)) if yes]
    return " and ".join(why) if why else "fewer than 2 paired seeds"


def gather(folders: Sequence[str | Path], out: str | Path, *, plots: bool = True) -> dict[str, Any]:
    """Pool the per-fold ablations in ``folders`` (one ``mmdata ablate --out`` each, on different test splits)
    and write ``out/report.md``, ``out/summary.json`` and ``out/forest.png``; returns the summary.

    Args:
        folders: the fold folders, in the order the report lists them.
        out: the output folder (new, empty, or a previous ``ablate-folds`` output).
        plots: draw ``forest.png``.

    Raises:
        MMDataError: fewer than 2 folders, a folder that is not an ablation's, folders that differ in more than
            the split keys (the message names the folder and the key), the same test split twice.

    Example:
        >>> s = gather(["runs/fold1", "runs/fold2", "runs/fold3"], "runs/folds")  # doctest: +SKIP
        >>> [(a["name"], a["decision"]) for a in s["arms"]]  # doctest: +SKIP
        [('cutout', 'helps'), ('noise', 'inconclusive')]
    """
    from mmdata.ablate.report import _controls, _finite, _secondary, _values, no_spread_text
    from mmdata.ablate.schedule import paired_diffs
    from mmdata.io import atomic_write_bytes

    if len(folders) < 2:
        raise MMDataError(f"ablate-folds: give at least 2 fold folders (got {len(folders)}); one fold is `mmdata ablate`'s own report")
    folds = [read_fold(f) for f in folders]
    check_folds(folds)
    out = Path(out)
    _check_out(out, folds)
    cfg = folds[0].config
    column, scale, label, hib = _metric(cfg, folds[0].folder)
    alpha = float(cfg.get("alpha", ALPHA))
    arm_cfg = cfg["arms"]
    base = arm_cfg[0]["name"]
    arm_names = [a["name"] for a in arm_cfg[1:]]
    kinds = {a["name"]: str(a.get("kind", "arm")) for a in arm_cfg}
    fold_key = [f.label for f in folds]
    diffs: dict[str, dict[str, dict[int, float]]] = {a: {} for a in arm_names}
    base_vars = []
    for f, key in zip(folds, fold_key):
        vals = _values(f.rows, column, scale)
        for a, d in paired_diffs(vals, base, arm_names).items():
            diffs[a][key] = {s: v for s, v in d.items() if s < f.cap}
        pilot = [v for s, v in vals.get(base, {}).items() if s < (f.cap if f.adaptive else f.seeds)]
        if len(pilot) >= MIN_SEEDS:  # equal up to float rounding: 0, as `mmdata ablate`'s δ (report.write_report)
            base_vars.append(float(np.var(pilot, ddof=1)) if paired_sd(np.asarray(pilot, dtype=float), values=True) > 0 else 0.0)
    warnings: list[str] = []
    if cfg.get("delta") is not None:
        delta, delta_src = float(cfg["delta"]), "set in the recipe"
    elif base_vars:
        delta = math.sqrt(float(np.mean(base_vars)))
        delta_src = f"default: the baseline's seed-to-seed sd pooled over {len(base_vars)} folds"
    else:
        delta, delta_src = math.nan, "not known (no fold has 2 baseline seeds)"
    delta_warning = None
    if delta == 0:  # the baseline the same on every seed of every fold: nothing lies inside ±0 (as `mmdata ablate` says)
        delta_warning = (f"δ = 0 (the baseline's {'test.' + column[len('test_'):]} was the same on each of its seeds in "
                         f"every fold): `equivalent` and `negligible` verdicts are unreachable; set `delta:` in the "
                         f"recipe to the smallest effect that matters, in {label}, and rerun the folds' `mmdata ablate` "
                         "(it re-analyses their runs without training again).")
        warnings.append(delta_warning)
    adaptive = [f for f in folds if f.adaptive]
    if adaptive:
        warnings.append(f"{len(adaptive)} of the {len(folds)} folds used the adaptive design; each is analysed on the seeds "
                        "of its first planned look only (" + ", ".join(f"{f.folder}: {f.cap} of up to {f.seeds}" for f in adaptive)
                        + "): every arm ran those whatever the data, while later seeds exist because of the results, "
                        "and pooling them would break the exact test. A fixed design (`--fixed`) uses every seed.")
    codes = {f.folder: sorted({str(r["code"])[:12] for r in f.rows if r.get("code")}) for f in folds}
    if len({c for cs in codes.values() for c in cs}) > 1:  # the code is part of a run's identity (docs/ablation.md)
        warnings.append("the folds' runs were trained by different versions of mmdata's code (runs.parquet `code`: "
                        + "; ".join(f"{n}: {', '.join(cs) or 'not recorded'}" for n, cs in codes.items())
                        + "): a pooled difference may mix a code change with the arms' effects; rerun the folds' "
                        "`mmdata ablate` with one version (each retrains the runs of other code) for a pooled verdict")
    incomplete = [f.folder for f in folds if any(st == "open" for st in f.arm_status.values())]
    if incomplete:
        warnings.append(f"incomplete folds (runs left to do; rerun their `mmdata ablate`): {', '.join(incomplete)}; "
                        "arms still sampling there are pending")
    pending = [a for a in arm_names if any(f.arm_status.get(a) == "open" for f in folds)]
    failed = []
    for a in arm_names:
        if all(f.arm_status.get(a) == "failed" for f in folds):
            failed.append(a)
    prim = pool(diffs, alpha=alpha, delta=delta, higher_is_better=hib, pending_arms=pending, failed_arms=failed)
    for f, key in zip(folds, fold_key):
        for a in arm_names:
            for p in prim[a]["per_fold"]:
                if p["fold"] == key and not p["used"]:
                    p["left_out_because"] = _left_out_because(f, a, base)
    failures = [{"fold": k, "folder": f.folder, "arm": r["arm"], "seed": int(r["seed"]), "error": r.get("error")}
                for f, k in zip(folds, fold_key) for r in sorted(f.rows, key=lambda r: (str(r["arm"]), int(r["seed"])))
                if r.get("status") != "ok"]
    secondary: dict[str, Any] = {}
    for f in folds:
        for m, v in _secondary(f.rows, column).items():
            secondary.setdefault(m, v)
    explore: dict[str, dict[str, Any]] = {a: {} for a in arm_names}
    for m, (_, mscale, mhib) in secondary.items():
        per_fold, values = {}, {}
        for f, key in zip(folds, fold_key):
            values[key] = _values(f.rows, m, mscale)
            per_fold[key] = paired_diffs(values[key], base, arm_names)
        for a in arm_names:
            e = exploratory({k: {s: v for s, v in per_fold[k][a].items() if s < f.cap}
                             for k, f in zip(fold_key, folds)})
            if e:
                explore[a][m] = {**e, "higher_is_better": mhib}
                if e["ci95_t_unadjusted"] is None:  # the runs keyed (fold, seed), as the single report's note reads them
                    cap = {k: f.cap for k, f in zip(fold_key, folds)}
                    runs = [(k, s) for k in e["folds_used"] for s in per_fold[k][a] if s < cap[k]]
                    by_run = {x: {(k, s): v for k in e["folds_used"] for s, v in values[k].get(x, {}).items()}
                              for x in (base, a)}
                    explore[a][m]["ci95_t_note"] = no_spread_text(by_run, base, a, runs)
    arms_out = []
    for a in arm_names:
        e = prim[a]
        arms_out.append({"name": a, "kind": kinds[a], "decision": e["decision"], "n_seeds": e["units"],
                         "status": "open" if a in pending else "complete", "primary": e, "exploratory": explore[a]})
    disagree = [a["name"] for a in arms_out if a["primary"]["sign_disagreement"]]
    if disagree:
        warnings.append("the folds disagree in the sign of the mean Δ for: " + ", ".join(disagree)
                        + "; the pooled estimate averages over folds that point different ways (see the per-fold table)")
    ok = sum(1 for f in folds for r in f.rows if r.get("status") == "ok")
    base_ok = sum(1 for f in folds for r in f.rows if r.get("status") == "ok" and r["arm"] == base)
    controls = _controls(arms_out, _identity_note(cfg), runs_ok=ok, runs_failed=len(failures), baseline_ok=base_ok)
    summary = {
        "schema": SCHEMA,
        "primary_metric": {"name": "test." + column[len("test_"):], "column": column, "label": label, "scale": scale,
                           "higher_is_better": hib},
        "folds": [{"fold": k, "folder": f.folder, "test_split": f.label,
                   **{s: f.config["trainer"].get(s) for s in ("train_split", "val_split") if s in (f.config.get("trainer") or {})},
                   # the paired seeds there (an interrupted fold has fewer than it plans), of the seeds it may use
                   "design": "adaptive" if f.adaptive else "fixed", "max_seeds": f.seeds,
                   "seeds_used": max((len(diffs[a][k]) for a in arm_names), default=0), "seeds_planned": f.cap,
                   "complete": f.complete, "runs_ok": sum(r.get("status") == "ok" for r in f.rows),
                   "runs_failed": sum(r.get("status") != "ok" for r in f.rows), "stale_rows_not_analysed": f.stale}
                  for f, k in zip(folds, fold_key)],
        "baseline": base,
        "alpha": alpha,
        "delta": {"value": delta, "source": delta_src, **({"warning": delta_warning} if delta_warning else {})},
        "warnings": warnings,
        "arms": arms_out,
        "controls": controls,
        "failures": failures,
        "data_fingerprint": folds[0].fingerprint,
        "test": METHOD,
        "heterogeneity_method": HETEROGENEITY_METHOD,
    }
    summary = _finite(summary)
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "summary.json", text.encode())
    fig = None
    if plots and any(a["primary"]["mean_diff"] is not None for a in summary["arms"]):
        atomic_write_bytes(out / "forest.png", _forest(summary))
        fig = "forest.png"
    else:
        (out / "forest.png").unlink(missing_ok=True)
    atomic_write_bytes(out / "report.md", _markdown(summary, secondary, fig).encode())
    return summary


METHOD = ("units = (fold, seed) paired differences arm - baseline, paired within a fold; estimate = mean over folds of the "
          "per-fold mean differences (every fold weighs the same), stratified standard error sqrt(sum s_k^2/n_k)/K; exact "
          "two-sided sign-flip test of |sum_k mean_k| over the units (all 2^N sign patterns up to 14 units, else 16,383 "
          "random + the observed, p = (b+1)/(N+1)); Holm step-down across the arms; intervals invert the same test at each "
          "arm's Holm level; adaptive folds analysed on their first planned look's seeds; secondary metrics exploratory "
          "(unadjusted 95% t intervals on the stratified standard error); per arm, an exploratory heterogeneity test "
          "across folds outside the Holm family (Cochran's Q on the pooled within-fold variance, I^2, p by permuting the "
          "units' fold labels: exact when every fold has the same seed-to-seed spread, approximate otherwise)")


def _het_text(h: dict[str, Any] | None) -> str:
    """``p 0.003, I² 85%`` of a heterogeneity result (``—``: fewer than 2 folds)."""
    if not h or h.get("p_value") is None:
        return "—"
    i2 = f", I² {100 * h['i2']:.0f}%" if h.get("i2") is not None else ""
    return f"p {h['p_value']:.3f}{i2}"


def _differs_across_folds(e: dict[str, Any]) -> bool:
    """The exploratory heterogeneity test's flag (p < 0.05; not a verdict)."""
    h = e.get("heterogeneity")
    return bool(h) and h.get("p_value") is not None and h["p_value"] < HETEROGENEITY_FLAG


def _drawn(s: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(drawn, not drawn) of the arms with a pooled Δ: at most :data:`mmdata.ablate.report.FIGURE_ARMS` rows,
    chosen as the single-folder report chooses them (:func:`mmdata.ablate.report.figure_arms`)."""
    from mmdata.ablate.report import figure_arms

    items = [a for a in s["arms"] if a["primary"]["mean_diff"] is not None]
    return figure_arms(items, s["primary_metric"]["higher_is_better"])


def _forest(s: dict[str, Any]) -> bytes:
    """forest.png's bytes: the same for the same summary, whatever the caller's matplotlib settings (a notebook's
    inline backend sets figure.dpi on pyplot's first import, a style sets fonts: either moved the layout, so two
    gathers of the same folders gave other bytes); drawn under matplotlib's own defaults."""
    from mmdata.augment.preview import figure_style

    with figure_style():
        return _draw_forest(s)


def _draw_forest(s: dict[str, Any]) -> bytes:
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mmdata.ablate.report import (COLORS, MARKERS, TEXT_COLOUR, figure_labels, forest_limit, level_text, metric_decimals,
                                      not_drawn_text, num)

    pm = s["primary_metric"]
    items, hidden = _drawn(s)  # past FIGURE_ARMS arms a chosen few, said in the title and below the plot
    of = f" ({len(items)} of {len(items) + len(hidden)} arms drawn: see below)" if hidden else ""
    delta = s["delta"]["value"]
    dec = metric_decimals({"primary_metric": pm, "baseline": {"metrics": {}}, "delta": s["delta"]})
    points = [p["mean_diff"] for a in items for p in a["primary"]["per_fold"] if p["mean_diff"] is not None]
    lim = max(forest_limit(items, delta), 1.1 * max((abs(v) for v in points), default=0.0))
    labels = figure_labels([a["name"] for a in items], 28, 2)
    fig = Figure(figsize=(8, 0.7 * len(items) + 2.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    band = ""
    if delta and math.isfinite(delta):
        ax.axvspan(-delta, delta, color="tab:blue", alpha=0.08)
        band = f"; shaded: ±δ = {num(delta, dec, sign=False)}, the smallest effect of interest"
    ax.axvline(0, color="black", lw=0.8)
    markers = "osD^vPX*<>ph"
    folds = [f["fold"] for f in s["folds"]]
    for i, a in enumerate(items):
        y = len(items) - 1 - i
        e, c = a["primary"], COLORS.get(a["decision"], "tab:gray")
        lo, hi = (v if v is not None else (-lim if j == 0 else lim) for j, v in enumerate(e["ci"]))
        ax.plot([lo, hi], [y, y], color=c, lw=2.4)
        # QA26: one dot for every decision (report.py's forest has a shape per decision, for print in grey)
        ax.plot(e["mean_diff"], y, MARKERS.get(a["decision"], "o"), color=c, ms=8, markeredgewidth=1.5,
                markeredgecolor=TEXT_COLOUR if a["decision"] in ("inconclusive", "pending") else c)
        for p in e["per_fold"]:
            if p["mean_diff"] is not None:
                k = folds.index(p["fold"]) if p["fold"] in folds else 0
                ax.plot(p["mean_diff"], y + 0.22, markers[k % len(markers)], color=f"C{k % 10}", ms=4,
                        mfc="none" if not p["used"] else f"C{k % 10}", label=f"fold {p['fold']}" if i == 0 else None)
        flag = "; folds disagree in sign" if e["sign_disagreement"] else ""
        het = f"; folds differ ({_het_text(e['heterogeneity'])})" if _differs_across_folds(e) else ""
        ax.text(lim * 1.02, y, f"{a['decision']}  ({len(e['folds_used'])} folds, {e['units']} units; "
                f"{level_text(e['ci_level'])}{flag})\npooled Δ {num(e['mean_diff'], dec)}{het}", va="center", fontsize=8,
                color=TEXT_COLOUR, clip_on=False)  # dark: a decision's light colour read ~2.3:1 on white
    ax.set_yticks(range(len(items)), [labels[a["name"]] for a in reversed(items)], fontsize=9)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.6, len(items) - 0.3)
    hib = pm["higher_is_better"]
    for x, ha, who in ((0.01, "left", "baseline" if hib else "arm"), (0.99, "right", "arm" if hib else "baseline")):
        ax.text(x, 1.01, ("← " if ha == "left" else "") + f"{who} better" + (" →" if ha == "right" else ""),
                transform=ax.transAxes, ha=ha, va="bottom", fontsize=8, color="dimgray")
    ax.set_xlabel(f"Δ {pm['label']} vs baseline, pooled over {len(folds)} folds (mean of per-fold mean Δ; "
                  f"{'higher' if hib else 'lower'} is better)\n"
                  "large marker (its shape and colour: the decision, as written beside it) and bar: pooled estimate and "
                  "the interval of the decision rule (exact sign-flip test over "
                  "(fold, seed) units at the arm's Holm level)\nsmall markers: each fold's mean Δ" + band
                  + "\n'folds differ': exploratory heterogeneity test across folds at p < 0.05 (fold-label permutation "
                  "of Cochran's Q; no verdict, not in the Holm family)", fontsize=8)
    if items:
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax.set_title(f"Primary metric: {pm['name']} — effect of each arm vs '{s['baseline']}' across folds{of}", fontsize=10,
                 pad=16)  # room for the direction cue above the axes
    said = not_drawn_text(items, hidden, dec, pm["label"])
    if said:
        fig.text(0.5, 0.0, textwrap.fill(said, 150, break_on_hyphens=False), ha="center", va="top", fontsize=7,
                 color="dimgray")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _markdown(s: dict[str, Any], secondary: dict[str, Any], fig: str | None) -> str:
    from mmdata.ablate.report import (arm_order, delta_zero_text, direction_text, holm_family_text, interval_cell,
                                      interval_text, md_code, md_text, metric_decimals, not_drawn_text, num, tie_text)

    # names and warnings come from recipes and datasets: Markdown text, never markup (QA round 22: an arm name
    # was a remote image and a javascript: link in report.md)
    pm = {**s["primary_metric"], "name": md_text(s["primary_metric"]["name"]), "label": md_text(s["primary_metric"]["label"])}
    dec = metric_decimals({"primary_metric": pm, "baseline": {"metrics": {}}, "delta": s["delta"]})
    lines = ["# Augmentation ablation across folds", "", f"> {s['controls']['headline']}", ""]
    failed = [a["name"] for a in s["arms"] if a["decision"] == "failed"]
    family = [a for a in s["arms"] if a["decision"] != "failed" and a["primary"]["folds_used"]]  # as pool's Holm
    for w in s["warnings"]:
        lines += [f"> **Warning:** {md_text(w, code_spans=True)}", ""]
    lines += ["## Folds", "", "Seeds used: the paired seeds the fold has, of those the analysis would use.", "",
              "| fold (test split) | folder | design | seeds used | runs ok | failed |", "|---|---|---|---:|---:|---:|"]
    for f in s["folds"]:
        planned = f.get("seeds_planned", f["max_seeds"])
        of = f"{f['seeds_used']} of {planned}" + (f" (first look; up to {f['max_seeds']})" if planned != f["max_seeds"] else "")
        lines.append(f"| {md_text(f['fold'])} | {md_code(f['folder'])} | {f['design']} | {of} | "
                     f"{f['runs_ok']} | {f['runs_failed']} |")
    lines += ["", f"Primary metric: **{pm['name']}** in {pm['label']}, {'higher' if pm['higher_is_better'] else 'lower'} is "
              f"better. {holm_family_text(s['alpha'], len(family), failed)}. Smallest effect of "
              f"interest δ = {num(s['delta']['value'], dec, sign=False)} ({s['delta']['source']}).", "",
              "A unit is one (fold, seed): the paired difference arm − baseline of that seed in that fold. The pooled Δ is "
              "the mean over the folds of each fold's mean Δ — every fold weighs the same, whatever its seeds — so it "
              "estimates the effect averaged over the folds, as a cross-validated score does; the verdicts hold for this "
              "dataset's folds. Verdicts as in a single ablation's report (docs/ablation.md).", "",
              f"## Confirmatory: {pm['name']}", "",
              "| arm | folds | units | pooled Δ | se | interval (level) | p unadjusted | p Holm | decision |",
              "|---|---:|---:|---:|---:|---|---:|---:|---|"]
    order = arm_order(s["arms"], pm["higher_is_better"])
    for a in order:
        e = a["primary"]
        flag = " ⚠ folds disagree in sign" if e["sign_disagreement"] else ""
        p = "—" if e["p_value"] is None else f"{e['p_value']:.4f}"
        ph = "—" if e["p_holm"] is None else f"{e['p_holm']:.4f}"
        lines.append(f"| {md_text(a['name'])} | {len(e['folds_used'])} | {e['units']} | {num(e['mean_diff'], dec)} | "
                     f"{num(e['se'], dec, sign=False)} | {interval_cell(a, dec)} | {p} | "
                     f"{ph} | **{a['decision']}**{flag} |")
    lines += ["", "Interval: the shifts the decision's own test does not reject (exact sign-flip test over the units, at "
              "the arm's Holm level α/k); it excludes 0 exactly when the arm is declared to help or hurt. se: the "
              "stratified standard error sqrt(Σ s_k²/n_k)/K, for reading only."]
    lines += tie_text(s["arms"], dec)
    lines += delta_zero_text(s["arms"], s["delta"]["value"], dec)
    left = [(a["name"], [(p["fold"], p.get("left_out_because", "fewer than 2 paired seeds")) for p in a["primary"]["per_fold"]
                         if not p["used"]]) for a in order]
    left = [(n, fs) for n, fs in left if fs]
    if left:
        lines += ["", "Folds left out of an arm (fewer than 2 paired seeds there; why in parentheses): "
                  + "; ".join(f"{md_code(n)}: {', '.join(f'{md_text(k)} ({why})' for k, why in fs)}" for n, fs in left) + "."]
    folds = [f["fold"] for f in s["folds"]]
    lines += ["", "## Per fold", "", "Mean Δ (paired seeds) of each arm in each fold; a fold's own test and verdict are in "
              "its folder's report.md. An arm whose folds disagree in sign (one of them past ±δ) is flagged ⚠.", "",
              "**Differ across folds?** An exploratory test of the fold-by-arm interaction (no verdict, outside the "
              f"Holm family): {HETEROGENEITY_METHOD}. An arm at p < {HETEROGENEITY_FLAG} reads **folds differ**: its "
              "pooled Δ averages effects that are not the same on every fold. A large p does not show that they are the "
              "same.", "",
              "| arm | " + " | ".join(f"fold {md_text(k)}" for k in folds) + " | differ across folds? |",
              "|---|" + "---:|" * len(folds) + "---|"]
    for a in order:
        e = a["primary"]
        by = {p["fold"]: p for p in e["per_fold"]}
        # a fold left out of the arm reads so, not as a number beside those the pooled Δ averages
        cells = [("—" if k not in by else f"{num(by[k]['mean_diff'], dec)} ({by[k]['n_seeds']})" if by[k]["used"]
                  else f"left out ({by[k]['n_seeds']} seed{'' if by[k]['n_seeds'] == 1 else 's'}; "
                       f"{by[k].get('left_out_because', 'fewer than 2 paired seeds')})") for k in folds]
        het = _het_text(e["heterogeneity"]) + (" **folds differ**" if _differs_across_folds(e) else "")
        lines.append(f"| {md_text(a['name'])}{' ⚠' if e['sign_disagreement'] else ''} | " + " | ".join(cells) + f" | {het} |")
    if fig:
        drawn, hidden = _drawn(s)
        if hidden:  # the tables above have every arm; the figure a chosen few
            lines += ["", "**Figure:** " + not_drawn_text(drawn, hidden, dec, pm["label"], where="the tables above")]
        from mmdata.ablate.report import _alt

        alt = _alt(f"Forest plot of {pm['label']}: for each arm drawn, the pooled mean paired difference arm − baseline "
                   f"over the folds with its interval; the tables above have the same numbers")
        lines += ["", f"![{alt}]({fig})"]
    metrics = [m for m in secondary if any(m in a["exploratory"] for a in s["arms"])]
    if metrics:
        lines += ["", "## Exploratory: other metrics (unadjusted, no verdicts)", "",
                  "Pooled Δ [95% t interval on the stratified se, unadjusted] per arm; "
                  + direction_text([(md_text(secondary[m][0]), secondary[m][2]) for m in metrics]) + ". Not corrected for the number of "
                  "metrics or arms; leads for a follow-up ablation, not findings.", "",
                  "| arm | " + " | ".join(md_text(secondary[m][0]) for m in metrics) + " |", "|---|" + "---|" * len(metrics)]
        fewer = False
        for a in order:
            cells = []
            for m in metrics:
                e = a["exploratory"].get(m)
                # runs whose metric was missing, NaN or ±inf are left out: say how many it used (QA)
                short = f" ({e['units']} of {a['n_seeds']} runs)" if e and e["units"] < a["n_seeds"] else ""
                fewer = fewer or bool(short)
                ci = (interval_text(e["ci95_t_unadjusted"]) if e and e["ci95_t_unadjusted"]
                      else f"({e.get('ci95_t_note', 'no interval')})" if e else "")
                cells.append(f"{num(e['mean_diff'])} {ci}{short}" if e else "—")
            lines.append(f"| {md_text(a['name'])} | " + " | ".join(cells) + " |")
        if fewer:
            lines += ["", "*k of n runs*: the metric was missing, NaN or ±inf on the arm's or the baseline's other "
                      "(fold, seed) runs, or a fold had too few of them (each fold's `runs.parquet` has the values); "
                      "those runs are left out of its Δ and interval."]
    if s["failures"]:
        lines += ["", "## Failures", "", "| fold | arm | seed | error |", "|---|---|---:|---|"]
        # each fold's failures in the arm order of every table here and of a single report (baseline first)
        rank = {name: i for i, name in enumerate([s["baseline"], *(a["name"] for a in order)])}
        fold_at = {f["fold"]: i for i, f in enumerate(s["folds"])}
        for f in sorted(s["failures"], key=lambda f: (fold_at.get(f["fold"], len(fold_at)), rank.get(f["arm"], len(rank)),
                                                      str(f["arm"]), f["seed"])):
            lines.append(f"| {md_text(f['fold'])} | {md_text(f['arm'])} | {f['seed']} | {md_text(str(f['error'])[:200])} |")
        lines += ["", "Rerun that fold's `mmdata ablate` to retry them, then this command."]
    lines += ["", "---", "", f"Method: {s['test']}."]
    return "\n".join(lines) + "\n"
