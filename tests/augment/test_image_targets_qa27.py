"""``targets: {frame1.png: image}``: a clip's other frames get the image's ops with the image's params (QA27 C5).

Before, ``mask`` was the only kind: frames were moved with nearest sampling and no photometric op, so a twin of
the image differed from it by up to 62 grey levels after ``hflip, random_resized_crop, brightness_contrast``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError, ShardError
from mmdata.types import Sample, collate

FRAMES = {"targets": {"frame1.png": "image", "frame2.png": "image"}}
#: geometric (interpolating, padding, rotating) and photometric ops, one composite, every image op drawn
STEPS = [{"op": "hflip", "p": 0.5}, {"op": "rotate", "limit": 25.0, "p": 0.7},
         {"op": "random_resized_crop", "size": [40, 48], "scale": [0.3, 1.0]},
         {"op": "one_of", "ops": [{"op": "brightness_contrast"}, {"op": "gaussian_noise", "std": 0.1}]},
         {"op": "cutout", "p": 0.5}, {"op": "brightness_contrast", "p": 1.0}]



def _img(seed: int, h: int = 60, w: int = 72, c: int = 3) -> torch.Tensor:
    """A smooth image (interpolation shows) with a little texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    base = (np.sin(x / (5 + seed)) + np.cos(y / 7)) * 60 + 128
    arr = base[None] + rng.integers(-20, 20, size=(c, h, w))
    return torch.from_numpy(np.clip(arr, 0, 255).astype(np.uint8))


def _samples(n: int = 4) -> list[Sample]:
    out = []
    for i in range(n):
        image = _img(i)
        out.append(Sample(f"clip{i}", {"image": image, "frame1.png": image.clone(), "frame2.png": _img(i + 10),
                                       "label": i % 2}))
    return out


def test_an_image_target_gets_every_image_op_with_the_images_draw_per_sample() -> None:
    recipe = load_recipe({**FRAMES, "seed": 4, "normalize": {"image": [{"op": "resize", "size": 50}]}, "image": STEPS})
    plain = load_recipe({"seed": 4, "normalize": {"image": [{"op": "resize", "size": 50}]}, "image": STEPS})
    for s in _samples():
        got = recipe.apply_sample(s)
        assert torch.equal(got["frame1.png"], got["image"]), s.key  # a twin of the image stays its twin
        # another frame is what the image would have become: the same draw (it depends on the image's size only)
        alone = plain.apply_sample(Sample(s.key, {"image": s["frame2.png"], "label": s["label"]}))
        assert torch.equal(got["frame2.png"], alone["image"]), s.key
        assert got["frame2.png"].dtype == torch.uint8 and tuple(got["frame2.png"].shape) == (3, 40, 48)
        assert torch.equal(s["frame1.png"], s["image"])  # the input is not written to


def test_the_batched_run_gives_image_targets_the_per_sample_frames() -> None:
    recipe = load_recipe({**FRAMES, "seed": 7, "image": STEPS})
    samples = _samples()
    batch = recipe.apply_batched(collate(samples))
    for i, s in enumerate(samples):
        want = recipe.apply_sample(s)
        for name in ("frame1.png", "frame2.png"):
            assert torch.equal(batch[name][i], want[name]), (s.key, name)
        # the image itself ran through the batched kernels: within their tolerance of its twin (2 levels)
        assert (batch["image"][i].int() - batch["frame1.png"][i].int()).abs().max() <= 2, s.key


def test_colour_conversion_and_sample_ops_reach_an_image_target() -> None:
    recipe = load_recipe({**FRAMES, "seed": 2, "normalize": {"image": [{"op": "to_gray"}, {"op": "center_crop", "size": 30}]},
                          "sample": [{"op": "consistent_hflip", "p": 1.0}]})
    s = _samples(1)[0]
    got = recipe.apply_sample(s)
    assert tuple(got["frame1.png"].shape) == (1, 30, 30) and torch.equal(got["frame1.png"], got["image"])
    alone = load_recipe({"seed": 2, "normalize": {"image": [{"op": "to_gray"}, {"op": "center_crop", "size": 30}]},
                         "sample": [{"op": "consistent_hflip", "p": 1.0}]}).apply_sample(
        Sample(s.key, {"image": s["frame2.png"]}))
    assert torch.equal(got["frame2.png"], alone["image"])


def test_image_targets_are_checked_and_round_trip() -> None:
    rec = load_recipe({"targets": {"frame1.png": "image", "seg.png": {"kind": "mask", "fill": 255}}, "image": STEPS[:1]})
    assert rec.to_dict()["targets"] == {"frame1.png": "image", "seg.png": {"kind": "mask", "fill": 255}}
    assert load_recipe(rec.to_yaml()).to_dict() == rec.to_dict()
    with pytest.raises(RecipeError, match=r"targets\.frame1\.png\.fill: an image target takes the ops' fill"):
        load_recipe({"targets": {"frame1.png": {"kind": "image", "fill": 3}}})
    with pytest.raises(RecipeError, match=r"choose one of \['mask', 'image'\]"):
        load_recipe({"targets": {"frame1.png": "video"}})
    image = _img(0)
    other = Sample("k7", {"image": image, "frame1.png": _img(1, 60, 80)})
    with pytest.raises(ShardError, match=r"sample 'k7': image target 'frame1.png' is 60x80 \(HxW\), the image 60x72"):
        rec.apply_sample(other)
    with pytest.raises(ShardError, match=r"sample 'k7': image target 'frame1.png' is a int32 .*uint8 \(C, H, W\)"):
        rec.apply_sample(Sample("k7", {"image": image, "frame1.png": image.int()}))
    with pytest.raises(ShardError, match=r"sample 'k7': image target 'frame1.png' is 60x80"):
        rec.apply_batched(collate([Sample("k6", {"image": image, "frame1.png": image}), other]))


