"""QA: ``--image-size`` / ``--sample-rate`` / ``--max-seconds`` were silently ignored when ``--recipe`` had
its own ``normalize`` list for that modality (the recipe's list replaces the derived steps): ``--image-size
48`` with a recipe resizing to 24 trained at 24x24, and metrics.json did not record the 48. The README
advises giving these options so that every fold trains the same model, so a given value the recipe
overrides is now an error naming both (the option and the recipe key); a given value the recipe's
steps agree with, and a recipe without that modality's list, train as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train

ONE = {"epochs": 1, "batch_size": 16, "threads": 1, "eval_robustness": False}
RESIZE24 = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [24, 24], "side": "exact"}]}}
AUDIO = {"normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000},
                                 {"op": "pad_trim", "seconds": 1.0}]}}


def test_image_size_the_recipe_overrides_is_refused_naming_both(messy: Path) -> None:
    with pytest.raises(MMDataError) as err:
        train(messy, recipe=RESIZE24, image_size=48, modalities=["image"], **ONE)
    msg = str(err.value)
    assert "image_size (--image-size) 48x48" in msg and "normalize.image" in msg and "24x24" in msg


def test_sample_rate_and_max_seconds_the_recipe_overrides_are_refused(messy: Path) -> None:
    with pytest.raises(MMDataError, match=r"sample_rate \(--sample-rate\) 8000 Hz.*normalize\.audio.*16000 Hz"):
        train(messy, recipe=AUDIO, sample_rate=8000, modalities=["audio"], **ONE)
    with pytest.raises(MMDataError, match=r"max_seconds \(--max-seconds\) 2 s.*normalize\.audio.*1 s"):
        train(messy, recipe=AUDIO, max_seconds=2, modalities=["audio"], **ONE)


def test_a_given_value_the_recipe_agrees_with_trains(messy: Path) -> None:
    m = train(messy, recipe=RESIZE24, image_size=24, modalities=["image"], **ONE)
    assert m["inputs"]["image_size"] == [24, 24]


def test_a_given_value_for_a_modality_the_recipe_leaves_trains_at_it(messy: Path) -> None:
    m = train(messy, recipe=AUDIO, image_size=40, modalities=["image", "audio"], **ONE)
    assert m["inputs"]["image_size"] == [40, 40] and m["inputs"]["sample_rate"] == 16000


def test_the_cli_says_it_too(messy: Path, mmdata_cli, tmp_path: Path) -> None:
    import yaml

    (tmp_path / "r1.yaml").write_text(yaml.safe_dump(RESIZE24))
    code, out = mmdata_cli(["train", str(messy), "--recipe", str(tmp_path / "r1.yaml"), "--image-size", "48",
                            "--modalities", "image", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 2 and "--image-size" in out and "normalize.image" in out


def test_a_list_without_a_channel_step_says_it_leaves_the_channels_once(messy: Path) -> None:
    """QA (second pass): "... (resize) leaves the decoded channels makes the decoded channels"."""
    resize = {"normalize": {"image": [{"op": "resize", "size": [24, 24], "side": "exact"}]}}
    with pytest.raises(MMDataError) as err:
        train(messy, recipe=resize, channels=3, image_size=24, modalities=["image"], **ONE)
    # QA round 24: these images decode to 1 and 3 channels, so the list is refused first (no batch could stack
    # them; its fix, to_rgb first, satisfies --channels 3 too); the option's own message, on its own:
    assert str(err.value).startswith("normalize.image (resize) has no to_rgb / to_gray"), str(err.value)
    from mmdata.train.config import InputSpec, check_given_inputs

    with pytest.raises(MMDataError) as err:
        check_given_inputs({"channels": 3}, InputSpec(image_size=(24, 24), channels=3, sources={"channels": "given"}),
                           InputSpec(image_size=(24, 24), channels=None, sources={
                               "channels": "the recipe's normalize.image (resize) leaves the decoded channels"}))
    msg = str(err.value)
    assert msg.count("the decoded channels") == 1 and " makes " not in msg.split(":")[0], msg
    assert "channels (--channels) 3 channels is given, but the recipe's normalize.image" in msg, msg
