"""The live monitor behind `qmonitor`: qinfo's overview, redrawn until stopped.

On a terminal each frame is drawn over the last (cursor home, each line
cleared to its end, the rest of the screen cleared below), which does not
flicker the way clearing the whole screen first does. Anywhere else escape
codes would be noise in a log, so frames follow each other under a line of
dashes.

Ctrl-C and SIGTERM end it cleanly with exit status 0: the handlers only set
a flag that the wait between frames watches, so a frame is never cut in
half. A second signal while a frame is still being read (a database that
does not answer) exits at once. A database error is drawn as a frame of its
own and the monitor tries again at the next refresh, so a restart of the
database does not end it.
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from django.core.management.base import OutputWrapper
from django.db import DatabaseError, connections
from django.utils import timezone

from dbqueue import models, overview, progress

INTERVAL = 2.0  # seconds between frames
MIN_INTERVAL = 0.1  # seconds; refreshing faster only loads the database
HOME, CLEAR_LINE, CLEAR_BELOW, CLEAR_SCREEN = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[2J"
SEPARATOR = "-" * 72


class Monitor:
    """Draw the overview on `out` every `interval` seconds, `count` times or until stopped."""

    def __init__(
        self,
        out: progress.Stream | OutputWrapper,
        *,
        interval: float = INTERVAL,
        count: int | None = None,
        minutes: int = overview.RECENT_MINUTES,
        tty: bool | None = None,
        read: Callable[..., overview.Overview] = overview.read,
    ) -> None:
        self.out = out
        self.interval = interval
        self.count = count
        self.minutes = minutes
        self.tty = out.isatty() if tty is None else tty
        self.read = read
        self.stop = threading.Event()
        self.frames = 0

    def run(self) -> int:
        """Draw frames until stopped or `count` are drawn; return how many were drawn."""
        with self._stop_on_signals():
            while not self.stop.is_set():
                self.draw(self.frame())
                if self.count is not None and self.frames >= self.count:
                    break
                self.stop.wait(self.interval)
        return self.frames

    def frame(self) -> str:
        """Return the next frame's text: the overview, or why it could not be read."""
        try:
            text = overview.render(self.read(minutes=self.minutes))
        except DatabaseError as exc:
            alias = models.queue_db()
            connection = connections[alias]
            if not connection.in_atomic_block:
                with contextlib.suppress(DatabaseError):
                    connection.close()  # reconnect at the next frame
            now = timezone.now().astimezone(datetime.UTC)
            text = (
                f"dbqueue · {now:%Y-%m-%d %H:%M:%S} UTC · database {alias!r} "
                f"unreachable: {progress.first_line(exc)}\n"
                f"Trying again in {progress.duration(self.interval)}."
            )
        if self.tty:
            text += (
                f"\n\nRefreshing every {progress.duration(self.interval)}; "
                "Ctrl-C to stop."
            )
        return text

    def draw(self, text: str) -> None:
        if self.tty:
            start = HOME + (CLEAR_SCREEN if not self.frames else "")
            body = "".join(line + CLEAR_LINE + "\n" for line in text.splitlines())
            self._write(start + body + CLEAR_BELOW)
        else:
            self._write(("\n" + SEPARATOR + "\n" if self.frames else "") + text + "\n")
        self.frames += 1

    def _write(self, text: str) -> None:
        if isinstance(self.out, OutputWrapper):
            self.out.write(text, style_func=progress.plain, ending="")
        else:
            self.out.write(text)
        self.out.flush()

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """Turn SIGINT and SIGTERM into a stop request while the monitor runs."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                raise SystemExit(0)  # asked twice: the frame in progress is dropped
            self.stop.set()

        previous = {
            signum: signal.signal(signum, handler)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
