"""QA round 31, persona "offline": ``mmdata augment`` output as other tools read it.

D1: the replay log of a clip the reader decoded only the start of (the normalize stage's trimming
``pad_trim``: ``decode_frames``) logged the trim as not applied, so ``recipe.replay`` on the source clip gave
the whole clip; the loader's ``meta["aug"]`` too. D2: the Hub card of augment output did not say it was
augmented (nor from what, with which copies / seed / recipe), and listed a fixed set of member names. D3: a
recipe target that names no field of the source was written through with exit 0 (the map did not move with
the image), and the recipe's warnings reached stderr only. D4: ``--copies 0 --keep-original`` was reported as
augmenting train. D5: the card's ``options.split`` was null under ``--split val``. D6: ``to_hf`` dropped the
index's ``aug_source`` / ``aug_params``. Plugin D9 (card part): the ops from outside mmdata were recorded
nowhere a reader of the card sees.

Real FLAC / PNG files, sharded and augmented by the real writer."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset, reader_options, sample_copies
from mmdata.augment.recipe import load_recipe, params_seed
from mmdata.errors import RecipeError
from mmdata.interop.hf import hub_card

TRIM = {"seed": 0, "normalize": {"audio": [{"op": "pad_trim", "seconds": 1.0}]},
        "audio": [{"op": "gain", "p": 1.0, "min_db": -6, "max_db": 6}]}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 clips at 16 kHz: 3 s, 2.5 s and 0.5 s (longer, longer, shorter than the 1 s pad_trim)."""
    root = tmp_path_factory.mktemp("clips")
    raw = root / "raw"
    raw.mkdir()
    for i, secs in enumerate((3.0, 2.5, 0.5) * 2):
        wave = (0.3 * np.sin(np.arange(int(secs * 16000)) / (7.0 + i))).astype("float32")
        sf.write(raw / f"c{i}.flac", wave, 16000)
        (raw / f"c{i}.cls").write_text(str(i % 2))
    mmdata.shard(raw, root / "ds", split={"train": 0.67, "val": 0.33}, progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def segs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 images with a `seg.png` mask each (a manifest's column), 4 train, 1 val, 1 test."""
    root = tmp_path_factory.mktemp("segs")
    raw = root / "raw"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "seg", "label", "split"])
        for i in range(6):
            img = np.zeros((32, 40, 3), np.uint8)
            img[:, :20] = 200 - i
            mask = np.zeros((32, 40), np.uint8)
            mask[:, :20] = 1
            mask[0, 20 + i] = 2  # each mask its own bytes
            Image.fromarray(img).save(raw / f"s{i}.png")
            Image.fromarray(mask).save(raw / f"s{i}_seg.png")
            w.writerow([f"s{i}", f"s{i}.png", f"s{i}_seg.png", i % 2, (["train"] * 4 + ["val", "test"])[i]])
    mmdata.shard(raw / "m.csv", root / "ds", columns={"seg": "seg"}, progress=False)
    return root / "ds"


def _rows(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "index.parquet").to_pylist()


