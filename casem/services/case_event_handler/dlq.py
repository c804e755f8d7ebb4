"""Dead letters of a flavor: list them, and replay them through the flavor once the cause is fixed.

Listing reads the whole dead-letter topic with a throwaway consumer group (nothing is committed).
Replaying uses the flavor's replay group (`case-event-handler-<flavor>.dlq-replay`), so each dead
letter is replayed once: its offset is committed only after the flavor's effect committed. A dead
letter that fails again stops the replay there, uncommitted, to be retried by the next replay.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from casem.adapters.bus import Bus, ConsumerOptions, Message
from casem.adapters.bus.strategies import DeadLetterInfo
from casem.services.case_event_handler.framework import Event, PoisonMessage
from casem.services.case_event_handler.runner import FlavorRunner
from casem.topology.topics import dead_letter_topic, handler_group

DRAIN_QUIET_S = 2.0  # an empty poll this long means the topic has been read to its end


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    error: str
    attempts: int
    source: str
    dead_lettered_at: str
    event_id: str | None
    event_type: str | None

    @classmethod
    def of(cls, message: Message) -> DeadLetter:
        info = DeadLetterInfo.of(message.headers)  # the headers the bus's DeadLetterPolicy wrote
        try:
            event = Event.from_bytes(message.value)
            event_id, event_type = event.id, event.type
        except PoisonMessage:
            event_id = event_type = None
        return cls(
            partition=message.partition,
            offset=message.offset,
            error=info.error,
            attempts=info.attempts,
            source=info.source,
            dead_lettered_at=info.at,
            event_id=event_id,
            event_type=event_type,
        )


def replay_group(flavor: str) -> str:
    return f"{handler_group(flavor)}.dlq-replay"


async def _drain(consumer, on_message: Callable[[Message], None] | None = None) -> list[Message]:  # type: ignore[no-untyped-def]
    got: list[Message] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < DRAIN_QUIET_S:
        batch = await consumer.poll(max_messages=500, timeout=0.5)
        if batch:
            quiet_since = time.monotonic()
            got.extend(batch)
            for message in batch:
                if on_message:
                    on_message(message)
    return got


async def list_dead_letters(bus: Bus, flavor: str) -> list[DeadLetter]:
    topic = dead_letter_topic(flavor)
    await bus.ensure_topic(topic, 1)
    consumer = bus.consumer(f"casem-dlq-list-{uuid.uuid4().hex[:12]}", [topic], ConsumerOptions("earliest"))
    try:
        return [DeadLetter.of(m) for m in await _drain(consumer)]
    finally:
        await consumer.close()


@dataclass
class ReplayReport:
    applied: int = 0
    already_applied: int = 0
    failed: DeadLetter | None = None
    failure: str | None = None


async def replay_dead_letters(
    bus: Bus, runner: FlavorRunner, on_progress: Callable[[int], None] | None = None
) -> ReplayReport:
    """Apply each not-yet-replayed dead letter through the flavor, committing as it goes."""
    topic = dead_letter_topic(runner.flavor.name)
    await bus.ensure_topic(topic, 1)
    consumer = bus.consumer(replay_group(runner.flavor.name), [topic], ConsumerOptions("earliest"))
    report = ReplayReport()
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < DRAIN_QUIET_S:
            batch = await consumer.poll(max_messages=100, timeout=0.5)
            if not batch:
                continue
            quiet_since = time.monotonic()
            for message in batch:
                try:
                    applied = await runner.apply(Event.from_bytes(message.value))
                except Exception as exc:  # stop here: this one and what follows stay for the next replay
                    report.failed, report.failure = DeadLetter.of(message), f"{type(exc).__name__}: {exc}"
                    return report
                if applied:
                    report.applied += 1
                else:
                    report.already_applied += 1
                await consumer.commit({message.topic_partition: message.next_offset})
                if on_progress:
                    on_progress(1)
        return report
    finally:
        await consumer.close()
