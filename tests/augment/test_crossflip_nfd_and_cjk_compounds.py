"""QA33 consistent_hflip: NFD captions swap their pair words (multilingual #1), a soft hyphen or a zero-width
character between letters is inside a word (#10), CJK compounds in which 左 / 右 are not a side stay (#2)."""

from __future__ import annotations

import unicodedata as ud

import numpy as np
import pytest
import torch

from mmdata.augment.cross import CJK_KEEP, ConsistentHFlip, swap_left_right
from mmdata.types import Sample, collate

IMG = torch.zeros((3, 4, 4), dtype=torch.uint8)
PAIRS = [["trái", "phải"], ["왼쪽", "오른쪽"], ["izquierda", "derecha"], ["gauche", "droite"]]


def _flip(op: ConsistentHFlip, text: str) -> str:
    s = Sample("k", {"image": IMG, "text": text})
    return op.transform(s, op.sample_params(np.random.default_rng(0), s) or {})["text"]


@pytest.mark.parametrize("text,want", [("con mèo bên trái", "con mèo bên phải"),
                                       ("고양이가 왼쪽에 있다", "고양이가 오른쪽에 있다"),
                                       ("Trái, à gauche", "Phải, à droite")])
@pytest.mark.parametrize("form", ["NFC", "NFD"])
@pytest.mark.parametrize("pair_form", ["NFC", "NFD"])
def test_pairs_match_whatever_the_normalization_form(text: str, want: str, form: str, pair_form: str) -> None:
    op = ConsistentHFlip(pairs=[[ud.normalize(pair_form, w) for w in p] for p in PAIRS])
    out = _flip(op, ud.normalize(form, text))
    assert out == ud.normalize(form, want)  # swapped, and written back in the caption's own form


def test_untouched_characters_keep_their_bytes() -> None:
    nfd = ud.normalize("NFD", "bên trái")  # swapped only on its NFC: the text around it keeps its own form
    rest = " caf\u00e9 cafe\u0301 " + ud.normalize("NFD", "xtrái")  # NFC, NFD, trái inside a word
    out = swap_left_right(nfd + rest, [["left", "right"], ["trái", "phải"]])
    assert out == ud.normalize("NFD", "bên phải") + rest
    assert out.encode() == ud.normalize("NFD", "bên phải").encode() + rest.encode()
    text = "cafe\u0301 left " + ud.normalize("NFC", "trái") + " 고양이"  # NFD café, NFC trái: mixed forms
    out = swap_left_right(text, [["left", "right"], ["trái", "phải"]])
    assert out == "cafe\u0301 right " + ud.normalize("NFC", "phải") + " 고양이"
    assert swap_left_right("cafe\u0301 only") == "cafe\u0301 only"  # nothing swapped: the text as it was


def test_batched_kernel_agrees_on_nfd() -> None:
    op = ConsistentHFlip(pairs=PAIRS)
    texts = [ud.normalize("NFD", "con mèo bên trái"), ud.normalize("NFD", "왼쪽에 개")]
    batch = collate([Sample(f"k{i}", {"image": IMG, "text": t}) for i, t in enumerate(texts)])
    out = op.apply_batch(batch, [{"applied": True}] * 2)
    assert out["text"] == [_flip(op, t) for t in texts]
    assert out["text"] == [ud.normalize("NFD", "con mèo bên phải"), ud.normalize("NFD", "오른쪽에 개")]  # swapped


@pytest.mark.parametrize("joiner", ["\u00ad", "\u200c", "\u200d", "\u2060"])
def test_invisible_characters_between_letters_are_inside_a_word(joiner: str) -> None:
    assert swap_left_right(f"left{joiner}over food") == f"left{joiner}over food"
    assert swap_left_right(f"over{joiner}left") == f"over{joiner}left"
    assert swap_left_right(f"the left{joiner} cat") == f"the right{joiner} cat"  # not between letters: a boundary


@pytest.mark.parametrize("text,want", [("the\u200bleft\u200bcat", "the\u200bright\u200bcat"),
                                       ("photo\u200bleft\u200bside", "photo\u200bright\u200bside"),
                                       ("Left\u200bover", "Right\u200bover"),
                                       (ud.normalize("NFD", "bên\u200btrái"), ud.normalize("NFD", "bên\u200bphải"))])
def test_a_zero_width_space_is_a_word_break(text: str, want: str) -> None:
    """U+200B separates words for the tokenizer (the words it gives are the words swapped: QA33 review)."""
    from mmdata.text import Tokenizer

    assert swap_left_right(text, [["left", "right"], ["trái", "phải"]]) == want
    assert _flip(ConsistentHFlip(pairs=[["left", "right"], ["trái", "phải"]]), text) == want
    assert len(Tokenizer.words(text)) == text.count("\u200b") + 1


@pytest.mark.parametrize("text,want", [("座右铭是努力", None), ("他是右翼政党的人", None), ("左翼と右翼", None),
                                       ("被左迁到地方", None), ("左遷された", None), ("業績は右肩上がり", None),
                                       ("佐藤さんは左利き", None), ("右肩に猫", "左肩に猫"), ("左边的猫", "右边的猫"),
                                       ("座右铭在左边", "座右铭在右边")])
def test_default_keeps_non_spatial_cjk_compounds(text: str, want: str | None) -> None:
    assert _flip(ConsistentHFlip(), text) == (text if want is None else want)


def test_keep_compounds_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "ops.md").read_text(encoding="utf-8")
    assert all(w in doc for w in CJK_KEEP)
