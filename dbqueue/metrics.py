"""Prometheus metrics: queue gauges read from the indexes, outcome counters from the Counter table.

One scrape costs a handful of queries whose cost does not grow with the task
history or past DBQUEUE_DEPTH_COUNT_LIMIT queued tasks per queue, so a
15-second scrape interval is fine on a busy database:

- the queue gauges: dbqueue.stats.queue_stats(), which reads the claim and
  lease indexes (counting queued tasks only up to the limit, see
  dbqueue.backlog), the dead letters per queue and the queue states, but not
  the hour of finished tasks that stats.snapshot() adds (the counters give
  Prometheus the same through rate());
- the worker registry: a small table;
- outcome totals and durations: the Counter table, a few rows per function
  and queue (see dbqueue.counters for why they live in the database).

Every process that serves them (the view, any cluster's port) reads the same
database, so each serves the whole system's numbers: scrape one of them.

prometheus-client is an optional dependency (``pip install dbqueue[prometheus]``):
nothing here imports it until metrics are asked for, and then a missing
package is an ImproperlyConfigured error that says how to install it.
"""

from __future__ import annotations

import datetime
import hmac
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from dbqueue import counters, models, stats
from dbqueue.conf import settings

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "dbqueue"
INSTALL_HINT = (
    "Install it with: pip install 'dbqueue[prometheus]' (or prometheus-client)."
)
# Counter events exposed as a counter of their own: (event, name, help).
EVENT_COUNTERS = (
    (
        counters.Event.RETRIED,
        "task_retries",
        "Failed attempts queued again for a retry.",
    ),
    (
        counters.Event.DEAD_LETTERED,
        "task_dead_letters",
        "Tasks moved to the dead-letter queue after their last attempt.",
    ),
    (
        counters.Event.DISCARDED,
        "task_discarded",
        "Tasks that failed for good without a dead letter (discard_on).",
    ),
    (counters.Event.EXPIRED, "task_expired", "Tasks not run because they expired."),
    (
        counters.Event.RESCUED,
        "orphans_rescued",
        "Tasks rescued from a worker that died or stopped heartbeating.",
    ),
)


def require_client() -> None:
    """Raise ImproperlyConfigured unless prometheus-client can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"dbqueue's Prometheus metrics need the prometheus-client package. {INSTALL_HINT}"
        ) from exc


def render() -> tuple[bytes, str]:
    """Return the metrics in Prometheus' text format, and its content type.

    Raise ImproperlyConfigured if prometheus-client is not installed, and
    DatabaseError if the queue database cannot be read.
    """
    require_client()
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
    )

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def is_authorized(header: str | None) -> bool:
    """Say whether an Authorization header carries DBQUEUE_METRICS_TOKEN as a bearer token."""
    token = settings.METRICS_TOKEN
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), str(token).encode())


class _Collector:
    """Reads the database afresh at each scrape."""

    def collect(self) -> Iterator[Metric]:
        return iter(families())


def families(now: datetime.datetime | None = None) -> list[Metric]:
    """Build every metric family from the database as of `now`."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    started = time.monotonic()
    now = now or timezone.now()

    def gauge(name: str, doc: str, labels: list[str]) -> Any:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)

    depth = gauge("queue_depth", "Queued tasks that are due: the backlog.", ["queue"])
    later = gauge(
        "queue_scheduled",
        "Queued tasks due later (countdowns, etas, retries in backoff).",
        ["queue"],
    )
    age = gauge(
        "queue_oldest_age_seconds",
        "How long the oldest due task has waited past its run time (0 when none): the lag.",
        ["queue"],
    )
    running = gauge("tasks_running", "Tasks claimed by a worker now.", ["queue"])
    dead = gauge(
        "dead_letter_entries",
        "Entries in the dead-letter queue (replayed or not).",
        ["queue"],
    )
    paused = gauge("queue_paused", "1 while the queue is paused.", ["queue"])
    depth_capped = gauge(
        "queue_depth_capped",
        "1 when queue_depth stopped counting at DBQUEUE_DEPTH_COUNT_LIMIT: the backlog is at least that.",
        ["queue"],
    )
    later_capped = gauge(
        "queue_scheduled_capped",
        "1 when queue_scheduled stopped counting at DBQUEUE_DEPTH_COUNT_LIMIT.",
        ["queue"],
    )
    totals = counters.totals()
    queues = stats.queue_stats(now, names={total.queue for total in totals})
    for queue in sorted(queues.values(), key=lambda queue: queue.name):
        depth.add_metric([queue.name], queue.due)
        later.add_metric([queue.name], queue.waiting)
        age.add_metric([queue.name], queue.lag.total_seconds() if queue.lag else 0.0)
        running.add_metric([queue.name], queue.running)
        dead.add_metric([queue.name], queue.dead_letters)
        paused.add_metric([queue.name], 1.0 if queue.paused else 0.0)
        depth_capped.add_metric([queue.name], 1.0 if queue.due_capped else 0.0)
        later_capped.add_metric([queue.name], 1.0 if queue.waiting_capped else 0.0)
    workers = gauge(
        "workers",
        "Live qcluster processes (heartbeat within a lease), by role.",
        ["role"],
    )
    live = [row.worker.role for row in stats.workers(now) if not row.is_stale]
    for role in models.Role:
        workers.add_metric([role.value.lower()], live.count(role))

    labels = ["queue", "func"]
    runs = CounterMetricFamily(
        f"{PREFIX}_task_runs",
        "Attempts that ran to an end, by outcome (failed includes those retried).",
        labels=[*labels, "outcome"],
    )
    duration = HistogramMetricFamily(
        f"{PREFIX}_task_duration_seconds",
        "How long attempts ran, succeeded or failed.",
        labels=labels,
    )
    by_event = {
        event: CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
        for event, name, doc in EVENT_COUNTERS
    }
    bounds = [*(f"{bound:g}" for bound in counters.DURATION_BUCKETS), "+Inf"]
    for total in totals:
        key = [total.queue, total.func]
        runs.add_metric([*key, "succeeded"], total.count(counters.Event.SUCCEEDED))
        runs.add_metric([*key, "failed"], total.count(counters.Event.FAILED))
        cumulative, running_sum = [], 0
        for bound, n in zip(bounds, total.buckets, strict=True):
            running_sum += n
            cumulative.append((bound, running_sum))
        duration.add_metric(key, cumulative, total.seconds)
        for event, family in by_event.items():
            family.add_metric(key, total.count(event))
    took = gauge(
        "metrics_collect_seconds", "Time this scrape spent reading the database.", []
    )
    took.add_metric([], time.monotonic() - started)
    return [
        depth,
        later,
        age,
        running,
        dead,
        paused,
        depth_capped,
        later_capped,
        workers,
        runs,
        duration,
        *by_event.values(),
        took,
    ]
