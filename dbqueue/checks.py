"""Django system checks for dbqueue's settings and database.

Ids are stable, so a project can silence one with SILENCED_SYSTEM_CHECKS and
search for it. ``qcluster`` runs them all, the database ones included, before
it forks a worker.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from dbqueue import claiming, exceptions, metrics, serialization, validation
from dbqueue.conf import PREFIX, settings

ROUTER = "dbqueue.routers.QueueRouter"


@checks.register()
def check_database_alias(**kwargs: Any) -> list[checks.CheckMessage]:
    alias = settings.DATABASE
    if alias not in django_settings.DATABASES:
        return [
            checks.Error(
                f"Database alias {alias!r} in DBQUEUE_DATABASE is not in DATABASES.",
                hint="Add it to DATABASES or set DBQUEUE_DATABASE to an existing alias.",
                id="dbqueue.E001",
            )
        ]
    try:
        claiming.engine(connections[alias])
    except exceptions.UnsupportedDatabase as exc:
        return [checks.Error(str(exc), id="dbqueue.E003")]
    if alias != DEFAULT_DB_ALIAS and ROUTER not in django_settings.DATABASE_ROUTERS:
        return [
            checks.Warning(
                f"DBQUEUE_DATABASE is {alias!r} but {ROUTER} is not in DATABASE_ROUTERS.",
                hint="Without it, migrate creates the queue tables in every database "
                "and the admin reads Task from 'default'.",
                id="dbqueue.W005",
            )
        ]
    return []


@checks.register()
def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []

    def require(ok: bool, name: str, wanted: str) -> None:
        if not ok:
            errors.append(_invalid(name, wanted))

    workers = settings.WORKERS
    require(
        workers is None or (_is_int(workers) and workers >= 1),
        "WORKERS",
        "a positive integer or None",
    )
    require(
        _is_int(settings.BATCH_SIZE)
        and 1 <= settings.BATCH_SIZE <= validation.MAX_BATCH_SIZE,
        "BATCH_SIZE",
        f"a whole number from 1 to {validation.MAX_BATCH_SIZE}",
    )
    require(
        _is_int(settings.MAX_ATTEMPTS) and settings.MAX_ATTEMPTS >= 1,
        "MAX_ATTEMPTS",
        "a positive integer",
    )
    require(
        _is_int(settings.PRUNE_BATCH_SIZE)
        and 1 <= settings.PRUNE_BATCH_SIZE <= validation.MAX_BATCH_SIZE,
        "PRUNE_BATCH_SIZE",
        f"a whole number from 1 to {validation.MAX_BATCH_SIZE}",
    )
    require(
        _is_int(settings.DEPTH_COUNT_LIMIT) and settings.DEPTH_COUNT_LIMIT >= 1,
        "DEPTH_COUNT_LIMIT",
        "a positive integer",
    )
    require(
        _is_int(settings.MAX_PAYLOAD_SIZE) and settings.MAX_PAYLOAD_SIZE >= 1,
        "MAX_PAYLOAD_SIZE",
        "a positive number of bytes",
    )
    for name in (
        "POLL_INTERVAL",
        "POLL_INTERVAL_MAX",
        "HEARTBEAT_INTERVAL",
        "LEASE",
        "TIMEOUT_KILL_AFTER",
        "SHUTDOWN_GRACE",
        "RETRY_BACKOFF",
        "RETRY_BACKOFF_MAX",
    ):
        value = getattr(settings, name)
        require(_is_number(value) and value > 0, name, "a positive number of seconds")
    for name in (
        "RETAIN_SUCCEEDED",
        "RETAIN_FAILED",
        "RETAIN_DEAD_LETTERS",
        "PRUNE_INTERVAL",
        "HEALTH_MAX_LAG",
    ):
        value = getattr(settings, name)
        require(
            value is None or (_is_number(value) and value > 0),
            name,
            "a positive number of seconds or None",
        )
    for name in ("MAX_TASKS_PER_CHILD", "MAX_MEMORY_PER_CHILD"):
        value = getattr(settings, name)
        require(
            value is None or (_is_int(value) and value >= 1),
            name,
            "a positive integer or None",
        )
    timeout = settings.TIMEOUT
    require(
        timeout is None or (_is_number(timeout) and timeout > 0),
        "TIMEOUT",
        "a positive number of seconds or None",
    )
    require(
        settings.SERIALIZER in serialization.SERIALIZERS,
        "SERIALIZER",
        "'pickle' or 'json'",
    )
    require(
        _is_queue_name(settings.DEFAULT_QUEUE),
        "DEFAULT_QUEUE",
        "a queue name of 1 to 64 characters",
    )
    queues = settings.QUEUES
    require(
        isinstance(queues, (list, tuple))
        and bool(queues)
        and all(_is_queue_name(q) for q in queues),
        "QUEUES",
        "a non-empty list of queue names",
    )
    tasks = settings.TASKS
    require(
        isinstance(tasks, (list, tuple)) and all(isinstance(t, str) for t in tasks),
        "TASKS",
        "a list of dotted paths",
    )
    if not errors and settings.LEASE < 3 * settings.HEARTBEAT_INTERVAL:
        errors.append(
            checks.Error(
                f"DBQUEUE_LEASE ({settings.LEASE}s) must be at least three heartbeats "
                f"(3 x DBQUEUE_HEARTBEAT_INTERVAL = {3 * settings.HEARTBEAT_INTERVAL}s).",
                hint="A shorter lease would let a live worker's task be rescued and run twice "
                "after one late heartbeat. Raise DBQUEUE_LEASE or lower DBQUEUE_HEARTBEAT_INTERVAL.",
                id="dbqueue.E005",
            )
        )
    if not errors and settings.POLL_INTERVAL_MAX < settings.POLL_INTERVAL:
        errors.append(
            checks.Error(
                f"DBQUEUE_POLL_INTERVAL_MAX ({settings.POLL_INTERVAL_MAX}s) is below "
                f"DBQUEUE_POLL_INTERVAL ({settings.POLL_INTERVAL}s).",
                id="dbqueue.E002",
            )
        )
    return errors


@checks.register()
def check_unknown_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    known = set(settings.names())
    warnings: list[checks.CheckMessage] = []
    for name in dir(django_settings):
        if name.startswith(PREFIX) and name[len(PREFIX) :] not in known:
            close = difflib.get_close_matches(name[len(PREFIX) :], known, n=1)
            hint = (
                f"Did you mean {PREFIX}{close[0]}?"
                if close
                else "See the settings list in the README."
            )
            warnings.append(
                checks.Warning(
                    f"{name} is not a dbqueue setting.", hint=hint, id="dbqueue.W002"
                )
            )
    return warnings


@checks.register()
def check_sqlite_transaction_mode(**kwargs: Any) -> list[checks.CheckMessage]:
    alias = settings.DATABASE
    config = django_settings.DATABASES.get(alias)
    if not config or not config.get("ENGINE", "").endswith("sqlite3"):
        return []
    mode = str(config.get("OPTIONS", {}).get("transaction_mode") or "DEFERRED").upper()
    if mode == "DEFERRED":
        return [
            checks.Warning(
                f"SQLite connection {alias!r} is not in IMMEDIATE transaction mode; tasks that read "
                "and then write inside transaction.atomic() may fail with 'database is locked' "
                "while workers claim.",
                hint="Set DATABASES[...]['OPTIONS'] = {'transaction_mode': 'IMMEDIATE', 'timeout': 20}.",
                id="dbqueue.W001",
            )
        ]
    return []


@checks.register(checks.Tags.database)
def check_database_version(
    databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    alias = _queue_database_checked(databases)
    if alias is None:
        return []
    try:
        problem = claiming.version_problem(connections[alias])
    except exceptions.UnsupportedDatabase:
        return []  # reported by dbqueue.E003
    if problem:
        return [
            checks.Error(
                problem, hint="Upgrade the database server.", id="dbqueue.E004"
            )
        ]
    return []


def _queue_database_checked(databases: Any) -> str | None:
    """The queue database's alias if this run of the database checks covers it, else None."""
    alias = str(settings.DATABASE)
    if databases and alias in databases and alias in django_settings.DATABASES:
        return alias
    return None


