"""``mmdata shard``: raw folders / manifests -> WebDataset tar shards + index + card.

The job is planned up front and deterministically (records sorted by key, seeded stratified split,
shards cut by ``maxcount`` / ``maxsize``), so the same input and options give byte-identical shards
whatever the number of workers. Shards are written atomically by worker processes; after each shard
the parent records a *done marker* (its sha256 and index rows) under ``OUT/.mmdata-job/``. Re-running
an interrupted job with the same plan skips every shard whose marker and file agree, and rewrites the
rest — nothing is duplicated or lost. The index, shards table and card are written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from mmdata.codecs import field_of
from mmdata.errors import SourceError
from mmdata.rng import derive
from mmdata.shards import index as idx
from mmdata.shards.mediainfo import CorruptMedia, member_stats
from mmdata.shards.sources import Record, discover
from mmdata.shards.tarwrite import atomic_write_bytes, file_sha256, write_tar

JOB_DIR = ".mmdata-job"
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


def plan_shards(records: list[Record], maxcount: int, maxsize: int) -> list[dict[str, Any]]:
    """Cut each split's records (sorted by key) into shards; returns [{name, split, records}]."""
    splits = sorted({r.split for r in records}, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    plan: list[dict[str, Any]] = []
    for split in splits:
        rs = [r for r in records if r.split == split]
        cur: list[Record] = []
        size = 0
        for r in rs:
            rsize = _record_size(r)
            if cur and (len(cur) >= maxcount or size + rsize > maxsize):
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


def _member_bytes(value: str | Path | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()


def _write_task(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: read one shard's records, compute index stats, write its tar(s). Pure function of task."""
    delay = float(os.environ.get("MMDATA_TEST_SHARD_DELAY", "0") or 0)  # test-only: widen the kill window
    if delay:
        time.sleep(delay)
    out = Path(task["out"])
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    samples: list[tuple[str, list[tuple[str, bytes]]]] = []
    for rec in task["records"]:
        key = rec["key"]
        members: list[tuple[str, bytes]] = []
        stats: dict[str, Any] = {}
        bad = None
        for ext, value in rec["members"]:
            try:
                data = _member_bytes(value)
                stats.update(member_stats(ext, data))
            except (CorruptMedia, OSError) as exc:
                bad = f"{ext if isinstance(value, bytes) else value}: {exc}"
                break
            members.append((ext, data))
        if bad is not None:
            if task["on_error"] == "raise":
                raise SourceError(f"sample {rec['source_key']!r}: {bad}")
            skipped.append({"source": rec["source_key"], "reason": bad})
            continue
        if rec["label"] is not None:
            members.append(("cls", str(rec["label"]).encode()))
        members.sort()
        samples.append((key, members))
        row = {"key": key, "source_key": rec["source_key"], "split": task["split"], "shard": task["name"],
               "members": [f"{key}.{e}" for e, _ in members], "sizes": [len(d) for _, d in members],
               "label": rec["label"], "modalities": sorted({field_of(e) for e, _ in members})}
        row.update(stats)
        row.update(rec.get("extra") or {})
        rows.append(row)
    results = []
    if task["layout"] == "samples":
        s = write_tar(out / task["name"], ((f"{k}.{e}", d) for k, ms in samples for e, d in ms))
        results.append({"shard": task["name"], "modality": None, "sha256": s.sha256, "members": s.members,
                        "samples": len(samples), "bytes": s.bytes})
    else:
        for fieldname in task["fields"]:
            rel = f"{fieldname}/{task['name']}"
            picked = [(k, [(e, d) for e, d in ms if field_of(e) == fieldname]) for k, ms in samples]
            picked = [(k, ms) for k, ms in picked if ms]
            s = write_tar(out / rel, ((f"{k}.{e}", d) for k, ms in picked for e, d in ms))
            results.append({"shard": rel, "modality": fieldname, "sha256": s.sha256, "members": s.members,
                            "samples": len(picked), "bytes": s.bytes})
        for row in rows:
            row["shard"] = task["name"]
    return {"name": task["name"], "split": task["split"], "rows": rows, "skipped": skipped, "shards": results}


def _task_payload(shard: dict[str, Any], out: Path, layout: str, fields: list[str], on_error: str) -> dict[str, Any]:
    return {
        "out": str(out), "name": shard["name"], "split": shard["split"], "layout": layout, "fields": fields,
        "on_error": on_error,
        "records": [{"key": r.key, "source_key": r.source_key, "label": r.label, "extra": r.extra,
                     "members": sorted(r.members.items())} for r in shard["records"]],
    }


def _plan_hash(plan: list[dict[str, Any]], options: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for shard in plan:
        h.update(shard["name"].encode())
        for r in shard["records"]:
            extra = json.dumps(r.extra, sort_keys=True) if r.extra else "{}"  # json.dumps per record is ~5 us
            h.update(f"{r.key}|{r.label}|{r.split}|{extra}".encode())
            for ext, v in sorted(r.members.items()):
                if isinstance(v, bytes):
                    h.update(ext.encode() + hashlib.sha256(v).digest())
                else:
                    size, mtime = _stat(r, ext)
                    h.update(f"{ext}|{v}|{size}|{mtime}".encode())
    return h.hexdigest()


def _done_ok(out: Path, marker: dict[str, Any]) -> bool:
    return all((out / s["shard"]).is_file() and file_sha256(out / s["shard"]) == s["sha256"] for s in marker["shards"])


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
    src: str | Path,
    out: str | Path,
    *,
    maxcount: int = 1000,
    maxsize: int = 1_000_000_000,
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
) -> dict[str, Any]:
    """Shard raw multimodal data into WebDataset tars with ``index.parquet`` and ``dataset.json``.

    Args:
        src: a folder (files sharing a stem form a sample; nested folders and class folders work) or
            a CSV / JSONL / Parquet manifest (see :func:`mmdata.shards.sources.discover_manifest`).
        out: output folder. Re-running into the same folder resumes an interrupted job.
        maxcount: at most this many samples per shard.
        maxsize: start a new shard before a shard would exceed this many bytes.
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
    if maxcount < 1 or maxsize < 1 or workers < 1:
        raise SourceError("maxcount, maxsize and workers must be >= 1")
    out = Path(out)
    fractions = parse_split(split)
    records, names, skipped = discover(src, columns=columns, labels_from_folders=labels_from_folders,
                                       label_names=label_names)
    if not records:
        raise SourceError(f"source {src}: no samples found (skipped {len(skipped)} files)")
    return write_records(records, out, maxcount=maxcount, maxsize=maxsize, workers=workers, fractions=fractions,
                         seed=seed, layout=layout, label_names=names, skipped=skipped, on_error=on_error,
                         progress=progress, name=name, card_extra=card_extra)


def write_records(records: list[Record], out: str | Path, *, maxcount: int = 1000, maxsize: int = 1_000_000_000,
                  workers: int = 1, fractions: dict[str, float] | None = None, seed: int = 0, layout: str = "samples",
                  label_names: list[str] | None = None, skipped: list[dict[str, str]] | None = None,
                  on_error: str = "skip", progress: bool = True, name: str | None = None,
                  card_extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Shard prepared records (members as file paths or in-memory bytes); see :func:`shard`.

    Used by :func:`shard` after discovery and by ``mmdata augment`` for generated samples.
    """
    out = Path(out)
    names = label_names
    skipped = list(skipped or [])
    records = sorted(records, key=lambda r: r.key)
    for a, b in zip(records, records[1:]):
        if a.key == b.key:
            raise SourceError(f"two samples have key {a.key!r}")
    assign_splits(records, fractions, seed)
    plan = plan_shards(records, maxcount, maxsize)
    fields = sorted({field_of(e) for r in records for e in r.members} | ({"label"} if any(r.label is not None for r in records) else set()))
    options = {"maxcount": maxcount, "maxsize": maxsize, "split": fractions, "seed": seed, "layout": layout,
               "on_error": on_error}
    out.mkdir(parents=True, exist_ok=True)
    job = out / JOB_DIR
    plan_id = _plan_hash(plan, options)
    if not (job / "plan.sha").is_file() or (job / "plan.sha").read_text() != plan_id:
        shutil.rmtree(job, ignore_errors=True)
        (job / "done").mkdir(parents=True)
        atomic_write_bytes(job / "plan.sha", plan_id.encode())
    for tmp in out.rglob("*.tar.tmp-*"):  # leftovers of a killed run
        tmp.unlink(missing_ok=True)
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for shard_plan in plan:
        marker = job / "done" / (shard_plan["name"] + ".json")
        if marker.is_file():
            done = json.loads(marker.read_text(encoding="utf-8"))
            if _done_ok(out, done):
                results[shard_plan["name"]] = done
                continue
        todo.append(_task_payload(shard_plan, out, layout, fields, on_error))
    prog = _make_progress(progress, len(records))
    if prog is not None:
        prog.update(prog.task_ids[0], advance=sum(len(r["rows"]) + len(r["skipped"]) for r in results.values()))

    def finish(res: dict[str, Any]) -> None:
        results[res["name"]] = res
        atomic_write_bytes(job / "done" / (res["name"] + ".json"), json.dumps(res, default=str).encode())
        if prog is not None:
            prog.update(prog.task_ids[0], advance=len(res["rows"]) + len(res["skipped"]))

    try:
        if workers == 1 or len(todo) <= 1:
            for task in todo:
                finish(_write_task(task))
        else:
            import multiprocessing as mp

            # fork is cheap; after torch has started threads, spawn is the safe choice
            ctx = mp.get_context("spawn" if "torch" in sys.modules else "fork")
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                futures = [pool.submit(_write_task, t) for t in todo]
                for fut in as_completed(futures):
                    finish(fut.result())
    finally:
        if prog is not None:
            prog.stop()
    return _finalize(out, plan, results, names, skipped, options, layout, fields, name, card_extra, job)


def _finalize(out: Path, plan: list[dict[str, Any]], results: dict[str, dict[str, Any]], names: list[str] | None,
              skipped: list[dict[str, str]], options: dict[str, Any], layout: str, fields: list[str],
              name: str | None, card_extra: Mapping[str, Any] | None, job: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    shard_rows: list[dict[str, Any]] = []
    splits: dict[str, dict[str, Any]] = {}
    for p in plan:
        res = results[p["name"]]
        rows.extend(res["rows"])
        skipped = skipped + res["skipped"]
        for s in res["shards"]:
            shard_rows.append({**s, "split": p["split"]})
        sp = splits.setdefault(p["split"], {"samples": 0, "shards": []})
        sp["samples"] += len(res["rows"])
        sp["shards"].append(p["name"])
    modalities: dict[str, dict[str, Any]] = {}
    for r in rows:
        for m, e in zip(r["members"], r["members"]):
            ext = m.split(".", 1)[1]
            entry = modalities.setdefault(field_of(ext), {"codecs": [], "count": 0})
            if ext not in entry["codecs"]:
                entry["codecs"].append(ext)
            entry["count"] += 1
    for entry in modalities.values():
        entry["codecs"].sort()
    labels = [r["label"] for r in rows if r["label"] is not None]
    num_classes = len(names) if names else (max(labels) + 1 if labels else None)
    fingerprint = hashlib.sha256("".join(s["sha256"] for s in shard_rows).encode()).hexdigest()
    card: dict[str, Any] = {
        "format": idx.FORMAT,
        "name": name or out.resolve().name,
        "layout": layout,
        "fields": fields if layout == "columns" else None,
        "modalities": dict(sorted(modalities.items())),
        "label_names": names,
        "num_classes": num_classes,
        "splits": splits,
        "counts": {
            "samples": len(rows),
            "per_class": {str(k): v for k, v in sorted(Counter(labels).items())},
            "patterns": dict(sorted(Counter("+".join(r["modalities"]) for r in rows).items())),
        },
        "options": options,
        "skipped": skipped,
        "skipped_count": len(skipped),
        "fingerprint": fingerprint,
    }
    if card_extra:
        card.update(card_extra)
    idx.write_index(out, rows)
    idx.write_shards_table(out, shard_rows)
    idx.write_card(out, card)
    shutil.rmtree(job, ignore_errors=True)
    return {"out": str(out), "samples": len(rows), "shards": len(plan),
            "splits": {k: v["samples"] for k, v in splits.items()}, "skipped": skipped, "fingerprint": fingerprint}
