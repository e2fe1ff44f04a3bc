"""The operations commands, run in-process: qinfo, qmonitor, qhealth, qpurge, and progress.

Each is tried as a new user would: the right arguments and the wrong ones,
whose refusal must name the flag and change nothing. The same commands
against a real running qcluster are in tests/process/test_ops_process.py.
"""

from __future__ import annotations

import datetime
import io
import json
import socket
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from dbqueue import (
    api,
    claiming,
    health,
    models,
    monitor,
    overview,
    purging,
    stats,
    validation,
)
from dbqueue.cluster import heartbeat
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, QueueState, Role, Status, Task
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()[:255]


@pytest.fixture(autouse=True)
def _fresh_paused_cache():
    claiming.forget_paused()
    yield
    claiming.forget_paused()


def run(command, *args, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def register_cluster(pid=4242, *, seen_ago=0.0, task=None, host=None):
    """Register a supervisor and one worker as a cluster on this host would."""
    cluster_id = f"{host or HOST}:{pid}:cluster:abc123"
    heartbeat.register(
        cluster_id,
        heartbeat.Member(cluster_id, Role.SUPERVISOR, pid, ["default", "emails"]),
    )
    worker_id = f"{host or HOST}:{pid + 1}:worker:def456"
    heartbeat.register(
        cluster_id,
        heartbeat.Member(
            worker_id,
            Role.WORKER,
            pid + 1,
            ["default", "emails"],
            current_task_id=str(task.id) if task else None,
            current_task_started_at=timezone.now() if task else None,
            tasks_done=7,
        ),
    )
    models.Worker.objects.filter(cluster_id=cluster_id).update(
        last_seen=timezone.now() - datetime.timedelta(seconds=seen_ago),
        **({"host": host} if host else {}),
    )
    return cluster_id


def busy_queue():
    """Tasks in every state: 2 due, 1 later, 1 running, 1 succeeded, 1 failed (dead letter)."""
    api.async_task(tasks.add, 1, 2)
    Worker(worker_id="w", queues=["default"], poll_interval=0).run_once()
    api.async_task(tasks.fail, "boom", max_attempts=1)
    Worker(worker_id="w", queues=["default"], poll_interval=0).run_once()
    running = api.async_task(tasks.add, 3, 4, queue="emails")
    claiming.claim("test-holder", ["emails"], 1)
    api.async_task(tasks.add, 5, 6, queue="emails")
    api.async_task(tasks.add, 7, 8, queue="emails")
    api.async_task(tasks.add, 9, 9, queue="emails", countdown=600)
    return Task.objects.get(id=running)


# qinfo.


def test_qinfo_shows_clusters_workers_queues_and_throughput():
    running = busy_queue()
    QueueState.set_paused("emails", True, by="alice")
    cluster_id = register_cluster(task=running)
    register_cluster(pid=9000, seen_ago=3600)
    out, _ = run("qinfo")
    assert "Clusters: 1 live, 1 stale" in out
    assert f"id {cluster_id}" in out
    assert f"{HOST} pid 4242  queues default,emails" in out
    assert "running tests.testapp.tasks.add for " in out
    assert str(running.id) in out
    assert "done 7" in out
    assert f"STALE {HOST} pid 9000" in out
    lines = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line[:2] == "  " and line.split()
    }
    # name, [paused], queued, due, later, running, lag, succeeded, failed, fail%, dead
    assert lines["emails"][1:7] == ["[paused]", "3", "2", "1", "1", lines["emails"][6]]
    assert lines["default"][1:5] == ["0", "0", "0", "0"]
    assert lines["default"][6:] == ["1", "1", "50.0%", "1"]
    assert "Paused: emails" in out
    assert "Last 5 minutes: 1 succeeded, 1 failed (50.0% failed)" in out


