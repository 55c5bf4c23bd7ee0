"""QA round 37, third review of the augment fixes (0a83aab): real files, sharded and augmented.

#3 a NoDerivatives field the recipe copies as read (image_basic beside a depth array) was called adapted, in the
   warning and the card; a second pass credited add-modality --license for a licence carried by augmented_from.
#7 the side-class note was given for consistent_hflip / hflip at p: 0, which never flip.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.augment.recipe import changed_fields, label_side_notes

FLIP = {"image": [{"op": "hflip", "p": 1.0}]}


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def _nd_depth(tmp: Path) -> Path:
    """A CC-BY-4.0 image dataset with a CC-BY-ND-4.0 depth field (add-modality --license), arrays of the image's size."""
    (tmp / "raw" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp / "raw" / "cat" / f"c{i}.png")
    mmdata.shard(tmp / "raw", tmp / "ds", license="CC-BY-4.0", layout="columns", progress=False)
    dep = tmp / "dep"
    dep.mkdir()
    for r in mmdata.open_dataset(tmp / "ds"):
        np.save(dep / f"{r.key}.depth.npy", np.arange(64, dtype=np.float32).reshape(8, 8))
    mmdata.add_modality(tmp / "ds", "depth", dep, license="CC-BY-ND-4.0")
    return tmp / "ds"


def _augment(src: Path, out: Path, recipe: dict) -> list[str]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        augment_dataset(src, out, recipe, progress=False)
    return [str(w.message) for w in rec if "NoDerivatives" in str(w.message)]


def test_a_no_derivatives_field_copied_as_read_is_not_called_adapted(tmp_path: Path) -> None:
    ds = _nd_depth(tmp_path)
    nd = _augment(ds, tmp_path / "aug", FLIP)
    assert len(nd) == 1, nd
    assert nd[0].startswith("field 'depth' of source dataset ds is licensed CC-BY-ND-4.0 (the field's own licence, "
                            "modalities.depth.license: add-modality --license)")
    assert "copied unchanged (still under ND: sharing copies is allowed, adaptations not)" in nd[0]
    assert "adaptations. Use the output" not in nd[0] and "do not publish" not in nd[0]
    card = _card(tmp_path / "aug")
    assert "field 'depth': CC-BY-ND-4.0, copied unchanged" in card["license"] and "adapted" not in card["license"]
    assert card["license"].startswith("CC-BY-4.0, except ")
    assert card["augmentation"]["augmented_from"]["field_licenses"] == {"depth": "CC-BY-ND-4.0"}
    # the depth members are the source's, as the card says
    a = {r.key: r for r in mmdata.open_dataset(ds)}
    for r in mmdata.open_dataset(tmp_path / "aug"):
        src = next(v for k, v in a.items() if r.key.startswith(k))
        assert np.array_equal(np.asarray(r["depth"]), np.asarray(src["depth"]))
    # a second pass: the licence came from augmented_from, and is said so (no add-modality)
    nd2 = _augment(tmp_path / "aug", tmp_path / "aug2", FLIP)
    assert len(nd2) == 1 and "add-modality" not in nd2[0], nd2
    assert nd2[0].startswith("field 'depth' of source dataset aug is licensed CC-BY-ND-4.0 (its source's field "
                             "licence, augmentation.augmented_from.field_licenses)")
    card2 = _card(tmp_path / "aug2")
    assert card2["augmentation"]["augmented_from"]["license"] == "CC-BY-4.0"
    assert card2["license"] == card["license"]


