"""Chains: each link is enqueued only once the one before succeeded, in the same transaction."""

import datetime
import json
import logging
import threading
import time
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, OperationalError, connection
from django.test import override_settings

from dbqueue import (
    Chain,
    api,
    async_chain,
    cancel_group,
    chains,
    claiming,
    count_group,
    fetch_group,
    groups,
    result_group,
    serialization,
)
from dbqueue.cluster import executor
from dbqueue.cluster.worker import Worker
from dbqueue.exceptions import PayloadTooLarge, SerializationError, TaskNotFound
from dbqueue.models import FailedTask, Status, Task
from tests.conftest import drain
from tests.testapp import tasks
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return Worker(worker_id="chain-worker", queues=["*"], batch_size=1, poll_interval=0)


def labels():
    return [e.label for e in Execution.objects.order_by("id")]


def claim_and_run(worker_id="claimer"):
    """Claim the one due task and run it, leaving its outcome unrecorded."""
    [task] = claiming.claim(worker_id, None, 1)
    return executor.execute(task)


class FakeDeadlock(Exception):
    """Looks like a lock conflict to every vendor's claiming.is_transient()."""

    sqlstate = "40P01"

    def __init__(self):
        super().__init__(1213, "database is locked (deadlock)")


def lock_conflict():
    error = OperationalError("database is locked (deadlock)")
    error.__cause__ = FakeDeadlock()
    return error


def test_only_the_first_link_is_stored_until_it_succeeds(worker):
    group = async_chain(
        [(tasks.record, ("a",)), (tasks.record, ("b",)), (tasks.record, ("c",))]
    )
    [first] = Task.objects.all()
    assert (first.group, first.args) == (group, ("a",))
    worker.run_once()
    assert Task.objects.count() == 2
    second = Task.objects.get(status=Status.QUEUED)
    assert (second.group, second.args, second.func) == (
        group,
        ("b",),
        "tests.testapp.tasks.record",
    )
    drain(worker)
    assert labels() == ["a", "b", "c"]
    assert result_group(group) == ["a", "b", "c"]
    assert count_group(group) == 3
    assert fetch_group(group)[-1].chain == ""


def test_a_chain_whose_middle_link_fails_stops_there(worker):
    group = async_chain(
        [
            (tasks.record, ("a",)),
            (tasks.fail, ("middle broke",), {"max_attempts": 2}),
            (tasks.record, ("c",)),
        ]
    )
    drain(worker)
    assert labels() == ["a"]
    assert [t.func for t in Task.objects.order_by("enqueued_at", "id")] == [
        "tests.testapp.tasks.record",
        "tests.testapp.tasks.fail",
    ]
    failed = Task.objects.get(func="tests.testapp.tasks.fail")
    assert (failed.status, failed.attempts) == (Status.FAILED, 2)
    assert result_group(group) == ["a"]
    assert result_group(group, failures=True) == ["a", None]
    assert count_group(group, failures=True) == 1
    # The dead-letter entry carries the rest of the chain, so a replay resumes it.
    dead = FailedTask.objects.get(task_id=failed.id)
    [third] = chains._decode(dead.chain)
    assert third["func"] == "tests.testapp.tasks.record"
    assert serialization.loads_payload(third["func"], third["payload"]) == (("c",), {})


def test_a_link_that_succeeds_on_retry_carries_the_chain_on(worker):
    group = async_chain(
        [
            (tasks.record, ("a",)),
            (tasks.fail_first_attempt, ("b",), {"max_attempts": 2}),
            (tasks.record, ("c",)),
        ]
    )
    drain(worker)
    assert labels() == ["a", "attempted:b", "b", "c"]
    assert result_group(group) == ["a", "b", "c"]


def test_pass_result_prepends_the_previous_return_value(worker):
    group = async_chain(
        [
            (tasks.add, (1, 2)),
            (tasks.add, (10,), {"pass_result": True}),
            (tasks.add, (100,), {"q_options": {"pass_result": True}}),
            (tasks.add, (1000, 1)),
        ]
    )
    drain(worker)
    assert result_group(group) == [3, 13, 113, 1001]


def test_pass_result_for_the_whole_chain_is_celerys_chain(worker):
    group = async_chain([(tasks.add, (1, 2)), (tasks.add, (10,))], pass_result=True)
    drain(worker)
    assert result_group(group) == [3, 13]


def test_links_share_the_given_group_and_options_apply_to_every_link(worker):
    group = async_chain(
        [(tasks.add, (1, 2)), (tasks.add, (3, 4), {"priority": 7})],
        group="nightly",
        queue="reports",
    )
    assert group == "nightly"
    worker.run_once()
    assert [(t.group, t.queue, t.priority) for t in Task.objects.order_by("id")] == [
        ("nightly", "reports", 0),
        ("nightly", "reports", 7),
    ]