def test_qinfo_json_has_the_same_figures_for_scripts():
    running = busy_queue()
    register_cluster(task=running)
    out, _ = run("qinfo", "--json", "--minutes=2")
    data = json.loads(out)
    [cluster] = data["clusters"]
    assert (cluster["host"], cluster["pid"], cluster["stale"]) == (HOST, 4242, False)
    [process] = cluster["processes"]
    assert process["current_task"]["id"] == str(running.id)
    assert process["current_task"]["func"] == "tests.testapp.tasks.add"
    queues = {queue["name"]: queue for queue in data["queues"]}
    emails = queues["emails"]
    assert (emails["queued"], emails["due"], emails["waiting"], emails["running"]) == (
        3,
        2,
        1,
        1,
    )
    assert emails["lag_seconds"] >= 0
    assert queues["default"]["dead_letters"] == 1
    assert data["recent"]["minutes"] == 2
    assert (data["recent"]["succeeded"], data["recent"]["failed"]) == (1, 1)
    assert data["recent"]["failure_rate"] == 0.5
    assert data["paused_queues"] == []
    assert data["database"]["alias"] == "default"


def test_qinfo_says_how_to_start_a_cluster_when_none_runs():
    out, _ = run("qinfo")
    assert "No cluster has registered. Start one with: python manage.py qcluster" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--minutes=0"], "--minutes must be a whole number from 1 to 60, got '0'."),
        (["--minutes=61"], "--minutes must be a whole number from 1 to 60, got '61'."),
        (["--minutes=x"], "--minutes must be a whole number from 1 to 60, got 'x'."),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_qinfo_refuses_bad_arguments_naming_the_flag(args, message):
    with pytest.raises(CommandError) as error:
        run("qinfo", *args)
    assert message in str(error.value)


# stats, as the commands and the dashboard read it.


def test_snapshot_groups_clusters_and_sums_the_recent_minutes():
    busy_queue()
    live = register_cluster()
    dead = register_cluster(pid=9000, seen_ago=3600)
    snapshot = stats.snapshot()
    clusters = {cluster.id: cluster for cluster in snapshot.clusters}
    assert not clusters[live].is_stale
    assert clusters[dead].is_stale
    assert len(clusters[live].children) == 1
    recent = snapshot.recent(1)
    assert (recent.succeeded, recent.failed) == (1, 1)
    assert recent.per_minute > 0
    assert snapshot.max_lag().name == "emails"
    with pytest.raises(ValueError, match="minutes must be 1 to 60"):
        snapshot.recent(0)


def test_max_lag_leaves_out_paused_queues_unless_asked():
    busy_queue()
    QueueState.set_paused("emails", True)
    snapshot = stats.snapshot()
    assert snapshot.max_lag() is None
    assert snapshot.max_lag(paused=True).name == "emails"


# qmonitor.


def test_qmonitor_prints_successive_frames_when_not_on_a_terminal():
    busy_queue()
    out, _ = run("qmonitor", "--interval=0.1", "--count=3")
    frames = out.split(monitor.SEPARATOR)
    assert len(frames) == 3
    assert all("Queues" in frame and "emails" in frame for frame in frames)
    assert "\x1b" not in out


def test_the_monitor_redraws_in_place_on_a_terminal():
    out = io.StringIO()
    drawn = monitor.Monitor(out, interval=0.1, count=2, tty=True).run()
    assert drawn == 2
    text = out.getvalue()
    assert text.startswith(monitor.HOME + monitor.CLEAR_SCREEN)
    assert text.count(monitor.HOME) == 2
    assert text.count(monitor.CLEAR_SCREEN) == 1
    assert "Refreshing every 0.1s; Ctrl-C to stop." in text


