"""case-event-handler runner: every flavor applies every event once; retries; dead letters."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import sqlalchemy as sa
from prometheus_client import REGISTRY

from casem.adapters.bus.port import Bus, Message
from casem.adapters.storage.tables import audit_log, case_metrics, domain_events, handler_processed_events
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import build_processor, load_flavor
from casem.services.case_event_relay.relay import relay_once
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import dead_letter_topic
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import Harness, drain


async def count(ctx: AppContext, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


async def publish_outbox(ctx: AppContext, harness: Harness, bus: Bus) -> tuple[str, int]:
    topic = await harness.topic(bus, partitions=3)
    producer = harness.producer(bus)
    published = 0
    while n := await relay_once(ctx.databases[CASE_MANAGEMENT], producer, topic):
        published += n
    return topic, published


async def run_until(runner: FlavorRunner, harness: Harness, bus: Bus, topic: str, group: str, done) -> None:  # type: ignore[no-untyped-def]
    consumer = harness.consumer(bus, group, [topic])
    processor = build_processor(runner, consumer, commit_every=10)
    task = asyncio.create_task(processor.run())
    deadline = time.monotonic() + 60
    try:
        while not await done():
            assert time.monotonic() < deadline, "flavor did not finish in time"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
    finally:
        processor.stop()
        await asyncio.wait_for(task, 30)


async def test_audit_and_analytics_apply_every_event_exactly_once(context: AppContext, harness: Harness) -> None:
    total = await make_changes(context, cases=6, changes_per_case=3)
    bus = harness.bus()
    topic, published = await publish_outbox(context, harness, bus)
    assert published == total
    dlq = harness.producer(bus)

    audit = FlavorRunner(load_flavor("audit-trail"), context, dlq)

    async def audited() -> bool:
        return await count(context, audit_log) == total

    await run_until(audit, harness, bus, topic, harness.name("audit"), audited)
    # Redelivery of the whole stream (a new group reads from the start): no effect is applied twice.
    await run_until(audit, harness, bus, topic, harness.name("audit-again"), audited)
    assert await count(context, audit_log) == total
    assert await count(context, handler_processed_events, handler_processed_events.c.flavor == "audit-trail") == total

    analytics = FlavorRunner(load_flavor("analytics"), context, dlq)

    async def analysed() -> bool:
        return await count(context, case_metrics, case_metrics.c.priority == "P3") == 6

    await run_until(analytics, harness, bus, topic, harness.name("analytics"), analysed)
    async with context.uow(read_only=True) as uow:
        rows = (await uow.execute(sa.select(case_metrics))).all()
    assert len(rows) == 6 and all(r.first_response_at is not None for r in rows)


class FlakyFlavor:
    """A flavor whose effect fails a set number of times per event (a real effect, in the database)."""

    name: ClassVar[str] = "flaky-test"
    handles: ClassVar[frozenset[str]] = frozenset({"case.created"})

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        self.calls[event.id] = self.calls.get(event.id, 0) + 1
        if self.calls[event.id] <= self.failures:
            raise RuntimeError(f"downstream unavailable (attempt {self.calls[event.id]})")


class Outcomes:
    """The flavor's outcome counters (casem_handler_events_total), as changes since creation."""

    NAMES = ("applied", "duplicate", "retried", "dead_lettered")  # not "skipped": other event types in the stream

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        labels = {"flavor": self.flavor}
        return {
            n: REGISTRY.get_sample_value("casem_handler_events_total", {**labels, "outcome": n}) or 0.0
            for n in self.NAMES
        }

    def since(self) -> dict[str, float]:
        now = self._read()
        return {n: now[n] - self.start[n] for n in self.NAMES if now[n] != self.start[n]}


async def test_failures_are_retried_then_dead_lettered(context: AppContext, harness: Harness) -> None:
    await make_changes(context, cases=2, changes_per_case=1)
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    await bus.ensure_topic(dead_letter_topic("flaky-test"), 1)
    dlq_reader = harness.consumer(bus, harness.name("dlq-reader"), [dead_letter_topic("flaky-test")])
    await dlq_reader.poll(timeout=0.5)  # join before anything is dead-lettered in this test

    # The dead-letter topic is the flavor's, shared with this test's other engine variant running alongside
    # (xdist): only dead letters of this test's own source topic count.
    def ours(messages: list[Message]) -> list[Message]:
        return [m for m in messages if dict(m.headers).get("dlq_source", b"").startswith(f"{topic}/".encode())]

    before = len(ours(await drain(dlq_reader, 1000, timeout=2)))

    outcomes = Outcomes("flaky-test")
    recovering = FlakyFlavor(failures=2)
    runner = FlavorRunner(recovering, context, harness.producer(bus), retry=RetryPolicy(3, 0.01, 0.05))

    async def both_applied() -> bool:
        return await count(context, handler_processed_events, handler_processed_events.c.flavor == "flaky-test") == 2

    await run_until(runner, harness, bus, topic, harness.name("flaky"), both_applied)
    assert sorted(recovering.calls.values()) == [3, 3]
    assert outcomes.since() == {"retried": 4, "applied": 2}

    broken = FlakyFlavor(failures=99)
    broken.name = "flaky-test"  # same flavor, same dead-letter topic
    dead = FlavorRunner(broken, context, harness.producer(bus), retry=RetryPolicy(2, 0.01, 0.05))
    dead_letters = []

    async def dead_lettered() -> bool:
        dead_letters.extend(ours(await dlq_reader.poll(timeout=0.2)))
        return len(dead_letters) >= 2

    # A new group so events are redelivered; they were already processed by the first runner,
    # so clear that record to make the broken flavor try them.
    async with context.uow() as uow:
        await uow.execute(sa.delete(handler_processed_events).where(handler_processed_events.c.flavor == "flaky-test"))
        await uow.commit()
    await run_until(dead, harness, bus, topic, harness.name("broken"), dead_lettered)
    assert outcomes.since() == {"retried": 4 + 2, "applied": 2, "dead_lettered": 2}
    headers = dict(dead_letters[0].headers)
    assert b"downstream unavailable" in headers["dlq_error"] and headers["dlq_attempts"] == b"2"
    assert before == 0
    assert await count(context, domain_events) > 0


async def test_a_message_that_is_not_an_event_goes_to_the_dead_letter_topic(
    context: AppContext, harness: Harness
) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus)
    await bus.ensure_topic(dead_letter_topic("audit-trail"), 1)
    producer = harness.producer(bus)
    await producer.publish(topic, b"k", b"{not json")
    runner = FlavorRunner(load_flavor("audit-trail"), context, producer)
    consumer = harness.consumer(bus, harness.name("poison"), [topic])
    [message] = await drain(consumer, 1)
    await runner.process(message)
    reader = harness.consumer(bus, harness.name("dlq"), [dead_letter_topic("audit-trail")])
    found = [m for m in await drain(reader, 10_000, timeout=5) if m.value == b"{not json"]
    assert found and b"not a casem CloudEvent" in dict(found[-1].headers)["dlq_error"]
