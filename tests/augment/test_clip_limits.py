"""Audio ops whose parameters are each in range can combine into a clip no decoder would hold:
``resample`` to 384 kHz then ``pad_trim`` to 10 h asked torch for 55 GB per clip (a QA pass on hostile
recipes). A clip is bounded by ``mmdata.codecs.MAX_AUDIO_SAMPLES``: refused when the recipe loads where
the rate is known there, else by the op on the clip, before anything is allocated."""

from __future__ import annotations

import pytest
import torch

from mmdata.augment.recipe import load_recipe
from mmdata.codecs import MAX_AUDIO_SAMPLES
from mmdata.errors import RecipeError
from mmdata.types import Sample


def _clip(frames: int, rate: int, channels: int = 1) -> Sample:
    return Sample("k", {"audio": torch.zeros(channels, frames)}, sample_rate=rate)


def test_a_pad_past_the_clip_limit_after_a_resample_is_refused_when_the_recipe_loads() -> None:
    with pytest.raises(RecipeError, match=rf"normalize\.audio\[1\]\.seconds: 36000 s at the 384000 Hz .* over the "
                                          rf"{MAX_AUDIO_SAMPLES:,} a clip may hold"):
        load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 384000}, {"op": "pad_trim", "seconds": 36000}]}})
    for op in ("pad", "pad_trim"):  # the rate carries into the sample stage
        with pytest.raises(RecipeError, match=r"^audio\[0\]\.seconds"):
            load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 384000}]},
                         "audio": [{"op": op, "seconds": 36000}]})
    load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 30000}]}})  # 480 M


def test_ops_refuse_a_clip_past_the_limit_before_allocating_it() -> None:
    """Without a resample in the recipe the rate is the data's: the op checks each clip (16 kHz stereo,
    10 h: 576 M samples per channel)."""
    pad = load_recipe({"normalize": {"audio": [{"op": "pad_trim", "seconds": 36000}]}})
    with pytest.raises(RecipeError, match=r"normalize\.audio\[0\]: the clip would become 576,000,000 samples x 2 channel"):
        pad.normalize(_clip(100, 16000, channels=2))
    assert pad.normalize(_clip(100, 8000))["audio"].shape == (1, 288_000_000)  # within the limit: padded
    up = load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 384000}]}})
    long = _clip(MAX_AUDIO_SAMPLES // 384 + 1000, 1000)  # x384 passes the limit
    with pytest.raises(RecipeError, match=r"normalize\.audio\[0\]: the clip would become .* at 384000 Hz"):
        up.normalize(long)
    slow = load_recipe({"audio": [{"op": "speed", "factor": [0.25, 0.25]}]})
    with pytest.raises(RecipeError, match=r"audio\[0\]: the clip would become"):
        slow.apply_sample(_clip(MAX_AUDIO_SAMPLES // 4 + 1000, 16000))
