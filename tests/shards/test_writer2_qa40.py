"""QA round 40, review of the writer fixes: the duplicates warning's command names a placeholder, not the folder's
last name (#1); ``duplicate_sets`` confirms by the index's ``member_digest``, reads a URL read-only and says how the
sets were confirmed (#2); "the card lists it" only when the card shows every sample (#3); a split named ``²`` is
ordered, not a traceback (#4)."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.writer import ShardWarning, duplicate_sets, parse_split, split_order
from mmdata.testing.media import image_bytes


def _dup_dataset(root: Path, sets: int = 5) -> Path:
    """A manifest dataset: ``sets`` images copied from train to test, image 0 also in val."""
    (root / "img").mkdir(parents=True)
    rows = ["key,image,label,split"]
    for i in range(12):
        (root / "img" / f"t{i}.png").write_bytes(image_bytes(i, (8, 8)))
        rows.append(f"t{i},img/t{i}.png,{'ab'[i % 2]},train")
    for i in range(8):
        (root / "img" / f"e{i}.png").write_bytes(image_bytes(i if i < sets else 100 + i, (8, 8)))
        rows.append(f"e{i},img/e{i}.png,{'ab'[i % 2]},test")
    (root / "img" / "v0.png").write_bytes(image_bytes(0, (8, 8)))
    rows.append("v0,img/v0.png,a,val")
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ShardWarning):
        mmdata.shard(root / "m.csv", root / "out" / "dd", progress=False)
    return root / "out" / "dd"


@pytest.fixture(scope="module")
def dd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _dup_dataset(tmp_path_factory.mktemp("qa40w2"))


def test_the_warning_names_a_placeholder_not_the_folders_last_name(dd: Path) -> None:
    said = [w for w in json.loads((dd / "dataset.json").read_text())["warnings"] if "in different splits" in w]
    assert said and "w.duplicate_sets('DATASET')" in said[0], said
    assert "'dd'" not in said[0] and "DATASET: this dataset's folder or URL" in said[0], said[0]


def test_duplicate_sets_says_how_the_sets_were_confirmed_and_reads_no_shard_where_the_index_has_digests(
        dd: Path, tmp_path: Path) -> None:
    got = duplicate_sets(dd)
    assert got["confirmed_by"] == "member_digest" and len(got["sets"]) == 5
    # an index-only copy: the index's member_digest confirms the sets, no shard is read
    io = tmp_path / "io"
    io.mkdir()
    for f in ("dataset.json", "index.parquet", "shards.parquet"):
        shutil.copy(dd / f, io / f)
    assert duplicate_sets(io) == got


def test_duplicate_sets_without_member_digest_reads_the_shards_or_says_size_and_crc(dd: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    old = tmp_path / "old"
    shutil.copytree(dd, old)
    t = pq.read_table(old / "index.parquet")
    pq.write_table(t.drop_columns(["member_digest"]), old / "index.parquet")
    got = duplicate_sets(old)
    assert got["confirmed_by"] == "sha256" and len(got["sets"]) == 5
    for tar in old.glob("*.tar"):
        tar.unlink()
    unread = duplicate_sets(old)  # an index written before member_digest, its shards not beside it
    assert unread["confirmed_by"] == "size+crc32" and unread["sets"] == got["sets"]


def test_duplicate_sets_reads_an_http_dataset(dd: Path) -> None:
    pytest.importorskip("aiohttp")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(dd.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = duplicate_sets(f"http://127.0.0.1:{server.server_address[1]}/dd")
    finally:
        server.shutdown()
    assert got == duplicate_sets(dd)


def test_the_card_lists_it_only_when_it_shows_every_sample(tmp_path: Path) -> None:
    # t0 and c0 in train and e0 in test share bytes: one set of 3 samples, the card shows one sample per split
    (tmp_path / "img").mkdir()
    rows = ["key,image,label,split"]
    for key, n, split in [("t0", 0, "train"), ("c0", 0, "train"), ("t1", 1, "train"), ("e0", 0, "test"),
                          ("e1", 2, "test")]:
        (tmp_path / "img" / f"{key}.png").write_bytes(image_bytes(n, (8, 8)))
        rows.append(f"{key},img/{key}.png,a,{split}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ShardWarning):
        rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "sm", progress=False)
    said = next(w for w in rep["warnings"] if "in different splits" in w)
    assert "the card lists it (duplicates.examples)" not in said, said
    assert "2 of its 3 samples" in said and "w.duplicate_sets('DATASET')" in said, said


@pytest.mark.parametrize("name", ["²", "①", "³x"])
def test_a_split_named_with_a_non_decimal_digit_is_ordered_by_name(name: str) -> None:
    assert parse_split(f"train=0.5,{name}=0.5") == {"train": 0.5, name: 0.5}
    assert list(split_order({name: 0.5, "train": 0.5})) == ["train", name]
    assert list(split_order({"10": 0.3, "٣": 0.3, "2": 0.4})) == ["2", "٣", "10"]  # Arabic-Indic 3 is a number
