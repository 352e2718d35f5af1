"""Django-generic bulk SQL: multi-row INSERT (COPY on PostgreSQL), UPDATE and SELECT through
the driver, without the ORM's per-object compilation. Knows no Oscar and no productsync model."""

import contextlib
import functools
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import CASCADE, DO_NOTHING, SET_NULL
from django.db.models.fields import AutoFieldMixin


def delete_quietly(queryset) -> None:
    """One DELETE statement, whatever the number of rows: no collector fetching the rows in
    chunks and no per-row signals. Only for rows nothing else points at."""
    queryset._raw_delete(queryset.db)


def delete_with_dependents(model, pks: list[int]) -> None:
    """Delete rows, cascading to the rows that point at them by their on_delete rules, in a
    number of statements that does not grow with the rows (Django's collector deletes 100 rows
    per statement). Rules other than CASCADE, SET_NULL and DO_NOTHING go through Django."""
    if not pks:
        return
    rows = model._base_manager.filter(pk__in=pks)
    relations = model._meta.related_objects
    if any(r.many_to_many or r.on_delete not in (CASCADE, SET_NULL, DO_NOTHING) for r in relations):
        rows.delete()
        return
    for relation in relations:
        dependents = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": pks}
        )
        if relation.on_delete is CASCADE:
            dependents.delete()  # usually none: a single SELECT
        elif relation.on_delete is SET_NULL:
            dependents.update(**{relation.field.name: None})
    delete_quietly(rows)


