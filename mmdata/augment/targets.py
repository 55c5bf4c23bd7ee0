"""Per-pixel targets that follow the image: a recipe's ``targets: {depth.png: mask, seg.png: mask}``.

A target is a field beside ``image`` with the image's height and width as its last two dimensions — a
depth map ``k.depth.png``, a segmentation mask ``k.seg.png`` or ``k.mask.npy`` — of any dtype and any
number of leading channels. Every op that moves the image's pixels (``Op.moves_pixels``: flips, crops,
resizes, rotations, the normalize stage's windows, ``consistent_hflip``) moves each target with the same
params through its :meth:`~mmdata.augment.base.Op.move_map`: nearest-neighbour sampling at the image's
pixel centres (a label or a depth value is never blended), ``fill`` where the op pads or rotates pixels in
— 0 by default, or per target: ``{seg.png: {kind: mask, fill: 255}}`` for a VOC mask's "ignore" label (as
albumentations' ``mask`` targets with ``fill_mask``, torchvision's ``fill={Mask: 255}``). Ops
that change pixel values (brightness, noise, cutout) leave targets as they are. Batch ops that blend two
images (``mixup``, ``mixgen``) have no single map to give and are refused with targets.

A target of kind ``image`` — ``targets: {frame1.png: image}``, the other frames of a clip (albumentations'
``additional_targets={"frame1": "image"}``, kornia's ``data_keys=["input", "input"]``) — gets what the image
gets: every image op (the ``image:`` and ``normalize.image`` sections) runs its per-sample kernel on it with
the image's params, the same draw — geometric ops with the image's interpolation and fill, photometric ops
(brightness, noise, cutout) too — so a frame identical to the image stays identical to it. Sample-level ops
that move pixels (``consistent_hflip``) move it as they move a mask. An image target is a uint8 (C, H, W)
image of the image's height and width (the params are in the image's pixels: a frame or view of another size
is refused, naming the sample and the field; store a clip's frames or a product's views at the image's size —
and in the image's mode: a grey view beside an RGB image is refused too, since ``to_rgb`` draws a no-op on the
image and would leave the view grey; convert those files and shard again).

Mask targets move per sample on the host, in the per-sample and the batched runs alike (a batch's targets
row by row, then padded back), so both give the same maps; replay logs move them too. In a batched run an
image target goes through the image's own batched kernel with the image's params (on the batch's device,
the rows without the frame left out), so a frame identical to the image stays identical to it there too;
both are within that kernel's tolerance of the per-sample run (QA29: the frames ran the per-sample kernel,
1 level off the vectorised image, and ``gaussian_noise`` on CUDA drew another noise field for them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmdata.codecs import AUDIO_EXTS, IMAGE_EXTS
from mmdata.errors import RecipeError, ShardError

#: what a target may be: ``mask`` (nearest sampling, its fill outside) or ``image`` (the image's ops and params)
KINDS = ("mask", "image")
#: fields that are never targets: the modalities themselves and what the reader derives from them
RESERVED = frozenset(("image", "audio", "text", "tokens", "label", "json", "spec", "label_b", "mix_lam"))
#: member extensions the reader turns into a modality (``k.cls`` is the field ``label``): never a field name
MODALITY_EXTS = {"cls": "label", "txt": "text", **dict.fromkeys(IMAGE_EXTS, "image"), **dict.fromkeys(AUDIO_EXTS, "audio")}


class ImageFill(int):
    """The fill :func:`fill_of` gives an ``image`` target: 0 wherever a number is read (an image target has no
    fill of its own: it takes the ops' ``fill``, as the image does), and the mark by which :func:`move` and
    :func:`check_target` know the kind — the recipe hands them each target's fill, not its spec."""

    def __repr__(self) -> str:
        return "IMAGE"


#: :func:`fill_of` of an ``image`` target
IMAGE = ImageFill(0)


def is_image(fill: Any) -> bool:
    """Whether ``fill`` (:func:`fill_of` of a target spec) is an ``image`` target's."""
    return isinstance(fill, ImageFill)


def validate_targets(value: Any, where: str = "targets") -> dict[str, Any]:
    """A recipe's ``targets`` in canonical form — ``{field: "mask"}`` or ``{field: "image"}``, or
    ``{field: {kind: mask, fill: N}}`` for a fill other than 0 (``{}`` for none) — or a :class:`RecipeError`
    naming the key.

    Example:
        >>> validate_targets({"depth.png": "mask", "seg.png": {"kind": "mask", "fill": 255}, "frame1.png": "image"})
        {'depth.png': 'mask', 'seg.png': {'kind': 'mask', 'fill': 255}, 'frame1.png': 'image'}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecipeError(f"{where}: expected a mapping of field -> kind, e.g. {{depth.png: mask}}, got {value!r}")
    out: dict[str, Any] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name or len(name) > 200 or any(c in name for c in "/\\\x00"):
            raise RecipeError(f"{where}: {name!r} is not a field name (a sample's member extension: depth.png, mask)")
        if name in RESERVED or name.lower() in MODALITY_EXTS:
            what = f"read as the field {MODALITY_EXTS[name.lower()]!r}" if name.lower() in MODALITY_EXTS else "a modality"
            raise RecipeError(f"{where}.{name}: {name!r} is {what}, not a per-pixel target; list the fields beside the "
                              "image that should move with it (depth.png, seg.png, mask)")
        kind, fill = (spec.get("kind"), spec.get("fill", 0)) if isinstance(spec, Mapping) else (spec, 0)
        if isinstance(spec, Mapping) and set(spec) - {"kind", "fill"}:
            raise RecipeError(f"{where}.{name}: unknown key(s) {sorted(set(spec) - {'kind', 'fill'}, key=str)}; "
                              "allowed: kind, fill")
        if kind not in KINDS:
            raise RecipeError(f"{where}.{name}: kind {kind!r} is not allowed; choose one of {list(KINDS)}")
        if kind == "image" and isinstance(spec, Mapping) and "fill" in spec:
            raise RecipeError(f"{where}.{name}.fill: an image target takes the ops' fill, as the image does; "
                              f"leave fill out ({{{name}: image}})")
        if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not np.isfinite(fill):
            raise RecipeError(f"{where}.{name}.fill: expected a finite number (the value of pixels that come in from "
                              f"outside: 0, or 255 for a VOC mask's ignore label), got {fill!r}")
        out[name] = str(kind) if fill == 0 else {"kind": str(kind), "fill": fill}
    return out


def fill_of(spec: Any) -> int | float:
    """The fill of a canonical target spec (``"mask"``: 0; ``"image"``: :data:`IMAGE`, a 0 that says image)."""
    kind = spec.get("kind") if isinstance(spec, Mapping) else spec
    if kind == "image":
        return IMAGE
    return spec.get("fill", 0) if isinstance(spec, Mapping) else 0


def as_hwk(value: Any) -> np.ndarray:
    """A target (torch tensor or numpy array, shape (..., H, W)) as a new (H, W, K) numpy array."""
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    h, w = arr.shape[-2:]
    return np.ascontiguousarray(arr.reshape(-1, h, w).transpose(1, 2, 0))


def from_hwk(arr: np.ndarray, like: Any) -> Any:
    """An (H', W', K) array back in the layout and type of ``like`` (leading dimensions kept), in memory of
    its own (a flip of a 1-pixel-wide map keeps a negative stride through ``ascontiguousarray``)."""
    lead = like.shape[:-2] if len(like.shape) != 3 else (arr.shape[2],)  # an image target's C may change (to_gray)
    out = np.array(arr.transpose(2, 0, 1), order="C").reshape(*lead, *arr.shape[:2])
    if hasattr(like, "detach"):
        import torch

        return torch.from_numpy(out).to(like.device)
    return out


def check_target(name: str, value: Any, image: Any, key: str, fill: int | float = 0) -> None:
    """A target's last two dimensions are the image's height and width, and its ``fill`` is a value of its
    dtype (255 in a uint8 mask, not 300; an integer in an integer map, 0 or 1 in a bool mask), or a
    :class:`ShardError` naming the sample, the target and what was expected."""
    shape = tuple(getattr(value, "shape", ()))
    hw = tuple(int(v) for v in image.shape[-2:])
    if is_image(fill):
        # the image's channel count where the caller knows it: a (C, H, W) image, not a batch row's (H, W) lengths
        ic = int(image.shape[-3]) if len(image.shape) >= 3 else None
        _check_image_target(name, value, shape, hw, key, ic)
        return
    if len(shape) < 2 or tuple(int(v) for v in shape[-2:]) != hw:
        raise ShardError(f"sample {key!r}: target {name!r} has shape {list(shape)}; a target must end in the image's "
                         f"height and width {list(hw)} (the image ops move it with the image)")
    dtype = value.dtype
    if isinstance(dtype, np.dtype):
        kind = "b" if dtype == np.bool_ else dtype.kind
        info: Any = np.iinfo(dtype) if kind in "iu" else None
    else:  # a torch dtype (bfloat16 has no numpy twin)
        import torch

        kind = "b" if dtype == torch.bool else "f" if dtype.is_floating_point or dtype.is_complex else "i"
        info = torch.iinfo(dtype) if kind == "i" else None
    ok = fill in (0, 1) if kind == "b" else float(fill).is_integer() and info.min <= fill <= info.max if info else True
    if not ok:
        shown = str(dtype).removeprefix("torch.")
        raise ShardError(f"sample {key!r}: target {name!r} holds {shown} values; its fill {fill!r} is no {shown} value "
                         f"(targets: {{{name}: {{kind: mask, fill: N}}}} with N a {shown} value)")


def _check_image_target(name: str, value: Any, shape: tuple[Any, ...], hw: tuple[int, ...], key: str,
                        channels: int | None = None) -> None:
    """An ``image`` target is a uint8 (C, H, W) image, C in 1..4, of the image's height, width and (where
    known) channel count: the target gets the image's params, drawn for the image's mode, so a colour
    conversion does not bring a target of another mode to it (``to_rgb`` drawn as a no-op on an RGB image
    leaves a grey frame grey, later zero-padded to RGB by collate: grey in R, zeros in G and B)."""
    dtype = str(getattr(value, "dtype", type(value).__name__)).removeprefix("torch.")
    if dtype != "uint8" or len(shape) != 3 or not 1 <= int(shape[0]) <= 4:
        raise ShardError(f"sample {key!r}: image target {name!r} is a {dtype} array of shape {list(shape)}; an image "
                         "target is a uint8 (C, H, W) image with 1 to 4 channels, as the image is (a PNG / JPEG member), "
                         f"or list it as a mask ({{{name}: mask}})")
    if tuple(int(v) for v in shape[-2:]) != hw:
        raise ShardError(f"sample {key!r}: image target {name!r} is {int(shape[-2])}x{int(shape[-1])} (HxW), the image "
                         f"{hw[0]}x{hw[1]}; an image target (a view or frame moved with the image) must have the image's "
                         "height and width, since it gets the image's params (crop boxes, sizes) in the image's pixels: "
                         f"store {name!r} at the image's size (resize those files) and shard again, or leave {name!r} "
                         "out of the recipe's targets (it is then not moved with the image)")
    if channels is not None and int(shape[0]) != channels:
        mine, theirs = _mode(int(shape[0])), _mode(channels)
        raise ShardError(f"sample {key!r}: image target {name!r} has {int(shape[0])} channel(s) ({mine}), the image "
                         f"{channels} ({theirs}); an image target (a view or frame moved with the image) gets the "
                         f"image's params, drawn for the image's mode, so a colour conversion (to_rgb / to_gray), "
                         f"where the recipe has one, does not bring {name!r} to the image's mode: store the image and "
                         f"{name!r} in one mode, the one the recipe's colour conversion gives (RGB for to_rgb, L for to_gray; without "
                         f"one, the mode most of the dataset's files have): convert the image to {mine} "
                         f"(PIL's Image.open(path).convert({mine!r}).save(path)) or {name!r} to {theirs} "
                         f"(.convert({theirs!r})), and shard again, or leave {name!r} out of the recipe's targets (it "
                         "is then not moved with the image)")


def _mode(channels: int) -> str:
    """The PIL mode name of a uint8 image of ``channels`` channels (1 to 4)."""
    return {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels}-channel")


def nearest(arr: np.ndarray, h: int, w: int, exact: bool = True) -> np.ndarray:
    """Resize an (H, W, K) array to (h, w) by nearest neighbour at pixel centres — cv2's INTER_NEAREST_EXACT
    (PIL's NEAREST gives the same): output pixel j reads input about floor((j + 0.5) * H / h), ties as
    cv2 breaks them; ``exact=False``: cv2's INTER_NEAREST, floor(j * H / h) (what an image resized with
    ``interpolation: nearest`` samples). Any dtype (the indices come from cv2, the values are gathered).

    Example:
        >>> nearest(np.arange(4).reshape(1, 4, 1), 1, 2)[..., 0].tolist()
        [[1, 3]]
    """
    H, W = arr.shape[:2]
    return np.ascontiguousarray(arr[_taps(H, h, exact)][:, _taps(W, w, exact)])


def _taps(n_in: int, n_out: int, exact: bool = True) -> np.ndarray:
    """The input index each of ``n_out`` outputs reads along an axis of ``n_in`` (cv2's nearest(-exact))."""
    import cv2

    idx = np.arange(n_in, dtype=np.float32)[None]  # exact up to 2^24: any image side
    flag = cv2.INTER_NEAREST_EXACT if exact else cv2.INTER_NEAREST
    return cv2.resize(idx, (n_out, 1), interpolation=flag)[0].astype(np.int64)


def move(step: Any, params: Mapping[str, Any], maps: dict[str, np.ndarray], fills: Mapping[str, Any],
         key: Any = None) -> None:
    """Move ``maps`` ({field: (H, W, K) array}) as ``step`` moved the image with ``params``, ``fills[field]``
    where pixels come in; an ``image`` target (``fills[field]`` is :data:`IMAGE`) gets any op on the image,
    through its kernel (:func:`mmdata.augment.image.image_target`) (a composite's chosen children in child order, as they ran — not in the order of a
    log read back from JSON, whose keys are sorted as text: "10" before "2"). What the ``move_map`` of an op
    from outside mmdata returns is checked (:func:`check_moved`: an (H', W', K) numpy array of the target's
    dtype); ``key`` (the sample's) names the sample in that error."""
    if not maps or not params.get("applied"):
        return
    if step.children:
        for j, p in sorted((params.get("children") or {}).items(), key=lambda kv: int(kv[0])):
            move(step.children[int(j)], p, maps, fills, key)
        return
    op = step.op
    for name in maps:
        fill = fills.get(name, 0)
        if is_image(fill) and op.field == "image":
            from mmdata.augment.image import image_target

            maps[name] = image_target(op, maps[name], params)
        elif op.moves_pixels:
            before = maps[name]
            maps[name] = op.move_map(before, params, fill)
            if not op._builtin:  # mmdata's own move_maps are checked by their tests, as their kernels
                check_moved(op, name, before, maps[name], key)


def check_moved(op: Any, name: str, before: np.ndarray, out: Any, key: Any) -> None:
    """What ``op.move_map`` returned for the target ``name`` (``before``: what it was given) is an
    (H', W', K) numpy array of ``before``'s dtype and K, or an :class:`~mmdata.augment.contract.OpError` naming
    the recipe step, the op, the sample and the target, as ``mmdata.testing.check_op`` says it (the height
    and width are checked against the image's once the step has run: :func:`check_size`)."""
    from mmdata.augment import contract

    if not isinstance(out, np.ndarray):
        got = (f"a {type(out).__module__}.{type(out).__name__} {getattr(out, 'dtype', '')} "
               f"{tuple(getattr(out, 'shape', ()))}").replace("builtins.", "").replace("torch.Tensor torch.", "torch.Tensor ")
    elif out.ndim != 3 or out.shape[2] != before.shape[2] or out.dtype != before.dtype:
        got = f"a {out.dtype} array of shape {out.shape}"
    else:
        return
    want = f"a {before.dtype} numpy array (H', W', {before.shape[2]}): the image's new height and width, the target's own dtype and channels"
    raise contract.fail(op, key, f"target {name!r}: move_map of a {before.dtype} target of shape {before.shape} "
                                 f"returned {got}; expected {want}")


def check_size(step: Any, maps: Mapping[str, np.ndarray], hw: Sequence[int], key: Any,
               params: Mapping[str, Any] | None = None) -> None:
    """After ``step`` ran with ``params`` (and moved ``maps``), every target has the image's height and width
    ``hw``, or an :class:`~mmdata.augment.contract.OpError` naming the step, the sample and the target: a
    ``move_map`` that crops or resizes otherwise than the kernel (or an op that changes the image's size without
    ``moves_pixels``) would leave a mask beside an image it no longer lines up with. Called for steps with an op
    from outside mmdata; in a composite (``one_of``, ``some_of``) the error names the child from outside
    mmdata that ran (the ones that ran, if several did)."""
    from mmdata.augment import contract

    hw = tuple(int(v) for v in hw)
    for name, arr in maps.items():
        if tuple(arr.shape[:2]) == hw:
            continue
        want = (*hw, *arr.shape[2:])
        ran = _ran_foreign(step, params) if step.children and params is not None else []
        if len(ran) == 1:  # the child whose move_map (or kernel) is wrong, named as its own errors name it
            step = ran[0]
        if changes(step, {}, ()):  # the step moved the targets: its move_map disagrees with its kernel
            problem = (f"target {name!r}: move_map returned shape {tuple(arr.shape)}; expected {want} (the image is "
                       f"{hw[0]}x{hw[1]} after this step): move the target as the kernel moves the image")
        else:
            problem = (f"target {name!r} is {arr.shape[0]}x{arr.shape[1]} after this step, the image {hw[0]}x{hw[1]}: "
                       "an op that changes the image's size or moves its pixels sets moves_pixels = True and "
                       "implements move_map(arr, params, fill), so that the recipe's targets follow it")
        if len(ran) > 1:
            problem += f" (its ops from outside mmdata that ran: {', '.join(contract.describe(st.op) for st in ran)})"
        raise contract.fail(step.op, key, problem)


def _ran_foreign(step: Any, params: Mapping[str, Any]) -> list[Any]:
    """The steps of ops from outside mmdata among ``step``'s children (at any depth) that ``params`` applied."""
    out: list[Any] = []
    for j, p in sorted((params.get("children") or {}).items(), key=lambda kv: int(kv[0])):
        child = step.children[int(j)]
        if not p.get("applied"):
            continue
        if child.children:
            out += _ran_foreign(child, p)
        elif not child.op._builtin:
            out.append(child)
    return out


def changes(step: Any, fills: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Whether :func:`move` can change any of the targets ``names`` for ``step`` (or a child of it): a step
    that moves the image's pixels, or, with an ``image`` target among them, any op on the image (a batched
    run moves the targets only after such steps)."""
    images = any(is_image(fills.get(n, 0)) for n in names)
    def hit(st: Any) -> bool:
        return st.op.moves_pixels or (images and st.op.field == "image") or any(hit(c) for c in st.children)
    return hit(step)


def check_ops(steps: Sequence[Any], targets: Mapping[str, Any]) -> None:
    """Refuse, when a recipe with targets loads, an op that moves the image's pixels but cannot move a target:
    a batch op that blends two images (no single map to give), or an op without ``move_map``."""
    from mmdata.augment.base import Op
    from mmdata.augment.mix import BatchOp

    names = ", ".join(targets)
    # an image target runs an image op's own kernel (move_map is for the others: masks, and sample-level ops)
    masks = [n for n, spec in targets.items() if not is_image(fill_of(spec))] if isinstance(targets, Mapping) else targets
    for st in steps:
        op = st.op
        if op.moves_pixels and isinstance(op, BatchOp):
            frames = [n for n in targets if n not in masks] if isinstance(targets, Mapping) else []
            why = []
            if masks:
                why.append(f"{', '.join(masks)}: a label map has no mix of two labels")
            if frames:  # QA36: the reason given was the masks' for frames too
                why.append(f"{', '.join(frames)}: {op.name} does not mix image targets (a clip's other frames) "
                           "yet — mix them in your own batch transform with the batch's mix_partner rows and mix_lam")
            raise RecipeError(f"{op.where}: {op.name} blends two samples' images; the targets ({names}) cannot "
                              f"follow it ({'; '.join(why) or 'a label map has no mix of two labels'}): remove the op "
                              "or the targets")
        if (op.moves_pixels and not st.children and type(op).move_map is Op.move_map
                and (masks or op.field != "image")):
            raise RecipeError(f"{op.where}: {op.name} moves the image's pixels but has no move_map, so the targets "
                              f"({names}) cannot follow it; implement move_map(arr, params, fill) on {type(op).__qualname__} "
                              "(docs/extending.md) or remove the targets")
        check_ops(st.children, targets)


__all__ = ["KINDS", "IMAGE", "ImageFill", "is_image", "validate_targets", "fill_of", "as_hwk", "from_hwk", "check_target", "nearest", "move", "check_moved", "check_size", "changes", "check_ops"]
