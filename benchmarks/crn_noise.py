"""Common random numbers in leave-one-out ablations: what op-identity keying buys in paired noise.

(How many retained draws a leave-one-out arm shares with the baseline under each keying is measured
without training by ``benchmarks/crn_pairing.py``.) Here, on avdigits with
``recipes/ablations/avdigits_loo.yaml``: the ablation runner trains the baseline and every leave-one-out arm on
   ``--seeds`` seeds, once with ``keying: identity`` (the default) and once with ``keying: position``
(the old behaviour); per arm the sd of the paired differences (arm − baseline, accuracy points).
The identity-keyed run also trains the ``identity`` control (fresh draws: nothing shared), whose
difference sd is the no-sharing reference; ``rho`` = 1 − sd²(arm) / sd²(identity) is the share of
the draw variance an arm's pairing removes (an input of ``benchmarks/adaptive_sim.py``).
Per arm also the Pitman–Morgan p of "equal sds under both keyings" (the two differences are paired by
seed) and, for the pooled ratio, a 95% interval from resampling seeds.

    .venv/bin/python benchmarks/crn_noise.py --out runs/crn --seeds 20 --epochs 3     # resumable
    .venv/bin/python benchmarks/crn_noise.py --out runs/crn6 --seeds 10 --epochs 6    # the demo's budget
    .venv/bin/python benchmarks/crn_noise.py --out runs/crn --analyse-only           # what is there so far
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _common import current_runs, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def full_recipe() -> dict:
    return yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())["design"]["recipe"]


def configs(data: str, seeds: int, epochs: int) -> dict[str, dict]:
    """keying -> the ablation config of that half of the comparison."""
    return {keying: {"dataset": {"path": data}, "trainer": {"epochs": epochs, "eval_robustness": False}, "seeds": seeds,
                     "design": {"mode": "leave_one_out", "recipe": {**full_recipe(), "keying": keying}},
                     "controls": {"identity": keying == "identity", "label_noise": 0}}
            for keying in ("identity", "position")}


def noise(out: Path) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """arm -> {keying: sd of paired differences, keying_mean, n} on the seeds that both keyings
    finished for that arm and its baseline (a partial run is analysed on what is there), plus the
    identity control's sd (identity keying only); and the runs found per keying."""
    vals: dict[str, dict[str, dict[int, float]]] = {}
    found: dict[str, object] = {}
    for keying in ("identity", "position"):
        got = current_runs(out / f"keying-{keying}")
        if got is None:
            vals[keying] = {}
            continue
        ab, rows = got
        found[keying], found[f"{keying}_epochs"] = len(rows), ab.trainer.get("epochs")
        v: dict[str, dict[int, float]] = {}
        for r in rows:
            v.setdefault(r["arm"], {})[int(r["seed"])] = 100 * float(r["test_accuracy"])
        vals[keying] = v
    res: dict[str, dict[str, float]] = {}
    base = "baseline (full recipe)"
    # the seeds every configuration of both halves finished: every row of the table uses the same seeds
    sets = [set(v) for v in vals["identity"].values()] + [set(v) for v in vals["position"].values()]
    common = sorted(set.intersection(*sets)) if len(vals["position"]) > 1 else []
    found["seeds"] = common
    if len(common) < 3:
        return res, found
    bi, bp = vals["identity"][base], vals["position"][base]
    for arm, v in vals["identity"].items():
        if arm == base:
            continue
        vp = vals["position"].get(arm, {})
        di = np.array([v[s] - bi[s] for s in common])
        e = res.setdefault(arm, {"n": len(common)})
        e["identity"], e["identity_mean"] = float(np.std(di, ddof=1)), float(np.mean(di))
        if arm != "identity":
            dp = np.array([vp[s] - bp[s] for s in common])
            e["position"], e["position_mean"] = float(np.std(dp, ddof=1)), float(np.mean(dp))
            # Pitman-Morgan: equal variances of two paired samples <=> corr(x + y, x - y) = 0
            e["pitman_morgan_p"] = float(stats.pearsonr(di + dp, di - dp)[1]) if len(common) > 2 else math.nan
            e["_d"] = (di, dp)
    # the pooled sd ratio's uncertainty: resample seeds (every arm's differences together)
    pairs = [e.pop("_d") for e in res.values() if "_d" in e]
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(5000):
        i = rng.integers(0, len(common), len(common))
        den = np.mean([y[i].var(ddof=1) for _, y in pairs])
        if den > 0:
            boot.append(math.sqrt(np.mean([x[i].var(ddof=1) for x, _ in pairs]) / den))
    found["pooled_ratio_ci95"] = [float(v) for v in np.percentile(boot, [2.5, 97.5])] if boot else None
    return res, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/crn"))
    ap.add_argument("--data", type=Path, default=None, help="avdigits folder (default: OUT/data, built if missing)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--analyse-only", action="store_true", help="analyse the runs there (a partial run: common seeds)")
    args = ap.parse_args()
    if not args.analyse_only:
        from mmdata.ablate import run
        from mmdata.datasets.avdigits import build

        data = str(args.data or args.out / "data")
        if not (Path(data) / "dataset.json").exists():
            build(data, progress=False)
        # seed-major order inside each half: a stopped run leaves every arm with about as many seeds
        for keying, cfg in configs(data, args.seeds, args.epochs).items():
            run(cfg, args.out / f"keying-{keying}", workers=args.workers, plots=False, progress=False)
    print(f"machine: {machine()}")
    sd, found = noise(args.out)
    ref = sd.pop("identity", {}).get("identity")
    print(f"runs found: identity keying {found.get('identity', 0)} ({found.get('identity_epochs')} epochs), position keying "
          f"{found.get('position', 0)} ({found.get('position_epochs')} epochs); seeds every configuration finished: "
          f"{len(found['seeds'])} {found['seeds']}")
    print("sd of paired differences (arm - full recipe, accuracy points) on the same seeds:")
    print(f"  {'arm':28s} {'n':>3s} {'identity keying':>16s} {'position keying':>16s} {'ratio':>6s} {'rho':>6s} {'PM p':>5s} "
          f"{'mean d identity / position':>27s}")
    rhos, ratios = [], []
    for arm, s in sd.items():
        rho = 1 - (s["identity"] / ref) ** 2 if ref else math.nan
        rhos.append(rho)
        ratios.append(s["identity"] / s["position"])
        print(f"  {arm:28s} {s['n']:3d} {s['identity']:16.2f} {s['position']:16.2f} {ratios[-1]:6.2f} {rho:6.2f} "
              f"{s['pitman_morgan_p']:5.2f} {s['identity_mean']:+13.2f} / {s['position_mean']:+.2f}")
    if ref:
        print(f"  {'identity control (no sharing)':28s} {'':3s} {ref:16.2f}")
    mean_ratio = float(np.mean(ratios)) if ratios else math.nan
    pooled = (math.sqrt(np.mean([s["identity"] ** 2 for s in sd.values()]) / np.mean([s["position"] ** 2 for s in sd.values()]))
              if sd else math.nan)
    ci = found.get("pooled_ratio_ci95") or [math.nan, math.nan]
    print(f"mean sd ratio identity/position keying {mean_ratio:.2f} (pooled variance: {pooled:.2f}, seed-bootstrap 95% "
          f"{ci[0]:.2f}-{ci[1]:.2f}); "
          f"mean rho (identity keying) {np.nanmean(rhos) if rhos else math.nan:.2f}")
    result = {"machine": machine(), "sd": sd, "identity_control_sd": ref, "mean_ratio": mean_ratio, "pooled_sd_ratio": pooled,
              "mean_rho": float(np.nanmean(rhos)) if rhos else None, "runs": found}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crn.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
