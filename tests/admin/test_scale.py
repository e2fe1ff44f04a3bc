"""G-03 and issue 7's scale item: list pages never read payloads nor count a whole table.

The 1,000,000-row timings belong to the benchmark; these tests pin the query
shapes that make them possible.
"""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dbqueue import api
from dbqueue.admin import paginator
from dbqueue.models import FailedTask, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

HEAVY = {
    "dbqueue_task": ("payload", "result_payload", "attempt_log", "chain"),
    "dbqueue_failedtask": (
        "payload",
        "traceback",
        "attempt_log",
        "replay_log",
        "chain",
    ),
}


def selected_columns(sql, table):
    """Return the columns of `table` that a SELECT's column list names."""
    head = sql.split(" FROM ", 1)[0]
    quoted = r'["`]?' + table + r'["`]?\.["`]?(\w+)["`]?'
    return set(re.findall(quoted, head))


@pytest.mark.parametrize(
    ("model", "table"), [("task", "dbqueue_task"), ("failedtask", "dbqueue_failedtask")]
)
def test_a_list_page_reads_no_payload_result_or_traceback(
    operator_client, model, table
):
    for n in range(3):
        api.async_task(tasks.echo, "x" * 10_000, n=n)
    for task in Task.objects.all():
        FailedTask.objects.create(
            task_id=task.id,
            name=task.name,
            func=task.func,
            payload=task.payload,
            queue=task.queue,
            enqueued_at=task.enqueued_at,
            traceback="Traceback ...\n" * 500,
        )
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(reverse(f"admin:dbqueue_{model}_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 3
    rows = [q["sql"] for q in queries if table in q["sql"] and "SELECT" in q["sql"]]
    assert any("func" in selected_columns(sql, table) for sql in rows), rows
    for sql in rows:
        assert not selected_columns(sql, table) & set(HEAVY[table]), sql
        assert "x" * 100 not in sql


def test_a_list_page_never_counts_the_whole_table(operator_client):
    for n in range(3):
        api.async_task(tasks.add, n, n)
    with CaptureQueriesContext(connection) as queries:
        operator_client.get(reverse("admin:dbqueue_task_changelist"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts
    for sql in counts:
        assert "LIMIT" in sql.upper(), sql


def test_the_count_is_exact_up_to_the_limit_then_says_more_than(monkeypatch):
    monkeypatch.setattr(paginator, "COUNT_LIMIT", 4)
    for n in range(6):
        api.async_task(tasks.add, n, n)
    queryset = Task.objects.order_by("-id")
    assert (
        paginator.EstimatedCountPaginator(queryset.filter(id__in=first_ids(3)), 2).count
        == 3
    )
    filtered = paginator.EstimatedCountPaginator(
        queryset.filter(func="tests.testapp.tasks.add"), 2
    ).count
    assert str(filtered) == "more than 4"
    assert filtered > 4
    unfiltered = paginator.EstimatedCountPaginator(queryset, 2).count
    # SQLite keeps no row estimate; PostgreSQL and MariaDB may not have one
    # for a table this new (before ANALYZE): both say "more than".
    assert str(unfiltered) in ("more than 4", f"about {int(unfiltered):,}")


def first_ids(count):
    return list(Task.objects.order_by("id").values_list("id", flat=True)[:count])


@pytest.mark.vendor("postgresql", "mysql")
# ANALYZE TABLE commits on MySQL/MariaDB: the test's rows must be flushed, not rolled back.
@pytest.mark.django_db(transaction=True)
def test_an_unfiltered_list_past_the_limit_shows_the_planners_estimate(monkeypatch):
    monkeypatch.setattr(paginator, "COUNT_LIMIT", 4)
    Task.objects.bulk_create(
        [
            Task(
                id=uuid.uuid4(),
                name="t",
                func="tests.testapp.tasks.add",
                payload="",
                enqueued_at=timezone.now(),
            )
            for _ in range(50)
        ]
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE dbqueue_task")
        else:
            cursor.execute("ANALYZE TABLE dbqueue_task")
            cursor.fetchall()
    count = paginator.EstimatedCountPaginator(Task.objects.order_by("-id"), 10).count
    assert str(count).startswith(("about ", "more than "))
    assert count > 4
