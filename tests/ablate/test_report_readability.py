"""Readability of the ablation report (QA pass 2026-12): numbers shown to the metric's scale, figures that
draw long and CJK arm names, coincident robustness curves and constant per-seed panels that can be read,
exploratory intervals kept to the metric's possible range, and a noise paragraph that reads right for one
arm. Statistics come from the synthetic trainer (mmdata.ablate.testing), run inline."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate import run
from mmdata.ablate.report import (coincident_curves, diff_limits, display_decimals, interval_text, noise_paragraph, num,
                                  short_label)
from mmdata.ablate.testing import synthetic_train

CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
LONG = "strong image cutout with two holes plus random resized crop (v2, tuned on the old data)"
CJK = "音声のノイズ (audio noise)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("readable") / "av", limit=4, progress=False)


def _cfg(data: Path, arms: dict[str, Any], **kw: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 3,
           "design": {"mode": "explicit", "baseline": None, "arms": arms}, "controls": {"identity": False}}
    cfg.update(kw)
    return cfg


def _quiet_run(cfg: dict[str, Any], out: Path, train: Any = synthetic_train) -> tuple[dict[str, Any], list[str]]:
    """run() inline; the figure warnings it emitted (glyphs, layout), ablation warnings aside."""
    from mmdata.ablate.design import AblationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run(cfg, out, train_fn=train, workers=1, progress=False)
    return s, [str(w.message) for w in caught if not issubclass(w.category, (AblationWarning, ResourceWarning))]


def _cli(s: dict[str, Any], out: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from rich.console import Console

    piped = Console(file=io.StringIO(), width=200)
    monkeypatch.setattr("mmdata.cli.ablate.console", piped)
    from mmdata.cli.ablate import _print_summary

    _print_summary(s, out)
    return piped.file.getvalue()  # type: ignore[attr-defined]


# 1 ------------------------------------------------------------------------------------------------
def test_small_scale_metric_numbers_keep_two_significant_digits(tmp_path: Path, tiny: Path, figures: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """test.nll with δ 0.02 read `-0.00` beside d_z -0.87 and a baseline of `1.10 ± 0.00`."""
    assert display_decimals(0.0045, 0.02) == 4 and display_decimals(28.96, 5.0) == 2 and display_decimals(0.0) == 2
    assert num(-0.00203, 2) == "-0.0020" and num(-0.00203, 4) == "-0.0020" and num(0.0, 4) == "+0.0000"
    assert interval_text([-0.01234, 0.00071], 4) == "[-0.0123, +0.0007]"

    def small(data: Any, **kw: Any) -> dict[str, Any]:  # an NLL whose seed sd is ~0.004 and arm effect ~-0.002
        r = synthetic_train(data, **kw)
        r["test"]["nll"] = 1.1 + 0.3 * (r["test"]["accuracy"] - 0.83) - (0.002 if kw.get("recipe") else 0.0)
        return r

    s, _ = _quiet_run(_cfg(tiny, {"cutout": CUT}, metric="test.nll", delta=0.02), tmp_path, small)
    bl = s["baseline"]["metrics"]["test_nll"]
    dec = display_decimals(bl["sd"], 0.02)
    assert dec >= 3
    report = (tmp_path / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("Baseline **"))
    sd_text = re.search(r"± ([0-9.]+)", line).group(1)  # type: ignore[union-attr]
    assert len(sd_text.replace("0.", "", 1).lstrip("0")) >= 2, line  # two significant digits of the sd
    e = s["arms"][0]["primary"]
    row = next(x for x in report.splitlines() if x.startswith("| cutout |"))
    mean = row.split(" | ")[2]
    assert mean == num(e["mean_diff"], dec) and float(mean) != 0 and mean not in ("-0.00", "+0.00")
    assert f"δ = {num(0.02, dec, sign=False)} (set in the recipe)" in report
    out = _cli(s, tmp_path, monkeypatch)
    assert f" {mean} " in out and f"δ = {num(0.02, dec, sign=False)};" in out  # the CLI shows the same digits
    forest = figures["forest.png"].axes[0]
    assert any(f"mean Δ {mean}" in t.get_text() for t in forest.texts)
    assert f"±δ = {num(0.02, dec, sign=False)}" in forest.get_xlabel()


# 2 ------------------------------------------------------------------------------------------------
def test_long_and_cjk_arm_names_are_drawn_readably(tmp_path: Path, tiny: Path, figures: dict[str, Any]) -> None:
    """abl5: titles ran into each other, the long label squeezed the forest plot, and the CJK name drew as boxes
    with ~30 'Glyph missing' warnings and 'Tight layout not applied'."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.font_manager import FontProperties, findfont

    from mmdata.ablate.report import _width
    from mmdata.augment.preview import cjk_font

    assert short_label("cutout") == "cutout" and short_label(CJK) == CJK
    lab = short_label(LONG, 28, 2)
    assert lab.startswith("strong image cutout") and lab.endswith("old data)") and "…" in lab
    assert all(_width(x) <= 28 for x in lab.split("\n")) and len(lab.split("\n")) == 2
    assert all(_width(x) <= 20 for x in short_label("音声のノイズ" * 8, 20, 2).split("\n"))

    arms = {LONG: CUT, CJK: {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]}, "identity_like": None}
    s, caught = _quiet_run(_cfg(tiny, arms, controls={"identity": True, "label_noise": 0.3}), tmp_path)
    assert caught == [], caught  # no 'Glyph … missing', no 'Tight layout not applied'
    report = (tmp_path / "report.md").read_text()
    assert f"| {LONG} |" in report and f"| {CJK} |" in report  # full names stay in the report

    forest = figures["forest.png"]
    ax = forest.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert all(_width(x) <= 28 for t in ticks for x in t.split("\n")) and CJK in ticks
    FigureCanvasAgg(forest).draw()  # closed figures: give them a canvas to measure on
    whole = forest.get_tightbbox().width  # inches of the saved (tight) figure
    assert ax.get_window_extent().width / forest.dpi / whole > 0.5  # the plot keeps most of the width
    if cjk_font():  # the CJK label is drawn with a font that has its glyphs
        tick = next(t for t in ax.get_yticklabels() if t.get_text() == CJK)
        fams = tick.get_fontfamily()
        assert any(findfont(FontProperties(family=f)) == findfont(FontProperties(family=cjk_font())) for f in fams)

    paired = figures["paired.png"]
    canvas = FigureCanvasAgg(paired)
    canvas.draw()
    r = canvas.get_renderer()
    boxes = [ax.title.get_window_extent(r) for ax in paired.axes if ax.get_title()]
    assert len(boxes) == len(s["arms"])
    for i, a in enumerate(boxes):  # no two panel titles overlap
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    titles = [ax.get_title() for ax in paired.axes if ax.get_title()]
    assert any(t.startswith(CJK) for t in titles) and not any(LONG in t for t in titles)
    for name in ("forest.png", "paired.png", "robustness.png"):
        assert (tmp_path / name).stat().st_size > 0


