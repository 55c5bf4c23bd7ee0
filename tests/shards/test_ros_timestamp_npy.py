"""ROS-style stems with a dotted timestamp (``frame_000001_1701234567.990``) and their ``.npy`` arrays.

QA35 robotics #7: a paired layout (``rgb/ depth/ imu/ audio/ text/``, one folder per sensor, the same stem in
each) split every ``imu/<stem>.npy`` at the timestamp's dot: a junk sample ``frame_000001_1701234567`` holding
field ``imu.990`` and the real samples without their IMU, with a warning to "check the file names match" though
they did. Inside a named field's folder every file is that field: ``imu/<stem>.npy`` is the member
``<key>.imu.npy`` of sample ``<stem>``, whatever dots the stem holds (as the images of the same stems are
matched). #7b: in a plain folder ``<stem>.990.npy`` beside ``<stem>.990.png`` became a fourth sample with a field
``990``, silently. A field name is never all digits (``--column`` names start with a letter), so an all-digit
``.<digits>.npy`` is the end of the stem: the array joins the sample of the file's whole stem as its bare
``.npy`` member (the name a folder gives ``<stem>.npy`` beside a sample). ``<stem>.<field>.npy``
(``x.imu.npy``) keeps its meaning. Real PNG, WAV, text and .npy files throughout.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.sources import discover

STEMS = ("frame_000000_1701234567.890", "frame_000001_1701234567.990", "frame_000002_1701234568.090")


def _imu(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal((10, 6)).astype(np.float32)


def _png(path: Path, i: int, depth: bool = False) -> None:
    if depth:
        Image.fromarray(np.full((8, 8), 1000 + i, np.uint16)).save(path)
    else:
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(path)


def _ros_folders(root: Path) -> Path:
    for d in ("rgb", "depth", "imu", "audio", "text"):
        (root / d).mkdir(parents=True)
    for i, s in enumerate(STEMS):
        _png(root / "rgb" / f"{s}.png", i)
        _png(root / "depth" / f"{s}.png", i, depth=True)
        np.save(root / "imu" / f"{s}.npy", _imu(i))
        sf.write(root / "audio" / f"{s}.wav", np.zeros(160, np.float32) + 0.01 * i, 16000)
        (root / "text" / f"{s}.txt").write_text(f"frame {i}\n", encoding="utf-8")
    return root


ROS_COLUMNS = {"image": "rgb", "depth": "depth", "imu": "imu", "audio": "audio", "text": "text"}


def test_paired_folders_keep_a_dotted_timestamp_stem_for_npy(tmp_path: Path) -> None:
    found = discover(_ros_folders(tmp_path / "ros"), columns=ROS_COLUMNS)
    assert [r.source_key for r in found.records] == list(STEMS)
    for r in found.records:
        assert sorted(r.members) == ["depth.png", "imu.npy", "png", "txt", "wav"], (r.source_key, r.members)
        assert r.members["imu.npy"].endswith(f"imu/{r.source_key}.npy")
    assert not found.skipped and not found.warnings, (found.skipped, found.warnings)


def test_paired_folders_shard_every_imu_window_with_its_frame(tmp_path: Path) -> None:
    ros = _ros_folders(tmp_path / "ros")
    rep = mmdata.shard(ros, tmp_path / "ds", columns=ROS_COLUMNS, split="train=1.0", progress=False)
    assert not [w for w in rep["warnings"] if "file names match" in w or "named field" in w], rep["warnings"]
    rows = pq.read_table(tmp_path / "ds" / idx.INDEX).to_pylist()
    assert sorted(r["source_key"] for r in rows) == list(STEMS)
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", decode=False)}
    assert len(got) == 3
    by_source = {r["source_key"]: r["key"] for r in rows}
    for i, stem in enumerate(STEMS):
        fields = got[by_source[stem]].fields
        assert {"png", "depth.png", "imu.npy", "wav", "txt"} <= set(fields), sorted(fields)
        assert np.array_equal(np.load(io.BytesIO(fields["imu.npy"])), _imu(i))


def test_a_named_folder_file_named_for_its_own_field_joins_the_stem(tmp_path: Path) -> None:
    """``imu/<stem>.imu.npy`` (files copied in with their field suffix): the member ``imu.npy`` of ``<stem>``,
    not a field ``imu.imu``."""
    root = tmp_path / "p"
    (root / "rgb").mkdir(parents=True)
    (root / "imu").mkdir()
    for i, s in enumerate(STEMS):
        _png(root / "rgb" / f"{s}.png", i)
        np.save(root / "imu" / f"{s}.imu.npy", _imu(i))
    found = discover(root, columns={"image": "rgb", "imu": "imu"})
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [(s, ["imu.npy", "png"]) for s in STEMS]
    assert not found.warnings


def _flat(root: Path) -> Path:
    root.mkdir(parents=True)
    for i, s in enumerate(STEMS):
        _png(root / f"{s}.png", i)
        (root / f"{s}.txt").write_text(f"frame {i}\n", encoding="utf-8")
        np.save(root / f"{s}.npy", _imu(i))
    return root


def test_a_plain_folder_joins_a_timestamped_npy_to_its_frame(tmp_path: Path) -> None:
    found = discover(_flat(tmp_path / "flat"))
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [(s, ["npy", "png", "txt"]) for s in STEMS]
    assert not found.warnings and not found.skipped
    rep = mmdata.shard(tmp_path / "flat", tmp_path / "ds", split="train=1.0", progress=False)
    assert not rep["warnings"], rep["warnings"]
    got = list(mmdata.open_dataset(tmp_path / "ds", decode=False))
    assert len(got) == 3
    stems = {r["key"]: r["source_key"] for r in pq.read_table(tmp_path / "ds" / idx.INDEX).to_pylist()}
    for s in got:
        i = STEMS.index(stems[s.key])
        assert np.array_equal(np.load(io.BytesIO(s.fields["npy"])), _imu(i))


def test_timestamped_arrays_alone_are_one_sample_each(tmp_path: Path) -> None:
    """An IMU-only folder: two windows of one second (``.120`` and ``.990``) are two samples, not one sample
    with the fields ``120`` and ``990``."""
    root = tmp_path / "imu"
    root.mkdir()
    for i, s in enumerate(("f_1_1701234567.120", "f_1_1701234567.990")):
        np.save(root / f"{s}.npy", _imu(i))
    found = discover(root)
    assert [(r.source_key, list(r.members)) for r in found.records] == [("f_1_1701234567.120", ["npy"]),
                                                                         ("f_1_1701234567.990", ["npy"])]


def test_named_npy_fields_keep_their_meaning(tmp_path: Path) -> None:
    root = tmp_path / "x"
    root.mkdir()
    _png(root / "x.png", 0)
    np.save(root / "x.imu.npy", _imu(0))
    np.save(root / "x.depth.npy", _imu(1))
    _png(root / "v1.2.png", 1)  # a dotted stem without an array: unchanged
    found = discover(root)
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [("v1.2", ["png"]),
                                                                         ("x", ["depth.npy", "imu.npy", "png"])]


def test_an_all_digit_field_beside_media_is_kept_and_named_in_a_warning(tmp_path: Path) -> None:
    """``scan.png`` + ``scan.0.npy`` and no sample ``scan.0``: read as before (field ``0`` of ``scan``), but
    said, naming the file, since the digits may be part of the name."""
    root = tmp_path / "s"
    root.mkdir()
    _png(root / "scan.png", 0)
    np.save(root / "scan.0.npy", _imu(0))
    found = discover(root)
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [("scan", ["0.npy", "png"])]
    said = [w for w in found.warnings if "scan.0.npy" in w]
    assert len(said) == 1 and "all digits" in said[0] and "'scan'" in said[0], found.warnings


def test_arrays_only_with_digit_fields_after_a_word_stay_fields_and_are_said(tmp_path: Path) -> None:
    """QA35 review #1: ``scan_a.0.npy scan_a.1.npy`` (two views per scan, arrays only) gave 2 samples with fields
    ``0`` / ``1`` before the ROS fix and 4 samples after it, silently. The digits are part of the name only after a
    number (a timestamp: ``_1701234567.990``); here they stay fields, and the reading is said."""
    root = tmp_path / "views"
    root.mkdir()
    for s in ("scan_a", "scan_b"):
        for v in (0, 1):
            np.save(root / f"{s}.{v}.npy", _imu(v))
    found = discover(root)
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [("scan_a", ["0.npy", "1.npy"]),
                                                                         ("scan_b", ["0.npy", "1.npy"])]
    said = [w for w in found.warnings if "all digits" in w]
    assert len(said) == 1 and "4 .npy files" in said[0] and "'scan_a'" in said[0], found.warnings
    with pytest.warns(UserWarning, match="all digits"):
        rep = mmdata.shard(root, tmp_path / "ds", split="train=1.0", progress=False)
    assert rep["samples"] == 2 and any("all digits" in w for w in rep["warnings"]), rep
    got = {s.key: sorted(s.fields) for s in mmdata.open_dataset(tmp_path / "ds", decode=False)}
    assert got == {"scan_a": ["0.npy", "1.npy"], "scan_b": ["0.npy", "1.npy"]}


def test_timestamped_arrays_split_into_samples_are_said(tmp_path: Path) -> None:
    """The other reading of the same ambiguity (a stem ending in a number): two windows of one second become two
    samples, and that split is said too, with how to keep them one sample."""
    root = tmp_path / "imu"
    root.mkdir()
    for i, s in enumerate(("f_1_1701234567.120", "f_1_1701234567.990", "f_2_1701234568.500")):
        np.save(root / f"{s}.npy", _imu(i))
    found = discover(root)
    assert [r.source_key for r in found.records] == ["f_1_1701234567.120", "f_1_1701234567.990",
                                                     "f_2_1701234568.500"]
    said = [w for w in found.warnings if "one sample each" in w]
    assert len(said) == 1 and "'f_1_1701234567.120'" in said[0] and "letter" in said[0], found.warnings
    assert "f_2_" not in said[0]  # one array for its stem: no other reading


def test_a_named_folder_strips_its_field_from_any_file_type_any_case(tmp_path: Path) -> None:
    """QA35 review #2: ``depth/<stem>.depth.png`` (``cp raw/*/*.depth.png ros/depth/``) and ``imu/<stem>.IMU.npy``
    became junk samples ``<stem>.depth`` / ``<stem>.IMU``: in a named field's folder every file is that field."""
    root = tmp_path / "ros"
    for d in ("rgb", "depth", "imu"):
        (root / d).mkdir(parents=True)
    for i, s in enumerate(STEMS):
        _png(root / "rgb" / f"{s}.png", i)
        _png(root / "depth" / f"{s}.depth.png" if i != 1 else root / "depth" / f"{s}.DEPTH.png", i, depth=True)
        np.save(root / "imu" / (f"{s}.IMU.npy" if i else f"{s}.imu.npy"), _imu(i))
    cols = {"image": "rgb", "depth": "depth", "imu": "imu"}
    found = discover(root, columns=cols)
    assert [(r.source_key, sorted(r.members)) for r in found.records] == [
        (s, ["depth.png", "imu.npy", "png"]) for s in STEMS]
    assert not found.warnings and not found.skipped, (found.warnings, found.skipped)
    rep = mmdata.shard(root, tmp_path / "ds", columns=cols, split="train=1.0", progress=False)
    assert rep["samples"] == 3 and not rep["warnings"], rep
    rows = pq.read_table(tmp_path / "ds" / idx.INDEX).to_pylist()
    by_source = {r["source_key"]: r["key"] for r in rows}
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", decode=False)}
    for i, s in enumerate(STEMS):
        assert np.array_equal(np.load(io.BytesIO(got[by_source[s]].fields["imu.npy"])), _imu(i))


def test_a_named_folder_sidecar_warning_advises_the_folders_name(tmp_path: Path) -> None:
    """A file of another field in a named folder (``depth/<stem>.right.png``) is still a sample of its own, said;
    the advice is the folder's own name (``depth/<stem>.png``), not ``<stem>.right.npy``."""
    root = tmp_path / "p"
    for d in ("rgb", "depth"):
        (root / d).mkdir(parents=True)
    _png(root / "rgb" / "f_1.990.png", 0)
    _png(root / "depth" / "f_1.990.right.png", 1, depth=True)
    found = discover(root, columns={"image": "rgb", "depth": "depth"})
    said = [w for w in found.warnings if "named field of another sample" in w]
    assert len(said) == 1 and "'depth/f_1.990.png'" in said[0], found.warnings
    assert ".right.npy" not in said[0]
