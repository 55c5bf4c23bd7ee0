"""``mmdata shard``: raw folders / manifests -> WebDataset tar shards + index + card.

The job is planned up front and deterministically (records sorted by key, seeded stratified split,
shards cut by ``maxcount`` / ``maxsize``), so the same input and options give byte-identical shards
whatever the number of workers. Shards are written atomically by writer threads (processes without the
C module); after each shard the main thread appends a *done marker* (its sha256 and index rows) to
``OUT/.mmdata-journal`` (see journal.py). Re-running
an interrupted job with the same plan skips every shard whose marker and file agree, and rewrites the
rest — nothing is duplicated or lost. The index, shards table and card are written last.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sys
import time
from array import array
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from mmdata.codecs import AUDIO_EXTS, IMAGE_EXTS, TEXT_EXTS, field_of
from mmdata.errors import SourceError
from mmdata.rng import derive
from mmdata.shards import index as idx
from mmdata.shards.journal import Journal
from mmdata.shards.mediainfo import CorruptMedia, audio_info, image_size
from mmdata.shards.sources import Record, discover, read_many
from mmdata.io import file_sha256
from mmdata.shards.tarwrite import TarWriter, _pack

SPLIT_ORDER = ("train", "val", "test")
LAYOUTS = ("samples", "columns")


def parse_split(spec: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """Parse ``"train=0.8,val=0.1,test=0.1"`` (or a dict) into fractions summing to 1.

    Example:
        >>> parse_split("train=0.8,val=0.2")
        {'train': 0.8, 'val': 0.2}
    """
    if spec is None or spec == "":
        return None
    if isinstance(spec, str):
        out: dict[str, float] = {}
        for part in spec.split(","):
            name, sep, val = part.partition("=")
            try:
                out[name.strip()] = float(val)
            except ValueError:
                raise SourceError(f"--split: expected name=fraction pairs like 'train=0.8,val=0.2', got {part!r}") from None
            if not sep or not name.strip():
                raise SourceError(f"--split: expected name=fraction, got {part!r}")
    else:
        out = {str(k): float(v) for k, v in spec.items()}
    total = sum(out.values())
    if any(v < 0 for v in out.values()) or abs(total - 1.0) > 1e-6:
        raise SourceError(f"--split fractions must be >= 0 and sum to 1, got {out} (sum {total:g})")
    return out


def assign_splits(records: list[Record], fractions: dict[str, float] | None, seed: int) -> None:
    """Set ``record.split`` in place: fixed splits stay; the rest are split stratified by label."""
    free = [r for r in records if r.split is None]
    if fractions is None:
        for r in free:
            r.split = "train"
        return
    names = list(fractions)
    by_label: dict[Any, list[Record]] = {}
    for r in free:
        by_label.setdefault(r.label, []).append(r)
    for label in sorted(by_label, key=lambda v: (v is None, v if v is not None else 0)):
        group = by_label[label]
        perm = derive(seed, 0, f"split:{label}", 0).permutation(len(group))
        # cumulative rounding keeps every class's split sizes within one of the exact fractions
        cuts, acc = [], 0.0
        for n in names:
            acc += fractions[n]
            cuts.append(round(acc * len(group)))
        start = 0
        for n, end in zip(names, cuts):
            for j in perm[start:end]:
                group[j].split = n
            start = end


def _stat(r: Record, ext: str) -> tuple[int, int]:
    v = r.members[ext]
    if isinstance(v, bytes):
        return len(v), 0
    if ext not in r.stats:
        st = os.stat(v)
        r.stats[ext] = (st.st_size, st.st_mtime_ns)
    return r.stats[ext]


def _record_size(r: Record) -> int:
    # member bytes + ~2 tar blocks of header/padding each (planning estimate, deterministic)
    return sum(_stat(r, e)[0] + 1024 for e in r.members) + (1024 if r.label is not None else 0)


def plan_shards(records: list[Record], maxcount: int, maxsize: int | None = None) -> list[dict[str, Any]]:
    """Cut each split's records (sorted by key) into shards; returns [{name, split, records}].

    Files are stat'ed for their sizes only when ``maxsize`` is given.
    """
    splits = sorted({r.split for r in records}, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    plan: list[dict[str, Any]] = []
    for split in splits:
        rs = [r for r in records if r.split == split]
        cur: list[Record] = []
        size = 0
        for r in rs:
            rsize = _record_size(r) if maxsize is not None else 0
            if cur and (len(cur) >= maxcount or (maxsize is not None and size + rsize > maxsize)):
                plan.append({"split": split, "records": cur})
                cur, size = [], 0
            cur.append(r)
            size += rsize
        if cur:
            plan.append({"split": split, "records": cur})
    counters: Counter[str] = Counter()
    for shard in plan:
        shard["name"] = f"{shard['split']}-{counters[shard['split']]:06d}.tar"
        counters[shard["split"]] += 1
    return plan


#: index columns filled from member bytes, by the kind of the member's extension
_STAT_COLUMNS = ("image_height", "image_width", "audio_seconds", "audio_sample_rate", "text_chars")


@lru_cache(maxsize=256)
def _layout(exts: tuple[str, ...]) -> tuple[tuple[str, ...], list[str], tuple[tuple[int, str], ...], str]:
    """For one sample's sorted member extensions: (``.ext`` suffixes, modalities, (member index, kind)
    of the members whose header feeds an index column, the same as a ``sample_stats`` plan string)."""
    kinds = ["image" if e in IMAGE_EXTS else "audio" if e in AUDIO_EXTS else "text" if e in TEXT_EXTS else None
             for e in (x.lower() for x in exts)]
    statted = tuple((i, k) for i, k in enumerate(kinds) if k is not None)
    plan = "".join(k[0] if k else "-" for k in kinds)
    return tuple(f".{e}" for e in exts), sorted({field_of(e) for e in exts}), statted, plan


_CHUNK = 64  # samples read and laid out per call: bounds memory to a chunk, not a shard


def _write_task(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: read one shard's records, compute index columns, write its tar(s). Pure function of task.

    Records are processed in chunks of :data:`_CHUNK` samples: their files are read in one call,
    checked (a sample with a corrupt or unreadable member is skipped whole, or raises), and their
    members appended to the shard, so memory holds one chunk, never a whole shard.
    The result carries the shard's index rows as an Arrow table (for the journal and the Parquet
    index), and ``inputs``: a digest of every source file's path, size and mtime, so a resumed job
    can tell whether a finished shard's sources changed since.
    This loop is the per-file cost of sharding: keep per-member work out of it where possible.
    """
    delay = float(os.environ.get("MMDATA_TEST_SHARD_DELAY", "0") or 0)  # test-only: widen the kill window
    if delay:
        time.sleep(delay)
    out = Path(task["out"])
    keys: list[str] = []
    source_keys: list[str] = []
    flat_names: list[str] = []  # members and sizes of all samples, cut by offsets (Arrow list layout)
    flat_sizes: list[int] = []
    offsets = [0]
    labels: list[int | None] = []
    pattern_ids: list[int] = []  # per sample, into `patterns` (its member extensions)
    stat_rows: list[tuple[Any, ...]] = []
    extras: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    inputs = hashlib.sha256()  # digest of the sources' paths, sizes and mtimes (see _current_inputs)
    raise_errors = task["on_error"] == "raise"
    fsync = task.get("fsync", False)
    columns_layout = task["layout"] != "samples"
    if columns_layout:
        writers = {f: TarWriter(out / f / task["name"], fsync=fsync, threaded_hash=task.get("hash_thread", False))
                   for f in task["fields"]}
        per_field_samples = dict.fromkeys(task["fields"], 0)
    else:
        writer = TarWriter(out / task["name"], fsync=fsync, threaded_hash=task.get("hash_thread", False))
    assemble = _pack.assemble if _pack is not None else None
    patterns: dict[tuple[str, ...], int] = {}  # member extensions -> id
    counts: list[int] = []  # samples per pattern id
    try:
        records = task["records"]
        chunks = [records[i:i + _CHUNK] for i in range(0, len(records), _CHUNK)]
        chunk_paths = [[v for rec in c for v in rec[5] if v.__class__ is not bytes] for c in chunks]
        for chunk, paths, (got, meta) in zip(chunks, chunk_paths, map(read_many, chunk_paths)):
            _inputs_update(inputs, paths, meta)
            done = assemble(chunk, [_layout(rec[4]) for rec in chunk], got) if assemble is not None else None
            if done is not None:  # the C loop took the whole chunk (no unreadable file, known headers)
                kept = chunk
            else:
                kept, done = _assemble_python(chunk, got, paths, meta, raise_errors, skipped)
            names_c, datas_c, sizes_c, counts_c, stats_c = done
            for rec in kept:
                pid = patterns.get(rec[4])
                if pid is None:
                    pid = patterns[rec[4]] = len(counts)
                    counts.append(0)
                counts[pid] += 1
                pattern_ids.append(pid)
            keys += [rec[0] for rec in kept]
            source_keys += [rec[1] for rec in kept]
            labels += [rec[2] for rec in kept]
            extras += [rec[3] for rec in kept]
            offsets += list(accumulate(counts_c, initial=offsets[-1]))[1:]
            flat_names += names_c
            flat_sizes += sizes_c
            stat_rows += stats_c
            if columns_layout:
                members_c = iter(zip(names_c, datas_c))
                for rec in kept:
                    for ext in rec[4]:
                        writers[field_of(ext)].add(*next(members_c))
                    for fieldname in _layout(rec[4])[1]:
                        per_field_samples[fieldname] += 1
            else:
                writer.add_many(names_c, datas_c)
        if columns_layout:
            results = []
            for fieldname, tw in writers.items():
                sm = tw.close()
                results.append({"shard": f"{fieldname}/{task['name']}", "modality": fieldname, "sha256": sm.sha256,
                                "members": sm.members, "samples": per_field_samples[fieldname], "bytes": sm.bytes})
        else:
            sm = writer.close()
            results = [{"shard": task["name"], "modality": None, "sha256": sm.sha256, "members": sm.members,
                        "samples": len(keys), "bytes": sm.bytes}]
    except BaseException:
        for tw in (writers.values() if columns_layout else [writer]):
            if tw.summary is None:
                tw.abort()
        raise
    import pyarrow as pa

    n = len(keys)
    off = pa.array(offsets, pa.int32())
    cols: dict[str, Any] = {
        "key": keys, "source_key": source_keys, "split": [task["split"]] * n, "shard": [task["name"]] * n,
        "members": pa.ListArray.from_arrays(off, pa.array(flat_names, pa.string())),
        "sizes": pa.ListArray.from_arrays(off, pa.array(flat_sizes, pa.int64())),
        "label": labels,
        # one list per distinct extension pattern, repeated by id: no per-row Python list
        "modalities": pa.array([_layout(exts)[1] for exts in patterns], pa.list_(pa.string())).take(
            pa.array(pattern_ids, pa.int32())),
    }
    for name, values in zip(_STAT_COLUMNS, zip(*stat_rows) if stat_rows else [()] * len(_STAT_COLUMNS)):
        cols[name] = list(values)
    for name in sorted({k for e in extras if e for k in e}):
        cols[name] = [e.get(name) if e else None for e in extras]
    label_counts: dict[int, int] = {}
    for v in labels:
        if v is not None:
            label_counts[v] = label_counts.get(v, 0) + 1
    return {"name": task["name"], "split": task["split"], "samples": n, "skipped": skipped, "shards": results,
            "patterns": [[list(k), counts[i]] for k, i in patterns.items()], "labels": sorted(label_counts.items()),
            "inputs": inputs.hexdigest(), "rows": idx.index_table(cols)}


