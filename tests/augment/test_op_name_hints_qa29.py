"""The unknown-op error's suggestions (QA29 augsem #4): ``HFlip`` suggested ``vflip`` before ``hflip``, and the
reference libraries' names (``HorizontalFlip``, ``RandomHorizontalFlip``, ``CoarseDropout``, ``AddGaussianSNR``)
got no suggestion at all."""

from __future__ import annotations

import pytest

from mmdata.augment.base import FOREIGN_OPS, foreign_hint, op_names
from mmdata.augment.recipe import load_recipe
from mmdata.checks import did_you_mean
from mmdata.errors import RecipeError


def _error(section: str, name: str) -> str:
    with pytest.raises(RecipeError) as exc:
        load_recipe({section: [{"op": name}]})
    return str(exc.value)


def test_a_name_that_differs_only_in_case_is_the_suggestion() -> None:
    assert did_you_mean("HFlip", ["vflip", "hflip", "rotate"]) == "; did you mean 'hflip'?"
    assert "did you mean 'hflip'?" in _error("image", "HFlip")
    assert did_you_mean("sze", ["size", "fill"]) == "; did you mean 'size'?"  # as before


@pytest.mark.parametrize(("section", "name", "lib", "op"), [
    ("image", "HorizontalFlip", "albumentations", "hflip"),
    ("image", "RandomHorizontalFlip", "torchvision", "hflip"),
    ("image", "CoarseDropout", "albumentations", "cutout"),
    ("image", "RandomErasing", "torchvision", "cutout"),
    ("image", "VerticalFlip", "albumentations", "vflip"),
    ("image", "randomrotation", "torchvision", "rotate"),
    ("audio", "AddGaussianSNR", "audiomentations", "noise"),
    ("audio", "ApplyImpulseResponse", "audiomentations", "reverb"),
    ("audio", "PolarityInversion", "audiomentations", "polarity"),
    ("audio", "Shift", "audiomentations", "time_shift"),
])
def test_other_libraries_names_say_which_op_they_are_here(section: str, name: str, lib: str, op: str) -> None:
    msg = _error(section, name)
    assert msg.startswith(f"{section}[0]: unknown {section} op {name!r}; ") and lib in msg, msg
    assert f"is {op!r} here" in msg and "allowed:" in msg, msg


def test_a_name_of_another_section_says_where_it_goes() -> None:
    msg = _error("image", "AddGaussianSNR")
    assert "'noise'" in msg and "audio:" in msg, msg


def test_the_table_names_only_ops_that_exist() -> None:
    for (section, name), (op, note) in FOREIGN_OPS.items():
        assert op == "" or op in op_names(section), (name, section, op)
        assert note and name not in op_names(section), name


@pytest.mark.parametrize(("section", "name", "says"), [
    ("audio", "RandomCrop", "is 'random_crop' here;"),  # was: an image op (review r3 R4)
    ("image", "AddGaussianNoise", "is 'gaussian_noise' here;"),  # was: audio's noise
    ("audio", "GaussNoise", "is 'noise' here;"),  # was: image's gaussian_noise
    ("image", "Shift", "no image op here translates"),  # was: audio's time_shift
    ("audio", "TimeMasking", "target: spec"),
    ("image", "ToGray", "channels: 3"),
    ("audio", "Vol", "in dB"),
])
def test_a_hint_prefers_the_op_of_the_section_it_was_written_in(section: str, name: str, says: str) -> None:
    msg = _error(section, name).split(" allowed:")[0]
    assert says in msg and "section)" not in msg, msg


def test_a_section_with_a_close_op_is_never_sent_elsewhere() -> None:
    assert foreign_hint("text", "AddGaussianSNR").endswith("(put it in the audio: section);")
    assert foreign_hint("text", "AddGaussianNoise").endswith("(put it in the audio: section);")  # not image's
    assert foreign_hint("text", "Shift").endswith("(put it in the audio: section);")
    assert foreign_hint("audio", "Resample") == "" and "did you mean 'resample'" in _error("audio", "Resample")
