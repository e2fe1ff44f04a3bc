"""On PostgreSQL, a change to the schedule table wakes every cluster's scheduler.

A scheduler sleeps until its next schedule is due and LISTENs on the
``dbqueue_schedules`` channel meanwhile, so a schedule added, edited, paused
or deleted anywhere (the admin, code, plain SQL) is seen at once rather than
at the next poll. One NOTIFY per statement, sent when its transaction commits.
Other databases have no such channel: their schedulers look every
DBQUEUE_SCHEDULER_INTERVAL instead, and this migration does nothing there.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION dbqueue_schedule_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('dbqueue_schedules', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER dbqueue_schedule_changed
    AFTER INSERT OR UPDATE OR DELETE ON dbqueue_schedule
    FOR EACH STATEMENT EXECUTE FUNCTION dbqueue_schedule_changed();
"""

DROP = """
DROP TRIGGER IF EXISTS dbqueue_schedule_changed ON dbqueue_schedule;
DROP FUNCTION IF EXISTS dbqueue_schedule_changed();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("dbqueue", "0004_counters"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
