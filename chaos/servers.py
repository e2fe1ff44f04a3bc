"""The database servers the runner works on: throwaway databases, restarts, killed connections.

Everything vendor-specific in the runner is here. The server is the local one
the test suite uses; restarting it is what CI may do (it owns the machine) and
what a developer asks for explicitly (see `python -m chaos --help`). Databases
are created and dropped through bench.servers, as the benchmark's are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from django.db import connection

from bench import servers

URLS = servers.TEST_URLS
MARIADBD = "/usr/sbin/mariadbd"


def database_name(vendor: str, label: str = "run") -> str:
    return f"dbqueue_chaos_{vendor}_{label}_{os.getpid()}"


def create(vendor: str, name: str) -> None:
    """Create `name` on the server (dropping a leftover of that name), connect to it and migrate it."""
    from django.core.management import call_command

    servers.server_of(vendor, URLS[vendor]).create(name)
    connection.close()
    connection.settings_dict["NAME"] = name
    call_command("migrate", verbosity=0)


def drop(vendor: str, name: str) -> None:
    """Drop `name`, whatever holds connections to it."""
    connection.close()
    servers.server_of(vendor, URLS[vendor]).drop(name)


def kill_connections(vendor: str) -> int:
    """Kill, from the server side, every other connection to the current database; return how many."""
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        killed = 0
        for (thread_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL {int(thread_id)}")
                killed += 1
            except Exception:  # it ended by itself meanwhile
                continue
        return killed


def connection_count(vendor: str, name: str) -> int:
    """Connections open to database `name`, the runner's own included."""
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE db = %s",
                [name],
            )
        return int(cursor.fetchone()[0])


def restart(vendor: str) -> float:
    """Stop and start the local server; return the seconds it was away."""
    started = time.monotonic()
    connection.close()
    if vendor == "postgresql":
        _pg_ctlcluster("restart", check=True)
    else:
        subprocess.run(
            ["mysqladmin", "-h", "127.0.0.1", "-u", "root", "shutdown"],
            check=False,
            timeout=120,
            capture_output=True,
        )
        deadline = time.monotonic() + 60
        while _mariadbd_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        _start_mariadb()
    ensure_running(vendor)
    return time.monotonic() - started


def can_restart(vendor: str) -> bool:
    if vendor == "postgresql":
        return (
            shutil.which("pg_ctlcluster") is not None
            and Path("/etc/postgresql").is_dir()
        )
    return (
        Path(MARIADBD).exists()
        and shutil.which("start-stop-daemon") is not None
        and shutil.which("mysqladmin") is not None
    )


def is_running(vendor: str) -> bool:
    if vendor == "postgresql":
        command = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
    else:
        command = ["mysqladmin", "-h", "127.0.0.1", "-u", "root", "ping"]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


def ensure_running(vendor: str, timeout: float = 60.0) -> None:
    """Start the server if it is down, and wait until it accepts connections."""
    deadline = time.monotonic() + timeout
    started = False
    while not is_running(vendor):
        if not started:
            started = True
            if vendor == "postgresql":
                _pg_ctlcluster("start", check=False)
            elif not _mariadbd_running():
                _start_mariadb()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {vendor} server did not come back in {timeout}s")
        time.sleep(0.2)


def _pg_ctlcluster(action: str, *, check: bool) -> None:
    """`pg_ctlcluster <newest version> main <action>`, without systemd (there may be none)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=check,
        timeout=120,
        capture_output=True,
    )


def _mariadbd_running() -> bool:
    return (
        subprocess.run(
            ["pidof", "mariadbd"], capture_output=True, timeout=10
        ).returncode
        == 0
    )


def _start_mariadb() -> None:
    subprocess.run(
        [
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            MARIADBD,
        ],
        check=False,
        timeout=60,
        capture_output=True,
    )
