"""The text ops give byte for byte what they gave before they were made fast on huge texts (known limit: a
400,000-word caption took seconds to minutes in ``mmdata preview``, a :class:`~mmdata.text.Unit` object per
word and the whole text rebuilt unit by unit): the same output text, the same params (the replay log) and the
same draws consumed, for any input, so the demo's figures and replay logs stay as they are.

Two checks:

* a golden file of digests (``golden/text_ops_outputs.json``, recorded with the code as it was at commit
  e8eaadb, before the change) of the text and the aug log for every text op x params x text below x seed x
  epoch, and for the recipes of ``recipes/`` that have text ops;
* a frozen copy of the code as it was (below: every op's draws, and the straightforward kernel — every unit
  of the text a :class:`~mmdata.text.Unit`, :meth:`~mmdata.text.Tokenizer.rebuild` on all of them) against
  the ops on hypothesis' texts — Latin, CJK, Devanagari, combining marks, emoji sequences, ``[MASK]``,
  whitespace runs, tabs, line breaks — and on params the draws never give (a replay log's or a user's:
  repeated, negative or out-of-range positions): the same text, or the same error. The batched kernel gives
  the per-sample texts.

Regenerate the golden file only when a change of output is intended:
``.venv/bin/python tests/augment/test_text_ops_equivalence.py --record``.
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
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdata import Sample
from mmdata.augment import load_recipe
from mmdata.augment import text as text_ops
from mmdata.augment.text import MaxTokens, TokenMask, Typo, WordCrop, WordDelete, WordSwap, _carries_mark, _put, char_map
from mmdata.rng import param_rng
from mmdata.text import MASK_TOKEN, Tokenizer, default_tokenizer
from mmdata.types import collate

GOLDEN = Path(__file__).parent / "golden" / "text_ops_outputs.json"
RECIPES = Path(__file__).parents[2] / "recipes"


def _long(n: int, seed: int, cjk: bool = False) -> str:
    """``n`` words of mixed case, punctuation, accents (and CJK / Devanagari runs), with spaces, a few double
    spaces, tabs and line breaks."""
    r = random.Random(seed)
    vocab = ["the", "Photo", "of", "a", "cat", "sitting", "on", "mat.", "quickly,", "ZEBRA", "don't", "e-mail",
             "42", "x_y", "(par)", "naïve", "Zürich", "[MASK]", "over", "lazy", "dogs!", "mm", "rn", "0O1l",
             "नमस्ते", "हिन्दी।", "cafe\u0301", "👍🏽", "«quote»"]
    han = "一张照片户外的猫我爱编程很有趣テストかな한국어，。"
    out = []
    for _ in range(n):
        w = "".join(r.choice(han) for _ in range(r.randint(1, 4))) if cjk and r.random() < 0.3 else r.choice(vocab)
        out.append(w)
        out.append(r.choice([" "] * 12 + ["  ", "\n", "\r\n", "\t", ""]) if cjk else r.choice([" "] * 20 + ["  ", "\n", "\t"]))
    return "".join(out).strip()


TEXTS = {
    "empty": "",
    "spaces": "  \t \n ",
    "one": "a",
    "one_padded": "  word\n",
    "two": "hello world",
    "short": "A photo of a cat, sitting on the mat!",
    "runs": "  lead   spaces\t\ttabs\n\nlines \r\n crlf  trail  ",
    "punct": "... !!! ?? (a) [b] {c} -- __ @x #y 'q' \"dq\" ,;:",
    "crlf": "first line\r\nsecond line\r\n\r\nthird ",
    "mask": "the [MASK] sat on [MASK] mat [MASK]",
    "cjk": "一张照片，户外的猫。我爱Python编程\r\n很有趣 テスト ｶﾞｷﾞ 한국어 문장 A「引用」B",
    "cjk_dense": "猫[MASK]犬ab猫cd我爱编程很有趣一张照片户外的猫",
    "emoji": "family 👨\u200d👩\u200d👧\u200d👦 thumbs 👍🏽 flag 🏳️\u200d🌈 ok✨ x",
    "nfd": "cafe\u0301 na\u0308ive o\u0308 Zu\u0308rich e\u0301\u0301",
    "devanagari": "नमस्ते दुनिया। यह एक परीक्षण है\tहिन्दी  पाठ",
    "mixed": "Hello,world! 42 x_y@z.com (par) 'quote' ﬁne Ω ß İ ΑΒΓ \u00a0nbsp\u3000ideo",
    "ocr": "0O1lI5S8B mm rn vv cl d 2Z",
    "long": _long(3000, 0),
    "long_cjk": _long(1500, 1, cjk=True),
}

#: every text op with the params the recipes use and the edges (all or nothing drawn, keep_at_least binding)
OPS: dict[str, dict[str, Any]] = {
    "token_mask_0.15": {"op": "token_mask", "p_token": 0.15},
    "token_mask_0.6": {"op": "token_mask", "p_token": 0.6},
    "token_mask_1": {"op": "token_mask", "p_token": 1.0},
    "word_delete_0.1": {"op": "word_delete", "p_word": 0.1, "keep_at_least": 1},
    "word_delete_0.5_k0": {"op": "word_delete", "p_word": 0.5, "keep_at_least": 0},
    "word_delete_0.9_k3": {"op": "word_delete", "p_word": 0.9, "keep_at_least": 3},
    "word_delete_1_k1": {"op": "word_delete", "p_word": 1.0, "keep_at_least": 1},
    "word_swap_1": {"op": "word_swap", "n_swaps": [1, 1]},
    "word_swap_0_5": {"op": "word_swap", "n_swaps": [0, 5]},
    "word_swap_20_40": {"op": "word_swap", "n_swaps": [20, 40]},
    "word_crop_0.5_1": {"op": "word_crop", "fraction": [0.5, 1.0]},
    "word_crop_0_0.3": {"op": "word_crop", "fraction": [0.0, 0.3]},
    "word_crop_1": {"op": "word_crop", "fraction": [1.0, 1.0]},
    "max_tokens_1": {"op": "max_tokens", "n": 1},
    "max_tokens_5": {"op": "max_tokens", "n": 5},
    "max_tokens_32": {"op": "max_tokens", "n": 32},
    "typo_kb_0.2": {"op": "typo", "p_word": 0.2, "kind": "keyboard"},
    "typo_kb_1": {"op": "typo", "p_word": 1.0, "kind": "keyboard"},
    "typo_ocr_0.5": {"op": "typo", "p_word": 0.5, "kind": "ocr"},
}
OP_CASES = [(op, name, seed) for op in OPS for name in TEXTS for seed in range(4)]


def _recipe_texts() -> dict[str, dict[str, Any]]:
    """Every recipe in recipes/ (an ablation's design recipe too) with text ops, as its text sections (normalize
    and train, ``p`` as written)."""
    out: dict[str, dict[str, Any]] = {}

    def ops(section: Any) -> list[dict[str, Any]]:
        ok = isinstance(section, list) and all(isinstance(o, dict) and "op" in o for o in section)
        return section if ok else []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        norm = ops((node.get("normalize") or {}).get("text")) if isinstance(node.get("normalize"), dict) else []
        train = ops(node.get("text"))
        if norm or train:
            out[where] = {"seed": 0, "text": train, **({"normalize": {"text": norm}} if norm else {})}
            return
        for k, v in node.items():
            walk(v, f"{where}/{k}")

    for path in sorted(RECIPES.rglob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")), str(path.relative_to(RECIPES)))
    return out


RECIPE_TEXTS = _recipe_texts()
# the same at p = 1 (every op applied, some_of's children too): each text op of each recipe edits every case
RECIPE_TEXTS.update({f"{k}@p1": {**r, "text": [{**o, "p": 1.0} for o in r["text"]]} for k, r in list(RECIPE_TEXTS.items())})
RECIPE_CASES = [(r, name, seed, epoch) for r in RECIPE_TEXTS for name in TEXTS for seed in range(3) for epoch in range(2)]


def _digest(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _digests(text: str, log: list[Any]) -> str:
    return _digest(text + "\x00" + json.dumps(log, sort_keys=True))


def _run_op(op: str, name: str, seed: int) -> tuple[str, list[Any]]:
    rec = load_recipe({"seed": seed, "text": [{**OPS[op], "p": 1.0}]})
    out = rec.apply_sample(Sample("k", {"text": TEXTS[name]}), epoch=0)
    return out["text"], out.meta["aug"]


def _run_recipe(recipe: str, name: str, seed: int, epoch: int) -> tuple[str, list[Any]]:
    rec = load_recipe({**RECIPE_TEXTS[recipe], "seed": seed})
    out = rec.apply_sample(Sample(f"s{seed}", {"text": TEXTS[name]}), epoch=epoch)
    return out["text"], out.meta["aug"]


def _all_cases() -> dict[str, str]:
    got = {}
    for case in OP_CASES:
        got["op/" + "/".join(map(str, case))] = _digests(*_run_op(*case))
    for rcase in RECIPE_CASES:
        got["recipe/" + "/".join(map(str, rcase))] = _digests(*_run_recipe(*rcase))
    return got


def record() -> None:
    got = _all_cases()
    GOLDEN.write_text(json.dumps({"about": "text ops: sha256[:16] of the text, a NUL and the aug log (JSON) per case; see "
                                           "tests/augment/test_text_ops_equivalence.py",
                                  "cases": got}, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(got)} cases to {GOLDEN}")


def test_the_recipes_with_text_ops_are_covered() -> None:
    assert {"avdigits.yaml", "full_example.yaml", "messy_folder.yaml", "spatial_audit.yaml",
            "ablations/avdigits_loo.yaml/design/recipe"} <= set(RECIPE_TEXTS)
    used = {o["op"] for r in RECIPE_TEXTS.values() for o in r["text"]}
    assert {"token_mask", "typo", "some_of"} <= used


def test_text_ops_match_the_golden_file() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]
    got = _all_cases()
    assert set(golden) == set(got)
    changed = sorted(k for k in got if got[k] != golden[k])
    assert changed == [], f"{len(changed)} of {len(got)} cases changed, e.g. {changed[:5]}"


def test_the_golden_cases_edit_something() -> None:
    """The cases exercise every op: on the long text each one changes the text, with many edits."""
    for op in OPS:
        if op != "word_crop_1":
            assert _run_op(op, "long", 0)[0] != TEXTS["long"], op
    text, log = _run_op("token_mask_0.15", "long", 0)
    assert 300 < len(log[0]["params"]["positions"]) < 600


# -- the frozen copy: the code as it was (mmdata/augment/text.py at e8eaadb) ----------------------------------

def _planned(op: Any, drawn: dict[str, Any] | None, words: list[str]) -> dict[str, Any] | None:
    """The params ``sample_params`` gives for ``drawn`` (``old_word_params``): typo's edits on a ``[MASK]``, which it
    never applies, left out (QA38 OCR #8), the draws the same."""
    if isinstance(op, Typo) and drawn is not None:
        return {"edits": [e for e in drawn["edits"] if words[e[0]] != MASK_TOKEN]}
    return drawn


def old_word_params(op: Any, rng: np.random.Generator, words: list[str]) -> dict[str, Any] | None:
    n = len(words)
    if isinstance(op, TokenMask):
        return {"positions": [int(i) for i in np.flatnonzero(rng.random(n) < op.p_token)]}
    if isinstance(op, WordDelete):
        u = rng.random(n)
        drop = np.flatnonzero(u < op.p_word)
        room = max(0, n - op.keep_at_least)
        if len(drop) > room:
            drop = np.sort(drop[np.argsort(u[drop], kind="stable")[:room]])
        return {"positions": [int(i) for i in drop]}
    if isinstance(op, WordSwap):
        k = int(rng.integers(int(op.n_swaps[0]), int(op.n_swaps[1]) + 1))
        return {"swaps": [int(rng.integers(0, n - 1)) for _ in range(k)] if n > 1 else []}
    if isinstance(op, WordCrop):
        k = max(1, int(round(n * rng.uniform(*op.fraction))))
        return {"start": int(rng.integers(0, n - k + 1)), "length": k}
    if isinstance(op, MaxTokens):
        return {"length": op.n} if len(words) > op.n else None
    if isinstance(op, Typo):
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
    raise AssertionError(op)


def old_edit(op: Any, words: list[str], params: dict[str, Any]) -> list[str]:
    if isinstance(op, TokenMask):
        out = list(words)
        for i in params["positions"]:
            out[i] = _put(out[i], MASK_TOKEN)
        return out
    if isinstance(op, WordDelete):
        gone = set(params["positions"])
        return [w for i, w in enumerate(words) if i not in gone]
    if isinstance(op, WordSwap):
        out = list(words)
        for i in params["swaps"]:
            out[i], out[i + 1] = out[i + 1], out[i]
        return out
    if isinstance(op, WordCrop):
        return words[params["start"] : params["start"] + params["length"]]
    if isinstance(op, MaxTokens):
        return words[: params["length"]]
    if isinstance(op, Typo):
        out = list(words)
        for wi, ci, ch in params["edits"]:
            w = out[wi]
            if w != MASK_TOKEN:
                out[wi] = _put(w, w[:ci] + ch + w[ci + 1 :])
        return out
    raise AssertionError(op)


def old_edited(op: Any, text: str, params: dict[str, Any]) -> str:
    units = Tokenizer.units(text)
    edited = old_edit(op, units, params)
    return text if edited == units else Tokenizer.rebuild(text, units, edited)


def old_or_error(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (IndexError, TypeError, ValueError, KeyError) as exc:
        return type(exc)


ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:'!?-_()[]")
                           + ["  ", "   ", "\n", "\r\n", "\t", "\u3000", "\u00a0", "[MASK]", "[MASK] ", " [MASK]",
                              "一", "张", "，", "。", "「", "」", "テ", "ｶﾞ", "한", "न", "म", "स्", "ते", "।",
                              "\u0301", "\u0308", "\u200d", "\u200c", "👍", "🏽", "👨\u200d👩", "\ufe0f", "é", "ß",
                              "Ω", "ﬁ", "İ", "«", "»"])
TEXT = st.lists(ALPHABET, max_size=60).map("".join)


def _op(data: st.DataObject) -> Any:
    spec = data.draw(st.sampled_from([
        {"op": "token_mask", "p_token": st.sampled_from([0.0, 0.15, 0.5, 1.0])},
        {"op": "word_delete", "p_word": st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), "keep_at_least": st.integers(0, 5)},
        {"op": "word_swap", "n_swaps": st.tuples(st.integers(0, 3), st.integers(0, 6)).map(lambda t: [min(t), max(t)])},
        {"op": "word_crop", "fraction": st.tuples(st.floats(0, 1), st.floats(0, 1)).map(lambda t: [min(t), max(t)])},
        {"op": "max_tokens", "n": st.integers(1, 12)},
        {"op": "typo", "p_word": st.sampled_from([0.1, 0.5, 1.0]), "kind": st.sampled_from(["keyboard", "ocr"])},
    ]))
    kwargs = {k: data.draw(v) for k, v in spec.items() if k != "op"}
    cls = {"token_mask": TokenMask, "word_delete": WordDelete, "word_swap": WordSwap, "word_crop": WordCrop,
           "max_tokens": MaxTokens, "typo": Typo}[spec["op"]]
    return cls(**kwargs)


