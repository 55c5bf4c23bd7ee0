"""QA28 i18n #4 / #8: the tokenizer's CJK letters and invisible direction marks."""

from __future__ import annotations

import pytest

from mmdata.datasets.avdigits import CLUES
from mmdata.text import UNK_ID, Tokenizer

#: the ids of avdigits' clues before the QA28 change (its recorded results rely on them)
_AVDIGITS_IDS = [[907, 709, 4006], [907, 119, 4006], [2280, 100, 4006], [3805, 2280, 100, 4006], [3179, 315, 119],
                 [3726, 315, 119], [3179, 315, 142], [3726, 315, 4056], [2280, 2925, 2700],
                 [3571, 202, 3993, 2499, 4056], [2007, 380, 2184], [3338, 415, 4006],
                 [3338, 4006, 1741, 3742, 3144, 2280, 1881], [3338, 4006, 1741, 1497, 1741, 2280, 460],
                 [3338, 4006, 1741, 257, 1741, 2280, 1621], [3338, 4006, 1741, 1046, 3144, 2280, 1632],
                 [3338, 4006, 1741, 1497, 1741, 2280, 1384], [3338, 4006, 1741, 4002, 3593, 2280, 3563],
                 [3338, 4006, 1741, 257, 1741, 2280, 1708], [3338, 4006, 1741, 2942, 1741, 2280, 2792]]


def test_avdigits_clues_keep_their_ids() -> None:
    tok = Tokenizer()
    assert [tok.encode(text) for text, _ in CLUES] == _AVDIGITS_IDS


@pytest.mark.parametrize(("a", "b"), [("二〇二四年", "二二四年"), ("人々", "人"), ("〆切", "切")])
def test_cjk_letters_of_the_symbols_block_are_not_punctuation(a: str, b: str) -> None:
    tok = Tokenizer()
    assert tok.encode(a) != tok.encode(b)
    assert UNK_ID not in tok.encode(a)


def test_ideographic_zero_is_its_own_unit() -> None:
    assert Tokenizer.words("二〇二四年") == ["二", "〇", "二", "四", "年"]
    assert Tokenizer().encode("〇") != [UNK_ID]
    assert Tokenizer.words("〃〡〻") == ["〃", "〡", "〻"]  # 〃 (Po) is a unit only at the start


def test_cjk_punctuation_still_stripped() -> None:
    tok = Tokenizer()
    assert tok.encode("猫。") == tok.encode("猫") == tok.encode("猫、")
    assert Tokenizer.words("片，户。") == ["片，", "户。"]


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
                                  "\u2067", "\u2068", "\u2069", "\ufeff"])
def test_direction_marks_do_not_change_ids(mark: str) -> None:
    tok = Tokenizer()
    assert tok.encode(f"كلب{mark} يجري") == tok.encode("كلب يجري")
    assert tok.encode(f"{mark}Cat") == tok.encode("Cat")
    assert tok.encode(f"كلب {mark} يجري") == tok.encode("كلب يجري")  # one alone is no token


def test_zwj_and_zwnj_still_spell_words() -> None:
    tok = Tokenizer()
    assert tok.encode("می\u200cخواهم") != tok.encode("میخواهم")
    assert Tokenizer.words("👩\u200d👩\u200d👧 x") == ["👩\u200d👩\u200d👧", "x"]


def test_rebuild_keeps_a_direction_mark_between_units() -> None:
    text = "كلب \u200fيجري بسرعة"
    units = Tokenizer.units(text)
    assert [str(u) for u in units] == ["كلب", "يجري", "بسرعة"]
    assert Tokenizer.rebuild(text, units, units[:2]) == "كلب \u200fيجري"
