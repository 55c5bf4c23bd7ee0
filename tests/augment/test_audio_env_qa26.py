"""QA26 F15: the speech-environment audio ops (mmdata/augment/audio_env.py): band_limit (telephone band, mu-law),
pitch_shift (duration kept; against audiomentations' PitchShift on a sine), background_noise (a folder of real
noise files at an exact SNR, untrusted paths refused) and reverb (impulse responses from files, or synthetic),
each with both kernels checked by mmdata.testing.check_op."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from mmdata import Sample
from mmdata.augment import audio_env
from mmdata.augment.base import build_op
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError
from mmdata.testing import check_op, op_samples

SR = 16000


def _sine(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).to(torch.float32)[None]


def _white(n: int, seed: int = 0, channels: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((channels, n)).astype(np.float32) * 0.1)


def _band_db(x: torch.Tensor, sr: int, lo: float, hi: float) -> float:
    """Energy (dB) of the DFT bins in [lo, hi) Hz, measured with a Hann window (leakage counts)."""
    x = x.double()[0]
    spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=torch.float64)).abs() ** 2
    f = torch.fft.rfftfreq(x.shape[-1], 1.0 / sr, dtype=torch.float64)
    return 10 * math.log10(float(spec[(f >= lo) & (f < hi)].sum()) + 1e-300)


def _peak_hz(x: torch.Tensor, sr: int) -> float:
    """The strongest frequency of a mono clip: a zero-padded (x16) Hann-windowed FFT's peak bin."""
    x = x.double()[0]
    n = 16 * x.shape[-1]
    spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1], dtype=torch.float64), n=n).abs()
    return float(torch.argmax(spec)) * sr / n


def _samples(sr: int = SR, channels: int = 1) -> list[Sample]:
    """Four clips of different lengths (0.25-0.55 s) at ``sr``: white noise plus a tone."""
    return [Sample(f"c{i}", {"audio": _white(int(sr * (0.25 + 0.1 * i)), i, channels) + _sine(500 + 100 * i, 0.25 + 0.1 * i, sr)
                             .expand(channels, -1)}, sample_rate=sr) for i in range(4)]


