"""Long clips through the loader: decoding only what the normalize stage reads vs decoding whole clips.

A shard of ``--clips`` 10-minute FLAC clips (48 kHz stereo, 44.1 kHz stereo, 22.05 kHz mono in turn:
tones + low noise, 16-bit, ``mmdata.testing.long_audio_bytes``) read for one epoch by ``mmdata.loader``
with the trainer's derived normalize stage (``derive_inputs`` + ``with_normalize``: max_seconds capped
at 30 s, a first ``pad_trim`` to 31.1 s, ``to_mono``, ``resample``, ``pad_trim``), stage ``eval``:

* ``hint``  — the default: the reader decodes the frames the stage reads (``decode_frames``);
* ``whole`` — ``audio_max_frames=None``: every clip decoded whole, then trimmed (before this change).

Each run is a fresh process (peaks do not mix); the figures are the best of ``--repeats`` interleaved
runs: wall time, CPU time and peak RSS above the imports. The batches of both are hashed: they must be
the same bytes.

Run: .venv/bin/python benchmarks/long_audio.py [--clips 4] [--minutes 10] [--repeats 3]
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

KINDS = ((48000, 2), (44100, 2), (22050, 1))


def build(out: Path, clips: int, minutes: float) -> Path:
    """A dataset of ``clips`` FLAC clips of ``minutes`` each at ``out`` (one split, one shard)."""
    import mmdata
    from mmdata.testing import long_audio_bytes

    raw = out.parent / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        rate, channels = KINDS[i % len(KINDS)]
        (raw / f"{i:03d}.flac").write_bytes(long_audio_bytes(i, 60 * minutes, rate, channels, noise=0.01))
        (raw / f"{i:03d}.cls").write_text(str(i % 2))
    mmdata.shard(raw, out, progress=False)
    return out


def child(data: str, mode: str) -> None:
    import hashlib

    import torch

    import mmdata
    from mmdata.train.config import derive_inputs, with_normalize

    torch.set_num_threads(1)
    recipe, norm = with_normalize(None, derive_inputs(data, ["audio"]))
    kw = {} if mode == "hint" else {"audio_max_frames": None}
    loader = mmdata.loader(data, 2, recipe=recipe, stage="eval", decode_threads=1, **kw)
    base = rss_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    h = hashlib.sha256()
    n = 0
    for b in loader:
        h.update(b["audio"].contiguous().numpy().tobytes())
        n += len(b)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # what the reader hands the normalize stage (outside the timed pass): the decoded clips' float32 bytes
    decoded = [s["audio"].nbytes for s in mmdata.open_dataset(data, audio_max_frames=loader.source.audio_max_frames,
                                                               decode_threads=1)]
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_above_kb": peak - base, "samples": n, "sha256": h.hexdigest(),
                      "hint": repr(loader.source.audio_max_frames), "normalize": norm.get("audio"),
                      "decoded_max_mb": max(decoded) / 2**20, "decoded_sum_mb": sum(decoded) / 2**20}))


def measure(data: Path, mode: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", str(data), "--mode", mode], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--mode", choices=("hint", "whole"))
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mode)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = build(Path(tmp) / "ds", args.clips, args.minutes)
        size = sum(p.stat().st_size for p in data.glob("*.tar"))
        print(f"{machine()}\n{args.clips} clips of {args.minutes:g} min ({', '.join(f'{r} Hz x {c}' for r, c in KINDS)} "
              f"in turn), {size / 2**20:.0f} MiB of FLAC, built in {time.perf_counter() - t0:.0f} s")
        runs: dict[str, list[dict]] = {"hint": [], "whole": []}
        for _ in range(args.repeats):  # interleaved: a load change hits both alike
            for mode in runs:
                runs[mode].append(measure(data, mode))
    first = runs["hint"][0]
    print(f"normalize.audio: {first['normalize']}\nhint: {first['hint']}")
    same = {r["sha256"] for rs in runs.values() for r in rs}
    print(f"batches identical with and without the hint: {len(same) == 1} ({first['samples']} samples)")
    keys = ("wall_s", "cpu_s", "peak_above_kb", "decoded_max_mb", "decoded_sum_mb")
    best = {m: {k: min(r[k] for r in rs) for k in keys} for m, rs in runs.items()}
    print(f"\n| reader | wall s / epoch | CPU s / epoch | peak RSS above imports (the mapped shard included) "
          f"| decoded float32: largest clip / all |\n|---|---:|---:|---:|---:|")
    for m, b in best.items():
        print(f"| {m} | {b['wall_s']:.2f} | {b['cpu_s']:.2f} | {b['peak_above_kb'] / 1024:.0f} MiB "
              f"| {b['decoded_max_mb']:.1f} / {b['decoded_sum_mb']:.1f} MiB |")
    h, w = best["hint"], best["whole"]
    print(f"\nwhole / hint: wall {w['wall_s'] / h['wall_s']:.1f}x, CPU {w['cpu_s'] / h['cpu_s']:.1f}x, "
          f"peak RSS {w['peak_above_kb'] / max(1, h['peak_above_kb']):.1f}x, decoded bytes "
          f"{w['decoded_sum_mb'] / h['decoded_sum_mb']:.1f}x (best of {args.repeats})")


if __name__ == "__main__":
    main()
