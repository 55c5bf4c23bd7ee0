"""A plain DataLoader batch with no audio at all (distributed QA): the README's snippet read
``batch.present["audio"]``, and ``collate_fn=mmdata.collate`` had no such mask in a batch none of whose
samples had audio (a shard of clips without it; one rank's batch under DDP) — ``KeyError: 'audio'``.
``ds.collate_fn`` is ``mmdata.collate`` with the dataset's fields, in DataLoader workers too."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.testing import make_sample_folder


@pytest.mark.parametrize("workers", [0, 2])
def test_every_batch_has_every_modalitys_mask(tmp_path: Path, workers: int) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8, missing=False)
    for f in sorted(raw.glob("*.flac"))[:4]:  # the first shard's samples have no audio
        f.unlink()
    mmdata.shard(raw, tmp_path / "ds", split={"train": 1.0}, maxcount=4, progress=False)
    ds = mmdata.open_dataset(tmp_path / "ds")
    batches = list(DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=ds.collate_fn))
    assert [b.present["audio"].tolist() for b in batches] == [[False] * 4, [True] * 4]
    assert all(b.present["image"].all() and b["label"].shape == (4,) for b in batches)
    plain = list(DataLoader(ds, batch_size=4, collate_fn=mmdata.collate))
    assert "audio" not in plain[0].present  # what plain collate cannot know: the dataset's fields


def test_a_blends_collate_fn_has_every_datasets_fields(tmp_path: Path) -> None:
    """QA on the fix: a blend had no ``collate_fn`` (its batches without audio had no mask either)."""
    with_audio = make_sample_folder(tmp_path / "a", n=4, missing=False)
    without = make_sample_folder(tmp_path / "b", n=4, missing=False)
    for f in without.glob("*.flac"):
        f.unlink()
    for name, raw in (("a", with_audio), ("b", without)):
        mmdata.shard(raw, tmp_path / f"ds_{name}", split={"train": 1.0}, progress=False)
    blend = mmdata.blend({"a": tmp_path / "ds_a", "b": tmp_path / "ds_b"})
    batches = list(DataLoader(blend, batch_size=1, collate_fn=blend.collate_fn))
    assert len(batches) == 8 and all("audio" in b.present for b in batches)
    assert sorted(bool(b.present["audio"][0]) for b in batches) == [False] * 4 + [True] * 4
