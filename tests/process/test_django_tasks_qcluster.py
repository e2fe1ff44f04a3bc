"""Django's Tasks API end to end: enqueue here, a real qcluster subprocess runs them.

The worker process has never seen these Task objects: it finds each by the
module path stored on its row, importing the module, whose @task decorators
register the tasks through the backend's validate_task.
"""

import importlib.util

import pytest

if (
    importlib.util.find_spec("django.tasks") is None
    and importlib.util.find_spec("django_tasks") is None
):
    pytest.skip("needs Django 6 or the django-tasks backport", allow_module_level=True)

from dbqueue.tasks_compat import TaskResultStatus, default_task_backend
from tests.testapp import django_tasks as tasks
from tests.testapp.models import Execution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_qcluster_runs_tasks_enqueued_through_the_backend(cluster):
    recorded = tasks.record.enqueue("from-django")
    context = tasks.reads_context.enqueue(value=[1, 2])
    coroutine = tasks.async_add.enqueue(20, 22)
    failing = tasks.fails_with_value_error.enqueue()
    run = cluster("--workers", "1", "--burst")
    assert run.wait(timeout=60) == 0, run.output()
    for result in (recorded, context, coroutine, failing):
        result.refresh()
    output = run.output()
    assert (recorded.status, recorded.return_value) == (
        TaskResultStatus.SUCCESSFUL,
        "from-django",
    ), output
    assert Execution.objects.get().label == "from-django"
    assert context.return_value["attempt"] == 1, output
    assert context.return_value["value"] == [1, 2]
    assert context.return_value["worker_ids"] == context.worker_ids
    assert context.worker_ids[0] != ""
    assert coroutine.return_value == 42, output
    assert failing.status == TaskResultStatus.FAILED, output
    assert failing.errors[0].exception_class is ValueError
    # Read back by id alone, as another web process would.
    again = default_task_backend.get_result(recorded.id)
    assert again.worker_ids == recorded.worker_ids
    assert again.enqueued_at <= again.started_at <= again.finished_at
