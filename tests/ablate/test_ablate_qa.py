"""QA pass on the ablation runner (2026-12): each test reproduces one defect the pass found and pins the
fix — statistics on the synthetic trainer (mmdata.ablate.testing) or on hand-made runs, the bundled
trainer's checks without training."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.ablate import load_ablation, run
from mmdata.errors import MMDataError, RecipeError

SYN = "mmdata.ablate.testing:synthetic_train"
CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
ONE_ARM = {"mode": "explicit", "arms": {"a": None}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw: Any) -> dict[str, Any]:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 8,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}},
           "controls": {"identity": False, "label_noise": 0.3}}
    cfg.update(kw)
    return cfg


def _write(folder: Path, cfg: dict[str, Any]) -> str:
    p = folder / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


# 1 ------------------------------------------------------------------------------------------------
def test_beats_the_baseline_follows_the_metric_direction(tmp_path: Path, tiny: Path, figures: dict[str, Any]) -> None:
    """With test.nll an arm whose NLL is higher on every seed hurts: P(beats) was 1.00 and its lines green."""
    from mmdata.ablate.stats import analyze

    worse = {s: 0.1 + 0.01 * s for s in range(8)}  # higher NLL on every seed
    r = analyze({"a": worse}, delta=0.01, higher_is_better=False)["a"]
    assert r["decision"] == "hurts" and r["p_superior"] == 0.0 and r["p_superior_ci"][1] < 0.5
    assert analyze({"a": worse}, delta=0.01)["a"]["p_superior"] == 1.0  # accuracy-like metrics: unchanged

    s = run(_cfg(tiny, metric="test.nll"), tmp_path, workers=1, progress=False)
    arms = {a["name"]: a for a in s["arms"]}
    ln = arms["label_noise"]["primary"]
    assert arms["label_noise"]["decision"] == "hurts" and ln["mean_diff"] > 0 and ln["p_superior"] == 0.0
    assert "hurts" in s["controls"]["headline"] and s["controls"]["verdict"] == "passed"
    panel = next(ax for ax in figures["paired.png"].axes if ax.get_title().startswith("label_noise"))
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_hex

    seeds = next(c for c in panel.collections if isinstance(c, LineCollection))  # one line per seed
    assert len(seeds.get_segments()) == ln["n_seeds"]
    assert {to_hex(c) for c in seeds.get_colors()} == {to_hex("#D55E00")}  # worse on every seed: vermillion
    assert "lower is better" in " ".join(figures["paired.png"].get_suptitle().split())


# 2 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric, msg", [
    ({"name": "test.nll", "higher_is_better": "no"}, r"metric.higher_is_better: expected true or false \(a YAML boolean\), got 'no'"),
    ({"name": "test.nll", "higher_is_better": "maybe"}, r"metric.higher_is_better: .*got 'maybe'"),
    ({"name": "test.nll", "higher_is_better": 1}, r"metric.higher_is_better: .*got 1"),
    ({"name": "test.nll", "scale": 0}, r"metric.scale: expected a finite number > 0, got 0"),
    ({"name": "test.nll", "scale": -1}, r"metric.scale: expected a finite number > 0, got -1"),
    ({"name": "test.nll", "scale": float("nan")}, r"metric.scale: expected a finite number > 0, got nan"),
    ({"name": "test.nll", "scale": "big"}, r"metric.scale: expected a finite number > 0, got 'big'"),
    ({"name": "test.nll", "label": 3}, r"metric.label: expected a string"),
    ("test.foo", r"metric.name: 'test.foo' is not a metric the bundled trainer returns; choose one of "
                 r"\['test.accuracy', 'test.macro_f1', 'test.balanced_accuracy', 'test.nll', 'test.ece', 'test.auroc', 'test.auprc'\]"),
])
def test_metric_keys_are_checked(metric: Any, msg: str) -> None:
    with pytest.raises(RecipeError, match=msg):
        load_ablation({"metric": metric, "design": ONE_ARM})


def test_the_direction_of_your_own_metric_must_be_said() -> None:
    with pytest.raises(RecipeError, match=r"metric.higher_is_better: .*'test.loss'.*\{name: test.loss, higher_is_better: false\}"):
        load_ablation({"trainer": {"entry": SYN}, "metric": "test.loss", "design": ONE_ARM})
    ab = load_ablation({"trainer": {"entry": SYN}, "metric": {"name": "test.loss", "higher_is_better": False}, "design": ONE_ARM})
    assert ab.metric.higher_is_better is False and ab.metric.scale == 1.0
    ab = load_ablation({"metric": {"name": "test.accuracy", "higher_is_better": True, "scale": 1}, "design": ONE_ARM})
    assert ab.metric.higher_is_better is True and ab.metric.scale == 1.0


# 3 ------------------------------------------------------------------------------------------------
def test_identity_control_is_not_applicable_when_the_baseline_draws_nothing(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.design import design_warnings

    add_one = {"mode": "add_one", "recipe": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]}}
    ab = load_ablation({"design": add_one})  # default controls: skipped, with a note
    assert [a.name for a in ab.arms] == ["baseline (no augmentation)", "+image.hflip"]
    assert ab.identity_note and "draws nothing" in ab.identity_note
    assert any("identity" in w and "draws nothing" in w for w in design_warnings(ab))
    # a baseline with only deterministic steps draws nothing either
    det = {"seed": 0, "normalize": {"audio": [{"op": "to_mono"}]}, "image": [{"op": "to_gray", "p": 1.0}]}
    ab = load_ablation({"design": {"mode": "explicit", "baseline": det, "arms": {"flip": {"image": [{"op": "hflip"}]}}}})
    assert "identity" not in [a.name for a in ab.arms]
    # a baseline that draws keeps its A/A control
    ab = load_ablation({"design": {"mode": "leave_one_out", "recipe": add_one["recipe"]}})
    assert ab.arms[-1].name == "identity" and ab.identity_note is None

    # asked for explicitly: it runs, and is reported as not applicable — never as a passed control
    s = run(_cfg(tiny, controls={"identity": True, "label_noise": 0.3}), tmp_path / "a", workers=1, progress=False, plots=False)
    c = s["controls"]
    assert c["identity"]["applicable"] is False and "draws nothing" in c["identity"]["note"]
    assert "not applicable" in c["headline"] and "`identity` (A/A) is" not in c["headline"]
    assert c["verdict"] == "passed" and "label_noise" in c["headline"]  # what was checked: the planted arm
    assert "not applicable" in (tmp_path / "a" / "report.md").read_text().splitlines()[2]
    s = run(_cfg(tiny, controls={"identity": True}), tmp_path / "b", workers=1, progress=False, plots=False)
    assert s["controls"]["verdict"] == "not_checked" and not s["controls"]["headline"].startswith("Controls passed")
    assert "not applicable" in s["controls"]["headline"]


# 4 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trainer, msg", [
    ({"fusion": "concatt"}, r"trainer.fusion: 'concatt' is not one of \['early', 'concat', "),
    ({"batch_size": 0}, r"trainer.batch_size: expected an integer >= 1, got 0"),
    ({"optimizer": "adamm"}, r"trainer.optimizer: 'adamm' is not one of \['adamw', 'sgd'\]"),
    ({"modalities": ["imag"]}, r"trainer.modalities: 'imag' is not one of \['image', 'audio', 'text'\]"),
    ({"modalities": "image"}, r"trainer.modalities: expected a list"),
    ({"lr": "abc"}, r"trainer.lr: expected a finite number > 0, got 'abc'"),
    ({"lr": "1e-3"}, r"trainer.lr: .*got '1e-3' \(YAML reads 1e-3 as text; write 1.0e-3\)"),
    ({"epochs": -1}, r"trainer.epochs: expected an integer >= 1, got -1"),
    ({"epochs": 0}, r"trainer.epochs: expected an integer >= 1, got 0"),
    ({"weight_decay": -0.1}, r"trainer.weight_decay: expected a finite number >= 0, got -0.1"),
    ({"eval_robustness": "no"}, r"trainer.eval_robustness: expected true or false"),
    ({"device": "gpu"}, r"trainer.device: 'gpu' is not a torch device"),
])
def test_bundled_trainer_values_are_checked_before_any_run(trainer: dict[str, Any], msg: str) -> None:
    with pytest.raises(RecipeError, match=msg):
        load_ablation({"trainer": trainer, "design": ONE_ARM})


def test_bad_recipe_values_and_datasets_stop_the_cli_before_any_run(tmp_path: Path, tiny: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main
    from mmdata.testing import make_sample_folder

    cfg = {"dataset": {"path": str(tiny)}, "trainer": {"fusion": "concatt", "epochs": 1}, "seeds": 2, "design": ONE_ARM}
    with pytest.raises(SystemExit) as exit_:
        main(["ablate", _write(tmp_path, cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "trainer.fusion: 'concatt' is not one of" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    # a dataset without a val split: every run used to fail with it
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), tmp_path / "noval", split="train=0.5,test=0.5", progress=False)
    cfg = {"dataset": {"path": str(tmp_path / "noval")}, "trainer": {"epochs": 1}, "seeds": 2, "design": ONE_ARM,
           "controls": {"identity": False}}
    with pytest.raises(MMDataError, match=r"dataset.path: .*needs train/val/test splits; it has \['test', 'train'\]"):
        run(cfg, tmp_path / "o", workers=1, progress=False)
    assert not (tmp_path / "o").exists()
    # a modality the training split lacks, named by its recipe key
    raw = make_sample_folder(tmp_path / "raw2", n=12)
    for f in raw.glob("*.flac"):
        f.unlink()
    mmdata.shard(raw, tmp_path / "ds", split="train=0.5,val=0.25,test=0.25", progress=False)
    cfg["dataset"], cfg["trainer"] = {"path": str(tmp_path / "ds")}, {"epochs": 1, "modalities": ["image", "audio"]}
    with pytest.raises(MMDataError, match=r"trainer.modalities image,audio: no sample of the train split .* has audio"):
        run(cfg, tmp_path / "o", workers=1, progress=False)
    # the library function checks its own options before it reads anything
    with pytest.raises(MMDataError, match=r"epochs \(--epochs\): expected an integer >= 1, got -1"):
        mmdata.train.train(tiny, epochs=-1)
    with pytest.raises(MMDataError, match=r"epochs=0 \(--epochs 0\) trains no classifier"):  # 0: pre-training alone
        mmdata.train.train(tiny, epochs=0)


def test_headline_says_the_runs_failed_when_every_run_failed(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=3)
    cfg["trainer"] = {"entry": SYN, "fail": {"seeds": [0, 1, 2]}}
    s = run(cfg, tmp_path, workers=1, progress=False, plots=False)
    assert s["runs"]["ok"] == 0 and s["controls"]["verdict"] == "runs_failed"
    assert "failed" in s["controls"]["headline"] and "sensitivity" not in s["controls"]["headline"]


# 5 ------------------------------------------------------------------------------------------------
def test_a_design_that_can_never_reach_a_verdict_is_warned(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.design import AblationWarning, design_warnings

    from mmdata.ablate.stats import min_seeds_for_verdict

    assert [min_seeds_for_verdict(0.05, m) for m in (1, 2, 6, 8)] == [6, 7, 8, 9]
    arms = {f"cut{i}": {"seed": i, "image": [{"op": "cutout", "p": 0.5}]} for i in range(5)}
    cfg = _cfg(tiny, seeds=4, design={"mode": "explicit", "baseline": None, "arms": arms})  # 5 arms + label_noise
    with pytest.warns(AblationWarning, match=r"6 arms .* 4 seeds .* never reach a verdict.*at least 8 seeds"):
        s = run(cfg, tmp_path, workers=1, progress=False, plots=False)
    assert s["design"]["min_seeds_for_a_verdict"] == 8
    assert "More seeds are needed: at least 8" in (tmp_path / "report.md").read_text()
    assert not [w for w in design_warnings(load_ablation({**cfg, "seeds": 8})) if "never reach a verdict" in w]


# 6 ------------------------------------------------------------------------------------------------
def test_an_arm_that_only_changes_an_unused_modality_is_warned(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.design import AblationWarning, design_warnings

    cfg = {"dataset": {"path": str(tiny)}, "seeds": 2, "controls": {"identity": False},
           "trainer": {"modalities": ["image", "text"], "epochs": 1, "eval_robustness": False},
           "design": {"mode": "leave_one_out", "recipe": {"seed": 0, "image": [{"op": "hflip", "p": 0.5}],
                                                          "audio": [{"op": "gain", "p": 0.5}]}}}
    msgs = design_warnings(load_ablation(cfg))
    hit = [m for m in msgs if "'-audio.gain'" in m]
    assert hit and "audio" in hit[0] and "trainer.modalities" in hit[0] and not [m for m in msgs if "-image.hflip" in m]
    with pytest.warns(AblationWarning, match=r"'-audio\.gain'"):
        run(cfg, tmp_path / "o", workers=1, progress=False, plots=False, max_runs=1)


# 7 ------------------------------------------------------------------------------------------------
def test_robustness_curves_compare_each_arm_on_its_paired_seeds() -> None:
    """An adaptive arm stopped at 4 seeds was averaged over them while the baseline was averaged over 10."""
    import json

    from mmdata.ablate.report import robustness_deltas

    rows = [{"arm": "base", "seed": s, "status": "ok", "robust_image_curve": json.dumps([0.5 + 0.04 * s] * 3)} for s in range(10)]
    rows += [{"arm": "early", "seed": s, "status": "ok", "robust_image_curve": json.dumps([0.51 + 0.04 * s] * 3)} for s in range(6)]
    out = robustness_deltas(rows, "base", ["early"], {"early": 4})
    n, mean = out["image"]["early"]
    assert n == 4 and mean == pytest.approx([1.0] * 3)  # +1 point on each paired seed (seeds 4, 5 beyond its look)


# 8 ------------------------------------------------------------------------------------------------
def test_an_out_folder_that_is_not_an_ablation_is_refused(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.md").write_text("my own notes")
    with pytest.raises(MMDataError, match=r"--out \(out=\) .*o: not empty and not an mmdata ablation folder \(it has report.md\)"):
        run(_cfg(tiny, seeds=2), out, workers=1, progress=False, plots=False)
    assert [p.name for p in out.iterdir()] == ["report.md"] and (out / "report.md").read_text() == "my own notes"
    # a dataset in OUT/data (what `mmdata demo` builds before it ablates) is part of an ablation folder
    fresh = tmp_path / "demo_like"
    shutil.copytree(tiny, fresh / "data")
    s = run(_cfg(fresh / "data", seeds=2), fresh, workers=1, progress=False, plots=False)
    assert s["runs"]["ok"] == 6


def test_an_out_folder_inside_a_dataset_folder_is_refused(tmp_path: Path, tiny: Path) -> None:
    """``mmdata ablate`` into ``ds/abl`` wrote its runs and report among the dataset's files (``mmdata train``
    refuses ``--out ds/runs``; the ablation's runs do not go through that check)."""
    ds = tmp_path / "ds"
    shutil.copytree(tiny, ds)
    before = sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*"))
    with pytest.raises(MMDataError, match=rf"--out \(out=\) {ds}/abl: inside the dataset folder {ds} \(it holds "
                                          rf"dataset\.json\); .* give a folder outside it, e\.g\. {tmp_path}/runs/ds$"):
        run(_cfg(ds, seeds=2), ds / "abl", workers=1, progress=False, plots=False)
    assert sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*")) == before


