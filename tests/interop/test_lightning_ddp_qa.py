"""The DataModule under real 2-process DDP (CPU, gloo): defects a distributed QA pass found.

* ``even_batches="pad"`` where the index cannot fix the counts (``balance``): the ranks agreed batch by
  batch on "a rank still has a batch", which a padding rank always has, so an epoch ran for the least
  common multiple of the ranks' counts instead of the largest.

The fits reuse ``test_lightning_ddp``'s driver and runner (``_fit``: its own session, killed on timeout).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.test_lightning_ddp import _fit, _rank_epochs, _steps, ds  # noqa: F401 — ds: fixture

pl = pytest.importorskip("lightning.pytorch")

UNDER = {"by": "label", "mode": "under"}  # on ``ds``, batch 3: epoch 0 gives the ranks 4 / 4 batches, epoch 1 4 / 3


@pytest.mark.slow
def test_ddp_pad_with_balance_runs_the_largest_ranks_count(ds: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """K is the largest rank's count, not the least common multiple (4 / 3 batches: 4 steps, not 12);
    the short rank repeats its own first batches."""
    raw = [_rank_epochs(ds, monkeypatch, r, 2, even_batches=False, balance=UNDER)[0] for r in (0, 1)]
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert [len(raw[0][e]) for e in (0, 1)] != [len(raw[1][e]) for e in (0, 1)]  # the counts do differ
    proc, records = _fit(ds, tmp_path / "run", 0, "pad", "popen", {"balance": UNDER})
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    for epoch in (0, 1):
        k = max(len(raw[r][epoch]) for r in (0, 1))
        for r in (0, 1):
            steps, own = _steps(records[r], "train", epoch), raw[r][epoch]
            assert len(steps) == k, (epoch, r, len(steps), [len(raw[q][epoch]) for q in (0, 1)])
            assert steps == own + own[: k - len(own)]  # its own batches, then its first ones again
