"""QA38 review 4 #3 #4: a re-render without the dataset keeps the recorded dataset / target blocks only when they
have the report's shape; null or malformed blocks give "could not be re-checked" (no KeyError, no false "kept")."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.test_qa38_ablate_rerender import TARGET, _cfg, _run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa38aug2") / "o_base", limit=4, progress=False)


@pytest.mark.parametrize("dataset, target", [
    (None, None),  # what the re-render before the fix wrote
    ("keep", {"kind": "classes", "n_test": 15}),  # truncated: KeyError 'constant' before
    ("str", {**TARGET, "constant": "oops", "n_test": "x"}),  # other types: AttributeError before
])
def test_a_malformed_or_null_recorded_block_is_not_kept(tmp_path: Path, tiny: Path, dataset: Any, target: Any) -> None:
    data = shutil.copytree(tiny, tmp_path / "d")
    out = tmp_path / "ab"
    _run(_cfg(data), out)
    s = json.loads((out / "summary.json").read_text())
    if dataset != "keep":
        s["dataset"] = dataset
    s["target"] = target
    (out / "summary.json").write_text(json.dumps(s))
    shutil.rmtree(data)
    said: list[str] = []
    again = _run(out / "config.resolved.yaml", out, said)
    gone = next(m for m in said if "is not there" in m)
    assert "could not be re-checked" in gone and "kept as the folder's summary.json" not in gone, gone
    assert "summary.json holds no dataset / target block" in gone, gone
    assert again["dataset"] is None and again["target"] is None
