"""Read throughput: mmdata.open_dataset vs the webdataset library vs plain tarfile, same shards.

Run: .venv/bin/python benchmarks/read.py [--n 3000]
Prints samples/s and ratios measured in this one run (best of 3 passes each).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    import numpy as np
    import soundfile as sf
    import torch
    import webdataset as wds

    import mmdata
    from mmdata.testing import make_sample_folder

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    make_sample_folder(tmp / "raw", n=args.n, missing=False)
    mmdata.shard(tmp / "raw", tmp / "ds", maxcount=500, progress=False)
    shards = sorted(str(p) for p in (tmp / "ds").glob("train-*.tar"))
    n = args.n

    def plain_tarfile() -> int:
        c = 0
        for s in shards:
            with tarfile.open(s) as tf:
                for m in tf:
                    if m.isfile():
                        tf.extractfile(m).read()
                        c += 1
        return c

    def wds_raw() -> int:
        return sum(1 for _ in wds.WebDataset(shards, shardshuffle=False, empty_check=False))

    def mm_raw() -> int:
        return sum(1 for _ in mmdata.open_dataset(tmp / "ds", decode=False))

    def audio_handler(key: str, data: bytes):  # soundfile handler (webdataset's needs torchaudio)
        if key.endswith("flac"):
            arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
            return torch.from_numpy(np.ascontiguousarray(arr.T)), sr
        return None

    def wds_decoded() -> int:
        ds = wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode(audio_handler, "torchrgb8")
        return sum(1 for s in ds if s["png"] is not None and s["txt"] is not None and s["cls"] is not None)

    def mm_decoded() -> int:
        return sum(1 for s in mmdata.open_dataset(tmp / "ds") if "image" in s)

    results = {}
    for name, fn in [("tarfile (members)", plain_tarfile), ("webdataset raw", wds_raw), ("mmdata raw", mm_raw),
                     ("webdataset decoded", wds_decoded), ("mmdata decoded", mm_decoded)]:
        t, count = best_of(fn)
        results[name] = n / t
        print(f"{name:22s} {n / t:10.0f} samples/s  ({count} items)")
    print(f"machine: {machine()}")
    print(f"ratio raw      mmdata / webdataset = {results['mmdata raw'] / results['webdataset raw']:.2f}x (target >= 2)")
    print(f"ratio raw      mmdata / tarfile    = {results['mmdata raw'] / results['tarfile (members)']:.2f}x")
    print(f"ratio decoded  mmdata / webdataset = {results['mmdata decoded'] / results['webdataset decoded']:.2f}x (target >= 1.2)")


if __name__ == "__main__":
    main()
