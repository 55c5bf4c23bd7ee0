"""QA38 review 1 #5: ``to_hf`` of a complex field said nothing about the trailing (real, imag) axis it adds: one
UserWarning per call names the field and the convention, and the dataset's ``info.description`` carries it (so a
pushed or saved dataset tells its reader); complex256, narrowed to float64, is said too."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.testing import make_sample_folder

pytest.importorskip("datasets")


def _dataset(t: Path, name: str, arrays: dict[str, list[np.ndarray]], description: str | None = None) -> Path:
    raw = make_sample_folder(t / f"raw_{name}", n=2)
    for field, arrs in arrays.items():
        for i, a in enumerate(arrs):
            np.save(raw / f"{i:06d}.{field}.npy", a)
    mmdata.shard(raw, t / name, split="train=1", progress=False, description=description)
    return t / name


def _to_hf(path: Path, cache: Path) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        d = mmdata.to_hf(path, "train", cache_dir=cache)
    return d, [str(w.message) for w in got if issubclass(w.category, UserWarning)
               and "(real, imag)" in str(w.message)]


def test_complex_export_is_said_in_a_warning_and_the_description(tmp_path: Path) -> None:
    iq = [(np.arange(16) * (1 + 2j) * (i + 1)).astype(np.complex64) for i in range(2)]
    path = _dataset(tmp_path, "radio", {"iq": iq, "depth": [np.ones((3, 4), np.float32)] * 2}, "FM captures")
    for call in range(2):  # the second call reads the cached Arrow file: said again
        d, said = _to_hf(path, tmp_path / "c")
        assert len(said) == 1, said
        msg = said[0]
        assert "'iq'" in msg and "complex64" in msg and "float32" in msg and "x[..., 0] + 1j * x[..., 1]" in msg, msg
        assert "'depth'" not in msg and "narrowed" not in msg, msg
        desc = d.info.description
        assert desc.startswith("FM captures") and "'iq'" in desc and "(real, imag)" in desc, desc
        assert desc.count("(real, imag)") == 1, desc
        a = np.asarray(d.with_format("numpy")[0]["iq"])
        assert a.shape == (16, 2)


def test_complex256_is_said_narrowed_and_a_real_dataset_says_nothing(tmp_path: Path) -> None:
    wide = [(np.arange(8) * (1 + 2j)).astype(np.clongdouble)] * 2
    if np.dtype(np.clongdouble).itemsize <= 16:
        pytest.skip("no complex wider than complex128 on this platform")
    d, said = _to_hf(_dataset(tmp_path, "wide", {"iq": wide}), tmp_path / "c1")
    assert len(said) == 1 and "'iq'" in said[0] and "narrowed" in said[0] and "float64" in said[0], said
    assert "narrowed" in d.info.description
    d, said = _to_hf(_dataset(tmp_path, "real", {"depth": [np.ones((3, 4), np.float32)] * 2}, "plain"),
                     tmp_path / "c2")
    assert said == [] and d.info.description == "plain"
