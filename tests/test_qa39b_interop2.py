"""QA round 39, second round (interop2): the automatic ``key`` column of HF datasets only where its values are
unique (merged to_hf exports, a ``key`` of another meaning) with ``columns={"key": None}`` to opt out; a
DataModule subclass's own ``val_dataloader`` kept with ``val_split=None``."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

datasets = pytest.importorskip("datasets")


def _keys(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return sorted(pq.read_table(path / "index.parquet", columns=["key"])["key"].to_pylist())


def _exports(tmp_path: Path) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in "AB":
            mmdata.shard(make_sample_folder(tmp_path / f"raw{n}", n=4), tmp_path / n, progress=False)
        return mmdata.to_hf(tmp_path / "A", "train"), mmdata.to_hf(tmp_path / "B", "train")


def test_merged_exports_fall_back_to_row_numbers(tmp_path: Path) -> None:
    """(QA39 review interop #1) two exports concatenated repeat 000000..: row numbers again, with a note."""
    a, b = _exports(tmp_path)
    cat = datasets.concatenate_datasets([a, b])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        mmdata.shard(cat, tmp_path / "cat", progress=False)
    assert _keys(tmp_path / "cat") == [f"{i:06d}" for i in range(8)]
    assert any("column 'key'" in str(x.message) and "columns={'key': None}" in str(x.message) for x in w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(datasets.DatasetDict({"train": a, "validation": b}), tmp_path / "dd", progress=False)
    assert len(_keys(tmp_path / "dd")) == 8


def test_own_key_column_repeated_and_opt_out(tmp_path: Path) -> None:
    """(QA39 review interop #1) a 'key' of another meaning is kept as metadata; columns={'key': None} opts out."""
    own = datasets.Dataset.from_dict({"key": ["C major", "D minor", "C major"], "source_key": ["x", "y", "z"],
                                      "text": ["p", "q", "r"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(own, tmp_path / "own", progress=False)
    assert _keys(tmp_path / "own") == ["000000", "000001", "000002"]
    uniq = datasets.Dataset.from_dict({"key": ["C major", "D minor"], "source_key": ["x", "y"], "text": ["p", "q"]})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        mmdata.shard(uniq, tmp_path / "opt", progress=False, columns={"key": None})
    assert _keys(tmp_path / "opt") == ["000000", "000001"]
    assert not any("column 'key'" in str(x.message) for x in w)
    with warnings.catch_warnings(record=True) as w:  # unique keys: taken, no note
        warnings.simplefilter("always")
        mmdata.shard(a := _exports(tmp_path / "x")[0], tmp_path / "rt", progress=False)
    assert _keys(tmp_path / "rt") == sorted(a["key"])
    assert not any("column 'key'" in str(x.message) for x in w)


def test_val_split_none_keeps_a_subclass_val_dataloader(tmp_path: Path) -> None:
    """(QA39 review interop #2) validation on another source: the subclass's own val_dataloader is used."""
    pytest.importorskip("lightning")
    from lightning.pytorch.utilities.model_helpers import is_overridden
    from torch.utils.data import DataLoader

    from mmdata.lightning import DataModule

    class Sub(DataModule):
        def val_dataloader(self):  # noqa: ANN201
            return DataLoader([1, 2, 3])

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    dm = Sub(tmp_path / "ds", batch_size=2, val_split=None)
    assert is_overridden("val_dataloader", dm)
    assert isinstance(dm.val_dataloader(), DataLoader)
    plain = DataModule(tmp_path / "ds", batch_size=2, val_split=None)
    assert not is_overridden("val_dataloader", plain)


def test_webdataset_features_reads_no_shard_for_a_carded_hf_field(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """(QA39 review interop #3) an HF-imported .npy field's dtypes come from the card: no shard is read; a complex
    field is still refused from the card's dtypes alone."""
    import numpy as np

    from mmdata.errors import ShardError
    from mmdata.interop import hf

    emb = datasets.Dataset.from_dict({"text": ["a", "b"], "emb": [[0.5, 1.0], [1.5, 2.0]]},
                                     features=datasets.Features({"text": datasets.Value("string"),
                                                                 "emb": datasets.List(datasets.Value("float32"))}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(emb, tmp_path / "ds", progress=False)
    read: list[list[str]] = []
    real = hf._npy_specs
    monkeypatch.setattr(hf, "_npy_specs", lambda p, c, fields: read.append(list(fields)) or real(p, c, fields))
    feats = hf.webdataset_features(tmp_path / "ds", decode_audio=False)
    assert "emb.npy" in feats and read == [[]]
    raw = make_sample_folder(tmp_path / "raw", n=2)
    for i in range(2):
        np.save(f"{raw}/{i:06d}.iq.npy", np.ones(4, np.complex64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "iq", progress=False)
    read.clear()
    with pytest.raises(ShardError, match=r"field 'iq' holds complex"):
        hf.webdataset_features(tmp_path / "iq", decode_audio=False)


def test_collate_rate_advice_names_where_the_dataset_rates_are() -> None:
    """(QA39 review interop #6) collate sees one batch: the message says where the dataset's rates are counted."""
    import torch

    from mmdata.types import Sample, collate

    ss = [Sample("a", {"audio": torch.zeros(1, 8)}, sample_rate=8000),
          Sample("b", {"audio": torch.zeros(1, 8)}, sample_rate=16000)]
    with pytest.raises(ValueError, match=r"mmdata inspect DATASET` counts the dataset's rates"):
        collate(ss)


def test_webdataset_features_trusts_the_shards_it_read_over_a_stale_card(tmp_path: Path) -> None:
    """(QA39 review 2 b #1) a card whose recorded dtypes say one float32 while the shards it had to read hold int16
    and int32 arrays: the shards' dtypes decide (HF's loader would fail on them), not the card's."""
    import json

    import numpy as np

    from mmdata.errors import ShardError
    from mmdata.interop import hf

    raw = make_sample_folder(tmp_path / "raw", n=2)
    for i, dt in enumerate((np.int16, np.int32)):
        np.save(f"{raw}/{i:06d}.feat.npy", np.ones(4, dt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    card_path = tmp_path / "ds" / "dataset.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["modalities"]["feat"]["dtypes"] = {"float32": 2}
    card_path.write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ShardError, match=r"feat"):
        hf.webdataset_features(tmp_path / "ds", decode_audio=False)
