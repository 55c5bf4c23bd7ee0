"""QA28 ops #3: under a memory limit (`ulimit -v`, a cgroup) a job ended in a 70-line traceback with exit 1, and
its last line blamed a recipe step and a sample ("mmdata: in recipe step normalize.image[2] ... on sample ...")
for what was the machine's memory. Now one line naming the limit, exit 2, like the other host limits; a real
limit (RLIMIT_AS) in a real process, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.io import out_of_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")

LIMITED = '''
import resource, sys
import numpy, torch  # noqa: F401  (loaded before the limit, as in a job that has run a while)
{preload}
import mmdata.cli.main as m
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, resource.RLIM_INFINITY))
sys.argv = ["mmdata", *sys.argv[1:]]
m.main()
'''


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata import shard
    from mmdata.testing import make_class_folders

    root = tmp_path_factory.mktemp("oom")
    make_class_folders(root / "raw", classes=("cat", "dog"), per_class=2)
    shard(root / "raw", root / "ds", progress=False)
    return root


@pytest.mark.parametrize("preload", ["", "import cv2, albumentations"], ids=["library", "allocation"])
def test_out_of_memory_is_one_line_and_blames_no_sample(ds: Path, preload: str) -> None:
    # a 12000 x 12000 RGB image is 432 MB: over the 380 MB this process may still map (300 MB left a decode of a
    # 143-byte PNG out of room at times under -n 2: a sample was blamed for the limit)
    (ds / "big.yaml").write_text("image:\n  - {op: resize, size: [12000, 12000], side: exact}\n")
    out = ds / f"aug-{len(preload)}"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1", MMDATA_PROGRESS="off")
    p = subprocess.run([sys.executable, "-c", LIMITED.format(preload=preload, headroom=380 << 20), "augment",
                        str(ds / "ds"), str(out), "-r", str(ds / "big.yaml")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2, p.stderr[-3000:]
    assert "error: out of memory" in p.stderr and "(ulimit -v)" in p.stderr
    assert "Traceback" not in p.stderr and "in recipe step" not in p.stderr, p.stderr[-3000:]


def test_out_of_memory_names_only_memory() -> None:
    import errno

    assert out_of_memory(MemoryError("Unable to allocate 432. MiB")).startswith("out of memory: Unable to allocate")
    assert out_of_memory(ImportError("libx.so: failed to map segment from shared object")) is not None
    assert out_of_memory(OSError(errno.ENOMEM, "Cannot allocate memory")) is not None
    import cv2
    import torch

    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")) is not None
    assert out_of_memory(cv2.error("OpenCV: error: (-4:Insufficient memory) Failed to allocate 432000000 bytes")) is not None
    for other in (ImportError("No module named 'x'"), OSError(errno.ENOENT, "gone"), ValueError("bad"),
                  cv2.error("(-215:Assertion failed) !ssize.empty()"), RuntimeError("out of range")):
        assert out_of_memory(other) is None


def test_a_recipe_step_is_not_blamed_for_memory() -> None:
    import mmdata
    from mmdata.augment.contract import note

    op = mmdata.load_recipe({"image": [{"op": "hflip", "p": 1.0}]}).sections["image"][0]
    exc = MemoryError("Unable to allocate")
    note(exc, op, "k1")
    assert not getattr(exc, "__notes__", None)
    other = ValueError("bad pixel")  # a fault of the step or the sample: still named
    note(other, op, "k1")
    assert any("in recipe step image[0]" in n and "'k1'" in n for n in other.__notes__)
