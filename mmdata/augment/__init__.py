"""Augmentation: a deterministic normalize stage (every split) and random per-modality ops with one
seeded parameter plan per sample, keyed by op identity; per-sample CPU kernels (albumentations / cv2 /
audiomentations / nlpaug semantics) and batched torch kernels, cross-modal ops, batch mixing, balance,
YAML recipes, the loader, offline augmentation, previews and the op reference (docs/ops.md).
"""

from __future__ import annotations

from mmdata.augment.base import Op, Param, build_op, op_names, registry
from mmdata.augment.contract import InputError, OpError
from mmdata.augment.recipe import Recipe, load_recipe, normalize_spec, validate_balance

__all__ = ["InputError", "Op", "OpError", "Param", "Recipe", "build_op", "load_recipe", "normalize_spec", "op_names",
           "registry", "validate_balance"]
