"""Shared fixtures: tiny real media folders built in tmp dirs (see mmdata.testing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # the suite runs 2 pytest workers on 2 cores: keep torch from oversubscribing
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def sample_folder(tmp_path: Path) -> Path:
    """12 samples (PNG + FLAC + TXT + CLS, some audio/text missing) sharing stems."""
    from mmdata.testing import make_sample_folder

    return make_sample_folder(tmp_path / "raw", n=12)
