"""The metrics view: GET /metrics in Prometheus' text format, for a project to mount.

Who may read it: a request carrying DBQUEUE_METRICS_TOKEN as a bearer token
(``Authorization: Bearer <token>``, how Prometheus authenticates a scrape),
or a logged-in staff user (an operator checking by hand). Anyone else gets
401 (with a token configured) or 403: the metrics name every task function
and queue, which is more than a public page should tell.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dbqueue import metrics
from dbqueue.conf import settings

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics to Prometheus or to a staff user (see the module docstring)."""
    if not _allowed(request):
        if settings.METRICS_TOKEN:
            response = HttpResponse("A bearer token is required.\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="dbqueue"'
            return response
        return HttpResponse(
            "Only staff users may read the metrics; set DBQUEUE_METRICS_TOKEN "
            "to let Prometheus in.\n",
            status=403,
        )
    try:
        body, content_type = metrics.render()
    except DatabaseError as exc:
        logger.warning("Metrics scrape failed: cannot read the database (%s).", exc)
        return HttpResponse("The queue database cannot be read.\n", status=503)
    return HttpResponse(body, content_type=content_type)


def _allowed(request: HttpRequest) -> bool:
    if metrics.is_authorized(request.headers.get("Authorization")):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)
