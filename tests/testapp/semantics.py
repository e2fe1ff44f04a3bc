"""Tasks for retry policies, unique keys and async execution."""

import asyncio

from dbqueue import Retry, task
from tests.testapp.models import Execution


class Flaky(Exception):
    pass


class Gone(Exception):
    pass


def runs(label):
    return Execution.objects.filter(label=label).count()


@task(retry_on=(Flaky,), backoff=10, backoff_max=15, jitter=False, max_attempts=4)
def flaky(label, kind="flaky"):
    """Fail with the exception named by `kind`, recording each run."""
    Execution.objects.create(label=label)
    raise {"flaky": Flaky, "gone": Gone, "other": RuntimeError}[kind](kind)


@task(discard_on=Gone, max_attempts=3)
def discarding(label):
    Execution.objects.create(label=label)
    raise Gone("the row it was about was deleted")


def seven_seconds_per_attempt(attempt, exc):
    return 7.0 * attempt


def broken_backoff(attempt, exc):
    raise ZeroDivisionError("bad backoff")


@task(backoff=seven_seconds_per_attempt, max_attempts=3)
def custom_backoff(label):
    Execution.objects.create(label=label)
    raise RuntimeError("again")


@task(backoff=broken_backoff, max_attempts=2)
def with_broken_backoff():
    raise RuntimeError("again")


@task(max_attempts=3)
def retry_later(label, countdown=30):
    """Ask for a retry until the third attempt, which succeeds."""
    Execution.objects.create(label=label)
    if runs(label) < 3:
        raise Retry("not ready yet", countdown=countdown)
    return "ready"


@task
async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


@task
async def async_fail():
    await asyncio.sleep(0)
    raise ValueError("async boom")


def status_hook(task):
    Execution.objects.create(label=f"hook:{task.status}:{task.attempts}")


def raising_hook(task):
    raise RuntimeError("hook bug")