@pytest.fixture
def noise_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``noise/`` (a MUSAN-like tree): a mono WAV at 16 kHz, a stereo FLAC at
    22.05 kHz shorter than the clips (looped), a nested file, and a text file that is no audio."""
    (tmp_path / "noise" / "sub").mkdir(parents=True)
    rng = np.random.default_rng(7)
    sf.write(tmp_path / "noise" / "b_white.wav", (rng.standard_normal(SR) * 0.2).astype(np.float32), SR)
    sf.write(tmp_path / "noise" / "a_stereo.flac", (rng.standard_normal((2000, 2)) * 0.3).astype(np.float32), 22050,
             subtype="PCM_16")
    sf.write(tmp_path / "noise" / "sub" / "hum.wav",
             (0.3 * np.sin(2 * np.pi * 60 * np.arange(SR // 2) / SR)).astype(np.float32), SR)
    (tmp_path / "noise" / "README.txt").write_text("not audio")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "noise"


# -- band_limit ----------------------------------------------------------------------------------------------
def test_band_limit_removes_energy_outside_the_telephone_band() -> None:
    x = _white(SR, 3)
    op = build_op("audio", {"op": "band_limit"}, "audio[0]")
    params = op.draw(np.random.default_rng(0), Sample("k", {"audio": x}, sample_rate=SR))
    assert params == {"applied": True, "low_hz": 300.0, "high_hz": 3400.0}
    y = op.apply(Sample("k", {"audio": x}, sample_rate=SR), params)["audio"]
    assert y.shape == x.shape and y.dtype == torch.float32
    assert _band_db(x, SR, 0, 250) - _band_db(y, SR, 0, 250) > 40  # below the low cut
    assert _band_db(x, SR, 3600, 8000) - _band_db(y, SR, 3600, 8000) > 40  # above the high cut
    assert abs(_band_db(x, SR, 500, 3000) - _band_db(y, SR, 500, 3000)) < 0.1  # the band kept
    # the DFT of the clip itself: exactly nothing outside the band
    f = torch.fft.rfftfreq(SR, 1.0 / SR)
    spec = torch.fft.rfft(y.double()[0]).abs()
    assert float(spec[(f < 300) | (f > 3400)].max()) < 1e-3 * float(spec.max())


def test_band_limit_mulaw_round_trip_is_8_bit_mu_law() -> None:
    x = _sine(1000, 0.5, amp=0.6)
    plain = audio_env.band_limit(x, SR, 300.0, 3400.0)
    y = audio_env.band_limit(x, SR, 300.0, 3400.0, mulaw=True)
    levels = torch.unique(y)
    assert len(levels) <= 256
    # every output is one of the 256 decoded mu-law levels
    q = torch.arange(256, dtype=torch.float64) / 255 * 2 - 1
    table = (torch.sign(q) * (torch.exp(q.abs() * math.log1p(255)) - 1) / 255).to(torch.float32)
    assert bool(torch.isin(levels, table).all())
    snr = 10 * math.log10(float(plain.double().pow(2).mean() / (y - plain).double().pow(2).mean()))
    assert 30 < snr < 45, snr  # 8-bit mu-law on a loud tone: ~38 dB
    assert float(audio_env.mu_law(torch.tensor([2.0, -3.0]))[0]) == 1.0  # clipped to [-1, 1]


def test_band_limit_draws_from_ranges_and_both_kernels_agree() -> None:
    op = build_op("audio", {"op": "band_limit", "p": 0.7, "low_hz": [200, 400], "high_hz": [3000, 3800], "mulaw": True},
                  "audio[0]")
    check_op(op, _samples())
    check_op(op)  # the default samples: 8 kHz, high cuts up to 3800 Hz (below 4 kHz)
    drawn = [op.draw(np.random.default_rng(s), _samples()[0]) for s in range(20)]
    lows = [p["low_hz"] for p in drawn if p["applied"]]
    assert all(200 <= v <= 400 for v in lows) and len(set(lows)) == len(lows)


def test_band_limit_low_cut_above_nyquist_is_an_error_naming_the_key_and_sample() -> None:
    op = build_op("audio", {"op": "band_limit", "low_hz": [300, 5000], "high_hz": [6000, 7000]}, "audio[3]")
    with pytest.raises(RecipeError, match=r"audio\[3\]\.low_hz: 5000 Hz is not below half the sample rate of sample 'k0' "
                                          r"\(4000 Hz at 8000 Hz\)"):
        op.draw(np.random.default_rng(0), op_samples()[0])


def test_band_limit_high_cut_above_nyquist_cuts_nothing_there() -> None:
    x = _white(8000, 1)
    y = audio_env.band_limit(x, 8000, 0.0, 6000.0)
    assert torch.allclose(x, y, atol=1e-6)


@pytest.mark.parametrize("spec,match", [
    ({"low_hz": [300, 3500], "high_hz": [3400, 3400]}, r"audio\[0\]\.low_hz: \[300.0, 3500.0\] reaches high_hz"),
    ({"low_hz": [500, 300]}, r"audio\[0\]\.low_hz: range \[500.0, 300.0\] has min > max"),
    ({"high_hz": [0.5, 1]}, r"audio\[0\]\.high_hz: 0.5 is out of range"),
    ({"mulaw": "yes"}, r"audio\[0\]\.mulaw: expected true / false"),
    ({"mu": 8}, r"audio\[0\]: unknown key\(s\) \['mu'\]"),
])
def test_band_limit_recipe_errors_name_the_key(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        build_op("audio", {"op": "band_limit", **spec}, "audio[0]")


# -- pitch_shift ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("semitones", [-2.0, -0.5, 1.0, 2.0, 7.0])
def test_pitch_shift_moves_a_sine_by_the_ratio_and_keeps_its_length(semitones: float) -> None:
    from audiomentations import PitchShift

    x = _sine(440.0)
    op = build_op("audio", {"op": "pitch_shift", "semitones": [semitones, semitones]}, "audio[0]")
    s = Sample("k", {"audio": x}, sample_rate=SR)
    y = op.apply(s, op.draw(np.random.default_rng(0), s))["audio"]
    want = 440.0 * 2 ** (semitones / 12)
    assert y.shape == x.shape
    assert abs(_peak_hz(y, SR) / want - 1) < 0.01
    theirs = PitchShift(min_semitones=semitones, max_semitones=semitones, p=1.0)(x[0].numpy(), sample_rate=SR)
    assert theirs.shape[-1] == x.shape[-1]
    assert abs(_peak_hz(y, SR) / _peak_hz(torch.from_numpy(np.asarray(theirs))[None], SR) - 1) < 0.01
    # the level is kept (no gain change): RMS within 1 dB of the input's, away from the edges
    mid = slice(SR // 8, -SR // 8)
    assert abs(20 * math.log10(float(y[0, mid].pow(2).mean().sqrt() / x[0, mid].pow(2).mean().sqrt()))) < 1.0


def test_pitch_shift_kernels_agree_and_zero_is_identity() -> None:
    check_op(build_op("audio", {"op": "pitch_shift", "p": 0.6, "semitones": [-3, 3]}, "audio[0]"), _samples(8000, channels=2))
    x = _white(1000)
    assert torch.equal(audio_env.pitch_shift(x, SR, 0.0), x)
    assert audio_env.pitch_shift(_white(5), SR, 2.0).shape == (1, 5)  # shorter than half an FFT: zero-padded frames


def test_pitch_shift_in_blocks_is_the_whole_clip_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 s clip at 8 kHz takes several blocks of output frames: the phase carried between them gives what
    one block gives, and the tone keeps its frequency and level."""
    x = _sine(440.0, 6.0, 8000) + _white(48000, 5) * 0.1
    y = audio_env.pitch_shift(x, 8000, 2.0)
    monkeypatch.setattr(audio_env, "STRETCH_BLOCK", 1 << 20)
    assert torch.allclose(y, audio_env.pitch_shift(x, 8000, 2.0), atol=1e-5)
    tone = audio_env.pitch_shift(_sine(440.0, 6.0, 8000), 8000, 2.0)
    assert abs(_peak_hz(tone, 8000) / (440 * 2 ** (2 / 12)) - 1) < 0.01
    mid = slice(4000, -4000)
    assert abs(float(tone[0, mid].pow(2).mean().sqrt()) / 0.5 * math.sqrt(2) - 1) < 0.02


