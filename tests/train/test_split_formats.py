"""Every split the trainer evaluates gets the training split's input format (a QA pass, 2026-12):
the normalize steps (resample, to_mono, image conversion and resizing) were chosen from the train
split alone, so val / test at another rate were scored unconverted and stereo val clips crashed
validation. Also: ``reference_model`` reuses a checkpoint only for the same dataset and options,
``train(threads=...)`` gives the caller its thread count back, and ``train``'s docstring names every fusion."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import audio_bytes, image_bytes, make_class_folders, make_messy_folder, make_sample_folder, text_for
from mmdata.train import train

TRAIN_HW, OTHER_HW = (24, 32), (40, 30)
CLIP_S = 0.25


def _grey_png(i: int, size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(i, size))).convert("L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest with a split column: train is 8 kHz audio and 24x32 RGB images; val and test are
    16 kHz audio and 40x30 greyscale images (every clip 0.25 s, so only the rate differs)."""
    root = tmp_path_factory.mktemp("shifted")
    raw = root / "raw"
    raw.mkdir()
    rows = []
    for i in range(24):
        split = "train" if i < 12 else "val" if i < 18 else "test"
        train_like = split == "train"
        (raw / f"s{i}.png").write_bytes(image_bytes(i, TRAIN_HW) if train_like else _grey_png(i, OTHER_HW))
        (raw / f"s{i}.flac").write_bytes(audio_bytes(i, CLIP_S, 8000 if train_like else 16000))
        rows.append({"image": f"s{i}.png", "audio": f"s{i}.flac", "text": text_for(i), "label": i % 3, "split": split})
    with open(raw / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    mmdata.shard(raw / "manifest.csv", root / "ds", progress=False)
    return root / "ds"


def test_the_steps_are_chosen_over_every_split_from_the_train_format(shifted: Path) -> None:
    from mmdata.train.config import derive_inputs, normalize_section

    spec = derive_inputs(shifted, ["image", "audio", "text"])
    # the format is the training split's ...
    assert (spec.sample_rate, spec.image_size, spec.channels, spec.max_seconds) == (8000, TRAIN_HW, 3, CLIP_S)
    # ... and the steps bring val and test to it
    assert spec.needs["resample"] and spec.needs["resize"] and spec.needs["convert"]
    assert "val" in spec.sources["sample_rate"] and "16000" in spec.sources["sample_rate"]
    ops = {m: [s["op"] for s in steps] for m, steps in normalize_section(spec).items()}
    assert "resample" in ops["audio"] and {"to_rgb", "resize", "center_crop"} <= set(ops["image"])
    # the training split alone needs none of them (what the trainer looked at before)
    alone = derive_inputs(shifted, ["image", "audio"], splits=("train",))
    assert not (alone.needs["resample"] or alone.needs["resize"] or alone.needs["convert"])


def test_every_loader_of_a_run_yields_the_train_format(shifted: Path) -> None:
    from mmdata.train.loop import setup

    run = setup(shifted, threads=1, batch_size=4, cache=False)
    for split in ("train", "val", "test"):
        batch = next(iter(run.loaders[split]))
        assert tuple(batch["image"].shape[1:]) == (3, *TRAIN_HW), split
        assert batch["audio"].shape[-1] == int(CLIP_S * 8000), split  # 16 kHz clips would be twice as long


def test_metrics_record_the_steps_applied_to_val_and_test(shifted: Path, tmp_path: Path) -> None:
    m = train(shifted, epochs=1, batch_size=4, threads=1, out=tmp_path / "run")  # robustness on test too
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    for rec in (m, saved):
        assert rec["inputs"]["sample_rate"] == 8000 and rec["inputs"]["image_size"] == list(TRAIN_HW)
        assert rec["inputs"]["needs"]["resample"] and rec["inputs"]["needs"]["resize"] and rec["inputs"]["needs"]["convert"]
        audio = {s["op"]: s for s in rec["normalize"]["audio"]}
        assert audio["resample"]["rate"] == 8000
        assert {"to_rgb", "resize", "center_crop"} <= {s["op"] for s in rec["normalize"]["image"]}
    assert m["robustness"]["corruption"]["audio"]["accuracy"]


def test_a_recipe_that_keeps_its_own_audio_steps_records_the_rates_it_leaves(shifted: Path) -> None:
    from mmdata.train.config import IndexStats, derive_inputs, effective_inputs, with_normalize

    st = IndexStats(shifted)
    spec = derive_inputs(st, ["audio"])
    _, norm = with_normalize({"normalize": {"audio": [{"op": "to_mono"}]}}, spec)
    got = effective_inputs(spec, norm, ["audio"], st)
    assert got.sample_rate is None and "8000, 16000" in got.sources["sample_rate"]  # val / test stay at 16 kHz


def test_stereo_clips_only_in_val_are_mixed_down(tmp_path: Path) -> None:
    """make_messy_folder's QA repro: every training clip is mono, val mixes mono and stereo."""
    from mmdata.train.config import IndexStats

    mf = make_messy_folder(tmp_path / "raw", n=30, sizes=((24, 32), (40, 30)), seconds=(0.3, 0.6))
    ds = tmp_path / "ds"
    mmdata.shard(mf.root, ds, split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    st = IndexStats(ds)
    assert set(st.values("audio_channels", st.rows("train", "audio"))) == {1}
    assert 2 in set(st.values("audio_channels", st.rows("val", "audio")))
    m = train(ds, fusion="late", epochs=1, threads=1)
    assert m["inputs"]["needs"]["mono"] and "to_mono" in [s["op"] for s in m["normalize"]["audio"]]


# -- reference_model reuses a checkpoint only for the same dataset and options --------------------------


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("refs")
    out = []
    for name, n in (("a", 18), ("b", 21)):
        make_sample_folder(root / f"raw-{name}", n=n, missing=False)
        mmdata.shard(root / f"raw-{name}", root / name, split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
        out.append(root / name)
    return out[0], out[1]


def test_reference_model_is_reused_only_for_its_dataset_and_options(two_datasets: tuple[Path, Path], tmp_path: Path) -> None:
    from mmdata.train.alignment import reference_model
    from mmdata.train.contrastive import CHECKPOINT

    a, b = two_datasets
    ref = reference_model(a, tmp_path / "ref", modalities=("image", "text"), epochs=1, batch_size=8)
    ckpt = ref / CHECKPOINT
    stamp = ckpt.stat().st_mtime_ns
    assert reference_model(a, tmp_path / "ref", modalities=("image", "text"), epochs=1, batch_size=8) == ref
    assert ckpt.stat().st_mtime_ns == stamp  # the same dataset and options: kept
    fp_a = json.loads((a / "dataset.json").read_text(encoding="utf-8"))["fingerprint"]
    with pytest.raises(MMDataError, match=rf"fingerprint.*{fp_a[:12]}") as exc:
        reference_model(b, tmp_path / "ref", modalities=("image", "text"), epochs=1, batch_size=8)
    assert str(ckpt) in str(exc.value) and str(b) in str(exc.value)
    with pytest.raises(MMDataError, match=r"seed 0.*asked for 5.*epochs 1.*asked for 20"):
        reference_model(a, tmp_path / "ref", modalities=("image", "text"), seed=5, epochs=20, batch_size=8)
    with pytest.raises(MMDataError, match=r"modalities \['image', 'text'\].*\['image', 'audio', 'text'\]"):
        reference_model(a, tmp_path / "ref", epochs=1, batch_size=8)
    assert ckpt.stat().st_mtime_ns == stamp  # never overwritten by a refused call
    # a checkpoint that records no dataset fingerprint (written before it was recorded) is not trusted
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    del saved["config"]["data_fingerprint"]
    torch.save(saved, ckpt)
    with pytest.raises(MMDataError, match="records no dataset fingerprint"):
        reference_model(a, tmp_path / "ref", modalities=("image", "text"), epochs=1, batch_size=8)


# -- threads and the docstring ------------------------------------------------------------------------


def test_train_gives_the_caller_its_thread_count_back(tmp_path: Path) -> None:
    imgs = make_class_folders(tmp_path / "raw", per_class=4)  # image + text: asking for audio fails in setup
    mmdata.shard(imgs, tmp_path / "ds", split="train=0.5,val=0.25,test=0.25", seed=0, progress=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        m = train(tmp_path / "ds", epochs=1, batch_size=4, threads=1, eval_robustness=False)
        assert m["config"]["threads"] == 1 and torch.get_num_threads() == 2
        with pytest.raises(MMDataError, match="audio"):
            train(tmp_path / "ds", modalities=["audio"], epochs=1, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_docstring_names_every_fusion() -> None:
    from mmdata.train.fusions import FUSIONS

    doc = " ".join(train.__doc__.split())
    listed = doc.split("fusion: one of ``mmdata.train.FUSIONS`` (", 1)[1].split(")", 1)[0]
    assert sorted(n.strip() for n in listed.split(",")) == sorted(FUSIONS)
