"""A/B of augmentation throughput across git revisions, in one process: each revision's ``mmdata`` package
is exported (``git archive``) into a temporary folder under another name (``mmdata_<rev>``), so the
revisions and the working tree run side by side, taking turns within every round (the order rotates per
round). On a shared machine this compares versions under the same load, which separate processes do not.
One untimed warm-up round (every workload of every version once: first-call costs such as lazy imports
and allocator growth) comes before the ``--rounds`` timed ones.

Same data and recipes as ``benchmarks/augment.py`` (image, audio; normalize where the revision has it).
Prints best-of-rounds times, batched speed / per-sample per version (best-of and the median of per-round
ratios), and each revision's batched time relative to the first revision given.

Run: .venv/bin/python benchmarks/augment_ab.py 3eb5af8 3c0ddd0 [--rounds 11] [--n 1024]
     (the working tree is always the last column, ``work``)
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))
import augment as bench  # noqa: E402 - the recipes being compared
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def export(rev: str, dest: Path) -> str:
    """``mmdata/`` at ``rev`` as package ``mmdata_<rev>`` under ``dest`` (imports rewritten, the built C
    module copied from this checkout); returns the package name."""
    name = "mmdata_" + re.sub(r"\W", "_", rev)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "mmdata"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest / "_x", filter="data")
    pkg = dest / name
    (dest / "_x" / "mmdata").rename(pkg)
    for so in (ROOT / "mmdata").rglob("*.so"):
        target = pkg / so.relative_to(ROOT / "mmdata")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, target)
    for py in pkg.rglob("*.py"):
        src = py.read_text(encoding="utf-8")
        src = re.sub(r"\bmmdata\.(?=[a-z_])", f"{name}.", src)
        src = re.sub(r"^(\s*)(from|import) mmdata\b(?!\.)", rf"\1\2 {name}", src, flags=re.M)
        py.write_text(src, encoding="utf-8")
    return name


def workloads(pkg: str, n: int, bs: int) -> dict[str, object]:
    import numpy as np
    import torch

    m = importlib.import_module(pkg)
    load = importlib.import_module(pkg + ".augment").load_recipe
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    wavs = (rng.standard_normal((n, 16000)) * 0.1).astype(np.float32)
    sizes = ((96, 128), (120, 90), (150, 200))
    photos = [rng.integers(0, 256, (*sizes[i % 3], 3), dtype=np.uint8) for i in range(n)]
    im = [m.Sample(f"i{i}", {"image": torch.from_numpy(np.ascontiguousarray(imgs[i].transpose(2, 0, 1)))}) for i in range(n)]
    au = [m.Sample(f"a{i}", {"audio": torch.from_numpy(wavs[i][None])}, sample_rate=16000) for i in range(n)]
    ph = [m.Sample(f"p{i}", {"image": torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))}) for i, p in enumerate(photos)]

    def batches(xs: list) -> list:
        return [m.collate(xs[i : i + bs]) for i in range(0, n, bs)]

    r, a = load(bench.IMAGE_RECIPE), load(bench.AUDIO_RECIPE)
    ib, ab = batches(im), batches(au)
    out = {"image per-sample": lambda: [r.apply_sample(s) for s in im], "image batched": lambda: [r.apply_batched(b) for b in ib],
           "audio per-sample": lambda: [a.apply_sample(s) for s in au], "audio batched": lambda: [a.apply_batched(b) for b in ab]}
    errors = importlib.import_module(pkg + ".errors")
    try:
        nr = load(bench.NORMALIZE_RECIPE)
    except errors.RecipeError:  # revisions before the normalize stage
        nr = None
    if nr is not None:
        pb = batches(ph)
        out["norm per-sample"] = lambda: [nr.normalize(s) for s in ph]
        out["norm batched"] = lambda: [nr.normalize_batched(b) for b in pb]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("revs", nargs="+", help="git revisions to compare with the working tree")
    ap.add_argument("--rounds", type=int, default=11, help="timed rounds, after one untimed warm-up round")
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    clock = time.process_time  # one thread: the CPU the work took, robust to a loaded machine
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        names = {rev: export(rev, Path(tmp)) for rev in args.revs}
        versions = {rev: workloads(pkg, args.n, args.batch) for rev, pkg in names.items()}
        versions["work"] = workloads("mmdata", args.n, args.batch)
        labels = list(versions)
        for k in versions["work"]:  # warm-up round, untimed
            for v in labels:
                if k in versions[v]:
                    versions[v][k]()  # type: ignore[operator]
        times: dict[tuple[str, str], list[float]] = {}
        for r in range(args.rounds):
            order = labels[r % len(labels):] + labels[: r % len(labels)]
            for k in versions["work"]:
                for v in order:
                    if k in versions[v]:
                        t0 = clock()
                        versions[v][k]()  # type: ignore[operator]
                        times.setdefault((v, k), []).append(clock() - t0)
    print(f"{'':18s} " + " ".join(f"{v:>10s}" for v in labels) + "   (ms, best of rounds)")
    for k in versions["work"]:
        print(f"{k:18s} " + " ".join(f"{min(times[(v, k)]) * 1e3:10.1f}" if (v, k) in times else f"{'-':>10s}" for v in labels))
    print("batched speed / per-sample (target >= 1): best-of | median of per-round ratios")
    for fam in ("image", "audio", "norm"):
        cells = []
        for v in labels:
            ps, b = times.get((v, fam + " per-sample")), times.get((v, fam + " batched"))
            cells.append(f"{v} {min(ps) / min(b):.2f}x | {statistics.median(x / y for x, y in zip(ps, b)):.2f}x" if ps and b else f"{v} -")
        print(f"{fam:6s} " + "   ".join(cells))
    base = labels[0]
    for fam in ("image", "audio", "norm"):
        ref = times.get((base, fam + " batched"))
        if ref:
            rel = [f"{v} {statistics.median(x / y for x, y in zip(times[(v, fam + ' batched')], ref)):.2f}x" for v in labels[1:]
                   if (v, fam + " batched") in times]
            print(f"{fam} batched time / {base}'s (median of per-round ratios): " + ", ".join(rel))
    print(f"machine: {machine()}, torch {torch.__version__}, clock: process CPU time, {args.rounds} rounds after a warm-up, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
