"""The optional C inner loops (mmdata.shards._pack) against the pure-Python code they replace."""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmdata.shards import tarwrite
from mmdata.shards.sources import read_many, read_source
from mmdata.shards.mediainfo import CorruptMedia, probe_audio_py, probe_image_py
from mmdata.shards.tarwrite import TarWriter, member_header, write_tar
from mmdata.testing import make_messy_folder, make_sample_folder

_pack = tarwrite._pack
needs_c = pytest.mark.skipif(_pack is None, reason="C inner loops off (mmdata.shards._pack not built, or MMDATA_PURE_PYTHON=1)")
ROOT = Path(__file__).parents[2]


def _python_layout(names: list[str], datas: list[bytes]) -> bytes:
    return b"".join(member_header(n, len(d)) + d + bytes(-len(d) % 512) for n, d in zip(names, datas))


@needs_c
def test_tar_members_matches_python_headers() -> None:
    rng = random.Random(0)
    sizes = [0, 1, 511, 512, 513, 3000, 16383, 16384, 16385, 70000]
    for _ in range(30):
        n = rng.randint(1, 40)
        names = [f"{rng.randint(0, 10**6):06d}-k_{i}.{rng.choice(['png', 'flac', 'txt', 'depth.npy'])}" for i in range(n)]
        datas = [os.urandom(rng.choice(sizes)) for _ in names]
        parts = _pack.tar_members(names, datas, 16384)
        assert b"".join(parts) == _python_layout(names, datas)
        big = [d for d in datas if len(d) >= 16384]
        assert [p for p in parts if any(p is d for d in big)] == big  # large payloads are not copied


@needs_c
@pytest.mark.parametrize("name", ["é.txt", "x" * 100, "../up.txt", "/abs.txt", "a/../b.txt", ""])
def test_tar_members_leaves_pax_and_unsafe_names_to_python(name: str) -> None:
    assert _pack.tar_members(["ok.txt", name], [b"a", b"b"]) is None


@needs_c
@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(members=st.lists(st.tuples(st.text(max_size=110), st.integers(0, 20_000)), max_size=8),
       big=st.integers(-1, 20_000))
def test_tar_members_any_input_gives_python_layout_or_none(members: list[tuple[str, int]], big: int) -> None:
    """Arbitrary names (non-ASCII, surrogates, '..', '/', 100+ bytes, empty) and sizes, any ``big``:
    the C layout is byte-identical to the Python writer's, or None where Python must decide."""
    names, datas = [n for n, _ in members], [bytes([len(n) % 256]) * size for n, size in members]
    parts = _pack.tar_members(names, datas, big)
    if parts is None:
        assert any(not n or not n.isascii() or len(n) >= 100 or n.startswith("/") or ".." in n for n in names)
    else:
        assert b"".join(parts) == _python_layout(names, datas)
        with pytest.raises(TypeError):
            _pack.tar_members([*names, 1], [*datas, b""])
    with pytest.raises(ValueError):
        _pack.tar_members([*names, "x.txt"], datas)


