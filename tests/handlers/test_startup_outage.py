"""case-event-handler started while Kafka is away: the flavor waits in place for its topics instead of exiting, its ops
endpoint answers alive but not ready naming the bus, the log has one line when the bus goes and one when it is back;
then it consumes and applies. A stop during the wait ends it at once. The outage is staged in front of the real broker
(tests/support/bus_outage.py); the shared broker itself is never stopped."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import structlog

from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.services.case_event_handler.service import run_flavor
from casem.services.case_event_relay.relay import relay_once
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import domain_events_topic
from tests.handlers.test_runner import count
from tests.relay.test_relay import make_changes
from tests.support.bus_outage import StagedBootstrap, engine_lines, ready, readyz, until, waiting_for_bus
from tests.support.fixtures.tenants import on_sqlite_only
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka

FLAVOR = "audit-trail"


@on_sqlite_only
async def test_a_flavor_waits_for_kafka_at_start_up_then_applies_events(context: AppContext) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        handler = asyncio.create_task(run_flavor(FLAVOR, context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop))
        try:
            # 1. Kafka away at start-up: alive, not ready naming the bus, still running.
            await until(waiting_for_bus(ops_port), timeout=60)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{ops_port}/healthz")).status_code == 200
            await asyncio.sleep(1.0)  # several waits
            assert not handler.done()
            assert (await readyz(ops_port))[0] == 503

            # 2. Kafka answers: ready, and the events that arrive are applied.
            await staged.answer()
            await until(ready(ops_port), timeout=90)
            total = await make_changes(context, cases=2, changes_per_case=1)
            producer = bus.producer()
            while await relay_once(
                context.databases[CASE_MANAGEMENT], producer, domain_events_topic(CASE_MANAGEMENT).name
            ):
                pass
            await producer.close()

            async def applied() -> bool:
                assert not handler.done()
                done = handler_processed_events.c.flavor == FLAVOR
                return await count(context, handler_processed_events, done) == total

            await until(applied, timeout=90)
            assert (await readyz(ops_port))[0] == 200
        finally:
            stop.set()
            await asyncio.wait_for(handler, 30)
            await bus.close()
            staged.close()
    assert engine_lines(logs) == [("engine unavailable; waiting", "bus"), ("engine back; resuming", "bus")]


@on_sqlite_only
async def test_a_stop_while_a_flavor_waits_for_kafka_ends_it_promptly(context: AppContext) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    handler = asyncio.create_task(run_flavor(FLAVOR, context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop))
    try:
        await until(waiting_for_bus(ops_port), timeout=60)
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(handler, 10)
        assert time.monotonic() - stopped_at < 5.0
        assert (await readyz(ops_port))[0] == 0  # the ops endpoint is closed too: the process can exit
    finally:
        stop.set()
        if not handler.done():
            handler.cancel()
        await bus.close()
        staged.close()
