"""Cross-modal ops (recipe section ``sample:``): one draw applied to several modalities.

* ``modality_dropout`` drops whole modalities per sample (never all of them: ``keep_at_least``) together
  with the fields derived from them (:data:`DERIVED`: audio's ``spec`` from ``logmel``; the image's: the
  recipe's ``targets``, which the recipe drops with it); dropped fields
  disappear from the sample, so ``batch.present`` is False for them after collate, and the batched
  kernel clears the presence masks, zeroes the data and leaves the batch as collate would build it from
  the rows it now holds (:func:`~mmdata.augment.batching.tidy`): padding trimmed to the rows still present
  (a clip ``pad_trim`` padded keeps its padded width, as collate stacks it), a field no row has left without a tensor (a derived one without a presence mask too).
* ``consistent_hflip`` flips the image, swaps left/right words in the paired text, preserving case, and
  swaps the channels of stereo audio (``stereo: keep`` leaves them); a sample without an image keeps its
  caption (nothing was flipped). Words of space-separated languages
  match whole words only: "left" <-> "right", "leftmost" <-> "rightmost", "left-hand" <-> "right-hand";
  words merely containing the letters ("bright", "copyright", "upright", "cleft") are never touched —
  the substring bug of MDETR/VirTex-style flips. Words of languages written without spaces (CJK) match
  as characters: 左 <-> 右, with 左右 ("left and right", "about") kept. Korean (Hangul) pair words match at
  a word start, with the particles glued to their right: 왼쪽에 <-> 오른쪽에. The pairs are the op's ``pairs``.
  An image target (a stereo pair's other view, ``targets: {right.png: image}``) is flipped in place, not
  swapped with the image: a stereo camera pair is not swapped as stereo audio is (docs/ops.md).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from mmdata.augment.base import Op, Param
from mmdata.augment.batching import on, retokenize, tidy
from mmdata.errors import RecipeError
from mmdata.text import PAD_ID, Tokenizer
from mmdata.types import Batch, Sample

DROPPABLE = ("image", "audio", "text")
#: fields computed from a modality by an op (``logmel`` writes ``spec`` from audio): dropped with it
DERIVED: dict[str, tuple[str, ...]] = {"image": (), "audio": ("spec",), "text": ()}
_ALL_DERIVED = frozenset(d for ds in DERIVED.values() for d in ds)

#: consistent_hflip's default word pairs: English, plus the CJK characters 左/右 (a pair [w, w] keeps w as
#: it is: 左右 / 右左 mean "left and right" or "about", symmetric under a flip). Other languages are left
#: out on purpose: German "links" is also an English word (chain links) and French "droite" also means
#: straight; give them in ``pairs`` for captions in those languages (docs/crossmodal.md has lists).
LEFT_RIGHT = (("left", "right"), ("leftmost", "rightmost"), ("leftward", "rightward"), ("leftwards", "rightwards"),
              ("左", "右"), ("左右", "左右"), ("右左", "右左"))
#: CJK compounds in which 左 / 右 are not a side of the picture (QA33 multilingual #2): kept as they are by the
#: default pairs, as [w, w]. 座右 (座右铭 / 座右の銘, a motto), 右翼 / 左翼 / 左派 / 右派 / 左倾 / 右倾 / 极右 / 極右 /
#: 极左 / 極左 (politics: a flip would turn right-wing into left-wing), 左迁 / 左遷 (a demotion), 右肩上がり /
#: 右肩下がり (rising / falling, an idiom; 右肩 alone is a right shoulder and swaps), 左利き / 右利き / 左撇子 (handedness
#: does not mirror with the picture), 左官 (a plasterer)
CJK_KEEP = ("座右", "右翼", "左翼", "左派", "右派", "左倾", "右倾", "左傾", "右傾", "极右", "極右", "极左", "極左",
            "左迁", "左遷", "右肩上がり", "右肩下がり", "左利き", "右利き", "左撇子", "左官")
DEFAULT_PAIRS = LEFT_RIGHT + tuple((w, w) for w in CJK_KEEP)


def _unspaced(word: str) -> bool:
    """Whether ``word`` is written in a script without spaces between words (CJK, Thai...): matched as
    characters, since a word boundary there is not a space."""
    for ch in word:
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")):
            return True
    return False


def _hangul(word: str) -> bool:
    """Whether ``word`` ends in a Hangul syllable: Korean writes spaces between words but glues particles
    and endings to a word's right (왼쪽에, 왼쪽으로, 왼쪽의), so such a word may be followed by syllables."""
    return "\uac00" <= word[-1] <= "\ud7a3"


