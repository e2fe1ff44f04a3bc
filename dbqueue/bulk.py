"""Bulk enqueue: many calls validated and stored in one go (COPY on PostgreSQL).

A call is written as Django-Q writes the links of a chain:

- ``func``: a registered function (or its dotted path), called without arguments;
- ``(func,)``, ``(func, args)`` or ``(func, args, kwargs)``, where `args` is a
  tuple or list and `kwargs` a dict.

As in async_task(), option names among the kwargs (``queue``, ``priority``,
``countdown``, ``hook``, …) are options, not arguments, and ``q_options={...}``
carries them instead when the function has a parameter of that name. A call's
own options override the ones given to enqueue_many() for every call.

Unique tasks cannot be bulk-enqueued: a unique key is enforced by an INSERT
that may fail and then applies an on_conflict policy, one row at a time, and
one conflict would abort the whole batch. Use async_task() for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from django.db import connections
from django.utils import timezone

from dbqueue import api, claiming, models, signals, task_logging
from dbqueue.conf import settings
from dbqueue.models.task import init_is_watched

logger = logging.getLogger(__name__)

Call = str | Callable[..., Any] | tuple[Any, ...]
# Calls from which a batch is built while its first rows are written (see
# _stream()): a smaller one gains nothing from it, and inside the caller's
# transaction would pay for a savepoint.
STREAMED_FROM = 100
# Options that make no sense for one row of a multi-row INSERT.
REFUSED_OPTIONS = ("unique_key", "unique_for", "on_conflict", "on_commit", "sync")


@dataclasses.dataclass(slots=True)
class ParsedCall:
    """One call taken apart: what to run, its arguments and its own options."""

    func: str | Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]


def enqueue_many(
    calls: Iterable[Call], *, sync: bool | None = None, **options: Any
) -> list[models.Task]:
    """Validate every call, store them all at once and return the tasks.

    `options` are async_task()'s options (and enqueue()'s `serializer`), applied
    to every call; see the module docstring for the format of `calls`. The rows
    are written on the queue database, all or none, inside the caller's
    transaction if there is one: streamed with COPY on PostgreSQL, elsewhere
    one multi-row INSERT per thousand calls (fewer where the vendor limits
    the parameters of one statement, as SQLite does). On PostgreSQL the
    first rows are written while the later calls are checked, and a bad
    call undoes them (see _stream()). task_enqueuing and task_enqueued are
    sent for each task, and idle workers are woken once per queue.

    Raise ValueError for `unique_key` (use async_task() for unique tasks), and
    what async_task() raises for a bad call, with a note naming the call.
    Nothing is written when an error is raised.
    """
    refuse(options, "enqueue_many()")
    # The project's own iterable runs its queries (a queryset's rows, say)
    # now, before any row is written.
    calls = list(calls)
    if len(calls) >= STREAMED_FROM and _may_stream():
        stored = _stream(calls, options)
        if stored is not None:
            return _stored(stored, sync)
    with collector_paused():
        # A guard that is not on the connection: it never refuses a query.
        tasks = list(_built(calls, options, _QueryGuard()))
    return insert_many(tasks, sync=sync)


def _built(
    calls: list[Any], options: dict[str, Any], guard: _QueryGuard
) -> Iterator[models.Task]:
    """Validate the calls of enqueue_many() one by one, each as a task.

    `guard` is told when a task is being built; a query it refused
    meanwhile, even one whose error the project's code swallowed, ends the
    iteration with an error (see _stream()).
    """
    builder = Builder()
    for number, call in enumerate(calls, start=1):
        what = f"call {number} of enqueue_many()"
        guard.building = True
        try:
            parsed = parse_call(call, what)
            call_options = options
            if parsed.options:
                refuse(parsed.options, what)
                call_options = {**options, **parsed.options}
            task = builder.build(parsed, call_options, what)
        finally:
            guard.building = False
        if guard.refused:
            raise _QueryWhileStreaming
        yield task


def _may_stream() -> bool:
    """Tell whether a batch can be built while its rows are written.

    Only where the database takes rows as they come (COPY), and only when
    building a task runs no code of the project's but the pickling of its
    arguments: a task_enqueuing receiver is promised every call checked
    before it hears of any, and a pre_init or post_init receiver of Task
    could read the database in the middle of the COPY.
    """
    return (
        claiming.streams(models.queue_db())
        and not signals.task_enqueuing.has_listeners(models.Task)
        and not init_is_watched()
    )


def _stream(calls: list[Any], options: dict[str, Any]) -> list[models.Task] | None:
    """Build the tasks while COPY writes them; None if a call read the database meanwhile.

    The database is busy with the COPY until its last row, so a query on
    the same connection while a task is built (an argument that is a
    queryset, pickled) cannot run. Such a query is refused, the rows
    written so far are undone, and the caller builds the whole batch
    before writing it, as on the other vendors.
    """
    guard = _QueryGuard()
    db = models.queue_db()
    try:
        with connections[db].execute_wrapper(guard), collector_paused():
            return claiming.insert_many(_built(calls, options, guard), using=db)
    except Exception:
        if guard.refused:
            return None
        raise


class _QueryWhileStreaming(Exception):
    """A query on the queue's connection while its COPY was writing a batch."""


class _QueryGuard:
    """An execute_wrapper that refuses queries while a task of the batch is being built."""

    def __init__(self) -> None:
        self.building = False
        self.refused = False

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        if self.building:
            self.refused = True
            raise _QueryWhileStreaming(
                "enqueue_many() is writing its rows with COPY on this connection."
            )
        return execute(sql, params, many, context)


