"""Bulk enqueue: every call validated first, then one COPY (PostgreSQL) or multi-row INSERTs."""

import datetime
import math
import time

import pytest
from django.db import connections, transaction
from django.dispatch import receiver
from django.test.utils import CaptureQueriesContext

from dbqueue import async_task, bulk, enqueue_many, models, result, signals
from dbqueue.claiming import inserting
from dbqueue.cluster.worker import Worker
from dbqueue.exceptions import SerializationError, TaskNotFound
from dbqueue.models import Status, Task
from tests.conftest import run_all
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def inserts(queries):
    """The statements that wrote task rows: a COPY on PostgreSQL, INSERTs elsewhere."""
    return [
        q
        for q in queries
        if "INSERT INTO" in q["sql"].upper() or q["sql"].upper().startswith("COPY")
    ]


def expected_statements(count):
    """One COPY on PostgreSQL; elsewhere INSERTs of BATCH_ROWS, fewer where the vendor limits parameters."""
    connection = connections[models.queue_db()]
    if connection.vendor == "postgresql":
        return 1
    fields = Task._meta.concrete_fields
    batch = connection.ops.bulk_batch_size(fields, [Task()] * count)
    return math.ceil(count / min(batch, inserting.BATCH_ROWS))


def test_a_hundred_calls_are_stored_with_as_few_inserts_as_the_vendor_allows():
    connection = connections[models.queue_db()]
    with CaptureQueriesContext(connection) as queries:
        stored = enqueue_many([(tasks.add, (n, n)) for n in range(100)])
    assert len(inserts(queries)) == expected_statements(100)
    assert Task.objects.count() == len(stored) == 100


@pytest.mark.vendor("postgresql", "mysql")
def test_a_hundred_calls_are_one_statement():
    with CaptureQueriesContext(connections[models.queue_db()]) as queries:
        enqueue_many([(tasks.add, (n, n)) for n in range(100)])
    assert len(inserts(queries)) == 1


@pytest.mark.vendor("sqlite", "mysql")
def test_a_large_batch_is_split_into_statements_of_insert_rows(monkeypatch):
    monkeypatch.setattr(inserting, "BATCH_ROWS", 10)
    with CaptureQueriesContext(connections[models.queue_db()]) as queries:
        enqueue_many([(tasks.add, (n, n)) for n in range(25)])
    assert len(inserts(queries)) == expected_statements(25) == 3
    assert Task.objects.count() == 25


def test_tasks_keep_the_order_of_the_calls():
    stored = enqueue_many([(tasks.square, (n,)) for n in range(30)], group="g")
    assert len({task.enqueued_at for task in stored}) == 1
    rows = Task.objects.filter(group="g").order_by("enqueued_at", "id")
    assert [row.args for row in rows] == [(n,) for n in range(30)]
    assert [row.id for row in rows] == [task.id for task in stored]


def test_every_call_format_is_accepted():
    stored = enqueue_many(
        [
            tasks.pid,
            "tests.testapp.tasks.pid",
            (tasks.pid,),
            (tasks.square, [3]),
            (tasks.echo, (1,), {"b": 2}),
            (tasks.echo, None, {"queue": "q"}),
            (tasks.echo, (), {"q_options": {"priority": 3}, "queue": "an argument"}),
        ]
    )
    rows = {row.id: row for row in Task.objects.all()}
    got = [
        (rows[t.id].func.rpartition(".")[2], rows[t.id].args, rows[t.id].kwargs)
        for t in stored
    ]
    assert got == [
        ("pid", (), {}),
        ("pid", (), {}),
        ("pid", (), {}),
        ("square", (3,), {}),
        ("echo", (1,), {"b": 2}),
        ("echo", (), {}),
        ("echo", (), {"queue": "an argument"}),
    ]
    assert (rows[stored[5].id].queue, rows[stored[6].id].priority) == ("q", 3)


def test_a_calls_own_options_override_the_shared_ones():
    first, second = enqueue_many(
        [(tasks.add, (1, 2)), (tasks.add, (3, 4), {"queue": "fast"})],
        queue="slow",
        priority=4,
    )
    assert (first.queue, first.priority, second.queue, second.priority) == (
        "slow",
        4,
        "fast",
        4,
    )