#: Hangul syllables (U+AC00-U+D7A3): a Korean pair word's particles and endings
_SYLLABLES = "[\uac00-\ud7a3]*"
#: invisible characters inside a word (QA33 multilingual #10): the soft hyphen U+00AD, ZWNJ U+200C, ZWJ U+200D and
#: WORD JOINER U+2060 between two letters leave one word on the screen ("left\xadover" reads "leftover"), so a pair
#: word does not end or start there. Not ZWSP U+200B: it is a word break (Unicode's, and mmdata.text.Tokenizer's,
#: which splits units on it), so "the\u200bleft\u200bcat" swaps like "the left cat"
_JOIN = "[\u00ad\u200c\u200d\u2060]"
_BEFORE = rf"(?<!\w)(?<!\w{_JOIN})"
_AFTER = rf"(?!\w|{_JOIN}\w)"


def _alternative(word: str) -> str:
    """The regex of one pair word: CJK as characters; Hangul at a word start, particles after it allowed;
    other words whole (a space inside a pair word matches any run of white space; a soft hyphen, ZWNJ, ZWJ or
    word joiner between letters is inside a word, a zero-width space is a break)."""
    if _unspaced(word):
        return re.escape(word)
    body = r"\s+".join(map(re.escape, word.split()))
    if _hangul(word):
        return rf"{_BEFORE}{body}(?={_SYLLABLES}{_AFTER})"
    return rf"{_BEFORE}{body}{_AFTER}"


def _key(word: str) -> str:
    return " ".join(word.split()).casefold()


@lru_cache(maxsize=32)
def _pattern(pairs: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    swap: dict[str, str] = {}
    # matched on NFC (a pair typed in NFD, a caption from a macOS file name: one spelling, see swap_left_right)
    pairs = tuple((unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)) for a, b in pairs)
    for a, b in pairs:
        swap[_key(a)], swap[_key(b)] = b, a
    # longest first: 左右 before 左 at the same position; whole words only where words are space-separated
    words = sorted({w for pair in pairs for w in pair}, key=lambda w: (-len(w), w))
    return re.compile("|".join(map(_alternative, words)), re.IGNORECASE), swap


def swap_left_right(text: str, pairs: Sequence[Sequence[str]] = DEFAULT_PAIRS) -> str:
    """Swap the words of each pair in ``text`` (whole words; CJK as characters; Korean words with the
    particles after them), keeping case: an all-caps word gives an all-caps partner, a capitalised one a
    capitalised partner. A pair [w, w] keeps w as it is, also a phrase of several words (any white space
    between them): [all right, all right] keeps "all right" where the default pairs give "all left".
    Words match whatever the Unicode normalization form of ``text`` and ``pairs`` (NFD Vietnamese "trái",
    Korean in Jamo): on NFC, and a swapped word is written back in the text's own form, every other
    character left as it was.

    Example:
        >>> swap_left_right("Left of the bright, upright LEFTMOST tree; right-hand side")
        'Right of the bright, upright RIGHTMOST tree; left-hand side'
        >>> swap_left_right("à gauche du 左边", [["gauche", "droite"], ["左", "右"]])
        'à droite du 右边'
        >>> swap_left_right("사각형이 왼쪽에 있다", [["왼쪽", "오른쪽"]])
        '사각형이 오른쪽에 있다'
    """
    if not text:
        return text
    pattern, swap = _pattern(tuple((str(a), str(b)) for a, b in pairs))

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        new = swap.get(_key(word))
        if new is None or _key(new) == _key(word):  # casefolds differently, or a pair [w, w]: leave it
            return word
        if word.isupper() and len(word) > 1:
            return new.upper()
        if word[0].isupper():
            return new[:1].upper() + new[1:].lower()
        return new.lower() if word.islower() else new

    if unicodedata.is_normalized("NFC", text):
        return pattern.sub(repl, text)
    return _swap_denormalized(text, pattern, repl)


