"""QA38 splitfrom D#3: a shard job interrupted under an mmdata before 2026-12-07 (journal rows without
member_digest) and resumed by this one kept those rows; a job of another plan was started over without a word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards import journal as jn
from mmdata.shards import writer
from mmdata.testing.media import make_sample_folder


def _interrupted(raw: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the job with one writer until its second shard, then stop it as Ctrl-C would."""
    real = writer._write_task
    calls = []

    def stop_at_the_second(task: dict[str, Any]) -> dict[str, Any]:
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(writer, "_write_task", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        mmdata.shard(raw, out, maxcount=2, workers=1, progress=False)
    monkeypatch.setattr(writer, "_write_task", real)


def _as_an_older_mmdata_wrote_it(out: Path) -> None:
    """The journal's finished shards as a 2026-12-06 mmdata recorded them: index rows without member_digest."""
    records, _ = jn._records((out / jn.NAME).read_bytes())
    assert len(records) == 2, len(records)  # the plan and one finished shard
    marker = writer._read_marker(records[1])
    assert marker is not None
    marker["rows"] = marker["rows"].drop_columns([idx.MEMBER_DIGEST])
    (out / jn.NAME).write_bytes(jn.record(records[0]) + jn.record(writer._marker_bytes(marker)))


def test_resuming_an_older_mmdatas_job_writes_its_finished_shards_again_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    _interrupted(raw, out, monkeypatch)
    _as_an_older_mmdata_wrote_it(out)
    rep = mmdata.shard(raw, out, maxcount=2, workers=1, progress=False)
    digests = pq.read_table(out / idx.INDEX)[idx.MEMBER_DIGEST]
    assert digests.null_count == 0 and pc.list_flatten(digests).null_count == 0
    assert rep["resumed_shards"] == 0, rep
    said = [w for w in rep["warnings"] if w.startswith("resume:")]
    assert len(said) == 1 and "1 of 4 shards" in said[0] and "written again" in said[0], rep["warnings"]
    fresh = mmdata.shard(raw, tmp_path / "fresh", maxcount=2, workers=1, progress=False)
    assert rep["fingerprint"] == fresh["fingerprint"]
    card = idx.load_card(out)
    assert not [w for w in card["warnings"] if "resume:" in w], card["warnings"]  # the job's note, not the data's


def test_a_resume_of_this_mmdatas_job_keeps_its_shards_without_a_note(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    _interrupted(raw, out, monkeypatch)
    rep = mmdata.shard(raw, out, maxcount=2, workers=1, progress=False)
    assert rep["resumed_shards"] == 1 and not [w for w in rep["warnings"] if w.startswith("resume:")], rep


def test_an_unfinished_job_of_another_plan_is_said_to_be_started_over(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    _interrupted(raw, out, monkeypatch)
    rep = mmdata.shard(raw, out, maxcount=3, workers=1, progress=False)  # other options: another plan
    said = [w for w in rep["warnings"] if w.startswith("resume:")]
    assert len(said) == 1 and "another plan" in said[0] and "1 finished shard" in said[0], rep["warnings"]
    assert rep["resumed_shards"] == 0
