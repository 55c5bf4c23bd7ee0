"""QA30 (fix-api): a constant regression target's metrics.json records the split's sd (0) and the divisor
apart (``scale``), and load_model reads runs written before and after; ``predict`` refuses an empty wave
and a caption holding a control character, as ``mmdata shard`` and the file / bytes forms do."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import mmdata
from mmdata.augment.contract import InputError
from mmdata.testing.media import image_bytes
from mmdata.train import load_model, train
from mmdata.train.model import FusionModel, TrainedModel

RATE = 8000
NORMALIZE = {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": RATE}, {"op": "pad_trim", "seconds": 0.25}],
             "text": [{"op": "max_tokens", "n": 16}]}


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained on a metadata column ``y`` that is 5.0 in every sample (train / val / test)."""
    root = tmp_path_factory.mktemp("const")
    rows = []
    for i in range(12):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"s{i}", "image": f"{i}.png", "label": "ab"[i % 2],
                     "split": ["train", "train", "val", "test"][i % 4], "y": 5.0})
    pd.DataFrame(rows).to_json(root / "m.jsonl", orient="records", lines=True)
    mmdata.shard(root / "m.jsonl", root / "ds", meta=["y"], progress=False)
    with pytest.warns(UserWarning, match="one value over the training split"):
        train(root / "ds", target="y", epochs=1, threads=1, batch_size=4, eval_robustness=False, out=root / "run")
    return root / "run"


def test_constant_target_records_its_sd_and_the_divisor_apart(constant_run: Path) -> None:
    target = json.loads((constant_run / "metrics.json").read_text())["target"]
    assert target == {"kind": "regression", "key": "y", "train_mean": 5.0, "train_sd": 0.0, "scale": 1.0}
    tm = load_model(constant_run)
    assert tm.sd == 1.0 and tm.mean == 5.0
    value = tm.predict([{"image": image_bytes(0)}])[0]["value"]
    assert abs(value - 5.0) < 1.0  # standardised by 1: a prediction near the mean, not mean + 0 * logit


def test_a_run_written_before_scale_still_loads(constant_run: Path, tmp_path: Path) -> None:
    """Runs before QA30 recorded the divisor as train_sd (1.0) and had no scale: predictions are the same."""
    old = tmp_path / "old"
    old.mkdir()
    for f in constant_run.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    metrics = json.loads((old / "metrics.json").read_text())
    metrics["target"] = {"kind": "regression", "key": "y", "train_mean": 5.0, "train_sd": 1.0}
    (old / "metrics.json").write_text(json.dumps(metrics))
    req = [{"image": image_bytes(3)}]
    assert load_model(old).predict(req) == load_model(constant_run).predict(req)


def test_describe_prints_the_split_sd() -> None:
    from mmdata.train.targets import Target

    t = Target("regression", "y", [], 5.0, 1.0, train_sd=0.0)
    assert "sd 0;" in t.describe()
    assert Target("regression", "y", [], 5.0, 2.5).to_dict() == {"kind": "regression", "key": "y", "train_mean": 5.0,
                                                                  "train_sd": 2.5}


def _metrics(model: FusionModel) -> dict[str, Any]:
    return {"config": {"modalities": list(model.mods), "fusion": "concat"}, "model": model.architecture(),
            "classes": {"num_classes": 2, "names": ["a", "b"]}, "eval_normalize": NORMALIZE}


@pytest.fixture(scope="module")
def tm() -> TrainedModel:
    torch.manual_seed(0)
    m = FusionModel(["audio", "text"], "concat", classes=2, d=8, sample_rate=RATE)
    return TrainedModel(m, _metrics(m), "runs/x")


def _wav(frames: int) -> bytes:
    b = io.BytesIO()
    sf.write(b, np.zeros(frames, np.float32), RATE, subtype="PCM_16", format="WAV")
    return b.getvalue()


@pytest.mark.parametrize("wave", [torch.zeros(1, 0), np.zeros((2, 0), np.int16), torch.zeros(0, 100)],
                         ids=["float-1x0", "pcm-2x0", "no-channels"])
def test_an_empty_wave_is_refused_as_the_empty_file_is(tm: TrainedModel, wave: Any, tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(_wav(0))
    with pytest.raises(InputError, match=r"runs/x: sample 'k', field 'audio': .*without audio frames"):
        tm.predict([{"key": "k", "audio": str(tmp_path / "e.wav")}])
    with pytest.raises(InputError, match=r"runs/x: sample 'k', field 'audio': a wave without audio frames \(shape"):
        tm.predict([{"key": "k", "audio": (wave, RATE)}])
    assert len(tm.predict([{"key": "k", "audio": (torch.zeros(1, 80), RATE)}])) == 1  # one frame on: scored


@pytest.mark.parametrize("text", ["a\x00b", "red\x1b[2J", "x\x06"])
def test_a_control_character_in_a_caption_is_refused_in_every_form(tm: TrainedModel, text: str) -> None:
    from mmdata.shards.sources import text_refusal

    assert text_refusal(text.encode()) is not None  # what `mmdata shard` leaves out
    for form in (text, text.encode(), bytearray(text.encode())):
        with pytest.raises(InputError, match=r"runs/x: sample 'k', field 'text': text holds a control character"):
            tm.predict([{"key": "k", "text": form}])


@pytest.mark.parametrize("text", ["a\ud800b", "a\ud800\x00b"])
def test_a_lone_surrogate_is_refused_as_shard_refuses_it(tm: TrainedModel, text: str) -> None:
    """Review of QA30: a str holding a lone surrogate was scored (and hid a NUL behind it) where `mmdata shard`
    and the same request as bytes refuse it."""
    with pytest.raises(InputError, match=r"runs/x: sample 'k', field 'text': text with a lone surrogate '\\ud800' at "
                                         r"character 1 \(not valid Unicode"):
        tm.predict([{"key": "k", "text": text}])


def test_captions_the_shard_keeps_are_scored(tm: TrainedModel) -> None:
    reqs = [{"text": t} for t in ("tab\there", "two\nlines", "", "end\x1a", "猫です")]
    assert len(tm.predict(reqs)) == len(reqs)


def test_a_tensor_refused_by_the_ops_names_the_run(tm: TrainedModel) -> None:
    with pytest.raises(InputError, match=r"^runs/x: sample 'k': sample_rate must be a positive int"):
        tm.predict([{"key": "k", "audio": (torch.zeros(1, 100), 0)}])


def test_load_model_and_train_hints_name_what_they_take(constant_run: Path) -> None:
    """apidocs D5: model_dir was Any, device a str only, though a Path and a torch.device work."""
    import typing

    from mmdata.train.model import load_model as lm

    hints = typing.get_type_hints(lm)
    assert "Path" in str(hints["model_dir"]) and "torch.device" in str(hints["device"])
    assert "torch.device" in str(typing.get_type_hints(train.__wrapped__ if hasattr(train, "__wrapped__") else train)["device"])
    assert "Args:" in (lm.__doc__ or "") and "model_dir:" in lm.__doc__ and "device:" in lm.__doc__
    req = [{"image": image_bytes(1)}]
    assert load_model(constant_run, device=torch.device("cpu")).predict(req) == load_model(str(constant_run)).predict(req)
