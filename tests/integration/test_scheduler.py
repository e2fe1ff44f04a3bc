"""The scheduler against a real database, driven with run_once(now) and a fake clock.

Exactly-once is shown deterministically: a schedule row held locked on a
second connection is skipped (SKIP LOCKED, server databases only), two
schedulers interleaved on one clock fire each due time once (every vendor),
a crash before the commit leaves nothing behind, and a unique-constraint
conflict rolls the whole firing back.
"""

import datetime
import logging
import re
import sys

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connections, transaction
from django.test import override_settings

from dbqueue import checks as dbqueue_checks
from dbqueue import exceptions, schedule, serialization
from dbqueue.cluster.scheduler import Scheduler
from dbqueue.models import (
    CatchUp,
    RunOutcome,
    Schedule,
    ScheduleRun,
    ScheduleType,
    Status,
    Task,
)
from dbqueue.schedules import sync_declared
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
T0 = datetime.datetime(2027, 6, 1, 10, 0, tzinfo=UTC)


def minutes(n):
    return datetime.timedelta(minutes=n)


def every_minute(name="every-minute", **options):
    return schedule(
        tasks.add, 1, 2, name=name, cron="* * * * *", next_run=T0, **options
    )


@pytest.fixture
def scheduler():
    return Scheduler(scheduler_id="test-scheduler", sync_declared=False)


def runs(name):
    return list(
        ScheduleRun.objects.filter(schedule__name=name)
        .order_by("due_at")
        .values_list("due_at", "outcome")
    )


def test_a_cron_schedule_fires_each_due_time_once(scheduler):
    every_minute()
    assert scheduler.run_once(T0 - minutes(1)) == 0
    assert scheduler.run_once(T0) == 1
    assert scheduler.run_once(T0 + datetime.timedelta(seconds=30)) == 0
    assert scheduler.run_once(T0 + minutes(1)) == 1
    assert runs("every-minute") == [
        (T0, RunOutcome.ENQUEUED),
        (T0 + minutes(1), RunOutcome.ENQUEUED),
    ]
    stored = Schedule.objects.get(name="every-minute")
    assert stored.next_run == T0 + minutes(2)
    assert stored.last_run_at == T0 + minutes(1)
    assert Task.objects.count() == 2


def test_the_task_carries_the_arguments_and_options(scheduler):
    schedule(
        tasks.echo,
        "a",
        7,
        key="value",
        name="with-options",
        schedule_type=ScheduleType.DAILY,
        next_run=T0,
        queue="reports",
        priority=9,
        max_attempts=4,
        timeout=30,
        expires=600,
    )
    scheduler.run_once(T0)
    task = Task.objects.get()
    assert (task.args, task.kwargs) == (("a", 7), {"key": "value"})
    assert (task.queue, task.priority, task.max_attempts, task.timeout) == (
        "reports",
        9,
        4,
        30.0,
    )
    assert task.group == "with-options"  # Django-Q's convention
    assert task.expires_at is not None
    assert Schedule.objects.get().last_task_id == task.id


def test_registered_defaults_apply_when_the_schedule_sets_none(scheduler):
    schedule(tasks.send_email, 3, name="mail", schedule_type="hourly", next_run=T0)
    scheduler.run_once(T0)
    task = Task.objects.get()
    assert (task.queue, task.priority, task.max_attempts) == ("emails", 5, 2)


def test_a_due_time_that_already_fired_is_not_fired_again(scheduler, caplog):
    every_minute()
    scheduler.run_once(T0)
    Schedule.objects.update(
        next_run=T0
    )  # moved back, as an admin or a redefinition might
    caplog.set_level(logging.INFO, logger="dbqueue.cluster.scheduler")
    assert scheduler.run_once(T0 + datetime.timedelta(seconds=5)) == 0
    assert Task.objects.count() == 1
    assert Schedule.objects.get().next_run == T0 + minutes(1)
    assert "due=2027-06-01T10:00:00+00:00 was already fired; not again." in caplog.text


def test_two_schedulers_on_one_clock_fire_each_due_time_once():
    """C-03 in-process: two schedulers firing the same every-minute schedule for 5 minutes."""
    every_minute()
    first = Scheduler(scheduler_id="one", sync_declared=False)
    second = Scheduler(scheduler_id="two", sync_declared=False)
    now = T0
    while now < T0 + minutes(5):
        first.run_once(now)
        second.run_once(now)
        now += datetime.timedelta(seconds=10)
    assert first.fired + second.fired == 5
    assert [due for due, _ in runs("every-minute")] == [
        T0 + minutes(m) for m in range(5)
    ]
    assert Task.objects.count() == 5


