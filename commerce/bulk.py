"""Set-based writes for batches, one statement per call.

Django's ``bulk_update`` builds a CASE WHEN per row and field; at 500 rows it
costs more than the rest of a renewal batch together. ``update_rows`` sends
one ``UPDATE ... FROM unnest(arrays)`` instead (PostgreSQL; ``FROM (VALUES
...)`` on SQLite 3.33+), and ``insert_rows`` one ``COPY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.models import Model
from django.db.models.base import ModelState


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
        # Arrays go in binary (%b), several times cheaper to send than text;
        # a column of nulls only has no type of its own to send it with.
        source = ", ".join(
            f"{'%s' if all(v is None for v in values) else '%b'}::{f.db_type(conn)}[]"
            for f, values in zip(types, arrays, strict=True)
        )
        alias = ", ".join(f"c{i}" for i in range(len(types)))
        key = f"{table}.{qn(pk.column)}"  # type: ignore[union-attr]
        # ``= ANY(ids)`` as well: the rows are found through the primary key
        # rather than by hashing the whole table against the arrays.
        sql = (
            f"UPDATE {table} SET {assignments} FROM unnest({source}) AS v({alias}) "
            f"WHERE {key} = v.c0 AND {key} = ANY(%b::{pk.db_type(conn)}[])"  # type: ignore[union-attr]
        )
        with binary_cursor(conn) as cursor:
            cursor.execute(sql, [*arrays, arrays[0]])
            return int(cursor.rowcount)
    else:
        # SQLite names VALUES columns column1, column2, ...
        row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
        params: list[Any] = []
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


def guarded_update(
    objs: Sequence[Model], fields: Sequence[str], expect: dict[str, Sequence[Any]]
) -> set[Any]:
    """``update_rows`` with a per-row compare-and-swap (PostgreSQL): writes
    the rows whose ``expect`` columns still hold the given values, and
    returns their primary keys. The row locks are the UPDATE's own: no
    separate ``SELECT … FOR UPDATE`` first."""
    if not objs:
        return set()
    model = type(objs[0])
    conn = connections[router.db_for_write(model)]
    meta, qn = model._meta, conn.ops.quote_name
    columns: list[Any] = [meta.get_field(name) for name in fields]
    guards: list[Any] = [meta.get_field(name) for name in expect]
    table, pk = qn(meta.db_table), meta.pk
    assert pk is not None
    assignments = ", ".join(f"{qn(f.column)} = v.c{i + 1}" for i, f in enumerate(columns))
    arrays = [[obj.pk for obj in objs]]
    arrays += [[value(obj) for obj in objs] for value in [_copy_value(f, conn) for f in columns]]
    arrays += [[f.get_db_prep_save(v, conn) for v in expect[f.name]] for f in guards]
    types = [pk, *columns, *guards]
    source = ", ".join(
        f"{'%s' if all(v is None for v in values) else '%b'}::{f.db_type(conn)}[]"
        for f, values in zip(types, arrays, strict=True)
    )
    alias = ", ".join(f"c{i}" for i in range(len(types)))
    key = f"{table}.{qn(pk.column)}"
    first = 1 + len(columns)
    checks = "".join(f" AND {table}.{qn(f.column)} = v.c{first + i}" for i, f in enumerate(guards))
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({source}) AS v({alias}) "
        f"WHERE {key} = v.c0 AND {key} = ANY(%b::{pk.db_type(conn)}[]){checks} "
        f"RETURNING {key}"
    )
    with binary_cursor(conn) as cursor:
        cursor.execute(sql, [*arrays, arrays[0]])
        return {row[0] for row in cursor.fetchall()}


@contextmanager
def binary_cursor(conn: Any) -> Iterator[Any]:
    """A psycopg cursor on Django's PostgreSQL connection (same transaction)
    that binds parameters on the server, so arrays can go as binary (``%b``)
    and rows can come back binary (``execute(..., binary=True)``); Django's
    own cursors bind on the client. Errors are Django's, as usual."""
    import psycopg

    conn.ensure_connection()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cursor:
        yield cursor


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
M = TypeVar("M", bound=Model)
E = TypeVar("E")


def chunks(items: Sequence[E], size: int) -> Iterator[list[E]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def new(model: type[M], **values: Any) -> M:
    """A new, unsaved instance from attnames, without Django's per-instance
    ``__init__`` work (field by field, and the pre/post_init signals): for
    batches that build thousands. Missing fields get their defaults."""
    obj = model.__new__(model)
    obj._state = ModelState()
    attrs = obj.__dict__
    for name, default in _defaults(model):
        attrs[name] = values.pop(name) if name in values else default()
    if values:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(values)}")
    return obj


def load(model: type[M], names: Sequence[str], row: Sequence[Any], db: str) -> M:
    """An instance read from the database (all of ``names``), as ``new``."""
    obj = model.__new__(model)
    obj._state = ModelState()
    obj._state.adding, obj._state.db = False, db
    obj.__dict__.update(zip(names, row, strict=True))
    return obj