@pytest.mark.parametrize(
    ("calls", "options", "error", "message"),
    [
        (
            [(tasks.add, (1, 2))] * 56 + [("tests.testapp.tasks.nope",)],
            {},
            TaskNotFound,
            "nope",
        ),
        (
            [(tasks.add, (1, 2)), (tasks.echo, (lambda: 1,))],
            {},
            SerializationError,
            "echo",
        ),
        ([(tasks.add, (1, 2))], {"priority": 101}, ValueError, "priority"),
        ([(tasks.add, (1, 2))], {"unique_key": "k"}, ValueError, "async_task"),
        (
            [(tasks.add, (1, 2), {"unique_key": "k"})],
            {},
            ValueError,
            "call 1 of enqueue_many",
        ),
        ([(tasks.add, (1, 2), {"sync": True})], {}, ValueError, "whole batch"),
        ([(tasks.add, 1)], {}, TypeError, "tuple or a list"),
        ([()], {}, TypeError, "has 0 items"),
        ([(tasks.add, (1,), [])], {}, TypeError, "must be a dict"),
        (
            [(tasks.add, (1,), {"q_options": {"nope": 1}})],
            {},
            TypeError,
            "Unknown q_options",
        ),
    ],
)
def test_bad_input_stores_nothing(calls, options, error, message):
    received = []

    def remember(sender, task, **kwargs):
        received.append(task)

    signals.task_enqueuing.connect(remember)
    try:
        with pytest.raises(error, match=message):
            enqueue_many(calls, **options)
    finally:
        signals.task_enqueuing.disconnect(remember)
    assert not Task.objects.exists()
    assert received == []


def test_the_error_names_the_bad_call():
    calls = [(tasks.add, (1, 2))] * 56 + ["tests.testapp.tasks.nope"]
    with pytest.raises(TaskNotFound) as raised:
        enqueue_many(calls)
    assert raised.value.__notes__ == ["In call 57 of enqueue_many()."]


def test_signals_are_sent_for_each_task_around_the_insert():
    seen = []

    @receiver(signals.task_enqueuing, weak=False)
    def before(sender, task, **kwargs):
        seen.append(("enqueuing", task.args, Task.objects.filter(id=task.id).exists()))

    @receiver(signals.task_enqueued, weak=False)
    def after(sender, task, **kwargs):
        seen.append(("enqueued", task.args, Task.objects.filter(id=task.id).exists()))

    try:
        enqueue_many([(tasks.square, (1,)), (tasks.square, (2,))])
    finally:
        signals.task_enqueuing.disconnect(before)
        signals.task_enqueued.disconnect(after)
    assert seen == [
        ("enqueuing", (1,), False),
        ("enqueuing", (2,), False),
        ("enqueued", (1,), True),
        ("enqueued", (2,), True),
    ]


@pytest.mark.vendor("postgresql")
@pytest.mark.django_db(transaction=True)
def test_workers_are_woken_once_per_queue_with_a_due_task(listener):
    enqueue_many(
        [
            (tasks.add, (1, 2), {"queue": "a"}),
            (tasks.add, (1, 2), {"queue": "b"}),
            (tasks.add, (1, 2), {"queue": "a"}),
            (tasks.add, (1, 2), {"queue": "later", "countdown": 60}),
            (tasks.add, (1, 2), {"queue": "later", "countdown": 30}),
        ]
    )
    heard = listener()
    assert heard[:2] == [("dbqueue", "a"), ("dbqueue", "b")]
    [(channel, payload)] = heard[2:]
    when, queue = payload.split(" ")
    assert (channel, queue) == ("dbqueue_later", "later")
    assert float(when) == pytest.approx(time.time() + 30, abs=5)


@pytest.mark.vendor("postgresql")
@pytest.mark.django_db(transaction=True)
def test_a_batch_rolled_back_wakes_nobody(listener):
    with transaction.atomic():
        enqueue_many([(tasks.add, (1, 2))] * 3)
        transaction.set_rollback(True)
    async_task(tasks.add, 1, 2, queue="after")
    assert listener() == [("dbqueue", "after")]


def test_no_calls_store_nothing():
    with CaptureQueriesContext(connections[models.queue_db()]) as queries:
        assert enqueue_many([]) == []
    assert len(queries) == 0


def test_bulk_tasks_run_like_any_other():
    stored = enqueue_many([(tasks.add, (n, 1)) for n in range(3)])
    worker = Worker(
        worker_id="bulk-worker", queues=["*"], batch_size=10, poll_interval=0
    )
    assert len(run_all(worker)) == 3
    assert [result(task.id) for task in stored] == [1, 2, 3]
    assert set(Task.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}


def test_sync_runs_every_task_before_returning():
    stored = enqueue_many([(tasks.add, (n, 1)) for n in range(3)], sync=True)
    assert [result(task.id) for task in stored] == [1, 2, 3]


