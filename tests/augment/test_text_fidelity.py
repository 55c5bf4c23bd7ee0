"""Text ops keep what they do not edit: ``[MASK]`` units, grapheme clusters, the separators between kept
units, and the words beyond the tokenizer's window. Each test reproduces a QA defect:

* 1: ``typo`` after ``token_mask`` turned ``[MASK]`` into ``[MASI]``, ``[MXSK]``... (no mask id survived);
* 2: combining marks (kana voicing marks, half-width ﾞ/ﾟ, variation selectors, any category M*) were units
  of their own, so ``max_tokens`` / ``word_delete`` / ``word_crop`` / ``word_swap`` split or stranded them;
* 3: ``word_delete``'s device kernel did not refill the 64-token window from the words beyond it, as the
  workers' ``encode(edited text)`` does (lengths 38 vs 64 on a 100-word caption);
* 4: an edit re-joined the kept units with its own spacing: spaces between CJK and non-CJK units, line
  breaks lost.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment.recipe import load_recipe
from mmdata.text import MASK_ID, MASK_TOKEN, Tokenizer, default_tokenizer

FIELDS = ("text",)
#: every op that edits units, with settings that edit most texts
EDITS: list[dict[str, Any]] = [
    {"op": "token_mask", "p_token": 0.5},
    {"op": "word_delete", "p_word": 0.4},
    {"op": "word_swap", "n_swaps": [1, 4]},
    {"op": "word_crop", "fraction": [0.3, 0.8]},
    {"op": "typo", "p_word": 0.7},
    {"op": "max_tokens", "n": 3},
]


def _apply(spec: dict[str, Any], text: str, key: str = "k", epoch: int = 0, seed: int = 0) -> str:
    return load_recipe({"seed": seed, "text": [spec]}).apply_sample(Sample(key, {"text": text}), epoch)["text"]


def _is_extender(ch: str) -> bool:
    """Characters that continue a grapheme cluster (never the first of one)."""
    return unicodedata.category(ch).startswith("M") or ch in "\u200c\u200d\uff9e\uff9f"


# -- 1: typo after token_mask ------------------------------------------------------------------------------------


def test_typo_leaves_mask_units_alone() -> None:
    """QA repro: ``[MASI] sat [MAS.] [MXSK] [MASU] [MAQK] todwy``, 0 mask ids; the masks must survive."""
    masked = load_recipe({"seed": 0, "text": [{"op": "token_mask", "p_token": 0.5}]})
    both = load_recipe({"seed": 0, "text": [{"op": "token_mask", "p_token": 0.5}, {"op": "typo", "p_word": 1.0}]})
    s = Sample("k2", {"text": "a cat sits on the mat today"})
    n_masks = default_tokenizer().encode(masked.apply_sample(s, 0)["text"]).count(MASK_ID)
    assert n_masks > 0
    t = both.apply_sample(s, 0)["text"]
    assert default_tokenizer().encode(t).count(MASK_ID) == n_masks, t
    assert Tokenizer.words(t).count(MASK_TOKEN) == n_masks
    got = both.apply_batched(collate([s], fields=FIELDS))
    assert got["text"] == [t] and got["tokens"][0].tolist().count(MASK_ID) == n_masks


def test_typo_skips_mask_units_and_keeps_its_draws() -> None:
    """An edit drawn for a ``[MASK]`` unit is not applied; the draws stay as they were (every other word's typo
    matches mmdata 0.1's: tests/augment/golden/legacy_params.json), and replay agrees. Since QA38 OCR #8 the log
    no longer lists the edits drawn on masks (they were listed, never applied)."""
    rec = load_recipe({"seed": 0, "text": [{"op": "typo", "p_word": 1.0}]})
    s = Sample("k", {"text": "[MASK] cat [MASK] dog"})
    out = rec.apply_sample(s, 0)
    edits = out.meta["aug"][-1]["params"]["edits"]
    assert sorted(e[0] for e in edits) == [1, 3]  # drawn for every unit, the masks' left out of the log
    units = Tokenizer.words(out["text"])
    assert units[0::2] == [MASK_TOKEN, MASK_TOKEN] and units[1] != "cat" and units[3] != "dog"
    assert rec.replay(s, out.meta["aug"])["text"] == out["text"]


# -- 2: grapheme clusters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    ("か\u3099き\u3099く", "か\u3099き\u3099く"),            # combining voicing marks (inside the Hiragana block)
    ("ｶﾞｷﾞｸ", "ｶﾞｷﾞｸ"),                                     # half-width voiced / semi-voiced marks
    ("葛\U000E0100城市です", "葛\U000E0100城市"),            # ideographic variation selector
    ("禰\ufe00豆子です", "禰\ufe00豆子"),                    # standardized variation selector
    ("パ\u309aン", "パ\u309aン"),
])
def test_max_tokens_keeps_whole_grapheme_clusters(text: str, want: str) -> None:
    """QA repro: ``max_tokens`` n=3 gave 'がき' / 'ｶﾞｷ' / '葛 \\U000e0100 城': a mark counted as a unit."""
    rec = load_recipe({"normalize": {"text": [{"op": "max_tokens", "n": 3}]}})
    assert rec.normalize(Sample("k", {"text": text}))["text"] == want


@pytest.mark.parametrize("text", [
    "か\u3099き\u3099く", "ｶﾞｷﾞｸ", "葛\U000E0100城市です", "cafe\u0301 e\u0301te\u0301 naïve",
    "ก\u0e34น ข\u0e49าว", "猫\u20dd犬", "a\u200d b", "👨\u200d👩\u200d👧 family 👍\U0001F3FD ok",
    "x\u0301\u0302 猫\u0301\u0302, 犬",
])
def test_no_unit_starts_with_a_combining_mark(text: str) -> None:
    units = Tokenizer.words(text)
    assert all(not _is_extender(u[0]) for u in units), units
    assert "".join(units) == "".join(text.split())


def test_emoji_zwj_sequences_stay_whole() -> None:
    assert Tokenizer.words("👨\u200d👩\u200d👧 family") == ["👨\u200d👩\u200d👧", "family"]
    assert Tokenizer.words("猫👩\u200d🔬犬") == ["猫", "👩\u200d🔬", "犬"]


@pytest.mark.parametrize("spec", [e for e in EDITS if e["op"] != "typo"], ids=lambda s: s["op"])
def test_edits_never_strand_a_mark(spec: dict[str, Any]) -> None:
    """``word_delete`` / ``word_crop`` / ``word_swap`` (and the others) left bare leading marks: every mark in
    the output follows the base it followed in the input."""
    text = "か\u3099き\u3099くけ\u3099こ\u3099 ｶﾞｷﾞｸﾞ 葛\U000E0100城\U000E0101市"
    clusters = set(Tokenizer.words(text)) | {MASK_TOKEN}
    for epoch in range(30):
        out = _apply(spec, text, epoch=epoch)
        units = Tokenizer.words(out)
        assert all(not _is_extender(u[0]) for u in units), (epoch, out)
        assert set(units) <= clusters, (epoch, out)


# -- 3: the device kernels beyond the tokenizer's window ---------------------------------------------------------

LONG = [" ".join(f"w{i}" for i in range(100)),
        "".join(chr(0x4E00 + i) for i in range(90)),
        " ".join(f"word{i} 中{chr(0x4E00 + i)}文" for i in range(40)),
        "short caption here"]


@pytest.mark.parametrize("spec", EDITS + [{"op": "max_tokens", "n": 80}], ids=lambda s: f"{s['op']}-{s.get('n', '')}")
def test_device_kernels_agree_with_workers_on_long_captions(spec: dict[str, Any]) -> None:
    """QA repro (``word_delete`` p=0.3, 100 words): lengths 64 (workers) vs 38 (device), device ids !=
    ``encode(text)``. The batched kernel must give the ids of the edited text, refilled past the window."""
    for seed in range(3):
        rec = load_recipe({"seed": seed, "text": [spec]})
        samples = [Sample(f"k{i}", {"text": t}) for i, t in enumerate(LONG)]
        for epoch in range(2):
            ref = collate([rec.apply_sample(s, epoch) for s in samples], fields=FIELDS)
            got = rec.apply_batched(collate(samples, fields=FIELDS), epoch)
            assert got["text"] == ref["text"]
            assert got.lengths["tokens"].tolist() == ref.lengths["tokens"].tolist(), (seed, epoch)
            assert got["tokens"].tolist() == ref["tokens"].tolist(), (seed, epoch)
            for i, t in enumerate(got["text"]):
                n = int(got.lengths["tokens"][i])
                assert got["tokens"][i, :n].tolist() == default_tokenizer().encode(t)


def test_word_delete_on_a_100_word_caption_refills_the_window() -> None:
    rec = load_recipe({"seed": 0, "text": [{"op": "word_delete", "p_word": 0.3}]})
    s = Sample("k", {"text": LONG[0]})
    got = rec.apply_batched(collate([s], fields=FIELDS))
    assert got.lengths["tokens"].tolist() == [64]
    assert got["tokens"][0].tolist() == default_tokenizer().encode(got["text"][0])


def test_loader_batches_agree_on_a_long_caption(tmp_path: Path) -> None:
    """The QA repro end to end: ``mmdata.loader`` with ``augment_on="workers"`` and ``"device"``."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "long.txt").write_text(LONG[0], encoding="utf-8")
    (raw / "short.txt").write_text("a cat on a mat", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rec = {"seed": 0, "text": [{"op": "word_delete", "p_word": 0.3}]}
    w, d = (next(iter(mmdata.loader(tmp_path / "ds", 2, recipe=rec, augment_on=m))) for m in ("workers", "device"))
    assert w.keys == d.keys and w["text"] == d["text"]
    assert w.lengths["tokens"].tolist() == d.lengths["tokens"].tolist() and 64 in d.lengths["tokens"].tolist()
    assert torch.equal(w["tokens"], d["tokens"])


# -- 4: separators ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    ("猫🐱犬🐶が好き", "猫🐱犬🐶が"),
    ("我爱Python编程很有趣", "我爱Python编程"),
    ("one  two\tthree four five six", "one  two\tthree four five"),
    ("x\ny\r\nz 猫 犬 b c", "x\ny\r\nz 猫 犬"),
])
def test_max_tokens_keeps_the_original_separators(text: str, want: str) -> None:
    """QA repro: '猫 🐱 犬 🐶 が' and '我爱 Python 编程': spaces inserted where the text had none."""
    assert _apply({"op": "max_tokens", "n": 5}, text) == want


