"""``mmdata ablate-folds`` / :func:`mmdata.ablate.folds.gather`: one report across the folds of a k-fold
cross-validated ablation, on real ``mmdata ablate`` folders (the synthetic trainer, one fold per test split).

Before (2026-12-04) each fold had its own report and nothing combined them: with 5 seeds per fold the exact
test cannot reach 5% in any fold alone (its smallest p is 1/16), so a true +2-point effect read
``inconclusive`` five times. Pooled over (fold, seed) units it is found; an A/A family is not declared.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmdata.ablate import run
from mmdata.ablate.folds import gather, heterogeneity, pool
from mmdata.ablate.testing import DRAW_SD, TEST_SIZE, synthetic_train
from mmdata.errors import MMDataError

ROOT = Path(__file__).parents[2]
CUT = {"image": [{"op": "cutout", "p": 0.5}]}  # planted: +2 points (mmdata.ablate.testing.EFFECTS)
FLIP = {"image": [{"op": "hflip", "p": 0.5}]}  # no planted effect: its draws only
K = 5


def fold_train(data: Any, *, seed: int, test_split: str = "0", **kw: Any) -> dict[str, Any]:
    """The synthetic trainer, with other runs on each test fold (as a real trainer scores another split)."""
    return synthetic_train(data, seed=seed + 1000 * int(test_split), **kw)


def _cfg(data: Path, **kw: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "seeds": 5, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT, "flip": FLIP}}}
    cfg.update(kw)
    return cfg


def _quiet(msg: str) -> None:
    """The design's warnings (5 seeds reach no verdict in a fold alone): that is the point here."""


def _fold(cfg: dict[str, Any], out: Path, k: int, **kw: Any) -> dict[str, Any]:
    return run(cfg, out, train_fn=fold_train, workers=1, progress=False, plots=False, test_split=str(k),
               on_warning=_quiet, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("folds_data") / "av", limit=4, progress=False)


@pytest.fixture(scope="module")
def folds(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[dict[str, Any]]]:
    """Five real fold folders of one ablation: test split k, 5 seeds each."""
    root = tmp_path_factory.mktemp("folds")
    outs = [root / f"fold{k}" for k in range(1, K + 1)]
    return outs, [_fold(_cfg(data), o, k) for k, o in enumerate(outs, start=1)]


def _arm(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in s["arms"] if a["name"] == name)


def test_a_planted_effect_is_found_pooled_and_in_no_fold_alone(folds: tuple[list[Path], list[dict[str, Any]]],
                                                                tmp_path: Path) -> None:
    outs, alone = folds
    assert [_arm(s, "cutout")["decision"] for s in alone] == ["inconclusive"] * K
    s = gather(outs, tmp_path / "pooled")
    cut, flip = _arm(s, "cutout"), _arm(s, "flip")
    assert cut["decision"] == "helps" and cut["primary"]["ci"][0] > 0, cut["primary"]
    assert cut["n_seeds"] == cut["primary"]["units"] == 5 * K and cut["primary"]["folds_used"] == [str(k) for k in range(1, K + 1)]
    assert flip["decision"].split(" ")[0] not in ("helps", "hurts") and flip["primary"]["ci"][0] <= 0 <= flip["primary"]["ci"][1]
    per = {p["fold"]: p for p in cut["primary"]["per_fold"]}
    for k, fold in enumerate(alone, start=1):  # the per-fold Δ is that fold's own report's mean Δ
        assert per[str(k)]["mean_diff"] == pytest.approx(_arm(fold, "cutout")["primary"]["mean_diff"])
    assert cut["primary"]["mean_diff"] == pytest.approx(sum(p["mean_diff"] for p in per.values()) / K)
    assert s["primary_metric"]["name"] == "test.accuracy" and s["schema"] == "mmdata.ablate.folds/1"
    assert [f["test_split"] for f in s["folds"]] == [str(k) for k in range(1, K + 1)]
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "## Per fold" in text and "| arm | fold 1 | fold 2 | fold 3 | fold 4 | fold 5 |" in text
    assert "Exploratory: other metrics (unadjusted, no verdicts)" in text and "the tables above have the same numbers](forest.png)" in text and "![Forest plot of " in text
    assert (tmp_path / "pooled" / "forest.png").stat().st_size > 10_000
    exp = cut["exploratory"]["test_nll"]
    assert "decision" not in exp and exp["units"] == 5 * K and exp["ci95_t_unadjusted"][0] < exp["mean_diff"]
    json.loads((tmp_path / "pooled" / "summary.json").read_text(), parse_constant=pytest.fail)  # no NaN / Infinity