def test_a_links_countdown_counts_from_when_the_link_is_enqueued(worker):
    async_chain([(tasks.add, (1, 2)), (tasks.add, (3, 4), {"countdown": 600})])
    worker.run_once()
    first = Task.objects.get(status=Status.SUCCEEDED)
    second = Task.objects.get(status=Status.QUEUED)
    assert second.run_after >= first.started_at + datetime.timedelta(seconds=600)


def test_a_link_with_save_false_still_enqueues_the_next(worker):
    group = async_chain(
        [(tasks.record, ("a",), {"save": False}), (tasks.record, ("b",))]
    )
    drain(worker)
    assert labels() == ["a", "b"]
    assert result_group(group) == ["b"]
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    ("chain", "error", "message"),
    [
        ([], ValueError, "at least one link"),
        ([(tasks.add, (1, 2), {"pass_result": True})], ValueError, "first link"),
        ([(tasks.add, (1, 2)), (tasks.add, (1,), {"group": "g"})], ValueError, "group"),
        (
            [(tasks.add, (1, 2)), (tasks.add, (1, 2), {"unique_key": "k"})],
            ValueError,
            "unique_key is not accepted in link 2 of the chain",
        ),
        ([(tasks.add, "12")], TypeError, "must be a tuple or a list"),
        ([(tasks.add, (1, 2), {}, "extra")], TypeError, "has 4 items"),
        (
            [(tasks.add, (1, 2)), (tasks.add, (1,), {"pass_result": "yes"})],
            TypeError,
            "pass_result",
        ),
        ([tasks.pid, ("tests.testapp.tasks.nope", (1,))], TaskNotFound, "nope"),
        ([tasks.pid, (tasks.echo, (lambda: 1,))], SerializationError, "echo"),
    ],
)
def test_a_bad_link_fails_at_enqueue_and_stores_nothing(chain, error, message):
    with pytest.raises(error, match=message):
        async_chain(chain)
    assert not Task.objects.exists()


def test_the_error_names_the_link():
    with pytest.raises(TaskNotFound) as raised:
        async_chain([tasks.pid, tasks.pid, "tests.testapp.tasks.nope"])
    assert "In link 3 of the chain." in raised.value.__notes__


@pytest.mark.django_db(transaction=True)
def test_the_continuation_is_rolled_back_with_the_success_on_a_lock_conflict(
    monkeypatch,
):
    async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    outcome = claim_and_run()

    def conflict(task, **kwargs):
        raise lock_conflict()

    monkeypatch.setattr(api, "insert", conflict)
    with pytest.raises(OperationalError):
        executor.record(outcome, "claimer")
    # Neither the success nor the next link was stored: the task is still
    # running under its lease, so it is either recorded again or rescued.
    [task] = Task.objects.all()
    assert (task.status, task.result_payload, task.attempt_log) == (
        Status.RUNNING,
        "",
        [],
    )
    monkeypatch.undo()
    assert executor.record(outcome, "claimer")
    first, second = Task.objects.order_by("enqueued_at", "id")
    assert (first.status, first.result, len(first.attempt_log)) == (
        Status.SUCCEEDED,
        "a",
        1,
    )
    assert (second.status, second.args) == (Status.QUEUED, ("b",))


def test_a_lock_conflict_is_retried_and_the_next_link_stored_once(monkeypatch):
    async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    outcome = claim_and_run()
    real_insert = api.insert
    calls = []

    def conflict_once(task, **kwargs):
        calls.append(task.id)
        if len(calls) == 1:
            raise lock_conflict()
        return real_insert(task, **kwargs)

    monkeypatch.setattr(api, "insert", conflict_once)
    assert executor.record(outcome, "claimer")
    assert len(calls) == 2
    assert [t.status for t in Task.objects.order_by("enqueued_at", "id")] == [
        Status.SUCCEEDED,
        Status.QUEUED,
    ]


def test_a_next_link_the_database_refuses_stops_the_chain_not_the_success(
    monkeypatch, caplog
):
    group = async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    outcome = claim_and_run()

    def refuse(task, **kwargs):
        raise IntegrityError("constraint failed")

    monkeypatch.setattr(api, "insert", refuse)
    assert executor.record(outcome, "claimer")
    [task] = Task.objects.all()
    assert (task.status, task.result) == (Status.SUCCEEDED, "a")
    assert task.error.startswith("Chain stopped after this task")
    assert "IntegrityError: constraint failed" in task.error
    assert f"group={group} stopped" in caplog.text


