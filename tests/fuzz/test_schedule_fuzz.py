"""Fuzzing schedule inputs: types, cron strings, intervals, time zones, datetimes, task options.

The property for schedule(): a call with every input valid is stored as
given, its run times can be computed (rule, preview) and its first due run
fires a task; any other call raises a documented error naming an offending
argument and writes nothing. For inputs whose validity only croniter or the
time zone database can tell (random cron text, unusual zone names), either
outcome is right, but an accepted schedule must still compute and fire.
DBQUEUE_SCHEDULES declarations get the same treatment through sync_declared().
"""

from __future__ import annotations

import datetime
import itertools
import zoneinfo
from typing import Any

import hypothesis
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from dbqueue import schedule, schedule_definition, scheduling, serialization
from dbqueue.cluster.scheduler import Scheduler
from dbqueue.models import RunOutcome, Schedule, ScheduleRun, ScheduleType, Task
from dbqueue.schedules import sync_declared
from tests.fuzz import (
    ANY_DATETIME,
    ANY_TEXT,
    BAD,
    CLEAN_TEXT,
    HUGE_INTS,
    INT_MAX,
    ORACLES,
    STORABLE_DATETIME,
    VALID,
    WILD,
    Deep,
    assert_clear,
    attempt,
    example,
    instant_ok,
    is_storable_text,
    real,
    same,
    seconds_ok,
)
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
ADD = "tests.testapp.tasks.echo"
HUGE = 10**5000
AVAILABLE = frozenset(zoneinfo.available_timezones())
DQ_LETTERS = dict(schedule_definition.DJANGO_Q_TYPES)
CRON_MAX = Schedule._meta.get_field("cron").max_length
# Task options a schedule refuses whatever their value: they make no sense
# for a call that repeats (see schedule_definition.NOT_FOR_SCHEDULES).
REFUSED = ("countdown", "eta", "sync", "unique_key", "unique_for", "on_conflict")
TASK_OPTIONS = (
    "queue",
    "priority",
    "task_name",
    "group",
    "hook",
    "save",
    "timeout",
    "max_attempts",
    "expires",
    "on_orphan",
    "on_commit",
    *REFUSED,
)

# Cron expressions: valid ones from a grammar, out-of-range ones that must be
# refused, and free text that croniter alone can judge.
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "jun", "DEC")),
    ("day-of-week", 0, 6, ("MON", "fri", "SUN")),
    ("second", 0, 59, ()),
)


@st.composite
def cron_field(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...]) -> str:
    number = st.integers(low, high)
    shape = draw(st.sampled_from(["star", "number", "range", "step", "list", "name"]))
    if shape == "star":
        return "*"
    if shape == "number" or (shape == "name" and not names):
        return str(draw(number))
    if shape == "name":
        return draw(st.sampled_from(names))
    if shape == "range":
        a, b = sorted((draw(number), draw(number)))
        return f"{a}-{b}"
    if shape == "step":
        return f"{draw(st.sampled_from(['*', f'{low}-{high}']))}/{draw(st.integers(1, 90))}"
    return ",".join(str(n) for n in draw(st.lists(number, min_size=1, max_size=60)))


