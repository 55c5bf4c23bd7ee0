"""The writer's duplicate-key error names what tells the two samples apart.

QA: it named each sample's ``source_key`` ("sources 'X' and 'X'"); since augment output keeps the
original file's stem there (and the input sample's key in ``aug_source``), two copies of one original
showed one name on both sides. Where the source keys are equal it now names each record's own origin:
the augment input sample, else its file, its split, or its place in the list given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import Record, safe_key
from mmdata.shards.writer import write_records
from mmdata.testing import audio_bytes, image_bytes


def _refused(records: list[Record], out: Path) -> str:
    with pytest.raises(SourceError) as exc:
        write_records(records, out, progress=False)
    assert not out.exists()  # refused before anything is written
    return str(exc.value)


def test_two_copies_of_one_original_name_their_augment_inputs(tmp_path: Path) -> None:
    """Input ``X`` augmented to ``X_aug0`` beside the input's own ``X_aug0`` (kept): one source key."""
    img = image_bytes(0)
    copy = Record("X_aug0", "X", {"png": img}, extra={"aug_params": "[]", "aug_source": "X"})
    kept = Record("X_aug0", "X", {"png": img}, extra={"aug_params": "[]", "aug_source": "X_aug0"})
    msg = _refused([kept, Record("X", "X", {"png": img}), copy], tmp_path / "out")
    assert "two samples have key 'X_aug0'" in msg
    assert "both from source 'X'" in msg and "sources 'X' and 'X'" not in msg
    assert "augment input samples 'X' and 'X_aug0'" in msg or "augment input samples 'X_aug0' and 'X'" in msg


def test_equal_source_keys_without_aug_source_name_files_split_or_place(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "s.png", tmp_path / "b" / "s.png"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(image_bytes(1))
    msg = _refused([Record("s", "s", {"png": a}), Record("s", "s", {"png": b})], tmp_path / "o1")
    assert "both from source 's'" in msg and f"files '{a}' and '{b}'" in msg
    clip = tmp_path / "s.flac"  # one audio file (its member first by name), two images: the images tell them apart
    clip.write_bytes(audio_bytes(0))
    msg = _refused([Record("s", "s", {"flac": clip, "png": a}), Record("s", "s", {"flac": clip, "png": b})],
                   tmp_path / "o")
    assert f"files '{a}' and '{b}'" in msg

    flac = audio_bytes(0)
    msg = _refused([Record("s", "s", {"flac": flac}, split="train"), Record("s", "s", {"flac": flac}, split="val")],
                   tmp_path / "o2")
    assert "both from source 's'" in msg and "splits 'train' and 'val'" in msg

    recs = [Record("t", "t", {"flac": flac}), Record("s", "s", {"flac": flac}), Record("s", "s", {"flac": flac})]
    msg = _refused(recs, tmp_path / "o3")
    assert "both from source 's'" in msg and "records 2 and 3 of the list given" in msg


def test_different_source_keys_keep_the_message(tmp_path: Path) -> None:
    img = image_bytes(0)
    msg = _refused([Record("k", "a b", {"png": img}), Record("k", "a_b", {"png": img})], tmp_path / "out")
    assert msg.startswith("two samples have key 'k' (sources 'a b' and 'a_b': a key repeated in the source")


def test_source_keys_that_print_alike_show_their_bytes(tmp_path: Path) -> None:
    img = image_bytes(0)
    msg = _refused([Record("k", "caf\u00e9", {"png": img}), Record("k", "cafe\u0301", {"png": img})], tmp_path / "o")
    assert "bytes b'caf\\xc3\\xa9'" in msg and "bytes b'cafe\\xcc\\x81'" in msg


def test_a_manifest_whose_rows_give_one_key(tmp_path: Path) -> None:
    """A manifest never reaches the writer with two samples of one key: discovery refuses them, naming
    the rows (one key column value twice) or the two source keys (two names of one safe key)."""
    for n in ("a", "b"):
        (tmp_path / f"{n}.png").write_bytes(image_bytes(0))
    (tmp_path / "m.csv").write_text("key,image\ns1,a.png\ns1,b.png\n")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert "manifest m.csv: rows 1 and 2 are both sample 's1'; give each row its own key" in str(exc.value)

    odd = "a b"
    (tmp_path / "m2.csv").write_text(f"key,image\n{odd},a.png\n{safe_key(odd)},b.png\n")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "m2.csv", tmp_path / "ds2", progress=False)
    assert f"two samples map to key {safe_key(odd)!r}: 'a b' and {safe_key(odd)!r}; rename one" in str(exc.value)
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds2").exists()
