"""Replay logs: the params every op drew for every sample, as Parquet (one row per sample x op).

``sample.meta["aug"]`` (per-sample path) or ``batch.meta["aug"]`` (batched path) holds the log;
:meth:`mmdata.augment.Recipe.replay` re-applies it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmdata.io import atomic_write_bytes


def log_rows(key: str, log: Sequence[Mapping[str, Any]], epoch: int = 0) -> list[dict[str, Any]]:
    """Flatten one sample's log into rows: key, epoch, index, op, applied, params (JSON)."""
    return [{"key": key, "epoch": epoch, "index": int(e["index"]), "op": e["op"],
             "applied": bool(e["params"].get("applied")), "params": json.dumps(e["params"], sort_keys=True)}
            for e in log]


def save_log(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows (from :func:`log_rows`) to a Parquet file atomically."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("key", pa.string()), ("epoch", pa.int64()), ("index", pa.int64()), ("op", pa.string()),
                        ("applied", pa.bool_()), ("params", pa.string())])
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_log(path: str | Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Read a Parquet log back: (key, epoch) -> log entries in op order (ready for ``Recipe.replay``)."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in pq.read_table(path).to_pylist():
        out.setdefault((r["key"], r["epoch"]), []).append({"op": r["op"], "index": r["index"], "params": json.loads(r["params"])})
    for entries in out.values():
        entries.sort(key=lambda e: e["index"])
    return out
