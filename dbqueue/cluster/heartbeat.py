"""The registry, leases and rescue: the database side of keeping tasks alive.

The supervisor is the only process that writes here for its cluster. At each
heartbeat it marks itself and its children as seen and renews the lease of
every task its children hold, in one UPDATE, so a task that runs for an hour
keeps its lease for an hour. It also rescues, for every cluster, tasks whose
lease ran out: their worker (or its whole cluster, or its host) is gone. Each
change is conditional on the task still being held by the worker it was
claimed by, and a rescue also on the lease still being expired, so a worker
that comes back after a pause finds its task gone instead of overwriting the
new owner's work.
"""

from __future__ import annotations

import datetime
import logging
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from dbqueue import claiming, counters, exceptions, models, task_logging
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

RESCUE_BATCH = 100  # expired tasks rescued per heartbeat
STALE_AFTER_LEASES = 10  # registry rows unseen for this many leases are removed


@dataclass
class Member:
    """What the registry shows for one process of a cluster."""

    id: str
    role: str
    pid: int
    queues: list[str]
    current_task_id: str | None = None
    current_task_started_at: datetime.datetime | None = None
    tasks_done: int = 0


def register(
    cluster_id: str, member: Member, now: datetime.datetime | None = None
) -> None:
    """Add or refresh a process's registry row."""
    now = now or timezone.now()
    fields = {
        "cluster_id": cluster_id,
        "role": member.role,
        "host": socket.gethostname()[:255],
        "pid": member.pid,
        "queues": member.queues,
        "current_task_id": member.current_task_id,
        "current_task_started_at": member.current_task_started_at,
        "tasks_done": member.tasks_done,
        "last_seen": now,
    }
    models.Worker.objects.using(models.queue_db()).update_or_create(
        id=member.id, defaults=fields, create_defaults={**fields, "started_at": now}
    )


def unregister(worker_ids: Iterable[str]) -> None:
    models.Worker.objects.using(models.queue_db()).filter(
        id__in=list(worker_ids)
    ).delete()


def beat(
    cluster_id: str,
    members: list[Member],
    now: datetime.datetime | None = None,
    *,
    renew: bool = True,
) -> int:
    """Mark the cluster's processes as seen and renew their tasks' leases; return leases renewed.

    One transaction, and one UPDATE for all the registry rows: a heartbeat
    every few seconds is most of what an idle cluster costs the database.
    `renew=False` skips the lease renewal when the caller knows its workers
    hold nothing (none ran a task since the last beat).
    """
    given = now is not None
    now = now or timezone.now()
    db = models.queue_db()
    with transaction.atomic(using=db):
        _mark_seen(cluster_id, members, now)
        worker_ids = [m.id for m in members if m.role == models.Role.WORKER]
        if not renew or not worker_ids:
            return 0
        running = (
            models.Task.objects.using(db).running().filter(locked_by__in=worker_ids)
        )
        # Ids first, then an UPDATE by primary key: an UPDATE that finds its rows
        # through a secondary index locks index entry, then row, while a worker
        # storing an outcome locks row, then index entry; on MySQL/MariaDB the
        # two orders deadlock. By primary key, both lock in the same order.
        ids = list(running.values_list("id", flat=True))
        if not ids:
            return 0
        # The registry update above may have waited for a lock (seconds, on
        # a busy SQLite file), so the lease is counted from now, not from the
        # start of the beat; and a renewal never shortens a lease that a later
        # claim or renewal already set: a stale renewal must not end a live lease.
        until = (now if given else timezone.now()) + datetime.timedelta(
            seconds=float(settings.LEASE)
        )
        renewed: int = running.filter(id__in=ids).update(
            locked_until=Greatest(F("locked_until"), Value(until))
        )
        return renewed


def _mark_seen(cluster_id: str, members: list[Member], now: datetime.datetime) -> None:
    rows = [
        models.Worker(
            id=member.id,
            last_seen=now,
            current_task_id=member.current_task_id,
            current_task_started_at=member.current_task_started_at,
            tasks_done=member.tasks_done,
        )
        for member in members
    ]
    db = models.queue_db()
    seen = models.Worker.objects.using(db).bulk_update(
        rows,
        ["last_seen", "current_task_id", "current_task_started_at", "tasks_done"],
    )
    if seen == len(members):
        return
    # Started while the database was away, or forgotten as stale during a
    # long partition: without its row a live process would be missing from
    # qinfo, the dashboard and the metrics.
    known = set(
        models.Worker.objects.using(db)
        .filter(id__in=[m.id for m in members])
        .values_list("id", flat=True)
    )
    for member in members:
        if member.id not in known:
            register(cluster_id, member, now)


