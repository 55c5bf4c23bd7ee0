"""`mmdata preview` on captions and clips QA found drawn badly, each silently:

* Devanagari and emoji captions drew as empty boxes (matplotlib's "Glyph missing" warning was silenced):
  now characters no caption font has are visible placeholders (``⟦Devanagari ×6⟧``, ``⟦U+1F389⟧``),
  noted once under the grid and as a warning; Arabic, Hebrew and CJK still draw as text.
* a 100,000-character caption of one unbreakable word ran across the next columns and off the PNG: now
  every caption line fits its cell's width, the cut one ending ``… (100,000 chars)``.
* a 1-sample clip drew empty waveform and spectrogram boxes: now the panels say it is too short.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.augment import preview as pv
from mmdata.augment.preview import placeholder_missing, preview, preview_figure
from mmdata.testing import make_sample_folder

TEXTS = ("नमस्ते दुनिया hello", "party 🎉 time", "مرحبا بالعالم", "שלום עולם", "一张照片 photo", "W" * 100_000)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scripts")
    raw = make_sample_folder(root / "raw", n=len(TEXTS), missing=False)
    for i, text in enumerate(TEXTS):
        (raw / f"{i:06d}.txt").write_text(text, encoding="utf-8")
    sf.write(raw / "000002.flac", np.array([0.5], np.float32), 8000, format="FLAC", subtype="PCM_16")
    mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def _figure(ds: Path) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fig = preview_figure(ds, {"image": [{"op": "hflip"}]}, n=len(TEXTS), variants=2)
    return fig, [str(w.message) for w in got]


def _texts(fig: object) -> list[object]:
    return [t for ax in fig.axes for t in ax.texts] + list(fig.texts)  # type: ignore[attr-defined]


def test_characters_no_font_has_are_placeholders_noted_once(ds: Path) -> None:
    fig, said = _figure(ds)
    drawn = " ".join(t.get_text() for t in _texts(fig)).replace("\n", " ")  # lines wrapped by drawn width
    assert "⟦Devanagari ×6⟧ ⟦Devanagari ×6⟧" in drawn and "नमस्ते" not in drawn
    assert "party ⟦U+1F389⟧ time" in drawn and "🎉" not in drawn
    assert "مرحبا بالعالم" in drawn and "שלום עולם" in drawn  # these fonts have: drawn as text
    if pv.cjk_font() is not None:
        assert "一张照片 photo" in drawn
    notes = [t.get_text().replace("\n", " ") for t in fig.texts  # type: ignore[attr-defined]
             if "not drawn" in t.get_text().replace("\n", " ")]
    assert len(notes) == 1 and "Devanagari, emoji / symbols not drawn" in notes[0]
    assert [m for m in said if "Devanagari" in m] == [f"preview: {pv.missing_glyphs_note(['Devanagari', 'emoji / symbols'])}"]


def test_no_caption_draws_a_glyph_no_font_has(ds: Path) -> None:
    fig, _ = _figure(ds)
    cjk = pv.cjk_font()
    for t in _texts(fig):
        if t.get_fontsize() == pv.CAPTION_PT:  # the captions
            assert all(ch.isspace() or pv._glyph_font(ch, cjk) is not None for ch in t.get_text()), t.get_text()


def test_placeholders_by_script_and_code_point() -> None:
    assert placeholder_missing("ok 🎉🎊 x") == ("ok ⟦U+1F389 U+1F38A⟧ x", ["emoji / symbols"])
    assert placeholder_missing("தமிழ்") == ("⟦Tamil ×5⟧", ["Tamil"])
    assert placeholder_missing("Köln שלום") == ("Köln שלום", [])


def test_long_unbreakable_caption_stays_in_its_cell(ds: Path) -> None:
    fig, _ = _figure(ds)
    fig.canvas.draw()  # type: ignore[attr-defined]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    long = [t for t in _texts(fig) if t.get_text().startswith("WWW")]
    assert len(long) == 3 and all("… (100,000 chars)" in t.get_text() for t in long)
    lefts = sorted(t.get_window_extent(renderer).x0 for t in long)
    for t in long:
        box = t.get_window_extent(renderer)
        nxt = [x for x in lefts if x > box.x0 + 1]
        assert box.x1 <= (nxt[0] if nxt else fig.bbox.x1)  # type: ignore[attr-defined]
        assert len(t.get_text().split("\n")) <= pv.CAPTION_LINES + 1  # the text's lines and its label


def test_a_one_sample_clip_says_it_is_too_short(ds: Path) -> None:
    fig, _ = _figure(ds)
    drawn = [t.get_text() for t in _texts(fig)]
    assert drawn.count("1 sample — too short to draw") == 3
    assert sum(t.startswith("1 sample: too short for a spectrogram") for t in drawn) == 3


def test_same_input_same_png_bytes(ds: Path, tmp_path: Path) -> None:
    a = preview(ds, {"image": [{"op": "hflip"}]}, tmp_path / "a.png", n=len(TEXTS), variants=1).read_bytes()
    b = preview(ds, {"image": [{"op": "hflip"}]}, tmp_path / "b.png", n=len(TEXTS), variants=1).read_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()


# ---- second QA pass: script punctuation, the note's width, placeholders cut, the gap between columns ----

#: a letter of each of 16 scripts DejaVu Sans lacks (two captions of 8 scripts each)
SCRIPTS = ("क", "ক", "ਕ", "ક", "କ", "க", "క", "ಕ", "ക", "ක", "ཀ", "က", "ሀ", "ក", "ᠠ", "ก")


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many_scripts")
    raw = make_sample_folder(root / "raw", n=2, missing=False)
    for i in range(2):
        (raw / f"{i:06d}.txt").write_text(" ".join(SCRIPTS[8 * i: 8 * i + 8]), encoding="utf-8")
    mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def test_script_punctuation_counts_as_its_script() -> None:
    assert placeholder_missing("नमस्ते।") == ("⟦Devanagari ×7⟧", ["Devanagari"])  # danda U+0964
    assert placeholder_missing("ሰላም፡ዓለም።") == ("⟦Ethiopic ×8⟧", ["Ethiopic"])  # wordspace, full stop
    assert placeholder_missing("བཀྲ་ཤིས") == ("⟦Tibetan ×7⟧", ["Tibetan"])  # tsheg U+0F0B
    assert placeholder_missing("। x") == ("⟦Devanagari ×1⟧ x", ["Devanagari"])  # alone: by its name
    assert placeholder_missing("ok 🎉 x") == ("ok ⟦U+1F389⟧ x", ["emoji / symbols"])


def test_a_zwj_sequence_is_one_placeholder() -> None:
    assert placeholder_missing("a 👨\u200d👩\u200d👦 b") == ("a ⟦U+1F468 U+1F469 U+1F466⟧ b", ["emoji / symbols"])


@pytest.mark.parametrize("text", ["family" + "👨\u200d👩\u200d👦" * 3 + " done",
                                  "x" * 25 + "🎉🎊" * 6 + " and " + "👨\u200d👩\u200d👦 " * 6,
                                  "नमस्ते " * 3 + "word" * 9 + "🎉" * 9])
def test_a_placeholder_is_never_broken(text: str) -> None:
    body, _ = pv._drawable(text, None)
    for limit in (2, 10):
        for line in pv._wrap(body, pv.CHARS, limit, None, pv._caption_points(2)).split("\n"):
            depth = 0
            for ch in line:
                depth += (ch == "⟦") - (ch == "⟧")
                assert depth in (0, 1), line
            assert depth == 0 and not line.startswith(("U+", "+", "×")), line


def test_the_note_under_the_grid_is_wrapped_to_the_figure(many: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = preview_figure(many, {"image": [{"op": "hflip"}]}, n=2, variants=1)
        fig.canvas.draw()  # type: ignore[attr-defined]
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        notes = [t for t in fig.texts if "not drawn" in t.get_text().replace("\n", " ")]  # type: ignore[attr-defined]
        assert len(notes) == 1 and all(s in notes[0].get_text().replace("\n", " ") for s in ("Devanagari", "Thai"))
        box = notes[0].get_window_extent(renderer)
        over = 0.02 * fig.bbox.width  # type: ignore[attr-defined]  # pv.NOTE_OVERHANG: a few points a side
        assert box.x0 >= -over and box.x1 <= fig.bbox.x1 + over  # type: ignore[attr-defined]
        assert len(notes[0].get_text().split("\n")) >= 3  # wrapped, not one line twice the figure's width
        png = preview(many, {"image": [{"op": "hflip"}]}, tmp_path / "p.png", n=2, variants=1)
    from PIL import Image

    with Image.open(png) as im:
        assert im.width < 2.2 * pv.CELL_IN * 110  # 2 columns at 110 dpi (QA: 1430 px)


def test_captions_leave_a_gap_before_the_next_column(ds: Path) -> None:
    fig, _ = _figure(ds)
    fig.canvas.draw()  # type: ignore[attr-defined]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    gap = 7.5 * fig.dpi / 72  # type: ignore[attr-defined]
    long = [t for t in _texts(fig) if t.get_text().startswith("WWW")]
    lefts = sorted(t.get_window_extent(renderer).x0 for t in long)
    for t in long:
        box = t.get_window_extent(renderer)
        nxt = [x for x in lefts if x > box.x0 + 1]
        if nxt:
            assert box.x1 <= nxt[0] - gap
