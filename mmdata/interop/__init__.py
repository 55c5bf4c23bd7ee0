"""Interoperability with the clients people already use: Lightning, Hugging Face ``datasets``, torchdata.

Each module imports its client lazily and, when it is missing, raises an ImportError naming the
optional extra that installs it (:func:`mmdata.errors.install_hint`: ``pip install -e '.[lightning]'`` in a clone,
or the wheel with ``[hf]``; mmdata is not on PyPI).

* :mod:`mmdata.interop.lightning` — ``DataModule`` (also importable as ``mmdata.lightning``).
* :mod:`mmdata.interop.hf` — ``shard_hf`` (reached through :func:`mmdata.shard`) and :func:`mmdata.to_hf`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mmdata.errors import install_hint


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install.

    Example:
        >>> require("json", "hf", "json support").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the {module.split('.')[0]!r} package, which is not installed: "
                          f"{install_hint(extra)}") from exc