@st.composite
def crons(draw: st.DrawFn) -> tuple[str, bool | None]:
    """Return a cron expression and whether it is valid (None: croniter decides)."""
    kind = draw(st.sampled_from(["grammar", "out of range", "alias", "text"]))
    if kind == "alias":
        return draw(
            st.sampled_from(
                [
                    ("@daily", True),
                    ("@hourly", True),
                    ("@weekly", True),
                    ("@monthly", True),
                    ("@yearly", True),
                    ("@annually", True),
                    ("@midnight", True),
                    ("@reboot", False),
                    ("@every 5m", False),
                    ("@", False),
                ]
            )
        )
    if kind == "text":
        text = draw(st.text(st.characters(exclude_categories=()), max_size=30))
        return text, None
    count = draw(st.sampled_from([5, 6]))
    fields = [
        draw(cron_field(low, high, names)) for _, low, high, names in FIELDS[:count]
    ]
    spacing = draw(st.sampled_from([" ", "  ", "\t", " \n "]))
    if kind == "out of range":
        index = draw(st.integers(0, count - 1))
        name, low, high, _ = FIELDS[index]
        # 7 is Sunday again for the day of the week.
        beyond = high + 2 if name == "day-of-week" else high + 1
        wrong = [beyond, high + 40, *([low - 1] if low > 0 else [])]
        fields[index] = str(draw(st.sampled_from(wrong)))
        return spacing.join(fields), False
    text = spacing.join(fields)
    if len(" ".join(text.split())) > CRON_MAX:
        return text, False
    # A day of the month that no month has (31 April) never fires, unless
    # the day of the week also matches (cron's OR).
    surely = fields[2] == "*" or fields[3] == "*" or fields[4] != "*"
    return text, True if surely else None


CRONS = crons()
WEIRD_ZONES = [
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "Pacific/Kiritimati",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Factory",
    "localtime",
    "posixrules",
    "right/UTC",
    "posix/Europe/Berlin",
    "EST5EDT",
]
BAD_ZONES = [
    "Europe",
    "America/Argentina",
    "Mars/Olympus",
    "Europe/Berln",
    "europe/berlin",
    "UTC\x00",
    "\ud800",
    "a" * 65,
    "a/" * 3000,
    "Europe/./Berlin",
    "/etc/localtime",
    "../etc/passwd",
    "zone.tab",
    " UTC",
    5,
    b"UTC",
    0,
    False,
]
ZONES = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(sorted(AVAILABLE)),
    st.sampled_from(WEIRD_ZONES),
    st.sampled_from(BAD_ZONES),
    st.text(max_size=10),
)
SCHEDULE_TYPES = st.one_of(
    st.none(),
    st.sampled_from(scheduling.KINDS),
    st.sampled_from([k.lower() for k in scheduling.KINDS]),
    st.sampled_from(sorted(DQ_LETTERS)),
    st.sampled_from(list(ScheduleType)),
    st.sampled_from(["fortnightly", "", " daily", "X", "ß", 5, b"DAILY"]),
)
MINUTES = st.one_of(
    st.integers(1, 10**6),
    st.sampled_from([0, -5, 1.5, True, "5", INT_MAX, INT_MAX + 1, 2**63, 10**9]),
    HUGE_INTS,
)
NAMES = st.one_of(
    st.text(CLEAN_TEXT, min_size=1, max_size=100),
    ANY_TEXT,
    st.sampled_from(["x" * 100, "x" * 101, "   ", 5, b"n"]),
)
PARAMETERS = {
    "name": NAMES,
    "schedule_type": SCHEDULE_TYPES,
    "minutes": st.none() | MINUTES,
    "cron": st.none() | CRONS,
    "next_run": st.none()
    | STORABLE_DATETIME
    | ANY_DATETIME
    | st.sampled_from(["2030-01-01", datetime.date(2030, 1, 1)]),
    "repeats": st.integers(-2, 5)
    | st.sampled_from([INT_MAX, INT_MAX + 1, True, 1.0, "3", None]),
    "timezone": ZONES,
    "catch_up": st.sampled_from(["skip", "once", "all", "SKIP", "All"])
    | st.sampled_from(["never", "", 1, None]),
    "allow_overlap": st.booleans() | st.sampled_from([0, 1, "yes", None]),
    "enabled": st.booleans() | st.sampled_from([0, "no", None]),
}


def zone_ok(value: Any) -> bool | None:
    if value is None or value == "":
        return True
    if not isinstance(value, str):
        return False
    if value in AVAILABLE:
        return True
    if len(value) > 64 or "\x00" in value:
        return False
    try:
        zoneinfo.ZoneInfo(value)
    except Exception:
        return False
    return None  # a file in the zone database that is no IANA name


