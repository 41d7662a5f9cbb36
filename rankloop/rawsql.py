"""Hand-written SQL for the few queries on the annotator's hot path (token login, next task,
submit). The ORM spends more CPU building those queries than Postgres spends running them, and
every request pays it. These helpers keep the SQL short: column lists come from the models, and
rows become model instances with the same conversions the ORM applies (JSON, SQLite dates)."""
from __future__ import annotations

from functools import cache

from django.db import connection


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def attnames(model, fields: tuple | None = None) -> tuple:
    """The attribute names of a model's columns (`task_id`, not `task`), all of them by default."""
    concrete = model._meta.concrete_fields
    if fields is None:
        return tuple(f.attname for f in concrete)
    wanted = {model._meta.get_field(name).attname for name in fields}
    return tuple(f.attname for f in concrete if f.attname in wanted)  # Model.from_db wants this order


@cache
def columns(model, alias: str, names: tuple) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(model._meta.get_field(name).column)}" for name in names)


@cache
def _converters(model, names: tuple, vendor: str):
    out = []
    for name in names:
        col = model._meta.get_field(name).get_col(model._meta.db_table)
        fns = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        out.append((fns, col) if fns else None)
    return out


def instance(model, names: tuple, values):
    """A model instance from a row holding the columns `names` (attnames); the others are deferred."""
    values = list(values)
    for i, conversion in enumerate(_converters(model, names, connection.vendor)):
        if conversion is not None:
            fns, col = conversion
            for fn in fns:
                values[i] = fn(values[i], col, connection)
    return model.from_db(connection.alias, names, values)


def fetch_one(sql: str, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@cache
def insert_sql(model, names: tuple, rows: int = 1, conflict: tuple = (), update: tuple = (), returning: tuple = ()):
    """INSERT of `rows` rows into the columns `names`; with `conflict`, an upsert that sets
    `update` from the new row (Postgres and SQLite both say ON CONFLICT … DO UPDATE)."""
    quote = connection.ops.quote_name

    def cols(fields):
        return ", ".join(quote(model._meta.get_field(n).column) for n in fields)

    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    sql = f"INSERT INTO {table(model)} ({cols(names)}) VALUES {', '.join([row] * rows)}"
    if conflict:
        sets = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (model._meta.get_field(n).column for n in update))
        sql += f" ON CONFLICT ({cols(conflict)}) DO UPDATE SET {sets}"
    if returning:
        sql += f" RETURNING {cols(returning)}"
    return sql


def values(model, names, row) -> list:
    """One row's values prepared for the columns `names`."""
    field = model._meta.get_field
    return [field(name).get_db_prep_save(value, connection) for name, value in zip(names, row)]


def write_together(statements):
    """Run (sql, params) write statements as one: on Postgres a single statement of data-modifying
    WITH clauses (one round trip, one snapshot, so they must not depend on each other's rows);
    elsewhere one after the other. Returns the first statement's RETURNING row."""
    if connection.vendor == "postgresql":
        clauses = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(statements))
        return fetch_one(f"WITH {clauses} SELECT * FROM w0", [p for _, params in statements for p in params])
    first = fetch_one(*statements[0])
    for sql, params in statements[1:]:
        execute(sql, params)
    return first
