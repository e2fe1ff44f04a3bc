"""Property-based fuzzing of dbqueue's inputs (hypothesis profiles in conftest.py).

Every fuzz test states one property for each generated input: the call
succeeds and what it stored reads back equal to what was given, or it raises
a documented exception type (TypeError, ValueError or one of
dbqueue.exceptions) whose message names the offending argument, and the
database is exactly as it was. The helpers below check the second half.

Each example runs in a savepoint that is always rolled back (example()),
so examples never see each other's rows; pytest-django's transaction
around the whole test then rolls back the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st

from dbqueue import exceptions, models, serialization, uniqueness, validation, wallclock
from tests.testapp import tasks

DOCUMENTED = (TypeError, ValueError, exceptions.DbqueueError)
T = TypeVar("T")
UTC = datetime.UTC
HOOK = "tests.testapp.tasks.remember_hook"
COUNTED = (models.Task, models.FailedTask, models.Schedule, models.ScheduleRun)


def row_counts() -> dict[str, int]:
    """Count the rows of every dbqueue table a call could write."""
    db = models.queue_db()
    return {model.__name__: model.objects.using(db).count() for model in COUNTED}


@dataclasses.dataclass
class Example:
    """One generated input's run: the row counts before it, and checks on its outcome."""

    before: dict[str, int]

    def rejected(self, exc: BaseException, *names: str) -> None:
        """Assert that `exc` is a clear, documented error and that nothing was written.

        The message must name one of `names` (the offending arguments), when given.
        """
        _event(f"refused: {type(exc).__name__}")
        assert_clear(exc, *names)
        assert row_counts() == self.before, (
            f"A rejected call changed the database ({type(exc).__name__}: {exc})"
        )

    def added(self, **rows: int) -> None:
        """Assert that the call added exactly these rows, per model name, and no others."""
        _event("accepted")
        expected = {
            name: count + rows.get(name, 0) for name, count in self.before.items()
        }
        assert row_counts() == expected


def assert_clear(exc: BaseException, *names: str) -> None:
    """Assert `exc` is a documented exception type with a message naming one of `names`."""
    text = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert isinstance(exc, DOCUMENTED), f"Undocumented exception type: {text}"
    # A ValueError, but one raised by a driver, which names no argument.
    assert not isinstance(exc, UnicodeError), f"Undocumented exception type: {text}"
    message = str(exc)
    assert message.strip(), f"Empty message: {text}"
    if names:
        assert any(name in message for name in names), (
            f"The message names none of {names}: {text}"
        )


