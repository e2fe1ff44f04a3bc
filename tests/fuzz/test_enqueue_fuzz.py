"""Fuzzing the enqueue API: options, arguments, payload sizes, task paths, bulk and chains.

Each option has an oracle that says whether a value is valid, so the
properties are exact: a call whose every input is valid must succeed and
read back as given; any other call must raise a documented error naming
an offending input, and write nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import math
import sys
import threading
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from dbqueue import (
    api,
    async_task,
    bulk,
    chains,
    exceptions,
    groups,
    serialization,
    validation,
)
from dbqueue.conf import settings as dbqueue_settings
from dbqueue.models import Task
from tests.fuzz import (
    BAD,
    CLEAN_TEXT,
    HUGE_INTS,
    INT_MAX,
    OPTION_NAMES,
    ORACLES,
    VALID,
    WILD,
    Deep,
    assert_clear,
    attempt,
    depth_of,
    example,
    real,
    same,
)
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
ECHO = "tests.testapp.tasks.echo"
HOOK = "tests.testapp.tasks.remember_hook"
MICROSECOND = datetime.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Point:
    """A module-level frozen dataclass: pickle must carry it through."""

    x: int
    label: str


class Colour(enum.Enum):
    RED = 1
    BLUE = "blue"


class Refuses:
    """An object whose pickling fails with an exception pickle itself never raises."""

    def __reduce__(self) -> Any:
        raise KeyError("not today")


def _generator() -> Any:
    yield 1


def _local_instance() -> Any:
    class Local:
        pass

    return Local()


UNPICKLABLE = [
    lambda: None,
    threading.Lock(),
    _generator(),
    sys,
    memoryview(b"x"),
    _local_instance(),
    Refuses(),
]


def judge(options: dict[str, Any]) -> tuple[bool | None, set[str]]:
    """Return whether the options are valid (None: may go either way) and the suspects."""
    verdicts = {
        name: ORACLES[name](value)
        for name, value in options.items()
        if value is not None
    }
    suspects = {name for name, verdict in verdicts.items() if verdict is not True}
    if options.get("countdown") is not None and options.get("eta") is not None:
        verdicts["countdown"] = False
        suspects |= {"countdown", "eta"}
    if options.get("unique_for") is not None and options.get("unique_key") is None:
        verdicts["unique_for"] = False
        suspects.add("unique_for")
    if any(verdict is False for verdict in verdicts.values()):
        return False, suspects
    if suspects:
        return None, suspects
    return True, suspects


def check_stored(
    task: Task,
    options: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before: datetime.datetime,
    after: datetime.datetime,
) -> None:
    """Assert the stored row is the call that was made, option by option."""
    row = Task.objects.get(pk=task.pk)
    given = {k: v for k, v in options.items() if v is not None}
    assert same(row.args, args)
    assert same(row.kwargs, kwargs)
    assert row.func == ECHO
    assert row.name == given.get("task_name", ECHO)
    assert row.group == given.get("group", "")
    assert row.queue == given.get("queue", "default")
    assert row.priority == int(given.get("priority", 0))
    assert row.max_attempts == given.get("max_attempts", dbqueue_settings.MAX_ATTEMPTS)
    assert row.timeout == (float(given["timeout"]) if "timeout" in given else None)
    assert row.keep_result is given.get("save", True)
    hook = given.get("hook", "")
    assert row.hook == (HOOK if hook else "")
    assert row.unique_key == given.get("unique_key")
    assert row.unique_hold == given.get("unique_key")
    assert row.on_orphan == given.get("on_orphan", "retry").upper()
    if "eta" in given:
        # astimezone(): a time in a DST gap compares unequal to every other zone's.
        assert row.run_after == given["eta"].astimezone(UTC)
    else:
        delay = datetime.timedelta(seconds=float(given.get("countdown", 0)))
        assert (
            before + delay - MICROSECOND <= row.run_after <= after + delay + MICROSECOND
        )
    expires = given.get("expires")
    if isinstance(expires, datetime.datetime):
        assert row.expires_at == expires.astimezone(UTC)
    elif expires is not None:
        delay = datetime.timedelta(seconds=float(expires))
        assert (
            before + delay - MICROSECOND
            <= row.expires_at
            <= after + delay + MICROSECOND
        )
    else:
        assert row.expires_at is None
    if "unique_for" in given:
        hold = given["unique_for"]
        if not isinstance(hold, datetime.timedelta):
            hold = datetime.timedelta(seconds=float(hold))
        assert (
            before + hold - MICROSECOND
            <= row.unique_until
            <= after + hold + MICROSECOND
        )


def call(
    style: str, options: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Task:
    """Enqueue echo(*args, **kwargs) with `options`, in one of the API's three styles."""
    if style == "enqueue":
        return api.enqueue(ECHO, args, kwargs, **options)
    task_options = {k: v for k, v in options.items() if k != "serializer"}
    if style == "q_options":
        task_id = async_task(tasks.echo, *args, q_options=task_options, **kwargs)
    else:
        task_id = async_task(ECHO, *args, **task_options, **kwargs)
    return Task.objects.get(pk=task_id)


