"""Audio ops on 0-frame clips (speech QA 2026-12: a multilingual corpus had empty recordings).

``resample`` and ``speed`` raised torch's bare ``RuntimeError: cannot reshape tensor of 0 elements``
(``reshape(-1, 1, 0)`` cannot infer the -1), and so did ``time_mask``'s vectorised kernel on a batch of
0-frame clips. A 0-frame clip is a valid clip: every op gives a 0-frame (or otherwise valid) clip, and the
batched kernel agrees with the per-sample one."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mmdata.augment.base import build_op
from mmdata.augment.recipe import load_recipe
from mmdata.testing.ops import check_op
from mmdata.types import Sample, collate

OPS: list[dict[str, Any]] = [
    {"op": "resample", "rate": 16000},
    {"op": "resample", "rate": 4000},
    {"op": "resample", "rate": 22254},  # the per-output filter (no polyphase table)
    {"op": "speed", "factor": [0.5, 2.0]},
    {"op": "to_mono"},
    {"op": "pad_trim", "align": "center"},
    {"op": "pad", "mode": "random"},
    {"op": "random_crop", "seconds": 0.01},
    {"op": "logmel"},
    {"op": "time_mask"},
    {"op": "time_mask", "target": "spec"},
    {"op": "freq_mask"},
    {"op": "time_shift", "rollover": False},
    {"op": "gain"},
    {"op": "noise"},
    {"op": "polarity"},
]


def _clips(mixed: bool) -> list[Sample]:
    """Three stereo 8 kHz samples of 0 frames (the middle one 300 frames when ``mixed``)."""
    return [Sample(f"k{i}", {"audio": torch.randn(2, 300) if mixed and i == 1 else torch.zeros(2, 0)}, sample_rate=8000)
            for i in range(3)]


@pytest.mark.parametrize("mixed", [False, True], ids=["all-empty", "mixed"])
@pytest.mark.parametrize("cfg", OPS, ids=lambda c: "-".join(str(v).replace(" ", "") for v in c.values()))
def test_audio_ops_take_zero_frame_clips(cfg: dict[str, Any], mixed: bool) -> None:
    op = build_op("audio", {**cfg, "p": 1.0}, "audio[0]")
    check_op(op, _clips(mixed), require_applied=False)  # both kernels, vectorised ones forced on the CPU too


def test_resample_of_an_empty_clip_is_an_empty_clip_at_the_new_rate() -> None:
    rec = load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 16000}]}})
    out = rec.normalize(Sample("k", {"audio": torch.zeros(2, 0)}, sample_rate=8000))
    assert out["audio"].shape == (2, 0) and out["audio"].dtype == torch.float32 and out.sample_rate == 16000
    batch = rec.normalize_batched(collate(_clips(True)))
    assert batch.sample_rate == 16000 and batch.lengths["audio"].tolist() == [0, 600, 0]
    assert batch["audio"].shape == (3, 2, 600) and not batch["audio"][[0, 2]].any()
