"""Connecting to Ray (the optional ``mmdata[ray]`` extra) for ``--executor ray``.

mmdata does not ship a cluster of its own: long jobs (ablation runs, output shards) become Ray Core
tasks with declared resources, so they run wherever a Ray cluster runs (a laptop, on-prem, KubeRay,
Anyscale). This module only finds Ray and connects; the executors live next to the work they run
(:mod:`mmdata.ablate.ray_executor`, :mod:`mmdata.shards.ray_executor`). See docs/scale.md.

Connection rules (those of ``ray.init``, which Ray Tune and Ray Data users know):

* a driver that already called ``ray.init(...)`` (with its own ``runtime_env``, namespace, ...) is
  used as it is, and left connected afterwards;
* otherwise ``address`` (``"auto"``, ``"HOST:PORT"`` of a head, ``"ray://HOST:10001"`` for Ray Client)
  or the ``RAY_ADDRESS`` environment variable names the cluster; with neither, the cluster started
  on this machine with ``ray start`` (recorded in Ray's temp dir), if any, else a new local Ray
  instance for this command, shut down after it. Its processes die with the driver even when
  the driver is SIGKILLed: a watchdog process (:mod:`mmdata.ray_reaper`) ends the ones Ray leaves
  behind (Ray 2.60's agents hang once their raylet is gone).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

from mmdata.errors import MMDataError, install_hint

INSTALL_HINT = install_hint("ray")
# The watchdog of the local Ray instance this process started (connect() / disconnect()).
_watchdog: tuple[Any, Any] | None = None


def require_ray(what: str = "--executor ray") -> ModuleType:
    """The ``ray`` module, or a clear error naming the extra to install.

    Example:
        >>> ray = require_ray()  # doctest: +SKIP
    """
    try:
        import ray
    except ImportError as exc:
        raise MMDataError(f"{what} needs Ray, which is not installed ({exc}): {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None, *, runtime_env: dict[str, Any] | None = None, what: str = "--executor ray") -> bool:
    """Connect this process to Ray (see the module docstring); True when this call started the
    connection (the caller then calls :func:`disconnect` when done). The SIGTERM handler in place
    before is kept (``ray.init`` replaces it with one that exits 15).

    Args:
        address: the cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``); None: ``RAY_ADDRESS``
            or a new local instance.
        runtime_env: Ray's runtime environment for the tasks (``{"pip": [...]}``, ``{"working_dir": ...}``,
            ``{"env_vars": ...}``); used only when this call connects.

    Example:
        >>> owned = connect("auto")  # doctest: +SKIP
    """
    global _watchdog
    ray = require_ray(what)
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {}
    local = address is None and not os.environ.get("RAY_ADDRESS")
    if local:
        kw["include_dashboard"] = False  # a throwaway local instance: no dashboard process to start
    # ray.init installs a SIGTERM handler of its own (sys.exit(15): exit code 15, no message, a shard job's
    # temp file left behind); the one in place before (the CLI's, which ends the command with 143 after
    # its clean-up, or the default) is put back. Python sets handlers in the main thread only.
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        # INFO lines about the connection would interleave with progress bars and --json output
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING, **kw)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or "a new local instance (no address given, RAY_ADDRESS unset)"
        raise MMDataError(f"{what}: cannot connect to Ray at {where}: {exc}") from exc
    finally:
        if sigterm is not None:  # None: a handler not set from Python, which Python cannot put back
            signal.signal(signal.SIGTERM, sigterm)
    if local:
        _watchdog = _start_watchdog(ray)
    return True


def _start_watchdog(ray: ModuleType) -> tuple[Any, Any] | None:
    """Start :mod:`mmdata.ray_reaper` for the local instance ``ray.init`` just started in this process."""
    from mmdata import ray_reaper

    if sys.platform == "win32":  # Ray ties a local instance to its driver with a job object there
        return None
    try:
        import psutil  # noqa: F401 — the watchdog's; part of the ray extra
    except ImportError:
        logging.getLogger(__name__).warning("no watchdog for the local Ray instance (psutil is not installed: %s): "
                                            "if this process is killed, end what it leaves with `ray stop --force`",
                                            INSTALL_HINT)
        return None
    try:  # Ray's own record of what it started (private, stable since Ray 1.x); the session dir is in it
        node = ray._private.worker._global_node
        session_dir = node.get_session_dir_path()
        roots = [i.process.pid for infos in node.all_processes.values() for i in infos if i.process is not None]
    except AttributeError as exc:
        logging.getLogger(__name__).warning("no watchdog for the local Ray instance (%s): if this process is "
                                            "killed, end what it leaves with `ray stop --force`", exc)
        return None
    if not roots:
        # ray.init() without an address joined a cluster recorded on this machine (`ray start`):
        # not ours to end, whatever happens to this process
        return None
    return ray_reaper.start(session_dir, roots)


def disconnect(owned: bool) -> None:
    """Shut this driver's Ray connection down when :func:`connect` opened it (a cluster it joined keeps
    running); a local instance it started is gone when this returns."""
    global _watchdog
    if owned:
        import ray

        try:
            ray.shutdown()
        finally:
            if _watchdog is not None:
                from mmdata import ray_reaper

                watchdog, _watchdog = _watchdog, None
                ray_reaper.stop(*watchdog)


class TaskStream:
    """Submits one Ray task per item and yields ``(item, ref)`` as tasks finish (``ray.wait``), with
    at most ``max_in_flight`` submitted at once; :meth:`cancel` stops the rest.

    Args:
        remote: a ``ray.remote`` function (with its ``.options`` applied) called as
            ``remote.remote(item, *args)``.
        max_in_flight: cap on submitted tasks (None: all at once; Ray queues them until resources free).

    Example:
        >>> stream = TaskStream(ray.remote(work).options(num_cpus=1))  # doctest: +SKIP
        >>> for item, ref in stream.run(items): print(item, ray.get(ref))  # doctest: +SKIP
    """

    def __init__(self, remote: Any, max_in_flight: int | None = None) -> None:
        import ray

        self._ray = ray
        self.remote = remote
        self.max_in_flight = max_in_flight
        self.pending: dict[Any, Any] = {}

    def run(self, items: Iterable[Any], *args: Any) -> Iterator[tuple[Any, Any]]:
        ray = self._ray
        todo = list(items)[::-1]
        cap = self.max_in_flight or len(todo) or 1
        while todo or self.pending:
            while todo and len(self.pending) < cap:
                item = todo.pop()
                self.pending[self.remote.remote(item, *args)] = item
            done, _ = ray.wait(list(self.pending), num_returns=1, timeout=1.0)
            if done:  # whatever else finished meanwhile comes too, without waiting again
                done, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
            for ref in done:
                yield self.pending.pop(ref), ref

    def cancel(self, grace_s: float = 5.0) -> None:
        """Cancel the tasks submitted and not finished: a running one first gets a KeyboardInterrupt;
        one still running ``grace_s`` later (stuck in native code) has its worker killed.

        Finished tasks are never cancelled: Ray 2.60's driver aborts on a cancel that races a task's
        completion ("Tried to complete task that was not pending").
        """
        ray = self._ray
        pending, self.pending = list(self.pending), {}
        for force in (False, True):
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            for ref in pending:
                try:
                    ray.cancel(ref, force=force)
                except Exception:  # noqa: BLE001 — finished meanwhile or its worker gone: nothing to cancel
                    pass
            if not force:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=grace_s)
