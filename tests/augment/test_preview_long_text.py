"""`mmdata preview` on long and repetitive captions: the caption diff compares what a cell draws.

Before (2026-12) every caption was diffed whole with ``difflib`` (quadratic, worse on repetitive text),
the original column too, against itself: a sample whose caption was ``'word ' * 50000`` kept
``mmdata preview`` running past 100 s (``* 400000``: over 6 minutes), and Zipf text with 15% masks took
26 s a cell at 20k words. Now equal texts are not compared, texts within :data:`DIFF_UNITS` units are
compared whole exactly as before, and longer ones over their first :data:`DIFF_UNITS` units only
(tokenized over a start of the text long enough to hold them), the cell drawing their start, cut with
``...``, and the figure saying so. These tests count the work (units compared, characters tokenized),
never seconds.
"""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmdata
from mmdata.augment import preview as pv
from mmdata.augment.preview import CUT_MARK, DIFF_UNITS, DRAWN_UNITS, mark_changes, preview_figure, text_marks
from mmdata.augment.recipe import load_recipe
from mmdata.testing import make_sample_folder
from mmdata.text import MASK_TOKEN, Tokenizer
from mmdata.types import Sample


def _whole_diff(before: str, after: str) -> tuple[str, set[str]]:
    """The diff as it was before the window (the oracle): both texts whole, one ``difflib`` pass."""
    a, b = Tokenizer.words(before), Tokenizer.words(after)
    out: list[str] = []
    gone: Counter[str] = Counter()
    came: Counter[str] = Counter()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
        if op in ("replace", "delete"):
            out += [f"[-{w}-]" for w in a[i1:i2]]
            gone.update(a[i1:i2])
        if op in ("replace", "insert"):
            out += [f"⟨{w}⟩" for w in b[j1:j2]]
            came.update(b[j1:j2])
    masks = came.pop(MASK_TOKEN, 0)
    moved = gone & came
    gone, came = gone - moved, came - moved
    marks = {"masked"} if masks else set()
    if moved:
        marks.add("moved")
    if sum(gone.values()) > masks:
        marks.add("removed")
    if came:
        marks.add("new")
    return Tokenizer.join(out), marks


class _Counted:
    """Counts what the preview compares (units per side of each ``difflib`` pass) and tokenizes (characters)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compared: list[tuple[int, int]] = []
        self.tokenized = 0
        matcher, words = difflib.SequenceMatcher, Tokenizer.words

        def counting_matcher(*args: Any, a: Any = (), b: Any = (), **kw: Any) -> Any:
            self.compared.append((len(a), len(b)))
            return matcher(*args, a=a, b=b, **kw)

        def counting_words(text: str) -> list[str]:
            self.tokenized += len(text)
            return words(text)

        monkeypatch.setattr(pv.difflib, "SequenceMatcher", counting_matcher)
        monkeypatch.setattr(Tokenizer, "words", staticmethod(counting_words))


def _zipf_text(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(f"w{int(k)}" for k in rng.zipf(1.3, n))


_VOCAB = ["a", "red", "box", "the", "of", "[MASK]", "一", "张", "照", "片，", "Köln", "word"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_VOCAB), max_size=60), st.lists(st.sampled_from(_VOCAB), max_size=60))
def test_captions_a_cell_draws_whole_are_marked_as_before(a: list[str], b: list[str]) -> None:
    before, after = " ".join(a), " ".join(b)
    marked, marks, cut = pv._diff(before, after)
    assert (marked, marks) == _whole_diff(before, after) and not cut
    assert mark_changes(before, after) == marked and text_marks(before, after) == marks


@pytest.mark.parametrize("n", [DRAWN_UNITS, DIFF_UNITS - 1, DIFF_UNITS])
@pytest.mark.parametrize("op", ["token_mask", "word_delete", "word_swap"])
def test_captions_up_to_the_window_are_compared_whole(n: int, op: str) -> None:
    text = _zipf_text(n, seed=n)
    after = load_recipe({"text": [{"op": op, "p": 1.0}]}).apply_sample(Sample("k", {"text": text}), epoch=0)["text"]
    assert pv._diff(text, after) == (*_whole_diff(text, after), False)


def test_equal_texts_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    assert pv._diff("a red box", "a red box") == ("a red box", set(), False)
    marked, marks, cut = pv._diff("word " * 50000, "word " * 50000)
    assert counted.compared == [] and marks == set() and cut
    assert Tokenizer.words(marked) == ["word"] * DRAWN_UNITS + [CUT_MARK]


@pytest.mark.parametrize("n", [50_000, 400_000])
def test_the_work_is_bounded_however_long_the_caption(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """QA's repro sizes: the work does not grow with the caption (the old diff: > 100 s and > 6 min)."""
    rng = np.random.default_rng(0)
    words = ["word"] * n
    masked = " ".join(MASK_TOKEN if rng.random() < 0.15 else w for w in words)
    counted = _Counted(monkeypatch)
    marked, marks, cut = pv._diff(" ".join(words), masked)
    assert cut and marked.endswith(" " + CUT_MARK) and "masked" in marks
    assert counted.compared and all(max(sides) <= DIFF_UNITS for sides in counted.compared)
    assert counted.tokenized <= 2 * 4 * 16 * (DIFF_UNITS + 2)  # a start of each text, not its 2 MB


