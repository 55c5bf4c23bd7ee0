"""A paired folder layout sharded directly: ``--column image=JPEGImages --column seg=SegmentationClass``.

``--column`` was a manifest's option only; on a folder source it was accepted and ignored without a word
(``images/`` + ``masks/`` became a two-class dataset, every mask a sample of its own). For a folder,
``--column FIELD=FOLDER`` now makes each named folder a field of one sample, the files joined by their
path inside their folder, as Pascal VOC, ADE20K and RGB-D datasets lay them out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover
from tests.shards.test_paired_layout import _pairs
from tests.shards.test_shard_cli_qa import _cli


def _voc(root: Path, n: int = 5) -> Path:
    """A small Pascal VOC tree: VOC2012/{JPEGImages, SegmentationClass, Annotations, ImageSets/Segmentation}
    with masks for the first n - 1 images only, a class-names file and a README at the root."""
    voc = root / "VOC2012"
    _pairs(voc, "JPEGImages", "SegmentationClass", n=n)
    (voc / "SegmentationClass" / f"{n - 1:04d}.png").unlink()  # an image without its mask: a missing field
    (voc / "Annotations").mkdir()
    for i in range(n):
        (voc / "Annotations" / f"{i:04d}.xml").write_text("<annotation/>")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("0000\n0001\n")
    (root / "README.txt").write_text("Pascal VOC, a few files of it")
    for i in range(n):
        (voc / "JPEGImages" / f"{i:04d}.cls").write_text(["cat", "dog"][i % 2])
    (root / "labels.txt").write_text("cat\ndog\n")
    return root


def test_column_folders_make_one_sample_of_an_image_and_its_mask(tmp_path: Path) -> None:
    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks")
    rep = mmdata.shard(raw, tmp_path / "ds", columns={"image": "images", "seg": "masks"}, split="train=1.0",
                       progress=False)
    assert rep["samples"] == 4 and not rep["skipped"] and not rep["warnings"]  # was 8 samples of two "classes"
    samples = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    assert sorted(samples) == ["0000", "0001", "0002", "0003"]
    s = samples["0002"]
    assert "label" not in s and s["image"].shape == (3, 20, 30)
    assert np.array_equal(s["seg.png"][0].numpy(), np.asarray(Image.open(raw / "masks" / "0002.png")))  # same pixels
    recipe = {"targets": {"seg.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}, {"op": "rotate", "limit": 20.0}]}
    for b in mmdata.loader(tmp_path / "ds", 4, recipe=recipe):
        white = b["image"].float().mean(1) > 128
        assert (white == (b["seg.png"][:, 0] == 1)).float().mean() > 0.97  # the masks moved with the images
        assert torch.equal(b.present["seg.png"], torch.ones(4, dtype=torch.bool))


def test_a_voc_tree_with_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _voc(tmp_path / "raw")
    code, out = _cli("shard", str(raw), str(tmp_path / "ds"), "--column", "image=VOC2012/JPEGImages", "--column",
                     "seg=VOC2012/SegmentationClass", "--split", "train=1.0", "--json", capsys=capsys)
    assert code == 0, out
    import json

    rep = json.JSONDecoder().raw_decode(out[out.index("{"):])[0]  # stderr (warnings) may follow: --json keeps it
    assert rep["samples"] == 5
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["label_names"] == ["cat", "dog"]  # labels.txt
    skipped = {(e["source"], e["what"]) for e in rep["skipped"]}
    # what is not read is listed, a folder at a time: nothing vanishes without a word
    assert skipped == {("README.txt", "file"), ("VOC2012/Annotations", "folder"), ("VOC2012/ImageSets", "folder")}
    samples = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    assert [samples[k]["label"] for k in sorted(samples)] == [0, 1, 0, 1, 0]
    assert "seg.png" in samples["0000"] and "seg.png" not in samples["0004"]  # a missing mask is a missing field
    batch = next(iter(mmdata.loader(tmp_path / "ds", 5, shuffle=False)))
    assert batch.present["seg.png"].tolist() == [True, True, True, True, False]
    assert mmdata.verify(tmp_path / "ds", deep=True)["ok"]


def test_nested_folders_join_by_their_path_inside_the_column_folder(tmp_path: Path) -> None:
    raw = tmp_path / "ade"
    for split in ("training", "validation"):
        _pairs(raw, f"images/{split}", f"annotations/{split}", n=2)
    found = discover(raw, columns={"image": "images", "seg": "annotations"})
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [
        (f"{s}/{i:04d}", ["jpg", "seg.png"]) for s in ("training", "validation") for i in range(2)]


def test_a_mask_without_its_image_is_kept_and_named(tmp_path: Path) -> None:
    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks", n=3)
    (raw / "images" / "0001.jpg").unlink()
    found = discover(raw, columns={"image": "images", "seg": "masks"})
    assert [sorted(r.members) for r in found.records] == [["jpg", "seg.png"], ["seg.png"], ["jpg", "seg.png"]]
    assert any("1 sample has files only in named fields' folders and none in the image folder (e.g. '0001')" in w
               for w in found.warnings)


def test_files_a_named_field_cannot_hold_and_second_files_are_reported(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _pairs(raw, "images", "masks", n=2)
    import soundfile as sf

    sf.write(raw / "masks" / "0000.flac", np.zeros(800, np.float32), 8000)  # audio cannot be a named field
    (raw / "captions").mkdir()
    Image.new("RGB", (4, 4)).save(raw / "captions" / "0001.png")  # a second image for sample 0001
    (raw / "captions" / "0000.txt").write_text("a box")
    found = discover(raw, columns={"image": "images", "seg": "masks", "text": "captions"})
    reasons = {e["source"]: e["reason"] for e in found.skipped}
    assert "a .flac file cannot be the named field 'seg'" in reasons["masks/0000.flac"]
    assert "a second image file for sample '0001': kept 'images/0001.jpg' (from the image folder)" in reasons["captions/0001.png"]
    assert [sorted(r.members) for r in found.records] == [["jpg", "seg.png", "txt"], ["jpg", "seg.png"]]
    (raw / "masks" / "0000.flac").unlink()
    with pytest.raises(SourceError, match="two image files for sample '0001'"):
        discover(raw, columns={"image": "images", "seg": "masks", "text": "captions"}, on_error="raise")


@pytest.mark.parametrize(("columns", "match"), [
    ({"image": "imgs"}, r"--column image=imgs: no folder 'imgs' in the source \(its folders: images/, masks/\)"),
    ({"image": "../voc"}, "FOLDER is a relative path inside the source"),
    ({"image": "/abs/images"}, "FOLDER is a relative path inside the source"),
    ({"key": "images"}, "a folder source has no key column"),
    ({"split": "images"}, "splits come from --split"),
    ({"Seg": "masks"}, "a field name is 1 to 64 lowercase letters"),
    ({"image": "images", "seg": "images/sub"}, "folder 'images/sub' lies inside 'images'"),
    ({"image": "images", "seg": "images/"}, "one folder gives one field"),
])
def test_column_mistakes_are_errors_naming_the_option(tmp_path: Path, columns: dict[str, str], match: str) -> None:
    _pairs(tmp_path / "voc", "images", "masks", n=2)
    with pytest.raises(SourceError, match=match):
        discover(tmp_path / "voc", columns=columns)


def test_columns_and_class_folders_exclude_each_other(tmp_path: Path) -> None:
    _pairs(tmp_path / "voc", "images", "masks", n=2)
    with pytest.raises(SourceError, match="with --column the folders are fields of one sample, not classes"):
        discover(tmp_path / "voc", columns={"image": "images"}, labels_from_folders=True)


def test_the_paired_layout_warning_names_the_columns_that_fix_it(tmp_path: Path) -> None:
    raw = tmp_path / "voc"
    _pairs(raw, "JPEGImages", "SegmentationClass")
    warning = next(w for w in discover(raw).warnings if "were read as classes" in w)
    assert "--column image=JPEGImages --column seg=SegmentationClass" in warning
    rep = mmdata.shard(raw, tmp_path / "ds", columns={"image": "JPEGImages", "seg": "SegmentationClass"},
                       progress=False)  # the route it names
    assert rep["samples"] == 4 and not rep["warnings"]


def test_column_folders_at_a_url_shard_as_the_local_folder_does(tmp_path: Path, s3) -> None:  # noqa: ANN001
    raw = _voc(tmp_path / "raw")
    columns = {"image": "VOC2012/JPEGImages", "seg": "VOC2012/SegmentationClass"}
    local = mmdata.shard(raw, tmp_path / "local", columns=columns, progress=False)
    s3.fs.put(str(raw), f"{s3.url[5:]}/raw", recursive=True)
    remote = mmdata.shard(f"{s3.url}/raw", tmp_path / "remote", columns=columns, storage_options=s3.options,
                          progress=False)
    assert remote["skipped"] == local["skipped"] and remote["samples"] == local["samples"] == 5
    tars = sorted(p.name for p in (tmp_path / "local").glob("*.tar"))
    assert tars and all((tmp_path / "local" / t).read_bytes() == (tmp_path / "remote" / t).read_bytes() for t in tars)


def test_qa_round_two_column_mistakes_and_unicode_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA of the feature: a repeated FIELD kept the last folder silently (the images were left out and the
    masks became the images); a standard field's folder holding none of its type was accepted; NFC / NFD
    names across the folders gave a false "files only in named fields' folders" warning and a garbled
    "folders '/' and '/'" one; the targets hint named the first other folder, not the masks."""
    import unicodedata

    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks", n=2)
    code, out = _cli("shard", str(raw), str(tmp_path / "ds"), "--column", "image=images", "--column", "image=masks",
                     capsys=capsys)
    assert code == 2 and "--column image= is given twice (image=images and image=masks)" in out
    with pytest.raises(SourceError, match=r"--column audio=masks: the folder holds no audio file \(it holds image\); "
                                          r"name its field after what it holds: e.g. --column seg=masks"):
        discover(raw, columns={"image": "images", "audio": "masks"})
    name = "straße_café"
    Image.new("RGB", (4, 4)).save(raw / "images" / f"{unicodedata.normalize('NFC', name)}.jpg")
    Image.new("L", (4, 4)).save(raw / "masks" / f"{unicodedata.normalize('NFD', name)}.png")
    found = discover(raw, columns={"image": "images", "seg": "masks"})
    assert [sorted(r.members) for r in found.records] == [["jpg", "seg.png"]] * 3
    assert not found.warnings
    hint = tmp_path / "hint"
    _pairs(hint, "images", "masks")
    _pairs(hint / "x", "aux", "y")  # a third paired folder, before masks alphabetically
    (hint / "x" / "y").rename(hint / "aaa")
    (hint / "x" / "aux").rename(hint / "ab")
    warning = next(w for w in discover(hint).warnings if "were read as classes" in w)
    assert "(targets: {seg.png: mask})" in warning


