"""Per-pixel targets (``targets: {depth.png: mask}``) move with the image.

Before (2026-12-03) a depth map or a segmentation mask beside the image stayed where it was while hflip,
crops, resizes and rotations moved the image (the recipe warned once): a segmentation or depth dataset
could not be augmented with mmdata at all. Each op's ``move_map`` is checked against an independent
reference (the image kernel itself where it does not interpolate; PIL's NEAREST resize; torch's
``grid_sample(mode="nearest")`` on the rotation's grid), per sample, batched, in DataLoader workers, in
``mmdata augment`` and through replay logs.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError, ShardError
from mmdata.types import Sample, collate

MASK = {"targets": {"depth.png": "mask"}}


def _blocks(h: int = 96, w: int = 128, block: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """An RGB image of flat blocks and its block-id map (ids from 1: 0 is what comes in from outside)."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.repeat(np.arange(1, (h // block) * (w // block) + 1).reshape(h // block, w // block), block, 0),
                    block, 1)
    colours = rng.integers(0, 256, size=(ids.max() + 1, 3))
    image = torch.from_numpy(np.ascontiguousarray(colours[ids].transpose(2, 0, 1).astype(np.uint8)))
    return image, torch.from_numpy(ids[None].astype(np.int32)), colours


MOVING = [{"op": "hflip", "p": 1.0}, {"op": "vflip", "p": 1.0},
          {"op": "random_resized_crop", "size": [40, 56], "scale": [0.2, 1.0]},
          {"op": "random_crop", "size": [80, 100], "padding": 6}, {"op": "rotate", "limit": 40.0},
          {"op": "resize", "size": 150}, {"op": "resize", "size": 31, "interpolation": "linear"},
          {"op": "center_crop", "size": [60, 170]}, {"op": "pad_to_size", "size": [120, 130]}]


@pytest.mark.parametrize("step", MOVING, ids=lambda s: f"{s['op']}-{s.get('size', '')}")
def test_each_moving_op_moves_the_target_where_it_moves_the_image(step: dict) -> None:
    image, ids, colours = _blocks()
    s = Sample("k", {"image": image, "depth.png": ids})
    for seed in range(4):
        out = load_recipe({**MASK, "seed": seed, "image": [step]}).apply_sample(s)
        got, img = out["depth.png"], out["image"].numpy().astype(int)
        assert got.dtype == torch.int32 and tuple(got.shape) == (1, *img.shape[1:])
        inside = got[0].numpy() > 0
        # where the map says "block b", the image shows b's colour (blends only along block edges)
        agree = (np.abs(colours[got[0].numpy()].transpose(2, 0, 1) - img).max(0) <= 2)[inside].mean()
        assert agree > 0.8, (step, seed, agree)
        if (~inside).any():  # padded / rotated in: 0 in the map, the op's fill (0) in the image (blended at edges)
            assert (img[:, ~inside].max(0) <= 2).mean() > 0.75, (step, seed)


def _same_as_image_kernel(step: dict, seed: int) -> None:
    """A uint8 target equal to the image's one channel moves exactly as the image does (no interpolation)."""
    grey = torch.from_numpy(np.random.default_rng(seed).integers(1, 256, (1, 37, 53), dtype=np.uint8))
    out = load_recipe({**MASK, "seed": seed, "image": [step]}).apply_sample(Sample("k", {"image": grey, "depth.png": grey}))
    assert torch.equal(out["depth.png"], out["image"]), step


@pytest.mark.parametrize("step", [{"op": "hflip", "p": 1.0}, {"op": "vflip", "p": 1.0},
                                  {"op": "random_crop", "size": [30, 40], "padding": 5},
                                  {"op": "center_crop", "size": [50, 20]}, {"op": "pad_to_size", "size": [41, 60]},
                                  {"op": "resize", "size": 29, "interpolation": "nearest"}],
                         ids=lambda s: s["op"])
def test_ops_without_interpolation_move_a_target_exactly_as_the_image(step: dict) -> None:
    """``resize`` with ``interpolation: nearest`` samples cv2's INTER_NEAREST (corner-aligned), and so does its
    target (QA: it sampled pixel centres, 1-2 source pixels off the image)."""
    for seed in range(5):
        _same_as_image_kernel(step, seed)


