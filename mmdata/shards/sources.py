"""Discover samples in raw data: a folder of files sharing stems, class folders, or a manifest.

A *record* is one sample to write: a safe key, the original stem (``source_key``), its members
(extension -> file path or inline bytes), an optional label and an optional fixed split.

Stems may contain dots, spaces and non-ASCII characters. The extension of a file is the longest
*known* suffix (``png``, ``flac``, ``txt``, ``cls``, ``<field>.npy``, ``json``...), so
``café 1.v2 #1.png`` and ``café 1.v2 #1.flac`` form ONE sample with stem ``café 1.v2 #1``. Keys in
shards must not contain dots or ``/`` (WebDataset splits the basename at the first dot), so a stem
that is not ``[A-Za-z0-9_-]+`` is mapped to ``<sanitised>_<8 hex of sha1(stem)>``; the original is
kept in ``index.parquet:source_key``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmdata.codecs import AUDIO_EXTS, IMAGE_EXTS, LABEL_EXTS, TEXT_EXTS
from mmdata.errors import SourceError

KNOWN_EXTS = frozenset((*IMAGE_EXTS, *AUDIO_EXTS, *TEXT_EXTS, *LABEL_EXTS, "json", "npy"))
_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_-]+")
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
RESERVED_COLUMNS = ("key", "text", "label", "split")


@dataclass
class Record:
    """One sample to shard: members map an extension to a file path or to inline bytes."""

    key: str
    source_key: str
    members: dict[str, str | Path | bytes] = field(default_factory=dict)
    label: int | None = None
    split: str | None = None
    #: (size, mtime_ns) per file member, from discovery (saves re-stat'ing for planning and resume)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: extra string columns for the index (e.g. ``aug_params`` written by ``mmdata augment``)
    extra: dict[str, str] = field(default_factory=dict)


def safe_key(stem: str) -> str:
    """Map a source stem to a shard-safe key (unchanged when already safe).

    Example:
        >>> safe_key("0001"), safe_key("café 1.v2")
        ('0001', 'caf_1_v2_f8e6e2ed')
    """
    if _SAFE.match(stem):
        return stem
    base = _UNSAFE_CHAR.sub("_", stem).strip("_") or "k"
    return f"{base}_{hashlib.sha1(stem.encode('utf-8')).hexdigest()[:8]}"


def split_name(filename: str) -> tuple[str, str] | None:
    """Split a filename into (stem, extension) using the longest known suffix; None if unknown.

    Example:
        >>> split_name("café 1.v2 #1.png"), split_name("0001.depth.npy"), split_name("x.zip")
        (('café 1.v2 #1', 'png'), ('0001', 'depth.npy'), None)
    """
    if "." not in filename:
        return None
    stem, ext = filename.rsplit(".", 1)
    low = ext.lower()
    if low not in KNOWN_EXTS or not stem:
        return None
    if low == "npy" and "." in stem:
        stem, fieldname = stem.rsplit(".", 1)
        if not stem:
            return None
        return stem, f"{fieldname}.npy"
    return stem, low


def _read_label(path: str, names: list[str] | None) -> int:
    try:
        with open(path, "rb") as f:  # not Path.read_text: building a Path per sample costs ~10 us
            raw = f.read().decode("utf-8").strip()
    except (UnicodeDecodeError, OSError) as exc:
        raise SourceError(f"label file {path}: cannot read as UTF-8 ({exc})") from exc
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if names is not None and raw in names:
        return names.index(raw)
    raise SourceError(f"label file {path}: expected an integer class id, got {raw[:40]!r}")


def discover_folder(root: Path, labels_from_folders: bool | None = None,
                    label_names: list[str] | None = None) -> tuple[list[Record], list[str] | None, list[dict[str, str]]]:
    """Records from a folder (files sharing a stem in one directory form a sample).

    Returns:
        (records sorted by key, label names or None, skipped files with reasons).
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"source {root} is not a folder or a manifest ({', '.join(MANIFEST_SUFFIXES)})")
    with os.scandir(root) as it:
        top = sorted((e.name, e.is_dir()) for e in it)
    subdirs = [n for n, d in top if d]
    if labels_from_folders is None:
        # class-folder layout: only sub-folders at the top, and no .cls files anywhere
        labels_from_folders = bool(subdirs) and len(subdirs) == len(top) and not any(
            f.endswith(".cls") for _, _, files in os.walk(root) for f in files)
    class_names = sorted(subdirs) if labels_from_folders else None
    groups: dict[tuple[str, str], dict[str, tuple[str, int, int]]] = {}
    skipped: list[dict[str, str]] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        rel_dir = os.path.relpath(folder, root)
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in reversed(entries):
            if e.is_dir():
                stack.append(Path(e.path))
        for e in entries:
            if not e.is_file():
                continue
            fn = e.name
            parts = split_name(fn)
            if parts is None:
                skipped.append({"source": os.path.join(rel_dir, fn), "reason": "unknown extension"})
                continue
            stem, ext = parts
            members = groups.setdefault((rel_dir, stem), {})
            if ext in members or (ext == "jpeg" and "jpg" in members):
                skipped.append({"source": os.path.join(rel_dir, fn), "reason": f"duplicate .{ext} for stem {stem!r}"})
                continue
            st = e.stat()
            members[ext] = (e.path, st.st_size, st.st_mtime_ns)  # str: Path() per file costs ~10 us
    records: list[Record] = []
    names = list(label_names) if label_names else class_names
    for (rel_dir, stem), found in groups.items():
        source_key = stem if rel_dir == "." else f"{rel_dir}/{stem}".replace(os.sep, "/")
        label = None
        for lext in LABEL_EXTS:
            if lext in found:
                label = _read_label(found.pop(lext)[0], names)
                break
        members = {e: v[0] for e, v in found.items()}
        if labels_from_folders:
            cls = source_key.split("/", 1)[0]
            label = class_names.index(cls) if class_names and cls in class_names else None
        if not members and label is None:
            continue
        records.append(Record(safe_key(source_key), source_key, dict(sorted(members.items())), label,
                              stats={e: (v[1], v[2]) for e, v in found.items()}))
    return _finish(records), names, skipped