@settings(max_examples=600, deadline=None)
@given(text=TEXT, seed=st.integers(0, 2**32), data=st.data())
def test_every_text_op_equals_the_frozen_copy(text: str, seed: int, data: st.DataObject) -> None:
    """The same params, the same draws consumed, the same text, per-sample and batched."""
    small, text_ops._SMALL = text_ops._SMALL, 0  # the fast kernels on short texts too
    try:
        _every_text_op_equals_the_frozen_copy(text, seed, data)
    finally:
        text_ops._SMALL = small


def _every_text_op_equals_the_frozen_copy(text: str, seed: int, data: st.DataObject) -> None:
    op = _op(data)
    sample = Sample("k", {"text": text})
    a = param_rng(seed, 0, "k", 0)
    b = np.random.Generator(np.random.PCG64(0))
    b.bit_generator.state = a.bit_generator.state
    params = op.sample_params(a, sample)
    words = Tokenizer.words(text)
    want = old_word_params(op, b, words) if words else None
    assert params == _planned(op, want, words)
    assert a.bit_generator.state == b.bit_generator.state  # a composite's next op draws alike
    if params is None:
        return
    got = op.transform(sample, params)["text"]
    assert got == old_edited(op, text, params)
    batch = op.apply_batch(collate([sample]), [{"applied": True, **params}])
    assert batch["text"] == [got]
    assert batch["tokens"][0, : batch.lengths["tokens"][0]].tolist() == default_tokenizer().encode(got)