def kind_of(params: dict[str, Any]) -> str | None:
    """The schedule type a call asks for, as schedule() derives it (None: not a type)."""
    given = params.get("schedule_type")
    if given is None:
        if params.get("cron") is not None:
            return scheduling.CRON
        if params.get("minutes") is not None:
            return scheduling.MINUTES
        return scheduling.ONCE
    if not isinstance(given, str):
        return None
    kind = DQ_LETTERS.get(given, given.upper())
    return kind if kind in scheduling.KINDS else None


def option_ok(name: str, value: Any) -> bool | None:
    if name in REFUSED:
        return False
    if value is None:
        return True
    if name == "expires":
        return seconds_ok(value, zero_ok=False)
    if name == "on_commit":
        return value is True or value is False or value == "default"
    return ORACLES[name](value)


def judge(params: dict[str, Any], cron_valid: bool | None, options: dict[str, Any]):
    """Return whether a schedule() call is valid (None: either way) and the suspects."""
    verdicts: dict[str, bool | None] = {}
    name = params.get("name")
    if name is not None:
        verdicts["name"] = is_storable_text(name, 100, min_length=1) and bool(
            name.strip()
        )
    kind = kind_of(params)
    verdicts["schedule_type"] = kind is not None
    minutes = params.get("minutes")
    if kind == scheduling.MINUTES:
        verdicts["minutes"] = (
            isinstance(minutes, int)
            and not isinstance(minutes, bool)
            and 1 <= minutes <= INT_MAX
        )
    elif minutes is not None:
        verdicts["minutes"] = False
    cron = params.get("cron")
    if kind == scheduling.CRON:
        verdicts["cron"] = cron_valid if cron is not None else False
    elif cron is not None and cron != "":
        # Free text that is falsy-looking is still "given".
        verdicts["cron"] = False
    next_run = params.get("next_run")
    if next_run is not None:
        verdicts["next_run"] = instant_ok(next_run)
        if (
            verdicts["next_run"]
            and kind == scheduling.CRON
            and next_run.astimezone(UTC).year >= 9999
        ):
            verdicts["cron"] = None if verdicts.get("cron") else verdicts.get("cron")
    if "repeats" in params:
        repeats = params["repeats"]
        verdicts["repeats"] = (
            isinstance(repeats, int)
            and not isinstance(repeats, bool)
            and -1 <= repeats <= INT_MAX
        )
    if "timezone" in params:
        verdicts["timezone"] = zone_ok(params["timezone"])
    if "catch_up" in params:
        value = params["catch_up"]
        verdicts["catch_up"] = isinstance(value, str) and value.upper() in (
            "SKIP",
            "ONCE",
            "ALL",
        )
    for flag in ("allow_overlap", "enabled"):
        if flag in params:
            verdicts[flag] = isinstance(params[flag], bool)
    for option, value in options.items():
        verdicts[option] = option_ok(option, value)
    suspects = {name for name, verdict in verdicts.items() if verdict is not True}
    if any(verdict is False for verdict in verdicts.values()):
        return False, suspects
    return (None if suspects else True), suspects


@st.composite
def calls(draw: st.DrawFn, valid_only: bool = False):
    """Draw schedule() parameters, the cron's validity, task options and args."""
    params: dict[str, Any] = {}
    cron_valid: bool | None = True
    for key in draw(st.sets(st.sampled_from(sorted(PARAMETERS)), max_size=6)):
        value = draw(PARAMETERS[key])
        if key == "cron" and value is not None:
            value, cron_valid = value
        params[key] = value
    options = {
        name: draw(st.none() | VALID.get(name, st.none()) | BAD.get(name, WILD))
        if name != "on_commit"
        else draw(st.sampled_from([None, True, False, "default", "nope", 1]))
        for name in draw(st.sets(st.sampled_from(TASK_OPTIONS), max_size=3))
    }
    args = tuple(draw(st.lists(st.integers() | st.text(max_size=4), max_size=3)))
    return params, cron_valid, options, args


