"""Named members of a foreign WebDataset shard: ``k.depth.png``, ``k.seg.json``, ``k.caption_de.txt``.

Before (2026-12-03) ``k.depth.png`` came back as its raw PNG bytes (webdataset's decoders give users
an array), and ``mmdata augment`` of such shards dropped every member it had no encoder for (the depth
map, a ``.mp4``) without a word, and wrote ``k.seg.json`` as the sample's ``json``. Fields keep
WebDataset's names (the whole extension: ``seg.png`` and ``seg.json`` are two fields, a dotted key's
``001.jpg`` and ``001.txt`` too); a named image gives the values it stores (a mask's palette indices,
16-bit depth), not the image's RGB."""

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
    "k1": {"png": image_bytes(1), "depth.png": _png(20, 30, 1, 1), "seg.json": b'{"boxes": []}',
           "caption_de.txt": "Ein Quadrat".encode(), "cls": b"0"},
}


def _encoded(im: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")  # type: ignore[attr-defined]
    return buf.getvalue()


def test_field_names_and_values_of_named_members() -> None:
    from PIL import Image

    assert [field_of(e) for e in ("depth.png", "DEPTH.JPG", "seg.json", "caption_de.txt", "image.png", "voice.flac",
                                  "mp4", "depth.npy", "npy", ".npy")] == \
        ["depth.png", "depth.jpg", "seg.json", "caption_de.txt", "image.png", "voice.flac", "mp4", "depth", "array",
         ".npy"]
    name, value, _ = decode_member("depth.png", _png(4, 6, 1, 0))
    assert name == "depth.png" and tuple(value.shape) == (1, 4, 6) and value.dtype == torch.uint8
    assert decode_member("voice.flac", b"abc") == ("voice.flac", b"abc", None)
    with pytest.raises(mmdata.MMDataError, match=r"cannot decode \.depth\.png member"):
        decode_member("depth.png", b"not a png")
    with pytest.raises(mmdata.MMDataError, match="cannot supply the standard field 'label'"):
        decode_member("label.npy", b"")  # unchanged: a label comes only from its own codec
    # the values a map stores (QA 2026-12-03: a paletted mask came back as its colours, 16-bit depth >> 8)
    seg = Image.fromarray(np.array([[0, 1, 2, 3, 4]], np.uint8), "P")
    seg.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128] + [0] * 753)
    assert decode_member("seg.png", _encoded(seg))[1].tolist() == [[[0, 1, 2, 3, 4]]]
    depth = np.array([[1000, 1001, 1255, 40000, 65535]], np.uint16)
    assert decode_member("depth.png", _encoded(Image.fromarray(depth)))[1].tolist() == [depth.tolist()]
    matte = Image.fromarray(np.array([[[9, 200]]], np.uint8), "LA")
    assert decode_member("matte.png", _encoded(matte))[1].tolist() == [[[9]], [[200]]]  # alpha kept


def test_a_foreign_shard_reads_named_members_decoded(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "foreign-000000.tar", FOREIGN)
    got = {s.key: s for s in mmdata.open_dataset(str(shard))}
    k0, k1 = got["k0"], got["k1"]
    assert sorted(k0.fields) == ["caption_de.txt", "depth.png", "image", "label", "mp4", "seg.json", "voice.flac"]
    assert tuple(k0["depth.png"].shape) == (1, 24, 32) and k0["seg.json"] == {"boxes": [[1, 2, 3, 4]]}
    assert k0["caption_de.txt"] == "Ein Kreis" and k0["voice.flac"] == audio_bytes(0)
    assert k0["mp4"].startswith(b"\x00")
    batch = mmdata.collate([k0, k1])
    assert tuple(batch["depth.png"].shape) == (2, 1, 24, 32)  # padded, with each sample's size
    assert batch.lengths["depth.png"].tolist() == [[24, 32], [20, 30]]  # (h, w), as the image's (QA36 video #4)
    assert batch["caption_de.txt"] == ["Ein Kreis", "Ein Quadrat"] and batch["seg.json"][1] == {"boxes": []}
    only = {s.key: sorted(s.fields) for s in mmdata.open_dataset(str(shard), modalities=["depth.png"])}
    assert only == {"k0": ["depth.png", "label"], "k1": ["depth.png", "label"]}  # the label kept (QA38 rv1 #6)


