"""Text ops at token level (the units of :mod:`mmdata.text`: words separated by white space or U+200B, and
single characters in CJK runs).

The per-sample kernel edits the string; the batched kernel edits the padded token ids with the same
params (masking, deletion, swaps, crops are index operations), and keeps ``batch["text"]`` in step by
applying the string edit too. So ``tokenize(apply(s)) == apply_batch(collate(s))`` exactly, shapes
included: ``tokens`` is trimmed to the longest edited text, as collate pads it. The ids hold only the
tokenizer's first ``max_len`` units, so a row whose text is longer is re-encoded from its edited text (a
deletion pulls in the units past the window, as ``encode`` does). ``typo`` changes characters, so its
batched kernel edits the strings and re-tokenises.

The edited string keeps what the edit did not touch: the separators between units that stay neighbours
(:meth:`~mmdata.text.Tokenizer.rebuild`: no space between CJK and Latin units that had none, line breaks
kept), whole grapheme clusters (a unit never starts with a combining mark), and ``[MASK]`` units, which
``typo`` leaves alone.

nlpaug's word ops draw from the global RNG, so the per-sample kernels here implement its
RandomWordAug (swap / delete / crop) and KeyboardAug / OcrAug semantics with our params; the typo
character maps are nlpaug's own resource files, loaded offline. Nothing here needs a download
(nlpaug's WordNet synonym ops are deliberately absent).
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdata.augment import contract
from mmdata.augment.base import Op, Param
from mmdata.augment.batching import on, retokenize, tidy, tokenizer_of
from mmdata.errors import RecipeError, ShardError
from mmdata.text import _UNITS, MASK_ID, MASK_TOKEN, PAD_ID, Tokenizer, Unit
from mmdata.types import Batch, Sample


class _EditProblem(Exception):
    """:meth:`TextOp.edit` of an op defined outside mmdata returned no list of str (raised by ``_edited``, which
    knows no sample; its callers raise the :class:`~mmdata.augment.contract.OpError` naming the sample)."""


def edit_problem(edited: Any) -> str | None:
    """Why ``edited`` (what :meth:`TextOp.edit` returned) is no sequence of token units (None: it is one, a list
    or a tuple of str).

    Example:
        >>> edit_problem("THE DOG")
        'edit returned a str; expected a sequence of token units (words): a str would be read as one word per character; return a list (e.g. [w.upper() for w in words])'
    """
    if isinstance(edited, Sequence) and not isinstance(edited, (str, bytes, bytearray)):
        for w in edited:
            if not isinstance(w, str):
                kind = type(w).__name__
                return (f"edit returned a {type(edited).__name__} holding {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                        f"({w!r:.40}); expected a sequence of token units (words), each a str")
        return None
    hint = ""
    if isinstance(edited, str):
        hint = ": a str would be read as one word per character; return a list (e.g. [w.upper() for w in words])"
    elif edited is None:
        hint = ": return the words (edit returns a new list; it does not edit them in place)"
    elif isinstance(edited, Iterable):  # a generator, a set, an array: read once, in no given order, or not as str
        hint = " (a list or a tuple of str; list(...) makes one)"
    return f"edit returned a {type(edited).__name__}; expected a sequence of token units (words){hint}"


class TextOp(Op):
    """A text op: ``word_params`` draws from the sample's token units (never empty), ``edit`` edits them;
    the batched kernel edits the token ids with ``edit_ids`` (or re-tokenises edited strings)."""

    section = "text"
    field = "text"

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any] | None:
        words = Tokenizer.words(sample["text"])
        return self.word_params(rng, words) if words else None  # an empty caption has nothing to edit

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any] | None:
        return {}

    # string edit shared by both kernels
    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        # the straightforward kernel, and the reference the built-in ops' own (fast on huge texts: no object per
        # unit, one join) are tested against, tests/augment/test_text_ops_equivalence.py; they fall back to it
        # for params no draw gives
        units = Tokenizer.units(text)
        edited = self.edit(units, params)
        if not self._builtin:  # a str is iterable: rebuild would read it as one word per character
            problem = edit_problem(edited)
            if problem is not None:
                raise _EditProblem(problem)
            edited = list(edited)  # a tuple of words, as before the check
        return text if edited == units else Tokenizer.rebuild(text, units, edited)  # unedited text stays byte-identical

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        try:
            text = self._edited(sample["text"], params)
        except _EditProblem as exc:
            raise contract.fail(self, sample.key, str(exc)) from None
        return sample.with_fields(text=text)

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Edit token ids (on their device) as :meth:`edit` edits words; ``lengths`` (B,) is host
        metadata, and so are the returned lengths."""
        raise NotImplementedError

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        texts = []
        for key, t, p in zip(batch.keys, batch["text"], params):
            try:
                texts.append(self._edited(t, p))
            except _EditProblem as exc:
                raise contract.fail(self, key, str(exc)) from None
        tok = tokenizer_of(batch)
        # no id kernel (a plugin's op), or ids that are not one per unit (a tokenizer of the user's, a subclass's
        # own units): re-tokenise the edited strings with the batch's tokenizer
        if type(self).edit_ids is TextOp.edit_ids or type(tok) is not Tokenizer:
            return retokenize(batch, texts)
        # lengths are host metadata in and out: ops compute new lengths from their (host) params
        ids, lengths = self.edit_ids(batch["tokens"], batch.lengths["tokens"], params)
        ids, lengths = _refill(tok, ids, lengths, batch.lengths["tokens"], batch["text"], texts)
        out = batch.replace(text=texts, tokens=ids)
        out.lengths["tokens"] = lengths
        # the id kernels keep the input's width; collate pads to the longest text (a crop or a delete shortens it)
        return tidy(out, ("tokens",))


