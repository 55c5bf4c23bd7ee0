"""Cross-modal results on avdigits (tables for README "Results" / docs/crossmodal.md).

Part ``labels``: test accuracy with a fraction of the training labels (``--label-fraction``), with and
without contrastive pre-training on *all* training samples (their labels unused), mean ± std over
seeds, the paired difference to training from scratch, and the retrieval reached by pre-training.
Arms: ``scratch`` (concat fusion, random init), ``pretrain + fine-tune`` (concat), ``pretrain +
probe`` (frozen encoders, linear layer), ``random + probe`` (a linear probe on untrained encoders:
what the architecture alone gives).

Part ``fusions``: the hierarchical and two-tower fusions in the format of the README fusion table
(full labels, 15 epochs; accuracy with each modality removed).

Run: .venv/bin/python benchmarks/crossmodal_table.py [--part labels|fusions|all] [--seeds 5] [--workers 2]
Prints markdown tables (paste into README / docs/crossmodal.md / benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ARMS = {
    "scratch": {},
    "pretrain + fine-tune": {"pretrain": "contrastive"},
    "pretrain + probe": {"pretrain": "contrastive", "probe": True},
    "random + probe": {"probe": True},
}
FUSIONS = {
    "hierarchical (image+audio)+text": ("hierarchical", {"order": "(image+audio)+text"}),
    "hierarchical image+(audio+text)": ("hierarchical", {"order": "image+(audio+text)"}),
    "two_tower (image vs audio+text), mlp": ("two_tower", {"interaction": "mlp"}),
    "two_tower (image vs audio+text), dot": ("two_tower", {"interaction": "dot"}),
    "two_tower (image vs audio+text), bilinear": ("two_tower", {"interaction": "bilinear"}),
}


def run_one(job: tuple[str, str, int, dict[str, Any]]) -> tuple[str, int, dict[str, Any]]:
    name, data, seed, kw = job
    os.environ["OMP_NUM_THREADS"] = "1"
    from mmdata.train import train

    m = train(data, seed=seed, threads=1, **kw)
    pairs = m.get("retrieval", {})
    cls = [d["R@1"] for e in pairs.values() for d in e.get("class", {}).values()]
    return name, seed, {"acc": m["test"]["accuracy"], "wall": m["wall_s"], "missing": m.get("robustness", {}).get("missing", {}),
                        "class_r1": statistics.mean(cls) if cls else None, "labelled": m.get("labelled_train")}


def _mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["labels", "fusions", "all"], default="all")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--pretrain-epochs", type=int, default=20)
    ap.add_argument("--fractions", default="0.1,1.0", help="label fractions for the labels part")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    from mmdata.datasets.avdigits import build

    data = args.data or str(build(Path(tempfile.mkdtemp()) / "avdigits", progress=False))
    fractions = [float(f) for f in args.fractions.split(",")]
    jobs = []
    if args.part in ("labels", "all"):
        for f in fractions:
            for arm, kw in ARMS.items():
                if f == 1.0 and "probe" in kw:
                    continue  # probes are the low-label protocol
                extra = {"pretrain_epochs": args.pretrain_epochs} if "pretrain" in kw else {}
                jobs += [(f"labels|{f}|{arm}", data, s, {"epochs": args.epochs, "label_fraction": f, "eval_robustness": False,
                                                         **kw, **extra}) for s in range(args.seeds)]
    if args.part in ("fusions", "all"):
        for name, (fusion, fa) in FUSIONS.items():
            jobs += [(f"fusions|{name}", data, s, {"epochs": args.epochs, "fusion": fusion, "fusion_args": fa})
                     for s in range(args.seeds)]
    res: dict[str, dict[int, dict[str, Any]]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, seed, r in pool.map(run_one, jobs):
            res.setdefault(name, {})[seed] = r
            print(f"  {name} seed {seed}: {r['acc']:.3f} ({r['wall']:.0f} s)", file=sys.stderr, flush=True)
    print(f"avdigits, {args.seeds} seeds, {args.epochs} epochs (+{args.pretrain_epochs} of pre-training), "
          f"1 thread per run; {machine()}\n")
    if args.part in ("labels", "all"):
        print("| labels | arm | test accuracy % (mean ± sd) | Δ vs scratch (mean, min..max over seeds) | "
              "class-level R@1 after pre-training | labelled samples | s / run |")
        print("|---|---|---|---|---|---|---|")
        for f in fractions:
            base = res.get(f"labels|{f}|scratch", {})
            for arm in ARMS:
                rs = res.get(f"labels|{f}|{arm}")
                if not rs:
                    continue
                accs = [r["acc"] * 100 for r in rs.values()]
                deltas = [(rs[s]["acc"] - base[s]["acc"]) * 100 for s in rs if s in base]
                d = "—" if arm == "scratch" else f"{statistics.mean(deltas):+.1f} ({min(deltas):+.1f}..{max(deltas):+.1f})"
                r1 = [r["class_r1"] for r in rs.values() if r["class_r1"] is not None]
                lab = [r["labelled"] for r in rs.values() if r["labelled"] is not None]
                cells = [f"{f:g}", arm, _mean_sd(accs), d, f"{statistics.mean(r1) * 100:.1f}%" if r1 else "—",
                         f"{statistics.mean(lab):.0f}" if lab else "all", f"{statistics.mean(r['wall'] for r in rs.values()):.0f}"]
                print("| " + " | ".join(cells) + " |")
        print()
    if args.part in ("fusions", "all"):
        print("| model | test accuracy (mean ± std) | without image | without audio | without text | s / run |")
        print("|---|---|---|---|---|---|")
        for name in FUSIONS:
            rs = list(res.get(f"fusions|{name}", {}).values())
            if not rs:
                continue
            miss = [statistics.mean(r["missing"][m] * 100 for r in rs) for m in ("image", "audio", "text")]
            print(f"| {name} | {_mean_sd([r['acc'] * 100 for r in rs])} | " + " | ".join(f"{v:.1f}" for v in miss)
                  + f" | {statistics.mean(r['wall'] for r in rs):.1f} |")


if __name__ == "__main__":
    main()