def _assemble_python(chunk: list[tuple[Any, ...]], got: list[bytes | None], paths: list[Any], meta: array,
                     raise_errors: bool, skipped: list[dict[str, str]]) -> tuple[list[tuple[Any, ...]], tuple[list, ...]]:
    """What ``_pack.assemble`` returns, for the samples of a chunk that are whole, plus those samples.

    A sample with an unreadable file or a corrupt member is skipped (appended to ``skipped``) or, with
    ``raise_errors``, raises a SourceError naming it. Headers the C parsers know are read in C when
    the module is built; the rest by :mod:`mmdata.shards.mediainfo`.
    """
    fast_stats = _pack.sample_stats if _pack is not None else None
    kept: list[tuple[Any, ...]] = []
    names_c: list[str] = []
    datas_c: list[bytes] = []
    counts_c: list[int] = []
    stats_c: list[tuple[Any, ...]] = []
    reads = iter(got)
    for rec in chunk:
        key, source_key, _, _, exts, values = rec
        suffixes, _, statted, plan = _layout(exts)
        datas = [v if v.__class__ is bytes else next(reads) for v in values]
        h = w = seconds = rate = chars = None
        bad = None
        if None in datas:  # unreadable file (errno in place of the mtime)
            value = values[datas.index(None)]
            err = meta[2 * paths.index(value) + 1]
            bad = f"{value}: [Errno {err}] {os.strerror(err)}"
        elif fast_stats is not None and (st := fast_stats(plan, datas)) is not None:
            h, w, seconds, rate, chars = st  # PNG / JPEG / FLAC / WAV / ASCII, parsed in C
            if seconds is not None:
                seconds = round(seconds, 6)
        else:
            for i, kind in statted:
                data = datas[i]
                try:
                    if kind == "image":
                        h, w = image_size(data)
                    elif kind == "audio":
                        seconds, rate = audio_info(data)
                        seconds = round(seconds, 6)
                    else:
                        chars = len(data) if data.isascii() else len(data.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    bad = f"{exts[i] if values[i].__class__ is bytes else values[i]}: text is not UTF-8 ({exc})"
                    break
                except CorruptMedia as exc:
                    bad = f"{exts[i] if values[i].__class__ is bytes else values[i]}: {exc}"
                    break
        if bad is not None:
            if raise_errors:
                raise SourceError(f"sample {source_key!r}: {bad}")
            skipped.append({"source": source_key, "reason": bad})
            continue
        kept.append(rec)
        names_c += [key + x for x in suffixes]
        datas_c += datas
        counts_c.append(len(datas))
        stats_c.append((h, w, seconds, rate, chars))
    return kept, (names_c, datas_c, [len(d) for d in datas_c], counts_c, stats_c)


def _inputs_update(h: Any, paths: list[Any], meta: array) -> None:
    """Feed (paths, their (size, mtime_ns) / (-1, errno) pairs) to the inputs digest ``h``."""
    try:
        h.update(marshal.dumps(paths, 2))  # byte-exact for str (see _plan_hash), ~4x faster than repr
    except ValueError:  # e.g. Path objects from a custom source
        h.update(repr(paths).encode("utf-8", "surrogateescape"))
    h.update(meta.tobytes())


def _current_inputs(payload: list[tuple[Any, ...]]) -> str:
    """The inputs digest of a planned shard as its files are now (resume: did they change?).

    Must feed the same chunks as :func:`_write_task` does: paths are grouped per :data:`_CHUNK` records.
    """
    h = hashlib.sha256()
    for start in range(0, len(payload), _CHUNK):
        paths = [v for rec in payload[start:start + _CHUNK] for v in rec[5] if v.__class__ is not bytes]
        meta = array("q")
        for v in paths:
            try:
                st = os.stat(v)
            except OSError as exc:
                meta += array("q", (-1, exc.errno or 0))
            else:
                meta += array("q", (st.st_size, st.st_mtime_ns))
        _inputs_update(h, paths, meta)
    return h.hexdigest()


_LABEL_BYTES: dict[int, bytes] = {}


def _payload_record(r: Record) -> tuple[Any, ...]:
    """(key, source_key, label, extra, exts, values): members sorted by extension, the label as ``cls``."""
    if r.label is None:
        members = r.members
    else:
        cls = _LABEL_BYTES.get(r.label)
        if cls is None:
            cls = _LABEL_BYTES[r.label] = str(r.label).encode()
        members = {**r.members, "cls": cls}
    exts = tuple(sorted(members))
    return r.key, r.source_key, r.label, r.extra, exts, tuple([members[e] for e in exts])


def _task_payload(shard: dict[str, Any], records: list[tuple[Any, ...]], out: Path, layout: str, fields: list[str],
                  on_error: str, fsync: bool) -> dict[str, Any]:
    return {
        "out": str(out), "name": shard["name"], "split": shard["split"], "layout": layout, "fields": fields,
        "on_error": on_error, "fsync": fsync, "records": records,
    }


def _plan_hash(plan: list[dict[str, Any]], payloads: dict[str, list[tuple[Any, ...]]], options: dict[str, Any]) -> str:
    """Identity of a job: options and every record's key, label, split, extras and member sources.

    File contents are not hashed here (that would read everything twice); each done marker carries
    its sources' sizes and mtimes instead (see :func:`_current_inputs`). With ``maxsize`` the plan
    depends on file sizes, so they are part of the identity then.
    """
    sized = options.get("maxsize") is not None
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for shard in plan:
        recs = payloads[shard["name"]]
        if any(rec[3] for rec in recs):  # extras: a sorted item list, not a dict in insertion order
            recs = [(*rec[:3], sorted(rec[3].items()), *rec[4:]) for rec in recs]
        item = (shard["name"], shard["split"], recs)
        try:
            # marshal format 2 is a byte-exact serialisation of str / bytes / int / tuple / list (no
            # back-references, no interning flags, so equal values give equal bytes) and ~7x faster
            # than repr. Writing only: marshal never reads anything here.
            h.update(marshal.dumps(item, 2))
        except ValueError:  # a value marshal does not know (e.g. a Path from a custom source)
            h.update(repr(item).encode("utf-8", "surrogateescape"))
        if sized:
            h.update(repr([_record_size(r) for r in shard["records"]]).encode())
    return h.hexdigest()


def _done_ok(out: Path, marker: dict[str, Any], payload: list[tuple[Any, ...]]) -> bool:
    return marker.get("inputs") == _current_inputs(payload) and all(
        (out / s["shard"]).is_file() and file_sha256(out / s["shard"]) == s["sha256"] for s in marker["shards"])


def _marker_bytes(res: dict[str, Any]) -> bytes:
    """A finished shard's done marker: its index rows (Arrow IPC) with sha256, inputs digest and
    counts in the schema metadata."""
    import pyarrow as pa

    meta = json.dumps({k: v for k, v in res.items() if k != "rows"}, separators=(",", ":"))
    rows = res["rows"]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, rows.schema.with_metadata({"mmdata": meta})) as w:
        w.write_table(rows)
    return sink.getvalue().to_pybytes()


