"""The optional C inner loops (mmdata.shards._pack) against the pure-Python code they replace."""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.shards import tarwrite
from mmdata.shards.sources import read_many, read_source
from mmdata.shards.mediainfo import audio_info, image_size
from mmdata.shards.tarwrite import TarWriter, member_header, write_tar
from mmdata.testing import make_sample_folder

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
def test_read_files_matches_python(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([0, 1, 100, 65535, 65536, 1 << 20]):
        p = tmp_path / f"f{i} é.bin"
        p.write_bytes(os.urandom(size))
        paths.append(str(p))
    odd = os.fsencode(tmp_path) + b"/bad-\xff-name.bin"  # not UTF-8: surrogate-escaped str
    with open(odd, "wb") as f:
        f.write(b"odd")
    paths.append(os.fsdecode(odd))
    datas, meta = _pack.read_files([*paths, str(tmp_path / "missing"), str(tmp_path)])
    for i, p in enumerate(paths):
        data, mtime = read_source(p)
        assert datas[i] == data and meta[16 * i:16 * i + 16] == len(data).to_bytes(8, sys.byteorder, signed=True) + mtime.to_bytes(8, sys.byteorder, signed=True)
    assert datas[-2:] == [None, None]
    py_datas, py_meta = _python_read_many([*paths, str(tmp_path / "missing"), str(tmp_path)])
    assert py_datas == datas and py_meta.tobytes() == meta
    assert tuple(py_meta[-4:]) == (-1, errno.ENOENT, -1, errno.EISDIR)


def _python_read_many(paths: list[str]):
    saved = tarwrite._pack
    tarwrite._pack = None
    try:
        return read_many(paths)
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


@pytest.mark.parametrize("kind", ["mixed", "uniform", "columns"])
def test_shards_identical_with_and_without_c(tmp_path: Path, kind: str) -> None:
    """`mmdata shard` writes the same bytes whether or not the C module is in use: mixed samples
    (odd stems, nested folders, missing modalities) and uniform ones (every sample has the same
    members, bulk discovery)."""
    if kind == "uniform":
        raw = make_sample_folder(tmp_path / "raw", n=150, missing=False)
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


@needs_c
def test_list_dir_matches_scandir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.txt", "café 1.flac"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    (tmp_path / "broken").symlink_to(tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo")
    with os.scandir(tmp_path) as it:
        entries = list(it)
    expected = (sorted(e.name for e in entries if e.is_file()), sorted(e.name for e in entries if e.is_dir()))
    assert _pack.list_dir(str(tmp_path)) == expected == (["a.txt", "b.png", "café 1.flac", "link.txt"], ["dirlink", "sub"])
    with pytest.raises(FileNotFoundError):
        _pack.list_dir(str(tmp_path / "missing"))


@needs_c
def test_sample_stats_matches_mediainfo() -> None:
    from mmdata.testing import audio_bytes, image_bytes

    for i in range(6):
        for img in (image_bytes(i, fmt="png"), image_bytes(i, fmt="jpg", size=(30 + i, 41))):
            for aud in (audio_bytes(i, fmt="flac"), audio_bytes(i, fmt="wav", seconds=0.3 + i / 7)):
                text = f"caption {i}".encode()
                h, w, seconds, rate, chars = _pack.sample_stats("ait", [aud, img, text])
                assert (h, w) == image_size(img) and (seconds, rate) == audio_info(aud) and chars == len(text)
    assert _pack.sample_stats("-t", [b"x", b"d\xc3\xa9j\xc3\xa0"]) is None  # non-ASCII text: Python decides
    assert _pack.sample_stats("i", [b"\x89PNG\r\n\x1a\n short"]) is None  # truncated: Python raises
    assert _pack.sample_stats("a", [b"RIFF\x00\x00\x00\x00WAVEfmt "]) is None
    assert _pack.sample_stats("-", [b"anything"]) == (None, None, None, None, None)


@needs_c
def test_assemble_matches_the_python_loop_or_declines() -> None:
    from mmdata.shards.writer import _layout
    from mmdata.testing import audio_bytes, image_bytes

    recs = [(f"k{i}", f"k{i}", i % 3, {}, ("cls", "flac", "png", "txt"), (str(i % 3).encode(), f"a{i}", f"i{i}", f"t{i}"))
            for i in range(5)]
    got = [x for i in range(5) for x in (audio_bytes(i, fmt="wav"), image_bytes(i), f"caption {i}".encode())]
    names, datas, sizes, counts, stats = _pack.assemble(recs, [_layout(r[4]) for r in recs], got)
    assert names[:4] == ["k0.cls", "k0.flac", "k0.png", "k0.txt"] and counts == [4] * 5
    assert datas[4:8] == [b"1", *got[3:6]] and sizes == [len(d) for d in datas]
    sec, rate = audio_info(got[0])
    assert stats[0] == (*image_size(got[1]), round(sec, 6), rate, len(b"caption 0"))
    lays = [_layout(r[4]) for r in recs]
    assert _pack.assemble(recs, lays, [*got[:-1], None]) is None  # an unreadable file: Python decides
    assert _pack.assemble(recs, lays, [*got[:-1], "é".encode()]) is None  # non-ASCII text: Python counts
