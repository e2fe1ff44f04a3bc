"""The finished index holds finished tasks only, and every query of it can still use it.

On PostgreSQL and SQLite ``dbqueue_task_finished`` is partial (WHERE
finished_at IS NOT NULL, migration 0006), so enqueueing and claiming write
no entry to it. The database uses a partial index only for a query whose
WHERE implies the index's own, so each query that reads history is
captured from the code that sends it and EXPLAINed here. On PostgreSQL
sequential scans are turned off first: the plan then shows whether the
index can serve the query at all, whatever this small table's costs say.
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dbqueue import retention, stats
from dbqueue.models import Status, Task
from tests.integration.plans import explain, index_definition

pytestmark = [pytest.mark.django_db, pytest.mark.vendor("postgresql", "sqlite")]


@pytest.fixture(autouse=True)
def history():
    now = timezone.now()
    rows = []
    for n in range(300):
        status = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED)[
            n % 4
        ]
        age = datetime.timedelta(minutes=n)
        rows.append(
            Task(
                name="t",
                func="tests.testapp.tasks.add",
                payload="",
                status=status,
                enqueued_at=now - age,
                run_after=now - age,
                finished_at=None if status == Status.QUEUED else now - age,
            )
        )
    Task.objects.bulk_create(rows)


def reads_of_history(run) -> list[str]:
    """The SELECTs `run()` sends that filter or order on finished_at."""
    with CaptureQueriesContext(connection) as captured:
        run()
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and '"finished_at"' in query["sql"]
    ]


def test_the_finished_index_leaves_out_tasks_without_finished_at():
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, Task._meta.db_table)
    assert indexes["dbqueue_task_finished"]["columns"] == ["status", "finished_at"]
    definition = index_definition("dbqueue_task_finished")
    if connection.vendor == "postgresql":
        assert definition.endswith("WHERE (finished_at IS NOT NULL)")
    else:
        assert definition.endswith('WHERE "finished_at" IS NOT NULL')


def test_retention_reads_the_oldest_finished_rows_from_the_index():
    queries = reads_of_history(
        lambda: retention.prune(
            timezone.now() + datetime.timedelta(days=400), dry_run=True
        )
    )
    assert queries
    for sql in queries:
        assert "dbqueue_task_finished" in explain(sql), sql


def test_the_last_hours_outcomes_are_read_from_the_index():
    queries = reads_of_history(stats.snapshot)
    assert queries
    for sql in queries:
        assert "dbqueue_task_finished" in explain(sql), sql


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "CANCELLED"])
def test_a_finished_status_list_in_the_admin_is_read_from_the_index(
    admin_client, status
):
    url = reverse("admin:dbqueue_task_changelist")
    queries = reads_of_history(lambda: admin_client.get(url, {"status__exact": status}))
    listed = [sql for sql in queries if "ORDER BY" in sql]
    assert listed
    for sql in listed:
        assert "dbqueue_task_finished" in explain(sql), sql
    # Nothing is lost by the added finished_at condition: 75 rows, 50 a page.
    response = admin_client.get(url, {"status__exact": status, "p": "2"})
    rows = response.context["cl"].result_list
    assert len(rows) == 25
    assert {row.status for row in rows} == {status}
