"""match.png's panel titles fit (accessibility QA 2026-12): with three pairs the third title ran off the figure's
edge (`audio-text (n=309): cosine, ROC-AUC 0.53 (0.52 other clas`) and the first nearly touched the second. The
result is the one `mmdata match` measured on avdigits after one contrastive epoch, drawn without a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

PAIRS = (("image-audio", 360, 0.50, 0.50, 0.51), ("image-text", 309, 0.52, 0.51, -0.10), ("audio-text", 309, 0.53, 0.52, 0.09))
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _result(divergence: bool) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    pairs, hist = {}, {}
    g = np.random.default_rng(0)
    for name, n, auc, other, mean in PAIRS:
        cos = {"n": n, "matched_mean": mean, "matched_std": 0.01, "mismatched_mean": mean, "mismatched_std": 0.01,
               "auc": auc, "auc_other_class": other, "mismatched_other_class_mean": mean}
        entry: dict[str, Any] = {"n": n, "cosine": cos}
        if divergence:
            one = {"n": n // 10, "kl_ab": 0.123, "kl_ba": 0.456, "js": 0.0789, "argmax_agreement": 0.5}
            entry["divergence"] = {**one, "n": n, "per_class": {c: dict(one) for c in CLASSES}}
        pairs[name] = entry
        hist[name] = (mean + 0.01 * g.standard_normal(n), mean + 0.01 * g.standard_normal(4 * n))
    return {"split": "test", "n": 360, "fusion": None if not divergence else "late", "pairs": pairs}, hist


@pytest.mark.parametrize("divergence", [False, True], ids=["pretrained embedding", "fusion model"])
def test_match_panel_titles_fit_in_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, divergence: bool) -> None:
    from mmdata.train import matching

    seen: list[Any] = []
    save = matching.save_png

    def record(fig: Any, path: Path, bottom: float = 0.0) -> Path:
        out = save(fig, path, bottom)  # laid out as saved (its dpi, tight_layout)
        seen.append(fig)
        return out

    monkeypatch.setattr(matching, "save_png", record)
    result, hist = _result(divergence)
    out = matching.plot(result, tmp_path / "match.png", hist)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = seen[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    frame = fig.bbox
    titles = [ax.title for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 3 * (1 + divergence)
    assert all("other class" in t.get_text() for t in titles[:3] if "cosine" in t.get_text())
    boxes = [t.get_window_extent(r) for t in titles]
    for t, b in zip(titles, boxes):  # inside the figure, with a margin: nothing cut at its edge
        assert b.x0 >= frame.x0 + 2 and b.x1 <= frame.x1 - 2 and b.y0 >= frame.y0 and b.y1 <= frame.y1, t.get_text()
    for i, a in enumerate(boxes):  # neighbouring titles keep a gap (they nearly touched)
        for b in boxes[i + 1:]:
            if a.y0 < b.y1 and b.y0 < a.y1:  # on one row
                gap = max(b.x0 - a.x1, a.x0 - b.x1)
                assert gap >= 10, (gap, [t.get_text() for t in titles])
