"""`mmdata shard | inspect | verify | add-modality`: thin commands over mmdata.shards."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from mmdata.cli.common import (AddressOpt, DataDir, DataUrl, ExecutorOpt, JsonFlag, RewriteFlag, Seed, card_text,
                               console, load_pandas_for_arrow, no_room, note, one_of, plural, print_json, rounded, one_line_path, stopped_as_exit,
                               table, warn)
from mmdata.shards.index import UNLABELLED_GROUP


def _columns(spec: list[str] | None, option: str = "--column", value: str = "COLUMN") -> dict[str, str] | None:
    """``--column FIELD=COLUMN`` (or ``--path FIELD=TEMPLATE``) items as ``{field: value}``: one per field."""
    if not spec:
        return None
    out = {}
    for item in spec:
        field, sep, col = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{option} expects FIELD={value}, got {item!r}")
        if not field:
            raise typer.BadParameter(f"{option} expects FIELD={value} with a field name before '=', got {item!r}")
        if field in out:
            each = "column or folder" if option == "--column" else value.lower()
            raise typer.BadParameter(f"{option} {field}= is given twice ({field}={out[field]} and {item}): one "
                                     f"{each} per field")
        out[field] = col
    return out


def _meta(spec: list[str] | None) -> list[str] | None:
    """``--meta speaker --meta duration`` or ``--meta speaker,duration``: passed as given (the manifest's
    columns decide whether ``"Name, First"`` is one column or two; ``discover_manifest``)."""
    return list(spec) if spec else None


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(value: str) -> Optional[int]:
    """``--max-file-size``: bytes, or a number with K / M / G / T (powers of 1024), or ``none``."""
    if value.strip().lower() in ("none", "off", "unlimited"):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", value, flags=re.IGNORECASE)
    if m is None:
        raise typer.BadParameter(f"expected a size like 500M, 2G, 1048576 or none, got {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def shard(
    src: Annotated[str, typer.Argument(help="Raw data: a folder (files sharing a stem = one sample; class folders), a CSV/JSONL/Parquet manifest (also .jsonl.gz / .csv.gz), or WebDataset shards (a .tar / .tar.gz, a quoted brace or glob pattern, a folder of tars: members kept as they are, splits from train-/val-/test- names): a path, or an fsspec URL (s3://bucket/raw; credentials from the environment), each task fetching its own files.")],
    out: Annotated[str, typer.Argument(help="Output folder (created): a path, or an fsspec URL of an object store (s3://bucket/ds).")],
    maxcount: Annotated[int, typer.Option(help="Max samples per shard.")] = 1000,
    maxsize: Annotated[Optional[int], typer.Option(min=1, help="Also cut shards by size: a shard file (tar padding included) stays within this many bytes unless one sample alone is larger, which then gets a shard of its own (default: no limit).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel shard writers (threads; processes without the C module).")] = 1,
    split: Annotated[Optional[str], typer.Option(help="e.g. train=0.8,val=0.1,test=0.1 (stratified by label).")] = None,
    seed: Seed = 0,
    layout: Annotated[str, typer.Option(help="samples (one tar series) or columns (one series per modality).")] = "samples",
    column: Annotated[Optional[list[str]], typer.Option(help="Manifest column for a field, FIELD=COLUMN (repeatable); a FIELD that is not image, audio, text, label, key or split (depth=depth_png) makes a named field: <key>.depth.png beside the image. For a folder source, FIELD=FOLDER: a paired layout (--column image=images --column seg=masks), files joined by their path inside their folder; other folders are not read.")] = None,
    meta: Annotated[Optional[list[str]], typer.Option("--meta", help="Manifest metadata column(s) (speaker, duration, ...; repeatable or comma-separated): stored per sample in a <key>.json member, read back as the sample's 'json' field.")] = None,
    root: Annotated[Optional[str], typer.Option("--root", help="Folder a manifest's paths are read from instead of the manifest's own folder (ESC-50: meta/esc50.csv naming audio/ files by name: --root ESC-50/audio); paths outside it are refused, as outside the manifest's folder without it.")] = None,
    path: Annotated[Optional[list[str]], typer.Option("--path", help="A field's file path made from a manifest's columns, FIELD=TEMPLATE (repeatable): {column} is the row's cell, read from the manifest's folder or --root (UrbanSound8K: --root UrbanSound8K --path 'audio=audio/fold{fold}/{slice_file_name}'); a template or value that is absolute or holds '..' is refused.")] = None,
    segment: Annotated[Optional[str], typer.Option("--segment", help="A manifest's rows as segments of longer recordings (Lhotse supervisions, Kaldi segments): start=COLUMN,duration=COLUMN or start=COLUMN,end=COLUMN, in seconds (plus channel=COLUMN: the channels to keep, an int or a list); each sample holds only its frames of the row's audio file (FLAC at the source's bit depth; WAV for 32-bit / float sources), keyed <file>_<start> without a key column; a recording's segments go to one split.")] = None,
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="Manifest column whose rows go to one split together (image_id for a row per caption, speaker for speaker-disjoint splits); for a folder source, folder: each folder below the class folders (a patient's, a speaker's) goes to one split; rows naming one file always do.")] = None,
    labels: Annotated[Optional[str], typer.Option("--labels", help="Class names: a text file (one name per line) or JSON ({\"names\": [...]}), a path or an fsspec URL; default: labels.json / labels.txt at the source root, else the class folders.")] = None,
    labels_from_folders: Annotated[Optional[bool], typer.Option("--labels-from-folders/--no-labels-from-folders", help="Force the folder-per-class layout on/off (default: detect).")] = None,
    on_error: Annotated[str, typer.Option(callback=one_of("skip", "raise", "warn"), help="skip (leave bad files out of their sample and report them), warn (as skip, and one warning line naming them at the end) or raise (stop at the first, naming it).")] = "skip",
    max_file_size: Annotated[str, typer.Option("--max-file-size", help="Skip source files larger than this (read whole into memory): 500M, 2G, bytes, or none.")] = "1G",
    check: Annotated[str, typer.Option(help="header (structure of PNG/JPEG/FLAC/WAV: truncation, CRCs) or decode (also decode every image and audio file).")] = "header",
    fsync: Annotated[bool, typer.Option("--fsync/--no-fsync", help="Flush every shard to disk before its atomic rename (survives power loss; costs the disk's write time).")] = False,
    split_by: Annotated[str, typer.Option("--split-by", help="How --split's fractions are applied: label (default: stratified by label; a new version of the dataset moves samples between splits) or key (each sample by a hash of its key and --seed: adding or removing samples never moves the others; shares close to the fractions, not stratified).")] = "label",
    split_from: Annotated[Optional[str], typer.Option("--split-from", help="An earlier version of this dataset (its folder or index.parquet): samples of the same key keep their split there; new ones are split by --split / --split-by.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="The dataset's name in dataset.json (default: the output folder's name).")] = None,
    license_: Annotated[Optional[str], typer.Option("--license", help="The dataset's license (e.g. CC-BY-4.0), recorded in dataset.json.")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="A sentence about the dataset, recorded in dataset.json.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an existing folder that holds other files and no mmdata dataset, or a dataset another command wrote (augment, datasets build) or SRC was augmented from (refused by default: it would be replaced).")] = False,
    rewrite: RewriteFlag = False,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    json_: JsonFlag = False,
    max_skipped: Annotated[Optional[str], typer.Option("--max-skipped", help="Fail the job (exit 1) when more samples than this lost a file or were left out: a count (0: any loss) or a fraction of the samples (0.01, 1%). The dataset is still written, for inspection (dataset.json lists what was left out): publish it only once the job passed.")] = None,
) -> None:
    """Shard raw multimodal data into WebDataset tars + index.parquet + dataset.json. Rerun to resume a stopped
    job; a rerun over unchanged sources writes nothing (up to date)."""
    from mmdata.shards.writer import CLI_CALL, ShardWarning, TooManySkipped
    from mmdata.shards.writer import shard as run

    try:
        limit = _size(max_file_size)
    except typer.BadParameter as exc:
        raise typer.BadParameter(str(exc), param_hint="'--max-file-size'") from None
    with stopped_as_exit(f"mmdata shard into {out}", "rerun the same command to resume it (the shards it finished "
                                                      "are kept)"):
        cli_call = CLI_CALL.set(True)  # errors name this command's options (shard() adds its keywords)
        try:
            load_pandas_for_arrow()  # before the job: not in the middle of recording its first shard
            with warnings.catch_warnings():  # the report's warnings are printed below, once each
                warnings.simplefilter("ignore", ShardWarning)
                rep = run(src, out, maxcount=maxcount, maxsize=maxsize, workers=workers, split=split, seed=seed,
                          layout=layout, columns=_columns(column), label_names=labels, labels_from_folders=labels_from_folders,
                          on_error=on_error, max_file_size=limit, check=check, progress=True, fsync=fsync,
                          executor=executor, address=address, meta=_meta(meta), group_by=group_by, segment=segment,
                          root=root, paths=_columns(path, "--path", "TEMPLATE"), split_by=split_by, split_from=split_from, name=name, license=license_,
                          description=description, force=force, rewrite=rewrite, max_skipped=max_skipped)
        except TooManySkipped as exc:  # the dataset is written: say what it holds, then fail (--json: ok false)
            rep = {**exc.report, "ok": False, "exit_code": 1, "error": str(exc)}
        except OSError as exc:
            no_room(exc, out)
            raise
        finally:
            CLI_CALL.reset(cli_call)
    # stdout: what was written (or the JSON); stderr: what was left out and the warnings, with --json too
    if json_:
        print_json(rep)
    else:
        _wrote(rep)
    counts = {k: v for k, v in rep["skipped_counts"].items() if v}
    if counts:
        what = ", ".join(plural(v, k[:-1], k) for k, v in counts.items())
        note(f"[yellow]left out: {what}[/] (every one listed in dataset.json under \"skipped\"):")
        _left_out(rep["skipped"])
    for w in rep["warnings"]:
        warn(w)
    if rep.get("exit_code") == 1:
        note(f"[red]error:[/] {escape(rep['error'])}")
        raise typer.Exit(1)


def _wrote(rep: dict) -> None:
    """shard's result on stdout: what it wrote (or found up to date), resumed and removed."""
    what = f"{plural(rep['samples'], 'sample')}[/] in {plural(rep['shards'], 'shard')}"
    splits = ", ".join(f"{k}: {v}" for k, v in rep["splits"].items())
    if rep.get("up_to_date"):  # a rerun of the finished job over unchanged sources: nothing written
        console.print(f"up to date: {escape(one_line_path(rep['out']))} already holds this job's [bold]{what} ({splits}); nothing "
                      f"rewritten (sources, options and shards unchanged since it was written; --rewrite writes it "
                      f"again)")
    else:
        console.print(f"wrote [bold]{what} to {escape(one_line_path(rep['out']))} ({splits})")
    if rep.get("resumed_shards"):
        console.print(f"resumed: kept the {rep['resumed_shards']} of {plural(rep['shards'], 'shard')} an earlier run of this job "
                      "had finished")
    removed = rep.get("removed_stale") or []
    if removed:
        console.print(f"removed {plural(len(removed), 'shard')} of an earlier job in "
                      f"{escape(one_line_path(rep['out']))} that this job does not write: "
                      f"{escape(', '.join(removed[:5]))}{', ...' if len(removed) > 5 else ''}", highlight=False)


