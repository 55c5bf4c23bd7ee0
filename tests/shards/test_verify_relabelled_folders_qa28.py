"""A dataset ``mmdata shard`` just wrote verifies clean when class folders hold label files that relabel a
few samples away from their folder (review of QA28, finding 1: ``cat/s0.cls`` saying ``dog`` made ``verify``
fail, exit 1, on a fresh dataset). The class-folder check that is not switched off by editing
``label_names_from`` (QA28 security #7) still catches a forged name swap: names that are not read from the
folders are checked per folder, and a folder most of whose labelled samples carry another folder's name
is one whose name was swapped (a permutation of the names flips every sample of the folders it moves; a
relabel flips a few)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.verify import verify
from mmdata.testing import image_bytes
from tests.shards.test_verify_class_folders_qa28 import _forge


def _relabelled(root: Path, sizes: dict[str, int], moved: dict[str, list[tuple[int, str]]]) -> Path:
    """Class folders with ``labels.txt`` and a ``.cls`` beside each PNG; ``moved[folder]`` relabels samples."""
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("".join(f"{c}\n" for c in sizes), encoding="utf-8")
    n = 0
    for folder, count in sizes.items():
        (root / folder).mkdir()
        relabel = dict(moved.get(folder, []))
        for i in range(count):
            (root / folder / f"s{i}.png").write_bytes(image_bytes(n, size=(8, 8)))
            (root / folder / f"s{i}.cls").write_text(relabel.get(i, folder), encoding="utf-8")
            n += 1
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("relab")
    raw = _relabelled(t / "raw", {"cat": 4, "dog": 4}, {"cat": [(0, "dog")], "dog": [(0, "cat")]})
    mmdata.shard(raw, t / "ds", progress=False)
    return t / "ds"


@pytest.mark.parametrize("deep", [False, True])
def test_a_relabelled_dataset_shard_just_wrote_verifies_clean(built: Path, deep: bool) -> None:
    card = json.loads((built / idx.CARD).read_text(encoding="utf-8"))
    assert card["label_names"] == ["cat", "dog"] and card["label_names_from"] == "labels.txt"
    rep = verify(built, deep=deep)
    assert rep["ok"], rep["problems"]


def test_the_cli_verify_of_it_exits_0(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["verify", str(built)])
    assert not exc.value.code, capsys.readouterr()


@pytest.mark.parametrize("names_from", ["labels.txt", None])
def test_a_forged_swap_of_a_relabelled_dataset_still_fails(built: Path, tmp_path: Path,
                                                            names_from: str | None) -> None:
    ds = Path(shutil.copytree(built, tmp_path / "ds"))
    _forge(ds, label_names=["dog", "cat"], label_names_from=names_from)
    rep = verify(ds)
    assert not rep["ok"]
    (p,) = [p for p in rep["problems"] if "label_names disagree with the class folders" in p["problem"]]
    assert p["shard"] == idx.CARD and "'cat': 3 of 4" in p["problem"] and "'dog': 3 of 4" in p["problem"]


def test_a_swap_of_two_small_classes_beside_a_big_one_fails(tmp_path: Path) -> None:
    """Most samples overall keep their folder's name (the big class): the swap is found per folder."""
    raw = _relabelled(tmp_path / "raw", {"ant": 2, "bee": 2, "cow": 12}, {"cow": [(0, "ant")]})
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert verify(tmp_path / "ds")["ok"]
    _forge(tmp_path / "ds", label_names=["bee", "ant", "cow"])
    rep = verify(tmp_path / "ds")
    (p,) = [p for p in rep["problems"] if "label_names disagree with the class folders" in p["problem"]]
    assert "'ant': 2 of 2" in p["problem"] and "'bee': 2 of 2" in p["problem"] and "'cow':" not in p["problem"]


def test_names_read_from_the_folders_stay_strict(built: Path, tmp_path: Path) -> None:
    """``label_names_from: folders`` says every label is its folder's: one sample that disagrees is reported."""
    ds = Path(shutil.copytree(built, tmp_path / "ds"))
    _forge(ds, label_names_from="folders")
    rep = verify(ds)
    (p,) = [p for p in rep["problems"] if "label_names disagree with the class folders" in p["problem"]]
    assert p["problem"].count("2 samples") == 1
