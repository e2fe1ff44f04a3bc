"""Replay of the dead-letter queue, from code (replay, replay_many) and from the shell (qreplay)."""

import datetime
import importlib.util
import io
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from dbqueue import (
    AlreadyReplayed,
    DuplicateTask,
    TaskNotFound,
    api,
    exceptions,
    fetch,
    replay,
    replay_many,
    replays,
    serialization,
)
from dbqueue.cluster.worker import Worker
from dbqueue.models import FailedTask, Status, Task
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db

HAS_DJANGO_TASKS = (
    importlib.util.find_spec("django.tasks") is not None
    or importlib.util.find_spec("django_tasks") is not None
)


@pytest.fixture
def worker():
    return Worker(worker_id="test-worker", queues=["*"], poll_interval=0)


def drain(worker, rounds=20):
    """Run the worker until nothing is due, making retries due at once."""
    for _ in range(rounds):
        Task.objects.queued().update(run_after=timezone.now())
        if not worker.run_once():
            return


def dead_letter_for_real(worker, label="report", max_attempts=3):
    """Run fails_while_blocked until it is dead-lettered; return its FailedTask."""
    Execution.objects.create(label=f"blocked:{label}")
    task_id = api.async_task(
        tasks.fails_while_blocked, label, max_attempts=max_attempts
    )
    drain(worker)
    return FailedTask.objects.get(task_id=task_id)


def make_entry(
    func=tasks.record,
    args=("x",),
    *,
    exception_class="builtins.ValueError",
    failed_at=None,
    save=True,
    **fields,
):
    """A dead-letter entry as mark_failed() writes it, without running a worker."""
    task = api.build_task(func, args)
    entry = FailedTask(
        task_id=uuid.uuid4(),
        name=task.name,
        func=task.func,
        payload=task.payload,
        queue=task.queue,
        priority=task.priority,
        max_attempts=task.max_attempts,
        timeout=task.timeout,
        keep_result=task.keep_result,
        on_orphan=task.on_orphan,
        hook=task.hook,
        enqueued_at=timezone.now(),
        attempts=task.max_attempts,
        error="ValueError: x",
        exception_class=exception_class,
        failed_at=failed_at or timezone.now(),
    )
    for name, value in fields.items():
        setattr(entry, name, value)
    if save:
        entry.save()
    return entry


def gone_entry():
    """An entry of a function that a deploy has since removed."""
    path = "tests.testapp.tasks.gone"
    entry = make_entry(save=False)
    entry.func = entry.name = path
    entry.payload = serialization.dumps_payload(path, (), {})
    entry.save()
    return entry


def unblock(label="report"):
    Execution.objects.filter(label=f"blocked:{label}").delete()


def test_the_public_names_are_the_functions_not_the_module():
    import dbqueue

    assert dbqueue.replay is replays.replay
    assert dbqueue.replay_many is replays.replay_many
    assert dbqueue.AlreadyReplayed is exceptions.AlreadyReplayed


# The scenario.


def test_a_task_failing_three_times_is_dead_lettered_with_every_attempt(worker):
    Execution.objects.create(label="blocked:report")
    task_id = api.async_task(tasks.fails_while_blocked, "report", max_attempts=3)
    worker.run_once()
    retried = fetch(task_id)
    assert (retried.status, retried.attempts) == (Status.QUEUED, 1)
    assert retried.run_after > retried.enqueued_at, "the retry waits out a backoff"
    drain(worker)
    dead = FailedTask.objects.get(task_id=task_id)
    assert (dead.func, dead.name, dead.queue) == (
        "tests.testapp.tasks.fails_while_blocked",
        "tests.testapp.tasks.fails_while_blocked",
        "default",
    )
    assert dead.payload == fetch(task_id).payload
    assert (dead.attempts, dead.max_attempts) == (3, 3)
    assert (dead.error, dead.exception_class) == (
        "ValueError: report is blocked",
        "builtins.ValueError",
    )
    assert 'raise ValueError(f"{label} is blocked")' in dead.traceback
    assert dead.worker_id == "test-worker"
    assert dead.enqueued_at <= dead.started_at <= dead.failed_at
    assert [(e["attempt"], e["error"], e["worker_id"]) for e in dead.attempt_log] == [
        (n, "report is blocked", "test-worker") for n in (1, 2, 3)
    ]
    assert all(e["started_at"] and e["finished_at"] for e in dead.attempt_log)
    assert (dead.replayed_at, dead.replayed_as, dead.replay_count, dead.replay_log) == (
        None,
        None,
        0,
        [],
    )


