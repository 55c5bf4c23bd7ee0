"""mmdata: multimodal (image + audio + text + label) datasets for PyTorch.

Shard raw data into WebDataset tar shards with a Parquet index (:func:`shard`), read them back as
aligned samples (:func:`open_dataset`), batch them with presence masks (:func:`collate`, :func:`loader`),
augment every modality with one seeded plan per sample (:mod:`mmdata.augment`), train a reference
fusion model (:mod:`mmdata.train`) and measure which augmentations help (:mod:`mmdata.ablate`).

Everything but the error types is imported lazily, so ``import mmdata`` (and shard-writer worker
processes, the CLI) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from mmdata.errors import BusyError, MMDataError, RecipeError, ShardError, SourceError

__version__ = "0.1.0"  # the one version: pyproject.toml reads it (dynamic, [tool.setuptools.dynamic])

# public name -> "module:attribute", resolved on first access
_LAZY = {
    "Sample": "mmdata.types:Sample",
    "Batch": "mmdata.types:Batch",
    "collate": "mmdata.types:collate",
    "uncollate": "mmdata.types:uncollate",
    "shard": "mmdata.shards.writer:shard",
    "ShardWarning": "mmdata.shards.writer:ShardWarning",
    "TooManySkipped": "mmdata.shards.writer:TooManySkipped",
    "add_modality": "mmdata.shards.columns:add_modality",
    "open_dataset": "mmdata.shards.reader:open_dataset",
    "ShardDataset": "mmdata.shards.reader:ShardDataset",
    "blend": "mmdata.shards.blend:blend",
    "BlendDataset": "mmdata.shards.blend:BlendDataset",
    "inspect": "mmdata.shards.inspect:inspect",
    "verify": "mmdata.shards.verify:verify",
    "loader": "mmdata.augment.loader:loader",
    "Loader": "mmdata.augment.loader:Loader",
    "load_recipe": "mmdata.augment.recipe:load_recipe",
    "to_hf": "mmdata.interop.hf:to_hf",
}

# subpackages reachable as attributes without their own import (``mmdata.train.train(...)``)
_SUBPACKAGES = ("ablate", "augment", "datasets", "interop", "shards", "testing", "train")

__all__ = ["BusyError", "MMDataError", "RecipeError", "ShardError", "SourceError", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        if name in _SUBPACKAGES:
            return importlib.import_module(f"mmdata.{name}")
        raise AttributeError(f"module 'mmdata' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (``dir(mmdata)``, tab completion): the exported names, lazily imported ones too, the
    subpackages and the module's dunders; not what the module imports for itself (``Any``, ``importlib``)."""
    return sorted({*__all__, *_SUBPACKAGES, "errors", *_submodules(globals(), __name__),
                   *(n for n in globals() if n.startswith("__"))})


def _submodules(names: dict[str, Any], package: str) -> list[str]:
    """The submodules of ``package`` already imported (``mmdata.lightning``, ``mmdata.codecs``): Python binds
    each on the package once it is imported, and tab completion offered them (review of QA30)."""
    import types

    return [n for n, v in names.items() if isinstance(v, types.ModuleType) and v.__name__ == f"{package}.{n}"]
