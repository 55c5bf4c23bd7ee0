"""QA36 (a video user): mixup with image targets (a clip's other frames) was refused for the reason that fits
label maps only ("a label map has no mix of two labels"); the error now gives each kind of target its reason."""
from __future__ import annotations

import pytest

from mmdata import load_recipe
from mmdata.augment.recipe import RecipeError


@pytest.mark.parametrize("op", ["mixup", "mixgen"])
def test_image_targets_are_refused_with_their_own_reason(op: str) -> None:
    with pytest.raises(RecipeError) as e:
        load_recipe({"targets": {"frame1.png": "image"}, "batch": [{"op": op}]})
    msg = str(e.value)
    assert f"batch[0]: {op} blends two samples' images" in msg
    assert "frame1.png" in msg and "does not mix image targets" in msg and "mix_partner" in msg
    assert "label map" not in msg


def test_masks_and_frames_each_get_their_reason() -> None:
    with pytest.raises(RecipeError) as e:
        load_recipe({"targets": {"seg.png": "mask", "frame1.png": "image"}, "batch": [{"op": "mixup"}]})
    msg = str(e.value)
    assert "seg.png: a label map has no mix of two labels" in msg
    assert "frame1.png: mixup does not mix image targets" in msg
