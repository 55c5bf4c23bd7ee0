"""The dataset's metadata beside its shards: ``dataset.json`` (card), ``index.parquet`` (one row per
sample) and ``shards.parquet`` (one row per shard with sha256). See docs/ARCHITECTURE.md §1.

The readers here take a local folder or a folder at an fsspec URL (``s3://bucket/ds``; each file
fetched whole with ``storage_options``, see mmdata/urls.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
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


def _remote(path: Any) -> bool:
    from mmdata.urls import is_remote

    return is_remote(path)


def _fetch(path: str | Path, name: str, storage_options: dict[str, Any] | None) -> bytes:
    """The file ``name`` of the dataset folder at the URL ``path`` (FileNotFoundError when absent)."""
    from mmdata.urls import filesystem, request_failed

    url = f"{str(path).rstrip('/')}/{name}"
    fs, root = filesystem(str(path).rstrip("/"), storage_options)  # errors name the folder's URL
    p = f"{root.rstrip('/')}/{name}"
    try:
        return fs.cat_file(p)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 — credentials, endpoint, ...: the error names the URL and what to check
        raise request_failed(url, "read it", exc) from None


def is_dataset(path: str | Path, storage_options: dict[str, Any] | None = None) -> bool:
    """True when ``path`` (a folder or an fsspec URL of one) holds a dataset card."""
    if _remote(path):
        from mmdata.urls import call, filesystem

        url = f"{str(path).rstrip('/')}/{CARD}"
        fs, p = filesystem(url, storage_options)
        return bool(call(url, "look for it", fs.isfile, p))
    return (Path(path) / CARD).is_file()


def check_shard_name(path: str | Path, name: Any, what: str = "shard", where: str = CARD) -> str:
    """``name`` (a shard or column-series name from the file ``where`` of the dataset folder
    ``path``: its card or shards table) if it stays inside that folder; a ShardError otherwise (an
    absolute path, ``..``, a URL: dataset files are untrusted input)."""
    if (not isinstance(name, str) or not name or name.startswith(("/", "\\")) or "://" in name or "\\" in name
            or ".." in name.split("/")):
        raise ShardError(f"{path}/{where}: {what} path {name!r} escapes the dataset folder")
    return name


def load_card(path: str | Path, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``dataset.json`` of a dataset folder (a path or an fsspec URL)."""
    return read_card(path, storage_options)[1]


