"""Health checks for probes: is a cluster alive, can the queue be served in time.

``qhealth`` prints the outcome as one line and exits 0 or 1, which is what a
Kubernetes exec probe, a systemd watchdog script or a load balancer's check
wants. Two questions, asked separately:

- **Liveness**: is this container's (this host's) cluster heartbeating? The
  supervisor writes its registry row every DBQUEUE_HEARTBEAT_INTERVAL; a row
  older than DBQUEUE_LEASE is stale (its tasks are being rescued by others),
  so the cluster is hung or gone and restarting it is the cure. "This host"
  is the host name the supervisor recorded, which inside a container is the
  container's (the pod's) own name, so the probe needs no argument there.
- **Readiness**: can the database be reached, and is no queue further behind
  than the lag threshold (DBQUEUE_HEALTH_MAX_LAG)? Lag is the age of the
  oldest due task that no worker has claimed yet. Paused queues are left
  out: an operator paused them on purpose.

Both read only small tables and the claim index (dbqueue.stats.depth()),
so a probe every few seconds costs the database next to nothing.
"""

from __future__ import annotations

import datetime
import math
import socket
from dataclasses import dataclass

from django.db import DatabaseError, connections
from django.utils import timezone

from dbqueue import models, progress, stats
from dbqueue.conf import settings


@dataclass
class Check:
    """One question's answer: its name, whether it passed, and one clause saying why."""

    name: str  # "database", "cluster" or "lag"
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check]

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def line(self) -> str:
        """Say the verdict and why in one line, the failed checks first."""
        ordered = sorted(self.checks, key=lambda check: check.ok)
        verdict = "OK" if self.healthy else "UNHEALTHY"
        return f"{verdict}: " + "; ".join(check.detail for check in ordered) + "."


def check(
    *,
    liveness: bool = True,
    readiness: bool = True,
    cluster: str | None = None,
    max_lag: float | None = None,
    queues: list[str] | None = None,
    now: datetime.datetime | None = None,
) -> Report:
    """Run the liveness and/or readiness checks; never raise for a database that is down.

    `cluster` picks the cluster whose heartbeat counts: a supervisor pid on
    this host, or a cluster id (host:pid:cluster:suffix, as qinfo shows it);
    by default any cluster on this host will do. `max_lag` is in seconds
    (None: lag is not checked); `queues` limits the lag check to these.
    """
    database = database_check()
    if not database.ok:
        return Report([database])
    now = now or timezone.now()
    checks = [database]
    try:
        if liveness:
            checks.append(cluster_check(cluster, now))
        if readiness:
            checks.append(lag_check(max_lag, queues, now))
    except DatabaseError as exc:
        checks.append(
            Check("database", False, f"a query failed: {progress.first_line(exc)}")
        )
    return Report(checks)


def database_check() -> Check:
    """Open (or reuse) the queue database's connection and run a trivial query."""
    alias = models.queue_db()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check(
            "database",
            False,
            f"database {alias!r} is unreachable: {progress.first_line(exc)}",
        )
    return Check("database", True, f"database {alias!r} reachable")


def cluster_check(cluster: str | None, now: datetime.datetime) -> Check:
    """Tell whether the chosen cluster (see check()) heartbeats within DBQUEUE_LEASE."""
    host = socket.gethostname()[:255]
    supervisors = models.Worker.objects.using(models.queue_db()).filter(
        role=models.Role.SUPERVISOR
    )
    if cluster is None:
        wanted = f"cluster on host {host!r}"
        rows = supervisors.filter(host=host)
    elif cluster.isdigit():
        wanted = f"cluster pid {cluster} on host {host!r}"
        rows = supervisors.filter(host=host, pid=int(cluster))
    else:
        wanted = f"cluster {cluster!r}"
        rows = supervisors.filter(id=cluster)
    newest = rows.order_by("-last_seen").first()
    if newest is None:
        return Check("cluster", False, f"no {wanted} is registered")
    lease = float(settings.LEASE)
    age = (now - newest.last_seen).total_seconds()
    if age > lease:
        return Check(
            "cluster",
            False,
            f"{wanted}: last heartbeat {_span(age)} ago, more than "
            f"DBQUEUE_LEASE ({_span(lease)})",
        )
    return Check("cluster", True, f"cluster {newest.id} heartbeat {_span(age)} ago")


def lag_check(
    max_lag: float | None, queues: list[str] | None, now: datetime.datetime
) -> Check:
    """Tell whether every unpaused queue's oldest due task has waited at most `max_lag` seconds."""
    if max_lag is None:
        return Check("lag", True, "lag not checked (DBQUEUE_HEALTH_MAX_LAG is None)")
    found = stats.depth(now, queues)
    paused = set(
        models.QueueState.objects.using(models.queue_db())
        .paused()
        .values_list("name", flat=True)
    )
    for name in paused.intersection(found):
        found[name].paused = True
    worst = stats.max_lag(found.values())
    limit = f"the {_span(max_lag)} limit"
    if worst is None or worst.lag is None:
        relevant = paused if queues is None else paused.intersection(queues)
        where = " outside paused queues" if relevant else ""
        return Check(
            "lag", True, f"no due task is waiting{where} (lag limit {_span(max_lag)})"
        )
    queue, lag = worst.name, max(worst.lag.total_seconds(), 0.0)
    if lag > max_lag:
        return Check("lag", False, f"queue {queue!r} lags {_span(lag)}, over {limit}")
    return Check("lag", True, f"lag {_span(lag)} on {queue!r}, within {limit}")


def max_lag_setting() -> float | None:
    """Return DBQUEUE_HEALTH_MAX_LAG as seconds, None when lag is not checked."""
    value = settings.HEALTH_MAX_LAG
    return None if value is None else float(value)


def _span(seconds: float) -> str:
    if math.isinf(seconds):
        return "forever"
    return progress.duration(seconds)
