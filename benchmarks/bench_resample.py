"""Resampling long clips: ``mmdata.augment.audio.resample`` vs scipy's ``resample_poly`` (a competitor on the
same data, if scipy is installed), and optionally vs the ``resample`` of an earlier git revision.

For each ratio (48 -> 16 kHz, 44.1 -> 16 kHz, 8 -> 16 kHz, 16 -> 48 kHz) a stereo clip of ``--seconds``
(``torch.randn * 0.1``, float32, seeded) is resampled by each implementation in a fresh process (peaks do
not mix): the best wall time of ``--repeats`` and the peak RSS above the RSS once the input is
made (the resampler's own memory, output included; the peak is reset first). Ratios are printed against scipy and against the baseline.
scipy's default filter is much shorter (Kaiser beta 5, 10 zero crossings of the larger rate) than ours
(beta 14.8, 32 zero crossings: aliases below -79 dB), so it does less work per output sample.

``--baseline REV`` loads the resampler functions of ``mmdata/augment/audio.py`` at git revision ``REV``
(the text from ``WIDTH, ROLLOFF`` up to ``class Resample``) into the child process: the same machine and
run for before / after figures.

Run: .venv/bin/python benchmarks/bench_resample.py [--seconds 600] [--repeats 3] [--baseline 07a12ce]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RATIOS = ((48000, 16000), (44100, 16000), (8000, 16000), (16000, 48000))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    """Reset this process's peak RSS to its RSS now (Linux >= 4.0) and return that RSS in KiB: the peak
    seen after is the call's own, not the input's making (``randn * 0.1`` briefly holds two copies)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _baseline_resample(rev: str):  # noqa: ANN202 (a function loaded from text)
    import torch
    import torch.nn.functional as F

    from mmdata.augment.batching import on

    text = subprocess.run(["git", "show", f"{rev}:mmdata/augment/audio.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    text = text[text.index("WIDTH, ROLLOFF"):text.index("class Resample(AudioOp)")]
    ns = {"math": math, "torch": torch, "F": F, "lru_cache": lru_cache, "on": on, "__name__": f"baseline_{rev}"}
    exec(compile("from __future__ import annotations\n" + text, f"{rev}:audio.py", "exec"), ns)  # noqa: S102
    return ns["resample"]


def child(impl: str, orig: int, new: int, seconds: float, repeats: int) -> dict[str, float]:
    """One implementation on one ratio, in this (fresh) process."""
    import torch

    if impl == "scipy":
        from scipy.signal import resample_poly

        g = math.gcd(orig, new)

        def fn(x):  # noqa: ANN001, ANN202
            return resample_poly(x.numpy(), new // g, orig // g, axis=-1)
    elif impl == "mmdata":
        from mmdata.augment.audio import resample

        def fn(x):  # noqa: ANN001, ANN202
            return resample(x, orig, new)
    else:
        fn0 = _baseline_resample(impl.split(":", 1)[1])

        def fn(x):  # noqa: ANN001, ANN202
            return fn0(x, orig, new)
    x = torch.randn(2, int(orig * seconds), generator=torch.Generator().manual_seed(0)) * 0.1
    fn(x[:, :orig])  # warm: the cached filter table
    base = _reset_peak()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        y = fn(x)
        best = min(best, time.perf_counter() - t0)
        del y
    return {"seconds": best, "peak_mb": (_status_kb("VmHWM") - base) / 1024, "input_mb": x.numel() * 4 / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="git revision whose resample to measure too")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        impl, orig, new = a.child
        print(json.dumps(child(impl, int(orig), int(new), a.seconds, a.repeats)))
        return
    impls = ["mmdata"] + ([f"rev:{a.baseline}"] if a.baseline else [])
    try:
        import scipy  # noqa: F401

        impls.append("scipy")
    except ImportError:
        print("scipy is not installed: no competitor figures")
    print(f"{machine()}; torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}; "
          f"stereo {a.seconds:g} s, best of {a.repeats}")
    print("| ratio | implementation | seconds | peak MB above input | x scipy time | new / baseline time | new / baseline MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for orig, new in RATIOS:
        got = {}
        for impl in impls:
            cmd = [sys.executable, __file__, "--seconds", str(a.seconds), "--repeats", str(a.repeats),
                   "--child", impl, str(orig), str(new)]
            out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
            got[impl] = json.loads(out.strip().splitlines()[-1])
        for impl, r in got.items():
            vs_scipy = f"{r['seconds'] / got['scipy']['seconds']:.2f}" if "scipy" in got else "-"
            vs_base = "-"
            if a.baseline and impl == "mmdata":
                b = got[f"rev:{a.baseline}"]
                vs_base = f"{r['seconds'] / b['seconds']:.3f}"
                mb = f"{r['peak_mb'] / max(b['peak_mb'], 1e-9):.3f}"
            else:
                mb = "-"
            print(f"| {orig / 1000:g} -> {new / 1000:g} kHz | {impl} | {r['seconds']:.2f} | {r['peak_mb']:.0f} "
                  f"| {vs_scipy} | {vs_base} | {mb} |", flush=True)


if __name__ == "__main__":
    main()
