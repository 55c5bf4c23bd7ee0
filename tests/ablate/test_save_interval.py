"""runs.parquet is rewritten whole as runs finish; the runner waits longer between saves when a save takes
long (scale QA: at 12,600 rows of a fast trainer one save took as long as the fixed half-second interval,
and bookkeeping took half the runner's time). The gap between two saves is at least
``SAVE_SHARE`` times the last save's cost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import mmdata.ablate.runner as runner
from mmdata.ablate import run
from mmdata.plugins import trust_code

TRAINER = '''
import time
def train(data, *, recipe=None, seed=0, **kw):
    time.sleep(0.02)
    return {"test": {"accuracy": 0.7 + 0.001 * (seed % 7)}}
'''


def test_a_slow_save_spaces_the_next_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    (tmp_path / "slowsave_trainer.py").write_text(TRAINER)
    monkeypatch.syspath_prepend(str(tmp_path))
    at: list[float] = []
    save = runner.save_runs

    def slow(*a, **kw):  # a save of a long table: 0.3 s
        time.sleep(0.3)
        save(*a, **kw)
        at.append(time.monotonic())

    monkeypatch.setattr(runner, "save_runs", slow)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "slowsave_trainer:train"}, "seeds": 40,
           "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    with trust_code():  # the recipe names its trainer module
        s = run(cfg, tmp_path / "ab", workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    assert s["runs"]["ok"] == 80
    gaps = [b - a for a, b in zip(at, at[1:-1])]  # the last save is the forced one at the end
    assert gaps and min(gaps) >= runner.SAVE_SHARE * 0.3, (gaps, at)
    assert runner.save_interval(0.3) == pytest.approx(1.2) and runner.save_interval(0.0) == runner.SAVE_EVERY_S
