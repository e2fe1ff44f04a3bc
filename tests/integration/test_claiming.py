"""Claiming on every vendor, proven without timing.

Locks are held on a second connection, inside an open transaction, while the
code under test claims on the default one: SKIP LOCKED must pass over exactly
the locked rows. SQLite has no row locks, so the lock-based cases are for the
server databases; SQLite's single-writer claims are covered by the process tests.
"""

import datetime

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from dbqueue import async_task, claiming
from dbqueue.models import Status, Task
from tests.testapp import tasks


def enqueue(n, **options):
    return [async_task(tasks.add, i, 0, **options) for i in range(n)]


@pytest.mark.django_db
def test_claim_marks_rows_running_with_a_lease_and_counts_the_attempt():
    enqueue(3)
    now = timezone.now()
    claimed = claiming.claim("w1", ["default"], 2, lease=60, now=now)
    assert len(claimed) == 2
    for task in claimed:
        assert (task.status, task.locked_by, task.attempts) == (Status.RUNNING, "w1", 1)
        assert task.locked_until == now + datetime.timedelta(seconds=60)
        stored = Task.objects.get(id=task.id)
        assert (stored.status, stored.locked_by, stored.attempts) == (
            Status.RUNNING,
            "w1",
            1,
        )
    assert Task.objects.queued().count() == 1


@pytest.mark.django_db
def test_claim_order_is_priority_then_run_after_then_enqueue_order():
    now = timezone.now()
    low = async_task(tasks.add, 0, 0, priority=-5)
    first, second = async_task(tasks.add, 1, 0), async_task(tasks.add, 2, 0)
    high = async_task(tasks.add, 3, 0, priority=10)
    earlier = async_task(tasks.add, 4, 0, eta=now - datetime.timedelta(minutes=5))
    order = [str(t.id) for t in claiming.claim("w", None, 10)]
    assert order == [high, earlier, first, second, low]


@pytest.mark.django_db
def test_claim_leaves_future_tasks_and_other_queues():
    future = async_task(tasks.add, 1, 0, countdown=3600)
    other = async_task(tasks.add, 1, 0, queue="emails")
    due = async_task(tasks.add, 1, 0)
    assert [str(t.id) for t in claiming.claim("w", ["default"], 10)] == [due]
    assert Task.objects.get(id=future).status == Status.QUEUED
    assert [str(t.id) for t in claiming.claim("w", None, 10)] == [other]


@pytest.mark.django_db
def test_claim_never_returns_running_or_finished_rows():
    enqueue(2)
    claiming.claim("w1", None, 10)
    assert claiming.claim("w2", None, 10) == []


@pytest.mark.django_db
def test_release_returns_unstarted_tasks_without_spending_an_attempt():
    enqueue(3)
    claimed = claiming.claim("w1", None, 3)
    assert claiming.release(claimed[1:], "w1") == 2
    assert claiming.release(claimed[1:], "someone-else") == 0
    back = Task.objects.queued()
    assert back.count() == 2
    assert {t.attempts for t in back} == {0}


@pytest.mark.vendor("postgresql", "mysql")
def test_claim_skips_a_row_locked_by_another_transaction(second_connection):
    a, b = enqueue(2)
    with transaction.atomic(using=second_connection):
        locked = Task.objects.using(second_connection).select_for_update().get(id=a)
        assert locked.status == Status.QUEUED
        claimed = claiming.claim("w1", None, 10)
        assert [str(t.id) for t in claimed] == [b]
    assert Task.objects.get(id=a).status == Status.QUEUED


@pytest.mark.vendor("postgresql", "mysql")
def test_a_claim_locks_only_the_rows_it_takes(second_connection):
    # On MySQL a locking read with a filesort locks every row it reads, not
    # just the LIMIT it returns; the claim must not (see claiming/mysql.py).
    enqueue(6)
    with transaction.atomic(using=second_connection):
        claimed = claiming.claim("w1", None, 2, using=second_connection)
        with transaction.atomic():
            free = list(
                Task.objects.select_for_update(skip_locked=True)
                .filter(status=Status.QUEUED)
                .order_by("id")
            )
    assert len(claimed) == 2
    assert len(free) == 4
    assert {t.id for t in free}.isdisjoint({t.id for t in claimed})


@pytest.mark.vendor("postgresql", "mysql")
def test_concurrent_claimers_get_disjoint_sets(second_connection):
    enqueue(10)
    with transaction.atomic(using=second_connection):
        # The first claimer's transaction stays open, so its row locks hold
        # while the second one claims.
        first = claiming.claim("w1", None, 4, using=second_connection)
        second = claiming.claim("w2", None, 10)
    assert len(first) == 4
    assert len(second) == 6
    assert {t.id for t in first}.isdisjoint({t.id for t in second})
    assert Task.objects.queued().count() == 0
    assert Task.objects.running().filter(locked_by="w1").count() == 4


@pytest.mark.django_db(transaction=True)
def test_sequential_claimers_get_disjoint_sets_on_every_vendor():
    enqueue(10)
    first = claiming.claim("w1", None, 4)
    second = claiming.claim("w2", None, 10)
    assert {t.id for t in first}.isdisjoint({t.id for t in second})
    assert len(first) + len(second) == 10


