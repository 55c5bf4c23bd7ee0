"""`mmdata preview`: a key to the text marks, and no rows for modalities the grid does not have.

Before (2026-12) the captions' marks (``⟨w⟩``, ``[-w-]``, the red of a changed caption, ``dropped: ...``)
had no key: a reader could not tell what they meant (at 6.5 points ``⟨w⟩`` reads as ``(w)``). And every
cell kept the slots of a full sample: an image-only dataset's grid had a ``(no text)`` caption under
each image and about an inch of blank in each 2.6-inch row; a text-only grid was mostly blank (246 pixel
rows of white between two rows). Now the grid draws a key of the marks it shows, and panels only for the
modalities some sample in it has (a sample lacking one of them still says so: ``no audio``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.augment.preview import TEXT_KEY, preview, preview_figure, text_marks
from mmdata.testing import make_sample_folder

DPI = 110  # as preview saves


def _dataset(root: Path, keep: set[str], n: int = 6, missing: bool = True) -> Path:
    """A sample folder with only the files ending in ``keep`` (e.g. images and labels), sharded."""
    raw = make_sample_folder(root / "raw", n=n, missing=missing)
    for p in raw.iterdir():
        if p.suffix not in keep:
            p.unlink()
    mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keyrows")
    return {
        "all": _dataset(root / "all", {".png", ".flac", ".txt", ".cls"}, n=8),  # 000003, 000007: no audio
        "image": _dataset(root / "image", {".png", ".cls"}),
        "audio": _dataset(root / "audio", {".flac", ".cls"}, missing=False),
        "text": _dataset(root / "text", {".txt", ".cls"}),
    }


def _key(fig: object) -> list[tuple[str, str]]:
    """The text key's (mark, meaning) entries, as drawn; [] without a key."""
    keys = [lg for lg in fig.legends if lg.get_gid() == "text-key"]  # type: ignore[attr-defined]
    if not keys:
        return []
    (key,) = keys
    marks = [h.get_text() for h in key.legend_handles]
    return list(zip(marks, [t.get_text() for t in key.get_texts()]))


def _captions(fig: object) -> list[str]:
    # a caption is drawn as a text per run of one colour (QA27 A13): its panel's texts, joined
    return ["\n".join(t.get_text() for t in ax.texts) for ax in fig.axes if ax.texts]  # type: ignore[attr-defined]


def _entries(*kinds: str) -> list[tuple[str, str]]:
    return [TEXT_KEY[k] for k in kinds]


def _blank_run(png: Path) -> int:
    """The tallest band of pixel rows without ink in the PNG."""
    from PIL import Image

    with Image.open(png) as im:
        ink = (np.asarray(im.convert("L")) < 250).any(axis=1)
    best = cur = 0
    for row in ink:
        cur = 0 if row else cur + 1
        best = max(best, cur)
    return best


# the marks -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("before", "after", "marks"), [
    ("a red box", "a red box", set()),
    ("a red box", "a box", {"removed"}),
    ("a red box", "a red big box", {"new"}),
    ("a red box", "a [MASK] box", {"masked"}),
    ("a red box", "a blue box", {"removed", "new"}),  # replaced: [-red-] ⟨blue⟩
    ("a small thing", "a thing small", {"moved"}),  # word_swap: ⟨thing⟩ small [-thing-]
    ("a small thing number 0", "a thing small [MASK] 0", {"moved", "masked"}),  # [-thing-] [-number-] ⟨[MASK]⟩
    ("a red box on the left", "a [MASK] box on the right", {"masked", "removed", "new"}),
    ("一张照片", "一张照 [MASK]", {"masked"}),  # CJK: a mark per character (token_mask's output)
])
def test_text_marks_name_what_mark_changes_draws(before: str, after: str, marks: set[str]) -> None:
    assert text_marks(before, after) == marks


@pytest.mark.parametrize(("recipe", "kinds"), [
    ({"text": [{"op": "token_mask", "p_token": 1.0}]}, ("changed", "masked")),
    ({"text": [{"op": "word_delete", "p_word": 0.5, "keep_at_least": 1}]}, ("changed", "removed")),
    ({"text": [{"op": "word_swap", "n_swaps": [1, 1]}]}, ("changed", "moved")),
    ({"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image", "text"], "p_drop": 1.0}]},
     ("changed", "dropped")),
])
def test_the_key_lists_the_marks_the_grid_shows(data: dict[str, Path], recipe: dict, kinds: tuple[str, ...]) -> None:
    fig = preview_figure(data["all"], recipe, n=3, variants=2)
    assert _key(fig) == _entries(*kinds)
    captions = "\n".join(_captions(fig))
    shown = {"masked": "⟨[MASK]⟩", "removed": "[-", "moved": "⟨", "dropped": "dropped: "}
    for kind in kinds[1:]:
        assert shown[kind] in captions, kind  # the key names a mark that is drawn
    for kind in ("masked", "dropped"):
        if kind not in kinds:
            assert shown[kind] not in captions, kind  # and a mark not drawn has no entry


def test_no_key_without_marks(data: dict[str, Path]) -> None:
    assert _key(preview_figure(data["all"], {"image": [{"op": "hflip", "p": 1.0}]}, n=3, variants=1)) == []
    assert _key(preview_figure(data["image"], {"image": [{"op": "hflip", "p": 1.0}]}, n=3, variants=1)) == []
    assert "(changed text in red" not in preview_figure(data["image"], {}, n=2, variants=1).get_suptitle()


