"""Fuzzing the management commands' arguments: qreplay, qcluster, qprune and the ops commands.

The operations commands are qpurge, qhealth, qinfo and qmonitor; qcluster
is fuzzed up to its parser only (see below).

Arguments are given to call_command() as the shell would pass them, as
strings. The property: the command runs, or it raises CommandError (which
manage.py prints as one line, never a traceback) whose message names an
argument, and a refused command changes nothing. No cluster is started:
qcluster's Supervisor, database wait and log setup are replaced, so what
is fuzzed is the validation between the parser and the Supervisor.

Strings may hold what a shell can pass: argv decoded with surrogateescape
gives lone surrogates for bytes that are not UTF-8, so `--func $'\\xff'`
reaches the command as '\\udcff'. NUL cannot come from a shell but can
from call_command(), and is fuzzed too.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import uuid
from typing import Any, ClassVar
from unittest import mock

import hypothesis
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from dbqueue import api, models
from dbqueue.management.commands import qcluster
from tests.fuzz import attempt, example, row_counts
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

# Text a shell could pass (surrogates for undecodable bytes), and NUL.
ARG_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\udcff", "x" * 300, "-", "--"]),
)
ENTRY = "<entry-id>"  # replaced by the id of the dead letter each example makes


def dead_letter() -> models.FailedTask:
    """Store one dead-letter entry of a registered task, as mark_failed() would."""
    task = api.build_task(tasks.echo, (1,))
    return models.FailedTask.objects.create(
        task_id=uuid.uuid4(),
        name=task.name,
        func=task.func,
        payload=task.payload,
        queue=task.queue,
        max_attempts=1,
        attempts=1,
        enqueued_at=timezone.now(),
        error="ValueError: x",
        exception_class="builtins.ValueError",
    )


def run(command: str, argv: list[str]) -> tuple[str | None, Exception | None]:
    out, err = io.StringIO(), io.StringIO()
    _, error = attempt(lambda: call_command(command, *argv, stdout=out, stderr=err))
    return out.getvalue(), error


def assert_command_error(error: Exception, argv: list[str]) -> None:
    """Assert a refusal is a CommandError whose message names one of the arguments given.

    A flag, or for argparse's "unrecognized arguments" the argument itself.
    """
    assert isinstance(error, CommandError), (
        f"Not a CommandError: {type(error).__module__}.{type(error).__name__}: {error}"
    )
    message = str(error)
    assert message.strip()
    named = [flag for flag in flags_of(argv) if flag in message]
    named += [arg for arg in argv if len(arg) > 1 and arg in message]
    # argparse cannot show an empty or one-character stray argument visibly.
    stray = "unrecognized arguments" in message and any(len(a) <= 1 for a in argv)
    assert named or stray or "id" in message or "Give" in message, (
        f"{message!r} names none of {argv}"
    )


def option(flag: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[str]]:
    """One flag with a value, as --flag=value (a value may start with a dash)."""
    return values.map(lambda value: [f"{flag}={value}"])


def switch(flag: str) -> st.SearchStrategy[list[str]]:
    return st.just([flag])


def argvs(parts: list[st.SearchStrategy[list[str]]]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(parts), max_size=5).map(
        lambda chosen: [arg for part in chosen for arg in part]
    )


def flags_of(argv: list[str]) -> list[str]:
    return sorted({arg.partition("=")[0] for arg in argv if arg.startswith("--")})


# qreplay.

DATES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "9999-12-31T23:59:59.999999",
            "2024-02-30",
            "2024-13-01",
            "2024-05-01T25:00",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00+23:59",
            "0000-01-01",
            "yesterday",
        ]
    ),
    st.datetimes(timezones=st.none() | st.timezones()).map(datetime.datetime.isoformat),
    st.dates().map(datetime.date.isoformat),
    ARG_TEXT,
)
EXCEPTIONS = st.one_of(
    st.sampled_from(
        [
            "ValueError",
            "LookupError",
            "builtins.KeyError",
            "dbqueue.replays.replay",
            "os.path.join",
            ".x",
            "..x.y",
            "a..b",
            "builtins.\x00",
            "\udcff",
            "x" * 300,
        ]
    ),
    # No dots: a dotted path is imported, and only the test app's are safe.
    ARG_TEXT.filter(lambda text: "." not in text),
    ARG_TEXT.map(lambda text: f"tests.testapp.fuzz_missing.{text}"),
)
QREPLAY = argvs(
    [
        st.lists(
            st.uuids().map(str) | ARG_TEXT | st.just(ENTRY), min_size=1, max_size=2
        ),
        option("--func", st.just("tests.testapp.tasks.echo") | ARG_TEXT),
        option("--queue", st.just("default") | ARG_TEXT),
        option("--exception", EXCEPTIONS),
        option("--since", DATES),
        option("--until", DATES),
        option("--batch-size", st.integers().map(str) | ARG_TEXT),
        option("--by", st.just("alice") | ARG_TEXT),
        switch("--all"),
        switch("--again"),
        switch("--dry-run"),
    ]
)


@given(argv=QREPLAY)
# Found by CI: a batch size past SQLite's LIMIT reached the database.
@hypothesis.example(argv=["--func=tests.testapp.tasks.echo", f"--batch-size={2**63}"])
def test_qreplay_runs_or_refuses_its_arguments_by_name(argv):
    with example():
        entry = dead_letter()
        argv = [str(entry.id) if arg == ENTRY else arg for arg in argv]
        before = row_counts()
        _, error = run("qreplay", argv)
        if error is not None:
            assert_command_error(error, argv)
            assert row_counts() == before, (
                f"A refused qreplay changed the database: {error}"
            )
            return
        # At most the one entry was replayed, as one new task.
        after = row_counts()
        assert after["FailedTask"] == before["FailedTask"]
        assert after["Task"] - before["Task"] in (0, 1)
        if "--dry-run" in argv:
            assert after == before


# qcluster, up to the Supervisor it would start.


class FakeSupervisor:
    """Records what qcluster would start a cluster with."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeSupervisor.made.append(kwargs)

    def run(self) -> int:
        return 0


