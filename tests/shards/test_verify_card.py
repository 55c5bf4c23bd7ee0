"""QA 2026-12-04 (a maintainer shipping new versions of a dataset): ``verify`` never checked the card's
fingerprint or label names against the shards and the index (D2), could name only the shard whose bytes
changed (D3: the index now records each member's CRC-32, and ``--deep`` names the sample and member),
exited 2 for a missing shards table but 1 for a missing index, left ``key`` / ``member`` out of its JSON
problems and passed an edited ``source_key`` (D7)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.io import file_sha256
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder
from tests.shards.test_verify_qa import _edit_card, _edit_index, _main  # the verify QA tests' edits and entry point


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("verify_card")
    raw = make_sample_folder(t / "raw", n=12, odd_stems=True)
    (raw / "labels.txt").write_text("zero\none\ntwo\n")
    mmdata.shard(raw, t / "ds", maxcount=4, split="train=0.5,test=0.5", progress=False)
    return t / "ds"


@pytest.fixture
def ds(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def test_an_intact_dataset_passes_and_its_card_records_what_verify_checks(ds: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert mmdata.verify(ds, deep=True) == {"ok": True, "checked": 4, "problems": []}
    card = idx.load_card(ds)
    shas = pq.read_table(ds / idx.SHARDS).column("sha256").to_pylist()
    assert card["fingerprint"] == idx.fingerprint(shas)
    rows = pq.read_table(ds / idx.INDEX).to_pydict()
    assert card["source_keys_sha256"] == idx.source_keys_digest(rows["key"], rows["source_key"])
    code, out, _ = _main(["verify", str(ds), "--deep"], capsys)
    assert code == 0 and out.startswith("ok")


# ---- D2: the card against the shards and the index -------------------------------------------------------
def test_an_edited_fingerprint_is_named(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_card(ds, lambda c: c.update(fingerprint="0" * 64))
    (p,) = mmdata.verify(ds)["problems"]
    assert p["shard"] == idx.CARD and p["problem"].startswith("fingerprint does not match the shards' sha256")
    assert p["found"] == f"{'0' * 64} ({idx.CARD})" and p["expected"].endswith(f"(from {idx.SHARDS})")
    code, out, _ = _main(["verify", str(ds)], capsys)
    assert code == 1 and "dataset.json: fingerprint does not match" in " ".join(out.split())


def test_a_shorter_label_names_list_is_named(ds: Path) -> None:
    _edit_card(ds, lambda c: c.update(label_names=c["label_names"][:2]))
    problems = [p["problem"] for p in mmdata.verify(ds)["problems"]]
    assert problems[0] == "label_names and num_classes disagree: 2 names for 3 classes"
    assert any(p.startswith("4 samples of index.parquet have a label outside the 2 label_names") for p in problems)


def test_label_names_and_num_classes_edited_together_are_caught_by_the_index_labels(ds: Path) -> None:
    _edit_card(ds, lambda c: c.update(label_names=c["label_names"][:2], num_classes=2))
    (p,) = [p for p in mmdata.verify(ds)["problems"] if "outside" in p["problem"]]
    assert p["shard"] == idx.CARD and p["expected"] == "labels 0..1" and p["key"] is not None
    assert p["found"] == f"2 (key {p['key']!r})"


def test_an_edited_source_key_is_named(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rename(rows: list[dict[str, Any]]) -> None:
        rows[1]["source_key"] = "someone/else"
    _edit_index(ds, rename)
    key = pq.read_table(ds / idx.INDEX).column("key").to_pylist()[1]
    rep = mmdata.verify(ds)
    (p,) = rep["problems"]
    assert p["shard"] == idx.CARD and "source_key of some samples of index.parquet" in p["problem"]
    assert p["key"] == key and f"key {key!r} has source_key 'someone/else'" in p["problem"]
    code, out, _ = _main(["verify", str(ds), "--json"], capsys)
    assert code == 1 and json.loads(out)["problems"][0]["key"] == key


# ---- D3: per-member checksums -----------------------------------------------------------------------------
def test_the_index_records_each_members_crc32(ds: Path) -> None:
    rows = pq.read_table(ds / idx.INDEX).to_pylist()
    by_name = {m: c for r in rows for m, c in zip(r["members"], r["member_crc32"])}
    for shard in sorted(ds.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for ti in tar:
                assert by_name[ti.name] == zlib.crc32(tar.extractfile(ti).read())  # type: ignore[union-attr]


def _flip_member(ds: Path, shard: str, member: str) -> None:
    """Change one byte of ``member`` in place (same size) and record the shard's new sha256, as a tool that
    'repairs' shards would: only the member checksums can see which sample changed."""
    src = tarfile.open(ds / shard)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
        for ti in src.getmembers():
            data = src.extractfile(ti).read()  # type: ignore[union-attr]
            if ti.name == member:
                data = data[:-1] + bytes([data[-1] ^ 1])
            info = tarfile.TarInfo(ti.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    (ds / shard).write_bytes(buf.getvalue())
    t = pq.read_table(ds / idx.SHARDS).to_pylist()
    for r in t:
        if r["shard"] == shard:
            r["sha256"], r["bytes"] = file_sha256(ds / shard), (ds / shard).stat().st_size
    idx.write_shards_table(ds, t)


def test_deep_verify_names_the_sample_and_member_whose_bytes_changed(ds: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    row = pq.read_table(ds / idx.INDEX).to_pylist()[2]
    member = next(m for m in row["members"] if m.endswith(".txt"))
    _flip_member(ds, row["shard"], member)
    _edit_card(ds, lambda c: c.update(fingerprint=idx.fingerprint(
        pq.read_table(ds / idx.SHARDS).column("sha256").to_pylist())))
    assert mmdata.verify(ds)["ok"]  # sizes, names and the (re-recorded) sha256 agree
    problems = mmdata.verify(ds, deep=True)["problems"]
    (p,) = [p for p in problems if "CRC-32" in p["problem"]]
    assert (p["shard"], p["key"], p["member"]) == (row["shard"], row["key"], member)
    assert p["expected"].startswith("crc32 ") and p["expected"] != p["found"]
    code, out, _ = _main(["verify", str(ds), "--deep", "--json"], capsys)
    assert code == 1 and any(q["member"] == member for q in json.loads(out)["problems"])


def test_an_index_without_member_checksums_still_verifies(ds: Path) -> None:
    pq.write_table(pq.read_table(ds / idx.INDEX).drop_columns(["member_crc32"]), ds / idx.INDEX)
    assert mmdata.verify(ds, deep=True)["ok"]


# ---- D7: exit codes and problem fields -------------------------------------------------------------------
def test_every_json_problem_has_key_and_member(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_card(ds, lambda c: c.update(fingerprint="f" * 64))
    (ds / "stray-000000.tar").write_bytes(b"")
    code, out, _ = _main(["verify", str(ds), "--json"], capsys)
    problems = json.loads(out)["problems"]
    assert code == 1 and len(problems) == 2
    assert all({"shard", "problem", "expected", "found", "key", "member"} <= set(p) for p in problems)


@pytest.mark.parametrize("name", [idx.SHARDS, idx.INDEX])
@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_damaged_table_is_a_problem_found_exit_1(ds: Path, name: str, damage: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Both tables alike: a dataset whose files are wrong is a problem found (1); 2 is for a path that is
    no readable dataset at all (it used to be 2 for shards.parquet, 1 for index.parquet)."""
    if damage == "missing":
        (ds / name).unlink()
    else:
        (ds / name).write_bytes(b"garbage\n")
    code, out, _ = _main(["verify", str(ds), "--json"], capsys)
    rep = json.loads(out)
    assert code == 1 and rep["ok"] is False
    (p,) = [p for p in rep["problems"] if p["shard"] == name]
    assert p["problem"] == ("missing" if damage == "missing" else "unreadable")


