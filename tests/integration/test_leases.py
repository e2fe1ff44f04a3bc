"""A lease counts from when it is stored, is never shortened, and never ends a live worker's task.

Found by the busy-writer test on SQLite (tests/process/test_sqlite_concurrency.py):
a claim or a heartbeat that waited seconds for SQLite's write lock wrote a
lease computed before the wait, already over or shorter than the one in the
row, and the supervisor's next rescue took the task from its own live
worker, which then ran it a second time.
"""

import datetime
import sqlite3
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dbqueue import async_task, claiming
from dbqueue.cluster import heartbeat
from dbqueue.models import Role, Status, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def member(worker_id):
    return heartbeat.Member(worker_id, Role.WORKER, 1, ["default"])


@pytest.mark.vendor("sqlite")
def test_a_claim_that_waited_for_the_write_lock_gets_a_whole_lease():
    async_task(tasks.add, 1, 1)
    path = connection.settings_dict["NAME"]
    locked = threading.Event()

    def hold_the_write_lock():
        # Another writer (the web process), on its own connection and thread.
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(1.5)
            other.execute("COMMIT")
        finally:
            other.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert locked.wait(10)
    asked = timezone.now()
    [task] = claiming.claim("w1", ["default"], 1, lease=1)
    holder.join()
    stored = Task.objects.get(id=task.id)
    # Counted from when the claim got the lock (1.5 s later), not from `asked`.
    assert stored.locked_until >= asked + datetime.timedelta(seconds=2.4)
    assert stored.locked_until == task.locked_until


def test_a_late_heartbeat_never_shortens_a_lease():
    task_id = async_task(tasks.add, 1, 1)
    [task] = claiming.claim("w1", ["default"], 1, lease=1)
    stale = timezone.now() - datetime.timedelta(seconds=30)
    assert heartbeat.beat("c1", [member("w1")], now=stale) == 1
    assert Task.objects.get(id=task_id).locked_until == task.locked_until
    later = timezone.now() + datetime.timedelta(seconds=30)
    heartbeat.beat("c1", [member("w1")], now=later)
    assert Task.objects.get(id=task_id).locked_until > task.locked_until


def test_a_supervisor_never_rescues_the_task_of_its_own_live_worker():
    mine = async_task(tasks.add, 1, 1)
    theirs = async_task(tasks.add, 2, 2)
    claiming.claim("mine", ["default"], 1, lease=0)
    claiming.claim("theirs", ["default"], 1, lease=0)
    later = timezone.now() + datetime.timedelta(seconds=1)
    assert heartbeat.rescue_expired(now=later, alive=["mine"]) == 1
    assert Task.objects.get(id=mine).status == Status.RUNNING
    rescued = Task.objects.get(id=theirs)
    assert (rescued.status, rescued.attempt_log[-1]["worker_id"]) == (
        Status.QUEUED,
        "theirs",
    )


def test_after_an_outage_a_supervisor_waits_a_lease_before_rescuing_others():
    """Back from an outage longer than the lease, every lease has run out.

    The first supervisor back must not take the tasks of clusters that are
    alive but not yet back, which would run them twice (seen in the chaos
    run when a PostgreSQL restart took longer than the lease).
    """
    from dbqueue.cluster.supervisor import Supervisor

    task_id = async_task(tasks.add, 1, 1)
    claiming.claim("other-cluster-worker", ["default"], 1, lease=0)
    clock = [1000.0]
    supervisor = Supervisor(workers=1, scheduler=False, clock=lambda: clock[0])
    supervisor._db_down = True  # its last beat failed: the database was away
    supervisor._beat()
    assert Task.objects.get(id=task_id).status == Status.RUNNING
    clock[0] += 1.0  # the next heartbeat, well within a lease
    supervisor._beat()
    assert Task.objects.get(id=task_id).status == Status.RUNNING
    clock[0] += float(settings.DBQUEUE_LEASE)  # the other cluster had its chance
    supervisor._beat()
    assert Task.objects.get(id=task_id).status == Status.QUEUED


def test_a_heartbeat_registers_a_process_whose_row_is_missing():
    # A worker forked while the database was down never got its row, and
    # heartbeats only updated rows: it stayed invisible to qinfo and the
    # dashboard while it ran tasks.
    from dbqueue.models import Worker

    heartbeat.register("c1", member("w1"))
    Worker.objects.all().delete()
    heartbeat.beat("c1", [member("w1"), member("w2")])
    assert sorted(Worker.objects.values_list("id", "cluster_id")) == [
        ("w1", "c1"),
        ("w2", "c1"),
    ]
