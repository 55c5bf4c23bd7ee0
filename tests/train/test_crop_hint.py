"""QA: an arm whose ``random_crop`` is larger than the trainer's input (``size [500, 500]`` on a derived
32x32) failed every seed with the hint "resize first (e.g. {op: resize...} in normalize.image)", although
the trainer already resizes every image to its input size: the real fix is a smaller crop (or a larger
``--image-size``). The trainer's error now names its input size and both fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.config import derive_inputs

ONE = {"epochs": 1, "batch_size": 16, "threads": 1, "eval_robustness": False, "modalities": ["image"]}
CROP = {"image": [{"op": "random_crop", "size": [500, 500]}]}


def test_a_crop_larger_than_the_derived_input_names_it_and_both_fixes(messy: Path) -> None:
    h, w = derive_inputs(messy, ["image"]).image_size
    with pytest.raises(MMDataError) as err:
        train(messy, recipe=CROP, **ONE)
    msg = str(err.value)
    assert "random_crop size [500, 500]" in msg
    assert f"brings every image to {h}x{w}" in msg and f"at most [{h}, {w}]" in msg and "--image-size" in msg
    assert "resize first" not in msg


def test_a_given_image_size_is_named_as_given(messy: Path) -> None:
    with pytest.raises(MMDataError, match=r"brings every image to 40x40 \(image_size \(--image-size\), given\)"):
        train(messy, recipe=CROP, image_size=40, **ONE)
