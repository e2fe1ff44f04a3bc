"""Local wall-clock times in a time zone: their instants across DST changes, and cron.

A wall-clock time (a DAILY run at 02:30, a cron match) is a naive local time
that becomes an instant only in a zone. Twice a year every DST zone's wall
clock has a hole. The rules, chosen so that a fixed time runs exactly once per
day and no run is doubled (see tests/unit/test_scheduling.py for
Europe/Berlin and Australia/Lord_Howe):

- **Gap** (spring forward): a local time that does not exist runs at the
  instant it would have had without the jump, that is shifted forward by the
  length of the gap: "02:30" runs at 03:30 CEST in Berlin, "02:00" at 02:30 on
  Lord Howe Island (a 30-minute jump). This is what zoneinfo (PEP 495,
  ``fold=0``) and PostgreSQL do with such a time. Two wall times that land on
  the same instant run once, so an hourly cron runs 23 times that day in Berlin.
- **Overlap** (fall back): a local time that occurs twice runs once, at its
  first occurrence, unless the cron expression's hour field is ``*``: such an
  expression runs every hour by design, so it runs in both passes and keeps
  its rhythm in real time (an hourly cron runs 25 times that day, and a
  ``*/15`` one never pauses for an hour).

croniter does the calendar matching on naive local times only; the mapping of
a local time to an instant is done here, because croniter's own DST handling
skips fire times when a zone's shift is not a whole hour
(https://github.com/pallets-eco/croniter/issues/258).
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

UTC = datetime.UTC
# DST jumps are at most two hours (Antarctica/Troll; historic double summer
# time), so offsets sampled this far around an instant cover every local time
# that can map near it.
OFFSET_WINDOW = datetime.timedelta(hours=6)
CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31 or L"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
    ("second", "0-59"),
)
# croniter works on naive local times; validation walks from this one.
CRON_CHECK_FROM = datetime.datetime(2000, 1, 1)
# The instants dbqueue stores: Python's datetime range less a day at each
# end, so that every one converts to UTC and to any time zone (a database
# connection's, the admin's) without overflowing.
EARLIEST = datetime.datetime.min.replace(tzinfo=UTC) + datetime.timedelta(days=1)
LATEST = datetime.datetime.max.replace(tzinfo=UTC) - datetime.timedelta(days=1)
ZONE_NAME_MAX = 64  # characters, Schedule.timezone; IANA names are shorter


def instants(
    wall: datetime.datetime, zone: datetime.tzinfo, *, both_passes: bool = False
) -> list[datetime.datetime]:
    """Return the UTC instant(s) at which the naive local time `wall` runs in `zone`.

    One instant normally; a time in a DST gap runs shifted forward by the gap;
    a time in an overlap runs at its first occurrence, or at both
    occurrences with `both_passes`.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # In an overlap fold=0 is the earlier instant; in a gap (PEP 495) fold=0
    # uses the offset from before the jump, which is the shifted-forward time.
    if second > first and both_passes:
        return [first, second]
    return [first]


