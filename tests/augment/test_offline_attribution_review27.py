"""An augmented copy keeps what crediting its source needs: the ``citation``, ``homepage`` and the per-source
``attribution`` (review27 G3-2). Before, only the licence passed through: a CC BY source's citation, homepage
and ``avdigits.attribution`` were dropped from the copy's card and its Hub README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmdata
from mmdata.datasets import avdigits
from mmdata.augment.offline import augment_dataset
from mmdata.interop.hf import hub_card
from mmdata.testing import image_bytes

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}


def _card(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text(encoding="utf-8"))


def test_an_hf_sourced_datasets_citation_and_homepage_pass_to_its_augmented_copy(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    info = {"license": "CC-BY-4.0", "citation": "@misc{tiny, title={Tiny}}", "homepage": "https://example.org/tiny"}
    hf = datasets.Dataset.from_dict({"image": [image_bytes(i) for i in range(4)], "label": [0, 1, 0, 1]}, feats,
                                    info=datasets.DatasetInfo(features=feats, **info))
    mmdata.shard(hf, tmp_path / "ds", progress=False)
    augment_dataset(tmp_path / "ds", tmp_path / "aug", RECIPE, copies=1, progress=False)
    card = _card(tmp_path / "aug")
    assert {k: card.get(k) for k in info} == info
    readme = hub_card(tmp_path / "aug")
    assert "@misc{tiny, title={Tiny}}" in readme


def test_avdigits_attribution_passes_down_two_augment_passes(tmp_path: Path) -> None:
    src = avdigits.build(tmp_path / "av", limit=4, progress=False)
    want = _card(Path(src))["avdigits"]["attribution"]
    augment_dataset(src, tmp_path / "aug1", RECIPE, copies=1, progress=False)
    augment_dataset(tmp_path / "aug1", tmp_path / "aug2", RECIPE, copies=1, progress=False)
    for out in ("aug1", "aug2"):
        card = _card(tmp_path / out)
        assert card["augmentation"]["augmented_from"]["attribution"] == want, out
        assert card["license"] == _card(Path(src))["license"]
    readme = hub_card(tmp_path / "aug2")
    assert "## Sources" in readme and want[0]["source"] in readme
