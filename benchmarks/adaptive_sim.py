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

from mmdata.ablate.schedule import Design, walk  # noqa: E402

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
    if args.report_aa:
        r = report_aa(args.report_aa, args.out)
        print(f"report-wide A/A ({r['families']} families through the runner and report): families with any "
              f"confirmatory verdict {r['fwer_report']:.3f} (target <= 0.05)", flush=True)
        results["report_aa"] = r
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
