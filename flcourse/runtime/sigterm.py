"""The parent's side of "nothing outlives the parent": SIGTERM exits the parent like Ctrl-C.

While a pool is open in the main thread, SIGTERM (if nobody else handles it) raises
``SystemExit``, so every ``with`` block closes, the processes stop and shared memory is freed,
instead of the default action, which ends the parent at once and leaves all of that behind.
See notebook 04.
"""
from __future__ import annotations

import signal
import threading


class SigtermAsExit:
    """Make SIGTERM raise ``SystemExit(128 + SIGTERM)`` until :meth:`restore`.

    Nested pools share one handler (a depth count); left alone outside the main thread, or if
    someone else already handles SIGTERM (``installed`` is then False).
    """

    _depth = 0

    def __init__(self):
        self.installed = False
        if threading.current_thread() is not threading.main_thread():
            return
        if SigtermAsExit._depth == 0 and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        if SigtermAsExit._depth == 0:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        SigtermAsExit._depth += 1
        self.installed = True

    def restore(self) -> None:
        """Give SIGTERM its default action back once the last pool that installed it closes."""
        if not self.installed:
            return
        self.installed = False
        SigtermAsExit._depth -= 1
        if SigtermAsExit._depth == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def __repr__(self) -> str:
        return f"SigtermAsExit(installed={self.installed}, depth={SigtermAsExit._depth})"


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)
