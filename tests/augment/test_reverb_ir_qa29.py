"""``reverb`` with impulse-response files whose energy lies outside the clip (QA29 augsem #1): an IR with a long
pre-delay used on a short clip gave FFT round-off scaled up to the clip's loudness (peaks over full scale), a
direct path at the clip's very end gave a few samples at 12.7x full scale, and a silent IR silenced the clip.

Review r3: the first fix aligned every IR on its peak, which changed every synthetic reverb (its peak lies in
the noise tail) and shifted every recorded IR with a pre-delay. Ordinary IRs now give what they gave before the
fix, bit for bit; only an IR whose sound misses the clip leaves it dry."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mmdata.augment import audio_env
from mmdata.augment.audio_env import convolve_ir, synthetic_ir
from mmdata.augment.base import build_op
from mmdata.types import Sample, collate

SR = 16000


def _tone(n: int, hz: float = 440.0, peak: float = 0.3) -> torch.Tensor:
    return (peak * torch.sin(2 * math.pi * hz * torch.arange(n, dtype=torch.float64) / SR)).float()[None]


def _before_qa29(x: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """convolve_ir as it was before QA29 (git show 6c7bb68^:mmdata/augment/audio_env.py), verbatim."""
    T = x.shape[-1]
    if T == 0:
        return x.clone()
    h = ir.to(device=x.device, dtype=torch.float64)
    n = T + h.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x.double(), size) * torch.fft.rfft(h, size), size)[..., :T]
    dry, wet = x.double().pow(2).mean().sqrt(), y.pow(2).mean().sqrt()
    y = y * (dry / wet) if float(wet) > 0 else y
    return y.to(x.dtype)


def _plain_numpy(x: torch.Tensor, h: torch.Tensor) -> np.ndarray:
    """The rule in plain numpy: convolve, cut to the clip, match the dry clip's loudness."""
    xs, hs = x.double().numpy(), h.double().numpy()
    y = np.stack([np.convolve(xs[c], hs[c % hs.shape[0]])[: xs.shape[-1]] for c in range(xs.shape[0])])
    return y * np.sqrt((xs ** 2).mean() / (y ** 2).mean())


def _room(pre: int, n: int = 4000, seed: int = 0) -> torch.Tensor:
    """A recorded room: ``pre`` samples of mic noise, a direct path of 1, a decaying tail."""
    g = torch.Generator().manual_seed(seed)
    tail = 0.3 * torch.randn(n, generator=g, dtype=torch.float64) * torch.exp(-6.9 * torch.arange(n) / n)
    h = torch.cat([1e-4 * torch.randn(pre, generator=g, dtype=torch.float64), tail])
    h[pre] = 1.0
    return h[None]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.8])
def test_a_synthetic_reverb_is_what_it_was_before_qa29(seed: int, rt60: float) -> None:
    """The synthetic IR's peak lies in its noise tail: aligning on it cut the direct path (review r3 R1)."""
    x = torch.randn(2, 4000, generator=torch.Generator().manual_seed(seed)) * 0.2 + _tone(4000)
    h = synthetic_ir(SR, rt60, seed)
    y = convolve_ir(x, h)
    assert torch.equal(y, _before_qa29(x, h))
    assert np.allclose(y.double().numpy(), _plain_numpy(x, h), atol=1e-5)


@pytest.mark.parametrize("pre", [0, 80, 1200])
def test_a_recorded_ir_keeps_its_pre_delay_as_before_qa29(pre: int) -> None:
    """As audiomentations' ApplyImpulseResponse (and torch-audiomentations by default): the clip is not shifted
    earlier by the room's propagation delay (review r3 R2)."""
    x, h = _tone(1600), _room(pre)
    y = convolve_ir(x, h)
    assert torch.equal(y, _before_qa29(x, h))
    assert np.allclose(y.double().numpy(), _plain_numpy(x, h), atol=1e-5)
    assert pre == 0 or float(y[0, :pre].abs().max()) < 1e-3  # (mic noise) until the direct path arrives


