"""QA38 media fixes, train-time warnings read from the index (and the captions text_units reads anyway): a sample
rate that tells the class (bioacoustics #5), captions naming their class (signals #9), a centre crop that cuts
most of tall pages away (documents #5). Real WAV / PNG / caption files, sharded, then trained one epoch."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.testing import image_bytes
from mmdata.train import train
from mmdata.train.config import IndexStats, crop_warning, label_leak_warning, shortcut_warnings, text_units


def _wav(seed: int, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(seed).normal(0, 0.1, rate // 10).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


def _dataset(root: Path, *, rates: dict[str, int], captions: bool, image_size: tuple[int, int] | None = None,
             n: int = 6, split: str = "train=1.0") -> Path:
    for c, rate in rates.items():
        d = root / "raw" / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            seed = i + 100 * len(c) + rate
            (d / f"s{i}.wav").write_bytes(_wav(seed, rate))
            if captions:
                (d / f"s{i}.txt").write_text(f"capture {i} of {c} at {i + 3} dB" if i != 5 else f"capture {i}")
            if image_size is not None:
                (d / f"s{i}.png").write_bytes(image_bytes(seed, size=image_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "ds", progress=False, split=split)
    return root / "ds"


def test_shortcut_leak_and_crop_found_from_the_index_and_captions(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "a", rates={"BPSK": 16000, "QPSK": 8000}, captions=True, image_size=(12, 60))
    st = IndexStats(ds)
    names = ["BPSK", "QPSK"]
    got = shortcut_warnings(st, names, ["audio"])
    assert len(got) == 1 and got[0].startswith("the sample rate predicts the label in the training split: ")
    assert "16000 Hz only in BPSK (6 of 6)" in got[0] and "8000 Hz only in QPSK (6 of 6)" in got[0]
    assert shortcut_warnings(st, names, ["image"]) == []  # every image RGB: the mode tells nothing
    units = text_units(ds, "train", names=names)
    assert units["named"] == {"0": [6, 5, 0, units["named"]["0"][3]], "1": [6, 5, 0, units["named"]["1"][3]]}
    leak = label_leak_warning(units, names)
    assert leak.startswith("10 of 12 training captions read contain their own class name: BPSK in 5 of 6")
    assert "QPSK in 5 of 6" in leak and "the text gives the label away" in leak
    rows = st.rows("train", "image")
    cut = crop_warning(st, rows, (16, 16), [{"op": "to_rgb"}, {"op": "resize"}, {"op": "center_crop"}])
    assert cut.startswith("12 of 12 training images keep under 50% of their area in the 16x16 centre crop")
    assert "12x60, keeps 20%" in cut and "--image-size HxW" in cut and "pad_to_size" in cut
    assert crop_warning(st, rows, (12, 60), [{"op": "resize"}, {"op": "center_crop"}]) is None  # the images' shape
    assert crop_warning(st, rows, (16, 16), [{"op": "resize"}]) is None  # no crop: nothing cut


def test_same_rates_and_neutral_captions_say_nothing(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "b", rates={"BPSK": 8000, "QPSK": 8000}, captions=True)
    st = IndexStats(ds)
    assert shortcut_warnings(st, ["BPSK", "QPSK"], ["audio"]) == []
    # names that are digits / one letter are not looked for in the captions ('capture 0 of ...')
    assert "named" not in (text_units(ds, "train", names=["0", "1"]) or {})
    everywhere = {"0": [6, 6, 6, "k"], "1": [6, 6, 6, "j"]}  # each caption names both classes: no leak of one
    assert label_leak_warning({"named": everywhere}, ["BPSK", "QPSK"]) is None


@pytest.mark.filterwarnings("ignore")
def test_train_run_records_the_warnings(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "c", rates={"BPSK": 16000, "QPSK": 8000}, captions=True, n=10,
                  split="train=0.6,val=0.2,test=0.2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train(ds, modalities=["audio", "text"], epochs=1, batch_size=8, seed=0, eval_robustness=False)
    said = m.get("warnings") or []
    assert any(w.startswith("the sample rate predicts the label") for w in said), said
    assert any("contain their own class name" in w for w in said), said