@settings(max_examples=600, deadline=None)
@given(text=TEXT, data=st.data())
def test_every_text_op_equals_the_frozen_copy_on_any_params(text: str, data: st.DataObject) -> None:
    """Params a replay log or a user can give: repeated, unsorted, negative or out-of-range positions, a crop
    past the end or of negative length: the same text, or the same error."""
    small, text_ops._SMALL = text_ops._SMALL, 0  # the fast kernels on short texts too
    try:
        _every_text_op_equals_the_frozen_copy_on_any_params(text, data)
    finally:
        text_ops._SMALL = small


def _every_text_op_equals_the_frozen_copy_on_any_params(text: str, data: st.DataObject) -> None:
    n = len(Tokenizer.words(text))
    op = _op(data)
    idx = st.integers(-n - 2, n + 2)
    if isinstance(op, (TokenMask, WordDelete)):
        params = {"positions": data.draw(st.lists(idx, max_size=12))}
    elif isinstance(op, WordSwap):
        params = {"swaps": data.draw(st.lists(idx, max_size=8))}
    elif isinstance(op, WordCrop):
        params = {"start": data.draw(idx), "length": data.draw(st.integers(-2, n + 3))}
    elif isinstance(op, MaxTokens):
        params = {"length": data.draw(st.integers(-2, n + 3))}
    else:
        edit = st.tuples(idx, st.integers(-3, 12), st.sampled_from(["x", "Q", "", " ", "一", "\u0301", "[", "]", "7"]))
        params = {"edits": data.draw(st.lists(edit.map(list), max_size=8))}
    want = old_or_error(old_edited, op, text, params)
    got = old_or_error(lambda: op.transform(Sample("k", {"text": text}), params)["text"])
    assert got == want