def _finish(records: list[Record]) -> list[Record]:
    records.sort(key=lambda r: r.key)
    for a, b in zip(records, records[1:]):
        if a.key == b.key:
            raise SourceError(f"two samples map to key {a.key!r}: {a.source_key!r} and {b.source_key!r}")
    return records


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        import math

        return isinstance(v, float) and math.isnan(v)
    except TypeError:
        return False


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV / JSONL / Parquet manifest as dicts."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=False)
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            raise SourceError(f"manifest {path}: unsupported type {suffix!r}; use one of {MANIFEST_SUFFIXES}")
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the file
        raise SourceError(f"manifest {path}: cannot parse ({type(exc).__name__}: {exc})") from exc
    return df.to_dict(orient="records")


def discover_manifest(path: Path, columns: Mapping[str, str] | None = None,
                      label_names: list[str] | None = None) -> tuple[list[Record], list[str] | None, list[dict[str, str]]]:
    """Records from a manifest: one row per sample.

    Columns: ``key`` (optional; default the first path's stem, else the row number), ``text`` (inline
    UTF-8), ``label`` (int id or class name), ``split`` (optional, used as given), and any other
    column holding file paths relative to the manifest's folder (``image``, ``audio``, ``depth``...;
    the member extension comes from the file suffix, ``.npy`` becomes ``<column>.npy``).
    ``columns`` maps field names to differently named columns, e.g. ``{"image": "img_path"}``.
    """
    path = Path(path)
    rows = read_manifest(path)
    base = path.parent.resolve()
    rename = {v: k for k, v in (columns or {}).items()}
    str_labels = sorted({str(r[c]) for r in rows for c in r if rename.get(c, c) == "label"
                         and not _is_missing(r[c]) and not re.fullmatch(r"-?\d+", str(r[c]))})
    names = list(label_names) if label_names else (str_labels or None)
    records: list[Record] = []
    for i, raw in enumerate(rows):
        row = {rename.get(k, k): v for k, v in raw.items()}
        where = f"manifest {path.name} row {i + 1}"
        members: dict[str, Path | bytes] = {}
        first_stem = None
        for col, val in row.items():
            if col in RESERVED_COLUMNS or _is_missing(val) or val == "":
                continue
            p = Path(str(val))
            full = (p if p.is_absolute() else base / p).resolve()
            if not p.is_absolute() and base not in full.parents:
                raise SourceError(f"{where}, column {col!r}: path {val!r} escapes the manifest folder")
            if not full.is_file():
                raise SourceError(f"{where}, column {col!r}: file {val!r} not found (looked at {full})")
            parts = split_name(full.name)
            if parts is None:
                raise SourceError(f"{where}, column {col!r}: {full.name!r} has no known media extension "
                                  f"(expected one of {sorted(KNOWN_EXTS)})")
            ext = f"{col}.npy" if parts[1].endswith("npy") else parts[1]
            members[ext] = full
            first_stem = first_stem or parts[0]
        text = row.get("text")
        if not _is_missing(text) and text is not None:
            members["txt"] = str(text).encode("utf-8")
        label = None
        lab = row.get("label")
        if not _is_missing(lab) and lab != "":
            s = str(lab).strip()
            if re.fullmatch(r"-?\d+(\.0)?", s):
                label = int(float(s))
            elif names and s in names:
                label = names.index(s)
            else:
                raise SourceError(f"{where}, column 'label': {s!r} is not an integer or a known class {names}")
        key_val = row.get("key")
        source_key = str(key_val) if not _is_missing(key_val) and key_val != "" else (first_stem or f"row{i:08d}")
        split = row.get("split")
        split = None if _is_missing(split) or split == "" else str(split)
        records.append(Record(safe_key(source_key), source_key, dict(sorted(members.items())), label, split))
    return _finish(records), names, []


def discover(src: str | Path, *, columns: Mapping[str, str] | None = None, labels_from_folders: bool | None = None,
             label_names: list[str] | None = None) -> tuple[list[Record], list[str] | None, list[dict[str, str]]]:
    """Records from a folder or a manifest file (by suffix)."""
    src = Path(src)
    if src.is_file():
        return discover_manifest(src, columns, label_names)
    if not src.exists():
        raise SourceError(f"source {src} does not exist")
    return discover_folder(src, labels_from_folders, label_names)
