"""Set-based writes for batches, one statement per call.

Django's ``bulk_update`` builds a CASE WHEN per row and field; at 500 rows it
costs more than the rest of a renewal batch together. ``update_rows`` sends
one ``UPDATE ... FROM (VALUES ...)`` instead (PostgreSQL, and SQLite 3.33+).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model


def update_rows(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of each object (all of one model) in one statement."""
    if not objs:
        return 0
    model = type(objs[0])
    conn = connections[router.db_for_write(model)]
    meta, qn = model._meta, conn.ops.quote_name
    columns: list[Any] = [meta.get_field(name) for name in fields]
    pg = conn.vendor == "postgresql"

    def ref(i: int, field: object) -> str:
        # PostgreSQL sees VALUES as text: cast to the column's type. SQLite
        # names VALUES columns column1, column2, ... and needs no cast.
        if pg:
            return f"v.c{i}::{field.db_type(conn)}"  # type: ignore[attr-defined]
        return f"v.column{i + 1}"

    row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        params += [f.get_db_prep_save(getattr(obj, f.attname), conn) for f in columns]
    alias = "v(c0, " + ", ".join(f"c{i + 1}" for i in range(len(columns))) + ")" if pg else "v"
    assignments = ", ".join(f"{qn(f.column)} = {ref(i + 1, f)}" for i, f in enumerate(columns))
    table = qn(meta.db_table)
    sql = (
        f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * len(objs))}) "
        f"AS {alias} WHERE {table}.{qn(meta.pk.column)} = {ref(0, meta.pk)}"
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
            for obj in objs:
                copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), conn) for f in fields])
