"""A hostile host, not bad data (a QA pass in containers): no home directory (an arbitrary UID), an
unwritable cache, a read-only published folder, too few file descriptors, a full disk at the lock, a file
name near the 255-byte limit, and output / input paths the system cannot look up. Each is one ``error:``
line with exit 2 (or, for the cache's optional uses, one warning) — never a traceback, never files
counted as damaged. Simulated without privileges: environment variables, ``resource.setrlimit`` in a
subprocess, a path under a file, a symbolic link loop."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.errors import MMDataError, SourceError
from mmdata.shards.journal import LOCK
from mmdata.testing import make_sample_folder
from tests.procs_helpers import without_dac_override

REPO = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(res: subprocess.CompletedProcess) -> str:  # type: ignore[type-arg]
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def _cli(*args: Any, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([*CLI, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env=env, **kw)


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    return make_sample_folder(tmp_path / "raw", n=16)


# -- 1. no home directory ------------------------------------------------------------------------------------

@pytest.fixture()
def homeless(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MMDATA_CACHE, no XDG_CACHE_HOME, no HOME, and a uid the passwd database does not know."""
    for var in ("MMDATA_CACHE", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(var, raising=False)

    def no_home(*_: Any) -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", classmethod(no_home))
    monkeypatch.setattr(Path, "expanduser", lambda self: no_home() if str(self).startswith("~") else self)


def test_no_home_the_cache_is_an_error_naming_mmdata_cache(homeless: None) -> None:
    from mmdata.urls import NoCacheError, cache_dir

    with pytest.raises(NoCacheError, match="set MMDATA_CACHE to a writable folder"):
        cache_dir()


def test_an_empty_home_is_no_home_not_the_root_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """``HOME= mmdata ...``: Python takes an empty HOME as ``/`` (the cache in ``/.cache``, writable to root);
    mmdata asks the passwd database instead, as for an unset HOME."""
    import pwd

    from mmdata.urls import cache_dir

    for var in ("MMDATA_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "")
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert cache_dir() == home / ".cache" / "mmdata"
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xc")  # QA pass 2: '~' in the variables was '/' too
    assert cache_dir() == home / "xc" / "mmdata"
    monkeypatch.setenv("MMDATA_CACHE", "~/mc")
    assert cache_dir() == home / "mc"


def test_no_home_a_job_runs_without_its_record_and_warns_once(homeless: None, raw: Path, tmp_path: Path) -> None:
    """QA: `RuntimeError: Could not determine home directory.` from forget_done, exit 1, an empty OUT."""
    out = tmp_path / "ds"
    for _ in range(2):  # no record: the rerun writes it again (and says why, once)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            rep = mmdata.shard(raw, out, maxcount=8, progress=False)
        assert rep["samples"] == 16 and rep["up_to_date"] is False
        said = [str(w.message) for w in seen if "cache" in str(w.message)]
        assert len(said) == 1 and "MMDATA_CACHE" in said[0], said


def test_no_home_a_job_writing_to_a_url_needs_the_cache_and_says_so(homeless: None) -> None:
    pytest.importorskip("fsspec")
    from mmdata.shards.output import output
    from mmdata.urls import NoCacheError

    with pytest.raises(NoCacheError, match="MMDATA_CACHE"):
        output("memory://hl-no-home/ds").lock("mmdata shard")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_no_home_with_an_arbitrary_uid_the_cli_shards(raw: Path, tmp_path: Path) -> None:
    """The QA's own reproduction: ``env -u HOME unshare --user --map-user=12345`` (OpenShift-style)."""
    probe = subprocess.run(["unshare", "--user", "--map-user=12345", "--map-group=12345", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unprivileged user namespaces unavailable: {probe.stderr.decode()[:200]}")
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "MMDATA_CACHE", "XDG_CACHE_HOME")}
    out = tmp_path / "ds"
    res = subprocess.run(["unshare", "--user", "--map-user=12345", "--map-group=12345", *CLI, "shard", str(raw),
                          str(out), "--maxcount", "8"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    said = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(said) == 1 and "set MMDATA_CACHE" in said[0] and (out / "dataset.json").is_file(), res.stderr


# -- 2. a cache that cannot be written -----------------------------------------------------------------------

def test_an_unwritable_cache_is_a_warning_not_silence(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a full or read-only MMDATA_CACHE turned "up to date" off without a word (write_done swallowed it)."""
    (tmp_path / "a-file").write_text("not a folder")
    cache = tmp_path / "a-file" / "cache"  # under a file: ENOTDIR, as a read-only or full cache fails
    monkeypatch.setenv("MMDATA_CACHE", str(cache))
    with pytest.warns(UserWarning, match="cannot write the record of this job") as seen:
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    said = [str(w.message) for w in seen if "record" in str(w.message)]
    assert len(said) == 1 and str(cache) in said[0] and os.strerror(errno.ENOTDIR) in said[0], said
    assert "rerun" in said[0]


def test_the_cache_warning_is_in_the_json_result_too(raw: Path, tmp_path: Path) -> None:
    """QA: the cache's warnings reached stderr but not ``--json``'s ``warnings`` (a machine reading the
    result could not tell that the next rerun rewrites everything)."""
    (tmp_path / "a-file").write_text("not a folder")
    env = {**os.environ, "MMDATA_CACHE": str(tmp_path / "a-file" / "cache")}
    res = _cli("shard", raw, tmp_path / "ds", "--json", env=env)
    assert res.returncode == 0, res.stderr
    said = [w for w in json.loads(res.stdout)["warnings"] if "cannot write the record of this job" in w]
    assert len(said) == 1 and "rerun" in said[0], res.stdout
    assert res.stderr.count("cannot write the record of this job") == 1, res.stderr


def test_only_cache_warnings_join_a_json_result_of_strings(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """QA pass 2: every UserWarning shown in the CLI's process joined --json, so an ablation's per-run
    warnings reached its top-level list with -j 1 and not with -j 2, and inspect's list of {kind, message}
    dicts got a bare string; now only the job's cache warnings, and only into a list of strings."""
    from mmdata.cli import common, main as cli_main
    from mmdata.errors import CacheWarning

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    common.SHOWN_WARNINGS.clear()
    monkeypatch.setattr(common, "err_console", common.DiagnosticConsole(stderr=True, soft_wrap=True))
    cli_main._warnings_as_lines()
    warnings.warn("a run's own warning", UserWarning, stacklevel=1)
    warnings.warn("the cache is full", CacheWarning, stacklevel=1)
    common.print_json({"warnings": ["given"]})
    common.print_json({"warnings": [{"kind": "k", "message": "m"}]})
    first, second = capsys.readouterr().out.split("}\n{", 1)
    assert json.loads(first + "}")["warnings"] == ["given", "the cache is full"]
    # QA26 (F12): a list of {kind, message} (inspect's) gets the cache warning as one of those, not a bare string
    assert json.loads("{" + second)["warnings"] == [{"kind": "k", "message": "m"},
                                                    {"kind": "cache", "message": "the cache is full"}]
    common.SHOWN_WARNINGS.clear()


def test_a_full_cache_is_one_warning_and_the_dataset_is_complete(raw: Path, tmp_path: Path) -> None:
    """A file-size limit (a full disk) on the cache alone: the dataset is written, the record is not."""
    out, cache = tmp_path / "ds", tmp_path / "cache"
    mmdata.shard(raw, tmp_path / "clean" / "ds", progress=False)
    code = ("import resource, mmdata, mmdata.io as io, sys\n"
            "real = io.atomic_write_bytes\n"
            "def full(path, data, **kw):\n"
            "    if str(path).startswith(sys.argv[3]):\n"
            "        raise OSError(28, 'No space left on device', str(path))\n"
            "    real(path, data, **kw)\n"
            "import mmdata.shards.output as o; o.atomic_write_bytes = full\n"
            "mmdata.shard(sys.argv[1], sys.argv[2], progress=False)\n")
    res = subprocess.run([sys.executable, "-c", code, str(raw), str(out), str(cache)], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "MMDATA_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("CacheWarning: cannot write the record of this job") == 1, res.stderr
    assert "No space left" in res.stderr
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


# -- 3. a read-only published folder -------------------------------------------------------------------------

def test_a_rerun_into_a_read_only_published_folder_is_up_to_date(raw: Path, tmp_path: Path) -> None:
    """QA: ``mount -o remount,ro`` (or ``chmod -R a-w``) on a finished OUT: the rerun said "not writable"
    (checked before the up-to-date check) where `augment` said "up to date"."""
    out = tmp_path / "pub" / "ds"
    mmdata.shard(raw, out, maxcount=8, progress=False)
    files = _tree(out)
    for p in (out, out.parent):
        p.chmod(0o555)
    try:
        res = subprocess.run(without_dac_override([*CLI, "shard", str(raw), str(out), "--maxcount", "8"]), cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and "up to date" in res.stdout, res.stdout + res.stderr
        # a job that must write there still stops with the one line it gave before
        res = subprocess.run(without_dac_override([*CLI, "shard", str(raw), str(out), "--maxcount", "4"]), cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert "not writable" in _one_error_line(res)
    finally:
        for p in (out.parent, out):
            p.chmod(0o755)
    assert _tree(out) == files


# -- 4. too few file descriptors -----------------------------------------------------------------------------

def test_too_many_open_files_while_reading_stops_the_shard_job() -> None:
    """QA: ``ulimit -n 12`` wrote 1420 of 1500 samples and counted 222 files "cannot read: Too many open
    files" as bad data, exit 0. A limit of the host stops the job (a rerun resumes); a missing file is data."""
    from mmdata.shards.writer import _read_chunks

    records = [(None, None, None, None, None, (f"/data/{i}.png",)) for i in range(3)]

    def read(paths: list[Any], *_: Any) -> tuple[list[Any], list[int]]:
        return [b"x", errno.EMFILE, errno.ENOENT][:len(paths)], [0] * (2 * len(paths))

    with pytest.raises(OSError) as e:
        list(_read_chunks(records, None, read))
    assert e.value.errno == errno.EMFILE and e.value.filename == "/data/1.png"

    def missing(paths: list[Any], *_: Any) -> tuple[list[Any], list[int]]:
        return [errno.ENOENT] * len(paths), [0] * (2 * len(paths))

    assert len(list(_read_chunks(records, None, missing))) == 1  # one chunk, its bad file left to the caller


def test_a_host_limit_in_a_shard_task_is_one_line_naming_the_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards import writer

    def emfile(task: dict[str, Any]) -> dict[str, Any]:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), "/data/7.png")

    monkeypatch.setattr(writer, "_write_shard", emfile)
    with pytest.raises(SourceError, match=r"out/train-000000\.tar: cannot read /data/7\.png: Too many open files.*"
                                          r"ulimit -n.*rerun the same command to resume"):
        writer._write_task({"out": "out", "name": "train-000000.tar"})


def test_a_low_open_file_limit_is_exit_2_and_the_rerun_resumes(tmp_path: Path) -> None:
    """The QA's run at a small scale: an fd limit a few above what the process holds, 4 workers."""
    raw = make_sample_folder(tmp_path / "raw", n=80)
    out = tmp_path / "ds"
    code = ("import os, resource, sys, mmdata, mmdata.shards.writer, pyarrow.parquet, PIL.Image, soundfile\n"
            "from mmdata.errors import MMDataError\n"
            "n = len(os.listdir('/proc/self/fd'))\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (n + 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "try:\n"
            "    rep = mmdata.shard(sys.argv[1], sys.argv[2], maxcount=4, workers=4, progress=False)\n"
            "except MMDataError as exc:\n"
            "    print('error:', exc); sys.exit(2)\n"
            "print('skipped', len(rep['skipped']))\n")
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    res = subprocess.run([sys.executable, "-c", code, str(raw), str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2 and "Too many open files" in res.stdout, res.stdout + res.stderr
    assert "cannot read: Too many open files" not in res.stdout  # never a skipped file
    rep = mmdata.shard(raw, out, maxcount=4, workers=4, progress=False)
    assert rep["samples"] == 80 and not rep["skipped"]
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=4, workers=4, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


def test_the_folder_walk_stops_at_a_host_limit(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that cannot be listed for want of a file descriptor is not "cannot list the folder" (data)."""
    from mmdata.shards import sources

    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if str(path).endswith("sub"):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), str(path))
        return real(path)

    shutil.copytree(raw, raw / "sub")
    monkeypatch.setattr(sources.os, "scandir", scandir)
    with pytest.raises(SourceError, match=r"sub: cannot read it: Too many open files"):
        mmdata.shard(raw, tmp_path / "ds", progress=False)


def test_the_reader_does_not_count_a_host_limit_as_a_damaged_shard(raw: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards import tario

    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=8, progress=False)

    def emfile(*_: Any, **__: Any) -> Any:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(tario, "open", emfile, raising=False)
    ds = mmdata.open_dataset(out, "train", on_error="skip")
    with pytest.raises(MMDataError, match="Too many open files") as e:
        list(ds)
    assert not isinstance(e.value, mmdata.errors.ShardError)


# -- 5. a full disk when the lock is taken --------------------------------------------------------------------

def _no_bytes() -> None:
    """Files of 10 bytes at most: Python starts (tempfile's 4-byte probe), a lock note does not fit."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10))


def test_a_full_disk_at_the_lock_is_an_error_and_leaves_no_empty_lock(tmp_path: Path) -> None:
    """QA: `ablate` into a full disk: `OSError: [Errno 28]` from the lock note's pwrite, exit 1, a 0-byte
    `.mmdata-lock` left behind. A small RLIMIT_FSIZE fails the same write (EFBIG, or a short write)."""
    out = tmp_path / "out"
    out.mkdir()
    code = ("import sys\nfrom mmdata.shards.journal import JobLock\nfrom mmdata.errors import SourceError\n"
            "try:\n    JobLock(sys.argv[1], 'mmdata ablate').__enter__()\n"
            "except SourceError as exc:\n    print(exc); sys.exit(2)\n")
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60,
                         preexec_fn=_no_bytes)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert f"cannot write its lock file {LOCK}" in res.stdout and "rerun" in res.stdout
    assert not (out / LOCK).exists()


def test_a_full_disk_keeps_the_note_of_an_unfinished_job(tmp_path: Path) -> None:
    """The lock note of a job that did not finish names the command to rerun: a full disk must not blank it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text("pid 1 on host, mmdata augment, since 2026-01-01 00:00:00\n" + "x" * 200)
    code = "import sys\nfrom mmdata.shards.journal import JobLock\nJobLock(sys.argv[1], 'mmdata shard').__enter__()\n"
    res = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60,
                         preexec_fn=_no_bytes)
    assert "cannot write its lock file" in res.stderr, res.stderr
    assert (out / LOCK).read_text().startswith("pid 1 on host, mmdata augment")


def test_ablate_into_a_full_disk_is_one_error_line(tmp_path: Path) -> None:
    import yaml

    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}, "seeds": 2,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    res = _cli("ablate", tmp_path / "ab.yaml", "--out", out, "-j", "1", preexec_fn=_no_bytes)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    line = [line for line in res.stderr.splitlines() if line.startswith("error:")][0]  # after the design's warning
    assert str(out) in line and "lock file" in line
    assert not (out / LOCK).exists()


# -- 6. a long output name -------------------------------------------------------------------------------------

def test_a_name_that_fits_is_written_atomically(tmp_path: Path) -> None:
    """QA: a 254-byte file name failed with `File name too long`: the temp file's name is ~38 bytes longer."""
    from mmdata.io import atomic_write_bytes, make_temp, remove_stale_temps

    for name in ("x" * 254, "é" * 127, "short.json"):
        atomic_write_bytes(tmp_path / name, b"data")
        assert (tmp_path / name).read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(("x" * 254, "é" * 127, "short.json"))
    # a dead writer's temp of a long name is found again by the name it was for
    code = "import sys; from mmdata.io import make_temp; print(make_temp(sys.argv[1])[1])"
    dead = subprocess.run([sys.executable, "-c", code, str(tmp_path / ("y" * 250))], capture_output=True, text=True,
                          check=True, cwd=REPO).stdout.strip()
    fd, alive = make_temp(tmp_path / ("y" * 250))
    os.close(fd)
    assert remove_stale_temps(tmp_path, ["y" * 250]) == [Path(dead)] and Path(alive).exists()


# -- 7. paths the system cannot look up --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["long-name", "long-path", "loop"])
@pytest.mark.parametrize("where", ["out", "source", "inspect", "verify"])
def test_a_path_that_cannot_be_looked_up_is_one_error_line(raw: Path, tmp_path: Path, kind: str, where: str) -> None:
    """QA: a name over 255 bytes or a path over 4096 gave `OSError: [Errno 36]`, a symlink loop
    `RuntimeError: Symlink loop from ...` — tracebacks from shard / inspect / verify."""
    if kind == "loop":
        (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
        (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
        bad, why = tmp_path / "loop1", "symbolic link loop"
    elif kind == "long-name":
        bad, why = tmp_path / ("a" * 300), "a name of 300 bytes"
    else:
        bad, why = tmp_path / "/".join(["b" * 200] * 25), "a path of"
    args = {"out": ("shard", raw, bad), "source": ("shard", bad, tmp_path / "ds"), "inspect": ("inspect", bad),
            "verify": ("verify", bad)}[where]
    line = _one_error_line(_cli(*args))
    assert why in line and ("loop1" in line or "aaaa" in line or "bbbb" in line), line
