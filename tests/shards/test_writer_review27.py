"""QA27 G2 review findings in the writer: case twins and the split of the other samples (G2-1), the case-twin
warnings when the source gives the splits (G2-3), duplicates across splits confirmed by sha256 (G2-2), ``git
status`` without optional locks (G2-4)."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.sources import Record
from mmdata.shards.writer import assign_splits, duplicates_across_splits, duplicates_warning

FRACTIONS = {"train": 0.8, "test": 0.2}


def _records(extra: list[str]) -> list[Record]:
    recs = [Record(f"k{i}", f"k{i}", {"txt": f"caption {i}".encode()}, label=i % 4) for i in range(100)]
    return recs + [Record(k, k, {"txt": k.encode()}, label=0) for k in extra]


def test_one_case_twin_pair_leaves_every_other_split_as_without_it() -> None:
    """One ``X`` / ``x`` pair sent the whole dataset through the grouped split: every other sample moved."""
    twins, plain = _records(["X", "x"]), _records(["X", "y"])  # same labels, same places: only the case twin differs
    warnings = assign_splits(twins, FRACTIONS, seed=0)
    assert assign_splits(plain, FRACTIONS, seed=0) == []
    assert [r.split for r in twins[:100]] == [r.split for r in plain[:100]]
    assert twins[100].split == twins[101].split == plain[100].split  # the twin follows its first record
    assert len(warnings) == 1 and "differ only in case" in warnings[0] and "one split together" in warnings[0]


def test_case_twins_with_real_groups_still_go_to_one_split() -> None:
    recs = _records(["X", "x"])
    for r in recs[:10]:
        r.group = "spk0"
    assign_splits(recs, FRACTIONS, seed=1)
    assert len({r.split for r in recs[:10]}) == 1
    assert recs[100].split == recs[101].split


def test_case_twin_warning_when_the_source_gives_them_other_splits() -> None:
    """``A`` in train and ``a`` in test stay there: the warnings say so, in the singular for one of each."""
    recs = [Record("A_1", "A", {"png": b"\x89PNG"}, split="train"), Record("a_2", "a", {"txt": b"a cat"}, split="test")]
    warnings = assign_splits(recs, None, seed=0)
    assert [r.split for r in recs] == ["train", "test"]
    twin = next(w for w in warnings if "differ only in case" in w)
    assert "went to one split together" not in twin
    assert "'A' (train) and 'a' (test)" in twin and "stay in them, so one item is in two splits" in twin
    assert "1 image (or audio file) and 1 caption among them was not paired" in twin
    pinned = next(w for w in warnings if "several splits" in w)
    assert "naming one file" not in pinned and "the samples whose names differ only in case ('A', 'a')" in pinned


def test_case_twin_warning_counts_sets_together_and_apart() -> None:
    recs = [Record("A", "A", {"txt": b"1"}, split="train"), Record("a", "a", {"txt": b"2"}, split="test"),
            Record("B", "B", {"txt": b"3"}), Record("b", "b", {"txt": b"4"})]
    warnings = assign_splits(recs, None, seed=0)
    twin = next(w for w in warnings if "differ only in case" in w)
    assert "4 samples in 2 sets" in twin and "1 set went to one split together" in twin
    assert "the other 1 (e.g. the ones shown)" in twin
    assert recs[2].split == recs[3].split == "train"


# ---- G2-2: duplicates across splits are confirmed by sha256, not by a 32-bit CRC ----------------------------
def _wav(spliced: bytes) -> bytes:
    """A real 16-bit WAV whose samples hold ``spliced`` at one place (b"plumless" / b"buckeroo": one CRC-32)."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(800, dtype=np.int16), 8000, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    data[100:108] = spliced
    return bytes(data)


def _split_folders(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_a_crc32_collision_across_splits_is_no_duplicate(tmp_path: Path) -> None:
    a, b = _wav(b"plumless"), _wav(b"buckeroo")
    assert len(a) == len(b) and zlib.crc32(a) == zlib.crc32(b) and a != b
    src = _split_folders(tmp_path / "src", {"train/speech/a.wav": a, "test/speech/b.wav": b})
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["splits"] == {"train": 1, "test": 1}
    assert idx.load_card(tmp_path / "ds")["duplicates"] == {"across_splits": 0, "samples": 0, "examples": []}
    assert not [w for w in rep["warnings"] if "same image or audio bytes" in w]


@pytest.mark.parametrize("layout", ["samples", "columns"])
def test_true_duplicates_across_splits_are_confirmed_by_sha256(tmp_path: Path, layout: str) -> None:
    a = _wav(b"plumless")
    src = _split_folders(tmp_path / "src", {"train/speech/a.wav": a, "test/speech/b.wav": a,
                                            "test/speech/c.wav": _wav(b"buckeroo")})
    rep = mmdata.shard(src, tmp_path / "ds", layout=layout, progress=False)
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 1 and dup["samples"] == 2 and dup["compared"] == "sha256"
    assert sorted(split for _, split in dup["examples"][0]) == ["test", "train"]
    said = [w for w in rep["warnings"] if "same image or audio bytes" in w]
    assert len(said) == 1 and "2 samples in 1 set" in said[0] and "confirmed by sha256" in said[0]


def test_unconfirmed_duplicates_are_worded_as_likely() -> None:
    rows = pa.table({"key": ["a", "b"], "split": ["train", "test"], "shard": ["t", "u"], "members": [["a.wav"], ["b.wav"]],
                     "sizes": [[5], [5]], "member_crc32": [[7], [7]]})
    found = duplicates_across_splits(rows)  # nothing to read the members back from
    assert found["compared"] == "size and CRC-32"
    assert "same size and CRC-32: very likely the same bytes" in duplicates_warning(found)[0]


# ---- G2-4: the card's git status takes no lock on the user's index -------------------------------------------
def _stale_checkout(root: Path) -> Path:
    """A git checkout whose index has stale stat data for mmdata/x.py (a plain ``git status`` rewrites it)."""
    (root / "mmdata").mkdir(parents=True)
    (root / "mmdata" / "x.py").write_text("a = 1\n", encoding="utf-8")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=root, check=True, env=env, capture_output=True)
    st = (root / "mmdata" / "x.py").stat()
    os.utime(root / "mmdata" / "x.py", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, new stamp
    return root / ".git" / "index"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_code_card_and_ablation_git_status_leave_the_index_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata import recipes_path
    from mmdata.ablate import runner
    from mmdata.shards.writer import code_card

    index = _stale_checkout(tmp_path)
    before = index.read_bytes()
    monkeypatch.setattr(recipes_path, "checkout_root", lambda: tmp_path)
    monkeypatch.setattr(recipes_path, "git_revision", lambda: "0" * 40)
    assert code_card.__wrapped__()["git_dirty"] is False
    assert runner._git_dirty() is False
    assert index.read_bytes() == before  # a plain `git status` rewrote it, under .git/index.lock
