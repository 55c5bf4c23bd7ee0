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
