"""Prefix search (istartswith) on e-mail and names at a million customers.

Django turns ``istartswith`` into ``UPPER(col::text) LIKE UPPER('abc%')`` on
PostgreSQL; these expression indexes with text_pattern_ops serve it. SQLite
has no such operator class and needs nothing here.
"""

from django.db import migrations

COLUMNS = ["email", "first_name", "last_name"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS customer_{column}_upper_prefix_idx ON customers_customer "
            f"(UPPER({column}::text) text_pattern_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS customer_{column}_upper_prefix_idx")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
