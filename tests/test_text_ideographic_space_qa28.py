"""Review of QA28 #9: the ideographic space U+3000 stays attached to the CJK unit before it, as at 1642df7, so
text augmentation writes the bytes it wrote before for Japanese captions; only U+3001-U+303F were split into P*
(punctuation) and characters of a word."""

from __future__ import annotations

from mmdata.text import Tokenizer

OLD_UNITS = {"猫\u3000犬が走る": ["猫\u3000", "犬", "が", "走", "る"],
             "東京\u3000大阪へ行く": ["東", "京\u3000", "大", "阪", "へ", "行", "く"]}


def test_the_ideographic_space_ends_the_unit_before_it() -> None:
    for text, units in OLD_UNITS.items():
        assert [str(u) for u in Tokenizer.units(text)] == units


def test_rebuild_and_join_keep_the_ideographic_space() -> None:
    text = "猫\u3000犬が走る"
    units = Tokenizer.units(text)
    assert Tokenizer.rebuild(text, units, [units[0], *units[2:]]) == "猫\u3000が走る"
    assert Tokenizer.join([str(u) for u in units]) == text


def test_its_id_is_the_unit_without_it() -> None:
    tok = Tokenizer()
    assert tok.encode("猫\u3000犬") == tok.encode("猫 犬")
    assert tok.encode("二〇二四年") != tok.encode("二二四年")  # the QA28 fix stays
