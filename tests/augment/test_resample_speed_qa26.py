"""Resampling as polyphase matrix products in blocks (QA26 B-1: 48 -> 16 kHz of a 10-minute stereo clip
took 16.6 s and 1.3 GB above its 220 MB input, through a one-output-channel strided ``conv1d`` and a zero
row added to dodge oneDNN). The speed and memory are measured by ``benchmarks/bench_resample.py``
(figures in benchmarks/RESULTS.md); these tests hold what must not move: the filter's figures, agreement
with the per-output filter (the oracle), batched vs per-sample, and a clip's head giving its first outputs
bit for bit across the block seams."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmdata.augment import audio as A

RATIOS = [(48000, 16000), (44100, 16000), (8000, 16000), (16000, 48000), (22050, 16000), (16000, 8000),
          (90, 100), (110, 100), (96000, 16000)]


def _level_db(orig: int, new: int, hz: float) -> float:
    """Level (dB re the input's) of a ``hz`` tone resampled ``orig`` -> ``new`` where it lands (its alias
    ``new - hz`` above the new Nyquist; an image of an upsampled tone: ``orig - hz``, see the callers)."""
    x = torch.from_numpy(np.sin(2 * np.pi * hz * np.arange(2 * orig) / orig).astype(np.float32))[None]
    y = A.resample(x, orig, new)[0].double().numpy()[new // 4: -new // 4]
    w = np.kaiser(len(y), 20)
    spec = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    at = hz if hz < new / 2 else new - hz
    i = int(np.argmin(np.abs(np.fft.rfftfreq(len(y), 1 / new) - at)))
    return float(20 * np.log10(spec[i - 3: i + 4].max() + 1e-300))


def _image_db(orig: int, new: int, hz: float) -> float:
    """Level of the image at ``orig - hz`` that upsampling a ``hz`` tone must not create."""
    x = torch.from_numpy(np.sin(2 * np.pi * hz * np.arange(2 * orig) / orig).astype(np.float32))[None]
    y = A.resample(x, orig, new)[0].double().numpy()[new // 4: -new // 4]
    w = np.kaiser(len(y), 20)
    spec = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    i = int(np.argmin(np.abs(np.fft.rfftfreq(len(y), 1 / new) - (orig - hz))))
    return float(20 * np.log10(spec[i - 3: i + 4].max() + 1e-300))


@pytest.mark.parametrize("orig,new", [(48000, 16000), (44100, 16000), (96000, 16000), (22050, 16000)])
def test_downsampling_keeps_passband_flat_and_stops_aliases(orig: int, new: int) -> None:
    """The figures QA measured before the change: passband within 0.5 dB up to 7 kHz (0.875 x the new
    Nyquist), aliases of 8.5 kHz at or below -70 dB (-79 measured) and of 9 kHz and up below -130 dB."""
    passband = [_level_db(orig, new, hz) for hz in (100, 1000, 3000, 5000, 7000)]
    assert max(abs(v) for v in passband) <= 0.5, passband
    assert _level_db(orig, new, 8500) <= -70
    assert all(_level_db(orig, new, hz) < -130 for hz in (9000, 10000)) or orig == 22050  # 22050: 11 kHz top


@pytest.mark.parametrize("orig,new", [(8000, 16000), (16000, 48000)])
def test_upsampling_keeps_passband_flat_and_leaves_no_images(orig: int, new: int) -> None:
    top = 0.875 * orig / 2
    passband = [_level_db(orig, new, hz) for hz in (100, 1000, top)]
    assert max(abs(v) for v in passband) <= 0.5, passband
    assert _image_db(orig, new, 0.8 * orig / 2) <= -70
    assert _image_db(orig, new, 0.5 * orig / 2) <= -120


@pytest.mark.parametrize("orig,new", RATIOS)
def test_blocks_agree_with_the_per_output_filter(orig: int, new: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block products are the polyphase filter that ``_resample_direct`` evaluates at each output
    (the oracle): same samples to float precision, on clips long enough for several blocks, and with
    blocks so small that rows are split and the block size cap is met."""
    g = math.gcd(orig, new)
    x = torch.randn(3, 2, 3 * orig // g * 1000 + 17, generator=torch.Generator().manual_seed(3)) * 0.3
    want = A._resample_direct(x, orig // g, new // g)
    got = A.resample(x, orig, new)
    assert got.shape == want.shape == (3, 2, math.ceil(x.shape[-1] * new / orig))
    assert (got - want).abs().max() < 2e-6
    monkeypatch.setattr(A, "BLOCK_OUTPUTS", 7)
    monkeypatch.setattr(A, "BLOCK_FLOATS", 3 * A._block_weights(orig // g, new // g)[0].shape[0] + 1)
    small = A.resample(x, orig, new)
    assert (small - want).abs().max() < 2e-6


@pytest.mark.parametrize("orig,new", RATIOS)
def test_a_head_gives_the_first_outputs_bit_for_bit_across_block_seams(orig: int, new: int) -> None:
    """What the reader's head-only decode relies on (``resample_inputs``): the first ``m`` outputs from
    the inputs they need equal the whole clip's, bit for bit — ``m`` at, before and after block seams
    (the first blocks hold 4096, 8192, ... outputs per row, rounded up to whole windows)."""
    x = torch.randn(2, 40000 * orig // new + 500, generator=torch.Generator().manual_seed(5)) * 0.3
    full = A.resample(x, orig, new)
    for m in (1, 4095, 4096, 4097, 4200, 12288, 12400, 28700, 39000):
        need = A.resample_inputs(m, orig, new)
        assert torch.equal(A.resample(x[..., :need], orig, new)[..., :m], full[..., :m]), m


def test_batched_equals_per_sample_within_the_parity_tolerance() -> None:
    from tests.augment.test_audio_fidelity import assert_resample_batched_matches

    assert_resample_batched_matches(48000, [48000 + 30011 * i for i in range(4)])


def test_deterministic_and_input_untouched() -> None:
    x = torch.randn(2, 100000, generator=torch.Generator().manual_seed(2))
    before = x.clone()
    a, b = A.resample(x, 48000, 16000), A.resample(x, 48000, 16000)
    assert torch.equal(a, b) and torch.equal(x, before)
    assert torch.equal(A.resample(x[:, ::2], 48000, 16000), A.resample(x[:, ::2].contiguous(), 48000, 16000))


def test_one_row_and_many_rows_agree() -> None:
    """The old kernel added a zero row to a lone row (oneDNN convolved one row in length-dependent
    blocks); the products need no such row: one row alone and in a stack give the same samples."""
    x = torch.randn(5, 30000, generator=torch.Generator().manual_seed(4))
    stacked = A.resample(x, 44100, 16000)
    for i in range(5):
        assert torch.allclose(A.resample(x[i], 44100, 16000), stacked[i], atol=1e-6)


def test_block_weights_stay_small() -> None:
    """The cached weight table of every ratio the polyphase path takes stays within PHASE_TABLE_MAX."""
    for orig, new in RATIOS + [(384000, 1000), (1000, 384000), (16000, 44100)]:
        g = math.gcd(orig, new)
        o, n = orig // g, new // g
        if n * (o + 2 * A._reach(o, n)[1]) > A.POLYPHASE_MAX:
            continue
        w, group, pad = A._block_weights(o, n)
        assert w.numel() <= max(A.PHASE_TABLE_MAX, n * (o + 2 * pad)), (orig, new, w.shape)
