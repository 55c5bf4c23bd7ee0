"""QA38 splitfrom: --split-from against an index without member CRC-32s (D#1), its counts (D#6), the class-id
warning's cut lists (F#2) and the dtype-mix advice for complex fields (C#3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mmdata.shards import index as idx
from mmdata.shards.writer import npy_dtype_mix_warning
from tests.test_identity_qa37 import _folders, _png, _shard


def _crc_less(folder: Path) -> None:
    """``folder``'s index as written before 2026-12-04: no member_crc32, no member_digest."""
    t = pq.read_table(folder / idx.INDEX)
    pq.write_table(t.drop_columns([c for c in ("member_crc32", idx.MEMBER_DIGEST) if c in t.column_names]),
                   folder / idx.INDEX)


def _redelivered(tmp_path: Path) -> tuple[Path, Path]:
    files = {f"{c}/s{i:02d}.png": _png(100 * j + i) for j, c in enumerate(("cat", "dog")) for i in range(6)}
    a = _folders(tmp_path / "a", files)
    b = _folders(tmp_path / "b", {**files, "dog/s02.png": _png(999)[:80]})  # same key, another (shorter) file
    return a, b


def test_split_from_a_crc_less_index_compares_kept_keys_by_size_and_shard_bytes(tmp_path: Path) -> None:
    """D#1: a re-delivered file under a kept key (other bytes, another size) kept the old split silently when the
    earlier index had no member_crc32 (the same data warned against an index with CRC-32s)."""
    a, b = _redelivered(tmp_path)
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _crc_less(old)
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    got = [w for w in said if "hold other content than the earlier sample" in w]
    assert len(got) == 1 and "1 of 12 samples kept by key" in got[0] and "dog_s02" in got[0], said
    card = json.loads((tmp_path / "new" / "dataset.json").read_text())["split_from"]
    assert card["other_content"] == 1 and card["kept"] == 12 and "kept_by_key" not in card, card  # (all by key)


def test_split_from_a_crc_less_index_confirms_equal_sizes_by_the_earlier_shards(tmp_path: Path) -> None:
    """D#1: a same-size re-delivery is found by the sha256 of the earlier shards' bytes; with the shards gone the
    samples are compared by size alone, and said so."""
    files = {f"cat/s{i:02d}.png": _png(300 + i) for i in range(4)}
    a = _folders(tmp_path / "a", files)
    other = bytearray(files["cat/s01.png"])
    other[-20] ^= 0xFF  # same size, other bytes
    b = _folders(tmp_path / "b", {**files, "cat/s01.png": bytes(other)})
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _crc_less(old)
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    got = [w for w in said if "hold other content" in w]
    assert len(got) == 1 and "png other bytes" in got[0], said
    for tar in old.glob("*.tar"):
        tar.unlink()
    _, said = _shard(b, tmp_path / "new2", labels_from_folders=True, split_from=old)
    got = [w for w in said if "by size alone" in w and "no member CRC-32s" in w]
    assert len(got) == 1 and "4 samples kept by key" in got[0] and "whole folder" in got[0], said
    assert not [w for w in said if "hold other content" in w], said  # equal sizes: not flagged as another file
    a2, b2 = _redelivered(tmp_path / "sizes")
    old2, _ = _shard(a2, tmp_path / "old2", labels_from_folders=True, split="train=0.5,test=0.5")
    _crc_less(old2)
    for tar in old2.glob("*.tar"):
        tar.unlink()
    _, said = _shard(b2, tmp_path / "new3", labels_from_folders=True, split_from=old2)
    assert len([w for w in said if "1 of 12 samples kept by key hold other content" in w]) == 1, said  # by size
    got = [w for w in said if "by size alone" in w]
    assert len(got) == 1 and "11 samples kept by key" in got[0], got  # the one said to differ is not counted


def test_split_from_other_content_names_the_card_count_it_is_of(tmp_path: Path) -> None:
    """D#6: the warning's "1 of N samples kept by key" and the card's `kept` (which also counts samples found by
    content) disagreed; the card now has kept_by_key, the warning's N, and the warning names it."""
    a, b = _redelivered(tmp_path)
    _folders(a, {"dog/m.png": _png(777)})
    _folders(b, {"cat/m.png": _png(777)})  # a class move: kept by content, not by key
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    card = json.loads((tmp_path / "new" / "dataset.json").read_text())["split_from"]
    got = [w for w in said if "hold other content" in w]
    assert card["kept"] == 13 and card["kept_by_key"] == 12 and card["moved_class"] == 1, card
    assert len(got) == 1 and "1 of 12 samples kept by key" in got[0] and "of kept_by_key" in got[0], got


def test_class_id_warning_counts_and_cuts_its_removed_and_added_lists(tmp_path: Path) -> None:
    """F#2: 20 removed classes were listed as 6 names with no count and no "..."."""
    files = {f"c{i:02d}/s.png": _png(500 + i) for i in range(10)}
    a = _folders(tmp_path / "a", files)
    kept = {k: v for k, v in files.items() if int(k[1:3]) >= 8}
    added = {f"a{i:02d}/s.png": _png(600 + i) for i in range(9)}
    b = _folders(tmp_path / "b", {**kept, **added})
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    got = [w for w in said if "class ids name other classes" in w]
    assert len(got) == 1, said
    assert "removed (8): 'c00', 'c01', 'c02', 'c03', 'c04', 'c05' and 2 more" in got[0], got
    assert "added (9): 'a00'" in got[0] and "and 3 more" in got[0], got
    card = json.loads((tmp_path / "new" / "dataset.json").read_text())
    assert not [w for w in card.get("warnings", []) if "'c00'" in str(w)], card.get("warnings")  # names stay off


def test_dtype_mix_advice_for_a_complex_field_is_a_complex_dtype(tmp_path: Path) -> None:
    """C#3: 5 float32 files beside complex ones were advised x.astype(np.float32), dropping the imaginary part."""
    text = npy_dtype_mix_warning("iq", {"float32": 5, "complex64": 3, "complex128": 2, "int16": 1},
                                 {"int16": "BPSK/i16.iq.npy"})
    assert text is not None and "x.astype(np.complex64)" in text and "np.float32" not in text, text
    assert "imaginary part" in text, text
    real = npy_dtype_mix_warning("imu", {"float32": 11, "float64": 1}, {})
    assert real is not None and "x.astype(np.float32)" in real and "imaginary" not in real, real
    # the real shard path: a folder of mixed .npy files
    r = np.random.default_rng(0)
    for i in range(6):
        x = r.standard_normal(16).astype(np.float32)
        (tmp_path / "src" / "A").mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "src" / "A" / f"x{i}.iq.npy", x if i < 4 else (x + 1j * x).astype(np.complex64))
    _, said = _shard(tmp_path / "src", tmp_path / "ds", labels_from_folders=True)
    got = [w for w in said if "dtypes" in w and "'iq'" in w]
    assert len(got) == 1 and "x.astype(np.complex64)" in got[0] and "astype(np.float32)" not in got[0], said