ARGS = st.lists(
    st.integers() | st.text(st.characters(exclude_categories=()), max_size=5),
    max_size=3,
).map(tuple)
KWARGS = st.dictionaries(st.sampled_from(["k", "user", "n"]), st.integers(), max_size=2)
STYLES = st.sampled_from(["enqueue", "async_task", "q_options"])


@st.composite
def valid_options(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.sets(st.sampled_from(OPTION_NAMES), max_size=6))
    if "unique_for" in names:
        names.add("unique_key")
    if {"countdown", "eta"} <= names:
        names.discard(draw(st.sampled_from(["countdown", "eta"])))
    return {name: draw(VALID[name]) for name in sorted(names)}


@st.composite
def any_options(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.sets(st.sampled_from(OPTION_NAMES), max_size=4))
    # Deep stays a placeholder here: hypothesis prints the examples it draws.
    return {
        name: draw(st.one_of(st.none(), VALID[name], BAD[name]))
        for name in sorted(names)
    }


def built(options: dict[str, Any]) -> dict[str, Any]:
    return {name: real(value) for name, value in options.items()}


@given(options=valid_options(), args=ARGS, kwargs=KWARGS, style=STYLES)
def test_valid_options_are_stored_as_given(options, args, kwargs, style):
    if style != "enqueue":
        options.pop("serializer", None)
    with example() as ex:
        before = timezone.now()
        task = call(style, options, args, kwargs)
        after = timezone.now()
        ex.added(Task=1)
        check_stored(task, options, args, kwargs, before, after)


@given(options=any_options(), args=ARGS, kwargs=KWARGS, style=STYLES)
def test_any_options_are_stored_as_given_or_refused_by_name(
    options, args, kwargs, style
):
    if style != "enqueue":
        options.pop("serializer", None)
    valid, suspects = judge(options)
    with example() as ex:
        before = timezone.now()
        task, error = attempt(lambda: call(style, built(options), args, kwargs))
        after = timezone.now()
        if error is not None:
            assert valid is not True, f"A valid call was refused: {error!r}"
            ex.rejected(error, *suspects)
            return
        assert valid is not False, (
            f"Invalid options {suspects} were accepted: {options!r}"
        )
        ex.added(Task=1)
        check_stored(task, options, args, kwargs, before, after)


@given(
    options=st.dictionaries(
        st.text(CLEAN_TEXT, max_size=8).filter(lambda k: k not in api.RESERVED_OPTIONS),
        st.integers(),
        min_size=1,
        max_size=2,
    ),
    q_options=st.one_of(
        WILD, st.lists(st.tuples(st.text(), st.integers()), max_size=1)
    ),
)
def test_unknown_or_malformed_q_options_are_refused_by_name(options, q_options):
    with example() as ex:
        with pytest.raises(TypeError) as unknown:
            async_task(tasks.echo, q_options=options)
        ex.rejected(unknown.value, *map(repr, options))
        if isinstance(q_options, dict):
            return
        with pytest.raises(TypeError) as malformed:
            async_task(tasks.echo, q_options=real(q_options))
        ex.rejected(malformed.value, "q_options")


