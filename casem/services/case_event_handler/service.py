"""`casem run case-event-handler --flavor NAME`: the flavor's consumer group, until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import structlog

from casem.adapters.bus import Bus, Consumer
from casem.adapters.bus.strategies import Batch, CommitOffsets, CommitPolicy, RunTask, StreamProcessor
from casem.app.context import AppContext
from casem.services.case_event_handler.deliveries import load_operator_allow
from casem.services.case_event_handler.framework import FLAVORS, Flavor, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.topics import DEAD_LETTER_PARTITIONS, dead_letter_topic, domain_events_topic, handler_group

SERVICE = "case-event-handler"
log = structlog.get_logger(SERVICE)


def load_flavor(name: str):  # type: ignore[no-untyped-def]
    import casem.services.case_event_handler.flavors  # noqa: F401 - registers the flavors

    try:
        return FLAVORS[name]()
    except KeyError:
        known = ", ".join(sorted(FLAVORS))
        raise KeyError(f"flavor {name!r} is not available in this build; available: {known}") from None


def topic_specs(tenants: Sequence[str], flavor: str) -> list[tuple[str, int]]:
    """(name, partitions) of the tenant topics the flavor consumes, then of its dead-letter topic."""
    specs = [(domain_events_topic(t).name, domain_events_topic(t).partitions) for t in tenants]
    return [*specs, (dead_letter_topic(flavor), DEAD_LETTER_PARTITIONS)]


async def prepare_topics(bus: Bus, tenants: Sequence[str], flavor: str) -> list[str]:
    """The tenant topics the flavor consumes, made sure of with its dead-letter topic (waiting while the bus is
    away)."""
    await ensure_topics_waiting(bus, topic_specs(tenants, flavor), EngineWaits(log.bind(flavor=flavor), SERVICE))
    return [domain_events_topic(t).name for t in tenants]


def build_processor(
    runner: FlavorRunner,
    consumer: Consumer,
    *,
    max_in_flight: int = 64,
    commit_every: int = 200,
    max_batch: int = 500,
    batches_in_flight: int = 4,
    linger_s: float = 0.005,
) -> StreamProcessor:
    """Per partition in order, partitions concurrently; failures retried, then dead-lettered (committed
    once the dead letter is acknowledged); commit every N messages or second. A flavor with `apply_batch` gets
    polled batches instead (`FlavorRunner.handle_batch`, up to `max_batch` events, `batches_in_flight` at once),
    committed once applied, in order."""
    commit = CommitOffsets(consumer, CommitPolicy(commit_every, 1.0))
    if hasattr(runner.flavor, "apply_batch"):
        batches = Batch(
            runner.handle_batch, commit, max_batch=max_batch, linger_s=linger_s, max_pending=batches_in_flight
        )
        return StreamProcessor(consumer, batches, max_batch=max_batch)
    strategy = RunTask(
        runner.handle,
        commit,
        max_in_flight=max_in_flight,
        retry=runner.retrying,
        dead_letter=runner.dead_letter,
    )
    return StreamProcessor(consumer, strategy)


async def _stop_when_set(stop: asyncio.Event, processor: StreamProcessor, runner: FlavorRunner) -> None:
    await stop.wait()
    runner.stop()  # a retry or a wait for an engine gives up: the message stays uncommitted
    processor.stop()


async def run_flavor(
    flavor_name: str,
    context: AppContext,
    bus: Bus,
    tenants: Sequence[str],
    *,
    services: HandlerServices | None = None,
    ops_host: str = "127.0.0.1",
    ops_port: int | None = 9090,
    stop: asyncio.Event | None = None,
) -> None:
    """Consume until `stop` (without one: SIGINT/SIGTERM); in-flight messages finish and are committed."""
    flavor = load_flavor(flavor_name)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    # Not ready while it waits for an engine (the bus at start-up; any engine an event waits for), naming it.
    waits = EngineWaits(log.bind(flavor=flavor.name), SERVICE)
    readiness = all_of(database_readiness(context.databases), waits.readiness)
    ops = start_ops(readiness, ops_host, ops_port, stop) if ops_port else None  # first: a taken port fails early
    try:
        await _consume(flavor, context, bus, tenants, services or HandlerServices(), stop, waits)
    finally:
        stop.set()
        if ops:
            await ops


async def _consume(
    flavor: Flavor,
    context: AppContext,
    bus: Bus,
    tenants: Sequence[str],
    services: HandlerServices,
    stop: asyncio.Event,
    waits: EngineWaits,
) -> None:
    flavor_name = flavor.name
    load_operator_allow(services)  # a malformed CASEM_OUTBOUND_ALLOW stops the handler here, not at a delivery
    required = "caseworker" in getattr(flavor, "requires", ())
    wanted = required or "caseworker" in getattr(flavor, "uses", ())  # `uses`: optional, connected when configured
    if wanted and "caseworker" not in services.extras:
        from casem.adapters.workflows.client import connect, temporal_address, temporal_namespace

        address = temporal_address()
        if address:
            services.extras["caseworker"] = await connect(address, temporal_namespace())
        elif required:
            raise RuntimeError(f"flavor {flavor_name} starts caseworker workflows: set CASEM_TEMPORAL_ADDRESS")
    if not await ensure_topics_waiting(bus, topic_specs(tenants, flavor_name), waits, stop=stop):
        log.info("flavor stopped while waiting for the bus", flavor=flavor_name)
        return
    topics = [domain_events_topic(t).name for t in tenants]
    consumer = bus.consumer(handler_group(flavor_name), topics)
    producer = bus.producer()
    runner = FlavorRunner(flavor, context, producer, services, waits=waits)
    processor = build_processor(runner, consumer)
    stopping = asyncio.create_task(_stop_when_set(stop, processor, runner))
    # Time-driven flavors (reminders, SLA clocks) also run a scheduler beside their consumer.
    background = getattr(flavor, "background", None)
    scheduler = asyncio.create_task(background(context, stop)) if background else None
    log.info("flavor started", flavor=flavor_name, group=handler_group(flavor_name), topics=topics)
    try:
        await processor.run()  # returns after stop(): in-flight messages finish and are committed
    finally:
        stop.set()
        await stopping
        if scheduler:
            await scheduler
        await consumer.close()
        await producer.close()
        log.info("flavor stopped", flavor=flavor_name)
