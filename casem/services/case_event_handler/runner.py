"""Runs one flavor: its consumer group on the tenant topics, under the bus's retry and dead-letter policies.

Per message: parse the CloudEvent (a message that is not one is poison: straight to the dead-letter
topic), skip event types the flavor does not declare, then apply the effect in a unit of work that
also records the event id as processed, so a redelivered event is a no-op. Retries with back-off and
dead letters are the strategies' (`Retry`, `DeadLetterPolicy`): a failing effect is retried, then goes
to the flavor's dead-letter topic with the error, and its offset is committed only after the dead
letter is acknowledged: nothing is dropped.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Message, Producer
from casem.adapters.bus.strategies import DeadLetterPolicy, Retry, RetryPolicy
from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.observability import context_from_headers, continued_span
from casem.services.case_event_handler.framework import Event, Flavor, HandlerServices, PoisonMessage, handles
from casem.topology.topics import dead_letter_topic

log = structlog.get_logger("case-event-handler")

HANDLED = Counter("casem_handler_events_total", "Events by outcome", ["flavor", "outcome"])
EFFECT_SECONDS = Histogram("casem_handler_effect_seconds", "Duration of one flavor effect", ["flavor"])

__all__ = ["FlavorRunner", "RetryPolicy", "already_processed"]


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
        # Flavors that write to another tenant than their event's (paging) open its unit of work from here.
        self.services.extras.setdefault("context", context)
        # An engine being away (database, search, Temporal...) is not the event's fault: it waits for the
        # engine however long that takes, uncommitted, instead of using up its attempts and dead-lettering.
        self.retry = retry or RetryPolicy(wait_on=is_unavailable)
        # The policies the flavor's RunTask applies around `handle` (see service.build_processor).
        self.retrying = Retry(self.retry, on_retry=self._retrying)
        self.dead_letter = DeadLetterPolicy(
            dead_letters,
            lambda _message: dead_letter_topic(flavor.name),
            {"flavor": flavor.name},
            poison=PoisonMessage,
            on_dead_letter=self._dead_lettered,
        )
        self._process = self.retrying.wrap(self.handle, self.dead_letter)

    def stop(self) -> None:
        """From now on a retry or a wait for an engine gives up (uncommitted) so the process can end."""
        self.retrying.stop()

    async def process(self, message: Message) -> None:
        """`handle` with the retries and dead letters of the pipeline, for callers outside one:
        returns once the message's outcome is durable (applied or dead-lettered)."""
        await self._process(message)

    async def handle(self, message: Message) -> None:
        """One attempt at a message: parse, skip what the flavor does not declare, apply."""
        event = Event.from_bytes(message.value)
        if not handles(self.flavor, event):
            HANDLED.labels(self.flavor.name, "skipped").inc()
            return
        # A traced event gets a span of its trace, so what the flavor changes or starts carries the trace on.
        attributes = {"casem.flavor": self.flavor.name, "casem.event.id": event.id, "casem.event.type": event.type}
        parent = context_from_headers(message.headers)
        with continued_span(f"{self.flavor.name} {event.type}", parent, SpanKind.CONSUMER, attributes):
            applied = await self.apply(event)
        HANDLED.labels(self.flavor.name, "applied" if applied else "duplicate").inc()

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

    def _retrying(self, error: BaseException, attempt: int, delay_s: float, message: Message) -> None:
        waiting = self.retry.waits_for(error)
        HANDLED.labels(self.flavor.name, "waited" if waiting else "retried").inc()
        log.warning(
            "engine unavailable; waiting" if waiting else "effect failed; retrying",
            flavor=self.flavor.name,
            event_id=dict(message.headers).get("ce_id", b"").decode(errors="replace") or None,
            offset=message.offset,
            attempt=attempt,
            backoff_s=delay_s,
            error=str(error),
        )

    def _dead_lettered(self, message: Message, error: str, attempts: int) -> None:
        HANDLED.labels(self.flavor.name, "dead_lettered").inc()
        log.error(
            "dead-lettering message",
            flavor=self.flavor.name,
            topic=message.topic,
            offset=message.offset,
            attempts=attempts,
            error=error,
        )
