"""QA38 review 4 #5 (a NaN spread over the preview's shrink filter) and the transcription flip note in preview."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from mmdata.augment.preview import _fit_pixels, preview
from tests.test_qa38_augops_copies import TRANSCRIPT, _pages_with_text


def test_a_few_nan_pixels_stay_a_few_in_the_shrunk_cell() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((300, 400, 3)).astype(np.float32)
    img[rng.random((300, 400)) < 0.001] = np.nan
    small = _fit_pixels(img, (30, 40))
    assert small.shape == (30, 40, 3) and small.dtype == np.float32
    assert np.isnan(small).mean() < 0.01  # was 0.97
    assert abs(float(np.nanmean(small)) - 0.5) < 0.02
    half = np.full((300, 400), np.nan, np.float32)
    half[:, :200] = 0.25
    shrunk = _fit_pixels(half, (30, 40))
    assert np.isnan(shrunk[:, 22:]).all() and np.allclose(shrunk[:, :18], 0.25, atol=1e-3)


@pytest.mark.parametrize("text, said", [(TRANSCRIPT, 1), ("seven", 0)])
def test_preview_warns_of_a_flip_beside_long_texts(tmp_path: Path, text: str, said: int) -> None:
    ds = _pages_with_text(tmp_path, text)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        preview(ds, {"image": [{"op": "hflip", "p": 0.5}]}, tmp_path / "p.png", n=2, variants=1)
    got = [str(w.message) for w in rec if "if the text is read from the image" in str(w.message)]
    assert len(got) == said
    if said:
        assert got[0].startswith("preview: recipe image[0] (image.hflip)") and "3 samples pair" in got[0]
