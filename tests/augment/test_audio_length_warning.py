"""The loader warns once when a batch's clips are much shorter than its length (the normalize stage's
``pad_trim``, else the longest clip): zero padding the model hears as silence, as it warns of images of
mixed sizes (tests/augment/test_loader_padding.py). Clips of one length say nothing (avdigits)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import long_audio_bytes, make_messy_folder, make_sample_folder

MONO_16K = [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder: 16 / 22.05 kHz, mono and stereo, WAV and FLAC, clips of 0.6 to 4 s."""
    root = tmp_path_factory.mktemp("messy")
    m = make_messy_folder(root / "raw", n=24, sizes=((12, 16),), seconds=(0.6, 4.0))
    secs = [t.audio_seconds for t in m.truth if t.audio_seconds]
    assert min(secs) < 1.0 and max(secs) > 3.0  # the spread the warning is about
    mmdata.shard(root / "raw", root / "ds", progress=False, split="train=0.75,val=0.25")
    return root / "ds"


def _caught(loader: mmdata.augment.loader.Loader, epochs: int = 1) -> list[str]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for _ in range(epochs):
            for _ in loader:
                pass
    return [str(w.message) for w in rec if "clips of" in str(w.message)]


def test_clips_padded_to_the_normalize_length_are_warned_about_once(messy: Path) -> None:
    recipe = {"normalize": {"audio": [*MONO_16K, {"op": "pad_trim", "seconds": 4.0}]}}
    (msg,) = _caught(mmdata.loader(messy, 8, recipe=recipe, modalities=["audio", "label"]), epochs=2)
    m = re.search(r"split 'train': a batch holds clips of (\d+\.\d+) to (\d+\.\d+) s, zero-padded to 4\.00 s: the shortest "
                  r"clip is (\d+)% padding, which the model hears as silence \(the median clip is (\d+)% padding\)", msg)
    assert m is not None, msg
    lo, hi, most, median = float(m[1]), float(m[2]), int(m[3]), int(m[4])
    assert 0.6 <= lo < 2.0 < hi <= 4.0 and 0 < median <= most and most == round(100 * (1 - lo / 4.0)), msg
    assert "max_seconds" in msg and "normalize.audio" in msg and "said once per loader" in msg
    # each loader says it once, naming its split (eval loaders of the trainer too)
    (val,) = _caught(mmdata.loader(messy, 8, recipe=recipe, split="val", stage="eval", modalities=["audio", "label"]))
    assert "split 'val'" in val


def test_the_lengths_are_the_clips_before_normalize_in_every_path(messy: Path) -> None:
    recipe = {"normalize": {"audio": [*MONO_16K, {"op": "pad_trim", "seconds": 4.0}]}}
    first = _caught(mmdata.loader(messy, 8, recipe=recipe, shuffle=False, modalities=["audio", "label"]))
    for kw in ({"cache": True}, {"num_workers": 1}, {"augment_on": "device"}):
        assert _caught(mmdata.loader(messy, 8, recipe=recipe, shuffle=False, modalities=["audio", "label"], **kw)) == first, kw
    # without pad_trim, collate pads to the longest clip of the batch
    (msg,) = _caught(mmdata.loader(messy, 8, recipe={"normalize": {"audio": MONO_16K}}, shuffle=False,
                                   modalities=["audio", "label"]))
    assert re.search(r"clips of \d\.\d\d to (\d\.\d\d) s, zero-padded to \1 s", msg), msg


def _clip_dataset(tmp_path: Path, seconds: list[float]) -> None:
    """``tmp_path / "ds"``: one 8 kHz FLAC clip per length in ``seconds``, all of class 0."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, sec in enumerate(seconds):
        (raw / f"{i:03d}.flac").write_bytes(long_audio_bytes(i, sec, 8000))
        (raw / f"{i:03d}.cls").write_text("0")
    mmdata.shard(raw, tmp_path / "ds", progress=False)


def test_long_clips_are_named_by_their_whole_length_and_trimming_is_said(tmp_path: Path) -> None:
    _clip_dataset(tmp_path, [0.5, 6.0, 1.5, 1.6])
    loader = mmdata.loader(tmp_path / "ds", 4, recipe={"normalize": {"audio": [{"op": "pad_trim", "seconds": 1.5}]}})
    assert loader.source.audio_max_frames is not None  # the 6 s clip is decoded to its first 1.5 s ...
    (msg,) = _caught(loader)
    # ... and still named by its length, from its header
    assert "clips of 0.50 to 6.00 s, zero-padded to 1.50 s (longer ones are trimmed, keeping the start): the shortest " \
           "clip is 67% padding, which the model hears as silence (the median clip is 0% padding)" in msg, msg


def test_clips_of_one_length_or_not_much_shorter_say_nothing(tmp_path: Path, messy: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "ds", progress=False)  # 0.25 s each
    assert _caught(mmdata.loader(tmp_path / "ds", 4)) == []
    assert _caught(mmdata.loader(tmp_path / "ds", 4, recipe={"normalize": {"audio": [{"op": "pad_trim", "seconds": 0.4}]}})) == []
    # every messy clip is over half of 1 s: trimmed, little padded — nothing to say
    assert _caught(mmdata.loader(messy, 8, recipe={"normalize": {"audio": [*MONO_16K, {"op": "pad_trim", "seconds": 1.0}]}},
                                 modalities=["audio", "label"])) == []


def test_avdigits_says_nothing_new(tmp_path: Path) -> None:
    from mmdata.datasets import avdigits

    ds = avdigits.build(tmp_path / "av", limit=5, progress=False)  # clips of 0.8 s at 8 kHz, every one
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for split in ("train", "val"):
            for recipe in (None, {"normalize": {"audio": [{"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 1.0}]}}):
                assert sum(len(b) for b in mmdata.loader(ds, 16, recipe=recipe, split=split)) > 0


# QA42 segments #6: a speed op shortens clips, it trims none --------------------------------------------------


def test_a_speed_op_is_not_said_to_trim_and_the_padding_is_measured_after_it(tmp_path: Path) -> None:
    _clip_dataset(tmp_path, [0.3, 1.6, 1.5, 1.4])
    recipe = {"normalize": {"audio": [{"op": "to_mono"}]}, "audio": [{"op": "speed", "factor": [1.5, 2.0], "p": 1.0}]}
    (msg,) = _caught(mmdata.loader(tmp_path / "ds", 4, recipe=recipe, shuffle=False))
    assert "trimmed" not in msg, msg
    # the clips as collate padded them: the longest is the batch's length, every one shorter than before the op
    lo, hi, target = (float(x) for x in
                      re.search(r"clips of (\d\.\d\d) to (\d\.\d\d) s, zero-padded to (\d\.\d\d) s", msg).groups())
    assert hi == target and hi <= 1.6 / 1.5 + 0.01 and lo <= 0.3 / 1.5 + 0.01, msg
    # a pad_trim still says it trims the clips longer than its length, measured before it (their whole length)
    trim = {"normalize": {"audio": [{"op": "to_mono"}, {"op": "pad_trim", "seconds": 1.0}]}}
    (msg,) = _caught(mmdata.loader(tmp_path / "ds", 4, recipe=trim, shuffle=False))
    assert "clips of 0.30 to 1.60 s, zero-padded to 1.00 s (longer ones are trimmed, keeping the start)" in msg, msg
