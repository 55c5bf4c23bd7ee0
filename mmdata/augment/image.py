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

from mmdata.augment.base import Op, Param
from mmdata.augment.batching import column, device_mask, per_sample_fallback
from mmdata.types import Batch, Sample

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI at import otherwise


def _hwc(img: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(img.numpy().transpose(1, 2, 0))


def _chw(arr: np.ndarray, channels: int) -> torch.Tensor:
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[:channels]


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
    section = ""

    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if "image" not in sample:
            return {"applied": False}
        return super().draw(rng, sample)


class _Flip(ImageOp):
    """Mirror along one axis (albumentations' flip for the per-sample kernel). Exact agreement."""

    dim = -1
    albu = "HorizontalFlip"

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params.get("applied"):
            return sample
        img = sample["image"]
        return sample.with_fields(image=_chw(_albu(self.albu).apply(_hwc(img)), img.shape[0]))

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        m = device_mask(params, x.device)[:, None, None, None]
        return batch.replace(image=torch.where(m, x.flip(self.dim), x))


class HFlip(_Flip):
    """Mirror left-right. Exact agreement."""

    section, name = "image", "hflip"
    dim, albu = -1, "HorizontalFlip"


class VFlip(_Flip):
    """Mirror top-bottom. Exact agreement."""

    section, name = "image", "vflip"
    dim, albu = -2, "VerticalFlip"


def _resized_crop_grid(boxes: torch.Tensor, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> torch.Tensor:
    """Sampling grid (B, h, w, 2) for crop boxes (y0, x0, ch, cw) resized to out_hw.

    Same sample points as cv2.resize / F.interpolate(align_corners=False) on the cropped image:
    pixel-centre coordinates ``x0 + (j + 0.5) * cw / w - 0.5``, clamped to the crop (cv2 replicates the
    crop's own border, not the full image's).
    """
    H, W = in_hw
    h, w = out_hw
    dev = boxes.device
    y0, x0, ch, cw = (boxes[:, i].to(torch.float32)[:, None] for i in range(4))
    jy = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5)[None]
    jx = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5)[None]
    ys = torch.minimum(torch.maximum(y0 + jy * ch / h - 0.5, y0), y0 + ch - 1)
    xs = torch.minimum(torch.maximum(x0 + jx * cw / w - 0.5, x0), x0 + cw - 1)
    gy = (2 * ys + 1) / H - 1
    gx = (2 * xs + 1) / W - 1
    return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)