@needs_c
def test_read_files_matches_python(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([0, 1, 100, 65535, 65536, 1 << 20, 300_000]):
        p = tmp_path / f"f{i} é.bin"
        p.write_bytes(os.urandom(size))
        paths.append(str(p))
    odd = os.fsencode(tmp_path) + b"/bad-\xff-name.bin"  # not UTF-8: surrogate-escaped str
    with open(odd, "wb") as f:
        f.write(b"odd")
    paths.append(os.fsdecode(odd))
    os.mkfifo(tmp_path / "fifo")  # must not block, must not be read
    extra = [str(tmp_path / "missing"), str(tmp_path), str(tmp_path / "fifo")]
    for max_size, max_total in ((None, None), (70_000, None), (None, 100_000), (0, 0)):
        got = read_many([*paths, *extra], max_size, max_total)
        assert got[0] == _python_read_many([*paths, *extra], max_size, max_total)[0]
        assert got[1].tobytes() == _python_read_many([*paths, *extra], max_size, max_total)[1].tobytes()
    items, meta = read_many([*paths, *extra])
    for i, p in enumerate(paths):
        data, mtime = read_source(p)
        assert items[i] == data and tuple(meta[2 * i:2 * i + 2]) == (len(data), mtime)
    assert items[-3:] == [errno.ENOENT, errno.EISDIR, errno.EINVAL]
    assert tuple(meta[-6:]) == (-1, errno.ENOENT, -1, errno.EISDIR, -1, errno.EINVAL)
    items, meta = read_many(paths, 70_000)  # over the size limit: EFBIG, with the real size
    assert items[5] == errno.EFBIG and meta[10] == 1 << 20 and items[4] == (Path(paths[4]).read_bytes())
    if os.path.exists("/proc/version"):  # fstat says 0 bytes, the read finds more: both paths read on to EOF
        want = Path("/proc/version").read_bytes()
        assert read_many(["/proc/version"])[0] == _python_read_many(["/proc/version"])[0] == [want]
        # the size limit also holds for what turns up past fstat's size (it bounds memory): EFBIG, size limit + 1
        for reader in (read_many, _python_read_many):
            items, meta = reader(["/proc/version"], 10)
            assert items == [errno.EFBIG] and meta[0] == 11, reader
    items, _ = read_many(paths, None, 100_000)  # the first large file is read, then large ones wait
    assert [type(x).__name__ for x in items[4:7]] == ["bytes", "int", "int"] and items[5] == 0
    assert items[7] == b"odd"  # small files are read whatever the budget


@needs_c
def test_read_files_owns_its_arguments(tmp_path: Path) -> None:
    """A path object that empties the caller's list while it is converted must not disturb the call
    (with borrowed references into the list, the previous module read freed memory: SEGV under ASan)."""
    import gc

    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    paths: list = []

    class Sneaky:
        def __fspath__(self) -> str:
            paths.clear()
            gc.collect()
            return str(tmp_path / "a")

    for _ in range(20):
        paths[:] = [Sneaky(), str(tmp_path / "b"), Sneaky()]
        items, _ = _pack.read_files(paths)
        assert items == [b"A", b"B", b"A"]
    names = ["x.txt", "y.txt"]
    assert b"".join(_pack.tar_members(names, [b"1", b"2"])) == _python_layout(names, [b"1", b"2"])


@needs_c
def test_module_is_abi3_with_multi_phase_init() -> None:
    import sysconfig

    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert _pack.__file__.endswith(".abi3.so"), _pack.__file__
    assert sorted(n for n in dir(_pack) if not n.startswith("_")) == ["probe_audio", "probe_image", "read_files",
                                                                      "tar_members"]
    import importlib.util

    spec = importlib.util.find_spec("mmdata.shards._pack")
    again = importlib.util.module_from_spec(spec)  # multi-phase init: a second, independent module object
    spec.loader.exec_module(again)
    assert again is not _pack and again.probe_image(b"") is None


def _python_read_many(paths: list[str], max_size=None, max_total=None):
    saved = tarwrite._pack
    tarwrite._pack = None
    try:
        return read_many(paths, max_size, max_total)
    finally:
        tarwrite._pack = saved


def test_tar_writer_add_many_equals_add(tmp_path: Path) -> None:
    rng = random.Random(1)
    members = [(f"{i:06d}.bin" if i % 9 else f"{'é' * 60}{i}.bin", os.urandom(rng.choice([0, 5, 600, 20000, 70000])))
               for i in range(400)]
    one = write_tar(tmp_path / "a.tar", members)
    with TarWriter(tmp_path / "b.tar", threaded_hash=False) as w:
        for i in range(0, len(members), 37):
            chunk = members[i:i + 37]
            w.add_many([n for n, _ in chunk], [d for _, d in chunk])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes() and w.summary == one


@pytest.mark.parametrize("kind", ["mixed", "uniform", "columns", "messy"])
def test_shards_identical_with_and_without_c(tmp_path: Path, kind: str) -> None:
    """`mmdata shard` writes the same bytes whether or not the C module is in use: mixed samples
    (odd stems, nested folders, missing modalities), uniform ones (every sample has the same
    members, bulk discovery) and a user's messy folder (JPEG / PNG modes, WAV / FLAC, stereo, a cut
    JPEG, a bad caption, a stray label: the same files left out, the same card)."""
    if kind == "uniform":
        raw = make_sample_folder(tmp_path / "raw", n=150, missing=False)
    elif kind == "messy":
        raw = make_messy_folder(tmp_path / "raw", n=24, sizes=((32, 32), (40, 48)), stray_label=True, corrupt=True).root
    else:
        raw = make_sample_folder(tmp_path / "raw", n=30, odd_stems=True, nested=True)
    layout = "columns" if kind == "columns" else "samples"
    outs = {}
    for flag in ("0", "1"):
        out = tmp_path / flag / "ds"
        env = {**os.environ, "MMDATA_PURE_PYTHON": flag}
        code = (f"import mmdata, mmdata.shards.tarwrite as t; print(t.ACCELERATED); "
                f"mmdata.shard({str(raw)!r}, {str(out)!r}, maxcount={100 if kind == 'uniform' else 7}, "
                f"split='train=0.8,val=0.2', layout={layout!r}, progress=False)")
        res = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        outs[flag] = ({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()},
                      res.stdout.strip())
    import importlib.util

    built = importlib.util.find_spec("mmdata.shards._pack") is not None
    assert outs["1"][1] == "False" and outs["0"][1] == str(built)
    assert outs["0"][0] == outs["1"][0] and len(outs["0"][0]) > 4


def test_accelerator_is_built_where_a_compiler_exists() -> None:
    """setup.py builds _pack as optional: make a silently failed build visible where it should work."""
    import shutil
    import sysconfig

    if shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") is None:
        pytest.skip("no C compiler on this machine: the pure-Python path is in use")
    if os.environ.get("MMDATA_PURE_PYTHON") == "1":
        pytest.skip("MMDATA_PURE_PYTHON=1")
    assert _pack is not None, "mmdata.shards._pack did not build; re-run `pip install -e .` and read its output"




# ---- the C media parsers against the Python ones: seeds of every kind, then mutated -----------------


def _seeds() -> list[tuple[str, bytes]]:
    import io

    import numpy as np
    import soundfile as sf
    from PIL import Image

    arr = (np.arange(40 * 56 * 3) % 253).astype(np.uint8).reshape(40, 56, 3)
    out = []
    for mode in ("RGB", "L", "P", "RGBA", "LA", "1", "I;16"):
        buf = io.BytesIO()
        Image.fromarray(arr).convert("L" if mode in ("1", "I;16") else "RGB").convert(mode).save(buf, "PNG")
        out.append(("image", buf.getvalue()))
    for mode, kw in (("RGB", {}), ("L", {}), ("CMYK", {}), ("RGB", {"progressive": True})):
        buf = io.BytesIO()
        Image.fromarray(arr).convert(mode).save(buf, "JPEG", quality=80, **kw)
        out.append(("image", buf.getvalue()))
    x = (0.3 * np.sin(np.arange(20000) * 0.07) + 0.05 * np.cos(np.arange(20000) ** 1.3)).astype(np.float32)
    for fmt, sub, data in (("FLAC", "PCM_16", x), ("FLAC", "PCM_24", np.stack([x, -x], 1)), ("FLAC", "PCM_16", x[:700]),
                           ("WAV", "PCM_16", x[:3000]), ("WAV", "FLOAT", np.stack([x[:900]] * 3, 1)),
                           ("WAV", "ULAW", x[:500])):
        buf = io.BytesIO()
        sf.write(buf, data, 16000, format=fmt, subtype=sub)
        out.append(("audio", buf.getvalue()))
    return out


_SEED_CACHE: list[tuple[str, bytes]] = []


def _seed(i: int) -> tuple[str, bytes]:
    if not _SEED_CACHE:
        _SEED_CACHE.extend(_seeds())
    return _SEED_CACHE[i % len(_SEED_CACHE)]


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: cut, flip a bit, set a byte, insert, delete, a 32-bit extreme."""
    b = bytearray(data)
    for kind, pos, value in ops:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            del b[i:]
        elif kind == 1:
            b[i] ^= 1 << (value % 8)
        elif kind == 2:
            b[i] = value % 256
        elif kind == 3:
            b[i:i] = bytes([value % 256]) * (1 + value % 7)
        elif kind == 4:
            del b[i:i + 1 + value % 64]
        else:
            b[i:i + 4] = (0xFFFFFFFF if value % 2 else 0x80000000 + value).to_bytes(4, "big")
    return bytes(b)


def _py_probe(kind: str, data: bytes):
    try:
        return (probe_image_py if kind == "image" else probe_audio_py)(data)
    except CorruptMedia:
        return None


@needs_c
def test_c_parsers_agree_with_python_on_the_seeds() -> None:
    for i in range(len(_seeds())):
        kind, data = _seed(i)
        c = (_pack.probe_image if kind == "image" else _pack.probe_audio)(data)
        assert c is not None and c == _py_probe(kind, data), (i, c)


FUZZ_CASES = 600  # per run; derandomised so CI runs the same cases (docs/bad-input-shard.md)


@needs_c
@settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 1000), ops=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 20),
                                                          st.integers(0, 1 << 16)), min_size=1, max_size=3))
def test_c_parsers_agree_with_python_on_mutated_media(seed: int, ops: list[tuple[int, int, int]]) -> None:
    """Where the C parser accepts a damaged file it returns exactly what the Python parser returns
    (never a different verdict, so the C and pure-Python paths write the same shards); the Python
    parser fails only with CorruptMedia; neither hangs or crashes."""
    kind, data = _seed(seed)
    bad = _mutate(data, ops)
    c = (_pack.probe_image if kind == "image" else _pack.probe_audio)(bad)
    py = _py_probe(kind, bad)
    if c is not None:
        assert c == py


def test_the_hashing_thread_starts_with_its_pool_registered_for_the_exit_join() -> None:
    """`mmdata augment` hung after SIGTERM (once in ~16 tries): the signal's exception landed inside the
    hash pool's first submit(), after its worker started and before it was registered for the exit-time
    join; the interpreter then waited for that worker forever. The worker now starts when the pool is
    made, with SIGINT / SIGTERM held back, and is registered by then."""
    import concurrent.futures.thread as cft
    import signal

    from mmdata.shards import tarwrite

    tarwrite._HASH_POOL = None
    pool = tarwrite._hash_pool()
    assert len(pool._threads) == 1 and all(t in cft._threads_queues for t in pool._threads)
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the mask is restored
