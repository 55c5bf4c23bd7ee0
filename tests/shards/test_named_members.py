"""Named members of a foreign WebDataset shard: ``k.depth.png``, ``k.seg.json``, ``k.caption_de.txt``.

Before (2026-12-03) only ``<name>.npy`` named a field: ``k.depth.png`` came back as the raw PNG bytes
in a field called ``depth.png`` (webdataset's decoders give users the decoded image), ``k.image.png``
the same although it is the sample's image, and ``mmdata augment`` of such shards dropped every member
it had no encoder for (the depth map, a ``.mp4``) without a word, and wrote ``k.seg.json`` as the
sample's ``json``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.codecs import decode_member, field_of
from mmdata.testing import audio_bytes, image_bytes


def _png(h: int, w: int, channels: int, seed: int) -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path: Path, samples: dict[str, dict[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for key, members in samples.items():
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


FOREIGN = {
    "k0": {"png": image_bytes(0), "depth.png": _png(24, 32, 1, 0), "seg.json": b'{"boxes": [[1, 2, 3, 4]]}',
           "caption_de.txt": "Ein Kreis".encode(), "voice.flac": audio_bytes(0), "mp4": b"\x00\x00\x00\x18ftypmp42",
           "cls": b"1"},
    "k1": {"image.png": image_bytes(1), "depth.png": _png(20, 30, 1, 1), "seg.json": b'{"boxes": []}',
           "caption_de.txt": "Ein Quadrat".encode(), "cls": b"0"},
}


def test_field_names_of_named_members() -> None:
    assert [field_of(e) for e in ("depth.png", "DEPTH.JPG", "seg.json", "caption_de.txt", "image.png", "audio.flac",
                                  "label.cls", "voice.flac", "mp4", "depth.npy", "npy")] == \
        ["depth", "depth", "seg", "caption_de", "image", "audio", "label", "voice.flac", "mp4", "depth", "array"]
    name, value, _ = decode_member("depth.png", _png(4, 6, 1, 0))
    assert name == "depth" and tuple(value.shape) == (1, 4, 6) and value.dtype == torch.uint8  # as the image is
    assert decode_member("voice.flac", b"abc") == ("voice.flac", b"abc", None)
    with pytest.raises(mmdata.MMDataError, match=r"cannot decode \.depth\.png member as an image"):
        decode_member("depth.png", b"not a png")
    with pytest.raises(mmdata.MMDataError, match="cannot supply the standard field 'label'"):
        decode_member("label.npy", b"")  # unchanged: a label comes only from its own codec


def test_a_foreign_shard_reads_named_members_decoded(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "foreign-000000.tar", FOREIGN)
    got = {s.key: s for s in mmdata.open_dataset(str(shard))}
    k0, k1 = got["k0"], got["k1"]
    assert sorted(k0.fields) == ["caption_de", "depth", "image", "label", "mp4", "seg", "voice.flac"]
    assert tuple(k0["depth"].shape) == (1, 24, 32) and k0["seg"] == {"boxes": [[1, 2, 3, 4]]}
    assert k0["caption_de"] == "Ein Kreis" and k0["voice.flac"] == audio_bytes(0) and k0["mp4"].startswith(b"\x00")
    assert "image" in k1.fields and tuple(k1["image"].shape)[0] == 3  # k1.image.png is the image
    batch = mmdata.collate([k0, k1])
    assert tuple(batch["depth"].shape) == (2, 1, 24, 32)  # padded, with each sample's size
    assert batch.lengths["depth"].tolist() == [[1, 24, 32], [1, 20, 30]]
    assert batch["caption_de"] == ["Ein Kreis", "Ein Quadrat"] and batch["seg"][1] == {"boxes": []}
    only = {s.key: sorted(s.fields) for s in mmdata.open_dataset(str(shard), modalities=["depth"])}
    assert only == {"k0": ["depth"], "k1": ["depth"]}


def test_augment_of_a_foreign_shard_keeps_every_member(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "foreign-000000.tar", FOREIGN)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="per-pixel maps"):  # the depth map is not flipped with the image
        augment_dataset(str(shard), tmp_path / "aug", recipe, copies=1, progress=False)
    out = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug", decode=False)}
    members = {k: sorted(s.fields) for k, s in out.items()}
    assert members["k0_aug0"] == sorted(["cls", "png", "depth.npy", "seg.json", "caption_de.txt", "voice.flac", "mp4"])
    assert members["k1_aug0"] == sorted(["cls", "png", "depth.npy", "seg.json", "caption_de.txt"])
    read = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug")}
    src = {s.key: s for s in mmdata.open_dataset(str(shard))}
    for key, s in read.items():
        orig = src[key.rsplit("_aug", 1)[0]]
        assert torch.equal(torch.as_tensor(s["depth"]), torch.as_tensor(orig["depth"]))  # not an image op's target
        assert torch.equal(torch.as_tensor(s["image"]), torch.as_tensor(orig["image"]).flip(-1))
        assert s["seg"] == orig["seg"] and s["caption_de"] == orig["caption_de"]
    assert out["k0_aug0"]["voice.flac"] == audio_bytes(0)
    assert json.loads(out["k0_aug0"]["seg.json"]) == {"boxes": [[1, 2, 3, 4]]}


def test_a_recipe_that_moves_pixels_warns_once_of_a_per_pixel_map(tmp_path: Path) -> None:
    """A depth map beside the image: hflip / random_resized_crop move the image alone (README: image ops
    transform 'image' only); the user is told once instead of training on misaligned maps."""
    from mmdata.augment.recipe import load_recipe

    shard = _tar(tmp_path / "foreign-000000.tar", {"k0": {"png": image_bytes(0), "depth.png": _png(24, 32, 1, 0)},
                                                   "k1": {"png": image_bytes(1), "depth.png": _png(24, 32, 1, 1)}})
    samples = list(mmdata.open_dataset(str(shard)))
    moving = load_recipe({"image": [{"op": "hflip", "p": 1.0}, {"op": "brightness_contrast"}]})
    with pytest.warns(UserWarning, match=r"field 'depth' has the image's height and width.*image\.hflip move") as seen:
        for s in samples:
            moving.apply_sample(s)
    assert len([w for w in seen if "per-pixel maps" in str(w.message)]) == 1
    batch = mmdata.collate(samples)
    with pytest.warns(UserWarning, match="field 'depth'"):
        load_recipe({"image": [{"op": "hflip", "p": 1.0}]}).apply_batched(batch)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        still = load_recipe({"image": [{"op": "brightness_contrast", "p": 1.0}]})  # moves no pixel: no warning
        for s in samples:
            still.apply_sample(s)
        moving.apply_sample(samples[0])  # warned once already


def test_a_manifest_column_mapped_to_a_named_field(tmp_path: Path) -> None:
    """``--column depth=depth`` (a field that is not image / audio / text / label): the column's PNGs
    become ``<key>.depth.png`` beside the image (a second image column was a skipped "second image file
    for the sample"); they are checked like images; ``to_hf`` gives the field an ``Image()`` column."""
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["image,depth,caption_de,label"]
    for i in range(4):
        (raw / f"rgb{i}.png").write_bytes(image_bytes(i))
        (raw / f"d{i}.png").write_bytes(_png(24, 32, 1, i) if i != 3 else b"\x89PNG\r\n\x1a\n cut short")
        (raw / f"c{i}.txt").write_text(f"Bild {i}", encoding="utf-8")
        rows.append(f"rgb{i}.png,d{i}.png,c{i}.txt,{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    plain = mmdata.shard(raw / "m.csv", tmp_path / "plain", progress=False)  # unchanged without --column
    assert plain["skipped_counts"]["members"] == 4 and "a second image file" in plain["skipped"][0]["reason"]
    rep = mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"depth": "depth", "caption_de": "caption_de"},
                       split="train=0.5,val=0.25,test=0.25", progress=False)
    assert rep["skipped_counts"]["members"] == 1 and "d3.png" in rep["skipped"][0]["source"]  # the corrupt one
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["modalities"]["depth"]["codecs"] == ["depth.png"]
    assert card["modalities"]["caption_de"]["codecs"] == ["caption_de.txt"]
    got = {s.key: s for split in ("train", "val", "test") for s in mmdata.open_dataset(tmp_path / "ds", split=split)}
    assert tuple(got["rgb0"]["depth"].shape) == (1, 24, 32) and got["rgb0"]["caption_de"] == "Bild 0"
    assert tuple(got["rgb0"]["image"].shape) == (3, 24, 32) and "depth" not in got["rgb3"].fields
    import pandas as pd

    index = pd.read_parquet(tmp_path / "ds" / "index.parquet").set_index("key")
    assert index.loc["rgb0", "image_channels"] == 3  # the index's image facts are the image's, not the depth map's
    with pytest.raises(mmdata.MMDataError, match=r"--column Depth=depth: a field name is 1 to 64 lowercase"):
        mmdata.shard(raw / "m.csv", tmp_path / "bad", columns={"Depth": "depth"}, progress=False)
    pytest.importorskip("datasets")
    from mmdata.interop.hf import to_hf

    hf = to_hf(tmp_path / "ds", split="train", cache_dir=tmp_path / "cache")
    assert type(hf.features["depth"]).__name__ == "Image" and str(hf.features["caption_de"]) == "Value('string')"
    rows = list(hf)
    assert rows and all(r["depth"] is None if r["key"] == "rgb3" else r["depth"].size == (32, 24) for r in rows)
    assert all(r["caption_de"] == f"Bild {r['key'][3:]}" for r in rows)
