"""QA35 lowmem #2: a streaming read under ``ulimit -v``. (a) The decode pool's threads could not start and the read
failed with a bare "RuntimeError: can't start new thread": now the samples are decoded in the reading thread (as
``decode_threads=1``), the same samples in the same order, with one warning. (b) A MemoryError while decoding blamed
the member ("000000.cls: decoding its 1 bytes does not fit in memory") where the process's address-space limit was
the cause: under such a limit the message names it, as the CLI's out-of-memory line does.

Real limits in real processes: thread starts fail every time where each thread asks for a 1 GiB stack
(``threading.stack_size``) and the process may map 256 MiB more; a 12000 x 12000 PNG (432 MB of pixels, a few
hundred kB of file) cannot be decoded within those 256 MiB."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.reader import _address_limit, _no_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")

LIMIT = '''
import resource
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), resource.RLIM_INFINITY))
'''
ENV = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1")


def _run(code: str) -> dict:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_decode_threads_that_cannot_start_fall_back_to_decoding_in_place(tmp_path: Path) -> None:
    # a DataLoader's worker processes cannot be tested so: torch's own queue thread fails there first
    from mmdata.testing import make_sample_folder

    make_sample_folder(tmp_path / "raw", n=60, missing=False)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", maxcount=20, progress=False)
    want = [s.key for s in mmdata.open_dataset(tmp_path / "ds", split="train", decode_threads=1)]
    got = _run(f'''
import json, threading, warnings
import torch, mmdata
ds = mmdata.open_dataset({str(tmp_path / "ds")!r}, split="train", decode_threads=2)
{LIMIT}
threading.stack_size(1 << 30)  # every new thread (the decode pool's) needs 1 GiB: over the limit
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    keys = [s.key for s in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)]
print(json.dumps({{"keys": keys, "warn": [str(x.message) for x in w]}}))
''')
    assert got["keys"] == want and len(want) == 60
    assert sum("decode threads could not start (can't start new thread" in w and "(ulimit -v)" in w
               for w in got["warn"]) == 1, got["warn"]


def _big_png_tar(path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (12000, 12000)).save(buf, "PNG")  # 432 MB decoded
    with tarfile.open(path, "w") as t:
        for name, data in (("k0.png", buf.getvalue()), ("k0.cls", b"1"), ("k1.cls", b"0")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_memory_error_under_a_process_limit_names_the_limit(tmp_path: Path, on_error: str) -> None:
    tar = _big_png_tar(tmp_path / "big.tar")
    got = _run(f'''
import json, warnings
import torch, mmdata
warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning for 144 M pixels
ds = mmdata.open_dataset({str(tar)!r}, decode_threads=1, on_error={on_error!r})
{LIMIT}
try:
    keys = [s.key for s in ds]
    print(json.dumps({{"keys": keys, "skipped": ds.skipped, "log": [str(r) for r in getattr(ds, "skip_log", [])]}}))
except mmdata.errors.ShardError as exc:
    print(json.dumps({{"error": str(exc)}}))
''')
    if on_error == "raise":
        msg = got["error"]
        assert msg.startswith(f"shard {tar}: sample 'k0': k0.png: out of memory decoding its "), msg
        assert "MiB (ulimit -v): a limit of this machine, not a fault of the data" in msg, msg
        assert "does not fit in memory" not in msg
    else:  # counted (nothing silently dropped), under its reason; the other sample is read
        assert got["keys"] == ["k1"] and got["skipped"] == {"member does not fit in memory": 1}, got


def test_memory_error_without_a_limit_keeps_the_members_size() -> None:
    if _address_limit() is not None:
        pytest.skip("this test process runs under an address-space limit")
    assert _no_memory("k0.jpg", 18107554) == "k0.jpg: decoding its 18107554 bytes does not fit in memory (MemoryError)"
