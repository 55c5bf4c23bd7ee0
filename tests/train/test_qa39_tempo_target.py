"""QA39 music #2: ``mmdata train --target bpm`` with ``speed`` in the recipe warns that the op changes the tempo
but not the target (the run's warnings, in metrics.json); a classification run of the same data does not."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

import mmdata

SPEED = {"seed": 0, "normalize": {"audio": [{"op": "pad_trim", "seconds": 0.2}]},
         "audio": [{"op": "speed", "p": 1.0, "factor": [0.8, 1.25]}]}


def _data(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = []
    for i in range(12):
        t = np.arange(1600) / 8000
        sf.write(raw / f"s{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32), 8000)
        rows.append({"key": f"s{i}", "audio": f"s{i}.wav", "label": "a" if i % 2 else "b", "bpm": 90 + 5 * i,
                     "split": "train" if i < 8 else "val" if i < 10 else "test"})
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(str(raw / "m.csv"), str(tmp_path / "ds"), meta=["bpm"], progress=False)
    return tmp_path / "ds"


def test_speed_beside_a_bpm_target_is_a_run_warning(tmp_path: Path) -> None:
    data = _data(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = mmdata.train.train(data, target="bpm", recipe=SPEED, epochs=1, batch_size=4, eval_robustness=False)
        cls = mmdata.train.train(data, recipe=SPEED, epochs=1, batch_size=4, eval_robustness=False)
    said = [w for w in reg["warnings"] if "speed" in w and "'bpm'" in w]
    assert len(said) == 1 and said[0].startswith("recipe: "), reg["warnings"]
    assert not [w for w in cls["warnings"] if "'bpm'" in w], cls["warnings"]