def check_stored(
    row: Schedule, params: dict[str, Any], options: dict[str, Any], args, before
):
    """Assert what was stored is what was asked for, and that it can be computed."""
    stored = Schedule.objects.get(pk=row.pk)
    kind = kind_of(params)
    assert stored.schedule_type == kind
    assert stored.func == ADD
    assert same(stored.args, args)
    if params.get("name") is not None:
        assert stored.name == params["name"]
    assert stored.minutes == (
        params.get("minutes") if kind == scheduling.MINUTES else None
    )
    if kind == scheduling.CRON:
        assert stored.cron == " ".join(params["cron"].split())
    else:
        assert stored.cron == ""
    assert stored.timezone == (params.get("timezone") or "")
    assert stored.repeats == params.get("repeats", -1)
    assert stored.catch_up == params.get("catch_up", "skip").upper()
    assert stored.allow_overlap is params.get("allow_overlap", True)
    assert stored.enabled is params.get("enabled", True)
    given = {k: v for k, v in options.items() if v is not None}
    assert stored.queue == given.get("queue", "")
    assert stored.priority == (int(given["priority"]) if "priority" in given else None)
    not_before = params.get("next_run") or before
    if kind == scheduling.CRON:
        assert stored.next_run >= not_before - scheduling.EPSILON
    elif params.get("next_run") is not None:
        assert stored.next_run == params["next_run"].astimezone(UTC)
    else:
        assert stored.next_run >= before
    runs = stored.preview(3)
    assert runs == sorted(runs)
    assert len(set(runs)) == len(runs)
    return stored


def assert_increasing(runs: list[datetime.datetime]) -> None:
    """Each run comes after the one before, compared as instants.

    Two datetimes in the same zone compare by wall time and ignore fold, so
    a fall-back night's 01:00 and its second 01:00, an hour apart, are equal
    and even hash alike: sorted(set(runs)) would drop one of them.
    """
    instants = [run.astimezone(UTC) for run in runs]
    assert all(a < b for a, b in itertools.pairwise(instants)), runs


def check_fires(stored: Schedule, options: dict[str, Any]) -> None:
    """Fire the schedule's first due run and assert it enqueued one task."""
    if not stored.enabled or stored.is_finished:
        return
    now = stored.next_run
    # plan() first, so that a crash in the time math raises here instead of
    # being logged and skipped by the scheduler.
    decision = scheduling.plan(
        stored.rule(), stored.next_run, now, catch_up=stored.catch_up
    )
    assert decision.fire == (stored.next_run,)
    assert decision.next_run is None or decision.next_run > now
    scheduler = Scheduler(scheduler_id="fuzz", sync_declared=False)
    assert scheduler.fire(stored.pk, now) == 1
    run = ScheduleRun.objects.get(schedule=stored)
    assert (run.due_at, run.outcome, run.error) == (now, RunOutcome.ENQUEUED, "")
    after = Schedule.objects.get(pk=stored.pk)
    assert after.is_finished or after.next_run > now
    if not options.get("on_commit"):
        task = Task.objects.get(pk=run.task_id)
        assert same(task.args, stored.args)
        assert task.queue == (stored.queue or "default")


def call_schedule(
    params: dict[str, Any], options: dict[str, Any], args, via_q_options: bool
):
    kwargs = dict(params)
    if via_q_options:
        kwargs["q_options"] = {k: real(v) for k, v in options.items()}
    else:
        kwargs.update({k: real(v) for k, v in options.items()})
    return schedule(tasks.echo, *args, **kwargs)


@given(call=calls(), via_q_options=st.booleans())
def test_schedule_is_stored_computed_and_fired_or_refused_by_name(call, via_q_options):
    params, cron_valid, options, args = call
    valid, suspects = judge(params, cron_valid, options)
    with example() as ex:
        before = timezone.now()
        row, error = attempt(
            lambda: call_schedule(params, options, args, via_q_options)
        )
        if error is not None:
            assert valid is not True, f"A valid schedule was refused: {error!r}"
            ex.rejected(error, *suspects)
            return
        assert valid is not False, (
            f"An invalid schedule was accepted ({suspects}): {params!r} {options!r}"
        )
        ex.added(Schedule=1)
        stored = check_stored(row, params, options, args, before)
        # The same call again changes nothing (every deploy makes it).
        if params.get("name") is not None:
            again = call_schedule(params, options, args, via_q_options)
            assert again.pk == stored.pk
            assert Schedule.objects.get(pk=stored.pk).next_run == stored.next_run
        check_fires(stored, options)


