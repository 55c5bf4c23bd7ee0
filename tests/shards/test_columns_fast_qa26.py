"""The column layout's index-guided read (QA26 F4): each series' shard is mapped and checked against the index
in one vectorised pass, as a samples-layout shard is, and the series are zipped by the index's key order.

What it must keep of the streaming zip it replaces (which still reads any shard that does not check out):
the same samples, members and member order; a key absent from a series is a sample without that field
(presence mask 0); ``modalities=`` opens only those series; a series shard whose members are in another
order than the index's (than the other series') is reported, never zipped by position; a series shard
without members; ``keys=``; worker split and an exact resume mid-shard; damage under raise / skip.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder
from mmdata.testing.hostile import tar_of

N = 20
#: make_sample_folder(missing=True): no audio in every 4th sample, no text in every 5th; 000019 has neither
NO_AUDIO = {f"{i:06d}" for i in range(N) if i % 4 == 3}
NO_TEXT = {f"{i:06d}" for i in range(N) if i % 5 == 4}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 20 samples (no labels: 000019 is then in the image series only) in both layouts, 3 shards."""
    root = tmp_path_factory.mktemp("cols")
    raw = make_sample_folder(root / "raw", n=N, labels=False)
    out = {}
    for layout in ("samples", "columns"):
        mmdata.shard(raw, root / layout, maxcount=7, layout=layout, split={"train": 1.0}, progress=False)
        out[layout] = root / layout
    return out


def _raw(ds: object) -> list[tuple[str, dict[str, bytes], str, int]]:
    return [(s.key, dict(s.fields), s.meta["shard"], s.meta["position"]) for s in ds]  # type: ignore[attr-defined]


def _copy(layouts: dict[str, Path], tmp_path: Path) -> Path:
    ds = tmp_path / "columns"
    shutil.copytree(layouts["columns"], ds)
    return ds


def _members(p: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(p) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]


def _write(p: Path, members: list[tuple[str, bytes]]) -> None:
    p.write_bytes(tar_of([(n.split(".", 1)[0], {n.split(".", 1)[1]: b}) for n, b in members]))


@pytest.mark.parametrize("modalities", [None, ["audio"], ["image", "text"]])
def test_the_mapped_read_gives_what_the_streaming_zip_gives(layouts: dict[str, Path], modalities: list[str] | None) -> None:
    ds = mmdata.open_dataset(layouts["columns"], decode=False, modalities=modalities)
    for shard in ds.shards:
        mapped = ds._mapped_columns(shard)
        assert mapped is not None, shard  # an intact local dataset takes the mapped read
        fast = [(k, list(f.items()), p) for k, f, p in ds._slice_columns(*mapped)]  # type: ignore[union-attr]
        slow = [(k, list(f.items()), p) for k, f, p in ds._zip_series(shard)]
        assert fast == slow, shard  # same keys, members, member order (series by series), no problem


@pytest.mark.parametrize("modalities", [None, ["audio"], ["image", "text"]])
def test_raw_read_matches_the_samples_layout(layouts: dict[str, Path], modalities: list[str] | None) -> None:
    got = _raw(mmdata.open_dataset(layouts["columns"], decode=False, modalities=modalities))
    want = _raw(mmdata.open_dataset(layouts["samples"], decode=False, modalities=modalities))
    assert got == want
    fields = {k: set(f) for k, f, _, _ in got}
    if modalities is None:
        assert fields["000019"] == {"png"}  # a key in one series only: a sample with that field only
        assert {k for k, f in fields.items() if "flac" not in f} == NO_AUDIO
        assert {k for k, f in fields.items() if "txt" not in f} == NO_TEXT
    if modalities == ["audio"]:  # a sample without audio is delivered without it, not dropped
        assert len(got) == N and {k for k, f in fields.items() if not f} == NO_AUDIO


def test_a_key_missing_from_a_series_is_a_presence_mask_zero(layouts: dict[str, Path]) -> None:
    ds = mmdata.open_dataset(layouts["columns"])
    batch = next(iter(DataLoader(ds, batch_size=N, collate_fn=ds.collate_fn)))
    keys = list(batch.keys)
    assert keys == [f"{i:06d}" for i in range(N)]
    assert [not p for p in batch.present["audio"].tolist()] == [k in NO_AUDIO for k in keys]
    assert [not p for p in batch.present["text"].tolist()] == [k in NO_TEXT for k in keys]
    assert batch.present["image"].all()


def test_a_series_in_another_order_than_the_others_is_reported_not_zipped(layouts: dict[str, Path], tmp_path: Path) -> None:
    """The text series holds 000001 before 000000 (the image and audio series, and the index, the other way
    round): the read must not pair 000001's text with 000000's image. 000000 is lost and named."""
    ds = _copy(layouts, tmp_path)
    p = ds / "text" / "train-000000.tar"
    ms = _members(p)
    ms[0], ms[1] = ms[1], ms[0]
    _write(p, ms)
    assert mmdata.open_dataset(ds)._mapped_columns("train-000000.tar") is None
    for decode in (False, True):
        with pytest.raises(ShardError, match=r"text/train-000000.tar: found '000001' where '000000' was expected"):
            list(mmdata.open_dataset(ds, decode=decode))
        d = mmdata.open_dataset(ds, decode=decode, on_error="skip")
        got = {s.key: s for s in d}
        assert sorted(got) == [f"{i:06d}" for i in range(1, N)], decode
        assert d.skipped == {"column series misaligned": 1}
        assert [k for _, k, _ in d.errors] == ["000000"]
        text = got["000001"].fields["txt" if not decode else "text"]
        assert (text if decode else text.decode()) == dict(ms)["000001.txt"].decode()  # its own text


