"""QA28 i18n #1, add-modality's part: a caption in UTF-16 without a byte order mark (Arabic: valid UTF-8 bytes,
`C\\x06D\\x06...`) or holding ESC was refused by `mmdata shard` but written by `add_modality` (its own check,
mediainfo.member_stats, only decoded the bytes). Both paths refuse the same captions now."""

from __future__ import annotations

from pathlib import Path

import mmdata
from mmdata.testing import make_sample_folder


def test_add_modality_refuses_the_captions_shard_refuses(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    ds = tmp_path / "ds"
    mmdata.shard(raw, ds, layout="columns", progress=False)
    keys = [s.key for s in mmdata.open_dataset(ds, split="train")]
    src = tmp_path / "caps"
    src.mkdir()
    bad = {keys[0]: "كلب يجري".encode("utf-16-le"), keys[1]: "cat\x1b[2J".encode()}
    for k in keys:
        (src / f"{k}.txt").write_bytes(bad.get(k, f"a caption of {k}".encode()))
    rep = mmdata.add_modality(ds, "text", src, replace=True)
    why = {s["sample"]: s["reason"] for s in rep["skipped_files"]}
    assert set(why) >= set(bad), rep
    assert "UTF-16" in why[keys[0]] and "control character" in why[keys[1]], why
    got = {s.key: s.get("text") for s in mmdata.open_dataset(ds, split="train")}
    assert got[keys[2]] == f"a caption of {keys[2]}" and got[keys[0]] is None and got[keys[1]] is None
