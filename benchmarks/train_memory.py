"""Peak memory of `mmdata train` as the dataset grows: one epoch on N vs 10 N generated samples.

Each run is a fresh process (so peaks do not mix) training the reference model (concat, all three
modalities) for one epoch + val + test evaluation, with ``cache`` set to:

* ``auto``   — the default: a split is decoded into memory only when it fits ``cache_budget_mb``;
* ``false``  — every split streamed through ``mmdata.loader`` batch by batch;
* ``true``   — every split decoded into memory (what the trainer did for every dataset before
  streaming; ``--with-memory`` adds it).

Samples look like avdigits: a 16x16 PNG, 0.5 s of 8 kHz WAV, a caption, one of 10 labels (payloads
cycle through 200 variants so generating 50k samples stays fast). Peak RSS is the child's
``ru_maxrss``; "above imports" subtracts its RSS after importing torch and mmdata.train.

Run: .venv/bin/python benchmarks/train_memory.py [--n 5000] [--factor 10] [--with-memory]
Prints the table for benchmarks/RESULTS.md; the target is peak(10 N) / peak(N) <= 1.3 with the default.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, rss_kb  # noqa: E402

VARIANTS = 200


def build(out: Path, n: int) -> Path:
    """A dataset of ``n`` generated samples (train/val/test 80/10/10) at ``out``."""
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import write_records
    from mmdata.testing import audio_bytes, image_bytes, text_for

    png = [image_bytes(i, size=(16, 16)) for i in range(VARIANTS)]
    wav = [audio_bytes(i, seconds=0.5, fmt="wav") for i in range(VARIANTS)]
    recs = [Record(f"{i:07d}", f"{i:07d}", {"png": png[i % VARIANTS], "wav": wav[i % VARIANTS],
                                            "txt": text_for(i % VARIANTS).encode()}, label=i % 10) for i in range(n)]
    write_records(recs, out, maxcount=1000, fractions={"train": 0.8, "val": 0.1, "test": 0.1}, progress=False,
                  label_names=[str(c) for c in range(10)])
    return out


def child(data: str, cache: str) -> None:
    import torch

    from mmdata.train import train

    torch.set_num_threads(1)
    base = rss_kb()
    t0 = time.perf_counter()
    m = train(data, epochs=1, seed=0, threads=1, eval_robustness=False, cache={"true": True, "false": False}.get(cache, cache))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_kb": peak, "base_kb": base, "wall_s": time.perf_counter() - t0, "cached": m["cache"],
                      "train": m["samples"]["train"]["samples"], "accuracy": m["test"]["accuracy"]}))


def measure(data: Path, cache: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", str(data), "--cache", cache], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"})
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--with-memory", action="store_true", help="also measure cache=true (everything decoded in memory)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.cache)
        return
    tmp = Path(tempfile.mkdtemp())
    sizes = (args.n, args.n * args.factor)
    t0 = time.perf_counter()
    data = {n: build(tmp / f"ds{n}", n) for n in sizes}
    print(f"generated {sizes[0]} and {sizes[1]} samples in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    modes = ["auto", "false"] + (["true"] if args.with_memory else [])
    print(f"{machine()}; one epoch (concat, image+audio+text, batch 64, 1 thread) + val + test, no robustness\n")
    print("| cache | samples | peak RSS MiB | above imports MiB | splits in memory | s | peak ratio | above-imports ratio |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for mode in modes:
        r = {n: measure(data[n], mode) for n in sizes}
        small, big = r[sizes[0]], r[sizes[1]]
        for n in sizes:
            x = r[n]
            mem = ", ".join(s for s, v in x["cached"].items() if v) or "none"
            ratio = (f"{big['peak_kb'] / small['peak_kb']:.2f}x", f"{(big['peak_kb'] - big['base_kb']) / (small['peak_kb'] - small['base_kb']):.2f}x") \
                if n == sizes[1] else ("", "")
            print(f"| {mode} | {n:,} | {x['peak_kb'] / 1024:.0f} | {(x['peak_kb'] - x['base_kb']) / 1024:.0f} | {mem} | "
                  f"{x['wall_s']:.0f} | {ratio[0]} | {ratio[1]} |", flush=True)


if __name__ == "__main__":
    main()
