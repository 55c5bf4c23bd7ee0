"""``mmdata verify``: every shard's sha256 and member count against ``shards.parquet``, the card's shard
lists against ``shards.parquet``, and ``index.parquet`` against ``shards.parquet``, the card and each
shard's tar headers (the readers trust the card and the index: a missing, unreadable or edited index
fails verify, so does a card that drops or repeats a shard); ``deep=True`` also decodes every member (a
corrupt media body with a correct checksum fails verify) and compares label members with the index."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mmdata.codecs import field_of
from mmdata.errors import MMDataError, ShardError
from mmdata.io import file_sha256, stream_sha256
from mmdata.shards import index as idx
from mmdata.shards.tario import count_members, iter_samples, open_shard, split_member, unsafe_member_path
from mmdata.urls import call, filesystem, is_remote, lookup, redact_text, unless_file_url

#: the problem of a ``.tar`` file in the dataset folder that ``shards.parquet`` does not list
NOT_LISTED = "a shard file the index does not list (left from another job?)"
#: index / tar-header disagreements reported per shard (and bad index rows in all) before a count of the rest: one
#: more problem row whose ``more`` holds that count (the only rows with a ``more`` key)
MAX_MEMBER_PROBLEMS = 20
#: what verify's report says (``unprotected_card``) of a card that records no ``card_digests``
UNPROTECTED = (f"{idx.CARD} is unprotected: it records no {idx.CARD_DIGESTS} (written before 2026-12-06), so an edit "
               "of its license, description or options is not detected, and its class names and counts were checked "
               "against the index only (write it again with --rewrite to protect it)")


def unprotected_note(card: dict[str, Any]) -> str:
    """What verify's report says (``unprotected_card``) of a card without ``card_digests``: :data:`UNPROTECTED`,
    whose remedy (a ``--rewrite`` reshard) loses nothing for a dataset written by one shard job; for one with
    series added by ``mmdata add-modality`` the remedy that keeps them (a reshard with ``--rewrite`` removes
    every added series: QA34 upgrade #3): add-modality records the digests when it rewrites the card.

    Example:
        >>> unprotected_note({}) == UNPROTECTED
        True
        >>> "add-modality" in unprotected_note({"modalities": {"depth": {"added_by": "add-modality"}}})
        True
    """
    mods = card.get("modalities")
    added = sorted(str(f) for f, m in (mods.items() if isinstance(mods, dict) else ())
                   if isinstance(m, dict) and m.get("added_by") == "add-modality")
    if not added:
        return UNPROTECTED
    series = ", ".join(added)
    return (f"{idx.CARD} is unprotected: it records no {idx.CARD_DIGESTS} (written before 2026-12-06), so an edit "
            "of its license, description or options is not detected, and its class names and counts were checked "
            f"against the index only; to protect it without losing the added series ({series}): "
            f"{PROTECT_HINT}, or `mmdata add-modality DS {added[0]} SRC --replace` with that series' source (both "
            "record the digests of the card as it is now, so read it first (`mmdata inspect DS`): an edit made before "
            "cannot be told afterwards; every series stays); a reshard with --rewrite would remove the added series")


#: how to record the digests of an older card in place (:func:`protect_card`)
PROTECT_HINT = ("`python -c \"from mmdata.shards.verify import protect_card; protect_card('DS')\"` records them in "
                "place once verify passes")


def protect_card(path: str | Path, *, deep: bool = False) -> bool:
    """Record ``card_digests`` in the card of a local dataset folder written before 2026-12-06, in place, once
    :func:`verify` passes (``deep``: ``verify --deep``): from then on verify names an entry edited since. Nothing
    else is rewritten — no shard, no index, no series added by ``mmdata add-modality`` (QA34 upgrade #3: the only
    remedy offered, a ``--rewrite`` reshard, removed them). It seals the card **as it is**: an edit made before this
    call (reversed ``label_names`` of a manifest dataset, another ``license``) cannot be told — verify passes such a
    card, since nothing else records the names — and after it verify's "unprotected" note is gone. Read the card
    first (``mmdata inspect``; ``mmdata diff`` against a fresh sharding of the source compares class names and
    licence).

    Returns:
        True when the digests were written, False when the card had them already (nothing written).

    Raises:
        ShardError: not a dataset folder, or verify finds problems (their count and the first, named): a card
            that disagrees with its data is not sealed as it is.

    Example:
        >>> import tempfile, json, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=2), t + "/ds", progress=False)
        >>> protect_card(t + "/ds")
        False
    """
    from mmdata.shards.journal import JobLock

    root = Path(path)
    with JobLock(root, "protect_card"):
        card = idx.load_card(root)
        if isinstance(card.get(idx.CARD_DIGESTS), dict):
            return False
        rep = verify(root, deep=deep)
        if not rep["ok"]:
            first = rep["problems"][0]
            raise ShardError(f"{root}: verify finds {len(rep['problems'])} problem(s) (first: {first.get('shard')}: "
                             f"{first.get('problem')}); the card is not protected as it is: fix them (see `mmdata "
                             f"verify {root}`), then protect it")
        card[idx.CARD_DIGESTS] = idx.card_digests(card)
        idx.write_card(root, card)
    return True
#: the index columns verify reads
_INDEX_COLUMNS = ["key", "split", "shard", "members", "sizes"]


class _Remote:
    """A dataset folder at an fsspec URL: its files (one listing) and streamed digests."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None) -> None:
        self.url = url.rstrip("/")
        self.fs, root = filesystem(self.url, storage_options)
        self.root = root.rstrip("/")
        self.files = {p[len(self.root) + 1:] for p in call(self.url, "list it", self.fs.find, self.root)}

    def sha256(self, name: str) -> tuple[str, tuple[list[tuple[str, int]], str | None] | None]:
        """The shard's sha256 and, for an uncompressed shard, its tar headers as :func:`_tar_headers`
        gives them, from the one stream the digest reads (None for a ``.gz`` shard)."""
        with call(f"{self.url}/{name}", "read it", self.fs.open, f"{self.root}/{name}", "rb") as f:
            if name.endswith((".gz", ".tgz")):
                return stream_sha256(f), None
            hashing = _Hashing(f)
            walked = _walk(hashing, "r|")
            return hashing.rest(), walked


    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` bytes of the file ``name``."""
        with call(f"{self.url}/{name}", "read it", self.fs.open, f"{self.root}/{name}", "rb") as f:
            return f.read(n)


def _lfs_pointer(path: Path | str, store: _Remote | None, shard: str) -> bool:
    """Whether the shard file is a Git LFS pointer (a checkout without ``git lfs pull``): its digest cannot be
    the table's, and the pointer, not a sha256 mismatch, is what to say. False when it cannot be read."""
    from mmdata.shards.pointers import is_lfs_pointer

    try:
        if store is not None:
            head = store.head(shard, 1024)
        else:
            with open(path, "rb") as f:
                head = f.read(1024)
    except (OSError, MMDataError):  # the read that follows names what is wrong
        return False
    return is_lfs_pointer(head)


class _Hashing:
    """A binary stream's reads, passed through sha256."""

    def __init__(self, f: Any) -> None:
        self.f, self.h = f, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data

    def rest(self) -> str:
        """The digest of the whole stream (what is left is read now)."""
        while block := self.f.read(1 << 20):
            self.h.update(block)
        return self.h.hexdigest()


def _walk(f: Any, mode: str) -> tuple[list[tuple[str, int]], str | None]:
    """``(name, size)`` of every regular member of the open tar stream ``f`` (``mode``: ``r:`` seeks
    past member bodies, ``r|`` reads through them), and what stopped the walk (None: nothing)."""
    import tarfile
    import zlib

    out: list[tuple[str, int]] = []
    try:
        with tarfile.open(fileobj=f, mode=mode) as tar:
            out.extend((m.name, m.size) for m in tar if m.isreg())
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        return out, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 — a hostile header tarfile does not expect: reported, never raised
        return out, f"{type(exc).__name__}: {_reason(exc)}"
    return out, None


def _tar_headers(path: Path | str, storage_options: dict[str, Any] | None) -> tuple[list[tuple[str, int]], str | None]:
    """``(name, size)`` of every regular member as the shard's tar headers hold them, in order (member
    bodies are skipped: a local file is walked with seeks), and what stopped the walk (None: nothing).
    Python's ``tarfile`` reads them, a second parser beside mmdata's (which found no damage first)."""
    import io

    try:
        f = open_shard(str(path), storage_options)
    except ShardError as exc:
        return [], str(exc)
    with f:
        return _walk(f, "r:" if isinstance(f, io.BufferedReader) else "r|")


_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def _reason(exc: Exception) -> str:
    """An exception's message without object addresses (``<_io.BytesIO object at 0x7f..>``): the
    same damage gives the same report."""
    return _ADDRESS.sub(lambda m: f"<{m.group(1)}>", str(exc))


def _decode_problems(path: Path | str, shard: str, labels: dict[str, Any] | None,
                     storage_options: dict[str, Any] | None = None,
                     sizes: dict[str, tuple[Any, Any]] | None = None,
                     crcs: dict[str, int] | None = None,
                     seconds: dict[str, Any] | None = None,
                     non_finite: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Decode every member of one shard; one problem per member that does not decode, per label member
    whose value is not the ``label`` the index gives its key (``labels``: key -> label; None when the
    index has no label column), and per image whose decoded height and width are not the index's
    (``sizes``: key -> (image_height, image_width)) — shards written before mmdata applied a JPEG's EXIF
    orientation (2026-12-02) decode turned now, while their index keeps the stored size. ``crcs``:
    member name -> the CRC-32 the index records for it (``member_crc32``): a member whose bytes have
    another is named, with its sample key. ``seconds``: key -> the index's ``audio_seconds``; an audio
    member whose decoded length differs from it by more than a frame (plus the index's rounding to the
    microsecond) is named (inspect's audio totals and ``max_duration`` read that column). ``non_finite``: field ->
    [``.npy`` arrays holding NaN or infinite values, arrays decoded, (the first such member, (values, of, index))],
    filled in: no problem (a depth map marks missing pixels with NaN on purpose), verify warns per field (QA35
    robotics #3, review media #3)."""
    import math
    import zlib

    from mmdata.codecs import DecodeError, decode_member, non_finite_array

    problems: list[dict[str, Any]] = []
    for key, members, problem in iter_samples(str(path), max_member_bytes=1 << 62, storage_options=storage_options):
        if problem is not None:
            problems.append({"shard": shard, "problem": problem[0], "expected": None, "found": problem[1],
                             "key": key})
            continue
        for ext, data in members.items():
            want = crcs.get(f"{key}.{ext}") if crcs else None
            if want is not None and zlib.crc32(data) != want:
                problems.append({"shard": shard, "problem": f"member {key}.{ext} of key {key!r} holds other bytes "
                                 f"than the job wrote (its CRC-32 differs from {idx.INDEX}'s member_crc32)",
                                 "expected": f"crc32 {want:08x} ({idx.INDEX})",
                                 "found": f"crc32 {zlib.crc32(data):08x} ({key}.{ext})",
                                 "key": key, "member": f"{key}.{ext}"})
            try:
                # pickle members are not decoded (that would run them); they fail verify like any undecodable member
                field, value, rate = decode_member(ext, data, allow_pickle=False)
            except DecodeError as exc:
                # expected: the member (what machines match on); found: why it does not decode, not its name again
                problems.append({"shard": shard, "problem": "member does not decode", "expected": f"{key}.{ext}",
                                 "found": f"not decodable: {_reason(exc)}", "key": key, "member": f"{key}.{ext}"})
                continue
            if non_finite is not None and ext.lower().endswith("npy"):
                # QA35 robotics #3, review media #3: counted per field for a warning, not a problem (a depth map
                # marks missing pixels with NaN on purpose)
                acc = non_finite.setdefault(field, [0, 0, None])
                acc[1] += 1
                if (bad := non_finite_array(value)) is not None:
                    acc[0] += 1
                    if acc[2] is None:
                        # a named image's values (dem.tif.npy) decode to a tensor, whose .size is a method: count from the shape
                        acc[2] = (f"{key}.{ext}", (bad[0], math.prod(int(d) for d in value.shape), bad[1]))
            if non_finite is not None and field == "audio":  # silence / clipping / DC offset (QA38 bioacoustics #4)
                from mmdata.shards.mediainfo import FULL_SCALE, FULL_SCALE_OF, audio_levels, audio_subtype, note_audio_levels

                lv = non_finite.setdefault(AUDIO_LEVELS, [None, 0])
                full = FULL_SCALE_OF.get(audio_subtype(data) or "", FULL_SCALE)  # an 8-bit WAV peaks at 127 / 128
                lv[0] = note_audio_levels(lv[0], audio_levels(value, full), key)
                lv[1] += 1
            if field == "label" and labels is not None and key in labels and labels[key] != value:
                problems.append({"shard": shard, "problem": f"{idx.INDEX} gives key {key!r} a label other than "
                                 f"its member {key}.{ext} holds", "expected": f"{value} ({key}.{ext})",
                                 "found": f"{labels[key]} ({idx.INDEX})", "key": key, "member": f"{key}.{ext}"})
            if field == "audio" and seconds is not None and key in seconds and rate:
                problems.extend(_duration_problems(shard, key, f"{key}.{ext}", seconds[key], value, rate))
            hw = sizes.get(key) if field == "image" and sizes is not None else None
            if hw is not None and None not in hw and tuple(int(v) for v in value.shape[-2:]) != tuple(int(v) for v in hw):
                problems.append({"shard": shard, "problem": f"{idx.INDEX} gives key {key!r} an image size other than "
                                 f"its member {key}.{ext} decodes to (shards written before mmdata applied a JPEG's "
                                 "EXIF orientation, 2026-12-02, decode turned now: shard the source again)",
                                 "expected": f"{int(hw[0])}x{int(hw[1])} ({idx.INDEX})",
                                 "found": f"{int(value.shape[-2])}x{int(value.shape[-1])} ({key}.{ext})",
                                 "key": key, "member": f"{key}.{ext}"})
    return problems


def _duration_problems(shard: str, key: str, member: str, indexed: Any, audio: Any, rate: int) -> list[dict[str, Any]]:
    """One decoded audio member's length (``audio``: channels x frames at ``rate``) against the index's
    ``audio_seconds`` for its key: more than one frame apart (and the index's microsecond rounding), or NaN /
    infinity in the index, is a problem naming the key and member (null: no length recorded, not checked).

    Example:
        >>> import numpy as np
        >>> _duration_problems("s.tar", "a", "a.wav", 1.0, np.zeros((1, 16000)), 16000)
        []
        >>> _duration_problems("s.tar", "a", "a.wav", 999.0, np.zeros((1, 16000)), 16000)[0]["found"]
        '999.0 s (index.parquet)'
    """
    import math

    shape = getattr(audio, "shape", None)
    if not shape or indexed is None:  # null: the job recorded no length (nothing inspect would add up)
        return []
    decoded = int(shape[-1]) / rate
    if isinstance(indexed, (int, float)) and not isinstance(indexed, bool) and math.isfinite(indexed) \
            and abs(indexed - decoded) <= 1 / rate + 1e-6:
        return []
    return [{"shard": shard, "problem": f"{idx.INDEX} gives key {key!r} an audio length other than its member "
             f"{member} decodes to (inspect's audio totals and max_duration read the index's audio_seconds)",
             "expected": f"{decoded:.6g} s ({int(shape[-1])} frames at {rate} Hz, {member})",
             "found": f"{indexed} s ({idx.INDEX})", "key": key, "member": member}]


def card_problems(root: Path | str, card: dict[str, Any], table: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The card's ``splits[*].shards`` against ``shards.parquet`` (the readers read the shards the card
    lists): each split lists exactly the shards of that split (in the column layout the series' common
    name, ``train-000000.tar`` for ``image/train-000000.tar``), each a name inside the folder, once; in
    the column layout ``fields`` lists exactly the fields of the series (``image`` for ``image/...``).
    Each problem names the card as its ``shard`` (``mmdata inspect`` shows them as warnings).

    Example:
        >>> card = {"layout": "samples", "splits": {"train": {"shards": ["a.tar", "a.tar"]}}}
        >>> [p["found"] for p in card_problems("ds", card, {"shard": ["a.tar", "b.tar"], "split": ["train"] * 2})]
        ['a.tar 2 times', None]
    """
    def problem(what: str, expected: Any, found: Any) -> dict[str, Any]:
        return {"shard": idx.CARD, "problem": what, "expected": expected, "found": found}

    columns = card.get("layout", "samples") == "columns"
    want: dict[str, dict[str, None]] = {}  # split -> its shards, in shards.parquet order
    for shard, split in zip(table["shard"], table["split"]):
        name = shard.split("/", 1)[1] if columns and isinstance(shard, str) and "/" in shard else shard
        want.setdefault(split, {})[name] = None
    splits = card.get("splits")
    if not isinstance(splits, dict):
        return [problem("'splits' is not a mapping of split -> {samples, shards}", "a JSON object",
                        f"a JSON {type(splits).__name__}")]
    # split names are used as file names by the jobs that write shards (`mmdata augment`): checked as
    # `mmdata shard` checks its own
    out = [problem(why, "split names that can name shard files", None) for why in idx.split_name_problems(splits)]
    for split in sorted(set(splits) | set(want), key=str):
        if split not in splits:
            out.append(problem(f"split {split!r} is not listed; {idx.SHARDS} lists shards of it (readers would "
                               "not read them)", f"{len(want[split])} shards", None))
            continue
        entry = splits[split]
        names = entry.get("shards") if isinstance(entry, dict) else None
        if not isinstance(names, list):
            what = names if isinstance(entry, dict) else entry
            out.append(problem(f"split {split!r}: its shards are not a list of shard names", "a list of shard names",
                               f"a JSON {type(what).__name__}: {json.dumps(what)[:200]}"))
            continue
        safe: list[str] = []
        for name in names:
            try:
                safe.append(idx.check_shard_name(root, name))
            except ShardError:
                out.append(problem(f"split {split!r} lists a shard path outside the dataset folder (absolute, "
                                   "'..', a URL) or not a name", "a shard name inside the dataset folder", repr(name)))
        for name, n in Counter(safe).items():
            if n > 1:
                out.append(problem(f"split {split!r} lists a shard more than once", "each shard once",
                                   f"{name} {n} times"))
        expected, listed = want.get(split, {}), set(safe)
        for name in expected:
            if name not in listed:
                out.append(problem(f"split {split!r} does not list a shard {idx.SHARDS} lists for it; readers would "
                                   "skip its samples", name, None))
        for name in dict.fromkeys(safe):
            if name not in expected:
                out.append(problem(f"split {split!r} lists a shard {idx.SHARDS} does not list for it", None, name))
    if columns:  # the readers open a series per field the card lists
        fields = card.get("fields") if isinstance(card.get("fields"), list) else []
        series = {s.split("/", 1)[0]: None for s in table["shard"] if isinstance(s, str) and "/" in s}
        for field in series:
            if field not in fields:
                out.append(problem(f"'fields' does not list field {field!r}, whose series {idx.SHARDS} lists; readers "
                                   "would not read it", field, None))
        for field in fields:
            if field not in series:
                out.append(problem(f"'fields' lists field {field!r}, which has no series in {idx.SHARDS}", None, field))
    return out


def _member_problems(series: str, expected: list[tuple[str, str, int]], found: list[tuple[str, int]]
                     ) -> list[dict[str, Any]]:
    """One shard's (or column series') members as ``index.parquet`` lists them (``(key, name, size)``)
    against its tar headers (``(name, size)``): names, how often, sizes; unsafe names. At most
    :data:`MAX_MEMBER_PROBLEMS` per shard, then a count of the rest."""
    out: list[dict[str, Any]] = []
    in_index = Counter(name for _, name, _ in expected)
    in_tar = Counter(name for name, _ in found)
    keys = {name: key for key, name, _ in expected}
    sizes = {name: size for _, name, size in expected}

    def problem(what: str, exp: Any, got: Any, member: str | None = None) -> dict[str, Any]:
        key = keys.get(member) if member is not None else None
        if member is not None and key is None:
            parts = split_member(member)
            key = parts[0] if parts is not None else None
        return {"shard": series, "problem": what, "expected": exp, "found": got, "key": key, "member": member}

    for name, _ in found:
        if unsafe_member_path(name):
            out.append(problem(f"member {name!r} has an absolute or escaping path (readers refuse it)",
                               "a member name inside the shard", name, name))
    for name, n in in_index.items():
        if name not in in_tar:
            out.append(problem(f"{idx.INDEX} lists member {name!r} of key {keys[name]!r}, which the shard does not "
                               "hold", name, None, name))
        elif n != in_tar[name]:
            out.append(problem(f"{idx.INDEX} lists member {name!r} a number of times the shard does not hold it",
                               f"{in_tar[name]} (tar headers)", f"{n} ({idx.INDEX})", name))
    for name in in_tar:
        if name not in in_index:
            out.append(problem(f"member {name!r} is not in {idx.INDEX}", None, name, name))
    for name, size in found:
        if name in sizes and in_index[name] == in_tar[name] == 1 and sizes[name] != size:
            out.append(problem(f"{idx.INDEX} gives member {name!r} of key {keys[name]!r} a size other than its "
                               "tar header", f"{size} bytes (tar header)", f"{sizes[name]} bytes ({idx.INDEX})", name))
    if len(out) > MAX_MEMBER_PROBLEMS:
        rest = len(out) - MAX_MEMBER_PROBLEMS
        # the count as a number too ("more"), not only inside the text (QA40 scale #4)
        out = out[:MAX_MEMBER_PROBLEMS] + [{**problem(f"{rest} more disagreements between {idx.INDEX} and the tar "
                                                      "headers", None, None), "more": rest}]
    return out


def _same_layout(path: Path | str, listed: list[tuple[str, str, int]]) -> bool:
    """True when a local uncompressed shard holds exactly the members ``listed`` (``(key, name, size)``),
    in that order, as plain ustar headers (the reader's fast path checks the same, vectorised: every
    header where those sizes put it, with that name, size and a regular-file type, then the end of the
    archive). False says nothing: the caller then walks the headers."""
    import numpy as np

    from mmdata.shards.tario import indexed_members

    try:
        raw = [name.encode("utf-8", "surrogateescape") for _, name, _ in listed]
        sizes = np.array([size for _, _, size in listed], dtype=np.int64)
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
        return False
    width = max((len(r) for r in raw), default=0)
    if not 0 < width <= 100 or (sizes < 0).any() or any(not r or b"\0" in r for r in raw):
        return False
    names = np.array(raw, dtype=f"S{width}").view(np.uint8).reshape(len(raw), width)
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(512 + (sizes + 511) // 512 * 512, out=offsets[1:])
    found = indexed_members(str(path), names, sizes, offsets)
    if found is None:
        return False
    found[0].close()
    return True


def _header_problems(shard: str, source: Path | str | tuple[list[tuple[str, int]], str | None],
                     listed: list[tuple[str, str, int]], storage_options: dict[str, Any] | None,
                     ordered: bool = False) -> list[dict[str, Any]]:
    """One shard's tar headers against the members ``listed`` for it in the index: ``source`` is the
    local shard's path (first checked at once with :func:`_same_layout`, walked only when that fails)
    or the walk already done while its sha256 was streamed. ``ordered`` (a column series): the samples
    must also come in the index's row order (:func:`_order_problems`)."""
    if isinstance(source, tuple):
        found, stopped = source
    elif _same_layout(source, listed):
        return []
    else:
        found, stopped = _tar_headers(source, storage_options)
    if stopped is not None:
        return [{"shard": shard, "problem": "tar headers unreadable", "expected": "a tar file", "found": stopped}]
    return _member_problems(shard, listed, found) or (_order_problems(shard, listed, found) if ordered else [])


def _order_problems(series: str, expected: list[tuple[str, str, int]], found: list[tuple[str, int]]
                    ) -> list[dict[str, Any]]:
    """A column series shard holding the members the index lists (``(key, name, size)``) in another sample
    order than the index's rows (``found``: its tar headers' ``(name, size)``): the reader zips the series
    in the index's order, so each sample out of place is lost as ``column series misaligned``. One
    problem, naming the first key out of order. (In the samples layout the order of a shard's rows does
    not matter: the reader checks each sample against its row, wherever it is.)

    Example:
        >>> rows = [("a", "a.png", 1), ("b", "b.png", 1)]
        >>> _order_problems("image/train-000000.tar", rows, [("b.png", 1), ("a.png", 1)])[0]["key"]
        'a'
    """
    keys = {name: key for key, name, _ in expected}
    want = list(dict.fromkeys(key for key, _, _ in expected))
    held = list(dict.fromkeys(keys[name] for name, _ in found if name in keys))
    at = next((i for i, (w, h) in enumerate(zip(want, held)) if w != h), None)
    if at is None:
        return []
    return [{"shard": series, "problem": f"{idx.INDEX} lists the samples of this series shard in another order than "
             f"it holds them (the reader zips the series in the index's row order: samples out of place are lost as "
             f"column series misaligned); first out of order: key {want[at]!r}",
             "expected": f"{want[at]!r} as sample {at} ({idx.INDEX} row order)", "found": f"{held[at]!r} (tar headers)",
             "key": want[at], "member": None}]


def _index_problems(root: Path | str, card: dict[str, Any], table: dict[str, list[Any]],
                    rows: dict[str, list[Any]] | str | None,
                    headers: dict[str, Path | str | tuple[list[tuple[str, int]], str | None]],
                    storage_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``index.parquet`` (``rows``: its columns, the reason it could not be read, or None when absent)
    against ``shards.parquet`` (samples and members per shard; in the column layout per series
    ``<field>/<shard>``: the samples and members of that field), the card (samples per split) and the
    tar headers of the shards read without damage (``headers``: the shard's path, or its walk
    :func:`_tar_headers`; member names and sizes); keys unique, each
    member ``<key>.<ext>`` of its row's key. Problems of the index alone name it as their ``shard``,
    disagreements with a shard's headers name the shard."""
    def problem(what: str, expected: Any, found: Any, key: Any = None, member: Any = None) -> dict[str, Any]:
        return {"shard": idx.INDEX, "problem": what, "expected": expected, "found": found, "key": key,
                "member": member}

    if rows is None:
        return [problem("missing", "one row per sample", None)]
    if isinstance(rows, str):
        return [problem("unreadable", "a Parquet file with the index columns", rows)]
    columns = card.get("layout", "samples") == "columns"
    samples: dict[tuple[str, str], int] = {}
    members: dict[tuple[str, str], int] = {}
    listed_members: dict[str, list[tuple[str, str, int]]] = {}
    per_split: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    bad_rows: list[dict[str, Any]] = []
    for key, split, shard, names, sizes in zip(rows["key"], rows["split"], rows["shard"], rows["members"],
                                               rows["sizes"]):
        names, sizes = names or [], sizes or []
        per_split[split] = per_split.get(split, 0) + 1
        if len(names) != len(sizes):
            bad_rows.append(problem(f"row of key {key!r} lists {len(names)} members but {len(sizes)} sizes",
                                    "one size per member", f"{len(sizes)} sizes", key))
        foreign: list[str] = []
        for name in names:
            if not isinstance(name, str):
                bad_rows.append(problem(f"row of key {key!r} lists a member without a name", "a member name", None,
                                        key))
                continue
            parts = split_member(name)
            if unsafe_member_path(name):
                bad_rows.append(problem(f"row of key {key!r} lists member {name!r}, an absolute or escaping path",
                                        "a member name inside the shard", name, key, name))
            elif parts is None or parts[0] != key:
                foreign.append(name)
        if foreign:  # one problem per row: a renamed key makes every member of it foreign
            shown = ", ".join(repr(m) for m in foreign[:4]) + (f", ... ({len(foreign)} in all)" if foreign[4:] else "")
            bad_rows.append(problem(f"row of key {key!r} lists members that are not <key>.<ext> of that key",
                                    f"{key}.<ext>", shown, key, foreign[0]))
        names = [m for m in names if isinstance(m, str)]
        fields = [field_of(m.split(".", 1)[1]) if "." in m else "" for m in names] if columns else [""] * len(names)
        for f in dict.fromkeys(fields):
            series = f"{f}/{shard}" if columns else shard
            samples[(split, series)] = samples.get((split, series), 0) + 1
        for f, name, size in zip(fields, names, sizes):
            series = f"{f}/{shard}" if columns else shard
            members[(split, series)] = members.get((split, series), 0) + 1
            listed_members.setdefault(series, []).append((key, name, size))
    for key, n in Counter(rows["key"]).items():
        if n > 1:
            out.append(problem(f"key {key!r} has more than one row", "one row per key", f"{n} rows", key))
    out.extend(bad_rows[:MAX_MEMBER_PROBLEMS])
    if len(bad_rows) > MAX_MEMBER_PROBLEMS:
        out.append({**problem(f"{len(bad_rows) - MAX_MEMBER_PROBLEMS} more rows with bad members", None, None),
                    "more": len(bad_rows) - MAX_MEMBER_PROBLEMS})
    listed = set()
    for shard, split, n, m in zip(table["shard"], table["split"], table.get("samples") or [None] * len(table["shard"]),
                                  table["members"]):
        if (split, shard) in listed:
            continue  # a repeated shards.parquet row is reported as such
        listed.add((split, shard))
        for what, expected, found in (("samples", n, samples.get((split, shard), 0)),
                                      ("members", m, members.get((split, shard), 0))):
            if expected is not None and found != expected:
                out.append(problem(f"{what} of {split} shard {shard} disagree with {idx.SHARDS}", expected, found))
        if shard in headers:
            out.extend(_header_problems(shard, headers[shard], listed_members.get(shard, []), storage_options,
                                        ordered=columns))
    for split, shard in sorted(set(samples) - listed, key=str):
        out.append(problem(f"rows name {split} shard {shard}, which {idx.SHARDS} does not list", None,
                           f"{samples[(split, shard)]} samples"))
    splits = card.get("splits") if isinstance(card.get("splits"), dict) else {}
    for split in sorted(set(splits) | set(per_split), key=str):
        found = per_split.get(split, 0)
        if split not in splits:
            out.append(problem(f"rows of split {split!r}, which {idx.CARD} does not list", None, f"{found} samples"))
            continue
        expected = splits[split].get("samples") if isinstance(splits[split], dict) else None
        if found != expected:
            out.append(problem(f"samples of split {split!r} disagree with {idx.CARD}", expected, found))
    return out


#: index columns verify reads when they are there (older indexes lack some): source keys, labels, member checksums
_OPTIONAL_COLUMNS = ("source_key", "label", "member_crc32")


def _load_index(root: Path | str, present: bool, deep: bool, storage_options: dict[str, Any] | None,
                card: dict[str, Any]) -> tuple[dict[str, list[Any]] | str | None, dict[str, Any] | None,
                                               dict[str, tuple[Any, Any]] | None, dict[str, Any] | None]:
    """The index columns verify reads (or why not, or None when absent) with those of
    :data:`_OPTIONAL_COLUMNS` (and with ``deep`` the image sizes) that are there and readable, and with
    ``deep`` key -> label and key -> (image_height, image_width) (None without those columns). An index
    of more rows than twice the card's samples (plus :data:`~mmdata.shards.index.ROW_SLACK`) is not read:
    why is the reason it is unreadable."""
    if not present:
        return None, None, None, None
    kw: dict[str, Any] = {"storage_options": storage_options, "rows": "bounded", "card": card}
    extras = [*_OPTIONAL_COLUMNS, *(("image_height", "image_width", "audio_seconds") if deep else ())]
    try:  # one read with every column; an index without some of them is read again column by column
        rows = idx.load_index(root, columns=[*_INDEX_COLUMNS, *extras], **kw).to_pydict()
    except ShardError:
        try:
            rows = idx.load_index(root, columns=_INDEX_COLUMNS, **kw).to_pydict()
        except ShardError as exc:
            return str(exc), None, None, None
        for extra in extras:
            try:
                rows[extra] = idx.load_index(root, columns=[extra], **kw).column(extra).to_pylist()
            except ShardError:
                pass
    labels = dict(zip(rows["key"], rows["label"])) if deep and "label" in rows else None
    sizes = (dict(zip(rows["key"], zip(rows["image_height"], rows["image_width"])))
             if deep and "image_height" in rows and "image_width" in rows else None)
    seconds = dict(zip(rows["key"], rows["audio_seconds"])) if deep and "audio_seconds" in rows else None
    return rows, labels, sizes, seconds


def _member_crcs(rows: dict[str, list[Any]] | str | None) -> dict[str, int] | None:
    """Member name -> the CRC-32 the index records (rows whose ``member_crc32`` lists one per member)."""
    if not isinstance(rows, dict) or "member_crc32" not in rows:
        return None
    out: dict[str, int] = {}
    for names, crcs in zip(rows["members"], rows["member_crc32"]):
        if names and crcs and len(names) == len(crcs):
            out.update((n, c) for n, c in zip(names, crcs) if isinstance(n, str) and isinstance(c, int))
    return out


def card_index_problems(card: dict[str, Any], table: dict[str, list[Any]],
                        rows: dict[str, list[Any]] | str | None) -> list[dict[str, Any]]:
    """The card's ``fingerprint``, ``label_names`` / ``num_classes``, per-class counts and
    ``source_keys_sha256`` against ``shards.parquet`` and the index (``rows``; a card without one of
    them, as older cards, is not checked on it). Each problem names the card as its ``shard``.

    Example:
        >>> card = {"fingerprint": idx.fingerprint(["ab"]), "label_names": ["cat"], "num_classes": 2}
        >>> [p["problem"].split(":")[0] for p in card_index_problems(card, {"sha256": ["ab"]}, None)]
        ['label_names and num_classes disagree']
    """
    def problem(what: str, expected: Any, found: Any, key: Any = None) -> dict[str, Any]:
        return {"shard": idx.CARD, "problem": what, "expected": expected, "found": found, "key": key, "member": None}

    out: list[dict[str, Any]] = []
    written = card.get("fingerprint")
    if isinstance(written, str) and table.get("sha256") and written != (fp := idx.fingerprint(table["sha256"])):
        out.append(problem(f"fingerprint does not match the shards' sha256 in {idx.SHARDS} (the card is from "
                           "another job, or one of them was edited)", f"{fp} (from {idx.SHARDS})",
                           f"{written} ({idx.CARD})"))
    names, n_classes = card.get("label_names"), card.get("num_classes")
    if isinstance(names, list) and n_classes is not None and len(names) != n_classes:
        out.append(problem(f"label_names and num_classes disagree: {len(names)} names for {n_classes} classes",
                           f"{n_classes} names (num_classes)", f"{len(names)} names (label_names)"))
    if not isinstance(rows, dict):
        return out
    labels = rows.get("label")
    if labels is not None:
        limit = len(names) if isinstance(names, list) else n_classes
        if isinstance(limit, int):
            outside = [(k, v) for k, v in zip(rows["key"], labels) if isinstance(v, int) and not 0 <= v < limit]
            if outside:
                shown = ", ".join(f"{k!r}: {v}" for k, v in outside[:3]) + (", ..." if len(outside) > 3 else "")
                what = f"the {limit} label_names" if isinstance(names, list) else f"num_classes {limit}"
                out.append(problem(f"{len(outside)} samples of {idx.INDEX} have a label outside {what} ({shown})",
                                   f"labels 0..{limit - 1}", f"{outside[0][1]} (key {outside[0][0]!r})",
                                   outside[0][0]))
        per_class = (card.get("counts") or {}).get("per_class") if isinstance(card.get("counts"), dict) else None
        if isinstance(per_class, dict):
            found = {str(k): n for k, n in sorted(Counter(v for v in labels if v is not None).items())}
            if {str(k): v for k, v in per_class.items()} != found:
                diff = sorted(set(per_class) | set(found), key=lambda c: (len(c), c))
                shown = ", ".join(f"class {c}: {per_class.get(c, 0)} vs {found.get(c, 0)}" for c in diff
                                  if per_class.get(c, 0) != found.get(c, 0))
                out.append(problem(f"samples per class of {idx.INDEX} disagree with the card's counts.per_class "
                                   f"({shown})", f"{per_class} ({idx.CARD})", f"{found} ({idx.INDEX})"))
    out.extend(_card_count_problems(card, rows, problem))
    if isinstance(names, list) and "source_key" in rows and labels:
        if card.get("label_names_from") == "folders":
            out.extend(_class_folder_problems(names, rows["key"], rows["source_key"], labels, problem))
        elif (depth := _names_are_folders(names, rows["source_key"], labels)) is not None:
            out.extend(_swapped_folder_problems(names, rows["key"], rows["source_key"], labels, depth, problem))
    digest = card.get("source_keys_sha256")
    if isinstance(digest, str) and "source_key" in rows and idx.source_keys_digest(rows["key"], rows["source_key"]) != digest:
        from mmdata.shards.sources import safe_key

        odd = [(k, sk) for k, sk in zip(rows["key"], rows["source_key"])
               if isinstance(sk, str) and safe_key(unicodedata.normalize("NFC", sk)) != k]
        hint = f" (e.g. key {odd[0][0]!r} has source_key {odd[0][1]!r})" if odd else ""
        out.append(problem(f"the source_key of some samples of {idx.INDEX} is not the one the job wrote (an "
                           f"edited index?){hint}", f"source_keys_sha256 {digest} ({idx.CARD})",
                           f"{idx.source_keys_digest(rows['key'], rows['source_key'])} ({idx.INDEX})",
                           odd[0][0] if odd else None))
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _card_count_problems(card: dict[str, Any], rows: dict[str, list[Any]], problem: Any) -> list[dict[str, Any]]:
    """The card's ``counts.samples``, ``counts.patterns`` and each modality's ``count`` against the index's rows
    and members, counted as the job that wrote the card counts them (a pattern: a sample's fields joined by
    ``+``, sorted; a modality's count: its members). An entry the card lacks is not checked."""
    out: list[dict[str, Any]] = []
    counts = card.get("counts") if isinstance(card.get("counts"), dict) else {}
    n = len(rows["key"])
    if "samples" in counts and counts["samples"] != n:
        out.append(problem(f"counts.samples disagrees with the rows of {idx.INDEX}", f"{n} samples ({idx.INDEX})",
                           f"{counts['samples']!r} ({idx.CARD})"))
    patterns: Counter[str] = Counter()
    members: Counter[str] = Counter()
    for key, names in zip(rows["key"], rows["members"]):
        fields = []
        for name in names or []:
            if isinstance(name, str) and isinstance(key, str):
                ext = name[len(key) + 1:] if name.startswith(f"{key}.") else name.partition(".")[2]
                fields.append(field_of(ext))
        members.update(fields)
        patterns["+".join(sorted(set(fields)))] += 1
    written = counts.get("patterns")
    if isinstance(written, dict) and written != dict(patterns):
        shown = ", ".join(f"{p or '(no member)'}: {written.get(p, 0)!r} vs {patterns.get(p, 0)}"
                          for p in sorted(set(written) | set(patterns), key=str)
                          if written.get(p, 0) != patterns.get(p, 0))
        out.append(problem(f"counts.patterns disagrees with the members of {idx.INDEX} (card vs index: {shown[:300]})",
                           f"{dict(sorted(patterns.items()))} ({idx.INDEX})", f"{written} ({idx.CARD})"))
    modalities = card.get("modalities") if isinstance(card.get("modalities"), dict) else {}
    for field, info in modalities.items():
        written = info.get("count") if isinstance(info, dict) else None
        if written is not None and written != members.get(field, 0):
            out.append(problem(f"modalities.{field}.count disagrees with the {field} members of {idx.INDEX}",
                               f"{members.get(field, 0)} ({idx.INDEX})", f"{written!r} ({idx.CARD})"))
    return out


_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def _card_form(folder: str) -> str:
    """A folder of a source key as the card names its class: the key holds a non-UTF-8 byte as ``\\xe9``
    (:func:`mmdata.shards.sources.printable`), the card's ``label_names`` as U+FFFD (valid JSON text,
    :func:`mmdata.shards.index.card_bytes`); both sides are compared in the card's form.

    Example:
        >>> _card_form("caf\\\\xe9"), _card_form("dog")
        ('caf\ufffd', 'dog')
    """
    raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), folder)
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _names_are_folders(names: list[Any], source_keys: list[Any], labels: list[Any]) -> int | None:
    """The depth (0, or 1 below split folders) of the class folders the labelled samples were sharded from
    when the class names are exactly those folders, else None: whatever ``label_names_from`` says, a name
    swap among them is then checked (:func:`_swapped_folder_problems`). That entry is free text a card's
    editor may change (QA28: ``labels.txt`` in place of ``folders`` switched the class-folder check off, so
    swapped names passed); the folders are the index's."""
    from mmdata.shards.sources import _nfc

    wanted = {_nfc(n) for n in names if isinstance(n, str)}
    if len(wanted) != len(names) or len(wanted) < 2:
        return None
    for depth in (0, 1):
        found = set()
        for sk, label in zip(source_keys, labels):
            if not _count(label):
                continue
            parts = sk.split("/") if isinstance(sk, str) else []
            if len(parts) < depth + 2:
                break
            found.add(_nfc(parts[depth]))
        else:
            if found == wanted:
                return depth
    return None


def _swapped_folder_problems(names: list[Any], keys: list[Any], source_keys: list[Any], labels: list[Any],
                             depth: int, problem: Any) -> list[dict[str, Any]]:
    """Class names that are the class folders, read from elsewhere (label files, a names file), against the
    folders, one folder at a time. Label files may relabel samples away from their folder (a dataset
    relabelled over months: review of QA28, a fresh dataset failed ``verify``), so a sample named after
    another folder is no error; a folder *most* of whose labelled samples (over half) carry another folder's
    name is: a permutation of the names moves every sample of each folder it touches, a relabel a few.
    One problem, naming those folders and the first sample of the first."""
    from mmdata.shards.sources import _nfc

    seen: dict[str, list[Any]] = {}
    for key, sk, label in zip(keys, source_keys, labels):
        if not (isinstance(sk, str) and _count(label) and 0 <= label < len(names)):
            continue
        folder = _nfc(sk.split("/")[depth])
        tally = seen.setdefault(folder, [0, 0, None])
        tally[0] += 1
        if not isinstance(names[label], str) or _nfc(names[label]) != folder:
            tally[1] += 1
            if tally[2] is None:
                tally[2] = (key, sk, label)
    moved = [(f, n, bad, first) for f, (n, bad, first) in seen.items() if 2 * bad > n]
    if not moved:
        return []
    key, sk, label = moved[0][3]
    shown = ", ".join(f"{f!r}: {bad} of {n}" for f, n, bad, _ in moved[:8]) + (", ..." if len(moved) > 8 else "")
    return [problem(f"label_names disagree with the class folders the samples were sharded from: in {len(moved)} "
                    f"folder(s) most labelled samples carry another folder's class name ({shown} samples; e.g. key "
                    f"{key!r} of {sk!r} has label {label}, named {names[label]!r}): the card's class names were "
                    "edited or reordered (label files may relabel some samples of a folder, not most of them)",
                    f"a class named after the folder of {sk!r}", f"{names[label]!r} (label_names[{label}])", key)]


def _class_folder_problems(names: list[Any], keys: list[Any], source_keys: list[Any], labels: list[Any],
                           problem: Any) -> list[dict[str, Any]]:
    """Class names read from class folders (``label_names_from: folders``) against the folders the samples were
    sharded from: a sample of ``cat/003`` with label id 1 needs ``label_names[1] == "cat"`` (a folder of its
    source key: split folders may come first). Reordered or renamed names would relabel every class for the
    readers, training and ``to_hf``. One problem, naming the first sample and how many disagree."""
    from mmdata.shards.sources import _nfc

    wrong = []
    for key, sk, label in zip(keys, source_keys, labels):
        if not (isinstance(sk, str) and "/" in sk and _count(label) and 0 <= label < len(names)):
            continue
        folders = {_nfc(f) for f in sk.split("/")[:-1]}
        folders |= {_nfc(_card_form(f)) for f in folders if "\\x" in f}
        if not isinstance(names[label], str) or _nfc(names[label]) not in folders:
            wrong.append((key, sk, label))
    if not wrong:
        return []
    key, sk, label = wrong[0]
    return [problem(f"label_names disagree with the class folders the samples were sharded from: {len(wrong)} "
                    f"samples' class name is not their folder (e.g. key {key!r} of {sk!r} has label {label}, named "
                    f"{names[label]!r}): the card's class names were edited or reordered",
                    f"a class named after a folder of {sk!r}", f"{names[label]!r} (label_names[{label}])", key)]


def card_digest_problems(card: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The card's entries against the digests the job that wrote it recorded (``card_digests``,
    :func:`mmdata.shards.index.card_digests`): one problem per entry edited, added or removed since, naming
    it. None when the card records no digests (written before 2026-12-06): its entries are then checked
    against the index only.

    Example:
        >>> card = {"license": "CC-BY-4.0", "splits": {}}
        >>> card[idx.CARD_DIGESTS] = idx.card_digests(card)
        >>> card_digest_problems(card), card_digest_problems({"splits": {}}) is None
        ([], True)
        >>> card["license"] = "proprietary"
        >>> card_digest_problems(card)[0]["problem"]  # doctest: +ELLIPSIS
        "entry 'license' was edited after the job wrote the card ..."
    """
    written = card.get(idx.CARD_DIGESTS)
    if written is None:
        return None

    def problem(what: str, expected: Any, found: Any) -> dict[str, Any]:
        return {"shard": idx.CARD, "problem": what, "expected": expected, "found": found, "key": None, "member": None}

    if not isinstance(written, dict) or not all(isinstance(v, str) for v in written.values()):
        return [problem(f"{idx.CARD_DIGESTS} is not an object of entry -> digest", "an object of entry -> digest",
                        f"a JSON {type(written).__name__}")]
    now = idx.card_digests(card)
    out = []
    for entry in sorted(set(written) | set(now)):
        if entry not in now:
            out.append(problem(f"entry {entry!r} was removed after the job wrote the card (its {idx.CARD_DIGESTS} "
                               "lists it)", f"{entry!r} ({idx.CARD_DIGESTS})", None))
        elif entry not in written:
            out.append(problem(f"entry {entry!r} was added after the job wrote the card (its {idx.CARD_DIGESTS} do "
                               "not list it)", None, f"{entry}: {_shown(card[entry])}"))
        elif written[entry] != now[entry]:
            out.append(problem(f"entry {entry!r} was edited after the job wrote the card (its digest is not the "
                               f"one the job recorded in {idx.CARD_DIGESTS})",
                               f"digest {written[entry]} ({idx.CARD_DIGESTS})",
                               f"digest {now[entry]}: {entry} {_shown(card[entry])}"))
    return out


def _shown(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=True, sort_keys=True, default=str)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _tars_on_disk(root: Path) -> Iterator[str]:
    """The ``.tar`` files under the dataset folder ``root``, relative to it, leaving out folders that hold
    a dataset of their own (``data/`` sharded, then ``data/avdigits`` built inside it)."""
    for folder, dirs, files in os.walk(root):
        if folder != str(root) and idx.CARD in files:
            dirs.clear()
            continue
        rel = Path(folder).relative_to(root)
        yield from ((rel / f).as_posix() for f in files if f.endswith(".tar"))


def _deep_progress(deep: bool, progress: bool, total: int) -> Any:
    """A started progress display over the shards of a ``deep`` check (minutes at 60,000 samples: QA38 F #4), or
    None (not ``deep``, ``progress`` False, ``MMDATA_PROGRESS=off``). Plain lines off a terminal, a line each
    ``MMDATA_PROGRESS_INTERVAL`` while one shard decodes, so a CI's no-output timeout does not end the job."""
    if not deep or not progress or not total:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn

    from mmdata.progress import make_progress

    prog = make_progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                         TimeElapsedColumn(), TimeRemainingColumn(), unit="shards")
    if prog is None:
        return None
    prog.start()
    prog.add_task("verifying shards (decoding every member)", total=total)
    return prog


def _check_shards(root: Path | str, store: _Remote | None, table: dict[str, list[Any]], rows: Any, labels: Any,
                  sizes: Any, seconds: Any, crcs: Any, deep: bool, storage_options: dict[str, Any] | None,
                  checked: dict[str, None], non_finite: dict[str, list[Any]],
                  headers: dict[str, Path | str | tuple[list[tuple[str, int]], str | None]],
                  bar: Any) -> list[dict[str, Any]]:
    """The problems of each distinct shard of ``shards.parquet`` (:func:`verify`'s loop); ``bar`` advanced a shard
    at a time."""
    problems: list[dict[str, Any]] = []
    for shard, sha, members, size in zip(table["shard"], table["sha256"], table["members"], table["bytes"]):
        if shard in checked:
            continue
        checked[shard] = None
        try:
            idx.check_shard_name(root, shard, where=idx.SHARDS)  # the names come from shards.parquet
            if not isinstance(size, int):  # inspect's shard sizes leave it out
                problems.append({"shard": idx.SHARDS, "problem": f"gives shard {shard} no byte size",
                                 "expected": "the shard's size in bytes", "found": f"no byte size for {shard} (null)"})
            p = root / shard if store is None else f"{root}/{shard}"
            if store is None and os.path.lexists(p) and (target := idx.escapes_folder(root, shard)) is not None:
                # a link out of the folder: the readers refuse it; not read here either (its bytes are not the dataset's)
                problems.append({"shard": shard, "problem": "a link to a file outside the dataset folder (readers refuse "
                                 "it)", "expected": "a shard file inside the dataset folder", "found": target})
                continue
            if store is None and (kind := idx.not_regular(p)) is not None:
                # a FIFO would block the read, a device read forever: looked at, never opened
                problems.append({"shard": shard, "problem": "not a file", "expected": "a shard file",
                                 "found": kind if kind == "a folder" else f"{kind}, not a regular file"})
                continue
            if not (p.is_file() if store is None else shard in store.files):  # type: ignore[union-attr]
                problems.append({"shard": shard, "problem": "missing", "expected": sha, "found": None})
                continue
            found, walked = (file_sha256(p), None) if store is None else store.sha256(shard)
            if found != sha and _lfs_pointer(p, store, shard):
                pass  # a checkout without `git lfs pull`: the one problem is the pointer (count_members names it below)
            elif found != sha:
                problems.append({"shard": shard, "problem": "sha256 mismatch", "expected": sha, "found": found})
            elif store is None and isinstance(size, int) and size != (on_disk := p.stat().st_size):
                # the file is the one the job wrote (its sha256): the table's byte size was edited
                problems.append({"shard": idx.SHARDS, "problem": f"gives shard {shard} a byte size other than the file's",
                                 "expected": f"{on_disk} bytes ({shard})", "found": f"{size} bytes ({idx.SHARDS})"})
            count, damage = count_members(str(p), storage_options)
            if damage:
                problems.append({"shard": shard, "problem": "unreadable", "expected": f"{members} members",
                                 "found": "; ".join(damage)})
            elif count != members:
                problems.append({"shard": shard, "problem": "member count mismatch", "expected": f"{members} members",
                                 "found": f"{count} members"})
            if not damage and isinstance(rows, dict):
                headers[shard] = p if walked is None else walked  # a local file is compared with the index later
            if deep and not damage:
                problems.extend(_decode_problems(p, shard, labels, storage_options, sizes, crcs, seconds, non_finite))
        finally:  # a shard done, whatever it held
            if bar is not None:
                bar.advance(bar.task_ids[0])
    return problems


#: the key of ``non_finite`` (field names) under which ``--deep`` counts audio levels: no field is named so
AUDIO_LEVELS = "\0audio_levels"


def verify(path: str | Path, *, deep: bool = False, storage_options: dict[str, Any] | None = None,
           progress: bool = True) -> dict[str, Any]:
    """Check a dataset folder's shards.

    Args:
        path: the dataset folder, or an fsspec URL of one (``s3://bucket/ds``: every shard is
            streamed once through sha256 and ``tarfile``'s header walk, once through mmdata's tar
            parser; nothing is written to disk).
        deep: also decode every member of every shard (images, audio, text, labels, arrays).
        storage_options: options of the URL's fsspec filesystem (None: the protocol's defaults).
        progress: with ``deep``, show progress over the shards on stderr (:mod:`mmdata.progress`: a bar on a
            terminal, plain lines elsewhere, none with ``MMDATA_PROGRESS=off``).

    Returns:
        ``{"ok": bool, "checked": n, "problems": [{"shard", "problem", "expected", "found", "key",
        "member"}]}``, with ``deep`` also ``"warnings"`` when float ``.npy`` arrays hold NaN or infinite values: one
        line per field (how many arrays of how many, the first member and index) — no problem, a depth map marks
        missing pixels with NaN on purpose (QA35 review media #3) (``checked``: the distinct shards of ``shards.parquet``; ``key`` / ``member``: the
        sample key and member name a problem is about, None when it is about no one sample; past
        :data:`MAX_MEMBER_PROBLEMS` index / tar-header disagreements of a shard, bad index rows or oversized members,
        one row stands for the rest, its count in ``more``, the only rows with that key); problems
        are a ``shards.parquet`` that is missing or unreadable (nothing else is checked then), missing shards,
        folders, FIFOs or devices in their place (``not a file``: never opened), links to a file outside
        the dataset folder (never read: the readers refuse them), sha256 mismatches, member-count
        mismatches, damaged or truncated tars, tar files on disk that the index does not list,
        ``shards.parquet`` rows repeated or giving a shard no byte size or another than its file's (named
        ``shards.parquet``), card shard lists that are not
        lists, name a path outside the folder, repeat a shard or differ from ``shards.parquet``'s
        shards of the split, split names that cannot name shard files or differ only in case (named
        ``dataset.json``), an ``index.parquet`` that is missing, unreadable (a column of another type,
        far more rows than the card lists samples: not read), repeats a key, lists a
        member that is not ``<key>.<ext>`` of its row's key, or whose rows disagree with
        ``shards.parquet`` (samples and members per shard, shards it does not list) or with the card
        (samples per split) — those name ``index.parquet`` as their ``shard`` — member names and
        sizes the index and a shard's tar headers disagree on, tar member names with an absolute or
        ``..`` path (those name the shard), and, with ``deep``, members that do not decode
        (``expected`` names the member), label members whose value is not the index's ``label``, and
        members whose bytes' CRC-32 is not the index's ``member_crc32`` (naming the key and member; indexes
        written before 2026-12-04 have none). The card (named ``dataset.json``) is checked against the rest
        (:func:`card_index_problems`): its ``fingerprint`` against the shards' sha256 in ``shards.parquet``,
        ``label_names`` against ``num_classes`` and the index's labels (and, for class folders, against the
        folders the samples were sharded from), ``counts.samples`` / ``counts.per_class`` / ``counts.patterns``
        and each modality's ``count`` against the index, and ``source_keys_sha256`` against the index's
        ``source_key`` column; with ``deep``, each audio member's decoded length against the index's
        ``audio_seconds`` (one frame of tolerance). The card's other entries (``license``, ``description``,
        ``label_names``, ``options``, ``augmentation``, ...) are checked against the digests the job recorded
        in ``card_digests`` (:func:`card_digest_problems`: an entry edited, added or removed since is named); a
        card without them (written before 2026-12-06) passes, and the report then says so in
        ``unprotected_card``.

    Raises:
        ShardError: ``path`` does not exist or is not a dataset folder (no card, a shard file), or its card
            is missing, not a regular file or unreadable, or a card key has another type than mmdata
            writes: nothing says what the dataset should hold (the CLI exits 2; problems found exit 1).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> verify(t + "/ds", deep=True)["ok"]
        True
    """
    path = unless_file_url(path)
    tars = bare_shards(path, storage_options)
    if tars is not None:  # WebDataset shards, not a dataset folder: checked as the reader reads them
        return verify_shards(tars, deep=deep, storage_options=storage_options, progress=progress)
    store = _Remote(str(path), storage_options) if is_remote(path) else None
    root = Path(path) if store is None else str(path).rstrip("/")
    if store is None and lookup(root, "dataset") is None:  # a name too long, a link loop: named
        raise ShardError(f"{path}: does not exist (expected a dataset folder written by `mmdata shard`, or WebDataset "
                         f"shards: a .tar / .tar.gz, a brace or glob pattern of them, a folder of them)")
    # the card's shard lists are checked below (reported as problems); the rest of it must be well-formed
    card = idx.load_card(root, storage_options, shard_lists=False)
    try:
        table = idx.load_shards_table(root, storage_options, card=card).to_pydict()
    except ShardError as exc:  # a dataset whose shards table is missing or damaged: a problem found (exit 1)
        missing = str(exc).endswith(f"no {idx.SHARDS}")
        return _report(0, [{"shard": idx.SHARDS, "problem": "missing" if missing else "unreadable",
                            "expected": "one row per shard with its sha256", "found": None if missing else str(exc)}])
    problems: list[dict[str, Any]] = []
    for shard, n in Counter(table["shard"]).items():
        if n > 1:
            problems.append({"shard": idx.SHARDS, "problem": f"lists shard {shard} more than once",
                             "expected": "one row per shard", "found": f"{n} rows"})
    problems.extend(card_problems(root, card, table))
    # a FIFO or a folder there is present (and unreadable, named so), not missing
    present = (root / idx.INDEX).exists() if store is None else idx.INDEX in store.files  # type: ignore[operator]
    rows, labels, sizes, seconds = _load_index(root, present, deep, storage_options, card)
    problems.extend(card_index_problems(card, table, rows))
    digested = card_digest_problems(card)
    problems.extend(digested or [])
    if store is None:
        problems.extend(_hub_card_problems(root, card))
    crcs = _member_crcs(rows) if deep else None
    checked: dict[str, None] = {}
    non_finite: dict[str, list[Any]] = {}  # field -> .npy arrays with NaN / inf, arrays, the first (--deep)
    headers: dict[str, Path | str | tuple[list[tuple[str, int]], str | None]] = {}
    bar = _deep_progress(deep, progress, len(set(table["shard"])))
    try:
        problems.extend(_check_shards(root, store, table, rows, labels, sizes, seconds, crcs, deep, storage_options,
                                      checked, non_finite, headers, bar))
    finally:
        if bar is not None:
            bar.stop()
    on_disk = _tars_on_disk(root) if store is None else iter(store.files)
    for extra in sorted(f for f in on_disk if f.endswith(".tar")):
        if extra not in checked:
            problems.append({"shard": extra, "problem": NOT_LISTED, "expected": None, "found": "file"})
    problems.extend(_index_problems(root, card, table, rows, headers, storage_options))
    problems.extend(oversized_members(rows))
    rep = _report(len(checked), problems)
    levels, decoded = non_finite.pop(AUDIO_LEVELS, (None, 0))
    if any(acc[0] for acc in non_finite.values()):  # warnings, not problems: verify passes
        from mmdata.shards.mediainfo import non_finite_npy_warning

        rep["warnings"] = [redact_text(non_finite_npy_warning(f, acc[0], acc[1], acc[2][0], acc[2][1],
                                                              where="the dataset holds"))
                           for f, acc in sorted(non_finite.items()) if acc[0]]
    from mmdata.shards.mediainfo import audio_level_warnings

    if said := audio_level_warnings(levels, decoded):
        rep["warnings"] = [*rep.get("warnings", []), *map(redact_text, said)]
    if digested is None:  # an older card: its entries could only be checked against the index
        rep["unprotected_card"] = unprotected_note(card)
    return rep


def bare_shards(path: str | Path, storage_options: dict[str, Any] | None = None) -> list[str] | None:
    """The tars when the local ``path`` names WebDataset shards — a ``.tar`` / ``.tar.gz``, a brace or glob pattern
    of them, a folder of tars without a card, index, shards table or journal, a URL of a tar or a pattern of
    them — else None (a dataset folder, another URL, or nothing).

    Raises:
        ShardError: a pattern naming shards that do not exist, or a glob matching none.

    Example:
        >>> bare_shards("no/such/folder") is None
        True
    """
    from mmdata.errors import SourceError
    from mmdata.shards.sources import SHARD_SUFFIXES, shard_files
    from mmdata.shards.tario import braceexpand

    if not isinstance(path, (str, Path)):
        return None
    if is_remote(path):  # QA26: a URL's brace pattern of tars is shards too (it was read as a dataset folder)
        if not all(i.rstrip("/").lower().endswith(SHARD_SUFFIXES) for i in braceexpand(str(path))):
            return None
    elif os.path.isdir(path) and idx.dataset_marks(path):
        return None
    try:
        return shard_files(path, storage_options)
    except SourceError as exc:
        raise ShardError(str(exc).removeprefix("source ")) from None


def verify_shards(tars: list[str], *, deep: bool = False,
                  storage_options: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Check WebDataset shards that have no index (``mmdata verify PATTERN``): each tar read through as
    :func:`mmdata.open_dataset` reads it (``decode=False``: tar structure and headers, member names, keys
    whose members are not adjacent, members over the size limit; ``deep``: also every member decoded, a
    ``.cls`` read as a class id), and keys found in two shards. Each problem names the shard, the sample key
    where known and the reader's message. The report is :func:`verify`'s, with ``bare: True`` and
    ``samples`` (the samples read whole).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> rep = verify_shards([t + "/ds/train-000000.tar"], deep=True)
        >>> rep["ok"], rep["samples"], rep["bare"]
        (True, 4, True)
    """
    problems: list[dict[str, Any]] = []
    first: dict[str, str] = {}  # key -> the shard it was first read in
    samples = 0
    bar = _deep_progress(deep, progress, len(tars))
    try:
        samples = _read_shards(tars, deep, storage_options, problems, first, bar)
    finally:
        if bar is not None:
            bar.stop()
    return {**_report(len(tars), problems), "bare": True, "samples": samples}


def _read_shards(tars: list[str], deep: bool, storage_options: dict[str, Any] | None,
                 problems: list[dict[str, Any]], first: dict[str, str], bar: Any) -> int:
    """:func:`verify_shards`'s loop: each tar read through (problems appended), ``bar`` advanced a tar at a time;
    returns the samples read."""
    from mmdata.shards.reader import open_dataset
    from mmdata.shards.sources import shard_split

    samples = 0
    for tar in tars:
        ds = open_dataset(tar, split=shard_split(tar) or "train", decode=deep, on_error="skip",
                          storage_options=storage_options)
        n = 0
        for sample in ds:
            n += 1
            if sample.key in first:
                problems.append({"shard": tar, "key": sample.key,
                                 "problem": f"sample {sample.key!r} is also in shard {first[sample.key]} (a reader "
                                            f"of both yields it twice)",
                                 "expected": "each key in one shard", "found": None})
            else:
                first[sample.key] = tar
        samples += n
        for shard, key, message in ds.errors:
            problems.append({"shard": shard, "key": key or None, "problem": message, "expected": None, "found": None})
        if not n and not ds.errors:
            problems.append({"shard": tar, "problem": "holds no sample", "expected": "at least one sample",
                             "found": None})
        if bar is not None:
            bar.advance(bar.task_ids[0])
    return samples


def _hub_card_problems(root: Path, card: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """A ``README.md`` that :func:`mmdata.interop.hf.write_hub_card` wrote (it carries
    :data:`~mmdata.interop.hf.HUB_CARD_MARK`) must be the card the dataset gives now, with the options it was
    written with (``extra``, ``split_names``: recorded in the card) and in its format (a card written before the
    options were recorded is compared with the card of that format): one written before a reshard names another
    licence, other splits or shard files (the Hub would show and load those); one edited by hand is named too
    (give the fields to ``write_hub_card(extra=...)``). A README.md of one's own (no mark) is not looked at."""
    from mmdata.interop.hf import (HUB_CARD_MARK, _card_options, _hub_license_v1, hub_card, hub_license,
                                   recorded_language_remedy)

    readme = root / "README.md"
    if isinstance(card, Mapping) and card.get("layout", "samples") != "samples":
        return []  # a layout the Hub card does not take (hub_card refuses it): no card to compare with
    try:
        if not readme.is_file():
            return []
        if readme.stat().st_size > (1 << 22):  # not compared, but not passed over in silence when it is ours
            with open(readme, "rb") as f:
                head = f.read(1 << 20).decode("utf-8", errors="replace")
            return [] if HUB_CARD_MARK not in head else [
                {"shard": "README.md", "problem": "the Hugging Face card write_hub_card wrote is over 4 MiB: not "
                 "compared with the dataset; write it again with mmdata.interop.hf.write_hub_card (shorter extra= "
                 "values)", "expected": None, "found": None, "key": None}]
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if HUB_CARD_MARK not in text:
        return []
    opts = _card_options(text)
    fmt = opts.get("format") if opts is not None else 1
    try:
        if opts is None:
            now = hub_card(root, _format=1)
        else:
            now = hub_card(root, extra=opts.get("extra") or None, split_names=opts.get("split_names") or None,
                           decode_audio=opts.get("decode_audio") is not False,
                           _format=fmt if isinstance(fmt, int) and not isinstance(fmt, bool) else 2)
    except ShardError as e:  # the options it records no longer fit the dataset (a split renamed away)
        recorded = (opts or {}).get("extra")
        # a language code refused only since it was recorded (jp, iw, xx): a plain rewrite reuses it, so name the call
        fix = (recorded_language_remedy(root, recorded.get("language"))
               if isinstance(recorded, Mapping) and recorded.get("language") is not None else None)
        return [{"shard": "README.md", "problem": f"the Hugging Face card write_hub_card wrote cannot be made again "
                 f"for the dataset as it is now: {e}; "
                 + (fix if fix is not None else "write it again with mmdata.interop.hf.write_hub_card once the "
                    "dataset can take it (it drops the recorded split_names of splits the dataset has no more; a "
                    ".npy field it refuses must be re-saved first, as said above), or delete README.md if the "
                    "dataset is no longer published with it"), "expected": None, "found": None,
                 "key": None}]
    except (MMDataError, OSError, ValueError):  # damage named above
        return []
    if now == text:
        return []
    old, new = text.splitlines(), now.splitlines()
    first = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    lic = (card or {}).get("license") if isinstance(card, Mapping) else None
    was, is_now = _hub_license_v1(lic), hub_license(lic)
    rest = _without_licence(old, was) if was != is_now else None
    if rest is not None and rest == _without_licence(new, is_now):
        # only the licence lines differ, as mmdata wrote them before it mapped this spelling to the Hub's id
        return [{"shard": "README.md", "problem": f"the Hugging Face card write_hub_card wrote names the licence "
                 f"as mmdata mapped it before ({_licence_text(was)}); mmdata now maps {lic!r} to the Hub's "
                 f"{_licence_text(is_now)}: write the card again with mmdata.interop.hf.write_hub_card (the "
                 "dataset did not change)", "expected": new[first][:200] if first < len(new) else None,
                 "found": old[first][:200] if first < len(old) else None, "key": None}]
    return [{"shard": "README.md", "problem": "the Hugging Face card write_hub_card wrote was edited by hand or is "
             "stale (the dataset changed since): write it again with mmdata.interop.hf.write_hub_card (give fields "
             "of your own as extra={...}: they are kept)",
             "expected": new[first][:200] if first < len(new) else "(end of the card)",
             "found": old[first][:200] if first < len(old) else "(end of the file)", "key": None}]


def _without_licence(lines: list[str], licence: Mapping[str, str]) -> list[str] | None:
    """A card's lines without the front matter's licence lines, or None when those are not ``licence``'s."""
    end = lines.index("---", 1) if lines[:1] == ["---"] and "---" in lines[1:] else 0
    mine = [ln for ln in lines[1:end] if ln.split(":", 1)[0] in ("license", "license_name", "license_link")]
    import yaml

    try:
        if (yaml.safe_load("\n".join(mine)) or {}) != dict(licence):
            return None
    except yaml.YAMLError:
        return None
    return [ln for i, ln in enumerate(lines) if not (0 < i < end and ln in mine)]


def _licence_text(licence: Mapping[str, str]) -> str:
    return licence.get("license", "none") + (f" ({licence['license_name']})" if licence.get("license_name") else "")


def _report(checked: int, problems: list[dict[str, Any]]) -> dict[str, Any]:
    """verify's report; every problem has ``key`` and ``member`` (None where it is about no one sample).
    Every string in it is redacted (:func:`~mmdata.urls.redact_text`): the readers' damage strings name the
    shard by the URL it was read from, which may carry a password or a signature (QA round 22: ``mmdata
    verify http://alice:PW@host/ds`` printed the password, in text and ``--json``)."""
    for p in problems:
        p.setdefault("key", None)
        p.setdefault("member", None)
        for k, v in p.items():
            if isinstance(v, str):
                p[k] = redact_text(v)
    return {"ok": not problems, "checked": checked, "problems": problems}


def oversized_members(rows: dict[str, list[Any]] | str | None, limit: int | None = None) -> list[dict[str, Any]]:
    """Problems for members larger than the readers read (``limit``, default
    :data:`mmdata.shards.tario.DEFAULT_MAX_MEMBER_BYTES`, the readers' ``max_member_bytes``), from the
    index's sizes (checked against the tar headers): such a sample passes every other check and the
    reader refuses it. :data:`MAX_MEMBER_PROBLEMS` of them, then a count of the rest.

    Example:
        >>> rows = {"key": ["a"], "shard": ["train-000000.tar"], "members": [["a.wav"]], "sizes": [[2 << 30]]}
        >>> oversized_members(rows)[0]["found"]
        '2147483648 bytes'
    """
    from mmdata.shards import tario

    if not isinstance(rows, dict):
        return []
    limit = tario.DEFAULT_MAX_MEMBER_BYTES if limit is None else limit
    out = [{"shard": shard, "problem": f"member {name!r} of key {key!r} is larger than the readers read; the "
            "reader refuses the sample (re-encode it smaller: FLAC / 16-bit audio, a shorter clip, a smaller image)",
            "expected": f"at most {limit} bytes (the readers' max_member_bytes)", "found": f"{size} bytes",
            "key": key, "member": name}
           for key, shard, names, sizes in zip(rows["key"], rows["shard"], rows["members"], rows["sizes"])
           for name, size in zip(names or [], sizes or []) if isinstance(size, int) and size > limit]
    if len(out) > MAX_MEMBER_PROBLEMS:
        out = out[:MAX_MEMBER_PROBLEMS] + [{"shard": idx.INDEX, "problem": f"{len(out) - MAX_MEMBER_PROBLEMS} more "
                                            "members larger than the readers read", "expected": None, "found": None,
                                            "more": len(out) - MAX_MEMBER_PROBLEMS}]
    return out
