"""The versions of the software a result depends on, as ``metrics.json`` (``versions``) and an ablation's
``env.json`` (``libraries``) record them: a collaborator whose figures differ in the last digits, or whose
``index.parquet`` bytes differ (pyarrow writes its version into the file's footer), can see what differs.

Read from the installed distributions' metadata (nothing is imported); one not installed is left out."""

from __future__ import annotations

import platform
from importlib import metadata

#: the distributions that decode, augment, write or train: those whose versions change bytes or figures
DISTRIBUTIONS = ("mmdata", "torch", "numpy", "pyarrow", "pillow", "opencv-python-headless", "opencv-python",
                 "soundfile", "albumentations", "audiomentations", "nlpaug", "scipy")


def software() -> dict[str, str]:
    """Python's version and each installed distribution of :data:`DISTRIBUTIONS`' version.

    Example:
        >>> v = software()
        >>> sorted(k for k in ("python", "mmdata", "torch", "pyarrow") if k in v)
        ['mmdata', 'pyarrow', 'python', 'torch']
    """
    found = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
