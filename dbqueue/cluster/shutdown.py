"""OS-signal handling for qcluster processes.

Named ``shutdown`` so it is not confused with Django's signals in
``dbqueue.signals``. Handlers only set flags and wake sleepers: the decision of
what to do lives in the worker loop and in ``Supervisor.plan()``.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def on_stop(
    callback: Callable[[int], None], signals: tuple[int, ...] = STOP_SIGNALS
) -> None:
    """Call `callback(signum)` on these signals instead of dying or raising KeyboardInterrupt."""

    def handler(signum: int, frame: FrameType | None) -> None:
        callback(signum)

    for sig in signals:
        signal.signal(sig, handler)


def restore_defaults() -> None:
    """Give a forked child the default dispositions before it installs its own."""
    signal.set_wakeup_fd(-1)
    for sig in (*STOP_SIGNALS, signal.SIGQUIT, signal.SIGCHLD, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the supervisor) dies.

    A worker whose supervisor is gone has nobody renewing its task's lease:
    another cluster would rescue the task while it still runs. Dying with the
    supervisor keeps "a task runs twice only when the process running it
    died" true. Elsewhere the worker notices a broken pipe instead.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
