"""A tiny deterministic word tokenizer, so text reaches a batch as ids and token ops run batched.

One whitespace-separated word is one token (lower-cased, surrounding punctuation stripped), so a
word-level op on the string (delete, swap, crop, mask) is the same op on the id sequence: the
per-sample (string) kernel and the batched (id) kernel agree exactly. Ids come from a stable hash
(crc32), so no vocabulary file is needed and ids never depend on the data seen.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import torch

PAD_ID = 0
MASK_ID = 1
UNK_ID = 2
MASK_TOKEN = "[MASK]"
_RESERVED = 3


class Tokenizer:
    """Hashing word tokenizer.

    Args:
        vocab_size: number of ids including the reserved ``PAD=0``, ``MASK=1``, ``UNK=2``.
        max_len: longer texts are truncated to this many tokens.

    Example:
        >>> tok = Tokenizer()
        >>> tok.encode("An odd number.") == tok.encode("an ODD number")
        True
        >>> tok.encode("[MASK] x")[0] == MASK_ID
        True
    """

    def __init__(self, vocab_size: int = 4096, max_len: int = 64) -> None:
        if vocab_size <= _RESERVED:
            raise ValueError(f"vocab_size must be > {_RESERVED}, got {vocab_size}")
        self.vocab_size = vocab_size
        self.max_len = max_len

    @staticmethod
    def words(text: str) -> list[str]:
        """The word units the tokenizer (and every word-level text op) works on."""
        return text.split()

    def token_id(self, word: str) -> int:
        if word == MASK_TOKEN:
            return MASK_ID
        w = word.strip(".,;:!?\"'()[]{}").lower()
        if not w:
            return UNK_ID
        return _RESERVED + zlib.crc32(w.encode("utf-8")) % (self.vocab_size - _RESERVED)

    def encode(self, text: str) -> list[int]:
        return [self.token_id(w) for w in self.words(text)[: self.max_len]]

    def encode_batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode texts into padded ids (B, L) int64 and lengths (B,) int64 (L >= 1)."""
        seqs = [self.encode(t) for t in texts]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        width = max(1, int(lengths.max()) if len(seqs) else 1)
        ids = torch.full((len(seqs), width), PAD_ID, dtype=torch.int64)
        for i, s in enumerate(seqs):
            if s:
                ids[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
        return ids, lengths


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The shared default :class:`Tokenizer` (vocab 4096, max 64 tokens)."""
    return Tokenizer()
