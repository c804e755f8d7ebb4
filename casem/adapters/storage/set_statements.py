"""Statements over a whole set of rows or values whose text stays the same whatever the set's size (PostgreSQL).

Many rows into one table: the rows as one JSON array, inserted by `INSERT ... SELECT FROM jsonb_to_recordset(...)`.

SQLAlchemy sends an INSERT without RETURNING on psycopg as `executemany`: one statement per row (pipelined, but
each bound, planned and executed on its own), and the driver adapts every value in Python. Batch creation
writes thousands of rows per table: as one JSON document (encoded by the standard library's C encoder) they are
one statement whose text is the same whatever the number of rows, and the server parses them in one pass. JSON
columns travel as nested JSON, not as text in text. Rows go in in the order given (`WITH ORDINALITY ... ORDER
BY`): the outbox's sequence numbers follow the events' order, as with one INSERT per row.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type.dialect_impl(_DIALECT), sa.JSON)


@functools.cache
def _statement(table: sa.Table, names: tuple[str, ...]) -> sa.TextClause:
    quote = _DIALECT.identifier_preparer.quote
    declared, selected = [], []
    for name in names:
        column = table.c[name]
        declared.append(f"{quote(name)} {column.type.compile(_DIALECT)}")
        # SQLAlchemy's JSON type stores Python None as JSON null (`none_as_null` is off); the record gives SQL NULL.
        selected.append(f"COALESCE(r.{quote(name)}, CAST('null' AS JSONB))" if _is_json(column) else f"r.{quote(name)}")
    columns = ", ".join(quote(name) for name in names)
    return sa.text(
        f"INSERT INTO {_DIALECT.identifier_preparer.format_table(table)} ({columns}) "
        f"SELECT {', '.join(selected)} FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS JSONB)) "
        f"AS ({', '.join(declared)})) WITH ORDINALITY AS r({columns}, ord) ORDER BY r.ord"
    )


@functools.cache
def _bind_conversions(table: sa.Table, names: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """(column, conversion) for the columns whose type converts values before they are sent (UTCDateTime)."""
    return tuple(
        (name, functools.partial(table.c[name].type.process_bind_param, dialect=_DIALECT))
        for name in names
        if isinstance(table.c[name].type, sa.TypeDecorator)
    )


def _plain(value: Any) -> str:
    if isinstance(value, date):  # datetimes too: ISO 8601, with the UTC offset the bind conversion gave them
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_rows_insert(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> tuple[sa.TextClause, dict[str, Any]]:
    """The statement and its parameters that insert `rows` (dicts keyed by column name, all with the same keys)
    into `table` on PostgreSQL in one statement."""
    names = tuple(rows[0])
    conversions = _bind_conversions(table, names)
    if conversions:
        converted = []
        for row in rows:
            row = dict(row)
            for name, convert in conversions:
                row[name] = convert(row[name])
            converted.append(row)
        rows = converted
    return _statement(table, names), {"rows": json.dumps(rows, default=_plain)}


# Bound on the values of one IN (...) list on SQLite: well under its parameter limit.
_IN_CHUNK = 500


def one_of_chunks(column: sa.ColumnElement[Any], values: Sequence[Any], dialect: str) -> list[sa.ColumnElement[bool]]:
    """Conditions `column` is one of `values`, to run one query each: on PostgreSQL one, `column = ANY(array)`
    (one parameter: the statement's text, and its prepared plan, whatever the number of values); elsewhere an
    IN list per chunk of values."""
    if not values:
        return []
    if dialect == "postgresql":
        # Strings as TEXT[]: a cast to the column's VARCHAR(n)[] would cut a longer value down to one that matches.
        element = sa.Text() if isinstance(column.type, sa.String) else column.type
        return [column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(element)))]
    return [column.in_(values[start : start + _IN_CHUNK]) for start in range(0, len(values), _IN_CHUNK)]


@functools.lru_cache(maxsize=256)  # keyed by the engine's dialect too: bounded, tests open many
def _driver_insert(table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect) -> tuple[str, list[tuple[str, Any]]]:
    """The INSERT's text in the driver's own form (positional placeholders), and per placeholder its column and the
    conversion SQLAlchemy applies to its values (its type's bind processor: the same stored text), or None."""
    compiled = sa.insert(table).values({name: sa.bindparam(name) for name in names}).compile(dialect=dialect)
    if not compiled.positional or sorted(compiled.positiontup or []) != sorted(names):
        raise ValueError(f"{dialect.name}: no positional INSERT for {names}")
    placeholders: list[tuple[str, Any]] = []
    for name in compiled.positiontup or []:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is None:
            placeholders.append((name, None))
        else:
            none_value = process(None)  # e.g. JSON's None, the text "null": computed once, not encoded per row

            def convert(value: Any, process: Any = process, none_value: Any = none_value) -> Any:
                return none_value if value is None else process(value)

            placeholders.append((name, convert))
    return compiled.string, placeholders


def driver_insert(
    table: sa.Table, rows: Sequence[Mapping[str, Any]], dialect: sa.Dialect
) -> tuple[str, list[tuple[Any, ...]]]:
    """`rows` (dicts with the same keys) as the driver's executemany takes them (SQLite: qmark placeholders, one
    tuple per row), converted exactly as SQLAlchemy would, without its per-row parameter processing."""
    sql, placeholders = _driver_insert(table, tuple(rows[0]), dialect)
    return sql, [
        tuple(row[name] if convert is None else convert(row[name]) for name, convert in placeholders) for row in rows
    ]
