"""QA29 stats #2: δ (and α) changed in the recipe after the verdicts were reported into the same folder flipped five
arms to `equivalent` with no record; it is now refused as a change of metric, seeds or looks is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate import run
from mmdata.errors import MMDataError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa29delta") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 4,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cut": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False}}
    return {**cfg, **kw}


def _files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("report.md", "summary.json", "config.resolved.yaml")}


def test_delta_and_alpha_cannot_change_after_the_verdicts(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "a"
    first = run(_cfg(tiny), out, workers=1, progress=False, plots=False)  # default δ: the baseline's seed sd
    default = first["delta"]["value"]
    before = _files(out)
    with pytest.raises(MMDataError, match=r"^delta: .*already looked at its results with delta = the default \(the "
                                          rf"baseline's seed sd, {default:.4g} as reported\) fixed in advance \(fixed "
                                          r"design \(4 seeds\), its verdicts were reported\); changing it to 11 .*not be "
                                          r"confirmatory .*Leave delta out of the recipe .*new --out"):
        run(_cfg(tiny, delta=11.0), out, workers=1, progress=False, plots=False)
    with pytest.raises(MMDataError, match=r"^alpha: .*alpha = 0.05 fixed in advance.*changing it to 0.1 .*Keep alpha: 0.05"):
        run(_cfg(tiny, alpha=0.1), out, workers=1, progress=False, plots=False)
    assert _files(out) == before  # nothing overwritten
    # pinning the very δ the folder reported is no change; the same recipe re-analyses
    s = run(_cfg(tiny, delta=default), out, workers=1, progress=False, plots=False)
    assert s["delta"]["value"] == default and s["runs"]["ok"] == first["runs"]["ok"]
    with pytest.raises(MMDataError, match=rf"^delta: .*with delta = {default:g} fixed in advance.*Keep delta: {default:g}"):
        run(_cfg(tiny, delta=2 * default), out, workers=1, progress=False, plots=False)
    # before its look (an interrupted run) nothing was seen: δ may still change
    run(_cfg(tiny), tmp_path / "b", workers=1, progress=False, plots=False, max_runs=3)
    s = run(_cfg(tiny, delta=11.0), tmp_path / "b", workers=1, progress=False, plots=False)
    assert s["delta"]["value"] == 11.0


def test_an_always_failing_arm_does_not_open_the_folder_to_a_new_plan(tmp_path: Path, tiny: Path) -> None:
    """The QA folder had an arm whose every run failed: its look never counted as done, so δ (and the metric,
    the seeds) could change after the report."""
    from mmdata.ablate.testing import synthetic_train

    def train(data: Any, *, recipe: Any = None, **kw: Any) -> dict[str, Any]:
        if recipe and "vflip" in str(recipe):
            raise RuntimeError("this arm always fails")
        return synthetic_train(data, recipe=recipe, **kw)

    arms = {"cut": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}, "broken": {"seed": 0, "image": [{"op": "vflip", "p": 0.5}]}}
    cfg = _cfg(tiny, design={"mode": "explicit", "baseline": None, "arms": arms})
    s = run(cfg, tmp_path / "a", workers=1, progress=False, plots=False, train_fn=train)
    assert s["runs"]["failed"] == 4 and [a["decision"] for a in s["arms"] if a["name"] == "broken"] == ["failed"]
    with pytest.raises(MMDataError, match=r"^delta: .*its verdicts were reported"):
        run({**cfg, "delta": 11.0}, tmp_path / "a", workers=1, progress=False, plots=False, train_fn=train)
    with pytest.raises(MMDataError, match=r"^metric: .*its verdicts were reported"):
        run({**cfg, "metric": "test.macro_f1"}, tmp_path / "a", workers=1, progress=False, plots=False, train_fn=train)


def test_the_delta_zero_advice_is_one_the_folder_accepts(tmp_path: Path, tiny: Path) -> None:
    """Review of QA29: δ = 0's warning said "set `delta:` in the recipe", which the folder that reported it now
    refuses; the advice names a new --out, and following it there works."""
    from mmdata.ablate.testing import synthetic_train

    def train(data: Any, *, recipe: Any = None, **kw: Any) -> dict[str, Any]:
        m = synthetic_train(data, recipe=recipe, **kw)
        if not recipe or "cutout" not in str(recipe):
            m["test"]["accuracy"] = 0.5  # the baseline the same on every seed: the default δ is 0
        return m

    s = run(_cfg(tiny), tmp_path / "a", workers=1, progress=False, plots=False, train_fn=train)
    assert s["delta"]["value"] == 0, s["delta"]
    assert "set `delta:` in the recipe" in s["delta"]["warning"] and "new `--out`" in s["delta"]["warning"]
    with pytest.raises(MMDataError, match=r"^delta: .*new --out"):
        run(_cfg(tiny, delta=2.0), tmp_path / "a", workers=1, progress=False, plots=False, train_fn=train)
    s = run(_cfg(tiny, delta=2.0), tmp_path / "b", workers=1, progress=False, plots=False, train_fn=train)
    assert s["delta"]["value"] == 2.0 and "warning" not in s["delta"]


def test_the_default_delta_pinned_as_shown_is_no_change(tmp_path: Path, tiny: Path) -> None:
    """Review r2 #6: pinning the default at the value report.md (2 decimals) or the refusal (4 digits) shows was
    refused by a message that itself called the default '4.593'; it is the default, kept in full. Nothing looser."""
    out = tmp_path / "a"
    first = run(_cfg(tiny), out, workers=1, progress=False, plots=False)
    default = first["delta"]["value"]
    report = (out / "report.md").read_text()
    shown = next(t for t in (f"{default:.2f}", f"{default:.3f}") if f"δ = {t} " in report)
    for pin in (float(f"{default:.4g}"), float(shown)):
        said: list[str] = []
        s = run(_cfg(tiny, delta=pin), out, workers=1, progress=False, plots=False, on_warning=said.append)
        assert s["delta"]["value"] == default and s["runs"]["ok"] == first["runs"]["ok"], pin
        assert any(m.startswith(f"delta: {pin:g} (this folder's δ as shown) is {default!r} in full") or
                   m.startswith(f"delta: {pin:g} (the default as reported) is {default!r} in full") for m in said), said
    looser = default * 1.001  # off in the 4th digit: shown nowhere
    assert looser not in (float(f"{default:.4g}"), float(f"{default:g}"), float(shown))
    with pytest.raises(MMDataError, match=r"^delta: .*not be confirmatory"):
        run(_cfg(tiny, delta=looser), out, workers=1, progress=False, plots=False)


def test_the_default_pinned_as_shown_on_the_first_rerun(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "a"
    default = run(_cfg(tiny), out, workers=1, progress=False, plots=False)["delta"]["value"]
    said: list[str] = []
    s = run(_cfg(tiny, delta=float(f"{default:.4g}")), out, workers=1, progress=False, plots=False, on_warning=said.append)
    assert s["delta"]["value"] == default
    assert f"delta: {float(f'{default:.4g}'):g} (the default as reported) is {default!r} in full" in " ".join(said)


def test_a_complete_look_without_a_report_is_not_said_to_be_reported(tmp_path: Path, tiny: Path) -> None:
    """A Ctrl-C between the last run and the report leaves every run's result and no summary.json: a δ change is
    refused (the verdicts are fixed by the runs), but the refusal said "its verdicts were reported"."""
    out = tmp_path / "a"
    run(_cfg(tiny), out, workers=1, progress=False, plots=False)
    for n in ("summary.json", "report.md"):
        (out / n).unlink()
    with pytest.raises(MMDataError, match=r"^delta: .*\(fixed design \(4 seeds\), every run of its plan has a result, so "
                                          r"its verdicts are fixed, though no report was written yet\)") as e:
        run(_cfg(tiny, delta=11.0), out, workers=1, progress=False, plots=False)
    assert "were reported" not in str(e.value)
