"""How a shuffled epoch deals shards out to readers (``world_size * num_workers``): which batch counts
every deal gives, so that a loader has a ``len()`` that holds in any epoch although its readers read
other shards each epoch (shards of one size and a short last one).

Used by :meth:`mmdata.augment.loader.Loader.__len__` (this process's batches) and the Lightning
DataModule's equal batch counts under DDP (:mod:`mmdata.interop.lightning`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence


def _picks(left: tuple[int, ...], m: int) -> Iterator[tuple[int, ...]]:
    """Every way to take ``m`` items from piles of ``left`` items: how many from each pile."""
    if not left:
        if m == 0:
            yield ()
        return
    for take in range(min(left[0], m) + 1):
        for rest in _picks(left[1:], m - take):
            yield (take, *rest)


def invariant_target(sizes: Sequence[int], slots: Sequence[int], workers: int, batch_size: int, drop_last: bool,
                     mode: str = "pad", budget: int = 50_000, rank: int | None = None) -> int | None:
    """The batches per epoch when they are the same for every way an epoch can deal shards of ``sizes``
    samples out to readers holding ``slots`` shards each (rank ``r``'s readers are ``r * workers ... (r +
    1) * workers - 1``, each batching its own samples): the Lightning DataModule's ``K`` under DDP (the
    largest rank's count with ``mode="pad"``, the smallest with ``"drop"``), or with ``rank`` that rank's own
    count (what a plain :func:`mmdata.loader` yields there). None when two deals give two values, or when
    telling would take more than ``budget`` steps (many different shard sizes). Every deal, not only those
    some epochs draw: a ``len()`` from it holds in any epoch.

    Example:
        >>> invariant_target([17] * 9 + [7], [5, 5], 1, 8, False, "pad")   # 85 or 75 samples a rank: 11 or 10
        11
        >>> invariant_target([17] * 9 + [7], [3, 3, 2, 2], 2, 8, False, "pad") is None   # 14 or 13 batches
        True
        >>> invariant_target([100] * 10 + [40], [6, 5], 2, 32, False, rank=0)   # 2 workers: 17 + 16 or 19 + 14
        33
    """
    def batches(count: int) -> int:
        return count // batch_size if drop_last else -(-count // batch_size)

    piles = sorted(Counter(sizes).items())
    values = [v for v, _ in piles]
    better = max if mode == "pad" else min
    found: set[int] = set()
    stack: list[tuple[int, tuple[int, ...], int, int | None]] = [(0, tuple(n for _, n in piles), 0, None)]
    seen = set(stack)
    steps = 0
    while stack:  # reader by reader: (next reader, shards left per size, its rank's batches so far, K so far)
        reader, left, rank_batches, k = stack.pop()
        if reader == len(slots):
            found.add(int(k or 0))
            if len(found) > 1:
                return None
            continue
        for take in _picks(left, slots[reader]):
            steps += 1
            if steps > budget:
                return None
            mine = rank_batches + batches(sum(t * v for t, v in zip(take, values)))
            nxt = (reader + 1, tuple(n - t for n, t in zip(left, take)), mine, k)
            if (reader + 1) % workers == 0:  # the rank's last reader: its count is known
                if rank is not None:
                    nxt = (reader + 1, nxt[1], 0, mine if reader // workers == rank else k)
                else:
                    nxt = (reader + 1, nxt[1], 0, mine if k is None else better(k, mine))
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return found.pop() if len(found) == 1 else None