def test_two_members_of_one_name_and_dotted_keys_stay_apart(tmp_path: Path) -> None:
    """QA 2026-12-03: with field = the name before the type, COCO-panoptic's k.seg.png + k.seg.json and a
    ShardWriter key "img.001" (img.001.jpg + img.001.txt: key "img", members "001.jpg" / "001.txt") were
    "repeated members", and k.jpg + k.image.json "cannot supply the image": the samples were lost."""
    shard = _tar(tmp_path / "c.tar", {
        "k0": {"jpg": image_bytes(0, fmt="jpg"), "seg.png": _png(24, 32, 1, 0), "seg.json": b'{"segments_info": []}'},
        "k1": {"jpg": image_bytes(1, fmt="jpg"), "image.json": b"{}", "label.txt": b"cat", "audio.json": b"{}"},
        "img": {"001.jpg": image_bytes(2, fmt="jpg"), "001.txt": b"cap"},
    })
    ds = mmdata.open_dataset(str(shard), on_error="skip")
    got = {s.key: sorted(s.fields) for s in ds}
    assert got == {"k0": ["image", "seg.json", "seg.png"], "k1": ["audio.json", "image", "image.json", "label.txt"],
                   "img": ["001.jpg", "001.txt"]}
    assert not ds.skipped


def test_a_field_no_sample_of_a_batch_has_is_a_list_not_the_end_of_the_epoch(tmp_path: Path) -> None:
    """QA 2026-12-03: JSON null in every sample of a batch made collate raise StopIteration, which a
    DataLoader takes for the end of its data: the epoch ended there without a word."""
    samples = {k: {"png": image_bytes(0), "cls": b"1", "seg.json": b"null" if k in "ab" else b'{"boxes": []}'}
               for k in "abcd"}
    shard = _tar(tmp_path / "null.tar", samples)
    loader = mmdata.loader(str(shard), batch_size=2, shuffle=False)
    batches = list(loader)
    assert [b.keys for b in batches] == [["a", "b"], ["c", "d"]]
    first = batches[0]
    assert first["seg.json"] == [None, None] and not first.present["seg.json"].any()
    b = mmdata.collate([mmdata.Sample("x", {"a": np.ones((2, 2), ">f4"), "s": np.array(["t"]), "z": np.ones(())}),
                        mmdata.Sample("y", {"a": np.ones((2, 2), ">f4"), "s": np.array(["u"]), "z": np.ones(())})])
    assert b["a"].dtype == torch.float32 and isinstance(b["s"], list) and tuple(b["z"].shape) == (2,)


