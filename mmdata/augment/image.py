"""Image ops. Samples hold uint8 (C, H, W) tensors; batches (B, C, H, W).

Per-sample kernels call albumentations' deterministic functions with *our* params (flips, crop +
resize, padding, cutout, brightness/contrast, noise addition), so the field's reference
implementation does the pixel work. Batched kernels are vectorised torch code with per-sample params.
Geometric batched kernels need images of one size in the batch (they fall back to the per-sample
kernel otherwise); ops that change the size (`random_resized_crop`, `random_crop`) always output
``size`` — when not applied (``p``) they take the whole image / the centre crop — so a batch stays
rectangular.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmdata.augment.base import Op, Param, Shape
from mmdata.augment.batching import column, cpu_loop, device_mask, on, per_sample_fallback
from mmdata.types import Batch, Sample

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI at import otherwise


def _hwc(img: torch.Tensor) -> np.ndarray:
    """CHW tensor -> a new HWC array (cv2.merge interleaves planes ~6x faster than a numpy transpose copy)."""
    return _hwc_np(img.numpy())


def _hwc_np(a: np.ndarray) -> np.ndarray:
    if 2 <= a.shape[0] <= 4 and a.dtype == np.uint8:
        import cv2

        return cv2.merge(list(a))
    return np.array(a.transpose(1, 2, 0), order="C")  # always a copy: kernels never see the input's memory


def _with_channels(arr: np.ndarray) -> np.ndarray:
    """cv2 drops the channel axis of single-channel images; put it back."""
    return arr[..., None] if arr.ndim == 2 else arr


def _chw(arr: np.ndarray, channels: int) -> torch.Tensor:
    arr = _with_channels(arr)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[:channels]


_NO_RNG = np.random.default_rng(0)


@lru_cache(maxsize=None)
def _albu(name: str) -> Any:
    """A cached albumentations transform instance (building one validates its args: ~50 us)."""
    import albumentations as A

    return getattr(A, name)(p=1.0)


def _uniform(batch: Batch) -> bool:
    """All present images have the padded size (so batched geometry is exact)."""
    if "image" not in batch:
        return False
    h, w = batch["image"].shape[-2:]
    sizes = batch.lengths["image"][batch.present["image"]]
    return bool(((sizes[:, 0] == h) & (sizes[:, 1] == w)).all()) if len(sizes) else True


def _with_image(batch: Batch, image: torch.Tensor) -> Batch:
    out = batch.replace(image=image)
    b = image.shape[0]
    full = torch.tensor([image.shape[-2], image.shape[-1]], dtype=torch.int64).expand(b, 2).clone()
    out.lengths["image"] = torch.where(batch.present["image"][:, None].cpu(), full, torch.zeros_like(full))
    return out


class ImageOp(Op):
    """An image op: ``kernel`` is its per-sample CPU kernel on an HWC uint8 numpy array (the layout
    albumentations works in). ``apply`` wraps it for a CHW-tensor sample; a recipe runs consecutive
    image ops on one HWC array and converts once (:func:`run_hwc`)."""

    section = ""

    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if "image" not in sample:
            return {"applied": False}
        return super().draw(rng, sample)

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if "image" not in sample or not (params.get("applied") or self.always_transforms):
            return sample
        img = sample["image"]
        return sample.with_fields(image=_chw(self.kernel(_hwc(img), params), img.shape[0]))


class _HWCView:
    """What an op's ``draw`` sees while a run of image ops works on an HWC array: the current image
    shape as (C, H, W); every other field from the sample."""

    def __init__(self, sample: Sample, arr: np.ndarray, channels: int) -> None:
        self._s, self.key, self.sample_rate, self.meta = sample, sample.key, sample.sample_rate, sample.meta
        self._shape = Shape((channels, arr.shape[0], arr.shape[1]))

    def __contains__(self, name: object) -> bool:
        return name in self._s

    def __getitem__(self, name: str) -> Any:
        return self._shape if name == "image" else self._s[name]


def run_hwc(ops: Sequence[tuple[int, ImageOp]], sample: Sample, draw: Any, log: list[dict[str, Any]]) -> Sample:
    """Run consecutive image ops on one HWC array: one CHW->HWC conversion in, one out.

    ``draw(index, op, view)`` returns the op's params; each is appended to ``log``. The result equals
    applying the ops one by one with :meth:`ImageOp.apply`.
    """
    if "image" not in sample:
        for i, op in ops:
            log.append({"op": f"image.{op.name}", "index": i, "params": draw(i, op, sample)})
        return sample
    channels = sample["image"].shape[0]
    arr: np.ndarray | None = None
    for i, op in ops:
        params = draw(i, op, sample if arr is None else _HWCView(sample, arr, channels))
        if params.get("applied") or op.always_transforms:
            arr = _with_channels(op.kernel(_hwc(sample["image"]) if arr is None else arr, params))
        log.append({"op": f"image.{op.name}", "index": i, "params": params})
    return sample if arr is None else sample.with_fields(image=_chw(arr, channels))


class _Flip(ImageOp):
    """Mirror along one axis (albumentations' flip for the per-sample kernel). Exact agreement."""

    dim = -1
    albu = "HorizontalFlip"

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return _albu(self.albu).apply(arr)

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        rows = [i for i, p in enumerate(params) if p.get("applied")]
        if not rows:
            return batch
        if cpu_loop(x):
            flip = set(rows)
            return batch.replace(image=torch.stack([x[i].flip(self.dim) if i in flip else x[i] for i in range(len(x))]))
        idx = on(torch.tensor(rows), x.device)
        return batch.replace(image=x.index_copy(0, idx, x.index_select(0, idx).flip(self.dim)))


class HFlip(_Flip):
    """Mirror left-right. Exact agreement."""

    section, name = "image", "hflip"
    dim, albu = -1, "HorizontalFlip"


class VFlip(_Flip):
    """Mirror top-bottom. Exact agreement."""

    section, name = "image", "vflip"
    dim, albu = -2, "VerticalFlip"


def _axis_taps(start: torch.Tensor, length: torch.Tensor, n_out: int, n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps along one axis for crops [start, start + length) resized to ``n_out`` (B,) -> (B, n_out).

    Same sample points as cv2.resize / F.interpolate(align_corners=False) on the cropped image:
    ``start + (j + 0.5) * length / n_out - 0.5``, clamped to the crop (cv2 replicates the crop's own
    border, not the full image's). Returns the lower index, the upper index and the upper weight.
    """
    j = torch.arange(n_out, device=start.device, dtype=torch.float32)[None] + 0.5
    s, ln = start.to(torch.float32)[:, None], length.to(torch.float32)[:, None]
    pos = torch.minimum(torch.maximum(s + j * ln / n_out - 0.5, s), s + ln - 1)
    i0 = pos.floor()
    return i0.long(), (i0 + 1).clamp_(max=n_in - 1).long(), pos - i0


def _resized_crop(x: torch.Tensor, boxes: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Crop boxes (y0, x0, ch, cw) per sample and resize each to ``out_hw``: separable bilinear, one
    gather + lerp per axis (rows in uint8 first, so only the rows needed are converted to float)."""
    B, C, H, W = x.shape
    h, w = out_hw
    y0, y1, fy = _axis_taps(boxes[:, 0], boxes[:, 2], h, H)
    x0, x1, fx = _axis_taps(boxes[:, 1], boxes[:, 3], w, W)
    rows = lambda idx: x.gather(2, idx[:, None, :, None].expand(B, C, h, W)).float()  # noqa: E731
    r0 = rows(y0)
    r = r0.lerp_(rows(y1), fy[:, None, :, None])  # (B, C, h, W)
    cols = lambda idx: r.gather(3, idx[:, None, None, :].expand(B, C, h, w))  # noqa: E731
    c0 = cols(x0)
    return c0.lerp_(cols(x1), fx[:, None, None, :])


class RandomResizedCrop(ImageOp):
    """Crop a random area (``scale`` of the image, aspect ``ratio``) and resize it to ``size``.

    When not applied, the whole image is resized to ``size``. Kernels agree within 2 uint8 levels
    (cv2's fixed-point bilinear weights vs a float separable bilinear in torch).
    """

    section, name = "image", "random_resized_crop"
    PARAMS = {"size": Param("size", [32, 32], 1, 8192), "scale": Param("range", [0.08, 1.0], 0.0, 1.0),
              "ratio": Param("range", [0.75, 1.3333333333333333], 0.01, 100.0)}
    tolerance = "max abs difference <= 2 uint8 levels"
    always_transforms = True  # resizes to `size` even when not applied

    def validate(self, where: str) -> None:
        if self.args["scale"][1] <= 0:
            from mmdata.errors import RecipeError

            raise RecipeError(f"{where}.scale: the upper bound must be > 0")
        self._log_ratio = (math.log(self.args["ratio"][0]), math.log(self.args["ratio"][1]))

    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if "image" not in sample:
            return {"applied": False}
        _, H, W = sample["image"].shape
        applied = bool(rng.random() < self.p)
        box = [0, 0, H, W]
        if applied:
            area = H * W
            s0, s1 = self.args["scale"]
            lo, hi = self._log_ratio
            for _ in range(10):  # torchvision's rejection sampling, then centre-crop fallback
                # a + (b - a) * random() is exactly what Generator.uniform(a, b) computes, minus its call overhead
                target = area * (s0 + (s1 - s0) * rng.random())
                ar = math.exp(lo + (hi - lo) * rng.random())
                cw = int(round(math.sqrt(target * ar)))
                ch = int(round(math.sqrt(target / ar)))
                if 0 < cw <= W and 0 < ch <= H:
                    box = [int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1)), ch, cw]
                    break
            else:
                in_ratio = W / H
                if in_ratio < self.ratio[0]:
                    cw, ch = W, int(round(W / self.ratio[0]))
                elif in_ratio > self.ratio[1]:
                    ch, cw = H, int(round(H * self.ratio[1]))
                else:
                    cw, ch = W, H
                box = [(H - ch) // 2, (W - cw) // 2, ch, cw]
        return {"applied": applied, "box": box}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import cv2
        from albumentations.augmentations.crops import functional as fcrops
        from albumentations.augmentations.geometric import functional as fgeo

        y0, x0, ch, cw = params.get("box") or [0, 0, arr.shape[0], arr.shape[1]]
        crop = fcrops.crop(arr, x0, y0, x0 + cw, y0 + ch)
        h, w = self.args["size"]
        if crop.shape[2] > 4 or (h, w) == crop.shape[:2]:
            return fgeo.resize(crop, (h, w), cv2.INTER_LINEAR)
        # albumentations' resize is this cv2 call for <= 4 channels; calling it directly skips ~8 us of wrappers
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        H, W = x.shape[-2:]
        if cpu_loop(x):  # cv2 per sample, written into one output (see batching.VECTORISED_ON_CPU)
            B, C = x.shape[:2]
            h, w = self.size
            out = np.empty((B, h, w, C), dtype=np.uint8)
            xn = x.numpy()
            for i, p in enumerate(params):
                out[i] = self.kernel(_hwc_np(xn[i]), p).reshape(h, w, C)
            return _with_image(batch, torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2))))
        boxes = on(torch.tensor([p.get("box") or [0, 0, H, W] for p in params], dtype=torch.int64), x.device)
        out = _resized_crop(x, boxes, tuple(self.size))
        return _with_image(batch, out.round_().clamp_(0, 255).to(torch.uint8))


