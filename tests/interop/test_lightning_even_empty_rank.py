"""``even_batches="pad"`` where the ranks agree batch by batch (the index cannot fix the counts: here
``on_error="skip"``) and one rank gets no sample at all: that rank raised alone and the other waited in its
next all-reduce until the process group's timeout (half an hour by default). Now the empty rank says so in
the same reduction and every rank raises the same error, naming the split and the empty rank."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder
from tests.procs_helpers import rendezvous, spawn_ranks

pytest.importorskip("lightning.pytorch")


def _rank(rank: int, path: str, init_method: str, out: str) -> None:
    from mmdata.lightning import EvenLoader

    # a short timeout: before the fix rank 0 waited for it, and its error was gloo's, not mmdata's
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2,
                                         timeout=datetime.timedelta(seconds=20))
    try:
        even = EvenLoader(mmdata.loader(path, 2, seed=0, on_error="skip"), "pad")
        try:
            got = f"{len(list(even))} batches"
        except MMDataError as exc:
            got = f"MMDataError: {exc}"
        except Exception as exc:  # noqa: BLE001 — the old behaviour on rank 0: gloo's timeout
            got = f"{type(exc).__name__}: {exc}"
        Path(out, f"rank{rank}.json").write_text(json.dumps(got))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_pad_with_an_empty_rank_raises_on_every_rank(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=1, missing=False), data, split={"train": 1.0},
                 progress=False)  # one sample: rank 1 reads nothing
    spawn_ranks(_rank, args=(str(data), rendezvous(tmp_path), str(tmp_path)), timeout=120)
    got = [json.loads(Path(tmp_path, f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in (0, 1):
        assert got[r].startswith("MMDataError: split 'train': rank 1 gets no sample of epoch 0"), (r, got[r])
        assert "even_batches='drop'" in got[r]
