"""django-tasks-db: the database backend of Django's Tasks framework (django_tasks backport)."""