def test_pitch_ratio_is_within_a_cent_of_the_semitones() -> None:
    for st in np.linspace(-24, 24, 481):
        up, down = audio_env.pitch_ratio(float(st))
        assert abs(1200 * math.log2(up / down) - 100 * st) < 1.0, st


def test_pitch_shift_range_is_checked() -> None:
    with pytest.raises(RecipeError, match=r"audio\[2\]\.semitones: 30.0 is out of range"):
        build_op("audio", {"op": "pitch_shift", "semitones": [0, 30]}, "audio[2]")


# -- background_noise ----------------------------------------------------------------------------------------
def test_background_noise_lists_the_folder_once_sorted(noise_dir: Path) -> None:
    op = build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    assert op._files == ("a_stereo.flac", "b_white.wav", "sub/hum.wav")
    (noise_dir / "c_new.wav").write_bytes((noise_dir / "b_white.wav").read_bytes())
    assert op._files == ("a_stereo.flac", "b_white.wav", "sub/hum.wav")  # read when built, not per draw


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 37.5])
def test_background_noise_reaches_the_drawn_snr(noise_dir: Path, snr: float) -> None:
    op = build_op("audio", {"op": "background_noise", "path": "noise", "min_snr_db": snr, "max_snr_db": snr}, "audio[0]")
    for s in _samples(channels=2):
        for seed in range(3):
            p = op.draw(np.random.default_rng(seed), s)
            y = op.apply(s, p)["audio"]
            x = s["audio"]
            added = (y - x).double()
            got = 10 * math.log10(float(x.double().pow(2).mean() / added.pow(2).mean()))
            assert abs(got - snr) < 0.1, (p, got)
            assert y.shape == x.shape and y.dtype == torch.float32


