"""How long the confirmatory analysis of an ablation takes at hundreds of arms (a sweep can have up to
MAX_ARMS = 500): ``mmdata.ablate.stats.analyze`` now, against the algorithm before (each interval's bisection
ran the sequential boundary over every Holm level down to the arm's: O(arms) per test, O(arms²) in all),
on the same families, with a check that both give the same answer to the last bit.

The families look like avdigits accuracies (points, rounded to whole test examples of 360, so ties are
common): a paired difference per seed with the noise of ``mmdata.ablate.testing``, most arms null, one in
eight with an effect of 1-2 paired sd either way.

    .venv/bin/python benchmarks/ablate_analyze_scale.py                       # 50, 100, 400 arms x 50 seeds, fixed
    .venv/bin/python benchmarks/ablate_analyze_scale.py --adaptive --seeds 20 # default looks, arms stopped at random looks
    .venv/bin/python benchmarks/ablate_analyze_scale.py --old-up-to 100       # skip the old algorithm above 100 arms

The algorithm before is the verbatim copy kept as the oracle in tests/ablate/test_stats_scale.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, machine  # noqa: E402

from mmdata.ablate.schedule import default_looks  # noqa: E402
from mmdata.ablate.stats import Looks, analyze  # noqa: E402
from mmdata.ablate.testing import DRAW_SD, SEED_SD  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def reference() -> Any:
    """tests/ablate/test_stats_scale.py, which keeps the algorithm before as the oracle."""
    spec = importlib.util.spec_from_file_location("stats_scale_reference", ROOT / "tests/ablate/test_stats_scale.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def family(arms: int, seeds: int, looks: Looks, rng: np.random.Generator) -> dict[str, Any]:
    """analyze() keywords: ``arms`` arms of paired accuracy differences in points (rho 0.5 with the baseline's
    draws), one in eight with an effect; in an adaptive design each arm stopped at a random look."""
    step = 100 / 360
    sd_d = DRAW_SD * 100  # sqrt(2 (1 - 0.5)) = 1
    base_draws = rng.normal(0, DRAW_SD * 100, seeds)
    seed_fx = rng.normal(0, SEED_SD * 100, seeds)
    base = np.round((83 + seed_fx + base_draws) / step) * step
    diffs: dict[str, dict[int, float]] = {}
    n_looks: dict[str, int] = {}
    for i in range(arms):
        effect = float(rng.choice([1.0, -1.0, 2.0, -2.0])) * sd_d if rng.random() < 1 / 8 else 0.0
        y = 83 + seed_fx + 0.5 * base_draws + math.sqrt(0.75) * rng.normal(0, DRAW_SD * 100, seeds) + effect
        d = {s: float(v) for s, v in enumerate(np.round(y / step) * step - base)}
        if len(looks.sizes) > 1:
            k = int(rng.integers(1, len(looks.sizes) + 1))
            n_looks[f"arm{i}"] = k
            d = {s: v for s, v in d.items() if s < looks.sizes[k - 1]}
        diffs[f"arm{i}"] = d
    return {"diffs": diffs, "looks": looks, "delta": float(np.std(base, ddof=1)), "n_looks": n_looks or None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", type=int, nargs="+", default=[50, 100, 400])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--adaptive", action="store_true", help="the default adaptive looks instead of one look")
    ap.add_argument("--old-up-to", type=int, default=10**9, help="time the old algorithm only up to this many arms")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs of the new algorithm (the old: one)")
    args = ap.parse_args()
    looks = default_looks(args.seeds) if args.adaptive else Looks((args.seeds,))
    ref = reference()
    analyze(**family(3, args.seeds, looks, np.random.default_rng(0)))  # warm: reference patterns, scipy imports
    print(f"# {machine()}")
    print(f"# analyze(), {args.seeds} seeds, looks {list(looks.sizes)} ({looks.spending if args.adaptive else 'fixed'})")
    print(f"# new: best of {args.repeats} runs; old: one run")
    print("| arms | decided | old (s) | new (s) | old / new | same answer |")
    print("|---:|---:|---:|---:|---:|---|")
    for m in args.arms:
        kw = family(m, args.seeds, looks, np.random.default_rng(m))
        t_new, new = best_of(lambda: analyze(**kw), args.repeats)  # a shared machine: the least disturbed run
        decided = sum(e["rejected"] for e in new.values())
        if m <= args.old_up_to:
            t0 = time.perf_counter()
            old = ref.reference_analyze(**kw)
            t_old = time.perf_counter() - t0
            same = "yes, bit for bit" if ref._same(new, old) else "**NO**"
            print(f"| {m} | {decided} | {t_old:.1f} | {t_new:.2f} | **{t_old / t_new:.0f}x** | {same} |", flush=True)
        else:
            print(f"| {m} | {decided} | (skipped) | {t_new:.2f} | | |", flush=True)


if __name__ == "__main__":
    main()
