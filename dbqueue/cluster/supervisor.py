"""The qcluster supervisor: forks the workers, watches them, stops them.

Decisions live in ``plan.plan()``, a pure function of the cluster's state
and the time, so they are tested without forking. ``Supervisor.run()`` is the thin
loop around it: read what the children report through their pipes, reap the
ones that exited, ask the plan what to do, then fork, kill, heartbeat or exit.

Workers share nothing but the database and a private pipe each: a child that
dies holds no lock or queue the others need, so one crash never stalls the
rest, and its tasks are released at once with the reason it died.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import secrets
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from dbqueue import claiming, exceptions, models, registry
from dbqueue.cluster import heartbeat, metrics_port, shutdown
from dbqueue.cluster.plan import Beat, Exit, Kill, Slot, Spawn, next_wake, plan
from dbqueue.cluster.worker import EXIT_DONE, EXIT_RECYCLE, PipeReporter, Worker
from dbqueue.conf import settings

logger = logging.getLogger(__name__)

QUICK_CRASH = (
    5.0  # seconds; a child dying sooner after its start is restarted with a backoff
)
RESTART_BACKOFF_MAX = 30.0  # seconds
# Registry rows of dead clusters are cleared at every this many heartbeats
# (they are removed only once unseen for many leases: no hurry).
FORGET_STALE_EVERY = 12
# While workers report, their pipes are read this often rather than at every
# line. A worker writes two lines per task, and waking the supervisor for each
# cost more CPU than a short task itself: in a one-worker drain of no-op
# tasks, 34 µs of the supervisor's per task and about 55 µs of the worker's,
# against 5 µs of the supervisor's and no measurable cost to the worker when
# read in batches. A timed task's clock starts when its line is read, so a
# timeout kill comes up to this much later.
REPORT_INTERVAL = 0.02  # seconds


class Supervisor:
    """Forks `workers` worker processes and keeps them running until stopped."""

    def __init__(
        self,
        *,
        workers: int,
        queues: Sequence[str] | None = None,
        burst: bool = False,
        max_tasks: int | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        scheduler: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = (
            f"{socket.gethostname()[:60]}:{os.getpid()}:cluster:{secrets.token_hex(3)}"
        )
        self.slots = [Slot(index) for index in range(workers)]
        if scheduler and not burst:
            # One scheduler per cluster; every cluster may run one, since
            # each due time fires once however many schedulers look at it.
            self.slots.append(Slot(workers, role=models.Role.SCHEDULER))
        self.queues = list(queues) if queues is not None else list(settings.QUEUES)
        self.burst = burst
        self.max_tasks = max_tasks
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.clock = clock
        self.stopping = False
        self.forced = False
        self.stop_deadline: float | None = None
        self.next_beat = 0.0
        self._db_down = False
        self._rescue_after = 0.0  # no rescue before this clock time (after an outage)
        self._beats = 0
        # Each worker's (tasks done, task running) at the last beat.
        self._last_activity: dict[str | None, tuple[int, str | None]] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._reports_flowing = False  # the last read found lines: see _sleep()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    def run(self) -> int:
        """Run the cluster until it is stopped or, in burst mode, drained; return the exit code."""
        claiming.prepare()
        signal.set_wakeup_fd(self._wake_w)
        shutdown.on_stop(
            self.request_stop, (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
        )
        signal.signal(
            signal.SIGCHLD, lambda signum, frame: None
        )  # wakes select via the wakeup fd
        workers = sum(1 for slot in self.slots if slot.role == models.Role.WORKER)
        logger.info(
            "Cluster %s starting %s workers%s; queues=%s%s",
            self.id,
            workers,
            " and a scheduler" if len(self.slots) > workers else "",
            ",".join(self.queues),
            " (burst)" if self.burst else "",
        )
        self._database(lambda: heartbeat.register(self.id, self._member_self()))
        port = metrics_port.start()
        share_before_fork()
        try:
            return self._loop()
        finally:
            if port is not None:
                port.stop()
            self._database(lambda: heartbeat.unregister([self.id]))
            connections.close_all()
            signal.set_wakeup_fd(-1)

    def _loop(self) -> int:
        kill_after = float(settings.TIMEOUT_KILL_AFTER)
        while True:
            self._read_reports()
            self._reap()
            now = self.clock()
            for action in plan(
                self.slots,
                now=now,
                burst=self.burst,
                stopping=self.stopping,
                forced=self.forced,
                stop_deadline=self.stop_deadline,
                next_beat=self.next_beat,
                kill_after=kill_after,
            ):
                if isinstance(action, Exit):
                    logger.info("Cluster %s stopped.", self.id)
                    return action.code
                if isinstance(action, Spawn):
                    self._spawn(self.slots[action.slot])
                elif isinstance(action, Kill):
                    self._kill(self.slots[action.slot], action.reason)
                elif isinstance(action, Beat):
                    self._beat()
            self._sleep(
                next_wake(
                    self.slots,
                    now=self.clock(),
                    next_beat=self.next_beat,
                    stop_deadline=self.stop_deadline,
                    kill_after=kill_after,
                )
            )

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """First signal: stop claiming and let running tasks finish. Second (or SIGQUIT): stop now."""
        running = sum(1 for slot in self.slots if slot.task_id is not None)
        if self.stopping or signum == signal.SIGQUIT:
            if not self.forced:
                logger.warning(
                    "Received %s again; stopping now and putting %s running tasks back in the queue.",
                    signal.Signals(signum).name,
                    running,
                )
            self.forced = True
        else:
            grace = float(settings.SHUTDOWN_GRACE)
            logger.info(
                "Received %s; finishing %s running tasks (up to %.0fs). Send again to stop now.",
                signal.Signals(signum).name,
                running,
                grace,
            )
        if not self.stopping:
            self.stopping = True
            self.stop_deadline = self.clock() + float(settings.SHUTDOWN_GRACE)
            for slot in self.slots:
                if slot.pid is not None:
                    self._signal(slot.pid, signal.SIGTERM)

    def _spawn(self, slot: Slot) -> None:
        suffix = secrets.token_hex(3)
        read_fd, write_fd = os.pipe()
        # A forked child must not share the parent's database sockets.
        connections.close_all()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            os._exit(self._child_main(slot, suffix, write_fd))
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        slot.pid, slot.pipe, slot.buffer = pid, read_fd, b""
        slot.worker_id = _process_id(pid, slot.role, suffix)
        slot.started, slot.kill_reason, slot.exit_code = self.clock(), None, None
        slot.task_id = slot.task_started = slot.task_started_at = slot.task_timeout = (
            None
        )
        slot.tasks_done = 0
        slot.unstored = set()
        logger.debug("Started worker pid=%s in slot %s.", pid, slot.index)
        self._database(lambda: heartbeat.register(self.id, self._member(slot)))

    def _child_main(self, slot: Slot, suffix: str, write_fd: int) -> int:
        code = 1
        try:
            shutdown.restore_defaults()
            shutdown.die_with_parent()
            for fd in [
                self._wake_r,
                self._wake_w,
                *(s.pipe for s in self.slots if s.pipe is not None),
            ]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            process_id = _process_id(os.getpid(), slot.role, suffix)
            if slot.role == models.Role.SCHEDULER:
                from dbqueue.cluster.scheduler import Scheduler

                scheduler = Scheduler(scheduler_id=process_id)
                shutdown.on_stop(scheduler.stop)
                return scheduler.run()
            worker = Worker(
                worker_id=process_id,
                queues=self.queues,
                batch_size=self.batch_size,
                poll_interval=self.poll_interval,
                max_tasks=self.max_tasks,
            )
            worker.reporter = PipeReporter(write_fd, on_lost=worker.stop)
            shutdown.on_stop(worker.stop)
            code = worker.run(burst=self.burst)
        except BaseException:
            logger.exception("Worker process pid=%s crashed.", os.getpid())
        finally:
            connections.close_all()
        return code

    def _kill(self, slot: Slot, reason: str) -> None:
        if slot.pid is None:
            return
        slot.kill_reason = reason
        if reason == "timeout":
            logger.error(
                "Task id=%s ran past its timeout of %ss; killing worker pid=%s.",
                slot.task_id,
                slot.task_timeout,
                slot.pid,
            )
        else:
            logger.warning(
                "Stopping now; killing worker pid=%s (task id=%s).",
                slot.pid,
                slot.task_id,
            )
        self._signal(slot.pid, signal.SIGKILL)

    def _read_reports(self) -> None:
        for slot in self.slots:
            if slot.pipe is None:
                continue
            try:
                data = os.read(slot.pipe, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            slot.buffer += data
            self._reports_flowing = self._reports_flowing or bool(data)
            *lines, slot.buffer = slot.buffer.split(b"\n")
            for line in lines:
                self._on_report(slot, line.decode(errors="replace").split())

    def _on_report(self, slot: Slot, words: list[str]) -> None:
        if len(words) != 3:
            return
        # "started <id> <timeout or 0>", "finished <id> <1 if stored, else 0>",
        # "stored <id> 0" (see worker.PipeReporter).
        event, task_id, value = words
        if event == "started":
            slot.task_id, slot.task_started, slot.task_started_at = (
                task_id,
                self.clock(),
                timezone.now(),
            )
            slot.task_timeout = float(value) or None
        elif event == "finished":
            slot.task_id = slot.task_started = slot.task_started_at = (
                slot.task_timeout
            ) = None
            slot.tasks_done += 1
            if value == "0":  # the outcome waits to be stored with others
                slot.unstored.add(task_id)
        elif event == "stored":
            slot.unstored.discard(task_id)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots:
                if slot.pid == pid:
                    self._read_reports()  # the child's last words, if any
                    self._on_exit(slot, os.waitstatus_to_exitcode(status))
                    break

    def _on_exit(self, slot: Slot, code: int) -> None:
        pid, worker_id, reason = slot.pid, slot.worker_id, slot.kill_reason
        running, unstored = slot.task_id, slot.unstored
        if slot.pipe is not None:
            os.close(slot.pipe)
        slot.pid, slot.pipe, slot.exit_code = None, None, code
        released = 0
        if reason == "timeout":
            error: exceptions.DbqueueError = exceptions.TaskTimeout(
                f"The task ran past its timeout of {slot.task_timeout:g}s; worker pid {pid} was killed."
            )
            released = (
                self._database(
                    lambda: heartbeat.release(
                        worker_id,
                        error,
                        kind="timeout",
                        running=running,
                        unstored=unstored,
                    )
                )
                or 0
            )
        elif reason == "shutdown":
            error = exceptions.ShutdownInterrupted(
                f"Cluster stopped before the task finished; worker pid {pid} was killed."
            )
            released = (
                self._database(
                    lambda: heartbeat.release(
                        worker_id,
                        error,
                        kind="interrupted",
                        running=running,
                        unstored=unstored,
                    )
                )
                or 0
            )
        elif code not in (EXIT_DONE, EXIT_RECYCLE):
            error = exceptions.WorkerLost(
                f"Worker process died: pid {pid} on host {socket.gethostname()} exited with {_describe(code)}."
            )
            released = (
                self._database(
                    lambda: heartbeat.release(
                        worker_id,
                        error,
                        kind="died",
                        running=running,
                        unstored=unstored,
                    )
                )
                or 0
            )
            if not self.stopping:
                logger.error(
                    "Worker pid=%s exited with %s; %s task(s) released; replacing it.",
                    pid,
                    _describe(code),
                    released,
                )
        self._database(lambda: heartbeat.unregister([worker_id]))
        slot.task_id = slot.task_started = slot.task_started_at = slot.task_timeout = (
            None
        )
        slot.done = self.burst and code == EXIT_DONE
        crashed = reason is None and code not in (EXIT_DONE, EXIT_RECYCLE)
        if crashed and self.clock() - slot.started < QUICK_CRASH:
            slot.quick_crashes += 1
            delay = min(RESTART_BACKOFF_MAX, 0.5 * 2**slot.quick_crashes)
            slot.restart_at = self.clock() + delay
            logger.error(
                "Worker slot %s keeps crashing at start; next restart in %.1fs.",
                slot.index,
                delay,
            )
        else:
            slot.quick_crashes = 0

    def _beat(self) -> None:
        self.next_beat = self.clock() + float(settings.HEARTBEAT_INTERVAL)
        members = [
            self._member_self(),
            *(self._member(s) for s in self.slots if s.pid is not None),
        ]
        alive = [s.worker_id for s in self.slots if s.pid is not None and s.worker_id]
        # Leases need renewing only if a worker may hold a task: it runs one
        # now, or started or finished one since the last beat (the rest of
        # its batch). An idle cluster's beat is then one transaction.
        activity: dict[str | None, tuple[int, str | None]] = {
            s.worker_id: (s.tasks_done, s.task_id) for s in self.slots
        }
        renew = activity != self._last_activity or any(
            s.task_id or s.unstored for s in self.slots
        )
        self._beats += 1

        def work() -> None:
            with transaction.atomic(using=models.queue_db()):
                # No `now` given: the lease counts from after the registry
                # UPDATE, which may have waited for a lock (heartbeat.beat).
                heartbeat.beat(self.id, members, renew=renew)
                now = timezone.now()
                if self._db_down or self.clock() < self._rescue_after:
                    # Back from an outage: every cluster's leases ran on while
                    # no one could renew them. The others may not be back yet;
                    # give them a lease to renew theirs before taking their
                    # tasks, or their live workers would run those tasks twice.
                    return
                expired = heartbeat.expired(now, alive=alive)
            self._last_activity = activity
            heartbeat.rescue(expired, now)
            if self._beats % FORGET_STALE_EVERY == 0:
                heartbeat.forget_stale()

        self._database(work)

    def _database(self, work: Callable[[], int | None]) -> int | None:
        """Run a piece of the supervisor's database work; a database outage is logged, not fatal.

        While the database is away, leases are not renewed; they last
        DBQUEUE_LEASE seconds, so a short outage costs nothing.
        """
        try:
            result = work()
        except DatabaseError as exc:
            if not self._db_down:
                logger.warning(
                    "Cluster %s cannot reach the database (%s); retrying at each heartbeat.",
                    self.id,
                    exc,
                )
            self._db_down = True
            connections.close_all()
            return None
        if self._db_down:
            logger.info("Cluster %s reached the database again.", self.id)
            self._db_down = False
            self._rescue_after = self.clock() + float(settings.LEASE)
        return result

    def _member_self(self) -> heartbeat.Member:
        return heartbeat.Member(
            self.id, models.Role.SUPERVISOR, os.getpid(), self.queues
        )

    def _member(self, slot: Slot) -> heartbeat.Member:
        return heartbeat.Member(
            slot.worker_id,
            slot.role,
            slot.pid or 0,
            self.queues,
            current_task_id=slot.task_id,
            current_task_started_at=slot.task_started_at,
            tasks_done=slot.tasks_done,
        )

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds` at most, waking for a signal, a child's exit or (when quiet) a report."""
        fds = [self._wake_r, *(s.pipe for s in self.slots if s.pipe is not None)]
        if self._reports_flowing:
            # Let the lines gather: the next read takes them all at once.
            # Signals, SIGCHLD included, still wake the loop at once.
            self._reports_flowing = False
            fds, seconds = [self._wake_r], min(seconds, REPORT_INTERVAL)
        with contextlib.suppress(InterruptedError):
            select.select(fds, [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def share_before_fork() -> None:
    """Load what every child needs, then keep the garbage collector off those pages.

    A forked child shares the supervisor's memory until it writes to it.
    Task modules and the scheduler imported here are shared by all the
    children, where each would otherwise import its own copy. And
    gc.freeze() moves everything alive now out of the collector's reach:
    a collection in a child would otherwise write to every object it
    visits and so copy the pages they live on.
    """
    from dbqueue.cluster import scheduler  # noqa: F401  (the scheduler child's code)

    registry.import_all()
    gc.collect()
    gc.freeze()


def _process_id(pid: int, role: str, suffix: str) -> str:
    """The id a child goes by (host:pid:role:suffix); the supervisor and the child both derive it."""
    return f"{socket.gethostname()[:60]}:{pid}:{role.lower()}:{suffix}"


def _describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
