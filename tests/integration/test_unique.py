"""Unique tasks: one active task per unique_key, enforced by the database."""

import datetime
import threading

import pytest
from django.db import connections, transaction
from django.utils import timezone

from dbqueue import DuplicateTask, api, async_task, cancel, fetch
from dbqueue.cluster.worker import Worker
from dbqueue.models import Status, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def active(key):
    return Task.objects.filter(unique_key=key, status__in=["QUEUED", "RUNNING"])


def race(threads, work):
    """Run `work()` in `threads` threads released at once; return what they raised."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run():
        try:
            start.wait()
            work()
        except BaseException as exc:  # the caller asserts there is none
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return errors


def test_a_second_enqueue_returns_the_queued_task_by_default():
    first = async_task(tasks.add, 1, 2, unique_key="k")
    second = async_task(tasks.add, 3, 4, unique_key="k")
    assert second == first
    assert Task.objects.count() == 1
    assert fetch(first).args == (1, 2)


def test_on_conflict_raise_names_the_holder():
    first = async_task(tasks.add, 1, 2, unique_key="k")
    with pytest.raises(DuplicateTask, match=f"Task {first} already holds") as caught:
        async_task(tasks.add, 1, 2, unique_key="k", on_conflict="raise")
    assert str(caught.value.existing_id) == first
    assert Task.objects.count() == 1


def test_on_conflict_replace_cancels_a_queued_holder():
    first = async_task(tasks.add, 1, 2, unique_key="k")
    second = async_task(tasks.add, 5, 6, unique_key="k", on_conflict="replace")
    assert second != first
    old = fetch(first)
    assert (old.status, old.error) == (Status.CANCELLED, f"Replaced by task {second}")
    assert fetch(second).args == (5, 6)
    assert active("k").count() == 1


def test_replace_leaves_a_running_holder_and_returns_it():
    first = async_task(tasks.add, 1, 2, unique_key="k")
    Task.objects.filter(id=first).update(status=Status.RUNNING, locked_by="w")
    again = async_task(tasks.add, 5, 6, unique_key="k", on_conflict="replace")
    assert again == first
    assert Task.objects.count() == 1


def test_the_key_is_free_again_once_the_holder_finishes():
    worker = Worker(worker_id="w", queues=["*"], poll_interval=0)
    first = async_task(tasks.add, 1, 2, unique_key="k")
    worker.run_once()
    assert fetch(first).status == Status.SUCCEEDED
    second = async_task(tasks.add, 1, 2, unique_key="k")
    assert second != first
    assert fetch(first).unique_key == "k"  # the history still says which key it had


def test_a_failed_or_cancelled_holder_releases_the_key():
    worker = Worker(worker_id="w", queues=["*"], poll_interval=0)
    failing = async_task(tasks.fail, unique_key="f", max_attempts=1)
    worker.run_once()
    assert fetch(failing).status == Status.FAILED
    assert async_task(tasks.add, 1, 2, unique_key="f") != failing
    queued = async_task(tasks.add, 1, 2, unique_key="c")
    assert cancel(queued)
    assert async_task(tasks.add, 1, 2, unique_key="c") != queued


def test_a_retry_keeps_the_key():
    worker = Worker(worker_id="w", queues=["*"], poll_interval=0)
    task_id = async_task(tasks.fail, unique_key="r", max_attempts=2)
    worker.run_once()
    assert fetch(task_id).status == Status.QUEUED
    assert async_task(tasks.add, 1, 2, unique_key="r") == task_id


def test_unique_for_keeps_the_key_after_the_task_finished():
    worker = Worker(worker_id="w", queues=["*"], poll_interval=0)
    first = async_task(tasks.add, 1, 2, unique_key="p", unique_for=3600)
    worker.run_once()
    assert fetch(first).status == Status.SUCCEEDED
    assert async_task(tasks.add, 1, 2, unique_key="p") == first
    # Once the period is over, the next enqueue frees the lapsed hold.
    Task.objects.filter(id=first).update(
        unique_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    second = async_task(tasks.add, 1, 2, unique_key="p")
    assert second != first
    assert fetch(first).unique_hold is None


def test_a_conflict_inside_a_transaction_leaves_the_transaction_usable():
    with transaction.atomic():
        first = async_task(tasks.add, 1, 2, unique_key="t")
        assert async_task(tasks.add, 1, 2, unique_key="t") == first
        other = async_task(tasks.add, 3, 4)
    assert Task.objects.filter(id__in=[first, other]).count() == 2


def test_a_rolled_back_holder_frees_the_key():
    def view():
        with transaction.atomic():
            async_task(tasks.add, 1, 2, unique_key="rb")
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        view()
    assert not Task.objects.exists()
    assert async_task(tasks.add, 1, 2, unique_key="rb")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"unique_key": ""}, ValueError, "unique_key must be 1 to 255 characters"),
        ({"unique_key": 7}, TypeError, "unique_key must be a string"),
        ({"unique_for": 10}, ValueError, "unique_for needs a unique_key"),
        ({"unique_key": "k", "unique_for": 0}, ValueError, "more than 0 seconds"),
        ({"unique_key": "k", "unique_for": "1h"}, TypeError, "number of seconds"),
        ({"unique_key": "k", "on_conflict": "skip"}, ValueError, "on_conflict must"),
    ],
)
def test_bad_unique_options_store_nothing(options, error, message):
    with pytest.raises(error, match=message):
        async_task(tasks.add, 1, 2, **options)
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_enqueues_of_one_key_leave_one_active_task():
    threads, per_thread = 10, 10
    returned: list[str] = []

    def enqueue_many():
        for n in range(per_thread):
            returned.append(async_task(tasks.add, n, 0, unique_key="hot"))

    errors = race(threads, enqueue_many)
    assert not errors, errors
    assert len(returned) == threads * per_thread
    assert active("hot").count() == 1
    assert set(returned) == {str(active("hot").get().id)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_replace_leaves_one_active_task():
    def replace():
        for n in range(5):
            api.enqueue(tasks.add, (n, 0), unique_key="hot", on_conflict="replace")

    errors = race(8, replace)
    assert not errors, errors
    assert active("hot").count() == 1
    assert Task.objects.filter(status=Status.CANCELLED).count() == (
        Task.objects.count() - 1
    )
