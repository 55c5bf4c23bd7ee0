"""Memory a job or a read holds as it scales: counted (tables held, pages mapped), never timed."""
from __future__ import annotations

import mmap
import random
import wave
import weakref
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards import tario, writer
from mmdata.testing import make_sample_folder


class _Interrupted(Exception):
    pass


def _count_index_tables(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Watch every per-shard index table a job makes (its own or read back from the journal); the
    count still alive when the index is written goes in ``seen["held"]``."""
    made: list[weakref.ref[Any]] = []
    seen = {"held": -1, "made": 0}
    index_table, read_marker, finalize = idx.index_table, writer._read_marker, writer._finalize

    def watched_table(*a: Any, **kw: Any) -> Any:
        t = index_table(*a, **kw)
        made.append(weakref.ref(t))
        return t

    def watched_marker(*a: Any, **kw: Any) -> Any:
        m = read_marker(*a, **kw)
        if m is not None and "rows" in m:
            made.append(weakref.ref(m["rows"]))
        return m

    def counted(*a: Any, **kw: Any) -> Any:
        seen["held"] = sum(r() is not None for r in made)
        seen["made"] = len(made)
        return finalize(*a, **kw)

    monkeypatch.setattr(idx, "index_table", watched_table)
    monkeypatch.setattr(writer, "_read_marker", watched_marker)
    monkeypatch.setattr(writer, "_finalize", counted)
    return seen


def test_a_job_of_many_small_shards_does_not_hold_a_table_per_shard(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # QA: --maxcount 1 kept each shard's index rows as a table of their own (~38 KB each) to the end:
    # 881 MB peak at 20k shards
    raw = make_sample_folder(tmp_path / "raw", n=60)
    ref = mmdata.shard(raw, tmp_path / "ref", maxcount=1, progress=False, workers=2)
    monkeypatch.setattr(writer, "_INDEX_BLOCK", 8, raising=False)
    seen = _count_index_tables(monkeypatch)
    rep = mmdata.shard(raw, tmp_path / "ds", maxcount=1, progress=False, workers=2)
    assert rep["shards"] == ref["shards"] == 60 and seen["made"] >= 60
    assert seen["held"] < 8, seen  # one block's worth at most, not one per shard
    for f in (idx.INDEX, idx.SHARDS):
        assert (tmp_path / "ds" / f).read_bytes() == (tmp_path / "ref" / f).read_bytes()


def test_a_resumed_job_reads_back_its_finished_shards_rows_a_block_at_a_time(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=40)
    mmdata.shard(raw, tmp_path / "ref", maxcount=1, progress=False)
    write_task, calls = writer._write_task, []

    def dies_after_30(task: dict[str, Any]) -> dict[str, Any]:
        calls.append(task["name"])
        if len(calls) > 30:
            raise _Interrupted
        return write_task(task)

    monkeypatch.setattr(writer, "_write_task", dies_after_30)
    with pytest.raises(_Interrupted):
        mmdata.shard(raw, tmp_path / "ds", maxcount=1, progress=False)
    monkeypatch.setattr(writer, "_write_task", write_task)
    monkeypatch.setattr(writer, "_INDEX_BLOCK", 8, raising=False)
    seen = _count_index_tables(monkeypatch)
    rep = mmdata.shard(raw, tmp_path / "ds", maxcount=1, progress=False)
    assert rep["resumed_shards"] == 30 and seen["made"] >= 40
    assert seen["held"] < 8, seen
    for f in (idx.INDEX, idx.SHARDS):
        assert (tmp_path / "ds" / f).read_bytes() == (tmp_path / "ref" / f).read_bytes()


def test_index_rows_keep_plan_order_whatever_order_shards_finish_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_INDEX_BLOCK", 3, raising=False)
    names = [f"s{i}" for i in range(10)]
    tables = {n: idx.index_table({"key": [f"{n}-{j}" for j in range(i % 3)], "shard": [n] * (i % 3),
                                  **({"aug_params": ["{}"] * (i % 3)} if i % 4 == 0 else {})})
              for i, n in enumerate(names)}
    rows = writer._IndexRows(names)
    for n in [*names[5:], *names[:5]]:  # the last ones first: they wait for the first
        rows.add(n, tables[n])
    assert rows.held() <= 4
    want = idx.concat_index([tables[n] for n in names])
    assert rows.table().equals(want) and idx.index_bytes(rows.table()) == idx.index_bytes(want)


def test_only_small_shards_are_mapped_with_populate() -> None:
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate:
        pytest.skip("no MAP_POPULATE on this platform")
    assert tario.map_flags(10_240) == tario.map_flags(tario.POPULATE_MAX) == mmap.MAP_SHARED | populate
    assert tario.map_flags(tario.POPULATE_MAX + 1) == tario.map_flags(1 << 40) == mmap.MAP_SHARED


def _mapped_mib(name: str) -> int:
    """Resident MiB of this process's mappings of files called ``name`` (Linux' /proc/self/smaps)."""
    kib, mine = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if not line[0].isupper():  # a mapping's first line: address range, ..., path
                mine = line.rstrip().endswith("/" + name)
            elif mine and line.startswith("Rss:"):
                kib += int(line.split()[1])
    return kib >> 10


@pytest.mark.skipif(not Path("/proc/self/smaps").exists() or not hasattr(mmap, "MADV_DONTNEED"),
                    reason="counts mapped pages in Linux' /proc/self/smaps")
def test_a_big_shard_is_not_mapped_whole_while_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # QA: a 1.5 GB shard of 160 WAVs was mapped whole with MAP_POPULATE: 1.58 GB RssFile until its end.
    # Here the same at a 24 MiB scale: 12 WAVs of 2 MiB, "big" from 4 MiB on, pages dropped every 2 MiB
    (tmp_path / "raw" / "a").mkdir(parents=True)
    rng = random.Random(0)
    for i in range(12):
        with wave.open(str(tmp_path / "raw" / "a" / f"{i:02d}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16_000)
            w.writeframes(rng.randbytes(2 << 20))
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    (shard,) = sorted((tmp_path / "ds").glob("*.tar"))
    assert shard.stat().st_size > 24 << 20
    monkeypatch.setattr(tario, "POPULATE_MAX", 4 << 20, raising=False)
    monkeypatch.setattr(tario, "_DROP_STEP", 2 << 20, raising=False)
    held, n = 0, 0
    for sample in mmdata.open_dataset(tmp_path / "ds", split="train", decode=False):
        assert len(sample["wav"]) > 2 << 20
        held, n = max(held, _mapped_mib(shard.name)), n + 1
    assert n == 12
    # a member, the step and a large folio's rounding at most; not the shard's 24 MiB
    assert held <= 10, f"{held} MiB of the shard mapped at once"
