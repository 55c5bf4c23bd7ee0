"""Review of QA28 #3: printable-ASCII captions are never refused as UTF-16 without a byte order mark (every second
character '0', '1', ',', '-' or '!' read as kana, Bopomofo, Tifinagh...); UTF-16 of an alphabet still is."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.shards.sources import text_refusal, utf16_of
from mmdata.testing import image_bytes

ASCII = ["a0b0c0d0", "0a0b0c0d", "a1b1c1d1", "1,2,3,4,", "a,b,c,d,", "1-2-3-4-", "A-B-C-D-", "E!F!G!H!",
         "0x0A0B0C0D", "a0a0a0", "A0B0C0", "r0g0b0", "h0h0h0h0", "K1L1M1N1", "p1q1r1s1", "3,5,7,9,", "x,y,z,",
         "1a1b1c1d", "a0b0c0d0\n", "a0\tb0c0d0e0"]


@pytest.mark.parametrize("caption", ASCII)
def test_printable_ascii_is_not_utf16(caption: str) -> None:
    assert utf16_of(caption.encode()) == (None, False)
    assert text_refusal(caption.encode()) is None


@pytest.mark.parametrize("text", ["كلب يجري", "кошка спит", "नमस्ते दुनिया", "ねこ がいます", "แมวนอน", "כלב"])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_of_an_alphabet_is_still_refused(text: str, codec: str) -> None:
    assert text_refusal(text.encode(codec)) is not None


def test_hiragana_without_a_space_in_utf16_le_is_the_accepted_loss() -> None:
    assert text_refusal("ねこ".encode("utf-16-le")) is None  # 'm0S0': printable ASCII, stored as such


def test_ascii_captions_are_sharded(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for i, c in enumerate(ASCII[:6]):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        (src / f"{i}.txt").write_text(c, "utf-8")
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert not rep["skipped"], rep["skipped"]
    got = {s.key: s.get("text") for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    assert sorted(got.values()) == sorted(ASCII[:6])
