"""Dataset metadata mutated as a fuzz pass did it (``index.parquet`` rows and columns, the card's shard
lists and fields, ``shards.parquet`` cells): the readers raise naming the file and the place, or count
every sample they do not deliver; ``verify`` and ``inspect`` name what they find."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 14-sample dataset per layout: train (10 samples, shards of 4, 4, 2) and val (4)."""
    t = tmp_path_factory.mktemp("fuzz_metadata")
    raw = make_sample_folder(t / "raw", n=14)
    out = {}
    for layout in ("samples", "columns"):
        mmdata.shard(raw, t / layout, progress=False, maxcount=4, split="train=0.7,val=0.3", layout=layout)
        out[layout] = t / layout
    return out


def _copy(built: dict[str, Path], layout: str, dst: Path) -> Path:
    return Path(shutil.copytree(built[layout], dst / layout))


def _edit_table(path: Path, fn: Callable[[list[dict[str, Any]]], None]) -> None:
    """Rewrite the Parquet file at ``path`` with its rows edited by ``fn``, keeping its schema."""
    t = pq.read_table(path)
    rows = t.to_pylist()
    fn(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), path)


def _edit_card(ds: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    card = json.loads((ds / idx.CARD).read_text())
    fn(card)
    (ds / idx.CARD).write_text(json.dumps(card))


def _read(ds: Path, on_error: str, **kw: Any) -> tuple[list[str], dict[str, int], int | None]:
    data = mmdata.open_dataset(ds, split="train", on_error=on_error, **kw)
    keys = [s.key for s in data]
    return keys, data.skipped, data.num_samples


# ---- index.parquet without a column the reader needs -------------------------------------------------

@pytest.mark.parametrize("column", ["split", "shard"])
def test_index_without_split_or_shard_column_is_a_shard_error(built: dict[str, Path], tmp_path: Path,
                                                              column: str) -> None:
    ds = _copy(built, "samples", tmp_path)
    t = pq.read_table(ds / idx.INDEX)
    pq.write_table(t.rename_columns([f"{c}_x" if c == column else c for c in t.column_names]), ds / idx.INDEX)
    for on_error in ("raise", "skip"):
        with pytest.raises(ShardError, match=rf"index\.parquet: no column '{column}'; it has \["):
            _read(ds, on_error)


# ---- shards.parquet with a null byte size --------------------------------------------------------------

def test_shards_table_null_bytes_is_named_by_inspect_and_verify(built: dict[str, Path], tmp_path: Path) -> None:
    ds = _copy(built, "samples", tmp_path)
    shard = pq.read_table(ds / idx.SHARDS).column("shard")[0].as_py()

    def null_bytes(rows: list[dict[str, Any]]) -> None:
        rows[0]["bytes"] = None

    _edit_table(ds / idx.SHARDS, null_bytes)
    report = mmdata.inspect(ds)
    said = [w["message"] for w in report["warnings"] if w["kind"] == "shards"]
    assert any(idx.SHARDS in m and shard in m and "byte" in m for m in said), report["warnings"]
    problems = [p for p in mmdata.verify(ds)["problems"] if p["shard"] == idx.SHARDS]
    assert [p["found"] for p in problems] == [f"no byte size for {shard} (null)"], problems


def test_verify_names_a_shards_table_byte_size_other_than_the_file(built: dict[str, Path], tmp_path: Path) -> None:
    ds = _copy(built, "samples", tmp_path)
    shard = pq.read_table(ds / idx.SHARDS).column("shard")[1].as_py()

    def other_bytes(rows: list[dict[str, Any]]) -> None:
        rows[1]["bytes"] += 512

    _edit_table(ds / idx.SHARDS, other_bytes)
    size = (ds / shard).stat().st_size
    problems = mmdata.verify(ds)["problems"]
    assert [(p["shard"], p["expected"], p["found"]) for p in problems] == [
        (idx.SHARDS, f"{size} bytes ({shard})", f"{size + 512} bytes ({idx.SHARDS})")], problems


# ---- index rows in no shard the card lists -----------------------------------------------------------

def _train_rows(ds: Path) -> list[str]:
    t = pq.read_table(ds / idx.INDEX)
    return [k for k, s in zip(t.column("key").to_pylist(), t.column("split").to_pylist()) if s == "train"]


@pytest.mark.parametrize("layout", ["samples", "columns"])
@pytest.mark.parametrize("cell", ["", None])
def test_index_row_without_a_shard_is_raised_or_counted(built: dict[str, Path], tmp_path: Path, layout: str,
                                                        cell: str | None) -> None:
    ds = _copy(built, layout, tmp_path)
    key = _train_rows(ds)[5]

    def no_shard(rows: list[dict[str, Any]]) -> None:
        next(r for r in rows if r["key"] == key)["shard"] = cell

    _edit_table(ds / idx.INDEX, no_shard)
    with pytest.raises(ShardError, match=rf"index\.parquet: 1 row of split 'train' is in no shard .*dataset\.json "
                                         rf"lists for that split: 1 in an? (null|empty) shard cell.* \(key '{key}'\)"):
        _read(ds, "raise")
    keys, skipped, total = _read(ds, "skip")
    assert key not in keys and skipped == {"sample in no listed shard": 1}
    assert len(keys) + sum(skipped.values()) == total == len(_train_rows(ds))


@pytest.mark.parametrize("layout", ["samples", "columns"])
def test_card_losing_a_shard_is_raised_or_counted(built: dict[str, Path], tmp_path: Path, layout: str) -> None:
    ds = _copy(built, layout, tmp_path)
    card = json.loads((ds / idx.CARD).read_text())
    gone = card["splits"]["train"]["shards"][1]
    lost = [k for k, s in zip(*(pq.read_table(ds / idx.INDEX).column(c).to_pylist() for c in ("key", "shard")))
            if s == gone]
    _edit_card(ds, lambda c: c["splits"]["train"]["shards"].remove(gone))
    with pytest.raises(ShardError, match=rf"{len(lost)} rows of split 'train' are in no shard .*dataset\.json lists "
                                         rf"for that split: {len(lost)} in shard '{gone}' \(keys '{lost[0]}'"):
        _read(ds, "raise")
    keys, skipped, total = _read(ds, "skip")
    assert skipped == {"sample in no listed shard": len(lost)} and not set(lost) & set(keys)
    assert len(keys) + len(lost) == total == 10


@pytest.mark.parametrize("layout", ["samples", "columns"])
def test_card_listing_another_splits_shard_reads_none_of_it(built: dict[str, Path], tmp_path: Path,
                                                            layout: str) -> None:
    ds = _copy(built, layout, tmp_path)
    card = json.loads((ds / idx.CARD).read_text())
    gone, other = card["splits"]["train"]["shards"][1], card["splits"]["val"]["shards"][0]
    _edit_card(ds, lambda c: c["splits"]["train"]["shards"].__setitem__(1, other))
    with pytest.raises(ShardError, match=rf"in shard '{gone}'"):
        _read(ds, "raise")
    keys, skipped, total = _read(ds, "skip")
    val = {k for k, s in zip(*(pq.read_table(ds / idx.INDEX).column(c).to_pylist() for c in ("key", "split")))
           if s == "val"}
    assert not val & set(keys), "val samples read as train samples"
    assert len(keys) + skipped["sample in no listed shard"] == total == 10


@pytest.mark.parametrize("decode", [False, True])
def test_unlisted_rows_count_once_across_a_resume(built: dict[str, Path], tmp_path: Path, decode: bool) -> None:
    ds = _copy(built, "samples", tmp_path)
    _edit_card(ds, lambda c: c["splits"]["train"]["shards"].pop(0))
    whole = mmdata.open_dataset(ds, on_error="skip", decode=decode)
    keys = [s.key for s in whole]
    first = mmdata.open_dataset(ds, on_error="skip", decode=decode)
    it = iter(first)
    head = [next(it).key for _ in range(3)]
    resumed = mmdata.open_dataset(ds, on_error="skip", decode=decode)
    resumed.load_state_dict(first.state_dict())
    assert head + [s.key for s in resumed] == keys
    assert resumed.skipped == whole.skipped == {"sample in no listed shard": 4}


# ---- index rows in another order than the shards hold the samples --------------------------------------

def _swap_rows(ds: Path, i: int, j: int) -> None:
    def swap(rows: list[dict[str, Any]]) -> None:
        rows[i], rows[j] = rows[j], rows[i]

    _edit_table(ds / idx.INDEX, swap)


def test_verify_names_a_column_series_out_of_the_index_order(built: dict[str, Path], tmp_path: Path) -> None:
    ds = _copy(built, "columns", tmp_path)
    t = pq.read_table(ds / idx.INDEX)
    shard = t.column("shard")[0].as_py()
    _swap_rows(ds, 0, 2)  # two rows of one shard
    report = mmdata.verify(ds)
    assert not report["ok"]
    order = [p for p in report["problems"] if "another order" in p["problem"]]
    assert {p["shard"].split("/", 1)[1] for p in order} == {shard} and len(order) == 4  # one per series
    moved = set(t.column("key").to_pylist()[:3])  # a series lacking one of them sees the third out of place
    assert all(p["key"] in moved and any(repr(k) in p["found"] for k in moved) for p in order), order


def test_samples_layout_reads_rows_in_any_order(built: dict[str, Path], tmp_path: Path) -> None:
    """The samples layout checks each sample against its own row: a shard's rows in another order
    lose nothing (only the mapped fast path), so verify does not report it."""
    ds = _copy(built, "samples", tmp_path)
    _swap_rows(ds, 0, 2)
    assert mmdata.verify(ds)["ok"]
    keys, skipped, total = _read(ds, "raise")
    assert len(keys) == total == 10 and skipped == {}


# ---- a column-layout card whose fields lost one ------------------------------------------------------

def test_card_fields_losing_a_series_is_reported_and_refused(built: dict[str, Path], tmp_path: Path) -> None:
    ds = _copy(built, "columns", tmp_path)
    fields = json.loads((ds / idx.CARD).read_text())["fields"]
    assert "text" in fields
    _edit_card(ds, lambda c: c["fields"].remove("text"))
    report = mmdata.verify(ds)
    assert [(p["shard"], p["expected"]) for p in report["problems"]] == [(idx.CARD, "text")], report
    assert "'fields' does not list field 'text'" in report["problems"][0]["problem"]
    assert any("'fields' does not list field 'text'" in w["message"] for w in mmdata.inspect(ds)["warnings"])
    for on_error in ("raise", "skip"):
        with pytest.raises(ShardError, match=r"dataset\.json: 'fields' \['audio', 'image', 'label'\] lacks \['text'\], "
                                             r"whose members index\.parquet lists in shard train-000000\.tar \(key "):
            _read(ds, on_error)
    keys, skipped, total = _read(ds, "raise", modalities=["image", "label"])  # text not read: nothing lost
    assert len(keys) == total == 10 and skipped == {}


def test_keys_naming_a_sample_of_an_unlisted_shard_says_where_the_index_puts_it(built: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """``keys=`` naming a sample whose index row lies in a shard the card lost said "not in split 'train':
    'k' (in split 'train')" — a contradiction; now it names the shard and the card."""
    ds = _copy(built, "samples", tmp_path)
    card = json.loads((ds / idx.CARD).read_text())
    gone = card["splits"]["train"]["shards"][1]
    lost = [k for k, s in zip(*(pq.read_table(ds / idx.INDEX).column(c).to_pylist() for c in ("key", "shard")))
            if s == gone]
    _edit_card(ds, lambda c: c["splits"]["train"]["shards"].remove(gone))
    val = pq.read_table(ds / idx.INDEX).filter(pa.compute.equal(pq.read_table(ds / idx.INDEX)["split"], "val"))
    other = val["key"][0].as_py()
    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(ds, split="train", on_error="skip", keys=[lost[0], other])
    msg = str(err.value)
    assert f"{lost[0]!r} (index.parquet puts it in split 'train', shard {gone!r}, which the card does not list " \
           f"for that split: run mmdata verify)" in msg, msg
    assert f"{other!r} (in split 'val')" in msg