def _n(words: list[str]) -> int:
    """The units an op draws over: all of the text's (a 2000-word plot is masked, deleted, cropped along its
    whole length, not in the tokenizer's first ``max_len`` units, which the batched ids hold: rows longer
    than that are re-encoded from their edited text, :func:`_refill`)."""
    return len(words)


def _put(unit: str, text: str) -> str:
    """``text`` in ``unit``'s place (keeping where it came from, for the separators around it)."""
    return unit.replaced_by(text) if isinstance(unit, Unit) else text


#: the tokenizer's units as a group: ``split`` gives ``[sep, unit, sep, ..., unit, sep]`` in one call
_SPLIT = re.compile(f"({_UNITS.pattern})")


def _parts(text: str) -> list[str]:
    """``text`` as ``[sep0, unit0, sep1, ..., unit(n-1), sepn]``: its units (:meth:`Tokenizer.words`, at the odd
    places) and the text around them (whitespace only: every other character starts or continues a unit;
    ``sep0`` / ``sepn`` the text's leading / trailing whitespace), without an object per unit."""
    return _SPLIT.split(text)


#: texts of fewer units than this take the straightforward kernel (TextOp._edited): for a caption of a few
#: words it is the quicker (no arrays to set up), and gives the same text
_SMALL = 24


def _more_units(text: str, n: int) -> bool:
    """Whether ``text`` has more than ``n`` units (reading its first ``n + 1`` only)."""
    return sum(1 for _ in islice(_UNITS.finditer(text), n + 1)) > n


def _ints(values: Any, lo: int, hi: int) -> bool:
    """Whether ``values`` are all plain ints in [lo, hi): params as the draws give them. Others (a replay log's
    or a user's: negative, out of range, not an int) take the straightforward kernel, errors included."""
    return all(type(v) is int and lo <= v < hi for v in values)


def _rebuild(parts: list[str], order: np.ndarray, new: dict[int, str]) -> str:
    """:meth:`Tokenizer.rebuild` of the text of ``parts`` (:func:`_parts`) with edited unit ``k`` its unit
    ``order[k]``, replaced by ``new[k]`` where given — one join, no object per unit.

    The separators are rebuild's: between units that were neighbours (in order) the text's own; else a space if
    the text between them had whitespace (a separator that is not empty is whitespace), else none. Then, only
    where a replaced unit or units that were not neighbours meet over a separator that is not a single space:
    none next to a ``[MASK]`` becomes a space, and so does one that would glue or split the units. Two units
    that were neighbours keep their separator: they tokenise as themselves again (a unit's match depends on
    the characters up to its end only)."""
    m = len(order)
    if m == 0:
        return ""
    n = len(parts) // 2
    words = np.array(parts[1::2], dtype=object)
    seps = np.array(parts[0::2], dtype=object)
    out = words[order]
    for k, w in new.items():
        out[k] = w
    a, b = order[:-1], order[1:]
    adj = b == a + 1
    sep = seps[b]  # neighbours: the separator before the second
    if not adj.all():
        cnt = np.concatenate(([0], np.cumsum(np.fromiter(map(bool, parts[0::2]), dtype=bool, count=n + 1))))
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        gap = np.where(cnt[hi + 1] - cnt[lo + 1] > 0, " ", "").astype(object)  # whitespace in seps lo+1..hi
        sep = np.where(adj, sep, gap)
    check = ~adj
    at = np.fromiter(new, dtype=np.int64, count=len(new))
    check[at[at < m - 1]] = True  # the pairs a replaced unit is in
    check[at[at > 0] - 1] = True
    for k in np.flatnonzero(check & (sep != " ")).tolist():
        x, y, s = out[k], out[k + 1], sep[k]
        if not s and MASK_TOKEN in (new.get(k), new.get(k + 1)):
            s = " "
        if s != " " and _UNITS.findall(x + s + y) != [x, y]:
            s = " "
        sep[k] = s
    pieces = np.empty(2 * m + 1, dtype=object)
    pieces[0] = parts[0] if order[0] == 0 else ""
    pieces[1::2] = out
    pieces[2:-1:2] = sep
    pieces[-1] = parts[-1] if order[-1] == n - 1 else ""
    return "".join(pieces.tolist())


