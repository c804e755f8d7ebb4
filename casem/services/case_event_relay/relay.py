"""The outbox relay: domain_events rows → the tenant's Kafka topic, at least once, in per-case order.

One pass claims a batch of unpublished rows in sequence order (those `domain_events_pending` lists: a trigger
lists each new row in its inserting transaction), publishes them keyed by case id (so one case's events share a
partition and keep their order), and marks them published, by deleting their listing, only after the bus
acknowledged every message. A failure rolls the claim back: nothing is marked, so nothing is lost; the rows go
out again on the next pass.

The relay only forwards envelopes: it reads each one as the JSON text the outbox stored (cast to text by
the database, never decoded here) and adds its sequence number in front (`published_envelope`).

Several relay replicas may run against PostgreSQL: listings are claimed with FOR UPDATE SKIP LOCKED,
and a pass drops from its batch every case that still has an earlier unpublished row it did not claim
(another replica or an earlier pass of this one holds it), so no pass can overtake another within one
case. That is also what lets one relay pipeline its passes on PostgreSQL: the next batch is claimed while
the previous one is being published. SQLite (the embedded default) has one writer at a time: there a pass runs
alone, its relays taking turns on a file lock next to the database (`_SqliteTurn`), and it holds the database's
write lock only to mark its rows: it reads them in a deferred transaction (a snapshot, no lock) and publishes them
holding nothing case-api's writes wait on. (Its claim used to be the write lock itself, held across the publish:
70% of a sustained bench phase on SQLite, each ingest of case-api waiting behind a pass.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import OutgoingMessage, Producer, PublishError, publish_acknowledged
from casem.adapters.bus.strategies import Retry, RetryPolicy
from casem.adapters.doorbell import Listening, listen
from casem.adapters.storage.database import TenantDatabase
from casem.adapters.storage.outbox_wakeup import OutboxListener
from casem.adapters.storage.pipelined import execute_commit_then_fetch, execute_then_commit, fetch_after
from casem.adapters.storage.tables import domain_events, domain_events_pending
from casem.adapters.wakeup import Waiter, outbox_channel, waiter
from casem.domain.events import with_sequence
from casem.observability import bus_headers, context_from, start_span

log = structlog.get_logger("case-event-relay")

PUBLISHED = Counter("casem_relay_published_total", "Outbox events published", ["tenant"])
FAILURES = Counter("casem_relay_publish_failures_total", "Relay passes that failed to publish", ["tenant"])
BACKLOG = Gauge("casem_relay_backlog", "Unpublished outbox rows", ["tenant"])
LAG = Gauge("casem_relay_lag_seconds", "Age of the oldest unpublished outbox row", ["tenant"])
PASS_SECONDS = Histogram("casem_relay_pass_seconds", "Duration of one claim-publish-mark pass", ["tenant"])
DELETED = Counter("casem_relay_retention_deleted_total", "Published rows deleted by retention", ["tenant"])


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    pipeline_depth: int = 2  # batches in flight at once on PostgreSQL (claim the next while one is published)
    idle_poll_s: float = 0.05  # first wait after a pass that found the outbox empty
    # Each further empty pass doubles the wait, up to this: an idle relay looks about once a second. A commit in
    # this process wakes it at once (casem.adapters.wakeup), and so does one in another process: on PostgreSQL
    # through LISTEN/NOTIFY (casem.adapters.storage.outbox_wakeup), on SQLite in a file through the database's
    # doorbells (casem.adapters.doorbell). Otherwise (listening off, the listener down, no FIFOs on that
    # filesystem) a commit waits at most this long.
    idle_poll_max_s: float = 1.0
    # After a pass that published, the relay pauses this long before the next: under a steady stream every commit
    # wakes it (in this process, by LISTEN/NOTIFY, by a doorbell), and without a pause each pass was followed at once
    # by another carrying what committed meanwhile. Sustained at 1,400 intakes/s on the embedded engines, counting
    # from the pass's start (20 ms, shorter than a pass) still made 1,484 passes in 60 s instead of 679 and cost the
    # relay 12.2 CPU seconds instead of 7.0; 50 ms is what an idle_poll_s wait gave before commits of other
    # processes woke it. The first pass after a quiet spell is not delayed.
    busy_pass_interval_s: float = 0.05
    # Listen for commits of other processes (PostgreSQL: LISTEN; SQLite: a doorbell). Off where LISTEN cannot work
    # (a transaction-pooling PgBouncer in between): the relay then polls only.
    listen_for_commits: bool = True
    # While the bus does not acknowledge: back off and retry the pass, until it does or the relay stops.
    # (and while the database is away: the claim rolled back, nothing was marked).
    backoff: RetryPolicy = RetryPolicy(
        max_attempts=None, initial_backoff_s=0.5, max_backoff_s=30.0, retry_on=PublishError, wait_on=is_unavailable
    )
    retention: timedelta = timedelta(days=7)
    retention_every_s: float = 3600.0
    # The backlog and lag gauges are refreshed after a pass at most this often (a count over the unpublished
    # rows: on every idle pass it was most of an idle relay's work). Prometheus scrapes every 15 s by default.
    backlog_every_s: float = 10.0
    # On SQLite, an idle relay whose database files have not changed since its last pass began (nothing was
    # committed, by any process) skips its passes, but makes one at least this often (a safety net).
    unchanged_pass_every_s: float = 10.0


def published_envelope(stored: str, sequence: int) -> bytes:
    """The envelope as published: the stored JSON text with its sequence number added in front.

    The outbox stores envelopes without "sequence" (the database assigns it); rows written before that
    carry `"sequence": null`, and an event's own data may use the word: those few are decoded instead."""
    if '"sequence"' in stored or not stored.startswith("{") or stored[1:].lstrip().startswith("}"):
        return json.dumps(with_sequence(json.loads(stored), sequence)).encode()
    return f'{{"sequence":{sequence},{stored[1:]}'.encode()


