"""Applies one remote change per message: idempotent by the change's id, retried, dead-lettered when it cannot be.

The change and its idempotency record (`handler_processed_events`, flavor `case-third-party-reader:<flavor>`)
commit in one transaction, so a redelivered or re-polled change is a no-op. Retries and dead letters are the
bus strategies' (`Retry`, `DeadLetterPolicy`), as for the handler flavors: a failure is retried with
exponential back-off, an engine being away is waited out without using up attempts, and after the last
attempt (at once for a change that cannot be read) the message goes to the flavor's dead-letter topic, its
offset committed only once the dead letter is acknowledged (`casem dlq list --reader F` shows them).
Messages of one remote issue share a key, hence a partition, and RunTask applies a partition in order.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Message, Producer
from casem.adapters.bus.strategies import DeadLetterPolicy, Retry, RetryPolicy
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


__all__ = ["ReaderRunner", "RetryPolicy", "processed_id", "processed_name"]

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
        self.retry = retry or RetryPolicy(wait_on=is_unavailable)
        self.record = processed_name(flavor)
        self.retrying = Retry(self.retry, on_retry=self._retrying)
        self.dead_letter = DeadLetterPolicy(
            dead_letters,
            lambda _message: reader_dead_letter_topic(flavor),
            {"flavor": f"case-third-party-reader-{flavor}"},
            poison=PoisonMessage,
            on_dead_letter=self._dead_lettered,
        )
        self._process = self.retrying.wrap(self.handle, self.dead_letter)

    def stop(self) -> None:
        """From now on a retry or a wait for an engine gives up (uncommitted) so the process can end."""
        self.retrying.stop()

    async def process(self, message: Message) -> None:
        """The RunTask function: returns once the message's outcome is durable (applied or dead-lettered)."""
        await self._process(message)

    async def handle(self, message: Message) -> None:
        """One attempt at a message: read the change, apply it once."""
        event = RemoteEvent.from_bytes(message.value)
        if event.system != self.flavor:
            raise PoisonMessage(f"a {event.system} change on the {self.flavor} feed")
        EVENTS.labels(self.flavor, await self.apply(event)).inc()

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

    def _retrying(self, error: BaseException, attempt: int, delay_s: float, message: Message) -> None:
        waiting = self.retry.waits_for(error)
        EVENTS.labels(self.flavor, "waited" if waiting else "retried").inc()
        log.warning(
            "engine unavailable; waiting" if waiting else "remote change failed; retrying",
            flavor=self.flavor,
            offset=message.offset,
            attempt=attempt,
            backoff_s=delay_s,
            error=str(error),
        )

    def _dead_lettered(self, message: Message, error: str, attempts: int) -> None:
        EVENTS.labels(self.flavor, "dead_lettered").inc()
        log.error(
            "dead-lettering remote change",
            flavor=self.flavor,
            topic=message.topic,
            offset=message.offset,
            attempts=attempts,
            error=error,
        )
