"""Tar members that are not regular files — hard and symbolic links, devices, FIFOs, GNU sparse files,
unknown types — were passed over in silence in bare shards, as webdataset does: a sample made by GNU tar
with a file seen twice (stored as a hard link) lost its image with nothing counted (QA 2026-12-03).
Each now reports its sample (`unsupported member type`, naming the member and what it is); directories
stay silent."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.tario import UNSUPPORTED, count_members
from mmdata.testing import image_bytes


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_a_hard_link_made_by_gnu_tar_reports_its_sample(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(image_bytes(0))
    (src / "a.txt").write_text("a")
    os.link(src / "a.png", src / "b.png")  # the same file under two names: GNU tar stores the second as a link
    (src / "b.txt").write_text("b")
    (src / "sub").mkdir()  # a directory member: no sample data, no word
    os.symlink("a.txt", src / "c.txt")
    shard = tmp_path / "h.tar"
    subprocess.run(["tar", "cf", str(shard), "a.png", "a.txt", "b.png", "b.txt", "sub", "c.txt"], cwd=src, check=True)
    ds = mmdata.open_dataset(shard, on_error="skip")
    assert [(s.key, sorted(s.keys())) for s in ds] == [("a", ["image", "text"])]
    assert ds.skipped == {UNSUPPORTED: 2}
    messages = [m for _, _, m in ds.errors]
    assert any("'b.png' is a hard link to 'a.png'" in m and "--hard-dereference" in m for m in messages), messages
    assert any("'c.txt' is a symbolic link to 'a.txt'" in m for m in messages), messages
    with pytest.raises(mmdata.MMDataError, match=r"h\.tar.*'b.png' is a hard link"):
        list(mmdata.open_dataset(shard))
    n, problems = count_members(str(shard))  # what verify reads
    assert len(problems) == 2 and all("mmdata reads regular files only" in p for p in problems)


@pytest.mark.parametrize("kind,what", [(b"S", "a GNU sparse file"), (b"Z", "of tar type 'Z'"), (tarfile.FIFOTYPE, "a FIFO"),
                                       (tarfile.CHRTYPE, "a character device")])
def test_sparse_unknown_and_special_members_report_their_sample(tmp_path: Path, kind: bytes, what: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, typ in (("k0.txt", b"zero", tarfile.REGTYPE), ("k1.txt", b"one", tarfile.REGTYPE),
                                ("k1.png", image_bytes(1) if kind in (b"S", b"Z") else b"", kind),
                                ("k2.txt", b"two", tarfile.REGTYPE), ("odd", b"", kind)):
            info = tarfile.TarInfo(name)
            info.type = typ
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    shard = tmp_path / "t.tar"
    shard.write_bytes(buf.getvalue())
    ds = mmdata.open_dataset(shard, on_error="skip")
    assert [s.key for s in ds] == ["k0", "k2"]  # k1 reported, and the stream stays in step after the member's data
    assert ds.skipped == {UNSUPPORTED: 2}  # k1, and the member named like no sample
    assert any(f"'k1.png' is {what}" in m for _, _, m in ds.errors), ds.errors
