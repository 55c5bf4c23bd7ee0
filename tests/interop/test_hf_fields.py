"""Extra ``.npy`` fields in Hugging Face out: ``<stem>.depth.npy`` files sharded from a folder, a
series added by ``mmdata add-modality`` or a bare ``.npy`` member become an HF column (``Array2D`` ..
``Array5D`` when every array has one shape, nested ``List`` otherwise, ``None`` where a sample lacks
it) in :func:`mmdata.to_hf` and :func:`webdataset_features`; ``features=`` overrides any column."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder

datasets = pytest.importorskip("datasets")
from datasets import Array2D, Array3D, Dataset, Features, Value  # noqa: E402

from mmdata.interop.hf import webdataset_features, webdataset_files  # noqa: E402

List = getattr(datasets, "List", None) or datasets.Sequence
DEPTH = (4, 5)


def depth_of(i: int) -> np.ndarray:
    return (np.arange(DEPTH[0] * DEPTH[1], dtype=np.float32).reshape(DEPTH) + i) / 7


def emb_of(i: int) -> np.ndarray:
    return np.arange(i % 3 + 1, dtype=np.int16) * (i + 1)  # 1-D, lengths 1..3


def folder_with_arrays(root: Path, n: int = 10) -> Path:
    """A sample folder plus ``<stem>.depth.npy`` (one shape, every 3rd sample without) and
    ``<stem>.emb.npy`` (1-D, lengths vary)."""
    raw = make_sample_folder(root, n=n)
    for i in range(n):
        if i % 3 != 2:
            np.save(raw / f"{i:06d}.depth.npy", depth_of(i))
        np.save(raw / f"{i:06d}.emb.npy", emb_of(i))
    return raw


@pytest.fixture(scope="module")
def arrays_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("hf_fields")
    out = t / "ds"
    mmdata.shard(folder_with_arrays(t / "raw"), out, maxcount=4, split="train=0.6,val=0.4", progress=False)
    return out


def _rows(ds: Path, split: str) -> dict[str, dict[str, bytes]]:
    return {s.key: s.fields for s in mmdata.open_dataset(ds, split=split, decode=False)}


def test_to_hf_gives_npy_fields_a_column(arrays_ds: Path, tmp_path: Path) -> None:
    hf = mmdata.to_hf(arrays_ds, "train", cache_dir=tmp_path / "cache")
    assert hf.features["depth"] == Array2D(shape=DEPTH, dtype="float32")
    assert hf.features["emb"] == List(Value("int16"))
    assert list(hf.features)[-2:] == ["depth", "emb"]  # after the standard columns, by name
    ref = _rows(arrays_ds, "train")
    assert hf["key"] == list(ref)
    for row in hf.with_format("numpy"):
        i = int(row["key"])
        assert np.array_equal(row["emb"], emb_of(i))  # (HF's numpy format widens integer lists to int64)
        if i % 3 == 2:
            assert "depth.npy" not in ref[row["key"]]
        else:
            assert row["depth"].dtype == np.float32 and np.array_equal(row["depth"], depth_of(i))
    assert [r["depth"] is None for r in hf] == [int(k) % 3 == 2 for k in hf["key"]]  # None where absent
    assert str(hf.data.schema.field("emb").type) == "list<item: int16>"  # the arrays' dtype, stored as such


def test_every_split_gets_the_same_features(arrays_ds: Path, tmp_path: Path) -> None:
    train = mmdata.to_hf(arrays_ds, "train", cache_dir=tmp_path / "cache")
    val = mmdata.to_hf(arrays_ds, "val", cache_dir=tmp_path / "cache")
    assert train.features == val.features
    assert datasets.concatenate_datasets([train, val]).num_rows == 10


def test_to_hf_round_trips_through_mmdata_shard(arrays_ds: Path, tmp_path: Path) -> None:
    hf = mmdata.to_hf(arrays_ds, "train", cache_dir=tmp_path / "cache")
    mmdata.shard(hf, tmp_path / "back", columns={"key": "key"}, progress=False)
    back = mmdata.to_hf(tmp_path / "back", "train", cache_dir=tmp_path / "cache")
    assert back.features["depth"] == hf.features["depth"] and back.features["emb"] == hf.features["emb"]
    assert back["depth"] == hf["depth"] and back["emb"] == hf["emb"]
    before, after = _rows(arrays_ds, "train"), _rows(tmp_path / "back", "train")
    for key, fields in before.items():
        (k,) = [k for k, s in after.items() if k.endswith(key)]
        for ext in ("depth.npy", "emb.npy"):
            if ext in fields:
                a, b = (np.load(io.BytesIO(f[ext])) for f in (fields, after[k]))
                assert a.dtype == b.dtype and np.array_equal(a, b)


def test_shapes_that_vary_give_nested_lists(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    for i in range(4):
        np.save(raw / f"{i:06d}.mask.npy", np.ones((i + 1, 3), dtype=np.uint8))
        np.save(raw / f"{i:06d}.vol.npy", np.zeros((2, 3, 4), dtype=np.float64))
        np.save(raw / f"{i:06d}.score.npy", np.float32(i / 2))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    hf = mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    assert hf.features["mask"] == List(List(Value("uint8")))
    assert hf.features["vol"] == Array3D(shape=(2, 3, 4), dtype="float64")
    assert hf.features["score"] == Value("float32")
    assert hf["mask"][2] == np.ones((3, 3)).tolist() and hf["score"] == [0.0, 0.5, 1.0, 1.5]


def test_a_series_added_by_add_modality_becomes_a_column(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=3, progress=False)
    dep = tmp_path / "depth"
    dep.mkdir()
    for i in range(0, 8, 2):
        np.save(dep / f"{i:06d}.depth.npy", depth_of(i))
    mmdata.add_modality(tmp_path / "ds", "depth", dep)
    hf = mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    assert hf.features["depth"] == Array2D(shape=DEPTH, dtype="float32")
    assert [d is None for d in hf["depth"]] == [i % 2 == 1 for i in range(8)]
    assert np.array_equal(hf.with_format("numpy")[4]["depth"], depth_of(4))


def test_a_series_added_to_a_dataset_from_hugging_face(tmp_path: Path) -> None:
    src = Dataset.from_dict({"caption": ["a", "b", "c"], "score": [0.5, 1.0, 1.5]},
                            features=Features({"caption": Value("string"), "score": Value("float32")}))
    mmdata.shard(src, tmp_path / "ds", layout="columns", progress=False)
    dep = tmp_path / "depth"
    dep.mkdir()
    np.save(dep / "000001.depth.npy", depth_of(1))
    mmdata.add_modality(tmp_path / "ds", "depth", dep)
    hf = mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    assert list(hf.features) == ["key", "caption", "score", "depth"]  # the original order, the new field last
    assert hf["score"] == [0.5, 1.0, 1.5] and hf["depth"][0] is None and hf["depth"][1] == depth_of(1).tolist()


def test_features_override_a_column(arrays_ds: Path, tmp_path: Path) -> None:
    over = {"depth": List(List(Value("float64"))), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    hf = mmdata.to_hf(arrays_ds, "train", features=over, cache_dir=tmp_path / "cache")
    assert hf.features["depth"] == over["depth"] and hf.features["label"] == over["label"]
    assert hf.features["emb"] == List(Value("int16"))  # the others as inferred
    i = int(hf["key"][0])
    assert hf["depth"][0] == depth_of(i).astype(np.float64).tolist()
    with pytest.raises(ShardError, match=r"features: no column 'nope'.*\['key', 'source_key', 'image'"):
        mmdata.to_hf(arrays_ds, "train", features={"nope": Value("int8")}, cache_dir=tmp_path / "cache")
    with pytest.raises(ShardError, match=r"shard train-\d+\.tar: sample '\d+': \.depth\.npy: array of shape \(4, 5\), "
                                         r"but its column is Array2D\(shape=\(9, 9\)"):
        mmdata.to_hf(arrays_ds, "train", features={"depth": Array2D(shape=(9, 9), dtype="float32")},
                     cache_dir=tmp_path / "cache")
    with pytest.raises(ShardError, match=rf"{arrays_ds}: split 'train': rows \(keys '\d+'.*do not fit the HF features"):
        mmdata.to_hf(arrays_ds, "train", features={"text": Value("int64")}, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.tmp")) and not list((tmp_path / "cache").glob(".*.tmp"))


def test_a_corrupt_npy_member_is_named(arrays_ds: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(arrays_ds, ds)
    shard = ds / idx.load_card(ds)["splits"]["train"]["shards"][0]
    with tarfile.open(shard) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tf:
        bad = next(m.name for m, _ in members if m.name.endswith(".depth.npy"))
        for m, data in members:
            if m.name == bad:
                data = b"\x93NUMPY" + b"\x00" * (len(data) - 6)  # keeps the size: the index still matches
            tf.addfile(m, io.BytesIO(data))
    key = bad.split(".")[0]
    with pytest.raises(ShardError, match=rf"shard {shard.name}: sample '{key}': \.depth\.npy: not a \.npy array"):
        mmdata.to_hf(ds, "train", cache_dir=tmp_path / "cache")


# ---- load_dataset("webdataset") -----------------------------------------------------------------
def test_webdataset_features_have_the_npy_columns(arrays_ds: Path, tmp_path: Path) -> None:
    feats = webdataset_features(arrays_ds, decode_audio=False)
    assert feats["depth.npy"] == Array2D(shape=DEPTH, dtype="float32") and feats["emb.npy"] == List(Value("int16"))
    hf = datasets.load_dataset("webdataset", data_files=webdataset_files(arrays_ds), split="train", features=feats,
                               cache_dir=str(tmp_path / "hfcache"))
    ref = mmdata.to_hf(arrays_ds, "train", cache_dir=tmp_path / "cache")
    assert hf["__key__"] == ref["key"]
    assert hf["depth.npy"] == ref["depth"] and hf["emb.npy"] == ref["emb"]
