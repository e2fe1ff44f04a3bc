"""dbqueue as a backend of Django's Tasks framework (django.tasks / the django_tasks backport).

The checks follow what Django's own tests expect of a backend, in this
project's words: validation at decoration and enqueue, the shape of a
TaskResult before and after a worker ran it, exceptions (SystemExit and
KeyboardInterrupt included), async tasks, the task context, signals and logs.

``settle(result)`` is the hook between enqueue and refresh: for dbqueue it
runs a worker in-process (``Worker.run_once()``) and refreshes the result.
The ``any_backend`` tests run the same assertions on Django's
ImmediateBackend too, as an oracle for the shapes.
"""

import datetime
import importlib.util
import logging
import pickle

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

if (
    importlib.util.find_spec("django.tasks") is None
    and importlib.util.find_spec("django_tasks") is None
):
    pytest.skip("needs Django 6 or the django-tasks backport", allow_module_level=True)

from dbqueue import api, fetch, registry, signals
from dbqueue.backends import DatabaseBackend, DatabaseTask, TaskExpired
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Status, Task
from dbqueue.tasks_compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    default_task_backend,
    task,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from tests.testapp import django_tasks as tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db

ON_DJANGO = importlib.util.find_spec("django.tasks") is not None
PACKAGE = "django.tasks" if ON_DJANGO else "django_tasks"
IMMEDIATE = f"{PACKAGE}.backends.immediate.ImmediateBackend"
LOGGER = PACKAGE  # Django's task logging receivers log here
WORKER_ID = "django-tasks-worker"
BACKEND = "dbqueue.backends.DatabaseBackend"
needs_task_options = pytest.mark.skipif(
    not tasks.TASK_TAKES_OPTIONS, reason="@task takes no extra keywords on Django 6.0"
)


def dbqueue_tasks(**default):
    return override_settings(TASKS={"default": {"BACKEND": BACKEND, **default}})


def run_worker(rounds=20, *, retries_due=True):
    """Run a worker in this process until nothing is due; return the outcomes.

    With `retries_due`, a task queued again after a failed attempt is made
    due at once instead of after its backoff.
    """
    worker = Worker(worker_id=WORKER_ID, queues=["*"], poll_interval=0)
    outcomes = []
    for _ in range(rounds):
        if retries_due:
            Task.objects.filter(status=Status.QUEUED, attempts__gt=0).update(
                run_after=timezone.now()
            )
        done = worker.run_once()
        if not done:
            break
        outcomes.extend(done)
    return outcomes


@pytest.fixture(params=["dbqueue", "immediate"])
def any_backend(request):
    """Yield a `settle(result)` for dbqueue's backend and for Django's ImmediateBackend."""
    if request.param == "dbqueue":

        def settle(result):
            run_worker()
            result.refresh()

        yield settle
        return
    with override_settings(TASKS={"default": {"BACKEND": IMMEDIATE, "QUEUES": []}}):
        yield lambda result: None


@pytest.fixture
def django_signals():
    """Record Django's task signals as (signal name, sender, status, has exc_info)."""
    import sys

    seen = []

    def remember(signal, sender, task_result, **kwargs):
        name = {
            task_enqueued: "enqueued",
            task_started: "started",
            task_finished: "finished",
        }[signal]
        seen.append((name, sender, task_result.status, sys.exc_info()[0] is not None))

    for signal in (task_enqueued, task_started, task_finished):
        signal.connect(remember, weak=False)
    yield seen
    for signal in (task_enqueued, task_started, task_finished):
        signal.disconnect(remember)


# The backend and its validation.


def test_the_backend_supports_all_four_capabilities():
    backend = task_backends["default"]
    assert isinstance(backend, DatabaseBackend)
    assert (
        backend.supports_defer,
        backend.supports_async_task,
        backend.supports_get_result,
        backend.supports_priority,
    ) == (True, True, True, True)
    assert backend.options == {}
    assert backend.check() == []


def test_tasks_are_built_with_the_backends_task_class():
    assert type(tasks.noop) is DatabaseTask
    assert tasks.noop.module_path == "tests.testapp.django_tasks.noop"


def test_an_unknown_queue_is_rejected_and_an_empty_list_accepts_any():
    with pytest.raises(InvalidTask, match=r"Queue 'emails' is not valid for backend\."):
        tasks.noop.using(queue_name="emails")
    with dbqueue_tasks(QUEUES=[]):
        result = tasks.noop.using(queue_name="emails").enqueue()
    assert Task.objects.get(id=result.id).queue == "emails"