# 3 ------------------------------------------------------------------------------------------------
def test_coincident_robustness_curves_are_visible_and_named(tmp_path: Path, tiny: Path, figures: dict[str, Any]) -> None:
    """A curve identical to another sat hidden under it, in the legend with no visible trace."""
    same = coincident_curves({"image": {"a": (2, [0.0, 1.0]), "b": (2, [0.0, 1.0]), "c": (2, [0.0, 0.0])},
                              "audio": {"a": (2, [1.0, 1.0]), "b": (2, [2.0, 1.0])}}, ["a", "b", "c"])
    assert same == {"b": {"image": "a"}, "c": {"image": None}}

    arms = {"cut_a": CUT, "cut_b": CUT, "nothing": None}  # cut_b repeats cut_a; `nothing` is the baseline
    s, caught = _quiet_run(_cfg(tiny, arms), tmp_path)
    assert caught == []
    fig = figures["robustness.png"]
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    a, b = lines["cut_a"], lines["cut_b"]
    assert list(a.get_ydata()) == list(b.get_ydata())
    assert (a.get_marker(), a.get_markersize()) != (b.get_marker(), b.get_markersize())
    assert a.get_markersize() > b.get_markersize() and b.get_zorder() > a.get_zorder()  # b drawn inside a: both show
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("cut_b") and "= cut_a" in t for t in legend)
    assert any(t.startswith("nothing") and "= baseline (Δ = 0)" in t for t in legend)


