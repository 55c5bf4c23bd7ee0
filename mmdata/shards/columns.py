"""Column layout: add or replace one modality's shard series without rewriting the others.

In ``--layout columns`` every field has its own series ``OUT/<field>/<split>-NNNNNN.tar`` with the same
shard boundaries and sample order (Lhotse-Shar style). :func:`add_modality` writes a new series with
those boundaries, from a folder of ``<key or source_key>.<ext>`` files or a manifest, then updates the
index, shards table and card.

The job is all or nothing: the new series is written to ``OUT/.mmdata-add-<field>.tmp/`` and moved to
``OUT/<field>/`` only once every shard is written, so a job that fails (a bad file with
``on_error="raise"``, a full disk) leaves the dataset exactly as it was. Like ``mmdata shard``, nothing
is dropped silently: a bad file of a sample — corrupt, or matching the sample and naming the field but of
no usable type (``<key>.imu.csv``, ``<key>.image.npy``; QA35 robotics #1) — is left out (the sample lacks the
field) and is one ``member`` entry of the card's ``skipped`` list (tagged ``"field": <field>``; its name starts
with the sample's key, already published); a file not used — matching no sample, of another field, or not
data — is counted in the card (``modalities.<field>.unmatched`` and ``unmatched_reasons``, per reason, a
manifest's row and column left out) and named in the returned summary only: it is a fact about the source
folder, and its name (often a person's, left there after an erasure) must not be published with the dataset
(QA34 gdpr #1). The job records the card's
``card_digests`` where an older card had none, so ``mmdata verify`` checks the card from then on.

As ``mmdata shard`` does, the job scans the members it writes for identifying metadata (the card's
``metadata`` and its warning) and, for the ``image`` field, the images' values and frames (the card's
12-bit, clipped-values and several-frames warnings); a replaced series' counts and warnings go with it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from mmdata.checks import plural
from mmdata.codecs import AUDIO_EXTS, IMAGE_EXTS, STANDARD_FIELD_EXTS, field_of, member_type, standard_field_error
from mmdata.errors import SourceError
from mmdata.io import atomic_write_bytes
from mmdata.shards import index as idx
from mmdata.shards.journal import JobLock
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import CorruptMedia, member_stats
from mmdata.shards.sources import JPEG_ALIASES, ON_ERROR, Record, discover, printable, skip_entry, stamp_field
from mmdata.shards.tarwrite import write_tar

#: how many unmatched / skipped file names the summary and the card's modality record show
SHOWN = 10
_STATS_FIELDS = ("image", "audio", "text")  # fields with index columns <field>_* (mediainfo.member_stats)


def _staging(root: Path, name: str) -> Path:
    return root / f".mmdata-add-{name}.tmp"


def _previous(root: Path, name: str) -> Path:
    return root / f".mmdata-add-{name}.old"


def add_modality(out: str | Path, name: str, src: str | Path, *, replace: bool = False,
                 on_missing: str = "skip", on_error: str = "skip", license: str | None = None,  # noqa: A002
                 attribution: str | None = None) -> dict[str, Any]:
    """Write field ``name`` as a new series of a column-layout dataset.

    A file is matched to a sample by its stem: the sample's ``key`` or its ``source_key`` (the raw
    stem, e.g. ``cat/0001`` for class folders: mirror them in ``src``). A failed job changes nothing.

    Args:
        out: dataset folder written with ``layout="columns"``.
        name: field name (``image``, ``audio``, ``text``, or an extra such as ``depth``).
        src: folder of files named ``<key or source_key>.<field>.<ext>`` (``0001.png``, ``0001.depth.npy``, a 16-bit
            ``0001.depth.png`` for the named field ``depth.png``, stored as ``mmdata shard --column`` stores it);
            when no file names the field, ``<key or source_key>.npy`` is the array field ``name`` (a stem
            may hold dots: ``frame_1701234567.990.npy``); or a manifest with ``key`` and a path column.
        replace: allow replacing an existing series of that name.
        on_missing: ``"skip"`` (samples without a file lack the field) or ``"raise"``.
        on_error: ``"skip"`` (a bad file — corrupt media, not a .npy array, unreadable — is left out
            and reported; its sample lacks the field) or ``"raise"`` (stop at the first, naming it;
            the dataset is left as it was).
        license: the field's license (``"CC-BY-4.0"``) where its files are under another one than the dataset's,
            recorded on the field in the card (``modalities.<name>.license``; ``mmdata inspect`` shows it); without
            it the field carries the dataset's license (the card says so: ``license_from: "dataset"``), or, with
            ``replace``, the license the replaced series recorded; ``"dataset"``: the dataset's license, whatever
            the replaced series recorded.
        attribution: who to credit for the field's files (recorded as ``modalities.<name>.attribution``; with
            ``replace`` and without it, the attribution the replaced series recorded); ``"none"``: no
            attribution, whatever the replaced series recorded.

    Returns:
        ``{"field", "added", "missing", "shards", "skipped", "skipped_files", "unmatched",
        "unmatched_files", "missing_keys", "warnings"}``: ``missing_keys`` every sample left without the field (its
        key; the card keeps the first :data:`MISSING_KEPT`), ``warnings`` the card's warnings about the new series
        (a ``.npy`` field's dtype mix, shapes, empty arrays: as ``mmdata shard`` gives them); ``skipped`` bad files
        of a sample (corrupt, or of no usable type:
        ``<key>.imu.csv``, ``<key>.image.npy``; the first :data:`SHOWN` entries in ``skipped_files``),
        ``unmatched`` files not used because they match no sample, belong to another field or are not
        data (the first names in ``unmatched_files``, the count per reason in ``unmatched_reasons``; a
        manifest row counts once). Bad files are listed in the card's ``skipped`` (``inspect`` counts
        them); unused files are only counted there (no names). ``kept_from_replaced``: with ``replace``, the
        ``license`` / ``attribution`` of the replaced series the field keeps (not given anew; ``{}`` if none).

    Raises:
        SourceError: ``name`` is no field name (empty, ``..``, a ``/``, a leading dot: it names the
            series folder) or is ``label`` (re-shard to change labels), not a column-layout dataset,
            the field exists (without ``replace``), no file in
            ``src`` is a ``name`` file or none matches a sample, or a bad / missing file with
            ``"raise"``.

    Example:
        >>> import tempfile, mmdata, numpy as np
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=2), t + "/ds", layout="columns", progress=False)
        >>> import os; os.makedirs(t + "/d")
        >>> for k in ("000000", "000001"): np.save(f"{t}/d/{k}.depth.npy", np.zeros(2))
        >>> add_modality(t + "/ds", "depth", t + "/d")["added"]
        2
    """
    for opt, value in (("on_error", on_error), ("on_missing", on_missing)):
        if value not in ON_ERROR:
            raise SourceError(f"{opt} must be one of {ON_ERROR}, got {value!r}")
    for opt, value in (("license", license), ("attribution", attribution)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise SourceError(f"--{opt} ({opt}=): expected a non-empty string, got {type(value).__name__} {value!r}"
                              f"; for the field to carry {_CLEARED_SAYS[opt]}, not a replaced series' one, give "
                              f"--{opt} {CLEARED[opt]} ({opt}={CLEARED[opt]!r})")
    from mmdata.urls import unless_file_url

    root, src = Path(unless_file_url(out)), unless_file_url(src)
    _check_field_name(root, name)
    card = idx.load_card(root)
    if card.get("layout") != "columns":
        raise SourceError(f"{root}: add-modality needs a dataset sharded with --layout columns (this one is "
                          f"{card.get('layout')!r}); re-shard with --layout columns")
    if name in (card.get("fields") or []) and not replace:
        raise SourceError(f"{root}: field {name!r} already exists; replace it with --replace (Python: "
                          f"add_modality(..., replace=True))")
    found = discover(src, on_error=on_error)
    with JobLock(root, "mmdata add-modality"):
        previous = _previous(root, name)
        if previous.exists():  # only a SIGKILL (or a power cut) leaves it: Ctrl-C and SIGTERM put everything back
            raise SourceError(f"{previous}: the series {name!r} this folder held before an add-modality that was "
                              f"killed while replacing it; if `mmdata verify {root}` passes, delete it; else delete "
                              f"it and run that `mmdata add-modality {root} {name} SRC --replace` again (the index "
                              f"and card may already name its new series)")
        shutil.rmtree(_staging(root, name), ignore_errors=True)  # a killed job's; we hold the lock
        card = idx.load_card(root)
        rows = idx.load_index(root).to_pylist()
        plan = _match(rows, found.records, name, src, found.skipped)
        # "dataset" / "none": given, as nothing of the field's own (the replaced series' is not kept)
        credit = {k: None if v == CLEARED[k] else v for k, v in (("license", license), ("attribution", attribution))
                  if v is not None}
        return _add_series(root, card, name, src, rows, plan, on_missing, on_error, credit)


def _check_field_name(root: Path, name: Any) -> None:
    """``name`` as a field of its own series: it names the folder ``root/<name>/`` and each member
    ``<key>.<name>...``, so it is untrusted (QA: ``../evil`` wrote a series outside the dataset, which
    every reader then refused; ``.`` and ``a/b`` crashed half-way). The label is not a series: it is part
    of how the dataset was split and of its card's class counts (QA: a ``label`` series went unread and
    the index kept the old labels)."""
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name \
            or not name.isprintable():
        raise SourceError(f"{name!r} is not a field name: it names the series folder {root}/<field>/ and each "
                          f"member <key>.<field>...; use letters, digits, '_' and '-' (e.g. depth)")
    if field_of(name) == "label":
        raise SourceError(f"{root}: the label cannot be added as a series of its own: the splits were stratified "
                          f"by it and the card counts its classes; re-shard with the labels (class folders, "
                          f"<key>.cls files beside the other files, a manifest's label column; --labels for class "
                          f"names), or add them under another name as an extra field (<key>.topic.npy)")


def _source_name(value: Any, fallback: str, src: str | Path) -> str:
    """A member's file as reported: relative to ``src`` (inline manifest values: ``<stem>.<ext>``)."""
    if isinstance(value, bytes):
        return fallback
    path = os.fspath(value)
    if Path(src).is_dir():
        try:
            path = os.path.relpath(path, src)
        except ValueError:
            pass
    return printable(path)


