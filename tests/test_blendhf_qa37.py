"""QA round 37: blend and Hub-card defects.

* fed #1: a blend of RGB, palette (P) and RGBA sites was warned of as "differ in image channels ... does not
  collate", though the reader decodes P / RGBA to RGB and the batch collates: the check goes by decoded channels;
* licence #5: the blend card's ``licenses`` dropped a dataset without a licence, warned of one licence spelt two
  ways ("CC-BY-4.0" / "CC BY 4.0"), and carried none of the sources' identifying-metadata counts;
* licence #1: a per-sample licence column contradicting ``--license``: the Hub card claimed the one licence;
* vendor #8: the Hub card hid the card's copies across splits;
* sign #6: ``to_hf`` lost the shape of an empty (0, 75, 3) array;
* blend copies: size + CRC-32 is no proof of the same bytes (PNG CRC-32s collide): confirmed by the bytes.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata


def _images(root: Path, mode: str, seed: int, n: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            im = im.convert("P", palette=Image.ADAPTIVE) if mode == "P" else im.convert(mode)
            im.save(root / cls / f"{mode}{i}.png")
    return root


def _blend_warnings(datasets: dict[str, Path], **kw: object) -> tuple[mmdata.BlendDataset, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        ds = mmdata.blend({k: str(v) for k, v in datasets.items()}, **kw)
    return ds, [str(w.message) for w in got]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("qa37sites")
    out = {}
    for i, mode in enumerate(("RGB", "P", "RGBA", "L")):
        out[mode] = t / f"ds_{mode}"
        mmdata.shard(_images(t / f"raw_{mode}", mode, seed=i), out[mode], progress=False)
    return out


def test_palette_and_rgba_sites_blend_without_a_channels_warning(sites: dict[Path, Path]) -> None:
    ds, said = _blend_warnings({"rgb": sites["RGB"], "pal": sites["P"], "rgba": sites["RGBA"]})
    assert not [w for w in said if "image channels" in w], said
    assert ds._formats["image_channels"] == {"rgb": [3], "pal": [3], "rgba": [3]}
    shapes = {tuple(b["image"].shape[1:]) for b in mmdata.loader({"rgb": str(sites["RGB"]), "pal": str(sites["P"]),
                                                                  "rgba": str(sites["RGBA"])}, batch_size=100)}
    assert shapes == {(3, 16, 16)}


def test_grey_and_rgb_sites_still_warned(sites: dict[str, Path]) -> None:
    _, said = _blend_warnings({"rgb": sites["RGB"], "grey": sites["L"]})
    hit = [w for w in said if "image channels" in w]
    assert hit and "rgb: 3" in hit[0] and "grey: 1" in hit[0] and "channels=3" in hit[0], said