@settings(max_examples=800, deadline=None)
@given(text=TEXT, p_word=st.sampled_from([0.05, 0.3, 0.7, 1.0]), kind=st.sampled_from(["keyboard", "ocr"]),
       seed=st.integers(0, 2**32), spare=st.booleans())
def test_typo_bulk_draws_equal_the_draws_one_at_a_time(text: str, p_word: float, kind: str, seed: int, spare: bool) -> None:
    """typo's draws in bulk (raw PCG64 outputs) on any text, short ones too: the same edits, and the generator
    left in the same state, a 32-bit half kept included (``spare``: the generator holds one to start with)."""
    words = Tokenizer.words(text)
    op = Typo(p_word=p_word, kind=kind)
    a = param_rng(seed, 0, "k", 0)
    if spare:
        a.integers(3)
    b = np.random.Generator(np.random.PCG64(0))
    b.bit_generator.state = a.bit_generator.state
    bulk = text_ops._typo_bulk(op, a, words)
    want = old_word_params(op, b, words)["edits"]
    if bulk is None:  # numpy would have drawn again: the generator as it was, the caller draws one at a time
        b.bit_generator.state = a.bit_generator.state
        return
    assert bulk == want
    assert a.bit_generator.state == b.bit_generator.state


def test_typo_bulk_on_long_texts() -> None:
    """Long texts (past :data:`~mmdata.augment.text._TYPO_BULK`: the bulk draw) as the draws one at a time."""
    words = Tokenizer.words(_long(5000, 3, cjk=True))
    for seed in range(5):
        op = Typo(p_word=0.3, kind="keyboard" if seed % 2 else "ocr")
        a, b = param_rng(seed, 1, "x", 0), np.random.Generator(np.random.PCG64(0))
        b.bit_generator.state = a.bit_generator.state
        assert op.word_params(a, words) == old_word_params(op, b, words)
        assert a.bit_generator.state == b.bit_generator.state