def test_typo_keeps_line_breaks() -> None:
    """QA repro: typo on a CRLF text lost its line breaks."""
    text = "line one\r\nline two\r\n"
    out = _apply({"op": "typo", "p_word": 1.0}, text)
    assert out != text and out.count("\r\n") == 2 and out.endswith("\r\n") and len(out) == len(text)


def test_a_deletion_leaves_a_space_only_where_the_gap_had_whitespace() -> None:
    rec = load_recipe({"seed": 0, "text": [{"op": "word_delete", "p_word": 0.5}]})
    text = "我爱Python编程 很有趣 a b"
    words = Tokenizer.words(text)
    seen = 0
    for epoch in range(40):
        out = rec.apply_sample(Sample("k", {"text": text}), epoch)
        gone = set(out.meta["aug"][-1]["params"]["positions"])
        kept = [w for i, w in enumerate(words) if i not in gone]
        assert Tokenizer.words(out["text"]) == kept
        if 1 not in gone and 2 not in gone:
            assert "爱Python" in out["text"]
        if 1 in gone and not {0, 2} & gone:
            assert "我Python" in out["text"]
        seen += bool(gone)
    assert seen


@pytest.mark.parametrize("spec", EDITS, ids=lambda s: s["op"])
@pytest.mark.parametrize("text", ["a dog on the left of a red box", "一张照片户外的猫在睡觉"], ids=["en", "zh"])
def test_ordinary_text_comes_out_as_before(spec: dict[str, Any], text: str) -> None:
    """Single-spaced English and unspaced Chinese: the same output as joining the edited units with a space
    between units, none between two CJK units, and spaces around an inserted ``[MASK]`` (the earlier rule)."""
    rec = load_recipe({"seed": 0, "text": [spec]})
    for epoch in range(20):
        out = rec.apply_sample(Sample("k", {"text": text}), epoch)["text"]
        assert out == Tokenizer.join(Tokenizer.words(out)), out