def test_a_series_shard_without_members(layouts: dict[str, Path], tmp_path: Path) -> None:
    """Shards of one sample: 000004 has no text, so text/train-000004.tar holds no member. It is read as
    empty when it is; a member the index does not list there is reported as before."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6, labels=False), tmp_path / "ds", maxcount=1,
                 layout="columns", split={"train": 1.0}, progress=False)
    ds = tmp_path / "ds"
    empty = ds / "text" / "train-000004.tar"
    assert _members(empty) == []
    d = mmdata.open_dataset(ds, decode=False)
    assert d._mapped_columns("train-000004.tar") is not None
    got = _raw(d)
    assert [k for k, *_ in got] == [f"{i:06d}" for i in range(6)] and set(got[4][1]) == {"png", "flac"}
    _write(empty, [("000005.txt", b"not here")])
    assert mmdata.open_dataset(ds)._mapped_columns("train-000004.tar") is None
    with pytest.raises(ShardError, match=r"key '000005' is not in the index for this shard"):
        list(mmdata.open_dataset(ds, decode=False))
    assert len(list(mmdata.open_dataset(ds, decode=False, on_error="skip"))) == 6


@pytest.mark.parametrize("decode", [False, True])
def test_keys_selection(layouts: dict[str, Path], decode: bool) -> None:
    keys = ["000001", "000003", "000009", "000019"]
    got = [(s.key, sorted(s.fields)) for s in mmdata.open_dataset(layouts["columns"], keys=keys, decode=decode)]
    want = [(s.key, sorted(s.fields)) for s in mmdata.open_dataset(layouts["samples"], keys=keys, decode=decode)]
    assert got == want and [k for k, _ in got] == keys


@pytest.mark.parametrize("decode,shuffle", [(False, False), (True, False), (True, True)])
def test_resume_mid_shard(layouts: dict[str, Path], decode: bool, shuffle: bool) -> None:
    def mk() -> object:
        return mmdata.open_dataset(layouts["columns"], decode=decode, shuffle=shuffle, seed=3, buffer_size=4)

    whole = [s.key for s in mk()]  # type: ignore[attr-defined]
    a = mk()
    it = iter(a)  # type: ignore[call-overload]
    first = [next(it).key for _ in range(10)]  # mid second shard (7 samples a shard)
    state = a.state_dict()  # type: ignore[attr-defined]
    b = mk()
    b.load_state_dict(state)  # type: ignore[attr-defined]
    rest = [s.key for s in b]  # type: ignore[attr-defined]
    assert first + rest == whole and sorted(whole) == [f"{i:06d}" for i in range(N)]


def test_worker_split_matches_the_samples_layout(layouts: dict[str, Path]) -> None:
    got, want = ([(s.key, sorted(s.fields), s.meta["reader"]) for s in
                  DataLoader(mmdata.open_dataset(layouts[lay], decode=False), batch_size=None, num_workers=2)]
                 for lay in ("columns", "samples"))
    assert got == want
    assert sorted(k for k, _, _ in got) == [f"{i:06d}" for i in range(N)]
    assert {r for _, _, r in got} == {0, 1}


def test_a_damaged_series_header_is_read_by_the_streaming_parser(layouts: dict[str, Path], tmp_path: Path) -> None:
    """A flipped byte in the name of 000008.png's header in the image series: that shard does not check out,
    so it is streamed and its loss counted; the intact shards around it are read mapped."""
    ds = _copy(layouts, tmp_path)
    p = ds / "image" / "train-000001.tar"
    data = bytearray(p.read_bytes())
    at = data.find(b"000008.png")
    data[at + 2] ^= 1
    p.write_bytes(bytes(data))
    d = mmdata.open_dataset(ds, decode=False)
    assert d._mapped_columns("train-000001.tar") is None
    assert d._mapped_columns("train-000000.tar") is not None
    with pytest.raises(ShardError, match=r"image/train-000001.tar"):
        list(d)
    for decode in (False, True):
        s = mmdata.open_dataset(ds, decode=decode, on_error="skip")
        keys = [x.key for x in s]
        assert "000008" not in keys and len(keys) == N - 1, (decode, keys)
        assert sum(s.skipped.values()) == 1 and [k for _, k, _ in s.errors if k != "<unknown>"] == ["000008"], s.errors


def test_a_member_over_max_member_bytes_is_streamed_and_reported(layouts: dict[str, Path]) -> None:
    counts = []
    for layout in ("columns", "samples"):
        d = mmdata.open_dataset(layouts[layout], decode=False, max_member_bytes=500, on_error="skip")
        if layout == "columns":
            assert d._mapped_columns("train-000000.tar") is None  # the FLAC members are larger: streamed
        counts.append((len(list(d)), d.skipped))
    assert counts[0] == counts[1] == (len(NO_AUDIO), {"member too large": N - len(NO_AUDIO)})  # those without audio
