"""`mmdata shard` / `mmdata augment` with ``--executor ray`` on a real local 2-node Ray cluster
(tests/conftest.py: ray_cluster): the output is byte-identical to the local executor's, and a driver
SIGKILLed mid-job leaves a journal that the next run resumes from, keeping finished shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.journal import _records
from mmdata.testing import make_sample_folder

ROOT = Path(__file__).parents[2]


def _tree(root: Path) -> dict[str, bytes]:
    """Every output file's bytes by relative path (the journal and lock are gone after a finished job)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.startswith(".mmdata-lock")}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("raw") / "raw", n=24)


@pytest.mark.ray
def test_ray_shards_are_byte_identical_to_local(tmp_path: Path, raw: Path, ray_cluster) -> None:
    opts = dict(maxcount=5, split="train=0.7,val=0.3", seed=3, progress=False)
    local = mmdata.shard(raw, tmp_path / "local" / "ds", workers=2, **opts)
    ray_ = mmdata.shard(raw, tmp_path / "ray" / "ds", executor="ray", **opts)
    assert ray_["fingerprint"] == local["fingerprint"] and ray_["shards"] == local["shards"] >= 5
    a, b = _tree(tmp_path / "local" / "ds"), _tree(tmp_path / "ray" / "ds")
    assert sorted(a) == sorted(b) and any(k.endswith(".tar") for k in a)
    assert [k for k in a if a[k] != b[k]] == []
    assert mmdata.verify(tmp_path / "ray" / "ds")["ok"]


def _tripwire_in_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if this process (the driver) augments or encodes a sample: the Ray workers are processes
    of their own, so the tripwire catches only work that should have been a task's."""
    from mmdata.augment import offline
    from mmdata.augment.recipe import Recipe

    def not_here(*a: object, **k: object) -> None:
        raise AssertionError("the driver augmented or encoded a sample: that is the Ray tasks' work")

    monkeypatch.setattr(Recipe, "apply_sample", not_here)
    monkeypatch.setattr(offline, "encode_sample", not_here)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory, raw: Path) -> Path:
    """The source dataset of the augment tests: 24 samples in train (5 shards) and val (2 shards)."""
    out = tmp_path_factory.mktemp("src") / "src"
    mmdata.shard(raw, out, maxcount=4, split="train=0.7,val=0.3", seed=1, progress=False)
    return out