@pytest.mark.vendor("postgresql", "mysql")
def test_a_schedule_locked_by_another_scheduler_is_skipped_not_waited_for(
    second_connection, scheduler
):
    every_minute("held")
    every_minute("free")
    held = Schedule.objects.get(name="held")
    other = connections[second_connection]
    with transaction.atomic(using=second_connection):
        # Another scheduler's open transaction holds the row.
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM dbqueue_schedule WHERE id = %s FOR UPDATE", [held.id]
            )
        assert scheduler.run_once(T0) == 1
        assert runs("held") == []
        assert [due for due, _ in runs("free")] == [T0]
    assert scheduler.run_once(T0 + datetime.timedelta(seconds=1)) == 1
    assert [due for due, _ in runs("held")] == [T0]


def test_a_stale_candidate_fired_meanwhile_by_another_scheduler_is_not_fired_again(
    scheduler,
):
    """This scheduler read the due ids, another fired and committed, then this one locks."""
    every_minute("raced")
    raced = Schedule.objects.get(name="raced")
    other = Scheduler(scheduler_id="other", sync_declared=False)
    assert other.run_once(T0) == 1
    assert scheduler.fire(raced.id, T0) == 0  # the due re-check under the lock fails
    assert Task.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_claim_and_commit_leaves_nothing(scheduler, monkeypatch):
    every_minute("crashy")

    def crash(self, **kwargs):
        raise RuntimeError("scheduler process died here")

    monkeypatch.setattr(Schedule, "record_firing", crash)
    assert scheduler.run_once(T0) == 0
    # The task and the run were written before the crash; both rolled back.
    assert Task.objects.count() == 0
    assert runs("crashy") == []
    assert Schedule.objects.get(name="crashy").next_run == T0
    monkeypatch.undo()
    assert scheduler.run_once(T0 + datetime.timedelta(seconds=2)) == 1
    assert Task.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_unique_conflict_means_another_scheduler_won_and_rolls_back(
    scheduler, monkeypatch, caplog
):
    every_minute("conflict")
    stored = Schedule.objects.get(name="conflict")
    ScheduleRun.objects.create(
        schedule=stored, due_at=T0, outcome=RunOutcome.ENQUEUED, fired_at=T0
    )
    # As if the other scheduler's run was committed after this one looked.
    monkeypatch.setattr(Scheduler, "decided", lambda self, schedule, due_times: set())
    caplog.set_level(logging.INFO, logger="dbqueue.cluster.scheduler")
    assert scheduler.run_once(T0) == 0
    assert "was fired by another scheduler meanwhile; rolled back" in caplog.text
    assert Task.objects.count() == 0
    assert Schedule.objects.get(name="conflict").next_run == T0
    monkeypatch.undo()
    assert scheduler.run_once(T0 + datetime.timedelta(seconds=1)) == 0
    assert Schedule.objects.get(name="conflict").next_run == T0 + minutes(1)
    assert Task.objects.count() == 0


def test_no_pile_up_while_the_previous_run_is_queued_or_running(scheduler):
    every_minute("slow", allow_overlap=False)
    scheduler.run_once(T0)
    first = Task.objects.get()
    scheduler.run_once(T0 + minutes(1))
    Task.objects.filter(id=first.id).update(status=Status.RUNNING)
    scheduler.run_once(T0 + minutes(2))
    assert Task.objects.count() == 1
    Task.objects.filter(id=first.id).update(status=Status.SUCCEEDED)
    scheduler.run_once(T0 + minutes(3))
    assert Task.objects.count() == 2
    assert [outcome for _, outcome in runs("slow")] == [
        RunOutcome.ENQUEUED,
        RunOutcome.OVERLAP,
        RunOutcome.OVERLAP,
        RunOutcome.ENQUEUED,
    ]


def test_overlap_is_allowed_by_default(scheduler):
    every_minute()
    scheduler.run_once(T0)
    scheduler.run_once(T0 + minutes(1))
    assert Task.objects.queued().count() == 2


