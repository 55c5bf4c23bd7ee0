"""A paired layout read as class folders (QA 2026-12-03): Pascal VOC / ADE20K style ``images/0001.jpg``
beside ``masks/0001.png`` became a two-class dataset, "images" and "masks", every mask a sample of its
own, without a word. The shard now warns, and the route it names (a manifest, ``--column``, recipe
``targets``) works as it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata


def _pairs(root: Path, image_dir: str, mask_dir: str, mask_ext: str = "png", n: int = 4) -> None:
    (root / image_dir).mkdir(parents=True)
    (root / mask_dir).mkdir(parents=True)
    for i in range(n):
        img = np.zeros((20, 30, 3), np.uint8)
        img[5:10, 10 + i : 20 + i] = 255
        Image.fromarray(img).save(root / image_dir / f"{i:04d}.jpg", quality=95)
        mask = np.zeros((20, 30), np.uint8)
        mask[5:10, 10 + i : 20 + i] = 1
        Image.fromarray(mask).save(root / mask_dir / f"{i:04d}.{mask_ext}")


def test_a_paired_layout_warns_and_numbered_classes_do_not(tmp_path: Path) -> None:
    _pairs(tmp_path / "voc", "JPEGImages", "SegmentationClass")
    rep = mmdata.shard(tmp_path / "voc", tmp_path / "ds", progress=False)
    assert any("were read as classes, but 8 of 8 samples share their name with a sample in another folder ('0000' is in "
               "JPEGImages, SegmentationClass)" in w and "--column image=JPEGImages --column seg=SegmentationClass" in w
               for w in rep["warnings"])
    same_type = tmp_path / "rgbd"
    _pairs(same_type, "rgb", "depth", mask_ext="jpg")  # one file type in both, but the names of such a layout
    assert any("were read as classes" in w for w in mmdata.shard(same_type, tmp_path / "ds2", progress=False)["warnings"])
    classes = tmp_path / "pets"
    _pairs(classes, "cat", "dog", mask_ext="jpg")  # classes that number their files alike: no warning
    assert not any("were read as classes" in w for w in mmdata.shard(classes, tmp_path / "ds3", progress=False)["warnings"])


def test_the_route_the_warning_names_moves_the_masks_with_the_images(tmp_path: Path) -> None:
    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks")
    rows = ["image,seg"] + [f"images/{i:04d}.jpg,masks/{i:04d}.png" for i in range(4)]
    (raw / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    plain = mmdata.shard(raw / "manifest.csv", tmp_path / "plain", split="train=1.0", progress=False)
    assert all("a second image file for the sample" in e["reason"] and e["reason"].endswith("--column seg=seg")
               for e in plain["skipped"]) and len(plain["skipped"]) == 4  # the message names the fix
    rep = mmdata.shard(raw / "manifest.csv", tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    assert rep["samples"] == 4 and not any("were read as classes" in w for w in rep["warnings"])
    recipe = {"targets": {"seg.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}, {"op": "rotate", "limit": 20.0}]}
    for b in mmdata.loader(tmp_path / "ds", 4, recipe=recipe):
        white = b["image"].float().mean(1) > 128
        seg = b["seg.png"][:, 0] == 1
        assert (white == seg).float().mean() > 0.97  # the mask lies where the white box went
        assert torch.equal(b.present["seg.png"], torch.ones(4, dtype=torch.bool))


def test_augment_of_a_mask_without_its_image_writes_no_empty_sample(tmp_path: Path) -> None:
    """QA: a manifest row with a mask and no image became, after `mmdata augment` with targets (the mask of a
    sample without an image was left out), samples with no member: the index listed them, the shards could
    not, and `verify` failed on augment's own output. Since QA35 (robotics #8) such a mask is kept, unmoved:
    its copies are written with it, and nothing is left out."""
    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks", n=3)
    rows = ["image,seg"] + [f"images/{i:04d}.jpg,masks/{i:04d}.png" for i in range(2)] + [",masks/0002.png"]
    (raw / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "manifest.csv", tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    from mmdata.augment.offline import augment_dataset

    recipe = {"targets": {"seg.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match="but no image"):
        rep = augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, copies=2, progress=False)
    assert rep["samples"] == 6 and mmdata.verify(tmp_path / "aug", deep=True)["ok"]
    assert not [s for s in rep["skipped"] if "no member to write" in s["reason"]]
    got = list(mmdata.open_dataset(tmp_path / "aug", split="train"))
    alone = [s for s in got if "image" not in s.fields]
    assert len(got) == 6 and len(alone) == 2 and all("seg.png" in s.fields for s in alone)


def test_augment_on_error_skip_leaves_out_a_sample_the_recipe_refuses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """QA: one mask of another size than its image stopped `mmdata augment` (the loader could skip it, augment
    had no --on-error)."""
    import json

    from mmdata.cli.main import main

    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks", n=3)
    Image.fromarray(np.zeros((10, 15), np.uint8)).save(raw / "masks" / "0001.png")  # half the size of its image
    rows = ["image,seg"] + [f"images/{i:04d}.jpg,masks/{i:04d}.png" for i in range(3)]
    (raw / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "manifest.csv", tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    (tmp_path / "r.yaml").write_text("targets: {seg.png: mask}\nimage:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    args = ["augment", str(tmp_path / "ds"), str(tmp_path / "aug"), "-r", str(tmp_path / "r.yaml"), "--copies", "2"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2 and "target 'seg.png' has shape [1, 10, 15]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([*args, "--on-error", "skip", "--json"])
    assert stop.value.code == 0
    rep = json.loads(capsys.readouterr().out)
    refused = [s for s in rep["skipped"] if s["reason"].startswith("refused by the recipe: sample ")]
    assert rep["samples"] == 4 and len(refused) == 2  # both copies of the source sample with the small mask
    assert all(s["source"].startswith("images_0001") for s in refused)  # named by its source sample
    assert mmdata.verify(tmp_path / "aug", deep=True)["ok"]
