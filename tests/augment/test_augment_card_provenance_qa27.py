"""`mmdata augment` keeps what the source's card says of the data (QA round 27, B6): the output's card had
``license`` None, ``description`` None and ``skipped`` [] for a source sharded with ``--license CC-BY-4.0
--description d`` that had left 4 files out (inspect then said "left out by the jobs that wrote it: none"). A
derivative keeps the licence (CC BY's attribution chain) and the source's losses, carried into ``skipped`` with
their origin; ``--license`` / ``--description`` / ``--name`` override the source's. Real PNG/FLAC files,
real shards; nothing mocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.cli.main import app
from mmdata.testing import make_sample_folder

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _card(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ds1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("augcard")
    raw = make_sample_folder(base / "src", n=10)
    for png in sorted(raw.rglob("*.png"))[:4]:  # four images cut short: left out, listed in skipped
        png.write_bytes(png.read_bytes()[:40])
    mmdata.shard(raw, base / "ds1", name="birds", license="CC-BY-4.0", description="d", on_error="skip",
                 split="train=1.0", progress=False)
    card = _card(base / "ds1")
    assert card["skipped_count"] == 4 and card["license"] == "CC-BY-4.0", card["skipped"]
    return base / "ds1"


def test_the_output_keeps_the_source_licence_description_and_losses(ds1: Path, tmp_path: Path) -> None:
    rep = augment_dataset(ds1, tmp_path / "aug1", RECIPE, progress=False)
    card = _card(tmp_path / "aug1")
    assert card["license"] == "CC-BY-4.0"
    assert card["description"] == "d"
    assert card["augmentation"]["augmented_from"]["license"] == "CC-BY-4.0"
    assert card["augmentation"]["augmented_from"]["skipped_count"] == 4
    source = _card(ds1)["skipped"]
    carried = [e for e in card["skipped"] if e.get("origin") == "source dataset birds"]
    assert [{k: v for k, v in e.items() if k != "origin"} for e in carried] == source
    assert card["skipped_count"] == 4 and sum(card["skipped_counts"].values()) == 4
    # the report's skipped is this job's own losses (none); the carried ones are counted apart
    assert rep["skipped"] == [] and rep["source_skipped"] == 4
    assert mmdata.verify(tmp_path / "aug1")["ok"]
    # inspect counts them as left out by the jobs that wrote the data
    out = CliRunner().invoke(app, ["inspect", str(tmp_path / "aug1")])
    assert out.exit_code == 0, out.output
    assert "left out by the jobs that wrote it" in out.output and ": none" not in out.output.split("\n")[0]
    # a second pass keeps the first origin, not the name of the pass in between
    augment_dataset(tmp_path / "aug1", tmp_path / "aug2", RECIPE, progress=False)
    card2 = _card(tmp_path / "aug2")
    assert card2["license"] == "CC-BY-4.0"
    assert [e["origin"] for e in card2["skipped"]] == ["source dataset birds"] * 4


@pytest.mark.filterwarnings("ignore:image members")
def test_license_description_and_name_given_override_the_source(ds1: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["augment", str(ds1), str(tmp_path / "aug1"), "-r", str(RECIPES / "image_basic.yaml"),
                                   "--license", "CC-BY-SA-4.0", "--description", "flipped birds", "--name", "birds-aug"])
    assert res.exit_code == 0, res.output
    card = _card(tmp_path / "aug1")
    assert (card["license"], card["description"], card["name"]) == ("CC-BY-SA-4.0", "flipped birds", "birds-aug")
    assert card["augmentation"]["augmented_from"]["license"] == "CC-BY-4.0"  # the chain: what it was made from
    assert "--license CC-BY-SA-4.0" in card["command"] and "--name birds-aug" in card["command"]
    assert "carried into dataset.json" in " ".join(res.output.split())


def test_a_source_without_licence_gives_none(tmp_path: Path) -> None:
    ds = mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)["out"]
    augment_dataset(ds, tmp_path / "aug", RECIPE, progress=False)
    card = _card(tmp_path / "aug")
    assert card["license"] is None and card["skipped"] == []
    assert "license" not in card["augmentation"]["augmented_from"]
