"""Simulation of the ablation designs: family-wise error of A/A families, power and runs of the
adaptive design against the fixed 20-seed design, with the noise of real avdigits runs.

The procedure simulated is the library's own: :func:`mmdata.ablate.schedule.walk` (the decisions the
runner's scheduler replays at every look) on paired differences of simulated runs, so what is
measured is what ``mmdata ablate --adaptive`` does.

Noise model, per seed ``s`` and configuration ``a`` (accuracy points; defaults measured by
``benchmarks/aa_calibration.py`` and ``benchmarks/crn_pairing.py`` on avdigits):

    y[a, s] = mu + effect[a] + u[s] + rho[a] * c[s] + sqrt(1 - rho[a]^2) * e[a, s]

``u`` the seed effect (init, data order; sd ``--seed-sd``), ``c``/``e`` augmentation-draw effects (sd
``--draw-sd``): the baseline's draws are ``c``; an arm shares them with correlation ``rho`` (the
leave-one-out arms under common random numbers, ``--rho``; the identity control shares none); every
accuracy is rounded to whole test examples (360). Effects are in units of the arm's paired-difference
sd. A family is the demo's: 8 arms (identity + 7 others) and the baseline.

    .venv/bin/python benchmarks/adaptive_sim.py --aa 10000 --power 2000      # ~1 h on a busy 2-core box
    .venv/bin/python benchmarks/adaptive_sim.py --report-aa 200                # full runner + report, synthetic trainer
    .venv/bin/python benchmarks/adaptive_sim.py --aa 0 --power 0 --sweep 400 --confirm 250   # design sweep (~10 min)
    .venv/bin/python benchmarks/adaptive_sim.py --aa 0 --power 0 --sparse 8000 --confirm 2000  # sparse families (~15 min)

``--sparse N`` asks the same of families in which only ``k`` of the 8 arms have an effect (k = 1, 2, 4;
the rest, the identity control among them, are null), the usual shape of an ablation: it screens a
grid of designs on ``N`` families per (k, effect) and checks the default and the best screened
designs with the exact procedure (``--confirm`` families per cell, default ``N / 4``).

``--sweep N`` screens a grid of designs (first look, spacing, maximum seeds, spending function,
futility threshold and rule) on ``N`` families per effect size with a vectorised simulator: the same
walk (Holm recycling, non-binding futility, baseline runs as far as the furthest open arm), but the
boundaries are those of the self-normalised sum ``T = sum(d) / sqrt(sum(d^2))`` under a continuous
null (Monte-Carlo over random signs), not the exact sign-flip reference set. The screen ignores the
discreteness of the exact test (at 10 seeds its smallest two-sided p is 2/1024, at 8 seeds 2/256), so
it is optimistic about early rejections; ``--confirm N`` therefore re-runs the current design and the
best screened ones (maximum 20 seeds, library spending functions) through the library's exact
procedure on ``N`` families per effect.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

from mmdata.ablate.schedule import FUTILITY, Design, default_looks, walk  # noqa: E402
from mmdata.ablate.stats import SPENDING  # noqa: E402

STEP = 100 / 360


def family(rng: np.random.Generator, effects: list[float], rhos: list[float], seed_sd: float, draw_sd: float,
           n: int = 20) -> dict[str, dict[int, float]]:
    """Paired differences (arm - baseline) of one simulated family."""
    u = rng.normal(0, seed_sd, n)
    c = rng.normal(0, draw_sd, n)
    q = lambda v: np.round(v / STEP) * STEP  # noqa: E731
    base = q(83 + u + c)
    out = {}
    for i, (th, r) in enumerate(zip(effects, rhos)):
        sd_d = draw_sd * math.sqrt(2 * (1 - r))
        y = 83 + u + r * c + math.sqrt(1 - r * r) * rng.normal(0, draw_sd, n) + th * sd_d
        out[f"a{i}"] = dict(enumerate(q(y) - base))
    return out


def outcome(diffs: dict[str, dict[int, float]], design: Design) -> tuple[np.ndarray, np.ndarray, int]:
    """(rejected, direction of the mean, runs) of one family under ``design``."""
    st = walk(diffs, design, len(design.looks.sizes))
    n = [st.arms[a].stopped_at for a in diffs]
    rej = np.array([st.arms[a].status == "rejected" for a in diffs])
    sign = np.array([np.sign(np.mean([v for s, v in diffs[a].items() if s < st.arms[a].stopped_at])) for a in diffs])
    return rej, sign, max(n) + sum(n)


def simulate(effects: list[float], rhos: list[float], reps: int, args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Power, family-wise error and runs of the adaptive and the fixed design on ``reps`` families."""
    rng = np.random.default_rng(seed)
    ad, fx = Design.sequential(20, futility=args.futility), Design.fixed(20)
    eff = np.array(effects)
    hits = {"adaptive": 0.0, "fixed": 0.0}
    fam_fp = {"adaptive": 0, "fixed": 0}
    runs = 0
    t0 = time.perf_counter()
    for rep in range(reps):
        if rep and rep % 1000 == 0:
            print(f"  ... {rep} families, {time.perf_counter() - t0:.0f} s", flush=True)
        d = family(rng, effects, rhos, args.seed_sd, args.draw_sd)
        for name, design in (("adaptive", ad), ("fixed", fx)):
            rej, sign, n = outcome(d, design)
            if (eff != 0).any():
                hits[name] += float(np.mean((rej & (sign == np.sign(eff)))[eff != 0]))
            fam_fp[name] += bool((rej & (eff == 0)).any())
            if name == "adaptive":
                runs += n
    full = (len(effects) + 1) * 20
    return {"power_adaptive": hits["adaptive"] / reps, "power_fixed": hits["fixed"] / reps,
            "fwer_adaptive": fam_fp["adaptive"] / reps, "fwer_fixed": fam_fp["fixed"] / reps,
            "runs_fraction": runs / (reps * full), "families": reps}


