"""The task list and detail page: what ran, what is waiting, and retry or cancel."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, reverse
from django.utils.html import format_html

from dbqueue import models
from dbqueue.admin import base, display, filters, operations, permissions

# The columns a list page reads: never the payload, result or attempt log.
LIST_COLUMNS = (
    "id",
    "name",
    "func",
    "queue",
    "priority",
    "status",
    "run_after",
    "attempts",
    "max_attempts",
    "enqueued_at",
    "started_at",
    "finished_at",
    "locked_by",
)
ERROR_HEAD = 120  # characters of the last error a list shows
FINISHED = {models.Status.SUCCEEDED, models.Status.FAILED, models.Status.CANCELLED}
RETRYABLE = {models.Status.FAILED, models.Status.CANCELLED, models.Status.QUEUED}


@admin.register(models.Task)
class TaskAdmin(base.ConsoleAdmin):
    list_display = (
        "name",
        "status_label",
        "queue",
        "priority",
        "attempts_label",
        "enqueued_at",
        "started_at",
        "finished_at",
        "duration",
        "worker",
        "error_head",
    )
    list_filter = (
        "status",
        filters.QueueFilter,
        filters.FunctionFilter,
        filters.EnqueuedFilter,
    )
    search_fields = ("id", "func", "group")
    search_help_text = "A task id, or a function path or group name exactly."
    ordering = ("-id",)
    actions = ("retry_selected", "cancel_selected", "delete_selected")
    change_form_template = "dbqueue/admin/task_change_form.html"
    readonly_fields = ("duration",)
    fieldsets = (
        (None, {"fields": ("id", "name", "func", "status", "queue", "priority")}),
        (
            "When",
            {
                "fields": (
                    "enqueued_at",
                    "run_after",
                    "expires_at",
                    "started_at",
                    "finished_at",
                    "duration",
                )
            },
        ),
        (
            "Attempts",
            {
                "fields": (
                    "attempts",
                    "max_attempts",
                    "timeout",
                    "on_orphan",
                    "locked_by",
                    "locked_until",
                    "error",
                )
            },
        ),
        ("Options", {"fields": ("group", "hook", "unique_key", "keep_result")}),
    )

    def lean(self, queryset: QuerySet[models.Task]) -> QuerySet[models.Task]:
        return queryset.only(*LIST_COLUMNS).annotate(
            error_head=Left("error", ERROR_HEAD)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: models.Task | None = None
    ) -> bool:
        # Tasks change only through their transitions (the actions), never a form.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Task]:
        queryset: QuerySet[models.Task] = super().get_queryset(request)
        if request.GET.get("status__exact") in FINISHED:
            # Every finished task has a finished_at. Saying so lets the
            # database read this list from the finished index, which holds
            # only rows that have one.
            queryset = queryset.filter(finished_at__isnull=False)
        return queryset

    def get_ordering(self, request: HttpRequest) -> Any:
        # A finished status is best listed newest-finished first: the
        # (status, finished_at) index serves that order directly.
        if request.GET.get("status__exact") in FINISHED:
            return ("-finished_at", "-id")
        return self.ordering or ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[models.Task], search_term: str
    ) -> tuple[QuerySet[models.Task], bool]:
        """Match an id, or a function path or group exactly.

        Django's default (icontains on every field) would scan the whole
        table. An id and a group are index lookups. A function is matched
        only for a dotted term, as every task path has a dot, so that a
        group search never scans: the task table has no index on func, to
        keep enqueue cheap, and the function filter shares that cost.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(id=uuid.UUID(term)), False
        except ValueError:
            if "." not in term:
                # Task's admin lists a TaskQuerySet (see get_queryset()).
                return cast(models.TaskQuerySet, queryset).in_group(term), False
            return queryset.filter(Q(func=term) | Q(group=term)), False

    # List columns.

    @admin.display(description="status", ordering="status")
    def status_label(self, task: models.Task) -> str:
        return str(task.get_status_display())

    @admin.display(description="attempts")
    def attempts_label(self, task: models.Task) -> str:
        return f"{task.attempts}/{task.max_attempts}"

    @admin.display(description="duration")
    def duration(self, task: models.Task) -> str:
        return display.duration(task.time_taken())

    @admin.display(description="worker", ordering="locked_by")
    def worker(self, task: models.Task) -> str:
        return task.locked_by or display.EMPTY

    @admin.display(description="last error")
    def error_head(self, task: models.Task) -> str:
        return str(getattr(task, "error_head", "") or "")

    # Actions.

    @admin.action(permissions=["retry"], description="Retry selected tasks now")
    def retry_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Task]
    ) -> None:
        # The list's query left the payload out; a retry copies it.
        self._retry(request, queryset.defer(None))

    @admin.action(permissions=["cancel"], description="Cancel selected queued tasks")
    def cancel_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Task]
    ) -> None:
        self._cancel(request, queryset)

    def _retry(self, request: HttpRequest, queryset: QuerySet[models.Task]) -> None:
        report = operations.retry_now(queryset.iterator(chunk_size=500))
        done = {**report.copied, **{pk: pk for pk in report.made_due}}
        operations.log(
            permissions.user_id(request),
            models.Task,
            [(pk, str(pk)) for pk in done],
            CHANGE,
            {
                **{pk: f"Retried as task {new}." for pk, new in report.copied.items()},
                **dict.fromkeys(report.made_due, "Made due now."),
            },
        )
        if report.copied or report.made_due:
            self.message_user(
                request,
                f"Retried {len(report.copied) + len(report.made_due)} task(s): "
                f"{len(report.copied)} copied as new tasks, {len(report.made_due)} made due now.",
                messages.SUCCESS,
            )
        for pk, reason in list(report.refused.items())[:10]:
            self.message_user(
                request, f"Task {pk} was not retried: {reason}", messages.WARNING
            )

    def _cancel(self, request: HttpRequest, queryset: QuerySet[models.Task]) -> None:
        queued = list(
            queryset.filter(status=models.Status.QUEUED).values_list("pk", "name")
        )
        reason = f"Cancelled by {permissions.username(request)} in the admin"
        cancelled = (
            models.Task.objects.using(models.queue_db())
            .filter(pk__in=[pk for pk, _ in queued])
            .cancel(reason=reason)
        )
        operations.log(
            permissions.user_id(request), models.Task, queued, CHANGE, reason
        )
        level = messages.SUCCESS if cancelled else messages.WARNING
        self.message_user(
            request,
            f"Cancelled {cancelled} queued task(s); running and finished tasks are left alone.",
            level,
        )

    # The detail page, and its buttons.

    def get_urls(self) -> list[URLPattern]:
        return [
            *self.button_urls(retry=self.retry_view, cancel=self.cancel_view),
            *super().get_urls(),
        ]

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        permissions.require(request, permissions.RETRY_TASK)
        self._retry(request, self._one(object_id))
        return self._back(object_id)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        permissions.require(request, permissions.CANCEL_TASK)
        self._cancel(request, self._one(object_id))
        return self._back(object_id)

    def detail_context(self, request: HttpRequest, task: models.Task) -> dict[str, Any]:
        return {
            "arguments": self.arguments_of(request, task),
            "result": display.result(task),
            "attempt_entries": display.attempts(task.attempt_log),
            "can_retry": self.has_retry_permission(request)
            and task.status in RETRYABLE,
            "can_cancel": self.has_cancel_permission(request)
            and task.status == models.Status.QUEUED,
            "retry_url": reverse("admin:dbqueue_task_retry", args=[task.pk]),
            "cancel_url": reverse("admin:dbqueue_task_cancel", args=[task.pk]),
            "dead_letter": models.FailedTask.objects.using(models.queue_db())
            .filter(task_id=task.pk)
            .only("id")
            .first(),
        }

    def _one(self, object_id: str) -> QuerySet[models.Task]:
        try:
            pk = uuid.UUID(object_id)
        except ValueError:
            raise Http404(f"No task has the id {object_id!r}.") from None
        get_object_or_404(models.Task.objects.using(models.queue_db()), pk=pk)
        return models.Task.objects.using(models.queue_db()).filter(pk=pk)

    def _back(self, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:dbqueue_task_change", args=[object_id])
        )


def task_link(task_id: uuid.UUID | str | None) -> str:
    """Return an admin link to a task by id, for other admins' columns."""
    if not task_id:
        return display.EMPTY
    url = reverse("admin:dbqueue_task_change", args=[task_id])
    return format_html('<a href="{}">{}</a>', url, str(task_id)[:13] + "…")
