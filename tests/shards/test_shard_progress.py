"""The shard progress bar: its one task starts before the files are found, so its clock counts the walk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.progress import Progress

import mmdata
from mmdata.shards import writer
from mmdata.testing import make_sample_folder


def test_the_bar_starts_before_the_walk_and_goes_on_as_the_sharding_bar(tmp_path: Path, capsys: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # QA: the bar's clock started after the folder walk and the plan (2-3 s of an 8 s job at 50k samples)
    raw = make_sample_folder(tmp_path / "raw", n=6)
    events: list[str] = []
    bars: list[Progress] = []
    discover, add_task = writer.discover, Progress.add_task

    def watched_discover(*a: Any, **kw: Any) -> Any:
        events.append("walk")
        return discover(*a, **kw)

    def watched_add_task(self: Progress, description: str, *a: Any, **kw: Any) -> Any:
        events.append(f"task {description}")
        bars.append(self)
        return add_task(self, description, *a, **kw)

    monkeypatch.setattr(writer, "discover", watched_discover)
    monkeypatch.setattr(Progress, "add_task", watched_add_task)
    rep = mmdata.shard(raw, tmp_path / "ds", maxcount=2, progress=True)
    assert rep["samples"] == 6
    assert events == ["task finding files", "walk"], events  # one task, started first
    (task,) = bars[0].tasks
    assert task.description == "sharding samples" and task.total == task.completed == 6 and task.finished
    assert not bars[0].live.is_started
    out, err = capsys.readouterr()
    assert "sharding samples" in err and "sharding samples" not in out


def test_a_walk_that_finds_nothing_stops_the_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bars: list[Progress] = []
    make = writer._make_progress

    def kept(*a: Any, **kw: Any) -> Any:
        bar = make(*a, **kw)
        bars.append(bar)
        return bar

    monkeypatch.setattr(writer, "_make_progress", kept)
    (tmp_path / "empty").mkdir()
    with pytest.raises(mmdata.SourceError, match="no samples found"):
        mmdata.shard(tmp_path / "empty", tmp_path / "ds", progress=True)
    assert bars and not bars[0].live.is_started


def test_the_walk_shows_a_live_file_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk of a large or slow folder said "finding files" for minutes without a sign of life (known
    limit of the scale QA); now the bar's description counts the files listed, folder by folder."""
    from mmdata.shards.sources import discover

    raw = tmp_path / "raw"
    for c in range(3):  # 3 class folders of 4 samples (an image and a caption each)
        make_sample_folder(raw / f"class{c}", n=4, missing=False)
    files = sorted(p for p in raw.rglob("*") if p.is_file())
    counts: list[int] = []
    discover(raw, on_files=counts.append)
    assert counts == sorted(counts) and counts[-1] == len(files) and len(counts) >= 4  # root + 3 folders, growing

    shown: list[str] = []
    update = Progress.update

    def watched_update(self: Progress, task: Any, **kw: Any) -> None:
        if "description" in kw:
            shown.append(kw["description"])
        update(self, task, **kw)

    monkeypatch.setattr(Progress, "update", watched_update)
    mmdata.shard(raw, tmp_path / "ds", progress=True)
    walk = [d for d in shown if d.startswith("finding files: ")]
    assert walk and walk[-1] == f"finding files: {len(files):,}", shown[:8]
    assert shown.index(walk[-1]) < next(i for i, d in enumerate(shown) if d.startswith("planning"))