def test_a_no_derivatives_field_the_recipe_moves_is_adapted(tmp_path: Path) -> None:
    ds = _nd_depth(tmp_path)
    moved = {**FLIP, "targets": {"depth": "mask"}}
    nd = _augment(ds, tmp_path / "aug", moved)
    assert len(nd) == 1 and "augmented copies are adaptations" in nd[0] and "copied unchanged" not in nd[0], nd
    card = _card(tmp_path / "aug")
    assert "field 'depth': adapted from CC-BY-ND-4.0 material" in card["license"]
    nd2 = _augment(tmp_path / "aug", tmp_path / "aug2", moved)
    assert nd2[0].startswith("field 'depth' of source dataset aug holds material under CC-BY-ND-4.0 (its source's "
                             "field licence, augmentation.augmented_from.field_licenses)"), nd2
    card2 = _card(tmp_path / "aug2")
    assert card2["augmentation"]["augmented_from"]["license"] == "CC-BY-4.0"
    assert card2["license"] == card["license"]
    # the flip at p: 0 never moves it: copied
    nd0 = _augment(ds, tmp_path / "aug0", {"image": [{"op": "hflip", "p": 0.0}], "targets": {"depth": "mask"}})
    assert "copied unchanged" in nd0[0]


def test_changed_fields_follow_the_ops() -> None:
    assert changed_fields(FLIP) == {"image"}
    assert changed_fields({"audio": [{"op": "gain"}], "text": [{"op": "word_delete"}]}) == {"audio", "text"}
    # a colour op changes an image target, not a mask; a pixel move both
    assert changed_fields({"targets": {"seg.png": "mask", "f1.png": "image"},
                           "image": [{"op": "brightness_contrast"}]}) == {"image", "f1.png"}
    assert changed_fields({"targets": {"seg.png": "mask"}, "sample": [{"op": "consistent_hflip"}]}) >= {"image", "seg.png"}
    assert changed_fields({"sample": [{"op": "modality_dropout"}]}) == frozenset()
    assert changed_fields({"image": [{"op": "one_of", "p": 0.0, "ops": [{"op": "hflip"}]}]}) == frozenset()


@pytest.mark.parametrize("recipe", [{"sample": [{"op": "consistent_hflip", "p": 0.0}]},
                                    {"image": [{"op": "hflip", "p": 0.0}]},
                                    {"image": [{"op": "one_of", "p": 0.0, "ops": [{"op": "hflip"}]}]}])
def test_a_flip_that_never_fires_gives_no_side_note(recipe: dict) -> None:
    assert label_side_notes(recipe, ["LEFT", "RIGHT", "STOP"]) == []
    live = json.loads(json.dumps(recipe).replace('"p": 0.0', '"p": 0.5'))
    assert len(label_side_notes(live, ["LEFT", "RIGHT", "STOP"])) == 1


def test_a_field_adapted_by_an_earlier_pass_stays_adapted_when_copied(tmp_path: Path) -> None:
    ds = _nd_depth(tmp_path)
    _augment(ds, tmp_path / "aug", {**FLIP, "targets": {"depth": "mask"}})
    nd = _augment(tmp_path / "aug", tmp_path / "aug2", FLIP)  # depth copied now, but it is the first pass's adaptation
    assert len(nd) == 1 and "copied unchanged" not in nd[0] and "holds material under CC-BY-ND-4.0" in nd[0], nd
    assert "field 'depth': adapted from CC-BY-ND-4.0 material" in _card(tmp_path / "aug2")["license"]


def test_a_fields_attribution_reaches_the_augmented_card(tmp_path: Path) -> None:
    """add-modality --attribution on a field: the augment output's card keeps it on that field (the writer carries
    ``augmented_from.field_attributions`` as it carries ``field_licenses``)."""
    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 30 * i + 100 * (c == "b"), "uint8")).save(raw / c / f"{c}{i}.png")
    mmdata.shard(raw, tmp_path / "ds", layout="columns", split={"train": 1.0}, progress=False)
    dep = tmp_path / "dep"
    for c in ("a", "b"):
        (dep / c).mkdir(parents=True)
        for i in range(3):
            np.save(dep / c / f"{c}{i}.npy", np.ones((8, 8), "float32"))
    mmdata.add_modality(tmp_path / "ds", "depth", dep, license="CC-BY-NC-4.0", attribution="Lab X, 2026")
    augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert card["augmentation"]["augmented_from"]["field_attributions"] == {"depth": "Lab X, 2026"}
    assert card["modalities"]["depth"]["attribution"] == "Lab X, 2026"
    assert card["modalities"]["depth"]["license"] == "CC-BY-NC-4.0"
