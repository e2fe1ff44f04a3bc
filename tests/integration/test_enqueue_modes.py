"""Cancel, on_commit, and async: enqueue from async code and async def tasks."""

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction

from dbqueue import aenqueue, afetch, aresult, async_task, cancel, fetch
from dbqueue.cluster.worker import Worker
from dbqueue.models import Status, Task
from tests.testapp import semantics, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return Worker(worker_id="modes-worker", queues=["*"], poll_interval=0)


def test_cancel_withdraws_a_queued_task_and_it_never_runs(worker):
    task_id = async_task(tasks.add, 1, 2)
    assert cancel(task_id)
    assert worker.run_once() == []
    task = fetch(task_id)
    assert (task.status, task.error) == (Status.CANCELLED, "Cancelled")
    assert task.finished_at is not None


def test_cancel_leaves_running_and_finished_tasks_alone(worker):
    done = async_task(tasks.add, 1, 2)
    worker.run_once()
    running = async_task(tasks.add, 1, 2)
    Task.objects.filter(id=running).update(status=Status.RUNNING, locked_by="w")
    assert not cancel(done)
    assert not cancel(running)
    assert not cancel("not-a-uuid")
    assert fetch(done).status == Status.SUCCEEDED
    assert fetch(running).status == Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_on_commit_inserts_after_the_transaction_commits():
    with transaction.atomic():
        task = async_task(tasks.add, 1, 2, on_commit=True)
        assert not Task.objects.filter(id=task).exists()
    assert fetch(task).status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_on_commit_inserts_nothing_when_the_transaction_rolls_back():
    def view():
        with transaction.atomic():
            async_task(tasks.add, 1, 2, on_commit=True)
            raise RuntimeError("view failed")

    with pytest.raises(RuntimeError):
        view()
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_on_commit_outside_a_transaction_inserts_at_once():
    assert fetch(async_task(tasks.add, 1, 2, on_commit=True)) is not None


@pytest.mark.django_db(transaction=True)
def test_on_commit_validates_at_the_call_not_at_commit():
    with pytest.raises(ValueError, match="priority"), transaction.atomic():
        async_task(tasks.add, 1, 2, on_commit=True, priority=500)
    assert not Task.objects.exists()


def test_an_async_def_task_runs_in_the_worker(worker):
    ok = async_task(semantics.async_add, 2, 3)
    bad = async_task(semantics.async_fail, max_attempts=1)
    worker.run_once()
    worker.run_once()
    assert fetch(ok).result == 5
    failed = fetch(bad)
    assert (failed.status, failed.error) == (Status.FAILED, "ValueError: async boom")


@pytest.mark.django_db(transaction=True)
def test_an_async_view_enqueues_and_async_code_reads_the_outcome(async_client, worker):
    @async_to_sync
    async def view_then_read():
        response = await async_client.post("/async-signup/")
        task_id = response.json()["task_id"]
        queued = await afetch(task_id)
        row = await aenqueue(tasks.add, (1, 2))
        return task_id, queued, row, await aresult(row.id, wait=10)

    task_id, queued, row, early = view_then_read()
    assert (queued.status, queued.group) == (Status.QUEUED, "signup")
    assert early is None  # nobody ran it yet
    worker.run_once()
    worker.run_once()
    assert async_to_sync(aresult)(task_id, wait=1000) == 42
    assert async_to_sync(aresult)(row.id) == 3
