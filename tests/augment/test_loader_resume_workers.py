"""Resume with DataLoader workers once a worker has run out.

The DataLoader takes its workers' batches in turn and passes over a worker that has run out; a resumed
loader inferred the worker to start with from ``batches % num_workers``, which names the wrong one after
that point (5 shards over 3 workers: 8, 8 and 4 samples; from batch 13 on the order differed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uneven")
    mmdata.shard(make_sample_folder(root / "raw", n=20), root / "ds", maxcount=4, progress=False)  # 5 shards of 4
    return root / "ds"


def _run(ds: Path, state: dict | None = None, **kw: object) -> tuple[list[list[str]], list[dict]]:
    loader = mmdata.loader(ds, kw.pop("batch_size", 1), num_workers=3, **kw)  # type: ignore[arg-type]
    if state is not None:
        loader.load_state_dict(state)
    keys, states = [], []
    for b in loader:
        keys.append(list(b.keys))
        states.append(loader.state_dict())
    return keys, states


@pytest.mark.parametrize("kw", [{"shuffle": False}, {"shuffle": True, "batch_size": 2, "seed": 3}])
def test_resume_after_a_worker_ran_out_gives_the_rest_in_order(uneven: Path, kw: dict) -> None:
    full, states = _run(uneven, **kw)
    assert sorted(k for b in full for k in b) == [f"{i:06d}" for i in range(20)]
    points = range(1, len(full)) if not kw["shuffle"] else range(len(full) - 4, len(full))
    for k in points:
        rest, _ = _run(uneven, states[k - 1], **kw)
        assert rest == full[k:], (k, states[k - 1])


def test_a_state_without_next_worker_still_resumes_while_no_worker_ran_out(uneven: Path) -> None:
    full, states = _run(uneven)
    old = {k: v for k, v in states[5].items() if k != "next_worker"}  # saved by an older mmdata
    assert _run(uneven, old)[0] == full[6:]