def _left_out(skipped: list[dict]) -> None:
    """The first ten causes (files, members, folders) and the samples they emptied as one line: a sample
    entry per emptied row would fill the ten lines and hide what was wrong."""
    from mmdata.shards.writer import skip_reasons

    emptied_by = {s["sample"] for s in skipped if s["what"] == "member"}
    emptied = [s for s in skipped if s["what"] == "sample" and s["sample"] in emptied_by]
    causes = [s for s in skipped if not (s["what"] == "sample" and s["sample"] in emptied_by)]
    for sk in causes[:10]:
        note(f"  {escape(one_line_path(sk['source']))}: {escape(one_line_path(sk['reason']))}")
    if len(causes) > 10:
        note(f"  ... and {len(causes) - 10} more; by reason: {escape('; '.join(skip_reasons(causes, 5)))}")
    # a sample emptied by its bad files, or a segment whose cut failed (QA37 review r3c #1: it still had its text);
    # one line each, whatever each sample's own words (a reason may name its row)
    cut = [s["sample"] for s in emptied if "could not be cut" in str(s.get("reason"))]
    rest = [s["sample"] for s in emptied if "could not be cut" not in str(s.get("reason"))]
    for keys, why in ((rest, " with no file or text left once these were left out, so left out whole"),
                      (cut, " whose segment of the recording could not be cut (a segment's text is not kept "
                            "without its audio), so left out whole")):
        if keys:
            shown = ", ".join(repr(k) for k in keys[:3]) + (", ..." if len(keys) > 3 else "")
            note(f"  {plural(len(keys), 'sample')}{escape(why)}: {escape(shown)}")


