"""QA: the zero-padding warning told the user to call ``mmdata.train(max_seconds=...)``, but
``mmdata.train`` is a module; the call is ``mmdata.train.train(max_seconds=...)``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mmdata
from mmdata.train import train


def test_the_padding_warning_names_a_call_that_exists(messy: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(messy, epochs=1, batch_size=16, threads=1, eval_robustness=False, modalities=["audio"])
    (msg,) = [str(w.message) for w in caught if "zero-padded" in str(w.message)]
    calls = re.findall(r"(mmdata(?:\.\w+)+)\(max_seconds=\.\.\.\)", msg)
    assert calls == ["mmdata.train.train"], msg
    obj = mmdata
    for part in calls[0].split(".")[1:]:
        obj = getattr(obj, part)
    assert callable(obj)
