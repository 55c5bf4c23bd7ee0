"""Compressed manifests (QA round 25, B-D14): Lhotse's default ``*.jsonl.gz`` and ``.csv.gz`` / ``.tsv.gz`` are
read (decompressed by suffix, as pandas does); other compressions say how to decompress; a ``.json`` manifest's
advice follows what the file holds (``jq -c '.[]'`` garbles a JSON Lines file)."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.testing import audio_bytes


def _rows(folder: Path, n: int = 4) -> list[dict]:
    (folder / "audio").mkdir(parents=True)
    rows = []
    for i in range(n):
        (folder / "audio" / f"rec{i}.flac").write_bytes(audio_bytes(i))
        rows.append({"key": f"rec{i}", "audio": f"audio/rec{i}.flac", "text": f"utt {i}", "speaker": f"s{i % 2}"})
    return rows


@pytest.mark.parametrize("kind", ["jsonl", "csv", "tsv"])
def test_gzipped_manifest_gives_the_dataset_of_the_plain_one(tmp_path: Path, kind: str) -> None:
    rows = _rows(tmp_path)
    if kind == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        sep = "," if kind == "csv" else "\t"
        text = sep.join(rows[0]) + "\n" + "".join(sep.join(r.values()) + "\n" for r in rows)
    (tmp_path / f"m.{kind}").write_text(text)
    (tmp_path / f"m.{kind}.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    a = mmdata.shard(tmp_path / f"m.{kind}", tmp_path / "plain", meta=["speaker"], progress=False)
    b = mmdata.shard(tmp_path / f"m.{kind}.gz", tmp_path / "gz", meta=["speaker"], progress=False)
    assert a["samples"] == b["samples"] == 4
    assert a["fingerprint"] == b["fingerprint"]  # the same shards' bytes
    assert (pq.read_table(tmp_path / "plain" / "index.parquet").equals(pq.read_table(tmp_path / "gz" / "index.parquet")))


def test_other_compressions_and_bad_gzip_say_what_to_do(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (tmp_path / "m.jsonl.bz2").write_bytes(bz2.compress(text))
    with pytest.raises(SourceError, match=r"decompress it first.*bunzip2 -k"):
        mmdata.shard(tmp_path / "m.jsonl.bz2", tmp_path / "o1", progress=False)
    (tmp_path / "bad.jsonl.gz").write_bytes(text)  # not gzip at all
    with pytest.raises(SourceError, match=r"bad.jsonl.gz: not a readable gzip file"):
        mmdata.shard(tmp_path / "bad.jsonl.gz", tmp_path / "o2", progress=False)
    # an error inside names the file given
    (tmp_path / "broken.jsonl.gz").write_bytes(gzip.compress(b'{"key": "a"}\nnot json\n'))
    with pytest.raises(SourceError, match=r"broken.jsonl.gz"):
        mmdata.shard(tmp_path / "broken.jsonl.gz", tmp_path / "o3", progress=False)


def test_json_manifest_advice_follows_what_the_file_holds(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SourceError, match=r"holds JSON Lines.*rename it to .jsonl") as info:
        mmdata.shard(tmp_path / "lines.json", tmp_path / "o1", progress=False)
    assert "jq" not in str(info.value)
    (tmp_path / "array.json").write_text(json.dumps(rows))
    with pytest.raises(SourceError, match=r"jq -c '\.\[\]'"):
        mmdata.shard(tmp_path / "array.json", tmp_path / "o2", progress=False)
    (tmp_path / "coco.json").write_text(json.dumps({"images": rows, "annotations": []}, indent=2))
    with pytest.raises(SourceError, match=r"one JSON object") as info:
        mmdata.shard(tmp_path / "coco.json", tmp_path / "o3", progress=False)
    assert "jq" not in str(info.value)
