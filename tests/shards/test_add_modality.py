"""mmdata.add_modality: bad files, unmatched files, atomic failure, source-key matching, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.errors import SourceError
from mmdata.testing import make_class_folders, make_sample_folder


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _columns_ds(tmp_path: Path, n: int = 10) -> Path:
    raw = make_sample_folder(tmp_path / "raw", n=n)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=4, progress=False)
    return tmp_path / "ds"


def _depth(folder: Path, keys: list[str], field: str = "depth") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in keys:
        np.save(folder / f"{k}.{field}.npy", np.full((2, 2), len(k), np.float32))
    return folder


KEYS = [f"{i:06d}" for i in range(10)]


def test_bad_file_with_raise_leaves_dataset_as_it_was(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS)
    (dep / "000009.depth.npy").write_bytes(b"garbage")  # last shard: the first two are written before it
    before = _tree_bytes(ds)
    with pytest.raises(SourceError, match=r"000009\.depth\.npy.*not a \.npy array.*sample '000009'"):
        mmdata.add_modality(ds, "depth", dep, on_error="raise")
    assert _tree_bytes(ds) == before
    assert {p.name for p in ds.iterdir()} == {"audio", "image", "label", "text", "dataset.json", "index.parquet",
                                              "shards.parquet"}  # no depth/, staging folder or lock left
    assert mmdata.verify(ds)["ok"]


def test_bad_file_is_skipped_and_reported_by_default(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS)
    (dep / "000004.depth.npy").write_bytes(b"garbage")
    rep = mmdata.add_modality(ds, "depth", dep)
    assert rep["added"] == 9 and rep["missing"] == 1 and rep["skipped"] == 1
    assert rep["skipped_files"][0]["source"] == "000004.depth.npy" and rep["skipped_files"][0]["sample"] == "000004"
    assert "not a .npy array" in rep["skipped_files"][0]["reason"]
    card = json.loads((ds / "dataset.json").read_text())
    assert card["modalities"]["depth"]["count"] == 9 and card["modalities"]["depth"]["skipped"] == 1
    entry = [s for s in card["skipped"] if s.get("field") == "depth"]
    assert len(entry) == 1 and entry[0]["what"] == "member" and entry[0]["sample"] == "000004"
    assert card["skipped_count"] == len(card["skipped"]) and card["skipped_counts"]["members"] >= 1
    got = {s.key: s for s in mmdata.open_dataset(ds)}
    assert "depth" not in got["000004"] and got["000005"]["depth"].shape == (2, 2)
    assert mmdata.verify(ds)["ok"]


def test_failed_replace_keeps_the_old_series(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _depth(tmp_path / "depth", KEYS))
    before = _tree_bytes(ds)
    dep2 = tmp_path / "depth2"
    dep2.mkdir()
    for k in KEYS:
        np.save(dep2 / f"{k}.depth.npy", np.full((3,), 7, np.float32))
    (dep2 / "000008.depth.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(SourceError, match="000008"):
        mmdata.add_modality(ds, "depth", dep2, replace=True, on_error="raise")
    assert _tree_bytes(ds) == before
    assert mmdata.verify(ds)["ok"]
    # the skip run replaces it, and a second replace drops the first one's skipped entries
    (dep2 / "000008.depth.npy").unlink()
    rep = mmdata.add_modality(ds, "depth", dep2, replace=True)
    assert rep["added"] == 9 and rep["missing"] == 1
    assert float(next(iter(mmdata.open_dataset(ds)))["depth"][0]) == 7.0
    assert mmdata.verify(ds)["ok"]


def test_series_left_by_an_old_failed_run_is_replaced(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    (ds / "depth").mkdir()
    (ds / "depth" / "train-000000.tar").write_bytes(b"partial")
    assert not mmdata.verify(ds)["ok"]
    rep = mmdata.add_modality(ds, "depth", _depth(tmp_path / "depth", KEYS[:3]))
    assert rep["added"] == 3
    assert mmdata.verify(ds)["ok"]


def test_unmatched_files_are_reported(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS[:6] + ["typo_key"])
    (dep / "notes.zip").write_bytes(b"PK")
    rep = mmdata.add_modality(ds, "depth", dep)
    assert rep["added"] == 6 and rep["missing"] == 4
    assert rep["unmatched"] == 2
    assert sorted(rep["unmatched_files"]) == ["notes.zip", "typo_key.depth.npy"]
    card = json.loads((ds / "dataset.json").read_text())
    rec = card["modalities"]["depth"]
    # the card counts unused files and names none of them (QA round 34: an erased subject's leftover files)
    assert rec["unmatched"] == 2 and "unmatched_files" not in rec and sum(rec["unmatched_reasons"].values()) == 2
    assert not [s for s in card["skipped"] if s.get("field") == "depth"]
    assert "typo_key" not in json.dumps(card)
    assert mmdata.verify(ds)["ok"]


def test_files_of_another_field_are_reported(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS[:2])
    _depth(dep, KEYS[2:4], field="normals")
    rep = mmdata.add_modality(ds, "depth", dep)
    assert rep["added"] == 2 and rep["unmatched"] == 2
    assert rep["unmatched_files"] == ["000002.normals.npy", "000003.normals.npy"]


def test_no_file_matches_a_key_names_both(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", [f"img_{i}" for i in range(10)])
    before = _tree_bytes(ds)
    with pytest.raises(SourceError, match=r"10 files in .*depth, none matches a sample key "
                                          r"\(keys look like '000000'.*files look like 'img_0"):
        mmdata.add_modality(ds, "depth", dep)
    assert _tree_bytes(ds) == before


def test_no_file_for_the_field_says_which_fields_are_there(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS)
    with pytest.raises(SourceError, match=r"10 files in .*depth, none for field 'depth2'.*depth: 10"
                                          r".*<key>\.depth2\.npy"):
        mmdata.add_modality(ds, "depth2", dep)


def test_files_named_by_source_key(tmp_path: Path) -> None:
    raw = make_class_folders(tmp_path / "raw", per_class=2)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", progress=False)
    ds = tmp_path / "ds"
    # the class folders mirrored: files named by source_key ("cat/000")
    dep = tmp_path / "depth"
    for c in ("cat", "dog", "bird"):
        _depth(dep / c, ["000", "001"])
    dep.mkdir(exist_ok=True)
    rep = mmdata.add_modality(ds, "depth", dep)
    assert rep["added"] == 6 and rep["unmatched"] == 0
    assert all("depth" in s for s in mmdata.open_dataset(ds))
    assert mmdata.verify(ds)["ok"]
    # flat stems are ambiguous between classes: the error says what the source keys look like
    flat = _depth(tmp_path / "flat", ["000", "001"])
    with pytest.raises(SourceError, match=r"none matches a sample key.*source keys look like 'bird/000'"):
        mmdata.add_modality(ds, "depth", flat, replace=True)


def test_cli_reports_skipped_and_unmatched(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "depth", KEYS + ["typo_key"])
    (dep / "000001.depth.npy").write_bytes(b"garbage")
    runner = CliRunner()
    res = runner.invoke(app, ["add-modality", str(ds), "depth", str(dep), "--on-error", "raise"])
    assert res.exit_code != 0 and isinstance(res.exception, SourceError)
    assert mmdata.verify(ds)["ok"]
    res = runner.invoke(app, ["add-modality", str(ds), "depth", str(dep)])
    assert res.exit_code == 0, res.output
    assert "added 'depth' to 9 samples" in res.output
    assert "1 bad file left out" in res.output and "000001.depth.npy" in res.output
    assert "not used: 1 file (its name matches no sample's key or source_key: 1;" in " ".join(res.output.split())
    assert "typo_key.depth.npy" in res.output
    res = runner.invoke(app, ["add-modality", str(ds), "depth", str(dep), "--replace", "--json"])
    rep = json.loads(res.stdout)
    assert rep["unmatched"] == 1 and rep["skipped"] == 1 and rep["added"] == 9


def test_failure_while_writing_the_index_puts_everything_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards import index as idx

    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _depth(tmp_path / "depth", KEYS[:5]))
    before = _tree_bytes(ds)

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idx, "write_card", disk_full)  # index and shards table already replaced by then
    with pytest.raises(OSError, match="No space"):
        mmdata.add_modality(ds, "depth", _depth(tmp_path / "depth2", KEYS), replace=True)
    assert _tree_bytes(ds) == before
    assert not any(p.name.startswith(".mmdata-add") for p in ds.iterdir())
    monkeypatch.undo()
    assert mmdata.verify(ds)["ok"]


def test_on_missing_raise_names_the_sample(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    before = _tree_bytes(ds)
    with pytest.raises(SourceError, match=r"no 'depth' file for sample '000005'"):
        mmdata.add_modality(ds, "depth", _depth(tmp_path / "depth", KEYS[:5]), on_missing="raise")
    assert _tree_bytes(ds) == before
