"""The skip board shared with DataLoader workers, read while they post.

The loader reads a worker's slot (``state_dict``, ``errors``) while the worker, reading ahead, posts its
counts and errors again. A reader that met a post under way saw the slot as never posted — a resumed
blend loader with workers once lacked the details of the losses before the cut (the known limit of the
twenty-fifth session). These tests post from a real DataLoader worker as fast as it can and read at the
same time: every read must be one whole post, never "nothing" once something was posted.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from typing import Any

import pytest
from torch.utils.data import DataLoader, IterableDataset

from mmdata.shards.reader import SkipBoard


class _Posting(IterableDataset):  # type: ignore[type-arg]
    """A DataLoader worker that posts to the board as fast as it can until told to stop."""

    def __init__(self, board: SkipBoard, stop: Any) -> None:
        self.board, self.stop = board, stop

    def __iter__(self) -> Iterator[int]:
        self.board.stamp = 7
        i = 0
        while not self.stop.is_set():
            # bodies of changing lengths: a torn read would mix two of them
            n = 1 + i % 5
            self.board.post(0, {f"reason {j}": i for j in range(n)})
            self.board.post_errors(0, 3, [(j + 1, (f"s{i}.tar", f"{i:06d}-{j}", "x" * (i % 17))) for j in range(n)])
            if i == 0:
                yield 0  # the main process reads from now on
            i += 1


@pytest.mark.parametrize("shared", [True, False])
def test_a_slot_read_while_its_worker_posts_is_always_a_whole_post(shared: bool) -> None:
    board = SkipBoard(2, shared=shared)
    stop = mp.get_context("fork").Event()
    it = iter(DataLoader(_Posting(board, stop), batch_size=None, num_workers=1, multiprocessing_context="fork"))
    try:
        assert next(it) == 0
        seen_errors, seen_counts = set(), set()
        for _ in range(3000):
            got = board.read_errors()[0]
            assert got is not None  # posted before: never "nothing" while a post is under way
            reader, items = got
            assert reader == 3
            names = {e[0] for _, e in items}
            assert len(names) == 1  # one post, not two mixed
            assert [p for p, _ in items] == list(range(1, len(items) + 1))
            seen_errors.add(names.pop())
            counts = board.read()[0]
            assert counts  # posted before: never {} (nothing) nor None (did not fit)
            assert len(set(counts.values())) == 1 and list(counts) == [f"reason {j}" for j in range(len(counts))]
            seen_counts.add(next(iter(counts.values())))
            latest = board.latest()
            assert latest is not None and latest[0] and latest[1]
        assert len(seen_errors) > 1 and len(seen_counts) > 1  # the worker posted while it was read
    finally:
        stop.set()
        assert list(it) == []


def test_a_board_cleared_reads_as_never_posted_and_takes_new_posts() -> None:
    board = SkipBoard(2)
    board.stamp = 1
    board.post(1, {"corrupt image": 2})
    board.post_errors(1, 4, [(2, ("a.tar", "k1", "corrupt"))])
    assert board.read() == [{}, {"corrupt image": 2}]
    assert board.read_errors() == [None, (4, [(2, ("a.tar", "k1", "corrupt"))])]
    board.clear()
    assert board.read() == [{}, {}]
    assert board.read_errors() == [None, None]
    assert board.latest() is None
    board.post(0, {"x": 1})
    assert board.read() == [{"x": 1}, {}]
    assert board.latest() == ({"x": 1}, [])


def test_counts_that_do_not_fit_read_as_none_not_as_nothing() -> None:
    board = SkipBoard(1)
    board.post(0, {f"reason {i} " + "y" * 200: i for i in range(200)})
    assert board.read() == [None]


def _seq(board: SkipBoard, slot: int, errors: bool) -> int:
    import struct

    row = board._rows()[slot]
    at = SkipBoard.SLOT if errors else 8
    return struct.unpack("<q", row[at : at + 8].tobytes())[0]


def _set_seq(board: SkipBoard, slot: int, errors: bool, value: int) -> None:
    import struct

    row = board._rows()[slot]
    at = SkipBoard.SLOT if errors else 8
    row[at : at + 8] = memoryview(struct.pack("<q", value))


@pytest.mark.parametrize("errors", [False, True])
def test_a_row_left_in_the_middle_of_a_post_reads_as_nothing_and_heals_on_the_next_post(
        errors: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a worker killed in the middle of a post — or two iterations of one dataset posting to one slot at
    once, each writer adding to what the other left — left the row's number odd for good: every later post
    kept the parity backwards (odd at rest), so every read waited and read nothing, epoch after epoch. The
    writer now makes the number odd whatever it was, and a read waits out a dead post once."""
    monkeypatch.setattr(SkipBoard, "READ_WAIT", 0.05)
    board = SkipBoard(2)
    board.stamp = 1

    def post(n: int) -> None:
        if errors:
            board.post_errors(1, 0, [(n, ("a.tar", f"k{n}", "corrupt"))])
        else:
            board.post(1, {"corrupt image": n})

    def read() -> object:
        return board.read_errors()[1] if errors else board.read()[1]

    post(1)
    _set_seq(board, 1, errors, _seq(board, 1, errors) + 1)  # cut short after it made the number odd
    assert read() in (None, {})  # a post that never ends: nothing (after one wait)
    assert read() in (None, {})  # and no second wait for the same dead post (its number is remembered)
    post(2)
    assert _seq(board, 1, errors) % 2 == 0  # whole again
    assert read() == ((0, [(2, ("a.tar", "k2", "corrupt"))]) if errors else {"corrupt image": 2})
    for start in (5, 6):  # whatever two interleaved writers left, the next post ends even and reads whole
        _set_seq(board, 1, errors, start)
        post(3)
        assert _seq(board, 1, errors) % 2 == 0 and read() is not None


def test_a_post_cut_short_before_any_other_is_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the board's "something was posted" flag was set after the post, so a worker killed in its first
    post since a clear() left a row the next clear() did not reset (it touches a board only when flagged)."""
    import struct

    board = SkipBoard(1)

    def dies_mid_post(row: object, body: bytes) -> None:
        row[:8] = memoryview(struct.pack("<q", 1))  # type: ignore[index]
        raise SystemExit  # the worker is gone with the number odd

    monkeypatch.setattr(SkipBoard, "_write", staticmethod(dies_mid_post))
    with pytest.raises(SystemExit):
        board.post(0, {"x": 1})
    assert _seq(board, 0, False) == 1
    board.clear()
    assert _seq(board, 0, False) == 0
