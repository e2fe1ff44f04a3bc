"""The workload's one task, whose `kind` says how it behaves.

Every execution first commits a ledger row (Django's autocommit: its own
transaction, outside anything dbqueue does), then behaves as its kind says.
"""

from __future__ import annotations

import os
import time

from chaos.models import Execution
from dbqueue import task
from dbqueue.exceptions import TaskTimeout

_hoard: list[bytes] = []  # what "hog" tasks keep, so the worker's memory stays high


class ChaosError(Exception):
    """What a "raise" task raises: an ordinary bug in user code."""


@task
def work(key: str, kind: str, seconds: float = 0.0, mib: int = 0) -> str:
    Execution.objects.create(key=key, kind=kind, pid=os.getpid())
    if kind == "raise":
        raise ChaosError(f"{key} always fails")
    if kind == "exit":
        os._exit(7)  # no cleanup, as a crash in C code would end it
    if kind == "stubborn":
        # Ignore the soft timeout; only the supervisor's SIGKILL ends this.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                time.sleep(max(0.0, deadline - time.monotonic()))
            except TaskTimeout:
                continue
    if kind == "hog":
        # Bytes built by repetition are written, so they count as resident.
        _hoard.append(b"\x01" * (mib * 1024 * 1024))
    if seconds and kind != "stubborn":
        time.sleep(seconds)  # "timeout" tasks are cut short here by TaskTimeout
    return key