#: the card's text entries inspect shows (text and --json)
CARD_TEXT = ("license", "description", "command")
#: the characters of one warning inspect prints (a card's warnings are written by the job: long, but bounded)
WARNING_TEXT = 2000

#: above this many classes inspect summarises each split's classes instead of listing them (5,000 made a
#: 165,000-character line, 1,259 lines in a terminal)
MAX_CLASSES_LISTED = 30


def _classes(rep: dict) -> list[str]:
    """The dataset's classes: the card's names and every class a split holds, unlabelled samples apart."""
    names = dict.fromkeys(rep.get("label_names") or [])
    for counts in rep["per_class"].values():
        names.update(dict.fromkeys(k for k in counts if k != UNLABELLED_GROUP))
    return list(names)


def _class_summary(counts: dict[str, int], classes: list[str], few: int = 3) -> str:
    """One split's per-class counts in a line of bounded length: how many classes it holds, min / median /
    max samples per class, the smallest few, the classes it lacks, its unlabelled samples."""
    import statistics

    held = {k: v for k, v in counts.items() if k != UNLABELLED_GROUP}
    absent = [k for k in classes if k not in held]
    parts = [f"{len(held):,} of {len(classes):,} classes"]
    if held:
        values = sorted(held.values())
        parts.append(f"per class min {values[0]:,} / median {rounded(statistics.median(values))} / max {values[-1]:,}")
        smallest = sorted(held.items(), key=lambda kv: (kv[1], kv[0]))[:few]
        ties = sum(1 for v in values if v == values[0])
        parts.append("fewest " + ", ".join(f"{card_text(k)}: {v}" for k, v in smallest)
                     + (f" ({ties:,} classes with {values[0]:,} each)" if ties > few else ""))
    if absent:
        parts.append(f"absent {len(absent):,} (" + ", ".join(card_text(k) for k in absent[:few])
                     + (", ..." if len(absent) > few else "") + ")")
    if counts.get(UNLABELLED_GROUP):
        parts.append(f"unlabelled {counts[UNLABELLED_GROUP]:,}")
    return "; ".join(parts)