def test_a_queue_name_dbqueue_cannot_store_is_rejected():
    with dbqueue_tasks(QUEUES=[]), pytest.raises(InvalidTask, match="1 to 64"):
        tasks.noop.using(queue_name="q" * 65)


@pytest.mark.parametrize("priority", [-101, 101, 1.5])
def test_priority_must_be_a_whole_number_from_minus_100_to_100(priority):
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        tasks.noop.using(priority=priority)


def test_a_whole_float_priority_is_accepted():
    result = tasks.noop.using(priority=3.0).enqueue()
    assert Task.objects.get(id=result.id).priority == 3


def test_a_naive_run_after_is_rejected():
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.noop.using(run_after=datetime.datetime(2030, 1, 1))


def test_takes_context_needs_a_context_parameter():
    def no_context(value):
        return value

    no_context.__qualname__ = "no_context"
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        task(takes_context=True)(no_context)


def test_a_nested_function_is_rejected():
    def nested():
        return None

    with pytest.raises(InvalidTask, match="module level"):
        task(nested)


def test_enqueue_validates_the_task_again_and_bad_calls_store_nothing():
    with dbqueue_tasks(QUEUES=["other"]):
        valid = tasks.noop.using(queue_name="other")
    with pytest.raises(InvalidTask, match="Queue 'other' is not valid"):
        default_task_backend.enqueue(valid, [], {})
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.echo.enqueue(object())
    assert not Task.objects.exists()


@pytest.mark.skipif(
    not (ON_DJANGO and tasks.TASK_TAKES_OPTIONS), reason="Django 6.1 only"
)
def test_run_after_cannot_be_given_to_the_decorator():
    with pytest.raises(TypeError, match="run_after cannot be defined statically"):
        task(run_after=timezone.now())


def test_a_task_pickles_by_its_module_path():
    copy = pickle.loads(pickle.dumps(tasks.noop.using(priority=7, max_attempts=2)))
    assert copy == tasks.noop.using(priority=7, max_attempts=2)
    assert copy.func is tasks.noop.func


# Enqueue.


def test_enqueue_writes_a_json_row_and_returns_a_ready_result():
    result = tasks.echo.enqueue(1, (2, 3), b"x", key="value")
    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (
        None,
        None,
        None,
    )
    assert result.enqueued_at is not None
    assert (result.args, result.kwargs) == ([1, [2, 3], "x"], {"key": "value"})
    assert (result.errors, result.worker_ids, result.attempts) == ([], [], 0)
    assert result.task == tasks.echo
    assert result.backend == "default"
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    row = Task.objects.get(id=result.id)
    assert (row.func, row.queue, row.priority, row.max_attempts, row.keep_result) == (
        "tests.testapp.django_tasks.echo",
        "default",
        0,
        1,
        True,
    )
    assert row.payload.startswith("j:")
    assert row.enqueued_at == result.enqueued_at


def test_get_result_equals_the_result_enqueue_returned():
    result = default_task_backend.enqueue(tasks.noop, [], {})
    assert default_task_backend.get_result(result.id) == result
    assert tasks.noop.get_result(result.id) == result


def test_async_enqueue_and_get_result():
    result = async_to_sync(tasks.noop_async.aenqueue)(1, two=2)
    assert (result.status, result.args, result.kwargs) == (
        TaskResultStatus.READY,
        [1],
        {"two": 2},
    )
    assert async_to_sync(default_task_backend.aget_result)(result.id) == result
    assert async_to_sync(tasks.noop_async.aget_result)(result.id) == result


@pytest.mark.parametrize(
    "result_id", ["123", "", "00000000-0000-0000-0000-000000000000"]
)
def test_an_unknown_or_malformed_id_does_not_exist(result_id):
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(result_id)


def test_a_dbqueue_task_is_not_a_django_result():
    task_id = api.async_task("tests.testapp.tasks.add", 1, 2)
    with pytest.raises(TaskResultDoesNotExist, match=r"dbqueue\.fetch"):
        default_task_backend.get_result(task_id)


def test_a_result_of_another_task_is_a_mismatch():
    result = tasks.noop.enqueue()
    with pytest.raises(TaskResultMismatch):
        tasks.meaning_of_life.get_result(result.id)


def test_enqueue_is_part_of_the_callers_transaction():
    class Rollback(Exception):
        pass

    def enqueue_then_fail():
        with transaction.atomic():
            enqueued.append(tasks.noop.enqueue())
            assert Task.objects.filter(id=enqueued[0].id).exists()
            raise Rollback

    enqueued = []
    with pytest.raises(Rollback):
        enqueue_then_fail()
    [result] = enqueued
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)


