"""Runner: designs, artifacts, resume after a real kill, and a planted label-noise arm on avdigits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.ablate import load_ablation, run
from mmdata.ablate.testing import synthetic_train
from mmdata.errors import RecipeError

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw) -> dict:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"epochs": 1}, "seeds": 10,
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
    assert len(sweep.arms) == 5 and sweep.arms[1].recipe["image"][0]["size"] == [0.1, 0.2]
    with pytest.raises(RecipeError, match="design.mode: 'random' is not allowed"):
        load_ablation({"design": {"mode": "random"}})
    with pytest.raises(RecipeError, match=r"trainer: unknown key\(s\) \['lr_schedule'\]"):
        load_ablation({"trainer": {"lr_schedule": 1}, "design": {"mode": "explicit", "arms": {"a": None}}})


def test_run_writes_artifacts_and_finds_planted_effects(tmp_path: Path, tiny: Path) -> None:
    s = run(_cfg(tiny), tmp_path, workers=1, train_fn=synthetic_train, progress=False)
    arms = {a["name"]: a for a in s["arms"]}
    assert arms["+image.cutout"]["decision"] == "helps" and arms["+audio.noise"]["decision"] == "hurts"
    assert arms["label_noise"]["decision"] == "hurts" and arms["identity"]["decision"] == "equivalent"
    assert arms["+text.token_mask"]["decision"] in ("equivalent", "inconclusive")
    assert not s["underpowered"] and s["aa_check"]["false_positive"] is False
    e = arms["+image.cutout"]["metrics"]["test_accuracy"]
    assert {"mean_diff", "ci95_t", "ci95_boot", "d_z", "p_improve_seeds", "p_value", "p_holm", "decision"} <= set(e)
    rows = pq.read_table(tmp_path / "runs.parquet").to_pylist()
    assert len(rows) == 60 and {"config_hash", "data_fingerprint", "wall_s", "test_accuracy", "missing_audio_accuracy"} <= set(rows[0])
    for f in ("summary.json", "config.resolved.yaml", "env.json", "report.md", "forest.png", "paired.png", "robustness.png"):
        assert (tmp_path / f).is_file(), f
    report = (tmp_path / "report.md").read_text()
    assert "A/A check" in report and "forest.png" in report and "Holm" in report
    assert json.loads((tmp_path / "env.json").read_text())["torch"]


def test_underpowered_is_flagged(tmp_path: Path, tiny: Path) -> None:
    s = run(_cfg(tiny, seeds=5), tmp_path, workers=1, train_fn=synthetic_train, progress=False)
    assert s["underpowered"] and all(a["decision"] not in ("helps", "hurts") for a in s["arms"])
    assert "Underpowered" in (tmp_path / "report.md").read_text()


def test_resume_after_kill_loses_and_repeats_nothing(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tiny, seeds=4)
    code = ("import sys, functools; from mmdata.ablate import run; from mmdata.ablate.testing import synthetic_train; "
            f"run({cfg!r}, {str(tmp_path)!r}, workers=2, progress=False, "
            "train_fn=functools.partial(synthetic_train, sleep=0.4))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    runs = tmp_path / "runs.parquet"
    deadline = time.time() + 120
    while time.time() < deadline:
        if runs.exists() and 3 <= pq.read_table(runs).num_rows:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = pq.read_table(runs).to_pylist()
    assert 3 <= len(before) < 24
    run(cfg, tmp_path, workers=1, train_fn=synthetic_train, progress=False)
    after = pq.read_table(runs).to_pylist()
    pairs = [(r["arm"], r["seed"]) for r in after]
    assert len(pairs) == len(set(pairs)) == 6 * 4
    kept = {(r["arm"], r["seed"]): r["wall_s"] for r in after}
    assert all(kept[(r["arm"], r["seed"])] == r["wall_s"] for r in before)  # finished runs were not repeated
    # the resolved config re-runs the same ablation: every run is found done, the report is rewritten
    resolved = load_ablation(tmp_path / "config.resolved.yaml")
    assert [a.name for a in resolved.arms] == [a.name for a in load_ablation(cfg).arms]
    run(tmp_path / "config.resolved.yaml", tmp_path, workers=1, train_fn=synthetic_train, progress=False)
    assert pq.read_table(runs).to_pylist() == after
    with pytest.raises(RecipeError, match="first arm, and only the first, must be the baseline"):
        load_ablation({"arms": [{"name": "a", "kind": "arm", "recipe": None}]})


@pytest.mark.slow
def test_planted_label_noise_hurts_on_avdigits(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=40, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"epochs": 6}, "seeds": 7,
           "design": {"mode": "explicit", "baseline": None, "arms": {}}, "controls": {"identity": False, "label_noise": 0.3}}
    s = run(cfg, tmp_path / "ab", workers=2, progress=False)
    arm = s["arms"][0]
    assert arm["name"] == "label_noise" and arm["decision"] == "hurts", arm["metrics"]["test_accuracy"]
