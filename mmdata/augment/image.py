"""Image ops. Samples hold uint8 (C, H, W) tensors; batches (B, C, H, W).

Per-sample kernels call albumentations' deterministic functions (or cv2 / PIL's formulas) with *our*
params (flips, crop + resize, padding, cutout, brightness/contrast, resizing, colour conversion), so the
field's reference implementation does the pixel work. Gaussian noise is added in float32 and rounded to
nearest (albumentations' ``add_noise`` truncates toward zero, which shrinks the noise). Batched kernels are
vectorised torch code with per-sample params; they receive only the applied rows (``Op.apply_batch``),
except the naturally masked ones (flips, cutout, brightness / contrast, noise), which write the applied
rows into one output.
Geometric batched kernels need images of one size in the batch (they fall back to the per-sample
kernel otherwise); ops that change the size (`random_resized_crop`, `random_crop`) always output
``size`` — when their ``p`` draw fails they take the whole image / the centre crop — so a batch stays
rectangular.

Deterministic ops for the ``normalize`` stage (also usable in the ``image`` section): ``to_rgb``,
``to_gray``, ``resize`` (shorter side / longer side / exact; nearest, linear, area, cubic with cv2's
sampling), ``center_crop`` and ``pad_to_size``. Their batched kernels handle batches of mixed sizes
(per-row weight matrices / windows, re-padded), so they also run on a collated batch.
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

from mmdata.augment import contract
from mmdata.augment.base import Op, Param, Shape
from mmdata.augment.batching import applied_rows, column, cpu_loop, on, per_sample_fallback
from mmdata.augment.targets import nearest
from mmdata.types import Batch, Sample, pad_stack

#: the advice of a random_crop larger than its image (the trainer, which sizes the images itself, replaces it
#: with its own: mmdata.train.loop._crop_hint)
CROP_ADVICE = "; resize first (e.g. {op: resize, size: N} in normalize.image)"

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
#: what this module's kernels import on first use (lazily: the CLI starts without them); a job that runs
#: kernels in several threads imports these first (:func:`mmdata.augment.offline._import_kernels`:
#: albumentations' modules import each other, and two threads' first imports of them deadlocked)
KERNEL_IMPORTS = ("cv2", "albucore", "albumentations", "albumentations.augmentations.geometric.functional",
                  "albumentations.augmentations.crops.functional", "albumentations.augmentations.dropout.functional")


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
    albumentations works in). ``transform`` wraps it for a CHW-tensor sample; a recipe runs consecutive
    image ops on one HWC array and converts once (:func:`run_hwc`). The kernel gets an array of its own (a
    copy, or the previous kernel's output), so it may write into it; it returns an HWC (or HW) uint8 array
    with :meth:`out_channels` channels."""

    section = "image"
    field = "image"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.copy_input is None and cls.transform is ImageOp.transform:
            cls._copies = False  # the kernel works on an HWC copy (_hwc) already: no second copy

    def out_channels(self, channels: int, params: dict[str, Any]) -> int:
        """Channels of the kernel's output for an input with ``channels`` (colour conversions override)."""
        return channels

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        img = sample["image"]
        arr = self.kernel(_hwc(img), params)
        channels = self.out_channels(img.shape[0], params)
        if not self._builtin:
            _check_kernel(self, arr, channels, sample.key)
        return sample.with_fields(image=_chw(arr, channels))


def _check_kernel(op: ImageOp, arr: Any, channels: int, key: str) -> None:
    """An image kernel from outside mmdata returned an HWC (or HW) uint8 array with ``channels`` channels, or
    :class:`~mmdata.augment.contract.OpError` says what it returned instead."""
    problem = None
    if not isinstance(arr, np.ndarray):
        problem = f"kernel returned {type(arr).__module__}.{type(arr).__name__}; expected an HWC uint8 numpy array"
    elif arr.dtype != np.uint8:
        problem = (f"kernel returned a {arr.dtype} array; expected uint8 (HWC) — a float image in [0, 1]? "
                   "np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)")
    elif arr.ndim not in (2, 3):
        problem = f"kernel returned an array of shape {arr.shape}; expected (H, W, C) or (H, W)"
    elif (arr.shape[2] if arr.ndim == 3 else 1) != channels:
        problem = (f"kernel returned {arr.shape[2] if arr.ndim == 3 else 1} channels (shape {arr.shape}), out_channels "
                   f"says {channels}; the kernel works channels last (H, W, C) — override out_channels when it changes "
                   "the channel count")
    if problem is not None:
        raise contract.fail(op, key, problem)


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


def run_hwc(steps: Sequence[Any], sample: Sample, draw: Any, record: Any) -> Sample:
    """Run consecutive image ops (``step.op``) on one HWC array: one CHW->HWC conversion in, one out.

    ``draw(step, view)`` returns the op's params; ``record(step, params)`` logs them. The result equals
    applying the ops one by one with :meth:`Op.apply`.
    """
    if "image" not in sample:
        for step in steps:
            record(step, draw(step, sample))
        return sample
    channels = sample["image"].shape[0]
    arr: np.ndarray | None = None
    for step in steps:
        op = step.op
        try:
            params = draw(step, sample if arr is None else _HWCView(sample, arr, channels))
            if params["applied"]:
                arr, channels = _kernel_step(op, _hwc(sample["image"]) if arr is None else arr, channels, params,
                                             sample.key)
        except Exception as exc:
            contract.note(exc, op, sample.key)
            raise
        record(step, params)
    return sample if arr is None else sample.with_fields(image=_chw(arr, channels))


