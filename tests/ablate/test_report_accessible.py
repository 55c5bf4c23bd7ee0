"""Accessibility of the ablation report (QA pass 2026-12): report.md's figures have alt texts that say what they
show and where their numbers are, the per-seed values are text (paired.csv beside the report and a table in it),
and the paired plot's colours stay apart under red-green colour blindness, with a second cue besides colour.
The runs come from the synthetic trainer (mmdata.ablate.testing), run inline on a four-sample avdigits."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.ablate.report import arm_order
from mmdata.ablate.testing import synthetic_train

CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
NOISE = {"seed": 0, "audio": [{"op": "noise", "p": 0.5}]}
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def ablation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(output folder, summary, the figures as drawn by file name) of one small real ablation."""
    from matplotlib.figure import Figure

    from mmdata.datasets.avdigits import build

    root = tmp_path_factory.mktemp("accessible")
    data = build(root / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 7,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT, "noise": NOISE}},
           "controls": {"identity": False, "label_noise": 0.3}}
    seen: dict[str, Any] = {}
    save = Figure.savefig

    def record(self: Figure, fname: Any, *a: Any, **kw: Any) -> Any:
        seen[Path(str(fname)).name] = self
        return save(self, fname, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", record)
        s = run(cfg, root / "out", train_fn=synthetic_train, workers=1, progress=False)
    return root / "out", s, seen


def _images(report: str) -> dict[str, str]:
    return {src: alt for alt, src in IMAGE.findall(report)}


def test_alt_texts_say_what_each_figure_shows(ablation: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    """The alt texts were the bare words `forest plot`, `paired seeds`, `robustness curves`."""
    out, s, _ = ablation
    report = (out / "report.md").read_text()
    alts = _images(report)
    assert {"forest.png", "paired.png"} <= set(alts)
    for src, alt in alts.items():
        assert alt not in ("forest plot", "paired seeds", "robustness curves"), src
        assert len(alt.split()) >= 20 and "\n" not in alt and "[" not in alt, (src, alt)
    forest, paired = alts["forest.png"], alts["paired.png"]
    metric = s["primary_metric"]
    assert metric["name"] in forest and metric["label"] in forest and "table above" in forest
    assert f"{len(s['arms'])} arms (" in forest and all(a["decision"] in forest for a in s["arms"])
    assert "paired.csv" in paired and "baseline" in paired and "orange" in paired and "blue" in paired


def test_per_seed_values_are_text(ablation: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    """The per-seed section held only the image: its values were nowhere but in the binary runs.parquet."""
    out, s, _ = ablation
    report = (out / "report.md").read_text()
    section = report[report.index("## Per-seed results"):]
    assert "[`paired.csv`](paired.csv)" in section.split("\n## ")[0]
    with (out / "paired.csv").open(newline="") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == ["arm", "seed", "metric", "units", "baseline", "arm_value", "difference"]

    runs = [r for r in pq.read_table(out / "runs.parquet").to_pylist() if r["status"] == "ok"]
    scale = s["primary_metric"]["scale"]
    value = {(r["arm"], int(r["seed"])): r["test_accuracy"] * scale for r in runs}
    base = s["baseline"]["name"]
    want = sorted((arm, sd) for arm, sd in value if arm != base and (base, sd) in value)  # a fixed design: every seed
    assert sorted((r["arm"], int(r["seed"])) for r in got) == want and len(want) == sum(a["primary"]["n_seeds"] for a in s["arms"])
    for r in got:
        key = (r["arm"], int(r["seed"]))
        assert r["metric"] == "test.accuracy" and r["units"] == s["primary_metric"]["label"]
        assert float(r["baseline"]) == value[(base, key[1])] and float(r["arm_value"]) == value[key]
        assert float(r["difference"]) == value[key] - value[(base, key[1])]
    # arms in the report's order (the table's), seeds ascending
    order = [a["name"] for a in arm_order(s["arms"], s["primary_metric"]["higher_is_better"])]
    assert [(r["arm"], int(r["seed"])) for r in got] == sorted(((r["arm"], int(r["seed"])) for r in got),
                                                                key=lambda k: (order.index(k[0]), k[1]))
    # each arm's mean of the CSV's differences is the report's mean Δ
    for a in s["arms"]:
        d = [float(r["difference"]) for r in got if r["arm"] == a["name"]]
        assert np.mean(d) == pytest.approx(a["primary"]["mean_diff"], rel=1e-12, abs=1e-12)

    # the table in report.md: the baseline's values, then each arm's Δ per seed, as the CSV has them (2 decimals)
    table = section[section.index("<details>"):section.index("</details>")]
    rows = {line.split(" | ")[0].lstrip("| "): [c.strip() for c in line.strip("| \n").split(" | ")[1:]]
            for line in table.splitlines() if line.startswith("| ") and not line.startswith("| arm |")}
    assert set(rows) == {f"{base} (its value, not a Δ)", *order}
    for r in got:
        assert rows[r["arm"]][int(r["seed"])] == f"{float(r['difference']):+.2f}"
        assert rows[f"{base} (its value, not a Δ)"][int(r["seed"])] == f"{float(r['baseline']):.2f}"


def test_paired_csv_has_the_same_bytes_for_the_same_runs(ablation: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    from mmdata.ablate.report import paired_csv

    out, _, _ = ablation
    rows = [("a, with a comma", 0, 1 / 3, 0.5, 0.5 - 1 / 3), ("b", 1, 80.0, 81.25, 1.25)]
    one = paired_csv(rows, "test.accuracy", "accuracy (points)")
    assert one == paired_csv(list(rows), "test.accuracy", "accuracy (points)") and b"\r" not in one
    back = list(csv.reader(io.StringIO(one.decode())))
    assert back[1][0] == "a, with a comma" and float(back[1][4]) == 1 / 3  # floats round-trip exactly
    assert (out / "paired.csv").read_bytes().endswith(b"\n")


def _deuteranopia(colour: str) -> np.ndarray:
    """sRGB colour as a deuteranope sees it (Machado, Oliveira & Fernandes 2009, severity 1), in linear RGB."""
    from matplotlib.colors import to_rgb

    c = np.asarray(to_rgb(colour))
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]])
    return np.clip(m @ lin, 0, 1)


def test_paired_plot_is_readable_without_red_green(ablation: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    """paired.png coloured a seed tab:green (arm better) or tab:red (baseline better): one colour to a deuteranope."""
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.colors import to_hex

    _, s, figures = ablation
    fig = figures["paired.png"]
    title = " ".join(fig.get_suptitle().split())
    assert not re.search(r"\b(green|red)\b", title), title
    assert "blue solid line, circles: arm better" in title and "orange dashed line, crosses: baseline better" in title
    from mmdata.ablate.report import seed_style

    better, worse, tie = seed_style(2.0, 1.0), seed_style(1.0, 2.0), seed_style(1.0, 1.0)
    assert seed_style(1.0, 2.0, higher_is_better=False) == better
    ours = {to_hex(better[0]), to_hex(worse[0]), to_hex(tie[0])}
    assert {to_hex(better[0]), to_hex(worse[0])}.isdisjoint({to_hex("tab:green"), to_hex("tab:red")})
    # simulated deuteranopia: the red / green pair is 0.07 apart in linear RGB, blue / vermillion 0.55
    assert np.linalg.norm(_deuteranopia("tab:green") - _deuteranopia("tab:red")) < 0.1
    assert np.linalg.norm(_deuteranopia(better[0]) - _deuteranopia(worse[0])) > 0.3
    assert len({better[1], worse[1], tie[1]}) == 3 and len({better[2], worse[2], tie[2]}) == 3  # a cue besides colour

    noise = next(ax for ax in fig.axes if ax.get_title().startswith("label_noise"))
    lines = next(c for c in noise.collections if isinstance(c, LineCollection))
    n = next(a for a in s["arms"] if a["name"] == "label_noise")["primary"]["n_seeds"]
    assert len(lines.get_segments()) == n
    drawn = {to_hex(c) for ax in fig.axes for lc in ax.collections if isinstance(lc, LineCollection) for c in lc.get_colors()}
    assert drawn and drawn <= ours
    for ax in fig.axes:  # the markers: one shape per outcome, in the outcome's colour
        for pc in (c for c in ax.collections if isinstance(c, PathCollection)):
            assert {to_hex(c) for c in pc.get_facecolors()} <= ours
    dashed = [ls for ax in fig.axes for c in ax.collections if isinstance(c, LineCollection) for ls in c.get_linestyles()]
    assert len({(off, tuple(seq) if seq is not None else None) for off, seq in dashed}) >= 2  # solid and dashed both drawn


def test_forest_and_alignment_colours_stay_apart_to_a_deuteranope() -> None:
    """The forest plot's helps / hurts (and their negligible forms) and the alignment bars were tab:green /
    tab:red: one colour to a deuteranope (the decision is written beside each arm too)."""
    import inspect as pyinspect

    from mmdata.ablate.report import COLORS
    from mmdata.train import alignment, matching

    for a, b in (("helps", "hurts"), ("helps (negligible)", "hurts (negligible)")):
        assert np.linalg.norm(_deuteranopia(COLORS[a]) - _deuteranopia(COLORS[b])) > 0.3, (a, b)
    for module in (alignment, matching):
        assert "tab:green" not in pyinspect.getsource(module) and "tab:red" not in pyinspect.getsource(module)


def test_forest_decisions_read_in_grey_and_its_text_is_dark(tmp_path: Path, figures: dict[str, Any]) -> None:
    """QA25 C-2 (a lab handout printed in grey): four decisions printed as one mid grey, drawn with one marker,
    and their labels were written in their light colours at ~2.3:1 against white. Each decision now has its
    own marker shape, and the text beside each arm is dark."""
    from matplotlib.colors import to_rgb

    from mmdata.ablate.report import MARKERS, TEXT_COLOUR
    from tests.ablate.test_report_scale import _ablation, _report

    assert len(set(MARKERS.values())) == len(MARKERS)
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(TEXT_COLOUR))
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b  # WCAG's relative luminance
    assert 1.05 / (lum + 0.05) > 7  # contrast against white: AAA for small text
    ab, rows = _ablation(3, 8, winners=1)
    s = _report(ab, rows, tmp_path)
    ax = figures["forest.png"].axes[0]
    drawn = {tuple(line.get_xydata()[0]): line.get_marker() for line in ax.lines if line.get_marker() not in ("None", "")}
    assert {MARKERS[a["decision"]] for a in s["arms"]} <= set(drawn.values())
    beside = [t for t in ax.texts if any(t.get_text().startswith(a["decision"]) for a in s["arms"])]
    assert beside and all(t.get_color() == TEXT_COLOUR for t in beside)
