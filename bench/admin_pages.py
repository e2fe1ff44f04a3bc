"""How fast the admin console answers on a big table: `make bench-admin`.

Fills a throwaway PostgreSQL database with 1,000,000 task rows and 100,000
dead letters (sizes from the command line), then times each list page, its
filters and searches, a detail page and the dashboard, through Django's test
client in this process: the time is the server's, from request to rendered
response, without a browser. It prints one table (median and worst of a few
requests, the number of queries, the slowest query) and writes it as JSON
to bench/results/admin.json. Nothing here asserts a time: issue 7 asks for
"well under a second", and the table says whether that holds on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import bigtable

DATABASE = "dbqueue_bench_admin"
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5, help="per page")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database for another run"
    )
    options = parser.parse_args()

    with bigtable.database(
        DATABASE, "bench.admin_settings", keep=options.keep
    ) as fresh:
        if fresh:
            from django.contrib.auth import get_user_model

            bigtable.fill(options.tasks, options.failed)
            get_user_model().objects.create_superuser("admin", "admin@example.com", "x")
        rows = _time_pages(options.requests)
    _print(rows, options)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "admin.json").write_text(
        json.dumps(
            {"tasks": options.tasks, "failed": options.failed, "pages": rows}, indent=2
        )
    )
    return 0


def _time_pages(requests: int) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from dbqueue import models

    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    some_task = models.Task.objects.filter(status="FAILED").order_by("-id").first()
    some_failed = models.FailedTask.objects.order_by("-id").first()
    if some_task is None or some_failed is None:
        raise SystemExit("the fill left no failed task or dead letter to open")
    pages = [
        ("tasks: list", "/admin/dbqueue/task/"),
        ("tasks: status=QUEUED", "/admin/dbqueue/task/?status__exact=QUEUED"),
        ("tasks: status=FAILED", "/admin/dbqueue/task/?status__exact=FAILED"),
        ("tasks: queue", "/admin/dbqueue/task/?queue=emails"),
        ("tasks: function", f"/admin/dbqueue/task/?func={bigtable.FUNCS[7]}"),
        ("tasks: enqueued 24h", "/admin/dbqueue/task/?enqueued=24h"),
        ("tasks: search id", f"/admin/dbqueue/task/?q={some_task.pk}"),
        ("tasks: search group", "/admin/dbqueue/task/?q=batch-17"),
        ("tasks: page 50", "/admin/dbqueue/task/?p=50"),
        ("task: detail", f"/admin/dbqueue/task/{some_task.pk}/change/"),
        ("dead letters: list", "/admin/dbqueue/failedtask/"),
        (
            "dead letters: exception",
            "/admin/dbqueue/failedtask/?exception=builtins.KeyError",
        ),
        (
            "dead letters: function",
            f"/admin/dbqueue/failedtask/?func={bigtable.FUNCS[3]}",
        ),
        ("dead letter: detail", f"/admin/dbqueue/failedtask/{some_failed.pk}/change/"),
        ("schedules: list", "/admin/dbqueue/schedule/"),
        ("workers", "/admin/dbqueue/worker/"),
        ("dashboard", "/admin/dbqueue/queuestate/"),
        ("dashboard: panel", "/admin/dbqueue/queuestate/panel/"),
    ]
    rows = []
    for label, url in pages:
        client.get(url)  # warm the cache, as a second visit would
        times = []
        for _ in range(requests):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
        rows.append(
            {
                "page": label,
                "url": url,
                "median_ms": statistics.median(times) * 1000,
                "max_ms": max(times) * 1000,
                "queries": len(queries.captured_queries),
                "slowest_query_ms": float(slowest["time"]) * 1000,
                "slowest_query": slowest["sql"][:200],
                "queries_ms": [
                    [float(q["time"]) * 1000, q["sql"][:300]]
                    for q in queries.captured_queries
                ],
            }
        )
    return rows


def _print(rows: list[dict[str, Any]], options: argparse.Namespace) -> None:
    print(
        f"\nAdmin pages on PostgreSQL with {options.tasks:,} tasks and "
        f"{options.failed:,} dead letters ({options.requests} requests each)\n"
    )
    print(
        f"{'page':<26} {'median ms':>10} {'max ms':>8} {'queries':>8} {'slowest q ms':>13}"
    )
    for row in rows:
        print(
            f"{row['page']:<26} {row['median_ms']:>10.1f} {row['max_ms']:>8.1f} "
            f"{row['queries']:>8} {row['slowest_query_ms']:>13.1f}"
        )
    worst = max(rows, key=lambda r: r["median_ms"])
    print(f"\nslowest page: {worst['page']} ({worst['median_ms']:.0f} ms median)")
    print(f"its slowest query: {worst['slowest_query']}")


if __name__ == "__main__":
    sys.exit(main())