def test_random_resized_crop_and_rotate_against_independent_nearest_references() -> None:
    from PIL import Image

    from mmdata.augment.image import Rotate

    depth = np.random.default_rng(1).integers(0, 2**16, (45, 70), dtype=np.int32)  # 16-bit depth values
    s = Sample("k", {"image": torch.zeros(3, 45, 70, dtype=torch.uint8), "depth.png": torch.from_numpy(depth[None])})
    for seed in range(5):
        r = load_recipe({**MASK, "seed": seed, "image": [{"op": "random_resized_crop", "size": [33, 47]}]})
        out = r.apply_sample(s)
        y0, x0, ch, cw = out.meta["aug"][0]["params"]["box"]
        ref = np.array(Image.fromarray(depth[y0 : y0 + ch, x0 : x0 + cw]).resize((47, 33), Image.NEAREST))
        assert np.array_equal(out["depth.png"][0].numpy(), ref)
        r = load_recipe({**MASK, "seed": seed, "image": [{"op": "rotate", "limit": 90.0}]})
        out = r.apply_sample(s)
        angle = out.meta["aug"][0]["params"]["angle"]
        grid = Rotate._grid(torch.tensor([angle]), 1, 1, 45, 70)
        ref = torch.nn.functional.grid_sample(torch.from_numpy(depth[None, None]).double(), grid.double(), mode="nearest",
                                              padding_mode="zeros", align_corners=False)[0, 0].numpy()
        assert np.array_equal(out["depth.png"][0].numpy(), ref.astype(np.int32)), seed


def test_targets_keep_layout_dtype_and_follow_composites_normalize_and_consistent_hflip() -> None:
    image, ids, _ = _blocks(48, 64, 8)
    mask = torch.from_numpy(ids.numpy()[0] % 3 == 0)  # a bool (H, W) mask
    seg = np.stack([ids.numpy()[0] % 5, ids.numpy()[0] % 7]).astype(np.uint8)  # a numpy (2, H, W) map
    recipe = load_recipe({"seed": 2, "targets": {"depth.png": "mask", "mask": "mask", "seg.npy": "mask"},
                          "normalize": {"image": [{"op": "resize", "size": 24}, {"op": "center_crop", "size": [24, 24]}]},
                          "image": [{"op": "one_of", "ops": [{"op": "hflip", "p": 1.0}, {"op": "vflip", "p": 1.0}]},
                                    {"op": "brightness_contrast", "p": 1.0}],
                          "sample": [{"op": "consistent_hflip", "p": 1.0}]})
    s = Sample("k", {"image": image, "depth.png": ids, "mask": mask, "seg.npy": seg, "text": "a dog on the left"})
    out = recipe.apply_sample(s)
    assert tuple(out["image"].shape) == (3, 24, 24) and out["text"] == "a dog on the right"
    assert out["mask"].dtype == torch.bool and tuple(out["mask"].shape) == (24, 24)
    assert isinstance(out["seg.npy"], np.ndarray) and out["seg.npy"].shape == (2, 24, 24) and out["seg.npy"].dtype == np.uint8
    # the same moves by hand: resize (nearest), centre crop, the chosen flip, then consistent_hflip's flip
    chosen = next(e for e in out.meta["aug"] if e["op"] == "image.one_of")["params"]["children"]
    d = ids.numpy()[0][1::2, 1::2][:, 4:28]  # 48x64 -> 24x32 nearest at centres, then the centre 24 columns
    d = d[:, ::-1] if "0" in chosen else d[::-1]
    assert np.array_equal(out["depth.png"][0].numpy(), d[:, ::-1])
    assert torch.equal(out["mask"], torch.from_numpy(np.ascontiguousarray(d[:, ::-1] % 3 == 0)))
    eval_out = recipe.apply_sample(s, stage="eval")  # validation gets the normalize stage: its map moves too
    assert tuple(eval_out["depth.png"].shape) == (1, 24, 24)
    assert np.array_equal(recipe.replay(s, out.meta["aug"])["depth.png"].numpy(), out["depth.png"].numpy())