def zone(name: object) -> zoneinfo.ZoneInfo:
    """Return the IANA time zone called `name`.

    Raise ValueError naming the value if there is no such zone.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"timezone must be an IANA time zone name such as 'Europe/Berlin', got {name!r}."
        )
    # A long name never reaches the file system (where it fails with
    # ENAMETOOLONG, or a RecursionError in importlib.resources when deep),
    # and a directory such as 'Europe' is no zone (IsADirectoryError).
    if len(name) <= ZONE_NAME_MAX:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ValueError(
        f"timezone {name!r} is not an IANA time zone name such as 'Europe/Berlin' or 'UTC'."
    )


def check_cron(expression: str) -> None:
    """Raise ValueError naming the field and its range if `expression` is not a usable cron expression.

    Five fields (minute hour day-of-month month day-of-week), an optional
    sixth for seconds (croniter's order), or an alias such as ``@daily``.
    """
    problem = cron_problem(expression)
    if problem:
        raise ValueError(problem)


def cron_problem(expression: object) -> str | None:
    """Describe what is wrong with a cron expression, or return None when it is usable."""
    if not isinstance(expression, str) or not expression.strip():
        return (
            f"cron must be a cron expression such as '0 3 * * *', got {expression!r}."
        )
    text = " ".join(expression.split())
    fields = text.split(" ")
    if not text.startswith("@") and len(fields) not in (5, 6):
        return (
            f"cron {text!r} has {len(fields)} field(s); give 5 (minute hour day-of-month "
            "month day-of-week) or 6 (the same, then seconds)."
        )
    try:
        croniter(text, CRON_CHECK_FROM)
    except (CroniterBadCronError, ValueError, TypeError, KeyError) as exc:
        for index, value in enumerate(fields if not text.startswith("@") else []):
            probe = ["*"] * len(fields)
            probe[index] = value
            try:
                croniter(" ".join(probe), CRON_CHECK_FROM)
            except (CroniterBadCronError, ValueError, TypeError, KeyError):
                name, allowed = CRON_FIELDS[index]
                return f"cron {text!r} is not valid: the {name} field {value!r} must be {allowed}."
        return f"cron {text!r} is not valid: {exc}."
    try:
        croniter(text, CRON_CHECK_FROM).get_next(datetime.datetime)
    except CroniterBadDateError:
        return f"cron {text!r} never fires: no date matches it (such as 30 February)."
    return None


def _offsets_near(
    zone: datetime.tzinfo, moment: datetime.datetime
) -> tuple[datetime.timedelta, datetime.timedelta]:
    """Return the smallest and largest UTC offset of `zone` within OFFSET_WINDOW of `moment`."""
    offsets = [
        (moment + delta).astimezone(zone).utcoffset() or datetime.timedelta()
        for delta in (-OFFSET_WINDOW, datetime.timedelta(), OFFSET_WINDOW)
    ]
    return min(offsets), max(offsets)


def _naive_utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=256)
def _hour_is_star(expression: str) -> bool:
    expanded = croniter(expression, CRON_CHECK_FROM).expanded
    return bool(expanded[1] == ["*"])


def cron_next(
    expression: str, zone: datetime.tzinfo, moment: datetime.datetime
) -> datetime.datetime | None:
    """Return the first instant after `moment` at which `expression` matches the wall clock in `zone`.

    croniter walks naive local times upwards; each is mapped to its instant(s)
    by instants(). Near a DST change the mapping is not monotonic, so the walk
    starts early enough (the earliest local time whose instant can follow
    `moment`) and stops once no later local time can map before the best found.
    """
    both = _hour_is_star(expression)
    low, _ = _offsets_near(zone, moment)
    start = (_naive_utc(moment) + low).replace(microsecond=0) - datetime.timedelta(
        seconds=1
    )
    walker = croniter(expression, start)
    best: datetime.datetime | None = None
    stop: datetime.datetime | None = None
    while True:
        try:
            wall = walker.get_next(datetime.datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            # No match left, or croniter walked past the year 9999
            # (OverflowError, or ValueError "year 10000 is out of range").
            return best
        if stop is not None and wall >= stop:
            return best
        for candidate in instants(wall, zone, both_passes=both):
            if candidate > moment and (best is None or candidate < best):
                best = candidate
                stop = _naive_utc(best) + _offsets_near(zone, best)[1]


def cron_last(
    expression: str, zone: datetime.tzinfo, moment: datetime.datetime
) -> datetime.datetime | None:
    """Return the latest instant at or before `moment` at which `expression` matches (mirror of cron_next)."""
    both = _hour_is_star(expression)
    _, high = _offsets_near(zone, moment)
    ceiling = _naive_utc(moment) + high
    start = ceiling.replace(microsecond=0) + datetime.timedelta(seconds=2)
    walker = croniter(expression, start)
    best: datetime.datetime | None = None
    stop: datetime.datetime | None = None
    while True:
        try:
            wall = walker.get_prev(datetime.datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            return best  # as in cron_next(), before the year 1
        if stop is not None and wall <= stop:
            return best
        for candidate in instants(wall, zone, both_passes=both):
            if candidate <= moment and (best is None or candidate > best):
                best = candidate
                stop = _naive_utc(best) + _offsets_near(zone, best)[0]
