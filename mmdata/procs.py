"""Worker processes that must not outlive the job that started them.

A SIGKILLed job runs no clean-up: its workers are reparented and would keep running — holding the job's
lock on an output folder (a forked writer inherits its file), or a GPU. :func:`die_with_parent` is
what each worker runs first (``mmdata shard``'s writer processes, ``mmdata ablate``'s run workers).
"""

from __future__ import annotations

import os
import signal
import threading
import time


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