def test_enqueue_sends_task_enqueued_with_the_backend_class(django_signals):
    tasks.noop.enqueue()
    assert django_signals == [
        ("enqueued", DatabaseBackend, TaskResultStatus.READY, False)
    ]


def test_a_raising_enqueued_receiver_does_not_undo_the_enqueue():
    def explode(**kwargs):
        raise RuntimeError("receiver bug")

    task_enqueued.connect(explode)
    try:
        result = tasks.noop.enqueue()
    finally:
        task_enqueued.disconnect(explode)
    assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY


def test_sync_mode_runs_the_task_inside_enqueue():
    with override_settings(DBQUEUE_SYNC=True):
        result = tasks.meaning_of_life.enqueue()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        1,
    )


# The worker runs Django tasks; result shapes match ImmediateBackend's.


def test_a_successful_task(any_backend):
    result = tasks.meaning_of_life.enqueue()
    any_backend(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.return_value == 42
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert (result.errors, result.attempts) == ([], 1)


def test_an_async_task(any_backend):
    result = tasks.async_add.enqueue(2, 3)
    any_backend(result)
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 5)


def test_a_return_value_is_normalised_like_json(any_backend):
    result = tasks.returns_a_tuple_and_bytes.enqueue()
    any_backend(result)
    assert result.return_value == {"pair": [1, 2], "data": "bytes"}


@pytest.mark.parametrize(
    ("django_task", "exception", "message"),
    [
        (
            tasks.fails_with_value_error,
            ValueError,
            "This task failed due to ValueError",
        ),
        (
            tasks.fails_with_system_exit,
            SystemExit,
            "This task failed due to SystemExit",
        ),
    ],
)
def test_an_exception_is_captured(any_backend, django_task, exception, message):
    result = django_task.enqueue()
    any_backend(result)
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at is not None
    [error] = result.errors
    assert error.exception_class is exception
    assert error.traceback.endswith(f"{exception.__name__}: {message}\n")
    assert (result.args, result.kwargs, result.attempts) == ([], {}, 1)
    assert result.task == django_task


def test_keyboard_interrupt_raised_by_a_task_fails_the_task_not_the_worker():
    result = tasks.fails_with_keyboard_interrupt.enqueue()
    after = tasks.meaning_of_life.enqueue()
    run_worker()
    result.refresh()
    after.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is KeyboardInterrupt
    assert result.errors[0].traceback.endswith(
        "KeyboardInterrupt: This task failed due to KeyboardInterrupt\n"
    )
    assert after.return_value == 42


def test_a_nested_exception_keeps_its_repr(any_backend):
    result = tasks.fails_with_nested_exception.enqueue()
    any_backend(result)
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback
    assert result.attempts == 1


def test_a_return_value_json_cannot_hold_fails_with_type_error(any_backend):
    result = tasks.returns_a_function.enqueue()
    any_backend(result)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback
    assert result.enqueued_at <= result.started_at <= result.finished_at


def test_the_context_gives_the_attempt_and_the_result(any_backend):
    result = tasks.reads_context.enqueue(value="x")
    any_backend(result)
    seen = result.return_value
    assert (seen["attempt"], seen["id"], seen["status"], seen["value"]) == (
        1,
        result.id,
        TaskResultStatus.RUNNING,
        "x",
    )
    assert seen["worker_ids"] == result.worker_ids


def test_signals_and_logs_follow_djangos_order(any_backend, django_signals, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    result = tasks.meaning_of_life.enqueue()
    any_backend(result)
    assert [(name, status) for name, _, status, _ in django_signals] == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]
    assert len({sender for _, sender, _, _ in django_signals}) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 3, lines
    assert all(result.id in line for line in lines)
    assert "enqueued" in lines[0]
    assert "state=RUNNING" in lines[1]
    assert "state=SUCCESSFUL" in lines[2]


