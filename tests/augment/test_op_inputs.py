"""The built-in ops' input check (contract.check_input at the recipe's entries and in collate) and the QA
findings on op inputs: 1-D / channels-last audio through ``to_mono`` (D1), non-uint8 images (D2), channels-last,
numpy, 2-D and empty images, integer audio, missing sample rates (D3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdata.augment.contract import InputError
from mmdata.augment.recipe import load_recipe
from mmdata.errors import MMDataError, ShardError
from mmdata.types import Sample, collate

MONO_RESAMPLE = {"normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]}}


def _img(c: int = 3, h: int = 4, w: int = 4, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    return torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(0)).to(dtype)


def _refused(recipe: dict, sample: Sample, match: str) -> InputError:
    """``sample`` is refused by the recipe's per-sample entry and by collate, with the same message."""
    rec = load_recipe(recipe)
    with pytest.raises(InputError, match=match) as per_sample:
        rec.apply_sample(sample)
    with pytest.raises(InputError, match=match) as collated:
        collate([sample])
    assert str(per_sample.value) == str(collated.value)
    return per_sample.value


# -- D1: audio layout ---------------------------------------------------------------------------------

def test_1d_audio_is_refused_with_unsqueeze_hint_on_both_paths() -> None:
    s = Sample("k", {"audio": torch.randn(16000)}, sample_rate=16000)
    err = _refused(MONO_RESAMPLE, s, r"sample 'k': audio must be a torch.float32 tensor \(channels, time\)")
    assert "x.unsqueeze(0)" in str(err) and "(16000,)" in str(err)
    with pytest.raises(InputError, match="unsqueeze"):
        load_recipe(MONO_RESAMPLE).normalize(s)


def test_frames_first_audio_is_refused_as_channels_last() -> None:
    s = Sample("k", {"audio": torch.randn(48000, 2)}, sample_rate=48000)
    err = _refused(MONO_RESAMPLE, s, "channels last")
    assert "x.T.contiguous()" in str(err) and "(48000, 2)" in str(err)


def test_3d_audio_is_refused() -> None:
    _refused(MONO_RESAMPLE, Sample("k", {"audio": torch.randn(1, 1, 800)}, sample_rate=16000), r"3 dims, not 2")


def test_valid_audio_keeps_its_layout() -> None:
    rec = load_recipe(MONO_RESAMPLE)
    out = rec.normalize(Sample("k", {"audio": torch.randn(2, 4800)}, sample_rate=48000))
    assert tuple(out["audio"].shape) == (1, 1600)
    # few channels, fewer samples than channels: still (C, T) when C <= 255 (what the reader can give)
    assert tuple(rec.normalize(Sample("k", {"audio": torch.randn(8, 3)}, sample_rate=16000))["audio"].shape) == (1, 3)


def test_the_readers_short_many_channel_clips_pass(tmp_path) -> None:  # noqa: ANN001
    """QA on the fix: a 12-channel WAV of 4 frames read by mmdata's own reader was refused as channels last (the
    rule said C > 8 and C > T), with no recipe at all (collate checks); an empty 9-channel clip too."""
    import numpy as np
    import soundfile as sf

    import mmdata
    from mmdata.types import collate

    raw = tmp_path / "raw"
    raw.mkdir()
    sf.write(raw / "short12.wav", np.zeros((4, 12), np.float32), 16000, subtype="FLOAT")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert [tuple(b["audio"].shape) for b in mmdata.loader(tmp_path / "ds", 1)] == [(1, 12, 4)]
    assert tuple(collate([Sample("e", {"audio": torch.zeros(9, 0)}, sample_rate=16000)])["audio"].shape) == (1, 9, 0)


def test_to_mono_per_sample_and_batched_agree() -> None:
    rec = load_recipe({"normalize": {"audio": [{"op": "to_mono"}]}})
    rows = [Sample(f"k{i}", {"audio": torch.randn(2, 100 + i)}, sample_rate=16000) for i in range(3)]
    per = collate([rec.normalize(s) for s in rows])
    bat = rec.normalize_batched(collate(rows))
    assert torch.equal(per["audio"], bat["audio"]) and per.lengths["audio"].tolist() == bat.lengths["audio"].tolist()


# -- D2: image dtypes -----------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:.*a format op at p 1")
@pytest.mark.parametrize(("dtype", "hint"), [(torch.float32, r"\(x \* 255\).round\(\).to\(torch.uint8\)"),
                                             (torch.uint16, "16-bit"), (torch.int16, "scale it to 0-255"),
                                             (torch.int32, "scale it to 0-255")])
