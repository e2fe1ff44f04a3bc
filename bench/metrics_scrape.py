"""How long one Prometheus scrape of dbqueue's metrics takes on a big table: `make bench-metrics`.

Fills a throwaway PostgreSQL database with 1,000,000 task rows (most of them
finished, as on a busy production table; --queued sets the percentage still
queued, for a backlog), 100,000 dead letters and a full Counter table (20
functions x 5 queues, every event, 8 shards), then scrapes /dbqueue/metrics
through the view (dbqueue.views, called with a request from RequestFactory) --scrapes times and prints the median and worst
time, the number of queries and the slowest query. Results also go to
bench/results/metrics-queued-<n>pct.json. Nothing asserts a time: a 15-second scrape
interval wants a scrape well under a second, and the figures say if it is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from bench import bigtable

DATABASE = "dbqueue_bench_metrics"
RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--queued", type=int, default=3, help="percent of tasks queued")
    parser.add_argument("--scrapes", type=int, default=20)
    options = parser.parse_args()
    with bigtable.database(DATABASE, "bench.settings"):
        from django.test.utils import override_settings

        bigtable.fill(options.tasks, options.failed, queued=options.queued, days=7)
        _fill_counters()
        with override_settings(DBQUEUE_METRICS_TOKEN=TOKEN):
            result = _scrape(options.scrapes)
    result.update(
        tasks=options.tasks, failed=options.failed, queued_percent=options.queued
    )
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"metrics-queued-{options.queued}pct.json").write_text(
        json.dumps(result, indent=2)
    )
    return 0


def _fill_counters() -> None:
    """Every counter row there can be: each function x queue x event, all 8 shards."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO dbqueue_counter (event, func, queue, bucket, shard, count, seconds) "
            "SELECT e, f, q, b, s, 1000, 12.5 FROM unnest(%s::text[]) f, unnest(%s::text[]) q, "
            "(SELECT 'SUCCEEDED' e, generate_series(0, 6) b UNION ALL "
            "SELECT 'FAILED', generate_series(0, 6) UNION ALL "
            "SELECT unnest(ARRAY['RETRIED','DEAD_LETTERED','DISCARDED','EXPIRED','RESCUED']), -1) ev, "
            "generate_series(0, 7) s",
            [bigtable.FUNCS, bigtable.QUEUES],
        )
        cursor.execute("VACUUM ANALYZE dbqueue_counter")
        cursor.execute("SELECT count(*) FROM dbqueue_counter")
        print(f"filled {cursor.fetchone()[0]:,} counter rows", file=sys.stderr)


def _scrape(scrapes: int) -> dict[str, object]:
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from dbqueue import views

    def scrape() -> object:
        request = RequestFactory().get(
            "/dbqueue/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
        )
        return views.metrics_view(request)

    times: list[float] = []
    size, slowest = 0, (0.0, "")
    scrape()  # the first one imports prometheus_client
    for _ in range(scrapes):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = scrape()
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
        size = len(response.content)
        for query in queries.captured_queries:
            if float(query["time"]) > slowest[0]:
                slowest = (float(query["time"]), query["sql"][:160])
    return {
        "scrapes": scrapes,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "worst_ms": round(max(times) * 1000, 1),
        "queries": len(queries.captured_queries),
        "bytes": size,
        "query_ms": [
            round(float(q["time"]) * 1000, 1) for q in queries.captured_queries
        ],
        "slowest_query_ms": round(slowest[0] * 1000, 1),
        "slowest_query": slowest[1],
    }


if __name__ == "__main__":
    sys.exit(main())
