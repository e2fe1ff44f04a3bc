import datetime
import threading

import pytest
from django.db import transaction
from django.utils import timezone

from dbqueue import TaskNotFound, async_task, exceptions, fetch, result
from dbqueue.models import Status, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_async_task_stores_a_queued_row_with_defaults():
    task_id = async_task("tests.testapp.tasks.add", 1, b=2)
    task = Task.objects.get(id=task_id)
    assert task.status == Status.QUEUED
    assert task.func == task.name == "tests.testapp.tasks.add"
    assert (task.args, task.kwargs) == ((1,), {"b": 2})
    assert (task.queue, task.priority, task.max_attempts, task.keep_result) == (
        "default",
        0,
        3,
        True,
    )
    assert task.attempts == 0
    assert task.run_after <= timezone.now()


def test_decorator_defaults_apply_and_call_options_win():
    task = Task.objects.get(id=async_task(tasks.send_email, 9))
    assert (task.queue, task.priority, task.max_attempts) == ("emails", 5, 2)
    task = Task.objects.get(id=tasks.send_email.enqueue(9, queue="urgent", priority=-3))
    assert (task.queue, task.priority, task.max_attempts) == ("urgent", -3, 2)


def test_django_q_reserved_options_are_taken_from_kwargs():
    before = timezone.now()
    task_id = async_task(
        tasks.echo,
        1,
        task_name="nightly",
        group="reports",
        hook="tests.testapp.tasks.remember_hook",
        save=False,
        timeout=30,
        countdown=60,
        expires=3600,
        max_attempts=5,
        unique_key="report-1",
        user="ann",
    )
    task = Task.objects.get(id=task_id)
    assert (task.name, task.group, task.hook, task.keep_result, task.timeout) == (
        "nightly",
        "reports",
        "tests.testapp.tasks.remember_hook",
        False,
        30.0,
    )
    assert (task.max_attempts, task.unique_key) == (5, "report-1")
    assert task.kwargs == {"user": "ann"}
    assert task.run_after >= before + datetime.timedelta(seconds=60)
    assert task.expires_at >= before + datetime.timedelta(seconds=3600)


def test_q_options_lets_a_task_take_a_reserved_name_as_its_own_argument():
    task_id = async_task(
        tasks.echo, queue="not-an-option", q_options={"priority": 7, "group": "g"}
    )
    task = Task.objects.get(id=task_id)
    assert task.kwargs == {"queue": "not-an-option"}
    assert (task.priority, task.group, task.queue) == (7, "g", "default")


def test_eta_sets_run_after():
    eta = timezone.now() + datetime.timedelta(days=2)
    assert Task.objects.get(id=async_task(tasks.add, 1, 2, eta=eta)).run_after == eta


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        (
            {"priority": 101},
            ValueError,
            "priority must be a whole number between -100 and 100, got 101.",
        ),
        ({"priority": 1.5}, ValueError, "priority must be a whole number"),
        ({"countdown": -1}, ValueError, "countdown must be a number of seconds >= 0"),
        (
            {"countdown": 1, "eta": timezone.now()},
            ValueError,
            "Give countdown or eta, not both.",
        ),
        (
            {"eta": datetime.datetime(2030, 1, 1)},
            ValueError,
            "eta must be an aware datetime",
        ),
        (
            {"max_attempts": 0},
            ValueError,
            "max_attempts must be a positive integer, got 0.",
        ),
        (
            {"timeout": 0},
            ValueError,
            "timeout must be a positive number of seconds or None",
        ),
        ({"queue": ""}, ValueError, "queue must not be empty"),
        ({"queue": "q" * 65}, ValueError, "queue must be at most 64 characters"),
        ({"save": "yes"}, TypeError, "save must be True or False"),
        (
            {"hook": "nowhere.hook"},
            ValueError,
            "hook 'nowhere.hook' cannot be imported",
        ),
        (
            {"q_options": {"priorty": 1}},
            TypeError,
            "Unknown q_options key(s) 'priorty'",
        ),
    ],
)
def test_bad_options_raise_and_store_nothing(options, error, text):
    with pytest.raises(error) as info:
        async_task(tasks.add, 1, 2, **options)
    assert text in str(info.value)
    assert not Task.objects.exists()


def test_unknown_path_raises_at_enqueue_and_stores_nothing():
    with pytest.raises(
        TaskNotFound, match=r"No task is registered as 'tests\.testapp\.tasks\.ad'"
    ):
        async_task("tests.testapp.tasks.ad", 1, 2)
    with pytest.raises(TaskNotFound, match="not a registered task"):
        async_task("tests.testapp.tasks.plain_function", 1)
    with pytest.raises(TaskNotFound, match="not a function"):
        async_task("tests.testapp.tasks.NOT_A_FUNCTION")
    assert not Task.objects.exists()


def test_unserialisable_argument_raises_type_error_naming_it_and_stores_nothing():
    with pytest.raises(
        TypeError, match=r"Argument 'user_id' of send_email\(\) is a _thread\.lock"
    ):
        async_task(tasks.send_email, threading.Lock())
    assert not Task.objects.exists()


def test_oversized_payload_raises_and_stores_nothing(settings):
    settings.DBQUEUE_MAX_PAYLOAD_SIZE = 1024 * 1024
    with pytest.raises(exceptions.PayloadTooLarge, match="DBQUEUE_MAX_PAYLOAD_SIZE"):
        async_task(tasks.echo, "x" * (5 * 1024 * 1024))
    assert not Task.objects.exists()


