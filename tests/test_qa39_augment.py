"""QA round 39 fixes in mmdata/augment/recipe.py, offline.py and preview.py (fixer "augment")."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment import recipe as recipe_mod
from mmdata.augment.offline import copy_notes
from mmdata.augment.recipe import load_recipe, tempo_like, tempo_target_notes
from mmdata.errors import RecipeError
from mmdata.types import Sample


def _said(fn, *args, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn(*args, **kw)
    return [str(w.message) for w in got]


# --- music #2: a speed change beside a tempo-like numeric target -------------------------------------------------------

def test_speed_beside_a_bpm_field_is_warned() -> None:
    """(QA39 music #2) speed changes the tempo; a numeric `bpm` keeps its value: warned, naming op, field, remedy."""
    notes = tempo_target_notes({"audio": [{"op": "speed", "factor": [0.8, 1.25]}]}, {"bpm": "float", "album": "string"})
    assert len(notes) == 1 and notes[0].startswith("audio[0] (audio.speed) plays the clip faster or slower")
    assert "'bpm'" in notes[0] and "s.meta['aug']" in notes[0] and "album" not in notes[0]
    assert tempo_target_notes({"audio": [{"op": "speed"}]}, {"bpm": "regression"}, ["audio", "text"])
    # no note: a string field, no speed, speed at p 0, a model without audio
    assert not tempo_target_notes({"audio": [{"op": "speed"}]}, {"bpm": "string", "genre": "string"})
    assert not tempo_target_notes({"audio": [{"op": "gain"}]}, {"bpm": "float"})
    assert not tempo_target_notes({"audio": [{"op": "speed", "p": 0.0}]}, {"bpm": "float"})
    assert not tempo_target_notes({"audio": [{"op": "speed"}]}, {"bpm": "float"}, ["image", "text"])
    assert [tempo_like(n) for n in ("bpm", "TempoBPM", "duration_s", "speech_rate", "label", "separate")] == \
        [True, True, True, True, False, False]


# --- lipreading #3: audio timing ops beside a time-axis array ----------------------------------------------------------

def _av(key: str = "a") -> Sample:
    rng = np.random.default_rng(0)
    return Sample(key, {"audio": torch.from_numpy(rng.standard_normal((1, 32000)).astype(np.float32)),
                        "video": np.zeros((50, 8, 8), np.uint8)}, sample_rate=16000)


def test_audio_crop_beside_a_frame_stack_is_warned_once() -> None:
    """(QA39 lipreading #3) an audio crop desyncs the audio from a (T, H, W) video no op moves: warned once."""
    rec = load_recipe({"audio": [{"op": "random_crop", "p": 1.0, "seconds": 1.0}]})
    got = [m for m in _said(rec.apply_sample, _av()) if "beside the audio" in m]
    assert len(got) == 1 and "'video' (50, 8, 8)" in got[0] and "audio.random_crop" in got[0]
    assert not [m for m in _said(rec.apply_sample, _av("b")) if "beside the audio" in m]  # once per recipe
    assert any("beside the audio" in m for m in rec.warned)


def test_no_timing_warning_without_a_timing_op_or_an_array() -> None:
    rec = load_recipe({"audio": [{"op": "gain", "p": 1.0}]})
    assert not [m for m in _said(rec.apply_sample, _av()) if "beside the audio" in m]
    crop = load_recipe({"audio": [{"op": "random_crop", "p": 1.0, "seconds": 1.0}]})
    s = _av()
    bare = Sample("a", {"audio": s["audio"], "emb": np.zeros(16, np.float32)}, sample_rate=16000)
    assert not [m for m in _said(crop.apply_sample, bare) if "beside the audio" in m]
    # the eval stage runs normalize only: a random crop does not act there
    assert not [m for m in _said(crop.apply_sample, _av(), stage="eval") if "beside the audio" in m]


# --- music #7: the format-op warning once ------------------------------------------------------------------------------

def test_format_op_warning_not_repeated_for_a_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    """(QA39 music #7) the recipe, then the recipe with to_mono in normalize (train's default): one warning."""
    monkeypatch.setattr(recipe_mod, "_STALE_WARNED", set())
    body = {"image": [{"op": "resize", "size": [64, 64], "side": "exact"}],
            "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]}
    first = [m for m in _said(load_recipe, body) if "format op" in m]
    again = [m for m in _said(load_recipe, {**body, "normalize": {"audio": [{"op": "to_mono"}]}}) if "format op" in m]
    assert len(first) == 1 and "audio[0] (to_mono)" in first[0] and not again
    other = [m for m in _said(load_recipe, {"audio": [{"op": "resample", "rate": 8000}]}) if "format op" in m]
    assert len(other) == 1  # another setting is another op: said


# --- music #6: no time_stretch: the hint names speed / pitch_shift, not time_shift ---------------------------------------

def test_time_stretch_names_the_alternatives() -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe({"audio": [{"op": "time_stretch", "p": 0.5}]})
    msg = str(err.value)
    assert "did you mean 'time_shift'" not in msg and "unknown audio op 'time_stretch'" in msg
    assert "`speed`" in msg and "pitch_shift" in msg and "TimeStretch" in msg


# --- ecommerce #9: the one-colour note names the op that did it --------------------------------------------------------

def test_blank_copy_note_names_a_colour_op() -> None:
    """(QA39 ecommerce #9) a brightness_contrast saturating an image is not blamed on crops / rotation."""
    note = copy_notes([("blank image", "k_aug0", 'image.brightness_contrast {"beta": 50.0}')], 4, 4, False)[0]
    assert "image.brightness_contrast" in note.split("):", 1)[1] and "brightness:" in note.split("):", 1)[1]
    assert "rotate limit" not in note and "rotated away" not in note
    both = copy_notes([("blank image", "k_aug0", 'image.hflip {}; image.brightness_contrast {"beta": 50.0}')], 4, 4,
                      False)[0]
    assert "image.hflip" not in both.split("):", 1)[1] and "rotate limit" not in both  # a flip keeps the content
    crop = copy_notes([("blank image", "k_aug0", 'image.random_crop {"x": 3}')], 4, 4, False)[0]
    assert "larger random_crop size" in crop and "brightness_contrast" not in crop


# --- lipreading #5: preview of a (T, H, W) video named as a target of a dataset without images ------------------------

def _video_ds(tmp_path: Path) -> Path:
    from mmdata.testing.media import long_audio_bytes

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "audio", "video", "label"])
        for i in range(4):
            k = f"k{i}"
            (raw / f"{k}.wav").write_bytes(long_audio_bytes(i, 2.0, 16000, fmt="wav"))
            np.save(raw / f"{k}.npy", rng.integers(0, 256, (20 + i, 8, 8)).astype(np.uint8))
            w.writerow([k, f"{k}.wav", f"{k}.npy", "A" if i % 2 else "B"])
    out = tmp_path / "ds"
    mmdata.shard(raw / "m.csv", out, columns={"audio": "audio", "video": "video", "label": "label"}, progress=False)
    return out


def test_preview_of_a_video_target_without_images_says_it_is_not_drawn(tmp_path: Path) -> None:
    from mmdata.augment.preview import preview_figure

    ds = _video_ds(tmp_path)
    rec = {"targets": {"video": "mask"}, "image": [{"op": "hflip"}], "audio": [{"op": "gain", "p": 1.0}]}
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fig = preview_figure(ds, rec, n=2, variants=1, notes=notes)
    said = [str(w.message) for w in got]
    assert any("fields not drawn: video" in m for m in said), said
    assert "overlaid" not in fig._suptitle.get_text()
