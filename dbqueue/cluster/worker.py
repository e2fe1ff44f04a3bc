"""The worker loop: claim a batch, run each task, record the outcome.

``Worker.run_once()`` is the unit of work and returns what it did, so tests
drive a worker in-process without forking. ``run()`` repeats it until told to
stop; ``--burst`` stops when nothing is due.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, connections
from django.db.models import F

from dbqueue import claiming, models
from dbqueue.cluster import executor
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

DB_ERROR_BACKOFF_MAX = (
    30.0  # seconds between claim attempts while the database is unreachable
)


def new_worker_id(role: str = "worker") -> str:
    """Return an id unique across hosts and restarts: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{role}:{secrets.token_hex(3)}"


class Worker:
    """Claims and runs tasks from `queues`: DBQUEUE_QUEUES by default, every queue with "*"."""

    def __init__(
        self,
        *,
        worker_id: str | None = None,
        queues: Sequence[str] | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = worker_id or new_worker_id()
        chosen = list(queues) if queues is not None else list(settings.QUEUES)
        self.queues: list[str] | None = None if "*" in chosen else chosen
        self.batch_size = batch_size or int(settings.BATCH_SIZE)
        self.poll_interval = (
            poll_interval
            if poll_interval is not None
            else float(settings.POLL_INTERVAL)
        )
        self.clock = clock
        self.stopping = threading.Event()
        self.tasks_done = 0

    def stop(self, signum: int | None = None) -> None:
        """Finish the running task, then leave the loop."""
        if not self.stopping.is_set():
            logger.info("Worker %s stopping after its current task.", self.id)
        self.stopping.set()

    def run_once(self) -> list[executor.Outcome]:
        """Claim one batch and run it; return the outcome of each task run."""
        refresh_connections()
        tasks = claiming.claim(self.id, self.queues, self.batch_size)
        outcomes: list[executor.Outcome] = []
        for index, task in enumerate(tasks):
            if self.stopping.is_set():
                claiming.release(tasks[index:], self.id)
                break
            if index > 0:
                # The claim stamped the whole batch; this one starts only now.
                task.mark_started(self.id)
            outcomes.append(self.process(task))
        return outcomes

    def process(self, task: models.Task) -> executor.Outcome:
        """Run one claimed task and record its outcome."""
        outcome = executor.execute(task)
        # The task may have left a broken or expired connection behind.
        refresh_connections()
        executor.record(outcome, self.id)
        self.tasks_done += 1
        return outcome

    def run(self, *, burst: bool = False, max_tasks: int | None = None) -> int:
        """Loop until stopped (or, with `burst`, until nothing is due); return an exit code."""
        logger.info(
            "Worker %s started; queues=%s pid=%s",
            self.id,
            ",".join(self.queues or ["*"]),
            os.getpid(),
        )
        failures = 0
        while not self.stopping.is_set():
            try:
                outcomes = self.run_once()
            except DatabaseError as exc:
                failures += 1
                delay = min(DB_ERROR_BACKOFF_MAX, self.poll_interval * 2**failures)
                logger.warning(
                    "Worker %s cannot claim (%s: %s); retrying in %.1fs.",
                    self.id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                connections.close_all()
                self.stopping.wait(delay)
                continue
            failures = 0
            if max_tasks is not None and self.tasks_done >= max_tasks:
                break
            if not outcomes:
                if burst:
                    break
                self.stopping.wait(self.poll_interval)
        logger.info("Worker %s stopped after %s tasks.", self.id, self.tasks_done)
        return 0


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
        task.mark_started(worker_id)
        executor.record(executor.execute(task), worker_id)
        if task.is_finished:
            return task