@pytest.mark.ray
def test_ray_augment_runs_in_the_tasks_resumes_after_a_killed_driver_and_equals_local(
        tmp_path: Path, src: Path, ray_cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.augment import offline

    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - op: hflip\n    p: 0.5\naudio:\n  - op: gain\n    p: 1.0\n")
    out = tmp_path / "ray" / "aug"
    cmd = [sys.executable, "-c", "from mmdata.cli.main import main; main()", "augment", str(src), str(out), "-r",
           str(recipe), "--copies", "2", "--keep-original", "--maxcount", "6", "--executor", "ray", "--address",
           ray_cluster.address, "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _kill_after_journaled(proc, out, 2)
    kept = {p.name: p.stat().st_ino for p in out.glob("*.tar")}
    assert len(kept) >= 2
    opts = dict(copies=2, keep_original=True, maxcount=6, progress=False)
    local = offline.augment_dataset(src, tmp_path / "local" / "aug", recipe, **opts)

    _tripwire_in_the_driver(monkeypatch)
    rep = offline.augment_dataset(src, out, recipe, executor="ray", **opts)
    # 17 train samples x (2 copies + the original) + 7 val samples written through once (train only is augmented)
    assert rep["samples"] == local["samples"] == 58 and set(rep["splits"]) == {"train", "val"}
    assert len(kept) < rep["shards"] == local["shards"]
    a, b = _tree(tmp_path / "local" / "aug"), _tree(out)
    assert sorted(a) == sorted(b) and sum(k.endswith(".tar") for k in a) == rep["shards"]
    assert [k for k in a if a[k] != b[k]] == []  # every shard, index.parquet, shards.parquet, dataset.json
    assert any(out.joinpath(n).stat().st_ino == ino for n, ino in kept.items()), "no finished shard was kept"
    assert not list(out.rglob("*.tmp-*"))
    with pytest.raises(mmdata.ShardError, match=r"no split 'test'; it has \['train', 'val'\]"):  # as locally
        offline.augment_dataset(src, tmp_path / "nosplit", recipe, executor="ray", **(opts | {"splits": ["test"]}))
    assert not (tmp_path / "nosplit").exists()


def _kill_after_journaled(proc: subprocess.Popen, out: Path, shards: int) -> None:
    """SIGKILL the driver (its process group) once its journal holds ``shards`` finished shards."""
    deadline = time.time() + 120
    journal = out / ".mmdata-journal"
    while time.time() < deadline and len(_records(journal.read_bytes() if journal.exists() else b"")[0]) < shards + 1:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the first journal record is the plan
    proc.wait()
    assert not (out / "index.parquet").exists(), "the job finished before the kill: nothing to resume"


@pytest.mark.ray
def test_killed_ray_driver_resumes_from_the_journal(tmp_path: Path, raw: Path, ray_cluster) -> None:
    out = tmp_path / "ray" / "ds"
    cmd = [sys.executable, "-c", "from mmdata.cli.main import main; main()", "shard", str(raw), str(out),
           "--maxcount", "2", "--executor", "ray", "--address", ray_cluster.address, "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _kill_after_journaled(proc, out, 2)
    kept = {p.name: p.stat().st_ino for p in out.glob("*.tar")}
    assert 2 <= len(kept) < 12
    rep = mmdata.shard(raw, out, maxcount=2, executor="ray", progress=False)
    ref = mmdata.shard(raw, tmp_path / "local" / "ds", maxcount=2, workers=2, progress=False)
    assert rep["fingerprint"] == ref["fingerprint"] and rep["samples"] == 24
    assert _tree(out) == _tree(tmp_path / "local" / "ds")
    assert any(out.joinpath(n).stat().st_ino == ino for n, ino in kept.items()), "no finished shard was kept"
    assert not list(out.rglob("*.tmp-*"))


@pytest.mark.ray
def test_ray_shard_with_relative_paths(tmp_path: Path, raw: Path, ray_cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(raw, tmp_path / "raw")
    monkeypatch.chdir(tmp_path)  # the Ray workers run in working directories of their own
    rep = mmdata.shard("raw", "ray/ds", maxcount=8, executor="ray", progress=False)
    mmdata.shard("raw", "local/ds", maxcount=8, progress=False)
    assert rep["samples"] == 24 and _tree(tmp_path / "ray" / "ds") == _tree(tmp_path / "local" / "ds")


def test_shard_and_augment_executor_ray_without_ray_name_the_extra(tmp_path: Path, raw: Path, cli_without_ray) -> None:
    p = cli_without_ray("shard", raw, tmp_path / "ds", "--executor", "ray")
    assert p.returncode == 2 and "pip install -e '.[ray]' in a clone of mmdata" in p.stderr, p.stderr
    assert not (tmp_path / "ds" / "index.parquet").exists()
    mmdata.shard(raw, tmp_path / "src", progress=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - op: hflip\n    p: 0.5\n")
    p = cli_without_ray("augment", tmp_path / "src", tmp_path / "aug", "-r", recipe, "--executor", "ray")
    assert p.returncode == 2 and "pip install -e '.[ray]' in a clone of mmdata" in p.stderr, p.stderr
    assert not (tmp_path / "aug" / "index.parquet").exists()


@pytest.mark.ray
def test_ray_augment_of_bare_shards_runs_in_the_tasks_and_equals_local(tmp_path: Path, src: Path, ray_cluster,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards without an index: the driver plans from their tar headers only; each output shard is
    one Ray task that reads the source shards holding its samples, augments and writes."""
    from mmdata.augment import offline

    recipe = {"image": [{"op": "hflip", "p": 0.5}], "audio": [{"op": "gain", "p": 1.0}]}
    bare = str(src / "*.tar")  # 7 shards, no dataset.json / index.parquet consulted
    opts = dict(copies=2, keep_original=True, maxcount=10, progress=False)
    local = offline.augment_dataset(bare, tmp_path / "local" / "aug", recipe, **opts)

    _tripwire_in_the_driver(monkeypatch)
    rep = offline.augment_dataset(bare, tmp_path / "ray" / "aug", recipe, executor="ray", **opts)
    assert rep["samples"] == local["samples"] == 72 and rep["shards"] == local["shards"] == 8
    a, b = _tree(tmp_path / "local" / "aug"), _tree(tmp_path / "ray" / "aug")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
