"""Schedules: edit with a safe form, preview the next runs, run now, enable and disable."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET

from dbqueue import exceptions, models, registry
from dbqueue.admin import base, display, operations, permissions, tasks
from dbqueue.admin import forms as console_forms


@admin.register(models.Schedule)
class ScheduleAdmin(base.ConsoleAdmin):
    form = console_forms.ScheduleForm
    list_display = (
        "name",
        "function",
        "timing",
        "next_run",
        "enabled",
        "repeats",
        "last_run_at",
        "last_outcome",
    )
    list_filter = ("enabled", "schedule_type")
    search_fields = ("name", "func")
    ordering = ("next_run", "id")
    actions = ("run_selected", "enable_selected", "disable_selected", "delete_selected")
    change_form_template = "dbqueue/admin/schedule_change_form.html"
    readonly_fields = ("next_runs", "task_options", "declared", "last_run")

    def get_fieldsets(
        self, request: HttpRequest, obj: models.Schedule | None = None
    ) -> Any:
        call = ["name", "func"]
        if self.has_change_permission(request, obj) or obj is None:
            call += ["args", "kwargs"]
        timing = ["schedule_type", "minutes", "cron", "timezone", "next_run", "repeats"]
        sections: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": call}),
            ("Timing", {"fields": [*timing, "next_runs"]}),
            (
                "Running",
                {
                    "fields": [
                        "enabled",
                        "catch_up",
                        "allow_overlap",
                        "queue",
                        "priority",
                        "task_options",
                    ]
                },
            ),
        ]
        if obj is not None:
            sections.append(("History", {"fields": ["last_run", "declared"]}))
        return sections

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.Schedule]:
        db = models.queue_db()
        runs = models.ScheduleRun.objects.using(db).filter(schedule=OuterRef("pk"))
        last = runs.order_by("-fired_at", "-id")
        queryset: QuerySet[models.Schedule] = super().get_queryset(request)
        return queryset.annotate(
            last_run_outcome=Subquery(last.values("outcome")[:1]),
            last_run_error=Subquery(last.values("error")[:1]),
            last_task_status=Subquery(
                models.Task.objects.using(db)
                .filter(id=OuterRef("last_task_id"))
                .values("status")[:1]
            ),
        )

    def lean(self, queryset: QuerySet[models.Schedule]) -> QuerySet[models.Schedule]:
        return queryset.defer("payload")

    # Columns.

    @admin.display(description="function", ordering="func")
    def function(self, schedule: models.Schedule) -> str:
        if schedule.func in registry.registered_paths():
            return schedule.func
        return format_html(
            '{} <strong class="dbqueue-warning">not registered</strong>', schedule.func
        )

    @admin.display(description="timing", ordering="schedule_type")
    def timing(self, schedule: models.Schedule) -> str:
        kind = str(models.ScheduleType(schedule.schedule_type).label)
        if schedule.schedule_type == models.ScheduleType.CRON:
            kind = f"cron {schedule.cron}"
        elif schedule.schedule_type == models.ScheduleType.MINUTES:
            kind = f"every {schedule.minutes} min"
        return f"{kind} ({schedule.timezone})" if schedule.timezone else str(kind)

    @admin.display(description="last outcome")
    def last_outcome(self, schedule: models.Schedule) -> str:
        outcome = getattr(schedule, "last_run_outcome", None)
        if outcome is None:
            return display.EMPTY
        label = str(models.RunOutcome(outcome).label)
        status = getattr(schedule, "last_task_status", None)
        if outcome == models.RunOutcome.ENQUEUED and status:
            label = f"{label}: {models.Status(status).label}"
        error = getattr(schedule, "last_run_error", "") or ""
        return f"{label} ({error[:100]})" if error else label

    @admin.display(description="last run")
    def last_run(self, schedule: models.Schedule) -> str:
        if schedule.last_run_at is None:
            return display.EMPTY
        return format_html(
            "{} — {}, task {}",
            schedule.last_run_at.isoformat(timespec="seconds"),
            self.last_outcome(schedule),
            tasks.task_link(schedule.last_task_id),
        )

    @admin.display(description="next runs")
    def next_runs(self, schedule: models.Schedule) -> str:
        if schedule.pk is None:
            return "Shown once saved; the preview above follows your edits."
        try:
            runs = schedule.preview(console_forms.PREVIEW_RUNS, now=timezone.now())
        except ValueError as exc:
            return f"Cannot be computed: {exc}"
        if not runs:
            return "No runs left."
        return format_html_join(
            "", "<div>{}</div>", ((run.isoformat(" ", "seconds"),) for run in runs)
        )

    # Actions.

    @admin.action(permissions=["run"], description="Run selected schedules now")
    def run_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Schedule]
    ) -> None:
        for schedule in queryset.defer(None)[:100]:
            self._run(request, schedule)

    @admin.action(permissions=["change"], description="Enable selected schedules")
    def enable_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Schedule]
    ) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(permissions=["change"], description="Disable selected schedules")
    def disable_selected(
        self, request: HttpRequest, queryset: QuerySet[models.Schedule]
    ) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[models.Schedule], enabled: bool
    ) -> None:
        rows = list(queryset.values_list("pk", "name"))
        changed = (
            models.Schedule.objects.using(models.queue_db())
            .filter(pk__in=[pk for pk, _ in rows])
            .update(enabled=enabled, updated_at=timezone.now())
        )
        word = "Enabled" if enabled else "Disabled"
        operations.log(
            permissions.user_id(request), models.Schedule, rows, CHANGE, f"{word}."
        )
        self.message_user(request, f"{word} {changed} schedule(s).", messages.SUCCESS)

    def _run(self, request: HttpRequest, schedule: models.Schedule) -> None:
        try:
            task = operations.run_schedule_now(
                schedule, by=permissions.username(request)
            )
        except (exceptions.DbqueueError, ValueError, TypeError) as exc:
            self.message_user(
                request,
                f"Schedule {schedule.name!r} was not run: {exc}",
                messages.ERROR,
            )
            return
        operations.log(
            permissions.user_id(request),
            models.Schedule,
            [(schedule.pk, schedule.name)],
            CHANGE,
            f"Run now as task {task.id}.",
        )
        self.message_user(
            request,
            format_html(
                "Schedule {} enqueued task {}.", schedule.name, tasks.task_link(task.id)
            ),
            messages.SUCCESS,
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "preview/",
                self.admin_site.admin_view(require_GET(self.preview_view)),
                name="dbqueue_schedule_preview",
            ),
            *self.button_urls(run=self.run_view),
            *super().get_urls(),
        ]

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        permissions.require(request, permissions.RUN_SCHEDULE)
        schedule = get_object_or_404(
            models.Schedule.objects.using(models.queue_db()),
            pk=object_id if object_id.isdigit() else None,
        )
        self._run(request, schedule)
        return HttpResponseRedirect(
            reverse("admin:dbqueue_schedule_change", args=[schedule.pk])
        )

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """Answer the form's live preview: the next runs of the timing typed so far, or its errors."""
        if not self.has_view_or_change_permission(request):
            return JsonResponse({"errors": {"": "No permission."}}, status=403)
        minutes_text = request.GET.get("minutes", "").strip()
        next_run = None
        if request.GET.get("next_run_0"):
            try:
                next_run = forms.SplitDateTimeField().clean(
                    [request.GET.get("next_run_0"), request.GET.get("next_run_1", "")]
                )
            except forms.ValidationError as exc:
                return JsonResponse(
                    {"runs": [], "errors": {"next_run": " ".join(exc.messages)}}
                )
        runs, errors = console_forms.preview(
            schedule_type=request.GET.get("schedule_type", ""),
            cron=request.GET.get("cron", "").strip(),
            minutes=int(minutes_text)
            if minutes_text.isdigit()
            else minutes_text or None,
            timezone_name=request.GET.get("timezone", "").strip(),
            next_run=next_run,
        )
        return JsonResponse(
            {"runs": [run.isoformat(" ", "seconds") for run in runs], "errors": errors}
        )

    def detail_context(
        self, request: HttpRequest, schedule: models.Schedule
    ) -> dict[str, Any]:
        return {
            "arguments": self.arguments_of(request, schedule),
            "can_run": self.has_run_permission(request),
            "run_url": reverse("admin:dbqueue_schedule_run", args=[schedule.pk]),
            "is_registered": schedule.func in registry.registered_paths(),
        }

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        context["preview_url"] = reverse("admin:dbqueue_schedule_preview")
        return super().render_change_form(request, context, *args, **kwargs)
