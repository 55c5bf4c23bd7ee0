"""Audio fidelity (audio QA): resampling at any legal rate without huge filter tables, and non-finite
samples treated as bad audio at shard time, by ``verify --deep`` and by the reader."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment import audio as A
from mmdata.augment.base import build_op
from mmdata.codecs import DecodeError, decode_audio, decode_member
from mmdata.shards.mediainfo import CorruptMedia, decode_check

NON_FINITE = "audio holds NaN or infinite samples"


def _tone(rate: int, seconds: float, hz: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return (0.5 * torch.sin(2 * math.pi * hz * t)).to(torch.float32)[None]


# ---- resample: rates whose gcd with the target is small ------------------------------------------


@pytest.mark.parametrize("orig,new", [(22254, 16000), (8001, 16000), (44099, 16000), (16000, 44099), (383999, 1000)])
def test_resample_odd_rates_build_no_large_table(orig: int, new: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """22254 -> 16000 built an 8000 x 11145 polyphase table (3-8 s, 3.6 GB per worker, cached 64 deep;
    44099 Hz ~8 GB); such ratios now filter at each output's position instead, and still resample
    correctly."""
    sizes: list[int] = []
    real = A._sinc_kernel

    def spy(o: int, n: int, *args: object) -> tuple[torch.Tensor, int]:
        kernels, pad = real(o, n, *args)
        sizes.append(kernels.numel())
        return kernels, pad

    monkeypatch.setattr(A, "_sinc_kernel", spy)
    x = _tone(orig, 0.25, hz=300.0)
    y = A.resample(x, orig, new)
    assert all(s <= A.POLYPHASE_MAX for s in sizes), sizes
    assert y.shape == (1, math.ceil(new * x.shape[-1] / orig))
    want = _tone(new, y.shape[-1] / new, hz=300.0)[..., : y.shape[-1]]
    edge = max(64, new // 100)  # the filter's reach at the ends (zeros beyond the clip)
    assert torch.allclose(y[..., edge:-edge], want[..., edge:-edge], atol=2e-3)


@pytest.mark.parametrize("phase_table", [True, False], ids=["phase-table", "per-output"])
@pytest.mark.parametrize("orig,new", [(44100, 16000), (8000, 22050), (48000, 16000), (97, 100), (16000, 16001)])
def test_direct_filter_equals_polyphase(orig: int, new: int, phase_table: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked per-output filter is the polyphase filter evaluated elsewhere: same samples to float
    precision on ratios both can run (small chunks exercise the chunk seams), with its weights from the
    small per-phase table or computed per output (when even that table would be large)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 1234, generator=g) * 0.3
    d = math.gcd(orig, new)
    poly = A.resample(x, orig, new)
    if not phase_table:
        monkeypatch.setattr(A, "PHASE_TABLE_MAX", 0)
    direct = A._resample_direct(x, orig // d, new // d, chunk=97)
    assert direct.shape == poly.shape
    assert (direct - poly).abs().max() < 2e-6


def test_resample_odd_rate_batched_matches_per_sample() -> None:
    assert_resample_batched_matches(22254, [900 + 313 * i for i in range(3)])


def assert_resample_batched_matches(rate: int, lengths: list[int]) -> None:
    """The batched resample to 16 kHz equals the per-sample kernel (within 1e-5) on stereo noise clips of
    ``lengths`` frames at ``rate``; the padding past each clip's length stays zero."""
    op = build_op("audio", {"op": "resample", "rate": 16000}, "n[0]")
    g = torch.Generator().manual_seed(1)
    samples = [Sample(f"k{i}", {"audio": torch.randn(2, n, generator=g) * 0.3}, sample_rate=rate)
               for i, n in enumerate(lengths)]
    params = [op.draw(mmdata.rng.derive(0, 0, s.key, 0), s) for s in samples]
    per = [op.apply(s, p) for s, p in zip(samples, params)]
    got = op.apply_batch(collate(samples), params)
    for i, s in enumerate(per):
        n = s["audio"].shape[-1]
        assert int(got.lengths["audio"][i]) == n
        assert torch.allclose(got["audio"][i, :, :n], s["audio"], atol=1e-5)
        assert not got["audio"][i, :, n:].any()


