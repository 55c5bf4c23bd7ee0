"""``augment_on="device"`` gives the batches ``augment_on="workers"`` gives also where ``modality_dropout`` drops
the audio of some rows after the normalize stage's ``pad_trim(pad: true)`` (QA round 35 repro #1): the batched
kernel used to trim the padding to the longest real clip (12480 frames instead of the 2 s = 32000), so the audio
width of ``mmdata train``'s batches depended on the dropout draws. A real messy folder, sharded, read by the
loader with real DataLoader workers, with ``recipes/messy_folder.yaml``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.testing import make_messy_folder


@pytest.fixture(scope="module")
def outA(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dropwidth")
    make_messy_folder(root / "raw", n=80, seed=0, sizes=((24, 32), (32, 24)), seconds=(0.3, 0.8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "outA", split={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0,
                     maxcount=20, progress=False)
    return root / "outA"


def _epoch(ds: Path, augment_on: str, num_workers: int) -> list[mmdata.Batch]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = mmdata.loader(ds, batch_size=8, recipe="messy_folder", split="train", seed=0,
                               num_workers=num_workers, augment_on=augment_on)
        loader.set_epoch(0)
        return [b.to("cpu") for b in loader]


def _same(a: mmdata.Batch, b: mmdata.Batch) -> None:
    assert a.keys == b.keys
    assert set(a.present) == set(b.present) and set(a.data) == set(b.data), a.keys
    for name in a.present:
        assert torch.equal(a.present[name], b.present[name]), (a.keys, name)
    for name, x in a.data.items():
        y = b.data[name]
        if isinstance(x, torch.Tensor):
            assert x.shape == y.shape and torch.equal(x, y), (a.keys, name, tuple(x.shape), tuple(y.shape))
        else:
            assert x == y, (a.keys, name)
    assert set(a.lengths) == set(b.lengths), a.keys
    for name, ln in a.lengths.items():
        assert torch.equal(ln, b.lengths[name]), (a.keys, name)
    assert a.sample_rate == b.sample_rate


@pytest.mark.parametrize("num_workers", [0, 2])
def test_device_batches_keep_the_pad_trim_width_where_dropout_drops_audio(outA: Path, num_workers: int) -> None:
    workers = _epoch(outA, "workers", num_workers)
    device = _epoch(outA, "device", num_workers)
    assert len(workers) == len(device) == 8
    for w, d in zip(workers, device):
        assert d["audio"].shape[-1] == 32000, (d.keys, tuple(d["audio"].shape))  # recipe: pad_trim 2.0 s at 16 kHz
        _same(w, d)
    # the case at stake is in the epoch: rows whose audio the dropout took (the per-sample meta, workers mode)
    drops = [i for i, w in enumerate(workers)
             if any("audio" in a["params"].get("drop", ()) for m in w.meta["samples"] for a in m["aug"]
                    if a["op"] == "sample.modality_dropout")]
    assert len(drops) >= 2, drops


_NO_TRIM = """seed: 0
normalize:
  image:
    - {op: to_rgb, p: 1.0, alpha: drop, background: 255}
    - {op: resize, p: 1.0, size: 16, side: shorter}
    - {op: center_crop, p: 1.0, size: [16, 16], fill: 0}
  audio:
    - {op: to_mono, p: 1.0}
    - {op: resample, p: 1.0, rate: 16000}
    - {op: pad_trim, p: 1.0, seconds: 0.5, pad: true, trim: false, align: start}
sample:
  - {op: modality_dropout, p: 1.0, modalities: [audio], p_drop: 0.4, keep_at_least: 1}
"""


def _widths(batches: list[mmdata.Batch]) -> list[int]:
    return [int(b["audio"].shape[-1]) if "audio" in b.data else 0 for b in batches]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_with_trim_false_a_padded_row_keeps_its_own_width_not_the_dropped_clips(outA: Path, tmp_path: Path,
                                                                                num_workers: int) -> None:
    """review media #1: with ``pad_trim(trim: false)`` clips longer than the window (0.3-0.8 s here, window 0.5 s)
    keep their length and make the batch wider; when the dropout takes such a clip's audio, the workers' batch is
    as wide as the widest row left (a padded row: 8000), and the device batch used to keep the dropped clip's
    width (every padded row was counted at the batch's width)."""
    recipe = tmp_path / "no_trim.yaml"
    recipe.write_text(_NO_TRIM)

    def epoch(augment_on: str) -> list[mmdata.Batch]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = mmdata.loader(outA, batch_size=4, recipe=str(recipe), split="train", seed=0,
                                   num_workers=num_workers, augment_on=augment_on)
            loader.set_epoch(0)
            return [b.to("cpu") for b in loader]

    workers, device = epoch("workers"), epoch("device")
    assert len(workers) == len(device) == 16
    assert _widths(workers) == _widths(device)
    for w, d in zip(workers, device):
        _same(w, d)
    # the case at stake is in the epoch: a batch as wide as the window although a longer clip was in it (dropped)
    narrowed = [w.keys for w in workers if "audio" in w.data and int(w["audio"].shape[-1]) == 8000
                and any(int(v) > 8000 for v in w.lengths["audio"].tolist()) is False
                and any("audio" in a["params"].get("drop", ()) for m in w.meta["samples"] for a in m.get("aug", ())
                        if a["op"] == "sample.modality_dropout")]
    assert narrowed, _widths(workers)
