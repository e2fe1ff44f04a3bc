"""The dead-letter queue: inspect failures, replay one, the selected, or all matching a filter."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from dbqueue import exceptions, models, registry, replays
from dbqueue.admin import base, display, filters, operations, permissions, tasks

LIST_COLUMNS = (
    "id",
    "task_id",
    "name",
    "func",
    "queue",
    "attempts",
    "exception_class",
    "failed_at",
    "replay_count",
    "replayed_as",
)
AGAIN_OPTION = ("again", "Also replay entries that were replayed before")
MESSAGES_SHOWN = 10  # per-entry failures listed after a bulk replay


class FailedFunctionFilter(filters.FunctionFilter):
    """Functions of the recent entries (removed ones included), and the registered ones."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        paths = dict(super().lookups(request, model_admin))
        paths.update(
            (path, path)
            for path in filters.recent_values(
                models.FailedTask.objects.using(models.queue_db()), "func"
            )
        )
        return sorted(paths.items())


class FailedQueueFilter(filters.QueueFilter):
    """Queues of the recent entries too."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = dict(super().lookups(request, model_admin))
        names.update(
            (name, name)
            for name in filters.recent_values(
                models.FailedTask.objects.using(models.queue_db()), "queue"
            )
        )
        return sorted(names.items())


@admin.register(models.FailedTask)
class FailedTaskAdmin(base.ConsoleAdmin):
    list_display = (
        "name",
        "queue",
        "exception",
        "error_head",
        "attempts",
        "failed_at",
        "replay_history",
    )
    list_filter = (
        FailedFunctionFilter,
        FailedQueueFilter,
        filters.ExceptionFilter,
        filters.ReplayedFilter,
        "failed_at",
    )
    search_fields = ("id", "func", "group")
    search_help_text = "An entry or task id, or a function path or group name exactly."
    ordering = ("-id",)
    actions = ("replay_selected", "delete_selected")
    change_form_template = "dbqueue/admin/failedtask_change_form.html"
    change_list_template = "dbqueue/admin/failedtask_change_list.html"
    fieldsets = (
        (None, {"fields": ("id", "task_link", "name", "func", "queue", "priority")}),
        (
            "Failure",
            {
                "fields": (
                    "error",
                    "exception_class",
                    "attempts",
                    "max_attempts",
                    "worker_id",
                    "enqueued_at",
                    "started_at",
                    "failed_at",
                )
            },
        ),
        ("Replays", {"fields": ("replay_count", "replayed_at", "replayed_as_link")}),
        ("Options", {"fields": ("group", "hook", "unique_key", "timeout")}),
    )
    readonly_fields = ("task_link", "replayed_as_link")

    def lean(
        self, queryset: QuerySet[models.FailedTask]
    ) -> QuerySet[models.FailedTask]:
        return queryset.only(*LIST_COLUMNS).annotate(
            error_head=Left("error", tasks.ERROR_HEAD)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: models.FailedTask | None = None
    ) -> bool:
        return False

    def get_search_results(
        self,
        request: HttpRequest,
        queryset: QuerySet[models.FailedTask],
        search_term: str,
    ) -> tuple[QuerySet[models.FailedTask], bool]:
        """Match an entry or task id, or a function path or group exactly (index lookups)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            pk = uuid.UUID(term)
        except ValueError:
            return queryset.filter(Q(func=term) | Q(group=term)), False
        return queryset.filter(Q(id=pk) | Q(task_id=pk)), False

    # Columns.

    @admin.display(description="exception", ordering="exception_class")
    def exception(self, entry: models.FailedTask) -> str:
        return entry.exception_class.rpartition(".")[2] or display.EMPTY

    @admin.display(description="error")
    def error_head(self, entry: models.FailedTask) -> str:
        return str(getattr(entry, "error_head", "") or "")

    @admin.display(description="replays", ordering="replay_count")
    def replay_history(self, entry: models.FailedTask) -> str:
        if not entry.replay_count:
            return display.EMPTY
        return format_html(
            "{} (last: {})", entry.replay_count, tasks.task_link(entry.replayed_as)
        )

    @admin.display(description="task")
    def task_link(self, entry: models.FailedTask) -> str:
        return tasks.task_link(entry.task_id)

    @admin.display(description="replayed as")
    def replayed_as_link(self, entry: models.FailedTask) -> str:
        return tasks.task_link(entry.replayed_as)

    # Replaying.

    @admin.action(permissions=["replay"], description="Replay selected failed tasks")
    def replay_selected(
        self, request: HttpRequest, queryset: QuerySet[models.FailedTask]
    ) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return self.confirm(
                request,
                queryset,
                action="replay_selected",
                title="Replay failed tasks",
                question="Queue a fresh task for each of these failed tasks?",
                button="Yes, replay them",
                options=[AGAIN_OPTION],
            )
        self._replay(request, queryset)
        return None

    def _replay(
        self, request: HttpRequest, queryset: QuerySet[models.FailedTask]
    ) -> replays.ReplayReport:
        """Replay in short batches (dbqueue.replays), log each replay, and report."""
        report = replays.replay_many(
            queryset.order_by(),
            by=permissions.username(request),
            again=request.POST.get("again") == "1",
        )
        if report.replayed:
            names = dict(
                models.FailedTask.objects.using(models.queue_db())
                .filter(pk__in=list(report.replayed))
                .values_list("pk", "name")
            )
            operations.log(
                permissions.user_id(request),
                models.FailedTask,
                [(pk, names.get(pk, str(pk))) for pk in report.replayed],
                CHANGE,
                {pk: f"Replayed as task {new}." for pk, new in report.replayed.items()},
            )
        level = messages.SUCCESS if report.ok else messages.WARNING
        self.message_user(request, str(report), level)
        for pk, exc in list(report.failed.items())[:MESSAGES_SHOWN]:
            self.message_user(
                request, f"Failed task {pk} was not replayed: {exc}", messages.ERROR
            )
        return report

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "replay-matching/",
                self.admin_site.admin_view(self.replay_matching_view),
                name="dbqueue_failedtask_replay_matching",
            ),
            *self.button_urls(replay=self.replay_view),
            *super().get_urls(),
        ]

    def replay_matching_view(self, request: HttpRequest) -> HttpResponse:
        """Replay every entry the list's current filters and search match.

        GET shows how many that is and asks to confirm; only the POST of that
        page replays. The filters travel in the URL, so both see the same rows.
        """
        permissions.require(request, permissions.REPLAY_FAILED_TASK)
        back = reverse("admin:dbqueue_failedtask_changelist")
        try:
            changelist = self.get_changelist_instance(request)
            filters.check_choices(changelist, request)
            queryset = changelist.get_queryset(request)
        except IncorrectLookupParameters as exc:
            # A filter the list would ignore must not widen "all matching" to all.
            self.message_user(
                request,
                f"Nothing was replayed: the list's filters are not valid ({exc}).",
                messages.ERROR,
            )
            return HttpResponseRedirect(back)
        if request.GET:
            back += "?" + request.GET.urlencode()
        if request.method == "POST":
            self._replay(request, queryset)
            return HttpResponseRedirect(back)
        return self.confirm(
            request,
            queryset,
            action="",
            title="Replay all matching failed tasks",
            question="Queue a fresh task for every failed task that matches the list's filters?",
            button="Yes, replay them all",
            options=[AGAIN_OPTION],
            filters=list(request.GET.items()),
            back=back,
        )

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        permissions.require(request, permissions.REPLAY_FAILED_TASK)
        entry = get_object_or_404(
            models.FailedTask.objects.using(models.queue_db()), pk=_uuid(object_id)
        )
        by = permissions.username(request)
        try:
            task = replays.replay(entry, by=by, again=request.POST.get("again") == "1")
        except exceptions.AlreadyReplayed as exc:
            self.message_user(request, str(exc), messages.WARNING)
        except (exceptions.DbqueueError, ValueError) as exc:
            self.message_user(request, f"Not replayed: {exc}", messages.ERROR)
        else:
            operations.log(
                permissions.user_id(request),
                models.FailedTask,
                [(entry.pk, str(entry))],
                CHANGE,
                f"Replayed as task {task.id}.",
            )
            self.message_user(
                request,
                format_html("Replayed as task {}.", tasks.task_link(task.id)),
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse("admin:dbqueue_failedtask_change", args=[entry.pk])
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if self.has_replay_permission(request):
            url = reverse("admin:dbqueue_failedtask_replay_matching")
            query = request.GET.copy()
            for name in ("p", "o", "e", "_changelist_filters"):
                query.pop(name, None)
            context["replay_matching_url"] = (
                f"{url}?{query.urlencode()}" if query else url
            )
        return super().changelist_view(request, context)

    def detail_context(
        self, request: HttpRequest, entry: models.FailedTask
    ) -> dict[str, Any]:
        return {
            "arguments": self.arguments_of(request, entry),
            "attempt_entries": display.attempts(entry.attempt_log),
            "replay_entries": display.attempts(entry.replay_log),
            "is_registered": entry.func in registry.registered_paths(),
            "can_replay": self.has_replay_permission(request),
            "replay_url": reverse("admin:dbqueue_failedtask_replay", args=[entry.pk]),
        }


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
