"""QA39 ecommerce #1, end to end: a second product photo in a named field (``--column image2=image2``), declared a
view in a recipe (``targets: {image2.gif: image}``), reaches a batch decoded as a photo — a palette GIF as its
colours, not its palette indices — through :func:`mmdata.loader` (which passes the recipe's image targets to the
reader as ``photo_fields``); undeclared, the reader keeps the stored values (a palette mask's class indices)."""
import csv

import numpy as np
from PIL import Image

import mmdata
from mmdata.shards.reader import open_dataset


def _palette_gif(path, colour):
    img = Image.new("RGB", (24, 24), colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img.save(path)


def _dataset(tmp_path, n=6):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = []
    for i in range(n):
        Image.new("RGB", (24, 24), (10 * i, 20, 30)).save(raw / f"a{i}.png")
        _palette_gif(raw / f"b{i}.gif", (200, 40 + i, 10))
        rows.append({"key": f"k{i}", "image": f"a{i}.png", "image2": f"b{i}.gif", "label": "x" if i % 2 else "y"})
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "ds"
    mmdata.shard(str(raw / "m.csv"), str(out), columns={"image2": "image2"}, split={"train": 1.0}, progress=False)
    return out


def test_declared_view_decodes_as_photo_through_the_loader(tmp_path):
    ds = _dataset(tmp_path)
    recipe = mmdata.load_recipe({"seed": 0, "targets": {"image2.gif": "image"},
                                      "normalize": {"image": [{"op": "resize", "size": [16, 16], "side": "exact"}]}})
    batch = next(iter(mmdata.loader(str(ds), recipe=recipe, batch_size=3, split="train", shuffle=False)))
    view = np.asarray(batch.data["image2.gif"])
    assert view.shape[-3:] in ((3, 16, 16), (16, 16, 3)), view.shape
    # the colours (200, ~40, 10), not palette indices 0..3
    assert view.max() > 100


def test_undeclared_named_palette_keeps_indices(tmp_path):
    ds = _dataset(tmp_path)
    sample = next(iter(open_dataset(str(ds), split="train", shuffle=False)))
    assert np.asarray(sample.fields["image2.gif"]).max() < 4
    photo = next(iter(open_dataset(str(ds), split="train", shuffle=False, photo_fields=["image2.gif"])))
    assert np.asarray(photo.fields["image2.gif"]).max() > 100
