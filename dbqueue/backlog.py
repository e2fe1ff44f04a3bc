"""Per-queue counts of queued tasks whose cost stops growing with the backlog.

A grouped COUNT over the claim index reads every QUEUED row, so a backlog of
millions makes each scrape and each dashboard refresh take seconds, just
when an operator most needs them. measure() counts at most
DBQUEUE_DEPTH_COUNT_LIMIT rows of each number instead and says when it
stopped: the true figure is then at least the limit.

It first counts the whole backlog up to the limit. Under it (the usual
case), one grouped query over those few rows gives exact numbers. Over it,
each queue is read along the claim index (queue, -priority, run_after):

- the queue names and each queue's priorities are found one index lookup at
  a time, skipping to the next value (a "loose index scan", which none of
  the three databases does on its own for these queries);
- a priority's first entry is its oldest task, so the oldest due task is the
  earliest of those first entries that are due: one lookup per priority,
  never a scan of the queue;
- due and waiting rows are counted per priority over an index range, each
  count stopping once the limit is reached (COUNT over a sliced subquery).

The number of queries then grows with the queues and priorities that hold
tasks, usually a handful, while each reads at most the limit's worth of rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Min, Q

from dbqueue import models


@dataclass
class Depth:
    """One queue's queued tasks; a capped count is the limit, and there are more."""

    due: int = 0
    waiting: int = 0  # queued with a later run_after (retries, countdowns)
    oldest_due: datetime.datetime | None = None
    due_capped: bool = False
    waiting_capped: bool = False


def measure(
    now: datetime.datetime, queues: Iterable[str] | None, limit: int
) -> dict[str, Depth]:
    """Count the due and waiting tasks of each queue with queued tasks, at most `limit` each.

    `queues` limits the reading to these; queues with nothing queued are left out.
    """
    queued = models.Task.objects.using(models.queue_db()).queued().order_by()
    names = None if queues is None else list(queues)
    if names is not None:
        queued = queued.filter(queue__in=names)
    # One row past the limit tells "exactly the limit" from "more than it".
    if queued[: limit + 1].count() <= limit:
        return _grouped(queued, now)
    found = {}
    for name in _queue_names(queued) if names is None else names:
        depth = _bounded(queued.filter(queue=name), now, limit)
        if depth.due or depth.waiting:
            found[name] = depth
    return found


def _grouped(queued: models.TaskQuerySet, now: datetime.datetime) -> dict[str, Depth]:
    """Count exactly, in one query: the caller knows there are few rows."""
    return {
        item["queue"]: Depth(
            due=item["due"],
            waiting=item["total"] - item["due"],
            oldest_due=item["oldest"],
        )
        for item in queued.values("queue").annotate(
            total=Count("id"),
            due=Count("id", filter=Q(run_after__lte=now)),
            oldest=Min("run_after", filter=Q(run_after__lte=now)),
        )
    }


def _queue_names(queued: models.TaskQuerySet) -> list[str]:
    """List the queues that hold queued tasks, one index lookup per queue."""
    names: list[str] = []
    while True:
        rest = queued.filter(queue__gt=names[-1]) if names else queued
        name = rest.order_by("queue").values_list("queue", flat=True).first()
        if name is None:
            return names
        names.append(name)


def _bounded(rows: models.TaskQuerySet, now: datetime.datetime, limit: int) -> Depth:
    """Read one queue's depth priority by priority, counting at most `limit` of each kind."""
    depth = Depth()
    due_left = waiting_left = limit + 1
    priority: int | None = None
    while True:
        rest = rows if priority is None else rows.filter(priority__lt=priority)
        head = (
            rest.order_by("-priority", "run_after")
            .values_list("priority", "run_after")
            .first()
        )
        if head is None:
            break
        priority, first_run = head
        level = rows.filter(priority=priority)
        if first_run <= now:
            if depth.oldest_due is None or first_run < depth.oldest_due:
                depth.oldest_due = first_run
            if due_left:
                counted = level.filter(run_after__lte=now)[:due_left].count()
                depth.due += counted
                due_left -= counted
        if waiting_left:
            counted = level.filter(run_after__gt=now)[:waiting_left].count()
            depth.waiting += counted
            waiting_left -= counted
    depth.due_capped, depth.due = depth.due > limit, min(depth.due, limit)
    depth.waiting_capped = depth.waiting > limit
    depth.waiting = min(depth.waiting, limit)
    return depth
