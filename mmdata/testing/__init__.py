"""Generated test data shipped in the library (like lhotse's dummies): tiny real media
(:mod:`mmdata.testing.media`), a user's messy folder with its ground truth
(:mod:`mmdata.testing.messy`), hostile shards, byte by byte (:mod:`mmdata.testing.hostile`),
processes started as a shell starts them (:mod:`mmdata.testing.procs`), and the augmentation op harness
:func:`check_op` (:mod:`mmdata.testing.ops`; docs/extending.md).

Everything is a pure function of its arguments, so tests built on it are deterministic.
"""

from __future__ import annotations

from typing import Any

from mmdata.testing.media import (CLASS_NAMES, audio_bytes, image_bytes, long_audio_bytes, make_class_folders,
                                  make_sample_folder, shard_lossy, shard_odd_names, text_for)
from mmdata.testing.messy import (MessyFolder, Truth, make_messy_folder, shard_folds, shard_meta_column,
                                  shard_target_dataset, truth_table,
                                  write_manifest)

_OPS = ("check_op", "op_samples", "restored_registry")


def __getattr__(name: str) -> Any:
    if name in _OPS:  # imported on first use: mmdata.testing's media helpers need no torch
        from mmdata.testing import ops

        return getattr(ops, name)
    raise AttributeError(f"module 'mmdata.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public helpers (``dir(mmdata.testing)``, tab completion), the lazily imported ones too, and the
    dunders; not what the package imports for itself (``Any``, ``annotations``)."""
    from mmdata import _submodules

    return sorted({*__all__, *_submodules(globals(), __name__), *(n for n in globals() if n.startswith("__"))})


__all__ = ["CLASS_NAMES", "MessyFolder", "Truth", "audio_bytes", "check_op", "image_bytes", "long_audio_bytes",
           "make_class_folders", "make_messy_folder", "make_sample_folder", "op_samples", "restored_registry",
           "shard_folds", "shard_lossy", "shard_meta_column", "shard_odd_names", "shard_target_dataset", "text_for", "truth_table", "write_manifest"]
