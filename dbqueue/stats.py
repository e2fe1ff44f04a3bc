"""Queue health in numbers: per-queue depth and lag, the last hour's throughput, live workers.

The one owner of these queries, for the admin dashboard, `qinfo`, `qmonitor`,
`qhealth` and the metrics. Each reader takes the pieces it shows, and reads
each once:

- depth(): queued depth and oldest due task per queue, from the claim index
  (QUEUED rows only), each count stopping at DBQUEUE_DEPTH_COUNT_LIMIT so a
  huge backlog costs no more than the limit (dbqueue.backlog); all
  `qhealth` needs besides the paused names;
- queue_stats(): depth() plus running per queue (the lease index),
  dead-letter entries per queue (the (queue, failed_at) index) and the queue
  states (a small table); what the metrics read, whose cost does not grow
  with the traffic;
- snapshot(): queue_stats() plus succeeded and failed per queue and minute
  over the last hour (the (status, finished_at) index, grouped in the
  database) and the worker registry (a small table); the dashboard and qinfo.

Succeeded tasks enqueued with save=False are deleted when they finish, so
throughput counts only tasks whose rows are kept.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from dbqueue import backlog, models
from dbqueue.conf import settings

WINDOW = datetime.timedelta(hours=1)  # the charts' span
BUCKET = datetime.timedelta(minutes=1)  # one bar per minute
ZERO = datetime.timedelta(0)


class _Outcomes:
    """The failure rate of anything that counts succeeded and failed tasks."""

    succeeded: int
    failed: int

    @property
    def failure_rate(self) -> float | None:
        done = self.succeeded + self.failed
        return self.failed / done if done else None

    @property
    def failure_percent(self) -> str:
        rate = self.failure_rate
        return "" if rate is None else f"{rate:.1%}"


@dataclass
class QueueStats(_Outcomes):
    """One queue's row on the dashboard."""

    name: str
    due: int = 0
    waiting: int = 0  # queued with a later run_after (retries, countdowns)
    # The count stopped at DBQUEUE_DEPTH_COUNT_LIMIT: there are at least that many.
    due_capped: bool = False
    waiting_capped: bool = False
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
    def queued(self) -> int:
        return self.due + self.waiting

    @property
    def queued_capped(self) -> bool:
        """Tell whether `queued` is a lower bound (one of its counts stopped at the limit)."""
        return self.due_capped or self.waiting_capped


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
class ClusterStats:
    """One qcluster: its supervisor's registry row and its children's."""

    id: str
    supervisor: WorkerStats | None  # None while only children are registered
    children: list[WorkerStats]

    @property
    def is_stale(self) -> bool:
        """Tell whether the cluster stopped heartbeating (unseen for a lease)."""
        rows = [self.supervisor] if self.supervisor else self.children
        return all(row.is_stale for row in rows)

    @property
    def last_seen(self) -> datetime.datetime:
        rows = [self.supervisor] if self.supervisor else self.children
        return max(row.worker.last_seen for row in rows)


@dataclass
class Throughput(_Outcomes):
    """Tasks finished in the last few minutes (the current minute so far included)."""

    since: datetime.datetime
    until: datetime.datetime
    succeeded: int
    failed: int

    @property
    def minutes(self) -> float:
        return max((self.until - self.since).total_seconds(), 1.0) / 60

    @property
    def per_minute(self) -> float:
        return (self.succeeded + self.failed) / self.minutes


@dataclass
class Snapshot(_Outcomes):
    now: datetime.datetime
    queues: list[QueueStats]
    buckets: list[Bucket]
    workers: list[WorkerStats] = field(default_factory=list)
    succeeded: int = field(init=False)  # in the last hour's buckets
    failed: int = field(init=False)

    def __post_init__(self) -> None:
        self.succeeded = sum(bucket.succeeded for bucket in self.buckets)
        self.failed = sum(bucket.failed for bucket in self.buckets)

    @property
    def clusters(self) -> list[ClusterStats]:
        """Group the registry by cluster, supervisors first, in id order."""
        found: dict[str, ClusterStats] = {}
        for row in self.workers:
            cluster = found.setdefault(
                row.worker.cluster_id, ClusterStats(row.worker.cluster_id, None, [])
            )
            if row.worker.role == models.Role.SUPERVISOR:
                cluster.supervisor = row
            else:
                cluster.children.append(row)
        return sorted(found.values(), key=lambda cluster: cluster.id)

    def recent(self, minutes: int = 5) -> Throughput:
        """Sum the last `minutes` one-minute buckets; the newest is the minute under way."""
        if not 1 <= minutes <= len(self.buckets):
            raise ValueError(
                f"minutes must be 1 to {len(self.buckets)}, got {minutes!r}."
            )
        chosen = self.buckets[-minutes:]
        return Throughput(
            since=chosen[0].start,
            until=self.now,
            succeeded=sum(bucket.succeeded for bucket in chosen),
            failed=sum(bucket.failed for bucket in chosen),
        )

    def max_lag(self, *, paused: bool = False) -> QueueStats | None:
        """Return the queue whose oldest due task has waited longest (paused ones only if asked)."""
        return max_lag(self.queues, paused=paused)


