"""Dead-letter topics read back: list what is on one, and replay it through whoever dead-lettered it.

Every consumer in casem dead-letters with `strategies.DeadLetterPolicy` (the same headers), so listing and
replaying are the same for a handler flavor and a third-party reader flavor; only the topic, the replay
group and how a message is applied differ, and the caller gives those.

Listing reads the whole topic with a throwaway consumer group (nothing is committed). Replaying uses the
caller's replay group, so each dead letter is replayed once: its offset is committed only after its effect
committed. A dead letter that fails again stops the replay there, uncommitted, for the next replay.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from casem.adapters.bus import Bus, Consumer, ConsumerOptions, Message
from casem.adapters.bus.strategies import DeadLetterInfo

DRAIN_QUIET_S = 2.0  # an empty poll this long means the topic has been read to its end

# What a dead letter's value is, for people: (id, type) of the event or change it carries; None when it
# cannot be read (the reason it was dead-lettered, often).
Identify = Callable[[bytes], "tuple[str, str] | None"]


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
    def of(cls, message: Message, identify: Identify) -> DeadLetter:
        info = DeadLetterInfo.of(message.headers)
        found = identify(message.value)
        return cls(
            partition=message.partition,
            offset=message.offset,
            error=info.error,
            attempts=info.attempts,
            source=info.source,
            dead_lettered_at=info.at,
            event_id=found[0] if found else None,
            event_type=found[1] if found else None,
        )


@dataclass
class ReplayReport:
    applied: int = 0
    already_applied: int = 0
    failed: DeadLetter | None = None
    failure: str | None = None


async def _drain(consumer: Consumer) -> list[Message]:
    got: list[Message] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < DRAIN_QUIET_S:
        batch = await consumer.poll(max_messages=500, timeout=0.5)
        if batch:
            quiet_since = time.monotonic()
            got.extend(batch)
    return got


async def list_dead_letters(bus: Bus, topic: str, identify: Identify) -> list[DeadLetter]:
    await bus.ensure_topic(topic, 1)
    consumer = bus.consumer(f"casem-dlq-list-{uuid.uuid4().hex[:12]}", [topic], ConsumerOptions("earliest"))
    try:
        return [DeadLetter.of(m, identify) for m in await _drain(consumer)]
    finally:
        await consumer.close()


async def replay_dead_letters(
    bus: Bus,
    topic: str,
    group: str,
    apply: Callable[[Message], Awaitable[bool]],
    identify: Identify,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """`apply` each dead letter not replayed yet by `group` (True: applied now; False: it was already),
    committing as it goes; the first failure stops the replay there."""
    await bus.ensure_topic(topic, 1)
    consumer = bus.consumer(group, [topic], ConsumerOptions("earliest"))
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
                    applied = await apply(message)
                except Exception as exc:  # stop here: this one and what follows stay for the next replay
                    report.failed, report.failure = DeadLetter.of(message, identify), f"{type(exc).__name__}: {exc}"
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
