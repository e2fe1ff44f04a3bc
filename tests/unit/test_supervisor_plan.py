"""Supervisor decisions as a pure function: no fork, no clock."""

from dbqueue.cluster.plan import Beat, Exit, Kill, Slot, Spawn, next_wake, plan


def test_empty_slots_are_filled():
    slots = [Slot(0), Slot(1, pid=10)]
    assert plan(slots, now=0) == [Spawn(0)]


def test_a_dead_worker_is_replaced_outside_burst_mode():
    slots = [Slot(0, pid=None, exit_code=-9), Slot(1, pid=11)]
    assert plan(slots, now=0) == [Spawn(0)]


def test_a_worker_that_keeps_crashing_is_restarted_after_its_backoff():
    slots = [Slot(0, restart_at=5.0), Slot(1, pid=11)]
    assert plan(slots, now=4.9) == []
    assert plan(slots, now=5.0) == [Spawn(0)]


def test_burst_does_not_replace_a_worker_that_drained_its_queue():
    slots = [Slot(0, done=True, exit_code=0), Slot(1, pid=11)]
    assert plan(slots, now=0, burst=True) == []


def test_burst_replaces_a_worker_that_crashed():
    slots = [Slot(0, done=False, exit_code=-9), Slot(1, pid=11)]
    assert plan(slots, now=0, burst=True) == [Spawn(0)]


def test_burst_exits_when_every_worker_is_done():
    assert plan([Slot(0, done=True), Slot(1, done=True)], now=0, burst=True) == [
        Exit(0)
    ]


def test_heartbeat_when_due():
    slots = [Slot(0, pid=10)]
    assert plan(slots, now=9.9, next_beat=10) == []
    assert plan(slots, now=10, next_beat=10) == [Beat()]


def test_a_task_past_its_timeout_and_the_kill_delay_gets_its_worker_killed():
    slot = Slot(0, pid=10, task_id="t", task_started=100.0, task_timeout=2.0)
    assert plan([slot], now=102.9, kill_after=1.0) == []
    assert plan([slot], now=103.0, kill_after=1.0) == [Kill(0, "timeout")]
    slot.kill_reason = "timeout"
    assert plan([slot], now=104.0, kill_after=1.0) == []


def test_a_task_without_timeout_is_never_killed():
    slot = Slot(0, pid=10, task_id="t", task_started=0.0, task_timeout=None)
    assert plan([slot], now=1e9) == []


def test_stopping_waits_for_workers_within_grace():
    slots = [Slot(0, pid=10), Slot(1)]
    assert plan(slots, now=29.9, stopping=True, stop_deadline=30) == []


def test_stopping_kills_workers_left_after_grace():
    slots = [Slot(0, pid=10), Slot(1), Slot(2, pid=12)]
    assert plan(slots, now=30, stopping=True, stop_deadline=30) == [
        Kill(0, "shutdown"),
        Kill(2, "shutdown"),
    ]


def test_a_second_signal_kills_at_once():
    slots = [Slot(0, pid=10), Slot(1, pid=11, kill_reason="shutdown")]
    assert plan(slots, now=1, stopping=True, forced=True, stop_deadline=30) == [
        Kill(0, "shutdown")
    ]


def test_stopping_does_not_refill_slots():
    assert (
        plan([Slot(0), Slot(1, pid=11)], now=1, stopping=True, stop_deadline=30) == []
    )


def test_stopping_exits_zero_once_no_worker_is_left():
    assert plan([Slot(0), Slot(1)], now=1, stopping=True, stop_deadline=30) == [Exit(0)]


def test_next_wake_is_the_nearest_deadline():
    slots = [
        Slot(0, pid=10, task_started=100.0, task_timeout=2.0),
        Slot(1, restart_at=101.5),
    ]
    assert (
        next_wake(slots, now=100.0, next_beat=105.0, stop_deadline=None, kill_after=1.0)
        == 1.0
    )
    assert (
        next_wake(slots, now=101.0, next_beat=105.0, stop_deadline=None, kill_after=1.0)
        == 0.5
    )
    assert (
        next_wake(slots, now=104.0, next_beat=104.2, stop_deadline=None, kill_after=1.0)
        == 0.0
    )
