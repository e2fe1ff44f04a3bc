"""Replay of the dead-letter queue: a FailedTask becomes a fresh Task again.

A replay copies the entry's stored call into a new Task: the same function,
the payload exactly as stored (still signed for that function and hook, never
decoded here), queue, priority, options, unique key and chain, with no attempt
spent, due at once. It then records the replay on the entry: ``replayed_at``,
``replayed_as``, ``replay_count`` and a ``replay_log`` line. The insert and the
record share one transaction on the queue database, so there is never a
replayed entry without its task, nor a task without its record.

The policies, also in docs/dead-letter-queue.md:

- An entry replayed once is refused (AlreadyReplayed) unless ``again=True``;
  replay_many() counts it as skipped. The row is locked while it is replayed,
  so two operators replaying it at once make one task, not two.
- A function that is no longer registered is refused before anything is
  written (TaskNotFound): the worker could only dead-letter it again.
- A unique key that an active task holds makes the replay fail with
  DuplicateTask (on_conflict="raise"): replaying must not silently do nothing,
  nor cancel the task that holds the key.
- A replay that fails changes nothing but a ``replay_log`` line naming the
  error, written in a transaction of its own once the failed one rolled back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from dbqueue import api, exceptions, models, registry, validation
from dbqueue.exceptions import AlreadyReplayed

logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # entries replayed per transaction by replay_many()
BY_MAX_LENGTH = 150  # characters, Django's username length


@dataclasses.dataclass
class ReplayReport:
    """What replay_many() did, entry by entry (keyed by FailedTask id)."""

    # Each replayed entry and the Task its replay created.
    replayed: dict[uuid.UUID, uuid.UUID] = dataclasses.field(default_factory=dict)
    # Entries left alone because they were replayed before (again=False).
    skipped: list[uuid.UUID] = dataclasses.field(default_factory=list)
    # Entries whose replay failed, and why; each stays in the dead-letter queue.
    failed: dict[uuid.UUID, Exception] = dataclasses.field(default_factory=dict)
    # Entries handled per committed transaction, in order.
    batches: list[int] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        return (
            f"Replayed {len(self.replayed)}, skipped {len(self.skipped)} "
            f"(already replayed), failed {len(self.failed)}."
        )


def replay(
    failed: models.FailedTask | uuid.UUID | str,
    *,
    by: str = "code",
    again: bool = False,
) -> models.Task:
    """Queue a fresh Task from a dead-letter entry and record the replay; return the Task.

    `failed` is a FailedTask or its id. `by` names who replayed it in the
    entry's replay_log (a user name; "shell" for qreplay, "code" by default).
    A FailedTask instance passed in is updated with the replay's fields.

    Raise FailedTask.DoesNotExist for an unknown id and AlreadyReplayed for
    an entry replayed before, unless `again`; nothing is recorded then. Raise
    TaskNotFound if the function is no longer registered, DuplicateTask if an
    active task holds the entry's unique_key, and any database error as is;
    the entry is then unchanged but for a replay_log line naming the error.
    """
    pk = failed.pk if isinstance(failed, models.FailedTask) else _uuid(failed)
    by = _by(by)
    try:
        task = _replay_one(pk, by, again)
    except (AlreadyReplayed, models.FailedTask.DoesNotExist):
        raise
    except Exception as exc:
        _record_failures({pk: exc}, by)
        with contextlib.suppress(DatabaseError):
            _refresh(failed)
        raise
    _refresh(failed)
    return task


def replay_many(
    selection: QuerySet[models.FailedTask]
    | Iterable[models.FailedTask | uuid.UUID | str]
    | None = None,
    *,
    func: str | Callable[..., Any] | None = None,
    queue: str | None = None,
    exception: type[BaseException] | str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    by: str = "code",
    again: bool = False,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[ReplayReport], object] | None = None,
) -> ReplayReport:
    """Replay a selection of dead-letter entries, `batch_size` per transaction.

    `selection` is a FailedTask queryset or FailedTask ids (or instances).
    The filters narrow it, or pick from the whole dead-letter queue when no
    selection is given; see matching(). To replay every entry, pass
    ``FailedTask.objects.all()``: giving neither a selection nor a filter
    raises ValueError rather than replaying everything by accident.

    Each batch is one short transaction; an entry that cannot be replayed
    (see replay()) is reported in ``failed`` and logged on the entry without
    holding back the others. Entries replayed before are ``skipped`` unless
    `again`. Entries that fail again after their replay are new entries and
    are not picked up by the same call. `on_batch`, if given, is called with
    the report so far after each batch (qreplay shows progress with it).
    """
    by = _by(by)
    validation.batch_size(batch_size)
    filters = {
        "func": func,
        "queue": queue,
        "exception": exception,
        "since": since,
        "until": until,
    }
    has_filter = any(value is not None for value in filters.values())
    if selection is None and not has_filter:
        raise ValueError(
            "Give a selection or a filter (func, queue, exception, since, until); "
            "pass FailedTask.objects.all() to replay every entry."
        )
    report = ReplayReport()
    for ids in _batches(selection, filters if has_filter else None, batch_size):
        _replay_batch(ids, by, again, report)
        if on_batch is not None:
            on_batch(report)
    return report


def matching(
    queryset: QuerySet[models.FailedTask] | None = None,
    *,
    func: str | Callable[..., Any] | None = None,
    queue: str | None = None,
    exception: type[BaseException] | str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> models.FailedTaskQuerySet:
    """Narrow dead-letter entries (all of them by default) by these filters.

    See FailedTaskQuerySet.matching() for what each filter matches.
    """
    # FailedTask's manager makes every FailedTask queryset a FailedTaskQuerySet.
    qs = cast(
        models.FailedTaskQuerySet,
        queryset
        if queryset is not None
        else models.FailedTask.objects.using(models.queue_db()).all(),
    )
    return qs.matching(
        func=func, queue=queue, exception=exception, since=since, until=until
    )


def _replay_one(pk: uuid.UUID, by: str, again: bool) -> models.Task:
    db = models.queue_db()
    entry = models.FailedTask.objects.using(db).get(pk=pk)
    _check_registered(entry.func)
    with transaction.atomic(using=db):
        # Locked and read again: the entry may have been replayed meanwhile.
        locked = models.FailedTask.objects.using(db).select_for_update().get(pk=pk)
        if locked.replay_count and not again:
            raise AlreadyReplayed(locked)
        return _replay_locked(locked, by, timezone.now())


def _replay_batch(
    ids: list[uuid.UUID], by: str, again: bool, report: ReplayReport
) -> None:
    """Replay these entries in one transaction; fall back to one by one if it fails."""
    db = models.queue_db()
    replayed: dict[uuid.UUID, uuid.UUID] = {}
    skipped: list[uuid.UUID] = []
    failed: dict[uuid.UUID, Exception] = {}
    missing = _unregistered(ids)
    try:
        with transaction.atomic(using=db):
            rows = {
                row.pk: row
                for row in models.FailedTask.objects.using(db)
                .select_for_update()
                .filter(pk__in=ids)
            }
            now = timezone.now()
            for pk in ids:
                row = rows.get(pk)
                if row is None:
                    failed[pk] = _not_found(pk)
                elif row.replay_count and not again:
                    skipped.append(pk)
                elif row.func in missing:
                    failed[pk] = missing[row.func]
                else:
                    try:
                        # A savepoint, so a held unique key undoes this entry only.
                        with transaction.atomic(using=db):
                            replayed[pk] = _replay_locked(row, by, now).id
                    except exceptions.DuplicateTask as exc:
                        failed[pk] = exc
    except Exception as exc:
        # Anything else (a database error) rolled the whole batch back.
        # Replaying its entries one by one isolates the culprit, and each
        # failure is logged on its own entry.
        logger.warning(
            "Replay of a batch of %d failed tasks failed (%s: %s); replaying them one by one.",
            len(ids),
            type(exc).__name__,
            exc,
        )
        for pk in ids:
            _replay_alone(pk, by, again, report)
        return
    report.replayed.update(replayed)
    report.skipped.extend(skipped)
    report.failed.update(failed)
    report.batches.append(len(ids))
    _record_failures(failed, by)


def _replay_alone(pk: uuid.UUID, by: str, again: bool, report: ReplayReport) -> None:
    try:
        report.replayed[pk] = _replay_one(pk, by, again).id
    except AlreadyReplayed:
        report.skipped.append(pk)
    except models.FailedTask.DoesNotExist:
        report.failed[pk] = _not_found(pk)
    except Exception as exc:
        report.failed[pk] = exc
        _record_failures({pk: exc}, by)
    report.batches.append(1)


def _replay_locked(
    entry: models.FailedTask, by: str, now: datetime.datetime
) -> models.Task:
    """Insert the entry's fresh Task and record the replay; the caller holds a transaction."""
    task = models.Task.copy_of(entry, now)
    api.insert(task, on_conflict="raise")
    _mark_replayed(entry, task, by, now)
    return task


def _mark_replayed(
    entry: models.FailedTask, task: models.Task, by: str, now: datetime.datetime
) -> None:
    log = [
        *entry.replay_log,
        {"at": now.isoformat(), "by": by, "task_id": str(task.id)},
    ]
    # Conditional on the count read under the lock: on a database where the
    # lock is a no-op, a concurrent replay shows up here instead.
    updated = (
        models.FailedTask.objects.using(models.queue_db())
        .filter(pk=entry.pk, replay_count=entry.replay_count)
        .update(
            replayed_at=now,
            replayed_as=task.id,
            replay_count=F("replay_count") + 1,
            replay_log=log,
        )
    )
    if updated != 1:
        raise DatabaseError(
            f"Failed task {entry.pk} changed while it was being replayed; try again."
        )
    entry.replayed_at, entry.replayed_as = now, task.id
    entry.replay_count += 1
    entry.replay_log = log


def _record_failures(errors: dict[uuid.UUID, Exception], by: str) -> None:
    """Append a replay_log line naming the error to each entry, in a transaction of its own."""
    if not errors:
        return
    db = models.queue_db()
    at = timezone.now().isoformat()
    try:
        with transaction.atomic(using=db):
            for entry in (
                models.FailedTask.objects.using(db)
                .select_for_update()
                .filter(pk__in=list(errors))
            ):
                exc = errors[entry.pk]
                entry.replay_log = [
                    *entry.replay_log,
                    {"at": at, "by": by, "error": f"{type(exc).__name__}: {exc}"},
                ]
                entry.save(using=db, update_fields=["replay_log"])
    except DatabaseError:
        # The entries are unchanged, so nothing is lost; the caller still
        # gets the replay's own error.
        logger.exception(
            "Could not log the failed replay of %d failed task(s) on their entries.",
            len(errors),
        )


def _batches(
    selection: QuerySet[models.FailedTask]
    | Iterable[models.FailedTask | uuid.UUID | str]
    | None,
    filters: dict[str, Any] | None,
    batch_size: int,
) -> Iterator[list[uuid.UUID]]:
    """Yield the selected entries' ids, `batch_size` at a time."""
    if isinstance(selection, QuerySet) and selection.query.is_sliced:
        selection = list(selection.values_list("pk", flat=True))
    if selection is not None and not isinstance(selection, QuerySet):
        ids = list(dict.fromkeys(_pk(item) for item in selection))
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            if filters is not None:
                kept = set(
                    matching(**filters)
                    .filter(pk__in=chunk)
                    .values_list("pk", flat=True)
                )
                chunk = [pk for pk in chunk if pk in kept]
            if chunk:
                yield chunk
        return
    qs = matching(selection, **(filters or {})).order_by("pk")
    # Pages by primary key (UUIDv7: time-ordered) up to the last entry that
    # matched at the start. Replayed entries stay in the table, so paging
    # cannot skip any; and an entry added later (a replay that failed again)
    # is not replayed a second time by this same call.
    ceiling = qs.values_list("pk", flat=True).last()
    if ceiling is None:
        return
    after: uuid.UUID | None = None
    while True:
        page = qs.filter(pk__lte=ceiling)
        if after is not None:
            page = page.filter(pk__gt=after)
        ids = list(page.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield ids
        after = ids[-1]


def _unregistered(ids: list[uuid.UUID]) -> dict[str, exceptions.TaskNotFound]:
    """Return the functions of these entries that are no longer registered, with the error."""
    funcs = (
        models.FailedTask.objects.using(models.queue_db())
        .filter(pk__in=ids)
        .order_by()
        .values_list("func", flat=True)
        .distinct()
    )
    missing = {}
    for func in funcs:
        try:
            _check_registered(func)
        except exceptions.TaskNotFound as exc:
            missing[func] = exc
    return missing


def _check_registered(func: str) -> None:
    try:
        registry.resolve(func)
    except exceptions.TaskNotFound as exc:
        raise exceptions.TaskNotFound(
            f"Cannot replay: {exc} Deploy the function again, then replay."
        ) from exc


def _not_found(pk: uuid.UUID) -> models.FailedTask.DoesNotExist:
    return models.FailedTask.DoesNotExist(
        f"No failed task has the id {pk}; it may have been deleted."
    )


def _refresh(failed: models.FailedTask | uuid.UUID | str) -> None:
    if isinstance(failed, models.FailedTask):
        failed.refresh_from_db(
            using=models.queue_db(),
            fields=["replayed_at", "replayed_as", "replay_count", "replay_log"],
        )


def _pk(item: models.FailedTask | uuid.UUID | str) -> uuid.UUID:
    return item.pk if isinstance(item, models.FailedTask) else _uuid(item)


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a failed task id (a UUID).") from None


def _by(by: Any) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValueError(f"by must name who replays, got {by!r}.")
    if len(by) > BY_MAX_LENGTH:
        raise ValueError(
            f"by must be at most {BY_MAX_LENGTH} characters, got {len(by)}."
        )
    return by
