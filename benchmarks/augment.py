"""Augmentation throughput: plain albumentations / audiomentations per sample vs mmdata's per-sample
kernels vs mmdata's batched kernels (CPU, and CUDA when available), in one run.

Image: hflip + random resized crop + cutout on 64x64 RGB uint8 (``--size``), batch 256.
Audio: random crop (0.8 s) + time mask + gain + Gaussian noise at an SNR, 1 s at 16 kHz, batch 256.
Normalize (eval transform): photos of three sizes (96x128, 120x90, 150x200) resized (shorter side 64,
area) and centre-cropped to 64x64 — albumentations SmallestMaxSize + CenterCrop vs mmdata's normalize
stage per sample and batched (a batch of mixed sizes: per-row weight matrices / cv2 per row on CPU).

On CUDA it also times the image pipeline at batch sizes 64 / 256 / 1024 and fits time per batch =
a + b * batch size: ``b`` is the host's per-sample cost (each sample's params are drawn on the host:
the one seeded plan per sample that the per-sample path draws too), ``a`` the per-batch cost (kernel
launches); and it reads how long the GPU itself was busy (torch.profiler), which says whether the
batched path is bound by the GPU or by the host.

Run: .venv/bin/python benchmarks/augment.py [--n 1024] [--size 64] [--cpu-time]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

def image_recipe(side: int = 64) -> dict:
    return {"seed": 0, "image": [
        {"op": "hflip", "p": 0.5},
        {"op": "random_resized_crop", "p": 1.0, "size": [side, side], "scale": [0.5, 1.0]},
        {"op": "cutout", "p": 0.5, "num_holes": [1, 2], "size": [0.1, 0.25]}]}


IMAGE_RECIPE = image_recipe(64)
NORMALIZE_RECIPE = {"seed": 0, "normalize": {"image": [
    {"op": "resize", "size": 64, "side": "shorter", "interpolation": "area"}, {"op": "center_crop", "size": [64, 64]}]}}
AUDIO_RECIPE = {"seed": 0, "audio": [
    {"op": "random_crop", "p": 1.0, "seconds": 0.8},
    {"op": "time_mask", "p": 0.5, "max_fraction": 0.1},
    {"op": "gain", "p": 0.5, "min_db": -6, "max_db": 6},
    {"op": "noise", "p": 0.5, "min_snr_db": 10, "max_snr_db": 30}]}


def best(fn, repeats: int = 5) -> float:
    return interleaved(fn, repeats=repeats)[0]


CLOCK = time.perf_counter  # --cpu-time: time.process_time (one thread: the CPU the work took, robust to a loaded machine)


def interleaved(*fns, repeats: int = 7) -> list[float]:  # noqa: ANN002
    """Best time of each function over ``repeats`` rounds, the functions taking turns within a round, so a
    burst of load on a shared machine hits all of them rather than one (the ratios are what we report)."""
    t = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = CLOCK()
            fn()
            t[i] = min(t[i], CLOCK() - t0)
    return t


def sync_check(rec, batch, normalize: bool = False) -> str:  # noqa: ANN001
    """Run the batched pipeline once with CUDA's sync debug mode set to "error"."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        rec.normalize_batched(batch) if normalize else rec.apply_batched(batch)
        return "yes"
    except RuntimeError as exc:
        return f"no ({str(exc)[:80]})"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=64, help="image side of the image pipeline (inputs and crop)")
    ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time instead of wall time (shared machines)")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    import albumentations as A
    import audiomentations as am
    import numpy as np
    import torch

    from mmdata import Sample, collate
    from mmdata.augment import load_recipe

    torch.set_num_threads(1)
    n, bs, side = args.n, args.batch, args.size
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    wavs = (rng.standard_normal((n, 16000)) * 0.1).astype(np.float32)

    # -- image ---------------------------------------------------------------------------------------
    alb = A.Compose([A.HorizontalFlip(p=0.5), A.RandomResizedCrop(size=(side, side), scale=(0.5, 1.0), p=1.0),
                     A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), p=0.5)])
    img_samples = [Sample(f"i{i}", {"image": torch.from_numpy(np.ascontiguousarray(imgs[i].transpose(2, 0, 1)))}) for i in range(n)]
    rec = load_recipe(image_recipe(side))
    img_batches = [collate(img_samples[i : i + bs]) for i in range(0, n, bs)]
    t_alb, t_alb_t, t_mm, t_mmb = interleaved(
        lambda: [alb(image=im)["image"] for im in imgs],
        # what a user of albumentations does with CHW tensors: convert, augment, convert back
        lambda: [torch.from_numpy(alb(image=s["image"].numpy().transpose(1, 2, 0))["image"]).permute(2, 0, 1) for s in img_samples],
        lambda: [rec.apply_sample(s) for s in img_samples],
        lambda: [rec.apply_batched(b) for b in img_batches])
    rows = [("image", "albumentations (numpy HWC)", t_alb), ("image", "albumentations + tensor conversion", t_alb_t),
            ("image", "mmdata per-sample", t_mm), ("image", f"mmdata batched CPU (batch {bs})", t_mmb)]
    # the loader's augment_on="device" with workers: they draw the params (Recipe.plan_batched), the main
    # process runs the kernels on them; these rows time the main process's share
    plans = [rec.plan_batched(b) for b in img_batches]
    rows.append(("image", "  main process, params drawn by workers (CPU)",
                 best(lambda: [rec.apply_batched(b, plan=p) for b, p in zip(img_batches, plans)])))
    if torch.cuda.is_available():
        gb = [b.to("cuda") for b in img_batches]
        sync_free = sync_check(rec, gb[0])

        def gpu() -> None:
            for b in gb:
                rec.apply_batched(b)
            torch.cuda.synchronize()

        def gpu_planned() -> None:
            for b, p in zip(gb, plans):
                rec.apply_batched(b, plan=p)
            torch.cuda.synchronize()

        rows.append(("image", f"mmdata batched CUDA (sync-free: {sync_free})", best(gpu)))
        rows.append(("image", "  main process, params drawn by workers (CUDA)", best(gpu_planned)))
        cuda_notes = anatomy(rec, img_samples, gpu, n)

    # -- audio ---------------------------------------------------------------------------------------
    amc = am.Compose([am.AdjustDuration(duration_seconds=0.8, p=1.0), am.TimeMask(min_band_part=0.0, max_band_part=0.1, p=0.5),
                      am.Gain(min_gain_db=-6, max_gain_db=6, p=0.5), am.AddGaussianSNR(min_snr_db=10, max_snr_db=30, p=0.5)])
    au_samples = [Sample(f"a{i}", {"audio": torch.from_numpy(wavs[i][None])}, sample_rate=16000) for i in range(n)]
    arec = load_recipe(AUDIO_RECIPE)
    au_batches = [collate(au_samples[i : i + bs]) for i in range(0, n, bs)]
    t_am, t_amm, t_ammb = interleaved(lambda: [amc(samples=w, sample_rate=16000) for w in wavs],
                                      lambda: [arec.apply_sample(s) for s in au_samples],
                                      lambda: [arec.apply_batched(b) for b in au_batches])
    rows += [("audio", "audiomentations", t_am), ("audio", "mmdata per-sample", t_amm),
             ("audio", f"mmdata batched CPU (batch {bs})", t_ammb)]
    if torch.cuda.is_available():
        ga = [b.to("cuda") for b in au_batches]
        sync_free_a = sync_check(arec, ga[0])

        def gpu_a() -> None:
            for b in ga:
                arec.apply_batched(b)
            torch.cuda.synchronize()

        rows.append(("audio", f"mmdata batched CUDA (sync-free: {sync_free_a})", best(gpu_a)))

    # -- normalize (the eval transform) ----------------------------------------------------------------
    import cv2

    sizes = ((96, 128), (120, 90), (150, 200))
    photos = [rng.integers(0, 256, (*sizes[i % 3], 3), dtype=np.uint8) for i in range(n)]
    alb_n = A.Compose([A.SmallestMaxSize(max_size=64, interpolation=cv2.INTER_AREA, p=1.0), A.CenterCrop(64, 64, p=1.0)])
    ph_samples = [Sample(f"p{i}", {"image": torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))}) for i, p in enumerate(photos)]
    nrec = load_recipe(NORMALIZE_RECIPE)
    ph_batches = [collate(ph_samples[i : i + bs]) for i in range(0, n, bs)]
    t_an, t_an_t, t_nm, t_nmb = interleaved(
        lambda: [alb_n(image=p)["image"] for p in photos],
        lambda: [torch.from_numpy(np.ascontiguousarray(alb_n(image=s["image"].numpy().transpose(1, 2, 0))["image"].transpose(2, 0, 1)))
                 for s in ph_samples],
        lambda: [nrec.normalize(s) for s in ph_samples],
        lambda: [nrec.normalize_batched(b) for b in ph_batches])
    rows += [("norm", "albumentations SmallestMaxSize + CenterCrop", t_an),
             ("norm", "albumentations + tensor conversion", t_an_t), ("norm", "mmdata normalize per-sample", t_nm),
             ("norm", f"mmdata normalize batched CPU (batch {bs}, mixed sizes)", t_nmb)]
    if torch.cuda.is_available():
        gn = [b.to("cuda") for b in ph_batches]
        sync_free_n = sync_check(nrec, gn[0], normalize=True)

        def gpu_n() -> None:
            for b in gn:
                nrec.normalize_batched(b)
            torch.cuda.synchronize()

        rows.append(("norm", f"mmdata normalize batched CUDA (sync-free: {sync_free_n})", best(gpu_n)))

    print(f"{'pipeline':6s} {'implementation':52s} {'samples/s':>10s}")
    for kind, name, t in rows:
        print(f"{kind:6s} {name:52s} {n / t:10.0f}")
    print(f"machine: {machine()}, torch {torch.__version__}, cuda: {torch.cuda.is_available()}, "
          f"clock: {'process CPU time' if args.cpu_time else 'wall'}, load average {os.getloadavg()[0]:.1f}")
    print(f"image: mmdata per-sample time / albumentations = {t_mm / t_alb:.2f}x (target <= 1.15); "
          f"vs albumentations with tensor conversion {t_mm / t_alb_t:.2f}x")
    print(f"image: batched CPU speed / per-sample = {t_mm / t_mmb:.2f}x (target >= 1)")
    print(f"audio: mmdata per-sample time / audiomentations = {t_amm / t_am:.2f}x (target <= 1.15)")
    print(f"audio: batched CPU speed / per-sample = {t_amm / t_ammb:.2f}x (target >= 1)")
    print(f"normalize: mmdata per-sample time / albumentations = {t_nm / t_an:.2f}x (vs albumentations with tensor conversion "
          f"{t_nm / t_an_t:.2f}x); batched CPU speed / per-sample = {t_nm / t_nmb:.2f}x")
    if torch.cuda.is_available():
        t_gpu = next(t for k, nme, t in rows if k == "image" and "CUDA" in nme)
        t_gpu_a = next(t for k, nme, t in rows if k == "audio" and "CUDA" in nme)
        t_gpu_p = next(t for k, nme, t in rows if k == "image" and "workers (CUDA)" in nme)
        print(f"image ({side}x{side}): batched CUDA speed / per-sample CPU = {t_mm / t_gpu:.1f}x (target >= 20); "
              f"with the params drawn by the loader's workers, the main process's share: {t_mm / t_gpu_p:.1f}x")
        print(f"audio: batched CUDA speed / per-sample CPU = {t_amm / t_gpu_a:.1f}x")
        for line in cuda_notes:
            print(line)


