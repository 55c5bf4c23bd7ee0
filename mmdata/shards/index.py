"""The dataset's metadata beside its shards: ``dataset.json`` (card), ``index.parquet`` (one row per
sample) and ``shards.parquet`` (one row per shard with sha256). See docs/ARCHITECTURE.md §1.

The readers here take a local folder or a folder at an fsspec URL (``s3://bucket/ds``; each file
fetched whole with ``storage_options``, see mmdata/urls.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mmdata.errors import ShardError
from mmdata.io import atomic_write_bytes

CARD = "dataset.json"
INDEX = "index.parquet"
SHARDS = "shards.parquet"
FORMAT = "mmdata/1"
#: what ``inspect``, ``balance: by: label`` and contrastive pre-training call the samples without a label
UNLABELLED_GROUP = "(none)"

INDEX_SCHEMA_FIELDS = (
    ("key", "string"), ("source_key", "string"), ("split", "string"), ("shard", "string"),
    ("members", "list<string>"), ("sizes", "list<int64>"), ("label", "int64"), ("modalities", "list<string>"),
    ("image_height", "int64"), ("image_width", "int64"), ("image_mode", "string"), ("image_channels", "int64"),
    ("audio_seconds", "float64"), ("audio_sample_rate", "int64"), ("audio_channels", "int64"), ("text_chars", "int64"),
    # the displayed size of each image member beside the image (``k.seg.png``: field ``seg.png``), null
    # without one; indexes written before 2026-12 lack the column (inspect then cannot compare sizes)
    ("named_image_sizes", "list<struct<field: string, height: int64, width: int64>>"),
    # each member's CRC-32 (zlib.crc32 of its bytes), in the order of ``members``: ``mmdata verify --deep``
    # names the sample and member whose bytes changed; null in indexes written before 2026-12-04
    ("member_crc32", "list<int64>"),
    # each member's strong digest (:func:`member_digest`: the first 8 bytes of its sha256, a signed int64), in the
    # order of ``members``: what "same bytes" / "renamed" / "unchanged" rest on (``--split-from``, ``mmdata diff``).
    # A PNG's whole-file CRC-32 carries ~16 bits of variety (each chunk ends in its own CRC-32), so size + CRC-32
    # alone calls different images the same (QA37 identity #1). Null in indexes written before 2026-12-07 and
    # in rows whose members were rewritten without one; readers then confirm size + CRC-32 matches by the bytes
    ("member_digest", "list<int64>"),
)

#: the index column of :func:`member_digest` per member
MEMBER_DIGEST = "member_digest"


def member_digest(data: bytes | bytearray | memoryview) -> int:
    """A member's strong digest as the index stores it (``member_digest``): the first 8 bytes of its sha256 as a
    signed big-endian int64. Two members are the same bytes when their sizes and these digests agree (a chance
    match: ~1 in 2**64 per pair); the CRC-32 of ``member_crc32`` is for ``verify --deep``, not for identity.

    Example:
        >>> member_digest(b"abc")
        -5010229573455851542
        >>> member_digest(b"abc") == member_digest(bytearray(b"abc")) != member_digest(b"abd")
        True
    """
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big", signed=True)


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
    """True when ``path`` (a folder or an fsspec URL of one) holds a dataset card.

    Locally, anything named ``dataset.json`` counts (a FIFO, a folder, a dangling link): reading it
    then says what is wrong with it (:func:`read_card`), instead of "no dataset.json"."""
    if _remote(path):
        from mmdata.urls import call, filesystem

        url = f"{str(path).rstrip('/')}/{CARD}"
        fs, p = filesystem(url, storage_options)
        return bool(call(url, "look for it", fs.isfile, p))
    return os.path.lexists(Path(path) / CARD)


def check_shard_name(path: str | Path, name: Any, what: str = "shard", where: str = CARD) -> str:
    """``name`` (a shard or column-series name from the file ``where`` of the dataset folder
    ``path``: its card or shards table) if it stays inside that folder; a ShardError otherwise (an
    absolute path, ``..``, a URL: dataset files are untrusted input)."""
    if (not isinstance(name, str) or not name or name.startswith(("/", "\\")) or "://" in name or "\\" in name
            or ".." in name.split("/")):
        raise ShardError(f"{path}/{where}: {what} path {name!r} escapes the dataset folder")
    return name


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words (``a regular file``, ``a FIFO (named pipe)``, ...).

    Example:
        >>> file_kind(os.stat(".").st_mode)
        'a folder'
    """
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular(path: str | Path) -> str | None:
    """None when ``path`` (links followed) is a regular file or does not exist; else what it is
    (:func:`file_kind`): opening a FIFO blocks until a writer comes, a device reads forever, so
    dataset files are looked at before they are opened.

    Example:
        >>> not_regular("."), not_regular("no-such-file")
        ('a folder', None)
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # a link loop, a permission: opening it fails with the same reason
        return None if exc.errno is None else f"unreadable ({exc.strerror})"
    return None if stat.S_ISREG(mode) else file_kind(mode)


def escapes_folder(root: str | Path, name: str) -> str | None:
    """None when the file ``name`` of the dataset folder ``root`` resolves (links followed) to a path
    inside the folder, else that path: a link to a file elsewhere (``/etc/passwd``, another user's
    data) is not the dataset's.

    Example:
        >>> escapes_folder(".", "x.tar") is None
        True
    """
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, name))
    return None if target == base or target.startswith(base.rstrip(os.sep) + os.sep) else target


def refused_shard(path: str | Path, root: str | Path | None = None, name: str | None = None) -> str | None:
    """Why the local shard file ``path`` is not opened, or None: it is not a regular file
    (:func:`not_regular`), or — given its dataset folder ``root`` and its ``name`` there — it is a link
    that leaves the folder (:func:`escapes_folder`; its samples are not the dataset's). The message
    names the shard; readers and the Ray augment planner refuse with it alike.

    Example:
        >>> refused_shard(".")
        'shard .: a folder, not a regular file; expected a shard (a tar file)'
    """
    kind = not_regular(path)
    if kind is not None:
        return f"shard {path}: {kind}, not a regular file; expected a shard (a tar file)"
    if root is not None and name is not None:
        target = escapes_folder(root, name)
        if target is not None:
            return (f"shard {path}: a link to {target}, outside the dataset folder {root}; refusing it "
                    "(copy the file into the folder, or link to a file inside it)")
    return None


#: the largest ``dataset.json`` read (QA28: a 60 MB card of ``{}`` took 1.7 GB to parse). A card of
#: ``mmdata shard`` is KBs; its one list that grows with the data, ``skipped``, holds about 200 bytes an
#: entry, so the limit leaves room for some 300,000 skipped files.
MAX_CARD_BYTES = 64 * 1024 * 1024


def _card_too_big(p: Path | str, size: int) -> ShardError:
    return ShardError(f"{p}: {size} bytes, over the limit of {MAX_CARD_BYTES} bytes ({MAX_CARD_BYTES >> 20} MiB) "
                      f"for a dataset card; a card written by `mmdata shard` is KBs: refused unread (not the "
                      f"card of an mmdata dataset, or a damaged one)")


def _read_regular(p: Path, what: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the local file ``p``, which must be a regular file: it is opened without blocking
    (a FIFO would wait for a writer forever) and refused, naming it, when it is anything else, or when it
    is larger than ``max_bytes`` (checked before a byte is read; a ShardError from :func:`_card_too_big`)."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(str(p))
        if not stat.S_ISREG(st.st_mode):
            raise ShardError(f"{p}: {file_kind(st.st_mode)}, not a regular file; expected {what}")
        if max_bytes is None:
            return f.read()
        if st.st_size > max_bytes:
            raise _card_too_big(p, st.st_size)
        # a file growing meanwhile is read no further than the limit; read(n) allocates n bytes first, so n is
        # the file's size (+1 to see growth), not the 64 MiB limit (QA28: 64 MiB of address space per card read)
        data = f.read(min(max_bytes, st.st_size) + 1)
        if len(data) > st.st_size:  # it grew: the rest, up to the limit
            data += f.read(max_bytes + 1 - len(data))
        if len(data) > max_bytes:
            raise _card_too_big(p, len(data))
        return data


_STR_LIST = "a list of strings"


def _found(value: Any) -> str:
    """A JSON value as error messages show it: its JSON type and the start of its text."""
    kind = {type(None): "null", bool: "a JSON boolean", int: "a JSON number", float: "a JSON number",
            str: "a JSON string", list: "a JSON array", dict: "a JSON object"}.get(type(value), type(value).__name__)
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = "..."
    return kind if value is None else f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def check_card(where: str, card: dict[str, Any], *, shard_lists: bool = True) -> dict[str, Any]:
    """``card`` (the parsed ``dataset.json`` at ``where``) if every key the readers use has the type
    ``mmdata shard`` writes, else a ShardError naming the key, what was expected and what was found.
    ``shard_lists=False`` leaves each split's ``shards`` unchecked (``mmdata verify`` and ``inspect``
    report a list that is not one as a problem / warning).

    Example:
        >>> try:
        ...     check_card("ds/dataset.json", {"format": "mmdata/1", "splits": {"train": "x"}})
        ... except ShardError as exc:
        ...     print(exc)  # doctest: +ELLIPSIS
        ds/dataset.json: 'splits.train': expected an object {...}, found a JSON string "x"
    """
    def bad(key: str, expected: str, value: Any) -> ShardError:
        return ShardError(f"{where}: {key!r}: expected {expected}, found {_found(value)}")

    def count(key: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(key, "a count (a whole number >= 0)", value)

    def strings(key: str, value: Any, optional: bool = True) -> None:
        if value is None and optional:
            return
        if not isinstance(value, list):
            raise bad(key, _STR_LIST + (" or null" if optional else ""), value)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise bad(f"{key}[{i}]", "a string", v)

    def mapping(key: str, value: Any, expected: str, optional: bool = True) -> dict[str, Any]:
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            raise bad(key, expected, value)
        return value

    splits = card.get("splits")
    if "splits" not in card:
        raise ShardError(f"{where}: no key 'splits' (expected an object of split -> {{samples, shards}})")
    for split, entry in mapping("splits", splits, "an object of split -> {samples, shards}", optional=False).items():
        key = f"splits.{split}"
        if not isinstance(entry, dict):
            raise bad(key, 'an object {"samples": <count>, "shards": [<shard name>, ...]}', entry)
        if "samples" not in entry:
            raise ShardError(f"{where}: {key!r}: no key 'samples' (expected the split's sample count)")
        count(f"{key}.samples", entry["samples"])
        if shard_lists:
            strings(f"{key}.shards", entry.get("shards"), optional=False)
    layout = card.get("layout", "samples")
    if layout not in ("samples", "columns"):
        raise bad("layout", "'samples' or 'columns'", layout)
    for key in ("name", "fingerprint"):
        if card.get(key) is not None and not isinstance(card[key], str):
            raise bad(key, "a string or null", card[key])
    if card.get("num_classes") is not None:
        count("num_classes", card["num_classes"])
    for key in ("label_names", "fields", "warnings"):
        strings(key, card.get(key))
    for field, info in mapping("modalities", card.get("modalities"), "an object of field -> {codecs, count}").items():
        mapping(f"modalities.{field}", info, "an object {\"codecs\": [...], \"count\": <count>}", optional=False)
        strings(f"modalities.{field}.codecs", info.get("codecs"))
        if info.get("count") is not None:
            count(f"modalities.{field}.count", info["count"])
    if card.get("skipped_count") is not None:
        count("skipped_count", card["skipped_count"])
    for reason, n in mapping("skipped_counts", card.get("skipped_counts"), "an object of reason -> count").items():
        count(f"skipped_counts.{reason}", n)
    if card.get("skipped") is not None and not isinstance(card["skipped"], list):
        raise bad("skipped", "a list", card["skipped"])
    hf = mapping("hf", card.get("hf"), "an object (how the dataset maps to Hugging Face columns) or null")
    mapping("hf.features", hf.get("features"), "an object of Hugging Face features")
    for role, col in mapping("hf.columns", hf.get("columns"), "an object of role -> column").items():
        if not isinstance(col, str):
            raise bad(f"hf.columns.{role}", "a column name (a string)", col)
    for key in ("order", "json", "npy"):
        strings(f"hf.{key}", hf.get(key))
    return card


def split_name_problems(names: Iterable[str]) -> list[str]:
    """What keeps the split ``names`` (a card's, untrusted) from naming shard files, as ``mmdata shard``
    checks its own (:func:`mmdata.shards.sources.check_split_name`: no ``/``, ``\\``, control characters
    or leading ``.``), and pairs that differ only in case (one file on macOS and Windows file systems).

    Example:
        >>> [p.split(":")[0] for p in split_name_problems(["train", "TRAIN", "val", "../x"])]
        ["split '../x' cannot name shard files (<split>-000000.tar in the output folder)", "splits 'TRAIN' and 'train' differ only in case"]
    """
    from mmdata.errors import SourceError
    from mmdata.shards.sources import check_split_name

    out: list[str] = []
    folded: dict[str, list[str]] = {}
    for name in names:
        try:
            check_split_name(name, CARD)
        except SourceError as exc:
            out.append(str(exc).removeprefix(f"{CARD}: "))
            continue
        folded.setdefault(name.casefold(), []).append(name)
    for same in folded.values():
        if len(same) > 1:
            same = sorted(same)
            out.append(f"splits {' and '.join(map(repr, same))} differ only in case: their shard files "
                       f"({', '.join(f'{n}-000000.tar' for n in same)}) are one file on case-insensitive file "
                       "systems (macOS, Windows)")
    return out


def check_split_names(where: str | Path, names: Iterable[str]) -> None:
    """A ShardError naming ``where`` (a card) and the first of :func:`split_name_problems`, if any: a job
    that writes shards named after these splits refuses them before writing anything.

    Example:
        >>> check_split_names("ds/dataset.json", ["train", "val"])
    """
    problems = split_name_problems(names)
    if problems:
        raise ShardError(f"{where}: {problems[0]}")


def card_samples(card: dict[str, Any]) -> int:
    """The samples a (checked) card lists: the sum of its splits' ``samples``.

    Example:
        >>> card_samples({"splits": {"train": {"samples": 6}, "val": {"samples": 2}}})
        8
    """
    return sum(entry["samples"] for entry in card["splits"].values())


def load_card(path: str | Path, storage_options: dict[str, Any] | None = None, *,
              shard_lists: bool = True) -> dict[str, Any]:
    """Read ``dataset.json`` of a dataset folder (a path or an fsspec URL), checked (see :func:`read_card`)."""
    return read_card(path, storage_options, shard_lists=shard_lists)[1]


def read_card(path: str | Path, storage_options: dict[str, Any] | None = None, *,
              shard_lists: bool = True) -> tuple[bytes, dict[str, Any]]:
    """``dataset.json`` of a dataset folder (a path or an fsspec URL): its bytes as stored and the
    card, checked: UTF-8 JSON of this format whose keys have the types the writer gives them
    (:func:`check_card`; ``shard_lists=False``: each split's ``shards`` is not checked).

    Raises:
        ShardError: naming the file and what is wrong: missing, not a regular file (a FIFO, a device),
            not UTF-8, not JSON, nested too deeply, a number too long, another format, a key of
            another type.
    """
    p = f"{str(path).rstrip('/')}/{CARD}" if _remote(path) else Path(path) / CARD
    if _remote(path) and str(path).rstrip("/").lower().endswith((".tar", ".tar.gz", ".tgz")):
        bare = _bare_shards_advice(path, storage_options)  # a shard URL: said before asking the store for a card
        if bare is not None:
            raise ShardError(bare)
    try:
        if _remote(path):
            data = _fetch(path, CARD, storage_options)
            if len(data) > MAX_CARD_BYTES:
                from mmdata.urls import redact

                raise _card_too_big(redact(str(p)), len(data))
        else:
            data = _read_regular(p, "the dataset card (a JSON file)", MAX_CARD_BYTES)  # type: ignore[arg-type]
        card = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        running = running_job(path)
        if running is not None:
            raise ShardError(f"{path}: no {CARD}: the folder is being written by a running job ({running}); "
                             f"open it once that job has finished (the card is written last)") from None
        if unfinished_job(path, storage_options):
            cmd = unfinished_command(path)
            raise ShardError(f"{path}: no {CARD}: an {cmd} job into this folder did not finish (the card is "
                             f"written last); rerun the same {cmd} command to finish it") from None
        bare = _bare_shards_advice(path, storage_options)
        if bare is not None:  # QA26: `mmdata train 'shards-{0..3}.tar'` said "does not exist"
            raise ShardError(bare) from None
        if not _remote(path) and not os.path.lexists(path):  # "no dataset.json" read as if the folder were there
            where = "" if Path(path).is_absolute() else f" (relative to the working directory {os.getcwd()})"
            raise ShardError(f"{path}: does not exist{where}; expected a dataset folder written by `mmdata shard`") from None
        if _remote(path):  # QA: a missing bucket and a shard object were both "no dataset.json"
            missing = _remote_not_a_folder(path, storage_options)
            if missing is not None:
                raise ShardError(missing) from None
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
    except RecursionError:
        raise ShardError(f"{p}: JSON nested too deeply to read (expected the dataset card, a few levels "
                         "deep)") from None
    except ValueError as exc:  # a number of more digits than int() converts (sys.set_int_max_str_digits)
        raise ShardError(f"{p}: not a dataset card: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        found = card.get("format") if isinstance(card, dict) else f"a JSON {type(card).__name__}"
        shown = repr(found) if isinstance(found, str) and len(found) <= 100 else _found(found)
        raise ShardError(f"{p}: unknown format {shown}, expected {FORMAT!r}")
    return data, check_card(str(p), card, shard_lists=shard_lists)


def _bare_shards_advice(path: str | Path, storage_options: dict[str, Any] | None) -> str | None:
    """What to do when ``path``, given for a dataset folder, names WebDataset shards instead — a ``.tar``, a
    brace or glob pattern of them, a folder of tars without a card — else None (the caller says what is
    missing). The dataset folder's commands (``train``, ``augment``, ``ablate``) need the index and card that
    ``mmdata shard SHARDS OUT`` writes from such shards, their members' bytes kept."""
    import shlex

    from mmdata.checks import plural
    from mmdata.errors import SourceError
    from mmdata.shards.sources import shard_files

    try:
        tars = shard_files(path, storage_options)
    except (SourceError, ShardError, OSError):  # a pattern of missing shards: its own error is the caller's
        return None
    if not tars or (isinstance(path, (str, Path)) and not _remote(path) and os.path.isdir(path) and dataset_marks(path)):
        return None
    if _remote(path):  # a URL's password or signed-URL secret never reaches a message
        from mmdata.urls import redact

        path = redact(str(path))
    shown = shlex.quote(str(path))
    return (f"{path}: not a dataset folder but {plural(len(tars), 'WebDataset shard')} (no {CARD}, no {INDEX}); "
            f"expected a dataset folder written by `mmdata shard`: `mmdata shard {shown} OUT` writes one from these "
            f"shards (members kept as they are; splits from their names), then give OUT here. "
            f"mmdata.open_dataset({str(path)!r}) reads the shards as they are")


#: protocols whose first path component is a bucket (a container): a missing one is named as such
_BUCKETS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl")


def _remote_not_a_folder(url: str | Path, storage_options: dict[str, Any] | None) -> str | None:
    """Why the URL ``url`` that has no card is not a dataset folder, said as for a local path: an object
    (a shard given for the folder), a missing bucket, nothing under the prefix; None when it is a folder
    (then it lacks only its card) or the store cannot tell (its error is not this message's business)."""
    from mmdata.urls import filesystem, protocol, redact

    shown = redact(str(url).rstrip("/"))
    try:
        fs, root = filesystem(str(url).rstrip("/"), storage_options)
        root = root.rstrip("/")
        try:
            info = fs.info(root)
        except FileNotFoundError:
            bucket = root.split("/", 1)[0]
            if (protocol(url) or "").split("::")[-1] in _BUCKETS and bucket != root and not fs.exists(bucket):
                return (f"{shown}: the bucket {bucket!r} does not exist (or is not visible with these credentials); "
                        f"check the URL (expected a dataset folder written by `mmdata shard`)")
            return f"{shown}: does not exist (no object under that prefix); expected a dataset folder written by `mmdata shard`"
    except Exception:  # noqa: BLE001 — only chooses the message
        return None
    if info.get("type") == "file":
        return (f"{shown}: not a dataset folder (an object; a dataset folder holds {CARD}, {INDEX} and {SHARDS}); "
                f"bare WebDataset shards are read with mmdata.open_dataset({shown!r})")
    return None


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


def dataset_marks(path: str | Path) -> bool:
    """Whether the local folder ``path`` is (or is becoming) a dataset folder, by what is there: its card,
    index or shards table, or the journal of a job writing it. A re-shard keeps one of them in place at
    every moment (the journal is made before the card is removed, the card written before the journal
    goes, the index and shards table are replaced by renames), so a reader that sees none of them, lists
    the tars and looks again without finding any, read no job's folder: it is bare shards."""
    from mmdata.shards.journal import NAME

    folder = Path(path)
    if os.path.lexists(folder / NAME) or _card_mark(folder / CARD):
        return True
    for name in (INDEX, SHARDS):
        try:
            st = os.lstat(folder / name)
        except OSError:
            continue
        if not stat.S_ISLNK(st.st_mode) or _links_to_ours(folder / name, b"PAR1"):
            return True
    return False


def _links_to_ours(p: Path, magic: bytes) -> bool:
    """Whether the link ``p`` leads to a regular file (a dataset folder of links: git-annex, DVC) that
    starts with ``magic``."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # dangling, a loop, unreadable
    with os.fdopen(fd, "rb") as f:
        return stat.S_ISREG(os.fstat(fd).st_mode) and f.read(len(magic)) == magic


def _card_mark(p: Path) -> bool:
    """Whether the entry ``p`` (a folder's ``dataset.json``) marks an mmdata dataset (QA28: any file of
    that name did, so ``mmdata shard`` replaced a user's nnU-Net ``dataset.json`` and tars unasked). Not a
    mark: a JSON document whose ``format`` is no ``mmdata/...`` (another tool's card), a link that leads
    to no such card (dangling, or anywhere else). A mark: a card of ours, a link to one, and — so that
    reading it says what is wrong — a regular file that is no JSON (a damaged card), an oversized one,
    a FIFO or a folder. The card is not parsed for it (:func:`_card_format`)."""
    try:
        st = os.lstat(p)
    except OSError:
        return False
    link = stat.S_ISLNK(st.st_mode)
    if not link and not stat.S_ISREG(st.st_mode):
        return True
    if not link and st.st_size > MAX_CARD_BYTES:
        return True
    try:
        found = _card_format(p)
    except (OSError, ShardError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON: a damaged
        return not link  # card of ours, unless behind a link
    return isinstance(found, str) and found.startswith("mmdata/")


#: the top-level ``format`` line of a card as :func:`card_bytes` writes it (indent 2: a nested key is
#: indented 4 or more, and a JSON string holds no raw newline, so this line is the top level's)
_FORMAT_KEY = b'\n  "format": '
_CARD_HEAD = b'{\n  "'
_CHUNK = 64 * 1024
#: (device, inode, size, mtime_ns) -> the ``format`` of a card in another layout, parsed once per version
_PARSED_FORMATS: dict[tuple[int, int, int, int], Any] = {}


def _card_format(p: Path) -> Any:
    """The top-level ``format`` of the card ``p`` (None when it has none), read without parsing the card
    when it is laid out as :func:`card_bytes` writes it: the ``format`` line is found in its first KBs
    (review of QA28: :func:`dataset_marks` parsed the whole card on every call, 0.44 s for a 37 MB one).
    A card in another layout (written by hand, by ``jq -c``) is parsed, once per version of the file.
    Raises what :func:`_read_regular` raises, ValueError for a card that is no JSON."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ShardError(f"{p}: {file_kind(st.st_mode)}, not a regular file; expected the dataset card")
        if st.st_size > MAX_CARD_BYTES:
            raise _card_too_big(p, st.st_size)
        data = f.read(min(_CHUNK, st.st_size) + 1)
        if data.startswith(_CARD_HEAD):
            while True:
                at = data.find(_FORMAT_KEY)
                end = data.find(b"\n", at + len(_FORMAT_KEY)) if at >= 0 else -1
                if end >= 0:
                    return _format_value(data[at + len(_FORMAT_KEY):end])
                more = f.read(_CHUNK) if len(data) <= MAX_CARD_BYTES else b""
                if not more:
                    break
                data += more
        version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if version not in _PARSED_FORMATS:
            data += f.read(MAX_CARD_BYTES + 1 - len(data))
            if len(data) > MAX_CARD_BYTES:
                raise _card_too_big(p, len(data))
            try:
                card = json.loads(data.decode("utf-8"))
                found: Any = card.get("format") if isinstance(card, dict) else None
            except (ValueError, RecursionError) as exc:
                found = exc
            if len(_PARSED_FORMATS) >= 64:
                _PARSED_FORMATS.clear()
            _PARSED_FORMATS[version] = found
        found = _PARSED_FORMATS[version]
        if isinstance(found, BaseException):
            raise ValueError(f"{p}: {found}")
        return found


def _format_value(line: bytes) -> Any:
    """The value on a card's ``format`` line (``"mmdata/1",``): a string, or None for anything else (a
    number, an object opened on this line)."""
    try:
        value = json.loads(line.rstrip(b"\r").removesuffix(b",").decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def dangling_note(path: str | Path) -> str | None:
    """What to say of the local folder ``path`` when its card, index or shards table is a link to a missing
    file (a git-annex / DVC dataset whose content is not fetched: ``git annex drop``, no ``dvc pull``), or
    None. Such a folder is no dataset mark (:func:`dataset_marks`: the link may lead anywhere once fetched),
    so a job refuses to write into it; this says why, for its refusal (review of QA28: it said "not an
    mmdata dataset").

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); os.symlink("../.git/annex/objects/k.json", d / CARD)
        >>> dangling_note(d)[:64]
        'dataset.json is a link to a missing file (../.git/annex/objects/'
    """
    found = []
    for name in (CARD, INDEX, SHARDS):
        p = Path(path) / name
        try:
            if stat.S_ISLNK(os.lstat(p).st_mode) and not os.path.exists(p):
                found.append((name, os.readlink(p)))
        except OSError:
            continue
    if not found:
        return None
    from mmdata.shards.sources import printable

    names = ", ".join(n for n, _ in found)
    targets = ", ".join(printable(t) for _, t in found[:2]) + (", ..." if len(found) > 2 else "")
    what = "is a link to a missing file" if len(found) == 1 else "are links to missing files"
    return (f"{names} {what} ({targets}): a git-annex / DVC dataset whose content is not here? Fetch it first "
            f"(git annex get / dvc pull), then rerun to rewrite the dataset; or pass --force (force=True) to write "
            f"over the links")


def folder_stamp(path: str | Path) -> tuple[Any, ...] | None:
    """What identifies the version of a local dataset folder: device, inode, size and modification time
    of ``dataset.json`` and ``index.parquet`` (None for a missing one). A job writing the folder replaces
    both (renames: new inodes), so a reader compares stamps to tell that the folder was re-sharded
    since it opened it. None for a remote folder (a stat costs a request there)."""
    if _remote(path):
        return None
    out: list[Any] = []
    for name in (CARD, INDEX):
        try:
            st = os.stat(Path(path) / name)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def running_job(path: str | Path) -> str | None:
    """The note of the job writing the local folder ``path`` now (``pid 123 on host, mmdata shard, since
    ...``), or None. Held means its lock file has a ``flock`` on it: on Linux ``/proc/locks`` lists it (by
    device and inode); elsewhere the note's process must be alive on this host and not this process (a
    job of this process that failed leaves its note but no lock). The lock itself is never tried:
    holding it even for a moment would make that job, or one starting, fail."""
    import socket

    from mmdata.shards.journal import LOCK

    if _remote(path):
        return None
    try:
        st = os.stat(Path(path) / LOCK)
        note = _lock_note(Path(path) / LOCK).strip()
    except OSError:
        return None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            locks = f.read()
    except OSError:
        locks = None
    if locks is not None:
        ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        held = any(" FLOCK " in line and ident in line.split() for line in locks.splitlines())
        return (note or "another process") if held else None
    words = note.split()
    if len(words) < 4 or words[0] != "pid" or not words[1].isdigit() or words[3].rstrip(",") != socket.gethostname():
        return None
    if int(words[1]) == os.getpid():
        return None
    try:
        os.kill(int(words[1]), 0)
    except PermissionError:
        return note  # alive, another user's
    except (OSError, OverflowError, ValueError):
        return None
    return note


def _lock_note(p: Path) -> str:
    """The note at the start of a job's lock file ``p`` (a line of tens of bytes; the job reads back 4096):
    opened without blocking and not through a link, "" for anything but a regular file, never read whole
    (QA28: a FIFO planted there made ``inspect`` of a folder without a card hang, a 3 GB file took 6 GB)."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    finally:
        os.close(fd)


def unfinished_command(path: str | Path) -> str:
    """The command whose job left ``path`` unfinished, from the note in its lock file (a job killed, failed
    or interrupted with its resume journal left keeps it): `` `mmdata shard` `` or `` `mmdata augment` ``;
    both when there is no note (a folder copied without its hidden files)."""
    from mmdata.shards.journal import LOCK

    try:
        note = "" if _remote(path) else _lock_note(Path(path) / LOCK)
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


def source_keys_digest(keys: list[Any], source_keys: list[Any]) -> str:
    """The digest of the index's ``key`` -> ``source_key`` pairs the card records (``source_keys_sha256``):
    sha256 of ``key NUL source_key LF`` per row, sorted by key, so an edited ``source_key`` fails verify.

    Example:
        >>> source_keys_digest(["b", "a"], ["B", "A"]) == source_keys_digest(["a", "b"], ["A", "B"])
        True
    """
    import hashlib

    h = hashlib.sha256()
    for k, sk in sorted(zip(map(str, keys), map(str, source_keys))):
        h.update(f"{k}\0{sk}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def fingerprint(sha256s: list[Any]) -> str:
    """A dataset's fingerprint as ``mmdata shard`` writes it in the card: sha256 of its shards' sha256
    (hex), in the order of ``shards.parquet``.

    Example:
        >>> import hashlib; fingerprint(["ab", "cd"]) == hashlib.sha256(b"abcd").hexdigest()
        True
    """
    import hashlib

    return hashlib.sha256("".join(str(s) for s in sha256s).encode()).hexdigest()


#: the card entry that records a digest of each of the card's other entries: ``mmdata verify`` names an entry
#: edited, added or removed since the job wrote the card (cards written before 2026-12-06 have none)
CARD_DIGESTS = "card_digests"
#: card entries ``card_digests`` leaves out: the digests themselves; those ``mmdata verify`` checks whole against
#: the index and the shards table (an edit is named once, by what disagrees): ``splits`` (samples and shards per
#: split), ``counts`` (samples, per class, patterns), ``fingerprint``, ``source_keys_sha256``; and those
#: ``mmdata add-modality`` rewrites when it adds a series: ``fields``, ``modalities`` (their counts are checked
#: against the index). The left-out entries (``skipped*``) are digested: add-modality refreshes theirs
#: (:func:`refresh_digests`) — an emptied ``skipped`` list hid a job's losses from verify (QA27)
UNDIGESTED = (CARD_DIGESTS, "splits", "counts", "fingerprint", "source_keys_sha256", "fields", "modalities")


def _entry_digest(value: Any) -> str:
    """sha256 (16 hex digits) of one card entry as canonical JSON (sorted keys, text as :func:`card_bytes`
    writes it): the same entry read back from ``dataset.json`` gives the same digest."""
    import hashlib

    text = json.dumps(_as_text(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def card_digests(card: dict[str, Any]) -> dict[str, str]:
    """A digest of each entry of ``card`` but those of :data:`UNDIGESTED`, by entry name: what a job that writes a
    card records under :data:`CARD_DIGESTS` as its last step (``card[CARD_DIGESTS] = card_digests(card)``), and
    ``mmdata verify`` recomputes, so an edited ``label_names``, ``license``, ``description``, ``options`` or
    ``augmentation`` fails verify, named. It detects edits, not forgery: whoever edits the card can recompute
    the digests too.

    Example:
        >>> d = card_digests({"license": "CC-BY-4.0", "label_names": ["cat", "dog"], "fingerprint": "ab"})
        >>> sorted(d), d == card_digests({"label_names": ["cat", "dog"], "license": "CC-BY-4.0"})
        (['label_names', 'license'], True)
    """
    return {str(k): _entry_digest(v) for k, v in sorted(card.items(), key=lambda kv: str(kv[0]))
            if k not in UNDIGESTED}


def refresh_digests(card: dict[str, Any], entries: Sequence[str]) -> None:
    """Record the digests of ``entries`` anew in a card that has :data:`CARD_DIGESTS` (a job that rewrites
    those entries of an existing card: add-modality's ``skipped``); the other entries keep the digests the
    card was written with, so an earlier edit of them is still named. A card without digests stays without.

    Example:
        >>> c = {"skipped": [], "license": "x"}; c[CARD_DIGESTS] = card_digests(c)
        >>> c["skipped"] = [{"what": "file"}]; refresh_digests(c, ["skipped"]); c[CARD_DIGESTS] == card_digests(c)
        True
    """
    digests = card.get(CARD_DIGESTS)
    if not isinstance(digests, dict):
        return
    for k in entries:
        if k in card:
            digests[k] = _entry_digest(card[k])
        else:
            digests.pop(k, None)


def card_bytes(card: dict[str, Any]) -> bytes:
    """``dataset.json`` as written (sorted keys: the same card gives the same bytes). A string that is no
    text — a folder or file name of bytes that are not UTF-8, which Python holds as lone surrogates — is
    written with U+FFFD where its bad bytes were (QA: an OUT named ``odd\\xff name`` crashed the job at its end).

    Example:
        >>> import os
        >>> card_bytes({"name": os.fsdecode(b"odd\\xff name")}).decode()
        '{\\n  "name": "odd\ufffd name"\\n}\\n'
    """
    text = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        return (json.dumps(_as_text(card), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _as_text(value: Any) -> Any:
    """``value`` with every string made encodable: bytes a name held (surrogate escapes) decoded with U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape" if _escapes_only(value) else "replace").decode("utf-8",
                                                                                                          "replace")
        return value
    if isinstance(value, dict):
        return {_as_text(k): _as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_text(v) for v in value]
    return value


def _escapes_only(text: str) -> bool:
    """Whether every lone surrogate of ``text`` is a surrogate escape of a byte (U+DC80..U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


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
             "list<string>": pa.list_(pa.string()), "list<int64>": pa.list_(pa.int64()),
             "list<struct<field: string, height: int64, width: int64>>": pa.list_(pa.struct(
                 [("field", pa.string()), ("height", pa.int64()), ("width", pa.int64())]))}
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
    kind = not_regular(p)
    if kind is not None:  # a FIFO would block the open, a device read forever
        raise ShardError(f"{p}: {kind}, not a regular file; expected a Parquet file")
    if not p.is_file():
        raise ShardError(f"{path}: no {name}")
    return parquet_source(p)


def parquet_source(p: Path) -> Any:
    """What ``pyarrow.parquet`` opens for the local file ``p``: the path, or its bytes when the path is not
    UTF-8 (a folder name of other bytes, held as surrogate escapes: pyarrow takes UTF-8 paths only)."""
    try:
        str(p).encode()
    except UnicodeEncodeError:
        import pyarrow as pa

        return pa.BufferReader(p.read_bytes())
    return p


def _type_ok(t: Any, want: str) -> bool:
    """Whether a column of Arrow type ``t`` can be read as ``want`` (a type of :data:`INDEX_SCHEMA_FIELDS`):
    a file written by another tool may use other integer widths, large strings or dictionary encoding;
    anything else breaks the readers."""
    import pyarrow as pa

    if pa.types.is_null(t):
        return True  # every value null: the column is as good as absent (optional columns)
    if pa.types.is_dictionary(t):
        t = t.value_type
    if want == "string":
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t))
    if want == "int64":
        return bool(pa.types.is_integer(t))
    if want == "float64":
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))
    if want.startswith("list<"):
        return bool((pa.types.is_list(t) or pa.types.is_large_list(t)) and _type_ok(t.value_type, want[5:-1]))
    if want.startswith("struct<"):
        need = dict(f.split(": ") for f in want[7:-1].split(", "))
        return bool(pa.types.is_struct(t) and all(t.get_field_index(f) >= 0 and _type_ok(t.field(f).type, w)
                                                  for f, w in need.items()))
    return True


#: columns every row needs (a null type is no use there)
_NEEDED = frozenset({"key", "split", "shard", "members", "sizes", "sha256"})
SHARDS_SCHEMA_FIELDS = (("shard", "string"), ("split", "string"), ("modality", "string"), ("sha256", "string"),
                        ("members", "int64"), ("samples", "int64"), ("bytes", "int64"))
#: rows beyond twice what the card lists that ``mmdata verify`` still reads to report edits row by row
ROW_SLACK = 1000


def _read_parquet(path: str | Path, name: str, storage_options: dict[str, Any] | None,
                  columns: list[str] | None = None, require: Sequence[str] = (),
                  types: Sequence[tuple[str, str]] = (), max_rows: tuple[int, str] | None = None,
                  exact_rows: tuple[int, str] | None = None, **kw: Any) -> Any:
    """The Parquet file ``name`` of a dataset folder as a pyarrow Table (all columns unless ``columns``);
    a ShardError naming the file when it is absent, not a regular file, is not Parquet (garbage,
    truncated), lacks one of ``columns`` or ``require``, holds a column of ``types`` read here with
    another type, or — from its metadata, before any row is read — holds more rows than ``max_rows``
    or other than ``exact_rows`` (``(count, what says so)``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = _parquet(path, name, storage_options)
    where = f"{str(path).rstrip('/')}/{name}"
    try:
        # one file: ParquetFile skips the dataset discovery of read_table (a fixed ~0.5 ms per open)
        dictionary = kw.pop("read_dictionary", None)
        try:
            pf = pq.ParquetFile(src, read_dictionary=dictionary)
        except KeyError:  # pyarrow's KeyError b'split': a read_dictionary column the file lacks, named below
            pf = pq.ParquetFile(src)
        schema = pf.schema_arrow
        have = schema.names
        missing = [c for c in dict.fromkeys([*(columns or ()), *require, *(dictionary or ())]) if c not in have]
        if missing:
            raise ShardError(f"{where}: no column {missing[0]!r}" + (f" (nor {missing[1:]})" if missing[1:] else "")
                             + f"; it has {have}, expected the columns mmdata writes")
        read = set(have if columns is None else columns)
        for col, want in types:
            if col in read and col in have:
                t = schema.field(col).type
                if not _type_ok(t, want) or (col in _NEEDED and pa.types.is_null(t)):
                    raise ShardError(f"{where}: column {col!r} holds {t}, expected {want} (the type mmdata writes)")
        rows = pf.metadata.num_rows
        if exact_rows is not None and rows != exact_rows[0]:
            raise ShardError(f"{where}: holds {rows} rows, but {exact_rows[1]} (expected one row per sample: "
                             "the files are from different jobs, or one was edited; run `mmdata verify`)")
        if max_rows is not None and rows > max_rows[0]:
            raise ShardError(f"{where}: holds {rows} rows, far more than {max_rows[1]} (expected at most "
                             f"{max_rows[0]}); not read")
        return pf.read(columns=columns, **kw)
    except (pa.ArrowException, OSError) as exc:  # ArrowInvalid: not Parquet; OSError: truncated or unreadable
        raise ShardError(f"{where}: not a readable Parquet file: {exc}") from None


def _folder_card(path: str | Path, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The folder's card (its shard lists unchecked) when it has one, else None (an index on its own,
    as some tools write it, is read without the row-count check)."""
    if not _remote(path) and not os.path.lexists(Path(path) / CARD):
        return None
    if _remote(path) and not is_dataset(path, storage_options):
        return None
    return load_card(path, storage_options, shard_lists=False)


def load_index(path: str | Path, columns: list[str] | None = None, read_dictionary: list[str] | None = None,
               storage_options: dict[str, Any] | None = None, require: Sequence[str] = (), *,
               rows: str = "exact", card: dict[str, Any] | None = None) -> Any:
    """``index.parquet`` as a pyarrow Table (only ``columns`` when given: the reader needs five of them;
    ``read_dictionary`` columns come dictionary-encoded, as Parquet stores them; ``require``: columns
    that must be there when every column is read).

    Before any row is read, the file's row count (Parquet metadata) is compared with the samples the
    folder's card (``card``, else its ``dataset.json``; none: no check) lists: ``rows="exact"`` (the
    readers) refuses any difference; ``rows="bounded"`` (``mmdata verify``, which reports edited rows
    one by one) refuses only more than twice that plus :data:`ROW_SLACK` — a small file can hold
    millions of dictionary-encoded rows, which no reader should load.

    Raises:
        ShardError: naming the file when it is missing, not a regular file, not readable Parquet, lacks
            one of ``columns`` or ``require``, holds a column of another type than mmdata writes, or
            holds a number of rows the card does not allow (naming both counts).
    """
    card = card if card is not None else _folder_card(path, storage_options)
    limits: dict[str, Any] = {}
    if card is not None:
        n = card_samples(card)
        limits = ({"exact_rows": (n, f"{CARD} lists {n} samples")} if rows == "exact"
                  else {"max_rows": (2 * n + ROW_SLACK, f"the {n} samples {CARD} lists")})
    return _read_parquet(path, INDEX, storage_options, columns, require, types=INDEX_SCHEMA_FIELDS,
                         read_dictionary=read_dictionary, use_threads=False, **limits)


def load_shards_table(path: str | Path, storage_options: dict[str, Any] | None = None, *,
                      card: dict[str, Any] | None = None) -> Any:
    """``shards.parquet`` as a pyarrow Table.

    Raises:
        ShardError: naming the file when it is missing, not a regular file, not readable Parquet, lacks
            a column ``verify`` and ``inspect`` read (``shard``, ``split``, ``sha256``, ``members``,
            ``bytes``), holds one of another type than mmdata writes, or holds far more rows than the
            card (``card``, else the folder's ``dataset.json``) lists shards (more than twice, plus
            :data:`ROW_SLACK`: verify reports a few repeated rows).
    """
    card = card if card is not None else _folder_card(path, storage_options)
    limits: dict[str, Any] = {}
    if card is not None:
        per = max(1, len(card.get("fields") or [])) if card.get("layout") == "columns" else 1
        listed = sum(len(e["shards"]) for e in card["splits"].values() if isinstance(e.get("shards"), list))
        limits = {"max_rows": (2 * listed * per + ROW_SLACK, f"the {listed * per} shards {CARD} lists")}
    return _read_parquet(path, SHARDS, storage_options, require=("shard", "split", "sha256", "members", "bytes"),
                         types=SHARDS_SCHEMA_FIELDS, **limits)


def shard_paths(path: str | Path, split: str) -> list[Path]:
    """Absolute shard paths of a split (samples layout), from the card, in order."""
    card = load_card(path)
    try:
        names = card["splits"][split]["shards"]
    except KeyError:
        raise ShardError(f"{path}: no split {split!r}; the card has {sorted(card.get('splits', {}))}") from None
    return [Path(path) / check_shard_name(path, n) for n in names]
