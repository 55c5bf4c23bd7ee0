"""Why common random numbers stop paying off with longer training: how far apart do two trainings end
that differ by one rounding, by one op's draws, or by one op?

``benchmarks/crn_noise.py`` found that sharing the retained ops' draws (op identity keying) lowers
the paired sd of leave-one-out arms at 3 epochs but not at the demo's 6. One reading: once anything
differs, the two trainings drift apart (chaos), and at 6 epochs the final models no longer feel what
the arms shared. Another: one op's change is by itself as large a change as fresh draws of all ops.
This script tells them apart.

On avdigits with the full recipe of ``recipes/ablations/avdigits_loo.yaml``, the ablation runner
trains, on the same ``--seeds`` seeds, for each of ``--epochs``:

* the baseline (the full recipe);
* ``nudged``: the same recipe with ``audio.noise``'s ``max_snr_db`` raised by 1e-6 dB. Every draw of
  every op is shared with the baseline (op identity keying); where the noise op applies, its SNR moves
  by under 1e-6 dB and the audio samples by about one float32 rounding (relative change <= ~1.2e-7);
  images, text, data order, initialisation and dropout are identical;
* ``max_snr_db=25``: a sweep's neighbouring value (the recipe has 20 dB): every draw shared, the
  noise op's SNRs spread over 0–25 dB instead of 0–20;
* ``max_snr_db=25, fresh``: the same recipe with fresh draws for the noise op (what a sweep arm would
  get without common random numbers for that op);
* ``fresh audio.noise``: ``audio.noise`` draws afresh (an explicit ``id:`` gives it another key); the
  other five ops share every draw;
* ``-audio.noise``: the leave-one-out arm (the op removed; the other five share every draw);
* ``identity``: the A/A control, fresh draws of every op (nothing shared).

Per epoch budget and arm it prints the sd of the paired differences (arm − baseline, accuracy
points), its ratio to the identity control's with a seed-bootstrap 95% interval, the Pitman–Morgan p of
"the same sd as the identity control" (the differences are paired by seed), and the share of test
examples on which the arm's and the baseline's models disagree
(:func:`mmdata.ablate.stats.eval_split_noise`). Chaos would put ``nudged`` near the identity control;
if it stays close while ``fresh audio.noise`` ends as far apart as the control, no sharing of the
other ops' draws can make a one-op change less noisy at that budget.

    .venv/bin/python benchmarks/crn_butterfly.py --out runs/butterfly --seeds 20 --epochs 3 6   # resumable
    .venv/bin/python benchmarks/crn_butterfly.py --out runs/butterfly --epochs 3 6 --analyse-only
"""

from __future__ import annotations

import argparse
import copy
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
NUDGE_DB = 1e-6
BASE = "baseline"


SWEEP_DB = 25.0  # a sweep's neighbouring value of audio.noise's max_snr_db (the recipe has 20)
ARMS = ("nudged", f"max_snr_db={SWEEP_DB:g}", f"max_snr_db={SWEEP_DB:g}, fresh", "fresh audio.noise", "-audio.noise",
        "identity")


def recipes() -> tuple[dict, dict[str, dict]]:
    """(the full recipe, {arm name: its recipe}) for the arms but the identity control."""
    full = yaml.safe_load((ROOT / "recipes" / "ablations" / "avdigits_loo.yaml").read_text())["design"]["recipe"]
    i = next(i for i, s in enumerate(full["audio"]) if s["op"] == "noise")
    arms = {name: copy.deepcopy(full) for name in ARMS[:-1]}
    arms["nudged"]["audio"][i]["max_snr_db"] = float(full["audio"][i]["max_snr_db"]) + NUDGE_DB
    for name in ARMS[1:3]:
        arms[name]["audio"][i]["max_snr_db"] = SWEEP_DB
    for name in ARMS[2:4]:
        arms[name]["audio"][i]["id"] = "noise_fresh"
    del arms["-audio.noise"]["audio"][i]
    return full, arms


def config(data: str, seeds: int, epochs: int) -> dict:
    full, arms = recipes()
    return {"dataset": {"path": data}, "trainer": {"epochs": epochs, "eval_robustness": False}, "seeds": seeds,
            "design": {"mode": "explicit", "baseline": full, "arms": arms},
            "controls": {"identity": True, "label_noise": 0}}


