"""The queue tables in a database of their own (DBQUEUE_DATABASE="queue")."""

import pytest
from django.db import transaction
from django.test import override_settings

from dbqueue import async_task, fetch
from dbqueue.cluster.worker import Worker
from dbqueue.models import Status, Task
from dbqueue.routers import QueueRouter
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [
    pytest.mark.django_db(databases=["default", "queue"], transaction=True),
]


@pytest.fixture(autouse=True)
def queue_alias():
    with override_settings(DBQUEUE_DATABASE="queue"):
        yield


def queued_in(alias):
    return Task.objects.using(alias).filter(status=Status.QUEUED).count()


def test_tasks_are_stored_claimed_and_run_on_the_queue_database():
    task_id = async_task(tasks.record, "separate")
    assert (queued_in("queue"), queued_in("default")) == (1, 0)
    Worker(worker_id="w", queues=["*"], poll_interval=0).run_once()
    assert fetch(task_id).status == Status.SUCCEEDED
    assert Execution.objects.filter(label="separate").exists()


def test_enqueue_is_not_part_of_a_transaction_on_another_database():
    def view():
        with transaction.atomic():  # on "default", where the business data is
            async_task(tasks.add, 1, 2)
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        view()
    # Documented: the task was committed on its own database regardless.
    assert queued_in("queue") == 1


def test_on_commit_keeps_the_task_in_step_with_the_default_database():
    def view(fail):
        with transaction.atomic():
            Execution.objects.create(label="order")
            async_task(tasks.add, 1, 2, on_commit=True)
            if fail:
                raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        view(fail=True)
    assert queued_in("queue") == 0
    view(fail=False)
    assert queued_in("queue") == 1


def test_a_transaction_on_the_queue_database_takes_the_task_with_it():
    def view():
        with transaction.atomic(using="queue"):
            async_task(tasks.add, 1, 2)
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        view()
    assert queued_in("queue") == 0


def test_on_commit_names_a_database_alias():
    with pytest.raises(ValueError, match="on_commit must be True, False or"):
        async_task(tasks.add, 1, 2, on_commit="nowhere")
    async_task(tasks.add, 1, 2, on_commit="queue")
    assert queued_in("queue") == 1


def test_the_router_keeps_the_queue_tables_on_the_queue_database():
    router = QueueRouter()
    assert router.db_for_write(Task) == "queue"
    assert router.db_for_read(Execution) is None
    assert router.allow_migrate("queue", "dbqueue") is True
    assert router.allow_migrate("default", "dbqueue") is False
    assert router.allow_migrate("default", "testapp") is None
