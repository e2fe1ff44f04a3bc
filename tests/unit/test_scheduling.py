"""The schedule time math, with injected times and no database.

DST cases follow tests scenarios F-04/F-05: Europe/Berlin springs forward on
2027-03-28 (02:00 -> 03:00) and falls back on 2027-10-31 (03:00 -> 02:00);
Australia/Lord_Howe springs forward by 30 minutes on 2027-10-03 (02:00 -> 02:30).
"""

import datetime
import itertools
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbqueue import scheduling, wallclock
from dbqueue.scheduling import EPSILON, Rule, plan

UTC = datetime.UTC
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = datetime.timedelta(minutes=1)


def at(zone, *parts, fold=0):
    return datetime.datetime(*parts, tzinfo=zone, fold=fold)


def cron(expression, zone=UTC):
    return Rule(scheduling.CRON, anchor=at(UTC, 2027, 1, 1), zone=zone, cron=expression)


def runs_between(rule, start, end):
    """Every run time in [start, end), walking next_after()."""
    found = []
    moment = rule.next_after(start - EPSILON)
    while moment is not None and moment < end:
        found.append(moment)
        moment = rule.next_after(moment)
    return found


def local_day(zone, *date):
    start = at(zone, *date)
    return start, at(
        zone, *(datetime.date(*date) + datetime.timedelta(days=1)).timetuple()[:3]
    )


