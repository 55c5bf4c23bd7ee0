"""A synthetic trainer for testing and simulating ablations without training (shipped like lhotse's
test dummies). Its metrics are a deterministic function of (recipe, label noise, seed): a shared
per-seed effect (so pairing matters), per-run noise, and a planted effect per named op.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from mmdata.rng import derive_int

#: planted effects in accuracy fractions, keyed by "section.op" present in the recipe
EFFECTS = {"image.cutout": 0.02, "audio.noise": -0.015}


def synthetic_train(data: Any, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, sleep: float = 0.0,
                    **_: Any) -> dict[str, Any]:
    """Metrics like :func:`mmdata.train.train` returns, without training."""
    if sleep:
        time.sleep(sleep)
    seed_effect = np.random.default_rng(derive_int("seed", seed)).normal(0, 0.03)
    rec = recipe or {}
    ops = [f"{sec}.{s['op']}" for sec in ("image", "audio", "text", "sample") for s in rec.get(sec, [])]
    noise = np.random.default_rng(derive_int("run", seed, json.dumps(rec, sort_keys=True), label_noise)).normal(0, 0.004)
    acc = 0.8 + seed_effect + sum(EFFECTS.get(o, 0.0) for o in ops) - 0.2 * label_noise + noise
    curve = [acc * (1 - lv * 0.5) for lv in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return {"test": {"accuracy": acc, "macro_f1": acc - 0.01, "nll": 1 - acc, "ece": 0.05},
            "robustness": {"missing": {"image": acc - 0.1, "audio": acc - 0.2, "text": acc - 0.03},
                           "corruption": {"image": {"levels": [0, .2, .4, .6, .8, 1], "accuracy": curve, "auc": float(np.mean(curve))}}},
            "best_epoch": 3}
