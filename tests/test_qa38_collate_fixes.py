"""QA38 collate / loader / blend fixes: ``batch.lengths`` of array fields in every batch (r_C #1, r_E #1), a blend
batching a mixed-dtype ``.npy`` field in its common dtype (r_C #2), ``modalities=`` keeping the label (r_C #8) and a
blend warning of a dataset whose index has no member CRC-32s (r_D #4)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import mmdata
from mmdata.shards import index as idx
from mmdata.types import Sample, collate


def _npy_folder(root: Path, files: dict[str, np.ndarray]) -> Path:
    for rel, x in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, x)
    return root


def _shard(src: Path, out: Path, **kw) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, out, progress=False, **kw)
    return out


def test_collate_gives_array_lengths_when_every_row_has_one_shape_and_zeros_for_a_missing_row() -> None:
    rows = [Sample("a", {"iq": np.ones(4, np.complex64)}), Sample("b", {"iq": np.ones(4, np.complex64)}),
            Sample("c", {"label": 1})]
    b = collate(rows)
    assert b.lengths["iq"].tolist() == [[4], [4], [0]]
    assert collate(rows[:1]).lengths["iq"].tolist() == [[4]]  # a batch of one too
    assert collate([Sample("a", {"imu": np.zeros((5, 3), np.float32)})]).lengths["imu"].tolist() == [[5, 3]]


def test_loader_gives_lengths_of_a_ragged_npy_field_in_every_batch(tmp_path: Path) -> None:
    """r_C #1: 128, 128, 1000, 128 samples: the batch of the two 128s had no lengths['iq'] (a KeyError)."""
    src = _npy_folder(tmp_path / "rl", {f"BPSK/{k}.iq.npy": np.ones(n, np.complex64)
                                        for k, n in [("a", 128), ("b", 128), ("c", 1000), ("d", 128)]})
    ds = _shard(src, tmp_path / "ds")
    for bs in (1, 2, 4):
        seen = 0
        for b in mmdata.loader(ds, split="train", batch_size=bs, shuffle=False):
            assert "iq" in b.lengths, (bs, b.keys)
            assert b.lengths["iq"][:, 0].tolist() == [1000 if "_c_" in k else 128 for k in b.keys]
            seen += len(b.keys)
        assert seen == 4


def test_loader_gives_spec_lengths_in_a_batch_of_one_on_both_kernels(tmp_path: Path) -> None:
    """r_E #1: logmel's spec had lengths only in batches whose specs differed in frames."""
    from mmdata.testing import make_sample_folder

    ds = _shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds")
    rec = {"normalize": {"audio": [{"op": "to_mono", "p": 1.0}, {"op": "resample", "p": 1.0, "rate": 16000}]},
           "audio": [{"op": "logmel", "p": 1.0, "n_mels": 16}]}
    for on in ("workers", "device"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batches = list(mmdata.loader(ds, batch_size=1, recipe=rec, split="train", seed=0, augment_on=on))
        assert batches and all("spec" in b.lengths for b in batches if "spec" in b.data), on
        for b in batches:
            if "spec" in b.data:
                assert b.lengths["spec"].tolist() == [list(b["spec"].shape[1:])], on


def _mixed_dtype_datasets(tmp_path: Path) -> tuple[Path, Path]:
    a = {f"BPSK/s{i}.iq.npy": np.ones(16, np.complex128 if i % 3 == 0 else np.complex64) for i in range(9)}
    b = {f"QPSK/t{i}.iq.npy": np.full(16, 2, np.complex64) for i in range(5)}
    return _shard(_npy_folder(tmp_path / "a", a), tmp_path / "ds_a"), _shard(_npy_folder(tmp_path / "b", b), tmp_path / "ds_b")


def test_a_blend_batches_a_mixed_dtype_npy_field_in_its_common_dtype(tmp_path: Path) -> None:
    """r_C #2: the blend's card had empty modalities, so collate refused the first batch mixing the dtypes."""
    ds_a, ds_b = _mixed_dtype_datasets(tmp_path)
    bl = mmdata.blend({"a": ds_a, "b": ds_b})
    assert bl.card["modalities"]["iq"]["dtypes"] == {"complex128": 3, "complex64": 11}
    n = 0
    for b in mmdata.loader({"a": ds_a, "b": ds_b}, batch_size=4, split="train", shuffle=False):
        assert b["iq"].dtype == torch.complex128
        n += len(b.keys)
    assert n == 14
    # a batch holding complex64 rows only is complex128 too (the blend's one dtype), also via collate_fn
    rows = [s for s in mmdata.blend({"a": ds_a, "b": ds_b}) if s["iq"].dtype == np.complex64][:2]
    assert bl.collate_fn(rows)["iq"].dtype == torch.complex128


def test_modalities_keeps_the_label(tmp_path: Path) -> None:
    """r_C #8: modalities=['iq'] dropped the label, the training target, without a word."""
    ds_a, ds_b = _mixed_dtype_datasets(tmp_path)
    b = next(iter(mmdata.loader(ds_a, split="train", batch_size=4, shuffle=False, modalities=["iq"])))
    assert set(b.data) == {"iq", "label"} and b.present["label"].all()
    assert "image" not in b.present or not b.present["image"].any()
    bl = next(iter(mmdata.loader({"a": ds_a, "b": ds_b}, split="train", batch_size=4, shuffle=False,
                                 modalities=["iq"])))
    assert "label" in bl.data


def test_a_blend_with_an_index_without_crc32_says_its_copies_go_unchecked(tmp_path: Path) -> None:
    """r_D #4: a dataset sharded before 2026-12-04 (no member_crc32) made the copy check skip it silently."""
    from mmdata.testing import make_sample_folder

    old = _shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "old")
    new = _shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "new")
    t = pq.read_table(old / idx.INDEX)
    pq.write_table(t.drop_columns([c for c in ("member_crc32", idx.MEMBER_DIGEST) if c in t.column_names]),
                   old / idx.INDEX)
    with pytest.warns(UserWarning) as got:
        bl = mmdata.blend({"old": old, "new": new})
    said = [str(w.message) for w in got if "CRC-32" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    assert "'old'" in said[0] and "not checked" in said[0] and "shard" in said[0] and "2026-12-04" in said[0]
    assert "'new'" not in said[0]
    assert bl.card["copies_across_datasets"]["unchecked"] == ["old"]
    assert any("CRC-32" in w for w in bl.card["warnings"])
    with warnings.catch_warnings(record=True) as off:
        warnings.simplefilter("always")
        mmdata.blend({"old": old, "new": new}, check_copies=False)  # switched off: nothing to say
    assert not [w for w in off if "CRC-32" in str(w.message)]
