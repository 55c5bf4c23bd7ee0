"""``verify``'s check of the class names against the class folders is not switched off by editing the
free-text ``label_names_from`` (QA28 security #7: names swapped and ``label_names_from: labels.txt``, digests
recomputed, passed ``verify`` and ``verify --deep`` while ``diff`` showed every class relabelled). The check
now runs whenever the class names are the folders the samples were sharded from, whatever the card says
they were read from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.verify import verify
from mmdata.testing import make_class_folders


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("vcf")
    mmdata.shard(make_class_folders(t / "raw", classes=("cat", "dog"), per_class=3), t / "ds", progress=False)
    return t / "ds"


@pytest.fixture
def ds(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "ds"))


def _forge(ds: Path, **entries: object) -> None:
    """Edit the card and recompute its digests, as anyone can (card_digests detect edits, not forgery)."""
    card = json.loads((ds / idx.CARD).read_text(encoding="utf-8"))
    card.update(entries)
    card.pop(idx.CARD_DIGESTS, None)
    card[idx.CARD_DIGESTS] = idx.card_digests(card)
    (ds / idx.CARD).write_bytes(idx.card_bytes(card))


@pytest.mark.parametrize("names_from", ["labels.txt", "--labels", None, "anything"])
@pytest.mark.parametrize("deep", [False, True])
def test_swapped_names_fail_whatever_label_names_from_says(ds: Path, names_from: str | None, deep: bool) -> None:
    _forge(ds, label_names=["dog", "cat"], label_names_from=names_from)
    rep = verify(ds, deep=deep)
    assert not rep["ok"]
    (p,) = [p for p in rep["problems"] if "label_names disagree with the class folders" in p["problem"]]
    assert p["shard"] == idx.CARD and p["key"].startswith("cat_") and "'cat/000'" in p["problem"]


def test_names_from_a_names_file_in_folder_order_pass(ds: Path) -> None:
    _forge(ds, label_names_from="labels.txt")  # names as the folders give them: nothing relabelled
    assert verify(ds)["ok"]


def test_names_that_are_not_the_folders_are_not_checked_against_them(tmp_path: Path) -> None:
    """Labels from label files beside samples in folders of other names: the folders say nothing of the class."""
    raw = tmp_path / "raw"
    for folder, names in (("batch1", ("a", "b")), ("batch2", ("c",))):
        (raw / folder).mkdir(parents=True)
        for n in names:
            (raw / folder / f"{n}.txt").write_text(f"caption {n}", encoding="utf-8")
            (raw / folder / f"{n}.cls").write_text("dog" if n == "b" else "cat", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False, label_names=["cat", "dog"])
    assert verify(tmp_path / "ds")["ok"]
