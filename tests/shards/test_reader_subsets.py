"""Reading part of a dataset folder: a list of splits read as one (k-fold cross-validation: folds sharded
as splits ``"1"``..``"5"``) and ``keys=`` (the rows of a pandas / duckdb filter of ``index.parquet``).

Both keep what one whole split has: each sample once per epoch over DataLoader workers, exact
``samples_per_reader`` (so ``len(loader)``), exact resume, blends."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_messy_folder, make_sample_folder

FOLDS = "1=0.2,2=0.2,3=0.2,4=0.2,5=0.2"
RECIPE = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [16, 16], "side": "exact"}],
                        "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 8000},
                                  {"op": "pad_trim", "seconds": 0.2}]}}


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 messy samples in five folds (splits "1".."5"), shards of 3 (uneven: 8 samples a fold)."""
    t = tmp_path_factory.mktemp("folds")
    make_messy_folder(t / "raw", n=40, sizes=((16, 16),), seconds=(0.1, 0.3))
    mmdata.shard(t / "raw", t / "ds", split=FOLDS, maxcount=3, seed=0, progress=False)
    return t / "ds"


def _keys(ds: object) -> list[str]:
    return [s.key for s in ds]  # type: ignore[attr-defined]


def _split_keys(path: Path, split: str) -> list[str]:
    return _keys(mmdata.open_dataset(path, split=split, decode=False))


# -- a list of splits read as one -------------------------------------------------------------------------


@pytest.mark.parametrize("decode", [True, False])
def test_split_list_reads_the_union_in_the_order_given(folds: Path, decode: bool) -> None:
    want = [k for s in ("3", "1", "2") for k in _split_keys(folds, s)]
    ds = mmdata.open_dataset(folds, split=["3", "1", "2"], decode=decode, modalities=["label", "text"])
    assert _keys(ds) == want
    assert ds.num_samples == len(want) == sum(mmdata.open_dataset(folds, split=s).num_samples for s in "312")
    assert ds.splits == ("3", "1", "2") and ds.split == ("3", "1", "2")
    assert mmdata.open_dataset(folds, split=("3", "1", "2"), decode=decode).shards == ds.shards


def test_split_list_counts_per_reader_and_splits_over_workers(folds: Path) -> None:
    ds = mmdata.open_dataset(folds, split=["1", "2", "3"], shuffle=True, seed=3)
    total = ds.num_samples
    for readers in (1, 2, 3, 7, 20):
        per = ds.samples_per_reader(readers, epoch=1)
        assert per is not None and sum(per) == total
    got = Counter(s.key for s in ds)
    assert sorted(got) == sorted(k for s in "123" for k in _split_keys(folds, s)) and set(got.values()) == {1}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_on_a_split_list_has_a_length_and_resumes_exactly(folds: Path, num_workers: int) -> None:
    kw = {"recipe": RECIPE, "split": ["2", "4", "5"], "shuffle": True, "seed": 5, "num_workers": num_workers}
    full = mmdata.loader(folds, 4, **kw)
    whole = [k for b in full for k in b.keys]
    assert len(whole) == full.source.num_samples == 24 and len(set(whole)) == 24
    first = mmdata.loader(folds, 4, **kw)
    first.set_epoch(0)
    it = iter(first)
    head = [k for _, b in zip(range(3), it) for k in b.keys]
    state = first.state_dict()
    del it
    again = mmdata.loader(folds, 4, **kw)
    again.load_state_dict(state)
    rest = [k for b in again for k in b.keys]
    in_order = mmdata.loader(folds, 4, **{**kw, "shuffle": False})  # shuffled uneven shards: no fixed length
    assert len(in_order) == len(list(in_order))
    assert Counter(head + rest) == Counter(whole)


