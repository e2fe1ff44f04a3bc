"""qcluster as a user runs it: a real subprocess, real forks, real signals.

Every wait is on a condition with a deadline. Outcomes are counted in a ledger
table that each task writes in its own transaction, so "ran exactly once" is
checked against what actually ran, not against the task rows.
"""

import signal
from collections import Counter

import pytest
from django.db import connection

from dbqueue import async_task
from dbqueue.models import Status, Task
from tests.conftest import wait_until
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TASKS = 2000


def test_two_workers_run_every_task_exactly_once(cluster):
    labels = [str(i) for i in range(TASKS)]
    from dbqueue.api import enqueue

    # A millisecond per task: two seconds of work for each worker, so both
    # take part even when the second one starts late on a loaded machine
    # (a no-op backlog of this size was drained by the first one alone).
    for label in labels:
        enqueue(tasks.sleep_then_record, (label, 0.001))
    run = cluster("--workers", "2", "--burst")
    code = run.wait(timeout=240)
    output = run.output()
    assert code == 0, output
    executions = Counter(Execution.objects.values_list("label", flat=True))
    assert set(executions) == set(labels), (
        f"lost: {len(set(labels) - set(executions))}\n{output}"
    )
    assert [label for label, n in executions.items() if n > 1] == [], output
    assert Task.objects.exclude(status=Status.SUCCEEDED).count() == 0, output
    assert len(set(Execution.objects.values_list("pid", flat=True))) == 2, (
        "both workers took part"
    )
    assert "database is locked" not in output


def test_sigterm_lets_running_tasks_finish_and_exits_zero(cluster):
    slow = [async_task(tasks.slow_record, f"slow-{i}", 1.5) for i in range(2)]
    queued = [async_task(tasks.record, f"later-{i}", countdown=0.5) for i in range(4)]
    run = cluster("--workers", "2")
    # Started, not just claimed: a claimed task that has not started yet is
    # put back on SIGTERM, which is right but not what this test is about.
    wait_until(
        lambda: Execution.objects.filter(label__endswith=":start").count() == 2,
        timeout=20,
        message="both slow tasks started",
    )
    connection.close()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0, run.output()
    assert Task.objects.filter(id__in=slow, status=Status.SUCCEEDED).count() == 2, (
        run.output()
    )
    # Nothing was claimed after the signal, and nothing is left half-done.
    assert Task.objects.filter(id__in=queued, status=Status.QUEUED).count() == 4, (
        run.output()
    )
    assert not Task.objects.filter(status=Status.RUNNING).exists()
    assert "Received SIGTERM" in run.output()


def test_sigint_stops_an_idle_cluster(cluster):
    run = cluster("--workers", "2")
    wait_until(
        lambda: run.output().count("started; queues=") == 2,
        timeout=20,
        message="workers started",
    )
    run.signal(signal.SIGINT)
    assert run.wait(timeout=15) == 0, run.output()


def test_a_task_run_by_the_cluster_stores_its_result_and_traceback(cluster):
    ok = async_task(tasks.add, 20, 22)
    bad = async_task(tasks.fail, "from the cluster", max_attempts=1)
    run = cluster("--workers", "1", "--burst")
    assert run.wait(timeout=60) == 0, run.output()
    assert Task.objects.get(id=ok).result == 42
    failed = Task.objects.get(id=bad)
    assert failed.status == Status.FAILED
    assert "ValueError: from the cluster" in failed.traceback


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1, got 0."),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0."),
        (
            ["--batch-size", "10001"],
            "--batch-size must be at most 10000, got 10001.",
        ),
        (["--queues", ","], "--queues names no queue"),
    ],
)
def test_bad_flags_are_refused_with_the_flag_named(cluster, args, message):
    run = cluster(*args)
    assert run.wait(timeout=30) != 0
    assert message in run.output()


def test_a_misconfiguration_stops_qcluster_before_it_forks(cluster):
    run = cluster("--workers", "1", env={"DBQUEUE_TEST_BAD_SETTING": "1"})
    assert run.wait(timeout=30) != 0
    assert "dbqueue.E002" in run.output()
