"""``typo`` is byte-identical to what it gave before it was made fast (known limit of the 2026-12-04
session: "~75 ms per sample on a 2000-word text", a wall time on a busy machine; 13.6 -> 4.2 ms of CPU,
``benchmarks/text_typo.py`` prints the ratio).

Two checks: a golden file of digests (``golden/typo_outputs.json``, recorded with the code as it was at
commit 4dd3efb, before the change) of the text and the params for every text below x kind x ``p_word`` x
seed x epoch x key; and a straightforward reference (the code as it was: a draw per word in turn, every
unit rebuilt) against the op on hypothesis' texts — Latin, CJK, combining marks, emoji sequences,
``[MASK]``, line breaks — and on params it never draws (repeated words, negative or out-of-range
indices, a character past the word). The batched kernel gives the per-sample texts and tokens.

Regenerate the golden file only when a change of output is intended:
``.venv/bin/python tests/augment/test_typo_identity.py --record``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdata import Sample
from mmdata.augment import load_recipe
from mmdata.augment.text import TextOp, Typo, _carries_mark, _put, char_map
from mmdata.rng import param_rng
from mmdata.text import MASK_TOKEN, Tokenizer, default_tokenizer
from mmdata.types import collate

GOLDEN = Path(__file__).parent / "golden" / "typo_outputs.json"


def _long(n: int, seed: int, cjk: bool = False) -> str:
    """``n`` words of mixed case and punctuation (and CJK runs), with spaces, a few double spaces and line breaks."""
    r = random.Random(seed)
    vocab = ["the", "Photo", "of", "a", "cat", "sitting", "on", "mat.", "quickly,", "ZEBRA", "don't", "e-mail",
             "42", "x_y", "(par)", "naïve", "Zürich", "[MASK]", "over", "lazy", "dogs!", "mm", "rn", "0O1l"]
    han = "一张照片户外的猫我爱编程很有趣テストかな한국어"
    out = []
    for i in range(n):
        w = "".join(r.choice(han) for _ in range(r.randint(1, 4))) if cjk and r.random() < 0.3 else r.choice(vocab)
        out.append(w)
        out.append(r.choice([" "] * 12 + ["  ", "\n", "\r\n", "\t", ""]) if cjk else r.choice([" "] * 20 + ["  ", "\n"]))
    return "".join(out).strip()


TEXTS = {
    "empty": "",
    "spaces": "  \t \n ",
    "one": "a",
    "short": "A photo of a cat, sitting on the mat!",
    "crlf": "first line\r\nsecond line\r\n\r\nthird ",
    "mask": "the [MASK] sat on [MASK] mat [MASK]",
    "cjk": "一张照片，户外的猫。我爱Python编程\r\n很有趣 テスト ｶﾞｷﾞ 한국어 문장 A「引用」B",
    "emoji": "family 👨\u200d👩\u200d👧\u200d👦 thumbs 👍🏽 flag 🏳️\u200d🌈 ok✨ x",
    "nfd": "cafe\u0301 na\u0308ive o\u0308 Zu\u0308rich e\u0301\u0301",
    "mixed": "Hello,world! 42 x_y@z.com (par) 'quote' ﬁne Ω ß İ ΑΒΓ",
    "ocr": "0O1lI5S8B mm rn vv cl d 2Z",
    "long": _long(2000, 0),
    "long_cjk": _long(600, 1, cjk=True),
}
CASES = [(name, kind, p_word, seed, epoch, key)
         for name in TEXTS for kind in ("keyboard", "ocr") for p_word in (0.1, 0.5, 1.0)
         for seed in range(3) for epoch in range(2) for key in ("a", "k7")]


def _digest(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _run(name: str, kind: str, p_word: float, seed: int, epoch: int, key: str) -> tuple[str, list[Any]]:
    rec = load_recipe({"seed": seed, "text": [{"op": "typo", "p": 1.0, "p_word": p_word, "kind": kind}]})
    out = rec.apply_sample(Sample(key, {"text": TEXTS[name]}), epoch=epoch)
    return out["text"], out.meta["aug"]


def _digests(text: str, log: list[Any]) -> str:
    return f"{_digest(text)} {_digest(json.dumps(log, sort_keys=True))}"


def _case_id(case: tuple) -> str:
    return "/".join(map(str, case))


def record() -> None:
    got = {}
    for case in CASES:
        text, log = _run(*case)
        got[_case_id(case)] = _digests(text, log)
    GOLDEN.write_text(json.dumps({"about": "typo: sha256[:16] of the text and of the aug log per case; see "
                                           "tests/augment/test_typo_identity.py",
                                  "cases": got}, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(got)} cases to {GOLDEN}")


def test_typo_outputs_match_the_golden_file() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]
    assert set(golden) == {_case_id(c) for c in CASES}
    changed = []
    for case in CASES:
        text, log = _run(*case)
        if _digests(text, log) != golden[_case_id(case)]:
            changed.append(_case_id(case))
    assert changed == [], f"{len(changed)} of {len(CASES)} cases changed, e.g. {changed[:5]}"


def test_the_golden_cases_edit_something() -> None:
    """The cases exercise the op: most texts change, and at p_word 1 every word with a candidate does."""
    text, log = _run("long", "keyboard", 0.1, 0, 0, "a")
    assert 100 < len(log[0]["params"]["edits"]) < 300 and text != TEXTS["long"]
    for name in ("short", "cjk", "emoji", "nfd", "mixed", "ocr", "long_cjk"):
        assert _run(name, "ocr" if name == "ocr" else "keyboard", 1.0, 0, 0, "a")[0] != TEXTS[name], name


# -- the straightforward reference: the code as it was -----------------------------------------------------

def reference_word_params(op: Typo, rng: np.random.Generator, words: list[str]) -> dict[str, Any]:
    cmap = char_map(op.kind)
    edits = []
    for wi, w in enumerate(words):
        if rng.random() >= op.p_word:
            continue
        cands = [ci for ci, ch in enumerate(w) if ch in cmap and cmap[ch] and not _carries_mark(w, ci)]
        if not cands:
            continue
        ci = cands[int(rng.integers(len(cands)))]
        subs = cmap[w[ci]]
        edits.append([wi, ci, subs[int(rng.integers(len(subs)))]])
    return {"edits": edits}


def reference_edited(text: str, params: dict[str, Any]) -> str:
    units = Tokenizer.units(text)
    out = list(units)
    for wi, ci, ch in params["edits"]:
        w = out[wi]
        if w != MASK_TOKEN:
            out[wi] = _put(w, w[:ci] + ch + w[ci + 1 :])
    return text if out == units else Tokenizer.rebuild(text, units, out)


ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'!?-_()[]")
                           + ["  ", "\n", "\r\n", "\t", "\u3000", "[MASK]", "[MASK] ", " [MASK]", "一", "张", "，", "。",
                              "テ", "ｶﾞ", "한", "\u0301", "\u0308", "\u200d", "👍", "🏽", "👨\u200d👩", "\ufe0f",
                              "é", "ß", "Ω", "ﬁ", "İ", "\u00a0"])
TEXT = st.lists(ALPHABET, max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXT, p_word=st.sampled_from([0.1, 0.5, 1.0]), kind=st.sampled_from(["keyboard", "ocr"]),
       seed=st.integers(0, 2**32))
def test_typo_equals_the_reference(text: str, p_word: float, kind: str, seed: int) -> None:
    op = Typo(p_word=p_word, kind=kind)
    words = Tokenizer.words(text)
    if not words:
        assert op.sample_params(param_rng(seed, 0, "k", 0), Sample("k", {"text": text})) is None
        return
    a, b = param_rng(seed, 0, "k", 0), np.random.Generator(np.random.PCG64(0))
    b.bit_generator.state = a.bit_generator.state
    params = op.word_params(a, words)
    assert params == reference_word_params(op, b, words)
    assert a.bit_generator.state == b.bit_generator.state  # the same draws consumed: a composite's next op agrees
    assert op.transform(Sample("k", {"text": text}), params)["text"] == reference_edited(text, params)


@settings(max_examples=200, deadline=None)
@given(text=TEXT, data=st.data())
def test_typo_kernel_equals_the_reference_on_any_params(text: str, data: st.DataObject) -> None:
    """Params a replay log or a user can give: repeated words, negative indices, a character index past the
    word or negative, any replacement text (a space, a CJK character, a mark): the same text, or the same error."""
    n = len(Tokenizer.words(text))
    edit = st.tuples(st.integers(-n - 1, n) if n else st.just(0), st.integers(-3, 12),
                     st.sampled_from(["x", "Q", "", " ", "一", "\u0301", "[", "]", "MASK", "7"])).map(list)
    params = {"edits": data.draw(st.lists(edit, max_size=8))}
    try:
        want: Any = reference_edited(text, params)
    except IndexError as exc:
        want = type(exc)
    try:
        got: Any = Typo().transform(Sample("k", {"text": text}), params)["text"]
    except IndexError as exc:
        got = type(exc)
    assert got == want


def test_typo_into_a_mask_keeps_the_separators_rebuild_gives() -> None:
    """A typo that happens to spell ``[MASK]`` next to a CJK unit, or a replacement that would glue two units."""
    text = "猫[MASJ]犬 ab猫cd"
    units = Tokenizer.words(text)
    params = {"edits": [[i, j, ch] for i, w in enumerate(units) for j, ch in ((len(w) - 2, "K"), (0, ";"))
                        if 0 <= j < len(w)]}
    assert Typo().transform(Sample("k", {"text": text}), params)["text"] == reference_edited(text, params)


@pytest.mark.parametrize("name", ["long", "long_cjk", "cjk", "emoji", "mask"])
def test_batched_typo_equals_per_sample(name: str) -> None:
    rec = load_recipe({"seed": 5, "text": [{"op": "typo", "p": 1.0, "p_word": 0.3}]})
    samples = [Sample(f"k{i}", {"text": TEXTS[name] if i % 2 == 0 else TEXTS["short"]}) for i in range(4)]
    per = [rec.apply_sample(s) for s in samples]
    batch = rec.apply_batched(collate(samples))
    assert batch["text"] == [s["text"] for s in per]
    ids, lengths = default_tokenizer().encode_batch([s["text"] for s in per])
    assert bool((batch["tokens"] == ids).all()) and batch.lengths["tokens"].tolist() == lengths.tolist()


def test_the_reference_is_the_base_kernel() -> None:
    """``TextOp._edited`` (every unit rebuilt) is the reference the fast kernel is checked against."""
    op = Typo(p_word=0.5)
    text = TEXTS["long_cjk"]
    params = op.word_params(param_rng(1, 0, "k", 0), Tokenizer.words(text))
    assert TextOp._edited(op, text, params) == reference_edited(text, params) == op._edited(text, params)


if __name__ == "__main__" and "--record" in sys.argv:
    record()
