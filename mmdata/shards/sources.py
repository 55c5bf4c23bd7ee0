"""Discover samples in raw data: a folder of files sharing stems, class folders, or a manifest.

A *record* is one sample to write: a safe key, the original stem (``source_key``), its members
(extension -> file path or inline bytes), an optional label and an optional fixed split.

Stems may contain dots, spaces and non-ASCII characters. The extension of a file is the longest
*known* suffix (``png``, ``flac``, ``txt``, ``cls``, ``<field>.npy``, ``json``...), so
``café 1.v2 #1.png`` and ``café 1.v2 #1.flac`` form ONE sample with stem ``café 1.v2 #1``. A ``<digits>.npy``
suffix after a number is no field (field names start with a letter): ``frame_1701234567.990.npy`` (a ROS
timestamp) is the bare ``.npy`` member of sample ``frame_1701234567.990`` when that sample has other files or the
folder holds only such arrays for the stem (several are then said: one sample each), else it stays field ``990``
with a warning; after a word (``scan_a.0.npy``) the digits are a field, said too. In a named field's folder
(``--column imu=imu``) every file is that field, so ``imu/<stem>.npy`` is ``<stem>``'s ``imu.npy`` whatever dots
the stem holds, and a file named for the field (``depth/<stem>.depth.png``, ``imu/<stem>.IMU.npy``) is ``<stem>``'s
too. Keys in
shards must not contain dots or ``/`` (WebDataset splits the basename at the first dot), so a stem
that is not ``[A-Za-z0-9_-]+`` is mapped to ``<sanitised>_<8 hex of sha1(stem)>``; the original is
kept in ``index.parquet:source_key`` (file names that are not UTF-8 keep their odd bytes as ``\\xff``
escapes there; the key's hash comes from the name's bytes, so a byte 0xff and a literal ``\\xff`` give
two keys). Files are grouped by the NFC form of their stem (``café`` in NFC and in NFD is one sample).
Folders named ``.*`` or ``__*`` (``.git``, ``__MACOSX``) are not walked and macOS ``._*`` files are not
samples: both are listed.

What cannot be sharded is reported, never dropped silently: every file, member, sample or folder
left out is one entry of ``skipped`` (``{"source", "sample", "what", "reason"}``, ``what`` one of
``sample`` / ``member`` / ``file`` / ``folder``). Bad data (a label file that is not a class id, two
images for one stem, a broken link) raises a :class:`SourceError` naming the file instead when
``on_error="raise"``; files that are not data (``notes.zip``, a FIFO) are listed either way.

Class names: ``label_names`` (``--labels names.txt``), else a ``labels.json`` (``{"names": [...]}`` or
a list) or ``labels.txt`` (one name per line) at the source root — a class-names file, not a
sample — else the class folders' names. Label files then hold a class id or a class name; an id
outside the declared classes is bad data like any other.
"""

from __future__ import annotations

import codecs
import errno
import functools
import gzip
import hashlib
import io
import json
import math
import os
import posixpath
import re
import shlex
import stat
import sys
import unicodedata
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from mmdata.checks import plural
from mmdata.codecs import (AUDIO_EXTS, IMAGE_EXTS, LABEL_EXTS, MAX_LABEL, STANDARD_FIELD_EXTS, TEXT_EXTS, field_of,
                           encode_text, member_type, standard_field_error, unsupported_reason)
from mmdata.errors import SourceError
from mmdata.io import host_limit
from mmdata.shards.pointers import DVC_POINTER, LFS_POINTER, dvc_reason, is_lfs_pointer

KNOWN_EXTS = frozenset((*IMAGE_EXTS, *AUDIO_EXTS, *TEXT_EXTS, *LABEL_EXTS, "json", "npy"))
#: JPEG files under other extensions (Windows saves web images as ``.jfif``), stored as ``.jpg`` members: the
#: bytes are the same, and webdataset's decoders and a hub card's features then see one ``jpg`` column, not a
#: ``jfif`` one beside it (QA27 H1-D6). ``.jpeg`` is kept: both readers know it
JPEG_ALIASES = {"jfif": "jpg", "jpe": "jpg", "jif": "jpg"}
#: extensions that need no special rule in discovery (``npy`` fields, ``jpeg``/``jpg`` and the JPEG aliases do)
_PLAIN_EXTS = KNOWN_EXTS - {"npy", "jpeg", *JPEG_ALIASES}
_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_-]+")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
RESERVED_COLUMNS = ("key", "text", "label", "split")
#: class-names files recognised at the root of a source folder
NAMES_FILES = ("labels.json", "labels.txt")
#: the files that make a folder an mmdata dataset (an earlier ``mmdata shard`` output): never raw data
DATASET_FILES = ("dataset.json", "index.parquet")
EARLIER_OUTPUT = "an mmdata dataset folder (an earlier output: dataset.json + index.parquet)"
OUTPUT_OF_THIS_JOB = "the output folder of this job"
#: folders never walked and never classes (as Hugging Face's imagefolder): ``.git``, ``.cache``, ``__MACOSX``
HIDDEN_FOLDER = ("a hidden or system folder (its name starts with '.' or '__', e.g. .git, __MACOSX): not walked, "
                 "not a class")
#: ``._x.png`` beside (or in ``__MACOSX/`` for) ``x.png``: the resource fork macOS writes on other disks and in zips
#: folders Windows keeps at the top of a drive (recycle bin, index, upgrade leftovers, chkdsk's recovered files):
#: a dataset copied off a USB stick or a drive root carries them; any depth, any case
WINDOWS_FOLDERS = frozenset(("$recycle.bin", "recycler", "recycled", "system volume information", "$windows.~bt",
                             "$windows.~ws", "found.000"))
WINDOWS_FOLDER = ("a Windows system folder (e.g. $RECYCLE.BIN, System Volume Information, found.000): not walked, "
                  "not a class")
APPLEDOUBLE = "a macOS metadata file (AppleDouble '._' file, written when copying to other disks or zips): not data"
#: files the operating system writes beside a user's files (lower-case names): listed as not data, as ``._`` files are
OS_METADATA = {".ds_store": "a macOS metadata file (.DS_Store: the Finder's view settings of the folder): not data",
               "thumbs.db": "a Windows metadata file (Thumbs.db: Explorer's thumbnail cache): not data",
               "ehthumbs.db": "a Windows metadata file (ehthumbs.db: Media Center's thumbnail cache): not data",
               "ehthumbs_vista.db": "a Windows metadata file (ehthumbs_vista.db: a thumbnail cache): not data",
               "desktop.ini": "a Windows metadata file (desktop.ini: Explorer's settings of the folder): not data"}
ON_ERROR = ("skip", "raise")


@dataclass(slots=True)
class Record:
    """One sample to shard: members map an extension to a file path or to inline bytes."""

    key: str
    source_key: str
    members: dict[str, str | Path | bytes] = field(default_factory=dict)
    label: int | None = None
    split: str | None = None
    #: (size, change stamp) per file member, stat'ed on demand when shards are cut by ``maxsize``
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: extra string columns for the index (e.g. ``aug_params`` written by ``mmdata augment``)
    extra: dict[str, str] = field(default_factory=dict)
    #: samples of one group go to one split (a manifest's ``--group-by`` column: an image's caption rows,
    #: a speaker's clips); ``None``: a group of its own (:func:`mmdata.shards.writer.assign_splits`)
    group: str | None = None
    #: where the sample comes from in its manifest (``"bad.csv row 6"``, rows counted from 1 below the header), for
    #: the reports of what its task finds (a segment that cannot be cut); not an index column
    row: str | None = field(default=None, compare=False)


#: a record's ``extra`` entry saying why it has no member (``mmdata augment --on-error skip``: the recipe refused
#: it); the writer reports such a record as a skipped sample
SKIP_REASON = "skip_reason"


@dataclass
class Discovered:
    """What discovery found: records sorted by key, class names, and what it left out."""

    records: list[Record]
    label_names: list[str] | None = None
    #: where the names came from: ``--labels``, ``labels.json`` / ``labels.txt``, ``folders``, ``manifest``
    label_names_from: str | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the folder file paths are reported relative to
    root: str | None = None
    #: where the records' file paths are, when not on this machine: a
    #: :class:`mmdata.shards.remote_source.RemoteSource` (the writer's tasks fetch members from it)
    source: Any = None
    #: a manifest's metadata columns (``--meta``, resolved), whose values fill each ``.json`` member
    meta_columns: tuple[str, ...] = ()
    #: the kind of each metadata column's values (:func:`common_kind`): how tabular exports type it
    meta_kinds: dict[str, str] = field(default_factory=dict)
    #: whether two records may name one file (a manifest's rows may; a folder's samples never do): the
    #: split then keeps such records together (:func:`mmdata.shards.writer.split_groups`)
    shared_files: bool = False
    #: what to do when nothing is found, naming folders on this machine (not in the card, which names none):
    #: the folder that holds a manifest's missing files, with ``--root``
    hint: str | None = None
    #: a folder's top folders named for splits (``train/``, ``TEST/``, ``Validation/``) -> the split each gives
    #: (:func:`split_word`): its samples have their split, so ``--split`` fractions are refused
    #: (:func:`check_split_folders`)
    split_folders: dict[str, str] = field(default_factory=dict)


def skip_entry(source: str, what: str, reason: str, sample: str | None = None) -> dict[str, Any]:
    """One entry of a report's ``skipped`` list (``what``: sample, member, file or folder)."""
    return {"source": source, "sample": sample, "what": what, "reason": reason}


def printable(name: str) -> str:
    """``name`` as valid UTF-8: bytes of a non-UTF-8 file name (surrogate escapes) become ``\\xff``.

    Example:
        >>> printable("café"), printable("bad-\\udcff")
        ('café', 'bad-\\\\xff')
    """
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def names_apart(a: str, b: str) -> tuple[str, str, bool]:
    """Two file names as messages show them, told apart when they print alike: a non-UTF-8 byte
    (``\\xff`` in :func:`printable`) beside a name holding a literal ``\\xff``, or one name in two
    Unicode forms (NFC / NFD) — then each with its bytes. The bool: they print alike.

    Example:
        >>> names_apart("x.png", "y.png")
        ("'x.png'", "'y.png'", False)
        >>> names_apart("caf\\u00e9.png", "cafe\\u0301.png")[2]
        True
    """
    pa, pb = printable(a), printable(b)
    if unicodedata.normalize("NFC", pa) != unicodedata.normalize("NFC", pb):
        return repr(pa), repr(pb), False
    return (f"{pa!r} (bytes {a.encode('utf-8', 'surrogateescape')!r})",
            f"{pb!r} (bytes {b.encode('utf-8', 'surrogateescape')!r})", True)


def safe_key(stem: str) -> str:
    """Map a source stem to a shard-safe key (unchanged when already safe).

    Example:
        >>> safe_key("0001"), safe_key("café 1.v2")
        ('0001', 'caf_1_v2_f8e6e2ed')
    """
    if _SAFE.match(stem):
        return stem
    base = _UNSAFE_CHAR.sub("_", stem).strip("_") or "k"
    return f"{base}_{hashlib.sha1(stem.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def split_name(filename: str) -> tuple[str, str] | None:
    """Split a filename into (stem, extension) using the longest known suffix; None if unknown. The extension
    is the member's: lower case, and ``jpg`` for the JPEG aliases (:data:`JPEG_ALIASES`).

    Example:
        >>> split_name("café 1.v2 #1.png"), split_name("0001.depth.npy"), split_name("x.zip")
        (('café 1.v2 #1', 'png'), ('0001', 'depth.npy'), None)
        >>> split_name("photo.JFIF")
        ('photo', 'jpg')
    """
    dot = filename.rfind(".")
    if dot <= 0:
        return None
    stem, ext = filename[:dot], filename[dot + 1:]
    if ext not in KNOWN_EXTS:
        ext = ext.lower()
        if ext not in KNOWN_EXTS:
            return None
    if ext == "npy" and "." in stem:
        stem, fieldname = stem.rsplit(".", 1)
        if not stem:
            return None
        return stem, f"{fieldname}.npy"
    return stem, JPEG_ALIASES.get(ext, ext)


# ---- reading files --------------------------------------------------------------------------------

# O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused after fstat)
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0)
_SMALL_FILE = 1 << 16
#: ``read_many`` item for a file left unread because the files before it filled ``max_total``
UNREAD = 0


_STAMP_MUL = 0x9E3779B97F4A7C15
_U64 = (1 << 64) - 1


def file_stamp(st: os.stat_result) -> int:
    """A file's change stamp for the resume check: its mtime and ctime (ns) mixed into one int64.

    The mtime alone misses an edit that restores it (``touch -r``, ``cp -p``, ``rsync -t``, a tar
    extract); the ctime moves with every change of the file's content or metadata and cannot be set
    by users (git's index checks it too). The C reader (``_pack.read_files``) computes the same value.
    """
    u = (st.st_mtime_ns & _U64) ^ ((st.st_ctime_ns * _STAMP_MUL) & _U64)
    return u - (1 << 64) if u >> 63 else u


def read_source(path: str | Path) -> tuple[bytes, int]:
    """(bytes, change stamp) of a source file: open, fstat, one exact-size read, close.

    ~2.9 us per small file against ~4.7 us for ``open(path, "rb").read()`` — the per-file cost is
    what sharding many small files is made of.
    """
    fd = os.open(path, _O_READ)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL, "not a regular file", str(path))
        data = _read_to_eof(fd, st.st_size)
        assert data is not None  # no limit given
        return data, file_stamp(st)
    finally:
        os.close(fd)


def _read_to_eof(fd: int, size: int, max_size: int | None = None) -> bytes | None:
    """The file's bytes to EOF; None once more than ``max_size`` bytes turn up (a file that grew past
    the limit after its fstat, or a /proc-like file whose fstat says 0: the limit bounds memory)."""
    data = os.read(fd, size + 1)  # one call; getting `size` bytes back means EOF
    if len(data) != size:  # a short read (> 2 GiB) or the file changed since fstat
        rest, got = [data], len(data)
        while (max_size is None or got <= max_size) and (chunk := os.read(fd, 1 << 24)):
            rest.append(chunk)
            got += len(chunk)
        if max_size is not None and got > max_size:
            return None
        data = b"".join(rest)
    return data


def read_many(paths: list[Any], max_size: int | None = None,
              max_total: int | None = None) -> tuple[list[bytes | int], array]:
    """Read many source files; one C call when ``mmdata.shards._pack`` is built.

    Returns:
        (items, meta): ``items[i]`` is the bytes of ``paths[i]``, or an int — an errno when it
        cannot be read (``EFBIG``: larger than ``max_size``; ``EINVAL``: not a regular file), or
        :data:`UNREAD` when the files read before it already hold ``max_total`` bytes (files under
        64 KiB are always read; the first larger one too). ``meta`` is an ``array("q")`` of
        (size, :func:`file_stamp`) per path — or (-1, errno) when the file could not be opened.
    """
    from mmdata.shards.tarwrite import _pack

    if _pack is not None:
        items, raw = _pack.read_files(paths, -1 if max_size is None else max_size,
                                      -1 if max_total is None else max_total)
        meta = array("q")
        meta.frombytes(raw)
        return items, meta
    # the same two passes as the C code: small files first, then large ones up to max_total
    items: list[Any] = [None] * len(paths)
    meta = array("q", bytes(16 * len(paths)))
    large: list[int] = []
    for i, p in enumerate(paths):
        got = _read_checked(p, max_size, small_only=True)
        if got[0] is None:
            large.append(i)
            meta[2 * i], meta[2 * i + 1] = got[1], got[2]
        else:
            items[i], meta[2 * i], meta[2 * i + 1] = got
    total = sum(len(x) for x in items if x.__class__ is bytes)
    read_one = deferring = False
    for i in large:
        if not deferring and max_total is not None and read_one and total + meta[2 * i] > max_total:
            deferring = True
        if deferring:
            items[i] = UNREAD
            continue
        items[i], meta[2 * i], meta[2 * i + 1] = _read_checked(paths[i], max_size, small_only=False)
        if items[i].__class__ is bytes:
            total += len(items[i])
            read_one = True
    return items, meta


def _read_checked(path: Any, max_size: int | None, small_only: bool) -> tuple[Any, int, int]:
    """(bytes or errno, size, stamp) of one file with read_many's rules; (None, size, stamp) when
    ``small_only`` and the file is large (or grew past its fstat size)."""
    try:
        fd = os.open(path, _O_READ)
    except OSError as exc:
        return exc.errno or errno.EIO, -1, exc.errno or errno.EIO
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode) or not stat.S_ISREG(st.st_mode):
            code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            return code, -1, code
        if max_size is not None and st.st_size > max_size:
            return errno.EFBIG, st.st_size, file_stamp(st)
        if small_only:
            if st.st_size >= _SMALL_FILE:
                return None, st.st_size, file_stamp(st)
            data = os.read(fd, st.st_size + 1)
            while len(data) < st.st_size + 1 and (chunk := os.read(fd, st.st_size + 1 - len(data))):
                data += chunk
            if len(data) > st.st_size:  # grew since fstat: the second pass reads it whole
                return None, st.st_size, file_stamp(st)
        else:
            data = _read_to_eof(fd, st.st_size, max_size)
            if data is None:  # grew past the limit while being read
                return errno.EFBIG, max_size + 1, file_stamp(st)  # type: ignore[operator]
        return data, len(data), file_stamp(st)
    except OSError as exc:
        return exc.errno or errno.EIO, -1, exc.errno or errno.EIO
    finally:
        os.close(fd)


def _stop_at_host_limit(exc: OSError, path: str) -> None:
    """A SourceError when ``exc`` is a limit of this machine (too many open files, no memory:
    :data:`mmdata.io.HOST_LIMITS`): the files are fine, and leaving them out would lose data silently."""
    limit = host_limit(exc.errno)
    if limit is not None:
        raise SourceError(f"{printable(path)}: cannot read it: {limit}; then rerun the same command") from None


def read_error(code: int, size: int, max_size: int | None) -> str:
    """The reason a file could not be read, from :func:`read_many`'s errno (and size)."""
    if code == errno.EFBIG:
        return (f"file of {size / 1e9:.1f} GB ({size} bytes) is larger than --max-file-size "
                f"({max_size} bytes); raise the limit to shard it")
    if code == errno.EINVAL:
        return "cannot read: not a regular file"
    return f"cannot read: {os.strerror(code)}"


# ---- class names and labels -----------------------------------------------------------------------


def read_label_names(path: str | Path) -> list[str]:
    """Class names from a file: JSON (``{"names": [...]}`` or ``[...]``) or text, one name per line.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "labels.txt")
        >>> _ = open(p, "w").write("cat\\ndog\\n")
        >>> read_label_names(p)
        ['cat', 'dog']
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SourceError(f"class names file {p}: cannot read ({exc})") from None
    return parse_label_names(data, str(p))


def parse_label_names(data: bytes, where: str) -> list[str]:
    """Class names from the bytes of a class-names file ``where`` (its name decides JSON or text);
    see :func:`read_label_names`.

    Example:
        >>> parse_label_names(b'{"names": ["cat", "dog"]}', "labels.json")
        ['cat', 'dog']
    """
    if is_lfs_pointer(data):  # its three lines would be three class names
        raise SourceError(f"class names file {where}: {LFS_POINTER}")
    try:
        text = data.decode("utf-8-sig")  # a leading BOM would become part of the first class name
    except UnicodeDecodeError as exc:
        if utf16_of(data)[0]:
            raise SourceError(f"class names file {where}: {not_utf8_reason(data, exc, 'the file')}") from None
        raise SourceError(f"class names file {where}: cannot read ({exc})") from None
    if where.lower().endswith(".json"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise SourceError(f"class names file {where}: invalid JSON ({exc})") from None
        except RecursionError:  # [[[[...]]]] 10^5 deep: json's parser recurses
            raise SourceError(f"class names file {where}: nested too deeply; expected "
                              '{"names": ["cat", "dog", ...]} or a list of strings') from None
        names = obj.get("names") if isinstance(obj, dict) else obj
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SourceError(f'class names file {where}: expected {{"names": ["cat", "dog", ...]}} or a list of strings')
        return check_label_names(names, f"class names file {where}")
    # lines as an editor shows them: "\r\r\n" (CRLF written through a text-mode file on Windows) or a form
    # feed at a line's end is one line end, not a blank line between (review of QA30); CR alone: classic Mac
    lines = [line.strip() for line in (text if "\n" in text else text.replace("\r", "\n")).split("\n")]
    while lines and not lines[-1]:  # blank lines at the end shift no id: an editor's extra newline
        lines.pop()
    blank = next((i for i, n in enumerate(lines) if not n), None)
    if blank is not None:
        raise SourceError(f"class names file {where}: line {blank + 1} is blank; expected one class name per "
                          f"line (a class's id is its line's position: line 1 is id 0), so a blank line would "
                          f"shift every later id: to leave id {blank} unused, give it a placeholder name on "
                          f"that line (e.g. unused_{blank}); mmdata before 2026-12-06 dropped the line, so to keep "
                          "the ids of a dataset sharded then (and of models trained on it), delete it instead")
    return check_label_names(lines, f"class names file {where}", [f"line {i + 1} (class id {i})" for i in range(len(lines))])


def check_label_names(names: Sequence[Any], where: str, places: Sequence[str] | None = None) -> list[str]:
    """``names`` as a list of class names, or SourceError naming the entry (``places``: how to name entry i;
    default ``entry i (class id i)``) and what is expected: a string, not empty or blank (a class without a
    name; ids are positions, so a gap is given a placeholder name), each name once as labels are matched
    (stripped, NFC-normalised: :func:`parse_label`). ``where`` begins each message: the file, or
    ``label_names=``.

    Example:
        >>> check_label_names(("cat", "dog"), "label_names=")
        ['cat', 'dog']
        >>> check_label_names(["cat", " "], "label_names=")
        Traceback (most recent call last):
        ...
        mmdata.errors.SourceError: label_names=: entry 1 (class id 1) is blank; expected a class name for every id (ids are the list's positions), so a class without a name would be nameless in every report: to leave id 1 unused, give it a placeholder name (e.g. "unused_1")
    """
    names = list(names)
    places = list(places) if places is not None else [f"entry {i} (class id {i})" for i in range(len(names))]
    if not names:
        raise SourceError(f"{where}: no class names")
    odd = next((i for i, n in enumerate(names) if not isinstance(n, str)), None)
    if odd is not None:
        raise SourceError(f"{where}: {places[odd]} is {type(names[odd]).__name__} {names[odd]!r}; expected class names "
                          f"as strings")
    blank = next((i for i, n in enumerate(names) if not n.strip()), None)
    if blank is not None:
        raise SourceError(f"{where}: {places[blank]} is {'empty' if not names[blank] else 'blank'}; expected a class "
                          f"name for every id (ids are the list's positions), so a class without a name would be "
                          f"nameless in every report: to leave id {blank} unused, give it a placeholder name (e.g. "
                          f"\"unused_{blank}\")")
    # labels are matched stripped and NFC-normalised (parse_label): two names equal so would be one class
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        first = seen.setdefault(_nfc(n.strip()), i)
        if first != i:
            how = (f"repeats {places[first]} ({printable(n)!r})" if names[first] == n else
                   f"({printable(n)!r}) is {places[first]} ({printable(names[first])!r}) once spaces at the ends and "
                   f"Unicode normalisation (NFC) are set aside, as labels are matched")
            raise SourceError(f"{where}: {places[i]} {how}; expected each class name once: a label naming it could "
                              f"mean either id")
    return names


_UTF16_BOMS = {b"\xff\xfe": "UTF-16 LE", b"\xfe\xff": "UTF-16 BE"}
_UTF16_FIX = ("is UTF-16 ({kind}{mark}), not UTF-8: save {what} as UTF-8 (Excel: \"CSV UTF-8\"; its \"Unicode "
              "text\" export and Notepad's \"Unicode\" are UTF-16)")


def utf16_of(data: bytes) -> tuple[str | None, bool]:
    """(``"UTF-16 LE"`` / ``"UTF-16 BE"`` when ``data`` looks UTF-16, else None; whether it starts with a
    byte order mark). Without one, text whose every other byte is NUL (ASCII in UTF-16) looks UTF-16:
    UTF-8 text holds no NUL; so does text of one alphabet (Cyrillic, Greek, Hebrew, Arabic, the Indic scripts,
    Thai, kana...) whose every other byte is its block's constant high byte (``06`` Arabic, ``09`` Devanagari,
    ``30`` kana), with NUL for its spaces (QA28 i18n #1: Arabic, Hindi and Japanese in UTF-16 LE are valid UTF-8,
    and were stored as ``'C\x06D\x06...'``). A UTF-32 mark (``FF FE 00 00``) is not UTF-16.

    Example:
        >>> utf16_of("a,b".encode("utf-16")), utf16_of("a,b".encode("utf-16-be")), utf16_of(b"a,b")
        (('UTF-16 LE', True), ('UTF-16 BE', False), (None, False))
        >>> utf16_of("كلب يجري".encode("utf-16-le")), utf16_of("ねこが います".encode("utf-16-be"))
        (('UTF-16 LE', False), ('UTF-16 BE', False))
    """
    kind = _UTF16_BOMS.get(data[:2])
    if kind is not None and data[:4] != b"\xff\xfe\x00\x00":
        return kind, True
    head = data[:4096]
    n = len(head) // 2
    odd, even = head[1::2].count(0), head[0::2].count(0)  # NULs after / before each ASCII character
    if n >= 2 and max(odd, even) * 2 >= n and min(odd, even) * 8 <= max(odd, even):
        return ("UTF-16 LE" if odd > even else "UTF-16 BE"), False
    return _utf16_alphabet(data, head), False


#: the high bytes of the alphabets :func:`utf16_of` knows without a byte order mark: 01-31 (Latin Extended to
#: Bopomofo: Cyrillic 04, Hebrew 05, Arabic 06, Devanagari 09, Thai 0E, kana 30). Not Han or Hangul: a block of
#: 256 is a small part of them, and ASCII pairs read as UTF-16 are Han ('ha' is U+6168)
_ALPHABET_HIGH = range(0x01, 0x32)


#: bytes printable ASCII text (with TAB, LF, CR) does not hold
_NOT_ASCII_TEXT = re.compile(rb"[^\t\n\r\x20-\x7e]")


def _utf16_alphabet(data: bytes, head: bytes) -> str | None:
    """``"UTF-16 LE"`` / ``"UTF-16 BE"`` when ``head`` (of ``data``) reads as UTF-16 text of one alphabet: at least
    three letters, 90% of the high bytes that alphabet's (or NUL: spaces, digits), every character a letter, mark,
    number, punctuation, symbol or space (no control, unassigned, private-use or lone surrogate); and a byte ASCII
    text cannot hold: printable ASCII (with TAB / line breaks) is never UTF-16 here, since its every other byte may
    be ``0``, ``1``, ``,``, ``-`` (high bytes 30, 31, 2C, 2D: ``a0b0c0d0`` reads as kana; review of QA28). The
    evidence is a high byte below 20 (Cyrillic 04, Hebrew 05, Arabic 06, Devanagari 09, Thai 0E), or a NUL (a
    space), another control or a byte from 7F anywhere. Accepted loss: UTF-16 LE text all of whose bytes are
    printable ASCII, such as a hiragana word without a space (``ねこ`` is ``m0S0``), is stored as the ASCII it also
    is."""
    if len(head) < 6 or len(head) % 2 or (len(data) == len(head) and len(data) % 2):
        return None
    for kind, start in (("UTF-16 LE", 1), ("UTF-16 BE", 0)):
        high = head[start::2]
        top = next((b for b in high if b), 0)
        if top not in _ALPHABET_HIGH or (top >= 0x20 and not _NOT_ASCII_TEXT.search(head)):
            continue  # printable ASCII (kana's high byte 30 is '0')
        if high.count(top) < 3 or (high.count(top) + high.count(0)) * 10 < len(high) * 9:
            continue
        try:
            text = head.decode("utf-16-le" if start else "utf-16-be")
        except UnicodeDecodeError:
            continue
        if all(c in "\t\n\r" or unicodedata.category(c)[0] in "LMNPSZ" for c in text):
            # letters, not the modifier letters 〱-〵 that '10203040' reads as in UTF-16 LE
            if sum(1 for c in text if ord(c) >> 8 == top and unicodedata.category(c) in ("Lo", "Ll", "Lu")) >= 3:
                return kind
    return None


def _utf16_ideographs(data: bytes) -> str | None:
    """``"UTF-16 LE"`` / ``"UTF-16 BE"`` when ``data`` (not UTF-8, nor a legacy encoding) reads as UTF-16 Chinese,
    Japanese or Korean: at least three characters, a quarter of its bytes not printable ASCII, every one Han, kana, Hangul, CJK punctuation or printable ASCII,
    and most of them not ASCII (``一只猫坐在红色的椅子上`` in UTF-16 BE)."""
    head = data[:4096]
    if len(head) < 6 or len(head) % 2 or (len(data) == len(head) and len(data) % 2):
        return None
    # bytes that are not printable ASCII: about half of UTF-16 ideographs', few of Latin-1 text's ('café' reads as 挣暩)
    odd = len(head) - len(re.sub(rb"[^\x20-\x7e]", b"", head))
    for kind, codec in (("UTF-16 LE", "utf-16-le"), ("UTF-16 BE", "utf-16-be")):
        try:
            text = head.decode(codec)
        except UnicodeDecodeError:
            continue
        wide = [c for c in text if not c.isascii()]
        if (len(wide) >= 3 and len(wide) * 2 >= len(text) and odd * 4 >= len(head)
                and all(c.isprintable() or c in "\t\n\r" for c in text if c.isascii())
                and all(_script_of(c) in ("han", "kana", "hangul", "cjk-punct") for c in wide)):
            return kind
    return None


#: control characters a text member may not hold: C0 but TAB, LF, VT, FF and CR (which are spaces and line breaks).
#: C1 (U+0080-U+009F) is kept and noted (:func:`c1_note`): most of it is UTF-8 read as Latin-1 / cp1252 (mojibake,
#: ``Itâ\x80\x99s``), a real caption, and every line mmdata prints escapes C1 as it escapes ESC
#: (:func:`mmdata.terminal.terminal_text`) (QA39 review sources #1)
_TEXT_CONTROLS = re.compile(rb"[\x00-\x08\x0e-\x1f]")
#: a C1 control character in UTF-8 (``C2 80``-``C2 9F``)
_C1 = re.compile(rb"\xc2[\x80-\x9f]")


def _unmojibaked(text: str) -> str | None:
    """``text`` decoded again when it is UTF-8 that was read as Latin-1 / cp1252 (``Itâ\x80\x99s`` -> ``It’s``), else
    None: every character back to its byte (cp1252's for ``€`` / ``™``), and those bytes valid UTF-8."""
    out = bytearray()
    for ch in text:
        o = ord(ch)
        if o < 256:
            out.append(o)
        else:
            try:
                out += ch.encode("cp1252")
            except UnicodeEncodeError:
                return None
    try:
        fixed = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return fixed if fixed != text else None


def c1_note(data: bytes) -> str | None:
    """A note on a UTF-8 text member holding C1 control characters (U+0080-U+009F), which is kept as it is, or None.
    Mostly mojibake: UTF-8 read as Latin-1 / cp1252 and saved again (``It’s`` -> ``Itâ\x80\x99s``): named with the
    fix. A NEL (U+0085) alone is a line break (EBCDIC text): no note. Else the code point: mmdata's output escapes
    it, other tools (``cat`` of a tar member) may not (QA39 review sources #1).

    Example:
        >>> c1_note("It’s".encode().decode("latin-1").encode())[:60]
        'text holds U+0080 (character 4): it reads as UTF-8 decoded a'
        >>> c1_note("line\u0085two".encode()) is None, c1_note(b"plain") is None
        (True, True)
        >>> c1_note("red \u009b31m".encode())[:45]
        'text holds U+009B CSI (character 5), a contro'
    """
    m = _C1.search(data)
    if m is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    at = len(data[:m.start()].decode("utf-8", "replace")) + 1
    code = ord(m.group().decode("utf-8"))
    fixed = _unmojibaked(text)
    if fixed is not None:
        shown = fixed if len(fixed) <= 40 else fixed[:37] + "..."
        return (f"text holds U+{code:04X} (character {at}): it reads as UTF-8 decoded as Latin-1 / cp1252 and "
                f"saved again (mojibake; decoded again it is {shown!r}); re-decode it "
                f"(s.encode('latin-1').decode('utf-8'), or ftfy.fix_text(s))")
    others = [c for c in text if "\x80" <= c <= "\x9f" and c != "\x85"]
    if not others:
        return None  # NEL: a line break
    code = ord(others[0])
    at = text.index(others[0]) + 1
    names = {0x9B: "CSI", 0x9C: "ST", 0x9D: "OSC", 0x90: "DCS", 0x9E: "PM", 0x9F: "APC"}
    name = f" {names[code]}" if code in names else ""
    return (f"text holds U+{code:04X}{name} (character {at}), a control character, not a letter: mmdata prints it "
            f"escaped, other tools may not; remove it if it is not meant")


def _noted(noted: Sequence[Mapping[str, str]], total: int | None) -> tuple[int, str, Mapping[str, str]]:
    """A counted member warning's parts: how many in all (``total``, at least those ``noted``), the first five
    samples' keys, and the first noted entry (its ``member`` and ``note`` the example)."""
    n = max(total or 0, len(noted))
    return n, ", ".join(repr(printable(e["sample"])) for e in noted[:5]) + (", ..." if n > 5 else ""), noted[0]


def c1_texts_warning(noted: Sequence[Mapping[str, str]], total: int | None = None) -> str | None:
    """The warning for text members kept holding C1 control characters (:func:`c1_note`), counted (``total``:
    all of them; ``noted`` the first few a job named), with the first samples' keys, or None (QA39 review
    sources #1)."""
    if not noted:
        return None
    n, keys, e = _noted(noted, total)
    return (f"{plural(n, 'text member')} {'hold' if n != 1 else 'holds'} C1 control characters "
            f"(U+0080-U+009F), kept as {'they are' if n != 1 else 'it is'} (samples {keys}); e.g. "
            f"{e['member']!r}: {e['note']}")


class _NotJson:
    """A value strict JSON has no form for, as :func:`json_note` parses it: ``NaN``, ``Infinity``, a number too
    large for a double (``1e999``)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _strict_number(text: str) -> Any:
    val = float(text)
    return val if math.isfinite(val) else _NotJson(text)


def json_note(data: bytes) -> str | None:
    """What in a ``.json`` member other tools' strict JSON parsers refuse or read otherwise, which Python's json
    accepts: ``NaN`` / ``Infinity`` / ``-Infinity``, a number beyond a double (``1e999``), a key repeated in one
    object (a parser keeps the first or the last); each named with its key; None when there is none. A member
    kept as given (a folder's ``<stem>.json`` sidecar) is noted, not rewritten (QA40 hostile #4).

    Example:
        >>> json_note(b'{"g": NaN, "d": 1, "d": 2, "big": 1e999}')
        "key 'g': NaN; key 'big': 1e999 (beyond a double: infinite); key 'd' repeated"
        >>> json_note(b'{"a": [1.5, null]}') is None
        True
    """
    found: list[str] = []
    repeated: list[str] = []

    def odd(key: str, val: Any) -> None:
        if isinstance(val, _NotJson):
            found.append(f"key {key!r}: {val.text}" + (" (beyond a double: infinite)" if val.text[-1:].isdigit() else ""))
        elif isinstance(val, list):
            for v in val:
                odd(f"{key}[]", v)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for k, v in items:
            if k in seen and k not in repeated:
                repeated.append(k)
            seen.add(k)
            odd(k, v)
        return dict(items)

    try:
        top = json.loads(data.decode("utf-8-sig"), parse_constant=_NotJson, parse_float=_strict_number,
                         object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None  # not JSON at all: check_json refuses it
    if isinstance(top, (list, _NotJson)):
        odd("(top level)", top)
    notes = found[:4] + [f"key {k!r} repeated" for k in repeated[:4]]
    more = len(found) + len(repeated) - len(notes)
    return "; ".join(notes) + (f"; and {more} more" if more > 0 else "") if notes else None


def json_notes_warning(noted: Sequence[Mapping[str, str]], total: int | None = None) -> str | None:
    """The warning for ``.json`` members kept as given that strict JSON parsers refuse (:func:`json_note`),
    counted (``total``: all of them; ``noted``: the first few, ``{"member", "sample", "note"}``), or None."""
    if not noted:
        return None
    n, keys, e = _noted(noted, total)
    return (f"{plural(n, '.json member')} {'hold' if n != 1 else 'holds'} what strict JSON parsers (jq, JSON.parse, "
            f"other tools) refuse or read otherwise: NaN / Infinity, a number beyond a double, or a key repeated "
            f"(samples {keys}; e.g. {e['member']!r}: {e['note']}); {'they were' if n != 1 else 'it was'} stored as "
            f"given and Python reads {'them' if n != 1 else 'it'}; to share the dataset with other tools, write "
            f"null (or text: \"inf\") for such numbers and each key once in the source files, then shard again")


def text_refusal(data: bytes, what: str = "text") -> str | None:
    """Why ``data``, a text member (a caption) that decodes as UTF-8, is refused, or None: UTF-16 without a byte
    order mark (:func:`utf16_of`), or a C0 control character other than TAB / line breaks / form feed (NUL, ESC,
    ``\x06``: binary data or terminal codes, never a caption's text; refused as in a class name); C1 (U+0080-U+009F)
    is not refused, but noted (:func:`c1_note`: mostly mojibake; QA39 review sources #1); a DOS end-of-file
    byte (Ctrl-Z, ``\x1a``) as the last byte is tolerated. For raw sources: the writer passes a dataset's text
    members (augment, re-sharding tars) through, warning of them.

    Example:
        >>> text_refusal("猫です".encode()) is None, text_refusal("كلب يجري".encode("utf-16-le"))[:36]
        (True, 'text is UTF-16 (UTF-16 LE, without a')
        >>> text_refusal("猫\x1b[2J".encode())
        'text holds a control character (U+001B ESC, character 2): a caption is text, not binary data or terminal codes; remove it and save the file again'
    """
    kind, bom = utf16_of(data)
    if kind is not None:
        return _utf16_said(data, kind, bom, what)
    # a DOS end-of-file byte (Ctrl-Z) ending the file is tolerated, and kept as it is (shards written before QA28
    # hold such captions: review of QA28 #4)
    m = _TEXT_CONTROLS.search(data, 0, len(data) - 1 if data.endswith(b"\x1a") else len(data))
    if m is None:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # not UTF-8: the decode's error names it (not_utf8_reason)
    kind = _utf16_ideographs(data)  # '一只' in UTF-16 BE is 'N\x00S\x...'
    if kind is not None:
        return _utf16_said(data, kind, False, what)
    names = {0: "NUL", 0x1B: "ESC", 0x7: "BEL", 0x8: "BS"}
    code = data[m.start()]
    at = len(data[:m.start()].decode("utf-8", "replace")) + 1
    name = f" {names[code]}" if code in names else ""
    return (f"{what} holds a control character (U+{code:04X}{name}, character {at}): a caption is text, not binary "
            f"data or terminal codes; remove it and save the file again")


def not_utf8_reason(data: bytes, exc: UnicodeDecodeError, what: str = "text") -> str:
    """Why ``data`` (text of a member, a label or a class-names file) did not decode as UTF-8: UTF-16 named
    as such, with the fix; else the byte that failed.

    Example:
        >>> data = "a cat".encode("utf-16")
        >>> try:
        ...     data.decode("utf-8")
        ... except UnicodeDecodeError as exc:
        ...     print(not_utf8_reason(data, exc).partition(" (Excel")[0])
        text is UTF-16 (UTF-16 LE, byte order mark FF FE), not UTF-8: save it as UTF-8
    """
    kind, bom = utf16_of(data)
    if kind is None:
        said = f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})"
        if what != "text":
            return said
        if _cut_utf8(data, exc):
            return f"{said}: it ends in the middle of a UTF-8 character (a file cut short?)"
        legacy = _legacy_guesses(data)
        if legacy:
            return f"{said}: {_legacy_hint(legacy)}"
        kind = _utf16_ideographs(data)
        if kind is not None:
            return _utf16_said(data, kind, False, what)
        # a caption, as a manifest's line: text saved on Windows (Notepad, Excel) is most often one of these
        return f"{said}: Latin-1 or Windows-1252? save it as UTF-8" if _latin1_letters(data) else said
    return _utf16_said(data, kind, bom, what)


def _utf16_said(data: bytes, kind: str, bom: bool, what: str) -> str:
    """Why ``data`` (``what``: text, a label ...) is refused as UTF-16 of ``kind``, with or without its byte order
    mark, and the fix."""
    mark = f", byte order mark {data[:2].hex(' ').upper()}" if bom else ", without a byte order mark"
    return f"{what} " + _UTF16_FIX.format(kind=kind, mark=mark, what="it")


def _cut_utf8(data: bytes, exc: UnicodeDecodeError) -> bool:
    """``data`` is UTF-8 cut inside its last character: the only bad bytes are an unfinished sequence at the end,
    and either the text before holds UTF-8 that is not ASCII, or the sequence is one that starts a Latin-1 letter
    in UTF-8 (``C2`` / ``C3``: ``caf\\xc3``, which Latin-1 reads as 'cafÃ')."""
    if exc.reason != "unexpected end of data" or exc.end != len(data):
        return False
    return not data[:exc.start].isascii() or data[exc.start] in (0xC2, 0xC3)


#: legacy encodings a text that is not UTF-8 may be in, tried in this order (the first that decodes into text
#: of its script is named): (name shown, Python / iconv codec, script). Each codec is the Windows superset of
#: its standard (cp932 of Shift-JIS, cp949 of EUC-KR, gb18030 of GBK), so a file from Windows decodes too.
#: Kana and Hangul first: GBK decodes their bytes too, as ideographs; Arabic before Cyrillic, which decodes
#: Arabic's bytes (in words of mixed case, which Cyrillic must not have); Cyrillic before the ideographs (a
#: Russian word of an even number of letters decodes as GBK too); GB2312's range (both bytes from A1) before
#: Big5, whose second bytes 40-7E GB2312 lacks.
#: Thai (Windows-874, a superset of TIS-620) and Hebrew before Arabic and Cyrillic, which decode their bytes (Thai
#: as Arabic letters, Hebrew as lower-case Cyrillic а-ъ: QA28 i18n #2), each read as such only when its marks follow
#: a letter and, for Hebrew, its final letters end words (a Russian word read as Windows-1255 has them inside).
#: Latin-1 / Windows-1252 decode everything: they stay the last guess (:func:`_latin1_letters`).
_LEGACY_ENCODINGS = (("Shift-JIS", "cp932", "kana"), ("EUC-KR", "cp949", "hangul"),
                     ("Thai TIS-620 / Windows-874", "cp874", "thai"), ("Windows-1255", "cp1255", "hebrew"),
                     ("Windows-1256", "cp1256", "arabic"), ("Windows-1251", "cp1251", "cyrillic"),
                     ("GBK", "gb2312", "han"), ("Big5", "big5", "han"), ("GBK", "gb18030", "han"))
_LEGACY_LOOK = 1 << 16  # bytes looked at: the hint needs a sample, not a whole manifest


def _script_of(c: str) -> str:
    """The script a character that is not ASCII counts for: han, kana, hangul, arabic, cyrillic, hebrew, thai, cjk-punct
    (CJK punctuation and full-width forms, any East Asian script's), else other."""
    o = ord(c)
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if 0x3040 <= o <= 0x30FF:
        return "kana"
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x0600 <= o <= 0x06FF or 0xFB50 <= o <= 0xFDFF or 0xFE70 <= o <= 0xFEFF:
        return "arabic"
    if 0x0400 <= o <= 0x04FF:
        return "cyrillic"
    if 0x0590 <= o <= 0x05FF or 0xFB1D <= o <= 0xFB4F:
        return "hebrew"
    if 0x0E00 <= o <= 0x0E7F:
        return "thai"
    if 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF60 or 0xFFE0 <= o <= 0xFFEE or o in (0x00B7, 0x2014, 0x2026,
                                                                                        0x2018, 0x2019, 0x201C, 0x201D):
        return "cjk-punct"
    return "other"


def _reads_as(text: str, script: str) -> bool:
    """``text`` (a legacy decode) looks like text of ``script``: no control, private-use or unassigned character;
    the characters that are not ASCII of that script (Japanese: ideographs with kana; Korean: Hangul with a few
    ideographs) bar punctuation; no word mixing ASCII letters with them (Latin-1's ``café`` read as Windows-1251
    is ``cafй``), and ideographs mostly beside others (Latin-1's ``naïve`` read as GBK puts one between ``na`` and
    ``ve``)."""
    if any(unicodedata.category(c) in ("Cc", "Co", "Cn", "Cs") and c not in "\t\n\r" for c in text):
        return False
    wide = [c for c in text if not c.isascii()]
    kinds = Counter(_script_of(c) for c in wide)
    kinds.pop("cjk-punct", None)
    letters = sum(kinds.values())
    if not letters or kinds["other"]:
        return False
    if script == "kana":
        ok = kinds["kana"] > 0 and kinds["kana"] + kinds["han"] == letters
    elif script == "hangul":
        ok = kinds["hangul"] >= 0.9 * letters and kinds["hangul"] + kinds["han"] == letters
    else:
        ok = kinds[script] == letters
    if not ok:
        return False
    if script in ("han", "kana"):  # scripts written without spaces: most characters sit beside another
        east = [c.isascii() for c in text]
        alone = sum(1 for i, c in enumerate(text) if not east[i] and c.isalpha()
                    and (i == 0 or east[i - 1]) and (i + 1 == len(text) or east[i + 1]))
        return letters >= 2 and alone * 2 <= letters
    words = [w for w in re.findall(r"\w+", text) if not w.isascii()]
    if any(c.isascii() and c.isalpha() for w in words for c in w):
        return False
    if script in ("thai", "hebrew") and not _marks_follow_letters(text):
        return False
    if script == "hebrew" and any(c in _HEBREW_FINALS for w in words for c in w[:-1]):
        return False  # ך ם ן ף ץ end a word: Russian read as Windows-1255 has them inside ('кот' is 'ךמע')
    if script == "arabic" and not any(c in "لمنهوىي" for c in text):
        # Arabic text holds lam, meem, noon, waw or ya (bytes E1-ED); an upper-case Cyrillic word's bytes (C0-DF)
        # read as Windows-1256 are Arabic letters without them
        return False
    if not any(len(w) >= 2 for w in words):
        # a single-byte script's word has letters beside each other: Latin-1's lone accented words ('à', 'É') read
        # as Windows-1251 are one-letter Cyrillic words (QA26 review: "Je vais à Paris" was named Windows-1251)
        return False
    # Cyrillic words are in lower, upper or capitalized case (GBK's bytes read as Windows-1251: 'ДгєГКАЅз')
    return script != "cyrillic" or all(w.islower() or w.isupper() or w.istitle() for w in words)


_HEBREW_FINALS = frozenset("\u05da\u05dd\u05df\u05e3\u05e5")
#: Thai vowels written before the consonant they are read after (เ แ โ ใ ไ): a letter follows each
_THAI_LEADING = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44")


def _marks_follow_letters(text: str) -> bool:
    """Every combining mark (Thai vowels above / below and tone marks, Hebrew points) follows a letter or another
    mark, and every Thai leading vowel comes before a letter: not so in other scripts' bytes read as Thai / Hebrew."""
    prev = " "
    for i, c in enumerate(text):
        if unicodedata.category(c) == "Mn" and not (prev.isalpha() or unicodedata.category(prev) == "Mn"):
            return False
        if c in _THAI_LEADING and not (i + 1 < len(text) and text[i + 1].isalpha() and not text[i + 1].isascii()):
            return False
        prev = c
    return True


def legacy_encoding(data: bytes) -> tuple[str, str] | None:
    """The legacy encoding text that is not UTF-8 looks like, as (name, codec): the first of Shift-JIS, EUC-KR,
    Thai (Windows-874), Windows-1255, Windows-1256, Windows-1251, GBK and Big5 (in the order of
    ``_LEGACY_ENCODINGS``) that decodes its first 64 KB without an error into text of that script
    (:func:`_reads_as`); None for none of them (Latin-1 / Windows-1252 is the caller's last guess, since they decode
    any bytes). Used for the hint only: the text is never decoded for the user.

    Example:
        >>> legacy_encoding("一只猫坐在红色的椅子上".encode("gbk")), legacy_encoding("café".encode("latin-1"))
        (('GBK', 'gb18030'), None)
        >>> legacy_encoding("חתול ישן".encode("cp1255")), legacy_encoding("แมวนอนอยู่บนโซฟา".encode("tis-620"))
        (('Windows-1255', 'cp1255'), ('Thai TIS-620 / Windows-874', 'cp874'))
    """
    found = _legacy_guesses(data)
    return found[0] if found else None


def _legacy_guesses(data: bytes) -> list[tuple[str, str]]:
    """:func:`legacy_encoding`'s guess, and the others where the bytes read as more than one: Thai and GBK / Big5 (a
    few Thai letters and a few ideographs are the same bytes: ``你好世界`` in GBK is Thai letters), Thai or Hebrew and
    Arabic (a short Arabic word in Windows-1256: ``كلب``, ``صورة``), Thai and Hebrew, Hebrew without a final letter
    and lower-case Cyrillic (``вода`` in Windows-1251 is Hebrew letters); the hint names them all rather than a
    wrong one.

    Example:
        >>> [name for name, _ in _legacy_guesses("كلب".encode("cp1256"))][-1]
        'Windows-1256'
    """
    head = data[:_LEGACY_LOOK]
    found: list[tuple[str, str]] = []
    also: set[str] = set()  # the scripts still tried after a first guess
    for name, codec, script in _LEGACY_ENCODINGS:
        if found and script not in also:
            continue
        try:  # not final: the 64 KB may end inside a character
            text = codecs.getincrementaldecoder(codec)().decode(head, final=len(head) == len(data))
        except UnicodeDecodeError:
            continue
        if _reads_as(text, script) and _high_trails(text, codec):
            found.append((name, "gb18030" if name == "GBK" else codec))
            if len(found) == 3 or found[1:] and script in ("han", "cyrillic"):
                break
            if not found[1:]:
                # a short Arabic word in Windows-1256 reads as Thai or Hebrew (its E1 E3 E4 are Thai leading
                # vowels: review of QA28 #6), a Hebrew word as Thai; Hebrew with no final letter (ך ם ן ף ץ) is
                # lower-case Cyrillic too: 'дом', 'вода'
                also = ({"han", "hebrew", "arabic"} if script == "thai" else
                        {"arabic", *(("cyrillic",) if not _HEBREW_FINALS & set(text) else ())} if script == "hebrew"
                        else set())
                if not also:
                    break
    return found


def _high_trails(text: str, codec: str) -> bool:
    """Of the characters two bytes long in ``codec``, at least a quarter have a second byte from 0x80: true of
    real GBK / Big5 / Shift-JIS / EUC-KR text, while Latin-1 letters read as one (``Ærø`` as Big5) pair a high
    byte with the ASCII letter after it."""
    wide = [c.encode(codec) for c in text if not c.isascii()]
    multi = [b for b in wide if len(b) > 1]
    return not multi or sum(1 for b in multi if b[-1] >= 0x80) * 4 >= len(multi)


def _legacy_hint(guesses: list[tuple[str, str]]) -> str:
    """The advice for text in a legacy encoding (or one of several, :func:`_legacy_guesses`): its name, and the
    conversion to UTF-8 (``iconv``)."""
    said = " or ".join(f"{name} ({codec})" for name, codec in guesses)
    how = "; or ".join(f"iconv -f {codec} -t utf-8" for _, codec in guesses)
    return f"looks like {said} — save it as UTF-8 ({how})"


def _latin1_letters(data: bytes) -> bool:
    """``data`` read as Windows-1252 (else Latin-1) holds letters that are not ASCII (``café``, not control bytes)."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return any(not c.isascii() and c.isalpha() for c in text)


def _names_hint(names: list[str], source: str | None) -> str:
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"{len(names)} classes from {source}: {shown}"


_NAME_IDS: list[Any] = [None, {}]  # the last names list parse_label saw, and its name -> id map
_NEAR_IDS: list[Any] = [None, 0, {}, {}]  # names, len(names), _near_name(name) -> names so spelt, raw -> hint


def _near_class_hint(raw: str, names: list[str]) -> str:
    """`` (the class 'zero' differs only in case; ...)`` when ``raw`` is one of ``names`` but for case, width,
    invisible characters or surrounding spaces (:func:`_near_name`), else ``""``: a label ``ZERO`` with --labels
    naming ``zero`` was refused with no word of why (QA31 shift D3). The near-name map is built once per names list
    and each label's hint once (a manifest of 40,000 refused labels over 2,000 classes took 4x as long to shard:
    QA31 shift review F1).

    Example:
        >>> _near_class_hint("ZERO", ["zero", "one"])
        " (the class 'zero' differs only in case; labels are matched exactly: fix the label column or the names file)"
    """
    if _NEAR_IDS[0] is not names or _NEAR_IDS[1] != len(names):
        near: dict[str, list[str]] = {}
        for n in names:
            near.setdefault(_near_name(n), []).append(n)
        _NEAR_IDS[:] = [names, len(names), near, {}]
    hints: dict[str, str] = _NEAR_IDS[3]
    hint = hints.get(raw)
    if hint is None:
        like = _NEAR_IDS[2].get(_near_name(raw))
        hint = (f" (the class {like[0]!r} differs only in {_name_differences([raw, like[0]])}; labels are matched "
                f"exactly: fix the label column or the names file)") if like else ""
        if len(hints) < 100_000:  # a column of distinct typos must not grow the memo without end
            hints[raw] = hint
    return hint


def _name_ids(names: list[str]) -> dict[str, int]:
    """name -> class id of ``names``, built once per list (``names.index`` per label file scanned every
    class: 100k samples over 10,000 class names took 15 s)."""
    if _NAME_IDS[0] is not names or len(_NAME_IDS[1]) != len(names):
        _NAME_IDS[:] = [names, {n: i for i, n in reversed(list(enumerate(names)))}]
    return _NAME_IDS[1]


def parse_label(data: bytes, names: list[str] | None, source: str | None = None) -> int:
    """A label file's class id: a non-negative integer, or a class name when ``names`` are declared.

    Raises:
        ValueError: with the reason (empty, not UTF-8, not an id, negative, outside the classes).

    Example:
        >>> parse_label(b"2\\n", None), parse_label(b"dog", ["cat", "dog"])
        (2, 1)
    """
    try:
        raw = data.decode("utf-8-sig").strip()  # a BOM (Windows editors) is not part of the id
    except UnicodeDecodeError as exc:
        raise ValueError(not_utf8_reason(data, exc, "label file")) from None
    if not raw:
        raise ValueError("empty label file (expected a class id)")
    if raw.isascii() and raw.isdigit():
        if len(raw.lstrip("0")) > len(str(MAX_LABEL)) or int(raw) > MAX_LABEL:  # digits first: int() of 5000 fails
            shown = raw if len(raw) <= 40 else f"{raw[:20]}... ({len(raw)} digits)"
            raise ValueError(f"label {shown} is out of range (expected a class id 0..{MAX_LABEL}, an int64)")
        value = int(raw)
        if names is not None and value >= len(names):
            raise ValueError(f"label {value} is outside the declared classes 0..{len(names) - 1} "
                             f"({_names_hint(names, source)})")
        return value
    if names is not None:
        found = _name_ids(names).get(raw)
        if found is None and not raw.isascii():  # 'école' typed on macOS (NFD) names the class 'école' (NFC)
            found = _name_ids(names).get(_nfc(raw))
        if found is not None:
            return found
    if raw[:1] == "-" and raw[1:].isascii() and raw[1:].isdigit():
        raise ValueError(f"negative label {raw} (labels are class ids 0, 1, ...)")
    if _DECIMAL.fullmatch(raw) and not names:  # -2.0, 2.6 (not 1_0, which float() reads as 10)
        real = float(raw)
        kind = "a negative number" if real < 0 else "a real number" if real != int(real) else "a number"
        raise ValueError(f"label {raw[:40]!r} is {kind}, not a class id (labels are class ids 0, 1, ...; a score or "
                         f"a regression target is metadata: --meta)")
    if names:
        raise ValueError(f"expected an integer class id or a class name ({_names_hint(names, source)}), "
                         f"got {raw[:40]!r}{_near_class_hint(raw, names)}")
    hint = "" if _is_number(raw) else ("; for label files holding class names, declare the names: a labels.txt (one "
                                       "per line) or labels.json at the source root, or --labels names.txt")
    raise ValueError(f"expected an integer class id, got {raw[:40]!r}{hint}")


def source_label(data: bytes, names: list[str] | None = None) -> bytes:
    """A source's label (a label file, a manifest cell) with an id written in another script's digits (Arabic-Indic
    ``١``, Devanagari ``१``, full-width ``１``) in ASCII digits, as ``int()`` reads it; anything else unchanged. A
    shard's label member stays ASCII (:func:`mmdata.codecs.decode_label`): the shard stores the id. (QA28 i18n #5:
    the manifest's spelling warning called ``١`` class id 1, then every such row lost its label.) A label that is
    one of the declared ``names`` (as written or in NFC) stays that name: class names ``١ ٢ ٣`` in a labels.txt
    name their classes, as before (review of QA28: ``٢`` became id 2, the third class).

    Example:
        >>> source_label("١٢".encode()), source_label("-٣".encode()), source_label(b"cat")
        (b'12', b'-3', b'cat')
        >>> source_label("٢".encode(), ["١", "٢", "٣"]).decode()
        '٢'
    """
    if data.isascii():
        return data
    try:
        raw = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return data
    if names and (raw in _name_ids(names) or _nfc(raw) in _name_ids(names)):
        return data
    sign, digits = ("-", raw[1:]) if raw[:1] == "-" else ("", raw)
    if not digits.isdecimal() or len(digits) > 40:
        return data
    return (sign + "".join(str(unicodedata.decimal(c)) for c in digits)).encode()


def _parsed_label(parsed: dict[bytes, int | str], data: bytes, names: Any, names_from: Any) -> int | str:
    """:func:`parse_label` of a label member's bytes, or why it is no label (a str), each distinct content
    parsed once (``parsed``: label files repeat a few contents)."""
    label = parsed.get(data)
    if label is None:
        try:
            label = parse_label(source_label(data, names), names, names_from)
        except ValueError as exc:
            label = str(exc)
        parsed[data] = label
    return label


def label_gap_warning(per_class: Mapping[int, int], holders: Mapping[int, list[str]] | None = None) -> str | None:
    """A warning when label ids skip values and no class names were declared (``{0, 1, 2, 7}``)."""
    if not per_class:
        return None
    top = max(per_class)
    gaps = [i for i in range(top) if i not in per_class]
    if not gaps:
        return None
    shown = ", ".join(map(str, gaps[:12])) + (", ..." if len(gaps) > 12 else "")
    who = holders.get(top, []) if holders else []
    used = f" (used by {len(who)} sample{'s' * (len(who) != 1)}: {', '.join(who)})" if 0 < len(who) <= 3 else ""
    return (f"label ids {shown} never occur: num_classes is {top + 1} from the largest id {top}{used}. "
            f"Declare the class names (labels.json or labels.txt beside the data, or --labels names.txt) "
            f"so that an id outside them is reported, or fix the label files")


# ---- folders --------------------------------------------------------------------------------------


class _Walk:
    """State of one folder walk: what was found, what was left out and why. The walk of a folder at
    an fsspec URL (:class:`mmdata.shards.remote_source.RemoteWalk`) has the same interface."""

    sep = os.sep
    #: files reached through symbolic links that lead outside the source, and the first such link as
    #: (link, its target) — a card warning; a walk of a folder at a URL meets no links
    outside_files = 0
    outside_example: tuple[str, str] | None = None

    def __init__(self, root: str, on_error: str, exclude: str | None) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.on_error = on_error
        self.exclude = exclude
        self.skipped: list[dict[str, Any]] = []
        st = os.stat(root)
        self.visited = {(st.st_dev, st.st_ino)}
        # the output folder as (parent rel path, name) when it lies inside the source: on a first run it
        # does not exist yet, and is reported all the same, so every run's card lists it alike
        self.exclude_at: tuple[str, str] | None = None
        if exclude is not None and exclude.startswith(self.real_root + os.sep):
            parent, _, name = os.path.relpath(exclude, self.real_root).replace(os.sep, "/").rpartition("/")
            self.exclude_at = (parent + "/" if parent else "", name)
        # the source as links inside it may name it: resolved, and as given
        self.root_prefixes = tuple(dict.fromkeys((self.real_root + os.sep, os.path.abspath(root) + os.sep)))
        #: folder path -> the link leading outside the source that it was reached through
        self.outside_dirs: dict[str, tuple[str, str]] = {}

    def read(self, paths: list[str]) -> tuple[list[bytes | int], array]:
        """The files at ``paths`` as :func:`read_many` reads them."""
        return read_many(paths)

    def read_names(self, name: str) -> list[str]:
        """The class names in the file ``name`` at the root."""
        return read_label_names(os.path.join(self.root, name))

    def bad(self, source: str, what: str, reason: str, sample: str | None = None, data: bool = True) -> None:
        """Record a skip; with ``on_error="raise"``, bad *data* raises instead."""
        if data and self.on_error == "raise":
            raise SourceError(f"{source}: {reason}" + (f" (sample {sample!r})" if sample and sample != source else ""))
        self.skipped.append(skip_entry(source, what, reason, sample))

    def list(self, folder: str, rel: str) -> tuple[list[str], list[str]]:
        """Sorted names of the files and walkable sub-folders of ``folder``; the rest is reported."""
        dirs: list[str] = []
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            _stop_at_host_limit(exc, folder)
            self.bad(printable(rel.rstrip("/")) or ".", "folder", f"cannot list the folder: {exc.strerror}")
            return [], dirs
        # regular files from d_type, without a stat; links and the rest are looked at one by one
        files = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        files.sort()
        others: list[Any] = [] if len(files) == len(entries) else sorted(
            (e for e in entries if not e.is_file(follow_symlinks=False)), key=attrgetter("name"))
        if self.exclude_at is not None and self.exclude_at[0] == rel and not any(
                e.name == self.exclude_at[1] for e in entries):  # the output, not created yet
            others = sorted([*others, self.exclude_at[1]], key=lambda e: e if e.__class__ is str else e.name)
        via = self.outside_dirs.get(folder)  # this folder came through a link leading outside the source
        folder_real: str | None = None
        linked: list[str] = []
        for e in others:
            if e.__class__ is str:
                self.skipped.append(skip_entry(printable(rel + e), "folder", OUTPUT_OF_THIS_JOB))
                continue
            shown = printable(rel + e.name)
            try:
                if e.is_file():  # a link to a file
                    linked.append(e.name)
                    if via is None:
                        if folder_real is None:
                            folder_real = os.path.realpath(folder)
                        target = os.readlink(e.path)
                        if self._leads_out(os.path.normpath(os.path.join(folder_real, target))):
                            self.outside_files += 1
                            self.outside_example = self.outside_example or (shown, printable(target))
                elif e.is_dir():
                    if is_hidden_folder(e.name):
                        out = self.exclude is not None and os.path.realpath(e.path) == self.exclude
                        self.skipped.append(skip_entry(shown, "folder",
                                                       OUTPUT_OF_THIS_JOB if out else hidden_folder_reason(e.name)))
                    elif self._walkable(e, shown):
                        dirs.append(e.name)
                        if via is not None:
                            self.outside_dirs[e.path] = via
                        elif e.is_symlink() and self._leads_out(os.path.realpath(e.path)):
                            self.outside_dirs[e.path] = (shown, printable(os.readlink(e.path)))
                elif e.is_symlink():
                    target = printable(os.readlink(e.path))
                    if os.path.exists(e.path):  # a link to a device (/dev/zero), a FIFO, a socket
                        self.bad(shown, "file", f"not a regular file (link to {target!r})", data=False)
                    else:  # the target by its last name: the card is the same wherever the storage lies
                        gone = printable(os.path.basename(os.readlink(e.path).rstrip("/")) or os.readlink(e.path))
                        self.bad(shown, "file", f"broken symbolic link (to {gone!r})",
                                 data=split_name(e.name) is not None)
                else:
                    self.bad(shown, "file", "not a regular file (a FIFO, socket or device)", data=False)
            except OSError as exc:  # e.g. a link to itself: ELOOP
                _stop_at_host_limit(exc, e.path)
                self.bad(shown, "file", f"cannot read: {exc.strerror}", data=split_name(e.name) is not None)
        if linked:
            files = sorted(files + linked)
        if via is not None and files:
            self.outside_files += len(files)
            self.outside_example = self.outside_example or via
        return files, dirs

    def _leads_out(self, target: str) -> bool:
        return not (target + os.sep).startswith(self.root_prefixes)

    def link_warnings(self) -> list[str]:
        """A warning when files came through symbolic links leading outside the source (a symlink farm
        is a fine way to build a dataset, but a stray link pulls in files the user never meant to ship)."""
        if not self.outside_files or self.outside_example is None:
            return []
        # the link by its name in the source, not where it leads: the card is the same wherever the storage lies
        # (QA: two collaborators' symlink farms into other cache paths gave other cards)
        n, (link, _) = self.outside_files, self.outside_example
        return [f"{n} file{'s' * (n != 1)} came through symbolic links that lead outside the source folder (e.g. "
                f"{link!r}: `readlink -f` on it shows where it leads) and {'are' if n != 1 else 'is'} sharded like "
                f"the rest: check that {'they belong' if n != 1 else 'it belongs'} in the dataset before publishing it"]

    def _walkable(self, e: os.DirEntry, shown: str) -> bool:
        if e.is_symlink():
            target = os.path.realpath(e.path)
            if target == self.real_root or target.startswith(self.real_root + os.sep):
                inside = printable(os.path.relpath(target, self.real_root))
                where = "the source folder itself" if inside == "." else repr(inside)
                self.skipped.append(skip_entry(shown, "folder", f"symbolic link to {where}, which is walked as part of "
                                                                f"the source already (not walked twice)"))
                return False
            # a link to a folder that holds the source, or this link: walking it walks the link again
            holder = target.rstrip(os.sep) + os.sep
            for what, below in (("the source folder", self.real_root),
                                ("this link", os.path.realpath(os.path.dirname(e.path)))):
                if (below + os.sep).startswith(holder):
                    self.skipped.append(skip_entry(shown, "folder", f"symbolic link to "
                                                   f"{printable(os.readlink(e.path))!r}, a folder that holds {what}: "
                                                   f"a loop, not walked"))
                    return False
        st = e.stat()
        if (st.st_dev, st.st_ino) in self.visited:
            self.skipped.append(skip_entry(shown, "folder", "a folder already walked (a link or mount loop)"))
            return False
        self.visited.add((st.st_dev, st.st_ino))
        if self.exclude is not None and os.path.realpath(e.path) == self.exclude:
            self.skipped.append(skip_entry(shown, "folder", OUTPUT_OF_THIS_JOB))
            return False
        if is_dataset_folder(e.path):  # its dataset.json would become a sample, its shards unknown files
            self.skipped.append(skip_entry(shown, "folder", EARLIER_OUTPUT))
            return False
        return True


def is_hidden_folder(name: str) -> bool:
    """Whether a folder is hidden or a system folder, never walked (``.git``, ``__MACOSX``, ``__pycache__``,
    ``$RECYCLE.BIN``, ``System Volume Information``)."""
    return name[:1] == "." or name[:2] == "__" or name.casefold() in WINDOWS_FOLDERS


def hidden_folder_reason(name: str) -> str:
    """Why the hidden or system folder ``name`` (:func:`is_hidden_folder`) is left out."""
    return WINDOWS_FOLDER if name.casefold() in WINDOWS_FOLDERS else HIDDEN_FOLDER


def is_dataset_folder(path: str | Path) -> bool:
    """Whether the local folder ``path`` holds an mmdata dataset (``dataset.json`` + ``index.parquet``)."""
    return all(os.path.isfile(os.path.join(path, f)) for f in DATASET_FILES)


def stamp_field(ext: str) -> bool:
    """Whether a member extension is ``<digits>.npy`` (ASCII digits): no field name (``--column`` names start with a
    letter) but maybe the end of a stem, e.g. a ROS timestamp's fraction (``frame_000001_1701234567.990.npy``).
    Folder discovery and ``add-modality`` (:mod:`mmdata.shards.columns`) share it, so they agree on which names
    hold such digits (``str.isdigit`` is also true for ``'²'``).

    Example:
        >>> stamp_field("990.npy"), stamp_field("imu.npy"), stamp_field("\u00b2.npy"), stamp_field("990.png")
        (True, False, False, False)
    """
    head = ext[:-4]
    return ext[-4:] == ".npy" and head.isascii() and head.isdigit()


#: a stem ending in a number (after a separator, or all digits): a timestamp's whole seconds
#: (``frame_000001_1701234567``), so ``.<digits>`` after it is the timestamp's fraction, not a field
_STAMP_STEM = re.compile(r"(?:^|[^0-9A-Za-z])[0-9]+\Z")


def _join_stamped_arrays(groups: dict[str, tuple[str, dict[str, str]]], stamped: list[str],
                         rel: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """Give each ``<stem>.<digits>.npy`` of one folder (read by :func:`split_name` as the field ``<digits>`` of
    sample ``<stem>``) to the sample of its whole stem, as that sample's bare ``.npy`` member (the name
    ``<stem>.npy`` gets beside a sample), when ``<stem>`` ends in a number (``frame_1701234567.990``: a timestamp
    and its fraction) and that sample exists or ``<stem>`` holds nothing but such arrays (an IMU-only folder:
    ``f_1701234567.120.npy`` and ``f_1701234567.990.npy`` are two windows, not one sample with two fields). After
    a word (``scan_a.0.npy``, ``scan_a.1.npy``: two views of one scan) the digits stay a field. Returns
    ``(sample, file)`` per array kept as a field and ``(stem, first file, arrays)`` per stem split into samples,
    for one warning each (both readings of the same names are said).

    Example:
        >>> g = {"f_1": ("f_1", {"990.npy": "d/f_1.990.npy"}), "f_1.990": ("f_1.990", {"png": "d/f_1.990.png"})}
        >>> _join_stamped_arrays(g, ["f_1"], "d/"), g
        (([], []), {'f_1.990': ('f_1.990', {'png': 'd/f_1.990.png', 'npy': 'd/f_1.990.npy'})})
        >>> g = {"scan_a": ("scan_a", {"0.npy": "d/scan_a.0.npy", "1.npy": "d/scan_a.1.npy"})}
        >>> _join_stamped_arrays(g, ["scan_a"], "d/")[0], sorted(g["scan_a"][1])
        ([('d/scan_a', 'd/scan_a.0.npy'), ('d/scan_a', 'd/scan_a.1.npy')], ['0.npy', '1.npy'])
    """
    left: list[tuple[str, str]] = []
    split: list[tuple[str, str, int]] = []
    for norm in dict.fromkeys(stamped):
        stem, members = groups[norm]
        digits = sorted(e for e in members if stamp_field(e))
        if not _STAMP_STEM.search(stem):  # scan_a.0.npy: field '0' of sample 'scan_a', as before
            left += [(printable(rel + stem), printable(rel + f"{stem}.{ext}")) for ext in digits]
            continue
        alone = len(digits) == len(members)
        for ext in digits:
            whole = f"{norm}.{ext[:-4]}"
            if whole in groups:
                groups[whole][1]["npy"] = members.pop(ext)  # "<whole>.npy" splits otherwise: it holds no npy yet
            elif alone:
                groups[whole] = (f"{stem}.{ext[:-4]}", {"npy": members.pop(ext)})
            else:
                left.append((printable(rel + stem), printable(rel + f"{stem}.{ext}")))
        if alone and len(digits) > 1:  # one name read as several samples: the other reading is fields of one
            split.append((printable(rel + stem), printable(rel + f"{stem}.{digits[0]}"), len(digits)))
        if not members:
            del groups[norm]
    return left, split


def _stamp_field_warning(left: list[tuple[str, str]], split: list[tuple[str, str, int]] = ()) -> list[str]:
    """One warning naming the ``<stem>.<digits>.npy`` files kept as an all-digit field (``scan_a.0.npy``: the stem
    ends in a word; or ``scan_1.png`` + ``scan_1.0.npy`` and no sample ``scan_1.0``), and one naming the stems
    whose arrays were read as one sample each (``f_1701234567.120.npy`` + ``f_1701234567.990.npy``)."""
    out = []
    if left:
        sample, fn = left[0]
        n = len(left)
        digits, base = fn.rsplit(".", 2)[1], sample.rsplit("/", 1)[-1]
        out.append(f"{n} .npy file{'s are' if n != 1 else ' is'} read as an array field whose name is all digits "
                   f"(e.g. {fn!r}: field {digits!r} of sample {sample!r}{', ...' if n > 1 else ''}): digits are "
                   f"read as the end of a sample's name only after a number (a timestamp's fraction, "
                   f"'frame_1701234567.990.npy'), and then when that sample's other files sit beside the array or "
                   f"the name holds nothing else; if {digits!r} is a field of {sample!r}, name it with a letter first "
                   f"('{base}.imu.npy'), as --column field names are; if it is part of the name, join it with '_' "
                   f"('{base}_{digits}.npy')")
    if split:
        stem, fn, k = split[0]
        n = sum(c for _, _, c in split)
        digits, base = fn.rsplit(".", 2)[1], stem.rsplit("/", 1)[-1]
        out.append(f"{n} .npy files of {len(split)} name{'s' if len(split) != 1 else ''} are read as one sample each, "
                   f"the digits after the last dot taken as the end of the name (a timestamp's fraction; e.g. "
                   f"{fn!r} and {k - 1} more of {stem!r}: sample {f'{stem}.{digits}'!r}, ...); if the digits name "
                   f"fields of one sample {stem!r}, name them with a letter first ('{base}.imu{digits}.npy'), as "
                   f"--column field names are")
    return out


def _one_field_each(exts: set[str]) -> bool:
    return len({field_of(e) for e in exts}) == len(exts)


_SIDECAR = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


def _kinds(members: Iterable[str]) -> set[str]:
    return {field_of(e.rpartition(".")[2].lower()) for e in members}


def _clip_frame_keys(groups: Sequence[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """The samples of ``groups`` (``(key, members)``) that :func:`_frame_sequences` puts in a clip beside the clip's
    own sample (``A0.frame0`` beside ``A0.txt``), when some clip holds two frames or more (:func:`_clip_like`):
    :func:`_frame_sequence_warning` speaks of those, not :func:`_sidecar_warning`. A timestamp's base
    (``1701234500.cam1``) or one image per sample (``s0.page1.png`` beside ``s0.txt``) gives none: those keep the
    sidecar advice (QA37 review srcarr #1, #2)."""
    held = dict(groups)
    near = [k for k in held if "." in k and k.rsplit(".", 1)[0] in held]
    if not near:
        return set()
    bases = dict.fromkeys(k.rsplit(".", 1)[0] for k in near)
    clips, _ = _frame_sequences([Record(k, k, dict(held[k])) for k in (*bases, *near)])
    if not _clip_like(clips):
        return set()
    return {r.source_key for base, recs in clips.items() for r in recs if r.source_key != base}


def _clip_like(clips: Mapping[str, list[Record]]) -> bool:
    """Whether some clip of :func:`_frame_sequences` holds two frames or more: one named image beside a sample
    (``p0.v2.jpg`` beside ``p0.jpg`` + ``p0.txt``) is kept in its sample's split but is no sign of a clip."""
    return any(sum(r.source_key != base for r in recs) >= _FRAME_RUN for base, recs in clips.items())


def _sidecar_warning(groups: list[tuple[str, dict[str, str]]],
                     rel_of: Callable[[str], str] | None = None) -> list[str]:
    """A warning when samples look like named fields of another one: ``0001.meta.json`` beside ``0001.png``
    is sample ``0001.meta`` (only ``<stem>.<field>.npy`` joins its stem's sample; a stem may hold dots),
    which WebDataset users read as field ``meta.json`` of sample ``0001``. With ``rel_of`` (a paired layout,
    ``--column``: a file's path in the source) a file of such a sample that lies in a named field's folder
    (``depth/0001.right.png``) is advised its folder's name for that sample (``depth/0001.png``), not ``.npy``.

    Example:
        >>> _sidecar_warning([("a/0001", {"png": "x"}), ("a/0001.meta", {"json": "y"}), ("b/v1.2", {"png": "z"})])[0][:60]
        "1 sample looks like a named field of another sample ('a/0001"
    """
    held = dict(groups)
    framed = _clip_frame_keys(groups)
    odd = [(k, base, members) for k, members in groups if "." in k
           for base, word in [k.rsplit(".", 1)] if base in held and _SIDECAR.fullmatch(word) and k not in framed]
    if not odd:
        return []
    k, base, members = odd[0]
    stem, name = base.rsplit("/", 1)[-1], k.rsplit(".", 1)[1]
    ext = sorted(members)[0]
    if rel_of is not None and "." in ext and field_of(ext) != "label":  # a named field's folder gave it
        path = rel_of(members[ext])
        folder, real = path.rpartition("/")[0], path.rpartition(".")[2]
        return [f"{len(odd)} sample{'s look' if len(odd) != 1 else ' looks'} like a named field of another sample "
                f"({k!r}, holding {', '.join(sorted(members))}, beside sample {base!r}): in a --column folder a "
                f"file's sample is its name without the extension (and without the folder's field name), so each is "
                f"a sample of its own. To make it part of {base!r}, name it {f'{folder}/{stem}.{real}'!r} (the "
                f"{field_of(ext)} file of that sample), or move it to a folder of its own and name that folder's "
                f"field: --column {_field_hint(name)}=FOLDER"]
    return [f"{len(odd)} sample{'s look' if len(odd) != 1 else ' looks'} like a named field of another sample "
            f"({k!r}, holding {', '.join(sorted(members))}, beside sample {base!r}): only '<stem>.<field>.npy' files "
            f"join their stem's sample, so each is a sample of its own. To make it part of {base!r}, save it as "
            f"'{stem}.{name}.npy' (an array field), or as '{stem}.{ext}' if that sample has no {field_of(ext)} file "
            f"(a sample holds one {field_of(ext)} file), or list the files in a manifest and map that column to a "
            f"field of its own: --column {_field_hint(name)}=COLUMN (members <key>.{_field_hint(name)}.{ext})"]


#: a sample named ``<base>.<digits>`` (``clip007.000`` of ``clip007.000.jpg``): a numbered frame of clip ``<base>``
_NUMBERED = re.compile(r"(.+)\.([0-9]+)")
#: a sample named ``<base>.<word><digits>`` (``A0.frame0`` of ``A0.frame0.jpg``, WebDataset's field ``frame0.jpg``
#: of sample ``A0``): a named frame of clip ``<base>``, grouped with it only beside a sample ``<base>`` of its own
#: (QA37 sign #4); never read as "alike" frames without one
_NAMED_FRAME = re.compile(r"(.+)\.([A-Za-z][A-Za-z_-]{0,31}[0-9]+)")
#: a clip's numbered image samples beside a sample ``<base>`` of its own (the clip's audio or subtitle text), this
#: many or more, read as a clip's frames and grouped (:func:`_frame_sequences`)
_FRAME_RUN = 2
#: without such a sample ``<base>``: numbered images are only warned of (never grouped) when their numbers are
#: zero-padded to one width of this many digits or more, in this many bases or more of ``_FRAME_ALONE`` images
#: each (``clip000.000.jpg`` ... ``clip001.000.jpg`` ...); ``cat/cat.0.jpg`` (Kaggle Dogs vs Cats), ``IMG.0001.jpg``
#: (one camera export), ``spk1.001.wav`` (speech), ``take1.1.wav``, ``v1.2.0.png`` are no clips (QA36 review F1/F2)
_FRAME_DIGITS, _FRAME_BASES, _FRAME_ALONE = 3, 2, 3
#: grouping clips leaving fewer split units than this (clips and other samples) could leave a split empty (the
#: split gives each split one group first, :func:`mmdata.shards.writer.split_grouped`): then no grouping, a warning
_FRAME_UNITS = 3  # train, val, test
#: the digits of a number ending a base that reads as a timestamp's whole seconds (a Unix time since 2001 has 10),
#: so ``.<digits>`` after it is the fraction (``frame_1701234567.990``), not a frame number
_STAMP_DIGITS = 9


def _is_frame(r: Record) -> bool:
    """A sample that may be a clip's frame: it holds an image and no audio or text."""
    kinds = {field_of(e.rpartition(".")[2].lower()) for e in r.members}
    return "image" in kinds and not kinds & {"audio", "text"}


def _frame_sequences(records: Sequence[Record]) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
    """Clips stored as numbered image files beside each other, one sample per frame: ``(clips, alike)``, each
    ``<base> -> [its records]``. ``clips``: the bases with ``_FRAME_RUN`` or more image samples ``<base>.<digits>``
    beside a sample ``<base>`` holding something other than an image (``cat0.000.jpg`` ... ``cat0.007.jpg`` beside
    ``cat0.wav``: the clip's audio, or a ``.txt`` of its subtitles; that sample first in the list): the reported
    video layout, grouped by clip. ``alike``: numbered images without such a sample that are very likely frames
    all the same (numbers zero-padded to one width of ``_FRAME_DIGITS`` digits or more, ``_FRAME_BASES`` bases or
    more of ``_FRAME_ALONE`` images each, named apart from their folders: ``clip0``, ``clip1``, not ``IMG`` in two
    folders; a base not named as its folder): warned of, never grouped. A file's
    sample is its name up to the last dot, so each frame is a sample of its own; WebDataset reads ``cat0.000.jpg``
    as field ``000.jpg`` of ``cat0``. Numbered audio or text (``spk1.001.wav``, ``take1.1.wav``), ``cat/cat.0.jpg``
    ... (Kaggle Dogs vs Cats), versioned names (``v1.2.0.png``) are neither. A base ending in a timestamp's whole
    seconds (``frame_1701234567``: a number of ``_STAMP_DIGITS`` digits or more after a separator) is left out:
    its ``.<digits>`` are the fraction (QA35 ROS stems), frames of a recording, not fields.

    Example:
        >>> rs = [Record(k, k, {"jpg": "x"}) for k in ("c/a.000", "c/a.001", "c/a.002", "v1.2.0", "v1.2.1",
        ...                                               "v1.2.2", "f_1701234567.1", "f_1701234567.2")]
        >>> rs.append(Record("c/a", "c/a", {"wav": "x"}))
        >>> clips, alike = _frame_sequences(rs)
        >>> {b: [r.source_key for r in v] for b, v in clips.items()}, alike
        ({'c/a': ['c/a', 'c/a.000', 'c/a.001', 'c/a.002']}, {})
    """
    by_base: dict[str, list[Record]] = {}
    numbers: dict[str, list[str]] = {}
    named: set[str] = set()  # bases holding a named frame (A0.frame0): grouped beside their clip, never "alike"
    for r in records:
        m = _NUMBERED.fullmatch(r.source_key) or _NAMED_FRAME.fullmatch(r.source_key)
        if m is not None and m.group(2).isascii():
            by_base.setdefault(m.group(1), []).append(r)
            numbers.setdefault(m.group(1), []).append(m.group(2))
            if not m.group(2).isdigit():
                named.add(m.group(1))
    if not by_base:
        return {}, {}
    own = {r.source_key: r for r in records}
    clips: dict[str, list[Record]] = {}
    alike: dict[str, list[Record]] = {}
    for base, numbered in by_base.items():
        if _STAMP_STEM.search(base) and len(base) - len(base.rstrip("0123456789")) >= _STAMP_DIGITS:
            continue
        if not all(map(_is_frame, numbered)):
            continue
        beside = own.get(base)
        if beside is not None and not _is_frame(beside) and any(
                field_of(e.rpartition(".")[2].lower()) != "image" for e in beside.members):
            if len(numbered) >= _FRAME_RUN or base in named:  # A0.frame0.jpg alone is still A0's frame
                clips[base] = [beside] + numbered
            continue
        if base in named:
            continue
        widths = {len(n) for n in numbers[base]}
        folder, _, stem = base.rpartition("/")
        if (len(numbered) >= _FRAME_ALONE and len(widths) == 1 and min(widths) >= _FRAME_DIGITS
                and any(n[0] == "0" for n in numbers[base]) and stem != folder.rpartition("/")[2]):
            alike[base] = numbered
    if len({b.rpartition("/")[2] for b in alike}) < _FRAME_BASES:  # beach/IMG.0001, city/IMG.0001: one camera's
        alike = {}
    return clips, alike


def _group_frames(records: Sequence[Record], clips: Mapping[str, list[Record]]) -> bool:
    """Give each clip's records the clip as :attr:`Record.group` (each clip to one split whole), unless that
    would leave fewer than ``_FRAME_UNITS`` split units (a clip, or another sample), where a split could come out
    empty (QA36 review F1: two clips made val and test empty). True when grouped."""
    grouped = sum(len(recs) for recs in clips.values())
    if len(clips) + len(records) - grouped < _FRAME_UNITS:
        return False
    for base, recs in clips.items():
        for r in recs:
            r.group = base
    return True


def _view_sets(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Samples that look like named fields of one stem, each a sample of its own: ``<base>.<word>`` samples (a word
    of :data:`_SIDECAR`: ``s0.left``, ``p0.back``, ``0001.meta``) beside a sample ``<base>`` of its own, or two or
    more view words of one base without it (a stereo pair ``s0.left.png`` / ``s0.right.png``, product views
    ``p0.front.jpg`` / ``p0.back.jpg``): ``<base> -> [its records]``, the base's own sample first. Samples already
    in a group (a clip's frames) are left out, and so is a lone dotted name (``img.v2.png``: its own sample, as
    before). A file's sample is its name up to the last dot, so a split drawn one by one would put the views of one
    scene in two splits (QA40 multiview #1); :func:`_group_frames` keeps each set in one split.

    Without a base sample, views are a few words that recur across stems (left / right under many scenes): a view
    word is one used under two stem names or more, and the words are no more than the stems using them.
    Ids are no views: ``img.a000.png`` .. ``img.a014.png`` (one stem name), ``Acer.negundo_0.png`` (each word one
    file's), else a class folder would be one group, in one split (QA40 review sources #1). A document's pages
    (``doc0.pg1`` / ``doc0.pg2``) are the pages warning's (:func:`_page_of`).

    Example:
        >>> rs = [Record(k, k, {"png": "x"}) for k in ("c/s0.left", "c/s0.right", "c/s1.left", "c/s1.right",
        ...                                            "c/img.v2", "c/t.0001", "c/img.a000", "c/img.a001")]
        >>> {b: [r.source_key for r in v] for b, v in _view_sets(rs).items()}
        {'c/s0': ['c/s0.left', 'c/s0.right'], 'c/s1': ['c/s1.left', 'c/s1.right']}
    """
    own = {r.source_key: r for r in records}
    by_base: dict[str, list[Record]] = {}
    for r in records:
        base, dot, word = r.source_key.rpartition(".")
        if dot and r.group is None and "/" not in word and base.rpartition("/")[2] and _SIDECAR.fullmatch(word):
            by_base.setdefault(base, []).append(r)
    out: dict[str, list[Record]] = {}
    stems_of: dict[str, set[str]] = {}  # a word without a base sample -> the stem names (no folder) it comes under
    for base, recs in by_base.items():
        beside = own.get(base)
        if beside is not None and beside.group is None:
            out[base] = [beside, *recs]
        elif beside is None and len(recs) >= 2:
            for r in recs:
                stems_of.setdefault(r.source_key.rpartition(".")[2], set()).add(base.rpartition("/")[2])
    words = {w for w, stems in stems_of.items() if len(stems) >= 2}
    bare = {b: rs for b, rs in by_base.items() if b not in out and len(rs) >= 2
            and sum(r.source_key.rpartition(".")[2] in words for r in rs) >= 2}
    if len(words) > len(bare):  # more words than stems: ids of files (img.a000 .. a014 under img, pic), no views
        return out
    for base, recs in bare.items():
        if not all(_page_of(r) is not None for r in recs):
            out[base] = recs
    return out


def _views_warning(views: Mapping[str, list[Record]], how: str) -> str | None:
    """One warning for the sets of :func:`_view_sets` that have no sample of their base (those beside one are
    named by :func:`_sidecar_warning`, which :func:`_views_kept` completes): an example, the counts, what
    happened to their splits (``how`` as :func:`_frame_sequence_warning`'s, or ``"split folders"``) and the fix."""
    bare = {b: rs for b, rs in views.items() if all(r.source_key != b for r in rs)}
    if not bare:
        return None
    base = min(bare)
    recs = sorted(bare[base], key=lambda r: r.source_key)
    words = [r.source_key.rpartition(".")[2] for r in recs]
    n = sum(map(len, bare.values()))
    folder, _, stem = base.rpartition("/")
    ext = sorted(recs[0].members)[0]
    shown = ", ".join(repr(r.source_key) for r in recs[:3]) + (", ..." if len(recs) > 3 else "")
    field = _field_hint(words[1])
    # a folder per view loses class folders (a --column folder's files are its field's, no class): no folder hint then
    folders = ("" if folder else f"; or move each view into a folder of its own named for it "
               f"({f'{words[0]}/{stem}.{ext}'!r}, {f'{words[1]}/{stem}.{ext}'!r}) and name the folders: "
               f"--column image={words[0]} --column {field}={words[1]}")
    return (f"{n} samples of {plural(len(bare), 'stem')} look like views or named fields of one sample, each a "
            f"sample of its own (e.g. {shown}: files {', '.join(repr(f'{stem}.{w}') for w in words[:3])} with no "
            f"sample {base!r} beside them): a file's sample is its name up to the last dot, so the views of one "
            f"stem are not paired.{_views_kept(how)} To shard each stem as one sample with its views as fields, "
            f"list them in a manifest, a row per stem (key, image: the {words[0]!r} file, a column per other view, "
            f"label) and shard it with --column {field}={words[1]} (members <key>.{field}.{ext}){folders}")


def _views_kept(how: str) -> str:
    """What happened to the splits of the view sets (:func:`_view_sets`), one sentence."""
    return {"grouped": " Each stem's samples were grouped by stem to be drawn into one split, so no view of a val or "
                       "test sample is trained on (with --split-from, the samples an earlier version holds keep its "
                       "splits instead: a warning then counts the groups that span several splits).",
            "folder": " Their split is their folder's (--group-by folder).",
            "split folders": " Their split is their split folder's.",
            "few": " They were not grouped by stem: so few stems would leave a split empty, so the views of one "
                   "stem may be in two splits."}[how]


#: a sample named ``<document><sep><page word><number>`` (``docA_p001``, ``docA_page2``, ``docA-p01``, ``docA.pg3``):
#: a page of document ``<document>`` (QA38 OCR #4); ``img_0001`` (no page word) is a sample of its own. A bare
#: ``p`` is a page only with 3 digits or more (``p001``) or a text beside it (``docA-p01.txt``): ``step_p1``,
#: ``subject_p01`` (a participant) are no pages (QA38 rev5 #6)
_PAGE = re.compile(r"(.+?[^/])[_\-. ](p|page|pg)[_\-]?([0-9]+)", re.IGNORECASE)


def _page_of(r: Record) -> str | None:
    """The document a sample is a page of (:data:`_PAGE`: ``docA_p001`` -> ``docA``), or None: a bare ``p`` only
    with 3 digits or more or a text member beside it (``s0.p1`` is no page: a view, :func:`_view_sets`)."""
    m = _PAGE.fullmatch(r.source_key)
    if (m is not None and m.group(3).isascii()
            and (m.group(2).lower() != "p" or len(m.group(3)) >= 3 or any(field_of(e) == "text" for e in r.members))):
        return m.group(1)
    return None


def _page_sequence_warning(records: Sequence[Record], named: Iterable[str] = ()) -> list[str]:
    """One warning when samples are the pages of documents, a sample per page (``forms/docA_p001.png``,
    ``forms/docA_p002.png``: a stem shared by two files or more that differ only in a trailing page number after
    ``p`` / ``page`` / ``pg``): the split draws each page on its own, so a document's pages may land in two splits
    (its text and layout trained on, then tested). Names the counts, an example and both ways to keep a document
    in one split. Plain numbered samples (``img_0001.png``) are no pages: not warned, nor the samples
    ``named`` (source keys the numbered-frames warning already names: one warning per file, QA38 rev5 #5).

    Example:
        >>> rs = [Record(k, k, {"png": "x"}) for k in ("f/a_p001", "f/a_p002", "f/img_0001", "f/step_p1", "f/step_p2")]
        >>> _page_sequence_warning(rs)[0][:40]
        '2 samples look like the pages of 1 docum'
    """
    named = set(named)
    docs: dict[str, list[str]] = {}
    for r in records:
        # a clip's frames: grouped, or named by the frames warning
        doc = _page_of(r) if r.group is None and r.source_key not in named else None
        if doc is not None:
            docs.setdefault(doc, []).append(r.source_key)
    docs = {d: keys for d, keys in docs.items() if len(keys) >= 2}
    if not docs:
        return []
    doc = min(docs)
    keys = sorted(docs[doc])
    n = sum(map(len, docs.values()))
    shown = ", ".join(repr(k) for k in keys[:3]) + (", ..." if len(keys) > 3 else "")
    leaf = doc.rpartition("/")[2]
    return [f"{n} samples look like the pages of {plural(len(docs), 'document')}, a sample per page (e.g. {shown} "
            f"of document {doc!r}): a split drawn from them (--split) draws each page on its own, so the pages "
            f"of one document may land in two splits (a test page whose document's other pages are trained on). To keep each document in one "
            f"split, move each document's pages into a folder of its own ({leaf + '/'!r}) and pass --group-by "
            f"folder, or list them in a manifest with a column naming each page's document (e.g. doc: {leaf!r}) "
            f"and pass --group-by doc"]


def _frame_sequence_warning(clips: Mapping[str, list[Record]], how: str) -> list[str]:
    """One warning naming the clips :func:`_frame_sequences` found (an example clip, its files, the counts) and
    the fix: a manifest, a row per clip, with a column per frame. ``how``: ``"grouped"`` (their samples were
    given the clip as :attr:`Record.group`, so each clip goes to one split whole: no frame of a test clip is
    trained on), ``"folder"`` (``--group-by folder`` gave the groups), ``"few"`` (too few clips to group without
    leaving a split empty), ``"alike"`` (numbered images with no clip's audio or text beside them: not grouped)."""
    if not clips:
        return []
    # the example: a clip of two frames or more where one is (the first clip may hold one)
    base, recs = next(((b, rs) for b, rs in clips.items() if sum(r.source_key != b for r in rs) >= _FRAME_RUN),
                      next(iter(clips.items())))
    numbered = [r for r in recs if r.source_key != base]
    n = sum(len(v) for v in clips.values())
    beside = [r for r in recs if r.source_key == base]
    shown = (f"{numbered[0].source_key!r}, {numbered[1].source_key!r}, ... {numbered[-1].source_key!r}"
             if len(numbered) > 3 else ", ".join(repr(r.source_key) for r in numbered))  # 3: all, none skipped
    also = f", beside sample {base!r} holding {', '.join(sorted(beside[0].members))}" if beside else ""
    stem = base.rsplit("/", 1)[-1]
    first = numbered[0].source_key.rsplit(".", 1)[1]
    word = first.rstrip("0123456789")  # 'frame' of A0.frame0 (a named frame), '' of clip.000
    kept = {"grouped": " Each clip's samples were kept in one split (grouped by clip), so that no frame of a val or "
                       "test clip is trained on.",
            "folder": " Their split is their folder's (--group-by folder).",
            "few": f" They were not grouped by clip: {plural(len(clips), 'clip')} would leave a split empty, so a "
                   f"clip's frames may be in two splits.",
            "alike": " They were not grouped (no sample of a clip's audio or text, named as the clip, beside them), "
                     "so a clip's frames may be in two splits; to keep each clip in one split, move each clip's "
                     "frames into a folder of its own and pass --group-by folder."}[how]
    look = "may be" if how == "alike" else "look like"
    audio = ("" if not beside else " nor its audio" if "audio" in _kinds(beside[0].members)
             else f" nor the clip's sample {base!r}")
    return [f"{n} samples of {plural(len(clips), 'clip')} {look} the numbered frames of a clip, each a sample of "
            f"its own (e.g. {shown}: {plural(len(numbered), 'file')} named {(base + '.' + word + '<number>')!r}{also}): a file's "
            f"sample is its name up to the last dot, so a frame is paired with neither the clip's other frames{audio}."
            f"{kept} To shard each clip as one sample, write a manifest, a row per clip (key, image: the "
            f"first frame, frame1, frame2, ...: the others, audio, label) and shard it with --column frame1=frame1 "
            f"--column frame2=frame2 ... (docs/interop.md, 'Audio-visual clips'); if the number is part of the "
            f"name (one image per file), join it with '_' ({f'{stem}_{first}'!r})"]


#: file types people keep beside their media that mmdata does not shard, with what to do instead
#: (:func:`other_type_reason`): generic texts (no file name), so a report counts them as one reason
_VIDEO_HINT = ("a video file (video is not decoded): extract its frames (e.g. ffmpeg -i clip.mp4 frames/clip_%03d.jpg) "
               "and its audio track (ffmpeg -i clip.mp4 clip.wav), then shard a manifest, a row per clip, with "
               "columns image (the first frame), frame1, frame2, ... (--column frame1=frame1 ...) and audio "
               "(docs/interop.md, 'Audio-visual clips')")
_SUBTITLE_HINT = ("subtitles (not read: their cue numbers and timing lines would become part of the caption): "
                  "convert them to a .txt of the same name holding the subtitle text alone, which becomes the "
                  "sample's text (e.g. tr -d '\\r' < clip.srt | grep -vE '^(WEBVTT.*|[0-9]+|)$|-->' > clip.txt)")
#: LRC timed lyrics: refused as subtitles are, with the conversion (not read with its tags stripped: an
#: enhanced LRC's <mm:ss> word tags, offsets and repeated-line tags make a silent strip easy to get wrong) (QA39 music #4)
_LRC_HINT = ("timed lyrics (LRC, not read: its [mm:ss.xx] time tags and [ar:] / [ti:] header lines would become part of "
             "the caption): convert it to a .txt of the same name holding the lyrics alone, which becomes the sample's "
             "text (e.g. tr -d '\\r' < song.lrc | sed -E '/^[[][a-z]+:/d; s/[[][0-9]+:[0-9.:]+[]]//g; s/<[0-9]+:[0-9.:]+>//g' "
             "> song.txt)")
_NPZ_HINT = ("a NumPy .npz archive (not read from a folder or manifest: np.savez may hold pickled objects): save "
             "each array as a .npy of its own, '<stem>.<name>.npy', an array field each (e.g. python -c \"import "
             "numpy as np; z = np.load('x.npz'); [np.save(f'x.{k}.npy', z[k]) for k in z.files]\")")
_CSV_HINT = ("a CSV / TSV table (no sample file): a manifest is sharded on its own (mmdata shard TABLE.csv OUT); "
             "a sensor window (a header, then a line per time step) is an array: save it as .npy, which becomes "
             "the sample's array field (e.g. python -c \"import numpy as np, pandas as pd; np.save('w0.npy', "
             "pd.read_csv('w0.csv').to_numpy('float32'))\")")
_XML_HINT = ("an XML / hOCR file (not parsed: hOCR, ALTO, PAGE-XML OCR ground truth, Pascal VOC boxes): to keep it with "
             "its page, as written, copy it to a .txt in a folder of its own (alto/<stem>.txt) and shard a paired layout, "
             "--column image=PAGES_FOLDER --column alto=alto (the member <key>.alto.txt, read back as the field "
             "'alto.txt'), or name the .txt copies in a manifest column read with --column alto=alto; or convert its "
             "word boxes to <stem>.json beside the page (the sample's json field; docs/bad-input-shard.md, 'OCR "
             "sidecars')")
_OTHER_TYPES: dict[str, str] = {
    **dict.fromkeys(("xml", "hocr"), _XML_HINT),
    **dict.fromkeys(("mp4", "mkv", "avi", "webm", "mov", "m4v", "mpg", "mpeg", "wmv", "flv", "3gp"), _VIDEO_HINT),
    **dict.fromkeys(("srt", "vtt", "ass", "ssa"), _SUBTITLE_HINT),
    "lrc": _LRC_HINT,
    "npz": _NPZ_HINT,
    **dict.fromkeys(("csv", "tsv"), _CSV_HINT),
}


def other_type_reason(name: str) -> str | None:
    """Why a file of a common type mmdata does not shard (video, subtitles, ``.npz``, a CSV table) is left out,
    with what to do instead; None for any other name. For the "unknown file type" of a folder's file and the
    "no known media extension" of a manifest's cell (QA36 video #6, timeseries #7).

    Example:
        >>> other_type_reason("c/k.MP4")[:37], other_type_reason("k.srt")[:10], other_type_reason("notes.zip")
        ('a video file (video is not decoded): ', 'subtitles ', None)
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return _OTHER_TYPES.get(ext.lower()) if dot and stem else None


def discover_folder(root: str | Path, labels_from_folders: bool | None = None, label_names: list[str] | None = None,
                    *, label_names_from: str | None = None, on_error: str = "skip",
                    exclude: str | Path | None = None, columns: Mapping[str, str] | None = None,
                    on_files: Callable[[int], None] | None = None, group_by_folder: bool = False) -> Discovered:
    """Records from a folder (files sharing a stem in one directory form a sample).

    One walk, no ``stat`` per file (sizes come from the read when the shard is written), label
    files read in one batch. Links are followed, but a folder is walked once: a link into the
    source, to a folder holding the source or the link, or a loop is reported, not followed; files
    reached through links leading outside the source are kept, with one warning. Two files of one
    field for a stem (``a.jpg`` + ``a.png``, or ``café.png`` in NFC and NFD): the first by name is kept
    and the other reported (or raised with ``on_error="raise"``).

    Args:
        root: the source folder.
        labels_from_folders: force (or forbid) the folder-per-class layout; default auto-detect.
        label_names: declared class names (else ``labels.json`` / ``labels.txt`` at the root, else
            the class folders).
        label_names_from: where ``label_names`` came from, for messages and the card.
        on_error: ``"skip"`` (report bad files) or ``"raise"``.
        exclude: a folder not to walk (the job's output, when it lies inside the source).
        columns: a paired layout, ``{field: folder}`` (``--column image=JPEGImages --column
            seg=SegmentationClass``): each folder is a field, not a class, and a file's sample is its path
            inside its folder without the extension, so ``JPEGImages/2007_000032.jpg`` and
            ``SegmentationClass/2007_000032.png`` are the image and the member ``2007_000032.seg.png`` of
            one sample (:func:`fields_from_folders`). In a named field's folder every file is that field: a
            ``.npy``'s sample is its whole stem (``imu/frame_1701234567.990.npy`` is the member ``imu.npy`` of
            sample ``frame_1701234567.990``), and the field's name ending a file's stem, in any case and for any
            type, is no part of it (``imu/<stem>.IMU.npy``, ``depth/<stem>.depth.png`` are ``<stem>``'s). Folders
            not named are not walked (listed as skipped).
        on_files: called with the number of files listed so far after each folder (a progress bar's count).
        group_by_folder: ``--group-by folder``: a sample's group is its first folder below the split and
            class folders (``Patients/<patient>/scan.png``, ``<class>/<patient>/scan.png``), so each such
            folder goes to one split (:func:`_folder_groups`). Without it, many folders of a handful of samples
            each are warned about (:func:`_folders_like_groups`): patients or speakers read as classes.

    Returns:
        A :class:`Discovered` with the records sorted by key.
    """
    root_s = os.fspath(root)
    if not os.path.isdir(root_s):
        raise SourceError(f"source {root} is not a folder or a manifest ({', '.join(MANIFEST_SUFFIXES)})")
    if is_dataset_folder(root_s):
        raise SourceError(f"source {root} is an mmdata dataset folder (it holds {' + '.join(DATASET_FILES)}, the "
                          f"output of `mmdata shard`), not raw data: shard the raw folder it was made from, or read "
                          f"it with mmdata.open_dataset")
    walk = _Walk(root_s, on_error, os.path.realpath(exclude) if exclude is not None else None)
    return walk_folder(walk, labels_from_folders, label_names, label_names_from=label_names_from, on_error=on_error,
                       columns=columns, on_files=on_files, group_by_folder=group_by_folder)


def walk_folder(walk: Any, labels_from_folders: bool | None = None, label_names: list[str] | None = None, *,
                label_names_from: str | None = None, on_error: str = "skip",
                columns: Mapping[str, str] | None = None, on_files: Callable[[int], None] | None = None,
                group_by_folder: bool = False) -> Discovered:
    """:func:`discover_folder`'s rules over a walk: a local folder's, or the listing of a folder at an
    fsspec URL (:class:`mmdata.shards.remote_source.RemoteWalk`); the same files give the same records,
    class names and skip reports, in the same order. ``group_by_folder`` (``--group-by folder``): each
    record's :attr:`Record.group` is its folder (:func:`_folder_groups`)."""
    root_s, sep = walk.root, walk.sep
    cut = len(root_s) + 1
    shown_src = getattr(walk, "shown", None) or printable(root_s)  # a remote folder: its URL
    where = f"source {shown_src}"
    said_classes = labels_from_folders is True  # --labels-from-folders: the folders are classes, as the user says
    cols = folder_columns(columns, where)
    if cols:
        if labels_from_folders:
            raise SourceError(f"{where}: --labels-from-folders and --column FIELD=FOLDER: with --column the folders "
                              f"are fields of one sample, not classes; give labels as label files (<name>.cls beside "
                              f"the files) or leave one of the two options out")
        labels_from_folders = False
    group_col: list[tuple[int, str]] = []  # with cols: per group, (its column folder's prefix length, the field)
    entered: set[str] = set()
    root_dirs: list[str] = []

    def rel_of(path: str) -> str:  # every path below is root_s + sep + ...
        return printable(path[cut:])

    found_groups: list[tuple[str, dict[str, str]]] = []  # (source key, {ext: path}) in walk order
    top_dirs: list[str] = []
    top_files: list[str] = []  # the sample files at the root (they turn the class-folder layout off)
    below: dict[str, tuple[list[str], list[str]]] = {}  # top folder -> its folders and sample files
    names_file: str | None = None
    has_label_files = False
    stack = [(root_s, "")]
    listed = 0  # files listed so far (on_files: a progress bar's live count)
    stamp_fields: list[tuple[str, str]] = []  # (sample, file) of an all-digit array field left as a field
    stamp_splits: list[tuple[str, str, int]] = []  # (stem, first file, arrays) read as one sample per array
    while stack:
        folder, rel = stack.pop()
        files, dirs = walk.list(folder, rel)
        if on_files is not None:
            listed += len(files)
            on_files(listed)
        if any(is_hidden_folder(d) for d in dirs):  # a walk at a URL lists them (a local one reports them)
            walk.skipped.extend(skip_entry(printable(rel + d), "folder", hidden_folder_reason(d)) for d in dirs
                                if is_hidden_folder(d))
            dirs = [d for d in dirs if not is_hidden_folder(d)]
        prefix = folder + sep
        inside = None
        if cols:
            if not rel:
                root_dirs = dirs
            inside = _column_at(rel, cols)
            if inside is None:  # above or beside the column folders: walk only towards them
                dirs = _towards_columns(walk, rel, dirs, files, cols)
            elif rel.count("/") == inside[0].count("/") + 1:
                entered.add(inside[0])
        stack.extend((prefix + d, rel + d + "/") for d in reversed(dirs))
        if inside is None and cols:
            names_file = names_file if rel else _names_file(files)
            continue
        n_groups = len(found_groups)
        if not rel:
            top_dirs = dirs
            names_file = _names_file(files)
            if names_file is not None:
                files.remove(names_file)
            # only a sample at the root turns the class-folder layout off: a README, a .DS_Store
            # or notes.zip beside the class folders is listed as skipped, not a sample
            top_files = [fn for fn in files if not fn.startswith(".") and split_name(fn) is not None]
        elif rel.count("/") == 1:  # a top folder: the class folders below split folders (train/cat/)
            below[rel[:-1]] = (dirs, [fn for fn in files if not fn.startswith(".") and split_name(fn) is not None])
        parts = [fn.rpartition(".") for fn in files]
        exts = {p[2] for p in parts}
        stems = [p[0] for p in parts]  # "" when the name has no dot (or starts with the only one)
        joined = "/".join(stems)
        has_label_files = has_label_files or not {e.lower() for e in exts}.isdisjoint(LABEL_EXTS)
        if (exts <= _PLAIN_EXTS and "" not in stems and "." not in joined and _one_field_each(exts)
                and (joined.isascii() or (printable(joined) == joined and unicodedata.is_normalized("NFC", joined)))):
            # the common case, in bulk: known lower-case extensions, one per field, stems without dots,
            # valid UTF-8 in NFC. The files of one stem are then adjacent in sorted order.
            found_groups.extend(
                (rel + stem, {ext: f"{prefix}{stem}.{ext}" for _, _, ext in group})
                for stem, group in groupby(parts, itemgetter(0)))
            if inside is not None:
                group_col.extend([_column_cut(rel, inside)] * (len(found_groups) - n_groups))
            continue
        # samples by the NFC form of their stem (copies made on macOS and on Linux mix NFD and NFC names);
        # a sample is named by the stem of its first file by name, so names in one form keep their keys
        groups: dict[str, tuple[str, dict[str, str]]] = {}  # NFC stem -> (stem, {ext: path})
        first_of: dict[tuple[str, str], tuple[str, str]] = {}  # (NFC stem, field) -> the file kept, its stem
        # a named field's folder (--column imu=imu): each file IS that field, so imu/<stem>.npy is sample <stem>
        own_field = inside[1] if inside is not None and inside[1] not in STANDARD_FIELD_EXTS else None
        stamped: list[str] = []  # NFC stems holding a '<digits>.npy' member (a timestamp's fraction, QA35 #7b)
        for fn in files:
            if fn[:2] == "._":
                walk.bad(printable(rel + fn), "file", APPLEDOUBLE, data=False)
                continue
            if fn.lower() in OS_METADATA:
                walk.bad(printable(rel + fn), "file", OS_METADATA[fn.lower()], data=False)
                continue
            named = split_name(fn)
            if named is None:
                other = other_type_reason(fn)
                walk.bad(printable(rel + fn), "file", dvc_reason(fn) or unsupported_reason(fn)
                         or (f"unknown file type, {other}" if other else "unknown file type "
                             "(mmdata shards images, audio, text, labels, .json and .npy files)"), data=False)
                continue
            stem, ext = named
            if own_field is not None:  # depth/x.depth.png, imu/x.IMU.npy: the field's own name is no part of the stem
                dot = fn.rfind(".")
                own = fn
                if fn[:dot].lower().endswith("." + own_field.lower()):
                    own = fn[:dot - len(own_field) - 1] + fn[dot:]
                    stem, ext = split_name(own) or named
                if ext != "npy" and ext[-4:] == ".npy":  # imu/<stem>.990.npy: the whole stem's, dots and all
                    stem, ext = own[:own.rfind(".")], "npy"
            elif ext != "npy" and ext[-4:] == ".npy":
                if stamp_field(ext):
                    stamped.append(stem if stem.isascii() else unicodedata.normalize("NFC", stem))
            norm = stem if stem.isascii() else unicodedata.normalize("NFC", stem)
            fieldname = field_of(ext)
            kept, kept_stem = first_of.setdefault((norm, fieldname), (fn, stem))
            if kept != fn:
                sample = printable(rel + groups[norm][0])
                kept_shown, fn_shown, alike = names_apart(kept, fn)
                if on_error == "raise":
                    a, b, _ = names_apart(rel + kept, rel + fn)
                    raise SourceError(f"{a} and {b}: two {fieldname} files for sample {sample!r}; a sample holds one "
                                      f"file per modality — rename or remove one")
                if alike:  # ", left out <fn>" below names this file already
                    this = ""
                elif kept_stem != stem:  # depth/x.depth.png and depth/x.png have one stem
                    this = " (the two names are in different Unicode forms, NFC and NFD)"
                else:
                    this = ""
                walk.bad(printable(rel + fn), "member", f"a second {fieldname} file for sample {sample!r}: kept "
                         f"{kept_shown} (the first by name){this}, left out {fn_shown}; a sample holds one file per "
                         f"modality: to keep {fn_shown} instead, move {kept_shown} (and its like) out of the folder; to "
                         f"keep both, shard a manifest naming the other in a column of its own (--column "
                         f"{fieldname}2=COLUMN: field {fieldname}2)", sample)
                continue
            group = groups.get(norm)
            if group is None:
                group = groups[norm] = (stem, {})
            group[1][ext] = prefix + fn  # str: a Path per file costs ~10 us
        if stamped:
            fields_left, stems_split = _join_stamped_arrays(groups, stamped, rel)
            stamp_fields += fields_left
            stamp_splits += stems_split
        found_groups.extend((rel + stem, members) for stem, members in groups.values())
        if inside is not None:
            group_col.extend([_column_cut(rel, inside)] * (len(found_groups) - n_groups))
    warnings = _stamp_field_warning(stamp_fields, stamp_splits)
    if cols:
        missing = [(f, c) for c, f in cols.items() if c not in entered]
        if missing:
            f, c = missing[0]
            shown = ", ".join(f"{printable(d)}/" for d in root_dirs[:12]) + (", ..." if len(root_dirs) > 12 else "")
            why = next((e["reason"] for e in walk.skipped if e["what"] == "folder" and _nfc(e["source"]) == c), None)
            if why is not None:  # a link into the source, a hidden folder, an earlier output: not walked
                raise SourceError(f"{where}: --column {f}={c}: the folder {c!r} is not walked: {why}; name the "
                                  f"folder it leads to, or the folder itself")
            raise SourceError(f"{where}: --column {f}={c}: no folder {c!r} in the source (its folders: "
                              f"{shown or 'none'}); FOLDER is a path inside the source, e.g. --column image=images")
        found_groups, paired = fields_from_folders(found_groups, group_col, walk, on_error, rel_of, cols)
        warnings += paired
    if not "".join([k for k, _ in found_groups]).isascii():
        found_groups, joined = _join_folder_forms(found_groups, walk, on_error)
        warnings += joined
    all_ascii = "".join([k for k, _ in found_groups]).isascii()
    odd = [] if all_ascii else [k for k, _ in found_groups if printable(k) != k]
    if odd:
        fs = sys.getfilesystemencoding()
        why = ("" if fs.replace("-", "").lower() == "utf8" else
               f" — or Python reads file names as {fs}, not UTF-8 (a C locale with PYTHONUTF8=0): run with PYTHONUTF8=1 "
               "so that UTF-8 names keep their characters and keys (the mmdata command does this itself)")
        warnings.append(f"{len(odd)} sample name{'s are' if len(odd) != 1 else ' is'} not valid UTF-8; source_key "
                        f"keeps the odd bytes as \\x escapes (e.g. {printable(odd[0])!r}){why}")
    warnings += walk.link_warnings()
    side_at = len(warnings)  # the sidecar warning's place: the view sets' splits complete it (_views_kept)
    warnings += _sidecar_warning(found_groups, rel_of if cols else None)
    sidecar = len(warnings) > side_at
    warnings += _backslash_warning([k for k, _ in found_groups])
    # class names: given, else a names file at the root, else the class folders
    names, names_from = (list(label_names), label_names_from or "--labels") if label_names else (None, None)
    if names is None and names_file is not None:
        names, names_from = walk.read_names(names_file), names_file
    # top folders named for splits (train/, test/): they give the split; the class folders are one level down
    split_of = {} if cols else _split_folders(top_dirs, names)
    depth = 1 if split_of else 0
    cls_dirs, cls_files = top_dirs, top_files
    if split_of:
        cls_dirs = sorted({d for t in split_of for d in below.get(t, ([], []))[0]})
        cls_files = [f"{t}/{f}" for t in split_of for f in below.get(t, ([], []))[1]]
        if labels_from_folders and not cls_dirs:
            raise SourceError(f"{where}: --labels-from-folders: the top folders {_shown_dirs(list(split_of))} are "
                              f"named for splits and hold no class folders (train/cat/...): give labels as label "
                              f"files (<name>.cls beside the files), or leave --labels-from-folders out")

    def inner(source_key: str) -> str | None:  # the path below the split folder (None: a sample at the root)
        if not depth:
            return source_key
        top, sep, rest = source_key.partition("/")
        return rest if sep else None

    # class-folder layout: sub-folders at the top (below the split folders) and no sample beside them, and no
    # label files anywhere
    looks_like_class_folders = bool(cls_dirs) and not cls_files
    mixed = labels_from_folders is None and looks_like_class_folders and has_label_files
    flat_by_root = labels_from_folders is None and bool(cls_dirs) and bool(cls_files)
    if labels_from_folders is None:
        labels_from_folders = looks_like_class_folders and not has_label_files
    labels: list[int | None] = [None] * len(found_groups)
    label_files: dict[int, str] = {}  # group index -> its label file
    for i, (_, found) in enumerate(found_groups if has_label_files else ()):
        lab = found.pop("cls", None)  # the usual label extension first: one lookup per sample
        if lab is None:
            lab = next((found.pop(e) for e in LABEL_EXTS if e in found), None)
        if lab is not None:
            label_files[i] = lab
    class_of: dict[str, int] = {}  # class folder -> class id
    if labels_from_folders:
        # one class per name up to its Unicode form (NFC / NFD), an NFD name named and sorted by its NFC form: the
        # folders written on macOS (NFD) and on Linux (NFC) give the same names and ids (QA28 i18n #3: NFD 'école'
        # sorted before 'fleur', NFC after it, so a model trained on one build swapped the classes of the other);
        # other names as written (compatibility characters keep theirs: _composed)
        form_of = _folder_forms(cls_dirs)
        if names is None:
            names, names_from = _folder_class_names(form_of), "folders"
            _refuse_odd_folders(names, where)
        class_ids = {_nfc(c): i for i, c in enumerate(names)}
        missing = [d for d in cls_dirs if _nfc(d) not in class_ids]
        if missing:
            raise SourceError(f"class folders {missing} are not among the declared class names "
                              f"({_names_hint(names, names_from)}); add them there or move the folders out")
        class_of = {d: class_ids[_nfc(d)] for d in cls_dirs}
        warnings += _class_folder_warnings(form_of, class_ids)
        if depth:  # train/cat/x: the folder below the split folder
            labels = [class_of.get(parts[1]) if len(parts) == 3 else None
                      for parts in (source_key.split("/", 2) for source_key, _ in found_groups)]
        else:
            labels = [class_of.get(source_key.split("/", 1)[0]) for source_key, _ in found_groups]
        for i, path in label_files.items():
            walk.skipped.append(skip_entry(rel_of(path), "member", "label file ignored: labels come from the class "
                                                                   "folders", printable(found_groups[i][0])))
    elif label_files:
        datas, _ = walk.read(list(label_files.values()))
        if names is None and cls_dirs:
            names = _names_from_folders(datas, cls_dirs)
            names_from = "folders" if names is not None else None
            if names is not None:  # class names from the folders: the same rule (QA39 review sources #5)
                _refuse_odd_folders(names, where)
        parsed: dict[bytes, int | str] = {}  # label files repeat a few contents: parse each once
        for (i, path), data in zip(label_files.items(), datas):
            if data.__class__ is not bytes:
                walk.bad(rel_of(path), "member", read_error(data, -1, None), printable(found_groups[i][0]))
                continue
            label = _parsed_label(parsed, data, names, names_from)
            if label.__class__ is str:
                walk.bad(rel_of(path), "member", label, printable(found_groups[i][0]))
            else:
                labels[i] = label
    records = []
    for i, ((source_key, found), label) in enumerate(zip(found_groups, labels)):
        if not found:  # a label file and nothing else: there is no sample to label
            if i in label_files:
                walk.skipped.append(skip_entry(rel_of(label_files[i]), "file", "a label file without any media file "
                                                                               "of the same name"))
            continue
        # the key from the bytes of the name's NFC form: 'a\xffb' (byte 0xff) and a file named 'a\\xffb'
        # print alike but are two keys; café in NFC and as a copy from macOS (NFD) is one key, so the same
        # names give the same keys, splits and augmentation draws in either form
        split = split_of.get(source_key.split("/", 1)[0]) if depth and "/" in source_key else None
        records.append(Record(safe_key(_nfc(source_key)), source_key if all_ascii else printable(source_key), found, label,
                              split))
    if mixed:
        unlabelled = sum(1 for r in records if r.label is None)
        if unlabelled:
            warnings.append(_mixed_labels_warning(cls_dirs, len(label_files), unlabelled, len(records)))
    annotations = [r.source_key for r in records if "/" not in r.source_key and list(r.members) == ["json"]]
    if annotations and len(annotations) < len(records):
        n = len(annotations)
        warnings.append(f"{n} file{'s' * (n != 1)} at the root of the source {'are samples' if n != 1 else 'is a sample'} "
                        f"holding only a .json member ({', '.join(repr(a + '.json') for a in annotations[:3])}"
                        f"{', ...' if n > 3 else ''}): if {'they are' if n != 1 else 'it is'} an annotation file (COCO's "
                        f"captions / instances, a metadata table), {'they are' if n != 1 else 'it is'} no sample — write "
                        f"a manifest from {'them' if n != 1 else 'it'} (a row per image or caption: image, text, label "
                        f"columns) and shard that")
    if flat_by_root:
        placed = [(r, k) for r in records if (k := inner(r.source_key)) is not None]
        in_folders = [r for r, k in placed if "/" in k]
        unlabelled = sum(1 for r in in_folders if r.label is None)
        # one folder beside root samples is a flat tree (it would be one class): only two or more
        # folders of samples read as classes that the root samples turned off
        if unlabelled and len({k.split("/", 1)[0] for _, k in placed if "/" in k}) > 1:
            at_root = [r.source_key for r, k in placed if "/" not in k]
            place = f"directly in the split folders ({_shown_dirs(list(split_of))})" if depth else ""
            warnings.append(_root_files_warning(cls_dirs, at_root, cls_files, unlabelled, len(in_folders), place))
    if not cols:
        warnings += _nested_paired_warnings(records)
    if class_of:
        paired = None if depth else _paired_layout_warning(records, top_dirs)  # below split folders: nested's
        if paired:
            warnings.append(paired)
        per_item = None if paired or depth else _folder_per_item_warning(records, top_dirs)
        if per_item:
            warnings.append(per_item)
        used = {r.label for r in records}
        empty = [d for d in cls_dirs if class_of[d] not in used]
        if empty:
            shown = ", ".join(f"{printable(d)}/" for d in empty[:8]) + (", ..." if len(empty) > 8 else "")
            ids = ", ".join(str(class_of[d]) for d in empty[:8]) + (", ..." if len(empty) > 8 else "")
            one = len(empty) == 1
            warnings.append(f"class folder{'s' * (not one)} {shown} hold{'s' * one} no sample: class{'es' * (not one)} "
                            f"{ids} keep{'s' * one} {'its id' if one else 'their ids'} (so the ids of the others stay "
                            f"as they are) but {'has' if one else 'have'} no example; add samples or remove the "
                            f"folder{'s' * (not one)}")
    if not cols and not any("folder per item" in w or "paired layout" in w for w in warnings):
        per_item = _item_folders_warning(records)
        if per_item:
            warnings.append(per_item)
    if split_of:
        warnings += _untrained_class_warnings(records, names, split_of)
    elif class_of:
        warnings += _split_named_class_warnings(top_dirs)
    warnings += _case_key_warnings(records)
    warnings += _key_name_warnings(records)
    clips, alike = _frame_sequences(records)
    framed = [r.source_key for rs in alike.values() for r in rs]  # the frames warned of: no pages warning too
    if clips:  # a clip's frames in one split: near-copies of each other (QA36 video #1); --group-by wins
        how = "folder" if group_by_folder else "grouped" if _group_frames(records, clips) else "few"
        if _clip_like(clips):  # else one named image per sample: the sidecar warning said it (QA37 review #2)
            warnings += _frame_sequence_warning(clips, how)
            framed += [r.source_key for rs in clips.values() for r in rs]
    warnings += _frame_sequence_warning(alike, "alike")
    views = _view_sets(records)
    if views:  # views of one stem (s0.left.png, s0.right.png) in one split, as a clip's frames (QA40 multiview #1)
        how = ("folder" if group_by_folder else "split folders" if split_of
               else "grouped" if _group_frames(records, views) else "few")
        if sidecar and any(r.source_key == b for b, rs in views.items() for r in rs):
            warnings[side_at] = warnings[side_at].rstrip(".") + "." + _views_kept(how)  # a sentence of its own
        said = _views_warning(views, how)
        if said:
            warnings.append(said)
        framed += [r.source_key for rs in views.values() for r in rs]
    if not group_by_folder and not split_of:  # a folder per document, or the user's splits: no page is split off
        warnings += _page_sequence_warning(records, framed)
    if group_by_folder:
        _folder_groups(records, bool(split_of), bool(class_of))
        if class_of and not said_classes:
            warnings += _class_groups_warning(records, shown_src)
    elif not cols:
        warnings += _folders_like_groups(records, bool(split_of), bool(class_of), shown_src, said_classes)
    return Discovered(_finish(records), names, names_from, walk.skipped, warnings, root_s, split_folders=split_of)


#: ``--group-by folder`` (``group_by="folder"``) for a folder source: each sample's group is its folder
FOLDER_GROUP = "folder"
#: folders with id-like names (:func:`_id_like`), this many or more, holding this many samples or fewer at the
#: median, look like a folder per patient / speaker rather than per class (:func:`_folders_like_groups`)
_GROUP_LIKE_FOLDERS, _GROUP_LIKE_MEDIAN = 8, 10
#: a folder name that reads as an id: a word for a person or a recording, then a number (``Patient_12``,
#: ``sub-01``, ``spk03``, ``P007``, ``case 4``)
_ID_NAME = re.compile(r"(?:p|pt|pat|patient|s|sub|subj|subject|sbj|spk|speaker|id|case|participant|person|user|"
                      r"u|volunteer|donor|mouse|rat|animal|child|sess|session|rec|recording|visit|study|series|"
                      r"mrn|ind|individual)[-_ ]?\d+", re.IGNORECASE)


def _id_like(name: str) -> bool:
    """Whether a folder's name reads as a patient's or speaker's id rather than a class name: ``P007``,
    ``sub-01``, ``spk03``, ``001``, ``103`` (digits, zero-padded or three or more), or a long code of four
    digits or two numbers (``TCGA-02-0001``); not ``cat``, ``class003`` or MNIST's ``0`` .. ``9``.

    Example:
        >>> [_id_like(n) for n in ("P007", "sub-01", "001", "103", "7", "class003", "cat", "TCGA-02-0001")]
        [True, True, True, True, False, False, False, True]
    """
    if name.isdigit():
        return len(name) >= 3 or (len(name) > 1 and name[0] == "0")
    if _ID_NAME.fullmatch(name):
        return True
    return len(name) >= 6 and (sum(c.isdigit() for c in name) >= 4 or len(re.findall(r"\d+", name)) >= 2)


def _folder_of(source_key: str, below_split: bool, below_class: bool) -> str | None:
    """The folder a folder source's sample is grouped by, as its path below the split folder (``train/``): the
    first folder below the class folder (``benign/001``, so ``malignant/001`` is another), or, for a sample held
    by its class folder itself, that folder (``P00``: a folder per patient read as a class); None for a sample
    with no folder there."""
    parts = source_key.split("/")[:-1]
    parts = parts[int(below_split):]
    return "/".join(parts[:int(below_class) + 1]) or None


def _folder_groups(records: list[Record], below_split: bool, below_class: bool) -> None:
    """Set each record's group to its folder (:func:`_folder_of`): ``Patients/<patient>/scan.png`` groups by
    patient (read as classes or not), ``<class>/<patient>/scan.png`` by ``<class>/<patient>``, LibriSpeech's
    ``<speaker>/<chapter>/x.flac`` by ``<speaker>`` with ``--no-labels-from-folders`` (by ``<speaker>/<chapter>``
    when the speakers are classes); a sample with no folder (at the root) is a group of its own."""
    for r in records:
        r.group = _folder_of(r.source_key, below_split, below_class)


def _class_groups_warning(records: list[Record], src: str) -> list[str]:
    """``--group-by folder`` over folders read as classes (by default) that hold the files themselves: each
    folder is one group, so each class lands in one split; said, with the remedy for patient folders."""
    held = sorted({r.group for r in records if r.group is not None and "/" not in r.group})
    if not held:
        return []
    shown = ", ".join(f"{printable(d)}/" for d in held[:3]) + (", ..." if len(held) > 3 else "")
    return [f"source {src}: --group-by folder: {plural(len(held), 'folder')} read as classes ({shown}) hold "
            f"{'their' if len(held) != 1 else 'its'} files directly, so each is one group and each class is in "
            f"one split only; if they are patients or speakers rather than classes, pass --no-labels-from-folders "
            f"(labels then come from <name>.cls files); pass --labels-from-folders to say they are classes"]


def _folders_like_groups(records: list[Record], below_split: bool, below_class: bool, src: str,
                         said_classes: bool = False) -> list[str]:
    """A warning when a folder source's folders look like a folder per patient / speaker rather than per class:
    8 or more with id-like names (:func:`_id_like`), a handful of samples each (QA42 clinical #7:
    ``Patients/<patient>/`` became a class per patient, and every patient landed in every split without a word).
    The first folders are looked at (not when ``--labels-from-folders`` says they are classes), and with class
    folders the folders below them (``<class>/<patient>/``).
    Split by fractions, their samples are drawn one by one, so one patient's scans land in train and in test."""
    for level, below in ((0, False), (1, True)):
        if below and not below_class:
            break
        if not below and said_classes:
            continue
        counts = Counter(f for r in records if (f := _folder_of(r.source_key, below_split, below)) is not None
                         and f.count("/") == level)
        if len(counts) < _GROUP_LIKE_FOLDERS:
            continue
        median = sorted(counts.values())[len(counts) // 2]
        ids = sum(_id_like(f.rpartition("/")[2]) for f in counts)
        if median > _GROUP_LIKE_MEDIAN or ids < 0.8 * len(counts):
            continue
        shown = ", ".join(f"{printable(d)}/" for d in sorted(counts)[:3])
        read = ("below the class folders" if below else
                "read as classes" if below_class else "read as folders of unlabelled samples")
        fix = ("(with --no-labels-from-folders when they are no classes: labels then come from <name>.cls "
               "files; --labels-from-folders says they are classes and silences this)" if below_class and not below
               else "")
        return [f"source {src}: its {len(counts)} folders {shown}, ... ({read}) have id-like names and hold {median} "
                f"samples each at the median: a folder per patient or speaker (recording session)? "
                f"{_SPLIT_ONE_BY_ONE} Pass --group-by folder (group_by='folder') to keep each folder in one split "
                f"{fix}{' ' if fix else ''}or shard a manifest with a group column and --group-by COLUMN "
                f"(docs/bad-input-shard.md, 'A folder per patient')"]
    return []


#: the sentence of the patient-folder warning about splitting, and what it says without ``--split``
#: (:func:`check_split_folders`)
_SPLIT_ONE_BY_ONE = ("Split by fractions (--split), their samples are drawn one by one, so one patient's samples "
                     "land in train and in test.")
_NOT_SPLIT = "No --split is given, so every sample is in one split; before splitting it:"


def _backslash_warning(keys: Sequence[str]) -> list[str]:
    """A warning for samples whose file names hold a backslash (``cat\\0.png``): a zip made on Windows, unpacked by
    a tool that kept its ``\\`` separators as characters, so the files sit in one folder and no class folder is
    read."""
    odd = [k for k in keys if "\\" in k]
    if not odd:
        return []
    n, shown = len(odd), ", ".join(f"'{printable(k)}'" for k in odd[:3]) + (", ..." if len(odd) > 3 else "")
    return [f"{plural(n, 'sample')} {'have' if n != 1 else 'has'} files with a backslash in their names ({shown}): "
            f"a zip made on Windows, unpacked by a tool that kept its '\\' separators as "
            f"characters? They are sharded as named, not as files in folders (no class folders are read from them); "
            f"extract the zip again with `unzip` (it makes the folders), or rename the files (e.g. "
            f"`for f in *\\\\*; do mkdir -p \"$(dirname \"${{f//\\\\//}}\")\" && mv \"$f\" \"${{f//\\\\//}}\"; done`)"]


def _shown_dirs(dirs: Sequence[str], k: int = 4) -> str:
    return ", ".join(f"{printable(d)}/" for d in dirs[:k]) + (", ..." if len(dirs) > k else "")


def _split_folders(top_dirs: Sequence[str], names: Sequence[str] | None) -> dict[str, str]:
    """The split each top folder gives when every one is named for a split (:func:`split_word`: ``train/``,
    ``TEST/``, ``Validation/``, ``dev/``), as Hugging Face's audiofolder / imagefolder read them; else none.
    Declared class names that name every top folder keep them classes (classes really called train / test)."""
    splits = {d: split_word(_nfc(d)) for d in top_dirs}
    if not splits or None in splits.values():
        return {}
    if names and {_nfc(d) for d in top_dirs} <= {_nfc(n) for n in names}:
        return {}
    return splits  # type: ignore[return-value]


def _split_named_class_warnings(top_dirs: Sequence[str]) -> list[str]:
    """A warning for class folders named like a split beside others that are not (``train/`` beside ``cats/``):
    not split folders, so ``train/`` is a class."""
    named = [d for d in top_dirs if split_word(_nfc(d)) is not None]
    if not named:
        return []
    one = len(named) == 1
    return [f"class folder{'s' * (not one)} {_shown_dirs(named)} {'is' if one else 'are'} named like a split "
            f"({', '.join(sorted({split_word(_nfc(d)) or '' for d in named}))}) but other top folders are not "
            f"({_shown_dirs([d for d in top_dirs if d not in named])}), so "
            f"{'it is a class' if one else 'they are classes'} and not a split: if {'it holds' if one else 'they hold'} "
            f"a split, put every class folder inside split folders (train/cat/, test/cat/); else rename "
            f"{'it' if one else 'them'} to silence this"]


def _untrained_class_warnings(records: Sequence[Record], names: Sequence[str] | None,
                              split_of: Mapping[str, str]) -> list[str]:
    """With split folders holding a ``train/``: a warning for the classes that have samples in other splits but
    none in train (a model never sees an example of them)."""
    if "train" not in split_of.values():
        return []
    in_train = {r.label for r in records if r.split == "train"}
    where: dict[int, set[str]] = {}
    for r in records:
        if r.label is not None and r.label not in in_train and r.split is not None:
            where.setdefault(r.label, set()).add(r.split)
    if not where:
        return []
    train_dirs = [d for d, s in split_of.items() if s == "train"]

    def name(c: int) -> str:
        return repr(names[c]) if names and 0 <= c < len(names) else str(c)

    shown = ", ".join(f"{name(c)} (in {', '.join(sorted(s))})" for c, s in sorted(where.items())[:8])
    more = ", ..." if len(where) > 8 else ""
    one = len(where) == 1
    return [f"class{'es' * (not one)} {shown}{more} {'has' if one else 'have'} no sample in the split folder "
            f"{_shown_dirs(train_dirs)} (split 'train'): a model trained on it never sees {'it' if one else 'them'}; "
            f"add training samples of {'it' if one else 'them'} or move {'its' if one else 'their'} folder out"]


def check_split_folders(found: Discovered, fractions: Mapping[str, float] | None, src: Any) -> None:
    """A SourceError when ``--split`` fractions are given for a folder whose top folders are named for splits
    (:attr:`Discovered.split_folders`) and hold every sample: the folders split the samples already (files beside
    them, at the source's root, have no split: the fractions split those). Without fractions, the patient-folder
    warning (:func:`_folders_like_groups`) is worded for a source that is not split.

    Example:
        >>> check_split_folders(Discovered([], split_folders={"train": "train"}), None, "raw")
    """
    if fractions is None:  # the patient-folder warning says what a split would do, not that one was drawn
        found.warnings[:] = [w.replace(_SPLIT_ONE_BY_ONE, _NOT_SPLIT) for w in found.warnings]
    if fractions is None or not found.split_folders or any(r.split is None for r in found.records):
        return  # files beside the split folders have no split: the fractions split them (QA26 review)
    tops = sorted(found.split_folders, key=lambda d: (found.split_folders[d] != "train", d))  # train/ as the example
    spec = ",".join(f"{n}={f:g}" for n, f in fractions.items())
    raise SourceError(f"source {src}: its top folders {_shown_dirs(sorted(tops))} are named for splits "
                      f"({', '.join(f'{printable(d)}/ -> {s}' for d, s in sorted(found.split_folders.items()))}), so "
                      f"their samples keep that split, and --split {spec} (split=) has nothing to split: pass no "
                      f"--split; to split the samples anew instead, shard one folder (SRC/{printable(tops[0])}) or a "
                      f"folder holding the class folders without the split folders")


def _nfc(name: str) -> str:
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def folder_columns(columns: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """``--column FIELD=FOLDER`` of a folder source as ``{folder: field}`` (the folder a ``/`` path inside the
    source, in NFC), checked: a field is ``image`` / ``audio`` / ``text`` / ``label`` (the folder's files keep
    their own types) or a named field (``seg``: its images become ``<key>.seg.png``); one field per folder,
    no folder inside another, no path leaving the source.

    Example:
        >>> folder_columns({"image": "JPEGImages/", "seg": "SegmentationClass"}, "source voc")
        {'JPEGImages': 'image', 'SegmentationClass': 'seg'}
    """
    out: dict[str, str] = {}
    _named_fields(columns, where)  # field names, as a manifest checks them
    for fieldname, given in (columns or {}).items():
        if fieldname in ("key", "split"):
            raise SourceError(f"{where}: --column {fieldname}={given}: a folder source has no {fieldname} column "
                              f"({'a sample is named by its path inside its folder' if fieldname == 'key' else 'splits come from --split'}"
                              f"); FIELD is image, audio, text, label or a named field (seg, depth), FOLDER a folder "
                              f"of the source")
        folder = str(given).strip().replace("\\", "/")
        parts = folder.strip("/").split("/")
        if folder.startswith("/") or re.match(r"[A-Za-z]:", folder) or any(p in ("", ".", "..") for p in parts):
            raise SourceError(f"{where}: --column {fieldname}={given}: FOLDER is a relative path inside the source "
                              f"(e.g. images or VOC2012/JPEGImages), without '.', '..' or empty parts")
        hidden = [p for p in parts if is_hidden_folder(p)]
        if hidden:
            raise SourceError(f"{where}: --column {fieldname}={given}: {hidden_folder_reason(hidden[0])}; rename the "
                              f"folder")
        folder = _nfc("/".join(parts))
        if folder in out:
            raise SourceError(f"{where}: --column {out[folder]}={given} and --column {fieldname}={given}: one folder "
                              f"gives one field")
        out[folder] = fieldname
    for a in out:
        for b in out:
            if b.startswith(a + "/"):
                raise SourceError(f"{where}: --column {out[a]}={a} and --column {out[b]}={b}: folder {b!r} lies "
                                  f"inside {a!r}, so its files would belong to both fields; name folders side by side")
    return out


def _column_at(rel: str, cols: Mapping[str, str]) -> tuple[str, str] | None:
    """The column folder (and its field) that the walked folder ``rel`` (``a/b/``, or ``""``) lies in."""
    n = _nfc(rel.rstrip("/"))
    for c, fieldname in cols.items():
        if n == c or n.startswith(c + "/"):
            return c, fieldname
    return None


def _column_cut(rel: str, inside: tuple[str, str]) -> tuple[int, str]:
    """(length of the column folder's prefix in ``rel`` as the names are written, the field)."""
    k = inside[0].count("/") + 1
    return len("/".join(rel.split("/")[:k])) + 1, inside[1]


def _towards_columns(walk: Any, rel: str, dirs: list[str], files: list[str], cols: Mapping[str, str]) -> list[str]:
    """The sub-folders of ``rel`` (a folder above or beside the column folders) that are, or lead to, a
    column folder; the other folders and the files here are listed as skipped (a class-names file at the
    root is not: it names the classes)."""
    shown = ", ".join(f"{c}/" for c in cols)
    keep = []
    for d in dirs:
        n = _nfc(rel + d)
        if n in cols or any(c.startswith(n + "/") for c in cols):
            keep.append(d)
        else:
            walk.skipped.append(skip_entry(printable(rel + d), "folder", f"not one of the --column folders ({shown})"))
    names = _names_file(files) if not rel else None
    for fn in files:
        if fn != names:
            walk.skipped.append(skip_entry(printable(rel + fn), "file", f"outside the --column folders ({shown})"))
    return keep


def fields_from_folders(found_groups: list[tuple[str, dict[str, str]]], group_col: list[tuple[int, str]], walk: Any,
                        on_error: str, rel_of: Callable[[str], str],
                        cols: Mapping[str, str]) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """A paired layout's groups joined by their path inside their column folder: ``images/a/0001`` (field
    ``image``) and ``masks/a/0001`` (field ``seg``) are the sample ``a/0001``. A standard field's files keep
    their types; a named field's image, text, JSON and ``.npy`` files become ``<field>.<ext>`` members (a
    label file stays the sample's label); a second file of one field is reported as skipped (raised with
    ``on_error="raise"``). Returns the groups in walk order and a warning for samples with files only in
    named fields' folders (a mask without its image: a recipe's ``targets`` leave it out)."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    moves: list[tuple[bool, str, str, str]] = []  # (not the folder's own field, sample, member ext, path)
    seen_form: dict[str, str] = {}  # NFC form -> the sample's name as first walked (NFC / NFD copies join)
    typed: dict[str, tuple[str, set[str]]] = {}  # a standard field's folder -> (the field, its files' fields)
    for (key, members), (cut, fieldname) in zip(found_groups, group_col):
        sample = seen_form.setdefault(_nfc(key[cut:]), key[cut:])
        out.setdefault(sample, (sample, {}))
        if fieldname in STANDARD_FIELD_EXTS:
            typed.setdefault(key[:cut - 1], (fieldname, set()))[1].update(map(field_of, members))
        for ext, path in members.items():
            kind = field_of(ext)
            if fieldname in STANDARD_FIELD_EXTS or kind == "label":
                new = ext
            elif ext == "npy":
                new = f"{fieldname}.npy"
            elif kind in ("image", "text") or ext.lower() == "json" or member_type(ext) == "npy":
                new = f"{fieldname}.{ext}"
            else:
                walk.bad(rel_of(path), "member", f"a .{ext} file cannot be the named field {fieldname!r} (a named "
                         f"field holds an image, text, JSON or a .npy array; a sample has one audio file)",
                         printable(sample))
                continue
            moves.append((fieldname in STANDARD_FIELD_EXTS and kind != fieldname, sample, new, path))
    for folder, (fieldname, kinds) in typed.items():
        if fieldname not in kinds:  # --column audio=SegmentationClass: a mistake, not a folder of audio
            hint = (f"e.g. --column seg={printable(folder)} for masks beside the images" if "image" in kinds else
                    f"image, audio, text or a named field for images, text, JSON or .npy arrays")
            raise SourceError(f"--column {fieldname}={printable(folder)}: the folder holds no {fieldname} file (it "
                              f"holds {', '.join(sorted(kinds))}); name its field after what it holds: {hint}")
    # a field's own folder first: an image in the image folder wins over one in the text folder
    kept: dict[tuple[str, str], tuple[str, bool]] = {}  # (sample, field) -> the file giving it, from another field's folder
    for other, sample, new, path in sorted(moves, key=itemgetter(0)):
        field_name = field_of(new)
        first, first_other = kept.setdefault((sample, field_name), (path, other))
        if first != path:
            a, b, _ = names_apart(rel_of(first), rel_of(path))
            if on_error == "raise":
                raise SourceError(f"{a} and {b}: two {field_name} files for sample {printable(sample)!r}; a "
                                  f"sample holds one file per field — name each folder's field with --column")
            why = "the first folder walked" if first_other else f"from the {field_name} folder"
            walk.bad(rel_of(path), "member", f"a second {field_name} file for sample {printable(sample)!r}: kept "
                     f"{a} ({why}); a sample holds one file per field", printable(sample))
            continue
        out[sample][1][new] = path
    gave = {f for _, f in group_col}
    standard = gave & STANDARD_FIELD_EXTS.keys()
    warnings = []
    for folder, fieldname in cols.items():  # --column text=Annotations: XML only, nothing mmdata reads
        if fieldname not in gave:
            warnings.append(f"--column {fieldname}={printable(folder)}: the folder gave no file mmdata reads (its "
                            f"files, if any, are listed as skipped): no sample has the field {fieldname}")
    if standard:
        alone = [k for k, (_, m) in out.items() if m and not any("." not in e or field_of(e) == "label" for e in m)]
        if alone:
            n = len(alone)
            warnings.append(f"{n} sample{'s have' if n != 1 else ' has'} files only in named fields' folders and none "
                            f"in the {'/'.join(sorted(standard))} folder (e.g. {printable(alone[0])!r}): "
                            f"{'they are' if n != 1 else 'it is'} sharded, but a recipe's targets: of a sample without "
                            f"an image are left out; check the file names match across the folders")
    return list(out.values()), warnings


def _join_folder_forms(found_groups: list[tuple[str, dict[str, str]]], walk: Any,
                       on_error: str) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """One sample per key up to its Unicode form across folders: ``café/0001.png`` (folder name in NFC)
    and ``café/0001.flac`` (in NFD; a copy made on macOS) are one sample, as two such stems in one folder
    are. The sample keeps the key of its first folder by walk order; a field both hold is reported as
    a second file, as within a folder. Returns the groups and a warning per pair of folders joined."""
    out: list[tuple[str, dict[str, str]]] = []
    at: dict[str, int] = {}  # NFC key -> index in out
    pairs: dict[tuple[str, str], int] = {}  # (kept folder, joined folder) -> samples joined
    for key, members in found_groups:
        norm = _nfc(key)
        i = at.get(norm)
        if i is None:
            at[norm] = len(out)
            out.append((key, members))
            continue
        kept_key, kept = out[i]
        fields = {field_of(e): e for e in kept}
        for ext, path in members.items():
            fieldname = field_of(ext)
            if fieldname not in fields:
                kept[ext] = path
                fields[fieldname] = ext
                continue
            a, b, _ = names_apart(kept_key + "." + fields[fieldname], key + "." + ext)
            if on_error == "raise":
                raise SourceError(f"{a} and {b}: two {fieldname} files for sample {printable(kept_key)!r} (their folders "
                                  f"are one name in two Unicode forms, NFC and NFD); a sample holds one file per "
                                  f"modality — rename or remove one")
            walk.bad(printable(key + "." + ext), "member", f"a second {fieldname} file for sample {printable(kept_key)!r}: "
                     f"kept {a} (the first by name; the two folders are one name in two Unicode forms, NFC and NFD); "
                     f"a sample holds one file per modality", printable(kept_key))
        pair = (kept_key.rpartition("/")[0], key.rpartition("/")[0])
        pairs[pair] = pairs.get(pair, 0) + 1
    warnings = []
    for (first, other), n in pairs.items():
        a, b, _ = names_apart(first + "/", other + "/")
        warnings.append(f"folders {a} and {b} are one name in two Unicode forms (NFC and NFD: copies made on macOS "
                        f"and elsewhere): {n} sample{'s' * (n != 1)} with files in both {'are' if n != 1 else 'is'} "
                        f"read as one (source_key as in {printable(first)!r}); rename the folders to one form to silence this")
    return out, warnings


def _folder_forms(top_dirs: list[str]) -> dict[str, list[str]]:
    """Class folders by the NFC form of their name (one class per name up to its Unicode form)."""
    form_of: dict[str, list[str]] = {}
    for d in sorted(top_dirs):
        form_of.setdefault(_nfc(d), []).append(d)
    return form_of


def _composed(name: str) -> str:
    """``name`` in NFC when it is in NFD and not in NFC (a name written on macOS: ``e`` + U+0301), else as written:
    only canonical composition is undone, so compatibility characters (the hanja U+F900, the Angstrom sign U+212B,
    the Ohm sign U+2126), which NFC replaces by other code points, keep their names (review of QA28: NFC of every
    name renamed and re-sorted such Linux folders, swapping their ids)."""
    if name.isascii() or not unicodedata.is_normalized("NFD", name) or unicodedata.is_normalized("NFC", name):
        return name
    return unicodedata.normalize("NFC", name)


def _folder_class_names(form_of: Mapping[str, list[str]]) -> list[str]:
    """The class names of class folders grouped by :func:`_folder_forms`, sorted: a folder's name as written, in
    NFC where it is in NFD (:func:`_composed`) or where folders of one name are in two forms (NFD and NFC twins)."""
    return sorted(nfc if len(ds) > 1 else _composed(ds[0]) for nfc, ds in form_of.items())


def _names_from_folders(datas: list[Any], top_dirs: list[str]) -> list[str] | None:
    """The class folders' names (sorted, as when the folders label) as the class names for label files
    that hold names: when no label file holds a number and one holds a folder's name (``bird`` in
    ``dog/x.cls`` beside ``bird/``). Label files holding ids keep meaning ids, so names never change them."""
    names = _folder_class_names(_folder_forms(top_dirs))  # as the folders' class names
    known, hit = {*names, *top_dirs}, False
    for data in set(d for d in datas if d.__class__ is bytes):
        try:
            raw = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            continue  # reported as a bad label file
        if raw.isdigit() or _is_number(raw) or raw[:1] == "-":
            return None
        hit = hit or raw in known
    return names if hit else None


#: folder names of paired layouts (an image folder beside its masks / depth maps), lower-cased
PAIRED_NAMES = frozenset(("images", "image", "img", "imgs", "rgb", "jpegimages", "masks", "mask", "labels", "label",
                          "annotations", "annotation", "ann", "anns", "gt", "groundtruth", "depth", "depths", "seg",
                          "segmentation", "segmentationclass", "segmentationobject", "targets", "semantic", "instances"))


def _field_hint(column: str) -> str:
    """A field name a user could give a manifest column with ``--column FIELD=COLUMN`` (1 to 64 lowercase
    letters, digits and ``_``: ``Depth PNG`` -> ``depth_png``)."""
    name = re.sub(r"[^a-z0-9_]+", "_", column.lower()).strip("_")[:64]
    return name if name and name[0].isalpha() else f"f_{name}"[:64]


@dataclass(frozen=True)
class _Paired:
    """What :func:`_paired_layout` found: samples whose names recur across sibling folders."""

    shared: int  #: samples sharing their name with one in another folder
    total: int  #: samples in the folders looked at
    name: str  #: one shared name, and the folders holding it
    holders: tuple[str, ...]
    fields: dict[str, str]  #: folder -> the ``--column`` field it would be
    target: str  #: the recipe target a mask / depth folder becomes (``seg.png``)


def _paired_layout(keys: Sequence[str], members: Sequence[Sequence[str]]) -> _Paired | None:
    """Whether samples named ``<folder>/<rest>`` look like a paired layout — ``images/0001.jpg`` beside
    ``masks/0001.png`` (Pascal VOC, ADE20K, Cityscapes, depth datasets): in some folder, most names recur
    in another one (Pascal VOC's ``SegmentationClass/`` masks ~3k of ``JPEGImages/``' 17k images), and
    the folders hold other file types or have the names such layouts use, one of them images. Keys without
    a folder are not looked at."""
    folders: dict[str, set[str]] = {}  # name inside its folder -> the folders holding it
    types: dict[str, set[str]] = {}  # folder -> its members' types
    held: dict[str, list[frozenset[str]]] = {}  # name inside its folder -> each holder's member types
    parts = [k.partition("/") for k in keys]
    for (top, sep, rest), exts in zip(parts, members):
        if sep:
            folders.setdefault(rest, set()).add(top)
            kinds_here = frozenset(map(member_type, exts))
            types.setdefault(top, set()).update(kinds_here)
            held.setdefault(rest, []).append(kinds_here)
    if len(types) < 2:
        return None
    size = Counter(top for top, sep, _ in parts if sep)
    shared_in = Counter(top for top, sep, rest in parts if sep and len(folders[rest]) > 1)
    shared = sum(shared_in.values())
    if shared < 2 or not any(shared_in[d] >= 0.9 * n for d, n in size.items()):
        return None
    if not any(_nfc(d).lower() in PAIRED_NAMES for d in types) and not _types_apart(held, shared):
        # cat/001.jpg beside dog/001.jpg (one odd dog/003.png among them, or each with its .wav): classes that
        # number their files alike
        return None
    name = next(rest for rest, tops in folders.items() if len(tops) > 1)
    parted = sorted({d for tops in folders.values() if len(tops) > 1 for d in tops})
    fields = _paired_fields(parted, types)
    if types[next(iter(fields))].isdisjoint(IMAGE_EXTS):
        return None  # wav/ beside txt/: parts of a sample, but no image to pair a mask with
    target, tdir = min(((f, d) for d, f in fields.items() if f != "image"), key=lambda fd: (fd[0] not in ("seg", "depth"),))
    target += "." + ("png" if "png" in types[tdir] else min(types[tdir]))
    return _Paired(shared, sum(size.values()), name, tuple(sorted(folders[name])), fields, target)


def _types_apart(held: Mapping[str, Sequence[frozenset[str]]], shared: int) -> bool:
    """Whether the names that recur across folders carry other member types in each folder, nearly always:
    ``images/0001.jpg`` beside ``masks/0001.png`` (no type in common), not ``cat/0001.jpg`` beside
    ``dog/0001.jpg`` or ``cat/0001.{jpg,wav}`` beside ``dog/0001.{png,wav}`` (a type in common); two names
    at least.

    Example:
        >>> jpg, png = frozenset({"jpg"}), frozenset({"png"})
        >>> _types_apart({"0": [jpg, png], "1": [jpg, png]}, 4), _types_apart({"0": [jpg, jpg], "1": [jpg, png]}, 4)
        (True, False)
    """
    apart = [len(ts) for ts in held.values() if len(ts) > 1 and sum(map(len, ts)) == len(frozenset().union(*ts))]
    return len(apart) >= 2 and sum(apart) >= 0.9 * shared  # one name in two folders ("0") is no layout


def _paired_layout_warning(records: list[Record], top_dirs: list[str]) -> str | None:
    """A warning when "class folders" look like a paired layout (:func:`_paired_layout`). Read as classes,
    every image and every mask became a sample of its own, labelled by its folder."""
    if len(top_dirs) < 2:
        return None
    found = _paired_layout([r.source_key for r in records], [list(r.members) for r in records])
    if found is None:
        return None
    shown = ", ".join(f"{printable(d)}/" for d in top_dirs[:4]) + (", ..." if len(top_dirs) > 4 else "")
    options = " ".join(f"--column {f}={shlex.quote(d)}" for d, f in found.fields.items())
    return (f"folders {shown} were read as classes, but {found.shared} of {found.total} samples share their name with "
            f"a sample in another folder ({printable(found.name)!r} is in {', '.join(map(printable, found.holders))}): "
            f"if they are one sample in parts (an image and its mask or depth map), they are no classes — shard the "
            f"folder with a field per folder: {options} (files join by their path inside their folder); recipes then "
            f"move the masks with the image (targets: {{{found.target}: mask}})")


def _folder_per_item_warning(records: list[Record], top_dirs: list[str]) -> str | None:
    """A warning when "class folders" look like a folder per item (a video clip's ``frame_000.jpg``,
    ``audio.flac`` and ``subtitles.txt``; a recording session's files): every folder holds files of several
    modalities under names that repeat in the other folders, and no sample got more than one modality. Read
    as classes, each file became a sample of its own, labelled by its folder (QA27 C2: silent)."""
    if len(top_dirs) < 2 or not records:
        return None
    kinds: dict[str, set[str]] = {}
    stems: dict[str, set[str]] = {}
    for r in records:
        if "/" not in r.source_key:
            continue
        top, _, rest = r.source_key.partition("/")
        fields = {field_of(e) for e in r.members if field_of(e) in ("image", "audio", "text")}
        if len(fields) > 1:  # a sample that pairs modalities: the folder's files do join by name
            return None
        kinds.setdefault(top, set()).update(fields)
        stems.setdefault(top, set()).add(rest.rsplit("/", 1)[-1])
    mixed = [d for d, k in kinds.items() if len(k) > 1]
    if len(mixed) < 2 or len(mixed) < 0.8 * len(kinds):
        return None
    said = _names_repeated(mixed, kinds, stems, 4)
    if said is None:
        return None
    shown, names, modalities = said
    return (f"folders {shown} were read as {len(kinds)} classes, but each holds {', '.join(modalities)} files under the "
            f"same names ({names}): a folder per item (a video clip's frames, its audio and subtitles)? Read as classes, "
            f"every file became a sample of its own with one modality ({len(records)} samples). Shard such data from a "
            f"manifest, a row per folder and a column of paths per file (image, audio, subtitles, frame1, ...: a "
            f"column of any name but key, text, label and split reads the files it names, a .txt file becoming the "
            f"sample's text — a column named text holds the caption itself; mmdata shard clips.csv OUT --column "
            f"frame1=frame1), its label in a column; docs/bad-input-shard.md")


def _names_repeated(mixed: list[str], kinds: dict[str, set[str]], stems: dict[str, set[str]],
                    k: int) -> tuple[str, str, list[str]] | None:
    """For the folder-per-item warnings: the first ``k`` of the ``mixed`` folders, the file names most of them
    share (None when fewer than two) and their modalities, as the warnings show them."""
    counts: Counter[str] = Counter(st for d in mixed for st in stems[d])
    repeated = sorted((st for st, n in counts.items() if n >= 0.8 * len(mixed)), key=lambda st: (-counts[st], st))
    if len(repeated) < 2:
        return None
    shown = ", ".join(f"{printable(d)}/" for d in mixed[:k]) + (", ..." if len(mixed) > k else "")
    names = ", ".join(printable(st) for st in repeated[:5]) + (", ..." if len(repeated) > 5 else "")
    return shown, names, sorted(set().union(*(kinds[d] for d in mixed)))


def _item_folders_warning(records: list[Record], k: int = 4) -> str | None:
    """A warning when the innermost folders look like a folder per item at any depth, whether or not they were
    read as classes (``spk0/utt01/frame_000.png``, ``audio.wav``, ``transcript.txt``: LRS2 / LRS3, GRID,
    AV-HuBERT's preprocessed layout; the frames may be in a subfolder, ``utt01/frames/000.png``: a subfolder of
    one modality counts as part of its parent folder): two or more folders, most holding files of several
    modalities under names that repeat in most of the others, and no sample with more than one modality. Files pair by their name in
    a folder, so each became a sample of its own (avspeech QA34 #3: silent)."""
    kinds: dict[str, set[str]] = {}
    stems: dict[str, set[str]] = {}
    for r in records:
        folder, sep, stem = r.source_key.rpartition("/")
        fields = {field_of(e) for e in r.members if field_of(e) in ("image", "audio", "text")}
        if len(fields) > 1:  # a sample that pairs modalities: the folders' files do join by name
            return None
        if not sep:
            continue
        kinds.setdefault(folder, set()).update(fields)
        stems.setdefault(folder, set()).add(stem)
    # a subfolder of one modality inside a folder with files (utt01/frames/000.png beside utt01/audio.wav) is
    # part of that item: its modality counts for the parent, and it is not a folder of its own
    for folder in sorted(kinds, key=lambda d: -d.count("/")):
        parent = folder.rpartition("/")[0]
        if len(kinds[folder]) == 1 and parent in kinds:
            kinds[parent] |= kinds.pop(folder)
            stems.pop(folder)
    mixed = sorted(d for d, kd in kinds.items() if len(kd) > 1)
    if len(mixed) < 2 or len(mixed) < 0.8 * len(kinds):
        return None
    said = _names_repeated(mixed, kinds, stems, k)
    if said is None:
        return None
    shown, names, modalities = said
    return (f"{plural(len(mixed), 'folder')} ({shown}) each hold {', '.join(modalities)} files under the same names "
            f"({names}): a folder per utterance or clip? Files pair by their name inside a folder, so every file "
            f"became a sample of its own with one modality ({plural(len(records), 'sample')}, none multimodal). "
            f"Shard such data from a manifest: a row per folder, a column of paths per file (audio, frame1, "
            f"transcript, ...: a .txt file a column names becomes the sample's text; a column named text holds the "
            f"text itself), e.g. mmdata shard utts.csv OUT --meta speaker; docs/bad-input-shard.md, 'A folder per "
            f"utterance', writes that manifest in a few lines")


_NESTED_PAIRED = 3  # folders named in the warnings of a source holding several paired layouts


def _nested_paired_warnings(records: list[Record]) -> list[str]:
    """Warnings for a paired layout one folder below the source (``voc/`` holding ``VOC2012/JPEGImages/`` and
    ``VOC2012/SegmentationClass/``): the pairs' images and masks became samples of their own. Each names
    the ``--column`` options with the folders' paths inside the source, and the folder to give instead."""
    below: dict[str, tuple[list[str], list[list[str]]]] = {}  # folder -> its samples' keys inside it, members
    for r in records:
        top, sep, rest = r.source_key.partition("/")
        if sep and "/" in rest:
            keys, members = below.setdefault(top, ([], []))
            keys.append(rest)
            members.append(list(r.members))
    out = []
    for top, (keys, members) in below.items():
        found = _paired_layout(keys, members)
        if found is None:
            continue
        p = printable(top)
        options = " ".join(f"--column {f}={shlex.quote(f'{p}/{d}')}" for d, f in found.fields.items())
        inside = " ".join(f"--column {f}={shlex.quote(d)}" for d, f in found.fields.items())
        out.append(f"folder {p}/ holds a paired layout, one folder below the source: {found.shared} of {found.total} "
                   f"samples in it share their name with a sample in another of its folders "
                   f"({printable(found.name)!r} is in {', '.join(f'{p}/{d}' for d in found.holders)}), so each image "
                   f"and each mask or depth map became a sample of its own. If they are one sample in parts, shard "
                   f"the source with a field per folder: {options} (FOLDER is a path inside the source; the other "
                   f"folders are not read), or give the folder {p}/ itself as the source (SRC/{p}) with {inside}; "
                   f"recipes then move the masks with the image (targets: {{{found.target}: mask}})")
        if len(out) == _NESTED_PAIRED:
            break
    return out


#: folder names of a paired layout's images, and the field a mask / depth folder's name suggests
_IMAGE_FOLDERS = frozenset(("images", "image", "img", "imgs", "rgb", "jpegimages", "leftimg8bit", "color", "colour"))
_MASK_FIELDS = {"masks": "seg", "mask": "seg", "seg": "seg", "segmentation": "seg", "segmentationclass": "seg",
                "semantic": "seg", "annotations": "seg", "annotation": "seg", "ann": "seg", "anns": "seg", "gt": "seg",
                "groundtruth": "seg", "labels": "seg", "label": "seg", "targets": "seg", "depth": "depth",
                "depths": "depth", "segmentationobject": "inst", "instances": "inst"}


def _paired_fields(folders: list[str], types: Mapping[str, set[str]]) -> dict[str, str]:
    """``--column`` fields for a paired layout's folders: the image folder (by its name, else the first
    holding JPEGs, else the first) gives ``image``; the others a named field (``masks`` -> ``seg``,
    ``depth`` -> ``depth``, else the folder's name as a field name), each once."""
    image = next((d for d in folders if _nfc(d).lower() in _IMAGE_FOLDERS), None) or next(
        (d for d in folders if types.get(d, set()) & {"jpg", "jpeg", "jfif", "jpe", "jif"}), folders[0])
    out, used = {image: "image"}, {"image"}
    for d in folders:
        if d != image:
            f = _MASK_FIELDS.get(_nfc(d).lower()) or _field_hint(d)
            f = f if f not in used and f not in STANDARD_FIELD_EXTS and f not in ("json", "array") else _field_hint(f"{f}_{len(used)}")
            out[d] = f
            used.add(f)
    return out


def _root_files_warning(top_dirs: list[str], at_root: list[str], top_files: list[str], unlabelled: int,
                        in_folders: int, place: str = "") -> str:
    """The warning for folders next to samples at the root: the root samples made the layout flat, so
    the folders' names are no labels; which flag or move gives folder labels."""
    dirs = ", ".join(f"{printable(d)}/" for d in sorted(top_dirs)[:4]) + (", ..." if len(top_dirs) > 4 else "")
    named = sorted(at_root) or sorted(top_files)  # a label file alone at the root is no sample, but counts
    what = "sample" if at_root else "file"
    shown = ", ".join(repr(printable(f)) for f in named[:3]) + (", ..." if len(named) > 3 else "")
    n, k = len(named), len(at_root)
    of = f"{unlabelled} of the {in_folders}" if unlabelled != in_folders else f"the {in_folders}"
    moved = ("those" if n != 1 else "that") if place else "the root"
    place = place or "at the root of the source"
    then = (f" (the {k} sample{'s' * (k != 1)} {place} then {'have' if k != 1 else 'has'} no label)" if k else "")
    return (f"{n} {what}{'s' * (n != 1)} {place} ({shown}) make{'s' * (n == 1)} it a flat "
            f"layout, not class folders ({dirs}): {of} sample{'s' * (in_folders != 1)} in the folders "
            f"{'have' if unlabelled != 1 else 'has'} no label. Pass --labels-from-folders to label them by their "
            f"class folder{then}, or move {moved} {what}{'s' * (n != 1)} into a folder; "
            f"--no-labels-from-folders keeps the layout flat and silences this warning")


def _invisible(c: str) -> bool:
    """Whether ``c`` draws nothing: a format character (Cf: RLM, ZWNJ, zero-width space, BOM) or a variation
    selector (U+FE00-U+FE0F, U+E0100-U+E01EF: ``猫`` + VS16 prints as ``猫``)."""
    return unicodedata.category(c) == "Cf" or "\ufe00" <= c <= "\ufe0f" or "\U000e0100" <= c <= "\U000e01ef"


#: an emoji tag sequence (a subdivision flag: black flag, tag letters, cancel tag): its tag characters are Cf but
#: spell the flag (Scotland and England differ only in them), so they are part of the name
_TAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def _spelling_indices(name: str) -> set[int]:
    """The positions in ``name`` of characters that :func:`_invisible` calls invisible but that spell an emoji:
    the tags of a tag sequence (:data:`_TAG_SEQUENCE`)."""
    return {k for m in _TAG_SEQUENCE.finditer(name) for k in range(m.start(), m.end())}


def _without_invisible(name: str) -> str:
    """``name`` without its invisible characters (:func:`_invisible`), an emoji tag sequence kept whole."""
    keep = _spelling_indices(name)
    return "".join(c for k, c in enumerate(name) if k in keep or not _invisible(c))


def _near_name(name: str) -> str:
    """``name`` as class-name typos compare it: NFKC (full-width ``１２`` is ``12``, half-width ``ﾈｺ`` is ``ネコ``),
    without invisible characters (:func:`_without_invisible`: RLM, ZWNJ, zero-width space, variation selectors;
    a subdivision flag's tags kept), case-folded, stripped."""
    return unicodedata.normalize("NFKC", _without_invisible(name)).casefold().strip()


def _invisible_ends(name: str) -> list[str]:
    """The invisible characters (:func:`_invisible`) at the start or end of class name ``name``, as
    ``U+200F RIGHT-TO-LEFT MARK``. An emoji's own spelling is part of the name and not listed: VS15 / VS16 after
    a character that is no letter, number or mark (``❤``, ``↔``, ``‼`` + VS16) or after ``ℹ``, and the tags of a
    subdivision flag (:data:`_TAG_SEQUENCE`). VS16 after a letter (``猫`` + VS16) is listed.

    Example:
        >>> _invisible_ends("\u0643\u0644\u0628\u200f"), _invisible_ends("\u2764\ufe0f")
        (['U+200F RIGHT-TO-LEFT MARK'], [])
    """
    core = name.strip()
    keep = _spelling_indices(core)
    i, j = 0, len(core)
    while i < j and i not in keep and _invisible(core[i]):
        i += 1
    while j > i and j - 1 not in keep and _invisible(core[j - 1]):
        j -= 1
    tail = core[j:]
    # emoji bases are symbols (So: ❤), math signs (Sm: ↔), punctuation (Po: ‼, Pd: 〰) and ℹ (Ll, the one letter)
    if (tail in ("\ufe0e", "\ufe0f") and j > i
            and (unicodedata.category(core[j - 1])[0] not in "LNM" or core[j - 1] == "\u2139")):
        tail = ""  # text / emoji presentation of a symbol: how the emoji is written
    ends = core[:i] + tail
    return [f"U+{ord(c):04X} {unicodedata.name(c, 'invisible character')}" for c in dict.fromkeys(ends)]


def _invisible_names_warning(found: Discovered) -> list[str]:
    """One warning naming the class names that start or end with invisible characters (:func:`_invisible_ends`:
    an RLM copied with an Arabic name from a web page, a BOM, VS16 after ``猫``): kept as written, so the class
    ids stay the source's, but a dataset or a model whose class is spelt without them holds another class
    (QA33 multilingual #6); ``[]`` when none does."""
    odd = [(n, marks) for n in found.label_names or () if (marks := _invisible_ends(n))]
    if not odd:
        return []
    given = found.label_names_from or "the source"
    where = {"folders": "class folders", "manifest": "the manifest's labels"}.get(given, given)
    shown = "; ".join(f"{printable(n)!r} ({', '.join(marks)})" for n, marks in odd[:4])
    more = f"; and {len(odd) - 4} more" if len(odd) > 4 else ""
    one = len(odd) == 1
    return [f"{plural(len(odd), 'class name')} from {where} {'starts or ends' if one else 'start or end'} with "
            f"invisible characters ({shown}{more}): kept as written, but {'it prints' if one else 'they print'} like "
            f"the name without them, and a dataset or a model whose class is "
            f"spelt without them holds another class; remove them where the names are written (the folder, the "
            f"names file or the label cells; an editor that shows invisible characters) to silence this"]


def _warn_invisible_names(find: Callable[..., Discovered]) -> Callable[..., Discovered]:
    """``find`` (:func:`discover`, :func:`discover_shards`), its result warned of class names with invisible
    characters at their ends (:func:`_invisible_names_warning`), whatever they came from."""
    @functools.wraps(find)
    def wrapped(*args: Any, **kwargs: Any) -> Discovered:
        found = find(*args, **kwargs)
        found.warnings = found.warnings + _invisible_names_warning(found)
        return found

    return wrapped


def _name_differences(names: Sequence[str]) -> str:
    """How class names equal under :func:`_near_name` differ: ``"case"``, ``"width (full-width / half-width
    forms)"``, ``"invisible characters"``, ``"spaces at the start or end"``, joined with ``" or in "``."""
    visible = [unicodedata.normalize("NFC", _without_invisible(n)).strip() for n in names]
    kinds = []
    if len({unicodedata.normalize("NFKC", v) for v in visible}) > 1:
        kinds.append("case")
    if len({v.casefold() for v in visible}) > len({unicodedata.normalize("NFKC", v).casefold() for v in visible}):
        kinds.append("width (full-width / half-width forms)")
    hidden = sorted({c for n in names for k, c in enumerate(n) if _invisible(c) and k not in _spelling_indices(n)})
    if hidden:  # named: a user checking case or spaces finds nothing (QA40 hostile #8)
        shown = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in hidden[:4])
        kinds.append(f"invisible characters ({shown}{', ...' if len(hidden) > 4 else ''})")
    if any(n != n.strip() for n in names):
        kinds.append("spaces at the start or end")
    return " or in ".join(kinds or ["case"])


def _class_folder_warnings(form_of: Mapping[str, list[str]], class_ids: Mapping[str, int]) -> list[str]:
    """Warnings for class folders whose names collide: one name in two Unicode forms (one class), or
    names that differ only in case (two classes, most likely meant as one)."""
    warnings = []
    for ds in form_of.values():
        if len(ds) > 1:
            a, b, _ = names_apart(ds[0], ds[1])
            more = f" (and {len(ds) - 2} more)" if len(ds) > 2 else ""
            warnings.append(f"class folders {a} and {b}{more} are one name in two Unicode forms (NFC and NFD: copies "
                            f"made on macOS and elsewhere): their samples are one class, {printable(_nfc(ds[0]))!r} "
                            f"(NFC); "
                            f"rename the folders to one form to silence this")
    by_case: dict[str, list[str]] = {}
    # 'cat' and 'Cat', 'cat' and 'cat ' (a space typed at the end of a name), 'ﾈｺ' and 'ネコ', 'كلب' and 'كلب' + RLM
    for norm, ds in form_of.items():
        by_case.setdefault(_near_name(norm), []).append(ds[0])
    for ds in by_case.values():
        if len(ds) > 1:
            shown = " and ".join(f"{printable(d)!r} (class {class_ids[_nfc(d)]})" for d in ds)
            warnings.append(f"class folders {shown} differ only in {_name_differences(ds)}: they are {len(ds)} "
                            f"classes; if they are one, merge the folders")
    return warnings


def _mixed_labels_warning(top_dirs: list[str], n_files: int, unlabelled: int, total: int) -> str:
    """The warning for class folders next to label files: which labels won, and the flag that decides."""
    shown = ", ".join(f"{d}/" for d in top_dirs[:4]) + (", ..." if len(top_dirs) > 4 else "")
    return (f"the source looks like class folders ({shown}) but holds {n_files} label "
            f"file{'s' * (n_files != 1)} (.cls / .label), so labels come from the label files and not "
            f"from the folders: {unlabelled} of {total} sample{'s' * (total != 1)} "
            f"{'have' if unlabelled != 1 else 'has'} no label. Pass --labels-from-folders to label every sample "
            f"by its class folder (label files are then ignored), or --no-labels-from-folders to keep the label "
            f"files and silence this warning")


def _names_file(files: list[str]) -> str | None:
    """The class-names file among the root's files: ``labels.json`` or ``labels.txt`` when no other file
    of the root is named ``labels.*`` (then it is a sample's member)."""
    if not any(f in files for f in NAMES_FILES):
        return None
    named = [f for f in files if f.rpartition(".")[0] == "labels"]
    found = [f for f in NAMES_FILES if f in named]
    if len(found) > 1:
        raise SourceError(f"both {found[0]} and {found[1]} at the root of the source: keep one class-names file")
    return found[0] if found and len(named) == 1 else None


def _finish(records: list[Record]) -> list[Record]:
    records.sort(key=lambda r: r.key)
    for a, b in zip(records, records[1:]):
        if a.key == b.key:
            raise SourceError(f"two samples map to key {a.key!r}: {a.source_key!r} and {b.source_key!r}; rename one")
    return records


# ---- manifests ------------------------------------------------------------------------------------
_CSV_INT = re.compile(r"-?(0|[1-9][0-9]{0,999})")  # as str(int) writes it: no sign, zeros or spaces to lose
#: how deep metadata lists / mappings may nest (json.loads takes ~1000 levels; Python recursion would not)
MAX_META_DEPTH = 64


def folder_meta_error(src: Any) -> str:
    """Why ``--meta`` does not apply to a folder source."""
    return (f"source {src}: --meta names a manifest's metadata columns, and this is a folder; a folder's sample "
            f"carries metadata as a <stem>.json file beside its media (0001.png + 0001.json), or list the files and "
            f"their metadata in a CSV / JSONL / Parquet manifest")


def folder_group_error(src: Any) -> str:
    """Why ``--group-by`` does not apply to a folder source."""
    return (f"source {src}: --group-by names a manifest's column, and this is a folder: list the files and their "
            f"groups (an image id, a speaker) in a CSV / JSONL / Parquet manifest, or pass --group-by folder "
            f"(group_by='folder') to keep each folder below the class folders (a patient's, "
            f"a speaker's) in one split")


def _meta_columns(meta: Sequence[str] | str | None, present: set[str], rename: Mapping[str, str], name: str,
                  rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The ``--meta`` columns, checked: each one a column of the manifest that no field reads (a column
    named ``key`` / ``text`` / ``label`` / ``split`` is metadata only when ``--column FIELD=COL`` reads that
    field from another column).

    An item that is not a column is read as comma-separated names (``"speaker,duration"``, as the CLI
    takes them), each as written or without surrounding spaces; a column whose name holds a comma or
    spaces is named whole.
    """
    if not meta:
        return ()
    if isinstance(meta, str):
        meta = [meta]
    cols: dict[str, None] = {}
    for item in meta:
        if not isinstance(item, str):
            raise SourceError(f"manifest {name}: --meta expects column names, got {item!r}")
        if item in present or not rows:
            parts = [item]
        else:
            parts = [p if p in present else p.strip() for p in item.split(",")]
            parts = [p for p in parts if p]
            if not parts:
                raise SourceError(f"manifest {name}: --meta {item!r} names no column (columns: {sorted(present)})")
        for col in parts:
            if rows and col not in present:
                raise SourceError(f"manifest {name}: --meta {col}: no column {col!r} (columns: {sorted(present)})")
            if col in rename:
                raise SourceError(f"manifest {name}: --meta {col}: the column is also --column {rename[col]}={col}; "
                                  f"a column is either a field's files or metadata")
            if col in RESERVED_COLUMNS and col not in rename.values():  # else --column FIELD=OTHER reads the field
                raise SourceError(f"manifest {name}: --meta {col}: {col!r} is a field of its own: the column {col!r} "
                                  f"gives the sample's {col} (key, text, label and split are read from the columns of "
                                  f"their names); to keep it as metadata, read the {col} from another column "
                                  f"(--column {col}=COLUMN), or leave {col!r} out of --meta")
            cols[col] = None
    return tuple(cols)


_NAMED_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _named_fields(columns: Mapping[str, str] | None, where: str, option: str = "--column") -> frozenset[str]:
    """The fields ``--column FIELD=COL`` names that are not standard ones: their files become named
    members (``<key>.depth.png``, read back as the field ``depth.png``) beside the sample's image."""
    out = set()
    for fieldname, col in (columns or {}).items():
        if fieldname in STANDARD_FIELD_EXTS or fieldname in RESERVED_COLUMNS:
            continue
        if not _NAMED_FIELD.fullmatch(fieldname) or fieldname in ("json", "array"):
            raise SourceError(f"{where}: {option} {fieldname}={col}: a field name is 1 to 64 lowercase "
                              f"letters, digits and '_', starting with a letter, and not json or array (it names "
                              f"the member <key>.{fieldname}.<ext>), e.g. depth, mask, caption_de")
        out.add(fieldname)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A ``--path FIELD=TEMPLATE``: the field's file path made from the row's cells.

    ``pieces`` alternate literal text and column names: ``("audio/fold", "fold", "/", "slice_file_name", "")``.
    """

    field: str
    template: str
    pieces: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the template names, in its order (once each)."""
        return tuple(dict.fromkeys(self.pieces[1::2]))

    @property
    def option(self) -> str:
        """How messages name it: ``--path audio=audio/fold{fold}/{slice_file_name}``."""
        return f"--path {self.field}={self.template}"


#: a path part that leaves the folder it is read from: refused in a template and in the values it is filled with
_PARENT_PART = re.compile(r"(^|[/\\])\.\.($|[/\\])")
_ABSOLUTE = re.compile(r"^([/\\]|[A-Za-z]:|[A-Za-z][A-Za-z0-9+.-]*://)")


def path_templates(paths: Mapping[str, str] | None, where: str) -> dict[str, PathTemplate]:
    """Checked ``--path FIELD=TEMPLATE`` options: field -> :class:`PathTemplate`.

    A template is a relative path with ``{column}`` placeholders (``{{`` / ``}}`` for braces); each
    placeholder is the row's cell of that column as written (no format spec or conversion). A template
    that is absolute or holds a ``..`` part is refused: it names files in the manifest's folder (or
    ``--root``) tree, and the rows only fill it in.

    Example:
        >>> path_templates({"audio": "fold{fold}/{slice_file_name}"}, "manifest m.csv")["audio"].columns
        ('fold', 'slice_file_name')
    """
    import string

    out: dict[str, PathTemplate] = {}
    for fieldname, template in (paths or {}).items():
        shown = f"--path {fieldname}={template}"
        if fieldname in ("key", "label", "split"):
            raise SourceError(f"{where}: {shown}: {fieldname!r} is not a file (a template makes a file path); read "
                              f"the {fieldname} from a column with --column {fieldname}=COLUMN")
        if not isinstance(template, str) or not template.strip():
            raise SourceError(f"{where}: {shown}: expected a path with {{column}} placeholders, e.g. "
                              f"--path audio=audio/fold{{fold}}/{{slice_file_name}}")
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise SourceError(f"{where}: {shown}: {exc} (a placeholder is {{column}}; write {{{{ and }}}} for "
                              f"braces in a name)") from None
        pieces: list[str] = [""]  # literal, column, literal, ...: the parser cuts literals at '{{' too
        for literal, col, spec, conversion in parsed:
            pieces[-1] += literal
            if col is None:
                continue
            if not col or spec or conversion:
                raise SourceError(f"{where}: {shown}: placeholder {{{col}{'!' + conversion if conversion else ''}"
                                  f"{':' + spec if spec else ''}}} is not a column name: a placeholder is "
                                  f"{{column}}, the cell as written (no format spec or conversion)")
            pieces += [col, ""]
        if len(pieces) == 1:
            raise SourceError(f"{where}: {shown}: the template names no column, so every row would name one "
                              f"file; give placeholders such as {{slice_file_name}}")
        # the template's own text, with each placeholder as a plain name: no value makes it absolute or '..'
        skeleton = "x".join(pieces[0::2])
        if _ABSOLUTE.match(skeleton) or _PARENT_PART.search(skeleton) or "\x00" in skeleton:
            raise SourceError(f"{where}: {shown}: a template is a relative path without '..' parts (it is read "
                              f"from the manifest's folder, or the --root folder); to name files above the "
                              f"manifest's folder, pass --root DIR (root=) naming a folder that holds them")
        out[fieldname] = PathTemplate(fieldname, template, tuple(pieces))
    return out


def _fill_value(val: Any) -> str | None:
    """A cell as a template fills it in: text as it is, an int as written, a float that is whole as an int
    (a Parquet fold column holding nulls reads as floats: 1.0 fills ``fold{fold}`` as ``fold1``); None for
    other values (lists, mappings)."""
    if isinstance(val, bool):
        return str(val)
    if isinstance(val, float) or (hasattr(val, "dtype") and getattr(val, "ndim", 1) == 0 and val.dtype.kind == "f"):
        return str(int(val)) if math.isfinite(val) and float(val).is_integer() else str(val)
    return _cell_text(val)


def fill_template(tpl: PathTemplate, row: Mapping[str, Any]) -> str | _Cell | None:
    """The path ``tpl`` gives ``row``, or a :class:`_Cell` saying why it gives none (a value that is
    absolute or holds a ``..`` part: the row must not steer the path out of the folder); None when every
    cell it names is blank (the field is absent, as a blank path cell).

    Example:
        >>> t = path_templates({"audio": "fold{fold}/{name}"}, "m")["audio"]
        >>> fill_template(t, {"fold": "2", "name": "a.wav"}), fill_template(t, {"fold": None, "name": ""})
        ('fold2/a.wav', None)
    """
    values = {c: row.get(c) for c in tpl.columns}
    blank = [c for c, v in values.items() if _blank(v)]
    if len(blank) == len(values):
        return None
    parts = list(tpl.pieces)
    for i in range(1, len(parts), 2):
        text = None if parts[i] in blank else _fill_value(values[parts[i]])
        parts[i] = f"{{{parts[i]}}}" if text is None else text
    shown = _shown("".join(parts))  # a placeholder left unfilled stays {column}
    for col, val in values.items():
        if col in blank:
            return _Cell(shown, reason=f"column {col!r} is empty, and the template needs it")
        text = _fill_value(val)
        if text is None:
            return _Cell(shown, reason=f"column {col!r} holds a {type(val).__name__}, not a name to fill the template "
                                       f"with")
        if "\x00" in text:
            return _Cell(shown, reason=f"the value of column {col!r} ({_shown(text)!r}) is refused: it holds a NUL "
                                       f"character, which no file name holds")
        if _ABSOLUTE.match(text) or _PARENT_PART.search(text):
            return _Cell(shown, reason=f"the value of column {col!r} ({_shown(text)!r}) is refused: an absolute path "
                                       f"or a '..' part would name a file outside the folder the template is read "
                                       f"from")
    path = "".join(parts)
    if _ABSOLUTE.match(path) or _PARENT_PART.search(path):  # values that only together make '..' ({a}{b}: '.', '.')
        return _Cell(shown, reason=f"the values of columns {', '.join(map(repr, tpl.columns))} are refused: together "
                                   f"they make an absolute path or a '..' part")
    return path


def _check_templates(templates: Mapping[str, PathTemplate], columns: Mapping[str, str] | None, present: set[str],
                     rename: Mapping[str, str], meta_cols: Sequence[str], name: str,
                     rows: list[dict[str, Any]]) -> None:
    """``--path`` templates against the manifest: each column they name is one of its columns, and no
    other option or column gives their field too (one would vanish without a word)."""
    for fieldname, tpl in templates.items():
        for col in tpl.columns:
            if rows and col not in present:
                raise SourceError(f"manifest {name}: {tpl.option}: no column {col!r} (columns: {sorted(present)})")
        if fieldname in (columns or {}):
            raise SourceError(f"manifest {name}: {tpl.option} and --column {fieldname}={columns[fieldname]} (columns=) "
                              f"both give the field {fieldname!r}: keep one of them")
        if fieldname in present and fieldname not in rename and fieldname not in meta_cols \
                and fieldname not in tpl.columns:
            raise SourceError(f"manifest {name}: {tpl.option}: the manifest also has a column {fieldname!r}, and both "
                              f"would give the field {fieldname!r}; keep that column as metadata (--meta {fieldname}), "
                              f"use it in the template ({{{fieldname}}}) or remove it from the manifest")


def _role_like(col: str, fields: Mapping[str, str]) -> str | None:
    """The ``key`` / ``text`` / ``label`` / ``split`` role whose name ``col`` matches but for case or surrounding
    spaces (``Text``, ``label ``: Excel sheets) when no column has that role: such a column is *not* taken over
    (a ``Key`` of musical keys, a record ``Label`` are metadata; a ``Text`` of caption files is a path column),
    but the warning that it is not read names ``--column ROLE=COL``.

    Example:
        >>> _role_like("Text", {"image": "image"}), _role_like("Text", {"text": "text"}), _role_like("x", {})
        ('text', None, None)
        >>> _role_like("Caption", {"audio": "audio"})
        'text'
    """
    role = col.strip().casefold() if isinstance(col, str) else None
    role = "text" if role in TEXT_LIKE else role  # QA26: AudioCaps' `caption`, Common Voice's `sentence`
    if role not in RESERVED_COLUMNS or role in fields.values():
        return None
    return role


#: column names that hold a sample's text in other tools' manifests (Hugging Face's, AudioCaps', Common Voice's):
#: a column so named that names no files is not taken over, but its warning names ``--column text=COL``
TEXT_LIKE = ("caption", "captions", "sentence", "transcript", "transcription", "utterance")


def _check_renames(columns: Mapping[str, str] | None, present: set[str], meta_cols: Sequence[str], name: str) -> None:
    """A ``--column FIELD=COL`` whose FIELD is also a column of its own (not kept as metadata): both
    would give the field, and one would vanish without a word. So would two fields read from one column
    (``--column image=image --column raw16=image``: a column gives one field; QA42 clinical #4)."""
    read_by: dict[str, str] = {}
    for fieldname, col in (columns or {}).items():
        other = read_by.setdefault(col, fieldname)
        if other != fieldname:
            raise SourceError(f"manifest {name}: --column {other}={col} and --column {fieldname}={col} both read the "
                              f"column {col!r}, and a column gives one field (the other would vanish without a "
                              f"word); keep one of them, or copy the column under a second name in the manifest "
                              f"and read the second field from that copy")
    for fieldname, col in (columns or {}).items():
        if fieldname != col and fieldname in present and fieldname not in meta_cols:
            raise SourceError(f"manifest {name}: --column {fieldname}={col}: the manifest also has a column "
                              f"{fieldname!r}, and both would give the field {fieldname!r}; keep that column as "
                              f"metadata (--meta {fieldname}) or remove it from the manifest")


_NAMES = {"key": "key", "label": "class", "split": "shard files"}


def _field_columns(present: set[str], rename: Mapping[str, str], meta_cols: Sequence[str]) -> dict[str, str]:
    """Column -> the field it gives, for the columns a field reads (not the ``--meta`` ones: with
    ``--column label=speaker --meta label`` the column ``label`` is metadata and ``speaker`` the label)."""
    return {c: rename.get(c, c) for c in present if c not in meta_cols}


def _check_reserved_text(rows: list[dict[str, Any]], fields: Mapping[str, str], name: str) -> None:
    """A key, label or split cell that no UTF-8 file can hold (a lone surrogate from a JSON escape) is an
    error naming its row: these cells name the sample, its class and its shard files. ``fields``: column ->
    the field it gives (:func:`_field_columns`)."""
    cols = [c for c, f in fields.items() if f in _NAMES]
    for i, raw in enumerate(rows if cols else ()):
        for col in cols:
            val, field = raw.get(col), fields[col]
            if isinstance(val, str) and (odd := _lone_surrogate(val)) is not None:
                raise SourceError(f"manifest {name} row {i + 1}, column {col!r}: {_shown(val)!r} is not valid Unicode "
                                  f"(a lone surrogate {val[odd]!r} at character {odd}); a {field} cell is not left out "
                                  f"like a file (it names the sample's {_NAMES[field]}): fix it in the manifest")


#: a CSV / TSV cell as pandas' ``to_csv`` writes a whole-number float (``10.0``, ``-3.0``)
_WHOLE_TEXT = re.compile(r"-?[0-9]+\.0+")


def _check_keys(rows: list[dict[str, Any]], fields: Mapping[str, str], name: str,
                text: bool = False) -> tuple[list[str], bool]:
    """A JSONL / Parquet key cell that is a dict, a list or a bool (a converter that copied the wrong field) is an
    error naming its row: its repr is no key. Whole-number floats (``5.0``: pandas writes an int column with a
    missing value as floats) are read as integers (:func:`_key_of`); the warning that says so is returned, with
    whether a CSV / TSV key column (``text``) is read so: when every filled cell is a whole-number decimal
    (``10.0``), as pandas' ``to_csv`` writes that column, so one DataFrame gives one key set in every format.

    Example:
        >>> _check_keys([{"key": 5.0}, {"key": "a"}], {"key": "key"}, "m.jsonl")[0][0][:60]
        'manifest m.jsonl: 1 key written as a whole-number float (e.g'
        >>> _check_keys([{"key": "10.0"}, {"key": ""}], {"key": "key"}, "m.csv", text=True)[1]
        True
    """
    whole = []
    whole_text = False
    for col in (c for c, f in fields.items() if f == "key"):
        if text:
            filled = [(i, raw.get(col)) for i, raw in enumerate(rows) if not _blank(raw.get(col))]
            whole_text = bool(filled) and all(isinstance(v, str) and _WHOLE_TEXT.fullmatch(v) for _, v in filled)
            whole += filled if whole_text else []
            continue
        for i, raw in enumerate(rows):
            val = raw.get(col)
            if isinstance(val, (Mapping, list, tuple, bytes, bytearray)) or _is_bool(val):
                raise SourceError(f"manifest {name} row {i + 1}, column {col!r}: {_shown(repr(val))} is a "
                                  f"{type(val).__name__}, not a key: a key is a string or an integer")
            if isinstance(val, float) and val.is_integer():
                whole.append((i, val))
    if not whole:
        return [], whole_text
    (i, val), n = whole[0], len(whole)
    return [f"manifest {name}: {plural(n, 'key')} written as {'a ' * (n == 1)}whole-number float{'s' * (n != 1)} (e.g. "
            f"{val!r} in row {i + 1}) {'were' if n != 1 else 'was'} read as {'an ' * (n == 1)}integer{'s' * (n != 1)} "
            f"({_key_of(val, whole_text)!r}): pandas writes an integer column with a missing value as floats; write "
            f"keys as integers or strings to silence this"], whole_text


def _check_blank_keys(rows: list[dict[str, Any]], fields: Mapping[str, str], name: str) -> None:
    """A manifest with a key column whose cell is blank in a row (a null: pandas' ``<NA>`` / ``NaN``, an empty
    CSV cell, a JSONL ``null``) is an error naming the rows, as two rows with one key are: such a row would be
    named after its first file, a key that joins back to nothing in the user's table (QA31 pandas D4). A JSONL
    object without the field has no cell: it is named after its first file, as before (a manifest may key some
    rows only, QA round 3). Rows with every cell empty (a spreadsheet's lines below its table) are no sample.
    A row that names no file either is refused too (it was a listed skip before; the message says so).

    Example:
        >>> _check_blank_keys([{"key": "a", "image": "a.png"}, {"key": None, "image": "b.png"}], {"key": "key"}, "m.parquet")
        Traceback (most recent call last):
        ...
        mmdata.errors.SourceError: manifest m.parquet, column 'key': row 2 has no key (a blank cell); give every row a key, or leave the column out to name each row after its first file
    """
    jsonl = str(name).lower().endswith(".jsonl")
    files = [c for c, f in fields.items() if f not in RESERVED_COLUMNS]
    for col in (c for c, f in fields.items() if f == "key"):
        filled = [i for i, raw in enumerate(rows) if not all(_blank(v) for v in raw.values())]
        blank = [i for i in filled if _blank(rows[i].get(col)) and not (jsonl and col not in rows[i])]
        if not blank:
            continue
        n = len(blank)
        fix = "give every row a key, or leave the column out to name each row after its first file"
        if n == len(filled) and n > 1:
            raise SourceError(f"manifest {name}, column {col!r}: blank in every row ({n} rows); {fix}")
        if jsonl:  # an object without the field has no cell, and is named after its first file (above)
            what = f"a null or blank {col!r}" if n == 1 else f"null or blank {col!r} values"
        else:
            what = "a blank cell" if n == 1 else "blank cells"
        no_file = [i for i in blank if files and all(_blank(rows[i].get(c)) for c in files)]
        also = ""
        if no_file:  # before QA31 pandas D4 such a row was a listed skip (no file): now the key is checked first
            also = (f"; {_rows(no_file)} name{'s' * (len(no_file) == 1)} no file either: a row without a key is "
                    f"refused, not skipped (drop such rows, e.g. df.dropna(subset=[{col!r}]))")
        raise SourceError(f"manifest {name}, column {col!r}: {_rows(blank)} {'have' if n != 1 else 'has'} no key "
                          f"({what}{f'; {n} rows in all' if n > 5 else ''}){also}; {fix}")


def _form(text: str) -> str:
    return "NFC" if unicodedata.is_normalized("NFC", text) else "NFD" if unicodedata.is_normalized("NFD", text) else \
        "neither NFC nor NFD"


def _repeated_key_error(name: str, rows: list[dict[str, Any]], rename: Mapping[str, str], whole_keys: bool,
                        j: int, i: int, left_alone: Iterable[Any] = (), file: str | None = None) -> str:
    """The error of a manifest whose key column gives one key to rows ``j`` and ``i`` (0-based): every key so
    repeated counted, a few named with their rows, and the remedy for what they are: rows repeated exactly (a
    batch delivered twice: drop the copies), values that differ only in their Unicode form (NFC / NFD: keys are
    compared in NFC, as file names are), or distinct rows (give each its own key) (QA37 vendor #7, podcast #8)."""
    col = next((c for c, f in rename.items() if f == "key" and c not in left_alone), "key")
    seen: dict[str, list[int]] = {}
    for n, r in enumerate(rows):
        v = r.get(col)
        if not _blank(v):
            seen.setdefault(_nfc(_key_of(v, whole_keys)), []).append(n)
    repeated = {k: ns for k, ns in seen.items() if len(ns) > 1}
    extra_rows = sum(len(ns) - 1 for ns in repeated.values())
    copies = sum(1 for ns in repeated.values() for n in ns[1:] if rows[n] == rows[ns[0]])
    forms = {k for k, ns in repeated.items() if len({_key_of(rows[n][col], whole_keys) for n in ns}) > 1}
    shown = "; ".join(f"{k!r}: rows {', '.join(str(n + 1) for n in ns[:4])}{', ...' if len(ns) > 4 else ''}"
                      for k, ns in list(repeated.items())[:3]) + ("; ..." if len(repeated) > 3 else "")
    said = (f"manifest {name}: rows {j + 1} and {i + 1} are both sample {_key_of(rows[i][col], whole_keys)!r}"
            + ("" if extra_rows == 1 else f" ({extra_rows} rows repeat the key of an earlier row in key column "
                                         f"{col!r}, {plural(len(repeated), 'key')}: {shown})"))
    if copies == extra_rows:
        given = shlex.quote(file or str(name))
        plain, packed = posixpath.splitext(str(name))
        if packed in _CAT:  # awk reads text: the gzip bytes decompressed first (QA37 review srcarr #7)
            fix = f"e.g. {_CAT[packed]} {given} | awk '!seen[$0]++' > deduplicated{posixpath.splitext(plain)[1]}"
        else:
            fix = ("pd.read_parquet(...).drop_duplicates()" if packed == ".parquet"
                   else f"e.g. awk '!seen[$0]++' {given} > deduplicated{packed}")
        every = "every repeated row is" if extra_rows > 1 else "the second row is"
        return (f"{said}; {every} an exact copy of an earlier one (a batch delivered or appended twice?): drop the "
                f"repeated rows ({fix}) and shard again")
    if forms and len(forms) == len(repeated):
        a = next(iter(forms))
        spelled = sorted({_key_of(rows[n][col], whole_keys) for n in repeated[a]})
        return (f"{said}; the values of key column {col!r} differ only in their Unicode normalisation (NFC and "
                f"NFD: e.g. {' and '.join(f'{ascii(v)} ({_form(v)})' for v in spelled)}), and keys are compared in NFC, "
                f"as file names are, so each pair is one sample; if they are one sample, keep one row; if two, make "
                f"the values differ in more than their Unicode form")
    also = f" ({copies} of the repeated rows are exact copies of an earlier row: drop those)" if copies else ""
    return f"{said}; give each row its own key in column {col!r}{also}"


def _key_of(val: Any, whole_text: bool = False) -> str:
    """A key cell as the sample's key: ``5.0`` is ``'5'`` and so is a CSV cell ``'5.0'`` of a column
    :func:`_check_keys` reads as integers (``whole_text``), other values as written."""
    if whole_text and isinstance(val, str):
        return str(int(val.partition(".")[0]))
    return str(int(val)) if isinstance(val, float) and val.is_integer() else str(val)


#: a CSV bool as Python (and pandas' ``to_csv``) writes one
_CSV_BOOLS = {"True": True, "False": False}


def _meta_types(rows: list[dict[str, Any]], cols: Sequence[str]) -> dict[str, Callable[[str], Any]]:
    """For a CSV manifest (all cells text): the metadata columns whose every filled cell reads back as
    written, with the function that reads a cell — ``int`` when each is an integer as Python writes one
    (``12``, ``-3``; not ``+49``, ``007``, ``1_000``), ``float`` when each is such an integer or a float as
    Python writes one (``1.5``, ``2.0``, ``1e-05``; not ``1.10``, ``1e3`` or 20 significant digits), ``bool``
    when each is ``True`` or ``False``, as Python and pandas' ``to_csv`` write them (not ``true``, ``TRUE``,
    ``yes``, which Python writes for no bool); other columns stay text, so no cell changes."""
    out: dict[str, Callable[[str], Any]] = {}
    for col in cols:
        cells = [str(r[col]) for r in rows if not _blank(r.get(col))]
        if not cells:
            continue
        ints = [bool(_CSV_INT.fullmatch(c)) for c in cells]
        if all(ints):
            out[col] = int
        elif all(i or _float_as_written(c) for i, c in zip(ints, cells)):
            out[col] = float
        elif all(c in _CSV_BOOLS for c in cells):
            out[col] = _CSV_BOOLS.__getitem__
    return out


def _lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone UTF-16 surrogate (``"\\ud800"`` from a JSON escape of cut text),
    which no UTF-8 file can hold; None when it holds none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def _float_as_written(cell: str) -> bool:
    try:
        v = float(cell)
    except ValueError:
        return False
    return math.isfinite(v) and repr(v) == cell


def _meta_value(val: Any, depth: int = 0) -> tuple[Any, str | None]:
    """A manifest cell as a JSON value, or ``(None, why)`` when JSON cannot hold it.

    Decimals become ints / floats when that keeps their value, else their digits as text; durations
    their seconds; dates and times ISO 8601 text."""
    import datetime
    import decimal

    import numpy as np

    if depth > MAX_META_DEPTH:
        return None, f"lists / mappings nested more than {MAX_META_DEPTH} levels deep"
    if _is_missing(val):
        return None, None
    if isinstance(val, np.generic):
        val = val.item()
    if isinstance(val, np.ndarray):
        val = val.tolist()
    if isinstance(val, float) and not math.isfinite(val):
        return None, f"{val} is not a JSON number"
    if isinstance(val, str):
        odd = _lone_surrogate(val)
        if odd is not None:
            return None, f"text with a lone surrogate {val[odd]!r} at character {odd} (not valid Unicode)"
        return val, None
    if val is None or isinstance(val, (bool, int, float)):
        return val, None
    if isinstance(val, decimal.Decimal):
        if not val.is_finite():
            return None, f"{val} is not a JSON number"
        if val == val.to_integral_value():
            return int(val), None
        return (float(val), None) if decimal.Decimal(repr(float(val))) == val else (str(val), None)
    if isinstance(val, datetime.timedelta):
        return val.total_seconds(), None
    if isinstance(val, (datetime.date, datetime.time)):  # pandas' Timestamp is a datetime
        return (None, None) if val != val else (val.isoformat(), None)  # pandas' NaT is a missing time
    if isinstance(val, (list, tuple)):
        items = [_meta_value(v, depth + 1) for v in val]
        why = next((w for _, w in items if w is not None), None)
        return (None, why) if why else ([v for v, _ in items], None)
    if isinstance(val, Mapping):
        if not all(isinstance(k, str) for k in val):
            return None, "a mapping with keys that are not text (JSON object keys are text)"
        pairs = {k: _meta_value(v, depth + 1) for k, v in val.items()}
        why = next((w for _, w in pairs.values() if w is not None), None)
        return (None, why) if why else ({k: v for k, (v, _) in pairs.items()}, None)
    return None, f"a {type(val).__name__} value (metadata are text, numbers, booleans, lists and mappings of them)"


def value_kind(val: Any) -> str:
    """The kind of a JSON metadata value, as :func:`common_kind` combines them: ``null``, ``bool``,
    ``int`` (within +-2^53, exact as a float), ``int64``, ``float``, ``string``, ``list<KIND>`` or
    ``json`` (a mapping, a list of lists, an int beyond int64: kept as JSON text by tabular exports).

    Example:
        >>> [value_kind(v) for v in (None, True, 3, 2**60, 1.5, "a", [1, 2.5], {"k": 1})]
        ['null', 'bool', 'int', 'int64', 'float', 'string', 'list<float>', 'json']
    """
    if val is None:
        return "null"
    if isinstance(val, bool):
        return "bool"
    if isinstance(val, int):
        return "int" if abs(val) <= 1 << 53 else "int64" if -(1 << 63) <= val < 1 << 63 else "json"
    if isinstance(val, float):
        return "float"
    if isinstance(val, str):
        return "string"
    if isinstance(val, list):
        inner = common_kind(value_kind(v) for v in val)
        return "json" if inner == "json" or inner.startswith("list<") else f"list<{inner}>"
    return "json"


def common_kind(kinds: Any) -> str:
    """One kind for a column whose values have these kinds (:func:`value_kind`); ``json`` when they do
    not share one (text with numbers, an int64 beyond 2^53 with floats).

    Example:
        >>> common_kind(["int", "null", "float"]), common_kind(["list<int>", "list<null>"]), common_kind(["int", "string"])
        ('float', 'list<int>', 'json')
    """
    ks = {k for k in kinds if k != "null"}
    if not ks:
        return "null"
    if len(ks) == 1:
        return ks.pop()
    if ks <= {"int", "int64"}:
        return "int64"
    if ks <= {"int", "float"}:
        return "float"
    if all(k.startswith("list<") for k in ks):
        inner = common_kind(k[5:-1] for k in ks)
        return "json" if inner == "json" else f"list<{inner}>"
    return "json"


def _meta_member(row: Mapping[str, Any], cols: Sequence[str], types: Mapping[str, Callable[[str], Any]] | None,
                 bad: Callable[[str, str, str], None], kinds: dict[str, set[str]] | None = None,
                 nulled: list[tuple[str, str]] | None = None) -> bytes:
    """One sample's ``.json`` member from its metadata cells. ``types``: a CSV manifest's column types
    (:func:`_meta_types`; a blank CSV cell is ``null``); None for JSONL / Parquet, whose values are kept
    as they are (``""`` stays ``""``). ``kinds``: each column's value kinds, added to (:func:`value_kind`).
    ``nulled``: ``(column, cell as written)`` of each NaN / infinite number, added to: stored as null (JSON has no
    such numbers), a warning, not a cell left out (QA40 hostile #6); a blank CSV cell is no NaN written."""
    obj: dict[str, Any] = {}
    for col in cols:
        val = written = row.get(col)
        if types is not None and isinstance(val, str):
            val = None if not val.strip() else types[col](val) if col in types else val
        if (nulled is not None and isinstance(val, float) and not math.isfinite(val)
                and not (types is not None and val != val)):  # JSONL / Parquet: a CSV column holding inf / nan is
            # text (_float_as_written), its cells stored as written; a CSV's NaN is a blank cell (read with
            # na_values=[""]): null, unsaid, as before (QA40 full run: every blank 'speaker' cell was warned of)
            obj[col] = None
            nulled.append((col, _shown(str(written))))
            if kinds is not None:
                kinds.setdefault(col, set()).add("null")
            continue
        obj[col], why = _meta_value(val)
        if why is not None:
            bad(_shown(str(row.get(col))), col, f"cannot be stored as JSON metadata: {why} (null in the sample's "
                                                f".json member)")
        if kinds is not None:
            kinds.setdefault(col, set()).add(value_kind(obj[col]))
    return json_member(obj)


def json_member(obj: Any, allow_nan: bool = False) -> bytes:
    """The bytes of a ``.json`` member: keys sorted, compact, UTF-8 (the same value, the same bytes).
    ``allow_nan``: write NaN / inf as Python's json does (a foreign member that held them) instead of
    raising ValueError."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=allow_nan).encode("utf-8")


#: a split names shard files (``<split>-000000.tar`` inside the output folder): no folders, no hidden files
_SPLIT_NAME = re.compile(r"[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,99}")
#: the split names ``mmdata train`` / ``ablate`` read, and common other spellings of them
STANDARD_SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"training": "train", "dev": "val", "valid": "val", "validation": "val", "validate": "val",
                  "testing": "test"}
#: a Windows absolute path (``C:\\Users\\x.png``, ``\\\\server\\share``): no file on this machine has it
_WINDOWS_ABS = re.compile(r"([A-Za-z]:[\\/]|\\\\[^\\])")
_WINDOWS_PATH = ("a Windows path (a drive, a network share, or the top folder of a drive: a leading '\\'): no file "
                 "here has it; write the paths relative to the manifest's folder (images/dog.png), or to the folder "
                 "you pass as --root")
_ID_LABEL = re.compile(r"\s*\d+(\.0)?\s*")
#: a number as a person writes one in a label file or cell (``float`` also reads ``1_0``, ``inf``, ``nan``)
_DECIMAL = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_NEGATIVE_LABEL = re.compile(r"\s*-\d+(\.0)?\s*")
#: cells longer than this are cut in reports (a caption in a column read as paths)
_LONG_CELL = 200
_ESCAPES = "the path escapes the manifest's folder"
#: a cell naming no file whose name on disk differs only in case / in spaces at its ends (the file: _Cell.near)
_CASE_ONLY = ("file not found, but a file whose name differs only in case exists (Windows and macOS ignore case, Linux "
              "does not): write the name as it is on disk")
_SPACES_AT_END = ("file not found: the cell has spaces at its start or end, and the file named without them exists; "
                  "delete the spaces")
_ESCAPES_ROOT = "the path escapes the --root folder"


def check_split_name(name: str, where: str) -> str:
    """``name`` when it can name shard files (``<split>-000000.tar`` inside the output folder), else a
    SourceError naming ``where``: no ``/`` or ``\\``, no control characters, no leading ``.``, at most
    100 characters.

    Example:
        >>> check_split_name("val", "--split")
        'val'
    """
    if not isinstance(name, str) or not _SPLIT_NAME.fullmatch(name):
        raise SourceError(f"{where}: split {str(name)[:120]!r} cannot name shard files (<split>-000000.tar in the "
                          f"output folder): use 1 to 100 characters without '/', '\\', control characters or a "
                          f"leading '.', e.g. train, val, test")
    return name


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _blank_text(text: str) -> bool:
    """A caption with nothing to read: only spaces and invisible format characters (zero-width space,
    joiners, a BOM)."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def _python_list(text: str) -> bool:
    """Whether a cell reads as a Python list of strings (``"['a dog', 'a cat']"``)."""
    import ast

    try:
        value = ast.literal_eval(text) if len(text) < 100_000 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _blank(v: Any) -> bool:
    """An empty cell: missing, or a string of spaces (never compares arrays: list cells are values)."""
    return _is_missing(v) or (isinstance(v, str) and not v.strip())


def _shown(cell: str) -> str:
    """A cell as reports name it: a long one (a caption in a column of paths) cut, with its length; a
    lone surrogate (no UTF-8 card can hold one) as its escape, ``\\ud800``; a secret a URL in it carries
    (``https://user:pw@host/a.jpg?token=...``) masked (:func:`mmdata.urls.redact_text`): the card is published."""
    from mmdata.urls import redact_text

    if _lone_surrogate(cell) is not None:
        cell = cell.encode("utf-8", "backslashreplace").decode("utf-8")
    cell = redact_text(cell)
    return cell if len(cell) <= _LONG_CELL else f"{cell[:_LONG_CELL - 40]}... ({len(cell)} characters)"


def _rows(indices: list[int], k: int = 5) -> str:
    """``row 3`` / ``rows 1, 4, 9, ...`` (1-based) for reports."""
    shown = ", ".join(str(i + 1) for i in indices[:k]) + (", ..." if len(indices) > k else "")
    return f"row{'s' * (len(indices) != 1)} {shown}"


def _head(path: str | Path) -> bytes:
    """A file's first 1024 bytes (enough to tell a Git LFS pointer); b"" when it cannot be read (the
    reader that follows says why)."""
    try:
        with open(path, "rb") as f:
            return f.read(1024)
    except (OSError, ValueError):
        return b""


def _csv_records(df: Any) -> list[dict[str, Any]]:
    """A CSV's rows as dicts, as ``df.to_dict(orient="records")`` gives them (every column read as text: a
    cell's ``str``, a blank one NaN), column by column through NumPy: 4x faster at 100k rows (QA38 sites #5).

    Example:
        >>> import pandas as pd
        >>> _csv_records(pd.DataFrame({"a": ["x", None], "b": ["1", "2"]}, dtype=str))
        [{'a': 'x', 'b': '1'}, {'a': nan, 'b': '2'}]
    """
    names = list(df.columns)
    cols = [df[c].to_numpy(dtype=object).tolist() for c in names]
    return [dict(zip(names, cells)) for cells in zip(*cols)]


def read_manifest(path: str | Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV / JSONL / Parquet manifest as dicts (``data``: its bytes, fetched from a URL;
    ``path`` then only names it and its type).

    CSV and JSONL are read as UTF-8 (a leading BOM is allowed). Errors name the file and the line:
    a line that is not UTF-8, a JSONL line that is not a JSON object, a CSV line with the wrong number
    of fields; a CSV whose only column looks ``;``-, tab- or ``|``-separated gets that hint.

    Example:
        >>> read_manifest("m.jsonl", b'{"image": "a.png", "label": 0}\\n')
        [{'image': 'a.png', 'label': 0}]
    """
    import csv
    import io

    import pandas as pd

    stem, suffix = os.path.splitext(str(path))
    suffix = suffix.lower()
    if is_lfs_pointer(data[:1024] if data is not None else _head(path)):  # a CSV of one odd column, else
        raise SourceError(f"manifest {path}: {LFS_POINTER}")
    if suffix in COMPRESSED_SUFFIXES:  # Lhotse writes cuts.jsonl.gz: decompressed by suffix, as pandas does
        inner = os.path.splitext(stem)[1].lower()
        if suffix != ".gz" or inner not in (".csv", ".tsv", ".jsonl", ".json"):
            raise SourceError(f"manifest {path}: a {suffix} file of type {inner or 'unknown'!r}; mmdata reads "
                              f"{', '.join(m + '.gz' for m in ('.csv', '.tsv', '.jsonl'))} itself: decompress it first "
                              f"and pass the file it gives (e.g. {_DECOMPRESS[suffix]} {shlex.quote(str(path))})")
        if data is None:
            data = Path(path).read_bytes()
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"manifest {path}: not a readable gzip file ({exc}); decompress it with gunzip -k to "
                              f"see why, or pass the uncompressed manifest") from None
        path_shown, path = path, stem
        try:
            return read_manifest(path, data)
        except SourceError as exc:
            raise SourceError(str(exc).replace(f"manifest {path}", f"manifest {path_shown}", 1)) from None
    if suffix not in MANIFEST_SUFFIXES and suffix != ".txt":
        json_hint = ""
        if suffix == ".json":  # an annotation tool's export (Label Studio, COCO): a list of objects, or one object
            json_hint = _json_hint(str(path), data)
        raise SourceError(f"manifest {path}: unsupported type {suffix!r}; use one of {MANIFEST_SUFFIXES}{json_hint}")
    try:
        if suffix == ".parquet":
            return _parquet_rows(path if data is None else io.BytesIO(data))
        if data is None:
            data = Path(path).read_bytes()
        text = _manifest_text(data, path) if suffix != ".txt" or data[:2] in (b"\xff\xfe", b"\xfe\xff") or \
            b"\t" in data.partition(b"\n")[0] else None
        if text is None:  # a .txt is a manifest only as a tab-separated table (Excel's "Unicode text", "Text")
            raise SourceError(f"manifest {path}: unsupported type '.txt' (a .txt is read as a manifest only when it "
                              f"is tab-separated, as Excel's 'Unicode text' export); use one of {MANIFEST_SUFFIXES}")
        if suffix == ".jsonl":
            return lhotse_cut_rows(_jsonl_rows(text, path), path)
        sep = "\t" if suffix in (".tsv", ".txt") else ","
        lines_before = 1 if _SEP_LINE.match(text) else 0  # Excel's sep= line: rows are named by their file line
        text, sep = _sep_line(text, sep, path)
        # a TSV's '"' is a character of its cell, unless the file is Excel's: its "Unicode text" export (UTF-16
        # with a byte order mark) quotes a cell holding '"', a tab or a newline ("a 12"" record"), as CSV does
        quoting = _tsv_quoting(text, utf16_of(data)[1]) if sep == "\t" else csv.QUOTE_MINIMAL
        sniffed = None
        if sep == ",":  # a one-cell header holding ';': Excel's CSV where ',' is the decimal mark (QA42 clinical #8),
            # whose '30,5' cells would otherwise get the advice to quote commas; read by it when every line says so
            head_cells = next(csv.reader(io.StringIO(text, newline="")), [])
            sniffed = _sniffed_sep(head_cells, text, utf16_of(data)[1])
            if sniffed is None:
                _check_one_column_header(head_cells, path, text)
            else:
                sep = sniffed
                quoting = _tsv_quoting(text, utf16_of(data)[1]) if sep == "\t" else csv.QUOTE_MINIMAL
        _check_row_widths(text, sep, quoting, path, lines_before)
        # index_col=False: rows wider than the header are refused above; pandas would otherwise make their first
        # cell the row index and shift every column (QA27 H1-D1: an unquoted ',' in every caption lost the images)
        df = pd.read_csv(io.StringIO(text, newline=""), dtype=str, keep_default_na=False, na_values=[""], sep=sep,
                         quoting=quoting, index_col=False)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the file
        raise SourceError(f"manifest {path}: cannot parse ({type(exc).__name__}: {exc})") from exc
    if len(df.columns) == 1 and sep == ",":
        _check_one_column_header([str(df.columns[0])], path, text)
    # newline="": a CR-only file (Excel's "CSV (Macintosh)") is read line by line, as pandas reads it
    # (the header read again: pandas renames a repeated column to "text.1")
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting), [])
    blank = [i for i, c in enumerate(header) if c == "" and i < len(df.columns)]
    if len(blank) > 1:  # Excel's export of a sheet with formatted empty columns: image,text,label,,,
        full = [i for i in blank if df.iloc[:, i].notna().any()]
        if full:
            i = full[0]
            row = int(df.iloc[:, i].notna().to_numpy().argmax())
            raise SourceError(f"manifest {path}: column {i + 1} has no name in the header but holds values (row "
                              f"{row + 1}: {_shown(str(df.iloc[row, i]))!r}); give it a name in the header, or delete "
                              f"it")
        df = df.drop(columns=[df.columns[i] for i in blank])  # empty in every row: nothing to read
        header = [c for c in header if c != ""]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise SourceError(f"manifest {path}: column(s) {[_shown(c) for c in twice]} appear more than once in its "
                          "header; give each column once")
    if not sniffed:
        return _csv_records(df)
    rows = _Rows(_csv_records(df))
    what = {";": "semicolon", "\t": "tab"}[sniffed]
    decimal = (" (its decimal commas, such as '30,5', are read as text: convert numbers you need with "
               "pandas.read_csv(path, sep=';', decimal=','))" if sniffed == ";" and _DECIMAL_COMMA.search(text) else "")
    # named as the manifest's other warnings name it (its file name)
    rows.notes = [f"manifest {os.path.basename(str(path))} is {what}-separated (its header and every line split "
                  f"into the same {len(header)} columns by {_SEP_NAMES[sniffed]}, and not by commas): it was read "
                  f"so{decimal}; save it comma-separated{' or as .tsv' if sniffed == chr(9) else ''} to silence this"]
    return rows


def _sniffed_sep(header: Sequence[str], text: str, utf16_bom: bool = False) -> str | None:
    """The separator of a .csv that is clearly not comma-separated (QA33 multisite #8: a European Excel export):
    ``;`` or a tab when the header read by commas is one cell holding it, the header splits into two or more
    columns by it, every other line into as many, and the other candidate does not; else None (refused with
    advice by :func:`_check_one_column_header`: a file read two ways is not guessed at). ``utf16_bom``: the file
    is Excel's UTF-16 export, whose tab reading quotes cells (:func:`_tsv_quoting`), as the file is then read.

    Example:
        >>> _sniffed_sep(["image;label"], "image;label\\na.png;cat\\nb.png;3,5\\n")
        ';'
        >>> _sniffed_sep(["image;label"], "image;label\\na.png;cat;x\\n") is None
        True
    """
    import csv
    import io

    if len(header) != 1:
        return None
    fits = []
    for sep in (";", "\t"):
        if sep not in header[0]:
            continue
        quoting = _tsv_quoting(text, utf16_bom) if sep == "\t" else csv.QUOTE_MINIMAL
        try:
            widths = {len(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting) if r}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() >= 2:
            fits.append(sep)
    return fits[0] if len(fits) == 1 else None


def _check_one_column_header(header: Sequence[str], path: str | Path, text: str = "") -> None:
    """A .csv whose header is one cell holding ';', a tab or '|' is an error saying the file looks separated by it
    (Excel writes ';' where ',' is the decimal mark), before any row's cells are counted. Its advice reads decimal
    commas only when the file's ``text`` holds one (``30,5``): ``decimal=','`` would read ``30.5`` as text.

    Example:
        >>> try:
        ...     _check_one_column_header(["image;age"], "m.csv")
        ... except SourceError as exc:
        ...     str(exc)[:76]
        "manifest m.csv: its header is one column 'image;age': the file looks semicol"
    """
    if len(header) != 1:
        return
    head = str(header[0])
    other = next((c for c in (";", "\t", "|") if c in head), None)
    if other is not None:
        what = {";": "semicolon", "\t": "tab", "|": "'|'"}[other]
        decimal = ", decimal=','" if other == ";" and _DECIMAL_COMMA.search(text) else ""
        fix = ("rename it to .tsv (read as tab-separated)" if other == "\t" else
               f"convert it (e.g. pandas.read_csv(path, sep={other!r}{decimal}).to_csv(new_path, index=False))")
        raise SourceError(f"manifest {path}: its header is one column {_shown(head)!r}: the file looks "
                          f"{what}-separated, and mmdata reads a .csv as comma-separated; {fix}")


#: a decimal comma in a cell (``30,5``): Excel's ';'-separated CSV in a locale writing them
_DECIMAL_COMMA = re.compile(r"\d,\d")

_SEP_LINE = re.compile(r"sep=(.)\r?(?:\n|\r|$)", re.IGNORECASE)

_SEP_NAMES = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def _check_row_widths(text: str, sep: str, quoting: int, path: str | Path, lines_before: int = 0) -> None:
    """A CSV / TSV row with more cells than the header is an error naming its line(s): a cell holding the
    separator that was not quoted (``hello, world`` in a caption). Read on, pandas either fails on the first
    such row or, when every row has one cell too many, makes the first cell the row index and shifts the
    columns (the image column lost, captions cut) — or, with ``index_col=False``, drops the last cells without
    a word. Extra cells that are all empty (a trailing separator on every line) lose nothing and are allowed.
    ``lines_before``: lines of the file above ``text`` (Excel's ``sep=`` line).

    Example:
        >>> _check_row_widths("image,text\\na.png,a cat,\\n", ",", 0, "m.csv")
        >>> try:
        ...     _check_row_widths("image,text\\na.png,hello, world\\n", ",", 0, "m.csv")
        ... except SourceError as exc:
        ...     str(exc)[:76]
        "manifest m.csv: 1 row has more cells than the header's 2 (line 2: 3 cells 'a"
    """
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)
    wide: list[tuple[int, list[str]]] = []  # the first few (named), and how many in all
    n = 0
    width = None
    try:
        for row in reader:
            if not row:
                continue  # a blank line: pandas skips it too
            if width is None:
                width = len(row)
            elif len(row) > width and any(c.strip() for c in row[width:]):
                n += 1
                if len(wide) < 6:
                    wide.append((reader.line_num + lines_before, row))
    except csv.Error:  # a cell over the csv module's field size limit: pandas reads it; nothing said here
        pass
    if not wide:
        return
    line, row = wide[0]
    cells = ", ".join(repr(_shown(c)) for c in row[:6]) + (", ..." if len(row) > 6 else "")
    more = f"; lines {', '.join(str(w[0]) for w in wide[1:6])}{', ...' if n > 6 else ''}" if n > 1 else ""
    what = _SEP_NAMES.get(sep, repr(sep))
    example = f' ("hello{sep} world")' if sep != "\t" else ""
    raise SourceError(f"manifest {path}: {plural(n, 'row')} {'have' if n != 1 else 'has'} more cells than the header's "
                      f"{width} (line {line}: {len(row)} cells {cells}{more}): a cell holding the separator {what} "
                      f"must be quoted{example} — quote such cells (a spreadsheet's 'Save as CSV' does), "
                      f"or give the extra column a name in the header")


def _sep_line(text: str, sep: str, path: str | Path) -> tuple[str, str]:
    """Excel's ``sep=;`` first line (the separator the file uses, a line of its own before the header): the
    text without it and that separator; one that is not ``,``, ``;``, a tab or ``|`` is an error naming it.

    Example:
        >>> _sep_line("sep=;\\nimage;label\\n", ",", "m.csv")
        ('image;label\\n', ';')
    """
    m = _SEP_LINE.match(text)
    if m is None:
        return text, sep
    given = m.group(1)
    if given not in (",", ";", "\t", "|"):
        raise SourceError(f"manifest {path}: its first line {m.group(0).rstrip()!r} (Excel's separator line) names "
                          f"the separator {given!r}; mmdata reads ',', ';', tab or '|': save the manifest as CSV")
    return text[m.end():], given


def _tsv_quoting(text: str, bom: bool) -> int:
    """How a tab-separated manifest quotes: as CSV does (``csv.QUOTE_MINIMAL``) when it is Excel's (a UTF-16
    byte order mark: its "Unicode text" export), or when the file reads unambiguously so: every quoted cell is
    one Excel would quote (it holds '"', a tab or a line break: ``"a 12"" record"``, a quoted newline), the
    quoted reading gives every row one width, and the unquoted one does not already read every line as a row of
    the header's width; else not at all (``csv.QUOTE_NONE``: a '"' is a character of its cell, as in ``"Hello"
    she said``, ``"Stop!"`` or an unclosed ``"A man riding a horse`` that would swallow the lines after it).

    Example:
        >>> import csv
        >>> _tsv_quoting('a\\tb\\nx\\t"12"" record"\\n', False) == csv.QUOTE_MINIMAL
        True
        >>> _tsv_quoting('a\\tb\\nx\\t"Stop!"\\n', False) == csv.QUOTE_NONE
        True
    """
    import csv
    import io

    if not re.search(r'(?:^|\t|\n|\r)"', text):
        return csv.QUOTE_NONE
    if bom:
        return csv.QUOTE_MINIMAL
    try:  # strict: a '"' that opens a cell but does not close it before a tab or line end is an error
        widths = {len(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True) if r}
    except csv.Error:
        return csv.QUOTE_NONE
    if len(widths) != 1:
        return csv.QUOTE_NONE
    # the strict parse succeeded, so every '"' that starts a cell opens a quoted cell closed before a tab / line end
    quoted = [m.group(1) for m in _TSV_QUOTED.finditer(text)]
    if not quoted or not all(any(c in q for c in '"\t\n\r') for q in quoted):
        return csv.QUOTE_NONE  # "Stop!", "" : quotes Excel would not write, so characters of their cells
    if any(c in q for q in quoted for c in "\t\n\r"):
        # a quoted tab or line break: a '"' opening a caption and another closing one lines below keep the width;
        # when every line already is a row of the header's width, the lines are the rows (nothing merged)
        lines = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE) if r]
        if len({len(r) for r in lines}) == 1:
            return csv.QUOTE_NONE
    return csv.QUOTE_MINIMAL


#: a quoted cell of a tab-separated text that parses strictly: '"' at a cell's start, '""' inside, '"' at its end
_TSV_QUOTED = re.compile(r'(?:^|(?<=[\t\n\r]))"((?:[^"]|"")*)"(?=[\t\n\r]|$)')


#: compressed manifests: ``.gz`` of a CSV / TSV / JSONL is read; the others are named with the command that
#: decompresses them
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")
#: the command that writes a compressed file's text to stdout
_CAT = {".gz": "zcat", ".bz2": "bzcat", ".xz": "xzcat", ".zst": "zstdcat"}
_DECOMPRESS = {".gz": "gunzip -k", ".bz2": "bunzip2 -k", ".xz": "unxz -k", ".zst": "unzstd", ".zip": "unzip"}


def _nested_rows_hint(rows: Sequence[Mapping[str, Any]], given: str, out: str = "rows.jsonl",
                      each: bool = False) -> str:
    """What to say of rows whose field holds a list of objects (a per-episode transcript, ``{"audio": "ep01.wav",
    "utterances": [{"start": 0, "end": 3, "text": ...}, ...]}``): a manifest is a row per sample, so each item
    becomes a row, the object's other (scalar) fields copied onto it, with jq (a name that is no identifier, or is a
    jq keyword such as ``label`` or ``end``, as ``"audio file": .["audio file"]``); "" when no field is such a list. ``each``: the file is a JSON array of such
    objects (``.[] |`` first: one command, QA37 review srcarr #8).

    Example:
        >>> _nested_rows_hint([{"audio": "ep.wav", "utterances": [{"start": 0, "end": 3}]}], "ep.json")[:72]
        "; field 'utterances' holds a list of objects (1 of them, with 'end', 'st"
    """
    for row in rows[:1]:
        if sum(isinstance(v, (list, dict)) for v in row.values()) != 1:  # COCO: images, annotations, categories
            return ""
        for col, val in row.items():
            if isinstance(val, list) and val and all(isinstance(v, dict) for v in val):
                inner = sorted({k for v in val for k in v})
                shown = ", ".join(repr(k) for k in inner[:6]) + (", ..." if len(inner) > 6 else "")
                scalars = [k for k, v in row.items() if k != col and not isinstance(v, (list, dict))]
                # the shorthand {k} fails in jq 1.6 for a keyword (label, end, if, and: QA37 review r3c #2) and for
                # a name that is no identifier: those as "k": .["k"]
                add = (" + {" + ", ".join(k if _JQ_NAME.fullmatch(k) and k not in _JQ_KEYWORDS
                                          else f"{json.dumps(k)}: .[{json.dumps(k)}]" for k in scalars) + "}"
                       ) if scalars else ""
                each_of = f" (each with its object's {', '.join(map(repr, scalars))})" if scalars else ""
                path = f".{col}[]" if _JQ_NAME.fullmatch(col) else f".[{json.dumps(col)}][]"
                prog = shlex.quote(f"{'.[] | ' if each else ''}{path}{add}")
                return (f"; field {col!r} holds a list of objects ({len(val)} of them"
                        f"{' in the array' + chr(39) + 's first object' if each else ''}, with {shown}): a manifest is a row per sample, so "
                        f"write each of them as a row{each_of}, one JSON object per line (e.g. jq -c {prog} "
                        f"{shlex.quote(given)} > {shlex.quote(out)}; for many such files: for f in *.json; do jq -c "
                        f"{prog} \"$f\"; done > {shlex.quote(out)}) and shard that")
    return ""


#: a name jq reads as ``.name`` and, unless a keyword, ``{name}``
_JQ_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: the names jq 1.6 refuses as ``{name}`` (``.name`` it takes): its keywords, each tried with jq 1.6
_JQ_KEYWORDS = frozenset({"if", "then", "elif", "else", "end", "as", "def", "reduce", "foreach", "try", "catch",
                          "label", "import", "include", "module", "and", "or", "not", "__loc__"})


def _json_hint(given: str, data: bytes | None) -> str:
    """What to do with a ``.json`` manifest, by its first line: JSON Lines (one object per line) is a rename;
    an array of row objects is a ``jq -c '.[]'``; one object (COCO's annotation file) is no table of samples.
    (QA: ``jq -c '.[]'`` of a JSON Lines file writes every value as a line of its own, silently.)

    Example:
        >>> _json_hint("rows.json", b'{"a": 1}\\n{"a": 2}\\n')
        '; the file holds JSON Lines (one object per line): rename it to .jsonl (mv rows.json rows.jsonl)'
    """
    to = given[:-5] + ".jsonl"
    if data is None:
        try:
            with open(given, "rb") as f:
                data = f.read(1 << 16)
        except OSError:
            data = b""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:  # one object holding its rows in a field (a per-episode transcript): not JSON Lines, whatever its lines
        whole = json.loads(body)
    except ValueError:
        whole = None
    nested = (_nested_rows_hint([whole], given, posixpath.basename(to)) if isinstance(whole, dict) else
              _nested_rows_hint(whole, given, posixpath.basename(to), each=True) if isinstance(whole, list)
              and whole and all(isinstance(v, dict) for v in whole) else "")
    if nested:
        return nested
    if body[:1] == b"{":
        first = body.split(b"\n", 1)[0]
        try:
            lines = isinstance(json.loads(first), dict)
        except ValueError:
            lines = False
        if lines:
            return (f"; the file holds JSON Lines (one object per line): rename it to .jsonl (mv {shlex.quote(given)} "
                    f"{shlex.quote(to)})")
        return ("; the file is one JSON object (an annotation file, as COCO's), not a table of samples: write a row per "
                "sample (file path, text, label) into a .jsonl or .csv and shard that")
    return (f"; a JSON array of row objects (an annotation tool's export) is a manifest once written one "
            f"object per line, as .jsonl (e.g. jq -c '.[]' {shlex.quote(given)} > {shlex.quote(to)})")


class _Rows(list):
    """A manifest's rows (a list of dicts) with what a Parquet manifest's schema adds: ``categories``, per
    pandas categorical column (the file's pandas metadata says so), its dictionary (the categories in their order), or a
    str saying why it is not one list (its row groups hold different dictionaries)."""

    categories: dict[str, list[Any] | str]
    #: the named pandas index columns read as columns (``df.set_index("rid").to_parquet``): warnings say so
    index_columns: list[str]
    #: what reading it decided that the user should know (the separator sniffed in a .csv)
    notes: list[str]


#: the column pandas writes an unnamed index to (a filtered frame not reset): bookkeeping, not data
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")


def _parquet_rows(source: Any) -> _Rows:
    """A Parquet manifest's rows with the values Arrow holds (not through pandas, which turns an int
    column with a null into floats: 9007199254740993 would become 9007199254740992.0): ints stay ints,
    nulls None, lists lists, maps dicts. A pandas index stored as a column is read as a column when it has a
    name (``df.set_index("key").to_parquet(...)``: pandas gives it back, as the index; so does a CSV of that
    frame, as its first column) and left out when it has none (``__index_level_0__``: the row numbers of a
    filtered frame not reset). A pandas categorical column's categories are kept in ``categories`` (another
    dictionary-encoded column is not: its order declares nothing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    pandas_meta = table.schema.pandas_metadata or {}
    index = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str) and _UNNAMED_INDEX.fullmatch(c)]
    if index:
        table = table.drop_columns([c for c in index if c in table.column_names])
    rows = _Rows(table.to_pylist(maps_as_pydicts="strict"))
    rows.index_columns = [c for c in pandas_meta.get("index_columns", [])
                          if isinstance(c, str) and not _UNNAMED_INDEX.fullmatch(c) and c in table.column_names]
    rows.categories = {}
    # only a pandas Categorical declares its classes (QA31 pandas review F2): another dictionary column
    # (pyarrow's dictionary_encode(), polars' Categorical) is ordered by first appearance or a string cache,
    # which two files of one dataset do not share; it is read as strings, as before
    categorical = {c.get("field_name", c.get("name")) for c in pandas_meta.get("columns", [])
                   if isinstance(c, dict) and c.get("pandas_type") == "categorical"}
    for name, col in zip(table.column_names, table.columns):
        if name in categorical and pa.types.is_dictionary(col.type) and col.num_chunks:
            dicts = [c.dictionary.to_pylist() for c in col.chunks]
            rows.categories[name] = (dicts[0] if all(d == dicts[0] for d in dicts) else
                                     "its row groups hold different category lists")
    return rows


def _manifest_text(data: bytes, path: str | Path) -> str:
    """A CSV / JSONL manifest's text; bytes that are not UTF-8 are an error naming the line. UTF-16 with a
    byte order mark (Windows' "Unicode") is read as such: the mark says how, and the text reaches the shards
    as UTF-8 either way (:func:`discover_manifest` warns); UTF-16 without one is an error naming it."""
    kind, bom = utf16_of(data)
    if kind and bom:
        try:
            return data[2:].decode("utf-16-le" if kind == "UTF-16 LE" else "utf-16-be")
        except UnicodeDecodeError as exc:
            raise SourceError(f"manifest {path}: it starts with a {kind} byte order mark but is no UTF-16 text "
                              f"({exc.reason} at byte {exc.start + 2}): save the manifest as UTF-8") from None
    if kind:
        why = _UTF16_FIX.format(kind=kind, mark=", without a byte order mark", what="the manifest")
        raise SourceError(f"manifest {path}: the file {why}")
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # a BOM (Windows editors) is not a column
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        col = exc.start - body.rfind(b"\n", 0, exc.start)
        legacy = _legacy_guesses(body)
        if legacy:
            raise SourceError(f"manifest {path}: line {line} is not UTF-8 (byte 0x{body[exc.start]:02x} at byte {col} "
                              f"of the line): the manifest {_legacy_hint(legacy)}") from None
        raise SourceError(f"manifest {path}: line {line} is not UTF-8 (byte 0x{body[exc.start]:02x} at byte {col} "
                          f"of the line; Latin-1 or Windows-1252?): save the manifest as UTF-8") from None


class _RepeatedKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: a key given twice in one object (JSON keeps the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _RepeatedKey(sorted({k for k, _ in pairs if sum(1 for j, _ in pairs if j == k) > 1}))
    return obj


def _jsonl_rows(text: str, path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped); an error names the line. A key given twice in one
    object is an error (``{"text": "a", "text": "b"}``: JSON would keep "b" without a word)."""
    rows = []
    if "\r" in text and "\n" not in text:  # CR-only line ends (an old Mac editor): a JSON string holds no raw CR
        text = text.replace("\r", "\n")
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_unique_keys)
        except _RepeatedKey as exc:
            raise SourceError(f"manifest {path}: line {n}: key(s) {exc.args[0]} given more than once in one object; "
                              "JSON would keep only the last") from None
        except ValueError as exc:
            msg = f"{exc.msg} at character {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise SourceError(f"manifest {path}: line {n} is not JSON ({msg})") from None
        if not isinstance(obj, dict):
            raise SourceError(f'manifest {path}: line {n}: expected a JSON object ({{"image": "a.png", ...}}), '
                              f"got {type(obj).__name__}")
        rows.append(obj)
    return rows


def _is_lhotse_cut(row: Mapping[str, Any]) -> bool:
    rec = row.get("recording")
    return isinstance(rec, dict) and isinstance(rec.get("sources"), list) and "start" in row and "duration" in row


def _lhotse_transform(t: Any) -> str:
    """A Lhotse recording transform as an error shows it: ``Speed 1.1``, ``Resample 8000 -> 16000``."""
    if not isinstance(t, dict):
        return _shown(str(t))
    name, kw = str(t.get("name", "?")), t.get("kwargs") if isinstance(t.get("kwargs"), dict) else {}
    if "factor" in kw:
        return f"{name} {kw['factor']:g}" if isinstance(kw["factor"], (int, float)) else f"{name} {kw['factor']}"
    if "source_sampling_rate" in kw and "target_sampling_rate" in kw:
        return f"{name} {kw['source_sampling_rate']} -> {kw['target_sampling_rate']}"
    return name


def lhotse_cut_rows(rows: list[dict[str, Any]], path: str | Path) -> list[dict[str, Any]]:
    """A Lhotse ``CutSet`` JSONL (``cuts.to_file("cuts.jsonl.gz")``: each line a ``MonoCut.to_dict()``, its
    recording nested under ``recording`` and its text under ``supervisions``) as flat manifest rows: the cut's
    ``id``, ``start`` and ``duration`` (seconds into the recording) and ``channel`` as they are, and from the
    nesting ``recording_id``, ``audio`` (the recording's file, ``recording.sources[0].source``), ``text`` (the
    supervisions' texts, joined by a space), ``speaker`` and ``language`` (when the supervisions agree). So
    ``mmdata shard cuts.jsonl.gz OUT --column key=id --segment start=start,duration=duration,channel=channel``
    shards it. Other rows are returned as they are; a file mixing cuts and other rows is an error.

    Raises:
        SourceError: a cut whose recording is not one local file (one file per channel, a command, a URL, in
            memory), or has ``transforms`` (speed / tempo perturbation, resampling, volume: the cut's times are
            in the transformed audio, not the stored file), naming the cut.

    Example:
        >>> cut = {"id": "c1", "start": 2.0, "duration": 1.5, "channel": 0, "type": "MonoCut",
        ...        "supervisions": [{"text": "hi there", "speaker": "A"}],
        ...        "recording": {"id": "r1", "sources": [{"type": "file", "source": "r1.wav", "channels": [0, 1]}]}}
        >>> lhotse_cut_rows([cut], "cuts.jsonl")
        [{'id': 'c1', 'start': 2.0, 'duration': 1.5, 'channel': 0, 'recording_id': 'r1', 'audio': 'r1.wav', \
'text': 'hi there', 'speaker': 'A'}]
    """
    cuts = [_is_lhotse_cut(r) for r in rows]
    if not any(cuts):
        return rows
    if not all(cuts):
        raise SourceError(f"manifest {path}: line {cuts.index(False) + 1} is not a Lhotse cut but other lines are "
                          f"(each with 'recording': {{'sources': ...}}, 'start' and 'duration'); one kind of row expected")
    out = []
    for row in rows:
        rec, cid = row["recording"], row.get("id")
        sources = rec["sources"]
        kinds = [src.get("type") if isinstance(src, dict) else None for src in sources]
        if len(sources) != 1 or kinds[0] != "file" or not isinstance(sources[0].get("source"), str):
            why = (f"{len(sources)} sources (one file per channel)" if len(sources) != 1 else
                   f"a source of type {kinds[0]!r}")
            fix = ("download the recording first (--segment cuts local files only) and name it in a 'file' source"
                   if kinds[0] == "url" else "write the recording as one file first (e.g. cut.recording.load_audio() "
                                             "saved with soundfile)")
            raise SourceError(f"manifest {path}: Lhotse cut {cid!r}: its recording {rec.get('id')!r} has {why}; mmdata "
                              f"cuts segments from one audio file holding every channel (a source of type 'file'); "
                              f"{fix}")
        transforms = rec.get("transforms")
        if transforms:  # speed / tempo perturbation, resampling: start and duration are in the transformed audio
            shown = ", ".join(_lhotse_transform(t) for t in transforms)
            raise SourceError(f"manifest {path}: Lhotse cut {cid!r}: its recording {rec.get('id')!r} has transforms "
                              f"[{shown}], and the cut's start and duration are times in the transformed audio; "
                              f"mmdata cuts the file as stored, so the segment would not match its supervision: "
                              f"shard the unperturbed CutSet (and perturb in the recipe: the speed op), or save the "
                              f"transformed audio (cut.recording.load_audio()) and write a CutSet naming those files")
        flat = {k: v for k, v in row.items() if k not in ("recording", "supervisions", "type", "custom", "features")}
        flat["recording_id"] = rec.get("id")
        flat["audio"] = sources[0]["source"]
        sups = [s for s in row.get("supervisions") or [] if isinstance(s, dict)]
        texts = [s["text"] for s in sups if isinstance(s.get("text"), str)]
        if texts:
            flat["text"] = " ".join(texts)
        for col in ("speaker", "language"):
            vals = {s.get(col) for s in sups if s.get(col) is not None}
            if len(vals) == 1:
                flat[col] = vals.pop()
        out.append(flat)
    return out


@dataclass(slots=True)
class _Cell:
    """What one cell of a path column gives the row: a member (a file, or inline bytes), or a reason."""

    shown: str  #: the cell as reports name it
    member: str | bytes | None = None
    ext: str | None = None
    #: the sample key it gives a row without a key column: its path relative to the manifest's
    #: folder, minus the media extension (as a folder source names its samples)
    key: str | None = None
    reason: str | None = None
    #: it names a file in the manifest's folder, or holds data (for the metadata-column warning)
    located: bool = False
    #: the file was found by reading its Windows separators (``images\\cat.png``) as ``/``
    backslash: bool = False
    #: the file was found by reading the cell percent-decoded (``my%20photo.png``): the name read
    decoded: str | None = None
    #: an absolute path naming no file whose path below the manifest's folder (or ``root``) does: that path
    #: (an annotation server's document root: Label Studio's ``/data/upload/3/x.png``)
    served: str | None = None
    #: the file on disk a cell naming none means (its name differs only in case, or the cell has spaces at its ends)
    near: str | None = None
    #: the extension of the file it names, in the folder, of a type not read (``lrc``): still a path, for
    #: the text-column warning (QA39 music #3)
    unread: str | None = None


def _inline_cell(data: bytes, name_hint: Any) -> _Cell:
    """Inline bytes (a Parquet binary column, or Hugging Face's ``{"bytes", "path"}``): the member's
    data as they are, its type from its first bytes (else from the struct's file name)."""
    from mmdata.interop.hf import audio_ext, image_ext

    shown = f"<{len(data)} bytes>"
    ext = image_ext(data) or audio_ext(data) or ("npy" if data[:6] == b"\x93NUMPY" else None)  # audio_ext knows AIFF
    if ext is None and isinstance(name_hint, str):
        named = split_name(posixpath.basename(name_hint))
        ext = named[1] if named is not None else None
    if ext is None or (ext not in KNOWN_EXTS and not ext.endswith("npy")):
        return _Cell(shown, reason=f"inline bytes of an unknown type (starting {data[:8]!r}; expected PNG, JPEG, "
                                   f"WebP, BMP, TIFF, FLAC, WAV, OGG, MP3, AIFF or .npy, or a struct whose 'path' has "
                                   f"a "
                                   f"known extension)", located=True)
    return _Cell(shown, data, ext, located=True)


def _cell_text(val: Any) -> str | None:
    """The path a cell holds: strings as they are, numbers as text (a metadata column: reported as
    not found), None for other values (lists, arrays)."""
    if isinstance(val, str):
        return val
    if isinstance(val, (int, float)) or (hasattr(val, "dtype") and getattr(val, "ndim", 1) == 0):
        return str(val)
    return None


def _local_cell(val: str, bases: tuple[str, ...], root: str, escapes: str = "", decoded: bool = False) -> _Cell:
    """A cell of a manifest on this machine: a path relative to the manifest's folder (or the folder
    ``root=`` names), an absolute path or a ``file://`` URL (percent-encoded or not), read when it lies
    inside that folder; ``escapes``: the reason for a path outside it (default :data:`_ESCAPES`). Not found
    as written, it is looked for in the other Unicode form, with ``\\`` read as ``/``, and percent-decoded
    (``decoded``: this is that second look)."""
    from urllib.parse import unquote, urlsplit

    from mmdata.urls import protocol

    shown = _shown(val)
    p = val
    if val[:5].lower() == "file:":
        u = urlsplit(val)
        if u.netloc not in ("", "localhost"):
            return _Cell(shown, reason=f"a file:// URL of another host ({u.netloc!r}); name files on this machine")
        p = unquote(u.path, errors="surrogateescape")
        if _WINDOWS_ABS.match(p[1:]) and p[:1] == "/":  # file:///C:/data/x.png: a Windows drive's path
            p = p[1:]
    elif _URL_CELL.match(val):  # a URL, not a text that mentions one ("Photo by Jane, https://...")
        return _Cell(shown, reason=f"a {protocol(val)}:// URL: a manifest on this machine names files on it (paths "
                                   f"relative to its folder, absolute paths or file:// URLs); to shard files at a "
                                   f"URL, put the manifest beside them there and pass its URL")
    if "\x00" in p:
        return _Cell(shown, reason="not a file path (it holds a NUL character)")
    if os.sep == "/" and _WINDOWS_ABS.match(p):
        return _Cell(shown, reason=_WINDOWS_PATH, located=True)  # a path: not a metadata column
    norm = os.path.normpath(p if os.path.isabs(p) else os.path.join(root, p))
    rel = next((norm[len(b):].lstrip(os.sep) for b in bases if norm.startswith(b.rstrip(os.sep) + os.sep)), None)
    named = split_name(os.path.basename(norm))
    if rel is None:
        key = posixpath.join(posixpath.dirname(os.path.normpath(p)), named[0]) if named else None
        served = _served(p, root) if os.path.isabs(p) and not os.path.lexists(norm) else None
        if served is not None:  # a path from an annotation server's document root: say what to write
            folder, rel_to = (("the --root folder", "--root folder") if escapes is _ESCAPES_ROOT else
                              ("the manifest's folder", "manifest"))
            # the row's path is the skip's source, not part of its reason: rows are grouped by reason
            return _Cell(shown, key=key, reason=f"{escapes or _ESCAPES}: no such file on this machine, but {folder} "
                                                f"holds it without its leading '/'; write it relative to the {rel_to}",
                         located=True, served=served)
        return _Cell(shown, key=key, reason=escapes or _ESCAPES, located=True)  # a path: not a metadata column
    key = posixpath.join(posixpath.dirname(rel), named[0]) if named else None
    full = os.path.join(root, rel)
    try:
        st = os.stat(full)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return _Cell(shown, key=key, reason=f"not a usable file path ({exc.strerror or exc})")
        # not there as written: the name in the other Unicode form (a manifest typed on macOS naming files
        # copied from elsewhere, or the other way), as a folder source joins them; else Windows separators
        other = _in_other_form(root, rel)
        if other is None and "\\" in p and os.sep == "/":
            cell = _local_cell(val.replace("\\", "/"), bases, root, escapes)
            if cell.reason is None:
                cell.shown, cell.backslash = shown, True
                return cell
            if cell.reason.startswith(escapes or _ESCAPES) and not p.startswith("\\"):
                # '..\\outside\\x.txt' escapes as '../outside/x.txt' does: said so, and nothing outside the folder
                # is looked for (no case hint naming, and so confirming, a file there) (QA39 security #2); a leading
                # backslash is the top folder of a Windows drive, said so below
                return _Cell(shown, key=key, reason=cell.reason, located=True)
        if other is None and "%" in p and val[:5].lower() != "file:" and not decoded:
            # Label Studio's spelling of an uploaded name ('my%20photo.png'): read decoded, once
            plain = unquote(p, errors="surrogateescape")
            cell = _local_cell(plain, bases, root, escapes, decoded=True) if plain != p else None
            if cell is not None and cell.reason is None:
                cell.shown, cell.decoded = shown, plain
                return cell
        if other is None and os.sep == "/" and p.startswith("\\") and split_name(p.rpartition("\\")[2]):
            # a Windows path from the top folder of the current drive (a leading backslash)
            return _Cell(shown, key=key, reason=_WINDOWS_PATH, located=True)
        if other is None:
            if val != val.strip() and val.strip() and not decoded:
                cell = _local_cell(val.strip(), bases, root, escapes)
                if cell.reason is None:
                    return _Cell(shown, key=key, reason=_SPACES_AT_END, located=True, near=cell.shown)
            near = _in_other_case(root, rel.replace("\\", os.sep) if os.sep == "/" else rel)
            if near is not None:
                return _Cell(shown, key=key, reason=_CASE_ONLY, located=True,
                             near=printable(os.path.relpath(near, root).replace(os.sep, "/")))
            return _Cell(shown, key=key, reason="file not found")
        full = other
        st = os.stat(full)
    if not stat.S_ISREG(st.st_mode):
        return _Cell(shown, key=key, reason="not a file (a folder or a special file)", located=True)
    real, real_root = os.path.realpath(full), _real(root)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        # a link inside the folder to a file outside it: its bytes are not the folder's (a folder source
        # leaves such links out too)
        return _Cell(shown, key=key, reason=f"{escapes or _ESCAPES} through a link", located=True)
    if os.path.basename(full)[:2] == "._":  # as a folder source: macOS's resource fork of ._x.png's x.png
        return _Cell(shown, key=key, reason=APPLEDOUBLE, located=True)
    if os.path.basename(full).lower() in OS_METADATA:  # .DS_Store, Thumbs.db: as a folder source names them
        return _Cell(shown, key=key, reason=OS_METADATA[os.path.basename(full).lower()], located=True)
    if named is None:
        return _Cell(shown, key=key, reason=unsupported_reason(full) or other_type_reason(full) or f"no known media extension (expected one of "
                     f"{sorted(KNOWN_EXTS)})", located=True, unread=full.rpartition(".")[2].lower())
    return _Cell(shown, full, named[1], key, located=True)


#: a cell that is a URL: a scheme (``https``, ``s3``, fsspec's chained ``simplecache::s3``) and ``://`` first
_URL_CELL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?:::[A-Za-z][A-Za-z0-9+.-]*)*://")


def _served(p: str, root: str) -> str | None:
    """The path below ``root`` that an absolute path naming no file means when an annotation server wrote it
    from its document root (``/data/upload/3/b.png`` -> ``data/upload/3/b.png``), as written or percent-decoded;
    None when ``root`` holds neither. Each form is decoded, then normalised, then checked to stay inside ``root``
    (links resolved) before it is looked for: ``/sub/%2e%2e/%2e%2e/x.png`` is no hint, and no hint says whether
    a file outside ``root`` exists."""
    from urllib.parse import unquote

    real_root = _real(root).rstrip(os.sep) + os.sep
    for cand in dict.fromkeys((p, unquote(p, errors="surrogateescape"))):
        rel = os.path.normpath(cand.lstrip(os.sep))
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel) or "\x00" in rel:
            continue
        full = os.path.join(root, rel)
        if os.path.realpath(full).startswith(real_root) and os.path.isfile(full):
            return rel.replace(os.sep, "/")
    return None


#: folders whose listing a manifest's job keeps (cleared per manifest) while it looks for the files its cells name
#: in another case or Unicode form: enough for a missing cell in each of thousands of folders, visited in any order
#: (64 listed a folder again per missing cell when rows cycled through more folders: 20k rows over 500 folders)
_LISTED_FOLDERS = 8192


def _in_other_form(root: str, rel: str) -> str | None:
    """The path of ``rel`` under ``root`` whose non-ASCII names are found in their other Unicode form (NFC /
    NFD), part by part; None when a part is found in no form (or every part is ASCII: it has one form)."""
    if rel.isascii():
        return None
    cur = root
    for part in rel.split(os.sep):
        if part == os.pardir:  # never looks outside ``root`` (QA39 security #2)
            return None
        step = os.path.join(cur, part)
        if part.isascii() or os.path.lexists(step):
            cur = step
            continue
        found = _forms_in(cur).get(_nfc(part))
        if found is None:
            return None
        cur = os.path.join(cur, found)
    return cur if os.path.isfile(cur) else None


def _in_other_case(root: str, rel: str) -> str | None:
    """The file ``rel`` names under ``root`` when its name on disk differs only in case (``IMG/0.PNG`` for
    ``img/0.png``: a manifest written on Windows or macOS), part by part; None when there is none, or several."""
    cur = root
    for part in rel.split(os.sep):
        if part == os.pardir:  # never looks outside ``root``: no hint says whether a file there exists (QA39 security #2)
            return None
        step = os.path.join(cur, part)
        if os.path.lexists(step):
            cur = step
            continue
        found = _cased_in(cur).get(part.casefold())
        if found is None:
            return None
        cur = os.path.join(cur, found)
    return cur if os.path.isfile(cur) else None


@functools.lru_cache(maxsize=_LISTED_FOLDERS)
def _cased_in(folder: str) -> dict[str, str]:
    """The case-folded form of each name in ``folder`` -> that name, for names no other name folds to (listed
    once per folder: cleared per manifest)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    folded = Counter(n.casefold() for n in names)
    return {n.casefold(): n for n in names if folded[n.casefold()] == 1}


@functools.lru_cache(maxsize=_LISTED_FOLDERS)
def _forms_in(folder: str) -> dict[str, str]:
    """The NFC form of each non-ASCII name in ``folder`` -> that name (listed once per folder: cleared per
    manifest)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    return {_nfc(n): n for n in names if not n.isascii()}


@functools.lru_cache(maxsize=8)
def _real(folder: str) -> str:
    """The folder with its links resolved (once per manifest folder, not per cell)."""
    return os.path.realpath(folder)


def _remote_cell(val: str, base_s: str, listed: Mapping[str, Any], forms: Mapping[str, str] | None = None,
                 decoded: bool = False) -> _Cell:
    """A cell of a manifest at an fsspec URL: a path relative to its folder there, found in its listing; not
    found as written, found as a local manifest's cells are: in the other Unicode form (``forms``: the NFC
    form of each non-ASCII listed path -> that path), with Windows separators read as ``/`` or percent-decoded
    (``decoded``: this is that second look)."""
    from urllib.parse import unquote

    shown = _shown(val)
    if _WINDOWS_ABS.match(val) or (val.startswith("\\") and split_name(val.rpartition("\\")[2])):
        return _Cell(shown, reason=_WINDOWS_PATH, located=True)  # a path: not a metadata column
    full_s = posixpath.normpath(f"{base_s}/{val}")
    named = split_name(full_s.rpartition("/")[2])
    inside = full_s.startswith(base_s + "/")
    rel = full_s[len(base_s) + 1:] if inside else posixpath.normpath(val)
    key = posixpath.join(posixpath.dirname(rel), named[0]) if named else None
    if val.startswith("/") or "://" in val:
        why = "an absolute path or URL: a manifest at a URL names its files relative to its folder"
        # decoded, then normalised, then kept only inside the folder (as a local manifest's _served)
        served = next((c[len(base_s) + 1:] for c in dict.fromkeys(
                           posixpath.normpath(f"{base_s}/{c}") for c in (val.lstrip("/"), unquote(val.lstrip("/"),
                                                                                                   errors="surrogateescape")))
                       if not val.startswith("//") and c.startswith(base_s + "/") and c in listed), None)
        if served is not None:  # a path from an annotation server's document root: say what to write
            return _Cell(shown, key=key, reason=f"{why}: the manifest's folder holds it without its leading '/'; "
                                                f"write it relative to the manifest", located=True, served=served)
        return _Cell(shown, reason=why)
    if not inside:
        return _Cell(shown, key=key, reason=_ESCAPES, located=True)  # a path: not a metadata column
    if full_s not in listed:
        found = None if full_s.isascii() or forms is None else forms.get(_nfc(full_s))
        if found is None and "\\" in val:
            cell = _remote_cell(val.replace("\\", "/"), base_s, listed, forms)
            if cell.reason is None:
                cell.shown, cell.backslash = shown, True
                return cell
        if found is None and "%" in val and not decoded:  # Label Studio's spelling of an uploaded name
            plain = unquote(val, errors="surrogateescape")
            cell = _remote_cell(plain, base_s, listed, forms, decoded=True) if plain != val else None
            if cell is not None and cell.reason is None:
                cell.shown, cell.decoded = shown, plain
                return cell
        if found is None:
            return _Cell(shown, key=key, reason="file not found")
        full_s = found
    if full_s.rpartition("/")[2][:2] == "._":  # as a folder source: macOS's resource fork of ._x.png's x.png
        return _Cell(shown, key=key, reason=APPLEDOUBLE, located=True)
    if full_s.rpartition("/")[2].lower() in OS_METADATA:  # .DS_Store, Thumbs.db: as a folder source names them
        return _Cell(shown, key=key, reason=OS_METADATA[full_s.rpartition("/")[2].lower()], located=True)
    if named is None:
        return _Cell(shown, key=key, reason=unsupported_reason(full_s) or other_type_reason(full_s) or f"no known media extension (expected one "
                     f"of {sorted(KNOWN_EXTS)})", located=True)
    return _Cell(shown, full_s, named[1], key, located=True)


def _is_bool(v: Any) -> bool:
    """A JSON / Parquet boolean (Python's or NumPy's); CSV text ``True`` is text."""
    return isinstance(v, bool) or type(v).__name__ == "bool_"


def _label_cells(rows: list[dict[str, Any]], fields: Mapping[str, str]) -> list[tuple[int, str]]:
    """(row, stripped text) of every label cell holding one value (a list / dict / bool is a reported cell)."""
    cols = [c for c, f in fields.items() if f == "label"]  # the label column(s) only: no look at every cell
    return [(i, str(v).strip()) for i, r in enumerate(rows) for c in cols if c in r
            if not _blank(v := r[c]) and not isinstance(v, (list, tuple, dict)) and not _is_bool(v)]


#: the longest class name read (a folder's name is at most 255 bytes; a longer cell is a caption or a document)
MAX_CLASS_NAME = 256


def _odd_class_name(name: str) -> str | None:
    """Why ``name`` cannot be a class name (over :data:`MAX_CLASS_NAME` characters, or holding a line break or
    another control character), or None.

    Example:
        >>> _odd_class_name("cat"), _odd_class_name("cat\\ndog").split(":")[0]
        (None, 'a class name holding a line break or another control character (U+000A)')
    """
    if len(name) > MAX_CLASS_NAME:
        return (f"a class name over {MAX_CLASS_NAME} characters (a caption or a document in the label column?): "
                f"refused; a class is a short name")
    odd = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    if odd is not None:
        return (f"a class name holding a line break or another control character (U+{ord(odd):04X}): refused; a "
                f"class is a short name")
    return None


def _refuse_odd_folders(names: Sequence[str], where: str) -> None:
    """Refuse class folder names holding a line break or another control character, as a label cell's are: they
    would reach label_names, the card and every other tool's log unescaped (QA39 security #5); each named with its
    code point (a TAB is U+0009, not ESC: QA39 review sources #5).
    """
    short = {0x9: "TAB", 0xA: "LF", 0xD: "CR", 0x1B: "ESC", 0x0: "NUL", 0x9B: "CSI", 0x9D: "OSC", 0x85: "NEL"}
    odd = [(n, c) for n in names if _odd_class_name(n) is not None
           and (c := next((ch for ch in n if unicodedata.category(ch) == "Cc"), None)) is not None]
    if odd:
        shown = ", ".join(f"{printable(n)!r}, U+{ord(c):04X}{' ' + short[ord(c)] if ord(c) in short else ''}"
                          for n, c in odd[:4]) + (", ..." if len(odd) > 4 else "")
        raise SourceError(f"{where}: {len(odd)} class folder name{'s' * (len(odd) != 1)} ({shown}) "
                          f"{'hold' if len(odd) != 1 else 'holds'} a line break or another control character, "
                          f"refused as in a label column: a class is a short name; rename the folder"
                          f"{'s' * (len(odd) != 1)}")


def _bool_label_reason(rows: list[dict[str, Any]], fields: Mapping[str, str]) -> str:
    """Why a bool label cell is left out (a review flag exported into the label: no class ``'True'``); a column
    of bools only is a yes/no target, which ``mmdata train --target`` reads from metadata."""
    why = "a bool, not a class id or name"
    filled = [v for r in rows for c, v in r.items() if fields.get(c) == "label" and not _blank(v)]
    if filled and all(_is_bool(v) for v in filled):
        why += ("; for a yes/no target keep the column as metadata (--meta, under a name other than 'label') and "
                "train on it with mmdata train --target")
    return why


def _manifest_labels(cells: list[tuple[int, str]], label_names: list[str] | None,
                     label_names_from: str | None, name: str) -> tuple[Any, ...]:
    """(class names, where they came from, the label values left out and why, a warning).

    Without declared names, the labels that are not integers are the class names (sorted). A column
    that mixes ids (``1``) and names (``dog``) cannot be read without ``--labels`` (which name is id
    1?): the kind in fewer rows (the ids, on a tie) is left out, each cell a listed skip, and a warning
    says so. Numbers that are not integers (``1.5``) are names only in a column without ids.
    ``cells``: :func:`_label_cells`."""
    if label_names:
        return list(label_names), label_names_from or "--labels", frozenset(), "", None
    ids = [i for i, s in cells if _ID_LABEL.fullmatch(s)]
    others = [(i, s) for i, s in cells if not _ID_LABEL.fullmatch(s) and not _NEGATIVE_LABEL.fullmatch(s)]
    if ids:
        others = [(i, s) for i, s in others if not _is_number(s)]  # 1.5 among ids: a bad label, not a class
    # an NFD name sorted by its NFC form: a column written on macOS (NFD 'école') gives the ids a Linux one gives
    # (QA28 i18n #3); other names as written (_composed)
    names = sorted({s for _, s in others}, key=lambda n: (_composed(n), n))
    if not (ids and names):
        return names or None, "manifest" if names else None, frozenset(), "", None
    id_vals = sorted({str(int(float(s))) for i, s in cells if _ID_LABEL.fullmatch(s)}, key=int)
    keep_ids = len(ids) > len(others)
    left = plural(len(others), "name") if keep_ids else plural(len(ids), "id")
    shown_ids = ", ".join(id_vals[:5]) + (", ..." if len(id_vals) > 5 else "")
    shown_names = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
    warning = (f"manifest {name}, column 'label' mixes class ids ({shown_ids}: {plural(len(ids), 'row')}) and class "
               f"names ({shown_names}: {plural(len(others), 'row')}): which name an id means is unknown, so the "
               f"{left} {'were' if left[:2] != '1 ' else 'was'} left out (listed in skipped; "
               f"{_rows(sorted(i for i, _ in others) if keep_ids else ids)}). "
               f"Pass --labels names.txt (the class names in id order: ids index into it, names are looked up) "
               f"to keep every label, or write every label the same way")
    if keep_ids:
        why = f"class name in a column of class ids ({shown_ids}); pass --labels names.txt to declare the names"
        return None, None, frozenset(names), why, warning
    why = (f"class id in a column of class names ({shown_names}): which name it means is unknown; pass --labels "
           f"names.txt (the names in id order)")
    return names, "manifest", frozenset(s for _, s in cells if _ID_LABEL.fullmatch(s)), why, warning


def _category_problem(cats: list[Any] | str) -> str | None:
    """Why a categorical label column's categories cannot be its class names as they are (None: they can)."""
    if isinstance(cats, str):
        return cats
    for c in cats:
        if _ID_LABEL.fullmatch(c) or _NEGATIVE_LABEL.fullmatch(c):
            return (f"category {_shown(c)!r} reads as a class id (a label that is a number is an id, which indexes "
                    f"into the class names)")
        if c != c.strip():
            return f"category {_shown(c)!r} has spaces at its ends (labels are read without them)"
        why = _odd_class_name(c)
        if why is not None:
            return f"category {_shown(c)!r} is {why}"
    try:
        check_label_names(cats, "categories", [f"category {i}" for i in range(len(cats))])
    except SourceError as exc:
        return str(exc).removeprefix("categories: ").split("; expected")[0]
    return None


def _categorical_labels(rows: list[dict[str, Any]], fields: Mapping[str, str], label_names: list[str] | None,
                        label_names_from: str | None, name: str) -> tuple[list[str] | None, str | None, list[str]]:
    """(class names, where they came from, warnings) of a manifest whose label column is categorical (a pandas
    ``Categorical`` saved to Parquet; another Arrow dictionary column is read as strings) of class names: its categories are the
    class names in their order, unused ones kept (as ``--labels`` would declare them), so the ids are the frame's
    ``cat.codes`` and two subsets of one frame sharded apart get one set of ids (QA31 pandas D3: the names were
    the values seen, sorted). Declared names (``--labels``) are used as given; a warning says when the
    categories differ from them. Categories that cannot be class names as they are (a number, which reads as an
    id; a blank or repeated name) are not used, with a warning naming the first. A column of numbers is read as
    ids, as any other. Other manifests: ``label_names`` as given, no warning."""
    col = next((c for c, f in fields.items() if f == "label"), None)
    cats = getattr(rows, "categories", {}).get(col) if col is not None else None
    if cats is None or (isinstance(cats, list) and not all(isinstance(c, str) for c in cats)):
        return label_names, label_names_from, []
    shown = (", ".join(repr(_shown(c)) for c in cats[:8]) + (", ..." if len(cats) > 8 else "")
             if isinstance(cats, list) else "")
    if label_names:
        if isinstance(cats, list) and cats != list(label_names):
            declared = ", ".join(label_names[:8]) + (", ..." if len(label_names) > 8 else "")
            return label_names, label_names_from, [
                f"manifest {name}, column {col!r} is categorical with the categories {shown}, which differ from the "
                f"class names of {label_names_from or '--labels'} ({declared}): "
                f"class ids follow {label_names_from or '--labels'}, not the column's category codes; leave out "
                f"--labels to use the categories, in their order"]
        return label_names, label_names_from, []
    why = _category_problem(cats)
    if why is None:
        return list(cats), f"the categorical column {col!r}", []
    if isinstance(cats, list) and all(_ID_LABEL.fullmatch(c) and int(float(c)) == i for i, c in enumerate(cats)):
        # '0', '1', '2' (astype(str) of ids): read as ids, which are the category codes (QA31 pandas review F4)
        return label_names, label_names_from, []
    return label_names, label_names_from, [
        f"manifest {name}, column {col!r} is categorical, but its categories{' (' + shown + ')' if shown else ''} were "
        f"not used as the class names: {why}; the labels were read as any column's (names sorted, numbers as ids), "
        f"so the class ids are not the column's category codes. Pass --labels names.txt (the class names in id "
        f"order) to declare them"]


def _numbered(base: str, key_rows: Mapping[str, int], numbered: dict[str, str], renamed: list[tuple[str, str]],
              tried: dict[str, int] | None = None) -> str:
    """``base#1``, ``base#2``, ...: the first not taken, recorded as a numbered name. ``tried``: base -> the
    number below which every name is taken (names are never freed), so 20,000 rows naming one file look each
    number up once, not each row from ``#1`` again (76 s, QA38 rev5)."""
    n = tried.get(base, 1) if tried is not None else 1
    while f"{base}#{n}" in key_rows:
        n += 1
    if tried is not None:
        tried[base] = n + 1
    key = f"{base}#{n}"
    numbered[key] = base
    renamed.append((base, key))
    return key


def _renumber(key: str, key_rows: dict[str, int], numbered: dict[str, str], renamed: list[tuple[str, str]],
              records: list[Record], tried: dict[str, int] | None = None) -> None:
    """A numbered name (``x#1``) that a later row's key or file (``x#1.png``) turns out to name: the earlier
    row takes the next number, so the row that names it keeps it."""
    base = numbered.pop(key)
    row = key_rows.pop(key)
    new = _numbered(base, {**key_rows, key: row}, numbered, renamed, tried)
    renamed.remove((base, key))
    key_rows[new] = row
    for r in reversed(records):
        if r.source_key == key:
            r.source_key, r.key = new, safe_key(new)
            break


#: distinct values a label column of real numbers alone must hold to be warned of as a regression target: a few
#: numbers (doses 0.5 / 1.5 / 2.5) are class names as any others
_REGRESSION_VALUES = 5
#: distinct values past which a label column of real numbers alone is warned of however often each repeats: a
#: score rounded to 2 decimals over 2000 rows meets most of its ~1000 values more than once (QA33 review), while
#: real-number class names are a handful of doses or grades
_REGRESSION_MANY = 20


def _label_kind_warnings(label_cells: list[tuple[int, str]], names: list[str] | None, name: str,
                         column: str = "label") -> list[str]:
    """Warnings when a manifest's label column is not one class per row: class names that join several
    (``Drama|Comedy``: each combination became a class of its own) and real numbers (a sentiment score:
    whole ones read as class ids, the others left out; a column of real numbers alone, with many distinct values
    or most of them met once, is a regression target read as one class per value). ``column``: the label column
    as the manifest names it."""
    out = []
    listed = [n for n in names or () if n[:1] == "[" and n[-1:] == "]" and _python_list(n)]
    joined = [n for n in names or () if re.search(r"[|;]", n) and n not in listed]
    if listed or len(joined) >= 2:
        shown = listed or joined
        what = ("read as Python lists (pandas writes a list column this way to CSV)" if listed else "join several names")
        out.append(f"manifest {name}, column {column!r}: {plural(len(shown), 'class name')} {what} "
                   f"({', '.join(repr(n) for n in shown[:3])}{', ...' if len(shown) > 3 else ''}): multi-label "
                   f"targets? Each combination is a class of its own ('A|B' and 'B|A' two classes) — a sample's label "
                   f"is one class; keep such a column as metadata (--meta) and train on it with mmdata train --target "
                   f"(names that are single classes, such as 'AC|DC': declare them with --labels names.txt)")
    cells = [c for _, c in label_cells]
    # real numbers are left out only beside class ids (alone they are class names); -1 is a negative label
    reals = [c for c in cells if _DECIMAL.fullmatch(c) and not _ID_LABEL.fullmatch(c) and not _NEGATIVE_LABEL.fullmatch(c)]
    if reals and any(_ID_LABEL.fullmatch(c) for c in cells):
        whole = sum(1 for c in cells if _ID_LABEL.fullmatch(c) and "." in c)
        out.append(f"manifest {name}, column {column!r} holds real numbers ({', '.join(repr(c) for c in reals[:3])}"
                   f"{', ...' if len(reals) > 3 else ''}: {plural(len(reals), 'row')}): a score or a regression "
                   f"target? A label is a class id (0, 1, ...): those rows' labels were left out (listed)"
                   + (f" and {plural(whole, 'whole number')} ('3.0') read as class id{'s' * (whole != 1)}" if whole else "")
                   + "; keep scores as metadata (--meta, under another column name) and train on them with mmdata train --target, or bin "
                   "them into class ids")
    elif reals and all(_DECIMAL.fullmatch(c) for c in cells):
        # alone they are class names (QA round 4), but a column of measurements (3.412, 7.9, ...) gave one class
        # per value without a word (QA33 onemodality #1): said when most values are met once, as a target's are
        counts = Counter(cells)
        once = sum(1 for n in counts.values() if n == 1)
        if len(counts) >= _REGRESSION_MANY or (len(counts) >= _REGRESSION_VALUES and 2 * once > len(counts)):
            meta = "score" if column == "label" else column
            how = (f"rename the column (e.g. to {meta!r}) and shard with --meta {meta}" if column == "label" else
                   f"shard without --column label={column} and with --meta {meta}")
            out.append(f"manifest {name}, column {column!r} holds only real numbers "
                       f"({', '.join(repr(c) for c in sorted(counts, key=float)[:3])}, ...: {len(counts)} distinct "
                       f"values in {plural(len(cells), 'row')}, {once} of them met once): a regression target? Each "
                       f"value became a class of its own ({len(counts)} classes); to predict the number, "
                       f"{how}, then train with mmdata train --target {meta}; to keep them as class names, declare "
                       f"them with --labels names.txt")
    return out


def _every_label_refused(name: str, refused: dict[str, int], names: list[str], names_from: str | None,
                         column: str = "label") -> str:
    """The warning of a manifest none of whose labels names a declared class (``--labels`` spelt ``zero``, the
    column ``ZERO``): the dataset is written without a label, which a line per member buried (QA31 shift D3).
    ``refused`` holds each distinct refused label and its rows; the hint is looked for until the first near one.

    Example:
        >>> _every_label_refused("m.csv", {"ZERO": 1, "ONE": 1}, ["zero", "one"], "--labels")[:73]
        "manifest m.csv, column 'label': none of its 2 labels names a class (2 cla"
    """
    first = next((s for s in refused if _near_class_hint(s, names)), None)
    near = 0 if first is None else sum(n for s, n in refused.items() if _near_class_hint(s, names))
    why = (f"; {plural(near, 'label')} differ{'s' * (near == 1)} from a class name only in spelling: "
           f"{first[:40]!r}{_near_class_hint(first, names)}" if first is not None
           else f" (e.g. {next(iter(refused))[:40]!r})")
    return (f"manifest {name}, column {column!r}: none of its {plural(sum(refused.values()), 'label')} names a class "
            f"({_names_hint(names, names_from or 'the declared names')}){why}: every sample is written without a "
            f"label")


def _meta_variant_warnings(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], name: str) -> list[str]:
    """One warning per ``--meta`` column whose text values differ only in case, in spaces around them (``'F'``,
    ``'f'``, ``' F'``), in width or in invisible characters (named by code point, :func:`_name_differences`), as the label column's are warned of: ``evaluate --by`` scores each spelling as a group of its
    own, splitting one group's samples over several rows (QA39 fairness #1). Values are stored as written.

    Example:
        >>> rows = [{"sex": "F"}, {"sex": "f"}, {"sex": " F"}, {"sex": "M"}, {"sex": "F"}]
        >>> _meta_variant_warnings(rows, ["sex"], "m.csv")[0][:74]
        "manifest m.csv, --meta column 'sex': values 'F' (2), ' F' (1) and 'f' (1) "
    """
    out = []
    for col in cols:
        counts = Counter(v for r in rows if isinstance(v := r.get(col), str) and v.strip() and len(v) < 256)
        groups: dict[str, list[str]] = {}
        for v in counts:
            groups.setdefault(_near_name(v.strip()), []).append(v)
        clashes = [sorted(vs, key=lambda v: (-counts[v], v)) for vs in groups.values() if len(vs) > 1]
        if not clashes:
            continue
        clashes.sort(key=lambda vs: -sum(counts[v] for v in vs))

        def shown(vs: list[str]) -> str:
            parts = [f"{printable(v)!r} ({counts[v]})" for v in vs[:4]] + (["..."] if len(vs) > 4 else [])
            return ", ".join(parts[:-1]) + " and " + parts[-1]

        more = f"; and {len(clashes) - 2} more such group{'s' * (len(clashes) > 3)}" if len(clashes) > 2 else ""
        how = " or in ".join(dict.fromkeys(_name_differences(vs) for vs in clashes[:2]))
        out.append(f"manifest {name}, --meta column {col!r}: values {'; '.join(map(shown, clashes[:2]))}{more} differ "
                   f"only in {how} — one value written several ways? They are kept as written, "
                   f"so evaluate --by {col} scores each spelling as a group of its own; if they are one, write the "
                   f"value one way in the manifest")
    return out


def _label_case_warnings(label_cells: list[tuple[int, str]], names: Sequence[str], name: str) -> list[str]:
    """One warning when a manifest's class names differ only in case (``cat`` in 40 rows, ``Cat`` in 3): they
    are classes of their own, as written (the labels are the user's), most likely a typo.

    Example:
        >>> cells = [(0, "cat"), (1, "Cat"), (2, "cat"), (3, "dog")]
        >>> _label_case_warnings(cells, ["Cat", "cat", "dog"], "m.csv")[0][:78]
        "manifest m.csv, column 'label': classes 'Cat' (1) and 'cat' (2) differ only in"
    """
    by_case: dict[str, list[str]] = {}
    for n in names:  # an invisible character (a zero-width space from a web form), a width are differences of case's kind
        # spaces around a name are _label_space_warnings' (the same spaces here)
        by_case.setdefault(f"{n[:len(n) - len(n.lstrip())]}\0{_near_name(n)}\0{n[len(n.rstrip()):]}", []).append(n)
    clashes = [ns for ns in by_case.values() if len(ns) > 1]
    if not clashes:
        return []
    counts = Counter(c for _, c in label_cells)

    def shown(ns: list[str]) -> str:
        parts = [f"{n!r} ({counts[n]})" for n in ns]
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    more = f"; and {len(clashes) - 3} more such group{'s' * (len(clashes) > 4)}" if len(clashes) > 3 else ""
    n = sum(map(len, clashes))
    # per group: 'cat'/'Cat' beside 'dog'/'dog' + RLM differ in case and in invisible characters, not both each
    how = " or in ".join(dict.fromkeys(k for ns in clashes for k in _name_differences(ns).split(" or in ")))
    return [f"manifest {name}, column 'label': classes {'; '.join(map(shown, clashes[:3]))}{more} differ only in {how} "
            f"— a typo? They are kept as written: {n} classes of their own; if they are one, write the label one way "
            f"in the manifest"]


def _label_forms(label_cells: list[tuple[int, str]], name: str) -> tuple[dict[str, str], list[str]]:
    """Class names written in two Unicode forms (``café`` typed on macOS, NFD, and elsewhere, NFC): one class, in
    its NFC form, as class folders are; a name written in one form only is kept as written. Returns the
    spellings to read as their NFC form, and one warning per such name.

    Example:
        >>> forms, warnings = _label_forms([(0, "caf\u00e9"), (1, "cafe\u0301")], "m.csv")
        >>> forms == {"cafe\u0301": "caf\u00e9"}, warnings[0][:50]
        (True, "manifest m.csv, column 'label': class names 'café'")
    """
    by_form = _by_unicode_form((i, c) for i, c in label_cells if not c.isascii())
    warnings = []
    for nfc, spellings in by_form.items():
        if len(spellings) > 1:
            a, b, *rest = sorted(spellings, key=lambda c: c != nfc)  # the NFC form first
            a_shown, b_shown, _ = names_apart(a, b)
            more = f" (and {len(rest)} more)" if rest else ""
            warnings.append(f"manifest {name}, column 'label': class names {a_shown} ({plural(len(spellings[a]), 'row')}) "
                            f"and {b_shown} ({plural(len(spellings[b]), 'row')}){more} are one name in two Unicode forms "
                            f"(NFC and NFD: text typed on macOS and elsewhere): their rows are one class, "
                            f"{printable(nfc)!r} (NFC); write the name in one form to silence this")
    return _to_nfc(by_form), warnings


def _label_space_warnings(rows: list[dict[str, Any]], fields: Mapping[str, str], name: str) -> list[str]:
    """One warning when class names differ only by spaces around them (``' dog'`` and ``'dog'``: a hand-edited
    cell, a CVAT attribute value): they are one class, the name stripped, as ``--labels`` names are; said
    with each spelling's rows, as the Unicode forms of a name are (:func:`_label_forms`).

    Example:
        >>> _label_space_warnings([{"label": "dog"}, {"label": " dog"}], {"label": "label"}, "m.csv")[0][:70]
        "manifest m.csv, column 'label': class names ' dog' (1 row) and 'dog' ("
    """
    by_name: dict[str, Counter[str]] = {}
    for r in rows:
        for c, v in r.items():
            if fields.get(c) == "label" and isinstance(v, str) and v.strip():
                by_name.setdefault(v.strip(), Counter())[v] += 1
    groups = [(n, sp) for n, sp in sorted(by_name.items()) if len(sp) > 1]
    if not groups:
        return []

    def shown(n: str, sp: Counter[str]) -> str:
        parts = [f"{printable(c)!r} ({plural(k, 'row')})" for c, k in sorted(sp.items(), key=lambda ck: (ck[0] == n, ck[0]))]
        return f"{', '.join(parts[:-1])} and {parts[-1]}"

    more = f"; and {len(groups) - 3} more such name{'s' * (len(groups) > 4)}" if len(groups) > 3 else ""
    return [f"manifest {name}, column 'label': class names {'; '.join(shown(n, sp) for n, sp in groups[:3])}{more} "
            f"differ only by spaces around them: each is one class, named without the spaces; write each name "
            f"without spaces around it to silence this"]


def _by_unicode_form(cells: Iterable[tuple[int, str]]) -> dict[str, dict[str, list[int]]]:
    """Group (row, value) cells by the value's NFC form: NFC form -> spelling as written -> its rows, in the
    order met (labels and split values written in NFC and NFD are one name).

    Example:
        >>> _by_unicode_form([(0, "caf\u00e9"), (1, "cafe\u0301"), (2, "caf\u00e9")])["caf\u00e9"]["cafe\u0301"]
        [1]
    """
    grouped: dict[str, dict[str, list[int]]] = {}
    for i, v in cells:
        grouped.setdefault(_nfc(v), {}).setdefault(v, []).append(i)
    return grouped


def _to_nfc(by_form: Mapping[str, Mapping[str, list[int]]]) -> dict[str, str]:
    """The spellings to read as their NFC form: those of a name met in more than one form (a name written in one
    form only is kept as written)."""
    return {v: nfc for nfc, spellings in by_form.items() if len(spellings) > 1 for v in spellings if v != nfc}


def _label_spelling_warnings(label_cells: list[tuple[int, str]], name: str) -> list[str]:
    """One warning when spellings of one class id (``1``, ``01``, ``1.0``) are all read as that id: written
    differently, they may have been meant as classes of their own (codes such as ``01`` and ``1``).

    Example:
        >>> _label_spelling_warnings([(0, "1"), (1, "01"), (2, "2")], "m.csv")[0][:66]
        "manifest m.csv, column 'label': spellings '01' (1 row) and '1' (1 "
    """
    by_id: dict[int, Counter[str]] = {}
    for _, c in label_cells:
        if _ID_LABEL.fullmatch(c):
            by_id.setdefault(int(c.partition(".")[0]), Counter())[c] += 1
    groups = [(i, sp) for i, sp in sorted(by_id.items()) if len(sp) > 1]
    if not groups:
        return []

    def shown(i: int, sp: Counter[str]) -> str:
        parts = [f"{c!r} ({plural(n, 'row')})" for c, n in sorted(sp.items())]
        return f"{', '.join(parts[:-1])} and {parts[-1]} are all class id {i}"

    more = f"; and {len(groups) - 3} more such id{'s' * (len(groups) > 4)}" if len(groups) > 3 else ""
    return [f"manifest {name}, column 'label': spellings {'; '.join(shown(i, sp) for i, sp in groups[:3])}{more}: "
            f"read as one class each; if they are different classes (codes such as '01' and '1'), write them as "
            f"names that are not numbers ('c01', 'c1') and declare those with --labels names.txt (a cell of digits is "
            f"read as a class id even when --labels declares it as a name), else write each id one way to silence "
            f"this"]


def _case_key_warnings(records: list[Record], name: str | None = None) -> list[str]:
    """One warning when sample keys differ only in case (``Cat`` and ``cat``, ``k1`` and ``K1``): they are
    samples of their own, but their tar members (``Cat.png``, ``cat.png``) are one file once the shards are
    extracted on a case-insensitive file system (macOS, Windows); likely a typo besides.

    Example:
        >>> _case_key_warnings([Record("Cat", "Cat"), Record("cat", "cat"), Record("dog", "dog")])[0][:52]
        "2 samples have keys that differ only in case ('Cat' "
    """
    by_case: dict[str, list[Record]] = {}
    for r in records:  # compared in NFC: 'Café' typed on macOS (NFD) beside 'café' (NFC) is the same clash
        by_case.setdefault(_nfc(r.source_key or r.key).casefold(), []).append(r)
    clashes = [rs for rs in by_case.values() if len(rs) > 1]
    if not clashes:
        return []
    n = sum(map(len, clashes))
    shown = "; ".join(" and ".join(repr(printable(r.source_key or r.key)) for r in rs[:3]) +
                      (" ..." if len(rs) > 3 else "") for rs in clashes[:3])
    more = f"; and {len(clashes) - 3} more such group{'s' * (len(clashes) > 4)}" if len(clashes) > 3 else ""
    where = f"manifest {name}: " if name else ""
    a, b = clashes[0][0].key, clashes[0][1].key
    tars = (f"their tar members (e.g. {a}.png, {b}.png) are one file when the shards are extracted on macOS or "
            f"Windows" if a.casefold() == b.casefold() else "they look like one name typed twice")
    return [f"{where}{n} samples have keys that differ only in case ({shown}{more}): they are kept as samples of their "
            f"own, but {tars}; if they are one sample, give them one name"]


#: the longest key whose tar members ``<key>.<field ext>`` every extractor can write: a file name is at most 255
#: bytes on Linux and macOS, and Windows' paths stop at 260 characters unless long paths are enabled
MAX_KEY_CHARS = 200
#: the longest key a WebDataset source's sample may have (PATH_MAX: no file of a folder source can have a longer
#: name); a PAX ``path`` record may hold any length
MAX_SOURCE_KEY_BYTES = 4096
#: names Windows cannot give a file, with any extension and in any case (``CON.png``, ``nul.txt``)
WINDOWS_RESERVED = frozenset(("CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))))


def _key_name_warnings(records: list[Record], name: str | None = None) -> list[str]:
    """Warnings for sample keys whose tar members cannot be extracted everywhere: keys over
    :data:`MAX_KEY_CHARS` characters (``tar xf`` on Linux refuses a member name over 255 bytes) and Windows'
    reserved names (``CON``, ``nul``, ``COM1``). mmdata reads such shards; keys stay as they are (a key is
    what an earlier dataset and its ``--split-from`` name the sample by).

    Example:
        >>> _key_name_warnings([Record("CON", "CON"), Record("cat", "cat")])[0].split(":")[0]
        "1 sample has a key Windows reserves for a device ('CON'"
    """
    where = f"manifest {name}: " if name else ""
    out = []
    long = [r for r in records if len(r.key.encode("utf-8", "surrogateescape")) > MAX_KEY_CHARS]
    if long:
        n, r = len(long), long[0]
        out.append(f"{where}{plural(n, 'sample')} {'have keys' if n != 1 else 'has a key'} over {MAX_KEY_CHARS} "
                   f"characters (e.g. {len(r.key)} characters for {printable(_shown(r.source_key or r.key))!r}): "
                   f"mmdata reads them, but their tar members cannot be extracted by tar on Linux (a name over 255 "
                   f"bytes) nor on Windows (a path over 260 characters); give the files or rows shorter names (a key "
                   f"column in a manifest) if the shards will be unpacked")
    reserved = [r for r in records if r.key.upper() in WINDOWS_RESERVED]
    if reserved:
        n, shown = len(reserved), ", ".join(repr(r.key) for r in reserved[:3]) + (", ..." if len(reserved) > 3 else "")
        r = reserved[0]
        # the first sample's own members (its label's .cls added by the writer), as the tar names them
        exts = sorted({*r.members, *(("cls",) if r.label is not None else ())}) or ["<ext>"]
        files = ", ".join(f"{printable(r.key)}.{e}" for e in exts[:4]) + (", ..." if len(exts) > 4 else "")
        out.append(f"{where}{plural(n, 'sample')} {'have keys' if n != 1 else 'has a key'} Windows reserves for a "
                   f"device ({shown}: {files} cannot be created there): mmdata reads them, but the shards "
                   f"cannot be extracted on Windows; rename the files or give the rows other keys if they will be")
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _manifest_splits(rows: list[dict[str, Any]], fields: Mapping[str, str],
                     name: str) -> tuple[list[str], dict[str, str]]:
    """Check the split column's values (they name shard files) and warn about likely mistakes:
    spellings that differ from another value or from train / val / test only in case, and other
    names for val / test (``dev``, ``validation``). Values are used as written (spaces around them cut), but
    one name in two Unicode forms (``tést`` in NFC and NFD) is one split, in its NFC form, with a warning (a
    value written in one form only is kept as written). Returns the warnings and the spellings to read as
    their NFC form.

    Example:
        >>> _manifest_splits([{"s": "t\u00e9st"}, {"s": "te\u0301st"}], {"s": "split"}, "m.csv")[1] == {"te\u0301st": "t\u00e9st"}
        True
    """
    written = _by_unicode_form((i, str(v).strip()) for i, r in enumerate(rows) for c, v in r.items()
                               if fields.get(c) == "split" and not _blank(v))
    where = {nfc: sorted(i for idx in spellings.values() for i in idx) for nfc, spellings in written.items()}
    for v, idx in where.items():
        check_split_name(v, f"manifest {name} {_rows(idx[:1])}, column 'split'")
    warnings: list[str] = []
    forms = _to_nfc(written)
    for nfc, spellings in written.items():  # as labels: one split, in its NFC form (the shard files' names)
        if len(spellings) > 1:
            a, b = sorted(spellings, key=lambda v: v != nfc)[:2]
            warnings.append(f"manifest {name}, column 'split': splits {printable(a)!r} ({_rows(spellings[a][:3])}) and "
                            f"{printable(b)!r} ({_rows(spellings[b][:3])}) are one name in two Unicode forms (NFC and "
                            f"NFD: text typed on macOS and elsewhere): their rows are one split, {printable(nfc)!r} "
                            f"(NFC); write the name in one form to silence this")
    by_lower: dict[str, list[str]] = {}
    for v in where:
        by_lower.setdefault(v.lower(), []).append(v)
    for low, spellings in sorted(by_lower.items()):
        if len(spellings) > 1:  # as --split: their shard files are one file on case-insensitive file systems
            shown = " and ".join(f"{v!r} ({_rows(where[v][:3])})" for v in sorted(spellings))
            raise SourceError(f"manifest {name}, column 'split': {shown} differ only in case: their shard files "
                              f"({', '.join(f'{v}-000000.tar' for v in sorted(spellings))}) are one file on "
                              f"case-insensitive file systems (macOS, Windows); use one spelling")
        (v,) = spellings
        hints = []
        if v != low and low in STANDARD_SPLITS:
            hints.append(f"differs from {low!r} only in case")
        if low in _SPLIT_ALIASES:
            hints.append(f"is not one of train, val, test (the splits mmdata train and ablate read); if it "
                         f"means {_SPLIT_ALIASES[low]!r}, write that")
        if hints:
            warnings.append(f"manifest {name}, column 'split': {v!r} ({_rows(where[v])}) {' and '.join(hints)}: "
                            f"split cells are used as written, so {v!r} is a split of its own "
                            f"({v}-000000.tar, ...)")
    return warnings, forms


# ---- segments: a manifest's rows as cuts of longer recordings (--segment) ---------------------------

#: the keys of ``--segment`` (``segment=``): a start column and a duration or an end column, in seconds, and
#: optionally a channel column (Lhotse's ``channel``: an int or a list of ints, the recording's channels to keep)
SEGMENT_KEYS = ("start", "duration", "end", "channel")
#: the index columns a segment sample carries (:attr:`Record.extra`): the recording as the manifest names it,
#: the start and duration in seconds, and the frames cut (``first:stop`` at the recording's sample rate)
SEGMENT_SOURCE, SEGMENT_START, SEGMENT_DURATION, SEGMENT_FRAMES = (
    "segment_source", "segment_start", "segment_duration", "segment_frames")
#: the index column of a segment cut to some of its recording's channels (``--segment ...,channel=COL``): the
#: channels kept, 0-based, comma-separated in the row's order (``"1"``, ``"0,2"``)
SEGMENT_CHANNELS = "segment_channels"
#: source encodings a segment keeps bit for bit in FLAC (libsndfile's FLAC subtypes; 8-bit unsigned as signed)
_FLAC_SUBTYPES = {"PCM_S8": "PCM_S8", "PCM_U8": "PCM_S8", "PCM_16": "PCM_16", "PCM_24": "PCM_24"}
#: source encodings FLAC cannot hold: a segment is a WAV of the same encoding
_WAV_SUBTYPES = ("PCM_32", "FLOAT", "DOUBLE")


def segment_spec(segment: str | Mapping[str, str] | None, where: str) -> dict[str, str] | None:
    """``--segment start=COL,duration=COL`` (or ``start=COL,end=COL``) as ``{"start": COL, "duration": COL}``;
    ``segment=`` may also be that mapping. An optional ``channel=COL`` names a column of the recording's
    channels each segment keeps (an int, or a list of ints: Lhotse's supervision ``channel``). None when not
    given.

    Raises:
        SourceError: a key other than start / duration / end, no start, both or neither of duration and end,
            or a blank column name.

    Example:
        >>> segment_spec("start=begin,duration=dur", "manifest m.csv")
        {'start': 'begin', 'duration': 'dur'}
    """
    if segment is None or (not isinstance(segment, str) and not segment):
        return None
    usage = ("expected start=COLUMN,duration=COLUMN (or start=COLUMN,end=COLUMN), the columns in seconds, and "
             "optionally channel=COLUMN (the channels to keep: an int or a list of ints)")
    if isinstance(segment, str):
        spec: dict[str, str] = {}
        for item in segment.split(","):
            k, sep, col = item.partition("=")
            k = k.strip()
            if not sep or k in spec:
                raise SourceError(f"{where}: --segment {segment!r} (segment=): {usage}"
                                  + (f"; {k}= is given twice" if sep else ""))
            spec[k] = col.strip()
    elif isinstance(segment, Mapping):
        spec = {str(k): v for k, v in segment.items()}
    else:
        raise SourceError(f"{where}: segment=: {usage}, as a str or a dict; got {type(segment).__name__}")
    odd = [k for k in spec if k not in SEGMENT_KEYS]
    if odd or "start" not in spec or ("duration" in spec) == ("end" in spec):
        why = (f"unknown key {odd[0]!r}" if odd else "no start= column" if "start" not in spec else
               "both duration= and end=" if "duration" in spec else "neither duration= nor end=")
        raise SourceError(f"{where}: --segment {_spec_text(spec)} (segment=): {why}; {usage}")
    blank = [k for k, col in spec.items() if not isinstance(col, str) or not col.strip()]
    if blank:
        raise SourceError(f"{where}: --segment {_spec_text(spec)} (segment=): {blank[0]}= names no column; {usage}")
    return {k: spec[k] for k in SEGMENT_KEYS if k in spec}


def _spec_text(spec: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in spec.items())


def _seconds(raw: Mapping[str, Any], spec: Mapping[str, str], what: str) -> tuple[float | None, str | None]:
    """The number of seconds in the row's ``what`` column of ``spec``, or why there is none."""
    col = spec[what]
    val = raw.get(col)
    if _blank(val):
        return None, f"--segment {what} column {col!r} is blank (a number of seconds expected)"
    if isinstance(val, bool) or not isinstance(val, (int, float, str)):
        return None, f"--segment {what} column {col!r}: {_shown(str(val))} is not a number of seconds"
    try:
        x = float(val.strip()) if isinstance(val, str) else float(val)
    except ValueError:
        return None, f"--segment {what} column {col!r}: {_shown(val)!r} is not a number of seconds"  # type: ignore[arg-type]
    if not math.isfinite(x):
        return None, f"--segment {what} column {col!r}: {val!r} is not a finite number of seconds"
    return x, None


def _segment_channels(raw: Mapping[str, Any], spec: Mapping[str, str]) -> tuple[tuple[int, ...] | None, str | None]:
    """The channels a row's segment keeps (``--segment ...,channel=COL``): None for all (no channel column),
    else a tuple of 0-based channel numbers, or why the cell is none: blank, not an int or a list of ints
    (JSON ``[0, 1]`` or ``0,1`` in a CSV cell), negative, or a channel twice."""
    col = spec.get("channel")
    if col is None:
        return None, None
    val = raw.get(col)
    expected = "a channel number (0 for the first) or a list of them expected"
    if _blank(val):
        return None, f"--segment channel column {col!r} is blank ({expected})"
    items: Any = val
    if isinstance(val, str):
        text = val.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = [t.strip() for t in text.split(",")]
    elif not isinstance(val, (list, tuple)):
        items = [val]
    out: list[int] = []
    for it in items:
        if isinstance(it, bool):
            return None, f"--segment channel column {col!r}: {_shown(str(val))!r} is not a channel ({expected})"
        if isinstance(it, float) and it.is_integer():
            it = int(it)
        if isinstance(it, str) and re.fullmatch(r"[+-]?\d+(\.0*)?", it):  # '1.0': pandas' int column with blanks
            it = int(float(it))
        if not isinstance(it, int):
            return None, f"--segment channel column {col!r}: {_shown(str(val))!r} is not a channel ({expected})"
        if it < 0:
            return None, f"--segment channel column {col!r}: channel {it} is negative ({expected})"
        if it in out:
            return None, f"--segment channel column {col!r}: channel {it} is named twice in {_shown(str(val))}"
        out.append(it)
    if not out:
        return None, f"--segment channel column {col!r}: {_shown(str(val))} names no channel ({expected})"
    return tuple(out), None


def _segment_cells(raw: Mapping[str, Any], spec: Mapping[str, str]) -> tuple[tuple[float, float] | None, str | None]:
    """A row's (start, duration) in seconds, or why it has none: a blank or non-numeric cell, a negative start,
    a duration (or an end past the start) of zero or less."""
    start, why = _seconds(raw, spec, "start")
    if why is not None:
        return None, why
    assert start is not None
    if start < 0:
        return None, f"--segment start column {spec['start']!r}: {start:g} s is negative (a start >= 0 expected)"
    if "duration" in spec:
        dur, why = _seconds(raw, spec, "duration")
        if why is not None:
            return None, why
        assert dur is not None
        if dur <= 0:
            return None, (f"--segment duration column {spec['duration']!r}: {dur:g} s (a duration > 0 expected)")
        return (start, dur), None
    end, why = _seconds(raw, spec, "end")
    if why is not None:
        return None, why
    assert end is not None
    if end <= start:
        return None, (f"--segment end column {spec['end']!r}: {end:g} s is not after the start {start:g} s (an end "
                      f"> start expected)")
    return (start, float(f"{end - start:.9f}")), None


#: the bytes of a WAV read to find its data chunk's header (the chunks before it are small)
_WAV_HEAD = 1 << 16


def _wav_size_fix(f: Any) -> tuple[int, bytes] | None:
    """For the open WAV file ``f`` whose data chunk's size a streaming writer never finalised (a placeholder:
    :func:`~mmdata.shards.mediainfo.wav_size_unknown`; libsndfile reads a 0 as no audio), the offset of that
    size and the size it stands for — the whole frames to the end of the file, what
    :func:`~mmdata.shards.mediainfo.wav_finalised` writes in; None for any other file. Only the first
    :data:`_WAV_HEAD` bytes are read (a recording may be hours long; wav_finalised takes the whole file)."""
    from mmdata.shards import mediainfo

    head = f.read(_WAV_HEAD)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    try:  # mediainfo's walk of the chunks in the head: the data chunk's offset and the frame's block align
        got = mediainfo._wav_data(head)
    except mediainfo.CorruptMedia:  # e.g. a data chunk declared past the head: a finalised WAV (libsndfile reads it)
        return None
    if got is None or not got[3]:  # not PCM / float / A-law / mu-law, or the size is not a placeholder
        return None
    (_, _, _, block), pos, _, _ = got
    avail = os.fstat(f.fileno()).st_size - pos - 8  # the rule again with the bytes of the whole file
    if not mediainfo.wav_size_unknown(int.from_bytes(head[pos + 4:pos + 8], "little"), avail, block,
                                      head[pos + 8:pos + 16]):
        return None
    return pos + 4, min(avail - avail % block, 0xFFFFFFFF).to_bytes(4, "little")


class _FinalisedWav(io.RawIOBase):
    """A WAV file whose data chunk size reads as :func:`_wav_size_fix` gives it; every other byte as on disk
    (read on demand: only the frames soundfile asks for)."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "rb", buffering=0)  # noqa: SIM115  (closed by close())
        try:
            self.fix = _wav_size_fix(self.f)
            self.f.seek(0)
        except BaseException:
            self.f.close()
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def readinto(self, buf: Any) -> int:
        start = self.f.tell()
        n = self.f.readinto(buf)
        if self.fix is not None and n:
            at, size = self.fix
            lo, hi = max(at, start), min(at + 4, start + n)
            if lo < hi:
                memoryview(buf)[lo - start:hi - start] = size[lo - at:hi - at]
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


def open_audio(path: str) -> Any:
    """``soundfile.SoundFile`` of the audio file ``path`` (close it with :func:`close_audio`); a WAV whose
    header a streaming writer never finalised (data chunk size 0: libsndfile would read no audio) is read
    with the size :func:`~mmdata.shards.mediainfo.wav_finalised` gives it, as the decoders read it, so its
    frames count and can be cut.

    Example:
        >>> import tempfile, numpy as np, soundfile as sf
        >>> p = tempfile.mkdtemp() + "/a.wav"; sf.write(p, np.zeros(800, "int16"), 8000)
        >>> data = open(p, "rb").read(); i = data.find(b"data") + 4
        >>> _ = open(p, "wb").write(data[:i] + bytes(4) + data[i + 4:])
        >>> f = open_audio(p); f.frames
        800
        >>> close_audio(f)
    """
    import soundfile as sf

    raw = _FinalisedWav(path)
    if raw.fix is None:
        raw.close()
        return sf.SoundFile(path)
    try:
        f = sf.SoundFile(raw)
    except BaseException:
        raw.close()
        raise
    f._mmdata_raw = raw  # a SoundFile does not close a file object it was given
    return f


def close_audio(f: Any) -> None:
    """Close what :func:`open_audio` opened."""
    f.close()
    raw = getattr(f, "_mmdata_raw", None)
    if raw is not None:
        raw.close()


def _wav_cut(path: str, size: int) -> str | None:
    """Why the WAV file ``path`` (``size`` bytes) is cut short: its data chunk declares more bytes than the file
    holds (an interrupted download or copy), said as folder sharding says it
    (:func:`~mmdata.shards.mediainfo._wav_data`); None for a whole WAV, a header never finalised (a placeholder
    size: :func:`~mmdata.shards.mediainfo.wav_size_unknown`) and any other file. Only the first :data:`_WAV_HEAD`
    bytes are read.

    Example:
        >>> import tempfile, numpy as np, soundfile as sf
        >>> p = tempfile.mkdtemp() + "/a.wav"; sf.write(p, np.zeros(800, "int16"), 8000)
        >>> _ = os.truncate(p, 844); _wav_cut(p, 844)
        'truncated WAV: the data chunk declares 1600 bytes, the file holds 800'
    """
    from mmdata.shards import mediainfo

    try:
        with open(path, "rb") as f:
            head = f.read(_WAV_HEAD)
    except OSError:
        return None  # open_audio says why
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, block = 12, 1
    while pos + 8 <= len(head):
        cid, declared = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"fmt " and pos + 22 <= len(head):
            block = max(int.from_bytes(head[pos + 20:pos + 22], "little"), 1)
        elif cid == b"data":
            avail = size - pos - 8
            if declared > avail and not mediainfo.wav_size_unknown(declared, avail, block, head[pos + 8:pos + 16]):
                return f"truncated WAV: the data chunk declares {declared} bytes, the file holds {avail}"
            return None
        pos += 8 + declared + (declared & 1)
    return None


@functools.lru_cache(maxsize=64)
def _audio_info(path: str, size: int, stamp: int) -> tuple[int, int, int, str, str] | str:
    """(frames, sample rate, channels, format, subtype) of an audio file's header, or why it cannot be read;
    cached by (path, size, change stamp): the rows of one recording read its header once. A WAV whose data
    chunk size was never finalised counts its frames to the end of the file (:func:`open_audio`)."""
    cut = _wav_cut(path, size)
    if cut is not None:  # libsndfile reads the frames that are there: the segments would be blamed (QA37 podcast #2)
        return cut
    try:
        f = open_audio(path)
    except (RuntimeError, OSError) as exc:  # soundfile's LibsndfileError; the file cannot be opened
        return f"cannot read the audio file's header to cut it ({str(exc).strip()})"
    try:
        frames, rate, channels, kind, subtype = f.frames, f.samplerate, f.channels, f.format, f.subtype
    finally:
        close_audio(f)
    if frames <= 0 or rate <= 0:
        return f"the audio file holds no frames (length {frames}, {rate} Hz) to cut"
    return frames, rate, channels, kind, subtype


def segment_ext(subtype: str) -> str:
    """The member a segment of a source of this encoding is written as: ``flac`` (8 / 16 / 24-bit PCM kept bit
    for bit; any other encoding decoded to 16 bits), or ``wav`` for 32-bit PCM and float (FLAC holds neither)."""
    return "wav" if subtype in _WAV_SUBTYPES else "flac"


def _cut_segment(members: dict[str, Any], seg: tuple[float, float], shown: str, extra: dict[str, str],
                 stats: dict[str, tuple[int, int]], channels: tuple[int, ...] | None = None,
                 multichannel: list[str] | None = None) -> str | None:
    """Point the row's audio member at its segment: the member renamed to the segment's type
    (:func:`segment_ext`), the segment's source, start, duration and frames (and ``channels``, the recording's
    channels it keeps; None: all) put in ``extra`` (index columns), its size estimate in ``stats`` (for
    ``maxsize``). Returns why it cannot be cut (no audio file, a header that cannot be read, a segment past the
    end of the file by more than one frame, one shorter than a frame, a channel the recording does not have),
    else None. ``multichannel``: gets ``shown`` when the recording has several channels and ``channels`` is
    None (all of them kept)."""
    auds = [e for e in members if field_of(e) == "audio"]
    if not auds:
        return "no audio file in the row to cut the segment from"
    ext = auds[0]
    path = members[ext]
    if not isinstance(path, (str, Path)):
        return "the row's audio is inline bytes; --segment cuts audio files"
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot read {shown!r}: {exc.strerror}"
    info = _audio_info(path, st.st_size, file_stamp(st))
    if isinstance(info, str):
        return f"{shown!r}: {info}"
    frames, sr, n_channels, _fmt, subtype = info
    if channels is not None and max(channels) >= n_channels:
        bad = next(c for c in channels if c >= n_channels)
        return (f"channel {bad} of {shown!r}, which has {n_channels} channel{'s' * (n_channels != 1)} (0 to "
                f"{n_channels - 1}); a channel of the recording expected")
    if channels is None and n_channels > 1 and multichannel is not None:
        multichannel.append(shown)
    start, dur = seg
    first, stop = round(start * sr), round((start + dur) * sr)
    length = f"{frames / sr:.6g} s, {frames} frames at {sr} Hz"
    if first >= frames:
        return (f"the segment starts at {start:g} s, at or past the end of {shown!r} (its length: {length}); a start "
                f"inside the file expected")
    if stop > frames + 1:  # one frame of float rounding is let through and cut at the end
        over = stop - frames
        return (f"the segment ({start:g} s + {dur:g} s) ends {over / sr:.6g} s ({over} frames) past the end of "
                f"{shown!r} (its length: {length}); a segment inside the file expected")
    stop = min(stop, frames)
    if stop <= first:
        return f"the segment's duration {dur:g} s is shorter than one frame at {sr} Hz"
    out = segment_ext(subtype)
    del members[ext]
    members[out] = path
    extra.update({SEGMENT_SOURCE: shown, SEGMENT_START: repr(float(start)), SEGMENT_DURATION: repr(float(dur)),
                  SEGMENT_FRAMES: f"{first}:{stop}"})
    kept = n_channels
    if channels is not None:
        extra[SEGMENT_CHANNELS] = ",".join(map(str, channels))
        kept = len(channels)
    # the planner's size of the member (maxsize): the file's share of it, plus a header
    stats[out] = (-(-st.st_size * (stop - first) * kept // (frames * n_channels)) + 4096, file_stamp(st))
    return None


#: the per-row numbers of :func:`_cut_segment`'s reasons (the segment's start, duration, overrun): masked by
#: :func:`reason_group`, so that the rows of one cause count as one reason
_SEGMENT_NUMBERS = ((re.compile(r"the segment starts at [^ ]+ s, at or past the end"), "the segment starts at or past the end"),
                    (re.compile(r"the segment \([^)]*\) ends [^ ]+ s \([0-9]+ frames\) past the end"),
                     "the segment ends past the end"))


def reason_group(reason: str) -> str:
    """A skip reason without the numbers of its row (a segment's start, duration and overrun), for a report's
    "by reason" counts: the rows cut past the end of one recording are one reason, not one each (QA37 podcast #7).
    The recording's length stays: it is the cause's.

    Example:
        >>> reason_group("m.csv: the segment starts at 60 s, at or past the end of 'ep.wav' (its length: 60 s)")
        "m.csv: the segment starts at or past the end of 'ep.wav' (its length: 60 s)"
        >>> reason_group("m.csv: the segment (28 s + 7 s) ends 5 s (40000 frames) past the end of 'ep.wav'")
        "m.csv: the segment ends past the end of 'ep.wav'"
    """
    for pattern, said in _SEGMENT_NUMBERS:
        reason = pattern.sub(said, reason, count=1)
    return reason


def segment_key(file_key: str, start: float, end: float | None = None) -> str:
    """The sample a segment row without a key is: its recording's key and its start in seconds (millisecond
    precision). Rows whose keys so agree (two events of one recording starting together) also name their end
    (``end``; :func:`discover_manifest` passes it for those rows only, so no other key changes).

    Example:
        >>> segment_key("talks/rec1", 12.34), segment_key("talks/rec1", 12.34, 13.5)
        ('talks/rec1_000012.340', 'talks/rec1_000012.340-000013.500')
    """
    return f"{file_key}_{start:010.3f}" if end is None else f"{file_key}_{start:010.3f}-{end:010.3f}"


#: per manifest row: its (start, duration), why it has none, its recording's cell, and whether a key is given
_SegmentRow = tuple[tuple[float, float] | None, str | None, "_Cell | None", bool]


def _segment_rows(rows: list[dict[str, Any]], cells: list[list[tuple[str, _Cell]]], unread: set[str],
                  rename: Mapping[str, str], left_alone: set[Any], spec: Mapping[str, str] | None) -> list[_SegmentRow]:
    """Each row's segment cells and recording (:func:`_segment_cells`), read once before the keys are made
    (:func:`_colliding_segment_keys` looks at every row's); empty without ``--segment``."""
    if spec is None:
        return []
    out: list[_SegmentRow] = []
    for raw, parsed in zip(rows, cells):
        seg, why = _segment_cells(raw, spec)
        audio = next((c for col, c in parsed if col not in unread and c.key is not None and c.ext in AUDIO_EXTS), None)
        key = next((v for k, v in raw.items() if k not in left_alone and rename.get(k, k) == "key"), None)
        out.append((seg, why, audio, not _blank(key)))
    return out


def _colliding_segment_keys(segs: Sequence[_SegmentRow]) -> set[int]:
    """The rows whose default segment keys (:func:`segment_key`) agree, and which naming their end tells apart
    (two events of one recording starting at one millisecond): their keys name it. Decided over the whole
    manifest, so the keys do not depend on the rows' order, and every other key is as it was; rows a key
    column names, and those the end does not tell apart (one segment twice), are left to the duplicate-key
    error."""
    by_key: dict[str, list[int]] = {}
    for i, (seg, _, audio, keyed) in enumerate(segs):
        if seg is not None and audio is not None and not keyed:
            by_key.setdefault(_nfc(segment_key(audio.key, seg[0])), []).append(i)  # type: ignore[arg-type]
    out: set[int] = set()
    for i_rows in by_key.values():
        if len(i_rows) > 1:
            ends = {_nfc(segment_key(segs[i][2].key, segs[i][0][0], sum(segs[i][0])))  # type: ignore[index, union-attr, arg-type]
                    for i in i_rows}
            if len(ends) == len(i_rows):
                out.update(i_rows)
    return out


def _segment_collision(a: _SegmentRow, b: _SegmentRow, a_channels: tuple[int, ...] | None = None,
                       b_channels: tuple[int, ...] | None = None) -> str:
    """Why two segment rows without a key got one key, for the duplicate-key error ("" when neither reason);
    ``a_channels`` / ``b_channels``: the channels each keeps (``--segment ...,channel=COL``)."""
    if a[0] is None or b[0] is None or a[2] is None or b[2] is None or a[3] or b[3]:
        return ""
    if a[2].member != b[2].member:
        return (f" (segments of the recordings {a[2].shown!r} and {b[2].shown!r}: a segment's key is its "
                f"recording's name without the extension, and its start)")
    if a_channels != b_channels:  # a window cut per channel (each speaker of a call): the key names no channel
        shown = [",".join(map(str, c)) if c is not None else "all" for c in (a_channels, b_channels)]
        return (f" (channels {shown[0]} and {shown[1]} of one window of {a[2].shown!r}: a segment's key without a "
                f"key column is its recording and start, not its channel)")
    return f" (one segment of {a[2].shown!r} twice: the same start and end, to the millisecond)"


def _ends_named_warning(rows_named: set[int], segs: Sequence[_SegmentRow], name: str) -> str:
    """The warning for segment keys that name their end (:func:`_colliding_segment_keys`)."""
    first = min(rows_named)
    seg, _, audio, _ = segs[first]
    plain = segment_key(audio.key, seg[0])  # type: ignore[union-attr, index, arg-type]
    same = sorted(i for i in rows_named if segment_key(segs[i][2].key, segs[i][0][0]) == plain)  # type: ignore
    ended = segment_key(audio.key, seg[0], seg[0] + seg[1])  # type: ignore[union-attr, index, arg-type]
    n = len(rows_named)
    files = sorted({segs[i][2].shown for i in same})  # type: ignore[union-attr]
    if len(files) > 1:  # rec/long.wav + rec/long.flac: two recordings, one name without the extension
        shown = ", ".join(repr(f) for f in files[:3]) + (", ..." if len(files) > 3 else "")
        return (f"manifest {name}: {plural(n, 'segment row')} of the files {shown}, whose names differ only by the "
                f"extension, start at the same time, to the millisecond (e.g. {_rows(same)}: {plain!r}): "
                f"{'their keys' if n != 1 else 'its key'} also name the end ({ended!r}, ...), so that each row is a "
                f"sample of its own; rename one of the files, or give a key column (or --column key=COL) to name them "
                f"yourself")
    return (f"manifest {name}: {plural(n, 'segment row')} share{'s' * (n == 1)} {'their' if n != 1 else 'its'} "
            f"recording and start, to the millisecond, with another row (e.g. {_rows(same)}: {plain!r}): "
            f"{'their keys' if n != 1 else 'its key'} also name the end ({ended!r}, ...), so that each row is a "
            f"sample of its own; give a key column (or --column key=COL) to name them yourself")


#: a manifest's rows between two calls of ``discover_manifest``'s ``on_rows`` (a progress count)
_ROWS_SHOWN = 1024


def discover_manifest(path: Path, columns: Mapping[str, str] | None = None, label_names: list[str] | None = None,
                      *, label_names_from: str | None = None, on_error: str = "skip", remote: Any = None,
                      meta: Sequence[str] | None = None, group_by: str | None = None,
                      root: str | Path | None = None, paths: Mapping[str, str] | None = None,
                      segment: str | Mapping[str, str] | None = None,
                      on_rows: Callable[[int], None] | None = None) -> Discovered:
    """Records from a manifest: one row per sample.

    Columns: ``key`` (optional; default the first media path, relative to the manifest's folder and
    without its extension, as a folder source names samples: ``a/x.jpg`` -> ``a/x``, ``scan.1.v2.jpg``
    -> ``scan.1.v2``; else the row number), ``text`` (inline UTF-8), ``label`` (int id or class name),
    ``split`` (optional, used as written), and any other column holds the sample's files
    (``image``, ``audio``, ``depth``...; the member extension comes from the file suffix, ``.npy``
    becomes ``<column>.npy``): a path relative to the manifest's folder, an absolute path or a
    ``file://`` URL inside that folder, or inline bytes (a Parquet binary column, or Hugging Face's
    ``{"bytes": ..., "path": ...}`` structs; the type from the bytes).
    ``columns`` maps field names to differently named columns, e.g. ``{"image": "img_path"}``; a field
    that is not a standard one (``{"depth": "depth_png"}``, ``{"mask": "mask"}``) is a named field: its
    images / text / JSON files become ``<key>.depth.png`` members beside the image, read back as the
    field ``depth.png`` (FIELD: 1 to 64 lowercase letters, digits and ``_``).
    A missing file, a path outside the manifest's folder, an unusable cell (a caption too long to be a
    file name, a list), an unknown file type, a second file for one modality or a bad label is
    skipped and reported (raised with ``on_error="raise"``); the rest of the row is kept.

    ``meta``: metadata columns (a speaker, a duration, a source URL): their values go into one
    ``<key>.json`` member per sample, ``{"column": value, ...}`` (keys sorted, a blank cell ``null``), as
    a Hugging Face source's scalar columns do; the reader gives it back as the sample's ``json`` field
    (a dict; a batch holds a list of them). JSONL and Parquet values keep their types (``""`` stays
    ``""``; Parquet through pyarrow: ints stay ints next to nulls, lists, maps as objects, decimals,
    durations in seconds, dates as ISO text; NaN is ``null``); CSV cells are text, except a column whose
    every filled cell reads back as written as an int, a float or a bool (:func:`_meta_types`: ``00123``,
    ``+49...``, ``1.10`` keep their column text; ``True`` / ``False`` are bools). A value JSON cannot hold
    (bytes, infinity, a lone surrogate, 64+ levels of nesting) is reported and stored as ``null``.

    ``group_by``: a column whose rows go to one split together (``image_id`` for one row per caption, a
    speaker for speaker-disjoint splits): its value is each record's :attr:`Record.group`; the column is
    read for that only, unless a field or ``--meta`` reads it too. Rows naming the same file are one group
    whether or not it is given (:func:`mmdata.shards.writer.assign_splits`).

    ``root``: the folder the rows' paths are read from instead of the manifest's folder (``--root``:
    ESC-50's ``meta/esc50.csv`` names files in ``audio/`` by their bare names: ``root="ESC-50/audio"``),
    with the same rule: relative paths are read from it, absolute paths must lie inside it, a path
    outside it is refused and listed. Only for a manifest on this machine.

    ``paths``: fields whose file path is made from other cells of the row, ``{field: template}``
    (``--path FIELD=TEMPLATE``; :func:`path_templates`): UrbanSound8K's ``metadata/UrbanSound8K.csv``
    names ``audio/fold{fold}/{slice_file_name}`` by ``slice_file_name`` and ``fold``, so
    ``root="UrbanSound8K", paths={"audio": "audio/fold{fold}/{slice_file_name}"}``. The path is read
    as a cell of a path column would be (relative to the manifest's folder or ``root``, the file inside
    it); a column the template names is read for it only, unless a field or ``meta`` reads it too (it
    may also be ``--column split=fold``, or metadata). A row whose value is an absolute path or holds a
    ``..`` part is refused (listed, or raised with ``on_error="raise"``) naming the row; a row whose
    template cells are all blank has no such file, as a blank path cell. Only for a manifest on this
    machine.

    A column is read as files only when it names files: a column none of whose cells names a file or
    looks like a path (no media extension, no ``/``: a class id, a take letter) is not read, with one
    warning pointing at ``--meta`` (not a listed skip per cell); a column whose cells look like paths
    but name no file (a manifest whose files lie in another folder) is listed cell by cell, and a
    warning says where the paths were looked for and names ``--root`` (and :attr:`Discovered.hint` the
    folder that holds them, when one beside the manifest does: the "no samples found" error gives it).
    When some of a column's files are found and a quarter or more are not, and those lie in folders named
    by other columns (``--root UrbanSound8K/audio/fold1`` reads one fold), a warning names the ``--path``
    template that reads them all.

    ``segment``: each row is a segment of a longer recording (Lhotse's supervisions, Kaldi's ``segments``):
    ``{"start": COL, "duration": COL}`` or ``{"start": COL, "end": COL}`` (``--segment start=COL,duration=COL``;
    :func:`segment_spec`), seconds. The sample holds frames ``round(start * sr)`` to ``round((start + duration)
    * sr)`` of the row's audio file, cut when the shard is written (:func:`mmdata.shards.writer.cut_segment`):
    8 / 16 / 24-bit PCM as FLAC of the same bit depth (a WAV source's samples bit for bit), 32-bit PCM and
    float as WAV of the same encoding, any other (lossy: MP3, Ogg Vorbis / Opus; companded) decoded and
    stored as 16-bit FLAC (the decoder's output, cut to the frame; no second lossy encoding); sample rate
    kept, and every channel, or with ``"channel": COL`` the channels that column names (an int or a list;
    :func:`_segment_channels`; a channel the recording lacks skips the row, naming it). A row without a key is ``<recording's key>_<start, 3 decimals>`` (:func:`segment_key`;
    two rows giving one key are an error naming both). A row whose start or duration is blank, not a number,
    negative or zero, or whose segment ends past the end of the file (by more than one frame, the tolerance
    for rounding) or cannot be cut is skipped and listed (raised with ``on_error="raise"``) naming the row.
    The index gets ``segment_source`` (the cell as written), ``segment_start``, ``segment_duration``
    (seconds) and ``segment_frames`` (``first:stop``) per sample, and ``segment_channels`` with a channel
    column. A Lhotse ``CutSet`` JSONL is read as flat rows (:func:`lhotse_cut_rows`). The segments of one recording go to one
    split (their group is the recording's file), unless ``group_by`` gives their group. The start / end
    / duration columns are read for that only, unless a field or ``meta`` reads them too. Only for a
    manifest on this machine.

    ``on_rows``: called with the number of rows whose files were looked up so far, every 1,024 rows and at the
    end (a progress bar's live count: a 60k-row manifest showed only the time for 30 s, QA38 sites #5).

    ``remote``: the manifest is at an fsspec URL (a :class:`mmdata.shards.remote_source.RemoteSource`);
    its rows name files relative to its folder there, by relative paths only.

    Example:
        >>> import tempfile, pathlib
        >>> from mmdata.testing import image_bytes
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> (d / "a").mkdir(); _ = (d / "a" / "x.1.png").write_bytes(image_bytes(0))
        >>> _ = (d / "m.csv").write_text("image,label\\na/x.1.png,cat\\n")
        >>> [(r.source_key, r.label) for r in discover_manifest(d / "m.csv").records]
        [('a/x.1', 0)]
    """
    if remote is not None:
        if root is not None:
            raise SourceError(f"manifest {remote.url}: --root (root=) is for a manifest on this machine; a manifest "
                              f"at a URL names files relative to its folder there")
        if paths:
            raise SourceError(f"manifest {remote.url}: --path (paths=) is for a manifest on this machine; at a URL, "
                              f"write the paths into a column")
        if segment:
            raise SourceError(f"manifest {remote.url}: --segment (segment=) is for a manifest on this machine: its "
                              f"recordings are read frame by frame; copy it and its audio here")
        data = remote.fetch_one(remote.root)
        rows = read_manifest(remote.url, data)
        head = data[:4]
        base_s = remote.root.rpartition("/")[0]
        listed = remote.meta_under(base_s)
        name = remote.root.rpartition("/")[2]
        bases: tuple[str, ...] = ()
    else:
        path = Path(path)
        folder = path.parent if root is None else Path(root)
        if root is not None and not folder.is_dir():
            what = "not a folder" if folder.exists() else "no such folder"
            raise SourceError(f"manifest {path.name}: --root {root}: {what} (the folder the manifest's paths are read "
                              f"from)")
        rows = read_manifest(path)
        with open(path, "rb") as f:
            head = f.read(4)
        base_s = str(folder.resolve())
        # an absolute path may name the folder as the user sees it (through a link) or resolved
        bases = tuple(dict.fromkeys((base_s, os.path.abspath(folder))))
        name = path.name
    escapes = _ESCAPES if root is None else _ESCAPES_ROOT
    _forms_in.cache_clear()  # the folders' listings of this manifest, not of an earlier one
    _cased_in.cache_clear()
    present = {c for r in rows for c in r}
    for fieldname, col in (columns or {}).items():
        if rows and col not in present:
            raise SourceError(f"manifest {name}: --column {fieldname}={col}: no column {col!r} "
                              f"(columns: {sorted(present)}){_nested_rows_hint(rows, str(path), 'rows.jsonl')}")
    if remote is not None:
        text_forms = {_nfc(p): p for p in listed if not p.isascii()}  # a cell's NFC name of an NFD file, as the rows

        def names_text_file(t: str) -> bool:
            c = _remote_cell(t, base_s, listed, text_forms)
            return c.reason is None and isinstance(c.member, str) and field_of(c.ext or "") == "text"
    else:
        def names_text_file(t: str) -> bool:
            c = _local_cell(t, bases, base_s, escapes)
            return c.reason is None and isinstance(c.member, str) and field_of(c.ext or "") == "text"
    if _text_files_column(rows, columns, present, meta, group_by, paths, segment, names_text_file):
        # --column text=transcript naming .txt files: the files are the text, as a column of .txt paths of any
        # other name gives it (QA38 OCR #1: the paths were stored as the transcriptions)
        columns = {f: c for f, c in (columns or {}).items() if f != "text"}
    rename = {v: k for k, v in (columns or {}).items()}
    templates = path_templates(paths, f"manifest {name}")
    meta_cols = _meta_columns(meta, present, rename, name, rows)
    _check_templates(templates, columns, present, rename, meta_cols, name, rows)
    if group_by is not None and rows and group_by not in present:
        raise SourceError(f"manifest {name}: --group-by {group_by}: no column {group_by!r} (columns: {sorted(present)})")
    spec = segment_spec(segment, f"manifest {name}")
    for what, col in (spec or {}).items():
        if rows and col not in present:
            raise SourceError(f"manifest {name}: --segment {what}={col}: no column {col!r} (columns: {sorted(present)})"
                              f"{_nested_rows_hint(rows, str(path), 'rows.jsonl')}")
    # the segment's columns are read for the cut only, unless a field or --meta reads them too
    segment_only = {c for c in (spec or {}).values() if c not in rename and c not in RESERVED_COLUMNS
                    and c not in meta_cols and c != group_by}
    # the group column is read for the groups only, unless a field or --meta reads it too
    group_only = group_by if group_by not in rename and group_by not in RESERVED_COLUMNS else None
    # so is a column a --path template names: its cells are parts of a path, not files
    template_only = {c for t in templates.values() for c in t.columns
                     if c not in rename and c not in RESERVED_COLUMNS and c not in meta_cols}
    if group_only is not None:
        template_only.discard(group_only)
    _check_renames(columns, present, meta_cols, name)
    named = _named_fields(columns, f"manifest {name}") | _named_fields(
        {f: t.template for f, t in templates.items()}, f"manifest {name}", "--path")
    fields = _field_columns(present, rename, meta_cols)
    _check_reserved_text(rows, fields, name)
    is_text = str(name).lower().endswith((".csv", ".tsv", ".txt"))
    _check_blank_keys(rows, fields, name)
    key_notes, whole_keys = _check_keys(rows, fields, name, text=is_text)
    declared = label_names  # --labels (or a labels file): the user's names, not checked for what they hold
    label_names, label_names_from, category_notes = _categorical_labels(rows, fields, label_names, label_names_from,
                                                                        name)
    meta_types = _meta_types(rows, meta_cols) if is_text else None
    kinds: dict[str, set[str]] = {}  # per metadata column, the kinds of its values (for the card)
    nulled: list[tuple[str, str, str]] = []  # (row, column, cell) of NaN / infinite metadata stored as null
    row_nulled: list[tuple[str, str]] = []
    all_label_cells = _label_cells(rows, fields)  # read once (QA38 sites #5: three passes over every cell)
    label_forms, form_notes = _label_forms(all_label_cells, name)
    # a class name no reader of the card could use (a caption in the label column, a cell with a line break):
    # refused per row, never a class
    odd_labels = {i: why for i, c in all_label_cells if (why := _odd_class_name(c)) is not None}
    label_cells = [(i, label_forms.get(c, c)) for i, c in all_label_cells if i not in odd_labels]
    bool_reason = _bool_label_reason(rows, fields)
    names, names_from, left_out, left_reason, label_warning = _manifest_labels(label_cells, label_names,
                                                                               label_names_from, name)
    # a categorical column's categories are the manifest's names, not declared ones (QA31 pandas review F3:
    # astype("category") of 'Drama|Comedy' cells silenced the multi-label warning): checked as names seen are
    seen_names = names_from == "manifest" or (not declared and label_names is not None)
    label_col = next((c for c, f in fields.items() if f == "label"), "label")
    label_notes = [] if declared else _label_kind_warnings(label_cells, names if seen_names else None, name, label_col)
    if not declared and seen_names:
        label_notes += _label_case_warnings(label_cells, names, name)
    if names_from != "manifest":  # ids are read: 1, 01 and 1.0 are one
        label_notes += _label_spelling_warnings(label_cells, name)
    label_notes = category_notes + form_notes + _label_space_warnings(rows, fields, name) + label_notes
    nfc_names = {_nfc(n): n for n in names or ()}  # a declared name, looked up in either Unicode form
    warnings, split_forms = _manifest_splits(rows, fields, name)
    warnings = getattr(rows, "notes", []) + warnings  # the separator sniffed in a .csv
    warnings += _meta_variant_warnings(rows, meta_cols, name)
    kind, bom = utf16_of(head)
    if bom and not str(name).lower().endswith(".parquet"):
        warnings.append(f"manifest {name} is {kind} (byte order mark {head[:2].hex(' ').upper()}), not UTF-8: it was "
                        f"read as {kind}, and its text and metadata are stored as UTF-8 (as every manifest's are); "
                        f"save it as UTF-8 to silence this")
    skipped: list[dict[str, Any]] = []
    records: list[Record] = []
    key_rows: dict[str, int] = {}
    renamed: list[tuple[str, str]] = []  # (the first file's name, the key given) of rows naming a file again
    numbered: dict[str, str] = {}  # a key given by numbering -> the name it numbers
    tried: dict[str, int] = {}  # a numbered name -> the next number to try (_numbered)
    listed_texts: list[str] = []  # CSV captions that read as a Python list ("['a', 'b']": pandas' to_csv of a list)
    text_cells: list[str] = []  # the captions stored ("" for bytes / numbers): do they name files?
    no_group = 0
    blank_texts: list[str] = []
    # per path column: [cells, cells naming a file or holding data, cells that look like a path, first cell,
    # the first relative path not found]
    stats: dict[str, list[Any]] = {}
    escaping: list[str] = []
    windows: list[str] = []  # cells holding a Windows absolute path
    listed_forms: dict[str, str] | None = None
    backslashed = 0  # files found by reading '\\' as '/'
    decoded: list[tuple[str, str]] = []  # (cell, name read) of files found percent-decoded
    served: list[tuple[str, str]] = []  # (cell, the path to write) of absolute paths from a document root
    read_cols: Counter[str] = Counter()  # per path column: the files it gave samples
    file_labels: dict[Any, list[tuple[int, int, str]]] = {}  # per input (its members): (row, class, cell) of its rows
    missing_at: dict[str, list[tuple[int, str]]] = {}  # per path column: (row, relative path) of each file not found
    found_at: dict[str, list[int]] = {}  # per path column: the rows whose file was found
    cells: list[list[tuple[str, _Cell]]] = []  # per row, its path columns' cells
    left_alone = {*meta_cols, *template_only, group_only, *segment_only}  # columns that are not the row's fields
    near: dict[str, list[tuple[str, str]]] = {_CASE_ONLY: [], _SPACES_AT_END: []}  # (cell, the file on disk)
    url_cells: Counter[str] = Counter()  # per path column: the cells that are URLs (not file://)
    #: per path column: the cells that are numbers ('36.0'): a column of them a metadata column forgotten in
    #: --meta, even with an 'n/a' among them (QA39 fairness #10: 237 listed skips, "file not found")
    number_cells: Counter[str] = Counter()
    #: per path column: the cells naming a file of a media / data type mmdata knows (a PNG, a .npy, a video it
    #: refuses): a column with none, and no file found, is metadata whatever its 'n/a', dates ('01/05/2023') or
    #: ratios ('3/40') look like (QA39 review sources #3)
    media_cells: Counter[str] = Counter()
    for raw in rows:
        if on_rows is not None and not len(cells) % _ROWS_SHOWN:
            on_rows(len(cells))
        row = {rename.get(k, k): v for k, v in raw.items() if k not in left_alone}  # a field's
        parsed: list[tuple[str, _Cell]] = []
        cells.append(parsed)
        texts: dict[str, str] = {}  # the path column cells that are text
        for fieldname, tpl in templates.items():
            filled = fill_template(tpl, raw)
            if isinstance(filled, str):
                texts[fieldname] = filled
                filled = _local_cell(filled, bases, base_s, escapes)
            if filled is not None:
                parsed.append((fieldname, filled))
        for col, val in row.items():
            if col in RESERVED_COLUMNS or _blank(val):
                continue
            if isinstance(val, Mapping) and ("bytes" in val or "path" in val):  # Hugging Face's Image / Audio
                data, hint = val.get("bytes"), val.get("path")
                if data is not None:
                    parsed.append((col, _inline_cell(bytes(data), hint)))
                    continue
                if _blank(hint):
                    parsed.append((col, _Cell("<struct>", reason="a struct with neither 'bytes' nor 'path'")))
                    continue
                val = hint
            if isinstance(val, (bytes, bytearray, memoryview)):
                parsed.append((col, _inline_cell(bytes(val), None)))
                continue
            text = _cell_text(val)
            if text is not None:
                texts[col] = text
            if text is None:
                parsed.append((col, _Cell(f"<{type(val).__name__}>", reason=f"a {type(val).__name__} value, not a "
                                          f"file path or bytes")))
            elif (odd := _lone_surrogate(text)) is not None:  # a JSON escape no file name can hold
                parsed.append((col, _Cell(_shown(text), reason=f"not valid Unicode (a lone surrogate {text[odd]!r} "
                                                               f"at character {odd}): no file has this name")))
            elif remote is not None:
                if listed_forms is None:  # built once, at the first cell
                    listed_forms = {_nfc(p): p for p in listed if not p.isascii()}
                parsed.append((col, _remote_cell(text, base_s, listed, listed_forms)))
            else:
                parsed.append((col, _local_cell(text, bases, base_s, escapes)))
        for col, cell in parsed:
            seen = stats.setdefault(col, [0, 0, 0, cell.shown, None])
            seen[0] += 1
            seen[1] += cell.located
            text = texts.get(col)
            if text is not None and _URL_CELL.match(text) and text[:5].lower() != "file:":
                url_cells[col] += 1
            if text is not None and len(text) < 64 and _is_number(text.strip()):
                number_cells[col] += 1
            if text is not None and _media_named(text):
                media_cells[col] += 1
            if text is not None and _path_like(text):
                seen[2] += 1
                if not cell.located and not os.path.isabs(text) and ":" not in text[:12]:
                    seen[4] = seen[4] or text
                    missing_at.setdefault(col, []).append((len(cells) - 1, text))
                elif cell.reason is None:
                    found_at.setdefault(col, []).append(len(cells) - 1)
    if on_rows is not None:
        on_rows(len(rows))
    # a column none of whose cells names a file or looks like one is metadata (a class id, a take letter):
    # not read, one warning (below) instead of a listed skip per cell
    # a column of URLs only (a source link kept beside a local copy) is one too: its cells name no file here
    unread = {col for col, (n, hits, pathlike, _, _) in stats.items()
              if n and not hits and (not pathlike or url_cells[col] == n or number_cells[col] >= 0.9 * n
                                     or not media_cells[col])
              and col not in templates}
    empty_rows: list[int] = []  # rows with every cell empty (the ',,' lines Excel leaves below a table)
    refused_labels: dict[str, int] = {}  # distinct label cells parse_label refused (none of the declared names): rows
    segs = _segment_rows(rows, cells, unread, rename, left_alone, spec)
    ends_named = _colliding_segment_keys(segs)  # rows whose segment keys also name their end
    recordings: dict[str, str] = {}  # a recording's file -> the cell first naming it: its segments' group
    # a channel column --segment does not read (Lhotse's supervisions): the multichannel recordings cut whole
    channel_col = (next((c for c in present if c.strip().lower() in ("channel", "channels", "channel_id")), None)
                   if spec is not None and "channel" not in spec else None)
    multichannel: list[str] = []
    #: per .npy array member of a cut row: the segments it is kept whole in (QA39 lipreading #1)
    whole_arrays: Counter[str] = Counter()
    # per .npy member: how many segments each array file is stored in (an array cut per segment, each row naming its
    # own file, is in one: not warned of; QA39 review sources #4)
    whole_files: dict[str, Counter[str]] = {}
    for i, raw in enumerate(rows):
        if all(_blank(v) for v in raw.values()):  # no sample, not a lost one (--max-skipped counts none)
            empty_rows.append(i)
            continue
        row = {rename.get(k, k): v for k, v in raw.items() if k not in left_alone}
        where = f"{name} row {i + 1}"
        parsed = [(col, cell) for col, cell in cells[i] if col not in unread]
        key_val = row.get("key")
        given = True
        seg, seg_reason, audio_cell, _ = segs[i] if spec is not None else (None, None, None, False)
        if not _blank(key_val):
            source_key = _key_of(key_val, whole_keys)
        elif audio_cell is not None:  # a segment: its recording and start (a bad row: its row, as it is skipped)
            source_key = (segment_key(audio_cell.key, seg[0], seg[0] + seg[1] if i in ends_named else None)  # type: ignore
                          if seg is not None else f"{audio_cell.key}_row{i + 1}")
        else:
            source_key = next((c.key for _, c in parsed if c.key is not None), None) or f"row{i:08d}"
            if _nfc(source_key) in key_rows and _nfc(source_key) not in numbered:  # a row per caption: numbered
                source_key, given = _numbered(_nfc(source_key), key_rows, numbered, renamed, tried), False
        # keys are compared and made in their NFC form, as a folder source's: café typed on macOS (NFD) and
        # elsewhere (NFC) is one sample with one key
        nfc_key = _nfc(source_key)
        if given and nfc_key in numbered:  # a name numbering gave is in the way of a real one: renumber that
            _renumber(nfc_key, key_rows, numbered, renamed, records, tried)
        if key_rows.setdefault(nfc_key, i) != i:
            j = key_rows[nfc_key]
            if not _blank(key_val):  # the key column repeats a value: say how often, and whether rows are copies
                raise SourceError(_repeated_key_error(name, rows, rename, whole_keys, j, i, left_alone,
                                                     str(path) if isinstance(path, (str, Path)) and "://" not in str(path) else None))
            forms = "" if nfc_key == source_key else " (one name in two Unicode forms, NFC and NFD)"
            why = _segment_collision(segs[j], segs[i], _segment_channels(rows[j], spec)[0],  # type: ignore[arg-type]
                                     _segment_channels(raw, spec)[0]) if spec is not None else ""
            raise SourceError(f"manifest {name}: rows {j + 1} and {i + 1} are both sample {source_key!r}{forms}{why}; "
                              f"give each row its own key: a 'key' column, or --column key=COL (columns={{'key': "
                              f"COL}}) naming a column whose values differ row by row")

        def bad(source: str, col: str, reason: str) -> None:
            """A bad cell: ``source`` is the file as the manifest names it (or the cell)."""
            what = templates[col].option if col in templates else f"column {col!r}"
            if on_error == "raise":
                raise SourceError(f"{where}, {what}: {source}: {reason}")
            skipped.append(skip_entry(source, "member", f"{where}, {what}: {reason}", source_key))

        members: dict[str, str | bytes] = {}
        field_cols: dict[str, str] = {}
        read_here: list[_Cell] = []  # the cells whose files the sample holds
        for col, cell in parsed:
            backslashed += cell.backslash
            if cell.decoded is not None:
                decoded.append((cell.shown, cell.decoded))
            if cell.served is not None:
                served.append((cell.shown, cell.served))
            if cell.reason is not None:
                if cell.reason is _ESCAPES or cell.reason is _ESCAPES_ROOT:
                    escaping.append(cell.shown)
                if cell.reason is _WINDOWS_PATH:
                    windows.append(cell.shown)
                if cell.near is not None:
                    near[cell.reason].append((cell.shown, cell.near))
                bad(cell.shown, col, cell.reason)
                continue
            if cell.ext.endswith("npy"):  # type: ignore[union-attr]
                ext = f"{col}.npy"
                if standard_field_error(ext) is not None:
                    # <key>.image.npy: no reader loads it (codecs refuse an array for a standard field), so
                    # refused here, before a dataset is written that verify passes (QA39 lipreading #2)
                    raw_col = next((c for c, f in rename.items() if f == col), col)
                    fix = (f"map the column to a field of its own, e.g. --column frames={raw_col} (an array field, "
                           f"the member <key>.frames.npy)" if raw_col != col else
                           f"rename the column (e.g. '{col}_array'): an array field of that name")
                    given = f" (given as --column {col}={raw_col})" if raw_col != col else ""
                    raise SourceError(f"manifest {name}, column {raw_col!r}{given}: {cell.shown!r} is a .npy array, and "
                                      f"{col!r} is a standard field no reader loads from an array "
                                      f"({standard_field_error(ext).partition('(')[2].partition(';')[0]}); {fix}")
            elif col in named:  # --column depth=depth_path: the member <key>.depth.png (its field 'depth.png')
                if field_of(cell.ext) not in ("image", "text") and cell.ext != "json":  # type: ignore[arg-type]
                    bad(cell.shown, col, f"a .{cell.ext} file cannot be the named field {col!r} (a named field holds "
                                         f"an image, text, JSON or a .npy array; a sample has one audio and one "
                                         f"label)")
                    continue
                ext = f"{col}.{cell.ext}"
            else:
                ext = cell.ext  # type: ignore[assignment]
            fieldname = field_of(ext)
            first = field_cols.setdefault(fieldname, col)
            if first != col:
                keys = None if not _blank(key_val) or cell.key in (None, source_key) else (source_key, cell.key)
                bad(cell.shown, col, _second_file(fieldname, ext, col, first, templates, keys))
                continue
            members[ext] = cell.member  # type: ignore[assignment]
            read_cols[col] += 1
            read_here.append(cell)
        text = row.get("text")
        if (isinstance(text, str) and _blank_text(text)) or (isinstance(text, (list, tuple)) and not text):
            blank_texts.append(source_key)  # "", spaces, an empty list: no caption, as an empty CSV cell
            text = None
        elif isinstance(text, str) and text[:1] == "[" and text[-1:] == "]" and _python_list(text):
            if not text[1:-1].strip():  # pandas' to_csv of an empty list: no caption, as in JSONL
                blank_texts.append(source_key)
                text = None
            else:
                listed_texts.append(source_key)
        if not _is_missing(text):
            if "text" in field_cols:
                bad(_shown(str(text)), "text", f"a second text for the sample (column {field_cols['text']!r} gives "
                                               f"a text file)")
            elif not isinstance(text, (str, bytes, bytearray, int, float)) or isinstance(text, bool):
                of = f" of {plural(len(text), 'value')}" if hasattr(text, "__len__") else ""
                bad(_shown(str(text)), "text", f"a {type(text).__name__}{of}, not "
                    f"one text: a sample holds one caption — for several per image write a row per caption (rows "
                    f"naming one image go to one split) or keep them as metadata in a column of another name "
                    f"(--meta captions)")
            elif isinstance(text, str) and (odd := _lone_surrogate(text)) is not None:
                bad(_shown(text), "text",
                    f"not valid Unicode (a lone surrogate {text[odd]!r} at character {odd})")
            else:
                # the cell is the text itself (no file's final line end to drop): it reads back as written
                members["txt"] = bytes(text) if isinstance(text, (bytes, bytearray)) else encode_text(str(text))
                text_cells.append(text if isinstance(text, str) else "")
        label = None
        lab = row.get("label")
        if isinstance(lab, (list, tuple, dict)):  # multi-label targets: no class id, and no repr as a class name
            bad(_shown(str(lab)), "label", f"a {type(lab).__name__} of {plural(len(lab), 'value')}, not one class: a sample's "
                f"label is one class id; for multi-label targets keep the column as metadata (--meta, under "
                f"another column name) and build the targets from each sample's json field in your loss")
        elif _is_bool(lab):  # a review flag in the label column: no class named 'True'
            bad(f"label {lab}", "label", bool_reason)
        elif i in odd_labels:
            bad(f"label {_shown(str(lab).strip())!r}", "label", odd_labels[i])
        elif not _blank(lab):
            s = str(lab).strip()
            s = label_forms.get(s, s)
            if names and not s.isascii() and s not in _name_ids(names):
                s = nfc_names.get(_nfc(s), s)
            if s in left_out:  # a column of ids and names: the kind in fewer rows
                bad(f"label {s!r}", "label", left_reason)
            else:
                try:
                    label = parse_label(source_label(s[:-2].encode() if re.fullmatch(r"\d+\.0", s) else s.encode(),
                                                     names), names, names_from)
                except ValueError as exc:
                    refused_labels[s] = refused_labels.get(s, 0) + 1
                    bad(f"label {s!r}", "label", str(exc))
        split = row.get("split")
        split = None if _blank(split) else str(split).strip()
        split = split_forms.get(split, split)  # one name in two Unicode forms: one split (one shard file name)
        extra: dict[str, str] = {}
        seg_stats: dict[str, tuple[int, int]] = {}
        if spec is not None:
            if seg_reason is None:
                channels, seg_reason = _segment_channels(raw, spec)
            if seg_reason is None:
                assert seg is not None
                shown = audio_cell.shown if audio_cell is not None else source_key
                seg_reason = _cut_segment(members, seg, shown, extra, seg_stats, channels,
                                          multichannel if channel_col is not None else None)
                if seg_reason is None:  # only the audio is cut: an array of the row is stored whole
                    for e in members:
                        if e.endswith("npy"):
                            whole_arrays[e] += 1
                            whole_files.setdefault(e, Counter())[str(members[e])] += 1
            if seg_reason is not None:
                if on_error == "raise":
                    raise SourceError(f"manifest {where}: {seg_reason}")
                skipped.append(skip_entry(source_key, "sample", f"{where}: {seg_reason}", source_key))
                continue
        if not members:
            skipped.append(skip_entry(source_key, "sample", f"{where}: no file or text left to shard", source_key))
            continue
        if meta_cols:
            if "json" in field_cols:
                bad(next(c.shown for col, c in parsed if col == field_cols["json"]), field_cols["json"],
                    f"a .json file for the sample, whose json member the --meta columns give; keep one of them")
            members["json"] = _meta_member(raw, meta_cols, meta_types, bad, kinds, row_nulled)
            nulled.extend((where, col, cell) for col, cell in row_nulled)
            row_nulled.clear()
        if label is not None and read_here and all(isinstance(c.member, str) for c in read_here):
            # several annotators' rows of one input: do their labels agree? One input is every member the
            # same (a room-tone clip shared by samples with their own images is no conflict)
            whole = tuple(sorted((ext, m) for ext, m in members.items() if not (ext == "json" and meta_cols)))
            if extra:  # a segment: its frames (and channels: two speakers of one window) of the recording
                whole += (extra[SEGMENT_FRAMES], extra.get(SEGMENT_CHANNELS))  # type: ignore[assignment]
            file_labels.setdefault(whole, []).append((i, label, read_here[0].shown))
        group = None if group_by is None or _blank(raw.get(group_by)) else str(raw[group_by])
        no_group += group_by is not None and group is None
        if extra and group_by is None:  # a recording's segments: one group, whatever else the rows name
            # named by the cell first naming the recording: './rec/a.wav' and 'rec/a.wav' are one recording,
            # one group (no "row per caption" warning), and a recording named one way keeps its group
            group = recordings.setdefault(str(audio_cell.member) if audio_cell is not None else extra[SEGMENT_SOURCE],
                                          extra[SEGMENT_SOURCE])
            if _nfc(group.strip()) != group:  # the splitter would respell it (writer._group_values): as before
                group = extra[SEGMENT_SOURCE]
        records.append(Record(safe_key(nfc_key), source_key, dict(sorted(members.items())), label, split,
                              stats=seg_stats, extra=extra, group=group, row=where))
    warnings += key_notes
    if nulled:
        at, col, cell = nulled[0]
        per = Counter(c for _, c, _ in nulled)
        warnings.append(f"manifest {name}: {plural(len(nulled), 'metadata cell')} held NaN or an infinite number "
                        f"(e.g. {at}, column {col!r}: {cell}; per column: "
                        f"{', '.join(f'{c!r} {k}' for c, k in per.most_common(8))}{', ...' if len(per) > 8 else ''}), "
                        f"which JSON has no number for (strict parsers refuse NaN and Infinity), so "
                        f"{'they were' if len(nulled) != 1 else 'it was'} changed to null in the sample's .json member "
                        f"(the sample is kept); if the value matters, write it as text ('inf') or a finite number")
    if ends_named:
        warnings.append(_ends_named_warning(ends_named, segs, name))
    if empty_rows:
        warnings.append(f"manifest {name}: {plural(len(empty_rows), 'row')} with every cell empty "
                        f"({_rows(empty_rows)}; a spreadsheet's empty lines below its table) "
                        f"{'were' if len(empty_rows) != 1 else 'was'} "
                        f"read as no sample")
    if label_warning:
        warnings.append(label_warning)
    if refused_labels and names and not any(r.label is not None for r in records):
        column = next((c for c, f in fields.items() if f == "label"), "label")  # --column label=category names it
        warnings.append(_every_label_refused(name, refused_labels, names, names_from, column))
    warnings += label_notes
    if blank_texts:
        warnings.append(f"manifest {name}: {plural(len(blank_texts), 'row')} {'have' if len(blank_texts) != 1 else 'has'} "
                        f"an empty text, list or one of spaces only (e.g. sample {printable(blank_texts[0])!r}): read as "
                        f"no text (the modality is absent, as an empty CSV cell), not as an empty caption")
    if listed_texts:
        warnings.append(f"manifest {name}: {plural(len(listed_texts), 'text')} read as a Python list of strings (e.g. "
                        f"sample {printable(listed_texts[0])!r}: pandas writes a list column this way to CSV) and "
                        f"{'are' if len(listed_texts) != 1 else 'is'} kept as written, brackets and quotes included; for "
                        f"several captions per image write a row per caption, or a JSONL / Parquet manifest (a list "
                        f"there is reported)")
    if text_cells:
        if remote is not None:
            forms = listed_forms if listed_forms is not None else {_nfc(p): p for p in listed if not p.isascii()}

            def names_file(t: str) -> str:
                return _file_kind(_remote_cell(t, base_s, listed, forms), t)
        else:
            def names_file(t: str) -> str:
                return _file_kind(_local_cell(t, bases, base_s, escapes), t)
        text_col = next((c for c, f in rename.items() if f == "text"), "text")
        warnings += _text_files_warning(text_cells, names_file, name, text_col, root is not None)
    if renamed:
        (first, key), n = renamed[0], len(renamed)
        warnings.append(f"manifest {name}: {plural(n, 'row')} without a key {'were' if n != 1 else 'was'} named after "
                        f"{'their' if n != 1 else 'its'} first file, a name an earlier row already has (a row per "
                        f"caption of one image, or a key naming it): numbered after it ({first!r}, then {key!r}, ...); "
                        f"rows naming one file go to one split. Give a key column to name them yourself")
    if no_group:
        warnings.append(f"manifest {name}: {plural(no_group, 'row')} {'have' if no_group != 1 else 'has'} no "
                        f"--group-by {group_by} value: each is a group of its own")
    if escaping and root is not None:
        warnings.append(f"manifest {name}: {plural(len(escaping), 'path')} outside the --root folder (e.g. "
                        f"{escaping[0]!r}) {'were' if len(escaping) != 1 else 'was'} left out: with --root (root=) the "
                        f"manifest names files in that folder's tree; give --root a folder that holds all its files "
                        f"(e.g. their common parent)")
    elif escaping:
        # the same words for a manifest here and at a URL: the card does not depend on where it is
        warnings.append(f"manifest {name}: {plural(len(escaping), 'path')} outside the manifest's folder "
                        f"(e.g. {escaping[0]!r}) {'were' if len(escaping) != 1 else 'was'} left out: a manifest "
                        f"names files in its own folder tree; put the manifest in a folder that holds all its files "
                        f"(e.g. their common parent) and write the paths from there, or pass --root DIR (root=) "
                        f"naming that folder")
    if served:
        (first, fix), n = served[0], len(served)
        folder, rel_to = ("the --root folder", "--root folder") if root is not None else ("the manifest's folder", "manifest")
        warnings.append(f"manifest {name}: {plural(n, 'absolute path')} (e.g. {first!r}) name{'s' * (n == 1)} no file on "
                        f"this machine, but {'each names one' if n != 1 else 'it names one'} below {folder} once its "
                        f"leading '/' is dropped (an annotation tool's paths from its document root, as Label Studio's "
                        f"/data/upload/...): {'they were' if n != 1 else 'it was'} left out; write "
                        f"{'them' if n != 1 else 'it'} relative to the {rel_to} ({fix!r})")
    if decoded:
        (first, plain), n = decoded[0], len(decoded)
        warnings.append(f"manifest {name}: {plural(n, 'path')} written percent-encoded (e.g. {first!r}, the file "
                        f"{printable(plain)!r}) {'were' if n != 1 else 'was'} read decoded: no file has the name as "
                        f"written (an annotation tool's URL spelling, as Label Studio's); write "
                        f"{'them' if n != 1 else 'it'} decoded to silence this")
    conflicts = [seen for seen in file_labels.values() if len({c for _, c, _ in seen}) > 1]
    if conflicts:
        seen = conflicts[0]
        (r1, c1, shown), (r2, c2, _) = seen[0], next(x for x in seen if x[1] != seen[0][1])

        def class_name(c: int) -> str:
            return repr(names[c]) if names and 0 <= c < len(names) else str(c)

        warnings.append(f"manifest {name}: {plural(len(conflicts), 'file')} {'are' if len(conflicts) != 1 else 'is'} "
                        f"named by rows whose labels differ (e.g. {shown!r}: rows {r1 + 1} and {r2 + 1} say "
                        f"{class_name(c1)} and {class_name(c2)}): the model is trained on one input with contradictory "
                        f"labels; keep one row per file with an agreed label (e.g. the annotators' majority), or keep "
                        f"the labels as a list in a metadata column (--meta) and train on it with mmdata train --target")
    for col, (n, *_rest) in stats.items():
        if n and col not in unread and not read_cols[col]:
            what = templates[col].option if col in templates else f"column {col!r}"
            warnings.append(f"manifest {name}: no file of {what} was read: "
                            f"{f'all {n} cells' if n != 1 else 'its one cell'} skipped; see skipped in dataset.json")
    if windows:
        warnings.append(f"manifest {name}: {plural(len(windows), 'path')} {'are' if len(windows) != 1 else 'is a'} "
                        f"Windows path{'s' * (len(windows) != 1)} (e.g. '{windows[0]}') and {'were' if len(windows) != 1 else 'was'} "
                        f"left out: no file on this machine has such a name; write the paths relative to the "
                        f"manifest's folder ('images/dog.png'), or to a folder you pass as --root DIR")
    for why, said, fix in ((_CASE_ONLY, "differ{s} only in case from a file on disk", "Windows and macOS ignore case, "
                            "Linux does not: write the names as they are on disk"),
                           (_SPACES_AT_END, "{has} spaces at {its} start or end", "the file named without them exists: "
                            "delete the spaces")):
        if near[why]:
            (cell, disk), n, one = near[why][0], len(near[why]), len(near[why]) == 1
            how = said.format(s="s" * one, has="has" if one else "have", its="its" if one else "their")
            warnings.append(f"manifest {name}: {plural(n, 'path')} name{'s' * one} no file but {how} (e.g. {cell!r}: "
                            f"the file {disk!r}) and {'was' if one else 'were'} left out (listed in skipped); {fix}")
    if backslashed:
        warnings.append(f"manifest {name}: {plural(backslashed, 'path')} written with Windows separators (backslashes) "
                        f"{'were' if backslashed != 1 else 'was'} read with '/' (no file has the name as written); "
                        f"write them with '/' to silence this")
    for col in sorted(unread, key=list(stats).index):
        n = stats[col][0]
        raw_col = next((c for c, f in rename.items() if f == col and c != col), None)
        if raw_col is not None and col not in templates and url_cells[col] != n:  # --column depth=patient
            warnings.append(f"manifest {name}, column {raw_col!r} (given as --column {shlex.quote(f'{col}={raw_col}')}):"
                            f" none of its {n} value{'s' * (n != 1)} names a file or looks like a file name, so the "
                            f"field {col!r} is not read; if {raw_col!r} is metadata, leave out --column "
                            f"{shlex.quote(f'{col}={raw_col}')} and pass --meta {shlex.quote(raw_col)} "
                            f"(meta=[{raw_col!r}]) to keep it in each sample's .json member")
            continue
        # the column and a count, never its values: a column nobody asked to keep may hold e-mail addresses or
        # signed URLs, and the card is published
        if url_cells[col] == n:
            said = (f"manifest {name}, column {col!r}: its {n} value{'s' * (n != 1)} "
                    f"{'are URLs' if n != 1 else 'is a URL'}, and a manifest names files by paths relative to its "
                    f"folder (to shard files at a URL, put the "
                    f"manifest beside them there and pass its URL): the column is not read")
        else:
            said = (f"manifest {name}, column {col!r}: none of its {n} value{'s' * (n != 1)} names a file or looks "
                    f"like a file name: the column is not read (every column but key, text, label and split holds file "
                    f"paths)")
        role = _role_like(col, fields)
        if role is not None:  # ``Text``: the text column in another case, or metadata that happens to be named so
            like = ("names the text in other tools' manifests" if col.strip().casefold() in TEXT_LIKE else
                    f"differs from {role!r} only in case or spaces")
            warnings.append(f"{said}; if it is the {role!r} column (its header {like}), pass --column {shlex.quote(f'{role}={col}')} (columns={{{role!r}: {col!r}}}) "
                            f"or rename it {role!r}; if it is metadata, pass --meta {shlex.quote(col)} (meta=[{col!r}]) "
                            f"to keep it in each sample's .json member")
        else:
            warnings.append(f"{said}; if {col!r} is metadata, pass --meta {shlex.quote(col)} (meta=[{col!r}]) to keep "
                            f"it in each sample's .json member")
    hint = None
    # a column of paths none of which is found: the files are elsewhere (ESC-50's meta/ beside audio/)
    for col, (n, hits, pathlike, first, missing) in stats.items():
        if not n or hits or not pathlike or col in unread:
            continue
        where_s = "the --root folder" if root is not None else "the manifest's folder"
        # the same words for a manifest here and at a URL (the card does not depend on where it is); the
        # folder found goes to the error only
        if col in templates:
            warnings.append(f"manifest {name}, {templates[col].option}: none of its {n} path{'s' * (n != 1)} names a "
                            f"file in {where_s} (e.g. {first!r}), which the paths are read from; pass --root DIR "
                            f"(root=) naming the folder the template starts in")
        else:
            given = next((c for c, f in rename.items() if f == col and c != col), None)
            what = f"column {col!r}" if given is None else f"column {given!r} (given as --column {col}={given})"
            meta_fix = (f"--meta {shlex.quote(col)}" if given is None else
                        f"--meta {shlex.quote(given)} instead of --column {shlex.quote(f'{col}={given}')}")
            warnings.append(f"manifest {name}, {what}: none of its {n} value{'s' * (n != 1)} names a file "
                            f"in {where_s} (e.g. {first!r}), which relative paths are read from; for a manifest on "
                            f"this machine, pass --root DIR (root=) naming the folder that holds them, or put the "
                            f"manifest there (if the column is metadata: {meta_fix})")
        if hint is None and remote is None and missing is not None:
            raw_col = next((c for c, f in rename.items() if f == col), col)
            hint = _files_hint(base_s, col, None if col in templates else raw_col,
                               [(rows[i], text) for i, text in missing_at[col]],
                               templates[col].option if col in templates else f"column {col!r}")
    warnings += _partial_hints(stats, missing_at, found_at, rows, rename, templates, name, base_s,
                               None if remote is not None else root is not None)
    warnings += _case_key_warnings(records, name)
    warnings += _key_name_warnings(records, name)
    whole_arrays = Counter({e: n for e, n in whole_arrays.items() if max(whole_files[e].values()) > 1})
    if whole_arrays:  # a (T,H,W) mouth-crop video beside the audio: every segment held all its frames (QA39 lipreading #1)
        shown_a = ", ".join(f"{field_of(e)!r} ({plural(n, 'segment')})" for e, n in sorted(whole_arrays.items()))
        warnings.append(f"manifest {name}: --segment cuts the audio only: the array field{'s' * (len(whole_arrays) > 1)} "
                        f"{shown_a} {'are' if len(whole_arrays) > 1 else 'is'} stored whole in every segment of its row; "
                        f"an array along the recording's time (a (T,H,W) video, a feature sequence) is then out of "
                        f"step with its segment's audio: cut such arrays to the segments before sharding (a row per "
                        f"segment naming its own .npy and its own audio) — an array that is one per recording (a "
                        f"speaker embedding) is right as it is")
    if multichannel:  # avspeech QA34: each speaker's segment held the other speaker's channel too
        shown_m = sorted(set(multichannel))
        warnings.append(f"manifest {name}: column {channel_col!r} is not read by --segment, and "
                        f"{plural(len(shown_m), 'recording')} cut {'are' if len(shown_m) != 1 else 'is'} multichannel "
                        f"(e.g. {shown_m[0]!r}): every segment keeps all of its recording's channels; to keep each "
                        f"row's channel(s) only (one speaker per channel), pass --segment "
                        f"{_spec_text({k: v for k, v in spec.items()})},channel={channel_col}")  # type: ignore[union-attr]
    if not records and hint is None and str(name).lower().endswith(".txt"):  # a caption file with a tab in it?
        header = [_shown(c) for c in (list(rows[0]) if rows else  # no rows: the header from the text
                                      _manifest_text(data if remote is not None else Path(path).read_bytes(),
                                                     name).splitlines()[0].split("\t"))]
        hint = (f"{name} was read as a tab-separated manifest (Excel's 'Unicode text' export: its first line holds a "
                f"tab), with the header {header[:8]}{' ...' if len(header) > 8 else ''}; if it is a caption, give the "
                f"folder that holds it and its image as the source")
    warnings = _index_column_hints(warnings, skipped, getattr(rows, "index_columns", []), name)
    return Discovered(_finish(records), names, names_from, skipped, warnings, base_s, meta_columns=meta_cols,
                      meta_kinds={c: common_kind(kinds.get(c, ())) for c in meta_cols}, shared_files=True,
                      hint=hint)


def _index_column_hints(warnings: list[str], skipped: list[dict[str, Any]], index_columns: Sequence[str],
                        name: str) -> list[str]:
    """Warnings naming a column that was the DataFrame's named index say so (QA31 pandas review F6: a
    provenance index of paths got folder advice, a row-id index the --meta one, neither naming the index); a
    column only skips name gets a line of its own.

    Example:
        >>> _index_column_hints(["manifest m.parquet, column 'rid': not read"], [], ["rid"], "m.parquet")[0][43:]
        "(column 'rid' is the DataFrame's index, saved by to_parquet; df.reset_index(drop=True) leaves it out)"
    """
    out = list(warnings)
    for col in index_columns:
        said = f"column {col!r}"
        note = f"{said} is the DataFrame's index, saved by to_parquet; df.reset_index(drop=True) leaves it out"
        hit = False
        for i, w in enumerate(out):
            if said in w:
                out[i], hit = f"{w} ({note})", True
        if not hit and any(said in str(s.get("reason", "")) for s in skipped):
            out.append(f"manifest {name}: {note} (its cells are listed in skipped)")
    return out


#: text cells looked at before all are: when fewer than nine in ten of these name a file, no warning is possible
_TEXT_FILES_PROBE = 200


def _text_files_column(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str] | None, present: set[str],
                       meta: Sequence[str] | None, group_by: str | None, paths: Mapping[str, str] | None,
                       segment: Any, names_text_file: Callable[[str], bool]) -> bool:
    """Whether ``--column text=COL`` names a column every filled cell of which names a text file
    (``raw/p001.txt``): then the column is read as files, each file the sample's text, as a column of any
    name but ``text`` is (QA38 OCR #1). Not when the column is also metadata, the groups or a template's
    part, or a ``text`` column of the manifest would give the text: the cells are then captions as written
    (and :func:`_text_files_warning` says so). The first cell that is no single-line path ends the look.

    Example:
        >>> _text_files_column([{"t": "a.txt"}, {"t": ""}], {"text": "t"}, {"t"}, None, None, None, None,
        ...                    lambda c: True)
        True
        >>> _text_files_column([{"t": "a cat"}], {"text": "t"}, {"t"}, None, None, None, None, lambda c: True)
        False
    """
    col = (columns or {}).get("text")
    if (col is None or col in RESERVED_COLUMNS or "text" in present or col in (meta or ()) or col == group_by
            or paths or segment):
        return False
    filled = 0
    for raw in rows:
        t = raw.get(col)
        if _blank(t):
            continue
        if (not isinstance(t, str) or len(t) >= 4096 or "\n" in t or "\r" in t or not _path_like(t)
                or not names_text_file(t.strip())):
            return False
        filled += 1
    return filled > 0


#: text files of a type not read (timed lyrics, subtitles): a text column naming them names text files
_TIMED_TEXT_EXTS = frozenset(("lrc", "srt", "vtt", "ass", "ssa"))


def _file_kind(c: _Cell, t: str) -> str:
    """What a text cell's path names, for :func:`_text_files_warning`: ``"txt"`` (a text file), ``"file"`` (a
    file of another type), ``"outside"`` (a ``.txt`` path outside the manifest's or ``--root`` folder: not
    read) or ``""`` (no file)."""
    if c.reason is None and isinstance(c.member, str):
        return "txt" if field_of(c.ext or "") == "text" else "file"
    if c.unread is not None:  # a file on disk of a type not read (.lrc lyrics, .srt): a path all the same (QA39 music #3)
        return "txt" if c.unread in _TIMED_TEXT_EXTS else "file"
    if ((c.reason is _ESCAPES or c.reason is _ESCAPES_ROOT or c.served is not None)
            and t.rpartition("/")[2].rpartition(".")[2].lower() in TEXT_EXTS):
        return "outside"
    return ""


def _text_files_warning(texts: list[str], names_file: Callable[[str], str], name: str, col: str,
                        root: bool = False) -> list[str]:
    """A warning when (nearly) every caption of the ``text`` column names a file (``clips/clip000/subtitles.txt``):
    the text column holds the caption itself, so the paths were stored as the captions (QA27 H1-D2: silent). A
    column of any other name holding paths reads the files, a ``.txt`` file becoming the sample's text. Only
    single-line cells that look like paths are looked up; the first :data:`_TEXT_FILES_PROBE` decide whether the
    rest are.

    Example:
        >>> _text_files_warning(["a/b.txt", "a/c.txt"], lambda t: "txt", "m.csv", "text")[0][:70]
        "manifest m.csv, column 'text': 2 of its 2 values name files (e.g. 'a/b"
        >>> _text_files_warning(["a cat", "a/c.txt"], lambda t: "txt", "m.csv", "text")
        []

    ``names_file``: what a cell names (:func:`_file_kind`); ``root``: ``--root`` was given.
    """
    kind: dict[str, str] = {}  # each cell's look-up once: the counts below read it again

    def hit(t: str) -> str:
        if t not in kind:
            kind[t] = (names_file(t.strip()) if t and len(t) < 4096 and "\n" not in t and "\r" not in t
                       and _path_like(t) else "")
        return kind[t]

    n = len(texts)
    probe = texts[:_TEXT_FILES_PROBE]
    if sum(map(bool, map(hit, probe))) < 0.9 * len(probe):
        return []
    found = [t for t in texts if hit(t)] if n > len(probe) else [t for t in probe if hit(t)]
    if len(found) < 0.9 * n:
        return []
    kinds = Counter(map(hit, found))
    outside = ""
    if kinds["outside"]:  # not read: a manifest reads the files inside its folder only (QA38 rev5 #2)
        folder = "the --root folder" if root else "the manifest's folder"
        fix = ("give --root a folder that holds them (e.g. their common parent)" if root else
               "put the manifest in a folder that holds them, or pass --root DIR (root=) naming such a folder")
        outside = (f"; {kinds['outside']} of them lie outside {folder} (e.g. "
                   f"{_shown(next(t for t in found if hit(t) == 'outside'))!r}), whose files are not read: {fix}")
    said = (f"manifest {name}, column {col!r}: {len(found)} of its {plural(n, 'value')} name files (e.g. "
            f"{_shown(found[0])!r}) and were stored as the captions, the paths as written{outside}. ")
    if col != "text":  # --column text=COL made it the caption column
        said += f"--column text={col} makes the column hold each sample's caption itself. "
        txt = kinds["txt"] + kinds["outside"]
        if txt < 0.9 * n:  # .png paths: dropping the option would make them files of their own type, no text
            other = next((t for t in found if hit(t) == "file"), found[0])
            return [said + f"Its cells name files that are no text (e.g. {_shown(other)!r}): to store those files, "
                    f"map the column to a field of their own (--column FIELD={col}) instead of to text"]
        rest = n - txt
        return [said + f"To store the files' contents, drop --column text={col} (a column of .txt paths gives the "
                f"text by itself" + (f"; the {plural(rest, 'cell')} naming no .txt file would then be left out "
                                     f"and listed), or write every cell as a path" if rest else ")")]
    return [said + f"The {col!r} column holds "
            f"each sample's caption itself. To store the files' contents, rename the column (e.g. 'subtitles' or "
            f"'caption_file'): a column of any name but key, text, label and split holds file paths, and a .txt file "
            f"it names becomes the sample's text"]


def _second_file(fieldname: str, ext: str, col: str, first: str, templates: Mapping[str, PathTemplate],
                 keys: tuple[str, str] | None = None) -> str:
    """Why a sample's second file of one field is left out, naming where each comes from: a manifest
    column or a ``--path`` option (``col`` gives the second file, ``first`` the one kept), and how to keep
    it. ``keys``: where the manifest has no key column, the sample's key and the one the second file's
    name would give it."""
    gives = templates[first].option if first in templates else f"column {first!r}"
    said = f"a second {fieldname} file for the sample ({gives} gives one); a sample holds one file per modality"
    if col not in templates:
        if fieldname in ("image", "text") or ext == "json":  # what a named field may hold
            return (f"{said} — to keep this column as a field of its own (a mask, a depth map): --column "
                    f"{shlex.quote(f'{_field_hint(col)}={col}')}")
        # a second audio (or .mp4, .cls) file has no place in the sample: it can make a dataset of its own,
        # whose samples have the same keys (the key column or file names are the same) and, by
        # --split-from, the same splits; without the first column the second gives the field
        drop = f"without {templates[first].option}" if first in templates else f"with --meta {shlex.quote(first)}"
        if keys is not None:  # the keys come from the first file's name: the other dataset's from the second's
            drop += (f", after adding a column 'key' that names each row's sample (without one the keys come from "
                     f"the file names: {printable(keys[1])!r} there for {printable(keys[0])!r} here)")
        return (f"{said}, and a named field cannot hold .{ext} files (it holds an image, text, JSON or a .npy "
                f"array) — to keep column {col!r}, shard it as a dataset of its own under the same keys: the same "
                f"command into another folder, {drop}; --split-from OUT (this dataset's folder) gives its samples "
                f"the same splits")
    tpl = templates[col]
    if fieldname != col:  # --path image=... naming .wav files: the template, not the field, is likely wrong
        said += f"; {tpl.option} names .{ext} files ({fieldname}), not {col} files: check its template"
    if fieldname in ("image", "text") or ext == "json":  # what a named field may hold
        said += (f" — to keep them as a field of its own (a mask, a depth map), give it a name of its own: "
                 f"--path {shlex.quote(f'mask={tpl.template}')}")
    return said


def _partial_hints(stats: Mapping[str, list[Any]], missing_at: Mapping[str, list[tuple[int, str]]],
                   found_at: Mapping[str, list[int]], rows: list[dict[str, Any]], rename: Mapping[str, str],
                   templates: Mapping[str, PathTemplate], name: str, base: str, root: bool | None) -> list[str]:
    """Warnings for a path column some of whose files are found and many (a quarter or more) not, when the
    missing ones lie in folders named by other columns: ``--root UrbanSound8K/audio/fold1`` reads one
    fold, and :func:`_files_hint` names the ``--path`` template that reads them all. Folders are named
    from the folder the paths are read from (``ROOT/..``): warnings go to the card. ``root``: whether
    ``--root`` gave that folder (None: the manifest is at a URL, nothing is looked for)."""
    out = []
    where_s, anchor = ("the --root folder", "ROOT") if root else ("the manifest's folder", "DIR")
    for col, (_, hits, pathlike, _, _) in stats.items():
        miss = missing_at.get(col, [])
        if root is None or not hits or col in templates or len(miss) < 2 or 4 * len(miss) < pathlike:
            continue
        raw_col = next((c for c, f in rename.items() if f == col), col)
        hint = _files_hint(base, col, raw_col, [(rows[i], text) for i, text in miss],
                           f"column {col!r} ({len(miss)} of its {pathlike} paths name no file in {where_s}, e.g. "
                           f"{miss[0][1]!r})", [rows[i] for i in found_at.get(col, [])],
                           functools.partial(_placed, base, anchor))
        if hint is not None:
            out.append(f"manifest {name}, {hint}; {anchor}: {where_s}")
    return out


_CHECKED_ROWS = 8  # rows whose files a hint checks: spread over the manifest (its rows may be sorted by folder)
_TEMPLATES_TRIED = 64


def _files_hint(base: str, col: str, raw_col: str | None, missing: list[tuple[Mapping[str, Any], str]],
                what: str, found: Sequence[Mapping[str, Any]] = (), place: Callable[[str], str] = str) -> str | None:
    """What to pass when none of a path column's files is found where its paths are read from (``base``):
    ``--root`` naming the folder near ``base`` that holds them (ESC-50: ``audio/``), or, when they lie in
    folders named by other columns (UrbanSound8K: ``audio/fold{fold}/``), ``--path`` with the template.
    ``missing``: (row, relative path) of each file not found; ``raw_col``: the manifest's column (None
    for a ``--path`` field); ``what``: how the hint names the column (or the ``--path`` option). The rows
    checked are spread over the manifest; None when nothing fits.

    ``found``: rows whose file was found (some are, the rest missing: ``--root audio/fold1`` read one fold
    of UrbanSound8K): then only a template under which their files are found too is named. ``place``: how
    the hint names a folder (a warning goes to the card, which names no folder of this machine)."""
    step = max(1, len(missing) // _CHECKED_ROWS)
    checked = missing[::step][:_CHECKED_ROWS]
    # the row the template is made from: one without blank cells where one has them (a null fold names no folder)
    row0, rel0 = min(checked, key=lambda m: sum(map(_blank, m[0].values())))
    found_in = _folder_holding(base, rel0)
    if found_in is None:
        return None
    if not found and all(os.path.isfile(os.path.join(found_in, rel)) for _, rel in checked):
        return (f"{what}: {rel0!r} is in {place(found_in)}: pass --root {shlex.quote(place(found_in))} "
                f"(root={place(found_in)!r}) to read the manifest's paths from there")
    if raw_col is not None:
        # the other rows' files are in other folders: do other columns name them?
        start = base if _inside(found_in, base) else os.path.dirname(base)
        fitting = [(row, "") for row in found[::max(1, len(found) // _CHECKED_ROWS)][:_CHECKED_ROWS]]
        template = _folder_template(os.path.relpath(found_in, start), raw_col, row0, [*checked, *fitting], start)
        if template is not None:
            named = split_name(posixpath.basename(rel0))
            # a column read under its own name gives the field of its files' type (a .wav: audio)
            field_ = col if col != raw_col or named is None else field_of(named[1])
            also = "" if start == base else f"--root {shlex.quote(place(start))} "
            also_api = "" if start == base else f"root={place(start)!r}, "
            instead = f" instead of --column {col}={raw_col}" if col != raw_col else ""
            return (f"{what}: the files are in folders named after other columns ({rel0!r} is in "
                    f"{place(found_in)}): pass {also}--path {shlex.quote(f'{field_}={template}')}{instead} "
                    f"({also_api}paths={{{field_!r}: {template!r}}})")
    if found:  # a --root naming one folder would lose the files found
        return None
    other = next(rel for _, rel in checked if not os.path.isfile(os.path.join(found_in, rel)))
    return (f"{what}: {rel0!r} is in {place(found_in)}, but other rows' files are not (e.g. {other!r}): write each "
            f"row's path from one folder into the column, or give --path FIELD=TEMPLATE (paths=) to make it from the "
            f"row's columns")


def _placed(base: str, anchor: str, folder: str) -> str:
    """``folder`` named from ``base``, which ``anchor`` stands for (``ROOT/../fold2``): no path of this machine."""
    rel = os.path.relpath(folder, base)
    return anchor if rel == os.curdir else posixpath.join(anchor, rel.replace(os.sep, "/"))


def _inside(path: str, folder: str) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(folder).rstrip(os.sep) + os.sep)


def _folder_template(sub: str, raw_col: str, row0: Mapping[str, Any], checked: list[tuple[Mapping[str, Any], str]],
                     start: str) -> str | None:
    """A ``--path`` template ``<sub's parts, a column's value replaced by {column}>/{raw_col}`` under which
    every checked row's file is found in ``start``, rows with a blank cell it needs aside; None when none is
    (a literal part is tried first; at most :data:`_TEMPLATES_TRIED` templates). ``row0``'s values make
    the template: one of the checked rows."""
    import itertools

    values = [(c, t) for c, v in row0.items() if c != raw_col and not _blank(v)
              and (t := _fill_value(v)) is not None and t.strip()]
    options = []
    for part in sub.split(os.sep):
        literal = part.replace("{", "{{").replace("}", "}}")
        subs = [literal.replace(t.replace("{", "{{").replace("}", "}}"), "{" + c + "}")
                for c, t in sorted(values, key=lambda ct: -len(ct[1])) if t in part]
        options.append(list(dict.fromkeys([literal, *subs])))
    for choice in itertools.islice(itertools.product(*options), _TEMPLATES_TRIED):
        template = "/".join([*choice, "{" + raw_col + "}"])
        try:
            tpl = path_templates({"f": template}, "hint")["f"]
        except SourceError:
            continue
        # a row with a blank cell the template needs (a null fold) names no folder: it is not checked
        if all(isinstance(p := fill_template(tpl, row), str) and os.path.isfile(os.path.join(start, p))
               for row, _ in checked if not any(_blank(row.get(c)) for c in tpl.columns)):
            return template
    return None


def _media_named(text: str) -> bool:
    """Whether a cell names a file by a media or data type mmdata knows (its last extension: an image, audio, text,
    label, JSON or ``.npy`` type, an unsupported media type such as HEIC, or a video / subtitles / table type it
    refuses with advice) — not a number (``36.0``), a date (``01/05/2023``) or a ratio (``3/40``).

    Example:
        >>> _media_named("img/a.PNG"), _media_named("36.0"), _media_named("01/05/2023"), _media_named("clip.mp4")
        (True, False, False, True)
    """
    base = text.strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not (dot and stem):
        return False
    return (member_type(ext) in KNOWN_EXTS or unsupported_reason(base) is not None
            or other_type_reason(base) is not None)


def _path_like(text: str) -> bool:
    """Whether a cell looks like a file path: a known media extension, or a folder in it (``a/b``)."""
    if "://" in text and not _URL_CELL.match(text):  # a text that mentions a URL (an attribution), not a path
        return False
    return "/" in text or os.sep in text or split_name(posixpath.basename(text.strip())) is not None


_NEAR_FOLDERS = 256  # folders looked into for a manifest's missing files: a hint, not a search
_DEEPER_FOLDERS = 32  # of them, those whose own folders are looked into too (audio/ holding fold1/ ... fold10/)


def _folder_holding(base: str, rel: str) -> str | None:
    """A folder near ``base`` (its parent, the parent's folders, ``base``'s own folders, then one level
    below those) in which the relative path ``rel`` names a file — where a manifest's files are when it
    lies beside them (ESC-50: ``meta/esc50.csv`` naming ``audio/`` files by their bare names;
    UrbanSound8K: ``audio/fold1/``); None when none is. Bounded: a hint, not a search."""
    parent = os.path.dirname(base)

    def folders(d: str) -> list[str]:
        try:
            with os.scandir(d) as it:
                names = sorted(e.name for e in it if not is_hidden_folder(e.name) and e.is_dir())
        except OSError:
            return []
        return [os.path.join(d, n) for n in names[:_NEAR_FOLDERS]]

    def holding(ds: list[str]) -> str | None:
        return next((d for d in ds if os.path.normpath(d) != os.path.normpath(base)
                     and os.path.isfile(os.path.join(d, rel))), None)

    near = [*folders(parent), *folders(base)]
    found = holding([parent, *near])
    if found is None:
        deeper = [f for d in near[:_DEEPER_FOLDERS] for f in folders(d)[:_NEAR_FOLDERS]]
        found = holding(deeper)
    return found


@_warn_invisible_names
def discover(src: str | Path, *, columns: Mapping[str, str] | None = None, labels_from_folders: bool | None = None,
             label_names: list[str] | None = None, label_names_from: str | None = None, on_error: str = "skip",
             exclude: str | Path | None = None, storage_options: dict[str, Any] | None = None,
             meta: Sequence[str] | None = None, group_by: str | None = None,
             root: str | Path | None = None, paths: Mapping[str, str] | None = None,
             on_files: Callable[[int], None] | None = None,
             segment: str | Mapping[str, str] | None = None) -> Discovered:
    """Records from a folder or a manifest file (by suffix); see :func:`discover_folder` and
    :func:`discover_manifest` (``meta``: a manifest's metadata columns; ``root``: the folder a local
    manifest's paths are read from; ``paths``: fields whose paths a local manifest's rows fill in; ``segment``:
    a local manifest's start / duration columns, each row a cut of its recording). ``src`` may be an fsspec URL (``s3://bucket/raw``; ``storage_options``
    for its filesystem): listed here, its files fetched by whoever writes the shards
    (:mod:`mmdata.shards.remote_source`). ``exclude``: the job's output (a path or URL), not walked
    when it lies inside the source. ``on_files``: a folder walk's running file count (local folders), or a local
    manifest's rows looked up so far."""
    if on_error not in ON_ERROR:
        raise SourceError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    from mmdata.urls import is_remote

    if root is not None and (is_remote(src) or not Path(src).is_file()):
        what = ("a manifest at a URL (it names files relative to its folder there)" if is_remote(src) else
                "a folder (it names its own files)" if Path(src).is_dir() else "not a manifest file")
        raise SourceError(f"source {src}: --root (root=) names the folder a manifest's paths are read from; this "
                          f"source is {what}")
    if paths and (is_remote(src) or not Path(src).is_file()):
        what = ("a manifest at a URL (write the paths into a column there)" if is_remote(src) else
                "a folder (it names its own files)" if Path(src).is_dir() else "not a manifest file")
        raise SourceError(f"source {src}: --path (paths=) makes a file path from a manifest's columns; this source is "
                          f"{what}")
    if segment and (is_remote(src) or not Path(src).is_file()):
        what = ("a manifest at a URL (its recordings are read frame by frame: copy it and its audio here)"
                if is_remote(src) else "a folder (each file is a sample)" if Path(src).is_dir() else
                "not a manifest file")
        raise SourceError(f"source {src}: --segment (segment=) cuts the recordings a manifest's rows name by their "
                          f"start and duration columns; this source is {what}")
    if is_remote(src):
        from mmdata.shards.remote_source import discover_remote

        return discover_remote(str(src), storage_options, columns=columns, labels_from_folders=labels_from_folders,
                               label_names=label_names, label_names_from=label_names_from, on_error=on_error,
                               exclude=exclude, meta=meta, group_by=group_by)
    if exclude is not None and is_remote(exclude):
        exclude = None
    src = Path(src)
    if src.is_file():
        return discover_manifest(src, columns, label_names, label_names_from=label_names_from, on_error=on_error,
                                 meta=meta, group_by=group_by, root=root, paths=paths, segment=segment,
                                 on_rows=on_files)
    if not src.exists():
        tracked = src.with_name(src.name + ".dvc") if src.name else None
        if tracked is not None and tracked.is_file():  # DVC leaves raw.dvc where raw/ goes until `dvc pull`
            raise SourceError(f"source {src} does not exist: {tracked} beside it is {DVC_POINTER}")
        raise SourceError(f"source {src} does not exist")
    if meta:
        raise SourceError(folder_meta_error(src))
    if group_by is not None and group_by != FOLDER_GROUP:
        raise SourceError(folder_group_error(src))
    return discover_folder(src, labels_from_folders, label_names, label_names_from=label_names_from,
                           on_error=on_error, exclude=exclude, columns=columns, on_files=on_files,
                           group_by_folder=group_by == FOLDER_GROUP)


# ---- WebDataset shards as a source ----------------------------------------------------------------
#: what a tar shard's name ends with (as the reader takes them)
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: the split a shard's file name gives: ``train-000.tar``, ``val_0001.tar.gz`` (a standard name or an alias)
_SHARD_SPLIT = re.compile(r"([A-Za-z]+)[-_.]")


def _is_shard_name(name: str) -> bool:
    return name.lower().endswith(SHARD_SUFFIXES)


def _shards_in_folder(root: str) -> list[str] | None:
    """The tars of a folder that holds WebDataset shards and no raw data: every file (hidden folders and
    files apart) a ``.tar`` / ``.tar.gz`` / ``.tgz``, a class-names file at its root (``labels.txt`` /
    ``labels.json``), or another file that is no media, text, label, ``.json`` or ``.npy`` (a README.md, a
    webdataset ``.idx``). None for any other folder (raw data, a dataset folder)."""
    if is_dataset_folder(root):
        return None
    tars: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not is_hidden_folder(d))
        for f in sorted(files):
            if f.startswith("."):
                continue
            if _is_shard_name(f):
                tars.append(os.path.join(folder, f))
            elif folder == root and f in NAMES_FILES:  # the class names of the tars' .cls members
                continue
            elif split_name(f) is not None:  # a file of raw data: the folder is a raw folder
                return None
    return tars or None


def shard_files(src: Any, storage_options: dict[str, Any] | None = None) -> list[str] | None:
    """The tars of ``src`` when it names WebDataset shards — a ``.tar`` / ``.tar.gz`` / ``.tgz`` file, a brace
    or glob pattern of them (``shard-{000..009}.tar``, ``"data/*.tar"``), a folder holding tars and no raw data,
    or a URL of them — else None (a raw folder, a manifest, a dataset folder).

    Raises:
        SourceError: a pattern that matches no shard, or names shards that do not exist.

    Example:
        >>> shard_files("raw/") is None, shard_files("rows.csv") is None
        (True, True)
    """
    from mmdata.errors import ShardError
    from mmdata.shards.tario import braceexpand, expand_sources
    from mmdata.urls import is_remote

    if not isinstance(src, (str, Path)):
        return None
    s = str(src)
    if is_remote(s):
        items = braceexpand(s)
        if not all(_is_shard_name(i.rstrip("/")) for i in items):
            return None
    elif os.path.isdir(s):
        return _shards_in_folder(s)
    else:
        items = braceexpand(s)
        globbed = [i for i in items if any(c in i for c in "*?[")]
        if globbed and not all(_is_shard_name(i) for i in items):  # "data/shard-*": by what it matches
            import glob

            matched = [m for i in globbed for m in glob.glob(i)]
            if not matched or not all(_is_shard_name(m) and os.path.isfile(m) for m in matched):
                return None
        elif not all(_is_shard_name(i) for i in items):
            return None
        if not any(c in s for c in "*?[{"):  # one tar
            return [s] if os.path.isfile(s) else None  # a missing one: "does not exist", as for any source
        missing = [i for i in items if not any(c in i for c in "*?[") and not os.path.lexists(i)]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise SourceError(f"source {s}: {plural(len(missing), 'shard')} of the pattern {'does' if len(missing) == 1 else 'do'} "
                              f"not exist ({shown}); check the pattern's range")
    try:
        return expand_sources(s, storage_options)
    except ShardError as exc:  # a glob matching nothing
        raise SourceError(f"source {exc}; check the pattern (quote it, so that the shell does not expand it)") from None


def shard_split(name: str) -> str | None:
    """The split a shard's file name gives by its prefix, as mmdata names its own shards
    (``train-000000.tar``): ``train``, ``val`` or ``test``, or an alias (``validation``, ``dev``, ``valid``,
    ``training``, ``testing``) — else None (``shard-000.tar``).

    Example:
        >>> shard_split("data/val-000.tar"), shard_split("validation_0001.tar.gz"), shard_split("shard-000.tar")
        ('val', 'val', None)
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    m = _SHARD_SPLIT.match(base)
    return None if m is None else split_word(m.group(1))


def tar_split(tar: str, folder: str | None = None) -> str | None:
    """The split a shard is named for: its first subfolder under ``folder`` (``train/000.tar``: the layout of
    many webdataset repositories), else its file name's prefix (:func:`shard_split`); None for neither. The
    one rule of ``mmdata shard SHARDS`` and of the reader's bare folders.

    Example:
        >>> tar_split("ds/Validation/shard-0.tar", "ds"), tar_split("ds/train-001.tar", "ds"), tar_split("x.tar")
        ('val', 'train', None)
    """
    parts = Path(os.path.relpath(tar, folder)).parts if folder is not None else ()
    return (split_word(parts[0]) if len(parts) > 1 else None) or shard_split(tar)


def split_word(word: str) -> str | None:
    """``train`` / ``val`` / ``test`` for a word naming one of them in any case or common spelling
    (``Validation``, ``dev``, ``TRAINING``), else None: how a shard's or a folder's name gives its split.

    Example:
        >>> split_word("Validation"), split_word("TRAIN"), split_word("shard")
        ('val', 'train', None)
    """
    w = word.lower()
    return w if w in STANDARD_SPLITS else _SPLIT_ALIASES.get(w)


def _shard_splits(tars: list[str], src: Any) -> list[str | None]:
    """Each tar's split from its name when every tar's name gives one; none when no name does; an error naming
    both kinds when only some do (the others' samples would land in a split by chance)."""
    folder = str(src) if isinstance(src, (str, Path)) and os.path.isdir(src) else None
    splits = [tar_split(t, folder) for t in tars]
    if all(s is None for s in splits) or all(s is not None for s in splits):
        return splits
    named = next(t for t, s in zip(tars, splits) if s is not None)
    other = [t for t, s in zip(tars, splits) if s is None]
    raise SourceError(f"source {src}: some shards' names give their split ({named!r}: {tar_split(named, folder)!r}) and "
                      f"{plural(len(other), 'shard')} do not ({', '.join(repr(t) for t in other[:3])}"
                      f"{', ...' if len(other) > 3 else ''}); name every shard <split>-NNN.tar (train / val / test), "
                      f"or shard each split's shards on their own")


@_warn_invisible_names
def discover_shards(src: Any, tars: list[str], label_names: list[str] | None = None,
                    label_names_from: str | None = None, on_error: str = "skip",
                    storage_options: dict[str, Any] | None = None) -> Discovered:
    """Records from WebDataset shards, read by mmdata's own reader (:func:`mmdata.open_dataset` with
    ``decode=False``: members as the bytes stored, nothing executed): each sample's members kept as they are
    (a JPEG stays that JPEG, a ``.json`` the bytes written), its key as ``source_key`` (the key
    :func:`safe_key` of it), its label from the ``.cls`` member (a class id, or a class name of
    ``label_names``), and its split from the shard's name (:func:`shard_split`) when every shard's name gives
    one. What the reader cannot read (a damaged member, a sample split across shards) is left out and listed
    (``on_error="skip"``), or raised. A key repeated across shards is an error naming both shards.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> tmp = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(tmp + "/raw", n=4), tmp + "/ds", progress=False)
        >>> found = discover_shards(tmp + "/ds/*.tar", shard_files(tmp + "/ds/*.tar"))
        >>> len(found.records), found.records[0].split
        (4, 'train')
    """
    from mmdata.errors import MMDataError
    from mmdata.shards.reader import open_dataset

    splits = _shard_splits(tars, src)
    names = list(label_names) if label_names else None
    names_from = (label_names_from or "--labels") if names else None
    if names is None and isinstance(src, (str, Path)) and os.path.isdir(src):  # a folder's names file, as for raw data
        for n in NAMES_FILES:
            if os.path.isfile(os.path.join(src, n)):
                names, names_from = read_label_names(os.path.join(src, n)), n
                break
    # per tar folder of datasets merged: (its class names, its ids -> ids of the one list), None without names
    remap: dict[str, tuple[list[str], list[int]] | None] = {}
    parsed_in: dict[str, dict[bytes, int | str]] = {}  # per such folder, as parsed
    warnings: list[str] = []
    if names is None:
        names, names_from, remap, warnings = _tar_folder_names(tars)
    else:  # names given: a dataset's own ids mean its own names, looked up by name in the given list
        remap, warnings = _given_names_remap(tars, names, names_from)
    records: list[Record] = []
    skipped: list[dict[str, Any]] = []
    seen: dict[str, str] = {}  # source key -> its shard
    home = {tar: _series_folder(tar) for tar in tars}  # a key may repeat across these, never within one
    repeated: list[tuple[str, str, str]] = []  # (key, first shard, this shard) of a key in two tar folders
    tar_of: list[str] = []  # per record, its shard
    parsed: dict[bytes, int | str] = {}
    for tar, split in zip(tars, splits):
        ds = open_dataset(tar, split=split or "train", decode=False, on_error="raise" if on_error == "raise" else "skip",
                          storage_options=storage_options)
        try:
            for sample in ds:
                key = sample.key
                if key in seen:
                    if home[seen[key]] == home[tar]:
                        raise SourceError(
                            f"source {src}: sample key {key!r} is in two shards, {seen[key]!r} and {tar!r} (a shard "
                            f"copied twice, or two series with one key scheme): remove the copy, or move each series "
                            f"into a folder of its own (or shard it into a dataset of its own) and shard their tars "
                            f"together, e.g. mmdata shard \"data/*/*.tar\" OUT: keys that repeat across folders are "
                            f"then prefixed with their folder's name ('A/0001', 'B/0001')")
                    repeated.append((key, seen[key], tar))
                seen[key] = tar
                if len(key.encode("utf-8", "surrogateescape")) > MAX_SOURCE_KEY_BYTES:
                    # a PAX path of 100,000 characters (QA28 security #10): no file can have that name
                    why = (f"key of {len(key)} characters is longer than any file path ({MAX_SOURCE_KEY_BYTES} "
                           f"bytes): a damaged or hostile shard; left out")
                    if on_error == "raise":
                        raise SourceError(f"shard {tar}: sample {printable(key[:60])!r}...: {why}")
                    skipped.append(skip_entry(tar, "sample", why, printable(key[:60]) + "..."))
                    continue
                members = {ext: data for ext, data in sample.items()}
                label = None
                lab_ext = next((e for e in LABEL_EXTS if e in members), None)
                if lab_ext is not None:
                    folder = _tar_folder(tar)
                    if folder in remap:  # read with its own dataset's names, then mapped by name
                        if remap[folder] is None:
                            raise SourceError(_unnamed_ids_error(src, tar, key, names_from))
                        own, to_merged = remap[folder]  # type: ignore[misc]
                        label = _parsed_label(parsed_in.setdefault(folder, {}), members.pop(lab_ext), own, names_from)
                        label = to_merged[label] if label.__class__ is int else label
                    else:
                        label = _parsed_label(parsed, members.pop(lab_ext), names, names_from)
                    if label.__class__ is str:
                        if on_error == "raise":
                            raise SourceError(f"shard {tar}: sample {key!r}: .{lab_ext} member: {label}")
                        skipped.append(skip_entry(tar, "member", f".{lab_ext}: {label}", key))
                        label = None
                if not members:
                    skipped.append(skip_entry(tar, "sample", "no member beside its label", key))
                    continue
                records.append(Record(safe_key(key), key, dict(sorted(members.items())), label, split))  # type: ignore[arg-type]
                tar_of.append(tar)
        except SourceError:
            raise
        except MMDataError as exc:  # on_error="raise": the reader's error names the shard and key
            raise SourceError(str(exc)) from None
        for shard, key, message in ds.errors:
            skipped.append(skip_entry(shard, "sample", message, key))
    if repeated:
        warnings += _prefix_by_folder(records, [home[t] for t in tar_of], repeated, home)
    records = _finish(records)
    # keys over 200 characters / Windows' reserved names: warned of as for folders and manifests (QA28 security #10)
    return Discovered(records, names, names_from, skipped, warnings + _key_name_warnings(records))


def _series_folder(tar: str) -> str:
    """The folder holding a tar, local or at a URL: the tars of one folder are one series (one dataset's shards),
    whose keys never repeat; tars of several folders (``data/*/*.tar``: a dataset per site) may share keys."""
    from mmdata.urls import is_remote

    return tar.rsplit("/", 1)[0] if is_remote(tar) else _tar_folder(tar)


def _folder_names(folders: Sequence[str]) -> dict[str, str]:
    """A short distinct name per folder: its last part (``data/A`` -> ``A``), or as many last parts as tell it
    from the others (``site1/ds`` and ``site2/ds`` -> ``site1/ds``, ``site2/ds``).

    Example:
        >>> _folder_names(["data/A", "data/B"]), _folder_names(["s1/ds", "s2/ds"])
        ({'data/A': 'A', 'data/B': 'B'}, {'s1/ds': 's1/ds', 's2/ds': 's2/ds'})
    """
    parts = {f: [p for p in f.replace("\\", "/").split("/") if p not in ("", ".")] or [f] for f in folders}
    for k in range(1, max(len(p) for p in parts.values()) + 1):
        names = {f: "/".join(p[-k:]) for f, p in parts.items()}
        if len(set(names.values())) == len(names):
            return names
    return {f: "/".join(p) for f, p in parts.items()}


def _prefix_by_folder(records: list[Record], folders: Sequence[str], repeated: Sequence[tuple[str, str, str]],
                      home: Mapping[str, str]) -> list[str]:
    """Key each record by its tar folder (``A/0001``, as a blend keys a dataset's samples) when keys repeat across
    the folders of the tars (QA36 sites #2: every site numbers its samples ``0001``...; the refusal sent the user
    to a blend, which ``mmdata train`` does not read). Every record gets the prefix, not only the repeated keys, so
    one dataset's keys do not depend on which keys the others hold. Returns the warning saying so."""
    names = _folder_names(list(dict.fromkeys(folders)))
    for r, folder in zip(records, folders):
        r.source_key = f"{names[folder]}/{r.source_key}"
        r.key = safe_key(r.source_key)
    key, a, b = repeated[0]
    n = len(repeated)
    shown = ", ".join(repr(v) for v in list(dict.fromkeys(names.values()))[:6]) + (", ..." if len(names) > 6 else "")
    return [f"{plural(n, 'sample key')} {'repeat' if n != 1 else 'repeats'} across the tar folders (e.g. {key!r} in "
            f"{a!r} and in {b!r}): each sample's key now starts with its folder's name ({shown}; e.g. "
            f"{f'{names[home[b]]}/{key}'!r}), as a blend keys "
            f"its datasets' samples; if two folders hold copies of one dataset, shard one of them. This changes "
            f"an earlier version's keys (sharded without the prefix, or with another set of folders): --split-from "
            f"that version then matches samples by content (a sample whose bytes changed loses its earlier split), "
            f"and diff sees every key as new"]


def _tar_folder(tar: str) -> str:
    """The folder of a local tar (the dataset folder mmdata wrote it into), as the source names it: the card's
    ``label_names_from`` does not depend on where the job ran."""
    return os.path.normpath(os.path.dirname(tar) or ".")


def _own_names(folder: str) -> tuple[list[str] | None, str | None]:
    """(class names, the file they came from) of the tars in the local ``folder``: a class-names file beside
    them (``labels.json`` / ``labels.txt``), else the ``label_names`` of the ``dataset.json`` of the mmdata
    dataset folder holding them; (None, None) without either."""
    for n in NAMES_FILES:
        if os.path.isfile(os.path.join(folder, n)):
            return read_label_names(os.path.join(folder, n)), os.path.join(folder, n)
    if not is_dataset_folder(folder):
        return None, None
    path = os.path.join(folder, "dataset.json")
    try:
        with open(path, "rb") as f:
            card = json.loads(f.read())
    except (OSError, ValueError, RecursionError) as exc:
        raise SourceError(f"dataset card {path}: cannot read its class names ({exc}); expected the dataset.json "
                          f"mmdata wrote beside the tars, or pass --labels names.txt") from None
    got = card.get("label_names") if isinstance(card, dict) else None
    if not got:
        return None, None
    if not isinstance(got, list):
        raise SourceError(f"dataset card {path}: label_names is {type(got).__name__}; expected a list of class names")
    return check_label_names(got, f"dataset card {path}: label_names"), path


def _tar_folder_names(tars: Sequence[str]) -> tuple[list[str] | None, str | None,
                                                    dict[str, tuple[list[str], list[int]] | None], list[str]]:
    """(class names, where they came from, per tar folder its own names and the map of its ids into the one list,
    warnings)
    of tars re-sharded without ``--labels`` (QA33 multisite #1: ``mmdata shard "ds[ABC]/*.tar" merged`` dropped
    every name and mixed three datasets' ids). Each local tar folder's names are :func:`_own_names`. One list of
    names (one dataset, or several with the same names): it, the ids as stored (an empty map). Lists that
    differ: one list in first-seen order — the first dataset's names in its order, then the names new in each
    next one (folders in the order of their tars), as :class:`mmdata.shards.blend.Blend` merges by exact name —
    each dataset's ids mapped into it by name, with a warning naming the datasets and the classes; a dataset
    without names beside named ones maps to None (its ids name no class: a sample of it holding a label is
    refused). No names anywhere (remote tars, loose tars): (None, None, {}, [])."""
    from mmdata.urls import is_remote

    folders: dict[str, tuple[list[str] | None, str | None]] = {}
    for tar in tars:
        if not is_remote(tar) and (folder := _tar_folder(tar)) not in folders:
            folders[folder] = _own_names(folder)
    named = {f: nw for f, nw in folders.items() if nw[0]}
    if not named:
        return None, None, {}, []
    lists = {tuple(n) for n, _ in named.values()}
    if len(lists) == 1 and len(named) == len(folders):
        (own, where), *_ = named.values()
        return list(own), ", ".join(w for _, w in named.values()), {}, []
    merged: dict[str, int] = {}
    brought: dict[str, str] = {}  # a class name -> the dataset that brought it in
    for f, (own, _) in named.items():
        for n in own:
            if n not in merged:
                merged[n], brought[n] = len(merged), f
    remap: dict[str, tuple[list[str], list[int]] | None] = {
        f: ((nw[0], [merged[n] for n in nw[0]]) if nw[0] else None) for f, nw in folders.items()}
    names = list(merged)
    warnings = []
    if len(lists) > 1:
        def listed(f: str) -> str:
            own = named[f][0]
            return (f"{os.path.basename(f) or f} ({len(own)}: {', '.join(repr(printable(n)) for n in own[:6])}"
                    f"{', ...' if len(own) > 6 else ''})")

        first = next(iter(named))
        new = {f: [n for n in named[f][0] if brought[n] == f] for f in named if f != first}
        added = "; ".join(f"{', '.join(repr(printable(n)) for n in ns[:6])}{', ...' if len(ns) > 6 else ''} from "
                          f"{os.path.basename(f) or f}" for f, ns in new.items() if ns)
        near: dict[str, list[str]] = {}
        for n in names:
            near.setdefault(_near_name(n), []).append(n)
        twins = [ns for ns in near.values() if len(ns) > 1]
        warnings.append(
            f"the tars come from {len(named)} datasets with {len(lists)} different class-name lists: "
            f"{'; '.join(map(listed, named))}. "
            f"Their class ids were mapped by name into one list of {len(names)} classes, in first-seen order (the "
            f"first dataset's names in its order, then the names new in each next dataset"
            f"{': ' + added if added else ''}); classes are merged by exact name"
            + (f", so names that differ only in case, spaces or invisible characters stay classes of their own "
               f"({'; '.join(' and '.join(repr(printable(n)) for n in ns) for ns in twins[:4])})" if twins else "")
            + "; to choose the names and their ids, pass --labels names.txt (the class names in id order, looked up "
              "by name in each dataset)")
    return names, ", ".join(w for _, w in named.values() if w), remap, warnings


def _given_names_remap(tars: Sequence[str], names: list[str], names_from: str | None
                       ) -> tuple[dict[str, tuple[list[str], list[int]] | None], list[str]]:
    """(per tar folder whose own class names differ from ``names``: its names and the map of its ids into
    ``names``, a warning) of tars re-sharded with class names given (``--labels`` or a names file of the source
    folder). A folder's ids index its own names (:func:`_own_names`), not the given list: taken as they are they
    would name other classes (QA33 review of multisite #1). A folder without names of its own, or whose names
    start the given list in its order, keeps its ids. A name of a folder's own list missing from ``names`` is
    refused, naming both lists."""
    from mmdata.urls import is_remote

    index = {n: i for i, n in enumerate(names)}
    remap: dict[str, tuple[list[str], list[int]] | None] = {}
    where: dict[str, str] = {}
    for tar in tars:
        if is_remote(tar) or (folder := _tar_folder(tar)) in remap or folder in where:
            continue
        own, own_from = _own_names(folder)
        where[folder] = own_from or ""
        if not own or own == names[:len(own)]:  # its ids mean the same names in the given list
            continue
        missing = [n for n in own if n not in index]
        if missing:
            shown = ", ".join(repr(printable(n)) for n in missing[:8]) + (", ..." if len(missing) > 8 else "")
            raise SourceError(
                f"tars of {folder}: their class ids name the {plural(len(own), 'class', 'classes')} of {own_from}, and "
                f"{plural(len(missing), 'of them is', 'of them are')} not in {names_from} ({shown}): a sample of "
                f"such a class would have no class; add {'it' if len(missing) == 1 else 'them'} to {names_from}, or "
                f"leave out --labels (the datasets' names are then merged by name)")
        remap[folder] = (own, [index[n] for n in own])
    if not remap:
        return {}, []
    told = "; ".join(f"{os.path.basename(f) or f} (from {where[f]})" for f in remap)
    return remap, [f"the class ids of {plural(len(remap), 'dataset')} were looked up by name in {names_from}, as "
                   f"{'its' if len(remap) == 1 else 'their'} own class names are in another order: {told}; each "
                   f"sample keeps its class, under its id in {names_from}"]


def _unnamed_ids_error(src: Any, tar: str, key: str, names_from: str | None) -> str:
    """The refusal of a labelled sample of a tar folder without class names beside tars whose names are known:
    its ids could mean any of the names."""
    return (f"source {src}: shard {tar}, sample {key!r}: its label is a class id, but its folder has no class names "
            f"(no labels.json / labels.txt beside it, no label_names in a dataset.json), while other tars' class "
            f"names come from {names_from}: which class the id means is unknown; pass --labels names.txt (the class "
            f"names in the id order of these tars; the other datasets' ids are looked up in it by name), or shard "
            f"these tars apart")
