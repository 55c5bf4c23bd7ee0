"""QA35 robotics #6: a ``.npy`` field whose files mix float32 and float64 was batched float32 in some batches and
float64 in others (promotion within the batch), and a float32 model crashed mid-epoch. collate now refuses a
float mix naming the samples per dtype, whichever samples share the batch; a field that is float64 everywhere
stays float64 (timestamps keep their precision), integer maps keep their common dtype (8- and 16-bit PNGs).
Review media #2: shard records each .npy field's dtypes in the card and warns of a mix (inspect repeats it); with the
card's dtypes (``field_dtypes``) every batch has one dtype, even one holding only the float64 file. #5: the refusal
names what is mixed and the fix for the field's kind (image file vs .npy)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import mmdata
from mmdata.shards.verify import verify
from mmdata.types import Sample, collate, field_dtypes


def _dataset(root: Path, dtypes: list[str]) -> Path:
    from PIL import Image

    raw = root / "raw"
    raw.mkdir(parents=True)
    for i, d in enumerate(dtypes):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(raw / f"s{i:02d}.png")
        np.save(raw / f"s{i:02d}.imu.npy", np.random.default_rng(i).standard_normal((5, 6)).astype(d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def test_a_float32_float64_mix_is_refused_naming_the_samples(tmp_path: Path) -> None:
    ds = mmdata.open_dataset(_dataset(tmp_path, ["float32"] * 7 + ["float64"]), split="train", shuffle=False)
    with pytest.raises(ValueError) as err:  # plain collate: the card's dtypes unknown to it
        for _ in DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate):
            pass
    msg = str(err.value)
    assert "cannot collate 'imu'" in msg and "float64: 's07'" in msg and "float32: 's0" in msg, msg
    assert "np.save" in msg


def test_the_batch_dtype_does_not_depend_on_the_batch(tmp_path: Path) -> None:
    """review media #2: the float64 file alone in the last batch (batch_size 7 of 8 samples, and batch_size 1) reached
    the model as float64 while the others were float32; with the card's dtypes every batch is float64."""
    ds = mmdata.open_dataset(_dataset(tmp_path, ["float32"] * 7 + ["float64"]), split="train", shuffle=False)
    assert field_dtypes(ds.card) == {"imu": torch.float64}
    fn = functools.partial(collate, dtypes=field_dtypes(ds.card))
    got = [(b.keys, b["imu"].dtype) for b in DataLoader(ds, batch_size=7, collate_fn=fn)]
    assert got == [([f"s0{i}" for i in range(7)], torch.float64), (["s07"], torch.float64)], got
    got = [(b.keys, b["imu"].dtype) for b in DataLoader(ds, batch_size=1, num_workers=2, collate_fn=fn)]
    assert len(got) == 8 and {d for _, d in got} == {torch.float64}, got
    # without them, the batch holding only the float64 file is float64: what the card's dtypes fix
    plain = [b["imu"].dtype for b in DataLoader(ds, batch_size=7, collate_fn=collate)]
    assert plain == [torch.float32, torch.float64]
    uniform = mmdata.open_dataset(_dataset(tmp_path / "u", ["float64"] * 3), split="train", shuffle=False)
    assert field_dtypes(uniform.card) == {}  # one dtype: its batches have it anyway
    assert {b["imu"].dtype for b in DataLoader(uniform, batch_size=2, collate_fn=uniform.collate_fn)} == {torch.float64}
    one = [Sample("a", {"imu": np.zeros(3, np.float32)}), Sample("b", {"imu": np.zeros(3, np.float32)})]
    assert collate(one)["imu"].dtype == torch.float32


