"""``reverb`` with impulse-response files whose energy lies outside the clip (QA29 augsem #1): an IR with a long
pre-delay used on a short clip gave FFT round-off scaled up to the clip's loudness (peaks over full scale), a
direct path at the clip's very end gave a few samples at 12.7x full scale, and a silent IR silenced the clip."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mmdata.augment import audio_env
from mmdata.augment.audio_env import convolve_ir
from mmdata.augment.base import build_op
from mmdata.types import Sample, collate

SR = 16000


def _tone(n: int, hz: float = 440.0, peak: float = 0.3) -> torch.Tensor:
    return (peak * torch.sin(2 * math.pi * hz * torch.arange(n, dtype=torch.float64) / SR)).float()[None]


@pytest.mark.parametrize("delay", [1590, 16000])
def test_an_ir_whose_direct_path_lies_past_the_clip_is_aligned_on_it(delay: int) -> None:
    """A pure delay is aligned on its direct path: the clip comes out as it went in, not as noise."""
    x = _tone(1600 if delay < 1600 else 9600)
    h = torch.zeros(1, delay + 800, dtype=torch.float64)
    h[0, delay] = 1.0
    y = convolve_ir(x, h)
    assert torch.allclose(y, x, atol=1e-6)


def test_the_gain_is_bounded_and_the_clip_keeps_its_own_time() -> None:
    """A pre-delay then a room: the clip's content stays in its time; no IR makes a quiet clip louder than
    REVERB_MAX_GAIN times what its unit-energy IR gives."""
    x = _tone(1600)
    h = torch.zeros(1, 3000, dtype=torch.float64)
    h[0, 1200], h[0, 1300], h[0, 1700] = 1.0, 0.5, -0.3
    y = convolve_ir(x, h).double()
    ref = np.convolve(x[0].double().numpy(), np.array([1.0] + [0.0] * 99 + [0.5] + [0.0] * 399 + [-0.3]))[:1600]
    ref = ref * float(x.double().pow(2).mean().sqrt()) / np.sqrt((ref ** 2).mean())
    assert np.allclose(y[0].numpy(), ref, atol=1e-5)
    # a DC clip through a differentiator: the wet clip is one sample; the gain stops at the bound
    dc, diff = torch.full((1, 4000), 0.5), torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    out = convolve_ir(dc, diff)
    assert float(out.abs().max()) <= 0.5 * audio_env.REVERB_MAX_GAIN + 1e-6


@pytest.fixture
def irs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "irs").mkdir()
    sf.write(tmp_path / "irs" / "zero_ir.wav", np.zeros(800, np.float32), SR)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(audio_env, "_CACHE", type(audio_env._CACHE)())
    monkeypatch.setattr(audio_env, "_DRY_WARNED", set())
    return tmp_path / "irs"


def test_a_silent_ir_leaves_the_clip_unchanged_counted_and_warned_once(irs: Path) -> None:
    op = build_op("audio", {"op": "reverb", "path": "irs"}, "audio[0]")
    x = torch.randn(1, 3200, generator=torch.Generator().manual_seed(0)) * 0.3
    s = Sample("k", {"audio": x}, sample_rate=SR)
    p = {"applied": True, "file": "zero_ir.wav"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = op.apply(s, p)["audio"]
        batch = op.apply_batch(collate([s, s]), [p, p])
    assert torch.equal(y, x)
    assert torch.equal(batch["audio"][0], x) and torch.equal(batch["audio"][1], x)
    said = [str(w.message) for w in caught if "zero_ir.wav" in str(w.message)]
    assert len(said) == 1 and "audio[0]" in said[0] and "unchanged" in said[0], said
    assert op.left_dry == {"zero_ir.wav": 3}
