"""QA round 35 (robotics #1 #4 #5 #10): which files ``mmdata add-modality`` takes, and how it books the rest.

#1: a file that matches a sample and names the field but cannot be used (``<key>.imu.csv``: unknown type) is a
left-out member of that sample: listed in the card's ``skipped`` (its name starts with the sample's published key)
and counted by ``inspect``; a file matching no sample is still only counted (QA34 gdpr #1). #4: from a manifest each
unusable row is counted once, and ``unmatched_reasons`` groups by reason, not by row. #5: ``<key>.npy`` /
``<source_key>.npy`` files (ROS stems with a dotted timestamp) are the field named on the command line; the error
never lists a timestamp fraction as a field. #10: 16-bit ``<key>.depth.png`` maps are added as the named field
``depth.png``, written as ``mmdata shard --column depth=...`` writes them. Real PNGs, .npy files, tars and CLI.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.columns import add_modality
from mmdata.shards.inspect import inspect

STEMS = [f"frame_{i:06d}_1701234567.{i}90" for i in range(4)]  # ROS stems: a dotted timestamp


def _ds(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, s in enumerate(STEMS):
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(raw / f"{s}.png")
        (raw / f"{s}.txt").write_text(f"frame {i}", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=2, progress=False)
    return tmp_path / "ds"


def _card(ds: Path) -> dict:
    return json.loads((ds / idx.CARD).read_text(encoding="utf-8"))


def _members(ds: Path, field: str) -> dict[str, bytes]:
    out = {}
    for tar in sorted((ds / field).glob("*.tar")):
        with tarfile.open(tar) as tf:
            out.update({m.name: tf.extractfile(m).read() for m in tf if m.isfile()})
    return out


def _imu(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        np.save(folder / n, np.zeros((5, 6), np.float32))


def test_unusable_file_of_a_sample_is_a_skipped_member_counted_by_inspect(tmp_path: Path) -> None:
    ds = _ds(tmp_path)
    src = tmp_path / "imu"
    _imu(src, [f"{s}.imu.npy" for s in STEMS[:2]] + ["someone_else.imu.npy"])
    (src / f"{STEMS[2]}.imu.csv").write_text("1,2,3\n", encoding="utf-8")
    rep = add_modality(ds, "imu", src)
    assert (rep["added"], rep["missing"], rep["skipped"], rep["unmatched"]) == (2, 2, 1, 1)
    card = _card(ds)
    entry = [s for s in card["skipped"] if s.get("field") == "imu"]
    assert len(entry) == 1 and entry[0]["source"] == f"{STEMS[2]}.imu.csv" and entry[0]["sample"] == STEMS[2]
    assert entry[0]["what"] == "member" and "unknown file type" in entry[0]["reason"]
    assert card["modalities"]["imu"]["skipped"] == 1 and card["modalities"]["imu"]["unmatched"] == 1
    assert "someone_else" not in json.dumps(card)  # matches no sample: counted, never named (QA34 gdpr #1)
    assert inspect(ds)["skipped_counts"]["members"] == 1
    out = CliRunner().invoke(app, ["inspect", str(ds)])
    assert out.exit_code == 0, out.output
    assert "left out by the jobs that wrote it" in out.output and "1 member" in out.output
    res = CliRunner().invoke(app, ["verify", str(ds), "--deep"])
    assert res.exit_code == 0, res.output


def test_manifest_rows_counted_once_and_reasons_grouped(tmp_path: Path) -> None:
    ds = _ds(tmp_path)
    files = tmp_path / "files"
    _imu(files, [f"{s}.imu.npy" for s in STEMS[:2]])
    for n in (STEMS[2], STEMS[3], "nobody"):
        (files / f"{n}.imu.csv").write_text("1,2\n", encoding="utf-8")
    man = tmp_path / "imu_add.csv"
    man.write_text("key,imu\n" + "".join(f"{k},{files / f'{k}.imu.{e}'}\n" for k, e in
                                        [(STEMS[0], "npy"), (STEMS[1], "npy"), (STEMS[2], "csv"), (STEMS[3], "csv"),
                                         ("nobody", "csv")]), encoding="utf-8")
    rep = add_modality(ds, "imu", man)
    assert (rep["added"], rep["skipped"], rep["unmatched"]) == (2, 2, 1)  # one count per row, not two
    reasons = _card(ds)["modalities"]["imu"]["unmatched_reasons"]
    assert len(reasons) == 1 and list(reasons.values()) == [1] and "row" not in next(iter(reasons))
    assert not any("no file or text left" in r for r in reasons)
    assert sorted(s["sample"] for s in _card(ds)["skipped"] if s.get("field") == "imu") == STEMS[2:]


def test_source_key_npy_files_are_the_named_field_with_ros_stems(tmp_path: Path) -> None:
    ds = _ds(tmp_path)
    src = tmp_path / "imu_src"
    _imu(src, [f"{s}.npy" for s in STEMS])  # <source_key>.npy: the stem keeps its timestamp's dot
    rep = add_modality(ds, "imu", src)
    assert (rep["added"], rep["unmatched"], rep["skipped"]) == (4, 0, 0)
    keys = {r["source_key"]: r["key"] for r in idx.load_index(ds).to_pylist()}
    assert sorted(_members(ds, "imu")) == sorted(f"{keys[s]}.imu.npy" for s in STEMS)
    b = next(iter(mmdata.loader(ds, 4, shuffle=False, num_workers=0)))
    assert tuple(b["imu"].shape) == (4, 5, 6)


def test_no_match_error_lists_no_timestamp_fractions(tmp_path: Path) -> None:
    ds = _ds(tmp_path)
    src = tmp_path / "other"
    _imu(src, [f"frame_{i:06d}_1801234567.{i}90.npy" for i in range(3)])  # dotted stems of no sample
    with pytest.raises(SourceError) as e:
        add_modality(ds, "imu", src)
    msg = str(e.value)
    assert "fields found" not in msg and "'090'" not in msg  # no timestamp fraction taken for a field
    assert "none matches a sample" in msg and "frame_000000_1801234567.090.npy" in msg


def test_help_says_which_names_are_taken() -> None:
    out = CliRunner().invoke(app, ["add-modality", "--help"], terminal_width=400)
    text = " ".join(out.output.split())
    assert "<key>.<field>.<ext>" in text.replace("│ ", "").replace(" │", "")


def _depth_png(path: Path, value: int) -> None:
    Image.fromarray(np.full((6, 6), value, np.uint16)).save(path)


def test_sixteen_bit_named_depth_png_added_as_shard_writes_it(tmp_path: Path) -> None:
    ds = _ds(tmp_path)
    src = tmp_path / "dep"
    src.mkdir()
    for i, s in enumerate(STEMS[:3]):
        _depth_png(src / f"{s}.depth.png", 4000 + i)
    with pytest.raises(SourceError, match="depth.png"):
        add_modality(ds, "depth", src)  # the field these files name is 'depth.png'
    rep = add_modality(ds, "depth.png", src)
    assert (rep["added"], rep["missing"], rep["unmatched"]) == (3, 1, 0)
    keys = {r["source_key"]: r["key"] for r in idx.load_index(ds).to_pylist()}
    got = _members(ds, "depth.png")
    assert sorted(got) == sorted(f"{keys[s]}.depth.png" for s in STEMS[:3])
    assert got[f"{keys[STEMS[1]]}.depth.png"] == (src / f"{STEMS[1]}.depth.png").read_bytes()
    row = {r["source_key"]: r for r in idx.load_index(ds).to_pylist()}[STEMS[1]]
    assert "depth.png" in row["modalities"] and row["image_mode"] == "RGB"  # the image's stats untouched
    batches = list(mmdata.loader(ds, 4, shuffle=False, num_workers=2))  # real DataLoader workers
    assert all(str(b["depth.png"].dtype) == "torch.int32" for b in batches)  # 16-bit values kept, as shard's
    assert sorted(int(d.max()) for b in batches for d in b["depth.png"]) == [0, 4000, 4001, 4002]
    res = CliRunner().invoke(app, ["verify", str(ds), "--deep"])
    assert res.exit_code == 0, res.output


def test_unknown_sidecar_of_a_sample_that_got_its_array_is_counted_not_left_out(tmp_path: Path) -> None:
    """QA35 review #3: ``<key>.npy`` + ``<key>.yaml`` (a sidecar of an unknown type) beside it: every sample got
    its array, so the ``.yaml`` files are unused files (counted), not left-out members (the card and inspect said
    4 members were left out of a complete series). A bare unknown file of a sample without the field still is."""
    ds = _ds(tmp_path)
    src = tmp_path / "imu_src"
    _imu(src, [f"{s}.npy" for s in STEMS[:3]])
    for s in STEMS:
        (src / f"{s}.yaml").write_text("rate: 200\n", encoding="utf-8")
    rep = add_modality(ds, "imu", src)
    assert (rep["added"], rep["missing"], rep["skipped"], rep["unmatched"]) == (3, 1, 1, 3), rep
    card = _card(ds)
    entry = [s for s in card["skipped"] if s.get("field") == "imu"]
    assert [(e["source"], e["sample"]) for e in entry] == [(f"{STEMS[3]}.yaml", STEMS[3])]
    assert card["modalities"]["imu"]["skipped"] == 1 and card["modalities"]["imu"]["unmatched"] == 3
    assert inspect(ds)["skipped_counts"]["members"] == 1


def test_a_non_ascii_digit_field_is_a_field_as_in_discovery(tmp_path: Path) -> None:
    """QA35 review #4: add-modality read a timestamp's fraction with ``str.isdigit`` (true for ``²``), discovery
    with ASCII digits only; one helper now: ``<key>.².npy`` is a field ``²`` (named in the error), no fraction."""
    ds = _ds(tmp_path)
    src = tmp_path / "sq"
    _imu(src, [f"{s}.\u00b2.npy" for s in STEMS])
    with pytest.raises(SourceError) as e:
        add_modality(ds, "imu", src)
    assert "fields found: \u00b2: 4" in str(e.value), str(e.value)
