"""The case-intake gRPC server (CaseIntakeService, grpc.health.v1, reflection) and `run_intake`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from casem.adapters.bus import Bus, Producer
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import intake_service_pb2, intake_service_pb2_grpc
from casem.services.case_intake.publisher import IntakePublisher, PublisherSettings
from casem.services.case_intake.servicer import IntakeServicer
from casem.services.common.grpc_server import MAX_MESSAGE_BYTES, server_interceptors, server_options
from casem.services.common.listen import add_grpc_port
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.topics import intake_topic

SERVICE = "case-intake"
log = structlog.get_logger(SERVICE)

INTAKE_SERVICE = intake_service_pb2.DESCRIPTOR.services_by_name["CaseIntakeService"].full_name
SHUTDOWN_GRACE_S = 10.0


class IntakeHealth(health.aio.HealthServicer):
    """SERVING while the bus takes intakes: NOT_SERVING after a batch failed, until one succeeds."""

    def __init__(self, publisher: IntakePublisher) -> None:
        super().__init__()
        self._publisher = publisher
        for name in ("", INTAKE_SERVICE):
            self._server_status[name] = health_pb2.HealthCheckResponse.SERVING

    async def _refresh(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._publisher.available
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        for name in ("", INTAKE_SERVICE):
            await self.set(name, status)

    async def Check(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802
        await self._refresh()
        return await super().Check(request, context)


@dataclass
class IntakeServer:
    server: grpc.aio.Server
    port: int
    publisher: IntakePublisher
    health: IntakeHealth

    async def stop(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Refuse new calls, let in-flight ones finish (their publishes included), then flush the publisher."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.publisher.close()


def create_intake_server(
    context: AppContext, producer: Producer, address: str, settings: PublisherSettings | None = None
) -> IntakeServer:
    """Bound, not started; call from the event loop that will serve it. The topic must exist.
    Raises PortInUse when the address is taken."""
    publisher = IntakePublisher(producer, settings)
    # Batches of up to 1000 intakes: four times the usual request size.
    server = grpc.aio.server(
        options=server_options(receive_bytes=MAX_MESSAGE_BYTES * 4), interceptors=server_interceptors()
    )
    intake_service_pb2_grpc.add_CaseIntakeServiceServicer_to_server(IntakeServicer(context, publisher), server)
    health_servicer = IntakeHealth(publisher)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [INTAKE_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = add_grpc_port(server, address, "case-intake gRPC")
    return IntakeServer(server, port, publisher, health_servicer)


async def ensure_intake_topic(bus: Bus) -> str:
    """The intake topic, made sure of (waiting while the bus is away)."""
    await ensure_topics_waiting(bus, [(intake_topic().name, intake_topic().partitions)], EngineWaits(log, SERVICE))
    return intake_topic().name


async def run_intake(
    context: AppContext,
    bus: Bus,
    address: str = "127.0.0.1:50052",
    *,
    settings: PublisherSettings | None = None,
    stop: asyncio.Event | None = None,
    ops_host: str = "127.0.0.1",
    ops_port: int | None = None,
) -> None:
    """`casem run case-intake`: serve until `stop` (without one: SIGINT/SIGTERM), then drain gracefully.

    `context` gives the tenant databases (credentials, projects, types: read only); `bus` is open_bus(). With
    `ops_port`, /healthz, /readyz and /metrics are served there from the start: the gRPC server only starts once the
    intake topic exists, so while the bus is away at start-up the ops endpoint is what answers alive (/healthz) but not
    ready (/readyz names the bus). Kubernetes' liveness probe looks there, not at the gRPC port."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)
    waits = EngineWaits(log, SERVICE)  # not ready while it waits for the bus at start-up, naming it
    readiness = all_of(database_readiness(context.databases), waits.readiness)
    ops = start_ops(readiness, ops_host, ops_port, stop) if ops_port else None  # first: a taken port fails early
    try:
        await _serve_once_topic_exists(context, bus, address, settings, stop, waits)
    finally:
        if ops is not None:
            stop.set()
            await ops


async def _serve_once_topic_exists(
    context: AppContext,
    bus: Bus,
    address: str,
    settings: PublisherSettings | None,
    stop: asyncio.Event,
    waits: EngineWaits,
) -> None:
    topics = [(intake_topic().name, intake_topic().partitions)]
    if not await ensure_topics_waiting(bus, topics, waits, stop=stop):
        log.info("case-intake stopped while waiting for the bus")
        return
    producer = bus.producer()
    try:
        intake = create_intake_server(context, producer, address, settings)
    except BaseException:
        await producer.close()
        raise
    await intake.server.start()
    log.info("case-intake serving", address=address, port=intake.port, topic=intake_topic().name)
    try:
        await stop.wait()
    finally:
        await intake.stop()
        await producer.close()
        log.info("case-intake stopped")