def test_a_result_too_big_for_the_next_link_stops_the_chain_with_the_error(
    worker, caplog
):
    group = async_chain(
        [(tasks.big_text, (5000,)), (tasks.add, ("y",), {"pass_result": True})]
    )
    with (
        override_settings(DBQUEUE_MAX_PAYLOAD_SIZE=2000),
        caplog.at_level(logging.ERROR, logger="dbqueue.chains"),
    ):
        drain(worker)
    [task] = Task.objects.all()
    assert task.status == Status.SUCCEEDED
    assert len(task.result) == 5000
    assert PayloadTooLarge.__name__ in task.error
    assert "tests.testapp.tasks.add" in task.error
    assert "stopped" in caplog.text
    assert result_group(group) == ["x" * 5000]


def test_a_chain_column_edited_in_sql_cannot_run_another_function(worker, caplog):
    async_chain([(tasks.add, (1, 2)), (tasks.add, (3, 4))])
    first = Task.objects.get()
    document = json.loads(first.chain)
    document["links"][0]["func"] = "tests.testapp.tasks.record"
    Task.objects.filter(id=first.id).update(chain=json.dumps(document))
    drain(worker)
    assert not Execution.objects.exists()
    [task] = Task.objects.all()
    assert task.status == Status.SUCCEEDED
    assert "PayloadSignatureError" in task.error


def test_sync_mode_runs_the_whole_chain_before_returning():
    group = async_chain(
        [(tasks.add, (1, 2)), (tasks.add, (3,))], pass_result=True, sync=True
    )
    assert result_group(group) == [3, 6]


def test_sync_setting_runs_chains_too():
    with override_settings(DBQUEUE_SYNC=True):
        group = async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    assert labels() == ["a", "b"]
    assert count_group(group) == 2


def test_cancel_group_withdraws_the_queued_link(worker):
    group = async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    worker.run_once()
    assert cancel_group(group) == 1
    drain(worker)
    assert labels() == ["a"]
    assert result_group(group, failures=True) == ["a", None]


def test_cancel_group_stops_a_chain_whose_link_is_running():
    group = async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    outcome = claim_and_run()
    assert cancel_group(group) == 0
    assert executor.record(outcome, "claimer")
    [task] = Task.objects.all()
    assert (task.status, task.result) == (Status.SUCCEEDED, "a")


def test_chain_class_appends_runs_and_reads_back(worker):
    chain = Chain()
    assert chain.append(tasks.add, 1, 2) == 1
    assert chain.append(tasks.add, 10, pass_result=True) == 2
    chain.append("tests.testapp.tasks.square", 3, priority=5)
    assert chain.length() == 3
    assert (chain.result(), chain.fetch(), chain.current()) == (None, None, None)
    group = chain.run()
    assert chain.current() == 0
    drain(worker)
    assert chain.current() == 3
    assert chain.result(wait=1000) == [3, 13, 9]
    assert [t.group for t in chain.fetch()] == [group] * 3
    # Another run makes a new group, so the runs do not mix.
    assert chain.run() != group


def test_chain_result_waits_until_the_chain_ends(monkeypatch, worker):
    chain = Chain(
        [
            (tasks.add, (1, 2)),
            (tasks.fail, (), {"max_attempts": 1}),
            (tasks.add, (5, 6)),
        ]
    )
    chain.run()
    slept = []

    def run_a_batch(seconds):
        slept.append(seconds)
        worker.run_once()

    monkeypatch.setattr(
        groups, "time", SimpleNamespace(monotonic=time.monotonic, sleep=run_a_batch)
    )
    assert chain.result(wait=-1) == [3]
    assert len(slept) == 2
    assert [t.status for t in chain.fetch()] == [Status.SUCCEEDED, Status.FAILED]


@pytest.mark.vendor("postgresql", "mysql")
@pytest.mark.django_db(transaction=True)
def test_cancel_group_racing_a_links_success_cancels_the_link_it_enqueued(
    monkeypatch,
):
    group = async_chain([(tasks.record, ("a",)), (tasks.record, ("b",))])
    outcome = claim_and_run()
    real_insert = api.insert
    cancelled = []

    def cancel_from_another_connection():
        try:
            cancelled.append(cancel_group(group))
        finally:
            connection.close()

    racer = threading.Thread(target=cancel_from_another_connection)

    def insert_then_race(task, **kwargs):
        stored = real_insert(task, **kwargs)
        # The success and the next link are written but not committed: the
        # cancel must wait for them rather than miss the new link.
        racer.start()
        racer.join(0.2)
        return stored

    monkeypatch.setattr(api, "insert", insert_then_race)
    assert executor.record(outcome, "claimer")
    racer.join(10)
    assert cancelled == [1]
    first, second = Task.objects.order_by("enqueued_at", "id")
    assert (first.status, second.status) == (Status.SUCCEEDED, Status.CANCELLED)