def read_card(path: str | Path, storage_options: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """``dataset.json`` of a dataset folder (a path or an fsspec URL): its bytes as stored and the
    card, checked (UTF-8 JSON of this format)."""
    p = f"{str(path).rstrip('/')}/{CARD}" if _remote(path) else Path(path) / CARD
    try:
        data = _fetch(path, CARD, storage_options) if _remote(path) else p.read_bytes()  # type: ignore[union-attr]
        card = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        if unfinished_job(path, storage_options):
            cmd = unfinished_command(path)
            raise ShardError(f"{path}: no {CARD}: an {cmd} job into this folder did not finish (the card is "
                             f"written last); rerun the same {cmd} command to finish it") from None
        raise ShardError(f"{path}: no {CARD} (not a dataset folder written by `mmdata shard`)") from None
    except NotADirectoryError:  # a shard (or any file) given where the folder is expected
        raise ShardError(f"{path}: not a dataset folder (a file; a dataset folder holds {CARD}, {INDEX} and "
                         f"{SHARDS}); bare WebDataset shards are read with "
                         f"mmdata.open_dataset({str(path)!r})") from None
    except IsADirectoryError:
        raise ShardError(f"{p}: a folder, expected the dataset card (a JSON file)") from None
    except OSError as exc:  # permissions, I/O errors: named, not a traceback
        raise ShardError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ShardError(f"{p}: not UTF-8 ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ShardError(f"{p}: invalid JSON ({exc})") from exc
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        found = card.get("format") if isinstance(card, dict) else f"a JSON {type(card).__name__}"
        raise ShardError(f"{p}: unknown format {found!r}, expected {FORMAT!r}")
    return data, card


def unfinished_job(path: str | Path, storage_options: dict[str, Any] | None) -> bool:
    """Whether a folder without a card holds what an unfinished ``mmdata shard`` job leaves: its resume
    journal, or the index / shards table of a dataset whose card it removed before rewriting it."""
    from mmdata.shards.journal import NAME

    names = (NAME, INDEX, SHARDS)
    try:
        if _remote(path):
            from mmdata.urls import filesystem

            fs, root = filesystem(str(path).rstrip("/"), storage_options)
            return any(fs.exists(f"{root.rstrip('/')}/{n}") for n in names)
        return any((Path(path) / n).exists() for n in names)
    except Exception:  # noqa: BLE001 - only chooses the message; the caller raises either way
        return False


def unfinished_command(path: str | Path) -> str:
    """The command whose job left ``path`` unfinished, from the note in its lock file (a job killed, failed
    or interrupted with its resume journal left keeps it): `` `mmdata shard` `` or `` `mmdata augment` ``;
    both when there is no note (a folder copied without its hidden files)."""
    from mmdata.shards.journal import LOCK

    try:
        note = "" if _remote(path) else (Path(path) / LOCK).read_text(encoding="utf-8", errors="replace")
    except OSError:
        note = ""
    for cmd in ("mmdata augment", "mmdata shard"):
        if cmd in note:
            return f"`{cmd}`"
    return "`mmdata shard` (or `mmdata augment`)"


def dataset_fields(card: dict[str, Any] | None, modalities: Sequence[str] | None = None) -> tuple[str, ...]:
    """The fields a dataset card lists (its modalities, label included, and added series), in card order;
    only the requested ``modalities`` when given. Empty for bare shards (no card).

    Example:
        >>> dataset_fields({"modalities": {"image": {}, "label": {}}, "fields": ["depth"]}, ["label", "depth"])
        ('label', 'depth')
    """
    card = card or {}
    names = dict.fromkeys([*(card.get("modalities") or {}), *(card.get("fields") or [])])
    return tuple(n for n in names if modalities is None or n in modalities)


def card_bytes(card: dict[str, Any]) -> bytes:
    """``dataset.json`` as written (sorted keys: the same card gives the same bytes)."""
    return (json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_card(path: str | Path, card: dict[str, Any], *, fsync: bool = True) -> None:
    atomic_write_bytes(Path(path) / CARD, card_bytes(card), fsync=fsync)


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


def index_bytes(rows: Any) -> bytes:
    """``index.parquet`` as written, from a pyarrow Table, rows or columns."""
    import pyarrow as pa

    return _table_bytes(rows if isinstance(rows, pa.Table) else index_table(rows))


def write_index(path: str | Path, rows: Any, *, fsync: bool = True) -> None:
    """Write ``index.parquet`` from a pyarrow Table, rows or columns."""
    atomic_write_bytes(Path(path) / INDEX, index_bytes(rows), fsync=fsync)


def shards_table_bytes(rows: list[dict[str, Any]]) -> bytes:
    """``shards.parquet`` as written, from one dict per shard."""
    import pyarrow as pa

    schema = pa.schema([("shard", pa.string()), ("split", pa.string()), ("modality", pa.string()),
                        ("sha256", pa.string()), ("members", pa.int64()), ("samples", pa.int64()), ("bytes", pa.int64())])
    return _table_bytes(pa.Table.from_pylist(rows, schema=schema))


def write_shards_table(path: str | Path, rows: list[dict[str, Any]], *, fsync: bool = True) -> None:
    atomic_write_bytes(Path(path) / SHARDS, shards_table_bytes(rows), fsync=fsync)


def _parquet(path: str | Path, name: str, storage_options: dict[str, Any] | None) -> Any:
    """What ``pyarrow.parquet`` opens for the file ``name`` of a dataset folder (a path or an fsspec URL)."""
    if _remote(path):
        import pyarrow as pa

        try:
            return pa.BufferReader(_fetch(path, name, storage_options))
        except FileNotFoundError:
            raise ShardError(f"{path}: no {name}") from None
    p = Path(path) / name
    if not p.is_file():
        raise ShardError(f"{path}: no {name}")
    return p


def _read_parquet(path: str | Path, name: str, storage_options: dict[str, Any] | None,
                  columns: list[str] | None = None, require: Sequence[str] = (), **kw: Any) -> Any:
    """The Parquet file ``name`` of a dataset folder as a pyarrow Table (all columns unless ``columns``);
    a ShardError naming the file when it is absent, is not Parquet (garbage, truncated) or lacks one of
    ``columns`` or ``require``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = _parquet(path, name, storage_options)
    where = f"{str(path).rstrip('/')}/{name}"
    try:
        # one file: ParquetFile skips the dataset discovery of read_table (a fixed ~0.5 ms per open)
        pf = pq.ParquetFile(src, read_dictionary=kw.pop("read_dictionary", None))
        have = pf.schema_arrow.names
        missing = [c for c in dict.fromkeys([*(columns or ()), *require]) if c not in have]
        if missing:
            raise ShardError(f"{where}: no column {missing[0]!r}" + (f" (nor {missing[1:]})" if missing[1:] else "")
                             + f"; it has {have}, expected the columns mmdata writes")
        return pf.read(columns=columns, **kw)
    except (pa.ArrowException, OSError) as exc:  # ArrowInvalid: not Parquet; OSError: truncated or unreadable
        raise ShardError(f"{where}: not a readable Parquet file: {exc}") from None


def load_index(path: str | Path, columns: list[str] | None = None, read_dictionary: list[str] | None = None,
               storage_options: dict[str, Any] | None = None, require: Sequence[str] = ()) -> Any:
    """``index.parquet`` as a pyarrow Table (only ``columns`` when given: the reader needs five of them;
    ``read_dictionary`` columns come dictionary-encoded, as Parquet stores them; ``require``: columns
    that must be there when every column is read).

    Raises:
        ShardError: naming the file when it is missing, not readable Parquet, or lacks one of ``columns``
            or ``require``.
    """
    return _read_parquet(path, INDEX, storage_options, columns, require, read_dictionary=read_dictionary,
                         use_threads=False)


def load_shards_table(path: str | Path, storage_options: dict[str, Any] | None = None) -> Any:
    """``shards.parquet`` as a pyarrow Table.

    Raises:
        ShardError: naming the file when it is missing, not readable Parquet, or lacks a column
            ``verify`` and ``inspect`` read (``shard``, ``split``, ``sha256``, ``members``, ``bytes``).
    """
    return _read_parquet(path, SHARDS, storage_options, require=("shard", "split", "sha256", "members", "bytes"))


def shard_paths(path: str | Path, split: str) -> list[Path]:
    """Absolute shard paths of a split (samples layout), from the card, in order."""
    card = load_card(path)
    try:
        names = card["splits"][split]["shards"]
    except KeyError:
        raise ShardError(f"{path}: no split {split!r}; the card has {sorted(card.get('splits', {}))}") from None
    return [Path(path) / n for n in names]
