"""A synthetic trainer for testing and simulating ablations without training (shipped like lhotse's
test dummies), with the noise structure of real runs.

Its test accuracy is a deterministic function of (recipe, label noise, seed), built like the
accuracy of a real avdigits run (``benchmarks/aa_calibration.py`` measured the components):

* a per-seed effect shared by every arm on that seed (initialisation and data order), sd ``SEED_SD``;
* augmentation-draw effects, sd ``DRAW_SD`` in all: a share ``SHARED_DRAWS`` comes from each op's own
  draws, keyed by the op's identity (``section.op`` and its occurrence) and the augmentation seed, so
  two arms that keep an op share that part (common random numbers); the rest depends on the whole
  recipe and the label noise (removing an op or flipping labels changes the whole training path);
* planted effects per op (``EFFECTS``) and ``-LABEL_NOISE_SLOPE * label_noise``;
* rounding to whole test examples (``TEST_SIZE``), as a real accuracy is.

Options for tests: ``sleep`` (seconds per run), ``probe`` (add the thread count, pid and visible GPU
to the test metrics), ``fail`` (``{"seeds": [...], "arm_has": "image.cutout",
"while_exists": PATH}``: raise for those runs, while that file exists), ``nan_seeds`` (return a NaN
accuracy on those seeds).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from mmdata.rng import derive

#: planted effects in accuracy fractions, keyed by the op identity ("section.op") present in the recipe
EFFECTS = {"image.cutout": 0.02, "audio.noise": -0.015}
SEED_SD = 0.0132  # measured: per-run sd of the seed effect (accuracy fraction)
DRAW_SD = 0.0189  # measured: per-run sd of the augmentation-draw effect
SHARED_DRAWS = 0.6  # share of the draw variance carried by each op's own draws
LABEL_NOISE_SLOPE = 0.3  # accuracy lost per unit of label-noise fraction
TEST_SIZE = 360


def op_ids(recipe: dict[str, Any] | None) -> list[str]:
    """Op identities of a recipe: ``section.op`` (or ``section.<id>``), ``#2`` for a repeat."""
    out, seen = [], {}
    for sec in ("image", "audio", "text", "sample", "batch"):
        for step in (recipe or {}).get(sec, []) or []:
            base = f"{sec}.{step.get('id') or step['op']}"
            seen[base] = seen.get(base, 0) + 1
            out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


def synthetic_train(data: Any, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, sleep: float = 0.0,
                    fail: dict[str, Any] | None = None, nan_seeds: list[int] | None = None, probe: bool = False,
                    threads: int | None = None, **_: Any) -> dict[str, Any]:
    """Metrics like :func:`mmdata.train.train` returns, without training.

    Example:
        >>> a = synthetic_train(None, recipe={"image": [{"op": "cutout"}]}, seed=3)["test"]["accuracy"]
        >>> a == synthetic_train(None, recipe={"image": [{"op": "cutout"}]}, seed=3)["test"]["accuracy"]
        True
    """
    if sleep:
        time.sleep(sleep)
    rec = recipe or {}
    ops = op_ids(rec)
    if (fail and int(seed) in fail.get("seeds", []) and (not fail.get("arm_has") or fail["arm_has"] in ops)
            and (not fail.get("while_exists") or os.path.exists(fail["while_exists"]))):
        raise RuntimeError(f"synthetic failure on seed {seed}")
    aug_seed = int(rec.get("seed", 0))
    acc = 0.83 + derive(seed, 0, "synthetic-seed").normal(0, SEED_SD)
    if ops:
        per_op = DRAW_SD * math.sqrt(SHARED_DRAWS / len(ops))
        acc += sum(derive(seed, aug_seed, f"synthetic-draws:{o}").normal(0, per_op) for o in ops)
        # the rest of the draw effect follows the whole training path: the recipe and the labels
        path = json.dumps([rec, label_noise], sort_keys=True)
        acc += derive(seed, aug_seed, "synthetic-path:" + path).normal(0, DRAW_SD * math.sqrt(1 - SHARED_DRAWS))
    acc += sum(EFFECTS.get(o.split("#")[0], 0.0) for o in ops) - LABEL_NOISE_SLOPE * label_noise
    acc = round(min(1.0, max(0.0, acc)) * TEST_SIZE) / TEST_SIZE
    if nan_seeds and int(seed) in nan_seeds:
        acc = float("nan")
    curve = [acc * (1 - lv * 0.5) for lv in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    test = {"accuracy": acc, "macro_f1": acc - 0.01, "nll": 1 - acc, "ece": 0.05}
    if probe:  # where and how the run ran (tests of the executors)
        import torch

        test.update(torch_threads=torch.get_num_threads(), threads_arg=threads or 0, pid=os.getpid(),
                    visible_gpu=int(os.environ.get("CUDA_VISIBLE_DEVICES", "-1") or -1))
    return {"test": test,
            "robustness": {"missing": {"image": acc - 0.1, "audio": acc - 0.2, "text": acc - 0.03},
                           "corruption": {"image": {"levels": [0, .2, .4, .6, .8, 1], "accuracy": curve, "auc": float(np.mean(curve))}}},
            "best_epoch": 3}


def synthetic_recipe(folder: str | os.PathLike[str], data: str | os.PathLike[str], *, seeds: int = 4,
                     **trainer: Any) -> str:
    """Write ``folder/ab.yaml``: a small ablation of :func:`synthetic_train` (baseline, ``cutout``,
    ``noise``; no controls) on the dataset at ``data``; ``trainer``: its options (``sleep``, ``fail``, ...).

    Example:
        >>> import tempfile
        >>> synthetic_recipe(tempfile.mkdtemp(), "data/", sleep=0.1).endswith("ab.yaml")
        True
    """
    import yaml

    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train", **trainer},
           "seeds": seeds, "design": {"mode": "explicit", "baseline": None,
                                      "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]},
                                               "noise": {"audio": [{"op": "noise", "p": 0.5}]}}},
           "controls": {"identity": False}}
    path = os.path.join(folder, "ab.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(yaml.safe_dump(cfg))
    return path