class RandomCrop(ImageOp):
    """Pad by ``padding`` pixels (with ``fill``) then crop ``size`` at a random offset; centre crop
    when not applied. Exact agreement."""

    section, name = "image", "random_crop"
    PARAMS = {"size": Param("size", [32, 32], 1, 8192), "padding": Param("int", 0, 0, 4096),
              "fill": Param("int", 0, 0, 255)}
    always_transforms = True  # centre-crops to `size` even when not applied

    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if "image" not in sample:
            return {"applied": False}
        _, H, W = sample["image"].shape
        h, w = self.size
        Hp, Wp = H + 2 * self.padding, W + 2 * self.padding
        if h > Hp or w > Wp:
            from mmdata.errors import ShardError

            raise ShardError(f"sample {sample.key!r}: random_crop size {self.size} exceeds the padded image {[Hp, Wp]}")
        applied = bool(rng.random() < self.p)
        if applied:
            return {"applied": True, "y0": int(rng.integers(0, Hp - h + 1)), "x0": int(rng.integers(0, Wp - w + 1))}
        return {"applied": False, "y0": (Hp - h) // 2, "x0": (Wp - w) // 2}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import cv2
        from albumentations.augmentations.crops import functional as fcrops
        from albumentations.augmentations.geometric import functional as fgeo

        pad = self.padding
        if pad:
            # a scalar would pad only the first channel (cv2 reads it as (v, 0, 0, 0))
            arr = fgeo.pad_with_params(arr, pad, pad, pad, pad, border_mode=cv2.BORDER_CONSTANT,
                                       value=(float(self.fill),) * arr.shape[-1])
        h, w = self.size
        y0, x0 = params["y0"], params["x0"]
        return np.ascontiguousarray(fcrops.crop(arr, x0, y0, x0 + w, y0 + h))

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        pad = self.padding
        if pad:
            x = F.pad(x, (pad, pad, pad, pad), value=self.fill)
        h, w = self.size
        # offsets are host ints: stacking the window views is one copy kernel on any device
        corners = [(p.get("y0", 0), p.get("x0", 0)) for p in params]  # absent rows: any in-bounds window
        x = torch.stack([x[i, :, y0 : y0 + h, x0 : x0 + w] for i, (y0, x0) in enumerate(corners)])
        return _with_image(batch, x)


class Cutout(ImageOp):
    """Erase ``num_holes`` rectangles, each side a ``size`` fraction of the image side, with ``fill``.
    Exact agreement."""

    section, name = "image", "cutout"
    PARAMS = {"num_holes": Param("irange", [1, 1], 1, 64), "size": Param("range", [0.1, 0.3], 0.0, 1.0),
              "fill": Param("int", 0, 0, 255)}

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        _, H, W = sample["image"].shape
        n = int(rng.integers(int(self.num_holes[0]), int(self.num_holes[1]) + 1))
        holes = []
        s0, s1 = self.args["size"]
        for _ in range(n):  # lo + (hi - lo) * random() == Generator.uniform(lo, hi), without its call overhead
            hh = max(1, int(round(H * (s0 + (s1 - s0) * rng.random()))))
            ww = max(1, int(round(W * (s0 + (s1 - s0) * rng.random()))))
            y0 = int(rng.integers(0, H - hh + 1))
            x0 = int(rng.integers(0, W - ww + 1))
            holes.append([y0, x0, y0 + hh, x0 + ww])
        return {"holes": holes}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        from albumentations.augmentations.dropout import functional as fdrop

        holes = np.array([[x0, y0, x1, y1] for y0, x0, y1, x1 in params["holes"]], dtype=np.int32).reshape(-1, 4)
        return fdrop.cutout(arr, holes, self.fill, _NO_RNG)  # the rng is unused for a constant fill

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch:
            return batch
        x = batch["image"]
        dev = x.device
        k = max((len(p["holes"]) for p in params if p.get("applied")), default=0)
        if k == 0:
            return batch
        if cpu_loop(x):  # a few slice fills per row beat building a (B, H, W) mask on one core
            out = x.clone()
            for i, p in enumerate(params):
                if p.get("applied"):
                    for y0, x0, y1, x1 in p["holes"]:
                        out[i, :, y0:y1, x0:x1] = self.fill
            return batch.replace(image=out)
        holes = np.zeros((len(params), k, 4), dtype=np.int64)  # empty holes (0, 0, 0, 0) erase nothing
        for i, p in enumerate(params):
            if p.get("applied") and p.get("holes"):
                holes[i, : len(p["holes"])] = p["holes"]
        h = on(torch.from_numpy(holes), dev)[..., None]  # (B, k, 4, 1)
        yy = torch.arange(x.shape[-2], device=dev)[None, None]
        xx = torch.arange(x.shape[-1], device=dev)[None, None]
        rows = (yy >= h[:, :, 0]) & (yy < h[:, :, 2])  # (B, k, H)
        cols = (xx >= h[:, :, 1]) & (xx < h[:, :, 3])  # (B, k, W)
        mask = torch.bmm(rows.transpose(1, 2).float(), cols.float())[:, None] > 0  # (B, 1, H, W): in any hole
        return batch.replace(image=x.masked_fill(mask, self.fill))


class BrightnessContrast(ImageOp):
    """``x * (1 + contrast) + brightness * 255``; agreement within 1 uint8 level (rounding)."""

    section, name = "image", "brightness_contrast"
    PARAMS = {"brightness": Param("range", [-0.2, 0.2], -1.0, 1.0), "contrast": Param("range", [-0.2, 0.2], -1.0, 10.0)}
    tolerance = "max abs difference <= 1 uint8 level"

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"alpha": 1.0 + float(rng.uniform(*self.contrast)), "beta": float(rng.uniform(*self.brightness)) * 255.0}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import albucore

        return albucore.multiply_add(arr, params["alpha"], params["beta"], inplace=False)

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch:
            return batch
        x = batch["image"]
        a = column(params, "alpha", 1.0, device=x.device)[:, None, None, None]
        b = column(params, "beta", 0.0, device=x.device)[:, None, None, None]
        return batch.replace(image=(x.float() * a + b).round_().clamp_(0, 255).to(torch.uint8))


