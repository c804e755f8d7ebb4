"""Dead letters of a flavor: list them, and replay them through the flavor once the cause is fixed.

The reading and replaying are the bus's (casem/adapters/bus/dead_letters.py); here are the flavor's topic,
its replay group (`case-event-handler-<flavor>.dlq-replay`) and how a dead letter is applied: through the
flavor's idempotent `apply`, so an event it already processed counts as already applied.
"""

from __future__ import annotations

from collections.abc import Callable

from casem.adapters.bus import Bus, Message
from casem.adapters.bus.dead_letters import DeadLetter, ReplayReport
from casem.adapters.bus.dead_letters import list_dead_letters as list_topic
from casem.adapters.bus.dead_letters import replay_dead_letters as replay_topic
from casem.services.case_event_handler.framework import Event, PoisonMessage
from casem.services.case_event_handler.runner import FlavorRunner
from casem.topology.topics import dead_letter_topic, handler_group

__all__ = ["DeadLetter", "ReplayReport", "list_dead_letters", "replay_dead_letters", "replay_group"]


def replay_group(flavor: str) -> str:
    return f"{handler_group(flavor)}.dlq-replay"


def identify(value: bytes) -> tuple[str, str] | None:
    try:
        event = Event.from_bytes(value)
    except PoisonMessage:
        return None
    return event.id, event.type


async def list_dead_letters(bus: Bus, flavor: str) -> list[DeadLetter]:
    return await list_topic(bus, dead_letter_topic(flavor), identify)


async def replay_dead_letters(
    bus: Bus, runner: FlavorRunner, on_progress: Callable[[int], None] | None = None
) -> ReplayReport:
    """Apply each not-yet-replayed dead letter through the flavor, committing as it goes."""

    async def apply(message: Message) -> bool:
        return await runner.apply(Event.from_bytes(message.value))

    name = runner.flavor.name
    return await replay_topic(bus, dead_letter_topic(name), replay_group(name), apply, identify, on_progress)