def insert_many(
    tasks: list[models.Task], *, sync: bool | None = None
) -> list[models.Task]:
    """Store tasks built by api.build_task() with one INSERT and return them."""
    if not tasks:
        return tasks
    # One enqueue time for the batch: with the ids (UUIDv7, increasing within
    # a process) it keeps the order of `tasks` when a group is read back.
    enqueued_at = tasks[0].enqueued_at
    for task in tasks:
        task.enqueued_at = enqueued_at
    signals.send_each(signals.task_enqueuing, models.Task, tasks)
    claiming.insert_many(tasks, using=models.queue_db())
    return _stored(tasks, sync)


def _stored(tasks: list[models.Task], sync: bool | None) -> list[models.Task]:
    """What follows the INSERT of a batch: task_enqueued, the log, and a sync run."""
    signals.send_each(signals.task_enqueued, models.Task, tasks)
    if logger.isEnabledFor(logging.INFO):  # as task_logging.enqueued() logs
        for task in tasks:
            task_logging.enqueued(logger, task)
    if sync if sync is not None else settings.SYNC:
        from dbqueue.cluster import worker

        for task in tasks:
            worker.run_inline(task)
    return tasks


def parse_call(call: Any, what: str, extra_options: Collection[str] = ()) -> ParsedCall:
    """Take a call apart into function, arguments and options.

    `what` names the call in error messages ("call 3 of enqueue_many()");
    `extra_options` are option names beyond async_task()'s that the caller
    takes out of the kwargs too (a chain's ``pass_result``).
    """
    if not isinstance(call, tuple):  # a function alone: no arguments, no options
        return ParsedCall(call, (), {}, {})
    if not 1 <= len(call) <= 3:
        raise TypeError(
            f"{_cap(what)} has {len(call)} items; write it as func, (func, args) or "
            "(func, args, kwargs)."
        )
    func = call[0]
    args = call[1] if len(call) > 1 and call[1] is not None else ()
    kwargs = call[2] if len(call) > 2 and call[2] is not None else {}
    if isinstance(args, str | bytes) or not isinstance(args, tuple | list):
        raise TypeError(
            f"The arguments in {what} must be a tuple or a list, got "
            f"{type(args).__name__} {args!r}; write (func, ({args!r},)) for a single argument."
        )
    if not isinstance(kwargs, Mapping):
        raise TypeError(
            f"The keyword arguments in {what} must be a dict, got {type(kwargs).__name__}."
        )
    kwargs, options = api.split_options(dict(kwargs), what, extra_options)
    return ParsedCall(func, tuple(args), kwargs, options)


def refuse(options: Mapping[str, Any], what: str) -> None:
    """Raise ValueError for an option that one row of a batch cannot honour."""
    for name in REFUSED_OPTIONS:
        if name in options:
            raise ValueError(f"{name} is not accepted in {what}: {_WHY[name]}")


_WHY = {
    "unique_key": "a unique key is enforced one INSERT at a time, and one conflict "
    "would abort the whole batch. Enqueue unique tasks with async_task().",
    "unique_for": "it needs a unique_key, which only async_task() takes.",
    "on_conflict": "it needs a unique_key, which only async_task() takes.",
    "on_commit": "call it from transaction.on_commit() instead.",
    "sync": "it applies to the whole batch; pass it to enqueue_many(), "
    "async_chain() or async_iter() itself.",
}


def build(parsed: ParsedCall, options: dict[str, Any], what: str) -> models.Task:
    """Validate one call on its own (a chain's link); an error gets a note naming the call."""
    return Builder().build(parsed, options, what)


class Builder:
    """Builds the tasks of one batch, checking each function and set of options once.

    The calls of a batch share one enqueue time (a countdown counts from
    it) and, mostly, one function and its options: those are checked once
    into an api.CallTemplate, and each call's own arguments for every call.
    """

    def __init__(self) -> None:
        self.now = timezone.now()
        self._templates: dict[tuple[Any, ...], api.CallTemplate] = {}
        # The template used last, and the very objects it was asked for
        # with: a batch calls one function with one dict of options, so
        # most calls are answered by two identity checks.
        self._last: tuple[Any, dict[str, Any], api.CallTemplate] | None = None

    def build(
        self, parsed: ParsedCall, options: dict[str, Any], what: str
    ) -> models.Task:
        """Validate one call, as build() does; an error gets a note naming the call."""
        try:
            return self._template(parsed.func, options).build(
                parsed.args, parsed.kwargs
            )
        except Exception as exc:
            exc.add_note(f"In {what}.")
            raise

    def _template(self, func: Any, options: dict[str, Any]) -> api.CallTemplate:
        last = self._last
        if last is not None and last[0] is func and last[1] is options:
            return last[2]
        template = self._lookup(func, options)
        self._last = (func, options, template)
        return template

    def _lookup(self, func: Any, options: dict[str, Any]) -> api.CallTemplate:
        # The type is part of the key, as in api._checked_options: True == 1,
        # but priority=True is an error and priority=1 is not.
        key = (func, *[(name, type(v), v) for name, v in options.items()])
        try:
            template, kept = self._templates.get(key), True
        except TypeError:  # an option that cannot be a key: check it every time
            template, kept = None, False
        if template is None:
            template = api.call_template(func, **options, now=self.now)
            if kept and len(self._templates) < TEMPLATES_KEPT:
                self._templates[key] = template
        return template


# Templates one batch keeps at most: a batch of calls to a handful of
# functions needs a handful, and one option that differs in every call
# (a countdown, say) would otherwise keep one per call.
TEMPLATES_KEPT = 64


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off while a batch is built.

    Every object a batch makes (each task, its fields, its id) outlives
    the batch, so a collection in the middle finds nothing to free, yet
    tens of thousands of new objects set off several, each walking every
    object the process holds. That was a quarter of enqueue_many()'s time
    in a process that had already run batches, and 7% in a fresh one.
    Collections resume afterwards, if they were on.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