def test_the_monitor_shows_a_database_error_and_keeps_going():
    from django.db import OperationalError

    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly\nmore")
        return overview.read(**kwargs)

    out = io.StringIO()
    monitor.Monitor(out, interval=0.1, count=2, tty=False, read=flaky).run()
    first, second = out.getvalue().split(monitor.SEPARATOR)
    assert "unreachable: server closed the connection unexpectedly" in first
    assert "Trying again in 0.1s." in first
    assert "Queues" in second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--interval=0"],
            "--interval must be a number of seconds of at least 0.1, got '0'.",
        ),
        (
            ["--interval=nan"],
            "--interval must be a number of seconds of at least 0.1, got 'nan'.",
        ),
        (
            ["--interval=soon"],
            "--interval must be a number of seconds of at least 0.1, got 'soon'.",
        ),
        (["--count=0"], "--count must be a whole number of at least 1, got '0'."),
        (["--minutes=99"], "--minutes must be a whole number from 1 to 60, got '99'."),
    ],
)
def test_qmonitor_refuses_bad_arguments_naming_the_flag(args, message):
    with pytest.raises(CommandError) as error:
        run("qmonitor", *args)
    assert str(error.value) == message


# qhealth.


def qhealth(*args):
    """Run qhealth; return its exit status and its one line."""
    out = io.StringIO()
    try:
        call_command("qhealth", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue().strip()
    return 0, out.getvalue().strip()


def test_liveness_passes_while_a_cluster_on_this_host_heartbeats():
    cluster_id = register_cluster()
    code, line = qhealth("--liveness")
    assert code == 0
    assert line.startswith(
        f"OK: database 'default' reachable; cluster {cluster_id} heartbeat"
    )
    assert qhealth("--liveness", "--cluster=4242")[0] == 0
    assert qhealth("--liveness", f"--cluster={cluster_id}")[0] == 0


def test_liveness_fails_without_a_cluster_on_this_host():
    register_cluster(host="another-host")
    code, line = qhealth("--liveness")
    assert code == 1
    assert line == (
        f"UNHEALTHY: no cluster on host {HOST!r} is registered; "
        "database 'default' reachable."
    )
    code, line = qhealth("--liveness", "--cluster=1")
    assert code == 1
    assert f"no cluster pid 1 on host {HOST!r} is registered" in line


@override_settings(DBQUEUE_LEASE=30)
def test_liveness_fails_once_the_heartbeat_is_older_than_a_lease():
    register_cluster(seen_ago=31)
    code, line = qhealth("--liveness")
    assert code == 1
    assert "last heartbeat 31s ago, more than DBQUEUE_LEASE (30s)" in line
    # A newer cluster on the same host (the restarted container) is what counts.
    register_cluster(pid=5000)
    assert qhealth("--liveness")[0] == 0


def test_readiness_fails_when_a_queue_lags_past_the_limit():
    api.async_task(tasks.add, 1, 2, queue="emails")
    Task.objects.update(run_after=timezone.now() - datetime.timedelta(seconds=120))
    code, line = qhealth("--readiness", "--max-lag=60")
    assert code == 1
    assert line.startswith(
        "UNHEALTHY: queue 'emails' lags 2m00s, over the 1m00s limit;"
    )
    assert qhealth("--readiness", "--max-lag=600")[0] == 0
    assert qhealth("--readiness", "--max-lag=60", "--queues=default")[0] == 0
    with override_settings(DBQUEUE_HEALTH_MAX_LAG=60):
        assert qhealth("--readiness")[0] == 1
    with override_settings(DBQUEUE_HEALTH_MAX_LAG=None):
        code, line = qhealth("--readiness")
        assert (code, line) == (
            0,
            "OK: database 'default' reachable; lag not checked "
            "(DBQUEUE_HEALTH_MAX_LAG is None).",
        )


def test_readiness_leaves_paused_queues_out_of_the_lag():
    api.async_task(tasks.add, 1, 2, queue="emails")
    Task.objects.update(run_after=timezone.now() - datetime.timedelta(seconds=120))
    QueueState.set_paused("emails", True)
    code, line = qhealth("--readiness", "--max-lag=60")
    assert code == 0
    assert "no due task is waiting outside paused queues" in line


def test_a_running_or_future_task_is_no_lag():
    api.async_task(tasks.add, 1, 2, countdown=3600)
    api.async_task(tasks.add, 1, 2, queue="emails")
    Task.objects.filter(queue="emails").update(
        run_after=timezone.now() - datetime.timedelta(seconds=120)
    )
    claiming.claim("holder", ["emails"], 1)
    assert qhealth("--readiness", "--max-lag=1")[0] == 0


def test_qhealth_checks_both_by_default_and_prints_json():
    register_cluster()
    out = io.StringIO()
    call_command("qhealth", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["healthy"] is True
    assert [check["name"] for check in data["checks"]] == ["database", "cluster", "lag"]
    assert data["reason"].startswith("OK: ")


def test_health_reports_an_unreachable_database_in_one_line(monkeypatch):
    from django.db import OperationalError, connections

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused\nIs the server running?")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    report = health.check()
    assert not report.healthy
    assert report.line() == (
        "UNHEALTHY: database 'default' is unreachable: connection refused."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--readiness", "--cluster=1"],
            "--cluster picks whose heartbeat --liveness checks",
        ),
        (["--liveness", "--max-lag=5"], "--max-lag applies to the readiness check"),
        (["--liveness", "--queues=a"], "--queues applies to the readiness check"),
        (
            ["--max-lag=-1"],
            "--max-lag must be a number of seconds of at least 0, got '-1'.",
        ),
        (
            ["--max-lag=inf"],
            "--max-lag must be a number of seconds of at least 0, got 'inf'.",
        ),
        (["--queues=,"], "--queues names no queue"),
        (["--queues=" + "q" * 65], "--queues: queue must be at most 64 characters"),
        (["--cluster= "], "--cluster must be a pid or a cluster id"),
        (["--cluster=a\x00b"], "--cluster must not contain NUL"),
        (["--liveness", "--readiness"], "not allowed with argument --liveness"),
    ],
)
def test_qhealth_refuses_bad_arguments_with_status_2(args, message):
    with pytest.raises(CommandError) as error:
        call_command("qhealth", *args, stdout=io.StringIO())
    assert message in str(error.value)
    if "not allowed" not in message:  # argparse's own errors exit 2 from the shell
        assert error.value.returncode == 2