def anatomy(rec, samples, gpu, n: int, device: str = "cuda") -> list[str]:  # noqa: ANN001
    """Where the batched (CUDA) image pipeline's time goes: time per batch at three batch sizes (a + b * size:
    per-batch and per-sample host costs) and the GPU's busy time over one pass (torch.profiler)."""
    import numpy as np
    import torch

    from mmdata import collate

    sizes, per_batch = (64, 256, 1024), []
    for bs in sizes:
        batches = [collate(samples[i : i + bs]).to(device) for i in range(0, len(samples) - bs + 1, bs)]

        def run(batches=batches) -> None:  # noqa: ANN001
            for b in batches:
                rec.apply_batched(b)
            if device == "cuda":
                torch.cuda.synchronize()

        per_batch.append(best(run) / len(batches))
    xs = np.array(sizes, dtype=float)
    b, a = np.polyfit(xs, np.array(per_batch), 1)
    lines = [f"image {device} time per batch: " + ", ".join(f"{s}: {t * 1e3:.2f} ms" for s, t in zip(sizes, per_batch)),
             f"  fit a + b * batch: a = {a * 1e3:.2f} ms per batch (launches), b = {b * 1e6:.1f} us per sample "
             f"(host: params drawn per sample) -> at most {1 / b:,.0f} samples/s however large the batch"]
    if device != "cuda":
        return lines
    try:
        from torch.profiler import ProfilerActivity, profile

        wall = best(gpu)  # unprofiled: the profiler slows the host side many times over, not the kernels
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            gpu()
        busy = sum(e.self_device_time_total for e in prof.key_averages()) / 1e6
        lines.append(f"  GPU busy {busy * 1e3:.1f} ms (kernel time, profiled) of the pass's {wall * 1e3:.1f} ms wall over {n} "
                     f"samples ({100 * busy / wall:.0f}%; the rest the GPU waits on the host: params drawn, kernels launched)")
    except Exception as exc:  # noqa: BLE001 - the profiler is a diagnostic: say why it is missing
        lines.append(f"  GPU busy time: not read ({type(exc).__name__}: {str(exc)[:80]})")
    return lines


if __name__ == "__main__":
    main()
