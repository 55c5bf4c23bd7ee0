"""The unknown-op error's suggestions (QA29 augsem #4): ``HFlip`` suggested ``vflip`` before ``hflip``, and the
reference libraries' names (``HorizontalFlip``, ``RandomHorizontalFlip``, ``CoarseDropout``, ``AddGaussianSNR``)
got no suggestion at all."""

from __future__ import annotations

import pytest

from mmdata.augment.base import FOREIGN_OPS, op_names
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
    for name, (section, op, lib) in FOREIGN_OPS.items():
        assert op in op_names(section), (name, section, op)
        assert lib and name not in op_names(section), name
