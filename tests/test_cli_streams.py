"""The CLI as scripts use it: stdout holds the command's result, stderr the progress and diagnostics
(`mmdata shard SRC OUT > log` kept the progress bar in the log)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.testing import make_sample_folder


def _mmdata(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("streams") / "raw", n=6)


def test_shard_and_augment_progress_goes_to_stderr(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sharding samples" in res.stderr and "sharding samples" not in res.stdout
    assert "wrote" in res.stdout  # the result stays on stdout
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 0.5}\n")
    res = _mmdata("augment", "ds", "aug", "--recipe", str(recipe), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sharding samples" not in res.stdout and "━" not in res.stdout
    # a dataset folder is augmented shard by shard: the bar says so (QA: it said "sharding samples")
    assert "augmenting samples" in res.stderr and "augmenting samples" not in res.stdout
    res = _mmdata("augment", "ds", "aug0", "--recipe", str(recipe), "--copies", "0", cwd=tmp_path)
    assert res.returncode == 2 and "--copies 0 (copies=0) without --keep-original writes no sample" in res.stderr
    assert not (tmp_path / "aug0").exists()


def test_datasets_build_progress_goes_to_stderr(tmp_path: Path) -> None:
    res = _mmdata("datasets", "build", "avdigits", "av", "--limit", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # a pipe gets plain progress lines (mmdata.progress), never the bar's redraws
    assert "sharding samples" not in res.stdout and "sharding samples" in res.stderr and "━" not in res.stderr


# results on stdout, warnings and diagnostics on stderr, for every command (2026-12 QA: `shard`, `inspect`,
# `train` and `add-modality` printed "warning:" and "left out" lines on stdout, `ablate` on stderr)

@pytest.fixture(scope="module")
def ds(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mmdata

    out = tmp_path_factory.mktemp("streams-ds") / "ds"
    mmdata.shard(raw, out, progress=False)
    return out


def test_ablate_progress_goes_to_stderr(ds: Path, tmp_path: Path) -> None:
    from mmdata.ablate.testing import synthetic_recipe

    res = _mmdata("ablate", synthetic_recipe(tmp_path, ds, seeds=2), "--out", "abl", "-j", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "ablation runs" in res.stderr and "ablation runs" not in res.stdout  # the progress bar's description
    assert "vs baseline" in res.stdout  # the result stays on stdout


def test_shard_left_out_files_and_warnings_go_to_stderr(tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=4)
    (raw / "000009.png").symlink_to("nowhere")  # left out: a broken link
    (raw / "000001.cls").unlink()  # a warning: a sample without a label
    res = _mmdata("shard", str(raw), "ds", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout and "left out" not in res.stdout and "000009.png" not in res.stdout
    assert "left out: 1 file" in res.stderr and "000009.png: broken symbolic link" in res.stderr
    assert "warning" not in res.stdout.lower() and "warning" in res.stderr.lower()
    res = _mmdata("inspect", "ds", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "warning (labels)" in res.stderr and "warning" not in res.stdout
    assert "samples layout" in res.stdout


def test_add_modality_left_out_files_go_to_stderr(tmp_path: Path) -> None:
    import numpy as np

    import mmdata
    from mmdata.testing import make_sample_folder

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "cols", layout="columns", progress=False)
    (tmp_path / "depth").mkdir()
    for k in ("000000", "000001", "zzz"):  # zzz: no such sample
        np.save(tmp_path / "depth" / f"{k}.depth.npy", np.zeros((2, 2), np.float32))
    (tmp_path / "depth" / "000002.depth.npy").write_bytes(b"not a numpy file")  # a bad file
    res = _mmdata("add-modality", "cols", "depth", "depth", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "added 'depth'" in res.stdout
    assert "left out" not in res.stdout and "not used" not in res.stdout and "zzz" not in res.stdout
    assert "not used: 1 file" in res.stderr and "zzz.depth.npy" in res.stderr
