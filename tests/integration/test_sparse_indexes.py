"""The group index and the unique_hold constraint hold only grouped and keyed tasks.

On PostgreSQL and SQLite both are partial (migration 0007), so a task with
no group and no unique key writes no entry to either when it is enqueued,
claimed or finished. A partial index serves only a query whose WHERE
implies the index's own, so each query that looks tasks up by group or by
key is captured from the code that sends it, with its parameters bound as
the code binds them, and EXPLAINed (tests/integration/plans.py): it must
not read the whole table. MySQL and MariaDB keep full ones, and the uniqueness tests
(tests/integration/test_unique.py) hold on every vendor.
"""

import re

import pytest
from django.db import connection
from django.urls import reverse

import dbqueue
from dbqueue import groups
from dbqueue.models import Task
from tests.integration.plans import explain, index_definition

pytestmark = pytest.mark.django_db

PARTIAL = pytest.mark.vendor("postgresql", "sqlite")


@pytest.fixture
def tasks():
    for n in range(60):
        dbqueue.async_task(
            "tests.testapp.tasks.add", n, 1, group="g1" if n % 10 == 0 else None
        )
    dbqueue.async_task("tests.testapp.tasks.add", 1, 2, unique_key="the-key")


def scans_the_table(sql: str, params) -> bool:
    """Whether the database's plan for a statement reads the whole task table.

    Another index may serve a statement better than the one it was written
    for (a group's running tasks, through the lease index); what each one
    here must not do is read every task.
    """
    plan = explain(sql, params)
    if connection.vendor == "postgresql":
        return "Seq Scan" in plan
    return re.search(r"\bSCAN dbqueue_task\b", plan) is not None


def sent(run, column: str) -> list[tuple[str, tuple]]:
    """The statements `run()` sends that look rows up by `column`, with their parameters.

    Django records each query's SQL with the parameters quoted into it;
    the driver's own (SQL, parameters) are taken from an execute wrapper.
    """
    seen = []

    def record(execute, sql, params, many, context):
        if sql.startswith(("SELECT", "UPDATE", "DELETE")) and f'"{column}" =' in sql:
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        run()
    return seen


@PARTIAL
def test_tasks_without_a_group_or_a_key_are_left_out_of_both_indexes():
    group = index_definition("dbqueue_task_group")
    unique_hold = index_definition("dbqueue_task_unique_hold")
    if connection.vendor == "postgresql":
        assert group.endswith("""WHERE (NOT (("group")::text = ''::text))""")
        assert unique_hold.startswith("CREATE UNIQUE INDEX")
        assert unique_hold.endswith("WHERE (unique_hold IS NOT NULL)")
    else:
        assert group.endswith("""WHERE NOT ("group" = '')""")
        assert unique_hold.startswith("CREATE UNIQUE INDEX")
        assert unique_hold.endswith('WHERE "unique_hold" IS NOT NULL')


@pytest.mark.vendor("mysql")
def test_mysql_keeps_a_full_unique_constraint_on_the_held_key():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, Task._meta.db_table
        )
    assert constraints["dbqueue_task_unique_hold"]["unique"]
    assert constraints["dbqueue_task_unique_hold"]["columns"] == ["unique_hold"]
    assert constraints["dbqueue_task_group"]["columns"] == ["group"]


@PARTIAL
@pytest.mark.parametrize(
    "read",
    [
        lambda: groups.count_group("g1"),
        lambda: groups.fetch_group("g1"),
        lambda: groups.result_group("g1"),
        lambda: groups.cancel_group("g1"),
    ],
    ids=["count_group", "fetch_group", "result_group", "cancel_group"],
)
def test_a_groups_tasks_are_found_through_the_group_index(tasks, read):
    queries = sent(read, "group")
    assert queries
    for sql, params in queries:
        assert not scans_the_table(sql, params), sql


@PARTIAL
def test_the_admins_group_search_uses_the_group_index(tasks, admin_client):
    url = reverse("admin:dbqueue_task_changelist")
    queries = sent(lambda: admin_client.get(url, {"q": "g1"}), "group")
    assert queries
    for sql, params in queries:
        assert not scans_the_table(sql, params), sql
    response = admin_client.get(url, {"q": "g1"})
    assert response.context["cl"].result_count == 6


@PARTIAL
def test_the_holder_of_a_key_is_found_through_the_unique_index(tasks):
    queries = sent(
        lambda: dbqueue.async_task(
            "tests.testapp.tasks.add", 3, 4, unique_key="the-key", on_conflict="ignore"
        ),
        "unique_hold",
    )
    assert queries
    for sql, params in queries:
        assert not scans_the_table(sql, params), sql
