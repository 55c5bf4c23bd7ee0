"""The hint for text that is not UTF-8 names the legacy encoding it looks like (GBK, Big5, Shift-JIS, EUC-KR,
Windows-1251 / 1256) and how to convert it; Latin-1 / Windows-1252 stays the last guess (QA round 26, F8: GBK
text got "Latin-1 or Windows-1252?"). The text is still refused: only the hint changes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import legacy_encoding, not_utf8_reason
from mmdata.testing import audio_bytes

CASES = [
    ("你好世界，今天天气很好。", "gbk", "GBK (gb18030)", "gb18030"),
    ("我們今天去公園散步。", "big5", "Big5", "big5"),
    ("こんにちは、世界。今日はいい天気です。", "shift_jis", "Shift-JIS", "cp932"),
    ("안녕하세요 세계, 오늘 날씨가 좋네요", "euc-kr", "EUC-KR", "cp949"),
    ("Привет, мир! Сегодня хорошая погода.", "cp1251", "Windows-1251", "cp1251"),
    ("مرحبا بالعالم، الطقس جميل اليوم", "cp1256", "Windows-1256", "cp1256"),
]


def _reason(data: bytes) -> str:
    with pytest.raises(UnicodeDecodeError) as exc:
        data.decode("utf-8")
    return not_utf8_reason(data, exc.value)


@pytest.mark.parametrize(("text", "enc", "name", "iconv"), CASES)
def test_legacy_encoding_named(text: str, enc: str, name: str, iconv: str) -> None:
    reason = _reason(text.encode(enc))
    assert name in reason and f"iconv -f {iconv} -t utf-8" in reason, reason
    assert "Latin-1" not in reason


def test_gbk_short_example_from_report() -> None:
    reason = _reason("你好世界".encode("gbk"))
    assert "GBK (gb18030)" in reason and "iconv -f gb18030 -t utf-8" in reason, reason


@pytest.mark.parametrize("text", ["café au lait", "naïve über façade", "Ærøskøbing señor"])
def test_latin_text_keeps_the_latin1_hint(text: str) -> None:
    reason = _reason(text.encode("cp1252"))
    assert "Latin-1 or Windows-1252" in reason, reason
    assert legacy_encoding(text.encode("cp1252")) is None


def test_noise_gets_no_guess() -> None:
    data = bytes(range(0x80, 0x100)) * 3
    assert legacy_encoding(data) is None


def test_text_member_still_refused_with_hint(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    (src / "a.flac").write_bytes(audio_bytes(0))
    (src / "a.txt").write_bytes("你好世界".encode("gbk"))
    (src / "b.flac").write_bytes(audio_bytes(1))
    (src / "b.txt").write_bytes(b"fine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    bad = [s for s in rep["skipped"] if s["source"] == "a.txt"]
    assert bad and "GBK (gb18030)" in bad[0]["reason"] and "iconv -f gb18030" in bad[0]["reason"], rep["skipped"]


def test_manifest_line_hint(tmp_path: Path) -> None:
    (tmp_path / "a.flac").write_bytes(audio_bytes(0))
    m = tmp_path / "m.csv"
    m.write_bytes("audio,text\na.flac,你好世界，今天天气很好\n".encode("gbk"))
    with pytest.raises(SourceError, match=r"line 2 is not UTF-8.*GBK \(gb18030\).*iconv -f gb18030 -t utf-8"):
        mmdata.shard(m, tmp_path / "ds", progress=False)
    m.write_bytes("audio,text\na.flac,café\n".encode("cp1252"))
    with pytest.raises(SourceError, match="Latin-1 or Windows-1252"):
        mmdata.shard(m, tmp_path / "ds2", progress=False)


@pytest.mark.parametrize("text", ["Je vais à Paris", "un chien à la plage", "à", "Ça va, É"])
def test_latin1_with_lone_accented_words_is_not_named_cyrillic(text: str) -> None:
    """QA26 review: a Latin-1 / Windows-1252 text whose accented letters stand alone ('à') read as one-letter
    Windows-1251 words and was named Windows-1251 (its advice, `iconv -f cp1251`, turns à into Cyrillic а)."""
    got = legacy_encoding(text.encode("cp1252"))
    assert got is None or got[1] != "cp1251", got
