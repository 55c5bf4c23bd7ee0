"""QA40 multiview: product views (named image fields) as recipe image targets.

#2 the loader's refusal of a view in another colour mode names the view, the sample, both modes and the fix
   (it spoke of "a clip's frames");
#4 the preview labels a missing view (it drew a bare grey block) and its summary (``--json`` rows) lists the
   views per row with their presence.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.preview import image_strip, preview_figure, strip_spans, summary_lines
from mmdata.errors import MMDataError

RECIPE = {"seed": 0, "targets": {"view2.png": "image"},
          "normalize": {"image": [{"op": "to_rgb", "p": 1.0}]},
          "image": [{"op": "hflip", "p": 0.5}]}


def _views(tmp: Path, *, grey_view: bool = False) -> Path:
    """8 products: an RGB image and a second view (view2.png), missing in rows 0 and 4; with ``grey_view``
    row 1's view is stored greyscale (L)."""
    rng = np.random.default_rng(0)
    (tmp / "raw" / "img").mkdir(parents=True)
    rows = []
    for i in range(8):
        k = f"q{i:03d}"
        a = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(a).save(tmp / "raw" / "img" / f"{k}_a.png")
        view = Image.fromarray(a[:, ::-1].copy())
        if grey_view and i == 1:
            view = view.convert("L")
        view.save(tmp / "raw" / "img" / f"{k}_b.png")
        rows.append({"key": k, "image": f"img/{k}_a.png", "view2": "" if i % 4 == 0 else f"img/{k}_b.png",
                     "label": "ab"[i % 2], "text": "a product"})
    with open(tmp / "raw" / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["key", "image", "view2", "label", "text"])
        w.writeheader()
        w.writerows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(str(tmp / "raw" / "manifest.csv"), str(tmp / "ds"), columns={"view2": "view2"}, progress=False)
    return tmp / "ds"


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _views(tmp_path_factory.mktemp("qa40_views"))


def test_a_view_in_another_mode_is_refused_naming_view_sample_modes_and_fix(tmp_path: Path) -> None:
    ds = _views(tmp_path, grey_view=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        L = mmdata.loader(str(ds), 8, recipe=RECIPE, shuffle=False)
        with pytest.raises(MMDataError) as err:
            list(L)
    text = str(err.value)
    assert "'q001'" in text and "'view2.png'" in text
    assert "1 channel(s) (L), the image 3 (RGB)" in text
    assert "view or frame" in text and "clip's frames" not in text
    assert "to_rgb" in text and "convert('RGB')" in text and "shard again" in text
    assert "out of the recipe's targets" in text


def test_the_strip_marks_a_missing_view_apart_from_a_grey_one() -> None:
    import torch

    grey = torch.full((3, 4, 16), 128, dtype=torch.uint8)
    with_grey = mmdata.Sample("a", {"image": torch.zeros(3, 4, 16, dtype=torch.uint8), "v.png": grey})
    without = mmdata.Sample("b", {"image": torch.zeros(3, 4, 16, dtype=torch.uint8)})
    assert not np.array_equal(image_strip(with_grey, ["v.png"]), image_strip(without, ["v.png"]))
    assert strip_spans(without, ["v.png"]) == [("v.png", 17, 33, 4, False)]
    assert strip_spans(with_grey, ["v.png"])[0][-1] is True


def test_preview_labels_a_missing_view_and_lists_views_per_row(views: Path) -> None:
    import matplotlib.pyplot as plt

    summary: list[dict] = []
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = preview_figure(str(views), RECIPE, n=8, variants=1, summary=summary, notes=notes,
                             keys=[f"q{i:03d}" for i in range(8)])
    try:
        labels = [t.get_text() for ax in fig.axes for t in ax.texts if "view2.png" in t.get_text()]
    finally:
        plt.close(fig)
    columns = 3  # the original, the normalized and one variant
    assert labels and all(t == "no\nview2.png" for t in labels)
    assert len(labels) == 2 * columns  # rows q000 and q004, in every column
    rows = {r["key"]: r for r in summary}
    assert {k: r["views"] for k, r in rows.items()} == {f"q{i:03d}": {"view2.png": i % 4 != 0} for i in range(8)}
    assert any("no <field>" in n and "view2.png" in n for n in notes)
    lines = summary_lines(summary)
    assert any(line.startswith("row 1: q000") and "no view2.png" in line for line in lines)
    assert not any(line.startswith("row 2: q001") and "no view2.png" in line for line in lines)


def test_preview_rows_without_image_targets_have_no_views(views: Path) -> None:
    summary: list[dict] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        preview_figure(str(views), {"image": [{"op": "hflip", "p": 0.5}]}, n=2, variants=1, summary=summary)
    import matplotlib.pyplot as plt

    plt.close("all")
    assert summary and all("views" not in r for r in summary)
