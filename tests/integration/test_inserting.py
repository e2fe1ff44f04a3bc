"""One-row enqueue: fields at their default go into the SQL as literals, and what
is stored is what was built, whichever fields a task leaves at their default."""

import datetime

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dbqueue import api, claiming, models
from dbqueue.claiming import inserting
from dbqueue.models import Status, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

LATER = timezone.now() + datetime.timedelta(hours=1)


def stored_like_built(task: Task) -> None:
    stored = Task.objects.get(pk=task.pk)
    for field in Task._meta.concrete_fields:
        built, read = getattr(task, field.attname), getattr(stored, field.attname)
        assert read == built, field.name


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"queue": "other", "priority": 5, "max_attempts": 1, "save": False},
        {"group": "g", "hook": "tests.testapp.tasks.remember_hook", "timeout": 3},
        {"expires": LATER, "unique_key": "k", "unique_for": 60},
        {"on_orphan": "FAIL", "eta": LATER, "task_name": "named"},
    ],
    ids=["defaults", "queue-priority", "group-hook", "expires-unique", "orphan-eta"],
)
def test_a_built_task_is_stored_as_built_whatever_it_leaves_at_its_default(options):
    task = api.enqueue(tasks.add, (1, 2), **options)
    stored_like_built(task)


def test_a_row_away_from_every_default_is_stored_as_it_is():
    """A row whose state fields are not a new task's (as a copy may be) is stored whole."""
    now = timezone.now()
    task = Task.new(
        name="tests.testapp.tasks.add",
        func="tests.testapp.tasks.add",
        payload=api.build_task(tasks.add, (1, 2)).payload,
        queue="q",
        priority=-7,
        status=Status.FAILED,
        run_after=now,
        attempts=2,
        max_attempts=4,
        keep_result=False,
        group="g",
        chain="[]",
        locked_by="host:1:worker:abc",
        locked_until=now,
        started_at=now,
        finished_at=now,
        result_payload="r",
        error="boom",
        attempt_log=[{"attempt": 1, "error": "boom"}],
        enqueued_at=now,
    )
    claiming.insert(task, using=models.queue_db())
    stored_like_built(task)


def test_fields_at_their_default_are_literals_and_the_rest_parameters():
    connection = connections[models.queue_db()]
    statement = inserting._statement(connection)
    plain_sql, plain = statement.one(api.build_task(tasks.add, (1, 2)), connection)
    other_sql, other = statement.one(
        api.build_task(tasks.add, (1, 2), priority=5, group="g"), connection
    )
    # A new task's state is written in: queued, no attempt, no error...
    assert "'QUEUED'" in plain_sql
    assert len(plain) < len(statement.fields)
    # ...and values away from their default are parameters.
    assert 5 in other
    assert "g" in other
    assert len(other) == len(plain) + 2
    assert other_sql != plain_sql


def test_the_query_log_shows_each_insert():
    connection = connections[models.queue_db()]
    with CaptureQueriesContext(connection) as queries:
        api.enqueue(tasks.add, (1, 2))
    assert sum("INSERT INTO" in q["sql"] for q in queries) == 1


def test_execute_wrappers_see_each_insert():
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    connection = connections[models.queue_db()]
    with connection.execute_wrapper(wrapper):
        api.enqueue(tasks.add, (1, 2))
    assert sum("INSERT INTO" in sql for sql in seen) == 1


def prepared_inserts(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE %s AND NOT from_sql",
            ['%INSERT INTO "dbqueue_task"%'],
        )
        return cursor.fetchone()[0]


@pytest.mark.vendor("postgresql")
def test_the_insert_is_prepared_only_where_the_connection_prepares():
    """Django leaves psycopg's prepare_threshold off; OPTIONS can turn it on."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        pytest.skip("psycopg 2 prepares nothing")
    connection = connections[models.queue_db()]
    connection.ensure_connection()
    assert connection.connection.prepare_threshold is None  # Django's default
    for n in range(6):
        api.enqueue(tasks.add, (n, n))
    assert prepared_inserts(connection) == 0

    connection.connection.prepare_threshold = 2
    try:
        for n in range(3):
            api.enqueue(tasks.add, (n, n))
        assert prepared_inserts(connection) == 1
    finally:
        connection.connection.prepare_threshold = None
        connection.connection.execute("DEALLOCATE ALL")


@pytest.mark.vendor("postgresql")
def test_one_driver_cursor_serves_every_insert_of_a_connection():
    """Made once per connection and kept; a new connection makes its own."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        pytest.skip("psycopg 2 binds on the client")
    connection = connections[models.queue_db()]
    api.enqueue(tasks.add, (1, 2))
    cursor = connection.connection._dbqueue_bound
    api.enqueue(tasks.add, (3, 4))
    assert connection.connection._dbqueue_bound is cursor
    assert not cursor.closed
    assert Task.objects.count() == 2


def test_a_task_with_a_deferred_field_gives_the_same_row_values():
    """Values are read off the instance's __dict__; a deferred field is loaded instead."""
    task = api.enqueue(tasks.add, (1, 2), queue="other")
    connection = connections[models.queue_db()]
    statement = inserting._statement(connection)
    deferred = Task.objects.only("id").get(pk=task.pk)
    assert "queue" not in deferred.__dict__
    assert statement.values(deferred, connection) == statement.values(
        Task.objects.get(pk=task.pk), connection
    )
