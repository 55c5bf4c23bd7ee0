"""``mmdata inspect``: what a dataset holds, from its index (fast: nothing is decoded)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from mmdata.codecs import IMAGE_EXTS, field_of
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.urls import is_remote, lookup, unless_file_url

#: the index columns inspect reads (a missing one is a ShardError naming it); ``image_mode``,
#: ``image_channels``, ``audio_channels`` and ``named_image_sizes`` are optional (indexes written
#: before them lack them)
INDEX_COLUMNS = ("key", "split", "label", "members", "sizes", "modalities", "image_height", "image_width",
                 "audio_seconds", "audio_sample_rate", "text_chars")


def _column(table: Any, name: str) -> Any:
    """Column ``name`` of the index as one Arrow array (all nulls when an older index lacks it)."""
    import pyarrow as pa

    if name not in table.column_names:
        return pa.nulls(table.num_rows)
    return table.column(name).combine_chunks()


def _dist(column: Any) -> dict[str, float] | None:
    """count / min / median / max of a numeric column (nulls and NaN left out), as Python numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.drop_null(column)
    if pa.types.is_floating(values.type):
        values = values.filter(pc.invert(pc.is_nan(values)))
    n = len(values)
    if not n:
        return None
    order = pc.sort_indices(values)

    def at(i: int) -> Any:
        return values[order[i].as_py()].as_py()

    median = at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2
    return {"count": n, "min": at(0), "median": median, "max": at(n - 1)}


def _value_counts(column: Any) -> list[tuple[Any, int]]:
    """(value, count) of a column's non-null values, in the order the values first occur."""
    import pyarrow.compute as pc

    vc = pc.value_counts(column)
    return [(v, c) for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()) if v is not None]


def _counts(column: Any) -> dict[str, int]:
    """Value -> count for the non-null values, most common first, ties in the order the values first
    occur (keys as strings, as in JSON)."""
    return {str(v): c for v, c in sorted(_value_counts(column), key=lambda vc: -vc[1])}


def _class_name(label: int | None, names: list[str] | None) -> str:
    """A label id's class name: ``(none)`` for no label, the id where the card has no name for it."""
    if label is None:
        return idx.UNLABELLED_GROUP
    return names[label] if names and 0 <= label < len(names) else str(label)


def _per_class(split: Any, label: Any, names: list[str] | None) -> dict[str, dict[str, int]]:
    """split -> class name (``(none)`` for no label, the id where the card has no name for it) -> count."""
    import pyarrow as pa
    import pyarrow.compute as pc

    groups = pa.table({"split": split, "label": label}).group_by(["split", "label"]).aggregate(
        [("split", "count", pc.CountOptions(mode="all"))])
    out: dict[str, dict[str, int]] = {}
    for pair, count in zip(groups.select(["split", "label"]).to_pylist(), groups.column("split_count").to_pylist()):
        name = _class_name(pair["label"], names)
        per = out.setdefault(pair["split"], {})
        per[name] = per.get(name, 0) + count
    return out


#: audio seconds in ``audio_duration`` are rounded to this many decimals (a millisecond): a sum of floats
#: is then the same number whatever order Arrow adds them in
SECONDS_DECIMALS = 3


def duration_text(seconds: float) -> str:
    """``h:mm:ss`` of a duration (hours not wrapped at 24), as speech corpora report their size; under a
    minute with hundredths, so a small set does not read as a round number of seconds.

    Example:
        >>> duration_text(3725.4), duration_text(1.5), duration_text(100 * 3600)
        ('1:02:05', '0:00:01.50', '100:00:00')
    """
    if seconds < 0:  # an edited index's negative durations: shown as they sum
        return "-" + duration_text(-seconds)
    if round(seconds, 2) < 60:
        return f"0:00:{seconds:05.2f}" if round(seconds, 2) else "0:00:00"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _audio_duration(split: Any, label: Any, seconds: Any, names: list[str] | None,
                    splits: list[str]) -> dict[str, Any]:
    """Total audio seconds (finite ``audio_seconds`` only: null, NaN and inf of an edited index are left out)
    of the dataset, per split (``samples`` with a duration, ``seconds``; every split in ``splits``) and per
    split and class (every class ``per_class`` lists there, 0 where none of its samples has audio), rounded
    to :data:`SECONDS_DECIMALS`, and ``per_class_samples``: per split and class, its samples with a duration
    (0: the class has no audio there, which tables show as ``-``, not ``0:00:00``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seconds = pc.cast(seconds, pa.float64())
    finite = pc.if_else(pc.fill_null(pc.is_finite(seconds), False), seconds, pa.scalar(None, pa.float64()))
    t = pa.table({"split": split, "label": label, "s": finite})

    def total(values: Any) -> float:
        return round(float(values or 0.0), SECONDS_DECIMALS)

    # use_threads=False: groups (and each group's additions) in index order, so the same index gives the same sums
    by_split = t.group_by("split", use_threads=False).aggregate([("s", "sum"), ("s", "count")]).to_pydict()
    got = {sp: (n, total(s)) for sp, s, n in zip(by_split["split"], by_split["s_sum"], by_split["s_count"])}
    per_split = {sp: {"samples": got.get(sp, (0, 0.0))[0], "seconds": got.get(sp, (0, 0.0))[1]} for sp in splits}
    groups = t.group_by(["split", "label"], use_threads=False).aggregate([("s", "sum"), ("s", "count")]).to_pydict()
    per_class: dict[str, dict[str, float]] = {}
    with_audio: dict[str, dict[str, int]] = {}
    for sp, lab, s, k in zip(groups["split"], groups["label"], groups["s_sum"], groups["s_count"]):
        per = per_class.setdefault(sp, {})
        name = _class_name(lab, names)
        per[name] = per.get(name, 0.0) + (s or 0.0)  # a label without a name and a class named like its id: one
        with_audio.setdefault(sp, {})[name] = with_audio.get(sp, {}).get(name, 0) + k
    return {
        "seconds": total(pc.sum(finite).as_py()),
        "samples": len(finite) - finite.null_count,
        "per_split": per_split,
        "per_class": {sp: {k: total(v) for k, v in sorted(c.items())} for sp, c in sorted(per_class.items())},
        "per_class_samples": {sp: dict(sorted(c.items())) for sp, c in sorted(with_audio.items())},
    }


#: the kinds of entries in a card's ``skipped``, in the order ``mmdata shard`` reports them
_SKIPPED_KINDS = ("samples", "members", "files", "folders")


def _skipped_counts(card: dict[str, Any]) -> dict[str, int]:
    """What the jobs that wrote the dataset left out, by kind (``samples`` / ``members`` / ``files`` /
    ``folders``), as ``mmdata shard`` reports it: the card's ``skipped_counts``, or, for a card without
    them (written before they were, or edited), its ``skipped`` entries counted by their ``what``."""
    counts = card.get("skipped_counts")
    if not counts:
        entries = card.get("skipped")
        counts = Counter(str(e.get("what") or "sample") + "s" for e in entries or () if isinstance(e, dict))
    # in shard's order (the card's JSON sorts its keys: 'files' came first)
    return {w: counts.get(w, 0) for w in _SKIPPED_KINDS} | dict(counts)


#: a member name's key and the dot after it: the path up to the first dot of the basename (WebDataset's rule,
#: :func:`mmdata.shards.tario.split_member`)
_MEMBER_KEY = r"^(?:.*/)?[^/.]*\."


def _bytes_per_modality(members: Any, sizes: Any) -> dict[str, int]:
    """Member bytes summed per modality field (the member name's part after its first dot, read by
    :func:`field_of`); a member without a dot or a null size is left out (it fails `mmdata verify`),
    and a row with more members than sizes (or fewer) counts its pairs only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n_m = pc.fill_null(pc.list_value_length(members), 0)
    n_s = pc.fill_null(pc.list_value_length(sizes), 0)
    if not pc.all(pc.equal(n_m, n_s)).as_py():  # an edited index: pair them as zip does, row by row
        pairs = [(m, s) for ms, ss in zip(members.to_pylist(), sizes.to_pylist()) for m, s in zip(ms or (), ss or ())]
        names, values = pa.array([m for m, _ in pairs], pa.string()), pa.array([s for _, s in pairs], pa.int64())
    else:
        names, values = pc.list_flatten(members), pc.list_flatten(sizes)
    # split as the reader splits (tario.split_member): at the first dot of the basename, so a key with a dot
    # in a folder ('v1.0/spk1/utt_0001.flac', from foreign shards) is one sample's audio, not a field of its own
    keep = pc.and_(pc.and_(pc.is_valid(names), pc.is_valid(values)), pc.match_substring_regex(names, _MEMBER_KEY))
    ext = pc.replace_substring_regex(names.filter(keep), pattern=_MEMBER_KEY, replacement="", max_replacements=1)
    sums = pa.table({"ext": ext, "bytes": values.filter(keep)}).group_by("ext").aggregate([("bytes", "sum")])
    out: Counter[str] = Counter()
    for e, total in zip(sums.column("ext").to_pylist(), sums.column("bytes_sum").to_pylist()):
        out[field_of(e)] += total
    return dict(sorted(out.items()))


