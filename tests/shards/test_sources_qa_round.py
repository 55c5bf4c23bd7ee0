"""QA round on ``mmdata shard``'s source discovery (2026-12-04): class folders falsely called a paired
layout when one file had another type; UTF-16 manifests and captions named "not UTF-8 (Latin-1?)"; class
names that differ only in case kept without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover
from mmdata.testing import audio_bytes, image_bytes
from tests.shards.test_paired_layout import _pairs


def _classes(root: Path, names: tuple[str, ...] = ("cat", "dog", "bird"), n: int = 10) -> Path:
    """Class folders numbering their files alike, each sample an image and its sound."""
    for c in names:
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{i:04d}.jpg").write_bytes(image_bytes(i, fmt="jpeg"))
            (root / c / f"{i:04d}.wav").write_bytes(audio_bytes(i, fmt="wav"))
    return root


def _paired(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "were read as classes" in w or "holds a paired layout" in w]


# -- 1. class folders with an odd file type are no paired layout ------------------------------------------


def test_one_odd_file_type_in_a_class_folder_is_no_paired_layout(tmp_path: Path) -> None:
    root = _classes(tmp_path / "pets")
    (root / "dog" / "0003.jpg").unlink()
    (root / "dog" / "0003.png").write_bytes(image_bytes(3))
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    assert not _paired(rep["warnings"]), rep["warnings"]  # was: "--column image=bird --column cat=cat ..."
    assert rep["samples"] == 30 and mmdata.inspect(tmp_path / "ds")["num_classes"] == 3


def test_an_extra_type_in_one_class_folder_is_no_paired_layout(tmp_path: Path) -> None:
    """Every dog has a caption, no cat has: the folders' types differ, the names' types overlap."""
    root = _classes(tmp_path / "pets", ("cat", "dog"), n=4)
    for i in range(4):
        (root / "dog" / f"{i:04d}.txt").write_text(f"dog {i}", encoding="utf-8")
    assert not _paired(discover(root).warnings)


def test_sub_folders_of_a_class_with_odd_names_are_no_paired_layout(tmp_path: Path) -> None:
    root = tmp_path / "nest"
    for sub in ("a", "b b"):
        (root / "Cat" / sub).mkdir(parents=True)
        (root / "Cat" / sub / "ünï 0.png").write_bytes(image_bytes(0))
        (root / "Cat" / sub / "ünï 0.txt").write_text("a cat", encoding="utf-8")
    (root / "Cat" / "a" / "ünï 0.wav").write_bytes(audio_bytes(0, fmt="wav"))
    (root / "Dog").mkdir()
    (root / "Dog" / "x.png").write_bytes(image_bytes(1))
    found = discover(root)
    assert not _paired(found.warnings), found.warnings  # was: "--column image=Cat/a --column b_b='Cat/b b'"


def test_names_whose_types_differ_across_folders_still_warn(tmp_path: Path) -> None:
    """The layout the warning is for, under names it does not know: every shared name a .jpg in one
    folder and a .png in the other (a few images without their mask, and one odd mask, allowed)."""
    root = tmp_path / "scans"
    _pairs(root, "photos", "maps", n=12)
    (root / "photos" / "0011.jpg").unlink()
    (root / "photos" / "0011.png").write_bytes(image_bytes(11))  # one of twelve pairs of one type
    (warning,) = _paired(discover(root).warnings)
    assert "24 of 24 samples share their name" in warning and "--column image=photos --column maps=maps" in warning
    nested = tmp_path / "outer"
    _pairs(nested / "set", "photos", "maps")
    (warning,) = _paired(discover(nested).warnings)
    assert "folder set/ holds a paired layout" in warning and "--column image=set/photos --column maps=set/maps" in warning


def test_classes_of_one_mixed_type_do_not_warn_and_named_folders_do(tmp_path: Path) -> None:
    assert not _paired(discover(_classes(tmp_path / "pets", n=3)).warnings)
    _pairs(tmp_path / "rgbd", "rgb", "depth", mask_ext="jpg")  # one type, but the names of such a layout
    assert _paired(discover(tmp_path / "rgbd").warnings)
