"""Reading column-layout datasets (one shard series per field, aligned by key), QA round: a modality
subset keeps what the whole read keeps at a cut series shard."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


def _keys(ds: object) -> list[str]:
    return [s.key for s in ds]  # type: ignore[attr-defined]


# -- a series shard cut right after a member, read with a modality subset ------------------------------------


@pytest.fixture()
def cut_text(tmp_path: Path) -> Path:
    """8 samples in one shard; the text series cut right after 000003.txt (000004 has no text)."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "ds", layout="columns", maxcount=8,
                 progress=False)
    p = tmp_path / "ds" / "text" / "train-000000.tar"
    with tarfile.open(p) as tf:
        ms = tf.getmembers()
    assert [m.name for m in ms[3:5]] == ["000003.txt", "000005.txt"]
    p.write_bytes(p.read_bytes()[: ms[4].offset])
    return tmp_path / "ds"


@pytest.mark.parametrize("modalities", [None, ["text"], ["label", "text"], ["text", "audio"]])
@pytest.mark.parametrize("decode", [True, False])
def test_a_subset_keeps_the_sample_cut_right_after_its_last_member(cut_text: Path, modalities: list[str] | None,
                                                                    decode: bool) -> None:
    ds = mmdata.open_dataset(cut_text, on_error="skip", modalities=modalities, decode=decode)
    assert _keys(ds) == ["000000", "000001", "000002", "000003", "000004"]
    assert ds.skipped == {"truncated or corrupt shard": 3}, ds.errors
