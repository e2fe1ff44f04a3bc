"""The client side of a workload, run in a subprocess inside one system's settings.

    python -m bench.client SYSTEM ACTION [options]

Each system's module in bench.peers sets itself up (Django or a bare
connection) and enqueues its own way; this module times it and prints one line
of JSON for the runner. Actions:

- ``single``: enqueue one task per transaction, up to --count or --seconds;
- ``bulk``: enqueue --count tasks with the system's bulk path;
- ``probes``: enqueue --count latency probes, one at a time with a random idle
  gap, and wait for each to report its start (bench.probe);
- ``drain`` (floor only) and ``claim-cost`` (dbqueue only).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import socket
import time

MODULES = {
    "dbqueue": "bench.peers.dbqueue_client",
    "floor": "bench.peers.floor",
    "djangoq": "bench.peers.djangoq.client",
    "tasksdb": "bench.peers.tasksdb.client",
    "procrastinate": "bench.peers.procrastinate_app.client",
    "pgqueuer": "bench.peers.pgq.client",
}
PROBE_TIMEOUT = 10.0  # seconds a probe may take before it counts as lost


def single(module, count: int, seconds: float) -> dict:
    for _ in range(10):  # warm up: connection, imports, prepared statements
        module.enqueue_one()
    done = 0
    started_at = time.time()
    started = time.perf_counter()
    deadline = started + seconds
    while done < count:
        module.enqueue_one()
        done += 1
        if done % 50 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - started
    return {"count": done, "seconds": elapsed, "started_at": started_at, "warmup": 10}


def bulk(module, count: int) -> dict:
    started = time.perf_counter()
    module.enqueue_bulk(count)
    return {"count": count, "seconds": time.perf_counter() - started}


def probes(module, count: int, gap_min: float, gap_max: float) -> dict:
    """Enqueue probes one at a time; return each one's enqueue-to-start latency."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        latencies, lost = [], 0
        rng = random.Random(8)
        for probe_id in range(count):
            time.sleep(rng.uniform(gap_min, gap_max))
            module.enqueue_probe(probe_id, port)
            # From the moment the enqueue call returned: the row is committed.
            enqueued = time.time()
            deadline = time.monotonic() + PROBE_TIMEOUT
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    data = sock.recv(256).decode().split()
                except TimeoutError:
                    lost += 1
                    break
                if int(data[0]) == probe_id:
                    latencies.append((float(data[1]) - enqueued) * 1000)
                    break
    return {"latencies_ms": latencies, "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(MODULES))
    parser.add_argument("action")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gap-min", type=float, default=0.02)
    parser.add_argument("--gap-max", type=float, default=0.12)
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1)
    options = parser.parse_args()
    module = importlib.import_module(MODULES[options.system])
    module.setup()
    if options.action == "single":
        result = single(module, options.count, options.seconds)
    elif options.action == "bulk":
        result = bulk(module, options.count)
    elif options.action == "probes":
        result = probes(module, options.count, options.gap_min, options.gap_max)
    elif options.action == "drain":
        result = module.drain()
    elif options.action == "schema":
        module.create_schema()
        result = {}
    elif options.action == "claim-cost":
        result = module.claim_cost(options.count, options.claims, options.batch)
    else:
        parser.error(f"unknown action {options.action!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