def _segments(text: str) -> list[str]:
    """``text`` cut where NFC does not join the characters on both sides: each piece normalizes on its own
    as it does in the text (a starter that composes with the character before it, Hangul Jamo V after L,
    stays in that piece), so NFC of the text is the pieces' NFC joined."""
    pieces: list[str] = []
    cur = ""
    for ch in text:
        if cur and unicodedata.combining(ch) == 0:
            nfc = unicodedata.normalize("NFC", cur)
            if unicodedata.normalize("NFC", cur + ch) == nfc + unicodedata.normalize("NFC", ch):
                pieces.append(cur)
                cur = ""
        cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def _swap_denormalized(text: str, pattern: re.Pattern[str], repl: Any) -> str:
    """:func:`swap_left_right` of a text not in NFC (QA33 multilingual #1: an NFD caption kept "trái" while
    the image flipped): the pair words are matched on the text's NFC form; a stretch of the text a swap
    touched is written back swapped, in NFD where it was in NFD, and every other character keeps its bytes."""
    pieces = _segments(text)
    nfc = [unicodedata.normalize("NFC", p) for p in pieces]
    ends = np.cumsum([len(p) for p in nfc]).tolist()
    joined = "".join(nfc)
    out: list[str] = []
    k = 0  # the next piece not yet written
    for m in pattern.finditer(joined):
        new = repl(m)
        if new == m.group(0) or m.start() < (ends[k - 1] if k else 0):  # unchanged, or in a stretch written
            continue
        lo = k
        while ends[lo] <= m.start():
            lo += 1
        hi = lo
        while ends[hi] < m.end():
            hi += 1
        out.extend(pieces[k:lo])
        start = ends[lo - 1] if lo else 0
        own = "".join(pieces[lo : hi + 1])
        stretch = joined[start : m.start()] + new + joined[m.end() : ends[hi]]
        out.append(unicodedata.normalize("NFD", stretch) if unicodedata.is_normalized("NFD", own) else stretch)
        k = hi + 1
    out.extend(pieces[k:])
    return "".join(out)


#: phrases where a side word names no side: a class ``Right-Of-Way`` or ``all_right`` is no side a flip swaps
_NO_SIDE = (("all", "right"), ("right", "of", "way"), ("right", "angle"), ("right", "angled"))
#: the words of a class name: snake_case, kebab-case, spaces and CamelCase (``TurnLeft``: Turn, Left)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[^\W\d_]+")


def side_classes(label_names: Sequence[Any] | None, pairs: Sequence[Sequence[str]] = DEFAULT_PAIRS) -> list[tuple[str, str]]:
    """The class names that hold a word of ``pairs`` (``LEFT``, ``turn_left``, ``TurnLeft``), each with what
    :func:`swap_left_right` makes of that word (``RIGHT``): classes whose label a flip would have to swap, which
    no op does (the label is an index into the names). A word inside another (``bright``, ``upright``) and the
    phrases ``all right``, ``right of way`` and ``right angle`` (any separators) name no side.

    Example:
        >>> side_classes(["LEFT", "RIGHT", "POINT", "bright", "turn_left", "TurnLeft", "Right-Of-Way", "all_right"])
        [('LEFT', 'RIGHT'), ('RIGHT', 'LEFT'), ('turn_left', 'turn_right'), ('TurnLeft', 'TurnRight')]
    """
    out = []
    for name in label_names or ():
        if not isinstance(name, str):
            continue
        words = list(_WORD.finditer(name))
        low = [w.group(0).lower() for w in words]
        idiom = set()
        for i in range(len(low)):
            for phrase in _NO_SIDE:
                if tuple(low[i:i + len(phrase)]) == phrase:
                    idiom.update(range(i, i + len(phrase)))
        parts, at = [], 0
        for i, w in enumerate(words):
            swapped = w.group(0) if i in idiom else swap_left_right(w.group(0), pairs)
            parts += [name[at:w.start()], swapped]
            at = w.end()
        new = "".join(parts) + name[at:]
        if new != name:
            out.append((name, new))
    return out