@given(
    on_commit=st.sampled_from([True, "default"])
    | st.sampled_from(["nope", 1, 2.5, "queue2", ["default"]])
)
def test_on_commit_defers_the_insert_or_refuses_a_bad_alias(on_commit):
    valid = on_commit is True or on_commit == "default"
    with example() as ex:
        task, error = attempt(
            lambda: api.enqueue(tasks.echo, (1,), on_commit=on_commit)
        )
        if error is not None:
            assert not valid, f"on_commit={on_commit!r} was refused: {error!r}"
            ex.rejected(error, "on_commit")
            return
        assert valid, f"on_commit={on_commit!r} was accepted"
        # The test's own transaction never commits: nothing is stored yet.
        ex.added()
        assert task._state.adding


# Arguments.


def _picklable_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers() | st.sampled_from([2**63, -(2**63) - 1]) | HUGE_INTS,
        st.floats(allow_nan=False),
        st.text(st.characters(exclude_categories=())),
        st.binary(),
        st.binary().map(bytearray),
        st.decimals(allow_nan=False),
        st.fractions(),
        st.complex_numbers(allow_nan=False),
        st.datetimes(timezones=st.none() | st.timezones() | st.just(UTC)),
        st.dates(),
        st.times(timezones=st.none() | st.just(UTC)),
        st.timedeltas(),
        st.uuids(),
        st.builds(Point, st.integers(), st.text()),
        st.sampled_from(Colour),
    )


HASHABLE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.uuids(),
    st.dates(),
    st.builds(Point, st.integers(), st.text(max_size=3)),
)
PICKLABLE = st.recursive(
    _picklable_scalars(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(HASHABLE, inner, max_size=4),
        st.sets(HASHABLE, max_size=4),
        st.frozensets(HASHABLE, max_size=4),
    ),
    max_leaves=12,
)
PICKLABLE_SMALL = st.integers() | st.text(max_size=3) | st.tuples(st.integers())
KWARG_NAMES = st.text(st.characters(exclude_categories=()), max_size=6)


@given(
    args=st.lists(PICKLABLE, max_size=4).map(tuple),
    kwargs=st.dictionaries(KWARG_NAMES, PICKLABLE, max_size=3),
)
def test_any_picklable_arguments_round_trip(args, kwargs):
    with example() as ex:
        task = api.enqueue(ECHO, args, kwargs, serializer="pickle")
        ex.added(Task=1)
        row = Task.objects.get(pk=task.pk)
        assert same(row.args, args)
        assert same(row.kwargs, kwargs)


@given(
    args=st.lists(PICKLABLE, max_size=3).map(tuple),
    kwargs=st.dictionaries(KWARG_NAMES, PICKLABLE, max_size=2),
    bad=st.sampled_from(UNPICKLABLE),
    where=st.integers(0, 10),
    nested=st.booleans(),
)
def test_an_unpicklable_argument_is_refused_by_name(args, kwargs, bad, where, nested):
    value = [1, bad] if nested else bad
    positions = len(args) + len(kwargs)
    where %= positions + 1
    if where <= len(args):
        args = (*args[:where], value, *args[where:])
        name = f"args[{where}]"
    else:
        key = f"bad_{where}"
        kwargs = {**kwargs, key: value}
        name = key
    with example() as ex:
        with pytest.raises(exceptions.SerializationError) as info:
            api.enqueue(ECHO, args, kwargs, serializer="pickle")
        ex.rejected(info.value, repr(name))


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers() | HUGE_INTS,
    st.floats(),
    st.text(st.characters(exclude_categories=())),
)
NOT_JSON = st.sampled_from(
    [
        b"x",
        datetime.datetime(2030, 1, 1, tzinfo=UTC),
        decimal.Decimal("1.5"),
        {1, 2},
        Point(1, "a"),
        fractions.Fraction(1, 3),
        (),
    ]
)
JSON_LIKE = st.recursive(
    JSON_SCALARS | NOT_JSON,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.text(max_size=4) | st.integers(-1000, 1000), inner, max_size=4
        ),
        st.dictionaries(st.tuples(st.integers()), inner, min_size=1, max_size=1),
    ),
    max_leaves=10,
)


