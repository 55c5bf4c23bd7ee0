"""How much of an ablation's paired noise comes from the finite test split, and how much from training?

An ablation compares arm and baseline on the same seeds; the paired difference d_s (accuracy points)
varies from seed to seed for two reasons: the two trainings end in different models (training
noise), and the test split is a finite sample of the data (test-sampling noise: with n examples,
the difference of two models' accuracies on *this* split scatters around their difference on the
population with variance var(D)/n, D_i = correct_arm(i) − correct_baseline(i) ∈ {−1, 0, 1}).
A larger test split shrinks only the second part, so its share says what a bigger split would buy:
with a k-times larger one, var(d) becomes var(d) − (1 − 1/k)·E[var(D)/n], and the seeds needed for
the same power scale with that variance.

On avdigits with ``recipes/ablations/avdigits_loo.yaml`` (the demo's 6 epochs, no robustness pass):
the ablation runner (fixed design, resumable, ``OUT/ablation``) trains the baseline (full recipe),
the ``identity`` control (A/A: the baseline with fresh draws) and two leave-one-out arms on
``--seeds`` seeds; each run keeps which test examples it got right (``correct_on_test``), and
:func:`mmdata.ablate.stats.eval_split_noise` gives per arm the sd of d over seeds, the test-sampling
sd sqrt(mean_s var(D_s)/n), its share of var(d) and the mean disagreement rate P(D ≠ 0). Here also:
the share's 95% interval from resampling seeds, the sd a 4x / 10x larger split would give, and the
check of the decomposition where it can be made without more data — on random subsets of n/2 and
n/4 test examples the variance of d must grow by (n/m − 1)·mean(var(D)/n).

    .venv/bin/python benchmarks/eval_noise.py --out runs/evalnoise --seeds 16 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOO_ARMS = ("-image.random_crop", "-sample.modality_dropout")
MIN_SEEDS = 3  # mmdata.ablate.stats.eval_split_noise reports arms with at least 3 paired seeds


def config(data: str, seeds: int, epochs: int) -> dict:
    """The ablation: the LOO recipe's full recipe as baseline, two of its leave-one-out arms, identity."""
    from mmdata.ablate.design import load_ablation

    cfg = yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())
    loo = {a.name: a.recipe for a in load_ablation(cfg).arms}
    return {"dataset": {"path": data}, "trainer": {**cfg["trainer"], "epochs": epochs, "eval_robustness": False},
            "seeds": seeds, "adaptive": False,
            "design": {"mode": "explicit", "baseline": loo["baseline (full recipe)"], "arms": {a: loo[a] for a in LOO_ARMS}},
            "controls": {"identity": True, "label_noise": 0}}


def paired_correctness(out: Path) -> dict[str, np.ndarray]:
    """arm -> (seeds x test examples) matrix of D = correct_arm − correct_baseline, on the seeds both ran."""
    import pyarrow.parquet as pq

    from mmdata.train.evaluate import decode_correct

    runs = [r for r in pq.read_table(out / "runs.parquet").to_pylist() if r["status"] == "ok" and r.get("correct_on_test")]
    bits = {(r["arm"], int(r["seed"])): decode_correct(r["correct_on_test"])[1].astype(float) for r in runs}
    res = {}
    for arm in ("identity", *LOO_ARMS):
        seeds = sorted(s for a, s in bits if a == arm and ("baseline", s) in bits)
        if seeds:
            res[arm] = np.array([bits[(arm, s)] - bits[("baseline", s)] for s in seeds])
    return res


