"""Engines per tenant: a write engine (master) and a read engine (replica when configured).

SQLite (the embedded default) runs in WAL mode; write transactions start with BEGIN IMMEDIATE
so concurrent writers queue for the file's one write lock instead of failing on a lock upgrade. A writer waits
for it in short polls (`_begin_immediate`), not in SQLite's busy handler, which sleeps up to 100 ms at a time.

Read-your-writes with a replica (`WriteFences`): a session (one API caller) that wrote reads from the master
until the replica has replayed past its write, then from the replica again. The write's position is the
master's WAL position right after its commit (`pg_current_wal_lsn()`); each later read of that session asks
the replica how far it has replayed (`pg_last_wal_replay_lsn()`, one cheap query) and stays on the master
while the replica is behind. Why positions rather than only a time window: a window either waits longer than
the lag (reads pile onto the master for nothing) or shorter (a lagging replica serves stale reads); positions
are exact. The window still bounds it (CASEM_READ_YOUR_WRITES_SECONDS, default 30): after it, or when the
replica cannot tell its position (not a streaming replica), the session goes back to the replica, so a replica
that stopped replaying cannot silently move every reader onto the master. Sessions are tracked per process:
behind a load balancer, a caller's requests should stick to one case-api (or the lag stays visible to it).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from casem.adapters.doorbell import Doorbells
from casem.adapters.private_files import private_sqlite_file
from casem.adapters.sqlite_locking import WRITE_LOCK_POLL_S
from casem.adapters.storage import sqlite_driver
from casem.adapters.storage.tables import start_mappers
from casem.topology.config import database_endpoints
from casem.topology.tenants import DatabaseEndpoints

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A writer polls for the write lock (casem/adapters/sqlite_locking.py). Under a steady stream of intakes
# (bench/intake_e2e.py, sustained, 30 s) case-api's BEGIN waited p90 20 / p99 56 ms with SQLite's busy handler and
# p90 18 / p99 39 ms with these polls; the relay's p90 57 / p99 331 ms and p90 27 / p99 96 ms.
# Connections a pool keeps open between requests. Past its size a pool opens "overflow" connections and closes
# each one as it is returned: with more concurrent requests than the size, every request paid a connect (a new
# thread and four PRAGMAs on SQLite, a TCP connection and authentication on PostgreSQL). Readers are cheap to
# keep; SQLite writers take turns on the file's one write lock, so more of them only wait longer.
SQLITE_READ_POOL = {"pool_size": 32, "max_overflow": 32}
SQLITE_WRITE_POOL = {"pool_size": 15, "max_overflow": 0}  # the 5 + 10 it had, kept open
POSTGRES_POOL = {"pool_size": 20, "max_overflow": 20}


class TrackingSession(Session):
    """A session that hands every object it loads or adds to `info["track"]` when set (the unit of work keeps
    its aggregates alive until commit). The listeners are registered once, on this class: registering them on
    each session cost more than the point select a request makes."""


@event.listens_for(TrackingSession, "loaded_as_persistent")
@event.listens_for(TrackingSession, "transient_to_pending")
def _hand_over(session: Session, obj: Any) -> None:
    track = session.info.get("track")
    if track is not None:
        track(obj)


def _sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        private_sqlite_file(path)  # 0600 in a 0700 directory; SQLite gives -wal and -shm the same mode
    in_memory = not path or path == ":memory:" or "mode=memory" in url  # one shared connection (StaticPool)
    pool = {} if in_memory else SQLITE_WRITE_POOL if immediate else SQLITE_READ_POOL
    engine = create_async_engine(
        sqlite_driver.engine_url(url), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool
    )

    # A writer holding BEGIN IMMEDIATE's lock meets no other lock until it commits (WAL): its connection needs no
    # busy handler, and waits for the lock in `_begin_immediate` instead. A reader keeps SQLite's.
    polled = immediate and not in_memory

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={0 if polled else SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if polled:
            _begin_immediate(conn)
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _begin_immediate(conn: Any) -> None:
    """BEGIN IMMEDIATE, polled while another connection (of this process or another) holds the write lock; the
    wait ends a few milliseconds at most after the lock is free. Called in SQLAlchemy's greenlet on the event
    loop's thread, so the pauses are the loop's (other requests run meanwhile). Past the busy timeout, or on any
    other error, one last BEGIN through SQLAlchemy raises the error as every other statement's is raised."""
    cursor = conn.connection.dbapi_connection.cursor()
    driver_error = conn.dialect.loaded_dbapi.OperationalError
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause, longest = WRITE_LOCK_POLL_S
    try:
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except driver_error as error:
                if "locked" not in str(error) or time.monotonic() + pause > deadline:
                    break
            await_only(asyncio.sleep(pause))
            pause = min(pause * 2, longest)
    finally:
        cursor.close()
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out; one used more recently
# is not (see `ping_when_idle`).
PING_IF_IDLE_S = 1.0
_USED_AT = "casem_used_at"  # in a pool record's info: when its connection was last opened or returned (monotonic)


