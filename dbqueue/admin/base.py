"""What every console ModelAdmin shares: guarded actions, lean list queries, confirmations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from dbqueue import models
from dbqueue.admin import display, operations, paginator, permissions

if TYPE_CHECKING:
    # django-stubs makes ModelAdmin generic; at run time it is not subscriptable.
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin

CONFIRM_TEMPLATE = "dbqueue/admin/confirm_action.html"


class LeanChangeList(ChangeList):
    """A changelist whose query reads only the columns the list shows (ModelAdmin.lean())."""

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        lean = getattr(self.model_admin, "lean", None)
        return lean(queryset) if lean is not None else queryset


class ConsoleAdmin(_ModelAdmin):
    """A ModelAdmin whose actions each need their own permission, and refuse crafted POSTs.

    The has_<name>_permission methods are what ``@admin.action(permissions=[name])``
    looks up, so an action a user may not run is neither offered nor accepted.
    List pages count with EstimatedCountPaginator, never count the whole
    table, and never compute facets.
    """

    paginator = paginator.EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(models.queue_db())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LeanChangeList

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Refuse a filter, search or ordering holding NUL, which no column can hold.

        PostgreSQL raises for NUL in a query parameter, which would be a 500;
        IncorrectLookupParameters is what the list page already answers
        with its "?e=1" page, and replay-all-matching with a message.
        """
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                raise IncorrectLookupParameters(
                    f"The list parameter {key!r} holds a NUL character."
                )
        return super().get_changelist_instance(request)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request, permissions.RETRY_TASK)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request, permissions.CANCEL_TASK)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request, permissions.REPLAY_FAILED_TASK)

    def has_run_permission(self, request: HttpRequest) -> bool:
        return permissions.has(request, permissions.RUN_SCHEDULE)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST" and "action" in request.POST:
            requested = _posted_action(request)
            if requested and requested not in self.get_actions(request):
                raise PermissionDenied(
                    f"The action {requested!r} is not available to you."
                )
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """Show the detail page with detail_context() added, for a row that exists."""
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context.update(self.detail_context(request, obj))
        return super().change_view(request, object_id, form_url, context)

    def detail_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        """Return what the detail page's template adds to Django's (nothing by default)."""
        return {}

    def arguments_of(self, request: HttpRequest, obj: Any) -> display.Arguments:
        """Return a row's call arguments for its page, masked unless the user may see them."""
        return display.arguments(
            obj.func,
            obj.payload,
            obj.hook,
            unmasked=permissions.has(request, permissions.VIEW_TASK_ARGUMENTS),
        )

    def button_urls(self, **views: Callable[..., HttpResponse]) -> list[URLPattern]:
        """Route the detail page's POST-only buttons: <id>/<name>/ named <app>_<model>_<name>."""
        wrap = self.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                f"<path:object_id>/{name}/",
                wrap(require_POST(view)),
                name=f"{prefix}_{name}",
            )
            for name, view in views.items()
        ]

    def confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        *,
        action: str,
        title: str,
        question: str,
        button: str,
        options: Sequence[tuple[str, str]] = (),
        filters: Sequence[tuple[str, Any]] = (),
        back: str = "",
    ) -> TemplateResponse:
        """Render a page asking to confirm `action` on `queryset`, with how many rows it covers.

        The page posts the same action back, with ``post=yes`` and the same
        selection (the ticked ids, or "all matching" and the list's filters
        in the URL), so the second POST acts on exactly what was counted.
        Without an `action` it posts to its own URL, which carries the
        list's `filters` (shown on the page); `back` is where "No" goes.
        """
        select_across = request.POST.get("select_across") == "1"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "question": question,
            "button": button,
            "count": queryset.count(),
            "action": action,
            "select_across": select_across,
            "selected": []
            if select_across
            else request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "options": list(options),
            "filters": list(filters),
            "back": back,
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)

    @admin.action(
        permissions=["delete"], description="Delete selected %(verbose_name_plural)s"
    )
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Delete the selection in short batches, after a confirmation that says how many.

        Replaces Django's delete_selected, whose confirmation page lists every
        row: with "select all" on a million tasks it would never render.
        """
        if request.POST.get("post") != "yes":
            return self.confirm(
                request,
                queryset,
                action="delete_selected",
                title="Delete",
                question=f"Delete these {self.opts.verbose_name_plural}? This cannot be undone.",
                button="Yes, delete them",
            )
        user_id = permissions.user_id(request)
        deleted = operations.delete_in_batches(queryset, user_id=user_id)
        self.message_user(
            request,
            f"Deleted {deleted} {self.opts.verbose_name_plural}.",
            messages.SUCCESS,
        )
        return None


def _posted_action(request: HttpRequest) -> str:
    """Return the action a changelist POST asks for, as Django's response_action reads it."""
    names = request.POST.getlist("action")
    try:
        index = int(request.POST.get("index", 0))
    except ValueError:
        index = 0
    return names[index] if 0 <= index < len(names) else ""
