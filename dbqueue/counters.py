"""Running totals of task outcomes, kept in the database for the metrics.

Prometheus counters must only grow. Counting finished rows cannot give that:
rows are pruned, and a save=False success deletes its row at once. A qcluster
runs many processes on many hosts, they restart, and the metrics view runs in
a web process that sees none of them. So the totals live in Counter rows,
which every process that reads the table (the view, any cluster's metrics
port) sees alike.

Writing a row per outcome would put an UPDATE, and a lock on a row that
every worker finishing the same function wants, inside each outcome's
transaction: work on the hottest path there is. Instead :func:`add` counts
in this process's memory, after the outcome is stored, and :func:`flush`
adds what was counted to the rows in one short transaction: a worker every
FLUSH_INTERVAL while busy, whenever it finds nothing to claim, and when it
stops; a supervisor after each rescue or release. The price: a process
killed with SIGKILL (or one whose flush keeps failing until it exits) loses
the counts of its last interval. Prometheus' rate() and increase() tolerate
that; a total that is too low is never corrected, and one is never counted
twice.

Rows are sharded by the writer's pid (SHARDS per total) so that flushes
from different workers seldom queue behind one row lock, and they are never
deleted, so the table stays at a few rows per function and queue.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Sum

from dbqueue import models

logger = logging.getLogger(__name__)

SHARDS = (
    8  # rows per total; more spreads row locks thinner, fewer keeps the table small
)
FLUSH_INTERVAL = 5.0  # seconds a busy worker keeps its counts before writing them
# Upper bounds (seconds) of the duration histogram's buckets; the last, +Inf, is implied.
DURATION_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
)
NO_DURATION = -1  # the bucket of an event that has no duration
TIMED = frozenset({models.CounterEvent.SUCCEEDED, models.CounterEvent.FAILED})

Event = models.CounterEvent

# (event, func, queue, bucket) -> [count, seconds], not yet written.
_Key = tuple[str, str, str, int]
_pending: dict[_Key, list[float]] = {}
_pending_pid = os.getpid()


def add(
    task: models.Task, events: Iterable[str], duration: float | None = None
) -> None:
    """Count one of each of `events` for the task's function and queue, until the next flush.

    A SUCCEEDED or FAILED event with a `duration` also lands in the duration
    histogram. Call it once the outcome is stored.
    """
    pending = _own_pending()
    for event in events:
        timed = event in TIMED and duration is not None
        bucket = bucket_of(duration) if timed and duration is not None else NO_DURATION
        seconds = max(duration or 0.0, 0.0) if timed else 0.0
        entry = pending.setdefault(
            (event, task.func[:255], task.queue, bucket), [0, 0.0]
        )
        entry[0] += 1
        entry[1] += seconds


def flush() -> bool:
    """Add this process's pending counts to the Counter rows; return False if that failed.

    One transaction, one UPDATE per total counted since the last flush (an
    INSERT for a total's first count in this shard), in key order so that
    two flushes never deadlock. A database error is logged, not raised: the
    counts stay pending for the next flush, and the caller's work goes on.
    """
    pending = _own_pending()
    if not pending:
        return True
    db = models.queue_db()
    shard = os.getpid() % SHARDS
    try:
        with transaction.atomic(using=db):
            for (event, func, queue, bucket), (count, seconds) in sorted(
                pending.items()
            ):
                key = {
                    "event": event,
                    "func": func,
                    "queue": queue,
                    "bucket": bucket,
                    "shard": shard,
                }
                _add_to_row(db, key, int(count), seconds)
    except DatabaseError as exc:
        logger.warning(
            "Could not store task counts for the metrics (%s: %s); "
            "they are kept for the next try.",
            type(exc).__name__,
            exc,
        )
        return False
    pending.clear()
    return True


def _add_to_row(db: str, key: dict[str, object], count: int, seconds: float) -> None:
    rows = models.Counter.objects.using(db).filter(**key)
    if rows.update(count=F("count") + count, seconds=F("seconds") + seconds):
        return
    try:
        # A savepoint: a concurrent first insert of the same key must not
        # abort the flush's transaction, only this INSERT.
        with transaction.atomic(using=db):
            models.Counter.objects.using(db).create(**key, count=count, seconds=seconds)
    except IntegrityError:
        rows.update(count=F("count") + count, seconds=F("seconds") + seconds)


def _own_pending() -> dict[_Key, list[float]]:
    """Return this process's pending counts, dropping any a fork inherited.

    The supervisor forks its workers: a child must not write its parent's
    counts again.
    """
    global _pending_pid
    if _pending_pid != os.getpid():
        _pending.clear()
        _pending_pid = os.getpid()
    return _pending


def bucket_of(duration: float) -> int:
    """Return the index of the first bucket whose bound is at least `duration`."""
    return bisect.bisect_left(DURATION_BUCKETS, duration)


@dataclass
class Total:
    """One function's totals on one queue."""

    func: str
    queue: str
    events: dict[str, int] = field(default_factory=dict)
    # Runs per duration bucket (not cumulative), the last one being +Inf.
    buckets: list[int] = field(
        default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1)
    )
    seconds: float = 0.0

    def count(self, event: str) -> int:
        return self.events.get(event, 0)


def totals() -> list[Total]:
    """Sum the shards: one Total per function and queue that ever had an outcome."""
    found: dict[tuple[str, str], Total] = {}
    rows = (
        models.Counter.objects.using(models.queue_db())
        .order_by()
        .values("func", "queue", "event", "bucket")
        .annotate(n=Sum("count"), s=Sum("seconds"))
    )
    for row in rows:
        key = (row["func"], row["queue"])
        total = found.setdefault(key, Total(*key))
        n = int(row["n"] or 0)
        total.events[row["event"]] = total.count(row["event"]) + n
        if row["bucket"] != NO_DURATION and row["event"] in TIMED:
            index = min(max(int(row["bucket"]), 0), len(DURATION_BUCKETS))
            total.buckets[index] += n
            total.seconds += float(row["s"] or 0.0)
    return sorted(found.values(), key=lambda total: (total.queue, total.func))


def after_failure(task: models.Task) -> str:
    """Name what a recorded failure led to: a retry, a dead letter or a discard."""
    if task.status == models.Status.QUEUED:
        return Event.RETRIED
    if task.dead_letter is not None:
        return Event.DEAD_LETTERED
    return Event.DISCARDED