def test_batched_kernels_move_targets_as_the_per_sample_run_does() -> None:
    imgs = [_blocks(96, 128, 16, 0), _blocks(64, 80, 16, 1), _blocks(96, 128, 16, 2)]
    samples = [Sample("a", {"image": imgs[0][0], "depth.png": imgs[0][1]}),
               Sample("b", {"image": imgs[1][0], "depth.png": imgs[1][1]}),  # another size: a padded row
               Sample("c", {"image": imgs[2][0]}),  # no target
               Sample("d", {"depth.png": imgs[0][1], "text": "no image"})]  # a target without an image: kept as stored
    recipe = load_recipe({**MASK, "seed": 5, "image": [{"op": "rotate", "limit": 30.0}, {"op": "hflip", "p": 0.5},
                                                      {"op": "random_resized_crop", "size": [40, 40]}]})
    with pytest.warns(UserWarning, match=r"sample 'd' has the target 'depth.png' but no image: .* kept as stored"):
        batch = recipe.apply_batched(collate(samples))
    for i, s in enumerate(samples[:3]):
        want = recipe.apply_sample(s)
        if "depth.png" in s.fields:
            h, w = want["depth.png"].shape[-2:]
            assert torch.equal(batch["depth.png"][i, :, :h, :w], want["depth.png"]), s.key
    assert tuple(batch["depth.png"].shape) == (4, 1, 96, 128) and "depth.png" in batch.lengths  # row d's, unmoved
    assert batch.present["depth.png"].tolist() == [True, True, False, True]  # row d's target has no image: kept
    kept = recipe.apply_sample(samples[3])["depth.png"]  # per sample too (QA35 robotics #8: it was left out)
    assert torch.equal(kept, samples[3]["depth.png"]) and torch.equal(batch["depth.png"][3, :, :96, :128], kept)


