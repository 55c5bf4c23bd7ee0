"""``mmdata preview``: a picture of what a recipe does — rows are samples, columns are the original,
the normalized sample (what evaluation sees; when the recipe has a ``normalize`` stage) and augmented
variants (epochs 0..V-1). Each cell has a panel for each modality some sample of the grid has (an
image dataset's grid has no audio or text bands): the image, the audio waveform over its log
spectrogram, and a caption: the text with the changed tokens marked (``⟨new⟩`` for replaced or inserted
tokens, ``[-old-]`` for deleted ones; red where the variant differs from the original), the modalities
the recipe dropped, the label. A sample without a modality the grid has shows an empty frame there
(``no audio``; ``audio dropped`` where the recipe dropped it). Under the grid a key names the caption
marks it shows (:data:`TEXT_KEY`, :func:`text_marks`).

Chinese, Japanese and Korean text is drawn with a font that has those glyphs when one is installed
(Noto CJK, WenQuanYi, Droid Sans Fallback, Source Han, IPA, ...; or the file named by
``MMDATA_CJK_FONT``). Without one, matplotlib would draw empty boxes; instead each CJK run is shown as
``⟦CJK ×N⟧`` and the figure says which font to install — an honest placeholder, never silent boxes. Any
other character no caption font has (Devanagari, emoji: QA found them drawn as boxes) is one too, a
script's run as ``⟦Devanagari ×6⟧`` (6 code points), a symbol as ``⟦U+1F389⟧``, noted under the grid
and as a warning (:func:`placeholder_missing`); Arabic, Hebrew, Greek, Cyrillic, ... are in DejaVu Sans and
drawn. Caption lines are wrapped to their cell's drawn width (:func:`_caption_points`: a word of wide
letters no longer runs over the next column), a caption longer than any cell draws ends ``… (100,000
chars)``, and a clip too short for a waveform or a spectrogram says so in its panel.

Large media are drawn at the figure's scale, and the figure says so: each cell is computed at full size
(the recipe sees the real sample), then an image whose longer side is over :data:`PREVIEW_IMAGE_SIDE`
is box-downscaled by a whole factor (its target maps sampled alike), and a clip longer than
:data:`PREVIEW_SECONDS` is drawn as a min / max envelope of the whole waveform over the spectrogram of
its first :data:`PREVIEW_SECONDS` (QA: two 12000x9000 photos and ten-minute 48 kHz clips took 14 GB).
Likewise a caption is compared with the original over what a cell can draw: captions of up to
:data:`DIFF_UNITS` units whole, longer ones over their first :data:`DIFF_UNITS` units, drawn cut with
:data:`CUT_MARK`, and the figure says so (QA: a ``'word ' * 50000`` caption kept the preview running for
minutes; see :func:`mark_changes`).

A row's first title is its sample's key, whole where it fits over the column (else cut in the middle: its
start and its hash suffix stay), and the source key it was sharded from where the key does not keep it
(``Batch_B__18_5934f799`` from ``Batch_B/样本_18``; :func:`shows_source`). What the grid shows is also given as
data (``summary``: each row's key, source key and class, each variant's ops that fired with their logged
params, the modalities it dropped) and as text (:func:`summary_lines`): ``mmdata preview`` prints it, for a
screen reader or a script (accessibility QA: the command said only ``wrote prev.png``).

What the grid cannot show is said under it, warned of, and listed in ``notes`` (QA36): a recipe's ``batch``
section (mixup mixes samples at collate time: the variants drawn are before it), images drawn nearly black
(:func:`dark_images`: 12-bit scans in 16-bit files, with the card's reason) and the stored fields no panel draws
(:func:`fields_not_drawn`: an ``array``). Image targets (a clip's frames, a product's views) are drawn right of
their image, the first :data:`STRIP_IMAGES` (:func:`image_strip`; one the sample lacks is a dotted block labelled
``no <field>``, as a missing modality's panel is, and ``summary`` rows list them under ``views``), and a spectrogram has a log-frequency axis with a few
frequencies labelled (:func:`log_spectrogram`).
"""

from __future__ import annotations

import difflib
import io
import os
import math
import re
import textwrap
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.augment.image import blends_alpha
from mmdata.augment.recipe import load_recipe, params_seed, refusal, warn_inert
from mmdata.errors import MMDataError, ShardError
from mmdata.io import atomic_write_bytes
from mmdata.text import CJK, CJK_PUNCT, Tokenizer
from mmdata.types import Sample
from mmdata.urls import check_path_length

#: font files known to carry CJK glyphs (matched against file names; the glyphs are checked too)
CJK_FONT_HINTS = ("notosanscjk", "notoserifcjk", "noto-cjk", "wqy", "wenquanyi", "droidsansfallback", "sourcehan",
                  "ipag", "ipaexg", "takao", "unifont", "ukai", "uming", "nanum", "sarasa", "notosanssc", "notosansjp")
_CJK_RUN = re.compile(f"[{CJK}{CJK_PUNCT}]+")
_PROBE = "圆写한"  # a Han, a kana-era kanji and a Hangul syllable: the font must have all three
#: longest image side drawn, in pixels: a cell is about 2.1 x 1.2 inches at 110 dpi (230 x 130 pixels)
PREVIEW_IMAGE_SIDE = 512
#: audio longer than this (seconds) is drawn as an envelope, with the spectrogram of its first seconds
PREVIEW_SECONDS = 30.0
#: points a side of the waveform envelope of a long clip
ENVELOPE_POINTS = 2000
INSTALL_HINT = "install a CJK font (Debian: apt-get install fonts-wqy-microhei) or set MMDATA_CJK_FONT=/path/to/font"


def _has_glyphs(path: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) for ch in _PROBE)


@lru_cache(maxsize=4)
def cjk_font(path: str | None = None) -> str | None:
    """The family name of a font with CJK glyphs (registered with matplotlib), or None.

    ``path`` (or ``$MMDATA_CJK_FONT``) names a font file to use; otherwise the system font folders are
    scanned (a fresh scan: fonts installed after matplotlib built its cache are found too).
    """
    from matplotlib import font_manager

    explicit = path or os.environ.get("MMDATA_CJK_FONT")
    if explicit:
        if not Path(explicit).is_file():
            raise MMDataError(f"font file {explicit} not found (given as the CJK font for previews)")
        candidates = [explicit]
    else:
        files = font_manager.findSystemFonts(fontext="ttf")  # .ttf, .otf and .ttc files
        candidates = sorted({f for f in files if any(h in Path(f).name.lower().replace("-", "").replace("_", "") or h in f.lower()
                                                     for h in CJK_FONT_HINTS)})
    for f in candidates:
        if _has_glyphs(f):
            font_manager.fontManager.addfont(f)
            return font_manager.FontProperties(fname=f).get_name()
    return None