def message_for(row: sa.Row, topic: str, trace: tuple[tuple[str, bytes], ...] = ()) -> OutgoingMessage:
    """The event's message; `trace` (the relay's span) goes in the headers, where consumers look for it."""
    # Keyed by case so its events stay ordered; events not about a case are keyed by their subject.
    key = (row.case_id or row.subject or row.id).encode()
    headers = (_SPECVERSION, ("ce_type", row.type.encode()), ("ce_id", row.id.encode()), _CONTENT_TYPE, *trace)
    return OutgoingMessage(topic, key, published_envelope(row.envelope, row.seq), headers)


_SPECVERSION = ("ce_specversion", b"1.0")
_CONTENT_TYPE = ("content-type", b"application/cloudevents+json")


# What a pass reads of each row: the envelope as text (the database serialises it; the relay never parses it),
# the subject, which keys the events that are not about a case, and the trace the change was made in.
CLAIMED_COLUMNS = (
    domain_events.c.seq,
    domain_events.c.id,
    domain_events.c.type,
    domain_events.c.case_id,
    sa.cast(domain_events.c.envelope, sa.Text).label("envelope"),
    sa.case((domain_events.c.case_id.is_(None), domain_events.c.envelope["subject"].as_string()), else_=None).label(
        "subject"
    ),
    domain_events.c.envelope["traceparent"].as_string().label("traceparent"),
    domain_events.c.envelope["tracestate"].as_string().label("tracestate"),
)


def _publish_span(row: sa.Row, topic: str) -> Span | None:
    """A span for publishing an event whose change was traced (its envelope carries the trace); untraced
    events get none. Not made current: each row's span is a child of its own change, not of the last row's."""
    if not row.traceparent:
        return None
    return start_span(
        f"case-event-relay publish {row.type}",
        context_from({"traceparent": row.traceparent, "tracestate": row.tracestate or ""}),
        SpanKind.PRODUCER,
        {"casem.event.id": row.id, "casem.event.type": row.type, "messaging.destination.name": topic},
    )


def _messages(rows: list[sa.Row], topic: str) -> tuple[list[OutgoingMessage], list[Span]]:
    """The rows' messages, and the spans of the traced ones (ended by `_end_spans` once the bus answered)."""
    spans = [_publish_span(row, topic) for row in rows]
    messages = [
        message_for(row, topic, bus_headers(span) if span is not None else ())
        for row, span in zip(rows, spans, strict=True)
    ]
    return messages, [span for span in spans if span is not None]


def _end_spans(spans: list[Span], error: BaseException | None = None) -> None:
    """A traced event's span ends when the bus acknowledged it (or refused)."""
    for span in spans:
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()


