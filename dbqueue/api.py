"""The public API: enqueue a call, read its outcome.

``async_task`` keeps Django-Q's calling convention: reserved option names are
taken out of the keyword arguments, and ``q_options={...}`` carries them
instead when the task itself has a parameter with a reserved name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import logging
import math
import numbers
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from dbqueue import (
    models,
    registry,
    serialization,
    signals,
    task_logging,
    uniqueness,
    validation,
)
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

RESERVED_OPTIONS = frozenset(
    {
        "task_name",
        "group",
        "hook",
        "save",
        "timeout",
        "queue",
        "priority",
        "countdown",
        "eta",
        "expires",
        "max_attempts",
        "unique_key",
        "unique_for",
        "on_conflict",
        "on_commit",
        "sync",
        "on_orphan",
    }
)
POLL_START = 0.01  # seconds between polls when waiting for a result, doubling...
POLL_MAX = 0.25  # ...up to this


def async_task(func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Queue a call of a registered task and return the new task's id.

    `func` is a function decorated with @task, its dotted path, or a callable
    listed in DBQUEUE_TASKS. Options (``queue``, ``priority``, ``countdown``,
    ``eta``, ``expires``, ``max_attempts``, ``timeout``, ``group``, ``hook``,
    ``save``, ``task_name``, ``unique_key``, ``sync``) are read from the keyword
    arguments, or only from ``q_options`` when that is given. See enqueue()
    for ``unique_key``, ``unique_for``, ``on_conflict`` and ``on_commit``.

    The row is inserted on the caller's connection: inside ``transaction.atomic()``
    it is committed or rolled back with the caller's own writes.

    Raise TaskNotFound for a path that names no registered task,
    SerializationError (a TypeError) for an argument the serializer cannot
    take, PayloadTooLarge over DBQUEUE_MAX_PAYLOAD_SIZE, and ValueError or
    TypeError for a bad option. Nothing is written when one is raised.
    """
    kwargs, options = split_options(kwargs)
    return str(enqueue(func, args, kwargs, **options).id)


