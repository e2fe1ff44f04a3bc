"""Groups: results read back in enqueue order, waits, counts, and async_iter."""

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from dbqueue import (
    async_iter,
    async_task,
    cancel_group,
    claiming,
    count_group,
    delete_group,
    fetch_group,
    groups,
    models,
    result_group,
)
from dbqueue.cluster.worker import Worker
from dbqueue.exceptions import TaskNotFound
from dbqueue.models import Status, Task
from tests.conftest import drain
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return Worker(worker_id="group-worker", queues=["*"], batch_size=1, poll_interval=0)


class FakeTime:
    """Stands in for the time module in dbqueue.groups: sleeping runs `step` instead."""

    def __init__(self, step=None):
        self.now = 1000.0
        self.sleeps = []
        self.step = step

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.step:
            self.step()


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(groups, "time", clock)
    return clock


def test_results_come_back_in_enqueue_order_without_failures_unless_asked(worker):
    for call in [(tasks.add, 1, 1), (tasks.fail, "no"), (tasks.add, 2, 2)]:
        async_task(*call, group="g", max_attempts=1)
    async_task(tasks.add, 9, 9, group="other")
    drain(worker)
    assert result_group("g") == [2, 4]
    assert result_group("g", failures=True) == [2, None, 4]
    assert [t.status for t in fetch_group("g")] == [
        Status.SUCCEEDED,
        Status.FAILED,
        Status.SUCCEEDED,
    ]
    assert [t.result for t in fetch_group("g", failures=False)] == [2, 4]
    assert (count_group("g"), count_group("g", failures=True)) == (3, 1)


def test_only_finished_tasks_are_listed_and_counted(worker):
    async_task(tasks.add, 1, 1, group="g")
    async_task(tasks.add, 2, 2, group="g")
    assert (result_group("g"), fetch_group("g"), count_group("g")) == ([], [], 0)
    worker.run_once()
    assert (result_group("g"), count_group("g")) == ([2], 1)


def test_a_cancelled_task_counts_as_a_failure():
    async_task(tasks.add, 1, 1, group="g")
    assert cancel_group("g") == 1
    assert (count_group("g"), count_group("g", failures=True)) == (1, 1)
    assert result_group("g", failures=True) == [None]


def test_wait_with_count_ends_once_that_many_finished(fake_time, worker):
    for n in range(3):
        async_task(tasks.add, n, n, group="g")
    fake_time.step = worker.run_once
    assert result_group("g", wait=10_000, count=2) == [0, 2]
    assert len(fake_time.sleeps) == 2
    assert Task.objects.queued().count() == 1


def test_wait_without_count_ends_once_nothing_is_queued_or_running(fake_time, worker):
    for n in range(3):
        async_task(tasks.add, n, n, group="g")
    fake_time.step = worker.run_once
    assert result_group("g", wait=-1) == [0, 2, 4]
    assert len(fake_time.sleeps) == 3


def test_wait_ends_at_its_deadline_with_what_has_finished(fake_time):
    async_task(tasks.add, 1, 1, group="g")
    assert result_group("g", wait=500) == []
    assert fake_time.now == pytest.approx(1000.5)
    assert fetch_group("g", wait=200, count=1) == []
    assert sum(fake_time.sleeps) == pytest.approx(0.7)


def test_no_wait_by_default(fake_time):
    async_task(tasks.add, 1, 1, group="g")
    assert result_group("g", count=1) == []
    assert fake_time.sleeps == []


def test_count_and_group_id_are_checked():
    with pytest.raises(ValueError, match="count must be a positive integer"):
        result_group("g", count=0)
    with pytest.raises(ValueError, match="every task without a group"):
        result_group("")
    with pytest.raises(ValueError, match="non-empty string"):
        count_group(None)


