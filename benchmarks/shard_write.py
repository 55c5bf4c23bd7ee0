"""Sharding throughput: `mmdata shard` (1 and 2 workers) vs `tar cf` of the same files.

Run: .venv/bin/python benchmarks/shard_write.py [--n 2000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    import mmdata
    from mmdata.testing import make_sample_folder

    tmp = Path(tempfile.mkdtemp())
    raw = make_sample_folder(tmp / "raw", n=args.n, missing=False)
    size = sum(p.stat().st_size for p in raw.iterdir())

    def timed(fn) -> float:
        best = float("inf")
        for i in range(3):
            t0 = time.perf_counter()
            fn(i)
            best = min(best, time.perf_counter() - t0)
        return best

    t_tar = timed(lambda i: subprocess.run(["tar", "cf", str(tmp / f"all{i}.tar"), "-C", str(raw), "."], check=True))
    res = {}
    for w in (1, 2):
        def run(i: int, w: int = w) -> None:
            out = tmp / f"ds{w}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            mmdata.shard(raw, out, maxcount=250, workers=w, progress=False)
        res[w] = timed(run)
    n = args.n
    print(f"files: {n} samples, {size / 1e6:.1f} MB")
    print(f"tar cf               {n / t_tar:9.0f} samples/s  {size / t_tar / 1e6:7.1f} MB/s")
    for w, t in res.items():
        print(f"mmdata shard -j {w}     {n / t:9.0f} samples/s  {size / t / 1e6:7.1f} MB/s")
    print(f"machine: {machine()}")
    print(f"ratio mmdata(-j1) / tar cf = {t_tar / res[1]:.2f}x (target >= 0.5)")
    print(f"ratio mmdata(-j2) / mmdata(-j1) = {res[1] / res[2]:.2f}x (target > 1)")


if __name__ == "__main__":
    main()
