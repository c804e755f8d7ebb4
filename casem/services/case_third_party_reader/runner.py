"""Applies one remote change per message: idempotent by the change's id, retried, dead-lettered when it cannot be.

The change and its idempotency record (`handler_processed_events`, flavor `case-third-party-reader:<flavor>`)
commit in one transaction, so a redelivered or re-polled change is a no-op. A failure is retried with
exponential back-off (`RetryPolicy`); after the last attempt the message goes to the flavor's dead-letter
topic with the error, and its offset is committed only once the dead letter is acknowledged. Messages of
one remote issue share a key, hence a partition, and RunTask applies a partition in order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram

from casem.adapters.bus import Message, Producer
from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.app.events import PoisonMessage
from casem.app.integrations.inbound import apply_remote_event
from casem.app.integrations.remote_events import RemoteEvent
from casem.topology.topics import reader_dead_letter_topic

log = structlog.get_logger("case-third-party-reader")

EVENTS = Counter("casem_third_party_reader_events_total", "Remote changes by outcome", ["flavor", "outcome"])
APPLY_SECONDS = Histogram(
    "casem_third_party_reader_apply_seconds", "Duration of applying one remote change", ["flavor"]
)
LAG_SECONDS = Histogram(
    "casem_third_party_reader_lag_seconds",
    "From the remote change to its effect in casem",
    ["flavor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0


# Remote change ids are longer than the idempotency record's id column: it keeps their UUIDv5 instead.
PROCESSED_ID_NAMESPACE = uuid.UUID("5d0f3c1e-7d54-4f3a-9b0e-2a6c1f8e9d41")


def processed_name(flavor: str) -> str:
    return f"case-third-party-reader:{flavor}"


def processed_id(event_id: str) -> str:
    return str(uuid.uuid5(PROCESSED_ID_NAMESPACE, event_id))


class ReaderRunner:
    def __init__(
        self, flavor: str, context: AppContext, dead_letters: Producer, retry: RetryPolicy | None = None
    ) -> None:
        self.flavor = flavor
        self.context = context
        self.dead_letters = dead_letters
        self.retry = retry or RetryPolicy()
        self.record = processed_name(flavor)

    async def process(self, message: Message) -> None:
        """The RunTask function: returns once the message's outcome is durable (applied or dead-lettered)."""
        try:
            event = RemoteEvent.from_bytes(message.value)
            if event.system != self.flavor:
                raise PoisonMessage(f"a {event.system} change on the {self.flavor} feed")
        except PoisonMessage as exc:
            await self.dead_letter(message, str(exc), attempts=0)
            return
        backoff = self.retry.initial_backoff_s
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                outcome = await self.apply(event)
                EVENTS.labels(self.flavor, outcome).inc()
                return
            except PoisonMessage as exc:
                await self.dead_letter(message, str(exc), attempts=attempt)
                return
            except Exception as exc:  # any failure is retried, then dead-lettered
                if attempt == self.retry.max_attempts:
                    await self.dead_letter(message, f"{type(exc).__name__}: {exc}", attempts=attempt)
                    return
                EVENTS.labels(self.flavor, "retried").inc()
                log.warning(
                    "remote change failed; retrying",
                    flavor=self.flavor,
                    event_id=event.id,
                    attempt=attempt,
                    error=str(exc),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry.max_backoff_s)

    async def apply(self, event: RemoteEvent) -> str:
        if event.tenant not in self.context.databases:
            raise PoisonMessage(f"change for tenant {event.tenant!r}, which this deployment does not serve")
        started = time.perf_counter()
        record_id = processed_id(event.id)
        async with self.context.uow(event.tenant) as uow:
            seen = await uow.scalar(
                sa.select(sa.literal(1)).where(
                    handler_processed_events.c.flavor == self.record, handler_processed_events.c.event_id == record_id
                )
            )
            if seen:
                return "duplicate"
            outcome = await apply_remote_event(uow, event)
            await uow.execute(
                sa.insert(handler_processed_events).values(
                    flavor=self.record, event_id=record_id, processed_at=datetime.now(UTC)
                )
            )
            await uow.commit()
        APPLY_SECONDS.labels(self.flavor).observe(time.perf_counter() - started)
        if outcome == "applied":
            LAG_SECONDS.labels(self.flavor).observe(max(0.0, (datetime.now(UTC) - event.occurred_at).total_seconds()))
        return outcome

    async def dead_letter(self, message: Message, error: str, attempts: int) -> None:
        EVENTS.labels(self.flavor, "dead_lettered").inc()
        log.error(
            "dead-lettering remote change", flavor=self.flavor, topic=message.topic, offset=message.offset, error=error
        )
        headers = (
            *message.headers,
            ("dlq_error", error[:2000].encode()),
            ("dlq_flavor", f"case-third-party-reader-{self.flavor}".encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
            ("dlq_at", datetime.now(UTC).isoformat().encode()),
        )
        await self.dead_letters.publish(reader_dead_letter_topic(self.flavor), message.key, message.value, headers)
