"""Chains: calls that run one after another, each once the one before succeeded.

``async_chain([(func, args, kwargs), ...])`` (Django-Q's format, see
dbqueue.bulk for the ways to write one call) validates every link with
api.build_task() before it writes anything, then stores the first link only.
The others travel in that task's ``chain`` column. When a link succeeds, the
worker stores the success and inserts the next link in one transaction
(succeed()), so a crash can neither lose the rest of the chain nor enqueue
a link twice. A link that fails for good ends the chain: the links after it
are never enqueued, and its dead-letter entry keeps them in its own
``chain`` column, so replaying it carries the chain on. A cancelled or
expired link ends the chain too.

All the links share one group (the given one, or a new id), so
result_group(), fetch_group() and count_group() read a chain.

With ``pass_result=True`` a link gets the previous link's return value as
its first positional argument (Celery's ``chain(a.s(), b.s())``; a link
without it is Celery's immutable ``b.si()``, and Django-Q's only kind).

The ``chain`` column holds JSON, empty when no link follows::

    {"version": 1,
     "links": [{"func": "app.tasks.render",
                "payload": "<signed args and kwargs, as in Task.payload>",
                "pass_result": true,
                "options": {"task_name": ..., "queue": ..., "priority": ...,
                            "max_attempts": ..., "timeout": ..., "save": ...,
                            "on_orphan": ..., "hook": ..., "countdown": ...,
                            "eta": ..., "expires": ...}},
               ...]}

The options are the values build_task() settled on when the chain was
created; ``countdown`` and a number of seconds in ``expires`` count from the
moment the link is enqueued, ``eta`` and a date in ``expires`` are ISO 8601.
The payload stays signed for its function and hook, and the worker verifies
it before it decodes anything or resolves the function: someone who can edit
the column, but does not hold SECRET_KEY, cannot make a worker run anything
but the calls the chain was created with.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, transaction

from dbqueue import api, bulk, claiming, exceptions, groups, ids, models, serialization
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
RESULT_OPTION = "pass_result"
LINK_OPTIONS = (
    "task_name",
    "queue",
    "priority",
    "max_attempts",
    "timeout",
    "save",
    "on_orphan",
    "hook",
    "countdown",
    "eta",
    "expires",
)
# Set on a succeeded link by succeed(): the Task of the link it enqueued.
NEXT_ATTRIBUTE = "_dbqueue_chain_next"


def async_chain(
    chain: Sequence[bulk.Call],
    group: str | None = None,
    *,
    sync: bool | None = None,
    **options: Any,
) -> str:
    """Enqueue the links of `chain` to run one after another; return the group id.

    Each link is written as a call of enqueue_many(); its options (taken from
    its kwargs or its ``q_options``) may include ``pass_result=True``. The
    `options` given here apply to every link that does not set its own
    (``pass_result`` to every link but the first). With `sync` (default
    DBQUEUE_SYNC), the whole chain runs here before this returns.

    Raise ValueError for an empty chain, ``pass_result`` on the first link,
    or a link option a chain cannot honour (``group``, ``unique_key``, …), and
    what async_task() raises for a bad link, with a note naming the link.
    Nothing is written when an error is raised.
    """
    if group is not None and not (isinstance(group, str) and group):
        raise ValueError(f"group must be a non-empty string or None, got {group!r}.")
    if not chain:
        raise ValueError("A chain needs at least one link.")
    group_id = group or str(ids.uuid7())
    bulk.refuse(options, "async_chain()")
    tasks, links = [], []
    for number, call in enumerate(chain, start=1):
        what = f"link {number} of the chain"
        parsed = bulk.parse_call(call, what, extra_options=(RESULT_OPTION,))
        _refuse(parsed.options, what)
        merged = {**options, **parsed.options}
        pass_result = merged.pop(RESULT_OPTION, False)
        if not isinstance(pass_result, bool):
            raise TypeError(
                f"pass_result in {what} must be True or False, got {pass_result!r}."
            )
        if pass_result and number == 1:
            if RESULT_OPTION in parsed.options:
                raise ValueError(
                    "pass_result is not accepted on the first link: no link runs before it."
                )
            pass_result = False
        task = bulk.build(
            parsed,
            {**merged, "group": group_id, "passed_before": int(pass_result)},
            what,
        )
        tasks.append(task)
        links.append(_link(task, merged, pass_result))
    first = tasks[0]
    first.chain = _encode(links[1:])
    api.insert(first)
    if sync if sync is not None else settings.SYNC:
        _run_inline(first)
    return group_id


def succeed(task: models.Task, worker_id: str, value: Any) -> bool:
    """Store a chain link's success and enqueue the next link, in one transaction.

    Return what task.mark_succeeded() returns. If the next link cannot be
    built or stored (the value cannot be serialised for it, its function is
    gone, its row breaks a constraint), the success still stands: the chain
    stops, the error is logged and written to this task's ``error``. A lock
    conflict is raised, rolling back the success too, for the caller to retry.
    """
    db = models.queue_db()
    # mark_succeeded() updates the instance as it writes; a rollback must
    # leave the instance as the database has it, ready to be stored again.
    before = {f.attname: getattr(task, f.attname) for f in task._meta.concrete_fields}
    try:
        with transaction.atomic(using=db):
            # Locking the row first orders this against cancel_group(), which
            # clears the chain of running links (SQLite serialises writers).
            rest = (
                models.Task.objects.using(db)
                .select_for_update()
                .held_by(worker_id)
                .filter(id=task.id)
                .values_list("chain", flat=True)
                .first()
            )
            stored = task.mark_succeeded(worker_id, value)
            if stored and rest:
                _continue(task, value, rest)
    except BaseException:
        for name, saved in before.items():
            setattr(task, name, saved)
        raise
    return stored


class Chain:
    """A chain built link by link, then run; Django-Q's Chain.

    ``append()`` takes async_task()'s arguments (plus ``pass_result``),
    ``run()`` enqueues the chain, and ``result()``, ``fetch()`` and
    ``current()`` read it back. Each run() without a `group` given makes a
    new group, so runs do not mix their results.
    """

    def __init__(
        self,
        chain: Sequence[bulk.Call] | None = None,
        group: str | None = None,
        sync: bool | None = None,
    ) -> None:
        self.chain: list[bulk.Call] = list(chain or [])
        self.given_group = group
        self.group = group or ""
        self.sync = sync
        self.started = False

    def append(self, func: str | Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Add a link; return the chain's length."""
        self.chain.append((func, args, kwargs))
        self.started = False
        return self.length()

    def run(self) -> str:
        """Enqueue the chain and return its group id."""
        self.group = async_chain(self.chain, group=self.given_group, sync=self.sync)
        self.started = True
        return self.group

    def result(self, wait: int = 0) -> list[Any] | None:
        """Return the results of the links that succeeded, waiting up to `wait` ms for the chain to end.

        None before run(). The chain has ended when no link is queued or
        running: all succeeded, or one failed or was cancelled.
        """
        if not self.started:
            return None
        return groups.result_group(self.group, wait=wait)

    def fetch(self, failures: bool = True, wait: int = 0) -> list[models.Task] | None:
        """Return the finished links' tasks, waiting as result() does; None before run()."""
        if not self.started:
            return None
        return groups.fetch_group(self.group, failures=failures, wait=wait)

    def current(self) -> int | None:
        """Return the index of the link running or queued now (the number finished); None before run()."""
        if not self.started:
            return None
        return groups.count_group(self.group)

    def length(self) -> int:
        """Return the number of links."""
        return len(self.chain)