def test_augment_of_a_foreign_shard_keeps_every_member(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "foreign-000000.tar", FOREIGN)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="per-pixel maps"):  # the depth map is not flipped with the image
        augment_dataset(str(shard), tmp_path / "aug", recipe, copies=1, progress=False)
    out = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug", decode=False)}
    members = {k: sorted(s.fields) for k, s in out.items()}
    assert members["k0_aug0"] == sorted(["cls", "png", "depth.png", "seg.json", "caption_de.txt", "voice.flac", "mp4"])
    assert members["k1_aug0"] == sorted(["cls", "png", "depth.png", "seg.json", "caption_de.txt"])
    read = {s.key: s for s in mmdata.open_dataset(tmp_path / "aug")}
    src = {s.key: s for s in mmdata.open_dataset(str(shard))}
    for key, s in read.items():
        orig = src[key.rsplit("_aug", 1)[0]]
        assert torch.equal(torch.as_tensor(s["depth.png"]), torch.as_tensor(orig["depth.png"]))  # not moved, same values
        assert torch.equal(torch.as_tensor(s["image"]), torch.as_tensor(orig["image"]).flip(-1))
        assert s["seg.json"] == orig["seg.json"] and s["caption_de.txt"] == orig["caption_de.txt"]
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
    with pytest.warns(UserWarning, match=r"field 'depth.png' has the image's height and width.*image\.hflip move") as seen:
        for s in samples:
            moving.apply_sample(s)
    assert len([w for w in seen if "per-pixel maps" in str(w.message)]) == 1
    batch = mmdata.collate(samples)
    with pytest.warns(UserWarning, match="field 'depth.png'"):
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
    become ``<key>.depth.png`` beside the image, the field ``depth.png`` (a second image column was a
    skipped "second image file for the sample"); they are checked like images; ``to_hf`` gives the field
    an ``Image()`` column."""
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
    assert card["modalities"]["depth.png"]["codecs"] == ["depth.png"]
    assert card["modalities"]["caption_de.txt"]["codecs"] == ["caption_de.txt"]
    got = {s.key: s for split in ("train", "val", "test") for s in mmdata.open_dataset(tmp_path / "ds", split=split)}
    assert tuple(got["rgb0"]["depth.png"].shape) == (1, 24, 32) and got["rgb0"]["caption_de.txt"] == "Bild 0"
    assert tuple(got["rgb0"]["image"].shape) == (3, 24, 32) and "depth.png" not in got["rgb3"].fields
    import pandas as pd

    index = pd.read_parquet(tmp_path / "ds" / "index.parquet").set_index("key")
    assert index.loc["rgb0", "image_channels"] == 3  # the index's image facts are the image's, not the depth map's
    with pytest.raises(mmdata.MMDataError, match=r"--column Depth=depth: a field name is 1 to 64 lowercase"):
        mmdata.shard(raw / "m.csv", tmp_path / "bad", columns={"Depth": "depth"}, progress=False)
    pytest.importorskip("datasets")
    from mmdata.interop.hf import to_hf

    hf = to_hf(tmp_path / "ds", split="train", cache_dir=tmp_path / "cache")
    assert type(hf.features["depth.png"]).__name__ == "Image" and str(hf.features["caption_de.txt"]) == "Value('string')"
    rows = list(hf)
    assert rows and all(r["depth.png"] is None if r["key"] == "rgb3" else r["depth.png"].size == (32, 24) for r in rows)
    assert all(r["caption_de.txt"] == f"Bild {r['key'][3:]}" for r in rows)


def test_what_other_tools_leave_is_named_plainly(tmp_path: Path) -> None:
    """QA 2026-12-03: a 5-byte "shard" (a shard list matched by a glob) was "truncated after member
    '<start>'"; webdataset's ``pipe:`` URLs "did not exist"; PIL's errors showed a BytesIO's address."""
    (tmp_path / "list.tar").write_bytes(b"hello")
    ds = mmdata.open_dataset(str(tmp_path / "list.tar"), on_error="skip")
    assert list(ds) == [] and any("is not a tar file (5 bytes" in m for _, _, m in ds.errors), ds.errors
    with pytest.raises(mmdata.MMDataError, match="pipe: URLs run a shell command, which mmdata never does"):
        mmdata.open_dataset("pipe:cat x.tar")
    with pytest.raises(mmdata.MMDataError) as exc:
        decode_member("depth.png", b"not a png")
    assert "0x" not in str(exc.value) and str(exc.value).endswith("cannot identify image file")


