from django.contrib import admin
from django.urls import path

from example_project.accounts import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("signup/", views.signup, name="signup"),
    path("signup/inline/", views.signup_inline, name="signup-inline"),
    path("tasks/<uuid:task_id>/", views.task_status, name="task-status"),
]