# Not "--": test_qcluster_refuses_a_flag_whose_value_is_a_double_dash has it.
NUMBERS = (
    st.integers(-3, 10**6).map(str)
    | st.sampled_from(["1e3", "0x10", "", "2.5"])
    | ARG_TEXT.filter(lambda text: text != "--")
)
QUEUE_NAMES = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=64
)
QCLUSTER = argvs(
    [
        option("--workers", NUMBERS),
        option("--max-tasks", NUMBERS),
        option("--batch-size", NUMBERS),
        option(
            "--poll-interval",
            st.floats(0, 1e6).map(repr)
            | st.sampled_from(["-1", "-0.0", "1e300", "-inf", "x", ""]),
        ),
        # Names a database can store; see the xfail test below for the others.
        option(
            "--queues",
            st.lists(QUEUE_NAMES, max_size=3).map(",".join)
            | st.sampled_from(["*", ",", " , ", "a,,b"]),
        ),
        switch("--burst"),
        switch("--no-scheduler"),
    ]
)


def run_qcluster(argv: list[str]) -> Exception | None:
    """Run qcluster with a FakeSupervisor and no database wait; return its error, if any."""
    FakeSupervisor.made.clear()
    with (
        mock.patch.object(qcluster, "Supervisor", FakeSupervisor),
        mock.patch.object(qcluster, "_wait_for_database", return_value=None),
        mock.patch.object(qcluster, "_show_logs", return_value=None),
    ):
        _, error = run("qcluster", argv)
    return error


@given(argv=QCLUSTER)
def test_qcluster_starts_a_valid_supervisor_or_refuses_its_arguments_by_name(argv):
    error = run_qcluster(argv)
    if error is not None:
        assert_command_error(error, argv)
        assert not FakeSupervisor.made
        return
    [made] = FakeSupervisor.made
    assert isinstance(made["workers"], int)
    assert made["workers"] >= 1
    for name in ("max_tasks", "batch_size"):
        assert made[name] is None or made[name] >= 1
    interval = made["poll_interval"]
    assert interval is None or (math.isfinite(interval) and interval >= 0)
    queues = made["queues"]
    assert queues is None or (queues and all(q and q == q.strip() for q in queues))


