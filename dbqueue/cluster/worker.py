"""The worker loop: claim a batch, run each task, record the outcome.

``Worker.run_once()`` is the unit of work and returns what it did, so tests
drive a worker in-process without forking. ``run()`` repeats it until told to
stop; ``--burst`` stops when nothing is due. Inside a cluster, the worker tells
its supervisor through a pipe which task it is running and since when, so the
supervisor can enforce timeouts and renew leases without asking the database.
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, connections
from django.db.models import F
from django.utils import timezone

from dbqueue import claiming, counters, models
from dbqueue.cluster import executor
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

DB_ERROR_BACKOFF_MAX = (
    30.0  # seconds between claim attempts while the database is unreachable
)
WAIT_SLICE = (
    0.25  # seconds; an idle wait is cut into slices so a stop request is seen quickly
)
# A worker claims about this many seconds of work at once (see BatchSizer).
PREFETCH_WINDOW = 0.5  # seconds
# A success waits at most about this long to be stored with the next ones.
STORE_DELAY = 0.05  # seconds
# A burst worker whose claim came back empty while due tasks are left looks
# again after this long, rather than stopping with work undone.
BURST_RECHECK = 0.01  # seconds
EXIT_DONE = 0  # stopped, or (burst) nothing left to do
EXIT_RECYCLE = 3  # replace me: task or memory limit reached


def new_worker_id(role: str = "worker") -> str:
    """Return an id unique across hosts and restarts: host, pid, role and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{role}:{secrets.token_hex(3)}"


class Reporter:
    """Where a worker announces the tasks it starts, finishes and stores; silent by default."""

    def started(self, task: models.Task) -> None:
        """The task is about to run."""

    def finished(self, task: models.Task, *, stored: bool) -> None:
        """The task returned; its outcome is `stored` already, or waits for stored()."""

    def stored(self, tasks: Sequence[models.Task]) -> None:
        """The outcomes of these finished tasks are stored now."""


class PipeReporter(Reporter):
    """Writes one line per event to the supervisor's pipe.

    A write of up to PIPE_BUF bytes is atomic, so lines never interleave,
    and the supervisor reads them without blocking. A supervisor that is
    gone makes the write fail; the worker then stops after its current task.
    """

    LINES_PER_WRITE = 64  # of about 46 bytes each: under PIPE_BUF (4096 on Linux)

    def __init__(self, fd: int, on_lost: Callable[[], None]) -> None:
        self.fd = fd
        self.on_lost = on_lost

    def started(self, task: models.Task) -> None:
        self._send(f"started {task.id} {task.timeout or 0}\n")

    def finished(self, task: models.Task, *, stored: bool) -> None:
        self._send(f"finished {task.id} {int(stored)}\n")

    def stored(self, tasks: Sequence[models.Task]) -> None:
        for start in range(0, len(tasks), self.LINES_PER_WRITE):
            chunk = tasks[start : start + self.LINES_PER_WRITE]
            self._send("".join(f"stored {task.id} 0\n" for task in chunk))

    def _send(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode())
        except OSError:
            self.on_lost()


class BatchSizer:
    """Choose how many tasks the next claim asks for, from how long tasks have taken.

    One claim per batch instead of one per task is most of what makes short
    tasks fast: a claim is a commit. But a claimed task waits for the ones
    before it in its worker, under its lease, while another worker may sit
    idle. So a batch holds about PREFETCH_WINDOW seconds of work by the mean
    duration measured so far, never more than `limit`, and the first claim,
    before anything is measured, takes one task: a worker started on a queue
    of ten-minute tasks never takes fifty of them at once.
    """

    SMOOTHING = 0.2  # weight of the newest duration in the running mean

    def __init__(self, limit: int, window: float = PREFETCH_WINDOW) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.mean: float | None = None

    def next(self) -> int:
        if self.mean is None:
            return 1
        if self.mean * self.limit <= self.window:
            return self.limit
        return max(1, min(self.limit, int(self.window / self.mean)))

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        if self.mean is None:
            self.mean = seconds
        else:
            self.mean += self.SMOOTHING * (seconds - self.mean)