def test_text_with_copy_escapes_is_stored_as_given():
    # COPY's text format escapes tabs, newlines and backslashes (PostgreSQL).
    awkward = "tab\there\nnewline \\N back\\slash, 'quote' \"dq\" é ✓"
    [task] = enqueue_many(
        [(tasks.add, (1, 2), {"task_name": awkward, "group": awkward})]
    )
    stored = Task.objects.get(id=task.id)
    assert (stored.name, stored.group) == (awkward, awkward)
    assert stored.args == (1, 2)
    assert stored.status == Status.QUEUED
    assert stored.attempt_log == []


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"queue": "other", "priority": -5, "max_attempts": 1, "save": False},
        {"group": "g", "hook": "tests.testapp.tasks.remember_hook", "timeout": 3},
        {"timeout": 2.5, "countdown": 30, "expires": 600, "on_orphan": "FAIL"},
    ],
    ids=["defaults", "queue-priority", "group-hook-int-timeout", "times"],
)
@pytest.mark.parametrize("count", [3, bulk.STREAMED_FROM], ids=["small", "streamed"])
def test_each_row_is_stored_as_built(options, count):
    """What the batch wrote (in COPY's binary format on PostgreSQL, and built while
    COPY ran from STREAMED_FROM calls) reads back field for field."""
    built = enqueue_many([(tasks.add, (n, 1)) for n in range(count)], **options)
    for task in built:
        stored = Task.objects.get(pk=task.pk)
        for field in Task._meta.concrete_fields:
            value = getattr(task, field.attname)
            assert getattr(stored, field.attname) == value, field.name


@pytest.mark.vendor("postgresql")
def test_the_rows_go_in_copys_binary_format():
    connection = connections[models.queue_db()]
    with CaptureQueriesContext(connection) as queries:
        enqueue_many([(tasks.add, (1, 2))] * 3)
    [copy] = inserts(queries)
    assert "(FORMAT BINARY)" in copy["sql"]


def test_calls_that_share_their_options_get_their_own_id_and_attempt_log():
    first, second = enqueue_many([(tasks.add, (1, 2)), (tasks.add, (3, 4))])
    assert first.id != second.id
    assert first.attempt_log == second.attempt_log == []
    assert first.attempt_log is not second.attempt_log
    assert (first.args, second.args) == ((1, 2), (3, 4))


def test_an_option_equal_to_an_accepted_one_but_of_another_type_is_still_refused():
    """priority=True == 1, yet only 1 is a priority: the options checked once per batch
    are told apart by type as well as value."""
    calls = [
        (tasks.add, (1, 2), {"priority": 1}),
        (tasks.add, (1, 2), {"priority": True}),
    ]
    with pytest.raises(ValueError, match="priority must be a whole number") as raised:
        enqueue_many(calls)
    assert raised.value.__notes__ == ["In call 2 of enqueue_many()."]
    assert not Task.objects.exists()


def test_a_countdown_counts_from_the_start_of_the_batch():
    tasks_ = enqueue_many([(tasks.add, (n, 1), {"countdown": 60}) for n in range(3)])
    assert {task.run_after for task in tasks_} == {
        tasks_[0].enqueued_at + datetime.timedelta(seconds=60)
    }


class CountsTasksWhenPickled:
    """An argument that reads the queue's table while it is serialised."""

    def __reduce__(self):
        return (int, (Task.objects.count(),))


class SwallowsARefusedQuery:
    """The same, with the project's code hiding the error of its query."""

    def __reduce__(self):
        try:
            count = Task.objects.count()
        except Exception:
            count = -1
        return (int, (count,))


@pytest.mark.parametrize("argument", [CountsTasksWhenPickled, SwallowsARefusedQuery])
def test_an_argument_that_reads_the_database_is_serialised_before_the_rows_are_written(
    argument,
):
    """On PostgreSQL the rows are written while the batch is built, and no query can
    share the connection with that COPY: such a batch is built first, then written."""
    calls = [(tasks.echo, (n,)) for n in range(bulk.STREAMED_FROM)]
    stored = enqueue_many([*calls, (tasks.echo, (argument(),))])
    assert [Task.objects.get(pk=task.pk).args for task in stored] == [
        *((n,) for n in range(bulk.STREAMED_FROM)),
        (0,),
    ]


def test_calls_from_a_lazy_queryset_are_read_before_any_row_is_written():
    count = bulk.STREAMED_FROM
    enqueue_many([(tasks.add, (1, 1))] * count)
    calls = ((tasks.add, (0, 1)) for _ in Task.objects.iterator(chunk_size=1))
    assert len(enqueue_many(calls)) == count
    assert Task.objects.count() == 2 * count


@pytest.mark.django_db(transaction=True)
def test_a_bad_call_leaves_the_callers_transaction_usable():
    """The rows written before the bad call are undone, and only they."""
    with transaction.atomic():
        kept = async_task(tasks.add, 1, 2)
        with pytest.raises(TaskNotFound):
            enqueue_many(
                [(tasks.add, (1, 2))] * bulk.STREAMED_FROM
                + ["tests.testapp.tasks.nope"]
            )
        other = async_task(tasks.add, 3, 4)
    assert {str(pk) for pk in Task.objects.values_list("pk", flat=True)} == {
        kept,
        other,
    }
