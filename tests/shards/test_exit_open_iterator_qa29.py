"""A script that keeps a half-read iterator (`it = iter(loader); batch = next(it)`) to its end exits
quietly: the decode pool's generator is closed at exit, not during module teardown (QA29 docs #4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

ROOT = Path(__file__).resolve().parents[2]

# each peeks one batch/sample and leaves the iterator open at exit; decode_threads=2 starts the pool
SCRIPTS = {
    "loader": "it = iter(mmdata.loader(A, batch_size=4, decode_threads=2)); b = next(it); print(len(b))",
    "dataloader": ("from torch.utils.data import DataLoader\n"
                   "ds = mmdata.open_dataset(A, decode_threads=2)\n"
                   "it = iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)); b = next(it); print(len(b))"),
    "dataset": "ds = mmdata.open_dataset(A, decode_threads=2); it = iter(ds); print([next(it).key for _ in range(3)])",
    "blend": "it = iter(mmdata.blend({'a': A, 'b': B}, decode_threads=2)); print(next(it).key)",
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    t = tmp_path_factory.mktemp("exit")
    mmdata.shard(make_sample_folder(t / "ra", n=12, labels=False), t / "a", progress=False)
    mmdata.shard(make_sample_folder(t / "rb", n=6, labels=False), t / "b", progress=False)
    return t / "a", t / "b"


@pytest.mark.parametrize("path", sorted(SCRIPTS))
def test_half_read_iterator_exits_quietly(path: str, folders: tuple[Path, Path]) -> None:
    a, b = folders
    code = f"import mmdata\nA, B = {str(a)!r}, {str(b)!r}\n{SCRIPTS[path]}\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""
