"""`to_rgb` / `to_gray` with `alpha: blend` on images read from shards: the reader used to drop the alpha
channel at decode (PIL's convert("RGB")), so transparent pixels stayed black whatever the background."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.codecs import decode_image

BLEND = {"normalize": {"image": [{"op": "to_rgb", "alpha": "blend", "background": 255}]}}


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _rgba() -> Image.Image:
    a = np.zeros((4, 6, 4), np.uint8)
    a[:, :3] = (200, 10, 10, 255)  # opaque red on the left, transparent black on the right
    return Image.fromarray(a, "RGBA")


def _palette() -> Image.Image:
    im = Image.new("P", (6, 4), 0)
    im.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    im.paste(1, (0, 0, 3, 4))
    im.info["transparency"] = 0
    return im


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alpha")
    raw = root / "raw"
    raw.mkdir()
    (raw / "rgba.png").write_bytes(_png(_rgba()))
    (raw / "pal.png").write_bytes(_png(_palette()))
    la = np.stack([np.full((4, 6), 90, np.uint8), np.r_[[[255] * 3 + [0] * 3] * 4].astype(np.uint8)], -1)
    (raw / "la.png").write_bytes(_png(Image.fromarray(la, "LA")))
    for k in ("rgba", "pal", "la"):
        (raw / f"{k}.cls").write_text("0")
    mmdata.shard(raw, root / "ds", progress=False)
    return root / "ds"


def test_decode_keeps_alpha_only_when_asked() -> None:
    data = _png(_rgba())
    assert tuple(decode_image(data).shape) == (3, 4, 6)
    kept = decode_image(data, keep_alpha=True)
    assert tuple(kept.shape) == (4, 4, 6) and kept[3, 0, 5] == 0 and kept[3, 0, 0] == 255
    assert tuple(decode_image(_png(_palette()), keep_alpha=True).shape) == (4, 4, 6)


def _by_key(batches: list[mmdata.Batch]) -> dict[str, torch.Tensor]:
    return {k: b["image"][i] for b in batches for i, k in enumerate(b.keys)}


def test_loader_blends_transparent_pixels_onto_the_background(data: Path) -> None:
    got = _by_key(list(mmdata.loader(data, 1, recipe=BLEND, split="train")))
    for key in ("rgba", "pal", "la"):
        img = got[key]
        assert img.shape[0] == 3, key
        assert img[:, :, 3:].eq(255).all(), f"{key}: transparent pixels are the background"
        assert not img[:, :, :3].eq(255).all(), key
    assert got["rgba"][:, 0, 0].tolist() == [200, 10, 10]
    # without blend the reader drops alpha as before: transparent black stays black
    plain = _by_key(list(mmdata.loader(data, 1, recipe={"normalize": {"image": [{"op": "to_rgb"}]}}, split="train")))
    assert plain["rgba"][:, :, 3:].eq(0).all()


def test_offline_augment_blends_too(data: Path, tmp_path: Path) -> None:
    augment_dataset(data, tmp_path / "aug", BLEND, copies=1, progress=False)
    imgs = {s.key: s["image"] for s in mmdata.open_dataset(tmp_path / "aug")}
    assert imgs and all(v.shape[0] == 3 and v[:, :, 3:].eq(255).all() for v in imgs.values())
