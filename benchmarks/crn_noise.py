"""Common random numbers in leave-one-out ablations: what op-identity keying buys in paired noise.

(How many retained draws a leave-one-out arm shares with the baseline under each keying is measured
without training by ``benchmarks/crn_pairing.py``.) Here, on avdigits with
``recipes/ablations/avdigits_loo.yaml``: the ablation runner trains the baseline and every leave-one-out arm on
   ``--seeds`` seeds, once with ``keying: identity`` (the default) and once with ``keying: position``
(the old behaviour); per arm the sd of the paired differences (arm − baseline, accuracy points).
The identity-keyed run also trains the ``identity`` control (fresh draws: nothing shared), whose
difference sd is the no-sharing reference; ``rho`` = 1 − sd²(arm) / sd²(identity) is the share of
the draw variance an arm's pairing removes (an input of ``benchmarks/adaptive_sim.py``).

    .venv/bin/python benchmarks/crn_noise.py --out runs/crn --seeds 20 --epochs 3     # resumable
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


def full_recipe() -> dict:
    return yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())["design"]["recipe"]


def noise(data: str, out: Path, seeds: int, epochs: int, workers: int) -> dict[str, dict[str, float]]:
    """arm -> {keying: sd of paired differences}, plus the identity control's sd."""
    from mmdata.ablate import run
    from mmdata.ablate.runner import load_runs

    res: dict[str, dict[str, float]] = {}
    for keying in ("identity", "position"):
        cfg = {"dataset": {"path": data}, "trainer": {"epochs": epochs, "eval_robustness": False}, "seeds": seeds,
               "design": {"mode": "leave_one_out", "recipe": {**full_recipe(), "keying": keying}},
               "controls": {"identity": keying == "identity", "label_noise": 0}}
        d = out / f"keying-{keying}"
        run(cfg, d, workers=workers, plots=False, progress=False)
        rows = [r for r in load_runs(d) if r["status"] == "ok"]
        vals: dict[str, dict[int, float]] = {}
        for r in rows:
            vals.setdefault(r["arm"], {})[int(r["seed"])] = 100 * float(r["test_accuracy"])
        base = vals.pop("baseline (full recipe)")
        for arm, v in vals.items():
            diff = [v[s] - base[s] for s in v if s in base]
            res.setdefault(arm, {})[keying] = float(np.std(diff, ddof=1))
            res[arm][f"{keying}_mean"] = float(np.mean(diff))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/crn"))
    ap.add_argument("--data", type=Path, default=None, help="avdigits folder (default: OUT/data, built if missing)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    from mmdata.datasets.avdigits import build

    data = str(args.data or args.out / "data")
    if not (Path(data) / "dataset.json").exists():
        build(data, progress=False)
    print(f"machine: {machine()}")
    result: dict[str, object] = {"machine": machine()}
    sd = noise(data, args.out, args.seeds, args.epochs, args.workers)
    ref = sd.pop("identity", {}).get("identity")
    print(f"sd of paired differences (accuracy points), {args.seeds} seeds, {args.epochs} epochs:")
    print(f"  {'arm':28s} {'identity keying':>16s} {'position keying':>16s} {'ratio':>6s} {'rho':>6s}")
    rhos = []
    for arm, s in sd.items():
        rho = 1 - (s["identity"] / ref) ** 2 if ref else math.nan
        rhos.append(rho)
        print(f"  {arm:28s} {s['identity']:16.2f} {s['position']:16.2f} {s['identity'] / s['position']:6.2f} {rho:6.2f}")
    if ref:
        print(f"  {'identity control (no sharing)':28s} {ref:16.2f}")
    mean_ratio = float(np.mean([s["identity"] / s["position"] for s in sd.values()]))
    print(f"mean sd ratio identity/position keying {mean_ratio:.2f}; mean rho (identity keying) {np.nanmean(rhos):.2f}")
    result.update(sd=sd, identity_control_sd=ref, mean_ratio=mean_ratio, mean_rho=float(np.nanmean(rhos)),
                  seeds=args.seeds, epochs=args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crn.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