@pytest.mark.django_db
@pytest.mark.vendor("postgresql")
def test_claim_reads_the_partial_index_in_order_on_postgresql():
    """With a backlog and a long history of finished rows, the claim walks the partial index, unsorted.

    With only a handful queued, reading them through the (status, finished_at)
    index and sorting them costs the planner about the same, and it picks
    either; a backlog of thousands is where an unordered read would hurt.
    """
    insert = (
        "INSERT INTO dbqueue_task (id, name, func, payload, queue, priority, status, run_after, attempts,"
        ' max_attempts, keep_result, "group", hook, locked_by, enqueued_at, error, attempt_log, result_payload, on_orphan, chain)'
        " SELECT gen_random_uuid(), 'f', 'f', '', 'default', n %% 3, %s, now() - interval '1 minute', 0, 1, true, '', '', '',"
        " now(), '', '[]', '', 'RETRY', '' FROM generate_series(1, %s) AS n"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, ["QUEUED", 5_000])
        cursor.execute(insert, ["SUCCEEDED", 20_000])
        cursor.execute("ANALYZE dbqueue_task")
        cursor.execute(
            "EXPLAIN "
            + claiming.postgresql.CLAIM_SQL.format(
                queue_filter="AND queue = %(queue)s", columns="task.id"
            ),
            {
                "now": timezone.now(),
                "limit": 5,
                "worker_id": "w",
                "locked_until": timezone.now(),
                "queue": "default",
            },
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using dbqueue_task_claim" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.django_db
@pytest.mark.vendor("postgresql")
def test_a_batch_store_finds_its_rows_by_primary_key_on_postgresql():
    """Storing a batch must not read every RUNNING row version through an index on status.

    The store's WHERE re-checks status = 'RUNNING', which the lease index's
    predicate matches, and the statistics say few rows run. Taken that way,
    the UPDATE reads every row version the lease index has gathered since
    the last VACUUM, one per task claimed, dead ones included: in a drain,
    each store read more than the one before. The primary key finds the batch.
    """
    insert = (
        "INSERT INTO dbqueue_task (id, name, func, payload, queue, priority, status, run_after, attempts,"
        ' max_attempts, keep_result, "group", hook, locked_by, enqueued_at, error, attempt_log, result_payload, on_orphan, chain)'
        " SELECT gen_random_uuid(), 'f', 'f', '', 'default', 0, 'SUCCEEDED', now(), 1, 1, true, '', '', '',"
        " now(), '', '[]', '', 'RETRY', '' FROM generate_series(1, 20000) AS n"
    )
    enqueue(50)
    with connection.cursor() as cursor:
        cursor.execute(insert)
        cursor.execute("ANALYZE dbqueue_task")
    rows = []
    for task in claiming.claim("w", ["default"], 50):
        rows.append((task, task.success_fields("w", None)))
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        stored = claiming.postgresql.write_held(connection, "w", rows)
    assert len(stored) == 50
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + statements[0][0], statements[0][1])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "dbqueue_task_pkey" in plan, plan
    assert "dbqueue_task_lease" not in plan, plan
    assert "dbqueue_task_finished" not in plan, plan


def _fields(task):
    return {
        field.attname: getattr(task, field.attname)
        for field in Task._meta.concrete_fields
    }


@pytest.mark.django_db
def test_a_claimed_task_holds_what_the_orm_reads_back():
    enqueue(3, group="g", timeout=5)
    claimed = claiming.claim("w1", ["default"], 3)
    assert len(claimed) == 3
    for task in claimed:
        assert (task._state.adding, task._state.db) == (False, "default")
        assert task.get_deferred_fields() == set()
        assert _fields(task) == _fields(Task.objects.get(pk=task.pk))


@pytest.mark.django_db
def test_a_claimed_tasks_times_are_the_datetimes_django_reads():
    """To the microsecond, in UTC, and naive when USE_TZ is off.

    On PostgreSQL in UTC the claim reads its timestamps as UTC wall-clock
    times and marks them UTC itself, rather than through Django's loader;
    with USE_TZ off it goes back to Django's loader, which makes them naive.
    """
    due = datetime.datetime(2026, 3, 29, 1, 30, 0, 123457, tzinfo=datetime.UTC)
    async_task(tasks.add, 1, 2, eta=due)
    (task,) = claiming.claim("w1", ["default"], 1, now=due)
    stored = Task.objects.get(pk=task.pk)
    assert task.run_after == stored.run_after == due
    assert task.enqueued_at == stored.enqueued_at
    for value in (task.run_after, task.enqueued_at):
        assert value.tzinfo is stored.run_after.tzinfo is datetime.UTC

    async_task(tasks.add, 3, 4, eta=due)
    with override_settings(USE_TZ=False):
        (naive,) = claiming.claim("w1", ["default"], 1, now=due.replace(tzinfo=None))
        stored = Task.objects.get(pk=naive.pk)
    assert naive.run_after == stored.run_after == due.replace(tzinfo=None)
    assert naive.enqueued_at == stored.enqueued_at
    assert naive.enqueued_at.tzinfo is None


@pytest.mark.django_db
def test_a_claim_builds_tasks_through_django_when_something_listens_to_model_init():
    from django.db.models.signals import post_init

    enqueue(2)
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(listener, sender=Task)
    try:
        claimed = claiming.claim("w1", ["default"], 2)
    finally:
        post_init.disconnect(listener, sender=Task)
    assert len(claimed) == 2
    assert {task.pk for task in claimed} <= set(seen)
    for task in claimed:
        assert _fields(task) == _fields(Task.objects.get(pk=task.pk))