def _audio_per_class(per_class: dict[str, dict[str, float]], classes: list[str], few: int = 3,
                     with_audio: dict[str, dict[str, int]] | None = None) -> None:
    """Each class's audio (h:mm:ss) per split: a class x split table up to MAX_CLASSES_LISTED classes, above
    that one bounded line per split (min / median / max per class, the least few), as the counts are.
    ``with_audio``: per split and class, its samples with audio; a class with none there is ``-``, as a class
    absent from the split is (QA33 multisite #10: ``0:00:00`` read as audio of no length)."""
    import statistics

    from mmdata.shards.inspect import duration_text

    splits = list(per_class)
    if len(classes) <= MAX_CLASSES_LISTED:
        rows = classes + ([UNLABELLED_GROUP] if any(UNLABELLED_GROUP in c for c in per_class.values()) else [])
        t = table("audio per class", *(escape(card_text(s)) for s in splits))
        for name in rows:
            t.add_row(escape(card_text(name)), *(duration_text(per_class[s][name]) if name in per_class[s] and
                                                     (with_audio is None or with_audio.get(s, {}).get(name, 1))
                                                     else "-" for s in splits))
        console.print(t)
        return
    t = table("split", "audio per class")
    for split in splits:
        # a class without audio in the split is counted apart, not a minimum of 0:00:00 (QA33 review)
        mute = [k for k in per_class[split] if k != UNLABELLED_GROUP and with_audio is not None
                and not with_audio.get(split, {}).get(k, 1)]
        held = sorted((v, k) for k, v in per_class[split].items() if k != UNLABELLED_GROUP and k not in mute)
        if not held and not mute:
            continue
        values = [v for v, _ in held]
        cell = (f"{len(held):,} classes; per class min {duration_text(values[0])} / median "
                f"{duration_text(statistics.median(values))} / max {duration_text(values[-1])}; least "
                + ", ".join(f"{card_text(k)}: {duration_text(v)}" for v, k in held[:few])) if held else ""
        if mute:
            cell += (f"{'; ' if held else ''}{len(mute):,} class{'es' * (len(mute) != 1)} without audio ("
                     + ", ".join(card_text(k) for k in sorted(mute)[:few]) + (", ..." if len(mute) > few else "") + ")")
        t.add_row(escape(card_text(split)), escape(cell))
    console.print(t)


