"""report.md names the dataset without its secrets (QA round 27, B2): an ablation of
``http://alice:hunter2@HOST/ds`` printed ``Dataset `http://alice:hunter2@...``` in report.md, the file people
share; a local dataset printed the full home-folder path. report.md now redacts a URL (mmdata.urls.redact) and
names a local folder by its name, as the dataset card does; config.resolved.yaml keeps the path as given (it is
the ablation's identity for a rerun)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata.ablate import run
from mmdata.ablate.report import dataset_shown
from mmdata.ablate.testing import synthetic_train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("dsred") / "home" / "jane" / "data" / "ds1", limit=4, progress=False)


def _run(path: str, out: Path) -> str:
    cfg: dict[str, Any] = {"dataset": {"path": path}, "trainer": {}, "seeds": 2,
                           "design": {"mode": "explicit", "baseline": None,
                                      "arms": {"cut": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}}},
                           "controls": {"identity": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(cfg, out, train_fn=synthetic_train, workers=1, progress=False)
    return (out / "report.md").read_text(encoding="utf-8")


def test_a_url_with_user_and_password_is_redacted_in_report_md(tiny: Path, tmp_path: Path, serve_folder) -> None:  # noqa: ANN001
    root = tmp_path / "www"
    shutil.copytree(tiny, root / "ds3")
    url = serve_folder(root).replace("http://", "http://alice:hunter2@") + "/ds3"
    md = _run(url, tmp_path / "out")
    assert "hunter2" not in md and "alice" not in md, md[:2000]
    assert "Dataset `http://***@127.0.0.1:" in md
    # the resolved config keeps the URL as given: it is what a rerun resumes against
    resolved = yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["dataset"]["path"] == url


def test_a_local_dataset_is_named_by_its_folder_not_its_home_path(tiny: Path, tmp_path: Path) -> None:
    md = _run(str(tiny), tmp_path / "out")
    assert "jane" not in md and str(tiny.parent) not in md
    assert "Dataset `ds1`" in md


@pytest.mark.parametrize(("given", "shown"), [
    ("http://alice:hunter2@127.0.0.1:8766/ds3", "http://***@127.0.0.1:8766/ds3"),
    ("https://h.example/ds3?token=T0KVALUE&x=1", "https://h.example/ds3?token=***&x=1"),
    ("s3://AKIA:SECRET@bucket/ds", "s3://***@bucket/ds"),
    ("/home/jane/data/ds1/", "ds1"),
    ("file:///home/jane/data/ds1", "ds1"),
    ("ds1", "ds1"),
])
def test_dataset_shown(given: str, shown: str) -> None:
    assert dataset_shown(given) == shown
