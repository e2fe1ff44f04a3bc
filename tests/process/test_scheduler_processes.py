"""Several real scheduler processes sharing one database, and one killed mid-firing.

Each child is a plain ``python -c`` that sets Django up with tests.settings
and runs ``Scheduler().run()`` with the stop handler the qcluster supervisor
installs, exactly as a cluster's scheduler process will. Waits are on
conditions with deadlines; outputs are attached to failures.
"""

import datetime
import os
import signal
import time

import pytest
from django.db import connection
from django.utils import timezone

from dbqueue import schedule
from dbqueue.models import RunOutcome, Schedule, ScheduleRun, Task
from tests.conftest import wait_until
from tests.testapp import tasks

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCHEDULERS = 3
DUE_TIMES = 20  # one per second: a seconds-level cron for about 20 s

RUN_SCHEDULER = """
import logging, sys
import django
django.setup()
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
from dbqueue.cluster import shutdown
from dbqueue.cluster.scheduler import Scheduler
scheduler = Scheduler(sync_declared=False)
shutdown.on_stop(scheduler.stop)
sys.exit(scheduler.run())
"""

# The same, but the first firing stops between the enqueue (and the run record)
# and the commit, says so, and waits to be killed: a crash in the worst place.
CRASH_BEFORE_COMMIT = """
import sys, time
import django
django.setup()
from dbqueue.cluster.scheduler import Scheduler
from dbqueue.models import Schedule

def hang(self, **kwargs):
    print("crash point reached", flush=True)
    time.sleep(3600)

Schedule.record_firing = hang
sys.exit(Scheduler(sync_declared=False).run())
"""


@pytest.fixture
def start(python_child):
    """Start a `python -c code` child (tests/conftest.py's Child)."""
    return lambda code: python_child("-c", code)


def outputs(children):
    return "\n".join(
        f"--- child pid={c.process.pid} ---\n{c.output()}" for c in children
    )


def test_three_schedulers_fire_each_second_of_a_cron_schedule_exactly_once(start):
    first = (timezone.now() + datetime.timedelta(seconds=3)).replace(microsecond=0)
    schedule(tasks.add, 1, 2, name="every-second", cron="* * * * * *", next_run=first)
    children = [start(RUN_SCHEDULER) for _ in range(SCHEDULERS)]
    wait_until(
        lambda: all("started; interval=" in c.output() for c in children),
        timeout=30,
        message=f"schedulers started\n{outputs(children)}",
    )
    wait_until(
        lambda: ScheduleRun.objects.count() >= DUE_TIMES,
        timeout=DUE_TIMES + 30,
        message=f"{DUE_TIMES} due seconds fired\n{outputs(children)}",
    )
    connection.close()
    for child in children:
        assert child.stop() == 0, outputs(children)

    fired = list(ScheduleRun.objects.order_by("due_at"))
    per_scheduler = {
        by: sum(r.fired_by == by for r in fired) for by in {r.fired_by for r in fired}
    }
    report = f"due times fired per scheduler: {per_scheduler}\n{outputs(children)}"
    due = [run.due_at for run in fired]
    # One run per due second, none skipped between the first and the last.
    assert due[0] == first, report
    assert due == [first + datetime.timedelta(seconds=i) for i in range(len(due))], (
        report
    )
    assert {run.outcome for run in fired} == {RunOutcome.ENQUEUED}, report
    # ...and exactly one task per run: no task was left by a rolled-back firing.
    assert Task.objects.count() == len(fired), report
    assert len({run.task_id for run in fired}) == len(fired), report
    assert set(Task.objects.values_list("id", flat=True)) == {
        run.task_id for run in fired
    }


def test_a_scheduler_killed_between_claim_and_commit_leaves_nothing_behind(start):
    due = timezone.now().replace(microsecond=0)
    schedule(tasks.add, 1, 2, name="daily", schedule_type="daily", next_run=due)
    crashing = start(CRASH_BEFORE_COMMIT)
    wait_until(
        lambda: "crash point reached" in crashing.output(),
        timeout=30,
        message=f"the firing reached the crash point\n{crashing.output()}",
    )
    crashing.kill_group()  # SIGKILL: no cleanup, the transaction is simply cut off
    assert Task.objects.count() == 0, crashing.output()
    assert ScheduleRun.objects.count() == 0
    assert Schedule.objects.get().next_run == due

    healthy = start(RUN_SCHEDULER)
    wait_until(
        lambda: ScheduleRun.objects.exists(),
        timeout=30,
        message=f"the restarted scheduler fired\n{healthy.output()}",
    )
    connection.close()
    assert healthy.stop() == 0, healthy.output()
    assert [run.due_at for run in ScheduleRun.objects.all()] == [due]
    assert Task.objects.count() == 1
    assert Schedule.objects.get().next_run == due + datetime.timedelta(days=1)


