"""dbqueue's URLs, for a project to mount: ``path("dbqueue/", include("dbqueue.urls"))``.

That serves the Prometheus metrics at /dbqueue/metrics (see dbqueue.views for
who may read them).
"""

from django.urls import path

from dbqueue import views

app_name = "dbqueue"

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
]