def rescue_expired(
    now: datetime.datetime | None = None,
    limit: int = RESCUE_BATCH,
    alive: Iterable[str] = (),
) -> int:
    """Rescue running tasks whose lease ran out; return how many were rescued.

    The attempt counts: the task is retried while attempts remain (unless its
    on_orphan policy says fail), or dead-lettered, with the lost worker named.
    Tasks held by `alive` (the caller's own workers, which it knows are
    running) are never rescued, whatever their lease says: a supervisor
    whose renewal was late, because the database kept it waiting, must not
    take a task from its own live worker, which would then run it twice.
    """
    now = now or timezone.now()
    return rescue(expired(now, limit, alive), now)


def expired(
    now: datetime.datetime, limit: int = RESCUE_BATCH, alive: Iterable[str] = ()
) -> list[models.Task]:
    """The running tasks whose lease ran out by `now`, except those `alive` workers hold."""
    return list(
        models.Task.objects.using(models.queue_db())
        .running()
        .filter(locked_until__lt=now)
        .exclude(locked_by__in=list(alive))[:limit]
    )


def rescue(tasks: Iterable[models.Task], now: datetime.datetime) -> int:
    """Rescue these expired tasks (see rescue_expired), each in its own transaction."""
    rescued = 0
    for task in tasks:
        reason = exceptions.WorkerLost(
            f"Worker lost: {describe(task.locked_by)} stopped renewing the lease, "
            f"which expired at {task.locked_until.isoformat() if task.locked_until else 'unknown'}."
        )
        lost = task.locked_by
        if task.mark_orphaned(lost, reason, now=now, expired_before=now):
            rescued += 1
            counters.add(task, [counters.Event.RESCUED, counters.after_failure(task)])
            _log_settled(task, f"rescued from {lost} (lease expired)")
    if rescued:
        counters.flush()
    return rescued


def release(
    worker_id: str,
    exc: BaseException,
    *,
    kind: str,
    running: str | None,
    unstored: Collection[str] = (),
) -> int:
    """Settle the tasks a dead child held, at once rather than when its lease runs out.

    The child reported, through its pipe, the task it was `running` and the
    tasks that returned but whose outcome it had not stored yet (`unstored`;
    a worker stores a batch's successes together). Ids are text, as sent.

    `kind` says how the running task's run ended: "timeout" is a failed
    attempt under the retry policy; "died" is an orphan under the task's
    on_orphan policy; "interrupted" (a shutdown killed it) puts the task back
    without spending an attempt. An unstored task ran, but its result died
    with the child: it is an orphan, retried. The child's other tasks were
    claimed in the same batch but never started: they go back to the queue as
    if never claimed. Return how many tasks were settled.
    """
    held = list(models.Task.objects.using(models.queue_db()).held_by(worker_id))
    waiting = [t for t in held if str(t.id) != running and str(t.id) not in unstored]
    released = claiming.release(waiting, worker_id)
    for task in held:
        key = str(task.id)
        if key in unstored:
            how = "died"
            exc_here: BaseException = exceptions.WorkerLost(
                f"{exc} The task had returned, but its outcome was not stored yet."
            )
        elif key == running:
            how, exc_here = kind, exc
        else:
            continue
        if _settle(task, worker_id, exc_here, how):
            released += 1
            _log_settled(
                task,
                f"released from {worker_id} ({exc_here})",
                logging.INFO if how == "interrupted" else logging.WARNING,
            )
    counters.flush()
    return released


def _settle(task: models.Task, worker_id: str, exc: BaseException, kind: str) -> bool:
    if kind == "interrupted":
        return task.mark_interrupted(worker_id, exc)
    if kind == "died":
        done = task.mark_orphaned(worker_id, exc)
        if done:
            counters.add(task, [counters.Event.RESCUED, counters.after_failure(task)])
        return done
    ran = (
        (timezone.now() - task.started_at).total_seconds() if task.started_at else None
    )
    done = task.mark_failed(worker_id, exc)
    if done:
        counters.add(task, [counters.Event.FAILED, counters.after_failure(task)], ran)
    return done


def _log_settled(task: models.Task, how: str, level: int = logging.WARNING) -> None:
    """Log a task the supervisor settled, at ERROR if it went to the dead-letter queue."""
    what, values = task_logging.describe(task)
    if task.dead_letter is not None:
        level = logging.ERROR
    logger.log(
        level,
        "Task " + what + " %s; state=%s%s",
        *values,
        how,
        task.status,
        " (moved to the dead-letter queue)" if task.dead_letter is not None else "",
        extra=task_logging.record_fields(task),
    )


def forget_stale(now: datetime.datetime | None = None) -> int:
    """Remove registry rows of processes not seen for many leases (their cluster died)."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(
        seconds=float(settings.LEASE) * STALE_AFTER_LEASES
    )
    deleted, _ = (
        models.Worker.objects.using(models.queue_db())
        .filter(last_seen__lt=cutoff)
        .delete()
    )
    return deleted


def describe(worker_id: str) -> str:
    """Turn a worker id (host:pid:role:suffix) into words for an error message."""
    parts = worker_id.split(":")
    if len(parts) >= 3:
        return f"{parts[2]} pid {parts[1]} on host {parts[0]}"
    return f"worker {worker_id!r}"