def test_three_qclusters_fire_and_run_each_second_of_a_cron_schedule_once(cluster):
    """The issue's check: several whole clusters (workers and schedulers) share one schedule.

    About 15 s here; `make test-long` runs it for two minutes
    (DBQUEUE_TEST_SCHEDULE_SECONDS=120).
    """
    from tests.testapp.models import Execution

    seconds = int(os.environ.get("DBQUEUE_TEST_SCHEDULE_SECONDS", "15"))
    first = (timezone.now() + datetime.timedelta(seconds=3)).replace(microsecond=0)
    schedule(tasks.record, "tick", name="tick", cron="* * * * * *", next_run=first)
    clusters = [cluster("--workers", "1") for _ in range(3)]
    report = lambda: "\n".join(f"--- cluster {c.pid}\n{c.output()}" for c in clusters)  # noqa: E731
    wait_until(
        lambda: ScheduleRun.objects.count() >= seconds,
        timeout=seconds + 60,
        message=f"{seconds} due seconds fired\n{report()}",
    )
    # Stop the schedule and let the workers drain what it enqueued, then stop.
    Schedule.objects.filter(name="tick").update(enabled=False)
    wait_until(
        lambda: not Task.objects.exclude(status="SUCCEEDED").exists(),
        timeout=60,
        message=f"every tick ran\n{report()}",
    )
    connection.close()
    for run in clusters:
        run.signal(signal.SIGTERM)
    for run in clusters:
        assert run.wait(timeout=30) == 0, report()
    fired = list(ScheduleRun.objects.order_by("due_at"))
    due = [run.due_at for run in fired]
    assert due == [first + datetime.timedelta(seconds=i) for i in range(len(due))], (
        report()
    )
    assert {run.outcome for run in fired} == {RunOutcome.ENQUEUED}, report()
    assert len({run.fired_by for run in fired}) >= 2, (
        "more than one cluster's scheduler fired"
    )
    # Every enqueued tick ran exactly once; none is left behind.
    assert Execution.objects.filter(label="tick").count() == len(fired), report()
    assert Task.objects.exclude(status="SUCCEEDED").count() == 0, report()


def test_one_run_per_second_while_one_of_three_qclusters_is_killed_and_restarted(
    cluster,
):
    """Schedules under fault: a cluster SIGKILLed (scheduler, workers and all) every few seconds.

    Each due second must still give exactly one task, whichever scheduler
    fired it, and a firing cut off by the kill must leave nothing behind.
    About 20 s here; `make test-long` runs it for two minutes.
    """
    from tests.testapp.models import Execution

    seconds = int(os.environ.get("DBQUEUE_TEST_SCHEDULE_SECONDS", "15"))
    first = (timezone.now() + datetime.timedelta(seconds=3)).replace(microsecond=0)
    schedule(tasks.record, "tick", name="tick", cron="* * * * * *", next_run=first)
    steady = [cluster("--workers", "1") for _ in range(2)]
    victims = [cluster("--workers", "1")]
    report = lambda: "\n".join(  # noqa: E731
        f"--- cluster {c.pid}\n{c.output()}" for c in steady + victims
    )
    while ScheduleRun.objects.count() < seconds:
        victim = victims[-1]
        wait_until(
            lambda: "started; interval=" in victim.output(),  # noqa: B023
            timeout=30,
            message=f"the victim's scheduler started\n{report()}",
        )
        # Let it take part in a few firings; vary where in a second the kill lands.
        time.sleep(0.5 + 0.37 * (len(victims) % 4))
        victim.kill_group()
        victims.append(cluster("--workers", "1"))
    assert len(victims) >= 3, "the victim was killed and restarted repeatedly"
    Schedule.objects.filter(name="tick").update(enabled=False)
    wait_until(
        lambda: not Task.objects.exclude(status="SUCCEEDED").exists(),
        timeout=60,
        message=f"every tick ran\n{report()}",
    )
    fired = list(ScheduleRun.objects.order_by("due_at"))
    due = [run.due_at for run in fired]
    # One run per due second, none skipped and none twice, across the kills.
    assert due == [first + datetime.timedelta(seconds=i) for i in range(len(due))], (
        report()
    )
    assert {run.outcome for run in fired} == {RunOutcome.ENQUEUED}, report()
    assert Task.objects.count() == len(fired), "one task per due time, no leftovers"
    assert set(Task.objects.values_list("id", flat=True)) == {r.task_id for r in fired}
    # Each tick ran once, or once more where a kill hit the worker running it.
    lost_workers = sum(
        entry.get("exception_class") == "dbqueue.exceptions.WorkerLost"
        for task in Task.objects.all()
        for entry in task.attempt_log
    )
    ran = Execution.objects.filter(label="tick").count()
    assert len(fired) <= ran <= len(fired) + lost_workers, report()
