"""Tasks the test suite enqueues."""

import os
import signal
import time
from decimal import Decimal

from dbqueue import task
from dbqueue.exceptions import TaskTimeout
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


@task
def slow_record(label, seconds):
    """Write a start row, sleep, write a finish row: a kill shows as a start without a finish."""
    Execution.objects.create(label=f"{label}:start", pid=os.getpid())
    time.sleep(seconds)
    Execution.objects.create(label=f"{label}:finish", pid=os.getpid())
    return label


@task
def stubborn_sleep(seconds):
    """Catch the soft timeout and keep going, so only the supervisor's kill stops it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(deadline - time.monotonic())
        except TaskTimeout:
            Execution.objects.create(label="caught soft timeout", pid=os.getpid())


@task
def die(code=1):
    """End the worker process without any cleanup, as a crash in C code would."""
    Execution.objects.create(label="about to die", pid=os.getpid())
    os._exit(code)


@task
def segfault():
    os.kill(os.getpid(), signal.SIGSEGV)


@task
def pid():
    return os.getpid()


@task
def fails_while_blocked(label):
    """Fail while a 'blocked:<label>' ledger row exists; then record a run (dead-letter replay tests)."""
    if Execution.objects.filter(label=f"blocked:{label}").exists():
        raise ValueError(f"{label} is blocked")
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task
def square(x):
    return x * x


@task
def big_text(size):
    """Return a string of `size` characters (a result too big to pass on as an argument)."""
    return "x" * size


@task
def fail_first_attempt(label):
    """Fail on the first attempt for `label`, succeed (and record a run) on the next."""
    marker = f"attempted:{label}"
    if not Execution.objects.filter(label=marker).exists():
        Execution.objects.create(label=marker, pid=os.getpid())
        raise ValueError(f"{label}: first attempt fails")
    Execution.objects.create(label=str(label), pid=os.getpid())
    return label


@task
def status_of(task_id):
    """Return another task's status as the database holds it while this one runs."""
    from dbqueue.models import Task

    return Task.objects.get(id=task_id).status
