"""NaN logits (QA): ``mmdata train DS --epochs 2 --lr 1e12 --no-robustness`` ended in a raw
``RuntimeError: Class values must be smaller than num_classes`` from evaluate.py's ECE bins, and an ablation
recorded that message for the run. Training now stops with one line saying it diverged, where and why
(exit 2 from the CLI), and evaluation scores non-finite logits as chance and counts them instead of crashing."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.fusions import FUSIONS, Fusion, register

pytestmark = pytest.mark.filterwarnings("ignore::mmdata.ablate.design.AblationWarning")


class NaNFusion(Fusion):
    """A user's fusion with a bug: a NaN in every logit (0/0)."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d * len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        x = self.head(torch.cat([feats[m] for m in self.mods], 1))
        return x * (x - x) / (x - x)


class NaNWithoutImage(Fusion):
    """Fine while the image is there; NaN for a row without it (a division by its presence)."""

    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d * len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        has = present["image"].float()[:, None]
        return self.head(torch.cat([feats[m] for m in self.mods], 1)) * has / has


@pytest.fixture
def fusions() -> Iterator[None]:
    """The two fusions above registered for one test (the bundled list stays as documented)."""
    before = dict(FUSIONS)
    register("nan_test")(NaNFusion)
    register("nan_without_image")(NaNWithoutImage)
    yield
    FUSIONS.clear()
    FUSIONS.update(before)


def test_a_huge_learning_rate_says_training_diverged(avdigits4: Path) -> None:
    with pytest.raises(MMDataError) as exc:
        train(avdigits4, epochs=2, lr=1e12, threads=1, eval_robustness=False)
    said = str(exc.value)
    assert said.startswith("training diverged: ") and "after epoch 0" in said and "lr 1e12 too high?" in said, said
    assert "\n" not in said


def test_the_cli_exits_2_with_one_line(avdigits4: Path, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "train", str(avdigits4), "--epochs",
                          "2", "--lr", "1e12", "--no-robustness", "--threads", "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "training diverged" in res.stderr and "Traceback" not in res.stderr
    assert "Class values must be smaller" not in res.stderr


def test_a_fusion_returning_nan_is_named_with_the_epoch_and_step(avdigits4: Path, fusions: None) -> None:
    with pytest.raises(MMDataError, match=r"training diverged: the loss is NaN at epoch 0, step 0 \(lr 0.002 too high\? .*"
                                          r"or your fusion 'nan_test' returns non-finite logits\)"):
        train(avdigits4, fusion="nan_test", epochs=2, threads=1, eval_robustness=False)


def test_an_ablation_run_records_the_divergence(avdigits4: Path, tmp_path: Path) -> None:
    from mmdata.ablate import run

    cfg = {"dataset": {"path": str(avdigits4)}, "trainer": {"epochs": 1, "lr": 1.0e12, "eval_robustness": False}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"flip": {"image": [{"op": "hflip"}]}}}, "controls": {"identity": False}}
    s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    assert s["runs"]["failed"] == 4
    assert all(f["error"].startswith("MMDataError: training diverged") for f in s["failures"]), s["failures"][0]


def test_evaluation_scores_nonfinite_logits_as_chance_and_counts_them() -> None:
    from mmdata.train.evaluate import Scores

    s = Scores(3)
    logits = torch.tensor([[5.0, 0.0, 0.0], [float("nan"), 0.0, 0.0], [0.0, float("inf"), -float("inf")], [0.0, 5.0, 0.0]])
    s.update(logits, torch.tensor([0, 1, 2, -1]))  # raised "Class values must be smaller than num_classes"
    r = s.result()
    assert s.nonfinite == 2 and s.labelled == 3
    assert r["accuracy"] == pytest.approx(1 / 3)  # the uniform rows predict class 0 (argmax tie): both wrong here
    assert r["nll"] == pytest.approx((-math.log(torch.softmax(logits[0], 0)[0].item()) + 2 * math.log(3)) / 3)
    finite = Scores(3)
    finite.update(logits[[0, 3]], torch.tensor([0, -1]))
    assert finite.nonfinite == 0 and finite.result()["accuracy"] == 1.0


def test_nonfinite_test_logits_are_a_warning_in_the_metrics(avdigits4: Path, fusions: None) -> None:
    """Training and val are fine (every sample has its image); the robustness pass that drops the image gets
    NaN rows: scored as chance and said, not a crash."""
    m = train(avdigits4, fusion="nan_without_image", epochs=1, threads=1, eval_robustness=True)
    assert m["robustness"]["nonfinite"] > 0 and m["robustness"]["missing"]["image"] <= 1.0
    assert any("NaN or infinite" in w and "robustness evaluation" in w for w in m.get("warnings", [])), m.get("warnings")
