"""Defining schedules: schedule(), and the DBQUEUE_SCHEDULES declarations it syncs.

``schedule()`` follows Django-Q's signature and creates or updates a schedule
by name. A call describes the whole schedule, so calling it again with the
same arguments (every deploy, say) changes nothing: the timing is
fingerprinted, and while the fingerprint is unchanged the schedule keeps its
next run and its count of runs left. Change the timing and the schedule is
re-planned from its next run (or from now, if that has passed).

Schedules can also be declared in settings::

    DBQUEUE_SCHEDULES = {
        "nightly-report": {"func": "reports.tasks.nightly", "cron": "0 3 * * *",
                           "timezone": "Europe/Berlin"},
    }

Each scheduler process syncs them when it starts (:func:`sync_declared`):
declared schedules are created or updated, and those no longer declared are
deleted. Not in ``AppConfig.ready()``: that runs in every process that loads
Django (manage.py shell, migrate, each web worker), before the tables may exist.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from dbqueue import models, schedule_definition, validation
from dbqueue.conf import settings

logger = logging.getLogger(__name__)


def schedule(
    func: str | Callable[..., Any],
    *args: Any,
    name: str | None = None,
    schedule_type: str | None = None,
    minutes: int | None = None,
    cron: str | None = None,
    next_run: datetime.datetime | None = None,
    repeats: int = -1,
    timezone: str | None = None,
    catch_up: str = models.CatchUp.SKIP,
    allow_overlap: bool = True,
    enabled: bool = True,
    **kwargs: Any,
) -> models.Schedule:
    """Create or update the schedule called `name` and return it.

    `func` is a registered task or its dotted path; `args` and the keyword
    arguments are passed to it at every run. Task options (``queue``,
    ``priority``, ``task_name``, ``group``, ``hook``, ``save``, ``timeout``,
    ``max_attempts``, ``expires`` in seconds) are taken out of the keyword
    arguments, or only from ``q_options`` when that is given, as in async_task().

    `schedule_type` is a ScheduleType (or Django-Q's letter); it defaults to
    CRON when `cron` is given, MINUTES when `minutes` is, else ONCE.
    `next_run` (aware) is the first run, or for cron the earliest; default now.
    `repeats` counts runs (-1 forever). `timezone` is an IANA name evaluated
    for the wall-clock types and cron (default TIME_ZONE). `catch_up` is
    "skip", "once" or "all". `allow_overlap=False` skips a due run while the
    previous run's task is still queued or running.

    Raise TaskNotFound for a function that is not a registered task,
    ValueError or TypeError naming the argument for bad timing or options, and
    SerializationError for arguments the serializer cannot take. Nothing is
    written when one is raised.
    """
    definition = schedule_definition.define(
        func,
        args,
        schedule_definition.split_kwargs(kwargs),
        name=name,
        schedule_type=schedule_type,
        minutes=minutes,
        cron=cron,
        next_run=next_run,
        repeats=repeats,
        timezone=timezone,
        catch_up=catch_up,
        allow_overlap=allow_overlap,
        enabled=enabled,
    )
    return store(definition)


def store(
    definition: schedule_definition.Definition,
    *,
    declared: bool = False,
    now: datetime.datetime | None = None,
) -> models.Schedule:
    """Create or update the schedule a Definition describes, in one transaction.

    Several schedulers may sync the same declarations at once: the row is
    locked while it is compared and updated, and a concurrent create that
    wins the unique name makes this call update the winner's row instead.
    """
    now = now or dj_timezone.now()
    alias = models.queue_db()
    for attempt in range(2):
        try:
            with transaction.atomic(using=alias):
                existing = (
                    models.Schedule.objects.using(alias)
                    .select_for_update()
                    .filter(name=definition.name)
                    .first()
                )
                return _apply(definition, existing, declared=declared, now=now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def sync_declared(
    declarations: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    now: datetime.datetime | None = None,
) -> dict[str, int]:
    """Make the stored declared schedules match DBQUEUE_SCHEDULES; return counts per change.

    Creates and updates declared schedules, deletes declared ones no longer
    declared (with their run history), and never touches schedules made by
    schedule() or in the admin. An invalid entry is logged and left out; the
    system check dbqueue.E006 reports it before a cluster starts.
    """
    entries = settings.SCHEDULES if declarations is None else declarations
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0, "invalid": 0}
    for name, entry in entries.items():
        try:
            definition = schedule_definition.declared_definition(name, entry)
        except Exception as exc:
            counts["invalid"] += 1
            logger.error(
                "Declared schedule name=%s is invalid and was not synced: %s", name, exc
            )
            continue
        before = (
            models.Schedule.objects.using(models.queue_db())
            .filter(name=name)
            .values_list("updated_at", flat=True)
            .first()
        )
        stored = store(definition, declared=True, now=now)
        if before is None:
            counts["created"] += 1
        elif stored.updated_at != before:
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    # Only names a schedule can have: the driver refuses to send the others
    # (NUL on PostgreSQL, a lone surrogate anywhere), and none is stored.
    storable = [name for name in entries if _is_storable_name(name)]
    stale = (
        models.Schedule.objects.using(models.queue_db())
        .filter(declared=True)
        .exclude(name__in=storable)
    )
    for name in stale.values_list("name", flat=True):
        logger.info(
            "Declared schedule name=%s is no longer in DBQUEUE_SCHEDULES; deleting it.",
            name,
        )
        counts["deleted"] += 1
    stale.delete()
    return counts


def _is_storable_name(name: object) -> bool:
    try:
        validation.text(name, "name", schedule_definition.NAME_MAX)
    except (TypeError, ValueError):
        return False
    return True


def _apply(
    definition: schedule_definition.Definition,
    existing: models.Schedule | None,
    *,
    declared: bool,
    now: datetime.datetime,
) -> models.Schedule:
    fingerprint = definition.fingerprint()
    row = existing or models.Schedule(name=definition.name)
    values = {
        "func": definition.func,
        "payload": definition.payload,
        "schedule_type": definition.schedule_type,
        "minutes": definition.minutes,
        "cron": definition.cron,
        "timezone": definition.timezone,
        "catch_up": definition.catch_up,
        "allow_overlap": definition.allow_overlap,
        "enabled": definition.enabled,
        "queue": definition.queue,
        "priority": definition.priority,
        "task_options": definition.task_options,
        "declared": declared or (existing is not None and existing.declared),
    }
    changed = [field for field, value in values.items() if getattr(row, field) != value]
    replan = (
        existing is None
        or existing.fingerprint != fingerprint
        or bool({"schedule_type", "minutes", "cron", "timezone"} & set(changed))
    )
    if not changed and not replan:
        return row
    for field, value in values.items():
        setattr(row, field, value)
    if replan:
        row.fingerprint = fingerprint
        row.repeats = definition.repeats
        row.align(_not_before(definition, existing, now))
    row.save(using=models.queue_db(), force_insert=existing is None)
    logger.info(
        "Schedule name=%s %s; next_run=%s",
        row.name,
        "created" if existing is None else "updated",
        row.next_run.isoformat(),
    )
    return row


def _not_before(
    definition: schedule_definition.Definition,
    existing: models.Schedule | None,
    now: datetime.datetime,
) -> datetime.datetime:
    """The first time a (re)planned schedule may run.

    The given next_run; else, for a schedule whose timing changed, its
    already planned next run while that is still ahead (so switching daily to
    weekly does not fire at once); else now.
    """
    if definition.next_run is not None:
        return definition.next_run
    if existing is not None and not existing.is_finished and existing.next_run > now:
        return existing.next_run
    return now
