"""Augmentation ablations: arms x paired seeds (fixed or adaptive), parallel and resumable runs,
group-sequential paired statistics with Holm across arms, and a report with plots.
``mmdata.ablate.run(recipe, out)`` / ``mmdata ablate RECIPE --out DIR``; across the folds of a k-fold
cross-validation ``mmdata.ablate.gather(folders, out)`` / ``mmdata ablate-folds DIR... --out DIR``.
"""

from __future__ import annotations

from mmdata.ablate.design import Ablation, AblationWarning, Arm, load_ablation
from mmdata.ablate.folds import gather
from mmdata.ablate.runner import Interrupted, run
from mmdata.ablate.stats import Looks, analyze, holm, sign_flip_p

__all__ = ["Ablation", "AblationWarning", "Arm", "Interrupted", "Looks", "analyze", "gather", "holm", "load_ablation",
           "run", "sign_flip_p"]