def ping_when_idle(engine: AsyncEngine, idle_s: float = PING_IF_IDLE_S) -> None:
    """Ping a pooled connection before handing it out only when it sat idle for `idle_s` or more. SQLAlchemy's
    pre-ping pings on every checkout: a round trip before every request's first statement, to catch what is
    nearly always a connection returned a few milliseconds earlier. A server that went away is still found out:
    an idle connection fails its ping and the pool drops every connection it held (as pre-ping does); a
    recently used one fails its statement, which SQLAlchemy reports as a disconnect (HTTP answers 503 with
    Retry-After) and which drops the pool's connections too."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "connect")
    def _opened(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_USED_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get(_USED_AT)
        if used_at is not None and time.monotonic() - used_at < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError() from exc  # the pool reconnects, once, and drops the others
            raise


def make_engine(url: str, *, for_writes: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, immediate=for_writes)
    engine = create_async_engine(url, **POSTGRES_POOL)
    ping_when_idle(engine)
    return engine


DEFAULT_FENCE_SECONDS = 30.0
MAX_FENCES = 100_000  # sessions remembered at once; the oldest are forgotten first


def parse_lsn(text: str) -> int:
    """A PostgreSQL WAL position (`16/B374D848`) as a number, for comparing."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class WriteFences:
    """Per session: where the master's WAL was after the session's last write, and when (monotonic)."""

    window_s: float = DEFAULT_FENCE_SECONDS
    fences: dict[str, tuple[int | None, float]] = field(default_factory=dict)

    def written(self, session: str, lsn: int | None, now: float | None = None) -> None:
        self.fences.pop(session, None)
        self.fences[session] = (lsn, time.monotonic() if now is None else now)
        while len(self.fences) > MAX_FENCES:
            self.fences.pop(next(iter(self.fences)))

    def needs_master(self, session: str | None, replayed: int | None, now: float | None = None) -> bool:
        """Whether the session must read from the master, given how far the replica has replayed."""
        fence = self.fences.get(session) if session else None
        if fence is None:
            return False
        lsn, at = fence
        now = time.monotonic() if now is None else now
        if now - at > self.window_s or (lsn is not None and replayed is not None and replayed >= lsn):
            del self.fences[session]  # type: ignore[arg-type]
            return False
        return True

    def pending(self, session: str | None) -> bool:
        return bool(session) and session in self.fences


def fence_window(env: dict[str, str] | None = None) -> float:
    value = (os.environ if env is None else env).get("CASEM_READ_YOUR_WRITES_SECONDS")
    return float(value) if value else DEFAULT_FENCE_SECONDS


