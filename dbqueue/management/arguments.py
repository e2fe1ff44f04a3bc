"""Checks the operations commands share for their arguments, each a CommandError naming the flag.

Values arrive as the shell passes them, as strings, and are checked here
rather than by argparse's ``type=``, whose messages ("invalid float value")
name no rule and whose ``float`` takes "nan" and "inf".
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core.management.base import CommandError
from django.utils import dateparse, timezone

from dbqueue import validation


def refuse_double_dash(options: Mapping[str, Any], names: Iterable[str]) -> None:
    """Refuse a flag given '--' as its value.

    argparse before Python 3.13 turns --flag=-- into [], and 3.13 passes
    '--' through; both mean the value was left out.
    """
    for name in names:
        value = options.get(name)
        if isinstance(value, list) or value == "--":
            raise CommandError(f"{flag_of(name)} needs a value, got '--'.")


def seconds(
    flag: str, text: object, *, minimum: float = 0.0, returncode: int = 1
) -> float:
    """Parse a finite number of seconds of at least `minimum`."""
    try:
        value = float(str(text))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= minimum):
        raise CommandError(
            f"{flag} must be a number of seconds of at least {minimum:g}, got {text!r}.",
            returncode=returncode,
        )
    return value


def whole_number(
    flag: str, text: object, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """Parse a whole number from `minimum` to `maximum`."""
    try:
        value = int(str(text))
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = (
            f"from {minimum} to {maximum}"
            if maximum is not None
            else f"of at least {minimum}"
        )
        raise CommandError(f"{flag} must be a whole number {bounds}, got {text!r}.")
    return value


def storable(flag: str, value: str | None, *, returncode: int = 1) -> str | None:
    """Refuse text no database can be sent, naming the flag.

    An argument holding a byte that is not UTF-8 arrives as a lone
    surrogate (Python decodes argv with surrogateescape); call_command()
    can pass NUL, which PostgreSQL refuses.
    """
    if value is not None:
        try:
            validation.check_storable(value, flag)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=returncode) from None
    return value


def queue_names(
    flag: str, text: str, *, wildcard: bool = False, returncode: int = 1
) -> list[str]:
    """Parse a comma-separated list of queue names; with `wildcard`, '*' (all) may be one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        hint = (
            "a comma-separated list or '*'"
            if wildcard
            else "one or more names separated by commas"
        )
        raise CommandError(
            f"{flag} names no queue; give {hint}.", returncode=returncode
        )
    for name in names:
        if wildcard and name == "*":
            continue
        try:
            validation.queue_name(name)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"{flag}: {exc}", returncode=returncode) from None
    return names


def moment(flag: str, text: str | None) -> datetime.datetime | None:
    """Parse an ISO datetime or date; a naive one is in the current time zone."""
    if text is None:
        return None
    try:
        parsed = dateparse.parse_datetime(text)
        if parsed is None:
            day = dateparse.parse_date(text)
            if day is not None:
                parsed = datetime.datetime.combine(day, datetime.time())
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(
            f"{flag} must be an ISO date or datetime such as 2024-05-01 or "
            f"2024-05-01T12:00:00+00:00, got {text!r}."
        )
    if timezone.is_naive(parsed) and django_settings.USE_TZ:
        parsed = timezone.make_aware(parsed)
    try:
        return validation.aware(parsed, flag)  # a time the database can compare with
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")