def test_background_noise_decodes_resamples_loops_and_crops_from_the_plan(noise_dir: Path) -> None:
    op = build_op("audio", {"op": "background_noise", "path": "noise", "min_snr_db": 0, "max_snr_db": 0}, "audio[0]")
    x = _sine(300.0, 0.5)
    s = Sample("k", {"audio": x}, sample_rate=SR)
    params = {"applied": True, "file": "a_stereo.flac", "offset": 0.25, "snr_db": 0.0}
    added = (op.apply(s, params)["audio"] - x).double()
    # the file as mmdata decodes it, resampled 22050 -> 16000 Hz, mixed to mono, looped from a quarter in
    from mmdata.augment.audio import resample
    from mmdata.codecs import decode_audio

    raw, rate = decode_audio((noise_dir / "a_stereo.flac").read_bytes())
    n = resample(torch.as_tensor(raw), rate, SR).mean(dim=0, keepdim=True)
    N = n.shape[-1]
    assert N == math.ceil(2000 * SR / 22050) < x.shape[-1]  # shorter than the clip: looped
    want = n[:, (torch.arange(x.shape[-1]) + int(0.25 * N)) % N].double()
    g = float(added.norm() / want.norm())
    assert torch.allclose(added, g * want, atol=1e-6)


def test_background_noise_is_deterministic_per_seed_epoch_key_and_replays(noise_dir: Path) -> None:
    spec = {"seed": 3, "audio": [{"op": "background_noise", "path": "noise", "min_snr_db": 0, "max_snr_db": 20}]}
    s = _samples()[1]
    a = load_recipe(spec).apply_sample(s, epoch=1)
    b = load_recipe(spec).apply_sample(s, epoch=1)
    assert torch.equal(a["audio"], b["audio"])
    log = json.loads(json.dumps(a.meta["aug"]))
    assert set(log[0]["params"]) == {"applied", "file", "offset", "snr_db"}
    assert torch.equal(load_recipe(spec).replay(s, log)["audio"], a["audio"])
    others = {json.dumps(load_recipe(spec).apply_sample(s, epoch=e).meta["aug"][0]["params"]) for e in range(6)}
    assert len(others) == 6  # another epoch, another draw


def test_background_noise_kernels_agree(noise_dir: Path) -> None:
    op = build_op("audio", {"op": "background_noise", "path": "noise", "p": 0.7}, "audio[0]")
    check_op(op, _samples())
    check_op(op, _samples(channels=2))
    check_op(op)  # 8 kHz clips: each file resampled to 8 kHz


@pytest.mark.parametrize("path,match", [
    ("../noise", r"may not contain '\.\.'"),
    ("noise/../../etc", r"may not contain '\.\.'"),
    ("~/noise", r"may not contain '\.\.' or start with '~'"),
    ("/etc", r"absolute path '/etc' is outside the allowed roots"),
    ("missing", r"folder 'missing' not found"),
    ("noise/README.txt", r"is not a folder"),
    ("", r"audio\[0\]\.path: give a folder of noise files"),
])
def test_untrusted_noise_paths_are_refused(noise_dir: Path, path: str, match: str) -> None:
    with pytest.raises(RecipeError, match=r"audio\[0\]\.path: .*" + match if path else match):
        build_op("audio", {"op": "background_noise", "path": path}, "audio[0]")


def test_links_out_of_the_root_are_refused(noise_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    sf.write(outside / "secret.wav", np.zeros(100, dtype=np.float32), SR)
    (noise_dir / "sub" / "leak.wav").symlink_to(outside / "secret.wav")
    with pytest.raises(RecipeError, match=r"audio\[0\]\.path: .*leak\.wav is a symbolic link out of the root"):
        build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    (noise_dir / "sub" / "leak.wav").unlink()
    (noise_dir / "dirlink").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RecipeError, match=r"dirlink is a symbolic link out of the root"):
        build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    (noise_dir / "dirlink").unlink()
    os.symlink(outside, noise_dir.parent / "elsewhere")
    with pytest.raises(RecipeError, match=r"'elsewhere' resolves to .*outside its root"):
        build_op("audio", {"op": "background_noise", "path": "elsewhere"}, "audio[0]")
    # a link that stays inside the root is fine
    (noise_dir / "sub" / "again.wav").symlink_to(noise_dir / "b_white.wav")
    op = build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    assert "sub/again.wav" in op._files
    # ... until it is pointed out of the root after the folder was listed
    (noise_dir / "sub" / "again.wav").unlink()
    (noise_dir / "sub" / "again.wav").symlink_to(outside / "secret.wav")
    with pytest.raises(RecipeError, match=r"audio\[0\]\.path: .*again\.wav is a symbolic link out of the root"):
        op.apply(_samples()[0], {"applied": True, "file": "sub/again.wav", "offset": 0.0, "snr_db": 10.0})


