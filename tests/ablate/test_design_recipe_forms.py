"""QA42 notebook #3: an ablation's ``design.recipe`` takes what ``train()`` and ``mmdata.loader()`` take: a shipped
recipe's name and a :class:`~mmdata.augment.recipe.Recipe`; a name that is neither says where it looked and lists
the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
import mmdata.ablate
from mmdata.errors import RecipeError
from mmdata.recipes_path import shipped_recipes


def _ablation(tmp_path: Path, recipe: object) -> object:
    base = {"dataset": {"path": str(tmp_path / "ds")}, "trainer": {"epochs": 1}, "seeds": 2}
    return mmdata.ablate.load_ablation({**base, "design": {"mode": "leave_one_out", "recipe": recipe}})


def _arms(ablation: object) -> list[tuple[str, object]]:
    return [(a.name, a.recipe) for a in ablation.arms]  # type: ignore[attr-defined]


def test_a_shipped_name_and_a_recipe_object_give_the_arms_of_its_dict(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    want = _arms(_ablation(tmp_path, mmdata.load_recipe("messy_folder").to_dict()))
    assert len(want) > 2
    for given in ("messy_folder", "messy_folder.yaml", mmdata.load_recipe("messy_folder")):
        assert _arms(_ablation(tmp_path, given)) == want, given
    # a file of that name in the working directory is the one read, as before
    (tmp_path / "messy_folder.yaml").write_text("image:\n  - op: hflip\n", encoding="utf-8")
    assert [name for name, _ in _arms(_ablation(tmp_path, "messy_folder.yaml"))] != [name for name, _ in want]


def test_a_recipe_name_not_found_says_where_it_looked_and_lists_the_shipped_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError) as err:
        _ablation(tmp_path, "messy_foldr")
    msg = str(err.value)
    assert msg.startswith("design.recipe: recipe file 'messy_foldr' not found in the working directory"), msg
    assert str(tmp_path) in msg and "messy_folder" in msg and all(n in msg for n in shipped_recipes()), msg


def test_a_shipped_recipe_taken_for_a_missing_file_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # a user's own avdigits.yaml that is not in the folder: mmdata's copy is used, and the log says so
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO", logger="mmdata.ablate.design"):
        _ablation(tmp_path, "avdigits.yaml")
    said = [r.getMessage() for r in caplog.records if r.name == "mmdata.ablate.design"]
    assert len(said) == 1 and said[0].startswith("design.recipe: no file avdigits.yaml in the working directory: "
                                                 "using the recipe that ships with mmdata ("), said
    assert said[0].endswith("avdigits.yaml)"), said
    caplog.clear()
    (tmp_path / "avdigits.yaml").write_text("image:\n  - op: hflip\n", encoding="utf-8")
    with caplog.at_level("INFO", logger="mmdata.ablate.design"):
        _ablation(tmp_path, "avdigits.yaml")  # the folder's file: no note
    assert not [r for r in caplog.records if r.name == "mmdata.ablate.design"]
