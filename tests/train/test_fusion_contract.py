"""A fusion's output is checked (QA): one returning ``(B, classes + 1)`` trained and reported metrics over a
class that does not exist; one without trainable parameters failed with ``element 0 of tensors does not
require grad`` without naming the fusion. Both now stop with the fusion's name and what was expected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from mmdata.errors import MMDataError
from mmdata.train import FusionModel, train
from mmdata.train.fusions import FUSIONS, Fusion, register


class OneTooMany(Fusion):
    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d * len(self.mods), classes + 1)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return self.head(torch.cat([feats[m] for m in self.mods], 1))


class Constant(Fusion):
    """No parameters of its own, and logits that do not depend on the encoders either."""

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return torch.zeros(len(next(iter(present.values()))), self.classes)


class Nothing(Constant):
    uses_encoders = False


class Flat(Fusion):
    def __init__(self, mods, d, classes, low_dims):  # noqa: ANN001
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d * len(self.mods), classes)

    def forward(self, feats, present, low):  # noqa: ANN001, ANN201
        return self.head(torch.cat([feats[m] for m in self.mods], 1)).flatten()


@pytest.fixture
def fusions() -> Iterator[None]:
    before = dict(FUSIONS)
    for name, cls in (("one_too_many", OneTooMany), ("constant", Constant), ("nothing", Nothing), ("flat", Flat)):
        register(name)(cls)
    yield
    FUSIONS.clear()
    FUSIONS.update(before)


def test_logits_of_the_wrong_shape_name_the_fusion_and_the_expected_shape(avdigits4: Path, fusions: None) -> None:
    with pytest.raises(MMDataError, match=r"fusion 'one_too_many' \(.*OneTooMany\) returned logits of shape \(20, 11\) "
                                          r"for a batch of 20; expected \(batch, classes\) = \(20, 10\)"):
        train(avdigits4, fusion="one_too_many", epochs=1, threads=1, eval_robustness=False)
    with pytest.raises(MMDataError, match=r"fusion 'flat' .* returned logits of shape \(200,\) for a batch of 20"):
        train(avdigits4, fusion="flat", epochs=1, threads=1, eval_robustness=False)


def test_a_fusion_without_trainable_parameters_is_named(avdigits4: Path, fusions: None) -> None:
    with pytest.raises(MMDataError, match=r"fusion 'constant': its logits do not depend on any trainable parameter"):
        train(avdigits4, fusion="constant", epochs=1, threads=1, eval_robustness=False)
    with pytest.raises(MMDataError, match=r"fusion 'nothing' \(.*Nothing\) has no trainable parameters and uses no encoders"):
        FusionModel(["image"], "nothing", classes=3)