def sqlite_variable_limit_lift() -> None:
    """Django assumes SQLite's old 999-variable limit and splits bulk queries by it; SQLite
    3.32+ allows 32766, so one batch stays one query whatever its size."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(connection.features.max_query_params, limit)


_PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)


def _is_plain(field) -> bool:
    """Whether str/int/bool/None values of field go to the driver unchanged, as the ORM would
    send them (a subclass that overrides the preparation, like Oscar's NullCharField, is not)."""
    if isinstance(field, models.ForeignKey):
        # A key to an auto-increment id: an int the ORM checks only on MySQL.
        target = field.target_field
        return isinstance(target, models.AutoField) or _is_plain(target)
    base = next((b for b in _PLAIN_FIELDS if isinstance(field, b)), None)
    return base is not None and all(
        getattr(type(field), name) is getattr(base, name)
        for name in ("get_prep_value", "get_db_prep_value", "get_db_prep_save")
    )


class _Prep(NamedTuple):
    """A value position of a row whose field's driver value differs from the Python one."""

    index: int
    prepare: Callable  # the field's get_db_prep_save


def _preps(fields: list) -> list[_Prep]:
    return [_Prep(i, f.get_db_prep_save) for i, f in enumerate(fields) if not _is_plain(f)]


def _prepared(rows: list, preps: list[_Prep], conn) -> list:
    """rows with the values of the fields that need it passed through get_db_prep_save."""
    if not preps:
        return rows
    rows = [list(row) for row in rows]
    for i, prep in preps:
        last = prepared = object()
        for row in rows:
            if row[i] is not last:  # the same object (a batch's timestamp) is prepared once
                last, prepared = row[i], prep(row[i], conn)
            row[i] = prepared
    return rows


@dataclass(frozen=True)
class _InsertPlan:
    table: str  # quoted
    columns: str  # quoted, comma-separated: the given fields, then the others
    conflict: str  # " ON CONFLICT ... DO UPDATE SET ...", or ""
    returning: str  # quoted column, or ""
    others: list  # the fields that get their defaults
    preps: list[_Prep]  # of the given fields
    copy: bool  # PostgreSQL: COPY the rows (returning, if any, is an auto-increment key)


@functools.lru_cache(maxsize=64)
def _insert_plan(model, fields: tuple, returning, conflict: tuple, update: tuple, vendor: str):
    """The SQL of insert_rows and what to prepare per value, worked out once per shape."""
    opts = model._meta
    quote = connection.ops.quote_name
    given = [opts.get_field(name) for name in fields]
    others = [f for f in opts.concrete_fields if not f.primary_key and f.attname not in fields]
    upsert = ""
    if conflict:
        names = [quote(opts.get_field(n).column) for n in conflict]
        sets = [
            f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (opts.get_field(n).column for n in update)
        ]
        upsert = f" ON CONFLICT ({', '.join(names)}) DO UPDATE SET {', '.join(sets)}"
    returned = opts.get_field(returning) if returning else None
    return _InsertPlan(
        table=quote(opts.db_table),
        columns=", ".join(quote(f.column) for f in given + others),
        conflict=upsert,
        returning=quote(returned.column) if returned else "",
        others=others,
        preps=_preps(given),
        copy=vendor == "postgresql"
        and (
            returned is None
            or (returned.primary_key and isinstance(returned, AutoFieldMixin) and not conflict)
        ),
    )


def insert_rows(
    model,
    fields: list[str],
    rows: list[tuple],
    *,
    returning: str | None = None,
    conflict: list[str] | None = None,
    update: list[str] | None = None,
) -> list:
    """INSERT rows (tuples of the values of fields, by attname) through the driver: what
    bulk_create sends, without its per-object model instances and per-value compilation. Every
    other concrete field gets what save() writes for a new instance (its default; auto_now
    and auto_now_add: now; a file field: ''). With conflict and
    update, an upsert (ON CONFLICT ... DO UPDATE); with returning, the values of that column,
    in the order of rows. SQLite: one INSERT per max_query_params. PostgreSQL: COPY, cheaper than a
    large INSERT, whose placeholders psycopg parses and fills in Python (docs/benchmarks.md
    has the figures): an upsert goes through a temporary table, and a returned primary key
    is taken from its sequence first."""
    if not rows:
        return []
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per value
    plan = _insert_plan(
        model, tuple(fields), returning, tuple(conflict or ()), tuple(update or ()), conn.vendor
    )
    blank = model()  # what save() would write for a new instance's other fields
    defaults = tuple(f.get_db_prep_save(f.pre_save(blank, True), conn) for f in plan.others)
    rows = _prepared(rows, plan.preps, conn)
    # One row is one round trip by INSERT, two or three by COPY. In a transaction: the rows
    # of an upsert's temporary table are deleted at its end.
    if plan.copy and len(rows) > 1 and model not in _NO_SEQUENCE:
        with transaction.atomic(savepoint=False), conn.cursor() as cursor:
            ids = _copy_rows(cursor, model, plan, rows, defaults)
        if ids is not None:
            return ids
    with conn.cursor() as cursor:
        per_statement = len(rows)
        if conn.features.max_query_params:
            per_statement = max(1, conn.features.max_query_params // (len(fields) + len(defaults)))
        placeholder = "(" + ", ".join(["%s"] * (len(fields) + len(defaults))) + ")"
        tail = plan.conflict + (f" RETURNING {plan.returning}" if plan.returning else "")
        out = []
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {plan.table} ({plan.columns}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + tail,
                [value for row in chunk for value in (*row, *defaults)],
            )
            if plan.returning:
                out.extend(value for (value,) in cursor.fetchall())
        return out


# Models whose auto-increment key has no sequence of its own (a table not made by Django's
# migrations, say): their returned keys come from INSERT ... RETURNING.
_NO_SEQUENCE: set = set()


def _copy_rows(cursor, model, plan: _InsertPlan, rows: list, defaults: tuple) -> list | None:
    """insert_rows on PostgreSQL, by COPY; None (nothing written) when the returned key has
    no sequence to take the keys from."""
    columns, ids = plan.columns, []
    if plan.returning:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [plan.table, model._meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        if ids[0] is None:
            _NO_SEQUENCE.add(model)
            return None
        columns = f"{plan.returning}, {columns}"
        rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
    target = plan.table
    if plan.conflict:
        target = _staging(cursor, "copy", model._meta.db_table, plan.table, columns)
    _copy(cursor, f"COPY {target} ({columns}) FROM STDIN", ((*row, *defaults) for row in rows))
    if plan.conflict:
        cursor.execute(
            f"INSERT INTO {plan.table} ({columns}) SELECT {columns} FROM {target}{plan.conflict}"
        )
    return ids


def _staging(cursor, kind: str, name: str, table: str, columns: str) -> str:
    """The quoted name of an empty temporary table of these columns of table (quoted), to
    COPY rows into. Made once per session (ON COMMIT DELETE ROWS), not once per batch: no
    table created and dropped in the system catalogues at every commit; rows of an earlier
    use in the same transaction are deleted (a rollback undoes a table it made)."""
    digest = f"{zlib.crc32(columns.encode()):08x}"
    temp = connection.ops.quote_name(f"productsync_{kind}_{digest}_{name}"[:63])
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS AS "
        f"SELECT {columns} FROM {table} WITH NO DATA; DELETE FROM {temp}"
    )
    return temp


def _copy(cursor, sql: str, rows: Iterable[tuple]) -> None:
    """Run a COPY ... FROM STDIN of rows as Django runs a statement: through its execute
    wrappers (query counters), its error translation and, when queries are logged, its log."""

    def copy(sql, params, many, context):
        with cursor.db.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
    with logged:
        cursor._execute_with_wrappers(sql, None, False, copy)


def update_rows(model, fields: list[str], rows: list[tuple], same: dict | None = None) -> None:
    """UPDATE the rows (tuples of the primary key, then the values of fields by attname) with
    one statement joining the rows: what bulk_update writes, without its CASE WHEN per row and
    field (its compilation grows with the square of the batch). PostgreSQL: the rows as one
    array per column; SQLite: a VALUES list, a statement per max_query_params. same: values
    (by attname) set on every row, sent once rather than per row."""
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    opts = model._meta
    quote = conn.ops.quote_name
    constants = [(opts.get_field(name), value) for name, value in (same or {}).items()]
    given = [opts.pk, *(opts.get_field(name) for name in fields)]
    rows = _prepared(rows, _preps(given), conn)
    names = [f"c{i}" for i in range(len(given))]
    # PostgreSQL types a VALUES list from its literals: cast the first row to the columns'
    # types. SQLite needs no casts (and a CAST would change a datetime's text affinity).
    casts = [f.cast_db_type(conn) if conn.vendor == "postgresql" else None for f in given]
    first = "(" + ", ".join("%s" if c is None else f"CAST(%s AS {c})" for c in casts) + ")"
    other = "(" + ", ".join(["%s"] * len(given)) + ")"
    table = quote(opts.db_table)
    sets = ", ".join(
        [f"{quote(f.column)} = v.{n}" for f, n in zip(given[1:], names[1:], strict=True)]
        + [f"{quote(f.column)} = %s" for f, _ in constants]
    )
    constant_values = [f.get_db_prep_save(value, conn) for f, value in constants]
    if conn.vendor == "postgresql":
        # One array per column: one parameter each, however many rows.
        arrays = ", ".join(f"CAST(%s AS {c}[])" for c in casts)
        with conn.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
                f"WHERE {table}.{quote(opts.pk.column)} = v.c0",
                constant_values + [list(column) for column in zip(*rows, strict=True)],
            )
        return
    per_statement = len(rows)
    if conn.features.max_query_params:
        room = conn.features.max_query_params - len(constants)
        per_statement = max(1, room // len(given))
    with conn.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([first] + [other] * (len(chunk) - 1))
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {values}) UPDATE {table} SET {sets} "
                f"FROM v WHERE {table}.{quote(opts.pk.column)} = v.c0",
                [value for row in chunk for value in row] + constant_values,
            )


