"""The avdigits card carries its licence and attribution (QA round 27, B14): it named sklearn ``load_digits``
and espeak-ng without licence or attribution, and had no ``license``, ``mmdata_version`` or ``command``.
A real (small) build through the sharding API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmdata import __version__
from mmdata.datasets.avdigits import Knobs, build


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = build(tmp_path_factory.mktemp("avcard") / "av", seed=2, limit=5, progress=False)
    return json.loads((Path(out) / "dataset.json").read_text(encoding="utf-8"))


def test_the_card_has_licence_version_and_command(card: dict) -> None:
    assert card["license"] == "CC-BY-4.0"
    assert card["mmdata_version"] == __version__
    assert card["command"] == "mmdata datasets build avdigits OUT --seed 2 --limit 5"
    assert "10.24432/C50P49" in card["citation"] and "Alpaydin" in card["citation"]
    assert "Alpaydin" in card["description"]


def test_each_modality_names_its_source_and_licence(card: dict) -> None:
    by = {a["modality"]: a for a in card["avdigits"]["attribution"]}
    assert set(by) == {"image", "audio", "text"}
    assert by["image"]["license"] == "CC-BY-4.0" and "load_digits" in by["image"]["source"]
    assert "archive.ics.uci.edu" in by["image"]["url"]
    assert by["audio"]["tool"] == "espeak-ng" and by["audio"]["tool_license"] == "GPL-3.0-or-later"
    assert "not covered by the GPL" in by["audio"]["license"]
    assert all(a.get("license") for a in by.values())


def test_knobs_the_cli_cannot_set_give_a_python_command(tmp_path: Path) -> None:
    out = build(tmp_path / "av", limit=3, knobs=Knobs(snr_db=0.0), progress=False)
    card = json.loads((Path(out) / "dataset.json").read_text(encoding="utf-8"))
    assert card["command"].startswith("mmdata.datasets.avdigits.build(OUT, seed=0, limit=3, knobs=Knobs(")
    assert "snr_db=0.0" in card["command"]