# ---------------------------------------------------------------------------------------------
# the design sweep: a vectorised screen, then the exact procedure on the best candidates


def families(rng: np.random.Generator, reps: int, effects: list[float], rhos: list[float], seed_sd: float,
             draw_sd: float, n: int = 20) -> np.ndarray:
    """``[family, arm, seed]`` paired differences of ``reps`` families (the model of :func:`family`)."""
    u = rng.normal(0, seed_sd, (reps, 1, n))
    c = rng.normal(0, draw_sd, (reps, 1, n))
    base = np.round((83 + u + c) / STEP) * STEP
    r = np.array(rhos)[None, :, None]
    th = np.array(effects)[None, :, None]
    y = 83 + u + r * c + np.sqrt(1 - r * r) * rng.normal(0, draw_sd, (reps, len(effects), n)) + th * draw_sd * np.sqrt(2 * (1 - r))
    return np.round(y / STEP) * STEP - base


_BOUNDS: dict[tuple, np.ndarray] = {}


def screen_bounds(looks: tuple[int, ...], m: int, spending: str, alpha: float = 0.05, paths: int = 200_000) -> np.ndarray:
    """``[look, s - 1]``: boundary of ``|T|`` at level ``alpha / s`` (continuous null, Monte-Carlo)."""
    key = (looks, m, spending, alpha)
    if key not in _BOUNDS:
        rng = np.random.default_rng(123)
        x = rng.choice([-1.0, 1.0], size=(paths, looks[-1])) * np.abs(rng.normal(size=(paths, looks[-1])))
        S, Q = np.cumsum(x, 1), np.cumsum(x * x, 1)
        T = np.abs(np.stack([S[:, n - 1] / np.sqrt(Q[:, n - 1]) for n in looks], 1))
        c = np.full((len(looks), m), np.inf)
        for s in range(m):
            dead = np.zeros(paths, dtype=bool)
            for j, n in enumerate(looks):
                k = math.floor(SPENDING[spending](alpha / (s + 1), n / looks[-1]) * paths) - int(dead.sum())
                alive = np.sort(T[~dead, j])[::-1]
                if k <= 0:
                    continue
                c[j, s] = alive[k] if k < len(alive) else -np.inf
                dead |= T[:, j] > c[j, s]
        _BOUNDS[key] = c
    return _BOUNDS[key]