def test_blend_of_split_lists(folds: Path, tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "b", split="1=0.5,2=0.5", maxcount=2,
                 progress=False)
    L = mmdata.loader({"a": str(folds), "b": str(tmp_path / "b")}, 4, recipe=RECIPE, split=["1", "2"], seed=1)
    got = Counter(k for b in L for k in b.keys)
    want = [f"a/{k}" for s in "12" for k in _split_keys(folds, s)] + \
        [f"b/{k}" for s in "12" for k in _split_keys(tmp_path / "b", s)]
    assert got == Counter(want) and len(L) == -(-len(want) // 4)


@pytest.mark.parametrize(("split", "words"), [
    (["1", "9"], ["no split '9'", "it has ['1', '2', '3', '4', '5']"]),
    (["1", "2", "1"], ["split: ['1'] listed more than once"]),
    ([], ["split: expected a split name", "a list of split names"]),
    (["1", 2], ["split: expected a split name", "got ['1', 2]"]),
])
def test_split_list_refuses_what_it_cannot_read(folds: Path, split: object, words: list[str]) -> None:
    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(folds, split=split)  # type: ignore[arg-type]
    for w in words:
        assert w in str(err.value)


def test_split_list_in_the_column_layout(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=9), tmp_path / "ds", split="a=0.4,b=0.3,c=0.3",
                 layout="columns", maxcount=2, progress=False)
    one = [k for s in ("c", "a") for k in _split_keys(tmp_path / "ds", s)]
    ds = mmdata.open_dataset(tmp_path / "ds", split=["c", "a"])
    assert _keys(ds) == one and ds.samples_per_reader(2) is not None and sum(ds.samples_per_reader(2)) == len(one)


# -- keys=: exactly the rows of a filter of index.parquet ------------------------------------------------


def _index(path: Path) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    return pd.read_parquet(path / "index.parquet", dtype_backend="numpy_nullable")


def _body_offset(shard: Path, member: str) -> tuple[int, int]:
    import tarfile

    with tarfile.open(shard) as tf:
        info = tf.getmember(member)
        return info.offset_data, info.size


@pytest.mark.parametrize("decode", [True, False])
@pytest.mark.parametrize("shuffle", [False, True])
def test_keys_from_a_pandas_filter_read_exactly_those_samples_once(folds: Path, decode: bool, shuffle: bool) -> None:
    df = _index(folds)
    rows = df[(df.split == "1") & (df.label.isin([0, 2]) | df.label.isna())]
    assert 0 < len(rows) < (df.split == "1").sum()
    ds = mmdata.open_dataset(folds, split="1", keys=rows, decode=decode, shuffle=shuffle, seed=2)
    got = _keys(ds)
    assert sorted(got) == sorted(rows.key) and ds.num_samples == len(rows)
    in_order = [k for k in _split_keys(folds, "1") if k in set(rows.key)]
    if not shuffle:
        assert got == in_order  # a filter: the split's order, not the order the keys were given in
    assert _keys(mmdata.open_dataset(folds, split="1", keys=list(rows.key)[::-1] * 2, decode=decode,
                                     shuffle=shuffle, seed=2)) == got  # order and repeats of the keys do not count


def test_keys_take_a_list_a_series_an_array_or_one_key(folds: Path) -> None:
    import pyarrow.parquet as pq

    df = _index(folds)
    some = list(df[df.split == "2"].key[:3])
    table = pq.read_table(folds / "index.parquet")
    want = sorted(some)
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow_rows = table.filter(pc.is_in(table["key"], value_set=pa.array(some)))
    for given in (some, set(some), df[df.key.isin(some)].key, df[df.key.isin(some)].key.to_numpy(),
                  df[df.key.isin(some)], arrow_rows, arrow_rows["key"]):
        assert sorted(_keys(mmdata.open_dataset(folds, split="2", keys=given, decode=False))) == want
    assert _keys(mmdata.open_dataset(folds, split="2", keys=some[0], decode=False)) == [some[0]]
    assert _keys(mmdata.open_dataset(folds, split="2", keys=[], decode=False)) == []


def test_keys_not_in_the_split_raise_naming_a_few_and_their_split(folds: Path) -> None:
    df = _index(folds)
    other = sorted(df[df.split == "4"].key)[:2]
    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(folds, split="1", keys=[*df[df.split == "1"].key[:2], *other, "no-such-key"])
    msg = str(err.value)
    assert "3 of the 5 keys= are not in split '1'" in msg and "'no-such-key'" in msg
    assert all(f"{k!r} (in split '4')" in msg for k in other) and "column of that split)" in msg
    with pytest.raises(ShardError, match=r"not in split \['1', '2'\].*column of those splits\)"):
        mmdata.open_dataset(folds, split=["1", "2"], keys=["no-such-key"])
    for bad, words in ((df.drop(columns="key"), "a table without a 'key' column"),
                       ([1, 2], "keys: expected sample keys"), (5, "keys: expected sample keys")):
        with pytest.raises(ShardError, match=words):
            mmdata.open_dataset(folds, split="1", keys=bad)


