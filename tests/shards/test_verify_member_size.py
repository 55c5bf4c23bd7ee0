"""verify names a member larger than the readers read (QA: `mmdata augment` wrote a 1.3 GB float WAV,
verify and --deep passed, and the reader refused the sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.shards import tario
from mmdata.shards.verify import MAX_MEMBER_PROBLEMS, oversized_members
from mmdata.testing import make_sample_folder


def test_a_member_over_the_readers_limit_fails_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False), tmp_path / "ds", progress=False)
    assert mmdata.verify(tmp_path / "ds")["ok"]
    monkeypatch.setattr(tario, "DEFAULT_MAX_MEMBER_BYTES", 500)  # the FLAC members (~1 kB) are over it, the rest not
    for deep in (False, True):
        rep = mmdata.verify(tmp_path / "ds", deep=deep)
        assert not rep["ok"]
        assert [p["problem"].split(" of key")[0] for p in rep["problems"]] == [f"member '00000{i}.flac'" for i in range(4)]
        p = rep["problems"][0]
        assert p["shard"] == "train-000000.tar" and "key '000000'" in p["problem"] and "reader refuses" in p["problem"]
        assert p["expected"] == "at most 500 bytes (the readers' max_member_bytes)" and p["found"].endswith(" bytes")


def test_many_oversized_members_are_counted() -> None:
    n = MAX_MEMBER_PROBLEMS + 5
    rows = {"key": [f"k{i}" for i in range(n)], "shard": ["s.tar"] * n, "members": [[f"k{i}.wav"] for i in range(n)],
            "sizes": [[10] for _ in range(n)]}
    out = oversized_members(rows, limit=9)
    assert len(out) == MAX_MEMBER_PROBLEMS + 1 and out[-1]["problem"].startswith("5 more members")
    assert oversized_members(rows, limit=10) == [] and oversized_members("unreadable") == []
