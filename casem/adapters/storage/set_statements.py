"""Statements over a whole set of rows or values whose text stays the same whatever the set's size (PostgreSQL).

Many rows into one table: the rows as one JSON array, inserted by `INSERT ... SELECT FROM jsonb_to_recordset(...)`.

SQLAlchemy sends an INSERT without RETURNING on psycopg as `executemany`: one statement per row (pipelined, but
each bound, planned and executed on its own), and the driver adapts every value in Python. Batch creation
writes thousands of rows per table: as one JSON document (encoded by orjson: the standard library's encoder took a
fifth of case-api's time, a Python callback per datetime) they are one statement whose text is the same whatever
the number of rows, and the server parses them in one pass. JSON
columns travel as nested JSON, not as text in text. Rows go in in the order given (`WITH ORDINALITY ... ORDER
BY`): the outbox's sequence numbers follow the events' order, as with one INSERT per row.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from casem.adapters import fastjson

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def _is_json(column: sa.Column[Any]) -> bool:
    return isinstance(column.type.dialect_impl(_DIALECT), sa.JSON)


@functools.cache
def _statement(table: sa.Table, names: tuple[str, ...]) -> sa.TextClause:
    return sa.text(_statement_text(table, names, "rows"))


@functools.cache
def _statement_text(table: sa.Table, names: tuple[str, ...], parameter: str) -> str:
    quote = _DIALECT.identifier_preparer.quote
    declared, selected = [], []
    for name in names:
        column = table.c[name]
        declared.append(f"{quote(name)} {column.type.compile(_DIALECT)}")
        # SQLAlchemy's JSON type stores Python None as JSON null (`none_as_null` is off); the record gives SQL NULL.
        selected.append(f"COALESCE(r.{quote(name)}, CAST('null' AS JSONB))" if _is_json(column) else f"r.{quote(name)}")
    columns = ", ".join(quote(name) for name in names)
    return (
        f"INSERT INTO {_DIALECT.identifier_preparer.format_table(table)} ({columns}) "
        f"SELECT {', '.join(selected)} FROM ROWS FROM (jsonb_to_recordset(CAST(:{parameter} AS JSONB)) "
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
    return _statement(table, tuple(rows[0])), {"rows": _rows_json(table, rows)}


def json_rows_insert_all(
    parts: Sequence[tuple[sa.Table, Sequence[Mapping[str, Any]]]],
) -> tuple[sa.TextClause, dict[str, Any]]:
    """One statement inserting each part's rows into its table, parts in order (PostgreSQL): the first ones as
    data-modifying CTEs of the last one's INSERT, so a commit's rows of several tables cost one round trip.
    PostgreSQL checks foreign keys at the end of the statement: a row may refer to one of an earlier part."""
    statement = _statement_all(tuple((table, tuple(rows[0])) for table, rows in parts))
    return statement, {f"rows{i}": _rows_json(table, rows) for i, (table, rows) in enumerate(parts)}


@functools.cache
def _statement_all(shapes: tuple[tuple[sa.Table, tuple[str, ...]], ...]) -> sa.TextClause:
    texts = [_statement_text(table, names, f"rows{i}") for i, (table, names) in enumerate(shapes)]
    ctes = ", ".join(f"inserted{i} AS ({text})" for i, text in enumerate(texts[:-1]))
    return sa.text(f"WITH {ctes} {texts[-1]}" if ctes else texts[-1])


def _rows_json(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> str:
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
    return fastjson.text(rows, default=_plain)


# Bound on the values of one IN (...) list on SQLite: well under its parameter limit.
_IN_CHUNK = 500


def one_of_chunks(column: sa.ColumnElement[Any], values: Sequence[Any], dialect: str) -> list[sa.ColumnElement[bool]]:
    """Conditions `column` is one of `values`, to run one query each: on PostgreSQL one, `column = ANY(array)`
    (one parameter: the statement's text, and its prepared plan, whatever the number of values); on SQLite, for
    more strings than one chunk, one `IN (SELECT value FROM json_each(...))`; otherwise an IN list per chunk."""
    if not values:
        return []
    if dialect == "postgresql":
        # Strings as TEXT[]: a cast to the column's VARCHAR(n)[] would cut a longer value down to one that matches.
        element = sa.Text() if isinstance(column.type, sa.String) else column.type
        return [column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(element)))]
    if dialect == "sqlite" and len(values) > _IN_CHUNK and all(value.__class__ is str for value in values):
        # SQLite, many strings (a full batch's intake keys): one JSON array read by json_each, one parameter, so
        # SQLAlchemy neither expands nor processes a parameter per value; the column's index is still used. For a
        # few values the IN list costs SQLite less (measured at batches of 20).
        listed = sa.func.json_each(sa.bindparam(None, dumps(list(values)), type_=sa.Text())).table_valued("value")
        return [column.in_(sa.select(listed.c.value))]
    return [column.in_(values[start : start + _IN_CHUNK]) for start in range(0, len(values), _IN_CHUNK)]


class JsonText(str):
    """A JSON column's value already encoded as JSON text (exactly as the column's own encoding would give it):
    `driver_insert` writes it as it is. The outbox's envelope and the creation cell share their case's encoded
    snapshot this way instead of encoding it twice (SQLite; see unit_of_work.py)."""

    __slots__ = ()


# The standard library's C encoder made once, with json.dumps's defaults (separators ", " and ": ", ASCII only, NaN
# allowed): the same text as json.dumps, without the per-call encoder set-up and circular-reference bookkeeping
# (what is encoded here is plain data built by this process: dicts, lists, strings, numbers).
_c_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]


def _raise_not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if _c_encoder is not None:
    _encode_chunks = _c_encoder(
        None, _raise_not_serializable, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )

    def dumps(value: Any) -> str:
        """json.dumps(value), faster."""
        return "".join(_encode_chunks(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    dumps = json.dumps


def _utc_text(value: Any, generic: Any) -> Any:
    """A UTC datetime as SQLite's DATETIME stores it (checked equal to SQLAlchemy's text by `_fast_conversion`)."""
    if value.__class__ is datetime and value.tzinfo is UTC:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return generic(value)


def _fast_conversion(column: sa.Column[Any], dialect: sa.Dialect, generic: Any) -> Any:
    """A faster conversion giving the same text as `generic` (SQLAlchemy's), for the column types batch creation
    writes in bulk on SQLite: UTC datetimes and JSON (which also takes `JsonText` as it is). None when there is none;
    a probe checks the faster one gives the same text."""
    if dialect.name != "sqlite":
        return None
    if isinstance(column.type, sa.TypeDecorator) and isinstance(column.type.impl_instance, sa.DateTime):
        probes = [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)]
        if all(_utc_text(p, generic) == generic(p) for p in probes):
            return functools.partial(_utc_text, generic=generic)
        return None
    if isinstance(column.type, sa.JSON):
        probe = {"a": ["b", 1, 2.5, None, True], "ü": {}}
        encoder = dumps if dumps(probe) == generic(probe) else generic

        def encode(value: Any) -> Any:
            # As a plain str: the driver binds a subclass of str through its slower adaptation path.
            return str(value) if value.__class__ is JsonText else encoder(value)

        return encode
    return None


@functools.lru_cache(maxsize=256)  # keyed by the engine's dialect too: bounded, tests open many
def _driver_insert(
    table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect
) -> tuple[str, Any, tuple[tuple[int, Any, Any], ...]]:
    """The INSERT's text in the driver's own form (positional placeholders), a getter of a row's values in
    placeholder order, and per placeholder whose values are converted first (its type's bind processor, or a faster
    one giving the same stored text): its position, the conversion, and the value None converts to."""
    compiled = sa.insert(table).values({name: sa.bindparam(name) for name in names}).compile(dialect=dialect)
    if not compiled.positional or sorted(compiled.positiontup or []) != sorted(names):
        raise ValueError(f"{dialect.name}: no positional INSERT for {names}")
    order = list(compiled.positiontup or [])
    conversions = []
    for position, name in enumerate(order):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            # e.g. JSON's None, the text "null": computed once, not encoded per row
            conversions.append((position, _fast_conversion(table.c[name], dialect, process) or process, process(None)))
    getter = operator.itemgetter(*order) if len(order) > 1 else (lambda row, name=order[0]: (row[name],))
    return compiled.string, getter, tuple(conversions)


def driver_insert(
    table: sa.Table, rows: Sequence[Mapping[str, Any]], dialect: sa.Dialect
) -> tuple[str, list[tuple[Any, ...]]]:
    """`rows` (dicts with the same keys) as the driver's executemany takes them (SQLite: qmark placeholders, one
    tuple per row), converted exactly as SQLAlchemy would, without its per-row parameter processing."""
    sql, getter, conversions = _driver_insert(table, tuple(rows[0]), dialect)
    if not conversions:
        return sql, [getter(row) for row in rows]
    converted: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(getter(row))
        for position, convert, none_value in conversions:
            value = values[position]
            values[position] = none_value if value is None else convert(value)
        converted.append(tuple(values))
    return sql, converted
