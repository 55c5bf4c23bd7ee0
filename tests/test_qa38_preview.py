"""QA38 preview defects: a large page shrunk into its cell without aliasing (a false slant), one paragraph
direction for a mixed Latin / Hebrew caption's wrapped lines, an ultrasonic clip's spectrogram labelled up to
Nyquist, and complex (I/Q) arrays drawn as I and Q with no raw ComplexWarning."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.augment.preview import LRM, RLM, _wrap, preview_figure


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def _figure(ds: Path, recipe, **kw):
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        fig = preview_figure(ds, recipe, notes=notes, **kw)
    return fig, notes, [f"{w.category.__name__}: {w.message}" for w in said]


def test_a_page_of_dense_lines_shrinks_to_grey_not_to_stripes(tmp_path: Path) -> None:
    """One-pixel black / white lines (text lines at 300 dpi, shrunk ~4x into a cell) average to grey: drawn by
    nearest neighbour they came out as bands or a false slant (QA38 OCR #3)."""
    (tmp_path / "raw" / "form").mkdir(parents=True)
    page = np.tile(np.array([[0], [255]], np.uint8), (256, 512))  # 512 x 512, rows alternating
    for i in range(2):
        Image.fromarray(page, "L").save(tmp_path / "raw" / "form" / f"p{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, _, _ = _figure(tmp_path / "ds", {"image": [{"op": "hflip", "p": 1.0}]}, n=1, variants=1)
    fig.set_dpi(110)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    cells = [ax for ax in fig.axes if ax.images]
    assert len(cells) == 2
    for ax in cells:
        drawn = ax.images[0].get_array()
        assert max(drawn.shape) < 512, drawn.shape  # shrunk to the cell before drawing
        box = ax.get_window_extent()
        x0, x1 = int(box.x0) + 3, int(box.x1) - 3
        y0, y1 = rgba.shape[0] - int(box.y1) + 3, rgba.shape[0] - int(box.y0) - 3  # buffer rows run top down
        inside = rgba[y0:y1, x0:x1, 0].astype(float)
        assert inside.size > 1000
        assert 90 < inside.mean() < 165 and inside.std() < 25, (inside.mean(), inside.std())
    # the overlay's pixel coordinates are kept: the image spans the page's own
    assert cells[0].images[0].get_extent() == [-0.5, 511.5, 511.5, -0.5]


def test_a_small_image_is_enlarged_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "raw" / "a").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(tmp_path / "raw" / "a" / f"{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, _, _ = _figure(tmp_path / "ds", {"image": [{"op": "hflip", "p": 1.0}]}, n=1, variants=1)
    drawn = [ax.images[0] for ax in fig.axes if ax.images]
    assert drawn and all(im.get_array().shape == (8, 8) and im.get_interpolation() == "nearest" for im in drawn)


def test_wrapped_lines_of_a_latin_paragraph_with_hebrew_keep_its_direction() -> None:
    text = 'Invoice INV-7 فاتورة total 12.50 ש"ח ok page two Invoice INV-7 فاتورة total 12.50 ש"ח ok'
    lines = _wrap(text, 28, 8).split("\n")
    assert len(lines) >= 3
    # every line led by the left-to-right mark: "12.50 ש"ח ok" on a line of its own stays in reading order
    assert all(line.startswith(LRM) for line in lines), [line[:3] for line in lines]
    assert "".join(line.removeprefix(LRM) for line in lines).replace(" ", "") == text.replace(" ", "")  # marks only
    hebrew = _wrap('שלום עולם hello world ' * 4, 20, 8).split("\n")
    assert len(hebrew) >= 2 and all(line.startswith(RLM) for line in hebrew)
    assert _wrap("plain latin words only " * 4, 20, 8).count(LRM) == 0  # no marks where no right-to-left letter


def test_a_drawn_caption_carries_the_paragraphs_direction(tmp_path: Path) -> None:
    (tmp_path / "raw" / "form").mkdir(parents=True)
    text = 'Invoice INV-7 فاتورة total 12.50 ש"ח ok page two Invoice INV-7 total 12.50 ש"ח ok'
    for i in range(2):
        Image.fromarray(np.full((16, 16), 200, np.uint8), "L").save(tmp_path / "raw" / "form" / f"p{i}.png")
        (tmp_path / "raw" / "form" / f"p{i}.txt").write_text(text, encoding="utf-8")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, _, said = _figure(tmp_path / "ds", {"image": [{"op": "vflip", "p": 1.0}]}, n=1, variants=1)
    captions = [t for t in _texts(fig) if "Invoice" in t]
    assert captions, _texts(fig)
    for caption in captions:
        lines = [line for line in caption.split("\n") if not line.startswith("label:")]  # no Hebrew there: no mark
        assert len(lines) >= 2 and all(line.startswith(LRM) for line in lines), lines
    assert not any("Glyph" in w for w in said), said


def _bat_dataset(root: Path, rate: int) -> Path:
    t = np.arange(rate // 2) / rate
    for c, f in (("myoluc", 45000.0), ("eptfus", 30000.0)):
        (root / "raw" / c).mkdir(parents=True)
        sf.write(root / "raw" / c / f"{c}.wav", 0.5 * np.sin(2 * np.pi * f * t), rate, subtype="PCM_16")
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def test_an_ultrasonic_spectrogram_is_labelled_up_to_nyquist(tmp_path: Path) -> None:
    recipe = {"audio": [{"op": "gain", "p": 1.0, "min_db": 0, "max_db": 0}]}
    fig, _, _ = _figure(_bat_dataset(tmp_path / "a", 384000), recipe, n=1, variants=1)
    assert {"100 –", "1k –", "10k –", "100k –"} <= set(_texts(fig)), sorted(set(_texts(fig)))
    fig, _, _ = _figure(_bat_dataset(tmp_path / "b", 250000), recipe, n=1, variants=1)
    texts = set(_texts(fig))
    assert "50k –" in texts and "100k –" not in texts, sorted(texts)  # 100k would sit on the panel's top edge
    fig, _, _ = _figure(_bat_dataset(tmp_path / "c", 48000), recipe, n=1, variants=1)
    texts = set(_texts(fig))
    assert "10k –" in texts and not {"20k –", "50k –", "100k –"} & texts, sorted(texts)


def test_complex_arrays_are_drawn_as_i_and_q_without_a_complex_warning(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c in ("bpsk", "qpsk"):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(2):
            iq = (rng.normal(size=256) + 1j * rng.normal(size=256) * 3).astype(np.complex64)
            np.save(tmp_path / "raw" / c / f"{c}_{i}.npy", iq)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, notes, said = _figure(tmp_path / "ds", {"image": [{"op": "hflip"}]}, n=2, variants=1)
    assert not any("ComplexWarning" in w for w in said), said
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 4
    for ax in panels:
        i, q = (np.asarray(line.get_ydata()) for line in ax.lines)
        assert len(i) == len(q) == 256 and np.std(q) > 2 * np.std(i)  # the imaginary part drawn, not dropped
        assert any(t.get_text().endswith("I/Q") for t in ax.texts)
    assert any("complex values: the real part (I) in blue, the imaginary part (Q) in orange" in n for n in notes), notes


def test_sixteen_bit_and_float_pages_shrink_too() -> None:
    """Pillow has no mode for three 16-bit or float planes: each plane is shrunk on its own, the dtype kept."""
    from mmdata.augment.preview import _fit_pixels

    for dtype, top in ((np.uint16, 4095), (np.float32, 1.0)):
        page = np.zeros((400, 400, 3), dtype)
        page[::2] = top
        small = _fit_pixels(page, (100, 100))
        assert small.shape == (100, 100, 3) and small.dtype == dtype
        assert abs(float(small.mean()) - top / 2) < 0.05 * top and float(small.std()) < 0.1 * top
