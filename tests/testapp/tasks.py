"""Tasks the test suite enqueues."""

import os
import time
from decimal import Decimal

from dbqueue import task
from tests.testapp.models import Execution

NOT_A_FUNCTION = 42


@task
def add(a, b):
    return a + b


@task(queue="emails", priority=5, max_attempts=2)
def send_email(user_id, subject="hello"):
    return f"sent {subject} to {user_id}"


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task
def record(label):
    """Write one ledger row per execution, so tests can count runs exactly."""
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task
def sleep_then_record(label, seconds):
    time.sleep(seconds)
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task
def fail(message="boom"):
    raise ValueError(message)


@task
def exit_task():
    raise SystemExit(3)


@task
def interrupt_task():
    raise KeyboardInterrupt


@task
def unstorable_result():
    return lambda: None


@task
def money():
    return Decimal("12.50")


@task(hook="tests.testapp.tasks.remember_hook")
def hooked(value):
    return value * 2


def remember_hook(task):
    Execution.objects.create(label=f"hook:{task.id}:{task.result}")


def plain_function(x):
    """Not decorated: enqueueing it must fail."""
    return x
