"""The review of QA28: a recipe whose training-time `audio:` section resamples (to 16 kHz, the model taking 8 kHz)
trained on features of one rate and was scored on another before; since the model checks its input format it
failed at the first batch, mid-run, saying the model "was trained at" a rate. Now refused at set-up, naming the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train


def test_a_training_time_resample_is_refused_at_set_up(avdigits4: Path, tmp_path: Path) -> None:
    recipe = {"audio": [{"op": "gain", "p": 0.5}, {"op": "resample", "rate": 16000}]}
    with pytest.warns(UserWarning), pytest.raises(MMDataError) as exc:
        train(avdigits4, epochs=1, out=tmp_path / "run", recipe=recipe, eval_robustness=False, progress=False)
    msg = str(exc.value)
    assert msg.startswith("recipe step audio[1] (16000 Hz) resamples training audio, but the model takes 8000 Hz")
    assert "move the resample to normalize.audio" in msg
    assert not (tmp_path / "run" / "model.pt").exists()
    # in normalize (every split) it is the model's rate: trains
    m = train(avdigits4, epochs=1, out=tmp_path / "ok", recipe={"normalize": {"audio": [{"op": "resample", "rate": 16000}]}},
              eval_robustness=False, progress=False)
    assert m["inputs"]["sample_rate"] == 16000 and m["model"]["sample_rate"] == 16000