def holm_rejected(crossed: np.ndarray) -> np.ndarray:
    """Holm's step-down on nested tests, for many families at once (the vectorised
    :func:`mmdata.ablate.stats.holm_levels`): ``crossed[f, i, s]`` says arm ``i`` of family ``f``
    crossed at level ``alpha / (s + 1)``; returns the rejected arms, bool ``[F, m]``."""
    F, m, _ = crossed.shape
    fi, ai = np.arange(F)[:, None], np.arange(m)[None, :]
    rej = np.zeros((F, m), dtype=bool)
    while True:
        left = ~rej
        hit = left & crossed[fi, ai, np.clip(left.sum(1) - 1, 0, m - 1)[:, None]]
        if not hit.any():
            return rej
        rej |= hit


def screen(D: np.ndarray, looks: tuple[int, ...], spending: str, futility: float, rule: str = "estimate",
           alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The walk of :func:`mmdata.ablate.schedule.walk`, vectorised over families, on approximate
    boundaries. ``rule``: conditional power under the current estimate (``estimate``, the library's)
    or under an effect of 0.75 sd (``delta``). Returns (rejected, sign of the mean at the stop, runs)."""
    from scipy.special import ndtr, ndtri

    F, m, _ = D.shape
    M, K = looks[-1], len(looks)
    c = screen_bounds(looks, m, spending, alpha)
    cs, cq = np.cumsum(D, 2), np.cumsum(D * D, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        T = np.abs(np.nan_to_num(np.stack([cs[:, :, n - 1] / np.sqrt(cq[:, :, n - 1]) for n in looks], 2)))
    status = np.zeros((F, m), dtype=np.int8)  # 0 open, 1 rejected, 2 stopped
    stopped = np.full((F, m), M)
    ever = np.zeros((F, m, m), dtype=bool)  # crossed at level alpha/(s+1) at a look the arm reached
    for j in range(K):
        ever |= (T[:, :, j, None] > c[None, None, j, :]) & (status == 0)[:, :, None]
        rej = holm_rejected(ever)
        stopped[rej & (status == 0)] = looks[j]
        status[rej] = 1
        if j == K - 1 or futility <= 0:
            continue
        n = looks[j]
        d = D[:, :, :n]
        sd = d.std(2, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            theta = np.where(sd > 0, np.abs(d.mean(2)) / sd, 0.0)
        crit = -ndtri(alpha / np.maximum((~rej).sum(1), 1) / 2)[:, None]
        drift = theta if rule == "estimate" else 0.75
        cp = 1 - ndtr((crit * math.sqrt(M) - theta * n - drift * (M - n)) / math.sqrt(M - n))
        stop = (status == 0) & (cp < futility)
        status[stop], stopped[stop] = 2, n
    mean_at_stop = np.take_along_axis(cs, (stopped - 1)[:, :, None], 2)[:, :, 0]
    return status == 1, np.sign(mean_at_stop), stopped.max(1) + stopped.sum(1)


def sweep(reps: int, confirm: int, args: argparse.Namespace, rhos: list[float]) -> dict[str, object]:
    """Screen the grid, print the frontier, confirm the best with the exact procedure."""
    effects = (0.5, 1.0, 1.5, 2.0)
    data = {th: families(np.random.default_rng(int(10 * th) + 17), reps, [th] * 8, rhos, args.seed_sd, args.draw_sd, 24)
            for th in effects}
    fixed = {th: float(np.mean(screen(data[th][:, :, :20], (20,), "hsd", 0.0)[0])) for th in effects}
    grid = []
    for M in (20, 24):
        for first, step in ((0.3, 2), (0.4, 2), (0.5, 2), (0.3, 1), (0.25, 5), (0.4, 4)):
            looks = tuple(sorted({max(4, round(first * M)), *range(max(4, round(first * M)), M, step), M}))
            for spending in ("hsd", "hsd-2", "linear", "obf"):
                for fut in (0.02, 0.05, 0.1, 0.2, 0.3):
                    for rule in (("estimate", "delta") if M == 20 else ("estimate",)):
                        grid.append((looks, spending, fut, rule))
    t0 = time.perf_counter()
    rows = []
    for looks, spending, fut, rule in grid:
        row: dict[str, object] = {"looks": list(looks), "spending": spending, "futility": fut, "rule": rule}
        for th in effects:
            rej, sign, runs = screen(data[th][:, :, : looks[-1]], looks, spending, fut, rule)
            row[f"ratio_{th}"] = float(np.mean(rej & (sign > 0))) / fixed[th]
            row[f"runs_{th}"] = float(runs.mean()) / (9 * 20)
        row["min_ratio"] = min(row[f"ratio_{th}"] for th in effects)
        row["max_runs"] = max(row[f"runs_{th}"] for th in effects)
        rows.append(row)
    print(f"screen: {len(grid)} designs x {len(effects)} effects x {reps} families in {time.perf_counter() - t0:.0f} s; "
          f"fixed-20 power (screen) " + ", ".join(f"{th} sd {fixed[th]:.3f}" for th in effects))
    meets = [r for r in rows if r["min_ratio"] >= 0.95 and r["max_runs"] <= 0.65]
    print(f"designs meeting power ratio >= 0.95 with runs <= 0.65 at every effect: {len(meets)} of {len(rows)}")

    def show(r: dict) -> str:
        return (f"looks {r['looks']} {r['spending']} futility {r['futility']} ({r['rule']}): " +
                "  ".join(f"{th}sd {r[f'ratio_{th}']:.2f}/{r[f'runs_{th}']:.2f}" for th in effects))

    print("best power ratio at 0.5 sd among designs with runs <= 0.65 at 0.5 sd (ratio/runs per effect):")
    for r in sorted([r for r in rows if r["runs_0.5"] <= 0.65], key=lambda r: -r["ratio_0.5"])[:5]:
        print("  " + show(r))
    print("fewest runs (worst effect) among designs keeping power ratio >= 0.95 at 1-2 sd and >= 0.8 at 0.5 sd:")
    keep = sorted([r for r in rows if min(r[f"ratio_{th}"] for th in effects[1:]) >= 0.95 and r["ratio_0.5"] >= 0.8],
                  key=lambda r: r["max_runs"])
    for r in keep[:8]:
        print("  " + show(r))
    out: dict[str, object] = {"reps": reps, "fixed_power_screen": fixed, "designs": rows}
    if confirm:
        current = (default_looks(20).sizes, "hsd", FUTILITY)
        cands = [current] + [(tuple(r["looks"]), r["spending"], r["futility"]) for r in keep
                             if r["looks"][-1] == 20 and r["rule"] == "estimate"][:4]
        cands += [(tuple(r["looks"]), r["spending"], r["futility"]) for r in
                  sorted([r for r in rows if r["looks"][-1] == 20 and r["rule"] == "estimate" and r["runs_0.5"] <= 0.65],
                         key=lambda r: -r["ratio_0.5"])[:2]]
        cands = list(dict.fromkeys(cands))
        conf = []
        for th in effects:
            rng = np.random.default_rng(int(10 * th) + 3)
            fams = [family(rng, [th] * 8, rhos, args.seed_sd, args.draw_sd) for _ in range(confirm)]
            fx = sum(float(np.mean(outcome(d, Design.fixed(20))[0])) for d in fams) / confirm
            for looks, spending, fut in cands:
                design = Design.sequential(20, looks, futility=fut, spending=spending)
                p = runs = 0.0
                for d in fams:
                    rej, sign, n = outcome(d, design)
                    p += float(np.mean(rej & (sign > 0)))
                    runs += n
                conf.append({"looks": list(looks), "spending": spending, "futility": fut, "effect_sd": th,
                             "power": p / confirm, "power_fixed": fx, "ratio": p / confirm / max(fx, 1e-9),
                             "runs_fraction": runs / (confirm * 180)})
        print(f"exact procedure, {confirm} families per effect (power ratio / runs share of the fixed 20-seed design):")
        for looks, spending, fut in cands:
            cells = [c for c in conf if (tuple(c["looks"]), c["spending"], c["futility"]) == (looks, spending, fut)]
            tag = " (current)" if (looks, spending, fut) == current else ""
            print(f"  looks {list(looks)} {spending} futility {fut}{tag}: " +
                  "  ".join(f"{c['effect_sd']}sd {c['ratio']:.2f}/{c['runs_fraction']:.2f}" for c in cells), flush=True)
        out["confirmed"] = conf
    return out


def sparse(reps: int, confirm: int, args: argparse.Namespace, rhos: list[float]) -> dict[str, object]:
    """Families where ``k`` of the 8 arms have the effect and the rest are null: screen, then exact check.

    Power is over the arms with an effect, runs over the whole family (the null arms are where a
    futility rule saves runs). The last ``k`` arms carry the effect, so the identity control
    (arm 0, no shared draws) is always among the null ones."""
    effects, ks = (0.5, 1.0, 1.5, 2.0), (1, 2, 4)

    def eff(k: int, th: float) -> list[float]:
        return [0.0] * (8 - k) + [th] * k

    looks_grid = [(10, 12, 14, 16, 18, 20), (10, 15, 20), (9, 14, 20), (8, 14, 20), (8, 12, 16, 20), (10, 20),
                  (6, 10, 15, 20), (9, 13, 17, 20)]
    grid = [(lk, sp, fut) for lk in looks_grid for sp in ("hsd", "hsd-2", "obf") for fut in (0.01, 0.02, 0.03, 0.05, 0.1)]
    t0 = time.perf_counter()
    rows: list[dict[str, object]] = []
    data = {}
    for k in ks:
        for th in effects:
            D = families(np.random.default_rng(1000 * k + int(10 * th)), reps, eff(k, th), rhos, args.seed_sd, args.draw_sd)
            live = np.array(eff(k, th)) != 0
            rej, sign, _ = screen(D, (20,), "hsd", 0.0)
            data[k, th] = (D, live, float(np.mean((rej & (sign > 0))[:, live])))
    for looks, spending, fut in grid:
        row: dict[str, object] = {"looks": list(looks), "spending": spending, "futility": fut}
        for k in ks:
            for th in effects:
                D, live, fixed = data[k, th]
                rej, sign, runs = screen(D, looks, spending, fut)
                row[f"ratio_{k}_{th}"] = float(np.mean((rej & (sign > 0))[:, live])) / fixed
                row[f"runs_{k}_{th}"] = float(runs.mean()) / (9 * 20)
            row[f"meets_{k}"] = all(row[f"ratio_{k}_{th}"] >= 0.95 and row[f"runs_{k}_{th}"] <= 0.65 for th in effects)
        rows.append(row)
    print(f"sparse screen: {len(grid)} designs x {len(ks)} k x {len(effects)} effects x {reps} families in "
          f"{time.perf_counter() - t0:.0f} s; fixed-20 power (screen, k = 1): "
          + ", ".join(f"{th} sd {data[1, th][2]:.3f}" for th in effects), flush=True)

    def cells(r: dict, k: int) -> str:
        return "  ".join(f"{th}sd {r[f'ratio_{k}_{th}']:.3f}/{r[f'runs_{k}_{th}']:.2f}" for th in effects)

    best: dict[tuple[int, str], dict] = {}
    for k in ks:
        n = sum(r[f"meets_{k}"] for r in rows)
        print(f"k = {k} of 8 arms with the effect: {n} of {len(rows)} designs meet power ratio >= 0.95 with runs <= 0.65 at every effect")
        # the frontier: the most power at 0.5 sd among designs within the runs target at every effect
        within = [r for r in rows if all(r[f"runs_{k}_{th}"] <= 0.65 for th in effects)]
        if within:
            best[k, "within"] = max(within, key=lambda r: r[f"ratio_{k}_0.5"])
        for r in sorted(within, key=lambda r: -r[f"ratio_{k}_0.5"])[:3]:
            print(f"  most power at 0.5 sd within 0.65 of the runs: looks {r['looks']} {r['spending']} futility {r['futility']}: {cells(r, k)}")
        keep = [r for r in rows if all(r[f"ratio_{k}_{th}"] >= 0.95 for th in effects)]
        for r in sorted(keep, key=lambda r: max(r[f"runs_{k}_{th}"] for th in effects))[:3]:
            print(f"  fewest runs keeping >= 0.95 of the power: looks {r['looks']} {r['spending']} futility {r['futility']}: {cells(r, k)}")
        if keep:
            best[k, "keep"] = min(keep, key=lambda r: max(r[f"runs_{k}_{th}"] for th in effects))
    default = (default_looks(20).sizes, "hsd", FUTILITY)
    cands = list(dict.fromkeys([default] + [(tuple(r["looks"]), r["spending"], r["futility"]) for r in best.values()]))
    conf = exact_sparse(cands, ks, confirm, args, rhos) if confirm else []
    return {"reps": reps, "confirm": confirm, "designs": rows, "confirmed": conf}


def _sparse_eff(k: int, th: float) -> list[float]:
    return [0.0] * (8 - k) + [th] * k  # the identity control (arm 0) is always among the null arms


def _exact_cell(job: tuple) -> list[dict[str, object]]:
    """One (k, effect) cell of the exact check: the fixed design and every candidate on the same families."""
    k, th, n, cands, seed_sd, draw_sd, rhos = job
    rng = np.random.default_rng(7000 + 1000 * k + int(10 * th))
    eff = _sparse_eff(k, th)
    fams = [family(rng, eff, rhos, seed_sd, draw_sd) for _ in range(n)]
    live = np.array(eff) != 0
    hits_fixed = np.array([float(np.mean(outcome(d, Design.fixed(20))[0][live])) for d in fams])
    out = []
    for looks, spending, fut in cands:
        design = Design.sequential(20, looks, futility=fut, spending=spending)
        hits, runs = np.zeros(n), np.zeros(n)
        for i, d in enumerate(fams):
            rej, sign, runs[i] = outcome(d, design)
            hits[i] = float(np.mean((rej & (sign == np.sign(th)))[live]))
        # the ratio's standard error by the delta method on the paired per-family hits (same families)
        pa, pf = hits.mean(), hits_fixed.mean()
        r = pa / max(pf, 1e-9)
        se = float(np.std(hits - r * hits_fixed, ddof=1) / math.sqrt(n) / max(pf, 1e-9))
        out.append({"k": k, "effect_sd": th, "looks": list(looks), "spending": spending, "futility": fut,
                    "power": float(pa), "power_fixed": float(pf), "ratio": float(r), "ratio_se": se,
                    "runs_fraction": float(runs.mean() / 180), "runs_se": float(runs.std(ddof=1) / math.sqrt(n) / 180)})
    return out


def exact_sparse(cands: list[tuple], ks: tuple[int, ...], n: int, args: argparse.Namespace, rhos: list[float],
                 effects: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)) -> list[dict[str, object]]:
    """The library's exact procedure on ``n`` families per (k, effect) cell, cells spread over processes."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(k, th, n, cands, args.seed_sd, args.draw_sd, rhos) for k in ks for th in effects]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        conf = [c for cell in pool.map(_exact_cell, jobs) for c in cell]
    default = (default_looks(20).sizes, "hsd", FUTILITY)
    print(f"exact procedure, {n} families per cell, {time.perf_counter() - t0:.0f} s (power ratio ± se / runs share of "
          f"the fixed 20-seed design; target >= 0.95 / <= 0.65):")
    for looks, spending, fut in cands:
        tag = " (default)" if (tuple(looks), spending, fut) == default else ""
        for k in ks:
            cs = [c for c in conf if c["k"] == k and (tuple(c["looks"]), c["spending"], c["futility"]) == (tuple(looks), spending, fut)]
            meets = all(c["ratio"] >= 0.95 and c["runs_fraction"] <= 0.65 for c in cs)
            print(f"  looks {list(looks)} {spending} futility {fut}{tag}, k = {k}{' MEETS' if meets else ''}: "
                  + "  ".join(f"{c['effect_sd']}sd {c['ratio']:.3f}±{c['ratio_se']:.3f}/{c['runs_fraction']:.3f}" for c in cs),
                  flush=True)
    return conf


def report_aa(families: int, out: Path) -> dict[str, float]:
    """Full pipeline A/A: the runner and the report on the synthetic trainer (real-run noise), all arms
    the baseline recipe with fresh augmentation seeds; counts families with any confirmatory verdict
    (helps/hurts in any form, any metric) in summary.json."""
    import shutil

    from mmdata.ablate import run
    from mmdata.datasets.avdigits import build

    data = out / "data"
    if not (data / "dataset.json").exists():
        build(data, limit=2, progress=False)
    recipe = {"image": [{"op": "random_crop", "p": 0.7, "size": [16, 16], "padding": 2}, {"op": "cutout", "p": 0.3}],
              "audio": [{"op": "noise", "p": 0.5}], "text": [{"op": "token_mask", "p": 0.3}]}
    bad = 0
    verdicts = 0
    for f in range(families):
        arms = {f"r{i}": {**recipe, "seed": 1000 * f + i + 1} for i in range(7)}
        cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}, "seeds": 20,
               "adaptive": True, "design": {"mode": "explicit", "baseline": {**recipe, "seed": 1000 * f}, "arms": arms},
               "controls": {"identity": True}}
        d = out / "fam"
        shutil.rmtree(d, ignore_errors=True)
        s = run(cfg, d, workers=1, progress=False, plots=False)
        text = json.dumps(s)
        conf = [a["decision"] for a in s["arms"] if a["decision"].split(" ")[0] in ("helps", "hurts")]
        # secondary metrics are exploratory: they must carry no verdict at all
        assert all("decision" not in e for a in s["arms"] for e in a["exploratory"].values()), text[:200]
        verdicts += len(conf)
        bad += bool(conf)
        if (f + 1) % 20 == 0:
            print(f"  report A/A: {f + 1} families, {bad} with a confirmatory verdict", flush=True)
    return {"families": families, "fwer_report": bad / families, "confirmatory_verdicts": verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aa", type=int, default=10000, help="A/A families")
    ap.add_argument("--power", type=int, default=2000, help="families per effect size")
    ap.add_argument("--report-aa", type=int, default=0, help="full-pipeline A/A families (runner + report)")
    ap.add_argument("--seed-sd", type=float, default=1.32, help="seed effect sd, accuracy points (measured)")
    ap.add_argument("--draw-sd", type=float, default=1.89, help="augmentation-draw sd, accuracy points (measured)")
    ap.add_argument("--rho", type=float, default=0.5, help="draw correlation of a leave-one-out arm with the baseline (measured)")
    ap.add_argument("--futility", type=float, default=0.1)
    ap.add_argument("--sweep", type=int, default=0, help="screen a grid of designs on this many families per effect")
    ap.add_argument("--confirm", type=int, default=0, help="with --sweep / --sparse: families per cell for the exact check")
    ap.add_argument("--sparse", type=int, default=0, help="screen designs on families with 1, 2 or 4 arms at the effect")
    ap.add_argument("--exact", default="", help="exact check only, of these designs: 'LOOKS/SPENDING/FUTILITY ...', "
                    "e.g. '9,14,20/obf/0.05 10,12,14,16,18,20/hsd/0.1', on --confirm families per (k, effect)")
    ap.add_argument("--ks", default="1,2,4,8", help="with --exact: arms with the effect per family")
    ap.add_argument("--workers", type=int, default=2, help="processes for the exact check")
    ap.add_argument("--out", type=Path, default=Path("runs/adaptive_sim"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rhos = [0.0] + [args.rho] * 7  # identity shares no draws; the others share under identity keying
    d = Design.sequential(20, futility=args.futility)
    print(f"machine: {machine()}")
    print(f"design: looks {list(d.looks.sizes)}, spending {d.looks.spending}, futility {args.futility}; fixed: 20 seeds; "
          f"8 arms + baseline; seed sd {args.seed_sd}, draw sd {args.draw_sd}, rho {args.rho}")
    results: dict[str, object] = {"params": vars(args) | {"out": str(args.out)}}
    t0 = time.perf_counter()
    if args.aa:
        r = simulate([0.0] * 8, rhos, args.aa, args, seed=1)
        se = math.sqrt(0.05 * 0.95 / args.aa)
        print(f"A/A ({args.aa} families): FWER adaptive {r['fwer_adaptive']:.4f}, fixed {r['fwer_fixed']:.4f} "
              f"(target <= 0.05; binomial se {se:.4f}); runs {r['runs_fraction']:.2f} of fixed  [{time.perf_counter() - t0:.0f} s]",
              flush=True)
        results["aa"] = r
    if args.power:
        rows = []
        for th in (0.5, 1.0, 1.5, 2.0):
            r = simulate([th] * 8, rhos, args.power, args, seed=int(10 * th))
            r["effect_sd"] = th
            rows.append(r)
            print(f"effect {th} sd, all 8 arms: power adaptive {r['power_adaptive']:.3f} / fixed {r['power_fixed']:.3f} = "
                  f"{r['power_adaptive'] / max(r['power_fixed'], 1e-9):.3f} (target >= 0.95); runs {r['runs_fraction']:.3f} "
                  f"of fixed (target <= 0.65)  [{time.perf_counter() - t0:.0f} s]", flush=True)
        mixed = [0.0, -4.0, 0.5, 1.0, 1.5, 2.0, 0.0, 1.0]  # identity, a label-noise-like arm, spread effects
        r = simulate(mixed, rhos, args.power, args, seed=99)
        r["effects"] = mixed
        rows.append(r)
        print(f"mixed family {mixed}: power adaptive {r['power_adaptive']:.3f} / fixed {r['power_fixed']:.3f} = "
              f"{r['power_adaptive'] / max(r['power_fixed'], 1e-9):.3f}; runs {r['runs_fraction']:.3f}; "
              f"FWER on the null arms adaptive {r['fwer_adaptive']:.4f}  [{time.perf_counter() - t0:.0f} s]", flush=True)
        results["power"] = rows
    if args.sweep:
        results["sweep"] = sweep(args.sweep, args.confirm, args, rhos)
    if args.exact:
        cands = [(tuple(int(x) for x in lk.split(",")), sp, float(f)) for lk, sp, f in (d.split("/") for d in args.exact.split())]
        results["exact"] = exact_sparse(cands, tuple(int(k) for k in args.ks.split(",")), args.confirm or 2000, args, rhos)
    if args.sparse:
        results["sparse"] = sparse(args.sparse, args.confirm or args.sparse // 4, args, rhos)
    if args.report_aa:
        r = report_aa(args.report_aa, args.out)
        print(f"report-wide A/A ({r['families']} families through the runner and report): families with any "
              f"confirmatory verdict {r['fwer_report']:.3f} (target <= 0.05)", flush=True)
        results["report_aa"] = r
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
