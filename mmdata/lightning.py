"""``mmdata.lightning``: the Lightning DataModule (optional extra ``lightning``: ``pip install -e '.[lightning]'``
in a clone, or ``pip install "<wheel>[lightning]"``; README: Install).

Example:
    >>> from mmdata.lightning import DataModule  # doctest: +SKIP
"""

from __future__ import annotations

from mmdata.interop.lightning import EVEN_BATCHES, DataModule, EpochLoader, EvenLoader, train_epoch

__all__ = ["EVEN_BATCHES", "DataModule", "EpochLoader", "EvenLoader", "train_epoch"]
