"""QA38 review 1 (diff): an unchanged NaN metadata value is no change (#3); ``reads`` says which shards were read
(#4). Real datasets sharded from real manifests."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.shards import index as idx
from mmdata.shards.diff import READS, _json_keys, diff
from mmdata.shards.writer import shard
from mmdata.testing.media import image_bytes


def test_an_unchanged_nan_is_no_change() -> None:
    got = _json_keys(b'{"snr": NaN, "a": 1, "r": [1, NaN]}', b'{"snr": NaN, "a": 2, "r": [1, NaN]}')
    assert got == {"keys": [{"key": "a", "a": 1, "b": 2, "what": "changed"}], "keys_not_listed": 0}
    got = _json_keys(b'{"snr": NaN}', b'{"snr": 3.5}')
    [k] = got["keys"]
    assert k["key"] == "snr" and math.isnan(k["a"]) and k["b"] == 3.5 and k["what"] == "changed"
    # another type of one value is still a change; key order inside a nested object is not
    assert [k["key"] for k in _json_keys(b'{"x": 1.0}', b'{"x": 1}')["keys"]] == ["x"]
    assert _json_keys(b'{"o": {"p": 1, "q": 2}}', b'{"o": {"q": 2, "p": 1}}')["keys"] == []


def _version(t: Path, name: str, rows: list[dict]) -> Path:
    raw = t / f"raw_{name}"
    raw.mkdir()
    for r in rows:
        (raw / r["image"]).write_bytes(image_bytes(r["seed"]))
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image", "label", "snr"])
        w.writeheader()
        w.writerows({k: v for k, v in r.items() if k != "seed"} for r in rows)
    shard(raw / "m.csv", t / name, columns={"key": "id"}, meta=["snr"], maxcount=2, progress=False)
    return t / name


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """v1: 6 samples; v2: s1's image re-captured (png bytes only); v3: s2's and s4's snr changed (json members);
    v4: s5 renamed to s9 (same bytes)."""
    t = tmp_path_factory.mktemp("qa38_diff2")
    v1 = [{"id": f"s{i}", "image": f"i{i}.png", "label": ["cat", "dog"][i % 2], "snr": -16, "seed": i}
          for i in range(6)]
    v2 = [dict(r) for r in v1]
    v2[1]["seed"] = 99
    v3 = [dict(r) for r in v1]
    v3[2]["snr"] = 18
    v3[4]["snr"] = 7
    v4 = [dict(r) for r in v1]
    v4[5]["id"] = "s9"
    return tuple(_version(t, n, rows) for n, rows in (("v1", v1), ("v2", v2), ("v3", v3), ("v4", v4)))


def test_reads_says_no_shard_only_where_none_is_read(versions: tuple[Path, ...]) -> None:
    v1, v2, v3, _ = versions
    d = diff(v1, v2)
    assert d["counts"]["changed"] == 1 and d["reads"] == READS and "no shard is read" in d["reads"]
    d = diff(v1, v3)
    assert d["counts"]["changed"] == 2
    reads = d["reads"]
    assert "no shard is read" not in reads, reads
    # s2 and s4 sit in shards 1 and 2 of each version (maxcount 2): 4 shards opened, json members only
    assert "json members of 2 changed samples" in reads and "from 4 shards" in reads, reads
    assert "only the members named read" in reads and "nothing else is read or decoded" in reads, reads


def test_reads_names_the_shards_read_to_confirm_a_rename(versions: tuple[Path, ...], tmp_path: Path) -> None:
    v1, _, _, v4 = versions
    assert diff(v1, v4)["reads"] == READS  # digests in the index: the rename is confirmed without a shard
    olds = []
    for v in (v1, v4):
        o = Path(shutil.copytree(v, tmp_path / v.name))
        pq.write_table(pq.read_table(o / idx.INDEX).drop_columns([idx.MEMBER_DIGEST]), o / idx.INDEX)
        olds.append(o)
    d = diff(*olds)
    assert d["renamed"]["total"] == 1, d["renamed"]
    reads = d["reads"]
    assert "no shard is read" not in reads and "from 2 shards" in reads and "confirm the rename" in reads, reads
    assert "json members" not in reads, reads
