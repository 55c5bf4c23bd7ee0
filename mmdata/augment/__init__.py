"""Augmentation: per-modality ops with one seeded parameter plan per sample, per-sample CPU kernels
(albumentations / audiomentations / nlpaug semantics) and batched torch kernels, cross-modal ops,
batch mixing, balance, YAML recipes, the loader, offline augmentation and previews.
"""

from __future__ import annotations

from mmdata.augment.base import Op, Param, build_op, op_names, registry
from mmdata.augment.recipe import Recipe, load_recipe, validate_balance

__all__ = ["Op", "Param", "Recipe", "build_op", "load_recipe", "op_names", "registry", "validate_balance"]
