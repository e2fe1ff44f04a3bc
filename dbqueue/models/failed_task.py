"""FailedTask: the dead-letter queue."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dbqueue import ids


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

    class Meta:
        verbose_name = _("failed task")
        ordering = ["-failed_at"]
        indexes = [
            models.Index(fields=["func", "failed_at"], name="dbqueue_failed_func"),
            models.Index(fields=["queue", "failed_at"], name="dbqueue_failed_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.task_id})"
