"""QA round 25 (D12): the primary metric could be switched after the results were in — same folder, no
retraining, new "confirmatory" verdicts, no trace of the pre-specified metric. It is now part of the plan
the runner guards once a look is done, for the fixed and the adaptive design alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata.ablate import run
from mmdata.errors import MMDataError

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa25") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 4,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"seed": 0, "image": [{"op": "cutout"}]}}},
           "controls": {"identity": False, "label_noise": 0.3}}
    cfg.update(kw)
    return cfg


def _files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("report.md", "summary.json", "config.resolved.yaml")}


def test_a_fixed_design_that_reported_keeps_its_primary_metric(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "a"
    run(_cfg(tiny), out, workers=1, progress=False, plots=False)
    before = _files(out)
    with pytest.raises(MMDataError, match=r"metric: .*already looked .*primary metric 'test.accuracy' fixed in advance "
                                          r"\(fixed design \(4 seeds\), its verdicts were reported\); making "
                                          r"'test.macro_f1' .*Keep metric: test.accuracy .*Exploratory.*new --out"):
        run(_cfg(tiny, metric="test.macro_f1"), out, workers=1, progress=False, plots=False)
    assert _files(out) == before  # nothing overwritten: the pre-specified analysis stays the folder's
    # the same metric re-analyses (delta is fixed once reported too: tests/ablate/test_delta_switch_qa29.py)
    s = run(_cfg(tiny), out, workers=1, progress=False, plots=False)
    assert s["primary_metric"]["name"] == "test.accuracy"
    # before its look (an interrupted run) nothing was seen: the metric may still change
    run(_cfg(tiny), tmp_path / "b", workers=1, progress=False, plots=False, max_runs=3)
    s = run(_cfg(tiny, metric="test.macro_f1"), tmp_path / "b", workers=1, progress=False, plots=False)
    assert s["primary_metric"]["name"] == "test.macro_f1" and s["runs"]["ok"] == 12


def test_an_adaptive_design_keeps_the_metric_its_stops_were_decided_on(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=10, adaptive={"looks": [6, 8, 10]})
    out = tmp_path / "a"
    run(cfg, out, workers=1, progress=False, plots=False, max_runs=18)  # baseline + 2 arms x 6 seeds: look 1
    with pytest.raises(MMDataError, match=r"already looked .*'test.accuracy' fixed in advance \(adaptive design "
                                          r"\(looks \[6, 8, 10\].*1 look done\) and its arms were stopped on it"):
        run({**cfg, "metric": "test.nll"}, out, workers=1, progress=False, plots=False)
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["metric"]["name"] == "test.accuracy"
    s = run(cfg, out, workers=1, progress=False, plots=False)  # resumed on the pre-specified metric
    assert s["primary_metric"]["name"] == "test.accuracy" and s["design"]["adaptive"]
