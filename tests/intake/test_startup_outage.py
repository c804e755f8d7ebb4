"""case-intake started while Kafka is away: it waits in place for its topic instead of exiting. Meanwhile its ops
endpoint answers alive (/healthz, the chart's liveness and start-up probes) but not ready naming the bus, and its gRPC
server is not up yet (so nothing may probe liveness there); then it serves intakes. A stop during the wait ends it at
once. The outage is staged in front of the real broker (tests/support/bus_outage.py); the shared broker itself is never
stopped."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import intake_service_pb2_grpc
from casem.services.case_intake.server import INTAKE_SERVICE, run_intake
from casem.topology.topics import intake_topic
from tests.intake.stack import intake, new_tenant
from tests.support.bus_harness import drain
from tests.support.bus_outage import StagedBootstrap, engine_lines, ready, readyz, until, waiting_for_bus
from tests.support.fixtures.tenants import on_sqlite_only
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka

SERVING = health_pb2.HealthCheckResponse.SERVING


async def _grpc_health(port: int, service: str) -> int | grpc.StatusCode:
    """The gRPC health status of `service`, or the call's error code when nothing answers there."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2.0
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
        return reply.status


@on_sqlite_only
async def test_intake_waits_for_kafka_alive_on_its_ops_endpoint_then_serves(context: AppContext) -> None:
    tenant = await new_tenant(context)
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port, grpc_port = free_port(), free_port()
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(run_intake(context, bus, f"127.0.0.1:{grpc_port}", stop=stop, ops_port=ops_port))
        try:
            # 1. Kafka away at start-up: alive, not ready naming the bus, no gRPC server yet, still running.
            await until(waiting_for_bus(ops_port), timeout=60)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{ops_port}/healthz")).status_code == 200
            assert await _grpc_health(grpc_port, "") == grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(1.0)  # several waits
            assert not task.done()
            assert (await readyz(ops_port))[0] == 503

            # 2. Kafka answers: ready, the gRPC server up and SERVING, and an intake is published.
            await staged.answer()
            await until(ready(ops_port), timeout=90)

            async def grpc_serving() -> bool:
                assert not task.done()
                return await _grpc_health(grpc_port, INTAKE_SERVICE) == SERVING

            await until(grpc_serving, timeout=30)
            assert await _grpc_health(grpc_port, "") == SERVING
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
                response = await stub.Submit(intake(tenant, "after-the-wait"), metadata=tenant.metadata)
            assert response.intake_key == "after-the-wait"
            consumer = bus.consumer("startup-check", [intake_topic().name])
            [message] = await drain(consumer, 1, timeout=60)
            await consumer.close()
            assert message.key == f"{tenant.creds.org_id}/after-the-wait".encode()
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await bus.close()
            staged.close()
    assert engine_lines(logs) == [("engine unavailable; waiting", "bus"), ("engine back; resuming", "bus")]


@on_sqlite_only
async def test_a_stop_while_intake_waits_for_kafka_ends_it_promptly(context: AppContext) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    ops_port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_intake(context, bus, f"127.0.0.1:{free_port()}", stop=stop, ops_port=ops_port))
    try:
        await until(waiting_for_bus(ops_port), timeout=60)
        stopped_at = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - stopped_at < 5.0
        assert (await readyz(ops_port))[0] == 0  # the ops endpoint is closed too: the process can exit
    finally:
        stop.set()
        if not task.done():
            task.cancel()
        await bus.close()
        staged.close()