def split_options(
    kwargs: dict[str, Any], what: str = "", extra_options: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the options from a call's keyword arguments; return (kwargs, options).

    The options are the RESERVED_OPTIONS names among `kwargs` (and
    `extra_options`, such as a chain's ``pass_result``), or only those in
    ``q_options`` when that is given. `what` names the call in error
    messages ("call 3 of enqueue_many()"). Raise TypeError for a
    ``q_options`` that is not a dict or has an unknown key.
    """
    if not kwargs:  # most calls: nothing to take out
        return kwargs, {}
    names = RESERVED_OPTIONS.union(extra_options) if extra_options else RESERVED_OPTIONS
    q_options = kwargs.pop("q_options", None)
    if q_options is None:
        return kwargs, {name: kwargs.pop(name) for name in names & set(kwargs)}
    where = f" in {what}" if what else ""
    if not isinstance(q_options, Mapping):
        raise TypeError(
            f"q_options{where} must be a dict of options, got {type(q_options).__name__}."
        )
    unknown = sorted(set(q_options) - names)
    if unknown:
        raise TypeError(
            f"Unknown q_options key(s) {', '.join(map(repr, unknown))}{where}; "
            f"the options are {', '.join(sorted(names))}."
        )
    return kwargs, dict(q_options)


def enqueue(
    func: str | Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    sync: bool | None = None,
    on_conflict: str | None = None,
    on_commit: bool | str = False,
    **options: Any,
) -> models.Task:
    """Validate a call, store it as a Task row and return the row.

    The same as async_task() with the options as real keyword arguments (see
    build_task() for them), plus `serializer` ("pickle" or "json") to override
    DBQUEUE_SERIALIZER for this call.

    With a `unique_key`, `on_conflict` says what happens when another task
    holding that key is queued or running: "ignore" (the default) returns
    that task instead, "replace" cancels it if it is still queued and stores
    this one, and "raise" raises DuplicateTask. See insert().

    `on_commit=True` stores the row only once the current transaction on
    the "default" database commits (at once outside one; give an alias
    instead of True for another database), and returns the unsaved task,
    whose id is already final. That is how a task stays in step with the
    business data when the queue tables live in a database of their own.
    Errors at that point are logged, not raised: the caller's transaction
    has committed by then.
    """
    task = build_task(func, args, kwargs, **options)
    policy = uniqueness.conflict_policy(on_conflict)
    if on_commit:
        transaction.on_commit(
            functools.partial(_insert_and_run, task, policy, sync),
            using=validation.commit_alias(on_commit),
            robust=True,
        )
        return task
    return _insert_and_run(task, policy, sync)


def build_task(
    func: str | Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> models.Task:
    """Validate a call and return it as an unsaved Task, its payload serialised.

    Every check of enqueue happens here, so a caller that stores many tasks
    (bulk enqueue, a chain) knows before it writes anything that all of them
    are valid. See call_template() for the options.
    """
    return call_template(func, **options).build(args, kwargs)


def call_template(
    func: str | Callable[..., Any],
    *,
    task_name: str | None = None,
    group: str | None = None,
    hook: str | Callable[..., Any] | None = None,
    save: bool | None = None,
    timeout: float | None = None,
    queue: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    eta: datetime.datetime | None = None,
    expires: float | datetime.datetime | None = None,
    max_attempts: int | None = None,
    unique_key: str | None = None,
    unique_for: float | datetime.timedelta | None = None,
    serializer: str | None = None,
    on_orphan: str | None = None,
    passed_before: int = 0,
    now: datetime.datetime | None = None,
) -> CallTemplate:
    """Validate a function and its options; return what builds its tasks from their arguments.

    The registered task's defaults fill in what the options leave out.
    `passed_before` counts the arguments the task will get before its own
    when it runs (a chain link's previous result), for the signature
    check. `now` is the enqueue time (the countdown counts from it), by
    default the time of this call.
    """
    registered = registry.resolve(func)
    fields = _checked_options(
        registered,
        {
            "task_name": task_name,
            "group": group,
            "hook": hook,
            "save": save,
            "timeout": timeout,
            "queue": queue,
            "priority": priority,
            "max_attempts": max_attempts,
            "on_orphan": on_orphan,
        },
    )
    if now is None:
        now = timezone.now()
    key, held_until = uniqueness.validate(unique_key, unique_for, now)
    if key is not None:
        validation.check_storable(key, "unique_key")
    return CallTemplate(
        registered=registered,
        writer=serialization.PayloadWriter.of(
            registered.path,
            func=registered.func,
            hook=fields["hook"],
            serializer=serializer if serializer is not None else registered.serializer,
        ),
        passed_before=passed_before,
        fields=models.Task.template(
            **fields,
            run_after=_run_after(now, countdown, eta),
            expires_at=_expires(now, expires),
            unique_key=key,
            unique_hold=key,
            unique_until=held_until,
            enqueued_at=now,
        ),
    )


@dataclasses.dataclass(frozen=True)
class CallTemplate:
    """A function with its options checked: builds its tasks, one per set of arguments.

    A bulk enqueue calls one function with the same options thousands of
    times. Checking the options and merging them into a row once, not for
    every call, takes a third off the cost of building each task; what
    differs from call to call, the arguments, is checked for every one.
    """

    registered: registry.TaskFunction
    writer: serialization.PayloadWriter
    passed_before: int
    fields: models.TaskTemplate  # every Task field but the payload and the id

    def build(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> models.Task:
        """Return the call of these arguments as an unsaved task, its payload serialised.

        Raise SerializationError, PayloadTooLarge or TypeError as
        async_task() does for a bad argument.
        """
        payload = self.writer.write(args, {} if kwargs is None else kwargs)
        # After the payload, which checked the types of args and kwargs.
        self.registered.check_call(
            (None,) * self.passed_before + tuple(args) if self.passed_before else args,
            kwargs or {},
        )
        return models.Task.from_template(self.fields, payload=payload)


# The checked options of calls seen lately, by task and option values: a
# bulk enqueue or a view calls one task the same way thousands of times, and
# checking its name, queue, priority, hook and the rest again for every call
# cost more than storing the row. Any settings change empties it: the
# defaults of the options come from DBQUEUE_* settings.
_checked: dict[tuple[Any, ...], dict[str, Any]] = {}
CHECKED_KEPT = 256


def _checked_options(
    registered: registry.TaskFunction, given: dict[str, Any]
) -> dict[str, Any]:
    """Return the Task fields that a call's options (and the task's defaults) decide."""
    # The type is part of the key: True == 1 and 1 == 1.0, but priority=True
    # is an error and priority=1 is not.
    key = (registered, *[(type(value), value) for value in given.values()])
    try:
        return _checked[key]
    except KeyError:
        pass
    except TypeError:  # an option that cannot be a key: check it every time
        return _check_options(registered, given)
    fields = _check_options(registered, given)
    if len(_checked) >= CHECKED_KEPT:
        _checked.clear()
    _checked[key] = fields
    return fields


def _check_options(
    registered: registry.TaskFunction, given: dict[str, Any]
) -> dict[str, Any]:
    opts = {**registered.defaults, **{k: v for k, v in given.items() if v is not None}}
    return {
        "name": validation.text(
            opts.get("task_name", registered.path), "task_name", 255
        ),
        "func": registered.path,
        "queue": validation.queue_name(opts.get("queue", settings.DEFAULT_QUEUE)),
        "priority": validation.priority(opts.get("priority", 0)),
        "max_attempts": validation.positive_int(
            opts.get("max_attempts", settings.MAX_ATTEMPTS), "max_attempts"
        ),
        "timeout": validation.timeout(opts.get("timeout", settings.TIMEOUT)),
        "keep_result": validation.keep_result(opts.get("save")),
        "on_orphan": validation.on_orphan(opts.get("on_orphan", models.OnOrphan.RETRY)),
        "group": validation.text(opts.get("group", ""), "group", 255),
        "hook": validation.hook_path(opts.get("hook")),
    }


@receiver(setting_changed)
def _forget_checked_options(**kwargs: Any) -> None:
    _checked.clear()


def insert(task: models.Task, *, on_conflict: str | None = None) -> models.Task:
    """Store a task built by build_task() (or copied from a dead-letter entry).

    Return the task now holding its unique key: this one, or with
    on_conflict="ignore" (or "replace" of a task already running) the one
    that held it first. Sends task_enqueuing and, if this task was stored,
    task_enqueued, and wakes idle workers.
    """
    policy = uniqueness.conflict_policy(on_conflict)
    signals.send(signals.task_enqueuing, sender=models.Task, task=task)
    stored = uniqueness.insert(task, policy)
    if stored is not task:
        return stored
    signals.send(signals.task_enqueued, sender=models.Task, task=task)
    task_logging.enqueued(logger, task)
    return task


def cancel(task_id: str | uuid.UUID) -> bool:
    """Withdraw a task that is still queued; return whether it was.

    A task a worker has claimed is running and is left to finish. A
    cancelled task releases its unique key (unless its unique_for period
    is still running).
    """
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        return False
    return models.Task.objects.using(models.queue_db()).filter(pk=pk).cancel() == 1


def _insert_and_run(task: models.Task, policy: str, sync: bool | None) -> models.Task:
    stored = insert(task, on_conflict=policy)
    if stored is task and (sync if sync is not None else settings.SYNC):
        from dbqueue.cluster import worker

        worker.run_inline(task)
    return stored


def fetch(task_id: str | uuid.UUID, wait: int = 0) -> models.Task | None:
    """Return the task with this id, waiting up to `wait` milliseconds for it to finish.

    `wait` is in milliseconds, as in Django-Q; `wait=-1` waits until the task
    finishes. Return None at once for an id that names no task (including a
    malformed id, and a succeeded task whose result was not kept). The task is
    returned even if it has not finished when the wait ends.
    """
    try:
        pk = uuid.UUID(str(task_id))
    except ValueError:
        return None
    deadline = None if wait < 0 else time.monotonic() + wait / 1000
    delay = POLL_START
    while True:
        task = models.Task.objects.using(models.queue_db()).filter(pk=pk).first()
        # A missing row never appears later: enqueue commits the row before
        # anyone can know its id, and a task run with save=False is deleted.
        if task is None or task.is_finished or wait == 0:
            return task
        if deadline is not None and time.monotonic() >= deadline:
            return task
        time.sleep(
            delay
            if deadline is None
            else max(0.0, min(delay, deadline - time.monotonic()))
        )
        delay = min(delay * 2, POLL_MAX)


def result(task_id: str | uuid.UUID, wait: int = 0) -> Any:
    """Return the task's return value, waiting up to `wait` milliseconds (-1: forever).

    Return None while the task has not succeeded, and for an unknown id; use
    fetch() to tell those apart from a task that returned None.
    """
    task = fetch(task_id, wait=wait)
    return task.result if task is not None else None


async def aasync_task(func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """async_task() for async views: the insert runs in Django's sync thread.

    It is the same thread Django gives every sync_to_async call of a request,
    so ``transaction.atomic`` wrapped around both with sync_to_async behaves
    as in a sync view.
    """
    return await sync_to_async(async_task)(func, *args, **kwargs)


async def aenqueue(
    func: str | Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> models.Task:
    """enqueue() for async code."""
    return await sync_to_async(enqueue)(func, args, kwargs, **options)


async def afetch(task_id: str | uuid.UUID, wait: int = 0) -> models.Task | None:
    """fetch() for async code; waiting does not block the event loop."""
    deadline = None if wait < 0 else time.monotonic() + wait / 1000
    delay = POLL_START
    while True:
        task = await sync_to_async(fetch)(task_id)
        if task is None or task.is_finished or wait == 0:
            return task
        if deadline is not None and time.monotonic() >= deadline:
            return task
        await asyncio.sleep(
            delay
            if deadline is None
            else max(0.0, min(delay, deadline - time.monotonic()))
        )
        delay = min(delay * 2, POLL_MAX)


async def aresult(task_id: str | uuid.UUID, wait: int = 0) -> Any:
    """result() for async code."""
    task = await afetch(task_id, wait=wait)
    return task.result if task is not None else None


def _run_after(now: datetime.datetime, countdown: Any, eta: Any) -> datetime.datetime:
    if countdown is not None and eta is not None:
        raise ValueError("Give countdown or eta, not both.")
    if countdown is not None:
        if (
            isinstance(countdown, bool)
            or not isinstance(countdown, numbers.Real)
            or countdown < 0
            or not countdown < math.inf  # nor NaN
        ):
            raise ValueError(
                f"countdown must be a number of seconds >= 0, got {validation.shown(countdown)}."
            )
        return validation.later(now, countdown, "countdown")
    if eta is not None:
        if not isinstance(eta, datetime.datetime):
            raise TypeError(f"eta must be a datetime, got {type(eta).__name__}.")
        return validation.aware(eta, "eta")
    return now


def _expires(now: datetime.datetime, expires: Any) -> datetime.datetime | None:
    if expires is None:
        return None
    if isinstance(expires, datetime.datetime):
        return validation.aware(expires, "expires")
    if (
        isinstance(expires, bool)
        or not isinstance(expires, numbers.Real)
        or expires <= 0
        or not expires < math.inf  # nor NaN
    ):
        raise ValueError(
            f"expires must be a datetime or a number of seconds > 0, got {validation.shown(expires)}."
        )
    return validation.later(now, expires, "expires")
