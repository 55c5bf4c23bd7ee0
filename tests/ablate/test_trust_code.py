"""A recipe that names code (``imports:``, ``trainer.entry``) is refused before anything is imported unless the
caller consents (QA round 22, multi-user: a recipe's ``imports: ["http.server:test"]`` served HTTP on 0.0.0.0:8000,
``getpass:getuser`` ran silently, and rerunning a colleague's results folder re-imported its code). Consent:
``load_ablation(..., trust_code=True)``, a :func:`mmdata.plugins.trust_code` block, ``mmdata ablate --trust-code``.
What the caller names itself (``plugins=``, ``--plugin``, ``entry=``, ``--trainer``, a Python trainer) needs none.
A throwaway module written to tmp_path proves nothing was imported: it is not in ``sys.modules`` and the file it
writes when imported does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata.ablate import load_ablation
from mmdata.errors import RecipeError
from mmdata.plugins import trust_code
from mmdata.recipes_path import resolve, shipped_recipes

SYNTH = "mmdata.ablate.testing:synthetic_train"
ARMS = {"mode": "explicit", "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}


def _probe(folder: Path) -> tuple[str, Path]:
    """A module on sys.path that, when imported, writes ``imported-<name>`` beside itself (any process)."""
    name = f"qa22_probe_{uuid.uuid4().hex[:10]}"
    marker = folder / f"imported-{name}"
    (folder / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('yes')\n\ndef register():\n    pass\n",
        encoding="utf-8")
    return name, marker


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    name, marker = _probe(tmp_path)
    yield name, marker
    sys.modules.pop(name, None)
    # loaded plugins are recorded for every later run in this process to import (Ray tasks, workers): the
    # probe's module is gone with tmp_path, so it leaves that record too
    from mmdata import plugins

    for spec in [s for s in plugins._LOADED if s == name or s.startswith(f"{name}:")]:
        del plugins._LOADED[spec]


def test_a_recipe_naming_code_is_refused_before_anything_is_imported(probe: tuple[str, Path]) -> None:
    name, marker = probe
    recipe = {"imports": [f"{name}:register", "getpass:getuser"], "trainer": {"entry": f"{name}:train"}, "design": ARMS}
    with pytest.raises(RecipeError) as err:
        load_ablation(recipe)
    msg = str(err.value)
    assert "runs Python code on this machine" in msg and "--trust-code" in msg and "trust_code=True" in msg
    assert f"imports: ['{name}:register', 'getpass:getuser']" in msg and f"trainer.entry: '{name}:train'" in msg
    assert name not in sys.modules and not marker.exists()
    with pytest.raises(RecipeError, match=r"runs Python code on this machine when loaded: trainer.entry: 'getpass:getuser'"):
        load_ablation({"trainer": {"entry": "getpass:getuser"}, "design": ARMS})  # an entry alone needs consent too
    with pytest.raises(RecipeError, match=r"imports: \['mmdata.ablate.testing:synthetic_train'\]; pass"):
        load_ablation({"imports": [SYNTH], "design": ARMS})  # a function to call, even mmdata's
    with pytest.raises(RecipeError, match="pass --trust-code"), trust_code():
        load_ablation(recipe, trust_code=False)  # the call's own False wins over the block
    assert name not in sys.modules and not marker.exists()


def test_with_consent_the_recipe_code_is_imported(probe: tuple[str, Path]) -> None:
    name, marker = probe
    recipe = {"imports": [f"{name}:register"], "trainer": {"entry": SYNTH}, "design": ARMS}
    ab = load_ablation(recipe, trust_code=True)
    assert name in sys.modules and marker.exists() and ab.entry == SYNTH and f"{name}:register" in ab.imports
    with trust_code():
        assert load_ablation(recipe).entry == SYNTH


def test_mmdatas_own_trainers_and_modules_need_no_consent() -> None:
    assert load_ablation({"imports": ["mmdata.ablate.testing"], "trainer": {"entry": SYNTH}, "design": ARMS}).entry == SYNTH


def test_what_the_caller_names_needs_no_consent(probe: tuple[str, Path]) -> None:
    name, marker = probe
    ab = load_ablation({"design": ARMS}, plugins=[name])  # run(plugins=), --plugin
    assert marker.exists() and name in ab.imports
    # the caller's entry (run(trainer=), --trainer) replaces the recipe's, which is then never imported
    assert load_ablation({"trainer": {"entry": "nowhere_xyz:train"}, "design": ARMS}, entry=SYNTH).entry == SYNTH
    assert load_ablation({"trainer": {"entry": "mmdata.train:train"}, "design": ARMS}).entry is None  # the bundled one


@pytest.mark.parametrize("name", shipped_recipes(ablation=True))
def test_the_shipped_ablation_recipes_need_no_consent(name: str) -> None:
    data = yaml.safe_load(resolve(name, ablation=True).read_text(encoding="utf-8"))
    assert "imports" not in data and "entry" not in (data.get("trainer") or {})


def _cli(*args: str, cwd: Path, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", "ablate", *args, "-j", "1", "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_cli_trust_code_and_resuming_a_results_folder(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    with warnings.catch_warnings():  # 2 per class: no val split, which the synthetic trainer does not need
        warnings.simplefilter("ignore")
        data = build(tmp_path / "av", limit=2, progress=False)
    code = tmp_path / "code"
    code.mkdir()
    name, marker = _probe(code)
    cfg: dict[str, Any] = {"dataset": {"path": str(data)}, "seeds": 2, "imports": [name], "trainer": {"entry": SYNTH},
                           "design": {"mode": "explicit", "baseline": None,
                                      "arms": {"cut": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}}},
                           "controls": {"identity": False}}
    recipe = tmp_path / "colleague.yaml"
    recipe.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    refused = _cli(str(recipe), "--out", str(tmp_path / "r1"), cwd=tmp_path, path=code)
    assert refused.returncode == 2, refused.stderr
    assert "--trust-code" in refused.stderr and f"imports: ['{name}']" in refused.stderr and str(recipe) in refused.stderr
    assert not marker.exists() and not (tmp_path / "r1" / "runs.parquet").exists()

    trusted = _cli(str(recipe), "--out", str(tmp_path / "r1"), "--trust-code", cwd=tmp_path, path=code)
    assert trusted.returncode == 0, trusted.stderr
    assert marker.exists()
    resolved = tmp_path / "r1" / "config.resolved.yaml"
    assert yaml.safe_load(resolved.read_text(encoding="utf-8"))["imports"] == [name]
    assert "--trust-code" in (tmp_path / "r1" / "report.md").read_text(encoding="utf-8")  # how to rerun it says so
    marker.unlink()
    again = _cli(str(resolved), "--out", str(tmp_path / "r1"), cwd=tmp_path, path=code)  # resuming someone's folder
    assert again.returncode == 2, again.stderr
    assert "--trust-code" in again.stderr and "config.resolved.yaml" in again.stderr and not marker.exists()


def test_run_takes_the_consent_as_an_argument(probe: tuple[str, Path], tmp_path: Path) -> None:
    """``mmdata.ablate.run(..., trust_code=)`` as the brief names it: refused without, the block still works."""
    from mmdata.ablate import run

    name, marker = probe
    recipe = {"imports": [f"{name}:register"], "trainer": {"entry": SYNTH}, "design": ARMS}
    with pytest.raises(RecipeError, match="pass --trust-code"):
        run(recipe, tmp_path / "a", progress=False, plots=False, max_runs=0)
    with pytest.raises(RecipeError, match="pass --trust-code"), trust_code():
        run(recipe, tmp_path / "b", progress=False, plots=False, max_runs=0, trust_code=False)
    assert name not in sys.modules and not marker.exists()
