"""A tiny deterministic tokenizer, so text reaches a batch as ids and token ops run batched.

Units: one word separated by white space or U+200B is one token (lower-cased, surrounding punctuation stripped) —
except in scripts written without spaces: each Han (Chinese characters, Japanese kanji), Hiragana or
Katakana character is a token of its own (character level, as BERT's basic tokenizer does for CJK
ideographs), with trailing punctuation attached and stripped (``片，`` -> ``片``). Korean separates its
words with spaces, so Hangul words are whitespace words like Latin ones (and keep their spaces when a
text op re-joins them). So a caption
in Chinese or Japanese is a sequence of characters, not one giant token, and ``token_mask`` masks
characters. A token-level op on the string (delete, swap, crop, mask) is the same op on the id
sequence: :meth:`Tokenizer.rebuild` puts the edited units back with the text's own separators, and
``words(rebuild(text, units, edited)) == edited``, so the per-sample (string) kernel and the batched (id)
kernel agree exactly. Ids come from a stable hash (crc32), so no vocabulary file is needed and ids never
depend on the data seen.

A unit is made of whole grapheme clusters: combining marks (Unicode categories M*: accents, the kana
voicing marks U+3099/U+309A, variation selectors), the half-width voicing marks ﾞ/ﾟ, ZWNJ and emoji
modifiers stay with the character before them, and a ZWJ joins the next character too (emoji ZWJ
sequences are one unit) — so an edit never strands a mark. A text op rebuilds its text with
:meth:`Tokenizer.rebuild`, which keeps the original separators between kept neighbours. Scripts
written without spaces other than Chinese / Japanese (Thai, Lao, Khmer, Myanmar...) are one unit per
run of text: no dictionary segmenter ships offline; where the text marks its word breaks with the
zero-width space U+200B (the explicit break of those scripts), each ZWSP separates units as a space
does. A ZWSP is never a unit nor part of one (a ZWSP-only caption has no words, as the manifest reader
has it); texts without one keep their ids.

A unit's id is computed on its NFC form (``Köln`` typed on Linux and in a macOS file name, NFD, are one
id) with surrounding punctuation stripped: ASCII ``.,;:!?"'()[]{}``, CJK punctuation, and any other
non-ASCII character of a Unicode punctuation category P* (the danda ``।``, the Arabic comma ``،``,
``¿``, ``«»``, ``„“``, dashes) but the Hebrew geresh / gershayim, which belong to their word (``ג׳``).
Only P* characters of the CJK Symbols and Punctuation block are punctuation: its letters and numbers (``々``
``〆`` ``〇``, the Hangzhou numerals) and symbols are CJK characters, a unit each (``二〇二四年`` is five); the
ideographic space U+3000 ends the CJK unit before it, as a punctuation mark does (``猫\u3000`` is one unit). The
invisible direction marks (LRM, RLM, U+202A-U+202E, U+2066-U+2069) and U+FEFF never start a unit and are dropped
from a unit's id (``كلب`` + RLM is ``كلب``); ZWJ / ZWNJ are kept (they spell words).
Only the id: the text and its units are never changed. Pure-ASCII text
keeps the ids it had before (``-``, ``_``, ``@``, ``#``... stay part of a word there): the bundled
avdigits dataset and recorded results rely on them.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence
from functools import lru_cache

import torch

PAD_ID = 0
MASK_ID = 1
UNK_ID = 2
MASK_TOKEN = "[MASK]"
_RESERVED = 3
#: the letters, numbers and symbols of the CJK Symbols and Punctuation block (U+3000-U+303F): the iteration marks
#: 々 〻, 〆, the ideographic zero 〇, the Hangzhou numerals, 〒... are characters of a word, not punctuation (QA28
#: i18n #4: 二〇二四年 had the id sequence of 二二四年); its P* characters (、。「」〜...) are punctuation
_CJK_SYMBOLS = "\u3004-\u3007\u3012\u3013\u3020-\u3029\u3031-\u303c\u303e\u303f"
#: Han (incl. extensions A-G and compatibility), Hiragana, Katakana (incl. half-width), and the letters / numbers /
#: symbols of the CJK Symbols and Punctuation block: written without spaces between words, so tokenized per
#: character (Hangul is not: Korean puts spaces between words)
CJK = ("\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
       "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f" + _CJK_SYMBOLS)
#: punctuation that ends a CJK unit (attached to the character before it, stripped from its id): the ideographic
#: space U+3000 (as before QA28: augmented Japanese captions keep their bytes, review of QA28 #9), the P* characters
#: of U+3001-U+303F, full-width ASCII punctuation, the half-width ones, the ellipsis and the middle dot
CJK_PUNCT = "\u3000-\u3003\u3008-\u3011\u3014-\u301f\u3030\u303d\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2026\u00b7"
_ASCII_PUNCT = ".,;:!?\"'()[]{}"


def _ranges(cps: Sequence[int]) -> str:
    """A regex character-class body for sorted code points."""
    out: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(re.escape(chr(cps[i])) + ("-" + re.escape(chr(cps[j])) if j > i else ""))
        i = j + 1
    return "".join(out)


def _extenders() -> list[int]:
    """Code points that continue a grapheme cluster (never start one): combining marks (M*: accents, kana
    voicing marks, variation selectors), ZWNJ / ZWJ, half-width voicing marks, emoji modifiers, tags."""
    marks = {c for lo, hi in ((0, 0x20000), (0xE0000, 0xE1000)) for c in range(lo, hi)
             if unicodedata.category(chr(c)).startswith("M")}
    return sorted(marks | {0x200C, 0x200D, 0xFF9E, 0xFF9F, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)})


_EXT = _ranges(_extenders())
#: the CJK characters that start a unit (the voicing marks inside the kana blocks extend one instead)
_CJK_BASE = ("\u3040-\u3098\u309b-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
             "\uf900-\ufaff\uff66-\uff9d\U00020000-\U0003134f" + _CJK_SYMBOLS)
#: what separates units: white space, and the zero-width space U+200B (QA33 multilingual #4), the explicit word
#: break of Thai / Khmer / Lao / Myanmar text (and of scraped CJK text): never a unit, nor part of one
_SEP = "\\s\u200b"
#: what extends the cluster before it: a mark, or a ZWJ with the character it joins
_X = f"(?:\u200d[^{_SEP}]|[{_EXT}])"
#: direction marks and the BOM (:data:`_INVISIBLE`) never start a unit: one alone, or before a word, is part of the
#: separator (QA28 i18n #8), so 'كلب \u200f يجري' is two units, not three
_NO_START = "\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
_UNITS = re.compile(f"[{_CJK_BASE}]{_X}*(?:[{CJK_PUNCT}{re.escape(_ASCII_PUNCT)}]{_X}*)*"
                    f"|(?:\u200d[^{_SEP}{_NO_START}]|[^{_SEP}{_CJK_BASE}{_NO_START}])(?:\u200d[^{_SEP}]|[^{_SEP}{_CJK_BASE}])*")
_IS_CJK = re.compile(f"[{CJK}]")
_STRIP = _ASCII_PUNCT + "".join(chr(c) for c in (*range(0x3000, 0x3040), *range(0xFF01, 0xFF10), *range(0xFF1A, 0xFF21),
                                                 *range(0xFF3B, 0xFF41), *range(0xFF5B, 0xFF66), 0x2026, 0x00B7)
                                if not re.match(f"[{_CJK_SYMBOLS}]", chr(c)))
#: invisible direction marks and the BOM, dropped from a unit before its id (QA28 i18n #8: كلب and كلب + RLM, copied
#: from a web page, were two ids): LRM / RLM, the embeddings and overrides U+202A-U+202E, the isolates U+2066-U+2069,
#: U+FEFF. Not ZWJ / ZWNJ: they are part of a word's spelling (Persian, emoji sequences)
_INVISIBLE = re.compile(f"[{_NO_START}]")


def _strip_id(word: str) -> str:
    """``word`` as its id is computed: NFC, surrounding punctuation stripped, lower-cased (ASCII: exactly
    as before, see the module docstring)."""
    if word.isascii():
        return word.strip(_STRIP).lower()
    w = unicodedata.normalize("NFC", _INVISIBLE.sub("", word))
    if w.isascii():  # 'Cat' + LRM is 'Cat'
        return w.strip(_STRIP).lower()
    i, j = 0, len(w)
    while i < j and _punct(w[i]):
        i += 1
    while j > i and _punct(w[j - 1]):
        j -= 1
    return w[i:j].lower()


#: punctuation by category that belongs to the word: Hebrew geresh / gershayim (ג׳ is another letter than ג)
_WORD_MARKS = frozenset("\u05f3\u05f4")


def _punct(ch: str) -> bool:
    """Stripped from a unit's ends for its id: the ASCII / CJK set, or a non-ASCII character of category P*
    but the word's own marks (:data:`_WORD_MARKS`) (ASCII ``-`` ``_`` ``@`` ``#`` are P* too, but were never
    stripped: kept so, for ASCII ids)."""
    return ch in _STRIP or (ch > "\x7f" and ch not in _WORD_MARKS and unicodedata.category(ch)[0] == "P")


class Unit(str):
    """A unit of a text (a ``str``) that knows where it came from: ``index`` among the text's units and its
    span ``start:end`` in the text; ``replaced`` marks text an edit put in that unit's place (``[MASK]``,
    a typo). :meth:`Tokenizer.rebuild` uses them to keep the original separators.

    Example:
        >>> u = Tokenizer.units("a  cat")[1]
        >>> (u, u.index, u.start, u.end)
        ('cat', 1, 3, 6)
    """

    index: int
    start: int
    end: int
    replaced: bool

    def __new__(cls, text: str, index: int, start: int, end: int, replaced: bool = False) -> Unit:
        u = super().__new__(cls, text)
        u.index, u.start, u.end, u.replaced = index, start, end, replaced
        return u

    def replaced_by(self, text: str) -> Unit:
        """``text`` in this unit's place (same index and span)."""
        return Unit(text, self.index, self.start, self.end, True)


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
        """The units the tokenizer (and every token-level text op) works on: words separated by white
        space or the zero-width space U+200B, and single characters in CJK runs.

        Example:
            >>> Tokenizer.words("A photo 一张照片，户外 [MASK]")
            ['A', 'photo', '一', '张', '照', '片，', '户', '外', '[MASK]']
        """
        return _UNITS.findall(text)

    @staticmethod
    def has_words(text: str) -> bool:
        """Whether ``text`` has a unit (:meth:`words` is not empty) — a caption the text ops see as present;
        it stops at the first unit.

        Example:
            >>> Tokenizer.has_words("  "), Tokenizer.has_words("a cat")
            (False, True)
        """
        return _UNITS.search(text) is not None

    @staticmethod
    def units(text: str) -> list[Unit]:
        """:meth:`words` as :class:`Unit` s, with their index and span in ``text`` (for :meth:`rebuild`).

        Example:
            >>> [(u, u.start) for u in Tokenizer.units("我爱Python")]
            [('我', 0), ('爱', 1), ('Python', 2)]
        """
        return [Unit(m.group(), i, m.start(), m.end()) for i, m in enumerate(_UNITS.finditer(text))]

    @staticmethod
    def rebuild(text: str, units: Sequence[Unit], edited: Sequence[str]) -> str:
        """The text of ``edited`` (units of ``text`` from :meth:`units`, kept, moved or ``replaced_by``
        something), with the original separators where it can.

        Between two units that were neighbours in ``text`` (in that order) the original separator stays
        (none, a space, a line break...), and so do the text's leading / trailing whitespace when its first /
        last unit is kept. Where units were deleted or moved between two units, a single space if the text
        between them had whitespace, else none. An inserted ``[MASK]`` is never glued to a neighbour (a space
        where there was no separator), nor is a unit from elsewhere (a space unless both are CJK, as
        :meth:`join`). A separator that would glue or split the units (``abc`` then ``def`` after deleting
        ``猫`` from ``abc猫def``) becomes a space, so ``words(rebuild(t, u, e)) == e`` for units made by
        :meth:`units` and masks.

        Example:
            >>> t = "我爱Python编程\\r\\n很有趣"
            >>> u = Tokenizer.units(t)
            >>> Tokenizer.rebuild(t, u, u[:3] + u[4:])
            '我爱Python程\\r\\n很有趣'
            >>> Tokenizer.rebuild(t, u, [u[0], u[1].replaced_by(MASK_TOKEN)] + u[2:5])
            '我 [MASK] Python编程'
        """
        if not edited:
            return ""
        parts: list[str] = []
        if _index(edited[0]) == 0:
            parts.append(text[: units[0].start])
        prev: str | None = None
        for u in edited:
            if prev is not None:
                parts.append(_separator(text, units, prev, u))
            parts.append(str(u))
            prev = u
        if _index(prev) == len(units) - 1:
            parts.append(text[units[-1].end :])
        return "".join(parts)

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
        w = _strip_id(word)
        if not w:
            return UNK_ID
        # surrogatepass: a lone surrogate ("a \ud800 b", from JSON's escapes) hashes like any other character
        # (UTF-8 text is unchanged by it: its ids stay as they were)
        return _RESERVED + zlib.crc32(w.encode("utf-8", "surrogatepass")) % (self.vocab_size - _RESERVED)

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


def _index(u: str | None) -> int | None:
    return u.index if isinstance(u, Unit) else None


def _separator(text: str, units: Sequence[Unit], a: str, b: str) -> str:
    """What goes between edited units ``a`` and ``b`` (see :meth:`Tokenizer.rebuild`)."""
    i, j = _index(a), _index(b)
    if i is None or j is None:
        sep = "" if _IS_CJK.match(a) and _IS_CJK.match(b) else " "
    elif j == i + 1:
        sep = text[units[i].end : units[j].start]
    else:
        lo, hi = min(i, j), max(i, j)
        # a zero-width space counts as white space (augment.text._rebuild: any separator that is not empty)
        sep = " " if any(ch.isspace() or ch == "\u200b" for ch in text[units[lo].end : units[hi].start]) else ""
    if not sep and any(isinstance(u, Unit) and u.replaced and u == MASK_TOKEN for u in (a, b)):
        sep = " "
    if sep != " " and _UNITS.findall(a + sep + b) != [a, b]:
        sep = " "
    return sep


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The shared default :class:`Tokenizer` (vocab 4096, max 64 tokens)."""
    return Tokenizer()
