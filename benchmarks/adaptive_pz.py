"""A design family outside ``adaptive_sim.py --sweep``: two-stage adaptive designs with sample-size
re-estimation (promising zone), stage-wise tests combined by the inverse-normal method, Holm across
arms — screened against the fixed 20-seed design for the savings target of issue #9.

Per arm (two one-sided tests at ``alpha / (2 s)`` for Holm step ``s``): stage 1 runs ``n1`` seeds;
its one-sided p ``p1`` may cross an early efficacy boundary (``alpha1`` spent at ``n1 / n_plan``).
Otherwise its conditional power at the planned stage-2 size ``n_plan - n1`` under the current
estimate decides: below ``futility`` the arm stops; else stage 2 gets the fewest seeds in
``[n2_min, n2_max]`` that give conditional power ``cp_target``; if none does, ``n2_max`` seeds when
the planned conditional power is at least ``cp_lo`` (the promising zone), else the planned number.
Stage 2's new seeds give ``p2``; the arm crosses when ``w1 z(p1) + w2 z(p2) >= c`` with the weights
fixed by the plan (``w1^2 = n1 / n_plan``). Because stage-2 seeds are new and independent of stage 1,
``p2`` is a valid p-value given anything stage 1 showed, so the combination test keeps its level
however stage 1 sets the stage-2 size (Bauer & Köhne 1994; Lehmacher & Wassmer 1999), and
Holm's step-down over nested per-level tests is a closed test (levels of every Holm step computed).
The baseline runs as far as the furthest arm (its seeds pair with every arm's).

Two stage tests: ``t`` (paired t: exact for Gaussian differences, the screen) and ``signflip``
(exact sign-flip p at stage 1, Monte-Carlo sign-flip p at stage 2: valid for any symmetric noise,
discrete at small n — the exact check).

    .venv/bin/python benchmarks/adaptive_pz.py --screen 500       # 696 designs, paired-t stages (~2 min)
    .venv/bin/python benchmarks/adaptive_pz.py --check 10,20,30,3,hsd,0.05,0.9,0.3 --aa 10000 --power 2000
    .venv/bin/python benchmarks/adaptive_pz.py --bound            # the idealised futility reference (~3 min)

``--check`` takes ``n1,n_plan,n_max,n2_min,spending,futility,cp_target,cp_lo`` (``spending``: a
library spending function for the stage-1 efficacy boundary, or ``none``).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri, stdtr

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402
from adaptive_sim import families, holm_rejected  # noqa: E402

from mmdata.ablate.stats import SPENDING  # noqa: E402

EFFECTS = (0.5, 1.0, 1.5, 2.0)
ALPHA = 0.05
M = 8  # arms per family (identity + 7 leave-one-out), as in adaptive_sim.py


@functools.lru_cache(maxsize=None)
def boundaries(n1: int, n_plan: int, spending: str, m: int = M, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Per Holm step ``s`` (index ``s - 1``): the stage-1 z boundary and the final combination boundary
    ``c`` of the one-sided test at ``alpha / (2 s)`` (``w1 = sqrt(n1 / n_plan)``)."""
    w1, w2 = math.sqrt(n1 / n_plan), math.sqrt(1 - n1 / n_plan)
    z = np.linspace(-9, 9, 20001)
    phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    dz = z[1] - z[0]
    b1, c = np.empty(m), np.empty(m)
    for s in range(m):
        a = alpha / (2 * (s + 1))
        a1 = SPENDING[spending](a, n1 / n_plan) if spending != "none" else 0.0
        b1[s] = -ndtri(a1) if a1 > 0 else np.inf
        keep = z < b1[s]

        def err(cc: float) -> float:
            return a1 + float(np.sum((phi * (1 - ndtr((cc - w1 * z) / w2)))[keep]) * dz) - a

        lo, hi = 0.0, 8.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if err(mid) > 0 else (lo, mid)
        c[s] = hi
    return b1, c


