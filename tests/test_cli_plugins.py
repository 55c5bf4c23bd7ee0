"""`--plugin MODULE`: the CLI commands that read recipes or fusion names import the user's module first
(extension QA 2026-12-03: `mmdata preview DS -r r.yaml` with a custom op exited 2, "unknown image op", and
no command could load user code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

PLUGIN = '''
import numpy as np
import torch

from mmdata.augment.image import ImageOp
from mmdata.train.fusions import Fusion, register


class Invert(ImageOp):
    name = "qa_invert"

    def kernel(self, arr, params):
        return (255 - arr).astype(np.uint8)


@register("qa_sum")
class Sum(Fusion):
    """Sum of one linear head per modality present."""

    def __init__(self, mods, d, classes, low_dims):
        super().__init__(mods, d, classes, low_dims)
        self.heads = torch.nn.ModuleDict({m: torch.nn.Linear(d, classes) for m in self.mods})

    def forward(self, feats, present, low):
        return sum(self.heads[m](feats[m]) * present[m][:, None].float() for m in self.mods)
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("plugins")
    (root / "qa_plugin_ops.py").write_text(PLUGIN)
    (root / "r.yaml").write_text("seed: 0\nimage:\n  - {op: qa_invert, p: 1}\n")
    mmdata.shard(make_sample_folder(root / "raw", n=12), root / "ds", split="train=0.5,val=0.25,test=0.25",
                 progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return root, env


def _mmdata(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_preview_and_augment_load_a_plugin_op(setup: tuple[Path, dict[str, str]]) -> None:
    root, env = setup
    res = _mmdata(env, root, "preview", "ds", "-r", "r.yaml", "-o", "p.png", "--n", "2", "--variants", "1")
    assert res.returncode == 2 and "unknown image op 'qa_invert'" in res.stderr  # without it
    res = _mmdata(env, root, "preview", "ds", "-r", "r.yaml", "-o", "p.png", "--n", "2", "--variants", "1",
                  "--plugin", "qa_plugin_ops")
    assert res.returncode == 0, res.stderr
    assert (root / "p.png").read_bytes()[:4] == b"\x89PNG"
    res = _mmdata(env, root, "augment", "ds", "aug", "-r", "r.yaml", "--plugin", "qa_plugin_ops", "-j", "2", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["samples"] > 0


def test_train_loads_a_plugin_fusion(setup: tuple[Path, dict[str, str]]) -> None:
    root, env = setup
    res = _mmdata(env, root, "train", "ds", "--fusion", "qa_sum", "--epochs", "1", "--no-robustness", "--json",
                  "--plugin", "qa_plugin_ops")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["config"]["fusion"] == "qa_sum"


def test_a_missing_plugin_is_a_one_line_error(setup: tuple[Path, dict[str, str]]) -> None:
    root, env = setup
    res = _mmdata(env, root, "preview", "ds", "-r", "r.yaml", "--plugin", "no_such_qa_module")
    assert res.returncode == 2 and "no_such_qa_module" in res.stderr and "Traceback" not in res.stderr


def test_ablate_passes_its_plugins_to_every_worker(setup: tuple[Path, dict[str, str]]) -> None:
    """`mmdata ablate --plugin` with two worker processes: each fresh worker imports the module too (a script's
    own `import myops` made every run of `-j 2` fail with "unknown image op")."""
    import yaml

    root, env = setup
    cfg = {"dataset": {"path": str(root / "ds")}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
           "seeds": 2, "design": {"mode": "explicit", "baseline": None,
                                  "arms": {"inv": {"image": [{"op": "qa_invert"}]}}},
           "controls": {"identity": False}, "delta": 1.0}
    (root / "abl.yaml").write_text(yaml.safe_dump(cfg))
    res = _mmdata(env, root, "ablate", "abl.yaml", "--out", "ab", "-j", "2", "--json", "--plugin", "qa_plugin_ops")
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads(res.stdout)
    assert s["runs"]["ok"] == 4 and s["runs"]["failed"] == 0
    assert yaml.safe_load((root / "ab" / "config.resolved.yaml").read_text())["imports"] == ["qa_plugin_ops"]