def analyse(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    D = paired_correctness(out)
    rng = np.random.default_rng(0)
    res: dict[str, dict] = {}
    for a in summary["arms"]:
        e = a["primary"].get("eval_split")
        if not e or a["name"] not in D:
            continue
        Ds = D[a["name"]]
        n = Ds.shape[1]
        d, v = 100 * Ds.mean(1), 100**2 * Ds.var(1, ddof=1) / n
        total = e["sd_d"] ** 2
        boot = []
        tol = 1e-12 * max(float(np.mean(d**2)), 1e-300)  # var(d) of a resample below this is rounding error
        for _ in range(5000):
            i = rng.integers(0, len(d), len(d))
            t = d[i].var(ddof=1)
            # a resample of one seed repeated has var(d) = 0 (up to rounding): its share is unbounded,
            # or undefined when var(D) is 0 too (dropped)
            if t > tol:
                boot.append(v[i].mean() / t)
            elif v[i].mean() > 0:
                boot.append(math.inf)
        subsets = {}
        for m in (n // 2, n // 4):
            obs = [float((100 * Ds[:, rng.choice(n, m, replace=False)].mean(1)).var(ddof=1)) for _ in range(2000)]
            subsets[str(m)] = {"observed_var": float(np.mean(obs)), "predicted_var": total + e["sd_test"] ** 2 * (n / m - 1)}
        res[a["name"]] = {**e, "mean_d": a["primary"]["mean_diff"], "share_ci95": share_ci(boot),
                          **{f"sd_test_x{k}": math.sqrt(max(total - (1 - 1 / k) * e["sd_test"] ** 2, 0.0)) for k in (4, 10)},
                          "subsets": subsets}
    return res


def share_ci(boot: list[float]) -> list[float]:
    """2.5% and 97.5% quantiles of the resampled shares (no interpolation: some may be inf); NaN if none."""
    if not boot:
        return [math.nan, math.nan]
    return [float(x) for x in np.quantile(boot, [0.025, 0.975], method="inverted_cdf")]


def _ci_text(ci: list[float]) -> str:
    """The interval as printed: an infinite upper end is 'unbounded', an interval of no resample 'n/a'."""
    if math.isnan(ci[0]) or math.isnan(ci[1]):
        return "(n/a)"
    return f"({ci[0]:.2f}-{'unbounded' if math.isinf(ci[1]) else f'{ci[1]:.2f}'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/evalnoise"))
    ap.add_argument("--seeds", type=int, default=16, help=f"seeds per arm (at least {MIN_SEEDS})")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--analyse-only", action="store_true", help="analyse what OUT/ablation holds")
    args = ap.parse_args()
    if args.seeds < MIN_SEEDS and not args.analyse_only:
        ap.error(f"--seeds {args.seeds}: the split-noise analysis needs at least {MIN_SEEDS} seeds per arm "
                 "(the sd of d over seeds and its resampling)")
    abl = args.out / "ablation"
    if not args.analyse_only:
        from mmdata.ablate import run
        from mmdata.datasets.avdigits import build

        data = args.out / "data"
        if not (data / "dataset.json").exists():
            build(data, seed=0, progress=False)
        run(config(str(data.resolve()), args.seeds, args.epochs), abl, workers=args.workers, plots=False)
    res = analyse(abl)
    if not res:
        print(f"no arm has {MIN_SEEDS} or more seeds paired with the baseline where both runs kept their test "
              f"examples (correct_on_test) in {abl}: nothing to analyse", file=sys.stderr)
        sys.exit(1)
    print(f"machine: {machine()}; {args.epochs} epochs; d = arm - baseline, accuracy points")
    print(f"{'arm':26s} {'seeds':>5s} {'mean d':>7s} {'sd d':>6s} {'sd test':>7s} {'share (95%)':>20s} "
          f"{'disagree':>8s} {'sd@4x':>6s} {'sd@10x':>6s}")
    for arm, e in res.items():
        ci = e["share_ci95"]
        print(f"{arm:26s} {e['n_seeds']:5d} {e['mean_d']:+7.2f} {e['sd_d']:6.2f} {e['sd_test']:7.2f} "
              f"{e['share']:6.2f} {_ci_text(ci):>13s} {e['disagreement']:8.3f} {e['sd_test_x4']:6.2f} "
              f"{e['sd_test_x10']:6.2f}")
    print("check on random test subsets (variance of d over seeds, observed vs predicted by the decomposition):")
    for arm, e in res.items():
        print(f"  {arm:26s} " + "; ".join(f"n={m}: {c['observed_var']:.2f} vs {c['predicted_var']:.2f}"
                                          for m, c in e["subsets"].items()) + f" (full split: {e['sd_d'] ** 2:.2f})")
    (args.out / "eval_noise.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