def json_ok(value: Any) -> bool:
    """Django Tasks' rule: str, int, float, bool, None, lists and dicts, nothing else.

    Tuples count as lists; dict keys may be str or int (JSON makes them str);
    NaN, infinities and ints longer than Python's 4300-digit limit do not encode.
    """
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return abs(value) < 10**4300
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(json_ok(item) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str | int) and json_ok(key) and json_ok(item)
            for key, item in value.items()
        )
    return False


def json_model(value: Any) -> Any:
    """What a valid value reads back as: tuples become lists, int keys strings."""
    if isinstance(value, list | tuple):
        return [json_model(item) for item in value]
    if isinstance(value, dict):
        model: dict[str, Any] = {}
        for key, item in value.items():
            model[key if isinstance(key, str) else str(key)] = json_model(item)
        return model
    return value


@given(
    args=st.lists(JSON_LIKE, max_size=3).map(tuple),
    kwargs=st.dictionaries(KWARG_NAMES, JSON_LIKE, max_size=3),
)
def test_json_arguments_round_trip_or_are_refused_by_name(args, kwargs):
    named = [(f"args[{i}]", v) for i, v in enumerate(args)] + list(kwargs.items())
    refused = [name for name, value in named if not json_ok(value)]
    with example() as ex:
        task, error = attempt(
            lambda: api.enqueue(ECHO, args, kwargs, serializer="json")
        )
        if error is not None:
            assert refused, f"Valid JSON arguments were refused: {error!r}"
            assert isinstance(error, exceptions.SerializationError)
            # The first argument the serializer rejects is the one named.
            ex.rejected(error, repr(refused[0]))
            return
        assert not refused, f"Arguments {refused} are not JSON, yet were accepted"
        ex.added(Task=1)
        row = Task.objects.get(pk=task.pk)
        assert same(row.args, tuple(json_model(list(args))))
        assert same(row.kwargs, json_model(kwargs))


@given(
    args=st.one_of(
        st.text(max_size=3),
        st.binary(max_size=3),
        st.integers(),
        st.none(),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        st.sets(st.integers(), max_size=2),
    ),
    kwargs=st.one_of(
        st.lists(st.integers(), max_size=2),
        st.dictionaries(
            st.integers() | st.binary(max_size=2) | st.none(),
            st.integers(),
            min_size=1,
            max_size=2,
        ),
    ),
    which=st.sampled_from(["args", "kwargs"]),
)
def test_malformed_args_or_kwargs_are_refused(args, kwargs, which):
    call_args, call_kwargs = (args, {}) if which == "args" else ((), kwargs)
    with example() as ex:
        with pytest.raises(TypeError) as info:
            api.enqueue(ECHO, call_args, call_kwargs)
        ex.rejected(info.value, which)


@given(
    depth=st.integers(1, 150) | st.sampled_from([3_000, 20_000, 200_000]),
    serializer=st.sampled_from(["pickle", "json"]),
    as_kwarg=st.booleans(),
)
def test_deep_nesting_round_trips_or_is_refused_by_name(depth, serializer, as_kwarg):
    value = Deep(depth).build()
    args, kwargs = ((), {"tree": value}) if as_kwarg else ((value,), {})
    with example() as ex:
        task, error = attempt(
            lambda: api.enqueue(ECHO, args, kwargs, serializer=serializer)
        )
        if error is not None:
            assert depth > 150, f"Nesting {depth} deep was refused: {error!r}"
            assert isinstance(error, exceptions.SerializationError)
            ex.rejected(error, "'tree'" if as_kwarg else "'args[0]'")
            return
        # Python 3.13's pickle and json take deeper nesting than 3.11's, so
        # an accepted depth is only required to come back whole.
        row = Task.objects.get(pk=task.pk)
        stored = row.kwargs["tree"] if as_kwarg else row.args[0]
        assert depth_of(stored) == depth


@given(
    size=st.integers(0, 6_000),
    limit=st.integers(200, 5_000),
    serializer=st.sampled_from(["pickle", "json"]),
)
def test_the_payload_limit_holds_exactly(size, limit, serializer):
    value = "x" * size
    with override_settings(DBQUEUE_MAX_PAYLOAD_SIZE=10**9):
        length = len(
            serialization.dumps_payload(ECHO, (value,), {}, serializer=serializer)
        )
    with override_settings(DBQUEUE_MAX_PAYLOAD_SIZE=limit), example() as ex:
        try:
            task = api.enqueue(ECHO, (value,), serializer=serializer)
        except exceptions.PayloadTooLarge as exc:
            assert length > limit
            ex.rejected(exc, "DBQUEUE_MAX_PAYLOAD_SIZE")
            return
        assert length <= limit
        assert Task.objects.get(pk=task.pk).args == (value,)