def _z_t(S: np.ndarray, Q: np.ndarray, n: np.ndarray) -> np.ndarray:
    """One-sided (+) z-score of the paired t statistic from sums, sums of squares and counts."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (Q - S * S / n) / (n - 1)
        t = np.where(var > 0, S / n / np.sqrt(var / n), np.sign(S) * np.inf)
    p = np.clip(stdtr(np.maximum(n - 1, 1), -t), 1e-300, 1.0)  # P(T >= t)
    return np.where(n >= 2, -ndtri(p), 0.0)


_PAT: dict[int, np.ndarray] = {}


def _z_signflip(x: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One-sided (+) z of the sign-flip p of each row's first ``n`` values (exact up to 12 seeds,
    else 4,095 random patterns + the observed: (b + 1) / (N + 1)); ``x`` [rows, max n]."""
    out = np.zeros(len(x))
    for k in np.unique(n):
        rows = np.flatnonzero(n == k)
        if k < 2:
            continue
        if k <= 12:
            if k not in _PAT:
                _PAT[k] = 1.0 - 2.0 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)
            E = _PAT[k]
            xs = x[rows, :k]
            stats = xs @ E.T
            obs = xs.sum(1)[:, None]
            p = np.mean(stats >= obs - 1e-9, 1)
        else:
            p = np.empty(len(rows))
            for lo in range(0, len(rows), 256):
                r = rows[lo:lo + 256]
                E = rng.choice([-1.0, 1.0], size=(4095, k))
                stats = x[r, :k] @ E.T
                obs = x[r, :k].sum(1)[:, None]
                p[lo:lo + len(r)] = (np.sum(stats >= obs - 1e-9, 1) + 1) / 4096
        out[rows] = -ndtri(np.clip(p, 1e-300, 1.0))
    return out


