"""``logmel``'s frequency range (QA26 B-2): ``f_min`` / ``f_max`` (defaults 0 and half the sample rate, as
before), checked against librosa's mel filterbank and features (``htk=True, norm=None``) where librosa is
installed and against the HTK formula always; bad ranges are errors naming the recipe key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment import audio as A
from mmdata.augment.base import build_op
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError

CASES = [(16000, 512, 40, 0.0, 0.0), (16000, 512, 40, 20.0, 7600.0), (22050, 1024, 64, 125.0, 7500.0),
         (48000, 2048, 80, 50.0, 14000.0), (8000, 256, 23, 300.0, 3400.0), (44100, 2048, 128, 0.0, 11025.0)]


def _htk(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _formula(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangles between n_mels + 2 edges evenly spaced on the HTK mel scale, peaks of 1."""
    hi = f_max or sr / 2
    edges = 700.0 * (10 ** (np.linspace(_htk(np.array(f_min)), _htk(np.array(hi)), n_mels + 2) / 2595.0) - 1)
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    up = (bins[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    down = (edges[2:, None] - bins[None]) / (edges[2:] - edges[1:-1])[:, None]
    return np.maximum(0, np.minimum(up, down))


@pytest.mark.parametrize("sr,n_fft,n_mels,f_min,f_max", CASES)
def test_filterbank_matches_the_formula(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> None:
    fb = A.mel_filters(sr, n_fft, n_mels, f_min, f_max).numpy()
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(fb, _formula(sr, n_fft, n_mels, f_min, f_max), atol=1e-6)
    hz = np.arange(n_fft // 2 + 1) * sr / n_fft
    assert not fb[:, (hz < f_min) | (hz > (f_max or sr / 2))].any()  # nothing outside the range


@pytest.mark.parametrize("sr,n_fft,n_mels,f_min,f_max", CASES)
def test_filterbank_matches_librosa(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> None:
    librosa = pytest.importorskip("librosa")
    want = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max or sr / 2, htk=True, norm=None)
    np.testing.assert_allclose(A.mel_filters(sr, n_fft, n_mels, f_min, f_max).numpy(), want, atol=1e-6)


@pytest.mark.parametrize("f_min,f_max", [(0.0, 0.0), (60.0, 7800.0)])
def test_features_match_librosa(f_min: float, f_max: float) -> None:
    """The whole front end: mono mix, Hann window of win_ms centred in the power-of-two FFT, centred
    frames (reflect padding), power spectrum, the filterbank, log(mel + 1e-6)."""
    librosa = pytest.importorskip("librosa")
    sr = 16000
    x = torch.randn(2, sr, generator=torch.Generator().manual_seed(0)) * 0.3
    got = A.logmel(x, sr, n_mels=40, f_min=f_min, f_max=f_max).numpy()
    mel = librosa.feature.melspectrogram(y=x.mean(0).double().numpy(), sr=sr, n_fft=512, hop_length=160, win_length=400,
                                         window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=40,
                                         fmin=f_min, fmax=f_max or sr / 2, htk=True, norm=None)
    np.testing.assert_allclose(got, np.log(mel + 1e-6), atol=1e-4)


def test_defaults_are_unchanged_and_stereo_is_mixed_to_mono() -> None:
    x = torch.randn(2, 12000, generator=torch.Generator().manual_seed(1))
    spec = A.logmel(x, 16000)
    assert torch.equal(spec, A.logmel(x, 16000, f_min=0.0, f_max=8000.0))
    assert torch.equal(spec, A.logmel(x.mean(0, keepdim=True), 16000))  # (C, T) -> one (n_mels, frames)
    op = build_op("audio", {"op": "logmel"}, "audio[0]")
    assert "f_min" not in op.to_dict() and "f_max" not in op.to_dict()  # at the defaults: a recipe's text as before
    assert build_op("audio", op.to_dict(), "audio[0]").to_dict() == op.to_dict()


def test_the_range_changes_the_features_and_kernels_agree() -> None:
    op = build_op("audio", {"op": "logmel", "n_mels": 32, "f_min": 80, "f_max": 7000}, "audio[0]")
    g = torch.Generator().manual_seed(2)
    samples = [Sample(f"k{i}", {"audio": torch.randn(1, 8000 + 1500 * i, generator=g) * 0.3}, sample_rate=16000)
               for i in range(3)]
    params = [op.draw(mmdata.rng.derive(0, 0, s.key, 0), s) for s in samples]
    per = [op.apply(s, p) for s, p in zip(samples, params)]
    assert not torch.equal(per[0]["spec"], A.logmel(samples[0]["audio"], 16000, n_mels=32))
    assert torch.equal(per[0]["spec"], A.logmel(samples[0]["audio"], 16000, n_mels=32, f_min=80, f_max=7000))
    got = op.apply_batch(collate(samples), params)
    for i, s in enumerate(per):
        n = s["spec"].shape[-1]
        assert torch.allclose(got["spec"][i, :, :n], s["spec"], atol=1e-4)


def test_bad_ranges_name_the_recipe_key() -> None:
    with pytest.raises(RecipeError, match=r"audio\[0\]\.f_min: -10\.0 is out of range"):
        load_recipe({"audio": [{"op": "logmel", "f_min": -10}]})
    with pytest.raises(RecipeError, match=r"audio\[0\]\.f_min: 8000 Hz is not below f_max \(4000 Hz\)"):
        load_recipe({"audio": [{"op": "logmel", "f_min": 8000, "f_max": 4000}]})
    with pytest.raises(RecipeError, match=r"audio\[0\]\.f_min: 300 Hz is not below f_max \(300 Hz\)"):
        load_recipe({"audio": [{"op": "logmel", "f_min": 300, "f_max": 300}]})
    op = build_op("audio", {"op": "logmel", "f_max": 11025}, "audio[0]")
    clip = Sample("clip-7", {"audio": torch.zeros(1, 16000)}, sample_rate=16000)
    with pytest.raises(RecipeError, match=r"audio\[0\]\.f_max: 11025 Hz is above half the sample rate of sample "
                                          r"'clip-7' \(8000 Hz at 16000 Hz\)"):
        op.draw(mmdata.rng.derive(0, 0, clip.key, 0), clip)
    low = build_op("audio", {"op": "logmel", "f_min": 9000}, "audio[1]")
    with pytest.raises(RecipeError, match=r"audio\[1\]\.f_min: 9000 Hz is not below half the sample rate"):
        low.draw(mmdata.rng.derive(0, 0, clip.key, 0), clip)
    ok = build_op("audio", {"op": "logmel", "f_max": 8000}, "audio[0]")  # exactly the Nyquist is allowed
    assert ok.draw(mmdata.rng.derive(0, 0, clip.key, 0), clip) is not None


def test_the_function_refuses_bad_ranges() -> None:
    x = torch.zeros(1, 4000)
    for kw, msg in (({"f_min": -1.0}, "below 0"), ({"f_max": 9000.0}, "above half the sample rate"),
                    ({"f_min": 5000.0, "f_max": 4000.0}, "not below f_max")):
        with pytest.raises(ValueError, match=msg):
            A.logmel(x, 16000, **kw)