class GaussianNoise(ImageOp):
    """Add N(0, (std*255)^2) noise, drawn from a per-sample seed. Exact on CPU; on CUDA the noise
    comes from the device generator with the same seed (equal in distribution, not bitwise)."""

    section, name = "image", "gaussian_noise"
    PARAMS = {"std": Param("range", [0.02, 0.1], 0.0, 1.0)}
    tolerance = "max abs difference <= 1 uint8 level on CPU (rounding); same distribution on CUDA"

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"std": float(rng.uniform(*self.std)), "seed": int(rng.integers(0, 2**62))}

    @staticmethod
    def _noise(shape: Sequence[int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        return torch.randn(tuple(shape), generator=g, device=device)

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        from albumentations.augmentations.pixel import functional as fpix

        H, W, C = arr.shape  # noise is drawn in CHW order, as the batched kernel draws it
        noise = (self._noise((C, H, W), params["seed"]) * (params["std"] * 255.0)).numpy().transpose(1, 2, 0)
        return fpix.add_noise(arr, np.ascontiguousarray(noise))  # uint8 in, rounded + clipped uint8 out

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch:
            return batch
        x = batch["image"]
        out = x.float()
        for i, p in enumerate(params):  # one generator per sample: noise must not depend on the batch
            if p.get("applied"):
                h, w = (int(v) for v in batch.lengths["image"][i])
                n = self._noise((x.shape[1], h, w), p["seed"], x.device) * (p["std"] * 255.0)
                out[i, :, :h, :w] += n
        return batch.replace(image=out.round_().clamp_(0, 255).to(torch.uint8))


class Rotate(ImageOp):
    """Rotate by an angle in [-limit, limit] degrees about the centre (bilinear, ``fill`` outside).

    Both kernels use the same torch affine sampler (one image or a batch), so they agree exactly;
    albumentations' ``Rotate`` runs cv2.warpAffine with fixed-point weights, which no float GPU
    kernel can reproduce bit for bit.
    """

    section, name = "image", "rotate"
    PARAMS = {"limit": Param("float", 10.0, 0.0, 180.0), "fill": Param("int", 0, 0, 255)}

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"angle": float(rng.uniform(-self.limit, self.limit))}

    def _rotate(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        t = angles.to(torch.float32) * (math.pi / 180.0)
        cos, sin = torch.cos(t), torch.sin(t)
        # normalised coordinates with aspect correction so the rotation is rigid in pixels
        theta = torch.zeros((B, 2, 3), dtype=torch.float32, device=x.device)
        theta[:, 0, 0] = cos
        theta[:, 0, 1] = -sin * H / W
        theta[:, 1, 0] = sin * W / H
        theta[:, 1, 1] = cos
        grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)
        xf = x.float() - self.fill
        out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + self.fill
        return out.round_().clamp_(0, 255).to(torch.uint8)

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
        return np.ascontiguousarray(self._rotate(x, torch.tensor([params["angle"]]))[0].permute(1, 2, 0).numpy())

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        angles = column(params, "angle", 0.0, device=x.device)
        m = device_mask(params, x.device)[:, None, None, None]
        return batch.replace(image=torch.where(m, self._rotate(x, angles), x))