# Marking a batch published on PostgreSQL: its listings go (its sequence numbers are one array parameter). Deleting a
# two-column row is a fraction of what stamping the event row cost (0023_perf_outbox_pending).
_MARK_PUBLISHED = "DELETE FROM domain_events_pending WHERE seq = ANY(%s::bigint[])"


def _seq_array(rows: list[Any]) -> str:
    """The rows' sequence numbers as one array literal: the driver sends the text as it is, where a list of ints went
    through its array dumper number by number (a twentieth of the relay's event-loop time in a drain)."""
    return "{" + ",".join([str(row.seq) for row in rows]) + "}"


# The claim on PostgreSQL is planned with sorts, bitmap scans and sequential scans off (for its transaction only, which
# the batch's mark ends). The planner's idea of how many rows are pending comes from statistics taken before a burst
# (or none, for a pending table filled since): it then reads every pending row through a bitmap or sequential scan and
# sorts them all to take the first batch, on every pass (with 50,000 pending, 23 ms of a 28 ms claim; a drain slows
# down as its backlog grows), and looks for the held rows and the rows to mark the same way. Without them, the only
# plans left walk the pending table's primary key: from its start to the batch size, the range before the claim's last
# row, and the marked rows.
CLAIM_PLANNER = sa.text(
    "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('enable_seqscan', 'off', true)"
)


@functools.lru_cache(maxsize=8)  # built once per batch size: the statement is the same on every pass
def claim_query(batch_size: int) -> sa.Select[Any]:
    """PostgreSQL's claim in one statement: lock the first free pending rows' listings (SKIP LOCKED), and flag each
    row that must wait because its case has an earlier pending row this claim did not take (another pass or replica
    holds it, and its event goes first). `held` is true for those, and their envelope is not read."""
    pending = domain_events_pending
    claimed = (
        sa.select(pending.c.seq, pending.c.case_id)
        .order_by(pending.c.seq)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .cte("claimed")
        .prefix_with("MATERIALIZED")  # locked once, whatever the rest of the statement does with it
    )
    # Per claimed case, its first pending row before the claim's last one that the claim does not hold. The listings
    # read are the claim's own and the few others hold (a range of the pending table's primary key).
    first_held = (
        sa.select(pending.c.case_id, sa.func.min(pending.c.seq).label("seq"))
        .where(
            pending.c.seq < sa.select(sa.func.max(claimed.c.seq)).scalar_subquery(),
            pending.c.case_id.in_(sa.select(claimed.c.case_id)),
            ~sa.exists().where(claimed.c.seq == pending.c.seq),
        )
        .group_by(pending.c.case_id)
        .cte("first_held")
    )
    # A case's rows from the first one held elsewhere on wait: the held row may sit before this claim's rows of the
    # case or between them (another pass claimed it between two of ours), and goes first either way.
    held = sa.func.coalesce(first_held.c.seq < domain_events.c.seq, False)
    envelope = sa.case((held, None), else_=sa.cast(domain_events.c.envelope, sa.Text))
    columns = [envelope.label("envelope") if c.name == "envelope" else c for c in CLAIMED_COLUMNS]
    return sa.select(*columns, held.label("held")).select_from(
        claimed.join(domain_events, domain_events.c.seq == claimed.c.seq).outerjoin(
            first_held, first_held.c.case_id == claimed.c.case_id
        )
    )