def _read_marker(data: bytes) -> dict[str, Any] | None:
    """A done marker back (None when it cannot be read)."""
    import pyarrow as pa

    try:
        rows = pa.ipc.open_file(pa.py_buffer(data)).read_all()
        meta = json.loads(rows.schema.metadata[b"mmdata"])
    except (ValueError, KeyError, TypeError, pa.ArrowException):
        return None
    meta["rows"] = rows.replace_schema_metadata(None)
    return meta


def _make_progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    prog = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), transient=False)
    prog.start()
    prog.add_task("sharding samples", total=total)
    return prog


def shard(
    src: str | Path | Any,
    out: str | Path,
    *,
    maxcount: int = 1000,
    maxsize: int | None = None,
    workers: int = 1,
    split: str | Mapping[str, float] | None = None,
    seed: int = 0,
    layout: str = "samples",
    label_names: list[str] | None = None,
    columns: Mapping[str, str] | None = None,
    labels_from_folders: bool | None = None,
    on_error: str = "skip",
    progress: bool = True,
    name: str | None = None,
    card_extra: Mapping[str, Any] | None = None,
    fsync: bool = False,
) -> dict[str, Any]:
    """Shard raw multimodal data into WebDataset tars with ``index.parquet`` and ``dataset.json``.

    Args:
        src: a folder (files sharing a stem form a sample; nested folders and class folders work),
            a CSV / JSONL / Parquet manifest (see :func:`mmdata.shards.sources.discover_manifest`), or
            a Hugging Face ``datasets.Dataset`` / ``DatasetDict`` / ``save_to_disk`` folder
            (:mod:`mmdata.interop.hf`).
        out: output folder. Re-running into the same folder resumes an interrupted job.
        maxcount: at most this many samples per shard.
        maxsize: also start a new shard before one would exceed this many bytes (default: no limit;
            with a limit every source file is stat'ed up front to plan the cuts).
        workers: parallel writer processes (the output bytes do not depend on it).
        split: ``"train=0.8,val=0.1,test=0.1"`` (stratified by label, seeded); default all ``train``.
            A manifest ``split`` column is used as given.
        seed: seed of the split.
        layout: ``"samples"`` (one tar series) or ``"columns"`` (one series per field, same boundaries).
        label_names: class names (ids index into it); default from class folders / string labels.
        columns: manifest column renames, ``{"image": "img_path"}``.
        labels_from_folders: force (or forbid) the folder-per-class layout; default auto-detect.
        on_error: ``"skip"`` (count corrupt source files in the card and report) or ``"raise"``.
        progress: show a rich progress bar.
        name: dataset name for the card (default: the output folder name).
        card_extra: extra entries merged into ``dataset.json``.
        fsync: flush every shard and metadata file to disk before its atomic rename, so a finished
            job survives a power loss (costs the disk's write time). Without it, writes are atomic
            against a killed job, and a re-run re-checks every finished shard's sha256.

    Returns:
        A report: samples written per split, shards, skipped files with reasons, output path.

    Example:
        >>> import tempfile
        >>> from mmdata.testing import make_sample_folder
        >>> tmp = tempfile.mkdtemp()
        >>> rep = shard(make_sample_folder(tmp + "/raw", n=4), tmp + "/out", progress=False)
        >>> rep["samples"], rep["shards"]
        (4, 1)
    """
    if layout not in LAYOUTS:
        raise SourceError(f"--layout must be one of {LAYOUTS}, got {layout!r}")
    if on_error not in ("skip", "raise"):
        raise SourceError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if maxcount < 1 or (maxsize is not None and maxsize < 1) or workers < 1:
        raise SourceError("maxcount, maxsize and workers must be >= 1")
    from mmdata.interop.hf import is_hf_source, shard_hf  # a Hugging Face Dataset / DatasetDict / save_to_disk folder

    if is_hf_source(src):
        return shard_hf(src, out, **{k: v for k, v in locals().items() if k not in ("src", "out", "is_hf_source", "shard_hf")})
    out = Path(out)
    fractions = parse_split(split)
    records, names, skipped = discover(src, columns=columns, labels_from_folders=labels_from_folders,
                                       label_names=label_names)
    if not records:
        raise SourceError(f"source {src}: no samples found (skipped {len(skipped)} files)")
    return write_records(records, out, maxcount=maxcount, maxsize=maxsize, workers=workers, fractions=fractions,
                         seed=seed, layout=layout, label_names=names, skipped=skipped, on_error=on_error,
                         progress=progress, name=name, card_extra=card_extra, fsync=fsync)


