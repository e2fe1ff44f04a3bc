"""Hooks: called once with the finished task; their errors never change its outcome."""

import pytest

from dbqueue import async_task, fetch
from dbqueue.cluster.worker import Worker
from dbqueue.models import Status, Task
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return Worker(worker_id="hook-worker", queues=["*"], poll_interval=0)


def test_a_hook_runs_once_after_the_final_failure_not_after_each_retry(worker):
    task_id = async_task(
        tasks.fail, hook="tests.testapp.semantics.status_hook", max_attempts=2
    )
    worker.run_once()
    assert not Execution.objects.exists()
    Task.objects.filter(id=task_id).update(run_after=fetch(task_id).enqueued_at)
    worker.run_once()
    assert [e.label for e in Execution.objects.all()] == ["hook:FAILED:2"]


def test_a_raising_hook_is_logged_and_the_task_still_succeeds(worker, caplog):
    task_id = async_task(tasks.add, 1, 2, hook="tests.testapp.semantics.raising_hook")
    worker.run_once()
    assert fetch(task_id).status == Status.SUCCEEDED
    assert "Hook tests.testapp.semantics.raising_hook" in caplog.text
    assert "the task's outcome stands" in caplog.text


@pytest.mark.parametrize(
    ("hook", "error", "message"),
    [
        ("tests.testapp.semantics.no_such_hook", ValueError, "cannot be imported"),
        ("tests.testapp.tasks.NOT_A_FUNCTION", ValueError, "not a function"),
        (42, TypeError, "hook must be a function or its dotted path"),
    ],
)
def test_a_bad_hook_fails_at_enqueue(hook, error, message):
    with pytest.raises(error, match=message):
        async_task(tasks.add, 1, 2, hook=hook)
    assert not Task.objects.exists()