@pytest.mark.parametrize("spec", EDITS, ids=lambda s: s["op"])
def test_edited_text_tokenises_to_the_edited_units(spec: dict[str, Any]) -> None:
    """Whatever the separators, the edited text splits back into exactly the units the op produced (what the
    id kernels assume): units next to each other are never glued or split."""
    texts = ["abc猫def.ghi 犬", "猫.abc 中文(x)字", "a\u200d猫 b", "x [y] 猫[z] {w}犬", "the cat. 猫。犬！ sat"]
    for t in texts:
        rec = load_recipe({"seed": 1, "text": [spec]})
        samples = [Sample(f"k{i}", {"text": t}) for i in range(8)]
        ref = collate([rec.apply_sample(s) for s in samples], fields=FIELDS)
        got = rec.apply_batched(collate(samples, fields=FIELDS))
        assert got["text"] == ref["text"]
        assert got.lengths["tokens"].tolist() == ref.lengths["tokens"].tolist(), t
        assert got["tokens"].tolist() == ref["tokens"].tolist(), t


def test_typo_draws_the_same_edits_for_nfc_and_nfd_text() -> None:
    """QA 2026-12-03: typo on NFD text edited the base letter under a combining mark ('Köln' -> 'K0̈ln'), which
    the NFC form never offers (its 'ö' has no keyboard entry); letters carrying a mark are no candidates."""
    import unicodedata

    from mmdata.augment.recipe import load_recipe
    from mmdata.types import Sample

    text = "Köln öööö Straße naïve"
    for seed in range(20):
        r = load_recipe({"seed": seed, "text": [{"op": "typo", "p": 1.0, "p_word": 1.0}]})
        nfc = r.apply_sample(Sample("k", {"text": unicodedata.normalize("NFC", text)}))["text"]
        nfd = r.apply_sample(Sample("k", {"text": unicodedata.normalize("NFD", text)}))["text"]
        assert unicodedata.normalize("NFC", nfd) == nfc, seed
        assert "öööö" in nfc