def run_design(D: np.ndarray, design: tuple, test: str = "t", rng: np.random.Generator | None = None,
               alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``D`` [family, arm, seed] paired differences. Returns (rejected, direction, runs per family)."""
    n1, n_plan, n2_max, n2_min, spending, fut, cp_target, cp_lo = design
    F, m, _ = D.shape
    n2p = n_plan - n1
    w1, w2 = math.sqrt(n1 / n_plan), math.sqrt(n2p / n_plan)
    b1, c = boundaries(n1, n_plan, spending, m, alpha)
    rng = rng or np.random.default_rng(0)
    # stage 1, both directions: z1 in the direction of the stage-1 mean
    d1 = D[:, :, :n1]
    S1, Q1 = d1.sum(2), (d1 * d1).sum(2)
    if test == "t":
        z1p = _z_t(S1, Q1, np.full(S1.shape, n1))
    else:
        z1p = _z_signflip(d1.reshape(F * m, n1), np.full(F * m, n1), rng).reshape(F, m)
        zneg = _z_signflip(-d1.reshape(F * m, n1), np.full(F * m, n1), rng).reshape(F, m)
        z1p = np.where(S1 >= 0, z1p, -zneg)  # keep the sign convention: z1 > 0 means the + direction
    sgn = np.where(S1 >= 0, 1.0, -1.0)
    z1 = np.abs(z1p)  # in the direction of the estimate
    # Holm at stage 1 on nested boundaries (b1 increases with s)
    cross1 = z1[:, :, None] >= b1[None, None, :]
    rej1 = holm_rejected(cross1)
    # conditional power at the current Holm level, under the current estimate
    s_now = np.clip((~rej1).sum(1) - 1, 0, m - 1)
    c_now = c[s_now][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        sd1 = np.sqrt(np.maximum((Q1 - S1 * S1 / n1) / (n1 - 1), 0))
        theta = np.where(sd1 > 0, np.abs(S1) / n1 / sd1, 0.0)

    def cp(n2: np.ndarray | int) -> np.ndarray:
        return 1 - ndtr((c_now - w1 * z1) / w2 - theta * np.sqrt(n2))

    open_ = ~rej1
    cp_plan = cp(n2p)
    futile = open_ & (cp_plan < fut)
    cont = open_ & ~futile
    n2 = np.full((F, m), n2p)
    found = np.zeros((F, m), dtype=bool)
    for k in range(n2_min, n2_max + 1):
        ok = (cp(k) >= cp_target) & ~found
        n2[ok] = k
        found |= ok
    n2 = np.where(found, n2, np.where(cp_plan >= cp_lo, n2_max, n2p))
    n2 = np.where(cont, n2, 0)
    # stage 2 on the new seeds only
    idx = np.arange(D.shape[2])[None, None, :]
    mask = (idx >= n1) & (idx < n1 + n2[:, :, None])
    d2 = np.where(mask, D, 0.0) * sgn[:, :, None]  # in the direction of the stage-1 estimate
    if test == "t":
        z2 = _z_t(d2.sum(2), (d2 * d2).sum(2), n2.astype(float))
    else:
        x = np.zeros((F * m, max(int(n2.max()), 2)))
        flat = d2.reshape(F * m, -1)
        nf = n2.reshape(-1)
        for i in np.flatnonzero(nf):
            x[i, : nf[i]] = flat[i, n1 : n1 + nf[i]]
        z2 = _z_signflip(x, nf, rng).reshape(F, m)
    comb = w1 * z1[:, :, None] + w2 * z2[:, :, None]
    cross = cross1 | (cont[:, :, None] & (comb >= c[None, None, :]))
    rej = holm_rejected(cross)
    n_arm = n1 + n2
    runs = n_arm.max(1) + n_arm.sum(1)
    return rej, sgn, runs


def fixed(D: np.ndarray, n: int = 20, test: str = "t", rng: np.random.Generator | None = None) -> np.ndarray:
    """Rejections of the fixed ``n``-seed design (Holm at ALPHA, two-sided)."""
    d = D[:, :, :n]
    F, m, _ = d.shape
    if test == "t":
        z = np.abs(_z_t(d.sum(2), (d * d).sum(2), np.full((F, m), n)))
        p = 2 * ndtr(-z)
    else:
        from mmdata.ablate.stats import sign_flip_p

        p = np.array([[sign_flip_p(d[f, a]) for a in range(m)] for f in range(F)])
    order = np.argsort(p, 1)
    ps = np.take_along_axis(p, order, 1)
    ok = ps <= ALPHA / (m - np.arange(m))[None, :]
    first_fail = np.where(ok.all(1), m, np.argmin(ok, 1))
    rej_sorted = np.arange(m)[None, :] < first_fail[:, None]
    rej = np.zeros_like(rej_sorted)
    np.put_along_axis(rej, order, rej_sorted, 1)
    return rej


def evaluate(design: tuple, data: dict[float, np.ndarray], fixed_power: dict[float, float], test: str = "t",
             seed: int = 0) -> dict[str, float]:
    row: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    for th, D in data.items():
        rej, sgn, runs = run_design(D, design, test, rng)
        power = float(np.mean(rej & (sgn > 0)))
        row[f"ratio_{th}"] = power / max(fixed_power[th], 1e-9)
        row[f"power_{th}"] = power
        row[f"runs_{th}"] = float(runs.mean()) / ((M + 1) * 20)
    row["min_ratio"] = min(row[f"ratio_{th}"] for th in data)
    row["max_runs"] = max(row[f"runs_{th}"] for th in data)
    return row


def grid() -> list[tuple]:
    out = []
    for n1, n_plan in ((6, 16), (6, 20), (8, 16), (8, 20), (10, 20)):
        n2p = n_plan - n1
        for n2_max in sorted({n2p, 20 - n1, 30 - n1, 40 - n1}):
            if n2_max < n2p:
                continue
            for n2_min in (3,):  # the fewest stage-2 seeds (a t test needs 3); a larger minimum adds runs exactly where effects are large
                for spending, fut, cp_target, cp_lo in itertools.product(("hsd", "linear", "none"), (0.05, 0.1, 0.2, 0.3),
                                                                         (0.8, 0.9), (0.3, 0.5)):
                    if n2_max == n2p and cp_lo != 0.5:
                        continue  # no promising zone without room to grow: cp_lo does nothing
                    out.append((n1, n_plan, n2_max, n2_min, spending, fut, cp_target, cp_lo))
    return out


def bound(families_: int = 6000, seed: int = 0) -> list[dict[str, object]]:
    """An idealised upper reference for designs that stop arms for futility: Gaussian differences with
    known sd (z-tests, no discreteness), a look after every seed from ``first``, a straight-line
    futility boundary ``S_n < a + b n`` on the running sum of the differences in sd units (the shape
    of an SPRT's lower boundary), no alpha spent before the last look, the last look at ``n_max`` seeds tested at the
    fixed design's first Holm level (alpha / 8, two-sided); 8 independent arms, the baseline as far
    as the furthest arm. Per maximum, the best power ratio at 0.5 sd (vs the same test at a fixed 20
    seeds) among boundaries with <= 65% of the fixed design's runs there, and that boundary at 1 sd."""
    rng = np.random.default_rng(seed)
    crit = -ndtri(ALPHA / M / 2)
    out = []
    for n_max in (20, 24, 30, 40):
        n = np.arange(1, n_max + 1)
        X = {th: rng.normal(size=(families_, M, n_max)).cumsum(2) + th * n for th in (0.5, 1.0)}
        base = {th: float(np.mean(x[:, :, 19] / math.sqrt(20) > crit)) for th, x in X.items()}
        best: dict[str, object] | None = None
        for first, a, b in itertools.product((2, 4), np.arange(-3, 3.01, 0.25), np.arange(-0.25, 0.76, 0.05)):
            cell = {}
            for th, x in X.items():
                bad = (x < a + b * n) & ((n >= first) & (n < n_max))
                anyb = bad.any(2)
                stop = np.where(anyb, np.argmax(bad, 2) + 1, n_max)
                rej = ~anyb & (x[:, :, n_max - 1] / math.sqrt(n_max) > crit)
                cell[th] = (float(rej.mean()) / base[th], float((stop.sum(1) + stop.max(1)).mean()) / ((M + 1) * 20))
            if cell[0.5][1] <= 0.65 and (best is None or cell[0.5][0] > best["ratio_0.5"]):
                best = {"n_max": n_max, "first": first, "a": float(a), "b": float(b), "ratio_0.5": cell[0.5][0],
                        "runs_0.5": cell[0.5][1], "ratio_1.0": cell[1.0][0], "runs_1.0": cell[1.0][1]}
        out.append(best)
        print(f"  max {n_max}: best power ratio at 0.5 sd with <= 0.65 of the runs {best['ratio_0.5']:.2f} "
              f"(runs {best['runs_0.5']:.2f}; the same boundary at 1 sd: {best['ratio_1.0']:.2f} / {best['runs_1.0']:.2f}; "
              f"first look {best['first']}, S_n < {best['a']:.2f} + {best['b']:.2f} n)", flush=True)
    return out


def show(d: tuple, r: dict) -> str:
    n1, n_plan, n2_max, n2_min, sp, fut, cpt, cpl = d
    return (f"n1 {n1} plan {n_plan} max {n1 + n2_max} n2>={n2_min} {sp} fut {fut} cp* {cpt} zone>={cpl}: " +
            "  ".join(f"{th}sd {r[f'ratio_{th}']:.2f}/{r[f'runs_{th}']:.2f}" for th in EFFECTS))


def parse(s: str) -> tuple:
    v = s.split(",")
    n1, n_plan, n_max, n2_min = (int(x) for x in v[:4])
    return (n1, n_plan, n_max - n1, n2_min, v[4], float(v[5]), float(v[6]), float(v[7]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--screen", type=int, default=0, help="families per effect for the grid (paired t stages)")
    ap.add_argument("--check", action="append", default=[], help="n1,n_plan,n_max,n2_min,spending,fut,cp_target,cp_lo")
    ap.add_argument("--bound", action="store_true", help="the idealised futility-design reference (see bound())")
    ap.add_argument("--aa", type=int, default=0, help="A/A families for --check")
    ap.add_argument("--power", type=int, default=0, help="families per effect for --check")
    ap.add_argument("--test", default="signflip", choices=("t", "signflip"), help="stage test of --check")
    ap.add_argument("--seed-sd", type=float, default=1.32)
    ap.add_argument("--draw-sd", type=float, default=1.89)
    ap.add_argument("--rho", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=Path("runs/adaptive_pz"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rhos = [0.0] + [args.rho] * (M - 1)
    print(f"machine: {machine()}")
    res: dict[str, object] = {"params": {k: str(v) for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    if args.screen:
        data = {th: families(np.random.default_rng(int(10 * th) + 17), args.screen, [th] * M, rhos, args.seed_sd,
                             args.draw_sd, 40) for th in EFFECTS}
        fp = {th: float(np.mean(fixed(D))) for th, D in data.items()}
        print("fixed 20-seed power (paired t, Holm): " + ", ".join(f"{th} sd {fp[th]:.3f}" for th in EFFECTS))
        rows = []
        designs = grid()
        for i, d in enumerate(designs):
            rows.append((d, evaluate(d, data, fp)))
            if (i + 1) % 100 == 0:
                print(f"  ... {i + 1} of {len(designs)} designs, {time.perf_counter() - t0:.0f} s", flush=True)
        print(f"screen: {len(rows)} designs x {len(EFFECTS)} effects x {args.screen} families, {time.perf_counter() - t0:.0f} s")
        meets = [(d, r) for d, r in rows if r["min_ratio"] >= 0.95 and r["max_runs"] <= 0.65]
        print(f"meeting power ratio >= 0.95 and runs <= 0.65 at every effect: {len(meets)} of {len(rows)}")
        for d, r in sorted(meets, key=lambda x: x[1]["max_runs"])[:10]:
            print("  " + show(d, r))
        print("frontier: fewest runs (worst effect) with power ratio >= x at every effect")
        for x in (0.95, 0.9, 0.85, 0.8):
            ok = sorted([(d, r) for d, r in rows if r["min_ratio"] >= x], key=lambda y: y[1]["max_runs"])[:3]
            for d, r in ok:
                print(f"  >= {x}: " + show(d, r))
        print("most power at 0.5 sd (worst ratio) with runs <= 0.65 at every effect:")
        for d, r in sorted([(d, r) for d, r in rows if r["max_runs"] <= 0.65], key=lambda y: -y[1]["min_ratio"])[:5]:
            print("  " + show(d, r))
        res["screen"] = [{"design": list(d), **r} for d, r in rows]
        res["fixed_power_screen"] = fp
    if args.bound:
        print("idealised reference (known sd, a look every seed, straight-line futility, 8 arms):")
        res["bound"] = bound()
    for spec in args.check:
        d = parse(spec)
        out: dict[str, object] = {"design": list(d), "test": args.test}
        if args.aa:
            D = families(np.random.default_rng(1), args.aa, [0.0] * M, rhos, args.seed_sd, args.draw_sd, d[0] + d[2])
            rej, _, runs = run_design(D, d, args.test, np.random.default_rng(2))
            fw = float(np.mean(rej.any(1)))
            out["aa"] = {"families": args.aa, "fwer": fw, "runs": float(runs.mean()) / 180}
            print(f"{show(d, {f'ratio_{t}': math.nan for t in EFFECTS} | {f'runs_{t}': math.nan for t in EFFECTS}).split(':')[0]} "
                  f"[{args.test}]: A/A {args.aa} families FWER {fw:.4f} (se {math.sqrt(fw * (1 - fw) / args.aa):.4f}), "
                  f"runs {runs.mean() / 180:.2f}  [{time.perf_counter() - t0:.0f} s]", flush=True)
        if args.power:
            cells = {}
            for th in EFFECTS:
                D = families(np.random.default_rng(int(10 * th) + 5), args.power, [th] * M, rhos, args.seed_sd, args.draw_sd,
                             max(40, d[0] + d[2]))
                fx = float(np.mean(fixed(D, 20, args.test)))
                rej, sgn, runs = run_design(D, d, args.test, np.random.default_rng(3))
                pw = float(np.mean(rej & (sgn > 0)))
                cells[th] = {"power": pw, "power_fixed": fx, "ratio": pw / max(fx, 1e-9), "runs": float(runs.mean()) / 180}
                print(f"  {th} sd: power {pw:.3f} / fixed {fx:.3f} = {pw / max(fx, 1e-9):.3f}; runs {runs.mean() / 180:.3f}"
                      f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
            out["power"] = cells
        res.setdefault("checks", []).append(out)
    (args.out / "results.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