def simulate(rule, start, end, *, step=MINUTE, catch_up=scheduling.SKIP, grace=60.0):
    """Fire as a scheduler would, looking every `step` with a fake clock; return the due times fired."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    next_run = rule.next_after(start - EPSILON)
    fired = []
    now = start
    while now <= end and next_run is not None:
        decision = plan(rule, next_run, now, catch_up=catch_up, grace=grace)
        fired.extend(decision.fire)
        next_run = decision.next_run
        now += step
    return fired


def walls(zone, moments):
    return [m.astimezone(zone).strftime("%H:%M%z") for m in moments]


# Every type, in ordinary time.


def test_once_runs_at_its_time_and_never_again():
    rule = Rule(scheduling.ONCE, anchor=at(UTC, 2027, 5, 1, 9))
    assert rule.next_after(at(UTC, 2027, 5, 1, 8)) == at(UTC, 2027, 5, 1, 9)
    assert rule.next_after(at(UTC, 2027, 5, 1, 9)) is None
    decision = plan(rule, at(UTC, 2027, 5, 1, 9), at(UTC, 2027, 5, 3))
    assert decision.fire == (at(UTC, 2027, 5, 1, 9),)
    assert decision.next_run is None


def test_every_n_minutes_counts_from_the_first_run():
    rule = Rule(scheduling.MINUTES, anchor=at(UTC, 2027, 5, 1, 9, 7), minutes=15)
    assert runs_between(rule, at(UTC, 2027, 5, 1, 9), at(UTC, 2027, 5, 1, 10)) == [
        at(UTC, 2027, 5, 1, 9, 7),
        at(UTC, 2027, 5, 1, 9, 22),
        at(UTC, 2027, 5, 1, 9, 37),
        at(UTC, 2027, 5, 1, 9, 52),
    ]
    assert rule.last_at_or_before(at(UTC, 2027, 5, 1, 9, 40)) == at(
        UTC, 2027, 5, 1, 9, 37
    )
    assert rule.last_at_or_before(at(UTC, 2027, 5, 1, 9)) is None


def test_hourly_is_every_sixty_minutes_of_elapsed_time():
    rule = Rule(scheduling.HOURLY, anchor=at(BERLIN, 2027, 3, 27, 0, 15), zone=BERLIN)
    runs = runs_between(rule, *local_day(BERLIN, 2027, 3, 28))
    # 23 real hours that day; 01:15 CET is followed by 03:15 CEST.
    assert len(runs) == 23
    assert walls(BERLIN, runs)[:3] == ["00:15+0100", "01:15+0100", "03:15+0200"]
    fall = runs_between(rule, *local_day(BERLIN, 2027, 10, 31))
    assert len(fall) == 25
    assert walls(BERLIN, fall)[2:4] == ["02:15+0200", "02:15+0100"]


def test_daily_keeps_its_local_time_across_a_change_of_offset():
    rule = Rule(scheduling.DAILY, anchor=at(BERLIN, 2027, 3, 26, 9), zone=BERLIN)
    runs = runs_between(rule, at(BERLIN, 2027, 3, 26), at(BERLIN, 2027, 3, 30))
    assert walls(BERLIN, runs) == [
        "09:00+0100",
        "09:00+0100",
        "09:00+0200",
        "09:00+0200",
    ]


def test_weekly_runs_on_the_anchor_weekday():
    rule = Rule(
        scheduling.WEEKLY, anchor=at(NEW_YORK, 2027, 1, 4, 8), zone=NEW_YORK
    )  # a Monday
    runs = runs_between(rule, at(NEW_YORK, 2027, 1, 1), at(NEW_YORK, 2027, 1, 31))
    assert [r.astimezone(NEW_YORK).day for r in runs] == [4, 11, 18, 25]
    assert {r.astimezone(NEW_YORK).weekday() for r in runs} == {0}


def test_monthly_clamps_the_31st_and_comes_back_to_it():
    rule = Rule(scheduling.MONTHLY, anchor=at(UTC, 2027, 1, 31, 12), zone=UTC)
    runs = runs_between(rule, at(UTC, 2027, 1, 1), at(UTC, 2027, 6, 1))
    assert [(r.month, r.day) for r in runs] == [
        (1, 31),
        (2, 28),
        (3, 31),
        (4, 30),
        (5, 31),
    ]


def test_quarterly_is_every_third_month():
    rule = Rule(scheduling.QUARTERLY, anchor=at(UTC, 2027, 2, 15, 6), zone=UTC)
    runs = runs_between(rule, at(UTC, 2027, 1, 1), at(UTC, 2028, 3, 1))
    assert [(r.year, r.month) for r in runs] == [
        (2027, 2),
        (2027, 5),
        (2027, 8),
        (2027, 11),
        (2028, 2),
    ]


def test_yearly_on_29_february_runs_on_the_28th_in_other_years():
    rule = Rule(scheduling.YEARLY, anchor=at(UTC, 2028, 2, 29, 0), zone=UTC)
    runs = runs_between(rule, at(UTC, 2028, 1, 1), at(UTC, 2033, 1, 1))
    assert [r.date().isoformat() for r in runs] == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]


def test_calendar_rules_walk_backwards_too():
    rule = Rule(scheduling.MONTHLY, anchor=at(UTC, 2027, 1, 31, 12), zone=UTC)
    assert rule.last_at_or_before(at(UTC, 2027, 3, 31, 11)) == at(UTC, 2027, 2, 28, 12)
    assert rule.last_at_or_before(at(UTC, 2027, 3, 31, 12)) == at(UTC, 2027, 3, 31, 12)
    assert rule.last_at_or_before(at(UTC, 2027, 1, 31, 11)) is None


def test_cron_is_evaluated_in_the_schedules_zone():
    rule = cron("0 9 * * MON-FRI", NEW_YORK)
    first = rule.next_after(at(UTC, 2027, 1, 1, 15))  # a Friday, 10:00 in New York
    assert first == at(NEW_YORK, 2027, 1, 4, 9)  # Monday
    assert first.astimezone(UTC).hour == 14


def test_cron_with_a_seconds_field():
    rule = cron("* * * * * */20")
    assert runs_between(
        rule, at(UTC, 2027, 1, 1, 0, 0, 1), at(UTC, 2027, 1, 1, 0, 1, 1)
    ) == [
        at(UTC, 2027, 1, 1, 0, 0, 20),
        at(UTC, 2027, 1, 1, 0, 0, 40),
        at(UTC, 2027, 1, 1, 0, 1, 0),
    ]


def test_preview_lists_the_next_runs_starting_with_next_run():
    rule = cron("0 */6 * * *")
    assert scheduling.preview(rule, at(UTC, 2027, 1, 1, 6), 3) == [
        at(UTC, 2027, 1, 1, 6),
        at(UTC, 2027, 1, 1, 12),
        at(UTC, 2027, 1, 1, 18),
    ]
    once = Rule(scheduling.ONCE, anchor=at(UTC, 2027, 1, 1))
    assert scheduling.preview(once, at(UTC, 2027, 1, 1), 3) == [at(UTC, 2027, 1, 1)]


# F-04: spring forward in Europe/Berlin, 2027-03-28.


def test_daily_0230_cron_runs_once_on_the_day_0230_does_not_exist_and_again_next_day():
    fired = simulate(
        cron("30 2 * * *", BERLIN),
        at(BERLIN, 2027, 3, 27, 12),
        at(BERLIN, 2027, 3, 29, 12),
    )
    assert fired == [
        at(BERLIN, 2027, 3, 28, 3, 30),  # documented: shifted forward by the gap
        at(BERLIN, 2027, 3, 29, 2, 30),  # and the next day as usual, not a year later
    ]


def test_hourly_cron_runs_23_times_on_the_spring_forward_day():
    fired = simulate(cron("0 * * * *", BERLIN), *local_day(BERLIN, 2027, 3, 28))
    day = [m for m in fired if m < local_day(BERLIN, 2027, 3, 28)[1]]
    assert len(day) == 23
    assert "02:00+0100" not in walls(BERLIN, day)


def test_daily_type_at_0230_runs_once_on_the_spring_forward_day():
    rule = Rule(scheduling.DAILY, anchor=at(BERLIN, 2027, 3, 20, 2, 30), zone=BERLIN)
    fired = simulate(rule, at(BERLIN, 2027, 3, 27, 12), at(BERLIN, 2027, 3, 29, 12))
    assert walls(BERLIN, fired) == ["03:30+0200", "02:30+0200"]


# F-04 hidden variant: a 30-minute DST jump on Lord Howe Island, 2027-10-03.


def test_lord_howe_hourly_cron_has_no_skipped_or_doubled_slot():
    start, end = local_day(LORD_HOWE, 2027, 10, 3)
    fired = simulate(cron("0 * * * *", LORD_HOWE), start, end)
    day = [m for m in fired if m < end]
    slots = [
        m.astimezone(LORD_HOWE).hour if m.astimezone(LORD_HOWE).minute == 0 else None
        for m in day
    ]
    # Every wall-clock hour's run happens once; 02:00 does not exist and runs
    # at 02:30 (+11:00), the instant croniter's get_next skips (croniter #258).
    assert len(day) == 24
    assert len(set(day)) == 24
    assert walls(LORD_HOWE, day)[1:4] == ["01:00+1030", "02:30+1100", "03:00+1100"]
    assert slots.count(None) == 1
    assert sorted(s for s in slots if s is not None) == [h for h in range(24) if h != 2]


def test_lord_howe_elapsed_hourly_keeps_sixty_minutes_apart():
    rule = Rule(scheduling.HOURLY, anchor=at(LORD_HOWE, 2027, 10, 2, 0), zone=LORD_HOWE)
    start, end = local_day(LORD_HOWE, 2027, 10, 3)
    runs = runs_between(rule, start, end)
    gaps = {b - a for a, b in itertools.pairwise(runs)}
    assert gaps == {datetime.timedelta(hours=1)}
    assert len(runs) == 24  # 23.5 hours: the wall clock minute moves to :30


# F-05: fall back in Europe/Berlin, 2027-10-31.


def test_daily_0230_cron_runs_once_on_the_day_0230_happens_twice():
    fired = simulate(
        cron("30 2 * * *", BERLIN),
        at(BERLIN, 2027, 10, 30, 12),
        at(BERLIN, 2027, 11, 1, 12),
    )
    assert walls(BERLIN, fired) == ["02:30+0200", "02:30+0100"]
    assert [m.astimezone(BERLIN).day for m in fired] == [31, 1]


def test_hourly_cron_runs_once_per_real_hour_on_the_fall_back_day():
    start, end = local_day(BERLIN, 2027, 10, 31)
    fired = [m for m in simulate(cron("0 * * * *", BERLIN), start, end) if m < end]
    assert len(fired) == 25  # documented: the hour field is *, so both passes run
    gaps = [b - a for a, b in itertools.pairwise(fired)]
    assert min(gaps) == datetime.timedelta(hours=1)


def test_a_fixed_hour_cron_never_runs_twice_in_the_repeated_hour():
    start, end = local_day(BERLIN, 2027, 10, 31)
    fired = [m for m in simulate(cron("*/10 2 * * *", BERLIN), start, end) if m < end]
    assert walls(BERLIN, fired) == [f"02:{m:02d}+0200" for m in range(0, 60, 10)]


def test_a_quarter_hourly_cron_keeps_its_rhythm_through_the_repeated_hour():
    start, end = local_day(BERLIN, 2027, 10, 31)
    fired = [m for m in simulate(cron("*/15 * * * *", BERLIN), start, end) if m < end]
    assert len(fired) == 25 * 4
    assert {b - a for a, b in itertools.pairwise(fired)} == {
        datetime.timedelta(minutes=15)
    }


def test_daily_type_runs_once_at_the_first_0230_on_the_fall_back_day():
    rule = Rule(scheduling.DAILY, anchor=at(BERLIN, 2027, 10, 1, 2, 30), zone=BERLIN)
    fired = simulate(rule, at(BERLIN, 2027, 10, 30, 12), at(BERLIN, 2027, 11, 1, 12))
    assert walls(BERLIN, fired) == ["02:30+0200", "02:30+0100"]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from([BERLIN, LORD_HOWE, NEW_YORK, UTC]),
    expression=st.sampled_from(
        [
            "0 * * * *",
            "*/15 * * * *",
            "30 2 * * *",
            "0 0 * * 0",
            "* * * * * */30",
            "45 1 1 * *",
        ]
    ),
    moment=st.datetimes(
        min_value=datetime.datetime(2027, 1, 1),
        max_value=datetime.datetime(2028, 12, 31),
        timezones=st.just(UTC),
    ),
)
def test_cron_next_and_last_agree_everywhere(zone, expression, moment):
    rule = cron(expression, zone)
    following = rule.next_after(moment)
    assert following is not None
    assert following > moment
    # Nothing runs strictly between `moment` and the next run.
    assert rule.last_at_or_before(following - EPSILON) == rule.last_at_or_before(moment)
    assert rule.last_at_or_before(following) == following
    previous = rule.last_at_or_before(moment)
    assert previous is not None
    assert previous <= moment
    assert rule.next_after(previous) == following


# F-03: missed runs. An every-minute schedule; no scheduler from 10:00:30 to 10:05:30.


EVERY_MINUTE = cron("* * * * *")
DOWN_FROM = at(UTC, 2027, 6, 1, 10, 0, 30)
BACK_AT = at(UTC, 2027, 6, 1, 10, 5, 30)
MISSED = [at(UTC, 2027, 6, 1, 10, m) for m in range(1, 6)]  # 10:01 ... 10:05


def test_skip_runs_only_what_is_on_time_and_waits_for_the_next_minute():
    decision = plan(
        EVERY_MINUTE, MISSED[0], BACK_AT, catch_up=scheduling.SKIP, grace=10
    )
    assert decision.fire == ()
    assert decision.next_run == at(UTC, 2027, 6, 1, 10, 6)
    assert (decision.missed_from, decision.missed_until) == (MISSED[0], BACK_AT)


def test_skip_still_runs_a_due_time_within_the_grace():
    decision = plan(
        EVERY_MINUTE, MISSED[0], BACK_AT, catch_up=scheduling.SKIP, grace=60
    )
    assert decision.fire == (MISSED[-1],)


def test_once_runs_one_run_for_the_missed_window_then_resumes():
    decision = plan(
        EVERY_MINUTE, MISSED[0], BACK_AT, catch_up=scheduling.CATCH_UP_ONCE, grace=10
    )
    assert decision.fire == (MISSED[-1],)
    assert decision.next_run == at(UTC, 2027, 6, 1, 10, 6)


def test_all_runs_every_missed_time_and_no_more():
    decision = plan(EVERY_MINUTE, MISSED[0], BACK_AT, catch_up=scheduling.ALL, grace=10)
    assert decision.fire == tuple(MISSED)
    assert decision.next_run == at(UTC, 2027, 6, 1, 10, 6)


def test_all_is_bounded_and_keeps_the_newest():
    week_later = MISSED[0] + datetime.timedelta(days=7)
    decision = plan(
        EVERY_MINUTE, MISSED[0], week_later, catch_up=scheduling.ALL, limit=100
    )
    assert len(decision.fire) == 100
    assert decision.fire[-1] == week_later
    assert decision.missed_from == MISSED[0]


def test_a_daily_report_missed_by_hours_runs_per_policy():
    rule = Rule(scheduling.DAILY, anchor=at(UTC, 2027, 6, 1, 9), zone=UTC)
    back = at(
        UTC, 2027, 6, 4, 14
    )  # three 09:00 runs missed (Django-Q sent all of them)
    due = at(UTC, 2027, 6, 2, 9)
    assert plan(rule, due, back, catch_up=scheduling.SKIP).fire == ()
    assert plan(rule, due, back, catch_up=scheduling.CATCH_UP_ONCE).fire == (
        at(UTC, 2027, 6, 4, 9),
    )
    assert len(plan(rule, due, back, catch_up=scheduling.ALL).fire) == 3
    assert plan(rule, due, back).next_run == at(UTC, 2027, 6, 5, 9)


def test_a_scheduler_that_looks_late_but_within_grace_fires_each_due_second():
    rule = cron("* * * * * *")
    decision = plan(
        rule, at(UTC, 2027, 1, 1, 0, 0, 1), at(UTC, 2027, 1, 1, 0, 0, 3, 500000)
    )
    assert decision.fire == tuple(at(UTC, 2027, 1, 1, 0, 0, s) for s in (1, 2, 3))
    assert decision.next_run == at(UTC, 2027, 1, 1, 0, 0, 4)


def test_nothing_fires_before_next_run():
    decision = plan(EVERY_MINUTE, MISSED[0], MISSED[0] - EPSILON)
    assert decision == scheduling.Plan((), MISSED[0])


def test_five_minute_outage_fires_the_documented_counts_with_a_fake_clock():
    """F-03 end to end: a scheduler looking every second, stopped for five minutes."""

    def run(catch_up):
        fired, next_run, now = [], at(UTC, 2027, 6, 1, 10), at(UTC, 2027, 6, 1, 10)
        while now <= at(UTC, 2027, 6, 1, 10, 8):
            if not DOWN_FROM <= now < BACK_AT:
                decision = plan(
                    EVERY_MINUTE, next_run, now, catch_up=catch_up, grace=10
                )
                fired.extend(decision.fire)
                next_run = decision.next_run
            now += datetime.timedelta(seconds=1)
        window = [m for m in fired if MISSED[0] <= m <= MISSED[-1]]
        return window, fired

    assert run(scheduling.SKIP)[0] == []
    assert run(scheduling.CATCH_UP_ONCE)[0] == [MISSED[-1]]
    window, fired = run(scheduling.ALL)
    assert window == MISSED
    assert len(fired) == len(set(fired))  # never a due time twice


# Bad input.


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "0 25 * * *",
            "cron '0 25 * * *' is not valid: the hour field '25' must be 0-23.",
        ),
        ("61 * * * *", "the minute field '61' must be 0-59."),
        ("* * * * 9", "the day-of-week field '9' must be 0-6 or SUN-SAT."),
        ("* * * * * 75", "the second field '75' must be 0-59."),
        ("0 0 30 2 *", "cron '0 0 30 2 *' never fires: no date matches it"),
        ("0 3 * *", "cron '0 3 * *' has 4 field(s); give 5"),
        ("0 3 * * * * 2027", "has 7 field(s)"),
        ("", "cron must be a cron expression such as '0 3 * * *', got ''."),
    ],
)
def test_invalid_cron_is_explained(expression, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        wallclock.check_cron(expression)


def test_valid_cron_forms_pass():
    for expression in (
        "0 3 * * *",
        "*/5 * * * * */10",
        "@daily",
        "0 9 * * MON-FRI",
        "0 0 L * *",
    ):
        wallclock.check_cron(expression)


def test_timing_problems_name_the_field():
    assert scheduling.timing_problems(scheduling.MINUTES, minutes=-5) == {
        "minutes": "minutes must be a positive whole number of minutes for an every-N-minutes schedule, got -5."
    }
    assert "timezone" in scheduling.timing_problems(
        scheduling.DAILY, timezone_name="Mars/Olympus"
    )
    assert scheduling.timing_problems(scheduling.DAILY, cron="0 3 * * *") == {
        "cron": "cron is only used with schedule_type 'CRON'; leave it empty for 'DAILY'."
    }
    assert scheduling.timing_problems("FORTNIGHTLY")["schedule_type"].startswith(
        "schedule_type 'FORTNIGHTLY' is not one of once, minutes,"
    )
    assert (
        scheduling.timing_problems(
            scheduling.CRON, cron="0 3 * * *", timezone_name="Europe/Berlin"
        )
        == {}
    )


def test_a_rule_refuses_a_naive_anchor():
    with pytest.raises(
        ValueError, match="must be an aware datetime, got the naive 2027-01-01T00:00:00"
    ):
        Rule(scheduling.DAILY, anchor=datetime.datetime(2027, 1, 1))


def test_unknown_zone_is_refused_with_an_example():
    with pytest.raises(
        ValueError, match="'Europe/Berlinn' is not an IANA time zone name"
    ):
        wallclock.zone("Europe/Berlinn")