# qpurge.


def make_queued(count, *, queue="default", func=tasks.add, age=0.0):
    ids = [api.async_task(func, 1, 2, queue=queue) for _ in range(count)]
    if age:
        Task.objects.filter(id__in=ids).update(
            enqueued_at=timezone.now() - datetime.timedelta(seconds=age)
        )
    return ids


def test_qpurge_deletes_only_matching_queued_tasks_in_batches():
    running = api.async_task(tasks.add, 1, 1, queue="emails")
    claiming.claim("holder", ["emails"], 1)
    succeeded = api.async_task(tasks.add, 1, 1, queue="emails")
    Worker(worker_id="w", queues=["emails"], poll_interval=0).run_once()
    assert Task.objects.get(id=running).status == Status.RUNNING
    assert Task.objects.get(id=succeeded).status == Status.SUCCEEDED
    make_queued(5, queue="emails")
    make_queued(2, queue="emails", func=tasks.echo)
    make_queued(3, queue="default")
    out, err = run(
        "qpurge",
        "--queue=emails",
        "--func=tests.testapp.tasks.add",
        "--yes",
        "--batch-size=2",
    )
    assert out.strip() == (
        "Deleted 5 queued tasks (queue='emails', func='tests.testapp.tasks.add') "
        "in 3 batches."
    )
    remaining = Task.objects.filter(queue="emails", status=Status.QUEUED)
    assert (
        list(remaining.values_list("func", flat=True))
        == ["tests.testapp.tasks.echo"] * 2
    )
    assert Task.objects.filter(queue="default", status=Status.QUEUED).count() == 3
    # The running and the finished task are untouched.
    assert Task.objects.get(id=running).status == Status.RUNNING
    assert Task.objects.get(id=succeeded).status == Status.SUCCEEDED
    assert err.startswith("Deleting queued tasks: 2/5 (40%)")