def analyse(d: Path) -> dict | None:
    """The figures of one epoch budget's folder, on the seeds all three configurations finished."""
    from mmdata.ablate.stats import eval_split_noise

    got = current_runs(d)
    if got is None:
        return None
    ab, rows = got
    acc: dict[str, dict[int, float]] = {}
    codes: dict[str, dict[int, str]] = {}
    for r in rows:
        acc.setdefault(r["arm"], {})[int(r["seed"])] = 100 * float(r["test_accuracy"])
        if r.get("correct_on_test"):
            codes.setdefault(r["arm"], {})[int(r["seed"])] = r["correct_on_test"]
    if BASE not in acc or "identity" not in acc:
        return None
    arms = [a for a in ARMS if a in acc]
    seeds = sorted(set.intersection(*(set(acc[a]) for a in [BASE, *arms])))
    if len(seeds) < 3:
        return {"epochs": ab.trainer.get("epochs"), "seeds": seeds}
    diff = {a: np.array([acc[a][s] - acc[BASE][s] for s in seeds]) for a in arms}
    ref = diff["identity"]
    keep = {arm: {s: c for s, c in per.items() if s in seeds} for arm, per in codes.items()}
    split = eval_split_noise(keep, BASE, arms)
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(seeds), len(seeds)) for _ in range(5000)]
    out: dict = {"epochs": ab.trainer.get("epochs"), "seeds": seeds, "n": len(seeds),
                 "baseline_mean": float(np.mean([acc[BASE][s] for s in seeds])), "arms": {}}
    for a, d in diff.items():
        boot = [math.sqrt(d[i].var(ddof=1) / ref[i].var(ddof=1)) for i in draws if ref[i].var(ddof=1) > 0]
        out["arms"][a] = {
            "sd": float(d.std(ddof=1)), "mean": float(d.mean()),
            "ratio": float(d.std(ddof=1) / ref.std(ddof=1)) if ref.std(ddof=1) > 0 else math.nan,
            "ratio_ci95": [float(v) for v in np.percentile(boot, [2.5, 97.5])] if boot and a != "identity" else None,
            # Pitman-Morgan: equal variances of two paired samples <=> corr(x + y, x - y) = 0
            "pitman_morgan_p": float(stats.pearsonr(d + ref, d - ref)[1]) if a != "identity" else None,
            "disagreement": split.get(a, {}).get("disagreement"), "split_share": split.get(a, {}).get("share")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/butterfly"))
    ap.add_argument("--data", type=Path, default=None, help="avdigits folder (default: OUT/data, built if missing)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, nargs="+", default=[3, 6])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--analyse-only", action="store_true", help="analyse the runs there (a partial run: common seeds)")
    args = ap.parse_args()
    if args.seeds < 3:
        ap.error("--seeds: at least 3 (an sd and its interval need them)")
    if not args.analyse_only:
        from mmdata.ablate import run
        from mmdata.datasets.avdigits import build

        data = str(args.data or args.out / "data")
        if not (Path(data) / "dataset.json").exists():
            build(data, progress=False)
        for e in args.epochs:
            run(config(data, args.seeds, e), args.out / f"epochs-{e}", workers=args.workers, plots=False, progress=False)
    print(f"machine: {machine()}")
    print(f"sd of paired differences (arm - baseline, accuracy points) and its ratio to the identity control's; "
          f"nudged: audio.noise max_snr_db +{NUDGE_DB:g} dB, every draw shared")
    print(f"  {'epochs':>6s} {'arm':24s} {'n':>3s} {'sd':>6s} {'ratio (95%)':>18s} {'PM p':>6s} {'disagree':>9s} {'mean d':>7s}")
    result = {"machine": machine(), "nudge_db": NUDGE_DB, "budgets": []}
    for e in args.epochs:
        r = analyse(args.out / f"epochs-{e}")
        if not r or "arms" not in r:
            print(f"  {e:6d}  (fewer than 3 seeds finished by every configuration)")
            continue
        result["budgets"].append(r)
        print(f"  {e:6d} baseline accuracy {r['baseline_mean']:.1f}% over {r['n']} seeds")
        for a, v in r["arms"].items():
            ci = f"({v['ratio_ci95'][0]:.2f}-{v['ratio_ci95'][1]:.2f})" if v["ratio_ci95"] else ""
            pm = f"{v['pitman_morgan_p']:.3f}" if v["pitman_morgan_p"] is not None else ""
            dis = f"{100 * v['disagreement']:.1f}%" if v["disagreement"] is not None else "-"
            print(f"  {e:6d} {a:24s} {r['n']:3d} {v['sd']:6.2f} {v['ratio']:6.2f} {ci:>11s} {pm:>6s} {dis:>9s} {v['mean']:+7.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "butterfly.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
