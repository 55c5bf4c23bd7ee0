"""What the reader counts and how much memory a member costs (QA pass on the read side).

* a member is read into one buffer: the peak is about one member, not two; a MemoryError while
  reading (or decoding) a member is a ShardError naming shard and member, or a counted skip;
* after ``load_state_dict`` the resumed iteration counts only what it read itself (the skips the
  saved run had counted before its checkpoint are not counted again), also through ``mmdata.loader``;
* reasons say what happened: a column series shard from elsewhere names the key it holds, two
  members giving one field are a ``repeated member`` whether or not members are decoded, and a
  missing or cut shard file is counted alike in both layouts (``truncated or corrupt shard``).
"""

from __future__ import annotations

import gzip
import io
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import reader as reader_mod
from mmdata.shards import tario
from mmdata.testing import make_sample_folder
from mmdata.testing.hostile import end_of_archive, header_offsets, member, tar_of, ustar_header

MiB = 1 << 20


def _txt(k: str) -> bytes:
    return member(f"{k}.txt".encode(), f"text {k}".encode()) + member(f"{k}.cls".encode(), b"1")


def _with_big(tmp: Path, name: str, size: int) -> Path:
    """k0, k1, then k2 with a ``size``-byte .bin member, then k3."""
    data = _txt("k0") + _txt("k1") + member(b"k2.bin", b"\x01" * size) + _txt("k2") + _txt("k3") + end_of_archive()
    p = tmp / name
    p.write_bytes(gzip.compress(data, 1) if name.endswith(".gz") else data)
    return p


# ---- 1. one copy of a member in memory ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["big.tar", "big.tar.gz"])
def test_a_member_larger_than_a_chunk_is_held_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # chunks of 1 MiB so that a 12 MiB member takes the many-chunk path (the real chunk is 16 MiB);
    # a list of chunks joined at the end held the member twice
    monkeypatch.setattr(tario, "_CHUNK", 1 * MiB)
    size = 12 * MiB
    p = _with_big(tmp_path, name, size)
    tracemalloc.start()
    try:
        got = {k: raw for k, raw, problem in tario.iter_samples(str(p)) if problem is None}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got["k2"]["bin"] == b"\x01" * size and isinstance(got["k2"]["bin"], bytes)
    assert sorted(got) == ["k0", "k1", "k2", "k3"]
    assert peak < 1.5 * size, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB member"