@given(
    expression=CRONS,
    zone=st.sampled_from(
        [*WEIRD_ZONES[:9], "UTC", "Europe/Berlin", "America/New_York"]
    ),
    start=STORABLE_DATETIME,
)
def test_an_accepted_cron_schedule_computes_its_runs_anywhere_in_time(
    expression, zone, start
):
    text, _ = expression
    with example():
        row, error = attempt(
            lambda: schedule(
                tasks.echo, name="c", cron=text, timezone=zone, next_run=start
            )
        )
        if error is not None:
            assert_clear(error, "cron")
            return
        runs = row.preview(4)
        assert_increasing(runs)
        assert runs[0] >= start.astimezone(UTC) - scheduling.EPSILON
        rule = row.rule()
        for moment in runs:
            # croniter overflows walking back from the first weeks of the
            # year 1 (or forward from the last of 9999) for some day fields,
            # so the rule finds no run there: no crash, and no schedule
            # lives there, but no exact answer either.
            if 2 <= moment.year <= 9998:
                assert rule.last_at_or_before(moment) == moment
        check_fires(Schedule.objects.get(pk=row.pk), {})


@given(
    kind=st.sampled_from(scheduling.KINDS[:-1]),
    minutes=st.integers(1, 10**7),
    zone=st.sampled_from([*WEIRD_ZONES[:9], "UTC", "Europe/Berlin"]),
    start=STORABLE_DATETIME
    | st.sampled_from(
        [
            datetime.datetime(1, 1, 2, tzinfo=UTC),
            datetime.datetime(9999, 12, 30, 23, tzinfo=UTC),
            datetime.datetime(9999, 2, 28, 12, tzinfo=UTC),
        ]
    ),
)
# Found by CI: hourly across Dublin's fall-back night runs at 01:00 twice.
@hypothesis.example(
    kind="HOURLY",
    minutes=1,
    zone="Europe/Dublin",
    start=datetime.datetime(
        2000, 10, 29, 1, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Amsterdam")
    ),
)
def test_interval_and_calendar_schedules_fire_up_to_the_end_of_time(
    kind, minutes, zone, start
):
    with example() as ex:
        row = schedule(
            tasks.echo,
            name="i",
            schedule_type=kind,
            minutes=minutes if kind == scheduling.MINUTES else None,
            timezone=zone,
            next_run=start,
        )
        ex.added(Schedule=1)
        # astimezone(): the second 01:30 of a fall-back night (fold=1)
        # compares unequal to every other zone's time.
        assert row.next_run.astimezone(UTC) == start.astimezone(UTC)
        runs = row.preview(3)
        assert_increasing(runs)
        check_fires(Schedule.objects.get(pk=row.pk), {})


ENTRIES = st.one_of(
    # Options stay as drawn: a Deep placeholder is as invalid as what it stands for.
    calls().map(
        lambda call: {
            "func": ADD,
            "args": list(call[3]),
            **{k: v for k, v in call[0].items() if k != "name"},
            **call[2],
        }
    ),
    st.sampled_from(
        [
            {"cron": "0 3 * * *"},
            {"func": ADD, "colour": "red"},
            {"func": ADD, "args": "abc"},
            {"func": ADD, "kwargs": {1: 2}},
            {"func": ADD, "kwargs": []},
            {"func": 5},
            {"func": "tests.testapp.tasks.nope", "minutes": 5},
            "not a dict",
            None,
        ]
    ),
)