def test_a_constant_paired_panel_gets_a_small_range_and_says_so(tmp_path: Path, tiny: Path,
                                                                figures: dict[str, Any]) -> None:
    """Every value 100: the panel ran 96–104 with nothing saying the values were all equal."""

    def perfect(data: Any, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, **kw: Any) -> dict[str, Any]:
        return {"test": {"accuracy": 1.0 if not label_noise else 0.5 + 0.1 * (seed % 2)}}

    s, caught = _quiet_run(_cfg(tiny, {"same": None}, delta=1.0, controls={"identity": False, "label_noise": 0.3}),
                           tmp_path, perfect)
    assert caught == []
    panels = {ax.get_title().split("\n")[0]: ax for ax in figures["paired.png"].axes if ax.get_title()}
    flat, varied = panels["same"], panels["label_noise"]
    lo, hi = flat.get_ylim()
    assert lo < 100 < hi and hi - lo <= 2.0 + 1e-9  # ±δ around the value
    assert [t.get_text() for t in flat.get_yticklabels()] == ["100.00"]
    assert any("all values equal" in t.get_text() for t in flat.texts)
    assert not any("all values equal" in t.get_text() for t in varied.texts)


# 4 ------------------------------------------------------------------------------------------------
def test_exploratory_intervals_stay_in_the_possible_range(tmp_path: Path, tiny: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """label_noise macro-F1 read `-48.38 [-154.98, +58.21]` points: a difference of two values in [0, 100]."""
    assert diff_limits("test_macro_f1", 100.0) == (-100.0, 100.0) and diff_limits("robust_image_auc", 100.0) == (-100.0, 100.0)
    assert diff_limits("test_nll", 1.0) is None
    assert interval_text([-154.98, 58.21], limits=(-100.0, 100.0)) == "[-100.00†, +58.21]"
    assert interval_text([-54.98, 58.21], limits=(-100.0, 100.0)) == "[-54.98, +58.21]"

    monkeypatch.setattr("mmdata.ablate.testing.DRAW_SD", 0.3)  # wildly different arms: wide t intervals at 2 seeds
    s, _ = _quiet_run(_cfg(tiny, {"cutout": CUT, "noise": {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]}}, seeds=2),
                      tmp_path)
    raw = [e["ci95_t_unadjusted"] for a in s["arms"] for m, e in a["exploratory"].items() if m == "test_macro_f1"]
    assert any(lo is not None and lo < -100 or hi is not None and hi > 100 for lo, hi in raw)  # the raw t interval
    assert all(e.get("possible_range") == [-100.0, 100.0] for a in s["arms"] for m, e in a["exploratory"].items()
               if m == "test_macro_f1")
    report = (tmp_path / "report.md").read_text()
    table = report[report.index("## Exploratory"):]
    shown = [float(x) for x in re.findall(r"[\[,] ([+-][0-9.]+)†?", table)]
    assert shown and all(-100 <= v <= 100 for v in shown)
    assert "†" in table and "clipped to the possible range" in table


def test_the_noise_paragraph_reads_right_for_one_arm() -> None:
    """abl7: 'over 1 arms (61–61% per arm, …'."""
    one = {"share": 0.61, "share_range": [0.61, 0.61], "n_test": 8, "sd_test": 17.0, "arms": 1, "left_out": ["label_noise"],
           "disagreement": 0.25}
    text = noise_paragraph(one)
    assert "over 1 arm (" in text and "1 arms" not in text and "61–61%" not in text and "per arm" not in text
    two = {**one, "arms": 2, "share_range": [0.608, 0.612]}
    text = noise_paragraph(two)
    assert "over 2 arms (61% in each arm" in text and "61–61%" not in text
    three = {**one, "arms": 3, "share_range": [0.3, 0.8]}
    assert "over 3 arms (30–80% per arm" in noise_paragraph(three)
