"""casem dlq: a flavor's dead letters are listed with their errors and replayed once the cause is fixed."""

from __future__ import annotations

import uuid

from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.services.case_event_handler.dlq import list_dead_letters, replay_dead_letters
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.topology.topics import dead_letter_topic
from tests.handlers.test_runner import FlakyFlavor, count, publish_outbox, run_until
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import Harness


async def test_dead_letters_are_listed_then_replayed_once(context: AppContext, harness: Harness) -> None:
    await make_changes(context, cases=2, changes_per_case=1)
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    flavor = FlakyFlavor(failures=10**6)
    flavor.name = f"dlq-test-{uuid.uuid4().hex[:8]}"  # its own dead-letter topic on a shared broker
    await bus.ensure_topic(dead_letter_topic(flavor.name), 1)
    runner = FlavorRunner(flavor, context, harness.producer(bus), retry=RetryPolicy(1, 0.01, 0.01))

    async def dead_lettered() -> bool:
        return len(await list_dead_letters(bus, flavor.name)) == 2

    await run_until(runner, harness, bus, topic, harness.name("broken"), dead_lettered)
    letters = await list_dead_letters(bus, flavor.name)
    assert {d.event_type for d in letters} == {"case.created"}
    assert all("downstream unavailable" in d.error and d.attempts == 1 for d in letters)

    # Still broken: the replay stops at the first dead letter and leaves both for later.
    report = await replay_dead_letters(bus, runner)
    assert report.applied == 0 and report.failed is not None and "downstream unavailable" in report.failure

    flavor.failures = 0  # the cause is fixed
    done: list[int] = []
    report = await replay_dead_letters(bus, runner, done.append)
    assert (report.applied, report.already_applied, report.failed, len(done)) == (2, 0, None, 2)
    applied = handler_processed_events.c.flavor == flavor.name
    assert await count(context, handler_processed_events, applied) == 2

    # Replayed once: a second replay has nothing left to do.
    again = await replay_dead_letters(bus, runner)
    assert (again.applied, again.already_applied, again.failed) == (0, 0, None)
    assert len(await list_dead_letters(bus, flavor.name)) == 2  # listing never consumes them
    assert await count(context, handler_processed_events, applied) == 2
