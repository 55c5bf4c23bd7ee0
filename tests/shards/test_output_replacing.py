"""A job replaces only its own command's dataset in OUT (QA35 pipeline #2, data loss): ``mmdata augment aug
clean`` with SRC and OUT swapped replaced the only sharded copy of ``clean`` (exit 0), and ``augment`` /
``datasets build`` / ``shard`` replaced a dataset another command wrote there. Now: another command's dataset,
or the dataset SRC was augmented from, is refused (exit 2, naming what OUT holds and ``--force``) and left as it
was; a rerun of the same command replaces its own output as before; ``--force`` replaces either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.datasets.avdigits import build
from mmdata.errors import SourceError
from mmdata.shards.replacing import command_kind
from mmdata.testing import make_sample_folder

REPO = Path(__file__).resolve().parents[2]
RECIPE = {"image": [{"op": "hflip", "p": 1.0}]}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _card(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text())


@pytest.fixture()
def clean_and_aug(tmp_path: Path) -> tuple[Path, Path]:
    clean, aug = tmp_path / "clean", tmp_path / "aug"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), clean, split={"train": 0.5, "val": 0.5}, progress=False)
    augment_dataset(clean, aug, RECIPE, copies=2, progress=False)
    return clean, aug


def test_swapped_src_and_out_is_refused_and_clean_kept(clean_and_aug: tuple[Path, Path]) -> None:
    clean, aug = clean_and_aug
    before = (clean / "dataset.json").read_bytes()
    got = _cli("augment", str(aug), str(clean), "-r", "avdigits", "--copies", "2", "--json")
    assert got.returncode == 2, got.stderr
    doc = json.loads(got.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert "augmented from" in got.stderr and "--force" in got.stderr and str(clean) in got.stderr, got.stderr
    assert (clean / "dataset.json").read_bytes() == before
    assert mmdata.verify(clean)["ok"]


def test_ancestor_is_refused_for_the_same_command(clean_and_aug: tuple[Path, Path], tmp_path: Path) -> None:
    _, aug = clean_and_aug
    aug2 = tmp_path / "aug2"
    augment_dataset(aug, aug2, RECIPE, progress=False)
    before = (aug / "dataset.json").read_bytes()
    with pytest.raises(SourceError, match=r"augmented from.*--force"):
        augment_dataset(aug2, aug, RECIPE, progress=False)  # both augment outputs: aug is aug2's origin
    assert (aug / "dataset.json").read_bytes() == before
    with pytest.raises(SourceError, match="augmented from"):
        mmdata.shard(aug2, aug, progress=False)  # shard of aug2's shards into aug2's origin
    tars = sorted(str(p) for p in aug2.glob("*.tar"))
    for given in (f"{aug2}/*.tar", tars):  # SRC as shard files (QA35 review: the folder form only was refused)
        with pytest.raises(SourceError, match="augmented from"):
            augment_dataset(given, aug, RECIPE, progress=False)
    assert (aug / "dataset.json").read_bytes() == before


def test_another_commands_dataset_is_refused(clean_and_aug: tuple[Path, Path], tmp_path: Path) -> None:
    clean, aug = clean_and_aug
    other = tmp_path / "other"
    mmdata.shard(make_sample_folder(tmp_path / "raw2", n=4), other, progress=False)
    with pytest.raises(SourceError, match=r"written by `mmdata shard SRC OUT`, not by `mmdata augment`.*--force"):
        augment_dataset(clean, other, RECIPE, progress=False)  # OUT: another shard job's dataset
    with pytest.raises(SourceError, match=r"written by `mmdata augment.*not by `mmdata shard`"):
        mmdata.shard(tmp_path / "raw2", aug, progress=False)
    with pytest.raises(SourceError, match=r"written by `mmdata shard.*not by `mmdata datasets build`"):
        build(other, limit=1, progress=False)
    assert _card(other)["counts"]["samples"] == 4 and _card(aug)["command"].startswith("mmdata augment")


def test_datasets_build_cli_refuses_a_shard_dataset(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), ds, progress=False)
    for name in ("avdigits", "avdigits-spatial"):
        got = _cli("datasets", "build", name, str(ds), "--limit", "1")
        assert got.returncode == 2 and "mmdata shard" in got.stderr and "--force" in got.stderr, got.stderr
    assert _card(ds)["counts"]["samples"] == 4


@pytest.mark.filterwarnings("ignore:limit . per class")
def test_same_command_rerun_replaces_and_force_replaces_another(clean_and_aug: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    clean, aug = clean_and_aug
    rep = augment_dataset(clean, aug, RECIPE, copies=1, progress=False)  # another recipe option: replaced
    assert not rep.get("up_to_date") and _card(aug)["counts"]["samples"] == 8
    rep = mmdata.shard(tmp_path / "raw", clean, split={"train": 0.5, "val": 0.5}, maxcount=2,
                       progress=False)  # re-shard with other options
    assert rep["samples"] == 8
    build(tmp_path / "av", limit=1, progress=False)
    build(tmp_path / "av", limit=2, progress=False)  # built again
    got = _cli("augment", str(clean), str(tmp_path / "av"), "-r", "avdigits", "--force")  # --force: replaced
    assert got.returncode == 0, got.stderr
    assert _card(tmp_path / "av")["command"].startswith("mmdata augment")
    augment_dataset(clean, aug, RECIPE, progress=False, force=True)


def test_command_kinds() -> None:
    assert command_kind("mmdata shard SRC OUT --maxcount 5") == "shard"
    assert command_kind("mmdata augment SRC OUT -r RECIPE") == "augment"
    assert command_kind("mmdata datasets build avdigits-spatial OUT --limit 2") == "datasets build"
    assert command_kind("mmdata.datasets.avdigits.build(OUT, seed=0, limit=None, knobs=Knobs())") == "datasets build"
    assert command_kind("python my_script.py") is None and command_kind(3) is None
