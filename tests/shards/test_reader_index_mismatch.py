"""A shard and index.parquet that disagree (a re-shard with other options killed half-way, an edited index):
the reader never delivers a sample the index does not list for that shard — such a sample could come twice
in one epoch — and reports listed samples that never came."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.reader import open_dataset
from mmdata.testing import make_sample_folder


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    """A dataset of 12 samples in shards of 3 whose first shard was replaced by the first shard of a
    4-per-shard job: it holds '000003', which the index lists in the second shard."""
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    mmdata.shard(raw, tmp_path / "a", maxcount=3, progress=False)
    mmdata.shard(raw, tmp_path / "b", maxcount=4, progress=False)
    shutil.copy(tmp_path / "b" / "train-000000.tar", tmp_path / "a" / "train-000000.tar")
    return tmp_path / "a"


def test_a_sample_the_index_lists_in_another_shard_comes_once(mixed: Path) -> None:
    ds = open_dataset(mixed, on_error="skip")
    keys = Counter(s.key for s in ds)
    assert max(keys.values()) == 1 and len(keys) == 12
    assert any(k == "000003" and "index does not list it" in msg for _, k, msg in ds.errors)
    assert ds.skipped == {}  # every sample the index lists came: nothing lost


def test_raise_names_the_shard_and_the_unlisted_key(mixed: Path) -> None:
    with pytest.raises(ShardError, match=r"train-000000\.tar: sample '000003' is in the shard but the index does not list"):
        list(open_dataset(mixed, on_error="raise"))


def test_a_key_renamed_in_the_index_is_counted_as_not_delivered(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    ds_path = tmp_path / "ds"
    mmdata.shard(raw, ds_path, progress=False)
    p = ds_path / "index.parquet"
    t = pq.read_table(p)
    keys = t.column("key").to_pylist()
    renamed = t.set_column(t.schema.get_field_index("key"), "key", [["zzz", *keys[1:]]])
    pq.write_table(renamed, p)
    ds = open_dataset(ds_path, on_error="skip")
    got = [s.key for s in ds]
    assert keys[0] not in got and "zzz" not in got and sorted(got) == sorted(keys[1:])
    assert sum(ds.skipped.values()) == 1  # 'zzz', listed, never delivered


def test_a_folder_an_unfinished_job_left_is_not_read_as_bare_shards(tmp_path: Path) -> None:
    """A re-shard removes the card before its first shard; killed then, the folder holds shards of two plans
    beside the earlier index: open_dataset says the job did not finish instead of reading the tars bare."""
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    mmdata.shard(raw, tmp_path / "ds", maxcount=3, progress=False)
    (tmp_path / "ds" / "dataset.json").unlink()
    with pytest.raises(ShardError, match=r"did not finish.*rerun the same `mmdata shard`"):
        open_dataset(tmp_path / "ds")
