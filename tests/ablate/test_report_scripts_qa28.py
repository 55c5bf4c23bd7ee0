"""QA28 i18n #6, the ablation report's part: arm names in a script no font has (Devanagari, Thai, an emoji
sequence) were drawn as empty boxes with only matplotlib's "Glyph ... missing" warnings; ``_text_style`` handled
CJK only. Now they get the preview's placeholders (``⟦Devanagari ×6⟧``), a footnote and one warning."""

from __future__ import annotations

import io
import warnings

import pytest

from mmdata.ablate.report import _text_style
from mmdata.augment.preview import figure_style, figure_text_style

NAMES = ["बिल्ली", "แมว", "👩\u200d👩\u200d👧", "חתול", "cutout"]


def _glyph_warnings(texts: list[str], rc: dict) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with figure_style(rc), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = Figure()
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.set_xticks(range(len(texts)), texts)
        fig.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_arm_names_no_font_has_get_placeholders_a_note_and_a_warning() -> None:
    with pytest.warns(UserWarning, match=r"ablation report: ⟦…⟧: Devanagari, Thai, emoji / symbols not drawn"):
        rc, shown, note = _text_style(NAMES)
    drawn = [shown(n) for n in NAMES]
    assert drawn[:3] == ["⟦Devanagari ×6⟧", "⟦Thai ×3⟧", "⟦U+1F469 U+1F469 U+1F467⟧"]
    assert drawn[3:] == ["חתול", "cutout"]  # DejaVu Sans has Hebrew
    assert note is not None and "placeholders, not boxes" in note
    assert _glyph_warnings(drawn, rc) == []
    assert _glyph_warnings(NAMES[:1], rc)  # what the figure got before: boxes, and matplotlib's warning only


def test_ascii_and_drawable_names_leave_the_figure_as_it_was() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _text_style(["cutout", "noise"]) == ({}, str, None)
        rc, shown, note = figure_text_style(["חתול", "café"])
    assert shown("café") == "café" and note is None


def test_cjk_without_a_font_keeps_its_placeholder() -> None:
    with pytest.warns(UserWarning, match="no CJK font found"):
        rc, shown, note = figure_text_style(["音声 noise", "बिल्ली"], "x", find_font=lambda: None)
    assert rc == {} and shown("音声 noise") == "⟦CJK ×2⟧ noise" and shown("बिल्ली") == "⟦Devanagari ×6⟧"
    assert note is not None and "⟦CJK ×N⟧" in note and "Devanagari" in note
