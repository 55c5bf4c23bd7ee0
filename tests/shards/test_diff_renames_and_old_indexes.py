"""QA round 34: ``mmdata diff`` across an upgrade and an erasure.

upgrade #2: an index written before 2026-12-04 (no ``member_crc32``) said "members compared by size only", yet a
file moved to another class folder was not paired at all (removed + added). upgrade #5: ``--fail-on any`` failed a
same-bytes rebuild because the older card never recorded a licence (absent, not None). gdpr #11: samples renamed
to scrub a name (same files, other keys) were counted as removed + added though the index's CRC-32s pair them.
Real PNG / WAV files, real shards and indexes; an "old" index is a real one with its CRC-32 column dropped."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards import index as idx
from mmdata.shards.diff import diff


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, 3)).save(buf, "PNG")
    return buf.getvalue()


def _wav(i: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(400) * (0.01 + 0.003 * i)).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


def _tree(root: Path, classes: str = "abc", n: int = 6) -> Path:
    for c in classes:
        d = root / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            j = 100 * "abc".index(c) + i
            (d / f"{c}{i}.png").write_bytes(_png(j))
            (d / f"{c}{i}.wav").write_bytes(_wav(j))
    return root


def _shard(src: Path, out: Path, **kw: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, out, progress=False, **kw)
    return out


def _as_written_before_crc32(ds: Path) -> Path:
    """The index as mmdata wrote it before 2026-12-04: no member_crc32 column."""
    table = pq.read_table(ds / idx.INDEX)
    pq.write_table(table.drop_columns(["member_crc32"]), ds / idx.INDEX)
    return ds


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


def test_a_class_folder_move_is_paired_by_size_against_an_old_index(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw")
    v1 = _as_written_before_crc32(_shard(raw, tmp_path / "v1", split="train=0.5,test=0.5"))
    moved = shutil.copytree(raw, tmp_path / "raw2")
    for ext in ("png", "wav"):
        (moved / "a" / f"a1.{ext}").rename(moved / "b" / f"a1.{ext}")
    v2 = _shard(moved, tmp_path / "v2", split="train=0.5,test=0.5")
    d = diff(v1, v2)
    # sizes alone pair two clips of one length: listed apart, still removed + added (QA34 review E2 #2)
    assert d["counts"]["added"] == 1 and d["counts"]["removed"] == 1 and d["counts"]["relabelled"] == 0
    (item,) = d["possibly_relabelled"]["items"]
    assert (item["a"], item["b"], item["matched"]) == ("a", "b", "class folder, sizes only")
    (w,) = d["warnings"]
    assert "no member CRC-32s" in w and "sizes" in w and "removed + added" in w
    # with CRC-32s on both sides the pair is the strong one
    v1n = _shard(raw, tmp_path / "v1n", split="train=0.5,test=0.5")
    (strong,) = diff(v1n, v2)["relabelled"]["items"]
    assert strong["matched"] == "class folder"


def test_renamed_samples_are_paired_by_content(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw")
    v1 = _shard(raw, tmp_path / "v1", split="train=0.5,test=0.5")
    scrubbed = shutil.copytree(raw, tmp_path / "raw2")
    for i in (0, 1):
        for ext in ("png", "wav"):
            (scrubbed / "c" / f"c{i}.{ext}").rename(scrubbed / "c" / f"r{i}.{ext}")
    for ext in ("png", "wav"):  # the erased subject's sample
        (scrubbed / "b" / f"b3.{ext}").unlink()
    v2 = _shard(scrubbed, tmp_path / "v2", split_from=str(v1))
    d = diff(v1, v2)
    # a renamed sample stays removed + added (QA34 review E2 #1): the erased one is the removed item not renamed
    assert d["counts"]["removed"] == 3 and d["counts"]["added"] == 2
    assert [i["source_key"] for i in d["removed"]["items"] if "renamed_to" not in i] == ["b/b3"]
    assert d["renamed"]["total"] == 2 and not d["same"]
    items = d["renamed"]["items"]
    assert sorted(i["source_key"] for i in items) == ["c/r0", "c/r1"] and all(i["a_key"] != i["key"] for i in items)
    assert sum(r.get("renamed", 0) for r in d["per_split"].values()) == 2
    code, out = _cli(["diff", str(v1), str(v2), "--fail-on", "renamed"])
    assert code == 1 and "2 of the added / removed renamed" in out and "3 removed" in out
    code, _ = _cli(["diff", str(v1), str(v2), "--fail-on", "added"])
    assert code == 1
    # an old index cannot pair them (sizes alone would pair two clips of one length): removed + added, as warned
    _as_written_before_crc32(v1)
    d = diff(v1, v2)
    assert d["renamed"]["total"] == 0 and d["counts"]["added"] == 2 and "removed + added" in d["warnings"][0]


def test_a_licence_the_older_card_never_recorded_is_no_change(tmp_path: Path) -> None:
    raw = _tree(tmp_path / "raw", n=3)
    old = _shard(raw, tmp_path / "old", split="train=1.0")
    card = json.loads((old / idx.CARD).read_text())
    for k in ("license", idx.CARD_DIGESTS):  # a card of an mmdata that recorded neither
        card.pop(k, None)
    (old / idx.CARD).write_text(json.dumps(card))
    new = _shard(raw, tmp_path / "new", split="train=1.0", license="CC-BY-4.0")
    d = diff(old, new)
    assert d["card"]["license"]["recorded_now"] is True and d["card"]["changed"] is False and d["same"]
    code, out = _cli(["diff", str(old), str(new), "--fail-on", "any"])
    assert code == 0, out
    assert "license: not recorded in A" in out
    # a licence that was recorded (None included) and changed is still a change under the gate
    card["license"] = None
    (old / idx.CARD).write_text(json.dumps(card))
    assert diff(old, new)["card"]["changed"] is True
    code, _ = _cli(["diff", str(old), str(new), "--fail-on", "card"])
    assert code == 1
