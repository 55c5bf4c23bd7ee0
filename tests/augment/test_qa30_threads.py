"""Audio augmentation and torch's thread count (QA round 30, kernels #1).

DataLoader workers run torch on one thread; ``num_workers=0`` runs the recipe in the main process, on one
thread per core. ``logmel`` multiplied its mel filterbank into the power spectrum with a float32 matrix
product (MKL's sgemm), whose sums are split by thread count: from 4 threads on, some clips got other
log-mel bytes (up to 3.6e-4 apart) with ``num_workers=0`` than with workers. On the CPU it now sums each
band in a fixed order, so its bytes do not depend on the thread count; the FFT (``torch.stft`` /
``istft``) never did. ``resample`` and the ops built on it (``speed``, ``pitch_shift``) still use a
matrix product (an exact formulation cost 5-50x): their outputs may differ by float rounding between
thread counts, within their documented tolerance (``allclose, atol 1e-5``); README says so.

The tests set torch's thread count themselves (and restore it): a 2-core machine reproduces the split
with ``torch.set_num_threads(4)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment import load_recipe
from mmdata.augment.audio import logmel, resample
from mmdata.augment.audio_env import time_stretch
from mmdata.testing.media import make_sample_folder

THREADS = (1, 4)


@contextmanager
def threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def at_threads(fn: Callable[[], Any]) -> dict[int, Any]:
    out = {}
    for n in THREADS:
        with threads(n):
            out[n] = fn()
    return out


def _samples() -> list[Sample]:
    """The report's clips: stereo, 1 to 1.3 s at 16 kHz (101 and 107 frames split the sgemm by threads)."""
    g = torch.Generator().manual_seed(0)
    return [Sample(f"k{i}", {"audio": torch.randn(2, 16000 + 999 * i, generator=g) * 0.2}, sample_rate=16000)
            for i in range(6)]


