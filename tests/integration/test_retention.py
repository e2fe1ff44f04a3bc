"""Retention: finished tasks and dead letters are pruned by age, in batches.

The deterministic cases pass `now` and count the DELETE statements. The
last test prunes a large table in a background thread while a worker in
the main thread claims and finishes fresh tasks: every task runs exactly
once, and no row younger than the cutoff goes. It prunes 20,000 rows in
the normal run and DBQUEUE_TEST_PRUNE_ROWS rows (`make test-long`: a
million) when that is set, and prints the rates it measured.
"""

import datetime
import logging
import math
import os
import statistics
import sys
import threading
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dbqueue import async_task, claiming, retention, schedule
from dbqueue.cluster.scheduler import Scheduler
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Status, Task, queue_db
from tests.testapp import tasks
from tests.testapp.models import Execution

UTC = datetime.UTC
NOW = datetime.datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
DAY = 24 * 3600.0
RETENTION = {
    "DBQUEUE_RETAIN_SUCCEEDED": 7 * DAY,
    "DBQUEUE_RETAIN_FAILED": 30 * DAY,
    "DBQUEUE_RETAIN_DEAD_LETTERS": 90 * DAY,
}


def days(n):
    return datetime.timedelta(days=n)


def finished(status, age, now=NOW, **fields):
    """A task row with `status` that finished `age` before `now` (whatever the status)."""
    return Task.objects.create(
        name="t",
        func="tests.testapp.tasks.add",
        payload="",
        status=status,
        enqueued_at=now - age - days(1),
        run_after=now - age - days(1),
        finished_at=now - age,
        **fields,
    )


def dead_letter(age, now=NOW):
    return FailedTask.objects.create(
        task_id=uuid.uuid4(),
        name="t",
        func="tests.testapp.tasks.add",
        payload="",
        queue="default",
        enqueued_at=now - age,
        failed_at=now - age,
    )


def finished_ago(status, age):
    return finished(status, age, now=timezone.now())


def deletes(queries, table="dbqueue_task"):
    return [
        q["sql"]
        for q in queries
        if q["sql"].startswith("DELETE") and table in q["sql"].split("WHERE")[0]
    ]


@pytest.mark.django_db
@override_settings(**RETENTION)
def test_each_kind_is_pruned_by_its_own_age():
    old_succeeded = finished(Status.SUCCEEDED, days(8))
    young_succeeded = finished(Status.SUCCEEDED, days(6))
    old_failed = finished(Status.FAILED, days(31))
    young_failed = finished(Status.FAILED, days(8))  # older than 7 days: kept
    old_cancelled = finished(Status.CANCELLED, days(31))
    young_cancelled = finished(Status.CANCELLED, days(29))
    old_letter = dead_letter(days(91))
    young_letter = dead_letter(days(89))

    report = retention.prune(NOW)

    assert (report.succeeded, report.failed, report.dead_letters) == (1, 2, 1)
    assert report.is_complete
    assert not Task.objects.filter(
        id__in=[old_succeeded.id, old_failed.id, old_cancelled.id]
    ).exists()
    assert (
        Task.objects.filter(
            id__in=[young_succeeded.id, young_failed.id, young_cancelled.id]
        ).count()
        == 3
    )
    assert list(FailedTask.objects.values_list("id", flat=True)) == [young_letter.id]
    assert not FailedTask.objects.filter(id=old_letter.id).exists()


@pytest.mark.django_db
def test_queued_and_running_tasks_are_never_pruned_whatever_their_age():
    queued = finished(Status.QUEUED, days(3650), attempts=1, error="retrying")
    running = finished(Status.RUNNING, days(3650), locked_by="w")
    finished(Status.SUCCEEDED, days(3650))
    report = retention.prune(
        NOW, retain_succeeded=0, retain_failed=0, retain_dead_letters=0
    )
    assert report.total == 1
    assert set(Task.objects.values_list("id", "status")) == {
        (queued.id, Status.QUEUED),
        (running.id, Status.RUNNING),
    }


