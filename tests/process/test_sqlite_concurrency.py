"""SQLite, the embedded default, under its supported load: two workers and a busy writer.

Scenario C-01 of the reliability docs: a qcluster with two workers claims
while this process, playing the web process, commits a transaction per
request that writes a row of its own and enqueues a task, as fast as it
can. SQLite has one writer at a time, so every one of those transactions
contends with the workers' claims and outcomes. Nothing may fail with
"database is locked", no task may run twice (nothing crashed), none may be
lost, and no row may be left RUNNING.
"""

import sys
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from dbqueue import async_task
from dbqueue.models import Status, Task
from tests.conftest import wait_until
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vendor("sqlite"),
    pytest.mark.django_db(transaction=True),
]

REQUESTS = 1000


def test_two_workers_and_a_busy_writer_never_lock_lose_or_repeat(cluster):
    run = cluster("--workers", "2")
    wait_until(
        lambda: run.output().count("started; queues=") == 2,
        timeout=30,
        message="workers started",
    )
    slowest = 0.0
    began = time.monotonic()
    for i in range(REQUESTS):
        start = time.monotonic()
        with transaction.atomic():
            Execution.objects.create(label=f"web:{i}")
            async_task(tasks.record, str(i))
        slowest = max(slowest, time.monotonic() - start)
    enqueued = time.monotonic() - began
    wait_until(
        lambda: not Task.objects.exclude(status=Status.SUCCEEDED).exists(),
        timeout=180,
        message="every task finished",
    )
    drained = time.monotonic() - began
    connection.close()
    run.signal(15)
    assert run.wait(timeout=30) == 0, run.output()
    output = run.output()
    assert "database is locked" not in output, output
    assert "Traceback" not in output, output
    ran = Counter(
        Execution.objects.exclude(label__startswith="web:").values_list(
            "label", flat=True
        )
    )
    assert set(ran) == {str(i) for i in range(REQUESTS)}, "lost tasks"
    twice = [label for label, n in ran.items() if n > 1]
    assert twice == [], [
        (
            t.args,
            t.attempts,
            t.attempt_log,
            list(Execution.objects.filter(label=t.args[0]).values()),
        )
        for t in Task.objects.all()
        if t.args[0] in twice
    ]
    assert Execution.objects.filter(label__startswith="web:").count() == REQUESTS
    assert Task.objects.filter(status=Status.SUCCEEDED, attempts=1).count() == REQUESTS
    assert (
        len(
            set(
                Execution.objects.exclude(label__startswith="web:").values_list(
                    "pid", flat=True
                )
            )
        )
        == 2
    )
    sys.stderr.write(
        f"\nSQLite: {REQUESTS} web transactions in {enqueued:.1f} s (slowest "
        f"{slowest * 1000:.0f} ms) while 2 workers ran them; all done after {drained:.1f} s\n"
    )
