"""What the console's buttons do, as plain functions the admin views and tests call.

Each goes through the public API or a model's own transition: a retry
inserts a copy with api.insert, a cancel is TaskQuerySet.cancel(), a replay
is dbqueue.replays, a run-now is the scheduler's own enqueue. None of them
imports a path that is not a registered task.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models as dj_models
from django.db import transaction
from django.utils import timezone

from dbqueue import api, claiming, exceptions, models, registry
from dbqueue.cluster import scheduler
from dbqueue.models.schedule import task_problem

DELETE_BATCH = 1000  # rows deleted (and logged) per statement


@dataclasses.dataclass
class RetryReport:
    """What retry_now() did: tasks copied, tasks made due, and tasks it could not retry."""

    copied: dict[uuid.UUID, uuid.UUID] = dataclasses.field(default_factory=dict)
    made_due: list[uuid.UUID] = dataclasses.field(default_factory=list)
    refused: dict[uuid.UUID, str] = dataclasses.field(default_factory=dict)


def retry_now(
    tasks: Iterable[models.Task], *, now: datetime.datetime | None = None
) -> RetryReport:
    """Run these tasks again as soon as a worker is free.

    A FAILED or CANCELLED task is copied into a fresh QUEUED task (same call,
    payload copied as stored, no attempt spent); a QUEUED task waiting for a
    later run_after is made due now. Running and succeeded tasks, and tasks
    whose function is no longer registered, are refused with the reason.
    """
    now = now or timezone.now()
    report = RetryReport()
    known = set(registry.registered_paths())
    db = models.queue_db()
    for task in tasks:
        if task.status == models.Status.QUEUED:
            moved = (
                models.Task.objects.using(db)
                .queued()
                .filter(id=task.id, run_after__gt=now)
                .update(run_after=now)
            )
            if moved:
                report.made_due.append(task.id)
                claiming.notify(task.queue)
            else:
                report.refused[task.id] = "it is already due."
        elif task.status not in (models.Status.FAILED, models.Status.CANCELLED):
            report.refused[task.id] = f"it is {task.status}."
        elif task.func not in known:
            report.refused[task.id] = (
                f"its function {task.func!r} is not a registered task."
            )
        else:
            try:
                copy = _copy(task, now)
            except exceptions.DuplicateTask as exc:
                report.refused[task.id] = str(exc)
            else:
                report.copied[task.id] = copy.id
    return report


def _copy(task: models.Task, now: datetime.datetime) -> models.Task:
    """Insert a fresh copy of a finished task; the payload is copied, never decoded."""
    fresh = models.Task.copy_of(task, now)
    with transaction.atomic(using=models.queue_db()):
        return api.insert(fresh, on_conflict="raise")


def run_schedule_now(
    schedule: models.Schedule, *, by: str, now: datetime.datetime | None = None
) -> models.Task:
    """Enqueue one run of `schedule` at once, leaving its timing and repeats alone.

    The run is recorded as a ScheduleRun fired by "admin:<by>", and becomes
    the schedule's last run. Raise TaskNotFound if the schedule's function is
    not a registered task (a row written in SQL, or a deploy removed it):
    its path is never imported. Raise PayloadError if its stored arguments
    do not verify, and the enqueue's own errors as they are.
    """
    problem = task_problem(schedule.func)
    if problem:
        raise exceptions.TaskNotFound(problem)
    now = now or timezone.now()
    db = models.queue_db()
    runner = scheduler.Scheduler(scheduler_id=f"admin:{by}"[:100], sync_declared=False)
    with transaction.atomic(using=db):
        task = runner.enqueue(schedule)
        models.ScheduleRun.objects.using(db).create(
            schedule=schedule,
            due_at=now,
            fired_at=now,
            fired_by=runner.id,
            outcome=models.RunOutcome.ENQUEUED,
            task_id=task.id,
        )
        models.Schedule.objects.using(db).filter(pk=schedule.pk).update(
            last_run_at=now, last_task_id=task.id
        )
    schedule.last_run_at, schedule.last_task_id = now, task.id
    return task


def delete_in_batches(
    queryset: dj_models.QuerySet[Any], *, user_id: int, batch: int = DELETE_BATCH
) -> int:
    """Delete the rows of `queryset` by primary key, `batch` per transaction; log each.

    A single DELETE of a hundred thousand rows would hold its locks (and, on
    MySQL, the claim index's gaps) for as long as it runs; short batches let
    workers claim in between. Return how many rows were deleted.
    """
    model = queryset.model
    db = queryset.db
    deleted = 0
    after: Any = None
    while True:
        page = queryset.order_by("pk")
        if after is not None:
            page = page.filter(pk__gt=after)
        rows = list(page.values_list("pk", "name")[:batch])
        if not rows:
            return deleted
        ids = [pk for pk, _ in rows]
        with transaction.atomic(using=db):
            deleted += model._default_manager.using(db).filter(pk__in=ids).delete()[0]
        log(user_id, model, [(pk, name) for pk, name in rows], DELETION, "")
        after = ids[-1]


def log(
    user_id: int,
    model: type[dj_models.Model],
    objects: list[tuple[Any, str]],
    flag: int,
    message: str | dict[Any, str],
) -> None:
    """Write one admin LogEntry per (pk, label), in one INSERT.

    `message` is one change message for all, or one per pk. The history is
    Django's, so "Recent actions" and each object's history page show it.
    """
    if not objects:
        return
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                user_id=user_id,
                content_type_id=content_type.pk,
                object_id=str(pk),
                object_repr=str(label)[:200],
                action_flag=flag,
                change_message=message.get(pk, "")
                if isinstance(message, dict)
                else message,
            )
            for pk, label in objects
        ]
    )
