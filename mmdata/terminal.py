"""Text from downloaded data (a card's class names, a tar member's name, a split name) as a terminal gets it.

One rule for every command that prints such text (inspect, diff, verify, train, preview): what could drive the
terminal or hide what is printed is escaped, written as Python writes it (``\\x1b``, ``\\x9b``, ``\\u202e``):

- control characters: C0 (``ESC``, which starts colour codes, hyperlinks ``ESC]8;;``, clipboard writes
  ``ESC]52;``) and C1 (``\\x9b`` is a CSI on its own);
- format characters (Unicode category Cf): the BiDi overrides and isolates U+202A-202E / U+2066-2069 (they
  reorder what a reader sees), the marks U+200E / U+200F / U+061C (zero width: a class ``كلب`` and ``كلب`` + RLM
  would print alike), U+FEFF, the tag characters;
- line and paragraph separators, and the other characters :meth:`str.isprintable` refuses (unassigned, surrogates).

ZWNJ (U+200C) and ZWJ (U+200D) between two visible characters are spelling, not control: Persian and Urdu words
(``می‌خواهم``), Indic half-forms, emoji sequences (``👩‍👩‍👧``) keep them. Elsewhere (at an end, beside a space
or another invisible character) they are escaped. Spaces other than the ASCII one (no-break U+00A0, narrow
no-break U+202F, ideographic U+3000: French and CJK typography) take room on the line and are kept as they are
(the review of QA28: ``chat noir`` with a no-break space printed ``chat\xa0noir``). The invisible ones, the soft
hyphen U+00AD and the zero-width space U+200B, stay escaped: ``cat`` and ``cat`` + U+200B would print alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: zero-width joiner / non-joiner: kept between two visible characters
JOINERS = frozenset("\u200c\u200d")
#: typography :meth:`str.isprintable` refuses but no terminal acts on and that takes room on the line: the spaces
#: (Unicode Zs) other than ASCII's
TYPOGRAPHY = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
                       "\u205f\u3000")


def _visible(ch: str) -> bool:
    return ch.isprintable() and not ch.isspace()


def terminal_text(text: str) -> str:
    """``text`` on one line, safe for a terminal (see the module's docstring): control, format and separator
    characters escaped, except a ZWJ / ZWNJ between two visible characters.

    Example:
        >>> print(terminal_text("cat\\x1b[31m\\u202e"), terminal_text("می\\u200cخواهم") == "می\\u200cخواهم")
        cat\\x1b[31m\\u202e True
        >>> print(terminal_text("a\\nb\\u200d"))
        a\\nb\\u200d
        >>> terminal_text("chat\\u00a0noir 猫\\u3000ねこ") == "chat\\u00a0noir 猫\\u3000ねこ"
        True
    """
    if text.isprintable():
        return text
    out = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch.isprintable() or ch in TYPOGRAPHY:
            out.append(ch)
        elif ch in JOINERS and 0 < i < last and _visible(text[i - 1]) and _visible(text[i + 1]):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def terminal_lines(text: str) -> str:
    """``text`` with each of its lines made safe by :func:`terminal_text`; the line breaks (``\\n``) kept: a
    message of several lines from the library (the classes, then the modalities) printed whole.

    Example:
        >>> print(terminal_lines("classes: cat\\x1b]52;c;x\\x1b\\\\\\nmodalities: image"))
        classes: cat\\x1b]52;c;x\\x1b\\
        modalities: image
    """
    return "\n".join(terminal_text(line) for line in text.split("\n"))


def warnings_as_lines(say: Callable[[str, type[Warning]], None]) -> None:
    """Show each library ``UserWarning`` through ``say(message, category)`` — a command's own ``warning: ...``
    line — instead of Python's two lines with a source line of mmdata's code (a crash site to the reader); other
    categories keep Python's format. mmdata's UserWarnings also stay lines when the environment makes warnings
    errors (``PYTHONWARNINGS=error``, common in CI): they are the job's output, not a developer's alarm. Used by
    the CLI (for the whole command) and ``python -m mmdata.train`` (around its run: the library does not
    import the CLI).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings_as_lines(lambda m, c: print("warning:", m))
        ...     warnings.warn("shards listed twice", UserWarning, stacklevel=1)
        warning: shards listed twice
    """
    import warnings

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if issubclass(category, UserWarning) and file is None:
            say(str(message), category)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.filterwarnings("default", category=UserWarning, module=r"mmdata(\.|$)")
