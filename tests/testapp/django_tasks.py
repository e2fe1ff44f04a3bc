"""Tasks written against Django's Tasks API, for the DatabaseBackend tests.

They are decorated with Django's own ``@task`` (``django.tasks`` on Django 6,
the ``django_tasks`` backport on 5.2) while tests.settings points TASKS at
dbqueue's backend, exactly as a project would write them. A worker finds them
by importing this module, which is not an app's ``tasks`` module.
"""

import inspect
import os

from dbqueue.tasks_compat import default_task_backend, task
from tests.testapp.models import Execution

# Django 6.0's @task takes no extra keywords; 6.1 and the backport pass them
# to the backend's Task class.
TASK_TAKES_OPTIONS = any(
    p.kind is inspect.Parameter.VAR_KEYWORD
    for p in inspect.signature(task).parameters.values()
)


@task
def noop(*args, **kwargs):
    return None


@task
async def noop_async(*args, **kwargs):
    return None


@task
def meaning_of_life():
    return 42


@task
async def async_add(a, b):
    return a + b


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task
def record(label):
    """Write one ledger row per run, so tests count what actually ran."""
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task(priority=10)
def urgent(label):
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task
def fails_with_value_error():
    raise ValueError("This task failed due to ValueError")


@task
def fails_with_system_exit():
    raise SystemExit("This task failed due to SystemExit")


@task
def fails_with_keyboard_interrupt():
    raise KeyboardInterrupt("This task failed due to KeyboardInterrupt")


@task
def fails_with_nested_exception():
    raise ValueError(ValueError("This task failed"))


@task
def returns_a_function():
    return lambda: None


@task
def returns_a_tuple_and_bytes():
    return {"pair": (1, 2), "data": b"bytes"}


@task(takes_context=True)
def reads_context(context, value=None):
    return {
        "attempt": context.attempt,
        "id": context.task_result.id,
        "status": str(context.task_result.status),
        "worker_ids": context.task_result.worker_ids,
        "errors": len(context.task_result.errors),
        "value": value,
    }


@task(takes_context=True)
def fails_on_first_attempt(context):
    if context.attempt == 1:
        raise RuntimeError("first attempt fails")
    return context.attempt


@task(takes_context=True)
def reads_own_result(context):
    """Read this task's result through the backend, as another process would, while it runs."""
    result = default_task_backend.get_result(context.task_result.id)
    return {
        "status": str(result.status),
        "attempts": result.attempts,
        "worker_ids": result.worker_ids,
        "started": result.started_at is not None,
        "finished": result.finished_at is not None,
    }


if TASK_TAKES_OPTIONS:

    @task(max_attempts=3, timeout=30, unique_key="nightly-report")
    def with_options(*args):
        return list(args)

    @task(max_attempts=2, takes_context=True)
    def retried_by_decorator(context):
        if context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return context.attempt
