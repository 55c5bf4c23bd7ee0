"""A/A calibration of the ablation statistics on the real trainer (avdigits).

Trains ``--realizations`` copies of the same recipe that differ only in the recipe's augmentation seed
(the ``identity`` control's construction) on the same ``--seeds`` trainer seeds, through the ablation
runner (``mmdata.ablate.run``, an explicit design), then:

* every pair of realizations is an A/A comparison: the exact sign-flip p of their paired seed
  differences; the false-positive rate at 5% and 1%, and a p-value QQ plot against the uniform
  (``aa_qq.png``; the band is the 95% range of sorted p-values of the same number of pairs simulated
  from independent uniform p-values, for reference — the pairs share realizations, so they are not
  independent);
* A/A families shaped like the demo's: one realization as the baseline and 8 others as arms, Holm
  across them, over every choice of baseline (a false helps/hurts in how many families);
* the variance components of one run's accuracy (two-way layout, realization x seed, no replication):
  the seed effect (initialisation, data order: shared by every arm on a seed), the realization main
  effect (it must be ~0: a recipe seed must not move accuracy on its own, or A/A pairs would differ
  systematically) with its F test, and the augmentation draws (realization x seed).

    .venv/bin/python benchmarks/aa_calibration.py --out runs/aa_calibration              # run + analyse (resumable)
    .venv/bin/python benchmarks/aa_calibration.py --out runs/aa_calibration --analyse-only
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def config(data: str, realizations: int, seeds: int, epochs: int) -> dict:
    base = yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())["design"]["recipe"]
    arms = {}
    for r in range(1, realizations):
        rec = copy.deepcopy(base)
        rec["seed"] = 1000 * r
        arms[f"r{r:02d}"] = rec
    return {"dataset": {"path": data}, "trainer": {"epochs": epochs, "eval_robustness": False}, "seeds": seeds,
            "design": {"mode": "explicit", "baseline": base, "arms": arms}, "controls": {"identity": False}}


def matrix(out: Path) -> tuple[list[str], np.ndarray]:
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(out / "runs.parquet").to_pylist() if r.get("status", "ok") in ("ok", None)]
    names = sorted({r["arm"] for r in rows}, key=lambda a: (a != "baseline", a))
    seeds = sorted({int(r["seed"]) for r in rows})
    y = np.full((len(names), len(seeds)), np.nan)
    for r in rows:
        y[names.index(r["arm"]), seeds.index(int(r["seed"]))] = 100 * float(r["test_accuracy"])
    keep = ~np.isnan(y).any(axis=0)
    return names, y[:, keep]


def components(y: np.ndarray) -> dict[str, float]:
    """Two-way ANOVA without replication: realization (rows) x seed (columns)."""
    from scipy.stats import f as fdist

    R, S = y.shape
    grand = y.mean()
    ms_r = S * ((y.mean(1) - grand) ** 2).sum() / (R - 1)
    ms_s = R * ((y.mean(0) - grand) ** 2).sum() / (S - 1)
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + grand
    ms_e = (resid**2).sum() / ((R - 1) * (S - 1))
    F = ms_r / ms_e
    return {"seed_sd": math.sqrt(max(0.0, (ms_s - ms_e) / R)), "draws_sd": math.sqrt(ms_e),
            "realization_sd": math.sqrt(max(0.0, (ms_r - ms_e) / S)), "realization_F": F,
            "realization_p": float(fdist.sf(F, R - 1, (R - 1) * (S - 1))), "run_sd": float(np.std(y, ddof=1)),
            "mean": float(grand)}


def null_spread(realizations: int, seeds: int, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """The false-positive rate at p <= 0.05 over all pairs of ``realizations`` exchangeable A/A
    realizations x ``seeds`` seeds, in ``reps`` simulated experiments where the null holds exactly
    (normal draw noise; the seed effect cancels in every pair and the exact test is scale-free).
    The pairs share realizations, so the rate of one experiment spreads far more than a binomial
    over independent pairs would: this is the yardstick for the observed rate."""
    from mmdata.ablate.stats import sign_flip_p

    rng = np.random.default_rng(seed)
    signs = 1 - 2 * ((np.arange(2**seeds)[:, None] >> np.arange(seeds)) & 1)  # every sign pattern
    i, j = np.triu_indices(realizations, 1)
    rates = np.empty(reps)
    for r in range(reps):
        y = rng.standard_normal((realizations, seeds))
        d = y[j] - y[i]
        t = np.abs(d @ signs.T)
        p = (t >= np.abs(d.sum(axis=1))[:, None] - 1e-9).mean(axis=1)
        if r == 0:  # the vectorised p is the library's exact sign-flip p
            assert np.allclose(p[:5], [sign_flip_p(x) for x in d[:5]])
        rates[r] = np.mean(p <= 0.05)
    return rates


def analyse(out: Path, family_arms: int = 8) -> dict:
    from mmdata.ablate.stats import analyze, sign_flip_p

    names, y = matrix(out)
    R, S = y.shape
    pairs = list(itertools.combinations(range(R), 2))
    ps = np.array([sign_flip_p(y[j] - y[i]) for i, j in pairs])
    comp = components(y)
    # demo-shaped families: baseline b, arms = the next family_arms realizations (cyclically)
    fam = []
    for b in range(R):
        arms = [(b + k) % R for k in range(1, family_arms + 1)]
        res = analyze({names[a]: dict(enumerate(y[a] - y[b])) for a in arms}, delta=1.0, intervals=False)
        fam.append(any(e["rejected"] for e in res.values()))
    spread = null_spread(R, S)
    fp05 = float(np.mean(ps <= 0.05))
    result = {"realizations": R, "seeds": S, "pairs": len(pairs), "fp_rate_05": fp05,
              "fp_rate_01": float(np.mean(ps <= 0.01)), "families": R, "family_fp": int(sum(fam)),
              "null_fp_rate_05": {"mean": float(spread.mean()), "q2.5": float(np.quantile(spread, 0.025)),
                                  "q97.5": float(np.quantile(spread, 0.975)), "p_at_least_observed": float(np.mean(spread >= fp05 - 1e-12))},
              "components": comp, "machine": machine()}
    _qq(ps, out / "aa_qq.png", result)
    (out / "aa_calibration.json").write_text(json.dumps(result, indent=2))
    return result


def _qq(ps: np.ndarray, path: Path, r: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(ps)
    exp = (np.arange(1, n + 1) - 0.5) / n
    sims = np.sort(np.random.default_rng(0).uniform(size=(2000, n)), axis=1)
    lo, hi = np.percentile(sims, 2.5, axis=0), np.percentile(sims, 97.5, axis=0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, log in zip(axes, (False, True)):
        x, yv = (-np.log10(exp), -np.log10(np.sort(ps))) if log else (exp, np.sort(ps))
        blo, bhi = (-np.log10(hi), -np.log10(lo)) if log else (lo, hi)
        ax.fill_between(x, blo, bhi, color="tab:blue", alpha=0.15, label="95% band (independent uniform p)")
        ax.plot(x, yv, ".", ms=4, color="tab:blue", label=f"{n} A/A pairs (exact sign-flip p)")
        m = max(x.max(), yv.max())
        ax.plot([0, m], [0, m], color="black", lw=0.8)
        ax.set_xlabel("expected " + ("−log10 p" if log else "p") + " (uniform)")
        ax.set_ylabel("observed " + ("−log10 p" if log else "p"))
        ax.set_title("log scale (the tail)" if log else "p-value QQ plot", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")
    c = r["components"]
    fig.suptitle(f"A/A on avdigits: {r['realizations']} realizations x {r['seeds']} seeds; false-positive rate "
                 f"{100 * r['fp_rate_05']:.1f}% at 5%, {100 * r['fp_rate_01']:.1f}% at 1%; sd per run: seed {c['seed_sd']:.2f}, "
                 f"draws {c['draws_sd']:.2f}, realization {c['realization_sd']:.2f} pts", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/aa_calibration"))
    ap.add_argument("--data", type=Path, default=None, help="avdigits folder (default: OUT/data, built if missing)")
    ap.add_argument("--realizations", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--analyse-only", action="store_true")
    args = ap.parse_args()
    if not args.analyse_only:
        from mmdata.ablate import run
        from mmdata.datasets.avdigits import build

        data = args.data or args.out / "data"
        if not (Path(data) / "dataset.json").exists():
            build(data, progress=False)
        run(config(str(data), args.realizations, args.seeds, args.epochs), args.out, workers=args.workers, plots=False)
    r = analyse(args.out)
    c = r["components"]
    print(f"machine: {r['machine']}")
    print(f"A/A: {r['realizations']} realizations x {r['seeds']} seeds, {r['pairs']} pairs: false-positive rate "
          f"{100 * r['fp_rate_05']:.1f}% at p <= 0.05, {100 * r['fp_rate_01']:.1f}% at p <= 0.01 (exact sign-flip)")
    n = r["null_fp_rate_05"]
    print(f"  where the null holds exactly (2,000 simulated experiments of the same shape): mean {100 * n['mean']:.1f}%, "
          f"95% range {100 * n['q2.5']:.1f}-{100 * n['q97.5']:.1f}%, P(rate >= observed) = {n['p_at_least_observed']:.2f}")
    print(f"demo-shaped families (baseline + 8 arms, Holm): {r['family_fp']} of {r['families']} with a false helps/hurts")
    print(f"per-run sd (accuracy points): seed {c['seed_sd']:.2f}, augmentation draws {c['draws_sd']:.2f}, realization "
          f"{c['realization_sd']:.2f} (F = {c['realization_F']:.2f}, p = {c['realization_p']:.3f}); total {c['run_sd']:.2f}; "
          f"mean accuracy {c['mean']:.1f}%")
    print(f"QQ plot: {args.out / 'aa_qq.png'}")


if __name__ == "__main__":
    main()
