"""open_dataset / verify on hostile shards (issue #11, read side): no hang, no stray exception, no
silent loss — every problem is a ShardError naming the shard (raise) or a count per sample lost (skip)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.verify import verify
from mmdata.testing import make_sample_folder
from mmdata.testing.hostile import (
    end_of_archive,
    flip_bit,
    gnu_longname_member,
    gzip_bomb,
    gzip_of,
    header_offsets,
    member,
    pax_member,
    pax_record,
    tar_of,
    ustar_header,
)

GOOD = [(f"k{i}", {"txt": f"text {i}".encode(), "cls": str(i % 3).encode()}) for i in range(6)]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (the PAX length-0 record used to loop forever)."""
    def boom(*_: object) -> None:
        raise TimeoutError(f"did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _good(keys: range) -> bytes:
    return b"".join(member(f"{k}.{e}".encode(), d) for k, ms in (GOOD[i] for i in keys) for e, d in ms.items())


def _read(path: Path, **kw: object) -> tuple[list[str], dict[str, int], object]:
    with time_limit(20):
        d = mmdata.open_dataset(path, on_error="skip", **kw)
        keys = [s.key for s in d]
    return keys, d.skipped, d


def _raises(path: Path, **kw: object) -> str:
    with time_limit(20), pytest.raises(ShardError) as info:
        list(mmdata.open_dataset(path, **kw))
    assert path.name in str(info.value)
    return str(info.value)


# ---- 1. the PAX record of length 0 (used to hang) ----------------------------------------------------
def test_pax_record_of_length_zero_neither_hangs_nor_loses_other_samples(tmp_path: Path) -> None:
    data = _good(range(2)) + pax_member(b"0 path=k2.cls\n", b"k2.cls", b"2") + _good(range(3, 6)) + end_of_archive()
    p = _write(tmp_path, "pax0.tar", data)
    assert "PAX" in _raises(p)
    keys, skipped, _ = _read(p)
    assert keys == ["k0", "k1", "k3", "k4", "k5"] and skipped == {"corrupt tar header": 1}


def test_verify_returns_on_pax_length_zero(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=2), ds, progress=False)
    shard = ds / "train-000000.tar"
    shard.write_bytes(pax_member(b"0 path=x.cls\n", b"x.cls", b"1") + end_of_archive())
    with time_limit(20):
        rep = verify(ds)
    assert not rep["ok"] and any(p["problem"] == "unreadable" and "PAX" in p["found"] for p in rep["problems"])


# ---- 3. tracebacks that escaped on_error="skip" --------------------------------------------------------
BAD_ONE = {
    "non-UTF-8 member name": (member(b"k2\xff.txt", b"x"), "non-UTF-8 member name"),
    "non-numeric PAX length": (pax_member(b"xx path=k2.txt\n", b"k2.txt", b"x"), "corrupt tar header"),
    "non-UTF-8 PAX path": (pax_member(pax_record(b"path", b"k2\xff.txt"), b"k2.txt", b"x"), "non-UTF-8 member name"),
    "non-UTF-8 GNU long name": (gnu_longname_member(b"k2\xfe.txt", b"x"), "non-UTF-8 member name"),
    "non-octal size field": (ustar_header(b"k2.txt", 1, size_field=b"zzzzzzzzzzz\0") + b"x".ljust(512, b"\0"),
                             "corrupt tar header"),
    "checksum mismatch": (ustar_header(b"k2.txt", 1, checksum=False) + b"x".ljust(512, b"\0"), "corrupt tar header"),
}


@pytest.mark.parametrize("kind", sorted(BAD_ONE))
def test_bad_member_costs_exactly_its_sample(tmp_path: Path, kind: str) -> None:
    bad, reason = BAD_ONE[kind]
    p = _write(tmp_path, "bad.tar", _good(range(2)) + bad + _good(range(3, 6)) + end_of_archive())
    _raises(p)
    keys, skipped, d = _read(p)
    assert keys == ["k0", "k1", "k3", "k4", "k5"], kind  # the samples before and after survive
    assert skipped == {reason: 1}
    assert d.errors[0][0] == str(p)