@pytest.mark.django_db
@override_settings(
    DBQUEUE_RETAIN_SUCCEEDED=None,
    DBQUEUE_RETAIN_FAILED=DAY,
    DBQUEUE_RETAIN_DEAD_LETTERS=None,
)
def test_a_retention_of_none_keeps_that_kind_forever():
    kept = finished(Status.SUCCEEDED, days(10_000))
    finished(Status.FAILED, days(2))
    dead_letter(days(10_000))
    report = retention.prune(NOW)
    assert (report.succeeded, report.failed, report.dead_letters) == (0, 1, 0)
    assert list(Task.objects.values_list("id", flat=True)) == [kept.id]
    assert FailedTask.objects.count() == 1


@pytest.mark.django_db
def test_dead_letters_are_kept_by_default():
    dead_letter(days(10_000))
    assert retention.prune(NOW).dead_letters == 0
    assert FailedTask.objects.count() == 1


@pytest.mark.django_db
@override_settings(**RETENTION)
def test_rows_go_in_batches_of_the_batch_size_oldest_first():
    for minute in range(25):
        finished(Status.SUCCEEDED, days(8) + datetime.timedelta(minutes=minute))
    with CaptureQueriesContext(connections[queue_db()]) as queries:
        report = retention.prune(NOW, batch_size=10, time_budget=None)
    statements = deletes(queries.captured_queries)
    assert report.succeeded == 25
    # 10 + 10 + 5: the short batch shows there is nothing left.
    assert len(statements) == 3
    # Each names its rows by primary key, picked (and locked) by status and age.
    assert all(" IN (" in sql and "finished_at" not in sql for sql in statements)
    assert not Task.objects.exists()

    for minute in range(25):
        finished(Status.SUCCEEDED, days(8) + datetime.timedelta(minutes=minute))
    keep_ids = set(
        Task.objects.order_by("-finished_at").values_list("id", flat=True)[:5]
    )
    clock = iter(range(100))
    report = retention.prune(
        NOW, batch_size=10, time_budget=1.5, clock=lambda: next(clock)
    )
    # The budget lets two batches start; the oldest twenty are gone.
    assert (report.succeeded, report.out_of_time) == (20, True)
    assert set(Task.objects.values_list("id", flat=True)) == keep_ids


@pytest.mark.vendor("postgresql", "mysql")
@override_settings(**RETENTION)
def test_rows_another_pruner_holds_are_skipped_not_waited_for(second_connection):
    rows = [finished(Status.SUCCEEDED, days(8 + n)) for n in range(4)]
    held = rows[-1]  # the oldest, first in every batch
    with transaction.atomic(using=second_connection):
        locked = Task.objects.using(second_connection).select_for_update()
        assert [t.id for t in locked.filter(id=held.id)] == [held.id]
        report = retention.prune(NOW)
    assert report.succeeded == 3
    assert list(Task.objects.values_list("id", flat=True)) == [held.id]


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_BATCH_SIZE=2, **RETENTION)
def test_the_batch_size_setting_is_the_default():
    for _ in range(5):
        finished(Status.FAILED, days(31))
    with CaptureQueriesContext(connections[queue_db()]) as queries:
        assert retention.prune(NOW).failed == 5
    assert len(deletes(queries.captured_queries)) == 3


@pytest.mark.django_db
@override_settings(**RETENTION)
def test_a_dry_run_counts_and_deletes_nothing():
    finished(Status.SUCCEEDED, days(8))
    finished(Status.CANCELLED, days(31))
    dead_letter(days(91))
    with CaptureQueriesContext(connections[queue_db()]) as queries:
        report = retention.prune(NOW, dry_run=True)
    assert (report.succeeded, report.failed, report.dead_letters) == (1, 1, 1)
    assert report.dry_run
    assert deletes(queries.captured_queries, table="dbqueue") == []
    assert (Task.objects.count(), FailedTask.objects.count()) == (2, 1)


