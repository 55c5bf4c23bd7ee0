"""Licence and attribution through Hugging Face interop (QA round 27, B5): ``mmdata.shard(hf_dataset, OUT)``
dropped the ``DatasetInfo``'s license / description / citation / homepage (the card's license None), and
``mmdata.to_hf`` gave ``info.license == ''`` for a card with ``--license CC-BY-4.0`` and no ``source_key``
column (the original file a row came from). Real HF datasets (in memory and saved to disk), real shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import image_bytes, make_sample_folder

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, Image  # noqa: E402

from mmdata.interop.hf import dataset_info  # noqa: E402

INFO = {"license": "CC-BY-4.0", "description": "four tiny pictures", "citation": "@misc{tiny, title={Tiny}}",
        "homepage": "https://example.org/tiny"}


def _hf(offset: int = 0, **info: str) -> Dataset:
    feats = Features({"image": Image(), "label": ClassLabel(names=["a", "b"])})
    return Dataset.from_dict({"image": [image_bytes(i) for i in range(offset, offset + 4)], "label": [0, 1, 0, 1]}, feats,
                             info=DatasetInfo(features=feats, **info))


def _card(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text(encoding="utf-8"))


def test_shard_keeps_the_dataset_info_and_to_hf_gives_it_back(tmp_path: Path) -> None:
    src = tmp_path / "saved"
    _hf(**INFO).save_to_disk(str(src))  # a save_to_disk folder: its dataset_info.json holds the info
    mmdata.shard(src, tmp_path / "ds", progress=False)
    card = _card(tmp_path / "ds")
    assert {k: card.get(k) for k in INFO} == INFO
    back = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "hf")
    assert {k: getattr(back.info, k) for k in INFO} == INFO
    it = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "hf", iterable=True)
    assert it.info.license == "CC-BY-4.0"


def test_a_licence_given_to_shard_overrides_the_dataset_info(tmp_path: Path) -> None:
    dd = DatasetDict({"train": _hf(**INFO), "validation": _hf(4, **INFO)})
    mmdata.shard(dd, tmp_path / "ds", license="CC0-1.0", progress=False)
    card = _card(tmp_path / "ds")
    assert card["license"] == "CC0-1.0" and card["description"] == INFO["description"]
    assert card["citation"] == INFO["citation"]


def test_a_dataset_without_info_gives_a_card_without_it(tmp_path: Path) -> None:
    assert dataset_info(_hf()) == {}
    mmdata.shard(_hf(), tmp_path / "ds", progress=False)
    card = _card(tmp_path / "ds")
    assert card["license"] is None and "citation" not in card and "homepage" not in card
    assert "info" not in card["hf"]


def test_to_hf_gives_the_card_licence_and_each_row_its_source_key(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, odd_stems=True, nested=True)
    mmdata.shard(raw, tmp_path / "ds", license="CC-BY-4.0", description="birds", progress=False)
    d = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "hf")
    assert (d.info.license, d.info.description) == ("CC-BY-4.0", "birds")
    assert list(d.features)[:2] == ["key", "source_key"]
    from mmdata.shards.index import load_index

    rows = load_index(tmp_path / "ds", columns=["key", "source_key"]).to_pydict()
    want = dict(zip(rows["key"], rows["source_key"]))
    got = dict(zip(d["key"], d["source_key"]))
    assert got and all(want[k] == sk for k, sk in got.items())
    assert any(k != sk for k, sk in got.items())  # odd stems: the keys differ from the original names
