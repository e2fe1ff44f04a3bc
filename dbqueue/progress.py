"""Progress a person can see while a long operation works through its batches.

On a terminal, one line is rewritten in place (a carriage return, no
newline) after each batch, at most ten times a second: ``Deleting queued tasks: 4,000/10,000 (40%),
2,150/s, 3s left``. Anywhere else (a cron job's mail, a CI log, a pipe), a
carriage return would garble the output, so full lines are written instead,
at most one every LINE_INTERVAL seconds, so that a million rows pruned in
batches of a thousand do not make a thousand lines.

Commands write progress to stderr and their summary to stdout, as git and
curl do: a script that reads the summary is not disturbed by the counter.
Nothing is shown at verbosity 0.

The operations commands and probes also share its small text helpers: a
span of time (duration), an error (first_line), unstyled output (plain).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from django.core.management.base import OutputWrapper

LINE_INTERVAL = 2.0  # seconds between progress lines when not on a terminal
REDRAW_INTERVAL = 0.1  # seconds between redraws of the counter on a terminal


class Stream(Protocol):
    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...

    def isatty(self) -> bool: ...


class Progress:
    """Count the items a long operation has handled and show it on `stream`."""

    def __init__(
        self,
        stream: Stream | OutputWrapper,
        label: str,
        *,
        total: int | None = None,
        verbosity: int = 1,
        tty: bool | None = None,
        line_interval: float = LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = verbosity >= 1
        self.tty = stream.isatty() if tty is None else tty
        self.line_interval = line_interval
        self.clock = clock
        self.started = clock()
        self._last_shown: float | None = None
        self._shown = True  # the last update is on screen
        self._width = 0  # of the line on screen, to blank what a shorter one leaves

    def update(self, done: int) -> None:
        """Record that `done` items in all are handled, and show it if it is time."""
        self.done = done
        if not self.enabled:
            return
        now = self.clock()
        interval = REDRAW_INTERVAL if self.tty else self.line_interval
        if self._last_shown is not None and now - self._last_shown < interval:
            self._shown = False
            return
        self._show(now)

    def _show(self, now: float) -> None:
        self._last_shown, self._shown = now, True
        text = self.describe()
        if self.tty:
            padding = " " * max(self._width - len(text), 0)
            self._write(f"\r{text}{padding}")
            self._width = len(text)
        else:
            self._write(text + "\n")

    def advance(self, count: int) -> None:
        """Record `count` more handled items."""
        self.update(self.done + count)

    def finish(self) -> None:
        """Show the final count if it is not on screen yet, and end the counter's line."""
        if not self.enabled or self._last_shown is None:
            return
        if not self._shown:
            self._show(self.clock())
        if self.tty:
            self._write("\n")
        self._last_shown = None

    def describe(self) -> str:
        """Say how far the operation has got, its rate and, with a total, the time left."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            shown = min(self.done, self.total)
            text = f"{self.label}: {shown:,}/{self.total:,} ({shown / self.total:.0%})"
        else:
            text = f"{self.label}: {self.done:,}"
        if self.done and elapsed >= 0.5:
            text += f", {rate:,.0f}/s"
            if self.total and self.done < self.total:
                text += f", {duration((self.total - self.done) / rate)} left"
        return text

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            # Unstyled: Django paints all of stderr red on a terminal.
            self.stream.write(text, style_func=plain, ending="")
        else:
            self.stream.write(text)
        self.stream.flush()


def plain(text: str) -> str:
    """Leave `text` as it is (a style_func for Django's OutputWrapper)."""
    return text


def first_line(exc: BaseException) -> str:
    """Say an error in one line: its message's first line, or its class when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def duration(seconds: float) -> str:
    """Say a span of time briefly: 0.4s, 12s, 3m05s, 2h10m, 3d04h."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
