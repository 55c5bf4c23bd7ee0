"""The PNGs ``mmdata ablate`` writes (forest, paired, robustness) do not depend on the caller's matplotlib settings.

Before (2026-12-04) they were drawn under whatever rcParams the caller had: a notebook's inline backend sets
``figure.dpi`` on pyplot's first import, a style sets fonts and colours, so the same runs gave other figures in a
notebook than from the CLI (the sibling ``ablate-folds`` forest plot was fixed in 36368c7). Every figure is now
drawn under :func:`mmdata.augment.preview.figure_style`; the other PNG writers that use it (the matching and
alignment audits, the recipe preview) are checked here too. Runs come from the synthetic trainer, inline.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmdata.ablate import run
from mmdata.ablate.testing import synthetic_train

#: a caller's settings that each moved the figures' layout, fonts or colours before
CALLER = {"figure.dpi": 72, "font.size": 14, "lines.linewidth": 3, "font.family": "serif", "axes.facecolor": "0.9",
          "text.color": "red", "savefig.facecolor": "yellow"}
CJK = "音声のノイズ (audio noise)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("rcparams") / "av", limit=4, progress=False)


def _cfg(data: Path, arms: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 3,
            "design": {"mode": "explicit", "baseline": None, "arms": arms}, "controls": {"identity": False}}


def _run(cfg: dict[str, Any], out: Path) -> None:
    with warnings.catch_warnings():  # the design's and the figures' warnings are other tests' subject
        warnings.simplefilter("ignore")
        run(cfg, out, train_fn=synthetic_train, workers=1, progress=False, on_warning=lambda msg: None)


def _same_pngs(a: Path, b: Path) -> list[str]:
    names = sorted(p.name for p in a.glob("*.png"))
    assert names == sorted(p.name for p in b.glob("*.png"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} changed with the caller's rcParams"
    return names


@pytest.mark.parametrize("noise", ["noise", CJK], ids=["plain", "cjk-name"])
def test_report_pngs_do_not_depend_on_the_callers_rcparams(tiny: Path, tmp_path: Path, noise: str) -> None:
    """A CJK arm name adds its font family over the defaults (or the placeholder): the same bytes either way."""
    import matplotlib

    cfg = _cfg(tiny, {"cutout": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]},
                      noise: {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]}})
    before = dict(matplotlib.rcParams)
    _run(cfg, tmp_path / "cli")
    with matplotlib.rc_context(CALLER):
        _run(cfg, tmp_path / "notebook")
        assert matplotlib.rcParams["figure.dpi"] == 72 and matplotlib.rcParams["font.size"] == 14  # theirs, restored
    assert _same_pngs(tmp_path / "cli", tmp_path / "notebook") == ["forest.png", "paired.png", "robustness.png"]
    assert (tmp_path / "cli" / "report.md").read_text() == (tmp_path / "notebook" / "report.md").read_text()
    assert dict(matplotlib.rcParams) == before


def test_other_png_writers_do_not_depend_on_the_callers_rcparams(tmp_path: Path) -> None:
    """The matching and alignment audits' figures and the recipe preview, drawn under the same helper."""
    import matplotlib

    import mmdata
    from mmdata.augment.preview import preview
    from mmdata.testing import make_sample_folder
    from mmdata.train import alignment, matching

    one = {"n": 2, "kl_ab": 0.1, "kl_ba": 0.2, "js": 0.3, "argmax_agreement": 0.5}
    cos = {"matched_mean": 0.5, "matched_std": 0.1, "mismatched_mean": 0.1, "mismatched_std": 0.2, "auc": 0.8}
    match = {"split": "test", "n": 6, "fusion": "late",
             "pairs": {"image-text": {"cosine": cos, "divergence": {**one, "per_class": {"a": one, "b": one}}}}}
    hist = {"image-text": (np.array([0.5, 0.6, 0.4]), np.array([0.1, -0.2, 0.3]))}
    pair = {"delta_cosine": -0.1, "delta_cosine_ci95": [-0.2, 0.0], "delta_auc": -0.05, "delta_R@1": 0.02}
    audit = {"split": "test", "n": 6, "pairs": ["image-text"],
             "clean": {"image-text": {"cosine": 0.5, "auc": 0.8, "R@1": 0.4}},
             "ops": [{"op": "image.hflip", "index": 0, "p": 0.5, "pairs": {"image-text": pair}},
                     {"op": "recipe (as written)", "index": None, "pairs": {"image-text": pair}}]}
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=3), tmp_path / "ds", progress=False)
    recipe = {"image": [{"op": "hflip"}], "text": [{"op": "token_mask", "p": 0.5}]}

    def draw(out: Path) -> None:
        matching.plot(match, out / "matching.png", hist)
        alignment.plot(audit, out / "alignment.png")
        preview(tmp_path / "ds", recipe, out / "preview.png", n=2, variants=1)

    for out in ("cli", "notebook"):
        (tmp_path / out).mkdir()
    draw(tmp_path / "cli")
    with matplotlib.rc_context(CALLER):
        draw(tmp_path / "notebook")
    assert _same_pngs(tmp_path / "cli", tmp_path / "notebook") == ["alignment.png", "matching.png", "preview.png"]