@functools.lru_cache(maxsize=8)
def _claim_sql(batch_size: int, dialect: sa.Dialect) -> str:
    return str(claim_query(batch_size).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def _claim(conn: sa.ext.asyncio.AsyncConnection, batch_size: int) -> tuple[list[Any], int]:
    """(the rows this pass may publish, in sequence order; how many unpublished rows it looked at)."""
    if conn.dialect.name != "postgresql":
        # SQLite: read in the relay's turn (`_SqliteTurn`), so no other pass claims anything until these are marked.
        first_pending = sa.select(domain_events_pending.c.seq).order_by(domain_events_pending.c.seq).limit(batch_size)
        query = sa.select(*CLAIMED_COLUMNS).where(domain_events.c.seq.in_(first_pending)).order_by(domain_events.c.seq)
        rows = list((await conn.execute(query)).all())
        return rows, len(rows)
    # BEGIN, the planner settings and the claim go to the server together: one round trip instead of three. The rows
    # come in the binary format: the same values, less for the driver to parse (its CPU per claimed row measured at
    # 1.7-2.6 µs, against 2.4-3.0 µs in text).
    claimed = await fetch_after(conn, [CLAIM_PLANNER.text], _claim_sql(batch_size, conn.dialect), binary=True)
    return _kept(claimed), len(claimed)


def _kept(claimed: list[Any]) -> list[Any]:
    """The claimed rows not held back, in sequence order: sorted here rather than by the statement, as with sorts off
    an ORDER BY could be planned as a walk of the whole primary key."""
    return sorted((row for row in claimed if not row.held), key=lambda row: row.seq)


@dataclass
class _Claim:
    """A claimed batch: its rows stay locked by the open transaction until they are marked or let go (on SQLite:
    no transaction stays open; the relay's turn keeps other passes away until then)."""

    conn: AsyncConnection | None
    transaction: AsyncTransaction | None
    rows: list[sa.Row]
    started: float
    seen: int  # unpublished rows the claim looked at: fewer than the batch size means the outbox is drained
    turn: _SqliteTurn | None = None


_TURN_POLL_S = 0.002  # how often a relay waiting for another's turn on the same SQLite database looks again
_in_memory_turns: set[int] = set()  # in-memory SQLite databases (one process) with a pass running, by id of the engine


class _SqliteTurn:
    """The turn of one pass among the relays of one SQLite database (processes, or passes in one process): an
    exclusive flock on `<database>-relay.lock`, released by the kernel if the process dies. What the database's write
    lock gave a pass when its claim held it: no other pass reads the same pending rows before they are marked."""

    def __init__(self, db: TenantDatabase) -> None:
        path = db.writer.url.database
        self._path = None if not path or path == ":memory:" or path.startswith("file:") else f"{path}-relay.lock"
        self._key = id(db.writer)
        self._fd: int | None = None
        self._held_in_memory = False

    async def take(self) -> _SqliteTurn:
        if self._path is None:
            while self._key in _in_memory_turns:
                await asyncio.sleep(_TURN_POLL_S)
            _in_memory_turns.add(self._key)
            self._held_in_memory = True
            return self
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_TURN_POLL_S)  # another pass's turn: a pass is short, and this can be stopped
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def give_back(self) -> None:
        if self._held_in_memory:
            _in_memory_turns.discard(self._key)
            self._held_in_memory = False
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases its flock
            self._fd = None


async def _open_sqlite_claim(db: TenantDatabase, batch_size: int) -> _Claim:
    """SQLite's claim: in the relay's turn, the first pending rows read in a deferred transaction on the primary
    file (a snapshot; commits are serial, so every row before the last one seen is there), closed at once."""
    started = time.perf_counter()
    turn = await _SqliteTurn(db).take()
    try:
        async with db.primary_reader().connect() as conn, conn.begin():
            rows, seen = await _claim(conn, batch_size)
    except BaseException:
        turn.give_back()
        raise
    if not rows:
        turn.give_back()
    return _Claim(None, None, rows, started, seen, turn)


async def _close_sqlite_claim(db: TenantDatabase, claim: _Claim, published: bool) -> None:
    """Mark the rows published in a short write transaction (the only time a pass holds the write lock), then end
    the relay's turn; rows not published are simply left pending."""
    try:
        if published:
            async with db.writer.begin() as conn:
                seqs = [row.seq for row in claim.rows]
                await conn.execute(sa.delete(domain_events_pending).where(domain_events_pending.c.seq.in_(seqs)))
            PUBLISHED.labels(db.tenant).inc(len(claim.rows))
            PASS_SECONDS.labels(db.tenant).observe(time.perf_counter() - claim.started)
    finally:
        if claim.turn is not None:
            claim.turn.give_back()


class _Connections:
    """The writer connections of one run of passes, kept from one pass to the next: a pass takes the one an earlier
    pass finished with instead of checking one out of the pool (and pinging the server) every time. A connection
    whose pass failed is closed, never reused."""

    def __init__(self, db: TenantDatabase) -> None:
        self._db = db
        self._idle: list[AsyncConnection] = []

    async def take(self) -> AsyncConnection:
        return self._idle.pop() if self._idle else await self._db.writer.connect()

    def give_back(self, conn: AsyncConnection) -> None:
        self._idle.append(conn)

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


