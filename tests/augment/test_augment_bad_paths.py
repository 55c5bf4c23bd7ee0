"""Paths the system cannot look up given to ``augment`` and ``preview`` (hostile-host QA): a symbolic link
loop as OUT or a source name over 255 bytes gave resolve()'s / is_dir()'s traceback, and a preview output
name over 255 bytes was refused by the write after the whole grid was drawn. Now each is one MMDataError
naming the path and why, before any work (the CLI prints it as one ``error:`` line, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.augment import preview as preview_mod
from mmdata.augment.offline import augment_dataset
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("badpaths")
    mmdata.shard(make_sample_folder(t / "raw", n=4), t / "ds", progress=False)
    return t / "ds"


def test_augment_into_a_link_loop_is_one_error_naming_it(ds: Path, tmp_path: Path) -> None:
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    with pytest.raises(MMDataError, match=r"output folder .*loop1.*symbolic link loop"):
        augment_dataset(ds, tmp_path / "loop1", RECIPE)


def test_augment_from_a_name_too_long_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"source .*aaaa.*too long \(a name of 300 bytes"):
        augment_dataset(tmp_path / ("a" * 300), tmp_path / "out", RECIPE)


def test_preview_refuses_a_name_too_long_before_drawing(ds: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    figure = preview_mod.preview_figure
    monkeypatch.setattr(preview_mod, "preview_figure", lambda *a, **k: drawn.append(1) or figure(*a, **k))
    with pytest.raises(MMDataError, match=r"preview output .*too long \(a name of 304 bytes"):
        preview_mod.preview(ds, RECIPE, tmp_path / ("p" * 300 + ".png"), n=2, variants=1)
    assert drawn == []