def test_a_dead_lettered_task_replayed_from_code_runs_and_succeeds(worker):
    dead = dead_letter_for_real(worker)
    unblock()
    before = timezone.now()
    task = replay(dead)
    assert task.id != dead.task_id
    stored = Task.objects.get(id=task.id)
    assert (stored.status, stored.attempts, stored.attempt_log) == (
        Status.QUEUED,
        0,
        [],
    )
    assert (stored.func, stored.payload, stored.max_attempts, stored.queue) == (
        dead.func,
        dead.payload,
        3,
        "default",
    )
    assert before <= stored.run_after <= timezone.now()
    # The instance passed in is updated, as is the row.
    assert dead.replayed_as == task.id
    dead.refresh_from_db()
    assert (dead.replayed_as, dead.replay_count) == (task.id, 1)
    assert dead.replayed_at >= before
    assert dead.replay_log == [
        {"at": dead.replayed_at.isoformat(), "by": "code", "task_id": str(task.id)}
    ]
    [outcome] = worker.run_once()
    assert outcome.succeeded
    assert fetch(task.id).result == "report"
    assert Execution.objects.filter(label="report").count() == 1


def test_a_dead_lettered_task_replayed_from_the_shell_runs_and_succeeds(worker):
    dead = dead_letter_for_real(worker)
    unblock()
    out = io.StringIO()
    call_command("qreplay", str(dead.id), stdout=out)
    dead.refresh_from_db()
    assert (
        f"Replayed failed task {dead.id} as task {dead.replayed_as}." in out.getvalue()
    )
    assert "Replayed 1, skipped 0 (already replayed), failed 0." in out.getvalue()
    assert [e["by"] for e in dead.replay_log] == ["shell"]
    drain(worker)
    assert fetch(dead.replayed_as).status == Status.SUCCEEDED
    assert Execution.objects.filter(label="report").count() == 1


def test_a_replay_that_fails_again_becomes_a_new_entry(worker):
    dead = dead_letter_for_real(worker, max_attempts=1)
    task = replay(dead)
    drain(worker)
    again = FailedTask.objects.get(task_id=task.id)
    assert again.id != dead.id
    assert again.payload == dead.payload
    assert FailedTask.objects.count() == 2


# What a replay copies.


def test_a_replay_copies_the_entrys_options_hook_and_chain():
    entry = make_entry(
        tasks.hooked,
        (21,),
        queue="emails",
        priority=7,
        max_attempts=4,
        timeout=12.5,
        keep_result=False,
        on_orphan="FAIL",
        group="batch-1",
        name="nightly",
        chain="the rest of the chain",
    )
    task = Task.objects.get(id=replay(entry).id)
    copied = [
        "name",
        "func",
        "payload",
        "queue",
        "priority",
        "max_attempts",
        "timeout",
        "keep_result",
        "on_orphan",
        "group",
        "hook",
        "chain",
    ]
    assert {f: getattr(task, f) for f in copied} == {
        f: getattr(entry, f) for f in copied
    }
    assert task.hook == "tests.testapp.tasks.remember_hook"
    assert task.args == (21,), "the payload still verifies: it is bound to func+hook"
    assert (task.expires_at, task.unique_key, task.unique_hold) == (None, None, None)


def test_a_replay_holds_the_entrys_unique_key():
    entry = make_entry(unique_key="nightly-report")
    task = replay(entry)
    assert Task.objects.get(id=task.id).unique_hold == "nightly-report"


# Replaying twice.


