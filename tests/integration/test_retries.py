"""Retry policies: retry_on, discard_on, backoff (number or callable), jitter, Retry."""

import datetime

import pytest
from django.utils import timezone

from dbqueue import Retry, async_task, fetch, retries
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Status, Task
from tests.testapp import semantics

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return Worker(worker_id="retry-worker", queues=["*"], poll_interval=0)


def run_due(worker, task_id):
    """Make the task due now and run one attempt; return the fresh row and the delay it got."""
    task = Task.objects.get(id=task_id)
    if task.status == Status.QUEUED:
        Task.objects.filter(id=task_id).update(run_after=timezone.now())
    before = timezone.now()
    worker.run_once()
    task = fetch(task_id)
    return task, (task.run_after - before).total_seconds()


def test_three_failures_back_off_exponentially_then_dead_letter(worker, settings):
    settings.DBQUEUE_RETRY_BACKOFF = 10
    settings.DBQUEUE_RETRY_BACKOFF_MAX = 25
    task_id = async_task("tests.testapp.tasks.fail", "down", max_attempts=3)
    delays = []
    for _ in range(2):
        task, delay = run_due(worker, task_id)
        assert task.status == Status.QUEUED
        delays.append(delay)
    # Equal jitter: between half and all of 10 s, then of 20 s.
    assert 5 - 1 <= delays[0] <= 10 + 1
    assert 10 - 1 <= delays[1] <= 20 + 1
    task, _ = run_due(worker, task_id)
    assert (task.status, task.attempts) == (Status.FAILED, 3)
    dead = FailedTask.objects.get(task_id=task_id)
    assert [entry["error"] for entry in dead.attempt_log] == ["down"] * 3
    assert dead.exception_class == "builtins.ValueError"
    assert dead.worker_id == "retry-worker"
    assert "ValueError: down" in dead.traceback
    assert dead.started_at is not None
    # No fourth attempt, whatever run_after says.
    Task.objects.filter(id=task_id).update(run_after=timezone.now())
    assert worker.run_once() == []


def test_retry_on_retries_only_the_listed_exceptions(worker):
    listed = async_task(semantics.flaky, "listed", "flaky")
    task, delay = run_due(worker, listed)
    assert task.status == Status.QUEUED
    assert 10 - 1 <= delay <= 10 + 1  # backoff=10, jitter off
    task, delay = run_due(worker, listed)
    assert 15 - 1 <= delay <= 15 + 1  # 20 s capped by backoff_max=15
    Task.objects.filter(id=listed).delete()
    other = async_task(semantics.flaky, "other", "other")
    task, _ = run_due(worker, other)
    assert (task.status, task.attempts) == (Status.FAILED, 1)
    assert FailedTask.objects.filter(task_id=other).exists()


def test_discard_on_ends_the_task_without_a_dead_letter_entry(worker):
    task_id = async_task(semantics.discarding, "discard")
    task, _ = run_due(worker, task_id)
    assert (task.status, task.attempts) == (Status.FAILED, 1)
    assert task.error.startswith("Discarded: ")
    assert not FailedTask.objects.filter(task_id=task_id).exists()


def test_a_discard_on_match_wins_over_retry_on(worker):
    task_id = async_task(semantics.flaky, "gone", "gone")
    task, _ = run_due(worker, task_id)
    assert task.status == Status.FAILED


def test_a_backoff_callable_gets_the_attempt_and_the_exception(worker):
    task_id = async_task(semantics.custom_backoff, "custom")
    _, first = run_due(worker, task_id)
    _, second = run_due(worker, task_id)
    assert abs(first - 7) < 1
    assert abs(second - 14) < 1


def test_a_raising_backoff_callable_falls_back_to_the_default(worker, settings, caplog):
    settings.DBQUEUE_RETRY_BACKOFF = 4
    task_id = async_task(semantics.with_broken_backoff)
    task, delay = run_due(worker, task_id)
    assert task.status == Status.QUEUED
    assert 2 - 1 <= delay <= 4 + 1
    assert "backoff callable" in caplog.text


def test_raise_retry_requeues_for_its_countdown_and_counts_the_attempt(worker):
    task_id = async_task(semantics.retry_later, "later", countdown=30)
    task, delay = run_due(worker, task_id)
    assert (task.status, task.attempts) == (Status.QUEUED, 1)
    assert 30 - 1 <= delay <= 30 + 1
    assert task.error == "Retry: not ready yet"
    run_due(worker, task_id)
    task, _ = run_due(worker, task_id)
    assert (task.status, task.result, task.attempts) == (Status.SUCCEEDED, "ready", 3)


def test_retry_past_max_attempts_is_dead_lettered(worker):
    task_id = async_task(semantics.retry_later, "short", max_attempts=1)
    task, _ = run_due(worker, task_id)
    assert task.status == Status.FAILED
    assert FailedTask.objects.get(task_id=task_id).exception_class == (
        "dbqueue.retries.Retry"
    )


def test_retry_with_an_eta():
    eta = timezone.now() + datetime.timedelta(minutes=5)
    delay = Retry(eta=eta).delay()
    assert 299 <= delay <= 300


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_on": "ValueError"}, "retry_on takes exception classes"),
        ({"discard_on": (ValueError, 3)}, "discard_on takes exception classes"),
        ({"backoff": -1}, "backoff must be a number of seconds >= 0"),
        ({"backoff_max": "1h"}, "backoff_max must be a number"),
        ({"jitter": "yes"}, "jitter must be True or False"),
    ],
)
def test_bad_retry_options_fail_at_decoration(options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        retries.RetryPolicy.build(**options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"countdown": -1}, "countdown must be seconds >= 0"),
        ({"eta": datetime.datetime(2030, 1, 1)}, "eta must be an aware datetime"),
        (
            {"countdown": 1, "eta": timezone.now()},
            "countdown or an eta, not both",
        ),
    ],
)
def test_bad_retry_arguments_fail_in_the_task(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Retry(**kwargs)


def test_backoff_without_jitter_doubles_to_the_cap():
    assert [
        retries.backoff_delay(n, base=2, cap=10, jitter=False) for n in range(1, 6)
    ] == [
        2,
        4,
        8,
        10,
        10,
    ]