def update_given(model, fields: list[str], rows: list[tuple]) -> None:
    """UPDATE rows (tuples of the primary key, then the values of fields by attname), each
    field only where its value is not None: the others keep what they hold. One statement
    joining a VALUES list; on PostgreSQL, more than one row goes by COPY into a temporary
    table and one UPDATE ... FROM it (its placeholders would be filled in Python)."""
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    opts, quote = model._meta, conn.ops.quote_name
    given = [opts.pk, *(opts.get_field(name) for name in fields)]
    rows = _prepared(rows, _preps(given), conn)
    table = quote(opts.db_table)
    columns = [quote(f.column) for f in given]
    sets = ", ".join(f"{c} = COALESCE(v.{c}, {table}.{c})" for c in columns[1:])
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql" and len(rows) > 1:
            with transaction.atomic(savepoint=False):
                temp = _staging(cursor, "given", opts.db_table, table, ", ".join(columns))
                _copy(cursor, f"COPY {temp} ({', '.join(columns)}) FROM STDIN", rows)
                cursor.execute(
                    f"UPDATE {table} SET {sets} FROM {temp} v WHERE {table}.{columns[0]} = "
                    f"v.{columns[0]}"
                )
            return
        casts = [f.cast_db_type(conn) if conn.vendor == "postgresql" else None for f in given]
        first = "(" + ", ".join("%s" if c is None else f"CAST(%s AS {c})" for c in casts) + ")"
        other = "(" + ", ".join(["%s"] * len(given)) + ")"
        per_statement = len(rows)
        if conn.features.max_query_params:
            per_statement = max(1, conn.features.max_query_params // len(given))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([first] + [other] * (len(chunk) - 1))
            cursor.execute(
                f"WITH v({', '.join(columns)}) AS (VALUES {values}) UPDATE {table} SET {sets} "
                f"FROM v WHERE {table}.{columns[0]} = v.{columns[0]}",
                [value for row in chunk for value in row],
            )


def update_row(model, pk, values: dict, **where) -> bool:
    """UPDATE one row by primary key, if its fields also equal where, through the driver:
    what QuerySet.update() sends, without compiling it. Return whether the row matched."""
    conn = connections[DEFAULT_DB_ALIAS]
    opts, quote = model._meta, conn.ops.quote_name
    sets = [(opts.get_field(name), value) for name, value in values.items()]
    conditions = [(opts.pk, pk), *((opts.get_field(n), v) for n, v in where.items())]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(opts.db_table)} SET "
            + ", ".join(f"{quote(f.column)} = %s" for f, _ in sets)
            + " WHERE "
            + " AND ".join(f"{quote(f.column)} = %s" for f, _ in conditions),
            [f.get_db_prep_save(v, conn) for f, v in sets + conditions],
        )
        return cursor.rowcount > 0