@dataclass
class TenantDatabase:
    tenant: str
    endpoints: DatabaseEndpoints
    writer: AsyncEngine
    reader: AsyncEngine
    fences: WriteFences = field(default_factory=lambda: WriteFences(fence_window()))
    autocommit_engines: dict[int, AsyncEngine] = field(default_factory=dict)  # by id() of the engine they share
    master_reader: AsyncEngine | None = None  # SQLite with a replica file: reads of the master file, begun deferred
    # SQLite in a file: rung after a commit with outbox rows, so a relay in another process wakes (made when first
    # rung; casem.adapters.doorbell).
    _doorbells: Doorbells | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @property
    def has_replica(self) -> bool:
        return self.reader is not self.writer and self.endpoints.replica is not None

    def sessions(self, *, read_only: bool = False, engine: AsyncEngine | None = None) -> async_sessionmaker:
        """Sessions on `engine` (the reader for reads, the writer otherwise). On PostgreSQL a read-only session
        runs each statement in autocommit: in READ COMMITTED a transaction gives its statements nothing more (each
        takes its own snapshot), and its BEGIN and ROLLBACK were two round trips around every read. Read-only
        sessions never flush by themselves (the unit of work refuses their writes)."""
        engine = engine or (self.reader if read_only else self.writer)
        if read_only and engine.dialect.name == "postgresql":
            engine = self._autocommit(engine)
        return async_sessionmaker(
            engine, expire_on_commit=False, sync_session_class=TrackingSession, autoflush=not read_only
        )

    def _autocommit(self, engine: AsyncEngine) -> AsyncEngine:
        """`engine` with its connections in autocommit while checked out (the same pool)."""
        found = self.autocommit_engines.get(id(engine))
        if found is None:
            found = self.autocommit_engines[id(engine)] = engine.execution_options(isolation_level="AUTOCOMMIT")
        return found

    async def after_write(self, session: str | None) -> None:
        """Remember where the master was after `session`'s write, so its reads wait for the replica."""
        if not session or not self.has_replica:
            return
        lsn = None
        if self.dialect == "postgresql":
            async with self.writer.connect() as conn:
                lsn = parse_lsn(str(await conn.scalar(sa.text("SELECT pg_current_wal_lsn()"))))
        self.fences.written(session, lsn)

    async def reader_for(self, session: str | None) -> AsyncEngine:
        """The engine `session`'s reads go to: the replica, unless it has not replayed the session's write."""
        if not self.has_replica or not self.fences.pending(session):
            return self.reader
        replayed = None
        if self.reader.dialect.name == "postgresql":
            async with self.reader.connect() as conn:
                position = await conn.scalar(sa.text("SELECT pg_last_wal_replay_lsn()"))
            replayed = parse_lsn(str(position)) if position is not None else None
        return self.writer if self.fences.needs_master(session, replayed) else self.reader

    def primary_reader(self) -> AsyncEngine:
        """The engine for reads that must see every commit so far, whatever a replica has replayed (a consumer that
        converges the search index on the database: a stale read there would leave the index behind for good).
        PostgreSQL: the master (a read-only session runs it in autocommit, so nothing is locked or written).
        SQLite: the master file through an engine that begins deferred, never the writer's (BEGIN IMMEDIATE takes
        the file's write lock)."""
        if not self.has_replica:
            return self.reader  # PostgreSQL: the writer itself; SQLite: the master file, begun deferred
        if self.dialect == "postgresql":
            return self.writer
        if self.master_reader is None:
            self.master_reader = make_engine(self.endpoints.master, for_writes=False)
        return self.master_reader

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database file the writer commits to; None on PostgreSQL and for an in-memory database."""
        path = self.writer.url.database if self.dialect == "sqlite" else None
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return path

    def ring_doorbells(self) -> None:
        """Wake waiters on this database in other processes (a relay, after a commit with outbox rows): SQLite in a
        file only, where no LISTEN/NOTIFY carries the wake-up. Never raises."""
        if self._doorbells is None:
            path = self.sqlite_file
            if path is None:
                return
            self._doorbells = Doorbells(path)
        self._doorbells.ring()

    def file_stamp(self) -> tuple[int, ...] | None:
        """On SQLite, the state (inode, size, modification time) of the database file and its write-ahead log:
        a commit, by any process, changes it, so an unchanged stamp means nothing was committed in between.
        None elsewhere (PostgreSQL, an in-memory database): no such shortcut there."""
        path = self.sqlite_file
        if path is None:
            return None
        stamp: list[int] = []
        for suffix in ("", "-wal"):
            try:
                found = os.stat(path + suffix)
            except OSError:
                stamp += (0, 0, 0)
                continue
            stamp += (found.st_ino, found.st_size, found.st_mtime_ns)
        return tuple(stamp)

    async def dispose(self) -> None:
        if self._doorbells is not None:
            self._doorbells.close()
            self._doorbells = None
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        if self.master_reader is not None:
            await self.master_reader.dispose()


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
