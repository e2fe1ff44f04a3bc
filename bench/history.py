"""dbqueue's claim cost with an empty history and with millions of finished rows.

The claim index covers QUEUED rows only, so a claim should cost the same
whatever the history; this measures it by timing claim() on the same backlog
before and after `history_rows` SUCCEEDED rows are added in bulk.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from bench import bigtable, servers
from bench.systems import System

if TYPE_CHECKING:
    from bench import runner


def claim_cost(run: runner.Runner, system: System) -> dict:
    """claim() with an empty history, then with `history_rows` finished rows."""
    server = run.server(system)
    name = f"{servers.PREFIX}history"
    url = server.create(name, template=run.templates[system.key])
    args = [
        "--count",
        str(run.plan.claim_queued),
        "--claims",
        str(run.plan.claims),
    ]
    result: dict = {"history_rows": run.plan.history_rows, "empty": [], "full": []}
    for _ in range(run.plan.runs):
        result["empty"].append(run.client(system, url, "claim-cost", *args))
    started = time.monotonic()
    insert_history(server.connect(name), run.plan.history_rows)
    result["insert_seconds"] = time.monotonic() - started
    for _ in range(run.plan.runs):
        result["full"].append(run.client(system, url, "claim-cost", *args))
    server.drop(name)
    for key in ("empty", "full"):
        result[key + "_ms"] = statistics.median(r["median_ms"] for r in result[key])
    result["ratio"] = result["full_ms"] / result["empty_ms"]
    return result


def insert_history(connection, rows: int) -> None:
    """Add `rows` SUCCEEDED copies of an existing task, as years of history would leave."""
    columns = [
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'dbqueue_task' ORDER BY ordinal_position"
        )
    ]
    overrides = {
        # Increasing ids, like dbqueue's UUIDv7, all older than the live tasks.
        "id": "('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid",
        "status": "'SUCCEEDED'",
        "locked_by": "''",
        "locked_until": "NULL",
        "unique_hold": "NULL",
        "enqueued_at": "now() - interval '30 days' + g * interval '1 millisecond'",
        "run_after": "now() - interval '30 days' + g * interval '1 millisecond'",
        "started_at": "now() - interval '30 days' + g * interval '1 millisecond'",
        "finished_at": "now() - interval '30 days' + g * interval '1 millisecond'",
    }
    template_id = connection.execute("SELECT id FROM dbqueue_task LIMIT 1").fetchone()[
        0
    ]
    connection.execute("SET synchronous_commit = off")
    chunk = 1_000_000
    for first in range(1, rows + 1, chunk):
        last = min(rows, first + chunk - 1)
        bigtable.copy_rows(
            connection, "dbqueue_task", columns, template_id, overrides, first, last
        )
        if rows > chunk:
            print(f"   {last:,} of {rows:,} finished rows", flush=True)
    connection.execute("VACUUM ANALYZE dbqueue_task")
    connection.close()
