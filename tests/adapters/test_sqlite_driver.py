"""The embedded stack's SQLite dialect: a statement is one trip to aiosqlite's thread, and it behaves as
aiosqlite's own dialect does (rows, row counts, last row ids, errors, rollbacks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from casem.adapters.storage import sqlite_driver
from casem.adapters.storage.database import open_tenant_database
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Each call run in an aiosqlite connection's thread, by the name of what it ran."""
    counted: Counter[str] = Counter()
    run_in_thread = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counted[getattr(fn, "__name__", repr(fn))] += 1
        return await run_in_thread(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return counted


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(sqlite_driver.engine_url(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}"))
    async with made.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield made
    await made.dispose()


def test_the_one_hop_path_is_available() -> None:
    # If this fails, aiosqlite no longer has Connection._execute or Connection._conn: casem still works on
    # aiosqlite's own dialect, with four trips to its thread a statement instead of one. Adapt sqlite_driver.
    assert sqlite_driver.ONE_HOP
    assert sqlite_driver.engine_url("sqlite+aiosqlite:///x.db").drivername == "sqlite+casem_aiosqlite"
    assert sqlite_driver.engine_url("postgresql+asyncpg://h/db").drivername == "postgresql+asyncpg"


async def test_the_tenant_databases_use_it(tmp_path: Path) -> None:
    database = open_tenant_database(
        CASE_MANAGEMENT, DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp_path / 'tenant.db'}")
    )
    try:
        assert database.writer.dialect.driver == sqlite_driver.DRIVER
    finally:
        await database.dispose()


async def test_a_statement_is_one_trip_and_a_clean_return_to_the_pool_none(
    engine: AsyncEngine, trips: Counter[str]
) -> None:
    async with engine.connect() as connection:
        trips.clear()
        rows = (await connection.execute(sa.text("SELECT 1, 'a' UNION ALL SELECT 2, 'b'"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
        assert trips == Counter({"_run_statement": 1})
        await connection.execute(sa.text("INSERT INTO t (name) VALUES ('x')"))
        await connection.commit()
        trips.clear()
    assert trips == Counter()  # the pool's reset after a commit: no transaction left to roll back


async def test_counts_ids_and_descriptions_are_those_of_the_statement(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(sa.text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await connection.execute(sa.text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
        assert many.rowcount == 2
        updated = await connection.execute(sa.text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        returned = await connection.execute(sa.text("UPDATE t SET name = 'z' WHERE id = 1 RETURNING id, name"))
        assert list(returned.keys()) == ["id", "name"] and [tuple(r) for r in returned] == [(1, "z")]
        nothing = await connection.execute(sa.text("SELECT id FROM t WHERE id > 99"))
        assert list(nothing.keys()) == ["id"] and nothing.all() == []
        partial = await connection.execute(sa.text("SELECT id FROM t ORDER BY id"))
        assert [r.id for r in partial.fetchmany(2)] == [1, 2] and [r.id for r in partial] == [3]


async def test_an_error_is_the_driver_error_and_the_connection_rolls_back(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("INSERT INTO t (name) VALUES ('kept')"))
        await connection.commit()
        await connection.execute(sa.text("INSERT INTO t (name) VALUES ('undone')"))
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await connection.execute(sa.text("INSERT INTO t (name) VALUES ('kept')"))
        await connection.rollback()
        names = (await connection.execute(sa.text("SELECT name FROM t"))).scalars().all()
    assert names == ["kept"]


async def test_a_transaction_left_open_is_rolled_back_when_the_connection_returns(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("INSERT INTO t (name) VALUES ('never committed')"))
    async with engine.connect() as connection:
        assert (await connection.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 0
