"""The reference fusion trainer: encoders, fusions (docs/fusions.md), training loop, evaluation, DDP.

``mmdata.train.train(data, fusion="concat", ...)`` or ``mmdata train DATA --fusion concat`` or
``torchrun --nproc_per_node 2 -m mmdata.train DATA ...``.
"""

from __future__ import annotations

from mmdata.train.fusions import FUSIONS
from mmdata.train.loop import TrainWarning, train
from mmdata.train.model import FusionModel

__all__ = ["FUSIONS", "FusionModel", "TrainWarning", "train"]