def _invalid(name: str, wanted: str) -> checks.Error:
    """dbqueue.E002 for the setting DBQUEUE_<name>, which is not `wanted`."""
    return checks.Error(
        f"DBQUEUE_{name} must be {wanted}, got {getattr(settings, name)!r}.",
        id="dbqueue.E002",
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_queue_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64


@checks.register()
def check_schedule_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Check the scheduler's settings and each DBQUEUE_SCHEDULES entry (no database needed)."""
    errors: list[checks.CheckMessage] = []
    for name, wanted in (
        ("SCHEDULER_INTERVAL", "a positive number of seconds"),
        ("SCHEDULE_GRACE", "a positive number of seconds"),
        ("SCHEDULE_RUN_RETENTION", "a positive number of seconds"),
    ):
        value = getattr(settings, name)
        if not (_is_number(value) and value > 0):
            errors.append(_invalid(name, wanted))
    limit = settings.SCHEDULE_CATCH_UP_MAX
    if not (_is_int(limit) and limit >= 1):
        errors.append(_invalid("SCHEDULE_CATCH_UP_MAX", "a positive integer"))
    declared = settings.SCHEDULES
    if not isinstance(declared, Mapping):
        errors.append(
            checks.Error(
                "DBQUEUE_SCHEDULES must be a dict of schedule name -> schedule() "
                f"arguments, got {type(declared).__name__}.",
                id="dbqueue.E002",
            )
        )
        return errors
    from dbqueue import schedule_definition

    for name, entry in declared.items():
        try:
            schedule_definition.declared_definition(name, entry)
        except Exception as exc:
            errors.append(
                checks.Error(
                    f"DBQUEUE_SCHEDULES[{name!r}] is invalid: {exc}",
                    hint="Fix the entry or remove it; the scheduler does not sync it as it is.",
                    id="dbqueue.E006",
                )
            )
    return errors


@checks.register(checks.Tags.database)
def check_schedules(databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report stored schedules that can no longer fire.

    Warnings, not errors: qcluster refuses to start on an error, and one
    broken schedule must not stop the others (the scheduler logs and skips it).
    """
    alias = _queue_database_checked(databases)
    if alias is None:
        return []
    from dbqueue import models, registry, scheduling

    try:
        rows = list(models.Schedule.objects.using(alias).active().order_by("name"))
    except DatabaseError:
        return []  # not migrated yet: nothing stored to check
    warnings: list[checks.CheckMessage] = []
    for row in rows:
        name, func = row.name, row.func
        try:
            # Verify first: a path is imported only when the row's signed
            # payload shows it was written by code holding SECRET_KEY.
            serialization.loads_payload(func, row.payload, hook=row.hook)
            registry.resolve(func)
        except (exceptions.TaskNotFound, exceptions.PayloadError, TypeError) as exc:
            warnings.append(
                checks.Warning(
                    f"Schedule {name!r} calls {func!r}, which cannot run: {exc}",
                    hint="Restore the task, or disable or delete the schedule; until then "
                    "each of its due runs is recorded as not enqueued.",
                    id="dbqueue.W003",
                )
            )
        kind, minutes, cron, zone_name = (
            row.schedule_type,
            row.minutes,
            row.cron,
            row.timezone,
        )
        problems = scheduling.timing_problems(
            kind, minutes=minutes, cron=cron, timezone_name=zone_name
        )
        if problems:
            warnings.append(
                checks.Warning(
                    f"Schedule {name!r} has an invalid timing: {' '.join(problems.values())}",
                    hint="Fix it in the admin or with schedule(); until then the scheduler skips it.",
                    id="dbqueue.W004",
                )
            )
    return warnings


@checks.register()
def check_monitoring_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Check the metrics and logging settings, and that a metrics port can be served."""
    errors: list[checks.CheckMessage] = []
    token, port = settings.METRICS_TOKEN, settings.METRICS_PORT
    address = settings.METRICS_ADDRESS
    for ok, name, wanted in (
        (
            token is None or (isinstance(token, str) and token != ""),
            "METRICS_TOKEN",
            "a non-empty string or None",
        ),
        (
            port is None or (_is_int(port) and 0 <= port <= 65535),
            "METRICS_PORT",
            "a port number (0 to 65535) or None",
        ),
        (
            isinstance(address, str),
            "METRICS_ADDRESS",
            "an interface address such as '127.0.0.1' or '0.0.0.0'",
        ),
        (isinstance(settings.LOG_ARGUMENTS, bool), "LOG_ARGUMENTS", "True or False"),
    ):
        if not ok:
            errors.append(_invalid(name, wanted))
    if errors or port is None:
        return errors
    try:
        metrics.require_client()
    except ImproperlyConfigured:
        errors.append(
            checks.Error(
                f"DBQUEUE_METRICS_PORT is {port}, but prometheus-client is not installed.",
                hint=f"{metrics.INSTALL_HINT} Or set DBQUEUE_METRICS_PORT = None.",
                id="dbqueue.E007",
            )
        )
    if token is None and address not in ("127.0.0.1", "::1", "localhost"):
        errors.append(
            checks.Warning(
                f"The metrics port {port} listens on {address or 'every interface'!r} "
                "and DBQUEUE_METRICS_TOKEN is not set: whoever reaches it reads the metrics.",
                hint="Set DBQUEUE_METRICS_TOKEN and give Prometheus the token, or bind "
                "DBQUEUE_METRICS_ADDRESS to 127.0.0.1 behind a proxy.",
                id="dbqueue.W006",
            )
        )
    return errors