async def _open_claim(db: TenantDatabase, batch_size: int, connections: _Connections) -> _Claim:
    """A claim of up to `batch_size` rows; when it has none (nothing to do, or every case it saw is held by
    another pass), its transaction is already closed."""
    if db.dialect == "sqlite":
        return await _open_sqlite_claim(db, batch_size)
    started = time.perf_counter()
    conn = await connections.take()
    try:
        transaction = await conn.begin()
        rows, seen = await _claim(conn, batch_size)
        if not rows:
            await transaction.rollback()
    except BaseException:
        await conn.close()
        raise
    if not rows:
        connections.give_back(conn)
    return _Claim(conn, transaction, rows, started, seen)


async def _close_claim(db: TenantDatabase, claim: _Claim, published: bool, connections: _Connections) -> None:
    """Mark the rows published (after the bus acknowledged them) or let them go for a later pass."""
    if claim.conn is None or claim.transaction is None:
        await _close_sqlite_claim(db, claim, published)
        return
    try:
        if published:
            seqs = [row.seq for row in claim.rows]
            if db.dialect == "postgresql":
                # The mark and its COMMIT go to the server together: one round trip instead of two.
                await execute_then_commit(claim.conn, _MARK_PUBLISHED, (_seq_array(claim.rows),))
            else:
                await claim.conn.execute(sa.delete(domain_events_pending).where(domain_events_pending.c.seq.in_(seqs)))
            await claim.transaction.commit()
            PUBLISHED.labels(db.tenant).inc(len(claim.rows))
            PASS_SECONDS.labels(db.tenant).observe(time.perf_counter() - claim.started)
        else:
            await claim.transaction.rollback()
    except BaseException:
        await claim.conn.close()
        raise
    connections.give_back(claim.conn)


async def _mark_then_claim(db: TenantDatabase, claim: _Claim, batch_size: int, connections: _Connections) -> _Claim:
    """Mark `claim`'s rows published (the bus acknowledged them) and claim the next batch on its connection, in one
    round trip (PostgreSQL): the commit and the next claim went to the server one after the other on the loop's
    path. When the next claim has nothing, its transaction is already closed."""
    started = time.perf_counter()
    try:
        claimed = await execute_commit_then_fetch(
            claim.conn,
            _MARK_PUBLISHED,
            (_seq_array(claim.rows),),
            [CLAIM_PLANNER.text],
            _claim_sql(batch_size, claim.conn.dialect),
            binary=True,  # as `_claim`
        )
        PUBLISHED.labels(db.tenant).inc(len(claim.rows))
        PASS_SECONDS.labels(db.tenant).observe(time.perf_counter() - claim.started)
        rows = _kept(claimed)
        if not rows:
            await claim.transaction.rollback()
    except BaseException:
        await claim.conn.close()  # marked or not: unknown, as when a connection is lost during a commit
        raise
    if not rows:
        connections.give_back(claim.conn)
    # The SQLAlchemy transaction stays the same object: it now stands for the new claim's transaction.
    return _Claim(claim.conn, claim.transaction, rows, started, len(claimed))


async def relay_once(db: TenantDatabase, producer: Producer, topic: str, batch_size: int = 500) -> int:
    """One claim → publish → mark pass. Returns how many events were published."""
    connections = _Connections(db)
    try:
        claim = await _open_claim(db, batch_size, connections)
        if not claim.rows:
            return 0
        messages, spans = _messages(claim.rows, topic)
        try:
            await publish_acknowledged(producer, messages)
        except BaseException as error:
            _end_spans(spans, error)
            await _close_claim(db, claim, False, connections)
            raise
        _end_spans(spans)
        await _close_claim(db, claim, True, connections)
        return len(claim.rows)
    finally:
        await connections.close()