def _refuse(options: dict[str, Any], what: str) -> None:
    if "group" in options:
        raise ValueError(
            f"group is not accepted in {what}: the links share the chain's group; "
            "give it as async_chain(group=...)."
        )
    if "unique_key" in options:
        # The worker inserts the next link: on a held key it could only drop
        # the rest of the chain or hand it to a task that knows nothing of it.
        raise ValueError(
            f"unique_key is not accepted in {what}: a chain's links cannot be unique tasks."
        )
    bulk.refuse(options, what)


def _link(
    task: models.Task, options: dict[str, Any], pass_result: bool
) -> dict[str, Any]:
    """Describe a validated link for the chain column."""
    countdown, eta, expires = (options.get(k) for k in ("countdown", "eta", "expires"))
    if isinstance(expires, datetime.datetime) and task.expires_at is not None:
        expires = task.expires_at.isoformat()
    elif expires is not None:
        expires = float(expires)
    return {
        "func": task.func,
        "payload": task.payload,
        RESULT_OPTION: pass_result,
        "options": {
            "task_name": task.name,
            "queue": task.queue,
            "priority": task.priority,
            "max_attempts": task.max_attempts,
            "timeout": task.timeout,
            "save": task.keep_result,
            "on_orphan": task.on_orphan,
            "hook": task.hook,
            "countdown": float(countdown) if countdown is not None else None,
            "eta": task.run_after.isoformat() if eta is not None else None,
            "expires": expires,
        },
    }


