"""The Ray executor: every (arm, seed) run is one Ray task on a cluster (``--executor ray``).

It implements the same :class:`~mmdata.ablate.executor.Executor` interface as the local executors, so
the scheduler, ``runs.parquet`` streaming, resume, retries of failed runs, adaptive looks and the
report are those of a local ablation (see :mod:`mmdata.ablate.runner`):

* each task runs :func:`~mmdata.ablate.executor.run_task` (which never raises: a trainer's exception
  comes back as a ``status: failed`` row) and declares ``num_cpus`` (the run's torch threads) and
  ``num_gpus`` (1 with ``device="cuda"``; Ray sets ``CUDA_VISIBLE_DEVICES`` for the task), so Ray
  packs runs onto the nodes' free CPUs and GPUs as Ray Tune packs trials;
* a task loads the ablation's plugins (``task["plugins"]``: the modules registering the arms' own ops
  and fusions, :mod:`mmdata.plugins`) before its run, as a local worker process does — they must be
  importable on the nodes (installed, or in the driver's working directory, which Ray puts on the
  workers' path);
* finished rows are handed to the runner as they arrive (``ray.wait``), which writes them into
  ``runs.parquet`` on the driver;
* a task that dies without a row (its worker or node lost after ``max_retries`` Ray retries, out of
  memory) is recorded as a failed run, like a dead local worker process; the rest goes on;
* a run with a time limit (``task["timeout_s"]``, ``--run-timeout``) runs in a Ray worker used for that run
  only (``max_calls=1``): a limit that cut an import or a lock leaves the process damaged, and the next run
  must not inherit it (QA35 review #1). Each such run starts a worker (Ray's start and the trainer's imports);
  runs without a limit share the workers as before;
* :meth:`RayExecutor.close` (on Ctrl-C, SIGTERM, an error, or the end) stops the tasks still queued
  or running; the finished ones are already saved, and a rerun resumes from ``runs.parquet``.

The data path in the tasks must be readable on every node (shared storage); see docs/scale.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mmdata.ablate.executor import run_task
from mmdata.ray_cluster import TaskStream, connect, disconnect, require_ray

# A lost worker or node (preemption, OOM kill) is retried once by Ray; a trainer's own exception is
# a failed row, never retried within a session (the next session retries failed runs).
MAX_RETRIES = 1


def _run(task: dict[str, Any], train_fn: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    return run_task(task, train_fn)


class RayExecutor:
    """Runs ablation tasks as Ray tasks (see the module docstring).

    Args:
        address: the Ray cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``); None: an existing
            ``ray.init`` connection, ``RAY_ADDRESS``, or a local instance for this ablation.
        num_cpus: CPUs each run declares (the runner passes its torch threads).
        num_gpus: GPUs each run declares (the runner passes 1 with ``device="cuda"``; a fraction packs
            several small runs onto one GPU).
        max_concurrent: at most this many runs submitted at once (None: all; Ray queues them until
            resources free up).
        train_fn: a training callable shipped to the workers by Ray (closures too) instead of the
            tasks' ``entry``.
        runtime_env: Ray runtime environment used when this executor connects.

    Example:
        >>> from mmdata.ablate import run
        >>> run("recipes/ablations/avdigits_loo.yaml", "runs/loo", executor="ray", address="auto")  # doctest: +SKIP
    """

    def __init__(self, address: str | None = None, *, num_cpus: float = 1, num_gpus: float = 0,
                 max_concurrent: int | None = None, train_fn: Callable[..., dict[str, Any]] | None = None,
                 runtime_env: dict[str, Any] | None = None) -> None:
        self._ray = require_ray()
        # connect() keeps the SIGTERM handler in place (ray.init's own exits 15): outside the runner's run
        # loop a SIGTERM ends a Ray ablation as it ends a local one (exit 143)
        self._owned = connect(address, runtime_env=runtime_env)
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        opts = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_retries": MAX_RETRIES,
                "name": "mmdata-ablate-run"}
        # shared workers; a worker per timed run (max_calls only at declaration: Ray refuses it in .options())
        self._remotes = (self._ray.remote(_run).options(**opts), self._ray.remote(max_calls=1)(_run).options(**opts))
        self._stream = TaskStream(self._remotes[0], max_concurrent)
        self._fn_ref = self._ray.put(train_fn) if train_fn is not None else None

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        tasks = list(tasks)  # an ablation's runs share one time limit (or none)
        self._stream.remote = self._remotes[any(t.get("timeout_s") for t in tasks)]
        for task, ref in self._stream.run(tasks, self._fn_ref):
            try:
                row = self._ray.get(ref)
            except self._ray.exceptions.RayError as exc:  # the task died without a row (worker/node lost)
                row = {"arm": task["arm"], "seed": int(task["seed"]), "config_hash": task["hash"],
                       "data_fingerprint": task["fingerprint"], "status": "failed", "wall_s": None,
                       "error": f"{type(exc).__name__}: the Ray task ended without a result: {str(exc)[:500]}",
                       "traceback": ""}
            on_result(row)

    def close(self) -> None:
        """Stop the tasks still queued or running, then disconnect when this executor connected.

        A connection this executor opened is simply shut down: Ray ends a finished driver's job and
        kills its tasks. On a connection the caller owns (its own ``ray.init``), the outstanding
        tasks are cancelled (a running one gets a KeyboardInterrupt).
        """
        if not self._owned:
            self._stream.cancel()
        disconnect(self._owned)
        self._owned = False
