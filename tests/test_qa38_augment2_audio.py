"""QA38 review 4 #2: resample's energy check read from the output's power (no FFT of the input), the same per
sample and per batch row; and a batch's spec lengths kept when every row has one shape (collate's rule)."""
from __future__ import annotations

import math

import torch

import mmdata.augment.audio as audio
from mmdata.augment.audio import Resample, collect_notes
from mmdata.types import Sample, collate


def _clip(sr: int, n: int, high_share: float) -> torch.Tensor:
    """Noise-free tones: ``high_share`` of the power at 30 kHz (above 8 kHz), the rest at 1 kHz."""
    t = torch.arange(n) / sr
    hi = math.sqrt(2 * high_share) * torch.sin(2 * math.pi * 30000 * t)
    lo = math.sqrt(2 * (1 - high_share)) * torch.sin(2 * math.pi * 1000 * t)
    return (hi + lo)[None].float()


def test_resample_check_counts_the_clips_losing_most_energy_alike_per_sample_and_per_batch() -> None:
    sr, op = 96000, Resample(rate=16000)
    # a prime length (an FFT's slow case before), and clips losing 80%, 30% and 60% of their energy
    clips = {"most": _clip(sr, 9601, 0.8), "some": _clip(sr, 9600, 0.3), "over": _clip(sr, 7919, 0.6)}
    samples = [Sample(k, {"audio": x}, sample_rate=sr) for k, x in clips.items()]
    with collect_notes() as one:
        for s in samples:
            op.transform(s, {"orig": sr})
    with collect_notes() as batched:
        op.transform_batch(collate(samples), [{"orig": sr}] * 3)
    assert [k for _, k, _ in one] == ["most", "over"] == [k for _, k, _ in batched]
    shares = [int(d.split("%")[0].split()[-1]) for _, _, d in one]
    assert abs(shares[0] - 80) <= 2 and abs(shares[1] - 60) <= 2, one
    assert all("from 96000 Hz removed" in d and "near 8 kHz" in d for _, _, d in batched)


def test_to_mono_check_still_gives_the_mix_level() -> None:
    t = torch.arange(1600) / 16000
    s = 0.5 * torch.sin(2 * math.pi * 440 * t)
    with collect_notes() as found:
        audio.ToMono().transform(Sample("rev", {"audio": torch.stack([s, -s * 0.99])}, sample_rate=16000), {})
    assert len(found) == 1 and found[0][1] == "rev" and "-46.0 dB" in found[0][2]


def test_a_spec_batch_of_one_shape_keeps_its_lengths() -> None:
    t = torch.arange(8000) / 16000
    rows = [Sample(f"k{i}", {"audio": (0.1 * torch.sin(2 * math.pi * 440 * t))[None]}, sample_rate=16000)
            for i in range(2)]
    out = audio.LogMel(n_mels=16).transform_batch(collate(rows), [{"applied": True}] * 2)
    assert "spec" in out.lengths and out.lengths["spec"].tolist() == [list(out["spec"].shape[1:])] * 2


def test_int_audio_of_a_hand_built_sample_passes_the_checks_and_the_detail_says_what_was_removed() -> None:
    """review c #1: `_power` refused int16 tensors (a hand-built Sample through the API ran before the check);
    review c #3: a 7.5 kHz tone resampled to 16 kHz was said to hold "66% of its energy above 8 kHz"."""
    import math

    import torch

    from mmdata.augment.audio import _check_lowpass, _power, collect_notes, resample

    assert _power(torch.tensor([[3, -4]], dtype=torch.int16)) == 12.5
    t = torch.arange(4800) / 48000
    tone = torch.sin(2 * math.pi * 7500 * t)[None]
    with collect_notes() as found:
        _check_lowpass("tone", tone, resample(tone, 48000, 16000), 48000, 16000)
    for _, _, detail in found:
        assert "removed" in detail and "above and near 8 kHz" in detail and "energy above" not in detail, detail
