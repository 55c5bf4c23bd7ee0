"""QA36 second fix, arrays: collate pads ``.npy`` arrays along every axis as before 6517b17 (a (n_mels, frames)
``spec.npy`` from ``mmdata augment`` + ``logmel``, (C, T) IMU windows, per-pixel maps beside images of several sizes,
masks without an image), refuses a rank mix, and warns (PaddingWarning) of arrays differing in more than one axis
— for numpy arrays and tensors alike; shard warns of that only for a dataset without images, from each file's
full shape (``varying_axes`` in the card)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata import types
from mmdata.augment.loader import PaddingWarning
from mmdata.types import Sample, collate


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(types, "_SHAPES_WARNED", set())  # said once per field and process


def _img(h: int, w: int) -> torch.Tensor:
    return torch.zeros(3, h, w, dtype=torch.uint8)


def _quiet(samples: list[Sample]) -> types.Batch:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PaddingWarning)
        return collate(samples)


def test_spec_from_augment_logmel_loads_padded_on_its_frames(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "c"
    raw.mkdir(parents=True)
    for i, n in enumerate([16000, 12000, 8000, 14000]):
        x = (np.sin(np.arange(n) * 0.05 * (i + 1)) * 8000).astype(np.int16)
        with wave.open(str(raw / f"s{i}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(x.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    (tmp_path / "r.yaml").write_text("audio:\n  - {op: logmel, n_mels: 40}\n")
    run = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "augment", str(tmp_path / "ds"), str(tmp_path / "aug"),
                          "-r", str(tmp_path / "r.yaml")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert not [w for w in card.get("warnings", []) if "'spec'" in w and "axes" in w]
    assert card["modalities"]["spec"]["varying_axes"] == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PaddingWarning)
        b = next(iter(mmdata.loader(str(tmp_path / "aug"), 4, shuffle=False, num_workers=0)))
    assert tuple(b["spec"].shape)[:2] == (4, 40) and b.lengths["spec"][:, 0].tolist() == [40] * 4
    assert len(set(b.lengths["spec"][:, 1].tolist())) == 4


def test_ct_imu_windows_beside_images_pad_on_t_and_shard_says_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "c"
    raw.mkdir(parents=True)
    for i, t in enumerate([100, 80, 120, 90]):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(raw / f"s{i}.png")
        np.save(raw / f"s{i}.imu.npy", np.random.default_rng(i).normal(size=(6, t)).astype("f4"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["modalities"]["imu"]["varying_axes"] == [1]
    assert not [w for w in card.get("warnings", []) if "'imu'" in w]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PaddingWarning)
        b = next(iter(mmdata.loader(str(tmp_path / "ds"), 4, shuffle=False, num_workers=0)))
    assert tuple(b["imu"].shape) == (4, 6, 120) and sorted(b.lengths["imu"][:, 1].tolist()) == [80, 90, 100, 120]


@pytest.mark.parametrize("case", ["flow", "mask_one_without_image", "mask_beside_frame", "half_res_depth"])
def test_per_pixel_maps_pad_without_a_warning(case: str) -> None:
    samples = {
        "flow": [Sample("a", {"image": _img(4, 6), "flow.npy": np.ones((4, 6, 2), "f4")}),
                 Sample("b", {"image": _img(5, 3), "flow.npy": np.ones((5, 3, 2), "f4")})],
        "mask_one_without_image": [Sample("a", {"image": _img(4, 6), "mask.npy": np.ones((4, 6), "u1")}),
                                   Sample("b", {"mask.npy": np.ones((5, 3), "u1")})],
        "mask_beside_frame": [Sample("a", {"frame1.png": _img(4, 6), "mask.npy": np.ones((4, 6), "u1")}),
                              Sample("b", {"frame1.png": _img(5, 3), "mask.npy": np.ones((5, 3), "u1")})],
        "half_res_depth": [Sample("a", {"image": _img(8, 12), "depth.npy": np.ones((4, 6), "f4")}),
                           Sample("b", {"image": _img(11, 6), "depth.npy": np.ones((5, 3), "f4")})],
    }[case]
    field = next(f for f in samples[0].fields if f.endswith(".npy"))
    b = _quiet(samples)
    assert b.lengths[field].tolist() == [list(s[field].shape) for s in samples]


def test_a_mask_without_any_image_pads_with_a_warning() -> None:
    with pytest.warns(PaddingWarning, match=r"field 'mask.npy': a batch's arrays differ in 2 axes"):
        b = collate([Sample("a", {"mask.npy": np.ones((4, 6), "u1")}), Sample("b", {"mask.npy": np.ones((5, 3), "u1")})])
    assert tuple(b["mask.npy"].shape) == (2, 5, 6)


@pytest.mark.parametrize("box", [np.asarray, torch.as_tensor, "mixed"])
def test_arrays_differing_in_two_axes_pad_with_a_warning_naming_samples_and_fix(box) -> None:
    r = np.random.default_rng(0)
    arrays = {"tc": r.normal(size=(500, 3)), "tc2": r.normal(size=(300, 3)), "ct": r.normal(size=(3, 400))}
    wrap = (lambda i, a: (torch.as_tensor(a) if i % 2 else a)) if box == "mixed" else (lambda i, a: box(a))
    samples = [Sample(k, {"ecg": wrap(i, a)}) for i, (k, a) in enumerate(arrays.items())]
    with pytest.warns(PaddingWarning) as got:
        b = collate(samples)
    msg = str(got[0].message)
    assert msg.startswith("collate: field 'ecg': a batch's arrays differ in 2 axes, 0 and 1 ((3, 400): 'ct'; ")
    assert "(500, 3): 'tc'" in msg and "zero-padded to (500, 400)" in msg and "transform=" in msg and ".T" in msg
    assert tuple(b["ecg"].shape) == (3, 500, 400) and b.lengths["ecg"].tolist() == [[500, 3], [300, 3], [3, 400]]
    with warnings.catch_warnings():  # said once per field
        warnings.simplefilter("error", PaddingWarning)
        collate(samples)


def test_one_lead_beside_twelve_warns_and_one_varying_axis_does_not() -> None:
    with pytest.warns(PaddingWarning, match=r"\(300, 12\): 'b'"):
        collate([Sample("a", {"ecg": np.zeros((450, 1), "f4")}), Sample("b", {"ecg": np.zeros((300, 12), "f4")})])
    for box in (np.asarray, torch.as_tensor):
        b = _quiet([Sample("a", {"imu": box(np.ones((6, 100), "f4"))}), Sample("b", {"imu": box(np.ones((6, 80), "f4"))})])
        assert b.lengths["imu"].tolist() == [[6, 100], [6, 80]]


@pytest.mark.parametrize("box", [np.asarray, torch.as_tensor])
def test_a_rank_mix_is_refused_for_arrays_and_tensors(box) -> None:
    with pytest.raises(ValueError, match=r"ranks differ \(1 dim: 'a'; 2 dims: 'b'\).*reshape"):
        collate([Sample("a", {"ecg": box(np.zeros(5, "f4"))}), Sample("b", {"ecg": box(np.zeros((5, 2), "f4"))})])


def test_shard_warns_of_two_varying_axes_only_without_images(tmp_path: Path) -> None:
    def shard(root: Path, arrays: dict[str, np.ndarray], images: bool = False) -> dict:
        raw = root / "raw" / "c"
        raw.mkdir(parents=True)
        for k, a in arrays.items():
            np.save(raw / (f"{k}.x.npy" if images else f"{k}.npy"), a)
            if images:
                Image.fromarray(np.zeros((a.shape[0], a.shape[1], 3), np.uint8)).save(raw / f"{k}.png")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mmdata.shard(root / "raw", root / "ds", progress=False)
        return json.loads((root / "ds" / "dataset.json").read_text())

    two = {"a": np.zeros((50, 1), "f4"), "b": np.zeros((40, 12), "f4")}
    card = shard(tmp_path / "a", two)
    assert card["modalities"]["array"]["varying_axes"] == [0, 1]
    (w,) = [w for w in card["warnings"] if "axes" in w]
    assert "field 'array': its .npy files differ in 2 axes (0, 1)" in w and "'c/b.npy'" in w and "transform=" in w
    assert "refuses" not in w
    maps = shard(tmp_path / "b", {"a": np.zeros((4, 6), "u1"), "b": np.zeros((5, 3), "u1")}, images=True)
    assert maps["modalities"]["x"]["varying_axes"] == [0, 1] and not [w for w in maps["warnings"] if "axes" in w]
    ranks = shard(tmp_path / "c", {"a": np.zeros((4, 6), "u1"), "b": np.zeros(5, "u1")}, images=False)
    assert [w for w in ranks["warnings"] if "2 ranks" in w and "refuses" in w]
    assert "varying_axes" not in ranks["modalities"]["array"]
