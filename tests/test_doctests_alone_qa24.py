"""A contributor runs the doctests of the one file they edit (QA 2026-12-05, a new contributor):
``pytest mmdata/augment/base.py`` alone failed ("unknown image op 'hflip'; allowed: " — an empty list)
though the suite passed: under ``--import-mode=importlib`` pytest imports the file again as a fresh module,
whose registry the built-in ops (registered in the first copy) never fill. The modules that hold a
registry are run alone here, each in its own pytest process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("module", ["mmdata/augment/base.py", "mmdata/train/fusions.py", "mmdata/plugins.py"])
def test_a_registry_modules_doctests_pass_alone(module: str) -> None:
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", module],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
