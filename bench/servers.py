"""The database servers the benchmark uses, and the throwaway databases on them.

Every database the benchmark makes is named ``dbqueue_bench_*`` and dropped at
the end of the run (and before, should an interrupted run have left one). A
system's schema is built once into a template; each workload then starts from
a fresh copy of it, so no workload sees another's rows. bench.wakeup and the
chaos runner (chaos.servers) make their throwaway databases here too, on the
servers the test suite uses (TEST_URLS).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "dbqueue_bench_"
POSTGRES_URL = os.environ.get(
    "DBQUEUE_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
MYSQL_URL = os.environ.get(
    "DBQUEUE_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql"
)
# The servers `make test` uses, by Django vendor name.
TEST_URLS = {
    "postgresql": os.environ.get(
        "DBQUEUE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "DBQUEUE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"
    ),
}


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


def server_of(vendor: str, url: str) -> Postgres | MariaDB:
    """The server `url` points at, whether or not the database it names exists yet."""
    if vendor == "postgresql":
        # PostgreSQL always has its own database to connect to; MariaDB needs none.
        return Postgres(f"{_base(url)}/postgres")
    return MariaDB(url)


class Postgres:
    vendor = "postgresql"

    def __init__(self, url: str = POSTGRES_URL) -> None:
        self.url = url

    def _admin(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def url_for(self, name: str) -> str:
        return f"{_base(self.url)}/{name}"

    def connect(self, name: str):
        import psycopg

        return psycopg.connect(self.url_for(name), autocommit=True)

    def exists(self, name: str) -> bool:
        with self._admin() as conn:
            return (
                conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                ).fetchone()
                is not None
            )

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self, name: str, template: str | None = None) -> str:
        self.drop(name)
        with self._admin() as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_leftovers(self) -> None:
        with self._admin() as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    [PREFIX.replace("_", r"\_") + "%"],
                )
            ]
        for name in names:
            if name != PREFIX + "wakeup":  # `make bench-wakeup` may be running
                self.drop(name)

    def transactions(self, name: str) -> int:
        """Committed plus rolled-back transactions in database `name` so far."""
        with self._admin() as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                [name],
            ).fetchone()
        return int(row[0])

    def version(self) -> str:
        with self._admin() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def setting(self, name: str) -> str:
        with self._admin() as conn:
            return conn.execute(f"SHOW {name}").fetchone()[0]


class MariaDB:
    """MariaDB has no template databases: a fresh copy is the template's tables emptied."""

    vendor = "mysql"

    def __init__(self, url: str = MYSQL_URL) -> None:
        self.url = url

    def _connect(self, name: str | None = None):
        import MySQLdb

        parts = urlsplit(self.url)
        kwargs = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": parts.username or "root",
            "charset": "utf8mb4",
        }
        if parts.password:
            kwargs["password"] = parts.password
        if name:
            kwargs["database"] = name
        conn = MySQLdb.connect(**kwargs)
        conn.autocommit(True)
        return conn

    def url_for(self, name: str) -> str:
        return f"{_base(self.url)}/{name}"

    def connect(self, name: str):
        return self._connect(name)

    def drop(self, name: str) -> None:
        conn = self._connect()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()

    def create(self, name: str, template: str | None = None) -> str:
        if template:
            # `template` is the same database here: empty its tables.
            conn = self._connect(name)
            cursor = conn.cursor()
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name <> 'django_migrations'",
                [name],
            )
            tables = [row[0] for row in cursor.fetchall()]
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in tables:
                cursor.execute(f"TRUNCATE TABLE `{table}`")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
            conn.close()
            return self.url_for(name)
        self.drop(name)
        conn = self._connect()
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()
        return self.url_for(name)

    def drop_leftovers(self) -> None:
        conn = self._connect()
        cursor = conn.cursor()
        cursor.execute("SHOW DATABASES LIKE %s", [PREFIX.replace("_", r"\_") + "%"])
        names = [row[0] for row in cursor.fetchall()]
        conn.close()
        for name in names:
            if name != PREFIX + "wakeup":
                self.drop(name)

    def version(self) -> str:
        conn = self._connect()
        cursor = conn.cursor()
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
        conn.close()
        return version


class SQLite:
    """Files in a temporary folder; a fresh copy is a copy of the template's file."""

    vendor = "sqlite"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX))

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.sqlite3"

    def url_for(self, name: str) -> str:
        return f"sqlite:///{self.path(name)}"

    def connect(self, name: str):
        import sqlite3

        return sqlite3.connect(self.path(name), isolation_level=None, timeout=20)

    def drop(self, name: str) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path(name)}{suffix}").unlink(missing_ok=True)

    def create(self, name: str, template: str | None = None) -> str:
        self.drop(name)
        if template:
            shutil.copyfile(self.path(template), self.path(name))
        return self.url_for(name)

    def drop_leftovers(self) -> None:
        """Nothing: each run has its own temporary folder."""

    def remove_folder(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def version(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version
