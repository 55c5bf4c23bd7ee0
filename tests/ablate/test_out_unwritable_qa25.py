"""QA25 C-1 (a student in a read-only checkout): ``mmdata ablate`` into an ``--out`` that cannot be made
said so only at the first write, after the design's warnings, with advice to "rerun the same command to
resume (the runs already in runs.parquet are kept)" on a first run that has no runs. It is now checked
before the warnings, in the words the other commands use."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.ablate import run
from mmdata.errors import MMDataError
from tests.procs_helpers import read_only_to_access

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa25_out") / "av", limit=4, progress=False)


def test_an_out_that_cannot_be_made_is_said_first_without_resume_advice(tmp_path: Path, tiny: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"entry": SYN}, "seeds": 2,  # 2 seeds: a design warning
           "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]},
                      "arms": {"-cutout": None}}}
    (tmp_path / "ro").mkdir()
    read_only_to_access(monkeypatch, tmp_path / "ro")  # a read-only checkout, for root too
    said: list[str] = []
    with pytest.raises(MMDataError) as err:
        run(cfg, tmp_path / "ro" / "runs", workers=1, progress=False, plots=False, on_warning=said.append)
    assert f"--out {tmp_path / 'ro' / 'runs'} would be made in {tmp_path / 'ro'}, which is not writable" in str(err.value)
    assert "resume" not in str(err.value) and "runs.parquet" not in str(err.value)
    monkeypatch.undo()
    assert said == []  # before the design's warnings (2 seeds can decide nothing: warned once the folder is fine)
    run(cfg, tmp_path / "ok", workers=1, progress=False, plots=False, on_warning=said.append, max_runs=0)
    assert said  # the same design warns where the folder can be made
