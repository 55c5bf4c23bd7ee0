"""QA38 F #1: ``open_dataset(keys=[...])`` with a sample's own key that the index rewrote (non-ASCII: the original
kept in ``source_key``) names the index key to pass instead of only "not in split"."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.testing.media import image_bytes


def test_a_source_key_names_the_key_to_pass(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    own = [f"échantillon_日本語_{i:06d}_κλειδί" for i in range(4)]
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "label"])
        for i, k in enumerate(own):
            (raw / f"{i}.png").write_bytes(image_bytes(i))
            w.writerow([k, f"{i}.png", "cat" if i % 2 else "dog"])
    out = tmp_path / "ds"
    mmdata.shard(raw / "m.csv", out, progress=False)
    rows = {r["source_key"]: r["key"] for r in idx.load_index(out).to_pylist()}
    assert rows[own[0]] != own[0]  # the index rewrote it
    with pytest.raises(ShardError) as e:
        mmdata.open_dataset(out, split="train", keys=[own[0]])
    msg = str(e.value)
    assert f"{own[0]!r} is the source_key of {rows[own[0]]!r} (split 'train')" in msg, msg
    assert "pass those keys" in msg and "source_key column" in msg
    # the key it names opens
    ds = mmdata.open_dataset(out, split="train", keys=[rows[own[0]]])
    assert [s.key for s in ds] == [rows[own[0]]]  # type: ignore[attr-defined]
    # a key that is no one's source key: the message as before, no source_key sentence
    with pytest.raises(ShardError) as e:
        mmdata.open_dataset(out, split="train", keys=["nobody"])
    assert "not in split 'train'" in str(e.value) and "source_key of" not in str(e.value)
