"""FailedTask: the dead-letter queue."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from dbqueue import ids, registry


def class_path(kind: type[BaseException]) -> str:
    """Return the dotted path an exception class is stored under (``exception_class``)."""
    return f"{kind.__module__}.{kind.__qualname__}"


class FailedTaskQuerySet(models.QuerySet["FailedTask"]):
    def matching(
        self,
        *,
        func: str | Callable[..., Any] | None = None,
        queue: str | None = None,
        exception: type[BaseException] | str | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> FailedTaskQuerySet:
        """Narrow these entries by the filters that are not None.

        `func` is a task function or its dotted path; `queue` a queue name;
        `since` and `until` bound ``failed_at`` (since included, until not).
        `exception` is an exception class or its dotted path ("ValueError" means
        "builtins.ValueError"): entries whose last error is that class or one of
        its subclasses match. Subclasses are found among the classes this process
        has imported (every app's tasks module is imported first); a path that
        cannot be imported, say of a class since removed, matches exactly.
        """
        qs = self
        if func is not None:
            qs = qs.filter(
                func=func if isinstance(func, str) else registry.callable_path(func)
            )
        if queue is not None:
            qs = qs.filter(queue=queue)
        if since is not None:
            qs = qs.filter(failed_at__gte=_aware(since, "since"))
        if until is not None:
            qs = qs.filter(failed_at__lt=_aware(until, "until"))
        if exception is not None:
            qs = qs.filter(exception_class__in=qs._exception_paths(exception))
        return qs

    def _exception_paths(self, exception: type[BaseException] | str) -> list[str]:
        """Return the stored exception paths among these that are `exception` or a subclass."""
        if isinstance(exception, str):
            path = exception if "." in exception else f"builtins.{exception}"
            try:
                found = import_string(path)
            except ImportError:
                return [path]
            if not (isinstance(found, type) and issubclass(found, BaseException)):
                raise TypeError(
                    "exception must be an exception class or its dotted path; "
                    f"{exception!r} names a {type(found).__name__}."
                )
            exception = found
        elif not (isinstance(exception, type) and issubclass(exception, BaseException)):
            raise TypeError(
                f"exception must be an exception class or its dotted path, got {exception!r}."
            )
        # Tasks modules often define the exceptions their tasks raise.
        registry.registered_paths()
        wanted = {class_path(kind) for kind in _subclasses(exception)}
        stored = self.order_by().values_list("exception_class", flat=True).distinct()
        return sorted(wanted.intersection(stored))


class FailedTask(models.Model):
    """The dead-letter queue: a task that used up its attempts, kept for inspection and replay."""

    id = models.UUIDField(primary_key=True, default=ids.uuid7, editable=False)
    task_id = models.UUIDField(db_index=True, help_text=_("The Task row that failed."))
    name = models.CharField(max_length=255)
    func = models.CharField(_("function"), max_length=255)
    payload = models.TextField(editable=False)
    queue = models.CharField(max_length=64)
    priority = models.SmallIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    timeout = models.FloatField(null=True, blank=True)
    keep_result = models.BooleanField(default=True)
    on_orphan = models.CharField(max_length=8, default="RETRY")
    group = models.CharField(max_length=255, blank=True, default="")
    hook = models.CharField(max_length=255, blank=True, default="")
    unique_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - as Task.unique_key
    chain = models.TextField(
        blank=True,
        default="",
        editable=False,
        help_text=_("The chain's links after this one; a replay carries them on."),
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(
        blank=True, default="", help_text=_("Why the last attempt failed.")
    )
    exception_class = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text=_("Dotted path of the last attempt's exception class."),
    )
    traceback = models.TextField(blank=True, default="")
    worker_id = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text=_("The worker that ran the last attempt."),
    )
    attempt_log = models.JSONField(default=list, blank=True)
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the last attempt started.")
    )
    failed_at = models.DateTimeField(default=timezone.now, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_as = models.UUIDField(
        null=True, blank=True, help_text=_("The Task a replay created.")
    )
    replay_count = models.PositiveIntegerField(default=0)
    replay_log = models.JSONField(
        default=list,
        blank=True,
        help_text=_("One entry per replay: when, by whom, the new task or the error."),
    )

    objects = FailedTaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("failed task")
        ordering = ["-failed_at"]
        indexes = [
            models.Index(fields=["func", "failed_at"], name="dbqueue_failed_func"),
            models.Index(fields=["queue", "failed_at"], name="dbqueue_failed_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.task_id})"


def _subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    found, todo = {root}, [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _aware(value: Any, name: str) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}.")
    from dbqueue import validation  # it imports the models

    return validation.aware(value, name)