def test_no_readable_card_is_exit_2(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ds / idx.CARD).write_text("{")
    code, _, err = _main(["verify", str(ds)], capsys)
    assert code == 2 and "invalid JSON" in err
    (ds / idx.CARD).unlink()
    code, _, err = _main(["verify", str(ds)], capsys)
    assert code == 2 and "dataset.json" in err
    code, _, _ = _main(["verify", str(tmp_path / "nope")], capsys)
    assert code == 2


def test_add_modality_records_the_new_members_checksums(tmp_path: Path) -> None:
    import numpy as np

    raw = make_sample_folder(tmp_path / "raw", n=6)
    ds = tmp_path / "ds"
    mmdata.shard(raw, ds, layout="columns", maxcount=4, progress=False)
    keys = pq.read_table(ds / idx.INDEX).column("key").to_pylist()
    (tmp_path / "depth").mkdir()
    for k in keys:
        np.save(tmp_path / "depth" / f"{k}.depth.npy", np.full((2, 2), len(k), dtype=np.float32))
    mmdata.add_modality(ds, "depth", tmp_path / "depth")
    rows = pq.read_table(ds / idx.INDEX).to_pylist()
    assert all(len(r["member_crc32"]) == len(r["members"]) for r in rows)
    assert mmdata.verify(ds, deep=True)["ok"]