@pytest.mark.parametrize("kind", ["not a tar", "empty file", "corrupt gzip", "truncated gzip"])
def test_unreadable_files_raise_or_count(tmp_path: Path, kind: str) -> None:
    clean = _good(range(6)) + end_of_archive()
    data, name = {
        "not a tar": (b"this is not a tar file at all\n" * 40, "x.tar"),
        "empty file": (b"", "x.tar"),
        "corrupt gzip": (b"\x1f\x8b\x08\x00garbage" + bytes(600), "x.tar.gz"),
        "truncated gzip": (gzip_of(clean)[:-12], "x.tar.gz"),  # the trailer and the last deflate bytes
    }[kind]
    p = _write(tmp_path, name, data)
    _raises(p)
    keys, skipped, d = _read(p)
    if kind == "truncated gzip":  # everything before the cut is kept; the sample being read is counted
        assert keys == ["k0", "k1", "k2", "k3", "k4"] and skipped == {"corrupt compressed stream": 1}
    else:  # nothing identifiable: one unreadable region (a bare shard has no index to count from)
        assert keys == [] and skipped == {"unreadable shard region": 1}
    assert d.errors and str(p) in d.errors[0][2]


# ---- 4. bounded memory ---------------------------------------------------------------------------------
def test_member_size_limit_names_shard_key_and_size(tmp_path: Path) -> None:
    p = _write(tmp_path, "big.tar", _good(range(2)) + member(b"k2.txt", b"y" * 5000) + _good(range(3, 6)) + end_of_archive())
    msg = _raises(p, max_member_bytes=4096)
    assert "'k2.txt'" in msg and "5000 bytes" in msg and "max_member_bytes=4096" in msg
    keys, skipped, _ = _read(p, max_member_bytes=4096)
    assert keys == ["k0", "k1", "k3", "k4", "k5"] and skipped == {"member too large": 1}
    assert len(_read(p)[0]) == 6  # the default limit (1 GiB) admits it