def test_a_failure_is_logged_at_error_with_its_exception(any_backend, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    result = tasks.fails_with_value_error.enqueue()
    any_backend(result)
    [finished] = [
        r for r in caplog.records if r.name == LOGGER and "FAILED" in r.getMessage()
    ]
    assert finished.levelno == logging.ERROR
    assert finished.exc_info is not None
    assert finished.exc_info[0] is ValueError


def test_the_worker_sends_started_and_finished_with_the_backend_class(django_signals):
    tasks.fails_with_value_error.enqueue()
    run_worker()
    assert django_signals == [
        ("enqueued", DatabaseBackend, TaskResultStatus.READY, False),
        ("started", DatabaseBackend, TaskResultStatus.RUNNING, False),
        ("finished", DatabaseBackend, TaskResultStatus.FAILED, True),
    ]


@pytest.mark.parametrize("signal", [task_started, task_finished])
def test_a_raising_receiver_never_changes_the_outcome(signal):
    def explode(**kwargs):
        raise RuntimeError("receiver bug")

    signal.connect(explode)
    try:
        ok = tasks.meaning_of_life.enqueue()
        failing = tasks.fails_with_value_error.enqueue()
        run_worker()
    finally:
        signal.disconnect(explode)
    ok.refresh()
    failing.refresh()
    assert (ok.status, ok.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert failing.status == TaskResultStatus.FAILED
    assert [e.exception_class for e in failing.errors] == [ValueError]


def test_a_running_task_counts_its_own_attempt():
    result = tasks.reads_own_result.enqueue()
    run_worker()
    result.refresh()
    assert result.return_value == {
        "status": TaskResultStatus.RUNNING,
        "attempts": 1,
        "worker_ids": [WORKER_ID],
        "started": True,
        "finished": False,
    }
    assert result.worker_ids == [WORKER_ID]


def test_refresh_reads_what_another_process_wrote():
    result = tasks.meaning_of_life.enqueue()
    run_worker()
    assert (result.status, result.attempts, result.started_at) == (
        TaskResultStatus.READY,
        0,
        None,
    )
    async_to_sync(result.arefresh)()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        1,
    )
    assert result.worker_ids == [WORKER_ID]


def test_higher_priority_runs_first_and_run_after_defers():
    later = tasks.record.using(run_after=timezone.now() + datetime.timedelta(hours=1))
    deferred = later.enqueue("deferred")
    tasks.record.using(priority=-5).enqueue("low")
    tasks.record.enqueue("normal")
    tasks.urgent.enqueue("urgent")
    run_worker()
    assert list(Execution.objects.order_by("id").values_list("label", flat=True)) == [
        "urgent",
        "normal",
        "low",
    ]
    deferred.refresh()
    assert deferred.status == TaskResultStatus.READY
    assert default_task_backend.get_result(deferred.id).task == later


# Retries, options and dbqueue's states.


def test_no_retry_by_default():
    result = tasks.fails_on_first_attempt.enqueue()
    run_worker()
    result.refresh()
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 1)
    assert FailedTask.objects.filter(task_id=result.id).exists()


def test_a_retried_task_is_ready_with_its_error_then_sees_attempt_two():
    with dbqueue_tasks(OPTIONS={"max_attempts": 2}):
        result = tasks.fails_on_first_attempt.enqueue()
        run_worker(rounds=1, retries_due=False)
        result.refresh()
        assert (result.status, result.attempts, result.finished_at) == (
            TaskResultStatus.READY,
            1,
            None,
        )
        assert [e.exception_class for e in result.errors] == [RuntimeError]
        run_worker()
        result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        2,
        2,
    )
    assert result.worker_ids == [WORKER_ID, WORKER_ID]
    assert [e.exception_class for e in result.errors] == [RuntimeError]
    assert result.started_at < result.last_attempted_at < result.finished_at


def test_options_come_from_the_task_then_per_task_then_per_queue_then_backend():
    options = {
        "max_attempts": 2,
        "timeout": 10,
        "queues": {"emails": {"max_attempts": 4}},
        "tasks": {"tests.testapp.django_tasks.record": {"timeout": 60}},
    }
    with dbqueue_tasks(QUEUES=[], OPTIONS=options):
        rows = {
            name: Task.objects.get(id=t.enqueue("x").id)
            for name, t in {
                "backend": tasks.echo,
                "queue": tasks.echo.using(queue_name="emails"),
                "task": tasks.record.using(queue_name="emails"),
                "own": tasks.record.using(max_attempts=7, timeout=1, unique_key="k"),
            }.items()
        }
    got = {name: (r.max_attempts, r.timeout, r.unique_key) for name, r in rows.items()}
    assert got == {
        "backend": (2, 10.0, None),
        "queue": (4, 10.0, None),
        "task": (4, 60.0, None),
        "own": (7, 1.0, "k"),
    }


def test_a_held_unique_key_returns_the_holders_result():
    unique = tasks.record.using(unique_key="one-report")
    first = unique.enqueue("first")
    second = unique.enqueue("second")
    assert second.id == first.id
    assert second.args == ["first"]
    assert Task.objects.filter(unique_key="one-report").count() == 1


