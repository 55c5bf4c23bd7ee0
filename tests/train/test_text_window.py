"""The trainer's text window (QA 2026-12-03, a MultiBench user with 2000-word plots)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train


def test_max_tokens_above_the_tokenizers_window_is_refused(avdigits40: Path) -> None:
    """QA (MultiBench user): --max-tokens 1000 was accepted, printed as given and recorded, while the model
    saw 64 tokens (collate's tokenizer window)."""
    with pytest.raises(MMDataError, match=r"max_tokens \(--max-tokens\) 1000: the tokenizer keeps the first 64 tokens"):
        train(avdigits40, epochs=1, max_tokens=1000, threads=1)


def test_a_recipes_max_tokens_above_the_window_is_refused_too(avdigits40: Path) -> None:
    """QA round 4: `normalize: {text: [{op: max_tokens, n: 1000}]}` printed and recorded 1000 tokens."""
    recipe = {"normalize": {"text": [{"op": "max_tokens", "n": 1000}]}}
    with pytest.raises(MMDataError, match=r"normalize.text \(max_tokens\): max_tokens n=1000: the tokenizer keeps"):
        train(avdigits40, epochs=1, recipe=recipe, threads=1)
