from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DbqueueConfig(AppConfig):
    name = "dbqueue"
    verbose_name = _("Task queue")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dbqueue import checks  # noqa: F401 - registers the system checks