def test_runs_of_another_configuration_are_counted_kept_and_delta_reanalyses(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.design import AblationWarning

    out = tmp_path / "o"
    first = run(_cfg(tiny, seeds=3), out, workers=1, progress=False, plots=False)
    walls = {(r["arm"], r["seed"]): r["wall_s"] for r in pq.read_table(out / "runs.parquet").to_pylist()}
    # the same recipe again: re-analysed, not one run repeated, no warning (a new delta after the verdicts is
    # refused: tests/ablate/test_delta_switch_qa29.py)
    again = run(_cfg(tiny, seeds=3), out, workers=1, progress=False, plots=False)
    assert again["delta"] == first["delta"] and again["runs"]["ok"] == first["runs"]["ok"] == 9
    assert {(r["arm"], r["seed"]): r["wall_s"] for r in pq.read_table(out / "runs.parquet").to_pylist()} == walls
    # another trainer configuration: the 9 old runs are kept, not analysed, and the console says so
    other = _cfg(tiny, seeds=3)
    other["trainer"] = {"entry": SYN, "probe": False}
    with pytest.warns(AblationWarning, match=r"9 runs in .*runs.parquet come from another configuration \(changed: trainer\)"):
        s = run(other, out, workers=1, progress=False, plots=False)
    assert s["runs"]["stale_rows_not_analysed"] == 9 and pq.read_table(out / "runs.parquet").num_rows == 18
    # the same recipe again: the 9 runs are from the configuration before the last; this used to blame
    # "the dataset's content, --device or --threads", none of which had changed
    with pytest.warns(AblationWarning, match=r"9 runs .* \(from a configuration before the folder's last run\)"):
        run(other, out, workers=1, progress=False, plots=False)
    with pytest.warns(AblationWarning, match=r"18 runs .* \(changed: --threads\)"):
        run(other, out, workers=1, threads=2, progress=False, plots=False)


def test_a_finished_fixed_design_cannot_be_extended_in_its_folder(tmp_path: Path, tiny: Path) -> None:
    """A fixed design that reported its verdicts at 10 seeds, rerun with --seeds 20 into the same folder,
    reused the 10 and tested again at full α with no word: two looks, 9% family-wise false positives in
    simulation where 5% was planned (QA 2026-12-03). Now refused like any design change after a look;
    before its look (an interrupted run) the seeds may still change."""
    cfg = _cfg(tiny, seeds=4)
    run(cfg, tmp_path / "a", workers=1, progress=False, plots=False)
    for more in (6, 3):
        with pytest.raises(MMDataError, match=r"already looked .*fixed design \(4 seeds\) \(its verdicts were reported\).*"
                                              rf"fixed design \({more} seeds\).*new --out"):
            run(cfg, tmp_path / "a", seeds=more, workers=1, progress=False, plots=False)
    run(cfg, tmp_path / "a", workers=1, progress=False, plots=False)  # the same design: re-analysed
    run(cfg, tmp_path / "b", workers=1, progress=False, plots=False, max_runs=5)
    assert run(cfg, tmp_path / "b", seeds=6, workers=1, progress=False, plots=False)["design"]["complete"]


def test_the_refusal_counts_the_looks_of_seeds_beyond_the_new_count(tmp_path: Path, tiny: Path) -> None:
    """--seeds 16 on a finished 20-seed adaptive folder said '4 looks done' when 6 were: the runs of
    seeds 16-19 were taken for another configuration's before the check (QA 2026-12-03)."""
    import json

    import numpy as np

    def null(data: str, *, recipe: Any = None, seed: int = 0, **kw: Any) -> dict[str, Any]:  # no arm has an effect
        rng = np.random.default_rng([seed, len(json.dumps(recipe, sort_keys=True, default=str))])
        return {"test": {"accuracy": 0.8 + 0.01 * float(rng.normal())}}

    cfg = _cfg(tiny, seeds=20, adaptive={"futility": 0})  # default looks: 10, 12, ..., 20
    s = run(cfg, tmp_path / "a", train_fn=null, progress=False, plots=False)
    assert s["design"]["looks_done"] > 4  # some arm went past 16 seeds
    with pytest.raises(MMDataError, match=rf"already looked .*\({s['design']['looks_done']} looks done\)"):
        run(cfg, tmp_path / "a", train_fn=null, seeds=16, progress=False, plots=False)


def test_switching_fixed_and_adaptive_after_a_look_is_refused(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=10, adaptive={"looks": [6, 8, 10]})
    run(cfg, tmp_path / "a", workers=1, progress=False, plots=False, max_runs=18)  # baseline + 2 arms x 6 seeds: look 1
    with pytest.raises(MMDataError, match=r"already looked .*adaptive.*fixed.*use a new --out"):
        run(cfg, tmp_path / "a", adaptive=False, workers=1, progress=False, plots=False)
    with pytest.raises(MMDataError, match=r"already looked .*looks \[6, 8, 10\].*\[10, 12, 14, 16, 18, 20\]"):
        run(cfg, tmp_path / "a", seeds=20, workers=1, progress=False, plots=False)
    assert yaml.safe_load((tmp_path / "a" / "config.resolved.yaml").read_text())["adaptive"]["looks"] == [6, 8, 10]
    # before any look a switch changes nothing that was seen: allowed
    run(cfg, tmp_path / "b", workers=1, progress=False, plots=False, max_runs=5)
    s = run(cfg, tmp_path / "b", adaptive=False, workers=1, progress=False, plots=False)
    assert not s["design"]["adaptive"] and s["runs"]["ok"] == 30


# 9 ------------------------------------------------------------------------------------------------
def test_a_zero_default_delta_is_warned(tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.ablate.design import AblationWarning

    def flat(data: str, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, **kw: Any) -> dict[str, Any]:
        return {"test": {"accuracy": 0.8 + (0.01 * (seed % 3) if recipe else 0.0)}}  # the baseline never varies

    cfg = _cfg(tiny, seeds=4, controls={"identity": False})
    with pytest.warns(AblationWarning, match=r"δ = 0 .*equivalent.*unreachable.*delta:"):
        s = run(cfg, tmp_path, train_fn=flat, progress=False, plots=False)
    assert s["delta"]["value"] == 0 and "unreachable" in s["delta"]["warning"]
    assert "set `delta:` in the recipe" in (tmp_path / "report.md").read_text()
    from mmdata.cli.ablate import _print_summary
    from mmdata.cli.common import console

    with console.capture() as cap:
        _print_summary(s, tmp_path)
    assert "δ = 0" in cap.get() and "unreachable" in cap.get()


# 10 -----------------------------------------------------------------------------------------------
def test_a_noise_share_above_100_percent_is_not_printed_as_such(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.report import noise_paragraph, share_text
    from mmdata.cli.ablate import _print_summary
    from mmdata.cli.common import console

    assert share_text(0.42) == "42%" and share_text(1.68) == "≈ all (estimate above 100% at this seed count)"
    noise = {"share": 1.68, "share_range": [0.3, 2.1], "n_test": 360, "sd_test": 2.0, "arms": 3, "left_out": [],
             "disagreement": 0.1}
    text = noise_paragraph(noise)
    assert "168%" not in text and "210%" not in text and "126%" not in text
    assert "≈ all" in text and "30% to above 100% per arm" in text
    s = run(_cfg(tiny, seeds=2), tmp_path, workers=1, progress=False, plots=False)
    s["eval_split_noise"] = noise
    with console.capture() as cap:
        _print_summary(s, tmp_path)
    assert "168%" not in cap.get() and "noise: ≈ all (estimate above 100% at this seed count) of the paired variance" in cap.get()


# 11 -----------------------------------------------------------------------------------------------
def test_the_forest_axis_scales_to_the_data() -> None:
    from mmdata.ablate.report import forest_limit

    nll = [{"primary": {"ci": [0.02, 0.09], "mean_diff": 0.07}}, {"primary": {"ci": [None, 0.05], "mean_diff": -0.01}}]
    assert 0.09 < forest_limit(nll, 0.03) < 0.2
    assert forest_limit([{"primary": {"ci": [-4.0, 12.0], "mean_diff": 3.0}}], 1.0) == pytest.approx(12.0 * 1.3)
    assert forest_limit([{"primary": {"ci": [None, None], "mean_diff": 0.0}}], None) == pytest.approx(1.3)
    assert forest_limit([{"primary": {"ci": [0.0, 0.0], "mean_diff": 0.0}}], 0.0) > 0


# 12 -----------------------------------------------------------------------------------------------
def test_train_and_ablate_reject_bad_lr_and_an_out_that_is_a_file(tmp_path: Path, tiny: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    for lr in ("-1", "nan", "0"):
        with pytest.raises(SystemExit) as exit_:
            main(["train", str(tiny), "--lr", lr, "--epochs", "1", "--json"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "lr (--lr): expected a finite number > 0" in err and "Traceback" not in err
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(SystemExit) as exit_:  # checked before training: no model is trained for nothing
        main(["train", str(tiny), "--out", str(afile), "--epochs", "1", "--json"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{afile}: exists and is not a folder" in err and afile.read_text() == "mine"
    with pytest.raises(SystemExit) as exit_:
        main(["ablate", _write(tmp_path, _cfg(tiny, seeds=2)), "--out", str(afile)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{afile}: exists and is not a folder" in err and "Traceback" not in err


# 13 -----------------------------------------------------------------------------------------------
def test_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"seeds: 3\ndesign: {mode: explicit\nalpha: 0.05\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: invalid YAML \(line 3, column \d+: ") as info:
        load_ablation(tmp_path / "bad.yaml")
    assert "UTF-8" not in str(info.value)
    (tmp_path / "latin1.yaml").write_bytes("seeds: 3  # caf\xe9".encode("latin-1"))
    with pytest.raises(RecipeError, match=r"latin1.yaml: not UTF-8 YAML \(byte 0xe9 at offset 15 is not UTF-8\)"):
        load_ablation(tmp_path / "latin1.yaml")


# 14 -----------------------------------------------------------------------------------------------
def test_one_arm_order_everywhere_and_untruncated_cli_rows(tmp_path: Path, tiny: Path, figures: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    long = "-image.hflip_with_an_identifier_too_long_for_eighty_columns"
    arms = {"zz_same": None, "aa_same": None, "cutout": CUT, long: None, "mm_same": None}  # four ties at Δ = 0
    cfg = _cfg(tiny, seeds=3, design={"mode": "explicit", "baseline": None, "arms": arms}, controls={"identity": False})
    s = run(cfg, tmp_path, workers=1, progress=False)
    report = (tmp_path / "report.md").read_text().splitlines()
    start = report.index(next(line for line in report if line.startswith("| arm | seeds | mean Δ")))
    table = report[start + 2: report.index("", start)]
    in_report = [line.split(" | ")[0][2:] for line in table]
    in_forest = [t.get_text() for t in figures["forest.png"].axes[0].get_yticklabels()][::-1]  # top to bottom
    in_paired = [ax.get_title().rsplit("\n", 1)[0] for ax in figures["paired.png"].axes if ax.get_title()]
    from mmdata.ablate.report import figure_labels

    drawn = figure_labels(in_report)  # the figures wrap or shorten long names (report.md keeps them whole)
    assert [drawn[n] for n in in_report] == in_forest == in_paired and in_report[0] == "cutout" and len(in_report) == 5
    from mmdata.ablate.report import arm_order

    assert [a["name"] for a in arm_order(s["arms"], True)] == in_report
    from mmdata.cli.common import UNLIMITED_WIDTH

    piped = Console(file=io.StringIO(), width=UNLIMITED_WIDTH)  # not a terminal: a pipe or a file (ResultConsole)
    monkeypatch.setattr("mmdata.cli.ablate.console", piped)
    from mmdata.cli.ablate import _print_summary

    _print_summary(s, tmp_path)
    out = piped.file.getvalue()  # type: ignore[attr-defined]
    assert long in out and "…" not in out
    for a in s["arms"]:
        assert a["decision"] in out
    rows = [line for line in out.splitlines() if any(line.lstrip("│ ").startswith(n) for n in in_report)]
    assert [next(n for n in in_report if line.lstrip("│ ").startswith(n)) for line in rows] == in_report
    # an 80-column terminal is too narrow for the long name: a record per arm, in the same order, nothing cut
    term = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr("mmdata.cli.ablate.console", term)
    _print_summary(s, tmp_path)
    records = [line[len("arm: "):] for line in term.file.getvalue().splitlines() if line.startswith("arm: ")]  # type: ignore[attr-defined]
    assert records == in_report
    # a narrow terminal folds headers and values alike (QA at 70 columns: 'interv…', 'accura…', '(point…')
    narrow = Console(file=io.StringIO(), width=50, force_terminal=True, color_system=None)
    monkeypatch.setattr("mmdata.cli.ablate.console", narrow)
    _print_summary(s, tmp_path)
    assert "…" not in narrow.file.getvalue()  # type: ignore[attr-defined]


def test_the_resolved_config_reruns_from_another_working_directory(tmp_path: Path, tiny: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """User QA 2026-12-02: with `dataset: {path: data}` (relative), `mmdata ablate DIR/config.resolved.yaml --out DIR`
    from another directory failed ("data: no dataset.json"); the resolved config now names the dataset absolutely."""
    from mmdata.ablate.testing import synthetic_recipe, synthetic_train

    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(tiny, work / "data")
    monkeypatch.chdir(work)
    recipe = synthetic_recipe(work, "data", seeds=2)
    first = run(recipe, work / "abl", train_fn=synthetic_train, progress=False, plots=False)
    resolved = yaml.safe_load((work / "abl" / "config.resolved.yaml").read_text())
    assert resolved["dataset"]["path"] == str((work / "data").resolve())
    monkeypatch.chdir(tmp_path)
    again = run(work / "abl" / "config.resolved.yaml", work / "abl", train_fn=synthetic_train, progress=False, plots=False)
    assert again["runs"] == first["runs"]


def test_trainer_warnings_reach_runs_parquet_and_the_report(tmp_path: Path, tiny: Path) -> None:
    """A run's `warnings` (the bundled trainer's BatchNorm warning, say) were written to its metrics.json
    and nowhere else: the ablation's report did not say that its scores came from unsettled models."""
    from mmdata.ablate.design import AblationWarning

    def warns(data: str, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, **kw: Any) -> dict[str, Any]:
        said = [f"BatchNorm statistics from only {seed + 1} training batches"] if seed % 2 == 0 else []
        return {"test": {"accuracy": 0.8 + 0.01 * seed + (0.002 if recipe else 0.0)}, "warnings": said}

    cfg = _cfg(tiny, seeds=4, controls={"identity": False})
    with pytest.warns(AblationWarning, match=r"the trainer warned in 4 of 8 runs \(arms baseline, cutout\): "
                                             r"BatchNorm statistics from only 1 training batches \(arm baseline, seed 0\)"):
        s = run(cfg, tmp_path, train_fn=warns, progress=False, plots=False)
    rows = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    assert sum(r["warnings"] is not None for r in rows) == 4
    assert any("the trainer warned in 4 of 8 runs" in w for w in s["warnings"])
    assert "the trainer warned in 4 of 8 runs" in (tmp_path / "report.md").read_text()


def test_the_default_trainer_modalities_are_those_the_dataset_has(tmp_path: Path) -> None:
    """An ablation on an audio-only dataset was refused before any run: the defaults named image,
    audio and text, and the error said to leave trainer.modalities out — which the user had done.
    An arm that only changes a modality the dataset lacks was told to add it to trainer.modalities."""
    from mmdata.ablate.design import data_modalities, design_warnings
    from mmdata.testing.media import audio_bytes

    raw = tmp_path / "raw"
    for c, name in enumerate(("low", "high")):
        (raw / name).mkdir(parents=True)
        for i in range(10):
            (raw / name / f"{i:02d}.flac").write_bytes(audio_bytes(2 * i + c))
    mmdata.shard(raw, tmp_path / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    assert data_modalities({"path": str(tmp_path / "ds")}) == ("audio",)
    assert data_modalities({"path": "s3://bucket/ds"}) is None and data_modalities({"path": str(tmp_path / "nope")}) is None
    noise = {"op": "noise", "p": 0.5, "min_snr_db": 0, "max_snr_db": 20}
    cfg = {"dataset": {"path": str(tmp_path / "ds")}, "trainer": {"epochs": 1, "batch_size": 4}, "seeds": 2,
           "design": {"mode": "leave_one_out", "recipe": {"audio": [noise, {"op": "gain", "p": 0.5}],
                                                         "image": [{"op": "hflip", "p": 0.5}]}},
           "controls": {"identity": False}}
    ab = load_ablation(cfg)
    assert ab.trainer["modalities"] == ["audio"]
    assert any("'-image.hflip' only changes image, which no sample of the dataset's training split has (it has audio)"
               in w and w.endswith("drop the arm.") for w in design_warnings(ab))
    s = run(cfg, tmp_path / "abl", max_runs=2, workers=1, progress=False, plots=False)
    assert s["runs"]["ok"] == 2 and s["runs"]["failed"] == 0
    resolved = yaml.safe_load((tmp_path / "abl" / "config.resolved.yaml").read_text())
    assert resolved["trainer"]["modalities"] == ["audio"]
    # the embedded dataset keeps its three (and so the run hashes of earlier ablations)
    assert load_ablation({"design": {"mode": "explicit", "arms": {"a": None}}}).trainer["modalities"] == ["image", "audio", "text"]


# reviewer pass on the demo report (2026-12-02) ------------------------------------------------------
def test_a_design_that_cannot_decide_checks_no_control_and_a_missing_label_noise_is_said(tmp_path: Path, tiny: Path) -> None:
    """With 2 seeds no arm can reach a verdict, yet the headline said "Controls passed"; without a
    label_noise arm it said passed without saying that sensitivity went unchecked."""
    s = run(_cfg(tiny, seeds=2, controls={"identity": True, "label_noise": 0.3}), tmp_path / "two", progress=False, plots=False)
    assert s["controls"]["verdict"] == "not_checked"
    assert s["controls"]["headline"].startswith("No control could fail: with at most 2 paired seeds per arm no arm can "
                                                "reach a verdict")
    assert "No control could fail" in (tmp_path / "two" / "report.md").read_text().splitlines()[2]
    drawn = {"mode": "explicit", "baseline": CUT, "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}
    s = run(_cfg(tiny, seeds=8, design=drawn, controls={"identity": True}), tmp_path / "aa", progress=False, plots=False)
    assert s["controls"]["verdict"] == "passed" and "(8 seeds)" in s["controls"]["headline"]
    assert "Sensitivity not checked: the design has no `label_noise` arm" in s["controls"]["headline"]


def test_a_default_delta_from_few_seeds_is_warned(tmp_path: Path, tiny: Path) -> None:
    s = run(_cfg(tiny, seeds=3, controls={"identity": False}), tmp_path, progress=False, plots=False)
    assert any(w.startswith("δ (the smallest effect of interest) is the baseline's sd over only 3 seeds") for w in s["warnings"])
    s = run(_cfg(tiny, seeds=3, delta=1.0, controls={"identity": False}), tmp_path / "set", progress=False, plots=False)
    assert not any("sd over only" in w for w in s["warnings"])


def test_mde_is_at_the_alpha_spent_where_the_arm_stopped_and_a_tied_mean_is_zero() -> None:
    """An arm stopped for futility at the first of two obf looks (8 seeds) showed an MDE of 2.6 next to its
    [-inf, +inf] interval: the MDE used the whole Holm level, not the α spent at that look."""
    import math

    from mmdata.ablate.stats import Looks, analyze, look_level, mde

    d = {s: v for s, v in enumerate([1.0, -0.5, 2.0, 0.3, -1.2, 0.8, 1.5, -0.2])}
    early = analyze({"a": d}, looks=Looks((8, 16), "obf"), n_looks={"a": 1}, delta=1.0)["a"]
    assert early["ci"] == [-math.inf, math.inf] and math.isinf(early["mde"])
    fixed = analyze({"a": d}, delta=1.0)["a"]  # one look: the whole level, as before
    assert fixed["mde"] == mde(fixed["sd_diff"], 8, 0.05) and look_level(Looks((8,)), 0.05, 1) == 0.05
    tied = analyze({"a": {0: 3.89, 1: -3.89, 2: 3.89, 3: -3.89}}, delta=1.0)["a"]
    assert tied["mean_diff"] == 0.0 and tied["d_z"] == 0.0


def test_undertraining_and_the_seeds_an_inconclusive_arm_needs_are_said(tmp_path: Path, tiny: Path) -> None:
    """The demo's best epoch was the last in 101 of 106 runs, and an arm left inconclusive at the budget
    got no word on what would decide it."""
    from mmdata.ablate.report import last_epoch_warning, seeds_to_decide

    def still_improving(data: str, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, **kw: Any) -> dict[str, Any]:
        gain = 0.02 if recipe and recipe.get("image") else 0.0
        return {"test": {"accuracy": 0.8 + 0.03 * ((seed * 7) % 5) / 5 + gain * ((seed % 3) - 0.5)},
                "best_epoch": kw.get("epochs", 8) - 1}

    s = run(_cfg(tiny, seeds=8, controls={"identity": False}, trainer={"epochs": 3}), tmp_path, train_fn=still_improving,
            progress=False, plots=False)
    assert any(w.startswith("the best epoch was the last (3 of 3) in 16 of 16 runs") for w in s["warnings"])
    report = (tmp_path / "report.md").read_text()
    cut = next(a for a in s["arms"] if a["name"] == "cutout")
    assert cut["decision"] == "inconclusive"
    ((name, _, _, n),) = seeds_to_decide(s["arms"])
    assert name == "cutout" and "`cutout` (Δ" in report and f"about {n} seeds" in report and n > 8
    assert last_epoch_warning([{"status": "ok", "best_epoch": b} for b in (1, 1, 2)], 3) == []
    assert seeds_to_decide([{"name": "z", "decision": "inconclusive",
                             "primary": {"mean_diff": 0.0, "sd_diff": 1.0, "level": 0.05}}]) == []


def test_an_adaptive_arm_whose_runs_all_fail_stops_at_the_first_look(tmp_path: Path, tiny: Path) -> None:
    """An arm whose every run failed had no data, so its conditional power stayed 1: it was retried at
    every look, kept the baseline training to the maximum and held a Holm slot, and the forest plot left
    it out with no word (QA 2026-12-03). Now it is `failed` at the first look, out of the family."""
    cfg = _cfg(tiny, seeds=20, adaptive=True)
    cfg["trainer"] = {"entry": SYN, "fail": {"seeds": list(range(20)), "arm_has": "image.cutout"}}
    s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=True)
    by = {a["name"]: a for a in s["arms"]}
    assert by["cutout"]["status"] == "failed" and by["cutout"]["decision"] == "failed"
    assert sorted(f["seed"] for f in s["failures"]) == list(range(10))  # the first look's seeds only
    assert by["label_noise"]["decision"] == "hurts" and by["label_noise"]["primary"]["holm_divisor"] == 1
    rows = pq.read_table(tmp_path / "o" / "runs.parquet").to_pylist()
    assert max(r["seed"] for r in rows if r["arm"] == "baseline") + 1 == by["label_noise"]["stopped_at"]
    report = (tmp_path / "o" / "report.md").read_text()
    assert "failed" in report and (tmp_path / "o" / "forest.png").exists()
    again = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)  # a rerun retries them, once
    assert sorted(f["seed"] for f in again["failures"]) == list(range(10))
    assert {a["name"]: a["decision"] for a in again["arms"]} == {a["name"]: a["decision"] for a in s["arms"]}


def test_when_both_controls_fail_the_headline_names_both_the_a_a_first() -> None:
    """The headline named only the A/A failure when `label_noise` was not detected either; the sensitivity
    failure was left to the table (QA 2026-12-03)."""
    from mmdata.ablate.report import _controls

    def arm(name: str, decision: str) -> dict[str, Any]:
        return {"name": name, "decision": decision, "n_seeds": 10, "status": "complete", "primary": {"mean_diff": 0.1}}

    both = _controls([arm("identity", "helps"), arm("label_noise", "inconclusive")])
    assert both["verdict"] == "aa_failed"
    h = both["headline"]
    assert h.startswith("The A/A control failed") and "sensitivity control failed too" in h and "**inconclusive**" in h
    only = _controls([arm("identity", "hurts"), arm("label_noise", "hurts")])
    assert only["verdict"] == "aa_failed" and "sensitivity" not in only["headline"]


def test_a_repeated_op_without_an_id_whose_identity_shifts_is_warned() -> None:
    """Draws are keyed by op identity (`section.op#k` for the k-th op of a name without an `id:`).
    Removing the first of two cutouts made the kept one `#0`, so it took the removed op's draws and
    shared none with the baseline (0 of 18), with no word (QA 2026-12-03)."""
    from mmdata.ablate.design import design_warnings, load_ablation

    two = {"seed": 0, "image": [{"op": "cutout", "p": 0.5, "size": [0.3, 0.4]},
                                {"op": "cutout", "p": 0.5, "size": [0.1, 0.2]}]}
    said = design_warnings(load_ablation({"trainer": {"entry": SYN}, "seeds": 8,
                                          "design": {"mode": "leave_one_out", "recipe": two}}))
    shift = [w for w in said if "identity shifts" in w]
    assert len(shift) == 1 and "'-image.cutout'" in shift[0], said
    assert "image.cutout#1 in the baseline, image.cutout#0 in the arm" in shift[0] and "`id:`" in shift[0]
    named = {"seed": 0, "image": [dict(two["image"][0], id="big"), dict(two["image"][1], id="small")]}
    said = design_warnings(load_ablation({"trainer": {"entry": SYN}, "seeds": 8,
                                          "design": {"mode": "leave_one_out", "recipe": named}}))
    assert not [w for w in said if "identity shifts" in w]
    said = design_warnings(load_ablation({"trainer": {"entry": SYN}, "seeds": 8,
                                          "design": {"mode": "leave_one_out", "recipe": str(Path(__file__).parents[2] / "recipes" / "avdigits.yaml")}}))
    assert not [w for w in said if "identity shifts" in w]
