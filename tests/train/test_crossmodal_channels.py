"""QA: a model trained on all-RGB images, measured by ``mmdata match`` / ``mmdata audit-alignment`` on data
with some greyscale (mode L) images, stopped with a raw ``ValueError: cannot collate 'image': channel
counts differ ...; add {op: to_rgb} ... to normalize.image in the recipe`` — advice neither command can
follow (match has no recipe; the audit measures in the model's format). The recorded normalize stage
lacks ``to_rgb`` when the training data needed none; the measurements now bring images to the model's
recorded channel count (:func:`mmdata.train.contrastive.model_format`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train
from tests.train.crossmodal_data import KW, build


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(greyscale-test dataset, fine-tuned run, pre-training-only run), both trained on all-RGB data."""
    root = tmp_path_factory.mktemp("channels")
    clean = build(root / "clean")
    train(clean, out=root / "run", **KW)
    train(clean, out=root / "pre", **{**KW, "epochs": 0})
    return build(root / "gray", gray_test=True), root / "run", root / "pre"


@pytest.mark.parametrize("which", ["run", "pre"])
def test_match_brings_greyscale_images_to_the_models_channels(which: str, runs: tuple[Path, Path, Path],
                                                             tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    data, run, pre = runs
    model = run if which == "run" else pre
    code, out = mmdata_cli(["match", str(data), "--model", str(model), "--out", str(tmp_path / "m.png"), "--json"])
    assert code == 0, out
    r = json.loads(out)
    assert r["n"] == 6 and r["pairs"]["image-audio"]["cosine"]["n"] == 6


def test_audit_alignment_brings_greyscale_images_to_the_models_channels(runs: tuple[Path, Path, Path],
                                                                        tmp_path: Path) -> None:
    from mmdata.train.alignment import audit

    data, _, pre = runs
    r = audit(data, {"image": [{"op": "hflip", "p": 0.5}]}, pre)
    assert r["n"] == 6 and "image-audio" in r["pairs"]


def test_a_batch_the_models_format_cannot_hold_is_an_mmdata_error(runs: tuple[Path, Path, Path]) -> None:
    from mmdata.train.matching import read_measured

    data = runs[0]
    with pytest.raises(MMDataError, match=r"cannot be brought to the model's input format.*channel counts differ"):
        read_measured(data, "test", ["image", "audio"], None, "raise", image_channels=None)


def test_model_format_keeps_a_recorded_channel_step() -> None:
    from mmdata.train.contrastive import model_format

    assert model_format({"image": [{"op": "to_gray"}]}, ["image"], 1) == {"image": [{"op": "to_gray"}]}
    assert model_format({}, ["image", "audio"], 1) == {"image": [{"op": "to_gray"}], "audio": [{"op": "to_mono"}]}
    assert model_format({}, ["text"], 3) == {}
