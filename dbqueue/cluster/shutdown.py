"""OS-signal handling for qcluster processes.

Named ``shutdown`` so it is not confused with Django's signals in
``dbqueue.signals``. Handlers only set flags and wake sleepers: the decision of
what to do lives in the worker loop and in ``Supervisor.plan()``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop(callback: Callable[[int], None]) -> None:
    """Call `callback(signum)` on SIGTERM or SIGINT instead of dying or raising KeyboardInterrupt."""

    def handler(signum: int, frame: FrameType | None) -> None:
        callback(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def restore_defaults() -> None:
    """Give a forked child the default dispositions before it installs its own."""
    for sig in (*STOP_SIGNALS, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
