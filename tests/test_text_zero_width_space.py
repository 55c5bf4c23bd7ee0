"""QA33 multilingual #4: the zero-width space U+200B separates units (never a unit, nor part of one): Thai /
Khmer text segmented with ZWSP gets its words, a ZWSP-only caption has none, masks cover visible units only.
Text without a ZWSP keeps its units and ids (the avdigits captions, recorded results)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdata.augment.text import MaxTokens, TokenMask, WordDelete, WordSwap
from mmdata.text import _UNITS, Tokenizer
from mmdata.types import Sample, collate

ZW = "\u200b"


@pytest.mark.parametrize("text,units", [
    (f"แมว{ZW}นั่ง{ZW}อยู่", ["แมว", "นั่ง", "อยู่"]),
    (f"ជា{ZW}ភាសា", ["ជា", "ភាសា"]),
    (f"我喜欢{ZW}猫{ZW}和{ZW}狗", ["我", "喜", "欢", "猫", "和", "狗"]),
    (f"a cat{ZW}", ["a", "cat"]),
    (f"{ZW}a", ["a"]),
])
def test_zwsp_separates_units(text: str, units: list[str]) -> None:
    assert Tokenizer.words(text) == units
    assert all(ZW not in u for u in Tokenizer.words(text))


@pytest.mark.parametrize("text", [ZW, ZW * 3, f" {ZW}\t{ZW} "])
def test_zwsp_only_caption_has_no_words(text: str) -> None:
    assert not Tokenizer.has_words(text)
    assert Tokenizer().encode(text) == []


def test_token_mask_masks_visible_units_only() -> None:
    s = Sample("k", {"text": f"我喜欢{ZW}猫{ZW}和{ZW}狗"})
    op = TokenMask(p_token=1.0)
    out = op.transform(s, op.sample_params(np.random.default_rng(0), s))["text"]
    assert out.count("[MASK]") == 6
    assert Tokenizer.words(out) == ["[MASK]"] * 6


@pytest.mark.parametrize("op", [TokenMask(p_token=0.5), WordDelete(p_word=0.5), WordSwap(n_swaps=1), MaxTokens(n=2)])
def test_per_sample_and_batched_kernels_agree_on_zwsp_text(op) -> None:
    texts = [f"แมว{ZW}นั่ง{ZW}อยู่{ZW}บน{ZW}โต๊ะ", f"我喜欢{ZW}猫{ZW}和{ZW}狗", f"a{ZW}b c{ZW}{ZW}d"]
    samples = [Sample(f"k{i}", {"text": t}) for i, t in enumerate(texts)]
    params = [op.sample_params(np.random.default_rng(i), s) for i, s in enumerate(samples)]
    per = [op.transform(s, p)["text"] if p is not None else s["text"] for s, p in zip(samples, params)]
    batch = op.apply_batch(collate(samples), [dict(p or {}, applied=p is not None) for p in params])
    assert batch["text"] == per
    ids = [Tokenizer().encode(t) for t in per]
    assert [row[: int(n)] for row, n in zip(batch["tokens"].tolist(), batch.lengths["tokens"].tolist())] == ids


#: the unit pattern before QA33: the same but for the ZWSP among the separators
_OLD = re.compile(_UNITS.pattern.replace(ZW, ""))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .,-猫の") + ["\u0301", "\u200d", "\u200c", "\u200f", "\u3000", "\u0e41",
                                                               "\ufeff", "\t"]), max_size=20))
def test_text_without_zwsp_keeps_its_units(text: str) -> None:
    assert _UNITS.findall(text) == _OLD.findall(text)


def test_avdigits_captions_have_no_zwsp() -> None:
    from mmdata.datasets.avdigits import CLUES

    assert all(text.isascii() for text, _ in CLUES)  # ASCII: no U+200B, so their ids are unchanged