def test_replaying_an_entry_twice_is_refused_unless_again():
    entry = make_entry()
    first = replay(entry, by="alice")
    with pytest.raises(AlreadyReplayed, match=r"pass again=True") as caught:
        replay(entry, by="bob")
    assert caught.value.replayed_as == first.id
    entry.refresh_from_db()
    assert (entry.replay_count, len(entry.replay_log)) == (1, 1), (
        "a refusal logs nothing"
    )
    assert Task.objects.count() == 1
    second = replay(entry, by="bob", again=True)
    entry.refresh_from_db()
    assert (entry.replay_count, entry.replayed_as) == (2, second.id)
    assert [(e["by"], e["task_id"]) for e in entry.replay_log] == [
        ("alice", str(first.id)),
        ("bob", str(second.id)),
    ]
    assert Task.objects.count() == 2


def test_a_stale_instance_cannot_replay_an_entry_twice():
    entry = make_entry()
    stale = FailedTask.objects.get(id=entry.id)
    replay(entry)
    assert stale.replay_count == 0
    with pytest.raises(AlreadyReplayed):
        replay(stale)
    assert Task.objects.count() == 1


def test_a_replay_that_raced_another_one_is_undone(monkeypatch):
    """Where the row lock is a no-op, the conditional update still catches a race."""
    entry = make_entry()
    real_insert = api.insert

    def insert_during_another_replay(task, **kwargs):
        FailedTask.objects.filter(id=entry.id).update(replay_count=1)
        return real_insert(task, **kwargs)

    monkeypatch.setattr(api, "insert", insert_during_another_replay)
    with pytest.raises(DatabaseError, match=r"changed while it was being replayed"):
        replay(entry)
    assert not Task.objects.exists()
    assert_unreplayed_with_error(entry, "DatabaseError: Failed task")


def test_replay_many_skips_entries_replayed_before_unless_again():
    entries = [make_entry(args=(n,)) for n in range(3)]
    replay(entries[0])
    report = replay_many(entries)
    assert report.skipped == [entries[0].id]
    assert set(report.replayed) == {entries[1].id, entries[2].id}
    assert str(report) == "Replayed 2, skipped 1 (already replayed), failed 0."
    report = replay_many(entries, again=True)
    assert (len(report.replayed), report.skipped) == (3, [])
    assert Task.objects.count() == 6


def test_replay_by_id_or_string_id():
    entry = make_entry()
    assert replay(entry.id).id == FailedTask.objects.get().replayed_as
    with pytest.raises(FailedTask.DoesNotExist):
        replay(str(uuid.uuid4()))
    with pytest.raises(ValueError, match=r"'nope' is not a failed task id"):
        replay("nope")
    with pytest.raises(ValueError, match=r"by must name who replays"):
        replay(entry, by="", again=True)


# Failing replays lose nothing.


def assert_unreplayed_with_error(entry, error_prefix, by="code"):
    entry.refresh_from_db()
    assert (entry.replay_count, entry.replayed_at, entry.replayed_as) == (0, None, None)
    [logged] = entry.replay_log
    assert logged["by"] == by
    assert "task_id" not in logged
    assert logged["error"].startswith(error_prefix), logged["error"]


def test_replaying_a_function_no_longer_registered_is_refused_and_logged():
    entry = gone_entry()
    with pytest.raises(TaskNotFound, match=r"Cannot replay: No task is registered"):
        replay(entry)
    assert not Task.objects.exists()
    assert_unreplayed_with_error(entry, "TaskNotFound: Cannot replay")


def test_a_unique_key_held_by_an_active_task_fails_the_replay_until_it_finishes(
    worker,
):
    holder = api.enqueue(tasks.record, ("holder",), unique_key="nightly")
    entry = make_entry(unique_key="nightly")
    with pytest.raises(DuplicateTask) as caught:
        replay(entry)
    assert caught.value.existing_id == holder.id
    assert list(Task.objects.values_list("id", flat=True)) == [holder.id]
    assert_unreplayed_with_error(entry, f"DuplicateTask: Task {holder.id}")
    drain(worker)
    task = replay(entry)
    assert Task.objects.get(id=task.id).unique_hold == "nightly"


@pytest.mark.parametrize("broken", ["insert", "record"])
def test_a_database_error_rolls_the_whole_replay_back_and_is_logged(
    monkeypatch, broken
):
    entry = make_entry()

    def fail(*args, **kwargs):
        raise DatabaseError("connection lost")

    if broken == "insert":
        monkeypatch.setattr(api, "insert", fail)
    else:
        # After the Task was inserted: the insert must roll back with it.
        monkeypatch.setattr(replays, "_mark_replayed", fail)
    with pytest.raises(DatabaseError, match="connection lost"):
        replay(entry)
    assert not Task.objects.exists()
    assert_unreplayed_with_error(entry, "DatabaseError: connection lost")


