"""mmdata's cache on a shared machine (mmdata/urls.py, mmdata/ablate/remote_out.py; docs/scale.md, "Cache"):
what another user plants in it (a link, a folder or staged dataset of theirs) is refused by name, never
followed, never trained on; the folders mmdata makes are private (0700) whatever the umask; a killed
staging's leftovers go at the next staging; an ablation's working copy goes after its final upload.

Another user is real: as root, files are given to uid 65534 (nobody) with chown, and a process runs as
that user with setpriv; without root those tests are skipped."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest

import mmdata
from mmdata.ablate.remote_out import RemoteRunDir
from mmdata.errors import CacheWarning
from mmdata.testing import make_sample_folder
from mmdata.urls import NoCacheError, UnsafeCacheError, cache_dir, cache_subdir, stage_dataset

ROOT = Path(__file__).parents[1]
NOBODY = 65534
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="giving a file to another user needs root")


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cache-safety")
    return Path(mmdata.shard(make_sample_folder(base / "raw", n=6), base / "ds", maxcount=4, progress=False)["out"])


@pytest.fixture
def url(ds: Path) -> str:
    """The dataset in fsspec's in-memory store (a real non-local filesystem of this process)."""
    u = f"memory://cache-safety-{uuid.uuid4().hex[:8]}/ds"
    fsspec.filesystem("memory").put(str(ds), u[len("memory://"):], recursive=True)
    return u


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache every user may write, as a lab's shared one (mode 1777), set as MMDATA_CACHE."""
    sc = tmp_path / "sc"
    sc.mkdir()
    os.chmod(sc, 0o1777)
    monkeypatch.setenv("MMDATA_CACHE", str(sc))
    return sc


def _victim(tmp_path: Path) -> Path:
    files = tmp_path / "victim"
    (files / "sub").mkdir(parents=True)
    (files / "thesis.tex").write_text("years of work")
    (files / "sub" / "data.csv").write_text("1,2")
    return files


def _digest(u: str) -> str:
    return hashlib.sha256(u.rstrip("/").encode()).hexdigest()[:16]


def test_an_ablation_copy_planted_as_a_link_is_refused_and_nothing_is_deleted(tmp_path: Path, shared: Path) -> None:
    victim = _victim(tmp_path)
    out = f"memory://abl-{uuid.uuid4().hex[:8]}/abl"
    (shared / "ablations").mkdir(mode=0o700)
    (shared / "ablations" / _digest(out)).symlink_to(victim)
    with pytest.raises(UnsafeCacheError, match=rf"cache folder {shared}/ablations/{_digest(out)} is a symbolic link "
                                               rf"\(to {victim}\).*MMDATA_CACHE="):
        RemoteRunDir(out).pull()
    assert sorted(p.name for p in victim.rglob("*")) == ["data.csv", "sub", "thesis.tex"]


@as_root
def test_an_ablations_folder_of_another_user_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The QA repro: user nobody makes ``ablations/`` in the shared cache and a link in it to the victim's
    files; the victim's ablation stops naming the folder and its owner, and deletes nothing."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="mmdata-test-shared-"))  # pytest's tmp_path is closed to other users
    try:
        os.chmod(base, 0o755)
        shared = base / "sc"
        shared.mkdir()
        os.chmod(shared, 0o1777)
        monkeypatch.setenv("MMDATA_CACHE", str(shared))
        victim = _victim(base)
        out = f"memory://abl-{uuid.uuid4().hex[:8]}/abl"
        nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        subprocess.run([*nobody, "mkdir", str(shared / "ablations")], check=True)
        subprocess.run([*nobody, "ln", "-s", str(victim), str(shared / "ablations" / _digest(out))], check=True)
        with pytest.raises(UnsafeCacheError, match=rf"cache folder {shared}/ablations belongs to uid {NOBODY}.*not to you"):
            RemoteRunDir(out).pull()
        assert sorted(p.name for p in victim.rglob("*")) == ["data.csv", "sub", "thesis.tex"]
    finally:
        shutil.rmtree(base)


def test_a_link_inside_the_copy_is_removed_itself_not_followed(tmp_path: Path, shared: Path) -> None:
    victim = _victim(tmp_path)
    out = f"memory://abl-{uuid.uuid4().hex[:8]}/abl"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{out[len('memory://'):]}/runs.parquet", b"runs")
    d = RemoteRunDir(out)
    local = d.pull()
    (local / "old-report").symlink_to(victim)  # e.g. left by a tool, or by the user
    assert d.pull() == local
    assert sorted(p.name for p in local.iterdir()) == ["runs.parquet"]
    assert sorted(p.name for p in victim.rglob("*")) == ["data.csv", "sub", "thesis.tex"]
    assert oct(local.stat().st_mode & 0o777) == "0o700" and oct((shared / "ablations").stat().st_mode & 0o777) == "0o700"


def test_the_final_upload_removes_the_working_copy_but_a_built_dataset(shared: Path) -> None:
    out = f"memory://abl-{uuid.uuid4().hex[:8]}/abl"
    d = RemoteRunDir(out)
    local = d.pull()
    (local / "data").mkdir()
    (local / "data" / "dataset.json").write_text("{}")
    (local / "runs.parquet").write_bytes(b"r")
    (local / "plots").mkdir()
    (local / "plots" / "forest.png").write_bytes(b"p")
    d.push(["runs.parquet"])  # a save while running keeps everything
    assert (local / "runs.parquet").is_file()
    d.push()
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.find(out[len("memory://"):])) == ["forest.png", "runs.parquet"]
    assert sorted(p.name for p in local.iterdir()) == ["data"]  # a rerun pulls anew, reusing the built data/


