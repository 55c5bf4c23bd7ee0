"""consistent_hflip and a sample's other captions (QA 2026-12-03, a retrieval user): the op swapped left /
right in ``text`` only, so a second caption kept as a named text field (``k.caption_de.txt``, the route
the README gives for more captions) said "links" of an image flipped to the right, without a word.
``fields`` names the text fields to swap; the others are warned of once."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError
from mmdata.types import Sample, collate

PAIRS = [["left", "right"], ["links", "rechts"]]


def _shards(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    root.mkdir()
    rows = ["image,text,caption_de"]
    for i in range(4):
        a = np.zeros((8, 8, 3), np.uint8)
        a[:, :4] = 255  # white on the left
        Image.fromarray(a).save(root / f"{i}.png")
        (root / f"{i}.de.txt").write_text("weiß links", encoding="utf-8")
        rows.append(f"{i}.png,white on the left,{i}.de.txt")
    (root / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(root / "m.csv", tmp_path / "ds", columns={"caption_de": "caption_de"}, split="train=1.0",
                 progress=False)
    return tmp_path / "ds"


def test_named_captions_flip_with_the_image_when_listed(tmp_path: Path) -> None:
    ds = _shards(tmp_path)
    listed = {"sample": [{"op": "consistent_hflip", "p": 1.0, "fields": ["text", "caption_de.txt"], "pairs": PAIRS}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every text field is listed: nothing to warn of
        for b in mmdata.loader(ds, 4, recipe=listed, num_workers=2):
            assert set(b["text"]) == {"white on the right"} and set(b["caption_de.txt"]) == {"weiß rechts"}
            assert bool((b["image"][:, :, :, 4:] == 255).all())  # the white half is on the right now
    plain = {"sample": [{"op": "consistent_hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match=r"the named text field 'caption_de.txt' keeps its words while the image "
                                         r"flips; list it in the op's fields \(fields: \[text, caption_de.txt\]\)"):
        b = next(iter(mmdata.loader(ds, 4, recipe=plain)))
    assert b["text"] == ["white on the right"] * 4 and b["caption_de.txt"] == ["weiß links"] * 4


def test_the_batched_kernel_swaps_the_listed_fields_as_the_per_sample_one_does() -> None:
    image = torch.zeros(3, 6, 6, dtype=torch.uint8)
    image[:, :, :3] = 255
    samples = [Sample(f"k{i}", {"image": image, "text": "left of it", "caption_de.txt": "links davon"}) for i in range(3)]
    samples.append(Sample("k3", {"text": "no image, left stays", "caption_de.txt": "links"}))
    recipe = load_recipe({"sample": [{"op": "consistent_hflip", "p": 1.0, "fields": ["text", "caption_de.txt"],
                                      "pairs": PAIRS}]})
    batch = recipe.apply_batched(collate(samples))
    per_sample = [recipe.apply_sample(s) for s in samples]
    assert batch["caption_de.txt"] == [s["caption_de.txt"] for s in per_sample] == ["rechts davon"] * 3 + ["links"]
    assert batch["text"] == [s["text"] for s in per_sample]


@pytest.mark.parametrize("fields", [["image"], ["caption_de"], [], ["text", 3], ["text", "text"]])
def test_fields_that_are_no_text_fields_are_refused(fields: list) -> None:
    with pytest.raises(RecipeError, match=r"sample\[0\]\.fields"):
        load_recipe({"sample": [{"op": "consistent_hflip", "fields": fields}]})


def test_a_recipe_without_fields_keeps_its_canonical_form() -> None:
    recipe = load_recipe({"sample": [{"op": "consistent_hflip"}]})
    assert "fields" not in recipe.to_dict()["sample"][0]
    listed = load_recipe({"sample": [{"op": "consistent_hflip", "fields": ["text", "caption_de.txt"]}]})
    assert listed.to_dict()["sample"][0]["fields"] == ["text", "caption_de.txt"]