def test_an_absolute_path_needs_a_root_allowed_from_python(noise_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_env, "_ROOTS", [])
    with pytest.raises(RecipeError, match="outside the allowed roots"):
        build_op("audio", {"op": "background_noise", "path": str(noise_dir)}, "audio[0]")
    audio_env.allow_root(noise_dir.parent)
    op = build_op("audio", {"op": "background_noise", "path": str(noise_dir)}, "audio[0]")
    assert len(op._files) == 3


def test_hidden_files_and_folders_are_skipped(noise_dir: Path) -> None:
    (noise_dir / "._b_white.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a macOS resource fork
    (noise_dir / ".cache").mkdir()
    (noise_dir / ".cache" / "x.wav").write_bytes((noise_dir / "b_white.wav").read_bytes())
    assert build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")._files == (
        "a_stereo.flac", "b_white.wav", "sub/hum.wav")


def test_the_decoded_file_cache_is_bounded(noise_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_env, "_CACHE", type(audio_env._CACHE)())
    monkeypatch.setattr(audio_env, "CACHE_SAMPLES", 20000)
    for name in ("b_white.wav", "sub/hum.wav", "a_stereo.flac"):  # 16000, 8000, 2 x 1452 samples at 16 kHz
        audio_env.load_file(noise_dir, name, SR, "audio[0].path")
    assert [Path(k[0]).name for k in audio_env._CACHE] == ["hum.wav", "a_stereo.flac"]
    a = audio_env.load_file(noise_dir, "sub/hum.wav", SR, "audio[0].path")
    assert a is audio_env.load_file(noise_dir, "sub/hum.wav", SR, "audio[0].path")  # a hit: the same tensor


def test_an_empty_folder_and_an_undecodable_file_are_named(noise_dir: Path) -> None:
    (noise_dir.parent / "empty").mkdir()
    with pytest.raises(RecipeError, match=r"audio\[0\]\.path: no audio files .* in 'empty'"):
        build_op("audio", {"op": "background_noise", "path": "empty"}, "audio[0]")
    (noise_dir / "zz_broken.wav").write_bytes(b"RIFF....WAVEjunk")
    op = build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    s = _samples()[0]
    with pytest.raises(RecipeError, match=r"audio\[0\]\.path: cannot read .*zz_broken\.wav"):
        op.apply(s, {"applied": True, "file": "zz_broken.wav", "offset": 0.0, "snr_db": 10.0})


# -- reverb --------------------------------------------------------------------------------------------------
def test_synthetic_reverb_keeps_length_and_rms_and_kernels_agree() -> None:
    op = build_op("audio", {"op": "reverb", "p": 0.7, "rt60": [0.1, 0.5]}, "audio[0]")
    check_op(op, _samples())
    check_op(op)
    s = _samples()[2]
    p = op.draw(np.random.default_rng(1), s)
    p = p if p["applied"] else op.draw(np.random.default_rng(2), s)
    y = op.apply(s, p)["audio"]
    x = s["audio"]
    assert y.shape == x.shape and not torch.allclose(y, x, atol=1e-3)
    assert abs(float(y.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()) - 1) < 1e-5
    ir = audio_env.synthetic_ir(SR, 0.5, 3)
    tail = ir[0, 1:].abs()
    q = tail.shape[-1] // 10
    assert 10 * math.log10(float(tail[:q].pow(2).mean() / tail[-q:].pow(2).mean())) > 45  # ~54 dB over 90% of rt60


