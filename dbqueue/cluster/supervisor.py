"""The qcluster supervisor: forks the workers, watches them, stops them.

Decisions live in ``plan()``, a pure function of the cluster's state and the
time, so they are tested without forking. ``Supervisor.run()`` is the thin
loop around it: reap exited children with waitpid, ask the plan what to do,
fork or signal accordingly, sleep until a signal or a child's exit wakes it.

Workers share nothing but the database: a child that dies holds no lock or
pipe the others need, so one crash never stalls the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence

from django.db import connections

from dbqueue import claiming
from dbqueue.cluster import shutdown
from dbqueue.cluster.worker import Worker, new_worker_id
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

WAKE_INTERVAL = 0.5  # seconds between supervisor checks when nothing wakes it


@dataclasses.dataclass
class Slot:
    """One worker position in the cluster, refilled when its process exits."""

    index: int
    pid: int | None = None
    # Burst mode: the worker in this slot exited 0 because nothing was due.
    done: bool = False
    exit_code: int | None = None


@dataclasses.dataclass(frozen=True)
class Spawn:
    slot: int


@dataclasses.dataclass(frozen=True)
class Kill:
    pid: int
    signum: int


@dataclasses.dataclass(frozen=True)
class Exit:
    code: int


Action = Spawn | Kill | Exit


def plan(
    slots: Sequence[Slot],
    *,
    burst: bool,
    stopping: bool,
    stop_deadline: float | None,
    now: float,
) -> list[Action]:
    """Decide what the supervisor does next.

    - Stopping: wait for the children; past the grace deadline, SIGKILL the
      ones still running; exit 0 once none is left.
    - Burst: a worker that exited 0 found nothing due and is not replaced;
      one that crashed is replaced so its queue still drains; exit when all are done.
    - Otherwise: refill every empty slot.
    """
    alive = [slot for slot in slots if slot.pid is not None]
    if stopping:
        if not alive:
            return [Exit(0)]
        if stop_deadline is not None and now >= stop_deadline:
            return [
                Kill(slot.pid, signal.SIGKILL) for slot in alive if slot.pid is not None
            ]
        return []
    if burst and all(slot.done for slot in slots):
        return [Exit(0)]
    return [Spawn(slot.index) for slot in slots if slot.pid is None and not slot.done]


class Supervisor:
    """Forks `workers` worker processes and keeps them running until stopped."""

    def __init__(
        self,
        *,
        workers: int,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        max_tasks: int | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = new_worker_id("cluster")
        self.slots = [Slot(index) for index in range(workers)]
        self.queues = queues
        self.burst = burst
        self.max_tasks = max_tasks
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.clock = clock
        self.stopping = False
        self.stop_deadline: float | None = None
        self._wake = threading.Event()

    def run(self) -> int:
        """Run the cluster until it is stopped or, in burst mode, drained; return the exit code."""
        claiming.prepare()
        # Children must open their own connections: a socket shared across
        # fork() corrupts both sides' protocol state.
        connections.close_all()
        shutdown.on_stop(self.request_stop)
        signal.signal(signal.SIGCHLD, lambda signum, frame: self._wake.set())
        logger.info(
            "Cluster %s starting %s workers; queues=%s%s",
            self.id,
            len(self.slots),
            ",".join(self.queues or settings.QUEUES),
            " (burst)" if self.burst else "",
        )
        while True:
            self._reap()
            for action in plan(
                self.slots,
                burst=self.burst,
                stopping=self.stopping,
                stop_deadline=self.stop_deadline,
                now=self.clock(),
            ):
                if isinstance(action, Exit):
                    logger.info("Cluster %s stopped.", self.id)
                    return action.code
                if isinstance(action, Spawn):
                    self._spawn(self.slots[action.slot])
                elif isinstance(action, Kill):
                    logger.warning(
                        "Grace period over; killing worker pid=%s.", action.pid
                    )
                    self._signal(action.pid, action.signum)
            self._wake.wait(WAKE_INTERVAL)
            self._wake.clear()

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop claiming, let running tasks finish within DBQUEUE_SHUTDOWN_GRACE, then exit."""
        if not self.stopping:
            grace = float(settings.SHUTDOWN_GRACE)
            running = sum(1 for slot in self.slots if slot.pid is not None)
            logger.info(
                "Received %s; finishing %s workers' current tasks (up to %.0fs).",
                signal.Signals(signum).name,
                running,
                grace,
            )
            self.stopping = True
            self.stop_deadline = self.clock() + grace
            for slot in self.slots:
                if slot.pid is not None:
                    self._signal(slot.pid, signal.SIGTERM)
        self._wake.set()

    def _spawn(self, slot: Slot) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(self._child_main())
        slot.pid = pid
        logger.debug("Started worker pid=%s in slot %s.", pid, slot.index)

    def _child_main(self) -> int:
        code = 1
        try:
            shutdown.restore_defaults()
            worker = Worker(
                queues=self.queues,
                batch_size=self.batch_size,
                poll_interval=self.poll_interval,
            )
            shutdown.on_stop(worker.stop)
            code = worker.run(burst=self.burst, max_tasks=self.max_tasks)
        except BaseException:
            logger.exception("Worker process pid=%s crashed.", os.getpid())
        finally:
            connections.close_all()
        return code

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            for slot in self.slots:
                if slot.pid == pid:
                    slot.pid, slot.exit_code = None, code
                    slot.done = self.burst and code == 0
                    if code != 0 and not self.stopping:
                        logger.error(
                            "Worker pid=%s exited with %s; replacing it.",
                            pid,
                            _describe(code),
                        )
                    break

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
