"""What the runner knows about each system: how to build its schema, start its
workers, and count the tasks still to do.

Workers are started the way each project documents: dbqueue and Django-Q2 run
one `manage.py qcluster` that forks its workers; django-tasks-db, Procrastinate,
pgqueuer and the floor are one process per worker, so "2 workers" is two
processes. Everything else is each system's default.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
MANAGE = [PYTHON, str(ROOT / "manage.py")]

# The workloads, by the key the results use.
SINGLE = "enqueue_single"
BULK = "enqueue_bulk"
DRAIN_1 = "drain_1"
DRAIN_2 = "drain_2"
CONCURRENT = "drain_concurrent"
LATENCY = "latency"
MEMORY = "memory"
IDLE = "idle"
ALL = (SINGLE, BULK, DRAIN_1, DRAIN_2, CONCURRENT, LATENCY, MEMORY, IDLE)


@dataclasses.dataclass
class System:
    key: str  # the row's key in the JSON
    label: str  # the row's name in the table
    client: str  # the system's name for bench.client
    server: str  # "postgresql", "mysql" or "sqlite"
    pending_sql: str  # tasks queued or running
    purge_sql: str  # deletes the tasks still queued after a drain that hit its deadline
    workers: Callable[[int], list[list[str]]]  # commands that start N worker processes
    workloads: tuple[str, ...] = ALL
    settings: str | None = None  # DJANGO_SETTINGS_MODULE
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    packages: tuple[str, ...] = ()  # distributions whose versions the table names
    modules: tuple[str, ...] = ()  # modules that must import for it to run
    schema: str = "migrate"  # "migrate", "floor" or "pgqueuer"
    peer: bool = True  # False for dbqueue's own rows
    workers_env: str | None = None  # variable that carries N, for a single command
    notes: str = ""

    def missing(self) -> str | None:
        """Why this system cannot run here, or None."""
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed in the benchmark environment"
        return None

    def versions(self) -> str:
        found = []
        for package in self.packages:
            try:
                found.append(f"{package} {importlib.metadata.version(package)}")
            except importlib.metadata.PackageNotFoundError:
                found.append(f"{package} (not installed)")
        return ", ".join(found)


def _repeat(command: list[str]) -> Callable[[int], list[list[str]]]:
    return lambda workers: [command] * workers


def _dbqueue_cluster(workers: int) -> list[list[str]]:
    return [[*MANAGE, "qcluster", "--workers", str(workers), "-v", "0"]]


DBQUEUE_PENDING = (
    "SELECT count(*) FROM dbqueue_task WHERE status IN ('QUEUED', 'RUNNING')"
)
DBQUEUE_PURGE = "DELETE FROM dbqueue_task WHERE status = 'QUEUED'"
FLOOR_PENDING = "SELECT count(*) FROM floor_job WHERE status IN ('queued', 'running')"
FLOOR_WORKER = [PYTHON, "-m", "bench.client", "floor", "drain"]


def dbqueue_on(server: str) -> System:
    label = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "sqlite": "SQLite"}[server]
    if server == "postgresql":
        return System(
            key="dbqueue",
            label="dbqueue",
            client="dbqueue",
            server=server,
            pending_sql=DBQUEUE_PENDING,
            purge_sql=DBQUEUE_PURGE,
            workers=_dbqueue_cluster,
            settings="bench.settings",
            packages=("dbqueue", "Django"),
            peer=False,
        )
    return System(
        key=f"dbqueue-{server}",
        label=f"dbqueue on {label}",
        client="dbqueue",
        server=server,
        pending_sql=DBQUEUE_PENDING,
        purge_sql=DBQUEUE_PURGE,
        workers=_dbqueue_cluster,
        workloads=(SINGLE, BULK, DRAIN_1) + ((DRAIN_2,) if server == "mysql" else ()),
        settings="bench.settings",
        packages=("dbqueue",),
        modules=("MySQLdb",) if server == "mysql" else (),
        peer=False,
        notes="one worker: SQLite has one writer (dbqueue.E003)"
        if server == "sqlite"
        else "",
    )


# Django turns psycopg's prepared statements off (connection poolers in
# transaction mode lose them); a project without such a pooler turns them on
# in OPTIONS. Only enqueue differs: its INSERT is the statement dbqueue sends
# with its parameters apart from the SQL.
DBQUEUE_PREPARED = dataclasses.replace(
    dbqueue_on("postgresql"),
    key="dbqueue-prepared",
    label="dbqueue, OPTIONS prepare_threshold=5",
    workloads=(SINGLE,),
    env={"DBQUEUE_BENCH_PREPARE_THRESHOLD": "5"},
    packages=("dbqueue",),
    notes="psycopg prepares a statement on its 5th run on a connection",
)


def floor(batch: int) -> System:
    if batch == 1:
        label, workloads = (
            "floor: psycopg, 1 row per transaction",
            (SINGLE, BULK, DRAIN_1, DRAIN_2),
        )
        notes = "bulk = executemany in one transaction; drain = claim 1 + complete 1 per loop"
    else:
        label, workloads = (
            f"floor: psycopg, {batch} rows per statement",
            (BULK, DRAIN_1, DRAIN_2),
        )
        notes = f"bulk = COPY; drain = claim {batch} + complete {batch} per loop"
    return System(
        key=f"floor-{batch}",
        label=label,
        client="floor",
        server="postgresql",
        pending_sql=FLOOR_PENDING,
        purge_sql="DELETE FROM floor_job WHERE status = 'queued'",
        workers=_repeat(FLOOR_WORKER),
        workloads=workloads,
        env={"BENCH_FLOOR_BATCH": str(batch)},
        packages=("psycopg",),
        schema="floor",
        peer=False,
        notes=notes,
    )


def djangoq(tuned: bool) -> System:
    return System(
        key="django-q2-tuned" if tuned else "django-q2",
        label="Django-Q2, tuned" if tuned else "Django-Q2, defaults",
        client="djangoq",
        server="postgresql",
        pending_sql="SELECT count(*) FROM django_q_ormq",
        # Rows in flight go too; their acknowledgement then deletes nothing.
        purge_sql="DELETE FROM django_q_ormq",
        workers=lambda workers: [[*MANAGE, "qcluster"]],
        settings="bench.peers.djangoq.settings",
        env={"BENCH_DJANGOQ_TUNED": "1" if tuned else "0"},
        workers_env="BENCH_WORKERS",
        packages=("django-q2",),
        modules=("django_q",),
        notes=(
            "ORM broker; persistent connections, bulk=50, queue_limit=100, save_limit=0"
            if tuned
            else "ORM broker; CONN_MAX_AGE=0, poll 0.2 s, bulk 1, save_limit 250"
        ),
    )


TASKSDB = System(
    key="django-tasks-db",
    label="django-tasks-db",
    client="tasksdb",
    server="postgresql",
    pending_sql=(
        "SELECT count(*) FROM django_tasks_database_dbtaskresult "
        "WHERE status IN ('READY', 'RUNNING')"
    ),
    purge_sql="DELETE FROM django_tasks_database_dbtaskresult WHERE status = 'READY'",
    workers=_repeat([*MANAGE, "db_worker"]),
    settings="bench.peers.tasksdb.settings",
    packages=("django-tasks-db", "django-tasks"),
    modules=("django_tasks_db",),
    notes="persistent connections; db_worker polls every 1 s (its default)",
)
PROCRASTINATE = System(
    key="procrastinate",
    label="Procrastinate",
    client="procrastinate",
    server="postgresql",
    pending_sql="SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')",
    purge_sql="UPDATE procrastinate_jobs SET status = 'cancelled' WHERE status = 'todo'",
    workers=_repeat([*MANAGE, "procrastinate", "worker"]),
    settings="bench.peers.procrastinate_app.settings",
    packages=("procrastinate",),
    modules=("procrastinate",),
    notes="Django integration; worker concurrency 1, LISTEN/NOTIFY (its defaults)",
)
PGQUEUER = System(
    key="pgqueuer",
    label="pgqueuer",
    client="pgqueuer",
    server="postgresql",
    pending_sql="SELECT count(*) FROM pgqueuer",
    purge_sql="DELETE FROM pgqueuer WHERE status = 'queued'",
    workers=_repeat([PYTHON, "-m", "bench.peers.pgq.worker"]),
    packages=("pgqueuer", "asyncpg"),
    modules=("pgqueuer", "asyncpg"),
    schema="pgqueuer",
    notes="asyncio (uvloop) + asyncpg, pgqueuer.run() with `pgq run`'s defaults: claims 10 at a time; enqueue through its sync psycopg driver",
)


def full() -> list[System]:
    """Every system, dbqueue first: the order of the table."""
    return [
        dbqueue_on("postgresql"),
        DBQUEUE_PREPARED,
        floor(1),
        floor(50),
        djangoq(tuned=False),
        djangoq(tuned=True),
        TASKSDB,
        PROCRASTINATE,
        PGQUEUER,
        dbqueue_on("mysql"),
        dbqueue_on("sqlite"),
    ]


def short() -> list[System]:
    """The CI form: dbqueue and the floor."""
    return [
        dbqueue_on("postgresql"),
        DBQUEUE_PREPARED,
        floor(1),
        floor(50),
        dbqueue_on("sqlite"),
    ]