def max_lag(queues: Iterable[QueueStats], *, paused: bool = False) -> QueueStats | None:
    """Return the queue whose oldest due task has waited longest (paused ones only if asked)."""
    lagging = [
        queue
        for queue in queues
        if queue.lag is not None and (paused or not queue.paused)
    ]
    return max(lagging, key=lambda queue: queue.lag or ZERO, default=None)


def snapshot(now: datetime.datetime | None = None) -> Snapshot:
    """Read the dashboard's numbers as of `now` (see the module docstring for the cost)."""
    now = now or timezone.now()
    queues = queue_stats(now)
    buckets = _throughput(now, queues)
    return Snapshot(
        now=now,
        queues=sorted(queues.values(), key=lambda stats: stats.name),
        buckets=list(buckets.values()),
        workers=workers(now),
    )


def depth(
    now: datetime.datetime, queues: Iterable[str] | None = None
) -> dict[str, QueueStats]:
    """Read the queued depth and the oldest due task of each queue with queued tasks.

    Each count stops at DBQUEUE_DEPTH_COUNT_LIMIT and says so in due_capped
    and waiting_capped (see dbqueue.backlog); `queues` limits it to these.
    """
    return {
        name: QueueStats(
            name,
            due=found.due,
            waiting=found.waiting,
            due_capped=found.due_capped,
            waiting_capped=found.waiting_capped,
            oldest_due=found.oldest_due,
            lag=now - found.oldest_due if found.oldest_due else None,
        )
        for name, found in backlog.measure(
            now, queues, int(settings.DEPTH_COUNT_LIMIT)
        ).items()
    }


def queue_stats(
    now: datetime.datetime, *, names: Iterable[str] = ()
) -> dict[str, QueueStats]:
    """Read each queue's depth, lag, running tasks, dead letters and state, by name.

    Every queue with a row anywhere is there, and the default queue and
    `names` even without one. The last hour's succeeded and failed stay 0:
    only snapshot() reads the history.
    """
    db = models.queue_db()
    found = depth(now)

    def row(name: str) -> QueueStats:
        return found.setdefault(name, QueueStats(name))

    for name in (str(settings.DEFAULT_QUEUE), *names):
        row(name)
    for held in (
        models.Task.objects.using(db)
        .running()
        .order_by()
        .values("queue")
        .annotate(n=Count("id"))
    ):
        row(held["queue"]).running = held["n"]
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
    return found


def _throughput(
    now: datetime.datetime, queues: dict[str, QueueStats]
) -> dict[datetime.datetime, Bucket]:
    """Count the last hour's outcomes into `queues` and into one-minute buckets."""
    buckets = _buckets(now)
    for done in (
        models.Task.objects.using(models.queue_db())
        .filter(
            status__in=[models.Status.SUCCEEDED, models.Status.FAILED],
            finished_at__gte=now - WINDOW,
            finished_at__lte=now,
        )
        .order_by()
        .annotate(minute=TruncMinute("finished_at", tzinfo=datetime.UTC))
        .values("queue", "status", "minute")
        .annotate(n=Count("id"))
    ):
        stats = queues.setdefault(done["queue"], QueueStats(done["queue"]))
        bucket = buckets.get(done["minute"])
        if done["status"] == models.Status.SUCCEEDED:
            stats.succeeded += done["n"]
            if bucket is not None:
                bucket.succeeded += done["n"]
        else:
            stats.failed += done["n"]
            if bucket is not None:
                bucket.failed += done["n"]
    return buckets


def workers(now: datetime.datetime) -> list[WorkerStats]:
    """Return the registry's processes; stale ones (unseen for a lease) are marked."""
    stale_before = now - datetime.timedelta(seconds=float(settings.LEASE))
    return [
        WorkerStats(worker, worker.last_seen < stale_before)
        for worker in models.Worker.objects.using(models.queue_db()).all()
    ]


def current_tasks(workers: list[WorkerStats]) -> dict[uuid.UUID, str]:
    """Return the function of each task these workers run, by task id, in one query."""
    ids = {
        row.worker.current_task_id
        for row in workers
        if row.worker.current_task_id is not None
    }
    if not ids:
        return {}
    return dict(
        models.Task.objects.using(models.queue_db())
        .filter(id__in=ids)
        .values_list("id", "func")
    )


def _buckets(now: datetime.datetime) -> dict[datetime.datetime, Bucket]:
    """Return the last hour's one-minute buckets by their UTC start, oldest first."""
    end = now.astimezone(datetime.UTC).replace(second=0, microsecond=0)
    count = int(WINDOW / BUCKET)
    return {
        start: Bucket(start)
        for start in (end - BUCKET * (count - 1 - index) for index in range(count))
    }
