"""``len(mmdata.loader(...))``: exact batches per epoch when the index fixes them, TypeError otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("len")
    mmdata.shard(make_sample_folder(root / "raw", n=18), root / "ds", maxcount=4, progress=False)  # 4,4,4,4,2
    return root / "ds"


@pytest.fixture(scope="module")
def even(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("len-even")
    mmdata.shard(make_sample_folder(root / "raw", n=15), root / "ds", maxcount=3, progress=False)  # 5 x 3
    return root / "ds"


def _batches(loader: mmdata.Loader) -> list[int]:
    return [len([b for b in loader]) for _ in range(2)]  # two epochs: the length holds for both


@pytest.mark.parametrize(("which", "kw"), [
    ("uneven", {}),
    ("uneven", {"drop_last": True, "shuffle": False, "num_workers": 2}),
    ("uneven", {"shuffle": False, "num_workers": 3}),
    ("even", {"num_workers": 2}),  # shuffled shard order, equal shards: each worker's share is fixed
    ("even", {"num_workers": 2, "drop_last": True}),
    ("uneven", {"cache": True, "num_workers": 2}),
])
def test_len_is_the_exact_batch_count(which: str, kw: dict, request: pytest.FixtureRequest) -> None:
    loader = mmdata.loader(request.getfixturevalue(which), 4, **kw)
    n = len(loader)
    assert _batches(loader) == [n, n]


def test_len_per_rank(even: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = mmdata.loader(even, 2)
        lengths.append(len(loader))
        assert _batches(loader) == [lengths[-1]] * 2
    assert lengths == [5, 3]  # shards of 3: rank 0 reads 3 of them (9 samples), rank 1 two (6)


@pytest.mark.parametrize("kw", [
    # shuffled shards of 4,4,4,4,2 over 2 workers, batches of 3: 12 or 10 samples (4 batches) and 8 or 6 (3 or
    # 2): 7 or 6 batches an epoch (with batches of 4 every deal gives 5: test_loader_len_deals)
    {"num_workers": 2, "batch": 3},
    {"on_error": "skip"},  # losses are only found while reading
    {"balance": {"by": "label", "mode": "over"}},  # repeats drawn per epoch
])
def test_no_len_when_not_known(uneven: Path, kw: dict) -> None:
    kw = dict(kw)
    loader = mmdata.loader(uneven, kw.pop("batch", 4), **kw)
    with pytest.raises(TypeError, match="no exact length"):
        len(loader)
    assert loader  # truth does not go through __len__


def test_no_len_for_bare_shards(uneven: Path) -> None:
    with pytest.raises(TypeError, match="no exact length"):
        len(mmdata.loader(str(uneven / "train-*.tar"), 4))
