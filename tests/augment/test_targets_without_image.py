"""A sample whose camera frame dropped out keeps its targets (QA round 35 robotics #8): ``mmdata augment`` with
``targets: {depth.png: mask, right.png: image}`` used to leave out the depth map and the right-camera frame of
every sample without an RGB image (one named, none counted). With no image nothing moves, so nothing can
misalign: the targets are kept as stored, unmoved, by the per-sample path (workers, ``mmdata augment``) and the
batched path (``augment_on="device"``) alike, with one warning per recipe that says so. A dropped image
(``modality_dropout``) still takes its targets along. Real PNGs (16-bit depth), a manifest, shards, DataLoader
workers, ``augment_dataset``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample, collate

RECIPE = {"seed": 0, "targets": {"depth.png": "mask", "right.png": "image"}, "image": [{"op": "hflip", "p": 1.0}]}
NO_RGB = (1, 5)  # rows whose RGB frame dropped out


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("noimage")
    raw = root / "raw"
    raw.mkdir()
    rows = ["key,rgb,right,depth,label,text"]
    for i in range(8):
        rgb = np.zeros((12, 16, 3), np.uint8)
        rgb[:, :3, 0] = 255  # a red bar at the left edge: where a flip moves it is seen
        right = np.zeros((12, 16, 3), np.uint8)
        right[:, :3, 1] = 255
        depth = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 10 + 500 + i)
        Image.fromarray(rgb).save(raw / f"f{i}.png")
        Image.fromarray(right).save(raw / f"f{i}.right.png")
        Image.fromarray(depth).save(raw / f"f{i}.depth.png")
        rows.append(f"frame_{i:06d},{'' if i in NO_RGB else f'f{i}.png'},f{i}.right.png,f{i}.depth.png,{i % 2},go left")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", root / "ds", columns={"image": "rgb", "right": "right", "depth": "depth"},
                     split="train=1.0", progress=False)
    return root / "ds"


def _source(ds: Path) -> dict[str, Sample]:
    return {s.key: s for s in mmdata.open_dataset(ds, split="train", shuffle=False)}


def test_the_per_sample_recipe_keeps_targets_of_a_sample_without_image_unmoved(drop: Path) -> None:
    src = _source(drop)
    lone = [s for s in src.values() if "image" not in s.fields]
    assert len(lone) == 2 and all({"depth.png", "right.png"} <= set(s.fields) for s in lone)
    rec = load_recipe(RECIPE)
    with pytest.warns(UserWarning, match=r"but no image: .* kept as stored \(unmoved"):
        outs = [rec.apply_sample(s) for s in lone]
    for s, out in zip(lone, outs):
        assert torch.equal(out["depth.png"], s["depth.png"]) and torch.equal(out["right.png"], s["right.png"]), s.key
    with_image = next(s for s in src.values() if "image" in s.fields)
    moved = rec.apply_sample(with_image)  # a sample with its image: the targets move with it
    assert torch.equal(moved["depth.png"], with_image["depth.png"].flip(-1))
    assert torch.equal(moved["right.png"], with_image["right.png"].flip(-1))


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_the_loader_keeps_them_on_both_paths(drop: Path, augment_on: str) -> None:
    src = _source(drop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = {}
        for b in mmdata.loader(drop, batch_size=4, recipe=RECIPE, num_workers=2, augment_on=augment_on, shuffle=False):
            for i, key in enumerate(b.keys):
                got[key] = (bool(b.present["image"][i]), b["depth.png"][i].clone(), b["right.png"][i].clone(),
                            bool(b.present["depth.png"][i]), bool(b.present["right.png"][i]))
    assert sorted(got) == sorted(src)
    for key, (has_image, depth, right, dp, rp) in got.items():
        s = src[key]
        assert dp and rp, key  # present: nothing left out
        flip = (lambda x: x.flip(-1)) if has_image else (lambda x: x)
        assert torch.equal(depth, flip(s["depth.png"])), (augment_on, key)
        assert torch.equal(right, flip(s["right.png"])), (augment_on, key)
    assert sum(not v[0] for v in got.values()) == len(NO_RGB)


def test_the_batched_kernels_agree_with_the_per_sample_run_on_a_collated_batch(drop: Path) -> None:
    rows = list(_source(drop).values())
    rec = load_recipe({**RECIPE, "image": [{"op": "rotate", "limit": 30.0}, {"op": "random_resized_crop", "size": [8, 8]}]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = rec.apply_batched(collate(rows))
        per = collate([rec.apply_sample(s) for s in rows])
    for name in ("image", "depth.png", "right.png"):
        assert torch.equal(batch.present[name], per.present[name]), name
        assert torch.equal(batch[name], per[name]), name
        assert (name in batch.lengths) == (name in per.lengths), name
        if name in per.lengths:
            assert torch.equal(batch.lengths[name], per.lengths[name]), name


def test_a_dropped_image_still_takes_its_targets_along() -> None:
    s = Sample("k", {"image": torch.zeros(3, 4, 5, dtype=torch.uint8), "depth.png": torch.ones(1, 4, 5, dtype=torch.int32),
                     "text": "x"})
    rec = load_recipe({"seed": 0, "targets": {"depth.png": "mask"},
                       "sample": [{"op": "modality_dropout", "modalities": ["image"], "p_drop": 1.0}]})
    out = rec.apply_sample(s)
    assert "image" not in out.fields and "depth.png" not in out.fields
    b = rec.apply_batched(collate([s]))
    assert "image" not in b and "depth.png" not in b  # as collating the per-sample result gives


def _augmented(drop: Path, out: Path, recipe: dict) -> tuple[dict, dict]:
    """(the source's samples, ``mmdata augment``'s one copy of each) by key."""
    src = _source(drop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        augment_dataset(drop, out, recipe, copies=1, progress=False)
    got = {s.key: s for s in mmdata.open_dataset(out, split="train", shuffle=False)}
    assert len(got) == len(src)
    return src, got


def test_mmdata_augment_writes_them(drop: Path, tmp_path: Path) -> None:
    src, out = _augmented(drop, tmp_path / "aug", RECIPE)
    for key, s in out.items():
        orig = src[key.rsplit("_aug", 1)[0]]
        assert {"depth.png", "right.png"} <= set(s.fields), key
        flip = (lambda x: x.flip(-1)) if "image" in orig.fields else (lambda x: x)
        assert torch.equal(s["depth.png"], flip(orig["depth.png"])), key
        assert torch.equal(s["right.png"], flip(orig["right.png"])), key


# -- the normalize stage's size ops act on them (QA35 review-media #4) --------------------------------------------
# A sample without an image kept its targets at their stored size while the normalize stage resized every other
# sample's: a batch holding one got 12x16 targets, a batch without one 8x8 (the shape depended on the batch). The
# normalize stage's deterministic size ops (resize, center_crop, pad_to_size) now act on such a target as they act
# on an image of the target's size (nearest for masks), the random ops still leave it unmoved.

NORM = {"image": [{"op": "resize", "size": 8, "side": "shorter"}, {"op": "center_crop", "size": [8, 8]}]}
NORM_RECIPE = {**RECIPE, "normalize": NORM}


def _normalized_like_an_image(s: Sample) -> dict[str, torch.Tensor]:
    """What the normalize stage gives the targets of ``s`` (it has no image) beside an image of their size."""
    rec = load_recipe({"seed": 0, "targets": RECIPE["targets"], "normalize": NORM})
    h, w = s["depth.png"].shape[-2:]
    out = rec.normalize(s.with_fields(image=torch.zeros(3, h, w, dtype=torch.uint8)))
    return {n: out[n] for n in ("depth.png", "right.png")}


def test_the_normalize_stage_resizes_the_targets_of_a_sample_without_image(drop: Path) -> None:
    src = _source(drop)
    lone = [s for s in src.values() if "image" not in s.fields]
    rec = load_recipe(NORM_RECIPE)
    for stage in ("eval", "train"):  # train: hflip p=1 (a random op) leaves them unmoved, normalize sizes them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = [rec.apply_sample(s, stage=stage) for s in lone]
        for s, out in zip(lone, outs):
            want = _normalized_like_an_image(s)
            assert tuple(out["depth.png"].shape) == (1, 8, 8) and tuple(out["right.png"].shape) == (3, 8, 8), stage
            assert torch.equal(out["depth.png"], want["depth.png"]), (stage, s.key)
            assert torch.equal(out["right.png"], want["right.png"]), (stage, s.key)
            assert "image" not in out.fields and out["depth.png"].dtype == s["depth.png"].dtype
    with_image = next(s for s in src.values() if "image" in s.fields)  # the others' as before: moved with the image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = rec.apply_sample(with_image)
    assert torch.equal(full["depth.png"], _normalized_like_an_image(with_image)["depth.png"].flip(-1))


def test_the_warning_states_the_rule() -> None:
    s = Sample("k", {"depth.png": torch.ones(1, 12, 16, dtype=torch.int32), "text": "x"})
    with pytest.warns(UserWarning, match=r"but no image: .* kept as stored \(unmoved.*normalize stage's size ops"):
        load_recipe(NORM_RECIPE).apply_sample(s)


def test_the_replay_log_of_such_a_sample_gives_the_same_targets(drop: Path) -> None:
    lone = next(s for s in _source(drop).values() if "image" not in s.fields)
    rec = load_recipe(NORM_RECIPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rec.apply_sample(lone)
        again = rec.replay(lone, out.meta["aug"])
    assert torch.equal(again["depth.png"], out["depth.png"]) and torch.equal(again["right.png"], out["right.png"])


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_the_loader_gives_one_target_shape_whatever_the_batch_holds(drop: Path, augment_on: str) -> None:
    src = _source(drop)
    shapes, lone_batches, got = set(), 0, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # batches of 2: (0, 1), (2, 3), (4, 5), (6, 7): two hold a sample without image, two do not
        for b in mmdata.loader(drop, batch_size=2, recipe=NORM_RECIPE, num_workers=2, augment_on=augment_on,
                               shuffle=False):
            shapes.add((tuple(b["depth.png"].shape[1:]), tuple(b["right.png"].shape[1:]),
                        "depth.png" in b.lengths, "right.png" in b.lengths))
            lone_batches += not bool(b.present["image"].all())
            for i, key in enumerate(b.keys):
                got[key] = (bool(b.present["image"][i]), b["depth.png"][i].clone(), b["right.png"][i].clone())
    assert lone_batches == 2
    assert shapes == {((1, 8, 8), (3, 8, 8), True, True)}, (augment_on, shapes)  # lengths in every batch (QA38 E #1)
    for key, (has_image, depth, right) in got.items():
        want = _normalized_like_an_image(src[key])
        flip = (lambda x: x.flip(-1)) if has_image else (lambda x: x)  # the random hflip: the lone ones unmoved
        assert torch.equal(depth, flip(want["depth.png"])), (augment_on, key)
        if not has_image:
            assert torch.equal(right, want["right.png"]), (augment_on, key)


def test_normalize_batched_agrees_with_the_per_sample_normalize(drop: Path) -> None:
    rows = [s for s in _source(drop).values()][:3]  # frame_000001 has no image
    rec = load_recipe({"seed": 0, "targets": RECIPE["targets"], "normalize": {"image": [{"op": "resize", "size": [8, 8], "side": "exact", "interpolation": "nearest"}]}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = rec.normalize_batched(collate(rows))
        per = collate([rec.normalize(s) for s in rows])
    for name in ("depth.png", "right.png"):
        assert torch.equal(batch.present[name], per.present[name]) and torch.equal(batch[name], per[name]), name
        # (h, w) lengths in every batch, on both sides (QA38 E #1, rv1 #1): the batched normalize gives collate's
        assert torch.equal(batch.lengths[name], per.lengths[name]), name
        assert per.lengths[name].tolist() == per.valid_shapes(name)[:, -2:].tolist(), name


def test_mmdata_augment_writes_them_at_the_normalized_size(drop: Path, tmp_path: Path) -> None:
    src, out = _augmented(drop, tmp_path / "aug", NORM_RECIPE)
    for key, s in out.items():
        orig = src[key.rsplit("_aug", 1)[0]]
        assert tuple(s["depth.png"].shape[-2:]) == (8, 8) and tuple(s["right.png"].shape[-2:]) == (8, 8), key
        if "image" not in orig.fields:
            want = _normalized_like_an_image(orig)
            assert torch.equal(s["depth.png"], want["depth.png"]) and torch.equal(s["right.png"], want["right.png"]), key


def test_a_normalize_op_from_outside_mmdata_that_moves_pixels_keeps_the_stored_size_and_says_so() -> None:
    from mmdata.augment.image import ImageOp
    from mmdata.testing import restored_registry

    with restored_registry():
        class TrimDark(ImageOp):  # crops to the image's lit rows: its params come from the image's pixels
            section, name = "image", "test_lone_trim_dark"
            moves_pixels = True
            deterministic = True

            def sample_params(self, rng, sample):  # noqa: ANN001, ANN201
                rows = (sample["image"].amax(dim=(0, 2)) > 0).nonzero().flatten().tolist()
                return {"y0": rows[0], "y1": rows[-1] + 1} if rows else None

            def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
                return np.ascontiguousarray(arr[params["y0"]:params["y1"]])

            def move_map(self, arr: np.ndarray, params: dict, fill: float = 0) -> np.ndarray:
                return np.ascontiguousarray(arr[params["y0"]:params["y1"]])

        rec = load_recipe({"seed": 0, "targets": {"depth.png": "mask"},
                           "normalize": {"image": [{"op": "test_lone_trim_dark"}, {"op": "resize", "size": [8, 8], "side": "exact"}]}})
        depth = torch.arange(12 * 16, dtype=torch.int32).reshape(1, 12, 16)
        with pytest.warns(UserWarning, match=r"but no image: .*at its stored size: the normalize stage's "
                                             r"normalize.image.test_lone_trim_dark#0 \(an op from outside mmdata\) takes "
                                             r"its params from the image"):
            out = rec.apply_sample(Sample("k", {"depth.png": depth, "text": "x"}))
        assert torch.equal(out["depth.png"], depth)