def test_a_column_folder_that_is_a_link_into_the_source_says_so(tmp_path: Path) -> None:
    """QA: `--column image=images` where images -> imgs_real (a link into the source, not walked twice)
    said "no folder 'images' in the source", though it is there."""
    raw = tmp_path / "voc"
    _pairs(raw, "imgs_real", "masks", n=2)
    (raw / "images").symlink_to("imgs_real")
    with pytest.raises(SourceError, match=r"--column image=images: the folder 'images' is not walked: symbolic link "
                                          r"to 'imgs_real', which is walked as part of the source already"):
        discover(raw, columns={"image": "images", "seg": "masks"})
    assert len(discover(raw, columns={"image": "imgs_real", "seg": "masks"}).records) == 2


def test_a_column_folder_that_gives_nothing_is_warned_of(tmp_path: Path) -> None:
    """QA round 3: `--column text=Annotations` (XML files only) was accepted without a word."""
    raw = tmp_path / "voc"
    _pairs(raw, "images", "masks", n=2)
    (raw / "Annotations").mkdir()
    (raw / "Annotations" / "0000.xml").write_text("<annotation/>")
    found = discover(raw, columns={"image": "images", "text": "Annotations"})
    assert any("--column text=Annotations: the folder gave no file mmdata reads" in w for w in found.warnings)
    assert any(e["source"] == "Annotations/0000.xml" for e in found.skipped)