def test_the_op_through_both_kernels_is_what_it_was_before_qa29(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "irs").mkdir()
    sf.write(tmp_path / "irs" / "room.wav", _room(80)[0].numpy().astype(np.float32) * 0.9, SR)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(audio_env, "_CACHE", type(audio_env._CACHE)())
    rows = [Sample(f"k{i}", {"audio": _tone(2400 + 400 * i)}, sample_rate=SR) for i in range(2)]
    for spec in ({"op": "reverb"}, {"op": "reverb", "path": "irs"}):
        op = build_op("audio", spec, "audio[0]")
        ps = [op.sample_params(np.random.default_rng(i), s) for i, s in enumerate(rows)]
        irs = [op._load(p["file"], SR, 1) if "file" in p else synthetic_ir(SR, p["rt60"], p["seed"]) for p in ps]
        batch = op.apply_batch(collate(rows), [{"applied": True, **p} for p in ps])
        for i, (s, p, h) in enumerate(zip(rows, ps, irs)):
            want = _before_qa29(s["audio"], h)
            assert torch.equal(op.apply(s, {"applied": True, **p})["audio"], want)
            assert torch.equal(batch["audio"][i, :, : s["audio"].shape[-1]], want)


def test_the_gain_is_bounded() -> None:
    """A direct path at the clip's very end (QA29: 12.7x full scale) or a DC clip through a differentiator: the
    gain stops at REVERB_MAX_GAIN over the unit-energy IR."""
    h = torch.zeros(1, 2400, dtype=torch.float64)
    h[0, 1590] = 1.0
    y = convolve_ir(_tone(1600), h)
    assert float(y[0, :1590].abs().max()) < 1e-12 and float(y.abs().max()) <= 0.3 * audio_env.REVERB_MAX_GAIN + 1e-6
    dc, diff = torch.full((1, 4000), 0.5), torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    assert float(convolve_ir(dc, diff).abs().max()) <= 0.5 * audio_env.REVERB_MAX_GAIN + 1e-6


@pytest.fixture
def irs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "irs").mkdir()
    sf.write(tmp_path / "irs" / "zero_ir.wav", np.zeros(800, np.float32), SR)
    late = np.zeros(24000, np.float32)
    late[16000] = 1.0  # its direct path after 1 s
    sf.write(tmp_path / "irs" / "late_ir.wav", late, SR)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(audio_env, "_CACHE", type(audio_env._CACHE)())
    monkeypatch.setattr(audio_env, "_DRY_WARNED", set())
    return tmp_path / "irs"


@pytest.mark.parametrize("name, why", [("zero_ir.wav", "silent"), ("late_ir.wav", "past the end")])
def test_an_ir_that_misses_the_clip_leaves_it_unchanged_counted_and_warned_once(irs: Path, name: str,
                                                                                 why: str) -> None:
    """QA29: round-off blown up to a full-scale noise clip (late IR), or silence (silent IR)."""
    op = build_op("audio", {"op": "reverb", "path": "irs"}, "audio[0]")
    x = torch.randn(1, 9600, generator=torch.Generator().manual_seed(0)) * 0.3
    s = Sample("k", {"audio": x}, sample_rate=SR)
    p = {"applied": True, "file": name}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = op.apply(s, p)["audio"]
        batch = op.apply_batch(collate([s, s]), [p, p])
    assert torch.equal(y, x)
    assert torch.equal(batch["audio"][0], x) and torch.equal(batch["audio"][1], x)
    said = [str(w.message) for w in caught if name in str(w.message)]
    assert len(said) == 1 and "audio[0]" in said[0] and "unchanged" in said[0] and why in said[0], said
    assert op.left_dry == {name: 3}
    # a clip long enough to hear the late IR is reverberated (delayed), as before QA29
    long = Sample("k", {"audio": _tone(20000)}, sample_rate=SR)
    out = op.apply(long, p)["audio"]
    if name == "late_ir.wav":
        assert torch.equal(out, _before_qa29(long["audio"], op._load(name, SR, 1)))
