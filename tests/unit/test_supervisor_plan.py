import signal

from dbqueue.cluster.supervisor import Exit, Kill, Slot, Spawn, plan


def test_empty_slots_are_filled():
    slots = [Slot(0), Slot(1, pid=10)]
    assert plan(slots, burst=False, stopping=False, stop_deadline=None, now=0) == [
        Spawn(0)
    ]


def test_a_dead_worker_is_replaced_outside_burst_mode():
    slots = [Slot(0, pid=None, exit_code=-9), Slot(1, pid=11)]
    assert plan(slots, burst=False, stopping=False, stop_deadline=None, now=0) == [
        Spawn(0)
    ]


def test_burst_does_not_replace_a_worker_that_drained_its_queue():
    slots = [Slot(0, done=True, exit_code=0), Slot(1, pid=11)]
    assert plan(slots, burst=True, stopping=False, stop_deadline=None, now=0) == []


def test_burst_replaces_a_worker_that_crashed():
    slots = [Slot(0, done=False, exit_code=-9), Slot(1, pid=11)]
    assert plan(slots, burst=True, stopping=False, stop_deadline=None, now=0) == [
        Spawn(0)
    ]


def test_burst_exits_when_every_worker_is_done():
    slots = [Slot(0, done=True), Slot(1, done=True)]
    assert plan(slots, burst=True, stopping=False, stop_deadline=None, now=0) == [
        Exit(0)
    ]


def test_stopping_waits_for_workers_within_grace():
    slots = [Slot(0, pid=10), Slot(1)]
    assert plan(slots, burst=False, stopping=True, stop_deadline=30, now=29.9) == []


def test_stopping_kills_workers_left_after_grace():
    slots = [Slot(0, pid=10), Slot(1), Slot(2, pid=12)]
    assert plan(slots, burst=False, stopping=True, stop_deadline=30, now=30) == [
        Kill(10, signal.SIGKILL),
        Kill(12, signal.SIGKILL),
    ]


def test_stopping_exits_zero_once_no_worker_is_left():
    assert plan(
        [Slot(0), Slot(1)], burst=False, stopping=True, stop_deadline=30, now=1
    ) == [Exit(0)]