# -- D1 ---------------------------------------------------------------------------------------------------------
def test_replay_log_of_a_cut_clip_reproduces_the_written_clip(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    augment_dataset(clips, out, TRIM, copies=2, keep_original=True, progress=False)
    rec = load_recipe(json.loads((out / "dataset.json").read_text())["augmentation"]["recipe"])
    splits = ["train", "val"]
    src = {s.key: s for s in mmdata.open_dataset(clips, split=splits)}  # whole clips: the reader's default
    got = {s.key: s for s in mmdata.open_dataset(out, split=splits)}
    rows = _rows(out)
    assert len(rows) == 4 * 3 + 2
    for row in rows:
        log = json.loads(row["aug_params"])
        trim = next(e for e in log if e["op"] == "normalize.audio.pad_trim")
        assert trim["params"] == {"applied": True, "length": 16000, "start": 0}, (row["key"], trim)
        source = src[row["aug_source"]]
        assert source["audio"].shape[-1] != 16000  # every clip is trimmed or padded
        replayed = rec.replay(source, log)["audio"]
        # augment writes a padded clip without its padding (QA37 podcast #2): the written clip is the replay's
        # first frames, and what it leaves off is the zero padding
        written = got[row["key"]]["audio"]
        n = written.shape[-1]
        assert torch.equal(replayed[..., :n], written), row["key"]
        assert not replayed[..., n:].any(), row["key"]
        assert n == min(source["audio"].shape[-1], 16000), row["key"]  # the real length, cut at the trim


def test_logs_and_bytes_are_what_whole_clips_give(clips: Path, tmp_path: Path) -> None:
    """The reader's decode hint changes neither the members (as before) nor, now, the logs."""
    out = tmp_path / "aug"
    augment_dataset(clips, out, TRIM, copies=1, keep_original=True, seed=3, progress=False)
    assert reader_options(load_recipe(TRIM))["audio_max_frames"] is not None  # the hint is in use
    base = load_recipe(TRIM)
    rec = base.with_seed(params_seed(base.seed, 3))
    want = {}
    for split, augmented in (("train", True), ("val", False)):
        for s in mmdata.open_dataset(clips, split=split):
            for r in sample_copies(s, rec, 1, True, split, augment=augmented):
                want[r.key] = (r.members, r.extra["aug_params"])
    written = {s.key: s for sp in ("train", "val") for s in mmdata.open_dataset(out, split=sp, decode=False)}
    logs = {r["key"]: r["aug_params"] for r in _rows(out)}
    assert sorted(want) == sorted(written) == sorted(logs)
    for key, (members, log) in want.items():
        assert {e: d for e, d in written[key].fields.items() if e != "cls"} == members, key
        assert logs[key] == log, key


def test_loader_log_replays_on_the_whole_clip(clips: Path) -> None:
    rec = load_recipe(TRIM)
    src = {s.key: s for s in mmdata.open_dataset(clips, split="train")}
    seen = 0
    for batch in mmdata.loader(clips, 2, recipe=TRIM, shuffle=False):
        for i, (key, meta) in enumerate(zip(batch.keys, batch.meta["samples"])):
            trim = next(e for e in meta["aug"] if e["op"] == "normalize.audio.pad_trim")
            assert trim["params"] == {"applied": True, "start": 0, "length": 16000}, (key, trim)
            assert torch.equal(rec.replay(src[key], meta["aug"])["audio"], batch["audio"][i, :, :16000]), key
            seen += 1
    assert seen == 4


def test_pad_trim_of_a_whole_clip_of_its_length_is_not_applied() -> None:
    """Without the reader's whole length (or with one no longer than the clip) nothing changes."""
    from mmdata.types import Sample

    rec = load_recipe({"normalize": {"audio": [{"op": "pad_trim", "seconds": 1.0}]}})
    clip = torch.zeros(1, 8000)
    for meta in ({}, {"audio_seconds": 1.0}, {"audio_seconds": 0.5}):
        out = rec.normalize(Sample("k", {"audio": clip}, 8000, meta))
        assert out.meta["aug"][0]["params"] == {"applied": False}, meta
    out = rec.normalize(Sample("k", {"audio": clip}, 8000, {"audio_seconds": 4.0}))
    assert out.meta["aug"][0]["params"] == {"applied": True, "start": 0, "length": 8000}
    assert torch.equal(out["audio"], clip)


# -- D2 ---------------------------------------------------------------------------------------------------------
def test_hub_card_of_augment_output_says_what_it_was_augmented_from(segs: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    augment_dataset(segs, out, {"image": [{"op": "hflip", "p": 1.0}], "targets": {"seg.png": "mask"}}, copies=2,
                    keep_original=True, seed=7, progress=False)
    card = json.loads((out / "dataset.json").read_text())
    text = hub_card(out)
    section = text[text.index("## Augmentation"):text.index("## Provenance")]
    assert f"from the dataset ds (fingerprint {card['augmentation']['augmented_from']['fingerprint']})" in section
    assert "* Augmented splits: train: 2 augmented copies of each input sample" in section
    assert "and the input sample itself (`--keep-original`" in section
    assert "* Not augmented (each input sample once, the recipe's normalize stage only): test, validation." in section
    assert "* Rows of train: 4 input samples and 8 augmented copies." in section
    assert "* Rows of validation: 1 input sample." in section  # the card publishes val as validation
    assert "* Seed: 7 (`--seed`)." in section and "`augmentation.recipe_given`" in section
    # the members the dataset has, from its card's codecs
    assert "(`<key>.png`, `<key>.cls`, `<key>.seg.png`)" in text and "<key>.flac" not in text


def test_hub_card_of_a_sharded_dataset_has_no_augmentation_section(clips: Path) -> None:
    text = hub_card(clips)
    assert "## Augmentation" not in text and "(`<key>.flac`, `<key>.cls`)" in text


# -- D3 ---------------------------------------------------------------------------------------------------------
def test_a_target_naming_no_field_is_refused_before_writing(segs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    typo = {"targets": {"sge.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}]}
    with pytest.raises(RecipeError, match=r"recipe key targets\.sge\.png: 'sge\.png' names no field of the source "
                                          r"dataset .* \(its fields: image, label, seg\.png\).*did you mean 'seg\.png'"):
        augment_dataset(segs, tmp_path / "o", typo, progress=False)
    assert not (tmp_path / "o").exists()
    (tmp_path / "typo.yaml").write_text("targets: {sge.png: mask}\nimage:\n  - {op: hflip, p: 1.0}\n")
    res = subprocess.run([sys.executable, "-m", "mmdata", "augment", str(segs), str(tmp_path / "o2"), "-r",
                          str(tmp_path / "typo.yaml")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "targets.sge.png" in res.stderr and "did you mean 'seg.png'" in res.stderr, res.stderr
    assert not (tmp_path / "o2").exists()


def test_masks_sharded_as_samples_of_their_own_are_refused_as_targets(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(raw / f"s{i}.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(raw / f"s{i}.seg.png")
    with pytest.warns(UserWarning):
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    with pytest.raises(RecipeError, match=r"targets\.seg\.png: 'seg\.png' names no field .*its fields: image\)"):
        augment_dataset(tmp_path / "ds", tmp_path / "o", {"targets": {"seg.png": "mask"},
                                                         "image": [{"op": "hflip", "p": 1.0}]}, progress=False)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_recipes_warnings_go_into_the_output_card_once(segs: Path, tmp_path: Path) -> None:
    """A per-pixel map the recipe does not list as a target: said in the card, the same for any -j."""
    cards = []
    for workers in (1, 2):
        out = tmp_path / f"o{workers}"
        augment_dataset(segs, out, {"image": [{"op": "hflip", "p": 1.0}]}, copies=2, workers=workers, maxcount=2,
                        augment_splits=["train", "val"], progress=False)
        cards.append(json.loads((out / "dataset.json").read_text())["warnings"])
    said = [w for w in cards[0] if w.startswith("recipe: ")]
    assert len(said) == 1 and "field 'seg.png' has the image's height and width" in said[0], cards[0]
    assert cards[0] == cards[1]
    assert mmdata.verify(tmp_path / "o2")["ok"]


def test_a_recipe_that_warns_of_nothing_adds_no_card_warning(segs: Path, tmp_path: Path) -> None:
    augment_dataset(segs, tmp_path / "o", {"image": [{"op": "hflip", "p": 1.0}], "targets": {"seg.png": "mask"}},
                    progress=False)
    assert not [w for w in json.loads((tmp_path / "o" / "dataset.json").read_text())["warnings"]
                if w.startswith("recipe: ")]


# -- D4, D5 -----------------------------------------------------------------------------------------------------
def test_copies_0_is_reported_as_no_sample_augmented(segs: Path, tmp_path: Path) -> None:
    from mmdata.augment.offline import describe

    rep = augment_dataset(segs, tmp_path / "o", {"image": [{"op": "hflip", "p": 1.0}], "targets": {"seg.png": "mask"}},
                          copies=0, keep_original=True, progress=False)
    aug = json.loads((tmp_path / "o" / "dataset.json").read_text())["augmentation"]
    assert rep["augmented_splits"] == aug["augmented_splits"] == []
    assert sorted(aug["eval_splits"]) == ["test", "train", "val"]
    line = describe(rep, keep_original=True, out="o")
    assert "train 4 (not augmented" in line and "no sample augmented (--copies 0" in line, line
    # the same samples as before: each once, normalize stage only
    assert sorted(r["key"] for r in _rows(tmp_path / "o")) == [f"s{i}" for i in range(6)]


def test_card_options_record_the_splits_written(segs: Path, tmp_path: Path) -> None:
    augment_dataset(segs, tmp_path / "o", {"seed": 1}, splits=["val"], progress=False)
    augment_dataset(segs, tmp_path / "all", {"seed": 1}, copies=1, progress=False)
    assert json.loads((tmp_path / "o" / "dataset.json").read_text())["options"]["split"] == ["val"]
    assert sorted(json.loads((tmp_path / "all" / "dataset.json").read_text())["options"]["split"]) == \
        ["test", "train", "val"]


# -- D6 ---------------------------------------------------------------------------------------------------------
def test_to_hf_keeps_the_augment_columns(segs: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    out = tmp_path / "aug"
    augment_dataset(segs, out, {"image": [{"op": "hflip", "p": 1.0}], "targets": {"seg.png": "mask"}}, copies=1,
                    keep_original=True, progress=False)
    d = mmdata.to_hf(out, "train", cache_dir=tmp_path / "hf")
    assert list(d.features)[:4] == ["key", "source_key", "aug_source", "aug_params"]
    want = {r["key"]: (r["aug_source"], r["aug_params"]) for r in _rows(out) if r["split"] == "train"}
    assert {row["key"]: (row["aug_source"], row["aug_params"]) for row in d} == want
    assert "aug_source" not in mmdata.to_hf(segs, "train", cache_dir=tmp_path / "hf").features


# -- plugin D9 (the card) ---------------------------------------------------------------------------------------
def test_the_card_records_where_each_op_from_outside_mmdata_comes_from(segs: Path, tmp_path: Path) -> None:
    from mmdata.augment.image import ImageOp
    from mmdata.testing import restored_registry

    with restored_registry():
        class QaInvert(ImageOp):
            """Invert the image."""

            section, name = "image", "qa31_invert"

            def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
                return 255 - arr

        class QaPosterize(ImageOp):
            """Keep the top bits (from an installed package, as an entry point's op is)."""

            section, name = "image", "qa31_posterize"

            def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
                return arr & 0xF0

        QaPosterize.__module__ = "yaml"  # an installed distribution's module: PyYAML
        recipe = {"image": [{"op": "qa31_invert"}, {"op": "qa31_posterize"}, {"op": "hflip"}],
                  "targets": {"seg.png": "mask"}}
        augment_dataset(segs, tmp_path / "o", recipe, progress=False)
    ops = json.loads((tmp_path / "o" / "dataset.json").read_text())["augmentation"]["plugin_ops"]
    assert [o["op"] for o in ops] == ["image.qa31_invert", "image.qa31_posterize"]
    assert ops[0]["module"] == __name__ and ops[0]["distribution"] is None
    from importlib.metadata import version

    assert ops[1] == {"op": "image.qa31_posterize", "module": "yaml", "distribution": "PyYAML",
                      "version": version("PyYAML")}
    text = hub_card(tmp_path / "o")
    assert "Ops from outside mmdata" in text and f"image.qa31_posterize (module yaml, PyYAML {version('PyYAML')})" in text
    plain = tmp_path / "p"
    augment_dataset(segs, plain, {"image": [{"op": "hflip"}], "targets": {"seg.png": "mask"}}, progress=False)
    assert "plugin_ops" not in json.loads((plain / "dataset.json").read_text())["augmentation"]


# -- review of the fixes (F1, F2) --------------------------------------------------------------------------------
def test_two_jobs_in_threads_each_keep_their_warnings_and_leave_the_filters_alone(segs: Path, tmp_path: Path) -> None:
    """F1: the card warnings were collected by changing the process's warning filters and showwarning (not
    thread-safe): a job in another thread lost its card warning, the hook and an 'always' filter outlived the
    calls, and a user's filter ignoring the warning was overridden."""
    import threading
    import warnings

    recipe = {"seed": 0, "image": [{"op": "hflip", "p": 1.0}, {"op": "rotate", "p": 1.0, "limit": 10}]}
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="field 'seg.png' has the image")  # the user's own filter
        # a first job: the filters that importing Pillow's / scipy's decoders add, once, are in place
        augment_dataset(segs, tmp_path / "first", recipe, progress=False)
        filters, hook = list(warnings.filters), warnings.showwarning
        for run in range(3):
            outs = [tmp_path / f"r{run}{j}" for j in range(2)]
            errors: list[BaseException] = []

            def job(out: Path) -> None:
                try:
                    augment_dataset(segs, out, recipe, copies=2, maxcount=1, progress=False)
                except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
                    errors.append(exc)

            threads = [threading.Thread(target=job, args=(out,)) for out in outs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            for out in outs:
                said = [w for w in json.loads((out / "dataset.json").read_text())["warnings"] if w.startswith("recipe: ")]
                assert len(said) == 1 and "field 'seg.png' has the image's height" in said[0], (run, out.name, said)
            assert warnings.filters == filters and warnings.showwarning is hook
    assert not [w for w in shown if "field 'seg.png'" in str(w.message)], [str(w.message)[:80] for w in shown]


def test_a_target_this_dataset_lacks_is_a_card_warning_where_nothing_can_misalign(tmp_path: Path) -> None:
    """F2: a recipe shared across datasets (`targets: {depth.png: mask}`) on one with no per-pixel map was
    refused, though nothing lies beside the image to misalign (the loader takes it silently)."""
    import subprocess
    import sys

    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 20, 3), 50 + i, np.uint8)).save(raw / f"s{i}.png")
        (raw / f"s{i}.cls").write_text(str(i % 2))
    mmdata.shard(raw, tmp_path / "ds", split={"train": 1.0}, progress=False)
    shared = {"seed": 0, "targets": {"depth.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}]}
    with pytest.warns(UserWarning, match=r"targets\.depth\.png: 'depth\.png' names no field of the source dataset "
                                         r"ds \(its fields: image, label\): it moves nothing"):
        augment_dataset(tmp_path / "ds", tmp_path / "o", shared, progress=False)
    said = [w for w in json.loads((tmp_path / "o" / "dataset.json").read_text())["warnings"] if w.startswith("recipe:")]
    assert said == ["recipe: targets.depth.png: 'depth.png' names no field of the source dataset ds (its fields: image, "
                    "label): it moves nothing in this job (no field of the dataset is stored as images beside 'image', "
                    "so nothing is left unaligned)"], said
    assert mmdata.verify(tmp_path / "o")["ok"]
    (tmp_path / "rd.yaml").write_text("seed: 0\ntargets: {depth.png: mask}\nimage:\n  - {op: hflip, p: 1.0}\n")
    res = subprocess.run([sys.executable, "-m", "mmdata", "augment", str(tmp_path / "ds"), str(tmp_path / "o2"), "-r",
                          str(tmp_path / "rd.yaml")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stderr.count("targets.depth.png: 'depth.png' names no field") == 1, res.stderr


def test_a_target_naming_no_field_beside_an_unlisted_map_is_refused(segs: Path, tmp_path: Path) -> None:
    """F2: refused where it can misalign: the dataset has a map stored as images ('seg.png') that targets does
    not list, though the name is not close to it."""
    with pytest.raises(RecipeError, match=r"targets\.depth\.png: 'depth\.png' names no field .*the dataset's "
                                          r"'seg\.png' \(stored as images beside 'image'\) is not in targets"):
        augment_dataset(segs, tmp_path / "o", {"targets": {"depth.png": "mask"}, "image": [{"op": "hflip", "p": 1.0}]},
                        progress=False)
    assert not (tmp_path / "o").exists()
