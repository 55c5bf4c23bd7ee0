"""Fixtures shared by the ablation tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The report's figures by file name, as drawn (Figure.savefig recorded, then called)."""
    from matplotlib.figure import Figure

    seen: dict[str, Any] = {}
    save = Figure.savefig

    def record(self: Figure, fname: Any, *a: Any, **kw: Any) -> Any:
        seen[Path(str(fname)).name] = self
        return save(self, fname, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen
