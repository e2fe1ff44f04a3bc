"""Task: one enqueued call, from queued to finished, and its state transitions."""

from __future__ import annotations

import datetime
import logging
import traceback as traceback_module
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any

from django.db import models, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue import ids, retries, serialization
from dbqueue.indexes import PartialIndex, PartialUniqueConstraint
from dbqueue.models.base import queue_db
from dbqueue.models.failed_task import FailedTask, class_path

# What Task.template() returns: the shared values, in field order, and the
# defaults still to make for each task.
TaskTemplate = tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]

logger = logging.getLogger(__name__)

TRACEBACK_LIMIT = 20_000  # characters of a traceback kept per attempt
# The fields that end a claim: every transition out of RUNNING sets them.
RELEASED: dict[str, Any] = {"locked_by": "", "locked_until": None}
# The fields that make up the call itself, shared by Task and FailedTask: a
# dead-letter entry keeps them, and a retry or a replay copies them back.
CALL_FIELDS = (
    "name",
    "func",
    "payload",
    "queue",
    "priority",
    "max_attempts",
    "timeout",
    "keep_result",
    "on_orphan",
    "group",
    "hook",
    "unique_key",
    "chain",
)


class Status(models.TextChoices):
    # Waiting for its run_after time and a free worker.
    QUEUED = "QUEUED", _("Queued")
    # Claimed by a worker that holds its lease (locked_by, locked_until).
    RUNNING = "RUNNING", _("Running")
    # Finished; its return value is stored unless saving was turned off.
    SUCCEEDED = "SUCCEEDED", _("Succeeded")
    # Out of attempts (or not runnable); a FailedTask row holds it for replay.
    FAILED = "FAILED", _("Failed")
    # Withdrawn before it ran.
    CANCELLED = "CANCELLED", _("Cancelled")


class OnOrphan(models.TextChoices):
    # Its worker died mid-run: count the attempt and retry while attempts remain.
    RETRY = "RETRY", _("Retry")
    # Its worker died mid-run: dead-letter it at once (for tasks that must not run twice).
    FAIL = "FAIL", _("Fail")


class TaskQuerySet(models.QuerySet["Task"]):
    def queued(self) -> TaskQuerySet:
        return self.filter(status=Status.QUEUED)

    def running(self) -> TaskQuerySet:
        return self.filter(status=Status.RUNNING)

    def finished(self) -> TaskQuerySet:
        return self.filter(
            status__in=[Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]
        )

    def ready(
        self, queues: Iterable[str] | None = None, now: datetime.datetime | None = None
    ) -> TaskQuerySet:
        """Queued tasks that are due, in claiming order."""
        qs = self.queued().filter(run_after__lte=now or timezone.now())
        if queues is not None:
            qs = qs.filter(queue__in=list(queues))
        return qs.order_by("-priority", "run_after", "id")

    def in_group(self, group: str) -> TaskQuerySet:
        """The tasks of a group, found through the index that holds only grouped tasks.

        The repeated ``group <> ''`` is what lets SQLite use that partial
        index; PostgreSQL would see it from ``group = 'x'`` alone.
        """
        return self.filter(group=group).exclude(group="")

    def held_by(self, worker_id: str) -> TaskQuerySet:
        return self.filter(status=Status.RUNNING, locked_by=worker_id)

    def cancel(
        self, reason: str = "Cancelled", now: datetime.datetime | None = None
    ) -> int:
        """Withdraw the queued tasks among these; return how many were cancelled.

        A task a worker has already claimed is left alone: it is running, and
        only its own outcome may finish it.
        """
        now = now or timezone.now()
        cancelled = self.filter(status=Status.QUEUED).update(
            status=Status.CANCELLED,
            finished_at=now,
            error=reason,
            unique_hold=Case(
                When(unique_until__gt=now, then=F("unique_hold")),
                default=Value(None),
            ),
        )
        if cancelled and logger.isEnabledFor(logging.INFO):
            # The rows this call cancelled are those stamped with its exact
            # `now` and reason, found through the (status, finished_at) index.
            for task_id, func, queue in self.filter(
                status=Status.CANCELLED, finished_at=now, error=reason
            ).values_list("id", "func", "queue"):
                logger.info(
                    "Task id=%s path=%s queue=%s state=CANCELLED reason=%s",
                    task_id,
                    func,
                    queue,
                    reason,
                    extra={
                        "task_id": str(task_id),
                        "task_func": func,
                        "task_queue": queue,
                    },
                )
        return cancelled


class Task(models.Model):
    """One enqueued call, from queued to finished."""

    id = models.UUIDField(primary_key=True, default=ids.uuid7, editable=False)
    name = models.CharField(
        max_length=255,
        help_text=_("Django-Q's task_name; the function's path unless given."),
    )
    func = models.CharField(
        _("function"), max_length=255, help_text=_("Dotted path of a registered task.")
    )
    payload = models.TextField(
        editable=False, help_text=_("Signed, serialised args and kwargs.")
    )
    queue = models.CharField(max_length=64, default="default")
    priority = models.SmallIntegerField(
        default=0, help_text=_("-100 to 100; higher runs first.")
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    run_after = models.DateTimeField(
        default=timezone.now, help_text=_("Not claimed before this time.")
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Not started after this time.")
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("Claims so far, the running one included.")
    )
    max_attempts = models.PositiveIntegerField(default=1)
    timeout = models.FloatField(
        null=True, blank=True, help_text=_("Seconds; empty for no limit.")
    )
    keep_result = models.BooleanField(
        default=True, help_text=_("Django-Q's save: keep the row and result.")
    )
    on_orphan = models.CharField(
        max_length=8,
        choices=OnOrphan.choices,
        default=OnOrphan.RETRY,
        help_text=_("What to do when the worker running it dies."),
    )
    group = models.CharField(max_length=255, blank=True, default="")
    hook = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text=_("Called with the task when it finishes."),
    )
    unique_key = models.CharField(  # noqa: DJ001 - None means "not unique", not an empty key
        max_length=255,
        null=True,
        blank=True,
        help_text=_("At most one task holding this key is queued or running."),
    )
    # unique_key while this task holds it: from enqueue until it finishes, or
    # until unique_until if that is later. Uniqueness of a column works on
    # every vendor (MariaDB has no partial indexes), and NULLs never collide,
    # so finished tasks release the key by setting it to NULL.
    unique_hold = models.CharField(  # noqa: DJ001 - NULL is "holds no key"
        max_length=255, null=True, blank=True, editable=False
    )
    unique_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("The key stays held at least until this time (unique_for)."),
    )
    chain = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text=_("The links of its chain still to run, enqueued when it succeeds."),
    )
    locked_by = models.CharField(
        max_length=100, blank=True, default="", help_text=_("Worker holding the lease.")
    )
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text=_("Lease expiry.")
    )
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result_payload = models.TextField(blank=True, default="", editable=False)
    error = models.TextField(
        blank=True, default="", help_text=_("The last attempt's error.")
    )
    attempt_log = models.JSONField(
        default=list,
        blank=True,
        help_text=_("One entry per finished attempt: worker, times, error, traceback."),
    )

    objects = TaskQuerySet.as_manager()
    # Set by mark_failed() to the FailedTask it created, for the signals.
    dead_letter: FailedTask | None = None

    class Meta:
        verbose_name = _("task")
        ordering = ["-enqueued_at"]
        indexes = [
            # The claim query: WHERE status = QUEUED AND queue IN (...) AND
            # run_after <= now ORDER BY priority DESC, run_after, id.
            PartialIndex(
                fields=["queue", "-priority", "run_after", "id"],
                where=Q(status="QUEUED"),
                fallback_prefix=("status",),
                name="dbqueue_task_claim",
            ),
            # Finding leases that expired (dead workers).
            PartialIndex(
                fields=["locked_until"],
                where=Q(status="RUNNING"),
                fallback_prefix=("status",),
                name="dbqueue_task_lease",
            ),
            # A group's tasks (groups.py, the admin's search). Most tasks have
            # no group, and leaving them out means enqueueing, claiming and
            # finishing one write nothing here. Each reader asks for
            # `group <> ''` itself (TaskQuerySet.in_group()): SQLite uses a
            # partial index only for a query that repeats its condition.
            PartialIndex(
                fields=["group"],
                where=~Q(group=""),
                name="dbqueue_task_group",
            ),
            # History by status and age: retention, the last hour's outcomes,
            # a finished status's admin list. Queued and running rows have no
            # finished_at and stay out of it, so enqueueing and claiming a
            # task write no entry here (a quarter of a bulk insert's server
            # time, see docs/performance.md). Each of those queries compares
            # finished_at or asks for it to be set, which is how PostgreSQL
            # and SQLite see that this index holds every row they want.
            PartialIndex(
                fields=["status", "finished_at"],
                where=Q(finished_at__isnull=False),
                name="dbqueue_task_finished",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=-100, priority__lte=100),
                name="dbqueue_task_priority_range",
            ),
            # Only tasks that hold a key have an entry (see PartialUniqueConstraint).
            PartialUniqueConstraint(
                fields=["unique_hold"],
                where=Q(unique_hold__isnull=False),
                name="dbqueue_task_unique_hold",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @classmethod
    def new(cls, **values: Any) -> Task:
        """Return an unsaved task with these field values and the defaults for the rest.

        The same as Task(**values), in about 40% of the time (11 against
        26 µs with enqueue's seventeen values, id included). Django's keyword
        path looks up every field for every instance; its positional path
        (the one from_db() takes) only sets each attribute, between the
        pre_init and post_init signals. With no receiver of those for Task,
        this does what that path does, in one dict update: none of Task's
        fields has a descriptor that takes part in setting it. Enqueue builds
        one task per call, so the difference shows in bulk enqueue.
        Raise TypeError for a name that is not a field.
        """
        return cls.from_template(cls.template(**values))

    @classmethod
    def template(cls, **values: Any) -> TaskTemplate:
        """Return the field values that the tasks of from_template() share.

        A bulk enqueue makes thousands of tasks that differ only in their
        id and payload; checking and merging the other values once saves
        a third of the cost of making each. A default made for each task
        (the id, the empty attempt log) is made for each one unless given
        here. Raise TypeError for a name that is not a field.
        """
        unknown = values.keys() - _FIXED_DEFAULTS.keys()
        if unknown:
            raise TypeError(f"Task has no field(s) {', '.join(sorted(unknown))}.")
        row = _FIXED_DEFAULTS.copy()  # in field order, as Task(*row.values()) takes it
        row.update(values)
        makers = tuple((n, make) for n, make in _MADE_DEFAULTS if n not in values)
        return row, makers

    @classmethod
    def from_template(cls, template: TaskTemplate, **values: Any) -> Task:
        """Return an unsaved task with a template()'s values, these, and its own made defaults.

        The names in `values` are not checked: they are the caller's own,
        fixed in its code, and never one whose default is made per task.
        """
        shared, makers = template
        row = shared.copy()
        row.update(values)
        for name, make in makers:
            row[name] = make()
        if init_is_watched():
            positional: Any = row.values()
            return cls(*positional)
        task = cls.__new__(cls)
        row["_state"] = ModelState()
        task.__dict__ = row
        return task

    @classmethod
    def from_rows(cls, using: str, rows: Iterable[dict[str, Any]]) -> list[Task]:
        """Return the tasks these database rows hold, each field's value given by attribute name.

        What from_db() returns, built as new() builds a task: one dict
        update per row where Django's positional path sets each field in
        turn. A worker builds one per task it claims, on its busiest path.
        """
        if init_is_watched():
            names = list(_FIXED_DEFAULTS)  # from_db() takes them in field order
            return [cls.from_db(using, names, [row[n] for n in names]) for row in rows]
        tasks = []
        for row in rows:
            task = cls.__new__(cls)
            task._state = ModelState()
            task._state.adding = False
            task._state.db = using
            task.__dict__.update(row)
            tasks.append(task)
        return tasks

    @classmethod
    def copy_of(cls, source: Task | FailedTask, now: datetime.datetime) -> Task:
        """Return an unsaved task making `source`'s call again, due `now`, no attempt spent.

        `source` is a finished task or a dead-letter entry. The payload is
        copied as stored, still signed for its function and hook, never
        decoded. Store the copy with api.insert(), which enforces its unique key.
        """
        return cls(
            **{name: getattr(source, name) for name in CALL_FIELDS},
            unique_hold=source.unique_key,
            run_after=now,
            enqueued_at=now,
        )

    # Reading back what the task carries.

    @property
    def args(self) -> tuple[Any, ...]:
        return serialization.loads_payload(self.func, self.payload, hook=self.hook)[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return serialization.loads_payload(self.func, self.payload, hook=self.hook)[1]

    @property
    def result(self) -> Any:
        """The return value, or None until the task succeeded."""
        if self.status != Status.SUCCEEDED or not self.result_payload:
            return None
        return serialization.loads_result(self.func, self.result_payload)

    @property
    def success(self) -> bool:
        return self.status == Status.SUCCEEDED

    @property
    def traceback(self) -> str:
        """The last failed attempt's traceback, or an empty string."""
        for entry in reversed(self.attempt_log):
            if entry.get("traceback"):
                return str(entry["traceback"])
        return ""

    @property
    def is_finished(self) -> bool:
        return self.status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    def time_taken(self) -> float | None:
        """Seconds from start to finish of the last attempt."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    # State transitions of a claimed task, each guarded by its lease.

    def mark_succeeded(
        self, worker_id: str, value: Any, now: datetime.datetime | None = None
    ) -> bool:
        """Store the return value (or drop the row when results are not kept).

        Return False if this worker no longer holds the lease. Raise
        SerializationError if the value cannot be stored; the row is unchanged then.
        """
        fields = self.success_fields(worker_id, value, now)
        if not self.keep_result:
            deleted, _ = (
                Task.objects.using(queue_db())
                .held_by(worker_id)
                .filter(id=self.id)
                .delete()
            )
            self._apply(fields)
            return deleted > 0
        return self._update_held(worker_id, **fields)

    def success_fields(
        self, worker_id: str, value: Any, now: datetime.datetime | None = None
    ) -> dict[str, Any]:
        """Return the fields that record this attempt's success, the result serialised.

        Raise SerializationError if the value cannot be stored. A task that
        keeps no result gets no payload: its row is deleted instead.
        """
        now = now or timezone.now()
        stored = (
            serialization.dumps_result(
                self.func, value, serializer=serialization.serializer_of(self.payload)
            )
            if self.keep_result
            else ""
        )
        return {
            "status": Status.SUCCEEDED,
            "finished_at": now,
            "started_at": self.started_at,
            "result_payload": stored,
            "error": "",
            "attempt_log": [*self.attempt_log, self._attempt_entry(worker_id, now)],
            **self._finished(now),
        }

    @classmethod
    def store_successes(
        cls, worker_id: str, successes: Sequence[tuple[Task, dict[str, Any]]]
    ) -> list[Task]:
        """Store several successes of one worker at once; return the tasks stored.

        One commit for a batch rather than one per task. `successes` pairs
        each task with its success_fields(). Only rows this worker still
        holds are written: a task whose lease passed to another worker keeps
        that worker's state, as with mark_succeeded(). A task that keeps no
        result is deleted instead.
        """
        if not successes:
            return []
        from dbqueue import claiming  # it imports the models

        db = queue_db()
        kept = [(task, fields) for task, fields in successes if task.keep_result]
        dropped = [task for task, _ in successes if not task.keep_result]
        both = transaction.atomic(using=db) if kept and dropped else nullcontext()
        with both:
            ids = claiming.write_held(worker_id, kept, using=db)
            ids |= claiming.delete_held(worker_id, dropped, using=db)
        stored = [(task, fields) for task, fields in successes if task.id in ids]
        for task, fields in stored:
            task._apply(fields)
        return [task for task, _ in stored]

    def _apply(self, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    def mark_expired(
        self, worker_id: str, now: datetime.datetime | None = None
    ) -> bool:
        """Withdraw a task that was claimed after its expires_at: it is not run."""
        now = now or timezone.now()
        if self.expires_at is None:
            raise ValueError(f"Task {self.id} has no expires_at to expire by.")
        return self._update_held(
            worker_id,
            status=Status.CANCELLED,
            started_at=self.started_at,
            finished_at=now,
            error=f"Expired: not started by {self.expires_at.isoformat()}",
            attempt_log=[*self.attempt_log, self._attempt_entry(worker_id, now)],
            **self._finished(now),
        )

    def mark_failed(
        self,
        worker_id: str,
        exc: BaseException,
        *,
        retry: bool = True,
        delay: float | None = None,
        dead_letter: bool = True,
        now: datetime.datetime | None = None,
        expired_before: datetime.datetime | None = None,
    ) -> bool:
        """Record a failed attempt: queue a retry after a delay, or end the task.

        While attempts remain and `retry` is true, the task is queued again
        `delay` seconds from now (the default backoff when None). Otherwise it
        is FAILED and, if `dead_letter` (not for a discarded task), copied to
        the dead-letter queue, which ``self.dead_letter`` then holds.
        `expired_before` makes the change conditional on the lease having run
        out by then, for a rescuer acting on another cluster's task. Return
        False if `worker_id` no longer holds the task (or its lease is live again).
        """
        now = now or timezone.now()
        summary = f"{type(exc).__name__}: {exc}"
        entry = self._attempt_entry(worker_id, now, exc)
        log = [*self.attempt_log, entry]
        self.dead_letter = None
        if retry and self.attempts < self.max_attempts:
            if delay is None:
                delay = retries.backoff_delay(self.attempts)
            return self._update_held(
                worker_id,
                expired_before,
                status=Status.QUEUED,
                run_after=now + datetime.timedelta(seconds=delay),
                started_at=self.started_at,
                error=summary,
                attempt_log=log,
                **RELEASED,
            )
        if not dead_letter:
            summary = f"Discarded: {summary}"
        with transaction.atomic(using=queue_db()):
            moved = self._update_held(
                worker_id,
                expired_before,
                status=Status.FAILED,
                started_at=self.started_at,
                finished_at=now,
                error=summary,
                attempt_log=log,
                **self._finished(now),
            )
            if moved and dead_letter:
                self.dead_letter = FailedTask.objects.using(queue_db()).create(
                    task_id=self.id,
                    **{name: getattr(self, name) for name in CALL_FIELDS},
                    attempts=self.attempts,
                    error=summary,
                    exception_class=entry["exception_class"],
                    traceback=entry["traceback"],
                    worker_id=worker_id,
                    attempt_log=log,
                    enqueued_at=self.enqueued_at,
                    started_at=self.started_at,
                    failed_at=now,
                )
        return moved

    def mark_orphaned(
        self,
        worker_id: str,
        exc: BaseException,
        *,
        now: datetime.datetime | None = None,
        expired_before: datetime.datetime | None = None,
    ) -> bool:
        """Record that the process running this task died: the attempt counts.

        The task is retried while attempts remain, unless its on_orphan policy
        is FAIL (a task that must never run twice), which dead-letters it.
        """
        return self.mark_failed(
            worker_id,
            exc,
            retry=self.on_orphan == OnOrphan.RETRY,
            now=now,
            expired_before=expired_before,
        )

    def mark_interrupted(
        self,
        worker_id: str,
        exc: BaseException,
        *,
        now: datetime.datetime | None = None,
    ) -> bool:
        """Put back a task whose run was cut short by a shutdown, at once.

        The attempt is logged but does not spend the task's retry budget: a
        deploy that kills a long task is the operator's doing, not the task's,
        and must not push it into the dead-letter queue.
        """
        now = now or timezone.now()
        return self._update_held(
            worker_id,
            None,
            status=Status.QUEUED,
            run_after=now,
            attempts=max(0, self.attempts - 1),
            error=f"{type(exc).__name__}: {exc}",
            attempt_log=[*self.attempt_log, self._attempt_entry(worker_id, now, exc)],
            **RELEASED,
        )

    def _finished(self, now: datetime.datetime) -> dict[str, Any]:
        """The fields that end a claim for good, releasing the unique key unless unique_until is still ahead."""
        keeps_key = self.unique_until is not None and self.unique_until > now
        return {**RELEASED, "unique_hold": self.unique_hold if keeps_key else None}

    def _update_held(
        self,
        worker_id: str,
        expired_before: datetime.datetime | None = None,
        **fields: Any,
    ) -> bool:
        held = Task.objects.using(queue_db()).held_by(worker_id).filter(id=self.id)
        if expired_before is not None:
            held = held.filter(locked_until__lt=expired_before)
        updated = held.update(**fields)
        self._apply(fields)
        if updated and fields.get("status") == Status.QUEUED:
            from dbqueue import claiming  # it imports the models

            claiming.notify(self.queue, due=self.run_after)
        return updated == 1

    def _attempt_entry(
        self, worker_id: str, now: datetime.datetime, exc: BaseException | None = None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "attempt": self.attempts,
            "worker_id": worker_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": now.isoformat(),
        }
        if exc is not None:
            entry["exception_class"] = class_path(type(exc))
            entry["error"] = str(exc)
            tb = (
                "".join(traceback_module.format_exception(exc))
                if exc.__traceback__
                else ""
            )
            entry["traceback"] = tb[-TRACEBACK_LIMIT:]
        return entry


def init_is_watched() -> bool:
    """Tell whether a pre_init or post_init receiver listens for Task instances being made."""
    # Most projects connect none at all: looking at the receiver lists first
    # spares new() and from_rows() two signal lookups per task.
    if not (pre_init.receivers or post_init.receivers):
        return False
    return pre_init.has_listeners(Task) or post_init.has_listeners(Task)


# Each concrete field's attribute name and default, in the order Task(*args)
# takes them; a default made anew for each task (a callable) is None here...
_FIXED_DEFAULTS: dict[str, Any] = {
    field.attname: None
    if field.has_default() and callable(field.default)
    else field.get_default()
    for field in Task._meta.concrete_fields
}
# ...and its callable here.
_MADE_DEFAULTS: tuple[tuple[str, Any], ...] = tuple(
    (field.attname, field.default)
    for field in Task._meta.concrete_fields
    if field.has_default() and callable(field.default)
)
