"""The dataset's metadata beside its shards: ``dataset.json`` (card), ``index.parquet`` (one row per
sample) and ``shards.parquet`` (one row per shard with sha256). See docs/ARCHITECTURE.md §1.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmdata.errors import ShardError
from mmdata.io import atomic_write_bytes

CARD = "dataset.json"
INDEX = "index.parquet"
SHARDS = "shards.parquet"
FORMAT = "mmdata/1"

INDEX_SCHEMA_FIELDS = (
    ("key", "string"), ("source_key", "string"), ("split", "string"), ("shard", "string"),
    ("members", "list<string>"), ("sizes", "list<int64>"), ("label", "int64"), ("modalities", "list<string>"),
    ("image_height", "int64"), ("image_width", "int64"), ("image_mode", "string"), ("image_channels", "int64"),
    ("audio_seconds", "float64"), ("audio_sample_rate", "int64"), ("audio_channels", "int64"), ("text_chars", "int64"),
)


def is_dataset(path: str | Path) -> bool:
    """True when ``path`` is a folder with a dataset card."""
    return (Path(path) / CARD).is_file()


def load_card(path: str | Path) -> dict[str, Any]:
    """Read ``dataset.json`` of a dataset folder."""
    p = Path(path) / CARD
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{path}: no {CARD} (not a dataset folder written by `mmdata shard`)") from None
    except json.JSONDecodeError as exc:
        raise ShardError(f"{p}: invalid JSON ({exc})") from exc
    if card.get("format") != FORMAT:
        raise ShardError(f"{p}: unknown format {card.get('format')!r}, expected {FORMAT!r}")
    return card


def write_card(path: str | Path, card: dict[str, Any], *, fsync: bool = True) -> None:
    atomic_write_bytes(Path(path) / CARD, (json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(),
                       fsync=fsync)


def _table_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    # no statistics-dependent metadata changes between runs: the same rows give the same bytes
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


def index_schema(names: Iterable[str] = ()) -> Any:
    """The index's pyarrow schema: the fixed fields, then any other column in ``names`` (e.g.
    ``aug_params``) as a string, sorted by name."""
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
             "list<string>": pa.list_(pa.string()), "list<int64>": pa.list_(pa.int64())}
    extra = sorted(set(names) - {f for f, _ in INDEX_SCHEMA_FIELDS})
    return pa.schema([(f, types[t]) for f, t in INDEX_SCHEMA_FIELDS] + [(f, pa.string()) for f in extra])


def index_table(rows: list[dict[str, Any]] | dict[str, list[Any]]) -> Any:
    """Build the index as a pyarrow Table with :func:`index_schema`, from rows or from columns
    (lists or pyarrow arrays)."""
    import pyarrow as pa

    if isinstance(rows, dict):
        columns = rows
    else:
        columns = {k: [r.get(k) for r in rows] for k in sorted({k for r in rows for k in r})}
    n = len(next(iter(columns.values()), ()))
    schema = index_schema(columns)
    return pa.Table.from_pydict({f.name: columns.get(f.name, [None] * n) for f in schema}, schema=schema)


def concat_index(tables: list[Any]) -> Any:
    """One index table from per-shard ones (extra columns a shard lacks become nulls)."""
    import pyarrow as pa

    schema = index_schema({n for t in tables for n in t.column_names})
    fixed = []
    for t in tables:
        for f in schema:
            if f.name not in t.column_names:
                t = t.append_column(f, pa.nulls(t.num_rows, f.type))
        fixed.append(t.select(schema.names))
    return pa.concat_tables(fixed) if fixed else schema.empty_table()


def write_index(path: str | Path, rows: Any, *, fsync: bool = True) -> None:
    """Write ``index.parquet`` from a pyarrow Table, rows or columns."""
    import pyarrow as pa

    table = rows if isinstance(rows, pa.Table) else index_table(rows)
    atomic_write_bytes(Path(path) / INDEX, _table_bytes(table), fsync=fsync)


def write_shards_table(path: str | Path, rows: list[dict[str, Any]], *, fsync: bool = True) -> None:
    import pyarrow as pa

    schema = pa.schema([("shard", pa.string()), ("split", pa.string()), ("modality", pa.string()),
                        ("sha256", pa.string()), ("members", pa.int64()), ("samples", pa.int64()), ("bytes", pa.int64())])
    atomic_write_bytes(Path(path) / SHARDS, _table_bytes(pa.Table.from_pylist(rows, schema=schema)), fsync=fsync)


def load_index(path: str | Path) -> Any:
    """``index.parquet`` as a pyarrow Table."""
    import pyarrow.parquet as pq

    p = Path(path) / INDEX
    if not p.is_file():
        raise ShardError(f"{path}: no {INDEX}")
    return pq.read_table(p)


def load_shards_table(path: str | Path) -> Any:
    """``shards.parquet`` as a pyarrow Table."""
    import pyarrow.parquet as pq

    p = Path(path) / SHARDS
    if not p.is_file():
        raise ShardError(f"{path}: no {SHARDS}")
    return pq.read_table(p)


def shard_paths(path: str | Path, split: str) -> list[Path]:
    """Absolute shard paths of a split (samples layout), from the card, in order."""
    card = load_card(path)
    try:
        names = card["splits"][split]["shards"]
    except KeyError:
        raise ShardError(f"{path}: no split {split!r}; the card has {sorted(card.get('splits', {}))}") from None
    return [Path(path) / n for n in names]