@pytest.mark.parametrize(("op", "marks"), [({"op": "token_mask"}, {"masked"}), ({"op": "word_delete"}, {"removed"}),
                                           ({"op": "word_swap", "n_swaps": [40, 40]}, {"moved"})])
def test_a_long_captions_drawn_start_is_the_whole_diffs_start(op: dict[str, Any], marks: set[str]) -> None:
    """1500 words (the whole diff still feasible): the window draws what the whole diff drew there, and
    its marks are the ones of the edits drawn (40 swaps: some fall in the drawn start)."""
    text = _zipf_text(1500, seed=3)
    after = load_recipe({"text": [{**op, "p": 1.0}]}).apply_sample(Sample("k", {"text": text}), epoch=0)["text"]
    marked, got, cut = pv._diff(text, after)
    whole, _ = _whole_diff(text, after)
    assert "[-" in " ".join(Tokenizer.words(whole)[:DRAWN_UNITS])  # an edit is drawn
    assert cut and Tokenizer.words(marked) == Tokenizer.words(whole)[:DRAWN_UNITS] + [CUT_MARK]
    assert got == marks


def test_a_mask_across_the_cut_is_not_a_removal() -> None:
    words = [f"w{i}" for i in range(DIFF_UNITS + 50)]
    masked = list(words)
    masked[DRAWN_UNITS - 2: DRAWN_UNITS + 3] = [MASK_TOKEN] * 5  # a replace of five drawn across the cut
    marked, marks, cut = pv._diff(" ".join(words), " ".join(masked))
    assert cut and marks == {"masked"} and len(Tokenizer.words(marked)) == DRAWN_UNITS + 1


@pytest.fixture(scope="module")
def long_caption(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QA's repro: one sample (an image, ``'word ' * 50000`` as its caption), sharded."""
    root = tmp_path_factory.mktemp("longtext")
    raw = make_sample_folder(root / "raw", n=1, missing=False)
    (txt,) = raw.glob("*.txt")
    txt.write_text("word " * 50000, encoding="utf-8")
    mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def test_preview_of_a_50000_word_caption_draws_its_start_and_says_so(long_caption: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    recipe = Path(__file__).parents[2] / "recipes" / "messy_folder.yaml"
    fig = preview_figure(long_caption, recipe, n=1, variants=2)
    assert all(max(sides) <= DIFF_UNITS for sides in counted.compared)
    # a caption is drawn as a text per run of one colour (QA27 A13): its panel's texts, joined
    texts = [t.get_text() for t in fig.texts] + ["\n".join(t.get_text() for t in ax.texts) for ax in fig.axes]
    captions = [t for t in texts if t.endswith("label: 0")]
    assert len(captions) == 4  # original, normalized (max_tokens 32: not cut), 2 epochs
    # wrapped at spaces (not per character, as CJK text is: the cut mark is no CJK punctuation)
    assert all(line.endswith(("word", "⟩", "-]", "…")) for c in captions for line in c.split("\n")[:-1])
    assert all(c.split("\n")[-2].endswith(" …") for c in captions)
    assert any(f"captions over {DIFF_UNITS} words" in t for t in texts)


def test_ordinary_captions_say_nothing_of_a_cut(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    fig = preview_figure(tmp_path / "ds", {"text": [{"op": "token_mask", "p": 1.0}]}, n=3, variants=1)
    assert not any("captions over" in t.get_text() for t in fig.texts)