def test_a_member_declaring_more_than_the_file_holds_costs_what_it_holds(tmp_path: Path) -> None:
    # a size field that lies (1 GiB declared, 4 MiB present): no buffer of the declared size
    p = tmp_path / "lie.tar"
    p.write_bytes(_txt("k0") + ustar_header(b"k1.bin", 1 << 30) + b"\x02" * (4 * MiB))
    tracemalloc.start()
    try:
        got = list(tario.iter_samples(str(p)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got[0][0] == "k0" and got[1][0] == "k1" and got[1][2][0] == "truncated shard"
    assert peak < 16 * MiB


class _NoRoom(io.RawIOBase):
    """A shard stream in a process short of memory: any read of ``limit`` bytes or more fails the way
    an allocation of that size does (MemoryError), smaller reads work."""

    def __init__(self, path: str, limit: int, seekable: bool) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.limit = limit
        self._seekable = seekable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n >= self.limit:
            raise MemoryError
        return self.f.read(n)

    def readinto(self, b: Any) -> int:
        if len(b) >= self.limit:
            raise MemoryError
        return self.f.readinto(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def close(self) -> None:
        self.f.close()
        super().close()


@pytest.mark.parametrize("seekable", [True, False])
def test_memory_error_reading_a_member_is_a_shard_error_or_a_counted_skip(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seekable: bool) -> None:
    p = _with_big(tmp_path, "oom.tar", 2 * MiB)
    # a read of the whole member fails, the small reads that pass over it work
    monkeypatch.setattr(tario, "open_shard", lambda url, storage_options=None: _NoRoom(url, 2 * MiB, seekable))
    with pytest.raises(ShardError) as err:
        list(mmdata.open_dataset(p, decode_threads=1))
    assert "oom.tar" in str(err.value) and "'k2.bin'" in str(err.value) and "memory" in str(err.value)
    for decode in (True, False):
        d = mmdata.open_dataset(p, on_error="skip", decode=decode, decode_threads=1)
        assert [s.key for s in d] == ["k0", "k1", "k3"]  # the shard goes on after the member
        assert d.skipped == {"member does not fit in memory": 1}
        assert d.errors[0][1] == "k2" and "'k2.bin'" in d.errors[0][2]


def test_memory_error_decoding_a_member_is_a_counted_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "dec.tar"
    p.write_bytes(_txt("k0") + _txt("k1") + _txt("k2") + end_of_archive())
    real = reader_mod.decode_member

    def short_of_memory(ext: str, data: bytes, **kw: Any) -> Any:
        if data == b"text k1":
            raise MemoryError
        return real(ext, data, **kw)

    monkeypatch.setattr(reader_mod, "decode_member", short_of_memory)
    with pytest.raises(ShardError, match=r"dec\.tar.*'k1'.*memory"):
        list(mmdata.open_dataset(p, decode_threads=1))
    d = mmdata.open_dataset(p, on_error="skip", decode_threads=1)
    assert [s.key for s in d] == ["k0", "k2"] and d.skipped == {"member does not fit in memory": 1}


class _Tight:
    """A shard mapping in a process short of memory: copying one member out of it fails."""

    def __init__(self, buf: Any, bad: int) -> None:
        self.buf, self.bad = buf, bad

    def __getitem__(self, span: slice) -> bytes:
        if span.start == self.bad:
            raise MemoryError
        return self.buf[span]

    def close(self) -> None:
        self.buf.close()


@pytest.mark.parametrize("decode", [True, False])
def test_memory_error_on_the_mapped_path_falls_back_to_the_streaming_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decode: bool) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "ds", maxcount=4, progress=False)
    ref = [s.key for s in mmdata.open_dataset(tmp_path / "ds", decode=decode)]
    real = reader_mod.indexed_members

    def tight(*args: Any, **kw: Any) -> Any:
        got = real(*args, **kw)
        if got is None:
            return None
        buf, starts, ends = got
        return _Tight(buf, starts[len(starts) // 2]), starts, ends  # a member in the middle of each shard

    monkeypatch.setattr(reader_mod, "indexed_members", tight)
    d = mmdata.open_dataset(tmp_path / "ds", decode=decode, decode_threads=1)
    assert [s.key for s in d] == ref and len(ref) == 8  # each sample once, in order: the parser read the rest
    assert d.skipped == {}


# ---- 2. resume counts only what it reads ------------------------------------------------------------
@pytest.fixture(scope="module")
def cut_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 samples in 4 shards; train-000001.tar cut to half its length + 100 bytes (QA's T_trunc)."""
    root = tmp_path_factory.mktemp("cut")
    mmdata.shard(make_sample_folder(root / "raw", n=16), root / "ds", maxcount=4, progress=False)
    shard = root / "ds" / "train-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])
    return root / "ds"


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_resumed_run_counts_the_epochs_losses_once(cut_ds: Path, decode: bool, shuffle: bool) -> None:
    """A resume passes over what the saved run consumed unread; its counts carry on from the saved state's,
    so the resumed run ends with the epoch's counts (never a loss twice), its ``errors`` with its own."""
    def mk() -> Any:
        return mmdata.open_dataset(cut_ds, on_error="skip", shuffle=shuffle, decode=decode, buffer_size=4,
                                   decode_threads=1)

    full = mk()
    keys = [s.key for s in full]
    whole = dict(full.skipped)
    assert sum(whole.values()) > 0 and len(keys) + sum(whole.values()) == 16
    sides = set()  # whether the cut came after the damage was met (met early when the reader plans its shards)
    for cut in range(1, len(keys)):
        d = mk()
        it = iter(d)
        got = [next(it).key for _ in range(cut)]
        before = dict(d.skipped)
        state = d.state_dict()
        r = mk()
        r.load_state_dict(state)
        assert state.get("skipped", {0: {}})[0] == before
        rest = [s.key for s in r]
        assert got + rest == keys
        # the saved run counted `before`; the resumed one the rest on top, never the same loss twice
        assert r.skipped == whole, (cut, before, r.skipped)
        assert r.errors == full.errors  # the details too: the state carries those before the cut
        sides.add(bool(before))
    assert True in sides  # a resume started from the saved counts


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_resumed_loader_counts_the_epochs_losses_once(cut_ds: Path, num_workers: int) -> None:
    def mk() -> Any:
        return mmdata.loader(cut_ds, 2, split="train", shuffle=False, num_workers=num_workers, on_error="skip")

    full = mk()
    n = sum(1 for _ in full)
    whole = full.skipped
    assert sum(whole.values()) > 0
    # resumed after every batch: the damaged shard lies before the checkpoint, nothing to count again;
    # the state's counts are the epoch's
    a = mk()
    batches = []
    for batch in a:
        batches.append(batch)
        state = a.state_dict()  # at the last batch (after the pass: the next epoch's start)
    assert len(batches) == n
    b = mk()
    b.load_state_dict(state)
    assert list(b) == [] and b.skipped == whole
    # resumed after the first batch: the damage lies ahead, counted once by the resumed run
    a = mk()
    it = iter(a)
    next(it)
    state = a.state_dict()
    del it
    b = mk()
    b.load_state_dict(state)
    assert sum(1 for _ in b) == n - 1 and b.skipped == whole


# ---- 3. reasons ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def columns_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("columns")
    mmdata.shard(make_sample_folder(root / "raw", n=12, missing=False), root / "ds", maxcount=4, layout="columns",
                 progress=False)
    return root / "ds"


def test_series_shard_from_another_shard_names_the_keys_it_holds(tmp_path: Path, columns_ds: Path) -> None:
    ds = tmp_path / "ds"
    shutil.copytree(columns_ds, ds)
    shutil.copy(ds / "label" / "train-000002.tar", ds / "label" / "train-000001.tar")
    with pytest.raises(ShardError) as err:
        list(mmdata.open_dataset(ds))
    assert "found '000008' where '000004' was expected" in str(err.value), str(err.value)
    d = mmdata.open_dataset(ds, on_error="skip")
    keys = [s.key for s in d]
    assert keys == [f"{i:06d}" for i in (0, 1, 2, 3, 8, 9, 10, 11)]
    assert d.skipped == {"column series misaligned": 4}
    msgs = [m for _, _, m in d.errors]
    assert not any("the end of the series" in m for m in msgs), msgs
    for i, m in enumerate(msgs):
        assert f"found '{8 + i:06d}' where '{4 + i:06d}' was expected" in m, m


def test_series_stray_member_of_another_shard_costs_nothing(tmp_path: Path, columns_ds: Path) -> None:
    # a stray sample from elsewhere in front of the right ones: still dropped, every sample delivered
    ds = tmp_path / "ds"
    shutil.copytree(columns_ds, ds)
    import tarfile

    def members(p: Path) -> list[tuple[str, bytes]]:
        with tarfile.open(p) as tf:
            return [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]

    ms = members(ds / "text" / "train-000002.tar")[:1] + members(ds / "text" / "train-000001.tar")
    (ds / "text" / "train-000001.tar").write_bytes(tar_of([(n.split(".")[0], {n.split(".", 1)[1]: b}) for n, b in ms]))
    d = mmdata.open_dataset(ds, on_error="skip")
    assert len(list(d)) == 12 and d.skipped == {}


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_two_members_for_one_field_are_a_repeated_member_decoded_or_not(tmp_path: Path) -> None:
    # g4.png is garbage and g4.jpg a valid image: which one is the image is the question, not the
    # garbage (decode=True used to report `corrupt image`, decode=False `repeated member`)
    p = tmp_path / "twoimg.tar"
    p.write_bytes(tar_of([("g3", {"txt": b"ok", "cls": b"1"}), ("g4", {"png": b"notpng!", "jpg": _jpeg()}),
                          ("g5", {"txt": b"ok"})]))
    for decode in (True, False):
        with pytest.raises(ShardError, match="'g4'.*both give field 'image'"):
            list(mmdata.open_dataset(p, decode=decode))
        d = mmdata.open_dataset(p, on_error="skip", decode=decode)
        assert [s.key for s in d] == ["g3", "g5"] and d.skipped == {"repeated member": 1}, (decode, d.errors)


def test_missing_shard_file_is_counted_alike_in_both_layouts(tmp_path: Path, columns_ds: Path) -> None:
    samples = tmp_path / "samples"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12, missing=False), samples, maxcount=4, progress=False)
    columns = tmp_path / "columns"
    shutil.copytree(columns_ds, columns)
    (samples / "train-000001.tar").unlink()
    (columns / "text" / "train-000001.tar").unlink()
    for ds, gone in ((samples, samples / "train-000001.tar"), (columns, columns / "text" / "train-000001.tar")):
        with pytest.raises(ShardError, match=f"{gone} not found"):
            list(mmdata.open_dataset(ds))
        d = mmdata.open_dataset(ds, on_error="skip")
        assert len(list(d)) == 8
        assert d.skipped == {"truncated or corrupt shard": 4}, (ds.name, d.skipped)
        lost = sorted(k for _, k, _ in d.errors if k != "<unknown>")
        assert lost == [f"{i:06d}" for i in range(4, 8)], (ds.name, d.errors)
        assert all(str(gone) in m for _, _, m in d.errors)


def test_series_shard_cut_short_is_counted_as_in_the_samples_layout(tmp_path: Path, columns_ds: Path) -> None:
    # a series shard cut inside sample 000006's member: that sample is `truncated shard`, the one
    # after it `truncated or corrupt shard` naming the cut — as a shard cut there in the samples layout
    samples = tmp_path / "samples"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12, missing=False), samples, maxcount=4, progress=False)
    columns = tmp_path / "columns"
    shutil.copytree(columns_ds, columns)
    for shard in (samples / "train-000001.tar", columns / "text" / "train-000001.tar"):
        data = shard.read_bytes()
        at = next(o for o, n in header_offsets(data) if n.startswith(b"000006."))
        shard.write_bytes(data[: at + 512 + 3])
    for ds in (samples, columns):
        d = mmdata.open_dataset(ds, on_error="skip")
        assert len(list(d)) == 10
        assert d.skipped == {"truncated shard": 1, "truncated or corrupt shard": 1}, (ds.name, d.errors)
        assert any(k == "000007" and "not delivered" in m and "truncated" in m for _, k, m in d.errors), d.errors


@pytest.mark.parametrize("workers", [0, 2])
def test_a_listed_sample_a_clean_shard_lacks_is_not_delivered_and_counted(tmp_path: Path, workers: int) -> None:
    """A well-formed shard without a sample the index lists there (rewritten by hand, swapped from
    another job) lost that sample silently, even with on_error="raise": only damage triggered the count."""
    import tarfile

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=10), tmp_path / "ds", maxcount=5, progress=False)
    path = tmp_path / "ds" / "train-000000.tar"
    out = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            if not m.name.startswith("000002."):
                dst.addfile(m, src.extractfile(m))
    path.write_bytes(out.getvalue())
    with pytest.raises(ShardError, match=r"train-000000\.tar.*'000002' listed in the index was not delivered: the shard "
                                         r"does not hold it.*mmdata verify"):
        list(mmdata.open_dataset(tmp_path / "ds"))
    ds = mmdata.open_dataset(tmp_path / "ds", on_error="skip")
    from torch.utils.data import DataLoader

    keys = [s.key for s in DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=lambda s: s)]
    assert sorted(keys) == [f"{i:06d}" for i in range(10) if i != 2]
    if not workers:
        assert ds.skipped == {"listed sample missing from its shard": 1}, ds.errors
