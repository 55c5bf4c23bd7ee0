"""Shared helpers for benchmark scripts (machine description, timing)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs and the last result."""
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def current_runs(folder: Path) -> tuple[Any, list[dict[str, Any]]] | None:
    """(the ablation of ``folder/config.resolved.yaml``, its finished runs): only rows of the folder's
    current configuration (the runner keeps rows of older ones there, unanalysed). None: no ablation there."""
    import yaml

    from mmdata.ablate.design import load_ablation
    from mmdata.ablate.runner import load_runs, prepare_data

    if not (folder / "config.resolved.yaml").exists():
        return None
    ab = load_ablation(yaml.safe_load((folder / "config.resolved.yaml").read_text()))
    fp = prepare_data(ab, folder)[1]
    want = {(a.name, s): ab.run_hash(a, s, fp) for a in ab.arms for s in range(ab.seeds)}
    return ab, [r for r in load_runs(folder) if r["status"] == "ok" and want.get((r["arm"], int(r["seed"]))) == r["config_hash"]]


def rss_kb() -> int:
    """This process's resident set size in KiB (Linux ``/proc``; 0 where it is not there)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