def inspect(path: DataUrl, json_: JsonFlag = False,
            by: Annotated[Optional[str], typer.Option("--by", help="Also show the samples per value of this metadata key (a --meta column) or index column, per split and per class, missing values counted, with a note where a value nearly tells the class or a split lacks it (QA39 fairness #8). Reads every sample's json member from the local shards; json.KEY names a metadata key. A number field is read as evaluate --by reads it (more than 10 numbers, 20 if all whole: 4 equal-count bins). With --json a list / object value keeps its type (\"type\": \"list\"), and inf is \"inf\" with \"type\": \"number\" (docs/scale.md).")] = None,
            bins: Annotated[Optional[int], typer.Option("--bins", min=0, help="With --by on a number field: this many equal-count bins (0: one row per number).")] = None) -> None:
    """Samples per split / class / modality pattern, total audio (h:mm:ss) per split and class, shard sizes,
    bytes and media distributions, what the jobs that wrote it left out. Above 30 classes each split's classes
    are summarised (how many, min / median / max samples and audio per class, the fewest, the classes it
    lacks); --json lists every class."""
    from mmdata.shards.inspect import duration_text, inspect as run

    rep = run(path)
    if by is not None:
        from mmdata.shards.inspect import metadata_groups

        rep["groups"] = metadata_groups(path, by, bins=bins)
    elif bins is not None:
        raise typer.BadParameter("--bins bins a --by number field; give --by FIELD", param_hint="--bins")
    dtypes = _npy_dtypes(path)  # each .npy field's dtypes, counted at shard time (QA35 review media #2)
    if json_:
        print_json({**_card_identity(path), **rep, **({"npy_dtypes": dtypes} if dtypes else {})})
        _inspect_warnings(rep)
        return
    dur = rep["audio_duration"]
    # as `mmdata shard` said it: samples and members apart (the card's entry count mixed them)
    left = ", ".join(plural(v, k[:-1], k) for k, v in rep["skipped_counts"].items() if v) or "none"
    # names from the card and the data are untrusted text, never markup (QA: a class '[/b]' crashed inspect)
    card = _card_identity(path)
    console.print(f"[bold]{escape(card_text(rep['name']))}[/] ({escape(card_text(rep['layout']))} layout): {plural(rep['samples'], 'sample')}, "
                  f"{plural(rep['shards']['count'], 'shard')}, {rep['shards']['total_bytes'] / 1e6:.2f} MB"
                  + (f", {duration_text(dur['seconds'])} of audio" if dur["samples"] else "")
                  + f", left out by the jobs that wrote it (shard / add-modality / augment; listed in dataset.json's "
                  f"skipped): {escape(left)}")
    for k in CARD_TEXT:  # what the dataset may be used for, and how it was made
        if card.get(k) is not None:
            console.print(f"{k}: {escape(card_text(card[k]))}", highlight=False)
    classes = _classes(rep)
    t = table("split", "samples", *(("audio",) if dur["samples"] else ()), "per class")
    for split, n in rep["per_split"].items():
        counts = rep["per_class"].get(split, {})
        # an invisible character in a name is shown escaped ('cat\u200b' and 'cat' printed alike)
        cell = (", ".join(f"{card_text(k)}: {v}" for k, v in counts.items()) if len(classes) <= MAX_CLASSES_LISTED
                else _class_summary(counts, classes))
        audio = (duration_text(dur["per_split"][split]["seconds"]),) if dur["samples"] else ()
        t.add_row(escape(card_text(split)), str(n), *audio, escape(cell))
    console.print(t)
    if len(classes) > MAX_CLASSES_LISTED:
        console.print(f"{len(classes):,} classes: each split's counts summarised; --json lists every class (per_class)",
                      highlight=False)
    if dur["samples"] and classes:
        _audio_per_class(dur["per_class"], classes, with_audio=dur.get("per_class_samples"))
    t = table("modality pattern", "samples")
    for k, v in rep["patterns"].items():
        t.add_row(escape(card_text(k)), str(v))
    console.print(t)
    if rep.get("metadata_columns"):
        kinds = rep.get("metadata_kinds") or {}
        shown = ", ".join(f"{card_text(c)} ({card_text(kinds[c])})" if c in kinds else card_text(c)
                          for c in rep["metadata_columns"])
        console.print(f"metadata (each sample's json field): {escape(shown)}", highlight=False)
    t = table("modality", "bytes")
    for k, v in rep["bytes_per_modality"].items():
        t.add_row(escape(card_text(k)), f"{v:,}")
    console.print(t)
    t = table("distribution", "count", "min", "median", "max")
    for k in ("image_height", "image_width", "audio_seconds", "text_chars"):
        d = rep[k]
        if d:
            t.add_row(k, str(d["count"]), rounded(d["min"]), rounded(d["median"]), rounded(d["max"]))
    if t.row_count:  # an arrays-only dataset has none of these: no empty table (QA36 timeseries #9)
        console.print(t)
    t = table("modality", "samples", "formats")
    img, aud = rep["image"], rep["audio"]
    show = lambda counts: ", ".join(f"{k}: {v}" for k, v in counts.items())  # noqa: E731
    if img["count"]:
        t.add_row("image", str(img["count"]), f"modes {show(img['modes'])}; channels {show(img['channels'])}; "
                                              f"{plural(img['sizes'], 'distinct size')}")
    if aud["count"]:
        # PCM_16 / PCM_24 / FLOAT (QA38 bioacoustics #7); an augment output mixes them by design (its changed clips
        # are written as float WAV): said so, not flagged (QA38 review b #3)
        mixed = ("" if len(aud.get("subtypes") or ()) < 2 else " (augment writes changed clips as FLOAT)"
                 if aud.get("subtypes_augmented") else " [yellow](mixed)[/]")
        formats = f"; formats {show(aud['subtypes'])}{mixed}" if aud.get("subtypes") else ""
        t.add_row("audio", str(aud["count"]), f"sample rates {show(aud['sample_rates'])}; channels {show(aud['channels'])}"
                                              f"{formats}")
    if rep["text"]["count"]:
        t.add_row("text", str(rep["text"]["count"]), f"{rep['text']['empty']} empty")
    arrays = rep.get("arrays") or {}
    for f, counts in dtypes.items():  # a mix of dtypes is also a card warning (collate refuses such a batch)
        a = arrays.get(f, {})
        cell = f".npy dtypes {escape(card_text(show(counts)))}" + (" [yellow](mixed)[/]" if len(counts) > 1 else "")
        if a.get("shapes"):  # ranks / shapes beyond the first axis, lengths, empty arrays (QA36 timeseries #9)
            ranks = a.get("ranks") or {}
            cell += (f"; shapes {escape(card_text(show(a['shapes'])))}"
                     + (" [yellow](mixed)[/]" if len(a["shapes"]) > 1 else ""))
            cell += f"; ranks {escape(card_text(show(ranks)))}" if len(ranks) > 1 else ""
        if a.get("length"):
            lab = f"axis {a['length_axis']} (T)" if a.get("length_axis") else "first axis"  # (2, T) I/Q: QA38 RF #6
            cell += f"; {lab} {a['length']['min']:,}..{a['length']['max']:,}"
        if len(a.get("varying_axes") or ()) > 1:  # collate pads them all, warning unless they are maps of images
            cell += f"; [yellow]axes {', '.join(map(str, a['varying_axes']))} vary[/]"
        if a.get("empty"):
            cell += f"; [yellow]{a['empty']} empty[/]"
        t.add_row(escape(card_text(f)), str(sum(counts.values())), cell)
    console.print(t)
    _added_fields(rep, card)
    if rep.get("groups"):
        _groups(rep["groups"])
    _inspect_warnings(rep)


