"""QA35 robotics #3: ``shard --check decode`` left a float ``.npy`` field holding NaN / inf (an IMU window from a
driver glitch) in, and ``verify --deep`` said ok, while a NaN WAV of the same sample was left out. A float array
field is now treated like float audio: left out by the decode check (counted, named with the first bad index) and
named by ``verify --deep``. Without the decode check the array is read as it is (a depth map may mark invalid
pixels with NaN on purpose)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.shards.mediainfo import CorruptMedia, decode_check
from mmdata.shards.verify import verify


def _npy(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


def _source(root: Path, bad: dict[int, float]) -> Path:
    root.mkdir()
    for i in range(6):
        a = np.random.default_rng(i).standard_normal(1600).astype(np.float32) * 0.1
        sf.write(root / f"c{i}.wav", a, 16000, subtype="FLOAT")
        x = np.random.default_rng(i).standard_normal((10, 6)).astype(np.float32)
        if i in bad:
            x[3, 4] = bad[i]
        np.save(root / f"c{i}.imu.npy", x)
    return root


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_decode_check_names_the_first_non_finite_value(value: float) -> None:
    x = np.zeros((10, 6), np.float64)
    x[3, 4] = value
    x[7, 0] = value
    with pytest.raises(CorruptMedia, match=r"array holds NaN or infinite values \(2 of 60 values, the first at index \[3, 4\]\)"):
        decode_check("npy", _npy(x))
    decode_check("npy", _npy(np.arange(6, dtype=np.int16)))  # integers cannot hold NaN
    decode_check("npy", _npy(np.ones(3, np.float32)))


def test_shard_check_decode_leaves_out_a_nan_imu_window(tmp_path: Path) -> None:
    src = _source(tmp_path / "raw", {1: np.nan, 4: np.inf})
    rep = _shard(src, tmp_path / "out", check="decode")
    bad = {s["source"]: s["reason"] for s in rep["skipped"]}
    assert set(bad) == {"c1.imu.npy", "c4.imu.npy"}, rep["skipped"]
    assert bad["c1.imu.npy"] == "array holds NaN or infinite values (1 of 60 values, the first at index [3, 4])"
    assert rep["samples"] == 6  # the sample stays, without its IMU (as a sample whose NaN WAV is left out)
    for s in mmdata.open_dataset(tmp_path / "out", split="train", shuffle=False):
        if "imu" in s:
            assert np.isfinite(np.asarray(s["imu"])).all(), s.key


def test_without_the_decode_check_the_array_is_kept_and_verify_deep_names_it(tmp_path: Path) -> None:
    src = _source(tmp_path / "raw", {1: np.nan})
    rep = _shard(src, tmp_path / "out")
    assert rep["skipped"] == [] and rep["samples"] == 6
    assert verify(tmp_path / "out")["ok"]
    deep = verify(tmp_path / "out", deep=True)
    assert not deep["ok"]
    (p,) = [p for p in deep["problems"] if "NaN" in p["problem"]]
    assert p["member"].endswith(".imu.npy") and p["key"] in p["member"]
    assert p["found"] == "array holds NaN or infinite values (1 of 60 values, the first at index [3, 4])"
