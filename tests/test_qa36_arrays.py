"""QA36 arrays: ``.npy`` fields and named image fields in collate, the card and inspect.

timeseries #1 / video #2: collate zero-padded every axis of a ``.npy`` field ((500, 3) beside (3, 400) gave
(B, 500, 400), a 1-lead beside a 12-lead recording 11 invented channels) and a grey ``frame2.png`` among RGB ones
(pure red). #2: arrays of different ranks passed shard / inspect and crashed the loader mid-epoch with no fix named.
#4: empty arrays were kept without a word. #10: the dtype-mix warning promised a refusal for an integer mix that
collate promotes. #9: inspect printed an empty distribution table and nothing of the arrays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.shards.writer import npy_dtype_mix_warning
from mmdata.types import Sample, collate


def _shard(root: Path, arrays: dict[str, np.ndarray]) -> Path:
    raw = root / "raw" / "c"
    raw.mkdir(parents=True)
    for name, a in arrays.items():
        np.save(raw / f"{name}.npy", a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def test_arrays_differing_in_two_axes_pad_with_a_warning_naming_samples_and_the_fix() -> None:
    # (second fix: padded as before 6517b17, with a PaddingWarning, not refused; tests/test_qa36_fix2_arrays.py)
    from mmdata import types
    from mmdata.augment.loader import PaddingWarning

    types._SHAPES_WARNED.discard("ecg")
    r = np.random.default_rng(0)
    tc, ct, one = r.normal(size=(500, 3)), r.normal(size=(3, 400)), r.normal(size=(450, 1))
    with pytest.warns(PaddingWarning, match=r"field 'ecg': a batch's arrays differ in 2 axes, 0 and 1 \(.*"
                                            r"\(450, 1\): 'one'.*transform="):
        collate([Sample("tc", {"ecg": tc}), Sample("ct", {"ecg": ct}), Sample("one", {"ecg": one})])
    # what works stays: one trailing shape, different lengths -> padded along axis 0, with lengths
    b = collate([Sample("a", {"ecg": tc}), Sample("b", {"ecg": r.normal(size=(300, 3))}), Sample("c", {})])
    assert tuple(b["ecg"].shape) == (3, 500, 3) and b.lengths["ecg"].tolist() == [[500, 3], [300, 3], [0, 0]]


def test_mixed_ranks_are_refused_with_the_reshape_fix() -> None:
    with pytest.raises(ValueError, match=r"its arrays' ranks differ \(1 dim: 'a'; 2 dims: 'b'\).*reshape"):
        collate([Sample("a", {"ecg": np.zeros(5, np.float32)}), Sample("b", {"ecg": np.zeros((5, 2), np.float32)})])


def test_a_per_pixel_npy_map_of_its_images_size_still_pads_like_the_image() -> None:
    s = [Sample("a", {"image": torch.zeros(3, 4, 6, dtype=torch.uint8), "mask.npy": np.ones((4, 6), np.uint8)}),
         Sample("b", {"image": torch.zeros(3, 5, 3, dtype=torch.uint8), "mask.npy": np.ones((5, 3), np.uint8)})]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = collate(s)
    assert tuple(b["mask.npy"].shape) == (2, 5, 6)


def test_a_grey_named_frame_among_rgb_ones_is_refused_like_the_image() -> None:
    rgb, grey = torch.full((3, 4, 4), 9, dtype=torch.uint8), torch.full((1, 4, 4), 9, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"cannot collate 'frame2.png': channel counts differ \(1 channel: sample "
                                         r"\['b'\]; 3 channels: samples \['a', 'c'\]\); convert every 'frame2.png'"):
        collate([Sample("a", {"frame2.png": rgb}), Sample("b", {"frame2.png": grey}), Sample("c", {"frame2.png": rgb})])


def test_shard_records_ranks_shapes_lengths_and_warns_of_mixes_and_empty_arrays(tmp_path: Path) -> None:
    r = np.random.default_rng(0)
    ds = _shard(tmp_path, {"tc": r.normal(size=(500, 3)).astype("f4"), "ct": r.normal(size=(3, 400)).astype("f4"),
                           "lead1": r.normal(size=(450,)).astype("f4"), "empty": np.zeros((0, 3), "f4")})
    card = _card(ds)
    entry = card["modalities"]["array"]
    assert entry["ranks"] == {"1": 1, "2": 3} and entry["shapes"] == {"(T, 3)": 2, "(T, 400)": 1, "(T,)": 1}
    assert entry["length"] == [0, 500] and entry["empty"] == 1
    ranks = [w for w in card["warnings"] if "ranks" in w]
    assert len(ranks) == 1 and "field 'array': its .npy files hold arrays of 2 ranks" in ranks[0]
    assert "'c/lead1.npy'" in ranks[0] and "transform=" in ranks[0]
    (empty,) = [w for w in card["warnings"] if "hold no values" in w]
    assert empty.startswith("field 'array': 1 of 4 .npy files hold no values") and "'c/empty.npy'" in empty
    # one rank, another trailing shape: the shape warning names the odd file
    one = _card(_shard(tmp_path / "b", {"tc": np.zeros((50, 3), "f4"), "ct": np.zeros((3, 40), "f4")}))
    (shape,) = [w for w in one["warnings"] if "differ in 2 axes" in w]  # (second fix: from full shapes)
    assert "'c/ct.npy'" in shape and "'c/tc.npy'" in shape
    # a clean field: recorded, no warning
    clean = _card(_shard(tmp_path / "c", {"a": np.zeros((50, 3), "f4"), "b": np.zeros((40, 3), "f4")}))
    assert clean["modalities"]["array"]["shapes"] == {"(T, 3)": 2} and clean["modalities"]["array"]["length"] == [40, 50]
    assert not [w for w in clean["warnings"] if "array" in w]


def test_the_loader_warns_of_a_shape_mix_and_a_transform_fixes_it(tmp_path: Path) -> None:
    # (second fix: padded with a PaddingWarning, not refused)
    from mmdata import types
    from mmdata.augment.loader import PaddingWarning

    types._SHAPES_WARNED.discard("array")
    r = np.random.default_rng(1)
    ds = _shard(tmp_path, {"tc": r.normal(size=(50, 3)).astype("f4"), "ct": r.normal(size=(3, 40)).astype("f4")})
    with pytest.warns(PaddingWarning, match="differ in 2 axes"):
        list(mmdata.loader(str(ds), batch_size=2, num_workers=0, shuffle=False))
    b = next(iter(mmdata.loader(str(ds), batch_size=2, num_workers=0, shuffle=False, transform=_time_first)))
    assert tuple(b["array"].shape) == (2, 50, 3) and sorted(b.lengths["array"][:, 0].tolist()) == [40, 50]


def _time_first(s: Sample) -> Sample:
    x = np.asarray(s["array"])
    return s.with_fields(array=x.T if x.shape[0] < x.shape[1] else x)


def test_the_dtype_mix_warning_says_what_collate_does_per_case() -> None:
    ints = npy_dtype_mix_warning("ecg", {"int16": 4, "int32": 4}, {"int16": "a.npy", "int32": "b.npy"})
    assert "refuses" not in ints and "promotes a batch mixing them" in ints and "batch the field in int32" in ints
    # as collate does it
    b = collate([Sample("a", {"ecg": np.zeros(3, np.int16)}), Sample("b", {"ecg": np.zeros(3, np.int32)})])
    assert b["ecg"].dtype == torch.int32
    floats = npy_dtype_mix_warning("imu", {"float32": 3, "float64": 1}, {})
    assert "collate refuses a batch mixing them" in floats and "in float64" in floats
    rec = npy_dtype_mix_warning("r", {"[('a', '<i4')]": 2, "float32": 1}, {})
    assert "no one dtype holds them all" in rec and "as a list of arrays" in rec and "holding them all (" not in rec


def test_inspect_lists_the_arrays_and_prints_no_empty_distribution_table(tmp_path: Path) -> None:
    ds = _shard(tmp_path, {"a": np.zeros((50, 3), "f4"), "b": np.zeros((40, 12), "f4"), "c": np.zeros((0, 3), "f4")})
    env = {**os.environ, "COLUMNS": "300"}
    js = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(ds), "--json"], capture_output=True,
                        text=True, env=env)
    assert js.returncode == 0, js.stderr
    got = json.loads(js.stdout)["arrays"]["array"]
    assert got == {"count": 3, "dtypes": {"float32": 3}, "ranks": {"2": 3}, "shapes": {"(T, 3)": 2, "(T, 12)": 1},
                   "length": {"min": 0, "max": 50}, "empty": 1, "varying_axes": [0, 1]}  # (varying_axes: fix2)
    run = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(ds)], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    assert "distribution" not in run.stdout
    assert "shapes (T, 12): 1, (T, 3): 2 (mixed)" in run.stdout and "first axis 0..50; axes 0, 1 vary; 1 empty" in run.stdout
