"""A task is never lost, and runs twice only when the process running it died.

Real qcluster subprocesses, real SIGKILL/SIGTERM, real timeouts. Leases and
heartbeats are short in tests (tests/settings.py: lease 3 s, heartbeat 0.5 s),
so every wait here is a deadline on a condition, a few seconds long.
"""

import json
import os
import signal
from collections import Counter

import pytest
from django.db import connection

from dbqueue import async_task
from dbqueue.models import FailedTask, Role, Status, Task, Worker
from tests.conftest import wait_until
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def settings_env(**values):
    return {
        f"DBQUEUE_TEST_SET_{name}": json.dumps(value) for name, value in values.items()
    }


def labels():
    return Counter(Execution.objects.values_list("label", flat=True))


def running_worker_pid(task_id):
    """The pid of the worker running `task_id`, from the registry the supervisor keeps."""
    row = Worker.objects.filter(current_task_id=task_id).first()
    return row.pid if row else None


def test_the_registry_shows_the_cluster_and_what_each_worker_runs(cluster):
    task_id = async_task(tasks.slow_record, "shown", 3)
    run = cluster("--workers", "2")
    pid = wait_until(
        lambda: running_worker_pid(task_id),
        timeout=20,
        message="registry shows the running task",
    )
    roles = Counter(Worker.objects.values_list("role", flat=True))
    assert roles == {Role.SUPERVISOR: 1, Role.WORKER: 2, Role.SCHEDULER: 1}
    row = Worker.objects.get(pid=pid)
    assert row.current_task_started_at is not None
    assert row.cluster_id == Worker.objects.get(role=Role.SUPERVISOR).id
    connection.close()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=20) == 0, run.output()
    assert not Worker.objects.exists(), "a stopped cluster leaves no registry rows"


def test_a_task_longer_than_the_lease_runs_once_while_another_cluster_watches(cluster):
    task_id = async_task(tasks.slow_record, "long", 7)  # lease is 3 s in tests
    first = cluster("--workers", "1")
    wait_until(
        lambda: running_worker_pid(task_id), timeout=20, message="long task running"
    )
    second = cluster("--workers", "1")
    wait_until(
        lambda: Task.objects.get(id=task_id).status == Status.SUCCEEDED,
        timeout=30,
        message="long task done",
    )
    assert labels() == {"long:start": 1, "long:finish": 1}, (
        first.output() + second.output()
    )
    assert Task.objects.get(id=task_id).attempts == 1


def test_a_sigkilled_worker_is_replaced_and_its_task_retried_at_once(cluster):
    victim = async_task(tasks.slow_record, "victim", 4, max_attempts=2)
    bystanders = [async_task(tasks.record, f"b{i}", countdown=1) for i in range(5)]
    run = cluster("--workers", "2")
    pid = wait_until(
        lambda: running_worker_pid(victim), timeout=20, message="victim running"
    )
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: Task.objects.get(id=victim).status == Status.SUCCEEDED,
        timeout=30,
        message="victim retried",
    )
    task = Task.objects.get(id=victim)
    assert task.attempts == 2
    assert task.attempt_log[0]["exception_class"] == "dbqueue.exceptions.WorkerLost"
    assert f"pid {pid}" in task.attempt_log[0]["error"]
    assert "signal SIGKILL" in task.attempt_log[0]["error"]
    wait_until(
        lambda: (
            Task.objects.filter(id__in=bystanders, status=Status.SUCCEEDED).count() == 5
        ),
        timeout=20,
    )
    ran = labels()
    assert ran["victim:start"] == 2, ran
    assert ran["victim:finish"] == 1, ran
    assert all(ran[f"b{i}"] == 1 for i in range(5)), ran
    assert "replacing it" in run.output()


@pytest.mark.parametrize("crash", [tasks.die, tasks.segfault])
def test_a_task_that_kills_its_process_is_retried_then_dead_lettered(cluster, crash):
    doomed = async_task(crash, max_attempts=2)
    fine = async_task(tasks.add, 1, 1)
    run = cluster("--workers", "2")
    wait_until(
        lambda: FailedTask.objects.filter(task_id=doomed).exists(),
        timeout=30,
        message="dead-lettered",
    )
    task = Task.objects.get(id=doomed)
    assert (task.status, task.attempts) == (Status.FAILED, 2)
    assert "Worker process died" in task.error
    assert Task.objects.get(id=fine).result == 2
    assert run.process.poll() is None, "the cluster survives its workers' crashes"


def test_on_orphan_fail_dead_letters_after_the_first_death(cluster):
    doomed = async_task(tasks.die, max_attempts=5, on_orphan="fail")
    cluster("--workers", "1")
    wait_until(lambda: FailedTask.objects.filter(task_id=doomed).exists(), timeout=30)
    assert Task.objects.get(id=doomed).attempts == 1
    assert labels()["about to die"] == 1


