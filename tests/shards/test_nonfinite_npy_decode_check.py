"""QA35 robotics #3: ``shard --check decode`` and ``verify --deep`` said nothing of a float ``.npy`` field holding
NaN / inf (an IMU window from a driver glitch). The first fix left such arrays out and failed ``verify --deep``
(exit 1), which dropped / failed every healthy depth map marking missing pixels with NaN (review media #3). Now
such arrays are kept and counted per field: ``shard --check decode`` warns (the card keeps the warning and
``modalities[field]["non_finite"]``), ``verify --deep`` warns (exit 0), one line per field naming the first."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.shards.mediainfo import CorruptMedia, check_npy, decode_check
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
def test_check_npy_counts_the_non_finite_values_and_decode_check_passes(value: float) -> None:
    x = np.zeros((10, 6), np.float64)
    x[3, 4] = value
    x[7, 0] = value
    assert check_npy(_npy(x), decode=True) == ("float64", (2, 60, (3, 4)))
    assert check_npy(_npy(x)) == ("float64", None)  # without the decode check only the header is read
    decode_check("npy", _npy(x))  # decodes: NaN is a value, not damage (review media #3)
    assert check_npy(_npy(np.arange(6, dtype=np.int16)), decode=True) == ("int16", None)
    with pytest.raises(CorruptMedia, match="truncated"):
        check_npy(_npy(x)[:-8], decode=True)


def test_shard_check_decode_keeps_a_nan_imu_window_and_warns_per_field(tmp_path: Path) -> None:
    src = _source(tmp_path / "raw", {1: np.nan, 4: np.inf})
    rep = _shard(src, tmp_path / "out", check="decode")
    assert rep["skipped"] == [] and rep["samples"] == 6
    (w,) = [w for w in rep["warnings"] if "NaN" in w]
    assert w.startswith("field 'imu': 2 of 6 arrays hold NaN or infinite values (e.g. 'c1.imu.npy': 1 of 60 values, "
                        "the first at index [3, 4])"), w
    card = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert card["modalities"]["imu"]["non_finite"] == 2
    assert w in card["warnings"]
    held = {s.key: np.asarray(s["imu"]) for s in mmdata.open_dataset(tmp_path / "out", split="train", shuffle=False)}
    assert len(held) == 6 and sum(not np.isfinite(a).all() for a in held.values()) == 2


def _depth_set(root: Path) -> Path:
    """4 samples, each a PNG and a float32 depth map marking its missing pixel [0, 0] with NaN (ROS / RealSense)."""
    from PIL import Image

    root.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / f"s{i}.png")
        d = np.full((8, 8), 1.5 + i, np.float32)
        d[0, 0] = np.nan
        np.save(root / f"s{i}.depth.npy", d)
    return root


def test_verify_deep_passes_a_depth_map_marking_missing_pixels_with_nan(tmp_path: Path) -> None:
    rep = _shard(_depth_set(tmp_path / "raw"), tmp_path / "out")
    assert rep["skipped"] == [] and rep["samples"] == 4
    assert verify(tmp_path / "out")["ok"]
    deep = verify(tmp_path / "out", deep=True)
    assert deep["ok"] and deep["problems"] == [], deep["problems"]
    (w,) = deep["warnings"]
    assert w.startswith("field 'depth': 4 of 4 arrays hold NaN or infinite values (e.g. 's0.depth.npy': 1 of 64 "
                        "values, the first at index [0, 0])"), w
    assert "warnings" not in verify(tmp_path / "out")  # only --deep decodes


def test_cli_verify_deep_exits_0_with_one_warning_line_per_field(tmp_path: Path) -> None:
    _shard(_depth_set(tmp_path / "raw"), tmp_path / "out")
    run = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "verify", str(tmp_path / "out"), "--deep"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "400"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: 1 shard matches the index" in run.stdout
    assert run.stderr.count("NaN or infinite") == 1 and "field 'depth': 4 of 4 arrays" in run.stderr, run.stderr
    dec = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(tmp_path / "raw"),
                          str(tmp_path / "out2"), "--check", "decode"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "400"})
    assert dec.returncode == 0, dec.stdout + dec.stderr
    assert "left out" not in dec.stdout + dec.stderr and "field 'depth': 4 of 4 arrays" in dec.stdout + dec.stderr
