"""Replay logs: the params every op drew for every sample, as Parquet (one row per sample x op).

``sample.meta["aug"]`` (per-sample path) or ``batch.meta["aug"]`` (batched path) holds the log;
:meth:`mmdata.augment.Recipe.replay` re-applies it exactly.

Format 2 (written now; schema metadata ``mmdata.replay_log_format = 2``): columns ``key, epoch, seq,
index, id, op, applied, params`` — ``id`` is the op identity (``image.cutout#0``), ``seq`` the entry's
place in the sample's log, ``index`` the op's position (null for normalize ops and composite children).
Format 1 (written before 2026-12-01: no ``id`` column) is still read: its entries are matched to a recipe by ``index``.

A log replays the *params*; the outputs are the ones recorded as long as the ops' kernels compute what they
did then. Logs record :data:`mmdata.augment.recipe.KERNELS` (schema metadata ``mmdata.kernels``), and
:func:`load_log` warns when a log was written with other kernels (or before logs said: mmdata of
2026-12-01 / 02, whose ``logmel`` window and several ops' semantics changed since).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmdata.io import atomic_write_bytes

FORMAT_KEY = b"mmdata.replay_log_format"
KERNELS_KEY = b"mmdata.kernels"


def log_rows(key: str, log: Sequence[Mapping[str, Any]], epoch: int = 0) -> list[dict[str, Any]]:
    """Flatten one sample's log into rows: key, epoch, seq, index, id, op, applied, params (JSON)."""
    return [{"key": key, "epoch": epoch, "seq": j, "index": None if e.get("index") is None else int(e["index"]),
             "id": e.get("id"), "op": e["op"], "applied": bool(e["params"].get("applied")),
             "params": json.dumps(e["params"], sort_keys=True)}
            for j, e in enumerate(log)]


def save_log(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows (from :func:`log_rows`) to a Parquet file atomically (format 2)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmdata.augment.recipe import KERNELS, LOG_FORMAT

    schema = pa.schema([("key", pa.string()), ("epoch", pa.int64()), ("seq", pa.int64()), ("index", pa.int64()),
                        ("id", pa.string()), ("op", pa.string()), ("applied", pa.bool_()), ("params", pa.string())],
                       metadata={FORMAT_KEY: str(LOG_FORMAT).encode(), KERNELS_KEY: str(KERNELS).encode()})
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_log(path: str | Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Read a Parquet log back (format 1 or 2): (key, epoch) -> log entries in op order (ready for
    ``Recipe.replay``)."""
    import warnings

    import pyarrow.parquet as pq

    from mmdata.augment.recipe import KERNELS

    table = pq.read_table(path)
    written = (table.schema.metadata or {}).get(KERNELS_KEY)
    if written != str(KERNELS).encode():
        said = f"kernels {written.decode(errors='replace')}" if written else "an mmdata that did not record its kernels"
        warnings.warn(f"replay log {path} was written by {said} (these are kernels {KERNELS}): Recipe.replay applies "
                      "its params, but ops whose kernels changed since (logmel's window, several ops' semantics in "
                      "2026-12) give other outputs than were recorded", UserWarning, stacklevel=2)
    v2 = "id" in table.column_names
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in table.to_pylist():
        entry = {"op": r["op"], "index": r["index"], "params": json.loads(r["params"])}
        if v2:
            entry["id"], entry["seq"] = r["id"], r["seq"]
        out.setdefault((r["key"], r["epoch"]), []).append(entry)
    for entries in out.values():
        entries.sort(key=lambda e: e["seq"] if v2 else e["index"])
        for e in entries:
            e.pop("seq", None)
    return out
