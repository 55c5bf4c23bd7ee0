"""QA35 robotics #6: a ``.npy`` field whose files mix float32 and float64 was batched float32 in some batches and
float64 in others (promotion within the batch), and a float32 model crashed mid-epoch. collate now refuses a
float mix naming the samples per dtype, whichever samples share the batch; a field that is float64 everywhere
stays float64 (timestamps keep their precision), integer maps keep their common dtype (8- and 16-bit PNGs)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import mmdata
from mmdata.types import Sample, collate


def _dataset(root: Path, dtypes: list[str]) -> Path:
    from PIL import Image

    raw = root / "raw"
    raw.mkdir()
    for i, d in enumerate(dtypes):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(raw / f"s{i:02d}.png")
        np.save(raw / f"s{i:02d}.imu.npy", np.random.default_rng(i).standard_normal((5, 6)).astype(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def test_a_float32_float64_mix_is_refused_naming_the_samples(tmp_path: Path) -> None:
    ds = mmdata.open_dataset(_dataset(tmp_path, ["float32"] * 7 + ["float64"]), split="train", shuffle=False)
    with pytest.raises(ValueError) as err:
        for _ in DataLoader(ds, batch_size=8, num_workers=2, collate_fn=ds.collate_fn):
            pass
    msg = str(err.value)
    assert "cannot collate 'imu'" in msg and "float64: 's07'" in msg and "float32: 's0" in msg, msg
    assert "np.save" in msg


def test_the_batch_dtype_does_not_depend_on_the_batch(tmp_path: Path) -> None:
    ds = mmdata.open_dataset(_dataset(tmp_path, ["float64"] * 6), split="train", shuffle=False)
    got = {b["imu"].dtype for b in DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ds.collate_fn)}
    assert got == {torch.float64}
    one = [Sample("a", {"imu": np.zeros(3, np.float32)}), Sample("b", {"imu": np.zeros(3, np.float32)})]
    assert collate(one)["imu"].dtype == torch.float32


def test_integer_maps_keep_their_common_dtype_and_ints_with_floats_are_refused() -> None:
    maps = [Sample("a", {"depth.png": torch.zeros(1, 2, 2, dtype=torch.uint8)}),
            Sample("b", {"depth.png": torch.zeros(1, 2, 2, dtype=torch.int32)})]
    assert collate(maps)["depth.png"].dtype == torch.int32
    mixed = [Sample("a", {"imu": np.zeros(3, np.int16)}), Sample("b", {"imu": np.zeros(3, np.float32)})]
    with pytest.raises(ValueError, match=r"cannot collate 'imu': its arrays' dtypes differ \(float32: 'b'; int16: 'a'\)"):
        collate(mixed)
