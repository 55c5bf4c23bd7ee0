"""Writing planned shards as Ray tasks (``mmdata shard --executor ray``, ``mmdata augment --executor ray``).

The driver plans the job exactly as the local executor does (records sorted by key, splits, shard
cuts, the plan hash and the resume journal: :mod:`mmdata.shards.writer`); each planned shard is one
Ray task running the writer's pure per-shard function on a node that sees the same files, and
returns its summary and index rows to the driver, which appends the done marker to the journal as the
shard arrives and writes the index, shards table and card at the end. The shard bytes are a function
of the task alone, so the output is byte-identical to a local run; a killed driver leaves a journal
that a rerun (local or Ray) resumes from.

Sources and the output folder must be on storage every node sees (a shared filesystem mounted at the
same path) or at fsspec URLs (each task fetches its members and uploads its shard); see docs/scale.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mmdata.errors import MMDataError
from mmdata.ray_cluster import TaskStream, connect, disconnect, require_ray

# A lost worker or node is retried (a shard task is idempotent: it writes atomically under its own name).
MAX_RETRIES = 2


def run_shard_tasks(write_task: Callable[[dict[str, Any]], dict[str, Any]], tasks: Iterable[dict[str, Any]],
                    on_result: Callable[[dict[str, Any]], None], *, address: str | None = None,
                    num_cpus: float = 1, max_in_flight: int | None = None) -> None:
    """Run ``write_task(task)`` for every task as a Ray task; ``on_result`` gets each result on the
    driver as it arrives. The first failing shard stops the job with its own error (after the shards
    already finished were reported, so a rerun keeps them), as the local executor does.

    Args:
        write_task: the per-shard function (module level, importable on the workers).
        tasks: one plain-data task per shard.
        on_result: called on the driver with each result, in completion order.
        address: the Ray cluster; None: an existing connection, ``RAY_ADDRESS`` or a local instance.
        num_cpus: CPUs each shard task declares.
        max_in_flight: at most this many shard tasks submitted at once (None: all).

    Example:
        >>> run_shard_tasks(_write_task, tasks, results.append, address="auto")  # doctest: +SKIP
    """
    ray = require_ray()
    owned = connect(address)
    stream = TaskStream(ray.remote(write_task).options(num_cpus=num_cpus, max_retries=MAX_RETRIES,
                                                       name="mmdata-shard-write"), max_in_flight)
    try:
        for task, ref in stream.run(tasks):
            try:
                res = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                # the writer's own error (bad input with on_error="raise", disk full, ...), not Ray's wrapper
                cause = getattr(exc, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from None
                raise MMDataError(f"shard {task.get('name')}: the Ray task failed: {exc}") from None
            except ray.exceptions.RayError as exc:
                raise MMDataError(f"shard {task.get('name')}: the Ray task ended without a result "
                                  f"(worker or node lost after {MAX_RETRIES} retries): {exc}") from None
            on_result(res)
    finally:
        if not owned:
            stream.cancel()
        disconnect(owned)