def _match(rows: list[dict[str, Any]], records: list[Record], name: str, src: str | Path,
           discovered_skips: list[dict[str, Any]]) -> dict[str, Any]:
    """Which files feed which index row (``feeds``: row number -> (record, {ext: file})), and every file of ``src``
    that feeds none: ``skipped`` (it matches a sample and is meant for the field, but cannot be used, and the sample
    got no usable file for the field: a left-out member of that sample, named in the card — its name starts with
    the sample's published key) or ``unmatched`` (``<key>.yaml`` beside the ``<key>.npy`` that fed its sample too)
    (it matches no sample, belongs to another field, or is not data: only counted in the card, QA34 gdpr #1).

    A folder's file is matched by its name: ``<key or source_key>.<name ext>`` (``0001.depth.npy``,
    ``0001.depth.png`` for the named field ``depth.png``, ``0001.png`` for ``image``); when no file of the folder
    names the field, ``<key or source_key>.npy`` (``.png`` for ``depth.png``) is that field too (QA35 robotics #5:
    ROS stems keep their dotted timestamp, ``frame_1701234567.990.npy``, which the ``<stem>.<field>.npy`` rule read
    as a field ``990``). The longest key a name starts with wins."""
    folder = Path(src).is_dir()
    row_of: dict[str, int] = {}
    for j, row in enumerate(rows):
        row_of.setdefault(row["source_key"], j)
    for j, row in enumerate(rows):
        row_of.setdefault(row["key"], j)

    def parses(r: Record, e: str, v: Any) -> list[tuple[str | None, str]]:
        """(sample-matching stem or None, member extension) readings of one file: discovery's first."""
        stem = r.source_key if r.source_key in row_of else r.key if r.key in row_of else None
        out: list[tuple[str | None, str]] = [(stem, e)]
        if folder and not isinstance(v, bytes):
            for k, rest in _key_splits(_source_name(v, "", src), row_of):
                out.append((k, _member_ext(rest)))
        return out

    files = [(r, e, v, parses(r, e, v)) for r in records for e, v in r.members.items()]
    explicit = any(field_of(e) == name and standard_field_error(e) is None for _, _, _, ps in files for _, e in ps)
    bare = None if explicit else _bare_ext(name)
    unmatched: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    feeds: dict[int, tuple[Record, dict[str, Any]]] = {}
    other: Counter[str] = Counter()
    refused: list[str] = []  # why files naming a standard field cannot supply it (`<key>.image.npy`)
    row_keys: list[str] = []  # a manifest's row keys matching no sample: the error names them, not file names
    typed = 0  # files of the field, matched to a sample or not

    def unused(shown: str, why: str) -> None:
        unmatched.append(dict(skip_entry(shown, "file", why), field=name))

    def left_out(shown: str, stem: str, why: str) -> None:
        skipped.append(dict(skip_entry(shown, "member", why, rows[row_of[stem]]["source_key"]), field=name))

    for r, e, v, ps in files:
        shown = _source_name(v, f"{r.source_key}.{e}", src)
        usable = [(k, e2 if field_of(e2) == name else f"{name}.npy" if e2 == bare == "npy" else name)
                  for k, e2 in ps if (field_of(e2) == name and standard_field_error(e2) is None)
                  or (bare is not None and e2.lower() == bare)]
        # `<stem>.990.npy` is a dotted stem's `.npy` (a ROS timestamp), not a field `990`, whether or not it matches
        stamp = bare == "npy" and stamp_field(e)
        typed += bool(usable) or stamp
        got = next(((k, e2) for k, e2 in usable if k is not None), None)
        if got is not None:
            j = row_of[got[0]]
            have = feeds.setdefault(j, (r, {}))[1]
            if got[1] in have:  # two files of the field for one sample: the first by name is kept
                left_out(shown, got[0], f"a second {name!r} file for sample {rows[j]['source_key']!r}: kept "
                                        f"{_source_name(have[got[1]], got[1], src)}; a sample holds one file per field")
            else:
                have[got[1]] = v
            continue
        if usable or stamp:
            if folder:
                unused(shown, _NO_SAMPLE)
            else:  # a manifest's row: its key cell (or the key its path gives) matched, not the file's name
                unused(f"{shown} (row key {printable(r.source_key)!r})", _NO_ROW_SAMPLE)
                row_keys.append(printable(r.source_key))
            continue
        k, e2 = next(((k, e2) for k, e2 in ps if k is not None), ps[0])
        field = field_of(e2)
        if field == name:  # the reader refuses such a member (`<key>.image.npy`): not written
            why = standard_field_error(e2) or ""
            refused.append(why)
            if k is not None:
                left_out(shown, k, why)
            else:
                unused(shown, why)
        else:
            if not stamp_field(f"{field}.npy"):  # a timestamp's fraction (`frame_1701234567.990.npy`) is no field
                other[field] += 1
            unused(shown, f"a {field!r} file, not {name!r}")
    for s in _deduplicated(discovered_skips, folder):
        k = s.get("sample") if not folder else None
        if folder and s["what"] == "file":
            k = next((k for k, rest in _key_splits(s["source"], row_of)
                      if ("." not in rest and bare is not None) or rest.lower().startswith(name.lower() + ".")), None)
        # a left-out member only when its sample got no usable file for the field: `<key>.yaml` beside the
        # `<key>.npy` it describes is a file not used (counted), not a member missing from the series
        if k is not None and k in row_of and s["what"] in ("file", "member") and row_of[k] not in feeds:
            left_out(s["source"], k, s["reason"])
        else:
            unmatched.append(dict(s, reason=_reason_only(s["reason"]), field=name))
    n_files = len(files) + sum(1 for s in discovered_skips if s["what"] in ("file", "member"))
    if not typed:
        have = ", ".join(f"{f}: {n}" for f, n in sorted(other.items())) or "none"
        # never the name of a standard field (QA: 'use the field name image' was a way to replace the images)
        only = next(iter(other)) if len(other) == 1 else None
        hint = (f"; to add them as they are, use the field name {only!r}"
                if only is not None and only not in STANDARD_FIELD_EXTS else "")
        kinds = STANDARD_FIELD_EXTS.get(name)
        expected = (" / ".join(f"<key>.{x}" for x in kinds[:4]) + (", ..." if len(kinds) > 4 else "") if kinds else
                    f"<key>.{name} (a named {member_type(name)} field, as `mmdata shard --column` writes it)"
                    if "." in name else f"<key>.{name}.npy (an array), or <key>.npy when no file names a field")
        why = refused[:1] or [f"{s['source']}: {s['reason']}" for s in skipped[:1]]
        refusal = f"; {why[0]}" if why else ""
        raise SourceError(f"{plural(n_files, 'file')} in {src}, none for field {name!r} (fields found: {have}){refusal}; "
                          f"expected {expected}{hint}")
    if not feeds:
        example = rows[0] if rows else {"key": "?", "source_key": "?"}
        sk = f", source keys look like {example['source_key']!r}" if example["source_key"] != example["key"] else ""
        if row_keys and not folder:  # QA38 rev5 #7: a manifest's row keys match, not its files' names
            shown_keys = ", ".join(repr(k) for k in dict.fromkeys(row_keys[:3]))
            raise SourceError(f"manifest {src}: {plural(n_files, 'row')}, none whose key matches a sample (the "
                              f"samples' keys look like {example['key']!r}{sk}; the rows' keys are {shown_keys}"
                              f"{', ...' if len(set(row_keys)) > 3 else ''}); write the manifest's key column as "
                              f"the samples' keys or source_keys, as listed in {idx.INDEX}")
        first = next((u["source"] for u in unmatched if u["reason"] in (_NO_SAMPLE, _NO_ROW_SAMPLE)), "?")
        raise SourceError(f"{plural(n_files, 'file')} in {src}, none matches a sample key (keys look like "
                          f"{example['key']!r}{sk}; files look like {first!r}); name each file <key>.<field>.<ext> or "
                          f"<source_key>.<field>.<ext> (<key>.npy when every file is the field's) as listed in "
                          f"{idx.INDEX}")
    return {"feeds": feeds, "unmatched": unmatched, "skipped": skipped}


