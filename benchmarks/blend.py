"""Blending two datasets: mmdata.blend vs reading each dataset alone, and vs webdataset's RandomMix.

Two dataset folders of the same kind of sample (a 64x64 JPEG, a ~100-character caption, a label):
``a`` with 2/3 and ``b`` with 1/3 of ``--n`` samples. Every reader decodes the image to a uint8 CHW
tensor and keeps text and label (webdataset: ``.decode("pil")`` then ``np.asarray`` -> CHW tensor, as
its docs build tensors; it reads mmdata's tars, shuffle buffer 512 as mmdata's default):

* ``alone``: ``open_dataset(a)`` then ``open_dataset(b)`` (shuffled), one after the other — the cost
  of the samples without mixing;
* ``blend``: ``mmdata.blend({"a": a, "b": b}, shuffle=True)`` — the same samples, mixed;
* ``wds-mix``: ``wds.RandomMix([a, b], probs=[2, 1])`` over shuffled ``WebDataset`` pipelines (samples
  drawn by probability: an epoch's counts per dataset vary, and the mix stops when the first dataset
  runs out unless ``longest=True``, used here).

Single process; passes interleaved, best of ``--passes``. Prints samples/s and the ratios from this one
run; record them in RESULTS.md with the machine.

Run: .venv/bin/python benchmarks/blend.py --n 6000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def _make(root: Path, start: int, n: int) -> None:
    from mmdata.testing import image_bytes, text_for

    root.mkdir(parents=True)
    for i in range(start, start + n):
        k = root / f"{i:06d}"
        k.with_suffix(".jpg").write_bytes(image_bytes(i, size=(64, 64), fmt="jpg"))
        k.with_suffix(".txt").write_text(((text_for(i) + " ") * 8)[:100].strip(), encoding="utf-8")
        k.with_suffix(".cls").write_text(str(i % 10), encoding="utf-8")


def _count(it: Iterable[Any]) -> int:
    return sum(1 for _ in it)


def _wds(tars: list[str], seed: int) -> Any:
    import numpy as np
    import torch
    import webdataset as wds

    def to_tensor(s: dict[str, Any]) -> dict[str, Any]:
        return {"__key__": s["__key__"], "image": torch.from_numpy(np.array(s["jpg"])).permute(2, 0, 1),
                "text": s["txt"], "label": s["cls"]}

    return (wds.WebDataset(tars, shardshuffle=len(tars), seed=seed, empty_check=False).shuffle(512)
            .decode("pil").map(to_tensor))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6000, help="samples in all (a: 2/3, b: 1/3)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import mmdata
    import webdataset as wds

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        na = args.n * 2 // 3
        _make(t / "ra", 0, na)
        _make(t / "rb", na, args.n - na)
        for name in ("a", "b"):
            mmdata.shard(t / f"r{name}", t / name, maxcount=500, progress=False)
        tars = {name: sorted(str(p) for p in (t / name).glob("**/*.tar")) for name in ("a", "b")}
        paths = {"a": str(t / "a"), "b": str(t / "b")}

        def alone(e: int) -> int:
            return sum(_count(mmdata.open_dataset(p, shuffle=True, seed=0, epoch=e)) for p in paths.values())

        def blend(e: int) -> int:
            return _count(mmdata.blend(paths, shuffle=True, seed=0, epoch=e))

        def wds_mix(e: int) -> int:
            mix = wds.RandomMix([_wds(tars["a"], e), _wds(tars["b"], e)], probs=[2, 1], longest=True)
            return _count(mix)

        readers: dict[str, Callable[[int], int]] = {"alone": alone, "blend": blend, "wds-mix": wds_mix}
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for p in range(args.passes):
            for name, fn in readers.items():
                t0 = time.perf_counter()
                counts[name] = fn(p)
                rate = counts[name] / (time.perf_counter() - t0)
                best[name] = max(best.get(name, 0.0), rate)
    out = {"machine": machine(), "n": args.n, "samples_per_s": {k: round(v, 1) for k, v in best.items()},
           "samples": counts, "blend/alone": round(best["blend"] / best["alone"], 3),
           "blend/wds-mix": round(best["blend"] / best["wds-mix"], 3)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"machine: {out['machine']}; {args.n} samples (a {na}, b {args.n - na}), decoded, single process, best of "
          f"{args.passes}")
    for k, v in best.items():
        print(f"  {k:8s} {v:9.1f} samples/s  ({counts[k]} samples a pass)")
    print(f"  blend / alone   {out['blend/alone']:.3f}x")
    print(f"  blend / wds-mix {out['blend/wds-mix']:.3f}x")


if __name__ == "__main__":
    main()
