"""`mmdata augment` decodes long clips only as far as the recipe's normalize stage reads them (the loader's
hint, :func:`mmdata.augment.audio.decode_frames`) and writes the same bytes as from whole clips. Before (known
limit of the 2026-12-04 session: "preview and offline augment decode whole clips") it decoded every clip
whole: an hour of 48 kHz stereo to keep 30 s. (Tried first, the hint was not bit-exact from 8 kHz: a lone
row's ``conv1d`` depended on the input's length; fixed in ``resample`` by 1096ea5, and checked here too.)

Real FLAC / WAV clips of several rates and channel counts, sharded and augmented by the real writer; the
expected members are made by :func:`~mmdata.augment.offline.sample_copies` from whole decoded clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.audio import decode_frames, resample
from mmdata.augment.offline import augment_dataset, reader_options, sample_copies
from mmdata.augment.recipe import load_recipe, params_seed
from mmdata.testing import long_audio_bytes

RECIPE = {"normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000},
                                  {"op": "pad_trim", "seconds": 1.5}]},
          "audio": [{"op": "gain", "p": 1.0}, {"op": "time_mask", "p": 0.5}]}
CLIPS = [(48000, 2, 6.0, "flac"), (44100, 1, 5.0, "wav"), (22050, 2, 1.2, "flac"), (8000, 1, 7.5, "flac")]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("long")
    raw = root / "raw"
    raw.mkdir()
    for i, (rate, ch, sec, fmt) in enumerate(CLIPS * 2):
        (raw / f"{i:03d}.{fmt}").write_bytes(long_audio_bytes(i, sec, rate, ch, fmt))
        (raw / f"{i:03d}.cls").write_text(str(i % 2))
    mmdata.shard(raw, root / "ds", split={"train": 0.75, "val": 0.25}, progress=False)
    return root / "ds"


def test_augment_writes_what_whole_clips_give(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"  # 2 workers: the samples are read, augmented and encoded in a DataLoader process
    rep = augment_dataset(ds, out, RECIPE, copies=2, keep_original=True, workers=2, seed=3, progress=False)
    base = load_recipe(RECIPE)
    rec = base.with_seed(params_seed(base.seed, 3))  # as augment_dataset seeds it
    want = {}
    for split, augmented in (("train", True), ("val", False)):
        for s in mmdata.open_dataset(ds, split=split):  # whole clips: the reader's default
            for r in sample_copies(s, rec, 2, True, split, augment=augmented):
                want[r.key] = (r.members, r.label)
    got = {s.key: s for split in ("train", "val") for s in mmdata.open_dataset(out, split=split, decode=False)}
    assert rep["samples"] == len(got) == len(want) == 6 * 3 + 2
    for key, (members, label) in want.items():
        fields = {ext: data for ext, data in got[key].fields.items() if ext != "cls"}
        assert fields == members, key
        assert int(got[key].fields["cls"]) == label
    assert mmdata.verify(out, deep=True)["ok"]


def test_the_reader_gets_the_hint_and_decodes_the_start_of_long_clips(ds: Path) -> None:
    opts = reader_options(load_recipe(RECIPE))
    hint = opts["audio_max_frames"]
    assert hint is not None and reader_options(load_recipe({"audio": RECIPE["audio"]}))["audio_max_frames"] is None
    for split in ("train", "val"):
        for s in mmdata.open_dataset(ds, split=split, **opts):
            rate, _, sec, _ = CLIPS[int(s.key) % len(CLIPS)]
            if sec > 2:  # long: the start only (the whole length from the header)
                assert s["audio"].shape[-1] == hint(rate) < round(sec * rate) and s.meta["audio_seconds"] == sec
            else:
                assert s["audio"].shape[-1] == round(sec * rate)


def test_the_decode_hint_is_bit_exact_from_8_khz(ds: Path) -> None:
    recipe = load_recipe(RECIPE)
    hint = decode_frames(recipe)
    whole = {s.key: recipe.normalize(s)["audio"] for sp in ("train", "val") for s in mmdata.open_dataset(ds, split=sp)}
    head = {s.key: recipe.normalize(s)["audio"]
            for sp in ("train", "val") for s in mmdata.open_dataset(ds, split=sp, audio_max_frames=hint)}
    assert sorted(whole) == sorted(head) == [f"{i:03d}" for i in range(8)]
    assert all(torch.equal(whole[k], head[k]) for k in whole)


def test_resample_of_a_prefix_gives_the_same_first_outputs() -> None:
    x = torch.randn(1, 60000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(resample(x, 8000, 16000)[..., :24000], resample(x[..., :12100], 8000, 16000)[..., :24000])