@pytest.mark.django_db(transaction=True)
@override_settings(**RETENTION)
def test_a_lock_conflict_backs_off_and_goes_on(monkeypatch, caplog):
    for _ in range(3):
        finished(Status.SUCCEEDED, days(8))
    real_delete = claiming.delete_by_pk
    conflicts = [OperationalError("database is locked")] * 2

    def flaky_delete(*args, **kwargs):
        if conflicts:
            raise conflicts.pop()
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(claiming, "delete_by_pk", flaky_delete)
    monkeypatch.setattr(claiming, "is_transient", lambda exc, using=None: True)
    delays = []
    report = retention.prune(NOW, sleep=delays.append)
    assert (report.succeeded, report.conflicts, report.gave_up) == (3, 2, False)
    assert delays == [0.05, 0.1]

    finished(Status.SUCCEEDED, days(8))
    conflicts.extend([OperationalError("database is locked")] * 100)
    caplog.set_level(logging.WARNING, logger="dbqueue.retention")
    report = retention.prune(NOW, sleep=delays.append)
    assert (report.succeeded, report.gave_up, report.is_complete) == (0, True, False)
    assert report.conflicts == retention.CONFLICTS_MAX
    assert max(delays) == retention.CONFLICT_BACKOFF_MAX
    assert "Pruning stopped after 8 lock conflicts in a row" in caplog.text


@pytest.mark.django_db
def test_other_database_errors_are_raised(monkeypatch):
    finished(Status.SUCCEEDED, days(8))

    def broken(*args, **kwargs):
        raise OperationalError("no such column: finished_at")

    monkeypatch.setattr(claiming, "delete_by_pk", broken)
    with pytest.raises(OperationalError, match="no such column"):
        retention.prune(NOW)


# The qprune command.


@pytest.mark.django_db
@override_settings(**RETENTION)
def test_qprune_deletes_by_the_settings_and_prints_the_counts(capsys):
    finished_ago(Status.SUCCEEDED, days(8))
    finished_ago(Status.SUCCEEDED, days(1))
    finished_ago(Status.FAILED, days(31))
    call_command("qprune")
    assert capsys.readouterr().out.splitlines() == [
        "Deleted 1 succeeded task older than 7 days.",
        "Deleted 1 failed or cancelled task older than 30 days.",
        "Deleted 0 dead letters older than 90 days.",
    ]
    assert Task.objects.count() == 1


@pytest.mark.django_db
@override_settings(DBQUEUE_RETAIN_DEAD_LETTERS=None)
def test_qprune_flags_override_the_settings(capsys):
    finished_ago(Status.SUCCEEDED, datetime.timedelta(hours=2))
    finished_ago(Status.SUCCEEDED, datetime.timedelta(minutes=30))
    finished_ago(Status.FAILED, days(365))
    dead_letter(datetime.timedelta(seconds=100), now=timezone.now())
    call_command(
        "qprune",
        "--succeeded-older-than=3600",
        "--failed-older-than=never",
        "--dead-letters-older-than",
        "90",
        "--batch-size=1",
    )
    assert capsys.readouterr().out.splitlines() == [
        "Deleted 1 succeeded task older than 1 hour.",
        "Kept all failed or cancelled tasks (no retention set).",
        "Deleted 1 dead letter older than 90s.",
    ]
    assert Task.objects.filter(status=Status.SUCCEEDED).count() == 1
    assert Task.objects.filter(status=Status.FAILED).count() == 1
    assert FailedTask.objects.count() == 0


@pytest.mark.django_db
@override_settings(**RETENTION)
def test_qprune_dry_run_deletes_nothing(capsys):
    finished_ago(Status.SUCCEEDED, days(8))
    call_command("qprune", "--dry-run", "--failed-older-than=0")
    assert capsys.readouterr().out.splitlines() == [
        "Would delete 1 succeeded task older than 7 days.",
        "Would delete 0 failed or cancelled tasks older than 0s.",
        "Would delete 0 dead letters older than 90 days.",
    ]
    assert Task.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--succeeded-older-than=-5"],
            "--succeeded-older-than must be a number of seconds (0 or more) or 'never', got '-5'.",
        ),
        (
            ["--failed-older-than=a week"],
            "--failed-older-than must be a number of seconds (0 or more) or 'never', got 'a week'.",
        ),
        (
            ["--dead-letters-older-than=nan"],
            "--dead-letters-older-than must be a number of seconds (0 or more) or 'never', got 'nan'.",
        ),
        (
            ["--batch-size=0"],
            "--batch-size must be a whole number of at least 1, got '0'.",
        ),
        (
            ["--batch-size=1.5"],
            "--batch-size must be a whole number of at least 1, got '1.5'.",
        ),
        (
            ["--batch-size=1000000"],
            "--batch-size must be at most 10000, got '1000000'.",
        ),
    ],
)
def test_qprune_refuses_bad_values_naming_the_flag(args, message):
    finished(Status.SUCCEEDED, days(3650))
    with pytest.raises(CommandError) as error:
        call_command("qprune", *args)
    assert str(error.value) == message
    assert Task.objects.count() == 1


