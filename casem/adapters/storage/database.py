"""Engines per tenant: a write engine (master) and a read engine (replica when configured).

SQLite (the embedded default) runs in WAL mode; write transactions start with BEGIN IMMEDIATE
so concurrent writers queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from casem.adapters.private_files import private_sqlite_file
from casem.adapters.storage.tables import start_mappers
from casem.topology.config import database_endpoints
from casem.topology.tenants import DatabaseEndpoints

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        private_sqlite_file(path)  # 0600 in a 0700 directory; SQLite gives -wal and -shm the same mode
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_engine(url: str, *, for_writes: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, immediate=for_writes)
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@dataclass
class TenantDatabase:
    tenant: str
    endpoints: DatabaseEndpoints
    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    def sessions(self, *, read_only: bool = False) -> async_sessionmaker:
        return async_sessionmaker(self.reader if read_only else self.writer, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def open_tenant_database(tenant: str, endpoints: DatabaseEndpoints | None = None) -> TenantDatabase:
    start_mappers()
    endpoints = endpoints or database_endpoints(tenant)
    writer = make_engine(endpoints.master, for_writes=True)
    if endpoints.replica:
        reader = make_engine(endpoints.replica, for_writes=False)
    elif endpoints.master.startswith("sqlite"):
        # Same file, but reads begin deferred so they never wait behind a writer in WAL mode.
        reader = make_engine(endpoints.master, for_writes=False)
    else:
        reader = writer
    return TenantDatabase(tenant=tenant, endpoints=endpoints, writer=writer, reader=reader)