def test_the_key_is_drawn_under_the_grid_and_apart_from_it(data: dict[str, Path], tmp_path: Path) -> None:
    recipe = {"text": [{"op": "token_mask", "p_token": 0.5}, {"op": "word_swap"}, {"op": "word_delete", "p_word": 0.3}],
              "sample": [{"op": "modality_dropout", "p": 0.5, "modalities": ["audio"], "p_drop": 1.0}]}
    fig = preview_figure(data["all"], recipe, n=4, variants=3)
    assert len(_key(fig)) >= 4
    fig.set_dpi(DPI)
    renderer = fig.canvas.get_renderer()
    (key,) = [lg for lg in fig.legends if lg.get_gid() == "text-key"]
    box = key.get_window_extent(renderer)
    grid_bottom = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes)
    lowest_text = min(t.get_window_extent(renderer).y0 for ax in fig.axes for t in ax.texts)
    assert box.y1 < grid_bottom and box.y1 < lowest_text  # under every panel and caption, not over them
    assert box.y0 >= 0 and box.x0 >= 0 and box.x1 <= fig.bbox.x1  # inside the figure, not cut at the save
    for t in key.get_texts():
        assert t.get_window_extent(renderer).height > 5  # drawn at a readable size (7 points: ~10 pixels)


# the rows --------------------------------------------------------------------------------------------------

def _panels_per_cell(fig: object, cells: int) -> float:
    return len(fig.axes) / cells  # type: ignore[attr-defined]


def test_an_image_only_grid_has_no_audio_or_text_rows(data: dict[str, Path], tmp_path: Path) -> None:
    recipe = {"image": [{"op": "hflip", "p": 0.5}]}
    fig = preview_figure(data["image"], recipe, n=3, variants=2)
    assert _panels_per_cell(fig, 3 * 3) == 2  # the image and its caption (the label)
    captions = _captions(fig)
    assert not any("no text" in c or "no audio" in c for c in captions)
    assert sum(c.startswith("label: ") for c in captions) == 9
    assert not any(ax.lines for ax in fig.axes)  # no waveform
    width, height = fig.get_size_inches()
    assert height < 1.7 * 3 + 1.0  # ~1.4 inches a row (2.6 with the blank bands)
    out = preview(data["image"], recipe, tmp_path / "image.png", n=3, variants=2)
    assert _blank_run(out) < 0.36 * DPI  # no blank band (before: 99 pixel rows of white)


def test_an_audio_only_grid_has_no_image_or_text_rows(data: dict[str, Path], tmp_path: Path) -> None:
    fig = preview_figure(data["audio"], {"audio": [{"op": "gain"}]}, n=3, variants=2)
    assert _panels_per_cell(fig, 9) == 3  # the waveform, the spectrogram, the caption
    assert not any(im.get_array().ndim == 3 for ax in fig.axes for im in ax.images)  # no picture, only spectrograms
    assert not any("no text" in c or "no image" in c for c in _captions(fig))
    out = preview(data["audio"], {"audio": [{"op": "gain"}]}, tmp_path / "audio.png", n=3, variants=2)
    assert _blank_run(out) < 0.36 * DPI


def test_a_text_only_grid_is_as_tall_as_its_captions(data: dict[str, Path], tmp_path: Path) -> None:
    recipe = {"text": [{"op": "word_swap"}]}
    fig = preview_figure(data["text"], recipe, n=3, variants=2)
    assert _panels_per_cell(fig, 9) == 1
    assert sum("thing" in c and "label: " in c for c in _captions(fig)) == 9  # every caption, in its one panel
    assert fig.get_size_inches()[1] < 4.0  # three rows of two-line captions, a title and a key (before: 8.3)
    out = preview(data["text"], recipe, tmp_path / "text.png", n=3, variants=2)
    assert _blank_run(out) < 0.36 * DPI  # before: 246 pixel rows of white


def test_a_sample_lacking_a_modality_the_grid_has_says_so(data: dict[str, Path], tmp_path: Path) -> None:
    """000003 and 000007 have no audio: their rows keep the audio slot, a grey frame saying ``no audio``
    over the waveform's and the spectrogram's slots; the other rows draw theirs. Every cell has the same
    panels, so the rows line up."""
    fig = preview_figure(data["all"], {"image": [{"op": "hflip"}]}, n=8, variants=1)
    assert _panels_per_cell(fig, 8 * 2) == 4  # image, waveform, spectrogram, caption in every cell
    captions = _captions(fig)
    assert captions.count("no audio") == 2 * 2  # two samples x (original, epoch 0)
    assert any("(no text)" in c for c in captions)  # 000004 has no text: its caption says so
    assert sum(bool(ax.lines) for ax in fig.axes) == 6 * 2  # the others' waveforms
    out = preview(data["all"], {"image": [{"op": "hflip"}]}, tmp_path / "all.png", n=8, variants=1)
    assert _blank_run(out) < 0.36 * DPI  # the no-audio frame spans the spectrogram's slot too: no blank band


def test_a_dropped_modality_still_shows_in_a_grid_of_the_others(data: dict[str, Path]) -> None:
    recipe = {"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image"], "p_drop": 1.0}]}
    fig = preview_figure(data["all"], recipe, n=2, variants=1)
    captions = _captions(fig)
    assert captions.count("image dropped") == 2 and sum("dropped: image" in c for c in captions) == 2
    assert _key(fig) == _entries("changed", "dropped")
