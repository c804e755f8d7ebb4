"""The outbox relay: domain_events rows → the tenant's Kafka topic, at least once, in per-case order.

One pass (`relay_once`) claims a batch of unpublished rows in sequence order, publishes them keyed
by case id (so one case's events share a partition and keep their order), and stamps
`published_at` only after the bus acknowledged every message. A failure rolls the claim back:
nothing is marked, so nothing is lost; the rows go out again on the next pass.

Several relay replicas may run against PostgreSQL: rows are claimed with FOR UPDATE SKIP LOCKED,
and a replica drops from its batch every case that still has an earlier unpublished row it did
not claim (another replica holds it), so no replica can overtake another within one case.
SQLite (the embedded default) has one writer at a time; its claim is the database write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import OutgoingMessage, Producer, PublishError
from casem.adapters.bus.strategies import Retry, RetryPolicy
from casem.adapters.storage.database import TenantDatabase
from casem.adapters.storage.tables import domain_events
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
    idle_poll_s: float = 0.05  # wait between passes when the outbox is empty: bounds the added lag
    # While the bus does not acknowledge: back off and retry the pass, until it does or the relay stops.
    # (and while the database is away: the claim rolled back, nothing was marked).
    backoff: RetryPolicy = RetryPolicy(
        max_attempts=None, initial_backoff_s=0.5, max_backoff_s=30.0, retry_on=PublishError, wait_on=is_unavailable
    )
    retention: timedelta = timedelta(days=7)
    retention_every_s: float = 3600.0


def message_for(row: sa.Row, topic: str, trace: tuple[tuple[str, bytes], ...] = ()) -> OutgoingMessage:
    """The event's message; `trace` (the relay's span) goes in the headers, where consumers look for it."""
    envelope = with_sequence(row.envelope, row.seq)
    # Keyed by case so its events stay ordered; events not about a case are keyed by their subject.
    key = (row.case_id or envelope.get("subject") or row.id).encode()
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_type", row.type.encode()),
        ("ce_id", row.id.encode()),
        ("content-type", b"application/cloudevents+json"),
        *trace,
    )
    return OutgoingMessage(topic=topic, key=key, value=json.dumps(envelope).encode(), headers=headers)


def _publish_span(row: sa.Row, topic: str) -> Span | None:
    """A span for publishing an event whose change was traced (its envelope carries the trace); untraced
    events get none. Not made current: each row's span is a child of its own change, not of the last row's."""
    return start_span(
        f"case-event-relay publish {row.type}",
        context_from(row.envelope if isinstance(row.envelope, dict) else None),
        SpanKind.PRODUCER,
        {"casem.event.id": row.id, "casem.event.type": row.type, "messaging.destination.name": topic},
    )


async def _claim(conn: sa.ext.asyncio.AsyncConnection, batch_size: int) -> list[sa.Row]:
    query = (
        sa.select(domain_events)
        .where(domain_events.c.published_at.is_(None))
        .order_by(domain_events.c.seq)
        .limit(batch_size)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list((await conn.execute(query)).all())
    if not rows or conn.dialect.name != "postgresql":
        return rows
    # Drop cases with an earlier unpublished row that this replica did not claim (another holds it).
    claimed = {row.seq for row in rows}
    first_claimed: dict[str | None, int] = {}
    for row in rows:
        first_claimed.setdefault(row.case_id, row.seq)
    case_ids = [c for c in first_claimed if c is not None]
    if not case_ids:
        return rows
    earlier = await conn.execute(
        sa.select(domain_events.c.case_id, sa.func.min(domain_events.c.seq))
        .where(
            domain_events.c.published_at.is_(None),
            domain_events.c.case_id.in_(case_ids),
            domain_events.c.seq < max(claimed),
            domain_events.c.seq.not_in(claimed),
        )
        .group_by(domain_events.c.case_id)
    )
    blocked = {case_id for case_id, seq in earlier if seq < first_claimed[case_id]}
    return [row for row in rows if row.case_id not in blocked]


async def relay_once(db: TenantDatabase, producer: Producer, topic: str, batch_size: int = 500) -> int:
    """One claim → publish → mark pass. Returns how many events were published."""
    started = time.perf_counter()
    async with db.writer.connect() as conn, conn.begin():
        rows = await _claim(conn, batch_size)
        if not rows:
            return 0
        spans = [_publish_span(row, topic) for row in rows]
        messages = [
            message_for(row, topic, bus_headers(span) if span is not None else ())
            for row, span in zip(rows, spans, strict=True)
        ]
        try:
            await producer.publish_batch(messages)
        except BaseException as exc:
            for span in spans:
                if span is not None:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        finally:  # a traced event's span ends when the bus acknowledged it (or refused)
            for span in spans:
                if span is not None:
                    span.end()
        await conn.execute(
            sa.update(domain_events)
            .where(domain_events.c.seq.in_([row.seq for row in rows]))
            .values(published_at=datetime.now(UTC))
        )
    PUBLISHED.labels(db.tenant).inc(len(rows))
    PASS_SECONDS.labels(db.tenant).observe(time.perf_counter() - started)
    return len(rows)


async def observe_backlog(db: TenantDatabase) -> tuple[int, float]:
    """Unpublished rows and the age of the oldest one (seconds), exported as gauges."""
    async with db.reader.connect() as conn:
        row = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.min(domain_events.c.time)).where(
                    domain_events.c.published_at.is_(None)
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
    """Retention: published rows older than the cutoff are no longer needed by anyone."""
    async with db.writer.connect() as conn, conn.begin():
        result = await conn.execute(
            sa.delete(domain_events).where(
                domain_events.c.published_at.is_not(None), domain_events.c.published_at < cutoff
            )
        )
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

    def stop(self) -> None:
        self._stop.set()
        self._publish.stop()  # a back-off in progress ends too

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _relay_pass(self) -> int:
        try:
            published = await relay_once(self.db, self.producer, self.topic, self.settings.batch_size)
            if time.monotonic() - self._last_retention > self.settings.retention_every_s:
                self._last_retention = time.monotonic()
                await delete_published_before(self.db, datetime.now(UTC) - self.settings.retention)
            if published < self.settings.batch_size:
                await observe_backlog(self.db)
            return published
        except Exception as exc:
            if isinstance(exc, PublishError) or is_unavailable(exc):
                FAILURES.labels(self.db.tenant).inc()  # every failed pass, the one cut short by stop() included
            raise

    def _publish_failed(self, error: BaseException, attempt: int, delay_s: float) -> None:
        log.warning("relay pass failed; backing off", tenant=self.db.tenant, error=str(error), backoff_s=delay_s)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                published = await self._publish.call(self._relay_pass)
            except Exception as exc:
                if self._stop.is_set() and (isinstance(exc, PublishError) or is_unavailable(exc)):
                    break  # stopped while backing off: the rows stay unpublished for the next run
                raise
            if published < self.settings.batch_size:
                await self._sleep(self.settings.idle_poll_s)


async def run_relays(relays: Sequence[Relay]) -> None:
    await asyncio.gather(*(r.run() for r in relays))
