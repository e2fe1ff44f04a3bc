"""Showing what a task carries without trusting it: arguments, results, attempts.

Arguments are read only through Task.args / Task.kwargs, which verify the
payload's signature before anything is unpickled; a row whose payload does
not verify, or cannot be decoded, shows why instead of failing the page.
Values are shown as a truncated repr. Secret arguments (a task's
``secret_args`` and DBQUEUE_SECRET_ARGUMENT_NAMES, see dbqueue.redaction) are
hidden from everyone, since no page needs them; beyond those, keyword
arguments whose names merely look secret are masked for users without the
view_task_arguments permission.
"""

from __future__ import annotations

import datetime
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbqueue import models, redaction

REPR_LIMIT = 2000  # characters of one value's repr shown
MASK = "********"
EMPTY = "-"  # shown for a missing value in list columns
# The names Django's error reports hide (SafeExceptionReporterFilter), plus a few.
SECRET_NAMES = re.compile(
    "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|CREDENTIAL|COOKIE|SESSION", re.I
)

_repr = reprlib.Repr()
_repr.maxstring = 300
_repr.maxother = 300
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 25
_repr.maxlevel = 4


@dataclass
class Arguments:
    """A call's arguments ready for a template: reprs, or the reason there are none."""

    args: list[str]
    kwargs: list[tuple[str, str]]
    error: str = ""
    masked: bool = False  # a value was masked that view_task_arguments would show
    redacted: bool = False  # a secret argument was hidden, as it is from everyone


def short_repr(value: Any) -> str:
    """Return a repr of `value` cut to REPR_LIMIT characters; never raises."""
    try:
        text = _repr.repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    if len(text) > REPR_LIMIT:
        text = text[:REPR_LIMIT] + f"… ({len(text) - REPR_LIMIT} more characters)"
    return text


def arguments(func: str, payload: str, hook: str, *, unmasked: bool) -> Arguments:
    """Decode a stored call through Task's verifying properties, for display.

    Works for a FailedTask or Schedule too: their stored call has the same
    func, payload and hook.
    """
    call = models.Task(func=func, payload=payload, hook=hook)
    try:
        args, kwargs = call.args, call.kwargs
    except Exception as exc:
        # A signature that does not verify, an unknown serializer, or a
        # verified pickle of a class since removed: say which, never a 500.
        return Arguments(
            [],
            [],
            error=f"The arguments cannot be shown: {type(exc).__name__}: {exc}",
        )
    redacted_args, redacted_kwargs = redaction.redact(func, args, kwargs)
    redacted = _hid(redacted_args, args) or _hid(redacted_kwargs, kwargs)
    args, kwargs = redacted_args, redacted_kwargs
    masked = False
    shown: list[tuple[str, str]] = []
    for name, value in kwargs.items():
        if not unmasked and SECRET_NAMES.search(str(name)):
            shown.append((str(name), MASK))
            masked = True
        else:
            if not unmasked:
                value, hid = _mask_nested(value)
                masked = masked or hid
            shown.append((str(name), short_repr(value)))
    return Arguments(
        [short_repr(value) for value in args], shown, masked=masked, redacted=redacted
    )


def result(task: models.Task) -> str:
    """Return the task's result as a truncated repr, or why it cannot be shown."""
    if task.status != models.Status.SUCCEEDED:
        return ""
    if not task.result_payload:
        return "(not kept)"
    try:
        return short_repr(task.result)
    except Exception as exc:
        return f"The result cannot be shown: {type(exc).__name__}: {exc}"


def attempts(log: Any) -> list[dict[str, Any]]:
    """Return the attempt log's entries, newest first, with their times parsed."""
    if not isinstance(log, list):
        return []
    entries = []
    for entry in reversed(log):
        if not isinstance(entry, Mapping):
            continue
        shown = dict(entry)
        for key in ("started_at", "finished_at", "at"):
            shown[key] = _parse(entry.get(key))
        entries.append(shown)
    return entries


def duration(seconds: float | None) -> str:
    """Format a duration in seconds for a list column ("1.25 s", "3 min 4 s")."""
    if seconds is None:
        return EMPTY
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _hid(redacted: Any, original: Any) -> bool:
    """Say whether redact() replaced anything (it returns untouched values as the same objects)."""
    if isinstance(redacted, dict):
        return any(value is not original[key] for key, value in redacted.items())
    return any(new is not old for new, old in zip(redacted, original, strict=True))


def _mask_nested(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """Mask secret-looking keys in nested dicts (a config dict passed as one argument)."""
    if depth > 3 or not isinstance(value, dict):
        return value, False
    hid = False
    copy: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and SECRET_NAMES.search(key):
            copy[key] = MASK
            hid = True
        else:
            copy[key], inner = _mask_nested(item, depth + 1)
            hid = hid or inner
    return copy, hid


def _parse(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