def attempt(call: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """Return call()'s value and None, or None and the exception it raised."""
    try:
        return call(), None
    except Exception as exc:
        return None, exc


def _event(name: str) -> None:
    # Counted in --hypothesis-show-statistics: how many examples took each branch.
    if currently_in_test_context():
        event(name)


@contextlib.contextmanager
def example() -> Iterator[Example]:
    """Run one generated input in a savepoint that is rolled back afterwards."""
    db = models.queue_db()
    with transaction.atomic(using=db):
        yield Example(row_counts())
        transaction.set_rollback(True, using=db)


def same(a: Any, b: Any) -> bool:
    """Tell whether `b` is `a` read back: equal values of the same types, all the way down.

    Stricter than ==, which calls 1 == 1.0 == True, Decimal("1.0") ==
    Decimal("1.00") and 0.0 == -0.0, and NaN unequal to itself. Aware
    datetimes must keep their tzinfo and fold too.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float | complex | decimal.Decimal):
        return repr(a) == repr(b)
    if isinstance(a, datetime.datetime | datetime.time):
        return a == b and a.tzinfo == b.tzinfo and a.fold == b.fold
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def is_storable_text(value: object, max_length: int, *, min_length: int = 0) -> bool:
    """Tell whether a string option can be stored as given in a text column on every vendor."""
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        return False
    if "\x00" in value:
        return False  # PostgreSQL refuses NUL in text
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate, which no driver can send
    return True


# Shared strategies, and the oracles that say whether a task option's value is valid.

# Seconds from now that surely end before the latest storable date, and
# that surely do not; in between, either outcome is right.
SURELY_STORABLE = 1e11
SURELY_NOT = 1e12
INT_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Deep:
    """Stands for a list nested `depth` times, built only inside the test (its repr stays short)."""

    depth: int

    def build(self) -> list[Any]:
        value: list[Any] = []
        for _ in range(self.depth):
            value = [value]
        return value


def real(value: Any) -> Any:
    return value.build() if isinstance(value, Deep) else value


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


# Ints past the 4300 digits that str() and JSON take. Built, not listed:
# hypothesis shows its strategies with repr(), which such an int breaks.
HUGE_INTS = st.builds(
    lambda exponent, sign: sign * 10**exponent,
    st.sampled_from([400, 4299, 4300, 5000]),
    st.sampled_from([1, -1]),
)
CLEAN_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
# Text of every kind: lone surrogates, NUL, emoji, and lengths around the
# column limits (64 for queues, 255 for names).
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "a\x00b",
            "\x00",
            "\ud800",
            "ok\udfff",
            "\U0001f600" * 3,
            "q" * 64,
            "q" * 65,
            "n" * 255,
            "n" * 256,
            "é" * 255,
            "\U0001f600" * 255,
            "x" * 100_000,
        ]
    ),
)
WILD = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    ANY_TEXT,
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.decimals(allow_nan=False, places=2),
    st.fractions(max_denominator=10),
    st.timedeltas(),
    st.sampled_from([float("nan"), float("-inf"), object(), Deep(20_000)]),
    HUGE_INTS,
)
EDGE_DATETIMES = [
    datetime.datetime.min.replace(tzinfo=UTC),
    datetime.datetime.max.replace(tzinfo=UTC),
    datetime.datetime.min.replace(
        tzinfo=datetime.timezone(datetime.timedelta(hours=14))
    ),
    datetime.datetime.max.replace(
        tzinfo=datetime.timezone(datetime.timedelta(hours=-12))
    ),
    datetime.datetime(1, 1, 2, tzinfo=UTC),
    datetime.datetime(9999, 12, 30, tzinfo=UTC),
    datetime.datetime(2030, 1, 1),
]
ANY_DATETIME = st.one_of(
    st.datetimes(
        timezones=st.one_of(
            st.none(),
            st.just(UTC),
            st.timezones(),
            st.sampled_from(
                [
                    datetime.timezone(datetime.timedelta(hours=14)),
                    datetime.timezone(datetime.timedelta(hours=-12)),
                ]
            ),
        )
    ),
    st.sampled_from(EDGE_DATETIMES),
)
STORABLE_DATETIME = st.datetimes(
    min_value=datetime.datetime(1, 1, 3),
    max_value=datetime.datetime(9999, 12, 29),
    timezones=st.one_of(st.just(UTC), st.timezones()),
)
BAD_SECONDS = [-1, -0.5, float("nan"), float("inf"), 1e13, 1e300, "5", True]


# The oracles: is this (non-None) value valid for the option? None means
# either outcome is right.


def seconds_ok(value: Any, *, zero_ok: bool) -> bool | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        seconds = float(value)
    except OverflowError:
        return False
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        return False
    if seconds <= SURELY_STORABLE:
        return True
    return False if seconds >= SURELY_NOT else None


def instant_ok(value: Any) -> bool:
    if not isinstance(value, datetime.datetime) or timezone.is_naive(value):
        return False
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        return False
    return wallclock.EARLIEST <= moment <= wallclock.LATEST


def priority_ok(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return -100 <= value <= 100 and int(value) == value


def unique_for_ok(value: Any) -> bool | None:
    if isinstance(value, datetime.timedelta):
        return seconds_ok(value.total_seconds(), zero_ok=False)
    return seconds_ok(value, zero_ok=False)


ORACLES: dict[str, Callable[[Any], bool | None]] = {
    "task_name": lambda v: is_storable_text(v, 255),
    "group": lambda v: is_storable_text(v, 255),
    "queue": lambda v: is_storable_text(v, 64, min_length=1),
    "priority": priority_ok,
    "countdown": lambda v: seconds_ok(v, zero_ok=True),
    "eta": instant_ok,
    "expires": lambda v: (
        instant_ok(v)
        if isinstance(v, datetime.datetime)
        else seconds_ok(v, zero_ok=False)
    ),
    "max_attempts": lambda v: (
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= INT_MAX
    ),
    "timeout": lambda v: (
        isinstance(v, numbers.Real)
        and not isinstance(v, bool)
        and 0 < v <= validation.TIMEOUT_MAX
    ),
    "save": lambda v: isinstance(v, bool),
    "hook": lambda v: (
        v is tasks.remember_hook or (isinstance(v, str) and v in ("", HOOK))
    ),
    "unique_key": lambda v: is_storable_text(v, 255, min_length=1),
    "unique_for": unique_for_ok,
    "on_conflict": lambda v: isinstance(v, str) and v in uniqueness.POLICIES,
    "on_orphan": lambda v: isinstance(v, str) and v.lower() in ("retry", "fail"),
    "serializer": lambda v: isinstance(v, str) and v in serialization.SERIALIZERS,
}

VALID: dict[str, st.SearchStrategy[Any]] = {
    "task_name": st.text(CLEAN_TEXT, max_size=255),
    "group": st.text(CLEAN_TEXT, max_size=255),
    "queue": st.text(CLEAN_TEXT, min_size=1, max_size=64),
    "priority": st.integers(-100, 100) | st.integers(-100, 100).map(float),
    "countdown": st.floats(0, 1e9) | st.integers(0, 10**9) | st.fractions(0, 10**6),
    "eta": STORABLE_DATETIME,
    "expires": STORABLE_DATETIME | st.floats(1e-3, 1e9),
    "max_attempts": st.integers(1, INT_MAX),
    "timeout": st.floats(1e-3, 1e6) | st.integers(1, 10**6),
    "save": st.booleans(),
    "hook": st.sampled_from(["", HOOK, tasks.remember_hook]),
    "unique_key": st.text(CLEAN_TEXT, min_size=1, max_size=255),
    "unique_for": st.floats(1e-3, 1e9)
    | st.timedeltas(datetime.timedelta(microseconds=1), datetime.timedelta(days=3650)),
    "on_conflict": st.sampled_from(uniqueness.POLICIES),
    "on_orphan": st.sampled_from(["retry", "RETRY", "Fail", "fail"]),
    "serializer": st.sampled_from(["pickle", "json"]),
}

BAD: dict[str, st.SearchStrategy[Any]] = {
    "task_name": ANY_TEXT | WILD,
    "group": ANY_TEXT | WILD,
    "queue": ANY_TEXT | WILD,
    "priority": st.sampled_from(
        [
            101,
            -101,
            1.5,
            float("nan"),
            float("inf"),
            True,
            "1",
            decimal.Decimal(1),
        ]
    )
    | WILD,
    "countdown": st.sampled_from([*BAD_SECONDS, decimal.Decimal(1)]) | WILD,
    "eta": ANY_DATETIME | st.sampled_from([datetime.date(2030, 1, 1), "2030-01-01"]),
    "expires": ANY_DATETIME | st.sampled_from([0, *BAD_SECONDS]) | WILD,
    "max_attempts": st.sampled_from([0, -1, INT_MAX + 1, 2**63, 1.0, True, "3"]) | WILD,
    "timeout": st.sampled_from([0, *BAD_SECONDS, 1e10, validation.TIMEOUT_MAX * 2])
    | WILD,
    "save": WILD,
    "hook": st.sampled_from(
        [
            "nowhere.hook",
            "tests.testapp.tasks.NOT_A_FUNCTION",
            HOOK + "\x00",
            "\ud800.x",
            ".x",
            "..x.y",
            "os.path.",
            5,
            b"x",
            lambda task: None,
        ]
    )
    | WILD,
    "unique_key": ANY_TEXT | WILD,
    "unique_for": st.sampled_from(
        [0, *BAD_SECONDS, datetime.timedelta(0), datetime.timedelta.max]
    )
    | WILD,
    "on_conflict": st.sampled_from(["IGNORE", "skip", 1, "", "ignore\x00"]) | WILD,
    "on_orphan": st.sampled_from(["sometimes", "", 1, "retry\x00"]) | WILD,
    "serializer": st.sampled_from(["xml", "PICKLE", "", 0, False]) | WILD,
}
OPTION_NAMES = sorted(ORACLES)
