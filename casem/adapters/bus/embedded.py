"""Embedded durable log: the bus port on one SQLite file (`<data dir>/bus.db`), for laptops.

Why SQLite in WAL mode rather than append-only segment files plus an offsets file:

* Every operation of the bus that must be atomic across processes is a transaction:
  allocating offsets and appending a batch (all or nothing), committing offsets only while
  the partition's lease is still held (fencing a member that lost it), claiming and
  releasing partition leases. With segment files each of these needs its own file-lock
  protocol and crash-recovery code (torn writes, index rebuilds); SQLite's locking and
  WAL recovery already are that code, well tested, in the standard library.
* WAL lets readers (consumers) run while one writer appends, across processes on one
  machine. Its single-writer limit costs little here: producers write whole batches in one
  short transaction, which is far above a laptop's event rate.
* `synchronous=FULL` (the default here) makes an acknowledged batch survive a power cut,
  as `acks=all` makes it survive a broker loss; NORMAL trades that for speed.

Idle members: a member that finds nothing waits, doubling its wait up to `IDLE_WAIT_MAX_S`. An append in this
process wakes it at once (casem.adapters.wakeup); one made by another process too, through the log's doorbells
(casem.adapters.doorbell: each producer rings them after each batch, a byte into a FIFO the member's process
holds in its event loop). Where FIFOs cannot be made, this process's one `_AppendWatch` notices the append
within a second: it looks at the log's marker file (every producer appends a byte to it after each batch) and
wakes the members. The heartbeat thread keeps an idle member's membership and leases and wakes it when its share
of the partitions changes (a member joined, left or died), so an idle process does next to nothing.

Consumer groups: members register in `bus_members` with an expiry they renew (heartbeat).
The live members of a group split each topic's partitions deterministically (partition p
goes to the (p mod n)-th member by id), and a member fetches from a partition only while
it holds that partition's row in `bus_leases`. A lease is taken only when free, expired or
held by a member that is gone, so two members never own a partition at once; a commit is
accepted only from the lease holder. A member that leaves releases its leases at once; one
that dies loses them after `session_timeout_s`, and its uncommitted messages are delivered
again to the next owner (at-least-once, like Kafka).

Retention (`Retention`, from CASEM_BUS_RETENTION_HOURS / CASEM_BUS_RETENTION_BYTES): a message is deleted once
it is older than the age limit, or while its partition is over the size limit (oldest first), but never
while a consumer group still needs it: no message at or past the lowest offset a group has committed on that
partition goes, and none at all while a group known on the topic (committed elsewhere on it, or a live
member subscribed to it) has committed nothing on the partition. The newest message of a partition is
always kept: the next offset is computed from it, so offsets keep growing after a cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from casem.adapters.bus._threads import Worker
from casem.adapters.bus.partitioning import partition_for
from casem.adapters.bus.port import (
    BusError,
    BusUnavailable,
    ConsumerOptions,
    Delivery,
    Headers,
    Message,
    NotAssigned,
    OutgoingMessage,
    PublishError,
    TopicNotFound,
    TopicPartition,
)
from casem.adapters.doorbell import Doorbells, Listening, listen
from casem.adapters.private_files import private_sqlite_file
from casem.adapters.sqlite_locking import begin_immediate
from casem.adapters.wakeup import Waiter, bus_channel, call_on, notify, waiter

log = logging.getLogger(__name__)

# An idle member's waits between fetches: from the first to the most, doubling while nothing comes. The longest
# is a safety net: appends here and in other processes, and changes of its share, wake a member.
FIRST_IDLE_WAIT_S = 0.005
IDLE_WAIT_MAX_S = 30.0
# How often a process looks at the log's marker file for appends made by other processes: the safety net behind
# the doorbells (where FIFOs cannot be made, or a ring failed), so the longest such an append waits.
WATCH_EVERY_S = 1.0
MARKER_SUFFIX = "-appended"
MARKER_MAX_BYTES = 1 << 16  # the marker grows a byte per batch; a producer empties it past this


def _marker_of(path: Path) -> Path:
    return path.with_name(path.name + MARKER_SUFFIX)


Stamp = tuple[int, int, int] | None
_lock = threading.Lock()


def _stamp(stat: os.stat_result) -> Stamp:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class _AppendWatch:
    """One per log and event loop: wakes this process's members when another process appended to the log, so
    that the members themselves need not look now and then. (It cannot tell this process's appends from the
    others': after those it wakes the members once more, which costs a busy process an empty fetch a second.)"""

    def __init__(self, marker: Path, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        self.marker = marker
        self.channel = channel
        self.users = 0
        self._loop = loop
        self._seen = self._read()
        self._timer: asyncio.TimerHandle | None = loop.call_later(WATCH_EVERY_S, self._tick)

    def _read(self) -> Stamp:
        try:
            return _stamp(os.stat(self.marker))
        except OSError:
            return None

    def _tick(self) -> None:
        stamp = self._read()
        if stamp != self._seen:
            self._seen = stamp
            notify(self.channel)
        self._timer = self._loop.call_later(WATCH_EVERY_S, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_watches: dict[tuple[str, int], _AppendWatch] = {}


def _watch(marker: Path, channel: str) -> _AppendWatch:
    loop = asyncio.get_running_loop()
    with _lock:
        watch = _watches.get((channel, id(loop)))
        if watch is None or watch._loop is not loop:
            watch = _watches[(channel, id(loop))] = _AppendWatch(marker, channel, loop)
        watch.users += 1
        return watch


def _unwatch(watch: _AppendWatch) -> None:
    with _lock:
        watch.users -= 1
        if watch.users > 0:
            return
        if _watches.get((watch.channel, id(watch._loop))) is watch:
            del _watches[(watch.channel, id(watch._loop))]
    call_on(watch._loop, watch.stop)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL CHECK (partitions > 0)
);
CREATE TABLE IF NOT EXISTS bus_messages (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    msg_offset INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers BLOB NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, msg_offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_group_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_members (
    grp TEXT NOT NULL,
    member_id TEXT NOT NULL,
    topics TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_leases (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    member_id TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
"""


def _now_ms() -> int:
    # Wall clock, not monotonic: expiries are compared across processes.
    return time.time_ns() // 1_000_000


def _encode_headers(headers: Headers) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw = name.encode()
        out += struct.pack(">HI", len(raw), len(value)) + raw + value
    return bytes(out)


def _decode_headers(blob: bytes) -> Headers:
    headers: list[tuple[str, bytes]] = []
    i = 0
    while i < len(blob):
        name_len, value_len = struct.unpack_from(">HI", blob, i)
        i += 6
        name = blob[i : i + name_len].decode()
        i += name_len
        headers.append((name, bytes(blob[i : i + value_len])))
        i += value_len
    return tuple(headers)


DEFAULT_RETENTION_HOURS = 168.0  # Kafka's default log.retention.hours


@dataclass(frozen=True)
class Retention:
    max_age_s: float | None = DEFAULT_RETENTION_HOURS * 3600
    max_bytes: int | None = None  # per partition; None: no size limit (Kafka's default too)
    check_every_s: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Retention:
        hours = env.get("CASEM_BUS_RETENTION_HOURS")
        size = env.get("CASEM_BUS_RETENTION_BYTES")
        every = env.get("CASEM_BUS_RETENTION_CHECK_SECONDS")
        return cls(
            max_age_s=float(hours) * 3600 if hours and float(hours) > 0 else (None if hours else cls.max_age_s),
            max_bytes=int(size) if size and int(size) > 0 else None,
            check_every_s=float(every) if every else cls.check_every_s,
        )


@dataclass
class RetentionReport:
    deleted: int = 0  # messages removed
    held: int = 0  # messages past the limits but kept because a consumer group has not committed them


def _message_size() -> str:
    return "(LENGTH(value) + COALESCE(LENGTH(key), 0) + LENGTH(headers))"


def _group_floor(conn: sqlite3.Connection, topic: str, partition: int, now: int) -> int | None:
    """The lowest offset some group still needs on the partition (None: no group reads the topic)."""
    committed = conn.execute(
        "SELECT grp, next_offset FROM bus_group_offsets WHERE topic = ? AND partition = ?", (topic, partition)
    ).fetchall()
    groups = {grp for (grp,) in conn.execute("SELECT DISTINCT grp FROM bus_group_offsets WHERE topic = ?", (topic,))}
    for grp, topics in conn.execute("SELECT grp, topics FROM bus_members WHERE expires_ms > ?", (now,)):
        if topic in json.loads(topics):
            groups.add(grp)
    if groups - {grp for grp, _ in committed}:
        return 0  # a group reads this topic but has committed nothing here: everything is still unread
    return min((int(offset) for _, offset in committed), default=None)


def enforce_retention(conn: sqlite3.Connection, retention: Retention, now_ms: int | None = None) -> RetentionReport:
    """Delete what the retention allows, partition by partition, in one write transaction."""
    now = _now_ms() if now_ms is None else now_ms
    report = RetentionReport()
    with _write_tx(conn):
        for topic, partitions in conn.execute("SELECT name, partitions FROM bus_topics").fetchall():
            for partition in range(partitions):
                (head,) = conn.execute(
                    "SELECT MAX(msg_offset) FROM bus_messages WHERE topic = ? AND partition = ?", (topic, partition)
                ).fetchone()
                if head is None:
                    continue
                upto = 0  # the policy drops offsets below this
                if retention.max_age_s is not None:
                    cutoff = now - int(retention.max_age_s * 1000)
                    (aged,) = conn.execute(
                        "SELECT MAX(msg_offset) FROM bus_messages WHERE topic = ? AND partition = ?"
                        " AND timestamp_ms < ?",
                        (topic, partition, cutoff),
                    ).fetchone()
                    upto = max(upto, aged + 1 if aged is not None else 0)
                if retention.max_bytes is not None:
                    # Keep the newest messages that fit in max_bytes; the rest go.
                    kept, first_kept = 0, head + 1
                    for offset, size in conn.execute(
                        f"SELECT msg_offset, {_message_size()} FROM bus_messages WHERE topic = ? AND partition = ?"
                        " ORDER BY msg_offset DESC",
                        (topic, partition),
                    ):
                        if kept + size > retention.max_bytes:
                            break
                        kept, first_kept = kept + size, offset
                    upto = max(upto, first_kept)
                upto = min(upto, head)  # the newest message stays: the next offset follows it
                floor = _group_floor(conn, topic, partition, now)
                allowed = upto if floor is None else min(upto, floor)
                if allowed > 0:
                    report.deleted += conn.execute(
                        "DELETE FROM bus_messages WHERE topic = ? AND partition = ? AND msg_offset < ?",
                        (topic, partition, allowed),
                    ).rowcount
                if upto > allowed:
                    (held,) = conn.execute(
                        "SELECT COUNT(*) FROM bus_messages WHERE topic = ? AND partition = ?"
                        " AND msg_offset >= ? AND msg_offset < ?",
                        (topic, partition, allowed, upto),
                    ).fetchone()
                    report.held += held
    return report


@dataclass(frozen=True)
class _Settings:
    path: Path
    synchronous: str
    busy_timeout_s: float


def _connect(settings: _Settings) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE takes the write lock up
    # front, so offset allocation cannot interleave between processes). busy_timeout is how
    # long a writer waits for another process's lock before the bus counts as unavailable.
    conn = sqlite3.connect(
        settings.path, timeout=settings.busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout={int(settings.busy_timeout_s * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={settings.synchronous}")
    return conn


@contextlib.contextmanager
def _write_tx(conn: sqlite3.Connection) -> Iterator[None]:
    try:
        # Polled: SQLite's busy handler kept writers asleep for up to 100 ms after the lock was free (intake,
        # relay, and every consumer's offset commits take turns on it; see casem/adapters/sqlite_locking.py).
        begin_immediate(conn)
    except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk gone, ...
        raise BusUnavailable(f"embedded bus busy or unreadable: {exc}") from exc
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        conn.execute("ROLLBACK")
        raise BusUnavailable(f"embedded bus commit failed: {exc}") from exc


class EmbeddedBus:
    """The bus in one SQLite file, shared by every process that opens the same path."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_s: float = 30.0,
        heartbeat_interval_s: float | None = None,
        max_poll_interval_s: float = 300.0,
        retention: Retention | None = None,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        private_sqlite_file(self.path)  # the log holds every tenant's events: 0600 in a 0700 directory
        self._settings = _Settings(self.path, synchronous, busy_timeout_s)
        self._heartbeat_interval_s = heartbeat_interval_s
        self._max_poll_interval_s = max_poll_interval_s
        self._worker = Worker("bus-embedded-admin")
        self._conn = self._worker.call(_connect, self._settings)
        self._worker.call(self._create_schema)
        self.retention = retention
        self._retention_stop = threading.Event()
        self._retention_thread: threading.Thread | None = None
        if retention is not None and (retention.max_age_s is not None or retention.max_bytes is not None):
            self._retention_thread = threading.Thread(
                target=self._retention_loop, args=(retention,), name="bus-embedded-retention", daemon=True
            )
            self._retention_thread.start()

    def _retention_loop(self, retention: Retention) -> None:
        """Apply the retention now and then, on a connection of its own (any process may: it is idempotent)."""
        conn = _connect(self._settings)
        try:
            while not self._retention_stop.wait(retention.check_every_s):
                try:
                    report = enforce_retention(conn, retention)
                    if report.deleted or report.held:
                        log.info("bus retention: %d messages deleted, %d held for groups", report.deleted, report.held)
                except BusError as exc:  # busy: the next round tries again
                    log.warning("bus retention skipped: %s", exc)
        finally:
            conn.close()

    async def enforce_retention(self, retention: Retention | None = None) -> RetentionReport:
        """Apply `retention` (default: the bus's) now."""
        chosen = retention or self.retention or Retention()
        return await self._worker.run(enforce_retention, self._conn, chosen)

    def _create_schema(self) -> None:
        # Read first: opening an existing log must not need the write lock.
        if self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bus_leases'").fetchone():
            return
        with _write_tx(self._conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)

    async def ensure_topic(self, name: str, partitions: int) -> int:
        if partitions < 1:
            raise ValueError(f"a topic has at least one partition, not {partitions}")

        def create() -> int:
            with _write_tx(self._conn):
                self._conn.execute(
                    "INSERT OR IGNORE INTO bus_topics (name, partitions) VALUES (?, ?)", (name, partitions)
                )
                (count,) = self._conn.execute("SELECT partitions FROM bus_topics WHERE name = ?", (name,)).fetchone()
            if count != partitions:
                log.warning("topic %s has %d partitions, not %d: left as is", name, count, partitions)
            return int(count)

        return await self._worker.run(create)

    async def partitions(self, name: str) -> int:
        def read() -> int:
            row = self._conn.execute("SELECT partitions FROM bus_topics WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise TopicNotFound(name)
            return int(row[0])

        return await self._worker.run(read)

    def producer(self) -> EmbeddedProducer:
        return EmbeddedProducer(self._settings)

    def consumer(self, group: str, topics: Sequence[str], options: ConsumerOptions | None = None) -> EmbeddedConsumer:
        options = options or ConsumerOptions()
        return EmbeddedConsumer(
            self._settings,
            group,
            topics,
            options,
            heartbeat_interval_s=self._heartbeat_interval_s or options.session_timeout_s / 5,
            max_poll_interval_s=self._max_poll_interval_s,
        )

    async def close(self) -> None:
        self._retention_stop.set()
        if self._retention_thread is not None:
            await asyncio.to_thread(self._retention_thread.join)
        await self._worker.run(self._conn.close)
        self._worker.shutdown()


class EmbeddedProducer:
    """Appends each batch in one transaction: a batch is acknowledged whole or not at all."""

    def __init__(self, settings: _Settings) -> None:
        self._worker = Worker("bus-embedded-produce")
        self._conn = self._worker.call(_connect, settings)
        self._channel = str(settings.path.resolve())
        self._marker = _marker_of(settings.path.resolve())
        self._marker_fd: int | None = None
        self._doorbells = Doorbells(settings.path.resolve())  # members waiting in other processes
        self._partitions: dict[str, int] = {}  # partition counts never change: cache them
        self._closed = False

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> Delivery:
        return (await self.publish_batch([OutgoingMessage(topic, key, value, headers)]))[0]

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        if self._closed:
            raise BusError("producer is closed")
        if not messages:
            return []
        try:
            deliveries = await self._worker.run(self._append, list(messages))
        except BusUnavailable as exc:
            raise BusUnavailable(str(exc), failed=messages) from exc
        except PublishError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise BusUnavailable(f"embedded bus write failed: {exc}", failed=messages) from exc
        notify(bus_channel(self._channel))  # members polling in this process fetch now
        return deliveries

    def _mark_appended(self) -> None:
        """Tell members in other processes (their `_AppendWatch`) that the log grew: a byte more in the marker."""
        try:
            if self._marker_fd is None:
                self._marker_fd = os.open(self._marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            # Its size only grows (but for the rare emptying), so a watcher never misses an append, however close.
            if os.write(self._marker_fd, b".") and os.fstat(self._marker_fd).st_size > MARKER_MAX_BYTES:
                os.ftruncate(self._marker_fd, 0)
        except OSError as exc:  # members elsewhere find the append at their next look
            log.warning("bus append marker not written: %s", exc)

    def _partition_count(self, topic: str) -> int | None:
        count = self._partitions.get(topic)
        if count is None:
            row = self._conn.execute("SELECT partitions FROM bus_topics WHERE name = ?", (topic,)).fetchone()
            if row is None:
                return None
            count = self._partitions[topic] = int(row[0])
        return count

    def _append(self, messages: list[OutgoingMessage]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        heads: dict[tuple[str, int], int] = {}
        now = _now_ms()
        with _write_tx(self._conn):
            for message in messages:
                count = self._partition_count(message.topic)
                if count is None:
                    raise PublishError(f"topic {message.topic!r} does not exist", failed=messages)
                partition = partition_for(message.key, count)
                head = heads.get((message.topic, partition))
                if head is None:
                    (head,) = self._conn.execute(
                        "SELECT COALESCE(MAX(msg_offset) + 1, 0) FROM bus_messages WHERE topic = ? AND partition = ?",
                        (message.topic, partition),
                    ).fetchone()
                self._conn.execute(
                    "INSERT INTO bus_messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.topic,
                        partition,
                        head,
                        message.key,
                        message.value,
                        _encode_headers(message.headers),
                        now,
                    ),
                )
                heads[(message.topic, partition)] = head + 1
                deliveries.append(Delivery(message.topic, partition, head))
        self._doorbells.ring()  # members idle in other processes fetch now
        self._mark_appended()
        return deliveries

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._worker.run(self._conn.close)
        self._worker.shutdown()
        if self._marker_fd is not None:
            os.close(self._marker_fd)
            self._marker_fd = None
        self._doorbells.close()


class EmbeddedConsumer:
    """A member of a consumer group on the embedded log (see the module docstring)."""

    # An idle poll waits on the event loop (a timer, or an append in this process) and can be cancelled.
    polls_in_loop = True

    def __init__(
        self,
        settings: _Settings,
        group: str,
        topics: Sequence[str],
        options: ConsumerOptions,
        *,
        heartbeat_interval_s: float,
        max_poll_interval_s: float,
    ) -> None:
        self.group = group
        self.member_id = uuid.uuid4().hex
        self._topics = sorted(set(topics))
        self._options = options
        self._session_ms = int(options.session_timeout_s * 1000)
        self._heartbeat_interval_s = heartbeat_interval_s
        self._max_poll_interval_s = max_poll_interval_s
        self._worker = Worker(f"bus-embedded-consume-{group}")
        self._conn = self._worker.call(_connect, settings)
        self._positions: dict[TopicPartition, int] = {}  # owned partition -> next offset to fetch
        self._last_sync = 0.0
        self._last_poll = time.monotonic()
        self._rotation = 0
        self._closed = False
        self._channel = str(settings.path.resolve())
        self._path = settings.path.resolve()
        self._marker = _marker_of(self._path)
        self._woken: Waiter | None = None  # made on the first poll, on the poller's event loop
        self._doorbell: Listening | None = None  # likewise
        self._append_watch: _AppendWatch | None = None  # likewise
        self._resync = False  # set by the heartbeat when this member's share changed: the next fetch syncs
        self.polls = 0  # calls of poll, and looks at the log they made (observability, tests)
        self.fetches = 0
        self._idle_delay = FIRST_IDLE_WAIT_S
        self._next_fetch = 0.0  # monotonic time of the next fetch while idle
        # Renews this member and its leases while the owner is busy between polls (e.g. under
        # back-pressure), like Kafka's background heartbeat; stops after max_poll_interval.
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, args=(settings,), name="bus-embedded-hb", daemon=True
        )
        self._heartbeat.start()

    # -- group membership -----------------------------------------------------------------

    def _heartbeat_loop(self, settings: _Settings) -> None:
        conn = _connect(settings)
        try:
            while not self._stop.wait(self._heartbeat_interval_s):
                if time.monotonic() - self._last_poll > self._max_poll_interval_s:
                    continue  # a stuck owner must lose its partitions
                if time.monotonic() - self._last_sync < self._heartbeat_interval_s:
                    continue  # a fetch's sync renewed the member and its leases since the last beat: no write
                now = _now_ms()
                try:
                    with _write_tx(conn):
                        conn.execute(
                            "UPDATE bus_members SET expires_ms = ? WHERE grp = ? AND member_id = ?",
                            (now + self._session_ms, self.group, self.member_id),
                        )
                        conn.execute(
                            "UPDATE bus_leases SET expires_ms = ? WHERE grp = ? AND member_id = ?",
                            (now + self._session_ms, self.group, self.member_id),
                        )
                    if self._share_changed(conn, now):
                        self._wake_for_sync()
                except (BusError, sqlite3.Error) as exc:
                    log.warning("consumer %s heartbeat failed: %s", self.group, exc)
        finally:
            conn.close()

    def _share_changed(self, conn: sqlite3.Connection, now: int) -> bool:
        """Whether this member's share of the partitions (by the live members) differs from the leases it holds."""
        members = conn.execute(
            "SELECT member_id, topics FROM bus_members WHERE grp = ? AND expires_ms >= ? ORDER BY member_id",
            (self.group, now),
        ).fetchall()
        try:
            wanted = self._share(conn, members)
        except ValueError:  # this member is not among them (expired meanwhile): it must register again
            return True
        held = {
            TopicPartition(t, p)
            for t, p in conn.execute(
                "SELECT topic, partition FROM bus_leases WHERE grp = ? AND member_id = ?", (self.group, self.member_id)
            )
        }
        return wanted != held

    def _wake_for_sync(self) -> None:
        self._resync = True
        woken = self._woken
        if woken is not None:
            woken._wake()  # thread-safe: the poll in progress, or the next one, fetches and syncs

    def _share(self, conn: sqlite3.Connection, members: list[tuple[str, str]]) -> set[TopicPartition]:
        """The partitions this member should own: partition p of a topic goes to the (p mod n)-th of the n members
        subscribed to it, by id. ValueError when this member is not among `members`."""
        wanted: set[TopicPartition] = set()
        for topic in self._topics:
            row = conn.execute("SELECT partitions FROM bus_topics WHERE name = ?", (topic,)).fetchone()
            if row is None:
                continue  # subscribed before creation: picked up once the topic exists
            sharing = [m for m, topics in members if topic in json.loads(topics)]
            mine = sharing.index(self.member_id)
            wanted.update(TopicPartition(topic, p) for p in range(row[0]) if p % len(sharing) == mine)
        return wanted

    def _sync(self) -> None:
        """Renew membership, recompute this member's share, release and claim leases."""
        now = _now_ms()
        expires = now + self._session_ms
        conn = self._conn
        with _write_tx(conn):
            conn.execute(
                "INSERT INTO bus_members (grp, member_id, topics, expires_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (grp, member_id) DO UPDATE SET expires_ms = excluded.expires_ms",
                (self.group, self.member_id, json.dumps(self._topics), expires),
            )
            conn.execute("DELETE FROM bus_members WHERE grp = ? AND expires_ms < ?", (self.group, now))
            members = conn.execute(
                "SELECT member_id, topics FROM bus_members WHERE grp = ? ORDER BY member_id", (self.group,)
            ).fetchall()
            wanted = self._share(conn, members)
            held = {
                TopicPartition(t, p)
                for t, p in conn.execute(
                    "SELECT topic, partition FROM bus_leases WHERE grp = ? AND member_id = ?",
                    (self.group, self.member_id),
                )
            }
            for tp in held - wanted:
                conn.execute(
                    "DELETE FROM bus_leases WHERE grp = ? AND topic = ? AND partition = ? AND member_id = ?",
                    (self.group, tp.topic, tp.partition, self.member_id),
                )
            for tp in wanted:
                # Take the lease only if it is ours, expired, or its holder left the group.
                conn.execute(
                    "INSERT INTO bus_leases (grp, topic, partition, member_id, expires_ms)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (grp, topic, partition) DO UPDATE"
                    " SET member_id = excluded.member_id, expires_ms = excluded.expires_ms"
                    " WHERE bus_leases.member_id = excluded.member_id OR bus_leases.expires_ms < ?"
                    " OR bus_leases.member_id NOT IN (SELECT member_id FROM bus_members WHERE grp = ?)",
                    (self.group, tp.topic, tp.partition, self.member_id, expires, now, self.group),
                )
            owned = {
                TopicPartition(t, p)
                for t, p in conn.execute(
                    "SELECT topic, partition FROM bus_leases WHERE grp = ? AND member_id = ?",
                    (self.group, self.member_id),
                )
            }
            for tp in set(self._positions) - owned:
                del self._positions[tp]
            for tp in owned - set(self._positions):
                self._positions[tp] = self._start_position(tp)
        self._last_sync = time.monotonic()

    def _start_position(self, tp: TopicPartition) -> int:
        row = self._conn.execute(
            "SELECT next_offset FROM bus_group_offsets WHERE grp = ? AND topic = ? AND partition = ?",
            (self.group, tp.topic, tp.partition),
        ).fetchone()
        if row is not None:
            return int(row[0])
        if self._options.initial_position == "earliest":
            return 0
        (head,) = self._conn.execute(
            "SELECT COALESCE(MAX(msg_offset) + 1, 0) FROM bus_messages WHERE topic = ? AND partition = ?",
            (tp.topic, tp.partition),
        ).fetchone()
        return int(head)

    def _sync_if_due(self) -> None:
        if self._resync or time.monotonic() - self._last_sync >= self._heartbeat_interval_s:
            self._resync = False
            self._sync()

    # -- the Consumer port ----------------------------------------------------------------

    async def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        self._check_open()
        self.polls += 1
        if self._woken is None:
            self._woken = waiter(bus_channel(self._channel))
            self._doorbell = listen(self._path, bus_channel(self._channel))
            self._append_watch = _watch(self._marker, bus_channel(self._channel))
        deadline = time.monotonic() + timeout
        while True:
            # A caller asking not to wait (timeout 0) always gets a look.
            if timeout <= 0 or self._woken.is_set() or time.monotonic() >= self._next_fetch:
                self._woken.clear()  # before the fetch: an append during it wakes the wait below
                batch = await self._worker.run(self._fetch, max_messages)
                if batch:
                    self._idle_delay = FIRST_IDLE_WAIT_S
                    self._next_fetch = 0.0
                    return batch
                # Nothing: the next look is later, from 5 ms up to IDLE_WAIT_MAX_S, across polls. An append in
                # this process wakes it at once; another process's too, through its doorbell (within
                # WATCH_EVERY_S through `_AppendWatch` where FIFOs cannot be made); a change of its share at the
                # next heartbeat.
                self._next_fetch = time.monotonic() + self._idle_delay
                self._idle_delay = min(self._idle_delay * 2, IDLE_WAIT_MAX_S)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if await self._woken.wait(max(0.0, min(self._next_fetch - time.monotonic(), remaining))):
                self._next_fetch = 0.0

    def _fetch(self, max_messages: int) -> list[Message]:
        self.fetches += 1
        self._last_poll = time.monotonic()
        self._sync_if_due()
        owned = sorted(self._positions)
        if not owned:
            return []
        # Rotate the starting partition so a busy partition cannot starve the others.
        self._rotation = (self._rotation + 1) % len(owned)
        owned = owned[self._rotation :] + owned[: self._rotation]
        out: list[Message] = []
        for tp in owned:
            if len(out) >= max_messages:
                break
            rows = self._conn.execute(
                "SELECT msg_offset, key, value, headers, timestamp_ms FROM bus_messages"
                " WHERE topic = ? AND partition = ? AND msg_offset >= ? ORDER BY msg_offset LIMIT ?",
                (tp.topic, tp.partition, self._positions[tp], max_messages - len(out)),
            ).fetchall()
            for offset, key, value, headers, ts in rows:
                out.append(Message(tp.topic, tp.partition, offset, key, value, _decode_headers(headers), ts))
            if rows:
                self._positions[tp] = rows[-1][0] + 1
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        if offsets:
            await self._worker.run(self._commit, dict(offsets))

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        conn = self._conn
        with _write_tx(conn):
            for tp, offset in offsets.items():
                # Fencing: only the lease holder moves the group's offset.
                holder = conn.execute(
                    "SELECT member_id FROM bus_leases WHERE grp = ? AND topic = ? AND partition = ?",
                    (self.group, tp.topic, tp.partition),
                ).fetchone()
                if holder is None or holder[0] != self.member_id:
                    log.info("consumer %s: commit of %s dropped, partition moved", self.group, tp)
                    continue
                conn.execute(
                    "INSERT INTO bus_group_offsets (grp, topic, partition, next_offset) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                    (self.group, tp.topic, tp.partition, offset),
                )

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check_open()

        def seek() -> None:
            self._sync_if_due()
            if partition not in self._positions:
                raise NotAssigned(f"{partition} is not assigned to this member of {self.group}")
            self._positions[partition] = offset

        await self._worker.run(seek)

    async def assignment(self) -> set[TopicPartition]:
        self._check_open()

        def current() -> set[TopicPartition]:
            self._sync_if_due()
            return set(self._positions)

        return await self._worker.run(current)

    async def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        def read() -> dict[TopicPartition, int | None]:
            out: dict[TopicPartition, int | None] = {}
            for tp in partitions:
                row = self._conn.execute(
                    "SELECT next_offset FROM bus_group_offsets WHERE grp = ? AND topic = ? AND partition = ?",
                    (self.group, tp.topic, tp.partition),
                ).fetchone()
                out[tp] = int(row[0]) if row else None
            return out

        return await self._worker.run(read)

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("consumer is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._woken is not None:
            self._woken.close()
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None
        if self._append_watch is not None:
            _unwatch(self._append_watch)
            self._append_watch = None
        await asyncio.to_thread(self._heartbeat.join)

        def leave() -> None:
            # Leaving hands the partitions over at once instead of after the session timeout.
            with _write_tx(self._conn):
                self._conn.execute(
                    "DELETE FROM bus_leases WHERE grp = ? AND member_id = ?", (self.group, self.member_id)
                )
                self._conn.execute(
                    "DELETE FROM bus_members WHERE grp = ? AND member_id = ?", (self.group, self.member_id)
                )
            self._conn.close()

        await self._worker.run(leave)
        self._worker.shutdown()