def _groups(g: dict) -> None:
    """``inspect --by FIELD``: the samples per value, per split and per class, and the notes (QA39 fairness #8)."""
    from mmdata.cli.evaluate import BY_ROWS
    from mmdata.shards.inspect import group_text

    splits = list(g["values"][0]["per_split"]) if g["values"] else []
    rows = g["values"]
    # capped as evaluate --by is, the missing row always shown (QA39 review evaluate #6)
    shown = rows if len(rows) <= BY_ROWS else [r for r in rows if r["value"] is not None][:BY_ROWS - 1] + \
        [r for r in rows if r["value"] is None]
    t = table(escape(card_text(g["field"])), "samples", *map(lambda s: escape(card_text(s)), splits), "per class",
              title=f"samples by {escape(card_text(g['field']))}" + (f" ({len(shown)} of {len(rows)} values shown)"
                                                                      if len(shown) < len(rows) else ""))
    for r in shown:
        value = group_text(r)  # a list apart from its text, inf unquoted (QA40 hostile #3, #4)
        t.add_row(escape(card_text(value)), str(r["samples"]), *(str(r["per_split"][s]) for s in splits),
                  escape(card_text(", ".join(f"{k}: {v}" for k, v in r["per_class"].items()))))
    console.print(t)
    if len(shown) < len(rows):
        console.print(f"... and {len(rows) - len(shown)} more values not shown; every one: --json; fewer: --bins N for "
                      "a number field", highlight=False)
    said = []
    if g.get("numeric"):
        said.append("read as numbers" + (f", in {len(g['edges']) - 1} equal-count bins (--bins N; 0: one row per "
                                         "number)" if g.get("edges") else ""))
        if g.get("markers"):
            said.append("counted as missing: " + ", ".join(f"{m!r} ({n})" for m, n in g["markers"].items()))
        if g.get("words"):
            said.append("not numbers, each its own row: " + ", ".join(f"{m!r} ({n})" for m, n in g["words"].items()))
    if g.get("not_numeric"):
        said.append("read as text although most samples hold numbers: " + ", ".join(
            f"{m!r} ({n})" for m, n in list(g["not_numeric"].items())[:6]) + " are neither numbers nor NA markers")
    if g.get("bins_unused"):
        said.append("--bins not used (not read as numbers)")
    if said:
        console.print(escape(card_text(f"{g['field']}: " + "; ".join(said))), highlight=False)
    if g.get("unread"):
        console.print(f"not counted: {plural(g['unread'], 'sample')} whose json member could not be read", highlight=False)
    for n in g["notes"]:
        note(f"[yellow]note ({escape(card_text(g['field']))}):[/] {escape(card_text(n, WARNING_TEXT))}")


def _added_fields(rep: dict, card: dict) -> None:
    """The fields ``mmdata add-modality`` wrote, their license, and that a re-shard does not carry them."""
    added = rep.get("added_fields") or {}
    if not added:
        return
    parts = []
    for f, a in added.items():
        lic = (f"license {card_text(a['license'])}" if a.get("license") else "the dataset's license"
               + (f" ({card_text(card['license'])})" if card.get("license") else ""))
        credit = f", attribution {card_text(a['attribution'])}" if a.get("attribution") else ""
        parts.append(f"{card_text(f)} ({a.get('count', 0):,} samples, {a.get('missing', 0):,} without it; "
                     f"{lic}{credit})")
    console.print(f"added by add-modality: {escape('; '.join(parts))} — a re-shard of the sources (mmdata shard, "
                  f"--split-from too) does not carry them: add them again to the new dataset", highlight=False)


def _npy_dtypes(path: str) -> dict[str, dict[str, int]]:
    """The card's ``.npy`` dtypes per field (``modalities[field]["dtypes"]``, written by shard since 2026-12-07),
    {} where it has none."""
    from mmdata.errors import MMDataError
    from mmdata.shards.index import load_card

    try:
        card = load_card(path, shard_lists=False)
    except (MMDataError, OSError, ValueError):
        return {}
    mods = card.get("modalities") if isinstance(card, dict) else None
    return {f: {str(d): n for d, n in m["dtypes"].items() if isinstance(n, int)}
            for f, m in (mods if isinstance(mods, dict) else {}).items()
            if isinstance(m, dict) and isinstance(m.get("dtypes"), dict)}


