"""QA round 37 review of the augment fixes (58ecd20): real files, sharded and augmented.

#1 a field under CC-BY-ND-4.0 (add-modality --license) in a CC-BY-4.0 dataset: no warning, its licence dropped.
#2 the keypoint warning named an (H, W, 2) flow map and an (H, W, 3) map as coordinates, and said so as a fact.
#3 the batched path counted the batch axis: per-sample (4,) boxes became (4, 4) "of sample 'k0'".
#4 side-class notes on text-only data; 'Right-Of-Way', 'all_right' flagged; 'TurnLeft' missed.
#5 the side-class warning never reached train / ablate.
#6 a second pass's licence was derived_license's sentence; the ND pattern matched "nd-weather" and missed "CCBYND".
#7 dataset_image_fields duplicated offline._image_fields.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset, no_derivatives
from mmdata.augment.recipe import label_side_notes, load_recipe, point_arrays
from mmdata.types import Sample, collate

FLIP = {"image": [{"op": "hflip", "p": 1.0}]}


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def _images(raw: Path, classes: tuple[str, ...] = ("cat",), n: int = 3) -> None:
    for c in classes:
        (raw / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(raw / c / f"{c}{i}.png")


# -- #1 and #6: licences -----------------------------------------------------------------------------------------
def test_a_no_derivatives_field_is_warned_of_and_its_licence_kept(tmp_path: Path) -> None:
    _images(tmp_path / "raw")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", license="CC-BY-4.0", layout="columns", progress=False)
    dep = tmp_path / "dep"
    dep.mkdir()
    for r in mmdata.open_dataset(tmp_path / "ds"):
        np.save(dep / f"{r.key}.depth.npy", np.zeros((4, 4), np.float32))
    mmdata.add_modality(tmp_path / "ds", "depth", dep, license="CC-BY-ND-4.0")
    with pytest.warns(UserWarning, match=r"field 'depth' of source dataset ds is licensed CC-BY-ND-4.0 .*NoDerivatives"):
        augment_dataset(tmp_path / "ds", tmp_path / "aug", FLIP, progress=False)
    card = _card(tmp_path / "aug")
    src = card["augmentation"]["augmented_from"]
    assert src["license"] == "CC-BY-4.0" and src["field_licenses"] == {"depth": "CC-BY-ND-4.0"}
    # FLIP leaves depth as read: copied unchanged, not adapted (QA37 third round)
    assert card["license"] != "CC-BY-4.0" and "field 'depth': CC-BY-ND-4.0, copied unchanged" in card["license"]
    assert card["modalities"]["depth"]["license"] == "CC-BY-ND-4.0"  # the field keeps its own licence
    # a second pass: the ids stay ids, and the field is still warned of
    with pytest.warns(UserWarning, match=r"field 'depth' of source dataset aug is licensed CC-BY-ND-4.0") as rec:
        augment_dataset(tmp_path / "aug", tmp_path / "aug2", FLIP, progress=False)
    assert not any(str(w.message).startswith("source dataset aug is licensed") for w in rec)
    card2 = _card(tmp_path / "aug2")
    assert card2["augmentation"]["augmented_from"]["license"] == "CC-BY-4.0"
    assert card2["augmentation"]["augmented_from"]["field_licenses"] == {"depth": "CC-BY-ND-4.0"}
    assert card2["license"] == card["license"]


def test_a_second_pass_keeps_the_licence_id(tmp_path: Path) -> None:
    _images(tmp_path / "raw")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", license="CC-BY-ND-4.0", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        augment_dataset(tmp_path / "ds", tmp_path / "aug", FLIP, progress=False)
    with pytest.warns(UserWarning, match=r"source dataset aug holds material under CC-BY-ND-4.0 \(its source's "
                                         r"licence\), a NoDerivatives licence") as rec:
        augment_dataset(tmp_path / "aug", tmp_path / "aug2", FLIP, progress=False)
    assert not any("licensed adapted from" in str(w.message) for w in rec)
    card = _card(tmp_path / "aug2")
    assert card["augmentation"]["augmented_from"]["license"] == "CC-BY-ND-4.0"
    assert card["license"] == _card(tmp_path / "aug")["license"]


@pytest.mark.parametrize("text,nd", [("CC-BY-ND-4.0", True), ("CC BY-NC-ND 3.0", True), ("CCBYND", True),
                                     ("cc_by_nd_4_0", True), ("Attribution-NoDerivs 3.0", True),
                                     ("Attribution-NonCommercial-NoDerivatives 4.0", True),
                                     ("nd-weather licence: CC-BY-4.0", False),
                                     ("There is no derivative restriction", False), ("CC-BY-SA-4.0", False),
                                     ("2nd edition, CC0", False), ("Apache-2.0 and MIT", False)])
def test_no_derivatives_pattern(text: str, nd: bool) -> None:
    assert no_derivatives(text) is nd


# -- #2 and #3: keypoint-like arrays -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,flagged", [((64, 48, 2), False), ((64, 48, 3), False), ((32, 24, 3), False),
                                           ((200, 6), False), ((9, 75, 3), True), ((5, 4), True), ((17, 2), True)])
def test_point_arrays_leave_out_per_pixel_maps(shape: tuple[int, ...], flagged: bool) -> None:
    assert bool(point_arrays({"image": torch.zeros(3, 64, 48), "x": np.zeros(shape)})) is flagged


def test_keypoint_warning_is_conditional_and_flow_maps_are_not_named(tmp_path: Path) -> None:
    sample = Sample("k0", {"image": torch.zeros(3, 16, 12, dtype=torch.uint8), "flow": np.zeros((16, 12, 2), "float32"),
                           "imu": np.zeros((50, 3), "float32")})
    with pytest.warns(UserWarning) as rec:
        load_recipe(FLIP).apply_sample(sample)
    said = [str(w.message) for w in rec if "array field" in str(w.message)]
    assert len(said) == 1 and "'imu' (50, 3)" in said[0] and "'flow'" not in said[0]
    assert "if it holds x, y coordinates" in said[0] and "Other arrays (sensor readings, embeddings) need nothing" in said[0]


def test_batched_path_names_sample_shapes_as_the_per_sample_path_does() -> None:
    def samples(extra: dict) -> list[Sample]:
        return [Sample(f"k{i}", {"image": torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8), **extra}) for i in range(4)]

    flat = {"bbox": np.array([1., 2., 5., 6.], "float32"), "rgb_mean": np.zeros(3, "float32")}
    for path in ("sample", "batch"):
        r = load_recipe(FLIP)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            if path == "sample":
                for s in samples(flat):
                    r.apply_sample(s)
            else:
                r.apply_batched(collate(samples(flat)))
        assert not [w for w in rec if "array field" in str(w.message)], path
    r = load_recipe(FLIP)
    with pytest.warns(UserWarning, match=r"array field 'pose' \(7, 5, 3\) \(sample 'k0'\)"):
        r.apply_batched(collate(samples({"pose": np.zeros((7, 5, 3), "float32")})))


# -- #4 and #5: class names that name a side ---------------------------------------------------------------------
def test_side_classes_words() -> None:
    from mmdata.augment.cross import side_classes

    assert side_classes(["Right-Of-Way", "right_of_way", "all_right", "bright", "upright", "copyright"]) == []
    assert side_classes(["TurnLeft", "turn_left", "LEFT", "Left Hand"]) == [
        ("TurnLeft", "TurnRight"), ("turn_left", "turn_right"), ("LEFT", "RIGHT"), ("Left Hand", "Right Hand")]
    assert label_side_notes({"image": [{"op": "hflip"}]}, ["right_of_way", "yield"]) == []


def test_no_side_note_on_text_only_data(tmp_path: Path) -> None:
    for c in ("LEFT", "RIGHT"):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "raw" / c / f"{c}{i}.txt").write_text(f"go {c.lower()}")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        augment_dataset(tmp_path / "ds", tmp_path / "aug", {"sample": [{"op": "consistent_hflip", "p": 1.0}]},
                        progress=False)
    said = [str(w.message) for w in rec]
    assert any("has no image to flip" in m for m in said)
    assert not any("never changes the label" in m for m in said)
    assert label_side_notes({"image": [{"op": "hflip"}]}, ["LEFT"], ["text"]) == []
    assert len(label_side_notes({"image": [{"op": "hflip"}]}, ["LEFT"], ["image", "text"])) == 1


def test_train_warns_of_side_class_names(tmp_path: Path) -> None:
    from mmdata.train import train

    for j, c in enumerate(("LEFT", "RIGHT")):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(4):
            img = np.random.default_rng(10 * j + i).integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "raw" / c / f"{c}{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", split={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = train(tmp_path / "ds", recipe=FLIP, epochs=1, batch_size=4, out=tmp_path / "run",
                        eval_robustness=False)
    said = metrics.get("warnings") or []
    assert any("hflip) mirrors the image but never changes the label" in w and "LEFT -> RIGHT" in w for w in said), said
