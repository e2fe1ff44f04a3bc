"""Turning schedule() arguments and DBQUEUE_SCHEDULES entries into a validated Definition.

Everything here runs before anything is written, and without a database (the
system check dbqueue.E006 validates the declarations with it). Errors name the
argument, the value and the fix, with enqueue()'s own checks for task options.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import numbers
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.utils import timezone as dj_timezone

from dbqueue import api, models, registry, scheduling, serialization, validation

# Task options a schedule stores for the tasks it enqueues. The other options
# of async_task() mean nothing for a call that repeats: countdown and eta (the
# schedule decides when), sync, and unique_key (one per call) with the two
# options that need it, unique_for and on_conflict.
NOT_FOR_SCHEDULES = frozenset(
    {"countdown", "eta", "sync", "unique_key", "unique_for", "on_conflict"}
)
COLUMN_OPTIONS = frozenset({"queue", "priority"})
SCHEDULE_FIELDS = (
    "schedule_type",
    "minutes",
    "cron",
    "next_run",
    "repeats",
    "timezone",
    "catch_up",
    "allow_overlap",
    "enabled",
)
# Django-Q's one-letter schedule types, accepted so that its code ports as is.
DJANGO_Q_TYPES = {
    "O": scheduling.ONCE,
    "I": scheduling.MINUTES,
    "H": scheduling.HOURLY,
    "D": scheduling.DAILY,
    "W": scheduling.WEEKLY,
    "M": scheduling.MONTHLY,
    "Q": scheduling.QUARTERLY,
    "Y": scheduling.YEARLY,
    "C": scheduling.CRON,
}
NAME_MAX = 100  # characters, Schedule.name
CRON_MAX = 100  # characters, Schedule.cron


@dataclasses.dataclass
class Definition:
    """A validated schedule, ready to store: what schedule() and a declaration describe."""

    name: str
    func: str
    payload: str
    schedule_type: str
    minutes: int | None
    cron: str
    next_run: datetime.datetime | None
    repeats: int
    timezone: str
    catch_up: str
    allow_overlap: bool
    enabled: bool
    queue: str
    priority: int | None
    task_options: dict[str, Any]

    def fingerprint(self) -> str:
        """Hash the timing as given, so an unchanged call keeps next_run and repeats."""
        timing = [
            self.schedule_type,
            self.minutes,
            self.cron,
            self.timezone,
            self.next_run.isoformat() if self.next_run else None,
            self.repeats,
        ]
        return hashlib.sha256(json.dumps(timing).encode()).hexdigest()


def define(
    func: str | Callable[..., Any],
    args: Sequence[Any],
    split: tuple[dict[str, Any], dict[str, Any]],
    *,
    name: str | None,
    schedule_type: str | None,
    minutes: Any,
    cron: Any,
    next_run: Any,
    repeats: Any,
    timezone: Any,
    catch_up: Any,
    allow_overlap: Any,
    enabled: Any,
) -> Definition:
    """Validate a schedule without touching the database and return its Definition."""
    call_kwargs, options = split
    registered = registry.resolve(func)
    if name is None:
        name = f"{registered.path.rpartition('.')[2]}-{uuid.uuid4().hex[:8]}"
    name = validation.text(name, "name", NAME_MAX)
    if not name.strip():
        raise ValueError("name must not be empty.")
    kind = _kind(schedule_type, cron=cron, minutes=minutes)
    zone_name = "" if timezone is None else timezone
    if not isinstance(zone_name, str):
        # A falsy one (0, False) would pass the check below unnoticed.
        raise TypeError(
            "timezone must be an IANA time zone name such as 'Europe/Berlin', "
            f"got {validation.shown(zone_name)}."
        )
    problems = scheduling.timing_problems(
        kind,
        minutes=minutes,
        cron="" if cron is None else cron,
        timezone_name=zone_name,
    )
    if problems:
        raise ValueError(" ".join(problems.values()))
    if kind == scheduling.CRON and len(" ".join(cron.split())) > CRON_MAX:
        raise ValueError(
            f"cron must be at most {CRON_MAX} characters once its spaces are "
            f"normalised, got {len(' '.join(cron.split()))}; use ranges (1-5) and "
            "steps (*/15) instead of long lists."
        )
    if next_run is not None:
        if not isinstance(next_run, datetime.datetime):
            raise TypeError(
                f"next_run must be an aware datetime, got {type(next_run).__name__} "
                f"{validation.shown(next_run)}."
            )
        next_run = validation.aware(next_run, "next_run")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < -1:
        raise ValueError(
            f"repeats must be -1 (forever) or a number of runs, got {validation.shown(repeats)}."
        )
    if repeats > validation.INTEGER_MAX:
        raise ValueError(
            f"repeats must be at most {validation.INTEGER_MAX}, got {validation.shown(repeats)}."
        )
    if not isinstance(allow_overlap, bool):
        raise TypeError(
            f"allow_overlap must be True or False, got {validation.shown(allow_overlap)}."
        )
    if not isinstance(enabled, bool):
        raise TypeError(
            f"enabled must be True or False, got {validation.shown(enabled)}."
        )
    task_options = _task_options(
        {k: v for k, v in options.items() if k not in COLUMN_OPTIONS}
    )
    hook = str(task_options.get("hook") or "")
    payload = serialization.dumps_payload(
        registered.path, args, call_kwargs, func=registered.func, hook=hook
    )
    return Definition(
        name=name,
        func=registered.path,
        payload=payload,
        schedule_type=kind,
        minutes=minutes if kind == scheduling.MINUTES else None,
        cron=" ".join(cron.split()) if kind == scheduling.CRON else "",
        next_run=next_run,
        repeats=repeats,
        timezone=zone_name,
        catch_up=_catch_up(catch_up),
        allow_overlap=allow_overlap,
        enabled=enabled,
        queue=validation.queue_name(options["queue"])
        if options.get("queue") is not None
        else "",
        priority=validation.priority(options["priority"])
        if options.get("priority") is not None
        else None,
        task_options=task_options,
    )


def declared_definition(name: str, entry: Mapping[str, Any]) -> Definition:
    """Validate one DBQUEUE_SCHEDULES entry and return its Definition (no database access)."""
    if not isinstance(entry, Mapping):
        raise TypeError(
            f"DBQUEUE_SCHEDULES[{name!r}] must be a dict of schedule() arguments, "
            f"got {type(entry).__name__}."
        )
    values = dict(entry)
    if "func" not in values:
        raise ValueError(
            f"DBQUEUE_SCHEDULES[{name!r}] has no 'func'; give the task's dotted path."
        )
    func = values.pop("func")
    args = values.pop("args", ())
    call_kwargs = values.pop("kwargs", {})
    if not isinstance(args, (list, tuple)) or not isinstance(call_kwargs, Mapping):
        raise TypeError(
            f"DBQUEUE_SCHEDULES[{name!r}]: 'args' must be a list and 'kwargs' a dict."
        )
    fields = {key: values.pop(key) for key in SCHEDULE_FIELDS if key in values}
    options = values.pop("q_options", None)
    if options is None:
        options = {
            key: values.pop(key) for key in list(values) if key in api.RESERVED_OPTIONS
        }
    if values:
        raise TypeError(
            f"DBQUEUE_SCHEDULES[{name!r}] has unknown key(s) {', '.join(map(repr, sorted(values)))}; "
            f"the keys are func, args, kwargs, q_options, {', '.join(SCHEDULE_FIELDS)} and the task options."
        )
    return define(
        func,
        tuple(args),
        (dict(call_kwargs), _checked_options(options)),
        name=name,
        schedule_type=fields.get("schedule_type"),
        minutes=fields.get("minutes"),
        cron=fields.get("cron"),
        next_run=fields.get("next_run"),
        repeats=fields.get("repeats", -1),
        timezone=fields.get("timezone"),
        catch_up=fields.get("catch_up", models.CatchUp.SKIP),
        allow_overlap=fields.get("allow_overlap", True),
        enabled=fields.get("enabled", True),
    )


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the task's own keyword arguments from the task options (as async_task does)."""
    q_options = kwargs.pop("q_options", None)
    if q_options is None:
        options = {
            name: kwargs.pop(name) for name in api.RESERVED_OPTIONS & set(kwargs)
        }
        return kwargs, _checked_options(options)
    if not isinstance(q_options, Mapping):
        raise TypeError(
            f"q_options must be a dict of options, got {type(q_options).__name__}."
        )
    return kwargs, _checked_options(dict(q_options))