@pytest.mark.parametrize("op", [{"op": "to_gray"}, {"op": "rotate"}, {"op": "hflip"}, {"op": "gaussian_noise"}])
def test_non_uint8_images_are_refused(dtype: torch.dtype, hint: str, op: dict) -> None:
    img = _img(dtype=dtype) if dtype != torch.float32 else torch.full((3, 4, 4), 0.8)
    err = _refused({"image": [op]}, Sample("k", {"image": img}),
                   rf"sample 'k': image must be a torch.uint8 tensor \(C, H, W\) with 1-4 channels, got {dtype}")
    assert isinstance(err, ShardError) and isinstance(err, MMDataError) and isinstance(err, ValueError)
    with pytest.raises(InputError, match=hint):
        load_recipe({"image": [op]}).apply_sample(Sample("k", {"image": img}))


def test_replay_checks_its_input_as_apply_sample_does() -> None:
    """``Recipe.replay`` ran the log's kernels on a float image (nonsense pixels, no error)."""
    rec = load_recipe({"image": [{"op": "hflip", "p": 1.0}]})
    good = Sample("k", {"image": _img()})
    log = rec.apply_sample(good).meta["aug"]
    assert torch.equal(rec.replay(good, log)["image"], _img().flip(-1))
    with pytest.raises(InputError, match=r"sample 'k': image must be a torch.uint8 tensor"):
        rec.replay(Sample("k", {"image": _img().float() / 255}), log)


def test_replay_takes_audio_without_a_rate_when_the_log_needs_none() -> None:
    """QA pass 2: replay demanded a sample rate because of a train-stage op (a crop in seconds) whose log
    entry holds absolute frames, or that was not in the log at all."""
    rec = load_recipe({"seed": 0, "normalize": {"image": [{"op": "resize", "size": 8}]},
                       "image": [{"op": "hflip", "p": 1.0}], "audio": [{"op": "random_crop", "seconds": 0.05}]})
    with_rate = Sample("k", {"image": _img(h=10, w=12), "audio": torch.randn(1, 1600)}, sample_rate=16000)
    no_rate = Sample("k", with_rate.fields)
    eval_log = rec.apply_sample(with_rate, stage="eval").meta["aug"]
    assert torch.equal(rec.replay(no_rate, eval_log)["image"], rec.replay(with_rate, eval_log)["image"])
    train = rec.apply_sample(with_rate)
    assert torch.equal(rec.replay(no_rate, train.meta["aug"])["audio"], train["audio"])


def test_float_image_batch_built_by_hand_is_refused_by_the_batched_entry() -> None:
    b = collate([Sample("a", {"image": _img()}), Sample("b", {"image": _img()})])
    bad = b.replace(image=b["image"].float() / 255)
    rec = load_recipe({"image": [{"op": "gaussian_noise", "std": [0, 0]}]})
    with pytest.raises(InputError, match=r"a batch of 2 samples \('a', 'b'\).*float image in \[0, 1\]"):
        rec.apply_batched(bad)
    with pytest.raises(InputError, match="float image"):
        load_recipe({"normalize": {"image": [{"op": "to_rgb"}]}}).normalize_batched(bad)
    assert rec.apply_batched(b)["image"].dtype == torch.uint8


# -- D3: layouts, numpy, empty images, integer audio, sample rates ----------------------------------------

def test_channels_last_image_is_refused_with_permute_hint() -> None:
    hwc = torch.randint(0, 256, (32, 24, 3), dtype=torch.uint8)
    rec = {"normalize": {"image": [{"op": "resize", "size": 16}, {"op": "center_crop", "size": 16}]}}
    err = _refused(rec, Sample("k", {"image": hwc}), r"channels last\? x.permute\(2, 0, 1\)")
    assert "(32, 24, 3)" in str(err)


def test_channels_last_batch_is_refused_by_the_batched_entry() -> None:
    b = collate([Sample("a", {"image": _img()})])
    bad = b.replace(image=torch.zeros(1, 32, 24, 3, dtype=torch.uint8))
    with pytest.raises(InputError, match=r"channels last\? x.permute\(2, 0, 1\)"):
        load_recipe({"image": [{"op": "hflip"}]}).apply_batched(bad)


