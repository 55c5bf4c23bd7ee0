"""QA round 39, interop persona: Hub card .npy fields HF cannot load, the to_hf -> shard round trip's keys,
collate messages on the collate_fn path, DataModule label_names / val loader, Batch iteration message."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder
from mmdata.types import Sample, collate

datasets = pytest.importorskip("datasets")


def _npy_dataset(tmp_path: Path, name: str, arrays: list[np.ndarray]) -> Path:
    raw = make_sample_folder(tmp_path / f"raw_{name}", n=len(arrays))
    for i, a in enumerate(arrays):
        np.save(f"{raw}/{i:06d}.feat.npy", a)
    out = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, out, progress=False)
    return out


def test_webdataset_features_refuses_complex_npy(tmp_path: Path) -> None:
    """(QA39 interop #1) HF's builder np.loads each member: a complex array fails in Arrow whatever the features."""
    from mmdata.interop.hf import webdataset_features, write_hub_card

    ds = _npy_dataset(tmp_path, "iq", [np.ones(16, np.complex64)] * 3)
    with pytest.raises(ShardError, match=r"field 'feat' holds complex \.npy arrays \(complex64\).*complex_as_real"):
        webdataset_features(ds, decode_audio=False)
    with pytest.raises(ShardError, match="field 'feat'"):
        write_hub_card(ds, decode_audio=False, language=["en"])
    assert not (ds / "README.md").exists()


def test_webdataset_features_refuses_mixed_npy_dtypes(tmp_path: Path) -> None:
    """(QA39 interop #1) float32 and float64 arrays of one field: 'Cannot mix NumPy dtypes' in HF's builder."""
    from mmdata.interop.hf import webdataset_features

    ds = _npy_dataset(tmp_path, "mix", [np.zeros(4, np.float32), np.zeros(4, np.float64), np.zeros(4, np.float32)])
    with pytest.raises(ShardError, match=r"field 'feat' mixes \.npy dtypes \['float32', 'float64'\].*"
                                         r"np\.save\(f, x\.astype\(np\.float64\)\)"):
        webdataset_features(ds, decode_audio=False)


def test_webdataset_features_one_dtype_loads(tmp_path: Path) -> None:
    """(QA39 interop #1) one dtype: declared as before, and HF's webdataset builder loads it with those features."""
    from mmdata.interop.hf import webdataset_features, webdataset_files

    ds = _npy_dataset(tmp_path, "one", [np.arange(4, dtype=np.float32) + i for i in range(3)])
    feats = webdataset_features(ds, decode_audio=False)
    assert feats["feat.npy"] == datasets.List(datasets.Value("float32"))
    datasets.disable_progress_bars()
    d = datasets.load_dataset("webdataset", data_files=webdataset_files(ds), split="train", features=feats,
                              cache_dir=str(tmp_path / "cache"))
    assert sorted(np.asarray(r["feat.npy"])[0] for r in d) == [0.0, 1.0, 2.0]


def test_to_hf_round_trip_keeps_keys(tmp_path: Path) -> None:
    """(QA39 interop #3) to_hf's key / source_key columns: shard takes 'key' as the keys without columns=."""
    raw = make_sample_folder(tmp_path / "raw", n=4)
    for f in sorted(Path(raw).iterdir()):  # keys that are not the row numbers
        f.rename(f.with_name("s" + f.name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
        d = mmdata.to_hf(tmp_path / "ds", "train")
        mmdata.shard(d, tmp_path / "rt", progress=False)
    before = sorted(s.key for s in mmdata.open_dataset(tmp_path / "ds"))
    after = sorted(s.key for s in mmdata.open_dataset(tmp_path / "rt"))
    assert after == before == ["s000000", "s000001", "s000002", "s000003"]
    # a dataset of its own with a 'key' column but no 'source_key': positions, as before
    own = datasets.Dataset.from_dict({"key": ["b", "a"], "text": ["x", "y"]})
    mmdata.shard(own, tmp_path / "own", progress=False)
    assert sorted(s.key for s in mmdata.open_dataset(tmp_path / "own")) == ["000000", "000001"]


def test_collate_errors_say_how_on_the_collate_fn_path() -> None:
    """(QA39 interop #4) the message names how to run the recipe where collate_fn runs none, and that the rate
    it names is only the batch's most common."""
    a = [Sample("a", {"audio": torch.zeros(1, 8)}, sample_rate=8000),
         Sample("b", {"audio": torch.zeros(1, 8)}, sample_rate=16000),
         Sample("c", {"audio": torch.zeros(1, 8)}, sample_rate=8000)]
    with pytest.raises(ValueError, match=r"rate: 8000\}.*only this batch's most common rate.*"
                                         r"open_dataset\(\.\.\.\)\.collate_fn.*apply_sample\(s, stage='eval'\)"):
        collate(a)
    im = [Sample("a", {"image": torch.zeros(1, 4, 4, dtype=torch.uint8)}),
          Sample("b", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8)})]
    with pytest.raises(ValueError, match=r"to_rgb.*mmdata\.loader\(\.\.\., recipe=\.\.\.\).*apply_sample"):
        collate(im)


def test_batch_iteration_message_names_the_fields_loop() -> None:
    """(QA39 interop #6) Batch stays not iterable (len counts samples); the message says what to loop over."""
    b = collate([Sample("a", {"label": 1})])
    with pytest.raises(TypeError, match=r"for name in batch\.data"):
        [f for f in b]  # noqa: C416


def test_datamodule_label_names_blend_of_unnamed_is_none(tmp_path: Path) -> None:
    """(QA39 interop #5) one unnamed dataset and a blend of unnamed ones give the same answer."""
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    paths = {}
    for n in ("a", "b"):
        paths[n] = tmp_path / n
        mmdata.shard(make_sample_folder(tmp_path / f"raw_{n}", n=4), paths[n], progress=False)
    one = DataModule(paths["a"], batch_size=2, val_split=None)
    both = DataModule(paths, batch_size=2, val_split=None)
    assert (one.label_names, one.num_classes) == (None, 3)
    assert (both.label_names, both.num_classes) == (None, 3)
    # a label_map naming the ids gives names, as before
    named = DataModule(paths, batch_size=2, val_split=None, label_map={"a": {"0": "cat"}})
    assert named.label_names is not None and named.label_names[0] == "cat"


def test_datamodule_val_split_none_offers_no_val_loader(tmp_path: Path) -> None:
    """(QA39 interop #7) Lightning sees no val_dataloader with val_split=None (no warning about validation_step)."""
    pytest.importorskip("lightning")
    from lightning.pytorch.utilities.model_helpers import is_overridden

    from mmdata.lightning import DataModule

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    dm = DataModule(tmp_path / "ds", batch_size=2, val_split=None)
    assert not is_overridden("val_dataloader", dm)
    assert dm.val_dataloader() == []
    dm.val_split = "train"
    assert is_overridden("val_dataloader", dm)
    assert is_overridden("val_dataloader", DataModule(tmp_path / "ds", batch_size=2))


def test_collate_rank_mix_hint_fits_the_shapes() -> None:
    """(QA39 lipreading #8, writer's patch for types.py) a (T, 88, 88, 1) video beside (T, 88, 88) ones is squeezed,
    not flattened by reshape(len(x), -1)."""
    with pytest.raises(ValueError, match=r"np\.squeeze\(np\.asarray\(s\['video'\]\), -1\) for a \(T, 8, 8, 1\) array") as e:
        collate([Sample("a", {"video": np.zeros((3, 8, 8), np.uint8)}),
                 Sample("b", {"video": np.zeros((3, 8, 8, 1), np.uint8)})], fields=["video"])
    assert "reshape(len(" not in str(e.value)
