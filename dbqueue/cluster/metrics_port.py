"""The cluster's own metrics endpoint: GET /metrics on DBQUEUE_METRICS_PORT.

For deployments that run qcluster without a web process next to it, or that
want the metrics off the public site. A thread of the supervisor serves one
request at a time (Prometheus scrapes every few seconds at most), reading the
database on its own connection, which it closes after each scrape so that a
fork never copies an open one. With DBQUEUE_METRICS_TOKEN set, a request must
carry it as a bearer token, as for the view.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.db import DatabaseError, connections

from dbqueue import metrics
from dbqueue.conf import settings

logger = logging.getLogger(__name__)


class MetricsPort:
    """A running metrics server; stop() shuts it down."""

    def __init__(self, server: HTTPServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start() -> MetricsPort | None:
    """Serve the metrics in a thread if DBQUEUE_METRICS_PORT is set; return the server.

    A port that cannot be bound (in use, privileged) is logged as an error
    and the cluster runs on without it: tasks matter more than their metrics.
    Raise ImproperlyConfigured without prometheus-client (system check
    dbqueue.E007 reports that before qcluster starts).
    """
    port = settings.METRICS_PORT
    if port is None:
        return None
    metrics.require_client()
    address = str(settings.METRICS_ADDRESS)
    try:
        server = HTTPServer((address, int(port)), _Handler)
    except OSError as exc:
        logger.error(
            "Cannot serve metrics on %s:%s (%s); the cluster runs without them.",
            address,
            port,
            exc,
        )
        return None
    thread = threading.Thread(
        target=server.serve_forever, name="dbqueue-metrics", daemon=True
    )
    thread.start()
    logger.info(
        "Serving metrics on http://%s:%s/metrics%s.",
        address or "0.0.0.0",  # noqa: S104 - only words in a log line
        server.server_address[1],
        " (bearer token required)" if settings.METRICS_TOKEN else "",
    )
    return MetricsPort(server, thread)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._reply(404, b"Not found; the metrics are at /metrics.\n")
            return
        if settings.METRICS_TOKEN and not metrics.is_authorized(
            self.headers.get("Authorization")
        ):
            self._reply(401, b"A bearer token is required.\n", bearer=True)
            return
        try:
            body, content_type = metrics.render()
        except DatabaseError as exc:
            logger.warning("Metrics scrape failed: cannot read the database (%s).", exc)
            self._reply(503, b"The queue database cannot be read.\n")
            return
        finally:
            connections.close_all()
        self._reply(200, body, content_type)

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        bearer: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if bearer:
            self.send_header("WWW-Authenticate", 'Bearer realm="dbqueue"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(
            "Metrics request from %s: " + format, self.client_address[0], *args
        )
