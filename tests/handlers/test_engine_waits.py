"""case-event-handler waiting for an engine: one log line when it goes, one when it is back (not one per wait), on the
one-event path and the batch path alike; each wait still counted; a failing effect still logs each attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest
import structlog
from prometheus_client import REGISTRY

from casem.adapters.availability import is_unavailable
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.port import Message
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_relay.relay import relay_once
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import dead_letter_topic
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import drain
from tests.support.fixtures.tenants import on_sqlite_only

FAST = RetryPolicy(3, 0.001, 0.005, wait_on=is_unavailable)


class AwayFlavor:
    """A flavor whose engine is away for its first `outage` calls (one-event or batch), then answers; or whose effect
    fails `failures` times (not an outage)."""

    name: ClassVar[str] = "away-test"
    handles: ClassVar[frozenset[str]] = frozenset({"case.created"})

    def __init__(self, outage: int = 0, failures: int = 0) -> None:
        self.outage = outage
        self.failures = failures
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.calls <= self.outage:
            raise ConnectionRefusedError(f"connection refused (call {self.calls})")
        if self.calls <= self.outage + self.failures:
            raise RuntimeError(f"effect failed (call {self.calls})")

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        self._call()

    async def apply_batch(self, events: list[Event], uow: UnitOfWork, services: HandlerServices) -> None:
        self._call()


def waited() -> float:
    return REGISTRY.get_sample_value("casem_handler_events_total", {"flavor": "away-test", "outcome": "waited"}) or 0.0


async def created_events(context: AppContext, tmp_path: Path, cases: int) -> tuple[EmbeddedBus, list[Message]]:
    await make_changes(context, cases=cases, changes_per_case=0)
    bus = EmbeddedBus(tmp_path / "bus.db")
    await bus.ensure_topic("events", 1)
    await bus.ensure_topic(dead_letter_topic("away-test"), 1)
    producer = bus.producer()
    while await relay_once(context.databases[CASE_MANAGEMENT], producer, "events"):
        pass
    await producer.close()
    consumer = bus.consumer("reader", ["events"])
    messages = [m for m in await drain(consumer, 100, timeout=2) if b"case.created" in m.value]
    await consumer.close()
    assert len(messages) == cases
    return bus, messages


def engine_lines(logs: list[dict]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (e["event"], e.get("engine"))
        for e in logs
        if e["event"] in ("engine unavailable; waiting", "engine back; resuming")
    ]


@on_sqlite_only
async def test_one_event_path_logs_an_outage_once_and_counts_each_wait(context: AppContext, tmp_path: Path) -> None:
    bus, messages = await created_events(context, tmp_path, cases=2)
    flavor = AwayFlavor(outage=6)
    runner = FlavorRunner(flavor, context, bus.producer(), retry=FAST)
    before = waited()
    with structlog.testing.capture_logs() as logs:
        for message in messages:
            await runner.process(message)
    assert flavor.calls == 6 + 2
    assert waited() - before == 6  # each wait counted
    assert engine_lines(logs) == [
        ("engine unavailable; waiting", "database"),
        ("engine back; resuming", "database"),
    ]
    assert runner.waits.away == {}
    await bus.close()


@on_sqlite_only
async def test_batch_path_logs_an_outage_once_and_counts_each_wait(context: AppContext, tmp_path: Path) -> None:
    bus, messages = await created_events(context, tmp_path, cases=3)
    flavor = AwayFlavor(outage=5)
    runner = FlavorRunner(flavor, context, bus.producer(), retry=FAST)
    before = waited()
    with structlog.testing.capture_logs() as logs:
        await runner.handle_batch(messages)
        assert flavor.calls == 5 + 1  # the batch waited, then applied whole
        await runner.handle_batch(messages)  # redelivered: already processed, no effect, no wait
    assert waited() - before == 5
    assert engine_lines(logs) == [
        ("engine unavailable; waiting", "database"),
        ("engine back; resuming", "database"),
    ]
    assert [e for e in logs if e["event"] == "batch apply failed; applying its events one by one"] == []
    await bus.close()


@on_sqlite_only
async def test_a_waiting_runner_is_not_ready_naming_the_engine(context: AppContext, tmp_path: Path) -> None:
    bus, messages = await created_events(context, tmp_path, cases=1)
    flavor = AwayFlavor(outage=1_000_000)
    runner = FlavorRunner(flavor, context, bus.producer(), retry=FAST)

    async def stop_once_waiting() -> None:
        while not runner.waits.away:
            await asyncio.sleep(0.001)
        assert list(await runner.waits.readiness()) == ["database (waiting)"]
        runner.stop()

    stopper = asyncio.create_task(stop_once_waiting())
    with pytest.raises(ConnectionRefusedError):
        await runner.process(messages[0])  # stopped while waiting: uncommitted, neither applied nor dead-lettered
    await stopper
    await bus.close()


@on_sqlite_only
async def test_a_failing_effect_still_logs_each_attempt(context: AppContext, tmp_path: Path) -> None:
    bus, messages = await created_events(context, tmp_path, cases=1)
    flavor = AwayFlavor(failures=2)
    runner = FlavorRunner(flavor, context, bus.producer(), retry=FAST)
    with structlog.testing.capture_logs() as logs:
        await runner.process(messages[0])
    retried = [e for e in logs if e["event"] == "effect failed; retrying"]
    assert [e["attempt"] for e in retried] == [1, 2]
    assert engine_lines(logs) == []
    await bus.close()
