"""QA26 F17: the job record's content digest of the sources comes from the bytes the shard writer read.

Before: the record of a finished job (its sources' sha256, for a rerun whose stamps moved) was made by
reading every source file again at the end of the job: twice the reads for a dataset larger than the page
cache. Now the writer hashes each file's bytes as it reads them (after the fstat that gave its stamp) and
the record keeps that digest while the stamps have not moved since; only a file the writer did not read
whole (one over --max-file-size, a recording cut into --segment members) is read for it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.shards import tarwrite, writer
from mmdata.shards.output import content_digest, done_path
from mmdata.testing import make_sample_folder

_WATCH: dict[str, Any] = {"root": None, "opens": []}  # an audit hook cannot be removed: it is armed per test


def _hook(event: str, args: tuple[Any, ...]) -> None:
    root = _WATCH["root"]
    if root is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(root):
            _WATCH["opens"].append(path)


sys.addaudithook(_hook)


@pytest.fixture()
def opens(tmp_path: Path) -> Any:
    raw = make_sample_folder(tmp_path / "raw", n=30)

    def watch() -> list[str]:
        _WATCH["root"], _WATCH["opens"] = str(raw.resolve()) + os.sep, []
        return _WATCH["opens"]

    yield raw, watch
    _WATCH["root"] = None


def _sources(raw: Path) -> list[str]:
    return sorted(str(p.resolve()) for p in raw.rglob("*") if p.is_file())


def _record_matches_a_fresh_read(raw: Path, out: Path, maxcount: int = 10) -> None:
    """Each shard's recorded content digest is its sources' sha256 as read from disk now (the way the record
    was made before): the digest of the bytes the writer read is the same value."""
    _WATCH["root"] = None
    record = {s["name"]: s["content"] for s in json.loads(done_path(out).read_text())["shards"]}
    plan_paths = _plan_paths(raw, out, maxcount)
    assert all(isinstance(v, str) for v in record.values())
    assert {name: content_digest(paths) for name, paths in plan_paths.items()} == record


def _plan_paths(raw: Path, out: Path, maxcount: int) -> dict[str, list[Any]]:
    """Each planned shard's source paths as the up-to-date check sees them (seen in a rerun)."""
    got: dict[str, list[Any]] = {}
    orig = writer._up_to_date

    def spy(o: Any, plan: Any, payloads: Any, *a: Any, **k: Any) -> Any:
        for p in plan:
            got[p["name"]] = writer._source_paths(payloads[p["name"]])
        return orig(o, plan, payloads, *a, **k)

    writer._up_to_date = spy
    try:
        assert mmdata.shard(raw, out, maxcount=maxcount, workers=1, progress=False)["up_to_date"] is True
    finally:
        writer._up_to_date = orig
    assert got
    return got


def test_the_python_path_opens_each_source_once(opens: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    raw, watch = opens
    # the pure-Python reader (as with MMDATA_PURE_PYTHON=1): every read is an `open` audit event
    monkeypatch.setattr(tarwrite, "_pack", None)
    monkeypatch.setattr(writer, "_pack", None)
    seen = watch()
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, workers=1, progress=False)
    counts: dict[str, int] = {}
    for p in seen:
        counts[p] = counts.get(p, 0) + 1
    assert sorted(counts) == _sources(raw)  # every source was read ...
    assert {p: n for p, n in counts.items() if n != 1} == {}  # ... once
    _record_matches_a_fresh_read(raw, out)


@pytest.mark.skipif(tarwrite._pack is None, reason="C inner loops off")
def test_the_c_path_opens_no_source_in_python(opens: Any, tmp_path: Path) -> None:
    raw, watch = opens
    seen = watch()  # the C reader opens files without audit events: any event is a second read
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, workers=1, progress=False)
    assert seen == []
    _record_matches_a_fresh_read(raw, out)


def test_a_file_not_read_whole_is_hashed_for_the_record(tmp_path: Path) -> None:
    """A source over --max-file-size is skipped, not read: the record still has the shard's content (that
    file read for it alone), so a rerun with moved stamps is up to date by content."""
    raw = make_sample_folder(tmp_path / "raw", n=6)
    big = sorted(raw.rglob("*.txt"))[0]
    big.write_bytes(b"x" * 5000)
    out = tmp_path / "ds"
    rep = mmdata.shard(raw, out, maxcount=10, workers=1, max_file_size=4000, progress=False)
    assert rep["skipped"] or rep.get("skipped_counts")
    record = json.loads(done_path(out).read_text())
    assert all(isinstance(s["content"], str) for s in record["shards"])
    for p in raw.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 7_000_000_000))
    again = mmdata.shard(raw, out, maxcount=10, workers=1, max_file_size=4000, progress=False)
    assert again["up_to_date"] is True


def test_a_source_changed_after_it_was_read_leaves_no_content_in_the_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest of the bytes read is kept only while the file's stamps are those seen before the read: a
    file changed after the writer read it (later in the job) does not pair its new stamps with old content."""
    raw = make_sample_folder(tmp_path / "raw", n=8)
    txt = sorted(raw.rglob("*.txt"))[0]
    orig = writer._done_record

    def edit_then_record(*a: Any, **k: Any) -> Any:
        txt.write_text("changed after it was read")
        return orig(*a, **k)

    monkeypatch.setattr(writer, "_done_record", edit_then_record)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=4, workers=1, progress=False)
    record = json.loads(done_path(out).read_text())
    contents = [s["content"] for s in record["shards"]]
    assert contents.count(None) == 1 and all(isinstance(c, str) for c in contents if c is not None)
    monkeypatch.setattr(writer, "_done_record", orig)
    assert mmdata.shard(raw, out, maxcount=4, workers=1, progress=False)["up_to_date"] is False
