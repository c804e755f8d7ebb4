"""Dead letters of a reader flavor (jira, servicenow): list them, and replay them once the cause is fixed.

A remote change the reader could not apply after its retries (a case deleted meanwhile, a database refusing
it) is on `case-third-party-reader-<flavor>.dlq`. Replaying applies each through the reader's idempotent
`apply` (a change already applied is skipped) with the replay group `<reader group>.<flavor>.dlq-replay`,
committing as it goes; the bus's dead-letter module does the reading (casem/adapters/bus/dead_letters.py).
"""

from __future__ import annotations

from collections.abc import Callable

from casem.adapters.bus import Bus, Message
from casem.adapters.bus.dead_letters import DeadLetter, ReplayReport
from casem.adapters.bus.dead_letters import list_dead_letters as list_topic
from casem.adapters.bus.dead_letters import replay_dead_letters as replay_topic
from casem.app.events import PoisonMessage
from casem.app.integrations.remote_events import RemoteEvent
from casem.services.case_third_party_reader.runner import ReaderRunner
from casem.topology.topics import reader_dead_letter_topic, reader_group

__all__ = ["DeadLetter", "ReplayReport", "list_reader_dead_letters", "replay_reader_dead_letters"]


def replay_group(flavor: str) -> str:
    # The seed's reader group (`case-management`) is shared by both flavors: the replay group names the flavor.
    return f"{reader_group(flavor)}.{flavor}.dlq-replay"


def identify(value: bytes) -> tuple[str, str] | None:
    try:
        change = RemoteEvent.from_bytes(value)
    except PoisonMessage:
        return None
    return change.id, f"{change.system} {change.kind} {change.issue_key}"


async def list_reader_dead_letters(bus: Bus, flavor: str) -> list[DeadLetter]:
    return await list_topic(bus, reader_dead_letter_topic(flavor), identify)


async def replay_reader_dead_letters(
    bus: Bus, runner: ReaderRunner, on_progress: Callable[[int], None] | None = None
) -> ReplayReport:
    async def apply(message: Message) -> bool:
        return await runner.apply(RemoteEvent.from_bytes(message.value)) != "duplicate"

    topic = reader_dead_letter_topic(runner.flavor)
    return await replay_topic(bus, topic, replay_group(runner.flavor), apply, identify, on_progress)
