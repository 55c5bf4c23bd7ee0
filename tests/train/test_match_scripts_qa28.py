"""QA28 i18n #6, ``mmdata match``'s part: class names in a script no font has (Devanagari, Thai, an emoji
sequence) were drawn as empty boxes in the per-class PNG, with only matplotlib's "Glyph ... missing" warnings
(``text_style`` handled CJK only). Now they get the preview's placeholders, a footnote and one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

from tests.train.test_crossmodal_qa import PNG, _capture, _match_result

NAMES = ["बिल्ली", "แมว", "👩\u200d👩\u200d👧", "חתול"]


def test_match_png_draws_placeholders_not_boxes(tmp_path: Path, monkeypatch) -> None:
    from mmdata.train import matching

    seen = _capture(monkeypatch, matching)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = matching.plot(_match_result(NAMES), tmp_path / "m.png")
    assert out.read_bytes()[:8] == PNG
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "missing from" in m], messages
    assert any(m.startswith("match: ⟦…⟧: Devanagari, Thai, emoji / symbols not drawn") for m in messages), messages
    texts = [t for t, _ in seen[0][1]]
    assert "⟦Devanagari ×6⟧" in texts and "⟦Thai ×3⟧" in texts and "חתול" in texts, texts
    assert any("placeholders, not boxes" in t for t in texts)  # the footnote