def test_a_payload_at_the_default_limit_is_stored_and_one_byte_more_is_refused():
    limit = dbqueue_settings.MAX_PAYLOAD_SIZE

    def length(n: int) -> int:
        with override_settings(DBQUEUE_MAX_PAYLOAD_SIZE=10**9):
            return len(serialization.dumps_payload(ECHO, ("x" * n,), {}))

    low, high = 0, limit
    while low < high:  # the longest string whose payload fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if length(middle) <= limit else (low, middle - 1)
    with example() as ex:
        task = api.enqueue(ECHO, ("x" * low,))
        ex.added(Task=1)
        assert Task.objects.get(pk=task.pk).args == ("x" * low,)
    with example() as ex, pytest.raises(exceptions.PayloadTooLarge) as info:
        api.enqueue(ECHO, ("x" * (low + 1),))
    ex.rejected(info.value, "DBQUEUE_MAX_PAYLOAD_SIZE")


# Task paths.

PATHS = st.one_of(
    st.sampled_from(
        [
            "",
            "x.",
            "a..b",
            "tests.testapp.tasks.NOT_A_FUNCTION",
            "tests.testapp.tasks.plain_function",
            "tests.testapp.tasks.ad",
            "tests.testapp.tasks.add\x00",
            "tests.\x00.add",
            "tests.testapp.tasks.\ud800",
            "\udcff.x",
            "tests.testapp." + "t" * 5_000,
            "x" * 100_000,
            "os.system",
            "builtins.eval",
        ]
    ),
    # Random names under a package that has no such modules, so nothing
    # outside the test app is ever imported.
    st.text(st.characters(exclude_categories=()), max_size=20)
    .filter(lambda s: not s.startswith("."))
    .map(lambda s: f"tests.testapp.fuzz_missing.{s}"),
    st.integers(),
    st.binary(max_size=4),
    st.none(),
)


@given(path=PATHS)
def test_an_unknown_or_invalid_task_path_is_refused_by_name(path):
    with example() as ex:
        with pytest.raises((exceptions.TaskNotFound, TypeError)) as info:
            api.enqueue(path, (1, 2))
        if isinstance(path, str):
            assert isinstance(info.value, exceptions.TaskNotFound)
            # Long paths are named in full: the message is for a developer.
            ex.rejected(info.value, repr(path)[:40])
        else:
            ex.rejected(info.value, type(path).__name__)


@pytest.mark.parametrize("path", [".", "..", ".x", "..x.y"])
def test_a_task_path_starting_with_a_dot_is_task_not_found(path):
    with example() as ex, pytest.raises(exceptions.TaskNotFound) as info:
        api.enqueue(path, (1, 2))
    ex.rejected(info.value, repr(path))


# Bulk enqueue, chains and async_iter: all or nothing.

GOOD_CALL = st.builds(lambda n: ((tasks.echo, (n,), {}), None), st.integers())
BAD_CALL = st.sampled_from(
    [
        ((tasks.echo, (1,), {"priority": 500}), "priority"),
        ((tasks.echo, (lambda: 1,), {}), "args[0]"),
        (("tests.testapp.tasks.nope", (), {}), "tests.testapp.tasks.nope"),
        ((tasks.echo, "abc", {}), "tuple or a list"),
        ((tasks.echo, (), [1]), "must be a dict"),
        ((tasks.echo, (), {}, {}), "items"),
        ((tasks.echo, (), {"queue": "q\x00"}), "queue"),
        ((tasks.echo, (), {"task_name": "\ud800"}), "task_name"),
        ((tasks.echo, (), {"countdown": float("inf")}), "countdown"),
        ((tasks.echo, (), {"q_options": {"colour": 1}}), "colour"),
        ((tasks.echo, (), {"unique_key": "k"}), "unique_key"),
    ]
)