class _Scripted:
    """A bit generator's face (``state``, ``random_raw``) over scripted raw outputs."""

    def __init__(self, outputs: list[int]) -> None:
        self.outputs, self.at = outputs, 0
        self.state = {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 0, "state": {"state": 0, "inc": 1}}

    def random_raw(self, count: int) -> np.ndarray:
        out = (self.outputs + [2**64 - 1] * (self.at + count))[self.at : self.at + count]
        self.at += count
        return np.array(out, dtype=np.uint64)


def test_typo_bulk_gives_up_where_numpy_may_draw_again() -> None:
    """An integer draw whose 32-bit half ``h`` has ``h * k % 2**32 < k`` (Lemire's rejection test): numpy may draw
    again, so the bulk draw gives None and leaves the generator's state as it found it."""
    class Rng:
        bit_generator = _Scripted([0, 0, 2**64 - 1])  # word 0 drawn (double 0), then a half of 0: 0 * 5 < 5
    before = dict(Rng.bit_generator.state)
    assert text_ops._typo_bulk(Typo(p_word=0.5), Rng, ["abcde"] * 3) is None
    assert Rng.bit_generator.state == before



@pytest.mark.parametrize("op", list(OPS))
def test_long_texts_equal_the_frozen_copy(op: str) -> None:
    """A 20,000-word text (Latin, CJK and Devanagari; tabs, line breaks, no separator between CJK units)."""
    text = _long(20000, 7, cjk=True)
    cls = {"token_mask": TokenMask, "word_delete": WordDelete, "word_swap": WordSwap, "word_crop": WordCrop,
           "max_tokens": MaxTokens, "typo": Typo}[OPS[op]["op"]]
    inst = cls(**{k: v for k, v in OPS[op].items() if k != "op"})
    a = param_rng(5, 0, "k", 0)
    b = np.random.Generator(np.random.PCG64(0))
    b.bit_generator.state = a.bit_generator.state
    params = inst.sample_params(a, Sample("k", {"text": text}))
    assert params == _planned(inst, old_word_params(inst, b, Tokenizer.words(text)), Tokenizer.words(text))
    assert a.bit_generator.state == b.bit_generator.state
    want = old_edited(inst, text, params)
    assert inst.transform(Sample("k", {"text": text}), params)["text"] == want
    # batched, beside a short row: the long row's ids (past the tokenizer's window) re-encoded from its text
    short = Sample("s", {"text": "a short caption"})
    sp = inst.sample_params(param_rng(5, 0, "s", 0), short)
    rows = [{"applied": True, **params}, {"applied": True, **sp} if sp is not None else {"applied": False}]
    batch = inst.apply_batch(collate([Sample("k", {"text": text}), short]), rows)
    texts = [want, old_edited(inst, short["text"], sp) if sp is not None else short["text"]]
    ids, lengths = default_tokenizer().encode_batch(texts)
    assert batch["text"] == texts
    assert batch["tokens"].shape == ids.shape and bool((batch["tokens"] == ids).all())
    assert batch.lengths["tokens"].tolist() == lengths.tolist()


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        print(__doc__)