def _patterns(modalities: Any) -> dict[str, int]:
    """Modality-presence pattern (``image+audio``) -> count, most common first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    joined = pc.binary_join(modalities, "+")
    if joined.null_count:  # a null list or null names in one (an edited index): joined as the readers read it
        joined = pa.array(["+".join(x for x in m or () if isinstance(x, str)) for m in modalities.to_pylist()])
    return dict(sorted(_value_counts(joined), key=lambda vc: -vc[1]))


def _top(counts: dict[str, int], k: int) -> dict[str, int]:
    """The ``k`` most common values, and how many values more (``"...": n``)."""
    top = dict(list(counts.items())[:k])
    return top | {"...": len(counts) - k} if len(counts) > k else top


def _mix(kind: str, counts: dict[str, int], fix: str) -> dict[str, str] | None:
    if len(counts) < 2:
        return None
    shown = ", ".join(f"{k}: {v}" for k, v in counts.items())
    return {"kind": kind, "message": f"mixed {kind} ({shown}): {fix}"}


@lru_cache(maxsize=None)
def reader_channels(mode: str) -> int | None:
    """The channel count the reader's default decode gives an image of Pillow ``mode``: the rule of
    :func:`mmdata.codecs.image_array` itself, applied to a 1x1 image of that mode (None when Pillow
    cannot make one). Greyscale (``L``, 16-bit, ``I``, ``F``, bilevel ``1`` and grey + alpha ``LA``: QA38 documents
    #6) gives 1; every other mode, ``RGBA`` / ``P`` included, is converted to RGB: 3.

    Example:
        >>> reader_channels("L"), reader_channels("RGBA"), reader_channels("LA"), reader_channels("1")
        (1, 3, 1, 1)
    """
    from PIL import Image

    from mmdata.codecs import image_array

    try:
        a = image_array(Image.new(mode, (1, 1)))
    except Exception:  # noqa: BLE001 - a mode Pillow cannot make or convert: unknown here
        return None
    return 1 if a.ndim == 2 else int(a.shape[2])


#: the reader's channels for an image whose index row has a band count but no mode (an edited index):
#: 3 or 4 bands are converted to RGB; 2 bands are grey + alpha (``LA``: 1, the common one; ``PA``: 3); 1 band is
#: greyscale or bilevel (1) or a palette image (3), so unknown
_READER_CHANNELS_OF_BANDS = {2: 1, 3: 3, 4: 3}


def _reader_channel_counts(modes: Any, bands: Any) -> dict[str, int]:
    """Channel count the reader decodes (:func:`reader_channels` of each row's mode) -> images, most
    common first; a row without a known mode counts by its band count where that decides it, and is
    left out otherwise (an index written before both columns has no counts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(modes.type):
        modes = modes.dictionary_decode()
    distinct = pc.unique(modes).drop_null()
    by_mode = pa.array([reader_channels(str(m)) for m in distinct.to_pylist()], pa.int64())
    got = pc.take(by_mode, pc.index_in(pc.cast(modes, pa.string()), value_set=pc.cast(distinct, pa.string())))
    if got.null_count:  # no mode, or one Pillow cannot make: the band count, where it tells
        known = pa.array(list(_READER_CHANNELS_OF_BANDS), pa.int64())
        from_bands = pc.take(pa.array(list(_READER_CHANNELS_OF_BANDS.values()), pa.int64()),
                             pc.index_in(pc.cast(bands, pa.int64()), value_set=known))
        got = pc.coalesce(got, from_bands)
    return _counts(got)


def _channel_mix(modes: dict[str, int]) -> dict[str, str] | None:
    """A warning when the images' modes decode to different channel counts (a batch cannot stack them);
    modes that decode alike (``RGB`` and ``RGBA``: both RGB) are no mix."""
    by: dict[int, list[str]] = {}
    for mode, n in modes.items():
        c = reader_channels(mode)
        if c is not None:
            by.setdefault(c, []).append(f"{mode}: {n}")
    if len(by) < 2:
        return None
    counts = sorted(by)
    shown = "; ".join(f"{c} channel{'s' * (c != 1)} from {', '.join(by[c])}" for c in counts)
    return {"kind": "image channels", "message": f"images decode to {' and '.join(map(str, counts))} channels "
            f"({shown}): a batch needs one channel count; add {{op: to_rgb}} (or to_gray) to normalize.image "
            f"in the recipe" + (f" ({{op: to_rgb, alpha: blend, background: 255}} puts the images with an alpha "
                                f"channel on white: see the image alpha warning)" if _alpha_modes(modes) else "")}


#: Pillow modes with an alpha channel; ``P`` may hold a transparent palette entry (tRNS), which the index does not say
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _alpha_modes(modes: dict[str, int]) -> dict[str, int]:
    return {m: n for m, n in modes.items() if m in ALPHA_MODES}


def _alpha_warning(modes: dict[str, int]) -> dict[str, str] | None:
    """A note when images have an alpha channel (QA39 ecommerce #6, music #8): the reader drops it (as PIL's
    ``convert("RGB")``: the colour stored under a transparent pixel is kept, black for most exporters), so a
    cut-out's background is whatever that colour is, and the index's ``image_channels`` (the file's bands, 4) is
    not what the reader gives (3); ``to_rgb`` with ``alpha: blend`` puts them on a chosen background."""
    alpha = _alpha_modes(modes)
    if not alpha:
        return None
    n = sum(alpha.values())
    palette = f"; the {modes['P']} palette (P) images may hold a transparent colour too" if modes.get("P") else ""
    return {"kind": "image alpha", "message": f"{n} image{'s' * (n != 1)} have an alpha channel "
            f"({', '.join(f'{m}: {c}' for m, c in alpha.items())}){palette}: the reader drops it, keeping the colour "
            f"stored under transparent pixels (often black), so a transparent background becomes that colour (the "
            f"index's image_channels counts the file's bands, alpha included; the reader gives one channel fewer); "
            f"to put them on a background add {{op: to_rgb, alpha: blend, background: 255}} (255 white, 0 black) to "
            f"normalize.image in the recipe"}


#: a member name of an image beside the sample's image (``k.seg.png``, lower-cased): its field, as
#: :func:`field_of` names it (``seg.png``)
_NAMED_IMAGE = r"^(?:.*/)?[^/.]*\.(?P<field>[^/]+\.(?:" + "|".join(IMAGE_EXTS) + r"))$"
#: sample keys a ``target sizes`` warning names per field
EXAMPLES = 3


def _named_images(keys: Any, members: Any, named: Any, height: Any,
                  width: Any) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Per named image field (``seg.png``: members ``<key>.seg.png``), sorted by name: ``samples`` that
    have it (from the member names), of those ``other_size`` (its height x width is not the image's),
    ``no_image`` (the sample has no image), ``unknown`` (the index does not record its size: the
    ``named_image_sizes`` column is absent or null there) and ``examples``: the first keys of another
    size, in index order; and per field those examples' sizes, ``"20x30 (image 24x32)"``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = pc.list_flatten(members)
    # a named member has a dot after its key and another in its extension: only those go through the
    # regex (a 1 M-sample index of plain members: 0.1 s, not 0.8)
    dotted = pc.fill_null(pc.match_substring_regex(names, r"\.[^/]*\.[^/]*$"), False)  # two in the basename
    if not pc.any(dotted).as_py():
        return {}, {}
    names, parents = names.filter(dotted), pc.list_parent_indices(members).filter(dotted)
    found = pc.extract_regex(pc.utf8_lower(names), pattern=_NAMED_IMAGE)
    has = pc.is_valid(found)
    if not pc.any(has).as_py():
        return {}, {}

    def per_field(t: Any) -> dict[str, int]:
        got = t.group_by("field").aggregate([("row", "count_distinct")]).to_pydict()
        return dict(zip(got["field"], got["row_count_distinct"]))

    samples = per_field(pa.table({"field": pc.struct_field(found.filter(has), [0]),
                                  "row": parents.filter(has)}))
    out = {f: {"samples": n, "other_size": 0, "no_image": 0, "unknown": n, "examples": []}
           for f, n in sorted(samples.items())}
    sizes: dict[str, list[str]] = {}
    if not pa.types.is_list(named.type):  # an index written before the column: no size is known
        return out, sizes
    entries, rows = pc.list_flatten(named), pc.list_parent_indices(named)
    keep = pc.is_valid(entries)
    entries, rows = entries.filter(keep), rows.filter(keep)
    h, w = pc.struct_field(entries, "height"), pc.struct_field(entries, "width")
    image_h, image_w = pc.take(height, rows), pc.take(width, rows)
    differ = pc.or_(pc.fill_null(pc.not_equal(h, image_h), False), pc.fill_null(pc.not_equal(w, image_w), False))
    t = pa.table({"field": pc.struct_field(entries, "field"), "row": rows})
    recorded, other, alone = per_field(t), per_field(t.filter(differ)), per_field(t.filter(pc.is_null(image_h)))
    for f, info in out.items():
        # (an edited index may record sizes of members it lacks: never below 0)
        info.update(unknown=max(0, info["samples"] - recorded.get(f, 0)), other_size=other.get(f, 0),
                    no_image=alone.get(f, 0))
        if info["other_size"]:
            pick = pc.indices_nonzero(pc.and_(differ, pc.equal(t["field"], f)))  # f's entries of another size
            rows_f = pc.take(rows, pick)
            first = pc.unique(rows_f)[:EXAMPLES]
            at = pc.take(pick, pc.index_in(first, value_set=rows_f))  # each example's first entry
            info["examples"] = pc.take(keys, first).to_pylist()
            sizes[f] = [f"{eh}x{ew} (image {ih}x{iw})"
                        for eh, ew, ih, iw in zip(*(pc.take(c, at).to_pylist() for c in (h, w, image_h, image_w)))]
    return out, sizes


def _target_size_warnings(named: dict[str, dict[str, Any]], sizes: dict[str, list[str]]) -> list[dict[str, str]]:
    """Warnings (kind ``target sizes``) for named image fields a recipe's ``targets:`` cannot move for
    some samples (a map of another size than its image), or whose sizes the index does not record."""
    out = []
    for f, info in named.items():
        n, k, u = info["samples"], info["other_size"], info["unknown"]
        if k:
            shown = ", ".join(f"{key}: {size}" for key, size in zip(info["examples"], sizes[f]))
            more = ", ..." if k > len(info["examples"]) else ""
            out.append({"kind": "target sizes", "message": (
                f"{f}: {k} of {n} samples have a map of another height x width than their image (e.g. {shown}{more}): "
                f"a recipe cannot use {f} as a targets: map for those samples (the loader refuses each one: skipped "
                f"as 'refused by the recipe', or an error with on_error raise); resize those maps to their images' "
                f"sizes, or leave {f} out of targets:")})
        if u:
            out.append({"kind": "target sizes", "message": (
                f"{f}: the index does not record the map's height x width for {u} of {n} samples (written before "
                f"mmdata recorded named image sizes): inspect cannot tell whether {f} matches the image's size there, "
                f"as a recipe's targets: needs; shard the source again to check")})
    return out


#: a ``target channels`` check reads the named image members of at most this many samples, from at most
#: :data:`VIEW_SHARDS` shards spread over the dataset (the index records no colour mode of a named image: its
#: bytes are read, so inspect stays fast on a million samples)
VIEW_SAMPLES, VIEW_SHARDS = 256, 8


def _pil_mode(data: bytes) -> str | None:
    """The Pillow mode of an image's bytes (its header only: nothing is decoded), None where Pillow cannot open it."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return str(im.mode)
    except Exception:  # noqa: BLE001 - any file Pillow refuses: unknown here (verify --deep names it)
        return None


def _view_channels(path: str | Path, table: Any, image_modes: Any,
                   named: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per named image field, against the sample's image: the channels the reader decodes each (:func:`reader_channels`
    of its mode) in up to :data:`VIEW_SAMPLES` samples of a local dataset, the first samples of up to
    :data:`VIEW_SHARDS` shards spread over it (each tar read only up to its last wanted member: QA40 review inspect #3,
    a whole-shard read cost seconds per shard): ``checked`` (samples with both an image and the field, read),
    ``other_channels``, ``examples`` (``"key: L (image RGB)"``), ``to`` (the reader's mode of the images of those
    samples, most first: what to convert the views to) and ``one_channel`` (every view checked is one-channel beside
    a colour image: a mask's pattern) — a view in another colour mode than its image is refused by the loader as a
    ``targets:`` image (QA40 multiview #2). A remote dataset: ``{}`` (its shards are not fetched; the caller says
    so)."""
    if not named or is_remote(path) or "shard" not in table.column_names:
        return {}
    rows = table.select(["key", "shard", "members", "sizes"]).to_pylist()
    modes = image_modes.to_pylist()
    pattern = re.compile(_NAMED_IMAGE)

    def views(r: dict[str, Any]) -> list[tuple[str, str, int]]:  # (field, member, size) of each named image
        out = []
        for m, size in zip(r["members"] or [], r["sizes"] or []):
            if (got := pattern.match(m.lower())) is not None and got["field"] in named:
                out.append((got["field"], m, size))
        return out

    by_shard: dict[str, list[int]] = {}
    fields: dict[int, list[tuple[str, str, int]]] = {}  # each row's named images, found once
    for i, r in enumerate(rows):
        if modes[i] is not None and isinstance(r["shard"], str) and (found := views(r)):
            fields[i] = found
            by_shard.setdefault(r["shard"], []).append(i)
    shards = list(by_shard)
    keep = shards[:: max(1, -(-len(shards) // VIEW_SHARDS))][:VIEW_SHARDS]
    each = -(-VIEW_SAMPLES // max(1, len(keep)))
    picked = [i for sh in keep for i in by_shard[sh][:each]][:VIEW_SAMPLES]
    got = _view_modes(Path(path), [(rows[i]["key"], rows[i]["shard"], fields[i]) for i in picked])
    out: dict[str, dict[str, Any]] = {}
    to: dict[str, Counter[str]] = {}
    for i in picked:
        key = rows[i]["key"]
        own = reader_channels(modes[i])
        for (f, m, _) in fields[i]:
            info = out.setdefault(f, {"checked": 0, "other_channels": 0, "examples": [], "one_channel": True})
            mode = got.get(m)
            if mode is None or own is None:
                continue
            info["checked"] += 1
            theirs = reader_channels(mode)
            if theirs != 1 or own == 1:
                info["one_channel"] = False
            if theirs != own:
                info["other_channels"] += 1
                to.setdefault(f, Counter())["L" if own == 1 else "RGB"] += 1
                if len(info["examples"]) < EXAMPLES:
                    info["examples"].append(f"{key}: {mode} (image {modes[i]})")
    for f, info in out.items():
        info["one_channel"] = bool(info["checked"]) and info["one_channel"]
        info["to"] = dict(to.get(f, Counter()).most_common())
    return out


def _view_modes(folder: Path, wanted: list[tuple[str, Any, list[tuple[str, str, int]]]]) -> dict[str, str | None]:
    """The Pillow mode of each wanted named member (``(key, shard, [(field, member, size)])``) by member name, read
    from the local tars, each read only until its last wanted member is found (the samples wanted are a shard's
    first ones: a few headers, not the whole shard); a member absent, of another size or unreadable is left out."""
    import tarfile

    try:
        layout = idx.load_card(folder, None, shard_lists=False).get("layout")
    except ShardError:
        layout = None
    tars: dict[Path, dict[str, int]] = {}
    for key, shard, members in wanted:
        for _, m, size in members:
            ext = m[len(key) + 1:] if m.startswith(key + ".") else m.split(".", 1)[-1]
            tar = folder / (f"{field_of(ext)}/{shard}" if layout == "columns" else shard)
            tars.setdefault(tar, {})[m] = size
    out: dict[str, str | None] = {}
    for tar, names in tars.items():
        left = dict(names)
        try:
            with tarfile.open(tar, "r:") as tf:
                while left and (info := tf.next()) is not None:
                    if info.name in left and info.isfile() and info.size == left.pop(info.name):
                        f = tf.extractfile(info)
                        if f is not None:
                            out[info.name] = _pil_mode(f.read())
        except (OSError, tarfile.TarError):
            continue
    return out


def _target_channel_warnings(named: dict[str, dict[str, Any]], channels: dict[str, dict[str, Any]],
                             remote: bool = False) -> list[dict[str, str]]:
    """Warnings (kind ``target channels``) for named image fields in another colour mode than their image in the
    samples :func:`_view_channels` read (``channels``). inspect has no recipe: it cannot tell a view (a ``targets:``
    image) from a mask (``targets: {FIELD: mask}``, any mode), so the warning is a condition, never advice to convert
    a mask; a field whose every view read is one-channel beside colour images (a segmentation mask's layout) is not
    warned of (QA40 review inspect #1). ``remote``: the views were not read; one warning says so (review #8)."""
    if remote and named:
        fields = ", ".join(sorted(named))
        return [{"kind": "target channels", "message": (
            f"{fields}: the colour mode of the named image views was not checked: the dataset is remote (inspect "
            f"fetches only its card and index); run `mmdata inspect` on a local copy to check them before using one "
            f"as a recipe's targets: image")}]
    out = []
    for f, info in named.items():
        c = channels.get(f) or {}
        k, n = c.get("other_channels", 0), c.get("checked", 0)
        if not k or c.get("one_channel"):
            continue
        of = (f"{k} of {n} samples" if n >= info["samples"] - info["no_image"] else
              f"{k} of the {n} samples read (the first of a spread of shards; {info['samples']} have it)")
        to = c.get("to") or {"RGB": k}
        mode = next(iter(to))
        into = (f"{mode}, their images' mode" if len(to) == 1 else
                "their images' modes (" + ", ".join(f"{m} in {j}" for m, j in to.items()) + ")")
        out.append({"kind": "target channels", "message": (
            f"{f}: {of} have a member in another colour mode than their image (e.g. {', '.join(c['examples'])}"
            f"{', ...' if k > len(c['examples']) else ''}). If {f} is a view a recipe declares as a targets: image, "
            f"the loader refuses those samples (skipped as 'refused by the recipe', or an error with on_error raise; "
            f"a to_rgb / to_gray in the recipe does not change them): convert those views to {into} before sharding "
            f"(Pillow: Image.open(p).convert({mode!r}).save(p)), or leave {f} out of targets:. A mask "
            f"(targets: {{{f}: mask}}) or a field no recipe moves is fine as it is: do not convert a mask")})
    return out


def _arrays(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per ``.npy`` field, what the card records of its arrays (shard writes it, :func:`mmdata.shards.writer.npy_card_entry`):
    ``count``, ``dtypes``, ``ranks``, ``shapes`` beyond the first (time) axis (``"(T, 3)"``), ``length`` [min, max] of
    the first axis, ``empty``, ``varying_axes`` (the axes whose size differs across the files) — only what the card holds (a card written before 2026-12-07 records none of it, one
    before QA36 dtypes only); fields without ``dtypes`` (no ``.npy``) are left out (QA36 timeseries #9)."""
    out: dict[str, dict[str, Any]] = {}
    mods = card.get("modalities")
    for f, m in sorted((mods if isinstance(mods, dict) else {}).items()):
        if not isinstance(m, dict) or not isinstance(m.get("dtypes"), dict):
            continue
        entry: dict[str, Any] = {"count": m.get("count") if isinstance(m.get("count"), int) else sum(
            n for n in m["dtypes"].values() if isinstance(n, int))}
        for k in ("dtypes", "ranks", "shapes"):
            if isinstance(m.get(k), dict):
                entry[k] = {str(d): n for d, n in m[k].items() if isinstance(n, int)}
        if isinstance(m.get("length"), list) and len(m["length"]) == 2 and all(isinstance(v, int) for v in m["length"]):
            entry["length"] = {"min": m["length"][0], "max": m["length"][1]}
        if isinstance(m.get("empty"), int):
            entry["empty"] = m["empty"]
        if isinstance(m.get("varying_axes"), list) and all(isinstance(a, int) for a in m["varying_axes"]):
            entry["varying_axes"] = list(m["varying_axes"])  # (a card written since the QA36 second fix)
        if isinstance(m.get("length_axis"), int):
            entry["length_axis"] = m["length_axis"]
        else:
            _length_on_its_axis(entry)
        out[str(f)] = entry
    return out


def _audio_subtypes(card: dict[str, Any]) -> dict[str, int]:
    """The audio members per sample format (``PCM_16``, ``PCM_24``, ``FLOAT``, ...) over the card's audio fields
    (``modalities.<field>.subtypes``, written since 2026-12-07; empty for an older card), most first (QA38
    bioacoustics #7: 16-bit, 24-bit and float recorders mixed was shown nowhere).

    Example:
        >>> _audio_subtypes({"modalities": {"audio": {"subtypes": {"PCM_16": 3, "FLOAT": 1}}, "image": {}}})
        {'PCM_16': 3, 'FLOAT': 1}
    """
    total: Counter[str] = Counter()
    mods = card.get("modalities")
    for m in (mods.values() if isinstance(mods, dict) else ()):
        got = m.get("subtypes") if isinstance(m, dict) else None
        total.update({str(k): n for k, n in (got.items() if isinstance(got, dict) else ()) if isinstance(n, int)})
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def _length_on_its_axis(entry: dict[str, Any]) -> None:
    """An :func:`_arrays` entry from a card written before 2026-12-08, whose only varying axis is another than the
    first (channels-first (2, N) I/Q): its shapes recorded with the first axis as ``T`` (``(T, 1024)``,
    ``(T, 1050)``) and ``length`` that axis's 2..2. Rewritten in place as a card of this mmdata records it
    (:func:`mmdata.shards.writer.npy_card_entry`): ``shapes`` ``{"(2, T)": n}``, ``length`` the varying axis's
    min / max, ``length_axis`` (QA38 splitfrom C#6). Left as it is where the card lists too many shapes to tell.

    Example:
        >>> e = {"shapes": {"(T, 1024)": 4, "(T, 128)": 4}, "length": {"min": 2, "max": 2}, "varying_axes": [1]}
        >>> _length_on_its_axis(e); e["shapes"], e["length"], e["length_axis"]
        ({'(2, T)': 8}, {'min': 128, 'max': 1024}, 1)
        >>> e = {"shapes": {"(T, 128)": 4}, "length": {"min": 2, "max": 2}, "varying_axes": []}
        >>> _length_on_its_axis(e); e
        {'shapes': {'(2, 128)': 4}, 'varying_axes': []}
    """
    varying, length, shapes = entry.get("varying_axes"), entry.get("length"), entry.get("shapes")
    if varying == [] and length and length["min"] == length["max"] and shapes and len(shapes) == 1:
        # every file of one shape ((2, 128)): shown as it is, without a length range (review 2 #7)
        (pattern,) = shapes
        if pattern.startswith("(T") and pattern.endswith(")"):
            tail = pattern[2:-1].lstrip(", ")  # "(T, 128)": "128"; "(T,)": ""
            entry["shapes"] = {f"({length['min']}, {tail})" if tail else f"({length['min']},)": shapes[pattern]}
            del entry["length"]
        return
    if not (varying and len(varying) == 1 and varying[0] > 0 and length and length["min"] == length["max"]
            and shapes and "other" not in shapes):
        return
    k = varying[0]
    try:
        dims = [[int(d) for d in p.strip("()").split(",")[1:] if d.strip()] for p in shapes]
    except ValueError:
        return
    if any(len(d) < k for d in dims) or len({len(d) for d in dims}) != 1:
        return
    sizes = [d[k - 1] for d in dims]
    pattern = [str(length["min"]), *(("T" if a == k else str(dims[0][a - 1])) for a in range(1, len(dims[0]) + 1))]
    entry["shapes"] = {"(" + ", ".join(pattern) + ")": sum(shapes.values())}
    entry["length"], entry["length_axis"] = {"min": min(sizes), "max": max(sizes)}, k


def _added_fields(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per field written by ``mmdata add-modality`` (the card's ``modalities.<field>.added_by``): ``count`` samples
    holding it, ``missing`` without it, and its ``license`` / ``attribution`` where the job recorded one
    (``license_from: "dataset"``: it carries the dataset's). A re-shard of the sources (``mmdata shard``, with
    ``--split-from`` too) writes only what the sources hold, so these fields are gone from it until added again:
    inspect names them (QA37 vendor #5)."""
    out: dict[str, dict[str, Any]] = {}
    mods = card.get("modalities")
    for f, m in sorted((mods if isinstance(mods, dict) else {}).items()):
        if not isinstance(m, dict) or m.get("added_by") != "add-modality":
            continue
        entry = {k: m[k] for k in ("count", "missing") if isinstance(m.get(k), int)}
        entry.update({k: m[k] for k in ("license", "attribution", "license_from") if isinstance(m.get(k), str)})
        out[str(f)] = entry
    return out


def _shard_list_warnings(path: str | Path, card: dict[str, Any], shards: dict[str, list[Any]]) -> list[dict[str, str]]:
    """Warnings about the card's shard lists (against ``shards.parquet``) and repeated ``shards.parquet``
    rows; a ShardError for a card shard name outside the folder, as the readers raise."""
    from mmdata.shards.verify import card_problems

    splits = card.get("splits")
    for entry in splits.values() if isinstance(splits, dict) else ():
        names = entry.get("shards") if isinstance(entry, dict) else None
        for name in names if isinstance(names, list) else [names] if isinstance(names, str) else ():
            idx.check_shard_name(path, name)
    out = []
    for p in card_problems(path, card, shards):
        seen = ", ".join(f"{k} {p[k]}" for k in ("expected", "found") if p[k] is not None)
        out.append({"kind": "card", "message": f"{idx.CARD}: {p['problem']}" + (f" ({seen})" if seen else "")
                    + "; the readers read the shards the card lists: run `mmdata verify`"})
    for shard, n in Counter(shards["shard"]).items():
        if n > 1:
            out.append({"kind": "shards", "message": f"{idx.SHARDS} lists shard {shard} {n} times (counted once); "
                        "run `mmdata verify`"})
    return out


def inspect(path: str | Path, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Summarise a dataset folder (a path, or an fsspec URL read with ``storage_options``: only its
    card and index are fetched).

    Returns:
        ``samples``, ``per_split``, ``per_class`` (by name when the card has names, per split),
        ``patterns`` (modality-presence pattern -> count), ``shards`` (count, total/min/max bytes),
        ``bytes_per_modality``, ``image_height`` / ``image_width`` / ``audio_seconds`` / ``text_chars``
        distributions (count, min, median, max), ``audio_sample_rate`` counts; per modality
        ``image`` (``modes``, ``channels`` — as the reader decodes them, :func:`reader_channels`: a CMYK
        JPEG or an RGBA PNG counts 3, not the file's 4 bands —, ``sizes``), ``audio`` (``sample_rates``, ``channels``) and
        ``text`` (``empty``) counts; ``named_images``: per image field beside the image (``seg.png``),
        ``samples`` having it, ``other_size`` (of another height x width than the sample's image: a
        recipe's ``targets:`` cannot move it), ``no_image``, ``unknown`` (its size not in the index)
        and ``examples`` (keys of another size); ``named_image_channels``: per such field of a local dataset,
        ``checked``, ``other_channels`` (a view in another colour mode than its image: the loader refuses it as a
        ``targets:`` image, warning kind ``target channels``, worded as a condition: a mask is fine), ``examples``,
        ``to`` (the images' modes to convert to) and ``one_channel`` (every view read one-channel beside colour
        images, a mask's layout: not warned of), from the named members of the first samples of a spread of shards,
        up to :data:`VIEW_SAMPLES` (the index records no colour mode of a named image; a remote dataset: not read,
        a warning says so); ``arrays``: per ``.npy`` field, what the card records (``count``,
        ``dtypes``, ``ranks``, ``shapes`` beyond the first axis, ``length`` min / max, ``empty``, ``varying_axes``; where
        the only varying axis is another, ``length_axis``, the shapes written with that axis as ``T`` and ``length``
        its min / max); ``warnings`` (``{"kind", "message"}``: named image
        maps of another size than their image, or of sizes the index does not record (kind ``target
        sizes``), image modes that decode to
        different channel counts (kind ``image channels``: ``L`` 1, ``RGB`` / ``RGBA`` / ``P`` 3), mixed
        image sizes, mixed sample rates or audio channel counts, unlabelled samples, the card's own
        warnings, and — kinds ``card`` / ``shards`` — a split's shard list that ``mmdata verify`` fails
        (not a list, a shard twice, not the shards ``shards.parquet`` lists for it) or a shard
        ``shards.parquet`` lists twice, counted once in ``shards``, or gives no byte size, left out of its
        bytes), plus ``skipped`` (the card's entries) / ``skipped_counts`` (what the jobs that wrote it left
        out, by kind: ``samples``, ``members``, ``files``, ``folders``, as ``mmdata shard`` reports it);
        ``audio_duration``: total audio ``seconds`` (from the index's ``audio_seconds``, nothing decoded)
        and ``samples`` with a duration, ``per_split`` (split -> ``samples``, ``seconds``) and ``per_class``
        (split -> class name -> seconds, the classes of ``per_class``), rounded to a millisecond, and
        ``per_class_samples`` (split -> class name -> samples with a duration: 0, the class has no audio);
        ``added_fields``: per field written by ``mmdata add-modality``, ``count``, ``missing`` and its ``license`` /
        ``attribution`` (or ``license_from: "dataset"``) — a re-shard of the sources does not carry them.

    Raises:
        ShardError: ``path`` does not exist or is not a dataset folder; its card, index or shards
            table is missing, not a regular file or unreadable; a card key has another type than
            mmdata writes; the index lacks a column inspect reads or holds one of another type (named,
            as the readers name it) or holds another number of rows than the card lists samples; the
            card lists a shard path outside the folder (as the readers refuse it).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> r = inspect(t + "/ds")
        >>> r["per_split"], r["image"]["modes"], r["audio"]["sample_rates"]
        ({'train': 4}, {'RGB': 4}, {'8000': 3})
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    path = unless_file_url(path)
    from mmdata.shards.verify import bare_shards

    tars = bare_shards(path, storage_options)
    if tars is not None:  # counts come from an index; bare shards have none (a pass over them is `verify`)
        import shlex

        from mmdata.checks import plural

        shown = shlex.quote(str(path))
        raise ShardError(f"{path}: not a dataset folder but {plural(len(tars), 'WebDataset shard')} without an index: "
                         f"inspect describes a dataset folder from its index.parquet. `mmdata shard {shown} OUT` "
                         f"writes one from these shards (members kept as they are), then `mmdata inspect OUT`; "
                         f"`mmdata verify {shown}` checks the shards as they are; mmdata.open_dataset({str(path)!r}) "
                         f"reads them")
    if not is_remote(path) and lookup(path, "dataset") is None:  # a name too long, a link loop: named
        raise ShardError(f"{path}: does not exist (expected a dataset folder written by `mmdata shard`, or WebDataset "
                         f"shards: a .tar / .tar.gz, a brace or glob pattern of them, a folder of them)")
    # a split's shard list that is not a list is a warning here (see _shard_list_warnings); the rest of
    # the card is checked as the readers check it, and the index's row count against it before any row is read
    card = idx.load_card(path, storage_options, shard_lists=False)
    table = idx.load_index(path, storage_options=storage_options, require=INDEX_COLUMNS, card=card)
    # column by column in Arrow: Python rows of a 1 M-sample index took 13 s and 1.8 GB
    col = {name: _column(table, name) for name in (*INDEX_COLUMNS, "image_mode", "image_channels", "audio_channels",
                                                    "named_image_sizes")}
    shards = idx.load_shards_table(path, storage_options, card=card).to_pydict()
    shard_warnings = _shard_list_warnings(path, card, shards)
    names = card.get("label_names")
    n = table.num_rows
    # a shard listed twice in shards.parquet is one file (warned about above): counted once
    by_shard = {sh: b for sh, b in zip(shards["shard"], shards["bytes"])}
    sizes = [b for b in by_shard.values() if b is not None]
    unsized = [sh for sh, b in by_shard.items() if b is None]  # an edited table: left out of the byte counts
    if unsized:
        shown = ", ".join(map(str, unsized[:3])) + (f", ... ({len(unsized)} in all)" if unsized[3:] else "")
        shard_warnings.append({"kind": "shards", "message": f"{idx.SHARDS} gives no byte size (null) for shard "
                               f"{shown}, left out of the shards' bytes; run `mmdata verify`"})
    height, width = col["image_height"], col["image_width"]
    size_names = pc.binary_join_element_wise(pc.cast(height, pa.string()),
                                             pc.fill_null(pc.cast(width, pa.string()), "None"), "x")
    image_sizes = _counts(size_names)
    image = {"count": n - height.null_count, "modes": _counts(col["image_mode"]),
             "channels": _reader_channel_counts(col["image_mode"], col["image_channels"]), "sizes": len(image_sizes)}
    audio = {"count": n - col["audio_sample_rate"].null_count, "sample_rates": _counts(col["audio_sample_rate"]),
             "channels": _counts(col["audio_channels"])}
    if subtypes := _audio_subtypes(card):
        audio["subtypes"] = subtypes
        if card.get("augmentation") is not None:  # augment writes changed clips as float WAV: a mix by design
            audio["subtypes_augmented"] = True
    chars = col["text_chars"]
    text = {"count": n - chars.null_count, "empty": int(pc.sum(pc.equal(chars, 0)).as_py() or 0)}
    named, example_sizes = _named_images(col["key"], col["members"], col["named_image_sizes"], height, width)
    warnings = [w for w in (
        _channel_mix(image["modes"]),  # by the reader's channels: the files' own counts (RGB 3, RGBA 4) mislead
        _alpha_warning(image["modes"]),
        _mix("image sizes", _top(image_sizes, 5), "batches need one size (resize / crop)"),
        _mix("audio sample rates", audio["sample_rates"], "resample to one rate before batching"),
        _mix("audio channels", audio["channels"], "mix down to mono (or up to one channel count) before batching"),
    ) if w is not None]
    warnings += _target_size_warnings(named, example_sizes)
    view_channels = _view_channels(path, table, col["image_mode"], named)
    warnings += _target_channel_warnings(named, view_channels, remote=is_remote(path))
    unlabelled = col["label"].null_count
    if 0 < unlabelled < n:
        warnings.append({"kind": "labels", "message": f"{unlabelled} of {n} samples have no label"})
    warnings += [{"kind": "shard", "message": w} for w in card.get("warnings", [])]
    warnings += shard_warnings
    per_split = dict(sorted(_value_counts(col["split"])))
    arrays = _arrays(card)
    return {
        "path": str(path),
        "name": card.get("name"),
        "layout": card.get("layout"),
        "samples": n,
        "per_split": per_split,
        "per_class": {k: dict(sorted(v.items())) for k, v in sorted(_per_class(col["split"], col["label"], names).items())},
        "patterns": _patterns(col["modalities"]),
        "shards": {"count": len(by_shard), "total_bytes": int(sum(sizes)), "min_bytes": int(min(sizes, default=0)),
                   "max_bytes": int(max(sizes, default=0))},
        "bytes_per_modality": _bytes_per_modality(col["members"], col["sizes"]),
        "image_height": _dist(height),
        "image_width": _dist(width),
        "audio_seconds": _dist(col["audio_seconds"]),
        "audio_sample_rate": dict(_value_counts(col["audio_sample_rate"])),
        "text_chars": _dist(chars),
        "image": image,
        "audio": audio,
        "text": text,
        "named_images": named,
        "named_image_channels": view_channels,
        "arrays": arrays,
        "num_classes": card.get("num_classes"),
        "label_names": names,
        "metadata_columns": list(card.get("metadata_columns") or []),  # a manifest's --meta: the json member
        "metadata_kinds": dict(card.get("metadata_kinds") or {}),
        "warnings": warnings,
        "skipped": card.get("skipped_count", 0),
        "skipped_counts": _skipped_counts(card),
        "audio_duration": _audio_duration(col["split"], col["label"], col["audio_seconds"], names, list(per_split)),
        "added_fields": _added_fields(card),
    }


#: a metadata value "nearly tells the class" (:func:`metadata_groups`' ``notes``) when at least this many samples
#: hold it, this share of them is one class, and that share is this much above the class's share of all samples
SHORTCUT_MIN_SAMPLES, SHORTCUT_SHARE, SHORTCUT_LIFT = 10, 0.7, 0.25


def metadata_groups(path: str | Path, field: str, storage_options: dict[str, Any] | None = None, *,
                    bins: int | None = None, edges: list[float] | None = None,
                    absent_ok: bool = False) -> dict[str, Any]:
    """The group composition of a metadata field (a manifest's ``--meta`` column, each sample's ``json`` member) or
    an index column: per value, the samples per split and per class, so an auditor sees "site C: train 6, val 0"
    before training (QA39 fairness #8). The json members are read from the local shards (one pass, nothing else
    decoded); a sample without the key (or without a json member) counts under the value None (missing), one
    whose json could not be read (a remote folder, an unreadable shard) under ``unread``.

    Returns:
        ``field``, ``from`` (``index`` or ``metadata``), ``values`` (``{"value", "samples", "per_split",
        "per_class"}``, most samples first, None last), ``missing``, ``unread``, and ``notes``: a value whose samples
        are nearly one class (a shortcut the model may learn, :data:`SHORTCUT_SHARE`) and a value that a split
        lacks although other splits hold it (neither for ``label`` / ``split`` themselves). Values are read as
        ``evaluate --by`` reads them (:func:`read_groups`: "56" and 56.0 one number, NA markers missing, many numbers
        in ``bins`` equal-count bins, or at ``edges``; ``numeric``, with a bin's ``bin``: [lo, hi]) and ``label``
        as class names (QA39 review evaluate #4, #6). ``absent_ok``: a field this version lacks counts every sample
        as missing (``absent``: True) rather than raising (``diff --groups``: QA39 review evaluate #2).

    Raises:
        ShardError: ``field`` is neither an index column nor one of the card's ``metadata_columns`` (both listed).
    """
    import json

    from mmdata.shards.writer import _crcs_from_shards

    path = unless_file_url(path)
    card = idx.load_card(path, storage_options, shard_lists=False)
    table = idx.load_index(path, storage_options=storage_options, require=("key", "split", "label", "members",
                                                                          "sizes"), card=card)
    meta = list(card.get("metadata_columns") or [])
    names = card.get("label_names")
    rows = table.select([c for c in ("key", "split", "label", "members", "sizes", "shard")
                         if c in table.column_names]).to_pylist()
    unread = 0
    key = field[len("json."):] if field.startswith("json.") else field
    if field == key and field in table.column_names and field not in ("members", "sizes", "modalities",
                                                                      "named_image_sizes"):
        source = "index"
        values = table.column(field).to_pylist()
    elif key and (key in meta or not meta and any(m.endswith(".json") for r in rows for m in r["members"] or [])):
        # json.KEY names a metadata key (as evaluate --by takes it); a card listing no metadata_columns: any key of
        # the json members (QA39 review evaluate #6)
        source = "metadata"
        wanted: dict[str, tuple[Any, list[str], list[int]]] = {}
        for r in rows:
            for m, size in zip(r["members"] or [], r["sizes"] or []):
                ext = m[len(r["key"]) + 1:] if m.startswith(f"{r['key']}.") else m.partition(".")[2]
                if ext == "json":
                    wanted[r["key"]] = (r.get("shard"), [m], [size])
        try:
            got = _crcs_from_shards(str(path), storage_options, wanted, of=bytes)  # type: ignore[arg-type]
        except (OSError, ShardError):
            got = {}
        values = []
        for r in rows:
            if r["key"] not in wanted:
                values.append(None)
                continue
            try:
                doc = json.loads(got[r["key"]][0])
            except (KeyError, IndexError, ValueError, UnicodeDecodeError):
                unread += 1
                values.append(_UNREAD)
                continue
            # a list / object stays one (group_key keeps it apart from the string of its text: QA40 hostile #3)
            values.append(doc.get(key) if isinstance(doc, dict) else None)
    elif absent_ok:
        source = "absent"
        values = [None] * len(rows)
    else:
        raise ShardError(f"{path}: has no index column nor metadata key {field!r} (index columns: "
                         f"{', '.join(c for c in table.column_names if c not in ('members', 'sizes'))}; metadata keys "
                         f"(the card's metadata_columns): {', '.join(meta) or 'none'})")
    values = [v if v is _UNREAD else group_key(v) for v in values]
    if field == "label" and source == "index":  # class names, as evaluate --by label shows them (QA39 review #6)
        values = [None if v is None or (isinstance(v, int) and v < 0) else _class_name(v, names) for v in values]
    weight: Counter[tuple[bool, Any]] = Counter((isinstance(v, bool), v) for v in values if v is not _UNREAD)
    reading, info = read_groups(dict(weight), field, bins, edges)
    groups: dict[tuple[bool, Any], dict[str, Any]] = {}
    classes: Counter[str] = Counter()
    for r, v in zip(rows, values):
        if v is _UNREAD:
            continue
        cls = _class_name(r["label"], names)
        classes[cls] += 1
        gv = reading[(isinstance(v, bool), v)]
        g = groups.setdefault((False, None) if gv is _MISSING else (isinstance(gv, bool), gv), {
            **({"value": None} if gv is _MISSING else group_value(gv)), "samples": 0,
            "per_split": Counter(), "per_class": Counter(),
            **({"bin": [gv.lo, gv.hi]} if isinstance(gv, _Bin) else {})})
        g["samples"] += 1
        g["per_split"][r["split"]] += 1
        g["per_class"][cls] += 1
    order = list(card.get("splits") or {})
    splits = sorted({r["split"] for r in rows}, key=lambda s: (order.index(s) if s in order else len(order), s))
    if info.get("numeric"):  # numbers ascending (a bin by its low edge), then words, missing last
        def place(g: dict[str, Any]) -> tuple[Any, ...]:
            v = g["value"]
            return ((2, 0, "") if v is None else (0, g["bin"][0], "") if "bin" in g else
                    (0, float(v), "") if g.get("type") == "number" else  # inf / -inf: first / last of the numbers
                    (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v)))
        out = sorted(groups.values(), key=place)
    else:
        out = sorted(groups.values(), key=lambda g: (g["value"] is None, -g["samples"], str(g["value"])))
    for g in out:
        g["per_split"] = {s: g["per_split"].get(s, 0) for s in splits}
        g["per_class"] = dict(sorted(g["per_class"].items()))
    total = sum(classes.values())
    notes, shortcuts, lacks = [], [], []
    for g in out:
        shown = "missing" if g["value"] is None else _cut(group_text(g))  # a megabyte value was a whole note
        if g["value"] is not None and g["samples"] >= SHORTCUT_MIN_SAMPLES and total and field != "label":
            cls, n = max(g["per_class"].items(), key=lambda kv: (kv[1], kv[0]))
            share, base = n / g["samples"], classes[cls] / total
            if share >= SHORTCUT_SHARE and share - base >= SHORTCUT_LIFT:
                shortcuts.append((shown, f"{n} of {g['samples']} samples are class {cls!r} ({share:.0%}, {base:.0%} "
                                  f"of all samples)"))
        lacking = [s for s, n in g["per_split"].items() if n == 0]
        if lacking and g["value"] is not None and field != "split":
            lacks.append((shown, f"no samples in {', '.join(map(repr, lacking))} ({g['samples']} elsewhere)"))
    check = f"check the per-value scores (mmdata evaluate RUN DATA --by {field})"
    # an id-like field: one line per value was 20,000 lines (QA40 hostile #5; the shortcut note: review inspect #7)
    if len(shortcuts) > NOTES_MAX:
        eg = "; ".join(f"{field} {v}: {why}" for v, why in shortcuts[:EXAMPLES])
        notes.append(f"{len(shortcuts)} values of {field} nearly tell the class (e.g. {eg}; ...): the field is a "
                     f"shortcut a model may learn (a patient or site id whose samples are one class); {check}; each "
                     f"value's samples per class: --json (values[].per_class)")
    else:
        notes += [f"{field} {v}: {why}: the field nearly tells the class, a shortcut a model may learn; {check}"
                  for v, why in shortcuts]
    if len(lacks) > NOTES_MAX:
        eg = "; ".join(f"{field} {v}: {why}" for v, why in lacks[:EXAMPLES])
        notes.append(f"{len(lacks)} values of {field} have no samples in some split (e.g. {eg}; ...): their groups "
                     f"are not scored there; each value's samples per split: --json (values[].per_split)")
    else:
        notes += [f"{field} {v}: {why}: its group is not scored there" for v, why in lacks]
    return {"field": field, "from": source, "values": out, "missing": groups.get((False, None), {}).get("samples", 0),
            "unread": unread, "notes": notes, **({"absent": True} if source == "absent" else {}),
            **{k: info[k] for k in ("numeric", "markers", "words", "edges", "not_numeric") if k in info},
            **({"bins_unused": True} if bins and not info.get("numeric") else {})}


#: more "no samples in a split" (or "nearly tells the class") notes than this are said as one, with a count and
#: :data:`EXAMPLES` examples
NOTES_MAX = 10
#: a value in a note is cut to this many characters (its closing quote kept: :func:`_cut`)
NOTE_VALUE_CHARS = 60


def _cut(text: str) -> str:
    """A value's text as a note shows it: at most :data:`NOTE_VALUE_CHARS` characters, cut inside its quotes.

    Example:
        >>> _cut("'" + "Y" * 100 + "'")[-7:], len(_cut("x" * 100))
        ("YYY...'", 60)
    """
    if len(text) <= NOTE_VALUE_CHARS:
        return text
    q = text[0] if len(text) > 1 and text[0] in "'\"" and text[-1] == text[0] else ""
    return text[:NOTE_VALUE_CHARS - 3 - len(q)] + "..." + q

#: a sample whose json member could not be read (:func:`metadata_groups`' ``unread``)
_UNREAD = object()


#: the NA markers a number column's text cells may hold: read as missing, counted and said (as ``train --target``
#: reads such a column: :mod:`mmdata.train.targets`) (QA39 fairness #3); "unknown" / "missing" / "not known" too, the
#: words auditors write in an age column (QA39 review evaluate #1)
NA_MARKERS = frozenset({"", "n/a", "na", "nan", "none", "null", "-", "?", "--", "unknown", "missing", "not known",
                        "not available", "unk", "n.a.", "#n/a"})
#: a number field with more distinct values than this is binned by default (into :data:`BY_BINS` equal-count bins)
BIN_ABOVE = 10
#: ... and a field of whole numbers with more than this (site / speaker ids, SNR steps stay one group per value;
#: ages, frame counts are binned) (QA39 review 2 last #2)
BIN_ABOVE_WHOLE = 20
BY_BINS = 4
#: text of digits with a leading zero ('007', '02134'): an id, not a number (its zeros would be lost)
_ID_TEXT = re.compile(r"^[+-]?0\d")
#: a field is read as numbers when at least this share of its samples that are neither missing nor an NA marker hold
#: a number; the other words are groups of their own, named in ``words`` (QA39 review evaluate #1): one stray word
#: does not turn an age column into text groups sorted as text
NUMERIC_SHARE = 0.9


class _Bin(NamedTuple):
    """An equal-count bin of a number field: ``lo <= v < hi`` (the last bin ``<= hi``)."""
    lo: float
    hi: float
    last: bool

    def label(self) -> str:
        return f"[{_num_text(self.lo)}, {_num_text(self.hi)}{']' if self.last else ')'}"


def _num_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


class _Missing:
    """The missing group's key (a null, NaN, or a number field's NA marker): never equal to the text 'null'."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def read_groups(weight: dict[tuple[bool, Any], int], field: str, bins: int | None = None,
                edges: list[float] | None = None) -> tuple[dict[tuple[bool, Any], Any], dict[str, Any]]:
    """The one reading of a field's values that ``evaluate --by``, ``inspect --by`` and ``diff --groups`` share (QA39
    review evaluate #4): ``weight`` maps each raw value, as ``(is a bool, value)`` (None: missing), to its samples.
    A field whose samples are numbers or number text ("56", 56.0: one group) for at least :data:`NUMERIC_SHARE` of
    those not missing is read as numbers: NA markers (:data:`NA_MARKERS`) are missing, other words groups of their
    own (``words``: bools and digit text with a leading zero, an id, too), and more than :data:`BIN_ABOVE` distinct
    numbers (:data:`BIN_ABOVE_WHOLE` for whole numbers) are binned into :data:`BY_BINS` equal-count bins (``bins``:
    that many, 0 none; ``edges``: these bin edges, e.g. another version's).

    Returns:
        raw value -> its group (a number, a word, a :class:`_Bin` or :data:`_MISSING`), and ``info``: ``numeric``,
        ``markers``, ``words``, ``edges``; a field read as text although most samples are numbers names the words
        (``not_numeric``).
    """
    import numpy as np

    info: dict[str, Any] = {}
    numbers: dict[tuple[bool, Any], float] = {}
    markers: dict[str, int] = {}
    words: dict[tuple[bool, Any], int] = {}
    infinite: dict[tuple[bool, Any], int] = {}  # inf / -inf: numbers in the share, groups of their own, not binned
    spelled: dict[tuple[bool, Any], float] = {}  # infinite number text -> its number (one group with it)
    other = 0
    for rv, n in weight.items():
        is_bool, v = rv
        if v is None:
            continue
        if is_bool or isinstance(v, JsonValue):  # a word among numbers (named), not a reason to read the field as
            words[rv] = n                              # text (QA39 review 2 b #3)
        elif isinstance(v, float) and not math.isfinite(v):  # inf / -inf: a number (QA40 review inspect #4: 10 %
            infinite[rv] = n                                  # of them made a number field 45 text groups)
        elif isinstance(v, (int, float)):
            numbers[rv] = v
        elif isinstance(v, str):
            t = v.strip()
            if t.lower() in NA_MARKERS:
                markers[v] = markers.get(v, 0) + n
                continue
            if _ID_TEXT.match(t):  # '007', '02134': an id whose zeros matter, not the number 7 (QA39 review 2 last #2)
                words[rv] = n
                continue
            try:
                f = float(t)
            except ValueError:
                words[rv] = n
                continue
            if f != f:
                words[rv] = n
                continue
            if not math.isfinite(f):  # 'inf' / '-Infinity' text: the infinite number, as '56' is 56 (the writer's
                infinite[rv] = n      # advice for an infinite cell: QA40 review 2 data #1)
                spelled[rv] = f
                continue
            numbers[rv] = f
        else:
            other += n
    held = sum(weight[rv] for rv in numbers) + sum(infinite.values())
    rest = sum(words.values()) + other
    if field in ("split", "label") or not numbers or other or held < NUMERIC_SHARE * (held + rest):
        if numbers and words and held > rest:  # most hold numbers ("most": more than half, QA40 review 2 data #2)
            info["not_numeric"] = _word_counts(words)
        return ({rv: _MISSING if rv[1] is None else rv[1] for rv in weight}, info)
    info["numeric"] = True
    if markers:
        info["markers"] = dict(sorted(markers.items()))
    if words:
        info["words"] = _word_counts(words)
    got: dict[tuple[bool, Any], Any] = {rv: (rv[1] if rv in words else spelled.get(rv, rv[1]) if rv in infinite
                                             else _MISSING) for rv in weight if rv not in numbers}
    distinct = sorted(set(numbers.values()))
    if edges is None:
        whole = all(float(f).is_integer() for f in distinct)
        bins = (BY_BINS if len(distinct) > (BIN_ABOVE_WHOLE if whole else BIN_ABOVE) else 0) if bins is None else bins
        if bins and len(distinct) > bins:
            values = np.repeat(np.array(list(numbers.values()), dtype=np.float64), [weight[rv] for rv in numbers])
            edges = sorted(set(float(e) for e in np.quantile(values, np.linspace(0, 1, bins + 1), method="lower")))
            edges[-1] = max(edges[-1], float(values.max()))
            if len(edges) < 2:
                edges = [edges[0], edges[0]]
    if edges:
        edges = list(edges)
        info["edges"] = edges
        spans = [_Bin(edges[b], edges[b + 1], b == len(edges) - 2) for b in range(len(edges) - 1)]
        for rv, f in numbers.items():
            b = int(np.searchsorted(edges, f, side="right")) - 1
            got[rv] = spans[min(max(b, 0), len(spans) - 1)]
    else:
        for rv, f in numbers.items():
            got[rv] = int(f) if float(f).is_integer() and abs(f) < 2 ** 53 else float(f)
    return got, info


def _word_counts(words: dict[tuple[bool, Any], int]) -> dict[str, int]:
    """``words`` / ``not_numeric``: each word group's samples by its text, a group whose text another's equals (the
    bool True and the text "True", a list and the string of its JSON text) with its type after it (``"True (bool)"``,
    ``"[1, 2] (list)"``): keyed by the group, no count lost (QA40 review inspect #6).

    Example:
        >>> _word_counts({(True, True): 2, (False, "True"): 3, (False, "x"): 1})
        {'True': 3, 'True (bool)': 2, 'x': 1}
    """
    texts = Counter(str(rv[1]) for rv in words)
    out: dict[str, int] = {}
    for (is_bool, v), n in sorted(words.items(), key=lambda kv: (str(kv[0][1]), not isinstance(kv[0][1], str))):
        kind = "bool" if is_bool else v.kind if isinstance(v, JsonValue) else type(v).__name__
        text = str(v) if isinstance(v, str) or texts[str(v)] == 1 else f"{v} ({kind})"
        out[text] = out.get(text, 0) + n
    return out


@dataclass(frozen=True)
class JsonValue:
    """A list / object metadata value as a group key: its JSON text (sorted keys), never equal to a string of the
    same text (``[1, 2]`` and ``"[1, 2]"`` are two groups: QA40 hostile #3). ``kind``: ``list`` or ``object``."""
    text: str
    kind: str

    def __str__(self) -> str:
        return self.text


def group_key(value: Any) -> Any:
    """A metadata value as a group's raw key: NaN as missing (None), a list / dict as a :class:`JsonValue` of its
    canonical JSON text: keys sorted, a whole float as its int (``[1.0]`` is ``[1]``, as the numbers 1.0 and 1 are one
    group; a bool stays a bool), a non-finite number spelled ``Infinity`` / ``-Infinity`` / ``NaN`` as Python's json
    writes it (QA40 review inspect #5).

    Example:
        >>> group_key([1, 2]) == group_key("[1, 2]"), str(group_key({"b": 1.0, "a": 2}))
        (False, '{"a": 2, "b": 1}')
        >>> group_key([1.0]) == group_key([1]), group_key([True]) == group_key([1])
        (True, False)
    """
    import json

    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (list, dict)):
        return JsonValue(json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False),
                         "list" if isinstance(value, list) else "object")
    return value


def _canonical(value: Any) -> Any:
    """``value`` with every whole float inside it as an int (|v| < 2**53; -0.0 as 0), for :func:`group_key`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return value


def _spelled(value: Any) -> Any:
    """``value`` with each non-finite number inside it as the string of its JSON text spelling (``"Infinity"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, list):
        return [_spelled(v) for v in value]
    if isinstance(value, dict):
        return {k: _spelled(v) for k, v in value.items()}
    return value


def group_value(group: Any) -> dict[str, Any]:
    """A group (:func:`read_groups`' value: a value, a :class:`JsonValue`, a :class:`_Bin`) as the ``--json`` outputs
    write it: ``{"value": ...}``, plus ``"type"`` where the value alone would mislead: ``list`` / ``object`` (the
    value is the list / object itself, apart from a string of its text) and ``number`` for an infinite number
    (the value the string ``"inf"`` / ``"-inf"``: JSON has no infinity, and null is the missing group: QA40 hostile
    #3, #4). A list / object holding a non-finite number (JSON has none) has it as a string (``"Infinity"``) and
    ``"text"``: its canonical text (:func:`group_key`), which tells it from a list of that string (QA40 review
    inspect #5: ``[Infinity]`` was written ``[null]``).

    Example:
        >>> group_value(float("-inf")), group_value(group_key([1]))
        ({'value': '-inf', 'type': 'number'}, {'value': [1], 'type': 'list'})
        >>> group_value(group_key([float("inf")]))
        {'value': ['Infinity'], 'type': 'list', 'text': '[Infinity]'}
    """
    import json

    if isinstance(group, JsonValue):
        value = json.loads(group.text)
        shown = _spelled(value)
        return {"value": shown, "type": group.kind, **({"text": group.text} if shown != value else {})}
    if isinstance(group, float) and not math.isfinite(group):
        return {"value": "inf" if group > 0 else "-inf", "type": "number"}
    return {"value": group.label() if isinstance(group, _Bin) else group}


def group_text(row: dict[str, Any]) -> str:
    """A ``--json`` group row's value as a table shows it: text quoted (``'True'`` is not ``True``), a list /
    object as its JSON text unquoted, an infinite number as ``inf``, a bin as its range, the missing group
    ``(missing)``."""
    import json

    v = row.get("value")
    if v is None:
        return "(missing)"
    if row.get("type") in ("list", "object") and "text" in row:
        return str(row["text"])
    if row.get("type") in ("list", "object"):
        return json.dumps(v, sort_keys=True, ensure_ascii=False)
    if isinstance(v, str) and "bin" not in row and row.get("type") != "number":
        return repr(v)
    return str(v)
