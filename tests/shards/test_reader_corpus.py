"""Read-side bad-input corpus (issue #11): every kind ends in a ShardError naming the shard (raise) or a
count per sample lost (skip), and docs/bad-input-read.md shows the table this test computes.

Regenerate the doc table after a deliberate change: ``MMDATA_WRITE_DOCS=1 pytest tests/shards/test_reader_corpus.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import image_bytes, make_sample_folder
from mmdata.testing.hostile import (
    end_of_archive,
    flip_bit,
    gnu_longname_member,
    gzip_of,
    header_offsets,
    member,
    pax_member,
    pax_record,
    tar_of,
    ustar_header,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input-read.md"
BEGIN, END = "<!-- corpus-table:begin -->", "<!-- corpus-table:end -->"
KEYS = [f"k{i}" for i in range(6)]
UNKNOWN = -1  # samples lost cannot be known: a bare shard has no index


def _sample(i: int) -> bytes:
    return member(f"k{i}.txt".encode(), f"text {i}".encode()) + member(f"k{i}.cls".encode(), str(i % 3).encode())


def _around(bad: bytes) -> bytes:
    """k0, k1, the bad bytes in place of k2, k3..k5, end of archive."""
    return _sample(0) + _sample(1) + bad + b"".join(_sample(i) for i in range(3, 6)) + end_of_archive()


def _npy_object() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


@dataclass
class Kind:
    name: str
    what: str
    build: Callable[[Path, Path], Path]  # (tmp, clean dataset folder) -> path to open
    kept: list[str] | None  # keys a skip must yield (None: check the count only)
    lost: int  # samples lost (UNKNOWN: no index)
    kw: dict[str, Any] = field(default_factory=dict)


def _bare(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def build(tmp: Path, _: Path) -> Path:
        p = tmp / name
        p.write_bytes(data)
        return p
    return build


def _in_dataset(mutate: Callable[[Path], None], layout: str = "samples") -> Callable[[Path, Path], Path]:
    def build(tmp: Path, clean: Path) -> Path:
        ds = tmp / "ds"
        shutil.copytree(clean.parent / f"clean-{layout}", ds)
        mutate(ds)
        return ds
    return build


def _cut(at: Callable[[bytes], int], shard: str = "train-000000.tar") -> Callable[[Path], None]:
    def mutate(ds: Path) -> None:
        p = ds / shard
        data = p.read_bytes()
        p.write_bytes(data[: at(data)])
    return mutate


def _offset(data: bytes, prefix: bytes) -> int:
    return next(o for o, n in header_offsets(data) if n.startswith(prefix))


def _flip_header(ds: Path) -> None:
    p = ds / "train-000000.tar"
    data = p.read_bytes()
    p.write_bytes(flip_bit(data, _offset(data, b"000002.txt") + 3, 2))


def _swap_series(ds: Path) -> None:
    p = ds / "text" / "train-000000.tar"
    with tarfile.open(p) as tf:
        ms = [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]
    ms[1], ms[2] = ms[2], ms[1]
    p.write_bytes(tar_of([(n.split(".")[0], {n.split(".", 1)[1]: d}) for n, d in ms]))


def _drop_series_tail(ds: Path) -> None:
    p = ds / "image" / "train-000000.tar"
    with tarfile.open(p) as tf:
        ms = [(m.name, tf.extractfile(m).read()) for m in tf][:-1]  # type: ignore[union-attr]
    p.write_bytes(tar_of([(n.split(".")[0], {n.split(".", 1)[1]: d}) for n, d in ms]))


def _clean_gz_cut() -> bytes:
    return gzip_of(b"".join(_sample(i) for i in range(6)) + end_of_archive())[:-12]


WITHOUT_K2 = ["k0", "k1", "k3", "k4", "k5"]
DS8 = [f"{i:06d}" for i in range(8)]
KINDS = [
    Kind("pax-length-zero", "PAX record `0 path=...` (used to hang)",
         _bare("a.tar", _around(pax_member(b"0 path=k2.cls\n", b"k2.cls", b"2"))), WITHOUT_K2, 1),
    Kind("pax-length-not-a-number", "PAX record `xx path=...`",
         _bare("a.tar", _around(pax_member(b"xx path=k2.txt\n", b"k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("pax-length-past-the-end", "PAX record longer than its header",
         _bare("a.tar", _around(pax_member(b"99 path=k2.txt\n", b"k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("pax-path-not-utf8", "PAX path with a \\xff byte",
         _bare("a.tar", _around(pax_member(pax_record(b"path", b"k2\xff.txt"), b"k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("pax-size-not-a-number", "PAX size=`12x`",
         _bare("a.tar", _around(pax_member(pax_record(b"size", b"12x"), b"k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("gnu-long-name-not-utf8", "GNU `L` record with a \\xfe byte",
         _bare("a.tar", _around(gnu_longname_member(b"k2\xfe.txt", b"x"))), WITHOUT_K2, 1),
    Kind("member-name-not-utf8", "ustar name `k2\\xff.txt`", _bare("a.tar", _around(member(b"k2\xff.txt", b"x"))),
         WITHOUT_K2, 1),
    Kind("size-field-not-octal", "size field `zzzzzzzzzzz` with a valid checksum",
         _bare("a.tar", _around(ustar_header(b"k2.txt", 1, size_field=b"zzzzzzzzzzz\0") + bytes(512))), WITHOUT_K2, 1),
    Kind("header-checksum-mismatch", "one header with a wrong checksum",
         _bare("a.tar", _around(ustar_header(b"k2.txt", 1, checksum=False) + bytes(512))), WITHOUT_K2, 1),
    Kind("path-traversal", "member `../k2.txt`", _bare("a.tar", _around(member(b"../k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("absolute-path", "member `/etc/k2.txt`", _bare("a.tar", _around(member(b"/etc/k2.txt", b"x"))), WITHOUT_K2, 1),
    Kind("repeated-key-non-adjacent", "k0 appears again after k1",
         _bare("a.tar", _around(member(b"k0.json", b"{}"))), KEYS[:2] + KEYS[3:], 1),
    Kind("repeated-member", "k2.txt twice in one sample",
         _bare("a.tar", _around(member(b"k2.txt", b"a") + member(b"k2.txt", b"b"))), WITHOUT_K2, 1),
    Kind("member-too-large", "a 5,000-byte member, max_member_bytes=4096",
         _bare("a.tar", _around(member(b"k2.txt", b"y" * 5000))), WITHOUT_K2, 1, {"max_member_bytes": 4096}),
    Kind("pickle-member", "k2.pyd (a pickle)", _bare("a.tar", _around(member(b"k2.pyd", b"\x80\x04K\x01."))),
         WITHOUT_K2, 1),
    Kind("pickle-member-uppercase-raw", "k2.PTH with decode=False",
         _bare("a.tar", _around(member(b"k2.PTH", b"\x80\x04K\x01."))), WITHOUT_K2, 1, {"decode": False}),
    Kind("corrupt-image", "k2.png body is not a PNG", _bare("a.tar", _around(member(b"k2.png", b"\x89PNG broken"))),
         WITHOUT_K2, 1),
    Kind("corrupt-audio", "k2.flac body is not FLAC", _bare("a.tar", _around(member(b"k2.flac", b"fLaC nonsense"))),
         WITHOUT_K2, 1),
    Kind("text-not-utf8", "k2.txt = \\xff\\xfe", _bare("a.tar", _around(member(b"k2.txt", b"\xff\xfe"))), WITHOUT_K2, 1),
    Kind("label-not-integer", "k2.cls = `cat`", _bare("a.tar", _around(member(b"k2.cls", b"cat"))), WITHOUT_K2, 1),
    Kind("json-invalid", "k2.json = `{nope`", _bare("a.tar", _around(member(b"k2.json", b"{nope"))), WITHOUT_K2, 1),
    Kind("npy-object-array", "k2.x.npy holds a pickled object array", _bare("a.tar", _around(member(b"k2.x.npy", _npy_object()))),
         WITHOUT_K2, 1),
    Kind("required-modality-missing", "k2 has no label, required=['label']",
         _bare("a.tar", _around(member(b"k2.txt", b"no label"))), WITHOUT_K2, 1, {"required": ["label"]}),
    Kind("gzip-truncated", ".tar.gz without its last 12 bytes", _bare("a.tar.gz", _clean_gz_cut()), KEYS[:5], 1),
    Kind("dataset-shard-cut-mid-member", "a shard of a dataset folder cut inside its first sample",
         _in_dataset(_cut(lambda d: 1500)), DS8[4:], 4),
    Kind("dataset-shard-cut-at-boundary", "a shard cut right after a sample's last member",
         _in_dataset(_cut(lambda d: _offset(d, b"000002."))), DS8[:2] + DS8[4:], 2),
    Kind("dataset-shard-missing", "a shard listed in the index is not on disk",
         _in_dataset(lambda ds: (ds / "train-000000.tar").unlink()), DS8[4:], 4),
    Kind("dataset-shard-not-a-tar", "a shard overwritten with text",
         _in_dataset(lambda ds: (ds / "train-000000.tar").write_bytes(b"not a tar\n" * 300)), DS8[4:], 4),
    Kind("dataset-header-bit-flip", "one bit flipped in a header name (checksum fails)",
         _in_dataset(_flip_header), DS8[:2] + DS8[3:], 1),
    Kind("columns-series-out-of-order", "two samples swapped in the text series",
         _in_dataset(_swap_series, "columns"), None, 1),
    Kind("columns-series-cut-short", "the image series lacks its last sample",
         _in_dataset(_drop_series_tail, "columns"), DS8[:3] + DS8[4:], 1),
    Kind("two-codecs-one-field", "k2.png (garbage) beside a valid k2.jpg: two members give one field",
         _bare("a.tar", _around(member(b"k2.png", b"\x89PNG broken") + member(b"k2.jpg", image_bytes(2, fmt="jpg")))),
         WITHOUT_K2, 1),
    Kind("columns-series-shard-missing", "a series shard listed in the index is not on disk",
         _in_dataset(lambda ds: (ds / "image" / "train-000000.tar").unlink(), "columns"), DS8[4:], 4),
    Kind("not-a-tar", "a text file named .tar", _bare("a.tar", b"hello\n" * 200), [], UNKNOWN),
    Kind("empty-file", "a 0-byte .tar", _bare("a.tar", b""), [], UNKNOWN),
    Kind("gzip-corrupt", "a .tar.gz with a broken deflate stream", _bare("a.tar.gz", b"\x1f\x8b\x08\x00junk" + bytes(600)),
         [], UNKNOWN),
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    raw = make_sample_folder(root / "raw", n=8, missing=False)
    mmdata.shard(raw, root / "clean-samples", maxcount=4, progress=False)
    mmdata.shard(raw, root / "clean-columns", maxcount=4, layout="columns", progress=False)
    return root / "clean-samples"


def _outcome(kind: Kind, tmp: Path, clean: Path) -> dict[str, Any]:
    path = kind.build(tmp, clean)
    with pytest.raises(ShardError) as info:
        list(mmdata.open_dataset(path, **kind.kw))
    message = str(info.value)
    d = mmdata.open_dataset(path, on_error="skip", **kind.kw)
    keys = [s.key for s in d]
    return {"message": message, "path": path, "keys": keys, "skipped": dict(d.skipped)}


def test_corpus_has_at_least_20_read_side_kinds() -> None:
    assert len(KINDS) >= 20 and len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_each_kind_raises_naming_the_shard_or_counts_what_it_lost(tmp_path: Path, clean: Path, kind: Kind) -> None:
    out = _outcome(kind, tmp_path, clean)
    shard_names = {p.name for p in Path(out["path"]).rglob("*.tar")} | {Path(out["path"]).name, "train-000000.tar"}
    assert any(n in out["message"] for n in shard_names), out["message"]
    counted = sum(out["skipped"].values())
    if kind.lost == UNKNOWN:
        assert out["skipped"] == {"unreadable shard region": 1} and out["keys"] == []
    else:
        assert counted == kind.lost, out
        total = len(DS8) if kind.name.startswith(("dataset", "columns")) else len(KEYS)
        assert len(out["keys"]) + counted == total
    if kind.kept is not None:
        assert out["keys"] == kind.kept


def _table(clean: Path, tmp: Path) -> str:
    rows = ["| kind | damage | raise: message starts | skip: counted as | samples lost | counted |", "|---|---|---|---|---:|---:|"]
    for i, kind in enumerate(KINDS):
        sub = tmp / str(i)
        sub.mkdir()
        out = _outcome(kind, sub, clean)
        msg = out["message"].replace(str(sub) + "/", "").replace("|", "\\|")
        msg = (msg[:90] + "…") if len(msg) > 90 else msg
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(out["skipped"].items()))
        lost = "unknown (no index)" if kind.lost == UNKNOWN else str(kind.lost)
        rows.append(f"| {kind.name} | {kind.what} | `{msg}` | {reasons} | {lost} | {sum(out['skipped'].values())} |")
    return "\n".join(rows)


def test_doc_table_is_current(tmp_path: Path, clean: Path) -> None:
    table = _table(clean, tmp_path)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if os.environ.get("MMDATA_WRITE_DOCS") == "1":
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")
        text = DOC.read_text(encoding="utf-8")
    assert f"{BEGIN}\n{table}\n{END}" in text, (
        "docs/bad-input-read.md is stale; regenerate with MMDATA_WRITE_DOCS=1 pytest tests/shards/test_reader_corpus.py")


def test_the_readme_counts_the_corpus() -> None:
    """The README's count of bad-input kinds is this corpus's (QA: it said 34 of 36)."""
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"covered by a {len(KINDS)}-kind bad-input corpus" in readme