def _kernel_step(op: Any, arr: np.ndarray, channels: int, params: dict[str, Any], key: str) -> tuple[np.ndarray, int]:
    """One applied image op's per-sample kernel on an HWC array: its output (with a channel axis) and the
    channel count after it; a user's kernel is checked (:func:`_check_kernel`)."""
    out = op.kernel(arr, params)
    channels = op.out_channels(channels, params)
    if not op._builtin:
        _check_kernel(op, out, channels, key)
    return _with_channels(out), channels


def image_target(op: Op, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """An ``image`` target (:mod:`mmdata.augment.targets`: a clip's other frame), an (H, W, C) uint8 array, as
    ``op`` changed the image with ``params``: an :class:`ImageOp`'s per-sample kernel, any other op on the
    field ``image`` through :meth:`Op.apply` on a one-field sample. Returns a new (H', W', C') array.

    Example:
        >>> from mmdata.augment.recipe import build_op
        >>> op = build_op("image", {"op": "hflip"}, "image[0]")
        >>> image_target(op, np.arange(3, dtype=np.uint8).reshape(1, 3, 1), {"applied": True})[..., 0].tolist()
        [[2, 1, 0]]
    """
    if isinstance(op, ImageOp):
        # a copy: the kernel may write into it, arr may be the input's
        out, channels = _kernel_step(op, np.array(arr, order="C"), arr.shape[2], params, "")
        return np.ascontiguousarray(out[..., :channels])
    img = torch.from_numpy(np.array(arr.transpose(2, 0, 1), order="C"))
    out = op.apply(Sample("", {"image": img}), params)["image"]
    return np.ascontiguousarray(out.detach().cpu().numpy().transpose(1, 2, 0))


def _restack_hwc(batch: Batch, arrays: Sequence[np.ndarray], channels: int) -> Batch:
    """Per-row HWC results of a CPU kernel (cv2's layout) written straight into one padded CHW tensor: one
    copy per row, instead of a CHW copy per row and then a padded stack of them."""
    arrays = [_with_channels(a) for a in arrays]
    hs, ws = [a.shape[0] for a in arrays], [a.shape[1] for a in arrays]
    H, W = max(hs), max(ws)
    uniform = min(hs) == H and min(ws) == W
    out = (np.empty if uniform else np.zeros)((len(arrays), channels, H, W), dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[0], : a.shape[1]] = a.transpose(2, 0, 1)[:channels]
    res = batch.replace(image=torch.from_numpy(out))
    res.lengths["image"] = torch.tensor([hs, ws], dtype=torch.int64).T.contiguous()
    return res


def _restack_images(batch: Batch, rows: Sequence[torch.Tensor]) -> Batch:
    """Rows (C, h_i, w_i) of a batch whose every row is present (as ``Op.apply_batch`` hands them), padded
    back into one tensor on their device; lengths from the host shapes (no sync)."""
    data, shapes = pad_stack(list(rows), batch.keys, "image")
    out = batch.replace(image=data)
    out.lengths["image"] = shapes[:, 1:].clone()
    return out


class _Flip(ImageOp):
    """Mirror along one axis (albumentations' flip for the per-sample kernel). Exact agreement."""

    keeps_layout = True
    dim = -1
    albu = "HorizontalFlip"
    masked = True

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return _albu(self.albu).apply(arr)

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        return (arr[:, ::-1] if self.dim == -1 else arr[::-1]).copy()

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        rows = applied_rows(params)
        if not cpu_loop(x) and _uniform(batch):
            if len(rows) == len(x):
                return batch.replace(image=x.flip(self.dim))
            idx = on(torch.tensor(rows), x.device)
            return batch.replace(image=x.index_copy(0, idx, x.index_select(0, idx).flip(self.dim)))
        # each applied row's valid region (host sizes: mixed sizes need no fallback, and no sync)
        out = x.clone()
        sizes = batch.lengths["image"].tolist()
        if x.device.type == "cpu":  # numpy's reversed slices copy ~2x faster than torch.flip on one core
            xn, yn = x.numpy(), out.numpy()
            for i in rows:
                h, w = sizes[i]
                yn[i, :, :h, :w] = xn[i, :, :h, w - 1 :: -1] if self.dim == -1 else xn[i, :, h - 1 :: -1, :w]
        else:
            for i in rows:
                h, w = sizes[i]
                out[i, :, :h, :w] = x[i, :, :h, :w].flip(self.dim)
        return batch.replace(image=out)


class HFlip(_Flip):
    """Mirror left-right. Exact agreement."""

    section, name = "image", "hflip"
    moves_pixels = True
    dim, albu = -1, "HorizontalFlip"


class VFlip(_Flip):
    """Mirror top-bottom. Exact agreement."""

    section, name = "image", "vflip"
    moves_pixels = True
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
    """Crop a random area (``scale`` of the image, aspect ``ratio``) and resize it to ``size``. When the
    ``p`` draw fails (``p`` < 1), the whole image is resized to ``size`` and its aspect ratio is not kept:
    an image whose aspect ratio differs from ``size``'s comes out stretched (torchvision's
    RandomResizedCrop has no ``p``; this fallback is the op's own, so that every output is ``size``; for
    one that keeps the aspect ratio, leave ``p`` at 1 and choose in a ``one_of`` between this op and a
    ``center_crop`` of the same ``size``). Kernels agree within 2 uint8 levels (cv2's fixed-point bilinear
    weights vs a float separable bilinear in torch).
    """

    section, name = "image", "random_resized_crop"
    moves_pixels = True
    PARAMS = {"size": Param("size", [32, 32], 1, 8192, doc="output [height, width]"),
              "scale": Param("range", [0.08, 1.0], 0.0, 1.0, doc="crop area as a fraction of the image [min, max]"),
              "ratio": Param("range", [0.75, 1.3333333333333333], 0.01, 100.0, doc="crop aspect ratio (width / height) [min, max]")}
    tolerance = "max abs difference <= 2 uint8 levels"
    legacy_always_applies = True

    def validate(self, where: str) -> None:
        if self.args["scale"][1] <= 0:
            from mmdata.errors import RecipeError

            raise RecipeError(f"{where}.scale: the upper bound must be > 0")
        self._log_ratio = (math.log(self.args["ratio"][0]), math.log(self.args["ratio"][1]))

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        _, H, W = sample["image"].shape
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
                return {"random": True, "box": [int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1)), ch, cw]}
        in_ratio = W / H
        # torchvision's fallback, but at least one pixel: an extreme ``ratio`` (W / 50 < 0.5) would round to 0
        if in_ratio < self.ratio[0]:
            cw, ch = W, max(1, int(round(W / self.ratio[0])))
        elif in_ratio > self.ratio[1]:
            ch, cw = H, max(1, int(round(H * self.ratio[1])))
        else:
            cw, ch = W, H
        return {"random": True, "box": [(H - ch) // 2, (W - cw) // 2, ch, cw]}

    def fallback_params(self, sample: Any) -> dict[str, Any]:
        _, H, W = sample["image"].shape
        return {"random": False, "box": [0, 0, H, W]}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import cv2
        from albumentations.augmentations.crops import functional as fcrops
        from albumentations.augmentations.geometric import functional as fgeo

        y0, x0, ch, cw = params["box"]
        crop = fcrops.crop(arr, x0, y0, x0 + cw, y0 + ch)
        h, w = self.args["size"]
        if crop.shape[2] > 4 or (h, w) == crop.shape[:2]:
            return fgeo.resize(crop, (h, w), cv2.INTER_LINEAR)
        # albumentations' resize is this cv2 call for <= 4 channels; calling it directly skips ~8 us of wrappers
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        y0, x0, ch, cw = params["box"]
        return nearest(arr[y0 : y0 + ch, x0 : x0 + cw], *self.args["size"])

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        if cpu_loop(x):  # cv2 per sample, written into one output (see batching.VECTORISED_ON_CPU)
            B, C = x.shape[:2]
            h, w = self.size
            out = np.empty((B, C, h, w), dtype=np.uint8)
            xn = x.numpy()
            for i, p in enumerate(params):  # straight into CHW: one copy per row
                out[i] = self.kernel(_hwc_np(xn[i]), p).reshape(h, w, C).transpose(2, 0, 1)
            return _with_image(batch, torch.from_numpy(out))
        boxes = on(torch.tensor([p["box"] for p in params], dtype=torch.int64), x.device)
        out = _resized_crop(x, boxes, tuple(self.size))
        return _with_image(batch, out.round_().clamp_(0, 255).to(torch.uint8))


class RandomCrop(ImageOp):
    """Pad by ``padding`` pixels (with ``fill``) then crop ``size`` at a random offset; centre crop
    when the ``p`` draw fails. An image smaller than ``size`` (after ``padding``) raises an error naming
    the sample, as torchvision's RandomCrop does with ``pad_if_needed=False``: put a ``resize``, a
    ``center_crop`` (which pads small images) or a ``pad_to_size`` before it, or use a smaller ``size`` or
    more ``padding``. Exact agreement."""

    section, name = "image", "random_crop"
    moves_pixels = True
    PARAMS = {"size": Param("size", [32, 32], 1, 8192, doc="output [height, width]"),
              "padding": Param("int", 0, 0, 4096, doc="pixels padded on every side before cropping"),
              "fill": Param("int", 0, 0, 255, doc="value of padded pixels")}
    legacy_always_applies = True

    def _padded(self, sample: Any) -> tuple[int, int]:
        _, H, W = sample["image"].shape
        Hp, Wp = H + 2 * self.padding, W + 2 * self.padding
        if self.size[0] > Hp or self.size[1] > Wp:
            from mmdata.errors import ShardError

            raise ShardError(f"sample {sample.key!r}: random_crop size {self.size} exceeds the padded image {[Hp, Wp]}"
                             + CROP_ADVICE)
        return Hp, Wp

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        Hp, Wp = self._padded(sample)
        h, w = self.size
        return {"random": True, "y0": int(rng.integers(0, Hp - h + 1)), "x0": int(rng.integers(0, Wp - w + 1))}

    def fallback_params(self, sample: Any) -> dict[str, Any]:
        Hp, Wp = self._padded(sample)
        return {"random": False, "y0": (Hp - self.size[0]) // 2, "x0": (Wp - self.size[1]) // 2}

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

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        pad = self.padding  # the padded image's window: the target's fill where the image reads its `fill`
        return np.ascontiguousarray(_window_np(arr, params["y0"] - pad, params["x0"] - pad, *self.size, fill))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        pad = self.padding
        if pad:
            x = F.pad(x, (pad, pad, pad, pad), value=self.fill)
        h, w = self.size
        # offsets are host ints: stacking the window views is one copy kernel on any device
        x = torch.stack([x[i, :, p["y0"] : p["y0"] + h, p["x0"] : p["x0"] + w] for i, p in enumerate(params)])
        return _with_image(batch, x)


class Cutout(ImageOp):
    """Erase ``num_holes`` rectangles, each side a ``size`` fraction of the image side (at least one pixel;
    a side of fraction 0 makes an empty hole, which erases nothing), with ``fill``. Exact agreement."""

    section, name = "image", "cutout"
    keeps_layout = True
    PARAMS = {"num_holes": Param("irange", [1, 1], 1, 64, doc="number of rectangles [min, max]"),
              "size": Param("range", [0.1, 0.3], 0.0, 1.0, doc="each side as a fraction of the image side [min, max]"),
              "fill": Param("int", 0, 0, 255, doc="value of erased pixels")}
    masked = True  # rows not applied have no holes

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        _, H, W = sample["image"].shape
        n = int(rng.integers(int(self.num_holes[0]), int(self.num_holes[1]) + 1))
        holes = []
        s0, s1 = self.args["size"]
        for _ in range(n):  # lo + (hi - lo) * random() == Generator.uniform(lo, hi), without its call overhead
            fh, fw = s0 + (s1 - s0) * rng.random(), s0 + (s1 - s0) * rng.random()
            # a side of fraction 0 is an empty hole (it erases nothing); any other is at least one pixel
            hh = max(1, int(round(H * fh))) if fh > 0 else 0
            ww = max(1, int(round(W * fw))) if fw > 0 else 0
            y0 = int(rng.integers(0, H - hh + 1))
            x0 = int(rng.integers(0, W - ww + 1))
            holes.append([y0, x0, y0 + hh, x0 + ww])
        return {"holes": holes}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        from albumentations.augmentations.dropout import functional as fdrop

        holes = np.array([[x0, y0, x1, y1] for y0, x0, y1, x1 in params["holes"]], dtype=np.int32).reshape(-1, 4)
        return fdrop.cutout(arr, holes, self.fill, _NO_RNG)  # the rng is unused for a constant fill

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        dev = x.device
        k = max((len(p.get("holes", ())) for p in params), default=0)
        if k == 0:
            return batch
        if cpu_loop(x):  # a few slice fills per row beat building a (B, H, W) mask on one core
            out = x.clone()
            for i, p in enumerate(params):
                for y0, x0, y1, x1 in p.get("holes", ()):
                    out[i, :, y0:y1, x0:x1] = self.fill
            return batch.replace(image=out)
        holes = np.zeros((len(params), k, 4), dtype=np.int64)  # empty holes (0, 0, 0, 0) erase nothing
        for i, p in enumerate(params):
            if p.get("holes"):
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
    keeps_layout = True
    PARAMS = {"brightness": Param("range", [-0.2, 0.2], -1.0, 1.0, doc="added brightness as a fraction of 255 [min, max]"),
              "contrast": Param("range", [-0.2, 0.2], -1.0, 10.0, doc="contrast change: pixels are scaled by 1 + this [min, max]")}
    tolerance = "max abs difference <= 1 uint8 level"
    masked = True  # alpha 1, beta 0 leaves a uint8 row exactly as it is

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"alpha": 1.0 + float(rng.uniform(*self.contrast)), "beta": float(rng.uniform(*self.brightness)) * 255.0}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import albucore

        return albucore.multiply_add(arr, params["alpha"], params["beta"], inplace=False)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        if cpu_loop(x):  # the per-sample kernel (a 256-entry lookup table) on each applied row's valid region
            out = x.clone()
            xn, yn = x.numpy(), out.numpy()
            sizes = batch.lengths["image"].tolist()
            for i in applied_rows(params):
                h, w = sizes[i]
                yn[i, :, :h, :w] = self.kernel(xn[i, :, :h, :w], params[i])
            return batch.replace(image=out)
        a = column(params, "alpha", device=x.device, default=1.0)[:, None, None, None]
        b = column(params, "beta", device=x.device, default=0.0)[:, None, None, None]
        return batch.replace(image=(x.float() * a + b).round_().clamp_(0, 255).to(torch.uint8))


class GaussianNoise(ImageOp):
    """Add N(0, (std*255)^2) noise, drawn from a per-sample seed, rounded to the nearest uint8 level and
    clipped to [0, 255]. Exact on CPU; on CUDA the noise comes from the device generator with the same seed
    (equal in distribution, not bitwise)."""

    section, name = "image", "gaussian_noise"
    keeps_layout = True
    PARAMS = {"std": Param("range", [0.02, 0.1], 0.0, 1.0, doc="noise standard deviation as a fraction of 255 [min, max]")}
    tolerance = "exact on CPU; same distribution on CUDA"
    masked = True  # noise is added to the applied rows only

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"std": float(rng.uniform(*self.std)), "seed": int(rng.integers(0, 2**62))}

    @staticmethod
    def _noise(shape: Sequence[int], seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        # float32 whatever torch's default dtype: a notebook's set_default_dtype(float64) drew other noise
        return torch.randn(tuple(shape), generator=g, dtype=torch.float32, device=device)

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        H, W, C = arr.shape  # noise is drawn in CHW order, as the batched kernel draws it
        noise = (self._noise((C, H, W), params["seed"]) * (params["std"] * 255.0)).numpy().transpose(1, 2, 0)
        # round to nearest (half to even, as torch.round): albumentations' add_noise truncates toward zero,
        # which shrinks the noise (std 4.75 for 5.10); this is the same float32 sum as the batched kernel
        out = np.rint(arr.astype(np.float32) + noise)
        return np.clip(out, 0, 255).astype(np.uint8)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        sizes = batch.lengths["image"].tolist()
        if cpu_loop(x):  # only the applied rows go through float (a whole-batch conversion costs more on one core)
            out = x.clone()
            for i in applied_rows(params):
                h, w = sizes[i]
                p = params[i]
                row = x[i, :, :h, :w].float() + self._noise((x.shape[1], h, w), p["seed"]) * (p["std"] * 255.0)
                out[i, :, :h, :w] = row.round_().clamp_(0, 255)
            return batch.replace(image=out)
        out = x.float()
        for i in applied_rows(params):  # per-sample generator
            h, w = sizes[i]
            p = params[i]
            out[i, :, :h, :w] += self._noise((x.shape[1], h, w), p["seed"], x.device) * (p["std"] * 255.0)
        return batch.replace(image=out.round_().clamp_(0, 255).to(torch.uint8))


class Rotate(ImageOp):
    """Rotate by an angle in [-limit, limit] degrees about the centre (bilinear, ``fill`` outside).

    Both kernels use the same torch affine sampler (one image or a batch), so they agree exactly;
    albumentations' ``Rotate`` runs cv2.warpAffine with fixed-point weights, which no float GPU
    kernel can reproduce bit for bit.
    """

    section, name = "image", "rotate"
    moves_pixels = True
    keeps_layout = True
    PARAMS = {"limit": Param("float", 10.0, 0.0, 180.0, doc="largest angle in degrees (drawn in [-limit, limit])"),
              "fill": Param("int", 0, 0, 255, doc="value of pixels rotated in from outside")}

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        return {"angle": float(rng.uniform(-self.limit, self.limit))}

    @staticmethod
    def _grid(angles: torch.Tensor, B: int, C: int, H: int, W: int) -> torch.Tensor:
        """The sampling grid (B, H, W, 2) of rotations by ``angles`` degrees (normalised coordinates with
        aspect correction, so the rotation is rigid in pixels)."""
        t = angles.to(torch.float32) * (math.pi / 180.0)
        cos, sin = torch.cos(t), torch.sin(t)
        theta = torch.zeros((B, 2, 3), dtype=torch.float32, device=angles.device)
        theta[:, 0, 0] = cos
        theta[:, 0, 1] = -sin * H / W
        theta[:, 1, 0] = sin * W / H
        theta[:, 1, 1] = cos
        return F.affine_grid(theta, [B, C, H, W], align_corners=False)

    def _rotate(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        grid = self._grid(angles.to(x.device), B, C, H, W)
        xf = x.float() - self.fill
        out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + self.fill
        return out.round_().clamp_(0, 255).to(torch.uint8)

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
        return np.ascontiguousarray(self._rotate(x, torch.tensor([params["angle"]], dtype=torch.float32))[0].permute(1, 2, 0).numpy())

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        """The image's sampling grid read nearest (torch's ``grid_sample(mode="nearest")`` indices, exact for any
        dtype: int32 depth keeps every value), ``fill`` outside."""
        iy, ix, inside = _rotation_taps(float(params["angle"]), *arr.shape[:2])
        out = np.full_like(arr, fill)
        out[inside] = arr[iy, ix]
        return out

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if not _uniform(batch):
            return per_sample_fallback(self, batch, params)
        x = batch["image"]
        return batch.replace(image=self._rotate(x, column(params, "angle", device=x.device)))


@lru_cache(maxsize=1)  # a sample's targets share one rotation: its taps are computed once, not per target
def _rotation_taps(angle: float, H: int, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest source pixel (row, column: int32, for the pixels inside) of each output pixel of a rotation by
    ``angle`` degrees (:meth:`Rotate._grid`), and the mask of those inside the image."""
    g = Rotate._grid(torch.tensor([angle], dtype=torch.float32), 1, 1, H, W)[0].numpy()
    ix = np.rint(((g[..., 0] + 1) * W - 1) / 2)
    iy = np.rint(((g[..., 1] + 1) * H - 1) / 2)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    return iy[inside].astype(np.int32), ix[inside].astype(np.int32), inside


# -- deterministic ops (the normalize stage) -------------------------------------------------------

_ALPHA = Param("str", "drop", choices=("drop", "blend"),
               doc="RGBA / LA input: drop the alpha channel (PIL's convert), or blend onto `background`")
_BACKGROUND = Param("int", 255, 0, 255, doc="grey level under transparent pixels when alpha is `blend`")


def _colour(x: Any, alpha: str, background: int) -> Any:
    """Drop or blend the alpha channel of (…, C) uint8 numpy / (B, C, …) torch data; other inputs pass.

    Integer arithmetic (``(c * a + bg * (255 - a) + 127) // 255``), so both kernels agree exactly.
    """
    if isinstance(x, np.ndarray):
        c = x.shape[-1]
        if c not in (2, 4):
            return x
        colour, a = x[..., : c - 1].astype(np.int32), x[..., c - 1 :].astype(np.int32)
        if alpha == "drop":
            return x[..., : c - 1]
        return ((colour * a + background * (255 - a) + 127) // 255).astype(np.uint8)
    c = x.shape[1]
    if c not in (2, 4):
        return x
    if alpha == "drop":
        return x[:, : c - 1]
    colour, a = x[:, : c - 1].to(torch.int32), x[:, c - 1 :].to(torch.int32)
    return torch.div(colour * a + background * (255 - a) + 127, 255, rounding_mode="floor").to(torch.uint8)


def _blank_padding(batch: Batch, x: torch.Tensor, alpha: str) -> torch.Tensor:
    """``x`` (``batch``'s images after :func:`_colour`) with zeros past each row's own height and width, as
    collate pads: a blend turns the padding's alpha 0 into ``background``. Only a blended batch of mixed sizes
    has any to clear."""
    if alpha != "blend" or batch["image"].shape[1] not in (2, 4) or _uniform(batch):
        return x
    hw = on(batch.lengths["image"], x.device)
    H, W = x.shape[-2:]
    keep = ((torch.arange(H, device=x.device)[None, :, None] < hw[:, 0, None, None])
            & (torch.arange(W, device=x.device)[None, None, :] < hw[:, 1, None, None]))
    return x * keep[:, None].to(x.dtype)


def blends_alpha(recipe: Any) -> bool:
    """Whether ``recipe``'s normalize stage composites transparent pixels (``to_rgb`` / ``to_gray`` with
    ``alpha: blend``): the reader must then keep images' alpha channels (``image_alpha=True``) —
    otherwise it drops them at decode and there is nothing left to blend."""
    return any(op.name in ("to_rgb", "to_gray") and op.alpha == "blend"
               for op in recipe.normalize_sections.get("image", []))


def _check_modes(sample: Any, op: str) -> int:
    c = int(sample["image"].shape[0])
    if c not in (1, 2, 3, 4):
        from mmdata.errors import ShardError

        raise ShardError(f"sample {sample.key!r}: image has {c} channels; {op} takes 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)")
    return c


class ToRGB(ImageOp):
    """Convert L / LA / RGBA images to 3-channel RGB (grey replicated; alpha dropped as PIL's
    ``convert("RGB")`` does, or blended onto ``background``). RGB images are left as they are. Exact."""

    section, name = "image", "to_rgb"
    PARAMS = {"alpha": _ALPHA, "background": _BACKGROUND}
    deterministic = True

    def validate(self, where: str) -> None:
        if self.p != 1.0:
            from mmdata.errors import RecipeError

            raise RecipeError(f"{where}.p: to_rgb changes the channel count, so a batch needs it on every sample; p must be 1.0")

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any] | None:
        return None if _check_modes(sample, "to_rgb") == 3 else {}

    def out_channels(self, channels: int, params: dict[str, Any]) -> int:
        return 3

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        arr = _colour(arr, self.alpha, self.background)
        return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else np.ascontiguousarray(arr)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = _blank_padding(batch, _colour(batch["image"], self.alpha, self.background), self.alpha)
        return batch.replace(image=x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x.contiguous())


def _luma(x: Any) -> Any:
    """ITU-R 601-2 luma with PIL's fixed-point weights (``convert("L")``): exact in numpy and torch."""
    if isinstance(x, np.ndarray):
        r, g, b = (x[..., i].astype(np.int32) for i in range(3))
        return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]
    r, g, b = (x[:, i : i + 1].to(torch.int32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)


class ToGray(ImageOp):
    """Convert to greyscale with ITU-R 601-2 luma (PIL's ``convert("L")`` weights), as ``channels`` 1 or
    3 (replicated). Alpha is dropped or blended first. With ``channels: 3`` and ``p`` < 1 it is a
    random-greyscale augmentation. Exact."""

    section, name = "image", "to_gray"
    PARAMS = {"channels": Param("int", 1, 1, 3, doc="output channels: 1, or 3 (the grey level replicated)"),
              "alpha": _ALPHA, "background": _BACKGROUND}
    deterministic = True

    def validate(self, where: str) -> None:
        from mmdata.errors import RecipeError

        if self.channels not in (1, 3):
            raise RecipeError(f"{where}.channels: {self.channels} is not allowed; choose 1 or 3")
        if self.channels == 1 and self.p != 1.0:
            raise RecipeError(f"{where}.p: to_gray with channels 1 changes the channel count, so p must be 1.0 "
                              "(use channels: 3 for a random greyscale)")

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any] | None:
        c = _check_modes(sample, "to_gray")
        return None if c == 1 and self.channels == 1 else {}

    def out_channels(self, channels: int, params: dict[str, Any]) -> int:
        return self.channels

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        arr = _colour(arr, self.alpha, self.background)
        grey = _luma(arr) if arr.shape[2] == 3 else arr
        return np.repeat(grey, self.channels, axis=2) if self.channels == 3 else np.ascontiguousarray(grey)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = _blank_padding(batch, _colour(batch["image"], self.alpha, self.background), self.alpha)
        grey = _luma(x) if x.shape[1] == 3 else x
        return batch.replace(image=grey.expand(-1, self.channels, -1, -1).contiguous())


def _max_pixels() -> int:
    from mmdata.shards.mediainfo import MAX_PIXELS

    return MAX_PIXELS


_CV2_INTERPOLATION = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3}  # cv2.INTER_* values


@lru_cache(maxsize=512)
def resize_weights(n_in: int, n_out: int, interpolation: str, shrinking: bool) -> np.ndarray:
    """(n_out, n_in) float64 weights of cv2.resize along one axis: the batched kernel is
    ``Wy @ image @ Wx.T`` with cv2's sample positions, taps and border handling.

    ``shrinking``: both axes shrink (cv2 then uses true area averaging for ``area``; otherwise its
    "area mode" of the linear path).

    Example:
        >>> resize_weights(4, 2, "area", True).tolist()
        [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    W = np.zeros((n_out, n_in), dtype=np.float64)
    inv = n_out / n_in
    scale = 1.0 / inv
    if interpolation == "nearest":  # cv2: floor(dst * (1 / (n_out / n_in))), clamped
        for d in range(n_out):
            W[d, min(int(math.floor(d * scale)), n_in - 1)] = 1.0
    elif interpolation == "area" and shrinking:  # cv2's computeResizeAreaTab
        for d in range(n_out):
            fs1 = d * scale
            fs2 = fs1 + scale
            s1, s2 = math.ceil(fs1), min(math.floor(fs2), n_in - 1)
            s1 = min(s1, s2)
            cell = min(scale, n_in - fs1)
            if s1 - fs1 > 1e-3:
                W[d, s1 - 1] += (s1 - fs1) / cell
            W[d, s1:s2] += 1.0 / cell
            if fs2 - s2 > 1e-3:
                W[d, s2] += min(fs2 - s2, 1.0, cell) / cell
    elif interpolation == "cubic":  # Keys a = -0.75, replicated border, float32 positions as in cv2
        A = -0.75
        for d in range(n_out):
            fx = float(np.float32((d + 0.5) * scale - 0.5))
            sx = math.floor(fx)
            x = float(np.float32(fx - sx))
            c0 = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A
            c1 = ((A + 2) * x - (A + 3)) * x * x + 1
            c2 = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1
            for k, c in enumerate((c0, c1, c2, 1 - c0 - c1 - c2)):
                W[d, min(max(sx - 1 + k, 0), n_in - 1)] += c
    else:  # linear, and area when enlarging (cv2's area mode of the linear path)
        for d in range(n_out):
            if interpolation == "area":
                sx = math.floor(d * scale)
                fx = float(np.float32((d + 1) - (sx + 1) * inv))
                fx = 0.0 if fx <= 0 else fx - math.floor(fx)
            else:
                pos = float(np.float32((d + 0.5) * scale - 0.5))
                sx = math.floor(pos)
                fx = float(np.float32(pos - sx))
            if sx < 0:
                fx, sx = 0.0, 0
            if sx >= n_in - 1:
                fx, sx = 0.0, n_in - 1
            W[d, sx] += 1 - fx
            if fx:
                W[d, sx + 1] += fx
    return W


class Resize(ImageOp):
    """Resize so the ``shorter`` (or ``longer``) side is ``size`` keeping the aspect ratio (other side
    rounded), or to exactly ``size`` = [height, width] (``side: exact``). An output of more pixels than an image
    may hold (``mmdata.shards.mediainfo.MAX_PIXELS``, the decoder's limit: the shorter side of a 3 x 4000 strip
    to 16384 is 16384 x 21845333) is refused, naming the sample and the size.

    ``interpolation`` uses cv2's sampling (albumentations' resize): ``area`` (default) averages source
    pixels when shrinking — anti-aliased, what photos resized to model size need — and is bilinear-like
    when enlarging; ``linear`` and ``cubic`` do not anti-alias when shrinking by more than 2x. The batched
    kernel applies the same per-axis weights as two matrix products, so it handles a batch of mixed
    sizes in one go.
    """

    section, name = "image", "resize"
    moves_pixels = True
    PARAMS = {"size": Param("extent", 64, 1, 16384, doc="target side length (shorter / longer), or [height, width] (exact)"),
              "side": Param("str", "shorter", choices=("shorter", "longer", "exact"),
                            doc="which side becomes `size`; exact: both ([height, width] or a square)"),
              "interpolation": Param("str", "area", choices=("nearest", "linear", "area", "cubic"),
                                     doc="sampling (cv2 semantics); area anti-aliases when shrinking")}
    deterministic = True
    tolerance = "nearest: exact; linear, area, cubic: max abs difference <= 1 uint8 level (cv2's fixed-point weights)"

    def validate(self, where: str) -> None:
        if self.side != "exact" and isinstance(self.size, list):
            from mmdata.errors import RecipeError

            raise RecipeError(f"{where}.size: side {self.side!r} takes one integer (the {self.side} side), got {self.size}; "
                              "use side: exact for [height, width]")

    def out_size(self, H: int, W: int) -> tuple[int, int]:
        """Output (height, width) for an (H, W) input."""
        if self.side == "exact":
            h, w = self.size if isinstance(self.size, list) else (self.size, self.size)
            return int(h), int(w)
        ref = min(H, W) if self.side == "shorter" else max(H, W)
        s = self.size / ref
        return max(1, int(math.floor(H * s + 0.5))), max(1, int(math.floor(W * s + 0.5)))

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any] | None:
        _, H, W = sample["image"].shape
        h, w = self.out_size(H, W)
        if h * w > _max_pixels():  # side: shorter bounds one side only: 16384 on a 3 x 4000 image asked cv2 for 1 TB
            from mmdata.errors import ShardError  # this sample's refusal, as random_crop's: on_error="skip" skips it

            raise ShardError(f"{self.where}: sample {sample.key!r}: resize ({self.side} side to {self.size}) of its "
                              f"{H}x{W} (height x width) image would make {h}x{w} = {h * w:,} pixels, over the "
                              f"{_max_pixels():,} an image may hold (mmdata.shards.mediainfo.MAX_PIXELS, the decoder's "
                              "limit); crop it first, or resize with side: longer or exact")
        return None if (h, w) == (H, W) else {"height": h, "width": w}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        import cv2
        from albumentations.augmentations.geometric import functional as fgeo

        h, w = params["height"], params["width"]
        flag = _CV2_INTERPOLATION[self.interpolation]
        if arr.shape[2] > 4:
            return fgeo.resize(arr, (h, w), flag)
        return cv2.resize(arr, (w, h), interpolation=flag)  # albumentations' resize is this call for <= 4 channels

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        # an image resized nearest samples cv2's INTER_NEAREST (corner-aligned): the target samples the same pixels
        return nearest(arr, params["height"], params["width"], exact=self.interpolation != "nearest")

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        sizes = batch.lengths["image"].tolist()
        if cpu_loop(x):
            xn = x.numpy()
            return _restack_hwc(batch, [self.kernel(_hwc_np(xn[i, :, :H, :W]), p) for i, (p, (H, W)) in enumerate(zip(params, sizes))],
                                x.shape[1])
        B, _, Hp, Wp = x.shape
        hs, ws = [p["height"] for p in params], [p["width"] for p in params]
        wy = np.zeros((B, max(hs), Hp), dtype=np.float32)
        wx = np.zeros((B, max(ws), Wp), dtype=np.float32)
        for i, (h, w, (H, W)) in enumerate(zip(hs, ws, sizes)):  # per-row weights: ragged inputs, one einsum
            shrinking = H >= h and W >= w
            wy[i, :h, :H] = resize_weights(H, h, self.interpolation, shrinking)
            wx[i, :w, :W] = resize_weights(W, w, self.interpolation, shrinking)
        wy_t, wx_t = on(torch.from_numpy(wy), x.device), on(torch.from_numpy(wx), x.device)
        out = torch.einsum("bchw,bvw->bchv", torch.einsum("byh,bchw->bcyw", wy_t, x.float()), wx_t)
        out = batch.replace(image=out.round_().clamp_(0, 255).to(torch.uint8))
        out.lengths["image"] = torch.tensor([hs, ws], dtype=torch.int64).T.contiguous()
        return out


def _window_np(arr: np.ndarray, y0: int, x0: int, h: int, w: int, fill: int) -> np.ndarray:
    """The (h, w) window of an HWC array at (y0, x0) — negative or overhanging offsets read ``fill``."""
    H, W = arr.shape[:2]
    if y0 >= 0 and x0 >= 0 and y0 + h <= H and x0 + w <= W:  # a plain crop: a view of the run's own working array
        return arr[y0 : y0 + h, x0 : x0 + w]
    out = np.full((h, w, arr.shape[2]), fill, dtype=arr.dtype)
    ys, ye, xs, xe = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
    if ys < ye and xs < xe:
        out[ys - y0 : ye - y0, xs - x0 : xe - x0] = arr[ys:ye, xs:xe]
    return out


def _window_t(x: torch.Tensor, y0: int, x0: int, h: int, w: int, fill: int) -> torch.Tensor:
    """:func:`_window_np` for one CHW tensor on its device (host offsets: slices, no sync)."""
    H, W = x.shape[-2:]
    if y0 >= 0 and x0 >= 0 and y0 + h <= H and x0 + w <= W:
        return x[:, y0 : y0 + h, x0 : x0 + w]  # a view: the caller restacks (copies) the rows
    out = torch.full((x.shape[0], h, w), fill, dtype=x.dtype, device=x.device)
    ys, ye, xs, xe = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
    if ys < ye and xs < xe:
        out[:, ys - y0 : ye - y0, xs - x0 : xe - x0] = x[:, ys:ye, xs:xe]
    return out


class _Window(ImageOp):
    """A deterministic window of each image (crop and/or pad): params ``y0, x0, height, width``."""

    section = ""
    deterministic = True

    def window(self, H: int, W: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any] | None:
        _, H, W = sample["image"].shape
        y0, x0, h, w = self.window(H, W)
        return None if (y0, x0, h, w) == (0, 0, H, W) else {"y0": y0, "x0": x0, "height": h, "width": w}

    def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return _window_np(arr, params["y0"], params["x0"], params["height"], params["width"], self.fill)

    def move_map(self, arr: np.ndarray, params: dict[str, Any], fill: int | float = 0) -> np.ndarray:
        return np.ascontiguousarray(_window_np(arr, params["y0"], params["x0"], params["height"], params["width"], fill))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        x = batch["image"]
        return _restack_images(batch, [_window_t(x[i, :, :H, :W], p["y0"], p["x0"], p["height"], p["width"], self.fill)
                                       for i, (p, (H, W)) in enumerate(zip(params, batch.lengths["image"].tolist()))])


class CenterCrop(_Window):
    """Crop the central ``size`` = [height, width] window (albumentations' offsets ``(H - h) // 2``);
    images smaller than ``size`` are first padded with ``fill`` around the centre (torchvision's
    CenterCrop, albumentations' ``pad_if_needed``), so every output is exactly ``size``. Exact."""

    section, name = "image", "center_crop"
    moves_pixels = True
    PARAMS = {"size": Param("size", [64, 64], 1, 16384, doc="output [height, width] (or one int: a square)"),
              "fill": Param("int", 0, 0, 255, doc="value of padded pixels (images smaller than size)")}

    def window(self, H: int, W: int) -> tuple[int, int, int, int]:
        h, w = self.size
        y0 = (H - h) // 2 if H >= h else -((h - H) // 2)
        x0 = (W - w) // 2 if W >= w else -((w - W) // 2)
        return y0, x0, h, w


class PadToSize(_Window):
    """Pad images smaller than ``size`` = [height, width] with ``fill`` (albumentations PadIfNeeded);
    larger sides are kept. After ``resize`` with ``side: longer`` it letterboxes to a square. Exact."""

    section, name = "image", "pad_to_size"
    moves_pixels = True
    PARAMS = {"size": Param("size", [64, 64], 1, 16384, doc="minimum [height, width] (or one int: a square)"),
              "fill": Param("int", 0, 0, 255, doc="value of padded pixels"),
              "position": Param("str", "center", choices=("center", "top_left"), doc="where the image sits in the padded area")}

    def window(self, H: int, W: int) -> tuple[int, int, int, int]:
        h, w = max(H, self.size[0]), max(W, self.size[1])
        if self.position == "top_left":
            return 0, 0, h, w
        return -((h - H) // 2), -((w - W) // 2), h, w
