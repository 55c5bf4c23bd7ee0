"""The loaders' padding warnings, said once per training run, naming the splits they concern.

Before (2026-12-04, known limit "the padding warning can print once per split's loader") a run on clips
of mixed lengths printed mmdata.loader's "a batch holds clips of ... zero-padded ..." three times, once
per split's loader (four with pre-training), and so did the images' "a batch holds images of N sizes".
The warnings come from mmdata/augment/loader.py (once per loader); the trainer now collects its
loaders' and says each kind once when the run ends: the splits it concerns, each with its own numbers."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.loader import PaddingWarning
from mmdata.testing import make_messy_folder, shard_folds
from mmdata.train import train
from mmdata.train.padding import reading, said_once

FAST = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips of 0.2 to 1.5 s (the derived max_seconds is their 95th percentile: most are padded, each split
    has clips under half of it), images of four sizes, train / val / test = 0.6 / 0.2 / 0.2."""
    root = tmp_path_factory.mktemp("padding")
    make_messy_folder(root / "raw", n=60, sizes=((32, 32), (48, 64), (60, 40), (120, 90)), seconds=(0.2, 1.5))
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard_folds(tmp_path_factory.mktemp("padding_folds"), sizes=((24, 32),), seconds=(0.2, 1.5))


def _padding(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "zero-padded" in str(w.message)]


def _run(data: Path, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(data, **{**FAST, **kw})
    return _padding(caught)


def test_a_run_says_the_clips_padding_once_naming_its_splits(clips: Path) -> None:
    (msg,) = _run(clips)
    assert msg.startswith("mmdata.train: zero padding in the batches of the train, val and test splits (each "
                          "split's loader found it; said once per run): "), msg
    for split in ("train", "val", "test"):  # each split's own numbers, from its loader
        # a clip longer than the padded length is said to be trimmed (QA42: measured after the recipe, as trained)
        assert re.search(rf"{split}: a batch holds clips of \d\.\d\d to \d\.\d\d s, zero-padded to \d\.\d\d s"
                         r"( \(longer ones are trimmed, keeping the start\))?: the shortest "
                         r"clip is \d+% padding, which the model hears as silence \(the median clip is \d+% padding\)", msg), msg
    assert msg.count("for less padding set max_seconds") == 1 and msg.endswith("normalize_spec(seconds=...))"), msg
    assert "said once per loader" not in msg and "split 'train'" not in msg


def test_pretraining_and_every_epoch_add_nothing(clips: Path) -> None:
    """Pre-training reads the training split with a loader of its own: still one warning."""
    (msg,) = _run(clips, epochs=2, pretrain="contrastive", pretrain_epochs=1)
    assert "the train, val and test splits" in msg


def test_images_of_several_sizes_are_said_once_too(clips: Path) -> None:
    """A recipe's own normalize list for images (no resize) leaves them at their sizes: collate pads them."""
    recipe = {"normalize": {"image": [{"op": "to_rgb"}]}}
    msgs = _run(clips, recipe=recipe, modalities=["image", "audio"])
    images = [m for m in msgs if "images of" in m]
    assert len(msgs) == 2 and len(images) == 1, msgs
    assert "the batches of the train, val and test splits" in images[0]
    assert re.search(r"; val: a batch holds images of \d sizes \(.*height x width\), zero-padded to \d+x\d+ ", images[0])
    assert images[0].count("resize + center_crop") == 1


def test_folds_are_named_with_their_roles(folds: Path) -> None:
    (msg,) = _run(folds, val_split="3", test_split="4")
    assert "the batches of the train (1, 2), val (3) and test (4) splits" in msg, msg
    assert "train (1, 2): a batch holds clips of" in msg and "test (4): a batch holds clips of" in msg


def test_the_cli_prints_it_once(clips: Path, tmp_path: Path) -> None:
    """As the console script runs (its warning lines on stderr)."""
    res = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "train", str(clips),
                          "--epochs", "1", "--batch-size", "8", "--threads", "1", "--no-robustness"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    err = " ".join(res.stderr.split())  # rich's line wrapping undone
    assert err.count("zero padding in the batches of the train, val and test splits") == 1, err
    assert err.count("zero-padded") == 3 and "mmdata.loader: split" not in err, err


def test_other_warnings_pass_through_and_a_padding_warning_outside_a_role_is_named_by_its_loader() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with said_once():
            warnings.warn("something else", UserWarning)
            with reading("val"):
                warnings.warn("mmdata.loader: split 'dev': a batch holds clips of 0.10 to 1.00 s, zero-padded to 1.00 s: "
                              "x; for less padding do y; said once per loader", PaddingWarning)
            warnings.warn("mmdata.loader: split 'dev': a batch holds clips of 0.20 to 1.00 s, zero-padded to 1.00 s: "
                          "z; for less padding do y; said once per loader", PaddingWarning)
            warnings.warn("mmdata.loader: split ['a', 'b']: a batch holds clips of 0.30 to 1.00 s, zero-padded to "
                          "1.00 s: w; for less padding do y; said once per loader", PaddingWarning)
            # the same words in another category are not the loader's: passed on
            warnings.warn("mmdata.loader: a batch holds images of 2 sizes; said once per loader", UserWarning)
    assert [str(w.message) for w in caught] == [
        "something else",
        "mmdata.loader: a batch holds images of 2 sizes; said once per loader",
        "mmdata.train: zero padding in the batches of the val, 'dev' and ['a', 'b'] splits (each split's loader found "
        "it; said once per run): val: a batch holds clips of 0.10 to 1.00 s, zero-padded to 1.00 s: x; 'dev': a batch "
        "holds clips of 0.20 to 1.00 s, zero-padded to 1.00 s: z; ['a', 'b']: a batch holds clips of 0.30 to 1.00 s, "
        "zero-padded to 1.00 s: w; for less padding do y"]


@pytest.mark.parametrize("action", ["ignore", "error"])
def test_the_users_filters_for_padding_warnings_hold(action: str) -> None:
    """QA: the run's summary was a plain UserWarning and the collection forced "always": a user's
    ignore / error filter for PaddingWarning changed nothing."""
    message = ("mmdata.loader: split 'train': a batch holds clips of 0.10 to 1.00 s, zero-padded to 1.00 s: "
               "x; for less padding do y; said once per loader")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings(action, category=PaddingWarning)
        if action == "error":
            with pytest.raises(PaddingWarning), said_once(), reading("train"):
                warnings.warn(message, PaddingWarning)
        else:
            with said_once(), reading("train"):
                warnings.warn(message, PaddingWarning)
    assert caught == []


def test_the_summary_is_a_padding_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with said_once(), reading("val"):
            warnings.warn("mmdata.loader: split 'val': a batch holds clips of 0.10 to 1.00 s, zero-padded to 1.00 s: "
                          "x; for less padding do y; said once per loader", PaddingWarning)
    assert [w.category for w in caught] == [PaddingWarning] and "val split" in str(caught[0].message)
