"""The reference fusion trainer: encoders, fusions (docs/fusions.md), training loop, evaluation, DDP.

``mmdata.train.train(data, fusion="concat", ...)`` or ``mmdata train DATA --fusion concat`` or
``torchrun --nproc_per_node 2 -m mmdata.train DATA ...``. A run's folder loads back with
``mmdata.train.load_model(DIR)`` (the model, its complete evaluation transform, ``predict``) and is scored on
another dataset with ``mmdata.train.evaluate_run(DIR, DATA)`` (``mmdata evaluate``; classes matched by name); a
submission's predictions file is scored against hidden labels with ``score_predictions`` (docs/benchmark.md).
"""

from __future__ import annotations

from mmdata.train.score_run import evaluate_run
from mmdata.train.fusions import FUSIONS
from mmdata.train.loop import TrainWarning, train
from mmdata.train.model import FusionModel, TrainedModel, load_model
from mmdata.train.submissions import compare_predictions, score_predictions

__all__ = ["FUSIONS", "FusionModel", "TrainWarning", "TrainedModel", "compare_predictions", "evaluate_run", "load_model",
           "score_predictions", "train"]
