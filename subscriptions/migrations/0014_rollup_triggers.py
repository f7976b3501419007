"""Database triggers that mark the raw rows the report rollups count as
changed (docs/reports.md), in the changing transaction, whatever writes
them: the services, the set-based renewal path, admin, a bulk UPDATE.
PostgreSQL: statement-level triggers with transition tables (one INSERT …
SELECT per statement); SQLite: row triggers. Existing rows are all marked,
so the rollup job counts them once after this migration; and beat runs the
job every 10 seconds."""

from django.db import migrations

# table, kind, the source id column, and how to find the client
# (a column of the row, or the parent's through a join).
SOURCES = [
    ("subscriptions_subscription", "s", "id", "client_id", None),
    ("subscriptions_subscriptionitem", "s", "subscription_id", None, "subscriptions_subscription"),
    ("commerce_purchase", "p", "id", "client_id", None),
    ("commerce_purchaseitem", "p", "purchase_id", None, "commerce_purchase"),
    ("commerce_document", "d", "id", "client_id", None),
]
DIRTY = "subscriptions_rollupdirty"
EVENTS = {"INSERT": ("NEW", "new_rows"), "UPDATE": ("NEW", "new_rows"), "DELETE": ("OLD", "old_rows")}


def _select(rows: str, kind: str, id_col: str, client_col: str | None, parent: str | None) -> str:
    if parent is None:
        return f"SELECT '{kind}', r.{id_col}, r.{client_col} FROM {rows} r"
    return (
        f"SELECT '{kind}', r.{id_col}, p.client_id FROM {rows} r "
        f"JOIN {parent} p ON p.id = r.{id_col}"
    )


def postgresql() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for table, kind, id_col, client_col, parent in SOURCES:
        for event, (_, rows) in EVENTS.items():
            name = f"rollup_{table}_{event.lower()}"
            select = _select(rows, kind, id_col, client_col, parent)
            create.append(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO {DIRTY} (kind, source_id, client_id) {select}; "
                f"RETURN NULL; END $$"
            )
            referencing = "NEW TABLE AS new_rows" if rows == "new_rows" else "OLD TABLE AS old_rows"
            create.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            drop.append(f"DROP FUNCTION IF EXISTS {name}()")
    return create, drop


def sqlite() -> tuple[list[str], list[str]]:
    create, drop = [], []
    for table, kind, id_col, client_col, parent in SOURCES:
        for event, (row, _) in EVENTS.items():
            name = f"rollup_{table}_{event.lower()}"
            if parent is None:
                body = f"SELECT '{kind}', {row}.{id_col}, {row}.{client_col}"
            else:
                body = f"SELECT '{kind}', p.id, p.client_id FROM {parent} p WHERE p.id = {row}.{id_col}"
            create.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN "
                f"INSERT INTO {DIRTY} (kind, source_id, client_id) {body}; END"
            )
            drop.append(f"DROP TRIGGER IF EXISTS {name}")
    return create, drop


MARK_ALL = [
    f"INSERT INTO {DIRTY} (kind, source_id, client_id) SELECT 's', id, client_id FROM subscriptions_subscription",
    f"INSERT INTO {DIRTY} (kind, source_id, client_id) SELECT 'p', id, client_id FROM commerce_purchase",
    f"INSERT INTO {DIRTY} (kind, source_id, client_id) SELECT 'd', id, client_id FROM commerce_document",
]

JOB = "Count changes into the report rollups"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    create, _ = postgresql() if vendor == "postgresql" else sqlite()
    for statement in create + MARK_ALL:
        schema_editor.execute(statement)
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Task = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = Interval.objects.get_or_create(every=10, period="seconds")
    Task.objects.get_or_create(
        name=JOB, defaults={"task": "subscriptions.tasks.refresh_rollups", "interval": every}
    )


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    _, drop = postgresql() if vendor == "postgresql" else sqlite()
    for statement in drop:
        schema_editor.execute(statement)
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=JOB).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0013_rollups"),
        ("commerce", "0015_purchase_charged_back_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(forward, backward)]