#: why a file of a folder matching no sample is not used: its name is its sample's key
_NO_SAMPLE = "its name matches no sample's key or source_key"
#: why a manifest's file is not used: its row's key matches no sample (QA38 sites #6: "its name" was said)
_NO_ROW_SAMPLE = "its manifest row's key matches no sample's key or source_key"


def _key_splits(shown: str, row_of: dict[str, int]) -> list[tuple[str, str]]:
    """``(key, rest)`` for each sample key or source key that the file name ``shown`` starts with (then a dot),
    the longest first (``frame_1701234567.990.imu.npy``: ``frame_1701234567.990``, ``imu.npy``)."""
    return [(shown[:i], shown[i + 1:]) for i in range(len(shown) - 1, 0, -1)
            if shown[i] == "." and shown[:i] in row_of]


def _member_ext(rest: str) -> str:
    """A file name's extension as a member's (as :func:`mmdata.shards.sources.split_name` writes it: the type lower
    case, JPEG aliases as ``jpg``)."""
    head, _, last = rest.rpartition(".")
    last = JPEG_ALIASES.get(last.lower(), last.lower())
    return f"{head}.{last}" if head else last


def _bare_ext(name: str) -> str | None:
    """The extension a file ``<key>.<ext>`` has to be field ``name`` without naming it: ``npy`` for an array
    field, ``png`` for the named field ``depth.png``; none for the standard fields (``<key>.png`` names ``image``)."""
    if name in STANDARD_FIELD_EXTS:
        return None
    if "." not in name:
        return "npy"
    return member_type(name) if field_of(name) == name and member_type(name) != "npy" else None


