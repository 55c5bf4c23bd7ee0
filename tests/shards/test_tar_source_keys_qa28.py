"""QA28 security #10: keys read from WebDataset tar sources get the long-key warning folders and manifests get, and
a PAX path longer than any file path is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.testing.hostile import end_of_archive, member, pax_member, pax_record


def _tar(path: Path, long_name: bytes) -> Path:
    path.write_bytes(pax_member(pax_record(b"path", long_name + b".txt"), b"d.txt", b"hi")
                     + member(b"a.txt", b"hi") + end_of_archive())
    return path


def test_a_long_key_from_a_tar_source_is_warned_of(tmp_path: Path) -> None:
    src = _tar(tmp_path / "long300.tar", b"x" * 300)
    rep = mmdata.shard(src, tmp_path / "out", progress=False)
    assert any("over 200 characters" in w for w in rep["warnings"]), rep["warnings"]


def test_a_key_longer_than_any_path_is_left_out(tmp_path: Path) -> None:
    src = _tar(tmp_path / "long.tar", b"x" * 100_000)
    rep = mmdata.shard(src, tmp_path / "out", progress=False)
    (entry,) = [e for e in rep["skipped"] if "longer than any file path" in e["reason"]]
    assert len(entry["sample"]) < 100 and entry["source"].endswith("long.tar")
    ds = mmdata.open_dataset(tmp_path / "out", split="train")
    assert [s.key for s in ds] == ["a"]
    with pytest.raises(SourceError, match="longer than any file path"):
        mmdata.shard(src, tmp_path / "out2", progress=False, on_error="raise")
