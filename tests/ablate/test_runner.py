"""Runner: designs, artifacts, adaptive seeds and resume mid-sequence, failures, NaN metrics, pending
verdicts (the real trainer's controls are checked by tests/test_demo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mmdata.ablate import load_ablation, run
from mmdata.ablate.design import design_warnings
from mmdata.ablate.report import interval_text
from mmdata.cli.main import app
from mmdata.errors import RecipeError

ROOT = Path(__file__).parents[2]
SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw) -> dict:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 10,
           "design": {"mode": "add_one", "recipe": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}],
                                                    "audio": [{"op": "noise", "p": 0.5}], "text": [{"op": "token_mask", "p": 0.5}]}},
           "controls": {"identity": True, "label_noise": 0.3}}
    cfg.update(kw)
    return cfg


def test_designs_and_errors() -> None:
    loo = load_ablation(ROOT / "recipes" / "ablations" / "avdigits_loo.yaml")
    assert [a.name for a in loo.arms][:2] == ["baseline (full recipe)", "-image.random_crop"]
    assert loo.arms[-1].name == "label_noise" and loo.arms[-1].label_noise == 0.3
    sweep = load_ablation(ROOT / "recipes" / "ablations" / "cutout_sweep.yaml")
    assert len(sweep.arms) == 4 and sweep.arms[1].recipe["image"][0]["size"] == [0.1, 0.2]
    for shipped in (sweep, load_ablation(ROOT / "examples" / "custom_ablation.yaml", trust_code=True)):  # no control that checks nothing
        assert shipped.identity_note is None and "identity" not in [a.name for a in shipped.arms]
    assert not design_warnings(sweep)
    twice = load_ablation({"design": {"mode": "leave_one_out", "recipe": {"image": [{"op": "cutout"}, {"op": "cutout"}]}}})
    assert [a.name for a in twice.arms] == ["baseline (full recipe)", "-image.cutout", "-image.cutout#2", "identity"]
    ad = load_ablation({"seeds": 20, "adaptive": True, "metric": "test.nll", "delta": 0.02,
                        "design": {"mode": "explicit", "arms": {"a": None}}})
    assert ad.design().looks.sizes == (10, 12, 14, 16, 18, 20) and not ad.metric.higher_is_better and ad.delta == 0.02
    lin = load_ablation({"seeds": 12, "adaptive": {"spending": "linear", "looks": [6, 9, 12]}, "design": {"mode": "explicit", "arms": {"a": None}}})
    assert lin.design().looks.spending == "linear" and lin.design().to_dict()["spending"].startswith("linear")
    assert load_ablation({"trainer": {"entry": SYN, "anything": 1}, "design": {"mode": "explicit", "arms": {"a": None}}}).entry == SYN
    # the input options reach the bundled trainer (QA27 C3: one input size across arms that crop to other sizes)
    sized = load_ablation({"trainer": {"image_size": 12, "max_tokens": 16}, "design": {"mode": "explicit", "arms": {"a": None}}})
    assert sized.trainer["image_size"] == 12 and sized.trainer["max_tokens"] == 16
    for bad, msg in [({"design": {"mode": "random"}}, "design.mode: 'random' is not allowed"),
                     ({"trainer": {"lr_schedule": 1}}, r"trainer: unknown key\(s\) \['lr_schedule'\]"),
                     ({"trainer": {"image_size": -3}}, r"trainer.image_size"),
                     ({"trainer": {"entry": "no_colon"}}, "trainer.entry: expected 'package.module:function'"),
                     ({"trainer": {"seed": 3}}, "trainer.seed: set by the ablation runner"),
                     ({"adaptive": {"looks": [5, 8]}, "seeds": 10}, r"adaptive.looks: the last look \(8\) must equal seeds"),
                     ({"adaptive": {"speed": 1}}, r"adaptive: unknown key\(s\) \['speed'\]"),
                     ({"adaptive": {"spending": "pocock"}}, r"adaptive.spending: 'pocock' is not allowed; choose one of \['hsd', 'hsd-2', 'linear', 'obf'\]"),
                     ({"metric": "val.accuracy"}, "the primary metric must be a test metric"),
                     ({"delta": -1}, "delta: expected a positive number"),
                     ({"seeds": 1}, "seeds: need an integer of 2 to 1000")]:
        with pytest.raises(RecipeError, match=msg):
            load_ablation({"design": {"mode": "explicit", "arms": {"a": None}}, **bad})


def test_fixed_run_writes_artifacts_and_finds_planted_effects(tmp_path: Path, tiny: Path) -> None:
    s = run(_cfg(tiny, seeds=12), tmp_path, workers=1, progress=False)  # plots on: the PNGs are checked
    arms = {a["name"]: a for a in s["arms"]}
    assert arms["+image.cutout"]["decision"] == "helps" and arms["label_noise"]["decision"] == "hurts"
    # no-augmentation baseline: identity is the baseline itself, known vacuous, outside the Holm family (QA round 34)
    assert arms["identity"]["decision"] == "not applicable"
    assert arms["+text.token_mask"]["decision"] in ("equivalent", "inconclusive")
    assert s["controls"]["verdict"] == "passed" and s["design"]["adaptive"] is False and s["runs"]["ok"] == 72
    e = arms["+image.cutout"]["primary"]
    assert {"mean_diff", "ci", "ci_level", "d_z", "p_superior", "p_superior_ci", "mde", "p_value", "holm_divisor"} <= set(e)
    assert e["ci"][0] > 0 and e["ci_level"] == pytest.approx(1 - 0.05 / e["holm_divisor"])
    assert set(arms["+image.cutout"]["exploratory"]) >= {"test_macro_f1", "test_nll", "robust_image_auc"}
    assert all("decision" not in v for v in arms["+image.cutout"]["exploratory"].values())  # no verdicts on secondary metrics
    rows = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    assert len(rows) == 72 and {"status", "config_hash", "data_fingerprint", "wall_s", "test_accuracy"} <= set(rows[0])
    for f in ("summary.json", "config.resolved.yaml", "env.json", "report.md", "forest.png", "paired.png", "robustness.png"):
        assert (tmp_path / f).is_file(), f
    report = (tmp_path / "report.md").read_text()
    assert "Controls passed" in report.splitlines()[2] and "Exploratory" in report and "no verdicts" in report
    # one interval per arm, the decision's: it excludes 0 exactly when the arm helps/hurts, and the
    # report prints that interval (no bootstrap CI, no P(Δ>0) beside it)
    for a in s["arms"]:
        lo, hi = a["primary"]["ci"]
        excludes = (lo is not None and lo > 0) or (hi is not None and hi < 0)
        assert excludes == (a["decision"].split(" ")[0] in ("helps", "hurts")), a
        row = next(line for line in report.splitlines() if line.startswith(f"| {a['name']} |"))
        assert f"| {interval_text([lo, hi])} (" in row
    assert "bootstrap" not in report.lower() and "P(Δ>0)" not in report
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["torch"] and {"pyarrow", "pillow", "soundfile", "albumentations"} <= set(env["libraries"])
    # the resolved config re-runs the same ablation: every run is found done
    again = run(tmp_path / "config.resolved.yaml", tmp_path, workers=1, progress=False, plots=False)
    assert again["runs"]["ok"] == 72 and pq.read_table(tmp_path / "runs.parquet").num_rows == 72


def test_a_recipe_that_is_not_utf8_yaml_is_a_clear_error(tmp_path: Path) -> None:
    for name, raw, says in (("latin1.yaml", "seeds: 3  # caf\xe9".encode("latin-1"), "not UTF-8"),
                            ("bad.yaml", b"seeds: [3\n", r"invalid YAML \(line 2")):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(RecipeError, match=f"ablation recipe .*{name}: {says}"):
            load_ablation(tmp_path / name)
    # run() reads and checks the recipe before it creates --out: a bad recipe leaves no empty folder behind
    with pytest.raises(RecipeError, match=r"invalid YAML \(line 2"):
        run(tmp_path / "bad.yaml", tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_an_interval_that_excludes_zero_never_prints_as_zero() -> None:
    # the demo once printed "[+0.00, +4.10] ... helps" for a lower bound of +0.00036
    assert interval_text([0.00036, 4.0972]) == "[+0.00036, +4.10]"
    assert interval_text([-12.2217, -0.0049]) == "[-12.22, -0.0049]"
    assert interval_text([None, 1.0]) == "[-∞, +1.00]" and interval_text([0.0, 0.5]) == "[+0.00, +0.50]"
    for v in (1e-9, 0.004999, 0.005, 0.3):
        for sign in (1, -1):
            lo = interval_text([sign * v, sign * 2 * v]).strip("[]").split(", ")[0]
            assert float(lo) != 0 and (float(lo) > 0) == (sign > 0), (v, sign, lo)


def test_adaptive_saves_runs_and_resumes_mid_sequence(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=20, adaptive=True)
    whole = run(cfg, tmp_path / "whole", workers=1, progress=False, plots=False)
    assert whole["design"]["adaptive"] and whole["runs"]["ok"] < 6 * 20
    assert {a["name"]: a["decision"] for a in whole["arms"]}["label_noise"] == "hurts"
    assert any(a["status"] == "futile" for a in whole["arms"]) or any(a["n_seeds"] < 20 for a in whole["arms"])
    # interrupted after 17 and after 45 runs (mid-look), resumed: the same decisions, the same runs
    part = run(cfg, tmp_path / "parts", workers=1, progress=False, max_runs=17, plots=False)
    assert not part["design"]["complete"] and all(a["decision"] == "pending" for a in part["arms"])
    assert "Incomplete" in (tmp_path / "parts" / "report.md").read_text()
    run(cfg, tmp_path / "parts", workers=1, progress=False, max_runs=28, plots=False)
    done = run(cfg, tmp_path / "parts", workers=1, progress=False, plots=False)
    key = lambda s: [(a["name"], a["decision"], a["n_seeds"], a["status"]) for a in s["arms"]]  # noqa: E731
    assert key(done) == key(whole) and done["runs"]["ok"] == whole["runs"]["ok"]


def test_failures_are_recorded_reported_and_retried(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=6)
    cfg["trainer"] = {"entry": SYN, "fail": {"seeds": [2, 4], "arm_has": "image.cutout"}, "nan_seeds": [5]}
    res = CliRunner().invoke(app, ["ablate", _write(tmp_path, cfg), "--out", str(tmp_path / "o"), "-j", "1"])
    assert res.exit_code == 1, res.output
    assert "failed" in res.output and "synthetic failure on seed 2" in res.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    failed = {(f["arm"], f["seed"]) for f in s["failures"]}
    # seeds 2 and 4 of the arm with cutout raised; seed 5 returned NaN accuracy on every configuration
    assert {("+image.cutout", 2), ("+image.cutout", 4)} <= failed and ("baseline (no augmentation)", 5) in failed
    assert all("NaN" in f["error"] or "nan" in f["error"] for f in s["failures"] if f["seed"] == 5)
    assert all(f["traceback"] for f in s["failures"] if f["seed"] != 5)
    arms = {a["name"]: a for a in s["arms"]}
    assert arms["+image.cutout"]["n_seeds"] == 3 and arms["+audio.noise"]["n_seeds"] == 5  # the others finished
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert {r["status"] for r in rows} == {"ok", "failed"} and len(rows) == 6 * 6
    report = (tmp_path / "o" / "report.md").read_text()
    assert "## Failures" in report and "run(s) failed" in report
    # 3-5 seeds at the Holm levels: no shift can be rejected, and the report says why the intervals are unbounded
    assert "Unbounded intervals (" in report and "no verdict is possible" in report


def test_rerun_retries_failed_runs(tmp_path: Path, tiny: Path) -> None:
    flag = tmp_path / "broken"
    flag.write_text("1")
    cfg = _cfg(tiny, seeds=4)
    cfg["trainer"] = {"entry": SYN, "fail": {"seeds": [1, 3], "arm_has": "audio.noise", "while_exists": str(flag)}}
    s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    assert len(s["failures"]) == 2 and s["runs"]["ok"] == 22
    flag.unlink()  # the fault is fixed: a rerun retries exactly the failed runs
    s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    assert not s["failures"] and s["runs"]["ok"] == 24
    assert {a["name"]: a["n_seeds"] for a in s["arms"]}["+audio.noise"] == 4


def test_pending_below_two_paired_seeds(tmp_path: Path, tiny: Path) -> None:
    s = run(_cfg(tiny), tmp_path, workers=1, progress=False, max_runs=7, plots=False)
    assert all(a["decision"] == "pending" for a in s["arms"])
    assert all(a["primary"]["n_seeds"] <= 1 for a in s["arms"])


def _write(tmp_path: Path, cfg: dict) -> str:
    import yaml

    p = tmp_path / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def test_no_robustness_switch_for_the_bundled_trainer(tmp_path: Path, tiny: Path) -> None:
    from mmdata.errors import MMDataError

    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"epochs": 1, "eval_robustness": True}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"a": None}}, "controls": {"identity": False}}
    res = CliRunner().invoke(app, ["ablate", _write(tmp_path, cfg), "--out", str(tmp_path / "o"), "--no-robustness",
                                   "--max-runs", "1", "-j", "1", "--json"])
    assert res.exit_code == 0, res.output
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["test_accuracy"] is not None
    assert not [k for k in rows[0] if k.startswith(("robust_", "missing_"))]  # the robustness pass did not run
    resolved = (tmp_path / "o" / "config.resolved.yaml").read_text()
    assert "eval_robustness: false" in resolved
    cfg["trainer"] = {"entry": SYN}
    res = CliRunner().invoke(app, ["ablate", _write(tmp_path, cfg), "--out", str(tmp_path / "p"), "--no-robustness"])
    assert isinstance(res.exception, MMDataError) and "bundled trainer" in str(res.exception)
