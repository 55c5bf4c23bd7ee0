"""Worker processes that must not outlive the job that started them.

A SIGKILLed job runs no clean-up: its workers are reparented and would keep running — holding the job's
lock on an output folder (a forked writer inherits its file), or a GPU. :func:`die_with_parent` is
what each worker runs first (``mmdata shard``'s writer processes, ``mmdata ablate``'s run workers).
:func:`quiet_fd_handover_errors` keeps a DataLoader worker from printing a traceback when the job it hands
tensors to dies of the same signal. :func:`watch_for_a_dropped_exception` keeps the exception of a job's SIGTERM / Ctrl-C handler from being
lost inside C code, so a stopped job stops instead of running on.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """Make the calling process exit when the process ``parent`` is gone: Linux's parent-death signal
    (``PR_SET_PDEATHSIG``), an immediate check (the parent may have died before it was armed), and a
    daemon thread that polls the parent's pid every ``poll_s`` seconds (elsewhere, and should the
    thread that forked this process end before the parent does).

    Example:
        >>> import multiprocessing as mp  # doctest: +SKIP
        >>> pool = mp.get_context("fork").Pool(2, initializer=die_with_parent, initargs=(os.getpid(),))  # doctest: +SKIP
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="mmdata-parent-watchdog", daemon=True).start()


def quiet_fd_handover_errors() -> None:
    """Keep the ``multiprocessing.resource_sharer`` thread of this process from printing a traceback when the
    process it hands a file descriptor to goes away mid-handover (``EOFError``, ``OSError``).

    A DataLoader worker's tensors reach the main process as file descriptors, sent by that thread on request;
    when the job's whole process group is signalled (SLURM, ``kill -- -PGID``), the main process can die
    between asking and receiving, and the thread reported the broken connection with ``sys.excepthook`` —
    a traceback after the job's one-line exit message (CI, a loaded 2-core machine). The receiving side
    reports a failed handover itself when it is still alive; any other exception still reaches the hook.

    Example:
        >>> import sys
        >>> before = sys.excepthook
        >>> quiet_fd_handover_errors(); sys.excepthook is not before
        True
        >>> sys.excepthook = before
    """
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if issubclass(kind, (EOFError, OSError)) and _raised_in_fd_sharer(tb):
            return
        previous(kind, error, tb)

    sys.excepthook = hook


def _raised_in_fd_sharer(tb: Any) -> bool:
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_serve" and code.co_filename.endswith("resource_sharer.py"):
            return True
        tb = tb.tb_next
    return False


def watch_for_a_dropped_exception(frame: Any, make: Callable[[], BaseException]) -> None:
    """Make sure a signal handler's exception is not lost: raise ``make()`` in ``frame`` (the frame the
    signal interrupted) or one of its callers when the next of them runs on as if nothing was raised.

    Python runs a handler wherever the interpreter checks for signals, also inside C code that clears
    an error it did not expect: a SIGTERM landing in ``compile()`` while ``mmdata augment`` imported a
    module from source (``PYTHONDONTWRITEBYTECODE``, with torch loaded) was dropped there without a trace
    (not even an unraisable hook), and the job ran on and exited 0 (measured: 4 of 15 runs under load;
    3 of 400 signals into a ``compile()`` loop). Until the exception shows up in one of these frames, a
    trace function watches them only (no new frame is traced): the exception reaching them ends the
    watch; a line or a return there first means it was dropped, and the watch raises a new one there.
    Nothing is watched while a debugger or coverage traces the thread (its trace function stays).

    Example:
        >>> import sys
        >>> def dropped():  # C code that calls the handler and clears its exception, as compile() did
        ...     try:
        ...         watch_for_a_dropped_exception(here, lambda: SystemExit(143)); raise SystemExit(143)
        ...     except SystemExit:
        ...         pass
        >>> def job():
        ...     global here
        ...     here = sys._getframe()
        ...     dropped()
        ...     return "ran on"
        >>> try:
        ...     job()
        ... except SystemExit as e:
        ...     print("stopped", e.code)
        stopped 143
    """
    if frame is None or sys.gettrace() is not None:
        return
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back

    def watch(fr: Any, event: str, arg: Any) -> Any:
        if event == "call":  # a new frame: not watched
            return None
        if event == "exception" and issubclass(arg[0], (StopIteration, StopAsyncIteration)):
            return watch  # a loop's iterator ended (traced as an exception): not the signal's
        sys.settrace(None)
        for f in frames:
            f.f_trace = None
        if event == "exception":  # it reached the interrupted code: delivered
            return None
        raise make()

    for f in frames:
        f.f_trace = watch
    sys.settrace(watch)
