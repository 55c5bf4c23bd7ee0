"""QA38 diff fixes: one warning for two old indexes (D #5), ``--json`` lists every key (F #3), a metadata change
names its keys (C #13). Real datasets sharded from real manifests."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.shards import index as idx
from mmdata.shards.diff import diff
from mmdata.shards.writer import shard
from mmdata.testing.media import image_bytes

ROOT = Path(__file__).parents[1]


def _cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmdata", "diff", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _version(t: Path, name: str, rows: list[dict]) -> Path:
    raw = t / f"raw_{name}"
    raw.mkdir()
    for r in rows:
        (raw / r["image"]).write_bytes(image_bytes(r["seed"]))
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "image", "label", "snr", "note"])
        w.writeheader()
        w.writerows({k: v for k, v in r.items() if k != "seed"} for r in rows)
    shard(raw / "m.csv", t / name, columns={"key": "id"}, meta=["snr", "note"], progress=False)
    return t / name


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """v1: 30 samples; v2: 25 removed (more than the table's 20), s27's snr -16 -> 18 (same width), s28's note
    changed."""
    t = tmp_path_factory.mktemp("qa38_diff")
    v1 = [{"id": f"s{i:02d}", "image": f"i{i}.png", "label": ["cat", "dog"][i % 2], "snr": -16, "note": "ok",
           "seed": i} for i in range(30)]
    v2 = [dict(r) for r in v1[25:]]
    v2[2]["snr"] = 18
    v2[3]["note"] = "re-captured"
    return _version(t, "v1", v1), _version(t, "v2", v2)


def test_json_lists_every_removed_key_and_the_hint_says_so(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    r = _cli(v1, v2)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "5 more removed" in out and "--json lists every one" in out, out
    rep = json.loads(_cli(v1, v2, "--json").stdout)
    assert rep["removed"]["total"] == 25 and len(rep["removed"]["items"]) == 25 and not rep["removed"]["truncated"]
    assert {i["key"] for i in rep["removed"]["items"]} == {f"s{i:02d}" for i in range(25)}
    capped = json.loads(_cli(v1, v2, "--json", "--limit", "3").stdout)
    assert len(capped["removed"]["items"]) == 3 and capped["removed"]["truncated"] is True
    assert "--json" in (ROOT / "docs" / "erasure.md").read_text() and "lists every removed key" in \
        " ".join((ROOT / "docs" / "erasure.md").read_text().split())


def test_a_metadata_change_names_the_keys(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    d = diff(v1, v2)
    changed = {i["key"]: i["members"] for i in d["changed"]["items"]}
    assert set(changed) == {"s27", "s28"}, changed
    (m27,) = [m for m in changed["s27"] if m["member"] == "json"]
    assert m27["keys"] == [{"key": "snr", "a": -16, "b": 18, "what": "changed"}] and m27["keys_not_listed"] == 0
    (m28,) = [m for m in changed["s28"] if m["member"] == "json"]
    assert m28["keys"] == [{"key": "note", "a": "ok", "b": "re-captured", "what": "changed"}]
    assert "json members of 2 changed samples" in d["reads"]
    out = " ".join(_cli(v1, v2).stdout.split())
    assert "json: snr -16 -> 18" in out and "json: note 'ok' -> 're-captured'" in out, out


def test_two_old_indexes_warn_once_naming_both(versions: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    olds = []
    for v in versions:
        o = Path(shutil.copytree(v, tmp_path / v.name))
        t = pq.read_table(o / idx.INDEX)
        pq.write_table(t.drop_columns([idx.MEMBER_DIGEST]), o / idx.INDEX)
        olds.append(o)
    d = diff(*olds)
    got = [w for w in d["warnings"] if "no member_digest" in w]
    assert len(got) == 1, d["warnings"]
    assert str(olds[0]) in got[0] and str(olds[1]) in got[0] and "30 index rows" in got[0] and "5 index rows" in got[0]
    for o in olds:
        t = pq.read_table(o / idx.INDEX)
        pq.write_table(t.drop_columns(["member_crc32"]), o / idx.INDEX)
    got = [w for w in diff(*olds)["warnings"] if "no member CRC-32s" in w]
    assert len(got) == 1 and "their indexes have" in got[0] and str(olds[1]) in got[0], got
    # one old side: said for that side alone, as before
    got = [w for w in diff(versions[0], olds[1])["warnings"] if "no member CRC-32s" in w]
    assert len(got) == 1 and got[0].startswith(f"{olds[1]}: its index has"), got
