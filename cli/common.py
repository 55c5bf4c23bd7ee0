"""Shared typer parameter aliases and output helpers for the command modules."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

console = Console()

DataDir = Annotated[Path, typer.Argument(help="A dataset folder written by `mmdata shard` (or a shard pattern).")]
DataUrl = Annotated[str, typer.Argument(help="A dataset folder written by `mmdata shard`: a path, or an fsspec URL "
                                             "(s3://bucket/ds; credentials and endpoint from the environment).")]
OutDir = Annotated[Path, typer.Argument(help="Output folder (created).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed: same input + seed -> same bytes / params / metrics.")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel worker processes.")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this machine) or ray (Ray tasks on a cluster; "
                                                            "pip install 'mmdata\\[ray]'; see docs/scale.md).")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="With --executor ray: the cluster (auto, HOST:PORT, "
                                                                 "ray://HOST:PORT); default: RAY_ADDRESS or a local Ray.")]


@contextmanager
def terminated_as_exit() -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job, ``kill``) ends the command like an exception would: the
    ``finally`` blocks run (an atomic write removes its temp file, DataLoader workers are ended) and the
    exit code is 143 (128 + 15), instead of dying mid-write (``.predictions.parquet.XXXX.tmp`` was left
    in ``--out``). Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def load_pandas_for_arrow() -> None:
    """Import pandas and pyarrow's pandas layer now, at the start of a command that writes Parquet.

    pyarrow imports pandas on its first conversion of Python values (``pa.array``, ``pa.table``,
    ``Table.from_pylist``: the first shard a job records, the first ``runs.parquet`` or predictions
    it writes) through a lazy shim. A Ctrl-C landing in that import, deep inside a job, could be
    swallowed by the shim (the job ran on) or leave pandas half-imported and pyarrow's shim set to
    "no pandas" for the rest of the process (a traceback, exit 1, from the job's clean-up). Here the
    import is plain Python before the job has written anything, so a Ctrl-C ends the command as at
    any other point. No extra cost for a job that runs: it would import pandas anyway (~0.2-0.3 s);
    a job that fails on its options pays it. Kept out of module imports: ``mmdata --help`` and
    spawned worker processes do not pay it, and the shard reader (DataLoader workers) never needs it.
    """
    try:
        import pandas  # noqa: F401
    except ImportError:  # pyarrow then has no pandas layer to import lazily either
        return
    import pyarrow as pa
    import pyarrow.pandas_compat  # noqa: F401 — the shim's other import

    pa.array([0])  # the shim's first use: with both modules loaded, a dictionary lookup


def print_json(obj: Any) -> None:
    """Print JSON to stdout (plain, no rich markup) for machines."""
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def no_room(exc: OSError, out: Any) -> None:
    """A writing job stopped by a full or read-only disk: an MMDataError (one line, exit 2) saying so; any
    other OSError is left to the caller (it re-raises)."""
    from mmdata.errors import MMDataError
    from mmdata.shards.writer import NO_ROOM

    if exc.errno in NO_ROOM:
        where = f" ({exc.filename})" if exc.filename else ""
        raise MMDataError(f"cannot write into {out}{where}: {exc.strerror}; free space (or write to another folder) "
                          "and rerun the same command to resume (the shards it finished are kept)") from None
