"""QA round 25 (D8): an adaptive design with --seeds 10 and 3 arms looked at 5, 6, 7 and 8 seeds, where no
arm can be decided, and its futility rule stopped arms there — the identity (A/A) control included —
with no word before the run. The looks that cannot decide are computed exactly and warned of before any
run (and kept in summary.json and the report)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmdata.ablate import run
from mmdata.ablate.design import AblationWarning
from mmdata.ablate.stats import Looks, crossings, first_deciding_look, min_seeds_for_verdict

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.mark.parametrize("spending", ["hsd", "obf", "linear", "hsd-2"])
@pytest.mark.parametrize("sizes", [(5, 6, 7, 8, 9, 10), (6, 8, 10), (8, 10, 11, 13, 14, 16), (10, 12, 14, 16, 18, 20),
                                   (4, 8, 12), (7,)])
def test_the_first_deciding_look_is_where_one_signed_differences_first_cross(sizes: tuple[int, ...], spending: str) -> None:
    looks = Looks(sizes, spending)
    for arms in (1, 2, 3, 8):
        level = 0.05 / arms
        best = crossings({s: 1.0 + 0.01 * s for s in range(looks.max)}, looks, [level])[0]  # the most extreme data
        want = int(np.argmax(best)) + 1 if best.any() else None
        assert first_deciding_look(looks, level) == want, (sizes, spending, arms)
    if len(sizes) == 1:  # a fixed design: the fewest seeds any verdict needs
        assert (first_deciding_look(Looks((min_seeds_for_verdict(0.05, 3) - 1,)), 0.05 / 3),
                first_deciding_look(Looks((min_seeds_for_verdict(0.05, 3),)), 0.05 / 3)) == (None, 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa25_looks") / "av", limit=4, progress=False)


def _cfg(data: Path, adaptive: object) -> dict:
    return {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 10, "adaptive": adaptive,
            "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]},
                       "arms": {"-cutout": None}},
            "controls": {"identity": True, "label_noise": 0.3}}


def test_looks_that_cannot_decide_are_warned_of_before_the_runs(tmp_path: Path, tiny: Path) -> None:
    said: list[str] = []
    s = run(_cfg(tiny, True), tmp_path / "a", workers=1, progress=False, plots=False, on_warning=said.append, max_runs=0)
    w = [m for m in said if m.startswith("adaptive design:")]
    assert len(w) == 1 and w[0] in s["warnings"]
    assert "looks at 5, 6, 7 and 8 seeds can decide no arm (3 arms at alpha 0.05" in w[0]
    assert "the first look that can is at 9 seeds" in w[0]
    assert "(not the identity and label_noise controls: controls run to that look)" in w[0]
    assert "adaptive: {looks: [9, 10]}" in w[0] and "adaptive: {futility: 0}" in w[0]
    # the two ways out the warning gives are quiet, and the run goes on as designed
    for fix in ({"looks": [9, 10]}, {"futility": 0}):
        said.clear()
        run(_cfg(tiny, fix), tmp_path / str(len(fix) + len(str(fix))), workers=1, progress=False, plots=False,
            on_warning=said.append, max_runs=0)
        assert not [m for m in said if m.startswith("adaptive design:")]
    with pytest.warns(AblationWarning, match=r"adaptive design: its looks at 5, 6, 7 and 8 seeds"):
        s = run(_cfg(tiny, True), tmp_path / "b", workers=1, progress=False, plots=False)
    assert any(m.startswith("adaptive design:") for m in s["warnings"])
    assert "adaptive design: its looks at 5, 6, 7 and 8 seeds" in (tmp_path / "b" / "report.md").read_text()


def test_an_identity_control_stopped_before_a_deciding_look_is_said_untested() -> None:
    """QA25 R2-1: the quick demo headlined "Controls passed" while `identity` was stopped for futility at 6
    seeds, below its first look that can decide (10): it could give no false positive, so it tested nothing."""
    from mmdata.ablate.report import _controls

    ident = {"name": "identity", "decision": "inconclusive", "status": "futile", "n_seeds": 6,
             "primary": {"mean_diff": -0.7, "n_seeds": 6}}
    noise = {"name": "label_noise", "decision": "hurts", "status": "done", "n_seeds": 10,
             "primary": {"mean_diff": -10.1, "n_seeds": 10}}
    out = _controls([ident, noise], deciding=10)
    assert out["verdict"] == "passed" and out["identity"]["tested"] is False
    assert out["headline"].startswith("Controls passed in part: `identity` (A/A) is inconclusive but untested: "
                                      "stopped for futility at 6 seeds, before the first look that can decide (10 seeds)")
    for deciding in (None, 6):  # a fixed design, or stopped at a look that could decide: tested
        out = _controls([ident, noise], deciding=deciding)
        assert out["headline"].startswith("Controls passed: `identity` (A/A) is inconclusive (stopped for futility")
        assert "tested" not in out["identity"]


def test_the_unbounded_paragraph_of_an_adaptive_report_names_its_first_deciding_look(tmp_path: Path, tiny: Path) -> None:
    """QA25 R2-3: the paragraph said "at least 7 for any verdict" (the fixed design's count) where the design's
    first look that can decide is at 9 seeds, as the warning at the top of the same report says."""
    cfg = _cfg(tiny, True)
    cfg["design"]["arms"]["cutout-0.45"] = {"image": [{"op": "cutout", "p": 0.45}]}  # a near-null arm, stopped early
    s = run(cfg, tmp_path / "a", workers=1, progress=False, plots=False, on_warning=lambda m: None)
    assert s["design"]["first_deciding_seeds"] == 9
    report = (tmp_path / "a" / "report.md").read_text()
    assert "Unbounded intervals (-cutout, cutout-0.45)" in report  # the synthetic trainer stops them for futility
    assert "at least 9 for any verdict" in report and "at least 7 for any verdict" not in report
    # the controls run to that look (they were stopped for futility at 5 seeds, untested): tested now
    ident = next(a for a in s["arms"] if a["name"] == "identity")
    assert ident["n_seeds"] >= 9 and "untested" not in report.splitlines()[2]
    assert report.splitlines()[2].startswith("> Controls passed: `identity` (A/A) is")
    assert s["design"]["futility_spares"] == ["identity", "label_noise"]
    assert "(the controls identity, label_noise not before the first look that can decide, 9 seeds)" in report
