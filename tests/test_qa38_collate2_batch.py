"""QA38 second round (collate2): lengths after the batched recipe paths called directly, a blend's dtype of a
.npy field whose datasets hold different dtypes, and ``modalities=`` keeping the label in open_dataset too."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment import load_recipe
from mmdata.types import Sample, collate


def _rows() -> list[Sample]:
    g = torch.Generator().manual_seed(0)
    return [Sample(f"k{i}", {"audio": torch.randn(1, 8000, generator=g), "label": i, "iq.npy": torch.randn(128, generator=g)},
                   sample_rate=16000) for i in range(3)]


RECIPE = {"seed": 0, "audio": [{"op": "logmel", "p": 1.0, "n_mels": 8}], "sample": [{"op": "modality_dropout", "p": 1.0}],
          "batch": [{"op": "mixup", "p": 1.0}]}


def test_apply_batched_and_the_batch_section_called_directly_give_lengths_of_every_array_field() -> None:
    rec = load_recipe(RECIPE)
    b = collate(_rows())
    for out in (rec.apply_batched(b, 0, mix=False), rec.apply_batched(b, 0, mix=True), rec.apply_batch_section(b, 0)):
        for name, v in out.data.items():
            if isinstance(v, torch.Tensor) and v.dim() > 1:
                assert name in out.lengths, (name, sorted(out.lengths))
                assert out.lengths[name].shape[0] == len(out.keys)
        if "spec" in out.data:  # the rows' valid shapes, zeros where a row is absent
            want = [list(out["spec"].shape[1:]) if p else [0] * (out["spec"].dim() - 1) for p in out.present["spec"].tolist()]
            assert out.lengths["spec"].tolist() == want
    assert "spec" in rec.apply_batched(b, 0, mix=False).data  # logmel ran: the field checked above exists


def _npy_dataset(root: Path, name: str, dtype: str, n: int = 4) -> Path:
    src = root / f"src_{name}"
    for c in ("A", "B"):
        (src / c).mkdir(parents=True)
        for i in range(n):
            np.save(src / c / f"{name}{i}.imu.npy", (np.arange(15).reshape(5, 3) + i).astype(dtype))
    out = root / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, out, progress=False)
    return out


def test_a_blend_of_a_float32_and_a_float64_dataset_says_so_at_open_and_batches_one_dtype(tmp_path: Path) -> None:
    d32, d64 = _npy_dataset(tmp_path, "d32", "float32"), _npy_dataset(tmp_path, "d64", "float64")
    with pytest.warns(UserWarning) as got:
        bl = mmdata.blend({"a": d32, "b": d64})
    said = [str(w.message) for w in got if "'imu'" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    assert "float32 in 'a'" in said[0] and "float64 in 'b'" in said[0] and "every batch" in said[0], said[0]
    assert "modalities=" in said[0] and "batch['imu'].to(torch.float32)" in said[0], said[0]  # the ways out: leave it out, cast the batch
    assert any("'imu'" in w for w in bl.card.get("warnings", [])), bl.card.get("warnings")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dtypes = {b["imu"].dtype for b in mmdata.loader({"a": d32, "b": d64}, split="train", batch_size=2, shuffle=False)}
        assert dtypes == {torch.float64}
        # the field left out: nothing to say
        with warnings.catch_warnings(record=True) as quiet:
            warnings.simplefilter("always")
            mmdata.blend({"a": d32, "b": d64}, modalities=["label"])
    assert not [w for w in quiet if "'imu'" in str(w.message)]
    # one dataset blended with itself: its own dtype, nothing said
    with warnings.catch_warnings(record=True) as quiet:
        warnings.simplefilter("always")
        mmdata.blend({"a": d32, "b": d32})
    assert not [w for w in quiet if "'imu'" in str(w.message)]


def test_a_blend_of_a_dataset_mixing_dtypes_itself_batches_its_common_dtype_without_a_blend_warning(tmp_path: Path) -> None:
    src = tmp_path / "src_mix"
    for c in ("A", "B"):
        (src / c).mkdir(parents=True)
        for i in range(4):
            np.save(src / c / f"m{i}.imu.npy", np.ones((5, 3), dtype="complex64" if i % 2 else "complex128"))
    mix = tmp_path / "mix"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, mix, progress=False)
    c128 = _npy_dataset(tmp_path, "c128", "complex128")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        batches = list(mmdata.loader({"a": mix, "b": c128}, split="train", batch_size=3, shuffle=True, seed=0))
    assert {b["imu"].dtype for b in batches} == {torch.complex128} and sum(len(b) for b in batches) == 16
    assert not [w for w in got if "blend: field 'imu'" in str(w.message)]  # a's own batches were complex128 already


def test_open_dataset_modalities_keeps_the_label_as_the_loader_does(tmp_path: Path) -> None:
    d32 = _npy_dataset(tmp_path, "d32", "float32")
    ds = mmdata.open_dataset(d32, split="train", modalities=["imu"])
    first = next(iter(ds))
    assert sorted(first.fields) == ["imu", "label"]
    batch = ds.collate_fn(list(ds)[:3])
    assert "label" in batch.data and batch["label"].tolist() != [-1, -1, -1]
    loaded = next(iter(mmdata.loader(d32, split="train", batch_size=3, shuffle=False, modalities=["imu"])))
    assert sorted(loaded.data) == sorted(batch.data)


def test_tidy_keeps_the_lengths_of_a_field_whose_present_rows_share_a_shape() -> None:
    from mmdata.augment.batching import tidy

    b = collate(_rows())
    b.present["iq.npy"] = torch.tensor([True, False, True])  # a batched op dropped the middle row's array
    out = tidy(b, ["iq.npy"])
    assert out.lengths["iq.npy"].tolist() == [[128], [0], [128]]


def test_a_real_dataset_blended_with_a_complex_one_is_warned_with_a_cast_that_keeps_the_imaginary_part() -> None:
    from mmdata.shards.blend import _dtypes_warning

    class Real:
        card = {"modalities": {"iq": {"dtypes": {"float32": 3}}}}

    class Cplx:
        card = {"modalities": {"iq": {"dtypes": {"complex64": 2}}}}

    said = _dtypes_warning({"r": Real(), "c": Cplx()}, None)
    assert said is not None and "float32 in 'r', complex64 in 'c'" in said and "zero imaginary part" in said, said
    assert "view_as_real" in said and ".to(torch.float32)" not in said, said
    assert _dtypes_warning({"r": Real(), "c": Cplx()}, ["label"]) is None