def test_a_task_past_its_timeout_fails_with_a_timeout_error_and_is_retried(cluster):
    slow = async_task(tasks.sleep_then_record, "never", 30, timeout=1, max_attempts=2)
    other = [async_task(tasks.record, f"o{i}", countdown=0.5) for i in range(3)]
    cluster("--workers", "2")
    wait_until(
        lambda: FailedTask.objects.filter(task_id=slow).exists(),
        timeout=30,
        message="timed out twice",
    )
    task = Task.objects.get(id=slow)
    assert task.attempts == 2
    assert {e["exception_class"] for e in task.attempt_log} == {
        "dbqueue.exceptions.TaskTimeout"
    }
    assert "never" not in labels()
    wait_until(
        lambda: Task.objects.filter(id__in=other, status=Status.SUCCEEDED).count() == 3,
        timeout=20,
    )


def test_a_task_that_ignores_its_timeout_gets_its_worker_killed_and_replaced(cluster):
    stubborn = async_task(tasks.stubborn_sleep, 60, timeout=1, max_attempts=1)
    run = cluster("--workers", "1")
    pid = wait_until(lambda: running_worker_pid(stubborn), timeout=20)
    wait_until(
        lambda: FailedTask.objects.filter(task_id=stubborn).exists(),
        timeout=15,
        message="killed",
    )
    task = Task.objects.get(id=stubborn)
    assert task.error.startswith(
        "TaskTimeout: The task ran past its timeout of 1s; worker pid"
    )
    assert labels()["caught soft timeout"] == 1
    after = async_task(tasks.pid)
    wait_until(
        lambda: Task.objects.get(id=after).status == Status.SUCCEEDED,
        timeout=20,
        message="slot replaced",
    )
    assert Task.objects.get(id=after).result != pid
    assert "killing worker" in run.output()


def test_sigterm_past_the_grace_period_puts_the_task_back_and_a_restart_finishes_it(
    cluster,
):
    task_id = async_task(tasks.slow_record, "deploy", 6, max_attempts=1)
    run = cluster("--workers", "1", env=settings_env(SHUTDOWN_GRACE=1))
    wait_until(lambda: running_worker_pid(task_id), timeout=20)
    connection.close()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0, run.output()
    task = Task.objects.get(id=task_id)
    assert (task.status, task.attempts) == (Status.QUEUED, 0), "interrupted, not failed"
    assert (
        task.attempt_log[-1]["exception_class"]
        == "dbqueue.exceptions.ShutdownInterrupted"
    )
    again = cluster("--workers", "1", "--burst")
    assert again.wait(timeout=30) == 0, again.output()
    assert Task.objects.get(id=task_id).status == Status.SUCCEEDED
    assert labels() == {"deploy:start": 2, "deploy:finish": 1}


def test_a_second_sigterm_stops_now_and_loses_nothing(cluster):
    ids = [async_task(tasks.slow_record, f"busy{i}", 20) for i in range(2)]
    run = cluster("--workers", "2")
    wait_until(
        lambda: Task.objects.filter(status=Status.RUNNING).count() == 2, timeout=20
    )
    connection.close()
    run.signal(signal.SIGTERM)
    wait_until(lambda: "Received SIGTERM" in run.output(), timeout=10)
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=10) == 0, run.output()
    assert not Task.objects.filter(status=Status.RUNNING).exists()
    assert (
        Task.objects.filter(id__in=ids, status=Status.QUEUED, attempts=0).count() == 2
    )


def test_a_whole_cluster_sigkilled_is_rescued_by_another(cluster):
    ids = [async_task(tasks.slow_record, f"t{i}", 2) for i in range(6)]
    doomed = cluster("--workers", "2")
    wait_until(
        lambda: Task.objects.filter(status=Status.RUNNING).count() == 2, timeout=20
    )
    running = set(
        Task.objects.filter(status=Status.RUNNING).values_list("id", flat=True)
    )
    doomed.kill_group()
    rescuer = cluster("--workers", "2")
    wait_until(
        lambda: Task.objects.filter(id__in=ids, status=Status.SUCCEEDED).count() == 6,
        timeout=60,
        message="all tasks finished after the rescue",
    )
    ran = labels()
    assert all(ran[f"t{i}:finish"] == 1 for i in range(6)), ran
    twice = {f"t{i}" for i in range(6) if ran[f"t{i}:start"] > 1}
    running_labels = {Task.objects.get(id=i).args[0] for i in running}
    assert twice <= running_labels, "only tasks running at the kill may run twice"
    rescued = [Task.objects.get(id=i) for i in running]
    assert all(
        t.attempt_log[0]["exception_class"] == "dbqueue.exceptions.WorkerLost"
        for t in rescued
    )
    assert "rescued" in rescuer.output()