def _clip_shards(tmp_path: Path) -> Path:
    """PNG members image / frame1 (a twin of the image) of 6 clips in a tar, through ``mmdata.shard``."""
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,frame1,label"]
    for i in range(6):
        image = _img(i, 48, 64).numpy().transpose(1, 2, 0)
        Image.fromarray(image).save(raw / f"im{i}.png")
        Image.fromarray(image).save(raw / f"f{i}.png")
        rows.append(f"im{i}.png,f{i}.png,{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"frame1": "frame1"}, split="train=1.0", progress=False)
    return tmp_path / "ds"


#: the QA repro's recipe, with the frame as an image target
CLIP = {"seed": 0, "targets": {"frame1.png": "image"},
        "image": [{"op": "hflip", "p": 0.5}, {"op": "random_resized_crop", "p": 1.0, "size": [32, 32], "scale": [0.3, 1.0]},
                  {"op": "brightness_contrast", "p": 1.0}]}


def test_clip_frames_from_png_shards_through_the_loader_workers_replay_and_mmdata_augment(tmp_path: Path) -> None:
    """The QA repro: the loader (per sample, in a worker) and ``mmdata augment`` give the twin frame the
    image's pixels; a replay log reproduces the frame."""
    from mmdata.augment.offline import augment_dataset

    ds = _clip_shards(tmp_path)
    seen = 0
    for b in mmdata.loader(ds, batch_size=3, recipe=CLIP, num_workers=1, augment_on="workers"):
        assert tuple(b["frame1.png"].shape) == (3, 3, 32, 32) and torch.equal(b["image"], b["frame1.png"])
        seen += len(b.keys)
    assert seen == 6
    rec = load_recipe(CLIP)
    s = next(iter(mmdata.open_dataset(ds, split="train")))
    once = rec.apply_sample(s)
    again = rec.replay(s, once.meta["aug"])
    assert torch.equal(again["frame1.png"], once["frame1.png"]) and torch.equal(once["frame1.png"], once["image"])
    augment_dataset(ds, tmp_path / "aug", CLIP, copies=1, progress=False)
    out = list(mmdata.open_dataset(tmp_path / "aug", split="train"))
    assert len(out) == 6
    for s in out:
        assert tuple(s["frame1.png"].shape) == (3, 32, 32) and torch.equal(s["frame1.png"], s["image"]), s.key


def test_clip_frames_on_the_loaders_device_path(tmp_path: Path) -> None:
    """augment_on="device": the batched kernels on the image, the per-sample ones on the frame (2 levels)."""
    seen = 0
    for b in mmdata.loader(_clip_shards(tmp_path), batch_size=3, recipe=CLIP, augment_on="device"):
        assert tuple(b["frame1.png"].shape) == (3, 3, 32, 32)
        assert (b["image"].int() - b["frame1.png"].int()).abs().max() <= 2
        seen += len(b.keys)
    assert seen == 6


def test_a_users_moving_image_op_without_move_map_runs_on_image_targets_only() -> None:
    from mmdata.augment.image import ImageOp
    from mmdata.testing import restored_registry

    with restored_registry():
        class Transpose(ImageOp):  # moves pixels, no move_map: its kernel is all an image target needs
            section, name = "image", "test_qa27_transpose"
            moves_pixels = True
            copy_input = False

            def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
                return np.ascontiguousarray(arr.transpose(1, 0, 2))

        s = _samples(1)[0]
        got = load_recipe({**FRAMES, "image": [{"op": "test_qa27_transpose"}]}).apply_sample(s)
        assert torch.equal(got["frame2.png"], s["frame2.png"].transpose(1, 2)) and torch.equal(got["frame1.png"], got["image"])
        with pytest.raises(RecipeError, match=r"test_qa27_transpose moves the image's pixels but has no move_map"):
            load_recipe({"targets": {"frame1.png": "image", "seg.png": "mask"}, "image": [{"op": "test_qa27_transpose"}]})


def test_the_unlisted_map_warning_names_the_image_kind_for_frames() -> None:
    """The warning for a map the recipe does not list names kind mask, and kind image for another frame."""
    from mmdata.augment import load_recipe

    img = _img(1)
    s = Sample("k", {"image": img, "frame1.png": img.clone(), "seg.png": torch.zeros(1, 60, 72, dtype=torch.uint8)})
    with pytest.warns(UserWarning, match=r"targets: \{frame1\.png: mask, seg\.png: mask\}.*kind image for another frame"):
        load_recipe({"image": [{"op": "hflip", "p": 1.0}]}).apply_sample(s)
