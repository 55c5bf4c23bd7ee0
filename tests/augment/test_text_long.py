"""Text ops on long texts (QA 2026-12-03, a MultiBench user with 2000-word plots): the ops drew over the
tokenizer's first 64 units only, so token_mask at 0.15 masked 7 of 1962 words, word_delete at 0.1 deleted
6, and word_crop at fraction 0.5 kept 32 of 1962 words — `mmdata augment` wrote plots cut to 64 words.
They now act along the whole text, and the batched kernel (which holds the first 64 ids) still agrees
exactly: rows longer than the window are re-encoded from their edited text."""

from __future__ import annotations

import pytest

from mmdata.augment.recipe import load_recipe
from mmdata.text import default_tokenizer
from mmdata.types import Sample, collate

PLOT = " ".join(f"w{i}" for i in range(1962))


@pytest.mark.parametrize(("op", "check"), [
    ({"op": "token_mask", "p_token": 0.15}, lambda t: 200 < t.split().count("[MASK]") < 400),
    ({"op": "word_delete", "p_word": 0.1}, lambda t: 1962 - 300 < len(t.split()) < 1962 - 100),
    ({"op": "word_crop", "fraction": [0.5, 0.5]}, lambda t: len(t.split()) == 981),
    ({"op": "word_swap", "n_swaps": [50, 50]}, lambda t: sorted(t.split()) == sorted(PLOT.split()) and t != PLOT),
    ({"op": "typo", "p_word": 0.1}, lambda t: 100 < sum(a != b for a, b in zip(t.split(), PLOT.split())) < 300),
])
def test_text_ops_act_along_the_whole_text_in_both_kernels(op: dict, check) -> None:  # noqa: ANN001
    recipe = load_recipe({"seed": 3, "text": [{**op, "p": 1.0}]})
    samples = [Sample(f"k{i}", {"text": PLOT if i % 2 == 0 else "a short caption"}) for i in range(4)]
    per = [recipe.apply_sample(s) for s in samples]
    assert check(per[0]["text"]) and check(per[2]["text"])
    batch = recipe.apply_batched(collate(samples))
    ids, lengths = default_tokenizer().encode_batch([s["text"] for s in per])
    assert batch["text"] == [s["text"] for s in per]
    assert batch["tokens"].shape == ids.shape and bool((batch["tokens"] == ids).all())
    assert batch.lengths["tokens"].tolist() == lengths.tolist()
