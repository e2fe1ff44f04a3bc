"""The (status, finished_at) index holds finished tasks only.

Queued and running tasks have no finished_at, and no query of this index
wants them, yet every one of them was written into it: once when it was
enqueued and again when a worker claimed it. On PostgreSQL and SQLite the
index is now partial (WHERE finished_at IS NOT NULL). MySQL and MariaDB have
no partial indexes; there the index is dropped and built again the same.

The index is built inside the migration's transaction, which blocks writes
to the task table while it is built: seconds for a million finished tasks.
"""

from django.db import migrations, models

import dbqueue.indexes


class Migration(migrations.Migration):
    dependencies = [
        ("dbqueue", "0005_schedule_change_notify"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="dbqueue_task_finished",
        ),
        migrations.AddIndex(
            model_name="task",
            index=dbqueue.indexes.PartialIndex(
                fields=["status", "finished_at"],
                name="dbqueue_task_finished",
                where=models.Q(finished_at__isnull=False),
            ),
        ),
    ]
