"""A cluster starting on SQLite switches the file to WAL even while another process holds a lock."""

import contextlib
import sqlite3
import threading

import pytest
from django.db import OperationalError, connection

from dbqueue.claiming import sqlite

pytestmark = [pytest.mark.vendor("sqlite"), pytest.mark.django_db]


def file_connection(path, timeout):
    """A copy of the test connection that opens its own database file."""
    copy = connection.copy()
    copy.settings_dict["NAME"] = str(path)
    copy.settings_dict["OPTIONS"] = {"timeout": timeout}
    return copy


def lock(path):
    """Open the file from a second connection and hold its write lock, as a web process might."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE IF NOT EXISTS page (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO page VALUES (1)")
    return holder


def journal_mode(path):
    # closing(): a sqlite3 connection's own `with` ends a transaction but
    # leaves the connection open, and Python 3.13 warns when one is collected.
    with contextlib.closing(sqlite3.connect(path)) as reader:
        return reader.execute("PRAGMA journal_mode").fetchone()[0]


def test_prepare_waits_for_a_writer_then_switches_to_wal(tmp_path):
    path = tmp_path / "queue.sqlite3"
    holder = lock(path)
    release = threading.Timer(0.3, holder.rollback)
    release.start()
    db = file_connection(path, timeout=5)
    try:
        sqlite.prepare(db)
    finally:
        release.join()
        holder.close()
        db.close()
    assert journal_mode(path) == "wal"


def test_prepare_gives_up_after_the_busy_timeout(tmp_path):
    path = tmp_path / "queue.sqlite3"
    holder = lock(path)
    db = file_connection(path, timeout=0.2)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            sqlite.prepare(db)
    finally:
        holder.rollback()
        holder.close()
        db.close()
    assert journal_mode(path) == "delete"
