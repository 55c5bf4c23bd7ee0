"""``predictions.parquet`` names each sample's ``source_key`` (the file path / manifest key it was sharded
from, as ``index.parquet`` holds it) in a last column, null where none is known, so a user can join the
predictions back to their files. Before (known limit of the 2026-12-04 session) it had the safe ``key``
only (``cat_000_bb29c17c`` for ``cat/000.png``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.shards.index import load_index
from mmdata.testing import shard_odd_names
from mmdata.train.outputs import PredictionWriter, source_keys


@pytest.fixture(scope="module")
def folder_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of odd file names in two sub-folders (keys are made safe: they differ from the names)."""
    return shard_odd_names(tmp_path_factory.mktemp("folder"), n=12)


def _index(ds: Path, split: str) -> dict[str, str]:
    rows = load_index(ds, columns=["key", "split", "source_key"]).to_pylist()
    return {r["key"]: r["source_key"] for r in rows if r["split"] == split}


def test_source_keys_of_a_split(folder_ds: Path) -> None:
    test = _index(folder_ds, "test")
    assert source_keys(folder_ds, "test") == test and test
    assert all(k != sk and "/" in sk for k, sk in test.items())  # e.g. 'part0/café 0.v2 #0'
    both = source_keys(folder_ds, ["val", "test"])
    assert both == {**_index(folder_ds, "val"), **test}


def test_predictions_name_the_source_key_last(folder_ds: Path, tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    w = PredictionWriter(path, split="test", source_keys=source_keys(folder_ds, "test"))
    for batch in mmdata.loader(folder_ds, 2, split="test", shuffle=False):
        w(batch, torch.zeros(len(batch), 3))
    w.close()
    t = pq.read_table(path)
    assert t.column_names == ["key", "split", "label", "pred", "prob_label", "probs", "source_key"]
    got = dict(zip(t.column("key").to_pylist(), t.column("source_key").to_pylist()))
    assert got == _index(folder_ds, "test")


@pytest.mark.parametrize("kind", ["classes", "multilabel", "regression"])
def test_source_key_is_null_where_unknown_for_every_kind(kind: str, tmp_path: Path) -> None:
    target = None if kind == "classes" else _Target(kind)
    path = tmp_path / "p.parquet"
    w = PredictionWriter(path, split="test", target=target, source_keys={"a": "photos/a.png"})
    w(collate([Sample("a", {"label": 1}), Sample("b", {})]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    w.close()
    t = pq.read_table(path)
    assert t.column_names[-1] == "source_key" and t.column("source_key").to_pylist() == ["photos/a.png", None]
    w = PredictionWriter(tmp_path / "q.parquet", split="test", target=target)  # no source keys given: all null
    w(collate([Sample("a", {"label": 1})]), torch.tensor([[0.0, 1.0]]))
    w.close()
    assert pq.read_table(tmp_path / "q.parquet").column("source_key").to_pylist() == [None]


def test_an_empty_pass_has_the_column_too(tmp_path: Path) -> None:
    w = PredictionWriter(tmp_path / "p.parquet", split="test")
    w.close()
    assert pq.read_table(tmp_path / "p.parquet").column_names[-1] == "source_key"


class _Target:
    """The part of :class:`mmdata.train.targets.Target` the writer uses."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def predictions(self, batch, logits):  # type: ignore[no-untyped-def]
        n = len(batch)
        if self.kind == "multilabel":
            return {"labels": [["x"]] * n, "pred_labels": [[]] * n, "probs": [[0.5]] * n}
        return {"target": [1.0] * n, "pred": [0.5] * n}


def test_train_writes_source_keys(folder_ds: Path, tmp_path: Path) -> None:
    from mmdata.train import train

    train(folder_ds, epochs=1, batch_size=4, threads=1, eval_robustness=False, out=tmp_path / "run")
    t = pq.read_table(tmp_path / "run" / "predictions.parquet")
    # source_key where it was; the class names after it, as mmdata evaluate writes them (QA42 active #4)
    assert t.column_names[-3:] == ["source_key", "label_name", "pred_name"]
    assert dict(zip(t.column("key").to_pylist(), t.column("source_key").to_pylist())) == _index(folder_ds, "test")