def test_cache_folders_are_private_whatever_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "new" / "cache"))
    old = os.umask(0)
    try:
        made = cache_subdir("datasets")
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in (made, made.parent)} == {"0o700"}
    os.chmod(made, 0o755)  # made by an older mmdata under umask 022: private again at the next use
    assert oct(cache_subdir("datasets").stat().st_mode & 0o777) == "0o700"


@as_root
def test_a_cache_root_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "theirs"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    monkeypatch.setenv("MMDATA_CACHE", str(root))
    with pytest.raises(UnsafeCacheError, match=rf"mmdata's cache {root} belongs to uid {NOBODY}.*MMDATA_CACHE="):
        cache_dir()
    assert issubclass(UnsafeCacheError, NoCacheError)  # the cache's optional uses go on without it, as pip's


@as_root
def test_without_a_home_the_message_suggests_a_private_per_user_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "MMDATA_CACHE", "XDG_CACHE_HOME")}
    uid = 54321  # no passwd entry: an arbitrary UID in a container
    can = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", sys.executable, "-c",
                          "import mmdata.urls"], cwd="/", env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         timeout=60)
    if can.returncode != 0:  # a checkout in a private folder (a fresh clone under mktemp -d): not readable to others
        pytest.skip(f"another user cannot read this checkout ({ROOT}) to import mmdata")
    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", sys.executable, "-c",
                        "from mmdata.urls import cache_dir\ntry: cache_dir()\nexcept Exception as e: print(e)"],
                       cwd="/", env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert f"MMDATA_CACHE=/tmp/mmdata-cache-{uid} (mmdata makes it private: mode 0700)" in p.stdout, p.stdout + p.stderr


@as_root
def test_a_staged_dataset_planted_by_another_user_is_not_trained_on(url: str, ds: Path, shared: Path) -> None:
    fp = json.loads((ds / "dataset.json").read_text())["fingerprint"]
    (shared / "datasets").mkdir()
    planted = shared / "datasets" / fp
    shutil.copytree(ds, planted)
    (planted / "train-000000.tar").write_bytes(b"rewritten")  # same name, other samples
    for p in [shared / "datasets", *planted.rglob("*"), planted]:
        os.chown(p, NOBODY, NOBODY)
    with pytest.raises(UnsafeCacheError, match=rf"cache folder {shared}/datasets belongs to uid {NOBODY}"):
        stage_dataset(url)
    # the folder is the user's, the staged copy in it someone else's: refused too, by name
    os.chown(shared / "datasets", os.getuid(), os.getgid())
    with pytest.raises(UnsafeCacheError, match=rf"staged dataset {planted} belongs to uid {NOBODY}"):
        stage_dataset(url)


def test_a_staged_dataset_that_changed_is_staged_anew(url: str, ds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dest = stage_dataset(url, cache=cache)
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    shard = dest / "train-000000.tar"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated in place (a full disk, a user's edit)
    with pytest.warns(CacheWarning, match=r"train-000000.tar of 100 bytes, but shards.parquet says \d+; it is removed "
                                          r"and staged anew"):
        again = stage_dataset(url, cache=cache)
    assert again == dest and shard.read_bytes() == (ds / "train-000000.tar").read_bytes()
    os.chmod(shard, 0o666)  # others could have rewritten it
    with pytest.warns(CacheWarning, match=r"which others may write"):
        stage_dataset(url, cache=cache)
    assert oct(shard.stat().st_mode & 0o022) == "0o0"
    link = tmp_path / "elsewhere"
    os.rename(dest, link)
    dest.symlink_to(link)
    with pytest.raises(UnsafeCacheError, match=rf"staged dataset {dest} is a symbolic link"):
        stage_dataset(url, cache=cache)


def test_a_killed_stagings_leftovers_go_at_the_next_staging(url: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    datasets = cache_subdir("datasets", base=cache)
    fp = "a" * 64
    old_style = datasets / f".{fp}.tmp-{pid}-0123abcd"  # as an earlier mmdata named it
    (old_style / "sub").mkdir(parents=True)
    (old_style / "sub" / "train-000000.tar").write_bytes(b"partial")
    live = datasets / f".{fp}.tmp-{os.getpid()}-89abcdef"  # a staging running now (this process)
    live.mkdir()
    mine = datasets / "notes"  # not a name mmdata makes
    mine.mkdir()
    with pytest.warns(CacheWarning, match=rf"removed 1 partial staging folder\(s\) left by killed runs \(\.{fp}\.tmp-{pid}"):
        stage_dataset(url, cache=cache)
    assert sorted(p.name for p in datasets.iterdir() if p.name.startswith(".")) == [live.name]
    assert mine.is_dir()
    old = 3 * 24 * 3600
    os.utime(live, (os.path.getatime(live) - old, os.path.getmtime(live) - old))  # older than a day: a pid reused
    with pytest.warns(CacheWarning, match="removed 1 partial"):
        stage_dataset(url, cache=cache)
    assert not live.exists()