def test_a_failing_insert_in_the_database_fails_only_its_own_entry():
    good = [make_entry(args=(n,)) for n in range(4)]
    # Outside the Task table's CHECK constraint: the INSERT itself fails.
    bad = make_entry(priority=500)
    report = replay_many([*good[:2], bad, *good[2:]])
    assert set(report.replayed) == {e.id for e in good}
    assert list(report.failed) == [bad.id]
    assert isinstance(report.failed[bad.id], DatabaseError)
    assert not report.ok
    assert Task.objects.count() == 4
    assert_unreplayed_with_error(bad, "IntegrityError")


def test_replay_many_reports_each_failure_and_replays_the_rest():
    held = api.enqueue(tasks.record, ("holder",), unique_key="k")
    gone = gone_entry()
    duplicate = make_entry(unique_key="k")
    fine = make_entry()
    missing = uuid.uuid4()
    report = replay_many([gone, duplicate, fine, missing], by="ops")
    assert list(report.replayed) == [fine.id]
    assert isinstance(report.failed[gone.id], TaskNotFound)
    assert isinstance(report.failed[duplicate.id], DuplicateTask)
    assert isinstance(report.failed[missing], FailedTask.DoesNotExist)
    assert str(report) == "Replayed 1, skipped 0 (already replayed), failed 3."
    assert_unreplayed_with_error(gone, "TaskNotFound", by="ops")
    assert_unreplayed_with_error(duplicate, "DuplicateTask", by="ops")
    assert set(Task.objects.values_list("id", flat=True)) == {
        held.id,
        report.replayed[fine.id],
    }


# Selections and filters.


def test_replay_many_of_a_queryset_and_of_ids():
    entries = [make_entry(args=(n,)) for n in range(5)]
    report = replay_many(FailedTask.objects.filter(id__in=[e.id for e in entries[:2]]))
    assert set(report.replayed) == {entries[0].id, entries[1].id}
    report = replay_many([str(entries[2].id), entries[3].id])
    assert set(report.replayed) == {entries[2].id, entries[3].id}
    assert FailedTask.objects.filter(replay_count=0).get() == entries[4]


def test_replay_many_of_a_sliced_queryset():
    entries = [make_entry(args=(n,)) for n in range(4)]
    report = replay_many(FailedTask.objects.order_by("id")[:3], batch_size=2)
    assert list(report.replayed) == [e.id for e in entries[:3]]
    assert report.batches == [2, 1]


def test_replay_many_needs_a_selection_or_a_filter():
    make_entry()
    with pytest.raises(ValueError, match=r"FailedTask.objects.all\(\) to replay every"):
        replay_many()
    assert len(replay_many(FailedTask.objects.all()).replayed) == 1


def test_replay_many_filters_by_function_as_path_or_callable():
    record = make_entry(tasks.record, ("x",))
    add = make_entry(tasks.add, (1, 2))
    assert list(replay_many(func="tests.testapp.tasks.add").replayed) == [add.id]
    assert list(replay_many(func=tasks.record).replayed) == [record.id]


def test_replay_many_filters_by_queue():
    make_entry(queue="default")
    emails = make_entry(queue="emails")
    assert list(replay_many(queue="emails").replayed) == [emails.id]


def test_replay_many_filters_by_time_range():
    now = timezone.now()
    old = make_entry(failed_at=now - datetime.timedelta(days=3))
    middle = make_entry(failed_at=now - datetime.timedelta(days=2))
    make_entry(failed_at=now - datetime.timedelta(days=1))
    report = replay_many(since=middle.failed_at, until=now - datetime.timedelta(days=1))
    assert list(report.replayed) == [middle.id], "since is included, until is not"
    assert list(replay_many(until=middle.failed_at).replayed) == [old.id]
    with pytest.raises(ValueError, match=r"since must be an aware datetime"):
        replay_many(since=datetime.datetime(2024, 1, 1))


