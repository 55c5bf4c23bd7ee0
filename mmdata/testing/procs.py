"""Processes a test starts as a user's shell would start them."""

from __future__ import annotations

import signal


def sigint_as_from_a_terminal() -> None:
    """``preexec_fn`` for a driver a Ctrl-C test interrupts: SIGINT as a shell gives it (default
    action, unblocked), whatever the test process would hand down — a suite launched in the
    background (``cmd &`` in a script) starts with SIGINT ignored, and children inherit that. SIGHUP too:
    a suite started under ``nohup`` hands down SIGHUP ignored, and a hangup test's job then ran on (exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGHUP])