def _refill(tok: Tokenizer, ids: torch.Tensor, lengths: torch.Tensor, held: torch.Tensor, before: Sequence[str],
            after: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose text had more units than ``tok`` (the batch's tokenizer) keeps, re-encoded from their edited
    text: the id kernels see only the window, and ``encode(edited)`` refills it from the units past it (after
    a deletion). ``held``: the input's token lengths (host): only a full window can hide more units. Host
    encoding, one copy to the device; other rows untouched."""
    rows = [i for i, n in enumerate(held.tolist()) if n >= tok.max_len and _more_units(before[i], tok.max_len)]
    if not rows:
        return ids, lengths
    sub, sub_len = tok.encode_batch([after[i] for i in rows])
    full = torch.full((len(rows), ids.shape[1]), PAD_ID, dtype=ids.dtype)
    w = min(sub.shape[1], ids.shape[1])  # an edit never lengthens a row past the window the ids already span
    full[:, :w] = sub[:, :w]
    ids = ids.index_copy(0, on(torch.tensor(rows), ids.device), on(full, ids.device))
    lengths = lengths.clone()
    lengths[rows] = sub_len.to(lengths.dtype)
    return ids, lengths


def _compact(ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Move kept tokens to the front of each row (stable) and pad the rest."""
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    out = ids.gather(1, order)
    pos = torch.arange(ids.shape[1], device=ids.device)[None]
    return out.masked_fill(pos >= keep.sum(dim=1)[:, None], PAD_ID)


def _position_mask(params: Sequence[dict[str, Any]], key: str, width: int, device: torch.device) -> torch.Tensor:
    m = torch.zeros((len(params), width), dtype=torch.bool)
    for i, p in enumerate(params):
        pos = [j for j in p[key] if j < width]
        if pos:
            m[i, pos] = True
    return m.to(device, non_blocking=True)


def _truncate(ids: torch.Tensor, start: Sequence[int], new_len: Sequence[int]) -> torch.Tensor:
    """Keep tokens [start, start + new_len) of each row at its front (device gather; host offsets)."""
    dev = ids.device
    pos = torch.arange(ids.shape[1], device=dev)[None]
    src = (on(torch.tensor(list(start)), dev)[:, None] + pos).clamp(max=ids.shape[1] - 1)
    return ids.gather(1, src).masked_fill(pos >= on(torch.tensor(list(new_len)), dev)[:, None], PAD_ID)


class TokenMask(TextOp):
    """Replace each token by ``[MASK]`` with probability ``p_token``. Exact agreement."""

    section, name = "text", "token_mask"
    PARAMS = {"p_token": Param("float", 0.15, 0.0, 1.0, doc="probability of masking each token")}

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
        return {"positions": [int(i) for i in np.flatnonzero(rng.random(_n(words)) < self.p_token)]}

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        out = list(words)
        for i in params["positions"]:
            out[i] = _put(out[i], MASK_TOKEN)
        return out

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        parts, pos = _parts(text), params["positions"]
        n = len(parts) // 2
        if n < _SMALL or not _ints(pos, 0, n):
            return TextOp._edited(self, text, params)
        if all(parts[2 * i + 1] == MASK_TOKEN for i in pos):  # the units as they were: the text as it was
            return text
        return _rebuild(parts, np.arange(n), dict.fromkeys(pos, MASK_TOKEN))

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        return ids.masked_fill(_position_mask(params, "positions", ids.shape[1], ids.device), MASK_ID), lengths


class WordDelete(TextOp):
    """Delete each token with probability ``p_word`` (nlpaug RandomWordAug 'delete'), keeping at least
    ``keep_at_least`` tokens: when more are drawn for deletion, the ones kept are chosen uniformly at
    random among them. Exact agreement."""

    section, name = "text", "word_delete"
    PARAMS = {"p_word": Param("float", 0.1, 0.0, 1.0, doc="probability of deleting each token"),
              "keep_at_least": Param("int", 1, 0, 1000, doc="never leave fewer tokens than this")}

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
        n = _n(words)
        u = rng.random(n)
        drop = np.flatnonzero(u < self.p_word)
        room = max(0, n - self.keep_at_least)
        if len(drop) > room:
            # restore the drops with the largest draws: given a drop, its draw is uniform on [0, p_word), so
            # the tokens kept are uniform among the drawn drops (a prefix would favour the last tokens), with
            # no extra draw, so the draws where keep_at_least does not bind are unchanged
            drop = np.sort(drop[np.argsort(u[drop], kind="stable")[:room]])
        return {"positions": [int(i) for i in drop]}

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        gone = set(params["positions"])
        return [w for i, w in enumerate(words) if i not in gone]

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        parts, pos = _parts(text), params["positions"]
        n = len(parts) // 2
        if n < _SMALL or not all(type(i) is int for i in pos):
            return TextOp._edited(self, text, params)
        keep = np.ones(n, dtype=bool)
        keep[[i for i in pos if 0 <= i < n]] = False  # others name no unit: nothing deleted
        order = np.flatnonzero(keep)
        return text if len(order) == n else _rebuild(parts, order, {})

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        drop = _position_mask(params, "positions", ids.shape[1], ids.device)
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        out = _compact(ids, (pos < on(lengths, ids.device)[:, None]) & ~drop)
        # host: new length = old length - deleted positions inside it
        new = [n - sum(1 for j in set(p["positions"]) if j < n) for n, p in zip(lengths.tolist(), params)]
        return out, torch.tensor(new, dtype=lengths.dtype)


class WordSwap(TextOp):
    """Swap ``n_swaps`` random adjacent token pairs, one after another (nlpaug RandomWordAug 'swap').
    Exact agreement."""

    section, name = "text", "word_swap"
    PARAMS = {"n_swaps": Param("irange", [1, 1], 0, 100, doc="number of swaps [min, max]")}

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
        n = _n(words)
        k = int(rng.integers(int(self.n_swaps[0]), int(self.n_swaps[1]) + 1))
        return {"swaps": [int(rng.integers(0, n - 1)) for _ in range(k)] if n > 1 else []}

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        out = list(words)
        for i in params["swaps"]:
            out[i], out[i + 1] = out[i + 1], out[i]
        return out

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        parts, swaps = _parts(text), params["swaps"]
        n = len(parts) // 2
        if n < _SMALL or not _ints(swaps, 0, n - 1):
            return TextOp._edited(self, text, params)
        order = np.arange(n)
        for i in swaps:
            order[i], order[i + 1] = order[i + 1], order[i]
        moved = np.flatnonzero(order != np.arange(n)).tolist()
        if all(parts[2 * order[k] + 1] == parts[2 * k + 1] for k in moved):  # equal units swapped: as it was
            return text
        return _rebuild(parts, order, {})

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        perm = torch.arange(ids.shape[1]).repeat(ids.shape[0], 1)
        for r, p in enumerate(params):
            row = perm[r]
            for i in p["swaps"]:
                if i + 1 < len(row):  # a swap past the window: the row is re-encoded from its edited text
                    row[i], row[i + 1] = row[i + 1].clone(), row[i].clone()
        return ids.gather(1, on(perm, ids.device)), lengths


class WordCrop(TextOp):
    """Keep one contiguous span of a ``fraction`` of the tokens (nlpaug RandomWordAug 'crop' keeps the
    complement). Exact agreement."""

    section, name = "text", "word_crop"
    PARAMS = {"fraction": Param("range", [0.5, 1.0], 0.0, 1.0, doc="fraction of the tokens kept [min, max]")}

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
        n = _n(words)
        k = max(1, int(round(n * rng.uniform(*self.fraction))))
        return {"start": int(rng.integers(0, n - k + 1)), "length": k}

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        return words[params["start"] : params["start"] + params["length"]]

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        parts, start, length = _parts(text), params["start"], params["length"]
        n = len(parts) // 2
        if not (_ints([start], 0, n + 1) and type(length) is int and length >= 0):
            return TextOp._edited(self, text, params)
        end = min(n, start + length)
        if start >= end:
            return text if n == 0 else ""
        # neighbours keep their separators (_rebuild): the span of the text, with its ends when kept
        return "".join(parts[0 if start == 0 else 2 * start + 1 : len(parts) if end == n else 2 * end])

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        new_len = [p["length"] for p in params]
        return _truncate(ids, [p["start"] for p in params], new_len), torch.tensor(new_len, dtype=lengths.dtype)


class MaxTokens(TextOp):
    """Keep the first ``n`` tokens of longer texts (the tokenizer's units: words, CJK characters, each with
    its combining marks and variation selectors), with the text's own separators between them.
    Deterministic, for a fixed text budget at evaluation. Exact agreement. Known limit (every text op):
    Thai, Lao, Khmer, Myanmar and other scripts written without spaces are one unit per run of text, as no
    dictionary segmenter ships offline; a zero-width space U+200B (their explicit word break) separates
    units as a space does."""

    section, name = "text", "max_tokens"
    PARAMS = {"n": Param("int", 32, 1, 100000, doc="maximum number of tokens kept")}
    deterministic = True

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any] | None:
        # whether there are more than n units is all it asks (word_params's answer, without the other units)
        return {"length": self.n} if _more_units(sample["text"], self.n) else None

    def word_params(self, rng: Any, words: list[str]) -> dict[str, Any] | None:
        return {"length": self.n} if len(words) > self.n else None

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        return words[: params["length"]]

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        length = params["length"]
        if not (type(length) is int and length >= 0):
            return TextOp._edited(self, text, params)
        first = list(islice(_UNITS.finditer(text), length + 1))
        if len(first) <= length:  # all the units kept: the text as it was
            return text
        return text[: first[length - 1].end()] if length else ""  # the leading whitespace and the units kept

    def edit_ids(self, ids: torch.Tensor, lengths: torch.Tensor, params: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        new_len = [min(n, p["length"]) for n, p in zip(lengths.tolist(), params)]
        return _truncate(ids, [0] * len(params), new_len), torch.tensor(new_len, dtype=lengths.dtype)


@lru_cache(maxsize=4)
def char_map(kind: str) -> dict[str, list[str]]:
    """nlpaug's offline character-substitution map (``keyboard`` / ``ocr``, English)."""
    import nlpaug

    path = Path(nlpaug.__file__).parent / "res" / "char" / kind / "en.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for k, vs in raw.items():
        out.setdefault(k, []).extend(vs)
        if kind == "keyboard" and k.isalpha():  # nlpaug maps lower-case keys; upper-case mirrors them
            out.setdefault(k.upper(), []).extend(v.upper() for v in vs)
    if kind == "ocr":  # nlpaug's OCR map is symmetric in use
        for k, vs in list(raw.items()):
            for v in vs:
                out.setdefault(v, [])
                if k not in out[v]:
                    out[v].append(k)
    return out


@lru_cache(maxsize=4)
def _editable(kind: str) -> frozenset[str]:
    """The characters :func:`char_map` has a substitute for."""
    return frozenset(ch for ch, subs in char_map(kind).items() if subs)


def _carries_mark(word: str, i: int) -> bool:
    """Whether a combining mark (category M*) or a zero-width joiner follows ``word[i]``: the character is part
    of a cluster (an NFD "ö", an emoji sequence) that an edit of it alone would break."""
    return i + 1 < len(word) and (word[i + 1] == "\u200d" or unicodedata.category(word[i + 1]).startswith("M"))


def _candidates(w: str, keys: frozenset[str]) -> list[int]:
    """The characters of ``w`` a typo may replace."""
    if w.isascii():  # no combining mark or joiner follows an ASCII character
        return [ci for ci, ch in enumerate(w) if ch in keys]
    # not a letter a combining mark sits on (NFD "o\u0308"): its NFC form "ö" has no entry, so both forms draw alike
    return [ci for ci, ch in enumerate(w) if ch in keys and not _carries_mark(w, ci)]


#: what typo's maps cover (said by its docs and its warning)
TYPO_COVERS = ("its maps (nlpaug's English keyboard / OCR maps) have ASCII letters, digits and a few ASCII symbols "
               "only: Latin-script text (its accented letters kept as they are); Arabic, Hebrew, Cyrillic, Greek, "
               "Devanagari, Thai, CJK, Hangul and full-width Latin text gets no typo")
_PACKAGE = Path(__file__).resolve().parents[1]  # mmdata/, the package of this file


def _outside_mmdata() -> int:
    """The ``stacklevel`` of the first frame outside the mmdata package, from the function that calls this
    one's caller (the user's or the CLI's line that ran the recipe, not a line of mmdata); 2 when every frame
    is mmdata's."""
    import sys

    frame, level = sys._getframe(2), 2
    while frame is not None and _PACKAGE in Path(frame.f_code.co_filename).resolve().parents:
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2
#: captions typo has seen before it may warn that most of them have nothing it can change
_TYPO_SEEN = 4

#: texts of at least this many units draw typo's params in bulk (:func:`_typo_bulk`); shorter ones one draw at
#: a time (cheaper for a caption: no state copied)
_TYPO_BULK = 256
_HALF = 0xFFFFFFFF
_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53: numpy's random() from a raw output's top 53 bits


def _off_masks(edits: list[list[Any]], words: list[str]) -> list[list[Any]]:
    """``edits`` less those drawn on a ``[MASK]`` token, which :meth:`Typo.edit` never applies: the draws stay those
    made (every other word's typo is the same), and the replay log, preview and augment's params list only the edits
    made (QA38 OCR #8: they listed OCR's S -> 8 on the S of [MASK])."""
    return [e for e in edits if words[e[0]] != MASK_TOKEN]


def _typo_bulk(op: Typo, rng: np.random.Generator, words: list[str]) -> list[list[Any]] | None:
    """``typo``'s edits for ``words`` exactly as the draw per word gives them (``rng.random()`` per word, then
    for a word drawn with a character to replace, ``rng.integers(len(cands))`` and ``rng.integers(len(subs))``),
    and ``rng`` (a PCG64 generator) left in the same state, from the generator's raw 64-bit outputs in bulk,
    with no call per word.

    numpy's draws on a PCG64, as checked against them (tests/augment/test_text_ops_equivalence.py): ``random()``
    is the next raw output ``x`` as ``(x >> 11) * 2**-53``; ``integers(k)`` for 1 < k < 2**32 takes a 32-bit half
    (the half kept from the last raw output if the generator holds one, else the low half of the next raw
    output, keeping the high one) ``h`` and gives ``(h * k) >> 32`` (Lemire), unless ``(h * k) % 2**32 < k``,
    where it may draw again (k is a word's length or a map entry's: under one draw in 10**8): then None, and
    the caller draws one at a time;
    ``integers(1)`` draws nothing. So only the words drawn take a Python step."""
    bg = rng.bit_generator
    state = bg.state
    cmap, keys, n, p_word = char_map(op.kind), _editable(op.kind), len(words), op.p_word
    raw = np.empty(0, dtype=np.uint64)
    hits: list[int] = []  # the raw outputs that, as a word's double, draw it

    def more(count: int) -> None:
        nonlocal raw
        new = bg.random_raw(count)
        hits.extend((len(raw) + np.flatnonzero((new >> np.uint64(11)) * _DOUBLE < p_word)).tolist())
        raw = np.concatenate((raw, new))

    more(n)  # a double per word; integer draws take more, drawn when needed
    has, half = state["has_uint32"], state["uinteger"]
    pos = 0  # the next raw output
    off = 0  # raw outputs the integer draws took so far: word wi's double is raw output wi + off

    def bounded(bound: int) -> int | None:
        nonlocal has, half, pos, off
        if bound == 1:
            return 0
        if has:
            has, h = 0, half
        else:
            if pos >= len(raw):
                more(max(1024, n // 8))
            r = int(raw[pos])
            has, h, half = 1, r & _HALF, r >> 32
            pos, off = pos + 1, off + 1
        m = h * bound
        return None if m & _HALF < bound else m >> 32  # None: numpy may draw again (Lemire's rejection)

    edits: list[list[Any]] = []
    seen: dict[str, list[int]] = {}  # a word's candidates, once per distinct word
    k = 0
    while True:
        while k < len(hits) and hits[k] < pos:  # a raw output an integer draw took
            k += 1
        if k == len(hits):
            if len(raw) >= n + off:
                break
            more(n + off - len(raw))
            continue
        wi = hits[k] - off
        if wi >= n:
            break
        pos = hits[k] + 1
        w = words[wi]
        cands = seen.get(w)
        if cands is None:
            cands = seen[w] = _candidates(w, keys)
        if not cands:
            continue
        a = bounded(len(cands))
        subs = cmap[w[cands[a]]] if a is not None else []
        b = bounded(len(subs)) if a is not None else None
        if b is None:
            bg.state = state
            return None
        edits.append([wi, cands[a], subs[b]])
    bg.state = state
    bg.random_raw(n + off)  # the generator where the draws per word leave it
    after = bg.state
    bg.state = {**after, "has_uint32": has, "uinteger": half}
    return edits


class Typo(TextOp):
    """Character noise: in each word chosen with ``p_word``, replace one character by a keyboard
    neighbour or an OCR confusion (nlpaug KeyboardAug / OcrAug maps); ``[MASK]`` tokens are left alone. The
    batched kernel edits the strings and re-tokenises. Scripts: the maps have ASCII letters, digits and a
    few ASCII symbols only, so Latin-script text is edited (its accented letters kept); Arabic, Hebrew,
    Cyrillic, Greek, Devanagari, Thai, CJK, Hangul and full-width Latin text draws no edit, and the op warns
    once when most captions it has seen (4 or more) have no character it can change.

    The kernel touches only the edited words: a word between single spaces is replaced in place, any
    other is rebuilt with its neighbours (:meth:`~mmdata.text.Tokenizer.rebuild` on that stretch); with an
    edit in one unit in eight or more, the text is rebuilt in one pass, one join. It gives the text that
    rebuilding every unit gives (``TextOp._edited``, the reference it is tested against, for any params),
    3-6x faster on 2000 words (``benchmarks/text_typo.py``). On a long text the params are drawn in bulk
    (:func:`_typo_bulk`), the draws a draw per word gives.

    Example:
        >>> Typo(p_word=1.0).transform(Sample("k", {"text": "a cat"}), {"edits": [[1, 0, "x"]]})["text"]
        'a xat'
    """

    section, name = "text", "typo"
    PARAMS = {"p_word": Param("float", 0.1, 0.0, 1.0, doc="probability of a typo in each token"),
              "kind": Param("str", "keyboard", choices=("keyboard", "ocr"), doc="keyboard neighbours or OCR confusions")}

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any] | None:
        # the draws over every word (so every other word's typo stays as drawn), the edits on a [MASK] left out
        words = Tokenizer.words(sample["text"])
        return {"edits": _off_masks(self.word_params(rng, words)["edits"], words)} if words else None

    def word_params(self, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
        if not self.__dict__.get("_script_warned"):
            self._count_editable(words)
        if len(words) >= _TYPO_BULK and type(rng.bit_generator) is np.random.PCG64:
            edits = _typo_bulk(self, rng, words)
            if edits is not None:
                return {"edits": edits}
        cmap, keys = char_map(self.kind), _editable(self.kind)
        p_word, draw, pick = self.p_word, rng.random, rng.integers  # looked up once: a long text draws per word
        edits = []
        for wi, w in enumerate(words):
            if draw() >= p_word:
                continue
            cands = _candidates(w, keys)
            if not cands:
                continue
            ci = cands[int(pick(len(cands)))]
            subs = cmap[w[ci]]
            edits.append([wi, ci, subs[int(pick(len(subs)))]])
        return {"edits": edits}

    def _count_editable(self, words: list[str]) -> None:
        """Count the captions none of whose first words has a character the map replaces, and warn once when
        most of the first :data:`_TYPO_SEEN` or more do (QA33 multilingual #7: on Arabic, Cyrillic, CJK... the
        op drew no edit and said nothing, and an ablation arm without it measured nothing). Only a warning:
        the draws are the same."""
        keys = _editable(self.kind)
        seen, blank = self.__dict__.get("_script_counts", (0, 0))
        # a [MASK] a token_mask before it put there is no word it edits (QA38 OCR #8: Hebrew text with masks was
        # counted editable, so the warning undercounted and went away with a higher p_token)
        seen, blank = seen + 1, blank + (not any(_candidates(w, keys) for w in words[:64] if w != MASK_TOKEN))
        self.__dict__["_script_counts"] = (seen, blank)
        if seen >= _TYPO_SEEN and 2 * blank > seen:
            self.__dict__["_script_warned"] = True
            # named by its recipe step (text[1]), and said at the caller's line, not at this one (QA33 review)
            warnings.warn(f"recipe step {self.where} (typo, kind: {self.kind}) can change no character of {blank} of "
                          f"the {seen} captions it has seen: {TYPO_COVERS}; on this text it does nothing (an ablation "
                          "arm without it measures nothing)", UserWarning, stacklevel=_outside_mmdata())

    def edit(self, words: list[str], params: dict[str, Any]) -> list[str]:
        out = list(words)
        for wi, ci, ch in params["edits"]:
            w = out[wi]
            # a mask is a token, not a word: a typo would make it an ordinary word ([MASI]). Skipped here, not
            # left out of the draw, so the params (and every other word's typo) stay those drawn before
            if w != MASK_TOKEN:
                out[wi] = _put(w, w[:ci] + ch + w[ci + 1 :])
        return out

    def _edited(self, text: str, params: dict[str, Any]) -> str:
        edits = params["edits"]
        if not edits:
            return text
        parts = _parts(text)
        words = parts[1::2]
        out = self.edit(words, params)  # first: params no draw gives (a replay log's, a user's) fail as in the reference
        n = len(words)
        # the units edited: every unit an edit names, but a [MASK] (edit() leaves it as it is, not "replaced")
        new = {i: out[i] for i in sorted({e[0] % n for e in edits}) if words[i] != MASK_TOKEN}
        if not new:
            return text
        if n >= _SMALL and len(new) * 8 >= n:  # many edits (a long text): one pass over all units, one join
            if all(new[i] == words[i] for i in new):  # each typo gave the character back: the text as it was
                return text
            return _rebuild(parts, np.arange(n), new)
        # each unit's start, up to the one after the last edited
        last = min(n - 1, max(new) + 1)
        ends = np.cumsum(np.fromiter(map(len, parts[: 2 * last + 2]), dtype=np.int64, count=2 * last + 2))
        starts = ends[0::2].tolist()

        def sep_after(i: int) -> str:
            return parts[2 * i + 2]

        # rebuild() keeps a single space between neighbours whatever they became, and the text's ends; other
        # separators (none, a line break) may change with the units beside them: rebuilt with those units
        windows: list[list[int]] = []
        for i in new:
            if (i == 0 or sep_after(i - 1) == " ") and (i == n - 1 or sep_after(i) == " "):
                continue
            lo, hi = max(0, i - 1), min(n - 1, i + 1)
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = hi
            else:
                windows.append([lo, hi])
        pieces: list[tuple[int, int, str]] = []  # (start, end, text): spans of the text replaced, not overlapping
        k = 0
        for i in new:
            while k < len(windows) and windows[k][1] < i:
                k += 1
            if k == len(windows) or i < windows[k][0]:  # not in a window: in place
                pieces.append((starts[i], starts[i] + len(words[i]), new[i]))
        for lo, hi in windows:
            start, end = starts[lo], starts[hi] + len(words[hi])
            part = text[start:end]
            units = Tokenizer.units(part)
            if units != words[lo : hi + 1]:  # not expected (a stretch of units reads as those units): the reference
                return TextOp._edited(self, text, params)
            stretch = [_put(u, new[lo + j]) if lo + j in new else u for j, u in enumerate(units)]
            pieces.append((start, end, part if stretch == units else Tokenizer.rebuild(part, units, stretch)))
        pieces.sort()
        joined, pos = [], 0
        for start, end, piece in pieces:
            joined += [text[pos:start], piece]
            pos = end
        joined.append(text[pos:])
        return "".join(joined)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        return retokenize(batch, [self._edited(t, p) for t, p in zip(batch["text"], params)])


class ChooseCaption(Op):
    """Set ``text`` to one caption of the sample's list of captions (several per image, COCO's five), drawn
    uniformly per (seed, epoch, sample key) like every op's params: the same caption for a sample in an epoch
    whatever the workers or the device, another draw the next epoch. The list is a metadata key of the
    sample's ``json`` field (a manifest column kept with ``mmdata shard --meta captions``): ``key`` names it,
    ``source`` the JSON field (``json``; a member ``k.caps.json`` is the field ``caps.json``; ``key: ""``
    when that field is the list itself). Put it first in ``text:`` (a text op before it there is refused: its edit would
    be thrown away), so the text ops edit the chosen caption;
    ``consistent_hflip`` (section ``sample``, after ``text``) then swaps left / right in it. A sample without
    the list, or whose list is empty or holds anything but non-empty strings, is refused (ShardError naming
    the sample and the recipe step: ``on_error="skip"`` skips it, counted). The replay log records the index
    drawn and the list's length. Exact (the batched kernel re-encodes the chosen captions with the batch's
    tokenizer).

    Example:
        >>> from mmdata.augment import load_recipe
        >>> s = Sample("k", {"text": "a cat", "json": {"captions": ["a cat", "a black cat", "a cat asleep"]}})
        >>> load_recipe({"text": [{"op": "choose_caption"}]}).apply_sample(s, epoch=2)["text"] in s["json"]["captions"]
        True
    """

    section, name = "text", "choose_caption"
    field = None  # it writes text, also where the sample had none: it reads the captions' field
    PARAMS = {"source": Param("str", "json", doc="the field holding the captions: json (a manifest's --meta columns), "
                                                 "or a named JSON member (caps.json)"),
              "key": Param("str", "captions", doc="the key of the list of captions in that field; \"\" when the field "
                                                  "is the list itself")}

    def validate(self, where: str) -> None:
        if not self.source or self.source != self.source.strip():
            raise RecipeError(f"{where}.source: {self.source!r} is no field name; give the field holding the captions, "
                              "e.g. json")

    def batch_fields(self) -> tuple[str, ...]:
        return ("text", "tokens", self.source)

    def _captions(self, value: Any, has: bool, key: str, fields: Any) -> list[str]:
        """The sample's captions, checked: a non-empty list of non-empty strings (ShardError otherwise)."""
        where = f"sample {key!r}: {self.where} (choose_caption, source: {self.source}, key: {self.key!r})"
        if not has:
            listed = f" (its fields: {', '.join(map(str, fields))})" if fields is not None else ""
            raise ShardError(f"{where}: the sample has no field {self.source!r}{listed}; expected its list of captions "
                             f"there (mmdata shard --meta {self.key or 'COLUMN'} keeps a manifest column in json)")
        if self.key:
            if not isinstance(value, Mapping) or self.key not in value:
                got = f"keys {sorted(map(str, value))}" if isinstance(value, Mapping) else type(value).__name__
                raise ShardError(f"{where}: no key {self.key!r} in the field {self.source!r} ({got}); expected the list "
                                 "of captions under it")
            value = value[self.key]
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ShardError(f"{where}: expected a list of captions (strings), got {type(value).__name__} "
                             f"{str(value)[:60]!r}")
        if not value:
            raise ShardError(f"{where}: the list of captions is empty; expected at least one caption")
        for j, c in enumerate(value):
            if not isinstance(c, str) or not c.strip():
                raise ShardError(f"{where}: caption [{j}] is {c!r}; expected a non-empty string")
        return list(value)

    def _chosen(self, captions: list[str], params: dict[str, Any], key: str) -> str:
        i, of = params.get("index"), params.get("of", len(captions))
        if type(i) is not int or not 0 <= i < len(captions) or of != len(captions):
            raise ShardError(f"sample {key!r}: {self.where} (choose_caption): params {params!r} name caption {i!r} of "
                             f"{of!r}, but the sample has {len(captions)} captions")
        return captions[i]

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        has = self.source in sample
        captions = self._captions(sample[self.source] if has else None, has, sample.key,
                                  getattr(sample, "fields", None))
        return {"index": int(rng.integers(len(captions))), "of": len(captions)}

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        has = self.source in sample
        captions = self._captions(sample[self.source] if has else None, has, sample.key, sample.fields)
        return sample.with_fields(text=self._chosen(captions, params, sample.key))

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        n = len(batch.keys)
        old = batch.data.get("text")
        texts = list(old) if isinstance(old, list) else [""] * n
        values = batch.data.get(self.source)
        present = batch.present.get(self.source, torch.zeros(n, dtype=torch.bool)).tolist()
        applied = torch.zeros(n, dtype=torch.bool)
        for i, p in enumerate(params):
            if p.get("applied"):
                value = values[i] if isinstance(values, list) else None
                captions = self._captions(value, bool(present[i]) and isinstance(values, list), batch.keys[i],
                                          list(batch.data))
                texts[i] = self._chosen(captions, p, batch.keys[i])
                applied[i] = True
        out = retokenize(batch, texts)
        out.present["text"] = batch.present.get("text", torch.zeros(n, dtype=torch.bool)) | applied
        return out