def figure_style(rc: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """The matplotlib settings every PNG mmdata writes is drawn under: matplotlib's own defaults, then ``rc``.
    The caller's settings are set aside for the drawing and restored after: a notebook's inline backend sets
    ``figure.dpi`` on pyplot's first import, a style sets fonts and colours, a ``matplotlibrc`` anything — each
    moved the layout or the colours, so the same inputs gave other PNG bytes in a notebook than from the CLI.

    Args:
        rc: settings over the defaults (a CJK font family, as :func:`mmdata.train.matching.text_style` gives).

    Returns:
        A context manager (:func:`matplotlib.style.context`); draw and save the figure inside it.

    Example:
        >>> import matplotlib
        >>> with matplotlib.rc_context({"figure.dpi": 72, "font.size": 14}), figure_style({"font.size": 9}):
        ...     matplotlib.rcParams["figure.dpi"], matplotlib.rcParams["font.size"]
        (100.0, 9.0)
        >>> with matplotlib.rc_context({"figure.dpi": 72}):
        ...     with figure_style():
        ...         pass
        ...     matplotlib.rcParams["figure.dpi"]
        72.0
    """
    import matplotlib.style

    return matplotlib.style.context(["default", dict(rc or {})])


def mark_changes(before: str, after: str) -> str:
    """Token diff of two texts (CJK compared character by character), as a preview cell draws it: texts
    of more than :data:`DIFF_UNITS` units are compared over their first :data:`DIFF_UNITS` units only
    and the result is cut after :data:`DRAWN_UNITS` units, ending in :data:`CUT_MARK` (a cell draws no
    more), so the work stays bounded however long the texts are.

    Example:
        >>> mark_changes("a red box on the left", "a [MASK] box on the right")
        'a [-red-] ⟨[MASK]⟩ box on the [-left-] ⟨right⟩'
    """
    return _diff(before, after)[0]


def _diff(before: str, after: str, in_place: bool = False,
          counts: dict[str, int] | None = None) -> tuple[str, set[str], bool]:
    """:func:`mark_changes` and :func:`text_marks` of one diff (a caption is diffed once), and whether
    the texts were cut (longer than :data:`DIFF_UNITS` units); ``in_place``: the ops that edited the text kept
    every unit where it was, so units are compared position by position (:func:`_opcodes`).

    ``difflib``'s matcher is quadratic in the texts' lengths (and worse on repetitive text): a
    50000-word caption diffed against itself ran for minutes. A cell draws at most
    :data:`DRAWN_UNITS` units, so only a window is compared: texts within :data:`DIFF_UNITS` units
    (every caption a cell draws whole) are compared whole, exactly as before; longer ones over their
    first :data:`DIFF_UNITS` units, with the text and its marks read off the first :data:`DRAWN_UNITS`
    units drawn (the edit crossing that cut counted whole; the window's far end, where the two cuts need
    not line up, is never read). Equal texts are not compared at all. ``counts``: a dict that gets how many
    units each mark stands for (:func:`_marked`).
    """
    (a, cut_a), (b, cut_b) = _first_units(before, DIFF_UNITS), _first_units(after, DIFF_UNITS)
    cut = cut_a or cut_b
    if a == b:  # the original column, and every variant the recipe left alone
        return (Tokenizer.join([*a[:DRAWN_UNITS], CUT_MARK]) if cut else Tokenizer.join(a)), set(), cut
    ops: list[tuple[str, str]] = []  # (how, unit): "=" kept, "-" deleted, "+" inserted
    for op, i1, i2, j1, j2 in _opcodes(a, b, in_place):
        if op == "equal":
            ops += [("=", w) for w in a[i1:i2]]
        if op in ("replace", "delete"):
            ops += [("-", w) for w in a[i1:i2]]
        if op in ("replace", "insert"):
            ops += [("+", w) for w in b[j1:j2]]
        if cut and len(ops) >= DRAWN_UNITS:  # the edit crossing the cut counts whole: half a mask is no removal
            break
    marked, marks = _marked(ops, counts)
    return (Tokenizer.join([*marked[:DRAWN_UNITS], CUT_MARK]) if cut else Tokenizer.join(marked)), marks, cut


#: the ops whose edits keep every unit of the text where it was (a unit replaced in its place: ``token_mask``'s
#: recorded positions, a typo, a swapped left / right), as their replay-log entries name them; a variant whose
#: text only these edited is marked unit by unit in place (:func:`_opcodes`)
IN_PLACE_TEXT_OPS = frozenset(("text.token_mask", "text.typo", "sample.consistent_hflip", "sample.modality_dropout"))


def _in_place(log: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every op of a replay log that fired and may edit the text (a ``text`` or ``sample`` op, of the
    random sections or ``normalize``) is one of :data:`IN_PLACE_TEXT_OPS`."""
    for e in log:
        label = str(e.get("op", ""))
        section = label.removeprefix("normalize.").split(".", 1)[0]
        if section in ("text", "sample") and (e.get("params") or {}).get("applied", True) \
                and label not in IN_PLACE_TEXT_OPS:
            return False
    return True


def _opcodes(a: list[str], b: list[str], in_place: bool = False) -> list[tuple[str, int, int, int, int]]:
    """``difflib``'s opcodes of unit lists ``a`` -> ``b``; with ``in_place`` (the ops that edited the text keep
    every unit's position, :func:`_in_place`) and as many units on both sides, unit by unit in place
    instead. A string diff of a text whose units repeat (every Chinese caption: 的, 猫) drew a masked 猫 as a
    ``⟨[MASK]⟩`` inserted at one place and a ``[-猫-]`` deleted at another, while ``token_mask`` had logged the
    position it masked (QA33 multilingual #3)."""
    if in_place and len(a) == len(b):
        at = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        out: list[tuple[str, int, int, int, int]] = []
        k = 0
        for i in at:
            if k < i:
                out.append(("equal", k, i, k, i))
            out.append(("replace", i, i + 1, i, i + 1))
            k = i + 1
        if k < len(a):
            out.append(("equal", k, len(a), k, len(a)))
        return out
    return difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()


def _first_units(text: str, n: int) -> tuple[list[str], bool]:
    """The first ``n`` of ``text``'s units (:meth:`Tokenizer.words`), and whether it has more; a long text is
    tokenized over a start long enough to hold them (read in growing steps: a 2 MB caption is not split
    whole to show its first words).

    Example:
        >>> _first_units("a b c", 2), _first_units("a b", 2)
        ((['a', 'b'], True), (['a', 'b'], False))
    """
    k = 16 * (n + 2)
    while True:
        words = Tokenizer.words(text[:k])
        if k >= len(text):
            return words[:n], len(words) > n
        if len(words) > n + 1:  # only the last unit may be cut short by the step's end
            return words[:n], True
        k *= 4


def _marked(ops: list[tuple[str, str]], counts: dict[str, int] | None = None) -> tuple[list[str], set[str]]:
    """The units :func:`_diff` draws for its (how, unit) edits, and the :data:`TEXT_KEY` marks they show;
    ``counts`` (a dict) gets how many units each mark stands for (``{"removed": 1}``: one word deleted)."""
    from collections import Counter

    from mmdata.text import MASK_TOKEN

    out: list[str] = []
    gone: Counter[str] = Counter()
    came: Counter[str] = Counter()
    for how, w in ops:
        if how == "=":
            out.append(w)
        elif how == "-":
            out.append(f"[-{w}-]")
            gone[w] += 1
        else:
            out.append(f"⟨{w}⟩")
            came[w] += 1
    masks = came.pop(MASK_TOKEN, 0)
    moved = gone & came  # a token deleted in one place and inserted in another
    gone, came = gone - moved, came - moved
    marks = {"masked"} if masks else set()
    if moved:
        marks.add("moved")
    if sum(gone.values()) > masks:  # each mask stands for one token gone; the others were removed
        marks.add("removed")
    if came:
        marks.add("new")
    if counts is not None:
        counts.update({"removed": max(sum(gone.values()) - masks, 0), "new": sum(came.values()), "masked": masks,
                       "moved": sum(moved.values())})
        for k in [k for k, v in counts.items() if not v]:
            del counts[k]
    return out, marks


def placeholder_cjk(text: str) -> str:
    """CJK runs replaced by a visible ``⟦CJK ×N⟧`` (for figures without a CJK font).

    Example:
        >>> placeholder_cjk("photo 一张照片 here")
        'photo ⟦CJK ×4⟧ here'
    """
    # characters as read: a kana voicing mark (NFD が is か + U+3099) is part of the character before it
    return _CJK_RUN.sub(lambda m: f"⟦CJK ×{sum(not unicodedata.combining(c) for c in m.group())}⟧", text)


#: the captions' font size (points) and their first font (a CJK font after it, when one is found); 8 points
#: (11 pixels in the PNG) at least: QA27 read 6.5 points (9 pixels) as too small
CAPTION_PT, CAPTION_FONT = 8.0, "DejaVu Sans"
#: the size (points) of the notes drawn on the media panels: a clip's length, rate and channels, its peak
INFO_PT = 8.0
#: a caption line's pitch in font sizes (matplotlib's default ``linespacing``)
CAPTION_LEADING = 1.2
#: words before these in a character's Unicode name name its script (``DEVANAGARI VOWEL SIGN E``)
_SCRIPT_WORDS = ("LETTER", "VOWEL", "SIGN", "DIGIT", "NUMBER", "SYLLABLE", "LIGATURE", "CONSONANT", "MARK",
                 "PUNCTUATION", "CHARACTER", "SYMBOL", "FRACTION", "VIRAMA")
#: a caption's text longer than any cell draws ends in this note (its length), kept when the cell cuts it
_LENGTH_NOTE = re.compile(r" (\((?:\d{1,3}(?:,\d{3})*) chars\))$")


@lru_cache(maxsize=8)
def _ft_font(path: str) -> Any:
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path)
    font.set_size(CAPTION_PT, 72)  # advances in points
    return font


@lru_cache(maxsize=8)
def _caption_fonts(font: str | None) -> tuple[Any, ...]:
    """The fonts a caption is drawn with, in matplotlib's fallback order: DejaVu Sans, then the CJK font
    ``font`` (a family :func:`cjk_font` registered)."""
    from matplotlib import font_manager

    out = []
    for family in (CAPTION_FONT, font):
        if family is None:
            continue
        try:
            out.append(_ft_font(font_manager.findfont(font_manager.FontProperties(family=family),
                                                      fallback_to_default=False)))
        except ValueError:  # not registered: matplotlib would not draw with it either
            continue
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _glyph_font(ch: str, font: str | None) -> Any:
    """The first caption font with a glyph for ``ch`` (None: no font the preview draws with has one)."""
    return next((f for f in _caption_fonts(font) if f.get_char_index(ord(ch))), None)


@lru_cache(maxsize=1 << 16)
def _advance(ch: str, font: str | None) -> float:
    """How wide ``ch`` is drawn in a caption, in points (1 em for a character no font has)."""
    from matplotlib.ft2font import LoadFlags

    f = _glyph_font(ch, font)
    if f is None:
        return CAPTION_PT
    return f.load_char(ord(ch), flags=LoadFlags.NO_HINTING).linearHoriAdvance / 65536


def _text_width(text: str, font: str | None = None) -> float:
    return sum(_advance(ch, font) for ch in text)


#: a caption line's width in points: CHARS Latin letters (``x``: what every line took when lines were
#: counted in characters; QA: a line of 34 ``W`` ran over the next column)
def _line_points(width: int) -> float:
    return width * _advance("x", None)


@lru_cache(maxsize=1)
def _script_names() -> frozenset[str]:
    """The first words of the Unicode names of letters and marks (``DEVANAGARI``, ``ETHIOPIC``): what a
    punctuation's name starts with when it belongs to a script (``DEVANAGARI DANDA``). Built once (~60 ms),
    when a caption has a punctuation no font has."""
    import sys
    import unicodedata

    return frozenset(unicodedata.name(chr(c), " ").split(" ", 1)[0] for c in range(min(sys.maxunicode, 0x2FFFF))
                     if unicodedata.category(chr(c))[0] in "LM" and " " in unicodedata.name(chr(c), ""))


def _script(ch: str) -> str | None:
    """The script a letter, mark or digit is written in, from its Unicode name (``Devanagari``), and a
    punctuation whose name starts with a script's (``DEVANAGARI DANDA``, ``ETHIOPIC FULL STOP``, ``TIBETAN
    MARK INTERSYLLABIC TSHEG``: QA found them labelled "emoji / symbols"); None for symbols and emoji (shown
    by code point)."""
    import unicodedata

    kind = unicodedata.category(ch)[0]
    if kind not in "LMNP":
        return None
    words = unicodedata.name(ch, "").split()
    if kind == "P" and (len(words) < 2 or words[0] not in _script_names() or words[0] == "LATIN"):
        return None
    cut = next((i for i, w in enumerate(words) if w in _SCRIPT_WORDS), 1)
    return " ".join(words[: max(cut, 1)]).title() or None


def placeholder_missing(text: str, font: str | None = None) -> tuple[str, list[str]]:
    """``text`` with the characters no caption font has (DejaVu Sans, then the CJK ``font``) replaced by
    visible placeholders — a script's run as ``⟦Devanagari ×6⟧``, a symbol or emoji as ``⟦U+1F389⟧`` — and
    what was replaced (scripts, then ``emoji / symbols``), in the order met. Marks and invisible format
    characters (a variation selector, a joiner) join the run before them. ×N counts code points, marks
    included (नमस्ते, 4 characters as read, is 6), as :func:`missing_glyphs_note` says under the figure.

    Example:
        >>> placeholder_missing("hi नमस्ते 🎉 שלום")
        ('hi ⟦Devanagari ×6⟧ ⟦U+1F389⟧ שלום', ['Devanagari', 'emoji / symbols'])
    """
    import unicodedata

    if all(_glyph_font(ch, font) is not None for ch in set(text) if not ch.isspace()):
        return text, []
    out: list[str] = []
    what: dict[str, None] = {}
    run: list[Any] = []  # [script or None, count or code points]

    def flush() -> None:
        if run:
            script, got = run
            out.append(f"⟦{script} ×{got}⟧" if script else f"⟦{' '.join(got)}⟧")
            run.clear()

    for ch in text:
        joins = unicodedata.category(ch) in ("Mn", "Mc", "Me", "Cf")
        # a joiner inside a run (the ZWJ of 👨‍👩‍👦, which DejaVu has) keeps the sequence one placeholder
        if ch.isspace() or (_glyph_font(ch, font) is not None and not (run and unicodedata.category(ch) == "Cf")):
            flush()
            out.append(ch)
            continue
        script = _script(ch)
        if run and unicodedata.category(ch)[0] == "P" and run[0] is not None and script in (None, run[0]):
            joins = True  # a punctuation no font has inside a script's run: that script's (QA: ።, ་)
        if run and (joins or run[0] == script):
            if run[0] is not None and (joins or script == run[0]):
                run[1] += 1
            elif run[0] is None and not joins:
                run[1].append(f"U+{ord(ch):04X}")
            continue
        flush()
        run[:] = [script, 1] if script else [None, [f"U+{ord(ch):04X}"]]
        what[script or "emoji / symbols"] = None
    flush()
    return "".join(out), list(what)


def _drawable(body: str, font: str | None) -> tuple[str, list[str]]:
    """A caption as a cell draws it: CJK runs as :func:`placeholder_cjk` without a CJK font, then every other
    character no font has as :func:`placeholder_missing` (never silent boxes), and what was replaced."""
    replaced = []
    if font is None and _CJK_RUN.search(body):
        body = placeholder_cjk(body)
        replaced.append("CJK")
    body, missing = placeholder_missing(body, font)
    return body, replaced + missing


def _fit_width(lines: list[str], points: float, font: str | None, most: int | None = None) -> list[str]:
    """``lines`` with each one wider than ``points`` broken at its spaces, a word wider than a line cut by
    its drawn width (QA: a 100,000-character word of ``W`` ran across the next columns and off the PNG);
    ``most``: stop past that many lines (a cell draws no more)."""
    out: list[str] = []
    for line in lines:
        if most is not None and len(out) > most:
            break
        if _text_width(line, font) <= points:
            out.append(line)
            continue
        cur, used = "", 0.0
        for unit in _fit_units(line, points, font):
            w = _text_width(unit, font)
            if unit.isspace():
                if cur:
                    cur, used = cur + unit, used + w
                continue
            if cur and used + w > points:
                out.append(cur.rstrip())
                cur, used = "", 0.0
            for ch in unit:
                a = _advance(ch, font)
                if cur and used + a > points:
                    out.append(cur.rstrip())
                    cur, used = "", 0.0
                    if most is not None and len(out) > most:
                        return out
                cur, used = cur + ch, used + a
        if cur.strip() or not out:
            out.append(cur.rstrip())
    return out


#: a placeholder (:func:`placeholder_missing`, :func:`placeholder_cjk`): one unit a line never breaks inside
_PLACEHOLDER = re.compile(r"⟦[^⟦⟧\n]*⟧")
_FIT_UNIT = re.compile(r"⟦[^⟦⟧\n]*⟧|[^\s⟦]+|⟦|\s+")


def _fit_units(line: str, points: float, font: str | None) -> list[str]:
    """The units a line breaks between: placeholders whole (QA: ``⟦U`` / ``+1F466⟧`` on two lines), words,
    spaces; a placeholder of code points wider than a line as one placeholder per code point."""
    out: list[str] = []
    for unit in _FIT_UNIT.findall(line):
        if unit.startswith("⟦") and len(unit) > 1 and _text_width(unit, font) > points:
            inner = unit[1:-1].split(" ")
            if all(u.startswith("U+") for u in inner):
                out += re.findall(r"\S+|\s+", " ".join(f"⟦{u}⟧" for u in inner))
                continue
        out.append(unit)
    return out


def _cut_to(text: str, points: float, font: str | None) -> str:
    """The longest start of ``text`` drawn within ``points``."""
    used = 0.0
    for i, ch in enumerate(text):
        used += _advance(ch, font)
        if used > points:
            return text[:i]
    return text


def _wrap(text: str, width: int, max_lines: int, font: str | None = None, points: float | None = None) -> str:
    """Wrap to ``width`` columns (CJK characters count double: they are about two Latin characters wide
    and have no spaces to break at), and to the width ``width`` Latin letters are drawn (a line of wide
    letters, ``WWW``, is broken sooner); at most ``max_lines`` per paragraph, so a long caption cannot run
    into the next row; a paragraph cut ends in ``…``, and keeps its length note (`` (100,000 chars)``).
    ``points``: the drawn width a line may take (default: ``width`` letters ``x``; a cell: :func:`_caption_points`)."""
    lines = []
    points = _line_points(width) if points is None else points
    for para in text.split("\n"):
        note = ""
        if (m := _LENGTH_NOTE.search(para)) is not None:
            para, note = para[: m.start()], m.group(1)
        if "⟦" in para:  # by drawn width, placeholders whole (textwrap broke them at their spaces and mid-token)
            wrapped = _fit_width([para], points, font, most=max_lines)
        elif _CJK_RUN.search(para):
            wrapped = _wrap_mixed(para, width)
        else:
            wrapped = textwrap.wrap(para, width) or [""]
        if any(_text_width(line, font) > points for line in wrapped[: max_lines + 1]):
            # lines of wide letters: the paragraph wrapped by drawn width (not line by line: ragged halves)
            wrapped = _fit_width([para], points, font, most=max_lines)
        if len(wrapped) > max_lines:
            tail = f" … {note}" if note else " …"
            last = _cut_to(wrapped[max_lines - 1][: width // 2], points - _text_width(tail, font), font)
            if last.rfind("⟦") > last.rfind("⟧"):  # not a placeholder's start
                last = last[: last.rfind("⟦")].rstrip()
            wrapped = [*wrapped[: max_lines - 1], last + tail]
        elif note:
            wrapped = _fit_width([*wrapped[:-1], f"{wrapped[-1]} {note}"], points, font)
        lines += _directed(para, wrapped)
    return "\n".join(lines)


#: Unicode's left-to-right / right-to-left marks (invisible, strong): a line's base direction
LRM, RLM = "\u200e", "\u200f"


def _directed(para: str, wrapped: list[str]) -> list[str]:
    """A paragraph's wrapped lines, each led by the mark of the paragraph's direction (its first strong
    character's, Unicode's rule P2) where it holds right-to-left letters: each line is laid out on its own, and
    a continuation line starting with Hebrew in a Latin paragraph was drawn right-to-left, its words out of
    order (QA38 OCR #10). Lines of a paragraph without right-to-left letters are returned as they are.

    Example:
        >>> [line[0] == LRM for line in _directed('Invoice 12 ש"ח ok', ["Invoice", '12 ש"ח ok'])]
        [True, True]
        >>> _directed("שלום world", ["שלום", "world"])[1] == RLM + "world"
        True
    """
    kinds = [unicodedata.bidirectional(ch) for ch in para]
    if not any(k in ("R", "AL") for k in kinds):
        return wrapped
    first = next((k for k in kinds if k in ("L", "R", "AL")), "L")
    mark = LRM if first == "L" else RLM
    return [mark + line for line in wrapped]


_UNIT = re.compile(f"[{CJK}{CJK_PUNCT}]|[^\\s{CJK}{CJK_PUNCT}]+|\\s+")


def _wrap_mixed(para: str, width: int) -> list[str]:
    """Lines of a paragraph with CJK in it: a CJK character may end a line anywhere (it counts two columns),
    other words only at a space (QA: Latin words beside CJK were cut mid-word, ``alpha n`` / ``aïve``); a
    word longer than a line is cut.

    Example:
        >>> _wrap_mixed("一张 naïve photo 照片很好看", 12)
        ['一张 naïve', 'photo 照片很', '好看']
    """
    lines: list[str] = []
    line, used = "", 0
    for unit in _UNIT.findall(para):
        if unit.isspace():
            if line:
                line, used = line + unit, used + len(unit)
            continue
        cost = 2 * len(unit) if _CJK_RUN.fullmatch(unit) else len(unit)
        if line and used + cost > width:
            lines.append(line.rstrip())
            line, used = "", 0
        while cost > width and not _CJK_RUN.fullmatch(unit):  # a word longer than a line
            lines.append(unit[:width])
            unit = unit[width:]
            cost = len(unit)
        line, used = line + unit, used + cost
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


#: the spectrogram's FFT window (samples): a clip of no more than this draws none, and its panel says so
SPEC_WINDOW = 128


def _samples(n: int) -> str:
    return f"{n:,} sample{'s' * (n != 1)}"


def _too_short(ax: Any, why: str) -> None:
    """A note in an audio panel whose clip is too short to draw there (QA: a 1-sample clip drew two empty boxes)."""
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=INFO_PT, color="dimgray", transform=ax.transAxes)


#: the spectrogram's log-frequency axis: its lowest frequency (Hz), its rows, the frequency resolution (Hz a
#: bin) its FFT window aims at (a longer window on a clip long enough), the most frames it computes
SPEC_FMIN, SPEC_ROWS, SPEC_RESOLUTION, SPEC_FRAMES = 30.0, 128, 25.0, 1200
#: the frequencies labelled on the spectrogram (Hz), where within its range: the decades, then (an ultrasonic
#: clip's: 250 kHz has no 100k inside the panel, QA38 bioacoustics #9) 20k / 50k where clear of the others
SPEC_TICKS = (100, 1000, 10000, 100000)
SPEC_FILL_TICKS = (20000, 50000)
#: the least distance between two frequency labels, in the panel's heights
SPEC_TICK_GAP = 0.1


def spec_ticks(lo: float, hi: float) -> list[tuple[int, float]]:
    """The frequencies labelled on a spectrogram from ``lo`` to ``hi`` Hz (log axis) and where (0-1 up the
    panel): :data:`SPEC_TICKS` clear of the panel's edges, then :data:`SPEC_FILL_TICKS` clear of those by
    :data:`SPEC_TICK_GAP`, so the top of a 384 kHz bat clip (to 192 kHz) is labelled too.

    Example:
        >>> [f for f, _ in spec_ticks(30.0, 24000.0)], [f for f, _ in spec_ticks(30.0, 192000.0)]
        ([100, 1000, 10000], [100, 1000, 10000, 100000])
        >>> [f for f, _ in spec_ticks(30.0, 125000.0)]
        [100, 1000, 10000, 50000]
    """
    span = math.log10(hi) - math.log10(lo)
    if not span > 0:
        return []

    def at(f: int) -> float:
        return (math.log10(f) - math.log10(lo)) / span

    # clear of the panel's edges (its kind label is on the left)
    out = [(f, at(f)) for f in SPEC_TICKS if 0.06 < at(f) < 0.94]
    for f in SPEC_FILL_TICKS:
        if 0.06 < at(f) < 0.94 and all(abs(at(f) - y) >= SPEC_TICK_GAP for _, y in out):
            out.append((f, at(f)))
    return sorted(out)


def log_spectrogram(wav: np.ndarray, rate: int) -> tuple[np.ndarray, float, float, int] | None:
    """``wav``'s power spectrogram in dB on a log-frequency axis: (rows x frames dB, lowest and highest
    frequency in Hz, FFT window); None when the clip is not longer than :data:`SPEC_WINDOW`. The window grows
    (powers of two from :data:`SPEC_WINDOW`) toward :data:`SPEC_RESOLUTION` Hz a bin while the clip holds four
    of it; each of :data:`SPEC_ROWS` rows, log-spaced from :data:`SPEC_FMIN` (or the lowest bin) to Nyquist,
    takes the loudest bin it spans, so a high partial is not lost between rows (QA36 mir #5: a linear axis to
    Nyquist drew 48 kHz music under 1 kHz as one bright row, a pitch shift invisible). Deterministic numpy.

    Example:
        >>> rate = 16000; t = np.arange(rate) / rate
        >>> db, lo, hi, nfft = log_spectrogram(np.sin(2 * np.pi * 440 * t), rate)
        >>> db.shape[0], nfft, hi, round(float(np.geomspace(lo, hi, db.shape[0])[db.mean(axis=1).argmax()]), -1)
        (128, 1024, 8000.0, 440.0)
    """
    n = len(wav)
    if n <= SPEC_WINDOW:
        return None
    nfft = SPEC_WINDOW
    while nfft < rate / SPEC_RESOLUTION and nfft * 8 <= n:
        nfft *= 2
    hop = max(nfft // 4, -(-(n - nfft) // SPEC_FRAMES))
    starts = np.arange(0, n - nfft + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wav, np.float64), nfft)[starts]
    power = np.abs(np.fft.rfft(frames * np.hanning(nfft), axis=1)).T ** 2  # bins x frames
    step = rate / nfft
    hi = rate / 2
    lo = max(step, min(SPEC_FMIN, hi / 10))  # a slow sensor's clip (100 Hz) keeps a decade
    edges = np.geomspace(lo, hi, SPEC_ROWS + 1) / step  # in bins
    first = np.clip(np.round(edges[:-1]).astype(np.int64), 0, power.shape[0] - 1)
    rows = np.maximum.reduceat(power, first, axis=0)  # a row over bins: their loudest; a row inside one bin: it
    rows /= (np.hanning(nfft).sum() / 2) ** 2  # dB relative to full scale: a sine of amplitude 1 peaks at 0 dB
    with np.errstate(divide="ignore"):  # silent (masked) spans have zero power
        return 10 * np.log10(np.maximum(rows, 1e-30)), float(lo), float(hi), nfft


#: a clip whose peak sample level is under this (dB relative to full scale) is drawn as silence and said
#: "silent" (QA37 podcast #9: scaled to its own maximum, digital silence drew in magma's top colour, as if loudest).
#: The clip's peak, not its loudest spectrogram bin: broadband noise at -110 dBFS RMS spreads over every bin
#: (each under -120 dB) but is sound, drawn on its own scale like a -110 dBFS sine (QA37 fix2 #5)
SILENT_DBFS = -120.0


def spectrogram(ax: Any, wav: np.ndarray, rate: int, top_db: float = 80.0) -> Any:
    """Draw ``wav``'s spectrogram on ``ax`` with log frequency (:func:`log_spectrogram`, as librosa's
    ``specshow(y_axis="log")``) and a few frequencies labelled inside its right edge, with colours over its
    loudest ``top_db`` decibels (librosa's ``top_db``): padded or masked spans sit near -180 dB and would
    otherwise stretch the scale and flatten the signal itself into one saturated colour. A clip whose peak
    sample level is under :data:`SILENT_DBFS` (digital silence: under a 16-bit clip's smallest step, about
    -90 dBFS; a 24-bit clip's step is about -138 dBFS, so one peaking under 8 of its steps is drawn as silence
    too) is drawn black and says "silent (peak under -120 dBFS)". The peak and the scale are over the finite
    samples and bins: a loud clip with a NaN sample is drawn as sound; one of NaN samples only is drawn black and
    says "all samples NaN".
    Returns the image (None when the clip is shorter than one FFT window)."""
    got = log_spectrogram(wav, rate)
    if got is None:
        return None
    db, lo, hi, _ = got
    finite = np.isfinite(db)
    top = float(db[finite].max()) if finite.any() else SILENT_DBFS  # a NaN sample's frames are NaN: not the top
    magnitude = np.abs(np.asarray(wav, np.float64))
    nan = bool(np.isnan(magnitude).all())
    # the finite samples' peak (one NaN made it NaN, and a loud clip "silent": QA37 third review); +inf is loud
    peak = 0.0 if nan else float(np.nanmax(magnitude))
    silent = not peak > 10 ** (SILENT_DBFS / 20)
    if silent:  # the scale's top at the floor: every bin under it, drawn in the colour of silence
        top = SILENT_DBFS
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", interpolation="nearest", vmin=top - top_db, vmax=top,
                   extent=(0, len(wav) / rate, math.log10(lo), math.log10(hi)))
    for f, y in [] if silent else spec_ticks(lo, hi):  # no frequency to point at in silence (the labels ran into "silent")
        # a text, not a tick line: an axes' lines are its waveform's
        ax.text(0.995, y, f"{f // 1000}k –" if f >= 1000 else f"{f} –", ha="right", va="center",
                fontsize=INFO_PT - 2, color="white", transform=ax.transAxes)
    if silent:
        said = "all samples NaN" if nan else f"silent (peak under {SILENT_DBFS:g} dBFS)"
        ax.text(0.5, 0.35, said, ha="center", va="center", fontsize=INFO_PT, color="white", transform=ax.transAxes)
    return im


#: the waveform's first and second channel (a stereo clip's left and right)
WAVE_COLOURS = ("tab:blue", "tab:orange")
#: labels drawn over a waveform: dark text on a pale box, readable over the trace
TEXT_ON_WAVE = "#333333"
LABEL_BOX = {"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 0.8}


def spectrogram_signal(chans: np.ndarray) -> np.ndarray:
    """The one signal a clip's spectrogram is drawn from: its channels' mean, unless they cancel in it (less
    than a quarter of their mean power: anti-phase stereo, QA26), then the loudest channel.

    Example:
        >>> x = np.sin(np.arange(8.0))
        >>> bool(np.allclose(spectrogram_signal(np.stack([x, -x])), x)), spectrogram_signal(np.stack([x, x])).shape
        (True, (8,))
    """
    mono = chans.mean(axis=0)
    power = (chans.astype(np.float64) ** 2).mean(axis=1)
    if chans.shape[0] > 1 and float((mono.astype(np.float64) ** 2).mean()) < 0.25 * float(power.mean()):
        return chans[int(np.argmax(power))]
    return mono


def wave_scale(ax: Any, peak: float) -> None:
    """The waveform's vertical scale: ±1 (full scale); a clip past full scale (a float WAV, a gain) gets room
    for its peak, red dashed lines at ±1 and its peak written (QA26: ±1 drew 1.7x full scale as full scale)."""
    if not math.isfinite(peak) or peak <= 1.0:
        ax.set_ylim(-1, 1)
        return
    lim = peak * 1.05
    ax.set_ylim(-lim, lim)
    for y in (-1.0, 1.0):
        ax.axhline(y, color="firebrick", lw=0.6, linestyle=(0, (3, 2)))
    ax.text(0.99, 0.97, f"peak {peak:.2g}x full scale", ha="right", va="top", fontsize=INFO_PT, color="firebrick",
            transform=ax.transAxes, bbox=LABEL_BOX)


def clip_text(seconds: float, rate: int, channels: int) -> str:
    """The line under a waveform: its length, rate and channels (QA26: with no axes, clips of 0.3 s and 1 s
    looked alike). The channels' colours are said once per figure (:data:`WAVE_NOTE`): in each cell the
    legend ran over the next cell, whose line then read "13.93 s" for 3.93 s (QA42 segments #3).

    Example:
        >>> clip_text(0.3, 16000, 1), clip_text(600, 44100, 2)
        ('0.3 s · 16 kHz · mono', '600 s · 44.1 kHz · 2 ch')
    """
    return f"{seconds:.3g} s · {rate / 1000:g} kHz · {'mono' if channels == 1 else f'{channels} ch'}"


#: the figure's note on the waveforms' colours, when a cell draws a clip of several channels
WAVE_NOTE = "waveforms: blue the 1st channel, orange the others (a stereo clip's 2nd)"


def _channels(s: Sample) -> int:
    """The channels of ``s``'s audio (0: none)."""
    audio = s.get("audio")
    if audio is None or not hasattr(audio, "shape") or len(audio.shape) < 1:
        return 0
    return int(np.prod(audio.shape[:-1], dtype=np.int64)) if len(audio.shape) > 1 else 1


def _first_plane(x: Any) -> np.ndarray:
    """The first (H, W) plane of a (..., H, W) tensor or array, as numpy."""
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    return arr.reshape(-1, *arr.shape[-2:])[0]


def logmel_image(ax: Any, spec: Any) -> Any:
    """Draw a sample's ``spec`` (log-mel, (C, n_mels, frames); channel 0) with low mels at the bottom, so a
    ``freq_mask`` / ``time_mask`` on it shows as the band it blanked. Returns the image."""
    arr = _first_plane(spec).astype(np.float32)
    return ax.imshow(arr, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")


#: what a spectrogram panel says it draws: a column whose sample has the recipe's ``spec`` draws that log-mel,
#: the others (the original, the normalized sample, variants without ``logmel``) the waveform's STFT — unlike
#: in scale and colours, so each panel names its kind (QA29: unlabelled, unchanged audio looked changed)
LOGMEL_KIND = "log-mel (recipe)"
STFT_KIND = "STFT (log Hz)"


def spectrum_kind(ax: Any, kind: str, span: str = "") -> None:
    """Name the kind of spectrogram ``ax`` draws (:data:`LOGMEL_KIND` or :data:`STFT_KIND`) in its top left
    corner, with the span of a long clip it covers on a second line (one label: side by side, the two
    overprinted each other in a 4-column figure, review r3 of QA29)."""
    ax.text(0.01, 0.97, f"{kind}\n{span}" if span else kind, ha="left", va="top", fontsize=INFO_PT, color="white",
            transform=ax.transAxes)


KEY_CHARS = 22  # a sample key cut by :func:`_fit` (titles are now fitted to their width: :func:`_fit_points`)


def missing_glyphs_note(what: list[str]) -> str:
    """The figure's (and stderr's) note on characters no caption font has (:func:`placeholder_missing`).

    Example:
        >>> for part in missing_glyphs_note(["Devanagari", "emoji / symbols"]).split("; "):
        ...     print(part)
        ⟦…⟧: Devanagari, emoji / symbols not drawn — no font the preview draws with has them (placeholders, not boxes
        ×N: N code points, marks included)
    """
    # ×N is no count of characters as read (नमस्ते is ×6 for 4): said, as users read ×6 as six (QA33 multilingual #12)
    return (f"⟦…⟧: {', '.join(what)} not drawn — no font the preview draws with has them (placeholders, not boxes; "
            "×N: N code points, marks included)")


def figure_text_style(texts: Iterable[str], what: str = "figure",
                      find_font: Any = None) -> tuple[dict[str, Any], Any, str | None]:
    """How a figure other than the preview (``mmdata match``'s PNG, an ablation report's plots) draws ``texts``
    (class names, arm names, titles) as the preview draws its captions: matplotlib settings adding the CJK font
    :func:`cjk_font` finds, the function that makes a text drawable (:func:`_drawable`: CJK runs as ``⟦CJK ×N⟧``
    without a CJK font, any other character no font has as ``⟦Devanagari ×6⟧`` / ``⟦U+1F469⟧``), and the
    footnote naming what was replaced — also warned (``UserWarning``, ``what: ...``). Never silent empty boxes
    (QA28 i18n #6: Devanagari, Thai and emoji class names were tofu in match's PNG). ASCII texts leave the
    figure as it was. ``find_font``: what finds the CJK font (default :func:`cjk_font`).

    Example:
        >>> rc, shown, note = figure_text_style(["zero", "one"])
        >>> rc, shown("zero"), note
        ({}, 'zero', None)
    """
    texts = [str(t) for t in texts]
    if all(t.isascii() for t in texts):
        return {}, str, None
    font = (find_font or cjk_font)()  # its Hangul too (not a CJK run): DejaVu Sans first, the CJK font for what it lacks
    rc = {"font.family": ["DejaVu Sans", font]} if font else {}
    replaced = list(dict.fromkeys(w for t in texts for w in _drawable(t, font)[1]))
    if not replaced:
        return rc, str, None
    notes = []
    if "CJK" in replaced:
        notes.append(f"⟦CJK ×N⟧: N Chinese / Japanese / Korean characters not drawn — no CJK font found; {INSTALL_HINT}")
    missing = [w for w in replaced if w != "CJK"]
    if missing:
        notes.append(missing_glyphs_note(missing))
    note = "; ".join(notes)
    warnings.warn(f"{what}: {note}", UserWarning, stacklevel=2)
    return rc, (lambda t: _drawable(str(t), font)[0]), note


def _fit(key: str, width: int = KEY_CHARS) -> str:
    """``key`` shortened in the middle to ``width`` characters (its start and end stay readable).

    Example:
        >>> _fit("extra_IMG_1007_78211516_holiday_photo")
        'extra_IMG_…liday_photo'
    """
    if len(key) <= width:
        return key
    head = (width - 1) // 2
    return f"{key[:head]}…{key[len(key) - (width - 1 - head):]}"


#: the column titles' font size (points)
TITLE_PT = 8.0
#: the least space (points) between a row's first title and the next column's title
TITLE_GAP = 12.0
#: a source key's separators (a folder's ``/``, spaces): a key that keeps every other character of its source
#: key in order (``Batch_B_0034_dfd1a618`` for ``Batch_B/0034``) names it already
_SEPARATORS = re.compile(r"[\s/\\_.\-]+")


def _title_width(text: str, font: str | None = None) -> float:
    """How wide ``text`` is drawn as a column title (points)."""
    return _text_width(text, font) * TITLE_PT / CAPTION_PT


def _fit_points(text: str, points: float, font: str | None = None) -> str:
    """``text`` whole when it is drawn within ``points`` as a title, else cut in the middle (``…``) to fit:
    its start and its end (a key's hash suffix) stay readable.

    Example:
        >>> _fit_points("batch_A_2023-05_img_12_a9d1885a", 1000.0)
        'batch_A_2023-05_img_12_a9d1885a'
        >>> _fit_points("batch_A_2023-05_img_12_a9d1885a", 90.0)
        'batch_A_…_a9d1885a'
    """
    if _title_width(text, font) <= points:
        return text
    for keep in range(len(text) - 1, 1, -1):  # the most characters that fit, the end's half rounded up (a hash)
        head = keep // 2
        cut = f"{text[:head]}…{text[len(text) - (keep - head):]}"
        if _title_width(cut, font) <= points:
            return cut
    return f"{text[:1]}…{text[-1:]}"


def shows_source(key: str, source: str | None) -> bool:
    """Whether a row names ``source`` (what the sample was sharded from) beside its ``key``: when the key
    does not keep the source key's characters (``Batch_B__18_5934f799`` for ``Batch_B/样本_18``).

    Example:
        >>> shows_source("Batch_B_0034_dfd1a618", "Batch_B/0034"), shows_source("Batch_B__18_5934f799", "Batch_B/样本_18")
        (False, True)
    """
    if not source or source == key:
        return False
    return not _SEPARATORS.sub("_", key).startswith(_SEPARATORS.sub("_", source).strip("_"))


def _row_title(key: str, source: str | None, points: float, font: str | None) -> str:
    """The first column's title of a row: ``KEY (original)`` when that fits in ``points``; else the key on its
    own line (cut in the middle only where it does not fit there either) over ``(original)``; and the
    source key before ``(original)`` when the key does not show it (:func:`shows_source`)."""
    one = f"{key} (original)"
    if not shows_source(key, source) and _title_width(one, font) <= points:
        return one
    second = "(original)"
    if shows_source(key, source):
        room = points - _title_width(f"from  {second}", font)
        second = f"from {_fit_points(_drawable(source or '', font)[0], room, font)} {second}"
    return f"{_fit_points(key, points, font)}\n{second}"


def _title_points(columns: list[tuple[str, Any]]) -> float:
    """The width (points) a row's first title may take: centred over its cell, up to :data:`TITLE_GAP` short
    of the next column's title (a grid of one column: the cell and the gaps beside it)."""
    pitch = (_caption_points(len(columns)) + CAPTION_GAP)  # from a cell's left edge to the next cell's
    nxt = _title_width(columns[1][0]) / 2 if len(columns) > 1 else 0.0
    return 2 * (pitch - nxt - TITLE_GAP)


#: distinct target values a preview's legend names one by one (more: the first ones and "+N more")
LEGEND_VALUES = 8
#: up to this many distinct values a target is drawn as labels (a colour each); more: a colour scale
LABEL_COLOURS = 20
OVERLAY_ALPHA = 0.45


def target_values(maps: Iterable[Any]) -> np.ndarray:
    """The sorted distinct non-zero values of the maps' first planes: what :func:`overlay` draws of them
    (NaN and infinities are a float map's nodata: :func:`overlay` draws them :data:`NODATA_COLOUR`; as
    ``np.unique`` sorts, -inf comes first, +inf after the finite values, NaN last).

    Example:
        >>> target_values([np.array([[0, 3], [1, 3]]), np.array([[255]])]).tolist()
        [1.0, 3.0, 255.0]
    """
    planes = [_first_plane(m).astype(np.float64).ravel() for m in maps]
    values = np.unique(np.concatenate(planes)) if planes else np.zeros(0)
    return values[values != 0]


#: the colour of a target's fill (VOC's 255) on a colour scale: apart from the scale's values
FILL_COLOUR = (0.55, 0.55, 0.55, 1.0)
#: the colour of a float target's NaN / infinite pixels (a DEM's nodata): in neither the palette nor viridis
NODATA_COLOUR = (1.0, 0.0, 1.0, 1.0)


def _nodata_name(values: np.ndarray) -> str | None:
    """The legend's name of ``values``' non-finite ones (a float map's nodata), None when all are finite."""
    bad = values[~np.isfinite(values)]
    if not len(bad):
        return None
    kinds = [name for name, there in (("NaN", np.isnan(bad).any()), ("-inf", (bad == -np.inf).any()),
                                      ("inf", (bad == np.inf).any())) if there]
    return " / ".join(kinds) + " (nodata)"

#: label colours by rank: Okabe–Ito's seven (colour-blind safe, alternating dark and light) first, then
#: thirteen more hues; neighbouring ranks never share a hue (matplotlib's tab20, used before, pairs a dark
#: and a light shade of one hue: the first two classes of a map were two blues) — QA25 C-3
LABEL_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#F0E442", "#CC79A7", "#56B4E9", "#E69F00", "#8C564B",
                 "#17BECF", "#BCBD22", "#9467BD", "#7F7F7F", "#E377C2", "#2CA02C", "#1F3A93", "#FF9896",
                 "#C5B0D5", "#98DF8A", "#C49C94", "#DBDB8D")


def _label_colours() -> Any:
    from matplotlib.colors import ListedColormap

    return ListedColormap(LABEL_PALETTE, name="mmdata_labels")


def _scale(values: np.ndarray, fill: float = 0) -> tuple[Any, float, float, bool]:
    """(colour map, vmin, vmax, coloured by rank) for a target's sorted distinct non-zero ``values``: up
    to :data:`LABEL_COLOURS` labels coloured by their rank in :data:`LABEL_PALETTE` (ids 1 and 255 both
    show), else a scale over the values but the fill (ADE20K's 150 classes and a 255 border: the scale
    spans 1..150). NaN and infinities (a float map's nodata) are on no scale: the finite values make it (QA37 geo
    #6: one NaN made every tick of a DEM's scale "nan" and its overlay one colour)."""
    from matplotlib import colormaps

    values = values[np.isfinite(values)]
    if len(values) <= LABEL_COLOURS:
        return _label_colours(), 0.0, float(LABEL_COLOURS - 1), True
    span = values[values != fill] if fill != 0 and (values != fill).any() else values
    return colormaps["viridis"], float(span[0]), float(span[-1]), False


def overlay(ax: Any, target: Any, values: Any = None, fill: float = 0) -> None:
    """Draw a per-pixel target (its first channel) over the image in ``ax``: 0 transparent, other values in
    colours (:data:`LABEL_PALETTE` for up to 20 labels, else viridis over the value range), at 45% opacity — where the map
    lies on the image shows whether the two line up. ``values``: the distinct values of every map the
    figure draws (:func:`target_values`), so a value has one colour in every cell (default: this map's);
    on a colour scale the target's ``fill`` is drawn grey (:data:`FILL_COLOUR`), NaN / infinite pixels (a float
    map's nodata) :data:`NODATA_COLOUR`."""
    arr = _first_plane(target).astype(np.float64)
    if not (arr != 0).any():
        return
    values = target_values([arr]) if values is None else np.asarray(values, np.float64)
    cmap, vmin, vmax, by_rank = _scale(values, fill)
    nodata = ~np.isfinite(arr)
    shown = np.searchsorted(values[np.isfinite(values)], arr) if by_rank else arr
    apart = not by_rank and fill != 0 and vmax != fill
    ax.imshow(np.ma.masked_where((arr == 0) | nodata | ((arr == fill) & apart), shown), cmap=cmap,
              alpha=OVERLAY_ALPHA, vmin=vmin, vmax=vmax, interpolation="nearest")
    if (apart and (arr == fill).any()) or nodata.any():
        grey = np.zeros((*arr.shape, 4))
        if apart:
            grey[arr == fill] = FILL_COLOUR
        grey[nodata] = NODATA_COLOUR
        ax.imshow(grey, alpha=OVERLAY_ALPHA, interpolation="nearest")


def target_legend(field: str, values: Any, fill: float = 0,
                  cap: int = LEGEND_VALUES) -> tuple[str, list[tuple[str, tuple[float, ...] | None]]]:
    """The legend of :func:`overlay`'s colours for the target ``field`` whose maps hold ``values``
    (:func:`target_values`): a title, and (label, RGBA colour) entries — each value up to ``cap`` (the
    first ones, then ``+N more`` without a colour), the target's ``fill`` always, named ``fill / ignore``
    (VOC's 255); a map of more than :data:`LABEL_COLOURS` values gets its scale: min, quarters, max.

    Example:
        >>> title, entries = target_legend("seg.png", np.array([1.0, 2.0, 255.0]), fill=255)
        >>> title, [label for label, _ in entries]
        ('target seg.png (0 not drawn)', ['1', '2', '255 (fill / ignore)'])
    """
    from matplotlib.colors import Normalize

    values = np.asarray(values, np.float64)
    colour_of, vmin, vmax, by_rank = _scale(values, fill)
    norm = Normalize(vmin, vmax)
    nodata = _nodata_name(values)  # said last, in its own colour; the rest as if the map had none
    values = values[np.isfinite(values)]
    tail: list[tuple[str, tuple[float, ...] | None]] = [(nodata, NODATA_COLOUR)] if nodata else []

    def colour(v: float) -> tuple[float, ...]:
        x = float(np.searchsorted(values, v)) if by_rank else v
        return tuple(float(c) for c in colour_of(norm(x)))

    def number(v: float) -> str:  # 11252, not 1.125e+04; 0.5 and 20.38 as they are
        return f"{v:.0f}" if float(v).is_integer() or 1e3 <= abs(v) < 1e15 else f"{v:.4g}"

    def name(v: float) -> str:
        return number(v) + (" (fill / ignore)" if v == fill else "")

    zero = "0 = fill, not drawn" if fill == 0 else "0 not drawn"
    if not by_rank:
        title = f"target {field} ({len(values)} values: colour scale; {zero})"
        ticks = np.linspace(vmin, vmax, 5)
        if all(float(v).is_integer() for v in values):  # class ids: ticks on ids, not 37.25
            ticks = np.unique(np.round(ticks))
        entries = [(number(v), colour(v)) for v in ticks]
        if fill != 0 and fill in values:
            entries.append((name(fill), FILL_COLOUR if vmax != fill else colour(fill)))
        return title, entries + tail
    listed = [v for v in values if v != fill]
    entries: list[tuple[str, tuple[float, ...] | None]]
    if len(values) > cap:
        entries = [(name(v), colour(v)) for v in listed[: cap - 1]] + [(f"+{len(listed) - (cap - 1)} more", None)]
    else:
        entries = [(name(v), colour(v)) for v in listed]
    if fill != 0 and fill in values:
        entries.append((name(fill), colour(fill)))
    return f"target {field} ({zero})", entries + tail


def _draw_legend(fig: Any, title: str, entries: list[tuple[str, tuple[float, ...] | None]], y: float) -> Any:
    """The target legend in one row (two when long) centred under the figure's title, top at ``y``."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, edgecolor="dimgray", linewidth=0.5) if c is not None else
               Patch(facecolor="none", edgecolor="none") for _, c in entries]
    return fig.legend(handles, [label for label, _ in entries], title=title, loc="upper center", bbox_to_anchor=(0.5, y),
                      ncol=min(len(entries), 6), fontsize=7, title_fontsize=7, frameon=False, handlelength=1.2,
                      handleheight=1.0, columnspacing=1.2, borderaxespad=0.0)


def _reduce(img: Any, k: int) -> Any:
    """A (C, H, W) uint8 image box-averaged over k x k blocks (Pillow's ``reduce``: ceil(H / k) x ceil(W / k));
    other dtypes every k-th pixel."""
    import torch
    from PIL import Image

    if img.dtype != torch.uint8:
        return img[..., ::k, ::k]
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(c)).reduce(k)) for c in img.numpy()]
    return torch.from_numpy(np.stack(planes))


#: the PNG's resolution (:func:`preview` saves at it; a cell's image is shrunk to its pixels there)
PREVIEW_DPI = 110


def _drawn_pixels(fig: Any, ax: Any, h: int, w: int) -> tuple[int, int]:
    """The pixels (height, width) an ``h`` x ``w`` image takes in ``ax`` at :data:`PREVIEW_DPI` (equal aspect)."""
    box = ax.get_position()
    fw, fh = fig.get_size_inches()
    scale = min(box.width * fw * PREVIEW_DPI / w, box.height * fh * PREVIEW_DPI / h)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _fit_pixels(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (H x W grey or H x W x 3 uint8) shrunk to ``size`` (height, width) with an antialiasing filter
    (Pillow's LANCZOS) where that is smaller; as it is otherwise (an enlarged image is drawn nearest).

    Example:
        >>> stripes = np.tile(np.array([[0], [255]], np.uint8), (200, 400))  # one-pixel lines
        >>> small = _fit_pixels(stripes, (100, 200))
        >>> small.shape, 100 < float(small.mean()) < 155, float(small.std()) < 20
        ((100, 200), True, True)
    """
    from PIL import Image

    h, w = img.shape[:2]
    if size[0] >= h and size[1] >= w:
        return img
    if img.dtype == np.uint8:
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size[1], size[0]), Image.Resampling.LANCZOS))
    # 16-bit, float or bool pixels (Pillow has no mode for 3 such planes): each plane as 32-bit float, back to the dtype
    planes = img.reshape(h, w, -1).astype(np.float32)

    def shrink(plane: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(plane), "F").resize((size[1], size[0]),
                                                                                    Image.Resampling.LANCZOS))

    bad = ~np.isfinite(planes)
    if bad.any():  # NaN / inf: shrunk as 0 with the share of valid weight, re-masked where none was (QA38 review 4 #5:
        # one NaN spread over its filter's footprint, 0.1% NaN made 97% of the cell NaN)
        planes = np.where(bad, np.float32(0), planes)
    out = np.stack([shrink(planes[..., c]) for c in range(planes.shape[-1])], axis=-1)
    if bad.any():
        valid = np.stack([shrink((~bad[..., c]).astype(np.float32)) for c in range(planes.shape[-1])], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(valid > 0.5, out / np.where(valid > 0.5, valid, 1), np.nan).astype(np.float32)
    if np.issubdtype(img.dtype, np.integer) or img.dtype == bool:
        lo, hi = (0, 1) if img.dtype == bool else (np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
        out = np.clip(np.rint(out), lo, hi)
    return out.astype(img.dtype).reshape(size[0], size[1], *img.shape[2:])


def drawn_sample(s: Sample) -> tuple[Sample, set[str]]:
    """``s`` as the preview draws it, and what was shrunk (``"image"``, ``"audio"``): an image over
    :data:`PREVIEW_IMAGE_SIDE` downscaled by a whole factor (box average; fields of its size, target maps,
    every k-th pixel), audio over :data:`PREVIEW_SECONDS` cut to that, with the whole clip's min / max
    envelope in ``meta["preview_envelope"]`` (``(t, lo, hi, seconds)``; ``lo`` / ``hi``: channels x points, one
    row when the channels are identical). Other samples are returned as they are.

    Example:
        >>> import torch
        >>> d, what = drawn_sample(Sample("a", {"image": torch.zeros(3, 2000, 1000, dtype=torch.uint8)}))
        >>> tuple(d["image"].shape), what
        ((3, 500, 250), {'image'})
    """
    fields, meta, what = dict(s.fields), dict(s.meta), set()
    img = fields.get("image")
    if img is not None and hasattr(img, "shape") and img.ndim == 3 and max(img.shape[-2:]) > PREVIEW_IMAGE_SIDE:
        hw = tuple(img.shape[-2:])
        k = -(-max(hw) // PREVIEW_IMAGE_SIDE)
        fields["image"] = _reduce(img, k)
        for name, v in s.fields.items():
            if name != "image" and hasattr(v, "shape") and getattr(v, "ndim", 0) >= 2 and tuple(v.shape[-2:]) == hw:
                fields[name] = v[..., ::k, ::k]
        what.add("image")
    wav = fields.get("audio")
    rate = s.sample_rate or 1
    if wav is not None and hasattr(wav, "shape") and wav.shape[-1] > PREVIEW_SECONDS * rate:
        chans = wav.numpy().reshape(-1, wav.shape[-1])  # every channel's extremes (QA26: anti-phase stereo's mean is 0)
        n = chans.shape[-1]
        step = -(-n // ENVELOPE_POINTS)
        padded = np.pad(chans, ((0, 0), (0, step * ENVELOPE_POINTS - n)), mode="edge").reshape(len(chans), ENVELOPE_POINTS, step)
        t = (np.arange(ENVELOPE_POINTS) + 0.5) * step / rate
        # one envelope per channel (QA37 podcast #4: folded into one, a host on the left and a guest on the right
        # drew one blue band); channels identical throughout (mono stored as stereo): one row, said "identical"
        if len(chans) > 1 and all(np.array_equal(chans[0], ch) for ch in chans[1:]):
            padded = padded[:1]
        meta["preview_envelope"] = (t, padded.min(axis=2), padded.max(axis=2), n / rate)
        fields["audio"] = wav[..., :int(PREVIEW_SECONDS * rate)]
        what.add("audio")
    if not what:
        return s, what
    return Sample(s.key, fields, s.sample_rate, meta), what


def _drawn_map(s: Sample, target: str | None) -> Any:
    """The sample's ``target`` map where the preview draws it (its image there, of the same size), else None."""
    if target is None or "image" not in s or s.get(target) is None:
        return None
    m = s[target]
    return m if tuple(m.shape[-2:]) == tuple(s["image"].shape[-2:]) else None


#: the slot of a signal field (``signal:array``: a 1-D / 2-D array plotted as a line; :func:`signal_field`)
SIGNAL = "signal:"


def signal_field(samples: Iterable[Sample], drawn: Iterable[str] = ()) -> str | None:
    """The first field of ``samples`` besides the drawn ones (and ``drawn``: the targets) that holds a numeric 1-D
    or 2-D array of at least two values, not a map of its image's size: a time series (ECG, IMU) the grid plots,
    its first channel as a line (QA36 timeseries #8)."""
    skip = _DRAWN_FIELDS | set(drawn)
    for s in samples:
        img = s.get("image")
        for name, v in s.fields.items():
            if name in skip or not hasattr(v, "shape") or len(v.shape) not in (1, 2):
                continue
            if img is not None and hasattr(img, "shape") and tuple(v.shape) == tuple(img.shape[-2:]):
                continue  # a per-pixel map the recipe does not name: no signal
            kind = str(getattr(v, "dtype", "")).removeprefix("torch.")
            if max(v.shape) >= 2 and kind[:3] in ("int", "flo", "uin", "com"):  # complex: I and Q (QA38 RF #4)
                return name
    return None


def first_channel(x: Any) -> np.ndarray:
    """A 1-D / 2-D array's first channel, its longer axis taken as time ((T, C) or (C, T) alike).

    Example:
        >>> first_channel(np.arange(6).reshape(3, 2)).tolist(), first_channel(np.arange(6).reshape(2, 3)).tolist()
        ([0, 2, 4], [0, 1, 2])
    """
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if arr.ndim == 1:
        return arr
    return arr[:, 0] if arr.shape[0] >= arr.shape[1] else arr[0]


#: image targets (a clip's other frames) drawn right of a cell's image, at most
STRIP_IMAGES = 3


def _rgb(x: Any) -> np.ndarray:
    """A (C, H, W) image (tensor or array; L, LA, RGB, RGBA) as (H, W, 3) uint8-range values, alpha not drawn."""
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    arr = arr.reshape(-1, *arr.shape[-2:]) if arr.ndim != 3 else arr
    arr = np.repeat(arr[:1], 3, axis=0) if arr.shape[0] < 3 else arr[:3]
    return arr.transpose(1, 2, 0)


#: the level of the block drawn for an image target the sample lacks (:func:`image_strip`), under its label
MISSING_LEVEL = 245


def image_strip(s: Sample, names: Sequence[str]) -> np.ndarray:
    """``s``'s image and its image targets ``names`` (a clip's other frames, a product's views) side by side,
    (H, W, 3), apart by a white gap: each frame as the recipe left it (the same flip, crop and colours as the
    image: QA36 video #5 found them neither drawn nor named). A frame the sample lacks is a near-white block
    (:data:`MISSING_LEVEL`) of the image's size, which the grid frames and labels ``no <field>``
    (:func:`strip_spans`; QA40: a flat grey block read as a grey product shot); frames of another height are
    drawn top-aligned on white.

    Example:
        >>> import torch
        >>> s = Sample("k", {"image": torch.zeros(3, 4, 6, dtype=torch.uint8), "f.png": torch.ones(1, 4, 6, dtype=torch.uint8)})
        >>> image_strip(s, ["f.png"]).shape, int(image_strip(s, ["f.png"])[0, -1, 0])
        ((4, 13, 3), 1)
    """
    pieces = [_rgb(s["image"])]
    for name in names:
        pieces.append(_rgb(s[name]) if _strip_present(s, name) else np.full_like(pieces[0], MISSING_LEVEL))
    h = max(p.shape[0] for p in pieces)
    gap = np.full((h, max(1, pieces[0].shape[1] // 16), 3), 255, dtype=np.float64)
    cols = []
    for p in pieces:
        if cols:
            cols.append(gap)
        cols.append(np.pad(p.astype(np.float64), ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(cols, axis=1).clip(0, 255).astype(np.uint8)


def _strip_present(s: Sample, name: str) -> bool:
    v = s.get(name)
    return v is not None and hasattr(v, "shape") and len(v.shape) in (2, 3)


def strip_spans(s: Sample, names: Sequence[str]) -> list[tuple[str, int, int, int, bool]]:
    """Where each of ``names`` sits in :func:`image_strip`'s picture of ``s``: ``(name, x0, x1, height, present)``
    in its pixel columns (``x1`` exclusive) — what the grid labels a missing one by.

    Example:
        >>> import torch
        >>> s = Sample("k", {"image": torch.zeros(3, 4, 16, dtype=torch.uint8)})
        >>> strip_spans(s, ["back.jpg"])
        [('back.jpg', 17, 33, 4, False)]
    """
    width = int(s["image"].shape[-1])
    gap = max(1, width // 16)
    x, out = width, []
    for name in names:
        present = _strip_present(s, name)
        v = s.get(name)
        w = int(v.shape[-1]) if present else width
        h = int(v.shape[-2]) if present else int(s["image"].shape[-2])
        out.append((name, x + gap, x + gap + w, h, present))
        x += gap + w
    return out


def _label_missing(ax: Any, s: Sample, strip: Sequence[str]) -> None:
    """Frame each image target ``s`` lacks in its strip with grey dots and label it ``no <field>``, as a cell's
    missing modality is (``no audio``)."""
    from matplotlib.patches import Rectangle

    for name, x0, x1, h, present in strip_spans(s, strip):
        if present:
            continue
        ax.add_patch(Rectangle((x0 - 0.5, -0.5), x1 - x0, h, fill=False, lw=0.8, linestyle=(0, (1, 2)),
                               edgecolor="darkgray", clip_on=False))
        ax.text((x0 + x1 - 1) / 2, (h - 1) / 2, f"no\n{name}", ha="center", va="center", fontsize=INFO_PT,
                color="dimgray", clip_on=True)


#: the modalities a cell has a panel for, in the order they are stacked
MODALITIES = ("image", "audio", "text")
#: a cell's panels in inches (a cell is 2.1 inches wide): the image, the waveform (room for its 8-point note),
#: the spectrogram; a text line
IMAGE_IN, WAVE_IN, SPEC_IN, LINE_IN = 0.9, 0.38, 0.45, CAPTION_LEADING * CAPTION_PT / 72
#: inches between a cell's panels, and between two rows (room for the next row's titles)
PANEL_GAP, ROW_GAP = 0.07, 0.32
#: inches a second line of a row's first title takes (its source key, or its key on a line of its own)
TITLE_LINE_IN = 0.14
#: the most lines a paragraph of a caption takes under media, and in a cell of text only
CAPTION_LINES, TEXT_ONLY_LINES = 4, 12
CHARS = 28  # a caption's columns (a cell is 2.1 inches wide; DejaVu Sans at 8 points)
#: the most caption units a cell draws: its longest caption is TEXT_ONLY_LINES lines of CHARS columns, and a
#: unit takes two columns at least (one and a space; a CJK line holds CHARS // 2 characters)
DRAWN_UNITS = TEXT_ONLY_LINES * CHARS // 2
#: the most characters a cell draws (TEXT_ONLY_LINES lines of CHARS): a longer text's caption notes its length
DRAWN_CHARS = TEXT_ONLY_LINES * CHARS
#: captions of up to this many units are diffed whole; longer ones over their first DIFF_UNITS units
#: (:func:`mark_changes`): twice what is drawn, so where the two cuts fail to line up is never drawn
DIFF_UNITS = 2 * DRAWN_UNITS
#: ends a caption cut after DRAWN_UNITS units (ASCII: a "…" would count as CJK punctuation, wrapping the
#: caption per character and, without a CJK font, turning it into a placeholder)
CUT_MARK = "..."

#: the text key: what each mark a caption can show means (mark as drawn, its meaning), in the key's order
TEXT_KEY = {
    "changed": ("text", "red: differs from the original"),
    "removed": ("[-w-]", "w deleted or replaced"),
    "new": ("⟨w⟩", "w inserted, or the replacement"),
    "masked": ("[-w-] ⟨[MASK]⟩", "w masked"),
    "moved": ("⟨w⟩ … [-w-]", "w moved (swapped)"),
    "dropped": ("dropped: m", "the recipe dropped modality m"),
}


def text_marks(before: str, after: str) -> set[str]:
    """The marks :func:`mark_changes` draws for ``before`` -> ``after``, as :data:`TEXT_KEY` names them:
    ``"masked"`` (a token replaced by ``[MASK]``), ``"moved"`` (a token deleted in one place and inserted
    in another, as ``word_swap`` does), ``"removed"`` / ``"new"`` for the other deleted / inserted tokens.

    Example:
        >>> sorted(text_marks("a red box on the left", "a [MASK] box on the right"))
        ['masked', 'new', 'removed']
        >>> sorted(text_marks("a small thing", "a thing small"))
        ['moved']
        >>> sorted(text_marks("a small thing number 0", "a thing small [MASK] 0"))
        ['masked', 'moved']
    """
    return _diff(before, after)[1]


def grid_modalities(cells: Iterable[Iterable[Sample]]) -> tuple[str, ...]:
    """The modalities (of :data:`MODALITIES`) some cell of the grid has: the ones that get a panel in
    every cell. A modality no sample shown has gets none (an image dataset's grid has no blank audio and
    text bands); one that a sample lacks still gets its panel there, which says so.

    Example:
        >>> import torch
        >>> grid_modalities([[Sample("a", {"image": torch.zeros(3, 2, 2)}), Sample("a", {"label": 1})]])
        ('image',)
    """
    present = {m for row in cells for c in row for m in MODALITIES if m in c}
    return tuple(m for m in MODALITIES if m in present)


def _label_line(s: Sample, names: list[str] | None) -> str | None:
    """A caption's ``label:`` line (None: the sample has no label)."""
    if "label" not in s:
        return None
    lab = s["label"]
    return f"label: {names[lab] if names and 0 <= lab < len(names) else lab}"


#: metadata values a cell of a sample without a label shows, at most
META_VALUES = 3


def meta_values(s: Sample) -> dict[str, Any]:
    """The numbers and short strings of a sample's metadata (its ``json`` field: a manifest's ``--meta``
    columns) that a cell of a sample without a label shows, at most :data:`META_VALUES`, in order: a
    regression dataset's target is what the grid would otherwise not show (QA33 onemodality #9). Nothing
    for a labelled sample (its class is shown).

    Example:
        >>> meta_values(Sample("k", {"json": {"score": 5.541, "captions": ["a", "b"], "site": "north"}}))
        {'score': 5.541, 'site': 'north'}
    """
    meta = s.get("json")
    if "label" in s or not isinstance(meta, Mapping):
        return {}
    out = {}
    for k, v in meta.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, str) and len(v) <= 24:
            out[str(k)] = v
            if len(out) == META_VALUES:
                break
    return out


def _values_line(s: Sample) -> str | None:
    values = meta_values(s)
    return ", ".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items()) or None


def _caption(s: Sample, original: Sample, names: list[str] | None,
             with_text: bool) -> tuple[str, frozenset[int], set[str]]:
    """A cell's caption (its marked text, the modalities the recipe dropped, its label), the paragraphs of it
    (``\\n``-separated, by index) that differ from the original (drawn red; empty: none), and the
    :data:`TEXT_KEY` marks it shows (and ``"cut"`` where the text is over :data:`DIFF_UNITS` units: its start is
    drawn, see :func:`mark_changes`). Only what differs is red (QA27: a caption the recipe left alone and an
    unchanged ``label:`` line were red beside a dropped image). ``with_text``: the grid has a text panel
    (without one no sample has text: no ``(no text)`` line)."""
    lines: list[str] = []
    red: list[int] = []
    marks: set[str] = set()
    text = s.get("text")
    text_changed = text != original.get("text")
    if text is not None:
        before = original.get("text")
        if before is not None:
            marked, marks, cut = _diff(before, text, _in_place(s.meta.get("aug", ())))
        else:  # nothing to compare with: the text as it is, or the start of a long one
            words, cut = _first_units(text, DRAWN_UNITS)
            marked = Tokenizer.join([*words[:DRAWN_UNITS], CUT_MARK]) if cut else text
        if cut:
            marks.add("cut")
        elif len(text) > DRAWN_CHARS:  # more than any cell draws (one 100,000-character word): say how long
            marked = f"{marked} ({len(text):,} chars)"
        lines.append(marked if marked else "(empty text)")
    elif with_text:
        lines.append("(no text)")
    if text_changed:
        red += range(sum(ln.count("\n") + 1 for ln in lines))  # every paragraph of the text
    missing = [m for m in MODALITIES if m in original and m not in s]
    if missing:
        red.append(sum(ln.count("\n") + 1 for ln in lines))
        lines.append("dropped: " + ", ".join(missing))
        marks.add("dropped")
    label = _label_line(s, names)
    if label is not None:
        if label != _label_line(original, names):
            red.append(sum(ln.count("\n") + 1 for ln in lines))
        lines.append(label)
    values = _values_line(s)
    if values is not None:
        if values != _values_line(original):
            red.append(sum(ln.count("\n") + 1 for ln in lines))
        lines.append(values)
    if text_changed or missing:
        marks.add("changed")
    return "\n".join(lines), frozenset(red), marks


def _colour_runs(body: str, red: frozenset[int]) -> list[tuple[str, bool]]:
    """``body``'s paragraphs as runs of one colour: (paragraphs, red?) in order.

    Example:
        >>> _colour_runs("a\\nb\\nlabel: 1", frozenset({0, 1}))
        [('a\\nb', True), ('label: 1', False)]
    """
    runs: list[tuple[list[str], bool]] = []
    for i, para in enumerate(body.split("\n")):
        if runs and runs[-1][1] == (i in red):
            runs[-1][0].append(para)
        else:
            runs.append(([para], i in red))
    return [("\n".join(paras), is_red) for paras, is_red in runs]


def _panels(slots: Iterable[str], text_lines: int) -> list[float]:
    """The heights (inches) of a cell's panels: image, waveform and spectrogram for the ``slots`` that
    have them, then the caption of ``text_lines`` lines."""
    slots = set(slots)
    return [*([IMAGE_IN] if "image" in slots else []), *([WAVE_IN, SPEC_IN] if "audio" in slots else []),
            *([WAVE_IN] if any(m.startswith(SIGNAL) for m in slots) else []), LINE_IN * max(text_lines, 1) + 0.04]


#: a cell's width (inches) and the grid's space between cells (a share of a cell's width)
CELL_IN, CELL_GAP = 2.1, 0.08
#: the least space (points) between a caption line and the next column's caption: a visible gap
CAPTION_GAP = 8.0
#: the notes' font size (points) under the grid, and the most width a note's line takes (a share of the figure's)
NOTE_PT, NOTE_OVERHANG = 7, 1.02


def _caption_points(columns: int) -> float:
    """The drawn width (points) a caption line may take in a grid of ``columns`` cells: from its cell's left
    edge to :data:`CAPTION_GAP` points short of the next cell's (a caption may use the gap between cells, as
    it always did; QA: lines of wide letters ran over the next column's captions, then ended 2 points from
    them, so two columns read as one line). Matplotlib's default subplot margins (``left`` 0.125, ``right``
    0.9) give the grid's width.

    Example:
        >>> round(_caption_points(3), 1)
        112.1
    """
    grid = CELL_IN * columns * (0.9 - 0.125)
    cell = grid / (columns + CELL_GAP * (columns - 1))
    return cell * (1 + CELL_GAP) * 72 - CAPTION_GAP


def _caption_lines(body: str, slots: tuple[str, ...], font: str | None, points: float | None = None) -> int:
    """How many lines a caption ``body`` is drawn in (what its row's caption panel is sized for)."""
    body, _ = _drawable(body, font)
    limit = CAPTION_LINES if {"image", "audio"} & set(slots) else TEXT_ONLY_LINES
    return _wrap(body, CHARS, limit, font, points).count("\n") + 1


def _cell(fig: Any, spec: Any, s: Sample, original: Sample, names: list[str] | None, title: str, font: str | None,
          target: str | None = None, values: Any = None, fill: float = 0, slots: tuple[str, ...] | None = None,
          text_lines: int | None = None, caption: tuple[str, frozenset[int], set[str]] | None = None,
          points: float | None = None, strip: tuple[str, ...] = ()) -> bool:
    """Draw one sample (with ``target`` overlaid on its image, coloured over the figure's ``values``);
    returns whether a CJK run had to be replaced by a placeholder. ``slots``: the modalities that get a
    panel (:func:`grid_modalities`; default: the original's, and a caption); ``text_lines``: the caption
    panel's height in lines (default: as many as it may take); ``caption``: :func:`_caption`'s result when
    the figure already computed it (default: computed here); ``points``: a caption line's drawn width
    (:func:`_caption_points`; default: :data:`CHARS` letters ``x``); ``strip``: image targets drawn right of
    the image, in this order (:func:`image_strip`)."""
    # slots follow the grid (the original sample by default), so every variant of a row lines up: a
    # dropped modality keeps its slot, drawn as an empty frame that says so; a modality the sample never
    # had, as a grey one
    if slots is None:
        slots = (*(m for m in ("image", "audio") if m in original or m in s), "text")
    has_image, has_audio = "image" in slots, "audio" in slots
    limit = CAPTION_LINES if has_image or has_audio else TEXT_ONLY_LINES
    heights = _panels(slots, limit if text_lines is None else text_lines)
    inner = spec.subgridspec(len(heights), 1, hspace=PANEL_GAP / float(np.mean(heights)), height_ratios=heights)
    r = 0

    def empty(ax: Any, what: str, below: float = 0.0) -> None:
        """A frame for a modality the cell lacks: red dashes where the recipe dropped it, grey dots where
        the sample never had it (missing data, shown as such). ``below``: how far down (in the axes'
        heights) the frame reaches over the panels under it (audio: over its spectrogram's slot too)."""
        from matplotlib.patches import Rectangle

        dropped = what in original
        colour = "firebrick" if dropped else "darkgray"
        ax.axis("off")
        ax.add_patch(Rectangle((0, -below), 1, 1 + below, transform=ax.transAxes, fill=False, clip_on=False, lw=0.8,
                               linestyle=(0, (3, 3)) if dropped else (0, (1, 2)), edgecolor=colour))
        ax.text(0.5, 0.5 - below / 2, f"{what} dropped" if dropped else f"no {what}", ha="center", va="center",
                fontsize=7, color="firebrick" if dropped else "dimgray", transform=ax.transAxes)

    if has_image:
        ax = fig.add_subplot(inner[r])
        if "image" in s:
            img = s["image"].numpy()
            grey = img.shape[0] < 3  # L, or LA: the grey level (alpha not drawn); RGB(A): the colours
            if strip:  # the image and its image targets side by side, as the recipe moved them (QA36 video #5)
                shown = image_strip(s, strip)
            else:
                shown = img[0] if grey else img[:3].transpose(1, 2, 0)
            h, w = shown.shape[:2]
            # drawn at the cell's pixel size (pixel coordinates kept for the overlay): nearest-neighbour
            # shrinking of dense text lines drew a false slant (QA38 OCR #3); small images stay nearest
            ax.imshow(_fit_pixels(shown, _drawn_pixels(fig, ax, h, w)), cmap="gray" if grey and not strip else None,
                      vmin=0, vmax=255, interpolation="nearest", extent=(-0.5, w - 0.5, h - 0.5, -0.5))
            if strip:
                _label_missing(ax, s, strip)
            drawn = _drawn_map(s, target)
            if drawn is not None:
                overlay(ax, drawn, values, fill)
                ax.set_xlim(-0.5, shown.shape[1] - 0.5), ax.set_ylim(shown.shape[0] - 0.5, -0.5)  # the map's imshow
            ax.set_xticks([]), ax.set_yticks([])
        else:
            empty(ax, "image")
        ax.set_title(title, fontsize=TITLE_PT, family=[CAPTION_FONT, font] if font else CAPTION_FONT)
        r += 1
    if has_audio:
        ax = fig.add_subplot(inner[r])
        envelope = s.meta.get("preview_envelope")
        if "audio" in s:
            chans = s["audio"].numpy().reshape(-1, s["audio"].shape[-1])
            wav = spectrogram_signal(chans)
            rate = s.sample_rate or 1
            same = False
            if envelope is not None:  # a long clip: its min / max envelope (the spectrogram below: its start)
                t, lo, hi, seconds = envelope
                lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
                same = len(chans) > 1 and len(lo) == 1
                for c in range(len(lo)):  # each channel's envelope, coloured as the short clips' lines
                    ax.fill_between(t, lo[c], hi[c], lw=0, color=WAVE_COLOURS[min(c, 1)], alpha=1.0 if c == 0 else 0.7)
                ax.set_xlim(0, seconds)
                peak = max(float(np.max(np.abs(lo), initial=0.0)), float(np.max(np.abs(hi), initial=0.0)))
            elif chans.shape[-1] < 2:  # one point draws no line: an empty box read as a drawing failure (QA)
                _too_short(ax, f"{_samples(chans.shape[-1])} — too short to draw")
                seconds, peak = chans.shape[-1] / rate, 0.0
            else:  # each channel (QA26: the channels' mean drew anti-phase stereo flat); the second in orange
                seconds = chans.shape[-1] / rate
                # channels identical throughout (a mono clip stored as stereo): one line in the 1st channel's
                # colour, said under it, not an orange line hiding the blue one (QA36 review)
                same = len(chans) > 1 and all(np.array_equal(chans[0], ch) for ch in chans[1:])
                for c, ch in enumerate(chans[:1] if same else chans):
                    ax.plot(np.arange(len(ch)) / rate, ch, lw=0.4, color=WAVE_COLOURS[min(c, 1)],
                            alpha=1.0 if c == 0 else 0.7)
                ax.set_xlim(0, seconds)
                peak = float(np.max(np.abs(chans), initial=0.0))
            wave_scale(ax, peak)
            said = clip_text(seconds, rate, len(chans)) + (" identical" if same else "")
            ax.text(0.01, 0.03, said, ha="left", va="bottom", fontsize=INFO_PT,
                    color=TEXT_ON_WAVE, transform=ax.transAxes, bbox=LABEL_BOX)
            ax.set_xticks([]), ax.set_yticks([])
        else:  # one frame over the waveform's and the spectrogram's slots: no blank band under it
            empty(ax, "audio", below=(PANEL_GAP + heights[r + 1]) / heights[r])
        if not r:
            ax.set_title(title, fontsize=TITLE_PT, family=[CAPTION_FONT, font] if font else CAPTION_FONT)
        ax = fig.add_subplot(inner[r + 1])
        if s.get("spec") is not None:  # the recipe's log-mel (a logmel op): drawn as it is, freq / time masks too
            logmel_image(ax, s["spec"])
            ax.set_xticks([]), ax.set_yticks([])
            # QA26: beside "first 30 s of 600 s" unlabelled, it read as that span too
            spectrum_kind(ax, LOGMEL_KIND, "" if envelope is None else f"the whole {envelope[3]:g} s")
        elif "audio" in s:
            if spectrogram(ax, wav, rate) is None:
                _too_short(ax, f"{_samples(len(wav))}: too short for a spectrogram\n(it takes over {SPEC_WINDOW})")
            else:
                span = "" if envelope is None else f"first {PREVIEW_SECONDS:g} s of {envelope[3]:g} s"
                spectrum_kind(ax, STFT_KIND, span)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            ax.axis("off")
        r += 2
    signal = next((m[len(SIGNAL):] for m in slots if m.startswith(SIGNAL)), None)
    if signal is not None:
        ax = fig.add_subplot(inner[r])
        v = s.get(signal)
        if v is not None and hasattr(v, "shape") and len(v.shape) in (1, 2) and max(v.shape) >= 2:
            y = first_channel(v)
            # complex samples (I/Q): the real part (I) in blue, the imaginary part (Q) in orange, not the real
            # part alone with a raw ComplexWarning (QA38 RF #4)
            parts = [y.real, y.imag] if np.iscomplexobj(y) else [y]
            for c, part in enumerate(parts):
                ax.plot(np.arange(len(y)), part.astype(np.float64), lw=0.4, color=WAVE_COLOURS[c], alpha=1.0 if c == 0 else 0.7)
            ax.set_xlim(0, len(y) - 1)
            ax.text(0.01, 0.03, f"{signal} {tuple(v.shape)}{' I/Q' if len(parts) > 1 else ''}", ha="left", va="bottom", fontsize=INFO_PT,
                    color=TEXT_ON_WAVE, transform=ax.transAxes, bbox=LABEL_BOX)
            ax.set_xticks([]), ax.set_yticks([])
        else:
            empty(ax, signal)
        if not r:
            ax.set_title(title, fontsize=TITLE_PT, family=[CAPTION_FONT, font] if font else CAPTION_FONT)
        r += 1
    ax = fig.add_subplot(inner[r])
    ax.axis("off")
    if not r:  # a text-only (or empty) cell still says which sample and variant it is
        ax.set_title(title, fontsize=TITLE_PT, family=[CAPTION_FONT, font] if font else CAPTION_FONT)
    body, red, _ = caption or _caption(s, original, names, "text" in slots)
    replaced = False
    family = ["DejaVu Sans", font] if font else "DejaVu Sans"
    above = None
    # a text per run of one colour, each under the one before at the caption's line pitch (1.2 font sizes:
    # a run's box is 1 font size a line, the leading between runs is the rest), as one text draws its lines
    for run, is_red in _colour_runs(body, red):
        run, what = _drawable(run, font)
        replaced = replaced or "CJK" in what
        kw = dict(va="top", ha="left", fontsize=CAPTION_PT, color="firebrick" if is_red else "black", family=family)
        if above is None:
            above = ax.text(0, 1, _wrap(run, CHARS, limit, font, points), transform=ax.transAxes, **kw)
        else:
            above = ax.annotate(_wrap(run, CHARS, limit, font, points), xy=(0, 0), xycoords=above,
                                xytext=(0, -(CAPTION_LEADING - 1) * CAPTION_PT), textcoords="offset points", **kw)
    return replaced


class _MarkHandler:
    """Draws a :data:`TEXT_KEY` entry's handle: the mark as the captions draw it (red, their font)."""

    def legend_artist(self, legend: Any, handle: Any, fontsize: float, box: Any) -> Any:
        from matplotlib.text import Text

        mark = Text(box.width / 2 - box.xdescent, box.height / 2 - box.ydescent, handle.get_label(), ha="center",
                    va="center", fontsize=CAPTION_PT, color="firebrick", family="DejaVu Sans")
        box.add_artist(mark)
        return mark


def _draw_text_key(fig: Any, marks: set[str], y: float, ncol: int) -> Any:
    """The key of the caption marks drawn in the grid (``marks``: :data:`TEXT_KEY` names), centred under
    the grid, top at ``y``; None when the grid shows none."""
    from matplotlib.patches import Patch

    kinds = [k for k in TEXT_KEY if k in marks]
    if not kinds:
        return None
    handles = [Patch(label=TEXT_KEY[k][0]) for k in kinds]
    width = max(len(TEXT_KEY[k][0]) for k in kinds) * 0.62  # the longest mark, in font sizes
    key = fig.legend(handles, [TEXT_KEY[k][1] for k in kinds], title="text marks", loc="upper center",
                     bbox_to_anchor=(0.5, y), ncol=min(len(kinds), ncol), fontsize=7, title_fontsize=7, frameon=False,
                     handlelength=width, handletextpad=0.6, columnspacing=1.6, borderaxespad=0.0,
                     handler_map={Patch: _MarkHandler()})
    key.set_gid("text-key")
    return key


def spread_keys(ds: Any, n: int) -> list[tuple[str, str]] | None:
    """``n`` (key, shard) pairs of a dataset folder's split spread over its classes and its keys.

    Classes (unlabelled samples are one more) take turns in label order; within a class the picks are
    evenly spaced over its keys in key order, so a class-folder dataset (keys sorted by class) shows
    every class, not its first one only. None for bare shards (no index).
    """
    groups = _class_groups(ds)
    return None if groups is None else [pair for _, pair in _spread(groups, n)]


def _class_groups(ds: Any, sources: dict[str, str] | None = None) -> list[list[tuple[str, str]]] | None:
    """The (key, shard) pairs of ``ds``'s split by class, in label order (unlabelled last), each in key
    order; None for bare shards (no index). ``sources``: a dict this call fills with the split's key ->
    ``source_key`` (what the sample was sharded from), where the index records it."""
    if ds.root is None:
        return None
    from mmdata.shards import index as idx

    columns = ["key", "split", "shard", "label"]
    try:  # an index written before the column (or without it) has no source keys: the keys stand for them
        table = idx.load_index(ds.root, columns=[*columns, "source_key"], storage_options=ds.storage_options)
    except ShardError:
        table = idx.load_index(ds.root, columns=columns, storage_options=ds.storage_options)
    rows = [r for r in table.to_pylist() if r["split"] == ds.split]
    if sources is not None:
        sources.update((r["key"], r.get("source_key")) for r in rows if r.get("source_key") is not None)
    groups: dict[float, list[tuple[str, str]]] = {}
    for r in sorted(rows, key=lambda r: r["key"]):
        label = r["label"]
        group = float("inf") if label is None or label != label else float(label)  # None / NaN: unlabelled
        groups.setdefault(group, []).append((r["key"], r["shard"]))
    return [groups[g] for g in sorted(groups)]


def _spread(ordered: list[list[tuple[str, str]]], n: int) -> list[tuple[int, tuple[str, str]]]:
    """:func:`spread_keys`'s picks from class groups, each with the index of its group."""
    # how many each class shows: round-robin shares, capped by its size
    take = [0] * len(ordered)
    left = min(n, sum(map(len, ordered)))
    while left:
        for i, g in enumerate(ordered):
            if left and take[i] < len(g):
                take[i] += 1
                left -= 1
    chosen = [[g[(j * len(g)) // t] for j in range(t)] for g, t in zip(ordered, take)]
    return [(i, c[j]) for j in range(max(take, default=0)) for i, c in enumerate(chosen) if j < len(c)]


#: what ``on_error`` may be (the commands' ``--on-error``)
ON_ERROR = ("raise", "skip")


class _Skips:
    """The samples a preview left out (``on_error="skip"``), one entry each, in the order met:
    ``{"key", "shard", "reason"}`` (the reader's message, or ``refused by the recipe: ...``)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def refused(self, key: str, shard: str | None, exc: Exception) -> None:
        self.entries.append({"key": key, "shard": shard, "reason": f"refused by the recipe: {refusal(exc)}"})

    def lost(self, ds: Any, delivered: set[str], wanted: set[str] | None = None) -> None:
        """The samples ``ds``'s pass lost (of ``wanted``, when given): named from its ``errors``; those it
        counted past the ones it names (it names the first hundred) as entries without a key."""
        named = {}
        for shard, key, message in ds.errors:
            if key not in delivered and (wanted is None or key in wanted) and (shard, key) not in named:
                named[(shard, key)] = {"key": key, "shard": shard, "reason": message}
        self.entries += named.values()
        if wanted is None:  # bare shards: the reader's counts are the samples lost
            unnamed = sum(ds.skipped.values()) - len(named)
        else:  # a selection: what was wanted and neither came nor was named
            unnamed = len(wanted - delivered - {k for _, k in named})
        why = ", ".join(ds.skipped) or "not delivered by the reader"
        self.entries += [{"key": None, "shard": None, "reason": why}] * max(unnamed, 0)

    def keys(self, limit: int = 5) -> str:
        """The first ``limit`` keys, quoted: ``'c1', 'c4', ...``."""
        shown = [repr(e["key"]) if e["key"] is not None else "(unnamed)" for e in self.entries[:limit]]
        return ", ".join(shown) + (", ..." if len(self.entries) > limit else "")


def _picked_rows(shards: str | Path, split: str, alpha: bool, on_error: str, groups: list[list[tuple[str, str]]],
                 n: int, row: Any, skips: _Skips, photo_fields: list[str] = ()) -> list[list[Sample]]:
    """The rows of :func:`spread_keys`' ``n`` picks, read by key (the split's other samples are not decoded).

    With ``on_error="skip"`` a pick that does not decode or that the recipe refuses (``row`` gives None)
    is replaced by the next key of its class (of another class when its class has none left): each round
    reads, for every slot still empty, its next 1, 2, 4, ... candidates at once, so a split of mostly bad
    samples takes a few passes, not one per sample.
    """
    import mmdata

    picks = _spread(groups, n)
    slots = [(g, key) for g, (key, _) in picks]
    picked = {key for _, key in slots}
    queues = [[key for key, _ in grp if key not in picked] for grp in groups]  # replacements, in key order
    found: dict[str, list[Sample]] = {}
    bad: set[str] = set()
    taken: dict[int, str] = {}  # slot -> its sample
    wanted = [[key] for _, key in slots]  # slot -> candidates of this round
    width = 1
    while True:
        to_read = {k for ks in wanted for k in ks if k not in found and k not in bad}
        if to_read:
            ds = mmdata.open_dataset(shards, split=split, image_alpha=alpha, on_error=on_error, keys=sorted(to_read),
                                     photo_fields=photo_fields)
            delivered = set()
            before = len(skips.entries)
            for s in ds:
                delivered.add(s.key)
                if (cells := row(s)) is not None:
                    found[s.key] = cells
            skips.lost(ds, delivered, to_read)
            bad |= {e["key"] for e in skips.entries[before:]} | (to_read - set(found))
        used = set(taken.values())
        for i, ks in enumerate(wanted):
            if i not in taken:
                good = next((k for k in ks if k in found and k not in used), None)
                if good is not None:
                    taken[i] = good
                    used.add(good)
        empty = [i for i in range(len(slots)) if i not in taken]
        if not empty or on_error == "raise":
            break
        for q in queues:
            q[:] = [k for k in q if k not in bad and k not in used]
        if not any(queues):
            break
        wanted = [[] for _ in slots]
        for i in empty:
            g = slots[i][0]
            q = queues[g] or next(q for q in queues if q)
            wanted[i] = q[:width]
        width *= 2
    return [found[taken[i]] for i in range(len(slots)) if i in taken]


def _preview_keys(keys: Any) -> list[str]:
    """``keys=`` of a preview: sample keys, each once, in the order given."""
    if isinstance(keys, (str, bytes)) or not all(isinstance(k, str) for k in keys):
        raise MMDataError(f"keys (--keys): expected a list of sample keys (strings), got {keys!r:.100}")
    out = list(dict.fromkeys(keys))
    if not out:
        raise MMDataError("keys (--keys): no sample key given")
    return out


def _keyed_rows(shards: Any, split: str, alpha: Any, on_error: str, keys: list[str], row: Any,
                skips: _Skips, photo_fields: list[str] = ()) -> list[list[Sample]]:
    """The rows of the samples ``keys`` names, in that order; a key the split does not hold is an error naming
    it (and the split), a sample that does not decode follows ``on_error``."""
    import mmdata

    ds = mmdata.open_dataset(shards, split=split, image_alpha=alpha, on_error=on_error, keys=keys,
                             photo_fields=photo_fields)
    found: dict[str, list[Sample]] = {}
    delivered: set[str] = set()
    for s in ds:
        delivered.add(s.key)
        if (cells := row(s)) is not None:
            found[s.key] = cells
    named = {key for _, key, _ in ds.errors}  # the reader's losses (a sample that does not decode), by key
    missing = [k for k in keys if k not in delivered and k not in named]
    if missing:
        shown = ", ".join(repr(k) for k in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise MMDataError(f"keys (--keys): the split {split!r} of {shards} holds no sample {shown}; keys are the index's "
                          f"'key' column (`mmdata preview --json` names each row's key)")
    skips.lost(ds, delivered, set(keys))
    return [found[k] for k in keys if k in found]


#: the caption marks a summary's variant lists (what its text shows changed), in :data:`TEXT_KEY`'s order
_SUMMARY_MARKS = ("removed", "new", "masked", "moved")


def _fired(log: Iterable[Mapping[str, Any]], normalize: bool) -> list[dict[str, Any]]:
    """The entries of a replay log (``meta["aug"]``) whose op fired, of the normalize stage (``normalize``) or
    of the random sections, as ``{"section", "op", "id", "params"}`` (``params`` as logged, less ``applied``)."""
    out = []
    for e in log:
        params = dict(e.get("params") or {})
        if not params.pop("applied", True):
            continue
        section, _, op = str(e.get("op", "")).rpartition(".")
        if (section.split(".", 1)[0] == "normalize") != normalize:
            continue
        out.append({"section": section, "op": op, "id": e.get("id"), "params": params})
    return out


def _row_summary(i: int, cells: list[Sample], columns: list[tuple[str, Any]], captions: list[tuple[str, frozenset[int], set[str]]],
                 source: str | None, names: list[str] | None, views: Sequence[str] = ()) -> dict[str, Any]:
    """What row ``i`` of the grid shows, for :func:`preview_figure`'s ``summary`` (see :func:`preview`);
    ``views``: the recipe's image targets some drawn sample holds (listed per row with their presence)."""
    original = cells[0]
    label = original.get("label")
    try:
        label = None if label is None else int(label)
    except (TypeError, ValueError):  # a label the caption draws as it is
        label = str(label)
    name = names[label] if isinstance(label, int) and names and 0 <= label < len(names) else None
    normalize: list[dict[str, Any]] = []
    variants = []
    for (title, how), cell, (_, _, marks) in zip(columns, cells, captions):
        log = cell.meta.get("aug", ())
        if how == "eval":
            normalize = _fired(log, True)
        elif how is not None:
            counts: dict[str, int] = {}
            before, after = original.get("text"), cell.get("text")
            if isinstance(before, str) and isinstance(after, str) and before != after:
                _diff(before, after, _in_place(log), counts)
            variants.append({"epoch": how, "column": title, "ops": _fired(log, False),
                             "dropped": [m for m in MODALITIES if m in original and m not in cell],
                             "text_marks": [m for m in _SUMMARY_MARKS if m in marks],
                             "text_counts": {m: counts[m] for m in _SUMMARY_MARKS if counts.get(m)}})
            if not any(h == "eval" for _, h in columns) and not normalize:
                normalize = _fired(log, True)
    out = {"row": i + 1, "key": original.key, "source_key": source, "label": label, "class": name,
           "modalities": [m for m in MODALITIES if m in original], "normalize": normalize, "variants": variants}
    if views:  # QA40: a row without a view was told apart only by a grey block in the PNG
        out["views"] = {v: original.get(v) is not None for v in views}
    values = meta_values(original)
    if values:  # a sample without a label: its metadata values (a regression target)
        out["values"] = values
    return out


def _short(value: Any, most: int = 6) -> str:
    """A logged param as a summary line shows it: floats to 3 digits, long lists cut (``[1, 2, …(+9)]``)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_short(v, most) for v in value[:most])
        return f"[{shown}{f', …(+{len(value) - most})' if len(value) > most else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v, most)}" for k, v in value.items()) + "}"
    return str(value)


def text_changes(marks: Iterable[str], counts: Mapping[str, int]) -> str:
    """A summary line's words on a variant's text edits: its :data:`TEXT_KEY` marks with how many words each
    stands for where known (QA36 mir #4: ``text removed`` for one word deleted read as the text dropped).

    Example:
        >>> text_changes(["removed"], {"removed": 1}), text_changes(["masked", "new"], {"masked": 2, "new": 1})
        ('text: 1 word removed', 'text: 2 words masked, 1 new')
        >>> text_changes(["moved"], {})
        'text: words moved'
    """
    parts = []
    for m in marks:
        n = counts.get(m)
        if n is None:
            parts.append(f"words {m}")
        else:  # the first names its unit: "2 words masked, 1 new"
            parts.append(f"{n} {m}" if parts else f"{n} word{'s' * (n != 1)} {m}")
    return "text: " + ", ".join(parts)


def summary_lines(summary: Iterable[Mapping[str, Any]]) -> list[str]:
    """A plain-text listing of what a preview's grid shows (its ``summary``): one line per row (its number,
    key, source key where it differs, class), then one per augmented variant with the ops that fired and
    their params, and the modalities the recipe dropped — what a screen reader reads instead of the PNG. Each
    line is safe for a terminal (:func:`mmdata.terminal.terminal_text`: a class name's ``ESC`` printed ``\\x1b``).

    Example:
        >>> summary_lines([{"row": 1, "key": "k_1a2b", "source_key": "样本 1", "label": 0, "class": "cat",
        ...                 "variants": [{"column": "epoch 0", "ops": [{"section": "image", "op": "hflip", "params": {}}],
        ...                               "dropped": ["audio"], "text_marks": []}]}])
        ['row 1: k_1a2b (from 样本 1), class cat', '  epoch 0: image.hflip; dropped audio']
    """
    from mmdata.terminal import terminal_text as shown

    out = []
    for r in summary:  # key, source key and class come from the data (a tar member's name, the card): escaped
        head = f"row {r['row']}: {shown(str(r['key']))}"
        if r.get("source_key") and r["source_key"] != r["key"]:
            head += f" (from {shown(str(r['source_key']))})"
        if r.get("class") is not None:
            head += f", class {shown(str(r['class']))}"
        elif r.get("label") is not None:
            head += f", label {r['label']}"
        if r.get("values"):
            head += ", " + shown(", ".join(f"{k} {v}" for k, v in r["values"].items()))
        lacking = [v for v, here in (r.get("views") or {}).items() if not here]
        if lacking:  # an image target (a view) the row's sample lacks: drawn as a labelled block
            head += ", " + shown(", ".join(f"no {v}" for v in lacking))
        out.append(head)
        for v in r["variants"]:
            parts = [" ".join([f"{op['section']}.{op['op']}", *(f"{k}={_short(x)}" for k, x in op["params"].items())])
                     for op in v["ops"]]
            if v.get("dropped"):
                parts.append("dropped " + ", ".join(v["dropped"]))
            if v.get("text_marks"):  # "text: 1 word removed" (QA36 mir #4: "text removed" read as the modality dropped)
                parts.append(text_changes(v["text_marks"], v.get("text_counts") or {}))
            out.append(shown(f"  {v['column']}: {'; '.join(parts) if parts else 'no op fired'}"))
    return out


#: an image is drawn "nearly black" when 99% of its values are under this (of 255): a 12-bit scan read by the
#: v >> 8 rule is 0-15 (:func:`mmdata.shards.mediainfo.sixteen_bit_warning`), one with a hot pixel too
DARK_LEVEL = 16


def dark_images(samples: Iterable[Sample]) -> list[str]:
    """The keys of the samples whose image is drawn nearly black: 99% of its values under :data:`DARK_LEVEL`.

    Example:
        >>> import torch
        >>> dark = torch.full((1, 16, 16), 15, dtype=torch.uint8); dark[0, 0, 0] = 255  # a 12-bit scan's hot pixel
        >>> dark_images([Sample("a", {"image": dark}), Sample("b", {"image": torch.full((1, 8, 8), 90, dtype=torch.uint8)})])
        ['a']
    """
    out = []
    for s in samples:
        img = s.get("image")
        if img is None or not hasattr(img, "shape"):
            continue
        arr = np.asarray(img.detach().cpu().numpy() if hasattr(img, "detach") else img)
        if arr.size and float(np.percentile(arr[:3] if arr.ndim == 3 else arr, 99)) < DARK_LEVEL:
            out.append(s.key)
    return out


def sixteen_bit_warned(shards: Any) -> bool:
    """Whether the dataset's card warns of 16-bit images that decode nearly black (False without a card)."""
    from mmdata.shards.index import is_dataset, load_card

    try:
        if not isinstance(shards, (str, Path)) or not is_dataset(shards):
            return False
        said = load_card(shards, shard_lists=False).get("warnings") or []
    except (MMDataError, OSError, ValueError):
        return False
    return any(isinstance(w, str) and "16-bit" in w and "black" in w for w in said)


def dark_note(keys: list[str], images: int, card: bool) -> str:
    """The note on images drawn nearly black (:func:`dark_images`), with the card's reason where it gives one.

    Example:
        >>> dark_note(["a", "b"], 4, True).split(": ")[0]
        '2 of 4 images drawn nearly black (99% of their values under 16 of 255)'
    """
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    why = ("the card warns of 16-bit images using 12 significant bits or fewer (v >> 8 reads them as 0-15): "
           "rescale them before sharding" if card else "the recipe's ops are drawn on them as they are")
    return f"{len(keys)} of {images} image{'s' * (images != 1)} drawn nearly black (99% of their values under " \
           f"{DARK_LEVEL} of 255): {shown}; {why}"


#: the fields a cell draws or names without a panel of their own (a label, the metadata's values, a log-mel)
_DRAWN_FIELDS = frozenset((*MODALITIES, "label", "json", "spec"))


def fields_not_drawn(samples: Iterable[Sample], drawn: Iterable[str] = ()) -> list[str]:
    """The stored fields of ``samples`` that no panel draws (besides :data:`_DRAWN_FIELDS` and ``drawn``: the
    target overlaid, the image targets drawn), each with the dtype and shape of its first value: an
    arrays-only dataset's grid drew key / label text only and said nothing of its ``array`` (QA36 timeseries #8).

    Example:
        >>> fields_not_drawn([Sample("a", {"label": 1, "array": np.zeros((1731,), np.int16)})])
        ['array (int16, shape (1731,))']
    """
    shown = _DRAWN_FIELDS | set(drawn)
    first: dict[str, Any] = {}
    for s in samples:
        for name, v in s.fields.items():
            if name not in shown and name not in first:
                first[name] = v
    out = []
    for name, v in first.items():
        shape = getattr(v, "shape", None)
        what = f"{str(getattr(v, 'dtype', '')).removeprefix('torch.')}, shape {tuple(shape)}" if shape is not None else \
            type(v).__name__
        out.append(f"{name} ({what})")
    return out


def preview_figure(shards: str | Path, recipe: Any, *, n: int = 8, variants: int = 3, split: str = "train",
                   seed: int = 0, font: str | None = None, on_error: str = "raise",
                   skipped: list[dict[str, Any]] | None = None, summary: list[dict[str, Any]] | None = None,
                   keys: Sequence[str] | None = None, notes: list[str] | None = None) -> Any:
    """The matplotlib ``Figure`` :func:`preview` writes (same arguments, without ``out``): rows of samples,
    columns of the original, [normalized,] and ``variants`` augmented versions; the recipe's first target
    found in the samples drawn over their images, one colour per value over the whole figure, with a
    legend naming the field and its values (:func:`target_legend`); panels for the modalities some sample
    drawn has (:func:`grid_modalities`), each row as tall as its media and its longest caption; under the
    grid a key of the caption marks drawn (a legend with gid ``"text-key"``). With ``on_error="skip"``
    the samples left out are appended to ``skipped`` and named under the grid; ``summary`` gets one entry
    per row drawn, ``notes`` the notes under the grid (see :func:`preview`).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> fig = preview_figure(t + "/ds", {"image": [{"op": "hflip"}]}, n=2, variants=1)
        >>> len(fig.axes) > 0, fig.legends
        (True, [])
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # not pyplot: no global figure list, the caller's backend kept

    import mmdata
    from mmdata.augment.targets import fill_of, is_image

    if on_error not in ON_ERROR:
        raise MMDataError(f"on_error (--on-error): {on_error!r} is not one of {list(ON_ERROR)}")
    notes_out = notes  # the caller's list; `notes` below: the figure's own
    rec = load_recipe(recipe)
    rec = rec.with_seed(params_seed(rec.seed, seed))
    alpha = blends_alpha(rec)
    # a view declared `image` under targets decodes as a photo, as in the loader (QA39 codecs review #1)
    photos = rec.photo_fields()
    ds = mmdata.open_dataset(shards, split=split, image_alpha=alpha, on_error=on_error, photo_fields=photos)
    # a section for a modality the data lacks draws nothing: said, not left as "no op fired" (QA33 onemodality #3)
    warn_inert(rec, shards, "every variant drawn equals its original", "preview")
    # a flip of pages beside their transcriptions, as `mmdata augment` says it (QA38 OCR #7; bare shards: none)
    from mmdata.augment.offline import text_pairing
    from mmdata.augment.recipe import transcription_flip_notes

    for note in transcription_flip_notes(rec, *text_pairing(shards)):
        warnings.warn(f"preview: recipe {note}", UserWarning, stacklevel=2)
    sources: dict[str, str] = {}
    groups = _class_groups(ds, sources)
    columns: list[tuple[str, Any]] = [("original", None)]
    if rec.has_normalize:
        columns.append(("normalized", "eval"))
    columns += [(f"epoch {v}", v) for v in range(variants)]
    shrunk: set[str] = set()
    skips = _Skips()

    def row(s: Any) -> list[Sample] | None:
        """The sample's cells, each computed at full size and then shrunk to what is drawn, so one
        full-size sample at a time is held (eight 12000x9000 photos x five columns were 13 GB); None for
        a sample the recipe refuses with ``on_error="skip"`` (as ``mmdata augment --on-error skip``)."""
        shard, s = s.meta.get("shard"), Sample(s.key, s.fields, s.sample_rate)
        out, drawn = [], set()
        try:
            for _, how in columns:
                cell, what = drawn_sample(s if how is None else rec.normalize(s) if how == "eval" else
                                          rec.apply_sample(s, epoch=how))
                drawn |= what
                out.append(cell)
        except ShardError as exc:
            if on_error != "skip":
                raise
            skips.refused(s.key, shard, exc)
            return None
        shrunk.update(drawn)
        return out

    cells: list[list[Sample]] = []
    try:
        if keys is not None:  # QA26: the samples asked for (a suspicious clip), in the order given
            cells = _keyed_rows(shards, split, alpha, on_error, _preview_keys(keys), row, skips, photos)
        elif groups is None:  # bare shards: no index to pick from; the first n that decode
            delivered: set[str] = set()
            for s in ds:
                delivered.add(s.key)
                if (cells_of := row(s)) is not None:
                    cells.append(cells_of)
                if len(cells) >= n:
                    break
            skips.lost(ds, delivered)
        else:
            cells = _picked_rows(shards, split, alpha, on_error, groups, n, row, skips, photos)
    except MMDataError as exc:  # a sample that does not decode (a float WAV holding NaN): say how to find and fix them
        from mmdata.shards.reader import undecodable

        hinted = undecodable(exc, shards, skip="; or preview the others with --on-error skip (on_error='skip')")
        if hinted is None:
            raise
        raise hinted from None
    if skipped is not None:
        skipped += skips.entries
    samples = [r[0] for r in cells]  # the originals as drawn
    if not samples:
        left = (f": {len(skips.entries)} skipped (--on-error skip): {skips.keys()}; first: {skips.entries[0]['reason']}"
                if skips.entries else "")
        raise MMDataError(f"{shards}: split {split!r} has no samples to preview{left}")
    names = ds.label_names
    cjk = cjk_font(font)
    # the recipe's first target found in the samples is drawn over their images (does it move with them?)
    # (a mask's: an image target, a clip's other frame, is a picture, not a map to overlay)
    target = next((t for t in rec.targets if not is_image(fill_of(rec.targets[t]))
                   and any(s.get(t) is not None for s in samples)), None)
    # one colour per value over every cell (a class keeps its colour where another cell lacks a class)
    values = target_values(m for row in cells for c in row if (m := _drawn_map(c, target)) is not None)
    fill = fill_of(rec.targets[target]) if target else 0
    # image targets (a clip's frames) are drawn beside the image, the first STRIP_IMAGES of them (QA36 video #5)
    frames = [t for t in rec.targets if is_image(fill_of(rec.targets[t])) and any(s.get(t) is not None for s in samples)]
    strip = tuple(frames[:STRIP_IMAGES]) if any("image" in s for s in samples) else ()
    legend = target_legend(target, values, fill) if target and len(values) else None
    rows_of_legend = -(-len(legend[1]) // 6) if legend else 0
    band = 0.6 + (0.2 + 0.18 * rows_of_legend if legend else 0.0)  # the title's (and legend's) band, in inches
    # panels for the modalities the grid shows (no blank bands for one no sample has), each row as tall
    # as its media and its longest caption
    slots = grid_modalities(cells)
    signal = signal_field(samples, {*([target] if target else []), *frames})
    if signal is not None:  # a time series: its first channel as a line (QA36 timeseries #8)
        slots = (*slots, SIGNAL + signal)
    captions = [[_caption(c, r[0], names, "text" in slots) for c in r] for r in cells]
    points = _caption_points(len(columns))
    lines = [max(_caption_lines(body, slots, cjk, points) for body, _, _ in r) for r in captions]
    rows = [sum(h) + PANEL_GAP * (len(h) - 1) for h in (_panels(slots, k) for k in lines)]
    marks = set().union(*(m for r in captions for _, _, m in r))
    if summary is not None:
        summary += [_row_summary(i, r, columns, captions[i], sources.get(r[0].key), names, frames)
                    for i, r in enumerate(cells)]
    # a row's first title: its key whole where it fits, the source key where the key does not show it; a
    # second title line takes its room from every row's gap (and the title band's)
    titles = [_row_title(s.key, sources.get(s.key), _title_points(columns), cjk) for s in samples]
    title_in = TITLE_LINE_IN if any("\n" in t for t in titles) else 0.0
    replaced = cjk is None and any(_CJK_RUN.search(body) for r in captions for body, _, _ in r)
    missing = list(dict.fromkeys(w for r in captions for body, _, _ in r for w in _drawable(body, cjk)[1] if w != "CJK"))
    notes = []
    said = []  # the notes also warned of on stderr: what the grid cannot show
    batch = [st.label.rpartition(".")[2] for st in rec.steps if st.section == "batch"]
    if batch:  # QA36 mir #2: a mixup at p 1.0 drew unmixed clips, with no word
        said.append(f"batch section ({', '.join(batch)}) not shown: it mixes samples at collate time (the loader "
                    "applies it to each training batch); the variants drawn are before it")
    dark = dark_images(samples)
    if dark:  # QA36 medical #7: 12-bit scans drawn as black tiles with no note
        said.append(dark_note(dark, len([s for s in samples if "image" in s]), sixteen_bit_warned(shards)))
    if strip:
        lacking = [t for t in strip if any("image" in c and not _strip_present(c, t) for r in cells for c in r)]
        notes.append(f"image target{'s' * (len(strip) > 1)} {', '.join(strip)} drawn right of each image, in this order "
                     "(as the recipe moved them)" + (f"; a dotted block labelled 'no <field>' where a sample lacks "
                                                     f"{', '.join(lacking)}" if lacking else ""))
    if signal is not None:
        iq = any(str(getattr(c.get(signal), "dtype", "")).removeprefix("torch.").startswith("complex")
                 for r in cells for c in r)
        notes.append(f"{signal}: its first channel drawn as a line (the longer axis as time), each cell on its own scale"
                     + ("; complex values: the real part (I) in blue, the imaginary part (Q) in orange" if iq else ""))
    # a target is overlaid on an image only: with no sample holding both (a (T, H, W) video named as a mask
    # target of a dataset without images) it is neither drawn nor "overlaid" (QA39 lipreading #5)
    overlaid = target if target and any(s.fields.get("image") is not None and s.fields.get(target) is not None
                                        for s in samples) else None
    unshown = fields_not_drawn(samples, {*([overlaid] if overlaid else []), *strip, *([signal] if signal else [])})
    if unshown:  # QA36 timeseries #8: an arrays-only grid of key / label text said nothing of its `array` field
        said.append("fields not drawn: " + "; ".join(unshown))
    for note in said:
        warnings.warn(f"preview: {note}", UserWarning, stacklevel=2)
    notes += said
    if replaced:
        notes.append(f"⟦CJK ×N⟧: N Chinese / Japanese / Korean characters not drawn — no CJK font found; {INSTALL_HINT}")
    if missing:
        note = missing_glyphs_note(missing)
        notes.append(note)
        warnings.warn(f"preview: {note}", UserWarning, stacklevel=2)
    if "cut" in marks:
        notes.append(f"captions over {DIFF_UNITS} words: their first {DIFF_UNITS} compared with the original, "
                     f"the start drawn, ending in {CUT_MARK}")
    if "image" in shrunk:
        notes.append(f"images with a side over {PREVIEW_IMAGE_SIDE} px drawn downscaled (box average)")
    if "audio" in shrunk:
        notes.append(f"audio over {PREVIEW_SECONDS:g} s: the waveform's min / max envelope, the spectrogram of "
                     f"the first {PREVIEW_SECONDS:g} s")
    if any(_channels(c) > 1 for r in cells for c in r):
        notes.append(WAVE_NOTE)
    if skips.entries:
        many = len(skips.entries) != 1
        notes.append(f"skipped {len(skips.entries)} sample{'s' * many} (--on-error skip): {skips.keys()}")
    if notes_out is not None:
        notes_out += notes
    width = CELL_IN * len(columns)
    # a note wider than the figure wrapped to its drawn part (QA: 16 scripts' names widened a 2-column PNG from
    # 763 to 1430 px); one a few points over it stays one line (its ends overhang the figure by a point or two)
    wide, inside = (width * 72 * share * CAPTION_PT / NOTE_PT for share in (NOTE_OVERHANG, 0.94))
    notes = [line for note in notes for line in (_fit_width([note], inside, None) if _text_width(note) > wide else [note])]
    key_cols = max(1, int(width // 2.4))  # a key entry is about 2.2 inches wide
    key_rows = -(-sum(k in marks for k in TEXT_KEY) // key_cols)
    key_in = 0.2 + 0.16 * key_rows if key_rows else 0.0  # the key's title and rows
    bottom = 0.08 + (0.1 + key_in if key_rows else 0.0) + 0.13 * len(notes)  # the key's and the notes' band (lines)
    band += title_in
    gap = ROW_GAP + title_in
    height = band + sum(rows) + gap * (len(rows) - 1) + bottom
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # draws PNGs; fig.canvas.get_renderer() for layout checks
    # the title's band is a fixed height, not a share of the figure's (12% of an 8-row grid was 2.5 inches of blank)
    grid = fig.add_gridspec(len(samples), len(columns), wspace=CELL_GAP, hspace=gap / float(np.mean(rows)),
                            height_ratios=rows, top=1 - band / height, bottom=bottom / height)
    for i, s in enumerate(samples):
        for c, (label, _) in enumerate(columns):
            _cell(fig, grid[i, c], cells[i][c], s, names, titles[i] if c == 0 else label, cjk, target,
                  values, fill, slots, lines[i], captions[i][c], points, strip)
    fig.suptitle(f"recipe preview: {len(samples)} sample{'s' * (len(samples) != 1)} x {variants} "
                 f"variant{'s' * (variants != 1)}{f' (target {overlaid} overlaid)' if overlaid else ''}",
                 fontsize=10, y=1 - 0.15 / height)
    if legend is not None:
        _draw_legend(fig, *legend, y=1 - 0.42 / height)
    _draw_text_key(fig, marks, (bottom - 0.1) / height, key_cols)
    if notes:
        fig.text(0.5, 0.04 / height, "\n".join(notes), ha="center", va="bottom", fontsize=NOTE_PT, color="dimgray")
    return fig


def preview(shards: str | Path, recipe: Any, out: str | Path, *, n: int = 8, variants: int = 3, split: str = "train",
            seed: int = 0, font: str | None = None, on_error: str = "raise",
            skipped: list[dict[str, Any]] | None = None, summary: list[dict[str, Any]] | None = None,
            keys: Sequence[str] | None = None, notes: list[str] | None = None) -> Path:
    """Render ``n`` samples x (original, [normalized,] ``variants`` augmented versions) to a PNG
    (:func:`preview_figure`); a recipe's target is drawn over the images, with a legend of its colours.
    The PNG is drawn under :func:`figure_style` (matplotlib's defaults): the caller's settings do not change it.

    Args:
        shards: dataset folder or shards (see :func:`mmdata.open_dataset`).
        recipe: recipe path / YAML / dict.
        out: PNG path. n: samples (rows), spread over the split's classes and keys (see
            :func:`spread_keys`; bare shards: the first ``n``). variants: augmented epochs (columns).
        split: split to show.
        seed: augmentation seed (combined with the recipe's, as the loader does).
        font: a font file with CJK glyphs (default: found on the system, or ``$MMDATA_CJK_FONT``).
        on_error: a sample that does not decode (a float WAV holding NaN) or that the recipe refuses
            (a ``random_crop`` larger than its image): ``"raise"`` (ShardError naming it) or ``"skip"``
            (left out, the next good samples drawn: the next keys of its class; bare shards: the next
            samples); the figure names the samples left out.
        skipped: with ``on_error="skip"``, a list this call appends each sample left out to, as
            ``{"key", "shard", "reason"}`` (``key`` None for a loss the reader counted but did not name).
        summary: a list this call appends what each row of the grid shows to, top to bottom (what a
            screen reader or a script reads instead of the PNG; :func:`summary_lines` lists it as text):
            ``{"row"`` (1, 2, ...), ``"key"``, ``"source_key"`` (what the sample was sharded from; None for bare
            shards or an index without the column), ``"label"``, ``"class"`` (its name, or None),
            ``"modalities"``, ``"views"`` (with image targets in the recipe that the drawn samples hold: ``{field:
            present}``, False where the row's sample lacks it), ``"normalize"`` (the normalize stage's ops that
            fired), ``"variants"}``: per
            augmented column ``{"epoch", "column", "ops", "dropped", "text_marks"}``, ``ops`` the random
            sections' ops that fired, each ``{"section", "op", "id", "params"}`` as the sample's replay log
            (``meta["aug"]``) records them (less ``applied``), ``dropped`` the modalities the variant lost,
            ``text_marks`` what its caption marks (``masked``, ``removed``, ``new``, ``moved``).
        keys: the samples to draw (their keys, in this order) instead of ``n`` picked ones: a key the split
            does not hold is an error naming it.
        notes: a list this call appends the notes under the grid to, unwrapped (what a ``--json`` result
            lists as ``notes``): among them, also warned of (``UserWarning``, a ``warning:`` line on stderr), the
            recipe's ``batch`` section not drawn, images drawn nearly black (12-bit data in 16-bit files) and
            the stored fields no panel draws (an ``array``).

    Returns:
        The PNG's path.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> preview(t + "/ds", {"text": [{"op": "token_mask", "p": 1.0}]}, t + "/p.png", n=2, variants=1).name
        'p.png'
    """
    check_path_length(Path(out), "preview output")  # before drawing, not at the write after it
    buf = io.BytesIO()
    with figure_style():  # the same PNG whatever the caller's matplotlib settings (fonts, colours)
        fig = preview_figure(shards, recipe, n=n, variants=variants, split=split, seed=seed, font=font,
                             on_error=on_error, skipped=skipped, summary=summary, keys=keys, notes=notes)
        with warnings.catch_warnings():  # captions name such characters (placeholder_missing); titles may still box one
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
            fig.savefig(buf, format="png", dpi=PREVIEW_DPI, bbox_inches="tight")
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return out