def test_reverb_from_impulse_response_files_matches_a_direct_convolution(noise_dir: Path) -> None:
    from scipy.signal import fftconvolve

    (noise_dir.parent / "rirs").mkdir()
    h = np.zeros(800, dtype=np.float32)
    h[0], h[200], h[640] = 1.0, 0.5, -0.25
    sf.write(noise_dir.parent / "rirs" / "room.wav", h, SR, subtype="FLOAT")
    op = build_op("audio", {"op": "reverb", "path": "rirs"}, "audio[0]")
    s = _samples()[0]
    p = op.draw(np.random.default_rng(0), s)
    assert p == {"applied": True, "file": "room.wav"}
    y = op.apply(s, p)["audio"].double()
    x = s["audio"].double()
    want = torch.from_numpy(fftconvolve(x.numpy(), h[None].astype(np.float64))[:, : x.shape[-1]])
    want = want * (x.pow(2).mean().sqrt() / want.pow(2).mean().sqrt())
    assert torch.allclose(y, want, atol=1e-5)
    check_op(build_op("audio", {"op": "reverb", "path": "rirs", "p": 0.6}, "audio[0]"), _samples(channels=2))
    with pytest.raises(RecipeError, match=r"audio\[1\]\.path: .*may not contain"):
        build_op("audio", {"op": "reverb", "path": "../rirs"}, "audio[1]")


def test_the_ops_reference_documents_the_new_ops() -> None:
    from mmdata.augment.reference import op_reference

    text = op_reference()
    for name in ("band_limit", "pitch_shift", "background_noise", "reverb"):
        assert f"### audio: {name}" in text
    assert "| `mulaw` | true / false | false |" in text


# -- in the loader, with real DataLoader workers -------------------------------------------------------------
def test_the_loader_gives_the_same_batches_with_workers_and_on_the_device_path(noise_dir: Path) -> None:
    """Real shards, real workers: the per-sample kernels in 2 workers, in the main process, and the batched
    kernels (``augment_on="device"``, CPU here; with the params planned in the workers too) give the same
    audio, epoch after epoch; the replay log names the noise file."""
    import warnings

    import mmdata
    from mmdata.testing import make_messy_folder

    root = noise_dir.parent
    make_messy_folder(root / "raw", n=16, seconds=(0.3, 0.6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "ds", split={"train": 1.0}, progress=False)
    recipe = {"seed": 2, "normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": SR}]},
              "audio": [{"op": "band_limit", "p": 0.5, "low_hz": [200, 400], "mulaw": True},
                        {"op": "pitch_shift", "p": 0.5},
                        {"op": "background_noise", "path": "noise", "p": 0.8, "min_snr_db": 5, "max_snr_db": 15},
                        {"op": "reverb", "p": 0.5}]}

    def run(**kw: Any) -> dict[tuple[int, str], torch.Tensor]:
        loader = mmdata.loader(root / "ds", 4, recipe=recipe, seed=1, modalities=["audio"], **kw)
        out = {}
        for epoch in range(2):
            loader.set_epoch(epoch)
            for b in loader:
                for i, key in enumerate(b.keys):
                    if bool(b.present["audio"][i]):
                        out[(epoch, key)] = b["audio"][i, :, : int(b.lengths["audio"][i])].clone()
        return out

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = run(num_workers=0)
        assert len(ref) >= 20
        for got in (run(num_workers=2), run(num_workers=2, augment_on="device", plan_in_workers=True)):
            assert got.keys() == ref.keys()
            for k, a in ref.items():
                assert torch.allclose(got[k], a, atol=1e-5), k
    assert not [w for w in caught if "ahead" in str(w.message)], [str(w.message) for w in caught]
    # the two epochs drew differently
    assert sum(not torch.equal(ref[(0, k)], ref[(1, k)]) for (e, k) in ref if e == 0 and (1, k) in ref) >= 5


def test_a_root_allowed_through_a_link_holds_its_own_paths(noise_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA26 review: the roots are kept resolved, the recipe's absolute path was matched unresolved: a root
    allowed as /x/lnk (-> /x/real) refused /x/lnk/noise."""
    monkeypatch.setattr(audio_env, "_ROOTS", [])
    link = noise_dir.parent.parent / f"{noise_dir.parent.name}-link"
    link.symlink_to(noise_dir.parent, target_is_directory=True)
    audio_env.allow_root(link)
    op = build_op("audio", {"op": "background_noise", "path": str(link / "noise")}, "audio[0]")
    assert len(op._files) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any folder")
def test_an_unreadable_subfolder_is_an_error_not_files_left_out(noise_dir: Path) -> None:
    (noise_dir / "sub").chmod(0)
    try:
        with pytest.raises(RecipeError, match=r"audio\[0\]\.path: cannot list .*sub"):
            build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    finally:
        (noise_dir / "sub").chmod(0o755)