def test_second_qa_pass_string_json_jpeg_maps_and_mixed_depths(tmp_path: Path) -> None:
    """QA 2026-12-03 (second pass): augment wrote a JSON member holding a string as ``k.seg.json.txt``;
    the map warning missed a JPEG image decoded DCT-scaled for a resizing recipe; an 8-bit and a 16-bit
    depth map in one batch (or a bool and an L mask) failed collate and ended the epoch."""
    from PIL import Image

    from mmdata.augment.recipe import pixel_maps

    shard = _tar(tmp_path / "s.tar", {"a": {"png": image_bytes(0), "seg.json": b'"hello"', "json": b'"x"'}})
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    augment_dataset(str(shard), tmp_path / "aug", recipe, copies=1, progress=False)
    back = next(iter(mmdata.open_dataset(tmp_path / "aug")))
    assert back["seg.json"] == "hello" and back["json"] == "x" and sorted(back.fields) == ["image", "json", "seg.json"]
    # a 256x192 JPEG decoded at 1/4 (64x48) beside its 256x192 depth map
    assert pixel_maps({"image": torch.zeros(3, 64, 48), "depth.png": torch.zeros(1, 256, 192)}) == ["depth.png"]
    assert pixel_maps({"image": torch.zeros(3, 64, 48), "depth.png": torch.zeros(1, 250, 192)}) == []
    eight = _encoded(Image.fromarray(np.full((4, 4), 7, np.uint8)))
    sixteen = _encoded(Image.fromarray(np.full((4, 4), 40000, np.uint16)))
    mixed = _tar(tmp_path / "m.tar", {"a": {"png": image_bytes(0), "depth.png": eight},
                                      "b": {"png": image_bytes(1), "depth.png": sixteen}})
    batch = next(iter(mmdata.loader(str(mixed), batch_size=2, shuffle=False)))
    assert batch["depth.png"].dtype == torch.int32 and batch["depth.png"][:, 0, 0, 0].tolist() == [7, 40000]


def test_a_named_image_bomb_is_refused_as_too_large(tmp_path: Path) -> None:
    """QA 2026-12-03: a named JPEG / BMP declaring billions of pixels was refused as a corrupt member
    (Pillow's DecompressionBombError), the same file as the image as too large: now both are too large."""
    import struct

    from PIL import Image

    from mmdata.codecs import OversizeMediaError

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "BMP")
    bmp = bytearray(buf.getvalue())
    bmp[18:26] = struct.pack("<ii", 40000, 40000)
    for ext, data in (("depth.jpg", jpeg), ("jpg", jpeg), ("depth.bmp", bmp), ("bmp", bmp)):
        with pytest.raises(OversizeMediaError):
            decode_member(ext, bytes(data))


def test_augment_writes_named_pngs_back_as_pngs_of_the_same_values(tmp_path: Path) -> None:
    """QA 2026-12-03: a 5 KB 16-bit depth PNG came back from augment as a ~1 MB .npy; a PNG that holds
    the values exactly is written instead (a paletted mask keeps its indices, not its palette); a JPEG's
    values go to .npy under the same field."""
    from PIL import Image

    seg = Image.fromarray(np.array([[0, 1, 2, 3]], np.uint8), "P")
    seg.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    depth = _encoded(Image.fromarray(np.array([[1000, 65535, 0, 7]], np.uint16)))
    matte = _encoded(Image.fromarray(np.array([[[1, 2], [3, 4], [5, 6], [7, 8]]], np.uint8), "LA"))
    shard = _tar(tmp_path / "s.tar", {"a": {"png": image_bytes(0, size=(1, 4)), "seg.png": _encoded(seg),
                                            "depth.png": depth, "matte.png": matte,
                                            "right.jpg": image_bytes(1, size=(1, 4), fmt="jpg")}})
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: brightness_contrast, p: 1.0}\n", encoding="utf-8")
    augment_dataset(str(shard), tmp_path / "aug", recipe, copies=1, progress=False)
    raw = next(iter(mmdata.open_dataset(tmp_path / "aug", decode=False)))
    assert sorted(raw.fields) == ["depth.png", "matte.png", "png", "right.jpg.npy", "seg.png"]
    src, back = next(iter(mmdata.open_dataset(str(shard)))), next(iter(mmdata.open_dataset(tmp_path / "aug")))
    for field in ("seg.png", "depth.png", "matte.png", "right.jpg"):
        assert torch.equal(torch.as_tensor(back[field]), torch.as_tensor(src[field])), field
        assert torch.as_tensor(back[field]).dtype == torch.as_tensor(src[field]).dtype, field


