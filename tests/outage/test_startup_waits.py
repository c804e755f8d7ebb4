"""Services started while Kafka is away (casem/services/common/waiting.py): each waits in place for its topics instead
of exiting, its ops endpoint answers alive (/healthz: what the chart's liveness and start-up probes look at) but not
ready naming the bus, the log has one line when the bus goes and one when it is back; then it does its work. A stop
during the wait ends it at once.

One test per behaviour, run for each service: case-event-relay (then publishes the outbox), a case-event-handler flavor
(then applies events) and case-intake (no gRPC server while it waits; then serves intakes). The outage is staged in
front of the real broker (tests/support/bus_outage.py); the shared broker itself is never stopped, unlike the engine
outage test beside this one."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.storage.tables import handler_processed_events
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import intake_service_pb2_grpc
from casem.services.case_event_handler.service import run_flavor
from casem.services.case_event_relay.relay import relay_once
from casem.services.case_event_relay.service import run_relay
from casem.services.case_intake.server import INTAKE_SERVICE, run_intake
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import domain_events_topic, intake_topic
from tests.handlers.test_runner import count
from tests.intake.stack import intake, new_tenant
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import drain
from tests.support.bus_outage import StagedBootstrap, engine_lines, ready, readyz, until, waiting_for_bus
from tests.support.fixtures.tenants import on_sqlite_only
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka


class Relay:
    """case-event-relay: once the bus answers, the outbox is published."""

    async def run(self, context: AppContext, bus: NamespacedBus, ops_port: int, stop: asyncio.Event) -> None:
        await run_relay(context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop)

    async def while_waiting(self) -> None:
        pass

    async def works(self, context: AppContext, bus: NamespacedBus, running: asyncio.Task[None]) -> None:
        total = await make_changes(context, cases=2, changes_per_case=1)
        consumer = bus.consumer("startup-check", [domain_events_topic(CASE_MANAGEMENT).name])
        published = await drain(consumer, total, timeout=60)
        await consumer.close()
        assert len(published) == total


class Handler:
    """A case-event-handler flavor: once the bus answers, the events that arrive are applied."""

    flavor = "audit-trail"

    async def run(self, context: AppContext, bus: NamespacedBus, ops_port: int, stop: asyncio.Event) -> None:
        await run_flavor(self.flavor, context, bus, [CASE_MANAGEMENT], ops_port=ops_port, stop=stop)

    async def while_waiting(self) -> None:
        pass

    async def works(self, context: AppContext, bus: NamespacedBus, running: asyncio.Task[None]) -> None:
        total = await make_changes(context, cases=2, changes_per_case=1)
        producer = bus.producer()
        while await relay_once(context.databases[CASE_MANAGEMENT], producer, domain_events_topic(CASE_MANAGEMENT).name):
            pass
        await producer.close()

        async def applied() -> bool:
            assert not running.done()
            done = handler_processed_events.c.flavor == self.flavor
            return await count(context, handler_processed_events, done) == total

        await until(applied, timeout=90)


class Intake:
    """case-intake: its gRPC server starts only once the topic exists (nothing answers there while it waits, so the
    chart must not probe liveness there); then it is SERVING and publishes what it acknowledges."""

    def __init__(self) -> None:
        self.grpc_port = free_port()

    async def run(self, context: AppContext, bus: NamespacedBus, ops_port: int, stop: asyncio.Event) -> None:
        await run_intake(context, bus, f"127.0.0.1:{self.grpc_port}", stop=stop, ops_port=ops_port)

    async def health(self, service: str) -> int | grpc.StatusCode:
        """The gRPC health status of `service`, or the call's error code when nothing answers there."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=2.0
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
            return reply.status

    async def while_waiting(self) -> None:
        assert await self.health("") == grpc.StatusCode.UNAVAILABLE

    async def works(self, context: AppContext, bus: NamespacedBus, running: asyncio.Task[None]) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING

        async def grpc_serving() -> bool:
            assert not running.done()
            return await self.health(INTAKE_SERVICE) == serving

        await until(grpc_serving, timeout=30)
        assert await self.health("") == serving
        tenant = await new_tenant(context)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
            response = await stub.Submit(intake(tenant, "after-the-wait"), metadata=tenant.metadata)
        assert response.intake_key == "after-the-wait"
        consumer = bus.consumer("startup-check", [intake_topic().name])
        [message] = await drain(consumer, 1, timeout=60)
        await consumer.close()
        assert message.key == f"{tenant.creds.org_id}/after-the-wait".encode()


SERVICES = {"case-event-relay": Relay, "case-event-handler": Handler, "case-intake": Intake}


@on_sqlite_only
@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_waits_for_kafka_at_start_up_alive_but_not_ready_then_works(
    context: AppContext, service: str
) -> None:
    waiter = SERVICES[service]()
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(waiter.run(context, bus, ops_port, stop))
        try:
            # 1. Kafka away at start-up: alive, not ready naming the bus, still running.
            await until(waiting_for_bus(ops_port), timeout=60)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{ops_port}/healthz")).status_code == 200
            await waiter.while_waiting()
            await asyncio.sleep(1.0)  # several waits
            assert not running.done()
            assert (await readyz(ops_port))[0] == 503

            # 2. Kafka answers: ready, and the service does its work.
            await staged.answer()
            await until(ready(ops_port), timeout=90)
            await waiter.works(context, bus, running)
            assert not running.done()
            assert (await readyz(ops_port))[0] == 200
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
            await bus.close()
            staged.close()
    assert engine_lines(logs) == [("engine unavailable; waiting", "bus"), ("engine back; resuming", "bus")]


@on_sqlite_only
@pytest.mark.parametrize("service", SERVICES)
async def test_a_stop_while_a_service_waits_for_kafka_ends_it_promptly(context: AppContext, service: str) -> None:
    waiter = SERVICES[service]()
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    running = asyncio.create_task(waiter.run(context, bus, ops_port, stop))
    try:
        await until(waiting_for_bus(ops_port), timeout=60)
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(running, 10)
        assert time.monotonic() - stopped_at < 5.0
        assert (await readyz(ops_port))[0] == 0  # the ops endpoint is closed too: the process can exit
    finally:
        stop.set()
        if not running.done():
            running.cancel()
        await bus.close()
        staged.close()