def test_shard_records_each_npy_fields_dtypes_and_warns_of_a_mix(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, ["float32"] * 7 + ["float64"])
    card = json.loads((ds / "dataset.json").read_text())
    assert card["modalities"]["imu"]["dtypes"] == {"float32": 7, "float64": 1}
    (w,) = [w for w in card["warnings"] if "dtypes" in w]
    assert w.startswith("field 'imu': its .npy files hold 2 dtypes (7 float32, 1 float64: e.g. 's07.imu.npy' holds "
                        "float64): collate refuses a batch mixing them"), w
    env = {**os.environ, "COLUMNS": "400"}
    run = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(ds)], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    assert ".npy dtypes float32: 7, float64: 1 (mixed)" in run.stdout and "field 'imu': its .npy files hold 2" in run.stderr
    js = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(ds), "--json"], capture_output=True,
                        text=True, env=env)
    assert json.loads(js.stdout)["npy_dtypes"] == {"imu": {"float32": 7, "float64": 1}}
    one = json.loads((_dataset(tmp_path / "one", ["float32"] * 3) / "dataset.json").read_text())
    assert one["modalities"]["imu"]["dtypes"] == {"float32": 3} and not [w for w in one["warnings"] if "dtypes" in w]
    assert verify(ds, deep=True)["ok"]


def test_the_refusal_names_what_is_mixed_and_the_fix_for_the_fields_kind() -> None:
    """review media #5: an image field's values are tensors (no .astype, no np.save for a .tif); the dtypes named
    are the batch's, not always float32 / float64."""
    tif = [Sample("a", {"depth.tif": torch.zeros(1, 2, 2, dtype=torch.int32)}),
           Sample("b", {"depth.tif": torch.zeros(1, 2, 2, dtype=torch.float32)})]
    with pytest.raises(ValueError) as err:
        collate(tif)
    msg = str(err.value)
    assert "(float32: 'b'; int32: 'a')" in msg and "float32 in one batch, int32 in another" in msg, msg
    assert "np.save" not in msg and ".astype" not in msg and "s['depth.tif'].to(torch.float32)" in msg, msg
    assert "one mode and the same units" in msg and "modalities=[...]" in msg
    npy = [Sample("a", {"imu": np.zeros(3, np.int16)}), Sample("b", {"imu": np.zeros(3, np.float32)})]
    with pytest.raises(ValueError) as err:
        collate(npy)
    msg = str(err.value)
    assert "float32 in one batch, int16 in another" in msg and "np.save(path, x.astype(np.float32))" in msg, msg
    assert "float64" not in msg
    # the cast the message suggests works on the values the samples hold
    fixed = [s.with_fields(**{"imu": np.asarray(s["imu"]).astype("float32")}) for s in npy]
    assert collate(fixed)["imu"].dtype == torch.float32
    fixed = [s.with_fields(**{"depth.tif": s["depth.tif"].to(torch.float32)}) for s in tif]
    assert collate(fixed)["depth.tif"].dtype == torch.float32
    assert collate(npy, dtypes={"imu": torch.float32})["imu"].dtype == torch.float32


def test_integer_maps_keep_their_common_dtype_and_ints_with_floats_are_refused() -> None:
    maps = [Sample("a", {"depth.png": torch.zeros(1, 2, 2, dtype=torch.uint8)}),
            Sample("b", {"depth.png": torch.zeros(1, 2, 2, dtype=torch.int32)})]
    assert collate(maps)["depth.png"].dtype == torch.int32
    mixed = [Sample("a", {"imu": np.zeros(3, np.int16)}), Sample("b", {"imu": np.zeros(3, np.float32)})]
    with pytest.raises(ValueError, match=r"cannot collate 'imu': its arrays' dtypes differ \(float32: 'b'; int16: 'a'\)"):
        collate(mixed)


def test_the_datasets_collate_fn_and_the_loader_batch_a_mixed_field_in_one_dtype(tmp_path: Path) -> None:
    """The dataset's own ``collate_fn`` and ``mmdata.loader`` take the card's dtypes: every batch of the mixed
    field is float64, the one holding only float32 files too, in real DataLoader workers."""
    path = _dataset(tmp_path, ["float32"] * 7 + ["float64"])
    ds = mmdata.open_dataset(path, split="train", shuffle=False)
    got = [b["imu"].dtype for b in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=ds.collate_fn)]
    assert len(got) >= 3 and set(got) == {torch.float64}, got  # (each worker batches its own share)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = [b["imu"].dtype for b in mmdata.loader(path, 3, split="train", shuffle=False, num_workers=2)]
    assert len(got) >= 3 and set(got) == {torch.float64}, got
