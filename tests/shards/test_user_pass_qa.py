"""A new user's pass over shard / inspect / augment (2026-12-02, QA on /tmp/qa_user): samples at the root
beside class folders, unlabelled samples in class-folder data, inspect's image warnings, a recipe's
``balance`` section in ``mmdata augment``, an empty audio file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.errors import RecipeError
from mmdata.shards import index as idx
from mmdata.shards.inspect import reader_channels
from mmdata.testing import make_sample_folder
from mmdata.testing.media import audio_bytes, image_bytes


def _rows(ds: Path) -> dict[str, dict]:
    return {r["source_key"]: r for r in idx.load_index(ds).to_pylist()}


def _class_folders(root: Path, per_class: int = 2) -> Path:
    """``bird/``, ``cat/``, ``dog/`` with ``per_class`` PNG + caption samples each."""
    for c, cls in enumerate(("bird", "cat", "dog")):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / cls / f"IMG_{i}.png").write_bytes(image_bytes(3 * c + i))
            (root / cls / f"IMG_{i}.txt").write_text(f"a {cls}", encoding="utf-8")
    return root


def _say(text: str) -> str:
    return " ".join(text.split())  # rich wraps the CLI's lines


# -- 1. samples at the root turn the class folders off: a warning naming them and the fix ----------------


def test_root_samples_beside_class_folders_warn_naming_them_and_the_flag(tmp_path: Path) -> None:
    raw = _class_folders(tmp_path / "raw")
    for k in range(3):
        (raw / f"unknown {k}.jpg").write_bytes(image_bytes(20 + k, fmt="jpeg"))
        (raw / f"unknown {k}.txt").write_text("some unlabelled thing", encoding="utf-8")
    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "flat")])
    assert res.exit_code == 0, res.output
    card = idx.load_card(tmp_path / "flat")
    [warning] = [w for w in card["warnings"] if "flat layout" in w]
    assert "3 samples at the root of the source ('unknown 0', 'unknown 1', 'unknown 2')" in warning
    assert "(bird/, cat/, dog/)" in warning and "the 6 samples in the folders have no label" in warning
    assert "--labels-from-folders" in warning and "move the root samples into a folder" in warning
    assert warning in _say(res.output)  # printed, not only in the card
    assert all(r["label"] is None for r in _rows(tmp_path / "flat").values())
    # the fix the warning names: folder labels, the root samples unlabelled, no warning
    rep = mmdata.shard(raw, tmp_path / "forced", labels_from_folders=True, progress=False)
    got = {k: r["label"] for k, r in _rows(tmp_path / "forced").items()}
    assert got == {"bird/IMG_0": 0, "bird/IMG_1": 0, "cat/IMG_0": 1, "cat/IMG_1": 1, "dog/IMG_0": 2, "dog/IMG_1": 2,
                   "unknown 0": None, "unknown 1": None, "unknown 2": None}
    assert idx.load_card(tmp_path / "forced")["label_names"] == ["bird", "cat", "dog"]
    assert not [w for w in rep["warnings"] if "flat layout" in w]
    # --no-labels-from-folders: a flat layout on purpose, silenced
    rep = mmdata.shard(raw, tmp_path / "off", labels_from_folders=False, progress=False)
    assert not [w for w in rep["warnings"] if "flat layout" in w]


def test_root_samples_warning_counts_only_unlabelled_folder_samples(tmp_path: Path) -> None:
    raw = _class_folders(tmp_path / "raw")
    (raw / "loose.png").write_bytes(image_bytes(9))
    for cls, i in (("bird", 0), ("cat", 0), ("cat", 1), ("dog", 0), ("dog", 1)):
        (raw / cls / f"IMG_{i}.cls").write_text("0", encoding="utf-8")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    [warning] = [w for w in rep["warnings"] if "flat layout" in w]
    assert "1 sample at the root of the source ('loose') makes it a flat layout" in warning
    assert "1 of the 6 samples in the folders has no label" in warning
    (raw / "bird" / "IMG_1.cls").write_text("0", encoding="utf-8")  # every folder sample labelled: no warning
    rep = mmdata.shard(raw, tmp_path / "ds2", progress=False)
    assert not [w for w in rep["warnings"] if "flat layout" in w]


def test_flat_nested_tree_without_folders_at_the_top_has_no_root_warning(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(image_bytes(0))
    (raw / "b.png").write_bytes(image_bytes(1))
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert not [w for w in rep["warnings"] if "flat layout" in w]


# -- 2. a few unlabelled samples in class-folder data -----------------------------------------------------


def test_label_files_holding_folder_names_use_the_folders_as_class_names(tmp_path: Path) -> None:
    raw = _class_folders(tmp_path / "raw")
    for cls in ("bird", "cat", "dog"):
        for i in range(2):
            (raw / cls / f"IMG_{i}.cls").write_text(cls + "\n", encoding="utf-8")
    (raw / "dog" / "unknown 0.png").write_bytes(image_bytes(30))  # no .cls: unlabelled
    (raw / "cat" / "odd.png").write_bytes(image_bytes(31))
    (raw / "cat" / "odd.cls").write_text("brid", encoding="utf-8")  # a typo: a bad label, not a new class
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["bird", "cat", "dog"] and card["label_names_from"] == "folders"
    got = {k: r["label"] for k, r in _rows(tmp_path / "ds").items()}
    assert got == {"bird/IMG_0": 0, "bird/IMG_1": 0, "cat/IMG_0": 1, "cat/IMG_1": 1, "cat/odd": None,
                   "dog/IMG_0": 2, "dog/IMG_1": 2, "dog/unknown 0": None}
    [bad] = [s for s in rep["skipped"] if s["source"] == "cat/odd.cls"]
    assert "'brid'" in bad["reason"] and "3 classes from folders: bird, cat, dog" in bad["reason"]
    # the mixed-labels warning still counts the unlabelled samples and names the flags
    assert [w for w in rep["warnings"] if "2 of 8 samples have no label" in w and "--labels-from-folders" in w]


def test_label_files_holding_ids_beside_class_folders_keep_meaning_ids(tmp_path: Path) -> None:
    raw = _class_folders(tmp_path / "raw")
    (raw / "bird" / "IMG_0.cls").write_text("7", encoding="utf-8")  # an id past the 3 folders: still an id
    (raw / "cat" / "IMG_0.cls").write_text("dog", encoding="utf-8")  # ids and names mixed: names need declaring
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert idx.load_card(tmp_path / "ds")["label_names"] is None
    assert _rows(tmp_path / "ds")["bird/IMG_0"]["label"] == 7
    [bad] = [s for s in rep["skipped"] if s["source"] == "cat/IMG_0.cls"]
    assert "declare the names" in bad["reason"]


# -- 3. inspect warns on image channel counts the reader gives, not on the files' modes -----------------


def _png(mode: str, i: int) -> bytes:
    from PIL import Image

    arr = np.full((8, 8, {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]), 40 * i % 255, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "I;16", "F"])
def test_reader_channels_is_what_decode_image_gives(mode: str) -> None:
    from PIL import Image

    from mmdata.codecs import decode_image

    im = Image.new(mode, (3, 2))
    buf = io.BytesIO()
    im.save(buf, "TIFF")
    assert reader_channels(mode) == decode_image(buf.getvalue()).shape[0]


def test_inspect_rgb_and_rgba_are_no_mix(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        (raw / f"a{i}.jpg").write_bytes(image_bytes(i, fmt="jpeg"))
        (raw / f"b{i}.png").write_bytes(_png("RGBA", i))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rep = mmdata.inspect(tmp_path / "ds")
    assert rep["image"]["modes"] == {"RGB": 4, "RGBA": 4}
    # no channel mix (both decode to 3 channels); the RGBA images' alpha is said (QA39 ecommerce #6: the reader drops
    # it, keeping the colour under transparent pixels), and nothing else
    said = [w for w in rep["warnings"] if w["kind"].startswith("image") and w["kind"] != "image sizes"]
    assert [w["kind"] for w in said] == ["image alpha"], said
    assert {s["image"].shape[0] for s in mmdata.open_dataset(tmp_path / "ds")} == {3}


def test_inspect_warns_when_modes_decode_to_different_channel_counts(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, mode in enumerate(["L", "L", "LA", "RGB", "RGBA"]):
        (raw / f"x{i}.png").write_bytes(_png(mode, i))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rep = mmdata.inspect(tmp_path / "ds")
    [w] = [w for w in rep["warnings"] if w["kind"] == "image channels"]
    # LA decodes to one grey channel since QA38 documents #6 (was RGB)
    assert w["message"].startswith("images decode to 1 and 3 channels (1 channel from L: 2, LA: 1; 3 channels from ")
    assert all(f"{m}: 1" in w["message"] for m in ("RGB", "RGBA")) and "to_rgb" in w["message"]
    assert not [w for w in rep["warnings"] if w["kind"] == "image modes"]
    got = sorted(s["image"].shape[0] for s in mmdata.open_dataset(tmp_path / "ds"))
    assert got == [1, 1, 1, 3, 3]  # what the warning says (L, L, LA: grey; RGB, RGBA)


# -- 4. mmdata augment refuses a balance section, as it refuses batch -----------------------------------


def test_augment_refuses_a_balance_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.augment.offline import augment_dataset

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    recipe = {"image": [{"op": "hflip", "p": 1.0}], "balance": {"by": "label", "mode": "over"}}
    with pytest.raises(RecipeError, match="balance") as err:
        augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, progress=False)
    assert "balance=" in str(err.value)
    assert not (tmp_path / "aug").exists()
    yml = tmp_path / "r.yaml"
    yml.write_text("image:\n  - {op: hflip, p: 1.0}\nbalance: {by: label, mode: over}\n", encoding="utf-8")
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as ex:  # the CLI's entry point: one line naming the section, exit 2
        main(["augment", str(tmp_path / "ds"), str(tmp_path / "aug2"), "-r", str(yml)])
    assert ex.value.code == 2
    assert "recipe section 'balance'" in _say(capsys.readouterr().err)


# -- 5. an empty media file says so ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.wav", "x.flac", "x.png", "x.jpg"])
def test_empty_media_file_is_reported_as_empty(tmp_path: Path, name: str) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "x.txt").write_text("a caption", encoding="utf-8")
    (raw / name).write_bytes(b"")
    (raw / "y.wav").write_bytes(audio_bytes(0, fmt="wav"))
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert {s["source"]: s["reason"] for s in rep["skipped"]} == {name: "empty file (0 bytes)"}


def test_one_folder_beside_root_samples_is_a_flat_tree_without_warning(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "extra").mkdir(parents=True)
    (raw / "a.png").write_bytes(image_bytes(0))
    (raw / "extra" / "b.png").write_bytes(image_bytes(1))
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert not [w for w in rep["warnings"] if "flat layout" in w]
