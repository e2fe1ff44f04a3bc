"""The floor: plain psycopg against a minimal queue table, no framework at all.

What a queue costs at the least on this server: one INSERT per transaction;
executemany or COPY for a batch; and a claim that locks 1 (or 50) rows with
FOR UPDATE SKIP LOCKED and marks them running, then one UPDATE that marks
them succeeded. Workers run `python -m bench.client floor drain` and exit
once the table has nothing left to claim.
"""

import json
import os
import socket

import psycopg

SCHEMA = """
CREATE TABLE floor_job (
    id bigserial PRIMARY KEY,
    queue text NOT NULL DEFAULT 'default',
    func text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'queued',
    priority smallint NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    locked_by text NOT NULL DEFAULT ''
);
CREATE INDEX floor_job_claim ON floor_job (queue, priority DESC, run_after, id)
    WHERE status = 'queued';
"""
INSERT = "INSERT INTO floor_job (func, payload) VALUES (%s, %s)"
CLAIM = """
WITH candidates AS (
    SELECT id FROM floor_job
    WHERE status = 'queued' AND queue = 'default' AND run_after <= now()
    ORDER BY priority DESC, run_after, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE floor_job AS job
SET status = 'running', started_at = now(), attempts = job.attempts + 1, locked_by = %(me)s
FROM candidates WHERE job.id = candidates.id
RETURNING job.id, job.func, job.payload
"""
COMPLETE = (
    "UPDATE floor_job SET status = 'succeeded', finished_at = now() WHERE id = ANY(%s)"
)
FUNC = "bench.tasks.noop"
PAYLOAD = json.dumps({"args": [], "kwargs": {}})

_connection = None


def setup() -> None:
    global _connection
    _connection = psycopg.connect(
        os.environ["DBQUEUE_BENCH_DATABASE_URL"], autocommit=True
    )


def create_schema() -> None:
    _connection.execute(SCHEMA)


def batch() -> int:
    return int(os.environ.get("BENCH_FLOOR_BATCH", "1"))


def enqueue_one() -> None:
    _connection.execute(INSERT, (FUNC, PAYLOAD))


def enqueue_bulk(count: int) -> None:
    """executemany in one transaction for the 1-row floor, COPY for the batch floor."""
    with _connection.transaction(), _connection.cursor() as cursor:
        if batch() == 1:
            cursor.executemany(INSERT, [(FUNC, PAYLOAD)] * count)
        else:
            with cursor.copy("COPY floor_job (func, payload) FROM STDIN") as copy:
                for _ in range(count):
                    copy.write_row((FUNC, PAYLOAD))


def drain() -> dict:
    """Claim and complete until nothing is left; the 'worker' of the floor."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    limit = batch()
    done = 0
    while True:
        rows = _connection.execute(CLAIM, {"limit": limit, "me": me}).fetchall()
        if not rows:
            return {"count": done}
        _connection.execute(COMPLETE, ([row[0] for row in rows],))
        done += len(rows)
