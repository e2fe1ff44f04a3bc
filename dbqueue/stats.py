"""Queue health in numbers: per-queue depth and lag, the last hour's throughput, live workers.

Shared by the admin dashboard, `qinfo` and the metrics view.

A snapshot costs a fixed handful of queries whatever the table sizes and the
number of queues, each answered from an index:

- queued depth and oldest due task per queue: the claim index (QUEUED rows only);
- running per queue: the lease index (RUNNING rows only);
- succeeded and failed per queue and minute over the last hour: the
  (status, finished_at) index, grouped in the database;
- dead-letter entries per queue: the (queue, failed_at) index;
- paused queues and the worker registry: small tables.

Succeeded tasks enqueued with save=False are deleted when they finish, so
throughput counts only tasks whose rows are kept.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from dbqueue import models
from dbqueue.conf import settings

WINDOW = datetime.timedelta(hours=1)  # the charts' span
BUCKET = datetime.timedelta(minutes=1)  # one bar per minute


@dataclass
class QueueStats:
    """One queue's row on the dashboard."""

    name: str
    due: int = 0
    waiting: int = 0  # queued with a later run_after (retries, countdowns)
    running: int = 0
    succeeded: int = 0  # in the last hour
    failed: int = 0  # in the last hour
    dead_letters: int = 0
    oldest_due: datetime.datetime | None = None
    paused: bool = False
    changed_by: str = ""
    changed_at: datetime.datetime | None = None
    lag: datetime.timedelta | None = None

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.succeeded, self.failed)

    @property
    def failure_percent(self) -> str:
        return _percent(self.failure_rate)


@dataclass
class Bucket:
    start: datetime.datetime
    succeeded: int = 0
    failed: int = 0


@dataclass
class WorkerStats:
    worker: models.Worker
    is_stale: bool


@dataclass
class Snapshot:
    now: datetime.datetime
    queues: list[QueueStats]
    buckets: list[Bucket]
    workers: list[WorkerStats] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return sum(bucket.succeeded for bucket in self.buckets)

    @property
    def failed(self) -> int:
        return sum(bucket.failed for bucket in self.buckets)

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.succeeded, self.failed)

    @property
    def failure_percent(self) -> str:
        return _percent(self.failure_rate)


def snapshot(now: datetime.datetime | None = None) -> Snapshot:
    """Read the dashboard's numbers as of `now` (see the module docstring for the cost)."""
    now = now or timezone.now()
    db = models.queue_db()
    tasks = models.Task.objects.using(db)
    queues: dict[str, QueueStats] = {}

    def row(name: str) -> QueueStats:
        return queues.setdefault(name, QueueStats(name))

    for item in (
        tasks.queued()
        .order_by()
        .values("queue")
        .annotate(
            total=Count("id"),
            due=Count("id", filter=Q(run_after__lte=now)),
            oldest=Min("run_after", filter=Q(run_after__lte=now)),
        )
    ):
        stats = row(item["queue"])
        stats.due, stats.waiting = item["due"], item["total"] - item["due"]
        stats.oldest_due = item["oldest"]
        stats.lag = now - item["oldest"] if item["oldest"] else None
    for held in tasks.running().order_by().values("queue").annotate(n=Count("id")):
        row(held["queue"]).running = held["n"]
    buckets = _buckets(now)
    for done in (
        tasks.filter(
            status__in=[models.Status.SUCCEEDED, models.Status.FAILED],
            finished_at__gte=now - WINDOW,
            finished_at__lte=now,
        )
        .order_by()
        .annotate(minute=TruncMinute("finished_at", tzinfo=datetime.UTC))
        .values("queue", "status", "minute")
        .annotate(n=Count("id"))
    ):
        stats = row(done["queue"])
        bucket = buckets.get(done["minute"])
        if done["status"] == models.Status.SUCCEEDED:
            stats.succeeded += done["n"]
            if bucket is not None:
                bucket.succeeded += done["n"]
        else:
            stats.failed += done["n"]
            if bucket is not None:
                bucket.failed += done["n"]
    for dead in (
        models.FailedTask.objects.using(db)
        .order_by()
        .values("queue")
        .annotate(n=Count("id"))
    ):
        row(dead["queue"]).dead_letters = dead["n"]
    for state in models.QueueState.objects.using(db).all():
        stats = row(state.name)
        stats.paused, stats.changed_by = state.paused, state.changed_by
        stats.changed_at = state.changed_at
    row(str(settings.DEFAULT_QUEUE))
    return Snapshot(
        now=now,
        queues=sorted(queues.values(), key=lambda stats: stats.name),
        buckets=list(buckets.values()),
        workers=workers(now),
    )


def workers(now: datetime.datetime) -> list[WorkerStats]:
    """Return the registry's processes; stale ones (unseen for a lease) are marked."""
    stale_before = now - datetime.timedelta(seconds=float(settings.LEASE))
    return [
        WorkerStats(worker, worker.last_seen < stale_before)
        for worker in models.Worker.objects.using(models.queue_db()).all()
    ]


def _buckets(now: datetime.datetime) -> dict[datetime.datetime, Bucket]:
    """Return the last hour's one-minute buckets by their UTC start, oldest first."""
    end = now.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    count = int(WINDOW / BUCKET)
    return {
        start: Bucket(start)
        for start in (end - BUCKET * (count - 1 - index) for index in range(count))
    }


def _rate(succeeded: int, failed: int) -> float | None:
    done = succeeded + failed
    return failed / done if done else None


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1%}"