def _level_db(orig: int, new: int, hz: float) -> float:
    """Level (dB re the input's) of a ``hz`` tone resampled ``orig`` -> ``new``, where it lands: at ``hz``
    below the new Nyquist, else at its alias ``new - hz``."""
    x = torch.from_numpy(np.sin(2 * np.pi * hz * np.arange(2 * orig) / orig).astype(np.float32))[None]
    y = A.resample(x, orig, new)[0].double().numpy()[new // 4: -new // 4]  # away from the ends
    w = np.kaiser(len(y), 20)
    spec = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    i = int(np.argmin(np.abs(np.fft.rfftfreq(len(y), 1 / new) - (hz if hz < new / 2 else new - hz))))
    return float(20 * np.log10(spec[i - 3: i + 4].max() + 1e-300))


@pytest.mark.parametrize("orig", [48000, 44100, 22254])
def test_resample_filter_keeps_the_passband_and_stops_aliases(orig: int) -> None:
    """48 kHz -> 16 kHz let an 8.5 kHz tone alias to 7.5 kHz at -10.8 dB (9 kHz: -16.8 dB) and cut
    7 kHz by 1.8 dB (Hann, width 6, rolloff 0.99); the Kaiser filter (width 32, rolloff 0.945, beta
    14.77) gives -0.2 dB at 7 kHz, -79 dB at 8.5 kHz and under -145 dB from 9 kHz (soxr: -136 dB)."""
    assert abs(_level_db(orig, 16000, 1000)) < 0.01
    assert _level_db(orig, 16000, 7000) > -0.5
    assert _level_db(orig, 16000, 8500) < -75
    for hz in (9000, 10000):
        assert _level_db(orig, 16000, hz) < -130


# ---- non-finite samples ---------------------------------------------------------------------------


def _nan_wav(rate: int = 8000) -> bytes:
    import soundfile as sf

    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate // 2) / rate)).astype(np.float32)
    x[300], x[400] = np.nan, np.inf
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def _loud_wav(rate: int = 8000) -> bytes:
    import soundfile as sf

    x = np.linspace(-3.0, 3.0, rate // 4, dtype=np.float32)  # finite, outside [-1, 1]: kept as it is
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_non_finite_audio_fails_decode_and_decode_check() -> None:
    data = _nan_wav()
    with pytest.raises(DecodeError, match=NON_FINITE):
        decode_audio(data)
    with pytest.raises(DecodeError, match=f"cannot decode .wav member as audio: .*{NON_FINITE}"):
        decode_member("wav", data)
    with pytest.raises(CorruptMedia, match=NON_FINITE):
        decode_check("audio", data)
    loud = _loud_wav()
    decode_check("audio", loud)
    x, sr = decode_audio(loud)
    assert sr == 8000 and float(x.max()) == 3.0 and float(x.min()) == -3.0


def _raw(tmp: Path) -> Path:
    from mmdata.testing import audio_bytes

    raw = tmp / "raw"
    raw.mkdir()
    (raw / "good.wav").write_bytes(audio_bytes(1, seconds=0.5, fmt="wav"))
    (raw / "good.txt").write_text("a good clip")
    (raw / "bad.wav").write_bytes(_nan_wav())
    (raw / "bad.txt").write_text("a clip with NaN samples")
    return raw


def test_shard_check_decode_reports_non_finite_audio(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    rep = mmdata.shard(raw, tmp_path / "ds", check="decode", progress=False)
    assert rep["skipped_counts"]["members"] == 1
    (skip,) = rep["skipped"]
    assert "bad.wav" in skip["source"] and NON_FINITE in skip["reason"]
    with pytest.raises(mmdata.errors.SourceError, match=NON_FINITE):
        mmdata.shard(raw, tmp_path / "ds2", check="decode", on_error="raise", progress=False)


def test_verify_deep_and_reader_report_non_finite_audio(tmp_path: Path) -> None:
    """A shard written with header checks only holds the NaN WAV: verify --deep names it, and the
    reader skips the sample (counted as corrupt audio), or raises with on_error='raise'."""
    raw = _raw(tmp_path)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert mmdata.verify(tmp_path / "ds")["ok"]
    rep = mmdata.verify(tmp_path / "ds", deep=True)
    assert not rep["ok"]
    (problem,) = rep["problems"]
    assert problem["expected"] == "bad.wav" and NON_FINITE in problem["found"]
    ds = mmdata.open_dataset(tmp_path / "ds", on_error="skip")
    keys = [s.key for s in ds]
    assert keys == ["good"] and ds.skipped == {"corrupt audio": 1}
    with pytest.raises(mmdata.errors.ShardError, match=f"bad.wav.*{NON_FINITE}"):
        list(mmdata.open_dataset(tmp_path / "ds", on_error="raise"))


def test_logmel_window_is_win_ms_and_the_trainer_keeps_its_front_end() -> None:
    """Ops QA 2026-12-02: logmel ignored win_ms (the window was always the FFT size: any win_ms in (16, 32]
    gave a 32 ms window at 16 kHz). The window is now win_ms long, centred in the FFT, as librosa's
    win_length; full_window=True keeps the window as long as the FFT (the bundled trainer's front end)."""
    from mmdata.augment.audio import logmel, mel_filters

    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    s17, s25, s32 = (logmel(x, 16000, win_ms=w) for w in (17.0, 25.0, 32.0))
    assert not torch.equal(s17, s25) and not torch.equal(s25, s32)
    assert torch.equal(s32, logmel(x, 16000, win_ms=25.0, full_window=True))  # 512 samples either way

    def reference(win_length: int) -> torch.Tensor:  # librosa's melspectrogram(htk=True, norm=None), in torch
        pad = torch.nn.functional.pad(x[None], (256, 256), mode="reflect")[0, 0]
        w = torch.zeros(512)
        w[(512 - win_length) // 2:(512 - win_length) // 2 + win_length] = torch.hann_window(win_length)
        frames = pad.unfold(0, 512, 160) * w
        power = torch.fft.rfft(frames).abs().T ** 2
        return torch.log(mel_filters(16000, 512, 40) @ power + 1e-6)

    assert torch.allclose(s25, reference(400), atol=1e-3)
    assert torch.allclose(s32, reference(512), atol=1e-3)
