"""`casem run case-third-party-reader --flavor jira|servicenow`: the flavor's feed in consumer group
`case-management` (the seed's name), applied to the linked cases until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import structlog

from casem.adapters.bus import Bus, Consumer
from casem.adapters.bus.strategies import CommitOffsets, CommitPolicy, RunTask, StreamProcessor
from casem.app.context import AppContext
from casem.services.case_third_party_reader.runner import ReaderRunner, RetryPolicy
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.services import THIRD_PARTY_READER_FLAVORS
from casem.topology.topics import DEAD_LETTER_PARTITIONS, reader_dead_letter_topic, reader_group, third_party_topic

SERVICE = "case-third-party-reader"
log = structlog.get_logger(SERVICE)


def check_flavor(flavor: str) -> str:
    if flavor not in THIRD_PARTY_READER_FLAVORS:
        raise KeyError(
            f"unknown case-third-party-reader flavor {flavor!r}; one of: {', '.join(THIRD_PARTY_READER_FLAVORS)}"
        )
    return flavor


async def prepare_topics(
    bus: Bus, flavor: str, *, waits: EngineWaits | None = None, stop: asyncio.Event | None = None
) -> str | None:
    """The flavor's feed topic, made sure of with its dead-letter topic, waiting in place while the bus is away
    (`waits` saying so); None when `stop` was set during the wait."""
    topic = third_party_topic(flavor)
    specs = [(topic.name, topic.partitions), (reader_dead_letter_topic(flavor), DEAD_LETTER_PARTITIONS)]
    if not await ensure_topics_waiting(bus, specs, waits or EngineWaits(log.bind(flavor=flavor), SERVICE), stop=stop):
        return None
    return topic.name


def build_processor(
    runner: ReaderRunner, consumer: Consumer, *, max_in_flight: int = 1000, commit_every: int = 200
) -> StreamProcessor:
    """Each remote issue's changes in order (one key, one partition), partitions concurrently. A fetch brings
    one partition's messages in a run: room for 1,000 in flight (small messages) lets every partition's run
    be under way at once instead of one partition's filling the pipeline."""
    strategy = RunTask(
        runner.process, CommitOffsets(consumer, CommitPolicy(commit_every, 1.0)), max_in_flight=max_in_flight
    )
    return StreamProcessor(consumer, strategy)


async def _stop_when_set(stop: asyncio.Event, processor: StreamProcessor, runner: ReaderRunner) -> None:
    await stop.wait()
    runner.stop()  # a change waiting out a retry or an engine gives up, uncommitted: it comes back after restart
    processor.stop()


async def run_reader(
    flavor: str,
    context: AppContext,
    bus: Bus,
    *,
    retry: RetryPolicy | None = None,
    ops_host: str = "127.0.0.1",
    ops_port: int | None = 9090,
    stop: asyncio.Event | None = None,
) -> None:
    """Consume the flavor's feed until `stop` (without one: SIGINT/SIGTERM); in-flight changes finish."""
    check_flavor(flavor)
    own_signals = stop is None
    stop = stop or asyncio.Event()
    if own_signals:  # alone (`casem run`); inside `casem up` the stack's event stops it
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    waits = EngineWaits(log.bind(flavor=flavor), SERVICE)  # not ready while it waits for the bus, naming it
    readiness = all_of(database_readiness(context.databases), waits.readiness)
    ops = start_ops(readiness, ops_host, ops_port, stop) if ops_port else None
    topic = await prepare_topics(bus, flavor, waits=waits, stop=stop)
    if topic is None:  # stopped while waiting for the bus
        if ops:
            await ops
        log.info("reader stopped before it started", flavor=flavor)
        return
    consumer = bus.consumer(reader_group(flavor), [topic])
    producer = bus.producer()
    runner = ReaderRunner(flavor, context, producer, retry)
    processor = build_processor(runner, consumer)
    stopping = asyncio.create_task(_stop_when_set(stop, processor, runner))
    log.info("reader started", flavor=flavor, group=reader_group(flavor), topic=topic)
    try:
        await processor.run()  # returns after stop(): in-flight changes finish and are committed
    finally:
        stop.set()
        await stopping
        if ops:
            await ops
        await consumer.close()
        await producer.close()
        log.info("reader stopped", flavor=flavor)