async def relay_pipelined(
    db: TenantDatabase,
    producer: Producer,
    topic: str,
    batch_size: int = 500,
    depth: int = 2,
    stop: asyncio.Event | None = None,
) -> int:
    """Passes until the outbox is drained (or `stop` is set), up to `depth` of them at once: while one batch is
    being published, the next is claimed (PostgreSQL; on SQLite `depth` is 1). Batches are marked in claim
    order, each once its own publish is acknowledged; a failed publish lets its rows go and is raised once the
    passes in flight are settled. On PostgreSQL a batch's mark and the next claim go to the server together
    (`_mark_then_claim`). Returns how many events were published."""
    if db.dialect != "postgresql":
        depth = 1
    in_flight: deque[tuple[_Claim, list[Span], asyncio.Task[int]]] = deque()
    total = 0
    more = True
    failure: BaseException | None = None
    connections = _Connections(db)
    try:
        while more or in_flight:
            if stop is not None and stop.is_set():
                more = False
            if more and failure is None and len(in_flight) < depth:
                claim = await _open_claim(db, batch_size, connections)
                more = claim.seen == batch_size
                if claim.rows:
                    messages, spans = _messages(claim.rows, topic)
                    in_flight.append((claim, spans, asyncio.create_task(publish_acknowledged(producer, messages))))
                    continue
                if not in_flight:
                    break  # nothing left, or all of it held by another replica: it publishes those first
            if not in_flight:
                continue
            claim, spans, publishing = in_flight.popleft()
            try:
                await publishing
            except BaseException as error:  # settle the others first: what they published is marked
                _end_spans(spans, error)
                failure = failure or error
                more = False
                await _close_claim(db, claim, False, connections)
                continue
            _end_spans(spans)
            total += len(claim.rows)
            if db.dialect == "postgresql" and more and failure is None and len(in_flight) < depth:
                # The next claim goes with this mark: its batch is published while the loop waits for the next.
                claim = await _mark_then_claim(db, claim, batch_size, connections)
                more = claim.seen == batch_size
                if claim.rows:
                    messages, spans = _messages(claim.rows, topic)
                    in_flight.append((claim, spans, asyncio.create_task(publish_acknowledged(producer, messages))))
                elif not in_flight:
                    break  # as above: nothing left, or all of it held by another replica
                continue
            await _close_claim(db, claim, True, connections)
    except BaseException:
        for claim, spans, publishing in in_flight:
            publishing.cancel()
            with contextlib.suppress(BaseException):
                await publishing
            _end_spans(spans)
            await _close_claim(db, claim, False, connections)
        raise
    finally:
        await connections.close()
    if failure is not None:
        raise failure
    return total


async def observe_backlog(db: TenantDatabase) -> tuple[int, float]:
    """Unpublished rows and the age of the oldest one (seconds), exported as gauges."""
    async with db.reader.connect() as conn:
        row = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.min(domain_events.c.time)).select_from(
                    domain_events_pending.join(domain_events, domain_events.c.seq == domain_events_pending.c.seq)
                )
            )
        ).one()
    count, oldest = row[0], row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    lag = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    BACKLOG.labels(db.tenant).set(count)
    LAG.labels(db.tenant).set(lag)
    return count, lag


async def delete_published_before(db: TenantDatabase, cutoff: datetime) -> int:
    """Retention: published rows whose event is older than the cutoff are no longer needed by anyone.

    Rows are published in sequence order, so the rows go from the oldest one up to the first that stays: the first
    pending one (its listing) or the first recent one (a walk of the primary key from the oldest row, which stops at
    it; there is no index on the event time). Rows further on that are old and published (a case's event held back
    behind another) go on a later run, once the rows before them have."""
    old = domain_events.c.time < cutoff
    first_pending = sa.select(sa.func.min(domain_events_pending.c.seq))
    first_recent = sa.select(domain_events.c.seq).where(~old).order_by(domain_events.c.seq).limit(1)
    async with db.writer.connect() as conn, conn.begin():
        bounds = [seq for seq in (await conn.scalar(first_pending), await conn.scalar(first_recent)) if seq is not None]
        # The bound is a value of its own, so the planner sees how few rows are below it (the primary key's range).
        # The delete still checks each row: a transaction open while the bound was read may commit a pending row below
        # it (with an old event time, if its clock is behind).
        below = [domain_events.c.seq < min(bounds)] if bounds else []
        listed = sa.exists().where(domain_events_pending.c.seq == domain_events.c.seq)
        result = await conn.execute(sa.delete(domain_events).where(*below, old, ~listed))
    DELETED.labels(db.tenant).inc(result.rowcount or 0)
    return result.rowcount or 0


