"""QA round 25 (D14): a misspelt ``trainer.target`` ("scor") was blamed on ``dataset.path`` with advice to
re-shard the data under the misspelling; the recipe key is named now, with the close column, and the
re-shard hint stays for a key no column resembles."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import shard_target_dataset


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard_target_dataset(tmp_path_factory.mktemp("typo"), n=30, manifest="manifest.jsonl", meta=("score", "genres"))


def _recipe(data: Path, target: str) -> dict:
    return {"dataset": {"path": str(data)}, "seeds": 2, "metric": "test.mae",
            "trainer": {"target": target, "epochs": 1, "batch_size": 8},
            "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout"}]}}},
            "controls": {"identity": False}}


def test_a_misspelt_target_names_the_recipe_key_and_the_close_column(scored: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError) as got:
        mmdata.ablate.run(_recipe(scored, "scor"), tmp_path / "o", workers=1, progress=False)
    msg = str(got.value)
    assert msg.startswith("trainer.target: 'scor' is not a metadata column of ") and "did you mean 'score'?" in msg
    assert "--meta scor" not in msg and "dataset.path" not in msg
    assert not (tmp_path / "o").exists()


def test_a_target_no_column_resembles_keeps_the_reshard_hint(scored: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"dataset.path: .*no training sample has the metadata key 'year' "
                                          r"\(trainer.target\).*--meta year"):
        mmdata.ablate.run(_recipe(scored, "year"), tmp_path / "o", workers=1, progress=False)


def test_mmdata_train_with_a_misspelt_target_says_did_you_mean(scored: Path, tmp_path: Path) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError) as got:
        train(scored, target="scor", epochs=1, out=tmp_path / "run")
    assert str(got.value).startswith("target (--target): 'scor' is not a metadata column of ")
    assert "did you mean 'score'?" in str(got.value) and "--meta scor" not in str(got.value)
    with pytest.raises(MMDataError, match=r"--meta year"):  # no close column: the hint to shard one in stays
        train(scored, target="year", epochs=1, out=tmp_path / "run2")
