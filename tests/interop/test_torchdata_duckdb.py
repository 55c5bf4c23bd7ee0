"""torchdata's StatefulDataLoader resumes mmdata datasets exactly; duckdb queries index.parquet directly."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

StatefulDataLoader = pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("td")
    mmdata.shard(make_sample_folder(root / "raw", n=30), root / "ds", maxcount=5, split="train=0.8,val=0.2", progress=False)
    return root / "ds"


def _loader(ds: Path, workers: int, epoch: int) -> StatefulDataLoader:
    data = mmdata.open_dataset(ds, split="train", shuffle=True, seed=7, buffer_size=8)
    data.set_epoch(epoch)
    return StatefulDataLoader(data, batch_size=3, num_workers=workers, collate_fn=mmdata.collate)


@pytest.mark.parametrize("workers,epoch", [(0, 0), (2, 1), (3, 0)])
def test_stateful_dataloader_resumes_exactly(ds: Path, workers: int, epoch: int) -> None:
    full = [b.keys for b in _loader(ds, workers, epoch)]
    assert sorted(k for keys in full for k in keys) == sorted(s.key for s in mmdata.open_dataset(ds, split="train"))
    for stop in sorted({0, 1, len(full) // 2, len(full) - 1, len(full)}):
        dl = _loader(ds, workers, epoch)
        it = iter(dl)
        head = [next(it).keys for _ in range(stop)]
        state = dl.state_dict()
        del it
        fresh = _loader(ds, workers, 0)  # the epoch comes back from the state
        fresh.load_state_dict(state)
        assert head + [b.keys for b in fresh] == full, f"workers={workers} stop={stop}"


def test_duckdb_queries_the_index(ds: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    index = str(ds / "index.parquet")
    per_split = dict(duckdb.sql(f"SELECT split, count(*) FROM '{index}' GROUP BY split ORDER BY split").fetchall())
    assert per_split == {"train": 24, "val": 6}
    # samples without audio, with their shard: the kind of question the index answers without opening a tar
    no_audio = duckdb.sql(f"SELECT key, shard FROM '{index}' WHERE NOT list_contains(modalities, 'audio') ORDER BY key").fetchall()
    assert [k for k, _ in no_audio] == [f"{i:06d}" for i in range(30) if i % 4 == 3]
    shards = str(ds / "shards.parquet")
    ((total,),) = duckdb.sql(f"SELECT sum(samples) FROM '{shards}'").fetchall()
    assert total == 30
