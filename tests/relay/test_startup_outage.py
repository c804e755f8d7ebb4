"""case-event-relay started while Kafka is away: it waits in place for its topics instead of exiting, its ops endpoint
answers alive but not ready naming the bus, the log has one line when the bus goes and one when it is back; then it
publishes. A stop during the wait ends it at once. The outage is staged in front of the real broker
(tests/support/bus_outage.py); the shared broker itself is never stopped."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import structlog

from casem.app.context import AppContext
from casem.services.case_event_relay.service import run_relay
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import domain_events_topic
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import drain
from tests.support.bus_outage import StagedBootstrap, engine_lines, ready, readyz, until, waiting_for_bus
from tests.support.fixtures.tenants import on_sqlite_only
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka


@on_sqlite_only
async def test_relay_waits_for_kafka_at_start_up_then_publishes(context: AppContext) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        relay = asyncio.create_task(run_relay(context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop))
        try:
            # 1. Kafka away at start-up: alive, not ready naming the bus, still running.
            await until(waiting_for_bus(ops_port), timeout=60)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{ops_port}/healthz")).status_code == 200
            await asyncio.sleep(1.0)  # several waits
            assert not relay.done()
            assert (await readyz(ops_port))[0] == 503

            # 2. Kafka answers: ready, and the outbox is published.
            await staged.answer()
            await until(ready(ops_port), timeout=90)
            total = await make_changes(context, cases=2, changes_per_case=1)
            consumer = bus.consumer("startup-check", [domain_events_topic(CASE_MANAGEMENT).name])
            published = await drain(consumer, total, timeout=60)
            await consumer.close()
            assert len(published) == total
            assert not relay.done()
        finally:
            stop.set()
            await asyncio.wait_for(relay, 30)
            await bus.close()
            staged.close()
    assert engine_lines(logs) == [("engine unavailable; waiting", "bus"), ("engine back; resuming", "bus")]


@on_sqlite_only
async def test_a_stop_while_the_relay_waits_for_kafka_ends_it_promptly(context: AppContext) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop))
    try:
        await until(waiting_for_bus(ops_port), timeout=60)
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(relay, 10)
        assert time.monotonic() - stopped_at < 5.0
        assert (await readyz(ops_port))[0] == 0  # the ops endpoint is closed too: the process can exit
    finally:
        stop.set()
        if not relay.done():
            relay.cancel()
        await bus.close()
        staged.close()