class Worker:
    """Claims and runs tasks from `queues`: DBQUEUE_QUEUES by default, every queue with "*"."""

    def __init__(
        self,
        *,
        worker_id: str | None = None,
        queues: Sequence[str] | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        max_tasks: int | None = None,
        max_memory: int | None = None,
        reporter: Reporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = worker_id or new_worker_id()
        chosen = list(queues) if queues is not None else list(settings.QUEUES)
        self.queues: list[str] | None = None if "*" in chosen else chosen
        self.batch_size = batch_size or int(settings.BATCH_SIZE)
        self.sizer = BatchSizer(self.batch_size)
        self.poll_interval = (
            poll_interval
            if poll_interval is not None
            else float(settings.POLL_INTERVAL)
        )
        self.max_tasks = (
            max_tasks if max_tasks is not None else settings.MAX_TASKS_PER_CHILD
        )
        self.max_memory = (
            max_memory if max_memory is not None else settings.MAX_MEMORY_PER_CHILD
        )
        self.reporter = reporter or Reporter()
        self.clock = clock
        self.stopping = threading.Event()
        self.tasks_done = 0
        self._counts_flushed_at = clock()
        # Successes run but not stored yet, with their prepared fields.
        self._unstored: list[tuple[executor.Outcome, dict[str, Any]]] = []
        self._unstored_since = 0.0

    def stop(self, signum: int | None = None) -> None:
        """Finish the running task, then leave the loop."""
        if not self.stopping.is_set():
            logger.info("Worker %s stopping after its current task.", self.id)
        self.stopping.set()

    def run_once(self) -> list[executor.Outcome]:
        """Claim one batch and run it; return the outcome of each task run.

        The outcomes' counts for the metrics are written every
        counters.FLUSH_INTERVAL while busy, and at once when nothing is due.
        """
        refresh_connections()
        if self.clock() - self._counts_flushed_at >= counters.FLUSH_INTERVAL:
            self._flush_counts()
        tasks = claiming.claim(self.id, self.queues, self._claim_limit())
        if not tasks:
            self._flush_counts()
        outcomes: list[executor.Outcome] = []
        for index, task in enumerate(tasks):
            if self.stopping.is_set():
                claiming.release(tasks[index:], self.id)
                break
            outcome = self.process(task)
            self.sizer.observe(outcome.duration)
            outcomes.append(outcome)
        self.store_successes()
        return outcomes

    def _claim_limit(self) -> int:
        """The batch the sizer asks for, but no more tasks than are left before recycling."""
        limit = self.sizer.next()
        if self.max_tasks is not None:
            limit = min(limit, max(1, self.max_tasks - self.tasks_done))
        return limit

    def _flush_counts(self) -> None:
        self._counts_flushed_at = self.clock()
        counters.flush()

    def process(self, task: models.Task) -> executor.Outcome:
        """Run one claimed task and record its outcome.

        The claim stamped the whole batch's started_at; the real start is kept
        in memory and written with the outcome, rather than by an UPDATE of
        its own before each task.

        A success is not stored at once: it waits, for at most STORE_DELAY,
        to be stored with the successes after it in one transaction (see
        store_successes()). Until then the task stays RUNNING under this
        worker's lease; if the worker dies meanwhile, its supervisor, told
        through the pipe which tasks returned, retries them as orphans.
        Waiting successes are stored before a task with a timeout starts, so
        that a timeout's kill never takes finished work with it. Failures,
        expiries, chain links and on_orphan="fail" tasks are stored at once.
        """
        if self._unstored and (
            task.timeout or self.clock() - self._unstored_since >= STORE_DELAY
        ):
            self.store_successes()
        task.started_at = timezone.now()
        self.reporter.started(task)
        outcome = executor.execute(task, soft_timeout=task.timeout)
        fields = executor.deferred_fields(outcome, self.id)
        if fields is None:
            self._store(lambda: executor.record(outcome, self.id), f"task id={task.id}")
            self.reporter.finished(task, stored=True)
        else:
            if not self._unstored:
                self._unstored_since = self.clock()
            self._unstored.append((outcome, fields))
            self.reporter.finished(task, stored=False)
        self.tasks_done += 1
        return outcome

    def store_successes(self) -> None:
        """Store the successes that wait, in one transaction, and tell the supervisor."""
        if not self._unstored:
            return
        waiting = self._unstored
        self._store(
            lambda: executor.record_successes(waiting, self.id),
            f"{len(waiting)} successes",
        )
        self._unstored = []
        self.reporter.stored([outcome.task for outcome, _ in waiting])

    def _store(self, write: Callable[[], object], what: str) -> None:
        """Store outcomes with `write`, waiting out a database outage.

        Dropping them would leave the tasks RUNNING under a lease that this
        live worker's supervisor keeps renewing: nobody would ever rescue them.
        Only a stop request ends the wait; the tasks are then rescued, and run
        again, once their lease runs out, as if this worker had died.
        """
        failures = 0
        while True:
            # The task may have left a broken or expired connection behind.
            refresh_connections()
            try:
                write()
                return
            except DatabaseError as exc:
                if self.stopping.is_set():
                    logger.error(
                        "Worker %s could not store the outcome of %s (%s) and is "
                        "stopping; the tasks will be rescued when their lease runs out.",
                        self.id,
                        what,
                        exc,
                    )
                    raise
                failures += 1
                delay = min(DB_ERROR_BACKOFF_MAX, 0.2 * 2**failures)
                logger.warning(
                    "Worker %s cannot store the outcome of %s (%s: %s); retrying in %.1fs.",
                    self.id,
                    what,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                connections.close_all()
                self.stopping.wait(delay)

    def run(self, *, burst: bool = False) -> int:
        """Loop until stopped, drained (burst) or due for recycling; return an exit code."""
        logger.info(
            "Worker %s started; queues=%s pid=%s",
            self.id,
            ",".join(self.queues or ["*"]),
            os.getpid(),
        )
        try:
            return self._loop(burst)
        finally:
            # A worker killed with SIGKILL loses its last interval's counts;
            # one that stops in order writes them.
            self._flush_counts()

    def _loop(self, burst: bool) -> int:
        failures = 0
        idle_wait = self.poll_interval
        while not self.stopping.is_set():
            try:
                outcomes = self.run_once()
            except DatabaseError as exc:
                failures += 1
                delay = min(
                    DB_ERROR_BACKOFF_MAX, max(self.poll_interval, 0.1) * 2**failures
                )
                logger.warning(
                    "Worker %s cannot reach the database (%s: %s); retrying in %.1fs.",
                    self.id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                connections.close_all()
                self.stopping.wait(delay)
                continue
            failures = 0
            if outcomes:
                idle_wait = self.poll_interval
                reason = self._recycle_reason()
                if reason:
                    logger.info("Worker %s recycling: %s.", self.id, reason)
                    return EXIT_RECYCLE
                continue
            if burst:
                try:
                    left = claiming.any_due(self.queues)
                except DatabaseError:
                    left = True  # the next round's claim reports it and waits
                if not left:
                    break
                # Due tasks are left that this claim did not get: another
                # worker is taking them, or (MySQL) this claim lost a race.
                self.stopping.wait(BURST_RECHECK)
                continue
            listening = self._wait(idle_wait)
            # Back off while idle: an idle cluster should cost the database
            # next to nothing; the first task after a lull resets the wait.
            # A worker that LISTENs is told of new work, delayed work
            # included, so it needs no ramp: it looks on its own only every
            # LISTEN_POLL_INTERVAL, as a safety net.
            if listening:
                idle_wait = float(settings.LISTEN_POLL_INTERVAL)
            else:
                idle_wait = min(
                    max(idle_wait * 2, 0.01), float(settings.POLL_INTERVAL_MAX)
                )
        logger.info("Worker %s stopped after %s tasks.", self.id, self.tasks_done)
        return EXIT_DONE

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early for work (PostgreSQL's NOTIFY) or a stop request.

        Return whether the wait listened for notifications (PostgreSQL).
        """
        return wait_listening(
            lambda timeout: claiming.wait_for_work(timeout, queues=self.queues),
            seconds,
            self.stopping,
            self.clock,
        )

    def _recycle_reason(self) -> str | None:
        if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
            return f"ran {self.tasks_done} tasks (limit {self.max_tasks})"
        if self.max_memory is not None:
            used = resident_memory_mib()
            if used > self.max_memory:
                return f"resident memory {used:.0f} MiB is over the {self.max_memory} MiB limit"
        return None


def wait_listening(
    listen: Callable[[float], bool | None],
    seconds: float,
    stopping: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Wait up to `seconds` for `listen(timeout)` to hear of something, or for `stopping`.

    The wait is cut into WAIT_SLICE slices so a stop request is seen at once.
    Where `listen` returns None (no notification channel) the slice is slept
    instead. Return whether the channel answered (PostgreSQL's LISTEN): True
    at the first notification, False after a database error, which the
    caller's next round reports.
    """
    deadline = clock() + seconds
    listening = False
    while not stopping.is_set():
        remaining = deadline - clock()
        if remaining <= 0:
            break
        try:
            heard = listen(min(remaining, WAIT_SLICE))
        except DatabaseError:
            return False
        if heard:
            return True
        if heard is None:
            stopping.wait(min(remaining, WAIT_SLICE))
        else:
            listening = True
    return listening


def resident_memory_mib() -> float:
    """Return this process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def refresh_connections() -> None:
    """Drop connections that are broken or past CONN_MAX_AGE, as Django does around a request.

    Django's default CONN_MAX_AGE=0 means "close after each request", which in
    a worker would mean a new connection per task: on PostgreSQL that costs
    more than a short task. A worker is one long-lived client, so it keeps its
    connection across tasks when CONN_MAX_AGE is 0, and still closes one that
    broke (errors and a failed health check) or that outlived a positive
    CONN_MAX_AGE. A connection inside transaction.atomic() (sync mode in a
    test, say) is left alone: closing it would roll back the caller's work.
    """
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        if connection.settings_dict.get("CONN_MAX_AGE") == 0:
            connection.close_at = None
        connection.close_if_unusable_or_obsolete()


def run_inline(task: models.Task) -> models.Task:
    """Run a just-enqueued task in this process, attempts back to back (sync mode)."""
    worker_id = f"sync:{os.getpid()}"
    while True:
        claimed = (
            models.Task.objects.using(models.queue_db())
            .filter(id=task.id, status=models.Status.QUEUED)
            .update(
                status=models.Status.RUNNING,
                locked_by=worker_id,
                attempts=F("attempts") + 1,
            )
        )
        if not claimed:
            return task
        task.refresh_from_db(using=models.queue_db())
        task.started_at = timezone.now()  # written with the outcome
        executor.record(executor.execute(task), worker_id)
        counters.flush()
        if task.is_finished:
            return task
