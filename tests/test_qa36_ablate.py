"""QA36 defects of mmdata.ablate: the caller's torch threads (notebook #1), recipes that cannot act on the
data (timeseries #3), the figures' stray "; all ties" footer (timeseries #8b)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmdata
from mmdata.ablate import run
from mmdata.ablate.design import design_warnings, inert_arms, load_ablation
from mmdata.ablate.executor import run_task
from mmdata.errors import RecipeError


def _arrays(tmp: Path, text: bool = False) -> Path:
    """A tiny dataset of .npy recordings (two classes), with a caption per sample when ``text``."""
    rng = np.random.default_rng(5)
    raw = tmp / "raw"
    for ci, c in enumerate(("walk", "run")):
        (raw / c).mkdir(parents=True)
        for i in range(8):
            np.save(raw / c / f"{c}{i:02d}.npy", (rng.normal(size=(20, 3)) * (1 + ci)).astype(np.float32))
            if text:
                (raw / c / f"{c}{i:02d}.txt").write_text(f"a {c} sample number {i}", encoding="utf-8")
    mmdata.shard(raw, tmp / "ds", split={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    return tmp / "ds"


def _by_seed(data: Any, *, recipe: Any, seed: int, label_noise: float, device: str, threads: int,
             **kw: Any) -> dict[str, Any]:
    """A trainer whose score depends on the seed alone: every arm ties the baseline."""
    return {"test": {"accuracy": 0.5 + 0.01 * seed}}


_same_every_arm = functools.partial(_by_seed)  # a callable no worker can import by name: runs in this process


NOISE = {"op": "noise", "p": 1.0}
GAIN = {"op": "gain", "p": 1.0}
TYPO = {"op": "typo", "p": 0.5, "p_word": 0.2, "kind": "keyboard"}


# -- notebook #1: the caller's torch thread count ------------------------------------------------------------


@pytest.fixture
def two_threads() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_run_in_process_gives_the_callers_threads_back(tmp_path: Path, two_threads: Any) -> None:
    ds = _arrays(tmp_path, text=True)
    cfg = {"dataset": {"path": str(ds)}, "seeds": 2,
           "design": {"mode": "leave_one_out", "recipe": {"seed": 0, "text": [TYPO]}}}

    def closure(data: Any, *, recipe: Any, seed: int, label_noise: float, device: str, threads: int, **kw: Any) -> Any:
        assert torch.get_num_threads() == 1  # the run's own count (threads=1)
        return {"test": {"accuracy": 0.5 + 0.01 * seed}}

    run(cfg, tmp_path / "abl", train_fn=closure, plots=False, progress=False, on_warning=lambda m: None)
    assert torch.get_num_threads() == 2
    # workers=1 with a trainer given by name: the runs happen in this process too
    cfg2 = {**cfg, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}}
    run(cfg2, tmp_path / "abl2", workers=1, plots=False, progress=False, on_warning=lambda m: None)
    assert torch.get_num_threads() == 2


def test_run_task_gives_the_threads_back_when_the_trainer_raises(two_threads: Any) -> None:
    def boom(data: Any, **kw: Any) -> Any:
        assert torch.get_num_threads() == 3
        raise RuntimeError("trainer failed")

    row = run_task({"arm": "a", "seed": 0, "hash": "h", "fingerprint": "f", "data": "x", "recipe": None,
                    "label_noise": 0.0, "threads": 3}, boom)
    assert row["status"] == "failed" and "trainer failed" in row["error"]
    assert torch.get_num_threads() == 2


# -- timeseries #3: a recipe that cannot act on the data -----------------------------------------------------


def test_no_step_of_any_arm_can_act_refused_before_any_run(tmp_path: Path) -> None:
    ds = _arrays(tmp_path)
    cfg = {"dataset": {"path": str(ds)}, "seeds": 2, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
           "design": {"mode": "leave_one_out", "recipe": {"audio": [NOISE, GAIN]}}}
    with pytest.raises(RecipeError, match=r"no step of any arm's recipe can act on .*ds \(section 'audio' \(noise, "
                                          r"gain\) has no effect: .*ds has no audio"):
        run(cfg, tmp_path / "abl", workers=1, plots=False, progress=False, on_warning=lambda m: None)
    assert not (tmp_path / "abl").exists()  # refused before the folder was made
    # a train_fn too (the runs would happen in this process)
    with pytest.raises(RecipeError, match="no step of any arm's recipe can act"):
        run(cfg, tmp_path / "abl", train_fn=_same_every_arm, plots=False, progress=False, on_warning=lambda m: None)


def test_cli_exits_2_when_no_step_can_act(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    ds = _arrays(tmp_path)
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(
        {"dataset": {"path": str(ds)}, "seeds": 2,
         "design": {"mode": "leave_one_out", "recipe": {"image": [{"op": "hflip", "p": 0.5}]}}}), encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "mmdata", "ablate", str(tmp_path / "ab.yaml"), "--out", str(tmp_path / "o"),
                        "--trainer", "mmdata.ablate.testing:synthetic_train"], capture_output=True, text=True,
                       env={**os.environ, "MMDATA_PROGRESS": "off"}, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "no step of any arm's recipe can act" in p.stderr and "has no image" in p.stderr


def test_arm_that_cannot_act_is_said_before_the_runs_and_named_in_the_report(tmp_path: Path) -> None:
    ds = _arrays(tmp_path, text=True)
    cfg = {"dataset": {"path": str(ds)}, "seeds": 2,
           "design": {"mode": "leave_one_out", "recipe": {"seed": 0, "text": [TYPO], "audio": [NOISE]}}}
    said: list[str] = []
    s = run(cfg, tmp_path / "abl", train_fn=_same_every_arm, plots=False, progress=False, on_warning=said.append)
    before = [m for m in said if "'-audio.noise' only changes what cannot act on" in m]
    assert len(before) == 1, said
    assert "recipe section 'audio' (noise) has no effect: " in before[0] and "has no audio (it has text)" in before[0]
    # the tie is put down to the data, not to the trainer (which applied the recipe)
    w = [m for m in s["warnings"] if m.startswith("arm -audio.noise scored exactly the baseline's value")]
    assert len(w) == 1 and "cannot act on the data" in w[0] and "may ignore" not in w[0], s["warnings"]
    # the arm that can act (it changes text) tied too: that one is still the trainer's to check
    assert any(m.startswith("arm -text.typo scored exactly") and "may ignore" in m for m in s["warnings"])
    # the identity control's baseline draws on text: applicable, its tie is said as before
    assert "cannot act" not in str(s["controls"].get("identity", {}).get("note", ""))


def test_identity_on_a_baseline_that_cannot_act_is_not_applicable_up_front(tmp_path: Path) -> None:
    ds = _arrays(tmp_path, text=True)
    cfg = {"dataset": {"path": str(ds)}, "seeds": 2, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
           "design": {"mode": "explicit", "baseline": {"audio": [NOISE]},
                      "arms": {"typo": {"audio": [NOISE], "text": [TYPO]}}}}
    ab = load_ablation(cfg)
    assert [a.name for a in ab.arms] == ["baseline", "identity"] or "identity" in [a.name for a in ab.arms]
    assert ab.identity_note and "the baseline's recipe cannot act on the data" in ab.identity_note
    assert "section 'audio' (noise) has no effect" in ab.identity_note
    assert ab.outside_holm == ("identity",)
    assert set(inert_arms(ab)) == {"identity"}
    assert any(m.startswith("identity control not applicable: the baseline's recipe cannot act")
               for m in design_warnings(ab))


def test_a_url_or_named_dataset_is_not_read_here(tmp_path: Path) -> None:
    cfg = {"dataset": {"path": "s3://bucket/ds"}, "seeds": 2,
           "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
           "design": {"mode": "leave_one_out", "recipe": {"audio": [NOISE, GAIN]}}}
    assert inert_arms(load_ablation(cfg, import_entry=False)) == {}


# -- timeseries #8b: the figures' footer ---------------------------------------------------------------------


def test_all_ties_leaves_no_lone_fragment_under_the_figures(tmp_path: Path, figures: dict[str, Any]) -> None:
    seen = figures
    ds = _arrays(tmp_path, text=True)
    cfg = {"dataset": {"path": str(ds)}, "seeds": 2, "controls": {"identity": False},  # the last arm drawn ties
           "design": {"mode": "leave_one_out", "recipe": {"seed": 0, "text": [TYPO], "audio": [NOISE]}}}
    run(cfg, tmp_path / "abl", train_fn=_same_every_arm, progress=False, on_warning=lambda m: None)
    for name in ("forest.png", "paired.png"):
        texts = [t.get_text() for t in seen[name].texts]  # the figure's own texts: the footnote is one
        assert not any(t.lstrip().startswith(";") for t in texts), (name, texts)
    beside = [t.get_text() for ax in seen["forest.png"].axes for t in ax.texts]
    assert any(t.endswith("; all ties") for t in beside), beside  # still said beside each tied arm
