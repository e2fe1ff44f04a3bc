"""Each state change of a task is logged once, at its level, by the module that makes it."""

# ruff: noqa: S106 - the fake secrets are the point

from __future__ import annotations

import datetime
import logging

import pytest
from django.test import override_settings
from django.utils import timezone

from dbqueue import api, async_task, cancel, enqueue_many, task_logging
from dbqueue.cluster import heartbeat
from dbqueue.exceptions import WorkerLost
from dbqueue.models import Status, Task
from tests.monitoring.conftest import drain
from tests.testapp import monitoring_tasks, tasks

pytestmark = pytest.mark.django_db

INFO, WARNING, ERROR = logging.INFO, logging.WARNING, logging.ERROR


@pytest.fixture(autouse=True)
def _info(caplog):
    caplog.set_level(logging.INFO)


def about(caplog, task_id):
    """(logger, level, state) of each dbqueue line about this task, in order."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name.startswith("dbqueue") and f"id={task_id} " in message:
            state = (
                message.split("state=", 1)[1].split()[0].rstrip(";")
                if "state=" in message
                else ""
            )
            found.append((record.name, record.levelno, state))
    return found


def test_a_success_is_logged_enqueued_started_succeeded_once_each(caplog, worker):
    task_id = async_task(tasks.add, 1, 2)
    drain(worker)
    assert about(caplog, task_id) == [
        ("dbqueue.api", INFO, "QUEUED"),
        ("dbqueue.cluster.executor", INFO, "RUNNING"),
        ("dbqueue.cluster.executor", INFO, "SUCCEEDED"),
    ]
    [done] = [r for r in caplog.records if "state=SUCCEEDED" in r.getMessage()]
    message = done.getMessage()
    for part in (
        "path=tests.testapp.tasks.add",
        "queue=default",
        "attempt=1/3",
        "duration=",
    ):
        assert part in message
    assert (done.task_id, done.task_func, done.task_queue, done.task_attempt) == (
        task_id,
        "tests.testapp.tasks.add",
        "default",
        1,
    )


def test_a_retry_is_a_warning_and_the_dead_letter_an_error(caplog, worker):
    task_id = async_task(tasks.fail, "nope", max_attempts=2)
    drain(worker)
    assert about(caplog, task_id) == [
        ("dbqueue.api", INFO, "QUEUED"),
        ("dbqueue.cluster.executor", INFO, "RUNNING"),
        ("dbqueue.cluster.executor", WARNING, "QUEUED"),
        ("dbqueue.cluster.executor", INFO, "RUNNING"),
        ("dbqueue.cluster.executor", ERROR, "FAILED"),
    ]
    messages = [
        r.getMessage() for r in caplog.records if f"id={task_id} " in r.getMessage()
    ]
    assert "retry at" in messages[2]
    assert "error=ValueError: nope" in messages[2]
    assert "attempt=2/2" in messages[4]
    assert "dead-letter queue as id=" in messages[4]


def test_at_warning_level_only_the_lines_at_or_above_it_are_logged(caplog, worker):
    """The worker skips building the INFO lines it would drop (qcluster -v 0)."""
    caplog.set_level(logging.WARNING)
    succeeded = async_task(tasks.add, 1, 2)
    failed = async_task(tasks.fail, "nope", max_attempts=2)
    drain(worker)
    assert about(caplog, succeeded) == []
    assert about(caplog, failed) == [
        ("dbqueue.cluster.executor", WARNING, "QUEUED"),
        ("dbqueue.cluster.executor", ERROR, "FAILED"),
    ]


def test_a_discarded_failure_is_a_warning(caplog, worker):
    task_id = async_task(monitoring_tasks.lookup, "k")
    drain(worker)
    assert about(caplog, task_id)[-1] == ("dbqueue.cluster.executor", WARNING, "FAILED")
    assert "discarded" in caplog.records[-1].getMessage()


def test_expired_and_cancelled_tasks_are_logged(caplog, worker):
    expired = async_task(tasks.add, 1, 1, expires=60)
    Task.objects.filter(pk=expired).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    drain(worker)
    withdrawn = async_task(tasks.add, 2, 2, countdown=600)
    assert cancel(withdrawn)
    assert about(caplog, expired)[1:] == [
        ("dbqueue.cluster.executor", INFO, "CANCELLED")
    ]
    assert about(caplog, withdrawn)[1:] == [("dbqueue.models.task", INFO, "CANCELLED")]


def test_rescued_orphans_are_warnings_or_errors_and_interrupted_tasks_info(caplog):
    retried = async_task(tasks.add, 1, 1, max_attempts=2)
    dead = async_task(tasks.add, 2, 2, max_attempts=1)
    put_back = async_task(tasks.add, 3, 3)
    gone = timezone.now() - datetime.timedelta(minutes=5)
    Task.objects.filter(pk__in=[retried, dead]).update(
        status=Status.RUNNING,
        locked_by="lost:1:worker:x",
        locked_until=gone,
        attempts=1,
    )
    Task.objects.filter(pk=put_back).update(
        status=Status.RUNNING, locked_by="w:2:worker:y", attempts=1
    )
    assert heartbeat.rescue_expired() == 2
    assert (
        heartbeat.release(
            "w:2:worker:y",
            WorkerLost("shutdown"),
            kind="interrupted",
            running=str(put_back),
        )
        == 1
    )
    assert about(caplog, retried)[1:] == [
        ("dbqueue.cluster.heartbeat", WARNING, "QUEUED")
    ]
    assert about(caplog, dead)[1:] == [("dbqueue.cluster.heartbeat", ERROR, "FAILED")]
    assert about(caplog, put_back)[1:] == [
        ("dbqueue.cluster.heartbeat", INFO, "QUEUED")
    ]


def test_bulk_enqueue_logs_each_task_once(caplog):
    stored = enqueue_many([(tasks.add, (n, n)) for n in range(3)])
    for task in stored:
        assert about(caplog, task.id) == [("dbqueue.bulk", INFO, "QUEUED")]


def test_arguments_are_not_logged_unless_asked_and_then_redacted(caplog, worker):
    async_task(
        monitoring_tasks.login, "ann-the-user", "hunter2-secret", api_token="tok-secret"
    )
    drain(worker)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "state=SUCCEEDED" in text
    for value in ("ann-the-user", "hunter2-secret", "tok-secret", "args="):
        assert value not in text
    caplog.clear()
    with override_settings(DBQUEUE_LOG_ARGUMENTS=True):
        task_id = async_task(
            monitoring_tasks.login,
            "ann-the-user",
            "hunter2-secret",
            api_token="tok-secret",
        )
        drain(worker)
    lines = [
        r.getMessage() for r in caplog.records if f"id={task_id} " in r.getMessage()
    ]
    shown = [line for line in lines if "args=" in line]
    assert len(shown) == 2, lines  # the enqueued and the started lines
    for line in shown:
        assert "ann-the-user" in line
        assert "[redacted]" in line
        assert "hunter2-secret" not in line
        assert "tok-secret" not in line


def test_a_task_logs_with_its_id_attached(caplog, worker):
    handler = logging.Handler()
    handler.addFilter(task_logging.TaskContextFilter())
    seen = []
    handler.emit = seen.append
    plain = logging.getLogger("tests.testapp.plain")
    plain.addHandler(handler)
    try:
        task_id = async_task(monitoring_tasks.chatty, "job-7")
        drain(worker)
        plain.info("after the task")
    finally:
        plain.removeHandler(handler)
    [own] = [r for r in caplog.records if r.name == "tests.testapp.monitoring_tasks"]
    assert own.getMessage() == f"Working on job-7 task_id={task_id}"
    assert (own.task_id, own.task_func) == (
        task_id,
        "tests.testapp.monitoring_tasks.chatty",
    )
    inside, outside = seen
    assert inside.getMessage() == "Plain line for job-7"
    assert (inside.task_id, inside.task_queue, inside.task_attempt) == (
        task_id,
        "default",
        1,
    )
    assert (outside.task_id, outside.task_func) == ("", "")
    assert task_logging.current() is None
    task_logging.task_logger("tests.outside").info("no task here")
    assert caplog.records[-1].getMessage() == "no task here"


def test_a_sync_task_is_logged_like_a_worker_run(caplog):
    task = api.enqueue(tasks.add, (1, 1), sync=True)
    assert [state for _, _, state in about(caplog, task.id)] == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
    ]


def test_a_task_replaced_by_a_unique_one_is_logged_cancelled(caplog):
    first = api.enqueue(tasks.add, (1, 1), unique_key="nightly", countdown=600)
    second = api.enqueue(tasks.add, (2, 2), unique_key="nightly", on_conflict="replace")
    assert second.id != first.id
    assert about(caplog, first.id)[1:] == [("dbqueue.uniqueness", INFO, "CANCELLED")]
    assert about(caplog, second.id) == [("dbqueue.api", INFO, "QUEUED")]