@given(
    entries=st.dictionaries(
        st.one_of(
            st.text(CLEAN_TEXT, min_size=1, max_size=12),
            st.sampled_from(["", "a\x00b", "\ud800", "x" * 101, 5]),
        ),
        ENTRIES,
        max_size=3,
    )
)
def test_declared_schedules_sync_or_are_counted_invalid(entries):
    with example():
        counts, error = attempt(lambda: sync_declared(entries))
        assert error is None, f"sync_declared() raised {error!r}"
        assert counts["created"] + counts["invalid"] == len(entries)
        stored = Schedule.objects.filter(declared=True)
        assert stored.count() == counts["created"]
        for row in stored:
            assert row.name in entries
            row.preview(2)
            assert same(row.args, tuple(entries[row.name].get("args", ())))


# Regression tests for what the fuzzing found.


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"cron": ",".join(["0"] * 60) + " * * * *"}, "cron"),
        ({"minutes": 2**31}, "minutes"),
        ({"repeats": 2**31}, "repeats"),
        ({"timezone": "Europe"}, "timezone"),
        ({"timezone": "a" * 300}, "timezone"),
        ({"timezone": "a/" * 3000}, "timezone"),
        ({"timezone": 0}, "timezone"),
        ({"name": "n\x00"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"on_orphan": "sometimes"}, "on_orphan"),
        ({"unique_for": 60}, "unique_for"),
        ({"on_conflict": "ignore"}, "on_conflict"),
        ({"on_commit": "nope"}, "on_commit"),
        ({"expires": float("nan")}, "expires"),
        ({"expires": float("inf")}, "expires"),
        ({"expires": 1e300}, "expires"),
        ({"next_run": datetime.datetime.max.replace(tzinfo=UTC)}, "next_run"),
        ({"catch_up": Deep(50_000)}, "catch_up"),
        ({"repeats": HUGE}, "repeats"),
    ],
)
def test_bad_schedule_input_is_refused_by_name(kwargs, name):
    # Each was stored and then broke the INSERT (DataError), every run
    # (RunOutcome.ERROR), or the scheduler's time math; or escaped as
    # IsADirectoryError, OSError or RecursionError from zoneinfo.
    kwargs = {key: real(value) for key, value in kwargs.items()}
    with example() as ex, pytest.raises((TypeError, ValueError)) as info:
        schedule(tasks.echo, **{"name": "bad", **kwargs})
    ex.rejected(info.value, name)


@pytest.mark.parametrize(
    ("kwargs", "start"),
    [
        ({"schedule_type": "YEARLY"}, datetime.datetime(9999, 6, 1, tzinfo=UTC)),
        ({"schedule_type": "MONTHLY"}, datetime.datetime(9999, 12, 15, tzinfo=UTC)),
        ({"schedule_type": "DAILY"}, datetime.datetime(9999, 12, 30, 12, tzinfo=UTC)),
        ({"minutes": 10**7}, datetime.datetime(9990, 1, 1, tzinfo=UTC)),
        ({"cron": "0 0 29 2 *"}, datetime.datetime(9996, 3, 1, tzinfo=UTC)),
        (
            {"cron": "0 12 * * *", "timezone": "Pacific/Kiritimati"},
            datetime.datetime(9999, 12, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_schedule_whose_next_run_is_past_the_year_9999_has_no_more_runs(
    kwargs, start
):
    # The time math raised OverflowError or ValueError ('year 10000 is out
    # of range'); the scheduler logged it at every tick and never moved on.
    with example():
        row, error = attempt(
            lambda: schedule(tasks.echo, name="end", next_run=start, **kwargs)
        )
        if error is not None:
            # A cron that has no match before the end of time is refused.
            assert_clear(error, "cron")
            return
        stored = Schedule.objects.get(pk=row.pk)
        check_fires(stored, {})
        assert Schedule.objects.get(pk=row.pk).is_finished


def test_serialization_of_schedule_arguments_round_trips():
    with example():
        row = schedule(tasks.echo, 1, "\x00\ud800", name="args", minutes=5)
        assert Schedule.objects.get(pk=row.pk).args == (1, "\x00\ud800")
        assert serialization.serializer_of(row.payload) == "pickle"
