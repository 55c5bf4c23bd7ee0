"""``pad_trim``'s padding is not the clip's (QA round 34, avspeech 1, 2, 10): a padded clip keeps its real length
(``meta["audio_valid"]`` per sample, ``lengths["audio"]`` in a batch), the ops after it draw and act on the real
frames alone, and both kernels agree. Real FLAC / WAV clips of 0.3 to 4 s, sharded, read by the loader."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.audio import AUDIO_VALID
from mmdata.testing import make_messy_folder

MONO_16K = [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]
PAD3 = [*MONO_16K, {"op": "pad_trim", "seconds": 3.0}]
KERNELS = [{"augment_on": "workers"}, {"augment_on": "workers", "num_workers": 1}, {"augment_on": "device"}]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("padreal")
    make_messy_folder(root / "raw", n=16, sizes=((12, 16),), seconds=(0.3, 4.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "ds", progress=False, labels_from_folders=False)
    return root / "ds"


def _batch(ds: Path, recipe: dict, **kw: object) -> mmdata.Batch:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return next(iter(mmdata.loader(ds, 16, recipe=recipe, modalities=["audio"], shuffle=False, seed=0, **kw)))


def _real(ds: Path) -> mmdata.Batch:
    return _batch(ds, {"normalize": {"audio": MONO_16K}}, stage="eval")


@pytest.mark.parametrize("kw", KERNELS, ids=["workers", "worker-process", "device"])
def test_lengths_after_pad_trim_are_the_real_frames(clips: Path, kw: dict) -> None:
    real = _real(clips)
    b = _batch(clips, {"normalize": {"audio": PAD3}}, stage="eval", **kw)
    assert b["audio"].shape[-1] == 48000  # the fixed width stays
    assert b.lengths["audio"].tolist() == [min(n, 48000) for n in real.lengths["audio"].tolist()]
    assert min(real.lengths["audio"].tolist()) < 16000 < 48000 < max(real.lengths["audio"].tolist())  # short and long


def test_a_sample_keeps_its_real_length_through_pad_trim() -> None:
    r = mmdata.load_recipe({"normalize": {"audio": [{"op": "pad_trim", "seconds": 1.0}]}})
    s = r.normalize(mmdata.Sample("a", {"audio": torch.ones(1, 300)}, 1000))
    assert tuple(s["audio"].shape) == (1, 1000) and s.meta[AUDIO_VALID] == 300
    assert float(s["audio"][:, 300:].abs().sum()) == 0
    long = r.normalize(mmdata.Sample("b", {"audio": torch.ones(1, 3000)}, 1000))
    assert AUDIO_VALID not in long.meta and long["audio"].shape[-1] == 1000
    assert mmdata.collate([s, long]).lengths["audio"].tolist() == [300, 1000]


@pytest.mark.parametrize("kw", KERNELS, ids=["workers", "worker-process", "device"])
def test_random_crop_after_pad_trim_draws_inside_the_real_signal(clips: Path, kw: dict) -> None:
    real = _real(clips).lengths["audio"].tolist()
    recipe = {"seed": 0, "normalize": {"audio": PAD3}, "audio": [{"op": "random_crop", "p": 1.0, "seconds": 1.0}]}
    b = _batch(clips, recipe, **kw)
    assert b["audio"].shape[-1] == 16000
    assert b.lengths["audio"].tolist() == [min(n, 16000) for n in real]
    for i, n in enumerate(b.lengths["audio"].tolist()):
        if n:  # no window of padding: the messy clips are tones, never silent for long
            assert float((b["audio"][i, :, :n].abs() < 1e-6).float().mean()) < 0.5, b.keys[i]
        assert float(b["audio"][i, :, n:].abs().sum()) == 0, b.keys[i]
    ref = _batch(clips, recipe)
    assert torch.equal(b["audio"], ref["audio"])


@pytest.mark.parametrize("kw", KERNELS, ids=["workers", "worker-process", "device"])
def test_noise_after_pad_trim_measures_the_snr_on_the_real_frames_and_leaves_the_padding_silent(clips: Path, kw: dict) -> None:
    base = _batch(clips, {"seed": 0, "normalize": {"audio": PAD3}}, stage="eval")
    noisy = _batch(clips, {"seed": 0, "normalize": {"audio": PAD3},
                           "audio": [{"op": "noise", "p": 1.0, "min_snr_db": 20.0, "max_snr_db": 20.0}]}, **kw)
    for i, n in enumerate(base.lengths["audio"].tolist()):
        if not n:
            continue
        x, y = base["audio"][i, :, :n].double(), noisy["audio"][i, :, :n].double()
        snr = 10 * torch.log10(x.pow(2).mean() / (y - x).pow(2).mean())
        assert abs(float(snr) - 20.0) < 0.3, (base.keys[i], float(snr))
        assert float(noisy["audio"][i, :, n:].abs().sum()) == 0, base.keys[i]


def test_the_speech_recipe_after_pad_trim_agrees_between_kernels(clips: Path) -> None:
    recipe = {"seed": 0, "normalize": {"audio": PAD3},
              "audio": [{"op": "random_crop", "p": 1.0, "seconds": 1.0}, {"op": "time_shift", "p": 1.0},
                        {"op": "time_mask", "p": 1.0, "max_fraction": 0.1}, {"op": "noise", "p": 1.0},
                        {"op": "speed", "p": 1.0, "factor": [0.9, 1.1]}]}
    a, b = _batch(clips, recipe), _batch(clips, recipe, augment_on="device")
    assert a.lengths["audio"].tolist() == b.lengths["audio"].tolist()
    assert a["audio"].shape == b["audio"].shape
    torch.testing.assert_close(a["audio"], b["audio"], atol=1e-5, rtol=0)
