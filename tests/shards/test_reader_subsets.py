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
