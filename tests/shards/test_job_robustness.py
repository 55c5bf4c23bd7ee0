"""Writing jobs under abuse (a QA pass, 2026-12-02): workers orphaned by a SIGKILLed job, a read-only OUT,
a full disk, Ctrl-C during `mmdata augment`, an unfinished augment job, a symlinked OUT."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.journal import LOCK
from mmdata.shards.journal import NAME as JOURNAL
from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill, without_dac_override

REPO = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _wait_for_a_journaled_shard(out: Path) -> None:
    """Return once the resume journal holds a finished shard (the plan's record is 12 bytes of head and 64
    hex digits; a longer journal holds a shard)."""
    journal = out / JOURNAL
    deadline = time.time() + 60
    while time.time() < deadline and not (journal.is_file() and journal.stat().st_size > 76):
        time.sleep(0.02)
    assert journal.stat().st_size > 76, "no shard was journaled in 60 s"


def _kill_after_a_shard(args: list[str], out: Path, env: dict[str, str]) -> None:
    """Run the CLI with ``args`` and SIGKILL it once the resume journal holds a finished shard."""
    proc = subprocess.Popen([*CLI, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_a_journaled_shard(out)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_writer_processes_die_with_a_killed_job_and_the_rerun_resumes(tmp_path: Path) -> None:
    """Pure-Python writers are forked processes that inherit the job's lock on OUT: after a SIGKILL they
    lived on (parent pid 1) holding it, and the rerun was refused as 'being written by another job'."""
    raw = make_sample_folder(tmp_path / "raw", n=16)
    out = tmp_path / "ds"
    env = {**os.environ, "MMDATA_PURE_PYTHON": "1", "MMDATA_TEST_SHARD_DELAY": "0.4"}
    _kill_after_a_shard(["shard", str(raw), str(out), "--maxcount", "2", "-j", "2"], out, env)
    time.sleep(1.5)  # the parent-death signal is immediate; the watchdog thread looks every 0.5 s
    res = subprocess.run([*CLI, "shard", str(raw), str(out), "--maxcount", "2", "-j", "2"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


def test_a_read_only_out_is_one_line_before_the_source_is_read(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        for cmd in (["shard", str(raw), str(out)], ["shard", str(raw), str(out / "inner")]):
            res = subprocess.run(without_dac_override([*CLI, *cmd]), cwd=REPO, capture_output=True, text=True, timeout=120)
            assert res.returncode == 2 and "not writable" in res.stderr and "Traceback" not in res.stderr, res.stderr
        from mmdata.errors import SourceError
        from mmdata.shards.journal import JobLock

        if os.geteuid() != 0:  # the lock's own message (the up-front check passes a folder made read-only since)
            with pytest.raises(SourceError, match=r"cannot create its lock file .*Permission denied"):
                JobLock(out, "mmdata shard").__enter__()
    finally:
        out.chmod(0o755)


def test_a_full_disk_is_one_line_and_the_rerun_resumes(tmp_path: Path) -> None:
    """RLIMIT_FSIZE as a stand-in for a full disk: `OSError: [Errno 27] File too large` came out as a
    traceback through tarwrite; ENOSPC the same."""
    raw = make_sample_folder(tmp_path / "raw", n=40)
    out = tmp_path / "ds"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    res = subprocess.run([*CLI, "shard", str(raw), str(out), "--maxcount", "2"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, preexec_fn=small_files)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "File too large" in res.stderr and "rerun the same command to resume" in res.stderr
    assert mmdata.shard(raw, out, maxcount=2, progress=False)["samples"] == 40


def _augment_until_a_shard(tmp_path: Path, out: Path, **popen: Any) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start `mmdata augment` of a small dataset into ``out`` (slowed per shard) and return once its
    journal holds a finished shard. Not once the first tar is there: the job then records the shard, and
    pyarrow imports pandas for it on first use — a SIGINT landing in that import was swallowed by
    pyarrow's pandas shim (the job finished, exit 0) or broke the import (exit 1); a user's Ctrl-C can
    meet the same third-party import, the test must not depend on it."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), tmp_path / "ds", maxcount=2, progress=False)
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "1.5"}  # 6 shards x 1.5 s: seconds for the signal
    proc = subprocess.Popen([*CLI, "augment", str(tmp_path / "ds"), str(out), "--recipe",
                             str(REPO / "recipes" / "image_basic.yaml"), "--maxcount", "2"], env=env, cwd=REPO, **popen)
    _wait_for_a_journaled_shard(out)
    return proc


@pytest.mark.sigint
def test_ctrl_c_during_augment_says_how_to_resume_and_the_folder_names_augment(tmp_path: Path) -> None:
    out = tmp_path / "aug"
    proc = _augment_until_a_shard(tmp_path, out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=sigint_as_from_a_terminal)
    sent = sorted(p.name for p in out.iterdir())  # what the job had written when the signal went out
    proc.send_signal(signal.SIGINT)
    _, err = communicate_or_kill(proc, 60)
    assert proc.returncode == 130, f"files when SIGINT was sent: {sent}\nstderr: {err[-3000:]}"
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and lines[0].startswith("mmdata augment into") and "resume" in lines[0], err


def test_an_unfinished_augment_job_is_named_as_one(tmp_path: Path) -> None:
    out = tmp_path / "aug"
    proc = _augment_until_a_shard(tmp_path, out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "mmdata augment" in (out / LOCK).read_text()
    with pytest.raises(mmdata.ShardError, match=r"an `mmdata augment` job into this folder did not finish.*rerun the same "
                                                r"`mmdata augment` command"):
        idx.load_card(out)
    (out / LOCK).unlink()  # a folder without the note (copied without hidden files): both commands are named
    with pytest.raises(mmdata.ShardError, match=r"`mmdata shard` \(or `mmdata augment`\) job"):
        idx.load_card(out)


def test_a_symlinked_out_is_named_by_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "ds").symlink_to(tmp_path / "real")
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=3), tmp_path / "ds", progress=False)
    assert idx.load_card(tmp_path / "ds")["name"] == "ds"


def test_a_rerun_that_resumes_says_how_many_shards_it_kept(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12)
    out = tmp_path / "ds"
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "0.4"}
    _kill_after_a_shard(["shard", str(raw), str(out), "--maxcount", "2"], out, env)
    res = subprocess.run([*CLI, "shard", str(raw), str(out), "--maxcount", "2"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "resumed: kept the " in res.stdout and "shards an earlier run" in res.stdout, res.stdout
    assert mmdata.shard(raw, tmp_path / "fresh", maxcount=2, progress=False)["resumed_shards"] == 0


@pytest.mark.parametrize("umask,mode", [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_every_published_file_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """The tars followed the umask (os.open with 0o644), while the card, index and other JSON / Parquet
    files were chmodded to 0o644 whatever it was: a private dataset (umask 077) was world-readable.
    QA 2026-12-04: 0o644 less the umask ignored a team's group-write umask 002; files now take 0o666
    less the umask, as ``open()`` gives a new file (D8)."""
    raw = make_sample_folder(tmp_path / "raw", n=6)
    out = tmp_path / "ds"
    r = subprocess.run([*CLI, "shard", str(raw), str(out), "--maxcount", "2"], cwd=REPO, capture_output=True, text=True,
                       preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    kinds = {p.suffix for p in files}
    assert {".tar", ".json", ".parquet"} <= kinds, kinds
    assert {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777) for p in files} == \
        {p.relative_to(out).as_posix(): oct(mode) for p in files}


def test_a_rerun_removes_the_card_and_index_temp_files_of_a_killed_writer(tmp_path: Path) -> None:
    """A shard job killed while writing ``index.parquet`` / ``dataset.json`` left its hidden temp file in
    OUT for good (only ``*.tar.tmp-*`` were cleaned): a rerun removes those whose writer is dead, never a
    live writer's nor a file mmdata did not name."""
    from mmdata.io import make_temp

    raw = make_sample_folder(tmp_path / "raw", n=4)
    out = tmp_path / "out"
    out.mkdir()
    # a real writer process that made its temp file and died (the name records its pid)
    code = "import sys; from mmdata.io import make_temp; print(make_temp(sys.argv[1])[1])"
    dead = [subprocess.run([sys.executable, "-c", code, str(out / name)], capture_output=True, text=True,
                           check=True).stdout.strip() for name in ("index.parquet", "dataset.json")]
    fd, alive = make_temp(out / "shards.parquet")  # this process: alive
    os.close(fd)
    mine = out / ".index.parquet.notes.tmp"
    mine.write_text("a user's file")
    mmdata.shard(raw, out, progress=False)
    assert not any(Path(p).exists() for p in dead)
    assert Path(alive).exists() and mine.exists()


def test_a_job_resumed_with_the_source_spelt_another_way_keeps_its_shards(tmp_path: Path) -> None:
    """The plan held the source paths as given: a job started as `shard ../raw` and rerun as `shard
    /abs/raw` (or `raw/`) was another job and wrote every shard again."""
    raw = make_sample_folder(tmp_path / "raw", n=12)
    out = tmp_path / "ds"
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "0.4"}
    _kill_after_a_shard(["shard", os.path.relpath(raw, REPO), str(out), "--maxcount", "2"], out, env)
    res = subprocess.run([*CLI, "shard", f"{raw}/", str(out), "--maxcount", "2"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "resumed: kept the " in res.stdout, res.stdout + res.stderr
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")
