"""A paired layout one folder below the source: ``voc/`` holding ``VOC2012/JPEGImages/`` and
``VOC2012/SegmentationClass/``. It got no hint (the paired-layout warning looked at the source's own
folders only): ``voc/`` read as one class "VOC2012", every image and every mask a sample of its own. The
warning now names the folder and the exact ``--column`` options, and the route it names works."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.shards.sources import discover
from tests.shards.test_folder_columns import _voc
from tests.shards.test_paired_layout import _pairs

WANT = "--column image=VOC2012/JPEGImages --column seg=VOC2012/SegmentationClass"


def _nested(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "one folder below the source" in w]


def test_voc_one_level_up_was_one_class_and_now_warns(tmp_path: Path) -> None:
    _pairs(tmp_path / "voc" / "VOC2012", "JPEGImages", "SegmentationClass")
    rep = mmdata.shard(tmp_path / "voc", tmp_path / "ds", progress=False)
    # what it still does (the layout is the user's to name): one class, images and masks apart
    assert rep["samples"] == 8 and mmdata.inspect(tmp_path / "ds")["per_class"] == {"train": {"VOC2012": 8}}
    (warning,) = _nested(rep["warnings"])
    assert "folder VOC2012/ holds a paired layout" in warning and "8 of 8 samples" in warning
    assert "'0000' is in VOC2012/JPEGImages, VOC2012/SegmentationClass" in warning
    assert WANT in warning
    assert "SRC/VOC2012) with --column image=JPEGImages --column seg=SegmentationClass" in warning
    assert "targets: {seg.png: mask}" in warning
    assert str(tmp_path) not in warning  # warnings go to the card: no path of this machine


@pytest.mark.parametrize("extras", ["readme", "labels", "both"])
def test_the_hint_fires_whatever_the_root_holds(tmp_path: Path, extras: str) -> None:
    """A README at the root (a text sample: no class folders) or label files (labels from them) change how
    the source is read, not that the pairs are apart."""
    raw = _voc(tmp_path / "raw")
    if extras == "labels":
        (raw / "README.txt").unlink()
    elif extras == "readme":
        for f in (raw / "VOC2012" / "JPEGImages").glob("*.cls"):
            f.unlink()
    (warning,) = _nested(discover(raw).warnings)
    assert WANT in warning


def test_the_route_the_hint_names_pairs_the_images_and_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pairs(tmp_path / "voc" / "VOC2012", "JPEGImages", "SegmentationClass")
    (warning,) = _nested(discover(tmp_path / "voc").warnings)
    words = shlex.split(warning[warning.index("--column"):warning.index(" (FOLDER")])
    from tests.shards.test_shard_cli_qa import _cli

    code, out = _cli("shard", str(tmp_path / "voc"), str(tmp_path / "ds"), *words, capsys=capsys)
    assert code == 0, out
    assert "wrote 4 samples" in out and "one folder below" not in out
    s = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds")}["0002"]
    mask = np.asarray(Image.open(tmp_path / "voc" / "VOC2012" / "SegmentationClass" / "0002.png"))
    assert np.array_equal(s["seg.png"][0].numpy(), mask)
    # the other route it names: the folder itself as the source
    inside = warning[warning.index("SRC/VOC2012) with ") + len("SRC/VOC2012) with "):warning.index("; recipes")]
    rep = mmdata.shard(tmp_path / "voc" / "VOC2012", tmp_path / "ds2", progress=False,
                       columns=dict(w.split("=", 1) for w in shlex.split(inside) if w != "--column"))
    assert rep["samples"] == 4 and not rep["warnings"]


def test_masks_for_a_few_images_still_warn(tmp_path: Path) -> None:
    """Pascal VOC segments ~3k of its 17k images: the mask folder's names recur, most images' do not."""
    voc = tmp_path / "voc" / "VOC2012"
    _pairs(voc, "JPEGImages", "SegmentationClass", n=3)
    for i in range(3, 12):
        Image.fromarray(np.full((20, 30, 3), i, np.uint8)).save(voc / "JPEGImages" / f"{i:04d}.jpg")
    (warning,) = _nested(discover(tmp_path / "voc").warnings)
    assert "6 of 15 samples" in warning and WANT in warning
    (warning,) = [w for w in discover(voc).warnings if "were read as classes" in w]  # the source itself too
    assert "--column image=JPEGImages --column seg=SegmentationClass" in warning


def test_class_folders_one_level_down_do_not_warn(tmp_path: Path) -> None:
    """``train/cat/001.jpg`` beside ``train/dog/001.jpg``: classes numbering their files alike; and sound
    beside its transcript (no image to pair a mask with)."""
    _pairs(tmp_path / "pets" / "train", "cat", "dog", mask_ext="jpg")
    assert not _nested(discover(tmp_path / "pets").warnings)
    speech = tmp_path / "speech" / "corpus"
    for i in range(3):
        (speech / "wav").mkdir(parents=True, exist_ok=True)
        (speech / "txt").mkdir(parents=True, exist_ok=True)
        (speech / "wav" / f"{i}.wav").write_bytes(mmdata.testing.audio_bytes(i, fmt="wav"))
        (speech / "txt" / f"{i}.txt").write_text(f"utterance {i}")
    assert not _nested(discover(tmp_path / "speech").warnings)
    # with the columns given, nothing to say
    _pairs(tmp_path / "voc" / "VOC2012", "JPEGImages", "SegmentationClass")
    assert not _nested(discover(tmp_path / "voc", columns={"image": "VOC2012/JPEGImages",
                                                            "seg": "VOC2012/SegmentationClass"}).warnings)