def _encode(links: list[dict[str, Any]]) -> str:
    if not links:
        return ""
    return json.dumps(
        {"version": FORMAT_VERSION, "links": links}, separators=(",", ":")
    )


def _decode(text: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(text)
        links = document["links"]
        if document["version"] != FORMAT_VERSION or not isinstance(links, list):
            raise ValueError(f"version {document['version']!r}")
        for link in links:
            if not isinstance(link["func"], str) or not isinstance(
                link["payload"], str
            ):
                raise ValueError("a link without func or payload")
            if not isinstance(link["options"], dict):
                raise ValueError("a link without options")
    except (ValueError, KeyError, TypeError) as exc:
        raise exceptions.PayloadError(
            f"The chain column is not a chain dbqueue wrote ({type(exc).__name__}: {exc})."
        ) from exc
    return links


def _build_next(task: models.Task, value: Any, link: dict[str, Any]) -> models.Task:
    """Rebuild the next link's Task, its payload verified before anything else."""
    func, payload = link["func"], link["payload"]
    options = {name: link["options"].get(name) for name in LINK_OPTIONS}
    args, kwargs = serialization.loads_payload(
        func, payload, hook=options["hook"] or ""
    )
    if link.get(RESULT_OPTION):
        args = (value, *args)
    for name in ("eta", "expires"):
        if isinstance(options[name], str):
            options[name] = datetime.datetime.fromisoformat(options[name])
    return api.build_task(
        func,
        args,
        kwargs,
        group=task.group,
        serializer=serialization.serializer_of(payload),
        **options,
    )


def _continue(task: models.Task, value: Any, rest: str) -> None:
    """Insert the next link of `task`'s chain, or stop the chain with a recorded error."""
    func = "?"
    try:
        links = _decode(rest)
        func = links[0]["func"]
        following = _build_next(task, value, links[0])
        following.chain = _encode(links[1:])
    except Exception as exc:
        # Whatever went wrong (a result the next link's serializer cannot
        # take, a function a deploy removed, a module that fails to import),
        # raising would roll back a success that has already happened.
        _stop(task, func, exc)
        return
    try:
        # A savepoint, so that a failed INSERT leaves the success to commit.
        with transaction.atomic(using=models.queue_db()):
            api.insert(following)
    except DatabaseError as exc:
        if claiming.is_transient(exc):
            raise
        _stop(task, func, exc)
        return
    setattr(task, NEXT_ATTRIBUTE, following)


def _stop(task: models.Task, func: str, exc: Exception) -> None:
    message = (
        f"Chain stopped after this task: its next link {func} could not be "
        f"enqueued ({type(exc).__name__}: {exc})"
    )
    logger.error(
        "Chain of task id=%s group=%s stopped: the next link path=%s could not be enqueued (%s: %s).",
        task.id,
        task.group,
        func,
        type(exc).__name__,
        exc,
    )
    if task.keep_result:
        models.Task.objects.using(models.queue_db()).filter(id=task.id).update(
            error=message
        )
    task.error = message


def _run_inline(task: models.Task) -> None:
    """Run a chain here, link after link (sync mode)."""
    from dbqueue.cluster import worker

    current: models.Task | None = task
    while current is not None:
        worker.run_inline(current)
        current = getattr(current, NEXT_ATTRIBUTE, None)