class RandomResizedCrop(ImageOp):
    """Crop a random area (``scale`` of the image, aspect ``ratio``) and resize it to ``size``.

    When not applied, the whole image is resized to ``size``. Kernels agree within 2 uint8 levels
    (cv2's fixed-point bilinear weights vs float ``grid_sample``).
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

    def draw(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        if "image" not in sample:
            return {"applied": False}
        _, H, W = sample["image"].shape
        applied = bool(rng.random() < self.p)
        box = [0, 0, H, W]
        if applied:
            area = H * W
            lo, hi = (math.log(r) for r in self.ratio)
            for _ in range(10):  # torchvision's rejection sampling, then centre-crop fallback
                target = area * rng.uniform(*self.scale)
                ar = math.exp(rng.uniform(lo, hi))
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

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if "image" not in sample:
            return sample
        import cv2
        from albumentations.augmentations.crops import functional as fcrops
        from albumentations.augmentations.geometric import functional as fgeo

        img = sample["image"]
        y0, x0, ch, cw = params.get("box") or [0, 0, img.shape[1], img.shape[2]]
        arr = fcrops.crop(_hwc(img), x0, y0, x0 + cw, y0 + ch)
        arr = fgeo.resize(arr, tuple(self.size), cv2.INTER_LINEAR)
        return sample.with_fields(image=_chw(arr, img.shape[0]))

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        H, W = x.shape[-2:]
        boxes = torch.tensor([p.get("box") or [0, 0, H, W] for p in params], dtype=torch.float32).to(x.device)
        grid = _resized_crop_grid(boxes, (H, W), tuple(self.size))
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
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

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if "image" not in sample:
            return sample
        import cv2
        from albumentations.augmentations.crops import functional as fcrops
        from albumentations.augmentations.geometric import functional as fgeo

        img = sample["image"]
        arr = _hwc(img)
        pad = self.padding
        if pad:
            # a scalar would pad only the first channel (cv2 reads it as (v, 0, 0, 0))
            arr = fgeo.pad_with_params(arr, pad, pad, pad, pad, border_mode=cv2.BORDER_CONSTANT,
                                       value=(float(self.fill),) * arr.shape[-1])
        h, w = self.size
        y0, x0 = params["y0"], params["x0"]
        return sample.with_fields(image=_chw(fcrops.crop(arr, x0, y0, x0 + w, y0 + h), img.shape[0]))

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        pad = self.padding
        if pad:
            x = F.pad(x, (pad, pad, pad, pad), value=self.fill)
        h, w = self.size
        dev = x.device
        y0 = torch.tensor([p["y0"] for p in params], device=dev)
        x0 = torch.tensor([p["x0"] for p in params], device=dev)
        rows = (y0[:, None] + torch.arange(h, device=dev)[None])  # (B, h)
        cols = (x0[:, None] + torch.arange(w, device=dev)[None])  # (B, w)
        B, C = x.shape[:2]
        x = x.gather(2, rows[:, None, :, None].expand(B, C, h, x.shape[-1]))
        x = x.gather(3, cols[:, None, None, :].expand(B, C, h, w))
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
        for _ in range(n):
            hh = max(1, int(round(H * rng.uniform(*self.size))))
            ww = max(1, int(round(W * rng.uniform(*self.size))))
            y0 = int(rng.integers(0, H - hh + 1))
            x0 = int(rng.integers(0, W - ww + 1))
            holes.append([y0, x0, y0 + hh, x0 + ww])
        return {"holes": holes}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params.get("applied"):
            return sample
        from albumentations.augmentations.dropout import functional as fdrop

        img = sample["image"]
        holes = np.array([[x0, y0, x1, y1] for y0, x0, y1, x1 in params["holes"]], dtype=np.int32).reshape(-1, 4)
        arr = fdrop.cutout(_hwc(img), holes, self.fill, np.random.default_rng(0))  # rng unused for a constant fill
        return sample.with_fields(image=_chw(arr, img.shape[0]))

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch:
            return batch
        x = batch["image"]
        dev = x.device
        k = max((len(p.get("holes", [])) for p in params), default=0)
        if k == 0:
            return batch
        holes = torch.zeros((len(params), k, 4), dtype=torch.int64)
        for i, p in enumerate(params):
            if p.get("applied") and p.get("holes"):
                holes[i, : len(p["holes"])] = torch.tensor(p["holes"])
        holes = holes.to(dev)
        yy = torch.arange(x.shape[-2], device=dev)[None, None, :, None]
        xx = torch.arange(x.shape[-1], device=dev)[None, None, None, :]
        h = holes[..., None, None]
        inside = (yy >= h[:, :, 0]) & (yy < h[:, :, 2]) & (xx >= h[:, :, 1]) & (xx < h[:, :, 3])
        mask = inside.any(dim=1)[:, None]  # (B, 1, H, W)
        return batch.replace(image=x.masked_fill(mask, self.fill))


class BrightnessContrast(ImageOp):
    """``x * (1 + contrast) + brightness * 255``; agreement within 1 uint8 level (rounding)."""

    section, name = "image", "brightness_contrast"
    PARAMS = {"brightness": Param("range", [-0.2, 0.2], -1.0, 1.0), "contrast": Param("range", [-0.2, 0.2], -1.0, 10.0)}
    tolerance = "max abs difference <= 1 uint8 level"

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"alpha": 1.0 + float(rng.uniform(*self.contrast)), "beta": float(rng.uniform(*self.brightness)) * 255.0}

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params.get("applied"):
            return sample
        import albucore

        img = sample["image"]
        arr = albucore.multiply_add(_hwc(img), params["alpha"], params["beta"], inplace=False)
        return sample.with_fields(image=_chw(arr, img.shape[0]))

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

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params.get("applied"):
            return sample
        from albumentations.augmentations.pixel import functional as fpix

        img = sample["image"]
        noise = (self._noise(img.shape, params["seed"]) * (params["std"] * 255.0)).numpy().transpose(1, 2, 0)
        arr = fpix.add_noise(_hwc(img), np.ascontiguousarray(noise))  # uint8 in, rounded + clipped uint8 out
        return sample.with_fields(image=_chw(arr, img.shape[0]))

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

    def apply(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params.get("applied"):
            return sample
        img = sample["image"]
        return sample.with_fields(image=self._rotate(img[None], torch.tensor([params["angle"]]))[0])

    def apply_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch or not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        angles = column(params, "angle", 0.0, device=x.device)
        m = device_mask(params, x.device)[:, None, None, None]
        return batch.replace(image=torch.where(m, self._rotate(x, angles), x))