def test_delete_group_ungroups_or_deletes_only_finished_tasks(worker):
    async_task(tasks.add, 1, 1, group="g")
    async_task(tasks.add, 2, 2, group="g")
    worker.run_once()
    assert delete_group("g") == 1
    assert Task.objects.filter(group="g").count() == 1
    assert Task.objects.filter(group="").count() == 1
    worker.run_once()
    assert delete_group("g", tasks=True) == 1
    assert not Task.objects.filter(group="g").exists()


def test_cancel_group_leaves_running_tasks_alone():
    for n in range(3):
        async_task(tasks.add, n, n, group="g")
    [running] = claiming.claim("w", None, 1)
    assert cancel_group("g") == 2
    assert Task.objects.get(id=running.id).status == Status.RUNNING


def test_async_iter_collects_results_in_input_order_not_finish_order(worker):
    group = async_iter(tasks.square, [1, 2, 3, 4])
    # Make them finish last to first.
    for priority, task in enumerate(Task.objects.filter(group=group).order_by("id")):
        Task.objects.filter(id=task.id).update(priority=priority)
    drain(worker)
    finish_order = [
        t.args[0] for t in Task.objects.filter(group=group).order_by("finished_at")
    ]
    assert finish_order == [4, 3, 2, 1]
    assert result_group(group, count=4, wait=1000) == [1, 4, 9, 16]


def test_async_iter_takes_tuples_as_arguments_and_shares_keyword_arguments(worker):
    group = async_iter(tasks.echo, [(1, 2), 3, [4]], flag=True, queue="q")
    drain(worker)
    assert result_group(group) == [
        {"args": [1, 2], "kwargs": {"flag": True}},
        {"args": [3], "kwargs": {"flag": True}},
        {"args": [[4]], "kwargs": {"flag": True}},
    ]
    assert set(Task.objects.values_list("queue", flat=True)) == {"q"}


def test_async_iter_keeps_failed_items_in_place_with_failures(worker):
    group = async_iter(tasks.fail, ["a", "b"], max_attempts=1)
    drain(worker)
    assert result_group(group, failures=True) == [None, None]
    assert count_group(group, failures=True) == 2


def test_async_iter_stores_everything_with_one_statement():
    connection = connections[models.queue_db()]
    with CaptureQueriesContext(connection) as queries:
        async_iter(tasks.square, range(20))
    # A COPY on PostgreSQL, an INSERT elsewhere.
    writes = [
        q
        for q in queries
        if q["sql"].upper().startswith(("INSERT INTO", "COPY"))
        and "DBQUEUE_TASK" in q["sql"].upper()
    ]
    assert len(writes) == 1
    assert Task.objects.count() == 20


def test_async_iter_keeps_results_even_when_results_are_not_saved_by_default(worker):
    with override_settings(DBQUEUE_SAVE_RESULTS=False):
        group = async_iter(tasks.square, [2, 3])
        drain(worker)
    assert result_group(group) == [4, 9]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"save": False}, ValueError, "save=False"),
        ({"unique_key": "k"}, ValueError, "unique_key is not accepted"),
        ({"priority": 1000}, ValueError, "priority"),
    ],
)
def test_async_iter_refuses_bad_options_and_stores_nothing(kwargs, error, message):
    with pytest.raises(error, match=message):
        async_iter(tasks.square, [1, 2], **kwargs)
    assert not Task.objects.exists()


def test_async_iter_stores_nothing_when_one_item_is_bad():
    with pytest.raises(TaskNotFound):
        async_iter("tests.testapp.tasks.nope", [1])
    with pytest.raises(TypeError) as raised:
        async_iter(tasks.echo, [1, lambda: 2])
    assert raised.value.__notes__ == ["In item 2 of async_iter()."]
    assert not Task.objects.exists()


def test_async_iter_of_nothing_is_an_empty_group():
    group = async_iter(tasks.square, [])
    assert result_group(group, wait=-1) == []


def test_async_iter_in_sync_mode_runs_every_item():
    group = async_iter(tasks.square, [5, 6], sync=True)
    assert result_group(group) == [25, 36]