def test_targets_through_shards_loader_workers_and_mmdata_augment(tmp_path: Path) -> None:
    """A manifest with 16-bit depth PNGs (``--column depth=depth``): the loader moves them in 2 DataLoader
    workers (and on the batched path) exactly as the per-sample recipe does; ``mmdata augment`` writes the
    moved maps back as 16-bit PNGs; a JPEG image is decoded at full size when the recipe has targets (the
    decode hint would shrink the image and not the map)."""
    from PIL import Image

    from mmdata.augment.offline import augment_dataset

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,depth,label"]
    for i in range(6):
        image, ids, _ = _blocks(64, 96, 16, i)
        Image.fromarray(image.numpy().transpose(1, 2, 0)).save(raw / f"rgb{i}.jpg", quality=95)
        Image.fromarray((ids[0].numpy() * 1000).astype(np.uint16)).save(raw / f"d{i}.png")
        rows.append(f"rgb{i}.jpg,d{i}.png,{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"depth": "depth"}, split="train=1.0", progress=False)
    recipe = {**MASK, "seed": 1, "normalize": {"image": [{"op": "resize", "size": 32}]},
              "image": [{"op": "random_resized_crop", "size": [24, 24]}, {"op": "hflip"}]}
    assert load_recipe(recipe).image_decode_hint() is None and load_recipe({**recipe, "targets": None}).image_decode_hint()
    by_key = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    rec = load_recipe(recipe)
    for augment_on in ("workers", "device"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no per-pixel-map warning: the map is a declared target
            got = {}
            for b in mmdata.loader(tmp_path / "ds", batch_size=3, recipe=recipe, num_workers=2, augment_on=augment_on):
                for i, key in enumerate(b.keys):
                    got[key] = b["depth.png"][i]
        assert sorted(got) == sorted(by_key)
        for key, depth in got.items():
            assert tuple(depth.shape) == (1, 24, 24) and depth.dtype == torch.int32
            assert set(torch.unique(depth).tolist()) <= set(range(0, 25000, 1000)), key
    loaded = mmdata.loader(tmp_path / "ds", batch_size=6, recipe=recipe)
    b = next(iter(loaded))
    for i, key in enumerate(b.keys):  # the loader's draws are the recipe's with the loader's seed
        want = loaded.recipe.apply_sample(by_key[key])
        assert torch.equal(b["depth.png"][i], want["depth.png"]), key
    augment_dataset(tmp_path / "ds", tmp_path / "aug", {**MASK, "seed": 3, "image": [{"op": "hflip", "p": 1.0}]},
                    copies=1, progress=False)
    for s in mmdata.open_dataset(tmp_path / "aug", split="train"):
        src = by_key[s.key.rsplit("_aug", 1)[0]]
        assert s["depth.png"].dtype == torch.int32 and torch.equal(s["depth.png"], src["depth.png"].flip(-1))
    raw_member = next(iter(mmdata.open_dataset(tmp_path / "aug", split="train", decode=False)))["depth.png"]
    assert Image.open(io.BytesIO(raw_member)).mode.startswith("I;16")  # still a 16-bit PNG
    from mmdata.augment.preview import preview

    png = preview(tmp_path / "ds", recipe, tmp_path / "p.png", n=2, variants=1)  # the target drawn over the image
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preview_overlays_a_target_with_zero_transparent() -> None:
    from matplotlib.figure import Figure

    from mmdata.augment.preview import overlay

    for target, cmap in ((torch.tensor([[[0, 1], [255, 1]]], dtype=torch.uint8), "mmdata_labels"),
                         (np.arange(1, 401, dtype=np.int32).reshape(1, 20, 20), "viridis")):
        ax = Figure().add_subplot()
        ax.imshow(np.zeros((*target.shape[-2:], 3), np.uint8))
        overlay(ax, target)
        drawn = ax.images[-1]
        assert len(ax.images) == 2 and drawn.get_cmap().name == cmap and drawn.get_alpha() == 0.45
        arr = drawn.get_array()
        assert np.ma.getmaskarray(arr).tolist() == (np.asarray(target)[0] == 0).tolist()
    ax = Figure().add_subplot()
    overlay(ax, torch.zeros(1, 3, 3))  # nothing but background: nothing drawn
    assert not ax.images


def test_neighbouring_label_colours_differ_in_hue() -> None:
    """QA25 C-3: tab20 coloured a map's labels by rank in pairs of one hue (the first two classes were a dark
    and a light blue); every two neighbouring ranks now differ in hue, and the legend gives each label its
    overlay colour."""
    import colorsys

    from matplotlib.colors import to_rgb

    from mmdata.augment.preview import LABEL_PALETTE, target_legend

    hues = [colorsys.rgb_to_hsv(*to_rgb(c)) for c in LABEL_PALETTE]
    for (h1, s1, _), (h2, s2, _) in zip(hues, hues[1:]):
        if s1 > 0.2 and s2 > 0.2:  # two coloured (not grey) neighbours
            assert min(abs(h1 - h2), 1 - abs(h1 - h2)) > 0.04, (h1, h2)
    _, entries = target_legend("seg.png", np.array([1.0, 2.0, 3.0]))
    assert [c[:3] for _, c in entries] == [to_rgb(c) for c in LABEL_PALETTE[:3]]


def test_bad_targets_are_named_at_load_or_per_sample() -> None:
    for bad, match in [({"targets": ["depth.png"]}, r"targets: expected a mapping"),
                       ({"targets": {"image": "mask"}}, r"targets.image: 'image' is a modality"),
                       ({"targets": {"depth.png": "video"}}, r"targets.depth.png: kind 'video' is not allowed"),
                       ({"targets": {"../x": "mask"}}, r"is not a field name"),
                       ({**MASK, "batch": [{"op": "mixup"}]}, r"batch\[0\]: mixup blends two samples' images")]:
        with pytest.raises(RecipeError, match=match):
            load_recipe(bad)
    from mmdata.augment.image import ImageOp
    from mmdata.testing import restored_registry

    with restored_registry():  # the op leaves the registry as it was (test_extending checks every registered op)
        class Shear(ImageOp):  # a user's op that moves pixels without saying how a target moves
            section, name = "image", "test_targets_shear"
            moves_pixels = True

            def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
                return arr

        with pytest.raises(RecipeError, match=r"test_targets_shear moves the image's pixels but has no move_map"):
            load_recipe({**MASK, "image": [{"op": "some_of", "ops": [{"op": "test_targets_shear"}]}]})
        load_recipe({"image": [{"op": "test_targets_shear"}]})  # without targets: fine
    image = torch.zeros(3, 20, 30, dtype=torch.uint8)
    r = load_recipe({**MASK, "image": [{"op": "hflip", "p": 1.0}]})
    for depth in (torch.zeros(1, 20, 31), torch.zeros(5)):
        with pytest.raises(ShardError, match=r"sample 'k7': target 'depth.png' has shape .* must end in the image's height "
                                             r"and width \[20, 30\]"):
            r.apply_sample(Sample("k7", {"image": image, "depth.png": depth}))
    with pytest.raises(ShardError, match=r"sample 'k8': target 'depth.png'"):
        r.apply_batched(collate([Sample("k7", {"image": image, "depth.png": torch.zeros(1, 20, 30)}),
                                 Sample("k8", {"image": image, "depth.png": torch.zeros(1, 19, 30)})]))


def test_recipe_round_trips_and_undeclared_maps_still_warn() -> None:
    r = load_recipe({"seed": 4, "targets": {"seg.png": "mask", "depth.png": "mask"}, "image": [{"op": "hflip"}]})
    text = r.to_yaml()
    assert "targets: {seg.png: mask, depth.png: mask}\n" in text and load_recipe(text).to_yaml() == text
    assert r.with_seed(9).targets == r.targets == r.with_keying("position").targets
    image, ids, _ = _blocks(32, 32, 8)
    s = Sample("k", {"image": image, "depth.png": ids, "normal.png": image})
    with pytest.warns(UserWarning, match=r"field 'normal.png' has the image's height.*targets: \{normal.png: mask\}"):
        r.apply_sample(s)


def test_check_op_catches_a_move_map_that_blends_or_loses_the_size() -> None:
    from mmdata.augment.image import ImageOp
    from mmdata.testing import check_op, restored_registry

    with restored_registry():
        class HalfSize(ImageOp):  # the image is halved by area; the target by a blend, then not at all
            section, name = "image", "test_targets_half"
            moves_pixels = True
            copy_input = False

            def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
                return np.ascontiguousarray(arr[::2, ::2])

            def move_map(self, arr: np.ndarray, params: dict, fill: float = 0) -> np.ndarray:
                return ((arr[::2, ::2].astype(np.int64) + arr[1::2, 1::2]) // 2).astype(arr.dtype)

        with pytest.raises(AssertionError, match=r"\[targets\].*values the target does not hold"):
            check_op(HalfSize(p=1.0), batched=False)
        HalfSize.move_map = lambda self, arr, params, fill=0: arr  # type: ignore[method-assign]
        with pytest.raises(AssertionError, match=r"\[targets\].*expected int32 \(12, 16, 1\)"):
            check_op(HalfSize(p=1.0), batched=False)
        HalfSize.move_map = lambda self, arr, params, fill=0: np.ascontiguousarray(arr[::2, ::2])  # type: ignore[method-assign]
        check_op(HalfSize(p=1.0), batched=False)


def test_second_qa_pass_replay_order_one_pixel_flips_fill_and_names(tmp_path: Path) -> None:
    """QA 2026-12-03 on targets: a some_of with 11+ children replayed from a saved log moved the mask in the
    log's JSON order ("10" before "2"); a flip of a 1-pixel-wide map crashed (a negative stride); there was no
    fill for masks (a VOC mask's 255 "ignore" border); `targets: {seg: mask}` for the field 'seg.png' and
    `targets: {cls: mask}` were silent."""
    from mmdata.augment import replay

    image, ids, _ = _blocks(48, 64, 8)
    s = Sample("k", {"image": image, "seg.png": ids})
    children = [{"op": "brightness_contrast"}] * 9 + [{"op": "vflip"}, {"op": "random_crop", "size": [20, 30]},
                                                       {"op": "rotate", "limit": 90.0}]
    r = load_recipe({"targets": {"seg.png": "mask"}, "image": [{"op": "some_of", "n": [12, 12], "ops": children}]})
    out = r.apply_sample(s)
    replay.save_log(tmp_path / "log.parquet", replay.log_rows("k", out.meta["aug"], 0))
    again = r.replay(s, replay.load_log(tmp_path / "log.parquet")[("k", 0)])
    assert torch.equal(again["image"], out["image"]) and torch.equal(again["seg.png"], out["seg.png"])
    for op, shape in (("hflip", (3, 5, 1)), ("vflip", (3, 1, 5))):
        thin = Sample("t", {"image": torch.zeros(shape, dtype=torch.uint8), "seg.png": torch.ones(1, *shape[1:])})
        flip = load_recipe({"targets": {"seg.png": "mask"}, "image": [{"op": op, "p": 1.0}]})
        assert torch.equal(flip.apply_sample(thin)["seg.png"], thin["seg.png"])
        assert torch.equal(flip.apply_batched(collate([thin, thin]))["seg.png"][0], thin["seg.png"])
    voc = {"seg.png": {"kind": "mask", "fill": 255}, "depth.png": "mask"}
    mask = torch.ones(1, 48, 64, dtype=torch.uint8)
    for step in ({"op": "pad_to_size", "size": [64, 64]}, {"op": "rotate", "limit": 45.0},
                 {"op": "random_crop", "size": [48, 64], "padding": 8}):
        out = load_recipe({"seed": 1, "targets": voc, "image": [step]}).apply_sample(
            Sample("k", {"image": image, "seg.png": mask, "depth.png": mask.to(torch.int32)}))
        assert set(torch.unique(out["seg.png"]).tolist()) == {1, 255}, step  # the border is "ignore", not background
        assert set(torch.unique(out["depth.png"]).tolist()) == {0, 1}, step
    text = load_recipe({"targets": voc}).to_yaml()
    assert "targets: {seg.png: {kind: mask, fill: 255}, depth.png: mask}" in text and load_recipe(text).to_yaml() == text
    for bad, match in (({"seg.png": {"kind": "mask", "fill": "x"}}, r"targets.seg.png.fill: expected a finite number"),
                       ({"seg.png": {"kind": "mask", "fil": 1}}, r"unknown key\(s\) \['fil'\]"),
                       ({"cls": "mask"}, r"targets.cls: 'cls' is read as the field 'label'")):
        with pytest.raises(RecipeError, match=match):
            load_recipe({"targets": bad})
    misnamed = load_recipe({"targets": {"seg": "mask"}, "image": [{"op": "hflip"}]})
    with pytest.warns(UserWarning, match=r"the recipe's targets 'seg' name no field of this sample; did you mean 'seg.png'"):
        misnamed.apply_sample(s)


def test_add_one_arms_keep_the_recipes_targets_and_keying() -> None:
    from mmdata.ablate.design import load_ablation

    full = {"seed": 2, "keying": "position", "targets": {"seg.png": "mask"},
            "image": [{"op": "hflip"}, {"op": "rotate", "limit": 10.0}]}
    ab = load_ablation({"seeds": 8, "design": {"mode": "add_one", "recipe": full}})
    for arm in ab.arms[1:]:
        assert arm.recipe["targets"] == {"seg.png": "mask"} and arm.recipe["keying"] == "position", arm.name


def test_an_explicit_image_max_size_is_refused_with_targets(tmp_path: Path) -> None:
    mmdata.shard(mmdata.testing.make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    with pytest.raises(mmdata.MMDataError, match=r"image_max_size=\(16, 16\) decodes JPEG images scaled down, but not "
                                                 r"the recipe's targets \(seg.png\)"):
        mmdata.loader(tmp_path / "ds", 2, recipe=MASK | {"targets": {"seg.png": "mask"}}, image_max_size=(16, 16))


def test_third_qa_pass_alignment_check_fill_dtype_and_nearest_resize() -> None:
    """QA round 2: check_op passed a flip whose move_map left the map unflipped; a fill of 300 on a uint8 mask
    was a bare OverflowError (0.5 silently 0); resize with interpolation: nearest put its target 1-2 source
    pixels off the image (cv2's corner-aligned nearest vs pixel centres)."""
    from mmdata.augment.image import ImageOp
    from mmdata.testing import check_op, restored_registry

    with restored_registry():
        class Mirror(ImageOp):
            section, name = "image", "test_targets_mirror"
            moves_pixels = True
            copy_input = False

            def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
                return np.ascontiguousarray(arr[:, ::-1])

            def move_map(self, arr: np.ndarray, params: dict, fill: float = 0) -> np.ndarray:
                return arr.copy()  # forgot to flip

        with pytest.raises(AssertionError, match=r"\[targets\].*moves the target elsewhere than transform moves the image"):
            check_op(Mirror(p=1.0), batched=False)
        check_op(Mirror(p=1.0), batched=False, targets=False)  # an op that also changes colours may opt out
    image = torch.zeros(3, 20, 30, dtype=torch.uint8)
    for fill, mask in ((300, torch.ones(1, 20, 30, dtype=torch.uint8)), (0.5, torch.ones(1, 20, 30, dtype=torch.uint8)),
                       (2, torch.ones(20, 30, dtype=torch.bool))):
        r = load_recipe({"targets": {"seg.png": {"kind": "mask", "fill": fill}}, "image": [{"op": "rotate"}]})
        with pytest.raises(ShardError, match=rf"sample 'k': target 'seg.png' holds \w+ values; its fill {fill} is no"):
            r.apply_sample(Sample("k", {"image": image, "seg.png": mask}))
    ys, xs = np.mgrid[0:40, 0:60]
    ramp = torch.from_numpy(np.stack([ys, xs, ys * 0]).astype(np.uint8))
    coord = torch.from_numpy((ys * 60 + xs)[None].astype(np.int32))
    for size in ([37, 23], [20, 30], [80, 13]):
        out = load_recipe({**MASK, "image": [{"op": "resize", "size": size, "side": "exact", "interpolation": "nearest"}]}) \
            .apply_sample(Sample("k", {"image": ramp, "depth.png": coord}))
        moved = out["depth.png"][0].numpy()
        assert np.array_equal(moved // 60, out["image"][0].numpy()) and np.array_equal(moved % 60, out["image"][1].numpy())


@pytest.mark.parametrize("cache", [False, True])
def test_a_target_of_another_size_is_skipped_and_counted_when_the_loader_skips(tmp_path: Path, cache: bool) -> None:
    """QA: with on_error="skip" a mask of another size than its image stopped the epoch (ShardError); it is
    now skipped and counted like a member that does not decode (2 workers: the counts reach the loader)."""
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,seg"]
    for i in range(6):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(raw / f"i{i}.png")
        Image.fromarray(np.ones((24, 32) if i != 2 else (12, 16), np.uint8)).save(raw / f"s{i}.png")
        rows.append(f"i{i}.png,s{i}.png")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    recipe = {"targets": {"seg.png": "mask"}, "normalize": {"image": [{"op": "resize", "size": 16}]},
              "image": [{"op": "hflip"}]}
    with pytest.raises(ShardError, match=r"sample 'i2': target 'seg.png' has shape \[1, 12, 16\]"):
        list(mmdata.loader(tmp_path / "ds", 2, recipe=recipe, cache=cache))
    loader = mmdata.loader(tmp_path / "ds", 2, recipe=recipe, cache=cache, on_error="skip",
                           num_workers=0 if cache else 2)
    keys = sorted(k for b in loader for k in b.keys)
    assert keys == ["i0", "i1", "i3", "i4", "i5"] and loader.skipped == {"refused by the recipe": 1}


def test_the_decoded_split_memo_knows_the_targets(tmp_path: Path) -> None:
    """The process keeps normalized splits (cache=True) keyed by the normalize stage; a recipe with targets
    normalizes its targets too, so the same normalize without targets must not serve it (and back)."""
    from PIL import Image

    from mmdata.augment.loader import clear_decoded

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,seg"]
    for i in range(3):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(raw / f"i{i}.png")
        Image.fromarray(np.ones((24, 32), np.uint8)).save(raw / f"s{i}.png")
        rows.append(f"i{i}.png,s{i}.png")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    clear_decoded()
    norm = {"normalize": {"image": [{"op": "center_crop", "size": [12, 16]}]}}  # no decode hint: the same reader options
    with pytest.warns(UserWarning, match="per-pixel maps"):
        plain = next(iter(mmdata.loader(tmp_path / "ds", 3, recipe=norm, cache=True, stage="eval")))
    moved = next(iter(mmdata.loader(tmp_path / "ds", 3, recipe={**norm, **MASK, "targets": {"seg.png": "mask"}},
                                    cache=True, stage="eval")))
    assert tuple(plain["seg.png"].shape[-2:]) == (24, 32) and tuple(moved["seg.png"].shape[-2:]) == (12, 16)


def test_a_batch_whose_targets_all_lose_their_image_keeps_the_field_as_collate_does() -> None:
    """Read of the change: a batch where no row with a target has an image (every target left out) raised
    "cannot collate 'seg.png'" (pad_stack of nothing); the rows keep their targets unmoved (QA35), as collate does."""
    for rows in ([Sample("a", {"seg.png": torch.ones(1, 4, 5), "text": "x"})],
                 [Sample("a", {"seg.png": torch.ones(1, 4, 5), "text": "x"}),
                  Sample("b", {"image": torch.zeros(3, 6, 7, dtype=torch.uint8)})]):
        r = load_recipe({"targets": {"seg.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}]})  # warns once per recipe
        with pytest.warns(UserWarning, match="but no image"):
            b = r.apply_batched(collate(rows))
        want = collate([r.apply_sample(s) for s in rows])  # as collating the per-sample results gives (QA round 34)
        assert "seg.png" in b and b.present["seg.png"].tolist() == [True] + [False] * (len(rows) - 1)
        assert torch.equal(b["seg.png"], want["seg.png"])  # kept unmoved: no image (QA35 robotics #8)
