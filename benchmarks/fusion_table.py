"""Fusion results on avdigits: test accuracy (mean ± std over seeds) of each single modality and each
fusion, plus the accuracy of the best fusion with each modality removed, and the time per run.

Run: .venv/bin/python benchmarks/fusion_table.py [--seeds 5] [--epochs 15] [--workers 2]
Writes a markdown table to stdout (paste into README "Results" / benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

FUSIONS = ["early", "concat", "late", "mean", "max", "gated", "attention", "cross_attention", "tensor", "low_rank"]


def run_one(args: tuple[str, str, str, int, int]) -> tuple[str, int, dict]:
    data, name, mods, seed, epochs = args
    os.environ["OMP_NUM_THREADS"] = "1"
    from mmdata.train import train

    fusion = "concat" if name.startswith("only:") else name
    m = train(data, fusion=fusion, modalities=mods.split(","), epochs=epochs, seed=seed, threads=1)
    return name, seed, {"acc": m["test"]["accuracy"], "wall": m["wall_s"], "missing": m.get("robustness", {}).get("missing", {})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    from mmdata.datasets.avdigits import build

    data = args.data or str(build(Path(tempfile.mkdtemp()) / "avdigits", progress=False))
    jobs = [(data, f"only:{m}", m, s, args.epochs) for m in ("image", "audio", "text") for s in range(args.seeds)]
    jobs += [(data, f, "image,audio,text", s, args.epochs) for f in FUSIONS for s in range(args.seeds)]
    res: dict[str, list[dict]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, seed, r in pool.map(run_one, jobs):
            res.setdefault(name, []).append(r)
            print(f"  {name} seed {seed}: {r['acc']:.3f} ({r['wall']:.1f} s)", file=sys.stderr, flush=True)
    print(f"avdigits, {args.seeds} seeds x {args.epochs} epochs, 1 thread per run; {machine()}\n")
    print("| model | test accuracy (mean ± std) | without image | without audio | without text | s / run |")
    print("|---|---|---|---|---|---|")
    for name, rs in res.items():
        accs = [r["acc"] * 100 for r in rs]
        miss = {m: statistics.mean(r["missing"][m] * 100 for r in rs) if rs[0]["missing"] else None for m in ("image", "audio", "text")}
        cells = [f"{miss[m]:.1f}" if miss[m] is not None else "—" for m in ("image", "audio", "text")]
        print(f"| {name.replace('only:', '') + (' only' if name.startswith('only:') else '')} | {statistics.mean(accs):.1f} ± "
              f"{statistics.stdev(accs) if len(accs) > 1 else 0:.1f} | {' | '.join(cells)} | {statistics.mean(r['wall'] for r in rs):.1f} |")


if __name__ == "__main__":
    main()
