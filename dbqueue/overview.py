"""The one-screen overview that `qinfo` prints and `qmonitor` refreshes.

It is dbqueue.stats' snapshot, laid out for a terminal (render) or for a
program (as_dict, which `qinfo --json` prints). Reading it costs the
snapshot's handful of indexed queries (a few more per queue past
DBQUEUE_DEPTH_COUNT_LIMIT queued tasks) and one more for the functions of
the tasks the workers are running.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.utils import timezone

from dbqueue import models, progress, stats
from dbqueue.conf import settings

RECENT_MINUTES = 5  # the span of "throughput of the last minutes"


@dataclass
class Overview:
    snapshot: stats.Snapshot
    database: str
    vendor: str
    recent: stats.Throughput
    minutes: int  # the span of `recent`
    current: dict[uuid.UUID, str] = field(default_factory=dict)  # task id -> func


def read(
    now: datetime.datetime | None = None, *, minutes: int = RECENT_MINUTES
) -> Overview:
    """Read the overview as of `now`. Raise DatabaseError if the queue database is unreachable."""
    snapshot = stats.snapshot(now or timezone.now())
    alias = models.queue_db()
    return Overview(
        snapshot=snapshot,
        database=alias,
        vendor=connections[alias].vendor,
        recent=snapshot.recent(minutes),
        minutes=minutes,
        current=stats.current_tasks(snapshot.workers),
    )


def as_dict(overview: Overview) -> dict[str, Any]:
    """Return the overview as JSON-ready data: times in ISO 8601, ages in seconds."""
    snapshot, now = overview.snapshot, overview.snapshot.now
    recent = overview.recent
    return {
        "time": now.isoformat(),
        "database": {"alias": overview.database, "vendor": overview.vendor},
        "clusters": [
            {
                "id": cluster.id,
                "host": _head(cluster).worker.host,
                "pid": cluster.supervisor.worker.pid if cluster.supervisor else None,
                "queues": _head(cluster).worker.queues,
                "started_at": _head(cluster).worker.started_at.isoformat(),
                "last_seen": cluster.last_seen.isoformat(),
                "seconds_since_heartbeat": _seconds(now - cluster.last_seen),
                "stale": cluster.is_stale,
                "processes": [
                    _process(row, overview.current, now) for row in cluster.children
                ],
            }
            for cluster in snapshot.clusters
        ],
        "queues": [
            {
                "name": queue.name,
                "queued": queue.queued,
                "due": queue.due,
                "waiting": queue.waiting,
                # True: the number above is DBQUEUE_DEPTH_COUNT_LIMIT, and
                # there are more (see dbqueue.backlog).
                "queued_capped": queue.queued_capped,
                "due_capped": queue.due_capped,
                "waiting_capped": queue.waiting_capped,
                "running": queue.running,
                "oldest_due": queue.oldest_due.isoformat()
                if queue.oldest_due
                else None,
                "lag_seconds": _seconds(queue.lag),
                "paused": queue.paused,
                "succeeded_last_hour": queue.succeeded,
                "failed_last_hour": queue.failed,
                "failure_rate_last_hour": _round(queue.failure_rate),
                "dead_letters": queue.dead_letters,
            }
            for queue in snapshot.queues
        ],
        "paused_queues": [queue.name for queue in snapshot.queues if queue.paused],
        "recent": {
            "minutes": overview.minutes,
            "since": recent.since.isoformat(),
            "succeeded": recent.succeeded,
            "failed": recent.failed,
            "per_minute": round(recent.per_minute, 2),
            "failure_rate": _round(recent.failure_rate),
        },
    }


def render(overview: Overview) -> str:
    """Lay the overview out as plain text for a terminal: one line per process and queue."""
    snapshot, now = overview.snapshot, overview.snapshot.now
    lines = [
        f"dbqueue · {now.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC · "
        f"database {overview.database!r} ({overview.vendor})",
        "",
    ]
    clusters = snapshot.clusters
    live = sum(not cluster.is_stale for cluster in clusters)
    lines.append(f"Clusters: {live} live, {len(clusters) - live} stale")
    if not clusters:
        lines.append(
            "  No cluster has registered. Start one with: python manage.py qcluster"
        )
    for cluster in clusters:
        head = _head(cluster).worker
        mark = "STALE " if cluster.is_stale else ""
        lines.append(
            f"  {mark}{head.host} pid {head.pid}  queues {','.join(head.queues)}"
            f"  up {_span(now - head.started_at)}"
            f"  heartbeat {_ago(now - cluster.last_seen)}"
        )
        lines.append(f"    id {cluster.id}")
        for row in cluster.children:
            lines.append("    " + _describe(row, overview.current, now))
    lines += ["", _queue_header(), "  (succeeded, failed and fail%: the last hour)"]
    for queue in snapshot.queues:
        lines.append(_queue_line(queue))
    if any(queue.queued_capped for queue in snapshot.queues):
        lines.append(
            f"  ≥: counting stopped at DBQUEUE_DEPTH_COUNT_LIMIT "
            f"({settings.DEPTH_COUNT_LIMIT:,}); there are more"
        )
    paused = [queue.name for queue in snapshot.queues if queue.paused]
    if paused:
        lines.append(
            f"  Paused: {', '.join(paused)} (workers leave them alone; resume "
            "from the admin's queues page)"
        )
    recent = overview.recent
    rate = f" ({recent.failure_percent} failed)" if recent.failure_rate else ""
    span = f"{overview.minutes} minutes" if overview.minutes != 1 else "minute"
    lines += [
        "",
        f"Last {span}: {recent.succeeded:,} succeeded, "
        f"{recent.failed:,} failed{rate}, {recent.per_minute:,.1f} tasks/min",
    ]
    return "\n".join(lines)


def _head(cluster: stats.ClusterStats) -> stats.WorkerStats:
    return cluster.supervisor or cluster.children[0]


def _describe(
    row: stats.WorkerStats, current: dict[uuid.UUID, str], now: datetime.datetime
) -> str:
    worker = row.worker
    text = f"{worker.role.lower():<9} pid {worker.pid:<7}"
    if worker.role == models.Role.WORKER:
        text += f" done {worker.tasks_done:<5}"
        if worker.current_task_id is not None:
            func = current.get(worker.current_task_id, "(finished)")
            since = worker.current_task_started_at
            running = f" for {_span(now - since)}" if since else ""
            text += f" running {func}{running} (task {worker.current_task_id})"
        else:
            text += " idle"
    if row.is_stale:
        text += f"  STALE, heartbeat {_ago(now - worker.last_seen)}"
    return text.rstrip()


COLUMNS = (  # wide enough for a capped count, "≥100,000"
    ("queued", 9),
    ("due", 8),
    ("later", 8),
    ("running", 7),
    ("lag", 7),
    ("succeeded", 9),
    ("failed", 6),
    ("fail%", 6),
    ("dead", 6),
)


def _queue_header() -> str:
    return (
        f"{'Queues':<20}"
        + "".join(f" {name:>{width}}" for name, width in COLUMNS).rstrip()
    )


def _queue_line(queue: stats.QueueStats) -> str:
    name = queue.name + (" [paused]" if queue.paused else "")
    if len(name) > 18:
        name = name[:17] + "…"
    values = (
        _count(queue.queued, queue.queued_capped),
        _count(queue.due, queue.due_capped),
        _count(queue.waiting, queue.waiting_capped),
        f"{queue.running:,}",
        progress.duration(queue.lag.total_seconds()) if queue.lag else "-",
        f"{queue.succeeded:,}",
        f"{queue.failed:,}",
        queue.failure_percent or "-",
        f"{queue.dead_letters:,}",
    )
    return f"  {name:<18}" + "".join(
        f" {value:>{width}}" for value, (_, width) in zip(values, COLUMNS, strict=True)
    )


def _count(number: int, capped: bool) -> str:
    """Format a depth count, marking one that stopped at the limit as a lower bound."""
    return f"≥{number:,}" if capped else f"{number:,}"


def _process(
    row: stats.WorkerStats, current: dict[uuid.UUID, str], now: datetime.datetime
) -> dict[str, Any]:
    worker = row.worker
    task = None
    if worker.current_task_id is not None:
        since = worker.current_task_started_at
        task = {
            "id": str(worker.current_task_id),
            "func": current.get(worker.current_task_id),
            "started_at": since.isoformat() if since else None,
            "running_seconds": _seconds(now - since) if since else None,
        }
    return {
        "id": worker.id,
        "role": worker.role,
        "pid": worker.pid,
        "tasks_done": worker.tasks_done,
        "current_task": task,
        "last_seen": worker.last_seen.isoformat(),
        "stale": row.is_stale,
    }


def _round(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


def _seconds(span: datetime.timedelta | None) -> float | None:
    return None if span is None else round(max(span.total_seconds(), 0.0), 3)


def _span(span: datetime.timedelta) -> str:
    return progress.duration(max(span.total_seconds(), 0.0))


def _ago(span: datetime.timedelta) -> str:
    return f"{_span(span)} ago"
