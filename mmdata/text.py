"""A tiny deterministic tokenizer, so text reaches a batch as ids and token ops run batched.

Units: one whitespace-separated word is one token (lower-cased, surrounding punctuation stripped) —
except in scripts written without spaces: each Han (Chinese characters, Japanese kanji), Hiragana or
Katakana character is a token of its own (character level, as BERT's basic tokenizer does for CJK
ideographs), with trailing punctuation attached and stripped (``片，`` -> ``片``). Korean separates its
words with spaces, so Hangul words are whitespace words like Latin ones (and keep their spaces when a
text op re-joins them). So a caption
in Chinese or Japanese is a sequence of characters, not one giant token, and ``token_mask`` masks
characters. A token-level op on the string (delete, swap, crop, mask) is the same op on the id
sequence: :meth:`Tokenizer.join` glues CJK characters back without spaces, and
``words(join(units)) == units``, so the per-sample (string) kernel and the batched (id) kernel agree
exactly. Ids come from a stable hash (crc32), so no vocabulary file is needed and ids never depend on
the data seen.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

import torch

PAD_ID = 0
MASK_ID = 1
UNK_ID = 2
MASK_TOKEN = "[MASK]"
_RESERVED = 3
#: Han (incl. extensions A-G and compatibility), Hiragana, Katakana (incl. half-width): written without
#: spaces between words, so tokenized per character (Hangul is not: Korean puts spaces between words)
CJK = ("\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
       "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f")
#: punctuation that ends a CJK unit (attached to the character before it, stripped from its id)
CJK_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2026\u00b7"
_ASCII_PUNCT = ".,;:!?\"'()[]{}"
_UNITS = re.compile(f"[{CJK}][{CJK_PUNCT}{re.escape(_ASCII_PUNCT)}]*|[^\\s{CJK}]+")
_IS_CJK = re.compile(f"[{CJK}]")
_STRIP = _ASCII_PUNCT + "".join(chr(c) for c in (*range(0x3000, 0x3040), *range(0xFF01, 0xFF10), *range(0xFF1A, 0xFF21),
                                                 *range(0xFF3B, 0xFF41), *range(0xFF5B, 0xFF66), 0x2026, 0x00B7))


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
        """The units the tokenizer (and every token-level text op) works on: whitespace words, and
        single characters in CJK runs.

        Example:
            >>> Tokenizer.words("A photo 一张照片，户外 [MASK]")
            ['A', 'photo', '一', '张', '照', '片，', '户', '外', '[MASK]']
        """
        return _UNITS.findall(text)

    @staticmethod
    def join(units: Sequence[str]) -> str:
        """Units back to text: a space between units, none between two CJK units
        (``words(join(u)) == u`` for units made by :meth:`words`).

        Example:
            >>> Tokenizer.join(["A", "photo", "一", "张", "照", "片，", "户", "外"])
            'A photo 一张照片，户外'
        """
        out: list[str] = []
        prev_cjk = False
        for u in units:
            cjk = bool(_IS_CJK.match(u))
            if out and not (cjk and prev_cjk):
                out.append(" ")
            out.append(u)
            prev_cjk = cjk
        return "".join(out)

    def token_id(self, word: str) -> int:
        if word == MASK_TOKEN:
            return MASK_ID
        w = word.strip(_STRIP).lower()
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