def test_bare_shards_say_when_no_sample_has_a_requested_field(tmp_path: Path) -> None:
    """QA 2026-12-03: ``modalities=["depth"]`` on bare shards whose members are ``k.depth.png`` (the field
    'depth.png') gave samples without fields and no word (a dataset folder raises on an unknown name)."""
    shard = _tar(tmp_path / "s.tar", {"a": {"png": image_bytes(0), "depth.png": _png(4, 4, 1, 0)}})
    with pytest.warns(UserWarning, match=r"modalities \['depth'\]: none of the 1 samples read has it.*'depth.png'"):
        assert [sorted(s.fields) for s in mmdata.open_dataset(str(shard), modalities=["depth"])] == [[]]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [sorted(s.fields) for s in mmdata.open_dataset(str(shard), modalities=["depth.png"])] == [["depth.png"]]
        assert len(list(mmdata.open_dataset(str(shard), modalities=["depth.png"], decode=False))) == 1


def test_the_cli_prints_a_library_warning_as_its_own_warning_line(tmp_path: Path) -> None:
    """A UserWarning from the library (here the per-pixel map) printed as Python's two lines, the second
    a line of mmdata's source; the commands' own warnings are one ``warning:`` line on stderr."""
    import subprocess
    import sys

    shard = _tar(tmp_path / "s.tar", {"a": {"png": image_bytes(0), "depth.png": _png(24, 32, 1, 0)}})
    (tmp_path / "r.yaml").write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "augment", str(shard), str(tmp_path / "aug"),
                          "-r", str(tmp_path / "r.yaml")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    said = run.stderr.replace("\n", " ")
    assert "warning: field 'depth.png' has the image's height and width" in said
    assert "UserWarning" not in run.stderr and "apply_sample(" not in run.stderr


def test_a_16_bit_colour_png_keeps_every_bit_through_read_and_augment(tmp_path: Path) -> None:
    """A KITTI optical-flow map is a 16-bit RGB PNG: Pillow keeps only the high 8 bits (3000 -> 11), so the
    flow was lost; cv2 reads (and ``mmdata augment`` writes) all 16."""
    import cv2

    flow = (np.arange(4 * 6 * 3).reshape(4, 6, 3) * 2011 % 65536).astype(np.uint16)
    rgba = np.concatenate([flow, np.full((4, 6, 1), 65535, np.uint16)], axis=2)
    members = {}
    for name, arr in (("flow.png", flow), ("normal.png", rgba)):
        ok, buf = cv2.imencode(".png", arr[..., [2, 1, 0, 3][: arr.shape[2]]])
        members[name] = buf.tobytes()
    shard = _tar(tmp_path / "s.tar", {"a": {"png": image_bytes(0, size=(4, 6)), **members}})
    got = next(iter(mmdata.open_dataset(str(shard))))
    assert got["flow.png"].dtype == torch.int32 and got["flow.png"].permute(1, 2, 0).numpy().tolist() == flow.tolist()
    assert got["normal.png"].permute(1, 2, 0).numpy().tolist() == rgba.tolist()
    augment_dataset(str(shard), tmp_path / "aug", {"image": [{"op": "brightness_contrast", "p": 1.0}]}, copies=1,
                    progress=False)
    back = next(iter(mmdata.open_dataset(tmp_path / "aug")))
    raw = next(iter(mmdata.open_dataset(tmp_path / "aug", decode=False)))
    assert sorted(raw.fields) == ["flow.png", "normal.png", "png"]  # PNGs, not .npy
    for name in ("flow.png", "normal.png"):
        assert torch.equal(back[name], got[name]), name