# The scheduler prunes on its own.


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_INTERVAL=300, **RETENTION)
def test_the_scheduler_loop_prunes_and_logs_once(caplog):
    finished(Status.SUCCEEDED, days(8))
    kept = finished(Status.SUCCEEDED, days(1))
    caplog.set_level(logging.INFO, logger="dbqueue.retention")

    def sleep(seconds):
        runner.stop()

    runner = Scheduler(clock=lambda: NOW, sleep=sleep, sync_declared=False)
    assert runner.run() == 0
    assert list(Task.objects.values_list("id", flat=True)) == [kept.id]
    [line] = [r for r in caplog.records if r.name == "dbqueue.retention"]
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith(
        "Pruned old rows: succeeded=1 failed=0 dead_letters=0 duration="
    )


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_INTERVAL=300, **RETENTION)
def test_the_scheduler_prunes_at_most_once_per_interval(caplog):
    scheduler = Scheduler(scheduler_id="s", sync_declared=False)
    finished(Status.SUCCEEDED, days(8))
    assert scheduler.prune_tasks(NOW).succeeded == 1
    finished(Status.SUCCEEDED, days(8))
    assert scheduler.prune_tasks(NOW + datetime.timedelta(seconds=299)) is None
    assert Task.objects.count() == 1
    assert scheduler.prune_tasks(NOW + datetime.timedelta(seconds=300)).succeeded == 1
    caplog.set_level(logging.INFO, logger="dbqueue.retention")
    later = NOW + datetime.timedelta(seconds=600)
    assert scheduler.prune_tasks(later).total == 0
    assert "Pruned" not in caplog.text  # nothing deleted, nothing said


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_INTERVAL=None, **RETENTION)
def test_the_scheduler_never_prunes_without_an_interval():
    finished(Status.SUCCEEDED, days(8))
    scheduler = Scheduler(scheduler_id="s", sync_declared=False)
    assert scheduler.prune_tasks(NOW) is None
    assert Task.objects.count() == 1


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_INTERVAL=300, DBQUEUE_PRUNE_BATCH_SIZE=2, **RETENTION)
def test_a_round_that_runs_out_of_time_goes_on_at_the_next_tick(monkeypatch, caplog):
    for _ in range(5):
        finished(Status.SUCCEEDED, days(8))
    # Every batch outlasts the slice: one batch per tick.
    monkeypatch.setattr(retention, "TICK_BUDGET", 0.0)
    caplog.set_level(logging.INFO, logger="dbqueue.retention")
    scheduler = Scheduler(scheduler_id="s", sync_declared=False)
    slices = []
    for second in range(4):
        report = scheduler.prune_tasks(NOW + datetime.timedelta(seconds=second))
        slices.append((report.succeeded, report.out_of_time))
    # The last slice finds nothing old left and ends the round.
    assert slices == [(2, True), (2, True), (1, True), (0, False)]
    assert scheduler.prune_tasks(NOW + datetime.timedelta(seconds=5)) is None
    assert caplog.text.count("Pruned old rows: succeeded=5 failed=0") == 1


