"""Runs one flavor: its consumer group on the tenant topics, retries with back-off, dead letters.

Per message: parse the CloudEvent (a message that is not one goes straight to the dead-letter
topic), skip event types the flavor does not declare, then apply the effect in a unit of work
that also records the event id as processed, so a redelivered event is a no-op. A failing effect
is retried with exponential back-off; after `max_attempts` the message goes to the flavor's
dead-letter topic with the error, and its offset is committed only after the dead letter is
acknowledged: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from casem.adapters.bus import Message, Producer
from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.observability import context_from_headers, continued_span
from casem.services.case_event_handler.framework import Event, Flavor, HandlerServices, PoisonMessage, handles
from casem.topology.topics import dead_letter_topic

log = structlog.get_logger("case-event-handler")

HANDLED = Counter("casem_handler_events_total", "Events by outcome", ["flavor", "outcome"])
EFFECT_SECONDS = Histogram("casem_handler_effect_seconds", "Duration of one flavor effect", ["flavor"])


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0


async def already_processed(uow, flavor: str, event_id: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(
        await uow.scalar(
            sa.select(sa.literal(1)).where(
                handler_processed_events.c.flavor == flavor, handler_processed_events.c.event_id == event_id
            )
        )
    )


class FlavorRunner:
    def __init__(
        self,
        flavor: Flavor,
        context: AppContext,
        dead_letters: Producer,
        services: HandlerServices | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.flavor = flavor
        self.context = context
        self.dead_letters = dead_letters
        self.services = services or HandlerServices()
        self.retry = retry or RetryPolicy()

    async def process(self, message: Message) -> None:
        """The RunTask function: returns once the message's outcome is durable (applied or dead-lettered).
        A traced event this flavor handles gets a span of its trace, so what the flavor changes or starts
        carries the trace on."""
        name = self.flavor.name
        try:
            event = Event.from_bytes(message.value)
        except PoisonMessage as exc:
            await self.dead_letter(message, str(exc), attempts=0)
            return
        if not handles(self.flavor, event):
            HANDLED.labels(name, "skipped").inc()
            return
        attributes = {"casem.flavor": name, "casem.event.id": event.id, "casem.event.type": event.type}
        parent = context_from_headers(message.headers)
        with continued_span(f"{name} {event.type}", parent, SpanKind.CONSUMER, attributes):
            await self._apply_with_retries(message, event)

    async def _apply_with_retries(self, message: Message, event: Event) -> None:
        name = self.flavor.name
        backoff = self.retry.initial_backoff_s
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                applied = await self.apply(event)
                HANDLED.labels(name, "applied" if applied else "duplicate").inc()
                return
            except PoisonMessage as exc:
                await self.dead_letter(message, str(exc), attempts=attempt)
                return
            except Exception as exc:  # any failure of the effect is retried, then dead-lettered
                if attempt == self.retry.max_attempts:
                    await self.dead_letter(message, f"{type(exc).__name__}: {exc}", attempts=attempt)
                    return
                HANDLED.labels(name, "retried").inc()
                log.warning("effect failed; retrying", flavor=name, event_id=event.id, attempt=attempt, error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry.max_backoff_s)

    async def apply(self, event: Event) -> bool:
        """Apply the effect once: False when this flavor already processed the event."""
        if event.tenant not in self.context.databases:
            raise PoisonMessage(f"event for tenant {event.tenant!r}, which this deployment does not serve")
        started = time.perf_counter()
        async with self.context.uow(event.tenant) as uow:
            if await already_processed(uow, self.flavor.name, event.id):
                return False
            await self.flavor.apply(event, uow, self.services)
            await uow.execute(
                sa.insert(handler_processed_events).values(
                    flavor=self.flavor.name, event_id=event.id, processed_at=datetime.now(UTC)
                )
            )
            await uow.commit()
        EFFECT_SECONDS.labels(self.flavor.name).observe(time.perf_counter() - started)
        return True

    async def dead_letter(self, message: Message, error: str, attempts: int) -> None:
        HANDLED.labels(self.flavor.name, "dead_lettered").inc()
        log.error(
            "dead-lettering message", flavor=self.flavor.name, topic=message.topic, offset=message.offset, error=error
        )
        headers = (
            *message.headers,
            ("dlq_error", error[:2000].encode()),
            ("dlq_flavor", self.flavor.name.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
            ("dlq_at", datetime.now(UTC).isoformat().encode()),
        )
        # Raises when the DLQ publish is not acknowledged: the message is then not committed.
        await self.dead_letters.publish(dead_letter_topic(self.flavor.name), message.key, message.value, headers)