@functools.lru_cache(maxsize=16)
def quoted_names(model, vendor: str) -> dict[str, str]:
    """The quoted table (key "") and column names (by attname) of a model, for raw SQL;
    worked out once, not per batch."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return {"": quote(model._meta.db_table)} | {
        f.attname: quote(f.column) for f in model._meta.concrete_fields
    }


def select_rows(sql: str, *lists: list) -> list[tuple]:
    """Rows of a query with one "IN ({})" per list: for the lookups every batch makes, written
    in SQL rather than built by the ORM, whose compilation can cost more than running the
    query at small batch sizes. SQLite: one placeholder per value; PostgreSQL: one array per
    list ("= ANY(%s)"), one parameter however long the list, planned by the column's index."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql.replace("IN ({})", "= ANY(%s)"), [list(v) for v in lists])
            return cursor.fetchall()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        if sum(map(len, lists)) > limit:
            # More values than this SQLite takes as variables: each list as one JSON array.
            in_json = "IN (SELECT value FROM json_each(%s))"
            cursor.execute(sql.replace("IN ({})", in_json), [json.dumps(list(v)) for v in lists])
            return cursor.fetchall()
        cursor.execute(
            sql.format(*(", ".join(["%s"] * len(values)) for values in lists)),
            [value for values in lists for value in values],
        )
        return cursor.fetchall()
