"""The database's own account of an index and of a statement's plan, for the index tests.

Each index test captures a statement from the code that sends it and asks
the database how it would run it. On PostgreSQL sequential scans are
turned off first: the plan then shows whether an index can serve the
statement at all, whatever a small test table's costs say.
"""

from django.db import connection


def explain(sql: str, params=None) -> str:
    """The plan PostgreSQL (EXPLAIN) or SQLite (EXPLAIN QUERY PLAN) gives `sql`, as text."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(" ".join(map(str, row)) for row in cursor.fetchall())


def index_definition(name: str) -> str:
    """The CREATE INDEX statement the database holds for `name` (PostgreSQL, SQLite)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_indexdef(%s::regclass)", [name])
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
        return cursor.fetchone()[0]