def _checked_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - api.RESERVED_OPTIONS)
    if unknown:
        raise TypeError(
            f"Unknown task option(s) {', '.join(map(repr, unknown))}; "
            f"the options are {', '.join(sorted(api.RESERVED_OPTIONS - NOT_FOR_SCHEDULES))}."
        )
    refused = sorted(set(options) & NOT_FOR_SCHEDULES)
    if refused:
        raise TypeError(
            f"{', '.join(map(repr, refused))} cannot be given to a schedule: the schedule "
            "decides when each run is enqueued, and each run is a new call."
        )
    return dict(options)


def _task_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the options stored for each run's task, with enqueue()'s own checks."""
    stored: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in ("task_name", "group"):
            stored[key] = validation.text(value, key, 255)
        elif key == "hook":
            stored[key] = validation.hook_path(value)
        elif key == "save":
            stored[key] = validation.keep_result(value)
        elif key == "timeout":
            stored[key] = validation.timeout(value)
        elif key == "max_attempts":
            stored[key] = validation.positive_int(value, key)
        elif key == "expires":
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or value <= 0
                or not value < math.inf  # nor NaN
            ):
                raise ValueError(
                    "expires must be a number of seconds > 0 after each run is enqueued "
                    f"(a fixed datetime would expire every later run), got {validation.shown(value)}."
                )
            validation.later(dj_timezone.now(), value, key)  # not past the year 9999
            stored[key] = float(value)
        elif key == "on_orphan":
            stored[key] = validation.on_orphan(value)
        elif key == "on_commit":
            if value is not False:
                # ValueError unless True or a database alias
                validation.commit_alias(value)
            stored[key] = value
        elif isinstance(value, (str, int, float, bool)):
            stored[key] = value  # an option enqueue() validates
        else:
            raise TypeError(
                f"Task option {key!r} of a schedule must be a string, number or boolean, "
                f"got {validation.shown(value)}."
            )
    return stored


def _kind(schedule_type: Any, *, cron: Any, minutes: Any) -> str:
    if schedule_type is None:
        if cron is not None:
            return scheduling.CRON
        if minutes is not None:
            return scheduling.MINUTES
        return scheduling.ONCE
    if not isinstance(schedule_type, str):
        raise TypeError(
            "schedule_type must be a ScheduleType such as ScheduleType.DAILY, "
            f"got {validation.shown(schedule_type)}."
        )
    value = DJANGO_Q_TYPES.get(schedule_type, schedule_type.upper())
    if value not in scheduling.KINDS:
        raise ValueError(
            f"schedule_type {schedule_type!r} is not one of "
            f"{', '.join(k.lower() for k in scheduling.KINDS)}."
        )
    return value


def _catch_up(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in models.CatchUp.values:
        raise ValueError(
            f"catch_up must be 'skip', 'once' or 'all', got {validation.shown(value)}."
        )
    return value.upper()