def _deduplicated(skips: list[dict[str, Any]], folder: bool) -> list[dict[str, Any]]:
    """Discovery's skips as add-modality counts them: a manifest row whose cell was left out is one file, not that
    entry plus the row's "no file or text left to shard" (QA35 robotics #4); a row without a file for the field is
    no file at all (its sample, if any, lacks the field: ``missing``)."""
    if folder:
        return list(skips)
    return [s for s in skips if not (s["what"] == "sample" and s["reason"].endswith(_NOTHING_LEFT))]


_NOTHING_LEFT = "no file or text left to shard"
_WHERE = re.compile(r"(?s)(.*? row \d+)(, .*?)?: (.*)")


def _reason_only(reason: str) -> str:
    """A manifest skip's reason without its row and column (``m.csv row 4, column 'imu': no known media
    extension``), so that the card's ``unmatched_reasons`` count per reason, as for a folder."""
    m = _WHERE.fullmatch(reason)
    return m.group(3) if m else reason


def _add_series(root: Path, card: dict[str, Any], name: str, src: str | Path, rows: list[dict[str, Any]],
                plan: dict[str, Any], on_missing: str, on_error: str, credit: dict[str, str]) -> dict[str, Any]:
    staging = _staging(root, name)
    shard_rows = [r for r in idx.load_shards_table(root).to_pylist() if r["modality"] != name]
    row_of = {(r["split"], r["shard"]): [] for r in rows}
    for j, r in enumerate(rows):
        row_of[(r["split"], r["shard"])].append(j)
    bad: list[dict[str, Any]] = []
    added = 0
    missing: list[str] = []  # the keys of the samples left without the field
    npy: dict[str, Any] = {}  # the series' .npy facts, as the shard job counts them (writer._note_npy)
    written: list[str] = []
    scan = _Scan(name)
    # the series this job replaces: its share of the card's identifying-metadata counts goes with it
    replaced = _old_series_metadata(root, card, name) if name in (card.get("fields") or ()) else {}
    try:
        for split, info in card["splits"].items():
            for shard in info["shards"]:
                members: list[tuple[str, bytes]] = []
                for j in row_of.get((split, shard), []):
                    rec, files = plan["feeds"].get(j, (None, {}))
                    got = _set_row(rows[j], name, rec, files, src, on_error, bad, npy)
                    members += got
                    scan.add(rows[j]["key"], got)
                    if got:
                        added += 1
                        continue
                    missing.append(rows[j]["key"])
                    if on_missing == "raise":
                        left = [s for s in plan["skipped"] if s["sample"] == rows[j]["source_key"]]
                        why = (f"{bad[-1]['source']} is bad: {bad[-1]['reason']}" if files else
                               f"{left[0]['source']} cannot be used: {left[0]['reason']}" if left else "no file")
                        raise SourceError(f"{src}: no {name!r} file for sample {rows[j]['source_key']!r} "
                                          f"(key {rows[j]['key']!r}): {why}")
                # .part: not a *.tar for verify while it waits in the staging folder
                s = write_tar(staging / f"{shard}.part", members)
                written.append(shard)
                shard_rows.append({"shard": f"{name}/{shard}", "split": split, "modality": name, "sha256": s.sha256,
                                   "members": s.members, "samples": len({m.split('.', 1)[0] for m, _ in members}),
                                   "bytes": s.bytes})
        bad += plan["skipped"]  # files of a sample that cannot be used: left-out members too (QA35 robotics #1)
        kept = _update_card(card, name, rows, shard_rows, added, missing, bad, plan["unmatched"], credit)
        protected = False
        _update_checks(card, name, rows, scan, replaced)
        new_warnings = _update_arrays(root, card, name, npy.get("npy", {}).get(name))
        if not isinstance(card.get(idx.CARD_DIGESTS), dict):
            # a card written before 2026-12-06: this job, which rewrites it, protects it from now on (QA34 upgrade
            # #3: the only advice was a --rewrite reshard, which drops every added series); an edit made before
            # this job cannot be told from the job's own entries any more than before: the report says it sealed
            # the card as it was (``protected_card``), for the CLI to say so (QA34 review E2 #3)
            card[idx.CARD_DIGESTS] = idx.card_digests(card)
            protected = True
        _commit(root, name, staging, written, rows, shard_rows, card)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    unmatched = plan["unmatched"]
    return {"field": name, "added": added, "missing": len(missing), "missing_keys": missing,
            "shards": sum(len(i["shards"]) for i in card["splits"].values()),
            "skipped": len(bad), "skipped_files": bad[:SHOWN],
            "unmatched": len(unmatched), "unmatched_files": [u["source"] for u in unmatched[:SHOWN]],
            "unmatched_reasons": dict(Counter(u["reason"] for u in unmatched).most_common()),
            "warnings": new_warnings, **{k: v for k, v in card["modalities"][name].items() if k in _CREDIT},
            "kept_from_replaced": kept,
            **({"protected_card": True} if protected else {})}


