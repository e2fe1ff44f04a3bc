"""Purge: delete queued tasks that should never run, by filter, in short batches.

For the morning after a bug enqueued a million wrong emails. Only QUEUED rows
are ever deleted: a RUNNING task belongs to its worker, and finished rows are
history that retention (qprune) deletes. Each batch is one short transaction
of two statements, as in dbqueue.retention:

1. ``SELECT id … WHERE status = 'QUEUED' AND <filters> LIMIT n FOR UPDATE
   SKIP LOCKED``: rows a worker is claiming at this moment are locked by its
   claim and skipped, so purging never waits for a worker nor makes one wait;
2. ``DELETE … WHERE id IN (those ids) AND status = 'QUEUED'``.

The selection is bounded by the time the purge started (``enqueued_at`` at
or before it), so tasks enqueued while it runs are left alone and a purge of
a queue the application keeps filling still ends. A purged task's hook does
not run and the rest of its chain is dropped with it; to keep a record of
what was withdrawn, cancel the tasks (the admin's "cancel" action) instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable

from django.db import connections, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from dbqueue import claiming, models, validation

BATCH_SIZE = 1000  # rows deleted per transaction
TOP_GROUPS = 20  # (queue, function) pairs a dry run lists


@dataclasses.dataclass
class PurgeReport:
    """What one purge deleted, or in a dry run would delete."""

    matched: int = 0  # queued tasks matching when the purge started
    deleted: int = 0
    batches: int = 0
    dry_run: bool = False

    @property
    def left(self) -> int:
        """Matched tasks not deleted: claimed by a worker (or deleted by someone else) meanwhile."""
        return max(self.matched - self.deleted, 0)


def matching(
    *,
    queue: str | None = None,
    func: str | None = None,
    older_than: float | None = None,
    now: datetime.datetime | None = None,
) -> QuerySet[models.Task]:
    """Return the QUEUED tasks enqueued by `now` that match every filter given.

    `older_than` is in seconds: only tasks enqueued more than that long
    before `now`. With no filter, every queued task matches.
    """
    now = now or timezone.now()
    rows = (
        models.Task.objects.using(models.queue_db())
        .queued()
        .filter(enqueued_at__lte=now)
        .order_by()
    )
    if queue is not None:
        rows = rows.filter(queue=queue)
    if func is not None:
        rows = rows.filter(func=func)
    if older_than is not None:
        try:
            cutoff = now - datetime.timedelta(seconds=older_than)
        except OverflowError:
            return rows.none()  # older than the year 1: nothing is
        rows = rows.filter(enqueued_at__lt=cutoff)
    return rows


def groups(selection: QuerySet[models.Task]) -> list[tuple[str, str, int]]:
    """Count the selection by queue and function, largest first (TOP_GROUPS of them)."""
    counted = selection.values("queue", "func").annotate(n=Count("id")).order_by("-n")
    return [(row["queue"], row["func"], row["n"]) for row in counted[:TOP_GROUPS]]


def purge(
    selection: QuerySet[models.Task],
    *,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[PurgeReport], object] | None = None,
    matched: int | None = None,
) -> PurgeReport:
    """Delete the queued tasks of `selection` (see matching()), `batch_size` per transaction.

    `on_batch`, if given, is called with the report so far after each batch.
    `matched` is the selection's count when the caller has just taken it
    (to ask first); otherwise it is counted here.
    Raise ValueError for a batch size out of range, and any database error
    as is: the batches committed before it stay deleted.
    """
    validation.batch_size(batch_size)
    report = PurgeReport(
        matched=selection.count() if matched is None else matched, dry_run=dry_run
    )
    if dry_run:
        return report
    db = models.queue_db()
    queued = selection.filter(status=models.Status.QUEUED)
    # Without row locks (SQLite) each batch holds the one write lock, and a
    # worker's claim waits in its busy handler; pausing as long as the batch
    # took lets the claims in between batches (see dbqueue.retention).
    shares_one_lock = not connections[db].features.has_select_for_update
    while True:
        started = time.monotonic()
        with transaction.atomic(using=db):
            ids = list(
                queued.select_for_update(skip_locked=True).values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            if not ids:
                return report
            # Locked above, so still QUEUED: no claim can have taken them.
            deleted = claiming.delete_by_pk(models.Task, ids, using=db)
        report.deleted += deleted
        report.batches += 1
        if on_batch is not None:
            on_batch(report)
        if shares_one_lock:
            time.sleep(time.monotonic() - started)