@pytest.mark.parametrize("argv", [["--workers=--"], ["--max-tasks=--"]])
def test_qcluster_refuses_a_flag_whose_value_is_a_double_dash(argv):
    error = run_qcluster(argv)
    assert isinstance(error, CommandError), error
    assert_command_error(error, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--poll-interval=nan"],
        ["--poll-interval=inf"],
        ["--poll-interval=1e309"],
        ["--queues=\udcff"],
        ["--queues=a\x00b"],
        ["--queues=" + "q" * 65],
    ],
)
def test_qcluster_refuses_a_poll_interval_or_queue_it_cannot_use(argv):
    error = run_qcluster(argv)
    assert isinstance(error, CommandError), error
    assert_command_error(error, argv)


# qprune.

SECONDS = st.one_of(
    st.floats(0, 6e10).map(repr),
    st.integers(0, 10**9).map(str),
    st.sampled_from(
        ["never", "NEVER", " never ", "-1", "nan", "inf", "-inf", "x", "", "1_000"]
    ),
    ARG_TEXT,
)
QPRUNE = argvs(
    [
        option("--succeeded-older-than", SECONDS),
        option("--failed-older-than", SECONDS),
        option("--dead-letters-older-than", SECONDS),
        option(
            "--batch-size", NUMBERS | st.sampled_from(["10000", "10001", str(2**64)])
        ),
        switch("--dry-run"),
    ]
)


@given(argv=QPRUNE)
def test_qprune_prunes_or_refuses_its_arguments_by_name(argv):
    with example():
        dead_letter()
        before = row_counts()
        out, error = run("qprune", argv)
        if error is not None:
            assert_command_error(error, argv)
            assert row_counts() == before, (
                f"A refused qprune changed the database: {error}"
            )
            return
        assert "Deleted" in out or "Would delete" in out or "Kept all" in out
        if "--dry-run" in argv:
            assert row_counts() == before


@pytest.mark.parametrize("value", ["1e11", "1e300"])
def test_qprune_keeps_everything_for_a_retention_longer_than_history(value):
    with example():
        dead_letter()
        before = row_counts()
        out, error = run("qprune", [f"--dead-letters-older-than={value}"])
        assert error is None
        assert "Deleted 0 dead letters" in out
        assert row_counts() == before


# Regression tests for what the fuzzing found in qreplay.


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--func=a\x00b"], "--func"),
        (["--func=\udcff"], "--func"),
        (["--queue=\x00"], "--queue"),
        (["--exception=builtins.\x00"], "--exception"),
        (["--exception=\udcff"], "--exception"),
        (["--all", "--by=\udcff"], "--by"),
        (["--since=9999-12-31T23:59:59-05:00"], "--since"),
        (["--until=0001-01-01T00:00:00+05:00"], "--until"),
        (["--since=9999-12-31T23:59:59.999999"], "--since"),
        (["--func=--"], "--func"),
        (["--since=--"], "--since"),
        (["--batch-size=--", "--all"], "--batch-size"),
    ],
)
def test_qreplay_refuses_text_and_dates_no_database_can_take(argv, flag):
    # Each escaped as a traceback: DataError (NUL on PostgreSQL),
    # UnicodeEncodeError from every driver, OverflowError converting to UTC.
    with example():
        dead_letter()
        before = row_counts()
        with pytest.raises(CommandError, match=flag):
            call_command("qreplay", *argv, stdout=io.StringIO(), stderr=io.StringIO())
        assert row_counts() == before


def test_qreplay_takes_an_offset_postgresql_cannot_store():
    # Python allows offsets up to +23:59, PostgreSQL up to +15:59: the
    # instant is compared in UTC, so the filter works on every database.
    with example():
        dead_letter()
        out, error = run("qreplay", ["--since=2000-01-01T12:00:00+23:59"])
        assert error is None, error
        assert "Replayed failed task" in out, out


