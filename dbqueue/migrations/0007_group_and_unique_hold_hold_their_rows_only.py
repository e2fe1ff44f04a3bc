"""The group index and the unique_hold constraint hold only the tasks they are for.

Most tasks have no group and hold no unique key, yet each one had an entry
in both, written again every time a worker claimed or finished it (a
PostgreSQL UPDATE that changes an indexed column writes a new entry to
every index of the table). On PostgreSQL and SQLite the group index is now
partial (WHERE "group" <> '') and unique_hold is unique among its non-NULL
values, which is the same rule, as NULLs never collide. MySQL and MariaDB
have no partial indexes; there both are dropped and built again the same.

Each is built inside the migration's transaction on PostgreSQL and SQLite,
which blocks writes to the task table while it is built: seconds for a
million tasks. MySQL and MariaDB cannot roll back DDL, so there the key's
uniqueness is unenforced between the DROP and the ADD.
"""

from django.db import migrations, models

import dbqueue.indexes


class Migration(migrations.Migration):
    dependencies = [
        ("dbqueue", "0006_finished_index_holds_finished_rows"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="dbqueue_task_group",
        ),
        migrations.AddIndex(
            model_name="task",
            index=dbqueue.indexes.PartialIndex(
                fields=["group"],
                name="dbqueue_task_group",
                where=models.Q(("group", ""), _negated=True),
            ),
        ),
        migrations.RemoveConstraint(
            model_name="task",
            name="dbqueue_task_unique_hold",
        ),
        migrations.AddConstraint(
            model_name="task",
            constraint=dbqueue.indexes.PartialUniqueConstraint(
                fields=["unique_hold"],
                name="dbqueue_task_unique_hold",
                where=models.Q(unique_hold__isnull=False),
            ),
        ),
    ]
