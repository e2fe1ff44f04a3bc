"""When a schedule is due: rules, catch-up planning and previews, pure and without a database.

Every schedule is a :class:`Rule` evaluated in its own time zone (zoneinfo).
Two families of rules, and the docs (docs/schedules.md) say which is which:

- **Elapsed time**: ``MINUTES`` and ``HOURLY`` run every N real minutes from
  their first run (the anchor). A DST change does not move them in real time,
  so their wall-clock minute shifts with it (an hourly run at 01:15 runs at
  03:15 after a spring-forward night, and 25 times on a fall-back day).
- **Wall clock**: ``DAILY`` … ``YEARLY`` keep the anchor's local time of day
  (and day of month, clamped to the month's length: the 31st runs on
  28 February and again on 31 March), and ``CRON`` matches the local wall
  clock. How a local time becomes an instant across DST changes is
  :mod:`dbqueue.wallclock`'s job.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import math
from collections.abc import Iterator

from dbqueue import validation, wallclock

UTC = datetime.UTC
EPSILON = datetime.timedelta(microseconds=1)  # the databases keep microseconds

ONCE = "ONCE"
MINUTES = "MINUTES"
HOURLY = "HOURLY"
DAILY = "DAILY"
WEEKLY = "WEEKLY"
MONTHLY = "MONTHLY"
QUARTERLY = "QUARTERLY"
YEARLY = "YEARLY"
CRON = "CRON"
KINDS = (ONCE, MINUTES, HOURLY, DAILY, WEEKLY, MONTHLY, QUARTERLY, YEARLY, CRON)
STEP_DAYS = {DAILY: 1, WEEKLY: 7}
STEP_MONTHS = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}

MINUTES_MAX = 2**31 - 1  # Schedule.minutes: PostgreSQL's integer column

SKIP = "SKIP"
CATCH_UP_ONCE = "ONCE"
ALL = "ALL"


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one schedule repeats: its kind, anchor (first run), interval or cron, and zone."""

    kind: str
    anchor: datetime.datetime
    zone: datetime.tzinfo = UTC
    minutes: int | None = None
    cron: str = ""

    def __post_init__(self) -> None:
        if self.anchor.tzinfo is None:
            raise ValueError(
                f"A rule's anchor must be an aware datetime, got the naive {self.anchor.isoformat()}."
            )
        # Aware arithmetic in a zone adds to the wall clock (2027-03-28 01:15
        # CET + 1 hour is "02:15", which does not exist); elapsed time is UTC.
        object.__setattr__(self, "anchor", self.anchor.astimezone(UTC))
        if self.kind not in KINDS:
            raise ValueError(f"Unknown schedule kind {self.kind!r}.")
        if self.kind == MINUTES and (not self.minutes or self.minutes < 1):
            raise ValueError(
                f"An every-N-minutes rule needs minutes >= 1, got {self.minutes!r}."
            )
        if self.kind == CRON:
            wallclock.check_cron(self.cron)

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """Return the first run time strictly after `moment`, or None if there is none.

        There is none past wallclock.LATEST, the last instant dbqueue stores:
        a schedule whose next run would fall after the year 9999 is finished.
        """
        try:
            found = self._next_after(moment.astimezone(UTC))
        except OverflowError:
            return None
        return found if found is not None and found <= wallclock.LATEST else None

    def _next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        if self.kind == ONCE:
            return self.anchor if self.anchor > moment else None
        if self.kind == CRON:
            return wallclock.cron_next(self.cron, self.zone, moment)
        if self.kind in (MINUTES, HOURLY):
            period = self._period()
            if moment < self.anchor:
                return self.anchor
            return self.anchor + ((moment - self.anchor) // period + 1) * period
        k = max(0, self._calendar_index(moment) - 1)
        while self._calendar_run(k) <= moment:
            k += 1
        return self._calendar_run(k)

    def last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        """Return the latest run time at or before `moment`, or None if there is none."""
        try:
            return self._last_at_or_before(moment.astimezone(UTC))
        except OverflowError:  # before the year 1
            return None

    def _last_at_or_before(self, moment: datetime.datetime) -> datetime.datetime | None:
        if self.kind == ONCE:
            return self.anchor if self.anchor <= moment else None
        if self.kind == CRON:
            return wallclock.cron_last(self.cron, self.zone, moment)
        if moment < self.anchor:
            return None
        if self.kind in (MINUTES, HOURLY):
            period = self._period()
            return self.anchor + ((moment - self.anchor) // period) * period
        k = self._calendar_index(moment) + 1
        while k >= 0 and self._is_calendar_run_after(k, moment):
            k -= 1
        return self._calendar_run(k) if k >= 0 else None

    def _period(self) -> datetime.timedelta:
        minutes = self.minutes if self.kind == MINUTES and self.minutes else 60
        return datetime.timedelta(minutes=minutes)

    def _calendar_index(self, moment: datetime.datetime) -> int:
        """Estimate how many periods lie between the anchor and `moment` (off by at most one)."""
        start = self.anchor.astimezone(self.zone)
        there = moment.astimezone(self.zone)
        if self.kind in STEP_DAYS:
            return (there.date() - start.date()).days // STEP_DAYS[self.kind]
        months = (there.year - start.year) * 12 + there.month - start.month
        return months // STEP_MONTHS[self.kind]

    def _is_calendar_run_after(self, k: int, moment: datetime.datetime) -> bool:
        try:
            return self._calendar_run(k) > moment
        except OverflowError:  # past the year 9999, so after any moment
            return True

    def _calendar_run(self, k: int) -> datetime.datetime:
        """Return the k-th run of a calendar rule: the anchor's wall time, k periods later."""
        wall = self.anchor.astimezone(self.zone).replace(tzinfo=None)
        if self.kind in STEP_DAYS:
            wall += datetime.timedelta(days=k * STEP_DAYS[self.kind])
        else:
            month0 = wall.month - 1 + k * STEP_MONTHS[self.kind]
            year, month = wall.year + month0 // 12, month0 % 12 + 1
            if not datetime.MINYEAR <= year <= datetime.MAXYEAR:
                raise OverflowError(f"year {year} is out of range")
            # The 31st of a month that has 30 days runs on the 30th, and the
            # next month is counted from the anchor, not from that clamped day.
            day = min(wall.day, calendar.monthrange(year, month)[1])
            wall = wall.replace(year=year, month=month, day=day)
        return wallclock.instants(wall, self.zone)[0]


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a scheduler does with a due schedule at `now`."""

    # Due times to enqueue now, oldest first; each becomes one ScheduleRun.
    fire: tuple[datetime.datetime, ...]
    # The first due time after now; None when the schedule has no more runs.
    next_run: datetime.datetime | None
    # Due times in [missed_from, missed_until) were dropped by the catch-up policy.
    missed_from: datetime.datetime | None = None
    missed_until: datetime.datetime | None = None


def plan(
    rule: Rule,
    next_run: datetime.datetime,
    now: datetime.datetime,
    *,
    catch_up: str = SKIP,
    grace: float = 60.0,
    limit: int = 100,
) -> Plan:
    """Decide which due times fire at `now` for a schedule whose next run is `next_run`.

    A due time at most `grace` seconds old is on time and always fires: a
    scheduler is never exactly punctual, and a seconds-level schedule may
    find two due times at one look. Older due times were missed (no cluster
    was running), and `catch_up` decides:

    - ``SKIP``: drop them; only on-time due times fire.
    - ``ONCE``: fire one run for the whole missed window (its latest due
      time) unless an on-time run already covers it, then resume.
    - ``ALL``: fire every missed due time, at most `limit` (the newest).

    A one-off (``ONCE`` kind) schedule always fires when due: it has no later
    time to wait for. No list is longer than `limit`.
    """
    next_run, now = next_run.astimezone(UTC), now.astimezone(UTC)
    if next_run > now:
        return Plan((), next_run)
    if rule.kind == ONCE:
        return Plan((next_run,), None)
    following = rule.next_after(now)
    cutoff = now - datetime.timedelta(seconds=grace)
    if next_run >= cutoff:
        return Plan(tuple(_newest(_forward(rule, next_run, now), limit)), following)
    first_on_time = rule.next_after(cutoff - EPSILON)
    on_time = (
        _newest(_forward(rule, first_on_time, now), limit)
        if first_on_time is not None and first_on_time <= now
        else []
    )
    if catch_up == ALL:
        fire = _backward(rule, next_run, now, limit)
        if fire[0] > next_run:
            return Plan(tuple(fire), following, next_run, fire[0])
        return Plan(tuple(fire), following)
    if catch_up == CATCH_UP_ONCE and not on_time:
        latest = rule.last_at_or_before(now)
        fire = [latest if latest is not None and latest > next_run else next_run]
        return Plan(tuple(fire), following, next_run, fire[0])
    return Plan(tuple(on_time), following, next_run, on_time[0] if on_time else now)


def preview(
    rule: Rule, next_run: datetime.datetime, count: int
) -> list[datetime.datetime]:
    """Return the next `count` run times, starting with `next_run`."""
    runs: list[datetime.datetime] = []
    moment: datetime.datetime | None = next_run
    while moment is not None and len(runs) < count:
        runs.append(moment)
        moment = rule.next_after(moment)
    return runs


def timing_problems(
    kind: str, *, minutes: object = None, cron: object = "", timezone_name: object = ""
) -> dict[str, str]:
    """Return what is wrong with a schedule's timing, keyed by field name (empty when usable).

    Shared by schedule(), the Schedule model's clean() (so admin forms) and the
    system check, so the three say the same thing about the same value.
    """
    problems: dict[str, str] = {}
    if kind not in KINDS:
        problems["schedule_type"] = (
            f"schedule_type {kind!r} is not one of {', '.join(k.lower() for k in KINDS)}."
        )
    if kind == MINUTES:
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            problems["minutes"] = (
                "minutes must be a positive whole number of minutes for an every-N-minutes "
                f"schedule, got {validation.shown(minutes)}."
            )
        elif minutes > MINUTES_MAX:
            problems["minutes"] = (
                f"minutes must be at most {MINUTES_MAX}, got {validation.shown(minutes)}."
            )
    elif minutes is not None:
        problems["minutes"] = (
            f"minutes is only used with schedule_type 'MINUTES'; leave it empty for {kind!r}."
        )
    if kind == CRON:
        problem = wallclock.cron_problem(cron)
        if problem:
            problems["cron"] = problem
    elif cron:
        problems["cron"] = (
            f"cron is only used with schedule_type 'CRON'; leave it empty for {kind!r}."
        )
    if timezone_name:
        try:
            wallclock.zone(timezone_name)
        except ValueError as exc:
            problems["timezone"] = str(exc)
    return problems


def _forward(
    rule: Rule, start: datetime.datetime, until: datetime.datetime
) -> Iterator[datetime.datetime]:
    """Yield `start`, then each run time after it up to `until` inclusive."""
    moment: datetime.datetime | None = start
    while moment is not None and moment <= until:
        yield moment
        moment = rule.next_after(moment)


def _newest(times: Iterator[datetime.datetime], limit: int) -> list[datetime.datetime]:
    kept = list(times)
    return kept[-limit:] if limit > 0 else []


def _backward(
    rule: Rule, oldest: datetime.datetime, newest: datetime.datetime, limit: int
) -> list[datetime.datetime]:
    """Return the newest `limit` due times in [oldest, newest], oldest first.

    Walks back from `newest`, so a week-long outage of a seconds-level
    schedule costs `limit` steps, not one per missed second.
    """
    found: list[datetime.datetime] = []
    moment = rule.last_at_or_before(newest)
    while moment is not None and moment > oldest and len(found) < limit:
        found.append(moment)
        moment = rule.last_at_or_before(moment - EPSILON)
    if len(found) < limit:
        found.append(oldest)
    return sorted(found)


def seconds_until(moment: datetime.datetime, now: datetime.datetime) -> float:
    """Return the seconds from `now` to `moment`, never negative, rounded up to a millisecond."""
    return max(0.0, math.ceil((moment - now).total_seconds() * 1000) / 1000)
