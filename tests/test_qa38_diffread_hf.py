"""QA38 C #7: ``to_hf`` of a complex IQ field exported nothing (its error advised a features= none of which
works): complex arrays now export as real with a trailing (real, imag) axis; a field mixing complex and real
arrays is refused naming what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.interop.hf import complex_as_real
from mmdata.testing import make_sample_folder

pytest.importorskip("datasets")


def _iq(i: int, n: int, dtype: type) -> np.ndarray:
    t = np.arange(n)
    return (np.cos(t * (i + 1) / 7) + 1j * np.sin(t * (i + 1) / 5) * (i - 2)).astype(dtype)


def _dataset(t: Path, name: str, arrays: dict[int, np.ndarray]) -> Path:
    raw = make_sample_folder(t / f"raw_{name}", n=len(arrays))
    for i, a in arrays.items():
        np.save(raw / f"{i:06d}.iq.npy", a)
    mmdata.shard(raw, t / name, split="train=1", progress=False)
    return t / name


def test_complex_arrays_export_as_real_and_imag(tmp_path: Path) -> None:
    # one shape (an Array2D (128, 2)) and complex64 + complex128 mixed with ragged lengths (nested lists)
    fixed = {i: _iq(i, 128, np.complex64) for i in range(4)}
    ds = mmdata.to_hf(_dataset(tmp_path, "fixed", fixed), "train", cache_dir=tmp_path / "c1")
    feat = ds.features["iq"]
    assert type(feat).__name__ == "Array2D" and feat.shape == (128, 2) and feat.dtype == "float32", feat
    for row in ds.with_format("numpy"):
        i = int(row["key"])
        got = row["iq"]
        np.testing.assert_array_equal(got[..., 0] + 1j * got[..., 1], fixed[i])
    ragged = {0: _iq(0, 100, np.complex64), 1: _iq(1, 120, np.complex128), 2: _iq(2, 90, np.complex64)}
    ds = mmdata.to_hf(_dataset(tmp_path, "ragged", ragged), "train", cache_dir=tmp_path / "c2")
    for row in ds:
        a = np.asarray(row["iq"])
        assert a.shape == (len(ragged[int(row["key"])]), 2) and a.dtype == np.float64
        np.testing.assert_allclose(a[:, 0] + 1j * a[:, 1], ragged[int(row["key"])])


def test_complex_and_real_in_one_field_is_refused_naming_the_fix(tmp_path: Path) -> None:
    mixed = {0: _iq(0, 16, np.complex64), 1: np.ones(16, np.float32)}
    with pytest.raises(ShardError) as e:
        mmdata.to_hf(_dataset(tmp_path, "mixed", mixed), "train", cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert "'iq' mixes complex .npy arrays" in msg and "complex64" in msg and "float32" in msg
    assert "astype(np.complex64)" in msg and "pass features=" not in msg


def test_complex_as_real_round_trips() -> None:
    a = _iq(3, 8, np.complex128).reshape(2, 4)
    r = complex_as_real(a)
    assert r.shape == (2, 4, 2) and r.dtype == np.float64
    np.testing.assert_array_equal(r[..., 0] + 1j * r[..., 1], a)
