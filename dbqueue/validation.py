"""Checks of the values a task or a schedule stores, shared by every way in.

async_task(), a schedule, qreplay's flags and the admin all store the same
columns, so they refuse the same values with the same words: each function
here returns the value to store, or raises ValueError or TypeError naming
the argument (`name`) and showing the value (see shown()).
"""

from __future__ import annotations

import datetime
import numbers
import reprlib
from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.module_loading import import_string

from dbqueue import models, registry, wallclock
from dbqueue.conf import settings

INTEGER_MAX = 2**31 - 1  # the largest max_attempts: PostgreSQL's integer column
# The worker's timer (setitimer) takes up to about 9.2e9 seconds.
TIMEOUT_MAX = 1e9  # seconds, about 31 years
# Values in error messages: short, even for a huge or deeply nested value.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def shown(value: Any) -> str:
    """repr() for an error message: bounded, and never raising (deep nesting, huge ints)."""
    try:
        return _REPR.repr(value)
    except Exception:
        return f"a {type(value).__name__}"


def text(value: Any, name: str, max_length: int) -> str:
    """Return `value` if it is a string a column of `max_length` characters can store."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string, got {type(value).__name__} {shown(value)}."
        )
    if len(value) > max_length:
        raise ValueError(
            f"{name} must be at most {max_length} characters, got {len(value)}."
        )
    check_storable(value, name)
    return value


def check_storable(value: str, name: str) -> None:
    """Raise ValueError naming `name` if a text column cannot store `value` as given.

    PostgreSQL refuses NUL in text, and no driver can encode a lone
    surrogate (such as a badly decoded byte): either would fail in the
    INSERT, with an error that names no argument.
    """
    position = value.find("\x00")
    if position >= 0:
        raise ValueError(
            f"{name} must not contain NUL characters ('\\x00'), found at position "
            f"{position}; PostgreSQL cannot store them in text."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} must be valid Unicode text; it has the lone surrogate "
            f"{value[exc.start]!r} at position {exc.start} (a badly decoded byte?)."
        ) from None


def queue_name(value: Any) -> str:
    name = text(value, "queue", 64)
    if not name:
        raise ValueError(
            "queue must not be empty; leave it out to use DBQUEUE_DEFAULT_QUEUE."
        )
    return name


def priority(value: Any) -> int:
    # Django's Tasks rule: 3.0 is a whole number, 3.5 is not. The range
    # comes first: int() of NaN or infinity raises.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not -100 <= value <= 100
        or int(value) != value
    ):
        raise ValueError(
            f"priority must be a whole number between -100 and 100, got {shown(value)}."
        )
    return int(value)


# Rows one batch (a claim, a prune, a purge, a replay) takes at most: its
# LIMIT, which SQLite refuses past 2**63 - 1, and its id list, under every
# supported vendor's limit on query parameters (SQLite 3.32+: 32766); and
# one transaction that stays short.
MAX_BATCH_SIZE = 10_000


def batch_size(value: Any, name: str = "batch_size") -> int:
    """Return `value` if it is a whole number of rows from 1 to MAX_BATCH_SIZE."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_BATCH_SIZE
    ):
        raise ValueError(
            f"{name} must be a whole number from 1 to {MAX_BATCH_SIZE}, got {value!r}."
        )
    return value


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {shown(value)}.")
    if value > INTEGER_MAX:
        raise ValueError(f"{name} must be at most {INTEGER_MAX}, got {shown(value)}.")
    return value


def timeout(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or value <= 0
        or not value <= TIMEOUT_MAX  # and not NaN
    ):
        raise ValueError(
            "timeout must be a positive number of seconds or None, at most "
            f"{TIMEOUT_MAX:g}, got {shown(value)}."
        )
    return float(value)


def keep_result(save: Any) -> bool:
    """Return whether to keep the result: `save`, or DBQUEUE_SAVE_RESULTS when None."""
    if save is None:
        return bool(settings.SAVE_RESULTS)
    if not isinstance(save, bool):
        raise TypeError(f"save must be True or False, got {shown(save)}.")
    return save


def on_orphan(value: Any) -> str:
    try:
        return models.OnOrphan(value.upper()).value
    except (AttributeError, ValueError):
        choices = [str(choice).lower() for choice in models.OnOrphan.values]
        raise ValueError(
            f"on_orphan must be one of {', '.join(map(repr, choices))}, got {shown(value)}."
        ) from None


def hook_path(hook: str | Callable[..., Any] | None) -> str:
    """Return the dotted path of a hook ("" for none), checking that it imports."""
    if hook is None or hook == "":
        return ""
    try:
        path = registry.callable_path(hook) if callable(hook) else hook
    except TypeError as exc:
        raise TypeError(f"hook must be a module-level function: {exc}") from None
    if not isinstance(path, str):
        raise TypeError(
            f"hook must be a function or its dotted path, got {type(hook).__name__}."
        )
    try:
        target = import_string(path)
    except (ImportError, ValueError, TypeError) as exc:
        # ValueError and TypeError: importlib's words for '.x' and '..x.y'.
        raise ValueError(f"hook {path!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise ValueError(f"hook {path!r} is a {type(target).__name__}, not a function.")
    return path


def commit_alias(on_commit: bool | str) -> str:
    """Return the database whose commit `on_commit` (True or an alias) waits for."""
    if on_commit is True:
        return DEFAULT_DB_ALIAS
    if isinstance(on_commit, str) and on_commit in connections:
        return on_commit
    raise ValueError(
        "on_commit must be True, False or a database alias in DATABASES, "
        f"got {shown(on_commit)}."
    )


def aware(value: datetime.datetime, name: str) -> datetime.datetime:
    """Return `value` as an aware UTC datetime the database can store.

    UTC because Python accepts offsets up to ±23:59 and PostgreSQL only up to
    ±15:59: the same instant in UTC is one every database takes.
    """
    if timezone.is_naive(value):
        if django_settings.USE_TZ:
            raise ValueError(
                f"{name} must be an aware datetime, got the naive {value.isoformat()}."
            )
        value = timezone.make_aware(value)
    try:
        instant = value.astimezone(datetime.UTC)
    except OverflowError:
        instant = None
    if instant is None or not wallclock.EARLIEST <= instant <= wallclock.LATEST:
        raise ValueError(
            f"{name} {value.isoformat()} is out of range: give a time between "
            f"{wallclock.EARLIEST.date()} and {wallclock.LATEST.date()} (UTC)."
        )
    return instant


def later(now: datetime.datetime, seconds: Any, name: str) -> datetime.datetime:
    """Return `seconds` after `now`; raise ValueError naming `name` past the latest storable time."""
    try:
        moment = now + datetime.timedelta(seconds=float(seconds))
    except OverflowError:
        moment = None
    if moment is None or moment > wallclock.LATEST:
        raise ValueError(
            f"{name} of {shown(seconds)} seconds ends after {wallclock.LATEST.date()}, "
            "the latest time dbqueue stores."
        )
    return moment