@dataclass(frozen=True)
class PairsParam(Param):
    """A list of [word, word] pairs (``consistent_hflip.pairs``): each word non-empty and in one pair only
    (a pair [w, w] keeps w unchanged, e.g. a compound of both words). Stored as lists of two strings."""

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise RecipeError(f"{where}: expected a list of [word, word] pairs like [[left, right], [gauche, droite]], got {value!r}")
        out: list[list[str]] = []
        seen: dict[str, tuple[int, str]] = {}
        for j, pair in enumerate(value):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2 \
                    or not all(isinstance(w, str) and w.strip() == w and w for w in pair):
                raise RecipeError(f"{where}[{j}]: expected a pair of non-empty words [word, word] (no surrounding spaces), got {pair!r}")
            a, b = pair
            for w, other in ((a, b), (b, a)):
                prev = seen.get(w.casefold())
                if prev is not None and prev[0] != j:
                    raise RecipeError(f"{where}[{j}]: {w!r} is already paired with {prev[1]!r} ({where}[{prev[0]}]); "
                                      "each word may appear in one pair")
                seen[w.casefold()] = (j, other)
            out.append([a, b])
        return out


class ModalityDropout(Op):
    """Drop each of ``modalities`` with probability ``p_drop`` (the op's ``p`` gates the whole op),
    keeping at least ``keep_at_least`` modalities present; a dropped modality takes the fields derived from
    it along (audio: the ``spec`` written by ``logmel``). ``keep_at_least`` counts every modality present
    in the sample, also those not in ``modalities``: with ``modalities: [image, audio]``, ``p_drop: 1`` and
    ``keep_at_least: 1``, an image + audio + text sample keeps its text only (both droppable modalities
    go); to keep one of image / audio beside the text, give ``keep_at_least: 2`` (a sample without text then
    keeps both). An empty (or whitespace-only) caption holds no word: it does not count toward
    ``keep_at_least`` and an image or audio is kept back rather than it; but collate and the loader mark it
    present (``present['text']``), so it is kept last where the image and audio kept fall short of
    ``keep_at_least`` (a sample whose only modality is a blank caption keeps it). A dropped image takes the recipe's ``targets`` along (a
    target belongs to its image: the camera dropped out with its maps), per sample and batched; a sample that
    had no image to begin with keeps its targets, unmoved by the random ops; the normalize stage's size ops size them
    as the others' (:mod:`mmdata.augment.recipe`). Exact agreement (presence masks).
    """

    section, name = "sample", "modality_dropout"
    PARAMS = {"modalities": Param("list", list(DROPPABLE), choices=DROPPABLE, doc="modalities that may be dropped"),
              "p_drop": Param("float", 0.5, 0.0, 1.0, doc="probability of dropping each of them (with their derived fields: audio's `spec`)"),
              "keep_at_least": Param("int", 1, 1, 3, doc="never leave fewer modalities present than this "
                                    "(counting every present modality, also those not in `modalities`)")}
    masked = True  # rows not applied drop nothing: no gather / scatter of every field

    def validate(self, where: str) -> None:
        if not self.modalities:
            raise RecipeError(f"{where}.modalities: give at least one of {list(DROPPABLE)}")

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        here = [m for m in self.modalities if m in sample]
        u = rng.random(len(self.modalities))
        drop = [m for m, x in zip(self.modalities, u) if m in here and x < self.p_drop]
        # an empty (or whitespace-only) caption holds no word for the text ops: it neither counts toward
        # keep_at_least nor is the drop undone for it while an image or audio can be kept (the draws above are
        # unchanged)
        blank = "text" in sample and not Tokenizer.has_words(sample["text"])
        counts = [m for m in drop if not (blank and m == "text")]
        present_after = [m for m in DROPPABLE if m in sample and m not in drop and not (blank and m == "text")]
        while counts and len(present_after) < self.keep_at_least:
            # undo the drop with the largest draw first: deterministic, never drops every modality
            back = max(counts, key=lambda m: u[self.modalities.index(m)])
            drop.remove(back)
            counts.remove(back)
            present_after.append(back)
        if blank and "text" in drop and sum(m in sample and m not in drop for m in DROPPABLE) < self.keep_at_least:
            drop.remove("text")  # yet collate marks it present: kept last where nothing else is left to keep (QA30)
        return {"drop": drop}

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if not params["drop"]:
            return sample
        return sample.without(*params["drop"], *(d for m in params["drop"] for d in DERIVED.get(m, ())))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        out = batch.replace()
        touched: list[str] = []
        for m in DROPPABLE:
            if m not in batch.present:
                continue
            rows = [m in p.get("drop", ()) for p in params]
            if not any(rows):
                continue
            drop = torch.tensor(rows, dtype=torch.bool)  # host, like present and lengths
            out.present[m] = batch.present[m] & ~drop
            if m == "text":
                out.data["text"] = ["" if r else t for t, r in zip(batch["text"], rows)]
                out.data["tokens"] = batch["tokens"].masked_fill(on(drop, batch["tokens"].device)[:, None], PAD_ID)
                out.lengths["tokens"] = batch.lengths["tokens"].masked_fill(drop, 0)
            elif m in batch.data:
                _clear(batch, out, m, drop)
            touched.append(m)
            for d in DERIVED.get(m, ()):
                if d in batch.present and d in batch.data:
                    _clear(batch, out, d, drop)
                    touched.append(d)
        # as collate gives the rows as they are now: workers-mode batches (per-sample kernel) and these agree
        return tidy(out, touched, derived=_ALL_DERIVED) if touched else out


