"""QA round 33, review of the sources fix: --labels given for mmdata's own tars looks each dataset's ids up by
name (as the merge warning promises); a larger regression target with repeated values is warned of; emoji
spellings are not "invisible characters"; inspect's many-classes audio summary leaves classes without audio out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata.shards.sources import _invisible_ends, _near_name, discover


def _dataset(tmp_path: Path, name: str, classes: dict[str, int]) -> Path:
    """An mmdata dataset folder whose class folders are ``classes`` (name -> samples)."""
    raw = tmp_path / f"raw_{name}"
    for c, k in classes.items():
        (raw / c).mkdir(parents=True)
        for i in range(k):
            colour = (sum(map(ord, name)) % 256, sum(map(ord, c)) % 256, i * 40)  # no two images alike
            Image.new("RGB", (4, 4), colour).save(raw / c / f"{c}_{name}_{i}.png")
    mmdata.shard(raw, tmp_path / name, progress=False)
    return tmp_path / name


def _labels(ds: Path) -> dict[str, str]:
    import pandas as pd

    names = json.loads((ds / "dataset.json").read_text())["label_names"]
    return {k: names[int(v)] for k, v in pd.read_parquet(ds / "index.parquet")[["key", "label"]].values}


def test_labels_given_for_datasets_with_their_own_names_are_looked_up_by_name(tmp_path: Path) -> None:
    _dataset(tmp_path, "dsA", {"cat": 2, "dog": 2})
    _dataset(tmp_path, "dsC", {"Dog": 1, "bird": 1, "cat": 1})  # ids 0=Dog, 1=bird, 2=cat
    (tmp_path / "names.txt").write_text("bird\ncat\ndog\nDog\n")
    with pytest.warns(UserWarning) as got:
        mmdata.shard(str(tmp_path / "ds[AC]" / "*.tar"), tmp_path / "m", label_names=str(tmp_path / "names.txt"),
                     progress=False)
    card = json.loads((tmp_path / "m" / "dataset.json").read_text())
    assert card["label_names"] == ["bird", "cat", "dog", "Dog"]
    labels = _labels(tmp_path / "m")  # key 'cat_dsC_0_<hash>': the sample of the class folder cat/
    assert len(labels) == 7 and all(v == k.split("_")[0] for k, v in labels.items())
    warning = next(str(w.message) for w in got if "looked up by name" in str(w.message))
    assert "dsA" in warning and "dsC" in warning


def test_labels_given_without_a_datasets_class_is_refused_naming_it(tmp_path: Path) -> None:
    _dataset(tmp_path, "dsA", {"cat": 2, "dog": 2})
    (tmp_path / "names.txt").write_text("cat\nbird\n")
    with pytest.raises(mmdata.MMDataError, match=r"dsA.*1 of them is not in --labels \('dog'\)"):
        mmdata.shard(str(tmp_path / "dsA" / "*.tar"), tmp_path / "m", label_names=str(tmp_path / "names.txt"),
                     progress=False)


def test_a_rounded_regression_target_of_many_rows_is_warned(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "0.png")
    rng = random.Random(0)
    rows = "".join(f"0.png,{rng.uniform(0, 10):.2f}\n" for _ in range(2000))  # a MOS-like score, 2 decimals
    (tmp_path / "m.csv").write_text("image,label\n" + rows)
    found = discover(tmp_path / "m.csv", on_error="skip")
    assert any("regression target" in w for w in found.warnings)


def test_emoji_spellings_are_not_invisible_characters() -> None:
    assert _invisible_ends("\u2139\ufe0f") == [] and _invisible_ends("\u2194\ufe0f") == []
    assert _invisible_ends("\u203c\ufe0f") == [] and _invisible_ends("1\ufe0f\u20e3") == []
    scotland = "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"
    england = "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "gbeng") + "\U000e007f"
    assert _invisible_ends(scotland) == [] and _near_name(scotland) != _near_name(england)
    assert _invisible_ends("猫\ufe0f") and _invisible_ends("dog\u200b")  # still warned


def test_inspect_many_classes_summary_counts_classes_without_audio_apart(capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.shards import MAX_CLASSES_LISTED, _audio_per_class

    classes = [f"c{i:02d}" for i in range(MAX_CLASSES_LISTED + 2)]
    per_class = {"train": {c: 0.0 if c in ("c00", "c01") else 60.0 + i for i, c in enumerate(classes)}}
    with_audio = {"train": {c: 0 if c in ("c00", "c01") else 1 for c in classes}}
    _audio_per_class(per_class, classes, with_audio=with_audio)
    out = " ".join(capsys.readouterr().out.split())
    assert "0:00:00 " not in out and "least c02: 0:01:02" in out.replace("│ ", ""), out
    assert "2 classes without audio (c00, c01)" in out.replace("│ ", ""), out
