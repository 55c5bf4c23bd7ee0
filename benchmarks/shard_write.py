"""Sharding throughput: `mmdata shard` (1 and 2 workers) vs `tar cf` of the same files, and what the
optional C module and the media checks cost or pay.

Two scenarios: many tiny files (per-file cost) and media-sized files (bytes). One untimed warm-up
pass of every writer (imports, page cache, thread start-up) comes first; then the timed passes are
interleaved (tar, -j1, -j2, ..., tar, ...) and the best of each is kept, so drift in the machine's
speed hits every writer alike. Wall time decides the ratios; CPU time (user + sys, all threads)
is printed beside it, because a lone mmdata writer hashes on a helper thread.

Rows beside the default writer (all in this process, interleaved with the others):
* ``C: reads only`` / ``pure Python``: the same job with only ``_pack.read_files`` in C, and with no
  C at all (what ``tar_members`` and the C media parsers pay for);
* ``--check decode``: every image and audio file decoded in full;
* ``media checks``: the time of the header parsers + integrity checks alone over every file (C and
  Python), to compare with the whole job.

Run: .venv/bin/python benchmarks/shard_write.py [--n 2000] [--passes 7] [--main-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

SCENARIOS = {
    # many tiny files: the per-file cost dominates
    "small": dict(missing=False),
    # media-sized files: JPEG 224x224 + WAV 2 s 16 kHz (~70 KB per sample): bytes dominate
    "media": dict(missing=False, image_fmt="jpg", image_size=(224, 224), audio_fmt="wav", audio_seconds=2.0,
                  sample_rate=16000),
}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (tar; pool workers), all threads."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def timed(fn: Callable[[], object], output: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one pass; the output is deleted afterwards."""
    # start with no dirty pages: otherwise a writer is throttled for the writeback of the one before
    os.sync()
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    # Delete the output after each pass, so every pass writes into page-cache memory freed by the one
    # before. On a VM, the first touch of never-used guest memory can cost ~2.5 ms/MB (measured
    # here: 68 MB into fresh memory 168 ms, into recycled memory 14 ms), which would otherwise decide
    # the race by who happens to allocate fresh pages, not by the writer's own work.
    shutil.rmtree(output) if output.is_dir() else output.unlink()
    return wall, cpu


@contextmanager
def c_parts(keep: set[str]) -> Iterator[None]:
    """Use only the named functions of the C module (the rest falls back to the Python code)."""
    from mmdata.shards import mediainfo, tarwrite, writer

    saved = tarwrite._pack, writer._pack, mediainfo._C_IMAGE, mediainfo._C_AUDIO
    full = tarwrite._pack
    # a function left out answers None ("leave it to Python"), as the C functions do for what they decline
    part = None if full is None or not keep else SimpleNamespace(
        **{"tar_members": lambda *a: None, **{k: getattr(full, k) for k in keep & {"read_files", "tar_members"}}})
    tarwrite._pack = writer._pack = part
    mediainfo._C_IMAGE = full.probe_image if full is not None and "probe_image" in keep else None
    mediainfo._C_AUDIO = full.probe_audio if full is not None and "probe_audio" in keep else None
    try:
        yield
    finally:
        tarwrite._pack, writer._pack, mediainfo._C_IMAGE, mediainfo._C_AUDIO = saved


