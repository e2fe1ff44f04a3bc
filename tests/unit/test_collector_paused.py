"""A batch is built with the cyclic garbage collector off, and it comes back on after."""

import gc

import pytest

from dbqueue.bulk import collector_paused


@pytest.fixture
def collector_state():
    was_on = gc.isenabled()
    yield
    if was_on:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after(collector_state):
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_on_when_the_batch_raises(collector_state):
    gc.enable()
    with pytest.raises(ValueError, match="bad call"), collector_paused():
        raise ValueError("bad call")
    assert gc.isenabled()


def test_a_collector_the_project_turned_off_stays_off(collector_state):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
