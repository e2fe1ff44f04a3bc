"""What the qcluster supervisor should do next, as a pure function.

``plan()`` looks at the cluster's slots and the time and returns actions:
spawn, kill (and why), heartbeat, exit. It forks nothing and reads no clock,
so every decision (restarts, timeouts, the grace period, burst mode) is
tested directly; ``Supervisor`` carries the actions out.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from dbqueue import models

MAX_WAIT = 1.0  # seconds the supervisor sleeps at most between looks at its children


@dataclasses.dataclass
class Slot:
    """One position in the cluster, refilled when its process exits."""

    index: int
    role: str = models.Role.WORKER
    pid: int | None = None
    worker_id: str = ""
    pipe: int | None = None  # read end of the child's report pipe
    buffer: bytes = b""
    started: float = 0.0  # monotonic time the process was forked
    task_id: str | None = None
    task_started: float | None = None  # monotonic
    task_started_at: datetime.datetime | None = None  # wall clock, for the registry
    task_timeout: float | None = None
    # Tasks that returned but whose outcome the worker has not stored yet.
    unstored: set[str] = dataclasses.field(default_factory=set)
    tasks_done: int = 0
    kill_reason: str | None = (
        None  # "timeout" or "shutdown" once the supervisor killed it
    )
    # Burst mode: the worker in this slot exited because nothing was due.
    done: bool = False
    exit_code: int | None = None
    restart_at: float = 0.0
    quick_crashes: int = 0


@dataclasses.dataclass(frozen=True)
class Spawn:
    slot: int


@dataclasses.dataclass(frozen=True)
class Kill:
    slot: int
    reason: str  # "timeout" or "shutdown"


@dataclasses.dataclass(frozen=True)
class Beat:
    """Heartbeat: registry, lease renewal, rescue of expired leases."""


@dataclasses.dataclass(frozen=True)
class Exit:
    code: int


Action = Spawn | Kill | Beat | Exit


def plan(
    slots: Sequence[Slot],
    *,
    now: float,
    burst: bool = False,
    stopping: bool = False,
    forced: bool = False,
    stop_deadline: float | None = None,
    next_beat: float = float("inf"),
    kill_after: float = 1.0,
) -> list[Action]:
    """Decide what the supervisor does next.

    - A task past its timeout + `kill_after` (the soft TaskTimeout came first)
      gets its worker killed; the worker is replaced like any dead child.
    - Stopping: wait for the children; on a second signal or past the grace
      deadline, kill the ones still running; exit 0 once none is left.
    - Burst: a worker that exited 0 found nothing due and is not replaced;
      exit when every worker is done.
    - Otherwise refill every empty slot, after a backoff for one that keeps
      crashing right after it starts.
    """
    actions: list[Action] = []
    alive = [slot for slot in slots if slot.pid is not None]
    if stopping and not alive:
        return [Exit(0)]
    if now >= next_beat:
        actions.append(Beat())
    for slot in alive:
        if (
            slot.kill_reason is None
            and slot.task_timeout
            and slot.task_started is not None
            and now >= slot.task_started + slot.task_timeout + kill_after
        ):
            actions.append(Kill(slot.index, "timeout"))
    if stopping:
        if forced or (stop_deadline is not None and now >= stop_deadline):
            killing = {a.slot for a in actions if isinstance(a, Kill)}
            actions += [
                Kill(slot.index, "shutdown")
                for slot in alive
                if slot.kill_reason is None and slot.index not in killing
            ]
        return actions
    if burst and all(slot.done for slot in slots):
        return [Exit(0)]
    actions += [
        Spawn(slot.index)
        for slot in slots
        if slot.pid is None and not slot.done and now >= slot.restart_at
    ]
    return actions


def next_wake(
    slots: Sequence[Slot],
    *,
    now: float,
    next_beat: float,
    stop_deadline: float | None,
    kill_after: float,
) -> float:
    """Seconds until plan() could next decide something new."""
    times = [next_beat, now + MAX_WAIT]
    if stop_deadline is not None:
        times.append(stop_deadline)
    for slot in slots:
        if slot.pid is None and not slot.done:
            times.append(slot.restart_at)
        if (
            slot.kill_reason is None
            and slot.task_timeout
            and slot.task_started is not None
        ):
            times.append(slot.task_started + slot.task_timeout + kill_after)
    return max(0.0, min(times) - now)