@pytest.mark.parametrize(
    ("catch_up", "fired_in_window"),
    [(CatchUp.SKIP, 0), (CatchUp.ONCE, 1), (CatchUp.ALL, 5)],
)
@override_settings(DBQUEUE_SCHEDULE_GRACE=10)
def test_missed_runs_follow_the_catch_up_policy(scheduler, catch_up, fired_in_window):
    """F-03: an every-minute schedule; no scheduler from 10:00:30 to 10:05:30."""
    every_minute(catch_up=catch_up)
    scheduler.run_once(T0)
    scheduler.run_once(T0 + minutes(5) + datetime.timedelta(seconds=30))
    missed = [due for due, _ in runs("every-minute") if T0 < due <= T0 + minutes(5)]
    assert len(missed) == fired_in_window
    assert Schedule.objects.get().next_run == T0 + minutes(6)
    scheduler.run_once(T0 + minutes(6))
    assert runs("every-minute")[-1][0] == T0 + minutes(6)


def test_repeats_count_down_and_a_finished_schedule_stops(scheduler):
    schedule(tasks.add, 1, 1, name="twice", minutes=5, repeats=2, next_run=T0)
    for step in range(4):
        scheduler.run_once(T0 + minutes(5 * step))
    stored = Schedule.objects.get()
    assert (stored.repeats, stored.is_finished) == (0, True)
    assert Task.objects.count() == 2
    assert stored.preview() == []


def test_a_one_off_schedule_runs_once_even_when_late(scheduler):
    schedule(tasks.add, 2, 2, name="once", next_run=T0)
    scheduler.run_once(T0 + datetime.timedelta(hours=3))
    scheduler.run_once(T0 + datetime.timedelta(hours=4))
    assert Task.objects.count() == 1
    assert Schedule.objects.get().is_finished


def test_a_disabled_schedule_does_not_fire(scheduler):
    every_minute(enabled=False)
    assert scheduler.run_once(T0 + minutes(3)) == 0


# A row that became invalid is reported and skipped; the others fire.


def stored_schedule(name, func, **fields):
    """Write a Schedule row as an old deploy (or SQL) would have, bypassing validation."""
    return Schedule.objects.create(
        name=name,
        func=func,
        payload=serialization.dumps_payload(func, (), {}),
        next_run=T0,
        **fields,
    )


def test_a_schedule_whose_function_was_removed_is_logged_and_skipped(scheduler, caplog):
    stored_schedule(
        "orphan", "tests.testapp.tasks.removed_in_last_deploy", schedule_type="HOURLY"
    )
    every_minute("healthy")
    caplog.set_level(logging.INFO, logger="dbqueue.cluster.scheduler")
    assert scheduler.run_once(T0) == 1
    [(due, outcome)] = runs("orphan")
    assert (due, outcome) == (T0, RunOutcome.ERROR)
    run = ScheduleRun.objects.get(schedule__name="orphan")
    assert run.error.startswith(
        "TaskNotFound: No task is registered as 'tests.testapp.tasks.removed_in_last_deploy'."
    )
    assert (
        "Schedule name=orphan due=2027-06-01T10:00:00+00:00 could not be enqueued"
        in caplog.text
    )
    assert Schedule.objects.get(name="orphan").next_run == T0 + datetime.timedelta(
        hours=1
    )
    assert runs("healthy") == [(T0, RunOutcome.ENQUEUED)]


def test_a_row_with_broken_timing_is_reported_once_and_skipped(scheduler, caplog):
    stored_schedule(
        "broken", "tests.testapp.tasks.add", schedule_type="CRON", cron="0 25 * * *"
    )
    every_minute("healthy")
    caplog.set_level(logging.DEBUG, logger="dbqueue.cluster.scheduler")
    assert scheduler.run_once(T0) == 1
    assert scheduler.run_once(T0 + minutes(1)) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Schedule id=" in errors[0].getMessage()
    assert "the hour field '25' must be 0-23" in errors[0].getMessage()
    assert runs("broken") == []


def test_a_row_whose_payload_was_edited_is_not_enqueued(scheduler):
    row = stored_schedule("tampered", "tests.testapp.tasks.add", schedule_type="DAILY")
    Schedule.objects.filter(id=row.id).update(func="tests.testapp.tasks.echo")
    scheduler.run_once(T0)
    assert Task.objects.count() == 0
    assert "PayloadSignatureError" in ScheduleRun.objects.get().error


