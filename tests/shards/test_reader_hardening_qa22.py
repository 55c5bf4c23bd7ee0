"""Readers that refuse hostile states, tell an outage from bad data and clean up after themselves (QA round 22):
a resume state naming 10**10 readers hung the share computation; the worker-side state file was taken without
the checks load_state_dict makes; a store stopped mid-epoch was counted as corrupt shards under skip; a password
in a dataset URL showed in repr, messages and ``errors``; ``pipe:curl ... http://...`` got an unknown-protocol
error instead of the pipe: one; clock folders of killed processes stayed in the temporary folder forever."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hardening_qa22")
    raw = make_sample_folder(root / "raw", n=16)
    mmdata.shard(raw, root / "ds", maxcount=4, split={"train": 1.0}, progress=False)
    return root / "ds"


def _keys(batch: list) -> list[str]:
    return [s.key for s in batch]


# ---- 1. a state's readers are bounded; the workers' state file is checked as load_state_dict checks ------------
@pytest.mark.parametrize("state", [
    {"seed": 0, "epoch": 0, "positions": {"0": 1}, "readers": 10**10},
    {"seed": 0, "epoch": 0, "positions": {"0": 1}, "readers": 2, "world": 10**9},
    {"seed": 0, "epoch": 0, "positions": {str(10**10): 1}, "readers": 2},
    {"seed": 0, "epoch": 0, "positions": {"9" * 5000: 1}, "readers": 2},
])
def test_a_state_naming_too_many_readers_is_refused_not_hung(ds: Path, state: dict) -> None:
    d = mmdata.open_dataset(ds, split="train")
    with pytest.raises(ShardError, match=r"state\[.*(at most|below) 1048576"):
        d.load_state_dict(state)


def _published_state_edited(ds: Path, edit: dict) -> tuple[DataLoader, str]:
    d = mmdata.open_dataset(ds, split="train")
    dl = DataLoader(d, batch_size=2, num_workers=2, collate_fn=_keys, persistent_workers=True)
    assert sum(len(b) for b in dl) == 16
    d.load_state_dict({"seed": 0, "epoch": 0, "positions": {"0": 2, "1": 2}, "readers": 2})
    path = d._clock._resume_path()
    body = json.loads(Path(path).read_text())
    body["state"] = edit
    Path(path).write_text(json.dumps(body))
    return dl, path


@pytest.mark.parametrize(("edit", "match"), [
    ({"x": 1}, "has no 'epoch'"),
    ({"epoch": 0, "positions": {"0": 2, "1": 2}, "readers": 10**12}, "at most 1048576"),
])
def test_the_workers_state_file_is_checked_as_load_state_dict_checks(ds: Path, edit: dict, match: str) -> None:
    """QA: {"x": 1} in the file made the workers read the whole epoch again (16 samples, not 12), silently."""
    dl, path = _published_state_edited(ds, edit)
    with pytest.raises(ShardError, match=match) as info:
        _ = list(dl)
    assert path in str(info.value)


def test_the_workers_state_file_still_resumes(ds: Path) -> None:
    dl, _ = _published_state_edited(ds, {"epoch": 0, "positions": {"0": 2, "1": 2}, "readers": 2})
    assert sum(len(b) for b in dl) == 12


# ---- 2. an outage is not bad data, even under skip ---------------------------------------------------------
def _serve(folder: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                             str(folder)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    port = line.split("port ")[1].split()[0]
    return proc, f"127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture
def served(ds: Path, tmp_path: Path):  # noqa: ANN201 — (a copy of the dataset, its server process, host:port)
    pytest.importorskip("aiohttp")
    copy = tmp_path / "served"
    shutil.copytree(ds, copy)
    proc, host = _serve(copy)
    yield copy, proc, host
    _stop(proc)


def test_an_http_store_stopped_mid_epoch_raises_under_skip(served: tuple[Path, subprocess.Popen, str]) -> None:
    _, proc, host = served
    d = mmdata.open_dataset(f"http://{host}", split="train", on_error="skip")
    it = iter(d)
    first = next(it)
    assert first.key
    _stop(proc)  # the store goes away while the epoch is read
    with pytest.raises(ShardError, match=r"shard http://127\.0\.0\.1:\d+/train-\d+\.tar: the store could not be "
                                         r"reached .*skip mode skips bad data, not outages"):
        for _ in it:
            pass
    assert "truncated or corrupt shard" not in d.skipped


def _moto(tmp_path: Path) -> tuple[subprocess.Popen, dict]:
    """A real S3 server process (moto's) on a free port, and the storage options that reach it (one try per
    request: an outage shows at once)."""
    s3fs = pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.time() < deadline and proc.poll() is None, "moto server did not start"
            time.sleep(0.1)
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "testing", "secret": "testing",
               "default_block_size": 1 << 20, "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    s3fs.S3FileSystem(**options).mkdir("outage")
    return proc, options


def test_an_s3_store_stopped_mid_epoch_raises_under_skip(ds: Path, tmp_path: Path) -> None:
    """QA: read 20 {'truncated or corrupt shard': 27}, exit status 0, from a moto server killed mid-read."""
    import s3fs

    proc, options = _moto(tmp_path)
    try:
        s3fs.S3FileSystem(**options).put(str(ds), "outage/ds", recursive=True)
        d = mmdata.open_dataset("s3://outage/ds", split="train", on_error="skip", storage_options=options)
        it = iter(d)
        assert next(it).key
    finally:
        _stop(proc)
    with pytest.raises(ShardError, match=r"shard s3://outage/ds/train-\d+\.tar: the store could not be reached"):
        for _ in it:
            pass
    assert "truncated or corrupt shard" not in d.skipped


def test_an_s3_store_stopped_inside_a_shard_raises_under_skip(tmp_path: Path) -> None:
    """The store goes away while a shard is being read (1 MB range reads of a 25 MB shard)."""
    import s3fs

    with tarfile.open(tmp_path / "big.tar", "w") as tf:
        for i in range(64):
            data = base64.b64encode(os.urandom(3 << 17))
            info = tarfile.TarInfo(f"{i:06d}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    proc, options = _moto(tmp_path)
    try:
        s3fs.S3FileSystem(**options).put(str(tmp_path / "big.tar"), "outage/big.tar")
        d = mmdata.open_dataset("s3://outage/big.tar", on_error="skip", storage_options=options)
        it = iter(d)
        assert next(it).key == "000000"
    finally:
        _stop(proc)
    with pytest.raises(ShardError, match=r"shard s3://outage/big\.tar: the store could not be reached"):
        for _ in it:
            pass
    assert not d.skipped


def test_a_shard_gone_from_the_store_is_still_skipped(served: tuple[Path, subprocess.Popen, str]) -> None:
    copy, _, host = served
    (copy / "train-000001.tar").unlink()  # 404: the shard is gone, the store is up
    d = mmdata.open_dataset(f"http://{host}", split="train", on_error="skip")
    assert len(list(d)) == 12
    assert d.skipped == {"truncated or corrupt shard": 4}


# ---- 3. no password in reprs, messages or errors -------------------------------------------------------------
def test_a_password_in_the_url_is_never_shown(served: tuple[Path, subprocess.Popen, str]) -> None:
    copy, _, host = served
    (copy / "train-000001.tar").unlink()
    url = f"http://user:pw123@{host}"
    d = mmdata.open_dataset(url, split="train", on_error="skip")
    assert "pw123" not in repr(d) and f"http://***@{host}" in repr(d)
    assert len(list(d)) == 12
    assert d.errors and all("pw123" not in "".join(e) for e in d.errors)
    assert any(f"http://***@{host}/train-000001.tar" in "".join(e) for e in d.errors)
    with pytest.raises(ShardError) as info:
        _ = list(mmdata.open_dataset(url, split="train"))
    assert "pw123" not in str(info.value) and "***@" in str(info.value)
    bare = mmdata.open_dataset(f"{url}/train-000000.tar")
    assert "pw123" not in repr(bare)


# ---- 4. pipe: URLs get their own error whatever follows ---------------------------------------------------------
@pytest.mark.parametrize("url", ["pipe:curl -s http://127.0.0.1:8777/train-000000.tar", "pipe:aws s3 cp s3://b/x.tar -",
                                 "pipe:cat local.tar"])
def test_pipe_urls_are_refused_as_shell_commands(url: str) -> None:
    with pytest.raises(ShardError, match="pipe: URLs run a shell command, which mmdata never does"):
        mmdata.open_dataset(url)
    with pytest.raises(ShardError, match="pipe: URLs run a shell command"):
        mmdata.open_dataset([url, "local.tar"])


# ---- 5. clock folders left by killed processes are swept ----------------------------------------------------------
_HOLD = ("import sys, time, mmdata\n"
         "d = mmdata.open_dataset(sys.argv[1], split='train')\n"
         "print(d._clock._lock_path, flush=True)\n"
         "time.sleep(300)\n")


def _clock_processes(ds: Path, env: dict[str, str], n: int) -> list[tuple[subprocess.Popen, Path]]:
    procs = [subprocess.Popen([sys.executable, "-c", _HOLD, str(ds)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    out = []
    for proc in procs:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line, proc.wait()
        out.append((proc, Path(line).parent))
    return out


def _age(folder: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(folder, (t, t), follow_symlinks=False)


def test_clock_folders_of_killed_processes_are_swept_live_ones_kept(ds: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    (killed, killed_folder), (live, live_folder) = _clock_processes(ds, env, 2)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert killed_folder.is_dir()  # nothing of the killed process removed it
        legacy = tmp / "mmdata-clock-legacy"  # an older mmdata's: no "alive" file, a lock nobody holds
        legacy.mkdir()
        (legacy / "lock").touch()
        recent_legacy = tmp / "mmdata-clock-recent"
        recent_legacy.mkdir()
        (recent_legacy / "lock").touch()
        target = tmp_path / "elsewhere"
        target.mkdir()
        (target / "keep.txt").write_text("not mmdata's")
        link = tmp / "mmdata-clock-link"
        link.symlink_to(target)
        for folder, age in ((killed_folder, 3600), (live_folder, 3600), (legacy, 2 * 86400), (recent_legacy, 3600),
                            (link, 2 * 86400)):
            _age(folder, age)
        sweep = subprocess.run([sys.executable, "-c", "import sys, mmdata; mmdata.open_dataset(sys.argv[1])", str(ds)],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert sweep.returncode == 0, sweep.stderr
        assert not killed_folder.exists()
        assert not legacy.exists()
        assert live_folder.is_dir() and (live_folder / "alive").is_file()  # its process runs: kept
        assert recent_legacy.is_dir()  # an older mmdata's, not a day old: its process may still run
        assert link.is_symlink() and (target / "keep.txt").read_text() == "not mmdata's"
        assert sorted(p.name for p in tmp.iterdir()) == sorted([live_folder.name, "mmdata-clock-recent",
                                                                "mmdata-clock-link"])
    finally:
        live.kill()
        live.wait()
