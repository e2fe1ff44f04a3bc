from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("async-signup/", views.async_signup),
    path("dbqueue/", include("dbqueue.urls")),
]