def test_qpurge_counts_batches_and_what_it_deleted():
    make_queued(5, queue="emails")
    out, _ = run("qpurge", "--queue=emails", "--yes", "--batch-size=2")
    assert out.strip() == "Deleted 5 queued tasks (queue='emails') in 3 batches."
    assert not Task.objects.exists()


def test_qpurge_older_than_spares_younger_tasks():
    old = make_queued(2, age=7200)
    young = make_queued(2, age=60)
    out, _ = run("qpurge", "--older-than=3600", "--yes")
    assert "Deleted 2 queued tasks (enqueued more than 1h00m ago) in 1 batch." in out
    assert set(Task.objects.values_list("id", flat=True)) == {
        uuid.UUID(str(i)) for i in young
    }
    assert not Task.objects.filter(id__in=old).exists()


def test_qpurge_dry_run_counts_by_queue_and_function_and_deletes_nothing():
    make_queued(3, queue="emails")
    make_queued(1, queue="emails", func=tasks.echo)
    make_queued(2, queue="default")
    out, _ = run("qpurge", "--all", "--dry-run")
    assert out.splitlines() == [
        "          3  queue 'emails'  tests.testapp.tasks.add",
        "          2  queue 'default'  tests.testapp.tasks.add",
        "          1  queue 'emails'  tests.testapp.tasks.echo",
        "Dry run: would delete 6 queued tasks (all queues). Nothing was deleted.",
    ]
    out, _ = run("qpurge", "--queue=emails", "--dry-run", "--json")
    data = json.loads(out)
    assert (data["dry_run"], data["matched"], data["deleted"]) == (True, 4, 0)
    assert data["filters"] == {"queue": "emails"}
    assert {(g["func"], g["count"]) for g in data["groups"]} == {
        ("tests.testapp.tasks.add", 3),
        ("tests.testapp.tasks.echo", 1),
    }
    assert Task.objects.count() == 6


def test_qpurge_asks_first_and_a_no_or_no_answer_deletes_nothing(monkeypatch):
    make_queued(2)
    for answer in ("n\n", "", "whatever\n"):
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        err = io.StringIO()
        with pytest.raises(CommandError, match=r"Not confirmed; nothing was deleted\."):
            call_command("qpurge", "--all", stdout=io.StringIO(), stderr=err)
        assert (
            "Delete 2 queued tasks (all queues)? This cannot be undone. [y/N]"
            in err.getvalue()
        )
        if not answer:
            assert "pass --yes to delete without asking" in err.getvalue()
    assert Task.objects.count() == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    out, _ = run("qpurge", "--all")
    assert out.startswith("Deleted 2 queued tasks")
    assert not Task.objects.exists()


def test_qpurge_json_reports_the_outcome():
    make_queued(3)
    out, _ = run("qpurge", "--all", "--no-input", "--json")
    assert json.loads(out) == {
        "dry_run": False,
        "filters": {},
        "matched": 3,
        "deleted": 3,
        "batches": 1,
    }


def test_purge_leaves_tasks_enqueued_after_it_started():
    make_queued(2)
    started = timezone.now()
    later = make_queued(1)
    Task.objects.filter(id__in=later).update(
        enqueued_at=started + datetime.timedelta(seconds=1)
    )
    report = purging.purge(purging.matching(now=started))
    assert (report.matched, report.deleted) == (2, 2)
    assert list(Task.objects.values_list("id", flat=True)) == [uuid.UUID(str(later[0]))]


