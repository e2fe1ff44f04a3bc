"""Groups: tasks that share a ``group`` label, read and managed together.

The names and arguments are Django-Q's (``result_group``, ``fetch_group``,
``count_group``, ``delete_group``, ``async_iter``). What differs comes from the
queue living in the same table as the results: a group's queued and running
tasks are visible too, so a wait without ``count`` lasts until none of them
is left, and ``cancel_group`` can withdraw the ones still queued.

A group reads back in enqueue order, (enqueued_at, id): ids are UUIDv7, which
increase within a process, so tasks enqueued one after another by one
process (a chain, a bulk enqueue, async_iter) keep their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from dbqueue import api, bulk, ids, models, validation

UNFINISHED = (models.Status.QUEUED, models.Status.RUNNING)


def result_group(
    group_id: str, failures: bool = False, wait: int = 0, count: int | None = None
) -> list[Any]:
    """Return the results of the group's finished tasks, in enqueue order.

    Only succeeded tasks are listed, unless `failures` is true: then every
    finished task is, with None for those that failed or were cancelled, so
    the list lines up with the group's tasks. A task run with save=False
    leaves no row and no result.

    `wait` is in milliseconds, as in Django-Q (-1: no limit). With `count`,
    the wait ends once that many tasks of the group have finished; without
    it, once none is queued or running. The list is returned when the wait
    ends, finished or not.
    """
    return [
        task.result
        for task in fetch_group(group_id, failures=failures, wait=wait, count=count)
    ]


def fetch_group(
    group_id: str, failures: bool = True, wait: int = 0, count: int | None = None
) -> list[models.Task]:
    """Return the group's finished tasks in enqueue order, waiting as result_group() does.

    With `failures` false, only the succeeded ones. Queued and running tasks
    are left out, as Django-Q only ever lists tasks that ran.
    """
    _wait(group_id, wait, count)
    tasks = _group(group_id).finished()
    if not failures:
        tasks = tasks.filter(status=models.Status.SUCCEEDED)
    return list(tasks.order_by("enqueued_at", "id"))


def count_group(group_id: str, failures: bool = False) -> int:
    """Return how many of the group's tasks have finished.

    With `failures`, how many of those did not succeed (failed or cancelled).
    """
    tasks = _group(group_id).finished()
    if failures:
        tasks = tasks.exclude(status=models.Status.SUCCEEDED)
    return tasks.count()


def delete_group(group_id: str, tasks: bool = False) -> int:
    """Take the group's finished tasks out of the group, or delete them with `tasks`.

    Return how many tasks were changed or deleted. Queued and running tasks
    are left alone (see cancel_group()), so a chain still running keeps its
    group.
    """
    finished = _group(group_id).finished()
    if tasks:
        deleted, _ = finished.delete()
        return deleted
    return finished.update(group="")


def cancel_group(group_id: str) -> int:
    """Withdraw the group's queued tasks and stop its chains; return how many were cancelled.

    A task already running is left to finish, but if it is a link of a chain,
    the chain ends with it: its successor is not enqueued.
    """
    tasks = _group(group_id)
    # Running links first. A link storing its success right now holds its
    # row locked (chains.succeed): this UPDATE waits for that transaction,
    # and the cancel below, a later statement, sees the link it enqueued.
    tasks.running().exclude(chain="").update(chain="")
    return tasks.cancel()


def async_iter(
    func: str | Callable[..., Any], args_iter: Iterable[Any], **kwargs: Any
) -> str:
    """Enqueue one task per item of `args_iter` and return their group's id.

    An item that is a tuple is the call's positional arguments; anything else
    is its only argument. Other keyword arguments are async_task()'s options
    (or ``q_options``), and the rest are passed to every call. All tasks are
    stored with one INSERT (see enqueue_many()), as one new group unless
    `group` is given.

    Django-Q returns an id whose result is the list; here read it with
    ``result_group(group_id, failures=True, wait=...)``: one entry per item,
    in the order of `args_iter`, None for an item whose task failed.

    Raise ValueError for save=False, which would drop the results to collect,
    and what enqueue_many() raises.
    """
    shared, options = api.split_options(dict(kwargs), "async_iter()")
    bulk.refuse({k: v for k, v in options.items() if k != "sync"}, "async_iter()")
    save = options.get("save")
    # A value that is not a bool is refused here: it is replaced just below.
    if save is not None and not validation.keep_result(save):
        raise ValueError(
            "async_iter() collects every result, so save=False is not accepted."
        )
    options["save"] = True
    group = options.get("group")
    # Checked here too: with no items, nothing else would see it before the
    # caller reads the group back (NUL, for one, fails that query on PostgreSQL).
    options["group"] = (
        str(ids.uuid7())
        if group is None or group == ""
        else validation.text(group, "group", 255)
    )
    sync = options.pop("sync", None)
    what = "async_iter()"
    builder = bulk.Builder()
    with bulk.collector_paused():
        tasks = [
            builder.build(
                bulk.ParsedCall(
                    func, item if isinstance(item, tuple) else (item,), shared, {}
                ),
                options,
                f"item {number} of {what}",
            )
            for number, item in enumerate(args_iter, start=1)
        ]
    bulk.insert_many(tasks, sync=sync)
    return str(options["group"])


def _group(group_id: str) -> models.TaskQuerySet:
    if not isinstance(group_id, str) or not group_id:
        raise ValueError(
            f"group_id must be a non-empty string, got {group_id!r}; an empty one "
            "would name every task without a group."
        )
    return models.Task.objects.using(models.queue_db()).in_group(group_id)


def _is_done(group_id: str, count: int | None) -> bool:
    if count is None:
        return not _group(group_id).filter(status__in=UNFINISHED).exists()
    return count_group(group_id) >= count


def _wait(group_id: str, wait: int, count: int | None) -> None:
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or count < 1
    ):
        raise ValueError(f"count must be a positive integer or None, got {count!r}.")
    if wait == 0:
        return
    deadline = None if wait < 0 else time.monotonic() + wait / 1000
    delay = api.POLL_START
    while not _is_done(group_id, count):
        pause = delay
        if deadline is not None:
            pause = min(pause, deadline - time.monotonic())
            if pause <= 0:
                return
        time.sleep(pause)
        delay = min(delay * 2, api.POLL_MAX)