def test_workers_are_recycled_after_max_tasks_without_losing_any(cluster):
    ids = [async_task(tasks.pid) for _ in range(6)]
    run = cluster("--workers", "1", "--max-tasks", "2", "--burst")
    assert run.wait(timeout=60) == 0, run.output()
    pids = [Task.objects.get(id=i).result for i in ids]
    assert None not in pids
    assert len(set(pids)) == 3, pids


def test_workers_are_recycled_past_their_memory_limit(cluster):
    ids = [async_task(tasks.pid) for _ in range(3)]
    run = cluster("--workers", "1", "--burst", env=settings_env(MAX_MEMORY_PER_CHILD=1))
    assert run.wait(timeout=60) == 0, run.output()
    assert len({Task.objects.get(id=i).result for i in ids}) == 3
    assert "recycling: resident memory" in run.output()


@pytest.mark.vendor("postgresql")
def test_notify_wakes_an_idle_worker_long_before_its_poll(cluster):
    run = cluster(
        "--workers", "1", env=settings_env(POLL_INTERVAL=60, POLL_INTERVAL_MAX=60)
    )
    wait_until(lambda: "started; queues=" in run.output(), timeout=20)
    warm = async_task(
        tasks.pid
    )  # the worker's first claim happens at start; then it idles
    wait_until(lambda: Task.objects.get(id=warm).status == Status.SUCCEEDED, timeout=10)
    task_id = async_task(tasks.pid)
    wait_until(
        lambda: Task.objects.get(id=task_id).status == Status.SUCCEEDED,
        timeout=10,
        message="a NOTIFY should wake the worker; its poll is 60 s",
    )


@pytest.mark.vendor("postgresql")
def test_connections_killed_by_the_server_lose_nothing(cluster, second_connection):
    from django.db import connections

    ids = [async_task(tasks.slow_record, f"k{i}", 0.2) for i in range(20)]
    run = cluster("--workers", "2")
    wait_until(
        lambda: Task.objects.filter(status=Status.SUCCEEDED).count() >= 3, timeout=20
    )
    with connections[second_connection].cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()
    wait_until(
        lambda: Task.objects.filter(id__in=ids, status=Status.SUCCEEDED).count() == 20,
        timeout=60,
        message="every task finished after the connections were killed",
    )
    ran = labels()
    assert all(ran[f"k{i}:finish"] == 1 for i in range(20)), ran
    assert run.process.poll() is None, run.output()


def test_qcluster_waits_for_an_unreachable_database_and_stops_cleanly(
    cluster, tmp_path
):
    missing = tmp_path / "no-such-dir" / "db.sqlite3"
    name = str(missing) if connection.vendor == "sqlite" else "dbqueue_no_such_database"
    run = cluster("--workers", "1", env={"DBQUEUE_TEST_DATABASE_NAME": name})
    wait_until(
        lambda: run.output().count("is unreachable") >= 2,
        timeout=20,
        message="retrying with backoff",
    )
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=10) == 1
    output = run.output()
    assert "Stopped while waiting for database 'default'." in output
    assert "Traceback" not in output


def test_the_clusters_scheduler_fires_a_due_schedule_and_its_workers_run_it(cluster):
    from dbqueue import schedule

    schedule(tasks.record, "from a schedule", name="once-now")
    run = cluster("--workers", "1")
    wait_until(
        lambda: labels()["from a schedule"] == 1,
        timeout=30,
        message="scheduled task ran",
    )
    assert "and a scheduler" in run.output()


@pytest.mark.vendor("postgresql")
@pytest.mark.skipif(
    os.environ.get("DBQUEUE_TEST_RESTART_POSTGRES") != "1",
    reason="restarts the local PostgreSQL server; set DBQUEUE_TEST_RESTART_POSTGRES=1 (.ci/run does)",
)
def test_a_postgresql_restart_while_the_cluster_works_loses_nothing(cluster):
    import shutil
    import subprocess

    ctl = shutil.which("pg_ctlcluster")
    if ctl is None:
        pytest.skip("pg_ctlcluster is not available to restart the server")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    ids = [async_task(tasks.slow_record, f"r{i}", 0.3) for i in range(30)]
    run = cluster("--workers", "2")
    wait_until(
        lambda: Task.objects.filter(status=Status.SUCCEEDED).count() >= 3, timeout=20
    )
    connection.close()
    subprocess.run(
        [ctl, "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=60,
    )

    def finished():
        try:
            return (
                Task.objects.filter(id__in=ids, status=Status.SUCCEEDED).count() == 30
            )
        except Exception:  # the server is still starting
            connection.close()
            return False

    wait_until(finished, timeout=90, message="every task finished after the restart")
    ran = labels()
    assert all(ran[f"r{i}:finish"] == 1 for i in range(30)), ran
    assert run.process.poll() is None, run.output()
