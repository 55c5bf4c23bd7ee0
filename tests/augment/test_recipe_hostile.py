"""Hostile and mistaken recipes: every one is refused at load time with a RecipeError that names the
recipe key (or the file) and what was expected — never a traceback from deep inside, and never a
recipe that loads and then silently does something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError


def _alias_bomb(depth: int) -> str:
    """A small recipe whose one_of nesting expands to 9**depth ops through YAML aliases."""
    lines = ["image:", "  - &a0 {op: hflip}"]
    for i in range(1, depth + 1):
        lines.append(f"  - &a{i} {{op: one_of, ops: [{', '.join([f'*a{i - 1}'] * 9)}]}}")
    return "\n".join(lines) + "\n"


def _nested(depth: int) -> dict:
    step: dict = {"op": "hflip"}
    for _ in range(depth):
        step = {"op": "one_of", "ops": [step]}
    return {"image": [step]}


# -- 1: NaN and infinities ---------------------------------------------------------------------

@pytest.mark.parametrize("text,match", [
    ("image:\n  - {op: hflip, p: .nan}\n", r"image\[0\]\.p: nan is not a finite number"),
    ("batch:\n  - {op: mixgen, lam: .nan}\n", r"batch\[0\]\.lam: nan is not a finite number"),
    ("audio:\n  - {op: gain, min_db: .nan, max_db: 6}\n", r"audio\[0\]\.min_db: nan is not a finite number"),
    ("image:\n  - {op: random_resized_crop, scale: [.nan, 1.0]}\n", r"image\[0\]\.scale: nan is not a finite number"),
    ("image:\n  - {op: rotate, limit: -.inf}\n", r"image\[0\]\.limit: -inf is not a finite number"),
    ("audio:\n  - {op: resample, rate: .inf}\n", r"audio\[0\]\.rate: inf is not a finite number"),
    ("image:\n  - {op: cutout, num_holes: [1, .inf]}\n", r"image\[0\]\.num_holes: inf is not a finite number"),
    ("image:\n  - {op: random_crop, size: .inf}\n", r"image\[0\]\.size: inf is not a finite number"),
    ("image:\n  - {op: one_of, weights: [.inf, 1], ops: [{op: hflip}, {op: vflip}]}\n",
     r"image\[0\]\.weights\[0\]: inf is not a finite number"),
    ("image:\n  - {op: one_of, weights: [1, .nan], ops: [{op: hflip}, {op: vflip}]}\n",
     r"image\[0\]\.weights\[1\]: nan is not a finite number"),
])
def test_non_finite_numbers_are_refused_at_load(text: str, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        load_recipe(text)


# -- 2: an op name that is not a string --------------------------------------------------------

@pytest.mark.parametrize("name", [["hflip"], {"a": 1}, None, 3])
def test_op_name_must_be_a_string(name: object) -> None:
    with pytest.raises(RecipeError, match=r"image\[0\]\.op: expected an op name \(a string\)"):
        load_recipe({"image": [{"op": name}]})


def test_odd_keys_name_the_step() -> None:
    with pytest.raises(RecipeError, match=r"image\[0\]: unknown key\(s\) \['where'\]"):
        load_recipe({"image": [{"op": "hflip", "where": "x"}]})
    with pytest.raises(RecipeError, match=r"image\[0\]: unknown key\(s\) \[1\]"):
        load_recipe("image:\n  - {op: hflip, 1: 2}\n")
    with pytest.raises(RecipeError, match=r"unknown section\(s\) \[1, 'imgae'\]"):
        load_recipe("1: x\nimgae: [{op: hflip}]\n")


# -- 3: encodings ------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    "image:\n  - {op: hflip}\n".encode("utf-16"),
    b"# caf\xe9\nimage:\n  - {op: hflip}\n",
    b"image:\n  - {op: hflip, id: caf\xe9}\n",
], ids=["utf-16", "latin-1 comment", "latin-1 value"])
def test_recipe_file_that_is_not_utf8(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "r.yaml"
    f.write_bytes(data)
    with pytest.raises(RecipeError, match=r"recipe .*r\.yaml is not UTF-8 text"):
        load_recipe(f)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_bytes(b"\xef\xbb\xbfimage:\n  - {op: hflip}\n")
    assert load_recipe(f).to_dict() == {"seed": 0, "image": [{"op": "hflip", "p": 1.0}]}


# -- 4: nesting depth --------------------------------------------------------------------------

def test_deep_yaml_nesting_is_a_recipe_error() -> None:
    text = "image:\n  - " + "{op: one_of, ops: [" * 400 + "{op: hflip}" + "]}" * 400 + "\n"
    with pytest.raises(RecipeError, match="nested too deeply"):
        load_recipe(text)


def test_composite_nesting_is_capped_at_32() -> None:
    assert load_recipe(_nested(32)).to_dict()["image"][0]["op"] == "one_of"
    with pytest.raises(RecipeError, match=r"image\[0\](\.ops\[0\]){32}: one_of / some_of nested more than 32 deep"):
        load_recipe(_nested(33))


# -- 5: YAML alias bombs -----------------------------------------------------------------------

def test_alias_bomb_is_refused() -> None:
    text = _alias_bomb(6)
    assert len(text) < 600
    with pytest.raises(RecipeError, match=r"more than 100000 values once YAML aliases are expanded"):
        load_recipe(text)


def test_anchors_that_reuse_a_block_still_work() -> None:
    text = ("normalize:\n  image: &norm\n    - {op: to_rgb}\n    - {op: resize, size: 32}\n"
            "image:\n  - &flip {op: hflip, p: 0.5}\n  - {op: one_of, ops: [*flip, {<<: *flip, op: vflip}]}\n")
    d = load_recipe(text).to_dict()
    assert [s["op"] for s in d["normalize"]["image"]] == ["to_rgb", "resize"]
    assert [c["op"] for c in d["image"][1]["ops"]] == ["hflip", "vflip"]
    assert d["image"][1]["ops"][1]["p"] == 0.5


# -- 6: duplicate keys -------------------------------------------------------------------------

@pytest.mark.parametrize("text,match", [
    ("image:\n  - {op: hflip}\nimage:\n  - {op: vflip}\n", r"duplicate key 'image' on line 3"),
    ("image:\n  - {op: hflip, p: 0.1, p: 0.9}\n", r"duplicate key 'p' on line 2"),
    ("normalize:\n  audio: [{op: to_mono}]\n  audio: [{op: logmel}]\n", r"duplicate key 'audio' on line 3"),
])
def test_duplicate_keys_are_refused(text: str, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        load_recipe(text)


def test_python_tags_stay_refused() -> None:
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe("seed: !!python/object/apply:os.getpid []\n")


# -- 7: spec ops need a logmel first -----------------------------------------------------------

@pytest.mark.parametrize("steps,match", [
    ([{"op": "freq_mask"}], r"audio\[0\]: freq_mask reads 'spec'"),
    ([{"op": "gain"}, {"op": "time_mask", "target": "spec"}], r"audio\[1\]: time_mask reads 'spec'"),
    ([{"op": "freq_mask"}, {"op": "logmel"}], r"audio\[0\]: freq_mask reads 'spec'"),
    ([{"op": "some_of", "ops": [{"op": "gain"}, {"op": "freq_mask"}]}], r"audio\[0\]\.ops\[1\]: freq_mask reads 'spec'"),
])
def test_spec_ops_without_a_logmel_before_them(steps: list, match: str) -> None:
    with pytest.raises(RecipeError, match=match + r", .*a logmel op must come before it"):
        load_recipe({"audio": steps})


@pytest.mark.parametrize("recipe", [
    {"audio": [{"op": "logmel"}, {"op": "freq_mask"}, {"op": "time_mask", "target": "spec"}]},
    {"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "freq_mask"}]},
    {"audio": [{"op": "one_of", "ops": [{"op": "logmel"}, {"op": "gain"}]}, {"op": "freq_mask"}]},
    {"audio": [{"op": "some_of", "ops": [{"op": "logmel"}, {"op": "time_mask", "target": "spec"}]}]},
    {"audio": [{"op": "time_mask"}]},  # target: wave
])
def test_spec_ops_after_a_logmel_load(recipe: dict) -> None:
    load_recipe(recipe)


# -- 8: no lenient coercions -------------------------------------------------------------------

FLIPS = [{"op": "hflip"}, {"op": "vflip"}]


@pytest.mark.parametrize("step,match", [
    ({"op": "random_resized_crop", "ratio": "15"}, r"image\[0\]\.ratio: expected \[min, max\], got '15'"),
    ({"op": "random_resized_crop", "scale": [True, 1.0]}, r"image\[0\]\.scale: expected \[min, max\]"),
    ({"op": "hflip", "p": True}, r"image\[0\]\.p: expected number, got True"),
    ({"op": "random_crop", "size": 3.5}, r"image\[0\]\.size: expected int or \[height, width\], got 3.5"),
    ({"op": "one_of", "weights": "12", "ops": FLIPS}, r"image\[0\]\.weights: 1 weights for 2 ops"),
    ({"op": "one_of", "weights": ["a", 1], "ops": FLIPS}, r"image\[0\]\.weights\[0\]: expected a number, got 'a'"),
    ({"op": "one_of", "weights": [True, 1], "ops": FLIPS}, r"image\[0\]\.weights\[0\]: expected a number, got True"),
    ({"op": "one_of", "weights": {"a": 1, "b": 2}, "ops": FLIPS}, r"image\[0\]\.weights: expected a list"),
])
def test_mistaken_values_are_not_coerced(step: dict, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        load_recipe({"image": [step]})


def test_weights_are_numbers_in_the_canonical_form() -> None:
    r = load_recipe("image:\n  - {op: one_of, weights: [1, 2], ops: [{op: hflip}, {op: vflip}]}\n")
    assert r.to_dict()["image"][0]["weights"] == [1.0, 2.0]
    assert "weights: [1.0, 2.0]" in r.to_yaml()
    assert load_recipe(r.to_yaml()).to_yaml() == r.to_yaml()


def test_a_bare_string_is_a_one_element_list() -> None:
    r = load_recipe({"sample": [{"op": "modality_dropout", "modalities": "image"}]})
    assert r.to_dict()["sample"][0]["modalities"] == ["image"]
    with pytest.raises(RecipeError, match=r"sample\[0\]\.modalities: \['imgae'\] not allowed"):
        load_recipe({"sample": [{"op": "modality_dropout", "modalities": "imgae"}]})


# -- 9: recipe paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["r.json", "r.YAML", "recipe"])
def test_any_existing_file_is_read_as_a_recipe(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / name
    json = '{"seed": 4, "image": [{"op": "hflip", "p": 0.5}]}\n'
    f.write_text(json if name.endswith("json") else "seed: 4\nimage:\n  - {op: hflip, p: 0.5}\n")
    for source in (f, str(f)):
        assert load_recipe(source).to_dict() == {"seed": 4, "image": [{"op": "hflip", "p": 0.5}]}
    monkeypatch.chdir(tmp_path)
    assert load_recipe(name).seed == 4


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    for source in (tmp_path, str(tmp_path)):
        with pytest.raises(RecipeError, match=r"is a folder, not a recipe file"):
            load_recipe(source)


def test_missing_recipe_files(tmp_path: Path) -> None:
    for source in (tmp_path / "nope.yaml", str(tmp_path / "nope.json"), str(tmp_path / "nope")):
        with pytest.raises(RecipeError, match=r"recipe file .*nope.* not found"):
            load_recipe(source)


def test_inline_yaml_strings_still_work() -> None:
    assert load_recipe("seed: 2\nimage:\n  - {op: hflip}\n").seed == 2
    assert load_recipe("{seed: 3, image: [{op: vflip}]}").seed == 3
    assert load_recipe("{seed: 5, text: [" + ", ".join(["{op: token_mask}"] * 40) + "]}").seed == 5  # longer than a file name may be


def test_a_name_listed_twice_is_refused() -> None:
    """`modalities: [image, image, image]` with `keep_at_least: 3` dropped the image of an image + audio +
    text sample, leaving 2 (the log said `drop: ['image', 'image']`): each name once (QA 2026-12-03)."""
    with pytest.raises(RecipeError, match=r"sample\[0\]\.modalities: \['image'\] given more than once"):
        load_recipe({"sample": [{"op": "modality_dropout", "modalities": ["image", "image", "image"],
                                 "keep_at_least": 3, "p_drop": 1.0}]})


def test_balance_seed_is_no_boolean() -> None:
    with pytest.raises(RecipeError, match=r"balance\.seed: expected an integer, got True"):
        load_recipe({"balance": {"by": "label", "seed": True}})


def test_a_misspelt_op_or_key_gets_the_closest_names() -> None:
    with pytest.raises(RecipeError, match=r"unknown image op 'hflipp'; did you mean 'hflip'"):
        load_recipe({"image": [{"op": "hflipp"}]})
    with pytest.raises(RecipeError, match=r"unknown key\(s\) \['sze'\]; did you mean 'size'\? 'cutout' accepts"):
        load_recipe({"image": [{"op": "cutout", "sze": 3}]})
    with pytest.raises(RecipeError, match=r"unknown key\(s\) \['qqq'\]; 'cutout' accepts"):  # nothing close
        load_recipe({"image": [{"op": "cutout", "qqq": 3}]})


def test_some_of_cannot_ask_for_more_children_than_it_has() -> None:
    """`n: [3, 5]` with 2 ops was clamped to 2 without a word (QA 2026-12-03)."""
    with pytest.raises(RecipeError, match=r"text\[0\]\.n: up to 5 distinct children asked for, but ops has 2"):
        load_recipe({"text": [{"op": "some_of", "n": [3, 5], "ops": [{"op": "word_crop"}, {"op": "word_swap"}]}]})
    load_recipe({"text": [{"op": "some_of", "n": [1, 2], "ops": [{"op": "word_crop"}, {"op": "word_swap"}]}]})
