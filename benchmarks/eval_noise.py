"""How much of an ablation's paired noise comes from the finite test set, and how much from training?

An ablation compares arm and baseline on the same seeds; the paired difference d_s (accuracy points)
varies from seed to seed for two reasons: the two trainings end in different models (training
noise), and the test split is a finite sample of the data (test-sampling noise: with n examples,
the difference of two models' accuracies on *this* split scatters around their difference on the
population with variance var(D)/n, D_i = correct_arm(i) − correct_baseline(i) ∈ {−1, 0, 1}).
A larger test split shrinks only the second part, so its share says what a bigger split would buy:
with a k-times larger one, var(d) becomes var(d) − (1 − 1/k)·E[var(D)/n], and the seeds needed for
the same power scale with that variance.

On avdigits with ``recipes/ablations/avdigits_loo.yaml`` (the demo's 6 epochs, no robustness pass):
the baseline (full recipe), the ``identity`` control (A/A: the baseline with fresh draws) and two
leave-one-out arms, each trained on ``--seeds`` seeds with the test predictions kept
(``OUT/runs/<arm>/<seed>/predictions.parquet``; resumable). Per arm: the sd of d over seeds, the
test-sampling sd sqrt(mean_s var(D_s)/n), its share of var(d) with a 95% interval from resampling
seeds, the mean disagreement rate P(D ≠ 0), and the sd a 4x / 10x larger test split would give.
The decomposition is checked where it can be without more data: on random subsets of n/2 and n/4
test examples the variance of d must grow by (n/m − 1)·mean(var(D)/n).

    .venv/bin/python benchmarks/eval_noise.py --out runs/evalnoise --seeds 10 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("baseline (full recipe)", "identity", "-image.random_crop", "-sample.modality_dropout")


def arms(data: str) -> dict[str, dict]:
    """arm name -> {recipe, label_noise} as the ablation runner trains them."""
    from mmdata.ablate.design import load_ablation

    cfg = yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())
    cfg["dataset"] = {"path": data}
    cfg["controls"] = {"identity": True, "label_noise": 0}
    ab = load_ablation(cfg)
    return {a.name: {"recipe": a.recipe, "label_noise": a.label_noise} for a in ab.arms if a.name in ARMS}


def train_one(task: dict) -> str:
    import torch

    from mmdata.train import train

    out = Path(task["out"])
    if not (out / "metrics.json").exists():
        torch.set_num_threads(1)
        train(task["data"], recipe=task["recipe"], seed=task["seed"], label_noise=task["label_noise"], out=out,
              epochs=task["epochs"], eval_robustness=False, threads=1, fusion="concat", batch_size=64, lr=0.002)
    return str(out)


def correct(folder: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    t = pq.read_table(folder / "predictions.parquet", columns=["key", "label", "pred"]).to_pydict()
    return {k: int(p == y) for k, y, p in zip(t["key"], t["label"], t["pred"]) if y is not None and y >= 0}


def analyse(out: Path, seeds: int) -> dict:
    base = "baseline (full recipe)"
    runs = out / "runs"
    res: dict[str, dict] = {}
    rng = np.random.default_rng(0)
    for arm in ARMS[1:]:
        rows = []
        for s in range(seeds):
            a, b = runs / arm / str(s), runs / base / str(s)
            if not ((a / "predictions.parquet").exists() and (b / "predictions.parquet").exists()):
                continue
            ca, cb = correct(a), correct(b)
            keys = sorted(set(ca) & set(cb))
            rows.append([ca[k] - cb[k] for k in keys])
        if len(rows) < 3:
            continue
        Ds = np.array(rows, dtype=float)  # seeds x examples: D = correct_arm - correct_baseline
        n = Ds.shape[1]
        ds, ve, dis = 100 * Ds.mean(1), 100**2 * Ds.var(1, ddof=1) / n, (Ds != 0).mean(1)
        d, v = np.array(ds), np.array(ve)
        total = d.var(ddof=1)
        share = float(v.mean() / total)
        boot = []
        for _ in range(5000):
            i = rng.integers(0, len(d), len(d))
            t = d[i].var(ddof=1)
            if t > 0:
                boot.append(v[i].mean() / t)
        # the check of the model: on random test subsets of n/2 and n/4 examples (each a smaller fixed
        # split), the variance of d over seeds should be var(d) + (n/m - 1) * mean var(D)/n
        subsets = {}
        for m in (n // 2, n // 4):
            obs = [float((100 * Ds[:, rng.choice(n, m, replace=False)].mean(1)).var(ddof=1)) for _ in range(2000)]
            subsets[str(m)] = {"observed_var": float(np.mean(obs)), "predicted_var": float(total + v.mean() * (n / m - 1))}
        res[arm] = {"seeds": len(d), "n_test": n, "mean_d": float(d.mean()), "sd_d": math.sqrt(total), "subsets": subsets,
                    "sd_test_sampling": math.sqrt(v.mean()), "share": share,
                    "share_ci95": [float(x) for x in np.percentile(boot, [2.5, 97.5])],
                    "disagreement": float(np.mean(dis)),
                    **{f"sd_test_x{k}": math.sqrt(max(total - (1 - 1 / k) * v.mean(), 0.0)) for k in (4, 10)}}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/evalnoise"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--analyse-only", action="store_true")
    args = ap.parse_args()
    data = args.out / "data"
    if not args.analyse_only:
        from mmdata.datasets.avdigits import build

        if not (data / "dataset.json").exists():
            build(data, seed=0, progress=False)
        tasks = [{"data": str(data), "seed": s, "epochs": args.epochs, "out": str(args.out / "runs" / name / str(s)), **spec}
                 for s in range(args.seeds) for name, spec in arms(str(data)).items()]
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as ex:
            for i, done in enumerate(ex.map(train_one, tasks), 1):
                print(f"{i}/{len(tasks)} {done}", flush=True)
    res = analyse(args.out, args.seeds)
    print(f"machine: {machine()}; {args.epochs} epochs; d = arm - baseline, accuracy points")
    print(f"{'arm':26s} {'seeds':>5s} {'mean d':>7s} {'sd d':>6s} {'sd test':>7s} {'share (95%)':>20s} "
          f"{'disagree':>8s} {'sd@4x':>6s} {'sd@10x':>6s}")
    for arm, e in res.items():
        ci = e["share_ci95"]
        print(f"{arm:26s} {e['seeds']:5d} {e['mean_d']:+7.2f} {e['sd_d']:6.2f} {e['sd_test_sampling']:7.2f} "
              f"{e['share']:6.2f} ({ci[0]:.2f}-{ci[1]:.2f}) {e['disagreement']:8.3f} {e['sd_test_x4']:6.2f} "
              f"{e['sd_test_x10']:6.2f}")
    print("check on random test subsets (variance of d over seeds, observed vs predicted by the decomposition):")
    for arm, e in res.items():
        print(f"  {arm:26s} " + "; ".join(f"n={m}: {c['observed_var']:.2f} vs {c['predicted_var']:.2f}"
                                          for m, c in e["subsets"].items()) + f" (full split: {e['sd_d'] ** 2:.2f})")
    (args.out / "eval_noise.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