@pytest.mark.django_db
@override_settings(DBQUEUE_PRUNE_INTERVAL=300, **RETENTION)
def test_the_scheduler_slice_ends_before_the_next_schedule_is_due(monkeypatch):
    budgets = []

    def prune(now, *, time_budget, clock):
        budgets.append(round(time_budget, 3))
        return retention.PruneReport()

    monkeypatch.setattr(retention, "prune", prune)
    Scheduler(sync_declared=False, clock=lambda: NOW).prune_tasks(NOW)
    soon = NOW + datetime.timedelta(seconds=0.1)
    schedule(tasks.add, 1, 2, name="soon", minutes=1, next_run=soon)
    Scheduler(sync_declared=False, clock=lambda: NOW).prune_tasks(NOW)
    assert budgets == [retention.TICK_BUDGET, 0.1]


# A large table pruned while a worker claims.

PRUNE_ROWS = int(os.environ.get("DBQUEUE_TEST_PRUNE_ROWS", "20000"))
YOUNG_ROWS = 2000
DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"
COLUMNS = (
    "id, name, func, payload, queue, priority, status, run_after, attempts, "
    "max_attempts, keep_result, on_orphan, {group}, hook, chain, locked_by, "
    "enqueued_at, started_at, finished_at, result_payload, error, attempt_log"
)


