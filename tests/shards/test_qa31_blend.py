"""QA31 shift D1: a blend warns of class names of two datasets that differ only in case, surrounding spaces or
Unicode form (merged by exact name, each stays two classes), naming the pairs and the datasets."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

import mmdata


def _dataset(root: Path, names: list[str]) -> str:
    for i, name in enumerate(names):
        (root / "raw" / name).mkdir(parents=True)
        for j in range(2):
            Image.new("RGB", (8, 8), (i * 40, j * 40, 0)).save(root / "raw" / name / f"{i}_{j}.png")
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return str(root / "ds")


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    t = tmp_path_factory.mktemp("qa31blend")
    return {"ref": _dataset(t / "ref", ["cat", "dog"]), "upper": _dataset(t / "upper", ["CAT", "dog"]),
            "wide": _dataset(t / "wide", ["ｃａｔ", "dog"]), "same": _dataset(t / "same", ["dog", "cat"])}


def test_case_only_names_warn_naming_the_pairs(sets: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match="differ only in case") as rec:
        b = mmdata.blend({"ref": sets["ref"], "new": sets["upper"]})
    msg = " ".join(str(w.message) for w in rec)
    assert "'cat' (ref) vs 'CAT' (new)" in msg and "label_map={'new': {'CAT': 'cat'}}" in msg and "'dog' (" not in msg
    assert b.label_names == ["cat", "dog", "CAT"]  # merging stays exact: a warning, not a behaviour change


def test_unicode_width_names_warn(sets: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match=r"'cat' \(ref\) vs 'ｃａｔ' \(new\)"):
        mmdata.blend({"ref": sets["ref"], "new": sets["wide"]})


def test_same_names_in_another_order_do_not_warn(sets: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the fixture's images repeat across datasets: the blend's copies warning (QA33) is not this test's
        warnings.filterwarnings("ignore", message=r"blend: \d+ samples? (is|are) (a )?cop")
        b = mmdata.blend({"ref": sets["ref"], "new": sets["same"]})
    assert b.label_names == ["cat", "dog"]
