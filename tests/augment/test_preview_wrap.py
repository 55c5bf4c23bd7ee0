"""The preview's caption wrapping (``mmdata.augment.preview._wrap``): QA found Latin words beside CJK cut
mid-word (``alpha n`` / ``aïve``, ``délt`` / ``a``) — a paragraph with CJK in it was cut every N characters."""

from __future__ import annotations

import random

from mmdata.augment.preview import CHARS, _wrap


def _columns(line: str) -> int:
    return sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in line)


def test_latin_words_beside_cjk_are_never_cut_and_lines_keep_their_width() -> None:
    r = random.Random(0)
    words = ["alpha", "naïve", "délta", "photo", "[MASK]", "e-mail", "42"]
    han = "一张照片户外的猫我爱编程很有趣"
    for _ in range(200):
        para = " ".join(r.choice(words) if r.random() < 0.6 else "".join(r.choice(han) for _ in range(r.randint(1, 6)))
                        for _ in range(r.randint(1, 40)))
        lines = _wrap(para, CHARS, 1000).split("\n")
        tokens = {t for line in lines for t in line.split()}
        assert all(w in tokens for w in set(para.split()) & set(words)), (para, lines)  # every word whole
        assert all(_columns(line) <= CHARS for line in lines), lines
        assert "".join(para.split()) == "".join("".join(lines).split())  # nothing lost or added


def test_a_word_longer_than_a_line_is_cut_and_cjk_alone_still_wraps() -> None:
    long = "x" * (CHARS * 2 + 3)
    assert _wrap(f"一 {long}", CHARS, 10).split("\n")[1:] == [long[:CHARS], long[CHARS:2 * CHARS], long[2 * CHARS:]]
    cjk = "一张照片" * 30
    lines = _wrap(cjk, CHARS, 100).split("\n")
    assert "".join(lines) == cjk and all(_columns(line) <= CHARS for line in lines) and len(lines) > 1
