"""SQLAlchemy's aiosqlite dialect, with a statement run in one trip to the connection's thread.

aiosqlite runs each call on a SQLite connection in a thread of its own, and SQLAlchemy's adapted cursor makes four
calls a statement (open a cursor, execute, fetch the rows, close the cursor): four trips through a queue, the
thread, the event loop's self-pipe and a task wake-up. On the embedded stack those trips cost more than SQLite
itself: a batch of case creations (BEGIN, five statements, COMMIT) made 22 of them. Here a statement is one
function run in that thread, and a rollback of a connection with no transaction open (the pool's reset after a
commit) makes none.

It leans on two private names of aiosqlite (`Connection._execute`, `Connection._conn`), stable since 0.17;
`ONE_HOP` says whether they are there, and without them the dialect is aiosqlite's own
(tests/adapters/test_sqlite_driver.py fails then, so that an upgrade does not slow casem down unnoticed).
Use it with the URL scheme `sqlite+casem_aiosqlite`; `engine_url` rewrites an aiosqlite URL to it."""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.engine import make_url
from sqlalchemy.util import await_only

DRIVER = "casem_aiosqlite"
ONE_HOP = hasattr(aiosqlite.Connection, "_execute") and isinstance(
    getattr(aiosqlite.Connection, "_conn", None), property
)


def _run_statement(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any] | None, int, int | None]:
    """In aiosqlite's thread: the statement, its rows, and what the cursor said of it, the cursor closed."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        return description, cursor.fetchall() if description else None, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """No driver cursor is kept: each statement opens, runs, fetches and closes one in aiosqlite's thread, and
    what SQLAlchemy reads afterwards (description, rowcount, lastrowid, rows) is kept here."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    _awaitable_cursor_close = False  # there is no driver cursor left to close

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._connection
        try:
            description, rows, rowcount, lastrowid = await_only(
                connection._execute(_run_statement, connection._conn, operation, parameters, many)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
        self._rows = collections.deque(rows) if rows else collections.deque()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._run(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._run(operation, seq_of_parameters, many=True)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    _cursor_cls = OneHopCursor

    def rollback(self) -> None:
        # The pool rolls back every connection it gets back, most often just after a commit: nothing to undo then.
        # Read here, not in aiosqlite's thread: a connection is used by one task at a time, so no statement of it
        # is running meanwhile.
        driver = self._connection._connection
        if driver is not None and not driver.in_transaction:
            return
        super().rollback()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return OneHopConnection(self, stock._connection)


class OneHopSQLiteDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_aiosqlite_dbapi:
        return OneHopDBAPI(aiosqlite, sqlite3)


registry.register(f"sqlite.{DRIVER}", __name__, "OneHopSQLiteDialect")


def engine_url(url: str) -> Any:
    """An aiosqlite URL as this dialect's (any other URL as it is) when the one-hop path is available."""
    parsed = make_url(url)
    if ONE_HOP and parsed.drivername == "sqlite+aiosqlite":
        return parsed.set(drivername=f"sqlite+{DRIVER}")
    return parsed