def attach(obj: Model, relation: str, related: Model) -> None:
    """Set an already loaded related object (a foreign key the object
    points to), as ``obj.<relation> = related`` would, without the checks
    an assignment makes per object."""
    obj._state.fields_cache[relation] = related


@cache
def _defaults(model: type[Model]) -> list[tuple[str, Callable[[], Any]]]:
    out: list[tuple[str, Callable[[], Any]]] = []
    for field in model._meta.concrete_fields:
        if field.has_default() and callable(field.default):
            out.append((field.attname, field.get_default))  # uuid4, now, dict, ...
        else:
            out.append((field.attname, _constant(field.get_default())))
    return out


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def insert_dicts(model: type[Model], rows: Sequence[Row]) -> None:
    """Write rows given as {column attname: value} (the same keys in each),
    in one statement: for batches that need no model instances."""
    if not rows:
        return
    conn = connections[router.db_for_write(model)]
    if conn.vendor != "postgresql":
        model._default_manager.using(conn.alias).bulk_create([model(**row) for row in rows])
        return
    fields: list[Any] = [model._meta.get_field(name) for name in rows[0]]
    convert = [_prepare(f, conn) for f in fields]
    names = list(rows[0])
    prepared = [
        (i, _from_key(name, prepare))
        for i, (name, prepare) in enumerate(zip(names, convert, strict=True))
        if prepare is not None
    ]
    row_of = _values(itemgetter(*names), len(names), prepared)
    with _copy(conn, model, fields) as copy:
        for row in rows:
            copy.write_row(row_of(row))


def _from_key(name: str, prepare: Callable[[Any], Any]) -> Callable[[Row], Any]:
    return lambda row: prepare(row[name])


@contextmanager
def _copy(conn: Any, model: type[Model], fields: list[Any]) -> Iterator[Any]:
    """A binary ``COPY … FROM STDIN`` into ``fields`` of the model's table."""
    qn = conn.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    sql = f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)"
    # The raw psycopg cursor: wrap its errors as Django's (IntegrityError, ...).
    with conn.cursor() as cursor, conn.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        copy.set_types([_base_type(f.db_type(conn)) for f in fields])
        yield copy


def _base_type(db_type: str) -> str:
    """'varchar(200)' -> 'varchar', 'numeric(12, 2)' -> 'numeric'."""
    return db_type.split("(")[0].strip()


def _prepare(field: Any, conn: Any) -> Callable[[Any], Any] | None:
    """How a value becomes what the column's binary COPY format takes: as it
    is (None), a Decimal for numeric columns, Django's preparation for the rest."""
    if isinstance(field, models.DecimalField):
        return lambda v: v if v is None or type(v) is Decimal else Decimal(v)
    if isinstance(field, _AS_IS) and not isinstance(field, models.JSONField):
        return None
    return lambda v: field.get_db_prep_save(v, conn)


def _copy_rows(conn: Any, objs: Sequence[Model], *, auto_pk: bool, returning_ids: bool) -> None:
    meta = objs[0]._meta
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
    row_of = _row_reader(fields, conn)
    with _copy(conn, type(objs[0]), fields) as copy:
        for obj in objs:
            copy.write_row(row_of(obj))


def _row_reader(fields: list[Any], conn: Any) -> Callable[[Model], Sequence[Any]]:
    """An object's values for the columns, as COPY takes them: the attributes
    read in one ``attrgetter`` call, then the few columns that need
    preparing (``_copy_value``) replaced."""
    prepared = [
        (i, _copy_value(f, conn))
        for i, f in enumerate(fields)
        if getattr(f, "auto_now", False)
        or getattr(f, "auto_now_add", False)
        or _prepare(f, conn) is not None
    ]
    return _values(attrgetter(*(f.attname for f in fields)), len(fields), prepared)


def _values(
    read: Callable[[Any], Any], width: int, prepared: list[tuple[int, Callable[[Any], Any]]]
) -> Callable[[Any], Sequence[Any]]:
    """A row's values for COPY: all read by one ``itemgetter``/``attrgetter``
    call (``width`` of them), then the columns in ``prepared`` replaced by
    their prepared value."""
    if not prepared and width > 1:
        return read  # already a tuple of the values

    def row(source: Any) -> list[Any]:
        values = list(read(source)) if width > 1 else [read(source)]
        for i, value in prepared:
            values[i] = value(source)
        return values

    return row


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
    """How to read an object's value for the column (see ``_prepare``)."""
    prepare = _prepare(field, conn)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, True)
    if prepare is None:
        return attrgetter(field.attname)
    return lambda obj: prepare(field.pre_save(obj, True))


class AnyOf(models.Lookup):  # type: ignore[type-arg]
    """``field__any=[ids]``: one array parameter (``= ANY(%s)``) on PostgreSQL
    instead of one placeholder per id (``__in``), which for thousands of ids
    costs more to build than to run; ``IN (…)`` elsewhere."""

    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [int(v) for v in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


models.IntegerField.register_lookup(AnyOf)
models.ForeignKey.register_lookup(AnyOf)
