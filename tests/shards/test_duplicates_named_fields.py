"""QA35 robotics #2: samples whose RGB and IMU differ but whose 16-bit ``.depth.png`` (a static scene) is
byte-identical were reported as "a test sample that is also trained on". A sample is identified by its image /
audio; a named field's member shared across splits is noted apart, naming the field, and one shared by more than
3 samples is taken for a placeholder (a blank / constant frame), as ``shared_placeholders`` are for labels."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.shards.writer import duplicates_warning


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i * 10 % 256, 3, 7)).save(buf, "PNG")
    return buf.getvalue()


def _depth(v: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 500 + v, np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def _npy(seed: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).standard_normal((4, 6)).astype(np.float32))
    return buf.getvalue()


def _manifest(root: Path, samples: list[dict[str, bytes]]) -> Path:
    """A manifest with key, split and a column per field; ``samples``: field -> bytes per sample."""
    root.mkdir()
    fields = sorted({f for s in samples for f in s})
    lines = [",".join(["key", "split", *fields])]
    for i, s in enumerate(samples):
        names = []
        for f in fields:
            name = f"f{i:02d}.{f}" if f != "image" else f"f{i:02d}.png"
            if f == "depth":
                name = f"f{i:02d}.depth.png"
            (root / name).write_bytes(s[f])
            names.append(name)
        lines.append(",".join([f"f{i:02d}", _split(i), *names]))
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


def _shard(manifest: Path, out: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cols = {c: c for c in ("depth", "imu") if c in manifest.read_text().splitlines()[0].split(",")}
        return mmdata.shard(manifest, out, progress=False, columns=cols or None)


def _split(i: int) -> str:
    return ("train", "val", "test")[i % 3]


def test_one_depth_map_of_many_recordings_is_a_placeholder_not_a_copy(tmp_path: Path) -> None:
    # two depth maps, 6 samples each
    samples = [{"image": _png(i), "imu": _npy(i), "depth": _depth(i % 2)} for i in range(12)]
    rep = _shard(_manifest(tmp_path / "raw", samples), tmp_path / "out")
    dup = json.loads((tmp_path / "out" / "dataset.json").read_text())["duplicates"]
    assert dup["across_splits"] == 0 and dup["samples"] == 0, dup
    assert dup["shared_fields"] == ["depth.png"]
    assert (dup["shared_field_placeholders"], dup["shared_field_placeholder_samples"]) == (2, 12)
    assert "shared_field_sets" not in dup and dup["compared"] == "sha256"
    assert not any("also trained on" in w for w in rep["warnings"]), rep["warnings"]
    (note,) = [w for w in rep["warnings"] if "placeholders" in w]
    assert "'depth.png'" in note and "2 named-field members" in note and "12 samples" in note


def test_a_depth_map_shared_by_two_recordings_is_noted_with_the_field(tmp_path: Path) -> None:
    samples = [{"image": _png(i), "depth": _depth(i // 2)} for i in range(6)]
    rep = _shard(_manifest(tmp_path / "raw", samples), tmp_path / "out")
    dup = json.loads((tmp_path / "out" / "dataset.json").read_text())["duplicates"]
    assert dup["across_splits"] == 0
    assert (dup["shared_field_sets"], dup["shared_field_samples"]) == (3, 6)
    assert dup["shared_field_examples"][0] == ["depth.png", [["f00", "train"], ["f01", "val"]]]
    (note,) = [w for w in rep["warnings"] if "named field" in w]
    assert "'depth.png'" in note and "not counted as copies" in note and "'f00' (train)" in note


def test_a_copied_image_is_still_a_copy_and_its_depth_map_not_noted_again(tmp_path: Path) -> None:
    # f00 (train) and f01 (val): one photo under two names, with one depth map
    samples = [{"image": _png(0 if i < 2 else i), "depth": _depth(0 if i < 2 else i)} for i in range(6)]
    rep = _shard(_manifest(tmp_path / "raw", samples), tmp_path / "out")
    dup = json.loads((tmp_path / "out" / "dataset.json").read_text())["duplicates"]
    assert (dup["across_splits"], dup["samples"]) == (1, 2)
    assert "shared_fields" not in dup
    assert sum("also trained on" in w for w in rep["warnings"]) == 1


def test_samples_of_named_fields_only_are_still_compared_by_them(tmp_path: Path) -> None:
    samples = [{"depth": _depth(0 if i < 2 else i), "text": f"t{i}".encode()} for i in range(6)]
    _shard(_manifest(tmp_path / "raw", samples), tmp_path / "out")
    dup = json.loads((tmp_path / "out" / "dataset.json").read_text())["duplicates"]
    assert (dup["across_splits"], dup["samples"]) == (1, 2)


def test_the_warning_of_an_older_card_is_unchanged() -> None:
    found = {"across_splits": 0, "samples": 0, "examples": []}
    assert duplicates_warning(found) == []
