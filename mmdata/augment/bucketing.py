"""Duration-bucketed batching for variable-length audio (``mmdata.loader(max_duration=...)``).

A fixed ``batch_size`` over clips of 0.5 s to 30 s pads most of each batch with silence. Here the
samples are sorted into ``buckets`` duration buckets, and each batch holds samples of one bucket whose
**padded cost** — the longest clip of the batch times the number of samples, what collate pads to and
what the accelerator's memory pays for — stays within ``max_duration`` seconds (Lhotse's
``DynamicBucketingSampler`` budgets the sum of durations; inside one bucket the two are close, and the
padded cost is the bound memory needs).

Pure pieces, tested on their own:

* :func:`bucket_edges`: ``buckets - 1`` edges, quantiles of the durations (from the Parquet index's
  ``audio_seconds`` when it has them, else from the first ``bucket_buffer`` samples a reader sees).
* :func:`bucket_of`: the bucket of one duration.
* :func:`form_batches`: batches from a stream of ``(item, duration)``, holding at most ``buffer`` items
  (and, as a bucket goes out before it passes the budget, at most about buckets x ``max_duration``
  seconds of clips: the decoded audio a worker holds).
* Samples without audio (duration None: an image-only sample of a mixed dataset) cost what the shortest
  clip costs (the split's shortest by the index's ``audio_seconds``, else the shortest among the first
  ``bucket_buffer`` samples a reader sees): they join the shortest bucket, where collate pads their missing
  audio to the batch's longest clip (the padded cost counts them), and a batch of audio-less samples only
  holds as many as a batch of the shortest clips may (``max_duration`` / shortest). They cost 0 s before
  (QA27 C4): they piled up to ``bucket_buffer`` in one batch until the next clip.
* :class:`Bucketed`: the iterable dataset stage the loader puts in each DataLoader worker, after the
  per-sample recipe stages: it yields lists of samples, which the DataLoader collates one by one.

Every choice depends only on the reader's stream (fixed by seed, epoch and reader), so the batches are
deterministic; a resumed pass replays the reader's stream from the epoch's start and drops the batches
the saved loader had handed out (exact, at the cost of reading that prefix again).
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from torch.utils.data import IterableDataset

from mmdata.errors import MMDataError
from mmdata.types import Sample

T = TypeVar("T")

#: sample meta keys the bucketing stage sets: the reader's batch number (resume), and a clip that alone
#: exceeds max_duration (delivered as a batch of one, counted by the loader)
BATCH_INDEX = "bucket_batch"
OVER_BUDGET = "over_max_duration"
#: default buckets and items held per bucket (bucket_buffer = buckets x this)
DEFAULT_BUCKETS = 10
HELD_PER_BUCKET = 32


def check_bucketing(max_duration: Any, buckets: Any, bucket_buffer: Any, batch_size: Any) -> tuple[float, int, int]:
    """The loader's bucketing keywords checked: ``max_duration`` seconds (a positive finite number),
    ``buckets`` (an int >= 1), ``bucket_buffer`` (an int >= ``buckets``, None: ``buckets`` x 32).

    Example:
        >>> check_bucketing(20, 4, None, None)
        (20.0, 4, 128)
        >>> check_bucketing(-1, 4, None, None)
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: max_duration: seconds of audio per batch (a positive number: the longest clip x the samples), got -1
    """
    if isinstance(max_duration, bool) or not isinstance(max_duration, numbers.Real) or not (
            math.isfinite(float(max_duration)) and float(max_duration) > 0):
        raise MMDataError(f"max_duration: seconds of audio per batch (a positive number: the longest clip x the "
                          f"samples), got {max_duration!r}")
    for name, value in (("buckets", buckets), ("bucket_buffer", bucket_buffer)):
        if value is None and name == "bucket_buffer":
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise MMDataError(f"{name}: a positive int ({'duration buckets' if name == 'buckets' else 'samples held in the buckets at once'}), "
                              f"got {value!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                   or batch_size < 1):
        raise MMDataError(f"batch_size: with max_duration, the most samples per batch (a positive int) or None (no cap), "
                          f"got {batch_size!r}")
    n = int(buckets)
    buffer = n * HELD_PER_BUCKET if bucket_buffer is None else int(bucket_buffer)
    if buffer < n:
        raise MMDataError(f"bucket_buffer: at least one sample per bucket ({n}), got {bucket_buffer!r}")
    return float(max_duration), n, buffer


def bucket_edges(durations: Iterable[float], buckets: int) -> list[float]:
    """``buckets - 1`` increasing edges splitting ``durations`` into buckets of about equal counts
    (quantiles; repeated values merge edges, so fewer buckets may result).

    Example:
        >>> bucket_edges([1, 2, 3, 4, 5, 6, 7, 8], 4)
        [3.0, 5.0, 7.0]
        >>> bucket_edges([2.0] * 5, 3)
        []
    """
    ds = sorted(float(d) for d in durations if d is not None and math.isfinite(float(d)))
    if not ds or buckets <= 1:
        return []
    edges: list[float] = []
    for i in range(1, buckets):
        e = ds[min(len(ds) - 1, (i * len(ds)) // buckets)]
        if e > ds[0] and (not edges or e > edges[-1]):
            edges.append(e)
    return edges


def bucket_of(duration: float, edges: Sequence[float]) -> int:
    """The bucket of ``duration``: the number of edges at or below it.

    Example:
        >>> [bucket_of(d, [3.0, 5.0]) for d in (0.5, 3.0, 4.9, 30)]
        [0, 1, 1, 2]
    """
    return bisect.bisect_right(edges, duration)


def padded_cost(durations: Sequence[float]) -> float:
    """Seconds a batch of these clips costs once collated: the longest x the count."""
    return max(durations, default=0.0) * len(durations)


def form_batches(stream: Iterable[tuple[T, float | None]], edges: Sequence[float] | None, max_duration: float, *,
                 max_samples: int | None = None, buffer: int = 320, drop_last: bool = False,
                 buckets: int = DEFAULT_BUCKETS, shortest: float | None = None) -> Iterator[tuple[list[T], bool]]:
    """Batches ``(items, over)`` from ``(item, duration)`` pairs: each batch holds items of one bucket
    whose padded cost (:func:`padded_cost`) stays within ``max_duration`` and at most ``max_samples``
    items. An item longer than ``max_duration`` comes alone, ``over`` True (never dropped). A bucket is
    sent when the next item would overflow it; when the buckets hold more than ``buffer`` items, the
    fullest (by padded cost) goes out as it is. At the end each bucket's tail is sent (shortest bucket
    first), unless ``drop_last``. ``edges`` None: edges from the first ``buffer`` durations
    (:func:`bucket_edges` with ``buckets``).

    An item without audio (duration None) costs ``shortest`` seconds (at most ``max_duration``): the
    shortest clip of the data. ``shortest`` None: the shortest non-empty clip among the first ``buffer``
    items (a 0 s clip is left out, as the loader leaves it out of the index's; if none of them has a
    clip, the first clip after them; until then such items cost 0 s and a batch of them is bounded by
    ``buffer`` and ``max_samples`` only).

    Example:
        >>> pairs = [("a", 1.0), ("b", 9.0), ("c", 1.2), ("d", 8.0), ("e", 0.9), ("f", 25.0)]
        >>> [b for b, _ in form_batches(pairs, [5.0], 20.0)]
        [['f'], ['a', 'c', 'e'], ['b', 'd']]
        >>> [b for b, _ in form_batches([(f"i{n}", None) for n in range(7)] + [("a", 2.0)], [], 6.0)]
        [['i0', 'i1', 'i2'], ['i3', 'i4', 'i5'], ['i6', 'a']]
    """
    it = iter(stream)
    if edges is None or shortest is None:  # learn the edges / the shortest clip from the first samples, then go on
        head = []
        for pair in it:
            head.append(pair)
            if len(head) >= buffer:
                break
        clips = [d for _, d in head if d is not None]
        if edges is None:
            edges = bucket_edges(clips, buckets)
        if shortest is None:  # a zero-length clip would make audio-less items free: they would pile up again
            shortest = min((d for d in clips if d > 0), default=None)
        it = _chain(head, it)
    held: list[list[tuple[T, float]]] = [[] for _ in range(len(edges) + 1)]
    count = 0
    for item, secs in it:
        if secs is None:  # no audio: collate pads it to the batch's longest clip; it costs the shortest clip
            d = min(shortest, max_duration) if shortest is not None else 0.0
        else:
            d = secs
            if shortest is None and d > 0:  # no clip among the first `buffer` items: the first one seen
                shortest = d
        if d > max_duration:
            yield [item], True
            continue
        b = held[bucket_of(d, edges)]
        if b and (padded_cost([x for _, x in b] + [d]) > max_duration or (max_samples is not None and len(b) >= max_samples)):
            yield [x for x, _ in b], False
            count -= len(b)
            b.clear()
        b.append((item, d))
        count += 1
        if count > buffer:  # memory bound: the fullest bucket goes out as it is
            full = max(held, key=lambda h: (padded_cost([x for _, x in h]), len(h)))
            yield [x for x, _ in full], False
            count -= len(full)
            full.clear()
    if not drop_last:
        for b in held:
            if b:
                yield [x for x, _ in b], False


def _chain(head: list[T], rest: Iterator[T]) -> Iterator[T]:
    yield from head
    yield from rest


def audio_duration(sample: Sample) -> float | None:
    """Seconds of ``sample``'s clip as it will be collated (frames / sample rate); None without audio
    (:func:`form_batches` then costs it as the shortest clip)."""
    x = sample.fields.get("audio")
    if x is None or not hasattr(x, "shape") or not sample.sample_rate:
        return None
    return int(x.shape[-1]) / float(sample.sample_rate)


class Bucketed(IterableDataset):  # type: ignore[type-arg]
    """The loader's bucketing stage, in each DataLoader worker: ``source``'s samples grouped into
    batches (lists of samples, :func:`form_batches`); each sample's meta gets the reader's batch number
    (:data:`BATCH_INDEX`) and, for a clip over the budget, :data:`OVER_BUDGET`. ``resume``: reader ->
    batches already handed out, which this pass forms again (the same stream) and drops. ``shortest``: the
    split's shortest clip in seconds, what a sample without audio costs (None: learned from the stream)."""

    def __init__(self, source: Any, edges: Sequence[float] | None, max_duration: float, *, max_samples: int | None,
                 buffer: int, buckets: int, drop_last: bool, resume: dict[int, int] | None = None,
                 duration: Callable[[Sample], float | None] = audio_duration, shortest: float | None = None) -> None:
        self.source = source
        self.edges = list(edges) if edges is not None else None
        self.max_duration = max_duration
        self.max_samples = max_samples
        self.buffer = buffer
        self.buckets = buckets
        self.drop_last = drop_last
        self.resume = dict(resume or {})
        self.duration = duration
        self.shortest = shortest

    def __iter__(self) -> Iterator[list[Sample]]:
        pairs = ((s, self.duration(s)) for s in self.source)
        reader: int | None = None
        n = 0
        for batch, over in form_batches(pairs, self.edges, self.max_duration, max_samples=self.max_samples,
                                        buffer=self.buffer, drop_last=self.drop_last, buckets=self.buckets,
                                        shortest=self.shortest):
            if reader is None:
                reader = int(batch[0].meta.get("reader", 0))
            n += 1
            if n <= self.resume.get(reader, 0):
                continue  # handed out before the state was saved
            extra = {BATCH_INDEX: n - 1, **({OVER_BUDGET: True} if over else {})}
            yield [s.with_meta(**extra) for s in batch]
