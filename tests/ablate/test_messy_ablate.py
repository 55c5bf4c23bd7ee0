"""Issue 10's acceptance for ablations: a user's messy folder (mixed sizes and modes, 16 / 22.05 kHz mono
and stereo, multilingual and missing captions, unlabelled and imbalanced samples; built by
mmdata.testing.make_messy_folder) shards and ablates with the bundled trainer and with the
`--trainer` example, no file rewritten by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.testing import make_messy_folder

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("messy_ab")
    make_messy_folder(root / "raw", n=40, sizes=((32, 32), (48, 64), (60, 40)), seconds=(0.3, 1.0), unlabelled=0.1)
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


def _recipe(tmp_path: Path, data: Path, trainer: dict) -> Path:
    cfg = {"dataset": {"path": str(data)}, "trainer": trainer, "seeds": 2,
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False}}
    p = tmp_path / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_messy_folder_ablates_with_the_example_trainer_and_no_normalize_stage(tmp_path: Path, messy: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The example derives the input format from the index like the bundled trainer (mixed sizes, channels
    and rates batch); tests/test_messy_end_to_end.py covers a recipe with a user-written normalize stage."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    recipe = _recipe(tmp_path, messy, {"epochs": 1, "batch_size": 8})
    res = CliRunner().invoke(app, ["ablate", str(recipe), "--out", str(tmp_path / "o"), "-j", "1", "--json",
                                   "--trainer", "custom_trainer:train"])
    assert res.exit_code == 0, res.output[-3000:]
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert not s["failures"] and s["runs"]["ok"] == 4 and [a["n_seeds"] for a in s["arms"]] == [2]
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rows)