def write_records(records: list[Record], out: str | Path, *, maxcount: int = 1000, maxsize: int | None = None,
                  workers: int = 1, fractions: dict[str, float] | None = None, seed: int = 0, layout: str = "samples",
                  label_names: list[str] | None = None, skipped: list[dict[str, str]] | None = None,
                  on_error: str = "skip", progress: bool = True, name: str | None = None,
                  card_extra: Mapping[str, Any] | None = None, fsync: bool = False) -> dict[str, Any]:
    """Shard prepared records (members as file paths or in-memory bytes); see :func:`shard`.

    Used by :func:`shard` after discovery and by ``mmdata augment`` for generated samples.
    """
    out = Path(out)
    names = label_names
    skipped = list(skipped or [])
    if any(a.key >= b.key for a, b in zip(records, records[1:])):  # discovery returns them sorted
        records = sorted(records, key=lambda r: r.key)
        for a, b in zip(records, records[1:]):
            if a.key == b.key:
                raise SourceError(f"two samples have key {a.key!r}")
    assign_splits(records, fractions, seed)
    plan = plan_shards(records, maxcount, maxsize)
    payloads = {p["name"]: [_payload_record(r) for r in p["records"]] for p in plan}
    layouts = {rec[4] for recs in payloads.values() for rec in recs}
    fields = sorted({field_of(e) for exts in layouts for e in exts})
    options = {"maxcount": maxcount, "maxsize": maxsize, "split": fractions, "seed": seed, "layout": layout,
               "on_error": on_error}
    out.mkdir(parents=True, exist_ok=True)
    journal = Journal(out, _plan_hash(plan, payloads, options), fsync=fsync)
    finished = {m["name"]: m for m in map(_read_marker, journal.done) if m is not None}
    if journal.existed:
        for tmp in out.rglob("*.tar.tmp-*"):  # leftovers of a killed run
            tmp.unlink(missing_ok=True)
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for shard_plan in plan:
        done = finished.get(shard_plan["name"])
        if done is not None and _done_ok(out, done, payloads[shard_plan["name"]]):
            results[shard_plan["name"]] = done
            continue
        todo.append(_task_payload(shard_plan, payloads[shard_plan["name"]], out, layout, fields, on_error, fsync))
    prog = _make_progress(progress, len(records))
    if prog is not None:
        prog.update(prog.task_ids[0], advance=sum(r["samples"] + len(r["skipped"]) for r in results.values()))

    def finish(res: dict[str, Any]) -> None:
        results[res["name"]] = res
        journal.append(_marker_bytes(res))
        if prog is not None:
            prog.update(prog.task_ids[0], advance=res["samples"] + len(res["skipped"]))

    try:
        if workers == 1 or len(todo) <= 1:
            for task in todo:
                task["hash_thread"] = True  # the sha256 runs on the core no other writer uses
                finish(_write_task(task))
        else:
            n = min(workers, len(todo))
            if _pack is not None:
                # Writer threads, not processes: with the C loops the heavy parts of a shard (file
                # reads, sha256, writev) run without the GIL, and threads share warm memory instead
                # of paying for a fork and copy-on-write. Measured on 2 cores: threads 1.2x, processes 1.0x.
                pool: Any = ThreadPoolExecutor(max_workers=n, thread_name_prefix="mmdata-shard")
            else:
                # pure Python: reads hold the GIL, so threads would take turns; use processes
                import multiprocessing as mp

                # fork is cheap; after torch has started threads, spawn is the safe choice
                ctx = mp.get_context("spawn" if "torch" in sys.modules else "fork")
                pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
            with pool:
                for fut in as_completed([pool.submit(_write_task, t) for t in todo]):
                    finish(fut.result())
    finally:
        journal.close()
        if prog is not None:
            prog.stop()
    return _finalize(out, plan, results, names, skipped, options, layout, fields, name, card_extra, journal, fsync)


