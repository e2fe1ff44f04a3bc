"""The schedule form: a registered function from a list, arguments as JSON, timing checked.

No field takes an import path or serialised data. The function is a choice
among registry.registered_paths(); arguments are JSON literals, which the
form signs into the payload itself (serialization.dumps_payload) for the
chosen function and the schedule's hook; everything else is the model's own
validation (Schedule.clean), so the form says what schedule() would say.

Secret arguments (see dbqueue.redaction) are shown as ``[redacted]``; a
value left as ``[redacted]`` keeps the stored secret, so editing a schedule
never needs, nor reveals, the secret itself.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from dbqueue import exceptions, models, redaction, registry, scheduling, serialization
from dbqueue.models.schedule import task_problem

PREVIEW_RUNS = 5  # next run times the form and the preview endpoint show

if TYPE_CHECKING:
    # django-stubs makes ModelForm generic; at run time it need not be subscriptable.
    _ModelForm = forms.ModelForm[models.Schedule]
else:
    _ModelForm = forms.ModelForm


class ScheduleForm(_ModelForm):
    func = forms.ChoiceField(
        label="Function",
        help_text="Only tasks registered with @task (or listed in DBQUEUE_TASKS) are offered.",
    )
    args = forms.CharField(
        label="Positional arguments",
        required=False,
        initial="[]",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text='A JSON list, such as [42, "weekly"].',
    )
    kwargs = forms.CharField(
        label="Keyword arguments",
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text='A JSON object, such as {"user_id": 42}.',
    )

    class Meta:
        model = models.Schedule
        fields = [  # noqa: RUF012 - Django's idiom for Meta
            "name",
            "func",
            "args",
            "kwargs",
            "schedule_type",
            "minutes",
            "cron",
            "timezone",
            "next_run",
            "repeats",
            "enabled",
            "catch_up",
            "allow_overlap",
            "queue",
            "priority",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registered = registry.registered_paths()
        choices = [("", "---------"), *((path, path) for path in registered)]
        current = self.instance.func if self.instance.pk else ""
        if current and current not in registered:
            # Shown as it is, so the operator sees what the row says; choosing
            # it fails validation (clean_func).
            choices.insert(1, (current, f"{current} (not registered)"))
        self.fields["func"].choices = choices  # type: ignore[attr-defined]
        self.stored_error = ""
        self.arguments_editable = True
        # The stored call as decoded and as shown (secrets redacted), to put
        # back secrets a post leaves as "[redacted]".
        self.stored_call: tuple[Any, Any] | None = None
        self.shown_call: tuple[Any, Any] | None = None
        if self.instance.pk:
            self._load_arguments()

    def _load_arguments(self) -> None:
        """Show the stored arguments as JSON, decoded through the model's verifying properties."""
        try:
            args, kwargs = self.instance.args, self.instance.kwargs
        except Exception as exc:
            self.stored_error = f"{type(exc).__name__}: {exc}"
            for name in ("args", "kwargs"):
                self.fields[name].help_text = (
                    f"The stored arguments cannot be read ({self.stored_error}); "
                    "enter them again."
                )
            return
        shown_args, shown_kwargs = redaction.redact(self.instance.func, args, kwargs)
        self.stored_call = (list(args), dict(kwargs))
        self.shown_call = (list(shown_args), shown_kwargs)
        try:
            self.initial["args"] = json.dumps(list(shown_args))
            self.initial["kwargs"] = json.dumps(shown_kwargs)
        except (TypeError, ValueError):
            # Arguments such as datetimes came from schedule() in code; a JSON
            # round trip would change them, so the form leaves them alone.
            self.arguments_editable = False
            for name in ("args", "kwargs"):
                self.fields[name].disabled = True
                self.fields[
                    name
                ].help_text = "These arguments are not plain JSON; change them with schedule() in code."
            self.initial["args"] = repr(list(shown_args))
            self.initial["kwargs"] = repr(shown_kwargs)

    def clean_func(self) -> str:
        value = str(self.cleaned_data["func"])
        problem = task_problem(value)
        if problem:
            raise ValidationError(problem)
        return value

    def clean_args(self) -> list[Any]:
        if not self.arguments_editable:
            return []  # unused: the stored payload is kept
        value = _json(self.cleaned_data.get("args"), "[]", "Positional arguments")
        if not isinstance(value, list):
            raise ValidationError(
                f"Positional arguments must be a JSON list, got a {type(value).__name__}."
            )
        return value

    def clean_kwargs(self) -> dict[str, Any]:
        if not self.arguments_editable:
            return {}
        value = _json(self.cleaned_data.get("kwargs"), "{}", "Keyword arguments")
        if not isinstance(value, dict):
            raise ValidationError(
                f"Keyword arguments must be a JSON object, got a {type(value).__name__}."
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        func = cleaned.get("func")
        if not func or not self.arguments_editable or self.has_error("args"):
            return cleaned
        if self.has_error("kwargs"):
            return cleaned
        hook = str((self.instance.task_options or {}).get("hook") or "")
        if hook and self.stored_error:
            # The hook is an import path signed into the payload. If that
            # signature does not verify, the row may have been written by
            # someone without the key: re-signing it here would vouch for it.
            raise ValidationError(
                f"This schedule's hook {hook!r} cannot be verified, because its stored "
                "arguments do not verify. Set the schedule again with schedule() in "
                "code, or delete it."
            )
        args, kwargs = cleaned.get("args", []), cleaned.get("kwargs", {})
        if self.stored_call is not None and self.shown_call is not None:
            args, kept_args = _restore(args, self.shown_call[0], self.stored_call[0])
            kwargs, kept_kwargs = _restore(
                kwargs, self.shown_call[1], self.stored_call[1]
            )
            if (kept_args or kept_kwargs) and func != self.instance.func:
                # A secret given to one function must not follow the form to another.
                raise ValidationError(
                    f"The arguments shown as {redaction.REDACTED} are secrets kept for "
                    f"{self.instance.func}; enter them again to use them with {func}."
                )
        try:
            self.instance.payload = serialization.dumps_payload(
                func, args, kwargs, hook=hook
            )
        except exceptions.SerializationError as exc:
            self.add_error("args", str(exc))
        return cleaned


def _restore(posted: Any, shown: Any, stored: Any) -> tuple[Any, bool]:
    """Put back each stored secret the post left as REDACTED where it was shown; say if any."""
    if posted == redaction.REDACTED and shown == redaction.REDACTED:
        return stored, True
    if (
        isinstance(posted, dict)
        and isinstance(shown, dict)
        and isinstance(stored, dict)
    ):
        kept = False
        merged = {}
        for key, value in posted.items():
            if key in shown and key in stored:
                value, used = _restore(value, shown[key], stored[key])
                kept = kept or used
            merged[key] = value
        return merged, kept
    if isinstance(posted, list) and isinstance(shown, (list, tuple)):
        if not isinstance(stored, (list, tuple)) or len(shown) != len(stored):
            return posted, False
        kept = False
        items = list(posted)
        for index, (value, was_shown, was_stored) in enumerate(
            zip(posted, shown, stored, strict=False)
        ):
            items[index], used = _restore(value, was_shown, was_stored)
            kept = kept or used
        return items, kept
    return posted, False


def _json(text: Any, default: str, label: str) -> Any:
    try:
        return json.loads(str(text or "").strip() or default)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{label} are not valid JSON: {exc}.") from exc
    except ValueError as exc:
        # An integer past Python's digit limit for text (4300 by default).
        raise ValidationError(
            f"{label} hold a number too long to read: {exc}."
        ) from exc
    except RecursionError as exc:
        raise ValidationError(f"{label} are nested too deeply to read.") from exc


def preview(
    *,
    schedule_type: str,
    cron: str = "",
    minutes: object = None,
    timezone_name: str = "",
    next_run: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
    count: int = PREVIEW_RUNS,
) -> tuple[list[datetime.datetime], dict[str, str]]:
    """Return the next `count` run times of this timing, or what is wrong with it.

    Uses the model's own checks and time math (scheduling.timing_problems,
    Schedule.align and Schedule.preview), so the preview is what the
    scheduler will do.
    """
    now = now or timezone.now()
    problems = scheduling.timing_problems(
        schedule_type, minutes=minutes, cron=cron, timezone_name=timezone_name
    )
    if problems:
        return [], dict(problems)
    schedule = models.Schedule(
        schedule_type=schedule_type,
        cron=cron,
        minutes=minutes if isinstance(minutes, int) else None,
        timezone=timezone_name,
        next_run=next_run or now,
        repeats=-1,
    )
    try:
        schedule.align(next_run or now)
        return schedule.preview(count, now=now), {}
    except ValueError as exc:
        return [], {
            "cron" if schedule_type == scheduling.CRON else "next_run": str(exc)
        }
