"""QA round 30, kernels #2: ``random_resized_crop`` with an allowed extreme ``ratio`` (e.g. [50, 100] on a
6x12 image) crashed in albumentations' ``x_min < x_max`` check, because the centre-crop fallback rounded
the crop's height (or width) to 0. Every valid recipe on every valid image must give an image of ``size``."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample, collate


def _image(c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _check(step: dict, images: list[torch.Tensor]) -> None:
    rec = load_recipe({"seed": 0, "image": [step]})
    h, w = step["size"]
    samples = [Sample(f"s{i}", {"image": x}) for i, x in enumerate(images)]
    per = [rec.apply_sample(s, 0) for s in samples]
    batched = rec.apply_batched(collate(samples), 0)
    assert batched["image"].shape == (len(images), images[0].shape[0], h, w)
    for i, out in enumerate(per):
        assert out["image"].shape == (images[i].shape[0], h, w), (step, tuple(images[i].shape))
        # within the op's documented 2 uint8 levels of the per-sample oracle
        assert (out["image"].int() - batched["image"][i].int()).abs().max() <= 2


def test_report_case_extreme_wide_ratio_on_a_wide_image() -> None:
    _check({"op": "random_resized_crop", "size": [8, 8], "ratio": [50, 100]}, [_image(3, 6, 12)])


def test_extreme_narrow_ratio_on_a_tall_image() -> None:
    _check({"op": "random_resized_crop", "size": [5, 3], "ratio": [0.01, 0.02]}, [_image(1, 12, 6), _image(1, 12, 6, 1)])


ratios = st.floats(0.01, 100.0, allow_nan=False)
scales = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(r=st.tuples(ratios, ratios), s=st.tuples(scales, scales), size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       dims=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=3),
       c=st.sampled_from([1, 3, 4]), seed=st.integers(0, 2**31))
def test_fuzz_every_valid_recipe_gives_size(r: tuple, s: tuple, size: tuple, dims: list, c: int, seed: int) -> None:
    lo_s, hi_s = sorted(s)
    if hi_s <= 0:  # refused at load_recipe: the upper bound of scale must be > 0
        hi_s = 1.0
    step = {"op": "random_resized_crop", "size": list(size), "ratio": sorted(r), "scale": [lo_s, hi_s]}
    images = [_image(c, h, w, seed + i) for i, (h, w) in enumerate(dims)]
    rec = load_recipe({"seed": seed, "image": [step]})
    for i, x in enumerate(images):
        assert rec.apply_sample(Sample(f"k{i}", {"image": x}), 0)["image"].shape == (c, *size)
    _check(step, images)
