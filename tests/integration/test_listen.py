"""PostgreSQL's LISTEN/NOTIFY path (dbqueue.claiming.listen).

Every move of a task into the queue must reach idle workers, who no longer
poll often: a write that forgets its NOTIFY leaves its task waiting for the
worker's safety poll (DBQUEUE_LISTEN_POLL_INTERVAL). Each test makes one such
move and reads what a listening session heard.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from dbqueue import async_task, claiming
from dbqueue.admin import operations
from dbqueue.claiming import listen
from dbqueue.cluster.worker import Worker
from dbqueue.models import QueueState, Status, Task
from tests.testapp import tasks

pytestmark = [
    pytest.mark.vendor("postgresql"),
    pytest.mark.django_db(transaction=True),
]


def later(heard, queue):
    """The due times (unix) heard on the later channel for `queue`."""
    return [
        float(payload.split(" ", 1)[0])
        for channel, payload in heard
        if channel == listen.LATER_CHANNEL and payload.split(" ", 1)[1] == queue
    ]


def test_a_due_task_wakes_its_queue_and_a_delayed_one_says_when(listener):
    async_task(tasks.add, 1, 2, queue="now")
    async_task(tasks.add, 1, 2, queue="soon", countdown=30)
    heard = listener()
    assert (listen.CHANNEL, "now") in heard
    assert later(heard, "soon") == [pytest.approx(time.time() + 30, abs=5)]


def test_a_retry_says_when_its_backoff_ends(listener, settings):
    settings.DBQUEUE_RETRY_BACKOFF = 20
    async_task(tasks.fail, queue="flaky", max_attempts=2)
    listener()  # the enqueue's own
    Worker(worker_id="w", queues=["flaky"]).run_once()
    task = Task.objects.get()
    assert task.status == Status.QUEUED
    assert later(listener(), "flaky") == [
        pytest.approx(task.run_after.timestamp(), abs=0.01)
    ]


def test_tasks_released_unstarted_wake_their_queue(listener):
    async_task(tasks.add, 1, 2, queue="back")
    claimed = claiming.claim("w", ["back"], 10)
    listener()
    assert claiming.release(claimed, "w") == 1
    assert listener() == [(listen.CHANNEL, "back")]


def test_a_resumed_queue_wakes_workers_once_their_paused_list_is_stale(listener):
    QueueState.set_paused("held", True)
    assert listener() == []
    QueueState.set_paused("held", False)
    assert later(listener(), "held") == [
        pytest.approx(time.time() + claiming.PAUSED_CACHE_TTL, abs=1)
    ]


def test_retry_now_in_the_admin_wakes_the_queue(listener):
    async_task(tasks.add, 1, 2, queue="wait", countdown=3600)
    listener()
    report = operations.retry_now(Task.objects.all())
    assert len(report.made_due) == 1
    assert listener() == [(listen.CHANNEL, "wait")]


def test_a_listening_wait_returns_when_a_heard_time_comes():
    connection.close()
    assert claiming.wait_for_work(0.01) is True  # subscribes
    async_task(tasks.add, 1, 2, countdown=0.6)
    started = time.monotonic()
    assert claiming.wait_for_work(0.3) is False  # heard, not due yet
    assert claiming.wait_for_work(3.0) is True
    assert 0.4 <= time.monotonic() - started <= 2.0


def test_a_new_session_learns_when_the_next_task_is_due_from_the_table():
    # Enqueued before anyone listened: no worker heard its NOTIFY.
    async_task(tasks.add, 1, 2, countdown=0.6)
    connection.close()
    started = time.monotonic()
    assert claiming.wait_for_work(0.01) is True  # subscribes, reads the table
    assert claiming.wait_for_work(3.0) is True
    assert 0.4 <= time.monotonic() - started <= 2.0


def test_a_wait_ignores_the_delayed_tasks_of_queues_it_does_not_serve():
    connection.close()
    assert claiming.wait_for_work(0.01, queues=["mine"]) is True
    async_task(tasks.add, 1, 2, queue="theirs", countdown=0.2)
    assert claiming.wait_for_work(0.8, queues=["mine"]) is False


def test_a_wait_ignores_due_tasks_of_queues_it_does_not_serve():
    connection.close()
    assert claiming.wait_for_work(0.01, queues=["mine"]) is True
    async_task(tasks.add, 1, 2, queue="theirs")
    assert claiming.wait_for_work(0.3, queues=["mine"]) is False
    async_task(tasks.add, 1, 2, queue="mine")
    assert claiming.wait_for_work(1.0, queues=["mine"]) is True