def insert_finished(status, count, newest, first=1):
    """Insert `count` finished rows, one millisecond apart, the newest at `newest`.

    One INSERT … SELECT over a number series made by the server, so a
    million rows take seconds, not the minutes that bulk_create would.
    """
    vendor = connection.vendor
    columns = COLUMNS.format(group=connection.ops.quote_name("group"))
    stamp = connection.ops.adapt_datetimefield_value(newest.replace(microsecond=0))
    values = (
        "{id}, 'bulk', 'tests.testapp.tasks.add', '', 'default', 0, %s, {t}, 1, 1, "
        "{true}, 'RETRY', '', '', '', '', {t}, {t}, {t}, '', '', '[]'"
    )
    if vendor == "postgresql":
        select = values.format(
            id="lpad(to_hex(n), 32, '0')::uuid",
            t="%s::timestamptz - (n - %s) * interval '1 millisecond'",
            true="true",
        )
        sql = f"INSERT INTO dbqueue_task ({columns}) SELECT {select} FROM generate_series(%s, %s) AS n"
    elif vendor == "mysql":
        select = values.format(
            id="LOWER(LPAD(HEX(n), 32, '0'))",
            t="%s - INTERVAL (n - %s) * 1000 MICROSECOND",
            true="1",
        )
        digits = math.ceil(math.log10(first + count))
        number = " + ".join(f"{10**i} * d{i}.d" for i in range(digits))
        tables = ", ".join(f"{DIGITS} AS d{i}" for i in range(digits))
        sql = (
            f"INSERT INTO dbqueue_task ({columns}) SELECT {select} FROM "
            f"(SELECT {number} AS n FROM {tables}) AS series WHERE n BETWEEN %s AND %s"
        )
    else:
        select = values.format(
            id="printf('%%032x', n)",
            t="strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, '-' || ((n - %s) / 1000.0) || ' seconds')",
            true="1",
        )
        sql = (
            "WITH RECURSIVE series(n) AS (SELECT %s UNION ALL SELECT n + 1 FROM series "
            f"WHERE n < %s) INSERT INTO dbqueue_task ({columns}) SELECT {select} FROM series"
        )
    times = [stamp, first] * 4
    last = first + count - 1
    params = (
        [first, last, status, *times]
        if vendor == "sqlite"
        else [status, *times, first, last]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # Statistics as a server's autovacuum or InnoDB would gather them.
        # Not on SQLite, which plans without: with sqlite_stat1 rows its
        # planner scans the whole table for a claim from every queue ("*").
        if vendor == "postgresql":
            cursor.execute("ANALYZE dbqueue_task")
        elif vendor == "mysql":
            cursor.execute("ANALYZE TABLE dbqueue_task")
            cursor.fetchall()


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def prune_in_threads(count, now):
    """Start `count` threads that each prune once; return them and their results."""
    results, errors = [], []

    def run():
        begin = time.monotonic()
        try:
            report = retention.prune(now, batch_size=1000)
            results.append((begin, time.monotonic(), report))
        except Exception as exc:  # reported by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results, errors


@pytest.mark.django_db(transaction=True)
@override_settings(**RETENTION)
def test_two_pruners_at_once_delete_each_row_once():
    now = timezone.now()
    insert_finished(Status.SUCCEEDED, 5000, now - days(8))
    insert_finished(Status.SUCCEEDED, 100, now - days(1), first=5001)
    threads, results, errors = prune_in_threads(2, now)
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert sum(report.succeeded for _, _, report in results) == 5000
    assert Task.objects.count() == 100


@pytest.mark.django_db(transaction=True)
@override_settings(**RETENTION)
def test_pruning_a_large_table_never_stops_a_worker_claiming(monkeypatch, capsys):
    now = timezone.now()
    cutoff = now - datetime.timedelta(seconds=RETENTION["DBQUEUE_RETAIN_SUCCEEDED"])
    started = time.monotonic()
    failed_rows = PRUNE_ROWS // 10
    insert_finished(Status.SUCCEEDED, PRUNE_ROWS - failed_rows, cutoff - days(1))
    insert_finished(
        Status.FAILED, failed_rows, now - days(31), first=PRUNE_ROWS - failed_rows + 1
    )
    # Younger than the cutoff by seconds: these must all stay.
    insert_finished(
        Status.SUCCEEDED,
        YOUNG_ROWS,
        cutoff + datetime.timedelta(seconds=5 + YOUNG_ROWS / 1000),
        first=PRUNE_ROWS + 1,
    )
    inserted = time.monotonic() - started
    assert Task.objects.filter(finished_at__lt=cutoff).count() == PRUNE_ROWS

    claim_times = []  # (started, seconds) of each claim
    real_claim = claiming.claim

    def timed_claim(*args, **kwargs):
        begin = time.monotonic()
        try:
            return real_claim(*args, **kwargs)
        finally:
            claim_times.append((begin, time.monotonic() - begin))

    monkeypatch.setattr(claiming, "claim", timed_claim)
    worker = Worker(worker_id="claimer", queues=["*"], poll_interval=0)
    labels = []

    def work_one():
        labels.append(f"task-{len(labels)}")
        async_task(tasks.record, labels[-1])
        return worker.run_once()

    for _ in range(20):  # the claim latency on an idle table, for comparison
        work_one()
    baseline = [seconds for _, seconds in claim_times]

    threads, results, errors = prune_in_threads(1, now)
    try:
        deadline = time.monotonic() + max(120.0, PRUNE_ROWS / 1000)
        while threads[0].is_alive():
            assert work_one(), "the worker claimed nothing while pruning ran"
            assert time.monotonic() < deadline, "pruning did not finish in time"
    finally:
        threads[0].join(60)
    assert not errors, errors
    while worker.run_once():
        pass

    # Every task ran exactly once, and finished.
    assert sorted(Execution.objects.values_list("label", flat=True)) == sorted(labels)
    ran = Task.objects.filter(func="tests.testapp.tasks.record")
    assert ran.count() == len(labels)
    assert ran.exclude(status=Status.SUCCEEDED, attempts=1).count() == 0
    # The old rows are gone; the younger ones all stayed.
    [(begin, end, report)] = results
    assert (report.succeeded, report.failed) == (PRUNE_ROWS - failed_rows, failed_rows)
    assert not Task.objects.filter(finished_at__lt=cutoff).exists()
    assert Task.objects.filter(name="bulk").count() == YOUNG_ROWS

    during = [seconds for at, seconds in claim_times if begin <= at <= end]
    assert during, "no claim overlapped the pruning"
    with capsys.disabled():
        sys.stderr.write(
            f"\n[{connection.vendor}] inserted {PRUNE_ROWS + YOUNG_ROWS} rows in "
            f"{inserted:.1f}s; pruned {PRUNE_ROWS} in {end - begin:.1f}s "
            f"({PRUNE_ROWS / (end - begin):.0f} rows/s); {len(during)} claims "
            f"meanwhile, latency ms p50={percentile(during, 0.5) * 1000:.1f} "
            f"p99={percentile(during, 0.99) * 1000:.1f} max={max(during) * 1000:.1f} "
            f"(idle table: p50={statistics.median(baseline) * 1000:.1f} "
            f"max={max(baseline) * 1000:.1f})\n"
        )