# The operations commands: qpurge, qhealth, qinfo and qmonitor.

QPURGE = argvs(
    [
        option("--queue", st.sampled_from(["default", "emails"]) | ARG_TEXT),
        option("--func", st.just("tests.testapp.tasks.echo") | ARG_TEXT),
        option("--older-than", SECONDS),
        option(
            "--batch-size", NUMBERS | st.sampled_from(["10000", "10001", str(2**64)])
        ),
        switch("--all"),
        switch("--dry-run"),
        switch("--json"),
    ]
)


def status_counts() -> dict[str, int]:
    return {
        status: models.Task.objects.filter(status=status).count()
        for status in models.Status
    }


@given(argv=QPURGE)
def test_qpurge_deletes_only_queued_tasks_or_refuses_its_arguments_by_name(argv):
    with example(), mock.patch("sys.stdin", io.StringIO("y\n")):
        queued = api.async_task(tasks.echo, 1)
        api.async_task(tasks.echo, 2)
        models.Task.objects.exclude(id=queued).update(
            status=models.Status.SUCCEEDED, finished_at=timezone.now()
        )
        before, statuses = row_counts(), status_counts()
        _, error = run("qpurge", argv)
        if error is not None:
            assert_command_error(error, argv)
            assert row_counts() == before, (
                f"A refused qpurge changed the database: {error}"
            )
            return
        after = status_counts()
        assert after[models.Status.SUCCEEDED] == statuses[models.Status.SUCCEEDED]
        assert after[models.Status.QUEUED] in (0, 1)
        if "--dry-run" in argv:
            assert row_counts() == before


QHEALTH = argvs(
    [
        switch("--liveness"),
        switch("--readiness"),
        option("--cluster", st.integers(0, 2**70).map(str) | ARG_TEXT),
        option("--max-lag", SECONDS),
        option("--queues", st.sampled_from(["default", "a,b", ","]) | ARG_TEXT),
        switch("--json"),
    ]
)


@given(argv=QHEALTH)
def test_qhealth_answers_0_or_1_or_refuses_its_arguments_by_name(argv):
    with example():
        before = row_counts()
        out = io.StringIO()
        try:
            call_command("qhealth", *argv, stdout=out, stderr=io.StringIO())
            code, error = 0, None
        except SystemExit as exit_:
            code, error = exit_.code, None
        except Exception as exc:
            code, error = None, exc
        assert row_counts() == before
        if error is not None:
            assert_command_error(error, argv)
            # argparse's own refusals exit 2 from the shell by themselves.
            assert str(error).startswith("Error: ") or error.returncode == 2
            return
        assert code in (0, 1)
        text = out.getvalue().strip()
        if "--json" in argv:
            assert json.loads(text)["healthy"] is (code == 0)
        else:
            assert text.startswith("OK: " if code == 0 else "UNHEALTHY: ")
            assert "\n" not in text


QINFO = argvs(
    [
        option("--minutes", NUMBERS),
        switch("--json"),
    ]
)
QMONITOR = argvs(
    [
        option("--minutes", NUMBERS),
        option("--interval", SECONDS),
        option("--count", NUMBERS),
    ]
)


@given(argv=QINFO)
def test_qinfo_prints_or_refuses_its_arguments_by_name(argv):
    with example():
        api.async_task(tasks.echo, 1)
        before = row_counts()
        out, error = run("qinfo", argv)
        assert row_counts() == before
        if error is not None:
            assert_command_error(error, argv)
            return
        if "--json" in argv:
            assert json.loads(out)["queues"]
        else:
            assert "Queues" in out


@given(argv=QMONITOR)
def test_qmonitor_draws_or_refuses_its_arguments_by_name(argv):
    # --count=1 last, so that a fuzzed count never keeps the test waiting.
    argv = [*argv, "--count=1"]
    with example():
        before = row_counts()
        out, error = run("qmonitor", argv)
        assert row_counts() == before
        if error is not None:
            assert_command_error(error, argv)
            return
        assert "Queues" in out
