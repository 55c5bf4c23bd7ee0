"""QA36 last read: a caller's own DecompressionBombWarning filter survives mmdata's decode, the arrays' shape-mix
warning is said again for a dataset opened after it."""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from mmdata import codecs, types


def test_a_callers_bomb_filter_survives_a_decode() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        mine = warnings.filters[0]
        codecs.decode_image(buf.getvalue(), "png")
        assert warnings.filters[0] == mine and len([f for f in warnings.filters if f == mine]) == 1


def test_the_shape_mix_warning_is_said_again_after_a_reset() -> None:
    from mmdata.augment.loader import PaddingWarning
    from mmdata.types import Sample, collate

    batch = [Sample("a", {"x": np.ones((5, 3), "f4")}), Sample("b", {"x": np.ones((3, 4), "f4")})]
    said = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            types.reset_shape_warnings()  # what opening a dataset does
            collate(batch)
            collate(batch)  # the same dataset: once
            said.append(sum(issubclass(w.category, PaddingWarning) for w in caught))
    assert said == [1, 2], said
