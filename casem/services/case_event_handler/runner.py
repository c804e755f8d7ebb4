"""Runs one flavor: its consumer group on the tenant topics, under the bus's retry and dead-letter policies.

Per message: parse the CloudEvent (a message that is not one is poison: straight to the dead-letter
topic), skip event types the flavor does not declare, then apply the effect in a unit of work that
also records the event id as processed, so a redelivered event is a no-op. Retries with back-off and
dead letters are the strategies' (`Retry`, `DeadLetterPolicy`): a failing effect is retried, then goes
to the flavor's dead-letter topic with the error, and its offset is committed only after the dead
letter is acknowledged: nothing is dropped.

A flavor with `apply_batch` is given the events of a polled batch at once (`handle_batch`): one unit of work per
tenant checks which were processed already, applies the rest together and records them, in one transaction. An
engine being away is waited for, uncommitted, as for one event. Any other failure of the batch sends its events
through the one-event path above, each with its own retries and, if it keeps failing, its own dead letter: a
poison event is dead-lettered alone, never with its batch.

A flavor whose effect converges on current state (`converges`, framework.py) is applied without the processed
check and record, in a read-only unit of work on the primary: a redelivered event or batch is applied again and
finds nothing to do. Its events all count as "applied" (none as "duplicate").
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Message, Producer
from casem.adapters.bus.strategies import DeadLetterPolicy, Retry, RetryPolicy
from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.observability import context_from_headers, continued_span, start_span
from casem.services.case_event_handler.framework import (
    Event,
    Flavor,
    HandlerServices,
    PoisonMessage,
    converges,
    handles,
)
from casem.services.common.ops import EngineWaits
from casem.services.common.waiting import engine_of
from casem.topology.topics import dead_letter_topic

log = structlog.get_logger("case-event-handler")

HANDLED = Counter("casem_handler_events_total", "Events by outcome", ["flavor", "outcome"])
EFFECT_SECONDS = Histogram("casem_handler_effect_seconds", "Duration of one flavor effect", ["flavor"])
BATCH_SECONDS = Histogram(
    "casem_handler_batch_seconds",
    "Duration of one batch apply (its events' processed check, effect and record, in one transaction)",
    ["flavor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_EVENTS = Counter("casem_handler_batch_events_total", "Events through batch applies", ["flavor"])

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
        waits: EngineWaits | None = None,
    ) -> None:
        self.flavor = flavor
        self.context = context
        self.converges = converges(flavor)  # no processed-events record; read-only units of work on the primary
        self.dead_letters = dead_letters
        self.services = services or HandlerServices()
        # Flavors that write to another tenant than their event's (paging) open its unit of work from here.
        self.services.extras.setdefault("context", context)
        # An engine being away (database, search, Temporal...) is not the event's fault: it waits for the
        # engine however long that takes, uncommitted, instead of using up its attempts and dead-lettering.
        self.retry = retry or RetryPolicy(wait_on=is_unavailable)
        # The engines awaited right now (the service's readiness): one log line when one goes, one when it is back.
        self.waits = waits or EngineWaits(log.bind(flavor=flavor.name), "case-event-handler")
        # The policies the flavor's RunTask applies around `handle` (see service.build_processor).
        self.retrying = Retry(self.retry, on_retry=self._retrying, on_resumed=self._resumed)
        self.dead_letter = DeadLetterPolicy(
            dead_letters,
            lambda _message: dead_letter_topic(flavor.name),
            {"flavor": flavor.name},
            poison=PoisonMessage,
            on_dead_letter=self._dead_lettered,
        )
        self._process = self.retrying.wrap(self.handle, self.dead_letter)
        # A batch is tried once, waiting however long for an engine that is away; if it fails otherwise, its
        # events go one by one through `_process` (the retries and dead letters above), so none is lost or blamed
        # for another.
        self.batch_retrying = Retry(
            replace(self.retry, max_attempts=1), on_retry=self._batch_waiting, on_resumed=self._resumed
        )

    def stop(self) -> None:
        """From now on a retry or a wait for an engine gives up (uncommitted) so the process can end."""
        self.retrying.stop()
        self.batch_retrying.stop()

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
        """Apply the effect once: False when this flavor already processed the event (never for a flavor whose
        effect converges: it is applied again, and finds nothing to do)."""
        if event.tenant not in self.context.databases:
            raise PoisonMessage(f"event for tenant {event.tenant!r}, which this deployment does not serve")
        started = time.perf_counter()
        if self.converges:
            async with self.context.uow(event.tenant, read_only=True, primary=True) as uow:
                await self.flavor.apply(event, uow, self.services)
            EFFECT_SECONDS.labels(self.flavor.name).observe(time.perf_counter() - started)
            return True
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

    async def handle_batch(self, messages: list[Message]) -> None:
        """A polled batch, for a flavor with `apply_batch`: returns once every message's outcome is durable (applied,
        already processed, skipped or dead-lettered). Raises, leaving the batch uncommitted, only when stopped."""
        by_tenant: dict[str, list[tuple[Message, Event]]] = {}
        alone: list[Message] = []  # not an event, or for a tenant not served: the one-event path dead-letters them
        for message in messages:
            try:
                event = Event.from_bytes(message.value)
            except Exception:
                alone.append(message)
                continue
            if not handles(self.flavor, event):
                HANDLED.labels(self.flavor.name, "skipped").inc()
            elif event.tenant not in self.context.databases:
                alone.append(message)
            else:
                by_tenant.setdefault(event.tenant, []).append((message, event))
        for message in alone:
            await self.process(message)
        for tenant, entries in by_tenant.items():
            spans = [self._event_span(message, event) for message, event in entries]
            try:
                await self.batch_retrying.call(self.apply_batch, tenant, [event for _, event in entries])
            except Exception as error:
                _end_spans(spans, error)
                if self.batch_retrying.stopped:
                    raise
                HANDLED.labels(self.flavor.name, "unbatched").inc(len(entries))
                log.warning(
                    "batch apply failed; applying its events one by one",
                    flavor=self.flavor.name,
                    tenant=tenant,
                    events=len(entries),
                    error=str(error),
                )
                for message, _ in entries:
                    await self.process(message)
            else:
                _end_spans(spans, None)

    async def apply_batch(self, tenant: str, events: list[Event]) -> int:
        """Apply the events not processed yet in one transaction with their processed records; how many were. A
        flavor whose effect converges gets them all (each once), in a read-only unit of work with no record."""
        started = time.perf_counter()
        if self.converges:
            fresh = list({event.id: event for event in events}.values())
            async with self.context.uow(tenant, read_only=True, primary=True) as uow:
                await self.flavor.apply_batch(fresh, uow, self.services)  # type: ignore[attr-defined]
            self._batch_applied(started, events, fresh)
            return len(fresh)
        async with self.context.uow(tenant) as uow:
            ids = list(dict.fromkeys(event.id for event in events))
            done = set(
                (
                    await uow.execute(
                        sa.select(handler_processed_events.c.event_id).where(
                            handler_processed_events.c.flavor == self.flavor.name,
                            handler_processed_events.c.event_id.in_(ids),
                        )
                    )
                ).scalars()
            )
            fresh = list({event.id: event for event in events if event.id not in done}.values())  # a repeat once
            if fresh:
                await self.flavor.apply_batch(fresh, uow, self.services)  # type: ignore[attr-defined]
                now = datetime.now(UTC)
                await uow.execute(
                    sa.insert(handler_processed_events),
                    [{"flavor": self.flavor.name, "event_id": event.id, "processed_at": now} for event in fresh],
                )
                await uow.commit()
        self._batch_applied(started, events, fresh)
        return len(fresh)

    def _batch_applied(self, started: float, events: list[Event], fresh: list[Event]) -> None:
        BATCH_SECONDS.labels(self.flavor.name).observe(time.perf_counter() - started)
        BATCH_EVENTS.labels(self.flavor.name).inc(len(events))
        HANDLED.labels(self.flavor.name, "applied").inc(len(fresh))
        HANDLED.labels(self.flavor.name, "duplicate").inc(len(events) - len(fresh))

    def _event_span(self, message: Message, event: Event) -> Span | None:
        """The event's span, in its own trace (a batch is no one's trace); None for an untraced event."""
        attributes = {"casem.flavor": self.flavor.name, "casem.event.id": event.id, "casem.event.type": event.type}
        return start_span(
            f"{self.flavor.name} {event.type}", context_from_headers(message.headers), SpanKind.CONSUMER, attributes
        )

    def _batch_waiting(self, error: BaseException, attempt: int, delay_s: float, tenant: str, events: object) -> None:
        HANDLED.labels(self.flavor.name, "waited").inc()
        self.waits.waiting(engine_of(error), error)  # logs once per outage, not once per wait

    def _resumed(self, waited_for: BaseException, *args: object) -> None:
        self.waits.back(engine_of(waited_for))

    def _retrying(self, error: BaseException, attempt: int, delay_s: float, message: Message) -> None:
        if self.retry.waits_for(error):
            HANDLED.labels(self.flavor.name, "waited").inc()
            self.waits.waiting(engine_of(error), error)  # logs once per outage, not once per wait
            return
        HANDLED.labels(self.flavor.name, "retried").inc()
        log.warning(
            "effect failed; retrying",
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


def _end_spans(spans: list[Span | None], error: BaseException | None) -> None:
    for span in spans:
        if span is not None:
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, str(error)))
            span.end()
