"""Reading YAML that is untrusted input: augmentation recipes, ablation recipes and the recipe files an
ablation recipe names. Every loader reads through here, so each gets the same protections:

* the file is looked at before it is opened: a folder, a FIFO, a device or a socket is named as such
  (opening a FIFO blocks until a writer comes, ``/dev/zero`` reads forever), and a file over
  :data:`MAX_BYTES` is refused before a byte of it is parsed (PyYAML takes seconds per megabyte);
* UTF-8 text only (a byte order mark is fine);
* ``yaml.SafeLoader`` (no python tags) that refuses a key given twice in one mapping, which plain YAML
  silently resolves to the last value;
* nesting too deep for the parser is an error, not a ``RecursionError``;
* at most :data:`MAX_VALUES` values once YAML aliases are expanded (an alias bomb: a few hundred bytes
  of nested ``*aliases`` expand to millions of values), counted while parsing and after.

Errors are of the class the caller passes (``RecipeError`` by default) and start with the caller's
``where``. ``quote=False`` reads a file whose contents must not be echoed (a file an ablation recipe
names may be anyone's): its errors say the line, never the text or a key found there.

Example:
    >>> parse("image: [{op: hflip, p: 0.5}]", "recipe")
    {'image': [{'op': 'hflip', 'p': 0.5}]}
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mmdata.errors import RecipeError

#: bytes a recipe file may have: a recipe is a page of YAML, a resolved ablation config of hundreds of
#: arms a few hundred kB; 12 MB of steps took over a minute and 2 GB to parse before the value cap
MAX_BYTES = 4 * 1024 * 1024
#: values a recipe may hold once YAML aliases are expanded (far above any real recipe)
MAX_VALUES = 100_000


class _TooMany(Exception):
    """Raised by the loader while parsing: more values than the cap (the message is the caller's)."""


class _Duplicate(Exception):
    """Raised by the loader: a key given twice in one mapping (``key``: None when not to be quoted)."""

    def __init__(self, key: Any, line: int) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


class Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader that refuses a key given twice in one mapping and stops composing at
    ``max_values`` values (mapping keys not counted, an alias counted once: a lower bound of the expanded
    count :func:`check_size` checks after). Keys merged in with ``<<: *anchor`` may still be overridden."""

    def __init__(self, text: str, max_values: int = MAX_VALUES) -> None:
        super().__init__(text)
        self.max_values, self.values = max_values, 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if not (isinstance(parent, yaml.MappingNode) and index is None):  # a mapping's key is composed with index None
            self.values += 1
            if self.values > self.max_values:
                raise _TooMany
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise _Duplicate(key, key_node.start_mark.line + 1)
                seen.add(key)
        return super().construct_mapping(node, deep)


def problem(exc: yaml.YAMLError, quote: bool = True) -> str:
    """Where and what a PyYAML error is, on one line: ``line L, column C: problem (context at line M)``
    (1-based, as editors count); ``quote=False``: only ``line L`` (the problem may quote the text).

    Example:
        >>> try:
        ...     yaml.safe_load("a: [1")
        ... except yaml.YAMLError as exc:
        ...     problem(exc, quote=False)
        'line 1'
    """
    mark = getattr(exc, "problem_mark", None)
    if not quote:
        return f"line {mark.line + 1}" if mark is not None else "no line known"
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    extra = f" ({context} at line {cmark.line + 1})" if context and cmark is not None else ""
    return f"{where}{what}{extra}"[:300]


def _too_many(where: str, max_values: int) -> str:
    return (f"{where}: more than {max_values} values once YAML aliases are expanded (each *alias counts as a full copy "
            "of its &anchor); anchors may reuse a block, not multiply a recipe")


def count(data: Any, cap: int = MAX_VALUES) -> int:
    """The values in ``data`` as a consumer sees them (a shared list counted at each place it is used;
    mapping keys not counted), counting stopped at ``cap`` + 1.

    Example:
        >>> count({"image": [{"op": "hflip"}] * 10})
        22
    """
    todo, n = [data], 0
    while todo and n <= cap:
        x = todo.pop()
        n += 1
        if isinstance(x, Mapping):
            todo.extend(x.values())
        elif isinstance(x, (list, tuple)):
            todo.extend(x)
    return n


def check_size(data: Any, where: str, error: type[Exception] = RecipeError, max_values: int = MAX_VALUES) -> None:
    """At most ``max_values`` values once aliases are expanded (:func:`count`): a YAML alias is a full copy
    of its anchor, so a few hundred bytes of nested aliases can expand to millions of values (an alias
    bomb) — and ``json.dumps`` of them to gigabytes.

    Example:
        >>> check_size({"image": [{"op": "hflip"}] * 10}, "recipe")
    """
    if count(data, max_values) > max_values:
        raise error(_too_many(where, max_values))


def parse(text: str, where: str, error: type[Exception] = RecipeError, *, quote: bool = True, too_deep: str = "",
          max_values: int = MAX_VALUES) -> Any:
    """The YAML ``text`` (see the module docstring); errors start with ``where``.

    Args:
        text: the YAML.
        where: what the text is, for errors (``recipe r.yaml``, ``ablation recipe abl.yaml``).
        error: the exception class raised.
        quote: say what the YAML error is and which key is duplicated (False: only the line).
        too_deep: appended to the nesting error (what nests how deep in this kind of file).
        max_values: the value cap (:func:`check_size`).

    Example:
        >>> parse("p: 0.5\\np: 0.9", "recipe")
        Traceback (most recent call last):
        ...
        mmdata.errors.RecipeError: recipe: duplicate key 'p' on line 2; YAML would keep only the last one
    """
    try:
        loader = Loader(text, max_values)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _Duplicate as exc:
        key = f" {exc.key!r}" if quote else ""
        raise error(f"{where}: duplicate key{key} on line {exc.line}; YAML would keep only the last one") from None
    except _TooMany:
        raise error(_too_many(where, max_values)) from None
    except yaml.YAMLError as exc:
        raise error(f"{where}: invalid YAML ({problem(exc, quote)})") from None
    except RecursionError:
        raise error(f"{where}: nested too deeply for the YAML parser{too_deep}") from None
    check_size(data, where, error, max_values)
    return data


def check_bytes(raw: bytes, where: str, error: type[Exception] = RecipeError, max_bytes: int = MAX_BYTES) -> None:
    """Refuse more than ``max_bytes`` (before parsing: PyYAML needs seconds and far more memory per MB)."""
    if len(raw) > max_bytes:
        raise error(f"{where}: {len(raw)} bytes or more, over the {max_bytes // 2**20} MiB a recipe file may have "
                    "(refused unparsed: a recipe is a page or two of YAML)")


def read_bytes(path: str | Path, label: str, error: type[Exception] = RecipeError, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of the local file ``path``, looked at before it is opened (``label``: what it is, for
    errors: ``recipe``, ``ablation recipe``). A folder, FIFO, device or socket is refused by name, a
    missing file is "not found", and at most ``max_bytes`` + 1 bytes are ever read.

    Example:
        >>> read_bytes(".", "recipe")
        Traceback (most recent call last):
        ...
        mmdata.errors.RecipeError: recipe . is a folder, not a recipe file
    """
    from mmdata.shards.index import file_kind, not_regular

    if "\x00" in str(path):  # os.stat raises ValueError on it
        raise error(f"{label} {str(path)!r} is no file name (it holds a NUL byte)")
    kind = not_regular(path)
    if kind == "a folder":
        raise error(f"{label} {path} is a folder, not a recipe file")
    if kind is not None and kind.startswith("unreadable"):
        raise error(f"{label} {path}: {kind}")
    if kind is not None:
        raise error(f"{label} {path} is {kind}, not a regular file")
    try:  # O_NONBLOCK: a FIFO swapped in since the look above cannot block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{label} file {path} not found") from None
    except OSError as exc:
        raise error(f"{label} {path}: cannot read it ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):  # swapped in since the look above
            raise error(f"{label} {path} is {file_kind(mode)}, not a regular file")
        raw = f.read(max_bytes + 1)
    check_bytes(raw, f"{label} {path}", error, max_bytes)
    return raw


def decode(raw: bytes, said: str, error: type[Exception] = RecipeError, *, quote: bool = True) -> str:
    """``raw`` as UTF-8 text (a byte order mark is fine); else ``error(said + " (which byte); save it as
    UTF-8")``. ``quote=False`` names the offset, not the byte.

    Example:
        >>> decode(b"\\xef\\xbb\\xbfseed: 1", "recipe r.yaml is not UTF-8 text")
        'seed: 1'
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            what = "UTF-16 (its byte order mark)"
        elif quote:
            what = f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
        else:
            what = f"the byte at offset {exc.start} is not UTF-8"
        raise error(f"{said} ({what}); save it as UTF-8") from None


__all__ = ["MAX_BYTES", "MAX_VALUES", "Loader", "check_bytes", "check_size", "count", "decode", "parse", "problem",
           "read_bytes"]
