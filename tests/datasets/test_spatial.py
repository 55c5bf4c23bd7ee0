"""avdigits-spatial: captions agree with the frame, flips (not) preserving that, determinism, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.augment.cross import ConsistentHFlip
from mmdata.augment.image import HFlip
from mmdata.datasets.spatial import caption_position, frame_position, generate_spatial
from mmdata.shards import index as idx


@pytest.fixture(scope="module")
def spatial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.spatial import build

    return build(tmp_path_factory.mktemp("sp") / "sp", limit=6, progress=False)


def _samples(path: Path) -> list[mmdata.Sample]:
    return [s for split in ("train", "val", "test") for s in mmdata.open_dataset(path, split=split)]


def test_every_caption_names_where_the_frame_is(spatial: Path) -> None:
    samples = _samples(spatial)
    assert len(samples) == 60
    rows = idx.load_index(spatial).to_pydict()
    position = dict(zip(rows["key"], rows["position"]))
    for s in samples:
        img = s["image"].numpy()[0]
        assert img.shape == (32, 32) and s["text"].startswith("the framed digit")
        assert frame_position(img) == caption_position(s["text"]) == position[s.key], s.key
        assert "audio" in s and 0 <= s["label"] <= 9
    assert set(position.values()) == {"left", "right", "top", "bottom"}
    card = idx.load_card(spatial)
    assert card["name"] == "avdigits-spatial" and card["num_classes"] == 10
    assert sum(card["avdigits_spatial"]["positions"].values()) == 60
    # QA27 B14: the licence, attribution, version and command, as avdigits' card
    assert card["license"] == "CC-BY-4.0" and card["mmdata_version"] and "doi" in card["citation"]
    assert card["command"].startswith("mmdata datasets build avdigits-spatial OUT")
    assert card["description"].startswith("avdigits-spatial: ") and "distractor" in card["description"]
    assert [a["modality"] for a in card["avdigits_spatial"]["attribution"]] == ["image", "audio", "text"]


def test_consistent_hflip_keeps_captions_true_and_hflip_breaks_left_right(spatial: Path) -> None:
    flipped, consistent = HFlip(p=1.0), ConsistentHFlip(p=1.0)
    broken = 0
    for s in _samples(spatial):
        pos = caption_position(s["text"])
        c = consistent.apply(s, {"applied": True})
        assert frame_position(c["image"].numpy()[0]) == caption_position(c["text"])  # always consistent
        h = flipped.apply(s, {"applied": True})
        agree = frame_position(h["image"].numpy()[0]) == caption_position(h["text"])
        assert agree == (pos in ("top", "bottom"))  # hflip contradicts exactly the left/right captions
        broken += not agree
    assert broken > 10


def test_generation_is_deterministic_and_seeded() -> None:
    a, b, c = generate_spatial(0, limit=2), generate_spatial(0, limit=2), generate_spatial(1, limit=2)
    assert a["content_sha256"] == b["content_sha256"] != c["content_sha256"]
    assert [r["png"] for r in a["records"]] == [r["png"] for r in b["records"]]
    # the digits are mirrored at random: flipping an image gives an image of the same distribution
    raw = {r["key"]: r for r in generate_spatial(0, limit=6)["records"]}
    assert len({r["layout"] for r in raw.values()}) == 2


def test_build_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["datasets", "build", "avdigits-spatial", str(tmp_path / "sp"), "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert mmdata.inspect(tmp_path / "sp")["samples"] == 20 and mmdata.verify(tmp_path / "sp")["ok"]
    assert "avdigits-spatial" in CliRunner().invoke(app, ["datasets", "list"]).output
    assert np.asarray(next(iter(mmdata.open_dataset(tmp_path / "sp", split="train")))["image"]).shape == (1, 32, 32)