def _finalize(out: Path, plan: list[dict[str, Any]], results: dict[str, dict[str, Any]], names: list[str] | None,
              skipped: list[dict[str, str]], options: dict[str, Any], layout: str, fields: list[str],
              name: str | None, card_extra: Mapping[str, Any] | None, journal: Journal, fsync: bool) -> dict[str, Any]:
    shard_rows: list[dict[str, Any]] = []
    splits: dict[str, dict[str, Any]] = {}
    codecs: dict[str, set[str]] = {}
    count: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    per_class: Counter[int] = Counter()
    for p in plan:
        res = results[p["name"]]
        skipped = skipped + res["skipped"]
        for s in res["shards"]:
            shard_rows.append({**s, "split": p["split"]})
        sp = splits.setdefault(p["split"], {"samples": 0, "shards": []})
        sp["samples"] += res["samples"]
        sp["shards"].append(p["name"])
        for exts, k in res["patterns"]:
            for ext in exts:
                codecs.setdefault(field_of(ext), set()).add(ext)
                count[field_of(ext)] += k
            patterns["+".join(sorted({field_of(e) for e in exts}))] += k
        per_class.update(dict(res["labels"]))
    rows = idx.concat_index([results[p["name"]]["rows"] for p in plan])
    modalities = {f: {"codecs": sorted(codecs[f]), "count": count[f]} for f in sorted(codecs)}
    num_classes = len(names) if names else (max(per_class) + 1 if per_class else None)
    fingerprint = hashlib.sha256("".join(s["sha256"] for s in shard_rows).encode()).hexdigest()
    card: dict[str, Any] = {
        "format": idx.FORMAT,
        "name": name or out.resolve().name,
        "layout": layout,
        "fields": fields if layout == "columns" else None,
        "modalities": modalities,
        "label_names": names,
        "num_classes": num_classes,
        "splits": splits,
        "counts": {
            "samples": rows.num_rows,
            "per_class": {str(k): v for k, v in sorted(per_class.items())},
            "patterns": dict(sorted(patterns.items())),
        },
        "options": options,
        "skipped": skipped,
        "skipped_count": len(skipped),
        "fingerprint": fingerprint,
    }
    if card_extra:
        card.update(card_extra)
    idx.write_index(out, rows, fsync=fsync)
    idx.write_shards_table(out, shard_rows, fsync=fsync)
    idx.write_card(out, card, fsync=fsync)
    journal.remove()
    return {"out": str(out), "samples": rows.num_rows, "shards": len(plan),
            "splits": {k: v["samples"] for k, v in splits.items()}, "skipped": skipped, "fingerprint": fingerprint}