def test_replay_many_filters_by_exception_class_and_its_subclasses():
    value = make_entry(exception_class="builtins.ValueError")
    key = make_entry(exception_class="builtins.KeyError")
    not_found = make_entry(exception_class="dbqueue.exceptions.TaskNotFound")
    make_entry(exception_class="builtins.RuntimeError")
    removed = make_entry(exception_class="myapp.errors.Gone")
    report = replay_many(exception=LookupError)
    assert set(report.replayed) == {key.id, not_found.id}
    assert list(replay_many(exception="ValueError").replayed) == [value.id]
    assert list(replay_many(exception="myapp.errors.Gone").replayed) == [removed.id]
    assert not replay_many(exception="builtins.KeyError").replayed, "replayed already"
    with pytest.raises(TypeError, match=r"'dbqueue.replays.replay' names a function"):
        replay_many(exception="dbqueue.replays.replay")


def test_filters_narrow_a_selection():
    default = make_entry(queue="default")
    emails = make_entry(queue="emails")
    report = replay_many([default.id, emails.id], queue="emails")
    assert list(report.replayed) == [emails.id]
    assert FailedTask.objects.get(id=default.id).replay_count == 0


# Batches.


@pytest.mark.django_db(transaction=True)
def test_a_thousand_entries_replay_in_short_transactions_of_one_batch_each():
    template = make_entry(save=False)
    FailedTask.objects.bulk_create(
        [
            FailedTask(
                **{
                    f.attname: getattr(template, f.attname)
                    for f in FailedTask._meta.concrete_fields
                    if f.attname != "id"
                },
                id=uuid.uuid4(),
            )
            for _ in range(1000)
        ]
    )
    # Every INSERT of a Task, grouped by the outermost transaction it ran in.
    inserts = {}

    def observe(execute, sql, params, many, context):
        # On PostgreSQL the INSERT sits in a WITH that also sends the NOTIFY.
        upper = sql.upper()
        if (
            'INSERT INTO "DBQUEUE_TASK"' in upper
            or "INSERT INTO `DBQUEUE_TASK`" in upper
        ):
            assert connection.in_atomic_block, (
                "a Task was inserted outside a transaction"
            )
            outermost = connection.atomic_blocks[0]
            if not hasattr(outermost, "test_number"):
                outermost.test_number = len(inserts)
            times = inserts.setdefault(outermost.test_number, [])
            times.append(time.monotonic())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        started = time.monotonic()
        report = replay_many(FailedTask.objects.all(), by="bulk")
        took = time.monotonic() - started
    assert (len(report.replayed), report.skipped, report.failed) == (1000, [], {})
    assert report.batches == [100] * 10
    assert sorted(len(times) for times in inserts.values()) == [100] * 10
    assert max(times[-1] - times[0] for times in inserts.values()) < 5, took
    assert Task.objects.count() == 1000
    assert not FailedTask.objects.exclude(replay_count=1).exists()
    assert set(Task.objects.values_list("id", flat=True)) == set(
        report.replayed.values()
    )


# The management command.


