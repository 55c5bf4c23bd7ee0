"""`mmdata inspect` on a large index: time and peak memory, columnar (what inspect does) vs Python rows.

A small dataset is sharded, then its index is repeated to N rows (new keys) and its card edited to
list N samples, so the index looks like a big dataset's without writing N media files. Each variant
runs in a fresh process so peaks do not mix:

* ``inspect``      — :func:`mmdata.shards.inspect.inspect` (the index summarised column by column in Arrow);
* ``python rows``  — only reading the same index and turning it into Python rows (``to_pydict``), the
  first step of the row-by-row summary inspect did before: a lower bound on that design's cost.

Run: .venv/bin/python benchmarks/inspect_scale.py [--rows 1000000]
Prints the table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

CHILD = """
import json, resource, sys, time
variant, ds = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if variant == "inspect":
    from mmdata.shards.inspect import inspect
    n = inspect(ds)["samples"]
else:
    from mmdata.shards import index as idx
    n = len(idx.load_index(ds).to_pydict()["key"])
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "samples": n}))
"""


def make_index(root: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import mmdata
    from mmdata.testing import make_sample_folder

    ds = root / "ds"
    mmdata.shard(make_sample_folder(root / "raw", n=8), ds, progress=False)
    t = pq.read_table(ds / "index.parquet")
    big = pa.concat_tables([t] * (rows // t.num_rows))
    big = big.set_column(big.schema.get_field_index("key"), "key",
                         pa.array([f"k{i:09d}" for i in range(big.num_rows)]))
    pq.write_table(big, ds / "index.parquet")
    card = json.loads((ds / "dataset.json").read_text())
    for entry in card["splits"].values():
        entry["samples"] = big.num_rows
    (ds / "dataset.json").write_text(json.dumps(card))
    return ds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_index(Path(tmp), args.rows)
        out = {}
        for variant in ("inspect", "python rows"):
            proc = subprocess.run([sys.executable, "-c", CHILD, variant, str(ds)], capture_output=True, text=True,
                                  check=True)
            out[variant] = json.loads(proc.stdout)
    print(f"machine: {machine()}; index of {out['inspect']['samples']:,} rows")
    print("| variant | seconds | peak RSS (MB) |\n|---|---|---|")
    for variant, r in out.items():
        print(f"| {variant} | {r['seconds']:.2f} | {r['peak_mb']:.0f} |")
    a, b = out["inspect"], out["python rows"]
    print(f"python rows / inspect: {b['seconds'] / a['seconds']:.1f}x the time, {b['peak_mb'] / a['peak_mb']:.1f}x the memory "
          "(rows alone, before any summary)")


if __name__ == "__main__":
    main()
