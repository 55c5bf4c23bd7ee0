"""QA39 second-round fixes (fixer "augment2") in mmdata/augment/recipe.py, offline.py, preview.py and
mmdata/train/config.py: review codecs #1, review augment #1 to #5."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment import recipe as recipe_mod
from mmdata.augment.offline import copy_notes
from mmdata.augment.recipe import load_recipe, tempo_like, tempo_target_notes
from mmdata.types import Sample
from tests.test_qa39_photo_fields import _dataset


def _said(fn, *args, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn(*args, **kw)
    return [str(w.message) for w in got]


# --- codecs review #1: preview and augment decode a declared `image` view as a photo --------------------------------

def _views(tmp_path: Path) -> Path:
    """Four samples with a palette-GIF view in the named field image2.gif (the photo-fields test's dataset)."""
    return _dataset(tmp_path, n=4)


_VIEW_RECIPE = "seed: 0\ntargets: {image2.gif: image}\nnormalize:\n  image:\n    - {op: resize, size: [16, 16], " \
               "side: exact}\nimage:\n  - {op: hflip, p: 0.5}\n"


def test_recipe_photo_fields() -> None:
    assert load_recipe({"targets": {"image2.gif": "image", "m.png": "mask", "f.jpg": {"kind": "image"}}}) \
        .photo_fields() == ["image2.gif", "f.jpg"]
    assert load_recipe({}).photo_fields() == []


def test_preview_and_augment_read_a_palette_view_as_a_photo(tmp_path: Path) -> None:
    from mmdata.cli.main import main

    ds = _views(tmp_path)
    rec = tmp_path / "r.yaml"
    rec.write_text(_VIEW_RECIPE)
    def run(args: list[str]) -> None:  # rc 2 (the channel error) before the fix
        try:
            main(args)
        except BaseException as e:  # typer's Exit / SystemExit: rc 0 only
            code = getattr(e, "exit_code", getattr(e, "code", "raised"))
            if code not in (0, None):
                raise

    for keys in ([], ["--keys", "k1"]):
        run(["preview", str(ds), "-r", str(rec), "-o", str(tmp_path / "p.png"), "--n", "2", *keys])
    run(["augment", str(ds), str(tmp_path / "aug"), "-r", str(rec), "--copies", "1"])
    got = [s for s in mmdata.open_dataset(str(tmp_path / "aug"), split="train", shuffle=False)]
    assert got and all(np.asarray(s.fields["image2.gif"]).max() > 100 for s in got)  # colours, not indices 0..3


# --- review augment #1: the tempo warning only for clear tempo / duration metadata, said as an "if" --------------------

def test_tempo_warning_skips_sample_rate_and_counts() -> None:
    speed = {"audio": [{"op": "speed"}]}
    assert not tempo_target_notes(speed, {"sample_rate": "int", "n_syllables": "int", "text_len": "int",
                                          "frame_rate": "float", "bpm_confidence": "float"})
    for n in ("sample_rate", "frame_rate", "learning_rate", "n_syllables", "text_len", "caption_length",
              "seconds_since_epoch", "bpm_confidence", "rate_of_error", "bit_rate"):
        assert not tempo_like(n), n
    for n in ("bpm", "TempoBPM", "duration_s", "speech_rate", "heart_rate", "length_sec", "words_per_min"):
        assert tempo_like(n), n
    note = tempo_target_notes(speed, {"bpm": "float", "sample_rate": "int"})
    assert len(note) == 1 and "'bpm'" in note[0] and "sample_rate" not in note[0] and "if a model learns it" in note[0]
    # a declared regression target: the broad list, said firmly
    firm = tempo_target_notes(speed, {"heart_rate": "regression"})
    assert len(firm) == 1 and "regression target 'heart_rate'" in firm[0] and "if a model" not in firm[0]
    assert tempo_like("rate", target=True) and not tempo_like("rate")


# --- review augment #2: the one-colour remedy in the recipe's option names, per op -------------------------------------

def test_blank_copy_remedy_names_the_recipe_options() -> None:
    bc = copy_notes([("blank image", "k_aug0", 'image.brightness_contrast {"beta": 50.0}')], 4, 4, False)[0]
    assert "brightness: [-0.1, 0.1]" in bc and "alpha" not in bc and "beta and" not in bc
    cut = copy_notes([("blank image", "k_aug0", 'image.cutout {"x": 1}')], 4, 4, False)[0]
    assert "image.cutout" in cut and "brightness" not in cut and "saturated" not in cut and "size" in cut
    noise = copy_notes([("blank image", "k_aug0", 'image.gaussian_noise {"std": 0.9}')], 4, 4, False)[0]
    assert "std" in noise and "brightness" not in noise


# --- review augment #3: no hierarchy-path warning for time signatures, fractions, 'n/a' --------------------------------

def test_slash_names_that_are_no_paths() -> None:
    from mmdata.train.config import class_name_warnings

    assert not class_name_warnings(["3/4", "4/4", "6/8", "3/8", "2/4"])
    assert not class_name_warnings(["n/a", "n/b", "x"])
    assert not class_name_warnings(["rock", "pop", "AC/DC"])
    assert class_name_warnings(["Hip-Hop/Rap", "Hip-Hop/Trap", "Rock"])
    assert class_name_warnings(["Home > Kitchen > Knives", "Home > Kitchen > Pans", "Toys > Dolls"])


# --- review augment #4: the timing warning skips declared targets and image-sized maps --------------------------------

def test_timing_warning_skips_targets_and_image_maps() -> None:
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((1, 32000)).astype(np.float32))
    s = Sample("a", {"audio": audio, "image": torch.zeros((3, 24, 32), dtype=torch.uint8), "depth": np.zeros((24, 32), np.uint8),
                     "seg": np.zeros((24, 32), np.uint8), "video": np.zeros((25, 8, 8), np.uint8)}, sample_rate=16000)
    rec = load_recipe({"targets": {"seg": "mask"}, "audio": [{"op": "random_crop", "p": 1.0, "seconds": 1.0}]})
    got = [m for m in _said(rec.apply_sample, s) if "beside the audio" in m]
    assert len(got) == 1 and "'video'" in got[0] and "depth" not in got[0] and "seg" not in got[0]
    assert "the first axis" not in got[0]
