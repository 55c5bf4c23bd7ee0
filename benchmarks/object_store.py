"""`mmdata shard` into an object store vs a local folder: the cost of uploading each shard as one
object, the journal as one object per shard and the metadata at the end. And `mmdata shard` from a
raw source on the store (listed on the driver, each shard's members fetched by its writer thread in
batched requests) vs fetching every source file once with s3fs alone (``cat_ranges``: the floor
for any client of this server), so the ratio is mmdata's overhead over the fetches themselves.

The store is moto's S3 server on 127.0.0.1 (a local emulator in a thread of this process, written
through s3fs over HTTP): it shows mmdata's own per-shard cost (a temp file, one PUT, one journal
PUT) and s3fs's, not a cloud store's latency or bandwidth. Passes are interleaved (local, s3, local,
...) and the best of each is kept; every pass must give the same fingerprint, and the s3 output is
compared byte for byte with the local one once.

moto's server answers a GET in ~15 ms of Python on 2 loaded cores (a cloud store: tens of ms of
latency, many in parallel), so the source comparison uses a smaller folder (``--source-n``).

Run: .venv/bin/python benchmarks/object_store.py [--n 2000] [--source-n 300] [--maxcount 100] [--passes 3] [--workers 2]
Needs: pip install -e '.[s3]' 'moto[server]' (in a clone; `pip install mmdata` is another project).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--source-n", type=int, default=300)
    ap.add_argument("--maxcount", type=int, default=100)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import s3fs
    from moto.server import ThreadedMotoServer

    import mmdata
    from mmdata.testing import make_sample_folder

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    opts = {"endpoint_url": f"http://{host}:{port}", "key": "bench", "secret": "bench"}
    fs = s3fs.S3FileSystem(**opts)
    fs.mkdir("bench")
    tmp = Path(tempfile.mkdtemp(prefix="mmdata-objstore-"))
    try:
        raw = make_sample_folder(tmp / "raw", n=args.n)
        common = dict(maxcount=args.maxcount, workers=args.workers, progress=False)
        runs = {
            "local folder": lambda p: mmdata.shard(raw, tmp / f"local{p}" / "ds", **common),
            "s3 (moto, local)": lambda p: mmdata.shard(raw, f"s3://bench/p{p}/ds", storage_options=opts, **common),
        }
        best: dict[str, float] = {}
        prints = set()
        print(f"{machine()}; {args.n} samples, maxcount {args.maxcount}, {args.workers} writer threads")
        for p in range(args.passes):
            for label, fn in runs.items():
                t0 = time.perf_counter()
                rep = fn(p)
                wall = time.perf_counter() - t0
                prints.add(rep["fingerprint"])
                best[label] = min(best.get(label, wall), wall)
                print(f"  pass {p + 1} {label:18s} wall {wall:6.2f} s ({rep['shards']} shards)")
        assert len(prints) == 1, f"outputs differ: {prints}"
        local = {str(f.relative_to(tmp / "local0" / "ds")): f.read_bytes()
                 for f in sorted((tmp / "local0" / "ds").rglob("*")) if f.is_file()}
        remote = {k[len("bench/p0/ds/"):]: fs.cat_file(k) for k in fs.find("bench/p0/ds")}
        assert remote == local, "the s3 output differs from the local one"
        shards = rep["shards"]
        extra = (best["s3 (moto, local)"] - best["local folder"]) / shards * 1000
        print(f"best: local {best['local folder']:.2f} s, s3 {best['s3 (moto, local)']:.2f} s: "
              f"ratio s3/local {best['s3 (moto, local)'] / best['local folder']:.2f}x, "
              f"+{extra:.0f} ms per shard; outputs byte-identical")
        _source(fs, opts, tmp, args, common)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        server.stop()


def _source(fs, opts: dict, tmp: Path, args: argparse.Namespace, common: dict) -> None:  # noqa: ANN001
    """A raw source on the store -> a local folder, vs fetching its files with s3fs alone."""
    import mmdata
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp / "raw_small", n=args.source_n)
    fs.put(str(raw), "bench/raw", recursive=True)
    files = sorted(p for p in fs.find("bench/raw"))
    runs = {
        "local folder": lambda p: mmdata.shard(raw, tmp / f"slocal{p}" / "ds", **common),
        "s3fs fetch only": lambda p: fs.cat_ranges(files, None, None, on_error="raise"),
        "shard from s3": lambda p: mmdata.shard("s3://bench/raw", tmp / f"sremote{p}" / "ds", storage_options=opts,
                                                **common),
    }
    best: dict[str, float] = {}
    print(f"source on the store: {args.source_n} samples ({len(files)} files), maxcount {args.maxcount}")
    for p in range(args.passes):
        for label, fn in runs.items():
            t0 = time.perf_counter()
            fn(p)
            wall = time.perf_counter() - t0
            best[label] = min(best.get(label, wall), wall)
            print(f"  pass {p + 1} {label:16s} wall {wall:6.2f} s")
    tree = [{str(f.relative_to(tmp / d / "ds")): f.read_bytes() for f in sorted((tmp / d / "ds").rglob("*"))
             if f.is_file()} for d in ("slocal0", "sremote0")]
    assert tree[0] == tree[1], "sharding the s3 source differs from sharding the local folder"
    print(f"best: shard from s3 {best['shard from s3']:.2f} s, s3fs fetch only {best['s3fs fetch only']:.2f} s "
          f"(ratio {best['shard from s3'] / best['s3fs fetch only']:.2f}x), local folder {best['local folder']:.2f} s; "
          f"{best['s3fs fetch only'] / len(files) * 1000:.1f} ms per GET here; output byte-identical to the local one")


if __name__ == "__main__":
    main()
