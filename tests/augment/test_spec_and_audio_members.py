"""A speech researcher's recipe (QA 2026-12-03, a multilingual speech corpus): log-mel ``spec`` ops with the
loader's cache, waveform ops after the logmel, spec ops under the bundled trainer, and audio written by
``mmdata augment``.

Before: a ``logmel`` in normalize + ``freq_mask`` failed with ``cache=True`` (what ``mmdata train`` uses)
with "a logmel op must come before it" — the recipe had one; gain / noise after the logmel never reached
``spec``, silently; ``freq_mask`` under the bundled trainer (which computes its own log-mel) changed
nothing, and ablate ran it as an arm; ``mmdata augment`` clipped loud clips to full scale and requantised
24-bit and float audio to 16 bits; a leave-one-out arm's recipe error named no arm.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment.offline import audio_member, augment_dataset
from mmdata.augment.recipe import load_recipe
from mmdata.codecs import decode_member
from mmdata.errors import RecipeError
from mmdata.testing import make_sample_folder

SPEC = {"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "freq_mask", "p": 1.0}]}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speech")
    mmdata.shard(make_sample_folder(root / "raw", n=8), root / "ds", progress=False)
    return root / "ds"


def test_a_cached_loader_keeps_the_logmel_its_normalize_ran(ds: Path) -> None:
    for cache in (False, True):
        batch = next(iter(mmdata.loader(ds, 4, recipe=SPEC, cache=cache)))
        assert "spec" in batch.data and batch["spec"].shape[0] == 4, cache
    rec = load_recipe(SPEC)
    assert rec.without_normalize().normalize_sections == {}  # the cache's remainder: no normalize, same checks pass
    with pytest.raises(RecipeError, match="a logmel op must come before it"):
        load_recipe({"audio": [{"op": "freq_mask"}]})  # a recipe without any logmel is still refused


def test_waveform_ops_after_the_logmel_warn_once_and_a_second_logmel_silences_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.augment import recipe as recipe_module

    monkeypatch.setattr(recipe_module, "_STALE_WARNED", set())  # said once per process: start this test afresh
    stale = {"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "gain", "p": 1.0}, {"op": "freq_mask"}]}
    with pytest.warns(UserWarning, match=r"audio\[0\] \(gain\) changes the waveform after logmel computed 'spec'") as seen:
        rec = load_recipe(stale)
        load_recipe(stale)  # the same recipe again (ablate loads one per arm): not said twice
        rec.with_seed(4)
    assert len([w for w in seen if "computed 'spec'" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = load_recipe({"normalize": {"audio": [{"op": "logmel"}]},
                             "audio": [{"op": "gain", "p": 1.0, "min_db": -20.0, "max_db": -20.0}, {"op": "logmel"}]})
    s = mmdata.Sample("k", {"audio": torch.sin(torch.linspace(0, 300, 8000))[None] * 0.5}, sample_rate=8000)
    out, before = fresh.apply_sample(s), fresh.normalize(s)
    assert not torch.equal(out["spec"], before["spec"])  # the second logmel saw the gain


def test_spec_ops_under_the_bundled_trainer_are_said_to_change_nothing() -> None:
    from mmdata.ablate.design import design_warnings, load_ablation
    from mmdata.train.config import spec_ops

    assert spec_ops({**SPEC, "audio": [{"op": "gain"}, {"op": "time_mask", "target": "spec"},
                                       {"op": "one_of", "ops": [{"op": "freq_mask"}, {"op": "noise"}]}]}) == \
        ["normalize.audio[0]", "audio[1]", "audio[2].ops[0]"]
    recipe = {"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "time_mask", "p": 0.5}, {"op": "freq_mask", "p": 0.5}]}
    ab = load_ablation({"seeds": 8, "design": {"mode": "leave_one_out", "recipe": recipe}})
    said = design_warnings(ab)
    assert any("arm '-audio.freq_mask' only changes audio steps that act on 'spec'" in w for w in said)
    assert not any("'-audio.time_mask'" in w for w in said)  # a waveform time_mask reaches the trainer
    custom = load_ablation({"seeds": 8, "trainer": {"entry": "mmdata.train:train"}, "design": {"mode": "leave_one_out",
                                                                                              "recipe": recipe}})
    assert custom.bundled  # the bundled entry named explicitly is still the bundled trainer


def test_a_derived_arm_whose_recipe_breaks_is_named() -> None:
    from mmdata.ablate.design import load_ablation

    recipe = {"audio": [{"op": "logmel"}, {"op": "gain"}, {"op": "freq_mask"}]}
    with pytest.raises(RecipeError, match=r"arm '-audio.logmel' \(design.recipe without its audio\[0\]; the positions "
                                          r"below are the arm's\): audio\[1\]: freq_mask reads 'spec'"):
        load_ablation({"seeds": 8, "design": {"mode": "leave_one_out", "recipe": recipe}})


@pytest.mark.parametrize("kind", ["16-bit", "24-bit", "loud float", "quiet float", "6 channels", "9 channels 16-bit"])
def test_audio_members_decode_to_the_values_written_never_clipped(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = {"16-bit": rng.integers(-32768, 32768, (2, 300)) / 32768, "24-bit": rng.integers(-2**23, 2**23, (1, 300)) / 2**23,
         "loud float": rng.normal(0, 1, (1, 300)) * 3, "quiet float": rng.normal(0, 0.1, (1, 300)),
         "6 channels": rng.normal(0, 0.5, (6, 300)),
         "9 channels 16-bit": rng.integers(-32768, 32768, (9, 300)) / 32768}[kind].astype(np.float32)
    ext, data = audio_member(x, 22050)
    assert ext == ("flac" if "bit" in kind and "9 channels" not in kind else "wav")  # FLAC holds at most 8 channels
    _, got, rate = decode_member(ext, data)
    assert rate == 22050 and np.array_equal(got.numpy(), x)
    assert audio_member(x, 22050)[1] == data  # the same bytes every time (no timestamp in the header)


def test_mmdata_augment_writes_a_louder_clip_as_the_loader_gives_it(ds: Path, tmp_path: Path) -> None:
    recipe = {"audio": [{"op": "gain", "p": 1.0, "min_db": 12.0, "max_db": 12.0}]}
    augment_dataset(ds, tmp_path / "aug", recipe, copies=1, keep_original=True, progress=False)
    rec = load_recipe(recipe)
    src = {s.key: s for s in mmdata.open_dataset(ds, split="train")}
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug", split="train")}
    loud = 0
    for key, s in got.items():
        if "audio" not in s:  # make_sample_folder leaves some samples without audio
            continue
        if key.endswith("_aug0"):
            base = src[key[: -len("_aug0")]]
            want = rec.apply_sample(mmdata.Sample(key, base.fields, base.sample_rate))["audio"]
            assert torch.equal(s["audio"], want), key  # not clipped, not requantised
            loud += int(want.abs().max() > 1)
        else:
            assert torch.equal(s["audio"], src[key]["audio"]), key  # the original, exactly
    assert loud  # some copies are louder than full scale and stay so


def test_preview_draws_the_samples_logmel_so_spec_masks_show(ds: Path, tmp_path: Path) -> None:
    """QA: preview drew a spectrogram of the waveform, so freq_mask / time_mask on spec were invisible in it."""
    from matplotlib.figure import Figure

    from mmdata.augment.preview import logmel_image, preview

    spec = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    ax = Figure().add_subplot()
    im = logmel_image(ax, spec)
    assert np.array_equal(np.asarray(im.get_array()), spec[0].numpy()) and im.origin == "lower"
    png = preview(ds, SPEC, tmp_path / "p.png", n=2, variants=1)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_audio_the_loader_would_refuse_is_not_written() -> None:
    from mmdata.augment.offline import encode_sample
    from mmdata.errors import ShardError

    bad = mmdata.Sample("k9", {"audio": torch.tensor([[0.1, float("nan")]])}, sample_rate=8000)
    with pytest.raises(ShardError, match=r"sample 'k9': audio holds NaN or infinite samples after the recipe"):
        encode_sample(bad)
    assert audio_member(np.zeros((1, 0), np.float32), 8000)[0] == "wav"  # no FLAC of no frame (libsndfile cannot read it)
