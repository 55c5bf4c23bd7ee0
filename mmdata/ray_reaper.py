"""Ends the processes of a local Ray instance when the driver that started it dies (the watchdog).

``ray.init()`` without an address starts a Ray instance owned by the calling process. Ray ties
gcs_server and raylet to the driver's life (``PR_SET_PDEATHSIG``), but when a driver is SIGKILLed
(the OOM killer, ``kill -9``, a lost container) the raylet's agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``, Ray 2.60) notice the raylet's death and then hang forever trying to report
it to the dead GCS; they ignore SIGTERM. :func:`start` runs this module as a small separate process
next to such a driver:

* while the driver lives, it records the processes Ray started for it (gcs_server, raylet, ...) and
  all their descendants (pid and start time, so a reused pid is never taken for one of them) once per
  ``interval`` seconds — never the driver's other children (DataLoader workers, a user's servers);
* when the driver is gone — its pipe to us reads EOF (any death, SIGKILL included) or our parent pid
  changes (a forked child of the driver still holding the pipe) — or when the driver asks (it closes
  the pipe after ``ray.shutdown()``), it ends the recorded processes still alive and every process of
  this user whose command line or open files name the Ray session's directory: SIGTERM, then
  SIGKILL after ``grace`` seconds; then it exits.

It runs in a session of its own, so a Ctrl-C or a kill of the driver's process group does not end
it before it has cleaned up. It never touches processes of other Ray instances on the machine
(other users' or other drivers' sessions), nor the driver's other children: only what Ray started
for this driver, their descendants, and this user's processes using this session's directory.
POSIX (Linux, macOS; psutil).

Run as ``python ray_reaper.py DRIVER_PID SESSION_DIR ROOT_PID,...`` with the driver's pipe on stdin; from Python,
:func:`start` / :func:`stop`.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from typing import IO

INTERVAL_S = 1.0
GRACE_S = 3.0


def _session_procs(session_dir: str, spare: set[int]) -> list:
    """This user's processes whose command line or open files name ``session_dir`` (Ray's own
    processes keep their logs open there; the agents' command lines are rewritten by setproctitle)."""
    import psutil

    uid = os.getuid()
    inside = session_dir.rstrip(os.sep) + os.sep  # never a longer session name sharing the prefix
    found = []
    for p in psutil.process_iter(["pid", "uids", "cmdline"]):
        try:
            if p.pid in spare or p.info["uids"] is None or p.info["uids"].real != uid:
                continue
            if any(a.endswith(session_dir) or inside in a for a in p.info["cmdline"] or ()) or \
                    any(f.path.startswith(inside) for f in p.open_files()):
                found.append(p)
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to look at
            continue
    return found


def _end(procs: list, grace: float) -> None:
    import psutil

    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:  # the agents hang in a GCS call and ignore SIGTERM
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


def _record_descendants(seen: dict, me: int) -> None:
    """Add the descendants of the live processes in ``seen`` to it (one scan of the process table:
    cheap enough once a second on a busy machine)."""
    import psutil

    kids: dict[int, list] = {}
    live: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["ppid"]):
        live[p.pid] = p
        kids.setdefault(p.info["ppid"], []).append(p)
    # a recorded pid now used by another process (== compares pid and start time) has no children of ours
    frontier = [pid for pid, p in seen.items() if live.get(pid) == p]
    while frontier:
        for c in kids.get(frontier.pop(), ()):
            if c.pid != me and c.pid not in seen:
                seen[c.pid] = c
                frontier.append(c.pid)


def watch(driver_pid: int, session_dir: str, roots: list[int], pipe: IO[bytes], *, interval: float = INTERVAL_S,
          grace: float = GRACE_S) -> None:
    """Record the Ray processes ``roots`` and their descendants until the driver dies or closes
    ``pipe``, then end the session's processes (see the module docstring)."""
    import psutil

    me = os.getpid()
    seen: dict[int, psutil.Process] = {}  # psutil.Process checks pid *and* start time on every call
    for pid in roots:
        try:
            seen[pid] = psutil.Process(pid)
        except psutil.Error:
            pass
    while os.getppid() == driver_pid:  # reparented: the driver is gone
        _record_descendants(seen, me)
        ready, _, _ = select.select([pipe], [], [], interval)
        if ready and not os.read(pipe.fileno(), 4096):
            break  # EOF: the driver died, or it is done and asks us to clean up
    procs = {p.pid: p for p in seen.values() if p.is_running()}  # is_running: same pid *and* start time
    if session_dir:
        # the driver keeps its Ray logs open while it exits after stop(): never ours to end
        procs.update((p.pid, p) for p in _session_procs(session_dir, {me, driver_pid}))
    _end(list(procs.values()), grace)


def start(session_dir: str | None, roots: list[int]) -> tuple[subprocess.Popen, IO[bytes]]:
    """Start the watchdog for this process (the driver), the Ray session at ``session_dir`` and the
    processes ``roots`` that Ray started for it.

    Returns the watchdog process and the write end of its pipe; :func:`stop` closes it.

    Example:
        >>> proc, pipe = start("/tmp/ray/session_...", [raylet_pid, gcs_pid])  # doctest: +SKIP
    """
    r, w = os.pipe()  # both ends non-inheritable (PEP 446): only the watchdog gets the read end, as stdin
    try:
        # -I: not this file's folder on sys.path (mmdata/types.py, io.py would shadow the stdlib's)
        proc = subprocess.Popen([sys.executable, "-I", "-u", os.path.abspath(__file__), str(os.getpid()), session_dir or "",
                                 ",".join(map(str, roots))],
                                stdin=r, stdout=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(r)
    return proc, os.fdopen(w, "wb")


def stop(proc: subprocess.Popen, pipe: IO[bytes], timeout: float = 2 * GRACE_S + 5) -> None:
    """Tell the watchdog the driver is done (after ``ray.shutdown()``): it ends whatever of the session
    is still alive, then exits; wait for it."""
    pipe.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    # a Ctrl-C in the driver's terminal reaches its process group, not this session; ignore it anyway
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]), sys.argv[2], [int(x) for x in sys.argv[3].split(",") if x], sys.stdin.buffer)
