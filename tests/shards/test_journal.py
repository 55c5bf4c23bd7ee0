"""The job journal of `mmdata shard`: plan identity, torn tails, and its use by a resumed job."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.journal import NAME, Journal
from mmdata.testing import make_sample_folder


def test_reopen_same_plan_keeps_records_other_plan_starts_over(tmp_path: Path) -> None:
    j = Journal(tmp_path, "plan-a")
    assert not j.existed and j.done == []
    j.append(b"one")
    j.append(b"two" * 1000)
    j.close()
    again = Journal(tmp_path, "plan-a")
    assert again.existed and again.done == [b"one", b"two" * 1000]
    again.close()
    other = Journal(tmp_path, "plan-b")
    assert other.existed and other.done == []
    other.close()
    assert Journal(tmp_path, "plan-a").done == []  # plan-b replaced it


@pytest.mark.parametrize("cut", [1, 7, 12, 20])
def test_torn_tail_is_cut_off_and_appends_go_on(tmp_path: Path, cut: int) -> None:
    j = Journal(tmp_path, "plan")
    j.append(b"whole")
    j.append(b"torn record payload")
    j.close()
    path = tmp_path / NAME
    data = path.read_bytes()
    path.write_bytes(data[:-cut])  # killed in the middle of the last append
    j = Journal(tmp_path, "plan")
    assert j.done == [b"whole"]
    j.append(b"after")
    j.close()
    assert Journal(tmp_path, "plan").done == [b"whole", b"after"]


def test_corrupt_record_stops_the_replay(tmp_path: Path) -> None:
    j = Journal(tmp_path, "plan")
    j.append(b"first")
    j.append(b"second")
    j.close()
    path = tmp_path / NAME
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the last payload: its crc32 no longer matches
    path.write_bytes(bytes(data))
    assert Journal(tmp_path, "plan").done == [b"first"]


def test_shard_job_resumes_from_the_journal_and_removes_it(tmp_path: Path) -> None:
    """A failed multi-writer job leaves its journal; the re-run keeps what it can, ends byte-identical
    to a clean run, and deletes the journal."""
    raw = make_sample_folder(tmp_path / "raw", n=10, missing=False)
    out = tmp_path / "ds"
    good = (raw / "000007.flac").read_bytes()
    (raw / "000007.flac").write_bytes(b"not flac")
    with pytest.raises(SourceError, match="000007"):  # shard 3 fails; others finish or not
        mmdata.shard(raw, out, maxcount=2, on_error="raise", workers=2, progress=False)
    assert (out / NAME).is_file() and not (out / "index.parquet").exists()
    (raw / "000007.flac").write_bytes(good)
    rep = mmdata.shard(raw, out, maxcount=2, on_error="raise", workers=2, progress=False)
    assert rep["samples"] == 10 and not (out / NAME).exists()
    clean = tmp_path / "clean" / "ds"
    mmdata.shard(raw, clean, maxcount=2, on_error="raise", progress=False)

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(out) == tree(clean)