def test_the_database_check_reports_invalid_rows_as_warnings():
    stored_schedule("orphan", "os.system", schedule_type="DAILY")
    stored_schedule(
        "bad-cron", "tests.testapp.tasks.add", schedule_type="CRON", cron="61 * * * *"
    )
    every_minute("healthy")
    messages = dbqueue_checks.check_schedules(databases=["default"])
    # In name order: 'bad-cron' before 'orphan'.
    assert [(m.id, m.level) for m in messages] == [
        ("dbqueue.W004", 30),
        ("dbqueue.W003", 30),
    ]
    assert "the minute field '61' must be 0-59" in messages[0].msg
    assert messages[1].msg.startswith(
        "Schedule 'orphan' calls 'os.system', which cannot run: "
        "'os.system' is a function but not a registered task."
    )
    assert dbqueue_checks.check_schedules(databases=None) == []


# schedule(): bad input is refused at the call, and nothing is stored.


def test_the_database_check_never_imports_the_path_of_a_tampered_row():
    row = stored_schedule("tampered", "tests.testapp.tasks.add", schedule_type="DAILY")
    Schedule.objects.filter(id=row.id).update(func="this.s")  # importing `this` prints
    [message] = dbqueue_checks.check_schedules(databases=["default"])
    assert message.id == "dbqueue.W003"
    assert "signature that does not verify" in message.msg
    assert "this" not in sys.modules


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: schedule(tasks.add, 1, 2, name="x", cron="0 25 * * *"),
            ValueError,
            "cron '0 25 * * *' is not valid: the hour field '25' must be 0-23.",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", minutes=-5),
            ValueError,
            "minutes must be a positive whole number of minutes for an every-N-minutes schedule, got -5.",
        ),
        (
            lambda: schedule("tests.testapp.tasks.ad", name="x", cron="* * * * *"),
            exceptions.TaskNotFound,
            "No task is registered as 'tests.testapp.tasks.ad'. Did you mean 'tests.testapp.tasks.add'?",
        ),
        (
            lambda: schedule("os.system", "rm -rf /", name="x"),
            exceptions.TaskNotFound,
            "'os.system' is a function but not a registered task.",
        ),
        (
            lambda: schedule(
                tasks.add,
                1,
                2,
                name="x",
                next_run=datetime.datetime(2027, 6, 1, 10),
            ),
            ValueError,
            "next_run must be an aware datetime, got the naive 2027-06-01T10:00:00.",
        ),
        (
            lambda: schedule(
                tasks.add, 1, 2, name="x", cron="0 3 * * *", timezone="Europe/Berln"
            ),
            ValueError,
            "timezone 'Europe/Berln' is not an IANA time zone name",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", schedule_type="fortnightly"),
            ValueError,
            "schedule_type 'fortnightly' is not one of once, minutes, hourly,",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", catch_up="sometimes"),
            ValueError,
            "catch_up must be 'skip', 'once' or 'all', got 'sometimes'.",
        ),
        (
            lambda: schedule(tasks.echo, lambda: None, name="x"),
            exceptions.SerializationError,
            "cannot be pickled",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", countdown=5),
            TypeError,
            "'countdown' cannot be given to a schedule",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", priority=500),
            ValueError,
            "priority must be a whole number between -100 and 100, got 500.",
        ),
        (
            lambda: schedule(tasks.add, 1, 2, name="x", repeats=-2),
            ValueError,
            "repeats must be -1 (forever) or a number of runs, got -2.",
        ),
        (
            lambda: schedule(
                tasks.add, 1, 2, name="x", schedule_type="daily", cron="0 3 * * *"
            ),
            ValueError,
            "cron is only used with schedule_type 'CRON'; leave it empty for 'DAILY'.",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
    assert Schedule.objects.count() == 0


def test_schedule_creates_then_updates_by_name_without_duplicating():
    first = schedule(
        tasks.add, 1, 2, name="report", cron="0 3 * * *", timezone="Europe/Berlin"
    )
    again = schedule(
        tasks.add, 1, 2, name="report", cron="0 3 * * *", timezone="Europe/Berlin"
    )
    assert Schedule.objects.count() == 1
    assert (again.pk, again.next_run, again.updated_at) == (
        first.pk,
        first.next_run,
        first.updated_at,
    )
    moved = schedule(
        tasks.add, 5, 5, name="report", cron="30 4 * * *", timezone="Europe/Berlin"
    )
    assert moved.pk == first.pk
    assert moved.next_run.astimezone(moved.zone()).strftime("%H:%M") == "04:30"
    assert moved.args == (5, 5)


def test_schedule_accepts_django_q_names():
    made = schedule(
        "tests.testapp.tasks.add",
        1,
        2,
        name="dq",
        schedule_type="I",
        minutes=10,
        q_options={"group": "g"},
    )
    assert (made.schedule_type, made.minutes, made.task_options) == (
        ScheduleType.MINUTES,
        10,
        {"group": "g"},
    )


def test_django_q_schedule_constants_work():
    made = schedule(tasks.add, 1, 2, name="dq-daily", schedule_type=Schedule.DAILY)
    assert made.schedule_type == ScheduleType.DAILY


def test_a_cron_schedules_first_run_is_its_first_match(scheduler):
    made = schedule(
        tasks.add,
        1,
        2,
        name="nine",
        cron="0 9 * * *",
        timezone="America/New_York",
        next_run=T0,
    )
    assert made.next_run == datetime.datetime(
        2027, 6, 1, 13, 0, tzinfo=UTC
    )  # 09:00 EDT


def test_a_schedule_knows_its_last_task_outcome_and_previews_its_runs(scheduler):
    made = schedule(tasks.add, 20, 22, name="visible", cron="0 */6 * * *", next_run=T0)
    assert made.last_task() is None
    assert [t.hour for t in made.preview(3)] == [12, 18, 0]
    scheduler.run_once(T0 + datetime.timedelta(hours=2))
    made.refresh_from_db()
    assert made.last_status == Status.QUEUED
    task = made.last_task()
    Task.objects.filter(id=task.id).update(status=Status.SUCCEEDED)
    assert made.last_status == Status.SUCCEEDED
    assert made.runs.get().task().id == task.id


# Declared schedules: DBQUEUE_SCHEDULES, synced by the scheduler at start-up.


DECLARED = {
    "nightly": {
        "func": "tests.testapp.tasks.add",
        "args": [1, 2],
        "cron": "0 3 * * *",
        "timezone": "Europe/Berlin",
        "queue": "reports",
    },
    "poll": {"func": "tests.testapp.tasks.echo", "minutes": 15, "kwargs": {"x": 1}},
}


def test_declared_schedules_are_synced_idempotently():
    schedule(tasks.add, 0, 0, name="made-by-hand", minutes=5)
    with override_settings(DBQUEUE_SCHEDULES=DECLARED):
        assert sync_declared()["created"] == 2
        before = {s.name: (s.next_run, s.updated_at) for s in Schedule.objects.all()}
        assert sync_declared() == {
            "created": 0,
            "updated": 0,
            "unchanged": 2,
            "deleted": 0,
            "invalid": 0,
        }
        assert {
            s.name: (s.next_run, s.updated_at) for s in Schedule.objects.all()
        } == before
    nightly = Schedule.objects.get(name="nightly")
    assert (nightly.declared, nightly.queue, nightly.args) == (True, "reports", (1, 2))
    with override_settings(DBQUEUE_SCHEDULES={"nightly": DECLARED["nightly"]}):
        assert sync_declared()["deleted"] == 1
    assert sorted(Schedule.objects.values_list("name", flat=True)) == [
        "made-by-hand",
        "nightly",
    ]


def test_an_invalid_declaration_is_logged_and_the_others_sync(caplog):
    bad = {
        **DECLARED,
        "broken": {"func": "tests.testapp.tasks.add", "cron": "0 25 * * *"},
    }
    with override_settings(DBQUEUE_SCHEDULES=bad):
        counts = sync_declared()
        [error] = dbqueue_checks.check_schedule_settings()
    assert (counts["created"], counts["invalid"]) == (2, 1)
    assert "Declared schedule name=broken is invalid and was not synced" in caplog.text
    assert error.id == "dbqueue.E006"
    assert error.msg == (
        "DBQUEUE_SCHEDULES['broken'] is invalid: cron '0 25 * * *' is not valid: "
        "the hour field '25' must be 0-23."
    )


def test_the_scheduler_syncs_declarations_when_it_starts_and_stops_when_told():
    ticks = []

    def sleep(seconds):
        ticks.append(seconds)
        if len(ticks) == 2:
            runner.stop()

    runner = Scheduler(clock=lambda: T0, sleep=sleep, interval=0.5)
    with override_settings(DBQUEUE_SCHEDULES=DECLARED):
        assert runner.run() == 0
    assert Schedule.objects.filter(declared=True).count() == 2
    # "poll" was due at once (its first run is the start); nothing else is due within 0.5s.
    assert Task.objects.count() == 1
    assert ticks == [0.5, 0.5]


def test_the_scheduler_sleeps_until_the_next_due_time():
    every_minute()
    ticks = []
    clock = [T0 - datetime.timedelta(seconds=0.25)]

    def sleep(seconds):
        ticks.append(seconds)
        runner.stop()

    runner = Scheduler(
        clock=lambda: clock[0], sleep=sleep, interval=5, sync_declared=False
    )
    runner.run()
    assert ticks == [0.25]


def test_the_scheduler_survives_database_errors_with_a_backoff(monkeypatch, caplog):
    from django.db import OperationalError

    calls = []

    def flaky(self, now=None):
        calls.append(now)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        self.stop()
        return 0

    monkeypatch.setattr(Scheduler, "run_once", flaky)
    monkeypatch.setattr(connections, "close_all", lambda: None)
    delays = []
    runner = Scheduler(
        clock=lambda: T0, sleep=delays.append, interval=1, sync_declared=False
    )
    assert runner.run() == 0
    assert delays[:2] == [2, 4]
    assert (
        "cannot reach the database (OperationalError: server closed the connection"
        in caplog.text
    )


def test_old_run_records_are_pruned(scheduler):
    every_minute()
    scheduler.run_once(T0)
    ScheduleRun.objects.update(fired_at=T0 - datetime.timedelta(days=8))
    assert scheduler.prune(T0) == 1
    assert scheduler.prune(T0) == 0  # not again within a few minutes


# The admin: a ModelForm runs the model's validation and shows the same messages.


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = (
            "name",
            "func",
            "schedule_type",
            "minutes",
            "cron",
            "next_run",
            "repeats",
            "timezone",
            "catch_up",
        )


def form(**data):
    base = {
        "name": "f",
        "func": "tests.testapp.tasks.add",
        "schedule_type": "CRON",
        "cron": "0 3 * * *",
        "next_run": "2027-06-01 10:00",
        "repeats": -1,
        "timezone": "",
        "catch_up": "SKIP",
    }
    return ScheduleForm(data={**base, **data})


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"cron": "0 25 * * *"}, "cron", "the hour field '25' must be 0-23."),
        (
            {"schedule_type": "MINUTES", "cron": "", "minutes": "0"},
            "minutes",
            "minutes must be a positive whole number",
        ),
        (
            {"func": "os.system"},
            "func",
            "No task is registered as 'os.system'. Only functions decorated with @task",
        ),
        (
            {"func": "tests.testapp.tasks.ad"},
            "func",
            "Did you mean 'tests.testapp.tasks.add'?",
        ),
        (
            {"timezone": "Nowhere/Atlantis"},
            "timezone",
            "'Nowhere/Atlantis' is not an IANA time zone name",
        ),
    ],
)
def test_the_admin_form_refuses_bad_input_with_the_same_message(data, field, message):
    bound = form(**data)
    assert not bound.is_valid()
    assert message in " ".join(bound.errors[field])