def test_keys_need_a_dataset_folder(folds: Path) -> None:
    with pytest.raises(ShardError, match="keys= selects samples by the index of a dataset folder"):
        mmdata.open_dataset(str(folds / "1-000000.tar"), keys=["x"])


def test_samples_not_selected_are_not_decoded_and_shards_without_any_not_opened(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    ds_path = tmp_path / "ds"
    mmdata.shard(raw, ds_path, maxcount=4, progress=False)
    # a broken image body (same size: the index still matches the tar headers) in a sample not selected
    shard = ds_path / "train-000000.tar"
    off, size = _body_offset(shard, "000001.png")
    data = bytearray(shard.read_bytes())
    data[off : off + size] = b"\0" * size
    shard.write_bytes(bytes(data))
    (ds_path / "train-000002.tar").write_bytes(b"not a tar")  # holds 000008..000011, none selected
    with pytest.raises(ShardError):
        list(mmdata.open_dataset(ds_path))
    for decode, shuffle in ((True, False), (True, True), (False, False)):
        ds = mmdata.open_dataset(ds_path, keys=["000000", "000002", "000005"], decode=decode, shuffle=shuffle)
        assert sorted(_keys(ds)) == ["000000", "000002", "000005"] and ds.shards == ["train-000000.tar", "train-000001.tar"]
    skip = mmdata.open_dataset(ds_path, keys=["000001", "000002", "000009"], on_error="skip")
    assert _keys(skip) == ["000002"] and skip.skipped == {"corrupt image": 1, "truncated or corrupt shard": 1}


@pytest.mark.parametrize("readers", [1, 2, 3, 4, 9])
def test_iter_share_and_listed_per_reader_count_the_selection(folds: Path, readers: int) -> None:
    """What blends read each dataset with: every reader's share, over shards or striding over samples."""
    df = _index(folds)
    rows = df[df.split.isin(["1", "3"])].iloc[::2]
    ds = mmdata.open_dataset(folds, split=["1", "3"], keys=rows.key, shuffle=True, seed=4, decode=False)
    listed = ds.listed_per_reader(readers, 3)
    shares = [[s.key for s in ds.iter_share(r, readers, 3)] for r in range(readers)]
    assert [len(s) for s in shares] == listed
    assert sorted(k for s in shares for k in s) == sorted(rows.key)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_with_keys_has_a_length_and_resumes_exactly(folds: Path, num_workers: int) -> None:
    df = _index(folds)
    keys = df[df.split.isin(["1", "2", "3"]) & df.label.notna()].key.iloc[::2]
    kw = {"recipe": RECIPE, "split": ["1", "2", "3"], "keys": keys, "seed": 7, "num_workers": num_workers}
    whole_loader = mmdata.loader(folds, 4, **kw, shuffle=False)
    batches = [b.keys for b in whole_loader]
    assert sorted(k for b in batches for k in b) == sorted(keys) and whole_loader.source.num_samples == len(keys)
    per = whole_loader.source.samples_per_reader(max(1, num_workers))
    assert sum(per) == len(keys) and len(whole_loader) == sum(-(-p // 4) for p in per) == len(batches)
    shuffled = {**kw, "shuffle": True}
    first = mmdata.loader(folds, 4, **shuffled)
    first.set_epoch(1)
    it = iter(first)
    head = [k for _, b in zip(range(2), it) for k in b.keys]
    state = first.state_dict()
    del it
    again = mmdata.loader(folds, 4, **shuffled)
    again.load_state_dict(state)
    rest = [k for b in again for k in b.keys]
    assert sorted(head + rest) == sorted(keys) and len(set(head + rest)) == len(keys)
    full = mmdata.loader(folds, 4, **shuffled)
    full.set_epoch(1)
    assert head + rest == [k for b in full for k in b.keys]  # the same epoch, resumed exactly


def test_keys_in_the_column_layout(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=9), tmp_path / "ds", layout="columns", maxcount=2,
                 progress=False)
    want = ["000001", "000004", "000005", "000008"]
    ds = mmdata.open_dataset(tmp_path / "ds", keys=want[::-1])
    assert _keys(ds) == want and sum(ds.samples_per_reader(3)) == 4
