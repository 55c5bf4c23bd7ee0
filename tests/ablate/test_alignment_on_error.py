"""QA: ``mmdata ablate`` with ``trainer: {on_error: skip}`` and ``alignment:`` on a dataset holding a sample
that does not decode (a float WAV of NaN): every run finished, then the alignment step (the reference
model's pre-training, the alignment columns' read of the test split) raised the decode error — exit 2,
no report.md, no summary.json. Now the alignment step honours ``trainer.on_error`` as the runs do."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.errors import MMDataError
from tests.train.crossmodal_data import build

SYN = "mmdata.ablate.testing:synthetic_train"


def _recipe(data: Path, **trainer: object) -> dict:
    return {"dataset": {"path": str(data)}, "trainer": {"entry": SYN, **trainer}, "seeds": 2,
            "alignment": {"epochs": 1}, "controls": {"identity": False},
            "design": {"mode": "explicit", "baseline": None, "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}}


@pytest.mark.parametrize("where", ["train", "test"])
def test_the_alignment_step_honours_trainer_on_error(where: str, tmp_path: Path) -> None:
    data = build(tmp_path / "d", nan_split=where)
    s = run(_recipe(data, on_error="skip"), tmp_path / "ab", workers=1, progress=False, plots=False,
            on_warning=lambda msg: None)
    assert s["design"]["complete"]
    assert (tmp_path / "ab" / "report.md").is_file() and (tmp_path / "ab" / "summary.json").is_file()
    saved = pq.read_table(tmp_path / "ab" / "runs.parquet").to_pylist()
    assert all(r["status"] == "ok" for r in saved)
    assert [a["exploratory"]["align_cos_delta"]["n_seeds"] for a in s["arms"]] == [2], s["arms"]
    # every row's alignment columns on disk too (the last row's were once lost: a timer's save cleared the
    # mark the alignment's on_row had set outside the lock)
    from mmdata.ablate.align import ALIGN_COLUMN

    assert all(r.get(ALIGN_COLUMN) is not None for r in saved), saved


@pytest.mark.parametrize("where, key", [("train", "s001"), ("test", "s019")])
def test_without_skip_the_alignment_step_still_raises_naming_the_sample(where: str, key: str, tmp_path: Path) -> None:
    """... and the ablation recipe's key that leaves such samples out (QA: the measurement named `mmdata
    match`'s `--on-error skip`, the reference model's pre-training no remedy at all)."""
    data = build(tmp_path / "d", nan_split=where)
    with pytest.raises(MMDataError, match=rf"{key}.*--deep") as info:
        run(_recipe(data), tmp_path / "ab", workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    assert str(info.value).endswith("trainer: {on_error: skip} in the ablation recipe (as out of its runs)"), info.value
    assert "--on-error" not in str(info.value)
