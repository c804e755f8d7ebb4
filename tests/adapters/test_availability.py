"""`is_unavailable`: real failures of real clients, told apart from errors that are the request's (or a bug)."""

from __future__ import annotations

import socket
import sqlite3

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from casem.adapters.availability import is_unavailable
from casem.adapters.bus.port import BusUnavailable, PublishError
from casem.adapters.search.opensearch import OpenSearchSearch
from casem.adapters.search.port import SearchBackendError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


async def _error_of(coro) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as caught:
        await coro
    return caught.value


async def test_postgres_that_is_not_there_is_unavailable() -> None:
    engine = create_async_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/postgres")

    async def query() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    try:
        assert is_unavailable(await _error_of(query()))
    finally:
        await engine.dispose()


async def test_a_bad_statement_is_not_an_outage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")

    async def query() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))

    try:
        error = await _error_of(query())
        assert isinstance(error, sa.exc.OperationalError)  # sqlite3 calls this "operational" too
        assert not is_unavailable(error)
    finally:
        await engine.dispose()
    assert not is_unavailable(sqlite3.OperationalError("no such table: x"))
    assert is_unavailable(sqlite3.OperationalError("database is locked"))


async def test_search_engine_that_is_not_there_is_unavailable() -> None:
    backend = OpenSearchSearch(f"http://127.0.0.1:{_closed_port()}")
    try:
        error = await _error_of(backend.ensure_index("case-management"))
        assert isinstance(error, SearchBackendError) and is_unavailable(error)
    finally:
        await backend.close()
    assert not is_unavailable(SearchBackendError("bulk write failed: mapper_parsing_exception"))
    assert is_unavailable(SearchBackendError("HTTP 503", unavailable=True))


def test_the_rest() -> None:
    assert is_unavailable(BusUnavailable("Kafka unreachable"))
    assert not is_unavailable(PublishError("topic 'x' does not exist"))
    assert is_unavailable(ConnectionRefusedError())
    assert not is_unavailable(FileNotFoundError(2, "no such file"))
    assert not is_unavailable(ValueError("bad input"))
    # Wrapped: a transport error anywhere in the cause chain counts.
    try:
        try:
            raise httpx.ConnectError("refused")
        except httpx.ConnectError as inner:
            raise RuntimeError("the call failed") from inner
    except RuntimeError as outer:
        assert not is_unavailable(outer)  # httpx errors alone are not judged: only the search adapter's
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as inner:
            raise RuntimeError("the call failed") from inner
    except RuntimeError as outer:
        assert is_unavailable(outer)
