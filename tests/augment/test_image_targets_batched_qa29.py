"""Image targets (``targets: {frame1.png: image}``) run the image's own kernel in a batched run (QA29 augsem #2):
the frames went through the per-sample CPU kernel row by row while the image went through the batched torch
kernel, so on the device path a twin of the image came out 1 level off (brightness_contrast,
random_resized_crop) and, on CUDA, ``gaussian_noise`` drew another noise field for it."""

from __future__ import annotations

import warnings

import pytest
import torch

from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample, collate, uncollate

#: photometric, interpolating, rotating, a composite; and a sample op that moves pixels
STEPS = [{"op": "brightness_contrast", "p": 1.0}, {"op": "random_resized_crop", "size": [20, 24]},
         {"op": "rotate", "limit": 25.0, "p": 0.7},
         {"op": "one_of", "ops": [{"op": "gaussian_noise", "std": 0.1}, {"op": "cutout"}]}]


def _samples(ragged: bool) -> list[Sample]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(5):
        h, w = (31 + 3 * i, 45 - 2 * i) if ragged else (37, 53)
        img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        fields = {"image": img, "label": i % 2}
        if i != 3:  # a row without its frame
            fields["frame1.png"] = img.clone()
        out.append(Sample(f"k{i}", fields))
    return out


@pytest.mark.parametrize("vectorised", [True, False])
@pytest.mark.parametrize("ragged", [False, True])
def test_a_frame_identical_to_the_image_stays_identical_batched(monkeypatch: pytest.MonkeyPatch, vectorised: bool,
                                                                ragged: bool) -> None:
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    recipe = load_recipe({"seed": 3, "targets": {"frame1.png": "image"}, "image": STEPS,
                          "sample": [{"op": "consistent_hflip", "p": 0.5}]})
    samples = _samples(ragged)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consistent_hflip on samples without text
        got = uncollate(recipe.apply_batched(collate(samples)))
    for s, o in zip(samples, got):
        if "frame1.png" not in s:
            assert "frame1.png" not in o.fields or o["frame1.png"] is None, s.key
            continue
        assert o["frame1.png"].shape == o["image"].shape and torch.equal(o["frame1.png"], o["image"]), s.key
        want = recipe.apply_sample(s)["image"]  # and within the image's own tolerance of the per-sample run
        assert want.shape == o["image"].shape and (want.int() - o["image"].int()).abs().max() <= 2, s.key


def test_the_vectorised_kernels_give_a_frame_the_images_draw_not_its_own() -> None:
    """One op at a time, vectorised: the twin frame equals the image bit for bit (was 1 level off)."""
    import mmdata.augment.batching as batching

    old, batching.VECTORISED_ON_CPU = batching.VECTORISED_ON_CPU, True
    try:
        for step in ({"op": "brightness_contrast"}, {"op": "random_resized_crop", "size": 24}, {"op": "gaussian_noise"}):
            recipe = load_recipe({"seed": 3, "targets": {"frame1.png": "image"}, "image": [step]})
            rows = uncollate(recipe.apply_batched(collate(_samples(False))))
            assert all(torch.equal(r["image"], r["frame1.png"]) for r in rows if "frame1.png" in r.fields), step
    finally:
        batching.VECTORISED_ON_CPU = old
