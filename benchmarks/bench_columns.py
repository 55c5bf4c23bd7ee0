"""Raw read throughput of the column layout against the row (samples) layout of the same data.

The same samples (``mmdata.testing.make_sample_folder``: PNG + FLAC + caption + label, audio left out of
every 4th sample and the caption of every 5th) are sharded twice, ``layout="samples"`` (one tar per shard
holding every member of a sample) and ``layout="columns"`` (one tar series per field:
``image/train-000000.tar``, ``audio/train-000000.tar``, ...), with the same shard boundaries. Each is read
raw (``decode=False``: member bytes, no decode, no augment), in one process, in order; the passes are
interleaved (row, columns, row, columns, ...) and the best of ``--passes`` counts. Printed: samples/s of
each layout and the ratio row / columns from this one run (1.0x: the column layout reads as fast).

``--modalities image,label`` reads a subset (the column layout opens only those series).
``--profile`` runs cProfile over one columns pass and prints the top functions by own time.

Run: .venv/bin/python benchmarks/bench_columns.py            (20,000 samples, 10 shards; ~1 min on 2 cores)
     .venv/bin/python benchmarks/bench_columns.py --n 100000 --shards 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

LAYOUTS = ("samples", "columns")


def build(cache: Path, n: int, shards: int) -> Path:
    """Both layouts of the same ``n`` samples under ``cache/columns-<n>-<shards>`` (written once)."""
    import shutil

    import mmdata
    from mmdata.testing import make_sample_folder

    root = cache / f"columns-{n}-{shards}"
    if (root / "done.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    # small media: the read, not the page cache's copy of big files, is what is measured
    raw = make_sample_folder(root / "raw", n=n, missing=True, image_size=(16, 16), audio_seconds=0.05)
    for layout in LAYOUTS:
        mmdata.shard(raw, root / layout, maxcount=max(1, -(-n // shards)), layout=layout, progress=False)
    shutil.rmtree(raw)
    (root / "done.json").write_text(json.dumps({"n": n, "shards": shards, "build_s": round(time.perf_counter() - t0, 1)}))
    return root


def read_pass(folder: Path, modalities: list[str] | None) -> tuple[int, int, float]:
    """(samples, members, seconds) of one raw in-order pass."""
    import mmdata

    t0 = time.perf_counter()
    ds = mmdata.open_dataset(folder, decode=False, modalities=modalities)
    samples = members = 0
    for s in ds:
        samples += 1
        members += len(s.fields)
    return samples, members, time.perf_counter() - t0


def profile(folder: Path, modalities: list[str] | None, top: int = 25) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    read_pass(folder, modalities)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="samples")
    ap.add_argument("--shards", type=int, default=10, help="shards per layout")
    ap.add_argument("--passes", type=int, default=3, help="passes per layout (the best counts)")
    ap.add_argument("--modalities", default=None, help="comma-separated subset to read (default: every field)")
    ap.add_argument("--profile", action="store_true", help="cProfile one columns pass (after the timing)")
    ap.add_argument("--cache", default=os.environ.get("MMDATA_BENCH_CACHE", "/tmp/mmdata-bench"))
    args = ap.parse_args(argv)
    modalities = args.modalities.split(",") if args.modalities else None
    root = build(Path(args.cache), args.n, args.shards)
    print(f"{args.n} samples in {args.shards} shards per layout; modalities {modalities or 'all'}; {machine()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for layout in LAYOUTS:  # warm-up: imports, page cache, the index cache
        read_pass(root / layout, modalities)
    best: dict[str, float] = {}
    seen: dict[str, tuple[int, int]] = {}
    for _ in range(args.passes):
        for layout in LAYOUTS:
            samples, members, secs = read_pass(root / layout, modalities)
            best[layout] = min(best.get(layout, float("inf")), secs)
            seen[layout] = (samples, members)
    if seen["samples"] != seen["columns"]:
        print(f"  warning: the layouts gave different (samples, members): {seen}")
    rates = {layout: seen[layout][0] / best[layout] for layout in LAYOUTS}
    for layout in LAYOUTS:
        print(f"  {layout:8s} {rates[layout]:10.0f} samples/s  ({seen[layout][1]} members, best {best[layout]:.3f} s)")
    print(f"  -> row / columns = {rates['samples'] / rates['columns']:.2f}x")
    if args.profile:
        profile(root / "columns", modalities)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
