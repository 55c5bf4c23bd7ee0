"""Which modalities the trainer uses, and what it records as the model's inputs: modalities the
training split lacks (left out by default, an error when asked for), a recipe's own normalize stage
reflected in ``inputs``, and input options validated by their own names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_messy_folder
from mmdata.train import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def noaudio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images, captions and labels; no sample has audio."""
    root = tmp_path_factory.mktemp("noaudio")
    make_messy_folder(root / "raw", n=30, sizes=((24, 24),), missing_image=0.0, unlabelled=0.0)
    for f in [*(root / "raw").rglob("*.wav"), *(root / "raw").rglob("*.flac")]:
        f.unlink()
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


def test_a_requested_modality_no_training_sample_has_is_an_error(noaudio: Path, tmp_path: Path,
                                                                  mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    with pytest.raises(MMDataError, match=r"audio.*train.*image.*text") as exc:
        train(noaudio, modalities=["image", "audio"], epochs=1, threads=1)
    assert str(noaudio) in str(exc.value)
    code, out = mmdata_cli(["train", str(noaudio), "--modalities", "audio", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert code == 2, out
    assert "--modalities" in out and "audio" in out and "train split" in out and "image" in out and "text" in out
    assert not (tmp_path / "o").exists()


def test_unknown_modality_names_the_choices(noaudio: Path) -> None:
    with pytest.raises(MMDataError, match=r"imgae.*'image', 'audio', 'text'"):
        train(noaudio, modalities=["imgae"], epochs=1, threads=1)


def test_by_default_the_modalities_of_the_training_split_are_used(noaudio: Path, tmp_path: Path,
                                                                   mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    code, out = mmdata_cli(["train", str(noaudio), "--epochs", "1", "--batch-size", "8", "--threads", "1",
                      "--out", str(tmp_path / "o")])
    assert code == 0, out
    assert "concat on image, text" in out and "left out: audio" in out
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["config"]["modalities"] == ["image", "text"]
    assert list(m["config"]["modalities_left_out"]) == ["audio"]
    assert "no sample of the train split has audio" in m["config"]["modalities_left_out"]["audio"]
    assert set(m["robustness"]["missing"]) == {"image", "text"} and set(m["robustness"]["corruption"]) == {"image", "text"}
    assert m["inputs"]["sample_rate"] is None
    # what explains figures that differ on another machine (QA: metrics.json named no version)
    import torch

    assert m["versions"]["torch"] == torch.__version__ and m["versions"]["mmdata"] == mmdata.__version__
    assert {"python", "numpy", "pyarrow", "pillow", "soundfile"} <= set(m["versions"])
    # and the code itself (QA27 B11: the version stays 0.1.0 while the code changes): the card's code entry
    from mmdata.shards.writer import code_identity

    assert m["code"]["digest"] == code_identity() and m["code"]["mmdata"] == mmdata.__version__
    assert set(m["code"]) == {"mmdata", "digest", "git_revision", "git_dirty"}


def test_a_modality_some_samples_have_stays(messy: Path) -> None:
    m = train(messy, epochs=1, threads=1, batch_size=16, eval_robustness=False)
    assert m["config"]["modalities"] == ["image", "audio", "text"] and m["config"]["modalities_left_out"] == {}


RECIPE = ROOT / "recipes" / "messy_folder.yaml"


def test_inputs_record_what_a_recipes_normalize_produces(messy: Path, tmp_path: Path,
                                                         mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    code, out = mmdata_cli(["train", str(messy), "--recipe", str(RECIPE), "--epochs", "1", "--batch-size", "16", "--threads", "1",
                      "--no-robustness", "--out", str(tmp_path / "o")])
    assert code == 0, out
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    norm, inputs = m["normalize"], m["inputs"]
    assert norm["image"][-1]["size"] == [64, 64] and norm["audio"][1]["rate"] == 16000
    assert inputs["image_size"] == [64, 64] and inputs["channels"] == 3
    assert inputs["sample_rate"] == 16000 and inputs["max_seconds"] == 2.0 and inputs["max_tokens"] == 32
    assert all("recipe" in inputs["sources"][k] for k in ("image_size", "channels", "sample_rate", "max_seconds", "max_tokens"))
    assert "image 64x64" in out and "16000 Hz" in out and "2 s" in out and "32 tokens" in out
    assert "32x32" not in out and "22050 Hz" not in out


def test_inputs_follow_a_partial_normalize(messy: Path) -> None:
    """Only the recipe's image list replaces the derived one; audio keeps the derived values. The
    recipe's to_gray sets the model's channels too (the derived 3 could not take its images)."""
    own = {"normalize": {"image": [{"op": "to_gray"}, {"op": "resize", "size": [24, 20], "side": "exact"}]}}
    m = train(messy, modalities=["image", "audio"], epochs=1, recipe=own, threads=1, batch_size=16, eval_robustness=False)
    assert m["inputs"]["image_size"] == [24, 20] and m["inputs"]["channels"] == 1
    derived = mmdata.train.config.derive_inputs(messy, ["image", "audio"])
    assert derived.channels == 3
    assert m["inputs"]["sample_rate"] == derived.sample_rate and m["inputs"]["max_seconds"] == derived.max_seconds
    assert m["inputs"]["sources"]["sample_rate"] == derived.sources["sample_rate"]


@pytest.mark.parametrize("option,value", [("--image-size", "0"), ("--image-size", "32x0"), ("--channels", "2"),
                                          ("--sample-rate", "0"), ("--max-seconds", "0"), ("--max-tokens", "0")])
def test_input_options_are_checked_by_their_names(noaudio: Path, option: str, value: str,
                                                  mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    code, out = mmdata_cli(["train", str(noaudio), option, value, "--epochs", "1"])
    assert code == 2 and option in out, out
    assert "derived normalize" not in out


@pytest.mark.parametrize("kw", [{"image_size": 0}, {"image_size": [32, -1]}, {"channels": 2}, {"sample_rate": 0},
                                {"max_seconds": 0.0}, {"max_tokens": 0}])
def test_library_input_values_are_checked_by_their_names(noaudio: Path, kw: dict) -> None:
    name = next(iter(kw))
    with pytest.raises(MMDataError, match=f"{name} \\(--{name.replace('_', '-')}\\)"):
        mmdata.train.config.derive_inputs(noaudio, ["image", "audio", "text"], **kw)