def test_purge_refuses_a_batch_size_out_of_range():
    for size in (0, validation.MAX_BATCH_SIZE + 1, True, 2.0):
        with pytest.raises(ValueError, match="batch_size must be a whole number"):
            purging.purge(purging.matching(), batch_size=size)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "Give a filter (--queue, --func, --older-than), or --all to delete every queued task.",
        ),
        (["--all", "--queue=emails"], "Give filters or --all, not both."),
        (["--queue="], "--queue must name something, got ''."),
        (["--func= "], "--func must name something, got ' '."),
        (["--queue=a\x00b"], "--queue must not contain NUL"),
        (["--func=\udcff"], "--func"),
        (
            ["--older-than=-1"],
            "--older-than must be a number of seconds of at least 0, got '-1'.",
        ),
        (
            ["--older-than=1h"],
            "--older-than must be a number of seconds of at least 0, got '1h'.",
        ),
        (
            ["--all", "--batch-size=0"],
            "--batch-size must be a whole number from 1 to 10000, got '0'.",
        ),
        (["--all", "--batch-size=--"], "--batch-size needs a value, got '--'."),
    ],
)
def test_qpurge_refuses_bad_arguments_and_deletes_nothing(args, message):
    make_queued(2)
    with pytest.raises(CommandError) as error:
        run("qpurge", "--yes", *args)
    assert message in str(error.value)
    assert Task.objects.count() == 2


# Progress of qprune and qreplay (on stderr; their stdout is unchanged).


def test_qprune_shows_progress_on_stderr(capsys):
    ids = make_queued(3)
    Task.objects.filter(id__in=ids).update(
        status=Status.SUCCEEDED,
        finished_at=timezone.now() - datetime.timedelta(days=30),
    )
    call_command("qprune", "--succeeded-older-than=60", "--batch-size=1")
    captured = capsys.readouterr()
    assert "Deleted 3 succeeded tasks older than 1 minute." in captured.out
    assert captured.err.startswith("Pruning: 1/3 (33%)")
    assert captured.err.rstrip().splitlines()[-1].startswith("Pruning: 3/3 (100%)")
    call_command("qprune", "--succeeded-older-than=60", "-v0")
    assert capsys.readouterr() == ("", "")


def test_qreplay_shows_progress_on_stderr():
    for _ in range(3):
        api.async_task(tasks.fail, "boom", max_attempts=1)
    Worker(worker_id="w", queues=["*"], poll_interval=0).run(burst=True)
    assert FailedTask.objects.count() == 3
    out, err = run("qreplay", "--all", "--batch-size=2")
    assert "Replayed 3, skipped 0" in out
    assert err.startswith("Replaying failed tasks: 2/3 (67%)")
    assert (
        err.rstrip().splitlines()[-1].startswith("Replaying failed tasks: 3/3 (100%)")
    )


@pytest.mark.parametrize("value", [0, -5, "300", float("nan")])
def test_a_bad_health_max_lag_is_a_system_check_error(value):
    from dbqueue import checks

    with override_settings(DBQUEUE_HEALTH_MAX_LAG=value):
        errors = [e for e in checks.check_settings() if "HEALTH_MAX_LAG" in e.msg]
    assert [error.id for error in errors] == ["dbqueue.E002"]
    assert errors[0].msg.startswith(
        "DBQUEUE_HEALTH_MAX_LAG must be a positive number of seconds or None"
    )


def test_qinfo_marks_a_depth_past_the_count_limit_as_at_least(settings):
    settings.DBQUEUE_DEPTH_COUNT_LIMIT = 2
    for _ in range(3):
        api.async_task(tasks.add, 1, 2, queue="emails")
    api.async_task(tasks.add, 1, 2, queue="emails", countdown=600)
    api.async_task(tasks.add, 1, 2, queue="default")
    data = json.loads(run("qinfo", "--json")[0])
    queues = {queue["name"]: queue for queue in data["queues"]}
    emails = queues["emails"]
    assert (emails["queued"], emails["due"], emails["waiting"]) == (3, 2, 1)
    assert (
        emails["queued_capped"],
        emails["due_capped"],
        emails["waiting_capped"],
    ) == (True, True, False)
    assert not queues["default"]["queued_capped"]
    out, _ = run("qinfo")
    lines = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line[:2] == "  " and line.split()
    }
    assert lines["emails"][1:4] == ["≥3", "≥2", "1"]
    assert lines["default"][1:4] == ["1", "1", "0"]
    assert "≥: counting stopped at DBQUEUE_DEPTH_COUNT_LIMIT (2); there are more" in out
