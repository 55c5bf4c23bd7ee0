"""Augmentation ablations: arms x paired seeds, parallel and resumable runs, paired statistics,
report with plots. ``mmdata.ablate.run(recipe, out)`` / ``mmdata ablate RECIPE --out DIR``.
"""

from __future__ import annotations

from mmdata.ablate.design import Ablation, Arm, load_ablation
from mmdata.ablate.runner import run
from mmdata.ablate.stats import compare, holm, paired, sign_flip_p

__all__ = ["Ablation", "Arm", "compare", "holm", "load_ablation", "paired", "run", "sign_flip_p"]
