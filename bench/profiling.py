"""Where a dbqueue worker's time goes: py-spy samples of a real drain, by phase.

The drain runs `qcluster --workers 1` on a full queue while py-spy samples
the cluster (supervisor and worker, --subprocesses) without pausing it, idle
stacks included (--idle), so time spent waiting for the database's answer
counts where it is spent. Each
sampled stack of the worker is put in the phase of its innermost known frame
(claim, decode, run, record, reports to the supervisor, ...) and, inside it,
split by layer: waiting on the database driver, Django's ORM, or the rest.
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import time

from bench import measure, systems
from bench import runner as runner_module

IDLE = "idle wait / LISTEN"
# (phase, substrings of a frame "function (path:line)"), innermost match wins;
# order matters only between frames of the same depth.
PHASES = [
    ("claim (claiming.claim)", ("claim (dbqueue/claiming/__init__.py",)),
    ("payload decode + verify", ("loads_payload (dbqueue/serialization.py",)),
    ("resolve task path", ("resolve (dbqueue/registry.py",)),
    ("task signals", ("send (dbqueue/signals.py",)),
    ("the task itself", ("noop (bench/tasks.py",)),
    ("soft-timeout alarm", ("_alarm (dbqueue/cluster/executor.py",)),
    ("store a batch of successes", ("store_successes (dbqueue/",)),
    (
        "prepare a success (result, log)",
        ("deferred_fields (dbqueue/cluster/executor.py",),
    ),
    ("log, count, signal outcomes", ("_announce (dbqueue/cluster/executor.py",)),
    ("record a failure (UPDATE)", ("record (dbqueue/cluster/executor.py",)),
    ("report to supervisor (pipe)", ("_send (dbqueue/cluster/worker.py",)),
    ("connection checks", ("refresh_connections (dbqueue/cluster/worker.py",)),
    (IDLE, ("_wait (dbqueue/cluster/worker.py",)),
    ("logging", ("logging/__init__.py",)),
    ("heartbeat", ("dbqueue/cluster/heartbeat.py",)),
]
DRIVER = ("psycopg/", "psycopg_binary", "psycopg_c", "MySQLdb/", "sqlite3/")
ORM = (
    "django/db/models/",
    "django/db/backends/",
    "django/db/transaction.py",
    "django/db/utils.py",
)


# The worker process's own frames, below the fork in the supervisor's stack.
_WORKER = "Worker.run (dbqueue/cluster/worker.py"


def _phase(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in PHASES:
            if any(needle in frame for needle in needles):
                return name
    if any("run_once (dbqueue/cluster/worker.py" in f for f in frames):
        return "worker loop, other"
    return "other"


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        if any(part in frame for part in DRIVER):
            return "driver"
        if any(part in frame for part in ORM):
            return "orm"
    return "python"


def summarise(raw: str, rate: float) -> dict:
    """Samples of the worker process by phase and layer, from py-spy's raw output."""
    by_phase: dict[str, collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    processes: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        processes[frames[0]] += int(count)
        if not any(_WORKER in frame for frame in frames):
            # The supervisor and the scheduler, whose LISTEN wait goes
            # through worker.py's wait_listening() too.
            continue
        by_phase[_phase(frames)][_layer(frames)] += int(count)
    # The worker's idle waits are the moments before and after the drain
    # (py-spy attaches early and stops late), not a cost of any task.
    idle = by_phase.pop(IDLE, collections.Counter())
    total = sum(sum(c.values()) for c in by_phase.values())
    per_task_us = 1e6 / rate if rate else 0.0
    phases = []
    for name, layers in sorted(
        by_phase.items(), key=lambda item: -sum(item[1].values())
    ):
        samples = sum(layers.values())
        share = samples / total if total else 0.0
        phases.append(
            {
                "phase": name,
                "share": share,
                "us_per_task": share * per_task_us,
                "driver": layers["driver"] / samples,
                "orm": layers["orm"] / samples,
                "python": layers["python"] / samples,
            }
        )
    return {
        "rate": rate,
        "us_per_task": per_task_us,
        "worker_samples": total,
        "idle_samples": sum(idle.values()),
        "samples_by_process": dict(processes.most_common(6)),
        "phases": phases,
    }


def _statement(sql: str) -> str:
    """A logged query, shortened to what identifies it: its verb and table."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r"\(\?(, \?)*\)", "(…)", sql)
    return sql[:110]


def statements(
    run: runner_module.Runner, system: systems.System, tasks: int = 300
) -> dict:
    """Count the SQL statements a worker sends per task, from Django's query log.

    A separate, small drain with DEBUG on (Django logs queries only then), so
    its speed means nothing; the statements are the same as in the timed runs.
    """
    log_path = runner_module.RESULTS / "profile-dbqueue-sql.log"
    log_path.unlink(missing_ok=True)
    name, url = run.fresh(system)
    run.client(system, url, "bulk", "--count", str(tasks))
    cluster = run.start(
        system, url, 1, "profile-sql", {"DBQUEUE_BENCH_SQL_LOG": str(log_path)}
    )
    try:
        run.drain(system, name, cluster)
    finally:
        cluster.stop()
    by_process: dict[str, collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    # Multi-line SQL spans lines: match each record from its "pid (seconds)" start.
    pattern = re.compile(r"^(\d+) \([\d.]+\) (.*?); args=", re.MULTILINE | re.DOTALL)
    for match in pattern.finditer(log_path.read_text(errors="replace")):
        by_process[match[1]][_statement(match[2])] += 1
    if not by_process:
        raise measure.BenchError(f"no statements were logged to {log_path}")
    # The worker is the process that sent the claims.
    worker = max(
        by_process,
        key=lambda pid: sum(
            n for s, n in by_process[pid].items() if "dbqueue_task" in s
        ),
    )
    counts = by_process[worker]
    return {
        "tasks": tasks,
        "per_task": sum(counts.values()) / tasks,
        "statements": [
            {"sql": sql, "per_task": n / tasks} for sql, n in counts.most_common(12)
        ],
        "log": str(log_path),
    }


def profile(run: runner_module.Runner, system: systems.System) -> dict:
    """Drain a full queue with one worker under py-spy; return the summary."""
    raw_path = runner_module.RESULTS / "profile-dbqueue.txt"
    svg_path = runner_module.RESULTS / "profile-dbqueue.svg"
    result = {}
    for fmt, path in (("raw", raw_path), ("flamegraph", svg_path)):
        name, url = run.fresh(system)
        run.client(system, url, "bulk", "--count", str(run.plan.tasks))
        cluster = run.start(system, url, 1, f"profile-{fmt}")
        time.sleep(0.3)  # py-spy needs the interpreter up before it attaches
        spy = subprocess.Popen(
            [
                str(systems.BIN / "py-spy"),
                "record",
                "--pid",
                str(cluster.processes[0].pid),
                "--subprocesses",
                "--idle",
                "--nonblocking",
                "--rate",
                "250",
                "--format",
                fmt,
                "-o",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            measured = run.drain(system, name, cluster)
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                err = "py-spy did not stop"
            cluster.stop()
        if spy.returncode not in (0, -signal.SIGINT) and not path.exists():
            raise measure.BenchError(f"py-spy failed: {err.strip()[-500:]}")
        if fmt == "raw":
            result = summarise(raw_path.read_text(), measured["rate"])
            result["raw"] = str(raw_path)
        else:
            result["flamegraph"] = str(svg_path)
    try:
        result["sql"] = statements(run, system)
    except Exception as exc:
        result["sql"] = {"error": str(exc)}
    return result


def describe(profile: dict) -> str:
    if "error" in profile:
        return f"profile: error: {profile['error']}"
    lines = [
        f"where a dbqueue worker's time goes (py-spy, 1 worker, {profile['rate']:,.0f} tasks/s "
        f"under the profiler = {profile['us_per_task']:,.0f} µs per task; {profile['worker_samples']:,} samples):",
        f"  {'phase':<30} {'share':>6} {'µs/task':>8}   of which: driver / ORM / Python",
    ]
    for phase in profile["phases"]:
        lines.append(
            f"  {phase['phase']:<30} {phase['share']:6.1%} {phase['us_per_task']:8.0f}   "
            f"{phase['driver']:5.0%} / {phase['orm']:4.0%} / {phase['python']:4.0%}"
        )
    lines.append(
        f"  flame graph: {profile.get('flamegraph')}; raw stacks: {profile.get('raw')}"
    )
    sql = profile.get("sql") or {}
    if "error" in sql:
        lines.append(f"  statements per task: error: {sql['error']}")
    elif sql:
        lines.append(
            f"  SQL statements the worker sends per task: {sql['per_task']:.2f} "
            f"(Django's query log, {sql['tasks']} tasks; commits are not statements here):"
        )
        for statement in sql["statements"]:
            lines.append(f"    {statement['per_task']:5.2f}  {statement['sql']}")
    return "\n".join(lines)