def check_cost(raw: Path) -> dict[str, float]:
    """Seconds to run the media parsers + checks over every image and audio file of ``raw``."""
    from mmdata.shards import mediainfo

    files = [(p.suffix, p.read_bytes()) for p in sorted(raw.iterdir()) if p.suffix in (".png", ".jpg", ".flac", ".wav")]
    out = {}
    for label, image, audio in (("C", mediainfo.probe_image, mediainfo.probe_audio),
                                ("Python", mediainfo.probe_image_py, mediainfo.probe_audio_py)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for suffix, data in files:
                (image if suffix in (".png", ".jpg") else audio)(data)
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="samples in the small-file scenario (media: n / 2)")
    ap.add_argument("--passes", type=int, default=7, help="timed passes, after one untimed warm-up pass")
    ap.add_argument("--main-only", action="store_true",
                    help="only tar cf, -j 1 and -j 2 (more passes fit into the quiet moments of a shared machine)")
    args = ap.parse_args()
    import mmdata
    from mmdata.shards.tarwrite import ACCELERATED
    from mmdata.testing import make_sample_folder

    tmp = Path(tempfile.mkdtemp())
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"mmdata C module (mmdata.shards._pack): {'on' if ACCELERATED else 'OFF (pure Python)'}")
    all_c = {"read_files", "tar_members", "probe_image", "probe_audio"}
    for name, opts in SCENARIOS.items():
        n = args.n if name == "small" else args.n // 2
        raw = make_sample_folder(tmp / name / "raw", n=n, **opts)
        size = sum(p.stat().st_size for p in raw.iterdir())
        ds = tmp / name / "ds"

        def job(workers: int = 1, keep: set[str] = all_c, check: str = "header") -> Callable[[], object]:
            def run() -> object:
                with c_parts(keep):
                    return mmdata.shard(raw, ds, maxcount=250, workers=workers, check=check, progress=False)
            return run

        runs = {
            "tar cf": (lambda: subprocess.run(["tar", "cf", str(tmp / name / "all.tar"), "-C", str(raw), "."],
                                              check=True), tmp / name / "all.tar"),
            "mmdata shard -j 1": (job(1), ds),
            "mmdata shard -j 2": (job(2), ds),
        }
        if ACCELERATED and not args.main_only:
            runs["-j 1, C: reads only"] = (job(1, {"read_files"}), ds)
            runs["-j 1, pure Python"] = (job(1, set()), ds)
        if not args.main_only:
            runs["-j 1, --check decode"] = (job(1, check="decode"), ds)
        for fn, output in runs.values():  # warm-up, untimed: start-up costs would decide a 1-pass run
            timed(fn, output)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.passes):
            for label, (fn, output) in runs.items():
                wall, cpu = timed(fn, output)
                if label not in best or wall < best[label][0]:
                    best[label] = (wall, cpu)
        print(f"\n[{name}] {n} samples = {4 * n} files, {size / 1e6:.1f} MB, best of {args.passes} interleaved passes"
              f" after a warm-up (load average now {os.getloadavg()[0]:.1f})")
        for label, (wall, cpu) in best.items():
            print(f"{label:22s} {n / wall:9.0f} samples/s  {size / wall / 1e6:7.1f} MB/s   wall {wall * 1e3:6.1f} ms"
                  f"  cpu {cpu * 1e3:6.1f} ms")
        tar, j1, j2 = (best[k][0] for k in ("tar cf", "mmdata shard -j 1", "mmdata shard -j 2"))
        print(f"ratio mmdata(-j1) / tar cf = {tar / j1:.2f}x (target >= 0.5)")
        print(f"ratio mmdata(-j2) / mmdata(-j1) = {j1 / j2:.2f}x (target > 1)")
        if args.main_only:
            continue
        if ACCELERATED:
            print(f"C reads only / all C = {j1 / best['-j 1, C: reads only'][0]:.2f}x speed; "
                  f"pure Python / all C = {j1 / best['-j 1, pure Python'][0]:.2f}x speed "
                  f"(pure Python vs tar cf {tar / best['-j 1, pure Python'][0]:.2f}x)")
        print(f"--check decode / --check header = {j1 / best['-j 1, --check decode'][0]:.2f}x speed")
        cost = check_cost(raw)
        print(f"media parsers + checks alone: C {cost['C'] * 1e3:.1f} ms ({cost['C'] / j1:.0%} of -j1), "
              f"Python {cost['Python'] * 1e3:.1f} ms")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
