"""The cache folders a shard job uses — ``jobs/`` (finished jobs' records), ``locks/`` (a job into a URL),
``staging/`` (a remote job's temp shards) — are private and never reached through a link another user
planted (QA round 22, multi-user: ``locks/`` was made with the umask's mode and followed links)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmdata.shards.output import done_path, staging_dir, sweep_staging
from mmdata.urls import UnsafeCacheError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_jobs_and_staging_folders_are_private(cache: Path, tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        rec = done_path(tmp_path / "ds")
        tmp = staging_dir("s3://bucket/ds")
    finally:
        os.umask(old)
    assert rec.parent == cache / "jobs" and (rec.parent.stat().st_mode & 0o777) == 0o700
    assert (tmp.parent.stat().st_mode & 0o777) == 0o700 and (tmp.parent.parent.stat().st_mode & 0o777) == 0o700


def test_a_link_planted_for_the_jobs_folder_is_refused(cache: Path, tmp_path: Path) -> None:
    cache.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (cache / "jobs").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeCacheError, match="is a symbolic link"):
        done_path(tmp_path / "ds")


def test_a_staging_folder_planted_as_a_link_is_neither_written_nor_swept(cache: Path, tmp_path: Path) -> None:
    import hashlib

    victim = tmp_path / "victim"
    (victim / "999999-notes").mkdir(parents=True)  # a folder of yours whose name looks like a dead job's
    (cache / "staging").mkdir(parents=True)
    digest = hashlib.sha256(b"s3://bucket/ds").hexdigest()[:32]
    (cache / "staging" / digest).symlink_to(victim)
    tmp = staging_dir("s3://bucket/ds")
    assert victim not in tmp.parents  # the temp shards went to a private temp folder instead
    with pytest.raises(UnsafeCacheError, match="staging folder .* is a symbolic link"):
        sweep_staging("s3://bucket/ds")
    assert (victim / "999999-notes").is_dir()