@given(
    calls=st.lists(GOOD_CALL | BAD_CALL, min_size=1, max_size=5),
    kind=st.sampled_from(["enqueue_many", "async_chain"]),
)
def test_bulk_and_chains_store_every_call_or_none(calls, kind):
    bad = [(number, reason) for number, (_, reason) in enumerate(calls, 1) if reason]
    with example() as ex:
        store = bulk.enqueue_many if kind == "enqueue_many" else chains.async_chain
        _, error = attempt(lambda: store([call for call, _ in calls]))
        if error is not None:
            assert bad, f"Valid calls were refused: {error!r}"
            ex.rejected(error, *(reason for _, reason in bad))
            # The call's number is in the message or in a note.
            text = " ".join([str(error), *getattr(error, "__notes__", [])])
            assert any(f" {number} of" in text for number, _ in bad), text
            return
        assert not bad, f"Bad calls {bad} were accepted"
        # A chain stores its first link; the others ride in its chain column.
        ex.added(Task=len(calls) if kind == "enqueue_many" else 1)


@given(
    items=st.lists(PICKLABLE_SMALL | st.sampled_from(UNPICKLABLE), max_size=5),
    options=any_options(),
)
def test_async_iter_stores_every_item_or_none(items, options):
    options.pop("serializer", None)
    # Checked before any item: options a batch refuses, and save=False.
    upfront = set(bulk.REFUSED_OPTIONS) & set(options)
    if options.get("save") is not None and options["save"] is not True:
        upfront.add("save")
    # A group given is checked before any item too.
    group_valid, group_suspects = (
        judge({"group": options["group"]})
        if options.get("group") not in (None, "")
        else (True, set())
    )
    # Checked on each item, so only when there is one.
    valid, suspects = judge(options) if items else (True, set())
    unpicklable = any(item is bad for item in items for bad in UNPICKLABLE)
    names = (
        upfront | suspects | group_suspects | ({"args[0]"} if unpicklable else set())
    )
    must_fail = bool(upfront) or valid is False or group_valid is False or unpicklable
    with example() as ex:
        group, error = attempt(
            lambda: groups.async_iter(tasks.echo, items, **built(options))
        )
        if error is not None:
            assert names, f"A valid async_iter() was refused: {error!r}"
            ex.rejected(error, *names)
            return
        assert not must_fail, f"async_iter() accepted {names}: {options!r}"
        ex.added(Task=len(items))
        assert Task.objects.filter(group=group).count() == len(items)


# Regression tests for what the fuzzing found.


def test_async_iter_refuses_a_bad_group_even_with_no_items():
    with example() as ex, pytest.raises(ValueError, match="group") as info:
        groups.async_iter(tasks.echo, [], group="a\x00b")
    ex.rejected(info.value, "group")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"task_name": "a\x00b"}, "task_name"),
        ({"group": "\x00"}, "group"),
        ({"queue": "q\x00"}, "queue"),
        ({"unique_key": "k\x00"}, "unique_key"),
        ({"task_name": "a\ud800"}, "task_name"),
        ({"queue": "\udcff"}, "queue"),
        ({"unique_key": "\ud800"}, "unique_key"),
    ],
)
def test_nul_and_lone_surrogates_in_names_are_refused_before_the_driver_sees_them(
    options, name
):
    # PostgreSQL raised DataError for NUL; every driver raised
    # UnicodeEncodeError for a lone surrogate, after task_enqueuing was sent.
    with example() as ex, pytest.raises(ValueError, match=name) as info:
        async_task(tasks.echo, **options)
    ex.rejected(info.value, name)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"priority": float("nan")}, "priority"),
        ({"priority": float("inf")}, "priority"),
        ({"countdown": float("nan")}, "countdown"),
        ({"countdown": float("inf")}, "countdown"),
        ({"countdown": 1e12}, "countdown"),
        ({"expires": float("nan")}, "expires"),
        ({"expires": 1e15}, "expires"),
        ({"unique_key": "k", "unique_for": float("inf")}, "unique_for"),
        ({"unique_key": "k", "unique_for": datetime.timedelta.max}, "unique_for"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": 1e10}, "timeout"),
        ({"max_attempts": 2**31}, "max_attempts"),
        ({"max_attempts": 10**5000}, "max_attempts"),
        (
            {
                "eta": datetime.datetime.max.replace(
                    tzinfo=datetime.timezone(-datetime.timedelta(hours=5))
                )
            },
            "eta",
        ),
        (
            {
                "eta": datetime.datetime.min.replace(
                    tzinfo=datetime.timezone(datetime.timedelta(hours=5))
                )
            },
            "eta",
        ),
        ({"expires": datetime.datetime.max.replace(tzinfo=UTC)}, "expires"),
        ({"priority": [[[]]] * 3}, "priority"),
        ({"group": 0}, "group"),
        ({"hook": ".x"}, "hook"),
        ({"hook": "..x.y"}, "hook"),
        ({"hook": lambda task: None}, "hook"),
    ],
)
def test_out_of_range_options_are_refused_by_name(options, name):
    # Each raised OverflowError, a bare ValueError naming nothing, a driver
    # error (DataError, ProgrammingError on MariaDB) or was stored silently
    # (NaN timeout as NULL on SQLite, a timeout the worker's timer cannot arm).
    with example() as ex, pytest.raises((TypeError, ValueError)) as info:
        async_task(tasks.echo, **options)
    ex.rejected(info.value, name)


