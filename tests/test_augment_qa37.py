"""QA round 37, ``mmdata augment`` (and the recipe's warnings in the loader): real files, sharded and augmented.

podcast #3: a normalize ``pad_trim`` wrote its padding into the clips (every copy 10 s, the real lengths lost).
podcast #10: augment output over a ``--segment`` dataset dropped the ``segment_*`` index columns.
sign #1: flips and crops left keypoint arrays (T, 75, 3) as they were, without a word.
sign #2: ``consistent_hflip`` swapped LEFT / RIGHT in the text of classes named LEFT / RIGHT, not their labels.
sign #7: a dataset of named image fields (frame0.jpg ...) was said to have "no image", nothing more.
licence #4: the augmented copies of a NoDerivatives dataset claimed its licence, without a warning.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset

GAIN = {"audio": [{"op": "gain", "p": 1.0, "min_db": -1, "max_db": -1}]}


def _card(ds: Path) -> dict:
    return json.loads((ds / "dataset.json").read_text())


def _rows(ds: Path) -> list[dict]:
    return pq.read_table(ds / "index.parquet").to_pylist()


# -- podcast #3: pad_trim's padding ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips of 0.3, 0.5, 0.8 and 1.6 s at 8 kHz in two classes."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for c in "ab":
        (root / "raw" / c).mkdir(parents=True)
        for i, sec in enumerate((0.3, 0.5, 0.8, 1.6)):
            sf.write(root / "raw" / c / f"ep{i}.wav", (0.1 * rng.standard_normal(int(8000 * sec))).astype("float32"),
                     8000, subtype="PCM_16")
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def test_pad_trim_padding_is_not_written_and_real_lengths_stay(clips: Path, tmp_path: Path) -> None:
    recipe = {"seed": 0, "normalize": {"audio": [{"op": "pad_trim", "seconds": 1.0}]}, **GAIN}
    out = tmp_path / "aug"
    augment_dataset(clips, out, recipe, copies=1, keep_original=True, progress=False)
    src = {r["key"]: r["audio_seconds"] for r in _rows(clips)}
    rows = _rows(out)
    assert len(rows) == 16
    for r in rows:  # the real length, trimmed at 1 s (the 1.6 s clips), never padded to it
        assert r["audio_seconds"] == pytest.approx(min(src[r["aug_source"]], 1.0)), r["key"]
    # the loader over the output gives the lengths the same recipe gives in the loader over the source
    in_loader = {k: n for b in mmdata.loader(clips, batch_size=8, recipe=recipe, shuffle=False, stage="eval")
                 for k, n in zip(b.keys, b.lengths["audio"].tolist())}
    written = {k: n for b in mmdata.loader(out, batch_size=16, shuffle=False)
               for k, n in zip(b.keys, b.lengths["audio"].tolist())}
    assert sorted(in_loader.values()) == [2400, 2400, 4000, 4000, 6400, 6400, 8000, 8000]
    for key, n in written.items():
        assert n == in_loader[key.removesuffix("_aug0")], key
    assert mmdata.verify(out)["ok"]


# -- podcast #10: segment columns --------------------------------------------------------------------------------
def test_segment_columns_are_carried_to_every_row(tmp_path: Path) -> None:
    sf.write(tmp_path / "ep.wav", (0.1 * np.random.default_rng(0).standard_normal(8000 * 12)).astype("float32"), 8000,
             subtype="PCM_16")
    (tmp_path / "m.csv").write_text("audio,start,end,text\n" + "".join(f"ep.wav,{s},{s + 3},t\n" for s in range(0, 12, 3)))
    mmdata.shard(tmp_path / "m.csv", tmp_path / "seg", segment={"start": "start", "end": "end"}, progress=False)
    src = {r["key"]: r for r in _rows(tmp_path / "seg")}
    cols = [c for c in next(iter(src.values())) if c.startswith("segment_")]
    assert {"segment_source", "segment_start", "segment_duration", "segment_frames"} <= set(cols)
    out = tmp_path / "aug"
    augment_dataset(tmp_path / "seg", out, GAIN, copies=1, keep_original=True, progress=False)
    rows = _rows(out)
    assert len(rows) == 8
    for r in rows:
        for c in cols:
            assert r[c] == src[r["aug_source"]][c], (r["key"], c)
    assert mmdata.verify(out)["ok"]
    # a rerun of the finished job writes nothing: the carried columns are part of the same job
    assert augment_dataset(tmp_path / "seg", out, GAIN, copies=1, keep_original=True, progress=False)["up_to_date"]


# -- sign #1: keypoint arrays ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images with a pose track (T, 5, 3) each, in classes LEFT / RIGHT / STOP, and a caption each."""
    root = tmp_path_factory.mktemp("signs")
    rng = np.random.default_rng(1)
    for c, caption in (("LEFT", "point left"), ("RIGHT", "point right"), ("STOP", "flat hand")):
        (root / "raw" / c).mkdir(parents=True)
        for i in range(3):
            img = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
            img[:, :8, 0] = 255
            Image.fromarray(img).save(root / "raw" / c / f"{c}{i}.png")
            pose = rng.random((4 + i, 5, 3)).astype(np.float32)
            pose[..., 0] *= 16  # x in pixels
            np.save(root / "raw" / c / f"{c}{i}.pose.npy", pose)
            (root / "raw" / c / f"{c}{i}.txt").write_text(caption)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def test_flip_warns_of_keypoint_arrays_in_augment_and_loader(signs: Path, tmp_path: Path) -> None:
    flip = {"image": [{"op": "hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match=r"array field 'pose' \(\d+, 5, 3\) .*if it holds x, y coordinates.*image\.hflip.*"
                                         r"transform=.*s\.meta\['aug'\]") as rec:
        augment_dataset(signs, tmp_path / "aug", flip, progress=False)
    assert sum("'pose'" in str(w.message) for w in rec) == 1  # once
    assert any("'pose'" in w for w in _card(tmp_path / "aug")["warnings"])
    with pytest.warns(UserWarning, match=r"array field 'pose'"):
        next(iter(mmdata.loader(signs, batch_size=4, recipe=flip, shuffle=False)))
    with warnings.catch_warnings():  # no op moving pixels: nothing to say of the pose
        warnings.simplefilter("error")
        next(iter(mmdata.loader(signs, batch_size=4, recipe={"image": [{"op": "brightness_contrast", "p": 1.0}]},
                                shuffle=False)))


def test_the_advised_transform_mirrors_the_keypoints(signs: Path) -> None:
    """What the warning advises works: a transform reading s.meta['aug'] mirrors x where the flip applied."""
    def mirror(s: mmdata.Sample) -> mmdata.Sample:
        if any(e["op"] == "image.hflip" and e["params"].get("applied") for e in s.meta.get("aug", [])):
            pose = np.array(s["pose"], copy=True)
            pose[..., 0] = s["image"].shape[-1] - pose[..., 0]
            return s.with_fields(pose=pose)
        return s

    src = {s.key: s for s in mmdata.open_dataset(signs)}
    flip = {"image": [{"op": "hflip", "p": 0.5}], "seed": 3}
    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in mmdata.loader(signs, batch_size=3, recipe=flip, transform=mirror, shuffle=False):
            for i, (key, meta) in enumerate(zip(b.keys, b.meta["samples"])):
                applied = any(e["op"] == "image.hflip" and e["params"].get("applied") for e in meta["aug"])
                seen.add(applied)
                x = np.asarray(src[key]["pose"])[..., 0]
                got = b["pose"][i, : x.shape[0], :, 0].numpy()
                np.testing.assert_allclose(got, 16 - x if applied else x, rtol=1e-6)
    assert seen == {True, False}


# -- sign #2: class names that name a side -----------------------------------------------------------------------
def test_consistent_hflip_warns_of_side_class_names(signs: Path, tmp_path: Path) -> None:
    cflip = {"sample": [{"op": "consistent_hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match=r"sample\.consistent_hflip\) flips the image and swaps left / right in the "
                                         r"text but never changes the label.*LEFT -> RIGHT, RIGHT -> LEFT.*transform="):
        augment_dataset(signs, tmp_path / "aug", cflip, progress=False)
    card = _card(tmp_path / "aug")
    assert any("never changes the label" in w and "'LEFT'" in w for w in card["warnings"])
    # the text is swapped, the label is not: what the warning says
    names = card["label_names"]
    for s in mmdata.open_dataset(tmp_path / "aug"):
        if s.key.startswith("LEFT"):
            assert s["text"] == "point right" and names[s["label"]] == "LEFT"
    with pytest.warns(UserWarning, match=r"image\.hflip\) mirrors the image but never changes the label"):
        augment_dataset(signs, tmp_path / "aug2", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)


def test_no_side_warning_for_other_class_names() -> None:
    from mmdata.augment.recipe import label_side_notes

    assert label_side_notes({"sample": [{"op": "consistent_hflip"}]}, ["cat", "bright", "dog"]) == []
    assert label_side_notes({"image": [{"op": "vflip"}]}, ["LEFT", "RIGHT"]) == []
    assert len(label_side_notes({"image": [{"op": "one_of", "ops": [{"op": "hflip"}]}]}, ["turn_left"])) == 1


# -- sign #7: named image fields ---------------------------------------------------------------------------------
def test_named_image_fields_are_named_when_image_ops_have_nothing_to_act_on(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["key,frame0,frame1,text,label"]
    for i in range(4):
        for f in (0, 1):
            Image.fromarray(np.full((8, 8, 3), 40 * i + f, np.uint8)).save(raw / f"s{i}_{f}.jpg")
        lines.append(f"s{i},s{i}_0.jpg,s{i}_1.jpg,hello,{i % 2}")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"frame0": "frame0", "frame1": "frame1"}, progress=False)
    with pytest.warns(UserWarning, match=r"section 'image' \(hflip\) has no effect: .* has no image \(it has text\); "
                                         r"its named image fields 'frame0\.jpg', 'frame1\.jpg' are left as they are: "
                                         r"image ops act on the field 'image' only"):
        augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)


# -- licence #4: NoDerivatives -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lic", ["CC-BY-ND-4.0", "CC BY-NC-ND 3.0"])
def test_no_derivatives_source_is_warned_of_and_not_claimed(tmp_path: Path, lic: str) -> None:
    raw = tmp_path / "raw" / "cat"
    raw.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(raw / f"{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", license=lic, progress=False)
    flip = {"image": [{"op": "hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match=rf"licensed {lic}, a NoDerivatives licence: it forbids sharing adapted"):
        augment_dataset(tmp_path / "ds", tmp_path / "aug", flip, progress=False)
    card = _card(tmp_path / "aug")
    assert card["license"] != lic and card["license"].startswith(f"adapted from {lic} material")
    assert card["augmentation"]["augmented_from"]["license"] == lic
    assert any(w.startswith("source dataset ds is licensed") for w in card["warnings"])
    with pytest.warns(UserWarning, match="NoDerivatives"):  # an explicit --license is the user's, still warned
        augment_dataset(tmp_path / "ds", tmp_path / "aug2", flip, progress=False, license="my terms")
    assert _card(tmp_path / "aug2")["license"] == "my terms"


def test_a_licence_allowing_adaptations_is_kept_without_a_warning(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "cat"
    raw.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(raw / "0.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", license="CC-BY-4.0", progress=False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert not any("NoDerivatives" in str(w.message) for w in rec)
    assert _card(tmp_path / "aug")["license"] == "CC-BY-4.0"