def test_the_admin_form_aligns_a_cron_schedules_next_run():
    bound = form(timezone="Europe/Berlin")
    assert bound.is_valid(), bound.errors
    made = bound.save()
    assert made.next_run == datetime.datetime(
        2027, 6, 2, 1, 0, tzinfo=UTC
    )  # 03:00 CEST


def test_check_command_reports_a_removed_function(capsys):
    stored_schedule(
        "orphan", "tests.testapp.tasks.removed_in_last_deploy", schedule_type="DAILY"
    )
    call_command("check", "--database", "default")
    assert "dbqueue.W003" in capsys.readouterr().err


def test_clean_never_vouches_for_a_hook_written_in_sql():
    made = schedule(
        tasks.add,
        1,
        2,
        name="hooked",
        schedule_type=ScheduleType.DAILY,
        next_run=T0,
        hook="tests.testapp.tasks.remember_hook",
    )
    made.full_clean()  # a hook set through schedule() verifies and is kept
    Schedule.objects.filter(pk=made.pk).update(
        task_options={**made.task_options, "hook": "os.system"}
    )
    forged = Schedule.objects.get(pk=made.pk)
    with pytest.raises(ValidationError, match="was not set through"):
        forged.full_clean()
    assert Schedule.objects.get(pk=made.pk).payload == made.payload
