"""QA36 video #4: ``batch.lengths["image"]`` was (B, 2) [h, w] but a named image field's (``frame1.png``, an image
target) (B, 3) [C, h, w]: a padding mask built for the frames as for the image read the wrong columns. Every
image-kind field now has the image's (B, 2) layout; arrays keep their (B, ndim) shapes."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample, collate, uncollate


def _img(h: int, w: int, v: int) -> torch.Tensor:
    return torch.arange(3 * h * w, dtype=torch.int64).reshape(3, h, w).add(v).remainder(251).to(torch.uint8)


def _samples() -> list[Sample]:
    return [Sample("a", {"image": _img(6, 8, 0), "frame1.png": _img(6, 8, 1), "imu": np.zeros((5, 3), "f4")}),
            Sample("b", {"image": _img(4, 5, 2), "frame1.png": _img(4, 5, 3), "imu": np.zeros((7, 3), "f4")}),
            Sample("c", {"image": _img(4, 5, 4)})]


def test_named_image_lengths_are_height_and_width_like_the_images() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = collate(_samples())
    assert b.lengths["image"].tolist() == b.lengths["frame1.png"].tolist()[:2] + [[4, 5]]
    assert b.lengths["frame1.png"].tolist() == [[6, 8], [4, 5], [0, 0]]
    assert b.lengths["imu"].tolist() == [[5, 3], [7, 3], [0, 0]]  # arrays: whole shapes
    assert b.valid_shapes("frame1.png").tolist() == [[3, 6, 8], [3, 4, 5], [0, 0, 0]]
    back = uncollate(b)
    assert torch.equal(back[1]["frame1.png"], _img(4, 5, 3)) and "frame1.png" not in back[2]
    sub = b.select([1, 2])
    assert sub.lengths["frame1.png"].tolist() == [[4, 5], [0, 0]] and tuple(sub["frame1.png"].shape) == (2, 3, 4, 5)


def test_a_batched_recipe_moves_image_targets_of_several_sizes_as_per_sample() -> None:
    recipe = load_recipe({"seed": 0, "targets": {"frame1.png": "image"}, "image": [{"op": "hflip", "p": 1.0}]})
    samples = _samples()[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = recipe.apply_batched(collate(samples))
        per = [recipe.apply_sample(s) for s in samples]
    assert out.lengths["frame1.png"].tolist() == [[6, 8], [4, 5]]
    for i, s in enumerate(per):
        assert torch.equal(uncollate(out)[i]["frame1.png"], s["frame1.png"])
        assert torch.equal(s["frame1.png"], _img(*s["frame1.png"].shape[1:], 2 * i + 1).flip(-1))
