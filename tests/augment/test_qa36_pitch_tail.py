"""QA36 (a music-information-retrieval researcher): ``pitch_shift`` put a spike of up to 1.9x the clip's peak
into its last few milliseconds (a 0.5 sine at 220 Hz, 48 kHz, shifted 3 semitones ended at 0.77): the phase
vocoder's STFT mirrored the clip's end, a tone running backwards whose phase it cannot advance. Zero-padded ends
(librosa's stft) fade the last frame instead."""
from __future__ import annotations

import math

import pytest
import torch

from mmdata.augment import audio_env


def _sine(hz: float, sr: int, n: int, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * hz * t)).float()[None]


@pytest.mark.parametrize(("sr", "hz", "seconds"), [(48000, 220.0, 2.5), (16000, 440.0, 1.0), (44100, 1000.0, 1.0)])
@pytest.mark.parametrize("semitones", [-3.0, -2.16, -2.0, 3.0, 7.0])
def test_a_shifted_tone_keeps_its_level_to_both_ends(sr: int, hz: float, seconds: float, semitones: float) -> None:
    x = _sine(hz, sr, int(sr * seconds))
    y = audio_env.pitch_shift(x, sr, semitones)
    n = audio_env._stft_size(sr)
    assert y.shape == x.shape
    body = float(y[0, n:-n].abs().max())
    assert abs(body / 0.5 - 1) < 0.02  # the middle holds the tone's level
    # the ends: no spike over the input's peak (the last n_fft samples reached 0.77 for 0.5 before; the resample
    # that follows the stretch may ring a few % on the very last samples)
    assert float(y[0, -n:].abs().max()) < 0.5 * 1.1, "a spike at the clip's end"
    assert float(y[0, :n].abs().max()) < 0.5 * 1.1, "a spike at the clip's start"


@pytest.mark.parametrize("length", [30000, 47000, 60000, 96000])
def test_a_stretched_tone_has_no_spike_at_its_end(length: int) -> None:
    x = _sine(220.0, 48000, 48000)
    z = audio_env.time_stretch(x, 48000, length)
    assert z.shape == (1, length)
    assert float(z.abs().max()) < 0.5 * 1.1
    assert abs(float(z[0, 4096:-4096].abs().max()) / 0.5 - 1) < 0.03


def test_stereo_channels_are_shifted_alike_and_keep_their_own_levels() -> None:
    x = torch.cat([_sine(220.0, 48000, 96000, 0.9), _sine(330.0, 48000, 96000, 0.3)])
    y = audio_env.pitch_shift(x, 48000, -2.61)
    peaks = y.abs().amax(-1)
    assert float(peaks[0]) < 0.9 * 1.1 and float(peaks[1]) < 0.3 * 1.1
    # each channel alone gives the same result as in the pair
    assert torch.allclose(audio_env.pitch_shift(x[1:], 48000, -2.61), y[1:], atol=1e-5)
