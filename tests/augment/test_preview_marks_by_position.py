"""QA33 preview captions: a unit ``token_mask`` masked is drawn in its place (``[-w-] ⟨[MASK]⟩``) even where
units repeat, as its logged positions say (multilingual #3); the placeholder count is said to be code points,
and a CJK run counts characters (#12)."""

from __future__ import annotations

import re
import unicodedata as ud
from pathlib import Path

import pytest

import mmdata
from mmdata.augment import preview as pv
from mmdata.augment.preview import missing_glyphs_note, placeholder_cjk
from mmdata.augment.recipe import load_recipe
from mmdata.text import Tokenizer
from mmdata.types import Sample

TEXTS = ["猫猫猫猫猫猫猫猫 狗狗狗狗", "the the the the the the cat cat cat", "的的的猫的的"]


def _want(text: str, positions: list[int]) -> list[str]:
    return [f"[-{u}-]" if i in positions else u for i, u in enumerate(Tokenizer.words(text))]


@pytest.mark.parametrize("text", TEXTS)
def test_logged_masks_of_repeated_units_are_drawn_in_place(text: str) -> None:
    rec = load_recipe({"seed": 0, "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.4}]})
    for epoch in range(4):
        out = rec.apply_sample(Sample("k", {"text": text}), epoch=epoch)
        positions = out.meta["aug"][0]["params"]["positions"]
        drawn, marks, _ = pv._diff(text, out["text"], pv._in_place(out.meta["aug"]))
        units = Tokenizer.words(drawn.replace("⟨[MASK]⟩", ""))
        assert "".join(units) == "".join(_want(text, positions)), (epoch, positions, drawn)
        assert drawn.count("⟨[MASK]⟩") == len(positions)
        assert marks == ({"masked"} if positions else set())


def test_the_report_example_is_drawn_in_place() -> None:
    before = "猫猫猫猫猫猫猫猫 狗狗狗狗"
    units = Tokenizer.units(before)
    after = Tokenizer.rebuild(before, units, [u.replaced_by("[MASK]") if u.index in (0, 1, 2, 7, 9, 11) else u
                                              for u in units])
    assert pv._diff(before, after, True)[0] == ("[-猫-] ⟨[MASK]⟩ [-猫-] ⟨[MASK]⟩ [-猫-] ⟨[MASK]⟩ 猫猫猫猫 [-猫-] ⟨[MASK]⟩ "
                                                "狗 [-狗-] ⟨[MASK]⟩ 狗 [-狗-] ⟨[MASK]⟩")
    assert pv._diff(before, after)[0] != pv._diff(before, after, True)[0]  # a string diff alone: elsewhere


def test_which_logs_edit_in_place() -> None:
    mask = {"op": "text.token_mask", "params": {"positions": [0]}}
    assert pv._in_place([mask, {"op": "sample.consistent_hflip", "params": {}}, {"op": "image.hflip", "params": {}}])
    assert not pv._in_place([mask, {"op": "text.word_swap", "params": {"pairs": [[0, 1]]}}])
    assert pv._in_place([mask, {"op": "text.word_delete", "params": {"applied": False}}])  # did not fire
    assert not pv._in_place([{"op": "normalize.text.max_tokens", "params": {"length": 2}}])


def test_preview_grid_draws_masks_in_place(tmp_path: Path) -> None:
    from matplotlib.text import Text
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    for i, c in enumerate(TEXTS[:2]):
        Image.new("RGB", (16, 16)).save(raw / f"s{i}.png")
        (raw / f"s{i}.txt").write_text(c, encoding="utf-8")
    mmdata.shard(raw, tmp_path / "d", progress=False)
    summary: list[dict] = []
    recipe = {"seed": 0, "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.4}],
              "sample": [{"op": "consistent_hflip", "p": 1.0}]}
    fig = pv.preview_figure(tmp_path / "d", recipe, n=2, variants=2, summary=summary)
    drawn = [t.get_text().replace("\n", " ") for t in fig.findobj(Text) if "⟨[MASK]⟩" in t.get_text()]
    assert drawn
    for caption in drawn:  # each mask right after the unit it replaced, struck: none inserted elsewhere
        assert caption.count("⟨[MASK]⟩") == len(re.findall(r"-\] ⟨\[MASK\]⟩", caption)), caption
    for row in summary:
        for v in row["variants"]:
            assert "moved" not in v["text_marks"] and "new" not in v["text_marks"], row


def test_placeholder_counts_are_explained_and_cjk_counts_characters() -> None:
    assert "code points" in missing_glyphs_note(["Devanagari"])
    assert placeholder_cjk(ud.normalize("NFD", "ガギ")) == placeholder_cjk("ガギ") == "⟦CJK ×2⟧"
