"""Run an ablation: every arm on every seed, in parallel worker processes (one thread each), resumable.

Each finished (arm, seed) run is appended to ``DIR/runs.parquet`` right away (rewritten atomically by
the parent), so an interrupted ablation loses no finished run; a rerun skips every (arm, seed) whose
config hash is already there and repeats none. Then the statistics and the report are written.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml

from mmdata.ablate.design import Ablation, load_ablation
from mmdata.io import atomic_write_bytes

METRIC_COLUMNS = ("test_accuracy", "test_macro_f1", "test_nll", "test_ece")


def _flatten(metrics: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {f"test_{k}": float(v) for k, v in metrics["test"].items()}
    rob = metrics.get("robustness") or {}
    for m, acc in (rob.get("missing") or {}).items():
        row[f"missing_{m}_accuracy"] = float(acc)
    for m, c in (rob.get("corruption") or {}).items():
        row[f"robust_{m}_auc"] = float(c["auc"])
        row[f"robust_{m}_curve"] = json.dumps(c["accuracy"])
    row["best_epoch"] = int(metrics.get("best_epoch", -1))
    return row


def _run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: one training run (one thread). Pure function of the task."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    fn = task["train_fn"]
    if fn is None:
        from mmdata.train import train as fn
    t0 = time.perf_counter()
    metrics = fn(task["data"], recipe=task["recipe"], seed=task["seed"], label_noise=task["label_noise"], threads=1, **task["trainer"])
    return {"arm": task["arm"], "seed": task["seed"], "config_hash": task["hash"], "data_fingerprint": task["fingerprint"],
            "wall_s": time.perf_counter() - t0, **_flatten(metrics)}


def prepare_data(ab: Ablation, out: Path) -> tuple[str, str]:
    """The dataset path (building avdigits into DIR/data when named) and its fingerprint."""
    from mmdata.shards.index import is_dataset, load_card

    if "path" in ab.dataset:
        path = Path(ab.dataset["path"])
    else:
        path = out / "data"
        if not is_dataset(path):
            from mmdata.datasets.avdigits import build

            build(path, seed=int(ab.dataset.get("seed", 0)), progress=False, limit=ab.dataset.get("limit"))
    card = load_card(path)
    fp = (card.get("avdigits") or {}).get("content_sha256") or card.get("fingerprint", "")
    return str(path), fp


def load_runs(out: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    p = out / "runs.parquet"
    return pq.read_table(p).to_pylist() if p.exists() else []


def save_runs(out: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: (r["arm"], r["seed"]))
    cols = sorted({k for r in rows for k in r})
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows]), buf)
    atomic_write_bytes(out / "runs.parquet", buf.getvalue())


def environment() -> dict[str, Any]:
    import numpy
    import torch

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import mmdata

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "mmdata": mmdata.__version__, "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "threads_per_run": 1, "git_revision": rev, "deterministic": "CPU runs are bitwise deterministic per seed"}


def run(recipe: str | Path | dict[str, Any], out: str | Path, *, seeds: int | None = None, workers: int | None = None,
        train_fn: Callable[..., dict[str, Any]] | None = None, progress: bool = True, max_runs: int | None = None) -> dict[str, Any]:
    """Run (or resume) an ablation and write runs.parquet, summary.json, report.md and plots to ``out``.

    Args:
        recipe: ablation recipe (path or dict; see :mod:`mmdata.ablate.design`).
        out: output folder.
        seeds: override the recipe's number of seeds.
        workers: parallel processes (default: CPU count), one torch thread each.
        train_fn: the training function (default :func:`mmdata.train.train`); must be picklable for
            ``workers > 1`` (a module-level function).
        max_runs: stop after this many new runs (the rest stays to resume; used by tests and for budgets).

    Returns:
        The summary (also ``out/summary.json``).
    """
    from mmdata.ablate.report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ab = load_ablation(recipe, seeds=seeds)
    data, fingerprint = prepare_data(ab, out)
    atomic_write_bytes(out / "config.resolved.yaml", yaml.safe_dump(ab.resolved(), sort_keys=False).encode())
    atomic_write_bytes(out / "env.json", (json.dumps(environment(), indent=2) + "\n").encode())
    rows = load_runs(out)
    done = {(r["arm"], r["seed"], r["config_hash"]) for r in rows}
    tasks = []
    for s in range(ab.seeds):
        for arm in ab.arms:
            h = ab.run_hash(arm, s, fingerprint)
            if (arm.name, s, h) in done:
                continue
            tasks.append({"arm": arm.name, "seed": s, "hash": h, "fingerprint": fingerprint, "data": data,
                          "recipe": arm.recipe, "label_noise": arm.label_noise, "trainer": ab.trainer, "train_fn": train_fn})
    if max_runs is not None:
        tasks = tasks[:max_runs]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    prog = None
    if progress and tasks:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        prog = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn())
        prog.start()
        prog.add_task(f"ablation runs ({len(done)} already done)", total=len(tasks))

    def finished(row: dict[str, Any]) -> None:
        rows.append(row)
        save_runs(out, rows)
        if prog is not None:
            prog.update(prog.task_ids[0], advance=1)

    try:
        if workers == 1:
            for t in tasks:
                finished(_run_one(t))
        else:
            ctx = mp.get_context("spawn")  # fresh interpreters: no inherited torch threads or locks
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_run_one, t) for t in tasks]
                for f in as_completed(futures):
                    finished(f.result())
    finally:
        if prog is not None:
            prog.stop()
    return write_report(ab, out, rows, fingerprint)


if __name__ == "__main__":  # pragma: no cover
    run(sys.argv[1], sys.argv[2])