def test_an_aa_family_gets_no_confirmatory_verdict(data: Path, tmp_path: Path) -> None:
    """A baseline that draws, its identity control (fresh draws) and an arm of an op without effect: all null."""
    cfg = _cfg(data, seeds=6, controls={"identity": True},
               design={"mode": "explicit", "baseline": {"seed": 0, **FLIP}, "arms": {"vflip": {"seed": 0, "image": [
                   *FLIP["image"], {"op": "vflip", "p": 0.5}]}}})
    outs = [tmp_path / f"aa{k}" for k in range(1, K + 1)]
    for k, o in enumerate(outs, start=1):
        _fold(cfg, o, k)
    s = gather(outs, tmp_path / "pooled")
    assert [a["name"] for a in s["arms"]] == ["vflip", "identity"]
    assert not [a["decision"] for a in s["arms"] if a["decision"].split(" ")[0] in ("helps", "hurts")], s["arms"]
    assert s["controls"]["verdict"] == "passed" and "`identity` (A/A)" in s["controls"]["headline"]
    assert all(a["primary"]["units"] == 6 * K for a in s["arms"])


def test_an_identity_control_that_checks_nothing_is_not_a_passed_control(data: Path, tmp_path: Path) -> None:
    """The baseline draws nothing, so `identity` trains exactly like it: not applicable, as in a fold's own report."""
    outs = [tmp_path / f"id{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _fold(_cfg(data, controls={"identity": True}), o, k)
    c = gather(outs, tmp_path / "pooled")["controls"]
    assert c["identity"]["applicable"] is False and "not applicable" in c["headline"] and c["verdict"] != "passed"


def test_folders_that_do_not_belong_together_are_refused(data: Path, folds: tuple[list[Path], list[dict[str, Any]]],
                                                         tmp_path: Path) -> None:
    outs, _ = folds
    other = {
        "trainer": (_cfg(data, trainer={"sleep": 0.0}), 2, "trainer.sleep differs from"),
        "metric": (_cfg(data, metric="test.nll"), 2, "metric.higher_is_better differs from"),
        "arms": (_cfg(data, design={"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}}), 2, "arms (names: baseline, cutout, flip vs baseline, cutout) differs from"),
        "recipe": (_cfg(data, design={"mode": "explicit", "baseline": None, "arms": {"cutout": CUT, "flip": {
            "image": [{"op": "hflip", "p": 0.9}]}}}), 2, "arms[flip].recipe differs from"),
        "alpha": (_cfg(data, alpha=0.1), 2, "alpha differs from"),
        "split": (_cfg(data), 1, "trainer.test_split '1' is also"),
    }
    pooled = tmp_path / "pooled"
    for name, (cfg, k, said) in other.items():
        bad = tmp_path / name
        _fold(cfg, bad, k)
        with pytest.raises(MMDataError) as e:
            gather([outs[0], bad], pooled)
        msg = str(e.value)
        assert said in msg and str(bad) in msg and "\n" not in msg, msg
    seeds_differ = tmp_path / "seeds"
    _fold(_cfg(data, seeds=6), seeds_differ, 2)  # seeds may differ: folds weigh the same whatever their seeds
    assert gather([outs[0], seeds_differ], pooled)["folds"][1]["seeds_used"] == 6
    shutil.rmtree(pooled)
    for folders, said in [([outs[0]], "give at least 2 fold folders (got 1)"),
                          ([outs[0], outs[0]], "given twice"),
                          ([outs[0], data], f"{data}: not an mmdata ablation folder (no config.resolved.yaml or runs.parquet)"),
                          ([outs[0], tmp_path / "nope"], "nope: not found"),
                          ([outs[0], outs[1]], None)]:
        if said is None:  # --out may not be a fold folder
            with pytest.raises(MMDataError, match="is the fold folder"):
                gather(folders, outs[1])
            continue
        with pytest.raises(MMDataError, match=said.replace("(", r"\(").replace(")", r"\)")):
            gather(folders, pooled)
        assert not pooled.exists()  # refused before anything is written


def test_untrusted_config_is_read_by_the_safe_reader(folds: tuple[list[Path], list[dict[str, Any]]], tmp_path: Path) -> None:
    outs, _ = folds
    bad = tmp_path / "bomb"
    shutil.copytree(outs[1], bad)
    (bad / "config.resolved.yaml").write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefg", "bcdefgh")))
    with pytest.raises(MMDataError, match="bomb: config.resolved.yaml is not readable"):
        gather([outs[0], bad], tmp_path / "pooled")


def test_same_folders_give_the_same_bytes(folds: tuple[list[Path], list[dict[str, Any]]], tmp_path: Path) -> None:
    import matplotlib

    outs, _ = folds  # 25 units: the Monte-Carlo reference set (fixed patterns), deterministic too
    gather(outs, tmp_path / "a")
    # the caller's matplotlib settings between two gathers (a notebook's inline backend sets figure.dpi on pyplot's
    # first import; a style sets the font size): before, either moved forest.png's layout and changed its bytes
    with matplotlib.rc_context({"figure.dpi": 72, "font.size": 14, "lines.linewidth": 3}):
        gather(outs, tmp_path / "b")
    for name in ("summary.json", "report.md", "forest.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    first = (tmp_path / "a" / "summary.json").read_bytes()
    gather(outs, tmp_path / "a")  # a previous ablate-folds output is rewritten in place
    assert (tmp_path / "a" / "summary.json").read_bytes() == first


def test_failed_runs_leave_a_fold_out_of_that_arm_and_exit_1(data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    flag = tmp_path / "failing"
    # fold 2's seeds 0-3 (the synthetic trainer's 2000-2003: fold_train) fail for the cutout arm
    cfg = _cfg(data, trainer={"fail": {"seeds": [2000, 2001, 2002, 2003], "arm_has": "image.cutout", "while_exists": str(flag)}})
    outs = [tmp_path / f"f{k}" for k in (1, 2, 3)]
    for k, o in enumerate(outs, start=1):
        if k == 2:
            flag.touch()
        _fold(cfg, o, k)
        flag.unlink(missing_ok=True)
    s = gather(outs, tmp_path / "pooled")
    cut = _arm(s, "cutout")
    assert cut["primary"]["folds_left_out"] == ["2"] and cut["primary"]["units"] == 10
    assert [(f["fold"], f["seed"]) for f in s["failures"]] == [("2", 0), ("2", 1), ("2", 2), ("2", 3)]
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "Folds left out of an arm" in text and "`cutout`: 2" in text and "## Failures" in text
    assert _mmdata(capsys, "ablate-folds", *map(str, outs), "--out", str(tmp_path / "cli"))[0] == 1


def test_an_adaptive_fold_is_read_on_its_first_look(data: Path, folds: tuple[list[Path], list[dict[str, Any]]],
                                                   tmp_path: Path) -> None:
    outs, _ = folds
    ad = tmp_path / "adaptive"
    _fold(_cfg(data, seeds=10, adaptive=True), ad, 3)  # looks 5, 6, ..., 10: every arm ran seeds 0-4
    s = gather([outs[0], outs[1], ad], tmp_path / "pooled")
    assert s["folds"][2]["design"] == "adaptive" and s["folds"][2]["seeds_used"] == 5
    assert all(p["n_seeds"] == 5 for a in s["arms"] for p in a["primary"]["per_fold"])
    assert any("first planned look only" in w and "adaptive: 5 of up to 10" in w for w in s["warnings"])


def _mmdata(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``mmdata ARGS``: (exit status, stdout, stderr), through the command's own error handling (exit 2)."""
    from mmdata.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_cli_exit_codes_and_json(folds: tuple[list[Path], list[dict[str, Any]]], data: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    outs, _ = folds
    out = tmp_path / "pooled"
    code, stdout, _ = _mmdata(capsys, "ablate-folds", *map(str, outs), "--out", str(out), "--json")
    doc = json.loads(stdout)  # the summary, plus what every --json result says (QA26 F12)
    assert code == 0 and doc.pop("ok") is True and doc.pop("exit_code") == 0
    assert doc == json.loads((out / "summary.json").read_text())
    code, stdout, _ = _mmdata(capsys, "ablate-folds", *map(str, outs[:2]), "--out", str(tmp_path / "two"))
    assert code == 0 and "cutout" in stdout and "report.md" in stdout, stdout
    code, stdout, err = _mmdata(capsys, "ablate-folds", str(outs[0]), str(outs[0]), "--out", str(tmp_path / "x"), "--json")
    assert code == 2 and json.loads(stdout)["error"].endswith(f"given twice (also as {outs[0]})") and "error:" in err
    code, _, err = _mmdata(capsys, "ablate-folds", str(outs[0]), str(data), "--out", str(tmp_path / "x"))
    assert code == 2 and "not an mmdata ablation folder" in err and not (tmp_path / "x").exists()


def test_pool_weighs_folds_equally_and_its_intervals_agree_with_the_decisions() -> None:
    # a fold of 12 seeds at +1 does not outvote a fold of 2 at -1: the estimate is the mean of the fold means
    r = pool({"a": {"big": {s: 1.0 for s in range(12)}, "small": {0: -1.0, 1: -1.0}}}, delta=0.5)["a"]
    assert r["mean_diff"] == 0.0 and r["units"] == 14 and r["decision"] != "helps"
    # 3 folds x 3 seeds, all positive: the exact test over 2^9 sign patterns, p = 2/512
    d = {"a": {str(k): {s: 1.0 + 0.1 * s + k for s in range(3)} for k in range(3)}, "b": {"1": {0: 0.2, 1: -0.1}}}
    r = pool(d, delta=0.5)
    assert r["a"]["p_value"] == 2 / 512 and r["a"]["decision"] == "helps" and r["a"]["ci"][0] > 0
    assert r["b"]["decision"] in ("inconclusive", "equivalent") and r["b"]["ci"][0] <= 0 <= r["b"]["ci"][1]
    assert pool({"c": {"1": {0: 1.0}, "2": {}}})["c"]["decision"] == "pending"  # fewer than 2 paired seeds anywhere
    assert pool(d, delta=0.5, pending_arms=["a"])["a"]["decision"] == "pending"  # a fold still has runs to do
    # past 1,000 units the random reference set is drawn in blocks, not held at once; still (b+1)/(N+1), still fixed
    big = {"a": {str(k): {s: 0.1 + (s % 7 - 3) for s in range(501)} for k in range(2)}}
    p1, p2 = pool(big, intervals=False)["a"]["p_value"], pool(big, intervals=False)["a"]["p_value"]
    assert p1 == p2 and 1 / 16384 <= p1 <= 1 and (p1 * 16384) == round(p1 * 16384)


def test_the_simulation_script_runs() -> None:
    """A smoke test of benchmarks/ablate_folds_sim.py (its figures: docs/ablation.md, run by hand)."""
    spec = importlib.util.spec_from_file_location("ablate_folds_sim", ROOT / "benchmarks" / "ablate_folds_sim.py")
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    out = sim.main(["--aa", "3", "--power", "2", "--effects", "3", "--check", "40"])
    assert set(out) == {"model_sd_ratio", "aa_fixed", "aa_mixed", "power_fixed_3", "power_mixed_3"}
    assert all(0.6 < r < 1.6 for r in out["model_sd_ratio"].values()), out["model_sd_ratio"]  # the model is the trainer's
    assert all(0 <= v <= 1 for k, v in out.items() if k.startswith("aa_"))


def _paired_accuracy(rng: np.random.Generator, effect: float, n: int, sd: float = 1.0) -> list[float]:
    """``n`` paired differences arm - baseline in points, as the synthetic trainer's runs give them: the seed
    effect cancels, each side's augmentation draws (sd ``DRAW_SD`` x ``sd``) do not, accuracy in whole test examples."""
    base = np.round((0.83 + rng.normal(0, DRAW_SD * sd, n)) * TEST_SIZE) / TEST_SIZE
    arm = np.round((0.83 + effect / 100 + rng.normal(0, DRAW_SD * sd, n)) * TEST_SIZE) / TEST_SIZE
    return list(100 * (arm - base))


def _share_flagged(effects: list[float], seeds: list[int], arms: int = 400) -> float:
    rng = np.random.default_rng(20261204)
    ps = [heterogeneity({str(k): _paired_accuracy(rng, e, n) for k, (e, n) in enumerate(zip(effects, seeds))},
                        permutations=999)["p_value"] for _ in range(arms)]
    return float(np.mean(np.array(ps) < 0.05))


def test_the_heterogeneity_test_holds_its_level_and_finds_folds_that_differ() -> None:
    """Simulated arms with the trainer's noise (paired sd ~2.7 points, rounded to whole test examples).

    Same effect in every fold: flagged at ~5% (2,000 arms: 4.0% for 5 folds x 5 seeds, 4.5% for 2-10 seeds, 5.1%
    for 10 x 2), where Cochran's Q with per-fold standard errors on a chi-square flags 19% (34% with 3 seeds).
    Folds that differ by 1.5 sd either way: flagged ~98%."""
    for seeds in ([5] * 5, [2, 3, 5, 8, 10], [2] * 10):
        share = _share_flagged([1.0] * len(seeds), seeds)  # 400 arms: binomial sd 1.1 points at 5%
        assert 0.015 <= share <= 0.09, (seeds, share)
    assert _share_flagged([-4.0, -2.0, 0.0, 2.0, 4.0], [5] * 5) >= 0.85
    assert _share_flagged([0.0, 0.0, 0.0, 0.0, 6.0], [5] * 5) >= 0.75


def test_heterogeneity_edge_cases() -> None:
    assert heterogeneity({"1": [1.0, 2.0, 3.0]}) is None  # one fold: nothing to compare
    same = heterogeneity({"1": [1.0, 1.0], "2": [1.0, 1.0]})
    assert same["p_value"] == 1.0 and same["statistic"] == 0.0 and same["i2"] == 0.0
    exact = heterogeneity({"1": [1.0, 1.0, 1.0], "2": [2.0, 2.0, 2.0], "3": [3.0, 3.0, 3.0]})  # no spread in a fold
    assert exact["statistic"] == float("inf") and exact["i2"] == 1.0 and exact["p_value"] < 0.01
    d = {str(k): [0.1 * k + s for s in (0.0, 0.5, -0.3)] for k in range(4)}
    assert heterogeneity(d) == heterogeneity(d)  # fixed permutations: the same data, the same p
    many = {str(k): [float(s % 5) + (k == 0) for s in range(60)] for k in range(4)}  # 240 units: drawn in blocks
    assert heterogeneity(many) == heterogeneity(many) and 1 / 16384 <= heterogeneity(many)["p_value"] < 0.05


def fold_effect_train(data: Any, *, seed: int, test_split: str = "0", recipe: Any = None, **kw: Any) -> dict[str, Any]:
    """:func:`fold_train`, with cutout's planted effect 6 points larger on test splits 1 and 2 than on the others."""
    out = fold_train(data, seed=seed, test_split=test_split, recipe=recipe, **kw)
    if test_split in ("1", "2") and any(s.get("op") == "cutout" for s in (recipe or {}).get("image", [])):
        out["test"] = {**out["test"], "accuracy": out["test"]["accuracy"] + 0.06}
    return out


def test_folds_that_differ_are_said_to_differ(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = [tmp_path / f"het{k}" for k in range(1, 5)]
    for k, o in enumerate(outs, start=1):
        run(_cfg(data, seeds=5), o, train_fn=fold_effect_train, workers=1, progress=False, plots=False,
            test_split=str(k), on_warning=_quiet)
    s = gather(outs, tmp_path / "pooled")
    cut, flip = _arm(s, "cutout")["primary"], _arm(s, "flip")["primary"]
    h = cut["heterogeneity"]
    assert set(h) == {"statistic", "df", "p_value", "i2", "method"} and h["df"] == 3
    assert h["p_value"] < 0.05 and h["i2"] > 0.5 and not cut["sign_disagreement"], h  # same sign, other sizes
    assert flip["heterogeneity"]["p_value"] > 0.05  # no fold effect planted (fixed seeds: this draw)
    assert cut["decision"] == "helps"  # exploratory: the verdict and the Holm family are as before
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert "| differ across folds? |" in text and "**folds differ**" in text and "fold-by-arm interaction" in text
    row = next(line for line in text.splitlines() if line.startswith("| cutout |") and "I²" in line)  # per fold
    assert f"p {h['p_value']:.3f}" in row and "**folds differ**" in row, row
    assert "exact when every fold has the same seed-to-seed spread" in s["test"] and "Cochran" in s["heterogeneity_method"]
    code, stdout, _ = _mmdata(capsys, "ablate-folds", *map(str, outs), "--out", str(tmp_path / "cli"))  # the terminal
    row = " ".join(line for line in stdout.splitlines() if "cutout" in line or "differ" in line)
    assert code == 0 and f"folds differ, p {h['p_value']:.3f}" in row, stdout


def test_the_forest_plot_draws_at_most_figure_arms_and_says_how_many_it_left_out(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from mmdata.ablate.report import FIGURE_ARMS

    said: list[tuple[str, list[str], int]] = []
    save = Figure.savefig

    def spy(fig: Figure, *a: Any, **kw: Any) -> None:
        ax = fig.axes[0]
        said.append((ax.get_title(), [t.get_text() for t in fig.texts], len(ax.get_yticks())))
        save(fig, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", spy)
    arms = {f"cutout{i:02d}": {"image": [{"op": "cutout", "p": round(0.1 + 0.02 * i, 2)}]} for i in range(20)}
    arms.update({f"flip{i:02d}": {"image": [{"op": "hflip", "p": round(0.1 + 0.02 * i, 2)}]} for i in range(25)})
    outs = [tmp_path / f"wide{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        _fold(_cfg(data, seeds=3, design={"mode": "explicit", "baseline": None, "arms": arms}), o, k)
    s = gather(outs, tmp_path / "pooled")
    assert len(s["arms"]) == 45 and all(a["primary"]["heterogeneity"] for a in s["arms"])  # every arm in summary.json
    title, notes, rows = said[-1]
    assert rows == FIGURE_ARMS and f"({FIGURE_ARMS} of 45 arms drawn: see below)" in title, title
    assert any(f"Drawn: {FIGURE_ARMS} of the 45 arms" in t and "Not drawn: 5 arms" in t for t in notes), notes
    text = (tmp_path / "pooled" / "report.md").read_text()
    assert f"**Figure:** Drawn: {FIGURE_ARMS} of the 45 arms" in text and "every arm is in the tables above" in text
    assert all(f"| {n} |" in text for n in arms)  # the tables keep every arm
    said.clear()
    gather(outs[:1] + [outs[1]], tmp_path / "again")
    assert said and said[-1][2] == FIGURE_ARMS


def test_the_report_across_folds_is_not_written_inside_a_dataset_folder(data: Path, tmp_path: Path) -> None:
    """QA: ``mmdata ablate-folds ... --out DS/pooled`` wrote report.md, summary.json and forest.png among a
    dataset's files (``train`` and ``ablate`` refuse such an out)."""
    outs = [tmp_path / f"f{k}" for k in range(1, 3)]
    for k, o in enumerate(outs, start=1):
        run(_cfg(data, seeds=2), o, train_fn=fold_train, workers=1, progress=False, plots=False, test_split=str(k),
            on_warning=_quiet)
    with pytest.raises(MMDataError, match=rf"--out {data}/pooled: inside the dataset folder {data}; give a folder "
                                          rf"outside it, e\.g\. {data.parent}/runs/{data.name}-folds"):
        gather(outs, data / "pooled")
    assert not (data / "pooled").exists()


def test_folds_within_delta_of_zero_are_not_flagged_as_pointing_different_ways() -> None:
    """QA: an ``equivalent`` arm whose fold means (-0.39, -0.33, +0.72, +0.17) all lay within ±δ (1.18) was
    warned about as "folds disagree in sign" — noise around 0, which the heterogeneity test did not flag
    either (p 0.75). The flag needs a fold past ±δ."""
    within = {"a": {"1": {0: -0.3, 1: -0.5}, "2": {0: 0.7, 1: 0.75}, "3": {0: 0.1, 1: 0.2}}}
    beyond = {"a": {"1": {0: -2.0, 1: -2.4}, "2": {0: 3.0, 1: 2.6}, "3": {0: 0.1, 1: 0.2}}}
    assert not pool(within, delta=1.18)["a"]["sign_disagreement"]
    assert pool(beyond, delta=1.18)["a"]["sign_disagreement"]


def test_the_pooled_forest_reads_in_grey_and_says_which_side_is_better(
        folds: tuple[list[Path], list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA26 (a known limit of QA25 C-2): ablate-folds' forest.png drew every decision as one dot in its light colour
    and wrote the text beside each arm in that colour; report.py's forest has a shape per decision, dark text and
    "← baseline better / arm better →" above the axes. The pooled forest now does the same."""
    from matplotlib.figure import Figure

    from mmdata.ablate.report import MARKERS, TEXT_COLOUR

    drawn: list[Figure] = []
    save = Figure.savefig

    def spy(fig: Figure, *a: Any, **kw: Any) -> None:
        drawn.append(fig)
        save(fig, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", spy)
    s = gather(folds[0], tmp_path / "pooled")
    ax = drawn[-1].axes[0]
    shapes = {line.get_marker() for line in ax.lines}
    assert {MARKERS[a["decision"]] for a in s["arms"]} <= shapes
    beside = [t for t in ax.texts if any(t.get_text().startswith(a["decision"]) for a in s["arms"])]
    assert len(beside) == len(s["arms"]) and all(t.get_color() == TEXT_COLOUR for t in beside)
    cue = " ".join(t.get_text() for t in ax.texts)
    assert "← baseline better" in cue and "arm better →" in cue