@needs_task_options
def test_the_decorator_takes_dbqueue_options():
    task_obj = tasks.with_options
    assert (task_obj.max_attempts, task_obj.timeout, task_obj.unique_key) == (
        3,
        30,
        "nightly-report",
    )
    row = Task.objects.get(id=task_obj.enqueue(1).id)
    assert (row.max_attempts, row.timeout, row.unique_key) == (
        3,
        30.0,
        "nightly-report",
    )
    result = tasks.retried_by_decorator.enqueue()
    run_worker()
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 2)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be a positive integer"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"unique_key": ""}, "unique_key must be a string of 1 to 255"),
    ],
)
def test_bad_task_options_are_invalid(option, message):
    with pytest.raises(InvalidTask, match=message):
        tasks.noop.using(**option)


def test_check_reports_bad_options():
    with dbqueue_tasks(
        QUEUES=["default", "emails"],
        OPTIONS={
            "max_attempt": 2,
            "timeout": 0,
            "queues": {"emails": {"unique_key": "x"}},
            "tasks": [],
        },
    ):
        messages = task_backends["default"].check()
    assert [(m.id, m.msg) for m in messages] == [
        (
            "dbqueue.E102",
            "TASKS['default']['OPTIONS'] has an unknown key 'max_attempt'; "
            "the keys are max_attempts, queues, tasks, timeout.",
        ),
        (
            "dbqueue.E102",
            "TASKS['default']['OPTIONS']: timeout must be a positive number of "
            "seconds or None, got 0.",
        ),
        (
            "dbqueue.E102",
            "TASKS['default']['OPTIONS']['queues']['emails'] has an unknown key "
            "'unique_key'; the keys are max_attempts, timeout.",
        ),
        (
            "dbqueue.E102",
            "TASKS['default']['OPTIONS']['tasks'] must be a dict, got list.",
        ),
    ]


def test_an_expired_task_fails_as_expired_without_running():
    result = tasks.record.enqueue("never")
    Task.objects.filter(id=result.id).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    run_worker()
    result.refresh()
    assert not Execution.objects.exists()
    assert fetch(result.id).status == Status.CANCELLED
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class is TaskExpired
    assert result.errors[-1].traceback.startswith(
        "dbqueue.task_results.TaskExpired: Expired"
    )
    assert result.finished_at is not None


def test_a_cancelled_task_fails_as_cancelled():
    result = tasks.noop.enqueue()
    Task.objects.filter(id=result.id).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "dbqueue.task_results.TaskCancelled"
    assert result.attempts == 0


def test_a_django_task_row_runs_from_a_dbqueue_enqueue_too():
    """Schedules and dead-letter replays make rows by path; they run the same way."""
    assert isinstance(
        registry.resolve("tests.testapp.django_tasks.reads_context"),
        registry.TaskFunction,
    )
    row = api.enqueue("tests.testapp.django_tasks.reads_context", (), {"value": 5})
    assert row.payload.startswith("j:"), "a Django task's rows are JSON however made"
    run_worker()
    assert Task.objects.get(id=row.id).result_payload.startswith("j:")
    result = default_task_backend.get_result(str(row.id))
    assert result.return_value["value"] == 5
    assert result.return_value["attempt"] == 1


def test_dbqueue_signals_still_fire_for_django_tasks():
    seen = []

    def remember(sender, task, **kwargs):
        seen.append(task.func)

    signals.task_finished.connect(remember)
    try:
        tasks.noop.enqueue()
        run_worker()
    finally:
        signals.task_finished.disconnect(remember)
    assert seen == ["tests.testapp.django_tasks.noop"]


def test_check_needs_the_dbqueue_app():
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
        [error] = task_backends["default"].check()
    assert error.id == "dbqueue.E101"
    assert "'dbqueue'" in error.hint


def test_a_pickled_row_of_a_django_task_runs_and_reads_back():
    """A schedule may write its payload with DBQUEUE_SERIALIZER; that works too."""
    row = api.enqueue(
        "tests.testapp.django_tasks.echo", (1, "a"), {"k": [2]}, serializer="pickle"
    )
    run_worker()
    result = default_task_backend.get_result(str(row.id))
    assert (result.status, result.args, result.kwargs) == (
        TaskResultStatus.SUCCESSFUL,
        [1, "a"],
        {"k": [2]},
    )
    assert result.return_value == {"args": [1, "a"], "kwargs": {"k": [2]}}
