"""train() and the caller's random state (QA: mmdata embedded in a long-running process).

``train()`` seeds torch's global RNG (``torch.manual_seed(seed)``) and left it so: after a run the
caller's ``torch.initial_seed()`` was the run's seed and its stream had moved. The caller's state is now
given back when the run ends (raised or not); the run itself sees the same stream as before, so its
results do not change. Pre-training and the alignment reference model, called on their own, do the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.loop import caller_rng


def _state() -> tuple[int, torch.Tensor]:
    return torch.initial_seed(), torch.get_rng_state()


def test_train_gives_the_caller_its_rng_state_back(avdigits4: Path) -> None:
    torch.manual_seed(1234)
    torch.rand(3)  # the caller's stream, part way
    seed, state = _state()
    first = train(avdigits4, epochs=1, seed=5, threads=1, eval_robustness=False)
    assert torch.initial_seed() == seed == 1234
    assert torch.equal(torch.get_rng_state(), state)
    # and the run's own results do not depend on the caller's state
    torch.manual_seed(99)
    again = train(avdigits4, epochs=1, seed=5, threads=1, eval_robustness=False)
    assert again["history"] == first["history"] and again["test"] == first["test"]


def test_pretraining_alone_gives_the_caller_its_rng_state_back(avdigits4: Path) -> None:
    from mmdata.train.contrastive import pretrain_encoders
    from mmdata.train.model import FusionModel

    torch.manual_seed(77)
    seed, state = _state()
    model = FusionModel(["image", "audio", "text"], "concat", classes=10)
    after_model = torch.get_rng_state()
    pretrain_encoders(model, avdigits4, epochs=1, batch_size=8, eval_split=None)
    assert torch.initial_seed() == seed
    assert torch.equal(torch.get_rng_state(), after_model) and not torch.equal(after_model, state)


def test_a_failed_run_gives_it_back_too(tmp_path: Path) -> None:
    torch.manual_seed(4321)
    seed, state = _state()
    with pytest.raises(MMDataError):
        train(tmp_path / "missing", epochs=1, seed=5)
    assert torch.initial_seed() == seed
    assert torch.equal(torch.get_rng_state(), state)


def test_nested_blocks_leave_the_outer_stream_alone() -> None:
    torch.manual_seed(3)
    outside = torch.get_rng_state()
    with caller_rng():
        torch.manual_seed(0)
        with caller_rng():
            torch.rand(5)
        inner = torch.get_rng_state()  # the nested block did not rewind the run's stream
        torch.manual_seed(0)
        torch.rand(5)
        assert torch.equal(torch.get_rng_state(), inner)
    assert torch.equal(torch.get_rng_state(), outside)
