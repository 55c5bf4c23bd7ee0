"""An ``image`` target in another mode than the image is refused, naming the sample (review27 G3-1).

Before, a grey frame beside an RGB image stayed grey through ``to_rgb`` (the target reuses the image's params,
and on an RGB image ``to_rgb`` draws a no-op), so normalize returned a (1, H, W) frame that collate then
zero-padded to RGB: grey in R, zeros in G and B.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mmdata.augment.recipe import load_recipe, normalize_spec
from mmdata.errors import ShardError
from mmdata.types import Sample, collate


def _png(mode: str, seed: int, h: int = 16, w: int = 12) -> torch.Tensor:
    """A real PNG of ``mode`` ("L" or "RGB") encoded and decoded back, as a (C, H, W) uint8 tensor."""
    c = 1 if mode == "L" else 3
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if c == 1 else arr, mode).save(buf, format="PNG")
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    back = back[..., None] if back.ndim == 2 else back
    return torch.from_numpy(np.ascontiguousarray(back.transpose(2, 0, 1)))


RECIPE = {"targets": {"f.png": "image"}, "normalize": normalize_spec(channels=3, image_size=8)}


def test_a_grey_frame_beside_an_rgb_image_is_refused_per_sample() -> None:
    recipe = load_recipe(RECIPE)
    sample = Sample("clip7", {"image": _png("RGB", 0), "f.png": _png("L", 1)})
    with pytest.raises(ShardError, match=r"clip7.*f\.png.*1 channel.*the image 3.*one mode"):
        recipe.normalize(sample)


def test_frames_in_the_images_mode_still_follow_it() -> None:
    recipe = load_recipe(RECIPE)
    image = _png("RGB", 0)
    got = recipe.normalize(Sample("clip1", {"image": image, "f.png": image.clone()}))
    assert tuple(got["f.png"].shape) == (3, 8, 8) and torch.equal(got["f.png"], got["image"])
    grey = load_recipe({"targets": {"f.png": "image"}, "normalize": normalize_spec(channels=1, image_size=8)})
    g = _png("L", 2)
    out = grey.normalize(Sample("clip2", {"image": g, "f.png": g.clone()}))
    assert tuple(out["f.png"].shape) == (1, 8, 8) and torch.equal(out["f.png"], out["image"])


def test_a_grey_frame_beside_an_rgb_image_is_refused_in_a_batch() -> None:
    recipe = load_recipe({"targets": {"f.png": "image"}, "image": [{"op": "hflip", "p": 1.0}]})
    # collate itself refuses the frame now, as it refuses a grey image among RGB ones (QA36 video #2)
    with pytest.raises(ValueError, match=r"cannot collate 'f\.png': channel counts differ \(1 channel: sample \['clip7'\].*one mode"):
        recipe.apply_batched(collate([Sample("clip7", {"image": _png("RGB", 0), "f.png": _png("L", 1)}),
                                      Sample("clip8", {"image": _png("RGB", 2), "f.png": _png("RGB", 3)})]))
