"""The progress counter: in place on a terminal, throttled lines elsewhere, silent at -v0."""

import io

import pytest
from django.core.management.base import OutputWrapper

from dbqueue import progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_rewritten_in_place():
    out, clock = io.StringIO(), Clock()
    bar = progress.Progress(out, "Deleting", total=4, tty=True, clock=clock)
    for done in (1, 2, 4):
        clock.now += 1
        bar.update(done)
    bar.finish()
    text = out.getvalue()
    assert "\n" not in text[:-1]
    assert text.endswith("\n")
    frames = text.rstrip("\n").split("\r")[1:]
    assert [frame.rstrip() for frame in frames] == [
        "Deleting: 1/4 (25%), 1/s, 3.0s left",
        "Deleting: 2/4 (50%), 1/s, 2.0s left",
        "Deleting: 4/4 (100%), 1/s",
    ]


def test_a_shorter_line_blanks_what_the_longer_one_left():
    out, clock = io.StringIO(), Clock()
    bar = progress.Progress(out, "Replaying", tty=True, clock=clock)
    clock.now += 1
    bar.update(1_000_000)
    clock.now += 1000
    bar.update(1_000_001)
    first, second = out.getvalue().split("\r")[1:]
    assert len(second) >= len(first)


def test_a_terminal_is_redrawn_at_most_ten_times_a_second_but_ends_on_the_total():
    out, clock = io.StringIO(), Clock()
    bar = progress.Progress(out, "Pruning", total=100, tty=True, clock=clock)
    for done in range(1, 101):
        clock.now += 0.001
        bar.update(done)
    assert out.getvalue().count("\r") == 1
    bar.finish()
    assert out.getvalue().count("\r") == 2
    assert "Pruning: 100/100 (100%)" in out.getvalue()


def test_elsewhere_full_lines_come_at_most_every_line_interval():
    out, clock = io.StringIO(), Clock()
    bar = progress.Progress(out, "Pruning", total=10, tty=False, clock=clock)
    for done in range(1, 11):
        clock.now += 0.5
        bar.update(done)
    bar.finish()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # At 1 (the first), 5 and 9 (two seconds apart), and 10 by finish().
    assert [line.split(":")[1].split("(")[0].strip() for line in lines] == [
        "1/10",
        "5/10",
        "9/10",
        "10/10",
    ]


def test_verbosity_0_shows_nothing():
    out = io.StringIO()
    bar = progress.Progress(out, "Pruning", total=3, verbosity=0, tty=True)
    bar.update(1)
    bar.advance(2)
    bar.finish()
    assert out.getvalue() == ""
    assert bar.done == 3


def test_an_unused_counter_finishes_silently():
    out = io.StringIO()
    progress.Progress(out, "Pruning", tty=True).finish()
    assert out.getvalue() == ""


def test_django_stderr_is_written_unstyled_and_without_a_newline():
    raw = io.StringIO()
    stderr = OutputWrapper(raw)
    stderr.style_func = lambda text: f"<red>{text}</red>"
    bar = progress.Progress(stderr, "Deleting", total=2, tty=True)
    bar.update(1)
    assert raw.getvalue() == "\rDeleting: 1/2 (50%)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0s"),
        (9.96, "10.0s"),
        (12, "12s"),
        (185, "3m05s"),
        (7800, "2h10m"),
        (3 * 86400 + 4 * 3600, "3d04h"),
    ],
)
def test_durations_read_briefly(seconds, text):
    assert progress.duration(seconds) == text
