"""How many tasks a worker claims at once, from the durations it measured."""

from dbqueue.cluster.worker import BatchSizer


def test_the_first_claim_takes_one_task():
    assert BatchSizer(50).next() == 1


def test_short_tasks_fill_the_batch():
    sizer = BatchSizer(50, window=0.5)
    sizer.observe(0.001)
    assert sizer.next() == 50


def test_a_batch_holds_about_the_window_of_work():
    sizer = BatchSizer(50, window=0.5)
    sizer.observe(0.05)
    assert sizer.next() == 10


def test_tasks_longer_than_the_window_are_claimed_one_at_a_time():
    sizer = BatchSizer(50, window=0.5)
    sizer.observe(600.0)
    assert sizer.next() == 1


def test_the_mean_follows_a_change_of_workload():
    sizer = BatchSizer(50, window=0.5)
    sizer.observe(0.001)
    for _ in range(30):
        sizer.observe(2.0)
    assert sizer.next() == 1
    for _ in range(60):
        sizer.observe(0.001)
    assert sizer.next() == 50


def test_a_limit_below_one_still_claims_one():
    sizer = BatchSizer(0)
    sizer.observe(0.0)
    assert sizer.next() == 1