class Relay:
    """Relays one tenant's outbox until stopped; backs off while the bus is unavailable."""

    def __init__(self, db: TenantDatabase, producer: Producer, topic: str, settings: RelaySettings | None = None):
        self.db = db
        self.producer = producer
        self.topic = topic
        self.settings = settings or RelaySettings()
        self._stop = asyncio.Event()
        self._publish = Retry(self.settings.backoff, on_retry=self._publish_failed)
        self._last_retention = 0.0
        self._last_backlog: float | None = None  # monotonic time of the last backlog count (None: not yet)
        self.listener: OutboxListener | None = None  # on PostgreSQL, while running
        self.doorbell: Listening | None = None  # on SQLite in a file, while running
        self.passes = 0  # passes made (each claims at least once): how busy an idle relay keeps itself

    def stop(self) -> None:
        self._stop.set()
        self._publish.stop()  # a back-off in progress ends too

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _relay_pass(self) -> int:
        self.passes += 1
        try:
            published = await relay_pipelined(
                self.db,
                self.producer,
                self.topic,
                self.settings.batch_size,
                self.settings.pipeline_depth,
                self._stop,
            )
            if time.monotonic() - self._last_retention > self.settings.retention_every_s:
                self._last_retention = time.monotonic()
                await delete_published_before(self.db, datetime.now(UTC) - self.settings.retention)
            if self._last_backlog is None or time.monotonic() - self._last_backlog >= self.settings.backlog_every_s:
                self._last_backlog = time.monotonic()
                await observe_backlog(self.db)  # drained: a pipelined pass runs until a batch comes back short
            return published
        except Exception as exc:
            if isinstance(exc, PublishError) or is_unavailable(exc):
                FAILURES.labels(self.db.tenant).inc()  # every failed pass, the one cut short by stop() included
            raise

    def _publish_failed(self, error: BaseException, attempt: int, delay_s: float) -> None:
        log.warning("relay pass failed; backing off", tenant=self.db.tenant, error=str(error), backoff_s=delay_s)

    async def run(self) -> None:
        woken = waiter(outbox_channel(self.db.tenant))
        idle_s = self.settings.idle_poll_s
        if self.db.dialect == "postgresql" and self.settings.listen_for_commits:
            # Commits of other processes (case-api) wake this one through LISTEN/NOTIFY; polling stays the fallback.
            self.listener = OutboxListener(self.db.tenant, self.db.endpoints.master)
            self.listener.start()
        sqlite_file = self.db.sqlite_file if self.settings.listen_for_commits else None
        if sqlite_file is not None:
            # SQLite in a file: commits of other processes ring its doorbells (casem.adapters.doorbell).
            self.doorbell = listen(sqlite_file, outbox_channel(self.db.tenant))
        try:
            while not self._stop.is_set():
                woken.clear()  # before the pass: a commit during it wakes the wait below
                stamp = self.db.file_stamp()  # likewise: a commit during the pass changes it
                passed = time.monotonic()
                try:
                    published = await self._publish.call(self._relay_pass)
                except Exception as exc:
                    if self._stop.is_set() and (isinstance(exc, PublishError) or is_unavailable(exc)):
                        break  # stopped while backing off: the rows stay unpublished for the next run
                    raise
                # The passes ran until the outbox was drained (or until every row left was held by another replica).
                idle_s = self.settings.idle_poll_s if published else min(idle_s * 2, self.settings.idle_poll_max_s)
                if published:
                    await self._sleep(self.settings.busy_pass_interval_s)  # stop still ends it at once
                await self._idle(woken, idle_s)
                while self._unchanged_since(stamp, passed, woken):  # no commit anywhere: the next pass would be empty
                    idle_s = min(idle_s * 2, self.settings.idle_poll_max_s)
                    await self._idle(woken, idle_s)
        finally:
            woken.close()
            if self.listener is not None:
                await self.listener.close()
            if self.doorbell is not None:
                self.doorbell.close()

    def _unchanged_since(self, stamp: tuple[int, ...] | None, passed: float, woken: Waiter) -> bool:
        return (
            stamp is not None
            and not woken.is_set()
            and not self._stop.is_set()
            and time.monotonic() - passed < self.settings.unchanged_pass_every_s
            and self.db.file_stamp() == stamp
        )

    async def _idle(self, woken: Waiter, seconds: float) -> None:
        """Until `seconds` pass, a commit in this process wakes us, or stop."""
        stopping = asyncio.ensure_future(self._stop.wait())
        waking = asyncio.ensure_future(woken.wait(seconds))
        try:
            await asyncio.wait({stopping, waking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waking.cancel()


async def run_relays(relays: Sequence[Relay]) -> None:
    await asyncio.gather(*(r.run() for r in relays))
