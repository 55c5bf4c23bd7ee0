"""`mmdata preview` says what the colours of a target overlay mean.

Before (2026-12) the first target was drawn over each image in colours ranked per cell (a class could
change colour from one cell to the next) and the figure had no legend: a reader of the PNG could not
tell which colour was which value, nor that 255 was the mask's fill / ignore label. Now one colour per
value holds for the whole figure and a legend names the field and the values drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment.preview import LEGEND_VALUES, overlay, preview, preview_figure, target_legend, target_values


def _drawn_colour(ax: object, y: int, x: int) -> tuple[float, ...]:
    """The RGBA the overlay's colour map gives the pixel (y, x) (the overlay's alpha aside)."""
    im = ax.images[-1]  # type: ignore[attr-defined]
    return tuple(float(c) for c in im.cmap(im.norm(im.get_array()[y, x])))


def test_the_legend_names_the_values_drawn_and_the_fill() -> None:
    title, entries = target_legend("seg.png", np.array([1.0, 2.0, 7.0, 255.0]), fill=255)
    assert "seg.png" in title and "0" in title  # 0 is not drawn: said in the title
    assert [label for label, _ in entries] == ["1", "2", "7", "255 (fill / ignore)"]
    assert all(colour is not None for _, colour in entries) and len({c for _, c in entries}) == 4
    _, zero_fill = target_legend("seg.png", np.array([1.0, 2.0]), fill=0)
    assert [label for label, _ in zero_fill] == ["1", "2"]


def test_many_labels_are_capped_and_the_fill_is_always_named() -> None:
    values = np.array([*range(1, 16), 255], np.float64)
    _, entries = target_legend("seg.png", values, fill=255)
    labels = [label for label, _ in entries]
    assert len(labels) == LEGEND_VALUES + 1 and labels[-1] == "255 (fill / ignore)"
    assert labels[-2] == f"+{len(values) - LEGEND_VALUES} more" and entries[-2][1] is None
    assert labels[: LEGEND_VALUES - 1] == [str(v) for v in range(1, LEGEND_VALUES)]


def test_a_continuous_map_gets_a_colour_scale_key() -> None:
    depth = np.linspace(0.5, 80.0, 400)
    title, entries = target_legend("depth.png", depth)
    assert "depth.png" in title and "400 values" in title
    assert entries[0][0] == "0.5" and entries[-1][0] == "80" and len(entries) == 5


def test_legend_colours_are_the_overlays_in_every_cell() -> None:
    from matplotlib.figure import Figure

    a = torch.tensor([[[0, 1], [3, 255]]], dtype=torch.uint8)
    b = torch.tensor([[[3, 3], [255, 0]]], dtype=torch.uint8)  # no 1 here: 3 keeps its colour all the same
    values = target_values([a, b])
    assert values.tolist() == [1.0, 3.0, 255.0]
    _, entries = target_legend("seg.png", values, fill=255)
    colour = {label.split()[0]: c for label, c in entries}
    fig = Figure()
    for target, at in ((a, {"1": (0, 1), "3": (1, 0), "255": (1, 1)}), (b, {"3": (0, 0), "255": (1, 0)})):
        ax = fig.add_subplot()
        ax.imshow(np.zeros((2, 2, 3), np.uint8))
        overlay(ax, target, values)
        for value, (y, x) in at.items():
            assert _drawn_colour(ax, y, x) == pytest.approx(colour[value]), value


@pytest.fixture(scope="module")
def seg_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real PNG images with real PNG masks (classes 1 and 2 on a 0 background, a 255 border)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("legend")
    raw = root / "raw"
    raw.mkdir()
    rows = ["image,seg,label"]
    for i in range(4):
        img = np.zeros((48, 64, 3), np.uint8)
        img[..., i % 3] = 60 + 40 * i
        mask = np.zeros((48, 64), np.uint8)
        mask[8:30, 6:30] = 1
        mask[20:44, 34:60] = 2 if i % 2 else 1
        mask[:2], mask[-2:] = 255, 255
        Image.fromarray(img).save(raw / f"im{i}.png")
        Image.fromarray(mask).save(raw / f"seg{i}.png")
        rows.append(f"im{i}.png,seg{i}.png,{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", root / "ds", columns={"seg": "seg"}, progress=False)
    return root / "ds"


RECIPE = {"targets": {"seg.png": {"kind": "mask", "fill": 255}},
          "image": [{"op": "hflip", "p": 0.5}, {"op": "rotate", "limit": 30.0}]}


def test_the_preview_figure_has_a_legend_of_the_target(seg_ds: Path, tmp_path: Path) -> None:
    fig = preview_figure(seg_ds, RECIPE, n=3, variants=2)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert "seg.png" in legend.get_title().get_text()
    assert texts == ["1", "2", "255 (fill / ignore)"]
    out = preview(seg_ds, RECIPE, tmp_path / "p.png", n=3, variants=2)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_target_no_legend(seg_ds: Path) -> None:
    assert not preview_figure(seg_ds, {"image": [{"op": "brightness_contrast"}]}, n=2, variants=1).legends


def test_a_colour_scale_leaves_the_fill_apart() -> None:
    """QA: an ADE20K-like mask (150 classes, a 255 border) stretched the scale to 255 and listed '255' and
    '255 (fill / ignore)' both; the scale now spans the classes and the fill is grey, named once."""
    from matplotlib.figure import Figure

    from mmdata.augment.preview import FILL_COLOUR, overlay, target_legend

    values = np.array([*range(1, 150), 255], dtype=np.float64)
    title, entries = target_legend("seg.png", values, fill=255)
    assert [label for label, _ in entries] == ["1", "38", "75", "112", "149", "255 (fill / ignore)"]
    assert entries[-1][1] == FILL_COLOUR and "150 values: colour scale" in title
    mask = np.full((1, 4, 4), 255, np.uint8)
    mask[0, 1:3, 1:3] = 149
    ax = Figure().subplots()
    overlay(ax, mask, values, fill=255)
    drawn, grey = ax.images  # the scale's layer, then the fill's
    assert drawn.get_clim() == (1.0, 149.0) and bool(drawn.get_array().mask[0, 0]) and not drawn.get_array().mask[1, 1]
    assert tuple(grey.get_array()[0, 0]) == FILL_COLOUR and tuple(grey.get_array()[1, 1]) == (0, 0, 0, 0)


def test_a_colour_scale_of_class_ids_has_whole_ticks() -> None:
    """QA round 3: an integer mask of ids 1..146 got ticks 37.25, 73.5, 109.8."""
    _, entries = target_legend("seg.png", np.array([*range(1, 147), 255], dtype=np.float64), fill=255)
    assert [label for label, _ in entries] == ["1", "37", "74", "110", "146", "255 (fill / ignore)"]


def test_an_image_target_is_not_drawn_as_an_overlay(tmp_path: Path) -> None:
    """QA27 C5: a target of kind image (a clip's other frame) was drawn over the image as a segmentation map
    with a 255-value colour scale; only mask targets are overlaid."""
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,frame1,label"]
    for i in range(3):
        for name, shift in (("im", 0), ("fr", 30)):
            Image.fromarray(np.full((24, 32, 3), 40 * i + shift, np.uint8)).save(raw / f"{name}{i}.png")
        rows.append(f"im{i}.png,fr{i}.png,{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"frame1": "frame1"}, progress=False)
    recipe = {"targets": {"frame1.png": "image"}, "image": [{"op": "hflip", "p": 0.5}]}
    assert not preview_figure(tmp_path / "ds", recipe, n=2, variants=1).legends
    masked = {"targets": {"frame1.png": "mask"}, "image": [{"op": "hflip", "p": 0.5}]}
    assert preview_figure(tmp_path / "ds", masked, n=2, variants=1).legends  # the same field as a mask: overlaid