def test_numpy_image_and_audio_are_refused_with_from_numpy_hint() -> None:
    arr = np.zeros((8, 6, 3), np.uint8)
    _refused({"image": [{"op": "hflip"}]}, Sample("k", {"image": arr}), r"torch.from_numpy\(a\).permute\(2, 0, 1\)")
    _refused({"audio": [{"op": "gain"}]}, Sample("k", {"audio": np.zeros((1, 100), np.float32)}, sample_rate=16000),
             r"torch.from_numpy\(a\).float\(\)")


def test_2d_and_empty_images_are_refused() -> None:
    _refused({"image": [{"op": "hflip"}]}, Sample("k", {"image": torch.zeros(4, 4, dtype=torch.uint8)}),
             r"a grey \(H, W\) image -> x.unsqueeze\(0\)")
    _refused({"normalize": {"image": [{"op": "resize", "size": 8}]}},
             Sample("k", {"image": torch.zeros(3, 0, 4, dtype=torch.uint8)}), r"empty image \(height or width 0\)")
    _refused({"image": [{"op": "hflip"}]}, Sample("k", {"image": torch.zeros(7, 4, 5, dtype=torch.uint8)}),
             r"7 channels; 1 \(grey\), 2 \(grey \+ alpha\), 3 \(RGB\) or 4 \(RGBA\)")


@pytest.mark.parametrize(("dtype", "hint"), [(torch.int16, r"x.float\(\) / 32768"), (torch.float64, r"x.float\(\)")])
@pytest.mark.parametrize("op", [{"op": "resample", "rate": 8000}, {"op": "speed"}, {"op": "logmel"}])
def test_integer_and_double_audio_is_refused(dtype: torch.dtype, hint: str, op: dict) -> None:
    s = Sample("k", {"audio": torch.zeros(1, 1600, dtype=dtype)}, sample_rate=16000)
    _refused({"audio": [op]} if op["op"] == "speed" else {"normalize": {"audio": [op]}}, s, rf"sample 'k': audio must be a torch.float32 tensor .* got {dtype}.*{hint}")


@pytest.mark.parametrize("rate", [None, 0, -8000, "16000", 16000.0, True])
@pytest.mark.parametrize("op", [{"op": "resample", "rate": 8000}, {"op": "logmel"}, {"op": "pad", "seconds": 2.0},
                                {"op": "pad_trim", "seconds": 0.5}, {"op": "random_crop", "seconds": 0.01}])
def test_a_missing_or_bad_sample_rate_is_refused_where_an_op_reads_it(rate: object, op: dict) -> None:
    section = "normalize" if op["op"] in ("resample", "pad_trim", "logmel") else "audio"
    recipe = {"normalize": {"audio": [op]}} if section == "normalize" else {"audio": [op]}
    s = Sample("k", {"audio": torch.zeros(1, 1600)}, sample_rate=rate)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=rf"sample 'k': sample_rate must be a positive int \(Hz\), got {rate!r}.*"
                                         rf"op audio.{op['op']}"):
        load_recipe(recipe).apply_sample(s)


def test_string_rate_names_the_fix() -> None:
    s = Sample("k", {"audio": torch.zeros(1, 1600)}, sample_rate="16000")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"sample_rate=int\('16000'\)"):
        load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 8000}]}}).normalize(s)


def test_batched_entry_refuses_a_missing_rate_for_an_op_that_reads_it() -> None:
    b = collate([Sample("a", {"audio": torch.zeros(1, 1600)})])  # no rate: collate takes it (ops may not need one)
    with pytest.raises(InputError, match=r"batch.sample_rate must be a positive int.*op audio.logmel"):
        load_recipe({"normalize": {"audio": [{"op": "logmel"}]}}).normalize_batched(b)


def test_ops_that_do_not_read_the_rate_take_audio_without_one() -> None:
    s = Sample("k", {"audio": torch.ones(1, 100)})
    rec = load_recipe({"audio": [{"op": "gain", "min_db": 6, "max_db": 6}, {"op": "time_shift"}]})
    out = rec.apply_sample(s)
    assert out.sample_rate is None and out["audio"].shape == (1, 100)
    assert rec.apply_batched(collate([s]))["audio"].shape == (1, 1, 100)


def test_recipe_without_ops_for_the_sample_leaves_it_alone() -> None:
    s = Sample("k", {"image": torch.zeros(3, 4, 4)})  # nothing runs: the sample is returned as it is
    assert load_recipe({}).apply_sample(s) is s
