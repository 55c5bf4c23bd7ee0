"""Hugging Face's multi-label convention, ``labels: List(ClassLabel(names=[...]))`` (go_emotions,
many text classification sets), and a list of strings were refused by ``mmdata.shard`` ("features mmdata
cannot store"); a numeric list named ``labels`` became ``labels.npy`` without a word, where ``mmdata train
--target`` cannot read it. Lists of class labels / strings are now each sample's ``.json`` metadata (names),
which ``--target`` trains as multi-label, and come back as the original column from :func:`mmdata.to_hf`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

import mmdata

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, Features, Value  # noqa: E402

from mmdata.interop.hf import to_hf  # noqa: E402

List = getattr(datasets, "List", None) or datasets.Sequence
NAMES = ["anger", "joy", "fear"]
IDS = [[0, 1], [2], [], [1], [0, 2], [1, 2]] * 5


def _json_members(out: Path) -> dict[str, dict]:
    found = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".json"):
                    found[m.name[:-5]] = json.loads(tf.extractfile(m).read())
    return found


def test_a_list_of_classlabels_is_metadata_of_names_and_comes_back_as_ids(tmp_path: Path) -> None:
    feats = Features({"text": Value("string"), "labels": List(ClassLabel(names=NAMES))})
    ds = Dataset.from_dict({"text": [f"post {i}" for i in range(len(IDS))], "labels": IDS}, features=feats)
    report = mmdata.shard(ds, tmp_path / "out", progress=False)
    assert report["warnings"] == []
    members = _json_members(tmp_path / "out")
    assert len(members) == len(IDS)
    assert [members[k]["labels"] for k in sorted(members)] == [[NAMES[i] for i in ids] for ids in IDS]
    back = to_hf(tmp_path / "out", "train", cache_dir=tmp_path / "hf")
    assert back.features["labels"] == feats["labels"] and back["labels"] == IDS


def test_a_list_of_strings_is_metadata_too(tmp_path: Path) -> None:
    tags = [["a b", "ç"], [], ["x"]]
    ds = Dataset.from_dict({"caption": ["one", "two", "three"], "tags": tags})
    assert type(ds.features["tags"]).__name__ in ("List", "Sequence")
    mmdata.shard(ds, tmp_path / "out", progress=False)
    members = _json_members(tmp_path / "out")
    assert [members[k]["tags"] for k in sorted(members)] == tags
    assert to_hf(tmp_path / "out", "train", cache_dir=tmp_path / "hf")["tags"] == tags


def test_a_numeric_labels_list_is_kept_as_an_array_with_a_warning_that_says_how_to_train_on_it(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"text": ["a", "b"], "labels": [[0, 1], [2]], "embedding": [[0.5, 1.0], [2.0, 3.0]]})
    with pytest.warns(mmdata.ShardWarning, match="'labels'"):
        report = mmdata.shard(ds, tmp_path / "out", progress=False)
    (warning,) = report["warnings"]  # the embedding, an array under another name, is not warned of
    assert "labels.npy" in warning and "--target" in warning and "cast_column('labels', List(ClassLabel" in warning


def test_mmdata_train_target_trains_the_hf_label_lists_as_multi_label(tmp_path: Path) -> None:
    from mmdata.train import train

    texts = [" ".join(NAMES[i] for i in ids) or "calm" for ids in IDS]
    feats = Features({"text": Value("string"), "labels": List(ClassLabel(names=NAMES))})
    ds = Dataset.from_dict({"text": texts, "labels": IDS}, features=feats)
    mmdata.shard(ds, tmp_path / "ds", progress=False, split={"train": 0.6, "val": 0.2, "test": 0.2})
    metrics = train(tmp_path / "ds", target="labels", epochs=1, out=tmp_path / "run", eval_robustness=False)
    assert metrics["target"]["kind"] == "multilabel" and metrics["target"]["labels"] == sorted(NAMES)