def _set_row(row: dict[str, Any], name: str, rec: Any, files: dict[str, Any], src: str | Path, on_error: str,
             bad: list[dict[str, Any]], npy: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Give one index row field ``name``'s files (replacing any it had): its members, sizes, modalities
    and media stats are updated; returns the new tar members. Bad files go to ``bad`` (or raise); a ``.npy``'s
    dtype and shape are counted in ``npy`` as the shard job counts them (QA37 sign #8: the card recorded none)."""
    from mmdata.shards.writer import _note_npy
    crcs = row.get("member_crc32")
    if crcs is None or len(crcs) != len(row["members"]):  # an index written before member checksums
        crcs = [None] * len(row["members"])
    digests = row.get(idx.MEMBER_DIGEST)
    if digests is None or len(digests) != len(row["members"]):  # an index written before member digests
        digests = [None] * len(row["members"])
    kept = [(m, z, c) for m, z, c in zip(row["members"], row["sizes"], crcs) if field_of(m.split(".", 1)[1]) != name]
    digest_of = {m: d for m, d in zip(row["members"], digests) if field_of(m.split(".", 1)[1]) != name}
    if name in _STATS_FIELDS:  # a replaced series' stats go with it
        for k in row:
            if k.startswith(name + "_"):
                row[k] = None
    # a named image field's sizes beside the image (inspect compares them), as the shard job records them
    sizes = [d for d in row.get("named_image_sizes") or [] if d.get("field") != name]
    members: list[tuple[str, bytes]] = []
    for ext, value in sorted(files.items()):
        source = _source_name(value, f"{rec.source_key}.{ext}", src)
        try:
            data = value if isinstance(value, bytes) else Path(value).read_bytes()
            stats = member_stats(ext, data)
            if not stats and field_of(ext) == ext and member_type(ext) in IMAGE_EXTS:  # `depth.png`: checked too
                h, w, _, _ = mediainfo.probe_image(data)
                sizes.append({"field": name, "height": h, "width": w})
            elif not stats and field_of(ext) == ext and member_type(ext) in AUDIO_EXTS:
                mediainfo.probe_audio(data)
        except (CorruptMedia, OSError) as exc:
            reason = str(exc) if isinstance(exc, CorruptMedia) else f"cannot read ({exc})"
            if on_error == "raise":
                where = source if isinstance(value, bytes) else os.fspath(value)
                raise SourceError(f"{where}: {reason} (sample {row['source_key']!r}, key {row['key']!r}, field "
                                  f"{name!r}); with --on-error skip such files are left out and reported") from exc
            bad.append(dict(skip_entry(source, "member", reason, row["source_key"]), field=name))
            continue
        row.update(stats)
        if member_type(ext) == "npy":  # checked by member_stats: its header is read again for the facts
            # (key, source_key, label, extra, exts, values) as the shard job's record; named by the source file
            # the sample's image size: an array whose first or last two axes are not it is no per-pixel map, so
            # its varying axes are warned of as the shard job warns of them (61f1b3c, QA37 identity review #7)
            hw = (row.get("image_height"), row.get("image_width"))
            _note_npy(npy, name, (row["key"], row["source_key"], None, None, (ext,), (source,)), 0,
                      mediainfo.check_npy(data, decode=True), data,  # NaN / inf counted, as --check decode does
                      image_hw=(int(hw[0]), int(hw[1])) if all(isinstance(n, int) for n in hw) else None)
        members.append((f"{row['key']}.{ext}", data))
        kept.append((f"{row['key']}.{ext}", len(data), zlib.crc32(data)))
        digest_of[f"{row['key']}.{ext}"] = idx.member_digest(data)
    if "named_image_sizes" in row or sizes:
        row["named_image_sizes"] = sizes or None
    kept.sort(key=lambda mzc: mzc[0])
    row["members"] = [m for m, _, _ in kept]
    row["sizes"] = [z for _, z, _ in kept]
    # each member's CRC-32 (verify --deep); none for the row when an older index had none for its members
    row["member_crc32"] = None if any(c is None for _, _, c in kept) else [c for _, _, c in kept]
    # each member's digest in step with ``members`` (QA37 identity: a list left as it was no longer matched them);
    # none for the row when an older index had none for its kept members
    if idx.MEMBER_DIGEST in row:  # (an index without the column stays without it)
        row[idx.MEMBER_DIGEST] = (None if any(digest_of.get(m) is None for m, _, _ in kept)
                                  else [digest_of[m] for m, _, _ in kept])
    row["modalities"] = sorted({field_of(m.split(".", 1)[1]) for m in row["members"]})
    return members


def _update_card(card: dict[str, Any], name: str, rows: list[dict[str, Any]], shard_rows: list[dict[str, Any]],
                 added: int, missing: list[str], bad: list[dict[str, Any]], unmatched: list[dict[str, Any]],
                 credit: dict[str, str | None]) -> dict[str, str]:
    """The card with field ``name``'s new series; returns the license / attribution kept from the series it
    replaces (those this job did not give: the CLI says so, QA37 review r3c #5)."""
    fields = set(card.get("fields") or [])
    fields.add(name)
    card["fields"] = sorted(fields)
    old = (card.get("modalities") or {}).get(name)
    if isinstance(old, dict):  # a replaced series: its license and attribution stand, each unless this job gives
        # one anew (QA37 review srcarr #3: --attribution alone re-labelled a CC-BY-NC field with the dataset's)
        kept = {k: old[k] for k in ("license", "attribution") if isinstance(old.get(k), str) and k not in credit}
        credit = {**kept, **credit}
    else:
        kept = {}
    credit = {k: v for k, v in credit.items() if v is not None}  # "dataset" / "none": nothing of its own
    card.setdefault("modalities", {})[name] = {
        "codecs": sorted({ext for r in rows for m in r["members"] if field_of(ext := m.split(".", 1)[1]) == name}),
        "count": added, "missing": len(missing), "skipped": len(bad), "unmatched": len(unmatched),
        # the samples without it by key (published already, in the index): the first ones, not a million
        "missing_keys": missing[:MISSING_KEPT],
        **({"missing_keys_truncated": True} if len(missing) > MISSING_KEPT else {}),
        # whose files these are: a series under another license than the dataset's says so (QA37 licence #7)
        **(credit if "license" in credit else {**credit, "license_from": "dataset"}),
        # counts only: files of the source folder that fed no sample are no loss of the data, and their names
        # (a person's, after an erasure) would be published and copied onward by augment (QA34 gdpr #1)
        "unmatched_reasons": dict(sorted(Counter(u["reason"] for u in unmatched).items())),
        "added_by": "add-modality"}
    # a replaced series' entries go with it (an older job's unused files too); this job's bad files are tagged
    # with the field
    skipped = [s for s in card.get("skipped") or [] if s.get("field") != name] + bad
    card["skipped"] = skipped
    card["skipped_count"] = len(skipped)
    card["skipped_counts"] = {w + "s": sum(1 for s in skipped if s["what"] == w)
                              for w in ("sample", "member", "file", "folder")}
    idx.refresh_digests(card, ("skipped", "skipped_count", "skipped_counts"))  # this job's own rewrite of them
    if isinstance(card.get("counts"), dict):
        card["counts"]["patterns"] = dict(sorted(Counter("+".join(r["modalities"]) for r in rows).items()))
    shard_rows.sort(key=lambda r: (r["modality"] or "", r["shard"]))
    card["fingerprint"] = hashlib.sha256("".join(r["sha256"] for r in shard_rows).encode()).hexdigest()
    return kept


#: how many keys of samples left without the field the card lists (the returned summary lists every one)
MISSING_KEPT = 1000
#: the field's license entries in the card (``modalities.<field>``) and the summary
_CREDIT = ("license", "attribution", "license_from")
#: the ``license`` / ``attribution`` values that give the field none of its own: it carries the dataset's
#: license, credits no one (the way back from a replaced series' credit, which is kept unless given anew)
CLEARED = {"license": "dataset", "attribution": "none"}
_CLEARED_SAYS = {"license": "the dataset's license", "attribution": "no attribution"}


def _update_arrays(root: Path, card: dict[str, Any], name: str, acc: dict[str, Any] | None) -> list[str]:
    """The card's record of a ``.npy`` series ``name`` (dtypes, ranks, shapes, lengths, empty arrays, varying axes)
    and its warnings, as ``mmdata shard`` writes them (:func:`mmdata.shards.writer.npy_card_entry`), with the
    advice for an added field: add it again, not shard again (a re-shard drops it). A replaced series' warnings go
    with it. Returns the new warnings (QA37 sign #8: the card recorded none, so the loader refused every batch of a
    dtype mix instead of batching it in the field's one dtype)."""
    from mmdata.shards import writer

    again = f" and add the field again (`mmdata add-modality {root} {name} SRC --replace`)"
    new: list[str] = []
    if acc:
        card["modalities"][name].update(writer.npy_card_entry(acc))
        if (mix := writer.npy_dtype_mix_warning(name, acc["dtypes"], acc["examples"], acc.get("peaks"))) is not None:
            new.append(mix)
        maps = any(f == "image" or f.rsplit(".", 1)[-1].lower() in IMAGE_EXTS for f in card.get("fields") or ())
        new += writer.npy_shape_warnings(name, acc, maps=maps)
        if acc["non_finite"]:
            new.append(mediainfo.non_finite_npy_warning(name, acc["non_finite"], sum(acc["dtypes"].values()),
                                                        acc["first"][0], tuple(acc["first"][1:])))
        new = [w.replace(" and shard again", again) for w in new]
    mine = f"field {name!r}: "  # the warnings of the series this job replaces (writer's .npy warnings start so)
    card["warnings"] = [w for w in card.get("warnings") or [] if not w.startswith(mine)] + new
    idx.refresh_digests(card, ("warnings",))
    return new


class _Scan:
    """What :func:`mmdata.shards.writer`'s shard job counts for the card, over the members of one series: the
    identifying metadata (per kind: [members, first names]) and, for the ``image`` field, the images' values
    and frames (:func:`mediainfo.merge_sixteen_bit`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.metadata: dict[str, list[Any]] = {}
        self.deep: dict[str, Any] | None = None

    def add(self, key: str, members: list[tuple[str, bytes]]) -> None:
        for member, data in members:
            kind = member_type(member.split(".", 1)[1])
            if kind not in IMAGE_EXTS and kind not in AUDIO_EXTS:
                continue
            for found in mediainfo.identifying_metadata(data):
                got = self.metadata.setdefault(found, [0, []])
                got[0] += 1
                if len(got[1]) < _EXAMPLES:
                    got[1].append(member)
            if self.name == "image" and kind in IMAGE_EXTS and mediainfo.sixteen_bit_candidates([data]):
                self.deep = mediainfo.merge_sixteen_bit(self.deep, mediainfo.image_depth(data), key)


#: example member names per kind of identifying metadata (as the shard job's card)
_EXAMPLES = 3


def _old_series_metadata(root: Path, card: dict[str, Any], name: str) -> dict[str, int]:
    """Per kind, the members of the series ``name`` being replaced that carry identifying metadata (read from
    its shards: the card's counts are over all series)."""
    import tarfile

    old = _Scan(name)
    for info in card.get("splits", {}).values():
        for shard in info.get("shards", []):
            path = root / name / shard
            if not path.is_file():
                continue
            try:
                with tarfile.open(path) as tf:
                    for m in tf:
                        f = tf.extractfile(m) if m.isfile() and "." in m.name else None
                        if f is not None and member_type(m.name.split(".", 1)[1]) in (*IMAGE_EXTS, *AUDIO_EXTS):
                            old.add("", [(m.name, f.read())])
            except (tarfile.TarError, OSError):  # a damaged old shard: what it held was counted (or not) at its job
                continue
    return {k: v[0] for k, v in old.metadata.items()}


def _update_checks(card: dict[str, Any], name: str, rows: list[dict[str, Any]], scan: _Scan,
                   replaced: dict[str, int]) -> None:
    """The card's ``metadata`` and its warnings with the series ``name`` just written (``replaced``: the counts
    of the series it replaces, dropped), as ``mmdata shard`` computes them (QA42: add-modality left the card
    claiming none)."""
    from mmdata.shards.writer import identifying_metadata_warning

    meta = card.get("metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    examples = {k: [m for m in v if field_of(m.split(".", 1)[1]) != name]
                for k, v in (meta.get("examples") or {}).items()}
    counts = {k: max(int(meta.get(k) or 0) - replaced.get(k, 0), 0) for k in mediainfo.IDENTIFYING_KINDS
              if k in mediainfo.METADATA_KINDS or k in meta or k in scan.metadata}
    for k, (n, names) in scan.metadata.items():
        counts[k] = counts.get(k, 0) + n
        examples[k] = (examples.get(k, []) + names)[:_EXAMPLES]
    card["metadata"] = {**counts, "examples": {k: examples[k] for k in counts if examples.get(k) and counts[k]},
                        **({"text_chunk_keys": meta["text_chunk_keys"]}  # the PNG text keywords seen (QA36 medical #6)
                           if meta.get("text_chunk_keys") and counts.get("text_chunks") else {})}
    warnings = [w for w in card.get("warnings") or []
                if not w.startswith("identifying metadata is published")
                and not (name == "image" and mediainfo.is_deep_warning(w))]
    if name == "image":
        images = sum(1 for r in rows if r.get("image_mode") is not None)
        warnings += mediainfo.deep_warnings(scan.deep, images)
    card["warnings"] = warnings + identifying_metadata_warning(card["metadata"])
    idx.refresh_digests(card, ("metadata", "warnings"))


def _commit(root: Path, name: str, staging: Path, written: list[str], rows: list[dict[str, Any]],
            shard_rows: list[dict[str, Any]], card: dict[str, Any]) -> None:
    """Move the finished series into place, then write index, shards table and card (card last); on any
    error put the previous series and the three files back."""
    staging.mkdir(parents=True, exist_ok=True)  # a dataset with no shard at all still gets its folder
    for shard in written:
        os.replace(staging / f"{shard}.part", staging / shard)
    saved = {f: (root / f).read_bytes() for f in (idx.INDEX, idx.SHARDS, idx.CARD) if (root / f).is_file()}
    target, previous = root / name, _previous(root, name)
    had = target.exists()
    if had:
        os.rename(target, previous)
    try:
        os.rename(staging, target)
        idx.write_index(root, rows)
        idx.write_shards_table(root, shard_rows)
        time.sleep(float(os.environ.get("MMDATA_TEST_COMMIT_DELAY", "0") or 0))  # test-only: widen the kill window
        idx.write_card(root, card)
    except BaseException:
        for f, data in saved.items():
            atomic_write_bytes(root / f, data)
        shutil.rmtree(target, ignore_errors=True)
        if had:
            os.rename(previous, target)
        raise
    # committed: the old series goes, even when a signal's exception lands in the middle of its removal (QA:
    # a SIGTERM inside this rmtree left half of .old, which verify listed and the next add-modality took for
    # a killed replace): the removal is finished, then the exception goes on
    try:
        shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(previous, ignore_errors=True)
        raise
