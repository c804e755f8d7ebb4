"""Statements sent to PostgreSQL together (libpq pipeline mode): one round trip for several, on the connection of
an SQLAlchemy `AsyncConnection` and in its transaction.

On a busy machine every round trip is a wait for the server process's turn on a CPU; a hot loop that runs a few
small statements before its query (a BEGIN, settings for the transaction) pays for each of them.

The driver's errors leave as SQLAlchemy's (`DBAPIError`, the driver's error as `.orig`), as they would from a
statement SQLAlchemy sent: callers and the HTTP layer judge them the same way (a lost server is a disconnect,
answered 503 with Retry-After), and a connection found dead is dropped from the pool rather than handed out again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def _driver(conn: AsyncConnection) -> AsyncIterator[Any]:
    """`conn`'s driver connection, its errors raised as SQLAlchemy's; a connection they left broken is invalidated."""
    driver = (await conn.get_raw_connection()).driver_connection
    try:
        yield driver
    except psycopg.Error as exc:
        lost = driver.broken or driver.closed
        if lost:
            await conn.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, psycopg.Error, connection_invalidated=lost) from exc


async def fetch_after(conn: AsyncConnection, setup: Sequence[str], query: str, *, binary: bool = False) -> list[Any]:
    """The rows of `query` (named tuples) run after the `setup` statements, all sent at once on `conn`'s driver
    connection (psycopg on PostgreSQL). The driver begins the transaction with them if none is open yet; SQLAlchemy
    goes on in that same transaction (it commits or rolls back on the same connection). Statements are SQL text
    without parameters. `binary`: the rows come in PostgreSQL's binary format (the same values; numbers, booleans and
    bytea need no parsing from text)."""
    async with _driver(conn) as driver, driver.pipeline():
        for statement in setup:
            await driver.execute(statement)
        async with driver.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(query, binary=binary)
            return await cursor.fetchall()


async def execute_then_commit(conn: AsyncConnection, statement: str, params: Sequence[Any]) -> None:
    """`statement` (psycopg placeholders) and the transaction's COMMIT, sent at once on `conn`'s driver connection.
    The caller still commits its SQLAlchemy transaction after: the driver finds nothing left to do, and SQLAlchemy
    closes its transaction. If the statement fails, nothing is committed (the pipeline stops at the error)."""
    async with _driver(conn) as driver, driver.pipeline():
        await driver.execute(statement, params)
        await driver.commit()


async def execute_commit_then_fetch(
    conn: AsyncConnection,
    statement: str,
    params: Sequence[Any],
    setup: Sequence[str],
    query: str,
    *,
    binary: bool = False,
) -> list[Any]:
    """`statement` and the transaction's COMMIT, then a new transaction with the `setup` statements and `query`, all
    sent at once on `conn`'s driver connection: one round trip where a commit and the next transaction's first query
    took two. The rows of `query` (named tuples) are returned in the new transaction, still open: the caller's
    SQLAlchemy transaction now stands for it (its commit or rollback ends it). When this raises, whether the COMMIT
    happened is unknown, as when a connection is lost during a commit. `binary` as for `fetch_after`."""
    async with _driver(conn) as driver, driver.pipeline():
        await driver.execute(statement, params)
        # As statements, not the driver's commit(): that waits for its answer before anything else is sent.
        await driver.execute("COMMIT")
        await driver.execute("BEGIN")
        for setting in setup:
            await driver.execute(setting)
        async with driver.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(query, binary=binary)
            return await cursor.fetchall()


async def fetch_then_commit(
    conn: AsyncConnection, setup: Sequence[str], query: str, params: Sequence[Any]
) -> list[tuple[Any, ...]]:
    """The rows of `query` (psycopg placeholders) run after the `setup` statements and followed by the transaction's
    COMMIT, all sent at once on `conn`'s driver connection; the rows are read once the commit is sent, so the whole
    exchange is one round trip. If a statement fails, nothing is committed (the pipeline stops at the error)."""
    async with _driver(conn) as driver, driver.pipeline():
        for statement in setup:
            await driver.execute(statement)
        cursor = await driver.execute(query, params)
        await driver.commit()
        return await cursor.fetchall()