def _clear(batch: Batch, out: Batch, name: str, drop: torch.Tensor) -> None:
    """Rows ``drop`` of tensor field ``name`` absent and zero, their lengths 0 (what collate records for an
    absent row); :func:`tidy` then trims the padding and the lengths table to the rows still present."""
    out.present[name] = batch.present[name] & ~drop
    x = batch[name]
    out.data[name] = x.masked_fill(on(drop, x.device).reshape((-1,) + (1,) * (x.dim() - 1)), 0)
    ln = batch.lengths.get(name)
    if ln is not None:
        out.lengths[name] = ln.masked_fill(drop.reshape((-1,) + (1,) * (ln.dim() - 1)), 0)


class ConsistentHFlip(Op):
    """Flip the image left-right, swap the words of ``pairs`` in the text and the channels of stereo audio
    (one draw for all); a sample without an image is left as it is (its caption describes nothing that was
    flipped). The default pairs are English (left/right, leftmost/rightmost, leftward(s)/rightward(s);
    whole words, case kept: "bright" stays, "Left-hand" becomes "Right-hand") plus the characters 左/右 for
    Chinese and Japanese (左右 kept; 左に, 右側 swap) with, kept as [w, w], the compounds in which 左 / 右
    is no side of the picture (:data:`CJK_KEEP`: 座右 of 座右铭 a motto; 右翼, 左翼, 左派, 右派, 左倾, 右倾, 左傾, 右傾,
    极右, 極右, 极左, 極左 politics, which a flip would turn into their opposite; 左迁 / 左遷 a demotion; the idioms
    右肩上がり / 右肩下がり, while 右肩 alone, a shoulder, swaps; 左利き, 右利き, 左撇子 handedness, which does not
    mirror; 左官 a plasterer; a list of ``pairs`` replaces them too, so add the ones your captions need);
    captions in other languages need ``pairs``, e.g.
    [[left, right], [gauche, droite], [links, rechts]] (the list replaces the default). Korean pair words
    match at a word start with particles and endings after them: [왼쪽, 오른쪽] swaps 왼쪽에, 왼쪽으로, 왼쪽의,
    not a word that merely ends in 왼쪽 (맨왼쪽: list it as a pair); give Korean pairs as whole stems
    (좌측/우측, not 좌/우, which would swap the 우 of 우리). Inflected forms of languages written in Latin
    script (Turkish solda, Finnish vasemmalla) match whole words only: list each form as a pair. The English
    pairs are ambiguous and swapped everywhere: "all right, right now" becomes "all left, left now", and
    "He left the room" becomes "He right the room" (the verb); a pair [w, w] keeps a fixed phrase as it is
    (add [all right, all right], [right now, right now], [right away, right away] to ``pairs``; a phrase
    such as "right after" or "is left" is spatial as often as not: "turn right after the bridge"). Pair
    words match in any Unicode normalization form (an NFD caption from a macOS file name, Korean in
    Jamo): on NFC, the swapped word written back in the caption's form, every other byte kept; a soft
    hyphen, ZWNJ, ZWJ or word joiner U+2060 between two letters is inside a word ("left" + U+00AD + "over"
    stays), while a zero-width space U+200B is a word break, as for the tokenizer ("the" + U+200B + "left" swaps).
    ``stereo: swap`` (the default) swaps the left and right channels of 2-channel audio with the image,
    as a mirrored scene sounds (the ``spec`` from ``logmel``, a mono mix, is the same either way); ``keep``
    leaves them (before this option existed stereo was never swapped); mono audio and other channel
    counts (5.1 layouts have no one mirror) are left as they are. ``fields`` names the text fields
    swapped: ``text``, and named text fields (a member ``k.caption_de.txt`` is the field
    ``caption_de.txt``); a sample's other named text fields keep their words, with a warning once. The label
    is not swapped: a class named by a pair word (``LEFT``) keeps its label in a flipped sample whose text and
    image now say ``RIGHT`` (``mmdata augment`` and ``mmdata preview`` warn of such class names,
    :func:`~mmdata.augment.recipe.label_side_notes`); swap it in the loader's ``transform`` where ``s.meta["aug"]``
    shows the flip applied, or leave the flip out. A stereo
    camera pair is not swapped: an image target (``targets: {right.png: image}``) is flipped in place with the
    image, so each view is mirrored but stays in its field, while the mirror of a stereo rig would make the
    mirrored left view the new right one; a stereo-matching model then sees disparities of the other sign.
    Swap ``image`` and the other view yourself after the op (e.g. in the loader's ``transform``), or leave
    flips out of a stereo-depth recipe. Exact."""

    section, name = "sample", "consistent_hflip"
    moves_pixels = True
    PARAMS = {"pairs": PairsParam("list", [list(p) for p in DEFAULT_PAIRS],
                                  doc="[word, word] pairs swapped in the text: whole words, case kept (CJK: as characters; "
                                      "Korean: with the particles after them); [w, w] keeps w"),
              "fields": Param("list", ["text"], doc="text fields whose words are swapped: text and named text fields "
                                                    "(caption_de.txt)"),
              "stereo": Param("str", "swap", choices=("swap", "keep"),
                              doc="2-channel audio: swap its left and right channels with the image, or keep them "
                                  "(mono and other channel counts are kept)")}

    def validate(self, where: str) -> None:
        from mmdata.codecs import TEXT_EXTS, member_type

        for j, f in enumerate(self.fields):
            if not isinstance(f, str) or (f != "text" and ("." not in f or member_type(f) not in TEXT_EXTS)):
                raise RecipeError(f"{where}.fields[{j}]: {f!r} is no text field; give text or a named text field "
                                  f"(a member k.caption_de.txt is the field caption_de.txt)")
        if not self.fields:
            raise RecipeError(f"{where}.fields: give at least one text field, e.g. [text]")
        if len(set(self.fields)) != len(self.fields):
            raise RecipeError(f"{where}.fields: {self.fields!r} names a field twice; name each once")

    def to_dict(self) -> dict[str, Any]:
        """Recipe form; ``pairs`` and ``fields`` only when not the default (like a recipe's ``keying``), so
        recipes written before they existed keep their canonical text."""
        d = super().to_dict()
        for name in ("pairs", "fields", "stereo"):
            if d.get(name) == self.PARAMS[name].default:
                del d[name]
        return d

    def batch_fields(self) -> tuple[str, ...]:
        audio = ("audio",) if self.stereo == "swap" else ()
        return ("image", *audio, "tokens", *dict.fromkeys(("text", *self.fields)))

    def _warn_texts(self, fields: Any) -> None:
        """Warn once when a sample has named text fields this op leaves as they are (a second caption
        saying "left" of a flipped image)."""
        from mmdata.codecs import TEXT_EXTS, member_type

        others = [n for n in fields if n != "text" and n not in self.fields and "." in n and member_type(n) in TEXT_EXTS]
        if others:
            self.__dict__["_texts_warned"] = True
            warnings.warn(f"consistent_hflip swaps left / right in {', '.join(self.fields)} only: the named text "
                          f"field{'s' * (len(others) > 1)} {', '.join(map(repr, others))} keep{'s' * (len(others) == 1)} "
                          f"{'their' if len(others) > 1 else 'its'} words while the image flips; list "
                          f"{'them' if len(others) > 1 else 'it'} in the op's fields (fields: [text, {others[0]}]) and "
                          f"add the words of {'their languages' if len(others) > 1 else 'its language'} to pairs",
                          UserWarning, stacklevel=4)

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any] | None:
        return {} if "image" in sample else None  # nothing to flip: the caption stays true as it is

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        if "image" not in sample:
            return sample
        if not self.__dict__.get("_texts_warned"):
            self._warn_texts(sample.fields)
        upd: dict[str, Any] = {"image": sample["image"].flip(-1)}
        audio = sample.fields.get("audio")
        if self.stereo == "swap" and isinstance(audio, torch.Tensor) and audio.dim() == 2 and audio.shape[0] == 2:
            upd["audio"] = audio.flip(0)  # (left, right) -> (right, left): the mirrored scene's channels
        for name in self.fields:
            if isinstance(sample.fields.get(name), str):
                upd[name] = swap_left_right(sample[name], self.pairs)
        return sample.with_fields(**upd)

    def move_map(self, arr: Any, params: dict[str, Any], fill: int | float = 0) -> Any:
        return arr[:, ::-1].copy()  # applied only where the sample has an image (sample_params)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        if "image" not in batch:
            return batch
        from mmdata.augment.image import HFlip

        if not self.__dict__.get("_texts_warned"):
            self._warn_texts(batch.data)
        flipped = [bool(p.get("applied")) and f for p, f in zip(params, batch.present["image"].tolist())]
        out = HFlip(p=1.0).transform_batch(batch, [{"applied": f} for f in flipped])
        audio = batch.data.get("audio")
        if self.stereo == "swap" and isinstance(audio, torch.Tensor) and audio.dim() == 3 and audio.shape[1] == 2:
            rows = [i for i, (f, a) in enumerate(zip(flipped, batch.present["audio"].tolist())) if f and a]
            if rows:  # padding is zero in both channels: swapping it too changes nothing
                idx = on(torch.tensor(rows), audio.device)
                out = out.replace(audio=audio.index_copy(0, idx, audio.index_select(0, idx).flip(1)))
        for name in self.fields:
            texts = batch.data.get(name)
            if not isinstance(texts, list):
                continue
            swapped = [swap_left_right(t, self.pairs) if f and isinstance(t, str) else t for t, f in zip(texts, flipped)]
            out = retokenize(out, swapped) if name == "text" else out.replace(**{name: swapped})
        return out