def _both_paths(op: dict[str, Any], field: str) -> Callable[[], tuple[list[torch.Tensor], torch.Tensor]]:
    rec = load_recipe({"seed": 0, "audio": [op]})
    ss = _samples()

    def run() -> tuple[list[torch.Tensor], torch.Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [rec.apply_sample(s, 0)[field] for s in ss], rec.apply_batched(collate(ss), 0)[field]
    return run


@pytest.mark.parametrize("op,field", [({"op": "logmel"}, "spec"), ({"op": "logmel", "n_mels": 80, "win_ms": 64}, "spec"),
                                      ({"op": "gain", "p": 1.0}, "audio"), ({"op": "to_mono"}, "audio"),
                                      ({"op": "time_mask", "p": 1.0}, "audio"), ({"op": "polarity", "p": 1.0}, "audio")])
def test_exact_ops_give_the_same_bytes_at_1_and_4_threads(op: dict[str, Any], field: str) -> None:
    out = at_threads(_both_paths(op, field))
    (per1, bat1), (per4, bat4) = out[1], out[4]
    for s, a, b in zip(_samples(), per1, per4):
        assert torch.equal(a, b), (op, s.key, float((a - b).abs().max()))
    assert torch.equal(bat1, bat4), (op, float((bat1 - bat4).abs().max()))


@pytest.mark.parametrize("op", [{"op": "speed", "p": 1.0}, {"op": "pitch_shift", "p": 1.0}])
def test_resampling_ops_stay_within_their_tolerance_across_thread_counts(op: dict[str, Any]) -> None:
    """Documented, not exact: resample's polyphase product is an sgemm (README: thread count)."""
    out = at_threads(_both_paths(op, "audio"))
    (per1, bat1), (per4, bat4) = out[1], out[4]
    for a, b in [*zip(per1, per4), (bat1, bat4)]:
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_logmel_fuzz_is_thread_independent_on_the_cpu() -> None:
    """Many shapes of the band sums (few / many mels, long windows, mono / stereo, float64, tiny clips)."""
    g = torch.Generator().manual_seed(3)
    cases = []
    for i in range(40):
        n_mels = int(torch.randint(1, 129, (1,), generator=g))
        win = float(torch.randint(5, 70, (1,), generator=g))
        hop = float(torch.randint(2, 20, (1,), generator=g))
        T = int(torch.randint(1, 24000, (1,), generator=g))
        x = torch.randn(1 + i % 2, T, generator=g, dtype=torch.float64 if i % 7 == 0 else torch.float32)
        cases.append((x, 16000 if i % 3 else 22050, n_mels, win, hop))

    def run() -> list[torch.Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # empty mel bands for some n_mels / win_ms
            return [logmel(x, sr, n, w, h) for x, sr, n, w, h in cases]
    out = at_threads(run)
    for (x, sr, n, w, h), a, b in zip(cases, out[1], out[4]):
        assert torch.equal(a, b), (tuple(x.shape), sr, n, w, h)


def test_logmel_still_matches_the_filterbank_product() -> None:
    """The fixed-order band sums are the filterbank product to float rounding (the old formula)."""
    from mmdata.augment.audio import mel_filters

    x = torch.randn(2, 32000, generator=torch.Generator().manual_seed(1))
    spec = torch.stft(x.mean(0, keepdim=True), 512, 160, win_length=400, window=torch.hann_window(400), center=True,
                      pad_mode="reflect", return_complex=True).abs() ** 2
    ref = torch.log(mel_filters(16000, 512, 40) @ spec + 1e-6)[0]
    torch.testing.assert_close(logmel(x, 16000), ref, rtol=1e-5, atol=1e-5)


def test_the_fft_and_the_phase_vocoder_are_thread_independent() -> None:
    """pitch_shift's other half: the phase vocoder (float64 STFT, istft) gives the same bytes."""
    x = torch.randn(2, 20000, generator=torch.Generator().manual_seed(2))
    out = at_threads(lambda: time_stretch(x, 16000, 23000))
    assert torch.equal(out[1], out[4])


def test_resample_at_common_rates_is_within_tolerance_across_thread_counts() -> None:
    x = torch.randn(2, 48000, generator=torch.Generator().manual_seed(4))
    for o, n in [(48000, 16000), (44100, 16000), (22050, 16000), (91, 100), (110, 100)]:
        out = at_threads(lambda: resample(x, o, n))
        torch.testing.assert_close(out[1], out[4], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threads30")
    mmdata.shard(make_sample_folder(root / "raw", n=12), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def test_loader_main_process_and_workers_give_the_same_logmel(ds: Path) -> None:
    """What a user sees: num_workers=0 on 4 threads and num_workers=1 (a worker: one thread) give the
    same ``spec`` bytes for every key."""
    recipe = {"seed": 0, "normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]},
              "audio": [{"op": "gain", "p": 1.0}, {"op": "logmel"}, {"op": "time_mask", "target": "spec"}]}
    got: dict[int, dict[str, torch.Tensor]] = {}
    for nw in (0, 1):
        with threads(4 if nw == 0 else 1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = mmdata.loader(ds, 4, recipe=recipe, seed=0, num_workers=nw, shuffle=False)
            got[nw] = {k: b["spec"][i].clone() for b in loader for i, k in enumerate(b.keys)
                       if "spec" in b and bool(b.present["spec"][i])}
    assert got[0] and got[0].keys() == got[1].keys()
    differ = [k for k in got[0] if not torch.equal(got[0][k], got[1][k])]
    assert not differ, differ


def test_the_trainers_front_end_keeps_the_filterbank_product() -> None:
    """Review of QA30: the fixed-order sum moved every CPU training run's audio features by float rounding (38% of
    them, up to 4.8e-7), so the demo and the recorded figures were no longer those of the code. The trainer's front
    end (``fixed_order=False``) is the product as measured; the augmentation op keeps the fixed order."""
    import math

    from mmdata.augment.audio import logmel, mel_filters
    from mmdata.train.model import HOP_MS, N_MELS, FusionModel

    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 1, 8000, generator=g) * 0.2
    n_fft = 1 << int(math.ceil(math.log2(8000 * 25.0 / 1000)))
    spec = torch.stft(x.reshape(3, -1), n_fft, int(8000 * HOP_MS / 1000), win_length=n_fft,
                      window=torch.hann_window(n_fft), center=True, pad_mode="reflect", return_complex=True).abs() ** 2
    product = torch.log(mel_filters(8000, n_fft, N_MELS) @ spec + 1e-6)
    assert torch.equal(logmel(x, 8000, n_mels=N_MELS, hop_ms=HOP_MS, full_window=True, fixed_order=False), product)
    m = FusionModel(["audio"], "concat", classes=2, sample_rate=8000)
    batch = collate([Sample(f"k{i}", {"audio": x[i]}, sample_rate=8000) for i in range(3)])
    assert torch.equal(m.inputs(batch)[0]["audio"], product)


def test_the_recorded_preprocessing_constants_are_the_trainers() -> None:
    """QA30 upgrade #1: ``fixed_order`` (logmel's default, True) entered metrics.json's preprocessing constants,
    though the trainer uses the product (False): every run of before warned its predictions may differ."""
    from mmdata.train.model import preprocessing_constants

    assert "fixed_order" not in preprocessing_constants()["audio"]


def test_a_replay_log_of_the_kernels_before_the_fixed_order_warns(tmp_path: Path) -> None:
    """QA30 upgrade #2: the logmel op's bytes moved (float rounding) with KERNELS unchanged, so a log of before
    replayed to another spectrogram without the warning the README promises."""
    import pyarrow.parquet as pq

    from mmdata.augment.recipe import KERNELS
    from mmdata.augment.replay import load_log, log_rows, save_log

    assert KERNELS >= 2
    rec = load_recipe({"seed": 0, "audio": [{"op": "logmel"}]})
    s = Sample("k", {"audio": torch.zeros(1, 800)}, sample_rate=8000)
    save_log(tmp_path / "log.parquet", log_rows(s.key, rec.apply_sample(s).meta["aug"], 0))
    t = pq.read_table(tmp_path / "log.parquet")
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"mmdata.kernels": b"1"}), tmp_path / "old.parquet")
    with pytest.warns(UserWarning, match=r"written by kernels 1 \(these are kernels \d+\)"):
        load_log(tmp_path / "old.parquet")
