"""Review of QA28 #6: a short Arabic word in Windows-1256 reads as Thai or Hebrew too; the hint names Arabic
beside them (never only cp874 / cp1255, whose iconv advice writes mojibake); a whole Arabic manifest is still
named Windows-1256 first."""

from __future__ import annotations

import pytest

from mmdata.shards.sources import _legacy_guesses, legacy_encoding, not_utf8_reason

#: the words 1642df7 named Windows-1256 (the others it called Windows-1251, as now)
ARABIC = "صورة كلب سيارة بيت ماء نار شمس قمر ولد بنت رجل امرأة قلم مدرسة طفل حصان سمكة وردة جبل".split()


@pytest.mark.parametrize("word", ARABIC)
def test_a_short_arabic_word_is_named_windows_1256(word: str) -> None:
    assert "cp1256" in [codec for _, codec in _legacy_guesses(word.encode("cp1256"))]


def test_the_hint_of_a_one_word_arabic_caption_names_cp1256() -> None:
    data = "كلب".encode("cp1256")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = not_utf8_reason(data, exc, "text")
    assert "iconv -f cp1256 -t utf-8" in why, why


@pytest.mark.parametrize("word", ["עץ", "ספר", "חתול", "כלב"])
def test_a_short_hebrew_word_is_named_windows_1255(word: str) -> None:
    assert "cp1255" in [codec for _, codec in _legacy_guesses(word.encode("cp1255"))]


def test_whole_texts_are_named_first() -> None:
    rows = ["image,label"] + [f"img{i}.png,{w}" for i, w in enumerate("كلب قطة باب بحر ولد بنت".split())]
    assert legacy_encoding("\n".join(rows).encode("cp1256")) == ("Windows-1256", "cp1256")
    assert legacy_encoding("แมวนอนอยู่บนโซฟา".encode("cp874"))[1] == "cp874"
    assert legacy_encoding("חתול ישן על הספה".encode("cp1255"))[1] == "cp1255"