def test_enqueue_rolls_back_with_the_callers_transaction():
    def view():
        with transaction.atomic():
            async_task(tasks.add, 1, 2)
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        view()
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_enqueue_commits_with_the_callers_transaction():
    with transaction.atomic():
        task_id = async_task(tasks.add, 1, 2)
    assert Task.objects.filter(id=task_id, status=Status.QUEUED).exists()


def test_sync_mode_runs_the_task_inside_async_task(settings):
    settings.DBQUEUE_SYNC = True
    task_id = async_task(tasks.add, 20, 22)
    assert result(task_id) == 42
    assert fetch(task_id).status == Status.SUCCEEDED


def test_sync_mode_runs_retries_back_to_back_then_dead_letters():
    task_id = async_task(tasks.fail, "always", sync=True, max_attempts=3)
    task = fetch(task_id)
    assert (task.status, task.attempts) == (Status.FAILED, 3)
    assert task.error == "ValueError: always"


def test_fetch_and_result_of_unknown_or_malformed_ids_are_none():
    assert fetch("not-a-uuid") is None
    assert result("01890000-0000-7000-8000-000000000000") is None


def test_result_of_an_unfinished_task_is_none_after_the_wait():
    task_id = async_task(tasks.add, 1, 2)
    assert result(task_id, wait=30) is None
    assert fetch(task_id, wait=30).status == Status.QUEUED


def test_waiting_on_an_id_that_names_no_task_returns_at_once():
    import time

    started = time.monotonic()
    assert fetch("01890000-0000-7000-8000-000000000000", wait=3000) is None
    assert result(async_task(tasks.add, 1, 1, sync=True, save=False), wait=5000) is None
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((1,), {}, "missing a required argument: 'b'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        # A misspelt option lands among the task's own keyword arguments.
        ((1, 2), {"keep_result": False}, "unexpected keyword argument 'keep_result'"),
    ],
)
def test_a_call_the_function_cannot_take_is_refused_at_enqueue(args, kwargs, problem):
    with pytest.raises(TypeError, match=problem) as info:
        async_task(tasks.add, *args, **kwargs)
    assert "tests.testapp.tasks.add()" in str(info.value)
    assert not Task.objects.exists()


def test_a_chain_link_that_takes_the_previous_result_is_checked_with_it():
    from dbqueue import async_chain

    async_chain([(tasks.add, (1, 2)), (tasks.add, (3,), {"pass_result": True})])
    with pytest.raises(TypeError, match="missing a required argument"):
        async_chain([(tasks.add, (1, 2)), (tasks.add, (), {"pass_result": True})])
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    ("good", "bad", "error"),
    [
        # Equal as dict keys (True == 1), but only one of each pair is valid.
        ({"priority": 1}, {"priority": True}, ValueError),
        ({"save": True}, {"save": 1}, TypeError),
        ({"max_attempts": 1}, {"max_attempts": 1.0}, ValueError),
    ],
)
def test_options_are_checked_again_when_equal_to_a_valid_call_but_of_another_type(
    good, bad, error
):
    async_task(tasks.add, 1, 2, **good)
    with pytest.raises(error):
        async_task(tasks.add, 1, 2, **bad)
    assert Task.objects.count() == 1


def test_a_call_that_binds_does_not_let_a_later_one_of_another_arity_through():
    async_task(tasks.add, 1, 2)
    async_task(tasks.add, 1, b=2)
    with pytest.raises(TypeError, match="missing a required argument"):
        async_task(tasks.add, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        async_task(tasks.add, 1, 2, c=3)
    assert Task.objects.count() == 2


def test_a_changed_setting_reaches_the_next_enqueue_of_the_same_call(settings):
    first = Task.objects.get(pk=async_task(tasks.add, 1, 2))
    settings.DBQUEUE_DEFAULT_QUEUE = "elsewhere"
    settings.DBQUEUE_MAX_ATTEMPTS = 7
    second = Task.objects.get(pk=async_task(tasks.add, 1, 2))
    assert (first.queue, first.max_attempts) == ("default", 3)
    assert (second.queue, second.max_attempts) == ("elsewhere", 7)


def test_a_new_task_is_made_through_django_when_something_listens_to_model_init():
    from django.db.models.signals import post_init

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.queue)

    post_init.connect(listener, sender=Task)
    try:
        task_id = async_task(tasks.add, 1, 2, queue="watched")
    finally:
        post_init.disconnect(listener, sender=Task)
    assert seen == ["watched"]
    stored = Task.objects.get(pk=task_id)
    assert stored.queue == "watched"


def test_a_task_made_without_django_init_is_a_normal_unsaved_instance():
    task = Task.new(name="n", func="tests.testapp.tasks.add")
    assert task._state.adding
    assert task._state.db is None
    assert task.status == Status.QUEUED
    assert task.attempt_log == []
    task.save(force_insert=True)
    assert Task.objects.get(pk=task.pk).name == "n"
    with pytest.raises(TypeError, match="no field"):
        Task.new(colour="red")


def test_tasks_from_one_template_share_its_values_and_make_their_own_defaults():
    template = Task.template(name="n", func="tests.testapp.tasks.add", queue="q")
    first = Task.from_template(template, payload="a")
    second = Task.from_template(template, payload="b")
    assert (first.queue, second.queue, first.payload, second.payload) == (
        "q",
        "q",
        "a",
        "b",
    )
    assert first.id != second.id
    assert first.attempt_log == []
    assert first.attempt_log is not second.attempt_log
    assert first._state.adding
    assert first._state.db is None


def test_a_template_refuses_a_name_that_is_not_a_field():
    with pytest.raises(TypeError, match="colour"):
        Task.template(colour="red")
