"""Common random numbers across ablation arms: how many of a leave-one-out arm's retained op draws are
identical to the baseline's, with position keying (mmdata 0.1) vs op identity keying (now).

For every leave-one-out arm of an ablation recipe (default ``recipes/ablations/avdigits_loo.yaml``),
every seed (the trainer seed, combined with the recipe's as the loader combines them) and every
training sample of avdigits, the baseline recipe and the arm are applied per sample; each op the arm
retains is matched to the baseline's op by its identity (``image.cutout#0``) and its params compared.
With identity keying every retained draw should be identical (100%); with position keying removing op
*i* re-keys every later op. (The sd of paired metric differences this buys is measured with training
runs by the ablation benchmarks.)

Run: .venv/bin/python benchmarks/crn_pairing.py [--data DIR] [--seeds 20] [--epochs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).parents[1]


def measure(data: Path, ablation: Path, seeds: int, epochs: int) -> dict:
    import mmdata
    from mmdata.ablate.design import load_ablation
    from mmdata.augment.recipe import KEYINGS, load_recipe, params_seed

    design = load_ablation(ablation)
    base = next(a for a in design.arms if a.kind == "baseline")
    arms = [a for a in design.arms if a.kind == "arm"]
    samples = [mmdata.Sample(s.key, s.fields, s.sample_rate) for s in mmdata.open_dataset(data, split="train")]
    rows = {a.name: {k: [0, 0, 0, 0] for k in KEYINGS} for a in arms}  # same, total, same applied, total applied
    for keying in KEYINGS:
        for seed in range(seeds):
            def logs(recipe: dict) -> dict[tuple[str, int, str], dict]:
                rec = load_recipe(recipe, keying=keying)
                rec = rec.with_seed(params_seed(rec.seed, seed))  # what mmdata.loader does with the run's seed
                return {(s.key, e, entry["id"]): entry["params"] for e in range(epochs) for s in samples
                        for entry in rec.apply_sample(s, epoch=e).meta["aug"]}

            ref = logs(base.recipe)
            for arm in arms:
                cnt = rows[arm.name][keying]
                for k, params in logs(arm.recipe).items():
                    same = params == ref[k]
                    cnt[0] += same
                    cnt[1] += 1
                    if ref[k].get("applied"):
                        cnt[2] += same
                        cnt[3] += 1
    return {"arms": {name: {k: {"identical": c[0], "compared": c[1], "share": c[0] / c[1],
                                "share_applied": c[2] / c[3] if c[3] else None}
                            for k, c in per.items()} for name, per in rows.items()},
            "samples": len(samples), "seeds": seeds, "epochs": epochs, "ablation": str(ablation)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("runs/data/avdigits"), help="avdigits folder (built if missing)")
    ap.add_argument("--ablation", type=Path, default=ROOT / "recipes" / "ablations" / "avdigits_loo.yaml")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if not (args.data / "dataset.json").is_file():
        from mmdata.datasets.avdigits import build

        build(args.data, progress=False)
    t0 = time.perf_counter()
    res = measure(args.data, args.ablation, args.seeds, args.epochs)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["machine"] = machine()
    print(f"# common random numbers: retained op draws identical to the baseline's ({res['samples']} train samples x "
          f"{res['seeds']} seeds x {res['epochs']} epoch(s); {res['machine']}; {res['wall_s']} s)")
    print(f"{'arm':<24} {'draws':>8} {'position keying':>16} {'identity keying':>16}   (applied draws only: position / identity)")
    tot = {"position": [0, 0], "identity": [0, 0]}
    for name, per in res["arms"].items():
        pos, ide = per["position"], per["identity"]
        for k in tot:
            tot[k][0] += per[k]["identical"]
            tot[k][1] += per[k]["compared"]
        print(f"{name:<24} {pos['compared']:>8} {100 * pos['share']:>15.1f}% {100 * ide['share']:>15.1f}%   "
              f"({100 * (pos['share_applied'] or 0):.1f}% / {100 * (ide['share_applied'] or 0):.1f}%)")
    print(f"{'all arms':<24} {tot['position'][1]:>8} {100 * tot['position'][0] / tot['position'][1]:>15.1f}% "
          f"{100 * tot['identity'][0] / tot['identity'][1]:>15.1f}%")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
