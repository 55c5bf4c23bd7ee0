"""Hostile tar shards for tests and bug reports: byte-level builders for the damage a reader meets.

Everything is built here, byte by byte, so a test can state exactly what is wrong with a shard
(a PAX record of length 0, a size field that is not octal, a name that is not UTF-8, a gzip bomb)
without depending on what :mod:`tarfile` is willing to write.

Example:
    >>> from mmdata.testing.hostile import member, end_of_archive, pax_member
    >>> good = member(b"k1.txt", b"hello") + member(b"k1.cls", b"1")
    >>> bad = pax_member(b"0 path=k2.txt\\n", b"k2.txt", b"boom")
    >>> shard = good + bad + end_of_archive()
    >>> len(shard) % 512
    0
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable

BLOCK = 512


def pad(data: bytes) -> bytes:
    """``data`` followed by NULs up to the next 512-byte block."""
    return data + bytes((-len(data)) % BLOCK)


def ustar_header(name: bytes, size: int, *, kind: bytes = b"0", size_field: bytes | None = None,
                 checksum: bool = True, prefix: bytes = b"") -> bytes:
    """One 512-byte ustar header. ``size_field`` replaces the 12 size bytes verbatim (e.g. not octal);
    ``checksum=False`` leaves a wrong checksum. Names are raw bytes (may be non-UTF-8)."""
    h = bytearray(BLOCK)
    h[: len(name[:100])] = name[:100]
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[257:265] = b"ustar\x0000"
    h[345 : 345 + len(prefix)] = prefix
    h[148:156] = b" " * 8
    chk = sum(h) + (0 if checksum else 1)
    h[148:156] = b"%06o\0 " % chk
    return bytes(h)


def member(name: bytes, data: bytes, **header_kw: object) -> bytes:
    """Header + data padded to blocks (``header_kw`` as :func:`ustar_header`)."""
    return ustar_header(name, len(data), **header_kw) + pad(data)  # type: ignore[arg-type]


def pax_record(key: bytes, value: bytes) -> bytes:
    """One well-formed PAX record ``b"%d key=value\\n"`` (its length counts its own digits)."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def pax_member(records: bytes, name: bytes, data: bytes) -> bytes:
    """A PAX extended header with the raw ``records`` bytes, then the member it describes."""
    return member(b"././@PaxHeader", records, kind=b"x") + member(name, data)


def gnu_longname_member(long_name: bytes, data: bytes, short: bytes = b"././@LongLink") -> bytes:
    """A GNU ``L`` long-name record, then the member (its ustar name field holds ``short``)."""
    return member(b"././@LongLink", long_name + b"\0", kind=b"L") + member(short[:99], data)


def end_of_archive() -> bytes:
    """Two zero blocks."""
    return bytes(2 * BLOCK)


def tar_of(samples: Iterable[tuple[str, dict[str, bytes]]]) -> bytes:
    """A clean tar of ``(key, {ext: data})`` samples, members in the given order."""
    out = [member(f"{k}.{e}".encode(), d) for k, members in samples for e, d in members.items()]
    return b"".join(out) + end_of_archive()


def gzip_of(data: bytes) -> bytes:
    """``data`` gzip-compressed with a fixed mtime (deterministic bytes)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def gzip_bomb(name: bytes = b"bomb.txt", size: int = 2 << 30, present: int | None = None) -> bytes:
    """A ``.tar.gz`` whose one member declares ``size`` bytes and holds ``present`` (default: all) zero
    bytes, then the end of the archive when complete. Built from one compressed MiB of zeros repeated
    as gzip members (a valid multi-member gzip), so making it costs neither time nor memory;
    ~1000:1 compression.
    """
    present = size if present is None else present
    mib = 1 << 20
    one = gzip_of(bytes(mib))
    body = [gzip_of(ustar_header(name, size)), one * (present // mib)]
    if present % mib:
        body.append(gzip_of(bytes(present % mib)))
    if present >= size:
        body.append(gzip_of(bytes((-size) % BLOCK) + end_of_archive()))
    return b"".join(body)


def flip_bit(data: bytes, offset: int, bit: int = 0) -> bytes:
    """``data`` with one bit flipped at ``offset``."""
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def header_offsets(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, name) of every ustar header of a clean tar (to aim damage at a member)."""
    out = []
    pos = 0
    while pos + BLOCK <= len(data):
        h = data[pos : pos + BLOCK]
        if h == bytes(BLOCK):
            break
        size = int(h[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        out.append((pos, h[:100].split(b"\0", 1)[0]))
        pos += BLOCK + size + (-size) % BLOCK
    return out
