"""QA27 A13: the preview drew a whole caption red ("red: differs from the original") when only a part of
it differed: modality_dropout dropped the image and audio, and the unchanged caption and ``label:`` line
were red too. Now only what differs is red: the text when its text differs, the ``dropped:`` line, the
label line when the label differs. Captions and the clip notes were 6.5 / 5.5 points (9 / 8 pixels):
now 8 points, their lines still apart and inside their cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.augment import preview as pv
from mmdata.augment.preview import preview_figure
from mmdata.testing import make_sample_folder

RED = "firebrick"


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours")
    make_sample_folder(root / "raw", n=4, missing=False)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _captions(fig) -> list:
    """The caption texts: left-aligned from the top of their panel, no box behind them (a clip's note has one)."""
    return [t for ax in fig.axes for t in ax.texts if t.get_fontsize() == pv.CAPTION_PT and t.get_text()
            and t.get_ha() == "left" and t.get_va() == "top" and t.get_bbox_patch() is None]


def test_a_dropped_image_leaves_the_caption_and_label_black(ds: Path) -> None:
    recipe = {"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image", "audio"], "p_drop": 1.0,
                          "keep_at_least": 1}]}
    fig = preview_figure(ds, recipe, n=2, variants=1)
    texts = _captions(fig)
    dropped = [t for t in texts if t.get_text().startswith("dropped: ")]
    assert dropped and all(t.get_color() == RED for t in dropped)
    assert all("dropped" not in t.get_text() for t in texts if t.get_color() != RED)
    # the text and the label are those of the original: black, in every column
    black = "\n".join(t.get_text() for t in texts if t.get_color() != RED)
    assert black.count("label: ") == 2 * 2  # 2 rows x (original, 1 variant): every label line
    red = "\n".join(t.get_text() for t in texts if t.get_color() == RED)
    assert "label" not in red and "thing number" not in red and red.count("dropped: image, audio") == 2


def test_a_changed_text_is_red_and_its_label_is_not(ds: Path) -> None:
    fig = preview_figure(ds, {"text": [{"op": "word_delete", "p_word": 0.9}]}, n=2, variants=1)
    texts = _captions(fig)
    red = [t.get_text() for t in texts if t.get_color() == RED]
    assert red and all("[-" in t for t in red) and not any("label:" in t for t in red)
    assert all(t.get_text().startswith("label: ") or "[-" not in t.get_text() for t in texts if t.get_color() != RED)


def test_captions_and_clip_notes_are_readable_and_apart(ds: Path) -> None:
    recipe = {"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image"], "p_drop": 1.0}],
              "text": [{"op": "word_delete", "p_word": 0.5}]}
    fig = preview_figure(ds, recipe, n=2, variants=2)
    texts = _captions(fig)
    assert pv.CAPTION_PT >= 8 and len(texts) >= 8
    notes = [t for ax in fig.axes for t in ax.texts if " kHz" in t.get_text()]
    assert notes and all(t.get_fontsize() >= 8 for t in notes)
    fig.set_dpi(100)
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        mine = sorted((t.get_window_extent(renderer) for t in ax.texts if t in texts), key=lambda b: -b.y1)
        for upper, lower in zip(mine, mine[1:]):  # a cell's runs of red and black: one under the other
            assert lower.y1 <= upper.y0 + 0.5, (upper, lower)
            assert upper.y0 - lower.y1 < pv.CAPTION_PT  # no blank line between them either
        if mine:  # inside the figure, above the next row's titles and the key (nothing drawn over them)
            assert mine[-1].y0 > 0
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), a
