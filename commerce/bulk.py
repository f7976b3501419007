"""Set-based writes for batches, one statement per call.

Django's ``bulk_update`` builds a CASE WHEN per row and field; at 500 rows it
costs more than the rest of a renewal batch together. ``update_rows`` sends
one ``UPDATE ... FROM unnest(arrays)`` instead (PostgreSQL; ``FROM (VALUES
...)`` on SQLite 3.33+), and ``insert_rows`` one ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from django.db import connections, models, router
from django.db.models import Model


def update_rows(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of each object (all of one model) in one statement."""
    if not objs:
        return 0
    model = type(objs[0])
    conn = connections[router.db_for_write(model)]
    meta, qn = model._meta, conn.ops.quote_name
    columns: list[Any] = [meta.get_field(name) for name in fields]
    table, pk = qn(meta.db_table), meta.pk
    assignments = ", ".join(f"{qn(f.column)} = v.c{i + 1}" for i, f in enumerate(columns))
    if conn.vendor == "postgresql":
        # One array per column (unnest): as many parameters as columns,
        # whatever the number of rows.
        getters = [_copy_value(f, conn) for f in columns]
        arrays = [[obj.pk for obj in objs]] + [[value(obj) for obj in objs] for value in getters]
        types = [pk, *columns]
        source = ", ".join(f"%s::{f.db_type(conn)}[]" for f in types)  # type: ignore[union-attr]
        alias = ", ".join(f"c{i}" for i in range(len(types)))
        key = f"{table}.{qn(pk.column)}"  # type: ignore[union-attr]
        # ``= ANY(ids)`` as well: the rows are found through the primary key
        # rather than by hashing the whole table against the arrays.
        sql = (
            f"UPDATE {table} SET {assignments} FROM unnest({source}) AS v({alias}) "
            f"WHERE {key} = v.c0 AND {key} = ANY(%s::{pk.db_type(conn)}[])"  # type: ignore[union-attr]
        )
        params: list[Any] = [*arrays, arrays[0]]
    else:
        # SQLite names VALUES columns column1, column2, ...
        row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
        params = []
        for obj in objs:
            params.append(obj.pk)
            params += [f.get_db_prep_save(getattr(obj, f.attname), conn) for f in columns]
        assignments = ", ".join(f"{qn(f.column)} = v.column{i + 2}" for i, f in enumerate(columns))
        sql = (
            f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * len(objs))}) "
            f"AS v WHERE {table}.{qn(pk.column)} = v.column1"  # type: ignore[union-attr]
        )
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_rows(objs: Sequence[Model], *, returning_ids: bool = False) -> None:
    """Write the objects (all of one model) in one statement; with
    ``returning_ids`` their new primary keys are set. On PostgreSQL this is
    ``COPY``, several times faster than a multi-row ``INSERT`` at batch sizes
    (ids, when wanted, are taken from the table's sequence first); elsewhere
    one ``INSERT … VALUES … RETURNING``."""
    if not objs:
        return
    model = type(objs[0])
    conn = connections[router.db_for_write(model)]
    meta, qn = model._meta, conn.ops.quote_name
    auto_pk = meta.pk.get_internal_type() in ("AutoField", "BigAutoField")
    if conn.vendor == "postgresql":
        _copy_rows(conn, objs, auto_pk=auto_pk, returning_ids=returning_ids)
        return
    fields = [f for f in meta.concrete_fields if not (f.primary_key and auto_pk)]
    params: list[Any] = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), conn) for f in fields]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * len(objs))}"
    )
    if returning_ids:
        sql += f" RETURNING {qn(meta.pk.column)}"
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        if returning_ids:
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False


Row = dict[str, Any]


def insert_dicts(model: type[Model], rows: Sequence[Row]) -> None:
    """Write rows given as {column attname: value} (the same keys in each),
    in one statement: for batches that need no model instances."""
    if not rows:
        return
    conn = connections[router.db_for_write(model)]
    if conn.vendor != "postgresql":
        model._default_manager.using(conn.alias).bulk_create([model(**row) for row in rows])
        return
    meta, qn = model._meta, conn.ops.quote_name
    fields: list[Any] = [meta.get_field(name) for name in rows[0]]
    adapt = [
        (lambda v, f=f: f.get_db_prep_save(v, conn)) if not isinstance(f, _AS_IS) else None
        for f in fields
    ]
    names = list(rows[0])
    columns = ", ".join(qn(f.column) for f in fields)
    with (
        conn.cursor() as cursor,
        conn.wrap_database_errors,
        cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    row[name] if convert is None else convert(row[name])
                    for name, convert in zip(names, adapt, strict=True)
                ]
            )


def _copy_rows(conn: Any, objs: Sequence[Model], *, auto_pk: bool, returning_ids: bool) -> None:
    meta, qn = objs[0]._meta, conn.ops.quote_name
    table = qn(meta.db_table)
    fields = list(meta.concrete_fields)
    with conn.cursor() as cursor:
        if auto_pk:
            if returning_ids:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [meta.db_table, meta.pk.column, len(objs)],
                )
                for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                    obj.pk = pk
                    obj._state.adding = False
            else:
                fields = [f for f in fields if not f.primary_key]
        columns = ", ".join(qn(f.column) for f in fields)
        # The raw psycopg cursor: wrap its errors as Django's (IntegrityError, ...).
        with (
            conn.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            values = [_copy_value(f, conn) for f in fields]
            for obj in objs:
                copy.write_row([value(obj) for value in values])


# Columns whose Python value psycopg writes as it is (Django's preparation
# changes nothing for them on PostgreSQL): read the attribute, skip the rest.
_AS_IS = (
    models.IntegerField,
    models.BooleanField,
    models.CharField,
    models.TextField,
    models.DateField,
    models.DecimalField,
    models.ForeignKey,
    models.UUIDField,
)


def _copy_value(field: Any, conn: Any) -> Callable[[Model], Any]:
    if not isinstance(field, _AS_IS) or isinstance(field, models.JSONField):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), conn)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, True)
    return attrgetter(field.attname)