def _inspect_warnings(rep: dict) -> None:
    """inspect's warnings on stderr (with --json too: the JSON's ``warnings`` hold them as well)."""
    for w in rep["warnings"]:
        # a card's warnings are downloaded text: a live ESC[1A ESC[2K would erase the warning above
        note(f"[yellow]warning ({escape(card_text(w['kind']))}):[/] {escape(card_text(w['message'], WARNING_TEXT))}")


def _card_identity(path: str) -> dict:
    """``fingerprint``, ``mmdata_version``, ``license``, ``description`` and ``command`` of the dataset's card, where
    it has them (what a CI compares to tell one build of a dataset from another, what the data may be used for and
    how it was made); nothing for shards without a card."""
    from mmdata.errors import MMDataError
    from mmdata.shards.index import load_card

    try:
        card = load_card(path, shard_lists=False)
    except (MMDataError, OSError, ValueError):  # read a moment ago by inspect: a card changed since says nothing
        return {}
    return {k: card[k] for k in ("fingerprint", "mmdata_version", *CARD_TEXT) if isinstance(card, dict) and k in card}


def verify(
    path: DataUrl,
    deep: Annotated[bool, typer.Option(help="Also decode every member (corrupt media bodies fail) and compare label members with the index.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Check every shard (sha256, member count, tar headers) against shards.parquet, index.parquet and the card
    (shard lists, fingerprint, label names, counts, source keys; the card's other entries, license included,
    against the digests the job recorded). --deep also compares decoded image sizes and audio lengths with the index, and warns (exit 0) per field of .npy arrays holding NaN / inf. WebDataset shards without an index (a .tar, a pattern,
    a folder of tars) are read through as open_dataset reads them: tar structure, keys, members (--deep: decoded),
    keys in two shards. Exit status: 0 no problem; 1 problems found (each named:
    shard, and the sample key and member where known; the JSON problems carry them as key / member; past 20 of a
    kind per shard one JSON row counts the rest, in "more"; the card's
    entries edited since the job wrote them are named from its card_digests, a card without them is said to be
    unprotected: unprotected_card), also a
    missing or damaged shards.parquet or index.parquet; 2 usage errors or a path that is not a readable dataset
    folder (missing, no or unreadable dataset.json)."""
    from mmdata.shards.verify import verify as run

    rep = run(path, deep=deep)
    if json_:
        print_json({"deep": deep, **rep}, exit_code=0 if rep["ok"] else 1, error=_problems_error(path, rep))
        for p in rep["problems"]:  # on stderr too: a CI log names them, as without --json
            note(_problem_line(p))
    elif rep["ok"] and rep.get("bare"):  # WebDataset shards without an index: read through by the reader
        console.print(f"[green]ok[/]: {plural(rep['checked'], 'shard')} without an index read through: "
                      f"{plural(rep['samples'], 'sample')}, every one whole{' and decoded' if deep else ''}, no key in "
                      f"two shards{'' if deep else ' (--deep also decodes every member)'}")
    elif rep["ok"]:
        n = rep["checked"]
        console.print(f"[green]ok[/]: {plural(n, 'shard')} {'matches' if n == 1 else 'match'} the index")
    else:
        for p in rep["problems"]:
            console.print(_problem_line(p), highlight=False)
    if rep.get("unprotected_card"):  # an older card: what verify could not check (stderr; --json has it too)
        note(f"[yellow]note:[/] {escape(rep['unprotected_card'])}")
    for w in rep.get("warnings") or ():  # --deep: .npy arrays holding NaN / inf, per field (no problem: exit 0)
        note(f"[yellow]warning:[/] {escape(one_line_path(w))}")
    if not rep["ok"]:
        raise typer.Exit(1)


def _problem_line(p: dict) -> str:
    """One problem verify found, as one line (markup: the data escaped)."""
    seen = ", ".join(f"{k} {p[k]}" for k in ("expected", "found") if p[k] is not None and p[k] != "file")
    # the sample a problem is about, when its text does not name it already
    about = next((f"{k} {p[k]}" for k in ("member", "key") if p.get(k) and str(p[k]) not in p["problem"]), "")
    # control characters escaped: a problem quotes the card and the index (downloaded data)
    line = lambda text: escape(one_line_path(text))  # noqa: E731
    return (f"[red]{line(p['shard'])}[/]: {line(p['problem'])}" + (f" ({line(seen)})" if seen else "")
            + (f" [{line(about)}]" if about else ""))


def _problems_error(path: str, rep: dict) -> str | None:
    """The ``error`` line of a failed ``verify --json``: how many problems, the first; None when there is none."""
    if rep["ok"]:
        return None
    from mmdata.urls import redact

    path = redact(str(path))  # a URL's password never reaches a message
    problems = rep["problems"]
    if not problems:
        return f"{path} failed verification"
    first = problems[0]
    n = len(problems)
    return (f"{plural(n, 'problem')} found in {path}: {first['shard']}: {first['problem']}"
            + (f"; and {n - 1} more" if n > 1 else ""))


def add_modality(
    path: DataDir,
    name: Annotated[str, typer.Argument(help="Field to add (image, audio, text, or an extra like depth).")],
    src: Annotated[Path, typer.Argument(help="Folder of files named <key>.<field>.<ext> or <source_key>.<field>.<ext> (0001.depth.npy, a 16-bit 0001.depth.png for the field depth.png; 0001.png for image), or, when no file names the field, <key>.npy / <source_key>.npy (a stem may hold dots: frame_1701234567.990.npy); or a CSV / JSONL / Parquet manifest with a key column and a column named after the field holding the files' paths. A file of a sample that cannot be used (an unknown type: 0001.imu.csv) is left out and listed in dataset.json's skipped; files matching no sample are only counted there.")],
    replace: Annotated[bool, typer.Option(help="Replace an existing series of that name.")] = False,
    on_error: Annotated[str, typer.Option(callback=one_of("skip", "raise"), help="skip (leave bad files out, the sample lacks the field, and report them) or raise (stop at the first, naming it; the dataset is left as it was).")] = "skip",
    license_: Annotated[Optional[str], typer.Option("--license", help="The field's license (e.g. CC-BY-4.0) where its files are under another than the dataset's, recorded on the field in dataset.json (modalities.<field>.license); without it the field carries the dataset's license (with --replace: the one the replaced series recorded; 'dataset': the dataset's).")] = None,
    attribution: Annotated[Optional[str], typer.Option(help="Who to credit for the field's files, recorded on the field in dataset.json (with --replace and without it: the one the replaced series recorded, 'none': none; --license and --attribution are each kept unless given).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Add (or replace) one modality's shard series in a column-layout dataset (all or nothing)."""
    from mmdata.shards.columns import add_modality as run

    load_pandas_for_arrow()
    # Ctrl-C and SIGTERM alike put the dataset back as it was (the job is all or nothing)
    with stopped_as_exit(f"mmdata add-modality into {path}", "the dataset is as it was; rerun the command to add the field"):
        rep = run(path, name, src, replace=replace, on_error=on_error, license=license_, attribution=attribution)
    if json_:
        print_json(rep)  # every key without the field (missing_keys)
    else:
        keys = rep["missing_keys"]
        # the samples without it by key (a few here; --json and dataset.json's modalities.<field>.missing_keys list them)
        without = (": " + ", ".join(escape(one_line_path(repr(k))) for k in keys[:MISSING_SHOWN])
                   + (f", ... (all in --json, and in dataset.json's modalities.{escape(name)}.missing_keys)"
                      if len(keys) > MISSING_SHOWN else "")) if keys else ""
        console.print(f"added {escape(repr(name))} to {plural(rep['added'], 'sample')} ({rep['missing']} without "
                      f"it{without}) in {plural(rep['shards'], 'shard')}", highlight=False)
    for w in rep.get("warnings") or ():  # as shard's: a .npy field's dtype mix, shapes, empty arrays (stderr)
        warn(w)
    if rep["skipped"]:  # on stderr, as shard's: stdout is what was added
        n = rep["skipped"]
        note(f"[yellow]{plural(n, 'bad file')} left out[/] (listed in dataset.json under \"skipped\"):")
        for sk in rep["skipped_files"]:
            note(f"  {escape(one_line_path(sk['source']))} (sample {escape(one_line_path(sk['sample']))}): "
                 f"{escape(one_line_path(sk['reason']))}")
        if n > len(rep["skipped_files"]):
            note(f"  ... and {n - len(rep['skipped_files'])} more")
    if rep["unmatched"]:
        n = rep["unmatched"]
        why = "; ".join(f"{escape(reason)}: {count}" for reason, count in rep["unmatched_reasons"].items())
        # named here only: the card counts them (their names are the source folder's, not the dataset's)
        note(f"[yellow]not used: {plural(n, 'file')}[/] ({why}; counted in dataset.json under "
             f"modalities.{escape(name)}.unmatched, not named there): "
             + ", ".join(escape(one_line_path(f)) for f in rep["unmatched_files"])
             + (f" ... and {n - len(rep['unmatched_files'])} more" if n > len(rep["unmatched_files"]) else ""))
    kept = rep.get("kept_from_replaced")
    if kept:  # silent, credit of other files would be published as these files' (QA37 review r3c #5)
        how = {"license": "--license LICENSE, or --license dataset for the dataset's",
               "attribution": "--attribution NAME, or --attribution none"}
        note("kept from the replaced series: " + ", ".join(f"{k} {escape(repr(v))}" for k, v in kept.items())
             + f" (if the new files are not under it, give {'; '.join(how[k] for k in kept)}, with --replace)")
    if rep.get("protected_card"):
        note(f"dataset.json had no card_digests (written before 2026-12-06): recorded them for the card as it is "
             f"(an earlier edit is not told apart); read it with `mmdata inspect {escape(one_line_path(path))}`")


#: how many keys of samples without the added field the add-modality line names
MISSING_SHOWN = 5


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(shard)
    app.command()(inspect)
    app.command()(verify)
    app.command("add-modality")(add_modality)