def test_gzip_bomb_under_a_memory_limit(tmp_path: Path) -> None:
    # A member declaring 2 GiB of zeros (~1000:1 in gzip): the reader used to allocate it whole (a 2 MB
    # .tar.gz took 2.3 GB RSS). In a subprocess limited to 1 GiB of address space it must end in a
    # report naming the member and its size, not a MemoryError. The second shard holds 192 MiB for
    # real, under the default limit but over a lowered one: skipped in bounded chunks.
    declared = _write(tmp_path, "bomb.tar.gz", gzip_bomb(b"k0.txt", 2 << 30, present=64 << 20))
    real = _write(tmp_path, "real.tar.gz", gzip_bomb(b"k0.txt", 192 << 20))
    script = textwrap.dedent(f"""
        import resource
        from mmdata.shards.tario import iter_samples
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        got = list(iter_samples({str(declared)!r}))
        assert got[0][0] == "k0" and got[0][2][0] == "member too large", got
        assert "2147483648 bytes" in got[0][2][1] and "bomb.tar.gz" in got[0][2][1], got
        got = list(iter_samples({str(real)!r}, max_member_bytes=16 << 20))
        assert [(k, p[0]) for k, _, p in got] == [("k0", "member too large")], got
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# ---- 5. silent loss / duplication ------------------------------------------------------------------------
def test_non_adjacent_repeated_key_is_reported_not_yielded_twice(tmp_path: Path) -> None:
    data = _good(range(3)) + member(b"k0.json", b"{}") + _good(range(3, 4)) + end_of_archive()
    p = _write(tmp_path, "rep.tar", data)
    assert "'k0' appears again" in _raises(p)
    keys, skipped, _ = _read(p)
    assert keys == ["k0", "k1", "k2", "k3"] and skipped == {"repeated key": 1}


def test_repeated_member_inside_a_sample_is_reported(tmp_path: Path) -> None:
    data = _good(range(2)) + member(b"k2.txt", b"first") + member(b"k2.txt", b"second") + _good(range(3, 4)) + end_of_archive()
    p = _write(tmp_path, "dup.tar", data)
    assert "member .txt twice" in _raises(p)
    keys, skipped, _ = _read(p)
    assert keys == ["k0", "k1", "k3"] and skipped == {"repeated member": 1}


def test_path_traversal_costs_only_its_samples(tmp_path: Path) -> None:
    data = (_good(range(2)) + member(b"../k2.txt", b"x") + _good(range(3, 5)) + member(b"/abs/k9.txt", b"x")
            + _good(range(5, 6)) + end_of_archive())
    p = _write(tmp_path, "esc.tar", data)
    assert "escaping path" in _raises(p)
    keys, skipped, _ = _read(p)
    assert keys == ["k0", "k1", "k3", "k4", "k5"] and skipped == {"unsafe member path": 2}


def test_complete_sample_before_a_corrupt_header_is_kept(tmp_path: Path) -> None:
    clean = _good(range(6)) + end_of_archive()
    off = dict((n, o) for o, n in header_offsets(clean))[b"k3.txt"]
    p = _write(tmp_path, "flip.tar", flip_bit(clean, off + 10, 3))  # inside k3.txt's name field
    keys, skipped, _ = _read(p)
    assert keys == ["k0", "k1", "k2", "k4", "k5"] and sum(skipped.values()) == 1


def test_column_layout_misalignment_counts_every_lost_sample(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8, missing=False), ds, layout="columns", progress=False)
    text = ds / "text" / "train-000000.tar"
    members = []
    import tarfile

    with tarfile.open(text) as tf:
        members = [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]
    members[2], members[5] = members[5], members[2]  # two samples' text swapped: out of order
    text.write_bytes(tar_of([(n.split(".")[0], {n.split(".", 1)[1]: d}) for n, d in members]))
    with pytest.raises(ShardError, match="misaligned|out of order"):
        list(mmdata.open_dataset(ds))
    d = mmdata.open_dataset(ds, on_error="skip")
    keys = [s.key for s in d]
    assert len(keys) + sum(d.skipped.values()) == 8 and set(d.skipped) == {"column series misaligned"}
    assert sorted(k for _, k, _ in d.errors) == sorted(set(f"{i:06d}" for i in range(8)) - set(keys))


# ---- 6. minor -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["PTH", "Pickle", "pKl"])
def test_pickle_extensions_refused_in_any_case_even_raw(tmp_path: Path, ext: str) -> None:
    p = _write(tmp_path, "pk.tar", member(f"k1.{ext}".encode(), b"\x80\x04K\x01.") + _good(range(2, 3)) + end_of_archive())
    for decode in (True, False):
        with pytest.raises(ShardError, match="pickle"):
            list(mmdata.open_dataset(p, decode=decode))
        keys, skipped, _ = _read(p, decode=decode)
        assert keys == ["k2"] and skipped == {"pickle member refused": 1}


def test_verify_deep_decodes_every_member(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False), ds, progress=False)
    shard = ds / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    off = dict((n, o) for o, n in header_offsets(bytes(data)))[b"000002.png"]
    data[off + 512 + 40 : off + 512 + 80] = bytes(40)  # PNG body damaged; the tar is intact
    shard.write_bytes(bytes(data))
    shallow = verify(ds)
    assert [p["problem"] for p in shallow["problems"]] == ["sha256 mismatch"]
    deep = verify(ds, deep=True)
    bad = [p for p in deep["problems"] if p["problem"] == "member does not decode"]
    assert [(p["shard"], p["expected"]) for p in bad] == [("train-000000.tar", "000002.png")]
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["verify", str(ds), "--deep", "--json"])
    assert res.exit_code == 1 and "000002.png" in res.output


def test_truncated_dataset_shard_at_a_member_boundary(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8, missing=False), ds, maxcount=4, progress=False)
    shard = ds / "train-000000.tar"
    data = shard.read_bytes()
    heads = header_offsets(data)
    cut = next(o for o, n in heads if n.startswith(b"000002."))  # right after sample 000001's last member
    shard.write_bytes(data[:cut])
    d = mmdata.open_dataset(ds, on_error="skip")
    keys = [s.key for s in d]
    # 000001 is complete per the index, so it is kept; 000002 and 000003 are gone and counted
    assert keys == ["000000", "000001", "000004", "000005", "000006", "000007"]
    assert sum(d.skipped.values()) == 2 and {k for _, k, _ in d.errors} == {"000002", "000003"}


# ---- QA round 2: fields read twice, members with no sample, a lost tail --------------------------------
def _two_fields() -> dict[str, tuple[bytes, bytes, bytes, bytes]]:
    from mmdata.testing import audio_bytes, image_bytes

    return {
        "png+jpg": (b"png", image_bytes(1, (8, 8)), b"jpg", image_bytes(2, (16, 16), fmt="jpeg")),
        "flac+wav": (b"flac", audio_bytes(1), b"wav", audio_bytes(2, fmt="wav", seconds=0.5)),
        "cls+label": (b"cls", b"1", b"label", b"2"),
        "txt+TXT": (b"txt", b"lower", b"TXT", b"UPPER"),
    }


@pytest.mark.parametrize("case", ["png+jpg", "flac+wav", "cls+label", "txt+TXT"])
@pytest.mark.parametrize("decode", [True, False])
def test_two_members_of_one_field_are_a_repeated_member(tmp_path: Path, case: str, decode: bool) -> None:
    a, da, b, db = _two_fields()[case]
    data = (_good(range(1)) + member(b"k1." + a, da) + member(b"k1." + b, db) + _good(range(2, 3)) + end_of_archive())
    p = _write(tmp_path, "twice.tar", data)
    msg = _raises(p, decode=decode)
    assert "'k1'" in msg and f".{a.decode()}" in msg and f".{b.decode()}" in msg, msg
    keys, skipped, d = _read(p, decode=decode)
    assert keys == ["k0", "k2"] and skipped == {"repeated member": 1}
    shard, key, message = d.errors[0]
    assert shard == str(p) and key == "k1" and f".{a.decode()}" in message and f".{b.decode()}" in message


@pytest.mark.parametrize("name", [b"k1", b".txt", b"..\\..\\k1.txt", b"k1."])
@pytest.mark.parametrize("decode", [True, False])
def test_member_without_a_key_or_extension_is_counted_not_dropped(tmp_path: Path, name: bytes, decode: bool) -> None:
    data = _good(range(2)) + member(name, b"x") + _good(range(2, 4)) + end_of_archive()
    p = _write(tmp_path, "nokey.tar", data)
    msg = _raises(p, decode=decode)
    assert repr(name.decode()) in msg and "key or extension" in msg, msg
    with time_limit(20):
        d = mmdata.open_dataset(p, on_error="skip", decode=decode)
        samples = list(d)
    assert [s.key for s in samples] == ["k0", "k1", "k2", "k3"]  # a member of no sample costs no sample
    assert all("" not in s.fields for s in samples)
    assert d.skipped == {"member without a key or extension": 1}
    assert d.errors[0][0] == str(p) and repr(name.decode()) in d.errors[0][2]


def test_lost_tail_after_an_oversized_member_is_counted(tmp_path: Path) -> None:
    # k1.txt declares 8 GiB in a 3 KB file: k2, stored after its header, can never be reached
    data = _good(range(1)) + ustar_header(b"k1.txt", 8 << 30) + _good(range(2, 3)) + end_of_archive()
    p = _write(tmp_path, "huge.tar", data)
    assert "declares" in _raises(p)
    keys, skipped, d = _read(p)
    assert keys == ["k0"]
    assert skipped == {"member too large": 1, "unreadable shard region": 1}
    assert any("truncated" in m and str(p) in m for _, _, m in d.errors), d.errors