def test_an_option_nested_deeper_than_the_recursion_limit_is_refused_by_name():
    with example() as ex, pytest.raises(ValueError, match="priority") as info:
        async_task(tasks.echo, priority=Deep(50_000).build())
    ex.rejected(info.value, "priority")


@pytest.mark.parametrize("serializer", ["xml", "", 0, []])
def test_an_unknown_serializer_is_refused_by_name(serializer):
    # It was reported as an argument the serializer cannot take, and a
    # falsy one silently meant the default.
    with example() as ex, pytest.raises(ValueError, match="serializer") as info:
        api.enqueue(tasks.echo, (1,), serializer=serializer)
    ex.rejected(info.value, "serializer")


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ("abc", {}, "args"),
        (5, {}, "args"),
        ((), {1: 2}, "kwargs"),
        ((), [("a", 1)], "kwargs"),
    ],
)
def test_args_must_be_a_sequence_and_kwargs_a_dict_with_string_keys(args, kwargs, name):
    # "abc" was stored as ("a", "b", "c"), and {1: 2} as a call no worker can make.
    with example() as ex, pytest.raises(TypeError, match=name) as info:
        api.enqueue(tasks.echo, args, kwargs)
    ex.rejected(info.value, name)


def test_a_long_timeout_and_a_far_eta_within_range_are_accepted():
    eta = datetime.datetime(9999, 12, 1, tzinfo=UTC)
    with example() as ex:
        task = api.enqueue(
            tasks.echo,
            (),
            timeout=validation.TIMEOUT_MAX,
            eta=eta,
            max_attempts=INT_MAX,
        )
        ex.added(Task=1)
        row = Task.objects.get(pk=task.pk)
        assert (row.timeout, row.run_after, row.max_attempts) == (
            validation.TIMEOUT_MAX,
            eta,
            INT_MAX,
        )


def test_valid_seconds_options_accept_fractions_and_ints():
    with example() as ex:
        task = api.enqueue(
            tasks.echo, (), countdown=fractions.Fraction(3, 2), expires=10**6, timeout=7
        )
        ex.added(Task=1)
        assert Task.objects.get(pk=task.pk).timeout == 7.0


def test_json_keeps_every_valid_value_and_names_the_first_bad_one():
    with example() as ex:
        task = api.enqueue(
            ECHO,
            ({"a": [1, 2.5, None, True, "\x00\ud800"]},),
            {"n": 1},
            serializer="json",
        )
        ex.added(Task=1)
        assert Task.objects.get(pk=task.pk).args == (
            {"a": [1, 2.5, None, True, "\x00\ud800"]},
        )
    with example() as ex, pytest.raises(exceptions.SerializationError) as info:
        api.enqueue(
            ECHO,
            (1, float("nan")),
            {"when": datetime.datetime.now(UTC)},
            serializer="json",
        )
    ex.rejected(info.value, "'args[1]'")
    assert_clear(info.value, "args[1]")
    assert json.loads(json.dumps([1])) == [1]
