"""QA round 40, writer: the split does not depend on the order the fractions are written in (repro #1); the
``--max-skipped`` error groups reasons without row numbers (scale #1); the duplicates warning says how many sets
the card lists and where the full list is (scale #2)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.shards.sources import Record
from mmdata.shards.writer import assign_splits, key_split, parse_split, skipped_over_limit, split_order
from mmdata.testing import make_messy_folder

ORDERS = ["train=0.7,val=0.15,test=0.15", "test=0.15,val=0.15,train=0.7", "train=0.7,test=0.15,val=0.15",
          "val=0.15,train=0.7,test=0.15"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_messy_folder(tmp_path_factory.mktemp("qa40w") / "raw", n=40, sizes=((8, 8), (8, 12))).root


def _splits(ds: Path) -> dict[str, str]:
    return {r["source_key"]: r["split"] for r in pq.read_table(ds / "index.parquet").to_pylist()}


@pytest.mark.parametrize("by", ["key", "label"])
def test_the_split_is_the_same_whatever_order_the_fractions_are_written_in(raw: Path, tmp_path: Path, by: str) -> None:
    got = []
    for i, spec in enumerate(ORDERS):
        out = tmp_path / f"o{i}"
        mmdata.shard(raw, out, split=spec, split_by=by, progress=False)
        card = json.loads((out / "dataset.json").read_text())
        got.append((_splits(out), card["fingerprint"], card["options"]["split"]))
    # a dict (a YAML / JSON config, json.dumps(sort_keys=True)) too
    mmdata.shard(raw, tmp_path / "d", split={"test": 0.15, "train": 0.7, "val": 0.15}, split_by=by, progress=False)
    card = json.loads((tmp_path / "d" / "dataset.json").read_text())
    got.append((_splits(tmp_path / "d"), card["fingerprint"], card["options"]["split"]))
    first = got[0]
    assert {"train", "val", "test"} <= set(first[0].values())
    for other in got[1:]:
        assert other == first
    assert first[2] == {"train": 0.7, "val": 0.15, "test": 0.15}


def test_assign_splits_key_split_and_groups_ignore_the_dict_order() -> None:
    def recs(grouped: bool) -> list[Record]:
        return [Record(f"k{i}", f"k{i}", {"txt": b"x"}, label=i % 3 if i < 57 else 3,
                       group=f"g{i // 4}" if grouped else None) for i in range(60)]

    a = {"train": 0.6, "val": 0.2, "test": 0.2}
    b = {"test": 0.2, "val": 0.2, "train": 0.6}
    for by in ("label", "key"):
        for grouped in (False, True):
            ra, rb = recs(grouped), recs(grouped)
            assert assign_splits(ra, a, seed=1, by=by) == assign_splits(rb, b, seed=1, by=by)
            assert [r.split for r in ra] == [r.split for r in rb]
            assert len({r.split for r in ra}) == 3
    assert all(key_split(f"s{i}", a, 3) == key_split(f"s{i}", b, 3) for i in range(200))


def test_the_canonical_order_keeps_the_common_orders() -> None:
    for spec in ("train=0.8,val=0.1,test=0.1", "train=0.8,test=0.2", "train=0.8,dev=0.1,test=0.1",
                 "train=0.8,valid=0.1,test=0.1", "1=0.25,2=0.25,3=0.25,4=0.25", "fold1=0.5,fold2=0.5",
                 "train=0.8,test=0.1,holdout=0.1"):
        assert ",".join(parse_split(spec)) == ",".join(p.split("=")[0] for p in spec.split(","))
    assert list(split_order({str(i): 0.1 for i in range(10, 0, -1)})) == [str(i) for i in range(1, 11)]
    assert list(parse_split("test=0.1,val=0.1,train=0.8")) == ["train", "val", "test"]


def test_the_max_skipped_error_groups_missing_files_without_row_numbers(tmp_path: Path) -> None:
    from mmdata.shards.writer import TooManySkipped
    from mmdata.testing.media import image_bytes

    (tmp_path / "img").mkdir()
    rows = ["key,image,label"]
    for i in range(8):
        if i >= 3:  # rows 1-3 name files that are not there
            (tmp_path / "img" / f"i{i}.png").write_bytes(image_bytes(i, (8, 8)))
        rows.append(f"k{i},img/i{i}.png,{'ab'[i % 2]}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(TooManySkipped) as caught:
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", max_skipped=0, progress=False)
    message = str(caught.value)
    assert "most often: 3 × m.csv, column 'image': file not found." in message, message
    assert " row " not in message
    # the summary of one report, as the helper gives it
    report = {"samples": 5, "out": "ds", "skipped": caught.value.report["skipped"]}
    assert "3 × m.csv, column 'image'" in (skipped_over_limit(report, 0) or "")


def test_the_duplicates_warning_says_how_many_sets_the_card_lists_and_duplicate_sets_gives_every_one(tmp_path: Path) -> None:
    from mmdata.shards.writer import ShardWarning, duplicate_sets
    from mmdata.testing.media import image_bytes

    (tmp_path / "img").mkdir()
    rows = ["key,image,label,split"]
    for i in range(12):  # 5 images copied from train to test (5 sets), one copied twice (a set of 3 samples)
        (tmp_path / "img" / f"t{i}.png").write_bytes(image_bytes(i, (8, 8)))
        rows.append(f"t{i},img/t{i}.png,{'ab'[i % 2]},train")
    for i in range(8):
        (tmp_path / "img" / f"e{i}.png").write_bytes(image_bytes(i if i < 5 else 100 + i, (8, 8)))
        rows.append(f"e{i},img/e{i}.png,{'ab'[i % 2]},test")
    (tmp_path / "img" / "v0.png").write_bytes(image_bytes(0, (8, 8)))
    rows.append("v0,img/v0.png,a,val")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ShardWarning) as caught:
        rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    said = [w for w in rep["warnings"] if "in different splits" in w]
    assert said and any(str(w.message).startswith(said[0]) for w in caught)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())["duplicates"]
    assert card["across_splits"] == 5 and len(card["examples"]) == 3
    assert "the card lists 3 of the 5 sets (duplicates.examples" in said[0], said[0]
    assert "w.duplicate_sets('DATASET')" in said[0] and str(tmp_path) not in said[0]
    listed = duplicate_sets(tmp_path / "ds")
    assert listed["confirmed_by"] == "member_digest"
    got = listed["sets"]
    assert len(got) == 5 and sum(len(s) for s in got) == card["samples"] == 11
    assert ["e0", "test"] in got[0] and ["t0", "train"] in got[0] and ["v0", "val"] in got[0]
    assert sorted(key for s in got for key, _ in s) == sorted(["v0"] + [f"{p}{i}" for p in "te" for i in range(5)])