def run_qreplay(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("qreplay", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_qreplay_refuses_to_replay_everything_without_all():
    make_entry()
    with pytest.raises(CommandError, match=r"or --all to replay every entry"):
        run_qreplay()
    assert not Task.objects.exists()
    out, _ = run_qreplay("--all")
    assert "Replayed 1, skipped 0" in out
    with pytest.raises(CommandError, match=r"ids or --all, not both"):
        run_qreplay("--all", str(uuid.uuid4()))


def test_qreplay_filters_and_skips_unless_again():
    now = timezone.now()
    match = make_entry(
        tasks.add, (1, 2), queue="emails", exception_class="builtins.KeyError"
    )
    make_entry(tasks.add, (1, 2), queue="default", exception_class="builtins.KeyError")
    make_entry(
        tasks.record, ("x",), queue="emails", exception_class="builtins.KeyError"
    )
    make_entry(
        tasks.add,
        (1, 2),
        queue="emails",
        exception_class="builtins.KeyError",
        failed_at=now - datetime.timedelta(days=10),
    )
    flags = [
        "--func=tests.testapp.tasks.add",
        "--queue=emails",
        "--exception=LookupError",
        f"--since={(now - datetime.timedelta(days=1)).date().isoformat()}",
        f"--until={(now + datetime.timedelta(minutes=1)).isoformat()}",
    ]
    out, _ = run_qreplay(*flags)
    assert f"Replayed failed task {match.id} as task" in out
    assert "Replayed 1, skipped 0" in out
    out, _ = run_qreplay(*flags)
    assert f"Skipped failed task {match.id}: replayed before (use --again)." in out
    out, _ = run_qreplay(*flags, "--again", "--by=alice")
    assert "Replayed 1, skipped 0" in out
    match.refresh_from_db()
    assert [e["by"] for e in match.replay_log] == ["shell", "alice"]


def test_qreplay_dry_run_changes_nothing():
    entry = make_entry()
    gone = gone_entry()
    out, _ = run_qreplay("--all", "--dry-run")
    assert f"Would replay failed task {entry.id}" in out
    assert f"Would fail failed task {gone.id}" in out
    assert "would replay 1, skip 0 (replayed before), fail 1" in out
    assert not Task.objects.exists()
    assert not FailedTask.objects.exclude(replay_log=[]).exists()


def test_qreplay_reports_failures_and_exits_non_zero():
    gone = gone_entry()
    fine = make_entry()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 replay\(s\) failed"):
        call_command("qreplay", "--all", stdout=out, stderr=err)
    assert f"Failed to replay failed task {gone.id}: TaskNotFound" in err.getvalue()
    assert f"Replayed failed task {fine.id}" in out.getvalue()
    assert_unreplayed_with_error(gone, "TaskNotFound", by="shell")


def test_qreplay_rejects_bad_arguments():
    with pytest.raises(CommandError, match=r"'nope' is not a failed task id"):
        run_qreplay("nope")
    with pytest.raises(CommandError, match=r"No failed task has the id"):
        run_qreplay(str(uuid.uuid4()))
    with pytest.raises(CommandError, match=r"--since must be an ISO date"):
        run_qreplay("--since=yesterday")
    with pytest.raises(CommandError, match=r"--batch-size must be a whole number"):
        run_qreplay("--all", "--batch-size=0")
    # Past what a LIMIT takes on SQLite (2**63 - 1): refused before any query.
    with pytest.raises(CommandError, match=r"from 1 to 10000, got 9223372036854775808"):
        run_qreplay("--all", f"--batch-size={2**63}")
    with pytest.raises(
        CommandError, match=r"--exception: exception must be an exception class"
    ):
        run_qreplay("--exception=dbqueue.replays.replay")
    with pytest.raises(CommandError, match=r"--by: by must name who replays"):
        run_qreplay("--all", "--by= ")
    assert not Task.objects.exists()


# A task of Django's Tasks framework.


@pytest.mark.skipif(not HAS_DJANGO_TASKS, reason="needs Django 6 or django-tasks")
def test_a_django_task_dead_lettered_and_replayed_succeeds(worker, monkeypatch):
    from dbqueue import registry
    from dbqueue.tasks_compat import TaskResultStatus, default_task_backend
    from tests.testapp import django_tasks

    result = django_tasks.record.enqueue("from django")
    registered = registry.registered("tests.testapp.django_tasks.record")

    def broken(task, args, kwargs):
        raise RuntimeError("the mail server is down")

    monkeypatch.setattr(registered, "run", broken)
    drain(worker)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    dead = FailedTask.objects.get(task_id=result.id)
    assert dead.payload.startswith("j:")
    assert dead.error == "RuntimeError: the mail server is down"
    monkeypatch.undo()
    task = replay(dead)
    drain(worker)
    replayed = default_task_backend.get_result(str(task.id))
    assert (replayed.status, replayed.return_value, replayed.args) == (
        TaskResultStatus.SUCCESSFUL,
        "from django",
        ["from django"],
    )
    assert Execution.objects.filter(label="from django").count() == 1


@pytest.mark.parametrize("size", [0, True, 2.0, 10_001, 2**63])
def test_replay_many_refuses_a_batch_size_it_cannot_page_by(size):
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        replay_many(FailedTask.objects.all(), batch_size=size)
