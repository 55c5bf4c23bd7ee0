"""A format op at ``p`` 1 in a random section (known limit of the docs QA): ``audio: [{op: resample, p: 1,
rate: 16000}]`` trained at 16 kHz while val / test (the normalize stage only) kept the stored rates, without
a word. It is warned when the recipe loads, naming the op's key and the remedy; not when normalize has the
op too, nor for ``logmel`` (it adds ``spec`` after the waveform ops), nor below p 1."""

from __future__ import annotations

import glob
import warnings

import pytest

import mmdata
from mmdata.augment import recipe as recipe_mod
from mmdata.augment.recipe import load_recipe
from mmdata.testing import make_sample_folder


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipe_mod, "_STALE_WARNED", set())  # the warning is once per process


def _format_warnings(source: object) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        load_recipe(source)
    return [str(w.message) for w in got if "format op" in str(w.message)]


def test_a_format_op_in_a_random_section_is_warned_naming_its_key() -> None:
    got = _format_warnings({"audio": [{"op": "gain", "p": 0.5}, {"op": "resample", "p": 1.0, "rate": 16000}]})
    assert len(got) == 1 and got[0].startswith("audio[1] (resample): a format op at p 1 in a random section")
    assert "move it to normalize (normalize.audio: ...)" in got[0]
    two = _format_warnings({"image": [{"op": "resize", "p": 1.0, "size": 32}], "text": [{"op": "max_tokens", "n": 8}]})
    assert len(two) == 1 and two[0].startswith("image[0] (resize), text[0] (max_tokens):") and "move them" in two[0]


@pytest.mark.parametrize("source", [
    {"normalize": {"audio": [{"op": "resample", "rate": 16000}]}, "audio": [{"op": "resample", "p": 1, "rate": 8000}]},
    {"normalize": {"image": [{"op": "resize", "size": 64}]}, "image": [{"op": "resize", "p": 1, "size": 32}]},
    {"audio": [{"op": "one_of", "p": 1.0, "ops": [{"op": "resample", "p": 1.0, "rate": 8000}]}]},
])
def test_another_setting_than_normalizes_or_a_nested_format_op_is_warned(source: object) -> None:
    """QA on the fix: only the op's name was compared with normalize's (training at 8 kHz, evaluation at 16 kHz
    passed), and ops inside one_of / some_of were not looked at."""
    assert len(_format_warnings(source)) == 1


@pytest.mark.parametrize("source", [
    {"normalize": {"audio": [{"op": "resample", "rate": 16000}]}, "audio": [{"op": "resample", "p": 1, "rate": 16000}]},
    {"image": [{"op": "resize", "p": 0.5, "size": 32}]},
    {"audio": [{"op": "logmel", "p": 1.0}, {"op": "freq_mask", "p": 0.5, "max_width": 4}]},
    *sorted(set(glob.glob("recipes/*.yaml")) - set(glob.glob("recipes/ablations/*.yaml"))),
])
def test_no_warning_where_evaluation_gets_the_same_format(source: object) -> None:
    assert _format_warnings(source) == []


def test_the_warning_says_what_evaluation_would_see(tmp_path) -> None:  # noqa: ANN001
    """What the warning is about, measured: the train stream at 16 kHz, the eval stream at the stored rate."""
    data = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False), data, split={"train": 1.0}, progress=False)
    recipe = {"audio": [{"op": "resample", "p": 1.0, "rate": 16000}]}
    with pytest.warns(UserWarning, match="format op at p 1"):
        train = next(iter(mmdata.loader(data, 4, recipe=recipe, shuffle=False)))
    evaluation = next(iter(mmdata.loader(data, 4, recipe=recipe, shuffle=False, stage="eval")))
    assert train.sample_rate == 16000 and evaluation.sample_rate == 8000  # the folder holds 8 kHz clips
