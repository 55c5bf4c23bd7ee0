"""An image target (a view moved with the image) in another colour mode than its image is refused; the advice
held for a grey view of a colour image only. With a grey image and a colour view it said ``to_rgb`` is a no-op on
the image (it is not, on a grey image) and told to ``convert('L')`` the colour view, though the recipe's
``to_rgb`` wants RGB (QA40 review reader #3). The advice now names both conversions and which one fits the
recipe, in both directions."""

from __future__ import annotations

import numpy as np
import pytest

from mmdata.augment.targets import check_target
from mmdata.errors import ShardError
from mmdata.augment.targets import IMAGE


def _refusal(image_c: int, view_c: int) -> str:
    image = np.zeros((image_c, 6, 8), np.uint8)
    view = np.zeros((view_c, 6, 8), np.uint8)
    with pytest.raises(ShardError) as err:
        check_target("view2.png", view, image, "q001", IMAGE)
    return str(err.value)


def test_grey_image_colour_view_advice_is_not_backwards() -> None:
    text = _refusal(1, 3)
    assert "'q001'" in text and "'view2.png'" in text and "3 channel(s) (RGB), the image 1 (L)" in text
    assert "no-op" not in text  # to_rgb on a grey image is no no-op
    # the fitting fix for a recipe with to_rgb: the image to RGB; the view to L only for to_gray
    assert "the image to RGB" in text and "'view2.png' to L" in text
    assert "RGB for to_rgb, L for to_gray" in text
    assert "shard again" in text and "out of the recipe's targets" in text


def test_colour_image_grey_view_advice_names_both_ways_too() -> None:
    text = _refusal(3, 1)
    assert "1 channel(s) (L), the image 3 (RGB)" in text
    assert "the image to L" in text and "'view2.png' to RGB" in text and "convert('RGB')" in text
    assert "RGB for to_rgb, L for to_gray" in text
